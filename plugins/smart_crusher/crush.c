/* crush.c — smart_crusher's core entry point: validate, locate the array of objects
 * (top level or one level down), analyse, select, render. No host calls here, so
 * tests, fuzzing and the benchmark drive it directly. */
#include <stdlib.h>
#include <string.h>
#include "crush.h"
#include "json_scan.h"

/* Position of the value of the `mi`-th member of the object opening at c[0]. */
static size_t member_value_pos(const char *c, size_t len, size_t mi)
{
    size_t pos = 1;
    for (size_t k = 0; pos < len; k++) {
        pos = hr_sc_skip_value(c, len, pos); /* key */
        if (pos >= len || c[pos] != ':')
            return len;
        pos++;
        if (k == mi)
            return pos;
        pos = hr_sc_skip_value(c, len, pos);
        if (pos >= len || c[pos] != ',')
            return len;
        pos++;
    }
    return len;
}

int hr_sc_crush(const struct hr_sc_config *cfg, const char *text, size_t len,
                const char *query, struct hr_sc_output *out)
{
    memset(out, 0, sizeof *out);
    size_t i = 0;
    while (i < len && (text[i] == ' ' || text[i] == '\n' || text[i] == '\r' || text[i] == '\t'))
        i++;
    if (i == len || (text[i] != '[' && text[i] != '{'))
        return HR_SC_SKIP_NOT_JSON;
    /* Validate as jansson would (duplicate keys refused) and find the rows in one pass,
     * without building a tree: everything after works on the bytes. */
    struct hr_json_info info;
    int sc = hr_json_scan(text, len, HR_JSON_REJECT_DUPLICATES, &info, NULL);
    if (sc == -12)
        return -12;
    if (sc)
        return HR_SC_SKIP_NOT_JSON;
    if (!info.rows)
        return HR_SC_SKIP_NO_ARRAY;
    size_t n = info.rows, mi = info.rows_member;
    if (n <= cfg->max_items + 2)
        return HR_SC_SKIP_SMALL;
    int rc = -12;
    struct hr_sc_table t;
    memset(&t, 0, sizeof t);
    /* Everything after works on compact text; most tool outputs already are. */
    char *compacted = info.whitespace ? malloc(len + 1) : NULL;
    const char *c = info.whitespace ? compacted : text;
    size_t clen = len;
    t.rows = calloc(n, sizeof *t.rows);
    if (!c || !t.rows)
        goto done;
    if (compacted) {
        clen = hr_sc_compact(text, len, compacted);
        compacted[clen] = '\0';
    }
    size_t apos = info.root == '[' ? 0 : member_value_pos(c, clen, mi), aend = 0;
    t.text = c;
    t.n = n;
    int ar = hr_sc_analyse(&t, clen, apos, &aend);
    if (ar == -2)
        rc = HR_SC_SKIP_NOT_JSON;
    if (ar)
        goto done;
    size_t kept = hr_sc_select(&t, cfg, query);
    if (kept == 0)
        goto done;
    if (kept >= n) {
        rc = HR_SC_SKIP_SAVINGS;
        goto done;
    }
    rc = hr_sc_render(&t, c, apos, c + aend, clen - aend, out);
    if (rc == 0 && (double)out->len > (1.0 - cfg->min_savings) * (double)len) {
        hr_sc_output_free(out);
        rc = HR_SC_SKIP_SAVINGS;
    }
done:
    hr_sc_table_free(&t);
    free(compacted);
    return rc;
}

void hr_sc_output_set_hash(struct hr_sc_output *out, const char *hash)
{
    for (size_t i = 0; i < out->n_hash_off; i++)
        memcpy(out->text + out->hash_off[i], hash, HR_SC_HASH_LEN);
}

void hr_sc_output_free(struct hr_sc_output *out)
{
    free(out->text);
    free(out->reasons);
    free(out->kept_list);
    memset(out, 0, sizeof *out);
}
