/* savings_file.c — the savings_file sink: batches per-request savings in
 * memory, flushes them into the shared durable file on a timer and at
 * shutdown, and serves /stats.persistent_savings, /stats-history,
 * /dashboard and the persistent Prometheus counters. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <headroom/plugin.h>
#include "numfmt.h"
#include "state_file.h"
#include "savings.h"

#define RECENT_POINTS 20
#define MAX_PENDING 65536 /* cells kept while flushes fail; further new cells fold into "other" */

/* One request thread's cells since they were last gathered, under a lock
 * of its own: with one list for all, the two workers of a saturated
 * two-core host met on its lock ~70 times a second and the one that found
 * it held slept on a futex (bench/README.md, session 25). */
struct shard {
    pthread_mutex_t mu;
    struct hr_sav_delta *cells;
    size_t n, cap;
    struct shard *next;
};

struct sav {
    const struct hr_host *host;
    struct hr_instance *self;
    char *path;
    unsigned flush_ms;
    size_t max_points;
    int hourly_days;

    uint64_t id;          /* this instance, for my_shard's cache */
    struct shard *common; /* for a thread that already has a shard of another instance */
    pthread_mutex_t mu;   /* everything below up to flush_mu; taken before a shard's */
    struct shard *shards; /* every thread's, common included */
    struct hr_sav_delta *pending, *inflight;
    size_t n_pending, cap_pending, n_inflight;
    json_t *base; /* the file as last read or written; never mutated once published */
    struct hr_sav_totals base_life;
    json_t *recent;
    uint64_t flushes, flush_errors;
    double last_flush_ms;
    char last_flush_at[32];

    pthread_mutex_t flush_mu; /* one flush at a time: timer vs fini */
    int failing;              /* last flush failed: warn once per streak */
    struct stat seen;         /* identity of the file behind `base` */
};

static const struct hr_conf_key keys[] = {
    HR_CONF_KEY("path", HR_CONF_STRING, NULL,
                 "savings file (default $HEADROOM_SAVINGS_PATH, else $HEADROOM_WORKSPACE_DIR/proxy_savings.json, else "
     "~/.headroom/proxy_savings.json)"),
    HR_CONF_KEY_RANGE("flush_interval", HR_CONF_INT, "5", "seconds between flushes of batched counts to the file (1-3600)", 1, 3600),
    HR_CONF_KEY_RANGE("max_history_points", HR_CONF_INT, "2048", "checkpoints kept in the file; older ones are thinned (2-1000000)", 2, 1000000),
    HR_CONF_KEY_RANGE("hourly_retention_days", HR_CONF_INT, "14", "days of hourly buckets kept; older hours fold into exact days (8-3660)", 8, 3660),
    HR_CONF_KEY("dashboard", HR_CONF_BOOL, "yes", "serve GET /dashboard"),
    HR_CONF_END,
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ------------------------------------------------------------------ path */

/* HEADROOM_* variables beat the config file (project-wide precedence); the
 * state root only applies when neither names a file. */
static char *resolve_path(const struct hr_host *host, const char *conf_path)
{
    const char *env = getenv("HEADROOM_SAVINGS_PATH");
    return hr_state_file(host, env && *env ? env : conf_path, "proxy_savings.json");
}

/* -------------------------------------------------------------- publish */

/* Returns the document it replaces, for the caller to release once mu is
 * unlocked: freeing a long history under the lock would hold up the request
 * threads that call on_event. */
static json_t *publish_locked(struct sav *s, json_t *doc)
{
    json_t *old = s->base;
    s->base = doc;
    hr_sav_totals_from_json(json_object_get(doc, "lifetime"), &s->base_life);
    json_decref(s->recent);
    s->recent = json_array();
    const json_t *cp = json_object_get(doc, "checkpoints");
    size_t n = json_array_size(cp);
    for (size_t i = n > RECENT_POINTS ? n - RECENT_POINTS : 0; i < n; i++) {
        const json_t *p = json_array_get(cp, i);
        json_array_append_new(s->recent, json_pack("{s:O,s:O,s:O}", "timestamp", json_object_get(p, "timestamp"),
                                                   "total_tokens_saved", json_object_get(p, "total_tokens_saved"),
                                                   "compression_savings_usd",
                                                   json_object_get(p, "compression_savings_usd")));
    }
    return old;
}

static void remember_file(struct sav *s)
{
    if (stat(s->path, &s->seen)) memset(&s->seen, 0, sizeof s->seen);
}

static int file_changed(const struct sav *s)
{
    struct stat st;
    if (stat(s->path, &st)) return 0;
    return st.st_ino != s->seen.st_ino || st.st_size != s->seen.st_size ||
           st.st_mtim.tv_sec != s->seen.st_mtim.tv_sec || st.st_mtim.tv_nsec != s->seen.st_mtim.tv_nsec;
}

/* Load under the caller's lock; a damaged file is moved aside (one WARN). */
static json_t *load_or_quarantine(struct sav *s, double now)
{
    json_t *doc;
    char why[256];
    if (hr_sav_load(s->path, now, &doc, why, sizeof why) == HR_SAV_DAMAGED) {
        char dest[4200];
        int rc = hr_sav_quarantine(s->path, now, dest, sizeof dest);
        if (rc == 0)
            s->host->log(s->self, HR_LOG_WARN, "savings file %s is unusable (%s): moved aside to %s, starting fresh",
                         s->path, why, dest);
        else
            s->host->log(s->self, HR_LOG_WARN,
                         "savings file %s is unusable (%s) and could not be moved aside (%s): starting fresh; "
                         "fix the file's permissions or remove it",
                         s->path, why, strerror(-rc));
    }
    return doc;
}

/* ----------------------------------------------------------------- flush */

/* Add `cell` to the list: into the cell of the same hour, model and
 * provider when there is one, else as a new one; past MAX_PENDING cells
 * (flushes failing for long) new names fold into "other". Out of memory,
 * the count is lost. */
static void cells_add(struct hr_sav_delta **cells, size_t *n, size_t *cap, struct hr_sav_delta cell)
{
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = *n; i-- > 0;) {
            struct hr_sav_delta *p = &(*cells)[i];
            if (p->hour == cell.hour && !strcmp(p->model, cell.model) && !strcmp(p->provider, cell.provider)) {
                hr_sav_totals_add(&p->t, &cell.t);
                return;
            }
        }
        if (*n < MAX_PENDING || pass) break;
        strcpy(cell.provider, "other");
        strcpy(cell.model, "other");
    }
    if (*n == *cap) {
        size_t grown = *cap ? *cap * 2 : 16;
        struct hr_sav_delta *m = realloc(*cells, grown * sizeof *m);
        if (!m) return;
        *cells = m;
        *cap = grown;
    }
    (*cells)[(*n)++] = cell;
}

