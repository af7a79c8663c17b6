/* json_scan.c — validating JSON scanner with jansson's acceptance rules (see
 * json_scan.h) and decoders for accepted strings and numbers. One pass, no tree; it
 * allocates only for duplicate-key bookkeeping past 64 open keys, for reals of
 * 128+ bytes that need strtod, and for the strings hr_json_scan_decode decodes. */
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "hex.h"
#include "json_scan.h"

#define EINVAL_ (-22)
#define ENOMEM_ (-12)

/* Past whitespace; *seen is set when there was any. */
static inline const unsigned char *skip_ws(const unsigned char *p, const unsigned char *end, int *seen)
{
    if (p < end && *p > ' ')
        return p; /* compact text, the usual case (every whitespace byte is <= ' ') */
    const unsigned char *start = p;
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    *seen |= p != start;
    return p;
}

/* Four hex digits at p (p + 4 <= end checked by the caller), or -1. */
static inline long hex4(const unsigned char *p)
{
    int a = hr_hex_digit(p[0]), b = hr_hex_digit(p[1]), c = hr_hex_digit(p[2]), d = hr_hex_digit(p[3]);
    if ((a | b | c | d) < 0)
        return -1;
    return (long)((a << 12) | (b << 8) | (c << 4) | d);
}

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* Index of the first flagged byte of a word mask with high bits set
 * (little-endian loads; a big-endian host takes the bytes one at a time). */
static inline unsigned first_flagged(uint64_t m)
{
    return (unsigned)__builtin_ctzll(m) >> 3;
}

/* Strings are scanned a block at a time: one bit per byte of the block for
 * the bytes that need a look. Every such bit is exact, so all the escapes
 * of a block (a tool output sent as a JSON string escapes every quote it
 * holds, one every few bytes) are handled without loading it again. SSE2
 * is part of x86-64; elsewhere a word with exact per-byte tests. */
#if defined(__SSE2__)
#include <emmintrin.h>
#define BLOCK 16u
static inline __m128i block_load(const unsigned char *p)
{
    return _mm_loadu_si128((const __m128i *)(const void *)p);
}
/* A quote, a backslash, a control character or non-ASCII (negative as a
 * signed byte, so below 0x20 in the signed compare). */
static inline uint32_t block_special(const unsigned char *p)
{
    __m128i v = block_load(p);
    __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))),
                             _mm_cmplt_epi8(v, _mm_set1_epi8(0x20)));
    return (uint32_t)_mm_movemask_epi8(m);
}
static inline uint32_t block_quote_backslash(const unsigned char *p)
{
    __m128i v = block_load(p);
    return (uint32_t)_mm_movemask_epi8(
        _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))));
}
static inline uint32_t block_backslash(const unsigned char *p)
{
    return (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(block_load(p), _mm_set1_epi8('\\')));
}
#else
#define BLOCK 8u
/* High bit of each byte of w equal to c (exact: no borrow between bytes). */
static inline uint64_t word_eq(uint64_t w, unsigned char c)
{
    uint64_t y = w ^ (ONES * c);
    return ~(((y & ~HIGHS) + ~HIGHS) | y) & HIGHS;
}
/* One bit per byte from the high bits of a word mask, byte i to bit i. */
static inline uint32_t word_bits(const unsigned char *p, uint64_t m)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    (void)p;
    return (uint32_t)(((m >> 7) * 0x0102040810204080ULL) >> 56);
#else
    uint32_t bits = 0; /* the word's bytes are in the other order: ask each */
    for (unsigned i = 0; i < 8; i++)
        bits |= (uint32_t)((m >> (8 * (7 - i) + 7)) & 1) << i;
    return bits;
#endif
}
static inline uint64_t block_word(const unsigned char *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}
static inline uint32_t block_special(const unsigned char *p)
{
    uint64_t w = block_word(p);
    uint64_t ctl = ~((w & ~HIGHS) + ONES * 0x60) & HIGHS; /* below 0x20 (or non-ASCII) */
    return word_bits(p, word_eq(w, '"') | word_eq(w, '\\') | ctl | (w & HIGHS));
}
static inline uint32_t block_quote_backslash(const unsigned char *p)
{
    uint64_t w = block_word(p);
    return word_bits(p, word_eq(w, '"') | word_eq(w, '\\'));
}
static inline uint32_t block_backslash(const unsigned char *p)
{
    return word_bits(p, word_eq(block_word(p), '\\'));
}
#endif

/* The escapes of two bytes, by their second byte: the byte each stands for
 * (0: not one of them). */
static const unsigned char simple_escape[256] = {
    ['"'] = '"', ['\\'] = '\\', ['/'] = '/', ['b'] = '\b', ['f'] = '\f', ['n'] = '\n', ['r'] = '\r', ['t'] = '\t',
};

/* Length of the valid UTF-8 sequence at p (lead byte >= 0x80), or 0. Strict: no
 * overlong forms, no surrogates, nothing above U+10FFFF (as jansson's utf8.c). */
static inline size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    size_t avail = (size_t)(end - p);
    if (c >= 0xC2 && c <= 0xDF)
        return avail >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (avail < 3 || (p[2] & 0xC0) != 0x80)
            return 0;
        unsigned lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        return p[1] >= lo && p[1] <= hi ? 3 : 0;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (avail < 4 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
            return 0;
        unsigned lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        return p[1] >= lo && p[1] <= hi ? 4 : 0;
    }
    return 0;
}

/* ------------------------------------------------- decoding while scanning
 * hr_json_scan_decode: a value string with escapes is decoded into d->buf
 * by the same pass that validates it, so the tree builder copies it instead
 * of reading it a second time (src/json_load.c). The text between escapes
 * is copied in runs; `lit` is where the run not yet copied starts. */

static size_t utf8_put(unsigned long cp, char *o);
static inline size_t decode_escape(const char *s, size_t i, size_t len, char *out, size_t *o);

static void *decoded_oom(struct hr_json_decoded *d)
{
    d->failed = 1; /* decoding stops; scanning goes on */
    return NULL;
}

/* Room for `need` more bytes past d->used; NULL when out of memory. */
static char *decoded_room(struct hr_json_decoded *d, size_t need)
{
    if (d->cap - d->used < need) {
        size_t cap = d->cap * 2 > d->used + need ? d->cap * 2 : d->used + need + 4096;
        char *b = realloc(d->buf, cap);
        if (!b)
            return decoded_oom(d);
        d->buf = b;
        d->cap = cap;
    }
    return d->buf + d->used;
}

