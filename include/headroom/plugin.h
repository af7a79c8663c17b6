/* headroom/plugin.h — the stable plugin ABI of headroomd.
 *
 * This is the only header a plugin author needs. A plugin is a shared object
 * exporting one const symbol, `headroom_plugin`, describing itself. The host
 * loads it with libltdl, checks the ABI major, validates its config block
 * against the keys it declares, and calls init() with a function table
 * (struct hr_host) that is the plugin's only way into the host.
 *
 * Compatibility rules (ABI major HR_ABI_MAJOR):
 *  - every struct crossing the boundary starts with `uint32_t struct_size`;
 *  - fields are only ever appended, never removed or reordered;
 *  - a plugin must check `struct_size` before reading a field added in a
 *    later minor version (HR_HAS_FIELD below);
 *  - anything the host passes is borrowed for the duration of the call;
 *    anything a plugin hands back is released with the free callback it names;
 *  - the minor version that added a field is written next to it ("1.1",
 *    "1.2"); fields without a mark are 1.0. The host reads a plugin's
 *    structs as the minor the plugin was built with (descriptor abi_minor),
 *    so plugins built against an older minor keep loading.
 */
#ifndef HEADROOM_PLUGIN_H
#define HEADROOM_PLUGIN_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HR_ABI_MAJOR 1
#define HR_ABI_MINOR 10

#if defined(__GNUC__)
#define HR_PLUGIN_EXPORT __attribute__((visibility("default")))
#define HR_PRINTF_LIKE(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define HR_PLUGIN_EXPORT
#define HR_PRINTF_LIKE(fmt, args)
#endif

/* True when a struct received across the ABI is large enough to hold FIELD. */
#define HR_HAS_FIELD(ptr, type, field) \
    ((ptr)->struct_size >= offsetof(type, field) + sizeof(((type *)0)->field))

/* Name of the one symbol a plugin exports. */
#define HEADROOM_PLUGIN_SYMBOL "headroom_plugin"

enum hr_plugin_kind { HR_PLUGIN_TRANSFORM = 1, HR_PLUGIN_SINK = 2 };

enum hr_log_level { HR_LOG_ERROR = 0, HR_LOG_WARN = 1, HR_LOG_INFO = 2, HR_LOG_DEBUG = 3 };

enum hr_provider { HR_PROVIDER_UNKNOWN = 0, HR_PROVIDER_OPENAI = 1, HR_PROVIDER_ANTHROPIC = 2 };

/* 1.2: the API a request speaks. Plugins that edit the body beyond units
 * check it: the conversation is `messages` (chat, messages) or `input`
 * (responses), and only Anthropic Messages takes cache_control. */
enum hr_wire_format {
    HR_WIRE_UNKNOWN = 0,
    HR_WIRE_OPENAI_CHAT = 1,        /* POST /v1/chat/completions */
    HR_WIRE_ANTHROPIC_MESSAGES = 2, /* POST /v1/messages */
    HR_WIRE_OPENAI_RESPONSES = 3,   /* POST /v1/responses */
};

/* Content type of a candidate unit, set by the `router` transform. */
enum hr_content_type {
    HR_CT_UNKNOWN = 0,
    HR_CT_JSON_ARRAY,
    HR_CT_JSON_OBJECT,
    HR_CT_LOG,
    HR_CT_SEARCH,
    HR_CT_DIFF,
    HR_CT_CODE,
    HR_CT_HTML,
    HR_CT_TEXT,
    HR_CT__COUNT
};
#define HR_CT_BIT(ct) (1u << (ct))

/* Opaque handles owned by the host. */
struct hr_instance; /* one loaded, configured plugin instance */
struct hr_conf;     /* that instance's config block */

/* ------------------------------------------------------------------ config */

enum hr_conf_type { HR_CONF_STRING = 1, HR_CONF_INT, HR_CONF_BOOL, HR_CONF_DOUBLE };

/* 1.2: flags of a config key. */
#define HR_CONF_REQUIRED 0x1u /* the block must set it */
#define HR_CONF_MIN      0x2u /* INT/DOUBLE: value >= min */
#define HR_CONF_MAX      0x4u /* INT/DOUBLE: value <= max */