/* Move every thread's cells into pending (mu held). */
static void gather_locked(struct sav *s)
{
    for (struct shard *sh = s->shards; sh; sh = sh->next) {
        pthread_mutex_lock(&sh->mu);
        for (size_t i = 0; i < sh->n; i++) cells_add(&s->pending, &s->n_pending, &s->cap_pending, sh->cells[i]);
        sh->n = 0;
        pthread_mutex_unlock(&sh->mu);
    }
}

static void flush(void *state)
{
    struct sav *s = state;
    pthread_mutex_lock(&s->flush_mu);
    pthread_mutex_lock(&s->mu);
    gather_locked(s);
    struct hr_sav_delta *d = s->pending;
    size_t n = s->n_pending;
    s->inflight = d;
    s->n_inflight = n;
    s->pending = NULL;
    s->n_pending = s->cap_pending = 0;
    pthread_mutex_unlock(&s->mu);

    if (n == 0) {
        /* Nothing of ours: still pick up what other processes wrote. */
        if (file_changed(s)) {
            json_t *doc;
            char why[256];
            if (hr_sav_load(s->path, now_s(), &doc, why, sizeof why) == HR_SAV_LOADED) {
                pthread_mutex_lock(&s->mu);
                json_t *old = publish_locked(s, doc);
                pthread_mutex_unlock(&s->mu);
                json_decref(old);
                remember_file(s);
            } else {
                json_decref(doc);
            }
        }
        pthread_mutex_lock(&s->mu);
        s->inflight = NULL;
        pthread_mutex_unlock(&s->mu);
        free(d);
        pthread_mutex_unlock(&s->flush_mu);
        return;
    }

    double t0 = mono_ms(), now = now_s();
    int rc = hr_sav_mkdir_parent(s->path);
    int fd = rc ? rc : hr_sav_lock(s->path);
    json_t *doc = NULL;
    if (fd >= 0) {
        doc = load_or_quarantine(s, now);
        hr_sav_apply(doc, d, n, now, 1, s->max_points, s->hourly_days);
        rc = hr_sav_write_atomic(s->path, doc);
        if (rc == 0) remember_file(s);
        hr_sav_unlock(fd);
    } else {
        rc = fd;
    }
    double ms = mono_ms() - t0;

    pthread_mutex_lock(&s->mu);
    s->inflight = NULL;
    s->n_inflight = 0;
    if (rc == 0) {
        doc = publish_locked(s, doc); /* released below, unlocked */
        s->flushes++;
        s->last_flush_ms = ms;
        hr_sav_iso((int64_t)now, s->last_flush_at, sizeof s->last_flush_at);
        free(d);
    } else {
        /* Keep the counts for the next attempt: append the pending cells that
         * arrived meanwhile to the failed batch. */
        s->flush_errors++;
        struct hr_sav_delta *m = realloc(d, (n + s->n_pending) * sizeof *m);
        if (m) {
            if (s->n_pending) memcpy(m + n, s->pending, s->n_pending * sizeof *m);
            free(s->pending);
            s->pending = m;
            s->n_pending = s->cap_pending = n + s->n_pending;
        } else {
            free(d); /* out of memory: these counts are lost, and the log says so below */
        }
    }
    pthread_mutex_unlock(&s->mu);
    json_decref(doc);

    if (rc && !s->failing)
        s->host->log(s->self, HR_LOG_WARN,
                     "cannot write savings file %s (%s): counts stay in memory and are retried every %u s; "
                     "check the directory exists and is writable, or set HEADROOM_SAVINGS_PATH",
                     s->path, strerror(-rc), s->flush_ms / 1000);
    else if (!rc && s->failing)
        s->host->log(s->self, HR_LOG_INFO, "savings file %s writable again: batched counts saved", s->path);
    else if (!rc && s->host->log_enabled(HR_LOG_DEBUG))
        s->host->log(s->self, HR_LOG_DEBUG, "flushed %zu cells to %s in %.2f ms", n, s->path, ms);
    s->failing = rc != 0;
    pthread_mutex_unlock(&s->flush_mu);
}

