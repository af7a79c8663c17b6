/* t/json_load_test.c — hr_json_load gives exactly json_loadb's result: the
 * same tree, byte for byte when dumped (key order, duplicate keys, escapes,
 * numbers), and on bad input the same error with line and column. */
#include <stdlib.h>
#include <string.h>
#include "json_load.h"
#include "json_scan.h"
#include "par.h"
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

/* The two-piece parse (hr_json_load_split) against the one-piece one, with
 * the cut searched from every byte (every `step`-th): the same tree, or the
 * same error text, line and column. Returns how many cuts gave two pieces. */
static int split_same(const char *what, const char *text, size_t len, int strict, size_t step)
{
    json_error_t e1, e2;
    json_t *ref = strict ? hr_json_load_strict(text, len, &e1) : hr_json_load(text, len, &e1);
    char *want = dump(ref);
    int two = 0, bad = 0;
    size_t first_bad = 0;
    for (size_t from = 0; from <= len; from += step) {
        int pieces = 0;
        memset(&e2, 0, sizeof e2);
        json_t *got = hr_json_load_split(text, len, &e2, strict, from, &pieces);
        char *have = dump(got);
        int same = ref ? have && !strcmp(want, have)
                       : !got && !strcmp(e1.text, e2.text) && e1.line == e2.line && e1.column == e2.column &&
                             e1.position == e2.position;
        if (!same && !bad++) first_bad = from;
        two += pieces > 1;
        free(have);
        json_decref(got);
    }
    ok(!bad, "%s: the two-piece parse gives the one-piece %s from every cut (%d of them in two pieces)", what,
       ref ? "tree" : "error", two);
    if (bad) tap_diag("  %d cuts differ, the first searched from byte %zu (%s)", bad, first_bad, ref ? "" : e1.text);
    free(want);
    json_decref(ref);
    return two;
}

/* An agent request as clients send it: a root object, "messages" of
 * objects, tool outputs as strings; `mid` goes into the fourth message's
 * content (on the helper's side of most cuts), `early` into the first's,
 * `after` after the array. */