/* A config key a plugin accepts (nginx-style directive table). The host
 * rejects unknown keys, values of the wrong type or out of bounds, and
 * missing required keys with file:line:col, before any plugin's init runs;
 * `headroomd --check-config` does exactly that (it never calls init) and
 * lists keys with their help text.
 * Terminate the array with an entry whose name is NULL. The array's stride
 * is this struct as of the plugin's abi_minor: a plugin built against 1.0
 * or 1.1 has only the first four fields. */
struct hr_conf_key {
    const char *name;
    enum hr_conf_type type;
    const char *default_value; /* as text, as it would appear in the file; may be NULL */
    const char *help;          /* one line */
    unsigned flags;            /* 1.2: HR_CONF_* */
    double min, max;           /* 1.2: bounds, with HR_CONF_MIN / HR_CONF_MAX */
};

/* Table entries (1.2); every field initialised, so -Wextra stays quiet. */
#define HR_CONF_KEY(name, type, def, help) {(name), (type), (def), (help), 0u, 0.0, 0.0}
#define HR_CONF_KEY_MIN(name, type, def, help, lo) {(name), (type), (def), (help), HR_CONF_MIN, (lo), 0.0}
#define HR_CONF_KEY_RANGE(name, type, def, help, lo, hi) \
    {(name), (type), (def), (help), HR_CONF_MIN | HR_CONF_MAX, (lo), (hi)}
#define HR_CONF_KEY_REQUIRED(name, type, help) {(name), (type), NULL, (help), HR_CONF_REQUIRED, 0.0, 0.0}
#define HR_CONF_END {NULL, (enum hr_conf_type)0, NULL, NULL, 0u, 0.0, 0.0}

/* ----------------------------------------------------------------- requests */

#define HR_UNIT_PROTECTED  0x1u /* below the protected floor or a protected tool: do not modify */
#define HR_UNIT_HAS_MARKER 0x2u /* already carries a retrieval marker: do not compress again
                                   * (1.6: kept current across unit_replace) */

/* Key of the marker object a transform leaves where it dropped content in
 * JSON, and the start of the marker line it leaves in text; a unit whose text
 * contains "\"_headroom\"" or "[headroom: " is flagged HR_UNIT_HAS_MARKER.
 * Either names the stored original as hash=<24 hex>. */
#define HR_MARKER_KEY "_headroom"
#define HR_TEXT_MARKER "[headroom: "

/* 1.3: hr_unit.tokens of a text the host has not counted yet. Only stages
 * that declared HR_TF_COUNTS_ON_DEMAND see it; they ask unit_tokens_at_least
 * or unit_tokens instead (hr_unit_tokens_at_least below works on any host). */
#define HR_TOKENS_UNKNOWN ((size_t)-1)

/* A candidate unit: one tool output's text (OpenAI role:"tool" content, an
 * Anthropic tool_result's text, or a Responses function_call_output /
 * custom_tool_call_output `output`; or each text part of one). Transforms
 * read `text` and replace it only through hr_host.unit_replace(). */
struct hr_unit {
    uint32_t struct_size;
    uint32_t message_index;     /* index in messages[] (input[] for /v1/responses) */
    const char *text;           /* NUL-terminated UTF-8, owned by the host */
    size_t len;                 /* bytes, without the NUL */
    size_t tokens;              /* host's count of `text`; HR_TOKENS_UNKNOWN (1.3) only
                                 * for stages that declared HR_TF_COUNTS_ON_DEMAND */
    enum hr_content_type type;  /* writable by the router */
    const char *tool_name;      /* name of the tool that produced it, or NULL */
    uint32_t flags;             /* HR_UNIT_* */
};

/* A request going through the pipeline. `body` is the parsed client JSON;
 * transforms may edit it (the host serialises it once after the last stage),
 * and must then set body_edited: the host forwards the client's own bytes
 * when no stage replaced a unit or set it, so an unflagged edit is lost on
 * some requests and sent on others. Units point into it; after editing body
 * structure directly a transform must not use units again in the same call. */
