/* langfuse.c — the `langfuse` sink: one OTLP trace per proxied model call,
 * sent to Langfuse's OTLP endpoint (<LANGFUSE_BASE_URL>/api/public/otel/v1/traces,
 * HTTP Basic public:secret) through the host's asynchronous exporter.
 * Off unless HEADROOM_LANGFUSE_ENABLED=1 with both keys set (doc/otel.md).
 *
 * Each request gives a root span `headroom.compression.pipeline` and a child
 * span per transform stage, every one with gen_ai.* attributes (Langfuse's
 * SDK filters spans without them). A client's W3C traceparent makes the root
 * a child of the client's span, in the client's trace.
 *
 * Spans are batched: on_event appends the request's encoded spans to a
 * pending batch, which goes out as one ExportTraceServiceRequest every
 * HEADROOM_LANGFUSE_FLUSH_INTERVAL_MS (a thread of our own) or as soon as it
 * holds HEADROOM_LANGFUSE_MAX_BATCH_SPANS spans, and once more at shutdown.
 * Memory: one pending batch plus the exporter's bounded queue of batches. */
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

#define MAX_CHILD 64
#define QUEUE_MAX 16            /* batches waiting in the exporter */

struct lf {
    const struct hr_host *host;
    struct hr_instance *self;
    int enabled;
    char *base_url, *endpoint;
    struct hr_exporter *ex;
    unsigned flush_ms, max_batch;
    /* the pending batch: encoded Span entries (lib/otlp otlp_spans_pb) */
    pthread_mutex_t lock;
    pthread_cond_t cond;        /* CLOCK_MONOTONIC; wakes the flusher to stop */
    struct otlp_buf pending;
    size_t pending_spans;
    uint64_t batches;           /* handed to the exporter */
    int stop;
    pthread_t thread;
    int thread_started;
    char off_reason[640];       /* why nothing is exported, for /stats last_error */
};

static const struct otlp_kv RES[] = {OTLP_KV_STR("service.name", "headroom-proxy"),
                                     OTLP_KV_STR("service.version", PACKAGE_VERSION)};
static const struct otlp_scope SCOPE = {"headroomd", PACKAGE_VERSION};

/* Hand the pending batch to the exporter (lock held). A full exporter queue
 * drops it; the host counts that (exports_dropped). */
static void flush_locked(struct lf *l)
{
    if (!l->pending_spans) return;
    const struct otlp_attrs resource = {RES, sizeof RES / sizeof *RES};
    struct otlp_buf b = {0};
    if (otlp_traces_pb_wrap(&b, &resource, &SCOPE, l->pending.data, l->pending.len) == 0) {
        l->host->export_post(l->ex, b.data, b.len, l->pending_spans);
        l->batches++;
    } else {
        l->host->log(l->self, HR_LOG_WARN, "could not encode a batch of %zu spans (out of memory); dropped", l->pending_spans);
    }
    otlp_buf_free(&b);
    l->pending.len = 0;         /* the capacity is kept: at most one batch */
    l->pending.oom = 0;
    l->pending_spans = 0;
}

static void *flush_thread(void *arg)
{
    struct lf *l = arg;
    pthread_setname_np(pthread_self(), "hr-langfuse"); /* top -H, ps -L */
    pthread_mutex_lock(&l->lock);
    for (int last = 0; !last;) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += l->flush_ms / 1000;
        ts.tv_nsec += (long)(l->flush_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        while (!l->stop && pthread_cond_timedwait(&l->cond, &l->lock, &ts) != ETIMEDOUT) {
        }
        last = l->stop;
        /* also at stop, even when fini came before this thread first ran:
         * the last batch is not lost */
        flush_locked(l);
    }
    pthread_mutex_unlock(&l->lock);
    return NULL;
}

static void random_bytes(uint8_t *p, size_t n)
{
    if (getrandom(p, n, 0) != (ssize_t)n)
        for (size_t i = 0; i < n; i++) p[i] = (uint8_t)rand();
    int zero = 1;
    for (size_t i = 0; i < n; i++) zero &= !p[i];
    if (zero) p[0] = 1; /* all-zero ids are invalid */
}

