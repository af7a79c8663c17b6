/* upstream_h1.c — the native upstream client: HTTP/1.1 on the worker's own
 * event loop, one request per connection at a time, connections kept alive
 * in a per-worker pool. A request on a pooled connection costs one write
 * and one read system call and no epoll change: the idle connection stays
 * registered for reading (that is how a close by the upstream is noticed),
 * the request goes out at once from hr_transfer_start, and nothing is
 * allocated but the transfer and its request head. TLS is OpenSSL on the
 * same non-blocking socket, with sessions resumed per origin. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include "asan.h"
#include "conn_counters.h"
#include "numfmt.h"
#include "resolver.h"
#include "stats.h"
#include "timeval_ms.h"
#include "tunnel.h"
#include "upstream_impl.h"

#define RBUF_MIN (16u << 10)
#define RBUF_READ_MAX (64u << 10)
#define TLS_COALESCE_MAX (16u << 10) /* head and a body this small go out as one TLS record */
#define SESSION_SLOTS 8

enum conn_state { C_RESOLVING, C_CONNECTING, C_TLS, C_SENDING, C_RECEIVING, C_IDLE };
enum body_mode { B_NONE, B_LENGTH, B_CHUNKED, B_EOF };

/* Finished transfers kept per pool for the next requests; none under
 * AddressSanitizer, which should see every transfer freed. */
#define MAX_SPARE (HR_ASAN ? 0 : 16)

struct origin {
    int tls;
    int port;
    char host[256]; /* without brackets for IPv6 */
};

struct h1_conn;

struct h1_xfer {
    struct hr_transfer base; /* native = 1 */
    struct hr_h1_pool *pool;
    struct h1_conn *c;
    struct h1_xfer *live_prev, *live_next;
    struct hr_transfer_cbs cbs;
    void *ud;
    struct origin o;
    char *head; /* the request head (and a small body, for TLS) */
    size_t head_len;
    const char *body;
    size_t body_len;
    size_t body_have; /* of body_len, in so far (less while a cut-through body arrives) */
    int cut;          /* started with part of its body: an early answer is watched for */
    size_t sent;      /* of head_len + body_len */
    int is_head; /* HEAD: the answer has no body */
    size_t max_header;
    long connect_timeout_ms;
    double deadline; /* the whole transfer (upstream_timeout), monotonic ms */
    double due;      /* when its current step times out: the deadline, or sooner while connecting */
    long idle_timeout_s;
    struct event timer; /* a failure reported from the loop (assigned by xfer_fail) */
    double t_start, t_send, connect_ms;
    int attempts;   /* connections tried (a stale pooled one is retried once) */
    int got_bytes;  /* any byte of the answer arrived */
    struct hr_h1_head resp;
    int got_head;
    enum body_mode mode;
    uint64_t left; /* B_LENGTH */
    struct hr_h1_chunked ch;
    size_t plain; /* B_CHUNKED: payload at rbuf's start, its framing gone, not yet taken (a pause) */
    int paused, in_cb, aborted;
    int upgrade, tunneled; /* a WebSocket handshake; its 101 taken (hr_h1_take_tunnel) */
    enum hr_xfer_result pending_rc; /* a failure to report from the loop */
    const char *pending_why;
    char why[640];
};

struct h1_conn {
    struct hr_h1_pool *pool;
    enum conn_state state;
    struct origin o;
    int fd;
    SSL *ssl;
    struct event ev;
    int ev_init;   /* ev assigned at least once */
    short ev_kind; /* EV_READ / EV_WRITE registered, 0 = none */
    char *rbuf;
    size_t rlen, rcap;
    struct h1_xfer *x;
    struct hr_resolve_req *dns;
    struct hr_addrs addrs;
    int next_addr;
    int reused;        /* carried an earlier request */
    double idle_since;
    long idle_timeout_s;
    struct h1_conn *idle_prev, *idle_next; /* in the pool, most recent first */
};

struct session {
    struct origin o;
    SSL_SESSION *s;
};

struct hr_h1_pool {
    struct event_base *base;
    long max_idle;
    struct hr_upstream_counts *counts; /* or NULL */
    struct h1_conn *idle; /* most recently parked first */
    struct h1_conn *idle_tail;
    long n_idle;
    struct event sweep;
    int sweep_on;
    double sweep_at; /* when the pending sweep fires (monotonic ms) */
    /* One timer for every live transfer's `due`: a transfer moves it only
     * to fire sooner, and when it fires it times out what is due and arms
     * itself for the next. Most transfers end long before their due, so
     * they cost no timer add and delete (heap operations under the base's
     * lock) of their own. */
    struct event due_ev;
    int due_on;
    double due_at;
    struct h1_xfer *live;
    /* Demand: transfers at once, their peak in this window and the one
     * before (idle_allowance). */
    long n_live, peak_cur, peak_prev;
    double window_start;
    struct h1_xfer *spare; /* finished transfers kept for reuse (linked by live_next) */
    int n_spare;
    struct hr_resolver *resolver;
    SSL_CTX *tls;
    struct session sessions[SESSION_SLOTS];
    unsigned next_session;
};

