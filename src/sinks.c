/* sinks.c — sink threads fed by bounded ring buffers of owned event copies,
 * and sinks that take the event on the request's own thread
 * (HR_SINK_ON_REQUEST_THREAD: no copy, no queue, no thread).
 * A request does not wake a sink thread that is busy: after a batch, the
 * thread lingers LINGER_US before looking again and then takes everything
 * that came meanwhile in one go. Only a thread that went to sleep on an
 * empty queue (nothing for LINGER_US) is signalled at once, or a lingering
 * one whose queue is filling up (WAKE_AT of its capacity). Under load that
 * is at most 1e6/LINGER_US wake-ups a second per sink instead of one per
 * request; when idle, an event is handled at once.
 *
 * An event copy goes back to the thread that made it once every sink is
 * done with it (lib/return_pool.h): a sink thread freeing a batch of a
 * request thread's copies held that thread's malloc arena lock, and the
 * request thread slept on it. */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include "bg_thread.h"
#include "log.h"
#include "return_pool.h"
#include "sinks.h"
#include "crash.h"

/* Where event copies go back to: one per thread that emits, made at its
 * first event, freed by hr_sinks_stop. */
struct event_home {
    struct hr_return_pool pool;
    struct event_home *next_home;
};

/* An hr_event with its strings and stages copied into one allocation, made
 * once per request and shared by every sink queue (sinks only read it). */
struct owned_event {
    struct hr_return_node block; /* first: the pool's block is the copy */
    struct event_home *home;     /* NULL: freed by whoever releases it last */
    atomic_int refs; /* queues still holding it, plus the emitter while it hands it out */
    struct hr_event ev;
    struct hr_stage_result stages[];
};

struct hr_sink_queue {
    struct hr_instance *in;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct owned_event **ring;
    size_t cap, head, len;
    int stop;
    int asleep;    /* waiting untimed on an empty queue: the next event signals */
    int lingering; /* waiting LINGER_US: signalled only when the queue fills up */
};

/* A busy sink gets its events at most this late (request_log lines, spans);
 * at 20 k requests/s that is ~40 events per wake-up. Short, so that a sink's
 * work (and the metrics_db rows it hands on) comes in small even slices:
 * 20 ms made bursts of ~0.6 ms on a 2-vCPU host, and at 16 connections
 * wrk's p99 fell by ~15 % with 2 ms (bench/README.md, session 18), for
 * ~500 wake-ups a second per busy sink. */
#define LINGER_US 2000
/* A lingering thread is woken early when its queue is this full (1/WAKE_AT),
 * so a burst does not overflow a small sink_queue_size while it waits. */
#define WAKE_AT 4
/* A copy larger than this (a request body for request_log) is freed where
 * it is released: kept, it would wait unused for its thread's next request,
 * and a chunk that large is mmap'd or rare enough not to contend. */
#define RETURN_MAX 16384

static struct hr_sink_queue **queues;
static size_t n_queues;
/* Sinks with HR_SINK_ON_REQUEST_THREAD: called by hr_sinks_emit itself. */
static struct hr_instance **direct;
static size_t n_direct;

static pthread_mutex_t homes_lock = PTHREAD_MUTEX_INITIALIZER;
static struct event_home *homes; /* every home, under homes_lock */
static atomic_uint homes_gen;    /* bumped by hr_sinks_stop: homes from before are gone */
static _Thread_local struct event_home *my_home;
static _Thread_local unsigned my_home_gen;

/* This thread's home, or NULL when out of memory (its copies are then
 * freed where they are released). */
static struct event_home *this_threads_home(void)
{
    unsigned gen = atomic_load_explicit(&homes_gen, memory_order_relaxed);
    if (my_home && my_home_gen == gen) return my_home;
    struct event_home *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    pthread_mutex_lock(&homes_lock);
    h->next_home = homes;
    homes = h;
    pthread_mutex_unlock(&homes_lock);
    my_home = h;
    my_home_gen = gen;
    return h;
}

/* Room for a copy of `need` bytes: one its thread got back, or a new one. */
static struct owned_event *copy_buffer(struct event_home *h, size_t need)
{
    struct owned_event *o = (struct owned_event *)hr_return_alloc(h ? &h->pool : NULL, need);
    if (o) o->home = h && o->block.cap <= RETURN_MAX ? h : NULL;
    return o;
}

static size_t str_size(const char *s) { return s ? strlen(s) + 1 : 0; }

static const char *str_copy(char **cursor, const char *s)
{
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    memcpy(*cursor, s, n);
    const char *out = *cursor;
    *cursor += n;
    return out;
}

