/* metrics_read.c — hr_get_metrics / hr_get_summary: read the metrics_db
 * sink's SQLite file (schema user_version 1, table `requests`) read-only,
 * while a daemon may be writing it (WAL mode, busy timeout). */
#include "sdk.h"
#ifdef HR_HAVE_SQLITE
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <sqlite3.h>
#include "stats_json.h"

#define SCHEMA_VERSION 1

static void iso_time(double t, char *out, size_t outlen)
{
    time_t s = (time_t)floor(t);
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The URI to open `path` with. The sink keeps it in WAL mode, and SQLite
 * reading a WAL database creates <db>-wal and <db>-shm when they are not
 * there (no headroomd has it open): `headroom summary` run by an SRE as
 * another user (root) left files the daemon cannot write. With no -wal the
 * whole database is in the main file: read it as immutable (no lock, no
 * file made). A -wal there (a daemon writing, or one that stopped without
 * a checkpoint) holds rows: read it as SQLite does. */
static char *db_uri(const char *path, int immutable)
{
    size_t n = strlen(path);
    char *uri = malloc(3 * n + 32), *o = uri;
    if (!uri) return NULL;
    o += sprintf(o, "file:");
    for (const char *p = path; *p; p++) { /* a path's '%', '?' and '#' would be read as the URI's */
        unsigned char ch = (unsigned char)*p;
        if (isalnum(ch) || strchr("/-._~", ch)) *o++ = (char)ch;
        else o += sprintf(o, "%%%02X", ch);
    }
    strcpy(o, immutable ? "?immutable=1" : "?mode=ro");
    return uri;
}

/* What an immutable read relies on: the main file as it was, no -wal. A
 * daemon starting under the read (creating the file, putting it in WAL
 * mode, migrating, moving a damaged one aside) changes one of them. */
struct snap {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    int wal; /* a -wal exists */
};

static int take_snap(const char *path, struct snap *s)
{
    struct stat st;
    memset(s, 0, sizeof *s);
    char *wal = NULL;
    if (asprintf(&wal, "%s-wal", path) < 0) return -1;
    s->wal = !(stat(wal, &st) != 0 && errno == ENOENT);
    free(wal);
    if (stat(path, &st) != 0) return -1;
    s->dev = st.st_dev;
    s->ino = st.st_ino;
    s->size = st.st_size;
    s->mtime = st.st_mtim;
    return 0;
}

static int moved(const char *path, const struct snap *before)
{
    struct snap now;
    return take_snap(path, &now) || now.wal || now.dev != before->dev || now.ino != before->ino ||
           now.size != before->size || now.mtime.tv_sec != before->mtime.tv_sec ||
           now.mtime.tv_nsec != before->mtime.tv_nsec;
}

/* How long a read waits for a database that a headroomd starting is
 * creating (an empty file, no schema yet) before saying so. */
#define CREATING_WAIT_MS 3000

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Open the client's database read-only; NULL with the error set. *before
 * and *immutable say how it was opened, for read_db's check afterwards. */
static sqlite3 *open_db(const hr_client *c, char **path_out, struct snap *before, int *immutable)
{
    int in_block, from_path;
    char *path = hr_sdk_sink_file(c, "metrics_db", "metrics.db", &in_block, &from_path);
    if (!path) {
        hr_sdk_fail(HEADROOM_ENOMEM, "out of memory");
        return NULL;
    }
    for (int waited = 0;; waited += 50) {
        if (take_snap(path, before) != 0) {
            int e = errno;
            char hint[600];
            hr_sdk_missing_file_hint(c, "metrics_db", in_block, from_path, hint, sizeof hint);
            if (e == ENOENT) /* the config's block and where the file is looked for decide the fix */
                hr_sdk_fail(HEADROOM_ENOTFOUND, "no metrics database at %s: %s", path, hint);
            else
                hr_sdk_fail(HEADROOM_EIO, "cannot read the metrics database %s: %s", path, strerror(e));
            free(path);
            return NULL;
        }
        *immutable = !before->wal;
        sqlite3 *db = NULL;
        char *uri = db_uri(path, *immutable);
        if (!uri) {
            hr_sdk_fail(HEADROOM_ENOMEM, "out of memory");
            free(path);
            return NULL;
        }
        int orc = sqlite3_open_v2(uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL);
        free(uri);
        if (orc != SQLITE_OK) {
            hr_sdk_fail(HEADROOM_EIO, "cannot open the metrics database %s: %s", path,
                        db ? sqlite3_errmsg(db) : "no memory");
            sqlite3_close(db);
            free(path);
            return NULL;
        }
        sqlite3_busy_timeout(db, 5000);
        sqlite3_stmt *st_v = NULL;
        int version = -1, tables = -1;
        int rc = sqlite3_prepare_v2(db, "SELECT (SELECT user_version FROM pragma_user_version), "
                                        "(SELECT count(*) FROM sqlite_master)", -1, &st_v, NULL);
        if (rc == SQLITE_OK && sqlite3_step(st_v) == SQLITE_ROW) {
            version = sqlite3_column_int(st_v, 0);
            tables = sqlite3_column_int(st_v, 1);
        }
        char whybuf[300] = "";
        if (version < 0) snprintf(whybuf, sizeof whybuf, "%s", sqlite3_errmsg(db));
        sqlite3_finalize(st_v);
        if (version == SCHEMA_VERSION) {
            *path_out = path;
            return db;
        }
        sqlite3_close(db);
        /* An empty file, or one with no schema yet, is a database a
         * headroomd starting has just created: its schema comes a moment
         * later (it said "schema version 0: check the path"). So is one
         * that changed while it was read. Wait for it, a while. */
        int creating = (version == 0 && tables == 0) || before->size == 0 || (version <= 0 && moved(path, before));
        if (creating && waited < CREATING_WAIT_MS) {
            sleep_ms(50);
            continue;
        }
        if (creating)
            hr_sdk_fail(HEADROOM_ENOTFOUND, "the metrics database %s has no schema yet: a headroomd starting is "
                        "creating it (or it is an empty file); run again in a moment", path);
        else if (version < 0)
            hr_sdk_fail(HEADROOM_EIO, "%s is not a readable SQLite database (%s): it may be damaged; headroomd's "
                        "metrics_db sink moves a damaged file aside at start-up", path, whybuf);
        else if (version > SCHEMA_VERSION)
            hr_sdk_fail(HEADROOM_EIO, "%s has metrics schema version %d, newer than this libheadroom reads (%d): "
                        "upgrade headroom", path, version, SCHEMA_VERSION);
        else
            hr_sdk_fail(HEADROOM_EIO, "%s is not a headroom metrics database (schema version %d, want %d): check "
                        "the `path` of `sink metrics_db`", path, version, SCHEMA_VERSION);
        free(path);
        return NULL;
    }
}

/* One query over the database, again when an immutable read's file changed
 * under it (a daemon started: the answer may be torn, or miss what went to
 * the -wal it made): the next try sees the -wal and reads as SQLite does. */
static json_t *read_db(const hr_client *c, json_t *(*query)(sqlite3 *db, const char *path, void *ctx), void *ctx)
{
    for (int attempt = 0;; attempt++) {
        char *path = NULL;
        struct snap before;
        int immutable;
        sqlite3 *db = open_db(c, &path, &before, &immutable);
        if (!db) return NULL;
        json_t *out = query(db, path, ctx);
        sqlite3_close(db);
        if (immutable && attempt < 5 && moved(path, &before)) {
            json_decref(out);
            free(path);
            hr_sdk_clear_error();
            continue;
        }
        free(path);
        return out;
    }
}

static json_t *column_json(sqlite3_stmt *st, int i)
{
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_INTEGER: return json_integer((json_int_t)sqlite3_column_int64(st, i));
    case SQLITE_FLOAT: return json_real(sqlite3_column_double(st, i));
    case SQLITE_NULL: return json_null();
    default: return json_string((const char *)sqlite3_column_text(st, i));
    }
}

