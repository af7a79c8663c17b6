/* classify.c — one log line's class and template, in one pass over its
 * bytes: words are looked up in small keyword tables, numbers and hex ids
 * are folded into the template hash so near-duplicate lines share it. */
#include <ctype.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include "logc.h"

#define W(s) {s, sizeof(s) - 1}
struct kw {
    const char *w;
    size_t n;
};
static const struct kw err_words[] = {
    W("error"), W("errors"), W("err"), W("fatal"), W("panic"), W("panicked"), W("exception"),
    W("traceback"), W("failed"), W("failure"), W("failures"), W("fail"), W("fails"), W("assert"),
    W("assertion"), W("segfault"), W("segmentation"), W("aborted"), W("abort"), W("critical"),
    W("crashed"), W("emerg"), W("unhandled"), W("uncaught"), {NULL, 0},
};
static const struct kw warn_words[] = {
    W("warning"), W("warnings"), W("warn"), W("deprecated"), W("deprecation"), {NULL, 0},
};
/* Counted after a number: "5 failed, 120 passed", "Ran 3 tests". */
static const struct kw count_words[] = {
    W("passed"), W("failed"), W("failures"), W("error"), W("errors"), W("skipped"), W("warning"),
    W("warnings"), W("tests"), W("test"), W("xfailed"), W("xpassed"), W("deselected"), W("pending"),
    W("todo"), W("total"), W("suites"), W("examples"), W("ignored"), W("measured"), W("filtered"),
    W("succeeded"), W("passing"), W("failing"), W("ok"), {NULL, 0},
};

static int in(const struct kw *t, const char *w, size_t n)
{
    for (; t->w; t++)
        if (t->n == n && memcmp(t->w, w, n) == 0)
            return 1;
    return 0;
}

/* 1 alnum or '_', 2 also a hex digit, 4 a decimal digit. */
static unsigned char cc[256];
static void init_cc(void)
{
    for (int c = 0; c < 256; c++) {
        unsigned char v = 0;
        if (isalnum(c) || c == '_')
            v = 1;
        if (isxdigit(c))
            v |= 2;
        if (isdigit(c))
            v |= 4;
        cc[c] = v;
    }
}

#define FNV 0x100000001b3ULL
#define H(h, c) ((h) = ((h) ^ (unsigned char)(c)) * FNV)

/* Progress: a bar (runs of =, #, >, block or box characters) with a
 * percentage, or spinner glyphs (braille) at the start. */
static int progress_line(const unsigned char *s, size_t n)
{
    size_t run = 0, best = 0;
    int pct = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c == '%' && i && isdigit(s[i - 1]))
            pct = 1;
        if (c == '=' || c == '#' || c == '>') {
            run++;
        } else if (c == 0xE2 && i + 2 < n && (s[i + 1] == 0x96 || s[i + 1] == 0x94)) {
            run++; /* U+2588.. blocks, U+2591 shades, U+2501 heavy line */
            i += 2;
        } else if (c != ' ' || run == 0) {
            if (run > best)
                best = run;
            run = 0;
        }
    }
    if (run > best)
        best = run;
    if (pct && best >= 3)
        return 1;
    size_t i = 0;
    while (i < n && s[i] == ' ')
        i++;
    return i + 2 < n && s[i] == 0xE2 && s[i + 1] >= 0xA0 && s[i + 1] <= 0xA3; /* U+2800 braille spinner */
}

/* memmem for the frame tests: a plain loop, so a sanitizer build's
 * recoverable null checks of the bytes read before it leave no path on
 * which gcc sees a null pointer passed to a nonnull function (-Wnonnull,
 * gcc 12 -O1 -fsanitize=undefined). */
static const char *find(const char *s, size_t n, const char *w, size_t wl)
{
    for (size_t i = 0; i + wl <= n; i++)
        if (s[i] == w[0] && !memcmp(s + i, w, wl))
            return s + i;
    return NULL;
}

/* A Go frame's file line: "/src/x.go:12", then nothing or " +0x1d" (not a
 * t.Log line "x_test.go:31: message"). */
static int go_file_line(const char *p, size_t m)
{
    const char *g = find(p, m, ".go:", 4);
    if (!g)
        return 0;
    size_t k = (size_t)(g - p) + 4, d = k;
    while (k < m && isdigit((unsigned char)p[k]))
        k++;
    return k > d && (k == m || (m - k > 4 && !memcmp(p + k, " +0x", 4)));
}