struct hr_request {
    uint32_t struct_size;
    enum hr_provider provider;
    const char *model;          /* "" when absent */
    const char *stack;          /* X-Headroom-Stack or "" */
    const char *session_id;     /* stable per conversation, host-derived */
    json_t *body;
    size_t protected_floor;     /* messages[0 .. floor) are in the client's cached prefix: their tool
                                 * outputs are still units; change other content there only in a way
                                 * that is the same on every turn (doc/prompt-caching.md) */
    struct hr_unit *units;
    size_t n_units;
    const char *query;          /* text of the latest user message that has text (without
                                 * <system-reminder> blocks), or "" */
    int body_edited;            /* set to 1 after editing body outside units (e.g. tool order);
                                 * without it the edit may not be forwarded (above) */
    enum hr_wire_format wire_format; /* 1.2 */
    /* 1.4: unit_query[i] is the text of the latest user message before
     * units[i]'s message ("" when none): the question the tool was called
     * for. A unit compressed under its own query comes out the same on every
     * later turn of the conversation, which keeps a provider's prompt cache
     * (doc/prompt-caching.md); prefer it to `query` for relevance. */
    const char *const *unit_query;
    /* 1.9: the sample the router types a text by (its sample_bytes and
     * sample_lines), written by the router for the stages after it; 0 when
     * no router ran (its defaults, 8192 and 64, then apply). A stage that
     * types a text itself, such as one wrapped in a JSON string (MCP content,
     * {"output":…}), types it with these, as the router would the same text
     * sent bare. */
    size_t sample_bytes, sample_lines;
};

/* ------------------------------------------------------------------- events */

/* Per-stage result of one request, in pipeline order. */
struct hr_stage_result {
    uint32_t struct_size;
    const char *name;       /* stage (transform instance) name */
    double ms;              /* wall time spent in apply() */
    int64_t tokens_saved;   /* tokens removed by this stage (>= 0) */
    const char *tag;        /* e.g. "smart_crusher:top_n:kept=15/1000", or "" */
    int failed;             /* stage errored or overran its budget: its change was dropped */
};

/* A completed request, handed to every sink. */
struct hr_event {
    uint32_t struct_size;
    const char *request_id;
    double timestamp;           /* completion, Unix seconds (UTC) */
    enum hr_provider provider;
    const char *provider_name;  /* "openai", "anthropic" */
    const char *model;
    const char *stack;          /* "" when the client did not tag itself */
    const char *path;           /* e.g. "/v1/chat/completions" */
    int status;                 /* HTTP status sent to the client */
    int failed;                 /* no answer from upstream (connect, timeout, reset, internal) */
    int cached;                 /* answered from the response cache */
    int streamed;               /* SSE */
    uint64_t tokens_input;      /* counted before compression */
    uint64_t tokens_sent;       /* counted after compression */
    uint64_t tokens_saved;      /* input - sent */
    uint64_t tokens_output;     /* provider-reported */
    uint64_t provider_input_tokens;  /* provider-reported uncached input */
    uint64_t cache_read_tokens;
    uint64_t cache_write_tokens;
    uint64_t cache_write_5m_tokens;
    uint64_t cache_write_1h_tokens;
    double cost_usd;
    double savings_usd;
    int priced;                 /* 0 when the model has no known price */
    double latency_ms;          /* request fully read to last byte sent */
    double overhead_ms;         /* latency headroomd added (doc/stats.md) */
    double ttfb_ms;             /* forward to first upstream byte; <0 when none */
    size_t n_stages;
    const struct hr_stage_result *stages;
    const char *error;          /* NULL or a short reason */
    double pipeline_ms;         /* whole compression pipeline, <0 when it did not run */
    /* The client's request body, only when the operator asked for message
     * logging (log_messages yes / --log-messages); else NULL. */
    const char *request_body;
    size_t request_body_len;
    /* 1.2: the API the request spoke (HR_WIRE_UNKNOWN, "" on routes
     * headroomd only passes through), and the reasoning part of
     * tokens_output when the provider reports it. */
    enum hr_wire_format wire_format;
    const char *wire_format_name;   /* "openai_chat", "anthropic_messages", "openai_responses", "" */
    uint64_t reasoning_tokens;
    /* 1.2: the provider answered the compressed request with a 2xx, so the
     * saving is real: tokens_saved = tokens_input - tokens_sent. Otherwise
     * (failed, refused, non-2xx, response cache) tokens_saved and
     * savings_usd are 0 and totals leave the request's tokens out. */
    int credited;
    /* 1.2: the client's W3C `traceparent` request header as sent, or NULL. */
    const char *traceparent;
    /* 1.10: a streamed answer (status 2xx) the provider ended with an error
     * event (SSE `event: error`, Responses `response.failed`, a Chat
     * Completions `{"error": ...}` chunk): its error type or code (e.g.
     * "overloaded_error"), else the event's name; NULL otherwise. Check
     * HR_HAS_FIELD(event, struct hr_event, stream_error) first. */
    const char *stream_error;
};

