/* redis_conn.c — per-worker asynchronous Redis connections (hiredis on the
 * worker's libevent loop): pipelined commands with a deadline each, and
 * reconnection with backoff. Replies come in order, so one overdue answer
 * means the connection is stuck: it is dropped and every waiting command
 * fails at once (the callers fail open or closed as configured). A
 * connection is up once Redis answered its AUTH and SELECT (or a PING when
 * there is neither) without an error; commands that arrive
 * before wait for that (a refused one is a failed connection: the commands
 * never reach Redis, which would run them unauthenticated or in database 0).
 * A host name is looked up on a thread of its own, never on the loop.
 * A command's timeout counts from when it was queued, except while bytes
 * queued for Redis are still going out (a large original on a slow link):
 * then the connection is stuck only if none of them moved for timeout_ms,
 * and the answers have timeout_ms from when the last byte went. */
#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/sds.h>
#include "hist.h"
#include "log.h"
#include "redis_conn.h"
#include "warn_gate.h"
#include "stats.h"

#define LOGGER "headroom.backend"
#define BACKOFF_MIN_MS 100.0
#define BACKOFF_MAX_MS 2000.0
#define KIND_SETUP (-1)         /* AUTH, SELECT or PING: not counted as an operation */
#define REFUSED_WARN_MS 10000.0 /* at most one "Redis refused" line this often */
#define LARGE_COMMAND 65536     /* bytes: watched as they go out from the start */

struct op {
    struct hr_rconn *c;
    int kind;
    double t0;                  /* monotonic ms when sent */
    hr_rconn_done_fn done;      /* NULL for the setup (AUTH, SELECT, PING) */
    void *ud;                   /* for the setup: the command's name */
    int finished;               /* done() already called (timeout, failure) */
    int sent;                   /* handed to hiredis (hiredis frees it via on_reply) */
    int held;                   /* fail_all is calling the done()s: on_reply must not free it */
    int released;               /* ... and hiredis's callback for it has run: fail_all frees it */
    char *cmd;                  /* not sent yet (connecting): the command, formatted */
    size_t cmdlen;
    struct op *prev, *next;     /* the connection's in-flight list, oldest first */
};

/* A host name resolved on a thread of its own: getaddrinfo blocks (a
 * resolver that does not answer holds it for its timeout, A and AAAA), and
 * on the worker's loop it held every request of that worker meanwhile, on
 * every reconnect. The connection and the thread share it; the last one
 * done frees it (owner NULL: the connection is gone). */
struct resolve_job {
    pthread_mutex_t lock;
    struct hr_rconn *owner;
    struct event *done_ev;      /* the owner's, activated from the thread */
    int refs;
    int finished;
    char host[256];
    char port[8];
    char addr[INET6_ADDRSTRLEN];
    char err[160];
};

struct hr_rconn {
    struct event_base *base;
    struct hr_rconn_settings s;
    size_t index;
    redisAsyncContext *ac;      /* NULL while down */
    int connected;              /* up: connected, AUTH and SELECT (or PING) answered */
    int setup_pending;          /* setup answers still to come */
    int down_logged;            /* one WARN per outage (and per new reason) */
    char down_why[200];         /* the reason last logged */
    double backoff_ms;
    struct event *retry;        /* reconnect timer */
    struct event *deadline;     /* the oldest command's timeout */
    struct event *resolved;     /* the resolving thread is done */
    struct resolve_job *job;    /* in flight, or NULL */
    int resolving;              /* this attempt waits for it: commands queue as while connecting */
    /* Bytes going out on this connection (see outgoing()): appended to
     * hiredis's buffer, and taken by Redis's side as last seen. */
    unsigned long long queued, taken;
    double moved_ms;            /* when `taken` last grew (monotonic ms) */
    int going;                  /* bytes were waiting to go at the last look */
    double went_ms;             /* when they were last seen all gone: answers count from there */
    struct op *head, *tail;
    void (*on_up)(struct hr_rconn *c, void *ud);
    void *up_ud;
};

/* Figures of every connection, summed. */
static struct {
    pthread_mutex_t lock;
    const char *const *kinds;
    size_t n_kinds;
    unsigned long long ops[HR_RCONN_MAX_KINDS], errors[HR_RCONN_MAX_KINDS];
    unsigned long long timeouts, reconnects, disconnects, connect_failures;
    int connections, up;
    struct hr_hist latency;
    struct hr_warn_gate refused_warn; /* "Redis refused" lines */
    double down_since;          /* monotonic ms since not every connection is up, 0 while all are */
    char last_error[200];       /* why a connection last went down or failed */
} st = {.lock = PTHREAD_MUTEX_INITIALIZER};

