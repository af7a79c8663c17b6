/* media_size.c — what an image or a PDF sent as base64 measures: an image's
 * width and height from its header, a PDF's pages. Shared by the host's
 * request count (src/api) and plugins that count requests (rolling_window). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "base64.h"
#include "hash.h"
#include "media_size.h"

/* The base64 payload of `data`: after the comma of a data: URL. */
static const char *base64_payload(const char *data, size_t len, size_t *n)
{
    if (len > 5 && !memcmp(data, "data:", 5)) {
        const char *comma = memchr(data, ',', len);
        if (!comma) return NULL;
        *n = len - (size_t)(comma + 1 - data);
        return comma + 1;
    }
    *n = len;
    return data;
}

/* Bytes [off, off + cnt) of the decoded payload into out (cnt <= 64); 0
 * when they are past its end or not base64. Random access: a JPEG's size
 * may come after tens of kilobytes of metadata, skipped unread. */
static int b64_read(const char *s, size_t n, size_t off, unsigned char *out, size_t cnt)
{
    unsigned char buf[72];
    size_t g0 = off / 3, g1 = (off + cnt + 2) / 3, k = 0;
    if (cnt > 64 || g1 > n / 4 + (n % 4 != 0)) return 0;
    for (size_t g = g0; g < g1; g++) {
        uint32_t v = 0;
        int pad = 0;
        for (size_t i = 0; i < 4; i++) {
            size_t at = g * 4 + i;
            int d = at < n ? hr_b64_value((unsigned char)s[at], HR_B64_URL) : -1;
            if (d < 0) {
                if (at < n && s[at] != '=') return 0;
                d = 0;
                pad++;
            }
            v = v << 6 | (uint32_t)d;
        }
        buf[k++] = (unsigned char)(v >> 16);
        buf[k++] = (unsigned char)(v >> 8);
        buf[k++] = (unsigned char)v;
        if (pad && (g + 1) * 3 - (size_t)pad < off + cnt) return 0;
    }
    memcpy(out, buf + off % 3, cnt);
    return 1;
}

static uint32_t be16(const unsigned char *p) { return (uint32_t)p[0] << 8 | p[1]; }
static uint32_t le16(const unsigned char *p) { return (uint32_t)p[1] << 8 | p[0]; }
static uint32_t le24(const unsigned char *p) { return (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0]; }
static uint32_t be32(const unsigned char *p) { return be16(p) << 16 | be16(p + 2); }

/* A JPEG's size from its first start-of-frame segment (SOF0-15 but DHT,
 * JPG, DAC), walking the segments from the start. */
static int jpeg_size(const char *s, size_t n, uint32_t *w, uint32_t *h)
{
    size_t at = 2;
    unsigned char m[9];
    for (int seg = 0; seg < 256 && b64_read(s, n, at, m, 4); seg++) {
        if (m[0] != 0xFF) return 0;
        if (m[1] == 0xFF) { /* fill byte */
            at++;
            continue;
        }
        if ((m[1] >= 0xD0 && m[1] <= 0xD7) || m[1] == 0x01) { /* no length */
            at += 2;
            continue;
        }
        if (m[1] >= 0xC0 && m[1] <= 0xCF && m[1] != 0xC4 && m[1] != 0xC8 && m[1] != 0xCC) {
            if (!b64_read(s, n, at, m, 9)) return 0;
            *h = be16(m + 5);
            *w = be16(m + 7);
            return *w && *h;
        }
        if (m[1] == 0xD9 || m[1] == 0xDA) return 0; /* end, or scan data before any frame */
        at += 2 + be16(m + 2);
    }
    return 0;
}

