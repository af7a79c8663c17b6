/* textc.h — what the text compressors (log, search, diff, html) share: a
 * growable output buffer, a line splitter, the retrieval marker line, the
 * plugin driver that picks units, runs a pure compress function on helper
 * threads (remembering results by content), stores originals in CCR and
 * replaces units in order, including the long strings of a JSON output that
 * wraps a text (MCP content parts, {"output":…}, {"stdout":…}; that walk is
 * header-only, smart_crusher's too for rows as text), and the router's text
 * typing. The compress functions never see the host. */
#ifndef HR_TEXTC_H
#define HR_TEXTC_H
#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <headroom/plugin.h>
#include "cc_diag.h"
#include "memo.h"
#include "tbuf.h"
#include "json_scan.h"


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

/* ------------------------------------------------------ text wrapped in JSON */

/* A tool output that is a JSON object (or array) wrapping a text: MCP's
 * {"content":[{"type":"text","text":"<log>"}],"isError":false}, Codex's
 * {"output":"<log>","metadata":{…}}, {"stdout":…,"stderr":…,"exit_code":…}.
 * The router types it json_object, smart_crusher finds no rows in it, and it
 * went upstream whole. When long string values are the bulk of it, each is
 * typed as the router types a text and, when this compressor takes that
 * type, compressed (its own marker line first, the string's text stored in
 * CCR under the marker's hash); everything else is kept byte for byte, so
 * the result is the same JSON with shorter strings. Header-only: smart_crusher
 * (which links no other part of this file) walks the same strings for JSON
 * rows carried as text, so there is one walk. */
#define HR_WRAP_MAX 16         /* long strings in one unit at most: the host describes 16 markers a unit */
#define HR_WRAP_MIN_BYTES 256  /* a shorter string is never worth a marker */

/* One compressed string: its body in the unit's text, where its marker's
 * hash goes in the new text, and its counts. */
struct hr_wrap_str {
    uint64_t raw_off, raw_len, hash_at[2], n_hash, total, omitted;
};

/* Whether the quote at t[i] ends or opens a string (not an escaped one: valid
 * JSON has backslashes only inside strings). */
static inline int hr_wrap_real_quote(const char *t, size_t i)
{
    size_t bs = 0;
    while (bs < i && t[i - bs - 1] == '\\')
        bs++;
    return !(bs & 1);
}

/* The first real quote in t[from, to), else SIZE_MAX. */
static inline size_t hr_wrap_quote_after(const char *t, size_t from, size_t to)
{
    for (const char *q; from < to && (q = memchr(t + from, '"', to - from)); from = (size_t)(q - t) + 1)
        if (hr_wrap_real_quote(t, (size_t)(q - t)))
            return (size_t)(q - t);
    return SIZE_MAX;
}

/* The last real quote in t[from, to), else SIZE_MAX. */
static inline size_t hr_wrap_quote_before(const char *t, size_t from, size_t to)
{
    for (const char *q; to > from && (q = memrchr(t + from, '"', to - from)); to = (size_t)(q - t))
        if (hr_wrap_real_quote(t, (size_t)(q - t)))
            return (size_t)(q - t);
    return SIZE_MAX;
}

/* A quick no for most JSON (arrays of rows): at most HR_WRAP_MAX strings that
 * are half the text hold one of at least a 32nd of it, so one of 63 evenly
 * spaced probes lies in a string whose quotes are farther apart than that.
 * A probe in rows finds quotes a few bytes away on both sides; only a text
 * where one does not is scanned whole (hr_wrap_long_strings). */
static inline int hr_wrap_may(const char *t, size_t n)
{
    if (n < 65536)
        return 1; /* scanning it costs little */
    size_t step = n / 64, gap = n / 32;
    for (size_t k = 1; k < 64; k++) {
        size_t p = k * step, r = hr_wrap_quote_after(t, p, p + gap < n ? p + gap : n);
        size_t l = r == SIZE_MAX ? SIZE_MAX : hr_wrap_quote_before(t, p > gap ? p - gap : 0, p + 1);
        if (l == SIZE_MAX || r - l > gap)
            return 1;
    }
    return 0;
}

