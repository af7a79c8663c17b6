/* cost.c — the daemon's price table and budget: which files, pricing a
 * finished request, the budget gate before forwarding, /stats blocks. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "budget.h"
#include "cost.h"
#include "numfmt.h"
#include "state_dir.h"
#include "host.h"
#include "stats.h"
#include "log.h"
#include "pricing.h"
#include "stats_json.h"
#include "uninstalled.h"

#define LOGGER "headroom.cost"

#ifndef HR_PKGDATADIR
#define HR_PKGDATADIR ""
#endif
#ifndef HR_SRCCONFDIR
#define HR_SRCCONFDIR ""
#endif

/* Set before workers start; a reload (SIGHUP) swaps the table under the
 * write lock and publishes a new or no budget through the atomic pointer.
 * A budget switched off stays allocated (workers may hold it) and keeps
 * being flushed until shutdown. */
static pthread_rwlock_t prices_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct hr_prices *prices;
/* Bumped whenever `prices` is replaced: a worker's remembered lookup (below)
 * is valid only for the table it was made in. */
static atomic_uint prices_gen = 1;
static char *prices_path;
static _Atomic(struct hr_budget *) budget;
#define MAX_RETIRED 16
static struct hr_budget *retired[MAX_RETIRED];
static size_t n_retired;
static pthread_mutex_t retired_lock = PTHREAD_MUTEX_INITIALIZER;
static int flusher_started;
static _Atomic int budget_period; /* enum hr_budget_period of the running budget */
static void (*budget_remote_add)(void *ctx, double usd, double now);
static void *budget_remote_ctx;

static int readable(const char *path) { return *path && access(path, R_OK) == 0; }

static char *default_prices_path(void)
{
    const char *dirs[2] = {HR_PKGDATADIR, HR_SRCCONFDIR};
    if (hr_running_uninstalled()) {
        dirs[0] = HR_SRCCONFDIR;
        dirs[1] = HR_PKGDATADIR;
    }
    for (int i = 0; i < 2; i++) {
        if (!*dirs[i]) continue;
        char *p;
        if (asprintf(&p, "%s/prices.json", dirs[i]) < 0) return NULL;
        if (readable(p)) return p;
        free(p);
    }
    return NULL;
}

/* Days since a YYYY-MM-DD date at the (test-able) clock's now; -1 when the
 * text is not such a date. */
static long days_since(const char *date)
{
    struct tm tm = {0};
    const char *end = date ? strptime(date, "%Y-%m-%d", &tm) : NULL;
    if (!end || *end) return -1;
    return (long)floor((hr_clock_now() - (double)timegm(&tm)) / 86400.0);
}

/* Prices change: a table older than this many days gets one WARN at start. */
#define PRICES_STALE_DAYS 90

static void warn_if_stale(const char *path, const struct hr_prices *table)
{
    long age = days_since(hr_prices_version(table));
    if (age > PRICES_STALE_DAYS)
        HR_WARN(LOGGER, "%s: prices_version %s is %ld days old; costs may be wrong: check the providers' pricing pages "
                "and update the file, or point `prices` in headroom.conf at your own", path, hr_prices_version(table),
                age);
}

/* --check-config: the budget as configured, never opened. */
static double check_budget_usd;
static int check_budget_period;
static int check_budget_shared; /* backend redis: the spend is there, not in budget.json */

static char *budget_state_path(void)
{
    char *out = NULL;
    return asprintf(&out, "%s/budget.json", hr_state_dir()) < 0 ? NULL : out;
}

static int budget_failing; /* housekeeping thread only */

static void flush_one(struct hr_budget *b)
{
    if (!b) return;
    int rc = hr_budget_flush(b);
    /* Once per outage, not once per retry: a read-only disk would otherwise
     * log every second. /health and headroom_state_write_errors_total show it meanwhile. */
    hr_state_write_result("budget", rc);
    if (rc && !budget_failing)
        HR_WARN(LOGGER, "could not write the budget file in %s: %s; spend stays in memory and is retried every second "
                "(check the state directory is writable, or set HEADROOM_WORKSPACE_DIR)", hr_state_dir(), strerror(-rc));
    else if (!rc && budget_failing)
        HR_INFO(LOGGER, "budget file writable again: spend saved");
    budget_failing = rc != 0;
}
static void flush_timer(void *state)
{
    (void)state;
    flush_one(atomic_load(&budget));
    pthread_mutex_lock(&retired_lock);
    for (size_t i = 0; i < n_retired; i++) flush_one(retired[i]);
    pthread_mutex_unlock(&retired_lock);
}