/* The string whose body starts at s0 and whose decoded text is d->buf[off,
 * d->used) ends at q: a NUL after it, and its entry in d->v. */
static void decoded_push(struct hr_json_decoded *d, const unsigned char *s0, const unsigned char *q, size_t off)
{
    d->buf[d->used] = '\0';
    if (d->n == d->cap_v) {
        size_t cap = d->cap_v ? d->cap_v * 2 : 64;
        struct hr_json_decoded_string *v = realloc(d->v, cap * sizeof *v);
        if (!v) {
            decoded_oom(d);
            return;
        }
        d->v = v;
        d->cap_v = cap;
    }
    d->v[d->n++] = (struct hr_json_decoded_string){(const char *)s0, (size_t)(q - s0), off, d->used - off};
    d->used++;
}

/* Decoding in scan_string: the run of text before the escape (or closing
 * quote) at q goes out, with room left for the escape's bytes. Kept in the
 * caller's locals (ob, o, oc: buffer, length, capacity) so the compiler
 * holds them in registers; dd becomes NULL when decoding stops (no memory). */
#define DECODE_RUN(q)                                                                                    \
    do {                                                                                                 \
        size_t run_ = (size_t)((q) - lit);                                                               \
        if (oc - o < run_ + BLOCK + 8) {                                                                 \
            dd->used = o;                                                                                \
            if (!decoded_room(dd, run_ + BLOCK + 8)) {                                                   \
                dd = NULL;                                                                               \
                ob = NULL;                                                                               \
                break;                                                                                   \
            }                                                                                            \
            ob = dd->buf;                                                                                \
            oc = dd->cap;                                                                                \
        }                                                                                                \
        if (run_ <= BLOCK && (size_t)(end - lit) >= BLOCK)                                               \
            memcpy(ob + o, lit, BLOCK); /* one fixed-size copy: the bytes past run_ are overwritten next */ \
        else                                                                                             \
            memcpy(ob + o, lit, run_);                                                                   \
        o += run_;                                                                                       \
    } while (0)

/* The escape at q, `n` bytes, validated. */
#define DECODE_ESCAPE(q, n)                                                                              \
    do {                                                                                                 \
        if (!dd)                                                                                         \
            break;                                                                                       \
        if (!ob) {                                                                                       \
            if (dd->failed) {                                                                            \
                dd = NULL;                                                                               \
                break;                                                                                   \
            }                                                                                            \
            ob = dd->buf;                                                                                \
            off = o = dd->used;                                                                          \
            oc = dd->cap;                                                                                \
        }                                                                                                \
        DECODE_RUN(q);                                                                                   \
        if (!ob)                                                                                         \
            break;                                                                                       \
        if ((n) == 2) {                                                                                  \
            ob[o++] = (char)simple_escape[(q)[1]];                                                       \
        } else {                                                                                         \
            size_t k_ = 0;                                                                               \
            decode_escape((const char *)(q), 0, (n), ob + o, &k_);                                       \
            o += k_;                                                                                     \
        }                                                                                                \
        lit = (q) + (n);                                                                                 \
    } while (0)

/* The closing quote at q. */
#define DECODE_END(q)                                                                                    \
    do {                                                                                                 \
        if (!ob)                                                                                         \
            break;                                                                                       \
        DECODE_RUN(q);                                                                                   \
        if (!ob)                                                                                         \
            break;                                                                                       \
        dd->used = o;                                                                                    \
        decoded_push(dd, s0, (q), off);                                                                  \
    } while (0)

/* p is just past an opening quote, at s0 or later (s0..p holds no special byte).
 * Returns the position just past the closing quote, or NULL with *msg set. *esc
 * tells whether the body holds a backslash. With `d`, the body is decoded
 * there when it holds one. */
static const unsigned char *scan_string(const unsigned char *p, const unsigned char *end, int *esc,
                                        const char **msg, const unsigned char *s0, struct hr_json_decoded *d)
{
    struct hr_json_decoded *dd = d;
    const unsigned char *lit = s0;
    char *ob = NULL; /* decoding this string: d's buffer, once it has an escape */
    size_t o = 0, oc = 0, off = 0;
    for (;;) {
        while ((size_t)(end - p) >= BLOCK) {
            uint32_t m = block_special(p);
            /* The closing quote, two-byte escapes and valid UTF-8 are taken
             * here; anything else (and an escape or a sequence the block
             * cuts) goes to the careful path below, which reports errors. */
            while (m) {
                unsigned k = (unsigned)__builtin_ctz(m), c = p[k];
                if (c == '"') {
                    DECODE_END(p + k);
                    return p + k + 1;
                }
                if (c == '\\' && k + 1 < BLOCK && simple_escape[p[k + 1]]) {
                    *esc = 1;
                    DECODE_ESCAPE(p + k, 2);
                    m &= ~(3u << k);
                    continue;
                }
                size_t n = c >= 0x80 ? utf8_seq(p + k, end) : 0;
                if (!n || k + n > BLOCK) {
                    p += k;
                    goto careful;
                }
                m &= ~(((1u << n) - 1) << k);
            }
            p += BLOCK;
        }
        if (p >= end) {
            *msg = "premature end of input in a string";
            return NULL;
        }
    careful:;
        unsigned c = *p;
        if (c == '"') {
            DECODE_END(p);
            return p + 1;
        }
        if (c == '\\') {
            *esc = 1;
            if (end - p < 2) {
                *msg = "premature end of input in a string";
                return NULL;
            }
            unsigned e = p[1];
            if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' ||
                e == 'r' || e == 't') {
                DECODE_ESCAPE(p, 2);
                p += 2;
                continue;
            }
            if (e != 'u' || end - p < 6) {
                *msg = "invalid escape in a string";
                return NULL;
            }
            long v = hex4(p + 2);
            if (v < 0) {
                *msg = "invalid escape in a string";
                return NULL;
            }
            if (v == 0) {
                *msg = "\\u0000 is not allowed in a string";
                return NULL;
            }
            if (v >= 0xDC00 && v <= 0xDFFF) {
                *msg = "lone low surrogate escape in a string";
                return NULL;
            }
            size_t n = 6;
            if (v >= 0xD800 && v <= 0xDBFF) {
                long v2 = end - p >= 12 && p[6] == '\\' && p[7] == 'u' ? hex4(p + 8) : -1;
                if (v2 < 0xDC00 || v2 > 0xDFFF) {
                    *msg = "high surrogate escape not followed by a low one";
                    return NULL;
                }
                n = 12;
            }
            DECODE_ESCAPE(p, n);
            p += n;
            continue;
        }
        if (c < 0x20) {
            *msg = "control character in a string (escape it)";
            return NULL;
        }
        if (c >= 0x80) {
            size_t n = utf8_seq(p, end);
            if (!n) {
                *msg = "invalid UTF-8 in a string";
                return NULL;
            }
            p += n;
            continue;
        }
        p++;
    }
}

