/* base64.c — base64 decoding (base64.h): one table, each caller's
 * acceptance by flags. */
#include "base64.h"

/* Each byte's digit value; -1 not a digit; 64 | v for '-' and '_', digits
 * with HR_B64_URL only. A table: decoding is most of a .tiktoken file's
 * load time. */
static const signed char digit[256] = {
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 62, -1, 126, -1, 63,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, -1, -1, -1, -1, -1, -1,
    -1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, -1, -1, -1, -1, 127,
    -1, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
};

int hr_b64_value(unsigned char c, unsigned flags)
{
    int v = digit[c];
    return v < 64 ? v : flags & HR_B64_URL ? v & 63 : -1;
}

long hr_b64_decode(const char *s, size_t n, uint8_t *out, unsigned flags)
{
    while (n && s[n - 1] == '=') n--;
    /* One compare a character: -1 reads as past any limit, and '-' and '_'
     * (64 | v) are under it only with HR_B64_URL. */
    unsigned lim = flags & HR_B64_URL ? 128 : 64;
    long o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned v = (unsigned)digit[(unsigned char)s[i]];
        if (v >= lim) {
            if (flags & HR_B64_SKIP) continue;
            return -1;
        }
        acc = acc << 6 | (v & 63);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    return o;
}