static const char *const METRIC_COLUMNS[] = {
    "request_id", "timestamp", "model", "provider", "wire_format", "stack", "path", "status", "credited", "cached",
    "streamed", "failed", "tokens_input_before", "tokens_input_after", "tokens_saved", "tokens_output",
    "cache_read_tokens", "cache_write_tokens", "reasoning_tokens", "cost_usd", "savings_usd", "priced",
    "transforms", "latency_ms", "overhead_ms", "ttfb_ms",
};
#define N_METRIC_COLUMNS (sizeof METRIC_COLUMNS / sizeof METRIC_COLUMNS[0])
static const char *const BOOL_COLUMNS[] = {"credited", "cached", "streamed", "failed", "priced"};

static json_t *row_json(sqlite3_stmt *st)
{
    json_t *o = json_object();
    for (int i = 0; i < (int)N_METRIC_COLUMNS; i++) {
        const char *name = METRIC_COLUMNS[i];
        json_t *v = column_json(st, i);
        for (size_t b = 0; b < sizeof BOOL_COLUMNS / sizeof BOOL_COLUMNS[0]; b++)
            if (!strcmp(name, BOOL_COLUMNS[b])) {
                int t = json_integer_value(v) != 0;
                json_decref(v);
                v = json_boolean(t);
            }
        if (!strcmp(name, "transforms")) { /* stored as a JSON array in text */
            json_t *arr = json_string_value(v) ? json_loads(json_string_value(v), 0, NULL) : NULL;
            json_decref(v);
            v = json_is_array(arr) ? arr : (json_decref(arr), json_array());
        }
        if (!strcmp(name, "timestamp")) {
            char iso[32];
            iso_time(sqlite3_column_double(st, i), iso, sizeof iso);
            json_object_set_new(o, "time", json_string(iso));
        }
        json_object_set_new(o, name, v);
    }
    json_int_t before = json_integer_value(json_object_get(o, "tokens_input_before"));
    json_int_t after = json_integer_value(json_object_get(o, "tokens_input_after"));
    json_object_set_new(o, "compression_ratio", json_real(before > 0 ? hr_round((double)after / (double)before, 4) : 1.0));
    return o;
}

