/* bench_insert.c — what one request's row costs the metrics_db writer, on
 * its own: headroomd's insert path (mdb_open, mdb_insert in batches of
 * batch_rows, the yielding VFS) into a fresh file, and the same with the
 * `timestamp` index dropped, for CPU per row split into user space and
 * kernel. Under callgrind it also shows how much of the row is SQLite's own
 * work (the inclusive cost of sqlite3_step and the binds against
 * mdb_insert's):
 *
 *   make bench-programs && bench/metrics_db/bench_insert DIR [ROWS [BATCH]]
 *   valgrind --tool=callgrind bench/metrics_db/bench_insert DIR 20480
 *
 * DIR is emptied of bench.db* first. ROWS default 102400, BATCH 1024 (the
 * shipped batch_rows). Rows are shaped like a small chat request's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include "mdb.h"

static double cpu_s(int user)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    const struct timeval *t = user ? &ru.ru_utime : &ru.ru_stime;
    return (double)t->tv_sec + (double)t->tv_usec / 1e6;
}

static double wall_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* `n` rows linked in order, with ids from `first` on (ids[] holds their text). */
static struct mdb_row *make_rows(struct mdb_row *rows, char (*ids)[24], size_t n, size_t first)
{
    for (size_t i = 0; i < n; i++) {
        snprintf(ids[i], sizeof ids[i], "hr-0-%zx", first + i);
        rows[i] = (struct mdb_row){
            .next = i + 1 < n ? &rows[i + 1] : NULL, .timestamp = 1796529262.0 + (double)(first + i) * 1e-4,
            .status = 200, .priced = 1, .tokens_input_before = 27, .tokens_input_after = 27, .tokens_output = 9,
            .cost_usd = 0.0000095, .latency_ms = 0.09, .overhead_ms = 0.02, .ttfb_ms = -1, .request_id = ids[i],
            .model = "gpt-4o-mini", .provider = "openai", .wire_format = "openai_chat", .stack = "",
            .path = "/v1/chat/completions", .transforms = "[]"};
        const char *texts[7] = {rows[i].request_id, rows[i].model, rows[i].provider, rows[i].wire_format,
                                rows[i].stack, rows[i].path, rows[i].transforms};
        for (int t = 0; t < 7; t++) rows[i].text_len[t] = (uint32_t)strlen(texts[t]);
    }
    return rows;
}

static int run(const char *dir, size_t total, size_t batch, int drop_index, const char *label)
{
    char path[4096];
    static const char *const sides[] = {"", "-wal", "-shm"};
    for (size_t k = 0; k < 3; k++) {
        snprintf(path, sizeof path, "%s/bench.db%s", dir, sides[k]);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/bench.db", dir);
    sqlite3 *db = NULL;
    struct mdb_open_info info;
    memset(&info, 0, sizeof info);
    if (mdb_open(path, 0, 5000, 0, &db, &info) != MDB_OPENED) {
        fprintf(stderr, "bench_insert: cannot open %s: %s\n", path, info.why);
        return 1;
    }
    if (drop_index && sqlite3_exec(db, "DROP INDEX requests_by_time", NULL, NULL, NULL) != SQLITE_OK) {
        fprintf(stderr, "bench_insert: cannot drop the index: %s\n", sqlite3_errmsg(db));
        return 1;
    }
    struct mdb_row *rows = calloc(batch, sizeof *rows);
    char (*ids)[24] = calloc(batch, sizeof *ids);
    if (!rows || !ids) return 1;
    struct mdb_stmts stmts = {NULL};
    char why[512];
    double u0 = cpu_s(1), k0 = cpu_s(0), w0 = wall_s();
    for (size_t done = 0; done < total; done += batch) {
        if (mdb_insert(db, &stmts, make_rows(rows, ids, batch, done), why, sizeof why) != SQLITE_OK) {
            fprintf(stderr, "bench_insert: insert failed: %s\n", why);
            return 1;
        }
    }
    double u = cpu_s(1) - u0, k = cpu_s(0) - k0, w = wall_s() - w0;
    printf("%-22s %zu rows in batches of %zu: %.2f us/row CPU (user %.2f, kernel %.2f), %.2f us/row wall\n", label,
           total, batch, (u + k) * 1e6 / (double)total, u * 1e6 / (double)total, k * 1e6 / (double)total,
           w * 1e6 / (double)total);
    mdb_stmts_free(&stmts);
    sqlite3_close(db);
    free(rows);
    free(ids);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR [ROWS [BATCH]]\n", argv[0]);
        return 2;
    }
    size_t total = argc > 2 ? strtoul(argv[2], NULL, 10) : 102400;
    size_t batch = argc > 3 ? strtoul(argv[3], NULL, 10) : 1024;
    if (!total || !batch) {
        fprintf(stderr, "bench_insert: ROWS and BATCH must be positive\n");
        return 2;
    }
    total = (total + batch - 1) / batch * batch;
    mdb_yield_vfs_acquire(); /* as the writer does: mdb_open then uses it */
    int rc = run(argv[1], total, batch, 0, "as shipped") || run(argv[1], total, batch, 1, "without the time index");
    mdb_yield_vfs_release();
    return rc;
}
