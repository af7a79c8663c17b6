/* t/log_compressor_test.c — log_compressor on real tool output (make/gcc,
 * python unittest, node --test via npm, cargo test, a Java exception) and a
 * generated application log with planted needles: every evidence line a
 * question needs survives, savings meet floors set from measurements, the
 * original comes back from CCR; line classes; bad input; skipped units. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "logc.h"
#include "textc_check.h"

static struct hr_instance inst = {"log_compressor"};

static void classes(void)
{
    static const struct {
        const char *line;
        enum hr_logc_class want;
    } t[] = {
        {"lib/numfmt.c:17:22: error: 'scal' undeclared (first use in this function)", HR_LOGC_ERROR},
        {"lib/numfmt.c:6:12: warning: 'unused_helper' defined but not used [-Wunused-function]", HR_LOGC_WARN},
        {"gcc -Wall -Werror -c x.c", HR_LOGC_NORMAL},
        {"FAILED (failures=1, errors=2)", HR_LOGC_ERROR},
        {"Ran 100 tests in 0.019s", HR_LOGC_SUMMARY},
        {"test result: FAILED. 48 passed; 2 failed; 0 ignored", HR_LOGC_ERROR},
        {"== 3 passed, 0 errors in 1.2s ==", HR_LOGC_SUMMARY},
        {"Errors: 0", HR_LOGC_SUMMARY},
        {"KeyError: 'retries'", HR_LOGC_ERROR},
        {"E       assert 1 == 2", HR_LOGC_ERROR},
        {"  File \"/tmp/x.py\", line 7, in load_config", HR_LOGC_FRAME},
        {"\tat Orders.depth(Orders.java:3)", HR_LOGC_FRAME},
        {"    at TestContext.<anonymous> (/tmp/cart.test.js:7:26)", HR_LOGC_FRAME},
        {"Downloading 45% |########          | 12.3 MB/s", HR_LOGC_PROGRESS},
        {"   ", HR_LOGC_BLANK},
        {"[INFO] ", HR_LOGC_BLANK},
        {"[ERROR]", HR_LOGC_BLANK},
        {"[DONE]", HR_LOGC_NORMAL},
        {"", HR_LOGC_BLANK},
        {"INFO processing order 1000 for customer c-0", HR_LOGC_NORMAL},
        {"not ok 24 - cart total 23", HR_LOGC_ERROR},
        {"thread 'main' panicked at src/lib.rs:18:35:", HR_LOGC_ERROR},
        {"test_price_00 (test_shop.PriceTests.test_price_00) ... ok", HR_LOGC_PASS},
        {"test tests::ledger_case_12 ... FAILED", HR_LOGC_ERROR},
        {"--- PASS: TestParse (0.01s)", HR_LOGC_PASS},
        {"=== RUN   TestParse", HR_LOGC_PASS},
        {"ok 1 - cart total 0", HR_LOGC_PASS},
        {"ok step 3", HR_LOGC_NORMAL},
        {"tests/test_cart.py::test_total PASSED                   [ 10%]", HR_LOGC_PASS},
        {"  \xe2\x9c\x93 adds items (3 ms)", HR_LOGC_PASS},
        {"[INFO] Tests run: 6, Failures: 0, Errors: 0, Skipped: 0, Time elapsed: 0.2 s -- in com.acme.CartTest", HR_LOGC_PASS},
        {"[INFO] Tests run: 345, Failures: 0, Errors: 0, Skipped: 1", HR_LOGC_SUMMARY},
        {"   9 | >>> RUN npm ci --omit=dev", HR_LOGC_ERROR},
        {"\t/usr/lib/go-1.19/src/testing/testing.go:1396 +0x24e", HR_LOGC_FRAME},
        {"Dec 04 18:26:33 vm shop-api[10715]:         /tmp/fx/go/shop-api/main.go:39 +0x174", HR_LOGC_FRAME},
        {"    cart_test.go:31: Total() = 100.00, want 90.00", HR_LOGC_NORMAL},
        {"exit status 2", HR_LOGC_ERROR},
        {"Process finished with exit code 0", HR_LOGC_NORMAL},
        {"shop-api.service: Main process exited, code=exited, status=2/INVALIDARGUMENT", HR_LOGC_ERROR},
        {"127.0.0.1 - - [07/Dec/2026 13:02:35] \"GET /missing/config-700.json HTTP/1.1\" 404 -", HR_LOGC_ERROR},
        {"127.0.0.1 - - [07/Dec/2026 13:02:35] code 404, message File not found", HR_LOGC_ERROR},
        {"10.0.0.5 - - [07/Dec/2026:13:02:35 +0000] \"POST /api/orders HTTP/1.1\" 502 157 \"-\" \"curl/7.88.1\"", HR_LOGC_ERROR},
        {"10.0.0.5 - - [07/Dec/2026:13:02:35 +0000] \"GET /x HTTP/2.0\" 403 0", HR_LOGC_ERROR},
        {"127.0.0.1 - - [07/Dec/2026 13:02:32] \"GET /index.html HTTP/1.1\" 200 -", HR_LOGC_NORMAL},
        {"10.0.0.5 - - [07/Dec/2026:13:02:35 +0000] \"GET /old?id=404 HTTP/1.1\" 301 0 \"-\" \"curl/7.88.1\"", HR_LOGC_NORMAL},
        {"10.0.0.5 - - [07/Dec/2026:13:02:35 +0000] \"GET /x HTTP/1.1\" 304 0 \"https://a/404\" \"UA 500\"", HR_LOGC_NORMAL},
        {"127.0.0.1 - - [07/Dec/2026 13:02:35] code 200, message OK", HR_LOGC_NORMAL},
        /* JSON-lines logs: Caddy, Traefik, nginx log_format json (strings), pino */
        {"{\"level\":\"info\",\"ts\":1765101604.81,\"msg\":\"handled request\",\"request\":{\"method\":\"GET\",\"uri\":\"/x\"},"
         "\"size\":153,\"status\":404}", HR_LOGC_ERROR},
        {"{\"level\":\"info\",\"ts\":1765101604.81,\"msg\":\"handled request\",\"size\":404,\"status\":200}", HR_LOGC_NORMAL},
        {"{\"ClientHost\":\"10.0.0.31\",\"DownstreamStatus\":502,\"OriginStatus\":502,\"level\":\"info\",\"msg\":\"\"}", HR_LOGC_ERROR},
        {"{\"time_local\":\"07/Dec/2026:10:00:13 +0000\",\"request\":\"GET /x HTTP/1.1\",\"status\": \"404\"}", HR_LOGC_ERROR},
        {"{\"time_local\":\"07/Dec/2026:10:00:13 +0000\",\"request\":\"GET /x HTTP/1.1\",\"status\": \"301\"}", HR_LOGC_NORMAL},
        {"{\"level\":30,\"reqId\":\"req-1137\",\"res\":{\"statusCode\":502},\"msg\":\"request completed\"}", HR_LOGC_ERROR},
        {"{\"level\":50,\"time\":1765101887493,\"msg\":\"connect ECONNREFUSED 10.0.3.7:5432\"}", HR_LOGC_ERROR},
        {"{\"level\":40,\"time\":1765101887493,\"msg\":\"slow query: 1.2 s\"}", HR_LOGC_WARN},
        {"{\"level\":30,\"time\":1765101887493,\"msg\":\"listening on :8080\"}", HR_LOGC_NORMAL},
        {"{\"level\":\"info\",\"error\":null,\"errors\":[],\"warning\":\"\",\"msg\":\"job done\"}", HR_LOGC_NORMAL},
        {"{\"level\":\"info\",\"error\":\"disk full\",\"msg\":\"job done\"}", HR_LOGC_ERROR},
        {"{\"severity\":\"ERROR\",\"message\":\"payment declined\"}", HR_LOGC_ERROR},
        /* exception and warning names longer than 16 bytes */
        {"Caused by: java.lang.NullPointerException: Cannot invoke \"Map.get(Object)\"", HR_LOGC_ERROR},
        {"ModuleNotFoundError: No module named 'yaml'", HR_LOGC_ERROR},
        {"ConnectionRefusedError: [Errno 111] Connection refused", HR_LOGC_ERROR},
        {"/srv/app/cfg.py:12: UserWarning: key 'retries' is ignored", HR_LOGC_WARN},
        {"(node:77) ExperimentalWarning: The Fetch API is an experimental feature", HR_LOGC_WARN},
        {"the AbstractSingletonProxyFactoryBean was created", HR_LOGC_NORMAL},
        /* frames through docker compose's "service  | " prefix */
        {"web-1  |   File \"/srv/app/jobs.py\", line 40, in run", HR_LOGC_FRAME},
        {"api_1  |     at Orders.depth(Orders.java:3)", HR_LOGC_FRAME},
        {"web-1  |File \"/srv/app/jobs.py\", line 40, in run", HR_LOGC_NORMAL},
        {"name | value", HR_LOGC_NORMAL},
        {"web-1  |", HR_LOGC_NORMAL},
    };
    for (size_t i = 0; i < sizeof t / sizeof *t; i++)
        is_int(hr_logc_classify(t[i].line, strlen(t[i].line), NULL), t[i].want, "class of \"%s\"", t[i].line);
    uint64_t a, b, c;
    const char *x = "2024-06-01T10:00:00Z INFO req 7f3a9c21d4e5 took 12ms";
    const char *y = "2024-06-01T10:00:07Z INFO req 0b1c2d3e4f50 took 340ms";
    const char *z = "2024-06-01T10:00:07Z INFO job 0b1c2d3e4f50 took 340ms";
    hr_logc_classify(x, strlen(x), &a);
    hr_logc_classify(y, strlen(y), &b);
    hr_logc_classify(z, strlen(z), &c);
    ok(a == b && b != c, "times, hex ids and numbers share a template; words do not");
}

