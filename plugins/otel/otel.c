/* otel.c — the `otel` sink: OpenTelemetry metrics over OTLP/HTTP (protobuf
 * or JSON) or to stdout (console), configured by environment only
 * (doc/otel.md). Off, and a no-op, unless HEADROOM_OTEL_METRICS_ENABLED=1
 * (managed mode) or, with no HEADROOM_OTEL_* variable at all, the standard
 * OTEL_EXPORTER_OTLP_* / OTEL_METRICS_EXPORTER variables ask for it
 * (ambient mode).
 *
 * on_event (the sink thread) aggregates each request into per-attribute-set
 * counters and histograms under a short lock. A thread of our own wakes
 * every export interval, snapshots the aggregates, encodes one
 * ExportMetricsServiceRequest and hands it to the host's exporter (which
 * POSTs it on its own thread, with retries): no request, and not the
 * housekeeping timer, ever waits for a collector. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <headroom/plugin.h>
#include "otlp.h"
#include "url_shown.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif

#define MAX_SERIES 128          /* provider x model x stack; then model and stack "other" */
#define MAX_GENAI 128           /* provider x model x error.type; then model "other" */
#define MAX_STAGES 64
#define MAX_BOUNDS 18

/* Buckets in seconds: the GenAI semantic conventions' for
 * gen_ai.client.operation.duration (also request and TTFB durations). */
static const double B_DURATION[] = {0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92};
/* Overhead and per-stage time: mostly well under 1 ms. /metrics' bounds
 * (src/hist.c, 10 µs to 5 s) in seconds, so both show the same facts. */
static const double B_FINE[] = {0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                0.01,    0.025,    0.05,    0.1,    0.25,    0.5,    1,     2.5,    5};
/* gen_ai.client.token.usage, as the conventions advise. */
static const double B_TOKENS[] = {1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864};
#define NB(a) (sizeof(a) / sizeof *(a))

struct hist {
    uint64_t count;
    double sum;
    uint64_t b[MAX_BOUNDS + 1];
    double min, max;            /* since start (or the last reset) */
    uint64_t icount;            /* since the last export: min/max of a delta point */
    double imin, imax;
};

static void hist_add(struct hist *h, const double *bounds, size_t nb, double v)
{
    size_t i = 0;
    while (i < nb && v > bounds[i]) i++; /* bucket i holds (bounds[i-1], bounds[i]] */
    h->b[i]++;
    if (!h->count || v < h->min) h->min = v;
    if (!h->count || v > h->max) h->max = v;
    if (!h->icount || v < h->imin) h->imin = v;
    if (!h->icount || v > h->imax) h->imax = v;
    h->count++;
    h->icount++;
    h->sum += v;
}

enum {
    C_REQUESTS, C_CACHED, C_FAILED, C_TOK_IN, C_TOK_OUT, C_TOK_SAVED, C_TOK_SENT,
    C_CACHE_REQ, C_CACHE_HIT, C_CACHE_READ, C_CACHE_WRITE, C_CACHE_W5M, C_CACHE_W1H, C_COUNT
};

struct series {
    char provider[24], model[128], stack[72];
    uint64_t c[C_COUNT];
    double cost_usd, savings_usd;
    struct hist latency, overhead, ttfb;
};

struct genai {
    char provider[24], model[128], error[16];
    struct hist tok_in, tok_out, duration;
};

struct stage {
    char name[64];
    struct hist h;
};

struct agg {
    struct series s[MAX_SERIES];
    size_t n_s;
    struct genai g[MAX_GENAI];
    size_t n_g;
    struct stage st[MAX_STAGES];
    size_t n_st;
    double rate_limited, budget_rejected; /* host counters, read at export */
};

/* Export thread only: what one export needs, kept from one export to the
 * next and only ever grown, so a collector that is down (bodies waiting in
 * the exporter for minutes) does not leave the heap fragmented by big
 * short-lived arrays; bench/otel_down measured the difference. */
struct scratch {
    struct otlp_point *pts;
    size_t cap_pts;
    struct otlp_kv *kvs;
    size_t cap_kvs;
    uint64_t *buckets;
    size_t cap_b;
    const struct otlp_kv *sattr[MAX_SERIES], *gattr[MAX_GENAI];
    size_t gn[MAX_GENAI];
    struct otlp_buf out;
    struct agg *snap, *prev;    /* prev: the last delta snapshot, valid when have_prev */
    int have_prev;
};

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return 0;
    void *n = realloc(*p, need * elem);
    if (!n) return -1;
    *p = n;
    *cap = need;
    return 0;
}

struct otel {
    const struct hr_host *host;
    struct hr_instance *self;
    /* configuration (read-only after init) */
    int enabled, managed, console, json, gzip, delta;
    const char *mode;
    char *endpoint, *endpoint_shown, *service_name;
    unsigned interval_ms, timeout_ms;
    struct otlp_kv *res;
    size_t n_res;
    char **res_strings;         /* owned keys/values */
    size_t n_res_strings;
    char instance_id[40];
    struct hr_exporter *ex;
    /* aggregation */
    pthread_mutex_t lock;
    struct agg cur;             /* protected by lock */
    uint64_t start_ns;          /* lock: cumulative start, moved by POST /stats/reset */
    unsigned resets;            /* lock: POST /stats/reset count */
    struct scratch sc;          /* export thread only */
    unsigned prev_resets;       /* export thread only: `resets` when sc.prev was taken */
    uint64_t last_ns;           /* export thread only: the last export (delta start) */
    /* export thread */
    pthread_t thread;
    int thread_started;
    pthread_mutex_t tlock;
    pthread_cond_t tcond;
    int stop;
    /* console exporter counters under `lock` (otlp_http ones come from the host) */
    uint64_t console_ok, console_failed;
    double console_last;
};

/* ---------------------------------------------------------------- config */

static int warned_var(struct otel *o, const char *var, const char *val, const char *want, const char *def)
{
    char shown[512]; /* an endpoint with a typo'd scheme still holds its password */
    hr_url_shown(val, shown, sizeof shown);
    o->host->log(o->self, HR_LOG_WARN, "%s='%s' is not valid (%s); using %s", var, shown, want, def);
    return 0;
}

/* First set, non-empty variable of a NULL-terminated list; *which names it. */
static const char *env_first(const char *const *names, const char **which)
{
    for (size_t i = 0; names[i]; i++) {
        const char *v = getenv(names[i]);
        if (v && *v) {
            if (which) *which = names[i];
            return v;
        }
    }
    return NULL;
}

