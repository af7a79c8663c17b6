/* token_cache.c — a fixed-size, set-associative cache of token counts keyed
 * by a 128-bit content hash, the length and the encoding. Striped locks keep
 * worker threads from contending; entries are replaced round-robin. */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include "hash.h"
#include "token_cache.h"
#include "tokens.h"

#define SETS 4096 /* 16 k entries, 640 kB: a few long agent conversations' strings */
#define WAYS 4
#define STRIPES 64

struct entry {
    uint64_t h1, h2;
    uint64_t len;
    uint32_t enc;
    uint32_t used;
    uint64_t tokens;
};

static struct entry table[SETS][WAYS];
static uint8_t next_way[SETS];
static pthread_mutex_t stripes[STRIPES] = {[0 ... STRIPES - 1] = PTHREAD_MUTEX_INITIALIZER};
static atomic_ullong hits, lookups;

/* Short strings (roles, block types, tool names, short messages) come back
 * in every request: each thread remembers the last ones it counted, by
 * their exact bytes, in a small table of two-way sets (most recent first).
 * Two ways, because the strings every request carries must not evict each
 * other: with one slot each, "system" and "user" shared a slot and both
 * were tokenized again on every small chat request. */
#define SHORT_MAX 48
#define SHORT_SETS 128
struct short_entry {
    uint8_t len1;          /* length + 1; 0: empty */
    uint8_t enc;
    uint8_t tokens;        /* at most a token per byte */
    char text[SHORT_MAX];
};
static _Thread_local struct short_entry short_memo[SHORT_SETS][2];
static _Thread_local uint64_t short_misses;

uint64_t hr_token_short_misses(void) { return short_misses; }

static int short_hit(const struct short_entry *e, enum hr_encoding enc, const char *text, size_t len)
{
    return e->len1 == len + 1 && e->enc == (uint8_t)enc && !memcmp(e->text, text, len);
}

static size_t count_short(enum hr_encoding enc, const char *text, size_t len)
{
    uint64_t a = 0, b = 0;
    memcpy(&a, text, len < 8 ? len : 8);
    if (len > 8) memcpy(&b, text + len - (len < 16 ? len - 8 : 8), len < 16 ? len - 8 : 8);
    /* mixed, so that every input bit reaches the bits that pick the set */
    uint64_t h = hr_mix64((a * 0x9E3779B97F4A7C15ull) ^ (b * 0xC2B2AE3D27D4EB4Full) ^ (len * 0x165667B19E3779F9ull) ^
                          (uint64_t)enc);
    struct short_entry *set = short_memo[(h >> 32) % SHORT_SETS];
    if (short_hit(&set[0], enc, text, len)) return set[0].tokens;
    if (short_hit(&set[1], enc, text, len)) {
        struct short_entry t = set[1]; /* the most recent goes first */
        set[1] = set[0];
        set[0] = t;
        return t.tokens;
    }
    short_misses++;
    size_t tokens = hr_count_tokens_enc(enc, text, len);
    set[1] = set[0];
    set[0].len1 = (uint8_t)(len + 1);
    set[0].enc = (uint8_t)enc;
    set[0].tokens = (uint8_t)tokens;
    memcpy(set[0].text, text, len);
    return tokens;
}

/* The table, keyed by encoding: callers resolve a model's encoding once. */
static int lookup(uint32_t enc, size_t len, const uint64_t hash[2], size_t *tokens)
{
    size_t set = (size_t)(hash[0] % SETS);
    pthread_mutex_t *lock = &stripes[set % STRIPES];
    atomic_fetch_add_explicit(&lookups, 1, memory_order_relaxed);
    pthread_mutex_lock(lock);
    for (int w = 0; w < WAYS; w++) {
        struct entry *e = &table[set][w];
        if (e->used && e->h1 == hash[0] && e->h2 == hash[1] && e->len == len && e->enc == enc) {
            *tokens = (size_t)e->tokens;
            pthread_mutex_unlock(lock);
            atomic_fetch_add_explicit(&hits, 1, memory_order_relaxed);
            return 1;
        }
    }
    pthread_mutex_unlock(lock);
    return 0;
}

static void store(uint32_t enc, size_t len, const uint64_t hash[2], size_t tokens)
{
    size_t set = (size_t)(hash[0] % SETS);
    pthread_mutex_t *lock = &stripes[set % STRIPES];
    pthread_mutex_lock(lock);
    struct entry *e = &table[set][next_way[set]];
    next_way[set] = (uint8_t)((next_way[set] + 1) % WAYS);
    *e = (struct entry){hash[0], hash[1], len, enc, 1, tokens};
    pthread_mutex_unlock(lock);
}

static size_t count_hashed(enum hr_encoding enc, const char *text, size_t len, const uint64_t hash[2])
{
    size_t tokens;
    if (lookup((uint32_t)enc, len, hash, &tokens)) return tokens;
    tokens = hr_count_tokens_enc(enc, text, len); /* outside any lock: this is the slow part */
    store((uint32_t)enc, len, hash, tokens);
    return tokens;
}

size_t hr_count_tokens_cached_enc(enum hr_encoding enc, const char *text, size_t len)
{
    if (len <= SHORT_MAX && text) return count_short(enc, text, len);
    uint64_t h[2];
    hr_hash128(text, len, &h[0], &h[1]);
    return count_hashed(enc, text, len, h);
}

size_t hr_count_tokens_cached(const char *model, const char *text, size_t len)
{
    return hr_count_tokens_cached_enc(hr_encoding_for_model(model), text, len);
}

int hr_token_cache_lookup(const char *model, size_t len, const uint64_t hash[2], size_t *tokens)
{
    return lookup((uint32_t)hr_encoding_for_model(model), len, hash, tokens);
}

void hr_token_cache_store(const char *model, size_t len, const uint64_t hash[2], size_t tokens)
{
    store((uint32_t)hr_encoding_for_model(model), len, hash, tokens);
}

size_t hr_count_tokens_cached_hash(const char *model, const char *text, size_t len, const uint64_t hash[2])
{
    return count_hashed(hr_encoding_for_model(model), text, len, hash);
}

void hr_token_cache_counters(uint64_t *h, uint64_t *l)
{
    *h = atomic_load(&hits);
    *l = atomic_load(&lookups);
}
