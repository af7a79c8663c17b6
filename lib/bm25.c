/* bm25.c — Okapi BM25 of short documents (JSON rows, search matches)
 * against the latest user message, so what the user asks about survives a
 * cut. Shared by smart_crusher and search_compressor. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "bm25.h"
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define MAX_TERMS 32
#define MAX_TERM_LEN 32

struct term {
    char s[MAX_TERM_LEN + 1];
    size_t len;
    uint64_t h;
    uint32_t df;
};

/* ASCII letters and digits, and any non-ASCII byte (UTF-8 words); no locale lookup
 * because this runs on every byte of every row. */
static inline int word_byte(unsigned char c)
{
    return (unsigned)(c - '0') < 10 || (unsigned)((c | 32) - 'a') < 26 || c >= 0x80;
}

/* ASCII case folding, as tolower() in the C locale, without a libc call per byte. */
static inline unsigned char lower(unsigned char c)
{
    return (unsigned)(c - 'A') < 26 ? (unsigned char)(c + 32) : c;
}

static uint64_t term_hash(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ lower((unsigned char)s[i])) * 1099511628211ULL;
    return h;
}

/* The word at s (len bytes) equals the lower-case term t. */
static int same_word(const char *t, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)t[i] != lower((unsigned char)s[i]))
            return 0;
    return 1;
}

static int stopword(const char *s, size_t len)
{
    static const char *const words[] = {"the", "and", "for", "with", "that", "this", "from",
        "are", "was", "were", "what", "which", "show", "find", "give", "list", "all", "any",
        "me", "my", "of", "to", "in", "on", "is", "it", "an", "or", "be", "by", "at", "as",
        "do", "does", "can", "you", "please", "about", "there", "their", "have", "has", NULL};
    for (const char *const *w = words; *w; w++)
        if (strlen(*w) == len && strncasecmp(*w, s, len) == 0)
            return 1;
    return 0;
}

static size_t query_terms(const char *q, struct term *terms)
{
    size_t n = 0;
    for (size_t i = 0; q[i] && n < MAX_TERMS;) {
        if (!word_byte((unsigned char)q[i])) {
            i++;
            continue;
        }
        size_t s = i;
        while (q[i] && word_byte((unsigned char)q[i]))
            i++;
        size_t len = i - s;
        if (len < 2 || len > MAX_TERM_LEN || stopword(q + s, len))
            continue;
        uint64_t h = term_hash(q + s, len);
        int seen = 0;
        for (size_t k = 0; k < n; k++)
            if (terms[k].h == h && terms[k].len == len)
                seen = 1;
        if (seen)
            continue;
        for (size_t k = 0; k < len; k++)
            terms[n].s[k] = (char)lower((unsigned char)q[s + k]);
        terms[n].s[len] = '\0';
        terms[n].len = len;
        terms[n].h = h;
        terms[n].df = 0;
        n++;
    }
    return n;
}

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* The high bit of every byte of w that is not a word byte (word_byte, eight at
 * a time; exact per byte: no borrow crosses bytes). */
static inline uint64_t non_word8(uint64_t w)
{
    uint64_t x = (w & ~HIGHS) | HIGHS, l = x | (ONES * 0x20);
    uint64_t digit = (x - ONES * '0') & ~(x - ONES * ('9' + 1));
    uint64_t letter = (l - ONES * 'a') & ~(l - ONES * ('z' + 1));
    return ~(digit | letter | w) & HIGHS;
}

/* Byte classes for row_tf: 0 other, 1 word byte, 2 backslash (in JSON an escape is skipped). */
static void byte_classes(unsigned char cls[256], int json)
{
    for (unsigned c = 0; c < 256; c++)
        cls[c] = word_byte((unsigned char)c) ? 1 : (json && c == '\\') ? 2 : 0;
}

