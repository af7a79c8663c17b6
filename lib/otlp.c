/* otlp.c — OTLP protobuf and OTLP/JSON encoders (see otlp.h).
 *
 * Protobuf: a message is written in place; a nested message reserves no
 * length prefix up front: its start offset is remembered and, once its body
 * is written, the varint length is inserted before it (memmove), so every
 * length is the canonical shortest varint. Field numbers are those of
 * opentelemetry-proto v1 (collector/metrics/v1, metrics/v1, trace/v1,
 * common/v1, resource/v1).
 *
 * OTLP/JSON (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding):
 * lowerCamelCase field names, enums as integers, 64-bit integers as decimal
 * strings, trace and span ids as hex strings. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hex.h"
#include "otlp.h"

/* ------------------------------------------------------------------ buffer */

void otlp_buf_free(struct otlp_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->oom = 0;
}

static int reserve(struct otlp_buf *b, size_t more)
{
    if (b->oom) return -1;
    if (b->len + more <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + more) cap *= 2;
    unsigned char *d = realloc(b->data, cap);
    if (!d) {
        b->oom = 1;
        return -1;
    }
    b->data = d;
    b->cap = cap;
    return 0;
}

static void put(struct otlp_buf *b, const void *p, size_t n)
{
    if (!n || reserve(b, n)) return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void puts_(struct otlp_buf *b, const char *s) { put(b, s, strlen(s)); }

int otlp_buf_append(struct otlp_buf *b, const void *p, size_t n)
{
    put(b, p, n);
    return b->oom ? -1 : 0;
}

/* ---------------------------------------------------------------- protobuf */

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

static size_t varint_encode(unsigned char out[10], uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        out[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (unsigned char)v;
    return n;
}

static void pb_varint(struct otlp_buf *b, uint64_t v)
{
    unsigned char tmp[10];
    put(b, tmp, varint_encode(tmp, v));
}

static void pb_tag(struct otlp_buf *b, unsigned field, unsigned wt) { pb_varint(b, ((uint64_t)field << 3) | wt); }

static void pb_fixed64_raw(struct otlp_buf *b, uint64_t v)
{
    unsigned char tmp[8];
    for (int i = 0; i < 8; i++) tmp[i] = (unsigned char)(v >> (8 * i));
    put(b, tmp, 8);
}

static uint64_t dbl_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

/* proto3 scalars: zero values are not written (as the official encoders do). */
static void pb_uint(struct otlp_buf *b, unsigned field, uint64_t v)
{
    if (!v) return;
    pb_tag(b, field, WT_VARINT);
    pb_varint(b, v);
}

static void pb_fixed64(struct otlp_buf *b, unsigned field, uint64_t v)
{
    if (!v) return;
    pb_tag(b, field, WT_I64);
    pb_fixed64_raw(b, v);
}

/* Always written: for `optional double` and oneof members presence matters. */
static void pb_double_always(struct otlp_buf *b, unsigned field, double d)
{
    pb_tag(b, field, WT_I64);
    pb_fixed64_raw(b, dbl_bits(d));
}

static void pb_bytes(struct otlp_buf *b, unsigned field, const void *p, size_t n)
{
    pb_tag(b, field, WT_LEN);
    pb_varint(b, n);
    put(b, p, n);
}

static void pb_string(struct otlp_buf *b, unsigned field, const char *s)
{
    if (!s || !*s) return;
    pb_bytes(b, field, s, strlen(s));
}

/* Start a nested message: returns the offset its body starts at. */
static size_t pb_begin(struct otlp_buf *b, unsigned field)
{
    pb_tag(b, field, WT_LEN);
    return b->len;
}

/* End it: insert the body's length before the body. */
static void pb_end(struct otlp_buf *b, size_t start)
{
    if (b->oom) return;
    unsigned char tmp[10];
    size_t body = b->len - start, n = varint_encode(tmp, body);
    if (reserve(b, n)) return;
    memmove(b->data + start + n, b->data + start, body);
    memcpy(b->data + start, tmp, n);
    b->len += n;
}

/* common/v1 AnyValue: string_value 1, bool_value 2, int_value 3, double_value 4.
 * KeyValue: key 1, value 2. */
static void pb_kv(struct otlp_buf *b, unsigned field, const struct otlp_kv *kv)
{
    size_t m = pb_begin(b, field);
    pb_string(b, 1, kv->key);
    size_t v = pb_begin(b, 2);
    switch (kv->type) {
    case OTLP_STR: pb_bytes(b, 1, kv->s ? kv->s : "", kv->s ? strlen(kv->s) : 0); break;
    case OTLP_BOOL: pb_tag(b, 2, WT_VARINT); pb_varint(b, kv->i ? 1 : 0); break;
    case OTLP_INT: pb_tag(b, 3, WT_VARINT); pb_varint(b, (uint64_t)kv->i); break;
    case OTLP_DOUBLE: pb_double_always(b, 4, kv->d); break;
    }
    pb_end(b, v);
    pb_end(b, m);
}

static void pb_attrs(struct otlp_buf *b, unsigned field, const struct otlp_attrs *a)
{
    for (size_t i = 0; a && i < a->n; i++) pb_kv(b, field, &a->kv[i]);
}

/* resource/v1 Resource: attributes 1. */
static void pb_resource(struct otlp_buf *b, const struct otlp_attrs *resource)
{
    size_t r = pb_begin(b, 1);
    pb_attrs(b, 1, resource);
    pb_end(b, r);
}

/* common/v1 InstrumentationScope: name 1, version 2. */
static void pb_scope(struct otlp_buf *b, const struct otlp_scope *scope)
{
    size_t s = pb_begin(b, 1);
    if (scope) {
        pb_string(b, 1, scope->name);
        pb_string(b, 2, scope->version);
    }
    pb_end(b, s);
}

/* metrics/v1 NumberDataPoint: start_time_unix_nano 2 (fixed64),
 * time_unix_nano 3 (fixed64), as_double 4, as_int 6 (sfixed64), attributes 7. */
static void pb_number_point(struct otlp_buf *b, const struct otlp_point *p)
{
    size_t m = pb_begin(b, 1);
    pb_fixed64(b, 2, p->start_ns);
    pb_fixed64(b, 3, p->time_ns);
    if (p->is_double) pb_double_always(b, 4, p->as_double);
    else {
        pb_tag(b, 6, WT_I64);
        pb_fixed64_raw(b, (uint64_t)p->as_int);
    }
    pb_attrs(b, 7, &p->attrs);
    pb_end(b, m);
}

/* metrics/v1 HistogramDataPoint: start 2, time 3, count 4 (fixed64), sum 5
 * (optional double), bucket_counts 6 (packed fixed64), explicit_bounds 7
 * (packed double), attributes 9, min 11, max 12. */
static void pb_hist_point(struct otlp_buf *b, const struct otlp_point *p)
{
    size_t m = pb_begin(b, 1);
    pb_fixed64(b, 2, p->start_ns);
    pb_fixed64(b, 3, p->time_ns);
    pb_fixed64(b, 4, p->count);
    pb_double_always(b, 5, p->sum);
    pb_tag(b, 6, WT_LEN);
    pb_varint(b, (uint64_t)(p->n_bounds + 1) * 8);
    for (size_t i = 0; i <= p->n_bounds; i++) pb_fixed64_raw(b, p->bucket_counts[i]);
    if (p->n_bounds) {
        pb_tag(b, 7, WT_LEN);
        pb_varint(b, (uint64_t)p->n_bounds * 8);
        for (size_t i = 0; i < p->n_bounds; i++) pb_fixed64_raw(b, dbl_bits(p->bounds[i]));
    }
    pb_attrs(b, 9, &p->attrs);
    if (p->has_min_max) {
        pb_double_always(b, 11, p->min);
        pb_double_always(b, 12, p->max);
    }
    pb_end(b, m);
}

/* metrics/v1 Metric: name 1, description 2, unit 3, gauge 5, sum 7,
 * histogram 9. Gauge: data_points 1. Sum: data_points 1,
 * aggregation_temporality 2, is_monotonic 3. Histogram: data_points 1,
 * aggregation_temporality 2. */
static void pb_metric(struct otlp_buf *b, const struct otlp_metric *m)
{
    size_t mm = pb_begin(b, 2);
    pb_string(b, 1, m->name);
    pb_string(b, 2, m->description);
    pb_string(b, 3, m->unit);
    unsigned field = m->kind == OTLP_GAUGE ? 5 : m->kind == OTLP_SUM ? 7 : 9;
    size_t d = pb_begin(b, field);
    for (size_t i = 0; i < m->n_points; i++) {
        if (m->kind == OTLP_HISTOGRAM) pb_hist_point(b, &m->points[i]);
        else pb_number_point(b, &m->points[i]);
    }
    if (m->kind != OTLP_GAUGE) pb_uint(b, 2, (uint64_t)m->temporality);
    if (m->kind == OTLP_SUM) pb_uint(b, 3, m->monotonic ? 1 : 0);
    pb_end(b, d);
    pb_end(b, mm);
}

/* ExportMetricsServiceRequest: resource_metrics 1. ResourceMetrics:
 * resource 1, scope_metrics 2. ScopeMetrics: scope 1, metrics 2. */
int otlp_metrics_pb(struct otlp_buf *out, const struct otlp_attrs *resource, const struct otlp_scope *scope,
                    const struct otlp_metric *metrics, size_t n)
{
    size_t rm = pb_begin(out, 1);
    pb_resource(out, resource);
    size_t sm = pb_begin(out, 2);
    pb_scope(out, scope);
    for (size_t i = 0; i < n; i++) pb_metric(out, &metrics[i]);
    pb_end(out, sm);
    pb_end(out, rm);
    return out->oom ? -1 : 0;
}

/* trace/v1 Span: trace_id 1, span_id 2, trace_state 3, parent_span_id 4,
 * name 5, kind 6, start_time_unix_nano 7, end_time_unix_nano 8,
 * attributes 9, status 15, flags 16 (fixed32). Status: message 2, code 3. */
static void pb_span(struct otlp_buf *b, const struct otlp_span *s)
{
    size_t m = pb_begin(b, 2);
    pb_bytes(b, 1, s->trace_id, 16);
    pb_bytes(b, 2, s->span_id, 8);
    pb_string(b, 3, s->trace_state);
    if (s->has_parent) pb_bytes(b, 4, s->parent_span_id, 8);
    pb_string(b, 5, s->name);
    pb_uint(b, 6, (uint64_t)s->kind);
    pb_fixed64(b, 7, s->start_ns);
    pb_fixed64(b, 8, s->end_ns);
    pb_attrs(b, 9, &s->attrs);
    if (s->status != OTLP_STATUS_UNSET || (s->status_message && *s->status_message)) {
        size_t st = pb_begin(b, 15);
        pb_string(b, 2, s->status_message);
        pb_uint(b, 3, (uint64_t)s->status);
        pb_end(b, st);
    }
    if (s->flags) {
        unsigned char f[4] = {(unsigned char)s->flags, (unsigned char)(s->flags >> 8), (unsigned char)(s->flags >> 16),
                              (unsigned char)(s->flags >> 24)};
        pb_tag(b, 16, WT_I32);
        put(b, f, 4);
    }
    pb_end(b, m);
}

/* ExportTraceServiceRequest: resource_spans 1. ResourceSpans: resource 1,
 * scope_spans 2. ScopeSpans: scope 1, spans 2. */
int otlp_traces_pb(struct otlp_buf *out, const struct otlp_attrs *resource, const struct otlp_scope *scope,
                   const struct otlp_span *spans, size_t n)
{
    size_t rs = pb_begin(out, 1);
    pb_resource(out, resource);
    size_t ss = pb_begin(out, 2);
    pb_scope(out, scope);
    for (size_t i = 0; i < n; i++) pb_span(out, &spans[i]);
    pb_end(out, ss);
    pb_end(out, rs);
    return out->oom ? -1 : 0;
}

int otlp_spans_pb(struct otlp_buf *out, const struct otlp_span *spans, size_t n)
{
    for (size_t i = 0; i < n; i++) pb_span(out, &spans[i]);
    return out->oom ? -1 : 0;
}

int otlp_traces_pb_wrap(struct otlp_buf *out, const struct otlp_attrs *resource, const struct otlp_scope *scope,
                        const void *spans_pb, size_t len)
{
    size_t rs = pb_begin(out, 1);
    pb_resource(out, resource);
    size_t ss = pb_begin(out, 2);
    pb_scope(out, scope);
    put(out, spans_pb, len);
    pb_end(out, ss);
    pb_end(out, rs);
    return out->oom ? -1 : 0;
}

/* -------------------------------------------------------------------- JSON */

static void js_str(struct otlp_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\') {
            char e[2] = {'\\', (char)*p};
            put(b, e, 2);
        } else if (*p < 0x20) {
            char e[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15]};
            put(b, e, 6);
        } else {
            put(b, p, 1);
        }
    }
    put(b, "\"", 1);
}