/* A whole number of milliseconds (or spans) in [lo, hi] from `var`; one
 * WARN naming it and the default otherwise. */
static unsigned env_uint(struct lf *l, const char *var, unsigned def, unsigned lo, unsigned hi)
{
    const char *v = getenv(var);
    if (!v || !*v) return def;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        l->host->log(l->self, HR_LOG_WARN, "%s='%s' is not valid (a whole number, %u to %u); using %u", var, v, lo, hi, def);
        return def;
    }
    return (unsigned)x;
}

static void on_event(void *state, const struct hr_event *ev)
{
    struct lf *l = state;
    if (!l->enabled || !HR_HAS_FIELD(ev, struct hr_event, traceparent) || ev->wire_format == HR_WIRE_UNKNOWN) return;
    size_t n_child = ev->n_stages < MAX_CHILD ? ev->n_stages : MAX_CHILD;
    struct otlp_span spans[1 + MAX_CHILD];
    memset(spans, 0, sizeof spans);
    struct otlp_span *root = &spans[0];
    uint8_t flags = 1;
    if (!ev->traceparent || otlp_parse_traceparent(ev->traceparent, root->trace_id, root->parent_span_id, &flags)) {
        random_bytes(root->trace_id, 16);
    } else {
        root->has_parent = 1;
    }
    random_bytes(root->span_id, 8);
    uint64_t end = (uint64_t)(ev->timestamp * 1e9);
    uint64_t lat = ev->latency_ms > 0 ? (uint64_t)(ev->latency_ms * 1e6) : 0;
    root->start_ns = end > lat ? end - lat : end;
    root->end_ns = end;
    root->name = "headroom.compression.pipeline";
    root->kind = OTLP_SPAN_CLIENT;
    root->flags = (root->has_parent ? 0x300u : 0x100u) | flags; /* HAS_IS_REMOTE, IS_REMOTE when the parent is the client's */
    int bad = ev->failed || ev->status >= 400;
    root->status = bad ? OTLP_STATUS_ERROR : OTLP_STATUS_OK;
    char msg[160] = "";
    if (bad) snprintf(msg, sizeof msg, "%s%sHTTP %d", ev->error ? ev->error : "", ev->error ? "; " : "", ev->status);
    root->status_message = bad ? msg : NULL;
    const char *provider = ev->provider_name && *ev->provider_name ? ev->provider_name : "unknown";
    const char *model = ev->model ? ev->model : "";
    /* Langfuse prices a generation from its usage, so input is what a
     * provider was sent (after compression) and answered, and 0 when none
     * was: a response-cache hit, a refusal, no answer. The uncompressed
     * count is headroom.tokens.before. */
    uint64_t in_tokens = ev->credited || (!ev->cached && ev->ttfb_ms >= 0) ? ev->tokens_sent : 0;
    const struct otlp_kv ra[] = {
        OTLP_KV_STR("gen_ai.operation.name", "chat"),
        OTLP_KV_STR("gen_ai.system", provider),
        OTLP_KV_STR("gen_ai.provider.name", provider),
        OTLP_KV_STR("gen_ai.request.model", model),
        OTLP_KV_INT("gen_ai.usage.input_tokens", in_tokens),
        OTLP_KV_INT("gen_ai.usage.output_tokens", ev->tokens_output),
        OTLP_KV_INT("headroom.tokens.before", ev->tokens_input),
        OTLP_KV_INT("headroom.tokens.after", ev->tokens_sent),
        OTLP_KV_INT("headroom.tokens.saved", ev->tokens_saved),
        OTLP_KV_DOUBLE("headroom.cost_usd", ev->cost_usd),
        OTLP_KV_DOUBLE("headroom.savings_usd", ev->savings_usd),
        OTLP_KV_STR("headroom.stack", ev->stack && *ev->stack ? ev->stack : "proxy"),
        OTLP_KV_STR("headroom.request_id", ev->request_id ? ev->request_id : ""),
        OTLP_KV_STR("headroom.wire_format", ev->wire_format_name ? ev->wire_format_name : ""),
        OTLP_KV_BOOL("headroom.cached", ev->cached),
        OTLP_KV_BOOL("headroom.streamed", ev->streamed),
        OTLP_KV_INT("http.response.status_code", ev->status),
        OTLP_KV_DOUBLE("headroom.overhead_ms", ev->overhead_ms),
    };
    root->attrs = (struct otlp_attrs){ra, sizeof ra / sizeof *ra};

    /* Stages ran back to back just before forwarding. */
    struct otlp_kv ca[MAX_CHILD][8];
    char names[MAX_CHILD][96];
    double pipe = ev->pipeline_ms >= 0 ? ev->pipeline_ms : 0;
    double pre = ev->overhead_ms > pipe ? ev->overhead_ms - pipe : 0;
    uint64_t t = root->start_ns + (uint64_t)(pre * 1e6);
    for (size_t i = 0; i < n_child; i++) {
        const struct hr_stage_result *st = &ev->stages[i];
        struct otlp_span *c = &spans[1 + i];
        memcpy(c->trace_id, root->trace_id, 16);
        memcpy(c->parent_span_id, root->span_id, 8);
        c->has_parent = 1;
        random_bytes(c->span_id, 8);
        snprintf(names[i], sizeof names[i], "headroom.transform.%s", st->name ? st->name : "");
        c->name = names[i];
        c->kind = OTLP_SPAN_INTERNAL;
        c->start_ns = t;
        t += st->ms > 0 ? (uint64_t)(st->ms * 1e6) : 0;
        c->end_ns = t;
        c->status = st->failed ? OTLP_STATUS_ERROR : OTLP_STATUS_UNSET;
        c->flags = 0x100u | flags;
        ca[i][0] = (struct otlp_kv)OTLP_KV_STR("gen_ai.operation.name", "chat");
        ca[i][1] = (struct otlp_kv)OTLP_KV_STR("gen_ai.system", provider);
        ca[i][2] = (struct otlp_kv)OTLP_KV_STR("gen_ai.request.model", model);
        ca[i][3] = (struct otlp_kv)OTLP_KV_STR("headroom.stage", st->name ? st->name : "");
        ca[i][4] = (struct otlp_kv)OTLP_KV_INT("headroom.tokens.saved", st->tokens_saved);
        ca[i][5] = (struct otlp_kv)OTLP_KV_STR("headroom.tag", st->tag ? st->tag : "");
        ca[i][6] = (struct otlp_kv)OTLP_KV_BOOL("headroom.failed", st->failed);
        ca[i][7] = (struct otlp_kv)OTLP_KV_STR("gen_ai.provider.name", provider);
        c->attrs = (struct otlp_attrs){ca[i], 8};
    }
    struct otlp_buf b = {0};
    size_t n = 1 + n_child;
    if (otlp_spans_pb(&b, spans, n) == 0) {
        pthread_mutex_lock(&l->lock);
        if (l->pending_spans && l->pending_spans + n > l->max_batch) flush_locked(l);
        size_t at = l->pending.len;
        if (otlp_buf_append(&l->pending, b.data, b.len) == 0) {
            l->pending_spans += n;
        } else {                /* out of memory: this request's spans are lost, the batch stays whole */
            l->pending.len = at;
            l->pending.oom = 0;
        }
        if (l->pending_spans >= l->max_batch) flush_locked(l);
        pthread_mutex_unlock(&l->lock);
    }
    otlp_buf_free(&b);
}

