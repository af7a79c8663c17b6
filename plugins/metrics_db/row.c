/* row.c — a metrics_db row copied out of an hr_event: every string in one
 * allocation, cut to MDB_TEXT_MAX bytes and made valid UTF-8, and the
 * `transforms` column as a JSON array of stage names. */
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "mdb.h"
#include "numfmt.h"
#include "utf8.h"

/* Write `src` made valid UTF-8 (bad bytes -> U+FFFD) and cut to at most
 * MDB_TEXT_MAX bytes into dst (room for MDB_TEXT_MAX + 1). */
static size_t clean_text(char *dst, const char *src)
{
    size_t k = 0;
    if (!src) src = "";
    size_t n = strlen(src);
    for (size_t i = 0; i < n;) {
        size_t l = hr_utf8_seq((const unsigned char *)src + i, n - i);
        const char *piece = l ? src + i : "\xEF\xBF\xBD";
        size_t pl = l ? l : 3;
        if (k + pl > MDB_TEXT_MAX) break;
        memcpy(dst + k, piece, pl);
        k += pl;
        i += l ? l : 1;
    }
    dst[k] = '\0';
    return k;
}

static char *transforms_json(const struct hr_event *ev)
{
    json_t *a = json_array();
    char name[MDB_TEXT_MAX + 1];
    for (size_t i = 0; a && ev->stages && i < ev->n_stages; i++) {
        const struct hr_stage_result *st = &ev->stages[i];
        if (st->failed || st->tokens_saved <= 0) continue;
        clean_text(name, st->name);
        json_array_append_new(a, json_string(name));
    }
    char *s = a ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    return s;
}

static int64_t clamp64(uint64_t v) { return v > INT64_MAX ? INT64_MAX : (int64_t)v; }

struct mdb_row *mdb_row_from_event(const struct hr_event *ev)
{
    /* Fields of ABI 1.2: an older host's event is shorter. */
    int v12 = HR_HAS_FIELD(ev, struct hr_event, credited);
    const char *src[6] = {ev->request_id, ev->model, ev->provider_name, v12 ? ev->wire_format_name : "",
                          ev->stack, ev->path};
    char text[6][MDB_TEXT_MAX + 1];
    size_t len[6], total = 0;
    for (int i = 0; i < 6; i++) total += (len[i] = clean_text(text[i], src[i])) + 1;
    char *tr = transforms_json(ev);
    if (!tr) return NULL;
    size_t trl = strlen(tr) + 1;
    struct mdb_row *r = malloc(sizeof *r + total + trl);
    if (!r) {
        free(tr);
        return NULL;
    }
    memset(r, 0, sizeof *r);
    char *cursor = (char *)(r + 1);
    const char **dst[6] = {&r->request_id, &r->model, &r->provider, &r->wire_format, &r->stack, &r->path};
    for (int i = 0; i < 6; i++) {
        memcpy(cursor, text[i], len[i] + 1);
        *dst[i] = cursor;
        cursor += len[i] + 1;
    }
    memcpy(cursor, tr, trl);
    r->transforms = cursor;
    free(tr);

    r->timestamp = ev->timestamp;
    r->status = ev->status;
    r->credited = v12 ? ev->credited != 0 : ev->status >= 200 && ev->status < 300 && !ev->failed && !ev->cached;
    r->cached = ev->cached != 0;
    r->streamed = ev->streamed != 0;
    r->failed = ev->failed != 0;
    r->priced = ev->priced != 0;
    r->tokens_input_before = clamp64(ev->tokens_input);
    r->tokens_input_after = clamp64(ev->tokens_sent);
    r->tokens_saved = clamp64(ev->tokens_saved);
    r->tokens_output = clamp64(ev->tokens_output);
    r->cache_read_tokens = clamp64(ev->cache_read_tokens);
    r->cache_write_tokens = clamp64(ev->cache_write_tokens);
    r->reasoning_tokens = v12 ? clamp64(ev->reasoning_tokens) : 0;
    /* USD exactly as the host computed them: sums over rows then match
     * /stats, which adds the same doubles. */
    r->cost_usd = ev->cost_usd == ev->cost_usd ? ev->cost_usd : 0;
    r->savings_usd = ev->savings_usd == ev->savings_usd ? ev->savings_usd : 0;
    r->latency_ms = ev->latency_ms >= 0 ? hr_numfmt_round(ev->latency_ms, HR_DECIMALS_MS) : 0;
    /* Nothing forwarded (a refusal, a cache hit): no time spent before it. */
    r->overhead_ms = ev->overhead_ms >= 0 ? hr_numfmt_round(ev->overhead_ms, HR_DECIMALS_MS) : 0;
    r->ttfb_ms = ev->ttfb_ms >= 0 ? hr_numfmt_round(ev->ttfb_ms, HR_DECIMALS_MS) : -1;
    return r;
}

void mdb_rows_free(struct mdb_row *list)
{
    while (list) {
        struct mdb_row *next = list->next;
        free(list);
        list = next;
    }
}
