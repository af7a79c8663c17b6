/* pipeline.c — candidate units, stage timing, fail-open undo, token totals. */
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "api/api.h"
#include "ccr.h"
#include "hash.h"
#include "json_get.h"
#include "json_load.h"
#include "json_pool.h"
#include "log.h"
#include "par.h"
#include "pipeline.h"
#include "crash.h"
#include "session_floor.h"
#include "stats.h"
#include "token_cache.h"
#include "tokenizer.h"
#include "tokens.h"

#define LOGGER "headroom.transforms.pipeline"
#define PER_MESSAGE_TOKENS 3

/* A text's count taken only as far as decisions needed it: the pieces
 * before byte `upto` count `raw` (a sum of hr_count_tokens_part, before the
 * estimate's scaling). Once upto reaches the end, `tokens` is the count. */
struct lazy_count {
    size_t upto, raw, tokens;
    int done;
};

/* Where a unit's text lives: holder[key] is the JSON string; and the
 * text's content hash once computed (reset whenever the text changes). */
struct unit_ref {
    json_t *holder;
    const char *key;
    int hashed;
    uint64_t hash[2];
    int replaced;          /* a stage replaced the text in this request */
    /* The client's text is the only one counted on demand (a stage's text
     * is counted whole when it is offered): its count so far, whether it is
     * still the unit's text, and the stage that replaced it before its count
     * was known, with what that stage's text counted (credited once the
     * original is counted, in hr_pipeline_count_finish). */
    struct lazy_count orig;
    int original;
    int credit_stage;      /* -1: none pending */
    size_t credit_tokens;
    size_t late;           /* its entry in struct hr_late_count */
};

/* One unit_replace, kept so a failing stage can be undone. */
struct journal_entry {
    size_t unit;
    json_t *old_value;     /* reference held */
    size_t old_tokens;     /* HR_TOKENS_UNKNOWN: the uncounted original */
    int was_original;
    uint32_t old_flags;
};

struct req_ctx {
    struct hr_request req;              /* first: plugins see only this */
    struct unit_ref *refs;
    enum hr_encoding enc;
    size_t cur_stage;
    int64_t stage_saved;
    char *stage_tag;
    struct journal_entry *journal;
    size_t n_journal, cap_journal;
};

static struct req_ctx *ctx_of(struct hr_request *req) { return (struct req_ctx *)req; }

/* Strings already counted as units, sorted by address, so the request total
 * does not tokenize them twice. */
struct skip_set {
    const json_t **items;
    size_t n;
};

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)*(const json_t *const *)a, y = (uintptr_t)*(const json_t *const *)b;
    return x < y ? -1 : x > y;
}

static int in_skip(const struct skip_set *s, const json_t *v)
{
    return s && s->n && bsearch(&v, s->items, s->n, sizeof *s->items, cmp_ptr);
}

/* `api`: the request's format, which says what is data (images, PDFs,
 * signatures) rather than text; NULL: every string is text. */
static uint64_t count_strings(const struct hr_api *api, enum hr_encoding enc, const json_t *v,
                              const struct skip_set *skip)
{
    uint64_t n = 0, data;
    size_t i;
    const char *k;
    json_t *x;
    if (!v) return 0;
    switch (json_typeof(v)) {
    case JSON_STRING:
        return in_skip(skip, v) ? 0 : hr_count_tokens_cached_enc(enc, json_string_value(v), json_string_length(v));
    case JSON_ARRAY:
        json_array_foreach(v, i, x) n += count_strings(api, enc, x, skip);
        return n;
    case JSON_OBJECT:
        json_object_foreach((json_t *)v, k, x) {
            if (api && api->data_tokens && api->data_tokens(v, k, &data)) n += data;
            else n += count_strings(api, enc, x, skip);
        }
        return n;
    default: return 0;
    }
}

static uint64_t request_tokens(const struct hr_api *api, const char *model, const json_t *body,
                               const struct skip_set *skip)
{
    uint64_t n = 0;
    enum hr_encoding enc = hr_encoding_for_model(model);
    for (size_t i = 0; api->counted_keys[i]; i++)
        n += count_strings(api, enc, hr_json_get(body, api->counted_keys[i]), skip);
    n += PER_MESSAGE_TOKENS * (uint64_t)json_array_size(hr_json_get(body, api->items_key));
    return n;
}

uint64_t hr_request_tokens(const struct hr_api *api, const char *model, const json_t *body)
{
    return request_tokens(api, model, body, NULL);
}

uint64_t hr_json_tokens(const char *model, const json_t *value)
{
    return count_strings(NULL, hr_encoding_for_model(model), value, NULL);
}

uint64_t hr_item_tokens(const struct hr_api *api, const char *model, const json_t *item)
{
    return count_strings(api, hr_encoding_for_model(model), item, NULL);
}

struct unit_list {
    struct hr_unit *units;
    struct unit_ref *refs;
    size_t n, cap;
    size_t found;          /* string tool outputs seen, kept or not */
};

/* hr_api_unit_fn: the adapter found a tool output at holder[key]. */
static void add_unit(void *ud, json_t *holder, const char *key, size_t msg, const char *tool)
{
    struct unit_list *l = ud;
    json_t *s = hr_json_get(holder, key);
    if (!json_is_string(s)) return;
    l->found++;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        struct hr_unit *u = realloc(l->units, cap * sizeof *u);
        if (u) l->units = u;
        struct unit_ref *r = realloc(l->refs, cap * sizeof *r);
        if (r) l->refs = r;
        if (!u || !r) return;
        l->cap = cap;
    }
    l->units[l->n] = (struct hr_unit){.struct_size = sizeof(struct hr_unit), .message_index = (uint32_t)msg,
                                      .text = json_string_value(s), .len = json_string_length(s), .tool_name = tool};
    /* Held so a stage that removes whole messages cannot free a holder that
     * the undo journal or a later unit_replace would still write to. */
    l->refs[l->n] = (struct unit_ref){.holder = json_incref(holder), .key = key, .original = 1, .credit_stage = -1};
    l->n++;
}

/* Whether a content block, or a part of its own content (a tool_result's
 * text parts: Anthropic takes a breakpoint there too), carries cache_control. */
static int block_caches(const json_t *b)
{
    size_t k;
    json_t *part;
    if (hr_json_get(b, "cache_control")) return 1;
    json_array_foreach(hr_json_get(b, "content"), k, part) {
        if (hr_json_get(part, "cache_control")) return 1;
    }
    return 0;
}

