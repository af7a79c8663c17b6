/* otlp_test.c — TAP: lib/otlp encodes OTLP protobuf field by field (decoded
 * here with a minimal wire-format reader, tag by tag) and OTLP/JSON (parsed
 * with jansson); the kv-list, traceparent and base64 helpers. The same bytes
 * are decoded with the official .proto definitions by t/otel_test.py. */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "otlp.h"
#include "tap.h"

/* ---- a minimal protobuf reader: one message as a list of fields ---- */
struct pbf {
    unsigned field, wt;
    uint64_t v;                 /* varint, fixed64, fixed32 */
    const unsigned char *p;     /* LEN */
    size_t len;
};
struct pbm {
    struct pbf f[256];
    size_t n;
    int bad;
};

static int rd_varint(const unsigned char **p, const unsigned char *e, uint64_t *out, int *canonical)
{
    uint64_t v = 0;
    int shift = 0;
    const unsigned char *s = *p;
    while (*p < e && shift < 64) {
        unsigned char c = *(*p)++;
        v |= (uint64_t)(c & 0x7f) << shift;
        shift += 7;
        if (!(c & 0x80)) {
            *out = v;
            if (canonical) *canonical = (*p - s == 1) || c != 0;
            return 0;
        }
    }
    return -1;
}

static int noncanonical;

static void pb_parse(const unsigned char *p, size_t len, struct pbm *m)
{
    const unsigned char *e = p + len;
    m->n = 0;
    m->bad = 0;
    while (p < e && m->n < 256) {
        uint64_t tag;
        int canon = 1;
        if (rd_varint(&p, e, &tag, NULL)) { m->bad = 1; return; }
        struct pbf *f = &m->f[m->n++];
        f->field = (unsigned)(tag >> 3);
        f->wt = (unsigned)(tag & 7);
        f->p = NULL;
        f->len = 0;
        switch (f->wt) {
        case 0: if (rd_varint(&p, e, &f->v, NULL)) m->bad = 1; break;
        case 1:
            if (e - p < 8) { m->bad = 1; return; }
            f->v = 0;
            for (int i = 0; i < 8; i++) f->v |= (uint64_t)p[i] << (8 * i);
            p += 8;
            break;
        case 5:
            if (e - p < 4) { m->bad = 1; return; }
            f->v = 0;
            for (int i = 0; i < 4; i++) f->v |= (uint64_t)p[i] << (8 * i);
            p += 4;
            break;
        case 2:
            if (rd_varint(&p, e, &f->v, &canon) || (uint64_t)(e - p) < f->v) { m->bad = 1; return; }
            if (!canon) noncanonical++;
            f->p = p;
            f->len = (size_t)f->v;
            p += f->len;
            break;
        default: m->bad = 1; return;
        }
        if (m->bad) return;
    }
}

/* The k-th occurrence of `field` (0-based), or NULL. */
static const struct pbf *get(const struct pbm *m, unsigned field, int k)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->f[i].field == field && k-- == 0) return &m->f[i];
    return NULL;
}

static int count(const struct pbm *m, unsigned field)
{
    int n = 0;
    for (size_t i = 0; i < m->n; i++) n += m->f[i].field == field;
    return n;
}

static struct pbm *sub(const struct pbm *m, unsigned field, int k)
{
    static struct pbm pool[16];
    static int next;
    struct pbm *out = &pool[next++ % 16];
    const struct pbf *f = get(m, field, k);
    if (!f || f->wt != 2) {
        out->n = 0;
        out->bad = 1;
        return out;
    }
    pb_parse(f->p, f->len, out);
    return out;
}

static int str_is(const struct pbm *m, unsigned field, const char *want)
{
    const struct pbf *f = get(m, field, 0);
    return f && f->wt == 2 && f->len == strlen(want) && !memcmp(f->p, want, f->len);
}

static double as_dbl(uint64_t v)
{
    double d;
    memcpy(&d, &v, sizeof d);
    return d;
}

static const uint64_t T0 = 1700000000000000000ull, T1 = 1700000010000000000ull;

