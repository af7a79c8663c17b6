/* ws_relay.c — a relayed Responses WebSocket (ws_relay.h). Both sides are
 * tunnels (tunnel.h) read through the frame codec (ws_frame.h). Upstream to
 * client, every byte goes on as it arrives and text messages are watched
 * for the events that end a response. Client to upstream, binary and
 * control frames go on as they arrive; a text message is held until whole,
 * then a response.create is compressed and sent as one new masked frame,
 * anything else sent on as it was. Each response.create is a proxy_req of
 * its own, counted by accounting.c when its response ends (as is a message
 * refused for a repeated key, at once). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/random.h>
#include <event2/event.h>
#include "cost.h"
#include "fleet.h"
#include "json_dump.h"
#include "json_load.h"
#include "json_scan.h"
#include "log.h"
#include "proxy.h"
#include "ratelimit.h"
#include "retrieve_tool.h"
#include "stats.h"
#include "timeval_ms.h"
#include "tunnel.h"
#include "upstream.h"
#include "ws_counters.h"
#include "ws_frame.h"
#include "ws_relay.h"

#define LOGGER "headroom.proxy"
#define HIGH_WATER (1u << 20) /* bytes waiting for one side before the other is no longer read */
#define CLOSE_WAIT_MS 5000    /* for the other side's close frame once one side sent its own */
#define LINGER_MS 2000        /* after our last frame, for both sides to close their end */

struct side {
    struct hr_ws *ws;
    struct hr_tunnel *tn;
    int from_client;
    const char *name;          /* "client" or "upstream", for log lines */
    uint8_t head[14];          /* the current frame's head (raw) */
    size_t head_have;
    struct hr_ws_head h;
    int in_payload;
    uint64_t got;              /* payload bytes of the current frame so far */
    int msg_op;                /* 0, or the opcode of the data message under way */
    int hold;                  /* the message is held until whole (a client's text message) */
    int watch;                 /* the message is kept to read (an upstream text message) */
    char *msg;
    size_t msg_len, msg_cap;
    double read_at;            /* monotonic ms: when the bytes being read arrived */
    double msg_t0;             /* when the message just whole had its last byte in (a request's t_start) */
    uint8_t ctl[125];          /* a control frame's payload, as it came */
    size_t ctl_len;
    int close_recv, close_sent, gone;
};

struct hr_ws {
    struct hr_worker *w;
    struct hr_ws *prev, *next;
    struct side cl, up;
    const struct hr_api *api;
    struct proxy_req *pend, *pend_tail; /* response.create sent, response not ended; oldest first */
    char id[40];                        /* the handshake's request id, for log lines */
    char stack[HR_MAX_STACK_LEN + 1];
    char traceparent[64];
    char *session;                      /* x-headroom-session */
    uint8_t rate_key[HR_SHA256_LEN];    /* the handshake's credential, for the per-key rate limit */
    /* A response.create waiting for the fleet's rate verdict (Redis), and
     * what the client sent after it: nothing more is read until it is in. */
    struct proxy_req *held_r;
    json_t *held_body;
    char *held_raw, *rest;
    size_t held_len, rest_len;
    double rest_at;                     /* when `rest` arrived */
    size_t max_msg;
    double idle_ms, last_io, close_deadline;
    struct event *timer;
    int draining, ending;
};

static void ws_end(struct hr_ws *ws, int status, const char *why);

/* ------------------------------------------------------------ writing */

static void backpressure(struct side *to)
{
    struct side *from = to == &to->ws->cl ? &to->ws->up : &to->ws->cl;
    if (to->tn && from->tn && hr_tunnel_pending(to->tn) > HIGH_WATER) hr_tunnel_pause(from->tn, 1);
}

static void put(struct side *to, const void *buf, size_t len)
{
    if (to->gone || !to->tn) return;
    hr_tunnel_write(to->tn, buf, len);
    backpressure(to);
}

/* One whole frame to `to`, masked when it goes upstream (RFC 6455 5.3: a
 * fresh unpredictable key per frame). */
static void send_frame(struct side *to, int opcode, const void *payload, size_t len)
{
    uint8_t head[14], key[4], *mask = NULL;
    if (!to->from_client) {
        /* the upstream side reads frames from the upstream; what goes to it is a client's */
        if (getrandom(key, sizeof key, 0) != (ssize_t)sizeof key) memset(key, 0x5a, sizeof key);
        mask = key;
    }
    size_t hl = hr_ws_build_head(head, 1, opcode, len, mask);
    put(to, head, hl);
    if (!mask) {
        put(to, payload, len);
        return;
    }
    uint8_t buf[4096];
    for (size_t off = 0; off < len; off += sizeof buf) {
        size_t n = len - off < sizeof buf ? len - off : sizeof buf;
        memcpy(buf, (const uint8_t *)payload + off, n);
        hr_ws_unmask(buf, n, key, off);
        put(to, buf, n);
    }
}

