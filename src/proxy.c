/* proxy.c — the /v1/... routes: parse, compress, forward with libcurl, relay
 * the answer (whole or as an SSE stream), read usage, count, emit the event. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include "cost.h"
#include "daemon.h"
#include "json_load.h"
#include "log.h"
#include "ratelimit.h"
#include "respcache.h"
#include "retrieve_tool.h"
#include "session_floor.h"
#include "sinks.h"
#include "sse.h"
#include "stats.h"
#include "usage.h"

#define LOGGER "headroom.proxy"
#define STREAM_HIGH_WATER (256 * 1024)   /* client output buffered before we pause upstream */
#define MAX_STACK_LEN 64
#define PER_MESSAGE_OVERHEAD 3              /* as hr_request_tokens counts a message */

struct proxy_req {
    struct hr_worker *w;
    struct evhttp_request *req;          /* NULL once the client is gone */
    struct evhttp_connection *conn;
    struct hr_transfer *t;
    enum hr_provider provider;
    int llm;                             /* chat completions / messages */
    char *model;
    char stack[MAX_STACK_LEN + 1];
    char request_id[40];
    char *path;
    double t_start, t_forward, t_first_byte;
    struct hr_pipeline_result pr;
    int pipeline_ran;
    long status;
    int streaming;                       /* relaying chunk by chunk */
    int reply_started;
    int transfer_done;
    struct evbuffer *body;               /* buffered (non-streamed) answer */
    int too_large;
    struct hr_sse_parser *sse;
    struct hr_usage usage;
    /* headroom_retrieve: the body as sent, kept to answer the model's calls */
    json_t *sent_body;
    int retrieve_rounds;
    struct hr_usage earlier_usage;       /* usage of rounds before the last */
    char *url;
    struct curl_slist *up_headers;
    /* response cache (respcache.c): key of a cacheable request, and a hit */
    int cacheable, cached;
    uint8_t cache_key[HR_RESPCACHE_KEY_LEN];
    struct event *peer_closed;           /* EV_CLOSED watch on the client socket */
    char *logged_body;                   /* the client's body, only with log_messages */
    size_t logged_body_len;
};

#define MAX_RETRIEVE_ROUNDS 3

static const char *const hop_by_hop[] = {"connection", "keep-alive", "proxy-connection", "proxy-authorization",
                                         "proxy-authenticate", "te", "trailer", "trailers", "transfer-encoding",
                                         "upgrade", "content-length", "host", "expect", "accept-encoding", NULL};

static int is_hop_by_hop(const char *name)
{
    for (size_t i = 0; hop_by_hop[i]; i++)
        if (!strcasecmp(name, hop_by_hop[i])) return 1;
    return 0;
}

void hr_send_json(struct evhttp_request *req, int status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    struct evbuffer *buf = evbuffer_new();
    if (text) evbuffer_add(buf, text, strlen(text));
    evbuffer_add(buf, "\n", 1);
    free(text);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evhttp_send_reply(req, status, NULL, buf);
    evbuffer_free(buf);
}

void hr_send_provider_error(struct evhttp_request *req, enum hr_provider p, int status, const char *type,
                            const char *message)
{
    json_t *body = p == HR_PROVIDER_ANTHROPIC
                       ? json_pack("{s:s,s:{s:s,s:s}}", "type", "error", "error", "type", type, "message", message)
                       : json_pack("{s:{s:s,s:s,s:n,s:n}}", "error", "message", message, "type", type, "param",
                                   "code");
    hr_send_json(req, status, body);
}

/* An error answer for a request we track: it carries the request id so the
 * client can find the matching request-log line. */
static void send_error_for(struct proxy_req *p, enum hr_provider provider, int status, const char *type,
                           const char *message)
{
    evhttp_add_header(evhttp_request_get_output_headers(p->req), "x-headroom-request-id", p->request_id);
    hr_send_provider_error(p->req, provider, status, type, message);
}

/* A request refused before proxying (overload, budget, rate limit) still
 * reaches the sinks as one event, so the request log has every request;
 * hr_stats_count_rejected counts it in the live stats. */
static void emit_refusal(struct hr_worker *w, const char *request_id, enum hr_provider provider, const char *path,
                         const char *stack, int status, const char *why)
{
    char id[40];
    if (!request_id) {
        snprintf(id, sizeof id, "hr-%zx-%llx", w->index, ++w->next_request);
        request_id = id;
    }
    struct hr_event ev = {.struct_size = sizeof ev, .request_id = request_id, .timestamp = hr_now(),
                          .provider = provider, .provider_name = hr_provider_name(provider), .model = "",
                          .stack = stack ? stack : "", .path = path, .status = status, .overhead_ms = -1,
                          .ttfb_ms = -1, .pipeline_ms = -1, .error = why};
    hr_sinks_emit(&ev);
}

