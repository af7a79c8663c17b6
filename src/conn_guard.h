/* conn_guard.h — the fd limit (see conn_guard.c). */
#ifndef HR_CONN_GUARD_H
#define HR_CONN_GUARD_H
#include "daemon.h"

struct evconnlistener;

/* A worker's listener, once its HTTP server accepts on it. */
int hr_conn_guard_worker(struct hr_worker *w, struct evconnlistener *listener);
void hr_conn_guard_worker_free(struct hr_worker *w);
/* In the worker's thread: close the worker's listening socket (draining). */
void hr_conn_guard_stop_accepting(struct hr_worker *w);
#endif
