/* bm25.c — smart_crusher's relevance: BM25 (lib/bm25.c) of each row's text
 * (its compacted JSON) against the latest user message, and the names the
 * message quotes whole. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "bm25.h"
#include "crush.h"

static int name_byte(unsigned char c)
{
    return (unsigned)(c - '0') < 10 || (unsigned)((c | 32) - 'a') < 26 || c >= 0x80;
}

static int name_joiner(unsigned char c)
{
    return c == '.' || c == '-' || c == '_' || c == '/';
}

/* Rows holding `name` (len bytes, ASCII case ignored) get `bonus` added; returns how many. */
static size_t boost_name(struct hr_sc_table *t, const char *name, size_t len, double bonus, uint8_t *hit)
{
    size_t rows = 0;
    unsigned first = (unsigned char)name[0] | 32u;
    for (size_t i = 0; i < t->n; i++) {
        const char *s = t->text + t->rows[i].off;
        size_t l = t->rows[i].len;
        hit[i] = 0;
        for (size_t k = 0; k + len <= l && !hit[i]; k++)
            if (((unsigned char)s[k] | 32u) == first && strncasecmp(s + k, name, len) == 0)
                hit[i] = 1;
        rows += hit[i];
    }
    if (rows > (t->n / 20 > 1 ? t->n / 20 : 1))
        return 0; /* in more than 5 % of the rows: a filter (a service, a directory), not a pointer */
    for (size_t i = 0; i < t->n; i++)
        if (hit[i])
            t->rows[i].bm25 += bonus;
    return rows;
}

/* A name the question quotes whole — a file, package or request id, words joined by
 * '.', '-', '_' or '/' (libzstd.so.1.5.4, req-7f3a91c2) — found verbatim in a few
 * rows (at most 5 %) ranks them above every row that only shares some of its
 * words: BM25 alone put the 18 /lib/x86_64-linux-gnu/... links of an `ls -l`
 * above libzstd.so.1.5.4 itself. Returns how many rows were ranked up, or -1
 * when out of memory. */
static long quoted_names(struct hr_sc_table *t, const char *q)
{
    double top = 0;
    for (size_t i = 0; i < t->n; i++)
        if (t->rows[i].bm25 > top)
            top = t->rows[i].bm25;
    uint8_t *hit = NULL;
    long rows = 0;
    for (size_t i = 0; q[i];) {
        size_t s = i, joins = 0;
        while (q[i] && (name_byte((unsigned char)q[i]) || name_joiner((unsigned char)q[i])))
            i++;
        size_t e = i;
        if (s == e) {
            i++;
            continue;
        }
        while (s < e && name_joiner((unsigned char)q[s]))
            s++;
        while (e > s && name_joiner((unsigned char)q[e - 1]))
            e--; /* "see libfoo.so." */
        for (size_t k = s; k < e; k++)
            joins += name_joiner((unsigned char)q[k]);
        if (!joins || e - s < 4 || e - s > 256)
            continue;
        if (!hit && !(hit = malloc(t->n)))
            return -1;
        rows += (long)boost_name(t, q + s, e - s, top + 1, hit);
    }
    free(hit);
    return rows;
}

int hr_sc_bm25(struct hr_sc_table *t, const char *query)
{
    t->has_query_hits = 0;
    if (!query || !*query || t->n == 0)
        return 0;
    struct hr_bm25_doc *docs = malloc(t->n * sizeof *docs);
    double *scores = malloc(t->n * sizeof *scores);
    int hits = docs && scores ? 0 : -1;
    for (size_t i = 0; hits == 0 && i < t->n; i++)
        docs[i] = (struct hr_bm25_doc){t->text + t->rows[i].off, t->rows[i].len};
    if (hits == 0)
        hits = hr_bm25(query, docs, t->n, 1, scores);
    for (size_t i = 0; hits >= 0 && i < t->n; i++)
        t->rows[i].bm25 = scores[i];
    long named = hits >= 0 ? quoted_names(t, query) : 0;
    t->has_query_hits = hits > 0 || named > 0;
    free(docs), free(scores);
    return hits < 0 || named < 0 ? -1 : 0;
}
