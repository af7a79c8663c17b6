/* t/json_dump_test.c — hr_json_dump_compact writes what
 * json_dumps(JSON_COMPACT) writes, byte for byte: every escape, control
 * byte, UTF-8 form (valid or not, in values and in keys), integer, nesting,
 * and the agent requests headroomd forwards; NULL exactly where jansson
 * gives NULL. Reals are the exception: the shortest text that reads back to
 * the same double (0.7, where json_dumps writes 0.69999999999999996), and
 * a number of a tree hr_json_load built is written as its text was spelled
 * (1e-05, 2.50, -0) while it holds the value it was read with. */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "json_dump.h"
#include "json_load.h"
#include "tap.h"

/* jansson's bytes; flags other than JSON_COMPACT set the reference's real
 * precision for trees whose reals all read back at 15 digits. */
static int same_as(const char *what, const json_t *j, size_t flags)
{
    size_t len = 12345;
    char *mine = hr_json_dump_compact(j, &len), *ref = json_dumps(j, flags);
    int eq = (!mine && !ref && len == 0) ||
             (mine && ref && len == strlen(ref) && !memcmp(mine, ref, len + 1));
    ok(eq, "%s: %s", what, ref ? "the same bytes as json_dumps" : "NULL as from json_dumps");
    if (!eq) tap_diag("  mine %.200s\n#  json_dumps %.200s", mine ? mine : "(null)", ref ? ref : "(null)");
    free(mine);
    free(ref);
    return eq;
}

static int same(const char *what, const json_t *j) { return same_as(what, j, JSON_COMPACT); }

/* hr_json_dump_compact of a real, alone in an array, without the brackets. */
static char *real_out(double d)
{
    json_t *a = json_pack("[f]", d);
    size_t len;
    char *t = hr_json_dump_compact(a, &len);
    json_decref(a);
    if (t && len >= 2) {
        memmove(t, t + 1, len - 2);
        t[len - 2] = '\0';
    }
    return t;
}

/* A text reads back to d's bits, as jansson reads it. */
static int reads_back(const char *t, double d)
{
    json_t *j = json_loads(t, JSON_DECODE_ANY, NULL);
    int ok_ = json_is_real(j);
    double v = ok_ ? json_real_value(j) : 0;
    json_decref(j);
    return ok_ && !memcmp(&v, &d, sizeof d);
}

/* A string of every byte value position-shifted around the 16-byte blocks. */
static json_t *wrap_string(const char *s, size_t n)
{
    return json_pack("{s:[o]}", "k", json_stringn_nocheck(s, n));
}

static uint64_t rng = 88172645463325252ull;
static unsigned next_byte(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng & 0xff);
}

/* A thread's trees and tables are its own: loaded, written and let go of
 * on a thread that then ends, and one it leaves loaded for another. */
struct on_thread {
    char *text;   /* what the thread wrote */
    json_t *kept; /* a tree it loaded and left alive */
};

static void *load_on_thread(void *arg)
{
    struct on_thread *t = arg;
    json_error_t jerr;
    static const char mine[] = "{\"a\":1e-05,\"b\":2.50}", kept[] = "{\"k\":1E5}";
    json_t *tree = hr_json_load(mine, sizeof mine - 1, &jerr);
    size_t len;
    t->text = hr_json_dump_compact(tree, &len);
    json_decref(tree); /* no load after it: the thread's end frees the table */
    t->kept = hr_json_load(kept, sizeof kept - 1, &jerr);
    return NULL;
}

static void thread_tables(void)
{
    struct on_thread t = {NULL, NULL};
    pthread_t th;
    if (pthread_create(&th, NULL, load_on_thread, &t) != 0) {
        printf("Bail out! pthread_create failed\n");
        exit(1);
    }
    pthread_join(th, NULL);
    is_str(t.text, "{\"a\":1e-05,\"b\":2.50}", "a tree loaded and written on another thread keeps its spelling");
    size_t len;
    char *other = hr_json_dump_compact(t.kept, &len);
    is_str(other, "{\"k\":100000.0}",
           "a tree written on a thread other than the one that loaded it is written shortest (the tables are "
           "the loading thread's, and went with it)");
    ok(t.kept && t.kept->refcount == 1, "the ended thread's table let go of the tree it left alive");
    free(other);
    free(t.text);
    json_decref(t.kept); /* under ASan, a table the thread's end did not free is reported as a leak */
}

