/* conn_counters.c — client connections open, per worker (conn_counters.h). */
#include "conn_counters.h"

#define MAX_WORKERS 256 /* config.c's bound on workers */

static atomic_int open_by_worker[MAX_WORKERS];
static atomic_size_t n_workers;

void hr_conn_counters_init(size_t n)
{
    if (n > MAX_WORKERS) n = MAX_WORKERS;
    for (size_t i = 0; i < n; i++) atomic_store(&open_by_worker[i], 0);
    atomic_store(&n_workers, n);
}

atomic_int *hr_conn_counter(size_t worker) { return worker < atomic_load(&n_workers) ? &open_by_worker[worker] : NULL; }

int hr_conn_open(size_t worker)
{
    atomic_int *c = hr_conn_counter(worker);
    return c ? atomic_load_explicit(c, memory_order_relaxed) : -1;
}
