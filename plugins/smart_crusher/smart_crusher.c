/* smart_crusher.c — the plugin face of smart_crusher: config, per-unit policy
 * (protected, marker, min_tokens, content type, token savings), CCR, logs and tags. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <headroom/plugin.h>
#include "crush.h"
#include "memo.h"
#include "textc.h"

struct sc_state {
    const struct hr_host *host;
    struct hr_instance *self;
    struct hr_sc_config cfg;
    size_t min_tokens;
    struct hr_memo *memo; /* crush results by content and query; NULL = off */
};

static const struct hr_conf_key sc_keys[] = {
    HR_CONF_KEY_RANGE("max_items", HR_CONF_INT, "15", "rows kept per array besides critical rows (errors, needles, outliers)", 1, 100000),
    HR_CONF_KEY("min_savings", HR_CONF_DOUBLE, "0.10", "leave an array alone unless it shrinks by this fraction"),
    HR_CONF_KEY_MIN("min_tokens", HR_CONF_INT, "200", "leave units under this many tokens alone", 0),
    HR_CONF_KEY_RANGE("critical_fraction", HR_CONF_DOUBLE, "0.05", "critical rows kept: at most max(max_items, rows * this)", 0, 1),
    HR_CONF_KEY_RANGE("result_cache_mb", HR_CONF_INT, "8",
                 "MB of results remembered by content, so outputs resent on the next turn are not analysed again (0 = off)", 0, 65536),
    HR_CONF_END,
};

static json_t *sc_stats(void *state)
{
    struct sc_state *s = state;
    struct hr_memo_counters c;
    hr_memo_read_counters(s->memo, &c);
    return json_pack("{s:{s:I,s:I,s:I,s:I,s:I,s:I}}", "result_cache", "hits", (json_int_t)c.hits, "lookups",
                     (json_int_t)c.lookups, "evictions", (json_int_t)c.evictions, "entries", (json_int_t)c.entries,
                     "bytes", (json_int_t)c.bytes, "max_bytes", (json_int_t)c.max_bytes);
}

/* POST /stats/reset: the result-cache counters (what is cached stays). */
static void sc_reset(void *state)
{
    struct sc_state *s = state;
    hr_memo_reset_counters(s->memo);
}

static void sc_fini(void *state)
{
    struct sc_state *s = state;
    hr_memo_free(s->memo);
    free(s);
}

static int sc_init(const struct hr_host *host, struct hr_instance *self,
                   const struct hr_conf *conf, void **state)
{
    struct sc_state *s = calloc(1, sizeof *s);
    if (!s)
        return HR_ENOMEM;
    s->host = host;
    s->self = self;
    long long max_items = host->conf_int(conf, "max_items");
    long long min_tokens = host->conf_int(conf, "min_tokens");
    double min_savings = host->conf_double(conf, "min_savings");
    double crit = host->conf_double(conf, "critical_fraction");
    long long cache_mb = host->conf_int(conf, "result_cache_mb");
    if (max_items < 1 || max_items > 100000 || min_tokens < 0 || !(min_savings >= 0) ||
        min_savings >= 1 || !(crit >= 0) || crit > 1 || cache_mb < 0 || cache_mb > 65536) {
        host->log(self, HR_LOG_ERROR,
                  "bad config: need max_items 1..100000 (got %lld), min_tokens >= 0 (got %lld), "
                  "min_savings in [0,1) (got %g), critical_fraction in [0,1] (got %g), "
                  "result_cache_mb 0..65536 (got %lld)",
                  max_items, min_tokens, min_savings, crit, cache_mb);
        free(s);
        return HR_EINVAL;
    }
    /* unit_hash keys the cache; a host older than ABI 1.1 has none. */
    if (cache_mb && HR_HAS_FIELD(host, struct hr_host, unit_hash)) {
        s->memo = hr_memo_new((size_t)cache_mb << 20);
        if (!s->memo) {
            free(s);
            return HR_ENOMEM;
        }
        int rc = host->register_stats(self, "smart_crusher", sc_stats, s);
        if (rc != HR_OK) {
            sc_fini(s);
            return rc;
        }
    }
    s->cfg.max_items = (size_t)max_items;
    s->cfg.min_savings = min_savings;
    s->cfg.critical_fraction = crit;
    s->min_tokens = (size_t)min_tokens;
    *state = s;
    return HR_OK;
}

static int looks_json(const struct hr_unit *u)
{
    for (size_t i = 0; i < u->len; i++) {
        char c = u->text[i];
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
            continue;
        return c == '[' || c == '{';
    }
    return 0;
}

/* A tool output that is one JSON string (a JSON array encoded twice): the
 * router types it text; its rows may be in it (crush_one). */
