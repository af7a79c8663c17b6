/* t/langfuse_sink_test.c — the langfuse sink through t/fake_host.c:
 * environment parsing (off, missing keys, invalid values → one WARN naming
 * the variable, then the default), Basic auth and the traces URL, and
 * batching: spans wait for the flush interval or go out as soon as a batch
 * holds HEADROOM_LANGFUSE_MAX_BATCH_SPANS, one request's spans are never
 * split, and fini sends what is pending; gen_ai.usage.input_tokens on
 * credited and uncredited requests. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <headroom/plugin.h>
#include "tap.h"
#include "fake_host.h"

extern const struct headroom_plugin headroom_plugin;

static struct hr_instance inst = {"langfuse"};

static const char *const ALL_VARS[] = {"HEADROOM_LANGFUSE_ENABLED",        "LANGFUSE_PUBLIC_KEY",
                                       "LANGFUSE_SECRET_KEY",              "LANGFUSE_BASE_URL",
                                       "HEADROOM_LANGFUSE_FLUSH_INTERVAL_MS", "HEADROOM_LANGFUSE_MAX_BATCH_SPANS",
                                       NULL};

#define env(...) fh_env(ALL_VARS, __VA_ARGS__)

static void *start(void) { return fh_start(&headroom_plugin, &inst); }
static void stop(void *s) { fh_stop(&headroom_plugin, s); }

static int count_mem(const unsigned char *hay, size_t len, const void *needle, size_t nl)
{
    int n = 0;
    for (size_t i = 0; i + nl <= len; i++)
        if (!memcmp(hay + i, needle, nl)) n++;
    return n;
}

static struct hr_stage_result STAGE = {sizeof(struct hr_stage_result), "smart_crusher", 1.5, 70, "kept=3/10", 0};

/* A credited request: 1000 tokens before compression, 930 forwarded. */
static struct hr_event credited_event(const char *traceparent)
{
    return (struct hr_event){.struct_size = sizeof(struct hr_event), .request_id = "req-1", .timestamp = 1700000000.0,
                             .provider = HR_PROVIDER_OPENAI, .provider_name = "openai", .model = "gpt-4o", .stack = "",
                             .path = "/v1/chat/completions", .status = 200, .tokens_input = 1000, .tokens_sent = 930,
                             .tokens_saved = 70, .tokens_output = 12, .latency_ms = 200, .overhead_ms = 3,
                             .ttfb_ms = 100, .n_stages = 1, .stages = &STAGE, .pipeline_ms = 1.5,
                             .wire_format = HR_WIRE_OPENAI_CHAT, .wire_format_name = "openai_chat", .credited = 1,
                             .traceparent = traceparent};
}

static void event(void *s, const char *traceparent)
{
    struct hr_event ev = credited_event(traceparent);
    headroom_plugin.on_event(s, &ev);
}

/* The int value of the nth (from 0) attribute `key` in an encoded batch:
 * KeyValue{1: key, 2: AnyValue{3: int_value varint}}; -1 when absent. */
static long long int_attr(const unsigned char *b, size_t len, const char *key, int nth)
{
    size_t kl = strlen(key);
    for (size_t i = 1; i + kl + 3 < len; i++) {
        if (b[i - 1] != kl || memcmp(b + i, key, kl) || nth--) continue;
        const unsigned char *p = b + i + kl;
        if (p[0] != 0x12 || p[2] != 0x18) return -1;
        unsigned long long v = 0;
        for (size_t j = 3, shift = 0; i + kl + j < len && shift < 64; j++, shift += 7) {
            v |= (unsigned long long)(p[j] & 0x7f) << shift;
            if (!(p[j] & 0x80)) return (long long)v;
        }
        return -1;
    }
    return -1;
}

static json_t *stats(void) { return fh_stats("langfuse"); }

static long long stat_int(const char *key)
{
    json_t *st = stats();
    long long v = json_integer_value(json_object_get(st, key));
    json_decref(st);
    return v;
}

