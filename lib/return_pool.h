/* return_pool.h — memory handed back to the thread that allocated it.
 *
 * glibc's malloc gives each thread an arena, and free() of a chunk from
 * another thread's arena takes that arena's lock. A consumer thread freeing
 * a producer's allocations by the thousand (a sink thread's batch of event
 * copies, the metrics_db writer's batch of rows) holds the producer's lock
 * while the producer, a request thread, wants it for its next malloc: it
 * sleeps on a futex (bench/README.md, session 18). Instead the consumer
 * puts what it is done with back on the owner's pool, and the owner takes
 * it all back at once and reuses or frees it on its own thread.
 *
 * Any thread may put; only the owner gets, and it takes everything that was
 * put at once, so there is no ABA problem and no lock. Header-only: the
 * daemon and plugins share it. */
#ifndef HR_RETURN_POOL_H
#define HR_RETURN_POOL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>

/* The start of every block a pool hands out. */
struct hr_return_node {
    struct hr_return_node *next;
    size_t cap; /* bytes allocated, this header included */
};

struct hr_return_pool {
    _Atomic(struct hr_return_node *) returned; /* put back by any thread */
    struct hr_return_node *pending;            /* the owner's: taken back, not yet reused or freed */
};

/* Blocks are allocated in steps of this many bytes, so the next one asked
 * for usually fits in one put back. */
#define HR_RETURN_ROUND 128
/* A block put back is reused for a request that wastes at most this much
 * of it; larger ones are freed. */
#define HR_RETURN_SLACK 1024
/* At most this many blocks put back are looked at (reused or freed) per
 * block asked for: a thousand coming back at once are not freed in one go. */
#define HR_RETURN_LOOK 4

/* A block of at least `need` bytes for the owner (NULL when out of memory). */
static inline struct hr_return_node *hr_return_get(struct hr_return_pool *p, size_t need)
{
    if (!p->pending && atomic_load_explicit(&p->returned, memory_order_relaxed))
        p->pending = atomic_exchange_explicit(&p->returned, NULL, memory_order_acquire);
    for (int k = 0; p->pending && k < HR_RETURN_LOOK; k++) {
        struct hr_return_node *n = p->pending;
        p->pending = n->next;
        if (n->cap >= need && n->cap - need <= HR_RETURN_SLACK) return n;
        free(n);
    }
    size_t cap = (need + HR_RETURN_ROUND - 1) / HR_RETURN_ROUND * HR_RETURN_ROUND;
    struct hr_return_node *n = malloc(cap);
    if (n) n->cap = cap;
    return n;
}

/* hr_return_get from `p`, or a plain malloc of `need` bytes when `p` is
 * NULL (a caller without a pool); cap is set either way. */
static inline struct hr_return_node *hr_return_alloc(struct hr_return_pool *p, size_t need)
{
    if (p) return hr_return_get(p, need);
    struct hr_return_node *n = malloc(need);
    if (n) n->cap = need;
    return n;
}

/* Put back the chain first..last, linked by next (any thread). */
static inline void hr_return_put_chain(struct hr_return_pool *p, struct hr_return_node *first,
                                       struct hr_return_node *last)
{
    struct hr_return_node *top = atomic_load_explicit(&p->returned, memory_order_relaxed);
    do
        last->next = top;
    while (!atomic_compare_exchange_weak_explicit(&p->returned, &top, first, memory_order_release,
                                                  memory_order_relaxed));
}

static inline void hr_return_put(struct hr_return_pool *p, struct hr_return_node *n)
{
    hr_return_put_chain(p, n, n);
}

/* Free every block in the pool: once no thread can put any more. */
static inline void hr_return_drain(struct hr_return_pool *p)
{
    struct hr_return_node *lists[2] = {p->pending, atomic_exchange(&p->returned, NULL)};
    p->pending = NULL;
    for (int i = 0; i < 2; i++)
        for (struct hr_return_node *n = lists[i], *next; n; n = next) {
            next = n->next;
            free(n);
        }
}

#endif