/* Passing tests fold into one line per run; a diagnostic block repeated
 * byte for byte (one file built into several libraries) is kept once; long
 * command lines kept only as context are cut in the middle, long error
 * lines are not. */
static void folds(void *state)
{
    size_t cap = 200000;
    char *log = tap_xmalloc(cap), cmd[1101], err[601];
    size_t n = 0;
    memset(cmd, 'x', sizeof cmd - 1);
    memcpy(cmd, "gcc -DPACKAGE_NAME=demo", 23);
    memcpy(cmd + sizeof cmd - 21, " -c lib/numfmt.c END", 20);
    cmd[sizeof cmd - 1] = '\0';
    memset(err, 'e', sizeof err - 1);
    memcpy(err, "lib/long.c:1:1: error: ", 23);
    memcpy(err + sizeof err - 5, " END", 4);
    err[sizeof err - 1] = '\0';
    for (int i = 0; i < 40; i++)
        n = tap_put(log, cap, n, "test_case_%02d (suite.T.test_case_%02d) ... %s\n", i, i, i == 17 ? "FAIL" : "ok");
    for (int k = 0; k < 3; k++) {
        n = tap_put(log, cap, n, "%s\nlib/numfmt.c: In function 'round':\nlib/numfmt.c:17:22: error: 'scal' undeclared\n"
                             "   17 |     return round(v * scal) / scale;\n      |                      ^~~~\n"
                             "lib/numfmt.c:18:1: warning: control reaches end of non-void function\n"
                             "make: *** [Makefile:%d: lib/lib%d-numfmt.lo] Error 1\n", cmd, 2860 + k, k);
        for (int j = 0; j < 6; j++)
            n = tap_put(log, cap, n, "mv -f src/.deps/file%d_%d.Tpo src/.deps/file%d_%d.Po\n", k, j, k, j);
    }
    n = tap_put(log, cap, n, "%s\nmake: Target 'all' not remade because of errors.\n", err);
    struct tc_result r = tc_run(state, log, HR_CT_LOG, "", 0);
    size_t oks = 0, errs = 0, cut = 0;
    for (int i = 1; i < 40; i++) {
        char t[64];
        snprintf(t, sizeof t, "\ntest_case_%02d (", i);
        oks += strstr(r.text, t) != NULL; /* a passing test's own line */
    }
    for (const char *p = r.text; (p = strstr(p, "error: 'scal' undeclared\n")); p++)
        errs++;
    for (const char *p = r.text; (p = strstr(p, "gcc -DPACKAGE_NAME=demo")); p++)
        cut += strstr(p, " \xe2\x80\xa6 ") && strstr(p, " \xe2\x80\xa6 ") < strstr(p, "END\n");
    ok(r.rc == 0 && oks == 1 && strstr(r.text, "passing tests like: test_case_00") &&
           strstr(r.text, "test_case_17 (suite.T.test_case_17) ... FAIL\n"),
       "passing tests fold into \"N passing tests like: …\", the failing one stays");
    ok(errs == 1 && strstr(r.text, "repeats of kept lines") && strstr(r.text, "[Makefile:2860: lib/lib0-numfmt.lo]") &&
           strstr(r.text, "[Makefile:2861: lib/lib1-numfmt.lo]") && strstr(r.text, "[Makefile:2862: lib/lib2-numfmt.lo]"),
       "a diagnostic block repeated byte for byte is kept once (%zu), each make error line stays", errs);
    ok(cut >= 1 && strstr(r.text, "-c lib/numfmt.c END\n") && !strstr(r.text, cmd), "a 1 KB command line kept as context is cut in the middle");
    ok(strstr(r.text, err) != NULL, "a 600-byte error line is kept whole");
    if (!(errs == 1 && oks == 1 && cut >= 1))
        tap_diag("%s", r.text);
    free(r.text), free(log);
}

/* A compiler error keeps gcc's "In function" line above it and its source
 * echo and caret below it even when every file of the build prints lines of
 * those templates (so neither is kept as ordinary context). */
static void cc_error_context(void *state)
{
    size_t cap = 100000;
    char *log = tap_xmalloc(cap);
    size_t n = 0;
    for (int i = 0; i < 30; i++) {
        n = tap_put(log, cap, n, "gcc -O2 -Wall -Wextra -c f%d.c -o f%d.o\nf%d.c: In function 'func_%d':\n"
                             "f%d.c:6:19: warning: comparison of integer expressions of different signedness [-Wsign-compare]\n"
                             "    6 |     for (i = 0; i < u; i++) { if (s[i] == 'x') return i; }\n"
                             "      |                   ^\n", i, i, i, i, i);
        if (i == 17)
            n = tap_put(log, cap, n, "f17.c:6:19: error: 'u' undeclared (first use in this function)\n"
                                 "    6 |     for (i = 0; i < u; i++) { if (s[i] == 'x') return i; }\n"
                                 "      |                   ^\n"
                                 "f17.c:6:19: note: each undeclared identifier is reported only once\n");
    }
    n = tap_put(log, cap, n, "make: *** [Makefile:8: f17.o] Error 1\n"); /* make -j prints it later */
    struct tc_result r = tc_run(state, log, HR_CT_LOG, "", 0);
    const char *e = strstr(r.text, "f17.c:6:19: error:");
    ok(r.rc == 0 && e && strstr(r.text, "f17.c: In function 'func_17':\n") &&
           strstr(r.text, "f17.c: In function 'func_17':\n") < e,
       "a compiler error keeps its \"In function\" line, whose template every file prints");
    const char *echo = "    6 |     for (i = 0; i < u; i++) { if (s[i] == 'x') return i; }\n      |                   ^\n";
    ok(e && !strncmp(strchr(e, '\n') + 1, echo, strlen(echo)), "and its source echo and caret lines");
    ok(strstr(r.text, "make: *** [Makefile:8: f17.o] Error 1\n") != NULL, "and make's error line");
    if (!e || !strstr(r.text, "f17.c: In function"))
        tap_diag("%s", r.text);
    free(r.text), free(log);
}

