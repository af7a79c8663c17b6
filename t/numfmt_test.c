/* t/numfmt_test.c — figures print as people expect: rounded to their unit,
 * shortest form, no binary noise, the same everywhere (lib/numfmt.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "numfmt.h"
#include "tap.h"

static const char *fmt(double v, int decimals)
{
    static char out[64];
    hr_numfmt(v, decimals, out, sizeof out);
    return out;
}

static const char *money(double v)
{
    static char out[64];
    hr_numfmt_money(v, out, sizeof out);
    return out;
}

int main(void)
{
    is_str(fmt(0.87083200000000005, HR_DECIMALS_USD), "0.870832", "USD: the value, not its binary expansion");
    is_str(fmt(0.051990999999999996, HR_DECIMALS_USD), "0.051991", "USD: a sum of prices rounds to the micro-dollar");
    is_str(fmt(69.099999999999994, HR_DECIMALS_MS), "69.1", "duration: 3 decimals at most, trailing zeros dropped");
    is_str(fmt(12.0, HR_DECIMALS_PERCENT), "12", "a whole number has no point");
    is_str(fmt(93.456, HR_DECIMALS_PERCENT), "93.46", "percent: 2 decimals");
    is_str(fmt(0.0000004, HR_DECIMALS_USD), "0", "below half a micro-dollar is 0");
    is_str(fmt(-0.0000004, HR_DECIMALS_USD), "0", "never \"-0\"");
    is_str(fmt(0.0000005, HR_DECIMALS_USD), "0.000001", "half a micro-dollar rounds up, no exponent");
    is_str(fmt(0.0110975, HR_DECIMALS_USD), "0.011098", "half way rounds away from zero");
    is_str(fmt(1234567.5, 0), "1234568", "0 decimals");
    is_str(fmt(0.1 + 0.2, -1), "0.30000000000000004", "not rounded: the shortest exact form");
    is_str(fmt(0.5, -1), "0.5", "not rounded: short values stay short");
    is_str(fmt(NAN, 3), "NaN", "NaN");
    is_str(fmt(INFINITY, 3), "+Inf", "+Inf");
    is_str(fmt(-INFINITY, 3), "-Inf", "-Inf");
    is_str(fmt(1e300, 6), "1e+300", "huge values are not rounded, and stay exact");
    /* round trip: what is printed reads back as the rounded value */
    int all = 1;
    for (int i = 0; i < 100000; i++) {
        double v = (double)rand() / RAND_MAX * 1000.0;
        char out[64];
        hr_numfmt(v, HR_DECIMALS_USD, out, sizeof out);
        if (strtod(out, NULL) != hr_numfmt_round(v, HR_DECIMALS_USD) || strlen(out) > 12) all = 0;
    }
    ok(all, "100000 random values: printed text reads back as the rounded value, at most 6 decimals");
    is_str(money(0.004), "0.004", "money: a tiny budget shows its size, not $0.00");
    is_str(money(12.5), "12.50", "money: at least 2 decimals");
    is_str(money(3), "3.00", "money: whole dollars");
    is_str(money(0.0000001), "0.00", "money: nothing is 0.00");
    int same = 1;
    unsigned long long probes[] = {0, 1, 9, 10, 99, 100, 12345, 4294967296ULL, 18446744073709551615ULL};
    for (size_t i = 0; i < sizeof probes / sizeof *probes; i++) {
        char mine[24] = {0}, libc[24];
        size_t n = hr_numfmt_uint(probes[i], mine);
        snprintf(libc, sizeof libc, "%llu", probes[i]);
        same &= n == strlen(libc) && !memcmp(mine, libc, n);
    }
    ok(same, "hr_numfmt_uint prints what %%llu prints, from 0 to 2^64-1");
    /* The per-request header figures, built by hand, print what snprintf did. */
    char a[64], b[64];
    const double usd[] = {0, -0.0, 0.0000004, -0.0000004, 0.0000005, 0.0110975, 1.5, -2.25, 999999999.999999,
                          1e9, -1e12, 1e300, NAN, INFINITY, -INFINITY};
    same = 1;
    for (size_t i = 0; i < sizeof usd / sizeof *usd; i++) {
        int n = hr_numfmt_usd6(usd[i], a, sizeof a);
        int m = snprintf(b, sizeof b, "%.6f", hr_numfmt_round(usd[i], HR_DECIMALS_USD) + 0.0);
        if (n != m || strcmp(a, b)) {
            tap_diag("usd6(%g): %s, snprintf: %s", usd[i], a, b);
            same = 0;
        }
    }
    for (int i = 0; i < 200000; i++) {
        double v = ((double)rand() / RAND_MAX - 0.3) * pow(10.0, rand() % 13 - 4);
        int n = hr_numfmt_usd6(v, a, sizeof a);
        int m = snprintf(b, sizeof b, "%.6f", hr_numfmt_round(v, HR_DECIMALS_USD) + 0.0);
        if (n != m || strcmp(a, b)) {
            if (same) tap_diag("usd6(%.17g): %s, snprintf: %s", v, a, b);
            same = 0;
        }
    }
    ok(same, "hand-built USD figures read exactly as snprintf prints them (200000 random values)");
    /* Half a micro-dollar, as pricing computes it (tokens x $/M / 1e6), is
     * rounded away from zero (doc/cost-and-budget.md): 3 tokens at $2.50/M
     * are 7.5 micro-dollars, which the arithmetic gives as 7.4999999999999991. */
    int halves = 1;
    for (int t = 1; t < 2000; t += 2) {
        double micro = hr_numfmt_round(t * 2.5 / 1e6, HR_DECIMALS_USD) * 1e6;
        double want = floor(t * 2.5) + 1; /* t odd: t x 2.5 ends in .5 */
        if (fabs(micro - want) > 1e-6) {
            if (halves) tap_diag("%d tokens at $2.50/M: %.3f micro-dollars, want %.0f", t, micro, want);
            halves = 0;
        }
    }
    ok(halves, "odd token counts at $2.50/M (x.5 micro-dollars) round up, 1 to 1999 tokens");
    hr_numfmt(-3 * 2.5 / 1e6, HR_DECIMALS_USD, a, sizeof a);
    is_str(a, "-0.000008", "and a negative half away from zero");
    return tap_exit();
}
