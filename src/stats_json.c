/* stats_json.c — renders a stats snapshot as the /stats document defined in
 * doc/stats.md, plus the blocks plugins contribute. */
#include <math.h>
#include <string.h>
#include "ccr.h"
#include "conn_counters.h"
#include "numfmt.h"
#include "cost.h"
#include "host.h"
#include "ratelimit.h"
#include "respcache.h"
#include "sinks.h"
#include "stats.h"
#include "stats_json.h"
#include "telemetry.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif

double hr_round(double v, int decimals) { return hr_numfmt_round(v, decimals) + 0.0; /* + 0.0: no "-0" */ }

static double pct(uint64_t part, uint64_t whole)
{
    return whole ? hr_round(100.0 * (double)part / (double)whole, 2) : 0.0;
}

static json_t *hist_json(const struct hr_hist *h, int with_p50)
{
    json_t *o = json_pack("{s:I,s:f}", "count", (json_int_t)h->count, "average_ms", hr_round(hr_hist_average(h), 3));
    if (with_p50) json_object_set_new(o, "p50_ms", json_real(hr_round(hr_hist_quantile(h, 0.50), 3)));
    json_object_set_new(o, "p99_ms", json_real(hr_round(hr_hist_quantile(h, 0.99), 3)));
    json_object_set_new(o, "max_ms", json_real(hr_round(h->max_ms, 3)));
    return o;
}

static json_t *requests_json(const struct hr_stats_data *d)
{
    json_t *by_status = json_object(), *by_provider = json_object(), *by_model = json_object(),
           *by_stack = json_object();
    char code[12]; /* an int, whatever the compiler can prove of s */
    for (int s = HR_STATUS_MIN; s <= HR_STATUS_MAX; s++) {
        uint64_t n = d->by_status[s - HR_STATUS_MIN];
        if (!n) continue;
        snprintf(code, sizeof code, "%d", s);
        json_object_set_new(by_status, code, json_integer((json_int_t)n));
    }
    for (int p = 0; p < HR_NPROVIDERS; p++)
        if (d->by_provider[p]) json_object_set_new(by_provider, hr_provider_name(p), json_integer((json_int_t)d->by_provider[p]));
    for (size_t i = 0; i <= HR_MAX_MODELS; i++)
        if (d->by_model[i]) json_object_set_new(by_model, hr_stats_model_name(i), json_integer((json_int_t)d->by_model[i]));
    for (size_t i = 0; i <= HR_MAX_STACKS; i++)
        if (d->by_stack[i]) json_object_set_new(by_stack, hr_stats_stack_name(i), json_integer((json_int_t)d->by_stack[i]));
    return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:o,s:o,s:o,s:o}", "total", (json_int_t)d->requests_total, "cached",
                     (json_int_t)d->cached, "rate_limited", (json_int_t)d->rate_limited, "budget_rejected",
                     (json_int_t)d->budget_rejected, "failed", (json_int_t)d->failed, "stream_errors",
                     (json_int_t)d->stream_errors, "by_status", by_status,
                     "by_provider", by_provider, "by_model", by_model, "by_stack", by_stack);
}

static json_t *tokens_json(const struct hr_stats_data *d)
{
    double ratio = d->ratio_n ? hr_round(d->ratio_sum / (double)d->ratio_n, 4) : 1.0;
    return json_pack("{s:I,s:I,s:I,s:I,s:f,s:f}", "input", (json_int_t)d->tokens_input, "output",
                     (json_int_t)d->tokens_output, "saved", (json_int_t)d->tokens_saved, "sent",
                     (json_int_t)d->tokens_sent, "savings_percent", pct(d->tokens_saved, d->tokens_input),
                     "compression_ratio_avg", ratio);
}

