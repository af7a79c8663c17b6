/* crush.h — internal interface of smart_crusher's core (no host dependency), shared by
 * its source files, the unit tests, the fuzz target and bench/compress. */
#ifndef HR_SC_CRUSH_H
#define HR_SC_CRUSH_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#define HR_SC_HASH_LEN 24
/* Stands in for the CCR hash until the caller decides to keep the result. */
#define HR_SC_HASH_PLACEHOLDER "000000000000000000000000"

/* Result codes of hr_sc_crush(); negative values are errors (HR_ENOMEM...). */
enum hr_sc_status {
    HR_SC_CRUSHED = 0,
    HR_SC_SKIP_NOT_JSON = 1,   /* does not parse, or not an array/object */
    HR_SC_SKIP_NO_ARRAY = 2,   /* no array of objects at the top or one level down */
    HR_SC_SKIP_SMALL = 3,      /* <= max_items + 2 rows */
    HR_SC_SKIP_SAVINGS = 4,    /* would not shrink by min_savings */
};

struct hr_sc_config {
    size_t max_items;          /* target rows kept (critical rows may exceed it) */
    double min_savings;        /* fraction of bytes the output must save */
    double critical_fraction;  /* critical rows cap = max(max_items, n * this) */
};

/* Why a row was kept (bit set). */
enum {
    HR_SC_R_FIRST_LAST = 1u << 0,
    HR_SC_R_ERROR = 1u << 1,
    HR_SC_R_NEEDLE = 1u << 2,
    HR_SC_R_OUTLIER = 1u << 3,
    HR_SC_R_WARN = 1u << 4,
    HR_SC_R_RELEVANCE = 1u << 5,
    HR_SC_R_QUERY = 1u << 6,
    HR_SC_R_SPACED = 1u << 7,
};

#define HR_SC_MAX_FIELDS 256

struct hr_sc_row {
    uint32_t off, len;      /* span of the compacted row text */
    uint64_t hash;          /* of the compacted row text */
    uint64_t kw_mask;       /* fields (bit = field index, 63 = any later) with error keywords */
    float z;                /* largest robust deviation over numeric fields */
    uint16_t z_field;
    uint16_t rare_field;
    uint8_t dup;            /* byte-identical to an earlier row */
    uint8_t err;            /* 0 none, 1 keyword, 2 a request's 4xx status, 3 error field/status, 4 level ERROR,
                               5 FATAL/CRITICAL */
    uint8_t maybe_4xx;      /* a 4xx in a status field not named like an HTTP status: 2 when the row is a request */
    uint8_t warn;
    uint8_t needle;
    uint8_t has_rel;
    uint16_t group;         /* schema group (hr_sc_table.groups) */
    uint32_t kept;          /* HR_SC_R_* bits */
    double rel;
    double bm25;
};

struct hr_sc_field {
    char *path;             /* "name" or "parent.name" */
    uint64_t h;
    uint32_t count;         /* rows where present */
    uint32_t num_count;
    uint32_t kw_hits;
    double *nums;           /* num_count values ... */
    uint32_t *num_rows;     /* ... and the rows they came from */
    double median, scale;   /* robust location and scale (0 scale: not used) */
    uint8_t cls;            /* HR_SC_F_* name class */
    uint8_t kw_ok;          /* error keywords in this field are a signal */
    uint8_t http;           /* named like an HTTP status: ends in status, status_code or statuscode */
    uint8_t req;            /* names a request's method, path or URL (method, path, url, uri, route, ...) */
};

enum { HR_SC_F_PLAIN = 0, HR_SC_F_ERROR, HR_SC_F_STATUS, HR_SC_F_LEVEL, HR_SC_F_ID, HR_SC_F_RELEVANCE, HR_SC_F_EXIT };

/* Rows whose key sets are alike (Jaccard >= 1/2 with the group's most common key set)
 * form a schema group; stats, rare fields and first/last are per group. */
#define HR_SC_MAX_SCHEMAS 64    /* more distinct key sets than this: one group */
struct hr_sc_group {
    uint32_t count, first, last;
};

struct hr_sc_table {
    const char *text;       /* compacted input */
    size_t n;
    struct hr_sc_row *rows;
    struct hr_sc_field *fields;
    size_t n_fields;
    int32_t rel_field;      /* relevance field index or -1 */
    int needles_on;         /* some group has rare-field rows (row.needle is only set there) */
    size_t n_groups;        /* schema groups: rows with similar key sets (1 = uniform array) */
    struct hr_sc_group *groups;
    size_t n_dups;
    int has_query_hits;
};

struct hr_sc_output {
    char *text;             /* crushed JSON (malloc), with the placeholder hash */
    size_t len;
    size_t total, kept;
    size_t hash_off[2];     /* where the placeholder hash sits in text */
    size_t n_hash_off;
    char *reasons;          /* human summary, e.g. "errors at 42, 77; first/last" */
    char *kept_list;        /* "[0,1,42,99]" */
};

/* spans.c */
size_t hr_sc_compact(const char *in, size_t len, char *out);
size_t hr_sc_skip_value(const char *c, size_t len, size_t pos);
/* hr_sc_skip_value of the string opening at c[pos]; *plain = 1 when it holds no
 * escape (its body is its text). */
size_t hr_sc_skip_string(const char *c, size_t len, size_t pos, int *plain);
uint64_t hr_sc_hash(const void *data, size_t len, uint64_t seed);

/* analyse.c */
/* Walks the t->n rows of the array opening at t->text[apos] (`text_len`: bytes of
 * t->text, the compacted text), recording their spans, and sets *aend just past the
 * array. Returns 0, -1 when out of memory, -2 when the rows are not objects there. */
int hr_sc_analyse(struct hr_sc_table *t, size_t text_len, size_t apos, size_t *aend);
void hr_sc_table_free(struct hr_sc_table *t);

/* bm25.c */
/* Sets each row's bm25 (0 for all without a query) and has_query_hits; 0, or -1
 * when out of memory. */
int hr_sc_bm25(struct hr_sc_table *t, const char *query);

/* select.c */
/* Marks the kept rows; returns how many, 0 when out of memory. Scores the rows
 * against `query` (hr_sc_bm25) when there is one. */
size_t hr_sc_select(struct hr_sc_table *t, const struct hr_sc_config *cfg, const char *query);

/* marker.c */
int hr_sc_render(const struct hr_sc_table *t, const char *prefix, size_t prefix_len,
                 const char *suffix, size_t suffix_len, struct hr_sc_output *out);

/* crush.c */
/* Crush one JSON text; text[len] must be a NUL (a unit's text is). Returns HR_SC_CRUSHED and fills `out` (free with
 * hr_sc_output_free), a positive HR_SC_SKIP_* when the text is left as is,
 * or a negative error. `query` may be NULL. */
int hr_sc_crush(const struct hr_sc_config *cfg, const char *text, size_t len,
                const char *query, struct hr_sc_output *out);
/* Write the real CCR hash over the placeholder. */
void hr_sc_output_set_hash(struct hr_sc_output *out, const char *hash);
void hr_sc_output_free(struct hr_sc_output *out);

/* result_blob.c */
/* A crush result (status, and the output when crushed) as one malloc'd byte
 * string; NULL when out of memory. */
void *hr_sc_result_pack(int rc, const struct hr_sc_output *out, size_t *len);
/* Back from the byte string: the status, with `out` filled when crushed. */
int hr_sc_result_unpack(const void *blob, size_t len, struct hr_sc_output *out);

#endif