/* The price table named by the config (or the installed one); 0 with
 * *out NULL when there is none. */
static int load_prices(const struct hr_config *c, struct hr_prices **out, char **out_path, char *err, size_t errlen)
{
    *out = NULL;
    *out_path = c->prices_file ? strdup(c->prices_file) : default_prices_path();
    if (!*out_path) return 0;
    int rc = hr_prices_load_file(*out_path, out, err, errlen);
    if (rc) {
        free(*out_path);
        *out_path = NULL;
    }
    return rc;
}

int hr_cost_init(const struct hr_config *c, int check_only, char *err, size_t errlen)
{
    int rc = load_prices(c, &prices, &prices_path, err, errlen);
    atomic_fetch_add(&prices_gen, 1);
    if (rc) return rc;
    if (prices) {
        warn_if_stale(prices_path, prices);
    } else {
        HR_WARN(LOGGER, "no price table found (prices.json in %s or %s); every request is unpriced: set `prices FILE` "
                "in headroom.conf", *HR_PKGDATADIR ? HR_PKGDATADIR : "(no pkgdatadir)",
                *HR_SRCCONFDIR ? HR_SRCCONFDIR : "(no source tree)");
    }
    if (c->budget_usd > 0) {
        int period = hr_budget_period_parse(c->budget_period ? c->budget_period : "daily");
        if (period < 0) {
            snprintf(err, errlen, "budget_period '%s' must be hourly, daily, weekly or monthly", c->budget_period);
            return -EINVAL;
        }
        if (check_only) { /* --check-config touches no file: the budget is only described */
            check_budget_usd = c->budget_usd;
            check_budget_period = period;
            check_budget_shared = c->backend_url != NULL;
            return 0;
        }
        /* With a shared backend the spend lives there (fleet.c), not in a
         * per-host budget.json. */
        char *state = c->backend_url ? NULL : budget_state_path();
        atomic_store(&budget_period, period);
        struct hr_budget *b = NULL;
        rc = hr_budget_open(c->budget_usd, (enum hr_budget_period)period, state, &b, err, errlen);
        free(state);
        if (rc) return rc;
        atomic_store(&budget, b);
    }
    return 0;
}

/* Always on: a reload may switch a budget on later (timers cannot be
 * added once the housekeeping thread runs). */
void hr_cost_start_flusher(void)
{
    if (!flusher_started) hr_host_table.add_timer(NULL, 1000, flush_timer, NULL);
    flusher_started = 1;
    /* The daemon's budget.json records the limit in force from the start:
     * one left by a run with another `budget` is rewritten now, its spend
     * kept. Before the housekeeping thread runs, so flush_one is still ours. */
    struct hr_budget *b = atomic_load(&budget);
    if (b) {
        hr_budget_adopt_file(b);
        flush_one(b);
    }
}

static void describe_budget(struct hr_budget *b, char *out, size_t outlen)
{
    struct hr_budget_state st;
    hr_budget_get(b, hr_clock_now(), &st);
    char spent[32], limit[32];
    hr_numfmt_money(st.spent_usd, spent, sizeof spent);
    hr_numfmt_money(st.limit_usd, limit, sizeof limit);
    snprintf(out, outlen, "budget $%s %s, spent $%s this period", limit, hr_budget_period_name(st.period), spent);
}

