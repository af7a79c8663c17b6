/* t/tap.h — a minimal TAP producer for the C unit tests (automake's TAP driver reads it). */
#ifndef HR_TAP_H
#define HR_TAP_H
#include <stdio.h>
#include <string.h>
#include <stdarg.h>
#include <stdlib.h>

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
/* Test inputs built in buffers of a fixed size: an allocation that fails
 * or an input that outgrows its buffer stops the test (TAP "Bail out!")
 * where sprintf would write through NULL or past the end. */
static inline void *tap_xmalloc(size_t size)
{
    void *p = malloc(size);
    if (!p) {
        printf("Bail out! out of memory (%zu bytes)\n", size);
        exit(1);
    }
    return p;
}

/* Appends to buf (cap bytes) at n; returns the new length. */
__attribute__((format(printf, 4, 5))) static inline size_t tap_put(char *buf, size_t cap, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int w = n < cap ? vsnprintf(buf + n, cap - n, fmt, ap) : -1;
    va_end(ap);
    if (w < 0 || (size_t)w >= cap - n) {
        printf("Bail out! a test input outgrew its %zu-byte buffer\n", cap);
        exit(1);
    }
    return n + (size_t)w;
}

#endif
