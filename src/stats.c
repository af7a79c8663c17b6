/* stats.c — per-worker counter shards, label tables and the session series. */
#include <pthread.h>
#include <stdatomic.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "stats.h"

struct shard {
    pthread_mutex_t lock;
    struct hr_stats_data d;
};

struct label_table {
    pthread_mutex_t lock;      /* writers only; readers scan published entries */
    atomic_size_t n;
    size_t cap;
    char names[HR_MAX_MODELS][128];
};

static struct shard *shards;
static size_t n_shards;
static size_t stage_count;
static char **stage_names;
static _Thread_local struct shard *my_shard;
static struct label_table models = {.lock = PTHREAD_MUTEX_INITIALIZER, .cap = HR_MAX_MODELS};
static struct label_table stacks = {.lock = PTHREAD_MUTEX_INITIALIZER, .cap = HR_MAX_STACKS};
static double started_mono_ms;

static pthread_mutex_t history_lock = PTHREAD_MUTEX_INITIALIZER;
static double history[HR_HISTORY_POINTS][2];
static size_t history_len, history_head;
static uint64_t history_saved; /* = tokens.saved, kept beside the series */

double hr_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double hr_clock_now(void)
{
    const char *t = getenv("HEADROOM_TEST_NOW");
    if (t && *t) {
        char *end;
        double v = strtod(t, &end);
        if (!*end && v > 0 && isfinite(v)) return v;
    }
    return hr_now();
}

double hr_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6; /* a multiply: ~20 cycles less than a divide */
}

double hr_uptime_seconds(void) { return (hr_monotonic_ms() - started_mono_ms) / 1e3; }

/* Index of `name`, adding it while there is room; cap means "other".
 * Names are kept to 127 bytes (cut on a UTF-8 boundary) and compared as kept,
 * so a long name maps to one slot however often it comes. A client that
 * names its model or stack "other" lands in the overflow slot itself: with
 * a slot of its own, /stats showed two "other" entries as one, the second
 * overwriting the first. */
static size_t label_index(struct label_table *t, const char *full)
{
    char name[sizeof t->names[0]];
    size_t len = strlen(full);
    if (len >= sizeof name) {
        len = sizeof name - 1;
        while (len && ((unsigned char)full[len] & 0xC0) == 0x80) len--;
    }
    memcpy(name, full, len);
    name[len] = '\0';
    if (!strcmp(name, "other")) return t->cap;
    size_t n = atomic_load_explicit(&t->n, memory_order_acquire);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(t->names[i], name)) return i;
    if (n >= t->cap) return t->cap;
    pthread_mutex_lock(&t->lock);
    size_t idx = t->cap;
    n = atomic_load_explicit(&t->n, memory_order_relaxed);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(t->names[i], name)) { idx = i; break; }
    if (idx == t->cap && n < t->cap) {
        snprintf(t->names[n], sizeof t->names[n], "%s", name);
        atomic_store_explicit(&t->n, n + 1, memory_order_release);
        idx = n;
    }
    pthread_mutex_unlock(&t->lock);
    return idx;
}

static const char *label_name(struct label_table *t, size_t i)
{
    size_t n = atomic_load_explicit(&t->n, memory_order_acquire);
    if (i < n) return t->names[i];
    return i == t->cap ? "other" : NULL;
}

const char *hr_stats_model_name(size_t i) { return label_name(&models, i); }
const char *hr_stats_stack_name(size_t i) { return label_name(&stacks, i); }
size_t hr_stats_model_count(void) { return atomic_load(&models.n); }
size_t hr_stats_stack_count(void) { return atomic_load(&stacks.n); }

static int data_alloc(struct hr_stats_data *d, size_t n_stages)
{
    memset(d, 0, sizeof *d);
    d->n_stages = n_stages;
    d->stages = calloc(n_stages ? n_stages : 1, sizeof *d->stages);
    d->stage_failures = calloc(n_stages ? n_stages : 1, sizeof *d->stage_failures);
    return d->stages && d->stage_failures ? 0 : -12;
}

