/* reply.c — answers headroomd writes itself: JSON bodies, and errors in the
 * shape the client's SDK expects from its provider. */
#include <stdlib.h>
#include <string.h>
#include "api/api.h"
#include "daemon.h"
#include "http_server.h"
#include "numfmt.h"

void hr_send_json(struct hr_req *req, int status, json_t *body)
{
    /* Figures were rounded to their unit (numfmt.h): print them without
     * binary noise ("0.051991", not "0.051990999999999996"). */
    char *text = json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(HR_JSON_FIGURES_PRECISION));
    json_decref(body);
    size_t len = text ? strlen(text) : 0;
    char *line = text ? realloc(text, len + 2) : NULL;
    if (line) {
        line[len++] = '\n';
        line[len] = '\0';
    } else {
        free(text);
    }
    hr_req_add_header(req, "Content-Type", "application/json");
    hr_req_add_header(req, "X-Content-Type-Options", "nosniff"); /* never read as a script or style */
    hr_req_send(req, status, line ? line : "\n", line ? len : 1);
    free(line);
}

void hr_send_api_error(struct hr_req *req, const struct hr_api *api, int status, enum hr_api_error kind,
                       const char *message)
{
    hr_send_json(req, status, api->error_body(kind, message));
}