#undef DECODE_RUN
#undef DECODE_ESCAPE
#undef DECODE_END

/* scan_string for the usual string, plain, without the call. */
static inline const unsigned char *string_end(const unsigned char *p, const unsigned char *end, int *esc,
                                              const char **msg, struct hr_json_decoded *d)
{
    const unsigned char *s0 = p;
    while ((size_t)(end - p) >= BLOCK) {
        uint32_t m = block_special(p);
        if (m) {
            unsigned k = (unsigned)__builtin_ctz(m);
            if (p[k] == '"')
                return p + k + 1;
            break;
        }
        p += BLOCK;
    }
    return scan_string(p, end, esc, msg, s0, d);
}

/* strtod on a NUL-terminated copy with the locale's decimal point, as jansson does.
 * Returns 0, or -1 on overflow to infinity (underflow is accepted, as in jansson). */
static int real_value(const char *s, size_t len, double *out)
{
    char stack[128], *buf = len < sizeof stack ? stack : malloc(len + 1);
    if (!buf)
        return -2;
    memcpy(buf, s, len);
    buf[len] = '\0';
    const char *dp = localeconv()->decimal_point;
    if (dp && dp[0] && dp[0] != '.' && !dp[1]) {
        char *dot = strchr(buf, '.');
        if (dot)
            *dot = dp[0];
    }
    errno = 0;
    double v = strtod(buf, NULL);
    int rc = (v == HUGE_VAL || v == -HUGE_VAL) && errno == ERANGE ? -1 : 0;
    if (buf != stack)
        free(buf);
    *out = v;
    return rc;
}

/* p at '-' or a digit. Returns the position past the number, or NULL with *msg. */
static const unsigned char *scan_number(const unsigned char *p, const unsigned char *end,
                                        const char **msg, int big_integers)
{
    const unsigned char *s = p;
    int neg = 0;
    if (*p == '-') {
        neg = 1;
        p++;
    }
    const unsigned char *ds = p;
    if (p < end && *p == '0') {
        p++;
        if (p < end && (unsigned)(*p - '0') < 10) {
            *msg = "invalid number (leading zero)";
            return NULL;
        }
    } else if (p < end && (unsigned)(*p - '0') < 10) {
        while (p < end && (unsigned)(*p - '0') < 10)
            p++;
    } else {
        *msg = "invalid number";
        return NULL;
    }
    size_t int_digits = (size_t)(p - ds);
    if (p == end || (*p != '.' && *p != 'e' && *p != 'E')) {
        /* Integer: must fit int64 (jansson uses strtoll and rejects ERANGE),
         * or, beyond it, a double (HR_JSON_BIG_INTEGERS). */
        if (big_integers ? int_digits > 308
                         : (int_digits > 19 ||
                            (int_digits == 19 &&
                             memcmp(ds, neg ? "9223372036854775808" : "9223372036854775807", 19) > 0))) {
            *msg = neg ? "too big negative integer" : "too big integer";
            return NULL;
        }
        return p;
    }
    if (*p == '.') {
        p++;
        if (p == end || (unsigned)(*p - '0') >= 10) {
            *msg = "invalid number (digit expected after '.')";
            return NULL;
        }
        while (p < end && (unsigned)(*p - '0') < 10)
            p++;
    }
    long exp = 0;
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        int eneg = 0;
        if (p < end && (*p == '+' || *p == '-'))
            eneg = *p++ == '-';
        if (p == end || (unsigned)(*p - '0') >= 10) {
            *msg = "invalid number (digit expected in the exponent)";
            return NULL;
        }
        while (p < end && (unsigned)(*p - '0') < 10) {
            if (exp < 100000)
                exp = exp * 10 + (*p - '0');
            p++;
        }
        if (eneg)
            exp = -exp;
    }
    /* Below 10^308 a real cannot round to infinity; only larger ones need strtod. */
    long sig = (ds[0] == '0') ? 0 : (long)(int_digits < 100000 ? int_digits : 100000);
    if (sig + exp > 308) {
        double v;
        int rc = real_value((const char *)s, (size_t)(p - s), &v);
        if (rc == -2) {
            *msg = "out of memory";
            return NULL;
        }
        if (rc) {
            *msg = "real number overflow";
            return NULL;
        }
    }
    return p;
}

/* ---------------------------------------------------------- duplicate keys */

struct key {
    uint64_t h;
    size_t off, len; /* raw body */
    int esc;
};

struct keys {
    struct key *v;
    size_t n, cap;
    struct key stack[64];
};

static uint64_t hash_bytes(const unsigned char *p, size_t len)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ len;
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdULL;
        h ^= h >> 32;
        p += 8;
        len -= 8;
    }
    /* The last 0..7 bytes without a variable-length copy (a call): two
     * overlapping 4-byte loads, or three bytes. */
    uint64_t w = 0;
    if (len >= 4) {
        uint32_t a, b;
        memcpy(&a, p, 4);
        memcpy(&b, p + len - 4, 4);
        w = a | (uint64_t)b << 32;
    } else if (len) {
        w = p[0] | (uint64_t)p[len / 2] << 8 | (uint64_t)p[len - 1] << 16;
    }
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 29);
}

/* Keys compare decoded ("a" and "\u0061" are the same key, as in jansson). */
static int key_equal(const char *text, const struct key *a, const struct key *b)
{
    if (!a->esc && !b->esc)
        return a->len == b->len && memcmp(text + a->off, text + b->off, a->len) == 0;
    char *x = malloc(a->len + 1), *y = malloc(b->len + 1);
    int eq = -1;
    if (x && y) {
        size_t xl = a->esc ? hr_json_unescape(text + a->off, a->len, x) : a->len;
        size_t yl = b->esc ? hr_json_unescape(text + b->off, b->len, y) : b->len;
        if (!a->esc)
            memcpy(x, text + a->off, xl);
        if (!b->esc)
            memcpy(y, text + b->off, yl);
        eq = xl == yl && memcmp(x, y, xl) == 0;
    }
    free(x);
    free(y);
    return eq;
}

