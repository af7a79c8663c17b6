/* http_server.c — see http_server.h. One connection is one struct hr_req;
 * its socket stays registered for reading the whole time (no epoll_ctl per
 * request: a read while a request is answered notices the client leaving).
 * What an answer writes is gathered and written with one writev once this
 * loop turn's callbacks are done (head, body or events, end), so a request
 * is accounted before its client can see the answer; what the socket
 * cannot take waits in an evbuffer for the socket to be writable. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/listener.h>
#include "http_parse.h"
#include "http_server.h"
#include "numfmt.h"
#include "timeval_ms.h"

#define IN_INITIAL 4096
#define IN_BODY_ROOM 4096 /* kept after a head for a chunked body's framing */
#define LINGER_S 2        /* reading (and dropping) what a refused client still sends */
#define CUT_STEP (256u << 10) /* a body taken early is read (and passed on) this much at a time */

enum conn_state { ST_HEAD, ST_BODY, ST_HANDLING, ST_LINGER };

struct hr_req {
    struct hr_http_server *srv;
    struct hr_req *prev, *next;
    int fd;
    struct event *rd, *wr, *timer;
    /* The timer is lazy: a deadline moves without touching libevent, and
     * the timer, when it fires early, arms itself again for what is left. */
    int64_t deadline_ms;  /* the client's deadline (mono_ms), 0: none */
    int64_t timer_at_ms;  /* when the armed timer fires */
    int timer_on;
    int loopback;
    enum conn_state st;
    /* input: the head (and pipelined bytes after the request) */
    char *in;
    size_t in_len, in_cap, in_scan, in_used, head_len;
    struct hr_http_head head;
    int head_ok;
    char *body;
    size_t body_len, body_cap;
    int64_t body_need;
    struct hr_h1_chunked ch;
    int replay;     /* bytes of a next request are buffered: parse before reading */
    int rd_paused;  /* reading stopped while pipelined bytes fill the buffer */
    /* output */
    char *oh; /* "name\0value\0" pairs */
    size_t oh_len, oh_cap, n_oh;
    int out_close, out_date;
    char *hb; /* the answer's head */
    size_t hb_cap;
    struct evbuffer *out;
    int chunked_out, head_only, no_body, close_after, wr_added, flush_queued;
    void (*close_cb)(struct hr_req *, void *);
    void *close_arg;
    void (*drained_cb)(struct hr_req *, void *);
    void *drained_arg;
    int busy;        /* handed to the handler, not ended */
    int gone;        /* the socket is closed */
    int broken;      /* a write failed: the read side reports the loss */
    int in_dispatch; /* the handler runs from our read path */
    int early;       /* taken at its head (cut-through): the body is still arriving */
    void (*body_cb)(struct hr_req *, void *, int);
    void *body_arg;
    int held;        /* inside one of our event callbacks: freeing waits for its end */
    int doomed;
};

struct hr_http_server {
    struct event_base *base;
    struct evconnlistener *listener;
    struct hr_http_limits lim;
    hr_req_handler handler;
    hr_req_refusal refusal;
    hr_req_early early;
    void *arg;
    struct hr_req *conns;
    hr_conn_placement place; /* may hand an accepted socket to another server */
    void *place_arg;
    atomic_int *open_count; /* client connections open: this thread writes, any reads */
};

static void on_read(evutil_socket_t fd, short what, void *arg);
static void on_write(evutil_socket_t fd, short what, void *arg);
static void on_timer(evutil_socket_t fd, short what, void *arg);
static void after_request(struct hr_req *c);
static void try_head(struct hr_req *c);

/* ------------------------------------------------------------ helpers */

const char *hr_http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 499: return "Client Closed Request";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 529: return "Site Overloaded";
    default: return "";
    }
}

static char *put(char *w, const char *s, size_t n)
{
    memcpy(w, s, n);
    return w + n;
}

#define PUTS(w, lit) put((w), (lit), sizeof(lit) - 1)

static char *put_uint(char *w, unsigned long long v) { return w + hr_numfmt_uint(v, w); }