static void test_conf(void)
{
    env(NULL);
    void *s = start();
    json_t *st = stats();
    ok(s && !st, "not enabled: no /stats.langfuse block");
    is_int(fh_events_off_calls(), 1, "not enabled: events_off");
    json_decref(st);
    stop(s);

    env("HEADROOM_LANGFUSE_ENABLED", "1", "LANGFUSE_PUBLIC_KEY", "pk-lf-1", NULL);
    s = start();
    st = stats();
    ok(st && json_is_false(json_object_get(st, "enabled")), "secret key missing: /stats.langfuse.enabled false");
    is_str(json_string_value(json_object_get(st, "last_error")), "LANGFUSE_SECRET_KEY is unset: nothing is exported",
           "secret key missing: /stats.langfuse.last_error says which");
    is_int(fh_warns_naming("LANGFUSE_SECRET_KEY"), 1, "secret key missing: one WARN naming LANGFUSE_SECRET_KEY");
    is_int(fh_n_exports(), 0, "secret key missing: no exporter");
    is_int(fh_events_off_calls(), 1, "secret key missing: events_off");
    json_decref(st);
    stop(s);

    env("HEADROOM_LANGFUSE_ENABLED", "perhaps", "LANGFUSE_PUBLIC_KEY", "pk", "LANGFUSE_SECRET_KEY", "sk", NULL);
    s = start();
    is_int(fh_warns_naming("HEADROOM_LANGFUSE_ENABLED"), 1, "HEADROOM_LANGFUSE_ENABLED=perhaps: one WARN naming it");
    is_int(fh_n_exports(), 0, "HEADROOM_LANGFUSE_ENABLED=perhaps: off (the default)");
    stop(s);

    static const struct {
        const char *var, *val, *key;
        long long want;
    } bad[] = {
        {"HEADROOM_LANGFUSE_FLUSH_INTERVAL_MS", "abc", "flush_interval_ms", 1000},
        {"HEADROOM_LANGFUSE_FLUSH_INTERVAL_MS", "0", "flush_interval_ms", 1000},
        {"HEADROOM_LANGFUSE_FLUSH_INTERVAL_MS", "1e3", "flush_interval_ms", 1000},
        {"HEADROOM_LANGFUSE_MAX_BATCH_SPANS", "0", "max_batch_spans", 512},
        {"HEADROOM_LANGFUSE_MAX_BATCH_SPANS", "-5", "max_batch_spans", 512},
        {"HEADROOM_LANGFUSE_MAX_BATCH_SPANS", "many", "max_batch_spans", 512},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        env("HEADROOM_LANGFUSE_ENABLED", "1", "LANGFUSE_PUBLIC_KEY", "pk", "LANGFUSE_SECRET_KEY", "sk", bad[i].var,
            bad[i].val, NULL);
        s = start();
        is_int(fh_warns_naming(bad[i].var), 1, "%s=%s: one WARN naming the variable", bad[i].var, bad[i].val);
        is_int(stat_int(bad[i].key), bad[i].want, "%s=%s: the default %lld", bad[i].var, bad[i].val, bad[i].want);
        stop(s);
    }

    env("HEADROOM_LANGFUSE_ENABLED", "yes", "LANGFUSE_PUBLIC_KEY", "pk-lf-1", "LANGFUSE_SECRET_KEY", "sk-lf-s3cret",
        "LANGFUSE_BASE_URL", "langfuse.internal", NULL);
    s = start();
    is_int(fh_warns_naming("LANGFUSE_BASE_URL"), 1, "LANGFUSE_BASE_URL without a scheme: one WARN naming it");
    is_int((int)fh_n_exports(), 0, "then no export at all: not to Langfuse Cloud instead");
    ok(!strstr(fh_log(), "cloud.langfuse.com"), "and the WARN does not offer the cloud URL as used");
    /* Asked for and off: /stats says so and why, as for a missing key (the
     * block was left out, so a check of /stats.langfuse saw no problem). */
    st = stats();
    ok(st && json_is_false(json_object_get(st, "enabled")) && json_is_null(json_object_get(st, "endpoint")),
       "LANGFUSE_BASE_URL without a scheme: /stats.langfuse.enabled false, no endpoint");
    is_str(json_string_value(json_object_get(st, "last_error")),
           "LANGFUSE_BASE_URL='langfuse.internal' is not an http:// or https:// URL: nothing is exported",
           "LANGFUSE_BASE_URL without a scheme: /stats.langfuse.last_error names it");
    json_decref(st);
    stop(s);
    ok(!strstr(fh_log(), "s3cret"), "the secret key is never logged");
}