/* "Dec  4 10:05:03 host tag[123]: " (syslog, journalctl's default): the
 * length of the prefix, 0 when there is none. */
size_t hr_logc_syslog_prefix(const char *s, size_t n)
{
    if (n < 20 || !isupper((unsigned char)s[0]) || !islower((unsigned char)s[1]) || !islower((unsigned char)s[2]) ||
        s[3] != ' ' || !isdigit((unsigned char)s[5]) || s[6] != ' ' || !isdigit((unsigned char)s[7]) || s[9] != ':' ||
        s[12] != ':' || s[15] != ' ')
        return 0;
    const char *host_end = memchr(s + 16, ' ', n - 16);
    if (!host_end)
        return 0;
    size_t t = (size_t)(host_end - s) + 1;
    while (t < n && s[t] != ' ' && s[t] != ':')
        t++;
    return t + 1 < n && s[t] == ':' && s[t + 1] == ' ' ? t + 2 : 0;
}

/* "web-1  | ", "api_1  | " (docker compose, its colour already removed):
 * a service name, padding, '|' then a space or the line's end. The length
 * of the prefix (n for a line with nothing after it), else 0. */
static size_t compose_prefix(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && i < 64 && (isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == '-' || s[i] == '.'))
        i++;
    size_t name = i;
    while (i < n && s[i] == ' ')
        i++;
    if (!name || !isalnum((unsigned char)s[0]) || i == name || i >= n || s[i] != '|')
        return 0;
    return i + 1 == n ? n : s[i + 1] == ' ' ? i + 2 : 0;
}

size_t hr_logc_line_prefix(const char *s, size_t n)
{
    size_t p = hr_logc_syslog_prefix(s, n);
    return p ? p : compose_prefix(s, n);
}

/* Stack frames of Python, Java/JS/Rust ("at …"), Go, gdb/C. */
static enum hr_logc_class frame_line(const char *s, size_t n)
{
    size_t ws = 0;
    while (ws < n && (s[ws] == ' ' || s[ws] == '\t'))
        ws++;
    const char *p = s + ws;
    size_t m = n - ws;
    if (ws && HR_STARTS(p, m, "File \"") && memmem(p, m, "\", line ", 8))
        return HR_LOGC_FRAME;
    if (ws && HR_STARTS(p, m, "at ") && m > 4 && (memchr(p, '(', m) || memchr(p, ':', m) || memchr(p, '.', m)))
        return HR_LOGC_FRAME;
    if (ws && HR_STARTS(p, m, "... ") && m > 9 && !memcmp(p + m - 5, " more", 5))
        return HR_LOGC_FRAME;
    if (ws && m > 3 && isdigit((unsigned char)p[0])) { /* rust "  12: std::rt::…" */
        size_t d = 0;
        while (d < m && isdigit((unsigned char)p[d]))
            d++;
        if (d + 1 < m && p[d] == ':' && p[d + 1] == ' ')
            return HR_LOGC_FRAME;
    }
    if (ws && m > 6 && p[m - 1] == ')' && find(p, m, " (", 2) && memchr(p, ':', m)) { /* node "name (file:4:49)" */
        size_t k = m - 1;
        while (k && isdigit((unsigned char)p[k - 1]))
            k--;
        if (k < m - 1 && k && p[k - 1] == ':')
            return HR_LOGC_FRAME;
    }
    if (ws && m > 4 && go_file_line(p, m)) /* go "\t/src/x.go:12 +0x1d" */
        return HR_LOGC_FRAME;
    if (!ws && m > 3 && p[0] == '#' && isdigit((unsigned char)p[1]) && (find(p, m, " in ", 4) || find(p, m, " at ", 4)))
        return HR_LOGC_FRAME;
    return HR_LOGC_NORMAL;
}

/* A line that reports one passing test, or a test starting: unittest and
 * cargo "name ... ok", pytest -v "PASSED", go "--- PASS:"/"=== RUN", TAP "# Subtest:" and
 * "ok 3 - name", jest/mocha/node "✓ name", googletest "[       OK ]", jest
 * "PASS file", and a Maven Surefire per-class line without failures. */
