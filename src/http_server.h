/* http_server.h — headroomd's HTTP/1.1 server for its clients: one per
 * worker loop, keep-alive connections, one request at a time per connection
 * (pipelined requests wait their turn), answers whole or streamed.
 *
 * A request is its connection's: the handler gets it once it is complete
 * (head and body) and must end it exactly once, with hr_req_send*,
 * hr_req_end (after hr_req_start) or hr_req_discard. If the client goes
 * away first, the on_close callback runs (the handler must forget the
 * request there); without one, the request stays valid, hr_req_gone says
 * so, and ending it frees it. */
#ifndef HR_HTTP_SERVER_H
#define HR_HTTP_SERVER_H
#include <stdatomic.h>
#include <stddef.h>
#include <event2/event.h>

struct evbuffer;
struct sockaddr;
struct hr_http_server;
struct hr_req;

typedef void (*hr_req_handler)(struct hr_req *req, void *arg);
/* Requests the server refuses itself (malformed, too large, unknown method,
 * request timeout): the callback answers with hr_req_send (status 400, 408,
 * 413, 431, 501 or 505). The request may have no method, target or headers. */
typedef void (*hr_req_refusal)(struct hr_req *req, int status, const char *why, void *arg);

struct hr_http_limits {
    size_t max_body, max_header;
    int timeout_s; /* receiving one request; also a write that makes no progress */
};

/* One server on `base`, accepting on the listening socket `fd` (taken). */
struct hr_http_server *hr_http_server_new(struct event_base *base, int fd, const struct hr_http_limits *lim,
                                          hr_req_handler handler, hr_req_refusal refusal, void *arg);
/* Closes every connection; requests still open get their on_close. */
void hr_http_server_free(struct hr_http_server *s);
/* From the server's loop thread. */
void hr_http_server_set_limits(struct hr_http_server *s, const struct hr_http_limits *lim);
/* Cut-through: `early` is asked about a request whose head is in but whose
 * Content-Length body is not (its size already within max_body). Returning
 * 1 takes the request now: the handler owns it as if dispatched, reads the
 * body as it arrives (hr_req_body_so_far, hr_req_on_body) and may answer
 * before the body is complete (then the connection closes after the answer,
 * the rest of the body read and dropped). 0: the request is dispatched
 * whole, as usual. The body's buffer is allocated whole at the head, so what
 * hr_req_body_so_far returns stays put until the request ends or the body is
 * taken. */
typedef int (*hr_req_early)(struct hr_req *req, void *arg);
void hr_http_server_set_early(struct hr_http_server *s, hr_req_early early);
/* Where an accepted connection is served: `place` runs on every accept and
 * returns 1 when it took the socket (to hand it to another server, which
 * calls hr_http_server_adopt from its own loop), 0 to serve it here. */
typedef int (*hr_conn_placement)(evutil_socket_t fd, const struct sockaddr *sa, int socklen, void *arg);
void hr_http_server_set_placement(struct hr_http_server *s, hr_conn_placement place, void *arg);
/* From the server's loop thread: serve the accepted socket `fd` (taken). */
void hr_http_server_adopt(struct hr_http_server *s, evutil_socket_t fd, const struct sockaddr *sa);
/* Keep the number of client connections open in `*open_count` (before any
 * is accepted; others may read it at any time). */
void hr_http_server_count_open(struct hr_http_server *s, atomic_int *open_count);
/* The libevent listener (conn_guard.c pauses it when out of descriptors). */
struct evconnlistener *hr_http_server_listener(struct hr_http_server *s);
/* Stop accepting and close the listening socket (draining). */
void hr_http_server_stop_accepting(struct hr_http_server *s);