void hr_rconn_kinds(const char *const *names, size_t n)
{
    st.kinds = names;
    st.n_kinds = n < HR_RCONN_MAX_KINDS ? n : HR_RCONN_MAX_KINDS;
}

static void count(int kind, int ok, double ms)
{
    if (kind < 0) return;
    pthread_mutex_lock(&st.lock);
    if (kind >= 0 && kind < HR_RCONN_MAX_KINDS) {
        st.ops[kind]++;
        if (!ok) st.errors[kind]++;
    }
    if (ok && ms >= 0) hr_hist_add(&st.latency, ms);
    pthread_mutex_unlock(&st.lock);
}

/* With st.lock held, after st.up or st.connections changed. */
static void note_all_up_locked(void)
{
    if (st.connections > 0 && st.up < st.connections) {
        if (!st.down_since) st.down_since = hr_monotonic_ms();
    } else {
        st.down_since = 0;
    }
}

static void set_up(struct hr_rconn *c, int up)
{
    if (c->connected == up) return;
    c->connected = up;
    pthread_mutex_lock(&st.lock);
    st.up += up ? 1 : -1;
    note_all_up_locked();
    pthread_mutex_unlock(&st.lock);
}

static void unlink_op(struct hr_rconn *c, struct op *o)
{
    if (o->prev) o->prev->next = o->next;
    else c->head = o->next;
    if (o->next) o->next->prev = o->prev;
    else c->tail = o->prev;
    o->prev = o->next = NULL;
}

/* Bytes of this connection not yet taken by Redis's side: in hiredis's
 * buffer, and (Linux) sent but not acknowledged by the peer's kernel. A
 * large original on a slow link sits there while it goes out. */
static size_t outgoing(const struct hr_rconn *c)
{
    if (!c->ac || !c->ac->c.obuf) return 0;
    size_t n = sdslen(c->ac->c.obuf);
#ifdef TIOCOUTQ
    int q = 0;
    if (c->ac->c.fd >= 0 && ioctl(c->ac->c.fd, TIOCOUTQ, &q) == 0 && q > 0) n += (size_t)q;
#endif
    return n;
}

/* hiredis appended a command to its buffer: before is the length before. */
static void note_queued(struct hr_rconn *c, size_t before)
{
    size_t now = c->ac && c->ac->c.obuf ? sdslen(c->ac->c.obuf) : before;
    if (now > before) c->queued += now - before;
}

/* Look at the bytes going out: whether any moved since the last look, and
 * when the last of them went. */
static void look_outgoing(struct hr_rconn *c, double now)
{
    size_t out = outgoing(c);
    unsigned long long taken = c->queued > out ? c->queued - out : 0;
    if (taken > c->taken) {
        c->taken = taken;
        c->moved_ms = now;
    }
    if (out && !c->going) {
        c->going = 1;
        c->moved_ms = now;
    } else if (!out && c->going) {
        c->going = 0;
        c->went_ms = now;
    }
}

/* How often bytes going out are looked at: a stall is seen within
 * timeout_ms and this, the moment they all went this late at most. */
static double look_every(const struct hr_rconn *c)
{
    double ms = c->s.timeout_ms / 8.0;
    return ms < 2 ? 2 : ms > 100 ? 100 : ms;
}

/* When the oldest command is late: timeout_ms from when it was queued, or
 * from when the bytes queued before its answer all went, if later. */
static double head_due(const struct hr_rconn *c)
{
    double from = c->head->t0 > c->went_ms ? c->head->t0 : c->went_ms;
    return from + c->s.timeout_ms;
}

static void arm_deadline(struct hr_rconn *c)
{
    if (!c->head) {
        event_del(c->deadline);
        return;
    }
    /* While bytes go out, look again soon (on_deadline decides). */
    double left = c->going ? look_every(c) : head_due(c) - hr_monotonic_ms();
    if (left < 0) left = 0;
    struct timeval tv = {(time_t)(left / 1000), (suseconds_t)((long)left % 1000) * 1000 + 1};
    event_add(c->deadline, &tv);
}

static void schedule_retry(struct hr_rconn *c)
{
    struct timeval tv = {(time_t)(c->backoff_ms / 1000), (suseconds_t)((long)c->backoff_ms % 1000) * 1000};
    event_add(c->retry, &tv);
    c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
}

