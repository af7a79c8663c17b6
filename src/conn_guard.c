/* conn_guard.c — client connections that would otherwise hold a worker:
 * the file-descriptor limit (accept() failing with EMFILE would make the
 * listener spin) and clients that dribble a request (client_timeout is a
 * deadline for the whole request, not an idle timer). */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/listener.h>
#include "conn_guard.h"
#include "guard.h"
#include "log.h"
#include "read_ahead.h"
#include "stats.h"

#define LOGGER "headroom.server"
#define ACCEPT_PAUSE_MS 250
#define MAX_PENDING 256

/* One entry per file descriptor (a client socket belongs to one worker at a
 * time): since when the connection has been waiting for a whole request,
 * and the socket's inode, so a reused descriptor is never mistaken for it. */
struct conn_watch {
    atomic_int owner;            /* worker index + 1; 0 = none */
    atomic_int busy;             /* a request of it is being answered */
    _Atomic unsigned long long ino;
    _Atomic long long since_ms;
};

struct hr_conn_guard {
    struct hr_worker *w;
    struct event *sweep, *resume, *register_ev;
    struct evhttp_bound_socket *bound;
    struct evconnlistener *listener;
    int reserve_fd;
    struct bufferevent *pending[MAX_PENDING]; /* created, fd not known yet */
    size_t n_pending;
};

static struct conn_watch *table;
static size_t table_len;
static atomic_int max_fd_seen;

static long long now_ms(void) { return (long long)hr_monotonic_ms(); }

int hr_conn_guard_init(void)
{
    struct rlimit rl;
    size_t n = 65536;
    if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur != RLIM_INFINITY) n = (size_t)rl.rlim_cur;
    if (n > (1u << 20)) n = 1u << 20;
    table = calloc(n, sizeof *table);
    table_len = table ? n : 0;
    return table ? 0 : -ENOMEM;
}

void hr_conn_guard_shutdown(void)
{
    free(table);
    table = NULL;
    table_len = 0;
}

static unsigned long long inode_of(int fd)
{
    struct stat st;
    return fstat(fd, &st) ? 0 : (unsigned long long)st.st_ino;
}

/* evhttp sets the socket on the bufferevent right after this callback
 * returns; the registration runs before the loop polls again, so before
 * evhttp can have read from (or freed) the connection. */
static void register_pending(evutil_socket_t unused, short what, void *arg)
{
    (void)unused;
    (void)what;
    struct hr_conn_guard *g = arg;
    long long now = now_ms();
    for (size_t i = 0; i < g->n_pending; i++) {
        int fd = (int)bufferevent_getfd(g->pending[i]);
        if (fd < 0 || (size_t)fd >= table_len) continue;
        struct conn_watch *e = &table[fd];
        atomic_store(&e->ino, inode_of(fd));
        atomic_store(&e->since_ms, now);
        atomic_store(&e->busy, 0);
        atomic_store(&e->owner, (int)g->w->index + 1);
        int m = atomic_load(&max_fd_seen);
        while (fd > m && !atomic_compare_exchange_weak(&max_fd_seen, &m, fd)) {}
    }
    g->n_pending = 0;
}

static struct bufferevent *new_bev(struct event_base *base, void *arg)
{
    struct hr_conn_guard *g = arg;
    struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (bev) hr_read_ahead_attach(bev); /* large bodies in a few loop turns */
    if (bev && g->n_pending < MAX_PENDING) {
        g->pending[g->n_pending++] = bev;
        event_active(g->register_ev, EV_TIMEOUT, 0);
    }
    return bev;
}

static int client_timeout_s(const struct hr_worker *w)
{
    return __atomic_load_n(&w->d->cfg->client_timeout_s, __ATOMIC_RELAXED); /* SIGHUP may change it */
}

static struct bufferevent *bev_of(struct evhttp_request *req)
{
    struct evhttp_connection *c = evhttp_request_get_connection(req);
    return c ? evhttp_connection_get_bufferevent(c) : NULL;
}

