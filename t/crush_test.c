/* t/crush_test.c — smart_crusher quality and safety: savings and must-keep rows on
 * generated agent-style fixtures (through the plugin and t/fake_host.c), determinism,
 * bad input, and the per-unit policy (protected, markers, min_tokens, types, logs). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <headroom/plugin.h>
#include "tap.h"
#include "fake_host.h"
#include "../plugins/smart_crusher/crush.h"
#include "slurp.h"
#include "textc.h"

extern const struct headroom_plugin headroom_plugin;

static const char *fixture_dir(void)
{
    static char dir[512];
    const char *d = getenv("HR_FIXTURE_DIR");
    if (d && *d)
        return d;
    const char *src = getenv("srcdir");
    char tmpl[] = "/tmp/hr_crush_fx.XXXXXX";
    if (!mkdtemp(tmpl))
        return NULL;
    snprintf(dir, sizeof dir, "%s", tmpl);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "python3 '%s/t/fixtures/gen_fixtures.py' --out '%s' --seed 42",
             src && *src ? src : ".", dir);
    if (system(cmd) != 0)
        return NULL;
    return dir;
}

static json_t *openai_body(const char *query, const char *tool_text)
{
    return json_pack("{s:s,s:[{s:s,s:s},{s:s,s:n,s:[{s:s,s:s,s:{s:s,s:s}}]},{s:s,s:s,s:s}]}",
                     "model", "gpt-4o", "messages",
                     "role", "user", "content", query,
                     "role", "assistant", "content", "tool_calls",
                     "id", "c1", "type", "function", "function", "name", "fetch", "arguments", "{}",
                     "role", "tool", "tool_call_id", "c1", "content", tool_text);
}

static int in_list(json_t *list, json_int_t v)
{
    size_t i;
    json_t *x;
    json_array_foreach(list, i, x)
        if (json_integer_value(x) == v)
            return 1;
    return 0;
}

/* The indices the marker's "kept" lists ("errors at 3,9; rare field f at 5 /
 * g at 7; first/last at 0,99"), ascending; each kept row is listed once. */
static json_t *kept_indices(json_t *marker)
{
    const char *s = json_string_value(json_object_get(marker, "kept"));
    char seen[100001] = {0};
    json_t *out = json_array();
    for (const char *p = s; p && (p = strstr(p, " at ")); ) {
        p += 4;
        while (*p >= '0' && *p <= '9') {
            long v = strtol(p, (char **)&p, 10);
            if (v >= 0 && v <= 100000) {
                if (seen[v]++)
                    tap_diag("index %ld listed twice", v);
                seen[v] = 1;
            }
            if (*p == ',')
                p++;
        }
    }
    for (long v = 0; v <= 100000; v++)
        if (seen[v])
            json_array_append_new(out, json_integer(v));
    return out;
}

static int all_kept(json_t *kept, json_t *must, const char *what, const char *file)
{
    size_t i, missing = 0;
    json_t *x;
    json_array_foreach(must, i, x)
        if (!in_list(kept, json_integer_value(x))) {
            tap_diag("%s: %s row %lld dropped", file, what, (long long)json_integer_value(x));
            missing++;
        }
    return missing == 0;
}

static void *state;
static struct hr_instance inst = {"smart_crusher"};

static void fixture(const char *dir, const char *file, json_t *spec, double *sum100, double *sum1000)
{
    char path[1024];
    size_t len;
    snprintf(path, sizeof path, "%s/%s", dir, file);
    char *text = slurp(path, &len);
    ok(text != NULL, "%s: read", file);
    if (!text)
        return;
    size_t rows = (size_t)json_integer_value(json_object_get(spec, "rows"));
    const char *apath = json_string_value(json_object_get(spec, "path"));
    const char *query = json_string_value(json_object_get(spec, "query"));
    json_t *body = openai_body(query, text);
    struct fh_request r;
    fh_request_init(&r, body, HR_PROVIDER_OPENAI, query);
    json_decref(body);
    size_t before = r.units[0].tokens;
    int puts_before = fh_ccr_put_unit_calls();
    headroom_plugin.apply(state, &r.req);
    is_int(r.replaced, 1, "%s: unit replaced", file);
    is_int(fh_ccr_put_unit_calls() - puts_before, 1, "%s: the original stored through ccr_put_unit (ABI 1.6)", file);
    size_t after = r.units[0].tokens;
    double sav = 1.0 - (double)after / (double)before;
    /* Savings against the compacted input too, so pretty-printing cannot flatter us. */
    char *compact = malloc(len + 1);
    size_t clen = hr_sc_compact(text, len, compact);
    free(compact);
    double csav = 1.0 - (double)r.units[0].len / (double)clen;
    double want = rows >= 1000 ? 0.90 : 0.68;
    ok(sav >= want, "%s: token savings %.1f%% >= %.0f%% (%zu -> %zu est. tokens; %.1f%% vs compacted bytes)",
       file, sav * 100, want * 100, before, after, csav * 100);
    if (rows >= 1000)
        *sum1000 += sav;
    else
        *sum100 += sav;

    json_error_t err;
    json_t *out = json_loadb(r.units[0].text, r.units[0].len, 0, &err);
    ok(out != NULL, "%s: output is valid JSON%s%s", file, out ? "" : ": ", out ? "" : err.text);
    json_t *arr = out && *apath ? json_object_get(out, apath) : out;
    json_t *orig = json_loadb(text, len, 0, NULL);
    json_t *oarr = *apath ? json_object_get(orig, apath) : orig;
    json_t *marker = json_object_get(json_array_get(arr, 0), "_headroom");
    ok(json_is_object(marker), "%s: marker object first in the array", file);
    json_t *kept = kept_indices(marker);
    ok(json_array_size(arr) == json_array_size(kept) + 1, "%s: one row per kept index", file);
    int same = 1;
    for (size_t i = 0; i < json_array_size(kept); i++)
        if (!json_equal(json_array_get(arr, i + 1),
                        json_array_get(oarr, (size_t)json_integer_value(json_array_get(kept, i)))))
            same = 0;
    ok(same, "%s: kept rows are the original rows, in order", file);
    ok(in_list(kept, 0) && in_list(kept, (json_int_t)rows - 1), "%s: first and last rows kept", file);
    ok(all_kept(kept, json_object_get(spec, "errors"), "error", file), "%s: all %zu error rows kept", file,
       json_array_size(json_object_get(spec, "errors")));
    ok(all_kept(kept, json_object_get(spec, "needles"), "rare-field", file), "%s: all %zu rare-field rows kept",
       file, json_array_size(json_object_get(spec, "needles")));
    ok(all_kept(kept, json_object_get(spec, "anomalies"), "anomaly", file), "%s: all %zu anomalies kept", file,
       json_array_size(json_object_get(spec, "anomalies")));
    if (json_object_get(spec, "group_ends"))
        ok(all_kept(kept, json_object_get(spec, "group_ends"), "schema group first/last", file),
           "%s: first and last row of each schema kept", file);
    ok(json_integer_value(json_object_get(marker, "omitted")) ==
           (json_int_t)(rows - json_array_size(kept)), "%s: marker counts omitted rows", file);
    if (*apath) {
        json_t *o2 = json_deep_copy(out), *g2 = json_deep_copy(orig);
        json_object_del(o2, apath);
        json_object_del(g2, apath);
        ok(json_equal(o2, g2), "%s: members around the array unchanged", file);
        json_decref(o2);
        json_decref(g2);
    }
    const char *all_rows = json_string_value(json_object_get(marker, "all_rows"));
    const char *hash = all_rows && strstr(all_rows, "hash=") ? strstr(all_rows, "hash=") + 5 : NULL;
    ok(hash && strlen(hash) == 24, "%s: the marker names the original as hash=<24 hex>: %s", file,
       all_rows ? all_rows : "-");
    size_t glen = 0;
    char *back = hash ? fh_ccr_get(hash, &glen) : NULL;
    ok(back && glen == len && memcmp(back, text, len) == 0, "%s: CCR returns the original bytes", file);
    free(back);
    tap_diag("%s: kept %zu/%zu: %s", file, json_array_size(kept), rows,
             json_string_value(json_object_get(marker, "kept")));
    json_decref(kept);

    /* Byte-identical output on every run. */
    struct hr_sc_config cfg = {15, 0.10, 0.05};
    struct hr_sc_output first, o;
    int rc = hr_sc_crush(&cfg, text, len, query, &first);
    int identical = rc == 0;
    for (int i = 0; i < 100 && identical; i++) {
        if (hr_sc_crush(&cfg, text, len, query, &o) != 0)
            identical = 0;
        else {
            identical = o.len == first.len && memcmp(o.text, first.text, o.len) == 0;
            hr_sc_output_free(&o);
        }
    }
    ok(identical, "%s: byte-identical across 100 runs", file);
    if (rc == 0)
        hr_sc_output_free(&first);
    json_decref(out);
    json_decref(orig);
    fh_request_free(&r);
    free(text);
}

