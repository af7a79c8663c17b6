/* memo.h — a bounded, thread-safe memo of per-output results keyed by
 * content. Agents resend every earlier tool output on every turn; a
 * transform whose result depends only on the text (and its own config)
 * looks it up here instead of analysing the same bytes again. Least
 * recently used entries go first once the byte budget is reached. */
#ifndef HR_PLUGIN_MEMO_H
#define HR_PLUGIN_MEMO_H
#include <stddef.h>
#include <stdint.h>

struct hr_memo_key {
    uint64_t hash[2]; /* hr_host.unit_hash of the text */
    uint64_t len;     /* its length in bytes */
    uint64_t salt;    /* anything else the result depends on (e.g. the query) */
};

struct hr_memo_counters {
    uint64_t hits, lookups, evictions;
    size_t bytes, entries, max_bytes;
};

struct hr_memo;

/* A memo holding at most max_bytes (values plus bookkeeping); NULL when
 * max_bytes is 0 (memo off) or out of memory. Every call below accepts NULL. */
struct hr_memo *hr_memo_new(size_t max_bytes);
void hr_memo_free(struct hr_memo *m);
/* A malloc'd copy of the value stored under k (its size in *len), or NULL. */
void *hr_memo_get(struct hr_memo *m, const struct hr_memo_key *k, size_t *len);
/* Store a copy of val under k, replacing any older value. Values larger than
 * a quarter of the budget are not kept. */
void hr_memo_put(struct hr_memo *m, const struct hr_memo_key *k, const void *val, size_t len);
void hr_memo_read_counters(struct hr_memo *m, struct hr_memo_counters *out);
/* Zero hits, lookups and evictions (what is stored stays). */
void hr_memo_reset_counters(struct hr_memo *m);
#endif