static int json_string_unit(const struct hr_unit *u)
{
    if (u->type != HR_CT_UNKNOWN && u->type != HR_CT_TEXT)
        return 0;
    size_t i = 0;
    while (i < u->len && (u->text[i] == ' ' || u->text[i] == '\n' || u->text[i] == '\r' || u->text[i] == '\t'))
        i++;
    return i < u->len && u->text[i] == '"';
}

/* One candidate unit's crush, computed in parallel with the others. */
struct candidate {
    size_t unit;
    struct hr_memo_key key;
    const char *text;
    const char *query;                 /* relevance: the question asked before this output */
    size_t len, tokens;
    int rc;
    struct hr_sc_output out;
    int keep;                          /* 1 saves enough and the original is stored, -1 store refused */
    char hash[HR_CCR_HASH_LEN + 1];    /* its CCR hash */
    int json_string;                   /* the unit is one JSON string */
    int wrapped;                       /* rows as text in its strings, crushed there (wout) */
    struct hr_text_out wout;
    struct hr_wrap_str ws[HR_WRAP_MAX];
    size_t nws;
};

struct crush_job {
    struct sc_state *s;
    struct candidate *c;
    size_t *order;                     /* largest first: the last item to finish is a small one */
    const char *model;
    struct hr_request *req;            /* for unit_tokens_at_least (1.3) and ccr_put_unit (1.6) only */
};

/* Crush, or recall the crush of the same text under the same query. */
static void crush_text(struct crush_job *j, struct candidate *c)
{
    size_t blen;
    void *blob = hr_memo_get(j->s->memo, &c->key, &blen);
    if (blob) {
        c->rc = hr_sc_result_unpack(blob, blen, &c->out);
        free(blob);
        if (c->rc >= 0)
            return;
    }
    c->rc = hr_sc_crush(&j->s->cfg, c->text, c->len, c->query, &c->out);
    if (c->rc >= 0 && j->s->memo) {
        blob = hr_sc_result_pack(c->rc, &c->out, &blen);
        if (blob)
            hr_memo_put(j->s->memo, &c->key, blob, blen);
        free(blob);
    }
}

/* One string of a JSON unit that holds JSON rows as text (an MCP server's
 * {"content":[{"type":"text","text":"[{\"id\":1,…},…]"}]}, {"output":"[…]"}):
 * crushed as the unit would be, min_tokens counted on the string. */
struct wrap_rows_ctx {
    struct crush_job *j;
    const char *query;
};

static int wrap_rows_one(void *ctx, const char *s, size_t sl, struct hr_text_out *o)
{
    const struct wrap_rows_ctx *w = ctx;
    const struct sc_state *st = w->j->s;
    struct hr_sc_output so;
    if (!hr_wrap_tokens_at_least(st->host, w->j->model, s, sl, st->min_tokens))
        return 1;
    int rc = hr_sc_crush(&st->cfg, s, sl, w->query, &so);
    if (rc != HR_SC_CRUSHED)
        return rc;
    hr_tbuf_put(&o->b, so.text, so.len);
    for (size_t h = 0; h < so.n_hash_off && h < 2; h++)
        o->hash_off[o->n_hash_off++] = so.hash_off[h];
    o->total = so.total;
    o->omitted = so.total - so.kept;
    hr_sc_output_free(&so);
    return 0;
}

/* Walk the unit's strings for rows as text (hr_wrap_rewrite), or recall
 * that walk: a resent turn would decode and crush every string again. Its
 * result depends on the text, the question and the model (min_tokens is
 * counted per string with its tokenizer), so its key is the unit's crush key
 * with the model and a salt of its own. */
#define WRAP_SALT 0x726f777374657874ULL
static void wrap_rows(struct crush_job *j, struct candidate *c)
{
    struct hr_memo_key k = c->key;
    const char *model = j->model ? j->model : "";
    k.salt = hr_sc_hash(model, strlen(model), c->key.salt ^ WRAP_SALT);
    size_t blen;
    void *blob = hr_memo_get(j->s->memo, &k, &blen);
    int rc = blob ? hr_wrap_unpack(blob, blen, &c->wout, c->ws, &c->nws) : -1;
    free(blob);
    if (!blob || rc < 0) {
        struct wrap_rows_ctx w = {j, c->query};
        rc = hr_wrap_rewrite(c->text, c->len, j->s->min_tokens, j->s->cfg.min_savings, wrap_rows_one, &w, &c->wout,
                             c->ws, &c->nws);
        if (rc >= 0 && j->s->memo) {
            blob = hr_wrap_pack(rc, &c->wout, c->ws, c->nws, &blen);
            if (blob)
                hr_memo_put(j->s->memo, &k, blob, blen);
            free(blob);
        }
    }
    c->wrapped = rc == 0;
}

/* Work on one unit that needs no request access, so it may run on any
 * thread: crush (or recall), count the result, store the original. */