static int parse_bool(const char *v, int *out)
{
    static const char *const t[] = {"1", "true", "yes", "on"}, *const f[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (!strcasecmp(v, t[i])) return *out = 1, 0;
        if (!strcasecmp(v, f[i])) return *out = 0, 0;
    }
    return -1;
}

static unsigned env_ms(struct otel *o, const char *const *names, unsigned def, unsigned lo, unsigned hi)
{
    const char *which = NULL, *v = env_first(names, &which);
    if (!v) return def;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        char want[96], d[32];
        snprintf(want, sizeof want, "milliseconds, %u to %u", lo, hi);
        snprintf(d, sizeof d, "%u", def);
        warned_var(o, which, v, want, d);
        return def;
    }
    return (unsigned)x;
}

/* Every variable of managed mode (doc/otel.md). */
static const char *const MANAGED_VARS[] = {
    "HEADROOM_OTEL_METRICS_ENABLED", "HEADROOM_OTEL_METRICS_EXPORTER", "HEADROOM_OTEL_METRICS_ENDPOINT",
    "HEADROOM_OTEL_METRICS_HEADERS", "HEADROOM_OTEL_METRICS_EXPORT_INTERVAL_MS", "HEADROOM_OTEL_SERVICE_NAME",
    "HEADROOM_OTEL_RESOURCE_ATTRIBUTES", "HEADROOM_OTEL_METRICS_PROTOCOL", "HEADROOM_OTEL_METRICS_TEMPORALITY",
    "HEADROOM_OTEL_METRICS_COMPRESSION", "HEADROOM_OTEL_METRICS_TIMEOUT_MS", NULL};

static int any_headroom_otel_var(void) { return env_first(MANAGED_VARS, NULL) != NULL; }

struct res_builder {
    struct otel *o;
    int failed;
};

static char *keep(struct otel *o, const char *s)
{
    char **r = realloc(o->res_strings, (o->n_res_strings + 1) * sizeof *r);
    if (!r) return NULL;
    o->res_strings = r;
    return r[o->n_res_strings++] = strdup(s);
}

static void res_set(struct otel *o, const char *k, const char *v)
{
    for (size_t i = 0; i < o->n_res; i++)
        if (!strcmp(o->res[i].key, k)) {
            o->res[i].s = keep(o, v);
            return;
        }
    struct otlp_kv *r = realloc(o->res, (o->n_res + 1) * sizeof *r);
    if (!r) return;
    o->res = r;
    const char *kk = keep(o, k), *vv = keep(o, v);
    if (!kk || !vv) return;
    o->res[o->n_res++] = (struct otlp_kv)OTLP_KV_STR(kk, vv);
}

static void res_cb(void *ud, const char *k, const char *v) { res_set(ud, k, v); }

struct hdrs {
    char **v;
    size_t n;
};

static void hdr_cb(void *ud, const char *k, const char *v)
{
    struct hdrs *h = ud;
    char **r = realloc(h->v, (h->n + 2) * sizeof *r);
    if (!r) return;
    h->v = r;
    size_t len = strlen(k) + strlen(v) + 3;
    if ((h->v[h->n] = malloc(len))) snprintf(h->v[h->n++], len, "%s: %s", k, v);
    h->v[h->n] = NULL;
}

static void hdrs_free(struct hdrs *h)
{
    for (size_t i = 0; i < h->n; i++) free(h->v[i]);
    free(h->v);
}

/* The endpoint as /stats shows it: without user:password@ and query. */
static char *shown_url(const char *url)
{
    size_t n = strlen(url) + 16;
    char *out = malloc(n);
    if (out) hr_url_shown(url, out, n);
    return out;
}