/* A kept warning gets the context a kept error gets (context_lines 2:
 * "lines around each error or warning"): a compiler warning its source
 * echo, caret and "In function" lines, whose templates every file of the
 * build prints; a warning with a stack trace (node --trace-warnings) its
 * frames. Both were folded. */
static void warning_context(void *state)
{
    size_t cap = 100000;
    char *log = tap_xmalloc(cap);
    size_t n = 0;
    for (int i = 0; i < 30; i++)
        n = tap_put(log, cap, n, "gcc -O2 -Wall -Wextra -c f%d.c -o f%d.o\nf%d.c: In function 'func_%d':\n"
                             "f%d.c:6:19: warning: comparison of integer expressions of different signedness [-Wsign-compare]\n"
                             "    6 |     for (i = 0; i < u; i++) { if (s[i] == 'x') return i; }\n"
                             "      |                   ^\n", i, i, i, i, i);
    n = tap_put(log, cap, n, "make: *** [Makefile:8: all] Error 1\n");
    struct tc_result r = tc_run(state, log, HR_CT_LOG, "", 0);
    const char *w = strstr(r.text, "\nf2.c:6:19: warning:");
    const char *echo = "    6 |     for (i = 0; i < u; i++) { if (s[i] == 'x') return i; }\n      |                   ^\n";
    ok(r.rc == 0 && w && !strncmp(strchr(w + 1, '\n') + 1, echo, strlen(echo)),
       "a kept compiler warning keeps its source echo and caret lines");
    ok(w && strstr(r.text, "\nf2.c: In function 'func_2':\n") && strstr(r.text, "\nf2.c: In function 'func_2':\n") < w,
       "and its \"In function\" line");
    if (!w || strncmp(strchr(w + 1, '\n') + 1, echo, strlen(echo)))
        tap_diag("%s", r.text);
    free(r.text);
    n = 0;
    for (int i = 0; i < 300; i++) {
        n = tap_put(log, cap, n, "2026-12-07T10:%02d:%02d.%03dZ INFO GET /api/items/%d 200 %dms\n", i / 60, i % 60, i,
                i, 3 + i % 17);
        if (i == 150)
            n = tap_put(log, cap, n, "(node:4242) [DEP0005] DeprecationWarning: Buffer() is deprecated due to security "
                                 "and usability issues.\n    at showFlaggedDeprecation (node:buffer:187:11)\n"
                                 "    at new Buffer (node:buffer:271:3)\n    at encodeCursor (/srv/app/lib/cursor.js:14:17)\n"
                                 "    at listItems (/srv/app/routes/items.js:52:20)\n"
                                 "    at Layer.handle (/srv/app/node_modules/express/lib/router/layer.js:95:5)\n");
    }
    r = tc_run(state, log, HR_CT_LOG, "", 0);
    ok(r.rc == 0 && strstr(r.text, "DeprecationWarning: Buffer() is deprecated") &&
           strstr(r.text, "\n    at encodeCursor (/srv/app/lib/cursor.js:14:17)\n    at listItems (/srv/app/routes/items.js:52:20)\n"),
       "a warning's stack trace is kept with it");
    if (!strstr(r.text, "at encodeCursor"))
        tap_diag("%s", r.text);
    free(r.text), free(log);
}

/* An access log: 4xx/5xx request lines are errors, kept up to max_similar
 * of a template (the rest fold); 2xx/3xx lines fold. */
static void access_log(void *state)
{
    size_t cap = 200000;
    char *log = tap_xmalloc(cap);
    size_t n = 0;
    for (int i = 0; i < 1200; i++) {
        int st = i % 100 == 50 ? 404 : i == 777 ? 502 : i % 7 ? 200 : 304;
        n = tap_put(log, cap, n, "10.0.0.%d - - [07/Dec/2026:13:%02d:%02d +0000] \"GET /%s%d HTTP/1.1\" %d %d \"-\" \"curl/7.88.1\"\n",
                i % 9, i / 60 % 60, i % 60, st == 404 ? "missing/page-" : "static/app.js?v=", i, st,
                st == 200 ? 5120 : 153);
    }
    struct tc_result r = tc_run(state, log, HR_CT_LOG, "", 0);
    size_t k404 = 0, k200 = 0;
    for (const char *p = r.text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (strncmp(p, "10.0.0.", 7))
            continue; /* a fold line */
        k404 += memmem(p, len, "\" 404 153 ", 10) != NULL;
        k200 += memmem(p, len, "\" 200 5120 ", 11) != NULL;
    }
    ok(r.rc == 0 && strstr(r.text, "\n10.0.0.3 - - [07/Dec/2026:13:12:57 +0000] \"GET /static/app.js?v=777 HTTP/1.1\" 502 153 ") != NULL,
       "an access log's 502 line is kept");
    is_int((long long)k404, 5, "its 404 lines (12, one template) are kept up to max_similar");
    ok(k200 <= 6, "200 lines fold (%zu kept: the first and last lines)", k200);
    if (k404 != 5)
        tap_diag("%s", r.text);
    free(r.text), free(log);
}

/* A 404 and a 502 request line differ only in a number, so they were one
 * template: the first max_similar (5) 404s filled its slots and a later 502
 * or 503 was folded among the 200s (an access log, a pino JSON-lines log).
 * The status is part of the template now: each status keeps its own
 * max_similar lines. */
static void status_templates(void *state)
{
    size_t cap = 600000;
    char *log = tap_xmalloc(cap);
    for (int pino = 0; pino < 2; pino++) {
        size_t n = 0;
        for (int i = 0; i < 1500; i++) {
            int st = i == 1211 ? 502 : i == 1300 ? 503 : i % 90 == 47 ? 404 : 200;
            if (pino)
                n = tap_put(log, cap, n, "{\"level\":30,\"time\":%lld,\"reqId\":\"req-%d\",\"req\":{\"method\":\"GET\",\"url\":"
                                     "\"/api/items/%d\"},\"res\":{\"statusCode\":%d},\"responseTime\":%d,\"msg\":\"request completed\"}\n",
                        1765101887493LL + i * 7, i, 1000 + i, st, 3 + i % 11);
            else
                n = tap_put(log, cap, n, "10.0.0.%d - - [07/Dec/2026:13:%02d:%02d +0000] \"GET /api/items/%d HTTP/1.1\" %d %d \"-\" "
                                     "\"curl/7.88.1\"\n", i % 9, i / 60 % 60, i % 60, i, st, st == 200 ? 5120 : 153);
        }
        struct tc_result r = tc_run(state, log, HR_CT_LOG, "", 0);
        size_t k404 = 0, k5xx = 0;
        for (const char *p = r.text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
            const char *e = strchr(p, '\n');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            if (!strncmp(p, "\xe2\x80\xa6", 3))
                continue; /* a fold line */
            const char *s404 = pino ? "\"statusCode\":404}" : "\" 404 153 ", *s5xx = pino ? "\"statusCode\":50" : "\" 50";
            k404 += memmem(p, len, s404, strlen(s404)) != NULL;
            k5xx += memmem(p, len, s5xx, strlen(s5xx)) != NULL;
        }
        ok(r.rc == 0 && k5xx == 2, "%s: the 502 and 503 after 13 404s of the same shape are kept (%zu)", pino ? "pino" : "access log", k5xx);
        is_int((long long)k404, 5, "%s: its 17 404s up to max_similar", pino ? "pino" : "access log");
        if (k5xx != 2)
            tap_diag("%s", r.text);
        free(r.text);
    }
    free(log);
}

/* A traceback's last line names the exception: ModuleNotFoundError (19
 * bytes), java.lang.NullPointerException (20) were normal lines, as only
 * words of up to 16 bytes were looked up, so the line that says what went
 * wrong was folded among the service's lines. A recursion's identical
 * frames beyond max_stack_frames are not kept one by one. */
