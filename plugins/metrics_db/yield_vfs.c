/* yield_vfs.c — an SQLite VFS that hands every call to the default VFS and
 * gives up the CPU (sched_yield) at page reads and writes once the writer
 * has run for MDB_YIELD_AFTER_US without a pause (longer, or never, when it
 * is behind: mdb.h); mdb_yield_point() is that test, also called by the
 * batch reader every few rows (batch_vtab.c).
 *
 * Why: a COMMIT writes each dirty page to the WAL and a checkpoint copies up
 * to ~1000 pages back into the database, each in one SQLite call that runs
 * for milliseconds. On a host with as many cores as busy threads, a request
 * thread woken onto the writer's CPU then waits for the whole step: that
 * set one connection's p99.9 (bench/README.md). A yield lets it in.
 *
 * Why by time, not by call: yielding every 16 page calls and every 16-row
 * statement also yielded right after a pause and between quick calls. By
 * time, the writer yields ~30 % less often and switches ~40 % less often,
 * and its kernel time per row falls (2.3-2.6 -> 1.8-2.0 us in this VM,
 * where a yield that switches costs ~10 us), one client's p99 and p99.9
 * unchanged (bench/README.md, session 14). Without any yield the kernel
 * time is 1.0 us but the p99.9 doubles. */
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <time.h>

#include "mdb.h"

struct yfile {
    sqlite3_file base;  /* must be first: SQLite hands us this */
    sqlite3_file *real; /* the default VFS's file, right after this struct */
};

static sqlite3_vfs *real_vfs(sqlite3_vfs *v) { return v->pAppData; }
static sqlite3_file *real_file(sqlite3_file *f) { return ((struct yfile *)f)->real; }

static int64_t now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

int mdb_yield_due(struct mdb_run *r, int64_t now, int64_t after_us)
{
    int due = 0;
    if (now - r->last > MDB_PAUSE_US) {
        r->start = now; /* slept or waited since the last point: a new run */
    } else if (now - r->start >= after_us) {
        due = 1;
        r->start = now;
    }
    r->last = now;
    return due;
}

int64_t mdb_yield_after(enum mdb_pace pace)
{
    return pace == MDB_KEEPING_UP ? MDB_YIELD_AFTER_US : pace == MDB_BEHIND ? MDB_YIELD_BEHIND_US : -1;
}

enum mdb_pace mdb_pace_for(size_t queued, size_t batch_rows, size_t queue_size)
{
    if (queued >= queue_size / 2) return MDB_FAR_BEHIND;
    return queued >= batch_rows ? MDB_BEHIND : MDB_KEEPING_UP;
}

static _Thread_local const atomic_int *my_pace;

void mdb_yield_pace(const atomic_int *pace) { my_pace = pace; }

void mdb_yield_point(void)
{
    static _Thread_local struct mdb_run run;
    int64_t after = mdb_yield_after(my_pace ? (enum mdb_pace)atomic_load_explicit(my_pace, memory_order_relaxed)
                                            : MDB_KEEPING_UP);
    if (after < 0) return;
    if (mdb_yield_due(&run, now_us(), after)) {
        sched_yield();
        run.start = run.last = now_us(); /* the run starts again once it has the CPU back */
    }
}

/* ------------------------------------------------------------ file methods */

static int y_close(sqlite3_file *f) { return real_file(f)->pMethods->xClose(real_file(f)); }

static int y_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off)
{
    mdb_yield_point();
    return real_file(f)->pMethods->xRead(real_file(f), buf, n, off);
}

static int y_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 off)
{
    mdb_yield_point();
    return real_file(f)->pMethods->xWrite(real_file(f), buf, n, off);
}

static int y_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    return real_file(f)->pMethods->xTruncate(real_file(f), size);
}

static int y_sync(sqlite3_file *f, int flags) { return real_file(f)->pMethods->xSync(real_file(f), flags); }

static int y_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    return real_file(f)->pMethods->xFileSize(real_file(f), size);
}

