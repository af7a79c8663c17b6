/* src/tokenizer_bpe.c — the .tiktoken rank table (base64 loader + open-addressing hash) and
 * the byte-pair merge that turns one pre-token into a token count, exactly as tiktoken does. */
#include "tokenizer.h"
#include "base64.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Each token lives in the blob as [rank u32][len u8][bytes]; a slot holds the hash and the
 * entry offset, so a lookup touches two cache lines: slot, then entry. */
struct hr_bpe_slot {
    uint32_t hash;
    uint32_t off;   /* entry offset + 1 into blob, 0 = empty */
};

struct hr_bpe {
    uint8_t *blob;
    size_t ntoks;
    struct hr_bpe_slot *slots;
    size_t mask;
    size_t maxlen;
    uint32_t *pair;   /* rank of every 2-byte string, [b0 << 8 | b1]: the hottest lookup */
};

#define NO_RANK UINT32_MAX

/* Multiply-mix hash reading 8 bytes at a time: pieces are short, so this beats byte loops. */
static uint32_t hash_bytes(const uint8_t *p, size_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xFF51AFD7ED558CCDull);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xC4CEB9FE1A85EC53ull;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    if (n) {
        uint64_t w = 0;
        memcpy(&w, p, n);
        h = (h ^ w) * 0xC4CEB9FE1A85EC53ull;
        h ^= h >> 29;
    }
    h *= 0xFF51AFD7ED558CCDull;
    return (uint32_t)(h >> 32);
}

/* Rank lookup through the hash table only (used while building the pair table too). */
static uint32_t rank_hash(const struct hr_bpe *b, const uint8_t *p, size_t n)
{
    uint32_t h = hash_bytes(p, n);
    for (size_t i = h & b->mask;; i = (i + 1) & b->mask) {
        const struct hr_bpe_slot *sl = &b->slots[i];
        if (!sl->off)
            return NO_RANK;
        if (sl->hash != h)
            continue;
        const uint8_t *e = b->blob + sl->off - 1;
        if (e[4] == n && memcmp(e + 5, p, n) == 0) {
            uint32_t r;
            memcpy(&r, e, 4);
            return r;
        }
    }
}

uint32_t hr_bpe_rank(const struct hr_bpe *b, const uint8_t *p, size_t n)
{
    if (n == 2)
        return b->pair[(unsigned)p[0] << 8 | p[1]];
    if (n == 0 || n > b->maxlen)
        return NO_RANK;
    return rank_hash(b, p, n);
}

void hr_bpe_free(struct hr_bpe *b)
{
    if (!b)
        return;
    free(b->blob);
    free(b->slots);
    free(b->pair);
    free(b);
}

size_t hr_bpe_size(const struct hr_bpe *b) { return b ? b->ntoks : 0; }

