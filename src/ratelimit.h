/* ratelimit.h — per-API-key request and token rate limits: a token bucket
 * per key (burst up to the per-minute limit, refilled continuously), keys
 * kept as SHA-256 digests only, at most max_keys tracked (least recently
 * seen dropped first). Off unless a limit is configured. */
#ifndef HR_RATELIMIT_H
#define HR_RATELIMIT_H
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "config.h"
#include "headroom/plugin.h"
#include "sha256.h"

#define HR_RATELIMIT_MAX_KEYS 10000
#define HR_RATELIMIT_LIMITED 1

struct hr_ratelimit_verdict {
    int retry_after_s;          /* whole seconds until the request would pass (>= 1) */
    const char *limit;          /* "requests" or "tokens": the limit that refused */
    uint64_t per_minute;        /* that limit's value */
};

/* Decide from the config (limits set and no `rate_limit no` / --no-rate-limit). */
int hr_ratelimit_setup(const struct hr_config *c);
/* A reload (SIGHUP): new limits from the config; tracked keys keep their
 * levels (capped at the new limits). HR_OK or HR_ENOMEM. */
int hr_ratelimit_reconfigure(const struct hr_config *c);
/* rpm/tpm 0 = that limit off; both 0 = disabled. */
int hr_ratelimit_init(uint64_t rpm, uint64_t tpm, size_t max_keys);
void hr_ratelimit_shutdown(void);
int hr_ratelimit_enabled(void);

/* Digest of the client's credential (Authorization or x-api-key value);
 * NULL or empty means the shared "anonymous" bucket. */
void hr_ratelimit_key(const char *credential, uint8_t key[HR_SHA256_LEN]);

/* Admit a request of `tokens` input tokens at time `now` (Unix seconds).
 * 0 = admitted (and charged when `charge`), HR_RATELIMIT_LIMITED = refused
 * (nothing charged, `v` filled). With charge = 0 it only checks that the
 * key has room for one more request (a cheap check before compressing). */
int hr_ratelimit_admit(const uint8_t key[HR_SHA256_LEN], uint64_t tokens, int charge, double now,
                       struct hr_ratelimit_verdict *v);

/* A shared store (fleet.c: Redis) deciding instead of the in-process
 * buckets, same contract as hr_ratelimit_admit; NULL goes back to memory. */
typedef int (*hr_ratelimit_remote_fn)(void *ctx, const uint8_t key[HR_SHA256_LEN], uint64_t tokens, int charge,
                                      struct hr_ratelimit_verdict *v);
void hr_ratelimit_set_remote(hr_ratelimit_remote_fn fn, void *ctx);
/* The configured limits (0 = off). */
void hr_ratelimit_limits(uint64_t *rpm, uint64_t *tpm);

/* /stats.rate_limit: enabled, rpm, tpm, tracked_keys, max_keys, rejected. */
json_t *hr_ratelimit_stats_json(void);
#endif