static void data_free(struct hr_stats_data *d)
{
    free(d->stages);
    free(d->stage_failures);
}

int hr_stats_init(size_t n_workers, const char *const *names, size_t n_transforms)
{
    started_mono_ms = hr_monotonic_ms();
    n_shards = n_workers ? n_workers : 1;
    stage_count = n_transforms + 1;
    stage_names = calloc(stage_count, sizeof *stage_names);
    shards = calloc(n_shards, sizeof *shards);
    if (!stage_names || !shards) return -12;
    for (size_t i = 0; i < n_transforms; i++) stage_names[i] = strdup(names[i]);
    stage_names[n_transforms] = strdup("pipeline_total");
    for (size_t i = 0; i < n_shards; i++) {
        pthread_mutex_init(&shards[i].lock, NULL);
        if (data_alloc(&shards[i].d, stage_count)) return -12;
    }
    return 0;
}

/* optimize no (--no-optimize): /stats says so, for clients that do not
 * read the daemon's config (headroom stats --url). Set once at start-up. */
static atomic_int passthrough_mode;
void hr_stats_set_passthrough(int on) { atomic_store(&passthrough_mode, on ? 1 : 0); }
int hr_stats_passthrough(void) { return atomic_load(&passthrough_mode); }

void hr_stats_shutdown(void)
{
    for (size_t i = 0; i < n_shards; i++) {
        data_free(&shards[i].d);
        pthread_mutex_destroy(&shards[i].lock);
    }
    for (size_t i = 0; i < stage_count; i++) free(stage_names[i]);
    free(stage_names);
    free(shards);
    shards = NULL;
    stage_names = NULL;
    n_shards = stage_count = 0;
}

void hr_stats_bind_thread(size_t i) { my_shard = shards ? &shards[i % n_shards] : NULL; }
size_t hr_stats_stage_count(void) { return stage_count; }
const char *hr_stats_stage_name(size_t i) { return i < stage_count ? stage_names[i] : NULL; }

static struct shard *current_shard(void) { return my_shard ? my_shard : shards; }

static void count_status(struct hr_stats_data *d, int status)
{
    if (status >= HR_STATUS_MIN && status <= HR_STATUS_MAX) d->by_status[status - HR_STATUS_MIN]++;
}

/* The savings series gets a point per credited saving, at the request's
 * completion second (points of one second are merged). */
static void history_add(double when, uint64_t saved)
{
    pthread_mutex_lock(&history_lock);
    history_saved += saved;
    size_t last = (history_head + HR_HISTORY_POINTS - 1) % HR_HISTORY_POINTS;
    if (history_len && (long long)history[last][0] == (long long)when) {
        history[last][1] = (double)history_saved;
    } else {
        history[history_head][0] = when;
        history[history_head][1] = (double)history_saved;
        history_head = (history_head + 1) % HR_HISTORY_POINTS;
        if (history_len < HR_HISTORY_POINTS) history_len++;
    }
    pthread_mutex_unlock(&history_lock);
}