static void js_key(struct otlp_buf *b, const char *k)
{
    js_str(b, k);
    put(b, ":", 1);
}

static void js_u64str(struct otlp_buf *b, uint64_t v)
{
    char t[32];
    snprintf(t, sizeof t, "\"%llu\"", (unsigned long long)v);
    puts_(b, t);
}

static void js_i64str(struct otlp_buf *b, int64_t v)
{
    char t[32];
    snprintf(t, sizeof t, "\"%lld\"", (long long)v);
    puts_(b, t);
}

/* Shortest text that reads back as the same double; non-finite values as the
 * proto3 JSON strings. */
static void js_double(struct otlp_buf *b, double d)
{
    char t[40];
    if (isnan(d)) snprintf(t, sizeof t, "\"NaN\"");
    else if (isinf(d)) snprintf(t, sizeof t, d > 0 ? "\"Infinity\"" : "\"-Infinity\"");
    else {
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(t, sizeof t, "%.*g", prec, d);
            if (strtod(t, NULL) == d) break;
        }
    }
    puts_(b, t);
}

static void js_hex(struct otlp_buf *b, const uint8_t *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    put(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        char h[2] = {hex[p[i] >> 4], hex[p[i] & 15]};
        put(b, h, 2);
    }
    put(b, "\"", 1);
}

