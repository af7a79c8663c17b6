/* t/otel_sink_test.c — the otel sink through t/fake_host.c: environment
 * parsing (managed, ambient, off), every invalid value giving one WARN that
 * names its variable and then the default, the exporter it asks the host for
 * (URL, headers, content type), the OTLP/JSON it posts (counts, histogram
 * min/max), and POST /stats/reset: a cumulative series restarts with a new
 * start time, delta points never go negative. */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <headroom/plugin.h>
#include "tap.h"
#include "fake_host.h"

extern const struct headroom_plugin headroom_plugin;

static struct hr_instance inst = {"otel"};

static const char *const ALL_VARS[] = {
    "HEADROOM_OTEL_METRICS_ENABLED", "HEADROOM_OTEL_METRICS_EXPORTER", "HEADROOM_OTEL_METRICS_ENDPOINT",
    "HEADROOM_OTEL_METRICS_HEADERS", "HEADROOM_OTEL_METRICS_EXPORT_INTERVAL_MS", "HEADROOM_OTEL_SERVICE_NAME",
    "HEADROOM_OTEL_RESOURCE_ATTRIBUTES", "HEADROOM_OTEL_METRICS_PROTOCOL", "HEADROOM_OTEL_METRICS_TEMPORALITY",
    "HEADROOM_OTEL_METRICS_COMPRESSION", "HEADROOM_OTEL_METRICS_TIMEOUT_MS", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
    "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_METRIC_EXPORT_INTERVAL", "OTEL_METRICS_EXPORTER",
    "OTEL_SDK_DISABLED", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION", NULL};

#define env(...) fh_env(ALL_VARS, __VA_ARGS__)

static void *start(void) { return fh_start(&headroom_plugin, &inst); }
static void stop(void *s) { fh_stop(&headroom_plugin, s); }

static int count_in(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

static struct hr_stage_result STAGES[] = {{sizeof(struct hr_stage_result), "router", 0.4, 30, "", 0},
                                         {sizeof(struct hr_stage_result), "smart_crusher", 2.5, 70, "", 0}};

static void event(void *s, const char *model, uint64_t in, uint64_t sent, uint64_t out, double latency_ms, int credited)
{
    struct hr_event ev = {.struct_size = sizeof ev, .request_id = "r", .timestamp = 1700000000.0,
                          .provider = HR_PROVIDER_OPENAI, .provider_name = "openai", .model = model, .stack = "",
                          .path = "/v1/chat/completions", .status = 200, .tokens_input = in, .tokens_sent = sent,
                          .tokens_saved = in - sent, .tokens_output = out, .provider_input_tokens = sent,
                          .latency_ms = latency_ms, .overhead_ms = 0.7, .ttfb_ms = latency_ms / 2, .n_stages = 2,
                          .stages = STAGES, .pipeline_ms = 3.0, .wire_format = HR_WIRE_OPENAI_CHAT,
                          .wire_format_name = "openai_chat", .credited = credited};
    headroom_plugin.on_event(s, &ev);
}

static json_t *body_json(size_t k)
{
    size_t len = 0;
    unsigned char *b = fh_export_body(0, k, &len, NULL);
    if (!b) return NULL;
    json_t *j = json_loadb((const char *)b, len, 0, NULL);
    free(b);
    return j;
}

static json_t *metric(json_t *req, const char *name)
{
    json_t *ms = json_object_get(json_array_get(json_object_get(json_array_get(json_object_get(req, "resourceMetrics"), 0),
                                                                "scopeMetrics"),
                                                0),
                                 "metrics");
    size_t i;
    json_t *m;
    json_array_foreach(ms, i, m) if (!strcmp(json_string_value(json_object_get(m, "name")), name)) return m;
    return NULL;
}

/* Sum of a sum metric's asInt over its points (strings in OTLP/JSON); -1 when absent. */
static long long sum_of(json_t *req, const char *name, long long *min_point)
{
    json_t *m = metric(req, name);
    if (!m) return -1;
    long long t = 0;
    size_t i;
    json_t *dp;
    if (min_point) *min_point = 0;
    json_array_foreach(json_object_get(json_object_get(m, "sum"), "dataPoints"), i, dp)
    {
        long long v = atoll(json_string_value(json_object_get(dp, "asInt")) ?: "0");
        if (min_point && (i == 0 || v < *min_point)) *min_point = v;
        t += v;
    }
    return t;
}

static const char *point_start(json_t *req, const char *name)
{
    json_t *m = metric(req, name);
    json_t *dp = json_array_get(json_object_get(json_object_get(m, "sum"), "dataPoints"), 0);
    return json_string_value(json_object_get(dp, "startTimeUnixNano"));
}

/* Sum of `name` over bodies [from, now) (delta points add up). */
static long long total_since(size_t from, const char *name, long long *lowest)
{
    long long t = 0;
    size_t n = fh_export_posts(0);
    for (size_t k = from; k < n; k++) {
        long long lo = 0;
        json_t *j = body_json(k);
        long long v = sum_of(j, name, &lo);
        json_decref(j);
        if (v > 0) t += v;
        if (lowest && lo < *lowest) *lowest = lo;
    }
    return t;
}

/* Wait (up to 10 s) until the delta bodies since `from` add up to `want` requests. */
static int wait_total(size_t from, long long want)
{
    for (int tries = 0; tries < 1000; tries++) {
        if (total_since(from, "headroom.proxy.requests", NULL) >= want) return 1;
        nanosleep(&(struct timespec){0, 10000000L}, NULL);
    }
    return 0;
}

/* Wait (up to 10 s) for a posted body whose requests total is `want`; its index or -1. */
static long wait_body(size_t from, long long want)
{
    for (int tries = 0; tries < 1000; tries++) {
        size_t n = fh_export_posts(0);
        for (size_t k = from; k < n; k++) {
            json_t *j = body_json(k);
            long long v = sum_of(j, "headroom.proxy.requests", NULL);
            json_decref(j);
            if (v == want) return (long)k;
        }
        nanosleep(&(struct timespec){0, 10000000L}, NULL);
    }
    return -1;
}

static void test_off(void)
{
    env(NULL);
    void *s = start();
    ok(s != NULL, "no variables: init succeeds");
    json_t *st = fh_stats("otel");
    ok(st && json_is_false(json_object_get(st, "enabled")) && json_is_false(json_object_get(st, "managed")),
       "no variables: /stats.otel enabled false, managed false");
    ok(json_is_null(json_object_get(st, "exporter")) && json_is_null(json_object_get(st, "endpoint")) &&
           json_integer_value(json_object_get(st, "exports_ok")) == 0 && json_object_get(st, "last_export_at"),
       "off: the spec's fields are there (null / 0)");
    is_int(fh_n_exports(), 0, "off: no exporter");
    is_int(fh_events_off_calls(), 1, "off: events_off (requests pay nothing)");
    is_int(fh_warns_naming("OTEL"), 0, "off: no WARN");
    json_decref(st);
    stop(s);

    env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318", "OTEL_SDK_DISABLED", "true", NULL);
    s = start();
    st = fh_stats("otel");
    is_str(json_string_value(json_object_get(st, "mode")), "off", "OTEL_SDK_DISABLED=true keeps ambient mode off");
    json_decref(st);
    stop(s);
}

static void test_managed_conf(void)
{
    env("HEADROOM_OTEL_METRICS_ENABLED", "1", "HEADROOM_OTEL_METRICS_ENDPOINT", "http://u:pw@collector:4318/v1/metrics?k=1",
        "HEADROOM_OTEL_METRICS_HEADERS", "authorization=Bearer%20tok,x-tenant = t1", "HEADROOM_OTEL_SERVICE_NAME", "svc",
        "HEADROOM_OTEL_METRICS_EXPORT_INTERVAL_MS", "600000", "HEADROOM_OTEL_METRICS_TIMEOUT_MS", "2500",
        "HEADROOM_OTEL_METRICS_COMPRESSION", "gzip", "OTEL_SERVICE_NAME", "ignored-in-managed-mode", NULL);
    void *s = start();
    is_int(fh_n_exports(), 1, "managed: one exporter");
    const struct fh_export *e = fh_export(0);
    is_str(e ? e->url : "", "http://u:pw@collector:4318/v1/metrics?k=1", "exporter URL: the endpoint as given");
    is_str(e ? e->headers : "", "authorization: Bearer tok\nx-tenant: t1\n", "headers: trimmed, percent-decoded");
    is_str(e ? e->content_type : "", "application/x-protobuf", "protobuf by default");
    is_str(e ? e->name : "", "otel_metrics", "exporter name otel_metrics (the /metrics label)");
    ok(e && e->gzip && e->timeout_ms == 2500 && e->queue_max > 0 && e->queue_max <= 16,
       "gzip, per-attempt timeout, a small bounded queue");
    json_t *st = fh_stats("otel");
    is_str(json_string_value(json_object_get(st, "endpoint")), "http://***@collector:4318/v1/metrics",
           "/stats endpoint hides user:password and the query");
    is_str(json_string_value(json_object_get(st, "service_name")), "svc", "HEADROOM_OTEL_SERVICE_NAME wins in managed mode");
    is_int(json_integer_value(json_object_get(st, "export_interval_ms")), 600000, "interval as set");
    char *dump = json_dumps(st, 0);
    ok(dump && !strstr(dump, "tok"), "no header value in /stats");
    free(dump);
    json_decref(st);
    is_int(fh_events_off_calls(), 0, "enabled: takes events");
    stop(s);
    is_int(count_in(fh_log(), "tok"), 0, "no header value in the log");
}

static void test_invalid(void)
{
    static const struct {
        const char *var, *val, *stat_key, *stat_want;
    } cases[] = {
        {"HEADROOM_OTEL_METRICS_EXPORTER", "bogus", "exporter", "otlp_http"},
        {"HEADROOM_OTEL_METRICS_ENDPOINT", "ftp://x/v1/metrics", "endpoint", "http://localhost:4318/v1/metrics"},
        {"HEADROOM_OTEL_METRICS_EXPORT_INTERVAL_MS", "abc", "export_interval_ms", "10000"},
        {"HEADROOM_OTEL_METRICS_EXPORT_INTERVAL_MS", "50", "export_interval_ms", "10000"},
        {"HEADROOM_OTEL_METRICS_EXPORT_INTERVAL_MS", "10s", "export_interval_ms", "10000"},
        {"HEADROOM_OTEL_METRICS_PROTOCOL", "grpc", "protocol", "http/protobuf"},
        {"HEADROOM_OTEL_METRICS_TEMPORALITY", "sideways", "temporality", "cumulative"},
        {"HEADROOM_OTEL_METRICS_COMPRESSION", "zstd", NULL, NULL},
        {"HEADROOM_OTEL_METRICS_TIMEOUT_MS", "-1", NULL, NULL},
        {"HEADROOM_OTEL_RESOURCE_ATTRIBUTES", "novalue", NULL, NULL},
        {"HEADROOM_OTEL_METRICS_HEADERS", "authorization", NULL, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        env("HEADROOM_OTEL_METRICS_ENABLED", "1", cases[i].var, cases[i].val, NULL);
        void *s = start();
        ok(s != NULL, "%s=%s: init still succeeds", cases[i].var, cases[i].val);
        is_int(fh_warns_naming(cases[i].var), 1, "%s=%s: one WARN naming the variable", cases[i].var, cases[i].val);
        if (cases[i].stat_key) {
            json_t *st = fh_stats("otel");
            json_t *v = json_object_get(st, cases[i].stat_key);
            char got[128];
            if (json_is_integer(v)) snprintf(got, sizeof got, "%lld", (long long)json_integer_value(v));
            else snprintf(got, sizeof got, "%s", json_string_value(v) ?: "(null)");
            is_str(got, cases[i].stat_want, "%s=%s: the default (%s)", cases[i].var, cases[i].val, cases[i].stat_want);
            json_decref(st);
        }
        stop(s);
    }
    env("HEADROOM_OTEL_METRICS_ENABLED", "maybe", NULL);
    void *s = start();
    json_t *st = fh_stats("otel");
    ok(json_is_false(json_object_get(st, "enabled")), "HEADROOM_OTEL_METRICS_ENABLED=maybe: off (the default)");
    is_int(fh_warns_naming("HEADROOM_OTEL_METRICS_ENABLED"), 1, "HEADROOM_OTEL_METRICS_ENABLED=maybe: one WARN naming it");
    json_decref(st);
    stop(s);

    /* Ambient mode: the standard variables' names. */
    env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/", "OTEL_METRIC_EXPORT_INTERVAL", "soon",
        "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "LowMemory", NULL);
    s = start();
    st = fh_stats("otel");
    is_str(json_string_value(json_object_get(st, "mode")), "ambient", "ambient mode");
    is_str(fh_n_exports() ? fh_export(0)->url : "", "http://c:4318/v1/metrics", "ambient: base endpoint + /v1/metrics");
    is_int(fh_warns_naming("OTEL_METRIC_EXPORT_INTERVAL"), 1, "ambient: OTEL_METRIC_EXPORT_INTERVAL=soon, one WARN naming it");
    is_str(json_string_value(json_object_get(st, "temporality")), "delta", "lowmemory preference = delta");
    json_decref(st);
    stop(s);
}

static void test_export_and_reset(int delta)
{
    env("HEADROOM_OTEL_METRICS_ENABLED", "1", "HEADROOM_OTEL_METRICS_ENDPOINT", "http://c/v1/metrics",
        "HEADROOM_OTEL_METRICS_PROTOCOL", "http/json", "HEADROOM_OTEL_METRICS_EXPORT_INTERVAL_MS", "100",
        "HEADROOM_OTEL_METRICS_TEMPORALITY", delta ? "delta" : "cumulative", NULL);
    const char *mode = delta ? "delta" : "cumulative";
    void *s = start();
    is_str(fh_n_exports() ? fh_export(0)->content_type : "", "application/json", "%s: http/json content type", mode);
    event(s, "gpt-4o", 1000, 400, 50, 120, 1);
    event(s, "gpt-4o", 500, 500, 20, 80, 1);
    event(s, "gpt-4o-mini", 300, 300, 10, 1500, 0); /* not credited: its input stays out of the token totals */
    char start1[32] = "";
    if (!delta) {
        long k1 = wait_body(0, 3);
        ok(k1 >= 0, "cumulative: a body with the 3 requests is posted");
        json_t *j = body_json((size_t)(k1 < 0 ? 0 : k1));
        is_int(sum_of(j, "headroom.proxy.tokens.input", NULL), 1500, "cumulative: tokens.input counts credited requests");
        is_int(sum_of(j, "headroom.proxy.tokens.saved", NULL), 600, "cumulative: tokens.saved");
        is_int(sum_of(j, "headroom.proxy.tokens.output", NULL), 80, "cumulative: tokens.output");
        json_t *h = metric(j, "headroom.proxy.request.duration");
        json_t *hp = json_array_get(json_object_get(json_object_get(h, "histogram"), "dataPoints"), 0);
        ok(json_real_value(json_object_get(hp, "min")) == 0.08 && json_real_value(json_object_get(hp, "max")) == 0.12,
           "cumulative: histogram min and max (gpt-4o: 0.08, 0.12 s)");
        json_t *sum = json_object_get(metric(j, "headroom.proxy.requests"), "sum");
        is_int(json_integer_value(json_object_get(sum, "aggregationTemporality")), 2, "cumulative: temporality 2");
        snprintf(start1, sizeof start1, "%s", point_start(j, "headroom.proxy.requests") ?: "");
        json_decref(j);
    } else {
        ok(wait_total(0, 3), "delta: the bodies add up to the 3 requests");
        is_int(total_since(0, "headroom.proxy.tokens.input", NULL), 1500, "delta: tokens.input counts credited requests");
        is_int(total_since(0, "headroom.proxy.tokens.saved", NULL), 600, "delta: tokens.saved");
        json_t *j = body_json(0);
        json_t *sum = json_object_get(metric(j, "headroom.proxy.requests"), "sum");
        is_int(json_integer_value(json_object_get(sum, "aggregationTemporality")), 1, "delta: temporality 1");
        json_decref(j);
    }

    headroom_plugin.reset(s);
    json_t *st = fh_stats("otel");
    is_int(json_integer_value(json_object_get(st, "resets")), 1, "%s: /stats.otel.resets counts POST /stats/reset", mode);
    json_decref(st);
    size_t from = fh_export_posts(0);
    event(s, "gpt-4o", 200, 100, 5, 60, 1);
    event(s, "gpt-4o", 200, 100, 5, 60, 1);
    if (!delta) {
        long k2 = wait_body(from, 2);
        ok(k2 >= 0, "cumulative: after the reset the counters restart (requests 2, not 5)");
        json_t *j = body_json((size_t)(k2 < 0 ? 0 : k2));
        const char *start2 = point_start(j, "headroom.proxy.requests");
        ok(start2 && strlen(start2) == strlen(start1) && strcmp(start2, start1) > 0,
           "cumulative: a new startTimeUnixNano after the reset (%s > %s), so backends see a reset", start2 ?: "-", start1);
        is_int(sum_of(j, "headroom.proxy.tokens.input", NULL), 400, "cumulative: tokens.input restarted too");
        ok(!metric(j, "headroom.proxy.tokens.output") || sum_of(j, "headroom.proxy.tokens.output", NULL) == 10,
           "cumulative: the pre-reset series are gone");
        json_decref(j);
    } else {
        long long lowest = 0;
        ok(wait_total(from, 2), "delta: bodies after the reset arrive");
        /* Every pre-reset request was in a body before `from` already. */
        is_int(total_since(from, "headroom.proxy.requests", &lowest), 2,
               "delta: the deltas after the reset add up to the 2 new requests");
        is_int(lowest, 0, "delta: no negative point");
    }
    stop(s);
}

/* The console exporter: OTLP/JSON lines on stdout (sent to a file here),
 * its counters read by /stats on other threads while it exports (run under
 * TSan to see the reads and writes are ordered by the lock). */
static void *read_stats(void *arg)
{
    long long *seen = arg;
    for (int i = 0; i < 400; i++) {
        json_t *st = fh_stats("otel");
        long long v = json_integer_value(json_object_get(st, "exports_ok"));
        if (v > *seen) *seen = v;
        json_decref(st);
        nanosleep(&(struct timespec){0, 1000000L}, NULL);
    }
    return NULL;
}

static void test_console(void)
{
    env("HEADROOM_OTEL_METRICS_ENABLED", "1", "HEADROOM_OTEL_METRICS_EXPORTER", "console",
        "HEADROOM_OTEL_METRICS_EXPORT_INTERVAL_MS", "100", NULL);
    char path[] = "/tmp/otel_sink_test.XXXXXX";
    int fd = mkstemp(path);
    fflush(stdout);
    int saved = dup(1);
    dup2(fd, 1);
    void *s = start();
    size_t exporters = fh_n_exports(); /* checked once stdout is back */
    event(s, "gpt-4o", 100, 80, 5, 50, 1);
    long long seen[2] = {0, 0};
    pthread_t t[2];
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, read_stats, &seen[i]);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    stop(s);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    char buf[256] = "";
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    close(fd);
    unlink(path);
    is_int(exporters, 0, "console: no HTTP exporter");
    ok(n > 0 && !strncmp(buf, "{\"resourceMetrics\":[", 20), "console: OTLP/JSON lines on stdout");
    ok(seen[0] >= 1 && seen[1] >= 1, "console: /stats.otel.exports_ok counts them (%lld, %lld)", seen[0], seen[1]);
}

int main(void)
{
    fh_set_log_level(HR_LOG_ERROR);
    test_off();
    test_managed_conf();
    test_invalid();
    test_export_and_reset(0);
    test_export_and_reset(1);
    test_console();
    fh_reset();
    return tap_exit();
}
