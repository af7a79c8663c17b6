/* journal.c — the metrics_db journal's format: rows the writer set aside
 * while the host was saturated, appended to a file beside the database and
 * loaded into it later (metrics_db.c decides when; doc/metrics-db.md).
 *
 * The file is a run of blocks, one per append:
 *
 *   "HRJ1"  u32 payload bytes  u32 rows  u64 hash of the payload  payload
 *
 * (little-endian; the hash is hr_hash128's first half). A row in the
 * payload: its six doubles as 8 bytes each, its six flags and seven counts
 * as LEB128 varints, then its seven strings, each a varint tag: 0 for "the
 * same as the row before in this block" (model, path and the like repeat
 * from row to row), else length + 1 and the bytes. A block decodes on its
 * own, so the offset of the next block to load is all a loader keeps; a
 * block cut short by a crash, or damaged, reads as MDB_BLOCK_BAD and
 * nothing after it is trusted. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "hash.h"
#include "mdb.h"

#define MAGIC "HRJ1"
#define HEADER_BYTES 20
/* Bounds a reader holds a header to, so a damaged one cannot ask for a
 * huge allocation: a block is one take of at most batch_rows (≤ 100 000)
 * rows of bounded strings. */
#define MAX_ROWS 100000u
#define MAX_PAYLOAD (MAX_ROWS * 2048u)
#define MAX_STRING 65536u

static int reserve(struct mdb_buf *b, size_t more)
{
    if (b->cap - b->len >= more) return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < more) cap *= 2;
    unsigned char *p = realloc(b->p, cap);
    if (!p) return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static size_t put_varint(unsigned char *p, uint64_t v)
{
    size_t k = 0;
    while (v >= 0x80) {
        p[k++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    p[k++] = (unsigned char)v;
    return k;
}

/* The varint at *p (before end): 0, or -1 when cut short or over 64 bits. */
static int get_varint(const unsigned char **p, const unsigned char *end, uint64_t *v)
{
    uint64_t out = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*p >= end) return -1;
        unsigned char c = *(*p)++;
        out |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *v = out;
            return 0;
        }
    }
    return -1;
}