static void js_attrs(struct otlp_buf *b, const struct otlp_attrs *a)
{
    js_key(b, "attributes");
    put(b, "[", 1);
    for (size_t i = 0; a && i < a->n; i++) {
        const struct otlp_kv *kv = &a->kv[i];
        if (i) put(b, ",", 1);
        put(b, "{", 1);
        js_key(b, "key");
        js_str(b, kv->key);
        puts_(b, ",\"value\":{");
        switch (kv->type) {
        case OTLP_STR: js_key(b, "stringValue"); js_str(b, kv->s); break;
        case OTLP_BOOL: js_key(b, "boolValue"); puts_(b, kv->i ? "true" : "false"); break;
        case OTLP_INT: js_key(b, "intValue"); js_i64str(b, kv->i); break;
        case OTLP_DOUBLE: js_key(b, "doubleValue"); js_double(b, kv->d); break;
        }
        puts_(b, "}}");
    }
    put(b, "]", 1);
}

static void js_head(struct otlp_buf *b, const char *outer, const struct otlp_attrs *resource, const char *scoped,
                    const struct otlp_scope *scope, const char *items)
{
    put(b, "{", 1);
    js_key(b, outer);
    puts_(b, "[{\"resource\":{");
    js_attrs(b, resource);
    puts_(b, "},");
    js_key(b, scoped);
    puts_(b, "[{\"scope\":{");
    js_key(b, "name");
    js_str(b, scope && scope->name ? scope->name : "");
    if (scope && scope->version) {
        put(b, ",", 1);
        js_key(b, "version");
        js_str(b, scope->version);
    }
    puts_(b, "},");
    js_key(b, items);
    put(b, "[", 1);
}

