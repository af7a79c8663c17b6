/* balance.h — accepted connections spread evenly over the workers (see balance.c). */
#ifndef HR_BALANCE_H
#define HR_BALANCE_H
#include <stddef.h>
#include "daemon.h"

/* Once the worker's HTTP server exists, before its thread runs; with
 * balance_connections yes (else nothing): it takes connections handed to
 * it, and hands what it accepts to a worker with fewer open. */
int hr_balance_worker_start(struct hr_worker *w);
/* Draining: no more connections are handed to this worker. */
void hr_balance_stop_taking(struct hr_worker *w);
/* After its thread is joined, before its HTTP server and base are freed:
 * sockets handed to it and not served yet are closed. */
void hr_balance_worker_stop(struct hr_worker *w);
#endif