static int configure(struct otel *o)
{
    const char *v, *which = NULL;
    int managed = 0;
    if ((v = getenv("HEADROOM_OTEL_METRICS_ENABLED")) && *v && parse_bool(v, &managed))
        warned_var(o, "HEADROOM_OTEL_METRICS_ENABLED", v, "0 or 1", "0");
    o->managed = managed;
    if (managed) {
        o->mode = "managed";
    } else if (!any_headroom_otel_var()) {
        /* Ambient: the process's standard OpenTelemetry variables. */
        int disabled = 0;
        if ((v = getenv("OTEL_SDK_DISABLED")) && !strcasecmp(v, "true")) disabled = 1;
        const char *exp = getenv("OTEL_METRICS_EXPORTER");
        if (exp && !strcasecmp(exp, "none")) disabled = 1;
        int asked = (exp && (!strcasecmp(exp, "otlp") || !strcasecmp(exp, "console"))) ||
                    env_first((const char *const[]){"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT", NULL},
                              NULL);
        if (disabled || !asked) {
            o->mode = "off";
            return 0;
        }
        o->mode = "ambient";
    } else {
        o->mode = "off";
        return 0;
    }
    o->enabled = 1;

    /* exporter */
    const char *exp = managed ? getenv("HEADROOM_OTEL_METRICS_EXPORTER") : getenv("OTEL_METRICS_EXPORTER");
    const char *exp_var = managed ? "HEADROOM_OTEL_METRICS_EXPORTER" : "OTEL_METRICS_EXPORTER";
    if (exp && *exp) {
        if (!strcasecmp(exp, "console")) o->console = 1;
        else if (strcasecmp(exp, "otlp_http") && strcasecmp(exp, "otlp"))
            warned_var(o, exp_var, exp, "otlp_http or console", "otlp_http");
    }

    /* endpoint: HEADROOM_OTEL_METRICS_ENDPOINT as is; the standard
     * per-signal one as is; the standard base + /v1/metrics. */
    const char *ep = managed ? getenv("HEADROOM_OTEL_METRICS_ENDPOINT") : NULL;
    char buf[2048];
    if (!ep || !*ep) ep = getenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT");
    if ((!ep || !*ep) && (v = getenv("OTEL_EXPORTER_OTLP_ENDPOINT")) && *v) {
        size_t l = strlen(v);
        snprintf(buf, sizeof buf, "%.*s/v1/metrics", (int)(l && v[l - 1] == '/' ? l - 1 : l), v);
        ep = buf;
    }
    if (!ep || !*ep) ep = "http://localhost:4318/v1/metrics";
    if (strncmp(ep, "http://", 7) && strncmp(ep, "https://", 8)) {
        warned_var(o, managed && getenv("HEADROOM_OTEL_METRICS_ENDPOINT") ? "HEADROOM_OTEL_METRICS_ENDPOINT"
                                                                          : "OTEL_EXPORTER_OTLP_ENDPOINT",
                   ep, "an http:// or https:// URL", "http://localhost:4318/v1/metrics");
        ep = "http://localhost:4318/v1/metrics";
    }
    o->endpoint = strdup(ep);
    o->endpoint_shown = shown_url(ep);

    /* protocol */
    const char *const proto_vars_m[] = {"HEADROOM_OTEL_METRICS_PROTOCOL", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
                                        "OTEL_EXPORTER_OTLP_PROTOCOL", NULL};
    if ((v = env_first(managed ? proto_vars_m : proto_vars_m + 1, &which))) {
        if (!strcmp(v, "http/json")) o->json = 1;
        else if (strcmp(v, "http/protobuf"))
            warned_var(o, which, v, "http/protobuf or http/json; grpc is not supported", "http/protobuf");
    }
    /* temporality */
    const char *const temp_vars[] = {"HEADROOM_OTEL_METRICS_TEMPORALITY", "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
                                     NULL};
    if ((v = env_first(managed ? temp_vars : temp_vars + 1, &which))) {
        if (!strcasecmp(v, "delta") || !strcasecmp(v, "lowmemory")) o->delta = 1;
        else if (strcasecmp(v, "cumulative")) warned_var(o, which, v, "cumulative or delta", "cumulative");
    }
    /* compression */
    const char *const comp_vars[] = {"HEADROOM_OTEL_METRICS_COMPRESSION", "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION",
                                     "OTEL_EXPORTER_OTLP_COMPRESSION", NULL};
    if ((v = env_first(managed ? comp_vars : comp_vars + 1, &which))) {
        if (!strcasecmp(v, "gzip")) o->gzip = 1;
        else if (strcasecmp(v, "none")) warned_var(o, which, v, "gzip or none", "none");
    }
    /* interval and timeout */
    const char *const int_vars[] = {"HEADROOM_OTEL_METRICS_EXPORT_INTERVAL_MS", "OTEL_METRIC_EXPORT_INTERVAL", NULL};
    o->interval_ms = env_ms(o, managed ? int_vars : int_vars + 1, 10000, 100, 86400000);
    const char *const to_vars[] = {"HEADROOM_OTEL_METRICS_TIMEOUT_MS", "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
                                   "OTEL_EXPORTER_OTLP_TIMEOUT", NULL};
    o->timeout_ms = env_ms(o, managed ? to_vars : to_vars + 1, 10000, 100, 600000);

    /* resource */
    char id[16];
    if (getrandom(id, sizeof id, 0) != (ssize_t)sizeof id) memset(id, 0x5a, sizeof id);
    id[6] = (char)((id[6] & 0x0f) | 0x40);
    id[8] = (char)((id[8] & 0x3f) | 0x80);
    const unsigned char *u = (const unsigned char *)id;
    snprintf(o->instance_id, sizeof o->instance_id,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2], u[3], u[4], u[5],
             u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
    res_set(o, "service.name", "headroom-proxy");
    res_set(o, "service.version", PACKAGE_VERSION);
    res_set(o, "service.instance.id", o->instance_id);
    res_set(o, "telemetry.sdk.name", "headroomd");
    res_set(o, "telemetry.sdk.version", PACKAGE_VERSION);
    const char *const ra_vars[] = {"HEADROOM_OTEL_RESOURCE_ATTRIBUTES", "OTEL_RESOURCE_ATTRIBUTES", NULL};
    if ((v = env_first(managed ? ra_vars : ra_vars + 1, &which)) && otlp_parse_kv_list(v, res_cb, o) < 0)
        warned_var(o, which, v, "comma-separated key=value pairs", "no extra attributes");
    const char *const sn_vars[] = {"HEADROOM_OTEL_SERVICE_NAME", "OTEL_SERVICE_NAME", NULL};
    if ((v = env_first(managed ? sn_vars : sn_vars + 1, NULL))) res_set(o, "service.name", v);
    for (size_t i = 0; i < o->n_res; i++)
        if (!strcmp(o->res[i].key, "service.name")) o->service_name = strdup(o->res[i].s);

    if (o->console) return 0;
    /* headers: never logged, never shown */
    struct hdrs h = {0};
    const char *const hd_vars[] = {"HEADROOM_OTEL_METRICS_HEADERS", "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
                                   "OTEL_EXPORTER_OTLP_HEADERS", NULL};
    if ((v = env_first(managed ? hd_vars : hd_vars + 1, &which)) && otlp_parse_kv_list(v, hdr_cb, &h) < 0) {
        o->host->log(o->self, HR_LOG_WARN, "%s is not comma-separated key=value pairs (value not shown); sending no extra headers",
                     which);
        hdrs_free(&h);
        h = (struct hdrs){0};
    }
    struct hr_export_conf ec = {.struct_size = sizeof ec, .name = "otel_metrics", .url = o->endpoint,
                                .headers = (const char *const *)h.v, .content_type = o->json ? OTLP_CT_JSON : OTLP_CT_PROTOBUF,
                                .gzip = o->gzip, .timeout_ms = o->timeout_ms,
                                /* A cumulative body supersedes the ones before it: while a collector is
                                 * down one waiting is enough. Delta bodies each carry their interval. */
                                .queue_max = o->delta ? 8 : 2};
    o->ex = o->host->exporter_new(o->self, &ec);
    hdrs_free(&h);
    if (!o->ex) {
        o->host->log(o->self, HR_LOG_ERROR, "cannot start the OTLP exporter for %s; metrics export is off",
                     o->endpoint_shown ? o->endpoint_shown : "?");
        o->enabled = 0;
    }
    return 0;
}

/* ----------------------------------------------------------- aggregation */

static void copy_label(char *dst, size_t cap, const char *s)
{
    snprintf(dst, cap, "%s", s ? s : "");
}

