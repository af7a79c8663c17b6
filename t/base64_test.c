/* t/base64_test.c — lib/base64.c, the one base64 decoder, with each
 * caller's acceptance: the .tiktoken loader's strict one (flags 0: the
 * standard alphabet, '=' only at the end, nothing else) and the media
 * counters' lenient one (HR_B64_URL | HR_B64_SKIP: either alphabet, any
 * other character skipped, as in a data: URL with line breaks). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base64.h"
#include "tap.h"

#define STRICT 0u
#define MEDIA (HR_B64_URL | HR_B64_SKIP)

/* Decodes s under flags: the bytes as a string in out (NUL-ended), or -1. */
static long dec(const char *s, unsigned flags, char *out)
{
    size_t n = strlen(s);
    uint8_t *buf = malloc(n / 4 * 3 + 3 + 1);
    if (!buf) return -2;
    long k = hr_b64_decode(s, n, buf, flags);
    if (k >= 0) {
        memcpy(out, buf, (size_t)k);
        out[k] = '\0';
    }
    free(buf);
    return k;
}

struct want {
    const char *in;
    long len;        /* -1: refused */
    const char *out; /* when len >= 0 */
};

/* s with control and high bytes written as \xNN, for a test's name. */
static const char *shown(const char *s, char *buf, size_t cap)
{
    size_t k = 0;
    for (; *s && k + 5 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        k += (size_t)(c < 0x20 || c >= 0x7f ? snprintf(buf + k, cap - k, "\\x%02x", c)
                                            : snprintf(buf + k, cap - k, "%c", c));
    }
    buf[k] = '\0';
    return buf;
}

static void check(const char *mode, unsigned flags, const struct want *w, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char out[64], in_s[96], out_s[96];
        long k = dec(w[i].in, flags, out);
        shown(w[i].in, in_s, sizeof in_s);
        if (w[i].len < 0)
            is_int(k, -1, "%s: \"%s\" refused", mode, in_s);
        else
            ok(k == w[i].len && !memcmp(out, w[i].out, (size_t)k), "%s: \"%s\" -> \"%s\" (%ld bytes, got %ld)", mode,
               in_s, shown(w[i].out, out_s, sizeof out_s), w[i].len, k);
    }
}

static void strict(void)
{
    static const struct want w[] = {
        {"", 0, ""},
        {"QUJD", 3, "ABC"},
        {"QUI=", 2, "AB"},
        {"QQ==", 1, "A"},
        {"QUJDRA==", 4, "ABCD"},
        {"Pz8/", 3, "\?\?\?"},  /* '/' */
        {"Pj4+", 3, ">>>"},  /* '+' */
        /* Length not a multiple of 4: taken as far as whole bytes go. */
        {"QUI", 2, "AB"},
        {"QQ", 1, "A"},
        {"Q", 0, ""},        /* 6 bits, no byte: the loader refuses an empty token */
        {"QUJDR", 3, "ABC"},
        /* Padding: any number of '=' at the end, none elsewhere. */
        {"QQ=", 1, "A"},
        {"QQ===", 1, "A"},
        {"====", 0, ""},
        {"Q=Q=", -1, NULL},
        {"QQ==QQ==", -1, NULL},
        {"=QQ=", -1, NULL},
        /* Characters outside the standard alphabet. */
        {"Pz8_", -1, NULL},  /* URL-safe '_' */
        {"Pj4-", -1, NULL},  /* URL-safe '-' */
        {"QU*=", -1, NULL},
        {"QUI.", -1, NULL},
        {"\x80QQ=", -1, NULL},
        /* Whitespace is not skipped: a .tiktoken line is "<base64> <rank>". */
        {"QU I=", -1, NULL},
        {"QUI=\n", -1, NULL},
        {"QUI=\r", -1, NULL},
        {" QUI=", -1, NULL},
        {"QUI\t=", -1, NULL},
    };
    check("strict", STRICT, w, sizeof w / sizeof *w);
}

