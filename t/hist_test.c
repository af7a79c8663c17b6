/* hist_test.c — latency histograms: exact count/sum/max, bounded percentile
 * error, monotone cumulative Prometheus buckets, merging. */
#include <math.h>
#include <stdlib.h>
#include "hist.h"
#include "tap.h"

int main(void)
{
    struct hr_hist *h = calloc(1, sizeof *h), *g = calloc(1, sizeof *g);
    ok(hr_hist_quantile(h, 0.99) == 0 && hr_hist_average(h) == 0, "empty histogram reports zeros");
    for (int i = 1; i <= 1000; i++) hr_hist_add(h, (double)i); /* 1..1000 ms */
    is_int(h->count, 1000, "count is exact");
    ok(fabs(h->sum_ms - 500500.0) < 1e-6, "sum is exact");
    ok(h->max_ms == 1000.0, "max is exact");
    double p50 = hr_hist_quantile(h, 0.5), p99 = hr_hist_quantile(h, 0.99);
    ok(fabs(p50 - 500) / 500 < 0.05, "p50 within 5%% (got %.2f)", p50);
    ok(fabs(p99 - 990) / 990 < 0.05, "p99 within 5%% (got %.2f)", p99);
    ok(hr_hist_quantile(h, 1.0) <= h->max_ms, "p100 never above the true max");

    uint64_t cum[HR_HIST_PROM + 1];
    hr_hist_cumulative(h, cum);
    int mono = 1;
    for (int i = 1; i <= HR_HIST_PROM; i++) mono &= cum[i] >= cum[i - 1];
    ok(mono, "cumulative buckets are monotone");
    is_int(cum[HR_HIST_PROM], 1000, "+Inf bucket equals count");
    ok(isinf(hr_hist_prom_bounds[HR_HIST_PROM]), "last bound is +Inf");
    /* le=100 holds exactly the values <= 100 */
    int i100 = 0;
    while (hr_hist_prom_bounds[i100] != 100) i100++;
    is_int(cum[i100], 100, "bucket le=100 counts 100 values");

    hr_hist_add(g, 0.002);
    hr_hist_add(g, -5);      /* clock skew: clamped to 0 */
    hr_hist_add(g, NAN);
    hr_hist_add(g, 1e9);     /* past the last fine octave: still counted */
    is_int(g->count, 4, "odd values are counted");
    hr_hist_merge(h, g);
    is_int(h->count, 1004, "merge adds counts");
    ok(h->max_ms == 1e9, "merge keeps the larger max");

    /* Each value lands in the fine bucket of its octave and eighth, as
     * frexp reads them: at, just below and just above every bucket edge. */
    int wrong = 0, tried = 0;
    for (int o = 0; o < HR_HIST_OCTAVES + 2; o++)
        for (int sub = 0; sub < HR_HIST_FINE_PER_OCTAVE; sub++)
            for (int d = -1; d <= 1; d++) {
                double us = ldexp(1.0 + (double)sub / HR_HIST_FINE_PER_OCTAVE, o);
                us = d < 0 ? nextafter(us, 0) : d > 0 ? nextafter(us, INFINITY) : us;
                struct hr_hist one = {0};
                hr_hist_add(&one, us / 1000.0);
                int e;
                double frac = frexp(us, &e);
                size_t want = us < 1.0 ? 0 : e - 1 >= HR_HIST_OCTAVES ? HR_HIST_FINE - 1
                            : 1 + (size_t)(e - 1) * HR_HIST_FINE_PER_OCTAVE +
                                  (size_t)((frac * 2.0 - 1.0) * HR_HIST_FINE_PER_OCTAVE);
                wrong += one.fine[want] != 1;
                tried++;
            }
    ok(wrong == 0, "fine buckets: %d of %d edge values where frexp puts them", tried - wrong, tried);
    struct hr_hist inf = {0};
    hr_hist_add(&inf, INFINITY);
    ok(inf.fine[HR_HIST_FINE - 1] == 1 && inf.prom[HR_HIST_PROM] == 1, "+Inf ms lands in the last buckets");
    free(h);
    free(g);
    return tap_exit();
}