int hr_cost_reload(const struct hr_config *c, char *done, size_t donelen, char *restart, size_t restartlen, char *err,
                   size_t errlen)
{
    *done = *restart = '\0';
    int period = -1;
    if (c->budget_usd > 0 && (period = hr_budget_period_parse(c->budget_period ? c->budget_period : "daily")) < 0) {
        snprintf(err, errlen, "budget_period '%s' must be hourly, daily, weekly or monthly", c->budget_period);
        return -EINVAL;
    }
    struct hr_budget *cur = atomic_load(&budget);
    int period_changed = cur && period >= 0 && (enum hr_budget_period)period != hr_budget_get_period(cur);
    if (!cur && c->budget_usd > 0 && !flusher_started) {
        snprintf(err, errlen, "cannot switch a budget on in this process (no flush timer): restart headroomd");
        return -EINVAL;
    }
    /* Everything that can fail comes first: on error nothing has changed. */
    struct hr_prices *table = NULL;
    char *path = NULL;
    int rc = load_prices(c, &table, &path, err, errlen);
    if (rc) return rc;
    struct hr_budget *fresh = NULL;
    if (!cur && c->budget_usd > 0) {
        char *state = c->backend_url ? NULL : budget_state_path();
        rc = hr_budget_open(c->budget_usd, (enum hr_budget_period)period, state, &fresh, err, errlen);
        free(state);
        if (rc) {
            hr_prices_free(table);
            free(path);
            return rc;
        }
    }
    if (cur && c->budget_usd <= 0) {
        pthread_mutex_lock(&retired_lock);
        int full = n_retired == MAX_RETIRED;
        pthread_mutex_unlock(&retired_lock);
        if (full) {
            snprintf(err, errlen, "the budget was switched off and on too often: restart headroomd");
            hr_prices_free(table);
            free(path);
            return -EBUSY;
        }
    }

    pthread_rwlock_wrlock(&prices_lock);
    struct hr_prices *old = prices;
    char *old_path = prices_path;
    prices = table;
    prices_path = path;
    atomic_fetch_add(&prices_gen, 1);
    pthread_rwlock_unlock(&prices_lock);
    hr_prices_free(old);
    free(old_path);
    size_t k = 0;
    if (table) {
        warn_if_stale(path, table);
        k += (size_t)snprintf(done + k, donelen - k, "prices %s (prices_version %s, %zu models)", path,
                              hr_prices_version(table), hr_prices_model_count(table));
    } else {
        k += (size_t)snprintf(done + k, donelen - k, "prices: none found, every request unpriced");
    }
    char what[160];
    if (fresh) {
        hr_budget_adopt_file(fresh); /* the flusher writes its limit within the second */
        atomic_store(&budget_period, period);
        atomic_store(&budget, fresh);
        describe_budget(fresh, what, sizeof what);
        if (k < donelen) k += (size_t)snprintf(done + k, donelen - k, "; %s (switched on)", what);
    } else if (cur && c->budget_usd <= 0) {
        atomic_store(&budget, NULL);
        pthread_mutex_lock(&retired_lock);
        retired[n_retired++] = cur;
        pthread_mutex_unlock(&retired_lock);
        if (k < donelen) k += (size_t)snprintf(done + k, donelen - k, "; budget switched off");
    } else if (cur) {
        hr_budget_set_limit(cur, c->budget_usd, hr_clock_now());
        describe_budget(cur, what, sizeof what);
        if (k < donelen) k += (size_t)snprintf(done + k, donelen - k, "; %s", what);
        if (period_changed)
            snprintf(restart, restartlen, "budget_period (%s, running as %s)", c->budget_period,
                     hr_budget_period_name(hr_budget_get_period(cur)));
    }
    return 0;
}

void hr_cost_shutdown(void)
{
    hr_budget_close(atomic_exchange(&budget, NULL));
    for (size_t i = 0; i < n_retired; i++) hr_budget_close(retired[i]);
    n_retired = 0;
    flusher_started = 0;
    hr_prices_free(prices);
    prices = NULL;
    atomic_fetch_add(&prices_gen, 1);
    free(prices_path);
    prices_path = NULL;
}

void hr_cost_describe(FILE *out)
{
    if (prices) fprintf(out, "prices %s (prices_version %s, %zu models)\n", prices_path, hr_prices_version(prices),
                        hr_prices_model_count(prices));
    else fprintf(out, "prices: none found, every request unpriced\n");
    struct hr_budget *b = atomic_load(&budget);
    if (b) {
        char line[160];
        describe_budget(b, line, sizeof line);
        fprintf(out, "%s\n", line);
    } else if (check_budget_usd > 0) {
        char *state = check_budget_shared ? NULL : budget_state_path();
        char limit[32];
        hr_numfmt_money(check_budget_usd, limit, sizeof limit);
        fprintf(out, "budget $%s %s (spend kept in %s)\n", limit,
                hr_budget_period_name((enum hr_budget_period)check_budget_period),
                check_budget_shared ? "the backend redis, shared by the fleet" : state ? state : "?");
        free(state);
    }
}

/* A worker prices one request twice (headers, then its event) and most
 * traffic names few models: the last lookup is remembered per thread.
 * Called with prices_lock held for reading. */
static const struct hr_price *lookup_price(const char *model)
{
    static _Thread_local unsigned gen;
    static _Thread_local char name[128];
    static _Thread_local const struct hr_price *price;
    unsigned now = atomic_load(&prices_gen);
    size_t n = model ? strlen(model) : 0;
    if (gen == now && n < sizeof name && !memcmp(name, model ? model : "", n + 1)) return price;
    price = hr_prices_lookup(prices, model, NULL);
    gen = n < sizeof name ? now : 0;
    if (gen) memcpy(name, model ? model : "", n + 1);
    return price;
}

