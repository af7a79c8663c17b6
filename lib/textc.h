/* textc.h — what the text compressors (log, search, diff, html) share: a
 * growable output buffer, a line splitter, the retrieval marker line, and
 * the plugin driver that picks units, runs a pure compress function on
 * helper threads (remembering results by content), stores originals in CCR
 * and replaces units in order. The compress functions never see the host. */
#ifndef HR_TEXTC_H
#define HR_TEXTC_H
#include <stddef.h>
#include <stdint.h>
#include <headroom/plugin.h>
#include "memo.h"
#include "tbuf.h"


/* One line of a text: [off, off+len), without '\n' and a trailing '\r'. */
struct hr_line {
    uint32_t off, len;
};
/* Lines of text (a final line without '\n' counts; "" has none). malloc'd;
 * NULL with *n = 0 on out of memory or a text over 4 GiB. */
struct hr_line *hr_lines_split(const char *text, size_t len, size_t *n);

/* Stands in for the CCR hash until the driver stores the original. */
#define HR_TEXTC_PLACEHOLDER "000000000000000000000000"

/* A compress function's result. */
struct hr_text_out {
    struct hr_tbuf b;       /* the compressed text */
    size_t total, omitted;  /* items (lines, matches, files) in / dropped */
    size_t hash_off[2];     /* where the placeholder sits in b */
    size_t n_hash_off;
};
/* Append the marker line the host and clients recognise, short because on a
 * small output it is a good part of it:
 * "[headroom: N of M WHAT; headroom_retrieve hash=H]\n" (N omitted of M in
 * all: the counts the retrieve API reports; WHAT e.g. "log lines omitted"). */
void hr_text_marker(struct hr_text_out *o, const char *what, size_t omitted, size_t total);
void hr_text_set_hash(struct hr_text_out *o, const char *hash);
void hr_text_out_free(struct hr_text_out *o);

/* Compress text[0..len) (text[len] is a NUL). Return 0 with `out` filled,
 * a positive code to leave the text as it is, or a negative error. Pure:
 * runs on any thread, same input and config give the same bytes. */
typedef int (*hr_text_compress_fn)(const void *cfg, const char *text, size_t len, const char *query,
                                   struct hr_text_out *out);
/* Whether this unit is one the plugin handles (type, or a sniff of text). */
typedef int (*hr_text_accept_fn)(const void *cfg, const struct hr_unit *u);

struct hr_text_driver {
    const struct hr_host *host;
    struct hr_instance *self;
    const char *name;           /* stage tag prefix */
    hr_text_accept_fn accept;
    hr_text_compress_fn compress;
    const void *cfg;
    size_t min_tokens;
    double min_savings;         /* fraction of tokens a result must save */
    int uses_query;             /* results depend on req->query */
    uint64_t cfg_salt;          /* results depend on cfg: part of the memo key */
    struct hr_memo *memo;       /* NULL = off (or host before ABI 1.1) */
};
/* The whole apply() of a text compressor. */
int hr_text_apply(const struct hr_text_driver *d, struct hr_request *req);
/* A /stats block for the driver's memo. */
json_t *hr_text_memo_stats(void *driver);
/* The plugin's reset hook (POST /stats/reset zeroes the memo's counters) for a
 * plugin whose state begins with its struct hr_text_driver. */
void hr_text_reset(void *state);

/* Byte-string helpers for compress functions. */
static inline int hr_starts(const char *s, size_t n, const char *p, size_t pl)
{
    return n >= pl && __builtin_memcmp(s, p, pl) == 0;
}
#define HR_STARTS(s, n, lit) hr_starts((s), (n), (lit), sizeof(lit) - 1)
#endif