static void test_metrics_pb(void)
{
    const struct otlp_kv res[] = {OTLP_KV_STR("service.name", "headroom-proxy"), OTLP_KV_INT("pid", 42),
                                  OTLP_KV_BOOL("b", 1), OTLP_KV_DOUBLE("d", 0.5)};
    const struct otlp_attrs resource = {res, 4};
    const struct otlp_scope scope = {"headroomd", "0.1.0"};
    const struct otlp_kv pa[] = {OTLP_KV_STR("provider", "openai"), OTLP_KV_STR("model", "gpt-4o")};
    struct otlp_point sum_pts[2] = {
        {.attrs = {pa, 2}, .start_ns = T0, .time_ns = T1, .as_int = 12345},
        {.attrs = {pa, 1}, .start_ns = T0, .time_ns = T1, .is_double = 1, .as_double = 1.25},
    };
    static const double bounds[] = {0.01, 0.02, 0.04};
    static const uint64_t counts[] = {1, 0, 2, 3};
    struct otlp_point hpt = {.attrs = {pa, 2}, .start_ns = T0, .time_ns = T1, .count = 6, .sum = 3.5,
                             .n_bounds = 3, .bounds = bounds, .bucket_counts = counts};
    struct otlp_point gpt = {.time_ns = T1, .as_int = 0};
    char longname[300];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    struct otlp_metric ms[] = {
        {"headroom.proxy.tokens.input", "Input tokens", "{token}", OTLP_SUM, OTLP_CUMULATIVE, 1, sum_pts, 2},
        {"headroom.proxy.request.duration", NULL, "s", OTLP_HISTOGRAM, OTLP_DELTA, 0, &hpt, 1},
        {longname, NULL, NULL, OTLP_GAUGE, OTLP_TEMPORALITY_UNSPECIFIED, 0, &gpt, 1},
    };
    struct otlp_buf b = {0};
    is_int(otlp_metrics_pb(&b, &resource, &scope, ms, 3), 0, "metrics_pb: encodes");
    struct pbm top;
    noncanonical = 0;
    pb_parse(b.data, b.len, &top);
    ok(!top.bad && top.n == 1 && top.f[0].field == 1 && top.f[0].wt == 2,
       "ExportMetricsServiceRequest: one resource_metrics (field 1, LEN)");
    struct pbm *rm = sub(&top, 1, 0);
    ok(!rm->bad && count(rm, 1) == 1 && count(rm, 2) == 1, "ResourceMetrics: resource (1) and scope_metrics (2)");
    struct pbm *r = sub(rm, 1, 0);
    is_int(count(r, 1), 4, "Resource.attributes (1): 4 KeyValues");
    struct pbm *kv0 = sub(r, 1, 0);
    ok(str_is(kv0, 1, "service.name"), "KeyValue.key (1)");
    struct pbm *av0 = sub(kv0, 2, 0);
    ok(str_is(av0, 1, "headroom-proxy"), "AnyValue.string_value (1)");
    struct pbm *av1 = sub(sub(r, 1, 1), 2, 0);
    ok(get(av1, 3, 0) && get(av1, 3, 0)->wt == 0 && get(av1, 3, 0)->v == 42, "AnyValue.int_value (3, varint)");
    struct pbm *av2 = sub(sub(r, 1, 2), 2, 0);
    ok(get(av2, 2, 0) && get(av2, 2, 0)->v == 1, "AnyValue.bool_value (2)");
    struct pbm *av3 = sub(sub(r, 1, 3), 2, 0);
    ok(get(av3, 4, 0) && get(av3, 4, 0)->wt == 1 && as_dbl(get(av3, 4, 0)->v) == 0.5, "AnyValue.double_value (4, I64)");

    struct pbm *sm = sub(rm, 2, 0);
    struct pbm *sc = sub(sm, 1, 0);
    ok(str_is(sc, 1, "headroomd") && str_is(sc, 2, "0.1.0"), "InstrumentationScope name (1), version (2)");
    is_int(count(sm, 2), 3, "ScopeMetrics.metrics (2): 3 metrics");

    struct pbm *m0 = sub(sm, 2, 0);
    ok(str_is(m0, 1, "headroom.proxy.tokens.input") && str_is(m0, 2, "Input tokens") && str_is(m0, 3, "{token}"),
       "Metric name (1), description (2), unit (3)");
    struct pbm *sum = sub(m0, 7, 0);
    ok(!sum->bad, "Metric.sum (7)");
    ok(get(sum, 2, 0) && get(sum, 2, 0)->v == 2, "Sum.aggregation_temporality (2) = CUMULATIVE (2)");
    ok(get(sum, 3, 0) && get(sum, 3, 0)->v == 1, "Sum.is_monotonic (3) = true");
    is_int(count(sum, 1), 2, "Sum.data_points (1): 2 points");
    struct pbm *dp = sub(sum, 1, 0);
    ok(get(dp, 2, 0) && get(dp, 2, 0)->wt == 1 && get(dp, 2, 0)->v == T0, "NumberDataPoint.start_time_unix_nano (2, fixed64)");
    ok(get(dp, 3, 0) && get(dp, 3, 0)->wt == 1 && get(dp, 3, 0)->v == T1, "NumberDataPoint.time_unix_nano (3, fixed64)");
    ok(get(dp, 6, 0) && get(dp, 6, 0)->wt == 1 && get(dp, 6, 0)->v == 12345, "NumberDataPoint.as_int (6, sfixed64)");
    ok(!get(dp, 4, 0), "no as_double on an int point");
    is_int(count(dp, 7), 2, "NumberDataPoint.attributes (7): 2");
    ok(str_is(sub(sub(dp, 7, 1), 2, 0), 1, "gpt-4o"), "point attribute model=gpt-4o");
    struct pbm *dp1 = sub(sum, 1, 1);
    ok(get(dp1, 4, 0) && as_dbl(get(dp1, 4, 0)->v) == 1.25 && !get(dp1, 6, 0), "NumberDataPoint.as_double (4)");

    struct pbm *m1 = sub(sm, 2, 1);
    ok(!get(m1, 2, 0), "no description written when NULL");
    struct pbm *h = sub(m1, 9, 0);
    ok(!h->bad, "Metric.histogram (9)");
    ok(get(h, 2, 0) && get(h, 2, 0)->v == 1, "Histogram.aggregation_temporality (2) = DELTA (1)");
    struct pbm *hp = sub(h, 1, 0);
    ok(get(hp, 4, 0) && get(hp, 4, 0)->wt == 1 && get(hp, 4, 0)->v == 6, "HistogramDataPoint.count (4, fixed64)");
    ok(get(hp, 5, 0) && as_dbl(get(hp, 5, 0)->v) == 3.5, "HistogramDataPoint.sum (5, double)");
    const struct pbf *bc = get(hp, 6, 0), *eb = get(hp, 7, 0);
    ok(bc && bc->wt == 2 && bc->len == 32, "HistogramDataPoint.bucket_counts (6): packed, 4 x fixed64");
    int bc_ok = bc && bc->len == 32;
    for (int i = 0; bc_ok && i < 4; i++) {
        uint64_t v = 0;
        for (int j = 0; j < 8; j++) v |= (uint64_t)bc->p[8 * i + j] << (8 * j);
        bc_ok = v == counts[i];
    }
    ok(bc_ok, "bucket_counts values 1,0,2,3");
    int eb_ok = eb && eb->wt == 2 && eb->len == 24;
    for (int i = 0; eb_ok && i < 3; i++) {
        uint64_t v = 0;
        for (int j = 0; j < 8; j++) v |= (uint64_t)eb->p[8 * i + j] << (8 * j);
        eb_ok = as_dbl(v) == bounds[i];
    }
    ok(eb_ok, "HistogramDataPoint.explicit_bounds (7): packed doubles 0.01,0.02,0.04");
    is_int(count(hp, 9), 2, "HistogramDataPoint.attributes (9)");
    ok(!get(hp, 11, 0) && !get(hp, 12, 0), "min/max absent unless has_min_max");

    struct pbm *m2 = sub(sm, 2, 2);
    ok(str_is(m2, 1, longname), "a 299-byte name survives (2-byte length varint)");
    struct pbm *g = sub(m2, 5, 0);
    struct pbm *gp = sub(g, 1, 0);
    ok(!g->bad && !get(g, 2, 0) && get(gp, 6, 0) && get(gp, 6, 0)->v == 0 && !get(gp, 2, 0),
       "Metric.gauge (5): no temporality; as_int 0 written (oneof), start 0 left out");
    is_int(noncanonical, 0, "every length prefix is a canonical varint");
    otlp_buf_free(&b);
}

