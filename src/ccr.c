/* ccr.c — the CCR store front and its memory backend (hash table + LRU). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ccr.h"
#include "hash.h"
#include "log.h"
#include "sha256.h"
#include "lru.h"
#include "stats.h"

struct entry {
    char hash[HR_CCR_HASH_LEN + 1];
    char *data;
    size_t len;
    double expires;
    struct hr_ccr_info info;             /* what the retrieve API reports besides the data */
    struct entry *next_in_bucket;
    struct hr_lru_node lru;              /* position in the store's recency list */
};

struct memstore {
    pthread_mutex_t lock;
    struct entry **buckets;
    size_t n_buckets, n_entries, bytes, max_bytes;
    unsigned ttl_s;
    struct hr_lru lru;                   /* head = most recently used */
    uint64_t puts, hits, misses, evictions, collisions;
};

static struct hr_ccr_backend backend;
static struct hr_ccr_remote remote;

/* A content address must not collide even for content chosen to: the
 * first 96 bits of SHA-256, as 24 hex characters. */
void hr_ccr_hash(const char *data, size_t len, char out[HR_CCR_HASH_LEN + 1])
{
    uint8_t d[HR_SHA256_LEN];
    char hex[2 * HR_SHA256_LEN + 1];
    hr_sha256(data, len, d);
    hr_sha256_hex(d, hex);
    memcpy(out, hex, HR_CCR_HASH_LEN);
    out[HR_CCR_HASH_LEN] = '\0';
}

static size_t bucket_of(const struct memstore *m, const char *hash)
{
    uint64_t h = 0;
    for (int i = 0; i < 16; i++) h = h * 16 + (uint64_t)(hash[i] <= '9' ? hash[i] - '0' : hash[i] - 'a' + 10);
    return (size_t)(h % m->n_buckets);
}

static struct entry *oldest(struct memstore *m) { return HR_LRU_ENTRY(m->lru.tail, struct entry, lru); }

static void remove_entry(struct memstore *m, struct entry *e)
{
    struct entry **pp = &m->buckets[bucket_of(m, e->hash)];
    while (*pp && *pp != e) pp = &(*pp)->next_in_bucket;
    if (*pp) *pp = e->next_in_bucket;
    hr_lru_unlink(&m->lru, &e->lru);
    m->bytes -= e->len;
    m->n_entries--;
    free(e->data);
    free(e);
}

static struct entry *find(struct memstore *m, const char *hash)
{
    for (struct entry *e = m->buckets[bucket_of(m, hash)]; e; e = e->next_in_bucket)
        if (!strcmp(e->hash, hash)) return e;
    return NULL;
}

/* Store, or with `only_refresh` just refresh an entry already holding this
 * exact content (HR_EINVAL when there is none: nothing is stored). */
static int mem_store(void *ctx, const char *hash, const char *data, size_t len, int only_refresh)
{
    struct memstore *m = ctx;
    if (len > m->max_bytes) return HR_ENOMEM;
    double now = hr_now();
    pthread_mutex_lock(&m->lock);
    struct entry *e = find(m, hash);
    if (only_refresh && (!e || e->len != len || memcmp(e->data, data, len))) {
        pthread_mutex_unlock(&m->lock);
        return HR_EINVAL;
    }
    m->puts++;
    if (e && (e->len != len || memcmp(e->data, data, len))) {
        /* Different content under an address already taken: never replace
         * what a marker in flight points to. */
        m->collisions++;
        pthread_mutex_unlock(&m->lock);
        HR_WARN("headroom.cache.compression_store", "CCR address %s already holds different content (%zu vs %zu "
                "bytes); the new content is not stored", hash, e->len, len);
        return HR_EINVAL;
    }
    if (e) { /* same content: refresh */
        e->expires = now + m->ttl_s;
        hr_lru_touch(&m->lru, &e->lru);
        pthread_mutex_unlock(&m->lock);
        return HR_OK;
    }
    while (m->lru.tail && (m->bytes + len > m->max_bytes || oldest(m)->expires <= now)) {
        m->evictions++;
        remove_entry(m, oldest(m));
    }
    e = calloc(1, sizeof *e);
    char *copy = malloc(len + 1);
    if (!e || !copy) {
        free(e);
        free(copy);
        pthread_mutex_unlock(&m->lock);
        return HR_ENOMEM;
    }
    memcpy(copy, data, len);
    copy[len] = '\0';
    memcpy(e->hash, hash, sizeof e->hash);
    e->info.original_items = e->info.compressed_items = -1;
    e->data = copy;
    e->len = len;
    e->expires = now + m->ttl_s;
    size_t b = bucket_of(m, hash);
    e->next_in_bucket = m->buckets[b];
    m->buckets[b] = e;
    hr_lru_push_front(&m->lru, &e->lru);
    m->bytes += len;
    m->n_entries++;
    pthread_mutex_unlock(&m->lock);
    return HR_OK;
}

