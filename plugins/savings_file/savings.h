/* savings.h — internal interface of the savings_file sink: the durable
 * savings document (store.c), its rollups and HTTP renderings (history.c) and
 * the embedded dashboard page (dashboard.c). Not part of the plugin ABI. */
#ifndef HR_SAVINGS_H
#define HR_SAVINGS_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#define HR_SAV_SCHEMA_VERSION 1      /* of the file; see doc/savings-file.md */
#define HR_SAV_HTTP_SCHEMA_VERSION 2 /* of GET /stats-history */
#define HR_SAV_NAME_MAX 96           /* provider/model names are cut to this */
#define HR_SAV_MAX_SPLITS 64         /* distinct models (or providers) per bucket; then "other" */

/* The five additive figures every bucket and the lifetime carry. */
struct hr_sav_totals {
    uint64_t requests;
    uint64_t tokens_saved;
    uint64_t input_tokens;
    double savings_usd; /* compression_savings_usd */
    double cost_usd;    /* total_cost_usd */
};

/* Unflushed counts of one (hour, provider, model) cell. */
struct hr_sav_delta {
    int64_t hour; /* bucket start, Unix seconds, multiple of 3600 */
    char provider[HR_SAV_NAME_MAX];
    char model[HR_SAV_NAME_MAX];
    struct hr_sav_totals t;
};

/* ------------------------------------------------------------- store.c */

/* Result of hr_sav_load. */
enum hr_sav_load_result {
    HR_SAV_LOADED = 0,  /* *doc holds the file */
    HR_SAV_MISSING = 1, /* no file: *doc is a fresh document */
    HR_SAV_DAMAGED = 2, /* unusable file: *doc is fresh, `why` says what was wrong */
};

void hr_sav_totals_add(struct hr_sav_totals *dst, const struct hr_sav_totals *src);
/* Read the five figures of a bucket object (missing fields count as 0). */
void hr_sav_totals_from_json(const json_t *o, struct hr_sav_totals *t);
/* A new object with the five figures under their file/HTTP names. */
json_t *hr_sav_totals_json(const struct hr_sav_totals *t);

json_t *hr_sav_doc_new(double now);
/* Check a parsed document against schema 1; 0, or -1 with `why` filled. */
int hr_sav_doc_validate(const json_t *doc, char *why, size_t whylen);
/* Parse file contents (outside input); *doc is always set to something usable. */
enum hr_sav_load_result hr_sav_parse(const char *data, size_t len, double now, json_t **doc,
                                     char *why, size_t whylen);
/* Read and parse `path`; unreadable counts as damaged. */
enum hr_sav_load_result hr_sav_load(const char *path, double now, json_t **doc, char *why,
                                    size_t whylen);
/* Rename a damaged file to <path>.corrupt-<UTC stamp>; 0 or -errno, dest filled. */
int hr_sav_quarantine(const char *path, double now, char *dest, size_t destlen);

/* Add deltas to the document: lifetime, hourly buckets with splits; then,
 * when `checkpoint`, append a checkpoint of the new lifetime; then bound the
 * checkpoints (max_points) and the hourly table (hourly_days, older hours
 * folded into daily buckets). */
void hr_sav_apply(json_t *doc, const struct hr_sav_delta *d, size_t n, double now, int checkpoint,
                  size_t max_points, int hourly_days);

/* Fold bucket `src` (figures and by_provider/by_model splits) into `dst`. */
void hr_sav_bucket_merge(json_t *dst, const json_t *src);

/* Write `doc` to `path` atomically: temp file, fsync, rename, fsync dir. */
int hr_sav_write_atomic(const char *path, const json_t *doc);
/* Exclusive advisory lock on <path>.lock; returns the fd or -errno. */
int hr_sav_lock(const char *path);
void hr_sav_unlock(int fd);
/* mkdir -p the parent directory of `path` with mode 0700; 0 or -errno. */
int hr_sav_mkdir_parent(const char *path);
/* Could hr_sav_mkdir_parent make it? 0 when the parent exists or its
 * nearest existing ancestor is a directory this process may write; -errno
 * (ENOTDIR, EACCES, ...) otherwise. Creates nothing. */
int hr_sav_parent_creatable(const char *path);

/* "2024-05-01T13:00:00Z"; buf needs 21 bytes. */
void hr_sav_iso(int64_t t, char *buf, size_t len);
/* Parse the ISO forms the file uses ("…T…Z" or "YYYY-MM-DD"); 0 or -1. */
int hr_sav_parse_iso(const char *s, int64_t *out);
double hr_sav_round6(double v);

/* ----------------------------------------------------------- history.c */

enum hr_sav_series { HR_SAV_HISTORY = 0, HR_SAV_HOURLY, HR_SAV_DAILY, HR_SAV_WEEKLY, HR_SAV_MONTHLY };
enum hr_sav_mode { HR_SAV_COMPACT = 0, HR_SAV_FULL, HR_SAV_NONE };

/* A parsed GET /stats-history query. */
struct hr_sav_query {
    enum hr_sav_mode mode;
    int csv;
    enum hr_sav_series series;
};

/* Parse the query string; 0, or -1 with a ready 400 JSON body in *err. */
int hr_sav_query_parse(const char *query, struct hr_sav_query *q, json_t **err);
/* The /stats-history JSON body for `doc` (which already includes live deltas). */
json_t *hr_sav_history_json(const json_t *doc, const struct hr_sav_query *q, double now);
/* One series as RFC 4180 CSV (malloc'd, NUL-terminated). */
char *hr_sav_history_csv(const json_t *doc, const struct hr_sav_query *q, double now, size_t *len);
/* Gap-free rollup rows of one series (new reference). */
json_t *hr_sav_series(const json_t *doc, enum hr_sav_series s, double now);
/* Points of the checkpoint history after applying `mode` (new reference). */
json_t *hr_sav_history_points(const json_t *doc, enum hr_sav_mode mode);
extern const char *const hr_sav_series_names[5];

/* --------------------------------------------------------- dashboard.c */

extern const char hr_sav_dashboard_html[], hr_sav_dashboard_css[], hr_sav_dashboard_js[];

#endif