/* ----------------------------------------------------------------- event */

static void copy_name(char *dst, const char *src, const char *dflt)
{
    if (!src || !*src) src = dflt;
    size_t i = 0;
    /* Printable ASCII only: names become JSON keys and CSV/metric text. */
    for (; src[i] && i + 1 < HR_SAV_NAME_MAX; i++)
        dst[i] = (unsigned char)src[i] >= 0x20 && (unsigned char)src[i] < 0x7f ? src[i] : '?';
    dst[i] = '\0';
}

static struct shard *shard_new(void)
{
    struct shard *sh = calloc(1, sizeof *sh);
    if (sh) pthread_mutex_init(&sh->mu, NULL);
    return sh;
}

/* The calling thread's shard of `s`, made at its first event. Instances
 * are told apart by id, not address: one freed and another made at the
 * same place is not the same. */
static struct shard *my_shard(struct sav *s)
{
    static _Thread_local uint64_t owner;
    static _Thread_local struct shard *mine;
    if (owner == s->id) return mine;
    if (owner) return s->common;
    struct shard *sh = shard_new();
    if (!sh) return s->common;
    pthread_mutex_lock(&s->mu);
    sh->next = s->shards;
    s->shards = sh;
    pthread_mutex_unlock(&s->mu);
    owner = s->id;
    mine = sh;
    return sh;
}

static void on_event(void *state, const struct hr_event *ev)
{
    struct sav *s = state;
    struct hr_sav_delta cell = {0};
    double ts = ev->timestamp > 0 ? ev->timestamp : now_s();
    cell.hour = (int64_t)(ts / 3600) * 3600;
    copy_name(cell.provider, ev->provider_name, "unknown");
    copy_name(cell.model, ev->model, "unknown");
    cell.t.requests = 1;
    /* Hosts since 1.2 say whether the saving is credited (the provider
     * answered 2xx); only those requests' tokens count (doc/stats.md). */
    int credited = HR_HAS_FIELD(ev, struct hr_event, credited) ? ev->credited : 1;
    cell.t.tokens_saved = credited ? ev->tokens_saved : 0;
    cell.t.input_tokens = credited ? ev->tokens_input : 0;
    cell.t.savings_usd = ev->savings_usd > 0 ? ev->savings_usd : 0;
    cell.t.cost_usd = ev->cost_usd > 0 ? ev->cost_usd : 0;

    struct shard *sh = my_shard(s);
    pthread_mutex_lock(&sh->mu);
    cells_add(&sh->cells, &sh->n, &sh->cap, cell);
    pthread_mutex_unlock(&sh->mu);
}