static int mem_put(void *ctx, const char *hash, const char *data, size_t len)
{
    return mem_store(ctx, hash, data, len, 0);
}

static int mem_refresh(void *ctx, const char *hash, const char *data, size_t len)
{
    return mem_store(ctx, hash, data, len, 1);
}

static char *mem_get(void *ctx, const char *hash, size_t *len_out)
{
    struct memstore *m = ctx;
    char *copy = NULL;
    pthread_mutex_lock(&m->lock);
    struct entry *e = find(m, hash);
    if (e && e->expires <= hr_now()) {
        remove_entry(m, e);
        e = NULL;
    }
    if (e && (copy = malloc(e->len + 1))) {
        memcpy(copy, e->data, e->len + 1);
        if (len_out) *len_out = e->len;
        hr_lru_touch(&m->lru, &e->lru);
        m->hits++;
        e->info.retrieval_count++;
    } else {
        m->misses++;
    }
    pthread_mutex_unlock(&m->lock);
    return copy;
}

static char *mem_peek(void *ctx, const char *hash, size_t *len_out, double *expires_out)
{
    struct memstore *m = ctx;
    char *copy = NULL;
    pthread_mutex_lock(&m->lock);
    struct entry *e = find(m, hash);
    if (e && e->expires > hr_now() && (copy = malloc(e->len + 1))) {
        memcpy(copy, e->data, e->len + 1);
        *len_out = e->len;
        *expires_out = e->expires;
    }
    pthread_mutex_unlock(&m->lock);
    return copy;
}

static int mem_describe(void *ctx, const char *hash, const struct hr_ccr_info *in, struct hr_ccr_info *out)
{
    struct memstore *m = ctx;
    pthread_mutex_lock(&m->lock);
    struct entry *e = find(m, hash);
    if (e && in) {
        if (in->tool_name[0]) memcpy(e->info.tool_name, in->tool_name, sizeof e->info.tool_name);
        if (in->model[0]) memcpy(e->info.model, in->model, sizeof e->info.model);
        if (in->original_items >= 0) e->info.original_items = in->original_items;
        if (in->compressed_items >= 0) e->info.compressed_items = in->compressed_items;
    }
    if (e && out) *out = e->info;
    pthread_mutex_unlock(&m->lock);
    return e ? HR_OK : HR_EINVAL;
}

static json_t *mem_stats(void *ctx)
{
    struct memstore *m = ctx;
    pthread_mutex_lock(&m->lock);
    json_t *j = json_pack("{s:s,s:I,s:I,s:I,s:i,s:I,s:I,s:I,s:I,s:I}", "backend", "memory", "entries",
                          (json_int_t)m->n_entries, "bytes", (json_int_t)m->bytes, "max_bytes",
                          (json_int_t)m->max_bytes, "ttl_seconds", (int)m->ttl_s, "stores", (json_int_t)m->puts,
                          "hits", (json_int_t)m->hits, "misses", (json_int_t)m->misses, "evictions",
                          (json_int_t)m->evictions, "collisions", (json_int_t)m->collisions);
    pthread_mutex_unlock(&m->lock);
    return j;
}