static void conn_cb(evutil_socket_t fd, short what, void *arg);
static void xfer_fail(struct h1_xfer *x, enum hr_xfer_result rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void start_conn(struct h1_xfer *x);
static void conn_send(struct h1_conn *c);
static int conn_receive(struct h1_conn *c);

/* ---------- URLs ---------- */

static int parse_url(const char *url, struct origin *o, const char **path)
{
    o->tls = 0;
    if (!strncasecmp(url, "http://", 7)) {
        url += 7;
        o->port = 80;
    } else if (!strncasecmp(url, "https://", 8)) {
        url += 8;
        o->tls = 1;
        o->port = 443;
    } else {
        return -1;
    }
    size_t alen = strcspn(url, "/?#");
    const char *a = url, *aend = url + alen;
    if (memchr(a, '@', alen)) return -1; /* credentials in the URL: libcurl's job */
    const char *hend;
    if (*a == '[') {
        hend = memchr(a, ']', alen);
        if (!hend) return -1;
        a++;
        if (hend + 1 < aend && hend[1] != ':') return -1;
    } else {
        hend = memchr(a, ':', alen);
        if (!hend) hend = aend;
    }
    size_t hlen = (size_t)(hend - a);
    if (!hlen || hlen >= sizeof o->host) return -1;
    memcpy(o->host, a, hlen);
    o->host[hlen] = '\0';
    const char *colon = hend < aend && *hend == ']' ? hend + 1 : hend;
    if (colon < aend && *colon == ':') { /* digits only, up to the path (parsed per request: no strtol) */
        long port = 0;
        const char *d = colon + 1;
        for (; d < aend && *d >= '0' && *d <= '9' && port <= 65535; d++) port = port * 10 + (*d - '0');
        if (d != aend || d == colon + 1 || port < 1 || port > 65535) return -1;
        o->port = (int)port;
    }
    *path = aend;
    return 0;
}

static int same_origin(const struct origin *a, const struct origin *b)
{
    return a->tls == b->tls && a->port == b->port && !strcasecmp(a->host, b->host);
}

/* ---------- TLS ---------- */

static SSL_CTX *tls_context(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* The system store, or SSL_CERT_FILE / SSL_CERT_DIR from the environment. */
    SSL_CTX_set_default_verify_paths(ctx);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    /* Many servers close without close_notify; the framing says whether the
     * answer was whole. */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    static const unsigned char alpn[] = "\x08http/1.1";
    SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn - 1);
    return ctx;
}

static struct session *session_of(struct hr_h1_pool *pool, const struct origin *o)
{
    for (int i = 0; i < SESSION_SLOTS; i++)
        if (pool->sessions[i].s && same_origin(&pool->sessions[i].o, o)) return &pool->sessions[i];
    return NULL;
}

static void session_keep(struct hr_h1_pool *pool, const struct origin *o, SSL *ssl)
{
    SSL_SESSION *s = SSL_get1_session(ssl);
    if (!s) return;
    struct session *slot = session_of(pool, o);
    if (!slot) slot = &pool->sessions[pool->next_session++ % SESSION_SLOTS];
    if (slot->s) SSL_SESSION_free(slot->s);
    slot->o = *o;
    slot->s = s;
}

static int is_ip_literal(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

static int tls_setup(struct h1_conn *c)
{
    if (!c->pool->tls && !(c->pool->tls = tls_context())) return -1;
    c->ssl = SSL_new(c->pool->tls);
    if (!c->ssl || !SSL_set_fd(c->ssl, c->fd)) return -1;
    if (is_ip_literal(c->o.host)) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), c->o.host);
    } else {
        SSL_set_tlsext_host_name(c->ssl, c->o.host);
        SSL_set1_host(c->ssl, c->o.host);
    }
    struct session *s = session_of(c->pool, &c->o);
    if (s) SSL_set_session(c->ssl, s->s);
    SSL_set_connect_state(c->ssl);
    return 0;
}

/* The reason an OpenSSL call failed, for the client's error message. */
static void tls_error(struct h1_conn *c, int ret, char *buf, size_t len)
{
    long vr = SSL_get_verify_result(c->ssl);
    unsigned long e = ERR_peek_last_error();
    if (vr != X509_V_OK)
        snprintf(buf, len, "certificate verification failed: %s", X509_verify_cert_error_string(vr));
    else if (e)
        snprintf(buf, len, "%s", ERR_reason_error_string(e) ? ERR_reason_error_string(e) : "TLS error");
    else if (SSL_get_error(c->ssl, ret) == SSL_ERROR_SYSCALL && errno)
        snprintf(buf, len, "%s", strerror(errno));
    else
        snprintf(buf, len, "the connection closed during the TLS exchange");
}

/* ---------- connections ---------- */

static void conn_want(struct h1_conn *c, short kind)
{
    if (c->ev_kind == kind) return;
    if (c->ev_init) event_del(&c->ev);
    c->ev_kind = 0;
    if (!kind) return;
    event_assign(&c->ev, c->pool->base, c->fd, (short)(EV_PERSIST | kind), conn_cb, c);
    c->ev_init = 1;
    if (event_add(&c->ev, NULL) == 0) c->ev_kind = kind;
}

static void idle_unlink(struct h1_conn *c)
{
    struct hr_h1_pool *pool = c->pool;
    if (c->idle_prev) c->idle_prev->idle_next = c->idle_next;
    else pool->idle = c->idle_next;
    if (c->idle_next) c->idle_next->idle_prev = c->idle_prev;
    else pool->idle_tail = c->idle_prev;
    c->idle_prev = c->idle_next = NULL;
    pool->n_idle--;
    if (pool->counts) atomic_store_explicit(&pool->counts->idle, pool->n_idle, memory_order_relaxed);
}

static void conn_close(struct h1_conn *c)
{
    if (c->state == C_IDLE) idle_unlink(c);
    if (c->dns) hr_resolve_cancel(c->dns);
    if (c->ev_init) event_del(&c->ev); /* also drops a pending event_active */
    if (c->ssl) SSL_free(c->ssl);
    if (c->fd >= 0) close(c->fd);
    free(c->rbuf);
    free(c);
}

static struct h1_conn *conn_new(struct hr_h1_pool *pool, const struct origin *o)
{
    struct h1_conn *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->pool = pool;
    c->o = *o;
    c->fd = -1;
    return c;
}

/* How many idle connections may stay: upstream_keepalive, or as many
 * transfers as ran at once in the last one to two windows when that is
 * more. Under steady load a worker with more clients than
 * upstream_keepalive then keeps the connections it keeps reusing, where a
 * fixed cap closed one whenever a round of answers briefly left them all
 * idle and reconnected a moment later (2 % of requests at 64 connections,
 * bench/README.md session 21); a burst's extra connections still go within
 * two windows of its end. */