/* -------------------------------------------------------------------- http */

/* A request to a route a plugin registered. */
struct hr_http_request {
    uint32_t struct_size;
    const char *method;
    const char *path;           /* without the query string */
    const char *query;          /* raw query string or "" */
    const char *body;
    size_t body_len;
    int from_loopback;
};

/* The plugin fills this. `body` is released with `free_body` (e.g. free). */
struct hr_http_response {
    uint32_t struct_size;
    int status;
    const char *content_type;   /* static or owned by the plugin state */
    char *body;
    size_t body_len;
    void (*free_body)(void *);
    /* Extra response headers as name, value, name, value, …, NULL; static or
     * owned by the plugin state (e.g. Content-Disposition). May stay NULL. */
    const char *const *extra_headers;
};

typedef int (*hr_route_fn)(void *state, const struct hr_http_request *req,
                           struct hr_http_response *resp);

/* ----------------------------------------------------------------- metrics */

enum hr_metric_type { HR_METRIC_COUNTER = 1, HR_METRIC_GAUGE, HR_METRIC_HISTOGRAM };

struct hr_metric_family {
    uint32_t struct_size;
    const char *name;           /* e.g. "headroom_requests_total" */
    const char *help;
    enum hr_metric_type type;
    size_t n_labels;
    const char *const *label_names;
};

struct hr_metric_sample {
    uint32_t struct_size;
    const char *const *label_values; /* n_labels values, unescaped */
    double value;                    /* counters and gauges */
    /* histograms: cumulative counts per upper bound; the last bound is +Inf */
    size_t n_buckets;
    const double *bucket_upper;
    const uint64_t *bucket_cumulative;
    uint64_t count;
    double sum;
};

/* Called once per sample; samples of one family arrive together, families
 * in a stable order. Borrowed pointers: copy what you keep. */
typedef void (*hr_metric_visit_fn)(void *ud, const struct hr_metric_family *family,
                                   const struct hr_metric_sample *sample);

/* ------------------------------------------------------------ host table */

#define HR_CCR_HASH_LEN 24 /* hex characters */

/* Return codes used across the ABI. */
#define HR_OK 0
#define HR_ENOTSMALLER (-1001) /* unit_replace: the new text is not smaller */
#define HR_EINVAL      (-22)
#define HR_ENOMEM      (-12)
#define HR_EAGAIN      (-11)   /* 1.2: export_post: the exporter's queue is full (counted as dropped) */

/* ---------------------------------------------------------------- export */

/* 1.2: an asynchronous HTTP POST exporter (OTLP/HTTP and the like). The host
 * runs one thread per exporter with a bounded queue of request bodies; a
 * plugin only enqueues (export_post copies the body and never blocks on the
 * network). Each body is POSTed with a per-attempt timeout; 429, 5xx,
 * connect errors and timeouts are retried with exponential backoff and full
 * jitter (Retry-After honoured, capped at 60 s) up to max_attempts, then
 * counted as failed. A full queue drops the new body (counted), so a
 * collector that is down costs bounded memory. Exporters live until the
 * host shuts down (after every plugin's fini), when queued bodies get one
 * last short attempt. /metrics shows headroom_export_* per exporter name. */
