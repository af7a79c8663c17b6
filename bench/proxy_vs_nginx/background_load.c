/* background_load.c — CPU work in the background, shaped like a proxy's
 * metrics threads: each thread sleeps PERIOD_US, then runs for BURST_US in
 * slices of SLICE_US with sched_yield() between them (0: no yields), and
 * again, until SECONDS have passed. one_client.sh runs it beside nginx (the
 * nginx_bg variant) to show what background work of headroomd's sink
 * threads' shape costs one client's latency on a proxy that has none.
 *
 * Usage: background_load SECONDS PERIOD_US:BURST_US[:SLICE_US] ...
 * One thread per spec; exits by itself. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

struct shape {
    long period_us, burst_us, slice_us;
};

static double end_at;
static volatile unsigned long spins; /* keeps the busy loop from being optimised away */

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void sleep_us(long us)
{
    struct timespec t = {us / 1000000, (us % 1000000) * 1000};
    while (nanosleep(&t, &t) && errno == EINTR) {
    }
}

static void *run(void *arg)
{
    const struct shape *s = arg;
    while (now() < end_at) {
        sleep_us(s->period_us);
        double burst_end = now() + (double)s->burst_us / 1e6;
        for (double t = now(); t < burst_end; t = now()) {
            double slice_end = s->slice_us ? t + (double)s->slice_us / 1e6 : burst_end;
            if (slice_end > burst_end) slice_end = burst_end;
            while (now() < slice_end) spins++;
            if (s->slice_us) sched_yield();
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s SECONDS PERIOD_US:BURST_US[:SLICE_US] ...\n", argv[0]);
        return 2;
    }
    end_at = now() + atof(argv[1]);
    int n = argc - 2;
    struct shape *shapes = calloc((size_t)n, sizeof *shapes);
    pthread_t *threads = calloc((size_t)n, sizeof *threads);
    if (!shapes || !threads) return 1;
    for (int i = 0; i < n; i++) {
        if (sscanf(argv[i + 2], "%ld:%ld:%ld", &shapes[i].period_us, &shapes[i].burst_us, &shapes[i].slice_us) < 2 ||
            shapes[i].period_us <= 0 || shapes[i].burst_us <= 0 || shapes[i].slice_us < 0) {
            fprintf(stderr, "%s: '%s' is not PERIOD_US:BURST_US[:SLICE_US] (positive microseconds)\n", argv[0],
                    argv[i + 2]);
            return 2;
        }
        if (pthread_create(&threads[i], NULL, run, &shapes[i])) return 1;
    }
    for (int i = 0; i < n; i++) pthread_join(threads[i], NULL);
    free(shapes);
    free(threads);
    return 0;
}
