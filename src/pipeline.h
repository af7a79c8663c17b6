/* pipeline.h — runs the transform stages over one parsed request: finds the
 * candidate units, times each stage, undoes a failed or slow stage, and
 * reports tokens before/after. */
#ifndef HR_PIPELINE_H
#define HR_PIPELINE_H
#include <jansson.h>
#include "headroom/plugin.h"
#include "api/api.h"
#include "ccr.h"
#include "loader.h"
#include "session_floor.h"

struct hr_pipeline_opts {
    int min_tokens;
    int protect_recent;
    char *const *protected_tools;
    size_t n_protected_tools;
    double stage_budget_ms;
    int dry_run;                        /* /v1/compress: remember nothing about the session */
    /* Leave the request total (strings outside candidate units) to
     * hr_pipeline_count_finish, called once the body is forwarded. */
    int defer_count;
};

struct hr_late_count;

struct hr_pipeline_result {
    uint64_t tokens_before, tokens_after;
    int changed;                        /* body was modified: re-serialise it */
    size_t n_units;
    size_t n_found;                     /* tool outputs the adapter found, short ones included */
    size_t n_stages;
    struct hr_stage_result *stages;     /* tags point into tag_storage */
    char (*tag_storage)[128];
    double pipeline_ms;
    char session_id[HR_CCR_HASH_LEN + 1]; /* as transforms saw it */
    size_t n_messages;
    /* Outputs sent whole, for the session record (session_floor.h). */
    uint64_t raw[HR_SESSION_MAX_RAW];
    size_t n_raw;
    int record_raw;
    /* CCR addresses the compressed request's markers point to (malloc'd). */
    char (*ccr_hashes)[HR_CCR_HASH_LEN + 1];
    size_t n_ccr_hashes;
    /* With defer_count: tokens_before/after are not final until
     * hr_pipeline_count_finish (NULL once they are). */
    struct hr_late_count *late;
};

/* Count the tokens a request carries: every string under the format's
 * counted keys (system, tools, messages / instructions, tools, input), plus
 * a small per-message overhead. Additive over strings, so a unit's delta is
 * exactly the request's delta. */
uint64_t hr_request_tokens(const struct hr_api *api, const char *model, const json_t *body);
/* Tokens of every string inside `value` (same counting as above, each
 * string as text). */
uint64_t hr_json_tokens(const char *model, const json_t *value);
/* Tokens of an item of a request of format `api`, as the request count
 * counts it: its data (images, PDFs, signatures, encrypted reasoning) as the
 * provider bills it (without the per-message overhead). */
uint64_t hr_item_tokens(const struct hr_api *api, const char *model, const json_t *item);

/* Run `transforms` over `body` (edited in place). Never fails: a failing
 * stage is undone and marked failed. */
void hr_pipeline_run(struct hr_instance *const *transforms, size_t n, const struct hr_pipeline_opts *opts,
                     const struct hr_api *api, json_t *body, const char *model, const char *stack,
                     const char *session_hint, struct hr_pipeline_result *out);
void hr_pipeline_result_free(struct hr_pipeline_result *r);
/* Count what defer_count left (nothing when r->late is NULL) and set
 * tokens_before/after to what an undeferred run reports. The run's `model`
 * string must still be alive. */
void hr_pipeline_count_finish(struct hr_pipeline_result *r);
/* Tokens sent that the client did not send (the retrieve tool, a
 * follow-up's messages): added to tokens_after, now or, while the count is
 * deferred, once it is final. */
void hr_pipeline_charge_sent(struct hr_pipeline_result *r, uint64_t tokens);
/* The host added strings counting `tokens` to `body` after the stages (the
 * retrieve tool): a deferred count that reads `body` leaves them out of
 * tokens_before. Charge them with hr_pipeline_charge_sent. */
void hr_pipeline_host_added(struct hr_pipeline_result *r, const json_t *body, uint64_t tokens);
/* The INFO line "Pipeline complete: B -> A tokens (saved S, P% reduction)",
 * written with the figures every other surface shows (accounting.c, when a
 * saving is credited; compress_api.c). */
void hr_pipeline_log_saving(uint64_t before, uint64_t after);

/* hr_host entries (see plugin.h). */
int hr_pipeline_unit_replace(struct hr_request *req, size_t unit_index, const char *text, size_t len);
void hr_pipeline_stage_tag(struct hr_request *req, const char *tag);
void hr_pipeline_stage_tokens_removed(struct hr_request *req, uint64_t tokens);
void hr_pipeline_unit_hash(struct hr_request *req, size_t unit_index, uint64_t out[2]);
int hr_pipeline_unit_tokens_at_least(struct hr_request *req, size_t unit_index, size_t n);
size_t hr_pipeline_unit_tokens(struct hr_request *req, size_t unit_index);
int hr_pipeline_ccr_put_unit(struct hr_request *req, size_t unit_index, char hash_out[HR_CCR_HASH_LEN + 1]);
/* hr_par_for when the current request has 64 KiB or more of candidate text,
 * else a plain loop (helpers would cost more than they save). */
void hr_pipeline_parallel_for(size_t n, void (*fn)(void *ctx, size_t i), void *ctx);
#endif
