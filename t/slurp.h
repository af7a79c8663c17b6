/* t/slurp.h — read a whole file into a NUL-terminated buffer, for tests and
 * benchmarks (not used by the daemon). */
#ifndef HR_TEST_SLURP_H
#define HR_TEST_SLURP_H
#include <stdio.h>
#include <stdlib.h>

/* The file's bytes plus a NUL, length in *len; NULL when it cannot be read. */
static inline char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *p = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
    if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (p = malloc((size_t)n + 1))) {
        if (fread(p, 1, (size_t)n, f) != (size_t)n) {
            free(p);
            p = NULL;
        } else {
            p[n] = '\0';
            *len = (size_t)n;
        }
    }
    fclose(f);
    return p;
}
#endif
