/* upstream.h — HTTP transfers to the providers, on the worker's own event
 * loop. Two clients sit behind this interface: the native HTTP/1.1 client
 * (upstream_h1.c: kept-alive connections, TLS by OpenSSL, no per-request
 * set-up) for http:// and https:// URLs, and libcurl (upstream_curl.c) for
 * what the native one does not do: an HTTP proxy from the environment,
 * credentials in the URL, or `upstream_client curl`. */
#ifndef HR_UPSTREAM_H
#define HR_UPSTREAM_H
#include <stddef.h>
#include <event2/event.h>
#include "h1_parse.h"

struct hr_tunnel;

struct hr_upstream;
struct hr_transfer;

enum hr_xfer_result {
    HR_XFER_OK = 0,
    HR_XFER_TIMEOUT, /* upstream_connect_timeout_ms or upstream_timeout passed */
    HR_XFER_FAILED,  /* anything else: refused, reset, malformed answer, TLS */
};

struct hr_transfer_cbs {
    /* The status line and headers of the final answer, before any body. */
    void (*on_headers)(void *ud, long status, const struct hr_header *h, size_t n);
    /* Body bytes as they arrive. Return 0 when consumed; 1 to pause the
     * transfer (backpressure) without consuming them: the same bytes come
     * again after hr_transfer_resume(); -1 to stop the transfer (on_done then
     * reports a failure). */
    int (*on_data)(void *ud, const char *buf, size_t len);
    /* End of transfer, with `why` a short text for a failure ("" on
     * success). The transfer is freed right after this returns. */
    void (*on_done)(void *ud, enum hr_xfer_result rc, const char *why);
};

struct hr_transfer_opts {
    long connect_timeout_ms;
    long total_timeout_s;
    long idle_timeout_s;        /* a pooled connection idle longer is closed */
    size_t max_header_bytes;    /* the answer's header block; over it the transfer fails (0 = 64 KiB) */
    int upgrade;                /* a WebSocket handshake: a 101 answer is final (hr_transfer_take_tunnel) */
};

enum hr_upstream_client { HR_UPSTREAM_AUTO, HR_UPSTREAM_NATIVE, HR_UPSTREAM_CURL };

struct hr_upstream_counts;
/* max_idle: idle connections kept open per worker for reuse, so a steady
 * stream of requests does not reconnect. `counts` (or NULL): the worker's
 * upstream connection figures (conn_counters.h), kept up to date. */
struct hr_upstream *hr_upstream_new(struct event_base *base, long max_idle, enum hr_upstream_client which,
                                    struct hr_upstream_counts *counts);
void hr_upstream_free(struct hr_upstream *u);

/* Start a request. `headers` is a block of "Name: value\r\n" lines (NULL for
 * none; Host and Content-Length are added). The body (NULL for none) is
 * borrowed, not copied: the caller keeps it until the transfer ends
 * (on_done, or hr_transfer_abort). NULL on error. */
struct hr_transfer *hr_transfer_start(struct hr_upstream *u, const char *method, const char *url, const char *headers,
                                      const char *body, size_t body_len, const struct hr_transfer_opts *opts,
                                      const struct hr_transfer_cbs *cbs, void *ud);
/* Cut-through: 1 when hr_transfer_start_partial can carry a request to `url`
 * (the native client's; not libcurl's, chosen or needed). */
int hr_transfer_streams_body(struct hr_upstream *u, const char *url);
/* hr_transfer_start with only the first `body_have` of the body's `body_len`
 * bytes in `body` yet: the rest arrives later in the same buffer, announced
 * with hr_transfer_body_more, and goes upstream as it comes. Once the
 * upstream's final answer head arrives, no more of the body is sent (it
 * answered early: 413, 400...) and the connection is not reused. NULL on
 * error, or when hr_transfer_streams_body says no. */
struct hr_transfer *hr_transfer_start_partial(struct hr_upstream *u, const char *method, const char *url,
                                              const char *headers, const char *body, size_t body_len,
                                              size_t body_have, const struct hr_transfer_opts *opts,
                                              const struct hr_transfer_cbs *cbs, void *ud);
/* More of a partial body is in: `body_have` bytes from its start. */
void hr_transfer_body_more(struct hr_transfer *t, size_t body_have);
/* How long the request waited in headroomd's loop before it was sent: the
 * time from hr_transfer_start to the request going out, less connecting
 * (DNS, TCP, TLS). Call once the answer has begun. 0 when unknown. */
double hr_transfer_send_wait_ms(struct hr_transfer *t);
/* 1 once the request has begun to go out (on a pooled connection, within
 * hr_transfer_start); 0 while it waits for its connection, and for
 * libcurl's transfers, which start from the event loop. */
int hr_transfer_sending(const struct hr_transfer *t);
void hr_transfer_resume(struct hr_transfer *t);
/* Stop now; no callback runs afterwards. */
void hr_transfer_abort(struct hr_transfer *t);
/* From on_headers of an upgrade transfer (opts.upgrade) answered 101: the
 * connection, now a byte pipe (tunnel.h) with whatever was read past the
 * head. The transfer then ends without on_done. NULL when it cannot be
 * taken (libcurl's transfers). */
struct hr_tunnel *hr_transfer_take_tunnel(struct hr_transfer *t);
#endif
