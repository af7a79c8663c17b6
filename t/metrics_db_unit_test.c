/* t/metrics_db_unit_test.c — the metrics_db sink through the fake host: rows
 * and their columns as SQLite reads them back, batching and the final flush,
 * queue overflow counted, retention at start, a newer schema refused, a
 * foreign table refused, a damaged file moved aside, an unusable path, and
 * hostile strings stored as bounded valid UTF-8. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <sqlite3.h>
#include <headroom/plugin.h>
#include "tap.h"
#include "fake_host.h"
#include "mdb.h"

extern const struct headroom_plugin headroom_plugin;

static struct hr_instance inst = {"metrics_db"};
static char dir[256];

static void *make(const char *path, const char *k1, const char *v1, const char *k2, const char *v2)
{
    struct hr_conf conf;
    void *s = NULL;
    fh_conf(&conf, headroom_plugin.conf_keys, "path", path, k1, v1, k2, v2, NULL);
    return headroom_plugin.init(fh_host(), &inst, &conf, &s) ? NULL : s;
}

static void drop(void *s)
{
    fh_drop_stats(s);
    headroom_plugin.fini(s);
}

static char *file(const char *name)
{
    static char buf[8][512];
    static int k;
    char *b = buf[k++ % 8];
    snprintf(b, 512, "%s/%s", dir, name);
    return b;
}

static struct hr_stage_result stages[3] = {
    {sizeof(struct hr_stage_result), "router", 0.1, 0, "router:log=1", 0},
    {sizeof(struct hr_stage_result), "log_compressor", 1.5, 900, "log_compressor:kept=10", 0},
    {sizeof(struct hr_stage_result), "smart_crusher", 2.0, 50, "", 1}, /* undone: not listed */
};

static struct hr_event event(int i)
{
    struct hr_event ev = {
        .struct_size = sizeof ev, .request_id = "hr-1-1", .timestamp = 1700000000.25 + i,
        .provider = HR_PROVIDER_OPENAI, .provider_name = "openai", .model = "gpt-4o-mini", .stack = "claude_code",
        .path = "/v1/chat/completions", .status = 200, .tokens_input = 1000, .tokens_sent = 100, .tokens_saved = 900,
        .tokens_output = 7, .cache_read_tokens = 3, .cache_write_tokens = 2, .cost_usd = 0.000123,
        .savings_usd = 0.000135, .priced = 1, .latency_ms = 12.34567, .overhead_ms = 1.5, .ttfb_ms = i % 2 ? -1 : 4.25,
        .n_stages = 3, .stages = stages, .pipeline_ms = 3.6, .wire_format = HR_WIRE_OPENAI_CHAT,
        .wire_format_name = "openai_chat", .reasoning_tokens = 1, .credited = 1,
    };
    return ev;
}

static sqlite3 *open_ro(const char *path)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

static long long q_int(const char *path, const char *sql)
{
    sqlite3 *db = open_ro(path);
    sqlite3_stmt *st;
    long long v = -1;
    if (db && sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return v;
}

static int exec_on(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open(path, &db);
    if (rc == SQLITE_OK) rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    sqlite3_close(db);
    return rc;
}

static long long stat_int(const char *key)
{
    json_t *o = fh_stats("metrics_db");
    long long v = json_integer_value(json_object_get(o, key));
    json_decref(o);
    return v;
}

static int stat_state(const char *want)
{
    json_t *o = fh_stats("metrics_db");
    int same = o && !strcmp(json_string_value(json_object_get(o, "state")) ?: "", want);
    json_decref(o);
    return same;
}

static int wait_written(long long n)
{
    for (int i = 0; i < 400; i++) {
        if (stat_int("rows_written") >= n) return 1;
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return 0;
}

static void write_bytes(const char *path, const char *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(data, 1, n, f);
        fclose(f);
    }
}

static int count_prefix(const char *prefix)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (!strncmp(e->d_name, prefix, strlen(prefix))) n++;
    if (d) closedir(d);
    return n;
}

/* The VFS chain (SQLITE_FCNTL_VFSNAME) of a file mdb_open opened; sqlite3_free it. */
static char *vfs_of_opened(const char *path)
{
    sqlite3 *db = NULL;
    struct mdb_open_info info;
    memset(&info, 0, sizeof info);
    char *name = NULL;
    if (mdb_open(path, 0, 100, 0, &db, &info) == MDB_OPENED)
        sqlite3_file_control(db, "main", SQLITE_FCNTL_VFSNAME, &name);
    sqlite3_close(db);
    return name;
}