/* A connection was lost (it had been up) or an attempt failed: counted
 * once, as one of timeouts (an established connection dropped for a late
 * answer), disconnects (an established one lost otherwise) or
 * connect_failures (an attempt that never got up, a timed-out one too);
 * logged once per outage and reason, retried. */
static void went_down(struct hr_rconn *c, const char *why, int timed_out)
{
    int was_up = c->connected;
    set_up(c, 0);
    c->setup_pending = 0;
    c->resolving = 0;           /* a late answer from the resolver starts the next attempt */
    pthread_mutex_lock(&st.lock);
    if (!was_up) st.connect_failures++;
    else if (timed_out) st.timeouts++;
    else st.disconnects++;
    snprintf(st.last_error, sizeof st.last_error, "%s", why);
    pthread_mutex_unlock(&st.lock);
    if (!c->down_logged || strcmp(c->down_why, why)) {
        const char *effect = c->s.down_effect ? c->s.down_effect() : NULL;
        HR_WARN(LOGGER, "worker %zu: Redis at %s:%d unavailable (%s); %s until it is back; retrying with backoff",
                c->index, c->s.host, c->s.port, why, effect ? effect : "shared state unchecked or not shared");
        c->down_logged = 1;
        snprintf(c->down_why, sizeof c->down_why, "%s", why);
    }
    schedule_retry(c);
}

static void free_op(struct op *o)
{
    if (o->cmd) redisFreeCommand(o->cmd);
    free(o);
}

/* Drop a stuck or broken connection: every waiting command fails now, as
 * lost when it was written, unsent when it was waiting for the setup.
 * free_ac: 0 when hiredis frees the context itself (after a failed connect
 * or a disconnect). */
static void fail_all(struct hr_rconn *c, const char *why, int timed_out, int free_ac)
{
    redisAsyncContext *ac = c->ac;
    c->ac = NULL;
    c->going = 0;               /* its bytes are gone with it */
    c->went_ms = 0;
    /* The commands are taken off the connection and kept (held: hiredis's
     * callback for a sent one does not free it) until each has had its
     * done(): nothing is allocated here, so every waiting request gets its
     * answer even out of memory. They run last, with the connection
     * already down, so what they send next fails at once. */
    struct op *list = c->head;
    c->head = c->tail = NULL;
    for (struct op *o = list; o; o = o->next) {
        o->finished = 1;
        o->held = 1;
    }
    event_del(c->deadline);
    if (ac && free_ac) redisAsyncFree(ac); /* runs each sent command's callback with NULL */
    went_down(c, why, timed_out);
    while (list) {
        struct op *o = list;
        list = o->next;
        o->prev = o->next = NULL;
        if (o->done) {
            count(o->kind, 0, -1);
            o->done(o->ud, o->sent ? HR_RCONN_LOST : HR_RCONN_UNSENT, NULL);
        }
        o->held = 0;
        /* An unsent one is ours; a sent one hiredis's, unless its callback
         * already ran (redisAsyncFree above): then it is ours too. */
        if (!o->sent || o->released) free_op(o);
    }
}

/* Error replies are logged at most every REFUSED_WARN_MS, with the number
 * left out since: with Redis refusing everything, every request would
 * otherwise log a line per command. */
static void warn_refused(int kind, const redisReply *r)
{
    pthread_mutex_lock(&st.lock);
    unsigned long long quiet = 0;
    int say = hr_warn_gate_pass(&st.refused_warn, hr_monotonic_ms(), REFUSED_WARN_MS, &quiet);
    const char *name = kind >= 0 && (size_t)kind < st.n_kinds ? st.kinds[kind] : "backend";
    pthread_mutex_unlock(&st.lock);
    if (!say) return;
    if (quiet)
        HR_WARN(LOGGER, "Redis refused a %s command: %.*s (and %llu more refused commands since the last such line; "
                "one line at most every %.0f s)", name, (int)r->len, r->str, quiet, REFUSED_WARN_MS / 1000);
    else
        HR_WARN(LOGGER, "Redis refused a %s command: %.*s", name, (int)r->len, r->str);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct hr_rconn *c = arg;
    if (!c->head) return;
    double now = hr_monotonic_ms();
    look_outgoing(c, now);
    /* Bytes still going out: late only if none moved for timeout_ms. */
    int late = c->going ? now - c->moved_ms >= c->s.timeout_ms && now >= c->head->t0 + c->s.timeout_ms
                        : now >= head_due(c);
    if (late) {
        char why[320];
        if (c->resolving)
            snprintf(why, sizeof why, "resolving %s took longer than timeout_ms %d", c->s.host, c->s.timeout_ms);
        else if (c->going)
            snprintf(why, sizeof why, "Redis took none of the %zu bytes waiting to go to it for timeout_ms %d",
                     outgoing(c), c->s.timeout_ms);
        else
            snprintf(why, sizeof why, "no answer within timeout_ms %d", c->s.timeout_ms);
        fail_all(c, why, 1, 1);
    } else {
        arm_deadline(c);
    }
}