void hr_cost_price_event(struct hr_event *ev, int usage_seen, struct hr_cost *split)
{
    struct hr_cost c;
    pthread_rwlock_rdlock(&prices_lock);
    const struct hr_price *p = lookup_price(ev->model);
    struct hr_cost_usage u = {
        .input = ev->provider_input_tokens,
        .cache_read = ev->cache_read_tokens,
        .cache_write = ev->cache_write_tokens,
        .cache_write_5m = ev->cache_write_5m_tokens,
        .cache_write_1h = ev->cache_write_1h_tokens,
        .output = ev->tokens_output,
        .tokens_saved = ev->tokens_saved,
    };
    /* No usage in the answer (an OpenAI stream without include_usage, or one
     * its client left before the usage chunk: its status is then the
     * client's 499, but the provider answered 2xx and billed it, as
     * `credited` says): bill what we sent rather than nothing, so a budget
     * cannot be bypassed and no saving stands beside a $0 cost. */
    if (!usage_seen && (ev->credited || (ev->status >= 200 && ev->status < 300))) u.input = ev->tokens_sent;
    if (ev->cached) u = (struct hr_cost_usage){0}; /* our own response cache: the provider bills nothing */
    /* A request is priced for its headers (or stream comment), then for its
     * event, from the same figures: the last pricing is remembered per
     * thread, keyed by the price entry (lookup_price's, itself renewed with
     * the table) and every figure it reads. */
    static _Thread_local struct {
        const struct hr_price *p;
        unsigned gen;
        struct hr_cost_usage u;
        struct hr_cost c;
    } last;
    unsigned gen = atomic_load(&prices_gen);
    if (p && last.p == p && last.gen == gen && !memcmp(&last.u, &u, sizeof u)) {
        pthread_rwlock_unlock(&prices_lock);
        c = last.c;
    } else {
        hr_cost_compute(p, &u, &c);
        pthread_rwlock_unlock(&prices_lock);
        /* Computed once, in whole micro-dollars: the headers, the stream
         * comment, the request log and every total (/stats, /metrics, the
         * savings file, the budget) add up exactly these values, so a sum
         * over the log is the total to the micro-dollar. The split keeps
         * input + output = total. */
        c.total_usd = hr_numfmt_round(c.total_usd, HR_DECIMALS_USD);
        c.input_usd = hr_numfmt_round(c.input_usd, HR_DECIMALS_USD);
        if (c.input_usd > c.total_usd) c.input_usd = c.total_usd;
        c.output_usd = hr_numfmt_round(c.total_usd - c.input_usd, HR_DECIMALS_USD);
        c.savings_usd = hr_numfmt_round(c.savings_usd, HR_DECIMALS_USD);
        c.cache_savings_usd = hr_numfmt_round(c.cache_savings_usd, HR_DECIMALS_USD);
        last.p = p;
        last.gen = gen;
        last.u = u;
        last.c = c;
    }
    ev->priced = p != NULL;
    ev->cost_usd = c.total_usd;
    ev->savings_usd = c.savings_usd;
    if (split) *split = c;
}

void hr_cost_account_event(struct hr_event *ev, int usage_seen)
{
    struct hr_cost c;
    hr_cost_price_event(ev, usage_seen, &c);
    if (!ev->priced) return;
    hr_stats_record_cost(c.input_usd, c.output_usd, c.cache_savings_usd);
    struct hr_budget *b = atomic_load(&budget);
    if (b) {
        double now = hr_clock_now();
        hr_budget_add(b, c.total_usd, now);
        if (budget_remote_add && c.total_usd > 0) budget_remote_add(budget_remote_ctx, c.total_usd, now);
    }
}

int hr_cost_budget_period(double now, const char **period_name, time_t *start, time_t *end)
{
    if (!atomic_load(&budget)) return 0;
    enum hr_budget_period bp = (enum hr_budget_period)atomic_load(&budget_period);
    hr_budget_period_bounds(bp, (time_t)now, start, end);
    *period_name = hr_budget_period_name(bp);
    return 1;
}

void hr_cost_budget_observe(time_t start, double spent_usd)
{
    struct hr_budget *b = atomic_load(&budget);
    if (b) hr_budget_observe(b, start, spent_usd);
}

void hr_cost_set_budget_remote(void (*add)(void *ctx, double usd, double now), void *ctx)
{
    budget_remote_add = add;
    budget_remote_ctx = ctx;
}

