/* guard.c — what keeps web pages and hostile clients out: the Host
 * allow-list (DNS rebinding), cross-site checks on state-changing
 * endpoints, bearer tokens for /stats and /metrics, the proxied path's
 * shape, and the refusals the HTTP server makes itself (400, 408, 413,
 * 431, 501, 505) answered in the provider's JSON error shape and counted
 * like ours. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "guard.h"
#include "http_server.h"
#include "log.h"

#define LOGGER "headroom.server"

static const struct hr_config *guard_cfg; /* set once before workers start */

void hr_guard_init(const struct hr_config *cfg) { guard_cfg = cfg; }

/* `name` (n bytes) in a space- or comma-separated list, case-insensitive;
 * "*" matches anything. */
static int in_list(const char *list, const char *name, size_t n)
{
    for (const char *p = list; p && *p;) {
        while (*p == ' ' || *p == ',' || *p == '\t') p++;
        const char *e = p;
        while (*e && *e != ' ' && *e != ',' && *e != '\t') e++;
        size_t len = (size_t)(e - p);
        if ((len == 1 && *p == '*') || (len == n && len && !strncasecmp(p, name, n))) return 1;
        p = e;
    }
    return 0;
}

int hr_guard_host_ok(const struct hr_config *cfg, const char *host)
{
    if (!host || !*host) return 1; /* HTTP/1.0 without Host: no browser sends that */
    if (host[0] == '[') return 1;  /* an IPv6 literal: no DNS name to rebind */
    const char *colon = strrchr(host, ':');
    size_t n = colon ? (size_t)(colon - host) : strlen(host);
    char name[256];
    if (n == 0 || n >= sizeof name) return 0;
    memcpy(name, host, n);
    name[n] = '\0';
    if (n && name[n - 1] == '.') name[--n] = '\0'; /* "localhost." is localhost */
    struct in_addr a4;
    if (inet_pton(AF_INET, name, &a4) == 1) return 1;
    if (!strcasecmp(name, "localhost") || (n > 10 && !strcasecmp(name + n - 10, ".localhost"))) return 1;
    if (cfg->host && !strcasecmp(cfg->host, name)) return 1;
    return in_list(cfg->allowed_hosts, name, n);
}

/* The authority of an Origin ("scheme://host[:port]"), compared with Host. */
static int same_origin(const char *origin, const char *host)
{
    const char *a = strstr(origin, "://");
    if (!a || !host) return 0;
    a += 3;
    return !strcasecmp(a, host);
}

const char *hr_guard_cross_site(const struct hr_req *in)
{
    const char *site = hr_req_header(in, "sec-fetch-site");
    if (site && strcasecmp(site, "same-origin") && strcasecmp(site, "none"))
        return "cross-site request refused (Sec-Fetch-Site is not same-origin): send x-headroom-admin-token";
    const char *origin = hr_req_header(in, "origin");
    if (origin && !same_origin(origin, hr_req_header(in, "host")))
        return "cross-origin request refused (Origin does not match Host): send x-headroom-admin-token";
    const char *ct = hr_req_header(in, "content-type");
    if (ct) {
        static const char *const simple[] = {"application/x-www-form-urlencoded", "multipart/form-data", "text/plain",
                                             NULL};
        for (size_t i = 0; simple[i]; i++)
            if (!strncasecmp(ct, simple[i], strlen(simple[i])))
                return "form content types are refused on admin endpoints (a web page can post them): send no body, "
                       "application/json, or x-headroom-admin-token";
    }
    return NULL;
}

/* Equal strings in time that does not depend on where they differ. */
static int token_equal(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    unsigned char diff = (unsigned char)(na != nb);
    for (size_t i = 0; i < na; i++) diff |= (unsigned char)(a[i] ^ b[i % (nb ? nb : 1)]);
    return diff == 0 && nb;
}

int hr_guard_bearer_ok(const struct hr_req *in, const char *token)
{
    if (!token || !*token) return 1;
    const char *auth = hr_req_header(in, "authorization");
    return auth && !strncasecmp(auth, "Bearer ", 7) && token_equal(auth + 7, token);
}

int hr_guard_admin_token_ok(const struct hr_req *in, const char *token)
{
    const char *t = hr_req_header(in, "x-headroom-admin-token");
    return token && *token && t && token_equal(t, token);
}

