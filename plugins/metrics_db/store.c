/* store.c — the metrics_db SQLite file: open it in WAL mode with a busy
 * timeout (several headroomd processes may share it), migrate its schema by
 * PRAGMA user_version, move a damaged file aside, insert rows in batches and
 * prune old ones. Runs on the sink's writer thread only. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "mdb.h"
#include "state_file.h"

/* Migrations: step i takes a file from user_version i to i + 1, in the same
 * transaction as the version bump. A later schema appends a step (ALTER
 * TABLE ... ADD COLUMN at the end, new indexes), never edits an old one. */
static const char *const migrations[MDB_SCHEMA_VERSION] = {
    /* 0 -> 1: the requests table (doc/metrics-db.md). */
    "CREATE TABLE IF NOT EXISTS requests (\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  request_id TEXT NOT NULL,\n"
    "  timestamp REAL NOT NULL,\n"
    "  model TEXT NOT NULL, provider TEXT NOT NULL, wire_format TEXT NOT NULL,\n"
    "  stack TEXT NOT NULL, path TEXT NOT NULL,\n"
    "  status INTEGER NOT NULL, credited INTEGER NOT NULL, cached INTEGER NOT NULL,\n"
    "  streamed INTEGER NOT NULL, failed INTEGER NOT NULL,\n"
    "  tokens_input_before INTEGER NOT NULL, tokens_input_after INTEGER NOT NULL,\n"
    "  tokens_saved INTEGER NOT NULL, tokens_output INTEGER NOT NULL,\n"
    "  cache_read_tokens INTEGER NOT NULL, cache_write_tokens INTEGER NOT NULL,\n"
    "  reasoning_tokens INTEGER NOT NULL,\n"
    "  cost_usd REAL NOT NULL, savings_usd REAL NOT NULL, priced INTEGER NOT NULL,\n"
    "  transforms TEXT NOT NULL,\n"
    "  latency_ms REAL NOT NULL, overhead_ms REAL NOT NULL,\n"
    "  ttfb_ms REAL\n"
    ");\n"
    "CREATE INDEX IF NOT EXISTS requests_by_time ON requests(timestamp);\n",
};

/* The columns version 1 needs: a `requests` table in a version-0 file that
 * lacks one is someone else's. */
static const char *const v1_columns[] = {
    "request_id", "timestamp", "model", "provider", "wire_format", "stack", "path", "status", "credited",
    "cached", "streamed", "failed", "tokens_input_before", "tokens_input_after", "tokens_saved",
    "tokens_output", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens", "cost_usd",
    "savings_usd", "priced", "transforms", "latency_ms", "overhead_ms", "ttfb_ms", NULL,
};

int mdb_is_damage(int rc)
{
    rc &= 0xff;
    return rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT;
}

int mdb_mkdir_parent(const char *path)
{
    char *dir = strdup(path);
    if (!dir) return -ENOMEM;
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) {
        free(dir);
        return 0;
    }
    *slash = '\0';
    for (char *p = dir + 1;; p++) {
        if (*p != '/' && *p != '\0') continue;
        char c = *p;
        *p = '\0';
        if (mkdir(dir, 0700) && errno != EEXIST) {
            int e = errno;
            free(dir);
            return -e;
        }
        *p = c;
        if (!c) break;
    }
    free(dir);
    return 0;
}

/* One integer from a one-row query (PRAGMA user_version, counts). */
static int query_int(sqlite3 *db, const char *sql, int64_t *out)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        *out = 0;
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

/* Name of the first v1 column `requests` lacks, or NULL when it has all. */
static const char *missing_column(sqlite3 *db)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "PRAGMA table_info(requests)", -1, &st, NULL) != SQLITE_OK) return "?";
    unsigned long long seen = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 1);
        for (size_t i = 0; name && v1_columns[i]; i++)
            if (!strcmp(name, v1_columns[i])) seen |= 1ull << i;
    }
    sqlite3_finalize(st);
    for (size_t i = 0; v1_columns[i]; i++)
        if (!(seen & (1ull << i))) return v1_columns[i];
    return NULL;
}

#define OPEN_DAMAGED 3 /* internal: move the file aside and try once more */

