/* hash.c — two independent 64-bit lanes over 8-byte words (about 1 ns per
 * word), each finished with a 64-bit mixer. Good dispersion for content
 * addressing; no protection against deliberate collisions. */
#include <string.h>
#include "hash.h"

void hr_hash128(const void *data, size_t n, uint64_t *o1, uint64_t *o2)
{
    const unsigned char *p = data;
    uint64_t a = 0x9e3779b97f4a7c15ULL ^ n, b = 0xc2b2ae3d27d4eb4fULL + n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        a = (a ^ v) * 0x100000001b3ULL;
        b = (b + v) * 0x9fb21c651e98df25ULL;
        b ^= b >> 29;
    }
    uint64_t tail = 0;
    memcpy(&tail, p + i, n - i);
    a = hr_mix64(a ^ tail);
    b = hr_mix64(b ^ (tail * 0xff51afd7ed558ccdULL) ^ a);
    *o1 = a;
    *o2 = b;
}
