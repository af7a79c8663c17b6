/* t/json_scan_test.c — plugins/common/json_scan.c: every accept/reject case is checked
 * against jansson's json_loadb too, so the scanner cannot drift from the parser the
 * plugins used before; plus the rows info, error messages and the decoders. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "json_scan.h"
#include "tap.h"

/* Scan `len` bytes with `flags`; the verdict must equal jansson's. Returns scan's rc. */
static int scan(const char *text, size_t len, unsigned flags, struct hr_json_info *info,
                struct hr_json_error *err)
{
    int rc = hr_json_scan(text, len, flags, info, err);
    json_t *j = json_loadb(text, len, flags & HR_JSON_REJECT_DUPLICATES ? JSON_REJECT_DUPLICATES : 0, NULL);
    if ((rc == 0) != (j != NULL))
        tap_diag("disagrees with jansson (scan %d, jansson %s): %.60s", rc, j ? "accepts" : "rejects", text);
    ok((rc == 0) == (j != NULL), "same verdict as jansson: %.50s", text);
    json_decref(j);
    return rc;
}

static void good(const char *text)
{
    struct hr_json_error err = {0, NULL};
    int rc = scan(text, strlen(text), HR_JSON_REJECT_DUPLICATES, NULL, &err);
    if (rc)
        tap_diag("refused at %zu: %s", err.pos, err.msg);
    is_int(rc, 0, "accepted: %.50s", text);
}

/* `why` must occur in the error message, which tells the user what was wrong. */
static void bad_n(const char *text, size_t len, unsigned flags, const char *why)
{
    struct hr_json_error err = {0, NULL};
    is_int(scan(text, len, flags, NULL, &err), -22, "refused: %.50s", text);
    ok(err.msg && strstr(err.msg, why) && err.pos <= len, "message '%s' says '%s'",
       err.msg ? err.msg : "(none)", why);
}

static void bad(const char *text, const char *why)
{
    bad_n(text, strlen(text), 0, why);
}

static void rows(const char *text, size_t want_rows, size_t want_member, const char *what)
{
    struct hr_json_info info;
    is_int(scan(text, strlen(text), HR_JSON_REJECT_DUPLICATES, &info, NULL), 0, "%s: accepted", what);
    ok(info.rows == want_rows && info.rows_member == want_member, "%s: rows %zu member %zu", what,
       info.rows, info.rows_member);
}

static char *nest(size_t depth, const char *inner)
{
    size_t il = strlen(inner);
    char *s = malloc(2 * depth + il + 1);
    memset(s, '[', depth);
    memcpy(s + depth, inner, il);
    memset(s + depth + il, ']', depth);
    s[2 * depth + il] = '\0';
    return s;
}

