/* hash.h — a fast, well-mixed 128-bit content hash (not cryptographic) used
 * for content addresses: CCR hashes and the token-count cache. */
#ifndef HR_HASH_H
#define HR_HASH_H
#include <stddef.h>
#include <stdint.h>

void hr_hash128(const void *data, size_t len, uint64_t *h1, uint64_t *h2);

/* A 64-bit finaliser (two multiply-xorshift rounds); header-only so plugins
 * that cannot link the host's code (smart_crusher) share it too. */
static inline uint64_t hr_mix64(uint64_t x)
{
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ULL;
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ULL;
    x ^= x >> 32;
    return x;
}
#endif