static int crush_rc(const char *text, const char *query)
{
    struct hr_sc_config cfg = {15, 0.10, 0.05};
    struct hr_sc_output o;
    int rc = hr_sc_crush(&cfg, text, strlen(text), query, &o);
    if (rc == 0)
        hr_sc_output_free(&o);
    return rc;
}

static char *rows_json(size_t n, const char *extra_at_5)
{
    size_t cap = n * 96 + 256;
    char *p = malloc(cap);
    size_t l = 0;
    l += (size_t)snprintf(p + l, cap - l, "[");
    for (size_t i = 0; i < n; i++)
        l += (size_t)snprintf(p + l, cap - l, "%s{\"id\":%zu,\"name\":\"item number %zu\",\"v\":%zu%s}",
                              i ? "," : "", i, i, i % 7, i == 5 && extra_at_5 ? extra_at_5 : "");
    snprintf(p + l, cap - l, "]");
    return p;
}

static void bad_input(void)
{
    is_int(crush_rc("", NULL), HR_SC_SKIP_NOT_JSON, "empty text skipped");
    is_int(crush_rc("   \n ", NULL), HR_SC_SKIP_NOT_JSON, "whitespace skipped");
    is_int(crush_rc("plain text [1]", NULL), HR_SC_SKIP_NOT_JSON, "text skipped");
    is_int(crush_rc("[{\"a\":1},", NULL), HR_SC_SKIP_NOT_JSON, "truncated JSON skipped");
    is_int(crush_rc("[tr ue]", NULL), HR_SC_SKIP_NOT_JSON, "invalid JSON that compacts to valid is skipped");
    is_int(crush_rc("[]", NULL), HR_SC_SKIP_NO_ARRAY, "empty array skipped");
    is_int(crush_rc("[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20]", NULL), HR_SC_SKIP_NO_ARRAY,
           "array of numbers skipped");
    is_int(crush_rc("{\"a\":{\"b\":[{\"x\":1}]}}", NULL), HR_SC_SKIP_NO_ARRAY, "array two levels down skipped");
    is_int(crush_rc("[{\"a\":1,\"a\":2}]", NULL), HR_SC_SKIP_NOT_JSON, "duplicate keys skipped");
    is_int(crush_rc("[{\"a\":123456789012345678901234567890}]", NULL), HR_SC_SKIP_NOT_JSON,
           "integer jansson cannot hold skipped");
    char *p = rows_json(17, NULL);
    is_int(crush_rc(p, NULL), HR_SC_SKIP_SMALL, "17 rows (max_items + 2) left alone");
    free(p);
    p = rows_json(18, NULL);
    is_int(crush_rc(p, NULL), HR_SC_SKIP_SAVINGS, "18 rows: 15 + marker does not save 10 %%, left alone");
    free(p);
    p = rows_json(40, NULL);
    is_int(crush_rc(p, NULL), HR_SC_CRUSHED, "40 rows crushed");
    free(p);
    /* Mixed array: objects and a string. */
    p = rows_json(40, NULL);
    p[strlen(p) - 1] = '\0';
    char *q = malloc(strlen(p) + 16);
    sprintf(q, "%s,\"tail\"]", p);
    is_int(crush_rc(q, NULL), HR_SC_SKIP_NO_ARRAY, "array with a non-object row skipped");
    free(p);
    free(q);
    /* All rows identical: duplicates collapse, marker says so. */
    {
        char buf[8192];
        size_t l = (size_t)snprintf(buf, sizeof buf, "[");
        for (int i = 0; i < 60; i++)
            l += (size_t)snprintf(buf + l, sizeof buf - l, "%s{\"msg\":\"same row again\",\"n\":1}", i ? "," : "");
        snprintf(buf + l, sizeof buf - l, "]");
        struct hr_sc_config cfg = {15, 0.10, 0.05};
        struct hr_sc_output o;
        int rc = hr_sc_crush(&cfg, buf, strlen(buf), NULL, &o);
        is_int(rc, 0, "60 identical rows crushed");
        if (rc == 0) {
            is_int(o.kept, 2, "identical rows: only first and last kept");
            ok(strstr(o.reasons, "58 exact duplicate rows dropped") != NULL, "duplicates reported: %s", o.reasons);
            hr_sc_output_free(&o);
        }
    }
    /* The same key with and without escapes is one field: the rows are one
     * schema and the level of a row written with escaped keys is read. */
    {
        char buf[16384];
        size_t l = (size_t)snprintf(buf, sizeof buf, "[");
        for (int i = 0; i < 60; i++)
            l += (size_t)snprintf(buf + l, sizeof buf - l,
                                  i % 2 ? "%s{\"l\\u0065vel\":\"%s\",\"m\\u0073g\":\"call %d\",\"p\\\\q\":%d}"
                                        : "%s{\"level\":\"%s\",\"msg\":\"call %d\",\"p\\\\q\":%d}",
                                  i ? "," : "", i == 37 ? "ERROR" : "INFO", i, i % 3);
        snprintf(buf + l, sizeof buf - l, "]");
        struct hr_sc_config cfg = {15, 0.10, 0.05};
        struct hr_sc_output o;
        int rc = hr_sc_crush(&cfg, buf, strlen(buf), NULL, &o);
        ok(rc == 0 && strstr(o.reasons, "errors at 37") && !strstr(o.reasons, "schemas"),
           "keys with and without escapes: one schema, the escaped row's ERROR kept: %s", rc == 0 ? o.reasons : "-");
        if (rc == 0)
            hr_sc_output_free(&o);
    }
    /* A rare field far from the ends is kept; the marker names it. */
    p = rows_json(200, ",\"secret_flag\":true");
    {
        struct hr_sc_config cfg = {15, 0.10, 0.05};
        struct hr_sc_output o;
        int rc = hr_sc_crush(&cfg, p, strlen(p), NULL, &o);
        ok(rc == 0 && strstr(o.reasons, "rare field secret_flag at 5"), "needle kept: %s",
           rc == 0 ? o.reasons : "-");
        if (rc == 0)
            hr_sc_output_free(&o);
    }
    free(p);
    /* Pretty-printed, nested, with unicode escapes: output still valid and compact. */
    {
        const char *hdr = "{\n  \"ok\" : true,\n  \"items\" : [\n";
        char *buf = malloc(200000);
        size_t l = (size_t)snprintf(buf, 200000, "%s", hdr);
        for (int i = 0; i < 100; i++)
            l += (size_t)snprintf(buf + l, 200000 - l, "%s    { \"k\" : \"caf\\u00e9 %d \\\"q\\\"\", \"x\" : 1.50 }",
                                  i ? ",\n" : "", i);
        snprintf(buf + l, 200000 - l, "\n  ],\n  \"next\" : null\n}\n");
        struct hr_sc_config cfg = {15, 0.10, 0.05};
        struct hr_sc_output o;
        int rc = hr_sc_crush(&cfg, buf, strlen(buf), NULL, &o);
        json_t *j = rc == 0 ? json_loadb(o.text, o.len, 0, NULL) : NULL;
        ok(j && json_is_true(json_object_get(j, "ok")) && json_is_null(json_object_get(j, "next")) &&
               json_array_size(json_object_get(j, "items")) == 15,
           "pretty nested input: valid, shape kept, marker + 14 rows (it takes an evenly spaced row's slot)");
        ok(rc == 0 && strstr(o.text, "\"x\":1.50}") && !strstr(o.text, "\n"),
           "original number text kept, whitespace removed");
        json_decref(j);
        if (rc == 0)
            hr_sc_output_free(&o);
        free(buf);
    }
}

/* A mixed-schema array: a row flagged is_anomaly (or failed, error, …) in the
 * minority schema, whose other rows carry the same key unflagged, is kept. */
