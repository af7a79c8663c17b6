/* conn_counters.c — connections per worker, clients' and upstream
 * (conn_counters.h). */
#include "conn_counters.h"

#define MAX_WORKERS 256 /* config.c's bound on workers */

static atomic_int open_by_worker[MAX_WORKERS];
/* A cache line each: every worker writes its own on every request. */
static struct {
    _Alignas(64) struct hr_upstream_counts c;
} upstream_by_worker[MAX_WORKERS];
static atomic_size_t n_workers;

void hr_conn_counters_init(size_t n)
{
    if (n > MAX_WORKERS) n = MAX_WORKERS;
    for (size_t i = 0; i < n; i++) {
        atomic_store(&open_by_worker[i], 0);
        atomic_store(&upstream_by_worker[i].c.opened, 0);
        atomic_store(&upstream_by_worker[i].c.idle, 0);
    }
    atomic_store(&n_workers, n);
}

struct hr_upstream_counts *hr_upstream_counts(size_t worker)
{
    return worker < atomic_load(&n_workers) ? &upstream_by_worker[worker].c : NULL;
}

uint64_t hr_upstream_opened_total(void)
{
    uint64_t sum = 0;
    for (size_t w = 0; w < atomic_load(&n_workers); w++)
        sum += atomic_load_explicit(&upstream_by_worker[w].c.opened, memory_order_relaxed);
    return sum;
}

long hr_upstream_idle_total(void)
{
    long sum = 0;
    for (size_t w = 0; w < atomic_load(&n_workers); w++)
        sum += atomic_load_explicit(&upstream_by_worker[w].c.idle, memory_order_relaxed);
    return sum;
}

atomic_int *hr_conn_counter(size_t worker) { return worker < atomic_load(&n_workers) ? &open_by_worker[worker] : NULL; }

int hr_conn_open(size_t worker)
{
    atomic_int *c = hr_conn_counter(worker);
    return c ? atomic_load_explicit(c, memory_order_relaxed) : -1;
}