/* start/end as SQL bounds: 0 = unbounded. */
static void bind_range(sqlite3_stmt *st, double start, double end)
{
    sqlite3_bind_double(st, 1, start > 0 ? start : -1e300);
    sqlite3_bind_double(st, 2, end > 0 ? end : 1e300);
}

struct metrics_q {
    double start, end;
    size_t limit;
    const char *model;
};

static json_t *metrics_query(sqlite3 *db, const char *path, void *ctx)
{
    const struct metrics_q *q = ctx;
    char sql[1024];
    size_t k = (size_t)snprintf(sql, sizeof sql, "SELECT ");
    for (size_t i = 0; i < N_METRIC_COLUMNS; i++)
        k += (size_t)snprintf(sql + k, sizeof sql - k, "%s%s", i ? "," : "", METRIC_COLUMNS[i]);
    snprintf(sql + k, sizeof sql - k, " FROM requests WHERE timestamp >= ?1 AND timestamp < ?2 AND (?3 IS NULL OR "
             "model = ?3) ORDER BY timestamp DESC, id DESC LIMIT ?4");
    sqlite3_stmt *st = NULL;
    json_t *rows = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        hr_sdk_fail(HEADROOM_EIO, "cannot query %s: %s (is it a headroom metrics database?)", path, sqlite3_errmsg(db));
        goto out;
    }
    bind_range(st, q->start, q->end);
    if (q->model) sqlite3_bind_text(st, 3, q->model, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 4, q->limit ? (sqlite3_int64)q->limit : 100);
    rows = json_array();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) json_array_append_new(rows, row_json(st));
    if (rc != SQLITE_DONE) {
        hr_sdk_fail(HEADROOM_EIO, "reading %s failed: %s", path, sqlite3_errmsg(db));
        json_decref(rows);
        rows = NULL;
    }
out:
    sqlite3_finalize(st);
    return rows;
}

char *hr_get_metrics(hr_client *c, double start, double end, size_t limit, const char *model)
{
    hr_sdk_clear_error();
    if (!c) {
        hr_sdk_fail(HEADROOM_EINVAL, "hr_get_metrics: client is NULL");
        return NULL;
    }
    struct metrics_q q = {start, end, limit, model};
    json_t *rows = read_db(c, metrics_query, &q);
    return rows ? hr_sdk_dump(rows) : NULL;
}

