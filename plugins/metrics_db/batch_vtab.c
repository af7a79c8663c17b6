/* batch_vtab.c — `hr_mdb_batch(?1)`, a table-valued function over a list of
 * rows (struct mdb_row) handed to it as a pointer (sqlite3_bind_pointer), so
 * a whole batch goes in with one
 *   INSERT INTO requests (...) SELECT ... FROM hr_mdb_batch(?1)
 *
 * Why: a multi-row INSERT ... VALUES binds 26 parameters a row (each bind
 * checks and releases the old value: 170-360 instructions) and copies each
 * value twice more before the record is built. Here SQLite asks for each
 * column once and we answer with a static pointer or a number, and the
 * statement is prepared once for any batch size. 10.3 k -> 9.1 k
 * instructions a row under callgrind, and the writer's user time in the
 * running proxy 1.6 -> 1.3 us a row (bench/README.md, session 22).
 *
 * Only this connection's writer uses it: the table is eponymous (no CREATE
 * VIRTUAL TABLE, nothing stored in the file) and direct-only (not usable
 * from triggers or views another program might add to the file). */
#include <string.h>

#include "mdb.h"

/* Column order: the SELECT in store.c names them; `rows` is the hidden
 * argument column. */
enum {
    C_REQUEST_ID, C_TIMESTAMP, C_MODEL, C_PROVIDER, C_WIRE_FORMAT, C_STACK, C_PATH,
    C_STATUS, C_CREDITED, C_CACHED, C_STREAMED, C_FAILED,
    C_TOKENS_INPUT_BEFORE, C_TOKENS_INPUT_AFTER, C_TOKENS_SAVED, C_TOKENS_OUTPUT,
    C_CACHE_READ_TOKENS, C_CACHE_WRITE_TOKENS, C_REASONING_TOKENS,
    C_COST_USD, C_SAVINGS_USD, C_PRICED, C_TRANSFORMS, C_LATENCY_MS, C_OVERHEAD_MS, C_TTFB_MS,
    C_ROWS,
};

/* Rows between two calls to mdb_yield_point (which reads the clock): a
 * row is ~1 us, so the writer still yields within a few us of its due. */
#define YIELD_EVERY 8

struct cursor {
    sqlite3_vtab_cursor base; /* first: SQLite hands us this */
    const struct mdb_row *row;
    sqlite3_int64 n;
};

/* SQLite's allocator, zeroed: SQLite frees the table and cursor objects. */
static void *zeroed(size_t n)
{
    void *p = sqlite3_malloc64(n);
    if (p) memset(p, 0, n);
    return p;
}

static int batch_connect(sqlite3 *db, void *aux, int argc, const char *const *argv, sqlite3_vtab **out, char **err)
{
    (void)aux, (void)argc, (void)argv, (void)err;
    int rc = sqlite3_declare_vtab(
        db, "CREATE TABLE x(request_id TEXT, timestamp REAL, model TEXT, provider TEXT, wire_format TEXT, "
            "stack TEXT, path TEXT, status INTEGER, credited INTEGER, cached INTEGER, streamed INTEGER, "
            "failed INTEGER, tokens_input_before INTEGER, tokens_input_after INTEGER, tokens_saved INTEGER, "
            "tokens_output INTEGER, cache_read_tokens INTEGER, cache_write_tokens INTEGER, "
            "reasoning_tokens INTEGER, cost_usd REAL, savings_usd REAL, priced INTEGER, transforms TEXT, "
            "latency_ms REAL, overhead_ms REAL, ttfb_ms REAL, rows HIDDEN)");
    if (rc != SQLITE_OK) return rc;
    sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY);
    sqlite3_vtab *t = zeroed(sizeof *t);
    *out = t;
    return t ? SQLITE_OK : SQLITE_NOMEM;
}

static int batch_disconnect(sqlite3_vtab *t)
{
    sqlite3_free(t);
    return SQLITE_OK;
}

/* The only plan: `rows = ?` hands the list to xFilter. Without that
 * argument the table is empty. */
static int batch_best_index(sqlite3_vtab *t, sqlite3_index_info *info)
{
    (void)t;
    info->idxNum = 0;
    info->estimatedCost = 1e9;
    for (int i = 0; i < info->nConstraint; i++) {
        const struct sqlite3_index_constraint *c = &info->aConstraint[i];
        if (c->iColumn != C_ROWS || c->op != SQLITE_INDEX_CONSTRAINT_EQ) continue;
        if (!c->usable) return SQLITE_CONSTRAINT;
        info->aConstraintUsage[i].argvIndex = 1;
        info->aConstraintUsage[i].omit = 1;
        info->idxNum = 1;
        info->estimatedCost = 1;
        break;
    }
    return SQLITE_OK;
}

static int batch_open_cursor(sqlite3_vtab *t, sqlite3_vtab_cursor **out)
{
    (void)t;
    struct cursor *c = zeroed(sizeof *c);
    *out = c ? &c->base : NULL;
    return c ? SQLITE_OK : SQLITE_NOMEM;
}

