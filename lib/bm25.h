/* bm25.h — Okapi BM25 of short documents against a query (the latest user
 * message): query words of 2..32 bytes, stop words dropped, ASCII case
 * folded; a term found in more than half the documents is ignored. */
#ifndef HR_BM25_H
#define HR_BM25_H
#include <stddef.h>
#include <stdint.h>

struct hr_bm25_doc {
    const char *s;
    size_t len;
};

/* scores[i] = BM25 of docs[i] (all 0 when the query has no terms). With
 * `json`, backslash escapes in the documents are skipped. Returns how many
 * documents scored above 0, or -1 when out of memory. */
int hr_bm25(const char *query, const struct hr_bm25_doc *docs, size_t n, int json, double *scores);
#endif