static void mixed_schema_flags(void)
{
    static const char *const flags[] = {"\"is_anomaly\":true", "\"anomaly\":true", "\"failed\":true",
                                        "\"error\":\"disk full\"", "\"outcome\":\"failure\""};
    static const char *const benign[] = {"\"is_anomaly\":false", "\"anomaly\":false", "\"failed\":false",
                                         "\"error\":null", "\"outcome\":\"success\""};
    for (size_t f = 0; f < sizeof flags / sizeof *flags; f++) {
        size_t cap = 100 * 128 + 256, l = 0;
        char *p = malloc(cap);
        l += (size_t)snprintf(p + l, cap - l, "[");
        for (size_t i = 0; i < 100; i++) {
            if (i % 10 == 7)
                l += (size_t)snprintf(p + l, cap - l, "%s{\"host\":\"host-%zu\",\"cpu\":%zu,%s}", i ? "," : "", i,
                                      40 + i % 5, i == 47 ? flags[f] : benign[f]);
            else
                l += (size_t)snprintf(p + l, cap - l, "%s{\"id\":%zu,\"name\":\"item number %zu\",\"v\":%zu}",
                                      i ? "," : "", i, i, i % 7);
        }
        snprintf(p + l, cap - l, "]");
        struct hr_sc_config cfg = {15, 0.10, 0.05};
        struct hr_sc_output o;
        int rc = hr_sc_crush(&cfg, p, strlen(p), "", &o);
        ok(rc == 0 && strstr(o.text, "\"host-47\""), "mixed schemas: minority-schema row flagged %s kept", flags[f]);
        if (rc == 0)
            hr_sc_output_free(&o);
        free(p);
    }
}

/* Per-schema treatment: 70 "item" rows, 25 "host" rows (a quarter: its fields are too
 * rare globally for outlier statistics) with one cpu outlier and one row carrying a
 * field no other host row has, and 5 "job" rows (5 %: every job field is "rare" across
 * the array). The host outlier and rare-field row and each schema's first and last row
 * are kept, and the job rows do not drown the item rows' own needle. */
static void per_schema_groups(void)
{
    size_t cap = 100 * 160, l = 0;
    char *p = malloc(cap);
    int host = 0, job = 0;
    l += (size_t)snprintf(p + l, cap - l, "[");
    for (size_t i = 0; i < 100; i++) {
        const char *sep = i ? "," : "";
        if (i % 4 == 1 && host < 25) {
            host++;
            l += (size_t)snprintf(p + l, cap - l, "%s{\"host\":\"h%zu\",\"cpu\":%zu%s}", sep, i,
                                  i == 41 ? 990 : 40 + i % 7, i == 53 ? ",\"kernel_taint\":\"P\"" : "");
        } else if (i % 20 == 10 && job < 5) {
            job++;
            l += (size_t)snprintf(p + l, cap - l, "%s{\"job\":\"j%zu\",\"queue\":\"q\",\"state\":\"ok\"}", sep, i);
        } else {
            l += (size_t)snprintf(p + l, cap - l, "%s{\"id\":%zu,\"name\":\"item number %zu\",\"v\":%zu%s}", sep,
                                  i, i, i % 7, i == 64 ? ",\"recall\":true" : "");
        }
    }
    snprintf(p + l, cap - l, "]");
    struct hr_sc_config cfg = {15, 0.10, 0.05};
    struct hr_sc_output o;
    int rc = hr_sc_crush(&cfg, p, strlen(p), "", &o);
    ok(rc == 0, "three schemas: crushed");
    if (rc == 0) {
        ok(strstr(o.text, "\"cpu\":990") != NULL, "outlier in a 25 %% schema kept");
        ok(strstr(o.text, "\"kernel_taint\"") != NULL, "rare-field row of a 25 %% schema kept");
        ok(strstr(o.text, "\"recall\":true") != NULL, "majority schema's rare-field row kept beside a 5 %% schema");
        ok(strstr(o.text, "\"h1\"") && strstr(o.text, "\"h97\"") && strstr(o.text, "\"j10\"") &&
               strstr(o.text, "\"j90\""), "first and last row of each schema kept");
        ok(strstr(o.reasons, "first/last of each of 3 schemas") != NULL, "marker names the schema groups: %s",
           o.reasons);
        hr_sc_output_free(&o);
    }
    free(p);
}

/* `n` log rows: level ERROR every `err_every`-th (0: none) and a latency of 1000+ ms
 * every `slow_every`-th (0: none), else 10..16 ms. */
static char *log_rows(size_t n, size_t err_every, size_t slow_every)
{
    size_t cap = n * 96 + 16, l = 0;
    char *p = malloc(cap);
    l += (size_t)snprintf(p + l, cap - l, "[");
    for (size_t i = 0; i < n; i++)
        l += (size_t)snprintf(p + l, cap - l, "%s{\"id\":%zu,\"level\":\"%s\",\"msg\":\"call %zu\",\"ms\":%zu}",
                              i ? "," : "", i, err_every && i % err_every == 3 ? "ERROR" : "INFO", i,
                              slow_every && i % slow_every == 5 ? 1000 + i : 10 + i % 7);
    snprintf(p + l, cap - l, "]");
    return p;
}

/* The marker's "not shown" names only the kinds some row was dropped of. */
static void not_shown(void)
{
    struct hr_sc_config cfg = {15, 0.10, 0.05};
    struct hr_sc_output o;
    char *p = log_rows(400, 10, 0); /* 40 errors, cap 20 */
    int rc = hr_sc_crush(&cfg, p, strlen(p), NULL, &o);
    ok(rc == 0 && o.kept == 22 && strstr(o.reasons, "; not shown: 20 errors") &&
           !strstr(o.reasons, "rare-field") && !strstr(o.reasons, "outliers"),
       "errors over the cap: not shown names the errors alone: %s", rc == 0 ? o.reasons : "-");
    if (rc == 0)
        hr_sc_output_free(&o);
    free(p);
    p = log_rows(1000, 0, 16); /* 63 slow calls (6 %), cap 50 */
    rc = hr_sc_crush(&cfg, p, strlen(p), NULL, &o);
    ok(rc == 0 && strstr(o.reasons, "; not shown: 13 outliers") && !strstr(o.reasons, "errors"),
       "outliers over the cap: not shown names the outliers alone: %s", rc == 0 ? o.reasons : "-");
    if (rc == 0)
        hr_sc_output_free(&o);
    free(p);
}

/* Error words inside names are not errors: package, file and path names (the
 * dpkg and `ls -l` arrays of a tour had libgpg-error0 and libgpg-error.so.0 kept
 * and named as errors); said of the row, in text or as a code, they are. A
 * non-zero exit code and an HTTP 5xx status written as text are errors. */
static void identifier_words(void)
{
    static const struct { size_t at; const char *name, *msg; } rows[] = {
        {30, "pkg30", "TypeError: undefined is not a function"},
        {40, "libgpg-error0", "ok"},
        {41, "libgpg-error-dev", "ok"},
        {60, "pkg60", "upload failed: disk full"},
        {90, "liberror-perl", "ok"},
        {100, "pkg100", "E_FATAL"},
        {120, "libabsl_failure_signal_handler.so.20220623", "ok"},
        {130, "pkg130", "at java.lang.NullPointerException"},
        {150, "libgpg-error.so.0.33.1", "ok"},
        {160, "libgrpc++_error_details.so.1.51", "ok"},
        {170, "/usr/include/error.h", "ok"},
        {180, "python3-exceptiongroup", "see src/errors/mod.rs and test_errors.py"},
        {190, "pkg190", "Build failed."},
    };
    size_t cap = 200 * 128, l = 0, k = 0;
    char *p = malloc(cap);
    l += (size_t)snprintf(p + l, cap - l, "[");
    for (size_t i = 0; i < 200; i++) {
        char name[16];
        const char *nm = name, *msg = "ok";
        snprintf(name, sizeof name, "pkg%zu", i);
        if (k < sizeof rows / sizeof *rows && rows[k].at == i)
            nm = rows[k].name, msg = rows[k++].msg;
        l += (size_t)snprintf(p + l, cap - l, "%s{\"id\":%zu,\"name\":\"%s\",\"msg\":\"%s\"}", i ? "," : "", i, nm, msg);
    }
    snprintf(p + l, cap - l, "]");
    struct hr_sc_config cfg = {15, 0.10, 0.05};
    struct hr_sc_output o;
    int rc = hr_sc_crush(&cfg, p, strlen(p), NULL, &o);
    ok(rc == 0 && strstr(o.reasons, "errors at 30,60,100,130,190;") && !strstr(o.reasons, "not shown"),
       "error words in package and file names are not errors; in text, codes and camel case they are: %s",
       rc == 0 ? o.reasons : "-");
    if (rc == 0)
        hr_sc_output_free(&o);
    free(p);

    static const char *const fmt[] = {"%s{\"cmd\":\"make t%zu\",\"exit_code\":%d}",
                                      "%s{\"path\":\"/api/v1/item/%zu\",\"status\":\"%s\"}"};
    for (int f = 0; f < 2; f++) {
        cap = 100 * 64, l = 0;
        p = malloc(cap);
        l += (size_t)snprintf(p + l, cap - l, "[");
        for (size_t i = 0; i < 100; i++) {
            if (f == 0)
                l += (size_t)snprintf(p + l, cap - l, fmt[0], i ? "," : "", i, i == 33 ? 2 : 0);
            else
                l += (size_t)snprintf(p + l, cap - l, fmt[1], i ? "," : "", i,
                                      i == 33 ? "503 Service Unavailable" : "200 OK");
        }
        snprintf(p + l, cap - l, "]");
        rc = hr_sc_crush(&cfg, p, strlen(p), NULL, &o);
        ok(rc == 0 && strstr(o.reasons, "errors at 33;"), "%s: row 33 kept as an error: %s",
           f == 0 ? "exit_code 2" : "status \"503 Service Unavailable\"", rc == 0 ? o.reasons : "-");
        if (rc == 0)
            hr_sc_output_free(&o);
        free(p);
    }
}