struct hr_exporter;

struct hr_export_conf {
    uint32_t struct_size;
    const char *name;               /* [a-z0-9_]+, the `exporter` label in /metrics */
    const char *url;                /* http:// or https:// */
    const char *const *headers;     /* "Name: value" strings, NULL-terminated, or NULL; copied */
    const char *content_type;       /* e.g. "application/x-protobuf" */
    int gzip;                       /* compress bodies (Content-Encoding: gzip) */
    unsigned timeout_ms;            /* per attempt; 0 = 10000 */
    unsigned queue_max;             /* bodies waiting; 0 = 16 */
    unsigned max_attempts;          /* 0 = 6 */
    unsigned backoff_ms;            /* first retry delay; doubles up to 30 s; 0 = 1000 */
};

struct hr_export_stats {
    uint32_t struct_size;
    uint64_t ok;                    /* bodies delivered (2xx) */
    uint64_t failed;                /* bodies given up on (non-retryable status or attempts exhausted) */
    uint64_t dropped;               /* bodies refused because the queue was full */
    uint64_t retries;               /* attempts after the first */
    uint64_t items_ok, items_failed; /* the `items` of those bodies (e.g. spans) */
    uint64_t queued;                /* waiting now, incl. one in flight */
    double last_ok_at;              /* Unix seconds of the last delivery; 0 = never */
    double last_attempt_at;
    int last_status;                /* HTTP status of the last attempt; 0 = no answer */
    char last_error[128];           /* "" or why the last attempt failed */
};

struct hr_host {
    uint32_t struct_size;
    uint16_t abi_major, abi_minor;

    /* Log one line as LEVEL:headroom.<kind>s.<name>:message. */
    void (*log)(const struct hr_instance *self, enum hr_log_level level,
                const char *fmt, ...) HR_PRINTF_LIKE(3, 4);
    /* True when `level` would be written (skip building DEBUG text otherwise). */
    int (*log_enabled)(enum hr_log_level level);

    /* Config values of this instance's block, or the declared default.
     * Types were validated at load time, so these cannot fail. A key the
     * plugin's conf_keys does not declare reads NULL or 0, and one read as
     * another type (conf_int of a string key) is converted; the host logs
     * either as an ERROR naming the call. */
    const char *(*conf_string)(const struct hr_conf *conf, const char *key);
    long long (*conf_int)(const struct hr_conf *conf, const char *key);
    int (*conf_bool)(const struct hr_conf *conf, const char *key);
    double (*conf_double)(const struct hr_conf *conf, const char *key);

    /* Token count of `text` for `model` (exact BPE for OpenAI encodings,
     * a documented estimate otherwise). Thread-safe. */
    size_t (*count_tokens)(const char *model, const char *text, size_t len);

    /* Replace a unit's text. The host refuses (HR_ENOTSMALLER) a text that
     * counts as many tokens or more, keeps the JSON in sync and credits the
     * saving to the calling stage. */
    int (*unit_replace)(struct hr_request *req, size_t unit_index,
                        const char *text, size_t len);
    /* Attach a short tag to the current stage, e.g. "smart_crusher:top_n:kept=15/1000". */
    void (*stage_tag)(struct hr_request *req, const char *tag);

    /* Compress-cache-retrieve store: keep `data` under a content hash so the
     * model (or a user) can fetch it later. Writes HR_CCR_HASH_LEN hex chars
     * plus NUL to `hash_out`. */
    int (*ccr_put)(const char *data, size_t len, char hash_out[HR_CCR_HASH_LEN + 1]);
    /* Fetch a stored original; NULL when unknown or expired. Free with ccr_free. */
    char *(*ccr_get)(const char *hash, size_t *len_out);
    void (*ccr_free)(char *data);