void hr_stats_record(const struct hr_event *ev)
{
    struct shard *s = current_shard();
    if (!s) return;
    size_t provider = (unsigned)ev->provider < HR_NPROVIDERS ? (size_t)ev->provider : 0;
    /* Label lookups happen outside the shard lock: they may take a table lock. */
    size_t model = ev->model && *ev->model ? label_index(&models, ev->model) : SIZE_MAX;
    size_t stack = ev->stack && *ev->stack ? label_index(&stacks, ev->stack) : SIZE_MAX;

    pthread_mutex_lock(&s->lock);
    struct hr_stats_data *d = &s->d;
    d->requests_total++;
    if (ev->failed) d->failed++;
    if (ev->cached) d->cached++;
    if (ev->stream_error) d->stream_errors++;
    count_status(d, ev->status);
    d->by_provider[provider]++;
    if (model != SIZE_MAX) d->by_model[model]++;
    if (stack != SIZE_MAX) d->by_stack[stack]++;
    /* Token totals cover credited requests only, so input - sent = saved
     * holds for the totals as for each request (doc/stats.md). */
    if (ev->credited) {
        d->tokens_input += ev->tokens_input;
        d->tokens_sent += ev->tokens_sent;
        d->tokens_saved += ev->tokens_saved;
    }
    d->tokens_output += ev->tokens_output;
    if (ev->credited && ev->tokens_input > 0) {
        d->ratio_sum += (double)ev->tokens_sent / (double)ev->tokens_input;
        d->ratio_n++;
    }
    d->cost_usd += ev->cost_usd;
    d->savings_usd += ev->savings_usd;
    if (!ev->priced && ev->model && *ev->model) d->unpriced++;
    hr_hist_add(&d->latency, ev->latency_ms);
    if (ev->overhead_ms >= 0) hr_hist_add(&d->overhead, ev->overhead_ms); /* <0: never forwarded */
    if (ev->ttfb_ms >= 0) hr_hist_add(&d->ttfb, ev->ttfb_ms);

    int usage_seen = ev->provider_input_tokens || ev->cache_read_tokens || ev->cache_write_tokens ||
                     ev->tokens_output;
    if (usage_seen && provider) {
        struct hr_prefix_cache *pc = &d->prefix[provider];
        pc->requests++;
        if (ev->cache_read_tokens) pc->hit_requests++;
        pc->read_tokens += ev->cache_read_tokens;
        pc->write_tokens += ev->cache_write_tokens;
        pc->uncached_input_tokens += ev->provider_input_tokens;
        if (ev->cache_write_5m_tokens) {
            pc->ttl_tokens[HR_TTL_5M] += ev->cache_write_5m_tokens;
            pc->ttl_requests[HR_TTL_5M]++;
        }
        if (ev->cache_write_1h_tokens) {
            pc->ttl_tokens[HR_TTL_1H] += ev->cache_write_1h_tokens;
            pc->ttl_requests[HR_TTL_1H]++;
        }
    }
    for (size_t i = 0; i < ev->n_stages && i + 1 < d->n_stages; i++) {
        hr_hist_add(&d->stages[i], ev->stages[i].ms);
        if (ev->stages[i].failed) d->stage_failures[i]++;
    }
    if (ev->pipeline_ms >= 0 && d->n_stages) hr_hist_add(&d->stages[d->n_stages - 1], ev->pipeline_ms);
    pthread_mutex_unlock(&s->lock);
    if (ev->credited && ev->tokens_saved) history_add(ev->timestamp > 0 ? ev->timestamp : hr_now(), ev->tokens_saved);
}

void hr_stats_count_rejected(int status, int rate_limited, int budget)
{
    struct shard *s = current_shard();
    if (!s) return;
    pthread_mutex_lock(&s->lock);
    s->d.requests_total++;
    count_status(&s->d, status);
    if (rate_limited) s->d.rate_limited++;
    if (budget) s->d.budget_rejected++;
    pthread_mutex_unlock(&s->lock);
}

void hr_stats_record_cost(double input_usd, double output_usd, double cache_savings_usd)
{
    struct shard *s = current_shard();
    if (!s) return;
    pthread_mutex_lock(&s->lock);
    s->d.input_cost_usd += input_usd;
    s->d.output_cost_usd += output_usd;
    s->d.cache_savings_usd += cache_savings_usd;
    pthread_mutex_unlock(&s->lock);
}

void hr_stats_record_avoided(double usd)
{
    struct shard *s = current_shard();
    if (!s || !(usd > 0)) return;
    pthread_mutex_lock(&s->lock);
    s->d.cache_avoided_usd += usd;
    pthread_mutex_unlock(&s->lock);
}

