/* upstream.c — picks the client for each transfer: the native one unless the
 * configuration asks for libcurl or the URL or the environment needs it. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "upstream_impl.h"

struct hr_upstream {
    struct event_base *base;
    long max_idle;
    enum hr_upstream_client which;
    int proxy_http, proxy_https; /* a proxy from the environment applies */
    struct hr_h1_pool *h1;
    struct hr_curl_multi *curl; /* made when first needed */
    struct hr_upstream_counts *counts;
};

static int env_set(const char *name)
{
    const char *v = getenv(name);
    return v && *v;
}

struct hr_upstream *hr_upstream_new(struct event_base *base, long max_idle, enum hr_upstream_client which,
                                    struct hr_upstream_counts *counts)
{
    struct hr_upstream *u = calloc(1, sizeof *u);
    if (!u) return NULL;
    u->base = base;
    u->counts = counts;
    u->max_idle = max_idle > 0 ? max_idle : 32;
    u->which = which;
    /* libcurl's rules: http_proxy (lower case only), HTTPS_PROXY, ALL_PROXY;
     * NO_PROXY is then curl's to apply, host by host. "*" turns them off. */
    const char *no = getenv("no_proxy") ? getenv("no_proxy") : getenv("NO_PROXY");
    if (!(no && !strcmp(no, "*"))) {
        int all = env_set("all_proxy") || env_set("ALL_PROXY");
        u->proxy_http = all || env_set("http_proxy");
        u->proxy_https = all || env_set("https_proxy") || env_set("HTTPS_PROXY");
    }
    if (which != HR_UPSTREAM_CURL && !(u->h1 = hr_h1_pool_new(base, u->max_idle, counts))) {
        free(u);
        return NULL;
    }
    return u;
}

void hr_upstream_free(struct hr_upstream *u)
{
    if (!u) return;
    hr_h1_pool_free(u->h1);
    hr_curl_multi_free(u->curl);
    free(u);
}

/* libcurl without asking the native client: chosen, or a proxy set in the
 * environment. The native client declines the URLs it cannot take. */
static int curl_only(const struct hr_upstream *u, const char *url)
{
    if (u->which == HR_UPSTREAM_CURL || !u->h1) return 1;
    if (u->which == HR_UPSTREAM_NATIVE) return 0;
    int tls = !strncasecmp(url, "https:", 6);
    return tls ? u->proxy_https : u->proxy_http;
}

struct hr_transfer *hr_transfer_start(struct hr_upstream *u, const char *method, const char *url, const char *headers,
                                      const char *body, size_t body_len, const struct hr_transfer_opts *opts,
                                      const struct hr_transfer_cbs *cbs, void *ud)
{
    if (!curl_only(u, url)) { /* the URL is parsed once, there */
        int declined;
        struct hr_transfer *t =
            hr_h1_start(u->h1, method, url, headers, body, body_len, body_len, opts, cbs, ud, &declined);
        if (!declined) return t;
    }
    if (!u->curl && !(u->curl = hr_curl_multi_new(u->base, u->max_idle, u->counts))) return NULL;
    return hr_curl_start(u->curl, method, url, headers, body, body_len, opts, cbs, ud);
}

int hr_transfer_streams_body(struct hr_upstream *u, const char *url)
{
    return !curl_only(u, url) && hr_h1_takes_url(url);
}

struct hr_transfer *hr_transfer_start_partial(struct hr_upstream *u, const char *method, const char *url,
                                              const char *headers, const char *body, size_t body_len,
                                              size_t body_have, const struct hr_transfer_opts *opts,
                                              const struct hr_transfer_cbs *cbs, void *ud)
{
    if (curl_only(u, url)) return NULL;
    int declined;
    return hr_h1_start(u->h1, method, url, headers, body, body_len, body_have, opts, cbs, ud, &declined);
}

void hr_transfer_body_more(struct hr_transfer *t, size_t body_have)
{
    if (t && t->native) hr_h1_body_more(t, body_have);
}

int hr_transfer_sending(const struct hr_transfer *t) { return t->native && hr_h1_sending(t); }

double hr_transfer_send_wait_ms(struct hr_transfer *t)
{
    return t->native ? hr_h1_send_wait_ms(t) : hr_curl_send_wait_ms(t);
}

void hr_transfer_resume(struct hr_transfer *t)
{
    if (t->native) hr_h1_resume(t);
    else hr_curl_resume(t);
}

void hr_transfer_abort(struct hr_transfer *t)
{
    if (!t) return;
    if (t->native) hr_h1_abort(t);
    else hr_curl_abort(t);
}

struct hr_tunnel *hr_transfer_take_tunnel(struct hr_transfer *t)
{
    return t && t->native ? hr_h1_take_tunnel(t) : NULL;
}
