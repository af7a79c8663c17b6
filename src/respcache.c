/* respcache.c — the response cache front (key normalisation, hit/miss
 * counters, the clock) and its memory backend (hash table + LRU + TTL). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "log.h"
#include "lru.h"
#include "respcache.h"
#include "stats.h"

#define LOGGER "headroom.cache.response_cache"
#define DEFAULT_TTL_S 300
#define ENTRY_OVERHEAD 128 /* bookkeeping bytes charged per entry */

/* Top-level request fields that never change the answer: attribution
 * (user, metadata, safety_identifier), delivery (stream, stream_options),
 * provider-side storage and routing hints (store, prompt_cache_key). Any
 * other field, including ones not known yet, is part of the key: an unknown
 * field can cost a miss, never a wrong hit. */
static const char *const ignored_fields[] = {"user", "metadata", "safety_identifier", "stream", "stream_options",
                                             "store", "prompt_cache_key", NULL};

/* ------------------------------------------------------------------ key */

static void put_field(struct hr_sha256 *c, const char *s, size_t n)
{
    /* Length-prefixed, so no two field lists hash the same bytes. */
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)((uint64_t)n >> (8 * i));
    hr_sha256_update(c, len, sizeof len);
    if (n) hr_sha256_update(c, s, n);
}

static void put_str(struct hr_sha256 *c, const char *s)
{
    if (!s) {
        hr_sha256_update(c, "\xff", 1); /* absent differs from empty */
        return;
    }
    hr_sha256_update(c, "\x01", 1);
    put_field(c, s, strlen(s));
}

