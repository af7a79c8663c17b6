/* bench/compress/bench_compress.c — smart_crusher throughput (MB/s per core, end to end:
 * parse, analyse, select, serialise) on 1000-row arrays and latency on 100-row arrays,
 * over the fixtures from t/fixtures/gen_fixtures.py. Times are this thread's CPU time
 * (a shared host's other load would otherwise be measured too). With `once`, each
 * 1000-row array is crushed once and nothing is timed: a fixed workload for
 * `valgrind --tool=callgrind`. Results go to RESULTS.md by hand.
 * Usage: bench_compress FIXTURE_DIR [once] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "../../plugins/smart_crusher/crush.h"
#include "slurp.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "/tmp/hr_bench_fx";
    static const char *const kinds[] = {"search", "logs", "api", "db", "metrics", "code"};
    static const char *const queries[] = {"retry backoff connection pool", "why did payment fail", "suspended users",
                                          "unusual amounts", "latency spikes", "backoff_factor"};
    struct hr_sc_config cfg = {15, 0.10, 0.05};
    int once = argc > 2 && strcmp(argv[2], "once") == 0;
    printf("%-14s %9s %9s %10s\n", "fixture", "bytes", "MB/s", "ms/call");
    double tot_bytes = 0, tot_time = 0;
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
        char path[512];
        size_t len;
        snprintf(path, sizeof path, "%s/%s_1000.json", dir, kinds[k]);
        char *text = slurp(path, &len);
        if (!text) {
            fprintf(stderr, "cannot read %s: run python3 t/fixtures/gen_fixtures.py --out %s\n", path, dir);
            return 1;
        }
        struct hr_sc_output o;
        if (once) {
            int rc = hr_sc_crush(&cfg, text, len, queries[k], &o);
            printf("%-14s %9zu -> %zu\n", kinds[k], len, rc == 0 ? o.len : len);
            if (rc == 0)
                hr_sc_output_free(&o);
            free(text);
            continue;
        }
        int iters = 0;
        double t0 = now(), t;
        do {
            if (hr_sc_crush(&cfg, text, len, queries[k], &o) == 0)
                hr_sc_output_free(&o);
            iters++;
        } while ((t = now() - t0) < 0.5);
        printf("%-14s %9zu %9.1f %10.3f\n", kinds[k], len, (double)len * iters / t / 1e6, t * 1e3 / iters);
        tot_bytes += (double)len * iters;
        tot_time += t;
        free(text);
    }
    if (once)
        return 0;
    printf("1000-row aggregate: %.1f MB/s\n\n", tot_bytes / tot_time / 1e6);
    printf("%-14s %9s %10s %10s\n", "fixture", "bytes", "p50 ms", "p99 ms");
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
        char path[512];
        size_t len;
        snprintf(path, sizeof path, "%s/%s_100.json", dir, kinds[k]);
        char *text = slurp(path, &len);
        if (!text)
            return 1;
        enum { N = 2000 };
        static double lat[N];
        for (int i = 0; i < N; i++) {
            struct hr_sc_output o;
            double t0 = now();
            if (hr_sc_crush(&cfg, text, len, queries[k], &o) == 0)
                hr_sc_output_free(&o);
            lat[i] = (now() - t0) * 1e3;
        }
        qsort(lat, N, sizeof *lat, cmp_d);
        printf("%-14s %9zu %10.3f %10.3f\n", kinds[k], len, lat[N / 2], lat[N * 99 / 100]);
        free(text);
    }
    return 0;
}