static void long_exception_names(void *state)
{
    size_t cap = 200000;
    char *log = tap_xmalloc(cap);
    size_t n = 0;
    for (int i = 0; i < 400; i++) {
        n = tap_put(log, cap, n, "2026-12-07 10:%02d:%02d INFO worker processed job %d in %dms\n", i / 60, i % 60, i,
                3 + i % 17);
        if (i == 200)
            n = tap_put(log, cap, n, "Traceback (most recent call last):\n  File \"/srv/app/worker.py\", line 88, in run\n"
                                 "    handler = load_plugin(name)\n  File \"/srv/app/plugins.py\", line 31, in load_plugin\n"
                                 "    mod = importlib.import_module(name)\nModuleNotFoundError: No module named 'yaml'\n");
        if (i == 300) {
            n = tap_put(log, cap, n, "Exception in thread \"main\" java.lang.IllegalStateException: order 1187 failed\n"
                                 "\tat Orders.process(Orders.java:6)\n\tat Orders.main(Orders.java:10)\n"
                                 "Caused by: java.lang.NullPointerException: Cannot invoke \"Map.get(Object)\"\n");
            for (int k = 0; k < 40; k++)
                n = tap_put(log, cap, n, "\tat Orders.depth(Orders.java:3)\n");
            n = tap_put(log, cap, n, "\tat Orders.process(Orders.java:5)\n\t... 1 more\n");
        }
    }
    struct tc_result r = tc_run(state, log, HR_CT_LOG, "", 0);
    ok(r.rc == 0 && strstr(r.text, "\n    mod = importlib.import_module(name)\nModuleNotFoundError: No module named 'yaml'\n"),
       "a traceback's ModuleNotFoundError line is kept, under its frames");
    const char *c = strstr(r.text, "\nCaused by: java.lang.NullPointerException: Cannot invoke \"Map.get(Object)\"\n");
    size_t depth = 0;
    for (const char *p = r.text; (p = strstr(p, "\tat Orders.depth(Orders.java:3)\n")); p++)
        depth++;
    ok(c && strstr(c, "\tat Orders.process(Orders.java:5)\n\t... 1 more\n"), "a Caused by: NullPointerException line is kept with its trace");
    ok(depth <= 4, "a recursion's identical frames: the first and last two (%zu kept of 40)", depth);
    if (!c || depth > 4)
        tap_diag("%s", r.text);
    free(r.text), free(log);
}

/* A Python traceback's last line names the exception, with or without a
 * message, dotted or not: queue.Empty, KeyboardInterrupt, StopIteration,
 * asyncio.exceptions.CancelledError, SystemExit: 2, an application's
 * app.errors.PoolTimeout: … read as normal lines (no error word, no
 * …Error/…Exception name) and were folded away from their frames. A kept
 * trace keeps its exception line even past max_similar of its template. */
static void traceback_last_line(void *state)
{
    static const char *const last[] = {"queue.Empty", "KeyboardInterrupt", "StopIteration",
        "asyncio.exceptions.CancelledError", "SystemExit: 2", "app.errors.PoolTimeout: pool exhausted after 30s"};
    const size_t n_last = sizeof last / sizeof *last;
    size_t cap = 300000;
    char *log = tap_xmalloc(cap);
    size_t n = 0;
    for (int i = 0; i < 700; i++) {
        n = tap_put(log, cap, n, i % 3 ? "2026-12-07 10:%02d:%02d INFO worker processed job %d in %dms\n"
                                   : "2026-12-07 10:%02d:%02d DEBUG pool size %d, idle %d\n",
                i / 60 % 60, i % 60, i, 3 + i % 17);
        if (i % 100 == 50 && (size_t)(i / 100) < n_last)
            n = tap_put(log, cap, n, "Traceback (most recent call last):\n  File \"/srv/app/worker.py\", line %d, in run\n"
                                 "    conn = self._pool.get(timeout=30)\n"
                                 "  File \"/usr/lib/python3.11/queue.py\", line 179, in get\n    raise Empty\n%s\n",
                    80 + i / 100, last[i / 100]);
        if (i == 690) /* through journald */
            n = tap_put(log, cap, n, "Dec 07 10:11:30 vm worker[311]: Traceback (most recent call last):\n"
                                 "Dec 07 10:11:30 vm worker[311]:   File \"/srv/app/worker.py\", line 88, in run\n"
                                 "Dec 07 10:11:30 vm worker[311]:     conn = self._pool.get(timeout=30)\n"
                                 "Dec 07 10:11:30 vm worker[311]: queue.Empty\n");
    }
    struct tc_result r = tc_run(state, log, HR_CT_LOG, "", 0);
    size_t kept = 0;
    for (size_t k = 0; k < n_last; k++) {
        char want[160];
        snprintf(want, sizeof want, "\n    raise Empty\n%s\n", last[k]);
        kept += strstr(r.text, want) != NULL;
        if (!strstr(r.text, want))
            tap_diag("missing under its frames: %s", last[k]);
    }
    is_int((long long)kept, (long long)n_last, "a traceback's exception line is kept under its frames, message or not, dotted or not");
    ok(strstr(r.text, "    conn = self._pool.get(timeout=30)\nDec 07 10:11:30 vm worker[311]: queue.Empty\n") != NULL,
       "and through journald");
    if (kept != n_last)
        tap_diag("%s", r.text);
    free(r.text);
    /* Seven traces, each after an error line of its own (so each trace is
     * kept), ending in one template of exception line: the sixth and
     * seventh were over max_similar and folded, the trace without what
     * went wrong. */
    static const char *const who[] = {"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf"};
    n = 0;
    for (int i = 0; i < 700; i++) {
        n = tap_put(log, cap, n, "2026-12-07 10:%02d:%02d INFO worker processed job %d in %dms\n", i / 60 % 60, i % 60,
                i, 3 + i % 17);
        if (i % 100 == 50)
            n = tap_put(log, cap, n, "2026-12-07 10:%02d:%02d ERROR %s worker crashed\nTraceback (most recent call last):\n"
                                 "  File \"/srv/app/%s.py\", line %d, in run\n    conn = self._pool.get(timeout=30)\n"
                                 "TimeoutError: waited 30s for job %d\n", i / 60 % 60, i % 60, who[i / 100], who[i / 100], 10 + i, i);
    }
    r = tc_run(state, log, HR_CT_LOG, "", 0);
    kept = 0;
    for (int i = 50; i < 700; i += 100) {
        char want[160];
        snprintf(want, sizeof want, "    conn = self._pool.get(timeout=30)\nTimeoutError: waited 30s for job %d\n", i);
        kept += strstr(r.text, want) != NULL;
    }
    is_int((long long)kept, 7, "seven kept traces keep their exception lines, past max_similar of their template");
    if (kept != 7)
        tap_diag("%s", r.text);
    free(r.text), free(log);
}

/* Real Python output (3.11, paths renamed): traces chained by "raise ...
 * from e" and by an exception raised while handling another. */
static const char chain_cause[] =
    "Traceback (most recent call last):\n"
    "  File \"/srv/app/settings.py\", line 10, in cfg\n"
    "    return load(k)\n"
    "           ^^^^^^^\n"
    "  File \"/srv/app/settings.py\", line 7, in load\n"
    "    return d[k]\n"
    "           ~^^^\n"
    "KeyError: 'db.url'\n"
    "\n"
    "The above exception was the direct cause of the following exception:\n"
    "\n"
    "Traceback (most recent call last):\n"
    "  File \"/srv/app/main.py\", line 21, in <module>\n"
    "    cfg(\"db.url\")\n"
    "  File \"/srv/app/settings.py\", line 12, in cfg\n"
    "    raise ConfigMissing(\"no setting %s\" % k) from e\n"
    "ConfigMissing: no setting db.url\n";