static int key_push(struct keys *k, const char *text, size_t off, size_t len, int esc)
{
    if (k->n == k->cap) {
        size_t cap = k->cap * 2;
        struct key *v = k->v == k->stack ? malloc(cap * sizeof *v) : realloc(k->v, cap * sizeof *v);
        if (!v)
            return ENOMEM_;
        if (k->v == k->stack)
            memcpy(v, k->stack, k->n * sizeof *v);
        k->v = v;
        k->cap = cap;
    }
    struct key *e = &k->v[k->n++];
    e->off = off;
    e->len = len;
    e->esc = esc;
    if (!esc) {
        e->h = hash_bytes((const unsigned char *)text + off, len);
    } else {
        char small[256], *buf = len < sizeof small ? small : malloc(len);
        if (!buf)
            return ENOMEM_;
        size_t dl = hr_json_unescape(text + off, len, buf);
        e->h = hash_bytes((const unsigned char *)buf, dl);
        if (buf != small)
            free(buf);
    }
    return 0;
}

static int cmp_key(const void *a, const void *b)
{
    const struct key *x = a, *y = b;
    return (x->h > y->h) - (x->h < y->h);
}

/* 0 when the keys v[0..n) are distinct, 1 when two are equal, negative on ENOMEM. */
static int keys_dup(const char *text, struct key *v, size_t n)
{
    if (n <= 16) {
        for (size_t i = 1; i < n; i++)
            for (size_t j = 0; j < i; j++)
                if (v[i].h == v[j].h) {
                    int eq = key_equal(text, &v[i], &v[j]);
                    if (eq)
                        return eq < 0 ? ENOMEM_ : 1;
                }
        return 0;
    }
    qsort(v, n, sizeof *v, cmp_key);
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && v[j - 1].h == v[i].h; j--) {
            int eq = key_equal(text, &v[i], &v[j - 1]);
            if (eq)
                return eq < 0 ? ENOMEM_ : 1;
        }
    return 0;
}

/* ------------------------------------------------------------------ scanner */

/* The root object's members, as hr_json_scan_members records them. */
struct member_list {
    struct hr_json_span *out;
    size_t max, n;
};

static int scan(const char *text, size_t len, unsigned flags, struct hr_json_info *info, struct hr_json_error *err,
                struct hr_json_decoded *dec, struct member_list *ml)
{
    const unsigned char *const base = (const unsigned char *)text, *const end = base + len;
    int ws = 0;
    const unsigned char *p = skip_ws(base, end, &ws);
    unsigned char kind[HR_JSON_MAX_DEPTH];
    uint32_t key_base[HR_JSON_MAX_DEPTH];
    /* Per open object (duplicate keys refused): one bit per key hash (its
     * top 6 bits), and whether two keys shared a bit. Equal keys hash alike,
     * so an object where no bit was shared has no duplicate and skips the
     * pairwise check when it closes. */
    uint64_t key_bits[HR_JSON_MAX_DEPTH];
    unsigned char key_clash[HR_JSON_MAX_DEPTH];
    struct keys keys; /* not an initializer: that would clear the 64-entry stack on every call */
    keys.v = keys.stack;
    keys.n = 0;
    keys.cap = 64;
    const int dups = (flags & HR_JSON_REJECT_DUPLICATES) != 0;
    const char *msg = NULL;
    int rc = EINVAL_;
    size_t d = 0; /* open containers */
    /* rows bookkeeping (see hr_json_info) */
    size_t top_count = 0, member = 0, cur_count = 0, cur_member = 0, best = 0, best_member = 0;
    int top_objs = 1, cur_objs = 1;