/* Value strings (not keys) of the JSON text t[0..n) whose body is at least
 * `min` bytes, in text order, in out; returns how many, their body bytes in
 * *bytes; 0 when more than HR_WRAP_MAX (rows with long fields, such as issues
 * and their bodies, are smart_crusher's). Stops early once they can no
 * longer be half the text (an array of rows). */
static inline size_t hr_wrap_long_strings(const char *t, size_t n, size_t min, struct hr_wrap_str *out, size_t *bytes)
{
    size_t k = 0, found = 0, many = 0;
    for (size_t i = 0; i < n; i++) {
        if (found * 2 + 2 * (n - i) < n)
            break;
        const char *q = memchr(t + i, '"', n - i);
        if (!q)
            break;
        i = (size_t)(q - t);
        size_t b = i + 1, e = b;
        e = hr_wrap_quote_after(t, b, n);
        if (e == SIZE_MAX)
            return 0; /* not JSON after all */
        i = e;
        size_t j = e + 1;
        while (j < n && (t[j] == ' ' || t[j] == '\t' || t[j] == '\n' || t[j] == '\r'))
            j++;
        if ((j < n && t[j] == ':') || e - b < min)
            continue; /* a key, or short */
        struct hr_wrap_str w = {.raw_off = b, .raw_len = e - b};
        found += e - b;
        if (++many > HR_WRAP_MAX)
            return 0; /* rows with long fields (issues and their bodies): smart_crusher's */
        out[k++] = w;
    }
    *bytes = 0;
    for (size_t x = 0; x < k; x++)
        *bytes += out[x].raw_len;
    return k;
}

/* The decoded bytes of the JSON string whose body is t[off, off+len), in b
 * (a NUL after them, not counted): 0; -1 where jansson refuses the string
 * (a raw control character or quote, a bad escape, a lone surrogate,
 * \u0000, bytes that are not UTF-8); -12 out of memory (b freed then).
 * lib/json_scan.c, not json_loadb: it validates as jansson does and decodes
 * in the same pass, and rows as text are all escapes that an agent resends
 * every turn, each resend decoding them again for the CCR. The string goes
 * in as a one-element array, the only string that scan takes. */
static inline int hr_wrap_unescape(const char *t, uint64_t off, uint64_t len, struct hr_tbuf *b)
{
    struct hr_tbuf doc;
    struct hr_json_decoded d;
    memset(&doc, 0, sizeof doc);
    memset(&d, 0, sizeof d);
    memset(b, 0, sizeof *b);
    hr_tbuf_put(&doc, "[\"", 2);
    hr_tbuf_put(&doc, t + off, len);
    hr_tbuf_put(&doc, "\"]", 2);
    int rc = doc.oom ? -12 : hr_json_scan_decode(doc.p, doc.len, 0, &d);
    if (!rc && d.failed)
        rc = -12;
    int esc = 0;
    /* One string, the whole body: a raw quote inside would make two. */
    if (!rc && hr_json_span(doc.p + 2, len + 2, &esc) != len)
        rc = -22;
    if (!rc) {
        hr_tbuf_put(b, d.n ? d.buf + d.v[0].off : doc.p + 2, d.n ? d.v[0].len : len);
        hr_tbuf_putc(b, '\0');
        if (b->oom)
            rc = -12;
        else
            b->len--;
    }
    free(d.buf);
    free(d.v);
    hr_tbuf_free(&doc);
    if (rc)
        hr_tbuf_free(b);
    return rc == -22 ? -1 : rc;
}