static void on_setup_answer(struct hr_rconn *c, const char *what, const redisReply *r);

static void on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)ac;
    struct op *o = priv;
    struct hr_rconn *c = o->c;
    if (o->held) { /* fail_all still has it: it frees it */
        o->released = 1;
        return;
    }
    if (!o->finished) {
        o->finished = 1;
        unlink_op(c, o);
        const redisReply *r = reply;
        int status = !r ? HR_RCONN_LOST : r->type == REDIS_REPLY_ERROR ? HR_RCONN_REFUSED : HR_RCONN_OK;
        if (status == HR_RCONN_REFUSED && o->kind != KIND_SETUP) warn_refused(o->kind, r);
        double now = hr_monotonic_ms();
        count(o->kind, status == HR_RCONN_OK, now - o->t0);
        if (c->going) look_outgoing(c, now);
        arm_deadline(c);
        if (o->kind == KIND_SETUP) on_setup_answer(c, o->ud, r);
        else o->done(o->ud, status, status == HR_RCONN_OK ? r : NULL);
    }
    free_op(o);
}

/* Connected, the setup answered: send what waited, then tell the owner. */
static void became_ready(struct hr_rconn *c)
{
    set_up(c, 1);
    c->backoff_ms = BACKOFF_MIN_MS;
    if (c->down_logged) HR_INFO(LOGGER, "worker %zu: Redis at %s:%d is back", c->index, c->s.host, c->s.port);
    c->down_logged = 0;
    c->down_why[0] = '\0';
    pthread_mutex_lock(&st.lock);
    st.reconnects++;
    pthread_mutex_unlock(&st.lock);
    unsigned long long queued_before = c->queued;
    for (struct op *o = c->head, *next; o; o = next) {
        next = o->next;
        if (o->sent) continue;
        size_t before = sdslen(c->ac->c.obuf);
        if (redisAsyncFormattedCommand(c->ac, on_reply, o, o->cmd, o->cmdlen) == REDIS_OK) {
            note_queued(c, before);
            o->sent = 1;
            redisFreeCommand(o->cmd);
            o->cmd = NULL;
            continue;
        }
        unlink_op(c, o);
        count(o->kind, 0, -1);
        o->done(o->ud, HR_RCONN_UNSENT, NULL);
        free_op(o);
    }
    if (c->queued - queued_before >= LARGE_COMMAND) look_outgoing(c, hr_monotonic_ms()); /* watch it go */
    arm_deadline(c);
    if (c->on_up) c->on_up(c, c->up_ud);
}

/* AUTH, SELECT or PING answered. Refused: this connection must not be
 * used (it would run every command unauthenticated, or in database 0), so
 * it counts as a failed attempt, retried on the backoff schedule; fixing
 * Redis's side (or the url) heals it. */
static void on_setup_answer(struct hr_rconn *c, const char *what, const redisReply *r)
{
    if (!r) return; /* the connection failed: handled where it did */
    if (r->type == REDIS_REPLY_ERROR) {
        char why[200];
        snprintf(why, sizeof why, "it refused %s: %.*s; fix the %s in backend redis { url … } or on Redis's side",
                 what, (int)(r->len < 100 ? r->len : 100), r->str,
                 !strcmp(what, "SELECT") ? "database number after the /"
                 : !strcmp(what, "AUTH") ? "user or password" : "password (if Redis asks for one)");
        fail_all(c, why, 0, 1);
        return;
    }
    if (!--c->setup_pending) became_ready(c);
}

static void on_connected(const redisAsyncContext *ac, int status)
{
    struct hr_rconn *c = ac->data;
    if (c->ac != ac) return;
    if (status != REDIS_OK) {       /* hiredis frees it after this call */
        fail_all(c, ac->errstr[0] ? ac->errstr : "connect failed", 0, 0);
        return;
    }
    if (!c->setup_pending) became_ready(c);
}