/* Routes that bill model tokens; chat completions and messages are the
 * ones compressed and priced, the others are gated by the budget too. */
static int is_model_route(const char *path)
{
    static const char *const routes[] = {"/v1/chat/completions", "/v1/messages", "/v1/responses", "/v1/completions",
                                         "/v1/embeddings", "/v1/messages/batches", "/v1/batches", NULL};
    for (size_t i = 0; routes[i]; i++)
        if (!strcmp(path, routes[i])) return 1;
    return 0;
}

static int valid_stack(const char *s)
{
    if (!s || !islower((unsigned char)s[0])) return 0;
    size_t n = 1;
    for (; s[n]; n++)
        if (!(islower((unsigned char)s[n]) || isdigit((unsigned char)s[n]) || s[n] == '_')) return 0;
    return n <= MAX_STACK_LEN;
}

static enum hr_provider provider_for(const char *path, struct evkeyvalq *in)
{
    if (!strncmp(path, "/v1/messages", 12) || !strncmp(path, "/v1/complete", 12)) return HR_PROVIDER_ANTHROPIC;
    if (evhttp_find_header(in, "anthropic-version") || evhttp_find_header(in, "x-api-key"))
        return HR_PROVIDER_ANTHROPIC;
    return HR_PROVIDER_OPENAI;
}

/* Token counts and provider usage of an LLM request (all rounds), priced
 * as the event, the cost headers and the stream's closing comment see it. */
static void event_usage(struct proxy_req *p, struct hr_event *ev)
{
    ev->tokens_input = p->pr.tokens_before;
    ev->tokens_sent = p->pr.tokens_after;
    ev->tokens_saved = p->pr.tokens_before - p->pr.tokens_after;
    const struct hr_usage *u = &p->usage, *e = &p->earlier_usage;
    ev->tokens_output = u->output_tokens + e->output_tokens;
    ev->provider_input_tokens = u->input_tokens + e->input_tokens;
    ev->cache_read_tokens = u->cache_read_tokens + e->cache_read_tokens;
    ev->cache_write_tokens = u->cache_write_tokens + e->cache_write_tokens;
    ev->cache_write_5m_tokens = u->cache_write_5m_tokens + e->cache_write_5m_tokens;
    ev->cache_write_1h_tokens = u->cache_write_1h_tokens + e->cache_write_1h_tokens;
}

/* What the request costs so far (headers and stream comment; the event
 * itself is priced and accounted once, in emit_event). */
static void price_so_far(struct proxy_req *p, struct hr_event *ev)
{
    *ev = (struct hr_event){.struct_size = sizeof *ev, .model = p->model ? p->model : "", .status = (int)p->status};
    event_usage(p, ev);
    hr_cost_price_event(ev, p->usage.seen || p->earlier_usage.seen, NULL);
}

/* The one place a finished request is counted and handed to the sinks. */
static void emit_event(struct proxy_req *p, int status, int failed, const char *error)
{
    double now = hr_monotonic_ms();
    struct hr_event ev = {
        .struct_size = sizeof ev,
        .request_id = p->request_id,
        .timestamp = hr_now(),
        .provider = p->provider,
        .provider_name = hr_provider_name(p->provider),
        .model = p->model ? p->model : "",
        .stack = p->stack,
        .path = p->path,
        .status = status,
        .failed = failed,
        .streamed = p->streaming && p->llm,
        .latency_ms = now - p->t_start,
        .overhead_ms = p->t_forward > 0 ? p->t_forward - p->t_start : -1,
        .ttfb_ms = p->t_first_byte > 0 ? p->t_first_byte - p->t_forward : -1,
        .error = error,
        .cached = p->cached,
        .pipeline_ms = p->pipeline_ran ? p->pr.pipeline_ms : -1,
        .request_body = p->logged_body,
        .request_body_len = p->logged_body_len,
        .n_stages = p->pr.n_stages,
        .stages = p->pr.stages,
    };
    if (p->llm) {
        event_usage(p, &ev);
        hr_cost_account_event(&ev, p->usage.seen || p->earlier_usage.seen);
    } else {
        ev.model = "";
    }
    /* The provider cached this request's prefix: keep it stable next turn. */
    if (p->llm && p->pipeline_ran && status == 200 && (ev.cache_read_tokens || ev.cache_write_tokens))
        hr_session_set_floor(p->pr.session_id, p->pr.n_messages);
    hr_stats_record(&ev);
    hr_sinks_emit(&ev);
    HR_DEBUG(LOGGER, "%s %s %s -> %d in %.1f ms%s%s", p->request_id, hr_provider_name(p->provider), p->path, status,
             ev.latency_ms, error ? ": " : "", error ? error : "");
}