static void mem_destroy(void *ctx)
{
    struct memstore *m = ctx;
    while (m->lru.head) remove_entry(m, HR_LRU_ENTRY(m->lru.head, struct entry, lru));
    free(m->buckets);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

int hr_ccr_init_memory(size_t max_bytes, unsigned ttl_s)
{
    struct memstore *m = calloc(1, sizeof *m);
    if (!m) return HR_ENOMEM;
    pthread_mutex_init(&m->lock, NULL);
    m->n_buckets = 4093;
    m->buckets = calloc(m->n_buckets, sizeof *m->buckets);
    m->max_bytes = max_bytes;
    m->ttl_s = ttl_s ? ttl_s : 3600;
    if (!m->buckets) {
        free(m);
        return HR_ENOMEM;
    }
    hr_ccr_set_backend(
        &(struct hr_ccr_backend){"memory", mem_put, mem_get, mem_stats, mem_destroy, m, mem_describe, mem_refresh,
                                 mem_peek});
    return HR_OK;
}

void hr_ccr_set_backend(const struct hr_ccr_backend *b)
{
    hr_ccr_shutdown();
    backend = *b;
}

void hr_ccr_shutdown(void)
{
    if (backend.destroy) backend.destroy(backend.ctx);
    memset(&backend, 0, sizeof backend);
}

/* The addresses of the last originals stored (by any worker), by a fast
 * hash of their bytes: an agent resends every tool output each turn, so the same
 * originals are stored again and again, and SHA-256 over all of them was
 * most of a long conversation's turn (21 M of 31 M instructions for 800 kB
 * of tool outputs, under callgrind). A remembered address is used only if
 * the store holds exactly these bytes under it (compared), so the address
 * is SHA-256's whatever the fast hash says. */
#define PUT_MEMO_SLOTS 1024 /* 48 kB; a long conversation has tens of outputs */
#define PUT_MEMO_MIN 1024   /* shorter originals: SHA-256 costs less than the rest */
struct put_memo {
    uint64_t h1, h2;
    size_t len;
    char hash[HR_CCR_HASH_LEN + 1];
};
static struct put_memo put_memo[PUT_MEMO_SLOTS];
static pthread_mutex_t put_memo_lock = PTHREAD_MUTEX_INITIALIZER;

int hr_ccr_put(const char *data, size_t len, char hash_out[HR_CCR_HASH_LEN + 1])
{
    uint64_t h[2] = {0, 0};
    if (len >= PUT_MEMO_MIN && backend.refresh) hr_hash128(data, len, &h[0], &h[1]);
    return hr_ccr_put_hashed(data, len, h, hash_out);
}

int hr_ccr_put_hashed(const char *data, size_t len, const uint64_t content_hash[2], char hash_out[HR_CCR_HASH_LEN + 1])
{
    struct put_memo *pm = NULL, seen = {0};
    uint64_t h1 = content_hash[0], h2 = content_hash[1];
    if (len >= PUT_MEMO_MIN && backend.refresh) {
        pm = &put_memo[h1 % PUT_MEMO_SLOTS];
        pthread_mutex_lock(&put_memo_lock);
        seen = *pm;
        pthread_mutex_unlock(&put_memo_lock);
        if (seen.len == len && seen.h1 == h1 && seen.h2 == h2 &&
            backend.refresh(backend.ctx, seen.hash, data, len) == HR_OK) {
            memcpy(hash_out, seen.hash, HR_CCR_HASH_LEN + 1);
            if (remote.put) remote.put(remote.ctx, hash_out, data, len);
            return HR_OK;
        }
    }
    hr_ccr_hash(data, len, hash_out);
    int rc = hr_ccr_put_at(hash_out, data, len);
    if (pm && rc == HR_OK) {
        seen = (struct put_memo){.h1 = h1, .h2 = h2, .len = len};
        memcpy(seen.hash, hash_out, HR_CCR_HASH_LEN + 1);
        pthread_mutex_lock(&put_memo_lock);
        *pm = seen;
        pthread_mutex_unlock(&put_memo_lock);
    }
    return rc;
}

int hr_ccr_put_at(const char *hash, const char *data, size_t len)
{
    int rc = hr_ccr_put_local(hash, data, len);
    if (rc == HR_OK && remote.put) remote.put(remote.ctx, hash, data, len);
    return rc;
}

int hr_ccr_put_local(const char *hash, const char *data, size_t len)
{
    return backend.put ? backend.put(backend.ctx, hash, data, len) : HR_EINVAL;
}

void hr_ccr_set_remote(const struct hr_ccr_remote *r) { remote = r ? *r : (struct hr_ccr_remote){0}; }

int hr_ccr_has_local(const char *hash)
{
    /* describe() finds an entry without touching hit/miss counters; an
     * expired one is dropped by the next get, so a stale yes only costs a
     * local miss. */
    return hash && strlen(hash) == HR_CCR_HASH_LEN && backend.describe &&
           backend.describe(backend.ctx, hash, NULL, NULL) == HR_OK;
}

char *hr_ccr_peek_local(const char *hash, size_t *len_out, double *expires_out)
{
    if (!backend.peek || !hash || strlen(hash) != HR_CCR_HASH_LEN) return NULL;
    return backend.peek(backend.ctx, hash, len_out, expires_out);
}

char *hr_ccr_get(const char *hash, size_t *len_out)
{
    if (!backend.get || !hash || strlen(hash) != HR_CCR_HASH_LEN || strspn(hash, "0123456789abcdef") != HR_CCR_HASH_LEN)
        return NULL;
    return backend.get(backend.ctx, hash, len_out);
}

void hr_ccr_free(char *data) { free(data); }

json_t *hr_ccr_stats_json(void)
{
    json_t *o = backend.stats ? backend.stats(backend.ctx) : json_null();
    /* With a shared tier the originals live there; the counts stay this
     * process's copy. */
    if (remote.put && remote.name && json_is_object(o)) json_object_set_new(o, "backend", json_string(remote.name));
    return o;
}

int hr_ccr_describe(const char *hash, const struct hr_ccr_info *in, struct hr_ccr_info *out)
{
    if (!backend.describe || !hash || strlen(hash) != HR_CCR_HASH_LEN) return HR_EINVAL;
    return backend.describe(backend.ctx, hash, in, out);
}

/* Every marker, JSON or text, names its address one way: hash=<24 hex>. */
static const char *next_address(const char *p, const char *end, const char **addr)
{
    const char *best = memmem(p, (size_t)(end - p), "hash=", 5);
    if (!best) return NULL;
    const char *h = best + 5;
    *addr = NULL;
    if (end - h < HR_CCR_HASH_LEN) return h;
    for (size_t i = 0; i < HR_CCR_HASH_LEN; i++)
        if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f'))) return h;
    *addr = h;
    return h;
}

size_t hr_ccr_markers(const char *text, size_t len, char (*out)[HR_CCR_HASH_LEN + 1], size_t max)
{
    size_t n = 0;
    const char *p = text, *end = text + len, *addr;
    while (p < end && (p = next_address(p, end, &addr))) {
        if (addr) {
            size_t k = 0;
            while (k < n && memcmp(out[k], addr, HR_CCR_HASH_LEN)) k++;
            if (k == n && n < max) {
                memcpy(out[n], addr, HR_CCR_HASH_LEN);
                out[n++][HR_CCR_HASH_LEN] = '\0';
            }
        }
        p++;
    }
    return n;
}
