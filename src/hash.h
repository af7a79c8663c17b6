/* hash.h — a fast, well-mixed 128-bit content hash (not cryptographic) used
 * for content addresses: CCR hashes and the token-count cache. */
#ifndef HR_HASH_H
#define HR_HASH_H
#include <stddef.h>
#include <stdint.h>

void hr_hash128(const void *data, size_t len, uint64_t *h1, uint64_t *h2);
#endif
