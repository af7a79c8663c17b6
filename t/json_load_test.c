/* t/json_load_test.c — hr_json_load gives exactly json_loadb's result: the
 * same tree, byte for byte when dumped (key order, duplicate keys, escapes,
 * numbers), and on bad input the same error with line and column. */
#include <stdlib.h>
#include <string.h>
#include "json_load.h"
#include "json_scan.h"
#include "tap.h"

/* Dumped with every flag that could hide a difference off: compact, key
 * order as built, reals at full precision. */
static char *dump(const json_t *j)
{
    return j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17)) : NULL;
}

static void same_as_jansson(const char *what, const char *text, size_t len)
{
    json_error_t e1, e2;
    json_t *mine = hr_json_load(text, len, &e1);
    json_t *ref = json_loadb(text, len, 0, &e2);
    char *a = dump(mine), *b = dump(ref);
    if (ref)
        /* The scanner accepting means the tree came from the fast builder,
         * not from json_loadb as a fallback. */
        ok(a && b && !strcmp(a, b) && hr_json_scan(text, len, 0, NULL, NULL) == 0,
           "%s: same tree as json_loadb, built without it", what);
    else
        ok(!mine && !strcmp(e1.text, e2.text) && e1.line == e2.line && e1.column == e2.column,
           "%s: refused like json_loadb (%s, line %d, column %d)", what, e2.text, e2.line, e2.column);
    free(a);
    free(b);
    json_decref(mine);
    json_decref(ref);
}

int main(void)
{
    static const char *const cases[][2] = {
        {"empty object", "{}"},
        {"nested", " { \"a\" : [ 1 , -2.5e3 , true , false , null , { } , [ ] ] , \"b\" : \"x\" } "},
        {"escapes", "{\"s\":\"tab\\t quote\\\" back\\\\ slash\\/ uni\\u00e9 pair\\ud83d\\ude00 end\\\\\"}"},
        {"key with escapes", "{\"k\\\"ey\":1,\"\\u0041\":2}"},
        {"duplicate keys: last value, first position", "{\"a\":1,\"b\":2,\"a\":3}"},
        {"NUL after a number (jansson drops it)", "[1\0]"},
        {"big and small numbers", "[9223372036854775807,-9223372036854775808,1e308,5e-324,-0,-0.0,0.1]"},
        {"integer overflow", "[9223372036854775808]"},
        {"truncated", "{\"a\":[1,2"},
        {"trailing garbage", "{} x"},
        {"bad escape", "[\"\\q\"]"},
        {"NUL escape", "[\"\\u0000\"]"},
        {"lone surrogate", "[\"\\ud800\"]"},
        {"invalid UTF-8", "[\"\xff\"]"},
        {"scalar at top level", "42"},
        {"empty input", ""},
        {"word run", "[truex]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *t = cases[i][1];
        size_t len = strlen(t);
        if (!strcmp(cases[i][0], "NUL after a number (jansson drops it)")) len = 4;
        same_as_jansson(cases[i][0], t, len);
    }
    /* Deep nesting at jansson's limit and one past it. */
    for (int depth = 2048; depth <= 2049; depth++) {
        char *deep = malloc((size_t)depth * 2 + 1);
        memset(deep, '[', (size_t)depth);
        memset(deep + depth, ']', (size_t)depth);
        deep[depth * 2] = '\0';
        same_as_jansson(depth == 2048 ? "nesting depth 2048" : "nesting depth 2049", deep, (size_t)depth * 2);
        free(deep);
    }
    /* An agent-sized request: a 2000-row tool output as one big string (with
     * escapes and non-ASCII), and the same rows as JSON, compact and indented. */
    json_t *rows = json_array();
    for (int i = 0; i < 2000; i++)
        json_array_append_new(rows, json_pack("{s:i,s:s,s:f,s:b,s:n,s:{s:s}}", "id", i, "msg",
                                              i % 7 ? "GET /api \"ok\"\n\tcaf\u00e9 \u2713" : "ERROR timeout",
                                              "ms", i * 1.25, "ok", i % 3, "extra", "meta", "k", "v"));
    char *rows_text = json_dumps(rows, JSON_COMPACT);
    json_t *req = json_pack("{s:s,s:[{s:s,s:s},{s:s,s:s,s:s}]}", "model", "gpt-4o", "messages", "role", "user",
                            "content", "why?", "role", "tool", "tool_call_id", "c1", "content", rows_text);
    for (int indent = 0; indent <= 2; indent += 2) {
        char *t = json_dumps(req, indent ? JSON_INDENT(indent) : JSON_COMPACT);
        same_as_jansson(indent ? "indented agent request" : "compact agent request", t, strlen(t));
        free(t);
        t = json_dumps(rows, indent ? JSON_INDENT(indent) : JSON_COMPACT);
        same_as_jansson(indent ? "indented 2000-row array" : "compact 2000-row array", t, strlen(t));
        free(t);
    }
    free(rows_text);
    json_decref(rows);
    json_decref(req);
    tap_done();
    return tap_failed != 0;
}
