/* relay.c — the upstream's answer to the client: headers filtered, an SSE
 * stream relayed chunk by chunk with backpressure (usage read on the way),
 * other answers buffered whole; a model turn made only of headroom_retrieve
 * calls answered from the CCR store and sent again, one that also calls the
 * client's tools relayed without them; the client going away noticed at
 * once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <event2/buffer.h>
#include "fleet.h"
#include "json_dump.h"
#include "json_load.h"
#include "log.h"
#include "pipeline.h"
#include "proxy.h"
#include "retrieve_tool.h"
#include "stats.h"
#include "ws_relay.h"

#define LOGGER "headroom.proxy"
#define STREAM_HIGH_WATER (256 * 1024)   /* client output buffered before we pause upstream */
#define MAX_RETRIEVE_ROUNDS 3
#define PER_MESSAGE_OVERHEAD 3           /* as hr_request_tokens counts a message */

void hr_relay_detach_client(struct proxy_req *p)
{
    if (p->req && p->watching) {
        hr_req_on_close(p->req, NULL, NULL);
        hr_req_on_drained(p->req, NULL, NULL);
    }
    if (p->req) hr_req_on_body(p->req, NULL, NULL); /* cut-through: the rest of the body is not ours */
    p->watching = 0;
}

/* The client went away before its answer ended (the server reads the
 * socket all along, so a waiting request learns it at once, as nginx's
 * 499): stop the upstream transfer and count the request. */
static void on_client_closed(struct hr_req *req, void *arg)
{
    (void)req;
    struct proxy_req *p = arg;
    p->req = NULL;
    p->watching = 0;
    if (p->t) {
        hr_transfer_abort(p->t); /* stops the upstream transfer now */
        p->t = NULL;
    }
    hr_acct_finish(p, 499, 0, "client closed the connection");
    hr_proxy_free(p);
}

void hr_relay_watch_client(struct proxy_req *p)
{
    hr_req_on_close(p->req, on_client_closed, p);
    p->watching = 1;
}

/* A provider error event in a stream (SSE `event: error`, Responses
 * `response.failed`, a Chat Completions `data: {"error": ...}` chunk): the
 * client got a 200 and the stream ends there, so nothing else marks it.
 * Its error type or code (else the event's name) goes to the request log
 * (stream_error) and /stats requests.stream_errors. The first one counts.
 * `event` is NUL-terminated at event_len. */
