/* return_pool_test.c — lib/return_pool.h: blocks made on one thread and
 * given back from others come back to their owner, each once, and are
 * reused; the pool drains to nothing (ASan checks for double frees and
 * leaks). */
#include <pthread.h>
#include <string.h>
#include "return_pool.h"
#include "tap.h"

#define BLOCKS 200000
#define QUEUE 512
#define CONSUMERS 3

struct item {
    struct hr_return_node node;
    unsigned long seq;
    int out; /* 1 while a consumer holds it */
};

/* The hand-off from the owner to the consumers: a plain locked ring. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static struct item *ring[QUEUE];
static size_t head, len;
static int done;
static struct hr_return_pool pool;

static void *consumer(void *arg)
{
    (void)arg;
    struct item *chain[8];
    size_t n = 0;
    for (;;) {
        pthread_mutex_lock(&mu);
        while (!len && !done) pthread_cond_wait(&cond, &mu);
        struct item *it = NULL;
        if (len) {
            it = ring[head];
            head = (head + 1) % QUEUE;
            len--;
            pthread_cond_broadcast(&cond);
        }
        pthread_mutex_unlock(&mu);
        if (it) chain[n++] = it;
        /* Put back one at a time and in chains of up to 8. */
        if (n && (!it || n == 8 || (it->seq & 1))) {
            for (size_t k = 0; k < n; k++) {
                chain[k]->out = 0;
                if (k + 1 < n) chain[k]->node.next = &chain[k + 1]->node;
            }
            hr_return_put_chain(&pool, &chain[0]->node, &chain[n - 1]->node);
            n = 0;
        }
        if (!it) break;
    }
    return NULL;
}

static size_t count(struct hr_return_node *n)
{
    size_t k = 0;
    for (; n; n = n->next) k++;
    return k;
}

/* Every block the pool has handed out: few, when it reuses them. */
#define KNOWN_MAX 8192
static struct item *known[KNOWN_MAX];
static size_t n_known;

static int is_known(const struct item *it)
{
    for (size_t k = 0; k < n_known; k++)
        if (known[k] == it) return 1;
    return 0;
}

int main(void)
{
    pthread_t th[CONSUMERS];
    for (int i = 0; i < CONSUMERS; i++) pthread_create(&th[i], NULL, consumer, NULL);
    int small = 0, still_out = 0, too_many = 0;
    unsigned long i;
    for (i = 0; i < BLOCKS && !too_many; i++) {
        size_t need = sizeof(struct item) + (i % 3) * 40; /* three sizes, all within the reuse slack */
        struct item *it = (struct item *)hr_return_get(&pool, need);
        if (!it) break;
        if (it->node.cap < need) small++;
        /* The consumer's `out = 0` came before its put (release), and the
         * pool's take (acquire) before this read. */
        pthread_mutex_lock(&mu);
        if (is_known(it)) {
            if (it->out) still_out++;
        } else if (n_known < KNOWN_MAX) {
            known[n_known++] = it;
        } else {
            too_many = 1;
        }
        it->seq = i;
        it->out = 1;
        while (len == QUEUE) pthread_cond_wait(&cond, &mu);
        ring[(head + len) % QUEUE] = it;
        len++;
        pthread_cond_broadcast(&cond);
        pthread_mutex_unlock(&mu);
    }
    pthread_mutex_lock(&mu);
    done = 1;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&mu);
    for (int k = 0; k < CONSUMERS; k++) pthread_join(th[k], NULL);
    is_int(i, BLOCKS, "%d blocks handed out and given back by %d threads", BLOCKS, CONSUMERS);
    ok(!small, "each at least as large as asked for");
    ok(!still_out, "none handed out again while a consumer held it");
    ok(!too_many, "blocks were reused: %zu allocated in all", n_known);
    size_t left = count(pool.pending) + count(atomic_load(&pool.returned));
    ok(left == n_known, "every one is back in the pool, once (%zu of %zu)", left, n_known);
    hr_return_drain(&pool);
    ok(!pool.pending && !atomic_load(&pool.returned), "a drained pool is empty");
    return tap_exit();
}