/* An access log as a JSON array: a request's 4xx is an error, as
 * log_compressor reads an access log's 404 (a tour kept 0 of 16 404 rows,
 * and both 502 rows), weaker than a 5xx: under the critical cap the 4xx
 * rows yield first. A 4xx in a field named like an HTTP status (status,
 * statusCode, Traefik's DownstreamStatus) counts; in another status field
 * ("result") only beside a method, path or URL field. */
static char *access_rows(size_t n, int (*status)(size_t), const char *shape)
{
    size_t cap = n * 320, l = 0;
    char *p = malloc(cap);
    l += (size_t)snprintf(p + l, cap - l, "[");
    for (size_t i = 0; i < n; i++) {
        int st = status(i);
        if (!strncmp(shape, "caddy", 5)) /* "caddy_even": every response the same size */
            l += (size_t)snprintf(p + l, cap - l,
                                  "%s{\"level\":\"info\",\"ts\":%zu.%02zu,\"logger\":\"http.log.access.log0\",\"msg\":\"handled "
                                  "request\",\"request\":{\"remote_ip\":\"10.0.0.%zu\",\"method\":\"GET\",\"host\":\"shop.example.com\","
                                  "\"uri\":\"/api/items/%zu\"},\"duration\":0.00%zu,\"size\":%d,\"status\":%d}",
                                  i ? "," : "", 1765101600 + i / 3, i % 100, i % 40, 1000 + i, 1 + i % 9,
                                  st == 200 || shape[5] ? 5120 : 153, st);
        else if (!strcmp(shape, "pino"))
            l += (size_t)snprintf(p + l, cap - l, "%s{\"level\":30,\"time\":%zu,\"reqId\":\"req-%zu\",\"res\":{\"statusCode\":%d},"
                                  "\"responseTime\":%zu,\"msg\":\"request completed\"}", i ? "," : "", 1765101887493 + i * 7, i, st, 3 + i % 11);
        else if (!strcmp(shape, "traefik"))
            l += (size_t)snprintf(p + l, cap - l, "%s{\"ClientHost\":\"10.0.0.%zu\",\"DownstreamStatus\":%d,\"RequestMethod\":\"GET\","
                                  "\"RequestPath\":\"/x/%zu\",\"Duration\":%zu}", i ? "," : "", i % 40, st, i, 1000 + i % 13);
        else if (!strcmp(shape, "request"))
            l += (size_t)snprintf(p + l, cap - l, "%s{\"method\":\"GET\",\"path\":\"/x/%zu\",\"result\":%d}", i ? "," : "", i, st);
        else
            l += (size_t)snprintf(p + l, cap - l, "%s{\"id\":%zu,\"name\":\"job %zu\",\"result\":%d}", i ? "," : "", i, i,
                                  st == 200 ? 7 : st);
    }
    snprintf(p + l, cap - l, "]");
    return p;
}

static int tour_status(size_t i) { return i == 311 || i == 1211 ? 502 : i % 90 == 47 ? 404 : i % 9 ? 200 : 304; }
static int crowd_status(size_t i) { return i % 100 == 77 ? 503 : i % 11 == 5 ? 404 : 200; }
static int few_status(size_t i) { return i == 40 ? 404 : i == 70 ? 429 : 200; }

static void request_4xx(void)
{
    struct hr_sc_config cfg = {15, 0.10, 0.05};
    struct hr_sc_output o;
    char *p = access_rows(1500, tour_status, "caddy");
    for (int q = 0; q < 2; q++) {
        int rc = hr_sc_crush(&cfg, p, strlen(p), q ? "Which requests failed?" : NULL, &o);
        size_t k404 = 0, k502 = 0;
        for (const char *x = rc ? "" : o.text; (x = strstr(x, "\"status\":")); x++) {
            k404 += !strncmp(x + 9, "404}", 4);
            k502 += !strncmp(x + 9, "502}", 4);
        }
        ok(rc == 0 && k404 == 17 && k502 == 2 && !strstr(o.reasons, "not shown"),
           "a Caddy access log as an array%s: its 17 404 rows and 2 502 rows kept (%zu, %zu): %.200s",
           q ? ", asked which requests failed" : "", k404, k502, rc == 0 ? o.reasons : "-");
        if (rc == 0)
            hr_sc_output_free(&o);
    }
    free(p);
    /* 1,000 requests, 90 of them 404 and 10 503 (cap 50): every 503, then 404s */
    p = access_rows(1000, crowd_status, "caddy_even");
    int rc = hr_sc_crush(&cfg, p, strlen(p), NULL, &o);
    size_t k404 = 0, k503 = 0;
    for (const char *x = rc ? "" : o.text; (x = strstr(x, "\"status\":")); x++) {
        k404 += !strncmp(x + 9, "404}", 4);
        k503 += !strncmp(x + 9, "503}", 4);
    }
    ok(rc == 0 && k503 == 10 && k404 == 40 && strstr(o.reasons, "not shown: 50 errors"),
       "over the critical cap the 4xx rows yield first: all 10 503 rows and 40 of 90 404 rows (%zu, %zu): %s", k503,
       k404, rc == 0 ? o.reasons : "-");
    if (rc == 0)
        hr_sc_output_free(&o);
    free(p);
    /* pino's res.statusCode, Traefik's DownstreamStatus, a request's "result"; a job's "result" 404 is no status */
    static const char *const shapes[] = {"pino", "traefik", "request", "job"};
    for (size_t s = 0; s < 4; s++) {
        p = access_rows(120, few_status, shapes[s]);
        rc = hr_sc_crush(&cfg, p, strlen(p), NULL, &o);
        int as_err = rc == 0 && strstr(o.reasons, "errors at 40,70;") != NULL;
        ok(s < 3 ? as_err : rc == 0 && !strstr(o.reasons, "errors"), "%s rows: 404 and 429 %s: %s", shapes[s],
           s < 3 ? "kept as errors" : "are no errors", rc == 0 ? o.reasons : "-");
        if (rc == 0)
            hr_sc_output_free(&o);
        free(p);
    }
}

/* `dpkg-query` as JSON (864 packages): installed sizes heavy-tailed when `heavy`
 * (every fourth package over 20 MB), else with 54 large ones (6 %); two packages
 * whose names hold "error"; libzstd1 at 694. */
static char *dpkg_rows(int heavy)
{
    size_t cap = 864 * 160, l = 0;
    char *p = malloc(cap);
    l += (size_t)snprintf(p + l, cap - l, "[");
    for (size_t i = 0; i < 864; i++) {
        char name[32];
        snprintf(name, sizeof name, "%s", i == 360 ? "libgpg-error-dev" : i == 361 ? "libgpg-error0" : i == 694 ? "libzstd1" : "");
        if (!*name)
            snprintf(name, sizeof name, "pkg-%03zu", i);
        size_t kb = (heavy ? i % 4 == 0 : i % 16 == 5) ? 20000 + i * 37 % 5000 * 10 : 100 + i * 13 % 400;
        l += (size_t)snprintf(p + l, cap - l,
                              "%s{\"package\":\"%s\",\"version\":\"1.%zu-%zu\",\"architecture\":\"amd64\","
                              "\"installed_size_kb\":%zu,\"status\":\"install ok installed\",\"section\":\"libs\"}",
                              i ? "," : "", name, i % 17, i % 5, kb);
    }
    snprintf(p + l, cap - l, "]");
    return p;
}

/* `ls -l /usr/lib/x86_64-linux-gnu` as JSON (1,262 entries): each library as a
 * link, a versioned link and the file (a third of the rows, 10 kB to 1 MB: sizes
 * heavy-tailed); every eighth library's first link absolute, into
 * /lib/x86_64-linux-gnu/; libzstd.so.1.5.4 at 1237 behind two links. */
