/* prom_render_test.c — unit tests of the Prometheus text renderer: escaping,
 * number formatting, histogram lines, grouping and the drop rules. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "tap.h"
#include "../plugins/prometheus/render.h"

static char *esc(const char *s, int label)
{
    static char out[4096];
    struct hr_prom_buf b = {0};
    if (label) hr_prom_escape_label(&b, s);
    else hr_prom_escape_help(&b, s);
    snprintf(out, sizeof out, "%s", b.p ? b.p : "");
    hr_prom_buf_free(&b);
    return out;
}

static const char *num(double v)
{
    static char out[32];
    hr_prom_format_double(out, v);
    return out;
}

/* A scripted walk: families are declared by the test, samples fed in order. */
struct walk_item {
    struct hr_metric_family f;
    struct hr_metric_sample s;
};

static char *render(const struct walk_item *items, size_t n, size_t *dropped, const char **reason)
{
    static char reason_copy[256];
    struct hr_prom_render *r = hr_prom_render_new();
    for (size_t i = 0; i < n; i++) hr_prom_visit(r, &items[i].f, &items[i].s);
    const char *why = NULL;
    *dropped = hr_prom_render_dropped(r, &why);
    snprintf(reason_copy, sizeof reason_copy, "%s", why ? why : "");
    if (reason) *reason = reason_copy;
    char *out = NULL;
    size_t len = 0;
    int rc = hr_prom_render_finish(r, &out, &len);
    hr_prom_render_free(r);
    if (rc || strlen(out) != len) {
        free(out);
        return NULL;
    }
    return out;
}

#define FAM(name, help, type, n, labels) {sizeof(struct hr_metric_family), name, help, type, n, labels}

static const char *const L_MODEL[] = {"model"};
static const char *const L_T[] = {"transform"};
static const char *const L_LE[] = {"le"};
static const char *const L_BAD[] = {"bad-label"};
static const char *const L_DUP[] = {"a", "a"};

