/* otlp.h — a hand-written OTLP encoder: ExportMetricsServiceRequest and
 * ExportTraceServiceRequest as protobuf (application/x-protobuf) and as
 * OTLP/JSON (application/json), per opentelemetry-proto v1 (field numbers
 * are in otlp.c next to each writer). Shared by the otel and langfuse sinks.
 *
 * The caller describes one resource, one instrumentation scope and its
 * metrics or spans with the plain structs below (all borrowed); the encoder
 * appends the encoded request to an otlp_buf. Nothing here allocates except
 * the buffer, so a failed encode leaves no leak: free the buffer. */
#ifndef HR_OTLP_H
#define HR_OTLP_H
#include <stddef.h>
#include <stdint.h>

#define OTLP_CT_PROTOBUF "application/x-protobuf"
#define OTLP_CT_JSON "application/json"

struct otlp_buf {
    unsigned char *data;
    size_t len, cap;
    int oom;                    /* an append failed: the content is incomplete */
};
void otlp_buf_free(struct otlp_buf *b);
/* Append raw bytes: 0, or -1 when out of memory (oom set). */
int otlp_buf_append(struct otlp_buf *b, const void *p, size_t n);

enum otlp_value_type { OTLP_STR = 1, OTLP_INT, OTLP_DOUBLE, OTLP_BOOL };

/* One attribute (KeyValue with a scalar AnyValue). */
struct otlp_kv {
    const char *key;
    enum otlp_value_type type;
    const char *s;
    int64_t i;
    double d;                   /* OTLP_DOUBLE; OTLP_BOOL uses i (0/1) */
};
#define OTLP_KV_STR(k, v) {(k), OTLP_STR, (v), 0, 0.0}
#define OTLP_KV_INT(k, v) {(k), OTLP_INT, NULL, (int64_t)(v), 0.0}
#define OTLP_KV_DOUBLE(k, v) {(k), OTLP_DOUBLE, NULL, 0, (v)}
#define OTLP_KV_BOOL(k, v) {(k), OTLP_BOOL, NULL, (v) ? 1 : 0, 0.0}

struct otlp_attrs {
    const struct otlp_kv *kv;
    size_t n;
};

struct otlp_scope {
    const char *name;
    const char *version;
};

/* AggregationTemporality */
enum otlp_temporality { OTLP_TEMPORALITY_UNSPECIFIED = 0, OTLP_DELTA = 1, OTLP_CUMULATIVE = 2 };

enum otlp_metric_kind { OTLP_GAUGE = 1, OTLP_SUM, OTLP_HISTOGRAM };

/* A NumberDataPoint (gauge, sum) or a HistogramDataPoint. */
struct otlp_point {
    struct otlp_attrs attrs;
    uint64_t start_ns, time_ns;         /* Unix nanoseconds */
    int is_double;                      /* number points: as_double, else as_int */
    double as_double;
    int64_t as_int;
    /* histogram points */
    uint64_t count;
    double sum;
    size_t n_bounds;                    /* explicit_bounds; bucket_counts has n_bounds + 1 */
    const double *bounds;
    const uint64_t *bucket_counts;      /* per bucket, not cumulative */
    int has_min_max;
    double min, max;
};

struct otlp_metric {
    const char *name;
    const char *description;
    const char *unit;
    enum otlp_metric_kind kind;
    enum otlp_temporality temporality;  /* sum and histogram */
    int monotonic;                      /* sum */
    const struct otlp_point *points;
    size_t n_points;
};

enum otlp_span_kind { OTLP_SPAN_INTERNAL = 1, OTLP_SPAN_SERVER = 2, OTLP_SPAN_CLIENT = 3 };
enum otlp_status_code { OTLP_STATUS_UNSET = 0, OTLP_STATUS_OK = 1, OTLP_STATUS_ERROR = 2 };

struct otlp_span {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    int has_parent;
    uint8_t parent_span_id[8];
    const char *trace_state;            /* W3C tracestate or NULL */
    const char *name;
    enum otlp_span_kind kind;
    uint64_t start_ns, end_ns;
    struct otlp_attrs attrs;
    enum otlp_status_code status;
    const char *status_message;         /* NULL or text */
    uint32_t flags;                     /* W3C trace flags (low 8 bits); 0 = not written */
};

/* Encoders: append one Export*ServiceRequest to `out`. 0, or -1 when out
 * of memory (out->oom set). */
int otlp_metrics_pb(struct otlp_buf *out, const struct otlp_attrs *resource, const struct otlp_scope *scope,
                    const struct otlp_metric *metrics, size_t n);
int otlp_metrics_json(struct otlp_buf *out, const struct otlp_attrs *resource, const struct otlp_scope *scope,
                      const struct otlp_metric *metrics, size_t n);
int otlp_traces_pb(struct otlp_buf *out, const struct otlp_attrs *resource, const struct otlp_scope *scope,
                   const struct otlp_span *spans, size_t n);
/* Batching spans: otlp_spans_pb appends only the encoded spans (as
 * ScopeSpans.spans entries); otlp_traces_pb_wrap turns any concatenation of
 * such entries into one ExportTraceServiceRequest, byte for byte what
 * otlp_traces_pb gives for the same spans. */
int otlp_spans_pb(struct otlp_buf *out, const struct otlp_span *spans, size_t n);
int otlp_traces_pb_wrap(struct otlp_buf *out, const struct otlp_attrs *resource, const struct otlp_scope *scope,
                        const void *spans_pb, size_t len);
int otlp_traces_json(struct otlp_buf *out, const struct otlp_attrs *resource, const struct otlp_scope *scope,
                     const struct otlp_span *spans, size_t n);

/* Helpers shared by the sinks. */
/* Parse "k=v,k=v" (OTEL_RESOURCE_ATTRIBUTES / OTEL_EXPORTER_OTLP_HEADERS
 * syntax: keys and values trimmed, values percent-decoded). Calls fn for each
 * pair; returns the number of pairs, or -1 on a malformed list (nothing is
 * reported then). */
int otlp_parse_kv_list(const char *list, void (*fn)(void *ud, const char *k, const char *v), void *ud);
/* W3C traceparent "00-<32 hex>-<16 hex>-<2 hex>": 0 and the ids on success,
 * -1 when malformed or all-zero ids. */
int otlp_parse_traceparent(const char *tp, uint8_t trace_id[16], uint8_t span_id[8], uint8_t *flags);
/* Standard base64 (RFC 4648) of `len` bytes; caller frees. NULL on OOM. */
char *otlp_base64(const void *data, size_t len);
#endif