/* Fixed six decimals of the value every surface rounds to (numfmt.h), so a
 * header and the request log's number are the same figure. */
void hr_cost_format_usd(double usd, char *out, size_t outlen) { hr_numfmt_usd6(usd, out, outlen); }

/* Appends `s` at w; a NULL w stays NULL (the line did not fit). */
static char *put(char *w, const char *end, const char *s, size_t n)
{
    if (!w || (size_t)(end - w) <= n) return NULL;
    memcpy(w, s, n);
    return w + n;
}

static char *put_u64(char *w, const char *end, unsigned long long v)
{
    char d[24];
    return put(w, end, d, hr_numfmt_uint(v, d));
}

static char *put_usd(char *w, const char *end, double usd)
{
    char d[64];
    return put(w, end, d, (size_t)hr_numfmt_usd6(usd, d, sizeof d));
}

int hr_cost_sse_comment(const struct hr_event *ev, char *out, size_t outlen)
{
    static const char k0[] = ": headroom tokens_before=", k1[] = " tokens_after=", k2[] = " tokens_saved=",
                      k3[] = " cost_usd=", k4[] = " savings_usd=", k5[] = "\n\n";
    const char *end = out + outlen;
    char *w = put(out, end, k0, sizeof k0 - 1);
    w = put_u64(w, end, (unsigned long long)ev->tokens_input);
    w = put(w, end, k1, sizeof k1 - 1);
    w = put_u64(w, end, (unsigned long long)ev->tokens_sent);
    w = put(w, end, k2, sizeof k2 - 1);
    w = put_u64(w, end, (unsigned long long)ev->tokens_saved);
    w = put(w, end, k3, sizeof k3 - 1);
    w = put_usd(w, end, ev->cost_usd);
    w = put(w, end, k4, sizeof k4 - 1);
    w = put_usd(w, end, ev->savings_usd);
    w = put(w, end, k5, sizeof k5 - 1);
    if (!w) return -1; /* callers treat it as not written */
    *w = '\0';
    return (int)(w - out);
}

int hr_cost_budget_gate(char *msg, size_t msglen, long *retry_after_s)
{
    struct hr_budget *b = atomic_load(&budget);
    if (!b) return 0;
    double now = hr_clock_now(), wait;
    if (!hr_budget_exceeded(b, now, &wait)) return 0;
    struct hr_budget_state st;
    hr_budget_get(b, now, &st);
    char spent[32], limit[32];
    hr_numfmt_money(st.spent_usd, spent, sizeof spent);
    hr_numfmt_money(st.limit_usd, limit, sizeof limit);
    snprintf(msg, msglen,
             "headroomd budget exceeded: spent $%s of the %s budget of $%s; it resets in %ld s (raise `budget` in "
             "headroom.conf or --budget to continue now)",
             spent, hr_budget_period_name(st.period), limit, (long)ceil(wait));
    *retry_after_s = (long)ceil(wait);
    if (*retry_after_s < 1) *retry_after_s = 1;
    return 1;
}

json_t *hr_cost_stats_json(const struct hr_stats_data *d)
{
    pthread_rwlock_rdlock(&prices_lock);
    json_t *j = json_pack("{s:f,s:f,s:f,s:f,s:f,s:f,s:I,s:s?}", "cache_avoided_usd", hr_round(d->cache_avoided_usd, 6),
                     "total_cost_usd", hr_round(d->cost_usd, 6),
                     "total_savings_usd", hr_round(d->savings_usd, 6), "input_cost_usd",
                     hr_round(d->input_cost_usd, 6), "output_cost_usd", hr_round(d->output_cost_usd, 6),
                     "cache_savings_usd", hr_round(d->cache_savings_usd, 6), "unpriced_requests",
                     (json_int_t)d->unpriced, "prices_version", prices ? hr_prices_version(prices) : NULL);
    pthread_rwlock_unlock(&prices_lock);
    return j;
}

json_t *hr_cost_budget_json(const struct hr_stats_data *d)
{
    struct hr_budget *b = atomic_load(&budget);
    if (!b) return json_null();
    return hr_budget_json(b, hr_clock_now(), (unsigned long long)d->budget_rejected);
}

int hr_cost_budget_figures(double *spent_usd, double *limit_usd)
{
    struct hr_budget *b = atomic_load(&budget);
    if (!b) {
        *spent_usd = *limit_usd = 0;
        return 0;
    }
    struct hr_budget_state st;
    hr_budget_get(b, hr_clock_now(), &st);
    *spent_usd = st.spent_usd;
    *limit_usd = st.limit_usd;
    return 1;
}
