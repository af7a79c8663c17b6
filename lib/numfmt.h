/* numfmt.h — numbers as people read them: a double rounded to the decimals
 * its unit needs (USD 6, percentages 2, durations 3) and printed as the
 * shortest decimal that reads back as that value: "0.051991", "69.1", "3".
 * Shared by the host and the plugins that print figures (JSON, CSV,
 * Prometheus text, logs), so every surface prints a figure the same way. */
#ifndef HR_NUMFMT_H
#define HR_NUMFMT_H
#include <stddef.h>

#define HR_DECIMALS_USD 6
#define HR_DECIMALS_PERCENT 2
#define HR_DECIMALS_MS 3

/* JSON dump flag for documents of figures: 15 significant digits print a
 * value rounded by hr_numfmt_round without binary noise. */
#define HR_JSON_FIGURES_PRECISION 15

/* v rounded half away from zero to `decimals` places (values beyond 1e15
 * and non-finite values are returned as they are). */
double hr_numfmt_round(double v, int decimals);

/* Print v rounded to `decimals` places (decimals < 0: not rounded) in its
 * shortest exact form; no exponent for rounded values. NaN -> "NaN",
 * infinities -> "+Inf" / "-Inf". Returns the length, as snprintf. */
int hr_numfmt(double v, int decimals, char *out, size_t outlen);
/* Money for people: at least 2 and at most 6 decimals ("12.50", "0.004213",
 * "0.00" only for less than half a micro-dollar). */
int hr_numfmt_money(double usd, char *out, size_t outlen);
/* v in decimal at out (at least 20 bytes, not terminated): its length.
 * For heads and lines built on every request, where snprintf costs more
 * than the rest of the line. */
size_t hr_numfmt_uint(unsigned long long v, char *out);
#endif