static struct series *series_for(struct agg *a, const char *provider, const char *model, const char *stack)
{
    for (size_t i = 0; i < a->n_s; i++) {
        struct series *s = &a->s[i];
        if (!strcmp(s->provider, provider) && !strncmp(s->model, model, sizeof s->model - 1) &&
            !strncmp(s->stack, stack, sizeof s->stack - 1))
            return s;
    }
    if (a->n_s >= MAX_SERIES - 1 && !(!strcmp(model, "other") && !strcmp(stack, "other")))
        return series_for(a, provider, "other", "other"); /* the last slots stay for overflow */
    if (a->n_s >= MAX_SERIES) return &a->s[MAX_SERIES - 1];
    struct series *s = &a->s[a->n_s++];
    copy_label(s->provider, sizeof s->provider, provider);
    copy_label(s->model, sizeof s->model, model);
    copy_label(s->stack, sizeof s->stack, stack);
    return s;
}

static struct genai *genai_for(struct agg *a, const char *provider, const char *model, const char *error)
{
    for (size_t i = 0; i < a->n_g; i++) {
        struct genai *g = &a->g[i];
        if (!strcmp(g->provider, provider) && !strncmp(g->model, model, sizeof g->model - 1) && !strcmp(g->error, error))
            return g;
    }
    if (a->n_g >= MAX_GENAI - 1 && strcmp(model, "other")) return genai_for(a, provider, "other", error);
    if (a->n_g >= MAX_GENAI) return &a->g[MAX_GENAI - 1];
    struct genai *g = &a->g[a->n_g++];
    copy_label(g->provider, sizeof g->provider, provider);
    copy_label(g->model, sizeof g->model, model);
    copy_label(g->error, sizeof g->error, error);
    return g;
}

static struct stage *stage_for(struct agg *a, const char *name)
{
    for (size_t i = 0; i < a->n_st; i++)
        if (!strncmp(a->st[i].name, name, sizeof a->st[i].name - 1)) return &a->st[i];
    if (a->n_st >= MAX_STAGES) return NULL;
    struct stage *s = &a->st[a->n_st++];
    copy_label(s->name, sizeof s->name, name);
    return s;
}

static void on_event(void *state, const struct hr_event *ev)
{
    struct otel *o = state;
    if (!o->enabled) return;
    const char *provider = ev->provider_name && *ev->provider_name ? ev->provider_name : "unknown";
    const char *model = ev->model ? ev->model : "";
    const char *stack = ev->stack ? ev->stack : "";
    int llm = HR_HAS_FIELD(ev, struct hr_event, wire_format) && ev->wire_format != HR_WIRE_UNKNOWN;
    int credited = HR_HAS_FIELD(ev, struct hr_event, credited) ? ev->credited : !ev->failed;
    pthread_mutex_lock(&o->lock);
    struct agg *a = &o->cur;
    struct series *s = series_for(a, provider, model, stack);
    /* The same rules as /stats (src/stats.c): token totals cover credited requests. */
    s->c[C_REQUESTS]++;
    if (ev->cached) s->c[C_CACHED]++;
    if (ev->failed) s->c[C_FAILED]++;
    if (credited) {
        s->c[C_TOK_IN] += ev->tokens_input;
        s->c[C_TOK_SENT] += ev->tokens_sent;
        s->c[C_TOK_SAVED] += ev->tokens_saved;
    }
    s->c[C_TOK_OUT] += ev->tokens_output;
    s->cost_usd += ev->cost_usd;
    s->savings_usd += ev->savings_usd;
    int usage_seen = ev->provider_input_tokens || ev->cache_read_tokens || ev->cache_write_tokens || ev->tokens_output;
    if (usage_seen && ev->provider != HR_PROVIDER_UNKNOWN) {
        s->c[C_CACHE_REQ]++;
        if (ev->cache_read_tokens) s->c[C_CACHE_HIT]++;
        s->c[C_CACHE_READ] += ev->cache_read_tokens;
        s->c[C_CACHE_WRITE] += ev->cache_write_tokens;
        s->c[C_CACHE_W5M] += ev->cache_write_5m_tokens;
        s->c[C_CACHE_W1H] += ev->cache_write_1h_tokens;
    }
    hist_add(&s->latency, B_DURATION, NB(B_DURATION), ev->latency_ms / 1000);
    if (ev->overhead_ms >= 0) hist_add(&s->overhead, B_FINE, NB(B_FINE), ev->overhead_ms / 1000);
    if (ev->ttfb_ms >= 0) hist_add(&s->ttfb, B_DURATION, NB(B_DURATION), ev->ttfb_ms / 1000);
    for (size_t i = 0; i < ev->n_stages; i++) {
        struct stage *st = stage_for(a, ev->stages[i].name ? ev->stages[i].name : "");
        if (st) hist_add(&st->h, B_FINE, NB(B_FINE), ev->stages[i].ms / 1000);
    }
    if (ev->pipeline_ms >= 0) {
        struct stage *st = stage_for(a, "pipeline_total");
        if (st) hist_add(&st->h, B_FINE, NB(B_FINE), ev->pipeline_ms / 1000);
    }
    /* GenAI client conventions: calls that went to a model (not our cache). */
    if (llm && !ev->cached) {
        char err[16] = "";
        if (ev->failed) snprintf(err, sizeof err, "%s", ev->status == 504 ? "timeout" : "_OTHER");
        else if (ev->status < 200 || ev->status >= 300) snprintf(err, sizeof err, "%d", ev->status);
        struct genai *g = genai_for(a, provider, model, err);
        hist_add(&g->duration, B_DURATION, NB(B_DURATION), ev->latency_ms / 1000);
        if (!err[0]) { /* input: what the provider was sent and billed, as on the Langfuse span */
            hist_add(&g->tok_in, B_TOKENS, NB(B_TOKENS), (double)ev->tokens_sent);
            hist_add(&g->tok_out, B_TOKENS, NB(B_TOKENS), (double)ev->tokens_output);
        }
    }
    pthread_mutex_unlock(&o->lock);
}

/* ---------------------------------------------------------------- export */

struct walk {
    double rate_limited, budget_rejected;
};

static void walk_cb(void *ud, const struct hr_metric_family *f, const struct hr_metric_sample *s)
{
    struct walk *w = ud;
    if (!strcmp(f->name, "headroom_requests_rate_limited_total")) w->rate_limited = s->value;
    else if (!strcmp(f->name, "headroom_budget_rejected_total")) w->budget_rejected = s->value;
}