static void send_close(struct side *to, int code, const char *reason)
{
    if (to->close_sent || to->gone) return;
    uint8_t p[125];
    send_frame(to, HR_WS_CLOSE, p, hr_ws_close_payload(p, code, reason));
    to->close_sent = 1;
}

/* An error event in the Responses API's WebSocket shape, to the client. */
static void send_error_event(struct hr_ws *ws, int status, enum hr_api_error kind, const char *message)
{
    json_t *ev = ws->api->error_body(kind, message);
    if (!ev) return;
    json_object_set_new(ev, "type", json_string("error"));
    json_object_set_new(ev, "status", json_integer(status));
    size_t len;
    char *text = hr_json_dump_compact(ev, &len);
    json_decref(ev);
    if (text) send_frame(&ws->cl, HR_WS_TEXT, text, len);
    free(text);
}

/* ------------------------------------------------------------ accounting */

static void pend_push(struct hr_ws *ws, struct proxy_req *r)
{
    r->ws_next = NULL;
    if (ws->pend_tail) ws->pend_tail->ws_next = r;
    else ws->pend = r;
    ws->pend_tail = r;
}

/* Draining, with no response under way or message waiting: close both sides. */
static void close_if_drained(struct hr_ws *ws)
{
    if (!ws->draining || ws->pend || ws->held_r || ws->ending) return;
    send_close(&ws->cl, HR_WS_CLOSE_GOING_AWAY, "headroomd is shutting down");
    send_close(&ws->up, HR_WS_CLOSE_GOING_AWAY, "headroomd is shutting down");
    ws_end(ws, 503, NULL);
}

/* The oldest response ended: its one event, as a POST's would be. */
static void finish_oldest(struct hr_ws *ws, int status, int failed, const char *error)
{
    struct proxy_req *r = ws->pend;
    if (!r) return;
    ws->pend = r->ws_next;
    if (!ws->pend) ws->pend_tail = NULL;
    r->status = status;
    hr_retrieve_settled(r->request_id, !failed && status >= 200 && status < 300);
    hr_acct_finish(r, status, failed, error);
    hr_proxy_free(r);
    close_if_drained(ws);
}

/* The upstream's text message `m`: the first after a response.create dates
 * its first byte; the usage is read as from the SSE stream; a
 * final event (or an error) ends the oldest pending response. An error
 * event is the provider's answer, never a failure nor an `error` (which says
 * why headroomd got no answer). With a `status` it refused the
 * response.create as a POST's 4xx/5xx would: that status. Without one it is
 * the response stream's own error event, the one an SSE stream carries after
 * its 200 head: booked as that stream is, 200 (it said 500, so the same
 * failure counted as a server error over one transport only). */
static void upstream_text(struct hr_ws *ws, const char *m, size_t len)
{
    struct proxy_req *r = ws->pend;
    if (!r) return;
    if (r->t_first_byte <= 0) r->t_first_byte = hr_monotonic_ms();
    const char *v;
    size_t vlen;
    if (!hr_json_member_near(m, len, "type", &v, &vlen) || vlen < 2 || v[0] != '"') return;
    const char *type = v + 1;
    size_t tlen = vlen - 2;
    ws->api->usage_from_sse(type, tlen, m, len, &r->usage);
#define IS(lit) (tlen == sizeof(lit) - 1 && !memcmp(type, lit, tlen))
    if (IS("response.completed") || IS("response.incomplete") || IS("response.failed")) {
        if (IS("response.failed")) hr_relay_note_stream_error(r, "response.failed", tlen, m, len); /* as over SSE */
        finish_oldest(ws, 200, 0, NULL);
    } else if (IS("error")) {
        json_t *ev = hr_json_load(m, len, NULL);
        json_int_t st = json_integer_value(json_object_get(ev, "status"));
        json_decref(ev);
        if (!(st >= 400 && st <= 599)) hr_relay_note_stream_error(r, "error", tlen, m, len); /* the stream's own */
        finish_oldest(ws, st >= 400 && st <= 599 ? (int)st : 200, 0, NULL);
    }
#undef IS
}

/* The per-key rate limit, as a POST meets it (admission.c): refused with an
 * error event (status 429), counted, and freed. */
static int rate_limited(struct hr_ws *ws, struct proxy_req *r, uint64_t tokens, int charge)
{
    char msg[320];
    int retry_after;
    if (!hr_ratelimit_enabled() || !hr_admit_rate_key(ws->rate_key, tokens, charge, msg, sizeof msg, &retry_after))
        return 0;
    send_error_event(ws, 429, HR_API_ERR_RATE_LIMIT, msg);
    hr_stats_count_rejected(429, 1, 0);
    hr_acct_refusal(ws->w, r->request_id, ws->api, r->path, r->stack, 429, "rate limited");
    HR_DEBUG(LOGGER, "%s %s: %s", ws->id, r->request_id, msg);
    hr_retrieve_settled(r->request_id, 0); /* outputs it carried go with the next message */
    hr_proxy_free(r);
    return 1;
}