int hr_media_image_size(const char *data, size_t len, uint32_t *w, uint32_t *h)
{
    size_t n;
    const char *s = base64_payload(data, len, &n);
    unsigned char b[30];
    *w = *h = 0;
    if (!s || !b64_read(s, n, 0, b, 12)) return 0;
    if (!memcmp(b, "\x89PNG\r\n\x1a\n", 8)) {
        if (!b64_read(s, n, 0, b, 24) || memcmp(b + 12, "IHDR", 4)) return 0;
        *w = be32(b + 16);
        *h = be32(b + 20);
    } else if (b[0] == 0xFF && b[1] == 0xD8) {
        return jpeg_size(s, n, w, h);
    } else if (!memcmp(b, "GIF87a", 6) || !memcmp(b, "GIF89a", 6)) {
        *w = le16(b + 6);
        *h = le16(b + 8);
    } else if (!memcmp(b, "RIFF", 4) && !memcmp(b + 8, "WEBP", 4)) {
        if (!b64_read(s, n, 0, b, 30)) return 0;
        if (!memcmp(b + 12, "VP8 ", 4) && b[23] == 0x9D && b[24] == 0x01 && b[25] == 0x2A) {
            *w = le16(b + 26) & 0x3FFF;
            *h = le16(b + 28) & 0x3FFF;
        } else if (!memcmp(b + 12, "VP8L", 4) && b[20] == 0x2F) {
            uint32_t bits = (uint32_t)b[21] | (uint32_t)b[22] << 8 | (uint32_t)b[23] << 16 | (uint32_t)b[24] << 24;
            *w = (bits & 0x3FFF) + 1;
            *h = (bits >> 14 & 0x3FFF) + 1;
        } else if (!memcmp(b + 12, "VP8X", 4)) {
            *w = le24(b + 24) + 1;
            *h = le24(b + 27) + 1;
        }
    }
    if (*w > 100000 || *h > 100000) *w = *h = 0; /* not a real header */
    return *w && *h;
}

/* The first `w` (wl bytes) in p[from, to), else `to`; searched 64 KB at a
 * time, so that a search ending near `from` costs as much, also under
 * ASan, whose memmem checks the whole haystack first. */
static size_t find_bytes(const unsigned char *p, size_t from, size_t to, const char *w, size_t wl)
{
    for (size_t lo = from; lo < to && to - lo >= wl; lo += 65536) {
        size_t hi = to - lo > 65536 + wl ? lo + 65536 + wl : to; /* a match across the boundary too */
        const unsigned char *q = memmem(p + lo, hi - lo, w, wl);
        if (q) return (size_t)(q - p);
    }
    return to;
}

/* `/Type /Page` not followed by a name character (so not /Pages), starting
 * before `limit` (the text may go on to n). */
