/* hash.c — four independent 64-bit lanes over 32-byte stripes, folded into
 * two differently combined halves, each finished with a 64-bit mixer. Good
 * dispersion for content addressing; no protection against deliberate
 * collisions.
 *
 * Why four lanes: a lane is a multiply chain, each step waiting on the last
 * (~4 cycles). With one chain per half this ran at ~0.5 cycles a byte, and
 * an agent's turn hashes every resent tool output (the count cache, the CCR
 * memo): 20 % of an 800 kB conversation's turn in perf. Four chains run side
 * by side. Values live only in this process's memory (count cache, unit
 * hashes, session floors), never on disk or on the wire. */
#include <string.h>
#include "hash.h"

#define P1 0x9e3779b185ebca87ULL
#define P2 0xc2b2ae3d27d4eb4fULL
#define P3 0x165667b19e3779f9ULL

static inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

static inline uint64_t word(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* One lane step: the input spread by a multiply, rotated, multiplied again. */
static inline uint64_t step(uint64_t acc, uint64_t v) { return rotl(acc + v * P2, 31) * P1; }

void hr_hash128(const void *data, size_t n, uint64_t *o1, uint64_t *o2)
{
    const unsigned char *p = data;
    uint64_t s0 = P1 + P2 + n, s1 = P2 - n, s2 = n * P3, s3 = ~n * P1;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = step(s0, word(p + i));
        s1 = step(s1, word(p + i + 8));
        s2 = step(s2, word(p + i + 16));
        s3 = step(s3, word(p + i + 24));
    }
    /* two foldings of the lanes: each half depends on all four */
    uint64_t a = rotl(s0, 1) + rotl(s1, 7) + rotl(s2, 12) + rotl(s3, 18);
    uint64_t b = s0 ^ rotl(s1, 23) ^ rotl(s2, 37) ^ rotl(s3, 51);
    for (; i + 8 <= n; i += 8) {
        uint64_t v = word(p + i);
        a = step(a, v);
        b = step(b ^ P3, v);
    }
    uint64_t tail = 0;
    memcpy(&tail, p + i, n - i);
    a = hr_mix64(a ^ tail ^ (uint64_t)n << 56);
    b = hr_mix64(b ^ (tail * 0xff51afd7ed558ccdULL) ^ a);
    *o1 = a;
    *o2 = b;
}
