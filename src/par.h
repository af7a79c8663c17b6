/* par.h — a small fork-join pool so one large request's compression work
 * (token counts of its tool outputs, smart_crusher's per-output analysis)
 * can use cores no other request is using. The calling thread always works
 * on its own job too, so a busy or absent pool means no help, not a wait in
 * a queue; the caller waits only for items a helper has already started. */
#ifndef HR_PAR_H
#define HR_PAR_H
#include <stddef.h>

typedef void (*hr_par_fn)(void *ctx, size_t i);

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

/* One piece of work handed to a helper to run while the caller goes on
 * (a request's token count while its answer is awaited). Lives in the
 * caller's memory until hr_par_join returns. */
struct hr_par_task {
    void (*fn)(void *ctx);
    void *ctx;
    int state; /* par.c's */
    struct hr_par_task *next;
};

/* Queue `t` for the first idle helper. Returns 0, or -1 when there is no
 * helper (nothing queued: hr_par_join then runs it on the caller). */
int hr_par_spawn(struct hr_par_task *t, void (*fn)(void *ctx), void *ctx);
/* Return once `t` has run: on this thread when no helper has taken it yet,
 * else after the helper is done. Every spawned task must be joined. */
void hr_par_join(struct hr_par_task *t);

/* Bracket the compression of one request (the pipeline does). */
void hr_par_request_begin(void);
void hr_par_request_end(void);
#endif
