/* stats.h — live counters: one shard per worker thread, summed when read
 * (/stats, /metrics, exporters). Recording takes only the caller's shard lock. */
#ifndef HR_STATS_H
#define HR_STATS_H
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "headroom/plugin.h"
#include "hist.h"
#include "api/api.h" /* hr_provider_name */

#define HR_MAX_MODELS 64
#define HR_MAX_STACKS 32
#define HR_NPROVIDERS 3        /* indexed by enum hr_provider */
#define HR_STATUS_MIN 100
#define HR_STATUS_MAX 599
#define HR_HISTORY_POINTS 100

enum hr_ttl { HR_TTL_5M = 0, HR_TTL_1H = 1 };

struct hr_prefix_cache {
    uint64_t requests;          /* requests whose answer carried usage */
    uint64_t hit_requests;      /* ... with cache_read_tokens > 0 */
    uint64_t read_tokens, write_tokens, uncached_input_tokens;
    uint64_t ttl_tokens[2], ttl_requests[2];
};

/* Everything a shard counts; a snapshot is the same struct summed. */
struct hr_stats_data {
    uint64_t requests_total, failed, cached, rate_limited, budget_rejected;
    uint64_t stream_errors; /* streams the provider ended with an error event (hr_event.stream_error) */
    uint64_t by_status[HR_STATUS_MAX - HR_STATUS_MIN + 1];
    uint64_t by_provider[HR_NPROVIDERS];
    uint64_t by_model[HR_MAX_MODELS + 1];  /* last slot: "other" */
    uint64_t by_stack[HR_MAX_STACKS + 1];
    uint64_t tokens_input, tokens_output, tokens_saved, tokens_sent;
    double ratio_sum;                      /* sum of per-request sent/input */
    uint64_t ratio_n;
    double cost_usd, savings_usd;
    double input_cost_usd, output_cost_usd, cache_savings_usd;  /* hr_stats_record_cost */
    double cache_avoided_usd;           /* response-cache hits: the price of the answers they replayed */
    uint64_t unpriced;
    struct hr_hist latency, overhead, ttfb;
    struct hr_prefix_cache prefix[HR_NPROVIDERS];
    size_t n_stages;                       /* transforms + 1 (pipeline_total, last) */
    struct hr_hist *stages;
    uint64_t *stage_failures;
};

/* Bounded, append-only label tables shared by all shards, so a label keeps
 * its index (and Prometheus series) for the life of the process. */
const char *hr_stats_model_name(size_t i);  /* NULL past the last; "other" at HR_MAX_MODELS */
const char *hr_stats_stack_name(size_t i);
size_t hr_stats_model_count(void);
size_t hr_stats_stack_count(void);


/* Call once before workers start: stage names in pipeline order. */
int hr_stats_init(size_t n_workers, const char *const *stage_names, size_t n_stages);
/* The daemon runs with optimize no (passthrough): /stats mode. */
void hr_stats_set_passthrough(int on);
int hr_stats_passthrough(void);
void hr_stats_shutdown(void);
/* Bind the calling thread to shard `i` (workers); others use shard 0. */
void hr_stats_bind_thread(size_t i);

size_t hr_stats_stage_count(void);          /* transforms + pipeline_total */
const char *hr_stats_stage_name(size_t i);

/* Count one completed request (proxy routes only). */
void hr_stats_record(const struct hr_event *ev);
/* Counters for requests that never reached the pipeline. */
void hr_stats_count_rejected(int status, int rate_limited, int budget);
/* The cost split of one request (its total goes in through hr_stats_record). */
void hr_stats_record_cost(double input_usd, double output_usd, double cache_savings_usd);
/* A response-cache hit replayed an answer that cost `usd` at the provider. */
void hr_stats_record_avoided(double usd);

/* Summed copy of every shard; free with hr_stats_snapshot_free. */
struct hr_stats_data *hr_stats_snapshot(void);
void hr_stats_snapshot_free(struct hr_stats_data *d);
/* Zero live counters (POST /stats/reset). */
void hr_stats_reset(void);

/* Session savings series: the housekeeping thread samples it. */
json_t *hr_stats_history_json(void);

double hr_now(void);            /* wall clock, Unix seconds */
/* hr_now, or $HEADROOM_TEST_NOW (Unix seconds, read on every call) when set:
 * the clock of everything with periods or expiry (budget, response cache,
 * rate limit), so tests can move time. */
double hr_clock_now(void);
double hr_monotonic_ms(void);   /* monotonic clock in ms */
double hr_uptime_seconds(void);
#endif
