/* sdnotify.h — telling a service manager (systemd, Type=notify) how the
 * daemon is doing: READY, RELOADING, STOPPING, STATUS and watchdog pings.
 * Built on libsystemd's sd_notify when configure found it; otherwise every
 * call is a no-op and headroomd runs as Type=simple. */
#ifndef HR_SDNOTIFY_H
#define HR_SDNOTIFY_H
#include <stddef.h>

struct event_base;

/* 1 when built with libsystemd. */
int hr_sd_available(void);
/* READY=1 with a STATUS line. */
void hr_sd_ready(const char *status);
/* RELOADING=1 (a SIGHUP reload starts); hr_sd_ready ends it. */
void hr_sd_reloading(void);
/* STOPPING=1 with a STATUS line. */
void hr_sd_stopping(const char *status);

/*
 * hr_watchdog_start
 *   When the manager asked for watchdog pings (WatchdogSec=, seen through
 *   $WATCHDOG_USEC), start a thread that every half period posts a no-op
 *   event to each worker's event loop and sends WATCHDOG=1 only once every
 *   loop ran the previous one: a wedged worker stops the pings and systemd
 *   restarts the service. Without a watchdog request nothing starts.
 */
int hr_watchdog_start(struct event_base *const *bases, size_t n_bases);
/* Stop the thread (before the event loops are freed). */
void hr_watchdog_stop(void);
#endif