static void rate_verdict_in(struct proxy_req *r);

/* A response.create from the rate limit on: checked, compressed, sent. */
static void create_checked(struct hr_ws *ws, struct proxy_req *r, json_t *body, const char *raw, size_t raw_len)
{
    struct hr_daemon *d = ws->w->d;
    const char *unchecked = hr_fleet_unchecked_refused(r);
    if (unchecked) { /* Redis did not answer, on_backend_error closed: as a POST is refused */
        send_error_event(ws, 503, HR_API_ERR_OVERLOADED, unchecked);
        hr_stats_count_rejected(503, 0, 0);
        hr_acct_refusal(ws->w, r->request_id, ws->api, r->path, r->stack, 503, "shared state backend unavailable");
        hr_proxy_free(r);
        return;
    }
    if (rate_limited(ws, r, 0, 0)) return; /* room for one more, before compressing */
    struct hr_pipeline_opts popts = d->popts;
    popts.defer_count = 1;
    hr_pipeline_run(d->plugins.transforms, d->plugins.n_transforms, &popts, ws->api, body, r->model, r->stack,
                    ws->session, &r->pr);
    r->pipeline_ran = 1;
    if (hr_ratelimit_enabled()) hr_pipeline_count_finish(&r->pr); /* tpm counts what the provider would get */
    /* Continuing (previous_response_id, conversation) from an answer whose
     * headroom_retrieve calls the client never got (a POST's, relay.c):
     * their outputs go first, or the provider refuses the message ("No
     * tool output found for function call"), as proxy.c does for a POST. */
    uint64_t added_tokens;
    if (hr_retrieve_continue(ws->api, body, r->model, r->request_id, &added_tokens) > 0) {
        hr_pipeline_host_added(&r->pr, body, added_tokens); /* the client did not send them */
        hr_acct_charge_sent(r, added_tokens);
        r->pr.changed = 1;
    }
    if (hr_ratelimit_enabled() && rate_limited(ws, r, r->pr.tokens_after, 1)) return;
    size_t out_len = raw_len;
    char *out = r->pr.changed ? hr_json_dump_compact(body, &out_len) : NULL;
    r->t_forward = hr_monotonic_ms();
    send_frame(&ws->up, HR_WS_TEXT, out ? out : raw, out ? out_len : raw_len);
    free(out);
    hr_pipeline_count_finish(&r->pr); /* sent: counted while the upstream works */
    pend_push(ws, r);
}

/* The client's message just whole (`raw`) as a request of its own, or NULL
 * with the client told (out of memory). */
static struct proxy_req *message_req(struct hr_ws *ws, const char *raw, size_t raw_len)
{
    struct proxy_req *r = hr_proxy_track(ws->w, NULL, ws->api, 1, ws->api->path);
    if (!r) {
        send_error_event(ws, 500, HR_API_ERR_INTERNAL, "headroomd ran out of memory");
        return NULL;
    }
    r->t_start = ws->cl.msg_t0; /* as a POST's: the whole message read, not its first byte */
    memcpy(r->stack, ws->stack, sizeof r->stack);
    memcpy(r->traceparent, ws->traceparent, sizeof r->traceparent);
    if (ws->w->d->cfg->log_messages && (r->logged_body = malloc(raw_len + 1))) {
        memcpy(r->logged_body, raw, raw_len);
        r->logged_body[raw_len] = '\0';
        r->logged_body_len = raw_len;
    }
    return r;
}

/* A client's response.create: the same pipeline as a POST /v1/responses
 * body (no headroom_retrieve tool: the answer streams, as an SSE request's
 * does, so the model never calls it here; outputs for calls left out of an
 * earlier POST's answer are added as for a POST), then one masked text
 * frame upstream. Returns 1 when it waits for
 * the fleet's answers (rate verdict, kept calls): it is then held
 * (ws->held_*), and so is the client's side, until rate_verdict_in. */
static int response_create(struct hr_ws *ws, json_t *body, const char *raw, size_t raw_len)
{
    struct hr_worker *w = ws->w;
    struct proxy_req *r = message_req(ws, raw, raw_len);
    if (!r) return 0;
    hr_ws_count_message();
    r->streaming = 1;
    const char *model = json_string_value(json_object_get(body, "model"));
    r->model = strdup(model ? model : "");
    char msg[300];
    long retry_after;
    if (hr_cost_budget_gate(msg, sizeof msg, &retry_after)) { /* as admission.c refuses a POST */
        send_error_event(ws, 429, HR_API_ERR_BUDGET, msg);
        hr_stats_count_rejected(429, 0, 1);
        hr_acct_refusal(w, r->request_id, ws->api, r->path, r->stack, 429, "budget exceeded");
        hr_proxy_free(r);
        return 0;
    }
    /* A fleet's shared limit and kept calls: Redis's answers first, as a POST waits for them. */
    if (hr_fleet_enabled() && hr_fleet_message_wait(r, ws->rate_key, body, rate_verdict_in)) {
        ws->held_r = r;
        return 1;
    }
    create_checked(ws, r, body, raw, raw_len);
    return 0;
}

