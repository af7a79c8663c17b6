/* ratelimit.c — token buckets per hashed API key in a bounded LRU table. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "log.h"
#include "lru.h"
#include "ratelimit.h"
#include "stats.h"

#define LOGGER "headroom.proxy.rate_limit"

struct bucket {
    uint8_t key[HR_SHA256_LEN];
    double requests, tokens;   /* what is left; tokens may go negative (see admit) */
    double at;                 /* when the levels were last brought up to date */
    struct bucket *next_in_bucket;
    struct hr_lru_node lru;
};

static struct {
    pthread_mutex_t lock;
    atomic_int enabled; /* written under the lock; read without it, on every request */
    uint64_t rpm, tpm;
    size_t max_keys, n_keys, n_slots;
    struct bucket **slots;
    struct hr_lru lru;
    uint64_t rejected, evicted;
    hr_ratelimit_remote_fn remote;
    void *remote_ctx;
} rl = {.lock = PTHREAD_MUTEX_INITIALIZER};

void hr_ratelimit_key(const char *credential, uint8_t key[HR_SHA256_LEN])
{
    struct hr_sha256 c;
    hr_sha256_init(&c);
    /* Domain-separated from the response cache's use of the same credential. */
    hr_sha256_update(&c, "headroom-rate-limit-v1", 23);
    if (credential && *credential) hr_sha256_update(&c, credential, strlen(credential));
    else hr_sha256_update(&c, "\xff" "anonymous", 10);
    hr_sha256_final(&c, key);
}

static size_t slot_of(const uint8_t *key)
{
    uint64_t h;
    memcpy(&h, key, sizeof h);
    return (size_t)(h % rl.n_slots);
}

static void drop(struct bucket *b)
{
    struct bucket **pp = &rl.slots[slot_of(b->key)];
    while (*pp && *pp != b) pp = &(*pp)->next_in_bucket;
    if (*pp) *pp = b->next_in_bucket;
    hr_lru_unlink(&rl.lru, &b->lru);
    rl.n_keys--;
    free(b);
}

static void clear_all(void)
{
    while (rl.lru.head) drop(HR_LRU_ENTRY(rl.lru.head, struct bucket, lru));
    free(rl.slots);
    rl.slots = NULL;
    rl.n_slots = rl.n_keys = 0;
}

int hr_ratelimit_init(uint64_t rpm, uint64_t tpm, size_t max_keys)
{
    pthread_mutex_lock(&rl.lock);
    clear_all();
    rl.rpm = rpm;
    rl.tpm = tpm;
    rl.max_keys = max_keys ? max_keys : HR_RATELIMIT_MAX_KEYS;
    rl.rejected = rl.evicted = 0;
    rl.enabled = 0;
    int rc = HR_OK;
    if (rpm || tpm) {
        rl.n_slots = rl.max_keys < 1021 ? 1021 : rl.max_keys | 1;
        rl.slots = calloc(rl.n_slots, sizeof *rl.slots);
        if (rl.slots) rl.enabled = 1;
        else rc = HR_ENOMEM;
    }
    pthread_mutex_unlock(&rl.lock);
    return rc;
}

int hr_ratelimit_setup(const struct hr_config *c)
{
    uint64_t rpm = c->no_rate_limit ? 0 : (uint64_t)c->rate_limit_rpm;
    uint64_t tpm = c->no_rate_limit ? 0 : (uint64_t)c->rate_limit_tpm;
    int rc = hr_ratelimit_init(rpm, tpm, HR_RATELIMIT_MAX_KEYS);
    if (!rc && (rpm || tpm))
        HR_INFO(LOGGER, "rate limit on, per API key: %llu requests/min, %llu tokens/min (0 = no limit)",
                (unsigned long long)rpm, (unsigned long long)tpm);
    else if (c->no_rate_limit && (c->rate_limit_rpm || c->rate_limit_tpm))
        HR_INFO(LOGGER, "rate limit configured but forced off (rate_limit no / --no-rate-limit)");
    return rc;
}

int hr_ratelimit_reconfigure(const struct hr_config *c)
{
    uint64_t rpm = c->no_rate_limit ? 0 : (uint64_t)c->rate_limit_rpm;
    uint64_t tpm = c->no_rate_limit ? 0 : (uint64_t)c->rate_limit_tpm;
    pthread_mutex_lock(&rl.lock);
    int rc = HR_OK;
    if ((rpm || tpm) && !rl.slots) {
        rl.max_keys = rl.max_keys ? rl.max_keys : HR_RATELIMIT_MAX_KEYS;
        rl.n_slots = rl.max_keys < 1021 ? 1021 : rl.max_keys | 1;
        if (!(rl.slots = calloc(rl.n_slots, sizeof *rl.slots))) {
            rl.n_slots = 0;
            rc = HR_ENOMEM;
        }
    }
    if (rc == HR_OK) {
        /* Buckets keep their levels; a refill caps them at the new limits. A
         * limit switched on starts its buckets full (see admit). */
        for (struct hr_lru_node *n = rl.lru.head; n; n = n->next) {
            struct bucket *b = HR_LRU_ENTRY(n, struct bucket, lru);
            if (!rl.rpm || b->requests > (double)rpm) b->requests = (double)rpm;
            if (!rl.tpm || b->tokens > (double)tpm) b->tokens = (double)tpm;
        }
        rl.rpm = rpm;
        rl.tpm = tpm;
        rl.enabled = (rpm || tpm) != 0;
    }
    pthread_mutex_unlock(&rl.lock);
    return rc;
}

void hr_ratelimit_shutdown(void)
{
    pthread_mutex_lock(&rl.lock);
    clear_all();
    rl.enabled = 0;
    pthread_mutex_unlock(&rl.lock);
}