/* client_timeout bounds receiving a request, and evhttp applies it as the
 * connection's read and write idle timers. While the answer is written,
 * evhttp keeps reading only to notice the client leaving, so its read timer
 * would cut an answer that is merely silent (a stream while the model
 * thinks): it is off from dispatch until the answer is done, when the
 * connection waits for its next request again. The write timer stays: a
 * client that takes nothing of a pending answer for client_timeout is gone. */
static void request_done(struct evhttp_request *req, void *arg)
{
    struct hr_worker *w = arg;
    struct bufferevent *bev = bev_of(req);
    if (!bev) return;
    struct timeval tv = {client_timeout_s(w), 0};
    bufferevent_set_timeouts(bev, &tv, &tv);
    int fd = (int)bufferevent_getfd(bev);
    if (fd < 0 || (size_t)fd >= table_len || atomic_load(&table[fd].owner) != (int)w->index + 1) return;
    atomic_store(&table[fd].since_ms, now_ms());
    atomic_store(&table[fd].busy, 0);
}

void hr_conn_guard_request(struct hr_worker *w, struct evhttp_request *req)
{
    struct bufferevent *bev = bev_of(req);
    if (!bev) return;
    struct timeval tv = {client_timeout_s(w), 0};
    bufferevent_set_timeouts(bev, NULL, &tv);
    evhttp_request_set_on_complete_cb(req, request_done, w);
    int fd = (int)bufferevent_getfd(bev);
    if (fd < 0 || (size_t)fd >= table_len || atomic_load(&table[fd].owner) != (int)w->index + 1) return;
    atomic_store(&table[fd].busy, 1);
}

/* A client still sending its request after client_timeout: 408 in JSON,
 * then the socket is shut, which evhttp sees as the client leaving. */
static void expire(int fd, int timeout_s)
{
    char body[300], msg[512];
    int blen = snprintf(body, sizeof body,
                        "{\"error\":{\"message\":\"request not received within client_timeout (%d s): send the whole "
                        "request sooner, or raise client_timeout in headroom.conf\",\"type\":\"invalid_request_error\","
                        "\"param\":null,\"code\":\"request_timeout\"}}", timeout_s);
    int mlen = snprintf(msg, sizeof msg,
                        "HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\nConnection: close\r\n"
                        "Content-Length: %d\r\n\r\n%s", blen, body);
    ssize_t wr = send(fd, msg, (size_t)mlen, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)wr; /* a client that reads nothing still loses the connection */
    shutdown(fd, SHUT_RDWR);
    hr_guard_count(HR_REFUSE_SLOW_CLIENT);
}

static void sweep(evutil_socket_t unused, short what, void *arg)
{
    (void)unused;
    (void)what;
    struct hr_conn_guard *g = arg;
    int timeout_s = client_timeout_s(g->w);
    /* One second of grace: evhttp's idle timer (the same length) closes
     * silent connections first, quietly. */
    long long limit = (long long)timeout_s * 1000 + 1000, now = now_ms();
    int top = atomic_load(&max_fd_seen), me = (int)g->w->index + 1;
    for (int fd = 0; fd <= top && (size_t)fd < table_len; fd++) {
        struct conn_watch *e = &table[fd];
        if (atomic_load(&e->owner) != me || atomic_load(&e->busy) || now - atomic_load(&e->since_ms) < limit) continue;
        unsigned long long ino = atomic_load(&e->ino);
        atomic_store(&e->owner, 0);
        if (ino && inode_of(fd) == ino) {
            HR_DEBUG(LOGGER, "client on fd %d sent no whole request within client_timeout (%d s): 408", fd, timeout_s);
            expire(fd, timeout_s);
        }
    }
}

static void resume_accepting(evutil_socket_t unused, short what, void *arg)
{
    (void)unused;
    (void)what;
    struct hr_conn_guard *g = arg;
    if (g->reserve_fd < 0) g->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (g->listener) evconnlistener_enable(g->listener);
}

