/* t/json_load_test.c — hr_json_load gives exactly json_loadb's result: the
 * same tree, byte for byte when dumped (key order, duplicate keys, escapes,
 * numbers), and on bad input the same error with line and column. */
#include <stdlib.h>
#include <string.h>
#include "json_dump.h"
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

/* Value strings with escapes are decoded by the scan (hr_json_scan_decode)
 * and copied by the builder: every escape at every offset of a 16-byte
 * block, runs of every length between escapes, strings that end near the
 * end of the text, more strings than the first allocation holds, and the
 * same refusals as jansson when something after an escape is wrong. */
static void decoded_by_the_scan(void)
{
    static const char *const escapes[] = {"\\n", "\\\"", "\\\\", "\\/", "\\t", "\\u00e9", "\\u20ac",
                                          "\\ud83d\\ude00", "\\u0041"};
    char *t = malloc(1 << 16);
    int bad = 0, n = 0;
    for (size_t e = 0; e < sizeof escapes / sizeof *escapes; e++)
        for (int before = 0; before < 40; before++)
            for (int after = 0; after < 20; after += 3) {
                /* {"k":"<before x's><escape><after y's>","k\u0032":"<escape>x"} with an escaped key */
                int len = sprintf(t, "{\"k\":\"%.*s%s%.*s\",\"k\\u0032\":\"%sx\"}", before,
                                  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", escapes[e], after,
                                  "yyyyyyyyyyyyyyyyyyyy", escapes[e]);
                json_error_t e1, e2;
                json_t *a = hr_json_load(t, (size_t)len, &e1), *b = json_loadb(t, (size_t)len, 0, &e2);
                char *da = dump(a), *db = dump(b);
                bad += !da || !db || strcmp(da, db);
                n++;
                free(da);
                free(db);
                json_decref(a);
                json_decref(b);
            }
    ok(!bad, "%d strings with an escape at every offset: jansson's strings (%d differ)", n, bad);
    /* Many escaped strings, one long one, in one document, twice (the
     * decoded text is kept between calls). */
    size_t len = 0;
    len += (size_t)sprintf(t + len, "[");
    for (int i = 0; i < 300; i++) len += (size_t)sprintf(t + len, "\"s%d\\n\\u00e9\",", i);
    len += (size_t)sprintf(t + len, "\"");
    for (int i = 0; i < 3000; i++) len += (size_t)sprintf(t + len, "%s", i % 3 ? "ab\\\"" : "c\\\\d ");
    len += (size_t)sprintf(t + len, "\"]");
    for (int round = 0; round < 2; round++)
        same_as_jansson(round ? "300 escaped strings and a long one, again" : "300 escaped strings and a long one",
                        t, len);
    /* Wrong after an escape, in a long string and in a short one. */
    static const char *const wrong[][2] = {
        {"invalid UTF-8 after an escape", "[\"ok\\n ok\\n\xff\"]"},
        {"a cut UTF-8 sequence after an escape", "[\"ok\\n\xc3\"]"},
        {"a control byte after an escape", "[\"ok\\t\x01\"]"},
        {"a bad \\u after an escape", "[\"ok\\n\\u12G4\"]"},
        {"\\u0000 after an escape", "[\"ok\\n\\u0000\"]"},
        {"a lone surrogate after an escape", "[\"ok\\n\\udc00\"]"},
        {"cut inside an escaped string", "[\"ok\\n ok"},
        {"cut inside an escape", "[\"ok\\n ok\\"},
        {"a bad key after an escaped value", "{\"a\":\"x\\ny\",\"b\\q\":1}"},
    };
    for (size_t i = 0; i < sizeof wrong / sizeof *wrong; i++) {
        same_as_jansson(wrong[i][0], wrong[i][1], strlen(wrong[i][1]));
        /* the same in a long string: 2000 escapes before it */
        size_t l = (size_t)sprintf(t, "[\"");
        for (int k = 0; k < 2000; k++) l += (size_t)sprintf(t + l, "row\\n");
        l += (size_t)sprintf(t + l, "%s", wrong[i][1] + 2);
        char what[120];
        snprintf(what, sizeof what, "%s, in a long string", wrong[i][0]);
        same_as_jansson(what, t, l);
    }
    /* The strict parse after a decoded document: a duplicate key among escaped strings. */
    const char *dup = "{\"a\":\"x\\ny\",\"b\":\"\\u00e9\",\"a\":\"z\\t\"}";
    json_error_t e;
    json_t *d = hr_json_load_strict(dup, strlen(dup), &e);
    ok(!d && strstr(e.text, "duplicate object key 'a'"), "escaped strings around a repeated key: refused, naming it");
    json_decref(d);
    free(t);
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
    /* An integer beyond int64 is valid JSON that jansson refuses ("too big
     * integer"): read as a real holding its nearest double, written back as
     * spelled; beyond a double (309 digits) refused with jansson's message. */
    {
        static const char big[] = "[18446744073709551615,-9223372036854775809,9223372036854775807]";
        json_error_t e;
        json_t *j = hr_json_load(big, sizeof big - 1, &e);
        ok(j && json_is_real(json_array_get(j, 0)) && json_real_value(json_array_get(j, 0)) == 18446744073709551615.0 &&
               json_is_real(json_array_get(j, 1)) && json_real_value(json_array_get(j, 1)) == -9223372036854775809.0 &&
               json_is_integer(json_array_get(j, 2)),
           "integers beyond int64 read as reals (jansson refuses them); int64's own stay integers");
        size_t n;
        char *out = hr_json_dump_compact(j, &n);
        is_str(out, big, "written back byte for byte");
        free(out);
        json_decref(j);
        char huge[320] = "[1";
        memset(huge + 2, '0', 308);
        strcpy(huge + 310, "]");
        j = hr_json_load(huge, strlen(huge), &e);
        ok(!j && strstr(e.text, "too big integer"), "309 digits (beyond a double): refused, %s", j ? "accepted" : e.text);
        json_decref(j);
        huge[309] = ']';
        huge[310] = '\0';
        j = hr_json_load(huge, strlen(huge), &e);
        ok(json_is_real(json_array_get(j, 0)) && json_real_value(json_array_get(j, 0)) == 1e307,
           "308 digits: the real 1e307");
        json_decref(j);
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
    decoded_by_the_scan();
    tap_done();
    return tap_failed != 0;
}