static int y_lock(sqlite3_file *f, int level) { return real_file(f)->pMethods->xLock(real_file(f), level); }
static int y_unlock(sqlite3_file *f, int level) { return real_file(f)->pMethods->xUnlock(real_file(f), level); }

static int y_check_reserved(sqlite3_file *f, int *out)
{
    return real_file(f)->pMethods->xCheckReservedLock(real_file(f), out);
}

static int y_file_control(sqlite3_file *f, int op, void *arg)
{
    int rc = real_file(f)->pMethods->xFileControl(real_file(f), op, arg);
    /* Shims name themselves in front of the VFS below (SQLite's rule), so
     * `.vfsname` and tests can see this one is in use. */
    if (op == SQLITE_FCNTL_VFSNAME && rc == SQLITE_OK) {
        char *below = *(char **)arg;
        *(char **)arg = sqlite3_mprintf("%s/%s", MDB_YIELD_VFS, below ? below : "");
        sqlite3_free(below);
    }
    return rc;
}

static int y_sector_size(sqlite3_file *f) { return real_file(f)->pMethods->xSectorSize(real_file(f)); }

static int y_device(sqlite3_file *f) { return real_file(f)->pMethods->xDeviceCharacteristics(real_file(f)); }

/* The WAL index (-shm) and memory-mapped reads: version 2 and 3 methods,
 * which the file's own methods may lack. */
static int y_shm_map(sqlite3_file *f, int page, int size, int extend, void volatile **out)
{
    const sqlite3_io_methods *m = real_file(f)->pMethods;
    if (m->iVersion < 2) return SQLITE_IOERR_SHMMAP;
    return m->xShmMap(real_file(f), page, size, extend, out);
}

static int y_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
    const sqlite3_io_methods *m = real_file(f)->pMethods;
    return m->iVersion < 2 ? SQLITE_IOERR_SHMLOCK : m->xShmLock(real_file(f), offset, n, flags);
}

static void y_shm_barrier(sqlite3_file *f)
{
    const sqlite3_io_methods *m = real_file(f)->pMethods;
    if (m->iVersion >= 2) m->xShmBarrier(real_file(f));
}

static int y_shm_unmap(sqlite3_file *f, int delete_flag)
{
    const sqlite3_io_methods *m = real_file(f)->pMethods;
    return m->iVersion < 2 ? SQLITE_OK : m->xShmUnmap(real_file(f), delete_flag);
}

static int y_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **out)
{
    const sqlite3_io_methods *m = real_file(f)->pMethods;
    if (m->iVersion < 3) {
        *out = NULL; /* "read it instead" */
        return SQLITE_OK;
    }
    return m->xFetch(real_file(f), off, n, out);
}

static int y_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
    const sqlite3_io_methods *m = real_file(f)->pMethods;
    return m->iVersion < 3 ? SQLITE_OK : m->xUnfetch(real_file(f), off, p);
}

static const sqlite3_io_methods yield_io = {
    3,
    y_close,
    y_read,
    y_write,
    y_truncate,
    y_sync,
    y_file_size,
    y_lock,
    y_unlock,
    y_check_reserved,
    y_file_control,
    y_sector_size,
    y_device,
    y_shm_map,
    y_shm_lock,
    y_shm_barrier,
    y_shm_unmap,
    y_fetch,
    y_unfetch,
};

/* ------------------------------------------------------------- VFS methods */

static int y_open(sqlite3_vfs *v, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
    struct yfile *y = (struct yfile *)f;
    y->real = (sqlite3_file *)(y + 1);
    int rc = real_vfs(v)->xOpen(real_vfs(v), name, y->real, flags, out_flags);
    /* SQLite calls xClose exactly when pMethods is set, even after an
     * error: mirror the real file's. */
    y->base.pMethods = y->real->pMethods ? &yield_io : NULL;
    return rc;
}

static int y_delete(sqlite3_vfs *v, const char *name, int sync_dir)
{
    return real_vfs(v)->xDelete(real_vfs(v), name, sync_dir);
}

