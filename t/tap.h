/* t/tap.h — a minimal TAP producer for the C unit tests (automake's TAP driver reads it). */
#ifndef HR_TAP_H
#define HR_TAP_H
#include <stdio.h>
#include <string.h>
#include <stdarg.h>

static int tap_n, tap_failed;

static inline void tap_plan(int n) { printf("1..%d\n", n); fflush(stdout); }
static inline void tap_done(void) { printf("1..%d\n", tap_n); fflush(stdout); }

static inline int tap_ok(int cond, const char *fmt, ...)
{
    va_list ap;
    tap_n++;
    if (!cond) tap_failed++;
    printf("%sok %d - ", cond ? "" : "not ", tap_n);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    return cond;
}

static inline void tap_diag(const char *fmt, ...)
{
    va_list ap;
    printf("# ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

#define ok(cond, ...) tap_ok(!!(cond), __VA_ARGS__)
#define is_int(got, want, ...) \
    (tap_ok((long long)(got) == (long long)(want), __VA_ARGS__) ? 1 : \
     (tap_diag("  got %lld, want %lld", (long long)(got), (long long)(want)), 0))
static inline const char *tap_str(const char *s) { return s; } /* silences -Waddress on arrays */
#define is_str(got, want, ...) \
    (tap_ok(tap_str(got) && tap_str(want) && strcmp(tap_str(got), tap_str(want)) == 0, __VA_ARGS__) ? 1 : \
     (tap_diag("  got \"%s\", want \"%s\"", tap_str(got) ? tap_str(got) : "(null)", \
               tap_str(want) ? tap_str(want) : "(null)"), 0))
/* Exit status: automake's TAP driver reads the results; exit 0 unless a test failed. */
#define tap_exit() (tap_done(), tap_failed ? 1 : 0)
#endif