/* Messages up to the last one carrying cache_control: what the client asks
 * the provider to cache (hr_request.protected_floor, cache_aligner's prefix
 * tracking). Tool outputs in them are still compressed: see
 * doc/prompt-caching.md. */
static size_t cache_control_floor(const json_t *messages)
{
    size_t floor = 0, i, k;
    json_t *m, *b;
    json_array_foreach(messages, i, m) {
        json_t *content = hr_json_get(m, "content");
        if (hr_json_get(m, "cache_control")) floor = i + 1;
        json_array_foreach(content, k, b) {
            if (block_caches(b)) floor = i + 1;
        }
    }
    return floor;
}

static int is_protected_tool(const struct hr_pipeline_opts *o, const char *tool)
{
    for (size_t i = 0; tool && i < o->n_protected_tools; i++)
        if (!strcmp(o->protected_tools[i], tool)) return 1;
    return 0;
}

/* Counting on demand goes forward in steps of about this many bytes per
 * token still wanted (a token is 3-4 bytes of typical tool output), and at
 * least LAZY_MIN_STEP: what a step counts past the answer is not wasted,
 * the next step (or the count after forwarding) starts where it stopped. */
#define LAZY_BYTES_PER_TOKEN 4
#define LAZY_MIN_STEP 4096

/* Count more of text until its count is known to reach n, or it ends. */
static void lazy_advance(enum hr_encoding enc, const char *text, size_t len, struct lazy_count *z, size_t n)
{
    size_t have;
    while (!z->done && (have = hr_count_tokens_total(enc, z->raw, len)) < n) {
        size_t want = n - have;
        size_t step = want > (len - z->upto) / LAZY_BYTES_PER_TOKEN ? len - z->upto : want * LAZY_BYTES_PER_TOKEN;
        if (step < LAZY_MIN_STEP) step = LAZY_MIN_STEP;
        size_t end = step >= len - z->upto ? len : hr_tokens_split_point(enc, text, len, z->upto + step);
        z->raw += hr_count_tokens_part(enc, text + z->upto, end - z->upto);
        z->upto = end;
        if (end == len) {
            z->done = 1;
            z->tokens = hr_count_tokens_total(enc, z->raw, len);
        }
    }
}

/* A long text's count goes into the count cache, so the next turn, which
 * sends the same output again, finds it there. */
static void remember_count(const char *model, size_t len, const struct unit_ref *r)
{
    if (r->hashed && r->orig.done) hr_token_cache_store(model, len, r->hash, r->orig.tokens);
}

/* Whether the unit's text counts n tokens or more; u->tokens stays
 * HR_TOKENS_UNKNOWN until its whole original has been counted. */
static int unit_at_least(enum hr_encoding enc, const char *model, struct hr_unit *u, struct unit_ref *r, size_t n)
{
    if (u->tokens != HR_TOKENS_UNKNOWN) return u->tokens >= n;
    lazy_advance(enc, u->text, u->len, &r->orig, n);
    if (r->orig.done) {
        u->tokens = r->orig.tokens;
        remember_count(model, u->len, r);
    }
    return hr_count_tokens_total(enc, r->orig.raw, u->len) >= n;
}

int hr_pipeline_unit_tokens_at_least(struct hr_request *req, size_t i, size_t n)
{
    struct req_ctx *c = ctx_of(req);
    if (i >= req->n_units) return 0;
    return unit_at_least(c->enc, req->model, &req->units[i], &c->refs[i], n);
}

size_t hr_pipeline_unit_tokens(struct hr_request *req, size_t i)
{
    if (i >= req->n_units) return 0;
    hr_pipeline_unit_tokens_at_least(req, i, HR_TOKENS_UNKNOWN);
    return req->units[i].tokens;
}

/* HR_UNIT_HAS_MARKER as the unit's current text has it: set when units are
 * found, and again whenever a stage replaces or a failure restores a text
 * (ABI 1.6: stages rely on it instead of searching themselves). */
static void flag_marker(struct hr_unit *u)
{
    int has = strstr(u->text, "\"" HR_MARKER_KEY "\"") || strstr(u->text, "\\\"" HR_MARKER_KEY "\\\"") ||
              strstr(u->text, HR_TEXT_MARKER); /* the second: escaped in a JSON string (rows carried as text) */
    u->flags = has ? u->flags | HR_UNIT_HAS_MARKER : u->flags & ~HR_UNIT_HAS_MARKER;
}

int hr_pipeline_unit_replace(struct hr_request *req, size_t i, const char *text, size_t len)
{
    struct req_ctx *c = ctx_of(req);
    if (!text || i >= req->n_units) return HR_EINVAL;
    struct hr_unit *u = &req->units[i];
    if (u->flags & HR_UNIT_PROTECTED) return HR_EINVAL;
    /* Cached: a plugin that counted its candidate first pays only once. */
    size_t tokens = hr_count_tokens_cached(req->model, text, len);
    struct unit_ref *r = &c->refs[i];
    if (!unit_at_least(c->enc, req->model, u, r, tokens + 1)) return HR_ENOTSMALLER;
    /* jansson's own check reads a byte at a time: ours reads ASCII eight at
     * a time and accepts exactly what json_stringn accepts. */
    if (hr_utf8_valid_prefix((const uint8_t *)text, len) != len) return HR_EINVAL; /* not UTF-8 */
    json_t *s = json_stringn_nocheck(text, len);
    if (!s) return HR_ENOMEM;
    if (c->n_journal == c->cap_journal) {
        size_t cap = c->cap_journal ? c->cap_journal * 2 : 8;
        struct journal_entry *j = realloc(c->journal, cap * sizeof *j);
        if (!j) {
            json_decref(s);
            return HR_ENOMEM;
        }
        c->journal = j;
        c->cap_journal = cap;
    }
    c->journal[c->n_journal++] =
        (struct journal_entry){i, json_incref(hr_json_get(r->holder, r->key)), u->tokens, r->original, u->flags};
    json_object_set_new(r->holder, r->key, s);
    r->hashed = 0;
    r->replaced = 1;
    if (u->tokens == HR_TOKENS_UNKNOWN) { /* credited when the original is counted */
        r->credit_stage = (int)c->cur_stage;
        r->credit_tokens = tokens;
    } else {
        c->stage_saved += (int64_t)(u->tokens - tokens);
    }
    r->original = 0;
    u->text = json_string_value(s);
    u->len = len;
    u->tokens = tokens;
    flag_marker(u);
    return HR_OK;
}

