/* line.c — one request-log line per event: the fields of the monitoring
 * contract in a fixed order, numbers rounded as the contract says. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "line.h"
#include "numfmt.h"
#include "utf8.h"

/* 15 significant digits print every value we round (≤ 6 decimals) exactly,
 * where jansson's default of 17 would show binary noise (0.30000000000000004). */
#define DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))

/* A rounded number, or null for NaN/inf (jansson refuses those). */
static json_t *rounded(double v, double scale)
{
    if (!isfinite(v)) return json_null();
    int decimals = (int)lround(log10(scale));
    return json_real(hr_numfmt_round(v, decimals) + 0.0); /* + 0.0 turns -0 into 0 */
}

/* Durations the host reports as negative mean "did not happen". */
static json_t *ms_or_null(double v) { return isfinite(v) && v >= 0 ? rounded(v, 1e3) : json_null(); }


void hr_rlog_timestamp(double ts, char out[32])
{
    if (!isfinite(ts) || ts < 0 || ts > 253402300799.0) ts = 0; /* keep to four-digit years */
    time_t secs = (time_t)floor(ts);
    unsigned ms = (unsigned)lround((ts - (double)secs) * 1000.0);
    if (ms >= 1000) {
        secs++;
        ms = 0;
    }
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03uZ", ms % 1000);
}

/* The body as a JSON string; bytes that are not UTF-8 become U+FFFD so the
 * line stays valid JSON and the rest of the text stays readable. */
static json_t *body_string(const char *body, size_t len)
{
    if (len > (SIZE_MAX - 1) / 3) return NULL;
    char *clean = malloc(len * 3 + 1);
    if (!clean) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < len;) {
        size_t n = hr_utf8_seq((const unsigned char *)body + i, len - i);
        if (n) {
            memcpy(clean + k, body + i, n);
            k += n;
            i += n;
        } else {
            memcpy(clean + k, "\xEF\xBF\xBD", 3);
            k += 3;
            i++;
        }
    }
    json_t *s = json_stringn(clean, k);
    free(clean);
    return s;
}

/* Strings from the host are UTF-8 in practice; the fallback keeps a field
 * that is not (an upstream error text, say) instead of dropping it. */
static json_t *str_or_empty(const char *s)
{
    if (!s) return json_string("");
    json_t *v = json_string(s);
    return v ? v : body_string(s, strlen(s));
}

json_t *hr_rlog_body_json(const char *body, size_t len)
{
    if (!body) return json_null();
    json_error_t jerr;
    /* Any JSON value, as the client sent it; numbers too big for jansson
     * make the parse fail, and the body is then kept verbatim as a string. */
    json_t *v = json_loadb(body, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    return v ? v : body_string(body, len);
}

static json_t *stage_json(const struct hr_stage_result *st)
{
    json_t *o = json_object();
    if (!o) return NULL;
    json_object_set_new(o, "name", str_or_empty(st->name));
    json_object_set_new(o, "ms", ms_or_null(st->ms));
    json_object_set_new(o, "tokens_saved", json_integer(st->tokens_saved > 0 ? st->tokens_saved : 0));
    json_object_set_new(o, "tag", str_or_empty(st->tag));
    json_object_set_new(o, "failed", json_boolean(st->failed));
    return o;
}

/* Objects keep insertion order (jansson >= 2.8), so every line lists the
 * fields in the order of the monitoring contract. */
static json_t *event_json(const struct hr_event *ev, int with_request)
{
    char ts[32];
    hr_rlog_timestamp(ev->timestamp, ts);
    double pct = ev->tokens_input ? (double)ev->tokens_saved / (double)ev->tokens_input * 100.0 : 0.0;
    json_t *o = json_object();
    if (!o) return NULL;
    json_object_set_new(o, "request_id", str_or_empty(ev->request_id));
    json_object_set_new(o, "timestamp", json_string(ts));
    json_object_set_new(o, "provider", json_string(ev->provider_name ? ev->provider_name : "unknown"));
    json_object_set_new(o, "model", str_or_empty(ev->model));
    json_object_set_new(o, "stack", str_or_empty(ev->stack));
    json_object_set_new(o, "path", str_or_empty(ev->path));
    /* ABI 1.2: the API the request spoke ("" on pass-through routes). */
    json_object_set_new(o, "wire_format", str_or_empty(HR_HAS_FIELD(ev, struct hr_event, wire_format_name)
                                                           ? ev->wire_format_name : NULL));
    json_object_set_new(o, "status", json_integer(ev->status));
    json_object_set_new(o, "streamed", json_boolean(ev->streamed));
    json_object_set_new(o, "credited", json_boolean(HR_HAS_FIELD(ev, struct hr_event, credited) ? ev->credited : 1));
    json_object_set_new(o, "tokens_input", json_integer((json_int_t)ev->tokens_input));
    json_object_set_new(o, "tokens_sent", json_integer((json_int_t)ev->tokens_sent));
    json_object_set_new(o, "tokens_saved", json_integer((json_int_t)ev->tokens_saved));
    json_object_set_new(o, "tokens_output", json_integer((json_int_t)ev->tokens_output));
    json_object_set_new(o, "reasoning_tokens", json_integer(HR_HAS_FIELD(ev, struct hr_event, reasoning_tokens)
                                                                ? (json_int_t)ev->reasoning_tokens : 0));
    json_object_set_new(o, "savings_percent", rounded(pct, 1e2));
    json_object_set_new(o, "cost_usd", rounded(ev->cost_usd, 1e6));
    json_object_set_new(o, "savings_usd", rounded(ev->savings_usd, 1e6));
    json_object_set_new(o, "priced", json_boolean(ev->priced));
    json_object_set_new(o, "latency_ms", ms_or_null(ev->latency_ms));
    json_object_set_new(o, "overhead_ms", ms_or_null(ev->overhead_ms));
    json_object_set_new(o, "ttfb_ms", ms_or_null(ev->ttfb_ms));
    json_object_set_new(o, "cached", json_boolean(ev->cached));
    json_t *tr = json_array();
    for (size_t i = 0; tr && ev->stages && i < ev->n_stages; i++) json_array_append_new(tr, stage_json(&ev->stages[i]));
    json_object_set_new(o, "transforms", tr ? tr : json_array());
    json_object_set_new(o, "error", ev->error ? str_or_empty(ev->error) : json_null());
    json_object_set_new(o, "stream_error", HR_HAS_FIELD(ev, struct hr_event, stream_error) && ev->stream_error
                                               ? str_or_empty(ev->stream_error)
                                               : json_null());
    if (with_request && HR_HAS_FIELD(ev, struct hr_event, request_body_len) && ev->request_body)
        json_object_set_new(o, "request", hr_rlog_body_json(ev->request_body, ev->request_body_len));
    return o;
}

int hr_rlog_format(const struct hr_event *ev, int with_request, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    json_t *o = event_json(ev, with_request);
    if (!o) return HR_ENOMEM;
    char *text = json_dumps(o, DUMP_FLAGS);
    json_decref(o);
    if (!text) return HR_ENOMEM;
    size_t n = strlen(text);
    char *line = realloc(text, n + 2);
    if (!line) {
        free(text);
        return HR_ENOMEM;
    }
    line[n] = '\n';
    line[n + 1] = '\0';
    *out = line;
    *len = n + 1;
    return HR_OK;
}