void hr_relay_note_stream_error(struct proxy_req *p, const char *event, size_t event_len, const char *data,
                                size_t data_len)
{
    if (p->stream_error[0]) return; /* the first one counts */
    int named = (event_len == 5 && !memcmp(event, "error", 5)) ||
                (event_len == 15 && !memcmp(event, "response.failed", 15));
    if (!named) { /* Chat Completions: an unnamed event whose object starts with "error" */
        size_t i = 0;
        while (i < data_len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n')) i++;
        if (i >= data_len || data[i++] != '{') return;
        while (i < data_len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n')) i++;
        if (data_len - i < 7 || memcmp(data + i, "\"error\"", 7)) return;
    }
    json_t *j = hr_json_load(data, data_len, NULL);
    json_t *err = json_object_get(j, "error"), *resp_err = json_object_get(json_object_get(j, "response"), "error");
    const char *kind = json_string_value(json_object_get(err, "type"));
    if (!kind) kind = json_string_value(json_object_get(err, "code"));
    if (!kind) kind = json_string_value(json_object_get(j, "code"));
    if (!kind) kind = json_string_value(json_object_get(resp_err, "code"));
    if (!kind) kind = json_string_value(json_object_get(resp_err, "type"));
    size_t kind_len = kind ? strlen(kind) : 0;
    if (!kind_len) { /* the event's name: event_len bytes, not a C string */
        kind = named ? event : "error";
        kind_len = named ? event_len : 5;
    }
    size_t n = 0;
    for (; n < kind_len && n + 1 < sizeof p->stream_error; n++) /* a provider's text: printable ASCII only */
        p->stream_error[n] = kind[n] > 0x20 && kind[n] < 0x7f ? kind[n] : '_';
    p->stream_error[n] = '\0';
    json_decref(j);
}

static void sse_event(void *ud, const char *event, size_t event_len, const char *data, size_t data_len)
{
    struct proxy_req *p = ud;
    if (data && data_len) p->api->usage_from_sse(event, event_len, data, data_len, &p->usage);
    if (data && !p->stream_error[0]) hr_relay_note_stream_error(p, event, event_len, data, data_len);
}

/* The client took what was waiting: a paused upstream may go on. */
static void chunk_flushed(struct hr_req *req, void *arg)
{
    (void)req;
    struct proxy_req *p = arg;
    if (p->t && p->paused) {
        p->paused = 0;
        hr_transfer_resume(p->t);
    }
}

static void on_headers(void *ud, long status, const struct hr_header *h, size_t n)
{
    struct proxy_req *p = ud;
    hr_acct_settle(p); /* the count made while the upstream worked */
    if (status == 101 && p->upgrade) { /* a WebSocket: relayed from now on, p freed */
        hr_ws_upgraded(p, h, n);
        return;
    }
    p->status = status;
    p->t_first_byte = hr_monotonic_ms();
    if (p->t) p->send_wait_ms = hr_transfer_send_wait_ms(p->t);
    if (!p->req) return;
    struct hr_req *out = p->req;
    if (p->retrieve_rounds) hr_req_clear_headers(out); /* only the last round's headers */
    int event_stream = 0;
    for (size_t i = 0; i < n; i++) {
        if (hr_proxy_is_hop_by_hop(h[i].name)) continue;
        if (!strcasecmp(h[i].name, "content-type") && !strncasecmp(h[i].value, "text/event-stream", 17))
            event_stream = 1;
        hr_req_add_header(out, h[i].name, h[i].value);
    }
    /* LLM answers are buffered (usage and token headers need the whole body)
     * unless they are a stream; everything else is relayed as it comes. */
    p->streaming = event_stream || !p->llm;
    if (p->streaming) {
        if (event_stream && p->llm) p->sse = hr_sse_parser_new(sse_event, p, HR_SSE_DEFAULT_MAX_EVENT);
        if (p->sse) hr_sse_skip_oversized(p->sse, 1); /* a huge event is relayed, not parsed; usage after it still is */
        hr_acct_headers(p, out);
        hr_req_on_drained(p->req, chunk_flushed, p);
        hr_req_start(p->req, (int)status);
        p->reply_started = 1;
    } else {
        p->body = p->spare_body ? p->spare_body : evbuffer_new(); /* an empty one kept by a spare request */
        p->spare_body = NULL;
    }
}


static int on_data(void *ud, const char *buf, size_t len)
{
    struct proxy_req *p = ud;
    hr_acct_settle(p); /* the count made while the upstream worked */
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
     * the upstream client hands the same bytes again when chunk_flushed
     * resumes it. */
    if (hr_req_pending(p->req) > STREAM_HIGH_WATER) {
        p->paused = 1;
        return 1;
    }
    if (p->sse && hr_sse_feed(p->sse, buf, len) < 0) {
        hr_sse_parser_free(p->sse); /* an oversized event: keep relaying, stop parsing */
        p->sse = NULL;
    }
    hr_req_chunk(p->req, buf, len);
    return 0;
}

/* A stream that broke after it started: tell the client in the format's
 * own SSE error shape (SDKs raise it), then end the stream. */
static void stream_error_event(struct proxy_req *p, const char *why)
{
    char *text = p->api->stream_error(why);
    if (!text) return;
    hr_req_chunk(p->req, text, strlen(text));
    free(text);
}

static void on_done(void *ud, enum hr_xfer_result rc, const char *why);

/* The originals the model asked for are here (or known missing): go on. */
static void retrieve_fetched(struct proxy_req *p) { on_done(p, HR_XFER_OK, ""); }

/* The model answered with headroom_retrieve calls only: answer them from the
 * CCR store and ask again, so the client sees a normal answer. Returns 1 when
 * a follow-up request is under way. */
static int answer_retrieve_calls(struct proxy_req *p)
{
    if (!p->sent_body || p->status != 200 || p->retrieve_rounds >= MAX_RETRIEVE_ROUNDS || !p->body) return 0;
    size_t len = evbuffer_get_length(p->body);
    json_t *answer = hr_json_load((const char *)evbuffer_pullup(p->body, -1), len, NULL);
    if (!answer || !hr_retrieve_only_calls(p->api, answer)) {
        json_decref(answer);
        return 0;
    }
    if (hr_fleet_retrieve_wait(p, answer, retrieve_fetched)) { /* originals stored by another instance */
        json_decref(answer);
        return 1;
    }
    json_t *items = json_incref(json_object_get(p->sent_body, p->api->items_key));
    size_t first_new = json_array_size(items);
    int n = hr_retrieve_answer(p->api, p->sent_body, answer);
    struct hr_usage u = {0};
    p->api->usage_from_json(answer, &u);
    json_decref(answer);
    json_t *was = items;
    items = json_object_get(p->sent_body, p->api->items_key);
    int fresh = items != was; /* compared while `was` is held: no address reuse */
    json_decref(was);
    if (n <= 0) return 0;
    /* What the follow-up sends again is counted as sent: retrieval gives
     * back part of the saving, honestly. (A string input became a list:
     * its text was already counted. A list the adapter started anew, a
     * conversation's, is all new.) */
    if (fresh) first_new = 0;
    uint64_t extra = PER_MESSAGE_OVERHEAD * (json_array_size(items) - first_new);
    for (size_t i = first_new; i < json_array_size(items); i++)
        extra += hr_item_tokens(p->api, p->model, json_array_get(items, i)); /* signatures, encrypted reasoning as billed */
    hr_acct_charge_sent(p, extra);
    size_t text_len;
    char *text = hr_json_dump_compact(p->sent_body, &text_len); /* the client's 0.7 stays 0.7 */
    if (text) text = hr_proxy_encode_body(p, text, &text_len); /* with the client's Content-Encoding */
    if (!text) return 0;
    struct hr_transfer_opts opts = hr_proxy_transfer_opts(p);
    struct hr_transfer *t = hr_transfer_start(p->w->up, "POST", p->url, p->up_headers, text, text_len, &opts,
                                              &hr_relay_cbs, p);
    if (!t) {
        free(text);
        return 0;
    }
    free(p->up_body); /* the finished round's body */
    p->up_body = text;
    p->up_body_len = text_len;
    hr_usage_add(&p->earlier_usage, &u);
    p->retrieve_rounds++;
    HR_INFO(LOGGER, "%s: answered %d headroom_retrieve call%s from the CCR store (round %d)", p->request_id, n,
            n == 1 ? "" : "s", p->retrieve_rounds);
    evbuffer_free(p->body);
    p->body = NULL;
    p->t = t;
    return 1;
}

/* The answer the client gets, re-serialised after headroomd edited it. */
static void replace_body(struct proxy_req *p, const json_t *answer)
{
    size_t len;
    char *text = hr_json_dump_compact(answer, &len); /* an echoed temperature 0.7 stays 0.7 */
    if (!text) return; /* out of memory: the answer as the provider sent it */
    evbuffer_drain(p->body, evbuffer_get_length(p->body));
    evbuffer_add(p->body, text, len);
    free(text);
}

/* A relayed answer's end. Its write is queued and leaves once this loop
 * turn's callbacks are done, so the request is accounted first (/stats and
 * the sinks on the request's thread count it by the time the client has
 * it) and freed first too: writing before the freeing was measured slower
 * for one waiting client (bench/README.md, session 32). `body`: the whole
 * answer, or NULL to end a stream. */
static void end_answer(struct proxy_req *p, struct evbuffer *body)
{
    if (body) hr_req_send_buffer(p->req, (int)p->status, body);
    else hr_req_end(p->req);
    p->req = NULL;
    hr_acct_finish(p, (int)p->status, 0, NULL);
    hr_proxy_free(p);
}

static void on_done(void *ud, enum hr_xfer_result rc, const char *why)
{
    struct proxy_req *p = ud;
    hr_acct_settle(p); /* the count made while the upstream worked */
    double t_upstream_done = hr_monotonic_ms();
    p->t = NULL; /* freed by upstream.c after we return */
    if (!p->req) return;
    if (rc == HR_XFER_OK && !p->streaming && !p->too_large && answer_retrieve_calls(p)) return;
    hr_retrieve_settled(p->request_id, rc == HR_XFER_OK && !p->too_large && p->status >= 200 && p->status < 300);
    hr_relay_detach_client(p);
    if (p->too_large) {
        char msg[160];
        snprintf(msg, sizeof msg, "upstream answer larger than max_response_size (%zu bytes); raise max_response_size in headroom.conf",
                 p->w->d->cfg->max_response_bytes);
        hr_req_clear_headers(p->req);
        hr_acct_send_error(p, 502, HR_API_ERR_UPSTREAM, msg);
        hr_acct_finish(p, 502, 1, "response too large");
        hr_proxy_free(p);
        return;
    }
    if (rc != HR_XFER_OK) {
        char msg[512];
        int timeout = rc == HR_XFER_TIMEOUT;
        snprintf(msg, sizeof msg, "headroomd could not get an answer from the %s API: %s",
                 hr_provider_name(p->api->provider), why);
        HR_WARN(LOGGER, "%s %s: %s", p->request_id, p->path, msg);
        int status = timeout ? 504 : 502;
        if (p->reply_started) {
            stream_error_event(p, msg);
            hr_req_end(p->req);
            p->req = NULL;
            status = (int)p->status;
        } else {
            /* Our own answer: none of the upstream's headers belong on it. */
            hr_req_clear_headers(p->req);
            hr_acct_send_error(p, status, HR_API_ERR_UPSTREAM, msg);
        }
        hr_acct_finish(p, status, 1, why);
        hr_proxy_free(p);
        return;
    }
    if (p->streaming) {
        if (p->llm) hr_acct_stream_comment(p);
        end_answer(p, NULL);
        return;
    }
    if (p->llm && p->body) {
        size_t len = evbuffer_get_length(p->body);
        const char *text = (const char *)evbuffer_pullup(p->body, -1);
        if (p->sent_body) { /* the answer may name headroom_retrieve: edit it */
            json_t *j = hr_json_load(text, len, NULL);
            if (j) p->api->usage_from_json(j, &p->usage);
            /* headroom_retrieve called beside the client's own tools, or
             * alone once the rounds are spent: the client gets its calls
             * only, or a finished turn (it would meet a tool it never
             * defined: the Agents SDK raises, Claude Code answers "No such
             * tool available"). */
            int all = 0;
            int left_out = j && p->status == 200 ? hr_retrieve_strip_calls(p->api, p->sent_body, j, p->retrieve_rounds,
                                                                           &all) : 0;
            if (left_out && all && p->retrieve_rounds >= MAX_RETRIEVE_ROUNDS)
                HR_INFO(LOGGER, "%s: %d headroom_retrieve call%s left out of the answer: the model still asked after %d "
                        "answered rounds (the limit)", p->request_id, left_out, left_out == 1 ? "" : "s",
                        p->retrieve_rounds);
            else if (left_out && all)
                HR_INFO(LOGGER, "%s: %d headroom_retrieve call%s left out of the answer: headroomd could not answer "
                        "%s", p->request_id, left_out, left_out == 1 ? "" : "s", left_out == 1 ? "it" : "them");
            else if (left_out)
                HR_INFO(LOGGER, "%s: %d headroom_retrieve call%s made beside the client's tools left out of the answer",
                        p->request_id, left_out, left_out == 1 ? "" : "s");
            if ((j && hr_retrieve_hide_tool(p->api, j)) || left_out) replace_body(p, j);
            json_decref(j);
        } else {
            /* Only "usage" is read: parsing a whole answer (long texts,
             * tool calls) to read a few numbers costs more than the rest of
             * the relay. */
            hr_api_read_answer(p->api, text, len, &p->usage);
        }
    }
    hr_admit_cache_store(p);
    hr_acct_headers(p, p->req);
    p->reply_ms = hr_monotonic_ms() - t_upstream_done;
    end_answer(p, p->body);
}

void hr_relay_abort(struct proxy_req *p, const char *why)
{
    if (p->t) hr_transfer_abort(p->t);
    p->t = NULL;
    hr_relay_detach_client(p);
    int status = 503;
    if (!p->req) {
        /* the client is gone already: only the count is left */
    } else if (p->reply_started) {
        stream_error_event(p, why);
        hr_req_end(p->req);
        p->req = NULL;
        status = (int)p->status;
    } else {
        hr_req_clear_headers(p->req);
        hr_req_add_header(p->req, "Retry-After", "1");
        hr_req_add_header(p->req, "Connection", "close");
        hr_acct_send_error(p, 503, HR_API_ERR_OVERLOADED, why);
    }
    hr_acct_finish(p, status, 1, "aborted at shutdown");
    hr_proxy_free(p);
}

const struct hr_transfer_cbs hr_relay_cbs = {on_headers, on_data, on_done};
