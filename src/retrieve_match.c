/* retrieve_match.c — the rows or lines of a stored original that match a
 * query (retrieve_match.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bm25.h"
#include "json_dump.h"
#include "retrieve_match.h"

/* Index of the best score above 0 not taken yet, or n. */
static size_t best_left(const double *score, size_t n)
{
    size_t best = n;
    for (size_t i = 0; i < n; i++)
        if (score[i] > 0 && (best == n || score[i] > score[best])) best = i;
    return best;
}

static json_t *rank_rows(const json_t *rows, const char *query)
{
    json_t *out = json_array();
    size_t n = json_array_size(rows);
    struct hr_bm25_doc *docs = calloc(n ? n : 1, sizeof *docs);
    char **texts = calloc(n ? n : 1, sizeof *texts);
    double *score = calloc(n ? n : 1, sizeof *score);
    if (out && docs && texts && score) {
        for (size_t i = 0; i < n; i++) {
            texts[i] = json_dumps(json_array_get(rows, i), JSON_COMPACT | JSON_ENCODE_ANY);
            docs[i] = (struct hr_bm25_doc){texts[i] ? texts[i] : "", texts[i] ? strlen(texts[i]) : 0};
        }
        if (hr_bm25(query, docs, n, 1, score) > 0)
            for (size_t k = 0, b; k < HR_RETRIEVE_MAX_ROWS && (b = best_left(score, n)) < n; k++) {
                json_array_append(out, json_array_get(rows, b));
                score[b] = 0;
            }
    }
    for (size_t i = 0; texts && i < n; i++) free(texts[i]);
    free(texts), free(docs), free(score);
    return out;
}

/* The lines of `data` as BM25 documents (without their newline). */
static struct hr_bm25_doc *split_lines(const char *data, size_t len, size_t *n_out)
{
    size_t n = 1;
    for (const char *p = data; (p = memchr(p, '\n', (size_t)(data + len - p))); p++) n++;
    struct hr_bm25_doc *docs = malloc(n * sizeof *docs);
    if (!docs) return NULL;
    size_t k = 0;
    for (const char *p = data, *end = data + len; p <= end && k < n;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        docs[k++] = (struct hr_bm25_doc){p, (size_t)(e - p)};
        if (!nl) break;
        p = nl + 1;
    }
    *n_out = k;
    return docs;
}

static json_t *rank_lines(const char *data, size_t len, const char *query)
{
    json_t *out = json_array();
    size_t n = 0;
    struct hr_bm25_doc *docs = split_lines(data, len, &n);
    double *score = docs ? calloc(n, sizeof *score) : NULL;
    char *take = score ? calloc(n, 1) : NULL;
    if (out && take && hr_bm25(query, docs, n, 0, score) > 0) {
        for (size_t k = 0, b; k < HR_RETRIEVE_MAX_LINES && (b = best_left(score, n)) < n; k++) {
            take[b] = 1;
            score[b] = 0;
        }
        for (size_t i = 0; i < n; i++) /* in the original's order: a log reads top down */
            if (take[i])
                json_array_append_new(out, json_pack("{s:I,s:s%}", "line", (json_int_t)(i + 1), "text", docs[i].s,
                                                     docs[i].len));
    }
    free(take), free(score), free(docs);
    return out;
}

json_t *hr_retrieve_matches(const char *data, size_t len, const json_t *rows, const char *query)
{
    if (!query || !*query) return json_array();
    return json_is_array(rows) ? rank_rows(rows, query) : rank_lines(data, len, query);
}

static size_t count_lines(const char *data, size_t len)
{
    size_t n = len && data[len - 1] != '\n';
    for (const char *p = data; (p = memchr(p, '\n', (size_t)(data + len - p))); p++) n++;
    return n;
}

json_t *hr_retrieve_match_text(const char *data, size_t len, const char *query)
{
    json_t *rows = json_loadb(data, len, 0, NULL);
    int is_rows = json_is_array(rows);
    json_t *m = hr_retrieve_matches(data, len, is_rows ? rows : NULL, query);
    size_t found = json_array_size(m), total = is_rows ? json_array_size(rows) : count_lines(data, len);
    const char *unit = is_rows ? "row" : "line";
    char *head = NULL, *body = NULL;
    if (!found) {
        if (asprintf(&head, "headroom_retrieve: no %s of the original (%zu %ss) matches the query '%.200s'; call "
                     "headroom_retrieve without a query for the whole original", unit, total, unit, query) < 0)
            head = NULL;
    } else if (asprintf(&head, "headroom_retrieve: the %zu %s%s of the original (%zu %ss) that best match the query "
                        "'%.200s'%s; call headroom_retrieve without a query for the whole original\n", found, unit,
                        found == 1 ? "" : "s", total, unit, query, is_rows ? ", best first" : ", in order") < 0) {
        head = NULL;
    }
    if (head && found && is_rows) {
        size_t blen;
        body = hr_json_dump_compact(m, &blen); /* a row's 0.7 as the tool wrote it, not 0.69999999999999996 */
    } else if (head && found) {
        size_t cap = 1, k = 0, i;
        json_t *l;
        json_array_foreach(m, i, l) cap += json_string_length(json_object_get(l, "text")) + 32;
        if ((body = malloc(cap))) {
            json_array_foreach(m, i, l) k += (size_t)snprintf(body + k, cap - k, "L%lld: %s\n",
                                                             (long long)json_integer_value(json_object_get(l, "line")),
                                                             json_string_value(json_object_get(l, "text")));
        }
    }
    json_t *out = NULL;
    if (head && (!found || body)) {
        size_t hl = strlen(head), bl = body ? strlen(body) : 0;
        char *all = malloc(hl + bl + 1);
        if (all) {
            memcpy(all, head, hl);
            memcpy(all + hl, body ? body : "", bl + 1);
            out = json_stringn(all, hl + bl);
            free(all);
        }
    }
    free(head), free(body);
    json_decref(m);
    json_decref(rows);
    return out ? out : json_string("headroom_retrieve: out of memory matching the query");
}