/* Append s[0..n) as the body of a JSON string (no quotes), \uxxxx for every
 * non-ASCII character when `ascii` (the original had none: Python's
 * json.dumps writes so), hex in lower case as most encoders write it
 * (jansson's capitals would be the only change in an ASCII wrapper). -1 when
 * s is not valid UTF-8. */
static inline int hr_wrap_put_escaped(struct hr_tbuf *b, const char *s, size_t n, int ascii)
{
    if (!n)
        return 0;
    json_t *v = json_stringn(s, n);
    char *e = v ? json_dumps(v, JSON_ENCODE_ANY | (ascii ? JSON_ENSURE_ASCII : 0)) : NULL;
    json_decref(v);
    if (!e)
        return -1;
    size_t el = strlen(e);
    for (size_t i = 1; i + 1 < el; i++)
        if (e[i] == '\\' && e[++i] == 'u')
            for (size_t k = i + 1; k < i + 5 && k < el; k++)
                e[k] = (char)tolower((unsigned char)e[k]);
    hr_tbuf_put(b, e + 1, el - 2);
    free(e);
    return 0;
}

/* The number of tokens of s is at least `want` (a prefix usually settles it:
 * a token is at least one byte). */
static inline int hr_wrap_tokens_at_least(const struct hr_host *h, const char *model, const char *s, size_t n,
                                          size_t want)
{
    if (n < want)
        return 0;
    size_t pre = 16 * want + 64;
    if (pre < n) {
        while (pre < n && ((unsigned char)s[pre] & 0xC0) == 0x80)
            pre++; /* on a character boundary */
        if (h->count_tokens(model, s, pre) >= want)
            return 1;
    }
    return h->count_tokens(model, s, n) >= want;
}

/* Compress one decoded string s[0..sl) (s[sl] is a NUL): 0 with o filled (its
 * placeholders at o->hash_off), a positive code to leave it, or a negative
 * error. */
typedef int (*hr_wrap_fn)(void *ctx, const char *s, size_t sl, struct hr_text_out *o);

/* The one walk of a JSON unit's wrapped strings, for the text compressors
 * (a log in MCP content, {"output":…}) and smart_crusher (rows as text):
 * when value strings of at least HR_WRAP_MIN_BYTES and min_tokens bytes are
 * at least half of t[0..n) and at most HR_WRAP_MAX, each is decoded and given
 * to fn; out gets t with the bodies of those fn shrank by min_savings
 * replaced (every other byte kept; non-ASCII as \uxxxx when t had none),
 * placeholders where the hashes go, the strings' totals; ws[0..*nws) each
 * string. 0, a positive code to leave the unit alone, or a negative error. */