/* A client's message that repeats a key within one object: which copy the
 * provider would read is not known (its `type` too), so it goes nowhere.
 * The rest is valid UTF-8 and JSON (RFC 8259 only says names SHOULD be
 * unique), nothing RFC 6455 closes a connection for: refused as a POST
 * with that body is (400, counted as a request, `error` "malformed JSON"),
 * with an error event, and the WebSocket stays open. */
static void duplicate_key(struct hr_ws *ws, const char *m, size_t len, const char *what)
{
    struct proxy_req *r = message_req(ws, m, len);
    if (!r) return;
    char msg[300];
    snprintf(msg, sizeof msg, "message repeats a key within one object (%s): send each key once", what);
    HR_DEBUG(LOGGER, "%s %s: %s", ws->id, r->request_id, msg);
    send_error_event(ws, 400, HR_API_ERR_INVALID_REQUEST, msg);
    hr_acct_finish(r, 400, 0, "malformed JSON");
    hr_proxy_free(r);
}

/* A client's whole text message. Returns 1 when it is held (its parsed
 * body kept in ws->held_body; the caller keeps `m`). */
static int client_text(struct hr_ws *ws, const char *m, size_t len)
{
    json_error_t jerr;
    json_t *body = hr_json_load_strict(m, len, &jerr);
    /* that alone: a text jansson stopped reading at a repeated key may be bad further on */
    if (!body && !strncmp(jerr.text, "duplicate object key", 20) && hr_json_scan(m, len, 0, NULL, NULL) != -22) {
        duplicate_key(ws, m, len, jerr.text);
        return 0;
    }
    if (!body) {
        char why[320];
        snprintf(why, sizeof why, "text message is not valid JSON: %s (line %d, column %d)", jerr.text, jerr.line,
                 jerr.column);
        HR_WARN(LOGGER, "%s: WebSocket client sent a bad message (%s): closing with %d", ws->id, why,
                HR_WS_CLOSE_BAD_DATA);
        send_close(&ws->cl, HR_WS_CLOSE_BAD_DATA, why);
        send_close(&ws->up, HR_WS_CLOSE_GOING_AWAY, "the client sent a message that is not JSON");
        ws_end(ws, 499, "the client sent a message that is not JSON");
        return 0;
    }
    const char *type = json_string_value(json_object_get(body, "type"));
    if (type && !strcmp(type, "response.create")) {
        if (response_create(ws, body, m, len)) {
            ws->held_body = body;
            return 1;
        }
    } else {
        send_frame(&ws->up, HR_WS_TEXT, m, len); /* response.steer and the rest: as they came */
    }
    json_decref(body);
    return 0;
}

/* ------------------------------------------------------------ reading frames */

static void bad_frame(struct side *s, int code, const char *why)
{
    struct hr_ws *ws = s->ws;
    char reason[160];
    if (s->from_client) {
        HR_WARN(LOGGER, "%s: WebSocket client sent a bad frame (%s): closing with %d", ws->id, why, code);
        send_close(&ws->cl, code, why);
        send_close(&ws->up, HR_WS_CLOSE_GOING_AWAY, "the client broke the WebSocket protocol");
        ws_end(ws, 499, "the client broke the WebSocket protocol");
    } else {
        HR_WARN(LOGGER, "%s: WebSocket upstream sent a bad frame (%s): closing with %d", ws->id, why, code);
        snprintf(reason, sizeof reason, "upstream sent a bad frame: %s", why);
        send_close(&ws->up, code, why);
        send_close(&ws->cl, HR_WS_CLOSE_BAD_GATEWAY, reason);
        ws_end(ws, 502, reason);
    }
}

static int msg_room(struct side *s, uint64_t more)
{
    if (s->msg_len + more + 1 <= s->msg_cap) return 0;
    size_t cap = s->msg_cap ? s->msg_cap : 4096;
    while (cap < s->msg_len + more + 1) cap *= 2;
    char *b = realloc(s->msg, cap);
    if (!b) return -1;
    s->msg = b;
    s->msg_cap = cap;
    return 0;
}

static void msg_reset(struct side *s)
{
    s->msg_op = s->hold = s->watch = 0;
    s->msg_len = 0;
    if (s->msg_cap > (1u << 20)) { /* a large message's buffer is not kept */
        free(s->msg);
        s->msg = NULL;
        s->msg_cap = 0;
    }
}

