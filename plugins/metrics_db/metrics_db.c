/* metrics_db.c — the metrics_db sink: one SQLite row per completed request.
 * on_event only copies the event into a bounded queue; a writer thread
 * commits the queue in one transaction per batch (every flush_interval_ms
 * or batch_rows rows), prunes rows past retention_days at start and hourly,
 * and flushes everything at shutdown. Serves /stats.metrics_db and the
 * headroom_metrics_db_* families of /metrics.
 *
 * The queue takes a row without a lock: request threads push onto an
 * atomic stack (the inbox) and the writer takes the whole stack at once,
 * restoring arrival order in a list only it touches. With a mutex, the
 * two workers and the writer met on it ~230 times a second at 70 k
 * requests/s, and a worker that found it held slept on a futex; when the
 * holder had been preempted, it slept until that thread ran again
 * (bench/README.md, session 25). */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <headroom/plugin.h>
#include "mdb.h"
#include "numfmt.h"
#include "state_file.h"

#define BUSY_TIMEOUT_MS 5000   /* another process holding the write lock */
#define PRUNE_EVERY_S 3600.0

enum mdb_state { ST_OK, ST_UNAVAILABLE, ST_REFUSED };
static const char *const state_names[] = {"ok", "unavailable", "refused"};

/* One thread's rows (thread_pool). */
struct row_pool {
    struct hr_return_pool pool;
    struct row_pool *next;
};

struct mdb {
    const struct hr_host *host;
    struct hr_instance *self;
    char *path;
    int retention_days;
    size_t batch_rows, queue_size;
    unsigned flush_ms;

    pthread_t writer;
    int writer_started;
    int yield_vfs; /* holds a reference to yield_vfs.c's VFS */
    /* Rows are made on the threads that call on_event, each from a pool of
     * its own, and go back to it from the writer (lib/return_pool.h):
     * freeing them on the writer held those threads' malloc arena locks. */
    uint64_t id;              /* this instance, for thread_pool's cache */
    struct row_pool *pools;   /* every thread's pool, under mu */
    pthread_mutex_t mu; /* stop, the writer's wake-up, pools and the figures below */
    pthread_cond_t cond;
    _Atomic(struct mdb_row *) inbox; /* rows not yet seen by the writer, newest first */
    /* Rows waiting: counted by on_event before it pushes one (so it may
     * briefly count a row not yet in the inbox) and by the writer as it
     * takes them. queue_size bounds it. */
    atomic_size_t queued;
    /* How far behind the writer is (enum mdb_pace): set by whoever moves
     * queued across a threshold, read by the writer's yield points. */
    atomic_int pace;
    _Atomic double drop_warned_ms; /* mono_ms of the last WARN about dropped rows, 0: none yet */
    int stop;

    /* Writer thread only (and fini, once it has stopped). */
    struct mdb_row *head, **tail; /* taken from the inbox, oldest first */
    sqlite3 *db;
    struct mdb_stmts stmts; /* of db */
    int failing;       /* a write or open failed: WARN once per streak */
    int suspect;       /* a write met a damaged page: check the whole file on reopen */
    double next_prune; /* Unix seconds */

    /* Under mu: what /stats shows besides the atomics. */
    _Atomic int state;
    char last_error[512];
    double last_commit_at; /* Unix seconds, 0 = never */
    size_t last_batch_rows;
    double last_batch_ms, max_batch_ms, total_batch_ms;

    atomic_uint_fast64_t rows_written, rows_dropped, write_errors, rows_pruned, batches;
};

