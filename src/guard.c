/* guard.c — what keeps web pages and hostile clients out: the Host
 * allow-list (DNS rebinding), cross-site checks on state-changing
 * endpoints, bearer tokens for /stats and /metrics, the proxied path's
 * shape, and the refusals evhttp makes itself (413, 400, 501) answered in
 * the provider's JSON error shape and counted like ours. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/http_struct.h>
#include <event2/keyvalq_struct.h>
#include "guard.h"
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

const char *hr_guard_cross_site(struct evkeyvalq *in)
{
    const char *site = evhttp_find_header(in, "sec-fetch-site");
    if (site && strcasecmp(site, "same-origin") && strcasecmp(site, "none"))
        return "cross-site request refused (Sec-Fetch-Site is not same-origin): send x-headroom-admin-token";
    const char *origin = evhttp_find_header(in, "origin");
    if (origin && !same_origin(origin, evhttp_find_header(in, "host")))
        return "cross-origin request refused (Origin does not match Host): send x-headroom-admin-token";
    const char *ct = evhttp_find_header(in, "content-type");
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

int hr_guard_bearer_ok(struct evkeyvalq *in, const char *token)
{
    if (!token || !*token) return 1;
    const char *auth = evhttp_find_header(in, "authorization");
    return auth && !strncasecmp(auth, "Bearer ", 7) && token_equal(auth + 7, token);
}

int hr_guard_admin_token_ok(struct evkeyvalq *in, const char *token)
{
    const char *t = evhttp_find_header(in, "x-headroom-admin-token");
    return token && *token && t && token_equal(t, token);
}

const char *hr_guard_path(const char *path)
{
    /* The path is appended to the configured base URL: it must not be
     * able to leave it (dot segments, which the upstream or curl would
     * resolve), nor hide a separator from this check (encoded '/', '\\',
     * '.'), nor carry a second request or a fragment. */
    int in_query = 0; /* the query is the upstream's to read: only bytes that break the URL are refused there */
    for (const char *p = path; *p; p++) {
        unsigned char c = (unsigned char)*p;
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

/* evhttp answers some malformed requests itself, before headroomd sees
 * them (body or headers over the limit, a bad request line, an unknown
 * method), with an HTML page. headroomd defines evhttp_send_error, which
 * libevent calls through the dynamic linker, so those answers take the
 * provider's JSON shape (which SDKs parse) and are counted. */
void evhttp_send_error(struct evhttp_request *req, int error, const char *reason)
{
    (void)reason;
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    const struct hr_config *cfg = guard_cfg;
    int status = error;
    enum hr_refusal why = HR_REFUSE_BAD_REQUEST;
    char msg[300];
    /* evhttp says 413 or 400 when the headers outgrow max_header_size: what
     * it read of them (and what waits unparsed) tells that case apart. */
    struct evhttp_connection *conn = evhttp_request_get_connection(req);
    struct bufferevent *bev = conn ? evhttp_connection_get_bufferevent(conn) : NULL;
    size_t header_bytes = req->headers_size + (bev && !req->body_size ? evbuffer_get_length(bufferevent_get_input(bev)) : 0);
    if ((error == 413 || error == 400) && cfg && !req->body_size && header_bytes > cfg->max_header_bytes) {
        status = 431;
        why = HR_REFUSE_HEADERS_TOO_LARGE;
        snprintf(msg, sizeof msg, "request headers larger than max_header_size (%zu bytes): send fewer or shorter "
                 "headers, or raise max_header_size in headroom.conf", cfg->max_header_bytes);
    } else if (error == 413) {
        why = HR_REFUSE_BODY_TOO_LARGE;
        snprintf(msg, sizeof msg, "request body larger than max_body_size (%zu bytes): send less, or raise "
                 "max_body_size in headroom.conf", cfg ? cfg->max_body_bytes : (size_t)0);
    } else if (error == 501 || error == 405) {
        why = HR_REFUSE_NOT_IMPLEMENTED;
        snprintf(msg, sizeof msg, "HTTP method not supported by headroomd");
    } else if (error == 400) {
        snprintf(msg, sizeof msg, "malformed HTTP request (request line, headers or chunked body)");
    } else {
        snprintf(msg, sizeof msg, "request refused (HTTP %d)", error);
    }
    hr_guard_count(why);
    /* No route is known here (evhttp dropped the URI): the provider's shape
     * follows the client's own Anthropic headers, else OpenAI's. */
    const struct hr_api *api = in && (evhttp_find_header(in, "anthropic-version") || evhttp_find_header(in, "x-api-key"))
                                   ? &hr_api_anthropic_messages
                                   : &hr_api_openai_chat;
    json_t *body = api->error_body(HR_API_ERR_INVALID_REQUEST, msg);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    struct evbuffer *buf = evbuffer_new();
    if (buf && text) evbuffer_add(buf, text, strlen(text));
    free(text);
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    evhttp_clear_headers(out);
    evhttp_add_header(out, "Content-Type", "application/json");
    evhttp_add_header(out, "Connection", "close");
    HR_DEBUG(LOGGER, "refused a request before routing: %d %s", status, msg);
    /* A request line too long to parse leaves no version: evhttp would
     * answer "HTTP/0.0", which no client reads. */
    if (req->major != 1) {
        req->major = 1;
        req->minor = 1;
    }
    evhttp_send_reply(req, status, NULL, buf);
    if (buf) evbuffer_free(buf);
}
