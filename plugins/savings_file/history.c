/* history.c — GET /stats-history: query parsing, gap-free UTC rollups
 * (hourly/daily/weekly/monthly) from the stored buckets, checkpoint
 * sampling, and the JSON and RFC 4180 CSV renderings. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "numfmt.h"
#include "savings.h"

#define HOURLY_SERIES_HOURS 168 /* the hourly chart shows the last 7 days */
#define MAX_SERIES_ROWS 3660    /* ten years of days: bounds a response however odd the file */
#define COMPACT_POINTS 500

const char *const hr_sav_series_names[5] = {"history", "hourly", "daily", "weekly", "monthly"};
static const char *const mode_names[3] = {"compact", "full", "none"};
static const char *const format_names[2] = {"json", "csv"};

/* ----------------------------------------------------------------- query */

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* application/x-www-form-urlencoded decoding; a bad escape is kept as is. */
static void url_decode(const char *s, size_t n, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < outlen; i++) {
        char c = s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            c = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        }
        out[o++] = c;
    }
    out[o] = '\0';
}

static json_t *bad_param(const char *param, const char *value, const char *const *allowed, size_t n)
{
    json_t *list = json_array();
    char msg[256], all[128] = "", safe[48];
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(list, json_string(allowed[i]));
        strncat(all, i ? ", " : "", sizeof all - strlen(all) - 1);
        strncat(all, allowed[i], sizeof all - strlen(all) - 1);
    }
    /* Echo the value printable-ASCII only: the body must stay valid JSON. */
    size_t j = 0;
    for (; value[j] && j + 1 < sizeof safe; j++)
        safe[j] = (unsigned char)value[j] >= 0x20 && (unsigned char)value[j] < 0x7f ? value[j] : '?';
    safe[j] = '\0';
    snprintf(msg, sizeof msg, "invalid value '%s' for parameter '%s': use one of %s", safe, param, all);
    return json_pack("{s:{s:s,s:s,s:s,s:s,s:o}}", "error", "type", "invalid_parameter", "message", msg, "parameter",
                     param, "value", safe, "allowed", list);
}

static int pick(const char *value, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(value, names[i])) return (int)i;
    return -1;
}

int hr_sav_query_parse(const char *query, struct hr_sav_query *q, json_t **err)
{
    q->mode = HR_SAV_COMPACT;
    q->csv = 0;
    q->series = HR_SAV_HISTORY;
    *err = NULL;
    const char *p = query ? query : "";
    while (*p) {
        size_t len = strcspn(p, "&");
        const char *eq = memchr(p, '=', len);
        char key[32], val[128];
        url_decode(p, eq ? (size_t)(eq - p) : len, key, sizeof key);
        url_decode(eq ? eq + 1 : p + len, eq ? len - (size_t)(eq - p) - 1 : 0, val, sizeof val);
        int idx;
        if (!strcmp(key, "history_mode")) {
            if ((idx = pick(val, mode_names, 3)) < 0) return *err = bad_param(key, val, mode_names, 3), -1;
            q->mode = (enum hr_sav_mode)idx;
        } else if (!strcmp(key, "format")) {
            if ((idx = pick(val, format_names, 2)) < 0) return *err = bad_param(key, val, format_names, 2), -1;
            q->csv = idx == 1;
        } else if (!strcmp(key, "series")) {
            if ((idx = pick(val, hr_sav_series_names, 5)) < 0)
                return *err = bad_param(key, val, hr_sav_series_names, 5), -1;
            q->series = (enum hr_sav_series)idx;
        }
        p += len;
        if (*p == '&') p++;
    }
    return 0;
}

/* ------------------------------------------------------------ time math */

static int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

static int64_t bucket_start(int64_t t, enum hr_sav_series s)
{
    switch (s) {
    case HR_SAV_HOURLY: return floor_div(t, 3600) * 3600;
    case HR_SAV_DAILY: return floor_div(t, 86400) * 86400;
    case HR_SAV_WEEKLY: {
        int64_t day = floor_div(t, 86400);
        /* 1970-01-01 was a Thursday: Monday-based weekday is (day + 3) mod 7. */
        int64_t wd = ((day + 3) % 7 + 7) % 7;
        return (day - wd) * 86400;
    }
    default: {
        time_t tt = (time_t)t;
        struct tm tm;
        gmtime_r(&tt, &tm);
        tm.tm_mday = 1;
        tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
        return (int64_t)timegm(&tm);
    }
    }
}

static int64_t month_number(int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    return (int64_t)tm.tm_year * 12 + tm.tm_mon;
}

/* Index of t's bucket counted from the bucket starting at `first`. */
static int64_t bucket_index(int64_t t, int64_t first, enum hr_sav_series s)
{
    switch (s) {
    case HR_SAV_HOURLY: return floor_div(t - first, 3600);
    case HR_SAV_DAILY: return floor_div(t - first, 86400);
    case HR_SAV_WEEKLY: return floor_div(bucket_start(t, s) - first, 7 * 86400);
    default: return month_number(t) - month_number(first);
    }
}

