/* t/hash_test.c — hr_hash128, the content hash behind the token-count
 * cache, unit hashes and the CCR memo: the same bytes give the same value
 * wherever they sit in memory, and any change (one bit, one byte more or
 * less, across every stripe and tail length) gives another in both halves. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hash.h"
#include "tap.h"

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

int main(void)
{
    static unsigned char buf[4096 + 64], copy[4096 + 64];
    uint32_t seed = 12345;
    for (size_t i = 0; i < sizeof buf; i++) {
        seed = seed * 1103515245u + 12345u;
        buf[i] = (unsigned char)(seed >> 16);
    }
    /* the same bytes at another address and alignment */
    int same = 1;
    for (size_t len = 0; len <= 200; len++)
        for (size_t off = 1; off < 9; off++) {
            memcpy(copy + off, buf, len);
            uint64_t a1, a2, b1, b2;
            hr_hash128(buf, len, &a1, &a2);
            hr_hash128(copy + off, len, &b1, &b2);
            same &= a1 == b1 && a2 == b2;
        }
    ok(same, "the same bytes hash alike at any alignment (lengths 0-200)");

    /* one bit flipped anywhere, for lengths around every stripe and tail edge */
    static const size_t lens[] = {1, 7, 8, 9, 31, 32, 33, 63, 64, 65, 100, 255, 256, 1000, 4096};
    int both_change = 1, tried = 0;
    for (size_t k = 0; k < sizeof lens / sizeof *lens; k++) {
        size_t len = lens[k];
        uint64_t h1, h2;
        hr_hash128(buf, len, &h1, &h2);
        for (size_t bit = 0; bit < len * 8; bit += len > 100 ? 13 : 1) {
            memcpy(copy, buf, len);
            copy[bit / 8] ^= (unsigned char)(1u << (bit % 8));
            uint64_t g1, g2;
            hr_hash128(copy, len, &g1, &g2);
            both_change &= g1 != h1 && g2 != h2;
            tried++;
        }
    }
    ok(both_change, "one flipped bit changes both halves (%d inputs)", tried);

    /* a prefix never collides with the whole: lengths 0..4096 of one buffer,
     * and 20 000 short texts differing in a counter */
    size_t n = 0;
    uint64_t *seen = malloc(sizeof *seen * (4097 + 20000));
    for (size_t len = 0; len <= 4096; len++) {
        uint64_t h1, h2;
        hr_hash128(buf, len, &h1, &h2);
        seen[n++] = h1;
    }
    for (int i = 0; i < 20000; i++) {
        char t[32];
        int l = snprintf(t, sizeof t, "row %d", i);
        uint64_t h1, h2;
        hr_hash128(t, (size_t)l, &h1, &h2);
        seen[n++] = h1;
    }
    qsort(seen, n, sizeof *seen, cmp_u64);
    size_t dup = 0;
    for (size_t i = 1; i < n; i++) dup += seen[i] == seen[i - 1];
    is_int((long long)dup, 0, "%zu prefixes and short texts: no two first halves alike", n);
    free(seen);
    return tap_exit();
}
