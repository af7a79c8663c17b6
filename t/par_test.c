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

/* A spawned task: records the thread it ran on, can be held until released;
 * task_with_job splits work of its own (c) instead. */
struct task_ctx {
    atomic_int runs;
    atomic_int started;
    atomic_int release;
    pthread_t ran_on;
    struct ctx *c;
};

static void task_fn(void *arg)
{
    struct task_ctx *t = arg;
    t->ran_on = pthread_self();
    atomic_store(&t->started, 1);
    while (!atomic_load(&t->release)) usleep(200);
    atomic_fetch_add(&t->runs, 1);
}

static int wait_started(struct task_ctx *t)
{
    for (int i = 0; i < 5000 && !atomic_load(&t->started); i++) usleep(1000);
    return atomic_load(&t->started);
}

static void task_with_job(void *arg)
{
    struct task_ctx *t = arg;
    t->ran_on = pthread_self();
    atomic_store(&t->started, 1);
    hr_par_for(60, work, t->c);
}

static int saw_thread(struct ctx *c, pthread_t t)
{
    for (int k = 0; k < c->n_seen; k++)
        if (pthread_equal(c->seen[k], t)) return 1;
    return 0;
}

static void tasks(void)
{
    /* A helper takes it while the caller goes on; the join waits for it. */
    struct task_ctx a = {0};
    struct hr_par_task ta;
    ok(hr_par_spawn(&ta, task_fn, &a) == 0, "task: queued for a helper");
    ok(wait_started(&a), "task: a helper started it while the caller went on");
    ok(!pthread_equal(a.ran_on, pthread_self()), "task: not on the caller's thread");
    atomic_store(&a.release, 1);
    hr_par_join(&ta);
    is_int(atomic_load(&a.runs), 1, "task: done once the join returns");
    hr_par_join(&ta);
    is_int(atomic_load(&a.runs), 1, "task: a second join runs nothing");

    /* Both helpers busy: a third task waits in the queue, and its join runs
     * it on the caller instead of waiting behind them. */
    struct task_ctx b = {0}, c = {0}, d = {0};
    struct hr_par_task tb, tc, td;
    hr_par_spawn(&tb, task_fn, &b);
    hr_par_spawn(&tc, task_fn, &c);
    ok(wait_started(&b) && wait_started(&c), "tasks: both helpers hold one");
    d.release = 1;
    ok(hr_par_spawn(&td, task_fn, &d) == 0, "tasks: a third is queued");
    hr_par_join(&td);
    ok(atomic_load(&d.runs) == 1 && pthread_equal(d.ran_on, pthread_self()),
       "tasks: the join ran the unclaimed one on the caller");
    atomic_store(&b.release, 1);
    atomic_store(&c.release, 1);
    hr_par_join(&tb);
    hr_par_join(&tc);
    ok(atomic_load(&b.runs) == 1 && atomic_load(&c.runs) == 1, "tasks: the held ones finish once released");

    /* A fork-join job is served while a task holds a helper. */
    struct task_ctx e = {0};
    struct hr_par_task te;
    hr_par_spawn(&te, task_fn, &e);
    ok(wait_started(&e), "task and job: a helper holds the task");
    struct ctx *cx = new_ctx();
    hr_par_for(100, work, cx);
    ok(all_once(cx, 100), "task and job: the job's items all ran once");
    free(cx);
    /* One helper held, the other runs a task that splits its work: the
     * joiner takes items of that work instead of only waiting. */
    struct ctx *split = new_ctx();
    struct task_ctx st = {.c = split};
    struct hr_par_task ts;
    hr_par_spawn(&ts, task_with_job, &st);
    ok(wait_started(&st) && !pthread_equal(st.ran_on, pthread_self()), "a task's own job: the task runs on a helper");
    hr_par_join(&ts);
    ok(all_once(split, 60), "a task's own job: every item ran once by the join's return");
    ok(saw_thread(split, pthread_self()), "a task's own job: the joining thread took items of it (%d threads)",
       split->n_seen);
    free(split);
    atomic_store(&e.release, 1);
    hr_par_join(&te);
    is_int(atomic_load(&e.runs), 1, "task and job: the task finished too");
}

int main(void)
{
    struct task_ctx none = {.release = 1};
    struct hr_par_task tn;
    ok(hr_par_spawn(&tn, task_fn, &none) == -1, "no pool: a task is not queued");
    hr_par_join(&tn);
    ok(atomic_load(&none.runs) == 1 && pthread_equal(none.ran_on, pthread_self()),
       "no pool: the join runs it on the caller");

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

    tasks();

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