static void crush_one(void *ctx, size_t i)
{
    struct crush_job *j = ctx;
    struct candidate *c = &j->c[j->order[i]];
    const struct hr_host *h = j->s->host;
    /* Crushed on an earlier turn: a host before 1.6 may not have flagged
     * it (HR_UNIT_HAS_MARKER) after an earlier stage's replacement, and
     * flags none escaped in a JSON string (rows crushed as text, sent again). */
    if (!hr_host_tracks_markers(h) && (memmem(c->text, c->len, "{\"_headroom\":", 13) ||
                                       memmem(c->text, c->len, "{\\\"_headroom\\\":", 15))) {
        c->rc = HR_SC_SKIP_SAVINGS;
        return;
    }
    crush_text(j, c);
    /* No rows of its own: rows may be carried as text in its strings (one
     * walk, lib/textc.h's, as the text compressors' for a wrapped log). */
    if ((c->rc == HR_SC_SKIP_NO_ARRAY || c->rc == HR_SC_SKIP_SMALL ||
         (c->rc == HR_SC_SKIP_NOT_JSON && c->json_string)) &&
        c->len >= 2 * HR_WRAP_MIN_BYTES) {
        wrap_rows(j, c);
        if (!c->wrapped)
            return;
        size_t after = h->count_tokens(j->model, c->wout.b.p, c->wout.b.len);
        if (c->tokens == HR_TOKENS_UNKNOWN
                ? !h->unit_tokens_at_least(j->req, c->unit, hr_tokens_for_savings(after, j->s->cfg.min_savings))
                : (double)after > (1.0 - j->s->cfg.min_savings) * (double)c->tokens)
            return;
        /* each string's rows text goes to CCR under its marker's hash */
        c->keep = hr_wrap_store(h, c->text, &c->wout, c->ws, c->nws);
        if (c->keep == 1)
            h->count_tokens(j->model, c->wout.b.p, c->wout.b.len);
        return;
    }
    if (c->rc != HR_SC_CRUSHED)
        return;
    if (c->tokens == HR_TOKENS_UNKNOWN) {
        /* The host counts the original only as far as this answer needs. */
        size_t after = h->count_tokens(j->model, c->out.text, c->out.len);
        if (!h->unit_tokens_at_least(j->req, c->unit, hr_tokens_for_savings(after, j->s->cfg.min_savings)))
            return;
    } else {
        /* A token covers at least a byte: an output with fewer bytes than the
         * limit saves enough whatever it counts (the usual crush), and is
         * counted once, below, as it will be sent. */
        double limit = (1.0 - j->s->cfg.min_savings) * (double)c->tokens;
        if ((double)c->out.len > limit && (double)h->count_tokens(j->model, c->out.text, c->out.len) > limit)
            return;
    }
    /* The CCR store keeps the client's original text, byte for byte. */
    c->keep = hr_ccr_put_unit(h, j->req, c->unit, c->hash) == HR_OK ? 1 : -1;
    if (c->keep == 1) {
        hr_sc_output_set_hash(&c->out, c->hash);
        /* Counted here, on a helper thread when there is one: unit_replace
         * then finds the count in the host's cache. */
        h->count_tokens(j->model, c->out.text, c->out.len);
    }
}

static int eligible(const struct sc_state *s, struct hr_request *req, size_t i)
{
    const struct hr_unit *u = &req->units[i];
    if (u->flags & (HR_UNIT_PROTECTED | HR_UNIT_HAS_MARKER))
        return 0;
    if (!(u->type == HR_CT_UNKNOWN ? looks_json(u) : u->type == HR_CT_JSON_ARRAY || u->type == HR_CT_JSON_OBJECT) &&
        !json_string_unit(u))
        return 0;
    return hr_unit_tokens_at_least(s->host, req, i, s->min_tokens);
}