/* Before the final reply: evhttp may free a closing connection inside the
 * send call, and its close callback must not find us then. */
static void detach_client(struct proxy_req *p)
{
    if (p->conn) evhttp_connection_set_closecb(p->conn, NULL, NULL);
    p->conn = NULL;
    if (p->peer_closed) event_free(p->peer_closed);
    p->peer_closed = NULL;
}

static void proxy_free(struct proxy_req *p)
{
    detach_client(p);
    if (p->t) hr_transfer_abort(p->t);
    if (p->sse) hr_sse_parser_free(p->sse);
    if (p->body) evbuffer_free(p->body);
    hr_pipeline_result_free(&p->pr);
    json_decref(p->sent_body);
    free(p->url);
    free(p->logged_body);
    curl_slist_free_all(p->up_headers);
    p->w->inflight--;
    free(p->model);
    free(p->path);
    free(p);
}

static void on_client_closed(struct evhttp_connection *conn, void *arg)
{
    (void)conn;
    struct proxy_req *p = arg;
    struct evhttp_request *req = p->req;
    p->req = NULL;
    p->conn = NULL; /* being freed by evhttp */
    if (p->t) {
        hr_transfer_abort(p->t); /* stops the upstream transfer now */
        p->t = NULL;
    }
    emit_event(p, 499, 0, "client closed the connection");
    proxy_free(p);
    /* On client EOF/timeout evhttp detaches an unfinished request from the
     * connection and leaves it to us; one still attached is freed by evhttp. */
    if (req && !evhttp_request_get_connection(req)) evhttp_request_free(req);
}

/* evhttp stops reading a connection while its request is being answered, so
 * it would notice a client that went away only at the next write. Watching
 * the socket for the peer's close (EPOLLRDHUP) lets a waiting non-streamed
 * request abort its upstream transfer at once, as nginx does (499). */
static void on_peer_closed(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct proxy_req *p = arg;
    struct evhttp_connection *conn = p->conn;
    if (!conn) return;
    evhttp_connection_free(conn); /* runs on_client_closed, which frees p */
}

static void watch_peer_close(struct proxy_req *p)
{
    struct bufferevent *bev = evhttp_connection_get_bufferevent(p->conn);
    struct event_base *base = bev ? bufferevent_get_base(bev) : NULL;
    if (!base || !(event_base_get_features(base) & EV_FEATURE_EARLY_CLOSE)) return;
    p->peer_closed = event_new(base, bufferevent_getfd(bev), EV_CLOSED, on_peer_closed, p);
    if (p->peer_closed) event_add(p->peer_closed, NULL);
}

static void sse_event(void *ud, const char *event, size_t event_len, const char *data, size_t data_len)
{
    struct proxy_req *p = ud;
    hr_usage_from_sse(p->provider, event, event_len, data, data_len, &p->usage);
}

static void add_token_headers(struct proxy_req *p, struct evkeyvalq *out)
{
    char v[32];
    evhttp_add_header(out, "x-headroom-request-id", p->request_id);
    if (!p->llm) return;
    snprintf(v, sizeof v, "%llu", (unsigned long long)p->pr.tokens_before);
    evhttp_add_header(out, "x-headroom-tokens-before", v);
    snprintf(v, sizeof v, "%llu", (unsigned long long)p->pr.tokens_after);
    evhttp_add_header(out, "x-headroom-tokens-after", v);
    snprintf(v, sizeof v, "%llu", (unsigned long long)(p->pr.tokens_before - p->pr.tokens_after));
    evhttp_add_header(out, "x-headroom-tokens-saved", v);
    if (p->streaming) return; /* streams carry cost in their closing comment */
    struct hr_event ev;
    price_so_far(p, &ev);
    hr_cost_format_usd(ev.cost_usd, v, sizeof v);
    evhttp_add_header(out, "x-headroom-cost-usd", v);
    hr_cost_format_usd(ev.savings_usd, v, sizeof v);
    evhttp_add_header(out, "x-headroom-savings-usd", v);
}

/* Clients ignore SSE comments: the stream's figures ride at its very end. */
static void stream_cost_comment(struct proxy_req *p)
{
    struct hr_event ev;
    char line[320];
    price_so_far(p, &ev);
    int n = hr_cost_sse_comment(&ev, line, sizeof line);
    if (n <= 0 || (size_t)n >= sizeof line) return;
    struct evbuffer *b = evbuffer_new();
    if (!b) return;
    evbuffer_add(b, line, (size_t)n);
    evhttp_send_reply_chunk(p->req, b);
    evbuffer_free(b);
}

