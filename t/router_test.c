/* t/router_test.c — router content-type detection on typical tool outputs and bad
 * input, the stage tag, and the /stats block, through t/fake_host.c. */
#include <stdlib.h>
#include <string.h>
#include <headroom/plugin.h>
#include "tap.h"
#include "fake_host.h"

extern const struct headroom_plugin headroom_plugin;

static void *state;
static struct hr_instance inst = {"router"};

static enum hr_content_type detect(const char *text, char *tag, size_t tagsz)
{
    json_t *body = json_pack("{s:s,s:[{s:s,s:s,s:s}]}", "model", "gpt-4o", "messages", "role",
                             "tool", "tool_call_id", "c", "content", text);
    struct fh_request r;
    fh_request_init(&r, body, HR_PROVIDER_OPENAI, "");
    json_decref(body);
    headroom_plugin.apply(state, &r.req);
    enum hr_content_type t = r.units[0].type;
    if (tag)
        snprintf(tag, tagsz, "%s", r.tag);
    fh_request_free(&r);
    return t;
}

int main(void)
{
    struct hr_conf conf;
    char tagbuf[512], *tag = tagbuf;
    fh_conf(&conf, headroom_plugin.conf_keys, NULL);
    is_int(headroom_plugin.init(fh_host(), &inst, &conf, &state), 0, "init");
    is_int(detect("[{\"a\":1},{\"a\":2}]", tag, sizeof tagbuf), HR_CT_JSON_ARRAY, "json array");
    is_str(tag, "router:json_array=1", "tag");
    is_int(detect("  \n{\"results\":[1,2]}", NULL, 0), HR_CT_JSON_OBJECT, "json object after whitespace");
    is_int(detect("[1, 2, oops", NULL, 0), HR_CT_TEXT, "broken JSON is not JSON");
    is_int(detect("{not json at all}\nplain words here", NULL, 0), HR_CT_TEXT, "brace text is not JSON");
    is_int(detect("2024-06-01T10:00:00Z INFO started\n2024-06-01T10:00:01Z ERROR boom\n"
                  "2024-06-01T10:00:02Z WARN slow\n", NULL, 0), HR_CT_LOG, "timestamped log");
    is_int(detect("[INFO] building\n[INFO] compiling 3 files\n[ERROR] failed: x.c\n", NULL, 0), HR_CT_LOG,
           "level-prefixed log");
    is_int(detect("src/a.c:12:int main(void)\nsrc/b.c:40:    return 0;\nsrc/c.h:3:#define X 1\n", NULL, 0),
           HR_CT_SEARCH, "grep -n output");
    /* Search output in the forms agents meet (real git grep output; rg and ag print the same shapes). */
    is_int(detect("plugins/otel/otel.c\n187-    o->res_strings = r;\n188:    return r[o->n_res_strings++] = strdup(s);\n"
                  "189-}\n--\n299-    }\n300:    o->endpoint = strdup(ep);\n301-    o->endpoint_shown = shown_url(ep);\n"
                  "\nplugins/otel/trace.c\n12:    x = strdup(y);\n", NULL, 0),
           HR_CT_SEARCH, "heading-grouped matches with context (rg --heading -C1, git grep --heading)");
    is_int(detect("src/cost.c\n65:    return NULL;\n71:    free(p);\n\nsrc/main.c\n12:int main(void)\n"
                  "40:    return 0;\n\nlib/tbuf.c\n3:#include <stdlib.h>\n", NULL, 0),
           HR_CT_SEARCH, "heading-grouped matches of code lines (ag --group)");
    is_int(detect("lib/tbuf.c:18:12:    char *p = malloc(cap);\nlib/tbuf.c:40:9:    free(b->p);\n"
                  "src/main.c:77:5:    return x;\n", NULL, 0),
           HR_CT_SEARCH, "path:line:col: (rg --vimgrep, git grep --column)");
    is_int(detect("lib/textc.c-38-{\nlib/textc.c-39-    struct hr_tbuf *b = &o->b;\nlib/textc.c:40:    hr_tbuf_putf(b, x);\n"
                  "lib/textc.c-41-    o->hash_off[0] = b->len;\n--\nlib/my-file.c-7-    y = 1;\nlib/my-file.c:8:    z();\n", NULL, 0),
           HR_CT_SEARCH, "grep -rn -C1: context lines and -- separators");
    is_int(detect("Makefile:12:\t$(CC) -o $@ $^\nMakefile:40:clean:\nDockerfile:3:RUN make\n", NULL, 0),
           HR_CT_SEARCH, "matches in files without a dot or slash (Makefile:12:)");
    is_int(detect("12:00:01 started worker\n12:00:02 worker ready\n12:00:05 job 7 done\n", NULL, 0),
           HR_CT_LOG, "clock times are not line numbers");
    is_int(detect("2024-06-01 10:00:01 INFO a\n2024-06-01 10:00:02 INFO b\n2024-06-01 10:00:03 ERROR c\n", NULL, 0),
           HR_CT_LOG, "dates are not grep context lines");
    is_int(detect("1. install the package\n2. run make\n3. run the tests\n", NULL, 0), HR_CT_TEXT,
           "a numbered list is not search output");
    is_int(detect("diff --git a/x.c b/x.c\n--- a/x.c\n+++ b/x.c\n@@ -1,3 +1,3 @@\n-a\n+b\n", NULL, 0),
           HR_CT_DIFF, "unified diff");
    is_int(detect("#include <stdio.h>\n\nint main(void)\n{\n    printf(\"hi\\n\");\n    return 0;\n}\n", NULL, 0),
           HR_CT_CODE, "C code");
    is_int(detect("import os\n\ndef main():\n    print(os.getcwd())\n\nclass A:\n    pass\n", NULL, 0),
           HR_CT_CODE, "python code");
    /* Build output (real `make -k` of gcc 12 on the dev VM): the source echoes end in ';'
     * or '}' and "In function 'f':" in ':', which passed the code bar. */
    is_int(detect("gcc -O2 -Wall -Wextra -I/usr/include -DPROJ_VERSION=\\\"1.0\\\" -c f23.c -o f23.o\n"
                  "f23.c: In function 'unused_23':\n"
                  "f23.c:3:35: warning: unused variable 'b' [-Wunused-variable]\n"
                  "    3 | static int unused_23(int a) { int b; return a; }\n"
                  "      |                                   ^\n"
                  "f23.c: In function 'func_23':\n"
                  "f23.c:6:19: warning: comparison of integer expressions of different signedness [-Wsign-compare]\n"
                  "    6 |     for (i = 0; i < u; i++) { if (s[i] == 'x') return i; }\n"
                  "      |                   ^\n"
                  "f23.c:8:26: error: 'undeclared_counter' undeclared (first use in this function)\n"
                  "    8 |     return strlen(buf) + undeclared_counter;\n"
                  "      |                          ^~~~~~~~~~~~~~~~~~\n"
                  "f23.c:9:1: warning: control reaches end of non-void function [-Wreturn-type]\n"
                  "    9 | }\n"
                  "      | ^\n"
                  "f23.c: At top level:\n"
                  "f23.c:3:12: warning: 'unused_23' defined but not used [-Wunused-function]\n"
                  "    3 | static int unused_23(int a) { int b; return a; }\n"
                  "      |            ^~~~~~~~~\n"
                  "make: *** [Makefile:8: f23.o] Error 1\n", NULL, 0),
           HR_CT_LOG, "gcc/make build output with source echoes is a log, not code");
    is_int(detect("gcc -O2 -Wall -fno-diagnostics-show-caret -c f22.c -o f22.o\n"
                  "f22.c: In function 'func_22':\n"
                  "f22.c:6:19: warning: comparison of integer expressions of different signedness [-Wsign-compare]\n"
                  "f22.c: At top level:\n"
                  "f22.c:3:12: warning: 'unused_22' defined but not used [-Wunused-function]\n"
                  "gcc -O2 -Wall -fno-diagnostics-show-caret -c f23.c -o f23.o\n"
                  "f23.c: In function 'func_23':\n"
                  "f23.c:8:26: error: 'undeclared_counter' undeclared (first use in this function)\n"
                  "f23.c: At top level:\n"
                  "make: *** [Makefile:8: f23.o] Error 1\n", NULL, 0),
           HR_CT_LOG, "gcc diagnostics without carets: a log, not code or grep output");
    is_int(detect("In file included from src/main.c:3:\n"
                  "                 from src/app.c:1:\n"
                  "src/util.h:12:1: error: unknown type name 'bool'\n"
                  "   12 | bool ready(void);\n"
                  "      | ^~~~\n"
                  "  +++ |+#include <stdbool.h>\n"
                  "make[1]: *** [Makefile:40: app.o] Error 1\n"
                  "make: *** [Makefile:12: all] Error 2\n", NULL, 0),
           HR_CT_LOG, "include chain, fix-it line and recursive make");
    /* Real code with what build output looks like in it stays code. */
    is_int(detect("static int flags(int a)\n{\n    int x = FLAG_A\n            | FLAG_B;\n    switch (a) {\n"
                  "    case 1:\n        return x;\n    default:\n        error(\"bad\");\n    }\n    return 0;\n}\n", NULL, 0),
           HR_CT_CODE, "C with a '|' continuation and case labels is code");
    is_int(detect("fn size(n: u32) -> &'static str {\n    match n {\n        0 => \"none\",\n"
                  "        1 | 2 => \"small\",\n        _ => \"big\",\n    }\n}\n", NULL, 0),
           HR_CT_CODE, "rust match arms '1 | 2 =>' are code");
    /* JSON-lines logs: a record ends in '}' (a code line) and Caddy's and
     * pino's have no date near the start; Traefik's "2026-12-07T…" after a
     * "10.0.0.31:" read as a grep context line. All went upstream whole. */
    is_int(detect("{\"level\":\"info\",\"ts\":1765101600.37,\"logger\":\"http.log.access.log0\",\"msg\":\"handled request\","
                  "\"request\":{\"remote_ip\":\"10.0.0.1\",\"method\":\"GET\",\"uri\":\"/api/items/7\"},\"size\":5120,\"status\":200}\n"
                  "{\"level\":\"info\",\"ts\":1765101600.74,\"logger\":\"http.log.access.log0\",\"msg\":\"handled request\","
                  "\"request\":{\"remote_ip\":\"10.0.0.2\",\"method\":\"GET\",\"uri\":\"/login\"},\"size\":153,\"status\":404}\n"
                  "{\"level\":\"info\",\"ts\":1765101601.11,\"logger\":\"http.log.access.log0\",\"msg\":\"handled request\","
                  "\"request\":{\"remote_ip\":\"10.0.0.3\",\"method\":\"GET\",\"uri\":\"/\"},\"size\":5120,\"status\":200}\n", NULL, 0),
           HR_CT_LOG, "Caddy's JSON access log is a log, not code");
    is_int(detect("{\"ClientAddr\":\"10.0.0.31:40311\",\"DownstreamStatus\":502,\"RequestPath\":\"/api/orders/7\",\"level\":\"info\","
                  "\"msg\":\"\",\"time\":\"2026-12-07T10:05:11Z\"}\n"
                  "{\"ClientAddr\":\"10.0.0.32:40312\",\"DownstreamStatus\":200,\"RequestPath\":\"/\",\"level\":\"info\","
                  "\"msg\":\"\",\"time\":\"2026-12-07T10:05:12Z\"}\n"
                  "{\"ClientAddr\":\"10.0.0.33:40313\",\"DownstreamStatus\":200,\"RequestPath\":\"/\",\"level\":\"info\","
                  "\"msg\":\"\",\"time\":\"2026-12-07T10:05:13Z\"}\n", NULL, 0),
           HR_CT_LOG, "Traefik's JSON access log is a log, not search output");
    is_int(detect("{\"level\":30,\"time\":1765101600000,\"pid\":4242,\"reqId\":\"req-1000\",\"msg\":\"incoming request\"}\n"
                  "{\"level\":50,\"time\":1765101600002,\"pid\":4242,\"reqId\":\"req-1000\",\"msg\":\"connect ECONNREFUSED\"}\n"
                  "{\"level\":30,\"time\":1765101600370,\"pid\":4242,\"reqId\":\"req-1001\",\"msg\":\"timeout\"}\n", NULL, 0),
           HR_CT_LOG, "pino's JSON lines are a log");
    is_int(detect("{\"name\":\"libzstd1\",\"version\":\"1.5.4+dfsg2-5\",\"status\":\"installed\"}\n"
                  "{\"name\":\"libzstd-dev\",\"version\":\"1.5.4+dfsg2-5\",\"status\":\"installed\"}\n"
                  "{\"name\":\"zstd\",\"version\":\"1.5.4+dfsg2-5\",\"msg\":\"timeout\"}\n", NULL, 0),
           HR_CT_CODE, "JSON rows without a level or time key (jq -c of data) are typed as before");
    is_int(detect("<!DOCTYPE html><html><body><p>x</p></body></html>", NULL, 0), HR_CT_HTML, "html doctype");
    is_int(detect("<div>\n<p>hello</p>\n</div>\n", NULL, 0), HR_CT_HTML, "html fragment");
    is_int(detect("The build finished. Three tests were skipped because the network was down.", NULL, 0),
           HR_CT_TEXT, "prose");
    is_int(detect("", NULL, 0), HR_CT_TEXT, "empty text");
    is_int(detect("   \n\n  ", NULL, 0), HR_CT_TEXT, "whitespace only");
    {
        /* Long input: only the sample is scanned; the cut last line does not matter. */
        size_t n = 200000;
        char *big = malloc(n + 1);
        for (size_t i = 0; i < n; i++)
            big[i] = "2024-06-01 12:00:00 INFO ok\n"[i % 28];
        big[n] = '\0';
        is_int(detect(big, NULL, 0), HR_CT_LOG, "200 KB log sampled");
        free(big);
    }
    {
        json_t *body = json_pack("{s:s,s:[{s:s,s:s,s:s},{s:s,s:s,s:s},{s:s,s:s,s:s}]}", "model", "m",
                                 "messages", "role", "tool", "tool_call_id", "a", "content", "[1]",
                                 "role", "tool", "tool_call_id", "b", "content", "x.c:1:y",
                                 "role", "tool", "tool_call_id", "c", "content", "[2]");
        struct fh_request r;
        fh_request_init(&r, body, HR_PROVIDER_OPENAI, "");
        json_decref(body);
        headroom_plugin.apply(state, &r.req);
        is_str(r.tag, "router:json_array=2,search=1", "tag counts per type in enum order");
        fh_request_free(&r);
    }
    json_t *st = fh_stats("router");
    json_t *ct = json_object_get(st, "content_types");
    ok(json_is_object(ct), "stats block has content_types");
    is_int(json_integer_value(json_object_get(ct, "json_array")), 3, "stats: json_array count");
    is_int(json_integer_value(json_object_get(ct, "text")), 6, "stats: text count");
    is_int(json_integer_value(json_object_get(ct, "diff")), 1, "stats: diff count");
    json_decref(st);
    {
        struct hr_conf bad;
        void *s2 = NULL;
        fh_set_log_level(-1);
        fh_conf(&bad, headroom_plugin.conf_keys, "sample_bytes", "1", NULL);
        is_int(headroom_plugin.init(fh_host(), &inst, &bad, &s2), HR_EINVAL, "sample_bytes 1 refused");
        ok(strstr(fh_log(), "sample_bytes must be 64..16777216 (got 1)") != NULL, "error names the key and range");
    }
    {
        /* The stages after it type a text wrapped in JSON with its sample (1.9). */
        struct hr_conf small;
        void *s2 = NULL;
        fh_conf(&small, headroom_plugin.conf_keys, "sample_bytes", "4096", "sample_lines", "8", NULL);
        is_int(headroom_plugin.init(fh_host(), &inst, &small, &s2), 0, "init with sample_bytes 4096, sample_lines 8");
        json_t *body = json_pack("{s:s,s:[{s:s,s:s,s:s}]}", "model", "gpt-4o", "messages", "role", "tool",
                                 "tool_call_id", "c", "content", "{\"output\":\"a log\"}");
        struct fh_request r;
        fh_request_init(&r, body, HR_PROVIDER_OPENAI, "");
        json_decref(body);
        is_int((long long)(r.req.sample_bytes + r.req.sample_lines), 0, "before the router: no sample on the request");
        headroom_plugin.apply(s2, &r.req);
        ok(r.req.sample_bytes == 4096 && r.req.sample_lines == 8,
           "the router leaves its sample on the request for the stages after it (%zu, %zu)", r.req.sample_bytes,
           r.req.sample_lines);
        fh_request_free(&r);
        fh_drop_stats(s2);
        headroom_plugin.fini(s2);
    }
    headroom_plugin.fini(state);
    fh_reset();
    return tap_exit();
}