const char *hr_guard_path(const char *path)
{
    /* The path is appended to the configured base URL: it must not be
     * able to leave it (dot segments, which the upstream or curl would
     * resolve), nor hide a separator from this check (encoded '/', '\\',
     * '.'), nor carry a second request or a fragment. Only the bytes in
     * `look` (and the end) need a test; the others are passed over. */
    static const unsigned char look[256] = {[0 ... 0x20] = 1, [0x7f] = 1, ['#'] = 1, ['?'] = 1,
                                            ['\\'] = 1,      ['%'] = 1,  ['/'] = 1};
    int in_query = 0; /* the query is the upstream's to read: only bytes that break the URL are refused there */
    for (const char *p = path;; p++) {
        while (!look[(unsigned char)*p]) p++;
        unsigned char c = (unsigned char)*p;
        if (!c) break;
        if (c <= 0x20 || c == 0x7f || c == '#')
            return "the request target holds a control byte, space or '#'";
        if (c == '?') in_query = 1;
        if (in_query) continue;
        if (c == '\\') return "the request path holds a backslash";
        if (c == '%' && p[1] && p[2]) {
            char hex[3] = {p[1], p[2], 0};
            long v = strtol(hex, NULL, 16);
            if (v == '/' || v == '\\' || v == '.' || v == '%' || v < 0x20)
                return "the request path holds an encoded '/', '\\\\', '.', '%' or control byte";
        }
        if (c == '/' && p[1] == '/') return "the request path holds an empty segment ('//')";
        if (c == '/' && p[1] == '.' && (p[2] == '/' || !p[2] || (p[2] == '.' && (p[3] == '/' || !p[3]))))
            return "the request path holds a dot segment ('.' or '..')";
    }
    return NULL;
}

/* The HTTP server refuses some requests before headroomd routes them (a
 * malformed head, headers or body over the limits, an unknown method, a
 * request not received within client_timeout): the answer takes the
 * provider's JSON shape (which SDKs parse) and is counted. */
void hr_guard_refuse_request(struct hr_req *req, int status, const char *reason, void *worker)
{
    (void)worker;
    const struct hr_config *cfg = guard_cfg;
    enum hr_refusal why = HR_REFUSE_BAD_REQUEST;
    enum hr_api_error kind = HR_API_ERR_INVALID_REQUEST;
    char msg[300];
    switch (status) {
    case 431:
        why = HR_REFUSE_HEADERS_TOO_LARGE;
        snprintf(msg, sizeof msg, "request headers larger than max_header_size (%zu bytes): send fewer or shorter "
                 "headers, or raise max_header_size in headroom.conf", cfg ? cfg->max_header_bytes : (size_t)0);
        break;
    case 413:
        why = HR_REFUSE_BODY_TOO_LARGE;
        snprintf(msg, sizeof msg, "request body larger than max_body_size (%zu bytes): send less, or raise "
                 "max_body_size in headroom.conf", cfg ? cfg->max_body_bytes : (size_t)0);
        break;
    case 408:
        why = HR_REFUSE_SLOW_CLIENT;
        snprintf(msg, sizeof msg, "request not received within client_timeout (%d s): send the whole request "
                 "sooner, or raise client_timeout in headroom.conf", cfg ? cfg->client_timeout_s : 0);
        break;
    case 501:
        why = HR_REFUSE_NOT_IMPLEMENTED;
        snprintf(msg, sizeof msg, "%s: headroomd serves GET, POST, HEAD, PUT, DELETE, OPTIONS and PATCH, with "
                 "Content-Length or chunked bodies", reason);
        break;
    default:
        snprintf(msg, sizeof msg, "malformed HTTP request: %s", reason);
        break;
    }
    hr_guard_count(why);
    /* No route is known here: the provider's shape follows the client's own
     * Anthropic headers, else OpenAI's. */
    const struct hr_api *api = hr_req_header(req, "anthropic-version") || hr_req_header(req, "x-api-key")
                                   ? &hr_api_anthropic_messages
                                   : &hr_api_openai_chat;
    json_t *body = api->error_body(kind, msg);
    if (status == 408 && api == &hr_api_openai_chat) /* OpenAI names the case in "code" */
        json_object_set_new(json_object_get(body, "error"), "code", json_string("request_timeout"));
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    hr_req_clear_headers(req);
    hr_req_add_header(req, "Content-Type", "application/json");
    hr_req_add_header(req, "Connection", "close");
    HR_DEBUG(LOGGER, "refused a request before routing: %d %s", status, msg);
    hr_req_send(req, status, text ? text : "", text ? strlen(text) : 0);
    free(text);
}