static void on_headers(void *ud, long status, const struct hr_header *h, size_t n)
{
    struct proxy_req *p = ud;
    p->status = status;
    p->t_first_byte = hr_monotonic_ms();
    if (!p->req) return;
    struct evkeyvalq *out = evhttp_request_get_output_headers(p->req);
    if (p->retrieve_rounds) evhttp_clear_headers(out); /* only the last round's headers */
    int event_stream = 0;
    for (size_t i = 0; i < n; i++) {
        if (is_hop_by_hop(h[i].name)) continue;
        if (!strcasecmp(h[i].name, "content-type") && !strncasecmp(h[i].value, "text/event-stream", 17))
            event_stream = 1;
        evhttp_add_header(out, h[i].name, h[i].value);
    }
    /* LLM answers are buffered (usage and token headers need the whole body)
     * unless they are a stream; everything else is relayed as it comes. */
    p->streaming = event_stream || !p->llm;
    if (p->streaming) {
        if (event_stream && p->llm) p->sse = hr_sse_parser_new(sse_event, p, HR_SSE_DEFAULT_MAX_EVENT);
        add_token_headers(p, out);
        evhttp_send_reply_start(p->req, (int)status, NULL);
        p->reply_started = 1;
    } else {
        p->body = evbuffer_new();
    }
}

static void chunk_flushed(struct evhttp_connection *conn, void *arg)
{
    (void)conn;
    struct proxy_req *p = arg;
    if (p->t) hr_transfer_resume(p->t);
}

static int on_data(void *ud, const char *buf, size_t len)
{
    struct proxy_req *p = ud;
    if (!p->req) return 0;
    if (!p->streaming) {
        if (evbuffer_get_length(p->body) + len > p->w->d->cfg->max_response_bytes) {
            p->too_large = 1; /* stop downloading; on_done answers 502 */
            return -1;
        }
        evbuffer_add(p->body, buf, len);
        return 0;
    }
    /* Backpressure: with the client this far behind, pause before relaying;
     * curl hands the same bytes again when chunk_flushed resumes it. */
    struct bufferevent *bev = p->conn ? evhttp_connection_get_bufferevent(p->conn) : NULL;
    if (bev && evbuffer_get_length(bufferevent_get_output(bev)) > STREAM_HIGH_WATER) return 1;
    if (p->sse && hr_sse_feed(p->sse, buf, len) < 0) {
        hr_sse_parser_free(p->sse); /* an oversized event: keep relaying, stop parsing */
        p->sse = NULL;
    }
    struct evbuffer *chunk = evbuffer_new();
    evbuffer_add(chunk, buf, len);
    evhttp_send_reply_chunk_with_cb(p->req, chunk, chunk_flushed, p);
    evbuffer_free(chunk);
    return 0;
}

/* A stream that broke after it started: tell the client in the provider's
 * own SSE error shape (SDKs raise it), then end the stream. */
static void stream_error_event(struct proxy_req *p, const char *why)
{
    json_t *err = p->provider == HR_PROVIDER_ANTHROPIC
                      ? json_pack("{s:s,s:{s:s,s:s}}", "type", "error", "error", "type", "api_error", "message", why)
                      : json_pack("{s:{s:s,s:s}}", "error", "message", why, "type", "upstream_error");
    char *text = json_dumps(err, JSON_COMPACT);
    json_decref(err);
    struct evbuffer *b = evbuffer_new();
    if (p->provider == HR_PROVIDER_ANTHROPIC) evbuffer_add_printf(b, "event: error\ndata: %s\n\n", text);
    else evbuffer_add_printf(b, "data: %s\n\n", text);
    free(text);
    evhttp_send_reply_chunk(p->req, b);
    evbuffer_free(b);
}

static const struct hr_transfer_cbs transfer_cbs;

static void add_usage(struct hr_usage *to, const struct hr_usage *u)
{
    to->input_tokens += u->input_tokens;
    to->output_tokens += u->output_tokens;
    to->cache_read_tokens += u->cache_read_tokens;
    to->cache_write_tokens += u->cache_write_tokens;
    to->cache_write_5m_tokens += u->cache_write_5m_tokens;
    to->cache_write_1h_tokens += u->cache_write_1h_tokens;
}

/* The model answered with headroom_retrieve calls only: answer them from the
 * CCR store and ask again, so the client sees a normal answer. Returns 1 when
 * a follow-up request is under way. */
