/* json_reply.h — a test plugin route's answer: 200 with the JSON body an
 * asprintf made (n: its result; below 0, out of memory). */
#ifndef T_PLUGINS_JSON_REPLY_H
#define T_PLUGINS_JSON_REPLY_H
#include <stdlib.h>
#include <headroom/plugin.h>

static inline int json_reply(struct hr_http_response *resp, char *body, int n)
{
    if (n < 0) return HR_ENOMEM;
    resp->status = 200;
    resp->content_type = "application/json";
    resp->body = body;
    resp->body_len = (size_t)n;
    resp->free_body = free;
    return HR_OK;
}
#endif
