/* t/body_codec_test.c — request bodies in gzip, deflate and zstd
 * (src/body_codec.c): each coding decodes what it encoded, at every size
 * around the output's growth steps; the limit is exact (a body of exactly
 * max bytes decodes, one byte more is refused) however small the input;
 * truncated, trailing and garbage data are refused with a reason. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>
#include "body_codec.h"
#include "tap.h"

static char *sample(size_t n)
{
    char *s = malloc(n + 1);
    unsigned x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        s[i] = (i % 97 < 60) ? "{\"role\":\"tool\",\"content\":\"log line \"}"[i % 37] : (char)('a' + (x >> 16) % 26);
    }
    s[n] = '\0';
    return s;
}

static int roundtrip(enum hr_codec c, size_t n)
{
    char *in = sample(n), *enc, *dec, why[160];
    size_t enc_len, dec_len;
    int good = hr_codec_encode(c, in, n, &enc, &enc_len) == HR_CODEC_OK &&
               hr_codec_decode(c, enc, enc_len, n, &dec, &dec_len, why, sizeof why) == HR_CODEC_OK;
    if (good) {
        good = dec_len == n && !memcmp(dec, in, n) && dec[n] == '\0';
        free(dec);
    }
    if (good) free(enc);
    free(in);
    return good;
}

int main(void)
{
    is_int(hr_codec_parse(NULL), HR_CODEC_IDENTITY, "no header: as it is");
    is_int(hr_codec_parse(" identity "), HR_CODEC_IDENTITY, "identity");
    is_int(hr_codec_parse("ZSTD"), HR_CODEC_ZSTD, "zstd, any case");
    is_int(hr_codec_parse("x-gzip"), HR_CODEC_GZIP, "x-gzip is gzip");
    is_int(hr_codec_parse("deflate"), HR_CODEC_DEFLATE, "deflate");
    is_int(hr_codec_parse("br"), HR_CODEC_UNSUPPORTED, "br: unsupported");
    is_int(hr_codec_parse("gzip, zstd"), HR_CODEC_UNSUPPORTED, "a list of codings: unsupported");

    static const enum hr_codec codecs[] = {HR_CODEC_GZIP, HR_CODEC_DEFLATE, HR_CODEC_ZSTD};
    static const char *const names[] = {"gzip", "deflate", "zstd"};
    static const size_t sizes[] = {0, 1, 65535, 65536, 65537, 131072, 262145, 3 << 20};
    for (size_t k = 0; k < 3; k++) {
        int all = 1;
        for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) all &= roundtrip(codecs[k], sizes[i]);
        ok(all, "%s: decodes what it encoded, 0 bytes to 3 MB, across the output's growth steps", names[k]);

        /* the limit: exactly max decodes, max - 1 is refused */
        size_t n = 200000;
        char *in = sample(n), *enc, *dec, why[160];
        size_t enc_len, dec_len;
        hr_codec_encode(codecs[k], in, n, &enc, &enc_len);
        is_int(hr_codec_decode(codecs[k], enc, enc_len, n, &dec, &dec_len, why, sizeof why), HR_CODEC_OK,
               "%s: a body of exactly the limit decodes", names[k]);
        free(dec);
        is_int(hr_codec_decode(codecs[k], enc, enc_len, n - 1, &dec, &dec_len, why, sizeof why),
               HR_CODEC_ERR_TOO_LARGE, "%s: one byte over the limit is refused", names[k]);
        int rc = hr_codec_decode(codecs[k], enc, enc_len - 5, n, &dec, &dec_len, why, sizeof why);
        ok(rc == HR_CODEC_ERR_CORRUPT && why[0], "%s: truncated data is refused: %s", names[k], why);
        char *more = malloc(enc_len + 3);
        memcpy(more, enc, enc_len);
        memcpy(more + enc_len, "xyz", 3);
        rc = hr_codec_decode(codecs[k], more, enc_len + 3, n, &dec, &dec_len, why, sizeof why);
        ok(rc == HR_CODEC_ERR_CORRUPT && why[0], "%s: bytes after the end are refused: %s", names[k], why);
        rc = hr_codec_decode(codecs[k], "\x01\x02 not data at all", 18, n, &dec, &dec_len, why, sizeof why);
        ok(rc == HR_CODEC_ERR_CORRUPT && why[0], "%s: garbage is refused: %s", names[k], why);
        free(more);
        free(enc);
        free(in);
    }

    /* a bomb: 64 MB of zeros in a few kB stops at the limit */
    size_t big = 64u << 20;
    char *zeros = calloc(1, big), *enc, *dec, why[160];
    size_t cap = ZSTD_compressBound(big), dec_len;
    enc = malloc(cap);
    size_t enc_len = ZSTD_compress(enc, cap, zeros, big, 3);
    is_int(hr_codec_decode(HR_CODEC_ZSTD, enc, enc_len, 1 << 20, &dec, &dec_len, why, sizeof why),
           HR_CODEC_ERR_TOO_LARGE, "zstd: %zu bytes that would inflate to 64 MB stop at a 1 MB limit", enc_len);
    /* two frames one after the other are one body */
    char two[64];
    size_t a = ZSTD_compress(two, 32, "{\"a\":", 5, 1), b = ZSTD_compress(two + a, sizeof two - a, "1}", 2, 1);
    ok(hr_codec_decode(HR_CODEC_ZSTD, two, a + b, 100, &dec, &dec_len, why, sizeof why) == HR_CODEC_OK &&
           dec_len == 7 && !strcmp(dec, "{\"a\":1}"),
       "zstd: concatenated frames decode as one body");
    free(dec);
    free(enc);
    free(zeros);
    return tap_exit();
}
