/* numfmt.c — rounding and shortest round-trip printing of figures. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "numfmt.h"

static const double pow10_table[] = {1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};

double hr_numfmt_round(double v, int decimals)
{
    if (!isfinite(v) || decimals < 0 || decimals > 9 || fabs(v) >= 1e15) return v;
    double scale = pow10_table[decimals];
    /* A value meant to end in 5 at the next decimal (3 tokens at $2.50 per
     * million: 7.5 micro-dollars) comes out of the arithmetic a few ulps
     * under it as often as over (7.4999999999999991): nudged by 8 ulps
     * away from zero, it rounds half away from zero as the docs say. No
     * price or count lands that close to a half by design. scale and the
     * rounded integer are exact, and IEEE division is correctly rounded:
     * the result is the double nearest the decimal. */
    double x = v * scale;
    return round(x + copysign(fabs(x) * 8 * DBL_EPSILON, x)) / scale;
}

int hr_numfmt(double v, int decimals, char *out, size_t outlen)
{
    if (isnan(v)) return snprintf(out, outlen, "NaN");
    if (isinf(v)) return snprintf(out, outlen, v > 0 ? "+Inf" : "-Inf");
    double r = hr_numfmt_round(v, decimals);
    char buf[64];
    if (decimals >= 0 && decimals <= 9 && fabs(r) < 1e15) {
        snprintf(buf, sizeof buf, "%.*f", decimals, r);
        char *dot = strchr(buf, '.');
        if (dot) { /* drop trailing zeros, and the point if nothing follows */
            char *end = buf + strlen(buf);
            while (end > dot + 1 && end[-1] == '0') *--end = '\0';
            if (end == dot + 1) *dot = '\0';
        }
        if (!strcmp(buf, "-0")) strcpy(buf, "0");
        return snprintf(out, outlen, "%s", buf);
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, r);
        if (strtod(buf, NULL) == r) break;
    }
    return snprintf(out, outlen, "%s", buf);
}

int hr_numfmt_money(double usd, char *out, size_t outlen)
{
    char buf[64];
    hr_numfmt(usd, HR_DECIMALS_USD, buf, sizeof buf);
    char *dot = strchr(buf, '.');
    size_t decimals = dot ? strlen(dot + 1) : 0;
    if (!isfinite(usd)) return snprintf(out, outlen, "%s", buf);
    if (!dot) return snprintf(out, outlen, "%s.00", buf);
    return snprintf(out, outlen, "%s%s", buf, decimals == 1 ? "0" : "");
}

size_t hr_numfmt_uint(unsigned long long v, char *out)
{
    char tmp[20];
    size_t n = 0;
    do tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10));
    for (size_t i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
    return n;
}

int hr_numfmt_usd6(double usd, char *out, size_t outlen)
{
    double r = hr_numfmt_round(usd, HR_DECIMALS_USD) + 0.0;
    /* Below 1e9 the micro-dollars are exact in a double and r is within a
     * tenth of a micro-dollar of them, so "%.6f" prints exactly them. */
    if (!(fabs(r) < 1e9) || outlen < 24) return snprintf(out, outlen, "%.6f", r);
    long long micro = llround(r * 1e6);
    char *w = out;
    if (micro < 0) {
        *w++ = '-';
        micro = -micro;
    }
    w += hr_numfmt_uint((unsigned long long)(micro / 1000000), w);
    *w++ = '.';
    long long frac = micro % 1000000;
    for (int i = 5; i >= 0; i--, frac /= 10) w[i] = (char)('0' + frac % 10);
    w += 6;
    *w = '\0';
    return (int)(w - out);
}