static void test_batching(void)
{
    /* Each request: a root and one child per stage = 2 spans. A batch of at
     * most 4 spans holds 2 requests; the interval (10 min) never fires here. */
    env("HEADROOM_LANGFUSE_ENABLED", "1", "LANGFUSE_PUBLIC_KEY", "pk-lf-1", "LANGFUSE_SECRET_KEY", "sk-lf-2",
        "LANGFUSE_BASE_URL", "http://lf.local:3000/", "HEADROOM_LANGFUSE_FLUSH_INTERVAL_MS", "600000",
        "HEADROOM_LANGFUSE_MAX_BATCH_SPANS", "4", NULL);
    void *s = start();
    const struct fh_export *e = fh_n_exports() ? fh_export(0) : NULL;
    is_str(e ? e->url : "", "http://lf.local:3000/api/public/otel/v1/traces", "traces URL: <base>/api/public/otel/v1/traces");
    is_str(e ? e->headers : "", "Authorization: Basic cGstbGYtMTpzay1sZi0y\n", "Basic auth base64(public:secret)");
    is_str(e ? e->content_type : "", "application/x-protobuf", "OTLP/HTTP protobuf");
    event(s, NULL);
    is_int(fh_export_posts(0), 0, "one request: nothing posted before the interval");
    is_int(stat_int("pending_spans"), 2, "its 2 spans are pending");
    event(s, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    is_int(fh_export_posts(0), 1, "a full batch (4 spans) goes out at once");
    for (int i = 0; i < 3; i++) event(s, NULL);
    is_int(fh_export_posts(0), 2, "5 requests: 2 batches posted, 1 request pending");
    size_t len = 0;
    uint64_t items = 0;
    unsigned char *b = fh_export_body(0, 0, &len, &items);
    is_int(items, 4, "batch 1: 4 spans");
    is_int(count_mem(b, len, "headroom.compression.pipeline", 29), 2, "batch 1: 2 root spans (one per request)");
    is_int(count_mem(b, len, "headroom.transform.smart_crusher", 32), 2, "batch 1: a child span per stage");
    static const unsigned char tid[] = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
                                        0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};
    is_int(count_mem(b, len, tid, 16), 2, "the traceparent's trace id on the joined request's root and child");
    static const unsigned char resource_name[] = "headroom-proxy";
    is_int(count_mem(b, len, resource_name, sizeof resource_name - 1), 1, "one resource per batch");
    free(b);
    stop(s);
    is_int(fh_export_posts(0), 3, "fini sends the pending request");
    b = fh_export_body(0, 2, &len, &items);
    is_int(items, 2, "the last batch: the pending request's 2 spans");
    free(b);

    /* A batch that cannot be queued (exporter full): dropped and counted by
     * the host, nothing kept: memory stays one batch. */
    env("HEADROOM_LANGFUSE_ENABLED", "1", "LANGFUSE_PUBLIC_KEY", "pk", "LANGFUSE_SECRET_KEY", "sk",
        "HEADROOM_LANGFUSE_FLUSH_INTERVAL_MS", "600000", "HEADROOM_LANGFUSE_MAX_BATCH_SPANS", "2", NULL);
    s = start();
    fh_export_set_full(1);
    for (int i = 0; i < 50; i++) event(s, NULL);
    is_int(stat_int("exports_dropped"), 50, "exporter full: each batch dropped and counted");
    is_int(stat_int("pending_spans"), 0, "nothing piles up while the exporter is full");
    fh_export_set_full(0);
    event(s, NULL);
    is_int(fh_export_posts(0), 1, "the next batch goes out once there is room");
    stop(s);

    /* The interval flushes what is pending. */
    env("HEADROOM_LANGFUSE_ENABLED", "1", "LANGFUSE_PUBLIC_KEY", "pk", "LANGFUSE_SECRET_KEY", "sk",
        "HEADROOM_LANGFUSE_FLUSH_INTERVAL_MS", "50", NULL);
    s = start();
    event(s, NULL);
    int posted = 0;
    for (int i = 0; i < 500 && !posted; i++) {
        nanosleep(&(struct timespec){0, 10000000L}, NULL);
        posted = fh_export_posts(0) == 1;
    }
    ok(posted, "the flush interval sends a partial batch");
    is_int(stat_int("max_batch_spans"), 512, "max batch default 512 spans");
    stop(s);
}