static void js_tail(struct otlp_buf *b) { puts_(b, "]}]}]}"); }

static void js_point(struct otlp_buf *b, const struct otlp_metric *m, const struct otlp_point *p)
{
    put(b, "{", 1);
    js_attrs(b, &p->attrs);
    puts_(b, ",\"startTimeUnixNano\":");
    js_u64str(b, p->start_ns);
    puts_(b, ",\"timeUnixNano\":");
    js_u64str(b, p->time_ns);
    if (m->kind == OTLP_HISTOGRAM) {
        puts_(b, ",\"count\":");
        js_u64str(b, p->count);
        puts_(b, ",\"sum\":");
        js_double(b, p->sum);
        puts_(b, ",\"bucketCounts\":[");
        for (size_t i = 0; i <= p->n_bounds; i++) {
            if (i) put(b, ",", 1);
            js_u64str(b, p->bucket_counts[i]);
        }
        puts_(b, "],\"explicitBounds\":[");
        for (size_t i = 0; i < p->n_bounds; i++) {
            if (i) put(b, ",", 1);
            js_double(b, p->bounds[i]);
        }
        put(b, "]", 1);
        if (p->has_min_max) {
            puts_(b, ",\"min\":");
            js_double(b, p->min);
            puts_(b, ",\"max\":");
            js_double(b, p->max);
        }
    } else if (p->is_double) {
        puts_(b, ",\"asDouble\":");
        js_double(b, p->as_double);
    } else {
        puts_(b, ",\"asInt\":");
        js_i64str(b, p->as_int);
    }
    put(b, "}", 1);
}