static void unit_ref_hash(struct unit_ref *r, const struct hr_unit *u)
{
    if (!r->hashed) hr_hash128(u->text, u->len, &r->hash[0], &r->hash[1]);
    r->hashed = 1;
}

void hr_pipeline_unit_hash(struct hr_request *req, size_t i, uint64_t out[2])
{
    struct req_ctx *c = ctx_of(req);
    out[0] = out[1] = 0;
    if (i >= req->n_units) return;
    unit_ref_hash(&c->refs[i], &req->units[i]);
    out[0] = c->refs[i].hash[0];
    out[1] = c->refs[i].hash[1];
}

int hr_pipeline_ccr_put_unit(struct hr_request *req, size_t i, char hash_out[HR_CCR_HASH_LEN + 1])
{
    if (i >= req->n_units) return HR_EINVAL;
    const struct unit_ref *r = &ctx_of(req)->refs[i];
    const struct hr_unit *u = &req->units[i];
    /* Long units were hashed when found; a short one is hashed by the store
     * only if its memo wants it. */
    return r->hashed ? hr_ccr_put_hashed(u->text, u->len, r->hash, hash_out) : hr_ccr_put(u->text, u->len, hash_out);
}

void hr_pipeline_stage_tokens_removed(struct hr_request *req, uint64_t tokens)
{
    struct req_ctx *c = ctx_of(req);
    c->stage_saved += (int64_t)tokens;
    req->body_edited = 1;
}

void hr_pipeline_stage_tag(struct hr_request *req, const char *tag)
{
    struct req_ctx *c = ctx_of(req);
    if (c->stage_tag && tag) snprintf(c->stage_tag, 128, "%s", tag);
}

/* Put back every unit this stage replaced, newest first. */
static void undo_stage(struct req_ctx *c, size_t journal_mark)
{
    while (c->n_journal > journal_mark) {
        struct journal_entry *e = &c->journal[--c->n_journal];
        struct unit_ref *r = &c->refs[e->unit];
        json_object_set_new(r->holder, r->key, e->old_value);
        r->hashed = 0;
        struct hr_unit *u = &c->req.units[e->unit];
        u->text = json_string_value(e->old_value);
        u->len = json_string_length(e->old_value);
        u->tokens = e->old_tokens;
        u->flags = e->old_flags;
        r->original = e->was_original;
        if (e->old_tokens == HR_TOKENS_UNKNOWN) r->credit_stage = -1;
    }
}

/* What a stage may edit outside units, kept so a failed stage can be
 * undone: message order and membership (a shallow copy of the array), tool
 * definitions and the system prompt (deep copies: stages edit them in
 * place; by reference before a stage that copies on write), every other
 * top-level key by reference. A list of the body's members, not a JSON
 * object: nearly every request only takes one and drops it, and building
 * an object (its hash table, a node per member) cost more than the copies. */
struct snapshot {
    size_t n;
    struct member_copy {
        const char *key; /* in the block after m[] */
        json_t *value;
    } m[];
};

static void snapshot_free(struct snapshot *s)
{
    for (size_t i = 0; s && i < s->n; i++) json_decref(s->m[i].value);
    free(s);
}

/* NULL when out of memory: the stage then runs without a way back. */
static struct snapshot *snapshot_body(const struct hr_api *api, json_t *body, int by_reference)
{
    const char *k;
    json_t *v;
    size_t n = json_object_size(body), key_bytes = 0;
    json_object_foreach(body, k, v) key_bytes += strlen(k) + 1;
    struct snapshot *s = malloc(sizeof *s + n * sizeof *s->m + key_bytes);
    if (!s) return NULL;
    char *kp = (char *)(s->m + n);
    s->n = 0;
    json_object_foreach(body, k, v) {
        json_t *c;
        if (!strcmp(k, api->items_key)) c = json_copy(v);
        else if (!by_reference && (!strcmp(k, "tools") || (api->system_key && !strcmp(k, api->system_key)))) {
            c = json_deep_copy(v);
            hr_json_spellings_copied(v, c); /* put back by an undo: 1e-05 stays 1e-05 */
        } else c = json_incref(v);
        if (!c) {
            snapshot_free(s);
            return NULL;
        }
        size_t kl = strlen(k) + 1;
        memcpy(kp, k, kl);
        s->m[s->n++] = (struct member_copy){kp, c};
        kp += kl;
    }
    return s;
}

static void restore_body(json_t *body, const struct snapshot *s)
{
    json_object_clear(body);
    for (size_t i = 0; i < s->n; i++) json_object_set(body, s->m[i].key, s->m[i].value);
}

/* The snapshot as a JSON object (the late count's "body before any edit"). */
static json_t *snapshot_object(const struct snapshot *s)
{
    json_t *o = json_object();
    for (size_t i = 0; o && i < s->n; i++) json_object_set(o, s->m[i].key, s->m[i].value);
    return o;
}

/* The counts the retrieve API reports, from the marker before the address:
 * smart_crusher's starts {"_headroom":{"omitted":O,"total":T, a text
 * marker "[headroom: O of T ". Other markers leave them unknown. */
static void marker_counts(const char *text, const char *addr, struct hr_ccr_info *info)
{
    static const char head[] = "{\"" HR_MARKER_KEY "\":{\"omitted\":";
    const char *m = NULL, *tm = NULL;
    for (const char *p = text; (p = strstr(p, head)) && p < addr; p++) m = p;
    for (const char *p = text; (p = strstr(p, HR_TEXT_MARKER)) && p < addr; p++) tm = p;
    long long omitted = -1, total = -1;
    if (tm && (!m || tm > m)) {
        if (sscanf(tm + strlen(HR_TEXT_MARKER), "%lld of %lld ", &omitted, &total) != 2)
            omitted = total = -1;
    } else if (!m || sscanf(m + sizeof head - 1, "%lld,\"total\":%lld", &omitted, &total) != 2) {
        omitted = total = -1;
    }
    if (omitted >= 0 && total >= omitted) {
        info->original_items = total;
        info->compressed_items = total - omitted;
    }
}

/* The addresses of the markers this request's stages inserted: reported by
 * /v1/compress (ccr_hashes), and described in the store (tool, counts).
 * Only replaced units are read: the rest carry no new marker. */