/* ------------------------------------------------------------- snapshots */

/* The file as last seen plus every unflushed count, so readers are current. */
static json_t *live_doc(struct sav *s, double now)
{
    pthread_mutex_lock(&s->mu);
    gather_locked(s);
    json_t *base = json_incref(s->base);
    size_t n = s->n_pending + s->n_inflight;
    struct hr_sav_delta *d = n ? malloc(n * sizeof *d) : NULL;
    if (d) {
        if (s->n_inflight) memcpy(d, s->inflight, s->n_inflight * sizeof *d);
        if (s->n_pending) memcpy(d + s->n_inflight, s->pending, s->n_pending * sizeof *d);
    }
    pthread_mutex_unlock(&s->mu);
    if (!d) return base;
    json_t *doc = json_deep_copy(base);
    json_decref(base);
    if (doc) hr_sav_apply(doc, d, n, now, 0, s->max_points, s->hourly_days);
    free(d);
    return doc;
}

static struct hr_sav_totals live_lifetime(struct sav *s)
{
    pthread_mutex_lock(&s->mu);
    gather_locked(s);
    struct hr_sav_totals t = s->base_life;
    for (size_t i = 0; i < s->n_inflight; i++) hr_sav_totals_add(&t, &s->inflight[i].t);
    for (size_t i = 0; i < s->n_pending; i++) hr_sav_totals_add(&t, &s->pending[i].t);
    pthread_mutex_unlock(&s->mu);
    return t;
}

static json_t *stats_block_for(void *state, int from_loopback)
{
    struct sav *s = state;
    struct hr_sav_totals t = live_lifetime(s);
    pthread_mutex_lock(&s->mu);
    json_t *recent = json_deep_copy(s->recent);
    json_t *o = json_pack("{s:o,s:o,s:i,s:I,s:I,s:s?,s:f}", "lifetime", hr_sav_totals_json(&t), "recent_history",
                          recent ? recent : json_array(), "flush_interval_seconds", (int)(s->flush_ms / 1000),
                          "flushes", (json_int_t)s->flushes, "flush_errors", (json_int_t)s->flush_errors,
                          "last_flush_at", s->last_flush_at[0] ? s->last_flush_at : NULL, "last_flush_ms",
                          hr_numfmt_round(s->last_flush_ms, HR_DECIMALS_MS));
    pthread_mutex_unlock(&s->mu);
    if (from_loopback) json_object_set_new(o, "storage_path", json_string(s->path));
    return o;
}

static json_t *stats_block(void *state) { return stats_block_for(state, 0); }

static int metrics(void *state, hr_metric_visit_fn visit, void *ud)
{
    struct sav *s = state;
    struct hr_sav_totals t = live_lifetime(s);
    struct hr_metric_family fam = {sizeof fam, "headroom_persistent_savings_tokens_saved_total",
                                   "Tokens saved over the lifetime of the savings file (all processes sharing it)",
                                   HR_METRIC_COUNTER, 0, NULL};
    struct hr_metric_sample smp = {.struct_size = sizeof smp, .value = (double)t.tokens_saved};
    visit(ud, &fam, &smp);
    fam.name = "headroom_persistent_savings_usd_total";
    fam.help = "Compression savings in USD over the lifetime of the savings file";
    smp.value = hr_sav_round6(t.savings_usd);
    visit(ud, &fam, &smp);
    return 0;
}

/* ---------------------------------------------------------------- routes */

static void set_headers(struct hr_http_response *resp, const char *const *h)
{
    if (HR_HAS_FIELD(resp, struct hr_http_response, extra_headers)) resp->extra_headers = h;
}

static void send_json(struct hr_http_response *resp, int status, json_t *body)
{
    resp->status = status;
    resp->content_type = "application/json";
    resp->body = body ? json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(HR_JSON_FIGURES_PRECISION)) : NULL;
    resp->body_len = resp->body ? strlen(resp->body) : 0;
    resp->free_body = free;
    json_decref(body);
}