int main(void)
{
    /* Literal texts, parsed, then dumped both ways. */
    static const char *const texts[][2] = {
        {"empty object", "{}"},
        {"empty array", "[]"},
        {"nested empties", "{\"a\":{},\"b\":[],\"c\":[{}, [[]]]}"},
        {"literals", "[true,false,null]"},
        {"integers", "[0,-1,9223372036854775807,-9223372036854775808,42]"},
        {"named escapes", "[\"q\\\" b\\\\ s\\/ b\\b f\\f n\\n r\\r t\\t\"]"},
        {"control bytes", "[\"\\u0001\\u001f\\u000b\\u0000x\"]"},
        {"DEL and non-ASCII", "[\"\x7f caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf\"]"},
        {"keys with escapes and non-ASCII", "{\"k\\\"ey\":1,\"\\u00e9\\n\":2,\"\":3}"},
        {"an agent request", "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"tool\",\"content\":\"{\\\"rows\\\":"
                             "[{\\\"id\\\":1,\\\"msg\\\":\\\"GET /a \\\\\\\"ok\\\\\\\"\\\\n\\\"}]}\"}],"
                             "\"temperature\":0.5,\"stream\":false,\"max_tokens\":1024}"},
    };
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        json_t *j = json_loadb(texts[i][1], strlen(texts[i][1]), JSON_ALLOW_NUL, NULL);
        ok(j != NULL, "%s: parsed", texts[i][0]);
        same(texts[i][0], j);
        json_decref(j);
    }

    /* Reals: the shortest text that reads back to the same double, in
     * jansson's spelling (".0" on integral values, exponent without '+' or
     * leading zeros). json_dumps writes 0.69999999999999996 for 0.7. */
    static const char *const reals[][2] = {
        {"0.7", "0.7"}, {"0.1", "0.1"}, {"0.2", "0.2"}, {"0.95", "0.95"}, {"1.5", "1.5"}, {"3.14159", "3.14159"},
        {"-0.0", "-0.0"}, {"0.0", "0.0"}, {"100.0", "100.0"}, {"1e22", "1e22"}, {"1e-7", "1e-7"}, {"1e-05", "1e-5"},
        {"1e+300", "1e300"}, {"1e300", "1e300"}, {"-1e-300", "-1e-300"}, {"1E2", "100.0"}, {"2.50", "2.5"},
        {"0.30000000000000004", "0.30000000000000004"}, {"1.7976931348623157e308", "1.7976931348623157e308"},
        {"2.2250738585072014e-308", "2.2250738585072014e-308"}, {"5e-324", "5e-324"},
        {"123456789012345678.0", "1.2345678901234568e17"}, {"9007199254740993.0", "9007199254740992.0"},
        {"0.1234567890123456789", "0.12345678901234568"}, {"12345.678901234567", "12345.678901234567"},
    };
    for (size_t i = 0; i < sizeof reals / sizeof *reals; i++) {
        json_t *j = json_loads(reals[i][0], JSON_DECODE_ANY, NULL);
        double d = json_real_value(j);
        char *t = real_out(d), buf[64];
        size_t k = hr_json_real_text(d, buf, sizeof buf);
        ok(t && !strcmp(t, reals[i][1]) && reads_back(t, d) && k == strlen(t) && !memcmp(buf, t, k),
           "real %s is written %s (hr_json_real_text too) and reads back", reals[i][0], reals[i][1]);
        if (t && strcmp(t, reals[i][1])) tap_diag("  got %s", t);
        free(t);
        json_decref(j);
    }
    /* The report's case: a request's sampling figures arrive as sent. */
    static const char req_text[] = "{\"model\":\"gpt-4o\",\"temperature\":0.7,\"top_p\":0.1,"
                                   "\"frequency_penalty\":0.3,\"logit_bias\":{\"50256\":-0.1},\"x\":[1.1,2.2,3.3]}";
    json_t *rq = json_loads(req_text, 0, NULL);
    size_t rq_len;
    char *rq_out = hr_json_dump_compact(rq, &rq_len);
    ok(rq_out && !strcmp(rq_out, req_text), "temperature 0.7, top_p 0.1, ... are written as the client wrote them");
    if (rq_out && strcmp(rq_out, req_text)) tap_diag("  got %s", rq_out);
    free(rq_out);
    json_decref(rq);
    /* Random bit patterns, every exponent: bit-exact, and %.15g's text
     * whenever that reads back. (Fewer digits can be a longer text:
     * 8.893347941085426e16 for jansson's 88933479410854256.0.) */
    int reals_ok = 1, fewer = 0;
    for (int r = 0; r < 200000 && reals_ok; r++) {
        uint64_t bits = 0;
        for (int b = 0; b < 8; b++) bits = bits << 8 | next_byte();
        if (r % 4 == 0) bits &= 0x800FFFFFFFFFFFFFull; /* subnormals and zeros */
        double d;
        memcpy(&d, &bits, sizeof d);
        if (isnan(d) || isinf(d)) continue;
        char *t = real_out(d), *ref = NULL, p15[64];
        json_t *a = json_pack("[f]", d);
        ref = json_dumps(a, JSON_COMPACT);
        size_t k15 = json_dumpb(a, p15, sizeof p15, JSON_COMPACT | JSON_REAL_PRECISION(15));
        p15[k15 < sizeof p15 ? k15 : 0] = '\0';
        json_decref(a);
        json_t *back15 = json_loads(p15, 0, NULL);
        double d15 = json_real_value(json_array_get(back15, 0));
        json_decref(back15);
        int fits15 = !memcmp(&d15, &d, sizeof d);
        reals_ok = t && reads_back(t, d) &&
                   (!fits15 || (strlen(t) + 2 == strlen(p15) && !memcmp(t, p15 + 1, strlen(t))) ||
                    fpclassify(d) == FP_SUBNORMAL);
        fewer += strlen(t) + 2 < strlen(ref);
        if (!reals_ok) tap_diag("  bits %016llx: mine %s, json_dumps %s", (unsigned long long)bits, t, ref);
        free(t);
        free(ref);
    }
    ok(reals_ok, "200000 random doubles (subnormals too): read back bit for bit, %%.15g's text where it reads back");
    tap_diag("  %d of them shorter than jansson's %%.17g", fewer);

    /* Every byte value at every offset of a 16-byte block, in a value and a key. */
    int all = 1;
    for (unsigned b = 0; b < 256 && all; b++)
        for (size_t off = 0; off < 40 && all; off++) {
            char s[48];
            memset(s, 'a', sizeof s);
            s[off] = (char)b;
            json_t *j = wrap_string(s, sizeof s);
            size_t len;
            char *mine = hr_json_dump_compact(j, &len), *ref = json_dumps(j, JSON_COMPACT);
            all = (!mine && !ref) || (mine && ref && !strcmp(mine, ref));
            free(mine);
            free(ref);
            json_decref(j);
            json_t *k = json_object();
            char key[48];
            memcpy(key, s, sizeof key);
            json_object_setn_new_nocheck(k, key, sizeof key, json_integer(1));
            mine = hr_json_dump_compact(k, &len);
            ref = json_dumps(k, JSON_COMPACT);
            all = all && ((!mine && !ref) || (mine && ref && !strcmp(mine, ref)));
            if (!all) tap_diag("  byte 0x%02x at %zu: mine %s, json_dumps %s", b, off, mine, ref);
            free(mine);
            free(ref);
            json_decref(k);
        }
    ok(all, "every byte value at every offset of a block, in a value and in a key: as json_dumps");

    /* Multi-byte sequences: valid, overlong, surrogate, past U+10FFFF, cut short. */
    static const char *const seqs[] = {"\xc2\x80", "\xdf\xbf", "\xe0\xa0\x80", "\xef\xbf\xbf", "\xf0\x90\x80\x80",
                                       "\xf4\x8f\xbf\xbf", "\xc0\xaf", "\xc1\xbf", "\xe0\x80\xaf", "\xed\xa0\x80",
                                       "\xed\xbf\xbf", "\xf0\x80\x80\xaf", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80",
                                       "\xff", "\x80", "\xe2\x9c", "\xf0\x9f\x98"};
    for (size_t i = 0; i < sizeof seqs / sizeof *seqs; i++) {
        char s[64];
        for (size_t pad = 0; pad < 20; pad += 19) {
            memset(s, 'x', pad);
            size_t n = strlen(seqs[i]);
            memcpy(s + pad, seqs[i], n);
            json_t *j = wrap_string(s, pad + n); /* also cut short at the very end */
            char what[64];
            snprintf(what, sizeof what, "UTF-8 case %zu after %zu bytes", i, pad);
            same(what, j);
            json_decref(j);
        }
    }

    /* Random strings: runs of ASCII, escapes, controls and UTF-8, valid or not. */
    int random_ok = 1;
    for (int r = 0; r < 300 && random_ok; r++) {
        size_t n = 1 + next_byte() * 4;
        char *s = malloc(n);
        for (size_t i = 0; i < n; i++) {
            unsigned b = next_byte();
            s[i] = (char)(r % 3 == 0 ? b : b < 200 ? 'a' + b % 26 : b < 215 ? '"' : b < 230 ? '\\' : b < 245 ? b % 32 : 0xc3);
            if (r % 3 == 1 && (unsigned char)s[i] == 0xc3 && i + 1 < n) s[++i] = (char)0xa9;
        }
        json_t *j = wrap_string(s, n);
        size_t len;
        char *mine = hr_json_dump_compact(j, &len), *ref = json_dumps(j, JSON_COMPACT);
        random_ok = (!mine && !ref) || (mine && ref && !strcmp(mine, ref) && len == strlen(ref));
        free(mine);
        free(ref);
        json_decref(j);
        free(s);
    }
    ok(random_ok, "300 random strings (bytes of every kind, valid and invalid UTF-8): as json_dumps");

    /* Scalars at the top: jansson refuses them without JSON_ENCODE_ANY. */
    json_t *scalar = json_string("x");
    same("a string at the top", scalar);
    json_decref(scalar);

    /* A cycle: jansson refuses it. */
    json_t *a = json_array(), *b = json_array();
    json_array_append(a, b);
    json_array_append(b, a);
    same("two arrays holding each other", a);
    json_array_clear(b);
    json_decref(b);
    json_decref(a);

    /* Deep nesting at the parser's limit. */
    json_t *deep = json_array(), *cur = deep;
    for (int d = 1; d < 2048; d++) {
        json_t *in = json_array();
        json_array_append_new(cur, in);
        cur = in;
    }
    same("arrays nested 2048 deep", deep);
    json_decref(deep);

    /* An agent-sized request: 2000-row tool outputs as big strings. */
    json_t *rows = json_array();
    for (int i = 0; i < 2000; i++)
        json_array_append_new(rows, json_pack("{s:i,s:s,s:f,s:b,s:n}", "id", i, "msg",
                                              i % 7 ? "GET /api \"ok\"\n\tcaf\u00e9 \u2713" : "ERROR timeout",
                                              "ms", i * 1.25, "ok", i % 3, "none"));
    char *rows_text = json_dumps(rows, JSON_COMPACT);
    json_t *req = json_pack("{s:s,s:[{s:s,s:s},{s:s,s:s,s:s},{s:s,s:s,s:s}],s:f}", "model", "gpt-4o", "messages",
                            "role", "user", "content", "why?", "role", "tool", "tool_call_id", "c1", "content",
                            rows_text, "role", "tool", "tool_call_id", "c2", "content", rows_text, "temperature",
                            0.2);
    /* every real here (i * 1.25, 0.2) reads back at 15 digits */
    same_as("an agent request with two 2000-row outputs", req, JSON_COMPACT | JSON_REAL_PRECISION(15));
    same_as("the 2000 rows as JSON", rows, JSON_COMPACT | JSON_REAL_PRECISION(15));
    free(rows_text);
    json_decref(rows);
    json_decref(req);

    /* Numbers as the client spelled them: a loaded tree comes out byte
     * for byte. */
    static const char spelled[] =
        "{\"a\":1e-05,\"b\":2.50,\"c\":1.0,\"d\":-0.0,\"e\":-0,\"f\":1E5,\"g\":0.10000000000000001,\"h\":1e+16,"
        "\"i\":[0.00001,100.00,-2.5E-3,1.7976931348623157e+308,5e-324,4.9406564584124654e-324,0.0000,1.5e0],"
        "\"j\":9223372036854775807,\"k\":-9223372036854775808,\"l\":0.7,\"m\":1,\"n\":123456789012345678,"
        "\"o\":1000000000000000.0,\"p\":0.000123,\"q\":[1e-05,1e-05]}";
    json_error_t jerr;
    json_t *sp = hr_json_load(spelled, strlen(spelled), &jerr);
    size_t sl;
    char *st = hr_json_dump_compact(sp, &sl);
    is_str(st, spelled, "a loaded tree is written with each number as spelled (1e-05, 2.50, -0, 1E5, ...)");
    free(st);
    /* A value a stage changes, or a number it puts in, is written shortest. */
    json_real_set(json_object_get(sp, "a"), 2e-5);
    json_object_set_new(sp, "b", json_real(2.5));
    json_integer_set(json_object_get(sp, "e"), 5);
    json_array_set_new(json_object_get(sp, "q"), 1, json_real(1e-5));
    st = hr_json_dump_compact(sp, &sl);
    static const char head[] = "{\"a\":2e-5,\"b\":2.5,\"c\":1.0,\"d\":-0.0,\"e\":5,\"f\":1E5,";
    ok(st && !strncmp(st, head, sizeof head - 1) &&
           strstr(st, "\"q\":[1e-05,1e-5]}"),
       "changed values and new numbers (one of the same value in a spelled one's place) are written shortest");
    if (tap_failed) tap_diag("  got %.300s", st ? st : "(null)");
    free(st);
    /* A copy (a snapshot an undo puts back) keeps the spelling when told. */
    json_t *orig = hr_json_load(spelled, strlen(spelled), &jerr);
    json_t *copy = json_deep_copy(json_object_get(orig, "i")), *bare = json_deep_copy(json_object_get(orig, "i"));
    hr_json_spellings_copied(json_object_get(orig, "i"), copy);
    json_t *pair = json_pack("[o,o]", copy, bare);
    st = hr_json_dump_compact(pair, &sl);
    is_str(st, "[[0.00001,100.00,-2.5E-3,1.7976931348623157e+308,5e-324,4.9406564584124654e-324,0.0000,1.5e0],"
               "[1e-5,100.0,-0.0025,1.7976931348623157e308,5e-324,5e-324,0.0,1.5]]",
           "a deep copy takes the spellings with hr_json_spellings_copied (shortest without)");
    free(st);
    json_decref(pair);
    json_decref(orig);
    json_decref(sp);
    /* Many trees alive at once, the same value spelled differently in each:
     * each is written as its own (a shared table of 4096 slots was not). */
    enum { TREES = 6000 };
    static const char *forms[] = {"1e-05", "0.00001", "1E-5", "1.0e-5", "10e-6", "1e-005"};
    json_t **trees = calloc(TREES, sizeof *trees);
    int own = 0;
    for (int i = 0; i < TREES; i++) {
        char text[128];
        snprintf(text, sizeof text, "{\"id\":%d,\"x\":[%s,%s],\"t\":2.50}", i, forms[i % 6], forms[(i + 1) % 6]);
        trees[i] = hr_json_load(text, strlen(text), &jerr);
    }
    for (int i = 0; i < TREES; i++) {
        char text[128];
        snprintf(text, sizeof text, "{\"id\":%d,\"x\":[%s,%s],\"t\":2.50}", i, forms[i % 6], forms[(i + 1) % 6]);
        st = hr_json_dump_compact(trees[i], &sl);
        own += st && !strcmp(st, text);
        free(st);
    }
    is_int(own, TREES, "6000 trees alive at once, 1e-05 spelled six ways: each written as its own");
    for (int i = 0; i < TREES; i++) json_decref(trees[i]);
    free(trees);
    /* A freed tree's spellings go with it: the next load frees the table,
     * and numbers made later (at whatever address) are written shortest. */
    json_t *later = hr_json_load("[1]", 3, &jerr);
    json_t *fresh = json_array();
    for (int i = 0; i < 2000; i++) json_array_append_new(fresh, json_real(1e-5));
    st = hr_json_dump_compact(fresh, &sl);
    ok(st && !strstr(st, "1e-05") && !strstr(st, "0.00001") && !strstr(st, "E") && !strstr(st, "1.0e"),
       "reals made after those trees were freed are written shortest");
    free(st);
    json_decref(fresh);
    json_decref(later);
    /* The table goes with its tree: it holds the spelled node and the
     * root, and the first load after the tree's owner lets go frees both. */
    static const char one[] = "{\"x\":[2.50]}";
    json_t *gone = hr_json_load(one, sizeof one - 1, &jerr);
    json_t *held = json_incref(json_array_get(json_object_get(gone, "x"), 0));
    size_t refs_alive = held ? held->refcount : 0;
    json_decref(gone);
    size_t refs_freed = held ? held->refcount : 0;
    json_decref(hr_json_load("[1]", 3, &jerr));
    is_int((int)(refs_alive * 100 + refs_freed * 10 + (held ? held->refcount : 0)), 331,
           "a spelled node: 3 references (tree, table, ours) while the tree lives and after its owner lets go "
           "(the table holds the root), 1 (ours) after the next load frees tree and table");
    json_decref(held);
    thread_tables();
    /* Bad numbers are still refused, with jansson's message. */
    static const char *bad[] = {"[1.]", "[01]", "[1e]", "[-]", "[1.50e+]", "[--1e-05]", "[1e-05.5]",
                                "[.5]", "[2.50E]"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        json_error_t want;
        json_t *mine = hr_json_load(bad[i], strlen(bad[i]), &jerr), *ref = json_loads(bad[i], 0, &want);
        ok(!mine && !ref && !strcmp(jerr.text, want.text), "%s refused: %s", bad[i], jerr.text);
        json_decref(mine);
    }
    tap_done();
    return tap_failed != 0;
}