static void note_markers(struct req_ctx *c, struct hr_pipeline_result *out)
{
    struct hr_request *req = &c->req;
    for (size_t i = 0; i < req->n_units; i++) {
        const struct hr_unit *u = &req->units[i];
        if (!c->refs[i].replaced) continue;
        char found[16][HR_CCR_HASH_LEN + 1];
        size_t n = hr_ccr_markers(u->text, u->len, found, 16);
        for (size_t k = 0; k < n; k++) {
            struct hr_ccr_info info = {.original_items = -1, .compressed_items = -1};
            if (u->tool_name) snprintf(info.tool_name, sizeof info.tool_name, "%s", u->tool_name);
            if (req->model) snprintf(info.model, sizeof info.model, "%s", req->model);
            marker_counts(u->text, strstr(u->text, found[k]), &info);
            hr_ccr_describe(found[k], &info, NULL);
            size_t j = 0;
            while (j < out->n_ccr_hashes && strcmp(out->ccr_hashes[j], found[k])) j++;
            if (j < out->n_ccr_hashes) continue;
            void *grown = realloc(out->ccr_hashes, (out->n_ccr_hashes + 1) * sizeof *out->ccr_hashes);
            if (!grown) continue;
            out->ccr_hashes = grown;
            memcpy(out->ccr_hashes[out->n_ccr_hashes++], found[k], HR_CCR_HASH_LEN + 1);
        }
    }
}

static void commit_journal(struct req_ctx *c)
{
    for (size_t k = 0; k < c->n_journal; k++) json_decref(c->journal[k].old_value);
    c->n_journal = 0;
}

/* Below this much candidate text, handing units to helper threads costs
 * more than it saves. */
#define PARALLEL_MIN_BYTES (64 * 1024)
/* Texts counted whole are counted in parts of about this size, so one long
 * tool output does not leave the other threads idle. */
#define PART_BYTES (128 * 1024)

struct lookup_job {
    const char *model;
    enum hr_encoding enc;
    struct hr_unit *units;
    struct unit_ref *refs;
    size_t min_tokens;
    char *keep;            /* per unit: reaches min_tokens */
};

/* Below this a unit's count is taken whole (from the count cache, or
 * counted); from it on, counted only as far as a decision needs. */
#define UNIT_LAZY_MIN_BYTES 2048

/* Long texts already searched and found without a marker, by content hash:
 * an agent resends its tool outputs every turn, and searching them again
 * was a tenth of a long conversation's turn. One word per slot (written
 * and read whole), lossy: a slot another text took is a miss. */
#define MARKER_MEMO_SLOTS 4096
static _Atomic uint64_t marker_free[MARKER_MEMO_SLOTS];

static uint64_t marker_memo_key(const uint64_t hash[2], size_t len) { return hr_mix64(hash[1] ^ len) | 1; }

static void flag_marker_long(struct hr_unit *u, const uint64_t hash[2])
{
    _Atomic uint64_t *slot = &marker_free[hash[0] % MARKER_MEMO_SLOTS];
    uint64_t key = marker_memo_key(hash, u->len);
    if (atomic_load_explicit(slot, memory_order_relaxed) == key) return; /* searched before: none */
    flag_marker(u);
    if (!(u->flags & HR_UNIT_HAS_MARKER)) atomic_store_explicit(slot, key, memory_order_relaxed);
}

/* Marker check, and the token count when it is cheap: small texts are
 * counted (or found in the count cache), large ones hashed (that hash keys
 * both the count cache and plugins' unit_hash) and looked up; the rest are
 * counted on demand, here as far as min_tokens. */
static void look_up_unit(void *ctx, size_t i)
{
    struct lookup_job *j = ctx;
    struct hr_unit *u = &j->units[i];
    struct unit_ref *r = &j->refs[i];
    if (u->len < UNIT_LAZY_MIN_BYTES) {
        flag_marker(u);
        u->tokens = hr_count_tokens_cached_enc(j->enc, u->text, u->len);
    } else {
        unit_ref_hash(r, u);
        flag_marker_long(u, r->hash);
        if (!hr_token_cache_lookup(j->model, u->len, r->hash, &u->tokens)) u->tokens = HR_TOKENS_UNKNOWN;
    }
    if (u->tokens != HR_TOKENS_UNKNOWN) r->orig = (struct lazy_count){u->len, 0, u->tokens, 1};
    if (j->keep) j->keep[i] = (char)unit_at_least(j->enc, j->model, u, r, j->min_tokens);
}

static void for_each(size_t n, hr_par_fn fn, void *ctx, int parallel)
{
    if (parallel) hr_par_for(n, fn, ctx);
    else
        for (size_t i = 0; i < n; i++) fn(ctx, i);
}

/* Whether the request this worker is compressing is large enough for
 * helpers; plugins' parallel_for asks it. */
static _Thread_local int large_request;

void hr_pipeline_parallel_for(size_t n, hr_par_fn fn, void *ctx) { for_each(n, fn, ctx, large_request); }

/* The rest of a text's count: text[z->upto ..) still to count. */
struct rest {
    const char *text;
    size_t len;
    struct lazy_count *z;
};

struct part {
    size_t rest, off, len, tokens;
};

struct rest_job {
    enum hr_encoding enc;
    struct rest *rests;
    struct part *parts;
};

static void count_part(void *ctx, size_t k)
{
    struct rest_job *j = ctx;
    struct part *p = &j->parts[k];
    p->tokens = hr_count_tokens_part(j->enc, j->rests[p->rest].text + p->off, p->len);
}

/* Cut the rests into parts no pre-token crosses. */
static size_t cut_parts(struct rest_job *j, size_t n_rests, struct part **out)
{
    size_t n = 0, cap = 0;
    struct part *parts = NULL;
    for (size_t i = 0; i < n_rests; i++) {
        const struct rest *r = &j->rests[i];
        for (size_t off = r->z->upto; off < r->len;) {
            size_t end = off + PART_BYTES >= r->len ? r->len : hr_tokens_split_point(j->enc, r->text, r->len, off + PART_BYTES);
            if (n == cap) {
                struct part *np = realloc(parts, (cap = cap ? cap * 2 : 16) * sizeof *np);
                if (!np) {
                    free(parts);
                    return (size_t)-1;
                }
                parts = np;
            }
            parts[n++] = (struct part){i, off, end - off, 0};
            off = end;
        }
    }
    *out = parts;
    return n;
}