/* %s: the value that did not parse */
static const char chain_context[] =
    "Traceback (most recent call last):\n"
    "  File \"/srv/app/jobs.py\", line 15, in parse\n"
    "    return int(s)\n"
    "           ^^^^^^\n"
    "ValueError: invalid literal for int() with base 10: '%s'\n"
    "\n"
    "During handling of the above exception, another exception occurred:\n"
    "\n"
    "Traceback (most recent call last):\n"
    "  File \"/srv/app/jobs.py\", line 30, in run\n"
    "    parse(s)\n"
    "  File \"/srv/app/jobs.py\", line 17, in parse\n"
    "    return {}[\"fallback\"]\n"
    "           ~~^^^^^^^^^^^^\n"
    "KeyError: 'fallback'\n";
/* Python 3.11's exception group, a nested group in it */
static const char group_trace[] =
    "  + Exception Group Traceback (most recent call last):\n"
    "  |   File \"/srv/app/batch.py\", line 21, in <module>\n"
    "  |     batch()\n"
    "  |   File \"/srv/app/batch.py\", line 17, in batch\n"
    "  |     raise ExceptionGroup(\"batch %d failed\", errs)\n"
    "  | ExceptionGroup: batch %d failed (4 sub-exceptions)\n"
    "  +-+---------------- 1 ----------------\n"
    "    | Traceback (most recent call last):\n"
    "    |   File \"/srv/app/batch.py\", line 11, in batch\n"
    "    |     f(i)\n"
    "    |   File \"/srv/app/batch.py\", line 5, in f\n"
    "    |     if i == 1: raise ValueError(\"bad row %%d\" %% i)\n"
    "    |                ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n"
    "    | ValueError: bad row %d\n"
    "    +---------------- 2 ----------------\n"
    "    | Traceback (most recent call last):\n"
    "    |   File \"/srv/app/batch.py\", line 11, in batch\n"
    "    |     f(i)\n"
    "    |   File \"/srv/app/batch.py\", line 6, in f\n"
    "    |     if i == 2: raise queue.Empty()\n"
    "    |                ^^^^^^^^^^^^^^^^^^^\n"
    "    | _queue.Empty\n"
    "    +---------------- 3 ----------------\n"
    "    | Traceback (most recent call last):\n"
    "    |   File \"/srv/app/batch.py\", line 11, in batch\n"
    "    |     f(i)\n"
    "    |   File \"/srv/app/batch.py\", line 7, in f\n"
    "    |     if i == 3: raise StopIteration\n"
    "    | StopIteration\n"
    "    +---------------- 4 ----------------\n"
    "    | Exception Group Traceback (most recent call last):\n"
    "    |   File \"/srv/app/batch.py\", line 14, in batch\n"
    "    |     raise ExceptionGroup(\"inner\", [OSError(\"disk full\")])\n"
    "    | ExceptionGroup: inner (1 sub-exception)\n"
    "    +-+---------------- 1 ----------------\n"
    "      | OSError: disk full\n"
    "      +------------------------------------\n";

/* Appends block to log at n, each line behind prefix (an empty line gets
 * the prefix without its last byte, a space, as docker compose writes it). */
static size_t put_prefixed(char *log, size_t n, const char *prefix, const char *block)
{
    for (const char *l = block; *l;) {
        const char *e = strchr(l, '\n');
        size_t len = e ? (size_t)(e - l) : strlen(l), pl = strlen(prefix);
        if (!len && pl)
            pl--;
        memcpy(log + n, prefix, pl), n += pl;
        memcpy(log + n, l, len), n += len;
        log[n++] = '\n';
        l += len + (e != NULL);
    }
    log[n] = '\0';
    return n;
}

static size_t count_str(const char *s, const char *x)
{
    size_t k = 0;
    for (const char *p = s; (p = strstr(p, x)); p += strlen(x))
        k++;
    return k;
}

/* A chained exception kept whole: each trace's header, frames and
 * exception line, and the line joining them. A chain's second "Traceback
 * (most recent call last):" repeats the first and its exception line may
 * repeat one kept above: both were dropped as repeats ("… 1 other lines
 * omitted, first: Traceback …"), and two chains back to back whose second
 * halves are alike lost their KeyError and frames, the model left to read
 * one trace where there were two. */
static void chained_traces(void *state)
{
    size_t cap = 400000;
    char *log = tap_xmalloc(cap), block[2048];
    size_t n = 0;
    for (int i = 0; i < 1500; i++) {
        n = tap_put(log, cap, n, "2026-12-07 10:%02d:%02d INFO worker processed job %d in %dms\n", i / 60 % 60, i % 60,
                i, 3 + i % 17);
        if (i == 300)
            n = tap_put(log, cap, n, "2026-12-07 10:05:00 ERROR svc startup failed\n%s", chain_cause);
        if (i == 700)
            n = tap_put(log, cap, n, chain_context, "x1");
        if (i == 1100) { /* two back to back */
            n = tap_put(log, cap, n, chain_context, "a");
            n = tap_put(log, cap, n, chain_context, "b");
        }
    }
    struct tc_result r = tc_run(state, log, HR_CT_LOG, "", 0);
    const char *const vals[] = {"x1", "a", "b"};
    size_t whole = strstr(r.text, chain_cause) != NULL;
    for (int k = 0; k < 3; k++) {
        block[0] = '\n';
        snprintf(block + 1, sizeof block - 1, chain_context, vals[k]);
        whole += strstr(r.text, block) != NULL;
        if (!strstr(r.text, block))
            tap_diag("not whole: the chain of '%s'", vals[k]);
    }
    is_int((long long)whole, 4, "four chained exceptions (raise from, raised while handling, two back to back) kept whole");
    is_int((long long)count_str(r.text, "\nTraceback (most recent call last):\n"), 8, "each of their 8 traces keeps its header");
    if (whole != 4)
        tap_diag("%s", r.text);
    free(r.text);
    /* the same chain 100 times is still said once, then folded */
    n = 0;
    for (int i = 0; i < 3000; i++) {
        n = tap_put(log, cap, n, "2026-12-07 10:%02d:%02d INFO worker processed job %d in %dms\n", i / 60 % 60, i % 60,
                i, 3 + i % 17);
        if (i % 30 == 5)
            n = tap_put(log, cap, n, chain_context, "x");
    }
    r = tc_run(state, log, HR_CT_LOG, "", 0);
    ok(count_str(r.text, "\nTraceback (most recent call last):\n") <= 4 && r.out_tokens * 20 < r.in_tokens,
       "100 copies of one chain fold as repeats (%zu -> %zu tokens, %zu headers kept)", r.in_tokens, r.out_tokens,
       count_str(r.text, "\nTraceback (most recent call last):\n"));
    free(r.text), free(log);
}

/* Python 3.11 exception groups ("  + Exception Group Traceback", each line
 * behind a "  | " gutter, "+-+---- 1 ----" between sub-exceptions) and
 * traces whose every line carries docker compose's "web-1  | " (coloured
 * or not): neither read as a trace, so the frames were normal lines and
 * an exception line without …Error in its name (the ExceptionGroup line,
 * _queue.Empty, StopIteration, ConfigMissing) folded away. */