/* accept() failed for a reason retrying at once cannot fix (no descriptor
 * left): answer one waiting client with the reserve descriptor so it is not
 * left hanging, then stop accepting for a moment instead of spinning. */
static struct hr_conn_guard *guards[256]; /* by worker index */

static void on_accept_error(struct evconnlistener *l, void *arg)
{
    int err = errno;
    (void)arg; /* evhttp's own argument */
    struct hr_conn_guard *g = NULL;
    for (size_t i = 0; i < sizeof guards / sizeof *guards && !g; i++)
        if (guards[i] && guards[i]->listener == l) g = guards[i];
    if (!g) return;
    static struct hr_log_limit lim;
    hr_guard_count_accept_error();
    HR_WARN_LIMITED(&lim, 60, LOGGER,
                    "cannot accept connections: %s; pausing accepts for %d ms (raise the open-file limit, "
                    "e.g. LimitNOFILE= or ulimit -n, or lower max_connections)", strerror(err), ACCEPT_PAUSE_MS);
    if ((err == EMFILE || err == ENFILE) && g->reserve_fd >= 0) {
        close(g->reserve_fd);
        g->reserve_fd = -1;
        int fd = accept4(evconnlistener_get_fd(l), NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd >= 0) {
            static const char body[] = "{\"error\":{\"message\":\"headroomd is out of file descriptors; retry "
                                       "shortly\",\"type\":\"overloaded_error\",\"param\":null,\"code\":\"overloaded\"}}";
            char msg[512];
            int n = snprintf(msg, sizeof msg,
                             "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
                             "Connection: close\r\nContent-Length: %zu\r\n\r\n%s", sizeof body - 1, body);
            ssize_t wr = send(fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
            (void)wr;
            close(fd);
            hr_guard_count(HR_REFUSE_OVERLOADED);
        }
    }
    evconnlistener_disable(l);
    struct timeval tv = {0, ACCEPT_PAUSE_MS * 1000};
    evtimer_add(g->resume, &tv);
}

int hr_conn_guard_worker(struct hr_worker *w, struct evhttp_bound_socket *bound)
{
    struct hr_conn_guard *g = calloc(1, sizeof *g);
    if (!g) return -ENOMEM;
    w->guard = g;
    g->w = w;
    g->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    g->sweep = event_new(w->base, -1, EV_PERSIST, sweep, g);
    g->resume = evtimer_new(w->base, resume_accepting, g);
    g->register_ev = event_new(w->base, -1, 0, register_pending, g);
    if (!g->sweep || !g->resume || !g->register_ev) return -ENOMEM;
    struct timeval tv = {1, 0};
    event_add(g->sweep, &tv);
    evhttp_set_bevcb(w->http, new_bev, g);
    g->bound = bound;
    g->listener = evhttp_bound_socket_get_listener(bound);
    if (w->index < sizeof guards / sizeof *guards) guards[w->index] = g;
    if (g->listener) evconnlistener_set_error_cb(g->listener, on_accept_error);
    return 0;
}

void hr_conn_guard_stop_accepting(struct hr_worker *w)
{
    struct hr_conn_guard *g = w->guard;
    if (!g || !g->bound) return;
    evtimer_del(g->resume);
    /* Closed, not just paused: new connections are refused at once (and a
     * replacement process can take the port) instead of waiting in the backlog. */
    evhttp_del_accept_socket(w->http, g->bound);
    g->bound = NULL;
    g->listener = NULL;
}

void hr_conn_guard_worker_free(struct hr_worker *w)
{
    struct hr_conn_guard *g = w->guard;
    if (!g) return;
    if (g->sweep) event_free(g->sweep);
    if (g->resume) event_free(g->resume);
    if (g->register_ev) event_free(g->register_ev);
    if (g->reserve_fd >= 0) close(g->reserve_fd);
    if (w->index < sizeof guards / sizeof *guards) guards[w->index] = NULL;
    free(g);
    w->guard = NULL;
}