/* Counts one word (at s, wl bytes) against the terms. */
static inline void count_word(const char *s, size_t wl, const struct term *terms, size_t nt,
                              const uint64_t *first_mask, uint16_t *tf)
{
    /* Most words have no term of their length and first letter: one bit
     * test rules them out. */
    if (wl < 2 || wl > MAX_TERM_LEN || !((first_mask[wl] >> (lower((unsigned char)s[0]) & 63)) & 1))
        return;
    uint64_t h = 0;
    int hashed = 0;
    for (size_t k = 0; k < nt; k++) {
        if (terms[k].len != wl || lower((unsigned char)s[0]) != (unsigned char)terms[k].s[0])
            continue;
        if (!hashed) {
            h = term_hash(s, wl);
            hashed = 1;
        }
        if (terms[k].h == h && same_word(terms[k].s, s, wl) && tf[k] < UINT16_MAX)
            tf[k]++;
    }
}

/* Term frequencies of one row; returns its length in words. */
static size_t row_tf(const char *s, size_t len, const unsigned char *cls, const struct term *terms,
                     size_t nt, const uint64_t *first_mask, uint16_t *tf)
{
    size_t words = 0;
    memset(tf, 0, nt * sizeof *tf);
    for (size_t i = 0; i < len;) {
        unsigned k = cls[(unsigned char)s[i]];
        if (k == 0) {
            i++;
            continue;
        }
        if (k == 2) {
            i += (i + 1 < len && s[i + 1] == 'u') ? 6 : 2;
            continue;
        }
        size_t st = i;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        /* Eight bytes at a time to the first byte that is not a word byte. */
        while (len - i >= 8) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            uint64_t m = non_word8(w);
            if (m) {
                i += (size_t)__builtin_ctzll(m) >> 3;
                goto word_end;
            }
            i += 8;
        }
#endif
        while (i < len && cls[(unsigned char)s[i]] == 1)
            i++;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    word_end:
#endif
        words++;
        count_word(s + st, i - st, terms, nt, first_mask, tf);
    }
    return words;
}

/* A bit per byte of s[0..n) (n <= PLAIN_BLOCK), set for word bytes; bytes past n are not. */
#if defined(__SSE2__)
#define PLAIN_BLOCK 16
static inline uint32_t word_bits(const char *s, size_t n)
{
    char pad[16] = {0};
    if (n < 16)
        memcpy(pad, s, n);
    __m128i v = _mm_loadu_si128((const __m128i *)(n < 16 ? pad : s));
    /* signed compares on shifted bytes: '0'..'9' and 'a'..'z' (after | 0x20) land
     * at the bottom of the signed range; bytes >= 0x80 come from the sign bits */
    __m128i digit = _mm_cmplt_epi8(_mm_add_epi8(v, _mm_set1_epi8((char)(0x80 - '0'))), _mm_set1_epi8(-128 + 10));
    __m128i l = _mm_or_si128(v, _mm_set1_epi8(0x20));
    __m128i letter = _mm_cmplt_epi8(_mm_add_epi8(l, _mm_set1_epi8((char)(0x80 - 'a'))), _mm_set1_epi8(-128 + 26));
    return (uint32_t)_mm_movemask_epi8(_mm_or_si128(digit, letter)) | (uint32_t)_mm_movemask_epi8(v);
}
#elif __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define PLAIN_BLOCK 8
static inline uint32_t word_bits(const char *s, size_t n)
{
    uint64_t w = 0;
    memcpy(&w, s, n); /* little-endian: byte j of s is byte j of w; 0 pads */
    uint64_t word = ~non_word8(w) & HIGHS;
    return (uint32_t)(((word >> 7) * 0x0102040810204080ULL) >> 56); /* high bits gathered */
}
#endif

#ifdef PLAIN_BLOCK
static inline unsigned popcount16(uint32_t x)
{
    x = x - ((x >> 1) & 0x5555);
    x = (x & 0x3333) + ((x >> 2) & 0x3333);
    x = (x + (x >> 4)) & 0x0f0f;
    return (x + (x >> 8)) & 0x1f;
}

/* row_tf for a row without backslashes (most): words are the runs of word
 * bytes, found a block at a time from one bit mask; only words whose first
 * byte starts some term (`first_ok`) are measured and compared. */