int hr_respcache_key(const struct hr_respcache_request *r, uint8_t key[HR_RESPCACHE_KEY_LEN])
{
    if (!r || !json_is_object(r->body) || json_is_true(json_object_get(r->body, "stream"))) return HR_EINVAL;
    /* A shallow copy drops the ignored fields without copying the messages. */
    json_t *norm = json_copy((json_t *)r->body);
    if (!norm) return HR_ENOMEM;
    for (size_t i = 0; ignored_fields[i]; i++) json_object_del(norm, ignored_fields[i]);
    /* Sorted keys at every level, compact, numbers in jansson's one format:
     * key order and whitespace in the client's JSON do not matter. */
    char *canon = json_dumps(norm, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    json_decref(norm);
    if (!canon) return HR_ENOMEM;
    struct hr_sha256 c;
    hr_sha256_init(&c);
    put_str(&c, "headroom-response-cache-v1");
    put_str(&c, hr_provider_name(r->provider));
    put_str(&c, r->path);
    put_str(&c, r->query && *r->query ? r->query : NULL);
    put_str(&c, r->credential);
    for (size_t i = 0; r->headers && r->headers[i]; i += 2) {
        put_str(&c, r->headers[i]);
        put_str(&c, r->headers[i + 1]);
    }
    put_str(&c, canon);
    hr_sha256_final(&c, key);
    free(canon);
    return HR_OK;
}


/* --------------------------------------------------------- memory store */

struct entry {
    uint8_t key[HR_RESPCACHE_KEY_LEN];
    struct hr_respcache_entry e;
    size_t cost;
    double expires;
    struct entry *next_in_bucket;
    struct hr_lru_node lru;            /* position in the recency list */
};

struct memstore {
    pthread_mutex_t lock;
    struct entry **buckets;
    size_t n_buckets, n_entries, bytes, max_entries, max_bytes;
    unsigned ttl_s;
    struct hr_lru lru;                 /* head = most recently used */
    uint64_t evictions, expired;
};

static size_t bucket_of(const struct memstore *m, const uint8_t *key)
{
    uint64_t h;
    memcpy(&h, key, sizeof h); /* SHA-256 bytes are already uniform */
    return (size_t)(h % m->n_buckets);
}

static void entry_free(struct entry *e)
{
    hr_respcache_entry_free(&e->e);
    free(e);
}

/* Unlinks under the lock; the caller frees outside it. */
static void detach(struct memstore *m, struct entry *e)
{
    struct entry **pp = &m->buckets[bucket_of(m, e->key)];
    while (*pp && *pp != e) pp = &(*pp)->next_in_bucket;
    if (*pp) *pp = e->next_in_bucket;
    hr_lru_unlink(&m->lru, &e->lru);
    m->bytes -= e->cost;
    m->n_entries--;
    e->next_in_bucket = NULL;
}

static struct entry *find(struct memstore *m, const uint8_t *key)
{
    for (struct entry *e = m->buckets[bucket_of(m, key)]; e; e = e->next_in_bucket)
        if (!memcmp(e->key, key, HR_RESPCACHE_KEY_LEN)) return e;
    return NULL;
}

static char *dup_bytes(const char *s, size_t n)
{
    char *c = malloc(n + 1);
    if (c) {
        if (n) memcpy(c, s, n);
        c[n] = '\0';
    }
    return c;
}

static int copy_entry(struct hr_respcache_entry *to, const struct hr_respcache_entry *from)
{
    *to = *from;
    to->content_type = dup_bytes(from->content_type ? from->content_type : "application/json",
                                 strlen(from->content_type ? from->content_type : "application/json"));
    to->body = dup_bytes(from->body ? from->body : "", from->body_len);
    if (!to->content_type || !to->body) {
        hr_respcache_entry_free(to);
        return HR_ENOMEM;
    }
    return HR_OK;
}

static int mem_get(void *ctx, const uint8_t key[HR_RESPCACHE_KEY_LEN], double now, struct hr_respcache_entry *out)
{
    struct memstore *m = ctx;
    struct entry *gone = NULL;
    int rc = HR_RESPCACHE_MISS;
    pthread_mutex_lock(&m->lock);
    struct entry *e = find(m, key);
    if (e && e->expires <= now) {
        detach(m, e);
        m->expired++;
        gone = e;
    } else if (e) {
        rc = copy_entry(out, &e->e);
        hr_lru_touch(&m->lru, &e->lru);
    }
    pthread_mutex_unlock(&m->lock);
    if (gone) entry_free(gone);
    return rc;
}

static int mem_put(void *ctx, const uint8_t key[HR_RESPCACHE_KEY_LEN], double now, const struct hr_respcache_entry *src)
{
    struct memstore *m = ctx;
    size_t cost = src->body_len + (src->content_type ? strlen(src->content_type) : 0) + ENTRY_OVERHEAD;
    if (cost > m->max_bytes || !m->max_entries) return HR_ENOMEM;
    /* Copies are made outside the lock: the critical section only links. */
    struct entry *e = calloc(1, sizeof *e);
    if (!e || copy_entry(&e->e, src)) {
        free(e);
        return HR_ENOMEM;
    }
    memcpy(e->key, key, HR_RESPCACHE_KEY_LEN);
    e->cost = cost;
    /* The TTL runs from when the upstream answered; hits do not extend it. */
    e->expires = now + m->ttl_s;
    struct entry *victims = NULL;
    pthread_mutex_lock(&m->lock);
    /* An answer past its TTL counts as expired however it goes (replaced
     * here, pushed out for room, or found at lookup); evictions are live
     * answers pushed out for room. */
    struct entry *old = find(m, key);
    if (old) {
        detach(m, old);
        if (old->expires <= now) m->expired++;
        old->next_in_bucket = victims;
        victims = old;
    }
    while (m->lru.tail && (m->bytes + cost > m->max_bytes || m->n_entries + 1 > m->max_entries)) {
        struct entry *v = HR_LRU_ENTRY(m->lru.tail, struct entry, lru);
        detach(m, v);
        if (v->expires <= now) m->expired++;
        else m->evictions++;
        v->next_in_bucket = victims;
        victims = v;
    }
    size_t b = bucket_of(m, key);
    e->next_in_bucket = m->buckets[b];
    m->buckets[b] = e;
    hr_lru_push_front(&m->lru, &e->lru);
    m->bytes += cost;
    m->n_entries++;
    pthread_mutex_unlock(&m->lock);
    while (victims) {
        struct entry *next = victims->next_in_bucket;
        entry_free(victims);
        victims = next;
    }
    return HR_OK;
}

static void mem_stats(void *ctx, json_t *o)
{
    struct memstore *m = ctx;
    pthread_mutex_lock(&m->lock);
    size_t n = m->n_entries, bytes = m->bytes;
    uint64_t evictions = m->evictions, expired = m->expired;
    pthread_mutex_unlock(&m->lock);
    json_object_set_new(o, "backend", json_string("memory"));
    json_object_set_new(o, "entries", json_integer((json_int_t)n));
    json_object_set_new(o, "max_entries", json_integer((json_int_t)m->max_entries));
    json_object_set_new(o, "bytes", json_integer((json_int_t)bytes));
    json_object_set_new(o, "max_bytes", json_integer((json_int_t)m->max_bytes));
    json_object_set_new(o, "ttl_seconds", json_integer((json_int_t)m->ttl_s));
    json_object_set_new(o, "evictions", json_integer((json_int_t)evictions));
    json_object_set_new(o, "expired", json_integer((json_int_t)expired));
}

static void mem_destroy(void *ctx)
{
    struct memstore *m = ctx;
    while (m->lru.head) {
        struct entry *e = HR_LRU_ENTRY(m->lru.head, struct entry, lru);
        detach(m, e);
        entry_free(e);
    }
    free(m->buckets);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* ---------------------------------------------------------------- front */

static struct hr_respcache_backend backend;
static atomic_int enabled;
static atomic_uint_fast64_t hits, misses;
/* What the config asked for, shown in /stats even while the cache is off. */
static size_t conf_max_entries = 1000, conf_max_bytes = 64u << 20;
static unsigned conf_ttl_s = DEFAULT_TTL_S;

int hr_respcache_init_memory(size_t max_entries, size_t max_bytes, unsigned ttl_s)
{
    struct memstore *m = calloc(1, sizeof *m);
    if (!m) return HR_ENOMEM;
    pthread_mutex_init(&m->lock, NULL);
    m->n_buckets = max_entries < 4093 ? 4093 : max_entries | 1;
    m->buckets = calloc(m->n_buckets, sizeof *m->buckets);
    if (!m->buckets) {
        pthread_mutex_destroy(&m->lock);
        free(m);
        return HR_ENOMEM;
    }
    m->max_entries = max_entries;
    m->max_bytes = max_bytes;
    m->ttl_s = ttl_s ? ttl_s : DEFAULT_TTL_S;
    conf_max_entries = max_entries;
    conf_max_bytes = max_bytes;
    conf_ttl_s = m->ttl_s;
    hr_respcache_set_backend(&(struct hr_respcache_backend){"memory", mem_get, mem_put, mem_stats, mem_destroy, m});
    return HR_OK;
}

int hr_respcache_setup(const struct hr_config *c)
{
    conf_max_entries = (size_t)c->cache_max_entries;
    conf_max_bytes = c->cache_max_bytes;
    conf_ttl_s = c->cache_ttl_s > 0 ? (unsigned)c->cache_ttl_s : DEFAULT_TTL_S;
    /* Off unless asked for: a cached answer replaces a fresh sample, which
     * changes behaviour for clients that rely on temperature > 0. */
    int on = c->no_cache == 0 || (c->no_cache < 0 && c->cache_ttl_s > 0);
    if (!on) return HR_OK;
    int rc = hr_respcache_init_memory(conf_max_entries, conf_max_bytes, conf_ttl_s);
    if (!rc)
        HR_INFO(LOGGER, "response cache on: %zu entries, %zu bytes, ttl %u s", conf_max_entries, conf_max_bytes,
                conf_ttl_s);
    return rc;
}

void hr_respcache_set_backend(const struct hr_respcache_backend *b)
{
    hr_respcache_shutdown();
    backend = *b;
    atomic_store(&enabled, 1);
}

void hr_respcache_shutdown(void)
{
    atomic_store(&enabled, 0);
    if (backend.destroy) backend.destroy(backend.ctx);
    memset(&backend, 0, sizeof backend);
    atomic_store(&hits, 0);
    atomic_store(&misses, 0);
}

int hr_respcache_enabled(void) { return atomic_load(&enabled); }

int hr_respcache_get(const uint8_t key[HR_RESPCACHE_KEY_LEN], struct hr_respcache_entry *out)
{
    memset(out, 0, sizeof *out);
    if (!atomic_load(&enabled) || !backend.get) return HR_RESPCACHE_MISS;
    int rc = backend.get(backend.ctx, key, hr_clock_now(), out);
    atomic_fetch_add(rc == HR_OK ? &hits : &misses, 1);
    return rc;
}

int hr_respcache_put(const uint8_t key[HR_RESPCACHE_KEY_LEN], const struct hr_respcache_entry *e)
{
    if (!atomic_load(&enabled) || !backend.put) return HR_EINVAL;
    return backend.put(backend.ctx, key, hr_clock_now(), e);
}

void hr_respcache_entry_free(struct hr_respcache_entry *e)
{
    if (!e) return;
    free(e->content_type);
    free(e->body);
    e->content_type = e->body = NULL;
}

json_t *hr_respcache_stats_json(void)
{
    json_t *o = json_object();
    int on = atomic_load(&enabled);
    json_object_set_new(o, "enabled", json_boolean(on));
    json_object_set_new(o, "entries", json_integer(0));
    json_object_set_new(o, "max_entries", json_integer((json_int_t)conf_max_entries));
    json_object_set_new(o, "total_hits", json_integer((json_int_t)atomic_load(&hits)));
    json_object_set_new(o, "misses", json_integer((json_int_t)atomic_load(&misses)));
    json_object_set_new(o, "ttl_seconds", json_integer((json_int_t)conf_ttl_s));
    json_object_set_new(o, "bytes", json_integer(0));
    json_object_set_new(o, "max_bytes", json_integer((json_int_t)conf_max_bytes));
    if (on && backend.stats) backend.stats(backend.ctx, o);
    return o;
}