static uint64_t now_ns(const struct otel *o)
{
    (void)o;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Scratch for one export: points, attribute arrays, bucket copies. */
struct build {
    struct otlp_metric m[40];
    size_t n_m;
    struct otlp_point *pts;
    size_t n_pts, cap_pts;
    struct otlp_kv *kvs;
    size_t n_kvs, cap_kvs;
    uint64_t *buckets;
    size_t n_b, cap_b;
    uint64_t start, now;
    int delta;
};

static struct otlp_kv *kv_alloc(struct build *b, size_t n)
{
    if (b->n_kvs + n > b->cap_kvs) return NULL;
    struct otlp_kv *k = &b->kvs[b->n_kvs];
    b->n_kvs += n;
    return k;
}

static struct otlp_point *pt_alloc(struct build *b)
{
    if (b->n_pts >= b->cap_pts) return NULL;
    struct otlp_point *p = &b->pts[b->n_pts++];
    memset(p, 0, sizeof *p);
    p->start_ns = b->start;
    p->time_ns = b->now;
    return p;
}

static void metric_begin(struct build *b, const char *name, const char *desc, const char *unit, enum otlp_metric_kind kind)
{
    struct otlp_metric *m = &b->m[b->n_m];
    *m = (struct otlp_metric){name, desc, unit, kind, b->delta ? OTLP_DELTA : OTLP_CUMULATIVE, 1, &b->pts[b->n_pts], 0};
    if (kind == OTLP_GAUGE) m->temporality = OTLP_TEMPORALITY_UNSPECIFIED;
}

static void metric_end(struct build *b)
{
    struct otlp_metric *m = &b->m[b->n_m];
    m->n_points = (size_t)(&b->pts[b->n_pts] - m->points);
    if (m->n_points && b->n_m + 1 < NB(b->m)) b->n_m++; /* metrics with no point are left out */
}

static const struct otlp_kv *series_attrs(struct build *b, const struct series *s)
{
    struct otlp_kv *k = kv_alloc(b, 3);
    if (!k) return NULL;
    k[0] = (struct otlp_kv)OTLP_KV_STR("provider", s->provider);
    k[1] = (struct otlp_kv)OTLP_KV_STR("model", s->model);
    k[2] = (struct otlp_kv)OTLP_KV_STR("stack", s->stack[0] ? s->stack : "proxy");
    return k;
}

static void sum_point(struct build *b, const struct otlp_kv *attrs, size_t n_attrs, double cur, double prev, int is_double)
{
    double v = b->delta ? cur - prev : cur;
    if (b->delta && v == 0) return;
    struct otlp_point *p = pt_alloc(b);
    if (!p) return;
    p->attrs = (struct otlp_attrs){attrs, n_attrs};
    p->is_double = is_double;
    if (is_double) p->as_double = v;
    else p->as_int = (int64_t)v;
}

static void hist_point(struct build *b, const struct otlp_kv *attrs, size_t n_attrs, const struct hist *cur,
                       const struct hist *prev, const double *bounds, size_t nb)
{
    uint64_t count = cur->count - (b->delta && prev ? prev->count : 0);
    if (!cur->count || (b->delta && !count)) return;
    if (b->n_b + nb + 1 > b->cap_b) return;
    struct otlp_point *p = pt_alloc(b);
    if (!p) return;
    uint64_t *bc = &b->buckets[b->n_b];
    b->n_b += nb + 1;
    for (size_t i = 0; i <= nb; i++) bc[i] = cur->b[i] - (b->delta && prev ? prev->b[i] : 0);
    p->attrs = (struct otlp_attrs){attrs, n_attrs};
    p->count = count;
    p->sum = cur->sum - (b->delta && prev ? prev->sum : 0);
    p->n_bounds = nb;
    p->bounds = bounds;
    p->bucket_counts = bc;
    /* min/max of what the point covers: the interval (delta) or all time. */
    p->has_min_max = b->delta ? cur->icount > 0 : 1;
    p->min = b->delta ? cur->imin : cur->min;
    p->max = b->delta ? cur->imax : cur->max;
}

static const struct series *prev_series(const struct agg *prev, size_t i) { return prev && i < prev->n_s ? &prev->s[i] : NULL; }

static void counter_metric(struct build *b, const struct agg *a, const struct agg *prev, const char *name, const char *desc,
                           const char *unit, int c, const struct otlp_kv **attrs)
{
    metric_begin(b, name, desc, unit, OTLP_SUM);
    for (size_t i = 0; i < a->n_s; i++) {
        const struct series *ps = prev_series(prev, i);
        if (attrs[i]) sum_point(b, attrs[i], 3, (double)a->s[i].c[c], ps ? (double)ps->c[c] : 0, 0);
    }
    metric_end(b);
}

static void host_counter(struct build *b, const char *name, const char *desc, double cur, double prev)
{
    metric_begin(b, name, desc, "{request}", OTLP_SUM);
    if (cur < prev) prev = 0; /* POST /stats/reset zeroed it */
    sum_point(b, NULL, 0, cur, prev, 0);
    metric_end(b);
}

/* Encode aggregates `a` (and `prev` for delta) into `out`; returns points. */
static size_t build_request(struct otel *o, const struct agg *a, const struct agg *prev, uint64_t start_ns,
                            struct otlp_buf *out)
{
    struct scratch *sc = &o->sc;
    struct build b = {.start = start_ns, .now = now_ns(o), .delta = o->delta};
    size_t max_pts = a->n_s * 24 + a->n_g * 3 + a->n_st + 8;
    size_t points = 0;
    /* series 3 (+4 per TTL point), genai 5 (+5 per token type), stage 1 */
    if (grow((void **)&sc->pts, &sc->cap_pts, max_pts, sizeof *sc->pts) ||
        grow((void **)&sc->kvs, &sc->cap_kvs, a->n_s * 11 + a->n_g * 15 + a->n_st + 8, sizeof *sc->kvs) ||
        grow((void **)&sc->buckets, &sc->cap_b, max_pts * (MAX_BOUNDS + 1), sizeof *sc->buckets))
        return 0;
    b.pts = sc->pts, b.cap_pts = sc->cap_pts;
    b.kvs = sc->kvs, b.cap_kvs = sc->cap_kvs;
    b.buckets = sc->buckets, b.cap_b = sc->cap_b;
    const struct otlp_kv **sattr = sc->sattr;
    for (size_t i = 0; i < a->n_s; i++) sattr[i] = series_attrs(&b, &a->s[i]);

    counter_metric(&b, a, prev, "headroom.proxy.requests", "Requests proxied", "{request}", C_REQUESTS, sattr);
    counter_metric(&b, a, prev, "headroom.proxy.requests.cached", "Requests answered from the response cache", "{request}",
                   C_CACHED, sattr);
    counter_metric(&b, a, prev, "headroom.proxy.requests.failed", "Requests headroomd could not get an answer for",
                   "{request}", C_FAILED, sattr);
    host_counter(&b, "headroom.proxy.requests.rate_limited", "Requests refused by the rate limit", a->rate_limited,
                 b.delta && prev ? prev->rate_limited : 0);
    host_counter(&b, "headroom.proxy.requests.budget_rejected", "Requests refused by the budget", a->budget_rejected,
                 b.delta && prev ? prev->budget_rejected : 0);
    counter_metric(&b, a, prev, "headroom.proxy.tokens.input", "Input tokens before compression (credited requests)",
                   "{token}", C_TOK_IN, sattr);
    counter_metric(&b, a, prev, "headroom.proxy.tokens.output", "Output tokens reported by providers", "{token}", C_TOK_OUT,
                   sattr);
    counter_metric(&b, a, prev, "headroom.proxy.tokens.saved", "Input tokens removed by compression", "{token}", C_TOK_SAVED,
                   sattr);
    counter_metric(&b, a, prev, "headroom.proxy.tokens.sent", "Input tokens forwarded after compression", "{token}",
                   C_TOK_SENT, sattr);
    metric_begin(&b, "headroom.proxy.cost", "Provider cost of proxied requests", "{USD}", OTLP_SUM);
    for (size_t i = 0; i < a->n_s; i++) {
        const struct series *ps = prev_series(prev, i);
        if (sattr[i]) sum_point(&b, sattr[i], 3, a->s[i].cost_usd, ps ? ps->cost_usd : 0, 1);
    }
    metric_end(&b);
    metric_begin(&b, "headroom.proxy.savings", "Compression savings at list input price", "{USD}", OTLP_SUM);
    for (size_t i = 0; i < a->n_s; i++) {
        const struct series *ps = prev_series(prev, i);
        if (sattr[i]) sum_point(&b, sattr[i], 3, a->s[i].savings_usd, ps ? ps->savings_usd : 0, 1);
    }
    metric_end(&b);
    counter_metric(&b, a, prev, "headroom.proxy.cache.requests", "Answers that carried usage", "{request}", C_CACHE_REQ,
                   sattr);
    counter_metric(&b, a, prev, "headroom.proxy.cache.hit_requests", "Answers with provider prompt-cache reads",
                   "{request}", C_CACHE_HIT, sattr);
    counter_metric(&b, a, prev, "headroom.proxy.cache.read.tokens", "Provider prompt-cache read tokens", "{token}",
                   C_CACHE_READ, sattr);
    counter_metric(&b, a, prev, "headroom.proxy.cache.write.tokens", "Provider prompt-cache write tokens", "{token}",
                   C_CACHE_WRITE, sattr);
    metric_begin(&b, "headroom.proxy.cache.write_ttl.tokens", "Cache write tokens by observed TTL bucket", "{token}", OTLP_SUM);
    for (int t = 0; t < 2; t++)
        for (size_t i = 0; i < a->n_s; i++) {
            const struct series *ps = prev_series(prev, i);
            int c = t ? C_CACHE_W1H : C_CACHE_W5M;
            if (!a->s[i].c[c]) continue;
            struct otlp_kv *k = kv_alloc(&b, 4);
            if (!k || !sattr[i]) continue;
            memcpy(k, sattr[i], 3 * sizeof *k);
            k[3] = (struct otlp_kv)OTLP_KV_STR("ttl", t ? "1h" : "5m");
            sum_point(&b, k, 4, (double)a->s[i].c[c], ps ? (double)ps->c[c] : 0, 0);
        }
    metric_end(&b);

    static const struct {
        const char *name, *desc;
        size_t off;
        int fine;
    } hs[] = {
        {"headroom.proxy.request.duration", "Request latency, from the whole request read to the answer's last byte", offsetof(struct series, latency), 0},
        {"headroom.proxy.overhead.duration", "Time headroomd spent before forwarding", offsetof(struct series, overhead), 1},
        {"headroom.proxy.ttfb.duration", "Forward to first upstream byte", offsetof(struct series, ttfb), 0},
    };
    for (size_t k = 0; k < NB(hs); k++) {
        metric_begin(&b, hs[k].name, hs[k].desc, "s", OTLP_HISTOGRAM);
        for (size_t i = 0; i < a->n_s; i++) {
            const struct series *ps = prev_series(prev, i);
            const struct hist *h = (const struct hist *)((const char *)&a->s[i] + hs[k].off);
            const struct hist *ph = ps ? (const struct hist *)((const char *)ps + hs[k].off) : NULL;
            if (sattr[i])
                hist_point(&b, sattr[i], 3, h, ph, hs[k].fine ? B_FINE : B_DURATION, hs[k].fine ? NB(B_FINE) : NB(B_DURATION));
        }
        metric_end(&b);
    }
    metric_begin(&b, "headroom.compression.stage.duration", "Time per pipeline stage (pipeline_total: the whole pipeline)", "s",
                 OTLP_HISTOGRAM);
    for (size_t i = 0; i < a->n_st; i++) {
        struct otlp_kv *k = kv_alloc(&b, 1);
        if (!k) break;
        k[0] = (struct otlp_kv)OTLP_KV_STR("stage", a->st[i].name);
        hist_point(&b, k, 1, &a->st[i].h, prev && i < prev->n_st ? &prev->st[i].h : NULL, B_FINE, NB(B_FINE));
    }
    metric_end(&b);

    /* GenAI client semantic conventions. */
    const struct otlp_kv **gattr = sc->gattr;
    size_t *gn = sc->gn;
    for (size_t i = 0; i < a->n_g; i++) {
        struct otlp_kv *k = kv_alloc(&b, 5);
        if (!k) continue;
        const struct genai *g = &a->g[i];
        k[0] = (struct otlp_kv)OTLP_KV_STR("gen_ai.operation.name", "chat");
        k[1] = (struct otlp_kv)OTLP_KV_STR("gen_ai.provider.name", g->provider);
        k[2] = (struct otlp_kv)OTLP_KV_STR("gen_ai.system", g->provider);
        k[3] = (struct otlp_kv)OTLP_KV_STR("gen_ai.request.model", g->model);
        k[4] = (struct otlp_kv)OTLP_KV_STR("error.type", g->error);
        gattr[i] = k;
        gn[i] = g->error[0] ? 5 : 4;
    }
    metric_begin(&b, "gen_ai.client.token.usage", "Measures number of input and output tokens used", "{token}", OTLP_HISTOGRAM);
    for (int t = 0; t < 2; t++)
        for (size_t i = 0; i < a->n_g; i++) {
            const struct genai *g = &a->g[i];
            const struct genai *pg = prev && i < prev->n_g ? &prev->g[i] : NULL;
            const struct hist *h = t ? &g->tok_out : &g->tok_in;
            const struct hist *ph = pg ? (t ? &pg->tok_out : &pg->tok_in) : NULL;
            if (!gattr[i] || !h->count) continue;
            struct otlp_kv *k = kv_alloc(&b, 5);
            if (!k) continue;
            memcpy(k, gattr[i], 4 * sizeof *k);
            k[4] = (struct otlp_kv)OTLP_KV_STR("gen_ai.token.type", t ? "output" : "input");
            hist_point(&b, k, 5, h, ph, B_TOKENS, NB(B_TOKENS));
        }
    metric_end(&b);
    metric_begin(&b, "gen_ai.client.operation.duration", "GenAI operation duration", "s", OTLP_HISTOGRAM);
    for (size_t i = 0; i < a->n_g; i++)
        if (gattr[i])
            hist_point(&b, gattr[i], gn[i], &a->g[i].duration, prev && i < prev->n_g ? &prev->g[i].duration : NULL, B_DURATION,
                       NB(B_DURATION));
    metric_end(&b);

    const struct otlp_attrs res = {o->res, o->n_res};
    const struct otlp_scope scope = {"headroomd", PACKAGE_VERSION};
    int rc = o->json || o->console ? otlp_metrics_json(out, &res, &scope, b.m, b.n_m)
                                   : otlp_metrics_pb(out, &res, &scope, b.m, b.n_m);
    if (rc == 0) points = b.n_pts ? b.n_pts : 1;
    return points;
}

/* Restart the interval min/max of every histogram (lock held). */
static void interval_restart(struct agg *a)
{
    for (size_t i = 0; i < a->n_s; i++) a->s[i].latency.icount = a->s[i].overhead.icount = a->s[i].ttfb.icount = 0;
    for (size_t i = 0; i < a->n_g; i++) a->g[i].tok_in.icount = a->g[i].tok_out.icount = a->g[i].duration.icount = 0;
    for (size_t i = 0; i < a->n_st; i++) a->st[i].h.icount = 0;
}

static void export_once(struct otel *o)
{
    struct scratch *sc = &o->sc;
    if (!sc->snap && !(sc->snap = malloc(sizeof *sc->snap))) return;
    struct agg *snap = sc->snap;
    struct walk w = {0};
    o->host->metrics_visit(walk_cb, &w); /* outside our lock: the host takes its own */
    pthread_mutex_lock(&o->lock);
    o->cur.rate_limited = w.rate_limited;
    o->cur.budget_rejected = w.budget_rejected;
    memcpy(snap, &o->cur, sizeof *snap);
    interval_restart(&o->cur);
    uint64_t start = o->start_ns;
    unsigned resets = o->resets;
    pthread_mutex_unlock(&o->lock);
    /* Reset since the last export: its series are gone, deltas count from zero. */
    if (sc->have_prev && resets != o->prev_resets) sc->have_prev = 0;
    struct otlp_buf *out = &sc->out;
    out->len = 0;
    out->oom = 0;
    size_t points = build_request(o, snap, o->delta && sc->have_prev ? sc->prev : NULL, o->delta ? o->last_ns : start, out);
    struct otlp_buf buf = *out;
    uint64_t now = now_ns(o);
    if (!points) {
        o->host->log(o->self, HR_LOG_WARN, "could not encode the metrics export (out of memory); skipped");
        pthread_mutex_lock(&o->lock);
        o->console_failed += o->console;
        pthread_mutex_unlock(&o->lock);
    } else if (o->console) {
        flockfile(stdout);
        fwrite(buf.data, 1, buf.len, stdout);
        fputc('\n', stdout);
        fflush(stdout);
        funlockfile(stdout);
        pthread_mutex_lock(&o->lock);
        o->console_ok++;
        o->console_last = (double)now / 1e9;
        pthread_mutex_unlock(&o->lock);
    } else {
        o->host->export_post(o->ex, buf.data, buf.len, points); /* HR_EAGAIN is counted by the host */
    }
    if (o->delta) {
        /* This snapshot is the next one's base; the old base is the next snapshot's memory. */
        sc->snap = sc->prev;
        sc->prev = snap;
        sc->have_prev = 1;
        o->prev_resets = resets;
        o->last_ns = now;
    }
}

static void *export_thread(void *arg)
{
    struct otel *o = arg;
    pthread_setname_np(pthread_self(), "hr-otel"); /* top -H, ps -L */
    pthread_mutex_lock(&o->tlock);
    for (;;) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += o->interval_ms / 1000;
        ts.tv_nsec += (long)(o->interval_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        while (!o->stop && pthread_cond_timedwait(&o->tcond, &o->tlock, &ts) != ETIMEDOUT) {
        }
        int last = o->stop;
        pthread_mutex_unlock(&o->tlock);
        /* Once more at shutdown, even when it came before this thread first
         * ran: the last interval is not lost. */
        export_once(o);
        pthread_mutex_lock(&o->tlock);
        if (last) break;
    }
    pthread_mutex_unlock(&o->tlock);
    return NULL;
}

/* ----------------------------------------------------------------- /stats */

static json_t *iso_or_null(double t)
{
    if (t <= 0) return json_null();
    time_t s = (time_t)t;
    struct tm tm;
    char b[32];
    gmtime_r(&s, &tm);
    strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(b);
}

static json_t *stats_block(void *state)
{
    struct otel *o = state;
    json_t *j = json_object();
    json_object_set_new(j, "enabled", json_boolean(o->enabled));
    json_object_set_new(j, "managed", json_boolean(o->managed));
    json_object_set_new(j, "mode", json_string(o->mode));
    if (!o->enabled) {
        /* The spec's shape, with nothing configured. */
        static const char *const nulls[] = {"exporter", "endpoint", "service_name", "export_interval_ms", "last_export_at"};
        for (size_t i = 0; i < NB(nulls); i++) json_object_set_new(j, nulls[i], json_null());
        json_object_set_new(j, "exports_ok", json_integer(0));
        json_object_set_new(j, "exports_failed", json_integer(0));
        return j;
    }
    json_object_set_new(j, "exporter", json_string(o->console ? "console" : "otlp_http"));
    json_object_set_new(j, "endpoint", o->console || !o->endpoint_shown ? json_null() : json_string(o->endpoint_shown));
    json_object_set_new(j, "protocol", json_string(o->console || o->json ? "http/json" : "http/protobuf"));
    json_object_set_new(j, "temporality", json_string(o->delta ? "delta" : "cumulative"));
    json_object_set_new(j, "service_name", json_string(o->service_name ? o->service_name : ""));
    json_object_set_new(j, "service_instance_id", json_string(o->instance_id));
    pthread_mutex_lock(&o->lock);
    json_object_set_new(j, "start_time", iso_or_null((double)o->start_ns / 1e9));
    json_object_set_new(j, "resets", json_integer(o->resets));
    pthread_mutex_unlock(&o->lock);
    json_object_set_new(j, "export_interval_ms", json_integer(o->interval_ms));
    if (o->console) {
        pthread_mutex_lock(&o->lock);
        uint64_t ok = o->console_ok, failed = o->console_failed;
        double last = o->console_last;
        pthread_mutex_unlock(&o->lock);
        json_object_set_new(j, "exports_ok", json_integer((json_int_t)ok));
        json_object_set_new(j, "exports_failed", json_integer((json_int_t)failed));
        json_object_set_new(j, "last_export_at", iso_or_null(last));
        return j;
    }
    struct hr_export_stats st = {.struct_size = sizeof st};
    o->host->export_stats(o->ex, &st);
    json_object_set_new(j, "exports_ok", json_integer((json_int_t)st.ok));
    json_object_set_new(j, "exports_failed", json_integer((json_int_t)st.failed));
    json_object_set_new(j, "exports_dropped", json_integer((json_int_t)st.dropped));
    json_object_set_new(j, "retries", json_integer((json_int_t)st.retries));
    json_object_set_new(j, "queued", json_integer((json_int_t)st.queued));
    json_object_set_new(j, "last_export_at", iso_or_null(st.last_ok_at));
    json_object_set_new(j, "last_status", st.last_attempt_at > 0 ? json_integer(st.last_status) : json_null());
    json_object_set_new(j, "last_error", st.last_error[0] ? json_string(st.last_error) : json_null());
    return j;
}

/* ----------------------------------------------------------------- reset */

/* POST /stats/reset: the aggregates restart from zero, as /stats does. A
 * cumulative series then starts over with a new start_time_unix_nano, which
 * is how OTLP says "this counter was reset" (backends start a new series
 * instead of seeing a negative increase); delta points simply count from
 * the reset. Runs on a worker thread. */
static void otel_reset(void *state)
{
    struct otel *o = state;
    if (!o->enabled) return;
    pthread_mutex_lock(&o->lock);
    memset(&o->cur, 0, sizeof o->cur);
    o->start_ns = now_ns(o);
    o->resets++;
    pthread_mutex_unlock(&o->lock);
}

/* ------------------------------------------------------------- lifecycle */

static void otel_free(struct otel *o)
{
    for (size_t i = 0; i < o->n_res_strings; i++) free(o->res_strings[i]);
    free(o->res_strings);
    free(o->res);
    free(o->endpoint);
    free(o->endpoint_shown);
    free(o->service_name);
    free(o->sc.pts);
    free(o->sc.kvs);
    free(o->sc.buckets);
    otlp_buf_free(&o->sc.out);
    free(o->sc.snap);
    free(o->sc.prev);
    pthread_mutex_destroy(&o->lock);
    pthread_mutex_destroy(&o->tlock);
    pthread_cond_destroy(&o->tcond);
    free(o);
}

static int init(const struct hr_host *host, struct hr_instance *self, const struct hr_conf *conf, void **out)
{
    (void)conf;
    if (!HR_HAS_FIELD(host, struct hr_host, export_stats) || !host->exporter_new) {
        host->log(self, HR_LOG_ERROR, "this headroomd has no export path (ABI 1.2 exporter_new); upgrade headroomd");
        return HR_EINVAL;
    }
    struct otel *o = calloc(1, sizeof *o);
    if (!o) return HR_ENOMEM;
    o->host = host;
    o->self = self;
    pthread_mutex_init(&o->lock, NULL);
    pthread_mutex_init(&o->tlock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&o->tcond, &ca);
    pthread_condattr_destroy(&ca);
    configure(o);
    o->start_ns = o->last_ns = now_ns(o);
    if (o->enabled) {
        if (pthread_create(&o->thread, NULL, export_thread, o)) {
            host->log(self, HR_LOG_ERROR, "cannot start the metrics export thread; metrics export is off");
            o->enabled = 0;
        } else {
            o->thread_started = 1;
            if (o->console)
                host->log(self, HR_LOG_INFO, "OpenTelemetry metrics (%s mode): console (OTLP/JSON lines on stdout) every %u ms",
                          o->mode, o->interval_ms);
            else
                host->log(self, HR_LOG_INFO, "OpenTelemetry metrics (%s mode): OTLP/HTTP %s to %s every %u ms, %s temporality",
                          o->mode, o->json ? "json" : "protobuf", o->endpoint_shown ? o->endpoint_shown : "?", o->interval_ms,
                          o->delta ? "delta" : "cumulative");
        }
    }
    host->register_stats(self, "otel", stats_block, o);
    /* Not exporting: requests need not hand this sink their events. */
    if (!o->enabled && HR_HAS_FIELD(host, struct hr_host, events_off)) host->events_off(self);
    *out = o;
    return HR_OK;
}

static void fini(void *state)
{
    struct otel *o = state;
    if (!o) return;
    if (o->thread_started) {
        pthread_mutex_lock(&o->tlock);
        o->stop = 1;
        pthread_cond_signal(&o->tcond);
        pthread_mutex_unlock(&o->tlock);
        pthread_join(o->thread, NULL);
    }
    otel_free(o);
}

HR_PLUGIN_EXPORT const struct headroom_plugin headroom_plugin = {
    HR_PLUGIN_HEADER,
    .name = "otel",
    .kind = HR_PLUGIN_SINK,
    .version = "1.0.0",
    .description = "OpenTelemetry metrics (OTLP/HTTP protobuf or JSON, or console), configured by HEADROOM_OTEL_* / OTEL_*",
    .conf_keys = NULL,
    .init = init,
    .fini = fini,
    .on_event = on_event,
    .reset = otel_reset,
};
