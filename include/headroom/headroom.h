/* headroom.h — libheadroom's public API (the SDK): compress a request exactly
 * as headroomd does, read session stats, the metrics database, the durable
 * savings history, and check a setup. Link with `pkg-config --libs headroom`.
 *
 * Versioning: HEADROOM_API_MAJOR changes only when a function or struct below
 * changes incompatibly (the soname, libheadroom.so.1, changes with it);
 * HEADROOM_API_MINOR grows when functions or trailing struct fields are added.
 * Only the symbols declared here are exported.
 *
 * Conventions:
 *   - Functions returning `char *` give malloc'd, NUL-terminated text (JSON
 *     unless said otherwise); release it with hr_free(). NULL means failure:
 *     hr_last_error() says why and what to do.
 *   - Functions returning `int` give HEADROOM_OK (0) or a negative HEADROOM_E*.
 *   - Times are Unix seconds (UTC) as doubles; 0 means "no bound".
 *   - A client is not thread-safe: use one per thread, or lock around calls.
 *     Only one offline client may be open per process (it shares the
 *     process-wide plugin host); attached clients are not limited.
 */
#ifndef HEADROOM_HEADROOM_H
#define HEADROOM_HEADROOM_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HEADROOM_API_MAJOR 1
#define HEADROOM_API_MINOR 2

/* Status codes (negative). */
#define HEADROOM_OK 0
#define HEADROOM_EINVAL (-1)    /* a bad argument: NULL client, malformed body, bad URL (or one where
                                 * another server than headroomd answers) */
#define HEADROOM_ECONFIG (-2)   /* the config file does not parse or a plugin does not load */
#define HEADROOM_EIO (-3)       /* a file could not be read or written */
#define HEADROOM_ENET (-4)      /* the daemon could not be reached, or answered with an error */
#define HEADROOM_ENOTFOUND (-5) /* the metrics database or savings history does not exist */
#define HEADROOM_ENOMEM (-6)
#define HEADROOM_EBUSY (-7)     /* an offline client is already open in this process */

typedef struct hr_client hr_client;

/* hr_version
 *   The library's release, e.g. "0.1.0". Never NULL. */
const char *hr_version(void);

/* hr_api_version
 *   (HEADROOM_API_MAJOR << 16) | HEADROOM_API_MINOR of the library loaded at
 *   run time; compare with the header you built against. */
unsigned hr_api_version(void);

/* hr_last_error
 *   The message of the last failure on the calling thread: what went wrong
 *   and how to fix it (naming the file, line, option or URL). "" when the
 *   last call succeeded. Valid until the next libheadroom call on the thread. */
const char *hr_last_error(void);

/* hr_last_status
 *   The HEADROOM_E* code of the last failure on the calling thread (for the
 *   functions that return a pointer), HEADROOM_OK after a success. */
int hr_last_status(void);

/* hr_last_http_status (since API 1.2)
 *   The HTTP status headroomd answered the last call on the calling thread
 *   that went to a running daemon with (200 after a success; 401 when it
 *   wants a token, 403 when it refuses the client, ...), 0 when no answer
 *   came (not running, wrong --url, timeout) or the call did not reach a
 *   daemon, or another server answered at the URL (an HTML page, another
 *   service's JSON: HEADROOM_EINVAL, "... is not headroomd"). Tells "the
 *   daemon refused" from "the daemon is not there" without reading
 *   hr_last_error()'s text. */
int hr_last_http_status(void);

/* hr_free
 *   Release text returned by this library. NULL is fine. */
void hr_free(void *p);

/* hr_client_open
 *   An offline client: reads `config_path` (headroom.conf(5) syntax; NULL =
 *   built-in defaults, no plugins) and the HEADROOM_* variables exactly as
 *   headroomd does, loads the price table, the token tables and every
 *   configured transform in-process. No daemon is needed and no port is
 *   opened; sinks are not started (nothing is written to the state root).
 *   Of the HEADROOM_* variables it reads HEADROOM_PLUGIN_DIR and
 *   HEADROOM_LOG_LEVEL; a bad value of another (HEADROOM_PORT=abc: only a
 *   headroomd reads it) is said in one WARNING line on stderr, not a failure.
 *   RETURNS the client, or NULL (HEADROOM_ECONFIG-class failure, see
 *   hr_last_error(): "file:line:col: ..." for a config error, "environment
 *   variable NAME: ..." for a variable it reads). */