/* Finish the counts of these texts, in parallel when `parallel`. */
static void count_rests(enum hr_encoding enc, struct rest *rests, size_t n, int parallel)
{
    struct rest_job j = {enc, rests, NULL};
    size_t n_parts = n ? cut_parts(&j, n, &j.parts) : 0;
    if (n_parts == (size_t)-1) { /* out of memory: one by one */
        for (size_t i = 0; i < n; i++) lazy_advance(enc, rests[i].text, rests[i].len, rests[i].z, HR_TOKENS_UNKNOWN);
        return;
    }
    for_each(n_parts, count_part, &j, parallel);
    for (size_t k = 0; k < n_parts; k++) rests[j.parts[k].rest].z->raw += j.parts[k].tokens;
    for (size_t i = 0; i < n; i++) {
        struct lazy_count *z = rests[i].z;
        z->upto = rests[i].len;
        z->done = 1;
        z->tokens = hr_count_tokens_total(enc, z->raw, rests[i].len);
    }
    free(j.parts);
}

/* Before a stage that reads hr_unit.tokens directly: count every unit whose
 * count is still open. Returns 0 when the request has no units (nothing
 * done), else 1. */
static int count_all_units(struct req_ctx *c)
{
    struct hr_request *req = &c->req;
    if (!req->n_units) return 0;
    struct rest *rests = calloc(req->n_units, sizeof *rests);
    size_t n = 0;
    for (size_t i = 0; i < req->n_units; i++) {
        if (req->units[i].tokens != HR_TOKENS_UNKNOWN) continue;
        if (!rests) { /* out of memory: one by one */
            hr_pipeline_unit_tokens(req, i);
            continue;
        }
        rests[n++] = (struct rest){req->units[i].text, req->units[i].len, &c->refs[i].orig};
    }
    count_rests(c->enc, rests, n, large_request);
    for (size_t i = 0; rests && i < req->n_units; i++) {
        if (req->units[i].tokens != HR_TOKENS_UNKNOWN) continue;
        req->units[i].tokens = c->refs[i].orig.tokens;
        remember_count(req->model, req->units[i].len, &c->refs[i]);
    }
    free(rests);
    return 1;
}

/* Whether the stage declares a transform flag: read only from plugins
 * built for the ABI minor that defined it (an older one's bits mean
 * nothing). HR_TF_COUNTS_ON_DEMAND is 1.3, HR_TF_UNITS_ONLY 1.5,
 * HR_TF_COPY_ON_WRITE 1.6, HR_TF_NEEDS_UNITS 1.8. */
static int declares(const struct hr_instance *in, unsigned minor, uint32_t flag)
{
    const struct headroom_plugin *d = in->desc;
    return d->abi_minor >= minor && HR_HAS_FIELD(d, struct headroom_plugin, transform_flags) &&
           (d->transform_flags & flag);
}

/* Feeds the digest in blocks: small pieces (a tag, a length) go through a
 * buffer, hashed when it fills and folded into a running pair, so the hash
 * is called a few times per request rather than for every piece. The id
 * names a conversation inside this process only (session_floor.c, the
 * aligner's prefix tracking), so a fast non-cryptographic hash serves: on
 * a small request SHA-256 was 6 % of headroomd's instructions. */
struct digest_buf {
    uint64_t h1, h2;
    size_t n;
    unsigned char b[1024];
};

static void digest_fold(struct digest_buf *d, const void *p, size_t len)
{
    uint64_t a, b;
    hr_hash128(p, len, &a, &b);
    d->h1 = hr_mix64(d->h1 ^ a) + len;
    d->h2 = hr_mix64(d->h2 ^ b ^ d->h1);
}

static void digest_put(struct digest_buf *d, const void *p, size_t len)
{
    if (d->n + len > sizeof d->b) {
        digest_fold(d, d->b, d->n);
        d->n = 0;
        if (len > sizeof d->b) {
            digest_fold(d, p, len);
            return;
        }
    }
    memcpy(d->b + d->n, p, len);
    d->n += len;
}

/* Feeds a JSON value to the digest without serialising it first: a type
 * byte, then lengths and bytes, so two different values never feed the same
 * stream. (Objects keep their members' order, as jansson does.) */
static void digest_json(struct digest_buf *c, const json_t *v)
{
    unsigned char tag = v ? (unsigned char)json_typeof(v) : 0xffu;
    digest_put(c, &tag, 1);
    if (!v) return;
    size_t n;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        const json_t *m;
        n = json_object_size(v);
        digest_put(c, &n, sizeof n);
        json_object_foreach((json_t *)v, k, m) {
            size_t kl = strlen(k);
            digest_put(c, &kl, sizeof kl);
            digest_put(c, k, kl);
            digest_json(c, m);
        }
        break;
    }
    case JSON_ARRAY:
        n = json_array_size(v);
        digest_put(c, &n, sizeof n);
        for (size_t i = 0; i < n; i++) digest_json(c, json_array_get(v, i));
        break;
    case JSON_STRING:
        n = json_string_length(v);
        digest_put(c, &n, sizeof n);
        digest_put(c, json_string_value(v), n);
        break;
    case JSON_INTEGER: {
        json_int_t i = json_integer_value(v);
        digest_put(c, &i, sizeof i);
        break;
    }
    case JSON_REAL: {
        double d = json_real_value(v);
        digest_put(c, &d, sizeof d);
        break;
    }
    default: break; /* true, false, null: the tag says it all */
    }
}

static void session_id(const struct hr_api *api, const json_t *body, const char *hint, char out[HR_CCR_HASH_LEN + 1])
{
    if (hint && *hint) {
        snprintf(out, HR_CCR_HASH_LEN + 1, "%s", hint);
        return;
    }
    /* A conversation keeps its system prompt and first message across turns. */
    struct digest_buf db; /* not zeroed: its buffer is written before it is read */
    db.h1 = 0x9e3779b97f4a7c15ULL;
    db.h2 = 0x6a09e667f3bcc909ULL;
    db.n = 0;
    digest_put(&db, api->name, strlen(api->name) + 1);
    digest_json(&db, hr_json_get(body, api->system_key));
    digest_json(&db, json_array_get(hr_json_get(body, api->items_key), 0));
    digest_fold(&db, db.b, db.n);
    static const char hex[] = "0123456789abcdef";
    /* 24 of the pair's 32 hex digits, last first (snprintf cost 1.5 k instructions) */
    uint64_t h1 = db.h1, h2 = db.h2 >> (4 * (32 - HR_CCR_HASH_LEN));
    for (int i = 15; i >= 0; i--, h1 >>= 4) out[i] = hex[h1 & 15];
    for (int i = HR_CCR_HASH_LEN - 1; i >= 16; i--, h2 >>= 4) out[i] = hex[h2 & 15];
    out[HR_CCR_HASH_LEN] = '\0';
}

