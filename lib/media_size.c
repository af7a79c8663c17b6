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

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
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
            int d = at < n ? b64_value((unsigned char)s[at]) : -1;
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

/* `/Type /Page` not followed by a name character (so not /Pages), starting
 * before `limit` (the text may go on to n). */
static uint64_t count_page_objects(const unsigned char *p, size_t n, size_t limit)
{
    uint64_t pages = 0;
    for (const unsigned char *q = p, *end = p + n; (q = memmem(q, (size_t)(end - q), "/Type", 5)) != NULL;) {
        if ((size_t)(q - p) >= limit) break;
        q += 5;
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
#define PDF_MATCH_MAX 24 /* the longest `/Type /Page` counted across two reads */
static uint64_t object_stream_pages(const unsigned char *p, size_t n)
{
    uint64_t pages = 0;
    size_t inflated = 0;
    unsigned char out[65536];
    for (const unsigned char *q = p, *end = p + n; inflated < PDF_INFLATE_MAX &&
                                                   (q = memmem(q, (size_t)(end - q), "/ObjStm", 7)) != NULL;) {
        q += 7;
        size_t dict = (size_t)(end - q) < 4096 ? (size_t)(end - q) : 4096;
        const unsigned char *s = memmem(q, dict, "stream", 6);
        if (!s) continue;
        s += 6;
        if (s < end && *s == '\r') s++;
        if (s < end && *s == '\n') s++;
        z_stream z;
        memset(&z, 0, sizeof z);
        if (inflateInit(&z) != Z_OK) break;
        z.next_in = (unsigned char *)(uintptr_t)s;
        z.avail_in = (size_t)(end - s) > UINT_MAX ? UINT_MAX : (uInt)(end - s);
        size_t keep = 0;
        int rc;
        do {
            z.next_out = out + keep;
            z.avail_out = (uInt)(sizeof out - keep);
            rc = inflate(&z, Z_NO_FLUSH);
            size_t have = sizeof out - z.avail_out, fresh = have - keep;
            inflated += fresh;
            int last = rc != Z_OK || !fresh || inflated >= PDF_INFLATE_MAX;
            /* a match starting in the last bytes is counted with the next read */
            size_t limit = last || have < PDF_MATCH_MAX ? have : have - PDF_MATCH_MAX;
            pages += count_page_objects(out, have, limit);
            keep = have - limit;
            memmove(out, out + limit, keep);
            if (last) break;
        } while (1);
        inflateEnd(&z);
        q = s;
    }
    return pages;
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
    size_t k = 0;
    uint32_t v = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int d = b64_value((unsigned char)s[i]);
        if (d < 0) continue; /* padding, line breaks */
        v = v << 6 | (uint32_t)d;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[k++] = (unsigned char)(v >> bits);
        }
    }
    uint64_t pages = count_page_objects(buf, k, k);
    if (!pages) pages = object_stream_pages(buf, k);
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
