/* sha256.h — SHA-256 from the system's libcrypto, for keys that must resist
 * deliberate collisions and must not reveal what they were made from (API
 * keys, response-cache keys, CCR content addresses). */
#ifndef HR_SHA256_H
#define HR_SHA256_H
#include <stddef.h>
#include <stdint.h>

#define HR_SHA256_LEN 32

/* An incremental digest; hr_sha256_final releases it. */
struct hr_sha256 {
    void *ctx; /* EVP_MD_CTX */
};

void hr_sha256_init(struct hr_sha256 *c);
void hr_sha256_update(struct hr_sha256 *c, const void *data, size_t len);
void hr_sha256_final(struct hr_sha256 *c, uint8_t out[HR_SHA256_LEN]);
/* One-shot digest. */
void hr_sha256(const void *data, size_t len, uint8_t out[HR_SHA256_LEN]);
/* Lowercase hex of a digest: out holds 2 * HR_SHA256_LEN + 1 chars. */
void hr_sha256_hex(const uint8_t d[HR_SHA256_LEN], char out[2 * HR_SHA256_LEN + 1]);
#endif