/* --- the request as received --- */
const char *hr_req_method(const struct hr_req *r);  /* "GET", "POST", ... */
const char *hr_req_uri(const struct hr_req *r);     /* as sent: path and query */
/* The first header named `name` (any case), or NULL. */
const char *hr_req_header(const struct hr_req *r, const char *name);
size_t hr_req_n_headers(const struct hr_req *r);
void hr_req_header_at(const struct hr_req *r, size_t i, const char **name, const char **value);
/* The body, contiguous and NUL-terminated ("" when none). */
const char *hr_req_body(const struct hr_req *r, size_t *len);
/* The body's buffer, now the caller's to free(); NULL when empty (then
 * *len is 0). hr_req_body is empty afterwards. */
char *hr_req_take_body(struct hr_req *r, size_t *len);
/* A request taken early: the body's buffer and how much of it is in (*have
 * of *total bytes). */
const char *hr_req_body_so_far(const struct hr_req *r, size_t *have, size_t *total);
/* Called as the body of a request taken early arrives: done 0 for more
 * bytes, 1 once it is complete (then hr_req_body/hr_req_take_body have it
 * whole), -1 when it was not received within client_timeout (the handler
 * answers, e.g. 408). Not called once the request has ended. */
void hr_req_on_body(struct hr_req *r, void (*cb)(struct hr_req *r, void *arg, int done), void *arg);
int hr_req_peer_is_loopback(const struct hr_req *r);
/* The client went away before the answer ended. */
int hr_req_gone(const struct hr_req *r);

/* --- the answer --- */
/* Headers of the answer, in order; Content-Length, Transfer-Encoding and
 * Date are the server's (a Date given here is kept), "Connection: close"
 * closes the connection after the answer. -1 (nothing added) for an empty
 * name, a name with ':', or a CR or LF in either. */
int hr_req_add_header(struct hr_req *r, const char *name, const char *value);
/* The same for a header headroomd names itself (x-headroom-*), lengths
 * known: the name is no framing header and neither holds ':', CR or LF, so
 * nothing is checked (an answer carries six of them). */
int hr_req_add_own_header(struct hr_req *r, const char *name, size_t name_len, const char *value, size_t value_len);
#define HR_REQ_OWN_HEADER(r, lit, value, value_len) hr_req_add_own_header((r), lit, sizeof(lit) - 1, (value), (value_len))
/* An answer header's value, copied into buf (cap bytes with its NUL);
 * NULL when absent or longer. */
const char *hr_req_out_header(const struct hr_req *r, const char *name, char *buf, size_t cap);
void hr_req_clear_headers(struct hr_req *r);
/* A whole answer (ends the request). */
void hr_req_send(struct hr_req *r, int status, const char *body, size_t len);
/* The same with the body in an evbuffer (drained). */
void hr_req_send_buffer(struct hr_req *r, int status, struct evbuffer *body);
/* A streamed answer: chunked (HTTP/1.1), or until close (HTTP/1.0). */
void hr_req_start(struct hr_req *r, int status);
void hr_req_chunk(struct hr_req *r, const char *data, size_t len);
void hr_req_end(struct hr_req *r);
/* Writes what the answer has so far now, not after this loop turn's
 * callbacks: for a caller about to do slow work before adding more. */
void hr_req_flush(struct hr_req *r);
/* Bytes of the answer not yet taken by the client's socket. */
size_t hr_req_pending(const struct hr_req *r);
/* Called each time pending bytes have all been written (backpressure). */
void hr_req_on_drained(struct hr_req *r, void (*cb)(struct hr_req *r, void *arg), void *arg);
/* Called if the client goes away before the request ended. */
void hr_req_on_close(struct hr_req *r, void (*cb)(struct hr_req *r, void *arg), void *arg);
/* End a request without answering (its client is gone). */
void hr_req_discard(struct hr_req *r);

/* A WebSocket after its 101: the connection leaves HTTP. Returns the
 * socket (the caller's to close) and, in *pre (malloc'd, NULL when none),
 * the bytes the client sent past the request; the request ends without an
 * answer and the server forgets the connection. -1 when the answer has
 * begun or the client is gone (the request is then still to be ended). */
int hr_req_take_socket(struct hr_req *r, char **pre, size_t *pre_len);

/* The reason phrase of a status ("OK"), "" for an unknown one. */
const char *hr_http_reason(int status);
#endif