static int answer_retrieve_calls(struct proxy_req *p)
{
    if (!p->sent_body || p->status != 200 || p->retrieve_rounds >= MAX_RETRIEVE_ROUNDS || !p->body) return 0;
    size_t len = evbuffer_get_length(p->body);
    json_t *answer = json_loadb((const char *)evbuffer_pullup(p->body, -1), len, 0, NULL);
    if (!answer || !hr_retrieve_only_calls(answer, p->provider)) {
        json_decref(answer);
        return 0;
    }
    json_t *messages = json_object_get(p->sent_body, "messages");
    size_t first_new = json_array_size(messages);
    int n = hr_retrieve_answer(p->sent_body, answer, p->provider);
    struct hr_usage u = {0};
    hr_usage_from_json(p->provider, answer, &u);
    json_decref(answer);
    if (n <= 0) return 0;
    /* What the follow-up sends again is counted as sent: retrieval gives
     * back part of the saving, honestly. */
    uint64_t extra = PER_MESSAGE_OVERHEAD * (json_array_size(messages) - first_new);
    for (size_t i = first_new; i < json_array_size(messages); i++)
        extra += hr_json_tokens(p->model, json_array_get(messages, i));
    p->pr.tokens_after += extra;
    if (p->pr.tokens_after > p->pr.tokens_before) p->pr.tokens_after = p->pr.tokens_before;
    char *text = json_dumps(p->sent_body, JSON_COMPACT);
    if (!text) return 0;
    struct hr_daemon *d = p->w->d;
    struct hr_transfer_opts opts = {d->cfg->upstream_connect_timeout_ms, d->cfg->upstream_timeout_s};
    struct hr_transfer *t = hr_transfer_start(p->w->up, "POST", p->url, p->up_headers, text, strlen(text), &opts,
                                              &transfer_cbs, p);
    free(text);
    if (!t) return 0;
    add_usage(&p->earlier_usage, &u);
    p->retrieve_rounds++;
    HR_INFO(LOGGER, "%s: answered %d headroom_retrieve call%s from the CCR store (round %d)", p->request_id, n,
            n == 1 ? "" : "s", p->retrieve_rounds);
    evbuffer_free(p->body);
    p->body = NULL;
    p->t = t;
    return 1;
}

/* ---- response cache and rate limit (respcache.c, ratelimit.c) ---- */

/* Answer from the response cache when it holds this request (checked on
 * the client's body, before compression). 1 = answered. A hit sends no
 * tokens anywhere, so its event carries none; it replays the token headers
 * of the answer it reuses. */
static int answer_from_cache(struct proxy_req *p, const json_t *body)
{
    if (!hr_respcache_enabled()) return 0;
    struct evkeyvalq *in = evhttp_request_get_input_headers(p->req);
    const char *query = strchr(evhttp_request_get_uri(p->req), '?');
    const char *const hdrs[] = {"x-api-key", evhttp_find_header(in, "x-api-key"),
                                "anthropic-version", evhttp_find_header(in, "anthropic-version"),
                                "anthropic-beta", evhttp_find_header(in, "anthropic-beta"),
                                "openai-organization", evhttp_find_header(in, "openai-organization"),
                                "openai-project", evhttp_find_header(in, "openai-project"), NULL};
    struct hr_respcache_request r = {p->provider, p->path, query, body, evhttp_find_header(in, "authorization"), hdrs};
    if (hr_respcache_key(&r, p->cache_key)) return 0; /* a stream: never cached */
    p->cacheable = 1;
    struct hr_respcache_entry e;
    if (hr_respcache_get(p->cache_key, &e)) return 0;
    struct evkeyvalq *out = evhttp_request_get_output_headers(p->req);
    char v[32];
    evhttp_add_header(out, "Content-Type", e.content_type);
    evhttp_add_header(out, "x-headroom-cache", "hit");
    evhttp_add_header(out, "x-headroom-request-id", p->request_id);
    snprintf(v, sizeof v, "%llu", (unsigned long long)e.tokens_before);
    evhttp_add_header(out, "x-headroom-tokens-before", v);
    snprintf(v, sizeof v, "%llu", (unsigned long long)e.tokens_after);
    evhttp_add_header(out, "x-headroom-tokens-after", v);
    snprintf(v, sizeof v, "%llu", (unsigned long long)(e.tokens_before - e.tokens_after));
    evhttp_add_header(out, "x-headroom-tokens-saved", v);
    /* Nothing reached a provider: this answer cost nothing. */
    evhttp_add_header(out, "x-headroom-cost-usd", "0.000000");
    evhttp_add_header(out, "x-headroom-savings-usd", "0.000000");
    struct evbuffer *buf = evbuffer_new();
    if (buf) evbuffer_add(buf, e.body, e.body_len);
    p->cached = 1;
    evhttp_send_reply(p->req, e.status, NULL, buf);
    if (buf) evbuffer_free(buf);
    emit_event(p, e.status, 0, NULL);
    hr_respcache_entry_free(&e);
    return 1;
}