/* What the request total still needs once the stages have run: the body as
 * it was before any stage edited it outside units (the body itself when
 * none did, else the snapshot taken before the first that did: stages
 * change only units, message order and membership, tools and the system
 * prompt, which the snapshot copies), and the units, whose strings it skips
 * and whose original texts it counts apart: those a stage needed counted
 * are counted already, the rest of them here. Units too short to reach
 * min_tokens are not units: a token is at least a byte, so they can be no
 * candidate; they are counted here with the other strings. */
struct late_unit {
    json_t *holder;        /* reference held; the unit's string is now holder[key] */
    const char *key;
    json_t *original;      /* the client's string, reference held */
    struct lazy_count orig;
    int hashed;
    uint64_t hash[2];
    int credit_stage;      /* -1, or the stage its saving is owed to */
    size_t credit_tokens;
};

struct hr_late_count {
    const struct hr_api *api;
    const char *model;
    json_t *base;          /* reference held */
    int64_t saved;
    uint64_t host_added;   /* tokens the host added to `base` after the stages */
    uint64_t charged;      /* tokens charged as sent before the count was final */
    size_t n;
    struct late_unit u[];
};

static void late_free(struct hr_late_count *lc)
{
    if (!lc) return;
    json_decref(lc->base);
    for (size_t i = 0; i < lc->n; i++) {
        json_decref(lc->u[i].holder);
        json_decref(lc->u[i].original);
    }
    free(lc);
}

/* The units' originals not counted yet, counted now (on helpers when there
 * is much), remembered in the count cache, and the savings they were owed
 * credited to their stages. */
static void late_units(struct hr_late_count *lc, struct hr_pipeline_result *r)
{
    enum hr_encoding enc = hr_encoding_for_model(lc->model);
    struct rest *rests = calloc(lc->n ? lc->n : 1, sizeof *rests);
    size_t *which = calloc(lc->n ? lc->n : 1, sizeof *which);
    size_t n = 0, bytes = 0;
    for (size_t i = 0; i < lc->n; i++) {
        struct late_unit *u = &lc->u[i];
        if (u->orig.done) continue;
        const char *text = json_string_value(u->original);
        size_t len = json_string_length(u->original);
        if (rests && which) {
            which[n] = i;
            rests[n++] = (struct rest){text, len, &u->orig};
            bytes += len - u->orig.upto;
        } else { /* out of memory: one by one */
            lazy_advance(enc, text, len, &u->orig, HR_TOKENS_UNKNOWN);
        }
    }
    hr_par_request_begin();
    count_rests(enc, rests, n, bytes >= PARALLEL_MIN_BYTES);
    hr_par_request_end();
    for (size_t k = 0; k < n; k++) {
        const struct late_unit *u = &lc->u[which[k]];
        if (u->hashed) hr_token_cache_store(lc->model, json_string_length(u->original), u->hash, u->orig.tokens);
    }
    free(rests);
    free(which);
    for (size_t i = 0; i < lc->n; i++) {
        const struct late_unit *u = &lc->u[i];
        if (u->credit_stage < 0) continue;
        int64_t owed = (int64_t)u->orig.tokens - (int64_t)u->credit_tokens;
        if ((size_t)u->credit_stage < r->n_stages) r->stages[u->credit_stage].tokens_saved += owed;
        lc->saved += owed;
    }
}

void hr_pipeline_count_finish(struct hr_pipeline_result *r)
{
    struct hr_late_count *lc = r->late;
    if (!lc) return;
    r->late = NULL;
    if (lc->n) late_units(lc, r);
    /* The units' strings as they are now: a stage may have replaced them,
     * in the body and in the snapshot alike (they share messages). */
    struct skip_set skip = {lc->n ? calloc(lc->n, sizeof *skip.items) : NULL, 0};
    uint64_t unit_tokens = 0;
    for (size_t i = 0; skip.items && i < lc->n; i++) {
        skip.items[skip.n++] = hr_json_get(lc->u[i].holder, lc->u[i].key);
        unit_tokens += lc->u[i].orig.tokens;
    }
    if (skip.items) qsort(skip.items, skip.n, sizeof *skip.items, cmp_ptr);
    /* Counting is additive over strings: skipping the units and adding their
     * counts is what counting them again gives (as it does out of memory). */
    uint64_t counted = request_tokens(lc->api, lc->model, lc->base, skip.items ? &skip : NULL) + unit_tokens;
    free(skip.items);
    r->tokens_before = counted >= lc->host_added ? counted - lc->host_added : 0;
    int64_t saved = lc->saved > (int64_t)r->tokens_before ? (int64_t)r->tokens_before : lc->saved;
    r->tokens_after = r->tokens_before - (uint64_t)saved;
    uint64_t charged = lc->charged;
    late_free(lc);
    hr_pipeline_charge_sent(r, charged);
}

void hr_pipeline_charge_sent(struct hr_pipeline_result *r, uint64_t tokens)
{
    if (r->late) { /* applied once the count is final */
        r->late->charged += tokens;
        return;
    }
    r->tokens_after += tokens;
    if (r->tokens_after > r->tokens_before) r->tokens_after = r->tokens_before;
}

void hr_pipeline_host_added(struct hr_pipeline_result *r, const json_t *body, uint64_t tokens)
{
    if (r->late && r->late->base == body) r->late->host_added += tokens;
}

/* Leave out the units whose keep[i] is 0. */
static void drop_units(struct unit_list *l, const char *keep)
{
    size_t kept = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (!keep[i]) {
            json_decref(l->refs[i].holder);
            continue;
        }
        l->units[kept] = l->units[i];
        l->refs[kept] = l->refs[i];
        kept++;
    }
    l->n = kept;
}

/* The late count's record of every unit: where its string is, the client's
 * text and its count so far. */