static int pass_line(const char *s, size_t n)
{
    size_t ws = 0;
    while (ws < n && (s[ws] == ' ' || s[ws] == '\t'))
        ws++;
    const char *p = s + ws;
    size_t m = n - ws;
    while (m && (p[m - 1] == ' ' || p[m - 1] == '\t'))
        m--;
    if (m > 7 && (!memcmp(p + m - 7, " ... ok", 7) || !memcmp(p + m - 7, " ... OK", 7)))
        return 1;
    if (HR_STARTS(p, m, "--- PASS: ") || HR_STARTS(p, m, "=== RUN ") || HR_STARTS(p, m, "=== PAUSE ") ||
        HR_STARTS(p, m, "=== CONT ") || HR_STARTS(p, m, "=== NAME ") || HR_STARTS(p, m, "[       OK ] ") ||
        HR_STARTS(p, m, "[ RUN      ] ") || HR_STARTS(p, m, "# Subtest: ") || HR_STARTS(p, m, "PASS ") || HR_STARTS(p, m, "\xe2\x9c\x93 ") ||
        HR_STARTS(p, m, "\xe2\x9c\x94 "))
        return 1;
    if (m > 3 && p[0] == 'o' && p[1] == 'k' && p[2] == ' ' && isdigit((unsigned char)p[3]))
        return 1;
    const char *q = memmem(p, m, " PASSED", 7);
    if (q && (q + 7 == p + m || q[7] == ' '))
        return 1;
    return HR_STARTS(p, m, "[INFO] Tests run: ") && memmem(p, m, ", Failures: 0, Errors: 0,", 25) &&
           memmem(p, m, " in ", 4);
}

/* "[INFO] ", "[ERROR]": a level tag and nothing else (Maven's empty lines). */
static int level_only(const char *s, size_t n)
{
    static const char *const tags[] = {"[INFO]", "[WARN]", "[WARNING]", "[ERROR]", "[DEBUG]", "[TRACE]", "[FATAL]",
                                       "[NOTICE]", NULL};
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n < 6 || n > 9 || s[0] != '[')
        return 0;
    for (const char *const *t = tags; *t; t++)
        if (strlen(*t) == n && !memcmp(s, *t, n))
            return 1;
    return 0;
}

/* The JSON key whose value starts at s[v] (after an opening '"' for a string
 * value): its name, s[*k .. *k + *kl), else 0. */
static int json_key_before(const char *s, size_t v, size_t *k, size_t *kl)
{
    size_t e = v;
    while (e && s[e - 1] == ' ')
        e--;
    if (!e || s[--e] != ':')
        return 0;
    while (e && s[e - 1] == ' ')
        e--;
    if (!e || s[--e] != '"')
        return 0;
    size_t b = e;
    while (b && s[b - 1] != '"' && e - b < 64)
        b--;
    if (!b || s[b - 1] != '"' || b == e)
        return 0;
    *k = b, *kl = e - b;
    return 1;
}

static int ends_ci(const char *s, size_t n, const char *suf)
{
    size_t l = strlen(suf);
    return n >= l && strncasecmp(s + n - l, suf, l) == 0;
}

/* A JSON-lines access log's 4xx/5xx at s[i..i+3): "status":404,
 * "statusCode": 502 (pino), "DownstreamStatus":404 (Traefik), "status":"404"
 * (nginx log_format json writes strings): a key ending in status,
 * status_code or statuscode. */
static int json_http_status(const char *s, size_t n, size_t i)
{
    size_t v = i, k, kl;
    if (s[i] != '4' && s[i] != '5')
        return 0;
    if (v && s[v - 1] == '"') {
        if (i + 3 >= n || s[i + 3] != '"')
            return 0;
        v--;
    }
    if (!json_key_before(s, v, &k, &kl))
        return 0;
    return ends_ci(s + k, kl, "status") || ends_ci(s + k, kl, "statuscode") || ends_ci(s + k, kl, "status_code");
}

/* pino's and bunyan's numeric "level": 50 error, 60 fatal (2), 40 warn (1). */
static int json_numeric_level(const char *s, size_t i)
{
    size_t k, kl;
    if ((s[i] != '4' && s[i] != '5' && s[i] != '6') || s[i + 1] != '0' || !json_key_before(s, i, &k, &kl) ||
        kl != 5 || strncasecmp(s + k, "level", 5))
        return 0;
    return s[i] == '4' ? 1 : 2;
}

/* The word s[i..j) is a JSON key whose value is empty: "error":null,
 * "errors":[], "err":"", "warning":false, "error":0. A field that says
 * there was no error. */