/* A head is in. Returns -1 when the WebSocket is ending. */
static int frame_begin(struct side *s)
{
    struct hr_ws *ws = s->ws;
    const struct hr_ws_head *h = &s->h;
    struct side *o = s->from_client ? &ws->up : &ws->cl;
    if (h->opcode < HR_WS_CLOSE) {
        if (h->opcode == HR_WS_CONT && !s->msg_op) {
            bad_frame(s, HR_WS_CLOSE_PROTOCOL, "continuation frame with no message to continue");
            return -1;
        }
        if (h->opcode != HR_WS_CONT && s->msg_op) {
            bad_frame(s, HR_WS_CLOSE_PROTOCOL, "new data frame before the fragmented message ended");
            return -1;
        }
        if (h->opcode != HR_WS_CONT) {
            s->msg_op = h->opcode;
            s->hold = s->from_client && h->opcode == HR_WS_TEXT;
            s->watch = !s->from_client && h->opcode == HR_WS_TEXT;
        }
        if (s->from_client && s->msg_len + h->len > ws->max_msg) {
            char why[120];
            snprintf(why, sizeof why, "message over max_body_size (%zu bytes)", ws->max_msg);
            HR_WARN(LOGGER, "%s: WebSocket client sent a message of more than %llu bytes: closing with %d (raise max_body_size)",
                    ws->id, (unsigned long long)(s->msg_len + h->len), HR_WS_CLOSE_TOO_BIG);
            send_close(&ws->cl, HR_WS_CLOSE_TOO_BIG, why);
            send_close(&ws->up, HR_WS_CLOSE_GOING_AWAY, "the client sent a message over headroomd's limit");
            ws_end(ws, 499, "message over max_body_size");
            return -1;
        }
        if (s->watch && s->msg_len + h->len > ws->w->d->cfg->max_response_bytes) s->watch = 0; /* relayed unread */
        if ((s->hold || s->watch) && msg_room(s, h->len)) {
            if (s->hold) {
                bad_frame(s, HR_WS_CLOSE_TOO_BIG, "headroomd ran out of memory for the message");
                return -1;
            }
            s->watch = 0;
        }
        if (!s->hold) put(o, s->head, h->head_len);
        return 0;
    }
    s->ctl_len = 0;
    if (!s->from_client) put(o, s->head, h->head_len);
    return 0;
}

static void frame_data(struct side *s, const uint8_t *p, size_t n)
{
    struct hr_ws *ws = s->ws;
    struct side *o = s->from_client ? &ws->up : &ws->cl;
    if (s->h.opcode >= HR_WS_CLOSE) {
        memcpy(s->ctl + s->ctl_len, p, n);
        s->ctl_len += n;
        if (!s->from_client) put(o, p, n);
        return;
    }
    if (s->hold || s->watch) {
        memcpy(s->msg + s->msg_len, p, n);
        if (s->h.masked) hr_ws_unmask((uint8_t *)s->msg + s->msg_len, n, s->h.mask, s->got);
        s->msg_len += n;
    }
    if (!s->hold) put(o, p, n);
}

/* A control frame is whole. */
static int control_end(struct side *s)
{
    struct hr_ws *ws = s->ws;
    struct side *o = s->from_client ? &ws->up : &ws->cl;
    int code = 0;
    if (s->h.opcode == HR_WS_CLOSE) {
        uint8_t p[125];
        memcpy(p, s->ctl, s->ctl_len);
        if (s->h.masked) hr_ws_unmask(p, s->ctl_len, s->h.mask, 0);
        /* a client's is checked before it goes on; the upstream's went on as it came */
        if (!hr_ws_close_valid(p, s->ctl_len, &code) && s->from_client) {
            bad_frame(s, HR_WS_CLOSE_PROTOCOL, "close frame with a code no peer may send or a reason not in UTF-8");
            return -1;
        }
    }
    if (s->from_client) { /* passed on as it came, now that it is whole */
        put(o, s->head, s->h.head_len);
        put(o, s->ctl, s->ctl_len);
    }
    if (s->h.opcode != HR_WS_CLOSE) return 0;
    s->close_recv = 1;
    o->close_sent = 1;
    HR_DEBUG(LOGGER, "%s: WebSocket %s closed with %d", ws->id, s->name, code);
    if (s->close_sent) { /* the answer to the other side's close: the handshake is done */
        ws_end(ws, o->from_client ? 499 : 502, o->from_client ? "client closed the WebSocket" : "upstream closed the WebSocket");
        return -1;
    }
    ws->close_deadline = hr_monotonic_ms() + CLOSE_WAIT_MS;
    return 0;
}

/* A frame is whole. Returns -1 when the WebSocket is ending, 1 when the
 * client's message waits for the fleet's rate verdict. */