static struct hr_late_count *late_new(const struct hr_api *api, const char *model, const struct unit_list *l)
{
    struct hr_late_count *lc = malloc(sizeof *lc + l->n * sizeof *lc->u); /* all set below */
    if (!lc) return NULL;
    *lc = (struct hr_late_count){.api = api, .model = model, .n = l->n};
    for (size_t i = 0; i < l->n; i++) {
        const struct unit_ref *r = &l->refs[i];
        lc->u[i] = (struct late_unit){.holder = json_incref(r->holder), .key = r->key,
                                      .original = json_incref(hr_json_get(r->holder, r->key)), .orig = r->orig,
                                      .hashed = r->hashed, .hash = {r->hash[0], r->hash[1]}, .credit_stage = -1};
    }
    return lc;
}

/* Each unit's relevance query: the latest user text before its item, so a
 * unit's compression depends only on the conversation up to it and a prefix
 * the provider cached comes out byte for byte the same on later turns. Units
 * are in item order. Items are read forwards only as far as the last unit;
 * the request's query (the latest of all, returned) is looked for from the
 * end, so a request without units reads only its last turns. */
static const char *unit_queries(const struct hr_api *api, const json_t *items, const struct hr_unit *u, size_t n,
                                const char **q)
{
    if (json_is_string(items)) return json_string_value(items); /* Responses' "input": "text", no units */
    const char *latest = "", *t;
    size_t k = 0, last = n ? u[n - 1].message_index : 0;
    for (size_t i = 0; i < last; i++) {
        for (; k < n && u[k].message_index <= i; k++) q[k] = latest; /* before item i's own text */
        if ((t = api->user_text(json_array_get(items, i)))) latest = t;
    }
    for (; k < n; k++) q[k] = latest;
    for (size_t i = json_array_size(items); i-- > last;)
        if ((t = api->user_text(json_array_get(items, i)))) return t;
    return latest;
}

