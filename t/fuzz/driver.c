/* t/fuzz/driver.c — standalone corpus runner for libFuzzer targets: feeds each
 * file named (or found in a named directory) to LLVMFuzzerTestOneInput, prints TAP. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional in a target, as with libFuzzer. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int n_tests, n_failed;

static void report(int ok, const char *path, const char *why)
{
    n_tests++;
    if (!ok)
        n_failed++;
    printf("%sok %d - %s%s%s\n", ok ? "" : "not ", n_tests, path, why ? " # " : "",
           why ? why : "");
    fflush(stdout);
}

/* The input gets a buffer of exactly its size, as under libFuzzer, so a
 * sanitizer build catches reads past the end. A crash ends the run, which the
 * TAP driver counts as a failure (missing plan). */
static void run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t n = 0, cap = 0;
    char why[300];

    if (!f) {
        snprintf(why, sizeof why, "cannot open: %s", strerror(errno));
        report(0, path, why);
        return;
    }
    for (;;) {
        if (n == cap) {
            uint8_t *b;
            cap = cap ? cap * 2 : 4096;
            if (!(b = realloc(buf, cap))) {
                fclose(f);
                free(buf);
                report(0, path, "out of memory");
                return;
            }
            buf = b;
        }
        size_t k = fread(buf + n, 1, cap - n, f);
        n += k;
        if (k == 0)
            break;
    }
    if (ferror(f)) {
        snprintf(why, sizeof why, "cannot read: %s", strerror(errno));
        fclose(f);
        free(buf);
        report(0, path, why);
        return;
    }
    fclose(f);
    {
        uint8_t *exact = malloc(n ? n : 1);
        if (!exact) {
            free(buf);
            report(0, path, "out of memory");
            return;
        }
        if (n)
            memcpy(exact, buf, n);
        free(buf);
        LLVMFuzzerTestOneInput(exact, n);
        free(exact);
    }
    report(1, path, NULL);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Files directly inside `dir`, in sorted order so TAP numbering is stable;
 * hidden files (editor droppings, .gitignore) are skipped. */
static void run_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL;
    size_t n = 0;

    if (!d) {
        char why[300];
        snprintf(why, sizeof why, "cannot open directory: %s", strerror(errno));
        report(0, dir, why);
        return;
    }
    while ((e = readdir(d))) {
        char **nn;
        if (e->d_name[0] == '.')
            continue;
        if (!(nn = realloc(names, (n + 1) * sizeof *names)))
            break;
        names = nn;
        if (!(names[n] = malloc(strlen(dir) + strlen(e->d_name) + 2)))
            break;
        sprintf(names[n++], "%s/%s", dir, e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode))
            run_file(names[i]);
        free(names[i]);
    }
    free(names);
}

static void run_path(const char *path)
{
    struct stat st;

    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        run_dir(path);
    else
        run_file(path);
}

/* With no arguments the build's seed corpus runs (FUZZ_DEFAULT_CORPUS, set
 * per target in Makefile.am), so `make check` needs no test wrapper. */
int main(int argc, char **argv)
{
#ifndef FUZZ_DEFAULT_CORPUS
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE-OR-DIR...\n"
                "runs each corpus input through the fuzz target once\n", argv[0]);
        return 2;
    }
#endif
    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
#ifdef FUZZ_DEFAULT_CORPUS
    if (argc < 2)
        run_path(FUZZ_DEFAULT_CORPUS);
#endif
    for (int i = 1; i < argc; i++)
        run_path(argv[i]);
    printf("1..%d\n", n_tests);
    return n_failed ? 1 : 0;
}