static void on_disconnected(const redisAsyncContext *ac, int status)
{
    (void)status;
    struct hr_rconn *c = ac->data;
    if (c->ac != ac) return;        /* dropped by fail_all, already handled */
    /* Commands hiredis had got their NULL callbacks just before this; the
     * ones waiting for the setup fail unsent. */
    fail_all(c, ac->errstr[0] ? ac->errstr : "connection closed", 0, 0);
}

/* AUTH, SELECT or PING, ahead of everything on a new connection: written
 * at once, while commands queued meanwhile (the host name was resolving)
 * wait, formatted, until it is answered. 0, or -1 when it could not be
 * queued. */
static int queue_setup(struct hr_rconn *c, const char *what, int argc, const char **argv)
{
    struct op *o = calloc(1, sizeof *o);
    if (!o) return -1;
    *o = (struct op){.c = c, .kind = KIND_SETUP, .t0 = hr_monotonic_ms(), .ud = (void *)what, .sent = 1,
                     .prev = c->tail};
    size_t before = sdslen(c->ac->c.obuf);
    if (redisAsyncCommandArgv(c->ac, on_reply, o, argc, argv, NULL) != REDIS_OK) {
        free(o);
        return -1;
    }
    note_queued(c, before);
    if (c->tail) c->tail->next = o;
    else c->head = o;
    c->tail = o;
    c->setup_pending++;
    arm_deadline(c);
    return 0;
}

static void job_release(struct resolve_job *j)
{
    pthread_mutex_lock(&j->lock);
    int last = !--j->refs;
    pthread_mutex_unlock(&j->lock);
    if (!last) return;
    pthread_mutex_destroy(&j->lock);
    free(j);
}

static void *resolve_thread(void *arg)
{
    struct resolve_job *j = arg;
    /* As hiredis resolves: IPv4 first, IPv6 if there is none. */
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(j->host, j->port, &hints, &res);
    if (rc) {
        hints.ai_family = AF_INET6;
        rc = getaddrinfo(j->host, j->port, &hints, &res);
    }
    char addr[INET6_ADDRSTRLEN] = "", err[160] = "";
    if (rc) {
        snprintf(err, sizeof err, "cannot resolve %.100s: %s", j->host, gai_strerror(rc));
    } else {
        const struct addrinfo *a = res; /* the first: hiredis's non-blocking connect takes the first too */
        const void *in = a->ai_family == AF_INET6 ? (const void *)&((struct sockaddr_in6 *)a->ai_addr)->sin6_addr
                                                  : (const void *)&((struct sockaddr_in *)a->ai_addr)->sin_addr;
        if (!inet_ntop(a->ai_family, in, addr, sizeof addr))
            snprintf(err, sizeof err, "cannot resolve %.100s: no usable address", j->host);
        freeaddrinfo(res);
    }
    pthread_mutex_lock(&j->lock);
    memcpy(j->addr, addr, sizeof addr);
    memcpy(j->err, err, sizeof err);
    j->finished = 1;
    if (j->owner) event_active(j->done_ev, EV_READ, 0);
    pthread_mutex_unlock(&j->lock);
    job_release(j);
    return NULL;
}

static void connect_to(struct hr_rconn *c, const char *addr);

/* On the loop: the thread is done; the attempt goes on with its address. */
static void on_resolved(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct hr_rconn *c = arg;
    struct resolve_job *j = c->job;
    if (!j) return;
    pthread_mutex_lock(&j->lock);
    int finished = j->finished;
    char addr[INET6_ADDRSTRLEN], err[160];
    memcpy(addr, j->addr, sizeof addr);
    memcpy(err, j->err, sizeof err);
    if (finished) j->owner = NULL;
    pthread_mutex_unlock(&j->lock);
    if (!finished) return;
    c->job = NULL;
    job_release(j);
    if (c->ac) return;
    event_del(c->retry); /* this is the attempt */
    c->resolving = 0;
    if (err[0]) went_down(c, err, 0);
    else connect_to(c, addr);
}

/* A host name is resolved off the loop first; an address connects at once.
 * Without a thread (none could be started) hiredis resolves it, blocking. */