/* Keep a cacheable 200 answer for the next identical request. */
static void cache_store(struct proxy_req *p)
{
    if (!p->cacheable || !p->req) return;
    struct evkeyvalq *out = evhttp_request_get_output_headers(p->req);
    evhttp_add_header(out, "x-headroom-cache", "miss");
    if (p->status != 200 || !p->body) return;
    struct hr_respcache_entry e = {200, (char *)evhttp_find_header(out, "content-type"),
                                   (char *)evbuffer_pullup(p->body, -1), evbuffer_get_length(p->body),
                                   p->pr.tokens_before, p->pr.tokens_after};
    hr_respcache_put(p->cache_key, &e);
}

/* Refuse a request over its API key's rate limit: 429 in the provider's
 * shape with Retry-After. charge = 0 only checks there is room (before
 * compressing); charge = 1 takes the request and its tokens after
 * compression. 1 = refused and answered. */
static int refuse_rate_limited(struct proxy_req *p, uint64_t tokens, int charge)
{
    if (!hr_ratelimit_enabled()) return 0;
    struct evkeyvalq *in = evhttp_request_get_input_headers(p->req);
    const char *cred = evhttp_find_header(in, "authorization");
    if (!cred || !*cred) cred = evhttp_find_header(in, "x-api-key");
    uint8_t key[HR_SHA256_LEN];
    hr_ratelimit_key(cred, key);
    struct hr_ratelimit_verdict v;
    if (hr_ratelimit_admit(key, tokens, charge, hr_clock_now(), &v) != HR_RATELIMIT_LIMITED) return 0;
    const char *unit = !strcmp(v.limit, "tokens") ? "tpm" : "rpm";
    char msg[320], secs[16];
    snprintf(msg, sizeof msg,
             "headroomd rate limit reached: %llu %s per minute per API key (rate_limit_%s); retry after %d s, "
             "or raise rate_limit_%s in headroom.conf", (unsigned long long)v.per_minute, v.limit, unit,
             v.retry_after_s, unit);
    snprintf(secs, sizeof secs, "%d", v.retry_after_s);
    evhttp_add_header(evhttp_request_get_output_headers(p->req), "Retry-After", secs);
    hr_send_json(p->req, 429, hr_ratelimit_error_body(p->provider, msg));
    hr_stats_count_rejected(429, 1, 0);
    emit_refusal(p->w, p->request_id, p->provider, p->path, p->stack, 429, "rate limited");
    HR_DEBUG(LOGGER, "%s %s: %s", p->request_id, p->path, msg);
    return 1;
}

static void on_done(void *ud, CURLcode rc, const char *why)
{
    struct proxy_req *p = ud;
    p->t = NULL; /* freed by upstream.c after we return */
    if (!p->req) return;
    if (rc == CURLE_OK && !p->streaming && !p->too_large && answer_retrieve_calls(p)) return;
    detach_client(p);
    if (p->too_large) {
        char msg[160];
        snprintf(msg, sizeof msg, "upstream answer larger than max_response_size (%zu bytes); raise max_response_size in headroom.conf",
                 p->w->d->cfg->max_response_bytes);
        evhttp_clear_headers(evhttp_request_get_output_headers(p->req));
        send_error_for(p, p->provider, 502, "upstream_error", msg);
        emit_event(p, 502, 1, "response too large");
        proxy_free(p);
        return;
    }
    if (rc != CURLE_OK) {
        char msg[512];
        int timeout = rc == CURLE_OPERATION_TIMEDOUT;
        snprintf(msg, sizeof msg, "headroomd could not get an answer from the %s API: %s",
                 hr_provider_name(p->provider), why);
        HR_WARN(LOGGER, "%s %s: %s", p->request_id, p->path, msg);
        int status = timeout ? 504 : 502;
        if (p->reply_started) {
            stream_error_event(p, msg);
            evhttp_send_reply_end(p->req);
            status = (int)p->status;
        } else {
            /* Our own answer: none of the upstream's headers belong on it. */
            evhttp_clear_headers(evhttp_request_get_output_headers(p->req));
            send_error_for(p, p->provider, status, p->provider == HR_PROVIDER_ANTHROPIC ? "api_error" : "upstream_error", msg);
        }
        emit_event(p, status, 1, why);
        proxy_free(p);
        return;
    }
    if (p->streaming) {
        if (p->llm) stream_cost_comment(p);
        evhttp_send_reply_end(p->req);
        emit_event(p, (int)p->status, 0, NULL);
        proxy_free(p);
        return;
    }
    if (p->llm && p->body) {
        size_t len = evbuffer_get_length(p->body);
        json_t *j = json_loadb((const char *)evbuffer_pullup(p->body, -1), len, 0, NULL);
        if (j) hr_usage_from_json(p->provider, j, &p->usage);
        json_decref(j);
    }
    cache_store(p);
    add_token_headers(p, evhttp_request_get_output_headers(p->req));
    evhttp_send_reply(p->req, (int)p->status, NULL, p->body);
    emit_event(p, (int)p->status, 0, NULL);
    proxy_free(p);
}

