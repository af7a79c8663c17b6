/* conn_guard.h — the fd limit and slow clients (see conn_guard.c). */
#ifndef HR_CONN_GUARD_H
#define HR_CONN_GUARD_H
#include "daemon.h"

/* Once, before workers start (sizes the per-descriptor table). */
int hr_conn_guard_init(void);
void hr_conn_guard_shutdown(void);
/* A worker's listener and connections, once its evhttp accepts on `bound`. */
int hr_conn_guard_worker(struct hr_worker *w, struct evhttp_bound_socket *bound);
void hr_conn_guard_worker_free(struct hr_worker *w);
/* Every request as it is dispatched: its connection is busy, and has no read
 * timer (client_timeout bounds receiving a request, not a silent answer),
 * until answered. */
void hr_conn_guard_request(struct hr_worker *w, struct evhttp_request *req);
/* In the worker's thread: close the worker's listening socket (draining). */
void hr_conn_guard_stop_accepting(struct hr_worker *w);
#endif