static int fail(struct mdb_open_info *info, sqlite3 *db, int rc, const char *fmt, const char *path)
{
    const char *msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    /* A header whose schema-format field is garbage reads as "unsupported
     * file format": damaged too (the file is kept, moved aside). */
    if (mdb_is_damage(rc) || ((rc & 0xff) == SQLITE_ERROR && strstr(msg, "unsupported file format"))) {
        snprintf(info->damage, sizeof info->damage, "%s", msg);
        return OPEN_DAMAGED;
    }
    int sys = db ? sqlite3_system_errno(db) : 0;
    char detail[300];
    if (sys && !strstr(msg, strerror(sys)))
        snprintf(detail, sizeof detail, "%s: %s", msg, strerror(sys));
    else
        snprintf(detail, sizeof detail, "%s", msg);
    snprintf(info->why, sizeof info->why, fmt, path, detail);
    return MDB_FAILED;
}

/* Bring the schema from `version` to MDB_SCHEMA_VERSION inside an
 * IMMEDIATE transaction, so two processes opening one new file at the same
 * time create it once. */
static int migrate(sqlite3 *db, const char *path, struct mdb_open_info *info)
{
    int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK) return fail(info, db, rc, "cannot lock %s to set up its schema: %s", path);
    int64_t v = 0, tables = 0;
    rc = query_int(db, "PRAGMA user_version", &v);
    if (rc == SQLITE_OK)
        rc = query_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'requests'", &tables);
    if (rc != SQLITE_OK) {
        int out = fail(info, db, rc, "cannot read the schema of %s: %s", path);
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return out;
    }
    if (v > MDB_SCHEMA_VERSION) { /* upgraded by another process since we looked */
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        info->version_found = (int)v;
        snprintf(info->why, sizeof info->why,
                 "%s has schema version %lld but this headroomd writes version %d: upgrade headroomd, or set "
                 "`path` in `sink metrics_db { }` to another file",
                 path, (long long)v, MDB_SCHEMA_VERSION);
        return MDB_REFUSED;
    }
    if (v == 0 && tables) {
        const char *col = missing_column(db);
        if (col) {
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            snprintf(info->why, sizeof info->why,
                     "%s already has a `requests` table without the column `%s` (and user_version 0): it is not a "
                     "headroomd metrics database; set `path` in `sink metrics_db { }` to another file",
                     path, col);
            return MDB_REFUSED;
        }
    }
    for (int64_t step = v; step < MDB_SCHEMA_VERSION; step++) {
        char bump[64];
        snprintf(bump, sizeof bump, "PRAGMA user_version = %lld", (long long)step + 1);
        rc = sqlite3_exec(db, migrations[step], NULL, NULL, NULL);
        if (rc == SQLITE_OK) rc = sqlite3_exec(db, bump, NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
            int out = fail(info, db, rc, "cannot create the schema in %s: %s", path);
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            return out;
        }
        info->created = 1;
    }
    rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        int out = fail(info, db, rc, "cannot commit the schema of %s: %s", path);
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return out;
    }
    return MDB_OPENED;
}

