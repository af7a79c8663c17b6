/* bm25.c — smart_crusher's relevance: BM25 (lib/bm25.c) of each row's text
 * (its compacted JSON) against the latest user message. */
#include <stdlib.h>
#include "bm25.h"
#include "crush.h"

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
    t->has_query_hits = hits > 0;
    free(docs), free(scores);
    return hits < 0 ? -1 : 0;
}