hr_client *hr_client_open(const char *config_path);

/* hr_client_attach
 *   A client of the headroomd listening at `url` (e.g. "http://127.0.0.1:8787").
 *   Compression and session stats come from that daemon over HTTP;
 *   `config_path` (may be NULL) locates the metrics database and the
 *   savings file for hr_get_metrics/hr_get_summary, and is taken for the
 *   daemon's: unless hr_client_set_token gives one, its stats_token goes
 *   with hr_session_stats and hr_get_history, its api_token with hr_compress
 *   (read as headroomd reads them: HEADROOM_STATS_TOKEN / HEADROOM_API_TOKEN
 *   win over the file). The daemon is not contacted until a call needs it.
 *   A bad value of another HEADROOM_* variable is a WARNING line, not a
 *   failure (it reads none of the others).
 *   NULL when `url` is not an http(s) URL, or the config has an error. */
hr_client *hr_client_attach(const char *url, const char *config_path);

/* hr_client_set_token
 *   Bearer token sent to an attached daemon with every call: its api_token
 *   for hr_compress, its stats_token for hr_session_stats and
 *   hr_get_history (a daemon that set neither needs none); it replaces the
 *   attach config's. NULL clears it (the config's go again). */
int hr_client_set_token(hr_client *c, const char *token);

/* hr_client_close
 *   Unload the client's plugins (offline) and free it. NULL is fine. */
void hr_client_close(hr_client *c);

/* The result of hr_compress. Free with hr_compress_result_free. */
struct hr_compress_result {
    uint32_t struct_size;       /* set by the library */
    char *body;                 /* the request as headroomd would forward it (NUL-terminated) */
    size_t body_len;
    uint64_t tokens_before;     /* tokens of the request as sent by the client */
    uint64_t tokens_after;      /* tokens of `body` */
    uint64_t tokens_saved;      /* tokens_before - tokens_after (never negative) */
    char **tags;                /* the stages' short tags (e.g. "smart_crusher:top_n 15/400") */
    size_t n_tags;
    char *wire_format;          /* "openai_chat", "anthropic_messages" or "openai_responses" */
};

/* hr_compress
 *   Run the compression pipeline on one request body (an OpenAI Chat,
 *   Responses or Anthropic Messages request as JSON, `len` bytes). Offline
 *   clients run their own transforms; attached clients ask the daemon
 *   (POST /v1/compress). Either way `out->body` holds the same bytes
 *   headroomd forwards for the same request and config (unchanged requests
 *   come back byte for byte). Offline calls count towards hr_session_stats.
 *   RETURNS HEADROOM_OK, HEADROOM_EINVAL (not a JSON object, no messages),
 *   HEADROOM_ENET (attached daemon unreachable). */
int hr_compress(hr_client *c, const char *body, size_t len, struct hr_compress_result *out);

/* hr_compress_result_free
 *   Release what hr_compress put in `r` and zero it. */
void hr_compress_result_free(struct hr_compress_result *r);

/* hr_session_stats
 *   The seed's session stats as JSON:
 *   {"session": {requests_total, tokens_input_before, tokens_input_after,
 *   tokens_saved_total, tokens_output_total, cache_hits, compression_ratio_avg},
 *   "config": {mode, provider, cache_optimizer_enabled, semantic_cache_enabled},
 *   "transforms": {smart_crusher_enabled, cache_aligner_enabled,
 *   rolling_window_enabled}}. Attached: the daemon's live counters (GET /stats),
 *   plus "source": "daemon" and the URL. Offline: this client's hr_compress
 *   calls since it was opened ("source": "offline"). No database is read. */
char *hr_session_stats(hr_client *c);

/* hr_get_metrics
 *   Stored per-request metrics from the metrics database (metrics_db sink:
 *   `sink metrics_db { path … }` of the client's config, else
 *   $HEADROOM_WORKSPACE_DIR/metrics.db, else ~/.headroom/metrics.db), opened
 *   read-only. Rows with start <= timestamp < end (0 = unbounded), of `model`
 *   when not NULL, newest first, at most `limit` (0 = 100).
 *   RETURNS a JSON array of objects: request_id, timestamp (Unix s),
 *   time (ISO-8601 UTC), model, provider, wire_format, stack, status, cached,
 *   failed, streamed, tokens_input_before, tokens_input_after, tokens_saved,
 *   tokens_output, cache_read_tokens, cache_write_tokens, compression_ratio,
 *   cost_usd, savings_usd, priced, transforms (array), latency_ms,
 *   overhead_ms, ttfb_ms. NULL with HEADROOM_ENOTFOUND when there is no
 *   database (hr_last_error says how to enable the sink). */
