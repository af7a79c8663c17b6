/* result_blob.c — one crush result (status and output) as a single byte
 * string and back, so the plugin can keep it in the content memo. */
#include <stdlib.h>
#include <string.h>
#include "crush.h"

struct blob_head {
    int32_t rc;
    uint32_t n_hash_off;
    uint64_t len, total, kept, hash_off[2], reasons_len, kept_list_len;
};

static size_t slen(const char *s) { return s ? strlen(s) : 0; }

void *hr_sc_result_pack(int rc, const struct hr_sc_output *out, size_t *len)
{
    struct blob_head h = {.rc = rc};
    if (rc == HR_SC_CRUSHED)
        h = (struct blob_head){rc, (uint32_t)out->n_hash_off, out->len, out->total, out->kept,
                               {out->hash_off[0], out->hash_off[1]}, slen(out->reasons), slen(out->kept_list)};
    *len = sizeof h + h.len + h.reasons_len + h.kept_list_len;
    char *b = malloc(*len);
    if (!b)
        return NULL;
    memcpy(b, &h, sizeof h);
    if (rc == HR_SC_CRUSHED) {
        memcpy(b + sizeof h, out->text, h.len);
        memcpy(b + sizeof h + h.len, out->reasons, h.reasons_len);
        memcpy(b + sizeof h + h.len + h.reasons_len, out->kept_list, h.kept_list_len);
    }
    return b;
}

static char *copy_str(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

int hr_sc_result_unpack(const void *blob, size_t len, struct hr_sc_output *out)
{
    struct blob_head h;
    memset(out, 0, sizeof *out);
    if (len < sizeof h)
        return -12;
    memcpy(&h, blob, sizeof h);
    if (h.rc != HR_SC_CRUSHED)
        return h.rc;
    const char *p = (const char *)blob + sizeof h;
    out->text = copy_str(p, h.len);
    out->reasons = copy_str(p + h.len, h.reasons_len);
    out->kept_list = copy_str(p + h.len + h.reasons_len, h.kept_list_len);
    if (!out->text || !out->reasons || !out->kept_list) {
        hr_sc_output_free(out);
        return -12;
    }
    out->len = h.len;
    out->total = h.total;
    out->kept = h.kept;
    out->hash_off[0] = h.hash_off[0];
    out->hash_off[1] = h.hash_off[1];
    out->n_hash_off = h.n_hash_off;
    return HR_SC_CRUSHED;
}