int otlp_metrics_json(struct otlp_buf *out, const struct otlp_attrs *resource, const struct otlp_scope *scope,
                      const struct otlp_metric *metrics, size_t n)
{
    js_head(out, "resourceMetrics", resource, "scopeMetrics", scope, "metrics");
    for (size_t i = 0; i < n; i++) {
        const struct otlp_metric *m = &metrics[i];
        if (i) put(out, ",", 1);
        put(out, "{", 1);
        js_key(out, "name");
        js_str(out, m->name);
        if (m->description) {
            puts_(out, ",\"description\":");
            js_str(out, m->description);
        }
        if (m->unit) {
            puts_(out, ",\"unit\":");
            js_str(out, m->unit);
        }
        put(out, ",", 1);
        js_key(out, m->kind == OTLP_GAUGE ? "gauge" : m->kind == OTLP_SUM ? "sum" : "histogram");
        puts_(out, "{\"dataPoints\":[");
        for (size_t j = 0; j < m->n_points; j++) {
            if (j) put(out, ",", 1);
            js_point(out, m, &m->points[j]);
        }
        put(out, "]", 1);
        if (m->kind != OTLP_GAUGE) {
            char t[48];
            snprintf(t, sizeof t, ",\"aggregationTemporality\":%d", (int)m->temporality);
            puts_(out, t);
        }
        if (m->kind == OTLP_SUM) puts_(out, m->monotonic ? ",\"isMonotonic\":true" : ",\"isMonotonic\":false");
        puts_(out, "}}");
    }
    js_tail(out);
    return out->oom ? -1 : 0;
}

int otlp_traces_json(struct otlp_buf *out, const struct otlp_attrs *resource, const struct otlp_scope *scope,
                     const struct otlp_span *spans, size_t n)
{
    js_head(out, "resourceSpans", resource, "scopeSpans", scope, "spans");
    for (size_t i = 0; i < n; i++) {
        const struct otlp_span *s = &spans[i];
        if (i) put(out, ",", 1);
        put(out, "{", 1);
        js_key(out, "traceId");
        js_hex(out, s->trace_id, 16);
        puts_(out, ",\"spanId\":");
        js_hex(out, s->span_id, 8);
        if (s->trace_state && *s->trace_state) {
            puts_(out, ",\"traceState\":");
            js_str(out, s->trace_state);
        }
        if (s->has_parent) {
            puts_(out, ",\"parentSpanId\":");
            js_hex(out, s->parent_span_id, 8);
        }
        if (s->flags) {
            char t[40];
            snprintf(t, sizeof t, ",\"flags\":%u", (unsigned)s->flags);
            puts_(out, t);
        }
        puts_(out, ",\"name\":");
        js_str(out, s->name);
        char t[64];
        snprintf(t, sizeof t, ",\"kind\":%d,\"startTimeUnixNano\":", (int)s->kind);
        puts_(out, t);
        js_u64str(out, s->start_ns);
        puts_(out, ",\"endTimeUnixNano\":");
        js_u64str(out, s->end_ns);
        put(out, ",", 1);
        js_attrs(out, &s->attrs);
        snprintf(t, sizeof t, ",\"status\":{\"code\":%d", (int)s->status);
        puts_(out, t);
        if (s->status_message && *s->status_message) {
            puts_(out, ",\"message\":");
            js_str(out, s->status_message);
        }
        puts_(out, "}}");
    }
    js_tail(out);
    return out->oom ? -1 : 0;
}

/* ----------------------------------------------------------------- helpers */

