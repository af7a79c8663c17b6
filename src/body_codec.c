/* body_codec.c — gzip, deflate and zstd request bodies: zlib and libzstd do
 * the work; here the output grows in steps and stops at the caller's limit,
 * so a small body that inflates to gigabytes costs no more than the limit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>
#include <zstd.h>
#include "body_codec.h"

enum hr_codec hr_codec_parse(const char *v)
{
    if (!v) return HR_CODEC_IDENTITY;
    while (*v == ' ' || *v == '\t') v++;
    size_t n = strlen(v);
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t')) n--;
    if (!n || (n == 8 && !strncasecmp(v, "identity", 8))) return HR_CODEC_IDENTITY;
    if ((n == 4 && !strncasecmp(v, "gzip", 4)) || (n == 6 && !strncasecmp(v, "x-gzip", 6))) return HR_CODEC_GZIP;
    if (n == 7 && !strncasecmp(v, "deflate", 7)) return HR_CODEC_DEFLATE;
    if (n == 4 && !strncasecmp(v, "zstd", 4)) return HR_CODEC_ZSTD;
    return HR_CODEC_UNSUPPORTED;
}

/* A growing output buffer. It may hold one byte more than max: a stream
 * that stops short after exactly max bytes is then told from one that has
 * more to give (too large). */
struct outbuf {
    char *p;
    size_t len, cap, max;
};

static int grow(struct outbuf *o)
{
    if (o->len > o->max) return HR_CODEC_ERR_TOO_LARGE;
    size_t cap = o->cap ? o->cap * 2 : 64 * 1024;
    if (cap > o->max + 1) cap = o->max + 1;
    char *p = realloc(o->p, cap + 1); /* + the NUL */
    if (!p) return HR_CODEC_ERR_NOMEM;
    o->p = p;
    o->cap = cap;
    return 0;
}

/* windowBits: 15 + 16 for gzip, 15 for a zlib stream, -15 for raw deflate. */
static int inflate_all(const char *in, size_t len, int window_bits, struct outbuf *o, char *why, size_t whylen)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, window_bits) != Z_OK) return HR_CODEC_ERR_NOMEM;
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len; /* bodies are bounded by max_body_size, far below 4 GB */
    int rc = Z_OK, err = 0;
    while (rc != Z_STREAM_END) {
        if (o->len == o->cap && (err = grow(o))) break;
        z.next_out = (Bytef *)o->p + o->len;
        z.avail_out = (uInt)(o->cap - o->len);
        rc = inflate(&z, Z_NO_FLUSH);
        o->len = o->cap - z.avail_out;
        if (rc == Z_STREAM_END) break;
        if (rc == Z_BUF_ERROR && z.avail_in == 0) {
            snprintf(why, whylen, "the data ends before the end of the stream");
            err = HR_CODEC_ERR_CORRUPT;
            break;
        }
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            snprintf(why, whylen, "%s", z.msg ? z.msg : "invalid data");
            err = rc == Z_MEM_ERROR ? HR_CODEC_ERR_NOMEM : HR_CODEC_ERR_CORRUPT;
            break;
        }
    }
    if (!err && z.avail_in) {
        snprintf(why, whylen, "%u bytes follow the end of the stream", z.avail_in);
        err = HR_CODEC_ERR_CORRUPT;
    }
    inflateEnd(&z);
    return err;
}

static int zstd_all(const char *in, size_t len, struct outbuf *o, char *why, size_t whylen)
{
    ZSTD_DCtx *dc = ZSTD_createDCtx();
    if (!dc) return HR_CODEC_ERR_NOMEM;
    ZSTD_inBuffer ib = {in, len, 0};
    int err = 0;
    for (;;) {
        if (o->len == o->cap && (err = grow(o))) break;
        ZSTD_outBuffer ob = {o->p, o->cap, o->len};
        size_t rc = ZSTD_decompressStream(dc, &ob, &ib); /* 0: every frame so far is complete */
        o->len = ob.pos;
        if (ZSTD_isError(rc)) {
            snprintf(why, whylen, "%s", ZSTD_getErrorName(rc));
            err = HR_CODEC_ERR_CORRUPT;
            break;
        }
        if (ib.pos < ib.size || (rc != 0 && ob.pos == ob.size)) continue; /* more to read, or room needed */
        if (rc != 0) {
            snprintf(why, whylen, "the data ends inside a frame");
            err = HR_CODEC_ERR_CORRUPT;
        }
        break;
    }
    ZSTD_freeDCtx(dc);
    return err;
}

int hr_codec_decode(enum hr_codec c, const char *in, size_t len, size_t max, char **out, size_t *out_len, char *why,
                    size_t whylen)
{
    struct outbuf o = {NULL, 0, 0, max};
    int err;
    *out = NULL;
    *out_len = 0;
    if (why && whylen) why[0] = '\0';
    switch (c) {
    case HR_CODEC_GZIP: err = inflate_all(in, len, 15 + 16, &o, why, whylen); break;
    case HR_CODEC_DEFLATE:
        /* RFC 9110's deflate is a zlib stream; some clients send it raw. */
        err = inflate_all(in, len, 15, &o, why, whylen);
        if (err == HR_CODEC_ERR_CORRUPT && o.len == 0) err = inflate_all(in, len, -15, &o, why, whylen);
        break;
    case HR_CODEC_ZSTD: err = zstd_all(in, len, &o, why, whylen); break;
    default: err = HR_CODEC_ERR_UNSUPPORTED; break;
    }
    if (!err && o.len > max) err = HR_CODEC_ERR_TOO_LARGE;
    if (!err && !o.p && !(o.p = malloc(1))) err = HR_CODEC_ERR_NOMEM;
    if (err) {
        free(o.p);
        return err;
    }
    o.p[o.len] = '\0';
    *out = o.p;
    *out_len = o.len;
    return HR_CODEC_OK;
}

int hr_codec_encode(enum hr_codec c, const char *in, size_t len, char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (c == HR_CODEC_ZSTD) {
        size_t cap = ZSTD_compressBound(len);
        char *p = malloc(cap ? cap : 1);
        if (!p) return HR_CODEC_ERR_NOMEM;
        size_t n = ZSTD_compress(p, cap, in, len, 1);
        if (ZSTD_isError(n)) {
            free(p);
            return HR_CODEC_ERR_NOMEM;
        }
        *out = p;
        *out_len = n;
        return HR_CODEC_OK;
    }
    if (c != HR_CODEC_GZIP && c != HR_CODEC_DEFLATE) return HR_CODEC_ERR_UNSUPPORTED;
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 1, Z_DEFLATED, c == HR_CODEC_GZIP ? 15 + 16 : 15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return HR_CODEC_ERR_NOMEM;
    size_t cap = deflateBound(&z, (uLong)len) + 32;
    char *p = malloc(cap);
    if (!p) {
        deflateEnd(&z);
        return HR_CODEC_ERR_NOMEM;
    }
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    z.next_out = (Bytef *)p;
    z.avail_out = (uInt)cap;
    int rc = deflate(&z, Z_FINISH);
    size_t n = cap - z.avail_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END) {
        free(p);
        return HR_CODEC_ERR_NOMEM;
    }
    *out = p;
    *out_len = n;
    return HR_CODEC_OK;
}