static uint64_t count_page_objects(const unsigned char *p, size_t n, size_t limit)
{
    uint64_t pages = 0;
    for (size_t i = find_bytes(p, 0, n, "/Type", 5); i < n; i = find_bytes(p, i + 5, n, "/Type", 5)) {
        if (i >= limit) break;
        const unsigned char *q = p + i + 5, *end = p + n;
        while (q < end && (*q == ' ' || *q == '\r' || *q == '\n' || *q == '\t')) q++;
        if ((size_t)(end - q) >= 5 && !memcmp(q, "/Page", 5)) {
            q += 5;
            if (q == end || !((*q >= 'A' && *q <= 'Z') || (*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9')))
                pages++;
        }
    }
    return pages;
}

/* PDF 1.5 on packs objects, the pages too, in deflated object streams
 * (`/Type /ObjStm`): their page objects, reading at most 8 MB inflated
 * (object streams hold dictionaries, not page contents: a few hundred KB
 * for hundreds of pages). */
#define PDF_INFLATE_MAX (8u << 20)

/* One definition of an object: its number, where the file defines it, its
 * text (the dictionary: a plain object's up to its stream or endobj, an
 * object stream member's whole), and whether it is a page. An incremental
 * update appends a new body after %%EOF whose objects replace earlier ones
 * of the same number, so both versions of an edited page are in the file: a
 * reader takes the last. */
struct pdf_def {
    uint64_t num, at;
    const unsigned char *text;
    size_t tl;
    unsigned char page, freed, seen;
};
/* An xref table's free entry ('f'): object `num` deleted by the section at
 * `at` (the definitions before it). */
struct pdf_free {
    uint64_t num, at;
};
struct pdf_defs {
    struct pdf_def *v;
    size_t n, cap;
    struct pdf_free *fv;
    size_t fn, fcap;
    unsigned char **bufs; /* inflated object streams, which member texts point into */
    size_t nbufs, capbufs;
    uint64_t anon; /* pages found without an object number */
    size_t inflated;
    uint64_t root, root_at; /* the last trailer's /Root (root_at 0: none yet) */
};

static int grow(void **v, size_t *cap, size_t n, size_t size)
{
    if (n < *cap) return 1;
    size_t c = *cap ? 2 * *cap : 256;
    void *g = realloc(*v, c * size);
    if (!g) return 0;
    *v = g;
    *cap = c;
    return 1;
}

static void def_add(struct pdf_defs *d, uint64_t num, uint64_t at, const unsigned char *text, size_t tl, int page)
{
    if (!grow((void **)&d->v, &d->cap, d->n, sizeof *d->v)) {
        d->anon += page != 0; /* out of memory: the page still counts, as one of its own */
        return;
    }
    d->v[d->n++] = (struct pdf_def){num, at, text, tl, (unsigned char)(page != 0), 0, 0};
}

static int pdf_space(unsigned char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\f' || c == 0; }
static int pdf_regular(unsigned char c) { return !pdf_space(c) && !strchr("()<>[]{}/%", c); }

/* The digits ending just before p[i] (after spaces, when `spaces`): their
 * value in *v and where they start in *from; 0 when there are none, or more
 * than 10 (not an object number PDF allows). */
static int int_before(const unsigned char *p, size_t i, int spaces, uint64_t *v, size_t *from)
{
    size_t e = i;
    if (spaces) {
        while (e > 0 && pdf_space(p[e - 1])) e--;
        if (e == i) return 0;
    }
    size_t b = e;
    while (b > 0 && e - b <= 10 && p[b - 1] >= '0' && p[b - 1] <= '9') b--;
    if (b == e || (b > 0 && pdf_regular(p[b - 1]))) return 0; /* a digit there: more than 10 */
    *v = 0;
    for (size_t k = b; k < e; k++) *v = *v * 10 + (uint64_t)(p[k] - '0');
    *from = b;
    return 1;
}

/* The next object header `N G obj` at or after `from`: its number in *num,
 * where it starts in *start and where its body starts in *body; 0 at the
 * end. */
static int next_header(const unsigned char *p, size_t n, size_t from, uint64_t *num, size_t *start, size_t *body)
{
    for (size_t i = find_bytes(p, from, n, "obj", 3), at; i < n; i = find_bytes(p, i + 3, n, "obj", 3)) {
        uint64_t gen;
        if ((i + 3 < n && pdf_regular(p[i + 3])) || !int_before(p, i, 1, &gen, &at) ||
            !int_before(p, at, 1, num, start))
            continue;
        *body = i + 3;
        return 1;
    }
    return 0;
}

/* The first `word` in p[from, to) that is a keyword of its own (not the end
 * of a longer one: "stream" in "endstream"), else `to`. */
static size_t find_word(const unsigned char *p, size_t from, size_t to, const char *word)
{
    size_t wl = strlen(word);
    for (size_t i = find_bytes(p, from, to, word, wl); i < to; i = find_bytes(p, i + wl, to, word, wl))
        if ((i == 0 || !pdf_regular(p[i - 1])) && (i + wl >= to || !pdf_regular(p[i + wl]))) return i;
    return to;
}

/* Where the value of the name `key` starts in the dictionary text d[0..n)
 * (after spaces), at or after *from, moving *from past the key; NULL when
 * no more. */
static const unsigned char *dict_value(const unsigned char *d, size_t n, const char *key, size_t *from)
{
    size_t kl = strlen(key);
    for (size_t i = find_bytes(d, *from, n, key, kl); i < n; i = find_bytes(d, i + kl, n, key, kl)) {
        const unsigned char *v = d + i + kl, *end = d + n;
        *from = (size_t)(v - d);
        if (v < end && pdf_regular(*v)) continue; /* a longer name */
        while (v < end && pdf_space(*v)) v++;
        return v;
    }
    *from = n;
    return NULL;
}

/* The integer after the name `key` in the dictionary text d[0..n), else -1. */
static long long dict_int(const unsigned char *d, size_t n, const char *key)
{
    size_t from = 0;
    const unsigned char *v = dict_value(d, n, key, &from), *end = d + n, *b = v;
    if (!v) return -1;
    long long x = 0;
    while (v < end && *v >= '0' && *v <= '9' && v - b < 12) x = x * 10 + (*v++ - '0');
    return v > b ? x : -1;
}

/* The unsigned integer at p[*pos] (after spaces) before `end`, moving *pos past it. */
static int read_uint(const unsigned char *p, size_t end, size_t *pos, uint64_t *v)
{
    size_t i = *pos;
    while (i < end && pdf_space(p[i])) i++;
    size_t b = i;
    uint64_t x = 0;
    while (i < end && p[i] >= '0' && p[i] <= '9' && i - b < 12) x = x * 10 + (uint64_t)(p[i++] - '0');
    if (i == b) return 0;
    *pos = i;
    *v = x;
    return 1;
}

/* An indirect reference `N G R` at p[*pos] (after spaces) before `end`: N
 * in *num, *pos moved past it. */
static int read_ref(const unsigned char *p, size_t end, size_t *pos, uint64_t *num)
{
    size_t i = *pos;
    uint64_t gen;
    if (!read_uint(p, end, &i, num) || !read_uint(p, end, &i, &gen)) return 0;
    while (i < end && pdf_space(p[i])) i++;
    if (i >= end || p[i] != 'R' || (i + 1 < end && pdf_regular(p[i + 1]))) return 0;
    *pos = i + 1;
    return 1;
}

/* The reference that is the value of `key` in d[0..n) (the first one that
 * is a reference: /Type /Pages is not the catalog's /Pages 2 0 R). */
static int dict_ref(const unsigned char *d, size_t n, const char *key, uint64_t *num)
{
    size_t from = 0;
    for (const unsigned char *v; (v = dict_value(d, n, key, &from)) != NULL;) {
        size_t pos = (size_t)(v - d);
        if (read_ref(d, n, &pos, num)) return 1;
    }
    return 0;
}

/* `/Type /<name>`, the name whole (/Page is not /Pages), in d[0..n). */
static int has_type(const unsigned char *d, size_t n, const char *name)
{
    size_t from = 0, nl = strlen(name);
    for (const unsigned char *v; (v = dict_value(d, n, "/Type", &from)) != NULL;)
        if ((size_t)(d + n - v) >= nl && !memcmp(v, name, nl) && (v + nl == d + n || !pdf_regular(v[nl])))
            return 1;
    return 0;
}

/* Object `num` of an object stream's data s[0..n), at offset `off` from
 * `first` and ending where the next one (`next`) starts. */
static void member_page(struct pdf_defs *d, const unsigned char *s, size_t n, size_t first, uint64_t num,
                        uint64_t off, uint64_t next, uint64_t at)
{
    if (off >= n - first) return;
    size_t b = first + (size_t)off, e = next < n - first && next >= off ? first + (size_t)next : n;
    def_add(d, num, at, s + b, e - b, count_page_objects(s + b, e - b, e - b) > 0);
}

/* The page objects of one object stream, its deflated data s[0..n) (its
 * dictionary says how many objects, /N, and where the first starts,
 * /First): each under its own number, defined where the stream is. */
static void object_stream_pages(struct pdf_defs *d, const unsigned char *dict, size_t dl, const unsigned char *s,
                                size_t n, uint64_t at)
{
    if (d->inflated >= PDF_INFLATE_MAX) return;
    size_t cap = 0, len = 0;
    unsigned char *out = NULL;
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit(&z) != Z_OK) return;
    z.next_in = (unsigned char *)(uintptr_t)s;
    z.avail_in = n > UINT_MAX ? UINT_MAX : (uInt)n;
    int rc = Z_OK;
    while (rc == Z_OK && d->inflated + len < PDF_INFLATE_MAX) {
        if (len == cap) {
            size_t want = cap ? 2 * cap : 65536;
            if (want > PDF_INFLATE_MAX - d->inflated) want = PDF_INFLATE_MAX - d->inflated;
            unsigned char *grown = want > cap ? realloc(out, want) : NULL;
            if (!grown) break;
            out = grown;
            cap = want;
        }
        z.next_out = out + len;
        z.avail_out = (uInt)(cap - len);
        rc = inflate(&z, Z_NO_FLUSH);
        size_t fresh = cap - len - z.avail_out;
        len += fresh;
        if (!fresh && rc == Z_OK) break; /* no progress: input cut short */
    }
    inflateEnd(&z);
    d->inflated += len;
    if (!len || !grow((void **)&d->bufs, &d->capbufs, d->nbufs, sizeof *d->bufs)) {
        free(out);
        return;
    }
    d->bufs[d->nbufs++] = out; /* the members' texts, read again by the page tree walk */
    long long count = dict_int(dict, dl, "/N"), first = dict_int(dict, dl, "/First");
    if (count < 0 || first < 0 || (size_t)first > len) {
        d->anon += count_page_objects(out, len, len); /* no header to read: each page counts */
        return;
    }
    /* The header: `num off` pairs, an object's text running from its offset
     * to the next one's (the last to the end). */
    size_t pos = 0, idx = 0, fl = (size_t)first;
    uint64_t pnum = 0, poff = 0, nm, of;
    int have = 0;
    for (long long i = 0; i < count && read_uint(out, fl, &pos, &nm) && read_uint(out, fl, &pos, &of); i++) {
        if (have) member_page(d, out, len, fl, pnum, poff, of, at | (idx < 0xFFFFF ? idx : 0xFFFFF)), idx++;
        pnum = nm, poff = of, have = 1;
    }
    if (have) member_page(d, out, len, fl, pnum, poff, UINT64_MAX, at | (idx < 0xFFFFF ? idx : 0xFFFFF));
}

/* What lies between objects, p[from, to): trailers (the last one's /Root is
 * the document's) and xref tables, whose free entries ('f') delete the
 * objects defined before them (an update deleting a page frees its object).
 * Xref streams' free entries are not read: the page tree is what counts,
 * and a writer deleting a page takes it out of /Kids. */
static void between_objects(struct pdf_defs *d, const unsigned char *p, size_t from, size_t to)
{
    for (size_t t = find_word(p, from, to, "trailer"), next; t < to; t = next) {
        next = find_word(p, t + 7, to, "trailer");
        size_t end = next - t > 4096 ? t + 4096 : next; /* its dictionary: each byte read once */
        uint64_t root;
        if (dict_ref(p + t, end - t, "/Root", &root)) d->root = root, d->root_at = (uint64_t)t << 20 | 1;
    }
    for (size_t x = find_word(p, from, to, "xref"), pos; x < to; x = find_word(p, pos, to, "xref")) {
        pos = x + 4;
        uint64_t first, count, off, gen;
        /* Subsections `first count`, then `offset gen n|f` entries; a malformed one ends the table. */
        while (read_uint(p, to, &pos, &first) && read_uint(p, to, &pos, &count)) {
            for (uint64_t k = 0; k < count; k++) {
                if (!read_uint(p, to, &pos, &off) || !read_uint(p, to, &pos, &gen)) goto next_table;
                while (pos < to && pdf_space(p[pos])) pos++;
                if (pos >= to || (p[pos] != 'n' && p[pos] != 'f')) goto next_table;
                if (p[pos++] == 'f' && first + k != 0 &&
                    grow((void **)&d->fv, &d->fcap, d->fn, sizeof *d->fv))
                    d->fv[d->fn++] = (struct pdf_free){first + k, (uint64_t)x << 20};
            }
        }
    next_table:;
    }
}

static int def_order(const void *a, const void *b)
{
    const struct pdf_def *x = a, *y = b;
    if (x->num != y->num) return x->num < y->num ? -1 : 1;
    return x->at < y->at ? -1 : x->at > y->at;
}

static int free_order(const void *a, const void *b)
{
    const struct pdf_free *x = a, *y = b;
    if (x->num != y->num) return x->num < y->num ? -1 : 1;
    return x->at < y->at ? -1 : x->at > y->at;
}

/* The last definition of object `num` (d->v holds only those, by number). */
static struct pdf_def *def_find(struct pdf_defs *d, uint64_t num)
{
    size_t lo = 0, hi = d->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (d->v[mid].num < num) lo = mid + 1;
        else hi = mid;
    }
    return lo < d->n && d->v[lo].num == num ? &d->v[lo] : NULL;
}

/* The pages of the page tree the last trailer's /Root names, as a reader
 * finds them: from the catalog's /Pages down each /Kids, a leaf a page
 * when it is a dictionary whose /Type, if any, is /Page; a deleted (freed)
 * kid is null. Each object is visited once, so a cycle or a shared kid
 * cannot loop or count twice. 0 when there is no such tree or a reference
 * in it leads to no object (one this reader could not read: a stream past
 * the inflate bound, say), and the caller goes by the page objects
 * instead. */
static uint64_t page_tree_pages(struct pdf_defs *d)
{
    uint64_t pages = 0, num;
    struct pdf_def *cat = d->root_at ? def_find(d, d->root) : NULL;
    if (!cat || cat->freed || !dict_ref(cat->text, cat->tl, "/Pages", &num)) return 0;
    uint64_t *stack = malloc(64 * sizeof *stack);
    size_t sn = 0, scap = 64;
    if (!stack) return 0;
    stack[sn++] = num;
    while (sn) {
        struct pdf_def *node = def_find(d, stack[--sn]);
        if (!node) {
            pages = 0; /* a dangling reference: not a tree to trust */
            break;
        }
        if (node->freed || node->seen) continue;
        node->seen = 1;
        size_t from = 0, tl = node->tl, at = 0;
        const unsigned char *t = node->text, *kids = dict_value(t, tl, "/Kids", &from);
        while (at < tl && pdf_space(t[at])) at++;
        if (tl - at < 2 || memcmp(t + at, "<<", 2)) continue; /* not a dictionary: neither page nor node */
        from = 0;
        if (has_type(t, tl, "/Page") || (!kids && !dict_value(t, tl, "/Type", &from))) {
            pages++; /* a page (a /Kids in it is a form field's, not the tree's) */
            continue;
        }
        if (!kids) continue;
        size_t pos = (size_t)(kids - t);
        if (read_ref(t, tl, &pos, &num)) { /* /Kids 12 0 R: the array is an object of its own */
            struct pdf_def *arr = def_find(d, num);
            if (!arr || arr->freed) continue;
            t = arr->text, tl = arr->tl, pos = 0;
            while (pos < tl && pdf_space(t[pos])) pos++;
        }
        if (pos >= tl || t[pos] != '[') continue;
        for (pos++; read_ref(t, tl, &pos, &num);) {
            if (sn == scap) {
                uint64_t *g = realloc(stack, 2 * scap * sizeof *stack);
                if (!g) break;
                stack = g;
                scap *= 2;
            }
            stack[sn++] = num;
        }
    }
    free(stack);
    return pages;
}

/* The pages of the PDF p[0..n): the page tree of its last trailer's /Root,
 * else each object whose last definition is a page and not freed counted
 * once, objects in object streams too; 0 when it has no object headers at
 * all. */
static uint64_t pdf_page_objects(const unsigned char *p, size_t n)
{
    struct pdf_defs d;
    memset(&d, 0, sizeof d);
    size_t start, body;
    size_t endobj = 0, stream = 0, endstream = 0; /* the next of each at or after where it was last looked for */
    uint64_t num, next_num;
    size_t next_start, next_body;
    int more = next_header(p, n, 0, &num, &start, &body);
    if (more) between_objects(&d, p, 0, start);
    while (more) {
        /* An object's text runs to its endobj or the next header, whichever
         * comes first; a stream's data (which may hold anything) to its
         * endstream, and no header is looked for inside it. */
        int has_next = next_header(p, n, body, &next_num, &next_start, &next_body);
        size_t to = has_next ? next_start : n;
        if (endobj < body) endobj = find_word(p, body, n, "endobj");
        if (stream < body) stream = find_word(p, body, n, "stream");
        size_t end = endobj < to ? endobj : to;
        size_t dict_end = stream < end ? stream : end, after = end;
        uint64_t at = (uint64_t)start << 20, root;
        size_t dl = dict_end - body;
        def_add(&d, num, at, p + body, dl, count_page_objects(p + body, dl, dl) > 0);
        /* PDF 1.5's xref stream is the trailer too: it has the /Root. */
        if (has_type(p + body, dict_end - body, "/XRef") && dict_ref(p + body, dict_end - body, "/Root", &root))
            d.root = root, d.root_at = at | 1;
        if (stream < end) {
            size_t data = stream + 6;
            if (data < n && p[data] == '\r') data++;
            if (data < n && p[data] == '\n') data++;
            if (endstream < data) endstream = find_word(p, data, n, "endstream");
            if (memmem(p + body, dict_end - body, "/ObjStm", 7))
                object_stream_pages(&d, p + body, dict_end - body, p + data, endstream - data, at);
            has_next = next_header(p, n, endstream, &next_num, &next_start, &next_body);
            after = endstream;
            to = has_next ? next_start : n;
        }
        if (after < to) between_objects(&d, p, after, to);
        more = has_next;
        num = next_num, start = next_start, body = next_body;
    }
    /* Each object number's last definition, deleted when an xref table
     * after it frees the number. */
    size_t k = 0;
    if (d.n) qsort(d.v, d.n, sizeof *d.v, def_order);
    if (d.fn) qsort(d.fv, d.fn, sizeof *d.fv, free_order);
    for (size_t i = 0, f = 0; i < d.n; i++) {
        if (i + 1 < d.n && d.v[i + 1].num == d.v[i].num) continue;
        struct pdf_def def = d.v[i];
        while (f < d.fn && d.fv[f].num < def.num) f++;
        for (; f < d.fn && d.fv[f].num == def.num; f++) def.freed |= d.fv[f].at > def.at;
        d.v[k++] = def;
    }
    d.n = k;
    uint64_t pages = page_tree_pages(&d);
    if (!pages) {
        pages = d.anon;
        for (size_t i = 0; i < d.n; i++) pages += d.v[i].page && !d.v[i].freed;
    }
    int any = d.n || d.anon;
    for (size_t i = 0; i < d.nbufs; i++) free(d.bufs[i]);
    free(d.bufs);
    free(d.fv);
    free(d.v);
    return any ? pages : 0;
}

/* Page counts remembered by content: an agent resends a PDF with every turn,
 * and reading one (decode, inflate its object streams) costs ~12 ms a MB
 * where hashing it costs a fraction of one. Lossy, a few slots: a slot
 * another PDF took is a miss, counted again. */
#define PAGES_MEMO 64
static struct {
    uint64_t h1, h2, len, pages;
} pages_memo[PAGES_MEMO];
static pthread_mutex_t pages_memo_lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t count_pages(const char *s, size_t n);

uint64_t hr_media_pdf_pages(const char *data, size_t len)
{
    size_t n;
    const char *s = base64_payload(data, len, &n);
    if (!s || n < 4) return 1;
    uint64_t h1, h2, pages = 0;
    hr_hash128(s, n, &h1, &h2);
    pthread_mutex_lock(&pages_memo_lock);
    unsigned slot = (unsigned)(h1 % PAGES_MEMO);
    if (pages_memo[slot].pages && pages_memo[slot].h1 == h1 && pages_memo[slot].h2 == h2 && pages_memo[slot].len == n)
        pages = pages_memo[slot].pages;
    pthread_mutex_unlock(&pages_memo_lock);
    if (pages) return pages;
    pages = count_pages(s, n);
    pthread_mutex_lock(&pages_memo_lock);
    pages_memo[slot].h1 = h1;
    pages_memo[slot].h2 = h2;
    pages_memo[slot].len = n;
    pages_memo[slot].pages = pages;
    pthread_mutex_unlock(&pages_memo_lock);
    return pages;
}

/* The pages of the PDF whose base64 is s[0..n), at least 1. */
static uint64_t count_pages(const char *s, size_t n)
{
    unsigned char *buf = malloc(n / 4 * 3 + 3);
    if (!buf) return 1;
    /* Either alphabet; padding, line breaks (a data: URL's) and anything else skipped. */
    size_t k = (size_t)hr_b64_decode(s, n, buf, HR_B64_URL | HR_B64_SKIP);
    uint64_t pages = pdf_page_objects(buf, k);
    if (!pages) pages = count_page_objects(buf, k, k); /* no object headers to go by */
    if (!pages) {
        /* None found (object streams in another coding, say): a
         * linearized file says how many pages it has (/N) in its first object. */
        size_t head = k < 1024 ? k : 1024;
        const unsigned char *lin = memmem(buf, head, "/Linearized", 11);
        const unsigned char *np = lin ? memmem(lin, head - (size_t)(lin - buf), "/N ", 3) : NULL;
        for (const unsigned char *d = np ? np + 3 : NULL, *end = buf + head; d && d < end && *d >= '0' && *d <= '9'; d++)
            pages = pages < 100000 ? pages * 10 + (uint64_t)(*d - '0') : pages;
    }
    free(buf);
    return pages ? pages : 1;
}
