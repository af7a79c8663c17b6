/* hist.c — latency histograms. */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "hist.h"

const double hr_hist_prom_bounds[HR_HIST_PROM + 1] = {
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25,
    50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000, INFINITY,
};

/* Fine bucket 0 holds everything under 1 µs; bucket 1 + o*8 + s covers
 * [2^o * (1 + s/8), 2^o * (1 + (s+1)/8)) µs. Read off the double's bits:
 * its exponent is the octave and the top three bits of its mantissa the
 * eighth (every request adds to a dozen histograms; frexp was a call each). */
_Static_assert(HR_HIST_FINE_PER_OCTAVE == 8, "fine_index reads three mantissa bits");

static size_t fine_index(double ms)
{
    double us = ms * 1000.0;
    if (!(us >= 1.0)) return 0;
    uint64_t bits;
    memcpy(&bits, &us, sizeof bits);
    unsigned octave = (unsigned)((bits >> 52) & 0x7ff) - 1023u; /* us >= 1: biased exponent >= 1023 */
    if (octave >= HR_HIST_OCTAVES) return HR_HIST_FINE - 1;    /* and +Inf */
    unsigned sub = (unsigned)(bits >> (52 - 3)) & (HR_HIST_FINE_PER_OCTAVE - 1);
    return 1 + (size_t)octave * HR_HIST_FINE_PER_OCTAVE + sub;
}

static double fine_mid_ms(size_t i)
{
    if (i == 0) return 0.0005;
    size_t octave = (i - 1) / HR_HIST_FINE_PER_OCTAVE, sub = (i - 1) % HR_HIST_FINE_PER_OCTAVE;
    double lo = ldexp(1.0 + (double)sub / HR_HIST_FINE_PER_OCTAVE, (int)octave);
    double hi = ldexp(1.0 + (double)(sub + 1) / HR_HIST_FINE_PER_OCTAVE, (int)octave);
    return sqrt(lo * hi) / 1000.0;
}

void hr_hist_add(struct hr_hist *h, double ms)
{
    if (!(ms >= 0)) ms = 0; /* NaN or negative clock skew */
    h->count++;
    h->sum_ms += ms;
    if (ms > h->max_ms) h->max_ms = ms;
    h->fine[fine_index(ms)]++;
    size_t b = 0;
    while (b < HR_HIST_PROM && ms > hr_hist_prom_bounds[b]) b++;
    h->prom[b]++;
}

void hr_hist_merge(struct hr_hist *into, const struct hr_hist *from)
{
    into->count += from->count;
    into->sum_ms += from->sum_ms;
    if (from->max_ms > into->max_ms) into->max_ms = from->max_ms;
    for (size_t i = 0; i < HR_HIST_FINE; i++) into->fine[i] += from->fine[i];
    for (size_t i = 0; i <= HR_HIST_PROM; i++) into->prom[i] += from->prom[i];
}

double hr_hist_quantile(const struct hr_hist *h, double q)
{
    if (h->count == 0) return 0;
    uint64_t rank = (uint64_t)ceil(q * (double)h->count);
    if (rank < 1) rank = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < HR_HIST_FINE; i++) {
        seen += h->fine[i];
        if (seen >= rank) {
            double v = fine_mid_ms(i);
            return v > h->max_ms ? h->max_ms : v; /* never report above the true max */
        }
    }
    return h->max_ms;
}

double hr_hist_average(const struct hr_hist *h)
{
    return h->count ? h->sum_ms / (double)h->count : 0;
}

void hr_hist_cumulative(const struct hr_hist *h, uint64_t out[HR_HIST_PROM + 1])
{
    uint64_t acc = 0;
    for (size_t i = 0; i <= HR_HIST_PROM; i++) {
        acc += h->prom[i];
        out[i] = acc;
    }
}
