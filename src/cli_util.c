/* cli_util.c — common options, times, tables and errors of the `headroom`
 * subcommands that use libheadroom's public API. */
#include "cli.h"
#include "cli_util.h"
#include "utf8.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

const char *cli_optval(int argc, char **argv, int *i, const char *lng, const char *shrt, int *matched)
{
    const char *a = argv[*i];
    size_t l = strlen(lng);
    *matched = 0;
    if (strncmp(a, lng, l) == 0 && a[l] == '=') {
        *matched = 1;
        return a + l + 1;
    }
    if (strcmp(a, lng) == 0 || (shrt && strcmp(a, shrt) == 0)) {
        *matched = 1;
        return *i + 1 < argc ? argv[++*i] : NULL;
    }
    return NULL;
}

int cli_common_option(struct cli_common *o, int argc, char **argv, int *i)
{
    int m;
    const char *v;
    if (!strcmp(argv[*i], "--json")) {
        o->json = 1;
        return 1;
    }
    if ((v = cli_optval(argc, argv, i, "--url", NULL, &m)) || m) {
        if (!v || !*v) {
            fprintf(stderr, "headroom %s: --url needs the daemon's address, e.g. --url http://127.0.0.1:8787\n", o->cmd);
            return -1;
        }
        if (strncmp(v, "http://", 7) && strncmp(v, "https://", 8)) { /* a wrong value: exit 2, headroom(1) */
            fprintf(stderr, "headroom %s: --url '%s' is not an http:// or https:// URL, e.g. --url http://127.0.0.1:8787\n",
                    o->cmd, v);
            return -1;
        }
        o->url = v;
        return 1;
    }
    if ((v = cli_optval(argc, argv, i, "--config", "-c", &m)) || m) {
        if (!v || !*v) {
            fprintf(stderr, "headroom %s: --config needs a file, e.g. -c /etc/headroom/headroom.conf\n", o->cmd);
            return -1;
        }
        o->config = v;
        return 1;
    }
    return 0;
}

char *cli_daemon_url(const struct cli_common *o)
{
    if (o->url) return strdup(o->url);
    const char *env = getenv("HEADROOM_URL");
    if (env && *env) return strdup(env);
    /* Where a daemon started with the config (and HEADROOM_HOST/PORT) listens,
     * read as headroomd reads it: `port ${PORT}`, quotes, `;` and comments. */
    char *text = hr_daemon_setup(o->config);
    json_t *v = text ? json_loads(text, 0, NULL) : NULL;
    const char *url = json_string_value(json_object_get(v, "url"));
    char *out = url ? strdup(url) : NULL;
    json_decref(v);
    hr_free(text);
    return out;
}

int cli_parse_time(const char *s, double now, double *out)
{
    char *end;
    if (!s || !*s) return -1;
    double v = strtod(s, &end);
    if (end != s && v >= 0) {
        double unit = 0;
        if (!strcmp(end, "s")) unit = 1;
        else if (!strcmp(end, "m")) unit = 60;
        else if (!strcmp(end, "h")) unit = 3600;
        else if (!strcmp(end, "d")) unit = 86400;
        else if (!strcmp(end, "w")) unit = 7 * 86400;
        if (unit > 0) {
            *out = now - v * unit;
            return 0;
        }
        if (!*end && v > 100000) { /* Unix seconds */
            *out = v;
            return 0;
        }
    }
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *rest = strptime(s, "%Y-%m-%d", &tm);
    if (!rest) return -1;
    if (*rest == 'T' || *rest == ' ') {
        const char *r2 = strptime(rest + 1, "%H:%M", &tm);
        if (!r2) return -1;
        rest = r2;
        if (*rest == ':') {
            r2 = strptime(rest + 1, "%S", &tm);
            if (!r2) return -1;
            rest = r2;
        }
    }
    if (*rest == 'Z') rest++;
    if (*rest) return -1;
    /* strptime takes 2026-02-30; timegm would make it March 2nd. */
    int year = tm.tm_year, mon = tm.tm_mon, mday = tm.tm_mday;
    time_t t = timegm(&tm);
    if (tm.tm_year != year || tm.tm_mon != mon || tm.tm_mday != mday) return -1;
    *out = (double)t;
    return 0;
}

FILE *cli_open_input(const char *cmd, const char *file)
{
    if (!file || !strcmp(file, "-")) return stdin;
    FILE *f = fopen(file, "rb");
    struct stat st;
    if (f && !fstat(fileno(f), &st) && S_ISDIR(st.st_mode)) { /* fopen takes a directory; reading it fails */
        fclose(f);
        fprintf(stderr, "headroom %s: '%s' is a directory: give a file, or - for standard input\n", cmd, file);
        return NULL;
    }
    if (!f) fprintf(stderr, "headroom %s: cannot open '%s': %s\n", cmd, file, strerror(errno));
    return f;
}

int cli_fail(const struct cli_common *o, int rc)
{
    fprintf(stderr, "headroom %s: %s\n", o->cmd, *hr_last_error() ? hr_last_error() : "failed");
    if (rc == HEADROOM_ENET || rc == HEADROOM_ENOTFOUND) return HR_EXIT_UNAVAILABLE;
    return HR_EXIT_RUNTIME;
}