static void media(void)
{
    static const struct want w[] = {
        {"", 0, ""},
        {"QUJD", 3, "ABC"},
        {"QUI=", 2, "AB"},
        {"QUI", 2, "AB"},
        {"Q", 0, ""},
        {"QQ===", 1, "A"},
        /* Both alphabets. */
        {"Pz8_", 3, "\?\?\?"},
        {"Pj4-", 3, ">>>"},
        {"Pz8/Pj4-", 6, "\?\?\?>>>"},
        /* Anything else skipped: line breaks, spaces, padding in between, junk. */
        {"QU\nJD", 3, "ABC"},
        {"QUJD\r\nRA==\r\n", 4, "ABCD"},
        {" Q U J D ", 3, "ABC"},
        {"Q=Q=", 1, "A"},
        {"QQ==QQ==", 3, "A\x04\x10"}, /* the '=' skipped: QQQQ */
        {"*!QUJD", 3, "ABC"},
        {"QU\x80JD", 3, "ABC"},
        {"!!!!****", 0, ""},
    };
    check("media", MEDIA, w, sizeof w / sizeof *w);
}

static void digits(void)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    int bad0 = 0, badurl = 0, n0 = 0, nurl = 0;
    for (int c = 0; c < 256; c++) {
        const char *at = c ? strchr(a, c) : NULL;
        int want = at ? (int)(at - a) : -1;
        int v0 = hr_b64_value((unsigned char)c, 0), vu = hr_b64_value((unsigned char)c, HR_B64_URL);
        int wantu = c == '-' ? 62 : c == '_' ? 63 : want;
        bad0 += v0 != want;
        badurl += vu != wantu;
        n0 += v0 >= 0;
        nurl += vu >= 0;
    }
    is_int(bad0, 0, "hr_b64_value: the standard alphabet's 64 digits, -1 for the other 192 bytes");
    is_int(n0, 64, "... 64 digits");
    is_int(badurl, 0, "hr_b64_value with HR_B64_URL: '-' 62 and '_' 63 too");
    is_int(nurl, 66, "... 66 digits");
}

/* Random bytes encoded with either alphabet decode back to themselves. */
static void round_trip(void)
{
    static const char std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    static const char url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    srand(7);
    int bad = 0, url_refused = 0, url_runs = 0;
    for (int run = 0; run < 2000; run++) {
        uint8_t in[96], out[96];
        char enc[132], enc_url[132];
        size_t n = (size_t)(rand() % 96), k = 0;
        for (size_t i = 0; i < n; i++) in[i] = (uint8_t)rand();
        for (size_t i = 0; i < n; i += 3) {
            uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
            int m = n - i >= 3 ? 4 : (int)(n - i) + 1;
            for (int j = 0; j < 4; j++, k++) {
                int d = (int)(v >> (18 - 6 * j) & 63);
                enc[k] = j < m ? std[d] : '=';
                enc_url[k] = j < m ? url[d] : '=';
            }
        }
        long a = hr_b64_decode(enc, k, out, STRICT);
        bad += a != (long)n || memcmp(in, out, n);
        long b = hr_b64_decode(enc_url, k, out, MEDIA);
        bad += b != (long)n || memcmp(in, out, n);
        if (memchr(enc_url, '-', k) || memchr(enc_url, '_', k)) {
            url_runs++;
            url_refused += hr_b64_decode(enc_url, k, out, STRICT) == -1;
        }
    }
    is_int(bad, 0, "2,000 random byte strings: both alphabets decode back to the bytes");
    ok(url_runs > 1000 && url_refused == url_runs, "strict refuses each URL-safe encoding holding '-' or '_' (%d of %d)",
       url_refused, url_runs);
}

int main(void)
{
    strict();
    media();
    digits();
    round_trip();
    return tap_exit();
}
