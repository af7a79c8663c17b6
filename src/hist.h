/* hist.h — latency histograms: exact count/sum/max, Prometheus buckets, and
 * log-linear fine buckets for percentiles (relative error under 5 %). */
#ifndef HR_HIST_H
#define HR_HIST_H
#include <stddef.h>
#include <stdint.h>

#define HR_HIST_FINE_PER_OCTAVE 8
#define HR_HIST_OCTAVES 32          /* 1 µs .. ~71 minutes */
#define HR_HIST_FINE (HR_HIST_FINE_PER_OCTAVE * HR_HIST_OCTAVES + 1)
#define HR_HIST_PROM 22             /* finite Prometheus bounds; +Inf is implicit */

struct hr_hist {
    uint64_t count;
    double sum_ms;
    double max_ms;
    uint64_t fine[HR_HIST_FINE];
    uint64_t prom[HR_HIST_PROM + 1]; /* per bucket, not cumulative; last is +Inf */
};

/* Prometheus upper bounds in ms, shared by every histogram; the last is +Inf. */
extern const double hr_hist_prom_bounds[HR_HIST_PROM + 1];

void hr_hist_add(struct hr_hist *h, double ms);
void hr_hist_merge(struct hr_hist *into, const struct hr_hist *from);
/* q in (0,1]; 0 when empty. */
double hr_hist_quantile(const struct hr_hist *h, double q);
double hr_hist_average(const struct hr_hist *h);
/* Cumulative counts for the HR_HIST_PROM + 1 buckets (last = +Inf = count). */
void hr_hist_cumulative(const struct hr_hist *h, uint64_t out[HR_HIST_PROM + 1]);
#endif
