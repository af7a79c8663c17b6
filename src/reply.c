/* reply.c — answers headroomd writes itself: JSON bodies, and errors in the
 * shape the client's SDK expects from its provider. */
#include <stdlib.h>
#include <string.h>
#include "api/api.h"
#include "daemon.h"
#include "http_server.h"
#include "json_dump.h"
#include "numfmt.h"

void hr_send_json(struct hr_req *req, int status, json_t *body)
{
    /* Each real as the shortest text that reads back to it: a figure rounded
     * to its unit (numfmt.h) without binary noise ("0.051991", not
     * "0.051990999999999996"), and a client's number that /v1/compress
     * returns in "request" exactly (%.15g turned 0.12345678901234568 into
     * another double). */
    size_t len = 0;
    char *text = hr_json_dump_compact(body, &len);
    json_decref(body);
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
