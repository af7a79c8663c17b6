/* drain.c — a clean stop on SIGTERM/SIGINT: no new connections, /readyz
 * 503 and new requests 503 (Retry-After), in-flight requests and streams
 * finish for up to shutdown_timeout, the rest end with an error their SDK
 * raises. The caller then flushes sinks and state files as usual. */
#include <errno.h>
#include <unistd.h>
#include <time.h>
#include <event2/event.h>
#include "balance.h"
#include "conn_guard.h"
#include "daemon.h"
#include "fleet.h"
#include "log.h"
#include "proxy.h"
#include "stats.h"
#include "ws_relay.h"

#define LOGGER "headroom.server"

static void check_drained(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct hr_worker *w = arg;
    int busy = 0;
    for (struct proxy_req *p = w->live; p && !busy; p = p->live_next) busy = !p->finish_deferred;
    if (hr_ws_drain(w)) busy = 1; /* closes the idle ones */
    if (!busy && !hr_fleet_waiting(w)) atomic_store(&w->drained, 1);
}

/* In the worker's thread: no more accepts, and report when idle. */
static void start_draining(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct hr_worker *w = arg;
    hr_conn_guard_stop_accepting(w);
    hr_balance_stop_taking(w);
    w->drain_check = event_new(w->base, -1, EV_PERSIST, check_drained, w);
    struct timeval tv = {0, 20000};
    if (w->drain_check) event_add(w->drain_check, &tv);
    check_drained(-1, 0, w);
}

static void abort_inflight(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct hr_worker *w = arg;
    static const char why[] = "headroomd is shutting down and this request did not finish within shutdown_timeout; "
                              "retry it";
    hr_acct_flush_deferred(w); /* answered already, only their count was pending */
    int n = hr_fleet_abort_waits(w, why);
    n += hr_ws_abort_all(w, why); /* their pending responses too, before the loop below */
    for (struct proxy_req *p = w->live, *next; p; p = next) {
        next = p->live_next;
        if (p->finish_deferred) continue; /* answered; freed after its late count */
        hr_relay_abort(p, why);
        n++;
    }
    if (n) HR_WARN(LOGGER, "worker %zu: %d request%s still in flight at shutdown_timeout: ended with an error", w->index,
                   n, n == 1 ? "" : "s");
    atomic_store(&w->drained, 1);
}

static int all_drained(struct hr_daemon *d)
{
    for (size_t i = 0; i < d->n_workers; i++)
        if (!atomic_load(&d->workers[i].drained)) return 0;
    return 1;
}

int hr_server_drain(struct hr_daemon *d, const sigset_t *sigs)
{
    atomic_store(&d->stopping, 1);
    if (!d->workers) return 0;
    const struct timeval now = {0, 0};
    for (size_t i = 0; i < d->n_workers; i++)
        event_base_once(d->workers[i].base, -1, EV_TIMEOUT, start_draining, &d->workers[i], &now);
    if (d->listen_fd >= 0) close(d->listen_fd); /* the workers close their own copies */
    d->listen_fd = -1;
    double deadline = hr_monotonic_ms() + 1000.0 * d->cfg->shutdown_timeout_s;
    int aborted = 0;
    while (!all_drained(d)) {
        if (!aborted && hr_monotonic_ms() >= deadline) {
            for (size_t i = 0; i < d->n_workers; i++) {
                atomic_store(&d->workers[i].drained, 0);
                event_base_once(d->workers[i].base, -1, EV_TIMEOUT, abort_inflight, &d->workers[i], &now);
            }
            aborted = 1;
        }
        struct timespec ts = {0, 20 * 1000000L};
        int sig = sigtimedwait(sigs, NULL, &ts);
        if (sig == SIGINT || sig == SIGTERM) {
            HR_WARN(LOGGER, "%s received while draining: exiting now", sig == SIGINT ? "SIGINT" : "SIGTERM");
            return 1;
        }
    }
    return 0;
}