char *hr_get_metrics(hr_client *c, double start, double end, size_t limit, const char *model);

/* hr_get_summary
 *   Aggregates over the stored metrics with start <= timestamp < end:
 *   {"total_requests", "total_tokens_saved", "avg_compression_ratio",
 *   "total_cost_saved_usd", "total_cost_usd", "total_tokens_before",
 *   "total_tokens_after", "total_tokens_output", "savings_percent",
 *   "first_timestamp", "last_timestamp", "database"}.
 *   total_requests counts every row; the token and savings totals count the
 *   credited requests (compressed body forwarded and answered) as /stats does;
 *   avg_compression_ratio = total_tokens_after / total_tokens_before over
 *   credited rows (1.0 = nothing saved; 1.0 when there are none). */
char *hr_get_summary(hr_client *c, double start, double end);

/* hr_get_history
 *   The durable savings history (savings_file sink) in the GET /stats-history
 *   shape. `query` is that endpoint's query string without '?', e.g.
 *   "series=daily&format=csv" or "history_mode=none" (NULL = defaults).
 *   Attached: asks the daemon. Offline: reads the savings file in-process with
 *   the same code (the config's `sink savings_file` settings, or its defaults).
 *   RETURNS the body (JSON, or CSV for format=csv); HEADROOM_EINVAL for a bad
 *   parameter (the message names it and the allowed values). */
char *hr_get_history(hr_client *c, const char *query);

/* hr_validate_setup
 *   Check a setup without starting a daemon: the config parses (errors carry
 *   file:line:col), every plugin loads with a compatible ABI and valid keys,
 *   the state root is a writable directory, the price table and token tables
 *   load, the upstream URLs are well-formed http(s) URLs, and the listening
 *   address is free (or held by a headroomd that answers /livez).
 *   `config_path` NULL = defaults. Never fails for a broken setup: that is
 *   what the answer describes.
 *   RETURNS JSON {"valid": bool, "issues": ["…"], "checks": [{"check", "ok",
 *   "message", "fix"}]}; each issue says what is wrong and how to fix it. */
char *hr_validate_setup(const char *config_path);

/* hr_token_count
 *   Tokens in text[0..len) as headroomd counts them: `encoding`
 *   ("o200k_base", "cl100k_base", "estimate") when not NULL, else the
 *   encoding of `model` (NULL or unknown model = the estimate).
 *   RETURNS HEADROOM_OK and *count, HEADROOM_EINVAL (unknown encoding) or
 *   HEADROOM_EIO (token tables missing: set HEADROOM_DATA_DIR). */
int hr_token_count(const char *model, const char *encoding, const char *text, size_t len, size_t *count);

/* hr_daemon_setup (since API 1.1)
 *   Where a headroomd started with `config_path` (NULL = defaults) and the
 *   HEADROOM_* variables would listen and keep its state, read exactly as
 *   headroomd reads them (the command line's --port is not seen).
 *   RETURNS JSON {"host", "port", "url", "state_root", "shutdown_timeout"}:
 *   `url` reaches that daemon from this host (a wildcard address becomes
 *   loopback), the state root may not exist yet, `shutdown_timeout` is the
 *   seconds it gives requests in flight after SIGTERM (added later in API
 *   1.1: treat it as optional), and "env_error" (later in 1.2, optional)
 *   when a HEADROOM_* variable other than HEADROOM_HOST and HEADROOM_PORT
 *   has a value headroomd refuses ("environment variable NAME: why"): the
 *   address holds, but a headroomd started so would not start. NULL with
 *   HEADROOM_ECONFIG for a config error ("file:line:col: ...") or a bad
 *   HEADROOM_HOST/HEADROOM_PORT. */
char *hr_daemon_setup(const char *config_path);

#ifdef __cplusplus
}
#endif
#endif