static int64_t nth_bucket(int64_t first, int64_t i, enum hr_sav_series s)
{
    switch (s) {
    case HR_SAV_HOURLY: return first + i * 3600;
    case HR_SAV_DAILY: return first + i * 86400;
    case HR_SAV_WEEKLY: return first + i * 7 * 86400;
    default: {
        time_t tt = (time_t)first;
        struct tm tm;
        gmtime_r(&tt, &tm);
        tm.tm_mon += (int)i;
        return (int64_t)timegm(&tm);
    }
    }
}

/* --------------------------------------------------------------- series */

struct src_bucket {
    int64_t start;
    const json_t *b;
};

static int cmp_src(const void *a, const void *b)
{
    int64_t x = ((const struct src_bucket *)a)->start, y = ((const struct src_bucket *)b)->start;
    return x < y ? -1 : x > y;
}

/* Every stored bucket (compacted days and hours), oldest first. */
static struct src_bucket *collect(const json_t *doc, size_t *n)
{
    const json_t *tabs[2] = {json_object_get(doc, "daily"), json_object_get(doc, "hourly")};
    size_t cap = json_object_size(tabs[0]) + json_object_size(tabs[1]);
    struct src_bucket *v = malloc((cap ? cap : 1) * sizeof *v);
    *n = 0;
    if (!v) return NULL;
    for (int i = 0; i < 2; i++) {
        const char *k;
        json_t *b;
        json_object_foreach((json_t *)tabs[i], k, b) {
            int64_t t;
            if (hr_sav_parse_iso(k, &t) == 0 && json_is_object(b)) v[(*n)++] = (struct src_bucket){t, b};
        }
    }
    qsort(v, *n, sizeof *v, cmp_src);
    return v;
}

json_t *hr_sav_series(const json_t *doc, enum hr_sav_series s, double now)
{
    size_t n;
    struct src_bucket *src = collect(doc, &n);
    json_t *rows = json_array();
    if (!src) return rows;
    int64_t cur = bucket_start((int64_t)now, s), last = cur, first = cur;
    if (n && bucket_start(src[n - 1].start, s) > last) last = bucket_start(src[n - 1].start, s);
    if (s == HR_SAV_HOURLY) {
        /* Hourly rows only come from the hourly table (older hours are folded into days). */
        int64_t oldest = INT64_MAX;
        const char *k;
        json_t *b;
        json_object_foreach(json_object_get(doc, "hourly"), k, b) {
            int64_t t;
            if (!hr_sav_parse_iso(k, &t) && t < oldest) oldest = t;
        }
        if (oldest < first) first = oldest;
        if (first < last - (HOURLY_SERIES_HOURS - 1) * 3600) first = last - (HOURLY_SERIES_HOURS - 1) * 3600;
    } else if (n && bucket_start(src[0].start, s) < first) {
        first = bucket_start(src[0].start, s);
    }
    int64_t count = bucket_index(last, first, s) + 1;
    if (count > MAX_SERIES_ROWS) {
        first = nth_bucket(first, count - MAX_SERIES_ROWS, s);
        count = MAX_SERIES_ROWS;
    }
    json_t **row = calloc((size_t)count, sizeof *row);
    if (!row) {
        free(src);
        return rows;
    }
    struct hr_sav_totals zero = {0};
    for (int64_t i = 0; i < count; i++) {
        char ts[32];
        hr_sav_iso(nth_bucket(first, i, s), ts, sizeof ts);
        row[i] = json_pack("{s:s}", "timestamp", ts); /* first, for readers of raw JSON */
        json_t *z = hr_sav_totals_json(&zero);
        json_object_update(row[i], z);
        json_decref(z);
        json_object_set_new(row[i], "by_provider", json_object());
        json_object_set_new(row[i], "by_model", json_object());
    }
    uint64_t before = 0; /* tokens saved before the first row: the cumulative base */
    for (size_t i = 0; i < n; i++) {
        int64_t idx = bucket_index(src[i].start, first, s);
        if (idx < 0) {
            before += (uint64_t)json_integer_value(json_object_get(src[i].b, "tokens_saved"));
            continue;
        }
        if (idx >= count) continue;
        hr_sav_bucket_merge(row[idx], src[i].b);
    }
    uint64_t running = before;
    for (int64_t i = 0; i < count; i++) {
        running += (uint64_t)json_integer_value(json_object_get(row[i], "tokens_saved"));
        json_object_set_new(row[i], "total_tokens_saved", json_integer((json_int_t)running));
        json_array_append_new(rows, row[i]);
    }
    free(row);
    free(src);
    return rows;
}

/* -------------------------------------------------------------- history */

json_t *hr_sav_history_points(const json_t *doc, enum hr_sav_mode mode)
{
    const json_t *cp = json_object_get(doc, "checkpoints");
    size_t n = json_array_size(cp);
    json_t *out = json_array();
    if (mode == HR_SAV_NONE) return out;
    if (mode == HR_SAV_FULL || n <= COMPACT_POINTS) {
        for (size_t i = 0; i < n; i++) json_array_append(out, json_array_get(cp, i));
        return out;
    }
    /* Newest third dense; the rest sampled evenly, the very first point included. */
    size_t dense = COMPACT_POINTS / 3, older = n - dense, slots = COMPACT_POINTS - dense;
    for (size_t j = 0; j < slots; j++) json_array_append(out, json_array_get(cp, j * older / slots));
    for (size_t i = older; i < n; i++) json_array_append(out, json_array_get(cp, i));
    return out;
}