int main(void)
{
    /* Accepted. */
    good("[]");
    good("{}");
    good(" \t\r\n[1, -0, 0.5, -1.25e-3, 1E+2, 2e-400, 1e308]\n ");
    good("[-9223372036854775808, 9223372036854775807]");
    good("{\"a\":{\"b\":[true,false,null,\"x\"]}}");
    good("[\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\ud83d\\ude00\"]");
    good("[\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xed\x9f\xbf \xee\x80\x80 \xf4\x8f\xbf\xbf\"]");
    good("[\"\x7f\"]");
    good("{\"a\":1,\"b\":{\"a\":2}}"); /* same key in different objects */

    /* Refused, with a message that names the problem. */
    bad("", "'[' or '{' expected");
    bad("   ", "'[' or '{' expected");
    bad("1", "'[' or '{' expected");
    bad("\"s\"", "'[' or '{' expected");
    bad("[1,]", "value expected");
    bad("[1 2]", "',' or ']' expected");
    bad("{\"a\" 1}", "':' expected");
    bad("{\"a\":1,}", "object key");
    bad("{1:2}", "object key");
    bad("[1]x", "end of input expected");
    bad("[1][2]", "end of input expected");
    bad("[", "premature end");
    bad("[\"abc", "premature end");
    bad("[tru]", "true, false or null");
    bad("[truex]", "true, false or null");
    bad("[nul]", "true, false or null");
    bad("[01]", "leading zero");
    bad("[-]", "invalid number");
    bad("[1.]", "digit expected after '.'");
    bad("[.5]", "value expected");
    bad("[1e]", "exponent");
    bad("[1e+]", "exponent");
    bad("[+1]", "value expected");
    bad("[9223372036854775808]", "too big integer");
    bad("[-9223372036854775809]", "too big negative integer");
    bad("[123456789012345678901234567890]", "too big integer");
    bad("[1e309]", "real number overflow");
    bad("[-1.8e308]", "real number overflow");
    bad("[\"a\tb\"]", "control character");
    bad("[\"a\nb\"]", "control character");
    bad("[\"\\x\"]", "invalid escape");
    bad("[\"\\u12\"]", "invalid escape");
    bad("[\"\\u12g4\"]", "invalid escape");
    bad("[\"\\u0000\"]", "\\u0000");
    bad("{\"\\u0000\":1}", "\\u0000");
    bad("[\"\\ud800\"]", "high surrogate");
    bad("[\"\\ud800\\u0041\"]", "high surrogate");
    bad("[\"\\udc00\"]", "low surrogate");
    bad("[\"\xc3\"]", "invalid UTF-8");          /* cut sequence */
    bad("[\"\xc0\xaf\"]", "invalid UTF-8");      /* overlong */
    bad("[\"\xe0\x80\xaf\"]", "invalid UTF-8");  /* overlong */
    bad("[\"\xed\xa0\x80\"]", "invalid UTF-8");  /* encoded surrogate */
    bad("[\"\xf4\x90\x80\x80\"]", "invalid UTF-8"); /* above U+10FFFF */
    bad("[\"\xf5\x80\x80\x80\"]", "invalid UTF-8");
    bad("[\"\x80\"]", "invalid UTF-8");          /* lone continuation byte */
    bad("[\xc3\xa9]", "value expected");         /* non-ASCII outside a string */
    bad_n("{\"a\":1,\"a\":2}", 13, HR_JSON_REJECT_DUPLICATES, "duplicate object key");
    bad_n("{\"a\":1,\"\\u0061\":2}", 18, HR_JSON_REJECT_DUPLICATES, "duplicate object key");
    bad_n("[{\"x\":{\"k\":1,\"b\":2,\"k\":3}}]", 26, HR_JSON_REJECT_DUPLICATES, "duplicate object key");

    /* Duplicates are fine without the flag (jansson keeps the last one). */
    {
        const char *t = "{\"a\":1,\"a\":2}";
        is_int(scan(t, strlen(t), 0, NULL, NULL), 0, "duplicate keys accepted without the flag");
    }
    /* A wide object takes the sorted duplicate check. */
    {
        char buf[4096];
        size_t l = 0;
        buf[l++] = '{';
        for (int i = 0; i < 200; i++)
            l += (size_t)snprintf(buf + l, sizeof buf - l, "%s\"k%d\":%d", i ? "," : "", i, i);
        buf[l++] = '}';
        buf[l] = '\0';
        is_int(scan(buf, l, HR_JSON_REJECT_DUPLICATES, NULL, NULL), 0, "200 distinct keys accepted");
        memcpy(buf + l - 1, ",\"k77\":0}", 10);
        bad_n(buf, strlen(buf), HR_JSON_REJECT_DUPLICATES, "duplicate object key");
    }

    /* jansson's lexer drops a NUL byte right after a number or a word. */
    is_int(scan("[1\0,2]", 6, 0, NULL, NULL), 0, "NUL after a number is dropped, as in jansson");
    is_int(scan("[true\0]", 7, 0, NULL, NULL), 0, "NUL after a word is dropped, as in jansson");
    bad_n("[1\0\0]", 5, 0, "',' or ']' expected");
    bad_n("[\"a\"\0]", 6, 0, "',' or ']' expected");
    bad_n("[]\0", 3, 0, "end of input expected");

    /* Depth: jansson allows 2048 nested values. */
    {
        char *s = nest(2048, "");
        is_int(scan(s, strlen(s), 0, NULL, NULL), 0, "2048 nested arrays accepted");
        free(s);
        s = nest(2047, "1");
        is_int(scan(s, strlen(s), 0, NULL, NULL), 0, "a number inside 2047 arrays accepted");
        free(s);
        s = nest(2049, "");
        bad_n(s, strlen(s), 0, "nesting depth");
        free(s);
        s = nest(2048, "1");
        bad_n(s, strlen(s), 0, "nesting depth");
        free(s);
    }

    /* Rows: the array of objects smart_crusher works on. */
    rows("[{\"a\":1},{}]", 2, 0, "root array of objects");
    rows("[{\"a\":1},2]", 0, 0, "root array with a scalar");
    rows("[]", 0, 0, "empty root array");
    rows("{\"m\":1,\"r\":[{},{},{}],\"s\":[{}]}", 3, 1, "largest member array");
    rows("{\"a\":[{}],\"b\":[{}]}", 1, 0, "first of equal size wins");
    rows("{\"a\":[{},1,{}],\"b\":[{},{}]}", 2, 1, "an array with a scalar is skipped");
    rows("{\"a\":{\"b\":[{},{}]}}", 0, 0, "two levels down does not count");
    rows("{\"a\":[[{}],[{}]]}", 0, 0, "arrays of arrays do not count");

    /* Strings are read a block (16 or 8 bytes) at a time: each escape, UTF-8
     * sequence and bad byte, at every offset of a block and across its end,
     * gets jansson's verdict, the same message and, when accepted, the
     * decoding jansson gives (hr_json_unescape and hr_json_read_string). */
    {
        static const struct { const char *piece, *why; } pieces[] = {
            {"\\\"", NULL}, {"\\\\", NULL}, {"\\/", NULL}, {"\\n", NULL}, {"\\\\\\\"", NULL},
            {"\\u00e9", NULL}, {"\\ud83d\\ude00", NULL}, {"\xc3\xa9", NULL}, {"\xe2\x82\xac", NULL},
            {"\xf0\x9f\x98\x80", NULL}, {"\\x", "invalid escape"}, {"\\u12g4", "invalid escape"},
            {"\\u0000", "\\u0000"}, {"\\ud800x", "high surrogate"}, {"\x01", "control character"},
            {"\x7f", NULL}, {"\xc3\x28", "invalid UTF-8"}, {"\xed\xa0\x80", "invalid UTF-8"},
            {"\xe2\x82", "invalid UTF-8"}, {"\"", "',' or ']' expected"},
        };
        for (size_t k = 0; k < sizeof pieces / sizeof pieces[0]; k++) {
            int wrong = 0;
            for (size_t at = 0; at <= 40 && !wrong; at++) {
                for (size_t tail = 0; tail <= 20 && !wrong; tail += 19) {
                    char text[128], out[128];
                    size_t pl = strlen(pieces[k].piece), n = 0;
                    text[n++] = '[';
                    text[n++] = '"';
                    memset(text + n, 'a', at);
                    n += at;
                    memcpy(text + n, pieces[k].piece, pl);
                    n += pl;
                    memset(text + n, 'b', tail);
                    n += tail;
                    text[n++] = '"';
                    text[n++] = ']';
                    struct hr_json_error err = {0, NULL};
                    int rc = hr_json_scan(text, n, 0, NULL, &err);
                    json_t *j = json_loadb(text, n, 0, NULL);
                    wrong |= (rc == 0) != (j != NULL);
                    wrong |= pieces[k].why ? !err.msg || !strstr(err.msg, pieces[k].why) : rc != 0;
                    if (!rc && j) {
                        int esc = 0;
                        size_t body = hr_json_span(text + 2, n - 2, &esc);
                        size_t dl = hr_json_unescape(text + 2, body, out);
                        const json_t *v = json_array_get(j, 0);
                        wrong |= body != n - 4 || esc != (memchr(text, '\\', n) != NULL);
                        wrong |= dl != json_string_length(v) || memcmp(out, json_string_value(v), dl) != 0;
                        char *buf = NULL;
                        size_t cap = 0, raw = 0, rl = 0;
                        const char *r = hr_json_read_string(text + 2, n - 2, &buf, &cap, &raw, &rl);
                        wrong |= !r || raw != body || rl != dl || memcmp(r, out, dl) != 0;
                        free(buf);
                    }
                    if (wrong)
                        tap_diag("piece %zu after %zu bytes, %zu after: scan %d (%s), jansson %s", k, at, tail, rc,
                                 err.msg ? err.msg : "-", j ? "accepts" : "rejects");
                    json_decref(j);
                }
            }
            ok(!wrong, "string piece %zu at every offset of a block: as jansson, message '%s'", k,
               pieces[k].why ? pieces[k].why : "(accepted)");
        }
    }

    /* Decoders. */
    {
        char out[64];
        const char *s = "a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u00e9\\u20ac\\ud83d\\ude00z";
        size_t n = hr_json_unescape(s, strlen(s), out);
        const char want[] = "a\"b\\c/d\b\f\n\r\t\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z";
        ok(n == sizeof want - 1 && memcmp(out, want, n) == 0, "unescape: every escape form");
        n = hr_json_unescape("plain", 5, out);
        ok(n == 5 && memcmp(out, "plain", 5) == 0, "unescape: plain text unchanged");
    }
    {
        static const char *const nums[] = {"0", "-0", "42", "-9223372036854775808", "9223372036854775807",
            "0.1", "-0.0", "3.14159", "1e22", "1e23", "1.5e-7", "123456789012345678901234567890.5",
            "2.2250738585072014e-308", "4.9e-324", "1e-400", "1.7976931348623157e308", "0.30000000000000004",
            "9007199254740993", "9007199254740993.0", "1E5", "12345678901234567e-3", NULL};
        for (const char *const *p = nums; *p; p++) {
            int64_t iv = 0;
            double dv = 0;
            int is_int = hr_json_number(*p, strlen(*p), &iv, &dv);
            json_t *j = json_loadb(*p, strlen(*p), JSON_DECODE_ANY, NULL);
            double jd = json_number_value(j);
            ok(j && is_int == json_is_integer(j) && memcmp(&dv, &jd, sizeof dv) == 0 &&
                   (!is_int || iv == json_integer_value(j)),
               "number %s decodes as jansson's (%.17g)", *p, dv);
            json_decref(j);
        }
    }
    /* hr_json_member: the root object's member value, as jansson would read it. */
    {
        static const struct { const char *text, *key, *want; } cases[] = {
            {"{\"model\":\"gpt-4o\",\"usage\":{\"prompt_tokens\":5,\"x\":[1,{\"y\":\"}\"}]}}", "usage",
             "{\"prompt_tokens\":5,\"x\":[1,{\"y\":\"}\"}]}"},
            {"{\"model\":\"gpt-4o\",\"usage\":{}}", "model", "\"gpt-4o\""},
            {" { \"a\" : \"q\\\"usage\\\":1\" , \"usage\" :\t7 } ", "usage", "7"},
            {"{\"usage\":1,\"usage\":{\"n\":2}}", "usage", "{\"n\":2}"}, /* the last wins, as in jansson */
            {"{\"choices\":[{\"usage\":9}],\"z\":null}", "usage", NULL},  /* nested: not the root's */
            {"{\"usage\":{\"n\":1}", "usage", NULL},                     /* the root never closes */
            {"[{\"usage\":1}]", "usage", NULL},                           /* not an object */
            {"{\"usage\":true,\"b\":false}", "usage", "true"},
            {"{\"a\":\"x\\\\\",\"usage\":\"\\\\\\\"\"}", "usage", "\"\\\\\\\"\""}, /* escaped backslash before a quote */
            {"{}", "usage", NULL},
            {"", "usage", NULL},
            /* long strings (read eight bytes at a time): escapes across word edges */
            {"{\"content\":\"{\\\"rows\\\":[{\\\"id\\\":1,\\\"msg\\\":\\\"a \\\\\\\"quoted\\\\\\\" word\\\"}]}\","
             "\"model\":\"gpt-4o-mini\"}", "model", "\"gpt-4o-mini\""},
            {"{\"a\":\"0123456789abcdef\\\\\",\"model\":\"m\"}", "model", "\"m\""},
            {"{\"a\":\"0123456789abcdef\\\"\",\"model\":\"m\"}", "model", "\"m\""},
            {"{\"a\":\"0123456789abcdefg\\", "model", NULL}, /* ends inside an escape */
        };
        for (int near = 0; near < 2; near++)
            for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
                const char *v = NULL;
                size_t vlen = 0, len = strlen(cases[i].text);
                int found = near ? hr_json_member_near(cases[i].text, len, cases[i].key, &v, &vlen)
                                 : hr_json_member(cases[i].text, len, cases[i].key, &v, &vlen);
                if (cases[i].want)
                    ok(found && vlen == strlen(cases[i].want) && !memcmp(v, cases[i].want, vlen),
                       "member%s %s of %s is %s", near ? "_near" : "", cases[i].key, cases[i].text, cases[i].want);
                else
                    ok(!found, "member%s %s of '%s': none", near ? "_near" : "", cases[i].key, cases[i].text);
            }
        /* hr_json_members: several keys in one pass agree with one at a time */
        static const char *const keys[] = {"model", "usage", "x"};
        int agree = 1;
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
            const char *vals[3], *one;
            size_t vlens[3], onelen, n = 0;
            size_t found = hr_json_members(cases[i].text, strlen(cases[i].text), keys, 3, vals, vlens);
            for (size_t k = 0; k < 3; k++) {
                int has = hr_json_member(cases[i].text, strlen(cases[i].text), keys[k], &one, &onelen);
                n += has;
                agree &= has ? vals[k] == one && vlens[k] == onelen : vals[k] == NULL;
            }
            agree &= found == n;
        }
        ok(agree, "hr_json_members finds in one pass what hr_json_member finds key by key");
        static const char nul_key[] = "{\"mo\0xx\":1,\"model\":2}";
        const char *vals[2];
        size_t vlens[2];
        static const char *const mo[] = {"mo", "model"};
        ok(hr_json_members(nul_key, sizeof nul_key - 1, mo, 2, vals, vlens) == 1 && !vals[0] && vals[1] &&
           *vals[1] == '2', "a key holding a NUL byte matches no shorter key");
        /* hr_json_scan_members: where the text is valid, the members
         * hr_json_member_list skims; nothing where it is not. */
        int same = 1, valid = 0;
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
            struct hr_json_span a[4], b[4];
            size_t na = 99, nb = 0, len = strlen(cases[i].text);
            int rc = hr_json_scan_members(cases[i].text, len, a, 4, &na);
            if (rc != hr_json_scan(cases[i].text, len, 0, NULL, NULL)) same = 0;
            if (rc) {
                same &= na == 0;
                continue;
            }
            valid++;
            if (cases[i].text[strspn(cases[i].text, " \t\r\n")] != '{') {
                same &= na == 0;
                continue;
            }
            same &= hr_json_member_list(cases[i].text, len, b, 4, &nb) == 0 && na == nb;
            for (size_t k = 0; k < na && k < 4; k++)
                same &= a[k].key == b[k].key && a[k].klen == b[k].klen && a[k].val == b[k].val &&
                        a[k].vlen == b[k].vlen;
        }
        ok(same && valid >= 8, "hr_json_scan_members: the members of %d valid texts as hr_json_member_list lists "
                               "them, none of the others", valid);
        {
            static const char many[] = " {\"a\":1 , \"b\" : [1,{\"c\":2}] ,\"c\":\"x\",\"d\":{},\"e\":null} ";
            struct hr_json_span m[2];
            size_t nm = 0;
            ok(hr_json_scan_members(many, sizeof many - 1, m, 2, &nm) == 0 && nm == 5 && m[1].klen == 1 &&
                   *m[1].key == 'b' && m[1].vlen == 11 && !memcmp(m[1].val, "[1,{\"c\":2}]", 11),
               "hr_json_scan_members: counts past its room, values span containers, spaces left out");
            static const char arr[] = "[{\"a\":1}]";
            ok(hr_json_scan_members(arr, sizeof arr - 1, m, 2, &nm) == 0 && nm == 0,
               "hr_json_scan_members: a root array has no members");
        }
        /* Not a whole object: what was seen before the fault is not found either. */
        static const char *const broken[] = {"{\"model\":\"m\",\"usage\":{\"n\":1", "{\"model\":\"m\",\"a\"}",
                                             "{\"model\":\"m\",\"a\":}", "{\"model\":\"m\",\"usage", NULL};
        for (const char *const *b = broken; *b; b++)
            ok(hr_json_members(*b, strlen(*b), mo, 2, vals, vlens) == 0 && !vals[0] && !vals[1],
               "members of '%s': none", *b);
    }
    /* hr_json_member_near on generated requests: the key first, last, between
     * two members longer than its first limits (4, 16, 64 KB), absent, or
     * nested inside a member; values full of escaped quotes and backslashes,
     * pretty-printed or compact. It must find what jansson finds. */
    {
        size_t big = 300000;
        char *pad = malloc(big + 1);
        for (size_t k = 0; k < big; k++) pad[k] = "ab\"{}[],: \n"[k % 11];
        pad[big] = 0;
        json_t *huge = json_pack("[{s:s},{s:[s,{s:s}]}]", "content", pad, "tool", "model", "model", "\"x\"");
        json_t *mid = json_pack("{s:s,s:i}", "text", pad + big / 2, "model", 3);
        static const char *const orders[][5] = {
            {"model", "messages", "tools", NULL},  {"messages", "tools", "model", NULL},
            {"messages", "model", "tools", NULL},  {"max_tokens", "messages", "model", "stream", NULL},
            {"messages", "tools", NULL},           {"model", NULL},
        };
        for (size_t o = 0; o < sizeof orders / sizeof *orders; o++)
            for (int pretty = 0; pretty < 2; pretty++) {
                json_t *req = json_object();
                for (size_t k = 0; orders[o][k]; k++) {
                    const char *name = orders[o][k];
                    json_t *v = !strcmp(name, "model")      ? json_string("gpt-\\4o \"mini\"")
                                : !strcmp(name, "messages") ? json_incref(huge)
                                : !strcmp(name, "tools")    ? json_incref(mid)
                                : !strcmp(name, "stream")   ? json_true()
                                                            : json_integer(1024);
                    json_object_set_new(req, name, v);
                }
                char *text = json_dumps(req, JSON_PRESERVE_ORDER | (pretty ? JSON_INDENT(2) : JSON_COMPACT));
                const char *v = NULL;
                size_t vlen = 0;
                int found = hr_json_member_near(text, strlen(text), "model", &v, &vlen);
                json_t *got = found ? json_loadb(v, vlen, JSON_DECODE_ANY, NULL) : NULL;
                json_t *want = json_object_get(req, "model");
                ok(want ? got && json_equal(got, want) : !found, "member_near finds model (order %zu%s)", o,
                   pretty ? ", indented" : "");
                json_decref(got);
                free(text);
                json_decref(req);
            }
        json_decref(mid);
        json_decref(huge);
        free(pad);
    }
    /* hr_json_scan_decode: the value strings holding an escape, decoded, in
     * order; keys and plain strings left to the reader. */
    {
        struct hr_json_decoded d = {0};
        const char *text = "{\"k\\u0031\":\"a\\nb\",\"plain\":\"xyz\",\"l\":[\"\\u00e9\\ud83d\\ude00\",1,\"q\\\"\"]}";
        int rc = hr_json_scan_decode(text, strlen(text), 0, &d);
        static const char *const want[] = {"a\nb", "\xc3\xa9\xf0\x9f\x98\x80", "q\""};
        int same = rc == 0 && d.n == 3 && !d.failed;
        for (size_t i = 0; same && i < 3; i++) {
            const struct hr_json_decoded_string *v = &d.v[i];
            same = v->len == strlen(want[i]) && !memcmp(d.buf + v->off, want[i], v->len) && !d.buf[v->off + v->len] &&
                   v->at[-1] == '"' && v->at[v->raw_len] == '"';
        }
        ok(same, "scan_decode: the three escaped value strings, decoded, where they are in the text");
        const char *bad = "[\"a\\nb\",\"\\q\"]";
        is_int(hr_json_scan_decode(bad, strlen(bad), 0, &d), -22, "scan_decode refuses what the scan refuses");
        is_int(hr_json_scan_decode("[\"\\t\"]", 6, 0, &d) == 0 && d.n == 1 && d.buf[d.v[0].off] == '\t', 1,
               "scan_decode starts over on each call");
        free(d.buf);
        free(d.v);
    }

    /* hr_json_plain_string: 1 exactly when jansson reads the text as a
     * string equal to the bytes between the quotes. */
    {
        static const struct {
            const char *text;
            size_t len;
        } cases[] = {
            {"\"gpt-4o-mini\"", 13}, {"\"\"", 2}, {"\"caf\xc3\xa9 \xf0\x9f\x98\x80\"", 12},
            {"\"a\\nb\"", 6},                          /* an escape: parsed instead */
            {"\"a\x01\"", 4}, {"\"a\0b\"", 5},           /* control characters, NUL */
            {"\"\xc3\"", 3}, {"\"\xed\xa0\x80\"", 5}, /* cut UTF-8, a surrogate */
            {"\"a\"b\"", 5}, {"\"ab", 3}, {"\"", 1}, {"gpt", 3}, {"42", 2}, {"", 0},
        };
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
            const char *t = cases[i].text;
            size_t n = cases[i].len;
            json_t *j = json_loadb(t, n, JSON_DECODE_ANY, NULL);
            int want = json_is_string(j) && json_string_length(j) == n - 2 && !memcmp(json_string_value(j), t + 1, n - 2);
            is_int(hr_json_plain_string(t, n), want, "plain_string agrees with jansson on case %zu", i);
            json_decref(j);
        }
    }
    return tap_exit();
}