static json_t *stats_block(void *state)
{
    struct lf *l = state;
    json_t *j = json_object();
    json_object_set_new(j, "enabled", json_boolean(l->enabled));
    json_object_set_new(j, "base_url", l->base_url ? json_string(l->base_url) : json_null());
    json_object_set_new(j, "endpoint", l->endpoint ? json_string(l->endpoint) : json_null());
    struct hr_export_stats st = {.struct_size = sizeof st};
    if (l->ex) l->host->export_stats(l->ex, &st);
    json_object_set_new(j, "flush_interval_ms", json_integer(l->flush_ms));
    json_object_set_new(j, "max_batch_spans", json_integer(l->max_batch));
    pthread_mutex_lock(&l->lock);
    json_object_set_new(j, "batches", json_integer((json_int_t)l->batches));
    json_object_set_new(j, "pending_spans", json_integer((json_int_t)l->pending_spans));
    pthread_mutex_unlock(&l->lock);
    json_object_set_new(j, "spans_exported", json_integer((json_int_t)st.items_ok));
    json_object_set_new(j, "export_errors", json_integer((json_int_t)st.failed));
    json_object_set_new(j, "spans_failed", json_integer((json_int_t)st.items_failed));
    json_object_set_new(j, "exports_dropped", json_integer((json_int_t)st.dropped));
    const char *err = st.last_error[0] ? st.last_error : l->off_reason[0] ? l->off_reason : NULL;
    json_object_set_new(j, "last_error", err ? json_string(err) : json_null());
    return j;
}