static int frame_end(struct side *s)
{
    struct hr_ws *ws = s->ws;
    if (s->h.opcode >= HR_WS_CLOSE) return control_end(s);
    if (!s->h.fin) return 0;
    s->msg_t0 = s->read_at;
    if (s->hold && client_text(ws, s->msg, s->msg_len)) {
        ws->held_raw = s->msg; /* the message's bytes go with it */
        ws->held_len = s->msg_len;
        s->msg = NULL;
        s->msg_cap = 0;
        msg_reset(s);
        return 1;
    }
    if (!s->hold && s->watch) upstream_text(ws, s->msg, s->msg_len);
    msg_reset(s);
    return ws->ending ? -1 : 0;
}

/* The client's bytes after a held message wait with it, and its socket is
 * not read until the verdict is in: messages keep their order. */
static void hold_rest(struct hr_ws *ws, const uint8_t *buf, size_t len)
{
    hr_tunnel_pause(ws->cl.tn, 1);
    if (!len) return;
    if (!(ws->rest = malloc(len))) {
        bad_frame(&ws->cl, HR_WS_CLOSE_TOO_BIG, "headroomd ran out of memory for the message");
        return;
    }
    memcpy(ws->rest, buf, len);
    ws->rest_len = len;
    ws->rest_at = ws->cl.read_at;
}

/* `len` bytes from side `s` that arrived at `at` (monotonic ms): a message
 * they complete was whole then, however late it is read. */
static void side_bytes(struct side *s, const uint8_t *buf, size_t len, double at)
{
    struct hr_ws *ws = s->ws;
    s->read_at = at;
    while (len && !ws->ending) {
        if (s->close_recv) return; /* nothing counts after a side's close frame */
        if (!s->in_payload) {
            size_t take = len < sizeof s->head - s->head_have ? len : sizeof s->head - s->head_have;
            memcpy(s->head + s->head_have, buf, take);
            const char *why = NULL;
            int r = hr_ws_parse_head(s->head, s->head_have + take, s->from_client, &s->h, &why);
            if (r < 0) {
                bad_frame(s, HR_WS_CLOSE_PROTOCOL, why);
                return;
            }
            if (r == 0) {
                s->head_have += take;
                return;
            }
            size_t used = (size_t)r - s->head_have;
            buf += used;
            len -= used;
            s->head_have = 0;
            s->got = 0;
            if (frame_begin(s)) return;
            s->in_payload = 1;
        }
        uint64_t left = s->h.len - s->got;
        size_t n = len < left ? len : (size_t)left;
        if (n) frame_data(s, buf, n);
        s->got += n;
        buf += n;
        len -= n;
        if (s->got == s->h.len) {
            s->in_payload = 0;
            int r = frame_end(s);
            if (r > 0) hold_rest(ws, buf, len);
            if (r) return;
        }
    }
}

static void side_read(void *ud, struct hr_tunnel *t, const uint8_t *buf, size_t len)
{
    (void)t;
    struct side *s = ud;
    s->ws->last_io = hr_monotonic_ms();
    side_bytes(s, buf, len, s->ws->last_io);
}

/* The fleet's rate verdict for the held response.create is in: it goes on
 * (or is refused), then what the client sent after it. */
static void rate_verdict_in(struct proxy_req *r)
{
    struct hr_ws *ws = r->w->ws;
    while (ws && ws->held_r != r) ws = ws->next;
    if (!ws) { /* not reachable: ws_free cancels the wait */
        hr_proxy_free(r);
        return;
    }
    json_t *body = ws->held_body;
    char *raw = ws->held_raw, *rest = ws->rest;
    size_t raw_len = ws->held_len, rest_len = ws->rest_len;
    double rest_at = ws->rest_at;
    ws->held_r = NULL;
    ws->held_body = NULL;
    ws->held_raw = ws->rest = NULL;
    ws->held_len = ws->rest_len = 0;
    if (ws->ending) hr_proxy_free(r); /* closed meanwhile: never answered, as a POST whose client left */
    else create_checked(ws, r, body, raw, raw_len);
    json_decref(body);
    free(raw);
    if (rest && !ws->ending) {
        ws->last_io = hr_monotonic_ms();
        side_bytes(&ws->cl, (const uint8_t *)rest, rest_len, rest_at);
    }
    free(rest);
    if (ws->ending || ws->held_r) return;
    if (!ws->up.tn || hr_tunnel_pending(ws->up.tn) <= HIGH_WATER) hr_tunnel_pause(ws->cl.tn, 0);
    close_if_drained(ws);
}

/* ------------------------------------------------------------ life */

static void ws_free(struct hr_ws *ws)
{
    while (ws->pend) finish_oldest(ws, 499, 1, "the WebSocket closed before the response ended");
    if (ws->held_r) hr_proxy_free(ws->held_r); /* cancels its wait; never answered, as a POST whose client left */
    json_decref(ws->held_body);
    free(ws->held_raw);
    free(ws->rest);
    if (ws->prev) ws->prev->next = ws->next;
    else ws->w->ws = ws->next;
    if (ws->next) ws->next->prev = ws->prev;
    ws->w->inflight--;
    hr_ws_count_open(-1);
    hr_tunnel_free(ws->cl.tn);
    hr_tunnel_free(ws->up.tn);
    if (ws->timer) event_free(ws->timer);
    free(ws->cl.msg);
    free(ws->up.msg);
    free(ws->session);
    free(ws);
}

