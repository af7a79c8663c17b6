/* par.c — the fork-join pool (see par.h). One mutex guards the list of
 * jobs with unclaimed items; items are big (a tool output each), so taking
 * the lock per item costs nothing measurable. A job lives on its caller's
 * stack: the caller leaves only when every item is done and no helper still
 * holds the job. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include "bg_thread.h"
#include "par.h"

struct job {
    hr_par_fn fn;
    void *ctx;
    size_t n, next, done;
    unsigned holders;         /* helpers working on this job now */
    pthread_cond_t finished;  /* done == n and holders == 0 */
    struct job *queue_next;
    int queued;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work = PTHREAD_COND_INITIALIZER;
static struct job *queue;     /* jobs with unclaimed items, oldest first */
static struct hr_par_task *tasks, **tasks_tail = &tasks; /* spawned, not started, oldest first */
enum { TASK_QUEUED = 1, TASK_RUNNING, TASK_DONE };
static pthread_t *threads;
static unsigned n_threads;
static int stopping;
static atomic_int compressing; /* requests between hr_par_request_begin and _end */

/* Woken helpers are kept off the caller's CPU: a thread woken by
 * pthread_cond_signal is often queued on its waker's CPU, where it waits
 * while the caller works (bench/README, "the daemon's serial work": each
 * thread waited 3-5 ms per never-seen megabyte on a run queue). The mask
 * changes only when the caller has moved to another CPU. */
static cpu_set_t allowed;      /* the process's CPUs when the pool started */
static int steer;              /* more than one of them */
static atomic_int avoided = -1; /* the CPU the helpers are kept off now */
static _Thread_local int on_helper; /* a nested call from a helper leaves the masks alone */

static void steer_helpers(void)
{
    int cpu = steer && !on_helper ? sched_getcpu() : -1;
    if (cpu < 0 || cpu >= CPU_SETSIZE || cpu == atomic_load_explicit(&avoided, memory_order_relaxed) ||
        !CPU_ISSET(cpu, &allowed))
        return;
    cpu_set_t set = allowed;
    CPU_CLR(cpu, &set);
    for (unsigned i = 0; i < n_threads; i++) pthread_setaffinity_np(threads[i], sizeof set, &set);
    atomic_store_explicit(&avoided, cpu, memory_order_relaxed);
}

static void dequeue(struct job *j)
{
    for (struct job **p = &queue; *p; p = &(*p)->queue_next)
        if (*p == j) {
            *p = j->queue_next;
            break;
        }
    j->queued = 0;
}

/* Claim and run items of `j` until none is left. Called with the lock held;
 * returns with it held. */
static void run_items(struct job *j)
{
    while (j->next < j->n) {
        size_t i = j->next++;
        if (j->next == j->n && j->queued) dequeue(j);
        pthread_mutex_unlock(&lock);
        j->fn(j->ctx, i);
        pthread_mutex_lock(&lock);
        if (++j->done == j->n) pthread_cond_broadcast(&j->finished);
    }
}

static void unqueue_task(struct hr_par_task *t)
{
    struct hr_par_task **p = &tasks;
    while (*p != t) p = &(*p)->next;
    *p = t->next;
    if (tasks_tail == &t->next) tasks_tail = p;
    t->next = NULL;
}

/* Called with the lock held; returns with it held. */
static void run_task(struct hr_par_task *t)
{
    unqueue_task(t);
    t->state = TASK_RUNNING;
    pthread_mutex_unlock(&lock);
    t->fn(t->ctx);
    pthread_mutex_lock(&lock);
    t->state = TASK_DONE;
    pthread_cond_broadcast(&work); /* its joiner may be waiting there */
}

/* Work on `j` alongside its caller. Lock held on entry and on return. */
static void help_with(struct job *j)
{
    j->holders++;
    run_items(j);
    if (--j->holders == 0 && j->done == j->n) pthread_cond_broadcast(&j->finished);
}

