/* t/request_log_unit_test.c — the request_log line builder: field order and
 * types, rounding, timestamps, null durations, and request bodies that are
 * JSON, not JSON, or not UTF-8. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "tap.h"
#include "../plugins/request_log/line.h"

static const char *ORDER[] = {"request_id", "timestamp", "provider", "model", "stack", "path", "wire_format", "status",
                              "streamed", "credited", "tokens_input", "tokens_sent", "tokens_saved", "tokens_output",
                              "reasoning_tokens",
                              "savings_percent", "cost_usd", "savings_usd", "priced", "latency_ms", "overhead_ms",
                              "ttfb_ms", "cached", "transforms", "error", "stream_error"};
#define N_ORDER (sizeof ORDER / sizeof *ORDER)

static struct hr_stage_result stages[2] = {
    {sizeof(struct hr_stage_result), "router", 0.12345, 0, "", 0},
    {sizeof(struct hr_stage_result), "smart_crusher", 2.5, 900, "smart_crusher:top_n:kept=15/1000", 1},
};

static struct hr_event base(void)
{
    return (struct hr_event){
        .struct_size = sizeof(struct hr_event), .request_id = "req-1", .timestamp = 1764102142.1234,
        .provider = HR_PROVIDER_OPENAI, .provider_name = "openai", .model = "gpt-4o", .stack = "wrap_claude",
        .path = "/v1/chat/completions", .status = 200, .tokens_input = 3, .tokens_sent = 2, .tokens_saved = 1,
        .tokens_output = 7, .cost_usd = 0.1 + 0.2, .savings_usd = 0.0000004, .priced = 1, .latency_ms = 12.34567,
        .overhead_ms = 1.0, .ttfb_ms = -1, .n_stages = 2, .stages = stages,
    };
}

static json_t *line_of(const struct hr_event *ev, int with_request, size_t *len_out)
{
    char *line = NULL;
    size_t len = 0;
    if (hr_rlog_format(ev, with_request, &line, &len)) return NULL;
    if (len_out) *len_out = len;
    int one_line = len > 0 && line[len - 1] == '\n' && !memchr(line, '\n', len - 1);
    json_t *v = one_line ? json_loadb(line, len, JSON_ALLOW_NUL, NULL) : NULL;
    free(line);
    return v;
}

int main(void)
{
    char ts[32];
    hr_rlog_timestamp(1764102142.1234, ts);
    is_str(ts, "2025-11-25T20:22:22.123Z", "timestamp: UTC, milliseconds, Z");
    hr_rlog_timestamp(1764102142.9996, ts);
    is_str(ts, "2025-11-25T20:22:23.000Z", "timestamp: .9996 rounds into the next second");
    hr_rlog_timestamp(0, ts);
    is_str(ts, "1970-01-01T00:00:00.000Z", "timestamp: epoch");
    hr_rlog_timestamp(NAN, ts);
    is_str(ts, "1970-01-01T00:00:00.000Z", "timestamp: NaN is clamped, not garbage");

    struct hr_event ev = base();
    json_t *o = line_of(&ev, 0, NULL);
    ok(json_is_object(o), "a line is one line of JSON");
    size_t i = 0;
    const char *key;
    json_t *val;
    int in_order = 1;
    json_object_foreach(o, key, val) {
        if (i >= N_ORDER || strcmp(key, ORDER[i])) in_order = 0;
        i++;
    }
    ok(in_order && i == N_ORDER, "every field, in the contract's order (%zu keys)", i);
    ok(json_is_null(json_object_get(o, "stream_error")), "stream_error: null for a stream without an error event");
    {
        struct hr_event se = base();
        se.stream_error = "overloaded_error";
        json_t *so = line_of(&se, 0, NULL);
        is_str(json_string_value(json_object_get(so, "stream_error")), "overloaded_error",
               "stream_error: the provider's error type");
        json_decref(so);
    }
    is_str(json_string_value(json_object_get(o, "stack")), "wrap_claude", "stack");
    {
        struct hr_event rev = base();
        rev.wire_format = HR_WIRE_OPENAI_RESPONSES;
        rev.wire_format_name = "openai_responses";
        rev.reasoning_tokens = 12;
        json_t *r = line_of(&rev, 0, NULL);
        is_str(json_string_value(json_object_get(r, "wire_format")), "openai_responses", "wire_format (ABI 1.2)");
        is_int(json_integer_value(json_object_get(r, "reasoning_tokens")), 12, "reasoning_tokens (ABI 1.2)");
        json_decref(r);
    }
    ok(json_is_real(json_object_get(o, "savings_percent")) &&
           json_real_value(json_object_get(o, "savings_percent")) == 33.33,
       "savings_percent rounded to 2 decimals");
    ok(json_real_value(json_object_get(o, "cost_usd")) == 0.3, "cost_usd rounded to 6 decimals (no 0.30000000000000004)");
    ok(json_real_value(json_object_get(o, "savings_usd")) == 0.0, "savings_usd below a micro-dollar is 0");
    ok(json_real_value(json_object_get(o, "latency_ms")) == 12.346, "latency_ms to the microsecond");
    ok(json_is_null(json_object_get(o, "ttfb_ms")), "ttfb_ms null when the host says <0");
    ok(json_is_null(json_object_get(o, "error")), "error null on success");
    ok(json_is_false(json_object_get(o, "cached")) && json_is_true(json_object_get(o, "priced")), "booleans");
    json_t *tr = json_object_get(o, "transforms");
    ok(json_array_size(tr) == 2, "one transforms[] entry per stage");
    json_t *t1 = json_array_get(tr, 1);
    is_str(json_string_value(json_object_get(t1, "name")), "smart_crusher", "stage name");
    is_str(json_string_value(json_object_get(t1, "tag")), "smart_crusher:top_n:kept=15/1000", "stage tag");
    is_int(json_integer_value(json_object_get(t1, "tokens_saved")), 900, "stage tokens_saved");
    ok(json_is_true(json_object_get(t1, "failed")) && json_is_false(json_object_get(json_array_get(tr, 0), "failed")),
       "stage failed flag");
    ok(json_real_value(json_object_get(json_array_get(tr, 0), "ms")) == 0.123, "stage ms rounded");
    ok(!json_object_get(o, "request"), "no request field when the event has no body");
    json_decref(o);

    ev.request_body = "{\"model\":\"gpt-4o\",\"messages\":[]}";
    ev.request_body_len = strlen(ev.request_body);
    o = line_of(&ev, 0, NULL);
    ok(o && !json_object_get(o, "request"), "messages off: the body stays out even when the host passes it");
    json_decref(o);
    o = line_of(&ev, 1, NULL);
    json_t *rq = json_object_get(o, "request");
    ok(json_is_object(rq) && json_is_array(json_object_get(rq, "messages")), "messages on: request is the parsed body");
    json_decref(o);

    ev.request_body = "model=gpt-4o\n\"quoted\"";
    ev.request_body_len = strlen(ev.request_body);
    o = line_of(&ev, 1, NULL);
    is_str(json_string_value(json_object_get(o, "request")), "model=gpt-4o\n\"quoted\"", "a non-JSON body is a string");
    json_decref(o);

    ev.request_body = "a\xff" "b\xed\xa0\x80" "c";
    ev.request_body_len = strlen(ev.request_body);
    o = line_of(&ev, 1, NULL);
    is_str(json_string_value(json_object_get(o, "request")),
           "a\xEF\xBF\xBD" "b\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD" "c", "invalid UTF-8 becomes U+FFFD, the rest is kept");
    json_decref(o);

    ev.request_body = "{\"a\":\"x\\u0000y\"}";
    ev.request_body_len = strlen(ev.request_body);
    o = line_of(&ev, 1, NULL);
    ok(o && json_is_object(json_object_get(o, "request")), "a body with an escaped NUL still parses");
    json_decref(o);

    /* An older host's event ends before request_body: never read past it. */
    ev = base();
    ev.struct_size = offsetof(struct hr_event, request_body);
    o = line_of(&ev, 1, NULL);
    ok(o && !json_object_get(o, "request"), "an event without the request_body field is logged without request");
    json_decref(o);

    ev = base();
    ev.error = "upstream: connection refused \xff";
    ev.status = 502;
    ev.tokens_input = 0;
    ev.tokens_saved = 0;
    ev.latency_ms = NAN;
    ev.overhead_ms = -1;
    ev.stack = NULL;
    ev.n_stages = 0;
    ev.stages = NULL;
    o = line_of(&ev, 1, NULL);
    is_str(json_string_value(json_object_get(o, "error")), "upstream: connection refused \xEF\xBF\xBD",
           "error text kept even when it is not UTF-8");
    ok(json_real_value(json_object_get(o, "savings_percent")) == 0.0, "savings_percent 0 when input is 0");
    ok(json_is_null(json_object_get(o, "latency_ms")) && json_is_null(json_object_get(o, "overhead_ms")),
       "NaN and negative durations are null");
    is_str(json_string_value(json_object_get(o, "stack")), "", "a missing stack is \"\"");
    ok(json_is_array(json_object_get(o, "transforms")) && json_array_size(json_object_get(o, "transforms")) == 0,
       "no stages: transforms is []");
    json_decref(o);
    return tap_exit();
}