static char *lslib_rows(void)
{
    size_t cap = 1262 * 200, l = 0;
    char *p = malloc(cap);
    l += (size_t)snprintf(p + l, cap - l, "[");
    for (size_t i = 0; i < 1262; i++) {
        char name[64], target[96];
        size_t k = i / 3, size;
        if (i >= 1235 && i <= 1237) {
            snprintf(name, sizeof name, "%s", i == 1235 ? "libzstd.so" : i == 1236 ? "libzstd.so.1" : "libzstd.so.1.5.4");
            snprintf(target, sizeof target, i < 1237 ? "\"libzstd.so.1.5.4\"" : "null");
            size = i < 1237 ? 16 : 763816;
        } else if (i % 3 == 0) {
            snprintf(name, sizeof name, "libk%zu.so", k);
            snprintf(target, sizeof target, k % 8 ? "\"libk%zu.so.1.0.0\"" : "\"/lib/x86_64-linux-gnu/libk%zu.so.1\"", k);
            size = 15 + k % 20;
        } else if (i % 3 == 1) {
            snprintf(name, sizeof name, "libk%zu.so.1", k);
            snprintf(target, sizeof target, "\"libk%zu.so.1.0.0\"", k);
            size = 15 + k % 20;
        } else {
            snprintf(name, sizeof name, "libk%zu.so.1.0.0", k);
            snprintf(target, sizeof target, "null");
            size = 10000 + k * 7919 % 990000;
        }
        l += (size_t)snprintf(p + l, cap - l,
                              "%s{\"name\":\"%s\",\"mode\":\"%s\",\"size\":%zu,\"owner\":\"root\","
                              "\"mtime\":\"2023-01-%02zu 12:00\",\"link_target\":%s}",
                              i ? "," : "", name, strcmp(target, "null") ? "lrwxrwxrwx" : "-rw-r--r--", size,
                              1 + i % 28, target);
    }
    snprintf(p + l, cap - l, "]");
    return p;
}

static int kept_row(const struct hr_sc_output *o, const char *needle)
{
    return strstr(o->text, needle) != NULL;
}

/* The row the question is about survives (found by a tour: dpkg and `ls -l` arrays
 * whose heavy-tailed sizes made a fifth to a third of the rows "outliers", which
 * filled the critical cap and left the question no row): heavy-tailed values are
 * not outliers; the best query matches are kept when critical rows fill max_items,
 * within the critical cap; a name the question quotes whole ranks the rows that
 * hold it first. */
static void asked_row_kept(void)
{
    struct hr_sc_output o, plain;
    char *p = dpkg_rows(1);
    const double fractions[] = {0.05, 0.5};
    for (size_t f = 0; f < 2; f++) {
        struct hr_sc_config cfg = {15, 0.10, fractions[f]};
        int rc = hr_sc_crush(&cfg, p, strlen(p), "Which version of libzstd1 is installed?", &o);
        ok(rc == 0 && kept_row(&o, "\"libzstd1\"") && o.kept <= 15 && !strstr(o.reasons, "outliers") &&
               !strstr(o.reasons, "error"),
           "dpkg, critical_fraction %.2f: libzstd1 kept, a quarter of the sizes far out are no outliers: %zu rows, %s",
           fractions[f], rc == 0 ? o.kept : 0, rc == 0 ? o.reasons : "-");
        if (rc == 0)
            hr_sc_output_free(&o);
    }
    free(p);

    /* 6 % far out: outliers, more than the cap of 44 holds. The query's row takes
     * one of the cap's places (the smallest outlier's): no row more. */
    struct hr_sc_config cfg = {15, 0.10, 0.05};
    p = dpkg_rows(0);
    int rc = hr_sc_crush(&cfg, p, strlen(p), "Which version of libzstd1 is installed?", &o);
    int rc2 = hr_sc_crush(&cfg, p, strlen(p), NULL, &plain);
    ok(rc == 0 && rc2 == 0 && kept_row(&o, "\"libzstd1\"") && strstr(o.reasons, "query match at 694;") &&
           o.kept == plain.kept && strstr(plain.reasons, "not shown: 10 outliers") &&
           strstr(o.reasons, "not shown: 11 outliers"),
       "outliers over the cap: the asked row takes the last outlier's place (%zu rows, as without the question: %zu): %s",
       rc == 0 ? o.kept : 0, rc2 == 0 ? plain.kept : 0, rc == 0 ? o.reasons : "-");
    if (rc == 0)
        hr_sc_output_free(&o);
    if (rc2 == 0)
        hr_sc_output_free(&plain);
    free(p);

    /* 16 errors fill max_items, not the cap of 20: the asked row is added; 40
     * errors fill the cap: it takes the last error's place. */
    const size_t every[] = {25, 10}, rows[] = {19, 22};
    const char *const left[] = {"first/last at 0,399", "first/last at 0,399; not shown: 21 errors"};
    for (size_t k = 0; k < 2; k++) {
        p = log_rows(400, every[k], 0);
        rc = hr_sc_crush(&cfg, p, strlen(p), "what did call 257 return", &o);
        ok(rc == 0 && strstr(o.reasons, "query match at 257;") && o.kept == rows[k] &&
               !strcmp(strstr(o.reasons, "first/last"), left[k]),
           "%zu errors: the asked row kept, %zu rows: %s", 400 / every[k], rows[k], rc == 0 ? o.reasons : "-");
        if (rc == 0)
            hr_sc_output_free(&o);
        free(p);
    }

    p = lslib_rows();
    rc = hr_sc_crush(&cfg, p, strlen(p), "How big is libzstd.so.1.5.4 in /usr/lib/x86_64-linux-gnu?", &o);
    ok(rc == 0 && kept_row(&o, "{\"name\":\"libzstd.so.1.5.4\"") && o.kept <= 15 && !strstr(o.reasons, "outliers"),
       "ls -l: libzstd.so.1.5.4 kept before the links into /lib/x86_64-linux-gnu/: %s", rc == 0 ? o.reasons : "-");
    if (rc == 0)
        hr_sc_output_free(&o);
    free(p);
}

/* JSON rows carried as text in a JSON string (an MCP server's content part,
 * {"output":"[…]"}): the string is crushed as the rows would be, the JSON
 * around kept byte for byte, its marker's hash storing the rows text; JSON in
 * a string that is not rows is left alone. */
static void rows_as_text(void)
{
    char *rows = rows_json(300, NULL);
    json_t *mcp = json_pack("{s:[{s:s,s:s}],s:b}", "content", "type", "text", "text", rows, "isError", 0);
    char *wrapped = json_dumps(mcp, JSON_PRESERVE_ORDER);
    json_t *enc = json_string(rows);
    char *rows_enc = json_dumps(enc, JSON_ENCODE_ANY);
    json_decref(enc);
    const char *at = strstr(wrapped, rows_enc);
    size_t head = at ? (size_t)(at - wrapped) : 0, tail = at ? strlen(at + strlen(rows_enc)) : 0;
    json_t *body = openai_body("item", wrapped);
    struct fh_request r;
    fh_request_init(&r, body, HR_PROVIDER_OPENAI, "");
    r.units[0].type = HR_CT_JSON_OBJECT;
    headroom_plugin.apply(state, &r.req);
    is_int(r.replaced, 1, "rows as text in MCP content: crushed");
    is_str(r.tag, "smart_crusher:top_n:kept=14/300", "rows as text: stage tag");
    const char *out = r.units[0].text;
    size_t ol = r.units[0].len;
    ok(at && ol > head + tail && !memcmp(out, wrapped, head) && !memcmp(out + ol - tail, wrapped + strlen(wrapped) - tail, tail),
       "rows as text: the JSON around kept byte for byte");
    json_t *got = json_loads(out, 0, NULL);
    const char *inner = json_string_value(json_object_get(json_array_get(json_object_get(got, "content"), 0), "text"));
    json_t *crushed = inner ? json_loads(inner, 0, NULL) : NULL;
    const char *all = json_string_value(json_object_get(json_object_get(json_array_get(crushed, 0), "_headroom"), "all_rows"));
    ok(crushed && json_array_size(crushed) == 15 && all, "rows as text: the string holds the crushed rows and their marker");
    const char *hash = all ? strstr(all, "hash=") : NULL;
    size_t glen = 0;
    char *back = hash ? fh_ccr_get(hash + 5, &glen) : NULL;
    ok(back && glen == strlen(rows) && !memcmp(back, rows, glen), "rows as text: the marker's hash returns the rows text");
    free(back);
    json_decref(crushed);
    json_decref(got);
    fh_request_free(&r);
    json_decref(body);
    free(wrapped);
    free(rows_enc);
    json_decref(mcp);

    /* a config object as text: not rows, left alone */
    json_t *cfg = json_object();
    for (int i = 0; i < 200; i++) {
        char k[16];
        snprintf(k, sizeof k, "K%03d", i);
        json_object_set_new(cfg, k, json_string("a configuration value of some length"));
    }
    char *cfg_text = json_dumps(cfg, JSON_PRESERVE_ORDER);
    json_t *out2 = json_pack("{s:s,s:{s:i}}", "output", cfg_text, "metadata", "exit_code", 0);
    char *w2 = json_dumps(out2, JSON_PRESERVE_ORDER);
    body = openai_body("item", w2);
    fh_request_init(&r, body, HR_PROVIDER_OPENAI, "");
    r.units[0].type = HR_CT_JSON_OBJECT;
    headroom_plugin.apply(state, &r.req);
    is_int(r.replaced, 0, "a config object as text in {\"output\":…}: left alone");
    fh_request_free(&r);
    json_decref(body);
    free(w2);
    json_decref(out2);
    free(cfg_text);
    json_decref(cfg);
    free(rows);
}

