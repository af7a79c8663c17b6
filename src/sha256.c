/* sha256.c — the SHA-256 calls headroomd makes, on libcrypto's EVP
 * interface (hardware SHA extensions where the CPU has them). */
#include <pthread.h>
#include <string.h>
#include <openssl/evp.h>
#include "sha256.h"

/* EVP_sha256() makes every digest look the algorithm up again (OpenSSL 3's
 * implicit fetch): fetch it once. Kept for the life of the process. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void fetch_sha256(void) { sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL); }

static const EVP_MD *md(void)
{
    pthread_once(&sha256_once, fetch_sha256);
    return sha256_md ? sha256_md : EVP_sha256();
}

/* The context of a thread's last digest, kept for its next one: a new
 * EVP_MD_CTX costs two allocations and a provider set-up (~800
 * instructions, once per request for the session id). Freed when the
 * thread ends. */
static pthread_key_t spare_key;
static int spare_ok;
static pthread_once_t spare_once = PTHREAD_ONCE_INIT;

static void free_spare(void *ctx) { EVP_MD_CTX_free(ctx); }

static void make_spare_key(void) { spare_ok = pthread_key_create(&spare_key, free_spare) == 0; }

static EVP_MD_CTX *take_ctx(void)
{
    pthread_once(&spare_once, make_spare_key);
    EVP_MD_CTX *ctx = spare_ok ? pthread_getspecific(spare_key) : NULL;
    if (!ctx) return EVP_MD_CTX_new();
    pthread_setspecific(spare_key, NULL);
    return ctx;
}

static void put_ctx(EVP_MD_CTX *ctx)
{
    if (spare_ok && !pthread_getspecific(spare_key) && !pthread_setspecific(spare_key, ctx)) return;
    EVP_MD_CTX_free(ctx);
}

void hr_sha256_init(struct hr_sha256 *c)
{
    EVP_MD_CTX *ctx = take_ctx();
    if (ctx && !EVP_DigestInit_ex(ctx, md(), NULL)) {
        EVP_MD_CTX_free(ctx);
        ctx = NULL;
    }
    c->ctx = ctx;
}

void hr_sha256_update(struct hr_sha256 *c, const void *data, size_t len)
{
    if (c->ctx && len) EVP_DigestUpdate(c->ctx, data, len);
}

void hr_sha256_final(struct hr_sha256 *c, uint8_t out[HR_SHA256_LEN])
{
    unsigned n = 0;
    /* Out of memory at init: an all-zero digest, which matches nothing real. */
    if (!c->ctx || !EVP_DigestFinal_ex(c->ctx, out, &n) || n != HR_SHA256_LEN) memset(out, 0, HR_SHA256_LEN);
    if (c->ctx) put_ctx(c->ctx);
    c->ctx = NULL;
}

void hr_sha256(const void *data, size_t len, uint8_t out[HR_SHA256_LEN])
{
    unsigned n = 0;
    if (!EVP_Digest(data, len, out, &n, md(), NULL) || n != HR_SHA256_LEN) memset(out, 0, HR_SHA256_LEN);
}

void hr_sha256_hex(const uint8_t d[HR_SHA256_LEN], char out[2 * HR_SHA256_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < HR_SHA256_LEN; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[2 * HR_SHA256_LEN] = '\0';
}