/* Strict UTF-8 (no overlongs, surrogates or code points above U+10FFFF). */
static int valid_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int n = *p < 0x80 ? 1 : (*p & 0xE0) == 0xC0 ? 2 : (*p & 0xF0) == 0xE0 ? 3 : (*p & 0xF8) == 0xF0 ? 4 : 0;
        if (!n) return 0;
        unsigned long cp = n == 1 ? *p : n == 2 ? (*p & 0x1Fu) : n == 3 ? (*p & 0x0Fu) : (*p & 0x07u);
        for (int i = 1; i < n; i++) {
            if ((p[i] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (p[i] & 0x3Fu);
        }
        static const unsigned long min[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
        p += n;
    }
    return 1;
}

/* Reverse of label escaping, for the round-trip property. */
static void unescape(const char *in, char *out)
{
    while (*in) {
        if (*in == '\\' && in[1]) {
            in++;
            *out++ = *in == 'n' ? '\n' : *in;
            in++;
        } else {
            *out++ = *in++;
        }
    }
    *out = '\0';
}

int main(void)
{
    {
        char f[32];
        hr_prom_format_figure(f, 0.051990999999999996, hr_prom_decimals_for("headroom_cost_usd_total"));
        is_str(f, "0.051991", "a USD counter: at most 6 decimals, no binary noise");
        hr_prom_format_figure(f, 69.099999999999994, hr_prom_decimals_for("headroom_uptime_seconds"));
        is_str(f, "69.1", "seconds: 3 decimals at most");
        hr_prom_format_figure(f, 12.345678, hr_prom_decimals_for("headroom_overhead_ms"));
        is_str(f, "12.346", "_ms: 3 decimals");
        hr_prom_format_figure(f, 3.0, hr_prom_decimals_for("headroom_cost_usd_total"));
        is_str(f, "3", "a whole value has no decimals");
        hr_prom_format_figure(f, 1e-7, hr_prom_decimals_for("headroom_savings_usd_total"));
        is_str(f, "0", "under half a micro-dollar rounds to 0");
        is_int(hr_prom_decimals_for("headroom_requests_total"), -1, "a count is not rounded");
    }

    /* ---- escaping */
    is_str(esc("plain-model_1.0", 1), "plain-model_1.0", "plain label value unchanged");
    is_str(esc("a\\b\"c\nd", 1), "a\\\\b\\\"c\\nd", "label: backslash, quote, newline escaped");
    is_str(esc("say \"hi\"\\\n", 0), "say \"hi\"\\\\\\n", "help: backslash and newline escaped, quote kept");
    is_str(esc("", 1), "", "empty label value");
    is_str(esc("caf\xC3\xA9 \xF0\x9F\x98\x80", 1), "caf\xC3\xA9 \xF0\x9F\x98\x80", "valid multi-byte UTF-8 kept");
    is_str(esc("a\xFF" "b", 1), "a\xEF\xBF\xBD" "b", "invalid byte -> U+FFFD");
    is_str(esc("\xC0\x80", 1), "\xEF\xBF\xBD\xEF\xBF\xBD", "overlong NUL -> two U+FFFD");
    is_str(esc("\xED\xA0\x80", 1), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD", "UTF-16 surrogate refused");
    is_str(esc("x\xE2\x82", 1), "x\xEF\xBF\xBD\xEF\xBF\xBD", "truncated sequence at the end");
    is_str(esc("\xF4\x90\x80\x80", 1), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD", "above U+10FFFF refused");

    /* ---- numbers */
    is_str(num(0.01), "0.01", "0.01");
    is_str(num(0.025), "0.025", "0.025");
    is_str(num(1), "1", "1 without a fraction");
    is_str(num(2.5), "2.5", "2.5");
    is_str(num(120000), "120000", "120000 not in exponent form");
    is_str(num(0), "0", "zero");
    is_str(num(INFINITY), "+Inf", "+Inf");
    is_str(num(-INFINITY), "-Inf", "-Inf");
    is_str(num(NAN), "NaN", "NaN");
    is_str(num(0.1 + 0.2), "0.30000000000000004", "round-trips (17 digits when needed)");
    is_str(num(9007199254740993.0), "9007199254740992", "2^53+1 rounds as a double does");
    is_str(num(123456789012.0), "123456789012", "large integer counter exact");
    is_str(num(1e21), "1e+21", "huge value in exponent form");
    ok(strtod(num(1.0 / 3), NULL) == 1.0 / 3, "1/3 round-trips");

    /* ---- names */
    ok(hr_prom_valid_metric_name("headroom_requests_total"), "valid metric name");
    ok(hr_prom_valid_metric_name("ns:rule_metric"), "colon allowed in metric names");
    ok(!hr_prom_valid_metric_name("9lives"), "metric name cannot start with a digit");
    ok(!hr_prom_valid_metric_name("a-b"), "dash refused");
    ok(!hr_prom_valid_metric_name(""), "empty metric name refused");
    ok(hr_prom_valid_label_name("provider"), "valid label name");
    ok(!hr_prom_valid_label_name("__name__"), "reserved label prefix refused");
    ok(!hr_prom_valid_label_name("a:b"), "colon refused in label names");

    /* ---- full render */
    static const double bounds[] = {0.01, 1, 2.5, INFINITY};
    static const uint64_t cum[] = {1, 3, 3, 4};
    const char *weird[] = {"we\"ird\\mo\ndel"};
    const char *gpt[] = {"gpt-4o"};
    const char *crush[] = {"smart_crusher"};
    struct walk_item walk[] = {
        {FAM("headroom_up", "1 while serving", HR_METRIC_GAUGE, 0, NULL), {.struct_size = sizeof(struct hr_metric_sample), .value = 1}},
        {FAM("headroom_requests_by_model", "Requests by model\nsecond line", HR_METRIC_COUNTER, 1, L_MODEL),
         {.struct_size = sizeof(struct hr_metric_sample), .label_values = gpt, .value = 12}},
        {FAM("headroom_requests_by_model", "Requests by model\nsecond line", HR_METRIC_COUNTER, 1, L_MODEL),
         {.struct_size = sizeof(struct hr_metric_sample), .label_values = weird, .value = 3}},
        {FAM("headroom_transform_timing_ms", "Time per stage (ms)", HR_METRIC_HISTOGRAM, 1, L_T),
         {.struct_size = sizeof(struct hr_metric_sample), .label_values = crush, .n_buckets = 4, .bucket_upper = bounds,
          .bucket_cumulative = cum, .count = 4, .sum = 7.25}},
        {FAM("headroom_cost_usd_total", "", HR_METRIC_COUNTER, 0, NULL), {.struct_size = sizeof(struct hr_metric_sample), .value = 0.1 + 0.2}},
    };
    size_t dropped;
    char *out = render(walk, sizeof walk / sizeof *walk, &dropped, NULL);
    const char *want =
        "# HELP headroom_up 1 while serving\n"
        "# TYPE headroom_up gauge\n"
        "headroom_up 1\n"
        "# HELP headroom_requests_by_model Requests by model\\nsecond line\n"
        "# TYPE headroom_requests_by_model counter\n"
        "headroom_requests_by_model{model=\"gpt-4o\"} 12\n"
        "headroom_requests_by_model{model=\"we\\\"ird\\\\mo\\ndel\"} 3\n"
        "# HELP headroom_transform_timing_ms Time per stage (ms)\n"
        "# TYPE headroom_transform_timing_ms histogram\n"
        "headroom_transform_timing_ms_bucket{transform=\"smart_crusher\",le=\"0.01\"} 1\n"
        "headroom_transform_timing_ms_bucket{transform=\"smart_crusher\",le=\"1\"} 3\n"
        "headroom_transform_timing_ms_bucket{transform=\"smart_crusher\",le=\"2.5\"} 3\n"
        "headroom_transform_timing_ms_bucket{transform=\"smart_crusher\",le=\"+Inf\"} 4\n"
        "headroom_transform_timing_ms_sum{transform=\"smart_crusher\"} 7.25\n"
        "headroom_transform_timing_ms_count{transform=\"smart_crusher\"} 4\n"
        "# TYPE headroom_cost_usd_total counter\n"
        "headroom_cost_usd_total 0.3\n";
    is_str(out, want, "exposition text: HELP/TYPE, escaping, histogram lines, no HELP when empty");
    is_int(dropped, 0, "nothing dropped");
    free(out);

    /* ---- histogram without an +Inf bound gets one; unlabelled histogram */
    static const double b2[] = {5, 10};
    static const uint64_t c2[] = {2, 5};
    struct walk_item h2[] = {{FAM("lat_ms", "l", HR_METRIC_HISTOGRAM, 0, NULL),
                              {.struct_size = sizeof(struct hr_metric_sample), .n_buckets = 2, .bucket_upper = b2,
                               .bucket_cumulative = c2, .count = 7, .sum = 40}}};
    out = render(h2, 1, &dropped, NULL);
    is_str(out,
           "# HELP lat_ms l\n# TYPE lat_ms histogram\n"
           "lat_ms_bucket{le=\"5\"} 2\nlat_ms_bucket{le=\"10\"} 5\nlat_ms_bucket{le=\"+Inf\"} 7\n"
           "lat_ms_sum 40\nlat_ms_count 7\n",
           "+Inf bucket added when the walk omits it");
    free(out);

    /* ---- families that arrive apart are grouped; every drop rule */
    static const double bad_b[] = {1, 0.5, INFINITY};
    static const uint64_t bad_c[] = {1, 2, 2};
    static const double nm_b[] = {1, 2, INFINITY};
    static const uint64_t nm_c[] = {3, 2, 3};
    static const uint64_t inf_c[] = {1, 2, 5};
    const char *a1[] = {"a"}, *a2[] = {"b"}, *nul[] = {NULL};
    struct walk_item mixed[] = {
        {FAM("m_total", "m", HR_METRIC_COUNTER, 1, L_MODEL), {.struct_size = sizeof(struct hr_metric_sample), .label_values = a1, .value = 1}},
        {FAM("g", "g", HR_METRIC_GAUGE, 0, NULL), {.struct_size = sizeof(struct hr_metric_sample), .value = 2}},
        {FAM("m_total", "m", HR_METRIC_COUNTER, 1, L_MODEL), {.struct_size = sizeof(struct hr_metric_sample), .label_values = a2, .value = 3}},
        /* 1 duplicate series */
        {FAM("m_total", "m", HR_METRIC_COUNTER, 1, L_MODEL), {.struct_size = sizeof(struct hr_metric_sample), .label_values = a1, .value = 9}},
        /* 2 type clash */
        {FAM("g", "g", HR_METRIC_COUNTER, 0, NULL), {.struct_size = sizeof(struct hr_metric_sample), .value = 5}},
        /* 3 invalid metric name */
        {FAM("bad name", "x", HR_METRIC_GAUGE, 0, NULL), {.struct_size = sizeof(struct hr_metric_sample), .value = 1}},
        /* 4 invalid label name */
        {FAM("bl", "x", HR_METRIC_GAUGE, 1, L_BAD), {.struct_size = sizeof(struct hr_metric_sample), .label_values = a1, .value = 1}},
        /* 5 duplicate label name */
        {FAM("dl", "x", HR_METRIC_GAUGE, 2, L_DUP), {.struct_size = sizeof(struct hr_metric_sample), .label_values = L_DUP, .value = 1}},
        /* 6 histogram with an le label */
        {FAM("hle", "x", HR_METRIC_HISTOGRAM, 1, L_LE),
         {.struct_size = sizeof(struct hr_metric_sample), .label_values = a1, .n_buckets = 3, .bucket_upper = nm_b, .bucket_cumulative = inf_c, .count = 5}},
        /* 7 bounds not increasing */
        {FAM("hb", "x", HR_METRIC_HISTOGRAM, 0, NULL),
         {.struct_size = sizeof(struct hr_metric_sample), .n_buckets = 3, .bucket_upper = bad_b, .bucket_cumulative = bad_c, .count = 2}},
        /* 8 counts not cumulative */
        {FAM("hc", "x", HR_METRIC_HISTOGRAM, 0, NULL),
         {.struct_size = sizeof(struct hr_metric_sample), .n_buckets = 3, .bucket_upper = nm_b, .bucket_cumulative = nm_c, .count = 3}},
        /* 9 +Inf bucket != count */
        {FAM("hi", "x", HR_METRIC_HISTOGRAM, 0, NULL),
         {.struct_size = sizeof(struct hr_metric_sample), .n_buckets = 3, .bucket_upper = nm_b, .bucket_cumulative = inf_c, .count = 6}},
        /* 10 NULL label value */
        {FAM("m_total", "m", HR_METRIC_COUNTER, 1, L_MODEL), {.struct_size = sizeof(struct hr_metric_sample), .label_values = nul, .value = 1}},
        /* 11 no buckets */
        {FAM("hn", "x", HR_METRIC_HISTOGRAM, 0, NULL), {.struct_size = sizeof(struct hr_metric_sample), .count = 0}},
        /* 12 unknown type */
        {FAM("ut", "x", (enum hr_metric_type)42, 0, NULL), {.struct_size = sizeof(struct hr_metric_sample), .value = 1}},
        /* 13 same name, other label names */
        {FAM("m_total", "m", HR_METRIC_COUNTER, 1, L_T), {.struct_size = sizeof(struct hr_metric_sample), .label_values = a2, .value = 1}},
    };
    const char *reason = NULL;
    out = render(mixed, sizeof mixed / sizeof *mixed, &dropped, &reason);
    is_str(out,
           "# HELP m_total m\n# TYPE m_total counter\nm_total{model=\"a\"} 1\nm_total{model=\"b\"} 3\n"
           "# HELP g g\n# TYPE g gauge\ng 2\n",
           "samples grouped by family; nothing invalid emitted");
    is_int(dropped, 13, "13 bad samples dropped and counted");
    ok(reason && strstr(reason, "m_total") && strstr(reason, "duplicate series"), "first drop reason names family and cause: %s",
       reason ? reason : "(null)");
    free(out);

    /* ---- empty walk renders an empty (valid) exposition */
    out = render(NULL, 0, &dropped, NULL);
    is_str(out, "", "empty walk -> empty body");
    free(out);

    /* ---- property: random label values always give one well-formed UTF-8
     * line per sample, and valid UTF-8 round-trips through the escaping */
    srand(12345);
    int all_lines = 1, all_utf8 = 1, roundtrip = 1, tested_valid = 0;
    for (int iter = 0; iter < 5000; iter++) {
        char val[64];
        size_t n = (size_t)(rand() % 40);
        static const char alphabet[] = "ab\\\"\n{}=,# \xC3\xA9\xFF\xE2\x82\xAC";
        for (size_t i = 0; i < n; i++)
            val[i] = rand() % 3 ? alphabet[rand() % (int)(sizeof alphabet - 1)] : (char)(1 + rand() % 255);
        val[n] = '\0';
        const char *lv[] = {val};
        struct walk_item one[] = {{FAM("p_total", "p", HR_METRIC_COUNTER, 1, L_MODEL),
                                   {.struct_size = sizeof(struct hr_metric_sample), .label_values = lv, .value = 1}}};
        out = render(one, 1, &dropped, NULL);
        if (!out) {
            all_lines = 0;
            break;
        }
        int newlines = 0;
        for (char *p = out; *p; p++) newlines += *p == '\n';
        if (newlines != 3 || strncmp(strstr(out, "p_total{") ? strstr(out, "p_total{") : "", "p_total{model=\"", 15)) all_lines = 0;
        if (!valid_utf8(out)) all_utf8 = 0;
        if (valid_utf8(val)) {
            tested_valid++;
            char *start = strstr(out, "model=\"") + 7;
            char *end = strstr(out, "\"} 1\n");
            char enc[512], dec[512];
            if (!end || end < start || (size_t)(end - start) >= sizeof enc) {
                roundtrip = 0;
            } else {
                memcpy(enc, start, (size_t)(end - start));
                enc[end - start] = '\0';
                unescape(enc, dec);
                if (strcmp(dec, val)) {
                    if (roundtrip) tap_diag("round-trip failed: %s", enc);
                    roundtrip = 0;
                }
            }
        }
        free(out);
    }
    ok(all_lines, "5000 random label values: HELP, TYPE and exactly one sample line each");
    ok(all_utf8, "output is always valid UTF-8");
    ok(roundtrip && tested_valid > 100, "valid UTF-8 values round-trip through escaping (%d tried)", tested_valid);
    return tap_exit();
}
