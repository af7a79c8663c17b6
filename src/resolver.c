/* resolver.c — see resolver.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netdb.h>
#include <event2/dns.h>
#include <event2/util.h>
#include "resolver.h"
#include "stats.h"

#define CACHE_SLOTS 16
#define CACHE_TTL_MS 60000.0

struct cached {
    char host[256];
    int port;
    double expires;
    struct hr_addrs addrs;
};

struct hr_resolver {
    struct event_base *base;
    struct evdns_base *dns; /* made on the first name that is not numeric */
    struct cached cache[CACHE_SLOTS];
    unsigned next_slot;
};

struct hr_resolve_req {
    struct hr_resolver *r;
    struct evdns_getaddrinfo_request *pending;
    hr_resolved_cb cb; /* NULL once cancelled */
    void *arg;
    int port;
    char host[256];
};

struct hr_resolver *hr_resolver_new(struct event_base *base)
{
    struct hr_resolver *r = calloc(1, sizeof *r);
    if (r) r->base = base;
    return r;
}

void hr_resolver_free(struct hr_resolver *r)
{
    if (!r) return;
    if (r->dns) evdns_base_free(r->dns, 1); /* pending requests fail with EVUTIL_EAI_CANCEL */
    free(r);
}

static void copy_addrs(struct hr_addrs *out, const struct evutil_addrinfo *ai)
{
    out->n = 0;
    for (; ai && out->n < HR_RESOLVE_MAX_ADDRS; ai = ai->ai_next) {
        if (ai->ai_addrlen > sizeof out->addr[0]) continue;
        memcpy(&out->addr[out->n], ai->ai_addr, ai->ai_addrlen);
        out->len[out->n] = (socklen_t)ai->ai_addrlen;
        out->n++;
    }
}

static struct cached *lookup(struct hr_resolver *r, const char *host, int port)
{
    double now = hr_monotonic_ms();
    for (int i = 0; i < CACHE_SLOTS; i++) {
        struct cached *c = &r->cache[i];
        if (c->addrs.n && c->port == port && c->expires > now && !strcasecmp(c->host, host)) return c;
    }
    return NULL;
}

static void remember(struct hr_resolver *r, const char *host, int port, const struct hr_addrs *a)
{
    struct cached *c = &r->cache[r->next_slot++ % CACHE_SLOTS];
    snprintf(c->host, sizeof c->host, "%s", host);
    c->port = port;
    c->addrs = *a;
    c->expires = hr_monotonic_ms() + CACHE_TTL_MS;
}

static void on_answer(int err, struct evutil_addrinfo *res, void *arg)
{
    struct hr_resolve_req *q = arg;
    struct hr_addrs addrs = {0};
    if (!err) {
        copy_addrs(&addrs, res);
        if (!addrs.n) err = EVUTIL_EAI_NONAME;
    }
    if (res) evutil_freeaddrinfo(res);
    q->pending = NULL;
    if (q->cb) {
        if (!err) remember(q->r, q->host, q->port, &addrs);
        q->cb(q->arg, err, err ? NULL : &addrs);
    }
    free(q);
}

static struct evutil_addrinfo hints(int flags)
{
    struct evutil_addrinfo h;
    memset(&h, 0, sizeof h);
    h.ai_family = AF_UNSPEC;
    h.ai_socktype = SOCK_STREAM;
    h.ai_protocol = IPPROTO_TCP;
    h.ai_flags = flags;
    return h;
}

struct hr_resolve_req *hr_resolve(struct hr_resolver *r, const char *host, int port, hr_resolved_cb cb, void *arg)
{
    char service[8];
    snprintf(service, sizeof service, "%d", port);
    /* A numeric address needs no lookup (evutil answers it without I/O). */
    struct evutil_addrinfo h = hints(EVUTIL_AI_NUMERICHOST | EVUTIL_AI_NUMERICSERV), *res = NULL;
    if (evutil_getaddrinfo(host, service, &h, &res) == 0) {
        struct hr_addrs addrs;
        copy_addrs(&addrs, res);
        evutil_freeaddrinfo(res);
        cb(arg, addrs.n ? 0 : EVUTIL_EAI_NONAME, addrs.n ? &addrs : NULL);
        return NULL;
    }
    struct cached *c = lookup(r, host, port);
    if (c) {
        cb(arg, 0, &c->addrs);
        return NULL;
    }
    if (!r->dns) {
        r->dns = evdns_base_new(r->base, EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE);
        if (r->dns) evdns_base_load_hosts(r->dns, NULL);
    }
    if (!r->dns) {
        cb(arg, EVUTIL_EAI_FAIL, NULL);
        return NULL;
    }
    struct hr_resolve_req *q = calloc(1, sizeof *q);
    if (!q) {
        cb(arg, EVUTIL_EAI_MEMORY, NULL);
        return NULL;
    }
    q->r = r;
    q->cb = cb;
    q->arg = arg;
    q->port = port;
    snprintf(q->host, sizeof q->host, "%s", host);
    h = hints(EVUTIL_AI_NUMERICSERV | EVUTIL_AI_ADDRCONFIG);
    struct evdns_getaddrinfo_request *pending = evdns_getaddrinfo(r->dns, host, service, &h, on_answer, q);
    if (!pending) return NULL; /* answered at once (hosts file, or an error): q is freed */
    q->pending = pending;
    return q;
}

void hr_resolve_cancel(struct hr_resolve_req *q)
{
    if (!q) return;
    q->cb = NULL;
    if (q->pending) evdns_getaddrinfo_cancel(q->pending); /* on_answer frees q */
}