#define DEMAND_WINDOW_MS 1000.0
static long idle_allowance(struct hr_h1_pool *pool, double now)
{
    double elapsed = now - pool->window_start;
    if (elapsed >= DEMAND_WINDOW_MS) {
        pool->peak_prev = elapsed < 2 * DEMAND_WINDOW_MS ? pool->peak_cur : 0;
        pool->peak_cur = pool->n_live;
        pool->window_start = now;
    }
    long need = pool->peak_cur > pool->peak_prev ? pool->peak_cur : pool->peak_prev;
    return need > pool->max_idle ? need : pool->max_idle;
}

/* Arm one of the pool's timers for `at` (monotonic ms), unless it is armed
 * to fire no later: its callback then looks again and re-arms. The pool
 * tracks the arming itself, which costs less than asking libevent. */
static void pool_timer_at(struct event *ev, int *on, double *armed_at, double at, double now)
{
    if (*on && *armed_at <= at) return;
    struct timeval tv = hr_timeval_ms(at - now);
    *armed_at = at;
    *on = 1;
    evtimer_add(ev, &tv); /* a pending one is moved */
}

/* Arm the sweep for the oldest idle connection's timeout, or sooner while
 * more than upstream_keepalive are idle (a burst's extras to trim). */
static void sweep_arm(struct hr_h1_pool *pool, double now)
{
    if (!pool->idle_tail) return;
    double at = pool->idle_tail->idle_since + (double)pool->idle_tail->idle_timeout_s * 1000.0;
    if (pool->n_idle > pool->max_idle && now + DEMAND_WINDOW_MS < at) at = now + DEMAND_WINDOW_MS;
    pool_timer_at(&pool->sweep, &pool->sweep_on, &pool->sweep_at, at, now);
}

/* Close idle connections past their idle timeout (the oldest are last),
 * and the oldest beyond what recent demand allows. */
static void sweep_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct hr_h1_pool *pool = arg;
    pool->sweep_on = 0;
    double now = hr_monotonic_ms();
    while (pool->idle_tail && pool->idle_tail->idle_since + (double)pool->idle_tail->idle_timeout_s * 1000.0 <= now)
        conn_close(pool->idle_tail);
    long cap = idle_allowance(pool, now);
    while (pool->n_idle > cap && pool->idle_tail) conn_close(pool->idle_tail);
    sweep_arm(pool, now);
}

/* A finished exchange leaves the connection ready for the next request: it
 * stays registered for reading so an upstream close is seen at once. */
static void conn_park(struct h1_conn *c, long idle_timeout_s)
{
    struct hr_h1_pool *pool = c->pool;
    if (pool->max_idle <= 0) {
        conn_close(c);
        return;
    }
    double now = hr_monotonic_ms();
    long cap = idle_allowance(pool, now);
    while (pool->n_idle >= cap && pool->idle_tail) conn_close(pool->idle_tail);
    c->state = C_IDLE;
    c->x = NULL;
    c->reused = 1;
    c->idle_since = now;
    c->idle_timeout_s = idle_timeout_s > 0 ? idle_timeout_s : 60;
    if (c->rcap > RBUF_READ_MAX) { /* a large header block grew it */
        free(c->rbuf);
        c->rbuf = NULL;
        c->rcap = 0;
    }
    conn_want(c, EV_READ);
    c->idle_next = pool->idle;
    if (pool->idle) pool->idle->idle_prev = c;
    else pool->idle_tail = c;
    pool->idle = c;
    pool->n_idle++;
    if (pool->counts) atomic_store_explicit(&pool->counts->idle, pool->n_idle, memory_order_relaxed);
    sweep_arm(pool, now);
}

static struct h1_conn *conn_pooled(struct hr_h1_pool *pool, const struct origin *o, double now)
{
    for (struct h1_conn *c = pool->idle; c; c = c->idle_next) {
        if (!same_origin(&c->o, o)) continue;
        if (c->idle_since + (double)c->idle_timeout_s * 1000.0 <= now) {
            conn_close(c); /* expired; older ones for this origin are too */
            return NULL;
        }
        idle_unlink(c);
        return c;
    }
    return NULL;
}

/* ---------- transfers ---------- */

static void xfer_free(struct h1_xfer *x)
{
    struct hr_h1_pool *pool = x->pool;
    if (x->live_prev) x->live_prev->live_next = x->live_next;
    else pool->live = x->live_next;
    if (x->live_next) x->live_next->live_prev = x->live_prev;
    pool->n_live--;
    if (x->pending_why) event_del(&x->timer); /* a failure not reported yet */
    hr_h1_head_clear(&x->resp);
    free(x->head);
    if (pool->n_spare < MAX_SPARE) { /* a transfer is ~1.2 KB: calloc'ing one cost 2 k instructions */
        x->live_next = pool->spare;
        pool->spare = x;
        pool->n_spare++;
        return;
    }
    free(x);
}

/* A zeroed transfer, from the spares when there is one. */
static struct h1_xfer *xfer_new(struct hr_h1_pool *pool)
{
    struct h1_xfer *x = pool->spare;
    if (!x) return calloc(1, sizeof *x);
    pool->spare = x->live_next;
    pool->n_spare--;
    memset(x, 0, offsetof(struct h1_xfer, why)); /* the message buffer only needs to start empty */
    x->why[0] = '\0';
    return x;
}

static void due_arm(struct hr_h1_pool *pool, double at, double now)
{
    pool_timer_at(&pool->due_ev, &pool->due_on, &pool->due_at, at, now);
}

/* The transfer's next step is due by its deadline, or `limit_ms` from now
 * when that is sooner (connecting). */