static int try_open(const char *path, int busy_ms, int check, sqlite3 **out, struct mdb_open_info *info,
                    struct stat *seen)
{
    sqlite3 *db = NULL;
    /* NOMUTEX: one thread at a time uses the connection (the writer), so
     * SQLite's own lock around every call is pure cost. */
    const char *vfs = sqlite3_vfs_find(MDB_YIELD_VFS) ? MDB_YIELD_VFS : NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, vfs);
    if (rc != SQLITE_OK) {
        int st = fail(info, db, rc, "cannot open %s: %s", path);
        sqlite3_close(db);
        return st;
    }
    if (stat(path, seen)) memset(seen, 0, sizeof *seen);
    rc = mdb_batch_vtab_register(db);
    if (rc != SQLITE_OK) {
        int st = fail(info, db, rc, "cannot register the batch reader on %s: %s", path);
        sqlite3_close(db);
        return st;
    }
    sqlite3_busy_timeout(db, busy_ms);
    int st = MDB_OPENED;
    int64_t v = 0, n = 0;
    /* Reading the schema is what tells a database from something else. */
    rc = query_int(db, "SELECT count(*) FROM sqlite_master", &n);
    if (rc == SQLITE_OK) rc = query_int(db, "PRAGMA user_version", &v);
    if (rc != SQLITE_OK) {
        st = fail(info, db, rc, "cannot read %s: %s", path);
        goto out;
    }
    info->version_found = (int)v;
    if (check) {
        /* Damage was seen in a page the schema does not touch. */
        sqlite3_stmt *qc;
        rc = sqlite3_prepare_v2(db, "PRAGMA quick_check(1)", -1, &qc, NULL);
        if (rc == SQLITE_OK) {
            rc = sqlite3_step(qc);
            const char *res = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(qc, 0) : NULL;
            if (res && strcmp(res, "ok")) {
                snprintf(info->damage, sizeof info->damage, "%s", res);
                sqlite3_finalize(qc);
                st = OPEN_DAMAGED;
                goto out;
            }
            rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
            sqlite3_finalize(qc);
        }
        if (rc != SQLITE_OK) {
            st = fail(info, db, rc, "cannot check %s: %s", path);
            goto out;
        }
    }
    /* Leave a newer file exactly as it is: not even its journal mode. */
    if (v > MDB_SCHEMA_VERSION || v < 0) {
        snprintf(info->why, sizeof info->why,
                 "%s has schema version %lld but this headroomd writes version %d: upgrade headroomd, or set `path` "
                 "in `sink metrics_db { }` to another file",
                 path, (long long)v, MDB_SCHEMA_VERSION);
        st = MDB_REFUSED;
        goto out;
    }
    if (sqlite3_db_readonly(db, "main") == 1) {
        snprintf(info->why, sizeof info->why, "cannot write %s: the file is read-only (check its permissions)", path);
        st = MDB_FAILED;
        goto out;
    }
    sqlite3_stmt *jm;
    rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &jm, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(jm);
        const char *mode = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(jm, 0) : NULL;
        if (rc == SQLITE_ROW && mode && strcmp(mode, "wal")) {
            snprintf(info->why, sizeof info->why,
                     "cannot put %s in WAL mode (it stays in %s mode): use a local file system", path, mode);
            sqlite3_finalize(jm);
            st = MDB_FAILED;
            goto out;
        }
        if (rc == SQLITE_ROW) rc = SQLITE_OK;
        sqlite3_finalize(jm);
    }
    if (rc != SQLITE_OK) {
        st = fail(info, db, rc, "cannot put %s in WAL mode: %s", path);
        goto out;
    }
    /* WAL + NORMAL: a crash never corrupts the file; a power cut may lose
     * the last batches. One fsync per checkpoint instead of per commit. */
    sqlite3_exec(db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL);
    st = migrate(db, path, info);
out:
    if (st == MDB_OPENED) {
        *out = db;
    } else {
        sqlite3_close(db);
    }
    return st;
}

/* Rename the damaged file (and its -wal, -journal) to
 * <path>.corrupt-<stamp>[-N]; its -shm is only an index and goes. */
static int quarantine(const char *path, double now, const struct stat *damaged, char *dest, size_t destlen)
{
    /* Another process sharing the file may have moved it aside and started
     * a new one since we looked: that one is not ours to move. */
    struct stat cur;
    if (stat(path, &cur) || cur.st_ino != damaged->st_ino || cur.st_dev != damaged->st_dev) return -EAGAIN;
    int rc = hr_corrupt_name(path, now, dest, destlen);
    if (rc) return rc;
    if (rename(path, dest)) return -errno;
    static const char *const sides[] = {"-wal", "-journal"};
    for (size_t k = 0; k < 2; k++) {
        char from[4200], to[4300];
        snprintf(from, sizeof from, "%s%s", path, sides[k]);
        snprintf(to, sizeof to, "%s%s", dest, sides[k]);
        if (rename(from, to) && errno != ENOENT) unlink(from);
    }
    char shm[4200];
    snprintf(shm, sizeof shm, "%s-shm", path);
    unlink(shm);
    return 0;
}

