/* src/tokenizer_pretok.c — hand-written equivalents of tiktoken's cl100k_base and o200k_base
 * split regexes (leftmost-first alternation, backtracking semantics), plus strict UTF-8
 * validation and the per-text counting loop. */
#include "tokenizer.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

size_t hr_utf8_valid_prefix(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        /* ASCII fast path, eight bytes at a time. */
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ull)
                break;
            i += 8;
        }
        if (i >= n)
            break;
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            if (i + 1 < n && (s[i + 1] & 0xC0) == 0x80) { i += 2; continue; }
            return i;
        }
        if (c >= 0xE0 && c <= 0xEF) {
            uint8_t lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF; /* no overlong, no surrogates */
            if (i + 2 < n && s[i + 1] >= lo && s[i + 1] <= hi && (s[i + 2] & 0xC0) == 0x80) { i += 3; continue; }
            return i;
        }
        if (c >= 0xF0 && c <= 0xF4) {
            uint8_t lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
            if (i + 3 < n && s[i + 1] >= lo && s[i + 1] <= hi && (s[i + 2] & 0xC0) == 0x80 &&
                (s[i + 3] & 0xC0) == 0x80) { i += 4; continue; }
            return i;
        }
        return i;
    }
    return n;
}

/* Decode one code point of valid UTF-8 at s[i]; *len gets its byte length. */
static inline uint32_t dec(const uint8_t *s, size_t i, size_t *len)
{
    uint8_t c = s[i];
    if (c < 0x80) { *len = 1; return c; }
    if (c < 0xE0) { *len = 2; return ((uint32_t)(c & 0x1F) << 6) | (s[i + 1] & 0x3F); }
    if (c < 0xF0) {
        *len = 3;
        return ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F);
    }
    *len = 4;
    return ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(s[i + 1] & 0x3F) << 12) |
           ((uint32_t)(s[i + 2] & 0x3F) << 6) | (s[i + 3] & 0x3F);
}

static inline unsigned flags_at(const uint8_t *s, size_t n, size_t i, uint32_t *cp, size_t *len)
{
    if (i >= n) { *len = 0; *cp = 0; return 0; }
    *cp = dec(s, i, len);
    return hr_uc_flags(*cp);
}

/* [^\r\n\p{L}\p{N}] */
static inline int is_p(uint32_t cp, unsigned f) { return cp != '\r' && cp != '\n' && !(f & (HR_UC_L | HR_UC_N)); }
/* [^\s\p{L}\p{N}] */
static inline int is_q(unsigned f) { return !(f & (HR_UC_WS | HR_UC_L | HR_UC_N)); }

/* End of the run of code points from i whose flags intersect mask (i when none). */
static size_t run(const uint8_t *s, size_t n, size_t i, unsigned mask)
{
    uint32_t cp;
    size_t l;
    while (i < n) {
        if (s[i] < 0x80) {
            if (!(hr_uc_flags(s[i]) & mask))
                break;
            i++;
            continue;
        }
        if (!(flags_at(s, n, i, &cp, &l) & mask))
            break;
        i += l;
    }
    return i;
}

/* Contraction after a letter run: (?i:'s|'t|'re|'ve|'m|'ll|'d). Unicode simple case folding
 * makes U+017F LATIN SMALL LETTER LONG S match s, as it does in the reference. */
static size_t contraction(const uint8_t *s, size_t n, size_t i)
{
    if (i >= n || s[i] != '\'')
        return 0;
    if (i + 1 >= n)
        return 0;
    int a = s[i + 1] | 0x20;
    if (a == 's' || a == 't' || a == 'm' || a == 'd')
        return 2;
    if (s[i + 1] == 0xC5 && i + 2 < n && s[i + 2] == 0xBF)
        return 3;
    if (i + 2 < n) {
        int c2 = s[i + 2] | 0x20;
        if ((a == 'r' && c2 == 'e') || (a == 'v' && c2 == 'e') || (a == 'l' && c2 == 'l'))
            return 3;
    }
    return 0;
}

/* Whitespace alternatives shared by both patterns, for a run starting at pos:
 * \s*[\r\n]+ | \s+(?!\S) | \s+  */
