/* t/fuzz/fuzz_json_scan.c — differential target for plugins/common/json_scan.c: the
 * scanner must accept exactly what jansson's json_loadb accepts (with and without
 * JSON_REJECT_DUPLICATES), report the same rows array, and decode strings and numbers
 * to the values jansson builds (through src/json_load.c, which headroomd parses request
 * bodies with). Any mismatch aborts. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "json_scan.h"
#include "json_load.h"

static size_t rows_of(json_t *a)
{
    size_t i;
    json_t *x;
    if (!json_is_array(a) || json_array_size(a) == 0)
        return 0;
    json_array_foreach(a, i, x)
        if (!json_is_object(x))
            return 0;
    return json_array_size(a);
}

/* Real values must be bit-identical (json_equal would let -0.0 equal 0.0). */
static int same(json_t *a, json_t *b)
{
    if (json_typeof(a) != json_typeof(b))
        return 0;
    if (json_is_real(a)) {
        double x = json_real_value(a), y = json_real_value(b);
        return memcmp(&x, &y, sizeof x) == 0;
    }
    if (json_is_array(a)) {
        if (json_array_size(a) != json_array_size(b))
            return 0;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!same(json_array_get(a, i), json_array_get(b, i)))
                return 0;
        return 1;
    }
    if (json_is_object(a)) {
        const char *k;
        json_t *x;
        if (json_object_size(a) != json_object_size(b))
            return 0;
        json_object_foreach(a, k, x) {
            json_t *y = json_object_get(b, k);
            if (!y || !same(x, y))
                return 0;
        }
        return 1;
    }
    return json_equal(a, b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    for (int pass = 0; pass < 2; pass++) {
        struct hr_json_info info;
        struct hr_json_error err = {0, NULL};
        int rc = hr_json_scan(text, size, pass ? HR_JSON_REJECT_DUPLICATES : 0, &info, &err);
        json_t *j = json_loadb(text, size, pass ? JSON_REJECT_DUPLICATES : 0, NULL);
        if ((rc == 0) != (j != NULL))
            abort();
        if (rc != 0) {
            if (rc != -22 || !err.msg || err.pos > size)
                abort();
            struct hr_json_span none[2];
            size_t nn = 1;
            if (!pass && (hr_json_scan_members(text, size, none, 2, &nn) != rc || nn != 0))
                abort();
            continue;
        }
        size_t rows = 0, member = 0;
        if (json_is_array(j)) {
            rows = rows_of(j);
        } else {
            size_t k = 0;
            const char *key;
            json_t *v;
            json_object_foreach(j, key, v) {
                size_t r = rows_of(v);
                if (r > rows) {
                    rows = r;
                    member = k;
                }
                k++;
            }
        }
        /* With duplicates allowed jansson's member order differs from the text's. */
        if (info.root != (json_is_array(j) ? '[' : '{') ||
            (pass && (info.rows != rows || info.rows_member != member)))
            abort();
        /* Without duplicate keys, the root's member read from either end is the
         * one the full skim finds. */
        static const char *const keys[] = {"model", "a", ""};
        for (size_t k = 0; pass && k < sizeof keys / sizeof *keys; k++) {
            const char *v1 = NULL, *v2 = NULL;
            size_t n1 = 0, n2 = 0;
            int f1 = hr_json_member(text, size, keys[k], &v1, &n1), f2 = hr_json_member_near(text, size, keys[k], &v2, &n2);
            if (f1 != f2 || v1 != v2 || n1 != n2)
                abort();
        }
        /* Checked and listed in one pass: the members the skim lists
         * (duplicate keys included, in the text's order). */
        if (!pass) {
            struct hr_json_span a[8], b[8];
            size_t na = 0, nb = 0;
            if (hr_json_scan_members(text, size, a, 8, &na) != 0)
                abort();
            if (info.root == '{') {
                if (hr_json_member_list(text, size, b, 8, &nb) != 0 || na != nb)
                    abort();
                for (size_t k = 0; k < na && k < 8; k++)
                    if (a[k].key != b[k].key || a[k].klen != b[k].klen || a[k].val != b[k].val || a[k].vlen != b[k].vlen)
                        abort();
            } else if (na) {
                abort();
            }
        }
        /* What headroomd parses request bodies with, built from the scanner's decoders. */
        json_t *mine = hr_json_load(text, size, NULL);
        if (!same(mine, j))
            abort();
        json_decref(mine);
        json_decref(j);
    }
    return 0;
}