static const struct hr_transfer_cbs transfer_cbs = {on_headers, on_data, on_done};

/* RFC 9110 7.6.1: a header the client lists in Connection is hop-by-hop too. */
static int named_in_connection(struct evkeyvalq *in, const char *name)
{
    size_t n = strlen(name);
    for (struct evkeyval *kv = in->tqh_first; kv; kv = kv->next.tqe_next) {
        if (strcasecmp(kv->key, "connection")) continue;
        for (const char *p = kv->value; *p;) {
            while (*p == ' ' || *p == '\t' || *p == ',') p++;
            const char *e = p;
            while (*e && *e != ',') e++;
            const char *t = e;
            while (t > p && (t[-1] == ' ' || t[-1] == '\t')) t--;
            if ((size_t)(t - p) == n && !strncasecmp(p, name, n)) return 1;
            p = e;
        }
    }
    return 0;
}

/* Headers forwarded upstream: the client's, minus hop-by-hop and x-headroom-*. */
static struct curl_slist *upstream_headers(struct evkeyvalq *in, struct proxy_req *p, int body_rewritten)
{
    struct curl_slist *list = NULL;
    for (struct evkeyval *kv = in->tqh_first; kv; kv = kv->next.tqe_next) {
        if (is_hop_by_hop(kv->key) || !strncasecmp(kv->key, "x-headroom-", 11) || named_in_connection(in, kv->key))
            continue;
        /* Sized per header: a fixed buffer would silently cut long values. */
        size_t need = strlen(kv->key) + strlen(kv->value) + 3;
        char *line = malloc(need);
        if (!line) continue;
        snprintf(line, need, "%s: %s", kv->key, kv->value);
        list = curl_slist_append(list, line);
        free(line);
    }
    if (body_rewritten && !evhttp_find_header(in, "content-type"))
        list = curl_slist_append(list, "Content-Type: application/json");
    (void)p;
    return list;
}

static const char *method_name(enum evhttp_cmd_type c)
{
    switch (c) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    case EVHTTP_REQ_PATCH: return "PATCH";
    default: return NULL;
    }
}

/* Parse and compress an LLM request. Returns the body to forward (malloc'd)
 * or NULL with the client already answered. */
static char *prepare_llm_body(struct proxy_req *p, const char *raw, size_t len, size_t *out_len)
{
    struct hr_daemon *d = p->w->d;
    json_error_t jerr;
    json_t *body = hr_json_load(raw, len, &jerr);
    if (!body || !json_is_object(body)) {
        char msg[300];
        if (body) snprintf(msg, sizeof msg, "request body must be a JSON object");
        else snprintf(msg, sizeof msg, "request body is not valid JSON: %s (line %d, column %d)", jerr.text,
                      jerr.line, jerr.column);
        json_decref(body);
        send_error_for(p, p->provider, 400, "invalid_request_error", msg);
        emit_event(p, 400, 0, "malformed JSON");
        return NULL;
    }
    const char *model = json_string_value(json_object_get(body, "model"));
    p->model = strdup(model ? model : "");
    if (answer_from_cache(p, body) || refuse_rate_limited(p, 0, 0)) {
        json_decref(body);
        return NULL;
    }
    const char *session = evhttp_find_header(evhttp_request_get_input_headers(p->req), "x-headroom-session");
    hr_pipeline_run(d->plugins.transforms, d->plugins.n_transforms, &d->popts, p->provider, body, p->model,
                    p->stack, session, &p->pr);
    p->pipeline_ran = 1;
    /* Offer headroom_retrieve when rows were dropped and we can answer the
     * call ourselves (a non-streamed answer; streams keep the marker's hash
     * and GET /v1/retrieve/<hash>). */
    if (!json_is_true(json_object_get(body, "stream")) && hr_retrieve_needed(body, p->provider) &&
        hr_retrieve_tool_add(body, p->provider) > 0) {
        json_t *tools = json_object_get(body, "tools");
        p->pr.tokens_after += hr_json_tokens(p->model, json_array_get(tools, json_array_size(tools) - 1));
        if (p->pr.tokens_after > p->pr.tokens_before) p->pr.tokens_after = p->pr.tokens_before;
        p->pr.changed = 1;
        p->sent_body = json_incref(body);
    }
    if (refuse_rate_limited(p, p->pr.tokens_after, 1)) {
        json_decref(body);
        return NULL;
    }
    char *out;
    if (p->pr.changed) {
        out = json_dumps(body, JSON_COMPACT);
        *out_len = out ? strlen(out) : 0;
    } else {
        out = NULL;
    }
    json_decref(body);
    if (!out) { /* unchanged: forward the client's bytes exactly */
        out = malloc(len + 1);
        if (out) memcpy(out, raw, len);
        *out_len = len;
    }
    if (!out) {
        send_error_for(p, p->provider, 500, "api_error", "headroomd ran out of memory preparing the request");
        emit_event(p, 500, 1, "out of memory");
    }
    return out;
}

