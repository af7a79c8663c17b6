/* balance.c — accepted connections spread evenly over the workers.
 *
 * Every worker accepts on its own SO_REUSEPORT socket, and the kernel picks
 * the socket by a hash of the client's address and port: 64 connections
 * have landed 40 and 25 on two workers, 41 landed 5, 11, 16 and 9 on four.
 * Where each worker has a core to itself, the one with the most connections
 * is the first to queue them. So a worker that accepts a connection while
 * another worker has fewer open hands the socket to that one (what Envoy
 * calls exact connection balance). A hand-off costs one wake-up of the
 * other loop, once per connection: keep-alive clients pay it once, and a
 * balanced worker keeps what it accepts. Clients that open a connection per
 * request pay it on many of them (on the 2-vCPU bench host: -6 % req/s,
 * +25 us p50), and there, where every thread shares both cores, keep-alive
 * clients gained nothing measurable (bench/README.md, session 19): so it is
 * off unless balance_connections says yes.
 *
 * The decision and the inboxes share one lock: it is taken once per accept,
 * never per request. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <event2/event.h>
#include "balance.h"
#include "conn_counters.h"
#include "http_server.h"

struct handoff {
    struct handoff *next;
    evutil_socket_t fd;
    struct sockaddr_storage sa;
};

/* A worker's side of the balance (hr_worker.balance). */
struct hr_balance {
    struct hr_worker *w;
    atomic_int *open;   /* its client connections (conn_counters.c) */
    int taking;         /* 0 once its worker drains or stops */
    struct event *mail; /* activated from the accepting worker's thread */
    struct handoff *inbox, **inbox_tail;
    int pending; /* handed to it, not adopted yet */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static int load(const struct hr_balance *b)
{
    return atomic_load_explicit(b->open, memory_order_relaxed) + b->pending;
}

/* In the receiving worker's loop: serve what was handed over, in order. */
static void take_mail(evutil_socket_t unused, short what, void *arg)
{
    (void)unused;
    (void)what;
    struct hr_balance *b = arg;
    pthread_mutex_lock(&lock);
    struct handoff *h = b->inbox;
    b->inbox = NULL;
    b->inbox_tail = &b->inbox;
    pthread_mutex_unlock(&lock);
    int n = 0;
    while (h) {
        struct handoff *next = h->next;
        hr_http_server_adopt(b->w->http, h->fd, (const struct sockaddr *)&h->sa);
        free(h);
        h = next;
        n++;
    }
    pthread_mutex_lock(&lock); /* counted as open now: no longer pending */
    b->pending -= n;
    pthread_mutex_unlock(&lock);
}

/* On the accepting worker's thread. */
static int place(evutil_socket_t fd, const struct sockaddr *sa, int socklen, void *arg)
{
    struct hr_balance *mine = arg;
    struct hr_daemon *d = mine->w->d;
    if ((size_t)socklen > sizeof(struct sockaddr_storage)) return 0;
    pthread_mutex_lock(&lock);
    struct hr_balance *best = mine;
    int best_load = load(mine);
    for (size_t i = 0; i < d->n_workers; i++) {
        struct hr_balance *b = d->workers[i].balance;
        if (!b || b == mine || !b->taking) continue;
        int l = load(b);
        if (l < best_load) {
            best = b;
            best_load = l;
        }
    }
    struct handoff *h = best != mine ? malloc(sizeof *h) : NULL;
    if (!h) { /* balanced, or out of memory: served here */
        pthread_mutex_unlock(&lock);
        return 0;
    }
    h->next = NULL;
    h->fd = fd;
    memcpy(&h->sa, sa, (size_t)socklen);
    int wake = best->inbox == NULL;
    *best->inbox_tail = h;
    best->inbox_tail = &h->next;
    best->pending++;
    pthread_mutex_unlock(&lock);
    /* The worker bases are made with evthread locking on (server.c), so this
     * is safe from here and wakes that loop. */
    if (wake) event_active(best->mail, EV_READ, 1);
    return 1;
}

int hr_balance_worker_start(struct hr_worker *w)
{
    if (!w->d->cfg->balance_connections) return 0;
    struct hr_balance *b = calloc(1, sizeof *b);
    if (!b) return -1;
    b->w = w;
    b->open = hr_conn_counter(w->index);
    b->mail = event_new(w->base, -1, 0, take_mail, b);
    if (!b->open || !b->mail) {
        if (b->mail) event_free(b->mail);
        free(b);
        return -1;
    }
    b->inbox_tail = &b->inbox;
    b->taking = 1;
    pthread_mutex_lock(&lock); /* workers already running read the list */
    w->balance = b;
    pthread_mutex_unlock(&lock);
    hr_http_server_set_placement(w->http, place, b);
    return 0;
}

void hr_balance_stop_taking(struct hr_worker *w)
{
    pthread_mutex_lock(&lock);
    if (w->balance) w->balance->taking = 0;
    pthread_mutex_unlock(&lock);
}

void hr_balance_worker_stop(struct hr_worker *w)
{
    struct hr_balance *b = w->balance;
    if (!b) return;
    pthread_mutex_lock(&lock);
    w->balance = NULL;
    struct handoff *h = b->inbox;
    pthread_mutex_unlock(&lock);
    while (h) { /* handed over as the daemon stopped: never served */
        struct handoff *next = h->next;
        close(h->fd);
        free(h);
        h = next;
    }
    event_free(b->mail);
    free(b);
}