int main(void)
{
    fh_set_log_level(HR_LOG_ERROR - 1); /* tests read the capture */
    snprintf(dir, sizeof dir, "/tmp/hr-mdb-unit-XXXXXX");
    if (!mkdtemp(dir)) return 1;

    /* --- rows and columns, batches, final flush ---------------------- */
    const char *db1 = file("sub/dir/metrics.db");
    void *s = make(db1, "batch_rows", "4", "flush_interval_ms", "50");
    ok(s != NULL, "init with a path whose directory does not exist yet");
    ok(stat_state("ok"), "state ok");
    for (int i = 0; i < 10; i++) {
        struct hr_event ev = event(i);
        headroom_plugin.on_event(s, &ev);
    }
    ok(wait_written(10), "10 rows written by the writer thread in batches");
    ok(stat_int("batches") >= 3, "at least 3 batches of at most 4 rows (%lld)", stat_int("batches"));
    json_t *st = fh_stats("metrics_db");
    ok(json_is_string(json_object_get(st, "last_commit_at")), "last_commit_at set");
    ok(json_is_object(json_object_get(st, "batch")), "batch latency block present");
    json_decref(st);
    struct hr_event late = event(11);
    late.request_id = "hr-last";
    headroom_plugin.on_event(s, &late);
    drop(s);
    is_int(q_int(db1, "SELECT count(*) FROM requests"), 11, "fini flushes the last row");
    is_int(q_int(db1, "PRAGMA user_version"), MDB_SCHEMA_VERSION, "user_version is the schema version");
    {
        sqlite3 *db = open_ro(db1);
        sqlite3_stmt *q;
        int good = db && sqlite3_prepare_v2(db,
                                            "SELECT request_id, timestamp, model, provider, wire_format, stack, path, "
                                            "status, credited, cached, streamed, failed, tokens_input_before, "
                                            "tokens_input_after, tokens_saved, tokens_output, cache_read_tokens, "
                                            "cache_write_tokens, reasoning_tokens, cost_usd, savings_usd, priced, "
                                            "transforms, latency_ms, overhead_ms, ttfb_ms FROM requests ORDER BY id",
                                            -1, &q, NULL) == SQLITE_OK;
        ok(good, "the contract's columns all exist");
        if (good && sqlite3_step(q) == SQLITE_ROW) {
            is_str((const char *)sqlite3_column_text(q, 0), "hr-1-1", "request_id");
            ok(sqlite3_column_double(q, 1) == 1700000000.25, "timestamp is Unix seconds as given");
            is_str((const char *)sqlite3_column_text(q, 2), "gpt-4o-mini", "model");
            is_str((const char *)sqlite3_column_text(q, 3), "openai", "provider");
            is_str((const char *)sqlite3_column_text(q, 4), "openai_chat", "wire_format");
            is_str((const char *)sqlite3_column_text(q, 5), "claude_code", "stack");
            is_str((const char *)sqlite3_column_text(q, 6), "/v1/chat/completions", "path");
            is_int(sqlite3_column_int(q, 7), 200, "status");
            is_int(sqlite3_column_int(q, 8), 1, "credited");
            is_int(sqlite3_column_int64(q, 12), 1000, "tokens_input_before = tokens_input");
            is_int(sqlite3_column_int64(q, 13), 100, "tokens_input_after = tokens_sent");
            is_int(sqlite3_column_int64(q, 14), 900, "tokens_saved");
            is_int(sqlite3_column_int64(q, 15), 7, "tokens_output");
            is_int(sqlite3_column_int64(q, 16) * 10 + sqlite3_column_int64(q, 17), 32, "cache read/write tokens");
            is_int(sqlite3_column_int64(q, 18), 1, "reasoning_tokens");
            ok(sqlite3_column_double(q, 19) == 0.000123 && sqlite3_column_double(q, 20) == 0.000135,
               "cost_usd and savings_usd exactly as the host computed them");
            is_str((const char *)sqlite3_column_text(q, 22), "[\"log_compressor\"]",
                   "transforms lists the stages that removed tokens and were not undone");
            ok(sqlite3_column_double(q, 23) == 12.346, "latency_ms rounded to 3 decimals");
            ok(sqlite3_column_type(q, 25) == SQLITE_FLOAT, "ttfb_ms set when a byte came");
            sqlite3_step(q);
            ok(sqlite3_column_type(q, 25) == SQLITE_NULL, "ttfb_ms NULL when no upstream byte came");
        }
        sqlite3_finalize(q);
        sqlite3_close(db);
    }
    is_int(q_int(db1, "SELECT count(*) FROM sqlite_master WHERE type='index' AND name='requests_by_time'"), 1,
           "index on timestamp");

    /* --- restart appends ---------------------------------------------- */
    s = make(db1, NULL, NULL, NULL, NULL);
    struct hr_event ev = event(20);
    headroom_plugin.on_event(s, &ev);
    drop(s);
    is_int(q_int(db1, "SELECT count(*) FROM requests"), 12, "a second instance on the file appends");

    /* --- overflow ------------------------------------------------------ */
    const char *db2 = file("overflow.db");
    s = make(db2, "queue_size", "16", "flush_interval_ms", "60000");
    for (int i = 0; i < 20; i++) {
        struct hr_event e = event(i);
        headroom_plugin.on_event(s, &e);
    }
    is_int(stat_int("rows_dropped"), 4, "a full queue drops new rows and counts them");
    ok(fh_log_has("WARNING:") && fh_log_has("16 rows wait for the writer (queue_size)") &&
           fh_log_has("raise queue_size"),
       "the first drop is logged, naming queue_size and what to do");
    {
        const char *log = fh_log(), *first = strstr(log, "rows wait for the writer");
        ok(first && !strstr(first + 1, "rows wait for the writer"), "once: later drops within a minute are only counted");
    }
    is_int(stat_int("queued"), 16, "16 rows queued");
    drop(s);
    is_int(q_int(db2, "SELECT count(*) FROM requests"), 16, "fini writes the queued rows");

    /* --- retention at start ------------------------------------------ */
    const char *db3 = file("retention.db");
    s = make(db3, NULL, NULL, NULL, NULL);
    drop(s);
    /* fake host: now() = 1700000000 */
    exec_on(db3, "INSERT INTO requests SELECT NULL, 'old', 1700000000 - 40*86400, 'm','openai','','','/',200,1,0,0,0,"
                 "1,1,0,0,0,0,0,0,0,0,'[]',1,1,NULL;"
                 "INSERT INTO requests SELECT NULL, 'recent', 1700000000 - 20*86400, 'm','openai','','','/',200,1,0,0,"
                 "0,1,1,0,0,0,0,0,0,0,0,'[]',1,1,NULL;");
    s = make(db3, "retention_days", "30", NULL, NULL);
    for (int i = 0; i < 200 && stat_int("rows_pruned") < 1; i++) usleep(10000);
    is_int(stat_int("rows_pruned"), 1, "the 40-day-old row is pruned at start");
    drop(s);
    is_int(q_int(db3, "SELECT count(*) FROM requests WHERE request_id='recent'"), 1, "the 20-day-old row stays");
    is_int(q_int(db3, "SELECT count(*) FROM requests WHERE request_id='old'"), 0, "the old row is gone");

    /* --- a newer schema is refused, the file untouched ---------------- */
    const char *db4 = file("newer.db");
    exec_on(db4, "PRAGMA user_version = 7; CREATE TABLE other(x);");
    fh_log_clear();
    s = make(db4, NULL, NULL, NULL, NULL);
    ok(s != NULL, "init succeeds: the daemon keeps serving without the sink");
    ok(stat_state("refused"), "state refused");
    ok(strstr(fh_log(), db4) && strstr(fh_log(), "schema version 7") && strstr(fh_log(), "ERROR"),
       "an ERROR names the file and the version");
    ev = event(1);
    headroom_plugin.on_event(s, &ev);
    drop(s);
    is_int(q_int(db4, "PRAGMA user_version"), 7, "the newer file keeps its version");
    is_int(q_int(db4, "SELECT count(*) FROM sqlite_master WHERE name='requests'"), 0, "and gets no table");

    /* --- a foreign `requests` table --------------------------------- */
    const char *db5 = file("foreign.db");
    exec_on(db5, "CREATE TABLE requests(id INTEGER PRIMARY KEY, url TEXT);");
    fh_log_clear();
    s = make(db5, NULL, NULL, NULL, NULL);
    ok(stat_state("refused") && strstr(fh_log(), "not a headroomd metrics database"),
       "a version-0 file with someone else's requests table is refused");
    drop(s);

    /* --- version 0 with no table (sqlite3 created an empty file) ------ */
    const char *db6 = file("empty.db");
    exec_on(db6, "CREATE TABLE unrelated(x); DROP TABLE unrelated;");
    s = make(db6, NULL, NULL, NULL, NULL);
    ok(stat_state("ok"), "an empty version-0 database is migrated");
    drop(s);
    is_int(q_int(db6, "PRAGMA user_version"), 1, "to version 1");

    /* --- damaged files are moved aside -------------------------------- */
    static const struct {
        const char *name, *bytes;
        size_t len;
    } damaged[] = {
        {"garbage.db", "this is not a database at all, just text\n", 41},
        {"header.db", "SQLite format 3\0\x10\0\x01\x01\0\x40\x20\x20garbage after a valid magic", 48},
        {"zeros.db", "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 32},
    };
    for (size_t i = 0; i < sizeof damaged / sizeof damaged[0]; i++) {
        const char *p = file(damaged[i].name);
        write_bytes(p, damaged[i].bytes, damaged[i].len);
        fh_log_clear();
        s = make(p, NULL, NULL, NULL, NULL);
        ev = event(1);
        headroom_plugin.on_event(s, &ev);
        int good = stat_state("ok");
        drop(s);
        char prefix[64];
        snprintf(prefix, sizeof prefix, "%s.corrupt-", damaged[i].name);
        ok(good && count_prefix(prefix) == 1 && strstr(fh_log(), "WARN") && strstr(fh_log(), "moved aside"),
           "%s: moved aside with a WARN, a new file started", damaged[i].name);
        is_int(q_int(p, "SELECT count(*) FROM requests"), 1, "%s: the new file has the row", damaged[i].name);
    }

    /* --- an unusable path -------------------------------------------- */
    const char *blocker = file("a-file");
    write_bytes(blocker, "x", 1);
    char bad[600];
    snprintf(bad, sizeof bad, "%s/metrics.db", blocker);
    fh_log_clear();
    s = make(bad, "flush_interval_ms", "20", NULL, NULL);
    ok(s != NULL && stat_state("unavailable"), "a path that cannot be created: init succeeds, state unavailable");
    ok(strstr(fh_log(), "WARN") && strstr(fh_log(), bad), "a WARN names the path");
    ev = event(1);
    headroom_plugin.on_event(s, &ev);
    for (int i = 0; i < 200 && stat_int("write_errors") < 1; i++) usleep(10000);
    ok(stat_int("write_errors") >= 1, "the writer retries and counts the failure");
    /* Fixing the path needs no restart: the queued row goes in. */
    unlink(blocker);
    mkdir(blocker, 0700);
    ok(wait_written(1) && stat_state("ok"), "once the directory can be made, the queued row is written");
    /* The writer counts the row before it logs: give the line a moment. */
    for (int i = 0; i < 200 && !fh_log_has("writable again"); i++) usleep(10000);
    ok(fh_log_has("writable again"), "an INFO says the file is writable again");
    drop(s);
    is_int(q_int(bad, "SELECT count(*) FROM requests"), 1, "the row is in the file");

    /* Still unusable at shutdown: the loss is reported. */
    const char *blocker2 = file("b-file");
    write_bytes(blocker2, "x", 1);
    snprintf(bad, sizeof bad, "%s/metrics.db", blocker2);
    fh_log_clear();
    s = make(bad, "flush_interval_ms", "60000", NULL, NULL);
    ev = event(1);
    headroom_plugin.on_event(s, &ev);
    drop(s);
    ok(strstr(fh_log(), "1 rows could not be written") != NULL, "fini says which rows are lost");

    /* --- hostile strings ---------------------------------------------- */
    const char *db7 = file("strings.db");
    s = make(db7, NULL, NULL, NULL, NULL);
    char longname[2000];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    longname[255] = '\xc3'; /* a 2-byte sequence cut at the limit */
    longname[256] = '\xa9';
    ev = event(1);
    ev.model = "bad \xff\xfe utf8 \xc3";
    ev.stack = longname;
    ev.request_id = NULL;
    ev.wire_format_name = NULL;
    struct hr_stage_result odd = {sizeof odd, "quote\"back\\slash\n", 1, 5, "", 0};
    ev.stages = &odd;
    ev.n_stages = 1;
    headroom_plugin.on_event(s, &ev);
    drop(s);
    {
        sqlite3 *db = open_ro(db7);
        sqlite3_stmt *q;
        if (db && sqlite3_prepare_v2(db, "SELECT model, length(CAST(stack AS BLOB)), request_id, transforms FROM requests",
                                     -1, &q, NULL) == SQLITE_OK &&
            sqlite3_step(q) == SQLITE_ROW) {
            is_str((const char *)sqlite3_column_text(q, 0), "bad \xef\xbf\xbd\xef\xbf\xbd utf8 \xef\xbf\xbd",
                   "invalid UTF-8 bytes become U+FFFD");
            is_int(sqlite3_column_int(q, 1), 255, "a long name is cut at 256 bytes on a character boundary");
            is_str((const char *)sqlite3_column_text(q, 2), "", "a NULL string is stored as ''");
            json_t *a = json_loads((const char *)sqlite3_column_text(q, 3), 0, NULL);
            is_str(json_string_value(json_array_get(a, 0)), "quote\"back\\slash\n",
                   "stage names round-trip through the JSON array");
            json_decref(a);
            sqlite3_finalize(q);
        } else {
            ok(0, "hostile strings row readable");
        }
        sqlite3_close(db);
    }

    /* --- the transforms column: the bytes jansson's compact dump wrote -- */
    {
        static char names[40][8];
        struct hr_stage_result many_stages[40];
        json_t *want = json_array();
        size_t n = 0;
        for (int c = 1; c < 0x20; c++) { /* every control byte, escaped */
            snprintf(names[n], sizeof names[n], "a%cb", c);
            many_stages[n] = (struct hr_stage_result){sizeof many_stages[n], names[n], 1, 5, "", 0};
            json_array_append_new(want, json_string(names[n++]));
        }
        static const char *const odd_names[] = {"\"q\\/", "del\x7f", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", ""};
        for (size_t i = 0; i < 4; i++) {
            many_stages[n] = (struct hr_stage_result){sizeof many_stages[n], odd_names[i], 1, 5, "", 0};
            json_array_append_new(want, json_string(odd_names[i]));
            n++;
        }
        many_stages[n++] = (struct hr_stage_result){sizeof many_stages[0], "saved_nothing", 1, 0, "", 0};
        ev = event(0);
        ev.stages = many_stages;
        ev.n_stages = n;
        struct mdb_row *r = mdb_row_from_event(&ev, NULL);
        char *dump = json_dumps(want, JSON_COMPACT);
        ok(r && dump && !strcmp(r->transforms, dump), "transforms is byte for byte what json_dumps wrote (%s)",
           r ? r->transforms : "no row");
        free(dump);
        json_decref(want);
        free(r);
        ev.n_stages = 0;
        r = mdb_row_from_event(&ev, NULL);
        is_str(r ? r->transforms : NULL, "[]", "no stage: an empty array");
        free(r);
    }

    /* --- rows from a pool: the writer's rows come back and are reused --- */
    {
        struct hr_return_pool pool = {0};
        ev = event(1);
        ev.request_id = "hr-pool-first";
        struct mdb_row *a = mdb_row_from_event(&ev, &pool);
        ev.request_id = "hr-pool-second";
        struct mdb_row *b = mdb_row_from_event(&ev, &pool);
        ok(a && b && a != b, "two rows, two blocks");
        if (a && b) {
            a->next = b;
            mdb_rows_release(a); /* as the writer does after a commit */
            ev.request_id = "hr-pool-third";
            struct mdb_row *c = mdb_row_from_event(&ev, &pool);
            ok(c == a || c == b, "the next row reuses a block given back");
            is_str(c ? c->request_id : NULL, "hr-pool-third", "with its own request_id");
            is_str(c ? c->model : NULL, ev.model, "and its own model");
            ok(c && !c->next, "and no link left from the list it came back in");
            /* Much longer strings do not fit a short row's block. */
            static char long_id[MDB_TEXT_MAX + 1];
            memset(long_id, 'x', MDB_TEXT_MAX);
            ev.request_id = long_id;
            ev.model = long_id;
            struct mdb_row *d = mdb_row_from_event(&ev, &pool);
            ok(d && d != a && d != b && d->block.cap >= sizeof *d + 2 * MDB_TEXT_MAX, "a longer row gets a new block");
            is_int(d ? (long long)strlen(d->request_id) : -1, MDB_TEXT_MAX, "with its whole request_id");
            if (c) c->next = d;
            mdb_rows_release(c);
        }
        /* Rows from malloc and from a pool, mixed in one list, each go back
         * where they came from. */
        ev.request_id = "hr-malloc";
        struct mdb_row *e = mdb_row_from_event(&ev, NULL), *f = mdb_row_from_event(&ev, &pool);
        ok(e && !e->home && f && f->home == &pool, "a row knows where it goes back");
        if (e && f) {
            e->next = f;
            mdb_rows_release(e);
        }
        hr_return_drain(&pool); /* ASan: nothing leaked, nothing freed twice */
        ok(!pool.pending && !pool.returned, "the pool is empty after a drain");
    }

    /* --- a large batch keeps every row, in order, each value its own ---- */
    const char *db8 = file("many.db");
    enum { MANY = 141 };
    char many_rows[16];
    snprintf(many_rows, sizeof many_rows, "%d", MANY);
    s = make(db8, "batch_rows", many_rows, "flush_interval_ms", "60000");
    static char ids[MANY][24];
    for (int i = 0; i < MANY; i++) {
        ev = event(i);
        snprintf(ids[i], sizeof ids[i], "hr-many-%d", i);
        ev.request_id = ids[i];
        ev.tokens_output = (uint64_t)i;
        headroom_plugin.on_event(s, &ev);
    }
    ok(wait_written(MANY), "%d rows written", MANY);
    is_int(stat_int("batches"), 1, "in one batch (one INSERT through %s)", MDB_BATCH_VTAB);
    drop(s);
    {
        sqlite3 *db = open_ro(db8);
        sqlite3_stmt *q;
        int good = 0, rows = 0;
        ev = event(0);
        if (db && sqlite3_prepare_v2(db,
                                     "SELECT request_id, tokens_output, ttfb_ms, timestamp, model, path, transforms, "
                                     "length(request_id) FROM requests ORDER BY id",
                                     -1, &q, NULL) == SQLITE_OK) {
            good = 1;
            while (sqlite3_step(q) == SQLITE_ROW) {
                char want[24];
                snprintf(want, sizeof want, "hr-many-%d", rows);
                good &= !strcmp((const char *)sqlite3_column_text(q, 0), want) && sqlite3_column_int(q, 1) == rows &&
                        (sqlite3_column_type(q, 2) == SQLITE_NULL) == (rows % 2) &&
                        sqlite3_column_double(q, 3) == 1700000000.25 + rows &&
                        !strcmp((const char *)sqlite3_column_text(q, 4), ev.model) &&
                        !strcmp((const char *)sqlite3_column_text(q, 5), ev.path) &&
                        sqlite3_column_text(q, 6)[0] == '[' && sqlite3_column_int(q, 7) == (int)strlen(want);
                rows++;
            }
            sqlite3_finalize(q);
        }
        sqlite3_close(db);
        is_int(rows, MANY, "%d rows read back", MANY);
        ok(good, "each row in order with its own values, every text whole");
    }

    /* --- mdb_insert on its own: the batch reader, a batch that fails ---- */
    {
        const char *db9 = file("direct.db");
        sqlite3 *db = NULL;
        struct mdb_open_info info;
        ok(mdb_open(db9, 1.7e9, 1000, 0, &db, &info) == MDB_OPENED, "mdb_open a new file");
        struct mdb_stmts stmts = {NULL};
        char why[256] = "";
        ev = event(1); /* ttfb_ms unknown: NULL */
        struct mdb_row *a = mdb_row_from_event(&ev, NULL), *b = mdb_row_from_event(&ev, NULL);
        if (db && a && b) {
            a->next = b;
            is_int(mdb_insert(db, &stmts, a, why, sizeof why), SQLITE_OK, "two rows go in with one statement");
            const char *model = b->model;
            b->model = NULL; /* NOT NULL in the schema */
            int rc = mdb_insert(db, &stmts, a, why, sizeof why);
            is_int(rc & 0xff, SQLITE_CONSTRAINT, "a row with a NULL model fails the batch");
            ok(strstr(why, "requests.model") != NULL, "the error names the column: %s", why);
            b->model = model;
            is_int(mdb_insert(db, &stmts, b, why, sizeof why), SQLITE_OK, "the statement works again after a failure");
        }
        mdb_stmts_free(&stmts);
        sqlite3_close(db);
        mdb_rows_release(a);
        is_int(q_int(db9, "SELECT count(*) FROM requests"), 3, "the failed batch left nothing (its good row too)");
        is_int(q_int(db9, "SELECT count(*) FROM requests WHERE ttfb_ms IS NULL AND model = 'gpt-4o-mini'"), 3,
               "NULL ttfb_ms and the texts read back");
        is_int(q_int(db9, "SELECT count(*) FROM sqlite_master WHERE sql LIKE '%" MDB_BATCH_VTAB "%'"), 0,
               "the batch reader leaves nothing in the file");
        ok(q_int(db9, "SELECT count(*) FROM " MDB_BATCH_VTAB) == -1,
           "another connection does not know " MDB_BATCH_VTAB);
    }

    /* --- when the writer yields: after 50 us of running, not after a pause */
    {
        struct mdb_run run = {0, 0};
        int64_t t = 1000000;
        ok(!mdb_yield_due(&run, t, MDB_YIELD_AFTER_US), "the first call after a pause starts a run, no yield");
        ok(!mdb_yield_due(&run, t + 30, MDB_YIELD_AFTER_US), "30 us into the run: no yield");
        ok(!mdb_yield_due(&run, t + MDB_YIELD_AFTER_US - 1, MDB_YIELD_AFTER_US), "just short of MDB_YIELD_AFTER_US: no yield");
        ok(mdb_yield_due(&run, t + MDB_YIELD_AFTER_US, MDB_YIELD_AFTER_US), "MDB_YIELD_AFTER_US into the run: yield");
        t += MDB_YIELD_AFTER_US;
        ok(!mdb_yield_due(&run, t + 20, MDB_YIELD_AFTER_US), "the yield starts a new run: 20 us later, no yield");
        ok(mdb_yield_due(&run, t + 20 + MDB_YIELD_AFTER_US, MDB_YIELD_AFTER_US), "and it yields again after another MDB_YIELD_AFTER_US");
        t += 20 + MDB_YIELD_AFTER_US;
        ok(!mdb_yield_due(&run, t + MDB_PAUSE_US + 1, MDB_YIELD_AFTER_US), "a call after a longer pause than MDB_PAUSE_US: a new run, no yield");
        t += MDB_PAUSE_US + 1;
        ok(mdb_yield_due(&run, t + MDB_PAUSE_US, MDB_YIELD_AFTER_US), "a call just MDB_PAUSE_US later continues the run, and yields");
        int yields = 0;
        run = (struct mdb_run){0, 0};
        for (int64_t u = 5000000; u < 5000000 + 1000; u += 10) yields += mdb_yield_due(&run, u, MDB_YIELD_AFTER_US);
        ok(yields >= 1000 / MDB_YIELD_AFTER_US - 1 && yields <= 1000 / MDB_YIELD_AFTER_US,
           "a call every 10 us for 1 ms: one yield per MDB_YIELD_AFTER_US (%d)", yields);
        yields = 0;
        run = (struct mdb_run){0, 0};
        for (int64_t u = 5000000; u < 5000000 + 1000; u += 10) yields += mdb_yield_due(&run, u, MDB_YIELD_BEHIND_US);
        ok(yields >= 1000 / MDB_YIELD_BEHIND_US - 1 && yields <= 1000 / MDB_YIELD_BEHIND_US,
           "behind: one yield per MDB_YIELD_BEHIND_US (%d)", yields);
    }

    /* --- how often it yields follows its backlog ----------------------- */
    is_int(mdb_pace_for(0, 1024, 10000), MDB_KEEPING_UP, "nothing waiting: keeping up");
    is_int(mdb_pace_for(1023, 1024, 10000), MDB_KEEPING_UP, "less than a batch waiting: keeping up");
    is_int(mdb_pace_for(1024, 1024, 10000), MDB_BEHIND, "a whole batch waiting: behind");
    is_int(mdb_pace_for(4999, 1024, 10000), MDB_BEHIND, "just under half the queue: behind");
    is_int(mdb_pace_for(5000, 1024, 10000), MDB_FAR_BEHIND, "half the queue waiting: far behind");
    is_int(mdb_pace_for(60, 100, 100), MDB_FAR_BEHIND, "a queue smaller than two batches: half of it is far behind");
    ok(mdb_yield_after(MDB_KEEPING_UP) == MDB_YIELD_AFTER_US && mdb_yield_after(MDB_BEHIND) == MDB_YIELD_BEHIND_US &&
           MDB_YIELD_BEHIND_US > MDB_YIELD_AFTER_US && mdb_yield_after(MDB_FAR_BEHIND) < 0,
       "it steps aside every 50 us keeping up, less often behind, never far behind");

    /* --- the writer's file goes through the yielding VFS -------------- */
    ok(sqlite3_vfs_find(MDB_YIELD_VFS) == NULL, "no yielding VFS registered while no sink is loaded");
    const char *db9 = file("yield.db");
    s = make(db9, "batch_rows", "100", "flush_interval_ms", "20");
    ok(s && sqlite3_vfs_find(MDB_YIELD_VFS) != NULL, "a sink loaded: the yielding VFS is registered");
    for (int i = 0; i < 3000; i++) {
        struct hr_event ev = event(i);
        headroom_plugin.on_event(s, &ev);
    }
    ok(wait_written(3000), "3000 rows written through it");
    {
        /* A checkpoint through the same VFS copies the WAL back into the
         * database (thousands of page reads and writes, with yields). */
        sqlite3 *db = NULL;
        int rc = sqlite3_open_v2(db9, &db, SQLITE_OPEN_READWRITE, MDB_YIELD_VFS);
        if (rc == SQLITE_OK) rc = sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
        is_int(rc, SQLITE_OK, "a full checkpoint through the yielding VFS succeeds");
        sqlite3_close(db);
        struct stat st;
        char wal[600];
        snprintf(wal, sizeof wal, "%s-wal", db9);
        ok(!stat(wal, &st) && st.st_size == 0, "the WAL was copied back and truncated");
    }
    is_int(q_int(db9, "SELECT count(*) FROM requests"), 3000, "SQLite's default VFS reads back all 3000 rows");
    {
        sqlite3 *db = open_ro(db9);
        sqlite3_stmt *q;
        const char *res = NULL;
        if (db && sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &q, NULL) == SQLITE_OK) {
            if (sqlite3_step(q) == SQLITE_ROW) res = (const char *)sqlite3_column_text(q, 0);
            is_str(res ?: "(none)", "ok", "integrity_check of the file written through it");
            sqlite3_finalize(q);
        }
        sqlite3_close(db);
    }
    {
        char *name = vfs_of_opened(file("vfsname.db"));
        is_str(name ?: "(none)", MDB_YIELD_VFS "/unix", "mdb_open uses it while it is registered");
        sqlite3_free(name);
    }
    {
        sqlite3 *db = NULL;
        int rc = sqlite3_open_v2(file("no/such/dir/x.db"), &db, SQLITE_OPEN_READWRITE, MDB_YIELD_VFS);
        is_int(rc, SQLITE_CANTOPEN, "a file it cannot open is SQLite's usual CANTOPEN");
        sqlite3_close(db);
    }
    void *s2 = make(file("yield2.db"), NULL, NULL, NULL, NULL);
    drop(s);
    ok(s2 && sqlite3_vfs_find(MDB_YIELD_VFS) != NULL, "still registered while a second sink is loaded");
    drop(s2);
    ok(sqlite3_vfs_find(MDB_YIELD_VFS) == NULL, "unregistered with the last sink (its code may be unloaded)");
    {
        char *name = vfs_of_opened(file("vfsname.db"));
        is_str(name ?: "(none)", "unix", "mdb_open then uses SQLite's default VFS");
        sqlite3_free(name);
    }

    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) tap_diag("could not remove %s", dir);
    return tap_exit();
}
