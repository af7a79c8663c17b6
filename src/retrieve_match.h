/* retrieve_match.h — the part of a stored original that answers a query:
 * for GET/POST /v1/retrieve's query_matches and a headroom_retrieve call
 * that names a query, so a model can fetch what it needs of an original
 * too large to send back whole. */
#ifndef HR_RETRIEVE_MATCH_H
#define HR_RETRIEVE_MATCH_H
#include <stddef.h>
#include <jansson.h>

#define HR_RETRIEVE_MAX_ROWS 20  /* rows of a JSON-array original */
#define HR_RETRIEVE_MAX_LINES 50 /* lines of a text original */

/* What of `data` (len bytes; `rows` its parse when it is a JSON array, else
 * NULL) ranks best for `query` by BM25, as smart_crusher ranks rows: a JSON
 * array of rows, best first (rows given), or of {"line": N, "text": ...}
 * in the original's order (text; lines numbered from 1). Only what holds a
 * query word; an empty array when nothing does or the query has no word. */
json_t *hr_retrieve_matches(const char *data, size_t len, const json_t *rows, const char *query);

/* The text a headroom_retrieve call with a query gets: one line saying
 * what it is (how many of how many, and how to get the whole original),
 * then the matching rows (a JSON array) or lines ("L<n>: text"). */
json_t *hr_retrieve_match_text(const char *data, size_t len, const char *query);
#endif