static size_t ws_tail(const uint8_t *s, size_t n, size_t pos)
{
    size_t i = pos, last_nl = (size_t)-1, last_start = pos;
    uint32_t cp;
    size_t l;
    while (i < n && (flags_at(s, n, i, &cp, &l) & HR_UC_WS)) {
        if (cp == '\r' || cp == '\n')
            last_nl = i;
        last_start = i;
        i += l;
    }
    if (last_nl != (size_t)-1)
        return last_nl + 1;          /* \s*[\r\n]+ backtracks to the last line break */
    if (i == n || last_start > pos)
        return i == n ? i : last_start; /* \s+(?!\S): leave the last blank for the next word */
    return i;                         /* \s+ : a single blank before a non-blank */
}

/* ' ?[^\s\p{L}\p{N}]+' followed by `tail` characters (cl100k: \r\n; o200k: \r\n/). */
static size_t punct(const uint8_t *s, size_t n, size_t pos, int slash)
{
    size_t p = pos;
    uint32_t cp;
    size_t l;
    if (s[p] == ' ')
        p++;
    size_t q = p;
    while (q < n && is_q(flags_at(s, n, q, &cp, &l)))
        q += l;
    if (q == p)
        return 0;
    while (q < n && (s[q] == '\r' || s[q] == '\n' || (slash && s[q] == '/')))
        q++;
    return q;
}

static size_t digits(const uint8_t *s, size_t n, size_t pos)
{
    uint32_t cp;
    size_t l, i = pos;
    for (int k = 0; k < 3 && i < n && (flags_at(s, n, i, &cp, &l) & HR_UC_N); k++)
        i += l;
    return i;
}

static size_t cl100k_next(const uint8_t *s, size_t n, size_t pos)
{
    uint32_t c;
    size_t l, e;
    unsigned f = flags_at(s, n, pos, &c, &l);
    if (c == '\'' && (e = contraction(s, n, pos)))
        return pos + e;
    /* [^\r\n\p{L}\p{N}]?\p{L}+ */
    size_t p = is_p(c, f) ? pos + l : pos;
    e = run(s, n, p, HR_UC_L);
    if (e > p)
        return e;
    if (f & HR_UC_N)
        return digits(s, n, pos);
    if ((e = punct(s, n, pos, 0)))
        return e;
    return ws_tail(s, n, pos);
}

/* One o200k letter alternative starting at i0 (after the optional prefix), 0 on failure.
 * A: [UP]*[LO]+'?  — U* is greedy, so the match ends after the last LO reachable by
 *    giving back U characters.  B: [UP]+[LO]*'?  */
static size_t o200k_word(const uint8_t *s, size_t n, size_t i0, int alt_b)
{
    uint32_t cp;
    size_t l, i = i0, last_lo = (size_t)-1;
    unsigned f;
    while (i < n && ((f = flags_at(s, n, i, &cp, &l)) & HR_UC_UP)) {
        if (f & HR_UC_LO)
            last_lo = i;
        i += l;
    }
    size_t e;
    if (!alt_b) {
        if (i < n && (flags_at(s, n, i, &cp, &l) & HR_UC_LO))
            e = run(s, n, i, HR_UC_LO);
        else if (last_lo != (size_t)-1)
            e = run(s, n, last_lo, HR_UC_LO);
        else
            return 0;
    } else {
        if (i == i0)
            return 0;
        e = run(s, n, i, HR_UC_LO);
    }
    return e + contraction(s, n, e);
}

static size_t o200k_next(const uint8_t *s, size_t n, size_t pos)
{
    uint32_t c;
    size_t l, e;
    unsigned f = flags_at(s, n, pos, &c, &l);
    int pfx = is_p(c, f);
    for (int alt_b = 0; alt_b < 2; alt_b++) {
        if (pfx && (e = o200k_word(s, n, pos + l, alt_b)))
            return e;
        if ((e = o200k_word(s, n, pos, alt_b)))
            return e;
    }
    if (f & HR_UC_N)
        return digits(s, n, pos);
    if ((e = punct(s, n, pos, 1)))
        return e;
    return ws_tail(s, n, pos);
}

/* ASCII byte classes for the fast path. Punctuation here is printable
 * ASCII other than letters and digits: [^\s\p{L}\p{N}] for sure. Control
 * bytes, whitespace other than ' ', and non-ASCII take the general path. */
static inline int a_lower(unsigned c) { return c - 'a' < 26u; }
static inline int a_upper(unsigned c) { return c - 'A' < 26u; }
static inline int a_digit(unsigned c) { return c - '0' < 10u; }
static inline int a_punct(unsigned c) { return c - 0x21u < 0x5Eu && !a_lower(c | 32) && !a_digit(c); }
/* Bytes that end a punctuation run whatever follows: letters, digits, ' ',
 * \t, \n, \r. */