static void connect_now(struct hr_rconn *c)
{
    unsigned char buf[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, c->s.host, buf) == 1 || inet_pton(AF_INET6, c->s.host, buf) == 1) {
        connect_to(c, c->s.host);
        return;
    }
    if (c->job) { /* still resolving (an earlier attempt timed out): wait for it */
        c->resolving = 1;
        return;
    }
    struct resolve_job *j = calloc(1, sizeof *j);
    pthread_attr_t attr;
    pthread_t t;
    int started = 0;
    if (j && !pthread_mutex_init(&j->lock, NULL)) { /* calloc'd: the other fields start zeroed */
        j->owner = c;
        j->done_ev = c->resolved;
        j->refs = 2;
        snprintf(j->host, sizeof j->host, "%s", c->s.host);
        snprintf(j->port, sizeof j->port, "%d", c->s.port);
        if (!pthread_attr_init(&attr)) {
            pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
            started = !pthread_create(&t, &attr, resolve_thread, j);
            pthread_attr_destroy(&attr);
        }
        if (!started) pthread_mutex_destroy(&j->lock);
    }
    if (!started) {
        free(j);
        connect_to(c, c->s.host);
        return;
    }
    c->job = j;
    c->resolving = 1;
}

static void connect_to(struct hr_rconn *c, const char *addr)
{
    redisAsyncContext *ac = redisAsyncConnect(addr, c->s.port);
    if (!ac || ac->err) {
        char why[160];
        snprintf(why, sizeof why, "%s", ac ? ac->errstr : "out of memory");
        if (ac) redisAsyncFree(ac);
        went_down(c, why, 0);
        return;
    }
    ac->data = c;
    c->ac = ac;
    c->queued = c->taken = 0;
    c->going = 0;
    c->went_ms = 0;
    redisLibeventAttach(ac, c->base);
    redisAsyncSetConnectCallback(ac, on_connected);
    redisAsyncSetDisconnectCallback(ac, on_disconnected);
    /* First on the connection; other commands wait until they are accepted
     * (one missing would let them run unauthenticated, or in database 0). */
    c->setup_pending = 0;
    int bad = 0;
    if (c->s.user) { /* an ACL user (Redis 6+); a nopass user takes any password */
        const char *argv[] = {"AUTH", c->s.user, c->s.password ? c->s.password : ""};
        bad |= queue_setup(c, "AUTH", 3, argv);
    } else if (c->s.password) {
        const char *argv[] = {"AUTH", c->s.password};
        bad |= queue_setup(c, "AUTH", 2, argv);
    }
    if (c->s.db) {
        char db[16];
        snprintf(db, sizeof db, "%d", c->s.db);
        const char *argv[] = {"SELECT", db};
        bad |= queue_setup(c, "SELECT", 2, argv);
    }
    /* Nothing to set up: a PING, so the connection is up once Redis answers,
     * not when the kernel accepts it (a stopped Redis still does), and a
     * Redis that wants a password says so here (NOAUTH). */
    if (!c->setup_pending && !bad) {
        const char *argv[] = {"PING"};
        bad |= queue_setup(c, "PING", 1, argv);
    }
    if (bad) fail_all(c, "out of memory", 0, 1);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct hr_rconn *c = arg;
    if (!c->ac && !c->resolving) connect_now(c);
}

struct hr_rconn *hr_rconn_new(struct event_base *base, const struct hr_rconn_settings *s, size_t index,
                              void (*on_up)(struct hr_rconn *c, void *ud), void *ud)
{
    struct hr_rconn *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->base = base;
    c->s = *s;
    c->index = index;
    c->backoff_ms = BACKOFF_MIN_MS;
    c->on_up = on_up;
    c->up_ud = ud;
    c->retry = evtimer_new(base, on_retry, c);
    c->deadline = evtimer_new(base, on_deadline, c);
    c->resolved = event_new(base, -1, 0, on_resolved, c);
    if (!c->retry || !c->deadline || !c->resolved) {
        hr_rconn_free(c);
        return NULL;
    }
    pthread_mutex_lock(&st.lock);
    st.connections++;
    note_all_up_locked();
    pthread_mutex_unlock(&st.lock);
    connect_now(c);
    return c;
}

