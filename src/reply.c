/* reply.c — answers headroomd writes itself: JSON bodies, and errors in the
 * shape the client's SDK expects from its provider. */
#include <stdlib.h>
#include <string.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include "api/api.h"
#include "daemon.h"
#include "numfmt.h"

void hr_send_json(struct evhttp_request *req, int status, json_t *body)
{
    /* Figures were rounded to their unit (numfmt.h): print them without
     * binary noise ("0.051991", not "0.051990999999999996"). */
    char *text = json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(HR_JSON_FIGURES_PRECISION));
    json_decref(body);
    struct evbuffer *buf = evbuffer_new();
    if (text) evbuffer_add(buf, text, strlen(text));
    evbuffer_add(buf, "\n", 1);
    free(text);
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    evhttp_add_header(out, "Content-Type", "application/json");
    evhttp_add_header(out, "X-Content-Type-Options", "nosniff"); /* never read as a script or style */
    evhttp_send_reply(req, status, NULL, buf);
    evbuffer_free(buf);
}

void hr_send_api_error(struct evhttp_request *req, const struct hr_api *api, int status, enum hr_api_error kind,
                       const char *message)
{
    hr_send_json(req, status, api->error_body(kind, message));
}