static size_t row_tf_plain(const char *s, size_t len, const unsigned char *first_ok,
                           const struct term *terms, size_t nt, const uint64_t *first_mask,
                           uint16_t *tf)
{
    size_t words = 0;
    uint32_t carry = 0; /* 1: the byte before the block is a word byte */
    memset(tf, 0, nt * sizeof *tf);
    for (size_t b = 0; b < len; b += PLAIN_BLOCK) {
        uint32_t word = word_bits(s + b, len - b < PLAIN_BLOCK ? len - b : PLAIN_BLOCK);
        uint32_t starts = word & ~((word << 1) | carry);
        carry = (word >> (PLAIN_BLOCK - 1)) & 1;
        words += popcount16(starts);
        for (; starts; starts &= starts - 1) {
            unsigned j = (unsigned)__builtin_ctz(starts);
            if (!first_ok[(unsigned char)s[b + j]])
                continue;
            /* the word ends at the next non-word byte of the block (the padding
             * of a last, short block is one), or runs on past it */
            uint32_t after = ~word & ((1u << PLAIN_BLOCK) - 1) & ~((2u << j) - 1);
            size_t e = b + PLAIN_BLOCK;
            if (after)
                e = b + (size_t)__builtin_ctz(after);
            else
                while (e < len && word_byte((unsigned char)s[e]))
                    e++;
            count_word(s + b + j, e - b - j, terms, nt, first_mask, tf);
        }
    }
    return words;
}
#endif

int hr_bm25(const char *query, const struct hr_bm25_doc *docs, size_t n, int json, double *scores)
{
    struct term terms[MAX_TERMS];
    size_t nt = query ? query_terms(query, terms) : 0;
    for (size_t i = 0; i < n; i++)
        scores[i] = 0;
    if (nt == 0 || n == 0)
        return 0;
    uint16_t *tf = malloc(n * nt * sizeof *tf);
    uint32_t *dl = malloc(n * sizeof *dl);
    if (!tf || !dl) {
        free(tf), free(dl);
        return -1;
    }
    unsigned char cls[256];
    byte_classes(cls, json);
    /* Per word length, the first bytes of the terms that long (folded to 6
     * bits: a collision only costs a comparison). */
    uint64_t first_mask[MAX_TERM_LEN + 1] = {0};
    for (size_t k = 0; k < nt; k++)
        first_mask[terms[k].len] |= 1ULL << ((unsigned char)terms[k].s[0] & 63);
#ifdef PLAIN_BLOCK
    /* The bytes a term can start with, in either case. */
    unsigned char first_ok[256] = {0};
    for (unsigned c = 0; c < 256; c++)
        for (size_t k = 0; k < nt; k++)
            if (lower((unsigned char)c) == (unsigned char)terms[k].s[0])
                first_ok[c] = 1;
#endif
    double total = 0;
    for (size_t i = 0; i < n; i++) {
#ifdef PLAIN_BLOCK
        size_t w = json && memchr(docs[i].s, '\\', docs[i].len)
                       ? row_tf(docs[i].s, docs[i].len, cls, terms, nt, first_mask, tf + i * nt)
                       : row_tf_plain(docs[i].s, docs[i].len, first_ok, terms, nt, first_mask, tf + i * nt);
#else
        size_t w = row_tf(docs[i].s, docs[i].len, cls, terms, nt, first_mask, tf + i * nt);
#endif
        dl[i] = (uint32_t)w;
        total += (double)w;
        for (size_t k = 0; k < nt; k++)
            if (tf[i * nt + k])
                terms[k].df++;
    }
    double avgdl = total / (double)n;
    if (avgdl <= 0)
        avgdl = 1;
    const double k1 = 1.2, b = 0.75;
    int hits = 0;
    for (size_t i = 0; i < n; i++) {
        double score = 0;
        for (size_t k = 0; k < nt; k++) {
            double f = tf[i * nt + k];
            /* A term in most documents says nothing about which ones matter. */
            if (f == 0 || terms[k].df * 2 > n)
                continue;
            double df = terms[k].df;
            double idf = log(1.0 + ((double)n - df + 0.5) / (df + 0.5));
            score += idf * f * (k1 + 1) / (f + k1 * (1 - b + b * dl[i] / avgdl));
        }
        scores[i] = score;
        hits += score > 0;
    }
    free(tf);
    free(dl);
    return hits;
}