static json_int_t cache_stat(const char *what);

/* Bytes the plugin tokenized: a walk of a wrapped string counts its prefix. */
static _Atomic size_t counted_bytes;
static size_t counting_tokens(const char *model, const char *text, size_t len)
{
    counted_bytes += len;
    return fh_count_tokens(model, text, len);
}

/* One apply of an MCP answer holding `rows` as text, under `query` and
 * `model`: the unit's text after, its length in *len (malloc'd). */
static char *apply_rows_as_text(void *st, const char *rows, const char *query, const char *model, size_t *len)
{
    json_t *mcp = json_pack("{s:[{s:s,s:s}],s:b}", "content", "type", "text", "text", rows, "isError", 0);
    char *wrapped = json_dumps(mcp, JSON_PRESERVE_ORDER);
    json_t *body = openai_body(query, wrapped);
    json_object_set_new(body, "model", json_string(model));
    struct fh_request r;
    fh_request_init(&r, body, HR_PROVIDER_OPENAI, query);
    r.units[0].type = HR_CT_JSON_OBJECT;
    headroom_plugin.apply(st, &r.req);
    *len = r.units[0].len;
    char *out = r.replaced == 1 ? strndup(r.units[0].text, r.units[0].len) : NULL;
    fh_request_free(&r);
    json_decref(body);
    free(wrapped);
    json_decref(mcp);
    return out;
}

/* Rows as text are in the result cache as a whole output's crush is: an
 * agent resends the conversation every turn, and each turn decoded,
 * tokenized and crushed the string again. A resent turn is answered from
 * the cache (the unit's crush and its walk: two hits, no new entry) and
 * tokenizes no more than the result it sends; another question or another
 * model (min_tokens counted with its tokenizer) is another entry. */
static void rows_as_text_cached(void)
{
    static struct hr_host h;
    h = *fh_host();
    h.count_tokens = counting_tokens;
    struct hr_conf conf;
    void *st = NULL;
    fh_conf(&conf, headroom_plugin.conf_keys, NULL);
    if (headroom_plugin.init(&h, &inst, &conf, &st) != 0) {
        ok(0, "init with a counting host");
        return;
    }
    char *rows = rows_json(300, NULL);
    size_t l1, l2, l3, l4;
    char *first = apply_rows_as_text(st, rows, "item 42", "gpt-4o", &l1);
    ok(first != NULL, "rows as text crushed");
    is_int(cache_stat("lookups"), 2, "first sight: the crush and the walk looked up");
    is_int(cache_stat("entries"), 2, "both remembered");
    counted_bytes = 0;
    char *again = apply_rows_as_text(st, rows, "item 42", "gpt-4o", &l2);
    size_t resent_bytes = counted_bytes;
    ok(first && again && !strcmp(first, again), "resent: the same bytes");
    is_int(cache_stat("hits"), 2, "resent: the crush and the rows-as-text walk are cache hits");
    is_int(cache_stat("entries"), 2, "resent: no new entry");
    ok(resent_bytes <= 2 * l2, "resent: only the result is tokenized (%zu bytes for a %zu-byte result)", resent_bytes, l2);
    char *other_q = apply_rows_as_text(st, rows, "item 250", "gpt-4o", &l3);
    is_int(cache_stat("hits"), 2, "another question: misses (relevance depends on it)");
    is_int(cache_stat("entries"), 4, "another question: its own entries");
    ok(first && strstr(first, "item number 42\\\"") && other_q && strstr(other_q, "item number 250\\\"") &&
       !strstr(other_q, "item number 42\\\""), "another question: its own rows kept");
    char *other_m = apply_rows_as_text(st, rows, "item 42", "claude-sonnet-4-5", &l4);
    is_int(cache_stat("hits"), 3, "another model: the crush hits, the walk (tokens per string) misses");
    is_int(cache_stat("entries"), 5, "another model: the walk's own entry");
    ok(first && other_m && !strcmp(first, other_m), "another model: the same bytes here (one estimator)");
    free(first);
    free(again);
    free(other_q);
    free(other_m);
    free(rows);
    fh_drop_stats(st);
    headroom_plugin.fini(st);
}

/* Rows crushed as text and sent again (an agent resends what `headroom
 * compress` or a headroomd in front of this one sent), on a host before ABI
 * 1.6: such a host flags HR_UNIT_HAS_MARKER only for a marker written as
 * JSON, not for one escaped in a JSON string, and smart_crusher looked for
 * that form only. The string was crushed a second time: the first marker
 * became a row among the rows, and error rows the first crush kept (a 20th
 * of the rows) were cut to max_items. */
static void rows_as_text_old_host(void)
{
    static struct hr_host old;
    old = *fh_host();
    old.struct_size = (uint32_t)offsetof(struct hr_host, ccr_put_unit); /* a 1.5 host */
    struct hr_conf conf;
    void *st = NULL;
    fh_conf(&conf, headroom_plugin.conf_keys, NULL);
    if (headroom_plugin.init(&old, &inst, &conf, &st) != 0) {
        ok(0, "init on a 1.5 host");
        return;
    }
    size_t cap = 1000 * 96, l = 0;
    char *rows = malloc(cap);
    if (!rows) {
        ok(0, "out of memory");
        headroom_plugin.fini(st);
        return;
    }
    for (int i = 0; i < 1000 && l < cap; i++)
        l += (size_t)snprintf(rows + l, cap - l, "%s{\"id\":%d,\"name\":\"item number %d\",\"status\":\"%s\"}",
                              i ? "," : "[", i, i, i % 10 == 3 ? "error" : "ok");
    if (l < cap)
        snprintf(rows + l, cap - l, "]");
    json_t *mcp = json_pack("{s:[{s:s,s:s}],s:b}", "content", "type", "text", "text", rows, "isError", 0);
    char *wrapped = json_dumps(mcp, JSON_PRESERVE_ORDER);
    json_t *body = openai_body("item", wrapped);
    struct fh_request r;
    fh_request_init(&r, body, HR_PROVIDER_OPENAI, "");
    r.units[0].type = HR_CT_JSON_OBJECT;
    headroom_plugin.apply(st, &r.req);
    is_int(r.replaced, 1, "1.5 host: rows as text crushed");
    char *first = r.replaced == 1 ? strndup(r.units[0].text, r.units[0].len) : NULL;
    fh_request_free(&r);
    json_t *body2 = openai_body("item", first ? first : "");
    fh_request_init(&r, body2, HR_PROVIDER_OPENAI, "");
    fh_request_flag_as_1_5(&r);
    r.units[0].type = HR_CT_JSON_OBJECT;
    is_int(r.units[0].flags & HR_UNIT_HAS_MARKER, 0, "1.5 host: the escaped marker is not flagged");
    headroom_plugin.apply(st, &r.req);
    is_int(r.replaced, 0, "1.5 host: rows crushed as text and sent again are not crushed again");
    if (r.replaced)
        tap_diag("%.400s", r.units[0].text);
    fh_request_free(&r);
    json_decref(body2);
    json_decref(body);
    json_decref(mcp);
    free(first);
    free(wrapped);
    free(rows);
    headroom_plugin.fini(st);
}

/* hr_wrap_rewrite (lib/textc.h), the walk smart_crusher and the text
 * compressors share, given a new text it cannot write into a JSON string: a
 * cut inside a UTF-8 character (the first string), a placeholder past the
 * end (mode 1). That string stays as it was; before, the whole unit was
 * left (-22, logged as out of memory) or the write read past the end. */
