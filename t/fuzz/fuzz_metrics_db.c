/* t/fuzz/fuzz_metrics_db.c — fuzz target: arbitrary bytes as the metrics
 * database file found at start (it must open, be moved aside, or be refused
 * with a reason; never crash) and as every string of an event (the row must
 * go in and read back as valid UTF-8 of bounded length). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "mdb.h"

static char dir[64];

static void remove_dir(void) { rmdir(dir); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/hr-fuzz-mdb-XXXXXX");
        if (!mkdtemp(dir)) abort();
        atexit(remove_dir);
    }
    char path[128], cmd[200];
    snprintf(path, sizeof path, "%s/metrics.db", dir);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size) fwrite(data, 1, size, f);
    fclose(f);

    char *text = malloc(size + 1);
    if (!text) abort();
    memcpy(text, data, size);
    text[size] = '\0';

    sqlite3 *db = NULL;
    struct mdb_open_info info;
    enum mdb_open_status st = mdb_open(path, 1.7e9, 100, 0, &db, &info);
    if (st != MDB_OPENED && !info.why[0]) abort(); /* a refusal always says why */
    if (st == MDB_OPENED) {
        struct hr_stage_result stage = {sizeof stage, text, 1, 1, "", 0};
        struct hr_event ev = {.struct_size = sizeof ev, .request_id = text, .model = text, .provider_name = text,
                              .stack = text, .path = text, .wire_format_name = text, .n_stages = 1,
                              .stages = &stage, .tokens_input = UINT64_MAX, .latency_ms = -5, .ttfb_ms = -1,
                              .credited = 1};
        struct mdb_row *row = mdb_row_from_event(&ev, NULL);
        if (!row) abort();
        char why[256];
        int rc = mdb_insert(db, NULL, row, why, sizeof why);
        if (rc != SQLITE_OK) {
            /* Damage past the schema: the sink reopens with a full check,
             * which moves the file aside; then the row must go in. */
            /* Any other refusal (I/O error, read-only, full) leaves the row
             * queued for the sink's next retry: not a crash. */
            if (!mdb_is_damage(rc)) {
                sqlite3_close(db);
                mdb_rows_release(row);
                goto done;
            }
            sqlite3_close(db);
            if (mdb_open(path, 1.7e9, 100, 1, &db, &info) != MDB_OPENED || !info.moved_to[0]) abort();
            if (mdb_insert(db, NULL, row, why, sizeof why) != SQLITE_OK) abort();
        }
        sqlite3_stmt *q;
        if (sqlite3_prepare_v2(db, "SELECT model, transforms FROM requests ORDER BY id DESC LIMIT 1", -1, &q, NULL))
            abort();
        if (sqlite3_step(q) != SQLITE_ROW) abort();
        const char *model = (const char *)sqlite3_column_text(q, 0);
        if (!model || strlen(model) > MDB_TEXT_MAX || strcmp(model, row->model)) abort();
        json_t *tr = json_loads((const char *)sqlite3_column_text(q, 1), 0, NULL);
        if (!json_is_array(tr) || json_array_size(tr) != 1) abort();
        json_decref(tr);
        sqlite3_finalize(q);
        mdb_rows_release(row);
        int64_t deleted;
        if (mdb_prune(db, 2e9, &deleted, why, sizeof why) != SQLITE_OK) abort();
        sqlite3_close(db);
    }
done:
    free(text);
    snprintf(cmd, sizeof cmd, "rm -f '%s'/metrics.db*", dir);
    if (system(cmd)) abort();
    return 0;
}