static inline int hr_wrap_rewrite(const char *t, size_t n, size_t min_tokens, double min_savings, hr_wrap_fn fn,
                                  void *ctx, struct hr_text_out *out, struct hr_wrap_str *ws, size_t *nws)
{
    struct hr_wrap_str cand[HR_WRAP_MAX];
    size_t min = min_tokens > HR_WRAP_MIN_BYTES ? min_tokens : HR_WRAP_MIN_BYTES; /* a token is at least a byte */
    size_t bytes = 0, k = hr_wrap_may(t, n) ? hr_wrap_long_strings(t, n, min, cand, &bytes) : 0;
    memset(out, 0, sizeof *out);
    *nws = 0;
    if (!k || bytes * 2 < n)
        return 1; /* no text the bulk of it */
    int ascii = 1;
    for (size_t i = 0; i < n && ascii; i++)
        ascii = (unsigned char)t[i] < 0x80;
    size_t at = 0; /* t[0..at) is written */
    int rc = 0;
    for (size_t x = 0; x < k && rc >= 0; x++) {
        struct hr_tbuf v;
        int dr = hr_wrap_unescape(t, cand[x].raw_off, cand[x].raw_len, &v);
        struct hr_text_out o;
        memset(&o, 0, sizeof o);
        int r = dr == 0 ? fn(ctx, v.p, v.len, &o) : dr == -12 ? -12 : 1;
        if (r == 0 && o.b.oom)
            r = -12;
        if (r == 0 && (double)o.b.len > (1.0 - min_savings) * (double)v.len)
            r = 4; /* not worth its marker */
        if (r == 0) {
            struct hr_wrap_str w = cand[x];
            size_t mark = out->b.len, from = 0;
            hr_tbuf_put(&out->b, t + at, cand[x].raw_off - at);
            for (size_t h = 0; h < o.n_hash_off && h < 2 && r == 0; h++) {
                if (o.hash_off[h] < from || o.hash_off[h] > o.b.len || o.b.len - o.hash_off[h] < HR_CCR_HASH_LEN) {
                    r = -1; /* a placeholder out of order or past the end */
                    break;
                }
                r = hr_wrap_put_escaped(&out->b, o.b.p + from, o.hash_off[h] - from, ascii);
                w.hash_at[w.n_hash++] = out->b.len;
                from = o.hash_off[h];
            }
            if (r == 0)
                r = hr_wrap_put_escaped(&out->b, o.b.p + from, o.b.len - from, ascii);
            if (r == 0) {
                at = cand[x].raw_off + cand[x].raw_len;
                w.total = o.total;
                w.omitted = o.omitted;
                out->total += o.total;
                out->omitted += o.omitted;
                ws[(*nws)++] = w;
            } else {
                /* Its new text cannot be a JSON string (not UTF-8: a cut
                 * inside a character): this string stays as it was, the
                 * unit's others are still rewritten. */
                out->b.len = mark;
                r = 5;
            }
        } else if (r < 0) {
            rc = r;
        }
        hr_tbuf_free(&o.b);
        hr_tbuf_free(&v);
    }
    if (rc == 0 && !*nws)
        rc = 3; /* none of its strings is fn's, or none shrank */
    if (rc == 0)
        hr_tbuf_put(&out->b, t + at, n - at);
    if (rc == 0 && out->b.oom)
        rc = -12;
    if (rc)
        hr_tbuf_free(&out->b);
    return rc;
}

/* Each rewritten string's decoded text goes to CCR under its marker's hash
 * (headroom_retrieve returns that string); 1, or -1 when the store refused. */
static inline int hr_wrap_store(const struct hr_host *host, const char *t, struct hr_text_out *out,
                                const struct hr_wrap_str *ws, size_t nws)
{
    for (size_t x = 0; x < nws; x++) {
        const struct hr_wrap_str *w = &ws[x];
        struct hr_tbuf v;
        char hash[HR_CCR_HASH_LEN + 1];
        int rc = hr_wrap_unescape(t, w->raw_off, w->raw_len, &v) == 0 ? host->ccr_put(v.p, v.len, hash) : HR_EINVAL;
        hr_tbuf_free(&v);
        if (rc != HR_OK)
            return -1;
        for (uint64_t h = 0; h < w->n_hash && h < 2; h++)
            if (w->hash_at[h] + HR_CCR_HASH_LEN <= out->b.len)
                memcpy(out->b.p + w->hash_at[h], hash, HR_CCR_HASH_LEN);
    }
    return 1;
}

/* A hr_wrap_rewrite result as one malloc'd byte string for a result cache
 * (the text compressors' and smart_crusher's): rc, the strings, then the
 * text; a positive rc (left alone) is remembered too. NULL when out of
 * memory. */
static inline void *hr_wrap_pack(int rc, const struct hr_text_out *out, const struct hr_wrap_str *ws, size_t nws,
                                 size_t *len)
{
    uint64_t head[2] = {(uint64_t)(int64_t)rc, rc == 0 ? nws : 0};
    size_t sl = (size_t)head[1] * sizeof *ws, tl = rc == 0 ? out->b.len : 0;
    unsigned char *p = malloc(sizeof head + sl + tl + 1);
    if (!p)
        return NULL;
    memcpy(p, head, sizeof head);
    if (sl)
        memcpy(p + sizeof head, ws, sl);
    if (tl)
        memcpy(p + sizeof head + sl, out->b.p, tl);
    *len = sizeof head + sl + tl;
    return p;
}

