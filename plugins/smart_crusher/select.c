/* select.c — decides which rows survive: first/last, capped critical rows (errors,
 * needles, numeric outliers), then warnings, relevance, query match and evenly
 * spaced rows up to max_items; the best query matches in any case. Pure function
 * of the analysed table: deterministic. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "crush.h"

struct cand {
    double key;   /* larger first */
    uint32_t idx; /* then smaller index first */
};

static int cmp_cand(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;
    if (x->key != y->key)
        return x->key > y->key ? -1 : 1;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

static int usable(const struct hr_sc_row *r)
{
    return !r->kept && !r->dup;
}

/* The rows taken so far, in the order taken (highest priority first), so that
 * the best query matches can displace the last of them. */
struct taken {
    uint32_t *idx;
    size_t n;
};

/* Keep up to `quota` candidates in order; returns how many were kept. */
static size_t take(struct hr_sc_table *t, struct taken *tk, struct cand *c, size_t nc, size_t quota, uint32_t why)
{
    size_t got = 0;
    qsort(c, nc, sizeof *c, cmp_cand);
    for (size_t i = 0; i < nc && got < quota; i++) {
        struct hr_sc_row *r = &t->rows[c[i].idx];
        if (!usable(r))
            continue;
        r->kept |= why;
        if (tk)
            tk->idx[tk->n++] = c[i].idx;
        got++;
    }
    return got;
}

/* Pick `k` rows spread evenly over the rows still available. */
static size_t spaced(struct hr_sc_table *t, struct taken *tk, struct cand *c, size_t k, uint32_t why,
                     int (*want)(const struct hr_sc_row *))
{
    size_t m = 0;
    for (size_t i = 0; i < t->n; i++)
        if (usable(&t->rows[i]) && want(&t->rows[i]))
            c[m++].idx = (uint32_t)i;
    if (k > m)
        k = m;
    for (size_t j = 0; j < k; j++) {
        size_t pos = (size_t)(((double)j + 0.5) * (double)m / (double)k);
        if (pos >= m)
            pos = m - 1;
        t->rows[c[pos].idx].kept |= why;
        if (tk)
            tk->idx[tk->n++] = c[pos].idx;
    }
    return k;
}

/* Unkeep up to `want` rows taken in tk->idx[from..*pos), the last taken first,
 * passing over the best query matches (score above `worst`, or equal and not
 * after it); returns how many. */
static size_t displace(struct hr_sc_table *t, const struct taken *tk, size_t from, size_t *pos, size_t want,
                       struct cand worst)
{
    size_t got = 0;
    while (got < want && *pos > from) {
        uint32_t idx = tk->idx[--*pos];
        struct hr_sc_row *r = &t->rows[idx];
        if (r->bm25 > worst.key || (r->bm25 == worst.key && idx <= worst.idx))
            continue;
        r->kept = 0;
        got++;
    }
    return got;
}

/* The best `share` query matches (by BM25, then position; duplicates aside) that
 * score at least half the best are kept whatever else is. Those not kept yet take,
 * in this order: the evenly spaced sample's slots (`room` less the marker's), the
 * places of the rows taken after the critical ones (tk->idx[crit_end..]: the
 * relevance, query and warning rows, the last taken first), what the critical cap
 * has left (`cap_left`: the rows kept grow), and last the places of the critical
 * rows taken last (weak errors, the smallest outliers, ...). Returns how many
 * slots of `room` they took. */
static size_t query_share(struct hr_sc_table *t, const struct taken *tk, size_t crit_end, struct cand *c,
                          size_t share, size_t room, size_t cap_left)
{
    size_t nc = 0, missing = 0;
    for (size_t i = 0; i < t->n; i++)
        if (t->rows[i].bm25 > 0 && !t->rows[i].dup)
            c[nc++] = (struct cand){t->rows[i].bm25, (uint32_t)i};
    qsort(c, nc, sizeof *c, cmp_cand);
    if (nc > share)
        nc = share;
    while (nc > 1 && c[nc - 1].key * 2 < c[0].key)
        nc--; /* a weak match (a word or two of the question) is no answer */
    for (size_t i = 0; i < nc; i++)
        missing += !t->rows[c[i].idx].kept;
    if (!missing)
        return 0;
    size_t spaced_slots = room > 1 ? room - 1 : 0, from_room = missing < spaced_slots ? missing : spaced_slots;
    missing -= from_room;
    size_t pos = tk->n;
    missing -= displace(t, tk, crit_end, &pos, missing, c[nc - 1]);
    missing -= missing < cap_left ? missing : cap_left;
    pos = crit_end;
    displace(t, tk, 0, &pos, missing, c[nc - 1]);
    for (size_t i = 0; i < nc; i++)
        if (!t->rows[c[i].idx].kept)
            t->rows[c[i].idx].kept = HR_SC_R_QUERY;
    return from_room;
}

static int any_row(const struct hr_sc_row *r) { (void)r; return 1; }
static int warn_row(const struct hr_sc_row *r) { return r->warn; }

/* In a mixed-schema array each schema group shows its first and last row, the
 * largest groups first, while that stays within max_items rows. Returns rows added. */
static size_t group_ends(struct hr_sc_table *t, size_t max_items)
{
    size_t added = 0, ends = 2;
    uint8_t done[HR_SC_MAX_SCHEMAS] = {0};
    for (size_t round = 0; round < t->n_groups; round++) {
        size_t best = SIZE_MAX;
        for (size_t g = 0; g < t->n_groups; g++)
            if (!done[g] && (best == SIZE_MAX || t->groups[g].count > t->groups[best].count))
                best = g;
        done[best] = 1;
        const struct hr_sc_group *gr = &t->groups[best];
        uint32_t at[2] = {gr->first, gr->last};
        for (size_t k = 0; k < 2 && ends < max_items; k++) {
            struct hr_sc_row *r = &t->rows[at[k]];
            if (r->kept)
                continue;
            r->kept |= HR_SC_R_FIRST_LAST;
            added++;
            ends++;
        }
    }
    return added;
}

size_t hr_sc_select(struct hr_sc_table *t, const struct hr_sc_config *cfg, const char *query)
{
    size_t n = t->n, kept = 0;
    struct cand *c = malloc((n ? n : 1) * sizeof *c);
    struct taken tk = {malloc((n ? n : 1) * sizeof *tk.idx), 0};
    if (!c || !tk.idx) {
        free(c), free(tk.idx);
        return 0;
    }
    t->rows[0].kept |= HR_SC_R_FIRST_LAST;
    t->rows[n - 1].kept |= HR_SC_R_FIRST_LAST;
    kept = n > 1 ? 2 : 1;
    kept += group_ends(t, cfg->max_items);

    size_t cap = (size_t)ceil((double)n * cfg->critical_fraction);
    if (cap < cfg->max_items)
        cap = cfg->max_items;
    size_t crit = 0, nc;

    /* Errors from structured fields by severity, then position. */
    nc = 0;
    for (size_t i = 0; i < n; i++)
        if (t->rows[i].err > 2)
            c[nc++] = (struct cand){t->rows[i].err, (uint32_t)i};
    crit += take(t, &tk, c, nc, cap - crit, HR_SC_R_ERROR);
    if (t->needles_on) {
        nc = 0;
        for (size_t i = 0; i < n; i++)
            if (t->rows[i].needle)
                c[nc++] = (struct cand){0, (uint32_t)i};
        crit += take(t, &tk, c, nc, cap - crit, HR_SC_R_NEEDLE);
    }
    nc = 0;
    for (size_t i = 0; i < n; i++)
        if (t->rows[i].z > 0)
            c[nc++] = (struct cand){t->rows[i].z, (uint32_t)i};
    crit += take(t, &tk, c, nc, cap - crit, HR_SC_R_OUTLIER);
    /* A request's 4xx (a missing page, a refused token): an error, as an
     * access log's 404 is to log_compressor, but common and often harmless,
     * so after the 5xx, needles and outliers, and the first to yield. */
    nc = 0;
    for (size_t i = 0; i < n; i++)
        if (t->rows[i].err == 2)
            c[nc++] = (struct cand){0, (uint32_t)i};
    crit += take(t, &tk, c, nc, cap - crit, HR_SC_R_ERROR);
    /* An error word in free text is the weakest signal: it comes last. */
    nc = 0;
    for (size_t i = 0; i < n; i++)
        if (t->rows[i].err == 1)
            c[nc++] = (struct cand){0, (uint32_t)i};
    crit += take(t, &tk, c, nc, cap - crit, HR_SC_R_ERROR);
    kept += crit;
    /* Rows flagged for several reasons record all of them (for the marker). */
    for (size_t i = 0; i < n; i++) {
        struct hr_sc_row *r = &t->rows[i];
        if (!r->kept)
            continue;
        if (r->err)
            r->kept |= HR_SC_R_ERROR;
        if (r->needle && t->needles_on)
            r->kept |= HR_SC_R_NEEDLE;
        if (r->z > 0)
            r->kept |= HR_SC_R_OUTLIER;
    }

    size_t room = kept < cfg->max_items ? cfg->max_items - kept : 0, crit_end = tk.n;
    if (room) {
        size_t w = spaced(t, &tk, c, (room + 1) / 2, HR_SC_R_WARN, warn_row);
        room -= w;
    }
    /* Rows are scored against the question, when there is one, for the query
     * match below and for its best matches, kept whatever else is. */
    if (hr_sc_bm25(t, query)) {
        free(c), free(tk.idx);
        return 0; /* out of memory */
    }
    if (room && t->rel_field >= 0) {
        size_t quota = t->has_query_hits ? (room * 2 + 2) / 3 : room;
        nc = 0;
        for (size_t i = 0; i < n; i++)
            if (t->rows[i].has_rel)
                c[nc++] = (struct cand){t->rows[i].rel, (uint32_t)i};
        room -= take(t, &tk, c, nc, quota, HR_SC_R_RELEVANCE);
    }
    if (room && t->has_query_hits) {
        size_t quota = t->rel_field >= 0 ? room : (room + 1) / 2;
        nc = 0;
        for (size_t i = 0; i < n; i++)
            if (t->rows[i].bm25 > 0)
                c[nc++] = (struct cand){t->rows[i].bm25, (uint32_t)i};
        room -= take(t, &tk, c, nc, quota, HR_SC_R_QUERY);
    }
    /* The question asked is about some rows: its best matches (up to a fifth
     * of max_items, 3 of 15) are kept even when critical rows fill max_items. */
    if (t->has_query_hits)
        room -= query_share(t, &tk, crit_end, c, (cfg->max_items + 4) / 5, room, cap - crit);
    /* Evenly spaced rows are only a sample of the ordinary ones: the marker,
     * which gives the count and the way to all of them, takes one of their
     * slots (the array shows max_items entries, marker included). */
    if (room > 1)
        spaced(t, NULL, c, room - 1, HR_SC_R_SPACED, any_row);
    free(c), free(tk.idx);
    kept = 0;
    for (size_t i = 0; i < n; i++)
        if (t->rows[i].kept)
            kept++;
    return kept;
}