static void test_traces_pb(void)
{
    const struct otlp_kv res[] = {OTLP_KV_STR("service.name", "headroom-proxy")};
    const struct otlp_attrs resource = {res, 1};
    const struct otlp_scope scope = {"headroomd", NULL};
    const struct otlp_kv sa[] = {OTLP_KV_STR("gen_ai.system", "openai"), OTLP_KV_INT("gen_ai.usage.input_tokens", 900)};
    struct otlp_span sp[2] = {{.name = "headroom.compression.pipeline", .kind = OTLP_SPAN_CLIENT, .start_ns = T0,
                               .end_ns = T1, .attrs = {sa, 2}, .status = OTLP_STATUS_ERROR,
                               .status_message = "upstream 500", .flags = 1, .trace_state = "k=v"},
                              {.name = "headroom.transform.router", .kind = OTLP_SPAN_INTERNAL, .start_ns = T0,
                               .end_ns = T0 + 1000, .has_parent = 1}};
    for (int i = 0; i < 16; i++) sp[0].trace_id[i] = sp[1].trace_id[i] = (uint8_t)(i + 1);
    for (int i = 0; i < 8; i++) sp[0].span_id[i] = sp[1].parent_span_id[i] = (uint8_t)(0xa0 + i);
    for (int i = 0; i < 8; i++) sp[1].span_id[i] = (uint8_t)(0xb0 + i);
    struct otlp_buf b = {0};
    is_int(otlp_traces_pb(&b, &resource, &scope, sp, 2), 0, "traces_pb: encodes");
    struct pbm top;
    pb_parse(b.data, b.len, &top);
    struct pbm *rs = sub(&top, 1, 0);
    ok(!top.bad && top.n == 1 && !rs->bad, "ExportTraceServiceRequest.resource_spans (1)");
    struct pbm *ss = sub(rs, 2, 0);
    ok(str_is(sub(ss, 1, 0), 1, "headroomd") && !get(sub(ss, 1, 0), 2, 0), "ScopeSpans.scope (1), no version when NULL");
    is_int(count(ss, 2), 2, "ScopeSpans.spans (2): 2");
    struct pbm *s0 = sub(ss, 2, 0);
    const struct pbf *tid = get(s0, 1, 0), *sid = get(s0, 2, 0);
    ok(tid && tid->len == 16 && tid->p[0] == 1 && tid->p[15] == 16, "Span.trace_id (1): 16 bytes");
    ok(sid && sid->len == 8 && sid->p[0] == 0xa0, "Span.span_id (2): 8 bytes");
    ok(str_is(s0, 3, "k=v"), "Span.trace_state (3)");
    ok(!get(s0, 4, 0), "root span: no parent_span_id");
    ok(str_is(s0, 5, "headroom.compression.pipeline"), "Span.name (5)");
    ok(get(s0, 6, 0) && get(s0, 6, 0)->v == 3, "Span.kind (6) = CLIENT (3)");
    ok(get(s0, 7, 0) && get(s0, 7, 0)->wt == 1 && get(s0, 7, 0)->v == T0, "Span.start_time_unix_nano (7)");
    ok(get(s0, 8, 0) && get(s0, 8, 0)->v == T1, "Span.end_time_unix_nano (8)");
    is_int(count(s0, 9), 2, "Span.attributes (9)");
    struct pbm *st = sub(s0, 15, 0);
    ok(get(st, 3, 0) && get(st, 3, 0)->v == 2 && str_is(st, 2, "upstream 500"), "Status code (3) ERROR, message (2)");
    ok(get(s0, 16, 0) && get(s0, 16, 0)->wt == 5 && get(s0, 16, 0)->v == 1, "Span.flags (16, fixed32)");
    struct pbm *s1 = sub(ss, 2, 1);
    const struct pbf *par = get(s1, 4, 0);
    ok(par && par->len == 8 && par->p[7] == 0xa7, "child: parent_span_id (4) = root's span_id");
    ok(!get(s1, 15, 0) && !get(s1, 16, 0), "child: no status or flags when unset");

    /* Batching: span entries encoded one request at a time, then wrapped,
     * give the very bytes of one request over all the spans. */
    struct otlp_buf parts = {0}, batch = {0};
    is_int(otlp_spans_pb(&parts, sp, 1), 0, "spans_pb: first span");
    is_int(otlp_spans_pb(&parts, sp + 1, 1), 0, "spans_pb: second span appended");
    is_int(otlp_traces_pb_wrap(&batch, &resource, &scope, parts.data, parts.len), 0, "traces_pb_wrap: encodes");
    ok(batch.len == b.len && !memcmp(batch.data, b.data, b.len), "wrapped batch == traces_pb of the same spans, byte for byte");
    otlp_buf_free(&parts);
    otlp_buf_free(&batch);
    otlp_buf_free(&b);
}