/* Back from hr_wrap_pack: its rc, with out (totals summed), ws[0..*nws)
 * filled when 0; -22 for a blob that is not one, -12 out of memory. */
static inline int hr_wrap_unpack(const unsigned char *p, size_t len, struct hr_text_out *out, struct hr_wrap_str *ws,
                                 size_t *nws)
{
    uint64_t head[2];
    if (len < sizeof head)
        return -22;
    memcpy(head, p, sizeof head);
    if ((int64_t)head[0] != 0)
        return (int)(int64_t)head[0];
    size_t sl = (size_t)head[1] * sizeof *ws;
    if (head[1] > HR_WRAP_MAX || len < sizeof head + sl)
        return -22;
    memset(out, 0, sizeof *out);
    *nws = (size_t)head[1];
    memcpy(ws, p + sizeof head, sl);
    hr_tbuf_put(&out->b, p + sizeof head + sl, len - sizeof head - sl);
    if (out->b.oom) {
        hr_tbuf_free(&out->b);
        return -12;
    }
    for (size_t x = 0; x < *nws; x++) {
        out->total += ws[x].total;
        out->omitted += ws[x].omitted;
    }
    return 0;
}

/* ------------------------------------------------------------ text typing */

/* The router's typing of a text that is not JSON (a bounded sample: at most
 * sample_bytes, sample_lines), here so the text compressors type a text
 * wrapped in a JSON string as the router types a tool output: the router
 * (plugins/router/router.c) and hr_text_apply both use it. Header-only: the
 * router links no other part of this file. */

static inline int hr_tt_starts(const char *s, size_t n, const char *p)
{
    size_t l = strlen(p);
    return n >= l && memcmp(s, p, l) == 0;
}

static inline int hr_tt_starts_ci(const char *s, size_t n, const char *p)
{
    size_t l = strlen(p);
    return n >= l && strncasecmp(s, p, l) == 0;
}

/* `path:123:` or `path:123-` at line start (grep -n, rg, ag, git grep; `path:12:5:`
 * with columns), or grep -C's context line `path-123-`. A path has a '.' or '/'
 * (a timestamp such as "2024-06-01T10:00" has neither), or is a plain name such as
 * "Makefile" with a letter in it and no '-'. */
static inline int hr_tt_search_line(const char *s, size_t n)
{
    size_t i = 0;
    int pathy = 0, letter = 0, dash = 0;
    while (i < n && s[i] != ':' && !isspace((unsigned char)s[i])) {
        pathy |= s[i] == '.' || s[i] == '/';
        letter |= isalpha((unsigned char)s[i]) != 0;
        dash |= s[i] == '-';
        i++;
    }
    if (i > 0 && i < n && s[i] == ':' && (pathy || (letter && !dash))) {
        size_t d = ++i;
        while (i < n && isdigit((unsigned char)s[i]))
            i++;
        if (i > d && i < n && (s[i] == ':' || s[i] == '-'))
            return 1;
    }
    /* Context line: a "-123-" in the first word, after a path. */
    size_t w = 0;
    while (w < n && !isspace((unsigned char)s[w]))
        w++;
    for (size_t e = w; e > 0; e--) {
        if (s[e - 1] != '-' || e < 3)
            continue;
        size_t d = e - 1;
        while (d > 0 && isdigit((unsigned char)s[d - 1]))
            d--;
        if (d < e - 1 && d > 1 && s[d - 1] == '-' && (memchr(s, '.', d - 1) || memchr(s, '/', d - 1)))
            return 1;
    }
    return 0;
}