static void group_and_compose_traces(void *state)
{
    size_t cap = 600000;
    char *log = tap_xmalloc(cap), block[4096];
    size_t n = 0;
    for (int i = 0; i < 1200; i++) {
        n = tap_put(log, cap, n, "2026-12-07 10:%02d:%02d INFO worker processed job %d in %dms\n", i / 60 % 60, i % 60,
                i, 3 + i % 17);
        if (i == 400 || i == 800)
            n = tap_put(log, cap, n, group_trace, i, i, i);
    }
    struct tc_result r = tc_run(state, log, HR_CT_LOG, "", 0);
    const char *const want[] = {"\n  | ExceptionGroup: batch 400 failed (4 sub-exceptions)\n", "\n    | ValueError: bad row 400\n",
        "\n    | _queue.Empty\n", "\n    | StopIteration\n", "\n    | ExceptionGroup: inner (1 sub-exception)\n",
        "\n      | OSError: disk full\n", "\n  | ExceptionGroup: batch 800 failed (4 sub-exceptions)\n",
        "\n    | ValueError: bad row 800\n"};
    size_t kept = 0;
    for (size_t k = 0; k < sizeof want / sizeof *want; k++) {
        kept += strstr(r.text, want[k]) != NULL;
        if (!strstr(r.text, want[k]))
            tap_diag("lost: %s", want[k] + 1);
    }
    is_int((long long)kept, (long long)(sizeof want / sizeof *want), "an exception group keeps its exception lines, nested ones too");
    snprintf(block, sizeof block, group_trace, 800, 800, 800);
    ok(strstr(r.text, block) != NULL, "the second group, a copy of the first but for its numbers, is kept whole");
    is_int((long long)count_str(r.text, "| Traceback (most recent call last):\n"), 6, "each sub-exception's trace keeps its header");
    if (kept != sizeof want / sizeof *want)
        tap_diag("%s", r.text);
    free(r.text);
    /* docker compose: "web-1  | " in colour, "api_1  | " without */
    static const char *const pre[] = {"\x1b[36mweb-1  |\x1b[0m ", "api_1  | "};
    for (int p = 0; p < 2; p++) {
        n = 0;
        for (int i = 0; i < 1500; i++) {
            n = tap_put(log, cap, n, "%s2026-12-07 10:%02d:%02d INFO worker processed job %d in %dms\n", pre[p],
                    i / 60 % 60, i % 60, i, 3 + i % 17);
            if (i == 300) {
                n = tap_put(log, cap, n, "%s2026-12-07 10:05:00 ERROR svc startup failed\n", pre[p]);
                n = put_prefixed(log, n, pre[p], chain_cause);
            }
            if (i == 700 || i == 1100) {
                snprintf(block, sizeof block, chain_context, i == 700 ? "x1" : "a");
                n = put_prefixed(log, n, pre[p], block);
            }
            if (i == 900) {
                snprintf(block, sizeof block, group_trace, i, i, i);
                n = put_prefixed(log, n, pre[p], block);
            }
        }
        r = tc_run(state, log, HR_CT_LOG, "", 0);
        const char *name = p ? "api_1  | " : "web-1  | ";
        char *plain = tap_xmalloc(8192);
        size_t m = put_prefixed(plain, 0, name, chain_cause);
        (void)m;
        int cause = strstr(r.text, plain) != NULL;
        snprintf(block, sizeof block, chain_context, "a");
        put_prefixed(plain, 0, name, block);
        int context = strstr(r.text, plain) != NULL;
        char line[128];
        snprintf(line, sizeof line, "\n%s    | _queue.Empty\n", name);
        int empty = strstr(r.text, line) != NULL;
        snprintf(line, sizeof line, "\n%s  | ExceptionGroup: batch 900 failed (4 sub-exceptions)\n", name);
        empty += strstr(r.text, line) != NULL;
        ok(cause && context && empty == 2, "%sa chain of traces behind \"%s\" kept whole, and a group's exception lines "
           "(cause %d, context %d, group %d)", p ? "" : "in colour, ", name, cause, context, empty);
        if (!(cause && context && empty == 2))
            tap_diag("%s", r.text);
        free(plain), free(r.text);
    }
    free(log);
}

/* Broken and odd traces: cut short, gutters with nothing in them, a
 * compose prefix alone, a chain line with no trace after it. */
static void trace_bad_input(void *state)
{
    static const char *const odd[] = {
        "Traceback (most recent call last):\n", "Traceback (most recent call last):\n  File \"x.py\", line 1, in f\n",
        "  + Exception Group Traceback (most recent call last):\n", "  + Exception Group Traceback (most recent call last):\n  |",
        "  + Exception Group Traceback (most recent call last):\n  +-\n  +\n  | \n|\n+\n  + \n",
        "Traceback (most recent call last):\n  File \"x.py\", line 1, in f\nKeyError: 1\n\nDuring handling of the above "
        "exception, another exception occurred:\n",
        "Traceback (most recent call last):\n  File \"x.py\", line 1, in f\nKeyError: 1\n\n\n\nDuring handling of the above "
        "exception, another exception occurred:\n\n\n\nTraceback (most recent call last):\n",
        "web-1  |\nweb-1  | Traceback (most recent call last):\nweb-1  |\n-x  | y\n |\nweb-1 |x\n",
    };
    size_t cap = 200000;
    char *log = tap_xmalloc(cap);
    for (size_t k = 0; k < sizeof odd / sizeof *odd; k++) {
        size_t n = 0;
        for (int i = 0; i < 400; i++) {
            n = tap_put(log, cap, n, "2026-12-07 10:%02d:%02d INFO worker processed job %d\n", i / 60 % 60, i % 60, i);
            if (i % 97 == 3)
                n = tap_put(log, cap, n, "%s", odd[k]);
        }
        n = tap_put(log, cap, n, "%s", odd[k]); /* and at the end, cut short */
        struct tc_result r = tc_run(state, log, HR_CT_LOG, "", 0);
        ok(r.rc == 0 && r.text && strstr(r.text, "log lines omitted"), "odd trace %zu: folded, no fault", k);
        free(r.text);
    }
    free(log);
}

/* A log wrapped in JSON (Codex's {"output":…,"metadata":…}; the router
 * types it json_object): the string is compressed as a log, the JSON around
 * it kept byte for byte (2.1 stays 2.1, a value ending in an escaped
 * backslash or quote stays), its hash returns the log. It went whole. An
 * array of rows, a string already compressed and JSON inside a string are
 * left alone. */