static void arm_timer(struct h1_xfer *x, double limit_ms, double now)
{
    x->due = limit_ms > 0 && now + limit_ms < x->deadline ? now + limit_ms : x->deadline;
    due_arm(x->pool, x->due, now);
}

/* The end: the connection is parked or closed first, so on_done may start
 * another transfer that reuses it. */
static void xfer_finish(struct h1_xfer *x, enum hr_xfer_result rc, const char *why)
{
    struct h1_conn *c = x->c;
    x->c = NULL;
    if (c) {
        c->x = NULL;
        /* (an answer that came before the whole request went out leaves the
         * upstream expecting the rest: not reusable) */
        if (rc == HR_XFER_OK && x->resp.keep_alive && x->mode != B_EOF && !c->rlen &&
            x->sent == x->head_len + x->body_len)
            conn_park(c, x->idle_timeout_s);
        else conn_close(c);
    }
    if (x->pending_why) event_del(&x->timer);
    if (x->cbs.on_done) x->cbs.on_done(x->ud, rc, why);
    xfer_free(x);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg);

static void xfer_fail(struct h1_xfer *x, enum hr_xfer_result rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->why, sizeof x->why, fmt, ap);
    va_end(ap);
    if (x->pending_why) return; /* already failing */
    /* Never call back from inside hr_transfer_start: the caller has not got
     * the handle yet. The timer runs the failure from the loop; the
     * connection goes now, so nothing else happens meanwhile. */
    if (x->c) {
        x->c->x = NULL;
        conn_close(x->c);
        x->c = NULL;
    }
    x->pending_rc = rc;
    x->pending_why = x->why;
    evtimer_assign(&x->timer, x->pool->base, timer_cb, x);
    event_active(&x->timer, EV_TIMEOUT, 1);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct h1_xfer *x = arg;
    xfer_finish(x, x->pending_rc, x->pending_why);
}

/* A transfer whose step is due. */
static void expire(struct h1_xfer *x, double now)
{
    struct h1_conn *c = x->c;
    if (c && c->state <= C_TLS && now < x->deadline)
        snprintf(x->why, sizeof x->why, "connecting to %s:%d timed out after %ld ms (upstream_connect_timeout_ms)",
                 x->o.host, x->o.port, x->connect_timeout_ms);
    else
        snprintf(x->why, sizeof x->why, "no complete answer within upstream_timeout (%.0f s; %s)",
                 (x->deadline - x->t_start) / 1000.0, x->got_bytes ? "the answer had begun" : "nothing received");
    xfer_finish(x, HR_XFER_TIMEOUT, x->why);
}

/* The pool's timer (due_arm): every transfer that is due times out, then
 * the timer is armed for the soonest of the rest. */
static void due_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct hr_h1_pool *pool = arg;
    pool->due_on = 0;
    double now = hr_monotonic_ms();
    for (;;) { /* an expiry's on_done may start or end transfers: look again from the start */
        struct h1_xfer *x = pool->live;
        while (x && (x->pending_why || x->due > now + 1)) x = x->live_next;
        if (!x) break;
        expire(x, now);
    }
    double next = 0;
    int any = 0;
    for (struct h1_xfer *x = pool->live; x; x = x->live_next)
        if (!x->pending_why && (!any || x->due < next)) {
            next = x->due;
            any = 1;
        }
    if (any) due_arm(pool, next, now);
}

/* A pooled connection the upstream had already closed: send again on a
 * new one, once, as long as no byte of an answer came back. */
static int retry_fresh(struct h1_xfer *x)
{
    struct h1_conn *c = x->c;
    if (!c || !c->reused || x->got_bytes || x->attempts > 1) return 0;
    c->x = NULL;
    conn_close(c);
    x->c = NULL;
    x->sent = 0;
    start_conn(x);
    return 1;
}

static void on_resolved(void *arg, int err, const struct hr_addrs *addrs);

static void try_connect(struct h1_conn *c)
{
    struct h1_xfer *x = c->x;
    int last_errno = 0;
    while (c->next_addr < c->addrs.n) {
        int i = c->next_addr++;
        struct sockaddr *sa = (struct sockaddr *)&c->addrs.addr[i];
        if (c->fd >= 0) {
            conn_want(c, 0);
            close(c->fd);
        }
        c->fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
        if (c->fd < 0) {
            last_errno = errno;
            continue;
        }
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(c->fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
        if (connect(c->fd, sa, c->addrs.len[i]) == 0 || errno == EINPROGRESS) {
            c->state = C_CONNECTING;
            conn_want(c, EV_WRITE);
            return;
        }
        last_errno = errno;
    }
    xfer_fail(x, HR_XFER_FAILED, "could not connect to %s:%d: %s", x->o.host, x->o.port,
              strerror(last_errno ? last_errno : ECONNREFUSED));
}

static void on_resolved(void *arg, int err, const struct hr_addrs *addrs)
{
    struct h1_conn *c = arg;
    c->dns = NULL;
    if (err) {
        xfer_fail(c->x, HR_XFER_FAILED, "could not resolve %s: %s", c->o.host, evutil_gai_strerror(err));
        return;
    }
    c->addrs = *addrs;
    c->next_addr = 0;
    try_connect(c);
}

static void start_conn(struct h1_xfer *x)
{
    x->attempts++;
    struct h1_conn *c = conn_new(x->pool, &x->o);
    if (!c) {
        xfer_fail(x, HR_XFER_FAILED, "out of memory");
        return;
    }
    c->x = x;
    x->c = c;
    c->state = C_RESOLVING;
    arm_timer(x, (double)x->connect_timeout_ms, hr_monotonic_ms());
    struct hr_resolve_req *q = hr_resolve(x->pool->resolver, x->o.host, x->o.port, on_resolved, c);
    if (q) c->dns = q; /* else on_resolved ran already, and c may be gone */
}

static void connected(struct h1_conn *c)
{
    struct h1_xfer *x = c->x;
    if (c->pool->counts) hr_owned_add(&c->pool->counts->opened, 1);
    double now = hr_monotonic_ms();
    x->connect_ms = now - x->t_start;
    arm_timer(x, 0, now);
    c->state = C_SENDING;
    conn_send(c);
}

static void tls_step(struct h1_conn *c)
{
    ERR_clear_error();
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        session_keep(c->pool, &c->o, c->ssl);
        connected(c);
        return;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ) conn_want(c, EV_READ);
    else if (e == SSL_ERROR_WANT_WRITE) conn_want(c, EV_WRITE);
    else {
        char why[200];
        tls_error(c, r, why, sizeof why);
        xfer_fail(c->x, HR_XFER_FAILED, "TLS with %s:%d failed: %s", c->o.host, c->o.port, why);
    }
}