static int bad_one(void *ctx, const char *s, size_t sl, struct hr_text_out *o)
{
    int *calls = ctx;
    memset(o, 0, sizeof *o);
    hr_tbuf_put(&o->b, "[headroom: cut; hash=" HR_SC_HASH_PLACEHOLDER "]\n", 21 + HR_SC_HASH_LEN + 2);
    o->hash_off[0] = 21;
    o->n_hash_off = 1;
    hr_tbuf_put(&o->b, s, sl / 3 + (*calls == 0)); /* the first: inside its 3-byte characters */
    if (*calls == 0 && calls[1])
        o->hash_off[0] = o->b.len + 10; /* mode 1: past the end */
    o->total = 3;
    o->omitted = 2;
    ++*calls;
    return 0;
}

static void wrap_walk_bad_output(void)
{
    char cjk[1201], log[2000];
    for (int i = 0; i < 400; i++)
        memcpy(cjk + 3 * i, "\xe4\xb8\xad", 3);
    cjk[1200] = '\0';
    size_t l = 0;
    for (int i = 0; l + 40 < sizeof log; i++)
        l += (size_t)snprintf(log + l, sizeof log - l, "line %d ok\n", i);
    json_t *mcp = json_pack("{s:[{s:s,s:s},{s:s,s:s}],s:b}", "content", "type", "text", "text", cjk, "type", "text",
                            "text", log, "isError", 0);
    char *t = json_dumps(mcp, JSON_PRESERVE_ORDER);
    size_t n = strlen(t);
    for (int mode = 0; mode < 2; mode++) {
        int calls[2] = {0, mode};
        struct hr_text_out out;
        struct hr_wrap_str ws[HR_WRAP_MAX];
        size_t nws = 0;
        int rc = hr_wrap_rewrite(t, n, 0, 0.0, bad_one, calls, &out, ws, &nws);
        is_int(rc, 0, "%s in the first string: the unit is still rewritten", mode ? "a placeholder past the end" : "a cut inside a character");
        json_t *got = rc == 0 ? json_loadb(out.b.p, out.b.len, 0, NULL) : NULL;
        json_t *parts = json_object_get(got, "content");
        const char *first = json_string_value(json_object_get(json_array_get(parts, 0), "text"));
        const char *second = json_string_value(json_object_get(json_array_get(parts, 1), "text"));
        ok(first && !strcmp(first, cjk) && second && !strncmp(second, "[headroom: cut; hash=", 21) && nws == 1 &&
               ws[0].raw_off > strlen(cjk),
           "%s: that string stays as it was, the other is rewritten", mode ? "placeholder past the end" : "cut character");
        json_decref(got);
        if (rc == 0)
            hr_tbuf_free(&out.b);
    }
    free(t);
    json_decref(mcp);
}

static void policy(void)
{
    char *rows = rows_json(300, NULL);
    json_t *body = openai_body("item", rows);
    struct fh_request r;

    fh_request_init(&r, body, HR_PROVIDER_OPENAI, "");
    r.units[0].flags |= HR_UNIT_PROTECTED;
    headroom_plugin.apply(state, &r.req);
    is_int(r.replaced, 0, "protected unit untouched");
    fh_request_free(&r);

    fh_request_init(&r, body, HR_PROVIDER_OPENAI, "");
    r.units[0].flags |= HR_UNIT_HAS_MARKER;
    headroom_plugin.apply(state, &r.req);
    is_int(r.replaced, 0, "unit with a marker untouched");
    fh_request_free(&r);

    fh_request_init(&r, body, HR_PROVIDER_OPENAI, "");
    r.units[0].type = HR_CT_TEXT;
    headroom_plugin.apply(state, &r.req);
    is_int(r.replaced, 0, "unit the router called text untouched");
    fh_request_free(&r);

    fh_log_clear();
    fh_request_init(&r, body, HR_PROVIDER_OPENAI, "");
    r.units[0].type = HR_CT_JSON_ARRAY;
    headroom_plugin.apply(state, &r.req);
    is_int(r.replaced, 1, "json_array unit crushed");
    is_str(r.tag, "smart_crusher:top_n:kept=14/300", "stage tag");
    ok(strstr(fh_log(), "INFO:headroom.transforms.smart_crusher:SmartCrusher applied top_n strategy: kept 14 of 300 items\n") != NULL,
       "INFO log line");
    ok(strstr(fh_log(), "DEBUG:headroom.transforms.smart_crusher:Kept items: [0,") != NULL, "DEBUG log line");
    ok(json_string_value(json_object_get(json_array_get(json_object_get(r.req.body, "messages"), 2), "content")) ==
           r.units[0].text, "body JSON in sync with the unit");
    /* A second turn carries the crushed text: it is not crushed again. */
    json_t *body2 = openai_body("item", r.units[0].text);
    fh_request_free(&r);
    fh_request_init(&r, body2, HR_PROVIDER_OPENAI, "");
    r.units[0].flags = 0;
    headroom_plugin.apply(state, &r.req);
    is_int(r.replaced, 0, "already-crushed text not crushed again");
    fh_request_free(&r);
    json_decref(body2);
    json_decref(body);
    free(rows);

    /* Under min_tokens. */
    rows = rows_json(20, NULL);
    body = openai_body("x", rows);
    fh_request_init(&r, body, HR_PROVIDER_OPENAI, "");
    ok(r.units[0].tokens < 200, "small unit is under min_tokens (%zu)", r.units[0].tokens);
    headroom_plugin.apply(state, &r.req);
    is_int(r.replaced, 0, "unit under min_tokens untouched");
    fh_request_free(&r);
    json_decref(body);
    free(rows);

    /* Anthropic tool_result with text blocks. */
    rows = rows_json(300, NULL);
    body = json_pack("{s:s,s:[{s:s,s:[{s:s,s:s,s:[{s:s,s:s}]}]}]}", "model", "claude-sonnet-4",
                     "messages", "role", "user", "content", "type", "tool_result", "tool_use_id", "t1",
                     "content", "type", "text", "text", rows);
    fh_request_init(&r, body, HR_PROVIDER_ANTHROPIC, "");
    headroom_plugin.apply(state, &r.req);
    is_int(r.replaced, 1, "anthropic tool_result text block crushed");
    fh_request_free(&r);
    json_decref(body);
    free(rows);
}

/* Several JSON tool outputs in one OpenAI request. */
static json_t *multi_body(const char *query, char *const *texts, size_t n)
{
    json_t *body = openai_body(query, texts[0]);
    json_t *messages = json_object_get(body, "messages");
    for (size_t i = 1; i < n; i++) {
        char id[16];
        snprintf(id, sizeof id, "c%zu", i + 1);
        json_array_append_new(messages, json_pack("{s:s,s:n,s:[{s:s,s:s,s:{s:s,s:s}}]}", "role", "assistant", "content",
                                                  "tool_calls", "id", id, "type", "function", "function", "name",
                                                  "fetch", "arguments", "{}"));
        json_array_append_new(messages, json_pack("{s:s,s:s,s:s}", "role", "tool", "tool_call_id", id, "content",
                                                  texts[i]));
    }
    return body;
}

static json_int_t cache_stat(const char *what)
{
    json_t *st = fh_stats("smart_crusher");
    json_int_t v = json_integer_value(json_object_get(json_object_get(st, "result_cache"), what));
    json_decref(st);
    return v;
}

/* Outputs of one apply, as text joined by NUL-free separators. */
static char *apply_outputs(void *inst_state, const char *query, char *const *texts, size_t n, size_t *replaced)
{
    json_t *body = multi_body(query, texts, n);
    struct fh_request r;
    fh_request_init(&r, body, HR_PROVIDER_OPENAI, query);
    json_decref(body);
    headroom_plugin.apply(inst_state, &r.req);
    *replaced = (size_t)r.replaced;
    size_t total = 1;
    for (size_t i = 0; i < r.req.n_units; i++)
        total += r.units[i].len + 1;
    char *all = malloc(total), *p = all;
    for (size_t i = 0; i < r.req.n_units; i++) {
        memcpy(p, r.units[i].text, r.units[i].len);
        p += r.units[i].len;
        *p++ = '\n';
    }
    *p = '\0';
    fh_request_free(&r);
    return all;
}

/* The result cache and the parallel crush change nothing in the output: the
 * same request gives the same bytes cached, uncached and crushed one unit
 * at a time; a resent output is a hit, another query a miss. */