static int batch_close_cursor(sqlite3_vtab_cursor *cur)
{
    sqlite3_free(cur);
    return SQLITE_OK;
}

static int batch_filter(sqlite3_vtab_cursor *cur, int idx_num, const char *idx_str, int argc, sqlite3_value **argv)
{
    (void)idx_str;
    struct cursor *c = (struct cursor *)cur;
    c->row = idx_num == 1 && argc == 1 ? sqlite3_value_pointer(argv[0], MDB_ROWS_POINTER) : NULL;
    c->n = 0;
    return SQLITE_OK;
}

static int batch_next(sqlite3_vtab_cursor *cur)
{
    struct cursor *c = (struct cursor *)cur;
    c->row = c->row->next;
    /* The statement runs the whole batch: a woken request thread queued on
     * this CPU gets it here rather than after the last row (yield_vfs.c). */
    if (++c->n % YIELD_EVERY == 0) mdb_yield_point();
    return SQLITE_OK;
}

static int batch_eof(sqlite3_vtab_cursor *cur) { return ((struct cursor *)cur)->row == NULL; }

static void batch_text(sqlite3_context *ctx, const struct mdb_row *r, const char *s, int k)
{
    sqlite3_result_text(ctx, s, (int)r->text_len[k], SQLITE_STATIC);
}

static int batch_column(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int i)
{
    const struct mdb_row *r = ((struct cursor *)cur)->row;
    switch (i) {
    case C_REQUEST_ID: batch_text(ctx, r, r->request_id, 0); break;
    case C_TIMESTAMP: sqlite3_result_double(ctx, r->timestamp); break;
    case C_MODEL: batch_text(ctx, r, r->model, 1); break;
    case C_PROVIDER: batch_text(ctx, r, r->provider, 2); break;
    case C_WIRE_FORMAT: batch_text(ctx, r, r->wire_format, 3); break;
    case C_STACK: batch_text(ctx, r, r->stack, 4); break;
    case C_PATH: batch_text(ctx, r, r->path, 5); break;
    case C_STATUS: sqlite3_result_int64(ctx, r->status); break;
    case C_CREDITED: sqlite3_result_int64(ctx, r->credited); break;
    case C_CACHED: sqlite3_result_int64(ctx, r->cached); break;
    case C_STREAMED: sqlite3_result_int64(ctx, r->streamed); break;
    case C_FAILED: sqlite3_result_int64(ctx, r->failed); break;
    case C_TOKENS_INPUT_BEFORE: sqlite3_result_int64(ctx, r->tokens_input_before); break;
    case C_TOKENS_INPUT_AFTER: sqlite3_result_int64(ctx, r->tokens_input_after); break;
    case C_TOKENS_SAVED: sqlite3_result_int64(ctx, r->tokens_saved); break;
    case C_TOKENS_OUTPUT: sqlite3_result_int64(ctx, r->tokens_output); break;
    case C_CACHE_READ_TOKENS: sqlite3_result_int64(ctx, r->cache_read_tokens); break;
    case C_CACHE_WRITE_TOKENS: sqlite3_result_int64(ctx, r->cache_write_tokens); break;
    case C_REASONING_TOKENS: sqlite3_result_int64(ctx, r->reasoning_tokens); break;
    case C_COST_USD: sqlite3_result_double(ctx, r->cost_usd); break;
    case C_SAVINGS_USD: sqlite3_result_double(ctx, r->savings_usd); break;
    case C_PRICED: sqlite3_result_int64(ctx, r->priced); break;
    case C_TRANSFORMS: batch_text(ctx, r, r->transforms, 6); break;
    case C_LATENCY_MS: sqlite3_result_double(ctx, r->latency_ms); break;
    case C_OVERHEAD_MS: sqlite3_result_double(ctx, r->overhead_ms); break;
    case C_TTFB_MS:
        if (r->ttfb_ms >= 0) {
            sqlite3_result_double(ctx, r->ttfb_ms);
        } else {
            sqlite3_result_null(ctx);
        }
        break;
    default: sqlite3_result_null(ctx); break; /* the hidden argument */
    }
    return SQLITE_OK;
}

static int batch_rowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *out)
{
    *out = ((struct cursor *)cur)->n;
    return SQLITE_OK;
}

static const sqlite3_module batch_module = {
    .iVersion = 0,
    .xConnect = batch_connect, /* no xCreate: eponymous only */
    .xBestIndex = batch_best_index,
    .xDisconnect = batch_disconnect,
    .xOpen = batch_open_cursor,
    .xClose = batch_close_cursor,
    .xFilter = batch_filter,
    .xNext = batch_next,
    .xEof = batch_eof,
    .xColumn = batch_column,
    .xRowid = batch_rowid,
};

int mdb_batch_vtab_register(sqlite3 *db)
{
    return sqlite3_create_module_v2(db, MDB_BATCH_VTAB, &batch_module, NULL, NULL);
}
