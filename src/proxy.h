/* proxy.h — one proxied request, as the files that handle it share it:
 *   proxy.c       route, parse, compress, forward;
 *   admission.c   what may refuse or short-cut a request: max_connections,
 *                 budget, rate limit, response cache;
 *   relay.c       the upstream's answer to the client, whole or streamed,
 *                 and headroom_retrieve rounds;
 *   accounting.c  the request's figures (tokens, usage, cost) and its one
 *                 event; the only writer of tokens sent and of the session
 *                 record. */
#ifndef HR_PROXY_H
#define HR_PROXY_H
#include "api/api.h"
#include "daemon.h"
#include "http_server.h"
#include "respcache.h"
#include "sha256.h"
#include "sse.h"
#include "usage.h"

#define HR_MAX_STACK_LEN 64

struct evbuffer;
struct hr_fleet_wait;

struct proxy_req {
    struct hr_worker *w;
    struct hr_req *req;                  /* NULL once answered or the client is gone */
    int watching;                        /* hr_relay_watch_client: on_close set */
    struct hr_transfer *t;
    const struct hr_api *api;            /* the wire format (errors too, on pass-through routes) */
    int llm;                             /* a route an adapter owns: compressed, priced, counted */
    char *model;
    char stack[HR_MAX_STACK_LEN + 1];
    char traceparent[64];                /* W3C traceparent header, "" when absent or too long */
    char request_id[40];
    char *path;
    double t_start, t_forward, t_first_byte;
    /* Overhead clients pay beyond the handler: the forwarded request waiting
     * in our loop before curl sends it (connecting excluded), and a buffered
     * answer's way from its last upstream byte to the client. */
    double send_wait_ms, reply_ms;
    struct hr_pipeline_result pr;        /* tokens_after: written by accounting.c after the pipeline */
    int pipeline_ran;
    /* Passthrough (optimize no): the body is forwarded unread and counted
     * when the request ends (accounting.c), off the request path. */
    int count_late, counted_late;
    struct late_job *late_job;           /* that count, on a compression helper (accounting.c) */
    /* Optimized: the rest of the request's count (hr_pipeline_count_finish),
     * on a helper while the upstream works; p->pr is the helper's until
     * hr_acct_settle. body_in_len: the client's body, as it came. */
    struct rest_job *rest_job;
    size_t body_in_len;
    /* ... and its accounting waits one loop turn, so the answer is written
     * to the client first; hr_proxy_free leaves the request to it. */
    int finish_deferred, free_requested, late_status, late_failed;
    double t_finished;
    char *late_error;
    struct proxy_req *deferred_next;
    char *up_body;                       /* what the upstream transfer sends (borrowed by it) */
    size_t up_body_len;
    long status;
    int streaming;                       /* relaying chunk by chunk */
    int reply_started;
    int paused;                          /* on_data asked the upstream to wait for the client */
    struct evbuffer *body;               /* buffered (non-streamed) answer */
    struct evbuffer *spare_body;         /* an empty one kept with a spare request (proxy.c) */
    int too_large;
    struct hr_sse_parser *sse;
    struct hr_usage usage;               /* the last round's */
    struct hr_usage earlier_usage;       /* rounds before the last (headroom_retrieve) */
    /* headroom_retrieve: the body as sent, kept to answer the model's calls */
    json_t *sent_body;
    int retrieve_rounds;
    char stream_error[64];               /* the provider's error event in the stream: its type or code (relay.c) */
    char *url;
    char *up_headers; /* "Name: value\r\n" lines, kept for headroom_retrieve follow-ups */
    /* response cache: key of a cacheable request, and a hit */
    int cacheable, cached;
    uint8_t cache_key[HR_RESPCACHE_KEY_LEN];
    struct hr_fleet_wait *fleet_wait;    /* fetching originals for headroom_retrieve (fleet.c) */
    int fleet_round;                     /* the retrieve round those were fetched for, + 1 */
    char *logged_body;                   /* the client's body, only with log_messages */
    size_t logged_body_len;
    /* Content-Encoding (body_codec.c): a changed body is sent encoded the
     * same way; one forwarded as sent is read (model, late count) from its
     * decoded copy. */
    int codec;
    char *count_body;
    size_t count_body_len;
    struct proxy_req *live_prev, *live_next; /* the worker's in-flight list */
    int upgrade;                         /* a WebSocket handshake (ws_relay.c takes its 101) */
    struct proxy_req *ws_next;           /* ws_relay.c: the next pending response.create */
};

/* proxy.c */
void hr_proxy_free(struct proxy_req *p);
/* A new request tracked by the worker (max_connections, drain), with its
 * request id; `req` NULL for one that has no HTTP request of its own (a
 * WebSocket's response.create). NULL when out of memory. */
struct proxy_req *hr_proxy_track(struct hr_worker *w, struct hr_req *req, const struct hr_api *api, int llm,
                                 const char *path);
/* `text` (taken) as the upstream gets it: encoded the way the client sent
 * its body, or as it is; NULL when out of memory. */
