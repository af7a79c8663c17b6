/* bench/tokens/bench_tokens.c — token counter throughput: table load time, then MB/s per core
 * for each input file and encoding (and aggregate MB/s with --threads N). */
#include "../../src/tokens.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

struct job { enum hr_encoding e; const char *text; size_t len; int reps; size_t count; };

static void *run(void *arg)
{
    struct job *j = arg;
    for (int r = 0; r < j->reps; r++)
        j->count = hr_count_tokens_enc(j->e, j->text, j->len);
    return NULL;
}

int main(int argc, char **argv)
{
    int threads = 1, first = 1;
    if (argc > 2 && strcmp(argv[1], "--threads") == 0) {
        threads = atoi(argv[2]);
        first = 3;
    }
    if (threads < 1 || threads > 64 || first >= argc) {
        fprintf(stderr, "usage: bench_tokens [--threads N] FILE...\n");
        return 2;
    }
    char err[512];
    double t0 = now();
    if (hr_tokens_init(err, sizeof err) < 0) {
        fprintf(stderr, "bench_tokens: %s\n", err);
        return 1;
    }
    printf("table load (o200k + cl100k): %.1f ms\n", (now() - t0) * 1e3);
    for (int a = first; a < argc; a++) {
        FILE *f = fopen(argv[a], "rb");
        if (!f) {
            perror(argv[a]);
            return 1;
        }
        fseek(f, 0, SEEK_END);
        size_t len = (size_t)ftell(f);
        fseek(f, 0, SEEK_SET);
        char *text = malloc(len);
        if (!text || fread(text, 1, len, f) != len)
            return 1;
        fclose(f);
        for (int e = 0; e < 3; e++) {
            struct job j = {(enum hr_encoding)e, text, len, 1, 0};
            double s = now();
            run(&j);  /* warm-up, and a first timing to size the loop */
            double one = now() - s;
            int reps = one > 0 ? (int)(1.0 / one) + 1 : 1;
            struct job jobs[64];
            pthread_t th[64];
            s = now();
            for (int t = 0; t < threads; t++) {
                jobs[t] = j;
                jobs[t].reps = reps;
                pthread_create(&th[t], NULL, run, &jobs[t]);
            }
            for (int t = 0; t < threads; t++)
                pthread_join(th[t], NULL);
            double secs = now() - s;
            double mb = (double)len * reps * threads / 1e6;
            printf("%-28s %-12s %9zu tokens  %8.2f MB/s %s(%d thread%s)\n", strrchr(argv[a], '/') ? strrchr(argv[a], '/') + 1 : argv[a],
                   hr_encoding_name((enum hr_encoding)e), jobs[0].count, mb / secs,
                   threads > 1 ? "total " : "per core ", threads, threads > 1 ? "s" : "");
        }
        free(text);
    }
    return 0;
}
