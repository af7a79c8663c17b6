/* mdb.h — the metrics_db sink's parts: a row (one completed request, copied
 * out of an hr_event), and the SQLite store it is written to (schema,
 * migrations, damaged-file recovery, batched inserts, retention). */
#ifndef HR_MDB_H
#define HR_MDB_H

#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sqlite3.h>
#include <headroom/plugin.h>
#include "return_pool.h"

/* The schema version this build writes (PRAGMA user_version). */
#define MDB_SCHEMA_VERSION 1
/* Text columns are cut to this many bytes (at a UTF-8 boundary): the names
 * come from clients, and a hostile one must not bloat the file. */
#define MDB_TEXT_MAX 256

/* One row of `requests`, with its strings in the same allocation. */
struct mdb_row {
    struct hr_return_node block; /* first: the allocation, from a pool or malloc */
    struct hr_return_pool *home; /* the pool it goes back to; NULL: malloc'd */
    struct mdb_row *next;
    double timestamp;
    int status, credited, cached, streamed, failed, priced;
    int64_t tokens_input_before, tokens_input_after, tokens_saved, tokens_output;
    int64_t cache_read_tokens, cache_write_tokens, reasoning_tokens;
    double cost_usd, savings_usd;
    double latency_ms, overhead_ms, ttfb_ms; /* ttfb_ms < 0: NULL */
    const char *request_id, *model, *provider, *wire_format, *stack, *path;
    const char *transforms; /* JSON array of stage names */
    /* The byte lengths of request_id, model, provider, wire_format, stack,
     * path and transforms, in that order: bound with them, SQLite does not
     * measure each string again. */
    uint32_t text_len[7];
};

/* A row for `ev`, or NULL when out of memory. Strings that are not UTF-8
 * get U+FFFD for each bad byte; `transforms` lists the stages that removed
 * tokens and were not undone. Never fails on odd input. Its memory comes
 * from `pool` when not NULL (the calling thread must own it), else from
 * malloc; mdb_rows_release gives it back either way. */
struct mdb_row *mdb_row_from_event(const struct hr_event *ev, struct hr_return_pool *pool);
/* Give each row of a list back where it came from (any thread): to the pool
 * of the thread that made it (lib/return_pool.h), or to free(). */
void mdb_rows_release(struct mdb_row *list);

/* ------------------------------------------------------------------ store */

enum mdb_open_status {
    MDB_OPENED = 0,  /* ready; *db set */
    MDB_FAILED = 1,  /* cannot open or write now (permissions, disk, locks): try again later */
    MDB_REFUSED = 2, /* the file is not ours to write (newer schema, foreign table): never retry */
};

struct mdb_open_info {
    int version_found;       /* user_version the file had (0 for a new file) */
    int created;             /* the schema was created (or migrated) now */
    char moved_to[4200];     /* a damaged file was moved here ("" when not) */
    char damage[256];        /* why it counted as damaged */
    char why[512];           /* MDB_FAILED / MDB_REFUSED: what went wrong, for the log */
};

/* Open `path` (creating its directory and the file), set WAL mode and the
 * busy timeout, migrate the schema up to MDB_SCHEMA_VERSION. A file SQLite
 * cannot read as a database is renamed to `<path>.corrupt-<UTC stamp>`
 * (its -wal alongside) and a new one is created. `now` names the stamp.
 * `check`: also run PRAGMA quick_check (after a write met damage), so a
 * file whose schema reads fine but whose data pages do not is caught. */
enum mdb_open_status mdb_open(const char *path, double now, int busy_timeout_ms, int check, sqlite3 **db,
                              struct mdb_open_info *info);

/* True when an SQLite error code means the file itself is damaged. */
int mdb_is_damage(int sqlite_rc);

/* The prepared INSERT kept between batches (zero it at open;
 * mdb_stmts_free before sqlite3_close). */
struct mdb_stmts {
    sqlite3_stmt *insert;
};
void mdb_stmts_free(struct mdb_stmts *s);

/* Insert `rows` (a list) in one transaction, with one statement that reads
 * them through MDB_BATCH_VTAB. Returns SQLITE_OK or the failing code (the
 * transaction is rolled back: none of the rows went in), with the message
 * in `why`. `cache` (or NULL) keeps the statement. */
int mdb_insert(sqlite3 *db, struct mdb_stmts *cache, const struct mdb_row *rows, char *why, size_t whylen);

/* The table-valued function `hr_mdb_batch(?1)` (batch_vtab.c): the rows of
 * the list bound to ?1 with sqlite3_bind_pointer(..., MDB_ROWS_POINTER, NULL),
 * in the columns of `requests`. mdb_open registers it on its connection. */
#define MDB_BATCH_VTAB "hr_mdb_batch"
#define MDB_ROWS_POINTER "hr_mdb_rows"
int mdb_batch_vtab_register(sqlite3 *db);

/* Delete rows older than `cutoff` (Unix seconds); *deleted gets the count. */
int mdb_prune(sqlite3 *db, double cutoff, int64_t *deleted, char *why, size_t whylen);

/* The SQLite VFS that yields the CPU at page reads and writes in long runs
 * (yield_vfs.c). Registered while it has users; mdb_open uses it when it is
 * registered, SQLite's default VFS otherwise. acquire returns SQLITE_OK. */
#define MDB_YIELD_VFS "hr-mdb-yield"
int mdb_yield_vfs_acquire(void);
void mdb_yield_vfs_release(void);
/* Gives up the CPU when this thread has run long enough since it last
 * paused (slept, waited or yielded); the VFS calls it at every page read and
 * write. How long is long enough depends on the writer's backlog (its
 * *pace, set by mdb_yield_pace; 0 when none was set):
 *   MDB_KEEPING_UP  (less than a batch waits): MDB_YIELD_AFTER_US
 *   MDB_BEHIND      (a whole batch waits):     MDB_YIELD_BEHIND_US
 *   MDB_FAR_BEHIND  (half the queue waits):    never
 * Two calls more than MDB_PAUSE_US apart mean the thread paused in between.
 * mdb_yield_due is its decision: whether a call at `now` (µs, monotonic)
 * yields, given the run so far and the run length allowed. */
#define MDB_YIELD_AFTER_US 50
#define MDB_YIELD_BEHIND_US 200
#define MDB_PAUSE_US 2000
enum mdb_pace { MDB_KEEPING_UP, MDB_BEHIND, MDB_FAR_BEHIND };
struct mdb_run {
    int64_t start, last; /* when the current run began; the last call */
};
int mdb_yield_due(struct mdb_run *r, int64_t now, int64_t after_us);
/* The run allowed at `pace` before a yield, or -1: no yield. */
int64_t mdb_yield_after(enum mdb_pace pace);
/* The pace for `queued` rows waiting, with batches of batch_rows and room
 * for queue_size. */
enum mdb_pace mdb_pace_for(size_t queued, size_t batch_rows, size_t queue_size);
void mdb_yield_point(void);
/* This thread's yield points follow *pace (read without a lock); NULL:
 * MDB_KEEPING_UP always. */
void mdb_yield_pace(const atomic_int *pace);

/* mkdir -p of the directory holding `path`: 0 or -errno. */
int mdb_mkdir_parent(const char *path);

#endif