/* Trimmed, percent-decoded copy of [s, e) into out (cap bytes incl. NUL). */
static int kv_piece(const char *s, const char *e, char *out, size_t cap)
{
    while (s < e && (*s == ' ' || *s == '\t')) s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t')) e--;
    size_t n = 0;
    for (; s < e; s++) {
        int c = (unsigned char)*s, hi, lo;
        if (c == '%' && e - s >= 3 && (hi = hr_hex_digit((unsigned char)s[1])) >= 0 &&
            (lo = hr_hex_digit((unsigned char)s[2])) >= 0) {
            c = hi * 16 + lo;
            s += 2;
        }
        if (n + 1 >= cap) return -1;
        out[n++] = (char)c;
    }
    out[n] = '\0';
    return 0;
}

int otlp_parse_kv_list(const char *list, void (*fn)(void *ud, const char *k, const char *v), void *ud)
{
    if (!list) return 0;
    /* Validate first, so a malformed list reports nothing. */
    for (int pass = 0; pass < 2; pass++) {
        int n = 0;
        const char *p = list;
        while (*p) {
            const char *end = strchr(p, ',');
            if (!end) end = p + strlen(p);
            const char *eq = memchr(p, '=', (size_t)(end - p));
            char k[256], v[1024];
            int blank = 1;
            for (const char *q = p; q < end; q++)
                if (*q != ' ' && *q != '\t') blank = 0;
            if (!blank) {
                if (!eq || kv_piece(p, eq, k, sizeof k) || !*k || kv_piece(eq + 1, end, v, sizeof v)) return -1;
                if (pass) fn(ud, k, v);
                n++;
            }
            p = *end ? end + 1 : end;
        }
        if (pass) return n;
    }
    return 0;
}

static int hex_bytes(const char *s, uint8_t *out, size_t n)
{
    int nonzero = 0;
    for (size_t i = 0; i < n; i++) {
        int hi = hr_hex_digit((unsigned char)s[2 * i]), lo = hr_hex_digit((unsigned char)s[2 * i + 1]);
        /* W3C: lowercase hex only */
        if (hi < 0 || lo < 0 || (s[2 * i] >= 'A' && s[2 * i] <= 'F') || (s[2 * i + 1] >= 'A' && s[2 * i + 1] <= 'F'))
            return -1;
        out[i] = (uint8_t)(hi * 16 + lo);
        nonzero |= out[i];
    }
    return nonzero ? 0 : -1;
}

int otlp_parse_traceparent(const char *tp, uint8_t trace_id[16], uint8_t span_id[8], uint8_t *flags)
{
    if (!tp) return -1;
    while (*tp == ' ' || *tp == '\t') tp++;
    size_t len = strlen(tp);
    while (len && (tp[len - 1] == ' ' || tp[len - 1] == '\t')) len--;
    /* version 00 is exactly 55 chars; later versions may append "-..." */
    if (len < 55 || tp[2] != '-' || tp[35] != '-' || tp[52] != '-') return -1;
    if (hr_hex_digit((unsigned char)tp[0]) < 0 || hr_hex_digit((unsigned char)tp[1]) < 0) return -1;
    if (tp[0] == 'f' && tp[1] == 'f') return -1;
    if (tp[0] == '0' && tp[1] == '0' && len != 55) return -1;
    if (len > 55 && tp[55] != '-') return -1;
    uint8_t f;
    if (hex_bytes(tp + 3, trace_id, 16) || hex_bytes(tp + 36, span_id, 8)) return -1;
    int hi = hr_hex_digit((unsigned char)tp[53]), lo = hr_hex_digit((unsigned char)tp[54]);
    if (hi < 0 || lo < 0) return -1;
    f = (uint8_t)(hi * 16 + lo);
    if (flags) *flags = f;
    return 0;
}

char *otlp_base64(const void *data, size_t len)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = data;
    char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;
    if (!out) return NULL;
    size_t i = 0;
    for (; i + 2 < len; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
        *o++ = tbl[v >> 18];
        *o++ = tbl[(v >> 12) & 63];
        *o++ = tbl[(v >> 6) & 63];
        *o++ = tbl[v & 63];
    }
    if (i < len) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < len ? (unsigned)p[i + 1] << 8 : 0);
        *o++ = tbl[v >> 18];
        *o++ = tbl[(v >> 12) & 63];
        *o++ = i + 1 < len ? tbl[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    *o = '\0';
    return out;
}