static void connect_done(struct h1_conn *c)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
    if (err) {
        if (c->next_addr < c->addrs.n) {
            try_connect(c);
            return;
        }
        xfer_fail(c->x, HR_XFER_FAILED, "could not connect to %s:%d: %s", c->o.host, c->o.port, strerror(err));
        return;
    }
    if (!c->o.tls) {
        connected(c);
        return;
    }
    if (tls_setup(c) < 0) {
        xfer_fail(c->x, HR_XFER_FAILED, "could not set up TLS for %s:%d", c->o.host, c->o.port);
        return;
    }
    c->state = C_TLS;
    tls_step(c);
}

/* ---------- sending ---------- */

static void send_failed(struct h1_conn *c, const char *why)
{
    struct h1_xfer *x = c->x;
    if (retry_fresh(x)) return;
    xfer_fail(x, HR_XFER_FAILED, "sending the request to %s:%d failed: %s", x->o.host, x->o.port, why);
}

static void conn_send(struct h1_conn *c)
{
    struct h1_xfer *x = c->x;
    size_t total = x->head_len + x->body_have;
    /* cut-through: while the socket is full, an early answer is still read */
    short blocked = (short)(x->cut ? EV_WRITE | EV_READ : EV_WRITE);
    if (!x->t_send) x->t_send = hr_monotonic_ms();
    while (x->sent < total) {
        ssize_t n;
        if (c->ssl) {
            const char *p = x->sent < x->head_len ? x->head + x->sent : x->body + (x->sent - x->head_len);
            size_t len = x->sent < x->head_len ? x->head_len - x->sent : total - x->sent;
            ERR_clear_error();
            int r = SSL_write(c->ssl, p, (int)(len > (1u << 30) ? 1u << 30 : len));
            if (r <= 0) {
                int e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_WANT_WRITE) {
                    conn_want(c, blocked);
                    return;
                }
                if (e == SSL_ERROR_WANT_READ) {
                    conn_want(c, EV_READ);
                    return;
                }
                char why[200];
                tls_error(c, r, why, sizeof why);
                send_failed(c, why);
                return;
            }
            n = r;
        } else {
            struct iovec iov[2];
            int k = 0;
            if (x->sent < x->head_len) iov[k++] = (struct iovec){x->head + x->sent, x->head_len - x->sent};
            size_t boff = x->sent > x->head_len ? x->sent - x->head_len : 0;
            if (x->body_have > boff) iov[k++] = (struct iovec){(void *)(x->body + boff), x->body_have - boff};
            struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)k};
            n = sendmsg(c->fd, &m, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                    conn_want(c, blocked);
                    return;
                }
                send_failed(c, strerror(errno));
                return;
            }
        }
        x->sent += (size_t)n;
    }
    if (x->body_have < x->body_len) { /* all that came is sent: wait for more, and for an early answer */
        conn_want(c, EV_READ);
        return;
    }
    c->state = C_RECEIVING;
    conn_want(c, EV_READ);
}

/* Cut-through: the upstream spoke while the body was still going out. A
 * final answer ends the sending (an early 413 or 400: the rest is not
 * wanted); an interim 1xx does not. Returns 1 when sending is over (or the
 * transfer ended, or moved to a fresh connection). */
static int early_answer(struct h1_conn *c)
{
    struct h1_xfer *x = c->x;
    c->state = C_RECEIVING;
    if (conn_receive(c)) return 1;
    if (x->got_head) {
        if (c->ev_kind == (EV_READ | EV_WRITE)) conn_want(c, EV_READ);
        return 1;
    }
    c->state = C_SENDING;
    return 0;
}

/* ---------- receiving ---------- */

/* Hand body bytes to the caller. Returns 0 when taken, 1 when paused, -1
 * when the transfer is over (finished, failed or aborted: x is gone). */
static int deliver(struct h1_xfer *x, const char *p, size_t n)
{
    if (!n) return 0;
    x->in_cb = 1;
    int r = x->cbs.on_data(x->ud, p, n);
    x->in_cb = 0;
    if (x->aborted) {
        hr_h1_abort(&x->base);
        return -1;
    }
    if (r < 0) {
        xfer_finish(x, HR_XFER_FAILED, "the answer was refused by headroomd");
        return -1;
    }
    if (r > 0) {
        x->paused = 1;
        conn_want(x->c, 0);
        return 1;
    }
    return 0;
}

static void consume(struct h1_conn *c, size_t n)
{
    memmove(c->rbuf, c->rbuf + n, c->rlen - n);
    c->rlen -= n;
}

/* A handshake's 101: the caller takes the connection from on_headers. */
static int upgraded(struct h1_xfer *x)
{
    x->got_head = 1;
    x->in_cb = 1;
    if (x->cbs.on_headers) x->cbs.on_headers(x->ud, x->resp.status, x->resp.headers, x->resp.n_headers);
    x->in_cb = 0;
    if (x->tunneled) {
        xfer_free(x);
        return 1;
    }
    if (x->aborted) {
        hr_h1_abort(&x->base);
        return 1;
    }
    xfer_finish(x, HR_XFER_FAILED, "the upstream switched protocols (101) and nothing took the connection");
    return 1;
}