/* Replace one unit with its crush when that was kept. */
static void keep_result(struct sc_state *s, struct hr_request *req, struct candidate *c, char *tag, size_t *tl)
{
    const struct hr_host *h = s->host;
    struct hr_unit *u = &req->units[c->unit];
    if (c->rc < 0) {
        h->log(s->self, HR_LOG_WARN, "unit %zu (message %u) left as is: out of memory", c->unit, u->message_index);
        return;
    }
    if ((c->rc != HR_SC_CRUSHED && !c->wrapped) || c->keep == 0)
        return; /* not crushed, or too little saved */
    if (c->keep < 0) {
        h->log(s->self, HR_LOG_WARN, "unit %zu left as is: the CCR store refused the original", c->unit);
        return;
    }
    if (c->wrapped) {
        if (h->unit_replace(req, c->unit, c->wout.b.p, c->wout.b.len) != HR_OK)
            return;
        h->log(s->self, HR_LOG_INFO, "SmartCrusher applied top_n strategy to rows as text: kept %zu of %zu items",
               c->wout.total - c->wout.omitted, c->wout.total);
        int w = snprintf(tag + *tl, 256 - *tl, "%s%zu/%zu", *tl ? "+" : "smart_crusher:top_n:kept=",
                         c->wout.total - c->wout.omitted, c->wout.total);
        if (w > 0 && (size_t)w < 256 - *tl)
            *tl += (size_t)w;
        return;
    }
    if (h->unit_replace(req, c->unit, c->out.text, c->out.len) != HR_OK)
        return;
    h->log(s->self, HR_LOG_INFO, "SmartCrusher applied top_n strategy: kept %zu of %zu items", c->out.kept,
           c->out.total);
    if (h->log_enabled(HR_LOG_DEBUG))
        h->log(s->self, HR_LOG_DEBUG, "Kept items: %s (%s)", c->out.kept_list, c->out.reasons);
    int w = snprintf(tag + *tl, 256 - *tl, "%s%zu/%zu", *tl ? "+" : "smart_crusher:top_n:kept=", c->out.kept,
                     c->out.total);
    if (w > 0 && (size_t)w < 256 - *tl)
        *tl += (size_t)w;
}

/* Insertion sort of candidate indices by length, longest first (few items). */
static void largest_first(size_t *order, const struct candidate *c, size_t n)
{
    for (size_t a = 1; a < n; a++)
        for (size_t b = a; b > 0 && c[order[b]].len > c[order[b - 1]].len; b--) {
            size_t t = order[b];
            order[b] = order[b - 1];
            order[b - 1] = t;
        }
}

static int sc_apply(void *state, struct hr_request *req)
{
    struct sc_state *s = state;
    const struct hr_host *h = s->host;
    if (!req->n_units)
        return HR_OK; /* no tool output: nothing to crush, no query hash */
    int abi11 = HR_HAS_FIELD(h, struct hr_host, parallel_for);
    struct candidate *c = calloc(req->n_units, sizeof *c);
    if (!c)
        return HR_ENOMEM;
    size_t n = 0;
    /* Each output under the question asked before it (1.4), so its crush is
     * the same on every later turn; an older host gives one query for all. */
    const char *const *uq = HR_HAS_FIELD(req, struct hr_request, unit_query) ? req->unit_query : NULL;
    for (size_t i = 0; i < req->n_units; i++) {
        const struct hr_unit *u = &req->units[i];
        if (!eligible(s, req, i))
            continue;
        const char *query = uq && uq[i] ? uq[i] : req->query ? req->query : "";
        c[n] = (struct candidate){.unit = i, .text = u->text, .query = query, .len = u->len, .tokens = u->tokens,
                                   .json_string = json_string_unit(u)};
        if (s->memo) {
            h->unit_hash(req, i, c[n].key.hash);
            c[n].key.len = u->len;
            c[n].key.salt = hr_sc_hash(query, strlen(query), 0x9e57); /* relevance depends on it */
        }
        n++;
    }
    struct crush_job job = {s, c, malloc((n ? n : 1) * sizeof *job.order), req->model, req};
    if (!job.order) {
        free(c);
        return HR_ENOMEM;
    }
    for (size_t k = 0; k < n; k++)
        job.order[k] = k;
    if (abi11) {
        largest_first(job.order, c, n);
        h->parallel_for(n, crush_one, &job);
    } else {
        for (size_t k = 0; k < n; k++)
            crush_one(&job, k);
    }
    /* Host calls that touch the request stay on this thread, in unit order. */
    char tag[256] = "";
    size_t tl = 0;
    for (size_t k = 0; k < n; k++) {
        keep_result(s, req, &c[k], tag, &tl);
        hr_sc_output_free(&c[k].out);
        hr_tbuf_free(&c[k].wout.b);
    }
    free(job.order);
    free(c);
    if (tl)
        h->stage_tag(req, tag);
    return HR_OK;
}

HR_PLUGIN_EXPORT const struct headroom_plugin headroom_plugin = {
    HR_PLUGIN_HEADER,
    .name = "smart_crusher",
    .kind = HR_PLUGIN_TRANSFORM,
    .version = "1.0.0",
    .description = "keeps the rows of JSON arrays that matter (errors, needles, outliers, relevance) and a retrieval marker",
    .conf_keys = sc_keys,
    .init = sc_init,
    .fini = sc_fini,
    .apply = sc_apply,
    .transform_flags = HR_TF_COUNTS_ON_DEMAND | HR_TF_UNITS_ONLY | HR_TF_NEEDS_UNITS,
    .content_types = HR_CT_BIT(HR_CT_JSON_ARRAY) | HR_CT_BIT(HR_CT_JSON_OBJECT),
    .reset = sc_reset,
};