void hr_rconn_free(struct hr_rconn *c)
{
    if (!c) return;
    while (c->head) { /* the loop has stopped: nobody waits for these */
        struct op *o = c->head;
        unlink_op(c, o);
        o->finished = 1;
        if (!o->sent) free_op(o);
    }
    redisAsyncContext *ac = c->ac;
    c->ac = NULL;
    if (ac) redisAsyncFree(ac);
    set_up(c, 0);
    pthread_mutex_lock(&st.lock);
    st.connections--;
    note_all_up_locked();
    pthread_mutex_unlock(&st.lock);
    if (c->job) { /* the thread may still be in getaddrinfo: it must not wake this one */
        pthread_mutex_lock(&c->job->lock);
        c->job->owner = NULL;
        pthread_mutex_unlock(&c->job->lock);
        job_release(c->job);
        c->job = NULL;
    }
    if (c->retry) event_free(c->retry);
    if (c->deadline) event_free(c->deadline);
    if (c->resolved) event_free(c->resolved);
    free(c);
}

int hr_rconn_connected(const struct hr_rconn *c) { return c && c->connected; }

int hr_rconn_sendable(const struct hr_rconn *c) { return c && (c->ac || c->resolving); }

int hr_rconn_all_up(void)
{
    pthread_mutex_lock(&st.lock);
    int up = st.connections > 0 && st.up == st.connections;
    pthread_mutex_unlock(&st.lock);
    return up;
}

void hr_rconn_command(struct hr_rconn *c, int kind, int argc, const char **argv, const size_t *argvlen,
                      hr_rconn_done_fn done, void *ud)
{
    /* While connecting, it waits (within the same deadline) until the
     * connection is up; while down (waiting to reconnect), it fails at once. */
    struct op *o = c && (c->ac || c->resolving) ? calloc(1, sizeof *o) : NULL;
    if (!o) {
        count(kind, 0, -1);
        done(ud, HR_RCONN_UNSENT, NULL);
        return;
    }
    *o = (struct op){.c = c, .kind = kind, .t0 = hr_monotonic_ms(), .done = done, .ud = ud, .prev = c->tail};
    redisAsyncContext *ac = c->ac; /* NULL while resolving: the command waits, formatted */
    unsigned long long queued_before = c->queued;
    int rc;
    if (c->connected) {
        size_t before = sdslen(ac->c.obuf);
        rc = redisAsyncCommandArgv(ac, on_reply, o, argc, argv, argvlen);
        o->sent = rc == REDIS_OK;
        if (o->sent) note_queued(c, before);
    } else {
        int n = redisFormatCommandArgv(&o->cmd, argc, argv, argvlen);
        o->cmdlen = n > 0 ? (size_t)n : 0;
        rc = n > 0 ? REDIS_OK : REDIS_ERR;
    }
    if (rc != REDIS_OK) {
        free_op(o);
        count(kind, 0, -1);
        done(ud, HR_RCONN_UNSENT, NULL);
        return;
    }
    if (c->tail) c->tail->next = o;
    else c->head = o;
    c->tail = o;
    if (o == c->head) arm_deadline(c);
    /* Put it on the wire now rather than on the next loop turn: a budget
     * increment or a stored original then reaches Redis before the answer
     * that follows it reaches the client (and its next request, another
     * instance). Not from inside a hiredis callback: hiredis writes then. */
    int sent = o->sent;         /* a write that fails frees `o` (its callback runs) */
    if (sent && !(ac->c.flags & REDIS_IN_CALLBACK)) redisAsyncHandleWrite(ac);
    /* A large one may take a while to go: watch it from now. */
    if (sent && c->ac && c->queued - queued_before >= LARGE_COMMAND && !c->going) {
        look_outgoing(c, hr_monotonic_ms());
        arm_deadline(c);
    }
}

void hr_rconn_health(struct hr_rconn_health *h)
{
    pthread_mutex_lock(&st.lock);
    h->connections = st.connections;
    h->up = st.up;
    h->down_ms = st.down_since ? hr_monotonic_ms() - st.down_since : 0;
    snprintf(h->last_error, sizeof h->last_error, "%s", st.last_error);
    pthread_mutex_unlock(&st.lock);
}

