/* admission.c — what may refuse or short-cut a request before it reaches a
 * provider: the per-worker max_connections, the spending budget, the
 * per-key rate limit, and the response cache. Each refusal is answered in
 * the wire format's error shape and still reaches the sinks as one event. */
#include <stdio.h>
#include <string.h>
#include <event2/buffer.h>
#include "cost.h"
#include "fleet.h"
#include "guard.h"
#include "http_server.h"
#include "log.h"
#include "proxy.h"
#include "ratelimit.h"
#include "respcache.h"
#include "stats.h"

#define LOGGER "headroom.proxy"

/* Routes that bill model tokens: gated by the budget whether or not
 * headroomd compresses them. */
int hr_admit_is_model_route(const char *path)
{
    static const char *const routes[] = {"/v1/completions", "/v1/embeddings", "/v1/messages/batches",
                                         "/v1/batches", NULL};
    if (hr_api_for_route("POST", path)) return 1;
    for (size_t i = 0; routes[i]; i++)
        if (!strcmp(path, routes[i])) return 1;
    return 0;
}

int hr_admit_connection(struct hr_worker *w, struct hr_req *req, const struct hr_api *api,
                        const char *method, const char *path)
{
    struct hr_daemon *d = w->d;
    /* A request that waited for Redis arrived before draining began (none
     * waits after): it is in flight, not new. */
    int draining = atomic_load_explicit(&d->stopping, memory_order_relaxed) && !hr_fleet_arrived_ms(req);
    if (draining || w->inflight >= d->cfg->max_connections) {
        char id[40];
        snprintf(id, sizeof id, "hr-%zx-%llx", w->index, ++w->next_request);
        hr_req_add_header(req, "x-headroom-request-id", id);
        hr_req_add_header(req, "Retry-After", "1");
        if (draining) hr_req_add_header(req, "Connection", "close");
        hr_send_api_error(req, api, 503, HR_API_ERR_OVERLOADED,
                          draining ? "headroomd is shutting down; retry (another instance may take the request)"
                                   : "headroomd is at max_connections concurrent requests on this worker; retry, or raise max_connections");
        hr_stats_count_rejected(503, 0, 0);
        hr_guard_count(draining ? HR_REFUSE_DRAINING : HR_REFUSE_OVERLOADED);
        hr_acct_refusal(w, id, api, path, NULL, 503, draining ? "shutting down" : "max_connections reached");
        return 1;
    }
    /* Budget spent: refused before anything is parsed or forwarded, on every
     * route that runs a model (also those headroomd does not compress). */
    char msg[300];
    long retry_after;
    if (!strcmp(method, "POST") && hr_admit_is_model_route(path) && hr_cost_budget_gate(msg, sizeof msg, &retry_after)) {
        char ra[24], id[40];
        snprintf(ra, sizeof ra, "%ld", retry_after);
        /* The refusal's id, as on every answer, names its request-log line. */
        snprintf(id, sizeof id, "hr-%zx-%llx", w->index, ++w->next_request);
        hr_req_add_header(req, "Retry-After", ra);
        hr_req_add_header(req, "x-headroom-request-id", id);
        hr_send_api_error(req, api, 429, HR_API_ERR_BUDGET, msg);
        hr_stats_count_rejected(429, 0, 1);
        hr_acct_refusal(w, id, api, path, NULL, 429, "budget exceeded");
        return 1;
    }
    return 0;
}

/* Answer from the response cache when it holds this request (checked on
 * the client's body, before compression). A hit sends no tokens anywhere,
 * so its event carries none; it replays the token headers of the answer it
 * reuses. */
int hr_admit_cache_key(struct hr_req *req, const struct hr_api *api, const char *path, const json_t *body,
                       uint8_t key[HR_RESPCACHE_KEY_LEN])
{
    const char *query = strchr(hr_req_uri(req), '?');
    const char *const hdrs[] = {"x-api-key", hr_req_header(req, "x-api-key"),
                                "anthropic-version", hr_req_header(req, "anthropic-version"),
                                "anthropic-beta", hr_req_header(req, "anthropic-beta"),
                                "openai-organization", hr_req_header(req, "openai-organization"),
                                "openai-project", hr_req_header(req, "openai-project"), NULL};
    struct hr_respcache_request r = {api->provider, path, query, body, hr_req_header(req, "authorization"), hdrs};
    return hr_respcache_key(&r, key);
}