static uint64_t zigzag(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static int64_t unzigzag(uint64_t v) { return (int64_t)(v >> 1) ^ -(int64_t)(v & 1); }

static const char *const *texts(const struct mdb_row *r, const char *out[7])
{
    out[0] = r->request_id, out[1] = r->model, out[2] = r->provider, out[3] = r->wire_format;
    out[4] = r->stack, out[5] = r->path, out[6] = r->transforms;
    return out;
}

int mdb_journal_encode(struct mdb_buf *out, const struct mdb_row *rows, size_t n)
{
    size_t start = out->len;
    if (reserve(out, HEADER_BYTES)) return -1;
    out->len += HEADER_BYTES;
    const struct mdb_row *prev = NULL;
    uint32_t count = 0;
    for (const struct mdb_row *r = rows; r && count < n; r = r->next, count++) {
        const char *s[7], *ps[7];
        texts(r, s);
        if (prev) texts(prev, ps);
        size_t strings = 0;
        for (int k = 0; k < 7; k++) strings += r->text_len[k] + 10;
        if (reserve(out, 6 * 8 + 13 * 10 + strings)) {
            out->len = start;
            return -1;
        }
        unsigned char *p = out->p + out->len;
        const double d[6] = {r->timestamp, r->cost_usd, r->savings_usd, r->latency_ms, r->overhead_ms, r->ttfb_ms};
        for (int k = 0; k < 6; k++) {
            uint64_t bits;
            memcpy(&bits, &d[k], 8);
            put_u64(p, bits);
            p += 8;
        }
        const int flags[6] = {r->status, r->credited, r->cached, r->streamed, r->failed, r->priced};
        for (int k = 0; k < 6; k++) p += put_varint(p, zigzag(flags[k]));
        const int64_t counts[7] = {r->tokens_input_before, r->tokens_input_after, r->tokens_saved, r->tokens_output,
                                   r->cache_read_tokens, r->cache_write_tokens, r->reasoning_tokens};
        for (int k = 0; k < 7; k++) p += put_varint(p, zigzag(counts[k]));
        for (int k = 0; k < 7; k++) {
            uint32_t len = r->text_len[k];
            if (prev && prev->text_len[k] == len && !memcmp(ps[k], s[k], len)) {
                *p++ = 0;
                continue;
            }
            p += put_varint(p, (uint64_t)len + 1);
            memcpy(p, s[k], len);
            p += len;
        }
        out->len = (size_t)(p - out->p);
        prev = r;
    }
    size_t payload = out->len - start - HEADER_BYTES;
    if (payload > MAX_PAYLOAD) { /* a reader would refuse it */
        out->len = start;
        return -1;
    }
    uint64_t h1, h2;
    hr_hash128(out->p + start + HEADER_BYTES, payload, &h1, &h2);
    unsigned char *h = out->p + start;
    memcpy(h, MAGIC, 4);
    put_u32(h + 4, (uint32_t)payload);
    put_u32(h + 8, count);
    put_u64(h + 12, h1);
    return 0;
}

void mdb_block_free(struct mdb_block *b)
{
    free(b->rows);
    free(b->data);
    memset(b, 0, sizeof *b);
}

int mdb_journal_decode(const unsigned char *payload, size_t len, uint32_t nrows, struct mdb_block *b, char *why,
                       size_t whylen)
{
    b->n = 0;
    if (nrows > MAX_ROWS) {
        snprintf(why, whylen, "a block claims %u rows (at most %u)", nrows, MAX_ROWS);
        return MDB_BLOCK_BAD;
    }
    if (b->cap_rows < nrows) {
        struct mdb_row *rows = realloc(b->rows, (nrows ? nrows : 1) * sizeof *rows);
        if (!rows) {
            snprintf(why, whylen, "out of memory for %u rows", nrows);
            return MDB_BLOCK_IO;
        }
        b->rows = rows;
        b->cap_rows = nrows;
    }
    const unsigned char *p = payload, *end = payload + len;
    uint32_t i;
    for (i = 0; i < nrows; i++) {
        struct mdb_row *r = &b->rows[i];
        memset(r, 0, sizeof *r);
        if ((size_t)(end - p) < 6 * 8) goto short_row;
        double *d[6] = {&r->timestamp, &r->cost_usd, &r->savings_usd, &r->latency_ms, &r->overhead_ms, &r->ttfb_ms};
        for (int k = 0; k < 6; k++) {
            uint64_t bits = get_u64(p);
            memcpy(d[k], &bits, 8);
            p += 8;
        }
        int *flags[6] = {&r->status, &r->credited, &r->cached, &r->streamed, &r->failed, &r->priced};
        for (int k = 0; k < 6; k++) {
            uint64_t v;
            if (get_varint(&p, end, &v)) goto short_row;
            int64_t x = unzigzag(v);
            if (x < -1000000 || x > 1000000) {
                snprintf(why, whylen, "row %u: a status or flag out of range (%lld)", i, (long long)x);
                return MDB_BLOCK_BAD;
            }
            *flags[k] = (int)x;
        }
        int64_t *counts[7] = {&r->tokens_input_before, &r->tokens_input_after, &r->tokens_saved, &r->tokens_output,
                              &r->cache_read_tokens, &r->cache_write_tokens, &r->reasoning_tokens};
        for (int k = 0; k < 7; k++) {
            uint64_t v;
            if (get_varint(&p, end, &v)) goto short_row;
            *counts[k] = unzigzag(v);
        }
        const char **s[7] = {&r->request_id, &r->model, &r->provider, &r->wire_format,
                             &r->stack, &r->path, &r->transforms};
        const char *before[7];
        if (i) texts(&b->rows[i - 1], before);
        for (int k = 0; k < 7; k++) {
            uint64_t tag;
            if (get_varint(&p, end, &tag)) goto short_row;
            if (!tag) {
                if (!i) {
                    snprintf(why, whylen, "the first row refers to a row before it");
                    return MDB_BLOCK_BAD;
                }
                *s[k] = before[k];
                r->text_len[k] = b->rows[i - 1].text_len[k];
                continue;
            }
            uint64_t l = tag - 1;
            if (l > MAX_STRING || l > (uint64_t)(end - p)) goto short_row;
            *s[k] = (const char *)p;
            r->text_len[k] = (uint32_t)l;
            p += l;
        }
        r->next = i + 1 < nrows ? &b->rows[i + 1] : NULL;
    }
    if (p != end) {
        snprintf(why, whylen, "%zu bytes after the last of %u rows", (size_t)(end - p), nrows);
        return MDB_BLOCK_BAD;
    }
    b->n = nrows;
    return MDB_BLOCK_OK;
short_row:
    snprintf(why, whylen, "row %u of %u is cut short or malformed", i + 1, nrows);
    return MDB_BLOCK_BAD;
}

/* pread all of len bytes at off: 0, 1 at the end of the file first, -1 with errno. */
static int read_full(int fd, void *buf, size_t len, int64_t off, size_t *got)
{
    *got = 0;
    while (*got < len) {
        ssize_t r = pread(fd, (char *)buf + *got, len - *got, (off_t)(off + (int64_t)*got));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        if (r == 0) return 1;
        *got += (size_t)r;
    }
    return 0;
}

int mdb_journal_read(int fd, int64_t off, struct mdb_block *b, char *why, size_t whylen)
{
    b->n = 0;
    b->bytes = 0;
    unsigned char h[HEADER_BYTES];
    size_t got;
    int rc = read_full(fd, h, sizeof h, off, &got);
    if (rc < 0) {
        snprintf(why, whylen, "cannot read at byte %lld: %s", (long long)off, strerror(errno));
        return MDB_BLOCK_IO;
    }
    if (rc > 0 && got == 0) return MDB_BLOCK_END;
    if (rc > 0) {
        snprintf(why, whylen, "the block at byte %lld is cut short (%zu header bytes)", (long long)off, got);
        return MDB_BLOCK_BAD;
    }
    uint32_t len = get_u32(h + 4), nrows = get_u32(h + 8);
    if (memcmp(h, MAGIC, 4) || len > MAX_PAYLOAD || nrows > MAX_ROWS) {
        snprintf(why, whylen, "no block header at byte %lld", (long long)off);
        return MDB_BLOCK_BAD;
    }
    if (b->data_cap < len) {
        unsigned char *d = realloc(b->data, len ? len : 1);
        if (!d) {
            snprintf(why, whylen, "out of memory for a %u-byte block", len);
            return MDB_BLOCK_IO;
        }
        b->data = d;
        b->data_cap = len;
    }
    rc = read_full(fd, b->data, len, off + HEADER_BYTES, &got);
    if (rc < 0) {
        snprintf(why, whylen, "cannot read at byte %lld: %s", (long long)off + HEADER_BYTES, strerror(errno));
        return MDB_BLOCK_IO;
    }
    if (rc > 0) {
        snprintf(why, whylen, "the block at byte %lld is cut short (%zu of %u bytes)", (long long)off, got, len);
        return MDB_BLOCK_BAD;
    }
    uint64_t h1, h2;
    hr_hash128(b->data, len, &h1, &h2);
    if (h1 != get_u64(h + 12)) {
        snprintf(why, whylen, "the block at byte %lld does not match its checksum", (long long)off);
        return MDB_BLOCK_BAD;
    }
    char inner[200];
    rc = mdb_journal_decode(b->data, len, nrows, b, inner, sizeof inner);
    if (rc != MDB_BLOCK_OK) {
        snprintf(why, whylen, "the block at byte %lld: %s", (long long)off, inner);
        return rc;
    }
    b->bytes = HEADER_BYTES + (size_t)len;
    return MDB_BLOCK_OK;
}

int mdb_journal_write(int fd, const struct mdb_buf *buf, int64_t end)
{
    size_t done = 0;
    while (done < buf->len) {
        ssize_t w = pwrite(fd, buf->p + done, buf->len - done, (off_t)(end + (int64_t)done));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int e = w < 0 ? errno : ENOSPC;
            /* No half block left behind for a reader to stop at. */
            if (done && ftruncate(fd, (off_t)end)) { /* the next append overwrites it anyway */ }
            return -e;
        }
        done += (size_t)w;
    }
    return 0;
}