static void data_merge(struct hr_stats_data *to, const struct hr_stats_data *from)
{
    to->requests_total += from->requests_total;
    to->failed += from->failed;
    to->stream_errors += from->stream_errors;
    to->cached += from->cached;
    to->rate_limited += from->rate_limited;
    to->budget_rejected += from->budget_rejected;
    for (size_t i = 0; i < sizeof to->by_status / sizeof *to->by_status; i++) to->by_status[i] += from->by_status[i];
    for (size_t i = 0; i < HR_NPROVIDERS; i++) {
        to->by_provider[i] += from->by_provider[i];
        struct hr_prefix_cache *a = &to->prefix[i];
        const struct hr_prefix_cache *b = &from->prefix[i];
        a->requests += b->requests;
        a->hit_requests += b->hit_requests;
        a->read_tokens += b->read_tokens;
        a->write_tokens += b->write_tokens;
        a->uncached_input_tokens += b->uncached_input_tokens;
        for (int t = 0; t < 2; t++) {
            a->ttl_tokens[t] += b->ttl_tokens[t];
            a->ttl_requests[t] += b->ttl_requests[t];
        }
    }
    for (size_t i = 0; i <= HR_MAX_MODELS; i++) to->by_model[i] += from->by_model[i];
    for (size_t i = 0; i <= HR_MAX_STACKS; i++) to->by_stack[i] += from->by_stack[i];
    to->tokens_input += from->tokens_input;
    to->tokens_output += from->tokens_output;
    to->tokens_saved += from->tokens_saved;
    to->tokens_sent += from->tokens_sent;
    to->ratio_sum += from->ratio_sum;
    to->ratio_n += from->ratio_n;
    to->cost_usd += from->cost_usd;
    to->savings_usd += from->savings_usd;
    to->input_cost_usd += from->input_cost_usd;
    to->output_cost_usd += from->output_cost_usd;
    to->cache_savings_usd += from->cache_savings_usd;
    to->cache_avoided_usd += from->cache_avoided_usd;
    to->unpriced += from->unpriced;
    hr_hist_merge(&to->latency, &from->latency);
    hr_hist_merge(&to->overhead, &from->overhead);
    hr_hist_merge(&to->ttfb, &from->ttfb);
    for (size_t i = 0; i < to->n_stages && i < from->n_stages; i++) {
        hr_hist_merge(&to->stages[i], &from->stages[i]);
        to->stage_failures[i] += from->stage_failures[i];
    }
}

struct hr_stats_data *hr_stats_snapshot(void)
{
    struct hr_stats_data *d = malloc(sizeof *d);
    if (!d || data_alloc(d, stage_count)) {
        if (d) data_free(d);
        free(d);
        return NULL;
    }
    for (size_t i = 0; i < n_shards; i++) {
        pthread_mutex_lock(&shards[i].lock);
        data_merge(d, &shards[i].d);
        pthread_mutex_unlock(&shards[i].lock);
    }
    return d;
}

void hr_stats_snapshot_free(struct hr_stats_data *d)
{
    if (!d) return;
    data_free(d);
    free(d);
}

void hr_stats_reset(void)
{
    for (size_t i = 0; i < n_shards; i++) {
        pthread_mutex_lock(&shards[i].lock);
        struct hr_hist *stages = shards[i].d.stages;
        uint64_t *failures = shards[i].d.stage_failures;
        size_t n = shards[i].d.n_stages;
        memset(&shards[i].d, 0, sizeof shards[i].d);
        memset(stages, 0, n * sizeof *stages);
        memset(failures, 0, n * sizeof *failures);
        shards[i].d.stages = stages;
        shards[i].d.stage_failures = failures;
        shards[i].d.n_stages = n;
        pthread_mutex_unlock(&shards[i].lock);
    }
    pthread_mutex_lock(&history_lock);
    history_len = history_head = 0;
    history_saved = 0;
    pthread_mutex_unlock(&history_lock);
}

json_t *hr_stats_history_json(void)
{
    json_t *arr = json_array();
    pthread_mutex_lock(&history_lock);
    size_t start = (history_head + HR_HISTORY_POINTS - history_len) % HR_HISTORY_POINTS;
    for (size_t k = 0; k < history_len; k++) {
        size_t i = (start + k) % HR_HISTORY_POINTS;
        time_t t = (time_t)history[i][0];
        struct tm tm;
        char ts[32];
        gmtime_r(&t, &tm);
        strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
        json_array_append_new(arr, json_pack("[sI]", ts, (json_int_t)history[i][1]));
    }
    pthread_mutex_unlock(&history_lock);
    return arr;
}