/* Stop relaying: pending responses counted as failed (`why`), both sides
 * shut once what was written is out; freed when both have closed or after
 * LINGER_MS. */
static void ws_end(struct hr_ws *ws, int status, const char *why)
{
    if (ws->ending) return;
    ws->ending = 1;
    /* a client that left is a 499, as over HTTP; anything else: no answer */
    while (ws->pend) finish_oldest(ws, status, status != 499, why ? why : "the WebSocket closed before the response ended");
    if (ws->cl.tn && !ws->cl.gone) {
        hr_tunnel_pause(ws->cl.tn, 0);
        hr_tunnel_shutdown(ws->cl.tn);
    }
    if (ws->up.tn && !ws->up.gone) {
        hr_tunnel_pause(ws->up.tn, 0);
        hr_tunnel_shutdown(ws->up.tn);
    }
    struct timeval tv = {LINGER_MS / 1000, (LINGER_MS % 1000) * 1000};
    evtimer_add(ws->timer, &tv);
}

static void side_drained(void *ud, struct hr_tunnel *t)
{
    (void)t;
    struct side *s = ud;
    struct side *o = s == &s->ws->cl ? &s->ws->up : &s->ws->cl;
    if (o->tn && !s->ws->ending && !(o == &s->ws->cl && s->ws->held_r)) hr_tunnel_pause(o->tn, 0);
}

static void side_ended(void *ud, struct hr_tunnel *t, const char *why)
{
    (void)t;
    struct side *s = ud;
    struct hr_ws *ws = s->ws;
    struct side *o = s->from_client ? &ws->up : &ws->cl;
    s->gone = 1;
    if (ws->ending) {
        if (ws->cl.gone && ws->up.gone) ws_free(ws);
        return;
    }
    char reason[240];
    if (s->from_client) {
        HR_DEBUG(LOGGER, "%s: WebSocket client %s%s", ws->id, *why ? "connection failed: " : "closed its connection",
                 why);
        send_close(o, HR_WS_CLOSE_GOING_AWAY, "the client went away");
        ws_end(ws, 499, "client closed the connection");
    } else {
        if (s->close_recv) snprintf(reason, sizeof reason, "upstream closed the connection");
        else snprintf(reason, sizeof reason, "upstream closed the connection without a close frame%s%s", *why ? ": " : "",
                      why);
        HR_DEBUG(LOGGER, "%s: WebSocket %s", ws->id, reason);
        send_close(o, s->close_recv ? HR_WS_CLOSE_NORMAL : HR_WS_CLOSE_BAD_GATEWAY, reason);
        ws_end(ws, 502, reason);
    }
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct hr_ws *ws = arg;
    if (ws->ending) { /* lingered long enough */
        ws_free(ws);
        return;
    }
    double now = hr_monotonic_ms();
    if (ws->close_deadline > 0 && now >= ws->close_deadline) {
        send_close(&ws->cl, HR_WS_CLOSE_GOING_AWAY, "the other side did not answer the close");
        send_close(&ws->up, HR_WS_CLOSE_GOING_AWAY, "the other side did not answer the close");
        ws_end(ws, 502, "the close was not answered");
        return;
    }
    if (now - ws->last_io >= ws->idle_ms) {
        char why[120];
        snprintf(why, sizeof why, "no frame for upstream_timeout (%.0f s)", ws->idle_ms / 1000);
        HR_DEBUG(LOGGER, "%s: WebSocket idle: %s", ws->id, why);
        send_close(&ws->cl, HR_WS_CLOSE_GOING_AWAY, why);
        send_close(&ws->up, HR_WS_CLOSE_GOING_AWAY, why);
        ws_end(ws, 504, why);
        return;
    }
    double due = ws->last_io + ws->idle_ms - now;
    if (ws->close_deadline > 0 && ws->close_deadline - now < due) due = ws->close_deadline - now;
    if (due > 1000) due = 1000;
    struct timeval tv = hr_timeval_ms(due);
    evtimer_add(ws->timer, &tv);
}

static const struct hr_tunnel_cbs side_cbs = {side_read, side_drained, side_ended};

/* The client's 101: the upstream's headers less hop-by-hop and extensions
 * (none was asked for), with the upgrade's own. */
