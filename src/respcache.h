/* respcache.h — headroomd's own response cache: exact-match answers to
 * non-streaming requests, keyed by a SHA-256 of the normalised request and
 * the caller's credential. The store sits behind a backend table (like the
 * CCR store) so a shared backend such as Redis could serve a fleet; the
 * built-in one is memory: LRU, bounded in entries and bytes, with a TTL. */
#ifndef HR_RESPCACHE_H
#define HR_RESPCACHE_H
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "config.h"
#include "headroom/plugin.h"
#include "sha256.h"

#define HR_RESPCACHE_KEY_LEN HR_SHA256_LEN
#define HR_RESPCACHE_MISS (-2) /* hr_respcache_get: nothing (fresh) stored */

/* What makes a key. Everything the answer depends on is in here. */
struct hr_respcache_request {
    enum hr_provider provider;
    const char *path;               /* e.g. /v1/chat/completions */
    const char *query;              /* raw query string or NULL */
    const json_t *body;             /* the client's request, before compression */
    const char *credential;         /* Authorization or x-api-key value; NULL = none */
    /* Headers that change the answer or the tenant (anthropic-version,
     * anthropic-beta, openai-organization, openai-project): name, value,
     * …, NULL. Values may be NULL (absent). */
    const char *const *headers;
};

/* A stored answer. Fields are malloc'd when filled by hr_respcache_get. */
struct hr_respcache_entry {
    int status;
    char *content_type;
    char *body;
    size_t body_len;
    uint64_t tokens_before, tokens_after;   /* replayed as x-headroom-tokens-* */
    double cost_usd;                        /* the provider's price of the answer: what a hit avoids */
};

struct hr_respcache_backend {
    const char *name;
    /* 0 and a filled copy in `out`, or HR_RESPCACHE_MISS (absent or expired at `now`). */
    int (*get)(void *ctx, const uint8_t key[HR_RESPCACHE_KEY_LEN], double now, struct hr_respcache_entry *out);
    /* Store a copy; 0, or HR_ENOMEM when it does not fit the bounds. */
    int (*put)(void *ctx, const uint8_t key[HR_RESPCACHE_KEY_LEN], double now, const struct hr_respcache_entry *e);
    /* Adds entries, max_entries, bytes, max_bytes, ttl_seconds to `o`. */
    void (*stats)(void *ctx, json_t *o);
    void (*destroy)(void *ctx);
    void *ctx;
};

/* Cache key of a request: 0, or HR_EINVAL when the request is not cacheable
 * (a stream, or no JSON object). */
int hr_respcache_key(const struct hr_respcache_request *r, uint8_t key[HR_RESPCACHE_KEY_LEN]);

/* Decide from the config (on only with `cache yes` or `cache_ttl`, and never
 * with `cache no` / --no-cache) and start the memory backend if on. */
int hr_respcache_setup(const struct hr_config *c);
/* Start the memory backend directly (tests). */
int hr_respcache_init_memory(size_t max_entries, size_t max_bytes, unsigned ttl_s);
/* Use another backend (takes ownership); enables the cache. */
void hr_respcache_set_backend(const struct hr_respcache_backend *b);
void hr_respcache_shutdown(void);
int hr_respcache_enabled(void);

/* Lookup at the cache clock; counts a hit or a miss. */
int hr_respcache_get(const uint8_t key[HR_RESPCACHE_KEY_LEN], struct hr_respcache_entry *out);
int hr_respcache_put(const uint8_t key[HR_RESPCACHE_KEY_LEN], const struct hr_respcache_entry *e);
void hr_respcache_entry_free(struct hr_respcache_entry *e);
/* /stats.cache: enabled, entries, max_entries, total_hits, misses,
 * ttl_seconds, bytes, max_bytes. */
json_t *hr_respcache_stats_json(void);

#endif