/* Under a file-name heading (rg --heading, ag --group, git grep --heading): `123:`,
 * `123-` (context) or `123:45:` (column). */
static inline int hr_tt_numbered_line(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && isdigit((unsigned char)s[i]))
        i++;
    return i > 0 && i < n && (s[i] == ':' || s[i] == '-');
}

/* A file-name heading: one word with a '.' or '/', no ':'. */
static inline int hr_tt_heading_line(const char *s, size_t n)
{
    int pathy = 0;
    for (size_t i = 0; i < n; i++) {
        if (isspace((unsigned char)s[i]) || s[i] == ':')
            return 0;
        pathy |= s[i] == '.' || s[i] == '/';
    }
    return pathy && n < 512;
}

static inline int hr_tt_level_word(const char *s, size_t n)
{
    static const char *const lv[] = {"ERROR", "WARN", "INFO", "DEBUG", "TRACE", "FATAL",
                                     "CRITICAL", "NOTICE", NULL};
    for (size_t i = 0; i < n; i++) {
        if (i && isalpha((unsigned char)s[i - 1]))
            continue;
        for (const char *const *w = lv; *w; w++)
            if (hr_tt_starts(s + i, n - i, *w) &&
                (i + strlen(*w) == n || !isalpha((unsigned char)s[i + strlen(*w)])))
                return 1;
    }
    return 0;
}

/* A date or a clock time near the start of the line. */
static inline int hr_tt_timestamp_prefix(const char *s, size_t n)
{
    size_t lim = n < 32 ? n : 32;
    for (size_t i = 0; i + 5 <= lim; i++) {
        const unsigned char *p = (const unsigned char *)s + i;
        if (i + 10 <= n && isdigit(p[0]) && isdigit(p[1]) && isdigit(p[2]) && isdigit(p[3]) &&
            (p[4] == '-' || p[4] == '/') && isdigit(p[5]) && isdigit(p[6]))
            return 1;
        if (isdigit(p[0]) && isdigit(p[1]) && p[2] == ':' && isdigit(p[3]) && isdigit(p[4]))
            return 1;
    }
    return 0;
}

/* Compiler, linker and make output: gcc/clang diagnostics "path:12:5: error: …"
 * (warning, note, fatal error; "path:12: …" too), gcc's context lines
 * "path: In function 'f':", "path: At top level:", "In file included from …" and
 * the "                 from …" lines under it, rustc's "error[E0425]: …", make's
 * "make: *** …", "make[2]: …" and "Makefile:3: *** …", and ld, collect2, cc1. */
static inline int hr_tt_diag_line(const char *s, size_t n)
{
    static const char *const what[] = {"error:", "warning:", "note:", "fatal error:", "*** ", "In function ",
        "In member function ", "In static member function ", "In constructor ", "In destructor ",
        "In lambda function", "In instantiation of ", "At top level:", "At global scope:", NULL};
    static const char *const tools[] = {"make", "gmake", "ninja", "ld", "collect2", "cc1", "cc1plus", "gcc", "g++",
                                        "cc", "clang", NULL};
    if (hr_tt_starts(s, n, "In file included from ") || hr_tt_starts(s, n, "error[E") || hr_tt_starts(s, n, "error: ") ||
        hr_tt_starts(s, n, "warning: "))
        return 1;
    size_t i = 0;
    while (i < n && s[i] == ' ')
        i++;
    if (i >= 8 && hr_tt_starts(s + i, n - i, "from ")) { /* "                 from x.h:3," */
        const char *c = memchr(s + i, ':', n - i);
        return c && c + 1 < s + n && isdigit((unsigned char)c[1]);
    }
    if (i)
        return 0;
    int pathy = 0;
    while (i < n && s[i] != ':' && !isspace((unsigned char)s[i])) {
        pathy |= s[i] == '.' || s[i] == '/';
        i++;
    }
    if (i == 0 || i >= n || s[i] != ':')
        return 0;
    size_t w = i; /* the first word, s[0..w) */
    for (const char *const *t = tools; *t; t++) { /* "make: ", "make[1]: ", "/usr/bin/ld: " */
        size_t l = strlen(*t);
        if (w >= l && !memcmp(s + w - l, *t, l) && (w == l || s[w - l - 1] == '/'))
            return 1;
        if (w > l + 2 && !memcmp(s, *t, l) && s[l] == '[' && s[w - 1] == ']')
            return 1;
    }
    if (!pathy && !hr_tt_starts(s, w, "Makefile") && !hr_tt_starts(s, w, "makefile") && !hr_tt_starts(s, w, "<command-line>"))
        return 0;
    i++;
    for (int k = 0; k < 2 && i < n && isdigit((unsigned char)s[i]); k++) { /* ":12:", ":12:5:" */
        size_t d = i;
        while (i < n && isdigit((unsigned char)s[i]))
            i++;
        if (i >= n || s[i] != ':') {
            i = d;
            break;
        }
        i++;
    }
    if (i >= n || s[i] != ' ')
        return 0;
    i++;
    for (const char *const *t = what; *t; t++)
        if (hr_tt_starts(s + i, n - i, *t))
            return 1;
    return 0;
}