static json_t *prefix_json(const struct hr_prefix_cache *pc)
{
    uint64_t ttl_total = pc->ttl_tokens[0] + pc->ttl_tokens[1];
    json_t *active = json_array();
    if (pc->ttl_tokens[HR_TTL_5M]) json_array_append_new(active, json_string("5m"));
    if (pc->ttl_tokens[HR_TTL_1H]) json_array_append_new(active, json_string("1h"));
    return json_pack("{s:I,s:I,s:I,s:I,s:I,s:f,s:{s:{s:I,s:I},s:{s:I,s:I}},s:{s:f,s:f,s:o}}", "requests",
                     (json_int_t)pc->requests, "hit_requests", (json_int_t)pc->hit_requests, "cache_read_tokens",
                     (json_int_t)pc->read_tokens, "cache_write_tokens", (json_int_t)pc->write_tokens,
                     "uncached_input_tokens", (json_int_t)pc->uncached_input_tokens, "hit_rate",
                     pct(pc->hit_requests, pc->requests), "observed_ttl_buckets", "5m", "tokens",
                     (json_int_t)pc->ttl_tokens[HR_TTL_5M], "requests", (json_int_t)pc->ttl_requests[HR_TTL_5M],
                     "1h", "tokens", (json_int_t)pc->ttl_tokens[HR_TTL_1H], "requests",
                     (json_int_t)pc->ttl_requests[HR_TTL_1H], "observed_ttl_mix", "5m_pct",
                     pct(pc->ttl_tokens[HR_TTL_5M], ttl_total), "1h_pct", pct(pc->ttl_tokens[HR_TTL_1H], ttl_total),
                     "active_buckets", active);
}

static json_t *prefix_cache_json(const struct hr_stats_data *d)
{
    json_t *by = json_object();
    struct hr_prefix_cache total = {0};
    for (int p = 1; p < HR_NPROVIDERS; p++) {
        const struct hr_prefix_cache *pc = &d->prefix[p];
        total.requests += pc->requests;
        total.hit_requests += pc->hit_requests;
        total.read_tokens += pc->read_tokens;
        total.write_tokens += pc->write_tokens;
        total.uncached_input_tokens += pc->uncached_input_tokens;
        for (int t = 0; t < 2; t++) {
            total.ttl_tokens[t] += pc->ttl_tokens[t];
            total.ttl_requests[t] += pc->ttl_requests[t];
        }
        if (pc->requests) json_object_set_new(by, hr_provider_name(p), prefix_json(pc));
    }
    return json_pack("{s:o,s:o}", "by_provider", by, "totals", prefix_json(&total));
}

static json_t *pipeline_json(const struct hr_stats_data *d)
{
    json_t *o = json_object();
    for (size_t i = 0; i < d->n_stages; i++) {
        json_t *h = hist_json(&d->stages[i], 0);
        if (i + 1 < d->n_stages) json_object_set_new(h, "failures", json_integer((json_int_t)d->stage_failures[i]));
        json_object_set_new(o, hr_stats_stage_name(i), h);
    }
    return o;
}

json_t *hr_stats_json(int loopback)
{
    struct hr_stats_data *d = hr_stats_snapshot();
    if (!d) return json_pack("{s:s}", "error", "out of memory");
    json_t *o = json_object();
    json_object_set_new(o, "version", json_string(PACKAGE_VERSION));
    json_object_set_new(o, "uptime_seconds", json_real(hr_round(hr_uptime_seconds(), 1)));
    json_object_set_new(o, "mode", json_string(hr_stats_passthrough() ? "passthrough" : "optimize"));
    json_object_set_new(o, "requests", requests_json(d));
    json_object_set_new(o, "tokens", tokens_json(d));
    json_object_set_new(o, "cost", hr_cost_stats_json(d));
    json_object_set_new(o, "latency", hist_json(&d->latency, 1));
    json_object_set_new(o, "overhead", hist_json(&d->overhead, 1));
    json_object_set_new(o, "ttfb", hist_json(&d->ttfb, 1));
    json_object_set_new(o, "pipeline_timing", pipeline_json(d));
    json_object_set_new(o, "savings_history", hr_stats_history_json());
    json_object_set_new(o, "prefix_cache", prefix_cache_json(d));
    json_object_set_new(o, "budget", hr_cost_budget_json(d));
    json_object_set_new(o, "ccr", hr_ccr_stats_json());
    json_object_set_new(o, "cache", hr_respcache_stats_json());
    json_object_set_new(o, "rate_limit", hr_ratelimit_stats_json());
    json_object_set_new(o, "upstream", json_pack("{s:I,s:I}", "connections_opened",
                                                 (json_int_t)hr_upstream_opened_total(), "idle_connections",
                                                 (json_int_t)hr_upstream_idle_total()));
    json_object_set_new(o, "sinks", hr_sinks_stats_json());
    json_object_set_new(o, "telemetry", hr_telemetry_stats_json()); /* the beacon sink's block replaces it */
    for (size_t i = 0; i < hr_stats_block_count(); i++) {
        const struct hr_stats_block *b = hr_stats_block_at(i);
        json_t *v = b->fn_for ? b->fn_for(b->state, loopback) : b->fn(b->state);
        if (v) json_object_set_new(o, b->key, v);
    }
    hr_stats_snapshot_free(d);
    return o;
}