static void result_cache(const char *dir)
{
    static const char *const names[] = {"logs_1000.json", "db_1000.json", "search_100.json", "metrics_1000.json",
                                        "code_100.json", "api_1000.json"};
    enum { N = sizeof names / sizeof *names };
    char *texts[N];
    for (size_t i = 0; i < N; i++) {
        char path[1024];
        size_t len;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        texts[i] = slurp(path, &len);
        if (!texts[i]) {
            ok(0, "read %s", path);
            return;
        }
    }
    struct hr_conf on, off;
    void *cached = NULL, *uncached = NULL;
    fh_conf(&on, headroom_plugin.conf_keys, NULL);
    fh_conf(&off, headroom_plugin.conf_keys, "result_cache_mb", "0", NULL);
    is_int(headroom_plugin.init(fh_host(), &inst, &off, &uncached), 0, "init with result_cache_mb 0");
    is_int(headroom_plugin.init(fh_host(), &inst, &on, &cached), 0, "init with the result cache on");
    size_t n1, n2, n3, n4;
    const char *q = "why did payment fail";
    char *first = apply_outputs(cached, q, texts, N, &n1);
    is_int(cache_stat("hits"), 0, "first sight: no cache hits");
    is_int(cache_stat("lookups"), N, "one lookup per candidate output");
    char *again = apply_outputs(cached, q, texts, N, &n2);
    is_int(cache_stat("hits"), N, "resent outputs: every one a hit");
    char *plain = apply_outputs(uncached, q, texts, N, &n3);
    is_int(n1, N, "all %d outputs crushed", N);
    ok(n1 == n2 && n2 == n3 && !strcmp(first, again) && !strcmp(first, plain),
       "cached, uncached and repeated applies give byte-identical outputs");
    /* One unit per request: no parallelism at all. */
    size_t pos = 0, same = 1;
    for (size_t i = 0; i < N; i++) {
        size_t one;
        char *single = apply_outputs(uncached, q, &texts[i], 1, &one);
        size_t l = strlen(single);
        same &= one == 1 && !strncmp(first + pos, single, l);
        pos += l;
        free(single);
    }
    ok(same, "crushing the outputs one request at a time gives the same bytes");
    free(apply_outputs(cached, "suspended users", texts, N, &n4));
    is_int(cache_stat("hits"), N, "another query: misses (relevance depends on it)");
    is_int(cache_stat("lookups"), 3 * N, "lookups counted");
    ok(cache_stat("bytes") > 0 && cache_stat("bytes") <= cache_stat("max_bytes"), "cache bytes within its budget");
    free(first);
    free(again);
    free(plain);
    fh_drop_stats(cached);
    headroom_plugin.fini(cached);
    headroom_plugin.fini(uncached);
    for (size_t i = 0; i < N; i++)
        free(texts[i]);
}

/* The fake host flags HR_UNIT_HAS_MARKER as the real one does (a plugin
 * tested on it sees what it would see in headroomd): the texts
 * t/stage_rollback_test.py sends through headroomd, each followed by the
 * same log lines, and the flag headroomd gives each there. */
static void fake_host_marker_rule(void)
{
    static const struct {
        const char *text;
        int flagged;
    } cases[] = {
        {"{\"_headroom\":{\"omitted\":3,\"hash\":\"0123456789abcdef01234567\"}} and the rows after it", 1},
        {"{\"content\":[{\"type\":\"text\",\"text\":\"[{\\\"_headroom\\\":{\\\"omitted\\\":3}},{\\\"id\\\":1}]\"}]}", 1},
        {"[headroom: 290 of 300 lines omitted; headroom_retrieve hash=0123456789abcdef01234567]", 1},
        {"a column named _headroom in the rows, never quoted", 0},
        {"{\"_headroomx\":1,\"id\":2} and the rows after it", 0},
        {"{\\\\\"_headroom\\\\\":1} a backslash escaped, not the quote", 0},
        {"[headroom:290 of 300 lines omitted] no space", 0},
        {"[Headroom: 290 of 300 lines omitted] capital H", 0},
    };
    static char text[32768];
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        size_t l = (size_t)snprintf(text, sizeof text, "%s", cases[c].text);
        for (int i = 0; i < 300 && l < sizeof text; i++)
            l += (size_t)snprintf(text + l, sizeof text - l,
                                  "\n2026-12-05T10:%02d:%02dZ INFO worker-%d handled request %d in %d ms status=200",
                                  i / 60, i % 60, i % 4, i, i * 7 % 90);
        json_t *body = openai_body("what failed?", text);
        struct fh_request r;
        fh_request_init(&r, body, HR_PROVIDER_OPENAI, "");
        is_int(!!(r.units[0].flags & HR_UNIT_HAS_MARKER), cases[c].flagged, "fake host, as headroomd: %.50s %s",
               cases[c].text, cases[c].flagged ? "flagged" : "not flagged");
        /* And a stage's replacement holding it, as a 1.6 host re-flags it. */
        r.units[0].flags &= ~HR_UNIT_HAS_MARKER;
        ok(fh_host()->unit_replace(&r.req, 0, cases[c].text, strlen(cases[c].text)) == HR_OK &&
               !!(r.units[0].flags & HR_UNIT_HAS_MARKER) == cases[c].flagged,
           "... and as a replacement: %s", cases[c].flagged ? "flagged" : "not flagged");
        fh_request_free(&r);
        json_decref(body);
    }
}

/* The fake host's unit_replace answers as headroomd's does
 * (hr_pipeline_unit_replace): a protected unit and a text that is not UTF-8
 * are HR_EINVAL, and a try on a protected unit is counted for tests. */
static void fake_host_replace_answers(void)
{
    static char text[8192];
    size_t l = 0;
    for (int i = 0; i < 100 && l < sizeof text; i++)
        l += (size_t)snprintf(text + l, sizeof text - l, "line %d of a long enough tool output\n", i);
    json_t *body = openai_body("what failed?", text);
    struct fh_request r;
    fh_request_init(&r, body, HR_PROVIDER_OPENAI, "");
    is_int(fh_host()->unit_replace(&r.req, 0, "short \xff\xfe", 8), HR_EINVAL, "fake host: a text not UTF-8 is HR_EINVAL");
    is_int(fh_host()->unit_replace(&r.req, 0, NULL, 0), HR_EINVAL, "fake host: no text is HR_EINVAL");
    r.units[0].flags |= HR_UNIT_PROTECTED;
    is_int(fh_host()->unit_replace(&r.req, 0, "short", 5), HR_EINVAL, "fake host: a protected unit is HR_EINVAL");
    is_int(r.protected_writes, 1, "... and the try is counted");
    ok(!strcmp(r.units[0].text, text), "... and its text is unchanged");
    fh_request_free(&r);
    json_decref(body);
}

int main(void)
{
    struct hr_conf conf;
    fh_conf(&conf, headroom_plugin.conf_keys, NULL);
    fh_set_log_level(HR_LOG_WARN);
    is_int(headroom_plugin.init(fh_host(), &inst, &conf, &state), 0, "init with defaults");
    {
        struct hr_conf bad;
        void *s2 = NULL;
        fh_conf(&bad, headroom_plugin.conf_keys, "max_items", "0", NULL);
        fh_set_log_level(-1);
        ok(headroom_plugin.init(fh_host(), &inst, &bad, &s2) == HR_EINVAL, "max_items 0 refused");
        ok(strstr(fh_log(), "max_items 1..100000 (got 0)") != NULL, "error says what was wrong");
        fh_set_log_level(HR_LOG_WARN);
    }
    const char *dir = fixture_dir();
    ok(dir != NULL, "fixtures available");
    if (dir) {
        char mpath[1024];
        snprintf(mpath, sizeof mpath, "%s/manifest.json", dir);
        json_t *manifest = json_load_file(mpath, 0, NULL);
        ok(manifest != NULL, "manifest parsed");
        const char *file;
        json_t *spec;
        double s100 = 0, s1000 = 0;
        size_t n100 = 0, n1000 = 0;
        json_object_foreach(manifest, file, spec) {
            fixture(dir, file, spec, &s100, &s1000);
            if (json_integer_value(json_object_get(spec, "rows")) >= 1000)
                n1000++;
            else
                n100++;
        }
        tap_diag("mean token savings: %.1f%% on 100-row sets, %.1f%% on 1000-row sets",
                 n100 ? s100 * 100 / (double)n100 : 0, n1000 ? s1000 * 100 / (double)n1000 : 0);
        json_decref(manifest);
        result_cache(dir);
    }
    bad_input();
    fake_host_marker_rule();
    fake_host_replace_answers();
    fh_set_log_level(HR_LOG_WARN);
    policy();
    rows_as_text();
    rows_as_text_cached();
    rows_as_text_old_host();
    wrap_walk_bad_output();
    mixed_schema_flags();
    per_schema_groups();
    not_shown();
    identifier_words();
    request_4xx();
    asked_row_kept();
    headroom_plugin.fini(state);
    fh_reset();
    return tap_exit();
}