/* One record of a JSON-lines log: a line that is a JSON object ({"…":…})
 * with a level or time key (Caddy, Traefik, nginx log_format json, pino,
 * zap, logrus, slog, bunyan, Docker's json-file, ECS, Serilog's CLEF).
 * Such a line ends in '}' (a code line) and may hold "path-12-" in a date
 * (a grep context line): a JSON-lines log typed as code or search went
 * upstream whole. JSON rows without such a key (jq -c of data) are not
 * read as log lines. */
static inline int hr_tt_json_log_line(const char *s, size_t n)
{
    static const char *const keys[] = {"\"level\":", "\"severity\":", "\"lvl\":", "\"log.level\":",
        "\"levelname\":", "\"loglevel\":", "\"ts\":", "\"@timestamp\":", "\"@t\":", "\"time", "\"timestamp\":",
        "\"datetime\":", NULL};
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        n--;
    if (n < 8 || s[0] != '{' || s[1] != '"' || s[n - 1] != '}')
        return 0;
    for (const char *const *k = keys; *k; k++) {
        size_t kl = strlen(*k);
        for (const char *p = s; (p = memmem(p, n - (size_t)(p - s), *k, kl)); p++) {
            if (p[kl - 1] == ':')
                return 1;
            /* "time…": a key that begins so ("time", "time_local", "timeMillis"),
             * not a value ("timeout") */
            size_t i = (size_t)(p - s) + kl, end = i + 24;
            while (i < n && i < end && (isalnum((unsigned char)s[i]) || s[i] == '_'))
                i++;
            if (i + 1 < n && s[i] == '"' && s[i + 1] == ':')
                return 1;
        }
    }
    return 0;
}

static inline int hr_tt_code_line(const char *s, size_t n)
{
    static const char *const kw[] = {"def ", "class ", "import ", "from ", "#include", "function ",
        "fn ", "pub ", "return", "const ", "let ", "var ", "package ", "func ", "public ",
        "private ", "static ", "if (", "for (", "while (", "} else", "#define", "using ", NULL};
    while (n && isspace((unsigned char)*s))
        s++, n--;
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    if (!n)
        return 0;
    for (const char *const *k = kw; *k; k++)
        if (hr_tt_starts(s, n, *k))
            return 1;
    char last = s[n - 1];
    return last == '{' || last == '}' || last == ';' || (last == ':' && n > 1 && s[0] != '#') ||
           hr_tt_starts(s, n, "//") || hr_tt_starts(s, n, "/*");
}