static const char *const csv_headers[5][3] = {
    {"Content-Disposition", "attachment; filename=\"headroom-history.csv\"", NULL},
    {"Content-Disposition", "attachment; filename=\"headroom-hourly.csv\"", NULL},
    {"Content-Disposition", "attachment; filename=\"headroom-daily.csv\"", NULL},
    {"Content-Disposition", "attachment; filename=\"headroom-weekly.csv\"", NULL},
    {"Content-Disposition", "attachment; filename=\"headroom-monthly.csv\"", NULL},
};
static const char *const no_store[] = {"Cache-Control", "no-store", "X-Content-Type-Options", "nosniff", NULL};

static int route_history(void *state, const struct hr_http_request *req, struct hr_http_response *resp)
{
    struct sav *s = state;
    struct hr_sav_query q;
    json_t *err;
    if (hr_sav_query_parse(req->query, &q, &err)) {
        send_json(resp, 400, err);
        return 0;
    }
    double now = now_s();
    json_t *doc = live_doc(s, now);
    if (!doc) return HR_ENOMEM;
    if (q.csv) {
        size_t len = 0;
        char *csv = hr_sav_history_csv(doc, &q, now, &len);
        json_decref(doc);
        if (!csv) return HR_ENOMEM;
        resp->status = 200;
        resp->content_type = "text/csv; charset=utf-8";
        resp->body = csv;
        resp->body_len = len;
        resp->free_body = free;
        set_headers(resp, csv_headers[q.series]);
        return 0;
    }
    json_t *body = hr_sav_history_json(doc, &q, now);
    json_decref(doc);
    /* Where the file lives is only for the operator at the machine. */
    if (body && req->from_loopback) json_object_set_new(body, "storage_path", json_string(s->path));
    set_headers(resp, no_store);
    send_json(resp, 200, body);
    return resp->body ? 0 : HR_ENOMEM;
}

/* The page may run only the script and style served beside it (no inline
 * code, no eval, DOM sinks behind Trusted Types), talk only to this origin,
 * and be framed by nobody; see doc/hardening.md. */
static const char *const page_headers[] = {
    "Content-Security-Policy",
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src data:; "
    "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; "
    "require-trusted-types-for 'script'",
    "X-Content-Type-Options", "nosniff", "Referrer-Policy", "no-referrer", "Cache-Control", "no-store", NULL};
static const char *const asset_headers[] = {"X-Content-Type-Options", "nosniff", "Cache-Control", "no-store", NULL};

struct asset {
    const char *path, *content_type, *body;
    const char *const *headers;
};
static const struct asset dashboard_assets[] = {
    {"/dashboard", "text/html; charset=utf-8", hr_sav_dashboard_html, page_headers},
    {"/dashboard.css", "text/css; charset=utf-8", hr_sav_dashboard_css, asset_headers},
    {"/dashboard.js", "text/javascript; charset=utf-8", hr_sav_dashboard_js, asset_headers},
};

static int route_dashboard(void *state, const struct hr_http_request *req, struct hr_http_response *resp)
{
    const struct asset *a = state;
    (void)req;
    resp->status = 200;
    resp->content_type = a->content_type;
    resp->body = (char *)a->body; /* static: no free_body */
    resp->body_len = strlen(a->body);
    resp->free_body = NULL;
    set_headers(resp, a->headers);
    return 0;
}

static int register_dashboard(const struct hr_host *host, struct hr_instance *self)
{
    for (size_t i = 0; i < sizeof dashboard_assets / sizeof *dashboard_assets; i++)
        if (host->register_route(self, "GET", dashboard_assets[i].path, route_dashboard, (void *)&dashboard_assets[i]))
            return HR_ENOMEM;
    return 0;
}

/* ------------------------------------------------------------- lifecycle */

static void fini(void *state);