static int start(const struct hr_host *host, struct hr_instance *self, const struct hr_conf *conf, void **out)
{
    (void)conf;
    if (!HR_HAS_FIELD(host, struct hr_host, export_stats) || !host->exporter_new) {
        host->log(self, HR_LOG_ERROR, "this headroomd has no export path (ABI 1.2 exporter_new); upgrade headroomd");
        return HR_EINVAL;
    }
    struct lf *l = calloc(1, sizeof *l);
    if (!l) return HR_ENOMEM;
    l->host = host;
    l->self = self;
    pthread_mutex_init(&l->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l->cond, &ca);
    pthread_condattr_destroy(&ca);
    *out = l;
    const char *v = getenv("HEADROOM_LANGFUSE_ENABLED");
    int on = 0;
    if (v && *v) {
        if (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on")) on = 1;
        else if (strcmp(v, "0") && strcasecmp(v, "false") && strcasecmp(v, "no") && strcasecmp(v, "off"))
            host->log(self, HR_LOG_WARN, "HEADROOM_LANGFUSE_ENABLED='%s' is not valid (0 or 1); using 0", v);
    }
    if (!on) return HR_OK; /* no /stats block: trace export is not configured */
    l->flush_ms = env_uint(l, "HEADROOM_LANGFUSE_FLUSH_INTERVAL_MS", 1000, 10, 600000);
    l->max_batch = env_uint(l, "HEADROOM_LANGFUSE_MAX_BATCH_SPANS", 512, 1, 100000);
    /* Asked for: the block is there from now on, enabled false with the
     * reason in last_error until export really starts. */
    host->register_stats(self, "langfuse", stats_block, l);
    const char *base = getenv("LANGFUSE_BASE_URL");
    if (!base || !*base) base = "https://cloud.langfuse.com";
    if (strncmp(base, "http://", 7) && strncmp(base, "https://", 8)) {
        /* Not Langfuse Cloud instead: a self-hosted deployment's keys and
         * traces would go to a third party over one missing "http://". */
        char shown[512];
        hr_url_shown(base, shown, sizeof shown);
        host->log(self, HR_LOG_WARN,
                  "LANGFUSE_BASE_URL='%s' is not valid (an http:// or https:// URL): no traces are exported; "
                  "fix it, or unset it for Langfuse Cloud",
                  shown);
        snprintf(l->off_reason, sizeof l->off_reason,
                 "LANGFUSE_BASE_URL='%.500s' is not an http:// or https:// URL: nothing is exported", shown);
        return HR_OK;
    }
    size_t bl = strlen(base);
    while (bl && base[bl - 1] == '/') bl--;
    l->base_url = strndup(base, bl);
    size_t el = bl + 40;
    l->endpoint = malloc(el);
    if (!l->base_url || !l->endpoint) return HR_ENOMEM;
    snprintf(l->endpoint, el, "%s/api/public/otel/v1/traces", l->base_url);
    const char *pk = getenv("LANGFUSE_PUBLIC_KEY"), *sk = getenv("LANGFUSE_SECRET_KEY");
    if (!pk || !*pk || !sk || !*sk) {
        host->log(self, HR_LOG_WARN,
                  "HEADROOM_LANGFUSE_ENABLED=1 but %s unset: no traces are exported; set both LANGFUSE_PUBLIC_KEY and "
                  "LANGFUSE_SECRET_KEY (Langfuse project settings, API keys)",
                  (!pk || !*pk) && (!sk || !*sk) ? "LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY are"
                  : (!pk || !*pk)                ? "LANGFUSE_PUBLIC_KEY is"
                                                 : "LANGFUSE_SECRET_KEY is");
        snprintf(l->off_reason, sizeof l->off_reason, "%s unset: nothing is exported",
                 (!pk || !*pk) && (!sk || !*sk) ? "LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY are"
                 : (!pk || !*pk)                ? "LANGFUSE_PUBLIC_KEY is"
                                                : "LANGFUSE_SECRET_KEY is");
        return HR_OK;
    }
    size_t cl = strlen(pk) + strlen(sk) + 2;
    char *cred = malloc(cl);
    if (!cred) return HR_ENOMEM;
    snprintf(cred, cl, "%s:%s", pk, sk);
    char *b64 = otlp_base64(cred, strlen(cred));
    free(cred);
    if (!b64) return HR_ENOMEM;
    size_t hl = strlen(b64) + 32;
    char *auth = malloc(hl);
    if (!auth) {
        free(b64);
        return HR_ENOMEM;
    }
    snprintf(auth, hl, "Authorization: Basic %s", b64);
    free(b64);
    const char *headers[] = {auth, NULL};
    struct hr_export_conf ec = {.struct_size = sizeof ec, .name = "langfuse_traces", .url = l->endpoint,
                                .headers = headers, .content_type = OTLP_CT_PROTOBUF, .queue_max = QUEUE_MAX};
    l->ex = host->exporter_new(self, &ec);
    memset(auth, 0, strlen(auth));
    free(auth);
    if (!l->ex) {
        host->log(self, HR_LOG_ERROR, "cannot start the trace exporter for %s; Langfuse export is off", l->endpoint);
        snprintf(l->off_reason, sizeof l->off_reason, "the trace exporter could not start: nothing is exported");
        return HR_OK;
    }
    if (pthread_create(&l->thread, NULL, flush_thread, l)) {
        host->log(self, HR_LOG_ERROR, "cannot start the span flush thread; Langfuse export is off");
        snprintf(l->off_reason, sizeof l->off_reason, "the span flush thread could not start: nothing is exported");
        return HR_OK;
    }
    l->thread_started = 1;
    l->enabled = 1;
    host->log(self, HR_LOG_INFO, "Langfuse traces to %s, batched every %u ms or %u spans", l->endpoint, l->flush_ms,
              l->max_batch);
    return HR_OK;
}

static int init(const struct hr_host *host, struct hr_instance *self, const struct hr_conf *conf, void **out)
{
    int rc = start(host, self, conf, out);
    const struct lf *l = *out;
    /* Not exporting: requests need not hand this sink their events. */
    if (rc == HR_OK && l && !l->enabled && HR_HAS_FIELD(host, struct hr_host, events_off)) host->events_off(self);
    return rc;
}

static void fini(void *state)
{
    struct lf *l = state;
    if (!l) return;
    if (l->thread_started) {
        pthread_mutex_lock(&l->lock);
        l->stop = 1;
        pthread_cond_signal(&l->cond);
        pthread_mutex_unlock(&l->lock);
        pthread_join(l->thread, NULL);
    }
    otlp_buf_free(&l->pending);
    pthread_mutex_destroy(&l->lock);
    pthread_cond_destroy(&l->cond);
    free(l->base_url);
    free(l->endpoint);
    free(l);
}

HR_PLUGIN_EXPORT const struct headroom_plugin headroom_plugin = {
    HR_PLUGIN_HEADER,
    .name = "langfuse",
    .kind = HR_PLUGIN_SINK,
    .version = "1.0.0",
    .description = "Langfuse traces over OTLP/HTTP (HEADROOM_LANGFUSE_ENABLED, LANGFUSE_*)",
    .conf_keys = NULL,
    .init = init,
    .fini = fini,
    .on_event = on_event,
};
