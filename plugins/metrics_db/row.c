/* row.c — a metrics_db row copied out of an hr_event: every string in one
 * allocation, cut to MDB_TEXT_MAX bytes and made valid UTF-8, and the
 * `transforms` column as a JSON array of stage names. Runs once per
 * request on the thread that calls on_event (the request's own): one
 * allocation (usually a row the writer gave back), no JSON library. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "mdb.h"
#include "numfmt.h"
#include "utf8.h"

/* Write `src` made valid UTF-8 (bad bytes -> U+FFFD) and cut to at most
 * MDB_TEXT_MAX bytes into dst (room for MDB_TEXT_MAX + 1). */
static size_t clean_text(char *dst, const char *src)
{
    if (!src) src = "";
    const unsigned char *s = (const unsigned char *)src;
    /* The usual name is short ASCII: copied as it is. Its length first
     * (strnlen reads no further than the string), then eight bytes at a
     * time to the first byte with its high bit set. */
    size_t n = strnlen(src, MDB_TEXT_MAX + 1), lim = n < MDB_TEXT_MAX ? n : MDB_TEXT_MAX, k = 0;
    for (uint64_t w; k + 8 <= lim; k += 8) {
        memcpy(&w, s + k, 8);
        if (w & 0x8080808080808080ull) break;
    }
    while (k < lim && s[k] < 0x80) k++;
    memcpy(dst, src, k);
    if (k == lim) {
        dst[k] = '\0';
        return k;
    }
    if (n > MDB_TEXT_MAX) n += strlen(src + n);
    for (size_t i = k; i < n;) {
        size_t l = hr_utf8_seq(s + i, n - i);
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

/* `s` (valid UTF-8) as a JSON string, escaped as jansson's compact dump
 * escapes it (the column kept the same bytes when this stopped using
 * json_dumps): written to out when out is not NULL; returns the length. */
static size_t json_quoted(char *out, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t k = 0;
#define PUT(c) do { if (out) out[k] = (c); k++; } while (0)
    PUT('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned c = *p;
        const char *esc = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\b' ? "\\b" : c == '\f' ? "\\f"
                        : c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : NULL;
        if (esc) {
            PUT(esc[0]);
            PUT(esc[1]);
        } else if (c < 0x20) {
            PUT('\\');
            PUT('u');
            PUT('0');
            PUT('0');
            PUT(hex[c >> 4]);
            PUT(hex[c & 15]);
        } else {
            PUT((char)c);
        }
    }
    PUT('"');
#undef PUT
    return k;
}

/* The `transforms` column, a JSON array of the names of the stages that
 * removed tokens and were not undone: written to out when out is not NULL;
 * returns its length. */
static size_t transforms_json(char *out, const struct hr_event *ev)
{
    char name[MDB_TEXT_MAX + 1];
    size_t k = 0, n = 0;
    if (out) out[k] = '[';
    k++;
    for (size_t i = 0; ev->stages && i < ev->n_stages; i++) {
        const struct hr_stage_result *st = &ev->stages[i];
        if (st->failed || st->tokens_saved <= 0) continue;
        if (n++) {
            if (out) out[k] = ',';
            k++;
        }
        clean_text(name, st->name);
        k += json_quoted(out ? out + k : NULL, name);
    }
    if (out) out[k] = ']';
    return k + 1;
}

static int64_t clamp64(uint64_t v) { return v > INT64_MAX ? INT64_MAX : (int64_t)v; }

struct mdb_row *mdb_row_from_event(const struct hr_event *ev, struct hr_return_pool *pool)
{
    /* Fields of ABI 1.2: an older host's event is shorter. */
    int v12 = HR_HAS_FIELD(ev, struct hr_event, credited);
    const char *src[6] = {ev->request_id, ev->model, ev->provider_name, v12 ? ev->wire_format_name : "",
                          ev->stack, ev->path};
    char text[6][MDB_TEXT_MAX + 1];
    size_t len[6], total = 0;
    for (int i = 0; i < 6; i++) total += (len[i] = clean_text(text[i], src[i])) + 1;
    size_t trl = transforms_json(NULL, ev);
    /* One allocation per row, strings included. */
    size_t need = sizeof(struct mdb_row) + total + trl + 1;
    struct mdb_row *r = (struct mdb_row *)hr_return_alloc(pool, need);
    if (!r) return NULL;
    size_t cap = r->block.cap;
    memset(r, 0, sizeof *r);
    r->block.cap = cap;
    r->home = pool;
    char *cursor = (char *)(r + 1);
    const char **dst[6] = {&r->request_id, &r->model, &r->provider, &r->wire_format, &r->stack, &r->path};
    for (int i = 0; i < 6; i++) {
        memcpy(cursor, text[i], len[i] + 1);
        *dst[i] = cursor;
        r->text_len[i] = (uint32_t)len[i];
        cursor += len[i] + 1;
    }
    transforms_json(cursor, ev);
    cursor[trl] = '\0';
    r->transforms = cursor;
    r->text_len[6] = (uint32_t)trl;

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

void mdb_rows_release(struct mdb_row *list)
{
    while (list) {
        /* A run of rows from one pool goes back in one exchange. */
        struct mdb_row *first = list, *last = list;
        struct hr_return_pool *home = first->home;
        while (last->next && last->next->home == home) {
            last->block.next = &last->next->block;
            last = last->next;
        }
        list = last->next;
        if (home) {
            hr_return_put_chain(home, &first->block, &last->block);
            continue;
        }
        for (struct mdb_row *r = first, *next;; r = next) {
            next = r->next;
            free(r);
            if (r == last) break;
        }
    }
}