static const struct hr_conf_key keys[] = {
    HR_CONF_KEY("path", HR_CONF_STRING, NULL,
                "SQLite file (default $HEADROOM_WORKSPACE_DIR/metrics.db, else ~/.headroom/metrics.db)"),
    HR_CONF_KEY_RANGE("retention_days", HR_CONF_INT, "30",
                      "rows older than this many days are deleted at start and hourly; 0 keeps them for ever",
                      0, 36500),
    HR_CONF_KEY_RANGE("batch_rows", HR_CONF_INT, "1024", "a batch is written once this many rows wait (1-100000)", 1,
                      100000),
    HR_CONF_KEY_RANGE("flush_interval_ms", HR_CONF_INT, "1000",
                      "milliseconds between writes of what waits (10-60000)", 10, 60000),
    HR_CONF_KEY_RANGE("queue_size", HR_CONF_INT, "50000",
                      "rows waiting for the writer before new ones are dropped and counted (16-10000000)", 16,
                      10000000),
    HR_CONF_END,
};

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double wall_s(const struct mdb *m)
{
    if (HR_HAS_FIELD(m->host, struct hr_host, now) && m->host->now) return m->host->now();
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------------ path */

static char *resolve_path(const struct hr_host *host, const char *conf_path)
{
    return hr_state_file(host, conf_path, "metrics.db");
}

/* ------------------------------------------------------------ the file */

static void set_error(struct mdb *m, const char *why)
{
    pthread_mutex_lock(&m->mu);
    snprintf(m->last_error, sizeof m->last_error, "%s", why);
    pthread_mutex_unlock(&m->mu);
}

/* Open (or reopen) the file; logs what happened. 0 when usable. */
static int open_db(struct mdb *m, int at_start)
{
    struct mdb_open_info info;
    enum mdb_open_status st = mdb_open(m->path, wall_s(m), BUSY_TIMEOUT_MS, m->suspect, &m->db, &info);
    m->suspect = 0;
    if (info.moved_to[0])
        m->host->log(m->self, HR_LOG_WARN, "metrics database %s is damaged (%s): moved aside to %s, starting a new one",
                     m->path, info.damage, info.moved_to);
    if (st == MDB_OPENED) {
        atomic_store(&m->state, ST_OK);
        set_error(m, "");
        if (at_start)
            m->host->log(m->self, HR_LOG_INFO, "metrics database: %s (schema version %d%s, retention %d days)",
                         m->path, MDB_SCHEMA_VERSION,
                         info.created ? (info.version_found ? ", migrated" : ", created") : "", m->retention_days);
        return 0;
    }
    set_error(m, info.why);
    if (st == MDB_REFUSED) {
        atomic_store(&m->state, ST_REFUSED);
        m->host->log(m->self, HR_LOG_ERROR, "%s; headroomd serves without the metrics_db sink", info.why);
        return -1;
    }
    atomic_store(&m->state, ST_UNAVAILABLE);
    if (!m->failing)
        m->host->log(m->self, HR_LOG_WARN,
                     "%s; headroomd serves anyway, keeps up to %zu rows in memory and retries every %u ms (rows "
                     "beyond that are dropped and counted in /stats metrics_db.rows_dropped)",
                     info.why, m->queue_size, m->flush_ms);
    m->failing = 1;
    return -1;
}

static void prune(struct mdb *m, double now)
{
    if (!m->db) return; /* not open yet: prune as soon as it is */
    m->next_prune = now + PRUNE_EVERY_S;
    if (!m->retention_days) return;
    int64_t deleted = 0;
    char why[256];
    int rc = mdb_prune(m->db, now - m->retention_days * 86400.0, &deleted, why, sizeof why);
    atomic_fetch_add(&m->rows_pruned, (uint64_t)deleted);
    if (rc != SQLITE_OK)
        m->host->log(m->self, HR_LOG_WARN, "cannot delete old rows from %s: %s; tried again in an hour", m->path, why);
    else if (deleted)
        m->host->log(m->self, HR_LOG_INFO, "deleted %lld rows older than %d days from %s", (long long)deleted,
                     m->retention_days, m->path);
}

static void set_pace(struct mdb *m, size_t queued)
{
    atomic_store_explicit(&m->pace, (int)mdb_pace_for(queued, m->batch_rows, m->queue_size), memory_order_relaxed);
}

/* Put a batch that could not be written back in front of the queue. */
static void requeue(struct mdb *m, struct mdb_row *rows, size_t n)
{
    struct mdb_row *last = rows;
    while (last->next) last = last->next;
    last->next = m->head;
    if (!m->head) m->tail = &last->next;
    m->head = rows;
    set_pace(m, atomic_fetch_add(&m->queued, n) + n);
}

/* Write one batch. Returns 0, or -1 with the rows put back (final: freed,
 * the caller counts and reports them). */
static int write_batch(struct mdb *m, struct mdb_row *rows, size_t n, int final)
{
    double t0 = mono_ms();
    int rc = SQLITE_CANTOPEN;
    char why[512] = "";
    int opened = m->db || open_db(m, 0) == 0;
    if (opened) {
        rc = mdb_insert(m->db, &m->stmts, rows, why, sizeof why);
        if (rc != SQLITE_OK && mdb_is_damage(rc)) {
            /* Damaged under us: the next attempt reopens, which moves it aside. */
            mdb_stmts_free(&m->stmts);
            sqlite3_close(m->db);
            m->db = NULL;
            m->suspect = 1;
        }
    } else {
        snprintf(why, sizeof why, "%s", m->last_error);
    }
    double ms = mono_ms() - t0;
    if (rc == SQLITE_OK) {
        atomic_fetch_add(&m->rows_written, n);
        atomic_fetch_add(&m->batches, 1);
        pthread_mutex_lock(&m->mu);
        m->last_commit_at = wall_s(m);
        m->last_batch_rows = n;
        m->last_batch_ms = ms;
        m->total_batch_ms += ms;
        if (ms > m->max_batch_ms) m->max_batch_ms = ms;
        pthread_mutex_unlock(&m->mu);
        if (m->failing) m->host->log(m->self, HR_LOG_INFO, "metrics database %s is writable again", m->path);
        m->failing = 0;
        mdb_rows_release(rows);
        return 0;
    }
    atomic_fetch_add(&m->write_errors, 1);
    if (opened) { /* an open that failed has logged and set the error itself */
        set_error(m, why);
        if (!m->failing)
            m->host->log(m->self, HR_LOG_WARN,
                         "cannot write %zu rows to %s: %s; they stay queued and are retried every %u ms", n, m->path,
                         why, m->flush_ms);
        m->failing = 1;
    }
    if (final) {
        mdb_rows_release(rows);
    } else {
        requeue(m, rows, n);
    }
    return -1;
}

/* Move what the inbox holds to the end of the writer's list, oldest
 * first. */
static void collect(struct mdb *m)
{
    struct mdb_row *r = atomic_exchange_explicit(&m->inbox, NULL, memory_order_acquire), *oldest = NULL;
    while (r) {
        struct mdb_row *next = r->next;
        r->next = oldest;
        oldest = r;
        r = next;
    }
    *m->tail = oldest;
    while (*m->tail) m->tail = &(*m->tail)->next;
}

/* Every row still queued, given back; how many. */
static size_t release_queued(struct mdb *m)
{
    collect(m);
    size_t n = 0;
    for (const struct mdb_row *r = m->head; r; r = r->next) n++;
    mdb_rows_release(m->head);
    m->head = NULL;
    m->tail = &m->head;
    atomic_fetch_sub(&m->queued, n);
    return n;
}

/* Take up to batch_rows rows off the queue (writer only). */
static struct mdb_row *take(struct mdb *m, size_t *n)
{
    collect(m);
    struct mdb_row *first = m->head, **link = &m->head;
    size_t k = 0;
    while (*link && k < m->batch_rows) {
        link = &(*link)->next;
        k++;
    }
    m->head = *link;
    *link = NULL;
    if (!m->head) m->tail = &m->head;
    set_pace(m, atomic_fetch_sub(&m->queued, k) - k);
    *n = k;
    return k ? first : NULL;
}

static void *writer_main(void *arg)
{
    struct mdb *m = arg;
    pthread_setname_np(pthread_self(), "hr-mdb-writer"); /* top -H, ps -L */
    /* The writer steps aside for request threads less often the further
     * behind it is: yielding every 50 us on a saturated host, it got too
     * little of the CPU, its queue filled and rows were dropped (57 % at
     * 64 connections, bench/README.md session 20). */
    mdb_yield_pace(&m->pace);
    prune(m, wall_s(m));
    int backoff = 0; /* the last write failed: wait the whole interval */
    /* A full batch was counted but none of it had arrived: its threads are
     * between counting a row and pushing it. Look again in a millisecond
     * rather than spin on them. */
    int early = 0;
    pthread_mutex_lock(&m->mu);
    for (;;) {
        unsigned wait_ms = early ? 1 : m->flush_ms;
        struct timespec deadline;
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += wait_ms / 1000;
        deadline.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
        while (!m->stop && (backoff || early || atomic_load(&m->queued) < m->batch_rows))
            if (pthread_cond_timedwait(&m->cond, &m->mu, &deadline) == ETIMEDOUT) break;
        int stop = m->stop;
        backoff = 0;
        pthread_mutex_unlock(&m->mu);
        /* What waited when the tick began, a batch per transaction; a
         * failure leaves the rest for the next tick. A row counted but not
         * yet pushed comes with the next one. Rows that arrive while these
         * are written wait for the next tick too: taking them at once had
         * the writer commit without a pause as long as requests kept
         * coming, ~200 rows at a time where batch_rows asked for 1024 (3-4
         * times the commits; bench/README.md session 27). */
        size_t due = atomic_load(&m->queued), n;
        struct mdb_row *rows;
        int took = 0;
        while ((stop || due) && (rows = take(m, &n)) != NULL) {
            took = 1;
            due = n < due ? due - n : 0;
            int rc = write_batch(m, rows, n, stop);
            if (rc && !stop) {
                backoff = 1;
                break;
            }
            if (rc) {
                /* Shutting down and the file refuses: do not wait a busy
                 * timeout per batch, give the rest up at once. */
                size_t lost = n + release_queued(m);
                atomic_fetch_add(&m->rows_dropped, lost);
                pthread_mutex_lock(&m->mu);
                char why[sizeof m->last_error];
                memcpy(why, m->last_error, sizeof why);
                pthread_mutex_unlock(&m->mu);
                m->host->log(m->self, HR_LOG_ERROR,
                             "shutting down: %zu rows could not be written to %s (%s) and are lost", lost, m->path,
                             why[0] ? why : "see the warnings above");
            }
        }
        if (stop) break;
        early = !took && !backoff && atomic_load(&m->queued) >= m->batch_rows;
        double now = wall_s(m);
        if (now >= m->next_prune) prune(m, now);
        pthread_mutex_lock(&m->mu);
    }
    return NULL; /* mu is not held here: the batches ran without it */
}

/* ----------------------------------------------------------------- event */

/* The calling thread's row pool for `m`, made at its first row; NULL (rows
 * from malloc) on a thread that already has one for another instance, or
 * when out of memory. Instances are told apart by id, not address: one
 * freed and another made at the same place is not the same. */
static struct hr_return_pool *thread_pool(struct mdb *m)
{
    static _Thread_local uint64_t owner;
    static _Thread_local struct row_pool *mine;
    if (owner == m->id) return &mine->pool;
    if (owner) return NULL;
    struct row_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    pthread_mutex_lock(&m->mu);
    p->next = m->pools;
    m->pools = p;
    pthread_mutex_unlock(&m->mu);
    owner = m->id;
    mine = p;
    return &p->pool;
}

/* A row lost: counted, and said in the log the first time and then at
 * most once a minute, so a disk too slow for the request rate is seen
 * before the history is found short. */
static void dropped(struct mdb *m, int queue_full)
{
    uint64_t n = atomic_fetch_add(&m->rows_dropped, 1) + 1;
    double now = mono_ms(), last = atomic_load(&m->drop_warned_ms);
    if (last > 0 && now - last < 60000) return;
    if (!atomic_compare_exchange_strong(&m->drop_warned_ms, &last, now)) return; /* another thread says it */
    if (queue_full)
        m->host->log(m->self, HR_LOG_WARN,
                     "%zu rows wait for the writer (queue_size): new rows are dropped, %llu so far "
                     "(/stats metrics_db.rows_dropped); the database's disk is slower than the request rate: "
                     "raise queue_size in the metrics_db block of headroom.conf, or move `path` to a faster disk",
                     m->queue_size, (unsigned long long)n);
    else
        m->host->log(m->self, HR_LOG_WARN, "out of memory for a row: dropped, %llu so far (/stats metrics_db.rows_dropped)",
                     (unsigned long long)n);
}

static void on_event(void *state, const struct hr_event *ev)
{
    struct mdb *m = state;
    if (atomic_load(&m->state) == ST_REFUSED) return;
    /* Built before it is counted; wasted only when the queue turns out
     * full, which is rare and counted. */
    struct mdb_row *r = mdb_row_from_event(ev, thread_pool(m));
    if (!r) {
        dropped(m, 0);
        return;
    }
    size_t queued = atomic_fetch_add_explicit(&m->queued, 1, memory_order_relaxed) + 1;
    if (queued > m->queue_size) {
        atomic_fetch_sub_explicit(&m->queued, 1, memory_order_relaxed);
        mdb_rows_release(r);
        dropped(m, 1);
        return;
    }
    r->next = atomic_load_explicit(&m->inbox, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&m->inbox, &r->next, r, memory_order_release, memory_order_relaxed))
        ;
    if (queued == m->batch_rows || queued == m->queue_size / 2) set_pace(m, queued);
    if (queued == m->batch_rows) {
        /* Under mu: the writer tests queued and waits with it held, so the
         * signal cannot fall between the two. Once per batch_rows rows. */
        pthread_mutex_lock(&m->mu);
        pthread_cond_signal(&m->cond);
        pthread_mutex_unlock(&m->mu);
    }
}

