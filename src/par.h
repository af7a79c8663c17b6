/* par.h — a small fork-join pool so one large request's compression work
 * (token counts of its tool outputs, smart_crusher's per-output analysis)
 * can use cores no other request is using. The calling thread always works
 * on its own job too, so a busy or absent pool means no help, not a wait in
 * a queue; the caller waits only for items a helper has already started. */
#ifndef HR_PAR_H
#define HR_PAR_H
#include <pthread.h>
#include <stddef.h>

typedef void (*hr_par_fn)(void *ctx, size_t i);

/* One call of hr_par_for, or one hr_par_spawn: lives on its caller's stack.
 * The fields are par.c's. */
struct hr_par_job {
    hr_par_fn fn;
    void *ctx;
    size_t n, next, done;
    unsigned holders;         /* helpers working on this job now */
    pthread_cond_t finished;  /* done == n and holders == 0 */
    struct hr_par_job *queue_next;
    int queued;
    int pooled;               /* in the pool's queue once (hr_par_spawn) */
};

/* Start `helpers` helper threads (0 = none: hr_par_for runs inline).
 * Returns 0, or -1 when no thread could be started (then none run). */
int hr_par_start(unsigned helpers);
/* Stop and join the helpers. Callers must have returned from hr_par_for. */
void hr_par_stop(void);
/* Helper threads running now. */
unsigned hr_par_helpers(void);

/* Call fn(ctx, i) once for every i in [0, n), on this thread and any idle
 * helpers, in no particular order; return when all calls have returned.
 * fn must be thread-safe across different i. Nested calls are allowed.
 * Runs inline while more requests are being compressed than there are
 * helpers: then every thread the pool may use is already busy. */
void hr_par_for(size_t n, hr_par_fn fn, void *ctx);

/* fn(ctx, i) for i in [0, n), in that order, on idle helpers while the
 * caller goes on with other work: hr_par_spawn offers the calls to the pool
 * (under the same rule as hr_par_for) and returns at once; hr_par_join
 * runs there, on the caller, the calls no helper has started, and returns
 * when all have run: the caller waits only for calls a helper has already
 * started. hr_par_cancel instead of hr_par_join when the results are no
 * longer wanted: the calls no helper has started never run, and it returns
 * when the started ones have. Every spawn is joined or cancelled by the
 * thread that spawned it. */
void hr_par_spawn(struct hr_par_job *job, size_t n, hr_par_fn fn, void *ctx);
void hr_par_join(struct hr_par_job *job);
void hr_par_cancel(struct hr_par_job *job);

/* Bracket the compression of one request (the pipeline does). */
void hr_par_request_begin(void);
void hr_par_request_end(void);
#endif