static void wrapped_json(void *state)
{
    size_t cap = 400000, n = 0, w = 0;
    char *log = tap_xmalloc(cap), *json = tap_xmalloc(2 * cap);
    for (int i = 0; i < 1500; i++) {
        n = tap_put(log, cap, n, "2026-12-07T10:%02d:%02d INFO worker \"job\" %d done in %dms\n", i / 60 % 60,
                i % 60, i, 3 + i % 17);
        if (i == 700)
            n = tap_put(log, cap, n, "2026-12-07T10:11:40 ERROR worker job 700 failed: disk full on /var\n");
    }
    w = tap_put(json, 2 * cap, w, "{\"note\": \"a path C:\\\\tmp\\\\\", \"output\": \"");
    for (size_t i = 0; i < n; i++) {
        if (log[i] == '\n' || log[i] == '"')
            json[w++] = '\\', json[w++] = log[i] == '\n' ? 'n' : '"';
        else
            json[w++] = log[i];
    }
    static const char tail[] = "\", \"metadata\": {\"exit_code\": 1, \"duration_seconds\": 2.1, \"q\": \"say \\\"hi\\\"\"}}";
    memcpy(json + w, tail, sizeof tail);
    struct tc_result r = tc_run(state, json, HR_CT_JSON_OBJECT, "", 0);
    json_t *got = json_loads(r.text, 0, NULL);
    const char *out = json_string_value(json_object_get(got, "output"));
    ok(r.rc == 0 && got && !strncmp(r.text, "{\"note\": \"a path C:\\\\tmp\\\\\", \"output\": \"[headroom: ", 45) &&
           strstr(r.text, tail) && strlen(strstr(r.text, tail)) == sizeof tail - 1,
       "a log wrapped in JSON: the JSON around it kept byte for byte (%zu -> %zu tokens)", r.in_tokens, r.out_tokens);
    ok(out && !strncmp(out, "[headroom: ", 11) && strstr(out, "\n2026-12-07T10:11:40 ERROR worker job 700 failed: disk full on /var\n") &&
           r.out_tokens * 10 < r.in_tokens,
       "its log compressed, marker first, its error kept");
    size_t glen = 0;
    char *orig = r.hash[0] ? fh_ccr_get(r.hash, &glen) : NULL;
    ok(orig && glen == n && !memcmp(orig, log, n), "the marker's hash returns the log");
    ok(!strncmp(r.tag, "log_compressor:kept=", 20), "stage tag %s", r.tag);
    if (!out || strncmp(out, "[headroom: ", 11))
        tap_diag("%.600s", r.text);
    free(orig);
    json_decref(got);
    /* sent again (the result cache), and the compressed text sent back */
    struct tc_result again = tc_run(state, json, HR_CT_JSON_OBJECT, "", 0);
    struct tc_result twice = tc_run(state, again.text, HR_CT_JSON_OBJECT, "", 0);
    ok(!strcmp(again.text, r.text), "sent again, it comes out the same");
    ok(!strcmp(twice.text, again.text), "a wrapped log compressed already is not compressed again");
    free(r.text), free(again.text), free(twice.text);
    /* an array of rows, and rows as JSON text in a string: no text in them */
    w = 0;
    w = tap_put(json, 2 * cap, w, "[");
    for (int i = 0; i < 2000; i++)
        w = tap_put(json, 2 * cap, w, "%s{\"t\":\"2026-12-07T10:00:%02d INFO job %d\",\"ok\":true}", i ? "," : "",
                    i % 60, i);
    tap_put(json, 2 * cap, w, "]");
    r = tc_run(state, json, HR_CT_JSON_ARRAY, "", 0);
    ok(r.rc == 0 && !strcmp(r.text, json), "an array of short rows is left to smart_crusher");
    free(r.text);
    json_t *rows = json_loads(json, 0, NULL);
    char *rows_text = json_dumps(rows, JSON_COMPACT);
    json_t *mcp = json_pack("{s:[{s:s,s:s}]}", "content", "type", "text", "text", rows_text);
    char *mcp_text = json_dumps(mcp, 0);
    r = tc_run(state, mcp_text, HR_CT_JSON_OBJECT, "", 0);
    ok(r.rc == 0 && !strcmp(r.text, mcp_text), "rows as JSON text inside a string are data, not a log");
    free(r.text), free(mcp_text), free(rows_text);
    json_decref(mcp), json_decref(rows);
    free(json), free(log);
}

/* A JSON-lines access log (Caddy's shape): 404 and 502 lines are errors,
 * kept with the lines around them; they were folded into "N similar lines
 * like: … \"status\":200". */
static void json_lines_log(void *state)
{
    size_t cap = 1000000;
    char *log = tap_xmalloc(cap);
    size_t n = 0;
    for (int i = 0; i < 1500; i++) {
        int st = i == 311 ? 502 : i == 977 ? 404 : i % 9 ? 200 : 304;
        n = tap_put(log, cap, n, "{\"level\":\"info\",\"ts\":%d.%02d,\"logger\":\"http.log.access.log0\",\"msg\":\"handled "
                             "request\",\"request\":{\"remote_ip\":\"10.0.0.%d\",\"proto\":\"HTTP/2.0\",\"method\":\"GET\","
                             "\"host\":\"shop.example.com\",\"uri\":\"/api/items/%d\"},\"duration\":0.00%d,\"size\":%d,\"status\":%d}\n",
                1765101600 + i / 3, i % 100, i % 40, 1000 + i, 1 + i % 9, st == 200 ? 5120 : 153, st);
    }
    struct tc_result r = tc_run(state, log, HR_CT_LOG, "", 0);
    ok(r.rc == 0 && strstr(r.text, "\n{\"level\":\"info\",\"ts\":1765101703.11,") &&
           strstr(r.text, "\"uri\":\"/api/items/1311\"},\"duration\":0.006,\"size\":153,\"status\":502}\n") &&
           strstr(r.text, "\"uri\":\"/api/items/1977\"},\"duration\":0.006,\"size\":153,\"status\":404}\n"),
       "a JSON-lines access log keeps its 502 and 404 lines (%zu -> %zu tokens)", r.in_tokens, r.out_tokens);
    if (!strstr(r.text, "\"status\":502}"))
        tap_diag("%.2000s", r.text);
    free(r.text), free(log);
}

/* A dpkg.log: every line names its package, so no template has more than a
 * few lines; the fold names the most common kinds of lines (words before
 * the package) with their counts, not a two-line template. */
static void kinds(void *state)
{
    size_t cap = 200000;
    char *log = tap_xmalloc(cap), pkg[16];
    size_t n = 0;
    static const char *const steps[] = {"install %s <none> %s", "status half-installed %s %s",
        "status unpacked %s %s", "status unpacked %s %s", "configure %s %s <none>",
        "status half-configured %s %s", "status installed %s %s"};
    for (int i = 0; i < 300; i++) {
        char ver[16];
        size_t k = 0;
        k = tap_put(pkg, sizeof pkg, 0, "lib");
        for (int v = i + 1; v; v /= 26)
            pkg[k++] = (char)('a' + v % 26);
        tap_put(pkg, sizeof pkg, k, ":amd64");
        tap_put(ver, sizeof ver, 0, "1.%d-%d", i % 7, i % 3);
        for (size_t s = 0; s < sizeof steps / sizeof *steps; s++) {
            n = tap_put(log, cap, n, "2025-06-24 14:%02d:%02d ", i / 60 % 60, i % 60);
            n = tap_put(log, cap, n, steps[s], pkg, ver);
            log[n++] = '\n';
        }
    }
    log[n] = '\0';
    struct tc_result r = tc_run(state, log, HR_CT_LOG, "", 0), again = tc_run(state, log, HR_CT_LOG, "", 0);
    ok(r.rc == 0 && strstr(r.text, "\n\xe2\x80\xa6 2094 lines omitted; 598 like: 2025-06-24 14:00:01 status unpacked libc:amd64 1.1-1\n"
                                    "\xe2\x80\xa6   299 like: 2025-06-24 14:00:00 configure libb:amd64 1.0-0 <none>\n"
                                    "\xe2\x80\xa6   299 like: 2025-06-24 14:00:00 status half-configured libb:amd64 1.0-0\n") &&
           !strstr(r.text, "other lines omitted"),
       "a fold of 2094 dpkg lines names its three most common kinds with their counts");
    ok(again.text && !strcmp(r.text, again.text), "the same kinds on a second run");
    if (!strstr(r.text, "598 like"))
        tap_diag("%s", r.text);
    free(r.text), free(again.text);
    /* Lines whose first word is rare have no kind in common. */
    n = 0;
    for (int i = 0; i < 60; i++) {
        size_t k = 0;
        for (int v = i + 1; v; v /= 26)
            pkg[k++] = (char)('a' + v % 26);
        pkg[k] = '\0';
        n = tap_put(log, cap, n, "%s%s reported a value of %d\n", pkg, i % 2 ? "er" : "ing", i * 7);
    }
    r = tc_run(state, log, HR_CT_LOG, "", 0);
    ok(r.rc == 0 && strstr(r.text, "\n\xe2\x80\xa6 54 lines omitted, first: eer reported a value of 21\n"),
       "lines that start with a rare word are not one kind");
    free(r.text), free(log);
}

/* A dpkg.log-like log of 6,300 lines, each naming its package: asked
 * "what happened to package libzstd1?", the package's lines stay (they
 * were folded into "… N lines omitted; … like: <another package>"); a
 * question about something else, or about what every tenth line says,
 * leaves the output as it is without a question. */