struct hr_tunnel *hr_h1_take_tunnel(struct hr_transfer *t)
{
    struct h1_xfer *x = (struct h1_xfer *)t;
    struct h1_conn *c = x->c;
    if (!c || !x->upgrade || x->resp.status != 101 || x->tunneled) return NULL;
    conn_want(c, 0);
    struct hr_tunnel *tn = hr_tunnel_new(c->pool->base, c->fd, c->ssl, c->rbuf, c->rlen); /* takes fd and ssl */
    c->fd = -1;
    c->ssl = NULL;
    c->x = NULL;
    x->c = NULL;
    conn_close(c);
    x->tunneled = 1; /* even when the tunnel could not be made: the connection is gone */
    return tn;
}

/* Work through what is buffered. Returns 1 when the transfer ended (the
 * connection may be gone too), 0 to read on. */
static int process(struct h1_conn *c)
{
    struct h1_xfer *x = c->x;
    while (!x->got_head) {
        const char *why;
        long n = hr_h1_parse_head(c->rbuf, c->rlen, x->max_header, &x->resp, &why);
        if (n == HR_H1_MORE) return 0;
        if (n == HR_H1_TOO_LARGE) {
            snprintf(x->why, sizeof x->why, "the answer's headers exceed %zu bytes (max_header_size)", x->max_header);
            xfer_finish(x, HR_XFER_FAILED, x->why);
            return 1;
        }
        if (n < 0) {
            snprintf(x->why, sizeof x->why, "%s", n == HR_H1_NOMEM ? "out of memory" : why);
            xfer_finish(x, HR_XFER_FAILED, x->why);
            return 1;
        }
        consume(c, (size_t)n);
        if (x->resp.status < 200) {
            if (x->resp.status == 101 && x->upgrade) return upgraded(x);
            if (x->resp.status == 101) {
                xfer_finish(x, HR_XFER_FAILED, "the upstream switched protocols (101), which a proxied API call cannot");
                return 1;
            }
            continue; /* 100 Continue, 103 Early Hints: the final answer follows */
        }
        x->got_head = 1;
        if (x->is_head || x->resp.status == 204 || x->resp.status == 304) x->mode = B_NONE;
        else if (x->resp.chunked) x->mode = B_CHUNKED;
        else if (x->resp.content_length >= 0) x->mode = B_LENGTH;
        else x->mode = B_EOF;
        x->left = x->mode == B_LENGTH ? (uint64_t)x->resp.content_length : 0;
        x->in_cb = 1;
        if (x->cbs.on_headers) x->cbs.on_headers(x->ud, x->resp.status, x->resp.headers, x->resp.n_headers);
        x->in_cb = 0;
        if (x->aborted) {
            hr_h1_abort(&x->base);
            return 1;
        }
        if (x->mode == B_NONE || (x->mode == B_LENGTH && !x->left)) {
            xfer_finish(x, HR_XFER_OK, "");
            return 1;
        }
    }
    if (x->paused) return 0;
    switch (x->mode) {
    case B_LENGTH: {
        size_t n = c->rlen < x->left ? c->rlen : (size_t)x->left;
        int r = deliver(x, c->rbuf, n);
        if (r) return r < 0;
        consume(c, n);
        x->left -= n;
        if (!x->left) {
            xfer_finish(x, HR_XFER_OK, ""); /* bytes past the length: xfer_finish will not reuse c */
            return 1;
        }
        return 0;
    }
    case B_EOF: {
        int r = deliver(x, c->rbuf, c->rlen);
        if (r) return r < 0;
        c->rlen = 0;
        return 0;
    }
    case B_CHUNKED: {
        /* Every chunk the buffer holds goes to the caller in one call: each
         * payload is moved down over the framing before it, so rbuf starts
         * with x->plain bytes of payload. A stream's events arrive as one
         * chunk each, and a call per chunk cost the relay a parse, a client
         * write and an iovec per event. */
        size_t off = x->plain, plain = x->plain;
        int done = 0;
        const char *why = NULL;
        for (;;) {
            size_t avail;
            long n = hr_h1_chunked_step(&x->ch, c->rbuf + off, c->rlen - off, &avail, &done, &why);
            if (n < 0) break; /* why is set only then */
            off += (size_t)n;
            if (done || !avail) break;
            if (off != plain) memmove(c->rbuf + plain, c->rbuf + off, avail);
            hr_h1_chunked_consumed(&x->ch, avail);
            plain += avail;
            off += avail;
        }
        if (plain) { /* what came before a bad chunk line is relayed too */
            int r = deliver(x, c->rbuf, plain);
            if (r < 0) return 1;
            if (r > 0) { /* kept, without its framing, for hr_h1_resume */
                memmove(c->rbuf + plain, c->rbuf + off, c->rlen - off);
                c->rlen -= off - plain;
                x->plain = plain;
                return 0;
            }
        }
        x->plain = 0;
        if (why) {
            snprintf(x->why, sizeof x->why, "%s", why);
            xfer_finish(x, HR_XFER_FAILED, x->why);
            return 1;
        }
        consume(c, off);
        if (done) {
            xfer_finish(x, HR_XFER_OK, "");
            return 1;
        }
        return 0;
    }
    case B_NONE: break;
    }
    return 0;
}

