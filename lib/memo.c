/* memo.c — the content-keyed memo (see memo.h): chained hash buckets plus
 * a recency list, under one mutex (lookups copy a small value out and
 * leave; the expensive work happens outside the lock). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "memo.h"
#include "lru.h"

struct entry {
    struct hr_memo_key key;
    struct entry *chain;
    struct hr_lru_node lru;
    size_t len;
    unsigned char val[];
};

struct hr_memo {
    pthread_mutex_t lock;
    struct entry **buckets;
    size_t mask;
    struct hr_lru lru;
    struct hr_memo_counters c;
};

static size_t entry_bytes(size_t len) { return sizeof(struct entry) + len; }

static int key_eq(const struct hr_memo_key *a, const struct hr_memo_key *b)
{
    return a->hash[0] == b->hash[0] && a->hash[1] == b->hash[1] && a->len == b->len && a->salt == b->salt;
}

static struct entry **slot(struct hr_memo *m, const struct hr_memo_key *k)
{
    uint64_t h = k->hash[0] ^ (k->salt * 0x9e3779b97f4a7c15ULL);
    struct entry **p = &m->buckets[(size_t)(h ^ (h >> 31)) & m->mask];
    while (*p && !key_eq(&(*p)->key, k))
        p = &(*p)->chain;
    return p;
}

struct hr_memo *hr_memo_new(size_t max_bytes)
{
    if (!max_bytes)
        return NULL;
    struct hr_memo *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    /* About one bucket per 256 bytes of budget: short chains for small values. */
    size_t n = 256;
    while (n < max_bytes / 256 && n < (1u << 20))
        n *= 2;
    m->buckets = calloc(n, sizeof *m->buckets);
    if (!m->buckets) {
        free(m);
        return NULL;
    }
    m->mask = n - 1;
    m->c.max_bytes = max_bytes;
    pthread_mutex_init(&m->lock, NULL);
    return m;
}

static void drop(struct hr_memo *m, struct entry **p)
{
    struct entry *e = *p;
    *p = e->chain;
    hr_lru_unlink(&m->lru, &e->lru);
    m->c.bytes -= entry_bytes(e->len);
    m->c.entries--;
    free(e);
}

void hr_memo_free(struct hr_memo *m)
{
    if (!m)
        return;
    for (size_t i = 0; i <= m->mask; i++)
        while (m->buckets[i])
            drop(m, &m->buckets[i]);
    free(m->buckets);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

void *hr_memo_get(struct hr_memo *m, const struct hr_memo_key *k, size_t *len)
{
    if (!m)
        return NULL;
    void *copy = NULL;
    pthread_mutex_lock(&m->lock);
    m->c.lookups++;
    struct entry *e = *slot(m, k);
    if (e && (copy = malloc(e->len ? e->len : 1))) {
        memcpy(copy, e->val, e->len);
        *len = e->len;
        hr_lru_touch(&m->lru, &e->lru);
        m->c.hits++;
    }
    pthread_mutex_unlock(&m->lock);
    return copy;
}

void hr_memo_put(struct hr_memo *m, const struct hr_memo_key *k, const void *val, size_t len)
{
    if (!m || entry_bytes(len) > m->c.max_bytes / 4)
        return;
    struct entry *e = malloc(entry_bytes(len));
    if (!e)
        return;
    e->key = *k;
    e->len = len;
    memcpy(e->val, val, len);
    pthread_mutex_lock(&m->lock);
    struct entry **p = slot(m, k);
    if (*p)
        drop(m, p); /* two threads crushed the same text: keep the newer copy */
    while (m->c.bytes + entry_bytes(len) > m->c.max_bytes && m->lru.tail) {
        struct entry *old = HR_LRU_ENTRY(m->lru.tail, struct entry, lru);
        drop(m, slot(m, &old->key));
        m->c.evictions++;
    }
    p = slot(m, k);
    e->chain = NULL;
    *p = e;
    hr_lru_push_front(&m->lru, &e->lru);
    m->c.bytes += entry_bytes(len);
    m->c.entries++;
    pthread_mutex_unlock(&m->lock);
}

void hr_memo_read_counters(struct hr_memo *m, struct hr_memo_counters *out)
{
    memset(out, 0, sizeof *out);
    if (!m)
        return;
    pthread_mutex_lock(&m->lock);
    *out = m->c;
    pthread_mutex_unlock(&m->lock);
}

void hr_memo_reset_counters(struct hr_memo *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->lock);
    m->c.hits = m->c.lookups = m->c.evictions = 0;
    pthread_mutex_unlock(&m->lock);
}