    if (info)
        memset(info, 0, sizeof *info);
    if (p == end || (*p != '[' && *p != '{')) {
        msg = "'[' or '{' expected";
        goto fail;
    }
    if (info)
        info->root = (char)*p;
    goto open;

value:
    /* p is at a non-space byte where a value must start; d containers are open. */
    if (p == end) {
        msg = "premature end of input (value expected)";
        goto fail;
    }
    if (d >= HR_JSON_MAX_DEPTH) {
        msg = "maximum nesting depth reached";
        goto fail;
    }
    if (d == 1) {
        if (kind[0] == '[') {
            top_count++;
            top_objs &= *p == '{';
        } else {
            if (ml && ml->n < ml->max)
                ml->out[ml->n].val = (const char *)p;
            if (*p == '[') {
                cur_count = 0;
                cur_objs = 1;
                cur_member = member - 1;
            }
        }
    } else if (d == 2 && kind[0] == '{' && kind[1] == '[') {
        cur_count++;
        cur_objs &= *p == '{';
    }
    switch (*p) {
    case '"': {
        int esc = 0;
        const unsigned char *q = string_end(p + 1, end, &esc, &msg, dec);
        if (!q)
            goto fail; /* reported at the string's start */
        p = q;
        goto after;
    }
    case '[':
    case '{':
        goto open;
    case 't':
        if (end - p >= 4 && memcmp(p, "true", 4) == 0) {
            p += 4;
            goto literal;
        }
        goto bad_literal;
    case 'f':
        if (end - p >= 5 && memcmp(p, "false", 5) == 0) {
            p += 5;
            goto literal;
        }
        goto bad_literal;
    case 'n':
        if (end - p >= 4 && memcmp(p, "null", 4) == 0) {
            p += 4;
            goto literal;
        }
        goto bad_literal;
    default:
        if (*p == '-' || (unsigned)(*p - '0') < 10) {
            const unsigned char *q = scan_number(p, end, &msg, (flags & HR_JSON_BIG_INTEGERS) != 0);
            if (!q)
                goto fail;
            p = q;
            goto token_end;
        }
        msg = "invalid token (value expected)";
        goto fail;
    }

literal:
    /* jansson reads a whole run of letters as one word: "truex" is not "true". */
    if (p == end || (unsigned)((*p | 32) - 'a') >= 26)
        goto token_end;
bad_literal:
    msg = "invalid token (true, false or null expected)";
    goto fail;

token_end:
    /* jansson quirk, matched on purpose: after a number or a word its lexer puts the
     * next byte back, and a NUL byte put back is lost, so "[1\0]" parses as [1]. */
    if (p < end && *p == 0)
        p++;
    goto after;

open:
    kind[d] = *p;
    if (*p == '{') {
        key_base[d] = (uint32_t)keys.n;
        key_bits[d] = 0;
        key_clash[d] = 0;
    }
    d++;
    p = skip_ws(p + 1, end, &ws);
    if (p < end && *p == (kind[d - 1] == '[' ? ']' : '}')) {
        p++;
        goto close;
    }
    if (kind[d - 1] == '[')
        goto value;
    goto key;

key:
    if (p == end || *p != '"') {
        msg = "string or '}' expected (object key)";
        goto fail;
    }
    {
        int esc = 0;
        const unsigned char *ks = p + 1;
        const unsigned char *q = string_end(ks, end, &esc, &msg, NULL);
        if (!q)
            goto fail;
        p = q;
        if (d == 1 && ml && ml->n < ml->max) {
            ml->out[ml->n].key = (const char *)ks;
            ml->out[ml->n].klen = (size_t)(p - 1 - ks);
        }
        if (dups) {
            if (keys.n >= UINT32_MAX) {
                rc = ENOMEM_;
                goto out;
            }
            if (key_push(&keys, text, (size_t)(ks - base), (size_t)(p - 1 - ks), esc)) {
                rc = ENOMEM_;
                goto out;
            }
            uint64_t bit = 1ULL << (keys.v[keys.n - 1].h >> 58);
            key_clash[d - 1] |= (key_bits[d - 1] & bit) != 0;
            key_bits[d - 1] |= bit;
        }
    }
    if (d == 1)
        member++;
    p = skip_ws(p, end, &ws);
    if (p == end || *p != ':') {
        msg = "':' expected after an object key";
        goto fail;
    }
    p = skip_ws(p + 1, end, &ws);
    goto value;

close:
    d--;
    if (kind[d] == '{' && dups) {
        size_t b = key_base[d];
        int dup = key_clash[d] ? keys_dup(text, keys.v + b, keys.n - b) : 0;
        if (dup < 0) {
            rc = ENOMEM_;
            goto out;
        }
        if (dup) {
            msg = "duplicate object key";
            goto fail;
        }
        keys.n = b;
    }
    if (d == 1 && kind[0] == '{' && kind[1] == '[' && cur_count && cur_objs && cur_count > best) {
        best = cur_count;
        best_member = cur_member;
    }
    goto after;

after:
    if (d == 0) {
        p = skip_ws(p, end, &ws);
        if (p != end) {
            msg = "end of input expected after the top-level value";
            goto fail;
        }
        if (info) {
            info->whitespace = ws;
            if (info->root == '[') {
                info->rows = top_count && top_objs ? top_count : 0;
            } else {
                info->rows = best;
                info->rows_member = best_member;
            }
        }
        rc = 0;
        goto out;
    }
    if (d == 1 && ml && kind[0] == '{') { /* a member's value ends here */
        if (ml->n < ml->max)
            ml->out[ml->n].vlen = (size_t)((const char *)p - ml->out[ml->n].val);
        ml->n++;
    }
    p = skip_ws(p, end, &ws);
    if (p == end) {
        msg = "premature end of input (',' or a closing bracket expected)";
        goto fail;
    }
    if (*p == ',') {
        p = skip_ws(p + 1, end, &ws);
        if (kind[d - 1] == '[')
            goto value;
        goto key;
    }
    if (*p == (kind[d - 1] == '[' ? ']' : '}')) {
        p++;
        goto close;
    }
    msg = kind[d - 1] == '[' ? "',' or ']' expected" : "',' or '}' expected";
    goto fail;

fail:
    if (msg && strcmp(msg, "out of memory") == 0)
        rc = ENOMEM_;
    if (err) {
        err->pos = (size_t)(p - base);
        err->msg = msg;
    }
    if (info)
        memset(info, 0, sizeof *info);
out:
    if (keys.v != keys.stack)
        free(keys.v);
    return rc;
}

int hr_json_scan(const char *text, size_t len, unsigned flags, struct hr_json_info *info,
                 struct hr_json_error *err)
{
    return scan(text, len, flags, info, err, NULL, NULL);
}

int hr_json_scan_members(const char *text, size_t len, struct hr_json_span *out, size_t max, size_t *n)
{
    struct member_list ml = {out, max, 0};
    *n = 0;
    int rc = scan(text, len, 0, NULL, NULL, NULL, &ml);
    if (rc == 0)
        *n = ml.n;
    return rc;
}

int hr_json_scan_decode(const char *text, size_t len, unsigned flags, struct hr_json_decoded *d)
{
    d->used = d->n = 0;
    d->failed = 0;
    return scan(text, len, flags, NULL, NULL, d, NULL);
}

/* ----------------------------------------------------------------- decoders */

static size_t utf8_put(unsigned long cp, char *o)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

const char *hr_json_string(const char *s, size_t len, char **buf, size_t *cap, size_t *out_len)
{
    *out_len = len;
    if (!memchr(s, '\\', len))
        return s;
    if (*cap < len + 1) {
        char *p = realloc(*buf, len + 1);
        if (!p)
            return NULL;
        *buf = p;
        *cap = len + 1;
    }
    *out_len = hr_json_unescape(s, len, *buf);
    (*buf)[*out_len] = '\0';
    return *buf;
}

size_t hr_json_span(const char *s, size_t avail, int *esc)
{
    const unsigned char *const b = (const unsigned char *)s, *const end = b + avail;
    const unsigned char *p = b;
    for (;;) {
        while ((size_t)(end - p) >= BLOCK) {
            uint32_t m = block_quote_backslash(p);
            size_t next = BLOCK;
            while (m) {
                unsigned k = (unsigned)__builtin_ctz(m);
                if (p[k] == '"')
                    return (size_t)(p + k - b);
                *esc = 1; /* the escaped byte never ends the string */
                if (k + 1 >= BLOCK) {
                    next = BLOCK + 1;
                    break;
                }
                m &= ~(3u << k);
            }
            p += next;
        }
        while (p < end && *p != '"' && *p != '\\')
            p++;
        if (p >= end)
            return avail;
        if (*p == '"')
            return (size_t)(p - b);
        *esc = 1;
        p += 2;
    }
}

/* Decode the escape whose backslash is s[i] into out + *o (at most 4 bytes).
 * Returns the index past it, or 0 when it is cut short or malformed (text
 * the scanner refused): decoding stops there. */
static inline size_t decode_escape(const char *s, size_t i, size_t len, char *out, size_t *o)
{
    if (i + 1 >= len)
        return 0;
    char e = s[i + 1];
    i += 2;
    switch (e) {
    case 'b': out[(*o)++] = '\b'; break;
    case 'f': out[(*o)++] = '\f'; break;
    case 'n': out[(*o)++] = '\n'; break;
    case 'r': out[(*o)++] = '\r'; break;
    case 't': out[(*o)++] = '\t'; break;
    case 'u': {
        if (i + 4 > len)
            return 0;
        long v = hex4((const unsigned char *)s + i);
        i += 4;
        if (v < 0)
            return 0;
        unsigned long cp = (unsigned long)v;
        if (v >= 0xD800 && v <= 0xDBFF && i + 6 <= len && s[i] == '\\' && s[i + 1] == 'u') {
            long v2 = hex4((const unsigned char *)s + i + 2);
            if (v2 >= 0xDC00 && v2 <= 0xDFFF) {
                cp = 0x10000 + (((unsigned long)v - 0xD800) << 10) + ((unsigned long)v2 - 0xDC00);
                i += 6;
            }
        }
        *o += utf8_put(cp, out + *o);
        break;
    }
    default: out[(*o)++] = e; break; /* " \ / */
    }
    return i;
}