void hr_rconn_stats(json_t *o)
{
    pthread_mutex_lock(&st.lock);
    json_t *ops = json_object(), *errors = json_object();
    unsigned long long total_errors = 0;
    for (size_t i = 0; i < st.n_kinds; i++) {
        json_object_set_new(ops, st.kinds[i], json_integer((json_int_t)st.ops[i]));
        json_object_set_new(errors, st.kinds[i], json_integer((json_int_t)st.errors[i]));
        total_errors += st.errors[i];
    }
    json_object_set_new(o, "connected", json_boolean(st.connections > 0 && st.up == st.connections));
    json_object_set_new(o, "connections", json_integer(st.connections));
    json_object_set_new(o, "connections_up", json_integer(st.up));
    json_object_set_new(o, "errors", json_integer((json_int_t)total_errors));
    json_object_set_new(o, "timeouts", json_integer((json_int_t)st.timeouts));
    json_object_set_new(o, "disconnects", json_integer((json_int_t)st.disconnects));
    json_object_set_new(o, "connect_failures", json_integer((json_int_t)st.connect_failures));
    json_object_set_new(o, "connects", json_integer((json_int_t)st.reconnects));
    json_object_set_new(o, "ops", ops);
    json_object_set_new(o, "errors_by_kind", errors);
    json_object_set_new(o, "latency_ms",
                        json_pack("{s:I,s:f,s:f,s:f,s:f}", "count", (json_int_t)st.latency.count, "average_ms",
                                  hr_hist_average(&st.latency), "p50_ms", hr_hist_quantile(&st.latency, 0.5),
                                  "p99_ms", hr_hist_quantile(&st.latency, 0.99), "max_ms", st.latency.max_ms));
    pthread_mutex_unlock(&st.lock);
}

static const char *const L_KIND[] = {"kind"};

int hr_rconn_metrics(hr_metric_visit_fn visit, void *ud)
{
    pthread_mutex_lock(&st.lock);
    struct hr_metric_family f = {sizeof f, "headroom_backend_up", "1 when every worker's Redis connection is up",
                                 HR_METRIC_GAUGE, 0, NULL};
    struct hr_metric_sample s = {.struct_size = sizeof s, .value = st.connections > 0 && st.up == st.connections};
    visit(ud, &f, &s);
    f = (struct hr_metric_family){sizeof f, "headroom_backend_connections_up", "Worker connections to Redis that are up",
                                  HR_METRIC_GAUGE, 0, NULL};
    s.value = st.up;
    visit(ud, &f, &s);
    f = (struct hr_metric_family){sizeof f, "headroom_backend_ops_total", "Redis commands sent, by kind",
                                  HR_METRIC_COUNTER, 1, L_KIND};
    for (size_t i = 0; i < st.n_kinds; i++) {
        s = (struct hr_metric_sample){.struct_size = sizeof s, .label_values = &st.kinds[i], .value = (double)st.ops[i]};
        visit(ud, &f, &s);
    }
    f = (struct hr_metric_family){sizeof f, "headroom_backend_errors_total",
                                  "Redis commands without an answer (down, timeout, error reply), by kind",
                                  HR_METRIC_COUNTER, 1, L_KIND};
    for (size_t i = 0; i < st.n_kinds; i++) {
        s = (struct hr_metric_sample){.struct_size = sizeof s, .label_values = &st.kinds[i], .value = (double)st.errors[i]};
        visit(ud, &f, &s);
    }
    f = (struct hr_metric_family){sizeof f, "headroom_backend_timeouts_total",
                                  "Established Redis connections dropped for an answer later than timeout_ms (a connection "
                                  "attempt that times out is a connect failure)", HR_METRIC_COUNTER, 0,
                                  NULL};
    s = (struct hr_metric_sample){.struct_size = sizeof s, .value = (double)st.timeouts};
    visit(ud, &f, &s);
    f = (struct hr_metric_family){sizeof f, "headroom_backend_connect_failures_total",
                                  "Redis connection attempts that failed (refused, timed out, AUTH, SELECT or PING "
                                  "refused)",
                                  HR_METRIC_COUNTER, 0, NULL};
    s = (struct hr_metric_sample){.struct_size = sizeof s, .value = (double)st.connect_failures};
    visit(ud, &f, &s);
    f = (struct hr_metric_family){sizeof f, "headroom_backend_latency_ms", "Redis command round trip (ms)",
                                  HR_METRIC_HISTOGRAM, 0, NULL};
    uint64_t cum[HR_HIST_PROM + 1];
    hr_hist_cumulative(&st.latency, cum);
    s = (struct hr_metric_sample){.struct_size = sizeof s, .n_buckets = HR_HIST_PROM + 1,
                                  .bucket_upper = hr_hist_prom_bounds, .bucket_cumulative = cum,
                                  .count = st.latency.count, .sum = st.latency.sum_ms};
    visit(ud, &f, &s);
    pthread_mutex_unlock(&st.lock);
    return HR_OK;
}