static json_t *summary_query(sqlite3 *db, const char *path, void *ctx)
{
    const double *range = ctx;
    double start = range[0], end = range[1];
    /* Token and savings totals over credited requests (as /stats counts them);
     * the average ratio is the mean of per-request sent/input, as /stats'
     * tokens.compression_ratio_avg. */
    static const char sql[] =
        "SELECT COUNT(*),"
        " COALESCE(SUM(CASE WHEN credited THEN tokens_input_before END), 0),"
        " COALESCE(SUM(CASE WHEN credited THEN tokens_input_after END), 0),"
        " COALESCE(SUM(CASE WHEN credited THEN tokens_saved END), 0),"
        " COALESCE(SUM(tokens_output), 0),"
        " COALESCE(SUM(cost_usd), 0.0),"
        " COALESCE(SUM(CASE WHEN credited THEN savings_usd END), 0.0),"
        " AVG(CASE WHEN credited AND tokens_input_before > 0 THEN CAST(tokens_input_after AS REAL) / tokens_input_before END),"
        " MIN(timestamp), MAX(timestamp),"
        " COALESCE(SUM(cached), 0), COALESCE(SUM(failed), 0), COALESCE(SUM(credited), 0),"
        /* as /stats cost.unpriced_requests: a model the price table does not
         * know (a request without a model, /v1/models, is not one) */
        " COALESCE(SUM(CASE WHEN NOT priced AND model <> '' THEN 1 ELSE 0 END), 0)"
        " FROM requests WHERE timestamp >= ?1 AND timestamp < ?2";
    sqlite3_stmt *st = NULL;
    json_t *out = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        hr_sdk_fail(HEADROOM_EIO, "cannot query %s: %s (is it a headroom metrics database?)", path, sqlite3_errmsg(db));
        goto done;
    }
    bind_range(st, start, end);
    if (sqlite3_step(st) != SQLITE_ROW) {
        hr_sdk_fail(HEADROOM_EIO, "reading %s failed: %s", path, sqlite3_errmsg(db));
        goto done;
    }
    json_int_t before = sqlite3_column_int64(st, 1), after = sqlite3_column_int64(st, 2);
    double avg = sqlite3_column_type(st, 7) == SQLITE_NULL ? 1.0 : sqlite3_column_double(st, 7);
    char first[32] = "", last[32] = "";
    if (sqlite3_column_type(st, 8) != SQLITE_NULL) {
        iso_time(sqlite3_column_double(st, 8), first, sizeof first);
        iso_time(sqlite3_column_double(st, 9), last, sizeof last);
    }
    out = json_pack("{s:I,s:I,s:f,s:f,s:f,s:I,s:I,s:I,s:f,s:I,s:I,s:I,s:I,s:s?,s:s?,s:s}", "total_requests",
                    (json_int_t)sqlite3_column_int64(st, 0), "total_tokens_saved",
                    (json_int_t)sqlite3_column_int64(st, 3), "avg_compression_ratio", hr_round(avg, 4),
                    "total_cost_saved_usd", hr_round(sqlite3_column_double(st, 6), 6), "total_cost_usd",
                    hr_round(sqlite3_column_double(st, 5), 6), "total_tokens_before", before, "total_tokens_after",
                    after, "total_tokens_output", (json_int_t)sqlite3_column_int64(st, 4), "savings_percent",
                    before > 0 ? hr_round(100.0 * (double)(before - after) / (double)before, 2) : 0.0,
                    "credited_requests", (json_int_t)sqlite3_column_int64(st, 12), "cached_requests",
                    (json_int_t)sqlite3_column_int64(st, 10), "failed_requests", (json_int_t)sqlite3_column_int64(st, 11),
                    "unpriced_requests", (json_int_t)sqlite3_column_int64(st, 13),
                    "first_timestamp", first[0] ? first : NULL, "last_timestamp", last[0] ? last : NULL, "database",
                    path);
done:
    sqlite3_finalize(st);
    return out;
}

char *hr_get_summary(hr_client *c, double start, double end)
{
    hr_sdk_clear_error();
    if (!c) {
        hr_sdk_fail(HEADROOM_EINVAL, "hr_get_summary: client is NULL");
        return NULL;
    }
    double range[2] = {start, end};
    json_t *out = read_db(c, summary_query, range);
    return out ? hr_sdk_dump(out) : NULL;
}
#else /* built without SQLite (configure --without-sqlite, or no libsqlite3-dev) */

static void *no_sqlite(void)
{
    hr_sdk_fail(HEADROOM_ENOTFOUND, "this libheadroom was built without SQLite, so it cannot read the metrics "
                "database: install libsqlite3-dev and rebuild headroomd");
    return NULL;
}

char *hr_get_metrics(hr_client *c, double start, double end, size_t limit, const char *model)
{
    (void)c, (void)start, (void)end, (void)limit, (void)model;
    return no_sqlite();
}

char *hr_get_summary(hr_client *c, double start, double end)
{
    (void)c, (void)start, (void)end;
    return no_sqlite();
}
#endif