static int y_access(sqlite3_vfs *v, const char *name, int flags, int *out)
{
    return real_vfs(v)->xAccess(real_vfs(v), name, flags, out);
}

static int y_full_pathname(sqlite3_vfs *v, const char *name, int n, char *out)
{
    return real_vfs(v)->xFullPathname(real_vfs(v), name, n, out);
}

static void *y_dlopen(sqlite3_vfs *v, const char *name) { return real_vfs(v)->xDlOpen(real_vfs(v), name); }
static void y_dlerror(sqlite3_vfs *v, int n, char *out) { real_vfs(v)->xDlError(real_vfs(v), n, out); }

static void (*y_dlsym(sqlite3_vfs *v, void *h, const char *sym))(void)
{
    return real_vfs(v)->xDlSym(real_vfs(v), h, sym);
}

static void y_dlclose(sqlite3_vfs *v, void *h) { real_vfs(v)->xDlClose(real_vfs(v), h); }
static int y_randomness(sqlite3_vfs *v, int n, char *out) { return real_vfs(v)->xRandomness(real_vfs(v), n, out); }
static int y_sleep(sqlite3_vfs *v, int us) { return real_vfs(v)->xSleep(real_vfs(v), us); }
static int y_current_time(sqlite3_vfs *v, double *out) { return real_vfs(v)->xCurrentTime(real_vfs(v), out); }

static int y_last_error(sqlite3_vfs *v, int n, char *out)
{
    return real_vfs(v)->xGetLastError ? real_vfs(v)->xGetLastError(real_vfs(v), n, out) : 0;
}

static int y_current_time64(sqlite3_vfs *v, sqlite3_int64 *out)
{
    sqlite3_vfs *r = real_vfs(v);
    if (r->iVersion >= 2 && r->xCurrentTimeInt64) return r->xCurrentTimeInt64(r, out);
    double days;
    int rc = r->xCurrentTime(r, &days);
    *out = (sqlite3_int64)(days * 86400000.0);
    return rc;
}

/* ------------------------------------------------------------ registration */

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static int reg_users;
static sqlite3_vfs yield_vfs;

int mdb_yield_vfs_acquire(void)
{
    int rc = SQLITE_OK;
    pthread_mutex_lock(&reg_mu);
    if (reg_users == 0) {
        sqlite3_vfs *real = sqlite3_vfs_find(NULL);
        if (!real) {
            rc = SQLITE_ERROR;
        } else {
            sqlite3_vfs v = {
                .iVersion = 2, /* up to xCurrentTimeInt64; no system-call overrides */
                .szOsFile = (int)sizeof(struct yfile) + real->szOsFile,
                .mxPathname = real->mxPathname,
                .zName = MDB_YIELD_VFS,
                .pAppData = real,
                .xOpen = y_open,
                .xDelete = y_delete,
                .xAccess = y_access,
                .xFullPathname = y_full_pathname,
                .xDlOpen = y_dlopen,
                .xDlError = y_dlerror,
                .xDlSym = y_dlsym,
                .xDlClose = y_dlclose,
                .xRandomness = y_randomness,
                .xSleep = y_sleep,
                .xCurrentTime = y_current_time,
                .xGetLastError = y_last_error,
                .xCurrentTimeInt64 = y_current_time64,
            };
            yield_vfs = v;
            rc = sqlite3_vfs_register(&yield_vfs, 0);
        }
    }
    if (rc == SQLITE_OK) reg_users++;
    pthread_mutex_unlock(&reg_mu);
    return rc;
}

/* Unregistered with its last user: the struct lives in this plugin, which
 * may be unloaded while SQLite stays loaded for another. */
void mdb_yield_vfs_release(void)
{
    pthread_mutex_lock(&reg_mu);
    if (reg_users > 0 && --reg_users == 0) sqlite3_vfs_unregister(&yield_vfs);
    pthread_mutex_unlock(&reg_mu);
}