static void eof_received(struct h1_conn *c, const char *how)
{
    struct h1_xfer *x = c->x;
    if (x->got_head && x->mode == B_EOF) {
        xfer_finish(x, HR_XFER_OK, "");
        return;
    }
    if (!x->got_bytes && retry_fresh(x)) return;
    if (!x->got_head)
        snprintf(x->why, sizeof x->why, "%s:%d %s before a complete answer head", x->o.host, x->o.port, how);
    else if (x->mode == B_LENGTH)
        snprintf(x->why, sizeof x->why, "%s:%d %s mid-answer (%llu bytes of the body missing)", x->o.host,
                 x->o.port, how, (unsigned long long)x->left);
    else
        snprintf(x->why, sizeof x->why, "%s:%d %s mid-answer (the chunked body did not end)", x->o.host, x->o.port,
                 how);
    xfer_finish(x, HR_XFER_FAILED, x->why);
}

/* Returns 1 when the transfer ended or left this connection (c may be
 * gone), 0 to wait for more. */
static int conn_receive(struct h1_conn *c)
{
    struct h1_xfer *x = c->x;
    if (c->rlen && !x->paused && process(c)) return 1; /* bytes kept by a pause */
    for (int rounds = 0; rounds < 8 && !x->paused; rounds++) {
        if (c->rcap - c->rlen < 4096) {
            size_t cap = c->rcap ? c->rcap * 2 : RBUF_MIN;
            if (cap < c->rlen + RBUF_MIN) cap = c->rlen + RBUF_MIN;
            char *b = realloc(c->rbuf, cap);
            if (!b) {
                xfer_finish(x, HR_XFER_FAILED, "out of memory");
                return 1;
            }
            c->rbuf = b;
            c->rcap = cap;
        }
        size_t room = c->rcap - c->rlen;
        ssize_t n;
        if (c->ssl) {
            ERR_clear_error();
            int r = SSL_read(c->ssl, c->rbuf + c->rlen, (int)(room > (1u << 30) ? 1u << 30 : room));
            if (r <= 0) {
                int e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_WANT_READ) return 0;
                if (e == SSL_ERROR_WANT_WRITE) {
                    conn_want(c, EV_WRITE);
                    return 0;
                }
                if (e == SSL_ERROR_ZERO_RETURN) {
                    eof_received(c, "closed the connection");
                    return 1;
                }
                char why[200];
                tls_error(c, r, why, sizeof why);
                if (!x->got_bytes && retry_fresh(x)) return 1;
                snprintf(x->why, sizeof x->why, "reading the answer from %s:%d failed: %s", x->o.host, x->o.port,
                         why);
                xfer_finish(x, HR_XFER_FAILED, x->why);
                return 1;
            }
            n = r;
            if (c->ev_kind != EV_READ) conn_want(c, EV_READ);
        } else {
            n = recv(c->fd, c->rbuf + c->rlen, room, 0);
            if (n < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
                if (errno == ECONNRESET) {
                    eof_received(c, "reset the connection");
                    return 1;
                }
                if (!x->got_bytes && retry_fresh(x)) return 1;
                snprintf(x->why, sizeof x->why, "reading the answer from %s:%d failed: %s", x->o.host, x->o.port,
                         strerror(errno));
                xfer_finish(x, HR_XFER_FAILED, x->why);
                return 1;
            }
            if (n == 0) {
                eof_received(c, "closed the connection");
                return 1;
            }
        }
        x->got_bytes = 1;
        c->rlen += (size_t)n;
        if (process(c)) return 1;
        /* A short read drained the socket (TLS may still hold a record). */
        if ((size_t)n < room && !(c->ssl && SSL_pending(c->ssl))) return 0;
        if (c->rcap < RBUF_READ_MAX && c->rlen + 4096 > c->rcap) {
            char *b = realloc(c->rbuf, RBUF_READ_MAX);
            if (b) {
                c->rbuf = b;
                c->rcap = RBUF_READ_MAX;
            }
        }
    }
    return 0;
}

static void idle_event(struct h1_conn *c)
{
    /* An idle connection spoke: the upstream closed it (or broke the
     * protocol). Either way it cannot carry a request. */
    conn_close(c);
}

static void conn_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    struct h1_conn *c = arg;
    switch (c->state) {
    case C_IDLE: idle_event(c); break;
    case C_RESOLVING: break;
    case C_CONNECTING: connect_done(c); break;
    case C_TLS: tls_step(c); break;
    case C_SENDING:
        if ((what & EV_READ) && c->x->cut && early_answer(c)) break;
        conn_send(c);
        break;
    case C_RECEIVING: conn_receive(c); break;
    }
}

/* ---------- the interface ---------- */

struct hr_h1_pool *hr_h1_pool_new(struct event_base *base, long max_idle, struct hr_upstream_counts *counts)
{
    struct hr_h1_pool *pool = calloc(1, sizeof *pool);
    if (!pool) return NULL;
    pool->base = base;
    pool->max_idle = max_idle;
    pool->counts = counts;
    pool->resolver = hr_resolver_new(base);
    if (!pool->resolver) {
        free(pool);
        return NULL;
    }
    evtimer_assign(&pool->sweep, base, sweep_cb, pool);
    evtimer_assign(&pool->due_ev, base, due_cb, pool);
    return pool;
}

void hr_h1_pool_free(struct hr_h1_pool *pool)
{
    if (!pool) return;
    /* Transfers still here belong to requests being torn down. */
    while (pool->live) {
        struct h1_xfer *x = pool->live;
        if (x->c) conn_close(x->c);
        xfer_free(x);
    }
    while (pool->idle) conn_close(pool->idle);
    event_del(&pool->sweep);
    event_del(&pool->due_ev);
    hr_resolver_free(pool->resolver);
    for (int i = 0; i < SESSION_SLOTS; i++)
        if (pool->sessions[i].s) SSL_SESSION_free(pool->sessions[i].s);
    if (pool->tls) SSL_CTX_free(pool->tls);
    while (pool->spare) {
        struct h1_xfer *x = pool->spare;
        pool->spare = x->live_next;
        free(x);
    }
    free(pool);
}

/* The request head: request line, Host, the caller's header lines, and the
 * body's length. */