json_t *hr_sav_history_json(const json_t *doc, const struct hr_sav_query *q, double now)
{
    char ts[32];
    hr_sav_iso((int64_t)now, ts, sizeof ts);
    struct hr_sav_totals life;
    hr_sav_totals_from_json(json_object_get(doc, "lifetime"), &life);
    json_t *hist = hr_sav_history_points(doc, q->mode);
    size_t stored = json_array_size(json_object_get(doc, "checkpoints")), returned = json_array_size(hist);
    json_t *series = json_object();
    for (int s = HR_SAV_HOURLY; s <= HR_SAV_MONTHLY; s++)
        json_object_set_new(series, hr_sav_series_names[s], hr_sav_series(doc, (enum hr_sav_series)s, now));
    json_t *avail = json_array();
    for (int s = 0; s < 5; s++) json_array_append_new(avail, json_string(hr_sav_series_names[s]));
    return json_pack("{s:i,s:s,s:o,s:o,s:o,s:{s:s,s:[s,s],s:o},s:{s:s,s:I,s:I,s:b,s:I}}", "schema_version",
                     HR_SAV_HTTP_SCHEMA_VERSION, "generated_at", ts, "lifetime", hr_sav_totals_json(&life), "history",
                     hist, "series", series, "exports", "default_format", "json", "available_formats", "json", "csv",
                     "available_series", avail, "history_summary", "mode", mode_names[q->mode], "stored_points",
                     (json_int_t)stored, "returned_points", (json_int_t)returned, "compacted",
                     returned < stored, "thinned_points",
                     json_integer_value(json_object_get(doc, "checkpoints_thinned")));
}

/* ------------------------------------------------------------------ csv */

struct buf {
    char *p;
    size_t len, cap;
    int oom;
};

/* A USD figure as every surface prints it: at most 6 decimals, shortest. */
static const char *usd(double v, char out[32])
{
    hr_numfmt(v, HR_DECIMALS_USD, out, 32);
    return out;
}

__attribute__((format(printf, 2, 3)))
static void put(struct buf *b, const char *fmt, ...)
{
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = (b->cap + (size_t)n + 1) * 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

/* RFC 4180: quote a field holding a comma, quote or line break. */
static void put_field(struct buf *b, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        put(b, "%s", s);
        return;
    }
    put(b, "\"");
    for (; *s; s++) put(b, *s == '"' ? "\"\"" : "%c", *s);
    put(b, "\"");
}

static const char *str_or_empty(const json_t *v) { return json_is_string(v) ? json_string_value(v) : ""; }
static json_int_t ival(const json_t *o, const char *k) { return json_integer_value(json_object_get(o, k)); }
static double dval(const json_t *o, const char *k) { return json_number_value(json_object_get(o, k)); }

char *hr_sav_history_csv(const json_t *doc, const struct hr_sav_query *q, double now, size_t *len)
{
    struct buf b = {malloc(4096), 0, 4096, 0};
    char u1[32], u2[32];
    if (!b.p) return NULL;
    b.p[0] = '\0';
    json_t *rows;
    size_t i;
    json_t *r;
    if (q->series == HR_SAV_HISTORY) {
        rows = hr_sav_history_points(doc, q->mode);
        put(&b, "timestamp,requests,total_tokens_saved,input_tokens,compression_savings_usd,total_cost_usd\r\n");
        json_array_foreach(rows, i, r) {
            put_field(&b, str_or_empty(json_object_get(r, "timestamp")));
            put(&b, ",%" JSON_INTEGER_FORMAT ",%" JSON_INTEGER_FORMAT ",%" JSON_INTEGER_FORMAT ",%s,%s\r\n",
                ival(r, "requests"), ival(r, "total_tokens_saved"), ival(r, "input_tokens"),
                usd(dval(r, "compression_savings_usd"), u1), usd(dval(r, "total_cost_usd"), u2));
        }
    } else {
        rows = hr_sav_series(doc, q->series, now);
        put(&b, "timestamp,requests,tokens_saved,compression_savings_usd,input_tokens,total_cost_usd,"
                "total_tokens_saved\r\n");
        json_array_foreach(rows, i, r) {
            put_field(&b, str_or_empty(json_object_get(r, "timestamp")));
            put(&b, ",%" JSON_INTEGER_FORMAT ",%" JSON_INTEGER_FORMAT ",%s,%" JSON_INTEGER_FORMAT ",%s,%" JSON_INTEGER_FORMAT
                "\r\n", ival(r, "requests"), ival(r, "tokens_saved"), usd(dval(r, "compression_savings_usd"), u1),
                ival(r, "input_tokens"), usd(dval(r, "total_cost_usd"), u2), ival(r, "total_tokens_saved"));
        }
    }
    json_decref(rows);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}