    /* Serve `method path` (exact path, or a prefix when it ends in '/').
     * The handler runs on worker threads concurrently: it must be thread-safe.
     * HR_EINVAL, logged naming both blocks, when another block serves the
     * same method and path already. */
    int (*register_route)(struct hr_instance *self, const char *method, const char *path,
                          hr_route_fn fn, void *state);
    /* Contribute a block `key` to GET /stats: fn returns a new reference. */
    int (*register_stats)(struct hr_instance *self, const char *key,
                          json_t *(*fn)(void *state), void *state);
    /* Run fn every interval_ms on the housekeeping thread. */
    int (*add_timer)(struct hr_instance *self, unsigned interval_ms,
                     void (*fn)(void *state), void *state);

    /* Walk a consistent snapshot of every metric (what /metrics renders). */
    int (*metrics_visit)(hr_metric_visit_fn fn, void *ud);
    /* Add families to every metrics walk: fn calls visit(ud, family, sample)
     * for each sample it owns (e.g. durable totals). Thread-safe fn only. */
    int (*register_metrics)(struct hr_instance *self,
                            int (*fn)(void *state, hr_metric_visit_fn visit, void *ud), void *state);
    /* As register_stats, and fn learns whether the caller is on loopback
     * (to show local paths only to local callers). */
    int (*register_stats_for)(struct hr_instance *self, const char *key,
                              json_t *(*fn)(void *state, int from_loopback), void *state);
    /* Credit the current stage with tokens it removed by editing req->body
     * outside units (e.g. dropping whole messages); count them with
     * count_tokens as the host does. Also set req->body_edited. */
    void (*stage_tokens_removed)(struct hr_request *req, uint64_t tokens);

    /* ---- ABI 1.1: check HR_HAS_FIELD(host, struct hr_host, parallel_for) */

    /* 128-bit content hash of unit `unit_index`'s current text, computed once
     * per text and shared with the host's token-count cache: a key for a
     * plugin's own memo of per-output results. Stable within one process. */
    void (*unit_hash)(struct hr_request *req, size_t unit_index, uint64_t out[2]);
    /* Call fn(ctx, i) for every i in [0, n), on this thread and on idle
     * helper threads (`compress_threads`), and return when all have returned;
     * a plain loop when the request is small or no core is free.
     * fn runs concurrently: it may use only its own data, count_tokens,
     * ccr_put/ccr_get/ccr_free and log (and, 1.3, unit_tokens_at_least /
     * unit_tokens for the unit it works on), never the rest of the request
     * (unit_replace, stage_tag, ...). Results must not depend on which
     * thread ran what. */
    void (*parallel_for)(size_t n, void (*fn)(void *ctx, size_t i), void *ctx);

    /* ---- ABI 1.2: check HR_HAS_FIELD(host, struct hr_host, state_dir) */

    /* Wall clock, Unix seconds. Use it instead of time(): tests move it
     * ($HEADROOM_TEST_NOW) to check hourly/daily rollups and budgets. */
    double (*now)(void);
    /* The directory headroomd keeps state in ($HEADROOM_WORKSPACE_DIR, else
     * ~/.headroom), without a trailing slash; it may not exist yet. */
    const char *(*state_dir)(void);
    /* 1.2: asynchronous HTTP export (see struct hr_export_conf). NULL when
     * the conf is invalid (logged). Call from init. */
    struct hr_exporter *(*exporter_new)(struct hr_instance *self, const struct hr_export_conf *conf);
    /* Queue a copy of `body` (`items` is what it carries, e.g. spans, for the
     * stats). HR_OK, HR_EAGAIN when the queue is full, HR_ENOMEM. Thread-safe. */
    int (*export_post)(struct hr_exporter *ex, const void *body, size_t len, uint64_t items);
    /* Counters of one exporter. Thread-safe. */
    void (*export_stats)(struct hr_exporter *ex, struct hr_export_stats *out);
    /* 1.2, sinks, from init: this instance wants no events (e.g. an exporter
     * left unconfigured). It then gets no queue and no thread, and requests
     * pay nothing for it. */
    void (*events_off)(struct hr_instance *self);

