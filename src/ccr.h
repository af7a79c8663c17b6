/* ccr.h — compress-cache-retrieve: originals of what transforms dropped,
 * kept under a content hash. The store sits behind a backend table so a
 * shared backend (e.g. Redis) can serve a fleet; the built-in one is memory,
 * bounded in bytes, with a TTL. */
#ifndef HR_CCR_H
#define HR_CCR_H
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "headroom/plugin.h"

/* What the retrieve API says about a stored original besides its text. */
struct hr_ccr_info {
    char tool_name[64];         /* the tool whose output it was, "" when unknown */
    char model[64];             /* the model of the request that stored it (its tokenizer), "" when unknown */
    long long original_items;   /* rows/lines of the original, -1 when unknown */
    long long compressed_items; /* of which the compressed output kept, -1 when unknown */
    unsigned long long retrieval_count;
};

struct hr_ccr_backend {
    const char *name;
    int (*put)(void *ctx, const char *hash, const char *data, size_t len);
    char *(*get)(void *ctx, const char *hash, size_t *len_out); /* malloc'd copy or NULL */
    json_t *(*stats)(void *ctx);
    void (*destroy)(void *ctx);
    void *ctx;
    /* Merge `in` (fields set) into an entry's info, and/or read it into
     * `out`; HR_EINVAL when the address is unknown. May be NULL. */
    int (*describe)(void *ctx, const char *hash, const struct hr_ccr_info *in, struct hr_ccr_info *out);
    /* Refresh the entry at `hash` if it holds exactly `data` (HR_OK), else
     * HR_EINVAL and nothing stored. Lets hr_ccr_put skip SHA-256 for an
     * original it stored before. May be NULL. */
    int (*refresh)(void *ctx, const char *hash, const char *data, size_t len);
    /* A malloc'd copy of the fresh entry at `hash` and when it expires
     * (hr_now() seconds), counting no hit, miss or retrieval; NULL when
     * there is none. May be NULL. */
    char *(*peek)(void *ctx, const char *hash, size_t *len_out, double *expires_out);
};

/* A shared tier behind the backend (fleet.c: Redis): every stored original
 * is also handed to it; what this process lacks is fetched from it by the
 * daemon before the synchronous lookups run (and kept with put_local). */
struct hr_ccr_remote {
    void (*put)(void *ctx, const char *hash, const char *data, size_t len);
    void *ctx;
    const char *name;   /* /stats ccr.backend while it is set ("redis") */
};
void hr_ccr_set_remote(const struct hr_ccr_remote *r);
/* Store in this process only (an original fetched from the shared tier). */
int hr_ccr_put_local(const char *hash, const char *data, size_t len);
/* 1 when this process holds `hash` (fresh), without counting a hit or miss. */
int hr_ccr_has_local(const char *hash);
/* This process's copy of `hash` and its expiry (hr_now() seconds), without
 * counting it as used: for the shared tier to send an original it could not
 * send when it was stored. NULL when gone (expired, evicted). Free with
 * hr_ccr_free. */
char *hr_ccr_peek_local(const char *hash, size_t *len_out, double *expires_out);

/* Memory backend, the default. */
int hr_ccr_init_memory(size_t max_bytes, unsigned ttl_s);
/* Use another backend (takes ownership). */
void hr_ccr_set_backend(const struct hr_ccr_backend *b);
void hr_ccr_shutdown(void);

/* Content hash as HR_CCR_HASH_LEN lowercase hex chars. */
void hr_ccr_hash(const char *data, size_t len, char out[HR_CCR_HASH_LEN + 1]);
int hr_ccr_put(const char *data, size_t len, char hash_out[HR_CCR_HASH_LEN + 1]);
/* hr_ccr_put when the caller has hr_hash128 of `data` already (the
 * pipeline's unit hash): the address is still SHA-256's. */
int hr_ccr_put_hashed(const char *data, size_t len, const uint64_t content_hash[2], char hash_out[HR_CCR_HASH_LEN + 1]);
/* Store under a given address (content another instance hashed). A
 * different content already there is refused (HR_EINVAL) and counted as a
 * collision: a marker in flight keeps pointing at what it meant. */
int hr_ccr_put_at(const char *hash, const char *data, size_t len);
char *hr_ccr_get(const char *hash, size_t *len_out);
void hr_ccr_free(char *data);
json_t *hr_ccr_stats_json(void);
/* See struct hr_ccr_backend.describe. */
int hr_ccr_describe(const char *hash, const struct hr_ccr_info *in, struct hr_ccr_info *out);
/* The CCR addresses the markers in `text` point to, each once, up to max. */
size_t hr_ccr_markers(const char *text, size_t len, char (*out)[HR_CCR_HASH_LEN + 1], size_t max);
#endif
