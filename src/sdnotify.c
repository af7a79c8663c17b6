/* sdnotify.c — service-manager notifications (sd_notify) and the watchdog
 * thread that pings systemd only while every worker loop still turns. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <event2/event.h>
#include "bg_thread.h"
#include "log.h"
#include "sdnotify.h"
#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#define LOGGER "headroom.systemd"

#ifdef HAVE_LIBSYSTEMD
int hr_sd_available(void) { return 1; }

static void notify(const char *state, const char *status)
{
    char msg[512];
    if (status) snprintf(msg, sizeof msg, "%s\nSTATUS=%s", state, status);
    else snprintf(msg, sizeof msg, "%s", state);
    int rc = sd_notify(0, msg);
    if (rc < 0) HR_WARN(LOGGER, "sd_notify(%s) failed: %s", state, strerror(-rc));
}
#else
int hr_sd_available(void) { return 0; }
static void notify(const char *state, const char *status) { (void)state; (void)status; }
#endif

void hr_sd_ready(const char *status) { notify("READY=1", status); }
void hr_sd_reloading(void)
{
#ifdef HAVE_LIBSYSTEMD
    /* systemd 253+ wants the monotonic time of the reload with RELOADING=1. */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    char state[96];
    snprintf(state, sizeof state, "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000u);
    notify(state, "reloading headroom.conf");
#endif
}
void hr_sd_stopping(const char *status) { notify("STOPPING=1", status); }

/* ------------------------------------------------------------------ watchdog */

static struct {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int running, stop;
    struct event_base *const *bases;
    size_t n;
    uint64_t period_us;          /* half of WatchdogSec */
} wd = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

/* One flag per worker, set by the worker's own loop. Never freed: an event
 * posted just before shutdown may still run after hr_watchdog_stop. */
static atomic_int *acks;
static size_t n_acks;

static void ack(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    atomic_store(&acks[(uintptr_t)arg], 1);
}

static void *watchdog_main(void *arg)
{
    (void)arg;
    hr_thread_name("watchdog");
    int stalled_logged = 0;
    pthread_mutex_lock(&wd.lock);
    while (!wd.stop) {
        size_t late = SIZE_MAX;
        for (size_t i = 0; i < wd.n; i++)
            if (!atomic_load(&acks[i])) { late = i; break; }
        if (late == SIZE_MAX) {
#ifdef HAVE_LIBSYSTEMD
            sd_notify(0, "WATCHDOG=1");
#endif
            stalled_logged = 0;
            for (size_t i = 0; i < wd.n; i++) {
                atomic_store(&acks[i], 0);
                event_base_once(wd.bases[i], -1, EV_TIMEOUT, ack, (void *)(uintptr_t)i, NULL);
            }
        } else if (!stalled_logged) {
            HR_ERROR(LOGGER, "worker %zu has not run its event loop for %.1f s: watchdog pings withheld, systemd "
                     "will restart headroomd if it stays stuck", late, (double)wd.period_us / 1e6);
            stalled_logged = 1;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + (wd.period_us % 1000000u) * 1000u;
        ts.tv_sec += (time_t)(wd.period_us / 1000000u + ns / 1000000000u);
        ts.tv_nsec = (long)(ns % 1000000000u);
        /* A whole half period, spurious wake-ups or not: the loops get that long to answer. */
        while (!wd.stop && pthread_cond_timedwait(&wd.cond, &wd.lock, &ts) != ETIMEDOUT) {}
    }
    pthread_mutex_unlock(&wd.lock);
    return NULL;
}

int hr_watchdog_start(struct event_base *const *bases, size_t n_bases)
{
#ifdef HAVE_LIBSYSTEMD
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return 0;
    if (wd.running) return 0;
    if (!acks) { /* started once per process */
        if (!(acks = calloc(n_bases ? n_bases : 1, sizeof *acks))) return -ENOMEM;
        n_acks = n_bases;
    }
    if (n_bases > n_acks) n_bases = n_acks;
    for (size_t i = 0; i < n_bases; i++) atomic_store(&acks[i], 1);
    wd.bases = bases;
    wd.n = n_bases;
    wd.period_us = usec / 2;
    wd.stop = 0;
    if (pthread_create(&wd.thread, NULL, watchdog_main, NULL)) return -EAGAIN;
    wd.running = 1;
    HR_INFO(LOGGER, "watchdog on: pinging systemd every %.1f s while all %zu workers respond", (double)wd.period_us / 1e6,
            n_bases);
#else
    (void)bases;
    (void)n_bases;
#endif
    return 0;
}

void hr_watchdog_stop(void)
{
    if (!wd.running) return;
    pthread_mutex_lock(&wd.lock);
    wd.stop = 1;
    pthread_cond_signal(&wd.cond);
    pthread_mutex_unlock(&wd.lock);
    pthread_join(wd.thread, NULL);
    wd.running = 0;
}