static char *client_head(const struct hr_header *h, size_t n, size_t *len)
{
    static const char first[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n";
    size_t need = sizeof first + 2;
    for (size_t i = 0; i < n; i++) need += strlen(h[i].name) + strlen(h[i].value) + 4;
    char *b = malloc(need), *w = b;
    if (!b) return NULL;
    memcpy(w, first, sizeof first - 1);
    w += sizeof first - 1;
    for (size_t i = 0; i < n; i++) {
        if (hr_proxy_is_hop_by_hop(h[i].name) || !strcasecmp(h[i].name, "sec-websocket-extensions")) continue;
        w += sprintf(w, "%s: %s\r\n", h[i].name, h[i].value);
    }
    memcpy(w, "\r\n", 2);
    *len = (size_t)(w + 2 - b);
    return b;
}

void hr_ws_upgraded(struct proxy_req *p, const struct hr_header *h, size_t n)
{
    struct hr_worker *w = p->w;
    struct hr_tunnel *up = hr_transfer_take_tunnel(p->t);
    p->t = NULL; /* the transfer ends once on_headers returns */
    hr_relay_detach_client(p);
    struct hr_req *req = p->req;
    p->req = NULL;
    struct hr_ws *ws = calloc(1, sizeof *ws);
    size_t head_len = 0;
    char *head = client_head(h, n, &head_len);
    if (ws && req) {
        const char *session = hr_req_header(req, "x-headroom-session");
        ws->session = session ? strdup(session) : NULL;
        hr_admit_rate_key_of(hr_req_header(req, "authorization"), hr_req_header(req, "x-api-key"), ws->rate_key);
    }
    char *pre = NULL;
    size_t pre_len = 0;
    int fd = req && ws && up && head ? hr_req_take_socket(req, &pre, &pre_len) : -1;
    if (fd < 0) {
        if (req) { /* the client went away, or no memory: it gets nothing more */
            hr_req_add_header(req, "Connection", "close");
            hr_send_api_error(req, p->api, 502, HR_API_ERR_INTERNAL, "headroomd could not relay the WebSocket");
        }
        HR_WARN(LOGGER, "%s: WebSocket to %s not relayed: %s", p->request_id, p->path,
                !req ? "the client went away" : "out of memory");
        hr_tunnel_free(up);
        free(head);
        if (ws) free(ws->session);
        free(ws);
        hr_proxy_free(p);
        return;
    }
    ws->w = w;
    ws->api = hr_api_for_websocket(p->path);
    memcpy(ws->id, p->request_id, sizeof ws->id);
    memcpy(ws->stack, p->stack, sizeof ws->stack);
    memcpy(ws->traceparent, p->traceparent, sizeof ws->traceparent);
    ws->max_msg = w->d->cfg->max_body_bytes;
    ws->idle_ms = 1000.0 * w->d->cfg->upstream_timeout_s;
    ws->last_io = hr_monotonic_ms();
    ws->cl = (struct side){.ws = ws, .from_client = 1, .name = "client"};
    ws->up = (struct side){.ws = ws, .from_client = 0, .name = "upstream", .tn = up};
    ws->cl.tn = hr_tunnel_new(w->base, fd, NULL, pre, pre_len);
    free(pre);
    ws->timer = evtimer_new(w->base, timer_cb, ws);
    w->inflight++; /* max_connections: the WebSocket is one request in flight for as long as it is open */
    hr_ws_count_open(1);
    ws->next = w->ws;
    if (w->ws) w->ws->prev = ws;
    w->ws = ws;
    hr_proxy_free(p); /* the handshake is not counted as a request: each response.create is */
    if (!ws->cl.tn || !ws->timer || hr_tunnel_start(ws->cl.tn, &side_cbs, &ws->cl) ||
        hr_tunnel_start(up, &side_cbs, &ws->up)) {
        HR_WARN(LOGGER, "%s: WebSocket not relayed: out of memory", ws->id);
        free(head);
        ws->cl.gone = ws->up.gone = 1;
        ws_free(ws);
        return;
    }
    hr_tunnel_write(ws->cl.tn, head, head_len);
    free(head);
    HR_DEBUG(LOGGER, "%s: WebSocket relayed", ws->id);
    struct timeval tv = {1, 0};
    evtimer_add(ws->timer, &tv);
}

int hr_ws_drain(struct hr_worker *w)
{
    int open = 0;
    for (struct hr_ws *ws = w->ws, *next; ws; ws = next) {
        next = ws->next;
        open++;
        if (ws->ending || ws->draining) continue;
        ws->draining = 1;
        close_if_drained(ws);
    }
    return open;
}

int hr_ws_abort_all(struct hr_worker *w, const char *why)
{
    int n = 0;
    for (; w->ws; n++) {
        struct hr_ws *ws = w->ws;
        send_close(&ws->cl, HR_WS_CLOSE_GOING_AWAY, "headroomd is shutting down");
        send_close(&ws->up, HR_WS_CLOSE_GOING_AWAY, "headroomd is shutting down");
        while (ws->pend) finish_oldest(ws, 503, 1, why);
        ws_free(ws);
    }
    return n;
}
