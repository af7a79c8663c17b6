/* marker.c — renders the crushed text: the input's shape with the kept rows (original
 * bytes, compacted) in order, after one `_headroom` marker object that tells the model
 * what was omitted, which rows were kept and why, and how to get the rest. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "crush.h"
#include "tbuf.h"

static const char *field_name(const struct hr_sc_table *t, uint16_t fi)
{
    return fi < t->n_fields && t->fields[fi].path ? t->fields[fi].path : "?";
}

static uint16_t row_field(const struct hr_sc_row *r, int detail)
{
    return detail == 1 ? r->rare_field : r->z_field;
}

/* Whether row r is listed under `bit`: each kept row is listed once, under
 * its strongest reason (the lowest bit); first/last only when it has no other. */
static int listed_under(const struct hr_sc_row *r, uint32_t bit)
{
    if (bit == HR_SC_R_FIRST_LAST)
        return r->kept == HR_SC_R_FIRST_LAST;
    return (r->kept & bit) && !(r->kept & (bit - 1) & ~(uint32_t)HR_SC_R_FIRST_LAST);
}

/* "errors at 3,9" — every row kept for `bit`. With `detail` the rows go by
 * field, each field named once: "rare field debug_dump at 3,9 / trace at 12"
 * (1: the rare field), "outliers in latency_ms at 4" (2: the outlying field).
 * The lists together name every kept row: they are the marker's index list. */
static void reason(struct hr_tbuf *b, const struct hr_sc_table *t, uint32_t bit, const char *label,
                   int detail)
{
    size_t listed = 0;
    for (size_t i = 0; i < t->n; i++) {
        const struct hr_sc_row *r = &t->rows[i];
        if (!listed_under(r, bit))
            continue;
        if (detail) {
            /* the first row of its field: list the field's rows now */
            size_t j = 0;
            while (j < i && !(listed_under(&t->rows[j], bit) && row_field(&t->rows[j], detail) == row_field(r, detail)))
                j++;
            if (j < i)
                continue;
            size_t in_group = 0;
            for (size_t k = i; k < t->n; k++) {
                const struct hr_sc_row *x = &t->rows[k];
                if (!listed_under(x, bit) || row_field(x, detail) != row_field(r, detail))
                    continue;
                if (!in_group++ && listed)
                    hr_tbuf_putf(b, " / %s at ", field_name(t, row_field(r, detail)));
                else if (in_group == 1)
                    hr_tbuf_putf(b, "%s%s %s at ", b->len ? "; " : "", label, field_name(t, row_field(r, detail)));
                hr_tbuf_putf(b, "%s%zu", in_group > 1 ? "," : "", k);
                listed++;
            }
            continue;
        }
        if (listed == 0)
            hr_tbuf_putf(b, "%s%s at ", b->len ? "; " : "", label);
        hr_tbuf_putf(b, "%s%zu", listed ? "," : "", i);
        listed++;
    }
}

static void summary(struct hr_tbuf *b, const struct hr_sc_table *t)
{
    size_t err_left = 0, needle_left = 0, out_left = 0, dups = 0;
    for (size_t i = 0; i < t->n; i++) {
        const struct hr_sc_row *r = &t->rows[i];
        if (!r->kept && !r->dup) {
            err_left += r->err > 0;
            needle_left += r->needle && t->needles_on;
            out_left += r->z > 0;
        }
        dups += r->dup && !r->kept;
    }
    reason(b, t, HR_SC_R_ERROR, "errors", 0);
    reason(b, t, HR_SC_R_NEEDLE, "rare field", 1);
    reason(b, t, HR_SC_R_OUTLIER, "outliers in", 2);
    reason(b, t, HR_SC_R_WARN, "warnings", 0);
    if (t->rel_field >= 0) {
        char label[96];
        snprintf(label, sizeof label, "highest %s", field_name(t, (uint16_t)t->rel_field));
        reason(b, t, HR_SC_R_RELEVANCE, label, 0);
    }
    reason(b, t, HR_SC_R_QUERY, "query match", 0);
    reason(b, t, HR_SC_R_SPACED, "evenly spaced", 0);
    if (t->n_groups > 1) {
        char label[64];
        snprintf(label, sizeof label, "first/last of each of %zu schemas", t->n_groups);
        reason(b, t, HR_SC_R_FIRST_LAST, label, 0);
    } else {
        reason(b, t, HR_SC_R_FIRST_LAST, "first/last", 0);
    }
    /* Only the kinds some row was dropped of: "not shown: 2 errors, 149 outliers". */
    const size_t left[3] = {err_left, needle_left, out_left};
    static const char *const kind[3] = {"errors", "rare-field rows", "outliers"};
    for (size_t k = 0, named = 0; k < 3; k++)
        if (left[k])
            hr_tbuf_putf(b, "%s%zu %s", named++ ? ", " : "; not shown: ", left[k], kind[k]);
    if (dups)
        hr_tbuf_putf(b, "; %zu exact duplicate rows dropped", dups);
}

int hr_sc_render(const struct hr_sc_table *t, const char *prefix, size_t prefix_len,
                 const char *suffix, size_t suffix_len, struct hr_sc_output *out)
{
    struct hr_tbuf reasons = {0}, list = {0}, o = {0};
    size_t kept = 0;
    hr_tbuf_put(&list, "[", 1);
    for (size_t i = 0; i < t->n; i++) {
        if (!t->rows[i].kept)
            continue;
        hr_tbuf_putf(&list, "%s%zu", kept ? "," : "", i);
        kept++;
    }
    hr_tbuf_put(&list, "]", 1);
    summary(&reasons, t);
    /* One address, as hash=<24 hex>: the retrieve tool, /v1/retrieve's
     * clients and gateways all read that form. */
    json_t *m = json_pack("{s:{s:I,s:I,s:s,s:s}}", "_headroom", "omitted", (json_int_t)(t->n - kept), "total",
                          (json_int_t)t->n, "kept", reasons.p ? reasons.p : "", "all_rows",
                          "headroom_retrieve hash=" HR_SC_HASH_PLACEHOLDER);
    char *mtext = m ? json_dumps(m, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(m);
    const char *at = mtext ? strstr(mtext, "\"all_rows\":\"headroom_retrieve hash=" HR_SC_HASH_PLACEHOLDER) : NULL;
    if (!at || reasons.oom || list.oom) {
        free(mtext), free(reasons.p), free(list.p);
        return -12; /* out of memory */
    }
    hr_tbuf_put(&o, prefix, prefix_len);
    hr_tbuf_put(&o, "[", 1);
    out->hash_off[0] = o.len + (size_t)(at - mtext) + strlen("\"all_rows\":\"headroom_retrieve hash=");
    out->n_hash_off = 1;
    hr_tbuf_put(&o, mtext, strlen(mtext));
    for (size_t i = 0; i < t->n; i++) {
        if (!t->rows[i].kept)
            continue;
        hr_tbuf_put(&o, ",", 1);
        hr_tbuf_put(&o, t->text + t->rows[i].off, t->rows[i].len);
    }
    hr_tbuf_put(&o, "]", 1);
    hr_tbuf_put(&o, suffix, suffix_len);
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