/* One block of a decoding copy: the BLOCK bytes at s + *i go to out + *o,
 * and both positions move to the block's first byte in `m` (its mask of
 * bytes to stop at), or past the block when there is none. Returns whether
 * there was one. */
static inline int copy_block(const char *s, size_t *i, char *out, size_t *o, uint32_t m)
{
    memcpy(out + *o, s + *i, BLOCK);
    unsigned k = m ? (unsigned)__builtin_ctz(m) : BLOCK;
    *i += k;
    *o += k;
    return m != 0;
}

size_t hr_json_unescape(const char *s, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        /* To the next backslash a block at a time, copying the whole block
         * first: escapes come every few bytes in a JSON document sent as a
         * string. o <= i (decoding never grows), so the block fits in out. */
        while (len - i >= BLOCK)
            if (copy_block(s, &i, out, &o, block_backslash((const unsigned char *)s + i)))
                goto escape;
        while (i < len && s[i] != '\\')
            out[o++] = s[i++];
    escape:
        if (i + 1 < len && simple_escape[(unsigned char)s[i + 1]]) {
            out[o++] = (char)simple_escape[(unsigned char)s[i + 1]];
            i += 2;
            continue;
        }
        i = decode_escape(s, i, len, out, &o);
        if (!i)
            break;
    }
    return o;
}

/* out holds at least `need` bytes (doubling), or 0 when out of memory. */
static int room(char **out, size_t *cap, size_t need)
{
    if (*cap >= need)
        return 1;
    size_t n = *cap * 2 > need ? *cap * 2 : need;
    char *p = realloc(*out, n);
    if (!p)
        return 0;
    *out = p;
    *cap = n;
    return 1;
}

const char *hr_json_read_string(const char *s, size_t avail, char **buf, size_t *cap, size_t *raw_len,
                                size_t *out_len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, o;
    /* To the closing quote or the first backslash: most strings end here and
     * are used in place. */
    while (avail - i >= BLOCK) {
        uint32_t m = block_quote_backslash(u + i);
        if (m) {
            i += (unsigned)__builtin_ctz(m);
            goto found;
        }
        i += BLOCK;
    }
    while (i < avail && s[i] != '"' && s[i] != '\\')
        i++;
found:
    if (i >= avail || s[i] == '"') {
        *raw_len = *out_len = i;
        return s;
    }
    /* Decode from the first escape to the closing quote in the same pass
     * (whole blocks copied, then kept up to their first quote or backslash),
     * keeping BLOCK + 8 bytes of room ahead of a block and 8 ahead of a byte
     * or an escape (which writes at most 4). The buffer is held in locals:
     * stores through a char pointer would make the compiler reload it. */
    char *out = *buf;
    size_t c = *cap;
    if (!room(&out, &c, i + BLOCK + 8))
        goto nomem;
    memcpy(out, s, i);
    o = i;
    for (;;) {
        while (avail - i >= BLOCK) {
            if (c - o < BLOCK + 8 && !room(&out, &c, o + BLOCK + 8))
                goto nomem;
            if (copy_block(s, &i, out, &o, block_quote_backslash(u + i)))
                goto special;
        }
        while (i < avail && s[i] != '"' && s[i] != '\\') {
            if (c - o < 8 && !room(&out, &c, o + 8))
                goto nomem;
            out[o++] = s[i++];
        }
        if (i >= avail)
            break;
    special:
        if (s[i] == '"')
            break;
        if (c - o < 8 && !room(&out, &c, o + 8))
            goto nomem;
        if (i + 1 < avail && simple_escape[u[i + 1]]) {
            out[o++] = (char)simple_escape[u[i + 1]];
            i += 2;
            continue;
        }
        size_t next = decode_escape(s, i, avail, out, &o);
        if (!next)
            break;
        i = next;
    }
    if (c - o < 1 && !room(&out, &c, o + 1))
        goto nomem;
    out[o] = '\0';
    *buf = out;
    *cap = c;
    *raw_len = i;
    *out_len = o;
    return out;
nomem: {
        int esc = 0; /* i is never inside an escape here */
        *buf = out;
        *cap = c;
        *raw_len = i + hr_json_span(s + i, avail - i, &esc);
        *out_len = 0;
        return NULL;
    }
}

int hr_json_plain_string(const char *v, size_t n)
{
    if (n < 2 || v[0] != '"' || v[n - 1] != '"')
        return 0;
    const unsigned char *p = (const unsigned char *)v + 1, *end = (const unsigned char *)v + n - 1;
    while (p < end) {
        if (*p == '"' || *p == '\\' || *p < 0x20)
            return 0;
        if (*p < 0x80) {
            p++;
            continue;
        }
        size_t k = utf8_seq(p, end);
        if (!k)
            return 0;
        p += k;
    }
    return 1;
}

