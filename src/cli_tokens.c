/* src/cli_tokens.c — `headroom tokens`: print the token count of a file or stdin, exactly as
 * tiktoken counts it for OpenAI models, or the documented estimate for others. */
#include "cli.h"
#include "cli_util.h"
#include "headroom/headroom.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void tokens_usage(FILE *out)
{
    fprintf(out,
            "usage: headroom tokens (--model MODEL | --encoding NAME) [FILE|-]\n"
            "\n"
            "Prints the number of tokens in FILE (or stdin when FILE is '-' or absent).\n"
            "\n"
            "  -m, --model MODEL      pick the encoding from a model name: gpt-4o, gpt-4.1, gpt-5,\n"
            "                         o1/o3/o4 -> o200k_base; gpt-4, gpt-3.5 -> cl100k_base;\n"
            "                         claude-* and unknown models -> estimate\n"
            "  -e, --encoding NAME    o200k_base, cl100k_base or estimate\n"
            "  -h, --help             show this help\n"
            "\n"
            "Token tables are read from $HEADROOM_DATA_DIR, else the installed data directory.\n");
}

/* Reads all of f; NULL on error with errno set. */
static char *read_all(FILE *f, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
        if (n == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                errno = ENOMEM;
                return NULL;
            }
            buf = nb;
        }
    }
    if (buf && ferror(f)) {
        free(buf);
        errno = EIO;
        return NULL;
    }
    *len = n;
    return buf;
}

/* Value of "--opt VALUE" / "--opt=VALUE"; advances *i. NULL when missing. */
static const char *optval(int argc, char **argv, int *i, const char *lng, const char *shrt, int *matched)
{
    const char *a = argv[*i];
    size_t l = strlen(lng);
    *matched = 0;
    if (strncmp(a, lng, l) == 0 && a[l] == '=') {
        *matched = 1;
        return a + l + 1;
    }
    if (strcmp(a, lng) == 0 || strcmp(a, shrt) == 0) {
        *matched = 1;
        return *i + 1 < argc ? argv[++*i] : NULL;
    }
    return NULL;
}

int hr_cli_tokens(int argc, char **argv)
{
    const char *model = NULL, *encname = NULL, *file = NULL;
    int only_files = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int m;
        const char *v;
        if (!only_files && (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)) {
            tokens_usage(stdout);
            return HR_EXIT_OK;
        }
        if (!only_files && strcmp(a, "--") == 0) {
            only_files = 1;
            continue;
        }
        if (!only_files && ((v = optval(argc, argv, &i, "--model", "-m", &m)) || m)) {
            if (!v || !*v) {
                fprintf(stderr, "headroom tokens: --model needs a model name, e.g. --model gpt-4o\n");
                return HR_EXIT_USAGE;
            }
            model = v;
            continue;
        }
        if (!only_files && ((v = optval(argc, argv, &i, "--encoding", "-e", &m)) || m)) {
            if (!v || !*v) {
                fprintf(stderr, "headroom tokens: --encoding needs a name: o200k_base, cl100k_base or estimate\n");
                return HR_EXIT_USAGE;
            }
            encname = v;
            continue;
        }
        if (!only_files && a[0] == '-' && a[1]) {
            fprintf(stderr, "headroom tokens: unknown option '%s'; see 'headroom tokens --help'\n", a);
            return HR_EXIT_USAGE;
        }
        if (file) {
            fprintf(stderr, "headroom tokens: one FILE at a time (got '%s' and '%s')\n", file, a);
            return HR_EXIT_USAGE;
        }
        file = a;
    }
    if (!model == !encname) {
        fprintf(stderr, "headroom tokens: give exactly one of --model MODEL or --encoding NAME\n");
        return HR_EXIT_USAGE;
    }
    /* An empty count first: a bad encoding name or missing tables fail before any input is read. */
    size_t count = 0;
    int rc = hr_token_count(model, encname, "", 0, &count);
    if (rc == HEADROOM_EINVAL) {
        fprintf(stderr, "headroom tokens: %s\n", hr_last_error());
        return HR_EXIT_USAGE;
    }
    if (rc) {
        fprintf(stderr, "headroom tokens: %s\n", hr_last_error());
        return HR_EXIT_RUNTIME;
    }

    FILE *f = cli_open_input("tokens", file);
    if (!f) return HR_EXIT_RUNTIME;
    size_t len = 0;
    char *text = read_all(f, &len);
    int e = errno;
    if (f != stdin)
        fclose(f);
    if (!text) {
        fprintf(stderr, "headroom tokens: cannot read '%s': %s\n", file ? file : "-", strerror(e));
        return HR_EXIT_RUNTIME;
    }
    rc = hr_token_count(model, encname, text, len, &count);
    if (rc) {
        fprintf(stderr, "headroom tokens: %s\n", hr_last_error());
        free(text);
        return HR_EXIT_RUNTIME;
    }
    printf("%zu\n", count);
    free(text);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "headroom tokens: cannot write the result: %s\n", strerror(errno));
        return HR_EXIT_RUNTIME;
    }
    return HR_EXIT_OK;
}