    /* ---- ABI 1.3: check HR_HAS_FIELD(host, struct hr_host, unit_tokens) */

    /* Whether unit `unit_index`'s current text counts `n` tokens or more.
     * The host counts only as far as the answer needs (a prefix of a long
     * output usually settles it) and goes on from there on the next call; the
     * rest is counted after the body is forwarded. May be called from a
     * parallel_for fn for the unit that call works on (each unit's count is
     * its own), as well as from apply. */
    int (*unit_tokens_at_least)(struct hr_request *req, size_t unit_index, size_t n);
    /* The exact count of unit `unit_index`'s current text (counting the rest
     * of it now if needed); sets hr_unit.tokens. Same threading as above. */
    size_t (*unit_tokens)(struct hr_request *req, size_t unit_index);

    /* ---- ABI 1.6: check HR_HAS_FIELD(host, struct hr_host, ccr_put_unit) */

    /* ccr_put of unit `unit_index`'s current text (same address, same store),
     * keyed by the content hash the host already has for that text: a
     * resent tool output is then not hashed again on every turn. Same
     * threading as unit_tokens. From 1.6 the host also keeps
     * HR_UNIT_HAS_MARKER current when unit_replace changes a text, so a
     * stage need not search texts for markers itself. */
    int (*ccr_put_unit)(struct hr_request *req, size_t unit_index, char hash_out[HR_CCR_HASH_LEN + 1]);
};

/* ccr_put of unit i's current text, on a host of any 1.x minor (1.6 reuses
 * the host's hash of it). */
static inline int hr_ccr_put_unit(const struct hr_host *host, struct hr_request *req, size_t i,
                                  char hash_out[HR_CCR_HASH_LEN + 1])
{
    if (HR_HAS_FIELD(host, struct hr_host, ccr_put_unit) && host->ccr_put_unit)
        return host->ccr_put_unit(req, i, hash_out);
    return host->ccr_put(req->units[i].text, req->units[i].len, hash_out);
}

/* True when the host keeps HR_UNIT_HAS_MARKER current across unit_replace
 * (1.6): a stage then need not search texts for markers itself. */
static inline int hr_host_tracks_markers(const struct hr_host *host)
{
    return HR_HAS_FIELD(host, struct hr_host, ccr_put_unit) && host->ccr_put_unit;
}

/* Whether unit i counts n tokens or more, on a host of any 1.x minor. */
static inline int hr_unit_tokens_at_least(const struct hr_host *host, struct hr_request *req, size_t i, size_t n)
{
    if (HR_HAS_FIELD(host, struct hr_host, unit_tokens)) return host->unit_tokens_at_least(req, i, n);
    return req->units[i].tokens >= n;
}

/* The smallest token count of an original for which a result counting
 * `after` tokens saves at least `min_savings` of it, exactly as the test
 * (double)after <= (1.0 - min_savings) * (double)tokens decides: ask
 * hr_unit_tokens_at_least(..., hr_tokens_for_savings(after, s)). */
static inline size_t hr_tokens_for_savings(size_t after, double min_savings)
{
    double keep = 1.0 - min_savings;
    if (!(keep > 0)) return HR_TOKENS_UNKNOWN;
    double guess = (double)after / keep;
    if (!(guess < 1e18)) return HR_TOKENS_UNKNOWN;
    size_t t = (size_t)guess;
    while (t > 0 && (double)after <= keep * (double)(t - 1)) t--;
    while (!((double)after <= keep * (double)t)) t++;
    return t;
}

/* ------------------------------------------------------------ descriptor */

struct headroom_plugin {
    uint32_t struct_size;       /* sizeof(struct headroom_plugin) as built */
    uint16_t abi_major;         /* HR_ABI_MAJOR as built */
    uint16_t abi_minor;         /* HR_ABI_MINOR as built */
    const char *name;           /* [a-z][a-z0-9_]*; matches the .so name */
    enum hr_plugin_kind kind;
    const char *version;
    const char *description;    /* one line */
    const struct hr_conf_key *conf_keys; /* NULL-name terminated, or NULL */