int hr_json_number(const char *s, size_t len, int64_t *iv, double *dv)
{
    size_t i = 0;
    int neg = 0;
    if (i < len && s[i] == '-') {
        neg = 1;
        i++;
    }
    uint64_t m = 0;
    size_t sig = 0; /* significant digits gathered into m */
    int exact = 1;
    for (; i < len && (unsigned)(s[i] - '0') < 10; i++) {
        if (sig < 19) {
            m = m * 10 + (uint64_t)(s[i] - '0');
            sig += m != 0;
        } else {
            exact = 0;
        }
    }
    if (i == len && (!exact || m > (uint64_t)INT64_MAX + (uint64_t)neg)) {
        /* Beyond int64 (HR_JSON_BIG_INTEGERS): its nearest double. */
        if (real_value(s, len, dv) != 0) *dv = neg ? -HUGE_VAL : HUGE_VAL;
        return 0;
    }
    if (i == len) {
        /* Integer in int64 range (the scanner checked). */
        int64_t v = m > (uint64_t)INT64_MAX ? INT64_MIN /* only -9223372036854775808 */
                    : neg ? -(int64_t)m : (int64_t)m;
        *iv = v;
        *dv = (double)v;
        return 1;
    }
    /* Real: exact when the digits fit 2^53 and the power of ten is exact (Clinger's
     * fast path: one correctly rounded operation, the same result as strtod). */
    long e10 = 0;
    if (s[i] == '.') {
        for (i++; i < len && (unsigned)(s[i] - '0') < 10; i++) {
            if (sig < 19) {
                m = m * 10 + (uint64_t)(s[i] - '0');
                sig += m != 0;
                e10--;
            } else {
                exact = 0;
            }
        }
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        int eneg = 0;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            eneg = s[i++] == '-';
        long x = 0;
        for (; i < len && (unsigned)(s[i] - '0') < 10; i++)
            if (x < 100000)
                x = x * 10 + (s[i] - '0');
        e10 += eneg ? -x : x;
    }
    static const double p10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
                                 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    if (exact && m <= (1ULL << 53) && e10 >= -22 && e10 <= 22) {
        double v = (double)m;
        v = e10 < 0 ? v / p10[-e10] : v * p10[e10];
        *dv = neg ? -v : v;
        return 0;
    }
    if (real_value(s, len, dv) == -2)
        *dv = 0; /* no memory to copy a literal of 128+ bytes: the value is lost */
    return 0;
}

/* ---- hr_json_member: a skim of the root object's members ---- */