/* ------------------------------------------------------------- snapshots */

static json_t *stats_block_for(void *state, int from_loopback)
{
    struct mdb *m = state;
    size_t queued = atomic_load(&m->queued);
    pthread_mutex_lock(&m->mu);
    double last_commit = m->last_commit_at, last_ms = m->last_batch_ms, max_ms = m->max_batch_ms,
           total_ms = m->total_batch_ms;
    size_t last_rows = m->last_batch_rows;
    char err[sizeof m->last_error];
    memcpy(err, m->last_error, sizeof err);
    pthread_mutex_unlock(&m->mu);
    uint64_t batches = atomic_load(&m->batches);
    char at[32] = "";
    if (last_commit > 0) {
        time_t t = (time_t)last_commit;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(at, sizeof at, "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    json_t *o = json_pack(
        "{s:s,s:i,s:I,s:I,s:I,s:I,s:I,s:I,s:s?,s:{s:I,s:f,s:f,s:f},s:i,s:i,s:i,s:i,s:s?}", "state",
        state_names[atomic_load(&m->state)], "schema_version", MDB_SCHEMA_VERSION, "rows_written",
        (json_int_t)atomic_load(&m->rows_written), "rows_dropped", (json_int_t)atomic_load(&m->rows_dropped),
        "write_errors", (json_int_t)atomic_load(&m->write_errors), "rows_pruned",
        (json_int_t)atomic_load(&m->rows_pruned), "queued", (json_int_t)queued, "batches", (json_int_t)batches,
        "last_commit_at", at[0] ? at : NULL, "batch", "last_rows", (json_int_t)last_rows, "last_ms",
        hr_numfmt_round(last_ms, HR_DECIMALS_MS), "max_ms", hr_numfmt_round(max_ms, HR_DECIMALS_MS), "avg_ms",
        hr_numfmt_round(batches ? total_ms / (double)batches : 0, HR_DECIMALS_MS), "retention_days",
        m->retention_days, "batch_rows", (int)m->batch_rows, "flush_interval_ms", (int)m->flush_ms, "queue_size",
        (int)m->queue_size, "last_error", err[0] ? err : NULL);
    /* Where the file lives is only for the operator at the machine. */
    if (o && from_loopback) json_object_set_new(o, "path", json_string(m->path));
    return o;
}

static json_t *stats_block(void *state) { return stats_block_for(state, 0); }

static int metrics(void *state, hr_metric_visit_fn visit, void *ud)
{
    struct mdb *m = state;
    double queued = (double)atomic_load(&m->queued);
    pthread_mutex_lock(&m->mu);
    double last_commit = m->last_commit_at;
    pthread_mutex_unlock(&m->mu);
    static const struct {
        const char *name, *help;
        enum hr_metric_type type;
    } fams[] = {
        {"headroom_metrics_db_rows_written_total", "Rows committed to the metrics database", HR_METRIC_COUNTER},
        {"headroom_metrics_db_rows_dropped_total",
         "Rows lost: the writer's queue was full (queue_size) or the file was unwritable at shutdown",
         HR_METRIC_COUNTER},
        {"headroom_metrics_db_write_errors_total", "Batches that could not be written (retried)", HR_METRIC_COUNTER},
        {"headroom_metrics_db_rows_pruned_total", "Rows deleted for being older than retention_days",
         HR_METRIC_COUNTER},
        {"headroom_metrics_db_queue_length", "Rows waiting for the writer", HR_METRIC_GAUGE},
        {"headroom_metrics_db_last_commit_timestamp_seconds", "Unix time of the last committed batch; 0 = never",
         HR_METRIC_GAUGE},
    };
    double values[] = {(double)atomic_load(&m->rows_written), (double)atomic_load(&m->rows_dropped),
                       (double)atomic_load(&m->write_errors), (double)atomic_load(&m->rows_pruned), queued,
                       last_commit};
    for (size_t i = 0; i < sizeof fams / sizeof fams[0]; i++) {
        struct hr_metric_family fam = {sizeof fam, fams[i].name, fams[i].help, fams[i].type, 0, NULL};
        struct hr_metric_sample smp = {.struct_size = sizeof smp, .value = values[i]};
        visit(ud, &fam, &smp);
    }
    return 0;
}

/* ------------------------------------------------------------- lifecycle */

static void fini(void *state);

static int init(const struct hr_host *host, struct hr_instance *self, const struct hr_conf *conf, void **out)
{
    struct mdb *m = calloc(1, sizeof *m);
    if (!m) return HR_ENOMEM;
    m->host = host;
    m->self = self;
    m->retention_days = (int)host->conf_int(conf, "retention_days");
    m->batch_rows = (size_t)host->conf_int(conf, "batch_rows");
    m->flush_ms = (unsigned)host->conf_int(conf, "flush_interval_ms");
    m->queue_size = (size_t)host->conf_int(conf, "queue_size");
    m->tail = &m->head;
    static atomic_uint_fast64_t instances;
    m->id = atomic_fetch_add(&instances, 1) + 1;
    /* Without it the writer still works, only with longer CPU slices. */
    m->yield_vfs = mdb_yield_vfs_acquire() == SQLITE_OK;
    pthread_mutex_init(&m->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (m->batch_rows < 1 || m->queue_size < 1 || m->flush_ms < 1 || m->retention_days < 0) {
        host->log(self, HR_LOG_ERROR, "batch_rows, queue_size and flush_interval_ms must be positive, retention_days "
                                      "0 or more");
        fini(m);
        return HR_EINVAL;
    }
    if (!(m->path = resolve_path(host, host->conf_string(conf, "path")))) {
        fini(m);
        return HR_ENOMEM;
    }
    int stats_rc = HR_HAS_FIELD(host, struct hr_host, register_stats_for) && host->register_stats_for
                       ? host->register_stats_for(self, "metrics_db", stats_block_for, m)
                       : host->register_stats(self, "metrics_db", stats_block, m);
    if (stats_rc || (HR_HAS_FIELD(host, struct hr_host, register_metrics) && host->register_metrics &&
                     host->register_metrics(self, metrics, m))) {
        host->log(self, HR_LOG_ERROR, "cannot register with the host (out of memory?)");
        fini(m);
        return HR_ENOMEM;
    }
    open_db(m, 1);
    if (atomic_load(&m->state) == ST_REFUSED) {
        /* Nothing to write to: the sink stays loaded for /stats only. */
        if (HR_HAS_FIELD(host, struct hr_host, events_off) && host->events_off) host->events_off(self);
        *out = m;
        return HR_OK;
    }
    if (pthread_create(&m->writer, NULL, writer_main, m)) {
        host->log(self, HR_LOG_ERROR, "cannot start the writer thread");
        fini(m);
        return HR_ENOMEM;
    }
    m->writer_started = 1;
    *out = m;
    return HR_OK;
}

static void fini(void *state)
{
    struct mdb *m = state;
    if (!m) return;
    if (m->writer_started) {
        pthread_mutex_lock(&m->mu);
        m->stop = 1;
        pthread_cond_signal(&m->cond);
        pthread_mutex_unlock(&m->mu);
        pthread_join(m->writer, NULL); /* writes what is queued first */
    }
    release_queued(m); /* to their pools, drained below */
    /* No thread makes rows any more (the host calls fini after the last
     * on_event), and the writer has given every one back. */
    for (struct row_pool *p = m->pools, *next; p; p = next) {
        next = p->next;
        hr_return_drain(&p->pool);
        free(p);
    }
    mdb_stmts_free(&m->stmts);
    if (m->db) sqlite3_close(m->db);
    if (m->yield_vfs) mdb_yield_vfs_release();
    pthread_mutex_destroy(&m->mu);
    pthread_cond_destroy(&m->cond);
    free(m->path);
    free(m);
}

HR_PLUGIN_EXPORT const struct headroom_plugin headroom_plugin = {
    HR_PLUGIN_HEADER,
    .name = "metrics_db",
    .kind = HR_PLUGIN_SINK,
    .version = "1.0.0",
    .description = "one SQLite row per completed request (metrics.db), for headroom metrics/summary and the SDK",
    .conf_keys = keys,
    .init = init,
    .fini = fini,
    .on_event = on_event,
    /* A row is ~1.5 k instructions and a short lock: cheaper on the request's
     * thread, where the event is still in the cache, than copied to a sink
     * thread; the writer thread still does the SQLite work. */
    .sink_flags = HR_SINK_ON_REQUEST_THREAD,
};