static struct owned_event *copy_event(const struct hr_event *ev)
{
    size_t strings = str_size(ev->request_id) + str_size(ev->provider_name) + str_size(ev->model) +
                     str_size(ev->stack) + str_size(ev->path) + str_size(ev->error) +
                     str_size(ev->wire_format_name) + str_size(ev->traceparent) + str_size(ev->stream_error);
    for (size_t i = 0; i < ev->n_stages; i++) strings += str_size(ev->stages[i].name) + str_size(ev->stages[i].tag);
    size_t head = sizeof(struct owned_event) + ev->n_stages * sizeof(struct hr_stage_result);
    size_t body = ev->request_body ? ev->request_body_len + 1 : 0;
    struct owned_event *o = copy_buffer(this_threads_home(), head + strings + body);
    if (!o) return NULL;
    char *cursor = (char *)o + head;
    o->ev = *ev;
    o->ev.struct_size = sizeof o->ev;
    o->ev.request_id = str_copy(&cursor, ev->request_id);
    o->ev.provider_name = str_copy(&cursor, ev->provider_name);
    o->ev.model = str_copy(&cursor, ev->model);
    o->ev.stack = str_copy(&cursor, ev->stack);
    o->ev.path = str_copy(&cursor, ev->path);
    o->ev.error = str_copy(&cursor, ev->error);
    o->ev.wire_format_name = str_copy(&cursor, ev->wire_format_name);
    o->ev.traceparent = str_copy(&cursor, ev->traceparent);
    o->ev.stream_error = str_copy(&cursor, ev->stream_error); /* in the proxy_req, freed after the emit */
    for (size_t i = 0; i < ev->n_stages; i++) {
        o->stages[i] = ev->stages[i];
        o->stages[i].name = str_copy(&cursor, ev->stages[i].name);
        o->stages[i].tag = str_copy(&cursor, ev->stages[i].tag);
    }
    o->ev.stages = o->stages;
    if (body) {
        memcpy(cursor, ev->request_body, ev->request_body_len);
        cursor[ev->request_body_len] = '\0';
        o->ev.request_body = cursor;
    }
    return o;
}

static void linger(struct hr_sink_queue *q)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += LINGER_US * 1000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&q->cond, &q->lock, &ts);
}

static void release(struct owned_event *o)
{
    if (atomic_fetch_sub(&o->refs, 1) != 1) return;
    if (o->home)
        hr_return_put(&o->home->pool, &o->block);
    else
        free(o);
}

/* A sink thread reads copies its emitters wrote on other cores: each one's
 * first touch missed the cache (clean_text was 43 % of the metrics_db sink
 * thread). The copies PREFETCH_AHEAD places on are asked for while this
 * one is handled; a copy without a logged body fits in PREFETCH_BYTES.
 * The metrics_db sink thread: 0.4 -> 0.3 us a request (bench/README.md,
 * session 20). */
#define PREFETCH_AHEAD 2
#define PREFETCH_BYTES 1024

static void prefetch_event(const struct owned_event *o)
{
    for (size_t off = 0; off < PREFETCH_BYTES; off += 64) __builtin_prefetch((const char *)o + off);
}

static void *sink_thread(void *arg)
{
    struct hr_sink_queue *q = arg;
    char name[32];
    snprintf(name, sizeof name, "sink-%s", q->in->desc->name);
    hr_thread_name(name);
    pthread_mutex_lock(&q->lock);
    for (;;) {
        if (!q->len && !q->stop) {
            q->lingering = 1;
            linger(q); /* events that come meanwhile join the next batch, unsignalled */
            q->lingering = 0;
            while (!q->len && !q->stop) {
                q->asleep = 1;
                pthread_cond_wait(&q->cond, &q->lock);
            }
            q->asleep = 0;
        }
        if (!q->len && q->stop) break;
        /* The whole batch at once: the emitter only writes past head + len,
         * and cannot reuse these slots before head moves on below. */
        size_t head = q->head, n = q->len;
        pthread_mutex_unlock(&q->lock);
        for (size_t k = 0; k < n; k++) {
            if (k + PREFETCH_AHEAD < n) prefetch_event(q->ring[(head + k + PREFETCH_AHEAD) % q->cap]);
            struct owned_event *o = q->ring[(head + k) % q->cap];
            hr_crash_where = q->in->label;
            q->in->desc->on_event(q->in->state, &o->ev);
            hr_crash_where = NULL;
            release(o);
        }
        atomic_fetch_add(&q->in->events, n);
        pthread_mutex_lock(&q->lock);
        q->head = (head + n) % q->cap;
        q->len -= n;
    }
    pthread_mutex_unlock(&q->lock);
    return NULL;
}

static int on_request_thread(const struct headroom_plugin *d)
{
    return d->abi_minor >= 7 && HR_HAS_FIELD(d, struct headroom_plugin, sink_flags) &&
           (d->sink_flags & HR_SINK_ON_REQUEST_THREAD);
}