static inline enum hr_content_type hr_text_sniff_type(const char *text, size_t len, size_t sample_bytes, size_t sample_lines)
{
    size_t lim = len < sample_bytes ? len : sample_bytes;
    size_t lines = 0, blank = 0, diff_hdr = 0, hunk = 0, search = 0, log = 0, code = 0, tag = 0, diag = 0;
    int in_group = 0, prev_heading = 0, prev_search = 0; /* heading-grouped search output */
    int in_diag = 0; /* after a compiler diagnostic: its source echo and caret lines */
    while (lim && isspace((unsigned char)*text))
        text++, lim--, len--;
    if (hr_tt_starts_ci(text, lim, "<!doctype html") || hr_tt_starts_ci(text, lim, "<html"))
        return HR_CT_HTML;
    if (hr_tt_starts(text, lim, "diff --git ") || hr_tt_starts(text, lim, "--- a/") || hr_tt_starts(text, lim, "Index: "))
        diff_hdr++;
    for (size_t i = 0; i < lim && lines < sample_lines;) {
        const char *s = text + i;
        const char *nl = memchr(s, '\n', lim - i);
        size_t n = nl ? (size_t)(nl - s) : lim - i;
        i += n + 1;
        if (!nl && i < len && lines > 0)
            break; /* a cut line at the end of the sample says little */
        lines++;
        if (n == 0 || (n == 1 && s[0] == '\r')) {
            blank++;
            in_group = prev_heading = in_diag = 0;
            continue;
        }
        /* Build output: a log line, neither search output (gcc's "x.c:3:5:") nor
         * code (its source echoes end in ';' or '}', "In function 'f':" in ':'). */
        size_t dn = s[n - 1] == '\r' ? n - 1 : n;
        if (hr_tt_diag_line(s, dn) || (in_diag && hr_cc_echo_line(s, dn))) {
            diag++;
            in_diag = 1;
            in_group = prev_heading = prev_search = 0;
            continue;
        }
        in_diag = 0;
        if (hr_tt_json_log_line(s, n)) {
            log++;
            in_group = prev_heading = prev_search = 0;
            continue;
        }
        size_t before_search = search;
        if (hr_tt_starts(s, n, "diff --git ") || hr_tt_starts(s, n, "+++ ") || hr_tt_starts(s, n, "--- "))
            diff_hdr++;
        else if (hr_tt_starts(s, n, "@@ ") && memmem(s + 3, n - 3, " @@", 3))
            hunk++;
        if (hr_tt_search_line(s, n)) {
            search++;
        } else if (hr_tt_numbered_line(s, n) && (in_group || prev_heading)) {
            search += 1 + prev_heading; /* the heading above it counts too */
            in_group = 1;
        } else if (n == 2 && s[0] == '-' && s[1] == '-') {
            search += in_group || prev_search; /* context-group separator */
        } else {
            in_group = 0;
        }
        prev_search = search > before_search;
        prev_heading = hr_tt_heading_line(s, n);
        if (hr_tt_timestamp_prefix(s, n) || hr_tt_level_word(s, n < 40 ? n : 40))
            log++;
        if (hr_tt_code_line(s, n))
            code++;
        if (s[0] == '<' && n > 1 && (isalpha((unsigned char)s[1]) || s[1] == '/' || s[1] == '!'))
            tag++;
    }
    size_t used = lines - blank;
    if (used == 0)
        return HR_CT_TEXT;
    if (hunk && diff_hdr)
        return HR_CT_DIFF;
    if (search * 2 >= used)
        return HR_CT_SEARCH;
    if (tag * 2 >= used && memmem(text, lim, "</", 2))
        return HR_CT_HTML;
    if ((log + diag) * 2 >= used || (diag >= 2 && diag >= code && diag * 10 >= used * 3))
        return HR_CT_LOG; /* compiler output among commands, before the code bar */
    if (code >= 2 && code * 10 >= used * 3)
        return HR_CT_CODE;
    return HR_CT_TEXT;
}
#endif
