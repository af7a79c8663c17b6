/* conn_counters.h — client connections open, per worker (http_server.c
 * keeps them, balance.c and /metrics read them: metrics.c is in the core
 * library, the HTTP server in the daemon). */
#ifndef HR_CONN_COUNTERS_H
#define HR_CONN_COUNTERS_H
#include <stdatomic.h>
#include <stddef.h>

/* At start, before workers run: `n` workers, none open. */
void hr_conn_counters_init(size_t n);
/* Worker `worker`'s counter (NULL past the last). */
atomic_int *hr_conn_counter(size_t worker);
/* Open now on worker `worker`; -1 past the last. */
int hr_conn_open(size_t worker);
#endif