static int json_empty_field(const char *s, size_t n, size_t i, size_t j)
{
    if (!i || s[i - 1] != '"' || j >= n || s[j] != '"')
        return 0;
    j++;
    while (j < n && s[j] == ' ')
        j++;
    if (j >= n || s[j++] != ':')
        return 0;
    while (j < n && s[j] == ' ')
        j++;
    static const char *const empty[] = {"null", "\"\"", "[]", "{}", "false", "0", NULL};
    for (const char *const *e = empty; *e; e++) {
        size_t l = strlen(*e);
        if (j + l <= n && !memcmp(s + j, *e, l) && (j + l == n || s[j + l] == ',' || s[j + l] == '}' || s[j + l] == ' '))
            return 1;
    }
    return 0;
}

/* A 4xx or 5xx status at s[i..i+3): an access log's request line (common
 * and combined formats: `"GET /x HTTP/1.1" 404 153`), or Python http.server's
 * `code 404, message File not found`. 2xx and 3xx are not errors. */
static int http_error_status(const char *s, size_t n, size_t i)
{
    if (s[i] != '4' && s[i] != '5')
        return 0;
    if (i >= 5 && !memcmp(s + i - 5, "code ", 5))
        return i + 12 <= n && !memcmp(s + i + 3, ", message", 9);
    if (i < 9 || s[i - 1] != ' ' || s[i - 2] != '"' || (i + 3 < n && s[i + 3] != ' '))
        return 0;
    size_t k = i - 2; /* the quote closing the request */
    while (k > 0 && (isdigit((unsigned char)s[k - 1]) || s[k - 1] == '.'))
        k--;
    return k < i - 2 && k >= 5 && !memcmp(s + k - 5, "HTTP/", 5);
}

/* A CamelCase name ending in Error or Exception (ValueError,
 * java.lang.NullPointerException, ConnectionRefusedError) is an error (2),
 * one ending in Warning (UserWarning, DeprecationWarning, node's
 * ExperimentalWarning) a warning (1); the word is s[i..j). */
static int camel_class(const char *s, size_t i, size_t j)
{
    size_t wl = j - i;
    if ((wl > 5 && !memcmp(s + j - 5, "Error", 5)) || (wl > 9 && !memcmp(s + j - 9, "Exception", 9)))
        return 2;
    return wl > 7 && !memcmp(s + j - 7, "Warning", 7) ? 1 : 0;
}

/* "errors: 0", "failed=0": a count of zero right after the word. */
static int zero_after(const char *s, size_t n, size_t j)
{
    while (j < n && (s[j] == ':' || s[j] == '=' || s[j] == ' '))
        j++;
    return j < n && s[j] == '0' && (j + 1 == n || !isdigit((unsigned char)s[j + 1]));
}