static void *helper_main(void *arg)
{
    (void)arg;
    hr_thread_name("compress");
    on_helper = 1;
    pthread_mutex_lock(&lock);
    for (;;) {
        while (!stopping && !queue && !tasks) pthread_cond_wait(&work, &lock);
        if (stopping) break;
        if (!queue) { /* a fork-join job first: its caller is waiting on it now */
            run_task(tasks);
            continue;
        }
        help_with(queue);
    }
    pthread_mutex_unlock(&lock);
    return NULL;
}

void hr_par_for(size_t n, hr_par_fn fn, void *ctx)
{
    if (n == 0) return;
    /* With as many requests being compressed as there are threads, every
     * core is busy: a helper would only take a core from another request,
     * and a preempted helper would hold up this one. */
    if (n == 1 || n_threads == 0 || atomic_load_explicit(&compressing, memory_order_relaxed) > (int)n_threads) {
        for (size_t i = 0; i < n; i++) fn(ctx, i);
        return;
    }
    steer_helpers();
    struct job j = {.fn = fn, .ctx = ctx, .n = n, .queued = 1};
    pthread_cond_init(&j.finished, NULL);
    pthread_mutex_lock(&lock);
    struct job **tail = &queue;
    while (*tail) tail = &(*tail)->queue_next;
    *tail = &j;
    /* One wake per item the caller will not take itself. */
    for (size_t k = 1; k < n && k <= n_threads; k++) pthread_cond_signal(&work);
    run_items(&j);
    while (j.done < j.n || j.holders) pthread_cond_wait(&j.finished, &lock);
    if (j.queued) dequeue(&j);
    pthread_mutex_unlock(&lock);
    pthread_cond_destroy(&j.finished);
}

int hr_par_spawn(struct hr_par_task *t, void (*fn)(void *ctx), void *ctx)
{
    *t = (struct hr_par_task){.fn = fn, .ctx = ctx};
    pthread_mutex_lock(&lock);
    if (!n_threads || stopping) {
        pthread_mutex_unlock(&lock);
        return -1;
    }
    t->state = TASK_QUEUED;
    *tasks_tail = t;
    tasks_tail = &t->next;
    pthread_cond_broadcast(&work); /* a signal could wake a joiner, which takes no task */
    pthread_mutex_unlock(&lock);
    return 0;
}

void hr_par_join(struct hr_par_task *t)
{
    pthread_mutex_lock(&lock);
    if (t->state == TASK_QUEUED) run_task(t); /* no helper got to it: waiting would only add its wait */
    /* On a helper: meanwhile this thread helps with the queued fork-join
     * work, which is often the task's own (a large count is split). */
    while (t->state == TASK_RUNNING) {
        if (queue) help_with(queue);
        else pthread_cond_wait(&work, &lock);
    }
    pthread_mutex_unlock(&lock);
    if (!t->state) t->fn(t->ctx); /* never spawned */
    t->state = TASK_DONE;
}

int hr_par_start(unsigned helpers)
{
    if (!helpers) return 0;
    steer = sched_getaffinity(0, sizeof allowed, &allowed) == 0 && CPU_COUNT(&allowed) > 1;
    atomic_store(&avoided, -1);
    threads = calloc(helpers, sizeof *threads);
    if (!threads) return -1;
    stopping = 0;
    for (unsigned i = 0; i < helpers; i++) {
        if (pthread_create(&threads[i], NULL, helper_main, NULL)) break;
        n_threads++;
    }
    return n_threads ? 0 : -1;
}

void hr_par_stop(void)
{
    pthread_mutex_lock(&lock);
    stopping = 1;
    pthread_cond_broadcast(&work);
    pthread_mutex_unlock(&lock);
    for (unsigned i = 0; i < n_threads; i++) pthread_join(threads[i], NULL);
    free(threads);
    threads = NULL;
    n_threads = 0;
}

unsigned hr_par_helpers(void) { return n_threads; }

void hr_par_request_begin(void) { atomic_fetch_add_explicit(&compressing, 1, memory_order_relaxed); }

void hr_par_request_end(void) { atomic_fetch_sub_explicit(&compressing, 1, memory_order_relaxed); }