static inline int settled(unsigned c)
{
    return a_lower(c | 32) || a_digit(c) || c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* o200k's letter alternatives from s[i], for ASCII letters: Upper*Lower+,
 * else Upper+. 0 when what follows could change the piece (non-ASCII, or a
 * ' that may start a contraction). */
static size_t o200k_ascii_letters(const uint8_t *s, size_t n, size_t i)
{
    size_t u = i;
    while (u < n && a_upper(s[u])) u++;
    size_t l = u;
    while (l < n && a_lower(s[l])) l++;
    if (l < n && (s[l] >= 0x80 || s[l] == '\''))
        return 0;
    return l > u ? l : u;
}

/* cl100k's \p{L}+ for ASCII letters; 0 when a non-ASCII byte follows. */
static size_t cl100k_ascii_letters(const uint8_t *s, size_t n, size_t i)
{
    while (i < n && a_lower(s[i] | 32)) i++;
    return i < n && s[i] >= 0x80 ? 0 : i;
}

/* The piece at pos when the bytes involved are plain ASCII (most of a JSON
 * or log text), decided without the general matcher; 0 when the general
 * matcher must decide. t/tokens_test compares both at every position. */
static size_t ascii_piece(enum hr_pretok pt, const uint8_t *s, size_t n, size_t pos)
{
    int o200k = pt == HR_PRETOK_O200K;
    unsigned c = s[pos];
    if (!o200k && c == '\'')
        return 0; /* cl100k tries contractions first */
    if (a_lower(c) || a_upper(c))
        return o200k ? o200k_ascii_letters(s, n, pos) : cl100k_ascii_letters(s, n, pos);
    if (a_digit(c)) {
        size_t e = pos;
        while (e < n && e - pos < 3 && a_digit(s[e])) e++;
        return e - pos < 3 && e < n && s[e] >= 0x80 ? 0 : e; /* a non-ASCII digit may follow */
    }
    if (!a_punct(c) && c != ' ')
        return 0;
    if (pos + 1 < n && (a_lower(s[pos + 1]) || a_upper(s[pos + 1]))) /* one-byte prefix, then letters */
        return o200k ? o200k_ascii_letters(s, n, pos + 1) : cl100k_ascii_letters(s, n, pos + 1);
    size_t e = pos + (c == ' ');
    if (e == n || !a_punct(s[e]))
        return 0; /* whitespace rules */
    while (e < n && a_punct(s[e])) e++;
    if (e < n && !settled(s[e]))
        return 0; /* a control byte or a non-ASCII symbol would continue the run */
    while (e < n && (s[e] == '\r' || s[e] == '\n' || (o200k && s[e] == '/'))) e++;
    return e;
}

size_t hr_pretok_next_general(enum hr_pretok pt, const uint8_t *s, size_t n, size_t pos)
{
    size_t e = pt == HR_PRETOK_O200K ? o200k_next(s, n, pos) : cl100k_next(s, n, pos);
    /* Every character matches some alternative; this guard only protects against a bug. */
    return e > pos ? e : pos + 1;
}

size_t hr_pretok_next(enum hr_pretok pt, const uint8_t *s, size_t n, size_t pos)
{
    size_t e = s[pos] < 0x80 ? ascii_piece(pt, s, n, pos) : 0;
    return e ? e : hr_pretok_next_general(pt, s, n, pos);
}

/* Texts repeat their pieces (JSON keys, log levels, common words): a small
 * direct-mapped cache of piece -> count keeps them out of the large rank
 * table, whose lookups miss the CPU caches. It lives per thread (below), so
 * the few-KB steps of counting on demand and a crushed output's count use
 * it too; only short strings skip it. */
#define PIECE_CACHE_MIN_TEXT 256
#define PIECE_MAX 24
#define PIECE_SLOTS 4096 /* power of two */

struct piece_slot {
    uint64_t w[PIECE_MAX / 8];
    uint32_t len; /* 0 = empty */
    uint32_t count;
};

/* Byte k of the piece goes to bits 8k.. of word k / 8; bytes past n are 0.
 * Whole 8-byte loads when `avail` allows: assembling words from smaller
 * stores stalls the load that follows (store forwarding). */
static inline void piece_words(const uint8_t *p, size_t n, size_t avail, uint64_t w[PIECE_MAX / 8])
{
    if (avail < PIECE_MAX) {
        w[0] = w[1] = w[2] = 0;
        memcpy(w, p, n);
        return;
    }
    memcpy(w, p, PIECE_MAX);
    for (size_t k = 0; k < PIECE_MAX / 8; k++) {
        size_t have = n > 8 * k ? n - 8 * k : 0;
        if (have < 8) w[k] &= have ? (~0ull >> (64 - 8 * have)) : 0;
    }
}

static size_t cached_count(const struct hr_bpe *b, struct piece_slot *cache, const uint8_t *p, size_t n, size_t avail)
{
    if (n == 0 || n > PIECE_MAX) return hr_bpe_count_piece(b, p, n);
    uint64_t w[PIECE_MAX / 8];
    piece_words(p, n, avail, w);
    uint64_t h = (w[0] * 0x9E3779B97F4A7C15ull) ^ (w[1] * 0xC2B2AE3D27D4EB4Full) ^ (w[2] * 0x165667B19E3779F9ull) ^ n;
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    struct piece_slot *sl = &cache[(h >> 40) & (PIECE_SLOTS - 1)];
    if (sl->len == n && sl->w[0] == w[0] && sl->w[1] == w[1] && sl->w[2] == w[2]) return sl->count;
    size_t c = hr_bpe_count_piece(b, p, n);
    memcpy(sl->w, w, sizeof w);
    sl->len = (uint32_t)n;
    sl->count = (uint32_t)c;
    return c;
}

/* The cache lives as long as its thread: pieces repeat across the parts of
 * a large text and across requests, and a fresh table per call cost a
 * 128 KB calloc and a cold start each time. A count depends on the piece and
 * the table only, so a cache filled from another table is emptied first. */
struct piece_cache {
    const struct hr_bpe *owner;
    struct piece_slot slot[PIECE_SLOTS];
};

static pthread_key_t cache_key;
static int cache_key_ok;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void cache_key_init(void) { cache_key_ok = pthread_key_create(&cache_key, free) == 0; }

static struct piece_slot *thread_cache(const struct hr_bpe *b)
{
    pthread_once(&cache_once, cache_key_init);
    if (!cache_key_ok)
        return NULL;
    struct piece_cache *c = pthread_getspecific(cache_key);
    if (!c) {
        if (!(c = calloc(1, sizeof *c)))
            return NULL;
        if (pthread_setspecific(cache_key, c)) {
            free(c);
            return NULL;
        }
        c->owner = b;
    }
    if (c->owner != b) {
        memset(c->slot, 0, sizeof c->slot);
        c->owner = b;
    }
    return c->slot;
}

size_t hr_tokenizer_count(const struct hr_bpe *b, enum hr_pretok pt, const uint8_t *s, size_t n)
{
    size_t total = 0, i = 0;
    struct piece_slot *cache = n >= PIECE_CACHE_MIN_TEXT ? thread_cache(b) : NULL;
    while (i < n) {
        size_t v = i + hr_utf8_valid_prefix(s + i, n - i);
        /* Each valid run is its own text: `$` and (?!\S) see its end as the end. */
        size_t pos = i;
        while (pos < v) {
            size_t e = hr_pretok_next(pt, s, v, pos);
            total += cache ? cached_count(b, cache, s + pos, e - pos, n - pos) : hr_bpe_count_piece(b, s + pos, e - pos);
            pos = e;
        }
        if (v < n) {
            total++;  /* one invalid byte = one byte-level token */
            v++;
        }
        i = v;
    }
    return total;
}

/* Tables-free estimate (doc/tokenizer.md): split with the o200k pre-tokeniser, then guess
 * each piece from its shape. Constants fitted on t/tokens/corpus against exact o200k. */
size_t hr_tokenizer_estimate(const uint8_t *s, size_t n)
{
    size_t total = 0, i = 0;
    while (i < n) {
        size_t v = i + hr_utf8_valid_prefix(s + i, n - i), pos = i;
        while (pos < v) {
            size_t e = hr_pretok_next(HR_PRETOK_O200K, s, v, pos), cps = 0, l;
            int ascii = 1, ws = 1;
            for (size_t k = pos; k < e; k += l) {
                uint32_t cp = dec(s, k, &l);
                cps++;
                ascii &= cp < 0x80;
                ws &= (hr_uc_flags(cp) & HR_UC_WS) != 0;
            }
            if (ws)
                total += 1;
            else if (ascii)
                total += 1 + (e - pos > 4 ? (e - pos - 4) / 3 : 0);
            else
                total += cps * 7 / 10 + (cps * 7 % 10 != 0);
            pos = e;
        }
        if (v < n) {
            total++;
            v++;
        }
        i = v;
    }
    return total;
}