/* An atomic read, not the lock: every request asks (up to three times),
 * and a lock every worker takes moves its cache line between cores. */
int hr_ratelimit_enabled(void) { return atomic_load_explicit(&rl.enabled, memory_order_acquire); }

/* Seconds until `level` reaches `need` at `per_minute` refill. */
static int wait_s(double level, double need, uint64_t per_minute)
{
    double s = (need - level) * 60.0 / (double)per_minute;
    double w = ceil(s - 1e-9);
    return w < 1 ? 1 : w > 86400 ? 86400 : (int)w;
}

void hr_ratelimit_set_remote(hr_ratelimit_remote_fn fn, void *ctx)
{
    pthread_mutex_lock(&rl.lock);
    rl.remote = fn;
    rl.remote_ctx = ctx;
    pthread_mutex_unlock(&rl.lock);
}

void hr_ratelimit_limits(uint64_t *rpm, uint64_t *tpm)
{
    pthread_mutex_lock(&rl.lock);
    *rpm = rl.enabled ? rl.rpm : 0;
    *tpm = rl.enabled ? rl.tpm : 0;
    pthread_mutex_unlock(&rl.lock);
}

int hr_ratelimit_admit(const uint8_t key[HR_SHA256_LEN], uint64_t tokens, int charge, double now,
                       struct hr_ratelimit_verdict *v)
{
    pthread_mutex_lock(&rl.lock);
    if (!rl.enabled) {
        pthread_mutex_unlock(&rl.lock);
        return HR_OK;
    }
    if (rl.remote) {
        hr_ratelimit_remote_fn fn = rl.remote;
        void *ctx = rl.remote_ctx;
        pthread_mutex_unlock(&rl.lock);
        int rc = fn(ctx, key, tokens, charge, v);
        if (rc == HR_RATELIMIT_LIMITED) {
            pthread_mutex_lock(&rl.lock);
            rl.rejected++;
            pthread_mutex_unlock(&rl.lock);
        }
        return rc;
    }
    struct bucket *b = rl.slots[slot_of(key)];
    while (b && memcmp(b->key, key, HR_SHA256_LEN)) b = b->next_in_bucket;
    if (b) {
        hr_lru_unlink(&rl.lru, &b->lru);
        /* Refill for the time since the last visit; a clock that went back
         * (NTP, a test clock) refills nothing rather than draining. */
        double dt = now > b->at ? now - b->at : 0;
        b->requests = fmin((double)rl.rpm, b->requests + dt * (double)rl.rpm / 60.0);
        b->tokens = fmin((double)rl.tpm, b->tokens + dt * (double)rl.tpm / 60.0);
        b->at = now;
    } else {
        /* A key not seen (or forgotten) starts with a full bucket; forgetting
         * the least recently seen key at the cap can only make it laxer. */
        if (rl.n_keys >= rl.max_keys && rl.lru.tail) {
            drop(HR_LRU_ENTRY(rl.lru.tail, struct bucket, lru));
            rl.evicted++;
        }
        b = calloc(1, sizeof *b);
        if (!b) { /* fail open: a limiter must not turn memory pressure into 429s */
            pthread_mutex_unlock(&rl.lock);
            return HR_OK;
        }
        memcpy(b->key, key, HR_SHA256_LEN);
        b->requests = (double)rl.rpm;
        b->tokens = (double)rl.tpm;
        b->at = now;
        size_t s = slot_of(key);
        b->next_in_bucket = rl.slots[s];
        rl.slots[s] = b;
        rl.n_keys++;
    }
    hr_lru_push_front(&rl.lru, &b->lru);
    int rc = HR_OK;
    int req_wait = 0, tok_wait = 0;
    if (rl.rpm && b->requests < 1.0) req_wait = wait_s(b->requests, 1.0, rl.rpm);
    if (rl.tpm) {
        /* A request larger than the whole per-minute allowance passes when
         * the bucket is full and leaves it in debt: it is never stuck, and
         * the average stays within the limit. */
        double need = charge ? fmin((double)tokens, (double)rl.tpm) : fmin(1.0, (double)rl.tpm);
        /* Before the request is counted (no charge) it is refused only when
         * the bucket is empty, but told to wait until it holds the caller's
         * estimate of the request: waiting until it holds one token, a
         * client that waited as told was refused again once counted. */
        double want = charge ? need : fmin(fmax(need, (double)tokens), (double)rl.tpm);
        if (b->tokens < need) tok_wait = wait_s(b->tokens, want, rl.tpm);
    }
    if (req_wait || tok_wait) {
        rc = HR_RATELIMIT_LIMITED;
        rl.rejected++;
        if (v) {
            int tok = tok_wait > req_wait;
            v->retry_after_s = tok ? tok_wait : req_wait;
            v->limit = tok ? "tokens" : "requests";
            v->per_minute = tok ? rl.tpm : rl.rpm;
        }
    } else if (charge) {
        if (rl.rpm) b->requests -= 1.0;
        if (rl.tpm) b->tokens -= (double)tokens;
    }
    pthread_mutex_unlock(&rl.lock);
    return rc;
}

json_t *hr_ratelimit_stats_json(void)
{
    pthread_mutex_lock(&rl.lock);
    json_t *o = json_pack("{s:b,s:I,s:I,s:I,s:I,s:I,s:I}", "enabled", rl.enabled, "rpm", (json_int_t)rl.rpm, "tpm",
                          (json_int_t)rl.tpm, "tracked_keys", (json_int_t)rl.n_keys, "max_keys",
                          (json_int_t)(rl.max_keys ? rl.max_keys : HR_RATELIMIT_MAX_KEYS), "rejected",
                          (json_int_t)rl.rejected, "evicted_keys", (json_int_t)rl.evicted);
    pthread_mutex_unlock(&rl.lock);
    return o;
}