static json_t *parse(struct otlp_buf *b)
{
    json_error_t e;
    json_t *j = json_loadb((const char *)b->data, b->len, 0, &e);
    if (!j) tap_diag("JSON error: %s at %d", e.text, e.position);
    return j;
}

static void test_json(void)
{
    const struct otlp_kv res[] = {OTLP_KV_STR("service.name", "a\"b\\c\n"), OTLP_KV_INT("n", -7),
                                  OTLP_KV_DOUBLE("d", 0.1), OTLP_KV_BOOL("b", 0)};
    const struct otlp_attrs resource = {res, 4};
    const struct otlp_scope scope = {"headroomd", "1.2.3"};
    static const double bounds[] = {0.005, 1e-4};
    static const uint64_t counts[] = {1, 2, 18446744073709551615ull};
    struct otlp_point hpt = {.start_ns = T0, .time_ns = T1, .count = 3, .sum = 0.3, .n_bounds = 2, .bounds = bounds,
                             .bucket_counts = counts, .has_min_max = 1, .min = 0.001, .max = 2};
    struct otlp_point ipt = {.start_ns = T0, .time_ns = T1, .as_int = 9007199254740993ll};
    struct otlp_metric ms[] = {{"h", "help", "s", OTLP_HISTOGRAM, OTLP_CUMULATIVE, 0, &hpt, 1},
                               {"c", NULL, "{request}", OTLP_SUM, OTLP_DELTA, 1, &ipt, 1}};
    struct otlp_buf b = {0};
    is_int(otlp_metrics_json(&b, &resource, &scope, ms, 2), 0, "metrics_json: encodes");
    json_t *j = parse(&b);
    ok(j != NULL, "metrics_json: valid JSON");
    json_t *rm = json_array_get(json_object_get(j, "resourceMetrics"), 0);
    json_t *attrs = json_object_get(json_object_get(rm, "resource"), "attributes");
    is_str(json_string_value(json_object_get(json_object_get(json_array_get(attrs, 0), "value"), "stringValue")),
           "a\"b\\c\n", "resource stringValue escaped and read back");
    is_str(json_string_value(json_object_get(json_object_get(json_array_get(attrs, 1), "value"), "intValue")), "-7",
           "intValue is a decimal string");
    ok(json_real_value(json_object_get(json_object_get(json_array_get(attrs, 2), "value"), "doubleValue")) == 0.1,
       "doubleValue round-trips 0.1");
    ok(json_is_false(json_object_get(json_object_get(json_array_get(attrs, 3), "value"), "boolValue")), "boolValue false");
    json_t *sm = json_array_get(json_object_get(rm, "scopeMetrics"), 0);
    is_str(json_string_value(json_object_get(json_object_get(sm, "scope"), "version")), "1.2.3", "scope.version");
    json_t *m0 = json_array_get(json_object_get(sm, "metrics"), 0);
    is_str(json_string_value(json_object_get(m0, "unit")), "s", "metric unit");
    json_t *h = json_object_get(m0, "histogram");
    is_int(json_integer_value(json_object_get(h, "aggregationTemporality")), 2, "aggregationTemporality is an integer enum");
    json_t *p = json_array_get(json_object_get(h, "dataPoints"), 0);
    is_str(json_string_value(json_object_get(p, "startTimeUnixNano")), "1700000000000000000", "startTimeUnixNano string");
    is_str(json_string_value(json_object_get(p, "count")), "3", "count string");
    is_str(json_string_value(json_array_get(json_object_get(p, "bucketCounts"), 2)), "18446744073709551615",
           "bucketCounts as uint64 strings");
    ok(json_real_value(json_array_get(json_object_get(p, "explicitBounds"), 1)) == 1e-4, "explicitBounds doubles");
    ok(json_number_value(json_object_get(p, "max")) == 2 && json_real_value(json_object_get(p, "min")) == 0.001, "min/max");
    json_t *m1 = json_array_get(json_object_get(sm, "metrics"), 1);
    ok(!json_object_get(m1, "description"), "no description key when NULL");
    json_t *s = json_object_get(m1, "sum");
    ok(json_is_true(json_object_get(s, "isMonotonic")) && json_integer_value(json_object_get(s, "aggregationTemporality")) == 1,
       "sum: isMonotonic, DELTA");
    is_str(json_string_value(json_object_get(json_array_get(json_object_get(s, "dataPoints"), 0), "asInt")),
           "9007199254740993", "asInt keeps 64-bit precision as a string");
    json_decref(j);
    otlp_buf_free(&b);

    struct otlp_span sp = {.name = "chat gpt-4o", .kind = OTLP_SPAN_CLIENT, .start_ns = T0, .end_ns = T1,
                           .has_parent = 1, .status = OTLP_STATUS_OK};
    for (int i = 0; i < 16; i++) sp.trace_id[i] = (uint8_t)(0xf0 + i);
    for (int i = 0; i < 8; i++) sp.span_id[i] = sp.parent_span_id[i] = (uint8_t)i;
    is_int(otlp_traces_json(&b, &resource, &scope, &sp, 1), 0, "traces_json: encodes");
    j = parse(&b);
    json_t *span = json_array_get(
        json_object_get(json_array_get(json_object_get(json_array_get(json_object_get(j, "resourceSpans"), 0), "scopeSpans"), 0),
                        "spans"),
        0);
    is_str(json_string_value(json_object_get(span, "traceId")), "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff", "traceId as hex");
    is_str(json_string_value(json_object_get(span, "parentSpanId")), "0001020304050607", "parentSpanId as hex");
    is_int(json_integer_value(json_object_get(span, "kind")), 3, "kind integer");
    is_int(json_integer_value(json_object_get(json_object_get(span, "status"), "code")), 1, "status.code");
    is_str(json_string_value(json_object_get(span, "endTimeUnixNano")), "1700000010000000000", "endTimeUnixNano string");
    json_decref(j);
    otlp_buf_free(&b);
}

