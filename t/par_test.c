/* t/par_test.c — the fork-join pool: every index runs exactly once, on more
 * than one thread when helpers exist, from several callers at once, nested,
 * and inline when the pool is stopped. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>
#include "par.h"
#include "tap.h"

#define N 1000

struct ctx {
    atomic_int hits[N];
    atomic_int distinct_threads;
    pthread_t seen[8];
    atomic_int n_seen;
    pthread_mutex_t lock;
};

static void note_thread(struct ctx *c)
{
    pthread_t self = pthread_self();
    pthread_mutex_lock(&c->lock);
    int known = 0;
    for (int k = 0; k < c->n_seen; k++)
        if (pthread_equal(c->seen[k], self)) known = 1;
    if (!known && c->n_seen < 8) c->seen[c->n_seen++] = self;
    pthread_mutex_unlock(&c->lock);
}

static void work(void *arg, size_t i)
{
    struct ctx *c = arg;
    atomic_fetch_add(&c->hits[i], 1);
    note_thread(c);
    usleep(100); /* long enough that idle helpers get a share */
}

static int all_once(struct ctx *c, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (atomic_load(&c->hits[i]) != 1) return 0;
    return 1;
}

static struct ctx *new_ctx(void)
{
    struct ctx *c = calloc(1, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
    return c;
}

static void *caller(void *arg)
{
    hr_par_for(200, work, arg);
    return NULL;
}

struct nest {
    atomic_int inner_total;
};

static void inner(void *arg, size_t i)
{
    (void)i;
    atomic_fetch_add(&((struct nest *)arg)->inner_total, 1);
}

static void outer(void *arg, size_t i)
{
    (void)i;
    hr_par_for(10, inner, arg);
}

int main(void)
{
    struct ctx *c = new_ctx();
    hr_par_for(N, work, c);
    ok(all_once(c, N), "no pool: every index runs once");
    is_int(c->n_seen, 1, "no pool: all on the calling thread");
    free(c);

    ok(hr_par_start(2) == 0, "two helpers start");
    is_int(hr_par_helpers(), 2, "helpers counted");
    c = new_ctx();
    hr_par_for(N, work, c);
    ok(all_once(c, N), "pool: every index runs exactly once");
    ok(c->n_seen >= 2, "pool: work ran on %d threads", c->n_seen);
    free(c);

    c = new_ctx();
    hr_par_for(0, work, c);
    hr_par_for(1, work, c);
    ok(atomic_load(&c->hits[0]) == 1 && atomic_load(&c->hits[1]) == 0, "n = 0 runs nothing, n = 1 runs index 0");
    free(c);

    /* Four callers at once share two helpers; each still gets all its items. */
    struct ctx *cs[4];
    pthread_t t[4];
    for (int k = 0; k < 4; k++) {
        cs[k] = new_ctx();
        pthread_create(&t[k], NULL, caller, cs[k]);
    }
    int every = 1;
    for (int k = 0; k < 4; k++) {
        pthread_join(t[k], NULL);
        every &= all_once(cs[k], 200);
        free(cs[k]);
    }
    ok(every, "four concurrent callers: each index of each job ran once");

    struct nest ns = {0};
    hr_par_for(20, outer, &ns);
    is_int(atomic_load(&ns.inner_total), 200, "nested calls complete (20 x 10)");

    hr_par_stop();
    is_int(hr_par_helpers(), 0, "stopped: no helpers");
    c = new_ctx();
    hr_par_for(50, work, c);
    ok(all_once(c, 50) && c->n_seen == 1, "after stop: runs inline again");
    free(c);
    tap_done();
    return tap_failed != 0;
}