int hr_bpe_load(const char *path, struct hr_bpe **out, char *err, size_t errlen)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        snprintf(err, errlen, "cannot open token table %s: %s", path, strerror(e));
        return -e;
    }
    char *text = NULL;
    long sz = -1;
    if (fseek(f, 0, SEEK_END) == 0)
        sz = ftell(f);
    if (sz < 0 || fseek(f, 0, SEEK_SET) != 0 || !(text = malloc((size_t)sz + 1)) ||
        fread(text, 1, (size_t)sz, f) != (size_t)sz) {
        snprintf(err, errlen, "cannot read token table %s", path);
        free(text);
        fclose(f);
        return -EIO;
    }
    fclose(f);
    text[sz] = '\0';

    size_t lines = 0;
    for (long i = 0; i < sz; i++)
        lines += text[i] == '\n';
    lines++;

    struct hr_bpe *b = calloc(1, sizeof *b);
    /* Base64 never expands on decode, so file size + 5 header bytes per line bound the blob. */
    if (b)
        b->blob = malloc((size_t)sz + 5 * lines + 1);
    size_t cap = 1;
    while (cap < lines * 2)
        cap <<= 1;
    if (b) {
        b->slots = calloc(cap, sizeof *b->slots);
        b->pair = malloc(65536 * sizeof *b->pair);
    }
    if (!b || !b->blob || !b->slots || !b->pair) {
        snprintf(err, errlen, "out of memory loading %s", path);
        hr_bpe_free(b);
        free(text);
        return -ENOMEM;
    }
    b->mask = cap - 1;
    memset(b->pair, 0xFF, 65536 * sizeof *b->pair);  /* NO_RANK everywhere */

    size_t boff = 0, lineno = 0;
    char *p = text, *end = text + sz;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *le = nl ? nl : end;
        lineno++;
        if (le > p) {
            char *sp = memchr(p, ' ', (size_t)(le - p));
            char *rend = NULL;
            /* Strict: the standard alphabet, '=' only at the end. */
            long dl = sp ? hr_b64_decode(p, (size_t)(sp - p), b->blob + boff + 5, 0) : -1;
            unsigned long rank = 0;
            if (sp) {
                rend = sp + 1;
                while (rend < le && *rend >= '0' && *rend <= '9' && rank < NO_RANK)
                    rank = rank * 10 + (unsigned long)(*rend++ - '0');
            }
            if (dl <= 0 || dl > 255 || rend == sp + 1 || (rend != le && *rend != '\r') || rank >= NO_RANK ||
                boff + 5 + (size_t)dl >= UINT32_MAX) {
                snprintf(err, errlen, "%s:%zu: malformed line (want \"<base64> <rank>\")", path, lineno);
                hr_bpe_free(b);
                free(text);
                return -EINVAL;
            }
            uint8_t *e = b->blob + boff, *bytes = e + 5;
            uint32_t r32 = (uint32_t)rank, h = hash_bytes(bytes, (size_t)dl);
            memcpy(e, &r32, 4);
            e[4] = (uint8_t)dl;
            if ((size_t)dl > b->maxlen)
                b->maxlen = (size_t)dl;
            if (dl == 2)
                b->pair[bytes[0] << 8 | bytes[1]] = r32;
            size_t i = h & b->mask;
            while (b->slots[i].off)
                i = (i + 1) & b->mask;
            b->slots[i].hash = h;
            b->slots[i].off = (uint32_t)(boff + 1);
            b->ntoks++;
            boff += 5 + (size_t)dl;
        }
        p = le + 1;
    }
    free(text);
    for (int c = 0; c < 256; c++) {
        uint8_t byte = (uint8_t)c;
        if (hr_bpe_rank(b, &byte, 1) == NO_RANK) {
            snprintf(err, errlen, "%s: byte 0x%02x has no rank; not a byte-level BPE table", path, c);
            hr_bpe_free(b);
            return -EINVAL;
        }
    }
    *out = b;
    return 0;
}

/* tiktoken's own loop: boundaries in an array, rescan for the lowest rank (leftmost on ties).
 * Quadratic, but the fastest choice for the short pieces that make up almost all text. */
#define SMALL_MAX 128
size_t hr_bpe_count_small(const struct hr_bpe *b, const uint8_t *p, size_t n)
{
    if (n <= 1)
        return n;
    uint32_t pos[SMALL_MAX + 1], rank[SMALL_MAX + 1];
    if (n > SMALL_MAX)
        return hr_bpe_count_heap(b, p, n);
    size_t cnt = n + 1;  /* boundaries */
    for (size_t i = 0; i < cnt; i++)
        pos[i] = (uint32_t)i;
    for (size_t i = 0; i + 2 < cnt; i++)
        rank[i] = hr_bpe_rank(b, p + i, 2);
    rank[cnt - 2] = NO_RANK;
    while (cnt > 2) {
        uint32_t best = NO_RANK;
        size_t bi = 0;
        for (size_t i = 0; i + 2 < cnt; i++)
            if (rank[i] < best) {
                best = rank[i];
                bi = i;
            }
        if (best == NO_RANK)
            break;
        memmove(&pos[bi + 1], &pos[bi + 2], (cnt - bi - 2) * sizeof pos[0]);
        memmove(&rank[bi + 1], &rank[bi + 2], (cnt - bi - 2) * sizeof rank[0]);
        cnt--;
        rank[bi] = bi + 2 < cnt ? hr_bpe_rank(b, p + pos[bi], pos[bi + 2] - pos[bi]) : NO_RANK;
        if (bi > 0)
            rank[bi - 1] = hr_bpe_rank(b, p + pos[bi - 1], pos[bi + 1] - pos[bi - 1]);
    }
    return cnt - 1;
}