char *hr_proxy_encode_body(const struct proxy_req *p, char *text, size_t *len);
/* Passthrough: the text its count reads, the decoded copy of a body sent
 * with Content-Encoding, else the forwarded bytes. */
const char *hr_proxy_count_text(const struct proxy_req *p, size_t *len);
/* Hop-by-hop headers are never forwarded, either way. */
int hr_proxy_is_hop_by_hop(const char *name);
/* Upstream options from the config. */
struct hr_transfer_opts hr_proxy_transfer_opts(const struct proxy_req *p);

/* admission.c — each returns 1 when it answered the client (refused or served). */
int hr_admit_connection(struct hr_worker *w, struct hr_req *req, const struct hr_api *api,
                        const char *method, const char *path);
int hr_admit_from_cache(struct proxy_req *p, const json_t *body);
/* The response cache's key of a request: 0, or HR_EINVAL (not cacheable). */
int hr_admit_cache_key(struct hr_req *req, const struct hr_api *api, const char *path, const json_t *body,
                       uint8_t key[HR_RESPCACHE_KEY_LEN]);
/* charge 0: is there room (before compressing), `tokens` an estimate of the
 * body's size (0: unknown) for the Retry-After of a refusal; 1: take the
 * request and its tokens (the count after compressing). */
int hr_admit_rate(struct proxy_req *p, uint64_t tokens, int charge);
/* A body's tokens before it is counted, for a Retry-After: ~4 bytes a token. */
#define HR_TOKENS_ESTIMATE(bytes) ((uint64_t)(bytes) / 4)
/* The rate limit for one key (hr_admit_rate_key_of: the Authorization value,
 * else x-api-key's): 0 when admitted (charged when `charge`), else 1 with
 * the 429's message and its Retry-After seconds. */
int hr_admit_rate_key(const uint8_t key[HR_SHA256_LEN], uint64_t tokens, int charge, char *msg, size_t msglen,
                      int *retry_after_s);
void hr_admit_rate_key_of(const char *authorization, const char *x_api_key, uint8_t key[HR_SHA256_LEN]);
/* Routes that bill model tokens (gated by the budget). */
int hr_admit_is_model_route(const char *path);
/* Keep a cacheable 200 answer for the next identical request. */
void hr_admit_cache_store(struct proxy_req *p);

/* relay.c */
extern const struct hr_transfer_cbs hr_relay_cbs;
/* Watch for the client going away (the request's on_close). */
void hr_relay_watch_client(struct proxy_req *p);
/* Before the final reply: stop watching the client. */
void hr_relay_detach_client(struct proxy_req *p);
/* Shutdown past shutdown_timeout: end the request now with an error (503,
 * or an error event on a started stream), count it, free it. */
void hr_relay_abort(struct proxy_req *p, const char *why);
/* A provider error event in a 2xx answer's stream (SSE, or a WebSocket
 * response's): keeps its type or code in p->stream_error (relay.c). */
void hr_relay_note_stream_error(struct proxy_req *p, const char *event, size_t event_len, const char *data,
                                size_t data_len);

/* accounting.c */
/* Tokens added to what is sent after the pipeline (the retrieve tool's
 * definition, retrieve rounds), capped at tokens before. */
void hr_acct_charge_sent(struct proxy_req *p, uint64_t tokens);
/* The provider's price of the answer so far (what a cache hit avoids).
 * Reads p->pr without joining a count: before forwarding, or after
 * hr_acct_settle. */
double hr_acct_cost_so_far(const struct proxy_req *p);
/* x-headroom-request-id and the token (and, unless streamed, cost) headers. */
void hr_acct_headers(struct proxy_req *p, struct hr_req *out);
/* A stream's figures, as an SSE comment at its very end. */
void hr_acct_stream_comment(struct proxy_req *p);
/* Passthrough: the forwarded body is all in and on its way; a compression
 * helper, when there is one, counts it while the upstream works. */
void hr_acct_count_start(struct proxy_req *p);
/* The request goes away: any count still made for it (this one, or the
 * compressed request's rest below) is waited for and dropped. */
void hr_acct_count_drop(struct proxy_req *p);
/* Optimized: the body is on its way; the rest of its count is made, by a
 * helper while the upstream works when the body is long. */
void hr_acct_count_rest(struct proxy_req *p);
/* Wait for that count: called before anything reads or changes p->pr or
 * the forwarded body's tree (relay callbacks, accounting). */
void hr_acct_settle(struct proxy_req *p);
/* The one place a finished request is counted and handed to the sinks. */
void hr_acct_finish(struct proxy_req *p, int status, int failed, const char *error);
/* A request refused before proxying: one event, and the live counters. */
void hr_acct_refusal(struct hr_worker *w, const char *request_id, const struct hr_api *api, const char *path,
                     const char *stack, int status, const char *why);
/* An error answer for a tracked request, with its request id. */
void hr_acct_send_error(struct proxy_req *p, int status, enum hr_api_error kind, const char *message);
#endif