enum hr_logc_class hr_logc_classify(const char *s, size_t n, uint64_t *tmpl)
{
    if (!cc['a'])
        init_cc(); /* idempotent; a race writes the same bytes */
    const unsigned char *u = (const unsigned char *)s;
    uint64_t h = 0xcbf29ce484222325ULL;
    int err = 0, warn = 0, summ = 0, prev_num = 0, prev_neg = 0, prev_not = 0, blank = 1, exit_w = 0, code_w = 0;
    size_t status = SIZE_MAX; /* where an HTTP error status is */
    for (size_t i = 0; i < n;) {
        unsigned char c = u[i];
        if (!cc[c]) {
            if (c != ' ' && c != '\t')
                blank = 0, prev_num = 0; /* "17:22: error" is a position, not a count */
            if (c == '>' && i >= 2 && u[i - 1] == ' ' && u[i - 2] == '|' && i + 2 < n && u[i + 1] == '>' &&
                u[i + 2] == '>')
                err = 1; /* Docker BuildKit's "   9 | >>> RUN npm ci": the instruction that failed */
            H(h, c);
            i++;
            continue;
        }
        blank = 0;
        size_t j = i;
        unsigned all = 0xff, any = 0;
        while (j < n && cc[u[j]]) {
            all &= cc[u[j]];
            any |= cc[u[j]];
            j++;
        }
        size_t wl = j - i;
        if (any & 4) {
            if (code_w && (all & 4)) /* "exit status 2", "exited, code=exited, status=2": a process failed */
                for (size_t k = i; k < j; k++)
                    err |= u[k] != '0';
            if (wl == 3 && (all & 4) && (http_error_status(s, n, i) || json_http_status(s, n, i))) {
                err = 1;
                status = i;
            }
            if (wl == 2 && (all & 4)) {
                int lv = json_numeric_level(s, i);
                err |= lv == 2;
                warn |= lv == 1;
            }
            /* numbers, hex ids, uuids parts, times: one symbol each */
            if ((all & 2) || (wl > 2 && u[i] == '0' && (u[i + 1] | 0x20) == 'x')) {
                H(h, '#');
            } else {
                for (size_t k = i; k < j; k++) {
                    if (cc[u[k]] & 4) {
                        if (k == i || !(cc[u[k - 1]] & 4))
                            H(h, '0');
                    } else {
                        H(h, u[k]);
                    }
                }
            }
            prev_num = (all & 4) != 0;
            prev_neg = prev_num && wl == 1 && u[i] == '0';
            i = j;
            continue;
        }
        for (size_t k = i; k < j; k++)
            H(h, u[k]);
        if (wl >= 2 && wl <= 16) {
            char w[16];
            for (size_t k = 0; k < wl; k++)
                w[k] = (char)(u[i + k] | 0x20);
            int neg = prev_neg || (wl == 2 && !memcmp(w, "no", 2));
            if (wl == 2 && !memcmp(w, "ok", 2) && prev_not)
                err = 1; /* TAP "not ok 24 - …" */
            prev_not = wl == 3 && !memcmp(w, "not", 3);
            if ((wl == 4 && !memcmp(w, "exit", 4)) || (wl == 6 && !memcmp(w, "exited", 6)))
                exit_w = 1;
            else if (exit_w && ((wl == 6 && !memcmp(w, "status", 6)) || (wl == 4 && !memcmp(w, "code", 4))))
                code_w = 1;
            if (prev_num && u[i - 1] == ' ' && in(count_words, w, wl)) {
                summ = 1;
            } else if (in(err_words, w, wl)) {
                if (json_empty_field(s, n, i, j))
                    ; /* "error":null: a field saying there was none */
                else if (prev_neg || zero_after(s, n, j))
                    summ = 1;
                else if (!(i && (u[i - 1] == '-' || u[i - 1] == '/' || u[i - 1] == '.')) || j == n ||
                         u[j] == ':')
                    err = 1; /* not an option or path ("-Werror", "/errors/") unless it ends a label */
            } else if (in(warn_words, w, wl)) {
                if (json_empty_field(s, n, i, j))
                    ;
                else if (prev_neg || zero_after(s, n, j))
                    summ = 1;
                else if (!(i && (u[i - 1] == '-' || u[i - 1] == '/')))
                    warn = 1;
            } else {
                int c = camel_class(s, i, j);
                err |= c == 2;
                warn |= c == 1;
            }
            prev_neg = neg;
        } else {
            /* longer words are no table word, but may name an exception
             * (NullPointerException, ModuleNotFoundError: 20 and 19 bytes) */
            int c = camel_class(s, i, j);
            err |= c == 2;
            warn |= c == 1;
            prev_neg = 0;
        }
        prev_num = 0;
        i = j;
    }
    /* A request's status is part of its template: a 404 and a 502 line are
     * otherwise one template, and max_similar 404s kept first left a later
     * 502 folded among them. */
    if (status != SIZE_MAX) {
        H(h, 0x1f);
        H(h, u[status]), H(h, u[status + 1]), H(h, u[status + 2]);
    }
    if (tmpl)
        *tmpl = h;
    if (blank || level_only(s, n))
        return HR_LOGC_BLANK;
    size_t pre = hr_logc_line_prefix(s, n); /* a frame logged through syslog/journald or docker compose */
    enum hr_logc_class f = frame_line(s + pre, n - pre);
    if (f != HR_LOGC_NORMAL)
        return f;
    if (n >= 2 && s[0] == 'E' && s[1] == ' ')
        return HR_LOGC_ERROR; /* pytest's assertion detail lines */
    if (err)
        return HR_LOGC_ERROR;
    if (warn)
        return HR_LOGC_WARN;
    if (pass_line(s, n))
        return HR_LOGC_PASS;
    if (summ)
        return HR_LOGC_SUMMARY;
    if (progress_line(u, n))
        return HR_LOGC_PROGRESS;
    return HR_LOGC_NORMAL;
}