enum mdb_open_status mdb_open(const char *path, double now, int busy_timeout_ms, int check, sqlite3 **db,
                              struct mdb_open_info *info)
{
    memset(info, 0, sizeof *info);
    *db = NULL;
    int rc = mdb_mkdir_parent(path);
    if (rc) {
        snprintf(info->why, sizeof info->why, "cannot create the directory of %s: %s", path, strerror(-rc));
        return MDB_FAILED;
    }
    struct stat seen;
    int st = try_open(path, busy_timeout_ms, check, db, info, &seen);
    if (st != OPEN_DAMAGED) return (enum mdb_open_status)st;
    rc = quarantine(path, now, &seen, info->moved_to, sizeof info->moved_to);
    if (rc == -EAGAIN) { /* replaced meanwhile: open what is there now */
        memset(info, 0, sizeof *info);
        st = try_open(path, busy_timeout_ms, 0, db, info, &seen);
        if (st == OPEN_DAMAGED) {
            snprintf(info->why, sizeof info->why, "%s is unreadable: %s", path, info->damage);
            return MDB_FAILED;
        }
        return (enum mdb_open_status)st;
    }
    if (rc) {
        info->moved_to[0] = '\0';
        snprintf(info->why, sizeof info->why,
                 "%s is damaged (%s) and cannot be moved aside (%s): fix the directory's permissions or remove the "
                 "file",
                 path, info->damage, strerror(-rc));
        return MDB_FAILED;
    }
    char damage[sizeof info->damage], moved[sizeof info->moved_to];
    memcpy(damage, info->damage, sizeof damage);
    memcpy(moved, info->moved_to, sizeof moved);
    memset(info, 0, sizeof *info);
    st = try_open(path, busy_timeout_ms, 0, db, info, &seen);
    memcpy(info->damage, damage, sizeof damage);
    memcpy(info->moved_to, moved, sizeof moved);
    if (st == OPEN_DAMAGED) {
        snprintf(info->why, sizeof info->why, "%s is still unreadable after moving the damaged file aside: %s", path,
                 info->damage);
        return MDB_FAILED;
    }
    return (enum mdb_open_status)st;
}

/* ---------------------------------------------------------------- writes */

/* The whole batch in one statement: SQLite reads the rows through
 * batch_vtab.c instead of 26 bound parameters a row. */
#define ROW_COLUMNS                                                                                        \
    "request_id, timestamp, model, provider, wire_format, stack, path, status, credited, cached, streamed, "   \
    "failed, tokens_input_before, tokens_input_after, tokens_saved, tokens_output, cache_read_tokens, "       \
    "cache_write_tokens, reasoning_tokens, cost_usd, savings_usd, priced, transforms, latency_ms, "           \
    "overhead_ms, ttfb_ms"
#define INSERT_SQL "INSERT INTO requests (" ROW_COLUMNS ") SELECT " ROW_COLUMNS " FROM " MDB_BATCH_VTAB "(?1)"

void mdb_stmts_free(struct mdb_stmts *s)
{
    if (!s) return;
    sqlite3_finalize(s->insert);
    s->insert = NULL;
}

int mdb_insert(sqlite3 *db, struct mdb_stmts *cache, const struct mdb_row *rows, char *why, size_t whylen)
{
    struct mdb_stmts local = {NULL};
    struct mdb_stmts *c = cache ? cache : &local;
    int rc = SQLITE_OK;
    if (!c->insert) rc = sqlite3_prepare_v3(db, INSERT_SQL, -1, SQLITE_PREPARE_PERSISTENT, &c->insert, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_bind_pointer(c->insert, 1, (void *)rows, MDB_ROWS_POINTER, NULL);
        if (rc == SQLITE_OK) rc = sqlite3_step(c->insert);
        if (rc == SQLITE_DONE) rc = SQLITE_OK;
        sqlite3_reset(c->insert);
        sqlite3_clear_bindings(c->insert); /* the rows are freed after this */
    }
    if (rc == SQLITE_OK) rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        snprintf(why, whylen, "%s", sqlite3_errmsg(db));
        if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    }
    mdb_stmts_free(&local);
    return rc;
}

int mdb_prune(sqlite3 *db, double cutoff, int64_t *deleted, char *why, size_t whylen)
{
    *deleted = 0;
    sqlite3_stmt *st;
    /* In slices: a big first prune must not hold the write lock other
     * processes sharing the file are waiting for. */
    int rc = sqlite3_prepare_v2(
        db, "DELETE FROM requests WHERE id IN (SELECT id FROM requests WHERE timestamp < ?1 LIMIT 5000)", -1, &st,
        NULL);
    while (rc == SQLITE_OK) {
        sqlite3_bind_double(st, 1, cutoff);
        rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE) break;
        rc = SQLITE_OK;
        int64_t n = sqlite3_changes64(db);
        *deleted += n;
        if (n < 5000) break;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_OK) snprintf(why, whylen, "%s", sqlite3_errmsg(db));
    return rc;
}
