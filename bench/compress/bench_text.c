/* bench/compress/bench_text.c — the text compressors' cores alone (no host):
 * MB/s per core (thread CPU time) and byte savings on ~1 MB inputs, best
 * of 5 rounds of half a CPU-second. Inputs: python3 t/fixtures/gen_text_fixtures.py --bench DIR.
 * Results go to bench/README.md by hand. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "logc.h"
#include "searchc.h"
#include "diffc.h"
#include "htmlx.h"
#include "slurp.h"

/* CPU time of this thread: MB/s per core, whatever else the machine runs
 * (wall time on a shared 2-core VM measured the neighbours). */
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct item {
    const char *file, *name, *query;
    hr_text_compress_fn fn;
    const void *cfg;
};

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "/tmp/hr_text_fx";
    static const struct hr_logc_config logc = {3, 3, 2, 5, 20};
    static const struct hr_searchc_config searchc = {30, 5};
    static const struct hr_diffc_config diffc = {2};
    static const struct hr_htmlx_config htmlx = {0, 1};
    const struct item items[] = {
        {"log_1mb.txt", "log_compressor", "", hr_logc_compress, &logc},
        {"log_real_1mb.txt", "log_compressor", "", hr_logc_compress, &logc},
        {"diff_1mb.txt", "diff_compressor", "", hr_diffc_compress, &diffc},
        {"grep_1mb.txt", "search_compressor", "where is the timeout set", hr_searchc_compress, &searchc},
        {"grep_heading_1mb.txt", "search_compressor", "where is the timeout set", hr_searchc_compress, &searchc},
        {"html_1mb.html", "html_extractor", "", hr_htmlx_compress, &htmlx},
    };
    printf("%-18s %-16s %9s %9s %8s %9s\n", "transform", "input", "bytes", "out", "saved", "MB/s");
    for (size_t k = 0; k < sizeof items / sizeof *items; k++) {
        char path[1024];
        size_t len;
        snprintf(path, sizeof path, "%s/%s", dir, items[k].file);
        char *text = slurp(path, &len);
        if (!text) {
            fprintf(stderr, "cannot read %s: run python3 t/fixtures/gen_text_fixtures.py --bench %s\n", path, dir);
            return 1;
        }
        double best = 0;
        size_t out_len = len;
        for (int round = 0; round < 5; round++) {
            int iters = 0;
            double t0 = now(), t;
            do {
                struct hr_text_out o;
                if (items[k].fn(items[k].cfg, text, len, items[k].query, &o) == 0) {
                    out_len = o.b.len;
                    hr_text_out_free(&o);
                }
                iters++;
            } while ((t = now() - t0) < 0.5);
            double mbs = (double)len * iters / t / 1e6;
            if (mbs > best)
                best = mbs;
        }
        printf("%-18s %-16s %9zu %9zu %7.1f%% %9.1f\n", items[k].name, items[k].file, len, out_len,
               100.0 * (1.0 - (double)out_len / (double)len), best);
        free(text);
    }
    return 0;
}