static void question(void *state)
{
    size_t cap = 600000;
    char *log = tap_xmalloc(cap), pkg[32];
    size_t n = 0;
    static const char *const steps[] = {"upgrade %s %s %s+deb12u1", "status half-configured %s %s",
        "status unpacked %s %s", "status half-installed %s %s", "status unpacked %s %s+deb12u1",
        "configure %s %s+deb12u1 <none>", "status unpacked %s %s+deb12u1", "status half-configured %s %s+deb12u1",
        "status installed %s %s+deb12u1"};
    for (int i = 0; i < 700; i++) {
        size_t k = 0;
        if (i == 523) {
            strcpy(pkg, "libzstd1:amd64");
        } else {
            k = tap_put(pkg, sizeof pkg, 0, "lib");
            for (int v = i + 1; v; v /= 26)
                pkg[k++] = (char)('a' + v % 26);
            tap_put(pkg, sizeof pkg, k, "%d:amd64", i % 4);
        }
        char ver[24];
        tap_put(ver, sizeof ver, 0, "1.%d.%d+dfsg-%d", i % 7, i % 5, i % 3);
        for (size_t st = 0; st < sizeof steps / sizeof *steps; st++) {
            n = tap_put(log, cap, n, "2026-12-07 06:%02d:%02d ", i / 60 % 60, i % 60);
            n = tap_put(log, cap, n, steps[st], pkg, ver, ver);
            log[n++] = '\n';
        }
    }
    log[n] = '\0';
    struct tc_result none = tc_run(state, log, HR_CT_LOG, "", 0);
    struct tc_result asked = tc_run(state, log, HR_CT_LOG, "what happened to package libzstd1?", 0);
    ok(none.rc == 0 && !strstr(none.text, "libzstd1"), "without a question libzstd1's lines are folded (%zu tokens)",
       none.out_tokens);
    size_t found = 0;
    for (size_t st = 0; st < sizeof steps / sizeof *steps; st++) {
        char line[160];
        size_t m = tap_put(line, sizeof line, 0, "2026-12-07 06:08:43 ");
        m = tap_put(line, sizeof line, m, steps[st], "libzstd1:amd64", "1.5.3+dfsg-1", "1.5.3+dfsg-1");
        tap_put(line, sizeof line, m, "\n");
        found += strstr(asked.text, line) != NULL;
    }
    is_int((long long)found, 9, "asked what happened to libzstd1: its 9 lines are kept (%zu -> %zu tokens)", none.out_tokens,
           asked.out_tokens);
    ok(asked.out_tokens < none.out_tokens + 400, "at a small cost (%zu more tokens)", asked.out_tokens - none.out_tokens);
    if (found != 9)
        tap_diag("%s", asked.text);
    struct tc_result other = tc_run(state, log, HR_CT_LOG, "Why is the disk full?", 0);
    ok(other.text && none.text && !strcmp(other.text, none.text), "a question about something else: the same output");
    struct tc_result common = tc_run(state, log, HR_CT_LOG, "which packages were configured?", 0);
    ok(common.text && none.text && !strcmp(common.text, none.text),
       "a question whose words fill the log (half-configured: two lines in nine) keeps no more lines");
    free(none.text), free(asked.text), free(other.text), free(common.text), free(log);
}

static void bad_input(void *state)
{
    /* a log of one repeated line, a single huge line, binary-ish bytes, only ANSI */
    struct tc_result r;
    size_t cap = 300001;
    char *big = tap_xmalloc(cap);
    memset(big, 'x', 300000);
    big[300000] = '\0';
    r = tc_run(state, big, HR_CT_LOG, "", 0);
    is_int(r.rc, 0, "one 300 KB line: apply returns 0");
    ok(!strcmp(r.text, big), "one 300 KB line: left as is (nothing to fold)");
    free(r.text);
    size_t n = 0;
    for (int i = 0; i < 3000; i++)
        n = tap_put(big, cap, n, "\x1b[32mok\x1b[0m step %d\r\n", i);
    r = tc_run(state, big, HR_CT_LOG, "", 0);
    if (!strstr(r.text, "similar lines like: ok step")) tap_diag("%.300s", r.text);
    ok(r.rc == 0 && !strchr(r.text, '\x1b') && strstr(r.text, "similar lines like: ok step") &&
           r.out_tokens * 10 < r.in_tokens, "3000 coloured CRLF lines fold into one ANSI-free line (%zu -> %zu tokens)",
       r.in_tokens, r.out_tokens);
    free(r.text);
    for (size_t i = 0; i < 4000; i++)
        big[i] = (char)(1 + (i * 7919) % 126);
    big[4000] = '\0';
    r = tc_run(state, big, HR_CT_LOG, "", 0);
    is_int(r.rc, 0, "random ASCII bytes: apply returns 0 (the host refuses invalid text, not the plugin)");
    free(r.text);
    r = tc_run(state, "", HR_CT_LOG, "", 0);
    is_int(r.rc, 0, "empty text: apply returns 0");
    free(r.text);
    free(big);
}

static void skips(void *state)
{
    size_t cap = 200000;
    char *log = tap_xmalloc(cap);
    size_t n = 0;
    for (int i = 0; i < 2000; i++)
        n = tap_put(log, cap, n, "2024-06-01 10:%02d:%02d INFO worker %d heartbeat ok\n", i / 60 % 60, i % 60, i % 7);
    struct tc_result r = tc_run(state, log, HR_CT_LOG, "", HR_UNIT_PROTECTED);
    ok(!strcmp(r.text, log), "protected unit untouched");
    free(r.text);
    r = tc_run(state, log, HR_CT_JSON_ARRAY, "", 0);
    ok(!strcmp(r.text, log), "a unit typed json_array is not a log");
    free(r.text);
    r = tc_run(state, log, HR_CT_TEXT, "", 0);
    ok(!strcmp(r.text, log), "plain text without build/test signatures is left to others");
    free(r.text);
    r = tc_run(state, log, HR_CT_LOG, "", 0);
    ok(r.out_tokens * 20 < r.in_tokens && strstr(r.tag, "log_compressor:kept="), "heartbeat log folds (%zu -> %zu), tag %s",
       r.in_tokens, r.out_tokens, r.tag);
    struct tc_result again = tc_run(state, r.text, HR_CT_LOG, "", 0);
    ok(!strcmp(again.text, r.text), "an output that carries a marker is not compressed again");
    free(again.text), free(r.text), free(log);
}

int main(void)
{
    void *state;
    struct hr_conf conf;
    fh_conf(&conf, headroom_plugin.conf_keys, NULL);
    is_int(headroom_plugin.init(fh_host(), &inst, &conf, &state), 0, "init");
    classes();
    folds(state);
    cc_error_context(state);
    warning_context(state);
    access_log(state);
    status_templates(state);
    json_lines_log(state);
    long_exception_names(state);
    traceback_last_line(state);
    chained_traces(state);
    group_and_compose_traces(state);
    trace_bad_input(state);
    wrapped_json(state);
    kinds(state);
    question(state);
    tc_fixture(state, "make_gcc_error", HR_CT_LOG);
    tc_fixture(state, "make_k_gcc", HR_CT_LOG);
    tc_fixture(state, "http_server_access", HR_CT_LOG);
    tc_fixture(state, "python_unittest", HR_CT_TEXT);
    tc_fixture(state, "npm_node_test", HR_CT_LOG);
    tc_fixture(state, "cargo_test", HR_CT_TEXT);
    tc_fixture(state, "java_exception", HR_CT_LOG);
    tc_fixture(state, "app_log_needles", HR_CT_LOG);
    tc_fixture(state, "maven_build", HR_CT_LOG);
    tc_fixture(state, "docker_build", HR_CT_LOG);
    tc_fixture(state, "go_test", HR_CT_LOG);
    tc_fixture(state, "journald", HR_CT_LOG);
    bad_input(state);
    skips(state);
    json_t *st = fh_stats("log_compressor");
    ok(json_integer_value(json_object_get(json_object_get(st, "result_cache"), "hits")) > 0,
       "second runs come from the result cache");
    json_decref(st);
    fh_drop_stats(state);
    headroom_plugin.fini(state);
    fh_reset();
    return tap_exit();
}