    /* Create an instance. Return 0 and set *state, or a negative code after
     * logging why. */
    int (*init)(const struct hr_host *host, struct hr_instance *self,
                const struct hr_conf *conf, void **state);
    /* Release the instance. Sinks have received every queued event by then. */
    void (*fini)(void *state);

    /* Transforms: rewrite candidate units. Return 0, or a negative code to
     * have the host drop every change this stage made (fail open). */
    int (*apply)(void *state, struct hr_request *req);
    /* Transforms: content types acted on (HR_CT_BIT mask); 0 means all.
     * Informational: the host calls apply whatever the units' types, so
     * apply skips the types it does not handle itself. */
    uint32_t content_types;

    /* Sinks: one completed request; runs on the sink's own thread (or, with
     * HR_SINK_ON_REQUEST_THREAD, on the request's). Since 1.2 it may be NULL
     * for a sink that only reads the registries (routes, metrics_visit): it
     * then gets no queue and no thread. */
    void (*on_event)(void *state, const struct hr_event *event);
    /* Optional: reopen files after log rotation (SIGHUP). Runs on the main
     * thread, concurrently with on_event: take your own lock. */
    void (*reopen)(void *state);
    /* 1.2, optional: POST /stats/reset. Zero the live counters this
     * instance shows in /stats and /metrics (durable totals stay). Runs on a
     * worker thread, concurrently with apply/on_event: atomics or your lock. */
    void (*reset)(void *state);

    /* 1.3, transforms: HR_TF_* */
    uint32_t transform_flags;

    /* 1.7, sinks: HR_SINK_* */
    uint32_t sink_flags;
};

/* 1.3: the stage reads token counts of units only through
 * hr_unit_tokens_at_least / unit_tokens, never hr_unit.tokens directly. The
 * host may then leave a long output uncounted until a stage asks, and count
 * the rest after the body is forwarded: a never-seen megabyte reaches the
 * provider sooner. Stages without it get every unit counted before apply. */
#define HR_TF_COUNTS_ON_DEMAND 0x1u

/* 1.5: the stage changes the request only through unit_replace: it never
 * edits messages, tools or the system prompt in place and never sets
 * body_edited. The host then copies nothing before running it (a failed
 * stage is undone from the units' journal alone), which saves a copy of the
 * tool definitions and system prompt per stage on every request. */
#define HR_TF_UNITS_ONLY 0x2u

/* 1.6: the stage edits nothing in place: every value it changes (the tools
 * array, a tool, a schema, the system prompt, a message) it replaces with a
 * modified copy, set into its parent, so the values the client sent are
 * never altered. The host then keeps those by reference to undo a failure,
 * where it otherwise deep-copies the tool definitions and system prompt
 * before the stage (~0.3 M instructions for a coding agent's). */
#define HR_TF_COPY_ON_WRITE 0x4u

/* 1.8: the stage does nothing on a request without units (tool outputs at
 * or above the pipeline's min_tokens): the host then does not call apply
 * for such a request, and reports the stage at 0 ms. A stage that keeps
 * per-request counters, or reads the rest of the body, must not set it. */
#define HR_TF_NEEDS_UNITS 0x8u

/* 1.7: on_event is quick, never waits on disk or network, and may run on
 * several threads at once (it takes its own locks, and holds them briefly).
 * The host then calls it on the request's own thread as the request ends,
 * with the event borrowed for the call, instead of copying the event into
 * a queue for a thread of the sink's own: no copy, no hand-off, no wake-up,
 * and the event's memory is still in that core's cache. Nothing is dropped
 * for a full queue, as there is none; a slow on_event slows requests. */
#define HR_SINK_ON_REQUEST_THREAD 0x1u

/* Fills the version fields; use as the first line of your descriptor. */
#define HR_PLUGIN_HEADER                                   \
    .struct_size = sizeof(struct headroom_plugin),         \
    .abi_major = HR_ABI_MAJOR, .abi_minor = HR_ABI_MINOR

#ifdef __cplusplus
}
#endif
#endif /* HEADROOM_PLUGIN_H */