int hr_sinks_start(struct hr_plugins *p, size_t queue_size)
{
    queues = calloc(p->n_sinks ? p->n_sinks : 1, sizeof *queues);
    direct = calloc(p->n_sinks ? p->n_sinks : 1, sizeof *direct);
    if (!queues || !direct) return -12;
    for (size_t i = 0; i < p->n_sinks; i++) {
        /* Reads the registries only, or asked for nothing: no events, no thread. */
        if (!p->sinks[i]->desc->on_event || p->sinks[i]->events_off) continue;
        if (on_request_thread(p->sinks[i]->desc)) {
            direct[n_direct++] = p->sinks[i];
            continue;
        }
        struct hr_sink_queue *q = calloc(1, sizeof *q);
        if (!q) return -12;
        q->in = p->sinks[i];
        q->cap = queue_size ? queue_size : 4096;
        q->ring = calloc(q->cap, sizeof *q->ring);
        /* Adaptive: both request threads and the sink thread take it for a
         * few instructions; spinning a moment beats sleeping on a futex. */
        pthread_mutexattr_t ma;
        pthread_mutexattr_init(&ma);
        pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP);
        pthread_mutex_init(&q->lock, &ma);
        pthread_mutexattr_destroy(&ma);
        pthread_cond_init(&q->cond, NULL);
        /* Registered only with a running thread: hr_sinks_stop joins each one. */
        if (!q->ring || pthread_create(&q->thread, NULL, sink_thread, q)) {
            free(q->ring);
            pthread_mutex_destroy(&q->lock);
            pthread_cond_destroy(&q->cond);
            free(q);
            return -12;
        }
        q->in->queue = q;
        queues[n_queues++] = q;
    }
    return 0;
}

void hr_sinks_emit(const struct hr_event *ev)
{
    for (size_t i = 0; i < n_direct; i++) {
        hr_crash_where = direct[i]->label;
        direct[i]->desc->on_event(direct[i]->state, ev);
        hr_crash_where = NULL;
        atomic_fetch_add_explicit(&direct[i]->events, 1, memory_order_relaxed);
    }
    if (!n_queues) return;
    struct owned_event *o = copy_event(ev);
    /* One reference per queue, and ours until every queue has it: a sink
     * that finishes early cannot free it under us. */
    if (o) atomic_init(&o->refs, (int)n_queues + 1);
    for (size_t i = 0; i < n_queues; i++) {
        struct hr_sink_queue *q = queues[i];
        pthread_mutex_lock(&q->lock);
        if (!o || q->len == q->cap || q->stop) {
            pthread_mutex_unlock(&q->lock);
            if (o) release(o);
            atomic_fetch_add(&q->in->dropped, 1);
            continue;
        }
        q->ring[(q->head + q->len) % q->cap] = o;
        q->len++;
        int wake = q->asleep || (q->lingering && q->len == q->cap / WAKE_AT + 1);
        pthread_mutex_unlock(&q->lock);
        if (wake) pthread_cond_signal(&q->cond);
    }
    if (o) release(o);
}

void hr_sinks_stop(void)
{
    for (size_t i = 0; i < n_queues; i++) {
        struct hr_sink_queue *q = queues[i];
        pthread_mutex_lock(&q->lock);
        q->stop = 1;
        pthread_cond_signal(&q->cond);
        pthread_mutex_unlock(&q->lock);
        pthread_join(q->thread, NULL);
        q->in->queue = NULL;
        free(q->ring);
        pthread_mutex_destroy(&q->lock);
        pthread_cond_destroy(&q->cond);
        free(q);
    }
    free(queues);
    queues = NULL;
    n_queues = 0;
    free(direct);
    direct = NULL;
    n_direct = 0;
    /* Every sink thread is joined: no copy is out any more. */
    atomic_fetch_add(&homes_gen, 1);
    pthread_mutex_lock(&homes_lock);
    while (homes) {
        struct event_home *h = homes;
        homes = h->next_home;
        hr_return_drain(&h->pool);
        free(h);
    }
    pthread_mutex_unlock(&homes_lock);
}

static void sink_stats(json_t *o, struct hr_instance *in, size_t queued)
{
    json_object_set_new(o, in->name,
                        json_pack("{s:I,s:I,s:I}", "events", (json_int_t)atomic_load(&in->events), "dropped",
                                  (json_int_t)atomic_load(&in->dropped), "queued", (json_int_t)queued));
}

json_t *hr_sinks_stats_json(void)
{
    json_t *o = json_object();
    for (size_t i = 0; i < n_direct; i++) sink_stats(o, direct[i], 0); /* no queue */
    for (size_t i = 0; i < n_queues; i++) {
        struct hr_sink_queue *q = queues[i];
        pthread_mutex_lock(&q->lock);
        size_t queued = q->len;
        pthread_mutex_unlock(&q->lock);
        sink_stats(o, q->in, queued);
    }
    return o;
}
