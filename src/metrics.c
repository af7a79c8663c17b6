/* metrics.c — walks a stats snapshot as metric families (names from
 * doc/metrics.md). Histograms are in milliseconds. */
#include <stdio.h>
#include <string.h>
#include "conn_counters.h"
#include "cost.h"
#include "hist.h"
#include "host.h"
#include "metrics.h"
#include "refusals.h"
#include "state_dir.h"
#include "sinks.h"
#include "stats.h"
#include "ws_counters.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif

struct visit {
    hr_metric_visit_fn fn;
    void *ud;
    struct hr_metric_family fam;
};

static void family(struct visit *v, const char *name, enum hr_metric_type type, const char *help, size_t n_labels,
                   const char *const *labels)
{
    v->fam = (struct hr_metric_family){sizeof v->fam, name, help, type, n_labels, labels};
}

static void value(struct visit *v, const char *const *label_values, double x)
{
    struct hr_metric_sample s = {.struct_size = sizeof s, .label_values = label_values, .value = x};
    v->fn(v->ud, &v->fam, &s);
}

static void scalar(struct visit *v, const char *name, enum hr_metric_type type, const char *help, double x)
{
    family(v, name, type, help, 0, NULL);
    value(v, NULL, x);
}

static void histogram(struct visit *v, const char *const *label_values, const struct hr_hist *h)
{
    uint64_t cum[HR_HIST_PROM + 1];
    hr_hist_cumulative(h, cum);
    struct hr_metric_sample s = {.struct_size = sizeof s, .label_values = label_values, .n_buckets = HR_HIST_PROM + 1,
                                 .bucket_upper = hr_hist_prom_bounds, .bucket_cumulative = cum, .count = h->count, .sum = h->sum_ms};
    v->fn(v->ud, &v->fam, &s);
}

static const char *const L_PROVIDER[] = {"provider"};
static const char *const L_MODEL[] = {"model"};
static const char *const L_STACK[] = {"stack"};
static const char *const L_TRANSFORM[] = {"transform"};
static const char *const L_PROVIDER_TTL[] = {"provider", "ttl"};
static const char *const L_SINK[] = {"sink"};
static const char *const L_VERSION[] = {"version"};
static const char *const L_CODE[] = {"code"};
static const char *const L_REASON[] = {"reason"};
static const char *const L_WORKER[] = {"worker"};

static void per_provider(struct visit *v, const char *name, const char *help, const struct hr_stats_data *d,
                         size_t offset)
{
    family(v, name, HR_METRIC_COUNTER, help, 1, L_PROVIDER);
    for (int p = 1; p < HR_NPROVIDERS; p++) {
        const char *lv[] = {hr_provider_name(p)};
        value(v, lv, (double)*(const uint64_t *)((const char *)&d->prefix[p] + offset));
    }
}

/* One sample per label of a bounded table, the overflow slot (index cap) as
 * "other". A model or stack a client names "other" is counted in that slot
 * (stats.c), so no second series has the same label set. */
static void bounded(struct visit *v, const uint64_t *counts, size_t cap, const char *(*name)(size_t))
{
    for (size_t i = 0; i < cap; i++) {
        const char *n = name(i);
        if (n && counts[i]) value(v, (const char *const[]){n}, (double)counts[i]);
    }
    if (counts[cap]) value(v, (const char *const[]){"other"}, (double)counts[cap]);
}