static size_t skim_ws(const char *t, size_t i, size_t len)
{
    while (i < len && (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\r')) i++;
    return i;
}

/* The high bit of each byte of w that is a quote or a backslash (exact for
 * the first such byte). */
static inline uint64_t word_quote_or_backslash(uint64_t w)
{
    uint64_t q = w ^ (ONES * '"'), b = w ^ (ONES * '\\');
    return (((q - ONES) & ~q) | ((b - ONES) & ~b)) & HIGHS;
}

/* Index just past the string whose opening quote is at t[i], or len. Strings
 * are most of a request's bytes, and a tool output's are full of escaped
 * quotes: eight bytes at a time to the next quote or backslash, and a
 * backslash takes the byte after it with it. */
static size_t skim_string(const char *t, size_t i, size_t len)
{
    for (size_t k = i + 1; k < len;) {
        while (len - k >= 8) {
            uint64_t w;
            memcpy(&w, t + k, 8);
            uint64_t m = word_quote_or_backslash(w);
            if (m) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
                k += first_flagged(m);
#endif
                break;
            }
            k += 8;
        }
        while (k < len && t[k] != '"' && t[k] != '\\')
            k++;
        if (k >= len)
            return len;
        if (t[k] == '"')
            return k + 1;
        k += 2; /* the escaped byte cannot end the string */
    }
    return len;
}

/* Index just past the value starting at t[i], or len when it never ends. */
static size_t skim_value(const char *t, size_t i, size_t len)
{
    if (i >= len) return len;
    if (t[i] == '"') return skim_string(t, i, len);
    if (t[i] == '{' || t[i] == '[') {
        size_t depth = 0;
        while (i < len) {
            char c = t[i];
            if (c == '"') {
                i = skim_string(t, i, len);
                continue;
            }
            if (c == '{' || c == '[') depth++;
            else if ((c == '}' || c == ']') && --depth == 0) return i + 1;
            i++;
        }
        return len;
    }
    while (i < len && t[i] != ',' && t[i] != '}' && t[i] != ']' && t[i] != ' ' && t[i] != '\t' && t[i] != '\n' &&
           t[i] != '\r')
        i++;
    return i;
}

/* Calls fn for each member of the root object, in order: 0 when the text
 * is a whole object, -1 when not (fn may have been called for members seen
 * before the fault). */
typedef void (*member_fn)(void *ud, const char *key, size_t klen, const char *val, size_t vlen);

static int each_member(const char *t, size_t len, member_fn fn, void *ud)
{
    size_t i = skim_ws(t, 0, len);
    if (i >= len || t[i] != '{') return -1;
    i = skim_ws(t, i + 1, len);
    while (i < len && t[i] == '"') {
        size_t kstart = i + 1, kend = skim_string(t, i, len);
        if (kend >= len) return -1;
        i = skim_ws(t, kend, len);
        if (i >= len || t[i] != ':') return -1;
        i = skim_ws(t, i + 1, len);
        size_t vend = skim_value(t, i, len);
        if (vend >= len || vend == i) return -1; /* no value, or the root never closed */
        fn(ud, t + kstart, kend - 1 - kstart, t + i, vend - i);
        i = skim_ws(t, vend, len);
        if (i < len && t[i] == ',') i = skim_ws(t, i + 1, len);
        else break;
    }
    return i < len && t[i] == '}' ? 0 : -1;
}

struct wanted {
    const char *const *keys;
    size_t n, found;
    const char **vals;
    size_t *vlens;
};

static void match_member(void *ud, const char *key, size_t klen, const char *val, size_t vlen)
{
    struct wanted *w = ud;
    for (size_t k = 0; k < w->n; k++)
        if (strlen(w->keys[k]) == klen && !memcmp(key, w->keys[k], klen)) {
            w->found += !w->vals[k];
            w->vals[k] = val;
            w->vlens[k] = vlen;
            return;
        }
}

size_t hr_json_members(const char *t, size_t len, const char *const *keys, size_t n, const char **vals,
                       size_t *vlens)
{
    struct wanted w = {keys, n, 0, vals, vlens};
    for (size_t k = 0; k < n; k++) vals[k] = NULL;
    if (each_member(t, len, match_member, &w) == 0) return w.found;
    for (size_t k = 0; k < n; k++) vals[k] = NULL; /* not a whole object: not even what was seen */
    return 0;
}

struct listed {
    struct hr_json_span *out;
    size_t n, max;
};

static void list_member(void *ud, const char *key, size_t klen, const char *val, size_t vlen)
{
    struct listed *l = ud;
    if (l->n < l->max) l->out[l->n] = (struct hr_json_span){key, klen, val, vlen};
    l->n++;
}

int hr_json_member_list(const char *t, size_t len, struct hr_json_span *out, size_t max, size_t *n)
{
    struct listed l = {out, 0, max};
    *n = 0;
    if (each_member(t, len, list_member, &l) != 0) return -1;
    *n = l.n;
    return 0;
}

int hr_json_member(const char *t, size_t len, const char *key, const char **val, size_t *vlen)
{
    return hr_json_members(t, len, &key, 1, val, vlen) == 1;
}

/* ---- hr_json_member_near: the same, from whichever end reaches it first ---- */

/* Index of the quote opening the string whose closing quote is at t[e], not
 * below lo; lo - 1 (or SIZE_MAX at 0) when it opens further back. Inside a
 * string every quote is escaped, so the opening one is the first quote back
 * with an even run of backslashes before it. */
static size_t back_string(const char *t, size_t e, size_t lo)
{
    size_t k = e;
    while (k > lo) {
        const char *q = memrchr(t + lo, '"', k - lo);
        if (!q) break;
        k = (size_t)(q - t);
        size_t n = 0;
        while (n < k && t[k - 1 - n] == '\\') n++;
        if (!(n & 1)) return k;
    }
    return lo - 1;
}

/* Index of the first byte of the value whose last byte is t[e], not below lo;
 * lo - 1 when it starts further back. */
static size_t back_value(const char *t, size_t e, size_t lo)
{
    char c = t[e];
    if (c == '"') return back_string(t, e, lo);
    if (c == '}' || c == ']') {
        size_t depth = 0;
        for (size_t k = e + 1; k-- > lo;) {
            c = t[k];
            if (c == '"') {
                k = back_string(t, k, lo);
                if (k == lo - 1) break;
            } else if (c == '}' || c == ']') depth++;
            else if ((c == '{' || c == '[') && --depth == 0) return k;
        }
        return lo - 1;
    }
    size_t k = e;
    while (k > lo && t[k - 1] != ':' && t[k - 1] != ' ' && t[k - 1] != '\t' && t[k - 1] != '\n' && t[k - 1] != '\r')
        k--;
    return k > lo ? k : lo - 1;
}

static size_t back_ws(const char *t, size_t i, size_t lo)
{
    while (i > lo && (t[i - 1] == ' ' || t[i - 1] == '\t' || t[i - 1] == '\n' || t[i - 1] == '\r')) i--;
    return i;
}

/* Members still unread lie in [front, back): front is a member's opening
 * quote, back the ',' or '}' after the last unread member. */
struct member_walk {
    const char *t, *key;
    size_t klen, front, back;
    const char *val;
    size_t vlen;
};

enum { STEP_MORE, STEP_FOUND, STEP_END, STEP_SHORT }; /* STEP_SHORT: the member is longer than the limit */

static int step_front(struct member_walk *m, size_t limit)
{
    const char *t = m->t;
    size_t lim = m->back + 1, i = m->front;
    if (limit < lim - i) lim = i + limit;
    if (t[i] != '"') return STEP_END;
    size_t kend = skim_string(t, i, lim);
    if (kend >= lim) return lim <= m->back ? STEP_SHORT : STEP_END;
    int match = kend - 1 - (i + 1) == m->klen && !memcmp(t + i + 1, m->key, m->klen);
    size_t v = skim_ws(t, kend, lim);
    if (v >= lim || t[v] != ':') return v >= lim && lim <= m->back ? STEP_SHORT : STEP_END;
    v = skim_ws(t, v + 1, lim);
    size_t vend = skim_value(t, v, lim);
    if (vend >= lim) return lim <= m->back ? STEP_SHORT : STEP_END;
    if (match && vend > v) {
        m->val = t + v;
        m->vlen = vend - v;
        return STEP_FOUND;
    }
    size_t d = skim_ws(t, vend, lim);
    if (d == m->back) return STEP_END; /* every member read */
    if (d >= lim || t[d] != ',') return d >= lim && lim <= m->back ? STEP_SHORT : STEP_END;
    m->front = skim_ws(t, d + 1, m->back);
    return m->front < m->back ? STEP_MORE : STEP_END;
}

static int step_back(struct member_walk *m, size_t limit)
{
    const char *t = m->t;
    size_t lo = m->front, e = back_ws(t, m->back, lo);
    if (e - lo > limit) lo = e - limit;
    int shortened = lo > m->front;
    if (e <= lo) return shortened ? STEP_SHORT : STEP_END;
    size_t v = back_value(t, e - 1, lo);
    if (v == lo - 1) return shortened ? STEP_SHORT : STEP_END;
    size_t c = back_ws(t, v, lo);
    if (c <= lo || t[c - 1] != ':') return c <= lo && shortened ? STEP_SHORT : STEP_END;
    size_t kq = back_ws(t, c - 1, lo);
    if (kq <= lo || t[kq - 1] != '"') return kq <= lo && shortened ? STEP_SHORT : STEP_END;
    size_t ks = back_string(t, kq - 1, lo);
    if (ks == lo - 1) return shortened ? STEP_SHORT : STEP_END;
    if (kq - 1 - (ks + 1) == m->klen && !memcmp(t + ks + 1, m->key, m->klen)) {
        m->val = t + v;
        m->vlen = e - v;
        return STEP_FOUND;
    }
    if (ks == m->front) return STEP_END; /* every member read */
    size_t d = back_ws(t, ks, lo);
    if (d <= lo || t[d - 1] != ',') return d <= lo && shortened ? STEP_SHORT : STEP_END;
    m->back = d - 1;
    return STEP_MORE;
}

int hr_json_member_near(const char *t, size_t len, const char *key, const char **val, size_t *vlen)
{
    size_t first = skim_ws(t, 0, len), last = len;
    while (last > first && (t[last - 1] == ' ' || t[last - 1] == '\t' || t[last - 1] == '\n' || t[last - 1] == '\r'))
        last--;
    if (last - first < 2 || t[first] != '{' || t[last - 1] != '}') return 0;
    struct member_walk m = {.t = t, .key = key, .klen = strlen(key), .back = last - 1};
    m.front = skim_ws(t, first + 1, m.back);
    if (m.front == m.back) return 0; /* {} */
    /* Each side reads members until one is longer than the limit; when both
     * are stuck the limit grows, up to 64 KB. Past that the rest is read from
     * the front once, as hr_json_member would: a key that is absent, or sits
     * between two long members, costs one skim plus at most 2 x 84 KB. */
    int front = STEP_MORE, back = STEP_MORE;
    for (size_t limit = 4096; limit <= 65536; limit *= 4) {
        while (back == STEP_MORE) back = step_back(&m, limit);
        if (back != STEP_SHORT) goto done;
        while (front == STEP_MORE) front = step_front(&m, limit);
        if (front != STEP_SHORT) goto done;
        front = back = STEP_MORE;
    }
    while (front == STEP_MORE) front = step_front(&m, SIZE_MAX);
done:
    if (front != STEP_FOUND && back != STEP_FOUND) return 0;
    *val = m.val;
    *vlen = m.vlen;
    return 1;
}
