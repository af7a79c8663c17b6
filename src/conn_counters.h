/* conn_counters.h — connections per worker: clients' open now
 * (http_server.c keeps them, balance.c and /metrics read them), and the
 * upstream pool's (upstream_h1.c and upstream_curl.c keep them, /metrics and
 * /stats read them). metrics.c is in the core library, the HTTP server and
 * the upstream clients in the daemon. */
#ifndef HR_CONN_COUNTERS_H
#define HR_CONN_COUNTERS_H
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* At start, before workers run: `n` workers, none open. */
void hr_conn_counters_init(size_t n);
/* Worker `worker`'s counter (NULL past the last). */
atomic_int *hr_conn_counter(size_t worker);
/* Open now on worker `worker`; -1 past the last. */
int hr_conn_open(size_t worker);

/* A worker's upstream connections. Written by that worker only (relaxed
 * loads and stores: no locked instruction on the request path), read by
 * any thread. */
struct hr_upstream_counts {
    atomic_uint_fast64_t opened; /* established since start (TCP connect done) */
    atomic_long idle;            /* kept open for reuse now (native client) */
};
/* Worker `worker`'s (NULL past the last). */
struct hr_upstream_counts *hr_upstream_counts(size_t worker);
/* Add one to a counter only its owner thread writes. */
static inline void hr_owned_add(atomic_uint_fast64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n, memory_order_relaxed);
}
/* Sums over the workers. */
uint64_t hr_upstream_opened_total(void);
long hr_upstream_idle_total(void);
#endif
