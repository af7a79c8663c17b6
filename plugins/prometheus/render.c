/* render.c — turns a metrics walk into Prometheus text format 0.0.4: escaping,
 * number formatting, per-family grouping and the checks that keep one odd
 * sample (say, from a third-party register_metrics source) from breaking a scrape. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "numfmt.h"
#include "render.h"

/* ------------------------------------------------------------------ buffer */

static int buf_reserve(struct hr_prom_buf *b, size_t extra)
{
    if (b->oom) return -1;
    if (b->len + extra + 1 <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) {
        if (cap > ((size_t)-1) / 2) {
            b->oom = 1;
            return -1;
        }
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

void hr_prom_buf_put(struct hr_prom_buf *b, const char *s, size_t n)
{
    if (buf_reserve(b, n)) return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void hr_prom_buf_puts(struct hr_prom_buf *b, const char *s) { hr_prom_buf_put(b, s, strlen(s)); }

void hr_prom_buf_free(struct hr_prom_buf *b)
{
    free(b->p);
    *b = (struct hr_prom_buf){0};
}

/* ---------------------------------------------------------------- escaping */

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when it is invalid
 * (overlong, surrogate, above U+10FFFF, truncated). */
static size_t utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t n;
    unsigned min, cp;
    if ((c & 0xE0) == 0xC0) n = 2, min = 0x80, cp = c & 0x1F;
    else if ((c & 0xF0) == 0xE0) n = 3, min = 0x800, cp = c & 0x0F;
    else if ((c & 0xF8) == 0xF0) n = 4, min = 0x10000, cp = c & 0x07;
    else return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0; /* also stops at the NUL */
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

static void escape(struct hr_prom_buf *b, const char *s, int quote)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    while (*p) {
        const unsigned char *run = p;
        size_t n;
        /* copy plain runs in one go: most label values need no escaping */
        while (*p && *p != '\\' && *p != '\n' && !(quote && *p == '"') && (n = utf8_len(p)) != 0) p += n;
        if (p > run) hr_prom_buf_put(b, (const char *)run, (size_t)(p - run));
        if (!*p) break;
        if (*p == '\\') hr_prom_buf_put(b, "\\\\", 2);
        else if (*p == '\n') hr_prom_buf_put(b, "\\n", 2);
        else if (*p == '"') hr_prom_buf_put(b, "\\\"", 2);
        else hr_prom_buf_put(b, "\xEF\xBF\xBD", 3); /* one invalid byte -> U+FFFD */
        p++;
    }
}

void hr_prom_escape_label(struct hr_prom_buf *b, const char *s) { escape(b, s, 1); }
void hr_prom_escape_help(struct hr_prom_buf *b, const char *s) { escape(b, s, 0); }

int hr_prom_decimals_for(const char *name)
{
    size_t n = strlen(name);
    if (strstr(name, "_usd")) return HR_DECIMALS_USD;
    if (strstr(name, "percent")) return HR_DECIMALS_PERCENT;
    if ((n >= 3 && !strcmp(name + n - 3, "_ms")) || strstr(name, "_ms_") || strstr(name, "_seconds")) return HR_DECIMALS_MS;
    return -1;
}

void hr_prom_format_figure(char out[32], double v, int decimals)
{
    if (decimals < 0) hr_prom_format_double(out, v);
    else hr_numfmt(v, decimals, out, 32);
}

void hr_prom_format_double(char out[32], double v)
{
    if (isnan(v)) {
        strcpy(out, "NaN");
        return;
    }
    if (isinf(v)) {
        strcpy(out, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    /* the shortest of %.15g..%.17g that round-trips: "0.01" not "0.01000000000000000021";
     * tried in a local buffer, which gcc -O3 with sanitizers knows is never NULL */
    char text[32];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(text, sizeof text, "%.*g", prec, v);
        if (strtod(text, NULL) == v) break;
    }
    memcpy(out, text, sizeof text);
}

static int name_char(char c, int first, int colon)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') return 1;
    if (colon && c == ':') return 1;
    return !first && c >= '0' && c <= '9';
}

int hr_prom_valid_metric_name(const char *s)
{
    if (!s || !*s) return 0;
    for (size_t i = 0; s[i]; i++)
        if (!name_char(s[i], i == 0, 1)) return 0;
    return 1;
}

int hr_prom_valid_label_name(const char *s)
{
    if (!s || !*s || !strncmp(s, "__", 2)) return 0;
    for (size_t i = 0; s[i]; i++)
        if (!name_char(s[i], i == 0, 0)) return 0;
    return 1;
}

/* ------------------------------------------------------------------ render */

struct fam {
    char *name, *help;
    enum hr_metric_type type;
    size_t n_labels;
    char **label_names;
    const char *invalid;       /* why the declaration was refused; its samples are dropped */
    struct hr_prom_buf body;
    struct hr_prom_buf ids;    /* rendered label sets already emitted, NUL-separated */
};

struct hr_prom_render {
    struct fam *fams;
    size_t n_fams, cap_fams;
    size_t last;               /* family of the previous sample: the common case */
    size_t dropped;
    char reason[192];
    int oom;
};

struct hr_prom_render *hr_prom_render_new(void) { return calloc(1, sizeof(struct hr_prom_render)); }

static void drop(struct hr_prom_render *r, const char *family, const char *why)
{
    if (!r->dropped++)
        snprintf(r->reason, sizeof r->reason, "family '%.80s': %s", family ? family : "(null)", why);
}

static const char *check_family(const struct hr_metric_family *f)
{
    if (!hr_prom_valid_metric_name(f->name)) return "not a valid metric name";
    if (f->type != HR_METRIC_COUNTER && f->type != HR_METRIC_GAUGE && f->type != HR_METRIC_HISTOGRAM)
        return "unknown metric type";
    if (f->n_labels && !f->label_names) return "label names missing";
    for (size_t i = 0; i < f->n_labels; i++) {
        if (!hr_prom_valid_label_name(f->label_names[i])) return "invalid label name";
        if (f->type == HR_METRIC_HISTOGRAM && !strcmp(f->label_names[i], "le")) return "histogram with an 'le' label";
        for (size_t j = 0; j < i; j++)
            if (!strcmp(f->label_names[i], f->label_names[j])) return "duplicate label name";
    }
    return NULL;
}

static int same_declaration(const struct fam *a, const struct hr_metric_family *f)
{
    if (a->type != f->type || a->n_labels != f->n_labels) return 0;
    for (size_t i = 0; i < f->n_labels; i++)
        if (strcmp(a->label_names[i], f->label_names[i])) return 0;
    return 1;
}

static struct fam *find_family(struct hr_prom_render *r, const struct hr_metric_family *f)
{
    if (r->last < r->n_fams && !strcmp(r->fams[r->last].name, f->name)) return &r->fams[r->last];
    for (size_t i = 0; i < r->n_fams; i++)
        if (!strcmp(r->fams[i].name, f->name)) {
            r->last = i;
            return &r->fams[i];
        }
    if (r->n_fams == r->cap_fams) {
        size_t cap = r->cap_fams ? 2 * r->cap_fams : 32;
        struct fam *p = realloc(r->fams, cap * sizeof *p);
        if (!p) return NULL;
        r->fams = p;
        r->cap_fams = cap;
    }
    struct fam *a = &r->fams[r->n_fams];
    *a = (struct fam){0};
    a->name = strdup(f->name);
    a->help = strdup(f->help ? f->help : "");
    if (!a->name || !a->help) goto oom;
    a->invalid = check_family(f);
    if (!a->invalid) {
        a->type = f->type;
        a->n_labels = f->n_labels;
        a->label_names = calloc(f->n_labels ? f->n_labels : 1, sizeof *a->label_names);
        if (!a->label_names) goto oom;
        for (size_t i = 0; i < f->n_labels; i++)
            if (!(a->label_names[i] = strdup(f->label_names[i]))) goto oom;
    }
    r->last = r->n_fams++;
    return a;
oom:
    if (a->label_names)
        for (size_t i = 0; i < f->n_labels; i++) free(a->label_names[i]);
    free(a->label_names);
    free(a->name);
    free(a->help);
    return NULL;
}

/* True when this label set was already emitted for the family (two series
 * with the same labels make Prometheus reject the whole scrape). */
static int seen_before(struct fam *a, const char *labels, size_t len)
{
    for (size_t off = 0; off < a->ids.len;) {
        size_t n = strlen(a->ids.p + off);
        if (n == len && !memcmp(a->ids.p + off, labels, len)) return 1;
        off += n + 1;
    }
    hr_prom_buf_put(&a->ids, labels, len);
    hr_prom_buf_put(&a->ids, "", 1);
    return 0;
}

static const char *check_histogram(const struct hr_metric_sample *s)
{
    if (!s->n_buckets || !s->bucket_upper || !s->bucket_cumulative) return "histogram without buckets";
    for (size_t i = 0; i < s->n_buckets; i++) {
        if (isnan(s->bucket_upper[i])) return "NaN bucket bound";
        if (i && !(s->bucket_upper[i] > s->bucket_upper[i - 1])) return "bucket bounds not increasing";
        if (i && s->bucket_cumulative[i] < s->bucket_cumulative[i - 1]) return "bucket counts not cumulative";
    }
    uint64_t last = s->bucket_cumulative[s->n_buckets - 1];
    if (last > s->count) return "bucket count above _count";
    if (isinf(s->bucket_upper[s->n_buckets - 1]) && s->bucket_upper[s->n_buckets - 1] > 0 && last != s->count)
        return "+Inf bucket differs from _count";
    return NULL;
}

static void series(struct hr_prom_buf *b, const char *name, const char *suffix, const char *labels, size_t llen,
                   const char *le, const char *value)
{
    hr_prom_buf_puts(b, name);
    hr_prom_buf_puts(b, suffix);
    if (llen || le) {
        hr_prom_buf_put(b, "{", 1);
        hr_prom_buf_put(b, labels, llen);
        if (le) {
            if (llen) hr_prom_buf_put(b, ",", 1);
            hr_prom_buf_puts(b, "le=\"");
            hr_prom_buf_puts(b, le);
            hr_prom_buf_put(b, "\"", 1);
        }
        hr_prom_buf_put(b, "}", 1);
    }
    hr_prom_buf_put(b, " ", 1);
    hr_prom_buf_puts(b, value);
    hr_prom_buf_put(b, "\n", 1);
}

static void fmt_u64(char out[32], uint64_t v) { snprintf(out, 32, "%llu", (unsigned long long)v); }

void hr_prom_visit(void *ud, const struct hr_metric_family *f, const struct hr_metric_sample *s)
{
    struct hr_prom_render *r = ud;
    if (!f || !s || !f->name) {
        drop(r, NULL, "family or sample missing");
        return;
    }
    struct fam *a = find_family(r, f);
    if (!a) {
        r->oom = 1;
        return;
    }
    const char *why = a->invalid;
    if (!why && !same_declaration(a, f)) why = "declared again with another type or labels";
    if (!why && f->n_labels && !s->label_values) why = "label values missing";
    for (size_t i = 0; !why && i < f->n_labels; i++)
        if (!s->label_values[i]) why = "a label value is NULL";
    if (!why && f->type == HR_METRIC_HISTOGRAM) why = check_histogram(s);
    if (why) {
        drop(r, f->name, why);
        return;
    }

    struct hr_prom_buf labels = {0};
    for (size_t i = 0; i < f->n_labels; i++) {
        if (i) hr_prom_buf_put(&labels, ",", 1);
        hr_prom_buf_puts(&labels, a->label_names[i]);
        hr_prom_buf_put(&labels, "=\"", 2);
        hr_prom_escape_label(&labels, s->label_values[i]);
        hr_prom_buf_put(&labels, "\"", 1);
    }
    const char *lp = labels.p ? labels.p : "";
    if (labels.oom) {
        r->oom = 1;
    } else if (seen_before(a, lp, labels.len)) {
        drop(r, f->name, "duplicate series (same label values twice)");
    } else if (f->type != HR_METRIC_HISTOGRAM) {
        char v[32];
        hr_prom_format_figure(v, s->value, hr_prom_decimals_for(f->name));
        series(&a->body, a->name, "", lp, labels.len, NULL, v);
    } else {
        char le[32], v[32];
        for (size_t i = 0; i < s->n_buckets; i++) {
            hr_prom_format_double(le, s->bucket_upper[i]);
            fmt_u64(v, s->bucket_cumulative[i]);
            series(&a->body, a->name, "_bucket", lp, labels.len, le, v);
        }
        if (!(isinf(s->bucket_upper[s->n_buckets - 1]) && s->bucket_upper[s->n_buckets - 1] > 0)) {
            fmt_u64(v, s->count);
            series(&a->body, a->name, "_bucket", lp, labels.len, "+Inf", v);
        }
        hr_prom_format_figure(v, s->sum, hr_prom_decimals_for(f->name));
        series(&a->body, a->name, "_sum", lp, labels.len, NULL, v);
        fmt_u64(v, s->count);
        series(&a->body, a->name, "_count", lp, labels.len, NULL, v);
    }
    if (a->body.oom || a->ids.oom) r->oom = 1;
    hr_prom_buf_free(&labels);
}

size_t hr_prom_render_dropped(const struct hr_prom_render *r, const char **first_reason)
{
    if (first_reason) *first_reason = r->dropped ? r->reason : NULL;
    return r->dropped;
}

static const char *type_name(enum hr_metric_type t)
{
    return t == HR_METRIC_COUNTER ? "counter" : t == HR_METRIC_GAUGE ? "gauge" : "histogram";
}

int hr_prom_render_finish(struct hr_prom_render *r, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (r->oom) return HR_ENOMEM;
    struct hr_prom_buf b = {0};
    hr_prom_buf_put(&b, "", 0); /* an empty scrape is still a valid string */
    for (size_t i = 0; i < r->n_fams; i++) {
        const struct fam *a = &r->fams[i];
        if (a->invalid || !a->body.len) continue; /* no samples: no HELP/TYPE either */
        if (a->help[0]) {
            hr_prom_buf_puts(&b, "# HELP ");
            hr_prom_buf_puts(&b, a->name);
            hr_prom_buf_put(&b, " ", 1);
            hr_prom_escape_help(&b, a->help);
            hr_prom_buf_put(&b, "\n", 1);
        }
        hr_prom_buf_puts(&b, "# TYPE ");
        hr_prom_buf_puts(&b, a->name);
        hr_prom_buf_put(&b, " ", 1);
        hr_prom_buf_puts(&b, type_name(a->type));
        hr_prom_buf_put(&b, "\n", 1);
        hr_prom_buf_put(&b, a->body.p, a->body.len);
    }
    if (b.oom) {
        hr_prom_buf_free(&b);
        return HR_ENOMEM;
    }
    *out = b.p;
    *len = b.len;
    return HR_OK;
}

void hr_prom_render_free(struct hr_prom_render *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->n_fams; i++) {
        struct fam *a = &r->fams[i];
        if (a->label_names)
            for (size_t j = 0; j < a->n_labels; j++) free(a->label_names[j]);
        free(a->label_names);
        free(a->name);
        free(a->help);
        hr_prom_buf_free(&a->body);
        hr_prom_buf_free(&a->ids);
    }
    free(r->fams);
    free(r);
}