static char *agent(const char *early, const char *mid, const char *after, int spaced)
{
    const char *sep = spaced ? ", " : ",";
    size_t cap = 4096 + strlen(early) + strlen(mid) + strlen(after);
    char *t = malloc(cap);
    snprintf(t, cap,
             "{\"model\":\"gpt-4o\"%s\"messages\":[{\"role\":\"user\",\"content\":\"find it%s\"}%s"
             "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\"}]}%s"
             "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"[{\\\"a\\\":1},{\\\"a\\\":2}] x},{} \\u00e9\"}%s"
             "{\"role\":\"tool\",\"content\":\"rows: 1, 2, 3%s\",\"n\":[1,-2.5e3,true,false,null,{},[]]}%s"
             "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\"}]}]%s}",
             sep, early, sep, sep, sep, mid, sep, after);
    return t;
}

static void split_tests(int two_wanted)
{
    static const struct {
        const char *what, *early, *mid, *after;
        int strict;
    } v[] = {
        {"agent request", "", "", "", 1},
        {"agent request, any keys", "", "", "", 0},
        {"a key twice in an element after the cut", "", "\",\"n\":1,\"n\":\"2", "", 1},
        {"a key twice in an element before the cut", "\",\"role\":\"x", "", "", 1},
        {"a key twice before and after the cut", "\",\"role\":\"x", "\",\"n\":1,\"n\":\"2", "", 1},
        {"a root key twice, after the array", "", "", ",\"model\":\"x\"", 1},
        {"a root key twice, the array's", "", "", ",\"messages\":[]", 1},
        {"a key twice after the cut, any keys", "", "\",\"n\":1,\"n\":\"2", "", 0},
        {"invalid UTF-8 after the cut", "", "\xff\xfe", "", 1},
        {"invalid UTF-8 before the cut", "\xc3(", "", "", 1},
        {"invalid UTF-8 on both sides", "\xc3(", "\xed\xa0\x80", "", 1},
        {"bad escape after the cut", "", "\\q", "", 1},
        {"control byte after the cut", "", "\x01", "", 1},
        {"trailing garbage", "", "", "} x", 1},
        {"a number too big after the cut", "", "\",\"k\":99999999999999999999,\"j\":\"", "", 1},
    };
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
        for (int spaced = 0; spaced <= 1; spaced++) {
            char *t = agent(v[i].early, v[i].mid, v[i].after, spaced);
            char what[160];
            snprintf(what, sizeof what, "%s%s", v[i].what, spaced ? " (spaced)" : "");
            int two = split_same(what, t, strlen(t), v[i].strict, 1);
            if (i < 2 && two_wanted) ok(two > 0, "%s: some cuts are taken", what);
            /* Truncated anywhere: every length, the cut searched from a few places. */
            if (i == 0 && !spaced) {
                size_t len = strlen(t), bad = 0;
                for (size_t n = 0; n < len; n++) {
                    json_error_t e1, e2;
                    json_t *ref = hr_json_load_strict(t, n, &e1);
                    for (size_t from = n / 3; from < n; from += n / 3 + 1) {
                        int pieces;
                        json_t *got = hr_json_load_split(t, n, &e2, 1, from, &pieces);
                        if (got || ref || strcmp(e1.text, e2.text) || e1.line != e2.line || e1.column != e2.column)
                            bad++;
                        json_decref(got);
                    }
                    json_decref(ref);
                }
                ok(!bad, "truncated agent request, every length: the one-piece error (%zu differ)", bad);
            }
            free(t);
        }
    }
    /* Nesting: an element after the cut nested to jansson's limit, and one past it. */
    for (int depth = 2048; depth <= 2049; depth++) {
        size_t inner = (size_t)depth - 3; /* the root, "messages", its element */
        char *t = malloc(inner * 2 + 200);
        int n = sprintf(t, "{\"messages\":[{\"role\":\"user\"},{\"x\":");
        memset(t + n, '[', inner);
        memset(t + n + inner, ']', inner);
        strcpy(t + n + 2 * inner, "}]}");
        char what[80];
        snprintf(what, sizeof what, "an element after the cut nested to depth %d", depth);
        int two = split_same(what, t, strlen(t), 1, 7);
        if (depth == 2048 && two_wanted) ok(two > 0, "%s: some cuts are taken", what);
        free(t);
    }
    /* The root itself an array of objects; a big array that is not the
     * root's member (the guess is refused, the tree the same). */
    const char *root_array = "[{\"a\":1},{\"b\":[{\"c\":2},{\"d\":3}]}, {\"e\":\"},{}\"}]";
    int two = split_same("root array", root_array, strlen(root_array), 1, 1);
    if (two_wanted) ok(two > 0, "root array: some cuts are taken");
    const char *nested = "{\"a\":{\"messages\":[{\"x\":1},{\"y\":2}]},\"b\":[[{\"z\":3},{\"w\":4}]]}";
    is_int(split_same("no array of the root's", nested, strlen(nested), 1, 1), 0,
           "no array of the root's: never two pieces");
    /* A body of agent size (2000-row tool outputs) with the default cut. */
    json_t *msgs = json_array();
    for (int i = 0; i < 12; i++) {
        json_t *rows = json_array();
        for (int r = 0; r < 300; r++)
            json_array_append_new(rows, json_pack("{s:i,s:s,s:f}", "id", r, "msg", r % 7 ? "GET \"ok\"\n\u00e9" : "ERR", "ms", r * 1.5));
        char *out = json_dumps(rows, JSON_COMPACT);
        json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "tool", "content", out));
        free(out);
        json_decref(rows);
    }
    json_t *req = json_pack("{s:s,s:o}", "model", "gpt-4o", "messages", msgs);
    char *big = json_dumps(req, JSON_COMPACT);
    size_t blen = strlen(big);
    json_error_t e;
    int pieces = 0;
    json_t *a = hr_json_load_split(big, blen, &e, 1, blen / 2, &pieces), *b = json_loadb(big, blen, 0, &e);
    char *da = dump(a), *db = dump(b);
    ok(da && db && !strcmp(da, db) && pieces == 5, "a %zu KB agent request: five pieces, jansson's tree", blen / 1024);
    free(da);
    free(db);
    json_decref(a);
    json_decref(b);
    free(big);
    json_decref(req);
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
    /* Two pieces: without helpers (the second piece runs on the caller when
     * it joins), then with one, whose piece runs while the caller works. */
    split_tests(1);
    if (hr_par_start(1) == 0) {
        split_tests(1);
        hr_par_stop();
    }
    tap_done();
    return tap_failed != 0;
}