int hr_admit_from_cache(struct proxy_req *p, const json_t *body)
{
    if (!hr_respcache_enabled()) return 0;
    if (hr_admit_cache_key(p->req, p->api, p->path, body, p->cache_key)) return 0; /* a stream: never cached */
    p->cacheable = 1;
    struct hr_respcache_entry e;
    if (hr_respcache_get(p->cache_key, &e)) return 0;
    struct hr_req *out = p->req;
    char v[32];
    hr_req_add_header(out, "Content-Type", e.content_type);
    hr_req_add_header(out, "x-headroom-cache", "hit");
    hr_req_add_header(out, "x-headroom-request-id", p->request_id);
    snprintf(v, sizeof v, "%llu", (unsigned long long)e.tokens_before);
    hr_req_add_header(out, "x-headroom-tokens-before", v);
    snprintf(v, sizeof v, "%llu", (unsigned long long)e.tokens_after);
    hr_req_add_header(out, "x-headroom-tokens-after", v);
    /* Nothing reached a provider: no compression saving is claimed (doc/stats.md),
     * and this answer cost nothing; what it avoided is cost.cache_avoided_usd. */
    hr_req_add_header(out, "x-headroom-tokens-saved", "0");
    hr_req_add_header(out, "x-headroom-cost-usd", "0.000000");
    hr_req_add_header(out, "x-headroom-savings-usd", "0.000000");
    p->cached = 1;
    /* The log line says what the headers say (before/after of the replayed
     * answer); a hit is never credited, so no total counts them. */
    p->pr.tokens_before = e.tokens_before;
    p->pr.tokens_after = e.tokens_after;
    hr_stats_record_avoided(e.cost_usd);
    hr_req_send(p->req, e.status, e.body, e.body_len);
    p->req = NULL;
    hr_acct_finish(p, e.status, 0, NULL);
    hr_respcache_entry_free(&e);
    return 1;
}

void hr_admit_cache_store(struct proxy_req *p)
{
    if (!p->cacheable || !p->req) return;
    hr_req_add_header(p->req, "x-headroom-cache", "miss");
    if (p->status != 200 || !p->body) return;
    char ct[256];
    struct hr_respcache_entry e = {200, (char *)hr_req_out_header(p->req, "content-type", ct, sizeof ct),
                                   (char *)evbuffer_pullup(p->body, -1), evbuffer_get_length(p->body),
                                   p->pr.tokens_before, p->pr.tokens_after, hr_acct_cost_so_far(p)};
    hr_respcache_put(p->cache_key, &e);
}

int hr_admit_rate_key(const uint8_t key[HR_SHA256_LEN], uint64_t tokens, int charge, char *msg, size_t msglen,
                      int *retry_after_s)
{
    struct hr_ratelimit_verdict v;
    if (hr_ratelimit_admit(key, tokens, charge, hr_clock_now(), &v) != HR_RATELIMIT_LIMITED) return 0;
    const char *unit = !strcmp(v.limit, "tokens") ? "tpm" : "rpm";
    snprintf(msg, msglen,
             "headroomd rate limit reached: %llu %s per minute per API key (rate_limit_%s); retry after %d s, "
             "or raise rate_limit_%s in headroom.conf", (unsigned long long)v.per_minute, v.limit, unit,
             v.retry_after_s, unit);
    *retry_after_s = v.retry_after_s;
    return 1;
}

void hr_admit_rate_key_of(const char *authorization, const char *x_api_key, uint8_t key[HR_SHA256_LEN])
{
    hr_ratelimit_key(authorization && *authorization ? authorization : x_api_key, key);
}

/* Refuse a request over its API key's rate limit: 429 in the format's
 * shape with Retry-After. */
int hr_admit_rate(struct proxy_req *p, uint64_t tokens, int charge)
{
    if (!hr_ratelimit_enabled()) return 0;
    uint8_t key[HR_SHA256_LEN];
    hr_admit_rate_key_of(hr_req_header(p->req, "authorization"), hr_req_header(p->req, "x-api-key"), key);
    char msg[320], secs[16];
    int retry_after;
    if (!hr_admit_rate_key(key, tokens, charge, msg, sizeof msg, &retry_after)) return 0;
    snprintf(secs, sizeof secs, "%d", retry_after);
    hr_req_add_header(p->req, "Retry-After", secs);
    hr_req_add_header(p->req, "x-headroom-request-id", p->request_id);
    hr_send_api_error(p->req, p->api, 429, HR_API_ERR_RATE_LIMIT, msg);
    p->req = NULL;
    hr_stats_count_rejected(429, 1, 0);
    hr_acct_refusal(p->w, p->request_id, p->api, p->path, p->stack, 429, "rate limited");
    HR_DEBUG(LOGGER, "%s %s: %s", p->request_id, p->path, msg);
    return 1;
}