static char *build_head(const char *method, const struct origin *o, const char *path, const char *headers,
                        int with_length, size_t body_len, size_t extra, size_t *out_len)
{
    size_t plen = strlen(path), hlen = headers ? strlen(headers) : 0;
    size_t cap = strlen(method) + plen + strlen(o->host) + hlen + 96 + extra;
    char *h = malloc(cap);
    if (!h) return NULL;
    int v6 = strchr(o->host, ':') != NULL;
    int default_port = o->port == (o->tls ? 443 : 80);
    /* built by hand: five snprintf calls cost ~4 k instructions a request */
    char *w = h;
#define PUT(s, n) (memcpy(w, (s), (n)), w += (n))
#define PUTS(lit) PUT(lit, sizeof(lit) - 1)
    PUT(method, strlen(method));
    PUTS(" ");
    if (*path != '/') PUTS("/");
    PUT(path, plen);
    PUTS(" HTTP/1.1\r\nHost: ");
    if (v6) PUTS("[");
    PUT(o->host, strlen(o->host));
    if (v6) PUTS("]");
    if (!default_port) {
        PUTS(":");
        w += hr_numfmt_uint((unsigned)o->port, w);
    }
    PUTS("\r\n");
    PUT(headers ? headers : "", hlen);
    if (with_length) {
        PUTS("Content-Length: ");
        w += hr_numfmt_uint(body_len, w);
        PUTS("\r\n");
    }
    PUTS("\r\n");
#undef PUTS
#undef PUT
    *w = '\0';
    *out_len = (size_t)(w - h);
    return h;
}

int hr_h1_takes_url(const char *url)
{
    struct origin o;
    const char *path;
    return parse_url(url, &o, &path) == 0;
}

struct hr_transfer *hr_h1_start(struct hr_h1_pool *pool, const char *method, const char *url, const char *headers,
                                const char *body, size_t body_len, size_t body_have,
                                const struct hr_transfer_opts *opts, const struct hr_transfer_cbs *cbs, void *ud,
                                int *declined)
{
    struct origin o;
    const char *path;
    *declined = parse_url(url, &o, &path) < 0;
    if (*declined) return NULL;
    struct h1_xfer *x = xfer_new(pool);
    if (!x) return NULL;
    x->o = o;
    x->base.native = 1;
    x->pool = pool;
    x->cbs = *cbs;
    x->ud = ud;
    x->resp.content_length = -1;
    x->is_head = !strcasecmp(method, "HEAD");
    x->upgrade = opts->upgrade;
    int with_length = body || (strcasecmp(method, "GET") && !x->is_head);
    /* Over TLS a small body rides in the head's buffer: one record. */
    size_t extra = x->o.tls && body && body_have == body_len && body_len <= TLS_COALESCE_MAX ? body_len : 0;
    x->head = build_head(method, &x->o, path, headers, with_length, body_len, extra, &x->head_len);
    if (!x->head) {
        free(x);
        return NULL;
    }
    if (extra) {
        memcpy(x->head + x->head_len, body, body_len);
        x->head_len += body_len;
    } else {
        x->body = body;
        x->body_len = body ? body_len : 0;
        x->body_have = body ? body_have : 0;
        x->cut = x->body_have < x->body_len;
    }
    x->max_header = opts->max_header_bytes ? opts->max_header_bytes : 64u << 10;
    x->connect_timeout_ms = opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : 10000;
    x->idle_timeout_s = opts->idle_timeout_s;
    x->t_start = hr_monotonic_ms();
    x->deadline = x->t_start + (opts->total_timeout_s > 0 ? (double)opts->total_timeout_s * 1000.0 : 1e12);
    x->live_next = pool->live;
    if (pool->live) pool->live->live_prev = x;
    pool->live = x;
    if (++pool->n_live > pool->peak_cur) pool->peak_cur = pool->n_live;

    struct h1_conn *c = conn_pooled(pool, &x->o, x->t_start);
    if (c) {
        x->attempts = 1;
        c->x = x;
        x->c = c;
        c->state = C_SENDING;
        x->t_send = x->t_start; /* sent at once, microseconds later: no second clock read */
        arm_timer(x, 0, x->t_start);
        conn_send(c);
    } else {
        start_conn(x);
    }
    return &x->base;
}

int hr_h1_sending(const struct hr_transfer *t) { return ((const struct h1_xfer *)t)->t_send > 0; }

double hr_h1_send_wait_ms(struct hr_transfer *t)
{
    struct h1_xfer *x = (struct h1_xfer *)t;
    if (!x->t_send) return 0;
    double wait = x->t_send - x->t_start - x->connect_ms;
    return wait > 0 ? wait : 0;
}

void hr_h1_body_more(struct hr_transfer *t, size_t body_have)
{
    struct h1_xfer *x = (struct h1_xfer *)t;
    x->body_have = body_have < x->body_len ? body_have : x->body_len;
    struct h1_conn *c = x->c;
    /* Sending, and not waiting for the socket to take more: send now. */
    if (c && c->state == C_SENDING && !(c->ev_kind & EV_WRITE)) conn_send(c);
}

void hr_h1_resume(struct hr_transfer *t)
{
    struct h1_xfer *x = (struct h1_xfer *)t;
    if (!x->paused || x->aborted || !x->c) return;
    x->paused = 0;
    /* From the loop, not from inside the caller's write callback: the kept
     * bytes are processed first, then the socket is read again. */
    conn_want(x->c, EV_READ);
    event_active(&x->c->ev, EV_READ, 1);
}

void hr_h1_abort(struct hr_transfer *t)
{
    struct h1_xfer *x = (struct h1_xfer *)t;
    if (!x) return;
    if (x->in_cb) {
        x->aborted = 1; /* finished once the callback returns */
        return;
    }
    if (x->c) {
        x->c->x = NULL;
        conn_close(x->c);
        x->c = NULL;
    }
    xfer_free(x);
}