void hr_proxy_handle(struct hr_worker *w, struct evhttp_request *req, const char *path)
{
    struct hr_daemon *d = w->d;
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    enum hr_provider provider = provider_for(path, in);
    const char *method = method_name(evhttp_request_get_command(req));
    if (!method) {
        hr_send_provider_error(req, provider, 405, "invalid_request_error", "method not supported by headroomd");
        return;
    }
    if (w->inflight >= d->cfg->max_connections) {
        hr_send_provider_error(req, provider, 503, "overloaded_error",
                               "headroomd is at max_connections concurrent requests on this worker; retry, or raise max_connections");
        hr_stats_count_rejected(503, 0, 0);
        emit_refusal(w, NULL, provider, path, NULL, 503, "max_connections reached");
        return;
    }
    /* Budget spent: refused before anything is parsed or forwarded, on every
     * route that runs a model (also those headroomd does not compress). */
    json_t *budget_body;
    long retry_after;
    if (!strcmp(method, "POST") && is_model_route(path) && hr_cost_budget_gate(provider, &budget_body, &retry_after)) {
        char ra[24];
        snprintf(ra, sizeof ra, "%ld", retry_after);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", ra);
        hr_send_json(req, 429, budget_body);
        hr_stats_count_rejected(429, 0, 1);
        emit_refusal(w, NULL, provider, path, NULL, 429, "budget exceeded");
        return;
    }
    struct proxy_req *p = calloc(1, sizeof *p);
    if (!p) {
        hr_send_provider_error(req, provider, 500, "api_error", "out of memory");
        return;
    }
    w->inflight++;
    p->w = w;
    p->req = req;
    p->provider = provider;
    p->path = strdup(path);
    p->t_start = hr_monotonic_ms();
    snprintf(p->request_id, sizeof p->request_id, "hr-%zx-%llx", w->index, ++w->next_request);
    const char *stack = evhttp_find_header(in, "x-headroom-stack");
    if (valid_stack(stack)) snprintf(p->stack, sizeof p->stack, "%s", stack);
    p->llm = !strcmp(method, "POST") && (!strcmp(path, "/v1/chat/completions") || !strcmp(path, "/v1/messages"));

    struct evbuffer *inbuf = evhttp_request_get_input_buffer(req);
    size_t raw_len = evbuffer_get_length(inbuf);
    const char *raw = raw_len ? (const char *)evbuffer_pullup(inbuf, -1) : "";
    if (p->llm && d->cfg->log_messages && (p->logged_body = malloc(raw_len + 1))) {
        memcpy(p->logged_body, raw, raw_len);
        p->logged_body[raw_len] = '\0';
        p->logged_body_len = raw_len;
    }
    char *body = NULL;
    size_t body_len = raw_len;
    if (p->llm) {
        body = prepare_llm_body(p, raw, raw_len, &body_len);
        if (!body) {
            proxy_free(p);
            return;
        }
    } else if (raw_len) {
        body = malloc(raw_len);
        if (body) memcpy(body, raw, raw_len);
    }

    const char *base = provider == HR_PROVIDER_ANTHROPIC ? d->cfg->anthropic_url : d->cfg->openai_url;
    const char *uri = evhttp_request_get_uri(req);
    const char *query = strchr(uri, '?');
    size_t ulen = strlen(base) + strlen(path) + (query ? strlen(query) : 0) + 1;
    char *url = malloc(ulen);
    snprintf(url, ulen, "%s%s%s", base, path, query ? query : "");
    struct curl_slist *headers = upstream_headers(in, p, p->pr.changed);
    struct hr_transfer_opts opts = {d->cfg->upstream_connect_timeout_ms, d->cfg->upstream_timeout_s};
    p->conn = evhttp_request_get_connection(req);
    evhttp_connection_set_closecb(p->conn, on_client_closed, p);
    watch_peer_close(p);
    p->t_forward = hr_monotonic_ms();
    p->t = hr_transfer_start(w->up, method, url, headers, body, body_len, &opts, &transfer_cbs, p);
    free(body);
    if (p->sent_body) { /* kept for headroom_retrieve follow-ups */
        p->url = url;
        p->up_headers = headers;
    } else {
        curl_slist_free_all(headers);
        free(url);
    }
    if (!p->t) {
        detach_client(p);
        hr_send_provider_error(req, provider, 500, "api_error", "headroomd could not start the upstream request");
        emit_event(p, 500, 1, "transfer setup failed");
        proxy_free(p);
    }
}