/* gen_ai.usage.input_tokens is what Langfuse prices: the tokens a provider
 * was sent (after compression) and answered, credited or not; 0 when no
 * provider was (a response-cache hit, a refusal, no answer), never the
 * uncompressed count. */
static void test_usage(void)
{
    env("HEADROOM_LANGFUSE_ENABLED", "1", "LANGFUSE_PUBLIC_KEY", "pk", "LANGFUSE_SECRET_KEY", "sk",
        "HEADROOM_LANGFUSE_FLUSH_INTERVAL_MS", "600000", NULL);
    void *s = start();
    /* 1: credited; 2: a response-cache hit (the stored answer's before and
     * after replayed, no upstream byte); 3: the provider answered the
     * compressed request with a 500; 4: compressed, then no answer. */
    static const struct {
        int credited, cached, status, failed;
        double ttfb_ms;
    } how[4] = {{1, 0, 200, 0, 100}, {0, 1, 200, 0, -1}, {0, 0, 500, 0, 80}, {0, 0, 502, 1, -1}};
    struct hr_event ev[4];
    for (int i = 0; i < 4; i++) {
        ev[i] = credited_event(NULL);
        ev[i].credited = how[i].credited;
        if (!ev[i].credited) ev[i].tokens_saved = ev[i].tokens_output = 0;
        ev[i].cached = how[i].cached;
        ev[i].status = how[i].status;
        ev[i].failed = how[i].failed;
        ev[i].ttfb_ms = how[i].ttfb_ms;
    }
    for (int i = 0; i < 4; i++) headroom_plugin.on_event(s, &ev[i]);
    stop(s);
    size_t len = 0;
    uint64_t items = 0;
    unsigned char *b = fh_export_posts(0) == 1 ? fh_export_body(0, 0, &len, &items) : NULL;
    ok(b != NULL, "fini sends the 4 requests' spans");
    static const char *const what[] = {"a credited request: the 930 tokens forwarded, not the 1000 before",
                                       "a response-cache hit (uncredited): 0, nothing was forwarded",
                                       "an upstream 500 (uncredited): the 930 tokens forwarded",
                                       "no answer (uncredited): 0"};
    static const long long want[] = {930, 0, 930, 0};
    for (int i = 0; i < 4; i++) {
        is_int(int_attr(b, len, "gen_ai.usage.input_tokens", i), want[i], "gen_ai.usage.input_tokens, %s", what[i]);
        is_int(int_attr(b, len, "headroom.tokens.before", i), 1000, "headroom.tokens.before 1000 on request %d", i + 1);
    }
    free(b);
}

int main(void)
{
    fh_set_log_level(HR_LOG_ERROR);
    test_conf();
    test_batching();
    test_usage();
    fh_reset();
    return tap_exit();
}