/* "Date: ...\r\n", formatted once a second per thread. */
static const char *date_line(size_t *len)
{
    static _Thread_local time_t at;
    static _Thread_local char line[48];
    static _Thread_local size_t n;
    time_t now = time(NULL);
    if (now != at || !n) {
        struct tm tm;
        gmtime_r(&now, &tm);
        n = strftime(line, sizeof line, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
        at = now;
    }
    *len = n;
    return line;
}

static int method_allowed(const char *m)
{
    static const char *const ok[] = {"GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", NULL};
    for (size_t i = 0; ok[i]; i++)
        if (!strcmp(m, ok[i])) return 1;
    return 0;
}

/* ------------------------------------------------------------ connection life */
static void queue_flush(struct hr_req *c);

/* Deadlines are whole seconds: a coarse clock serves (a few ms stale, ~5 ns
 * a read), and a timer that finds its deadline within the slack acts. */
#define TIMER_SLACK_MS 10

static int64_t mono_ms(void)
{
    struct timespec ts;
#ifdef CLOCK_MONOTONIC_COARSE
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
#else
    clock_gettime(CLOCK_MONOTONIC, &ts);
#endif
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void add_timer(struct hr_req *c, int64_t now, int64_t in_ms)
{
    if (in_ms < 0) in_ms = 0;
    struct timeval tv = hr_timeval_ms((double)in_ms);
    evtimer_add(c->timer, &tv);
    c->timer_on = 1;
    c->timer_at_ms = now + in_ms;
}

/* A deadline `seconds` from now. Each request sets one and clears it: a
 * keep-alive connection's timer is added once per client_timeout, not
 * deleted and added again per request (two heap operations under the
 * base's lock, ~0.5 k instructions). */
static void arm_timer(struct hr_req *c, int seconds)
{
    int64_t now = mono_ms(), at = now + (int64_t)seconds * 1000;
    c->deadline_ms = at;
    if (c->timer_on && c->timer_at_ms <= at) return; /* fires no later: it then arms itself for the rest */
    add_timer(c, now, at - now);
}

/* No deadline: the armed timer, when it fires, finds nothing due. */
static void disarm_timer(struct hr_req *c) { c->deadline_ms = 0; }

static void conn_free(struct hr_req *c)
{
    if (c->held) { /* the event callback on the stack frees it when it returns */
        c->doomed = 1;
        return;
    }
    if (c->prev) c->prev->next = c->next;
    else c->srv->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    if (c->srv->open_count) atomic_fetch_sub_explicit(c->srv->open_count, 1, memory_order_relaxed);
    if (c->rd) event_free(c->rd);
    if (c->wr) event_free(c->wr);
    if (c->timer) event_free(c->timer);
    if (c->fd >= 0) close(c->fd);
    if (c->out) evbuffer_free(c->out);
    hr_http_head_free(&c->head);
    free(c->in);
    free(c->body);
    free(c->oh);
    free(c->hb);
    free(c);
}

/* The socket is done with (the client left, or a write cannot go on). */
static void close_socket(struct hr_req *c)
{
    if (c->gone) return;
    c->gone = 1;
    event_del(c->rd);
    event_del(c->wr);
    evtimer_del(c->timer);
    c->timer_on = 0;
    c->deadline_ms = 0;
    close(c->fd);
    c->fd = -1;
    evbuffer_drain(c->out, evbuffer_get_length(c->out));
}

/* The client went away (EOF, reset, a write making no progress). A request
 * being answered tells its handler, or waits for it to end. */
static void conn_lost(struct hr_req *c)
{
    close_socket(c);
    if (!c->busy) {
        conn_free(c);
        return;
    }
    if (c->close_cb) {
        void (*cb)(struct hr_req *, void *) = c->close_cb;
        c->close_cb = NULL;
        c->busy = 0;
        cb(c, c->close_arg);
        conn_free(c);
    }
}

static void wait_request(struct hr_req *c)
{
    c->st = ST_HEAD;
    c->busy = 0;
    c->head_ok = 0;
    c->in_scan = 0;
    c->in_used = 0;
    c->head.n_headers = 0;
    free(c->body);
    c->body = NULL;
    c->body_len = c->body_cap = 0;
    c->body_need = 0;
    c->close_cb = NULL;
    c->drained_cb = NULL;
    c->body_cb = NULL;
    c->early = 0;
    arm_timer(c, c->srv->lim.timeout_s);
}

void hr_http_server_adopt(struct hr_http_server *s, evutil_socket_t fd, const struct sockaddr *sa)
{
    struct hr_req *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return;
    }
    c->srv = s;
    c->fd = fd;
    if (sa->sa_family == AF_INET)
        c->loopback = (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        c->loopback = IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    int one = 1; /* a streamed event goes out when written, not after the previous one's ACK */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->rd = event_new(s->base, fd, EV_READ | EV_PERSIST, on_read, c);
    c->wr = event_new(s->base, fd, EV_WRITE | EV_PERSIST, on_write, c);
    c->timer = evtimer_new(s->base, on_timer, c);
    c->out = evbuffer_new();
    c->in = malloc(IN_INITIAL);
    c->in_cap = IN_INITIAL;
    c->next = s->conns;
    if (s->conns) s->conns->prev = c;
    s->conns = c;
    if (s->open_count) atomic_fetch_add_explicit(s->open_count, 1, memory_order_relaxed);
    if (!c->rd || !c->wr || !c->timer || !c->out || !c->in || event_add(c->rd, NULL)) {
        conn_free(c);
        return;
    }
    wait_request(c);
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int socklen, void *arg)
{
    (void)l;
    struct hr_http_server *s = arg;
    if (s->place && s->place(fd, sa, socklen, s->place_arg)) return;
    hr_http_server_adopt(s, fd, sa);
}

/* ------------------------------------------------------------ writing */

/* Streamed bytes are gathered and written once this loop turn's callbacks
 * are done: a stream's head, events and end leave in one writev. */
static void queue_flush(struct hr_req *c)
{
    if (c->flush_queued || c->wr_added || c->gone) return;
    c->flush_queued = 1;
    event_active(c->wr, EV_WRITE, 1);
}

static void write_pending(struct hr_req *c);

/* What is queued, written now (hr_req_flush). Only the write: what follows
 * it (the next request, a close, the drained callback, a failed write's
 * cleanup) stays with the on_write already queued, so no callback runs
 * under the caller. A whole answer is not written this way: its request is
 * accounted first, so /stats counts it by the time the client has it. */
static void write_now(struct hr_req *c)
{
    if (c->gone || c->broken || c->wr_added || !evbuffer_get_length(c->out)) return;
    (void)evbuffer_write(c->out, c->fd); /* an error is met again, and handled, by on_write */
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct hr_req *c = arg;
    c->flush_queued = 0;
    if (c->gone) return;
    c->held++;
    write_pending(c);
    if (--c->held == 0 && c->doomed) {
        c->doomed = 0;
        conn_free(c);
    }
}

static void write_pending(struct hr_req *c)
{
    if (!c->broken && evbuffer_get_length(c->out)) {
        int w = evbuffer_write(c->out, c->fd);
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            c->broken = 1;
            conn_lost(c);
            return;
        }
    }
    if (evbuffer_get_length(c->out) && !c->broken) {
        if (!c->wr_added) {
            event_add(c->wr, NULL);
            c->wr_added = 1;
        }
        arm_timer(c, c->srv->lim.timeout_s); /* progress (or a first try): a fresh write deadline */
        return;
    }
    if (c->wr_added) {
        event_del(c->wr);
        c->wr_added = 0;
        disarm_timer(c);
    }
    if (c->busy) {
        if (c->drained_cb) c->drained_cb(c, c->drained_arg);
    } else if (c->st == ST_HANDLING || c->st == ST_LINGER) { /* not a 100 Continue while the body comes */
        after_request(c);
    }
}

/* The answer's head into c->hb; returns its length (0: out of memory). */
static size_t build_head(struct hr_req *c, int status, long long body_len)
{
    size_t need = c->oh_len + 200;
    if (c->hb_cap < need) {
        char *b = realloc(c->hb, need);
        if (!b) return 0;
        c->hb = b;
        c->hb_cap = need;
    }
    c->no_body = (status >= 100 && status < 200) || status == 204 || status == 304;
    c->head_only = c->head_ok && !strcmp(c->head.method, "HEAD");
    /* answered while its body still comes (cut-through): the rest is read
     * away and the connection closed */
    if (!c->head_ok || !c->head.keep_alive || c->out_close || c->st == ST_BODY) c->close_after = 1;
    char *w = c->hb;
    w = PUTS(w, "HTTP/1.1 ");
    w = put_uint(w, (unsigned)status % 1000);
    *w++ = ' ';
    const char *reason = hr_http_reason(status);
    w = put(w, reason, strlen(reason));
    w = PUTS(w, "\r\n");
    w = put(w, c->oh, c->oh_len); /* the header lines, as hr_req_add_header wrote them */
    if (!c->out_date) {
        size_t dl;
        const char *d = date_line(&dl);
        w = put(w, d, dl);
    }
    if (c->no_body) {
        /* no framing */
    } else if (body_len >= 0) {
        w = PUTS(w, "Content-Length: ");
        w = put_uint(w, (unsigned long long)body_len);
        w = PUTS(w, "\r\n");
    } else if (c->head_ok && c->head.minor >= 1) {
        c->chunked_out = 1;
        w = PUTS(w, "Transfer-Encoding: chunked\r\n");
    } else {
        c->close_after = 1; /* HTTP/1.0: the stream ends with the connection */
    }
    if (c->close_after) w = PUTS(w, "Connection: close\r\n");
    else if (c->head.minor == 0) w = PUTS(w, "Connection: keep-alive\r\n");
    w = PUTS(w, "\r\n");
    return (size_t)(w - c->hb);
}

static void request_ended(struct hr_req *c)
{
    c->busy = 0;
    c->close_cb = NULL;
    c->drained_cb = NULL;
    c->body_cb = NULL;
    if (c->st == ST_BODY) { /* taken early and answered before its body was in */
        c->early = 0;
        c->st = ST_LINGER;
        c->close_after = 1;
    }
    if (c->in_dispatch) return; /* dispatch goes on once the handler returns */
    after_request(c);
}

/* What comes after an answer was handed over: the next request, a close, or
 * (for a gone client) freeing the request. */
static void after_request(struct hr_req *c)
{
    if (c->gone) {
        conn_free(c);
        return;
    }
    if (evbuffer_get_length(c->out) || c->flush_queued) return; /* on_write comes back here */
    if (c->broken) { /* a write failed: nothing more can be said on this socket */
        conn_lost(c);
        return;
    }
    if (c->close_after) {
        if (c->in_len > c->in_used || c->st != ST_HANDLING) {
            /* unread bytes: closing now would reset the connection and
             * could destroy the answer in flight; read them away first */
            c->st = ST_LINGER;
            shutdown(c->fd, SHUT_WR);
            arm_timer(c, LINGER_S);
            return;
        }
        conn_free(c);
        return;
    }
    size_t left = c->in_len - c->in_used;
    if (left) memmove(c->in, c->in + c->in_used, left);
    c->in_len = left;
    if (c->rd_paused) {
        c->rd_paused = 0;
        event_add(c->rd, NULL);
    }
    c->chunked_out = c->head_only = c->no_body = 0;
    c->n_oh = c->oh_len = 0;
    c->out_close = c->out_date = 0;
    wait_request(c);
    if (left) {
        c->replay = 1; /* parsed from the next loop turn, not from inside this answer */
        event_active(c->rd, EV_READ, 1);
    }
}

/* ------------------------------------------------------------ reading */

/* Refused before the handler: the refusal callback answers, then close. */
static void refuse(struct hr_req *c, int status, const char *why)
{
    disarm_timer(c);
    c->st = ST_HANDLING;
    c->busy = 1;
    c->out_close = 1;
    c->in_used = c->in_len; /* whatever was read is dropped */
    c->in_dispatch = 1;
    c->srv->refusal(c, status, why, c->srv->arg);
    c->in_dispatch = 0;
    if (c->doomed) return;
    if (c->busy) { /* the callback did not answer: nothing else will */
        c->busy = 0;
        after_request(c);
        return;
    }
    c->st = ST_LINGER; /* the client may still be sending what was refused */
    after_request(c);
}

static void dispatch(struct hr_req *c)
{
    disarm_timer(c);
    c->st = ST_HANDLING;
    c->busy = 1;
    c->in_dispatch = 1;
    c->srv->handler(c, c->srv->arg);
    c->in_dispatch = 0;
    if (c->doomed) return;
    if (!c->busy) after_request(c);
}

/* Cut-through: the handler may take a request whose body is still coming.
 * Returns 1 when it did. */
static int take_early(struct hr_req *c)
{
    c->busy = 1;
    c->early = 1;
    c->in_dispatch = 1;
    int took = c->srv->early(c, c->srv->arg);
    c->in_dispatch = 0;
    if (!took) {
        c->busy = 0;
        c->early = 0;
        return 0;
    }
    if (c->doomed) return 1;
    if (!c->busy) after_request(c); /* refused at its head */
    return 1;
}

static void body_news(struct hr_req *c, int done)
{
    if (c->body_cb) c->body_cb(c, c->body_arg, done);
}

/* The body of a request taken early is all in. */
static void early_body_done(struct hr_req *c)
{
    disarm_timer(c);
    c->early = 0;
    c->st = ST_HANDLING;
    body_news(c, 1);
}

static int body_room(struct hr_req *c, size_t more)
{
    if (c->body_len + more > c->srv->lim.max_body) {
        refuse(c, 413, "request body larger than max_body_size");
        return -1;
    }
    if (c->body_len + more + 1 > c->body_cap) {
        size_t cap = c->body_cap ? c->body_cap * 2 : 4096;
        while (cap < c->body_len + more + 1) cap *= 2;
        char *b = realloc(c->body, cap);
        if (!b) {
            refuse(c, 413, "out of memory for the request body");
            return -1;
        }
        c->body = b;
        c->body_cap = cap;
    }
    return 0;
}

static void send_continue(struct hr_req *c)
{
    if (!c->head.expect_continue || c->head.minor < 1) return;
    c->head.expect_continue = 0;
    static const char msg[] = "HTTP/1.1 100 Continue\r\n\r\n";
    evbuffer_add(c->out, msg, sizeof msg - 1);
    queue_flush(c);
}

/* Chunked body bytes at in[in_used..in_len): decoded into the body. */
static void read_chunked(struct hr_req *c)
{
    size_t pos = c->in_used;
    for (;;) {
        size_t avail;
        int done;
        const char *why;
        long step = hr_h1_chunked_step(&c->ch, c->in + pos, c->in_len - pos, &avail, &done, &why);
        if (step < 0) {
            refuse(c, 400, "malformed chunked request body");
            return;
        }
        pos += (size_t)step;
        if (avail) {
            if (body_room(c, avail)) return;
            memcpy(c->body + c->body_len, c->in + pos, avail);
            c->body_len += avail;
            hr_h1_chunked_consumed(&c->ch, avail);
            pos += avail;
        }
        if (done) {
            c->in_used = pos;
            c->body[c->body_len] = '\0';
            dispatch(c);
            return;
        }
        if (!step && !avail) break;
    }
    /* keep the head where it is; the undecoded rest moves up to it */
    memmove(c->in + c->head_len, c->in + pos, c->in_len - pos);
    c->in_len = c->head_len + (c->in_len - pos);
    c->in_used = c->head_len;
    send_continue(c);
}

static void try_head(struct hr_req *c)
{
    const struct hr_http_limits *lim = &c->srv->lim;
    size_t end = hr_http_head_end(c->in, c->in_len, &c->in_scan);
    if (!end || end > lim->max_header) {
        if (end || c->in_len > lim->max_header) refuse(c, 431, "request headers larger than max_header_size");
        return;
    }
    if (c->in_cap - end < IN_BODY_ROOM) { /* before parsing: the head's strings then stay put */
        char *b = realloc(c->in, end + IN_BODY_ROOM);
        if (!b) {
            refuse(c, 431, "out of memory for the request headers");
            return;
        }
        c->in = b;
        c->in_cap = end + IN_BODY_ROOM;
    }
    struct hr_http_refusal r;
    if (hr_http_parse_head(c->in, end, &c->head, &r)) {
        c->head_ok = 0;
        c->head.n_headers = 0;
        refuse(c, r.status, r.why);
        return;
    }
    c->head_ok = 1;
    c->head_len = end;
    c->in_used = end;
    if (!method_allowed(c->head.method)) {
        refuse(c, 501, "HTTP method not supported");
        return;
    }
    if (c->head.chunked) {
        c->st = ST_BODY;
        memset(&c->ch, 0, sizeof c->ch);
        if (body_room(c, 0)) return;
        read_chunked(c);
        return;
    }
    int64_t cl = c->head.content_length;
    if (cl <= 0) {
        dispatch(c);
        return;
    }
    if ((uint64_t)cl > lim->max_body) {
        refuse(c, 413, "request body larger than max_body_size");
        return;
    }
    c->body = malloc((size_t)cl + 1);
    if (!c->body) {
        refuse(c, 413, "out of memory for the request body");
        return;
    }
    c->body_cap = (size_t)cl + 1;
    c->body_need = cl;
    size_t have = c->in_len - end;
    if (have > (size_t)cl) have = (size_t)cl;
    memcpy(c->body, c->in + end, have);
    c->body_len = have;
    c->in_used = end + have;
    if (c->in_used == c->in_len) c->in_len = c->in_used = end; /* copied out: room for what follows */
    if (c->body_len == (size_t)cl) {
        c->body[cl] = '\0';
        dispatch(c);
        return;
    }
    c->st = ST_BODY;
    if (c->srv->early && take_early(c) && (c->doomed || c->st != ST_BODY)) return; /* answered at its head */
    send_continue(c);
}

/* A request in progress: receive more of it. */
static void read_request(struct hr_req *c)
{
    for (;;) {
        char *dst;
        size_t room;
        int into_body = c->st == ST_BODY && !c->head.chunked;
        if (into_body) { /* straight into the body: no copy, no pipelined bytes mixed in */
            dst = c->body + c->body_len;
            room = (size_t)c->body_need - c->body_len;
            /* cut-through: a socket buffer may hold megabytes; passed on in
             * steps, the last step alone is what the upstream waits for */
            if (c->early && room > CUT_STEP) room = CUT_STEP;
        } else {
            if (c->in_len == c->in_cap) {
                if (c->st != ST_HEAD) { /* a chunk-size line longer than IN_BODY_ROOM */
                    refuse(c, 400, "malformed chunked request body");
                    return;
                }
                size_t cap = c->in_cap * 2;
                if (cap > c->srv->lim.max_header + IN_BODY_ROOM) cap = c->srv->lim.max_header + IN_BODY_ROOM;
                char *b = cap > c->in_cap ? realloc(c->in, cap) : NULL;
                if (!b) {
                    refuse(c, 431, "request headers larger than max_header_size");
                    return;
                }
                c->in = b;
                c->in_cap = cap;
            }
            dst = c->in + c->in_len;
            room = c->in_cap - c->in_len;
        }
        ssize_t n = recv(c->fd, dst, room, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n <= 0) { /* EOF or reset before a whole request: nothing to answer */
            conn_lost(c);
            return;
        }
        if (into_body) {
            c->body_len += (size_t)n;
            if (c->body_len == (size_t)c->body_need) {
                c->body[c->body_len] = '\0';
                if (c->early) early_body_done(c);
                else dispatch(c);
                return;
            }
            if (c->early) {
                body_news(c, 0);
                if (c->doomed || c->st != ST_BODY) return; /* answered, or the client is gone */
            }
        } else {
            c->in_len += (size_t)n;
            if (c->st == ST_HEAD) try_head(c);
            else read_chunked(c);
            if (c->doomed || (c->st != ST_HEAD && c->st != ST_BODY)) return; /* dispatched, refused or closed */
        }
        if ((size_t)n < room) return; /* the socket is drained for now */
    }
}

/* While a request is answered: a read is the client leaving (EOF) or
 * pipelining its next request (kept, up to the buffer's room). */
static void watch_peer(struct hr_req *c)
{
    if (c->in_len == c->in_cap) { /* full of pipelined bytes: stop reading until answered */
        event_del(c->rd);
        c->rd_paused = 1;
        return;
    }
    ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
    if (n > 0) {
        c->in_len += (size_t)n;
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    conn_lost(c);
}

static void linger(struct hr_req *c)
{
    char scrap[16384];
    for (int i = 0; i < 64; i++) {
        ssize_t n = recv(c->fd, scrap, sizeof scrap, 0);
        if (n > 0) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
        break;
    }
    conn_lost(c);
}

static void hold(struct hr_req *c) { c->held++; }

static void release(struct hr_req *c)
{
    if (--c->held == 0 && c->doomed) {
        c->doomed = 0;
        conn_free(c);
    }
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct hr_req *c = arg;
    if (c->gone) return;
    hold(c);
    switch (c->st) {
    case ST_HEAD:
        if (c->replay) {
            c->replay = 0;
            try_head(c);
            break;
        }
        /* fall through */
    case ST_BODY:
        read_request(c);
        break;
    case ST_HANDLING:
        watch_peer(c);
        break;
    case ST_LINGER:
        linger(c);
        break;
    }
    release(c);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct hr_req *c = arg;
    c->timer_on = 0;
    if (!c->deadline_ms) return; /* cleared since it was armed */
    int64_t now = mono_ms();
    if (c->deadline_ms - now > TIMER_SLACK_MS) { /* moved since it was armed */
        add_timer(c, now, c->deadline_ms - now);
        return;
    }
    c->deadline_ms = 0;
    hold(c);
    switch (c->st) {
    case ST_HEAD:
        if (!c->in_len) { /* an idle keep-alive connection: closed quietly */
            conn_lost(c);
            break;
        }
        /* fall through */
    case ST_BODY:
        if (c->early) { /* the handler has it: it answers; if it does not, the client is cut off */
            body_news(c, -1);
            if (!c->doomed && c->st == ST_BODY) conn_lost(c);
            break;
        }
        refuse(c, 408, "request not received within client_timeout");
        break;
    case ST_HANDLING: /* a pending write made no progress: the client is gone */
    case ST_LINGER:
        conn_lost(c);
        break;
    }
    release(c);
}

/* ------------------------------------------------------------ server */

struct hr_http_server *hr_http_server_new(struct event_base *base, int fd, const struct hr_http_limits *lim,
                                          hr_req_handler handler, hr_req_refusal refusal, void *arg)
{
    struct hr_http_server *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->base = base;
    s->lim = *lim;
    s->handler = handler;
    s->refusal = refusal;
    s->arg = arg;
    s->listener = evconnlistener_new(base, accept_cb, s, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
    if (!s->listener) {
        free(s);
        return NULL;
    }
    return s;
}

void hr_http_server_free(struct hr_http_server *s)
{
    if (!s) return;
    if (s->listener) evconnlistener_free(s->listener);
    while (s->conns) {
        struct hr_req *c = s->conns;
        c->in_dispatch = 0;
        c->held = 0;
        close_socket(c);
        if (c->busy && c->close_cb) {
            void (*cb)(struct hr_req *, void *) = c->close_cb;
            c->close_cb = NULL;
            cb(c, c->close_arg);
        }
        conn_free(c);
    }
    free(s);
}

void hr_http_server_set_limits(struct hr_http_server *s, const struct hr_http_limits *lim) { s->lim = *lim; }

void hr_http_server_set_early(struct hr_http_server *s, hr_req_early early) { s->early = early; }

void hr_http_server_set_placement(struct hr_http_server *s, hr_conn_placement place, void *arg)
{
    s->place = place;
    s->place_arg = arg;
}

void hr_http_server_count_open(struct hr_http_server *s, atomic_int *open_count) { s->open_count = open_count; }

struct evconnlistener *hr_http_server_listener(struct hr_http_server *s) { return s->listener; }

void hr_http_server_stop_accepting(struct hr_http_server *s)
{
    if (s->listener) evconnlistener_free(s->listener);
    s->listener = NULL;
}

/* ------------------------------------------------------------ request API */

const char *hr_req_method(const struct hr_req *r) { return r->head_ok ? r->head.method : ""; }
const char *hr_req_uri(const struct hr_req *r) { return r->head_ok ? r->head.target : ""; }

const char *hr_req_header(const struct hr_req *r, const char *name) { return hr_http_head_find(&r->head, name); }

size_t hr_req_n_headers(const struct hr_req *r) { return r->head.n_headers; }

void hr_req_header_at(const struct hr_req *r, size_t i, const char **name, const char **value)
{
    *name = r->head.headers[i].name;
    *value = r->head.headers[i].value;
}

const char *hr_req_body(const struct hr_req *r, size_t *len)
{
    *len = r->body ? r->body_len : 0;
    return r->body ? r->body : "";
}

char *hr_req_take_body(struct hr_req *r, size_t *len)
{
    char *b = r->body_len ? r->body : NULL;
    *len = b ? r->body_len : 0;
    if (!b) free(r->body);
    r->body = NULL;
    r->body_len = r->body_cap = 0;
    return b;
}

const char *hr_req_body_so_far(const struct hr_req *r, size_t *have, size_t *total)
{
    *have = r->body ? r->body_len : 0;
    *total = r->body_need > 0 ? (size_t)r->body_need : *have;
    return r->body ? r->body : "";
}

void hr_req_on_body(struct hr_req *r, void (*cb)(struct hr_req *, void *, int), void *arg)
{
    r->body_cb = cb;
    r->body_arg = arg;
}

int hr_req_peer_is_loopback(const struct hr_req *r) { return r->loopback; }
int hr_req_gone(const struct hr_req *r) { return r->gone; }

int hr_req_add_header(struct hr_req *r, const char *name, const char *value)
{
    size_t nl = strcspn(name, "\r\n:"), vl = strcspn(value, "\r\n");
    if (!nl || name[nl] || value[vl]) return -1; /* a CR or LF would split the answer's head; a ':' its line */
    /* framing is the server's */
    if ((nl == 14 && !strcasecmp(name, "content-length")) || (nl == 17 && !strcasecmp(name, "transfer-encoding")))
        return 0;
    if (nl == 10 && !strcasecmp(name, "connection")) {
        if (!strcasecmp(value, "close")) r->out_close = 1;
        return 0;
    }
    if (nl == 4 && !strcasecmp(name, "date")) r->out_date = 1;
    return hr_req_add_own_header(r, name, nl, value, vl);
}

/* Stored as the head will carry it, "name: value\r\n": the head takes the
 * lines in one copy. */
int hr_req_add_own_header(struct hr_req *r, const char *name, size_t nl, const char *value, size_t vl)
{
    size_t line = nl + 2 + vl + 2;
    if (r->oh_len + line > r->oh_cap) {
        size_t cap = r->oh_cap ? r->oh_cap * 2 : 512;
        while (cap < r->oh_len + line) cap *= 2;
        char *b = realloc(r->oh, cap);
        if (!b) return -1;
        r->oh = b;
        r->oh_cap = cap;
    }
    char *w = r->oh + r->oh_len;
    memcpy(w, name, nl);
    memcpy(w + nl, ": ", 2);
    memcpy(w + nl + 2, value, vl);
    memcpy(w + nl + 2 + vl, "\r\n", 2);
    r->oh_len += line;
    r->n_oh++;
    return 0;
}

const char *hr_req_out_header(const struct hr_req *r, const char *name, char *buf, size_t cap)
{
    size_t want = strlen(name);
    for (const char *h = r->oh, *end = r->oh + r->oh_len; h < end;) {
        const char *eol = memchr(h, '\n', (size_t)(end - h)); /* every line ends "\r\n" */
        const char *colon = memchr(h, ':', (size_t)(eol - h)); /* names hold no ':' (checked when added) */
        if ((size_t)(colon - h) == want && !strncasecmp(h, name, want)) {
            size_t vl = (size_t)(eol - 1 - (colon + 2));
            if (!cap || vl >= cap) return NULL;
            memcpy(buf, colon + 2, vl);
            buf[vl] = '\0';
            return buf;
        }
        h = eol + 1;
    }
    return NULL;
}

void hr_req_clear_headers(struct hr_req *r)
{
    r->oh_len = r->n_oh = 0;
    r->out_close = r->out_date = 0;
}

/* A whole answer is written once this loop turn's callbacks are done, like
 * a stream: the handler accounts for the request right after sending, and
 * a client that has its answer finds it counted in /stats. */
void hr_req_send(struct hr_req *r, int status, const char *body, size_t len)
{
    if (!r->gone && !r->broken) {
        size_t hl = build_head(r, status, (long long)len);
        if (hl) {
            evbuffer_add(r->out, r->hb, hl);
            if (len && !r->head_only && !r->no_body) evbuffer_add(r->out, body, len);
            queue_flush(r);
        } else {
            r->close_after = 1;
        }
    }
    request_ended(r);
}

void hr_req_send_buffer(struct hr_req *r, int status, struct evbuffer *body)
{
    size_t len = body ? evbuffer_get_length(body) : 0;
    if (!r->gone && !r->broken) {
        size_t hl = build_head(r, status, (long long)len);
        if (hl) {
            evbuffer_add(r->out, r->hb, hl);
            if (len && !r->head_only && !r->no_body) evbuffer_add_buffer(r->out, body); /* moved, not copied */
            queue_flush(r);
        } else {
            r->close_after = 1;
        }
    }
    if (body) evbuffer_drain(body, evbuffer_get_length(body));
    request_ended(r);
}

void hr_req_start(struct hr_req *r, int status)
{
    if (r->gone) return;
    size_t hl = build_head(r, status, -1);
    if (!hl) {
        r->broken = 1;
        shutdown(r->fd, SHUT_RDWR);
        return;
    }
    evbuffer_add(r->out, r->hb, hl);
    queue_flush(r);
}

/* Chunks up to this size are framed in one copy on the stack. */
#define SMALL_CHUNK 2048

void hr_req_chunk(struct hr_req *r, const char *data, size_t len)
{
    if (r->gone || r->broken || !len || r->head_only || r->no_body) return;
    if (r->chunked_out) {
        char line[24], *w = line;
        static const char hex[] = "0123456789abcdef";
        int shift = 60;
        while (shift > 0 && !((len >> shift) & 0xf)) shift -= 4;
        for (; shift >= 0; shift -= 4) *w++ = hex[(len >> shift) & 0xf];
        w = PUTS(w, "\r\n");
        size_t head = (size_t)(w - line);
        if (len <= SMALL_CHUNK) {
            /* A stream's events are mostly this small: one evbuffer_add for
             * the size line, the data and the CRLF instead of three. */
            char one[sizeof line + SMALL_CHUNK + 2];
            memcpy(one, line, head);
            memcpy(one + head, data, len);
            memcpy(one + head + len, "\r\n", 2);
            evbuffer_add(r->out, one, head + len + 2);
        } else {
            evbuffer_add(r->out, line, head);
            evbuffer_add(r->out, data, len);
            evbuffer_add(r->out, "\r\n", 2);
        }
    } else {
        evbuffer_add(r->out, data, len);
    }
    queue_flush(r);
}

void hr_req_end(struct hr_req *r)
{
    if (!r->gone && !r->broken) {
        if (r->chunked_out && !r->head_only) evbuffer_add(r->out, "0\r\n\r\n", 5);
        queue_flush(r);
    }
    request_ended(r);
}

void hr_req_flush(struct hr_req *r) { write_now(r); }

size_t hr_req_pending(const struct hr_req *r) { return evbuffer_get_length(r->out); }

void hr_req_on_drained(struct hr_req *r, void (*cb)(struct hr_req *, void *), void *arg)
{
    r->drained_cb = cb;
    r->drained_arg = arg;
}

void hr_req_on_close(struct hr_req *r, void (*cb)(struct hr_req *, void *), void *arg)
{
    r->close_cb = cb;
    r->close_arg = arg;
}

void hr_req_discard(struct hr_req *r)
{
    r->close_after = 1;
    request_ended(r);
}

int hr_req_take_socket(struct hr_req *r, char **pre, size_t *pre_len)
{
    *pre = NULL;
    *pre_len = 0;
    if (r->gone || r->broken || r->st != ST_HANDLING || evbuffer_get_length(r->out) || r->flush_queued) return -1;
    size_t left = r->in_len - r->in_used;
    if (left) {
        if (!(*pre = malloc(left))) return -1;
        memcpy(*pre, r->in + r->in_used, left);
        *pre_len = left;
    }
    int fd = r->fd;
    event_del(r->rd);
    event_del(r->wr);
    evtimer_del(r->timer);
    r->timer_on = 0;
    r->deadline_ms = 0;
    r->fd = -1;
    r->gone = 1; /* for the server, the client left */
    r->busy = 0;
    r->close_cb = NULL;
    r->drained_cb = NULL;
    conn_free(r); /* waits for an event callback on the stack */
    return fd;
}