int cli_fail_daemon(const struct cli_common *o, int rc, const char *token_env, const char *token_key)
{
    int status = hr_last_http_status();
    if (!status || rc == HEADROOM_ENOTFOUND) return cli_fail(o, rc); /* not reached, or no data source */
    fprintf(stderr, "headroom %s: %s\n", o->cmd, hr_last_error());
    if (status == 401) { /* never the token itself: only where it came from */
        const char *sent = getenv(token_env);
        if (sent && *sent)
            fprintf(stderr, "headroom %s: %s does not match the daemon's %s: set it to the %s in the daemon's "
                            "headroom.conf\n", o->cmd, token_env, token_key, token_key);
        else if (o->config)
            fprintf(stderr, "headroom %s: the daemon's %s is not the one in %s (or that has none): give -c the "
                            "daemon's own headroom.conf, or set %s to its %s\n", o->cmd, token_key, o->config,
                    token_env, token_key);
        else
            fprintf(stderr, "headroom %s: set %s to the daemon's %s (in its headroom.conf), or give -c that "
                            "headroom.conf, and run again\n", o->cmd, token_env, token_key);
    }
    return HR_EXIT_RUNTIME;
}

void cli_print_json_text(const char *text)
{
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    char *s = v ? json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY | JSON_REAL_PRECISION(10)) : NULL;
    puts(s ? s : text);
    free(s);
    json_decref(v);
}

struct cli_table {
    size_t ncols, nrows, cap;
    char **cells; /* (nrows + 1) * ncols, row 0 = headers */
    int *right;
};

/* A copy of a cell fit for a terminal. A cell can hold what a client sent
 * (a request's model name): a newline, an ESC sequence (which a terminal
 * would run: retitle the window, clear the screen, ...), C1 controls or
 * bytes that are not UTF-8 each become '?'; other UTF-8 stays as it is. */
static char *printable(const char *s)
{
    size_t n = strlen(s);
    char *out = malloc(n + 1);
    if (!out) return NULL;
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    char *o = out;
    while (p < end) {
        size_t len = hr_utf8_seq(p, (size_t)(end - p));
        int control = (len == 1 && (*p < 0x20 || *p == 0x7F)) || (len == 2 && *p == 0xC2 && p[1] < 0xA0); /* C0, DEL, C1 */
        if (!len || control) *o++ = '?';
        else memcpy(o, p, len), o += len;
        p += len ? len : 1; /* not UTF-8: this byte */
    }
    *o = '\0';
    return out;
}

struct cli_table *cli_table_new(size_t ncols, const char *const *headers, const int *right_align)
{
    struct cli_table *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->ncols = ncols;
    t->right = calloc(ncols, sizeof *t->right);
    if (right_align && t->right) memcpy(t->right, right_align, ncols * sizeof *t->right);
    cli_table_row(t, headers);
    return t;
}

void cli_table_row(struct cli_table *t, const char *const *cells)
{
    if (!t) return;
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **nc = realloc(t->cells, cap * t->ncols * sizeof *nc);
        if (!nc) return;
        t->cells = nc;
        t->cap = cap;
    }
    for (size_t c = 0; c < t->ncols; c++) t->cells[t->nrows * t->ncols + c] = printable(cells[c] ? cells[c] : "");
    t->nrows++;
}

/* Columns a cell takes on a terminal: its UTF-8 characters, not its bytes
 * (a model named "modèle-ü" is 8 wide, 10 bytes), so later columns line up. */
static size_t cell_width(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) n++;
    return n;
}

static void pad(FILE *out, size_t n)
{
    while (n--) fputc(' ', out);
}

void cli_table_print(struct cli_table *t, FILE *out)
{
    if (!t) return;
    size_t *w = calloc(t->ncols, sizeof *w);
    if (!w) return;
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < t->ncols; c++) {
            const char *s = t->cells[r * t->ncols + c];
            size_t l = s ? cell_width(s) : 0;
            if (l > w[c]) w[c] = l;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            const char *s = t->cells[r * t->ncols + c] ? t->cells[r * t->ncols + c] : "";
            int last = c + 1 == t->ncols;
            size_t gap = w[c] - cell_width(s);
            if (t->right[c]) pad(out, gap);
            fputs(s, out);
            if (!t->right[c] && !last) pad(out, gap);
            if (!last) fputs("  ", out);
        }
        fputc('\n', out);
    }
    free(w);
}

void cli_table_free(struct cli_table *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->nrows * t->ncols; i++) free(t->cells[i]);
    free(t->cells);
    free(t->right);
    free(t);
}

void cli_fmt_int(char *out, size_t n, long long v)
{
    char tmp[32];
    snprintf(tmp, sizeof tmp, "%lld", v < 0 ? -v : v);
    size_t l = strlen(tmp), k = 0;
    char buf[48];
    if (v < 0) buf[k++] = '-';
    for (size_t i = 0; i < l; i++) {
        if (i && (l - i) % 3 == 0) buf[k++] = ',';
        buf[k++] = tmp[i];
    }
    buf[k] = '\0';
    snprintf(out, n, "%s", buf);
}

/* The dashboard's rule (doc/savings-file.md): cents from $100, 4 decimals
 * from one cent, and below a cent the 6 every amount is rounded to (zeros
 * past the 4th dropped), so a real cost of $0.000006 never reads $0.0000. */
void cli_fmt_usd(char *out, size_t n, double v)
{
    double a = v < 0 ? -v : v;
    if (a >= 100) snprintf(out, n, "$%.2f", v);
    else if (a >= 0.01 || a == 0) snprintf(out, n, "$%.4f", v);
    else if (a < 0.0000005) snprintf(out, n, "%s$0.000001", v < 0 ? ">-" : "<");
    else {
        snprintf(out, n, "$%.6f", v);
        size_t l = strlen(out);
        for (int k = 0; k < 2 && l > 0 && out[l - 1] == '0'; k++) out[--l] = '\0';
    }
}
