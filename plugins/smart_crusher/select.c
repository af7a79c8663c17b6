/* select.c — decides which rows survive: first/last, capped critical rows (errors,
 * needles, numeric outliers), then warnings, relevance, query match and evenly
 * spaced rows up to max_items. Pure function of the analysed table: deterministic. */
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

/* Keep up to `quota` candidates in order; returns how many were kept. */
static size_t take(struct hr_sc_table *t, struct cand *c, size_t nc, size_t quota, uint32_t why)
{
    size_t got = 0;
    qsort(c, nc, sizeof *c, cmp_cand);
    for (size_t i = 0; i < nc && got < quota; i++) {
        struct hr_sc_row *r = &t->rows[c[i].idx];
        if (!usable(r))
            continue;
        r->kept |= why;
        got++;
    }
    return got;
}

/* Pick `k` rows spread evenly over the rows still available. */
static size_t spaced(struct hr_sc_table *t, struct cand *c, size_t k, uint32_t why,
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
    }
    return k;
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
    if (!c)
        return 0;
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
        if (t->rows[i].err > 1)
            c[nc++] = (struct cand){t->rows[i].err, (uint32_t)i};
    crit += take(t, c, nc, cap - crit, HR_SC_R_ERROR);
    if (t->needles_on) {
        nc = 0;
        for (size_t i = 0; i < n; i++)
            if (t->rows[i].needle)
                c[nc++] = (struct cand){0, (uint32_t)i};
        crit += take(t, c, nc, cap - crit, HR_SC_R_NEEDLE);
    }
    nc = 0;
    for (size_t i = 0; i < n; i++)
        if (t->rows[i].z > 0)
            c[nc++] = (struct cand){t->rows[i].z, (uint32_t)i};
    crit += take(t, c, nc, cap - crit, HR_SC_R_OUTLIER);
    /* An error word in free text is the weakest signal: it comes last. */
    nc = 0;
    for (size_t i = 0; i < n; i++)
        if (t->rows[i].err == 1)
            c[nc++] = (struct cand){0, (uint32_t)i};
    crit += take(t, c, nc, cap - crit, HR_SC_R_ERROR);
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

    size_t room = kept < cfg->max_items ? cfg->max_items - kept : 0;
    if (room) {
        size_t w = spaced(t, c, (room + 1) / 2, HR_SC_R_WARN, warn_row);
        room -= w;
    }
    /* Relevance to the query matters only while rows are left to choose:
     * otherwise the BM25 pass over every row is skipped. */
    if (room && hr_sc_bm25(t, query)) {
        free(c);
        return 0; /* out of memory */
    }
    if (room && t->rel_field >= 0) {
        size_t quota = t->has_query_hits ? (room * 2 + 2) / 3 : room;
        nc = 0;
        for (size_t i = 0; i < n; i++)
            if (t->rows[i].has_rel)
                c[nc++] = (struct cand){t->rows[i].rel, (uint32_t)i};
        room -= take(t, c, nc, quota, HR_SC_R_RELEVANCE);
    }
    if (room && t->has_query_hits) {
        size_t quota = t->rel_field >= 0 ? room : (room + 1) / 2;
        nc = 0;
        for (size_t i = 0; i < n; i++)
            if (t->rows[i].bm25 > 0)
                c[nc++] = (struct cand){t->rows[i].bm25, (uint32_t)i};
        room -= take(t, c, nc, quota, HR_SC_R_QUERY);
    }
    /* Evenly spaced rows are only a sample of the ordinary ones: the marker,
     * which gives the count and the way to all of them, takes one of their
     * slots (the array shows max_items entries, marker included). */
    if (room > 1)
        spaced(t, c, room - 1, HR_SC_R_SPACED, any_row);
    free(c);
    kept = 0;
    for (size_t i = 0; i < n; i++)
        if (t->rows[i].kept)
            kept++;
    return kept;
}