int hr_metrics_visit(hr_metric_visit_fn fn, void *ud)
{
    struct hr_stats_data *d = hr_stats_snapshot();
    if (!d) return HR_ENOMEM;
    struct visit v = {.fn = fn, .ud = ud};

    scalar(&v, "headroom_up", HR_METRIC_GAUGE, "1 while headroomd is serving", 1);
    family(&v, "headroom_build_info", HR_METRIC_GAUGE, "headroomd version", 1, L_VERSION);
    value(&v, (const char *const[]){PACKAGE_VERSION}, 1);
    scalar(&v, "headroom_start_time_seconds", HR_METRIC_GAUGE, "Start time of the process (Unix seconds)", hr_now() - hr_uptime_seconds());
    scalar(&v, "headroom_requests_total", HR_METRIC_COUNTER, "Requests proxied", (double)d->requests_total);
    family(&v, "headroom_requests_by_provider", HR_METRIC_COUNTER, "Requests by provider", 1, L_PROVIDER);
    for (int p = 1; p < HR_NPROVIDERS; p++) value(&v, (const char *const[]){hr_provider_name(p)}, (double)d->by_provider[p]);
    family(&v, "headroom_requests_by_model", HR_METRIC_COUNTER, "Requests by model (64 models, then other)", 1, L_MODEL);
    bounded(&v, d->by_model, HR_MAX_MODELS, hr_stats_model_name);
    family(&v, "headroom_requests_by_stack", HR_METRIC_COUNTER, "Requests by X-Headroom-Stack (32, then other)", 1, L_STACK);
    bounded(&v, d->by_stack, HR_MAX_STACKS, hr_stats_stack_name);
    family(&v, "headroom_responses_total", HR_METRIC_COUNTER, "Responses sent to clients by HTTP status code", 1, L_CODE);
    for (int st = HR_STATUS_MIN; st <= HR_STATUS_MAX; st++) {
        uint64_t n = d->by_status[st - HR_STATUS_MIN];
        char code[12]; /* an int, whatever the compiler can prove of st */
        snprintf(code, sizeof code, "%d", st);
        if (n) value(&v, (const char *const[]){code}, (double)n);
    }
    family(&v, "headroom_refusals_total", HR_METRIC_COUNTER,
           "Requests refused before reaching a provider, by reason (limits, slow clients, Host, cross-site, tokens, shutdown)",
           1, L_REASON);
    for (size_t i = 0; hr_guard_refusal_name(i); i++)
        value(&v, (const char *const[]){hr_guard_refusal_name(i)}, (double)hr_guard_refusals(i));
    scalar(&v, "headroom_accept_errors_total", HR_METRIC_COUNTER,
           "accept() failures on the listening socket (no file descriptors left); accepts pause meanwhile",
           (double)hr_guard_accept_errors());
    family(&v, "headroom_client_connections", HR_METRIC_GAUGE,
           "Client connections open now, by worker (balance_connections yes keeps them within one of each other)", 1,
           L_WORKER);
    for (size_t w = 0; hr_conn_open(w) >= 0; w++) {
        char index[24];
        snprintf(index, sizeof index, "%zu", w);
        value(&v, (const char *const[]){index}, (double)hr_conn_open(w));
    }
    scalar(&v, "headroom_upstream_connections_opened_total", HR_METRIC_COUNTER,
           "Upstream connections established since start (a TCP connect, and a TLS handshake for https); against "
           "headroom_requests_total, how often a request could not reuse a kept one",
           (double)hr_upstream_opened_total());
    family(&v, "headroom_upstream_connections_idle", HR_METRIC_GAUGE,
           "Upstream connections kept open for reuse now, by worker (native client; upstream_keepalive)", 1, L_WORKER);
    for (size_t w = 0; hr_upstream_counts(w); w++) {
        char index[24];
        snprintf(index, sizeof index, "%zu", w);
        value(&v, (const char *const[]){index},
              (double)atomic_load_explicit(&hr_upstream_counts(w)->idle, memory_order_relaxed));
    }
    scalar(&v, "headroom_websocket_connections", HR_METRIC_GAUGE,
           "Responses API WebSockets relayed and open now (each holds one of max_connections)", (double)hr_ws_open_now());
    scalar(&v, "headroom_websocket_connections_total", HR_METRIC_COUNTER,
           "Responses API WebSockets relayed since start", (double)hr_ws_opened());
    scalar(&v, "headroom_websocket_messages_total", HR_METRIC_COUNTER,
           "response.create messages relayed over WebSockets (each is also one request in headroom_requests_total)",
           (double)hr_ws_messages());
    scalar(&v, "headroom_state_write_errors_total", HR_METRIC_COUNTER,
           "Failed writes of state files (budget) in the state directory", (double)hr_state_write_errors());
    scalar(&v, "headroom_requests_failed_total", HR_METRIC_COUNTER, "Requests headroomd could not answer", (double)d->failed);
    scalar(&v, "headroom_requests_stream_errors_total", HR_METRIC_COUNTER,
           "Streamed answers the provider ended with an error event (booked with the stream's status, not failed)",
           (double)d->stream_errors);
    scalar(&v, "headroom_requests_cached_total", HR_METRIC_COUNTER, "Requests answered from the response cache", (double)d->cached);
    scalar(&v, "headroom_requests_rate_limited_total", HR_METRIC_COUNTER, "Requests refused by the rate limit", (double)d->rate_limited);
    scalar(&v, "headroom_budget_rejected_total", HR_METRIC_COUNTER, "Requests refused by the budget", (double)d->budget_rejected);
    double budget_spent, budget_limit;
    int budget_set = hr_cost_budget_figures(&budget_spent, &budget_limit);
    scalar(&v, "headroom_budget_spent_usd", HR_METRIC_GAUGE, "Spend in the current budget period (USD)", budget_spent);
    if (budget_set) scalar(&v, "headroom_budget_limit_usd", HR_METRIC_GAUGE, "Budget limit per period (USD)", budget_limit);
    scalar(&v, "headroom_tokens_input_total", HR_METRIC_COUNTER, "Input tokens before compression", (double)d->tokens_input);
    scalar(&v, "headroom_tokens_output_total", HR_METRIC_COUNTER, "Output tokens reported by providers", (double)d->tokens_output);
    scalar(&v, "headroom_tokens_saved_total", HR_METRIC_COUNTER, "Input tokens removed by compression", (double)d->tokens_saved);
    scalar(&v, "headroom_tokens_sent_total", HR_METRIC_COUNTER, "Input tokens forwarded after compression", (double)d->tokens_sent);
    scalar(&v, "headroom_cost_usd_total", HR_METRIC_COUNTER, "Provider cost of proxied requests (USD)", d->cost_usd);
    scalar(&v, "headroom_savings_usd_total", HR_METRIC_COUNTER, "Compression savings at list input price (USD)", d->savings_usd);
    scalar(&v, "headroom_cache_avoided_usd_total", HR_METRIC_COUNTER,
           "Provider price of the answers the response cache replayed (USD): spend avoided, not compression savings",
           d->cache_avoided_usd);
    scalar(&v, "headroom_requests_unpriced_total", HR_METRIC_COUNTER, "Requests for a model with no known price (their USD figures are 0)",
           (double)d->unpriced);

    static const struct { const char *name, *help; size_t off; } hists[] = {
        {"headroom_latency_ms", "Request latency, from the whole request read to the answer's last byte (ms)", offsetof(struct hr_stats_data, latency)},
        {"headroom_overhead_ms", "Time spent before forwarding (ms)", offsetof(struct hr_stats_data, overhead)},
        {"headroom_ttfb_ms", "Forward to first upstream byte (ms)", offsetof(struct hr_stats_data, ttfb)},
    };
    char max_name[64];
    for (size_t i = 0; i < 3; i++) {
        const struct hr_hist *h = (const struct hr_hist *)((const char *)d + hists[i].off);
        family(&v, hists[i].name, HR_METRIC_HISTOGRAM, hists[i].help, 0, NULL);
        histogram(&v, NULL, h);
        snprintf(max_name, sizeof max_name, "%s_max", hists[i].name);
        scalar(&v, max_name, HR_METRIC_GAUGE, "Largest value seen (ms)", h->max_ms);
    }
    family(&v, "headroom_transform_timing_ms", HR_METRIC_HISTOGRAM, "Time per pipeline stage (ms)", 1, L_TRANSFORM);
    for (size_t i = 0; i < d->n_stages; i++) histogram(&v, (const char *const[]){hr_stats_stage_name(i)}, &d->stages[i]);
    family(&v, "headroom_transform_timing_ms_max", HR_METRIC_GAUGE, "Slowest run per pipeline stage (ms)", 1, L_TRANSFORM);
    for (size_t i = 0; i < d->n_stages; i++) value(&v, (const char *const[]){hr_stats_stage_name(i)}, d->stages[i].max_ms);
    family(&v, "headroom_transform_failures_total", HR_METRIC_COUNTER, "Stage runs undone (error or over stage_budget_ms; fail open)",
           1, L_TRANSFORM);
    for (size_t i = 0; i + 1 < d->n_stages; i++) value(&v, (const char *const[]){hr_stats_stage_name(i)}, (double)d->stage_failures[i]);

    per_provider(&v, "headroom_provider_cache_requests_total", "Answers that carried usage", d, offsetof(struct hr_prefix_cache, requests));
    per_provider(&v, "headroom_provider_cache_hit_requests_total", "Answers with provider cache reads", d, offsetof(struct hr_prefix_cache, hit_requests));
    per_provider(&v, "headroom_cache_read_tokens_total", "Provider prompt-cache read tokens", d, offsetof(struct hr_prefix_cache, read_tokens));
    per_provider(&v, "headroom_cache_write_tokens_total", "Provider prompt-cache write tokens", d, offsetof(struct hr_prefix_cache, write_tokens));
    per_provider(&v, "headroom_cache_uncached_input_tokens_total", "Provider-reported input tokens neither read from nor written to the prompt cache",
                 d, offsetof(struct hr_prefix_cache, uncached_input_tokens));
    static const char *const ttl_names[] = {"5m", "1h"};
    family(&v, "headroom_cache_write_ttl_tokens_total", HR_METRIC_COUNTER, "Cache write tokens by observed TTL bucket", 2, L_PROVIDER_TTL);
    for (int p = 1; p < HR_NPROVIDERS; p++)
        for (int t = 0; t < 2; t++) value(&v, (const char *const[]){hr_provider_name(p), ttl_names[t]}, (double)d->prefix[p].ttl_tokens[t]);
    family(&v, "headroom_cache_write_ttl_requests_total", HR_METRIC_COUNTER, "Requests writing each TTL bucket", 2, L_PROVIDER_TTL);
    for (int p = 1; p < HR_NPROVIDERS; p++)
        for (int t = 0; t < 2; t++) value(&v, (const char *const[]){hr_provider_name(p), ttl_names[t]}, (double)d->prefix[p].ttl_requests[t]);

    json_t *sinks = hr_sinks_stats_json();
    const char *name;
    json_t *s;
    family(&v, "headroom_sink_events_dropped_total", HR_METRIC_COUNTER, "Events a full sink queue dropped", 1, L_SINK);
    json_object_foreach(sinks, name, s) value(&v, (const char *const[]){name}, (double)json_integer_value(json_object_get(s, "dropped")));
    family(&v, "headroom_sink_events_total", HR_METRIC_COUNTER, "Events a sink has received", 1, L_SINK);
    json_object_foreach(sinks, name, s) value(&v, (const char *const[]){name}, (double)json_integer_value(json_object_get(s, "events")));
    family(&v, "headroom_sink_queue_length", HR_METRIC_GAUGE, "Events waiting in a sink's queue", 1, L_SINK);
    json_object_foreach(sinks, name, s) value(&v, (const char *const[]){name}, (double)json_integer_value(json_object_get(s, "queued")));
    json_decref(sinks);
    hr_stats_snapshot_free(d);
    for (size_t i = 0; i < hr_metrics_source_count(); i++) {
        const struct hr_metrics_source *src = hr_metrics_source_at(i);
        src->fn(src->state, fn, ud);
    }
    return HR_OK;
}