void hr_pipeline_run(struct hr_instance *const *transforms, size_t n, const struct hr_pipeline_opts *opts,
                     const struct hr_api *api, json_t *body, const char *model, const char *stack,
                     const char *session_hint, struct hr_pipeline_result *out)
{
    double t0 = hr_monotonic_ms();
    hr_par_request_begin();
    memset(out, 0, sizeof *out);
    json_t *messages = hr_json_get(body, api->items_key);
    struct unit_list l = {0};
    api->find_units(body, add_unit, &l);
    out->n_found = l.found;
    session_id(api, body, session_hint, out->session_id);
    out->n_messages = json_array_size(messages);
    size_t floor = cache_control_floor(messages);
    struct hr_session_view last_turn;
    hr_session_get(out->session_id, &last_turn);
    size_t recent_protected = 0;
    /* A client that marks cache breakpoints in the conversation (Claude Code
     * moves one to its last message every turn) has each turn cached: an
     * output of a protected tool, sent whole while it was recent, stays
     * whole when it is older, so the cached prefix stays what it was. */
    int client_caches = floor > 0;
    for (size_t i = l.n; i-- > 0;) {
        struct hr_unit *u = &l.units[i];
        if (is_protected_tool(opts, u->tool_name) && opts->protect_recent > 0 &&
            (client_caches || recent_protected < (size_t)opts->protect_recent)) {
            u->flags |= HR_UNIT_PROTECTED;
            recent_protected++;
        }
        if (u->message_index < last_turn.floor && !(u->flags & HR_UNIT_PROTECTED)) {
            uint64_t h = hr_session_text_hash(u->text, u->len);
            for (size_t k = 0; k < last_turn.n_raw; k++)
                if (last_turn.raw[k] == h) u->flags |= HR_UNIT_PROTECTED; /* sent whole into the cache */
        }
    }
    /* What this request sends whole (protected outputs), for the session
     * record written when the request ends (hr_session_record). */
    for (size_t i = 0; i < l.n && out->n_raw < HR_SESSION_MAX_RAW; i++)
        if (l.units[i].flags & HR_UNIT_PROTECTED)
            out->raw[out->n_raw++] = hr_session_text_hash(l.units[i].text, l.units[i].len);
    out->record_raw = !opts->dry_run && (out->n_raw || last_turn.n_raw);
    size_t total_len = 0;
    for (size_t i = 0; i < l.n; i++) total_len += l.units[i].len;
    int parallel = large_request = total_len >= PARALLEL_MIN_BYTES;
    enum hr_encoding enc = hr_encoding_for_model(model);
    /* Units below min_tokens are not candidates, and what has fewer bytes
     * than min_tokens cannot be one (see hr_late_count). The others' counts
     * come from the count cache, or are taken as far as a decision needs:
     * min_tokens here, then what the stages ask (unit_tokens_at_least). */
    char *keep = l.n ? malloc(l.n) : NULL;
    for (size_t i = 0; keep && i < l.n; i++) keep[i] = l.units[i].len >= (size_t)opts->min_tokens;
    if (keep) drop_units(&l, keep);
    struct lookup_job lj = {model, enc, l.units, l.refs, (size_t)opts->min_tokens, keep};
    for_each(l.n, look_up_unit, &lj, parallel);
    struct hr_late_count *lc = late_new(api, model, &l);
    for (size_t i = 0; i < l.n; i++) l.refs[i].late = i;
    if (keep) drop_units(&l, keep);
    free(keep);
    out->n_units = l.n;

    const char **queries = l.n ? malloc(l.n * sizeof *queries) : NULL; /* none for a request without units */
    const char *query = queries || !l.n ? unit_queries(api, messages, l.units, l.n, queries) : "";
    struct req_ctx c = {
        .req = {.struct_size = sizeof(struct hr_request), .provider = api->provider, .model = model ? model : "",
                .stack = stack ? stack : "", .session_id = out->session_id, .body = body, .protected_floor = floor,
                .units = l.units, .n_units = l.n, .query = query, .wire_format = api->format,
                .unit_query = queries},
        .refs = l.refs,
        .enc = enc,
    };
    /* Out of memory for the late count: count everything now. */
    if (!lc) count_all_units(&c);
    /* malloc, not calloc (which skips glibc's per-thread cache): each entry
     * is set whole in the loop below. */
    out->stages = malloc((n ? n : 1) * sizeof *out->stages);
    out->tag_storage = malloc((n ? n : 1) * sizeof *out->tag_storage);
    out->n_stages = out->stages && out->tag_storage ? n : 0;
    int64_t saved_total = 0;
    /* The body as it was before the current stage, for undoing it. Stages
     * say when they edit the body outside units (body_edited, which the
     * ABI requires: an unflagged edit would not even be forwarded), so one
     * snapshot serves every stage until one of them does; a stage that
     * edits units alone (HR_TF_UNITS_ONLY) needs none, its journal is
     * enough. */
    struct snapshot *snapshot = NULL;
    int snapshot_refs = 0; /* it holds tools and system by reference */
    if (!lc) out->tokens_before = request_tokens(api, model, body, NULL); /* out of memory: count all now */
    /* A stage's clock starts where the previous one's stopped, unless the
     * host did real work in between (a snapshot, counts, an undo): the
     * bookkeeping between two stages is a few dozen instructions, and a
     * clock read is ~16 ns, 14 of them per request otherwise. */
    double stage_end = 0;
    int host_work = 1;
    for (size_t s = 0; s < out->n_stages; s++) {
        struct hr_instance *in = transforms[s];
        struct hr_stage_result *r = &out->stages[s];
        out->tag_storage[s][0] = '\0';
        *r = (struct hr_stage_result){.struct_size = sizeof *r, .name = in->name, .tag = out->tag_storage[s]};
        /* Nothing for it to do: not called, not timed (a clock read costs
         * more than the call). */
        if (!l.n && declares(in, 8, HR_TF_NEEDS_UNITS)) continue;
        c.cur_stage = s;
        c.stage_saved = 0;
        c.stage_tag = out->tag_storage[s];
        size_t mark = c.n_journal;
        int edited_before = c.req.body_edited;
        int only_units = declares(in, 5, HR_TF_UNITS_ONLY), cow = declares(in, 6, HR_TF_COPY_ON_WRITE);
        /* A snapshot by reference serves stages that copy on write only; no
         * stage has edited since it was taken, so a deep one taken now holds
         * the same values. */
        if (!only_units && (!snapshot || (snapshot_refs && !cow))) { /* its copies: freed with the request, json_pool.c */
            snapshot_free(snapshot);
            int pooled = hr_json_pool_begin();
            snapshot = snapshot_body(api, body, cow);
            snapshot_refs = cow;
            if (pooled) hr_json_pool_end();
            host_work = 1;
        }
        c.req.body_edited = 0;
        if (!declares(in, 3, HR_TF_COUNTS_ON_DEMAND) && count_all_units(&c)) host_work = 1;
        double st = host_work ? hr_monotonic_ms() : stage_end;
        hr_crash_where = in->label;
        int rc = in->desc->apply(in->state, &c.req);
        hr_crash_where = NULL;
        stage_end = hr_monotonic_ms();
        host_work = 0;
        r->ms = stage_end - st;
        int edited = c.req.body_edited;
        c.req.body_edited = edited_before || edited;
        /* once per stage: the instance is shared, the log would say it per request */
        if (edited && only_units && !snapshot && !atomic_exchange(&in->broke_units_only, 1)) {
            host_work = 1; /* a write to the log: not the next stage's time */
            HR_WARN(LOGGER, "stage %s declares HR_TF_UNITS_ONLY but set body_edited: no copy of the body is taken "
                    "before it, so its edits outside units cannot be undone when it fails and are counted as the "
                    "client's; rebuild it without the flag", in->name);
        }
        if (rc != 0 || r->ms > opts->stage_budget_ms) {
            host_work = 1;
            undo_stage(&c, mark);
            if (snapshot) {
                restore_body(body, snapshot);
                snapshot_free(snapshot); /* the body now holds its values: take a fresh one */
                snapshot = NULL;
            }
            c.req.body_edited = edited_before;
            r->failed = 1;
            if (rc) /* the code is the plugin's only word on why */
                HR_WARN(LOGGER, "stage %s failed: apply returned %d (%.2f ms, budget %.0f ms): its changes were undone",
                        in->name, rc, r->ms, opts->stage_budget_ms);
            else
                HR_WARN(LOGGER, "stage %s ran over its time budget (%.2f ms, budget %.0f ms): its changes were undone",
                        in->name, r->ms, opts->stage_budget_ms);
            continue;
        }
        if (edited && snapshot) { /* the next stage's "before" is this stage's result */
            host_work = 1;
            if (lc && !lc->base) { /* the body before any edit */
                int pooled = hr_json_pool_begin();
                lc->base = snapshot_object(snapshot);
                if (pooled) hr_json_pool_end();
            }
            snapshot_free(snapshot);
            snapshot = NULL;
        }
        r->tokens_saved = c.stage_saved;
        saved_total += c.stage_saved;
    }
    snapshot_free(snapshot);
    out->changed = c.n_journal > 0 || c.req.body_edited;
    note_markers(&c, out);
    commit_journal(&c);
    free(c.journal);
    if (lc) {
        if (!lc->base) lc->base = json_incref(body);
        lc->saved = saved_total;
        for (size_t i = 0; i < l.n; i++) { /* what the stages counted, and what they are owed */
            struct late_unit *u = &lc->u[l.refs[i].late];
            u->orig = l.refs[i].orig;
            u->credit_stage = l.refs[i].credit_stage;
            u->credit_tokens = l.refs[i].credit_tokens;
        }
        out->late = lc;
    } else {
        if (saved_total > (int64_t)out->tokens_before) saved_total = (int64_t)out->tokens_before;
        out->tokens_after = out->tokens_before - (uint64_t)saved_total;
    }
    free(l.units);
    free(queries);
    for (size_t i = 0; i < l.n; i++) json_decref(l.refs[i].holder);
    free(l.refs);
    hr_par_request_end();
    large_request = 0;
    if (!opts->defer_count) hr_pipeline_count_finish(out);
    out->pipeline_ms = hr_monotonic_ms() - t0;
}

void hr_pipeline_log_saving(uint64_t before, uint64_t after)
{
    if (before <= after) return;
    uint64_t saved = before - after;
    HR_INFO(LOGGER, "Pipeline complete: %llu -> %llu tokens (saved %llu, %.1f%% reduction)", (unsigned long long)before,
            (unsigned long long)after, (unsigned long long)saved, 100.0 * (double)saved / (double)before);
}

void hr_pipeline_result_free(struct hr_pipeline_result *r)
{
    late_free(r->late);
    free(r->ccr_hashes);
    free(r->stages);
    free(r->tag_storage);
    memset(r, 0, sizeof *r);
}
