/* marker.c — renders the crushed text: the input's shape with the kept rows (original
 * bytes, compacted) in order, after one `_headroom` marker object that tells the model
 * what was omitted, why the shown rows were kept and how to get the rest. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "crush.h"

#define LIST_MAX 20 /* indices listed per reason before "+N more" */

struct buf {
    char *p;
    size_t len, cap;
    int oom;
};

static void put(struct buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void putf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct buf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static const char *field_name(const struct hr_sc_table *t, uint16_t fi)
{
    return fi < t->n_fields && t->fields[fi].path ? t->fields[fi].path : "?";
}

/* "errors at 3, 9" — rows kept for `bit`; `detail` adds a per-row field name. */
static void reason(struct buf *b, const struct hr_sc_table *t, uint32_t bit, const char *label,
                   int detail)
{
    size_t listed = 0, more = 0;
    uint32_t before = bit - 1 - HR_SC_R_FIRST_LAST; /* rows already listed under a stronger reason */
    for (size_t i = 0; i < t->n; i++) {
        const struct hr_sc_row *r = &t->rows[i];
        if (!(r->kept & bit) || (r->kept & before))
            continue;
        if (listed == LIST_MAX) {
            more++;
            continue;
        }
        if (listed == 0)
            putf(b, "%s%s at ", b->len ? "; " : "", label);
        putf(b, "%s%zu", listed ? ", " : "", i);
        if (detail == 1)
            putf(b, " (%s)", field_name(t, r->rare_field));
        else if (detail == 2)
            putf(b, " (%s)", field_name(t, r->z_field));
        listed++;
    }
    if (more)
        putf(b, " +%zu more", more);
}

static void summary(struct buf *b, const struct hr_sc_table *t)
{
    size_t err_left = 0, needle_left = 0, out_left = 0, with_rel = 0, with_q = 0, sp = 0, dups = 0;
    for (size_t i = 0; i < t->n; i++) {
        const struct hr_sc_row *r = &t->rows[i];
        if (!r->kept && !r->dup) {
            err_left += r->err > 0;
            needle_left += r->needle && t->needles_on;
            out_left += r->z > 0;
        }
        dups += r->dup && !r->kept;
        with_rel += !!(r->kept & HR_SC_R_RELEVANCE);
        with_q += !!(r->kept & HR_SC_R_QUERY);
        sp += !!(r->kept & HR_SC_R_SPACED);
    }
    reason(b, t, HR_SC_R_ERROR, "errors", 0);
    reason(b, t, HR_SC_R_NEEDLE, "rare fields", 1);
    reason(b, t, HR_SC_R_OUTLIER, "outliers", 2);
    reason(b, t, HR_SC_R_WARN, "warnings", 0);
    if (with_rel)
        putf(b, "%stop %zu by %s", b->len ? "; " : "", with_rel, field_name(t, (uint16_t)t->rel_field));
    reason(b, t, HR_SC_R_QUERY, "query match", 0);
    if (sp)
        putf(b, "%s%zu evenly spaced", b->len ? "; " : "", sp);
    putf(b, "%sfirst/last", b->len ? "; " : "");
    if (err_left || needle_left || out_left)
        putf(b, "; not shown: %zu errors, %zu rare-field rows, %zu outliers", err_left,
             needle_left, out_left);
    if (dups)
        putf(b, "; %zu exact duplicate rows dropped", dups);
}

int hr_sc_render(const struct hr_sc_table *t, const char *prefix, size_t prefix_len,
                 const char *suffix, size_t suffix_len, struct hr_sc_output *out)
{
    struct buf reasons = {0}, list = {0}, o = {0};
    size_t kept = 0;
    json_t *idx = json_array();
    put(&list, "[", 1);
    for (size_t i = 0; i < t->n; i++) {
        if (!t->rows[i].kept)
            continue;
        putf(&list, "%s%zu", kept ? "," : "", i);
        if (idx)
            json_array_append_new(idx, json_integer((json_int_t)i));
        kept++;
    }
    put(&list, "]", 1);
    summary(&reasons, t);
    char hint[160];
    /* "hash=<24 hex>" in the text too: clients and gateways look for it. */
    snprintf(hint, sizeof hint,
             "%zu of %zu rows shown, original order. Call headroom_retrieve with hash=" HR_SC_HASH_PLACEHOLDER
             " for the full data.", kept, t->n);
    json_t *m = json_pack("{s:{s:I,s:I,s:o,s:s,s:s,s:s}}", "_headroom",
                          "omitted", (json_int_t)(t->n - kept), "total", (json_int_t)t->n,
                          "kept_indices", idx, "reasons", reasons.p ? reasons.p : "",
                          "retrieve", HR_SC_HASH_PLACEHOLDER, "hint", hint);
    char *mtext = m ? json_dumps(m, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(m);
    const char *at = mtext ? strstr(mtext, "\"retrieve\":\"" HR_SC_HASH_PLACEHOLDER) : NULL;
    if (!at || reasons.oom || list.oom) {
        free(mtext), free(reasons.p), free(list.p);
        return -12; /* out of memory */
    }
    put(&o, prefix, prefix_len);
    put(&o, "[", 1);
    const char *in_hint = strstr(at, "hash=" HR_SC_HASH_PLACEHOLDER);
    out->hash_off[0] = o.len + (size_t)(at - mtext) + strlen("\"retrieve\":\"");
    out->n_hash_off = 1;
    if (in_hint) out->hash_off[out->n_hash_off++] = o.len + (size_t)(in_hint - mtext) + strlen("hash=");
    put(&o, mtext, strlen(mtext));
    for (size_t i = 0; i < t->n; i++) {
        if (!t->rows[i].kept)
            continue;
        put(&o, ",", 1);
        put(&o, t->text + t->rows[i].off, t->rows[i].len);
    }
    put(&o, "]", 1);
    put(&o, suffix, suffix_len);
    free(mtext);
    if (o.oom) {
        free(o.p), free(reasons.p), free(list.p);
        return -12;
    }
    out->text = o.p;
    out->len = o.len;
    out->total = t->n;
    out->kept = kept;
    out->reasons = reasons.p;
    out->kept_list = list.p;
    return 0;
}