static int init(const struct hr_host *host, struct hr_instance *self, const struct hr_conf *conf, void **out)
{
    long long interval = host->conf_int(conf, "flush_interval"), points = host->conf_int(conf, "max_history_points"),
              days = host->conf_int(conf, "hourly_retention_days");
    if (interval < 1 || interval > 3600) {
        host->log(self, HR_LOG_ERROR, "flush_interval must be 1..3600 seconds, got %lld", interval);
        return HR_EINVAL;
    }
    if (points < 2 || points > 1000000) {
        host->log(self, HR_LOG_ERROR, "max_history_points must be 2..1000000, got %lld", points);
        return HR_EINVAL;
    }
    if (days < 8 || days > 3660) {
        host->log(self, HR_LOG_ERROR,
                  "hourly_retention_days must be 8..3660 (the hourly chart shows 7 days), got %lld", days);
        return HR_EINVAL;
    }
    struct sav *s = calloc(1, sizeof *s);
    if (!s) return HR_ENOMEM;
    s->host = host;
    s->self = self;
    s->flush_ms = (unsigned)interval * 1000;
    s->max_points = (size_t)points;
    s->hourly_days = (int)days;
    static atomic_uint_fast64_t instances;
    s->id = atomic_fetch_add(&instances, 1) + 1;
    if (!(s->common = s->shards = shard_new())) {
        free(s);
        return HR_ENOMEM;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->flush_mu, NULL);
    s->path = resolve_path(host, host->conf_string(conf, "path"));
    if (!s->path) {
        fini(s);
        return HR_ENOMEM;
    }
    /* Only a flush creates the directory and <file>.lock: a process that
     * only reads the history (`headroom history`, hr_get_history) leaves
     * nothing behind under a typo'd HEADROOM_WORKSPACE_DIR, nor takes a lock
     * the daemon wants. The read needs no lock: a flush replaces the file
     * by rename, so it is read whole. A directory that could not be made
     * is still said at start. */
    int rc = hr_sav_parent_creatable(s->path);
    if (rc)
        host->log(self, HR_LOG_WARN,
                  "cannot create the directory of savings file %s (%s): savings stay in memory until it exists; "
                  "set HEADROOM_SAVINGS_PATH or the path key to a writable place",
                  s->path, strerror(-rc));
    /* A damaged file is only reported here; the first flush with savings to
     * write moves it aside (load_or_quarantine). So a process that only
     * reads the history (`headroom history`, hr_get_history) never moves a
     * file it cannot use: a typo'd HEADROOM_SAVINGS_PATH, or a newer
     * headroomd's file. */
    json_t *doc;
    char why[256];
    if (hr_sav_load(s->path, now_s(), &doc, why, sizeof why) == HR_SAV_DAMAGED)
        host->log(self, HR_LOG_WARN,
                  "savings file %s is unusable (%s): the history starts empty, and the file is moved aside "
                  "when the first savings are written",
                  s->path, why);
    json_decref(publish_locked(s, doc)); /* init: no other thread yet */
    remember_file(s);

    if (host->add_timer(self, s->flush_ms, flush, s) ||
        (HR_HAS_FIELD(host, struct hr_host, register_stats_for)
             ? host->register_stats_for(self, "persistent_savings", stats_block_for, s)
             : host->register_stats(self, "persistent_savings", stats_block, s)) ||
        host->register_route(self, "GET", "/stats-history", route_history, s) ||
        (HR_HAS_FIELD(host, struct hr_host, register_metrics) && host->register_metrics &&
         host->register_metrics(self, metrics, s)) ||
        (host->conf_bool(conf, "dashboard") && register_dashboard(host, self))) {
        host->log(self, HR_LOG_ERROR, "cannot register with the host (out of memory?)");
        fini(s);
        return HR_ENOMEM;
    }
    struct hr_sav_totals t = s->base_life;
    host->log(self, HR_LOG_INFO, "durable savings in %s: %llu requests, %llu tokens saved so far", s->path,
              (unsigned long long)t.requests, (unsigned long long)t.tokens_saved);
    *out = s;
    return HR_OK;
}

static void fini(void *state)
{
    struct sav *s = state;
    if (!s) return;
    if (s->path) flush(s); /* idempotent: the host's last timer run may already have emptied it */
    for (struct shard *sh = s->shards, *next; sh; sh = next) {
        next = sh->next;
        pthread_mutex_destroy(&sh->mu);
        free(sh->cells);
        free(sh);
    }
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->flush_mu);
    free(s->pending);
    json_decref(s->base);
    json_decref(s->recent);
    free(s->path);
    free(s);
}

HR_PLUGIN_EXPORT const struct headroom_plugin headroom_plugin = {
    HR_PLUGIN_HEADER,
    .name = "savings_file",
    .kind = HR_PLUGIN_SINK,
    .version = "1.0.0",
    .description = "durable lifetime savings in a JSON file, /stats-history and /dashboard",
    .conf_keys = keys,
    .init = init,
    .fini = fini,
    .on_event = on_event,
    /* A few counters added under the thread's own lock: cheaper on the
     * request's thread than an event copy and a thread of its own. */
    .sink_flags = HR_SINK_ON_REQUEST_THREAD,
};