/* Long pieces (a megabyte of letters is one pre-token): linked list of parts plus a binary
 * heap of candidate merges keyed (rank, start) — the same order as tiktoken's leftmost-lowest
 * rescan, in O(n log n). Stale heap entries are skipped by checking the pair still exists. */
struct hent {
    uint32_t rank, start, end;
};

static int hless(const struct hent *a, const struct hent *c)
{
    return a->rank < c->rank || (a->rank == c->rank && a->start < c->start);
}

static void hpush(struct hent *h, size_t *hn, struct hent e)
{
    size_t i = (*hn)++;
    while (i > 0) {
        size_t par = (i - 1) / 2;
        if (!hless(&e, &h[par]))
            break;
        h[i] = h[par];
        i = par;
    }
    h[i] = e;
}

static struct hent hpop(struct hent *h, size_t *hn)
{
    struct hent top = h[0], last = h[--(*hn)];
    size_t i = 0, n = *hn;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && hless(&h[c + 1], &h[c]))
            c++;
        if (!hless(&h[c], &last))
            break;
        h[i] = h[c];
        i = c;
    }
    if (n)
        h[i] = last;
    return top;
}

size_t hr_bpe_count_heap(const struct hr_bpe *b, const uint8_t *p, size_t n)
{
    if (n <= 1)
        return n;
    /* Parts are named by their start offset; nxt[s] is the start of the following part
     * (n at the end), prv[s] the previous one, alive[s] whether s still starts a part. */
    uint32_t *nxt = malloc(n * sizeof *nxt), *prv = malloc(n * sizeof *prv);
    uint8_t *alive = malloc(n);
    /* Each merge pushes at most two entries: n initial + 2n bounds the heap. */
    struct hent *heap = malloc(3 * n * sizeof *heap);
    if (!nxt || !prv || !alive || !heap) {
        free(nxt); free(prv); free(alive); free(heap);
        return n;  /* out of memory: an upper bound is the honest answer */
    }
    size_t hn = 0, parts = n;
    for (size_t i = 0; i < n; i++) {
        nxt[i] = (uint32_t)(i + 1);
        prv[i] = (uint32_t)(i ? i - 1 : 0);
        alive[i] = 1;
    }
    for (size_t i = 0; i + 1 < n; i++) {
        uint32_t r = hr_bpe_rank(b, p + i, 2);
        if (r != NO_RANK)
            hpush(heap, &hn, (struct hent){r, (uint32_t)i, (uint32_t)(i + 2)});
    }
    while (hn) {
        struct hent e = hpop(heap, &hn);
        uint32_t s = e.start, m = alive[s] ? nxt[s] : (uint32_t)n;
        if (m >= n || nxt[m] != e.end)
            continue;  /* stale: s was merged away or its right neighbour changed */
        /* Merge s with m. */
        alive[m] = 0;
        nxt[s] = e.end;
        if (e.end < n)
            prv[e.end] = s;
        parts--;
        if (e.end < n) {
            uint32_t r = hr_bpe_rank(b, p + s, nxt[e.end] - s);
            if (r != NO_RANK)
                hpush(heap, &hn, (struct hent){r, s, nxt[e.end]});
        }
        if (s > 0) {
            uint32_t ps = prv[s];
            uint32_t r = hr_bpe_rank(b, p + ps, e.end - ps);
            if (r != NO_RANK)
                hpush(heap, &hn, (struct hent){r, ps, e.end});
        }
    }
    free(nxt); free(prv); free(alive); free(heap);
    return parts;
}

size_t hr_bpe_count_piece(const struct hr_bpe *b, const uint8_t *p, size_t n)
{
    if (n == 0)
        return 0;
    if (hr_bpe_rank(b, p, n) != NO_RANK)
        return 1;
    return n <= SMALL_MAX ? hr_bpe_count_small(b, p, n) : hr_bpe_count_heap(b, p, n);
}