struct kvs {
    char text[512];
};
static void kv_cb(void *ud, const char *k, const char *v)
{
    struct kvs *s = ud;
    size_t n = strlen(s->text);
    snprintf(s->text + n, sizeof s->text - n, "[%s|%s]", k, v);
}

static void test_helpers(void)
{
    struct kvs s = {""};
    is_int(otlp_parse_kv_list(" deployment.environment = dev ,service.namespace=headroom,x=a%2Cb,", kv_cb, &s), 3,
           "kv list: 3 pairs (trailing comma ignored)");
    is_str(s.text, "[deployment.environment|dev][service.namespace|headroom][x|a,b]", "kv list: trimmed, percent-decoded");
    s.text[0] = '\0';
    is_int(otlp_parse_kv_list("a=1,broken", kv_cb, &s), -1, "kv list: an entry without '=' is malformed");
    is_str(s.text, "", "kv list: nothing reported for a malformed list");
    is_int(otlp_parse_kv_list("=v", kv_cb, &s), -1, "kv list: empty key is malformed");
    is_int(otlp_parse_kv_list("", kv_cb, &s), 0, "kv list: empty list");

    uint8_t t[16], sp[8], f = 0;
    is_int(otlp_parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", t, sp, &f), 0,
           "traceparent: W3C example parses");
    ok(t[0] == 0x4b && t[15] == 0x36 && sp[0] == 0x00 && sp[7] == 0xb7 && f == 1, "traceparent: ids and flags");
    is_int(otlp_parse_traceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01", t, sp, &f), -1,
           "traceparent: all-zero trace id refused");
    is_int(otlp_parse_traceparent("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", t, sp, &f), -1,
           "traceparent: uppercase refused");
    is_int(otlp_parse_traceparent("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", t, sp, &f), -1,
           "traceparent: version ff refused");
    is_int(otlp_parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", t, sp, &f), -1,
           "traceparent: truncated refused");
    is_int(otlp_parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", t, sp, &f), 0,
           "traceparent: a later version may append fields");

    char *b64 = otlp_base64("pk-lf-1:sk-lf-2", 15);
    is_str(b64, "cGstbGYtMTpzay1sZi0y", "base64 (no padding)");
    free(b64);
    b64 = otlp_base64("ab", 2);
    is_str(b64, "YWI=", "base64 (one pad)");
    free(b64);
    b64 = otlp_base64("a", 1);
    is_str(b64, "YQ==", "base64 (two pads)");
    free(b64);
}

int main(void)
{
    test_metrics_pb();
    test_traces_pb();
    test_json();
    test_helpers();
    return tap_exit();
}
