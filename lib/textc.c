/* textc.c — shared parts of the text compressors (see textc.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hash.h"
#include "textc.h"

struct hr_line *hr_lines_split(const char *text, size_t len, size_t *n)
{
    *n = 0;
    if (len >= UINT32_MAX)
        return NULL;
    size_t cap = 64, k = 0;
    struct hr_line *l = malloc(cap * sizeof *l);
    if (!l)
        return NULL;
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t e = nl ? (size_t)(nl - text) : len, ce = e;
        if (ce > i && text[ce - 1] == '\r')
            ce--;
        if (k == cap) {
            struct hr_line *g = realloc(l, (cap *= 2) * sizeof *l);
            if (!g) {
                free(l);
                return NULL;
            }
            l = g;
        }
        l[k++] = (struct hr_line){(uint32_t)i, (uint32_t)(ce - i)};
        i = e + 1;
    }
    *n = k;
    return l;
}

void hr_text_marker(struct hr_text_out *o, const char *what, size_t omitted, size_t total)
{
    struct hr_tbuf *b = &o->b;
    hr_tbuf_putf(b, HR_TEXT_MARKER "%zu of %zu %s; headroom_retrieve hash=", omitted, total, what);
    o->hash_off[0] = b->len;
    hr_tbuf_put(b, HR_TEXTC_PLACEHOLDER "]\n", HR_CCR_HASH_LEN + 2);
    o->n_hash_off = 1;
    o->total = total;
    o->omitted = omitted;
}

void hr_text_set_hash(struct hr_text_out *o, const char *hash)
{
    for (size_t k = 0; k < o->n_hash_off; k++)
        if (o->hash_off[k] + HR_CCR_HASH_LEN <= o->b.len)
            memcpy(o->b.p + o->hash_off[k], hash, HR_CCR_HASH_LEN);
}

void hr_text_out_free(struct hr_text_out *o) { hr_tbuf_free(&o->b); }

/* ------------------------------------------------------------------ driver */

/* A result as one byte string for the memo: header, then the text. */
struct blob_head {
    int64_t rc;
    uint64_t total, omitted, n_hash_off, hash_off[2];
};

static void *pack(int rc, const struct hr_text_out *o, size_t *len)
{
    struct blob_head h = {rc, 0, 0, 0, {0, 0}};
    size_t tl = rc == 0 ? o->b.len : 0;
    if (rc == 0)
        h = (struct blob_head){rc, o->total, o->omitted, o->n_hash_off, {o->hash_off[0], o->hash_off[1]}};
    unsigned char *p = malloc(sizeof h + tl + 1);
    if (!p)
        return NULL;
    memcpy(p, &h, sizeof h);
    if (tl)
        memcpy(p + sizeof h, o->b.p, tl);
    *len = sizeof h + tl;
    return p;
}

static int unpack(const unsigned char *p, size_t len, struct hr_text_out *o)
{
    struct blob_head h;
    if (len < sizeof h)
        return -22;
    memcpy(&h, p, sizeof h);
    if (h.rc != 0)
        return (int)h.rc;
    memset(o, 0, sizeof *o);
    hr_tbuf_put(&o->b, p + sizeof h, len - sizeof h);
    if (o->b.oom || h.n_hash_off > 2) {
        hr_tbuf_free(&o->b);
        return -12;
    }
    o->total = h.total;
    o->omitted = h.omitted;
    o->n_hash_off = h.n_hash_off;
    o->hash_off[0] = h.hash_off[0];
    o->hash_off[1] = h.hash_off[1];
    return 0;
}

/* ------------------------------------------------------ text wrapped in JSON */

#define WRAP_SALT 0x7772617070656453ULL
#define SNIFF_BYTES 8192    /* the router's default sample (no router ran) */
#define SNIFF_LINES 64

/* One string of a wrapped unit for a text compressor: a text (no marker
 * already, not JSON: rows as text are smart_crusher's) of this compressor's
 * type and min_tokens, compressed. */
struct wrap_text_ctx {
    const struct hr_text_driver *d;
    const char *model, *query;
    size_t sample_bytes, sample_lines; /* the router's (hr_request, 1.9) */
};

static int wrap_text_one(void *ctx, const char *s, size_t sl, struct hr_text_out *o)
{
    const struct wrap_text_ctx *w = ctx;
    const struct hr_text_driver *d = w->d;
    size_t p = 0;
    while (p < sl && isspace((unsigned char)s[p]))
        p++;
    /* not a text: already compressed (an earlier text compressor's
     * marker), or JSON in a string (data, as the router would type it) */
    int text = !strstr(s, HR_TEXT_MARKER);
    if (text && p < sl && (s[p] == '{' || s[p] == '[')) {
        json_t *j = json_loadb(s, sl, 0, NULL);
        text = !j;
        json_decref(j);
    }
    struct hr_unit su = {.struct_size = sizeof su, .text = s, .len = sl, .tokens = HR_TOKENS_UNKNOWN,
                         .type = text ? hr_text_sniff_type(s, sl, w->sample_bytes, w->sample_lines) : HR_CT_UNKNOWN};
    return text && d->accept(d->cfg, &su) && hr_wrap_tokens_at_least(d->host, w->model, s, sl, d->min_tokens)
               ? d->compress(d->cfg, s, sl, w->query, o)
               : 1;
}

/* Compress the long strings of the JSON unit text t[0..n) this compressor
 * takes (hr_wrap_rewrite). */
static int wrap_compress(const struct hr_text_driver *d, const char *model, const size_t sample[2], const char *t,
                         size_t n, const char *query, struct hr_text_out *out, struct hr_wrap_str *ws, size_t *nws)
{
    struct wrap_text_ctx w = {d, model, query, sample[0], sample[1]};
    return hr_wrap_rewrite(t, n, d->min_tokens, d->min_savings, wrap_text_one, &w, out, ws, nws);
}

struct cand {
    size_t unit;
    struct hr_memo_key key;
    const char *query;  /* the question this unit is compressed under ("" unless uses_query) */
    const char *text;
    size_t len, tokens;
    int rc;
    int keep; /* 1 saves enough and the original is stored, -1 store refused */
    int wrapped; /* a JSON unit: its long strings (wrap_compress) */
    struct hr_text_out out;
    char hash[HR_CCR_HASH_LEN + 1];
    struct hr_wrap_str ws[HR_WRAP_MAX];
    size_t nws;
};

struct job {
    const struct hr_text_driver *d;
    struct cand *c;
    const char *model;
    size_t sample[2];           /* the router's sample_bytes, sample_lines */
    struct hr_request *req;     /* for unit_tokens_at_least (1.3) and ccr_put_unit (1.6) only */
};

static void run_one(void *ctx, size_t i)
{
    struct job *j = ctx;
    struct cand *c = &j->c[i];
    const struct hr_text_driver *d = j->d;
    size_t blen;
    unsigned char *blob = d->memo && c->key.len ? hr_memo_get(d->memo, &c->key, &blen) : NULL;
    c->rc = !blob ? -1 : c->wrapped ? hr_wrap_unpack(blob, blen, &c->out, c->ws, &c->nws) : unpack(blob, blen, &c->out);
    free(blob);
    if (!blob || c->rc < 0) {
        c->rc = c->wrapped ? wrap_compress(d, j->model, j->sample, c->text, c->len, c->query, &c->out, c->ws, &c->nws)
                           : d->compress(d->cfg, c->text, c->len, c->query, &c->out);
        if (c->rc == 0 && c->out.b.oom) {
            hr_text_out_free(&c->out);
            c->rc = -12;
        }
        if (c->rc >= 0 && d->memo && c->key.len) {
            void *p = c->wrapped ? hr_wrap_pack(c->rc, &c->out, c->ws, c->nws, &blen) : pack(c->rc, &c->out, &blen);
            if (p)
                hr_memo_put(d->memo, &c->key, p, blen);
            free(p);
        }
    }
    if (c->rc != 0)
        return;
    size_t after = d->host->count_tokens(j->model, c->out.b.p, c->out.b.len);
    if (c->tokens == HR_TOKENS_UNKNOWN ? !d->host->unit_tokens_at_least(j->req, c->unit, hr_tokens_for_savings(after, d->min_savings))
                                       : (double)after > (1.0 - d->min_savings) * (double)c->tokens)
        return;
    if (c->wrapped) {
        c->keep = hr_wrap_store(d->host, c->text, &c->out, c->ws, c->nws);
        return;
    }
    c->keep = hr_ccr_put_unit(d->host, j->req, c->unit, c->hash) == HR_OK ? 1 : -1;
    if (c->keep == 1)
        hr_text_set_hash(&c->out, c->hash);
}

int hr_text_apply(const struct hr_text_driver *d, struct hr_request *req)
{
    const struct hr_host *h = d->host;
    if (!req->n_units)
        return HR_OK; /* most requests: no tool output to look at, nothing to allocate or hash */
    int abi11 = HR_HAS_FIELD(h, struct hr_host, parallel_for);
    /* A 1.6 host keeps HR_UNIT_HAS_MARKER current: no text is searched twice. */
    int flagged = hr_host_tracks_markers(h);
    struct cand *c = calloc(req->n_units, sizeof *c);
    if (!c)
        return HR_ENOMEM;
    /* Each unit under the question asked before it (1.4: unit_query), as
     * smart_crusher does: a later question must not change how an earlier
     * output is sent, or the provider's cached prefix no longer matches
     * (doc/prompt-caching.md). req->query (the latest message) on older hosts. */
    const char *const *uq = HR_HAS_FIELD(req, struct hr_request, unit_query) ? req->unit_query : NULL;
    /* A text wrapped in JSON is typed with the router's sample (1.9), as the
     * router types the same text sent bare; its defaults when none ran. */
    size_t sample[2] = {SNIFF_BYTES, SNIFF_LINES};
    if (HR_HAS_FIELD(req, struct hr_request, sample_lines) && req->sample_bytes && req->sample_lines) {
        sample[0] = req->sample_bytes;
        sample[1] = req->sample_lines;
    }
    size_t n = 0;
    for (size_t i = 0; i < req->n_units; i++) {
        const struct hr_unit *u = &req->units[i];
        /* The type test first: the marker searches read the whole text. A
         * JSON output (most of a request's bytes) is this driver's only for
         * the long strings it may wrap; one that holds a crushed array's
         * marker is left alone, and a string already compressed (a text
         * marker in it: an earlier text compressor's) is passed over. */
        int wrapped = u->type == HR_CT_JSON_OBJECT || u->type == HR_CT_JSON_ARRAY;
        if (u->flags & HR_UNIT_PROTECTED ||
            (wrapped ? u->len < 2 * HR_WRAP_MIN_BYTES ||
                           ((u->flags & HR_UNIT_HAS_MARKER || !flagged) && strstr(u->text, "{\"" HR_MARKER_KEY "\":"))
                     : u->flags & HR_UNIT_HAS_MARKER || !d->accept(d->cfg, u) ||
                           (!flagged && (strstr(u->text, "{\"" HR_MARKER_KEY "\":") || strstr(u->text, HR_TEXT_MARKER)))) ||
            !hr_unit_tokens_at_least(h, req, i, d->min_tokens))
            continue;
        const char *query = !d->uses_query ? "" : uq && uq[i] ? uq[i] : req->query ? req->query : "";
        c[n] = (struct cand){.unit = i, .query = query, .text = u->text, .len = u->len, .tokens = u->tokens,
                             .wrapped = wrapped};
        if (d->memo && abi11) {
            uint64_t salt = hr_mix64(d->cfg_salt);
            for (const char *q = query; *q; q++)
                salt = hr_mix64(salt ^ (unsigned char)*q);
            /* a wrapped string's min_tokens is counted with the model's
             * tokenizer, its type sniffed with the router's sample */
            if (wrapped)
                salt = hr_mix64(hr_mix64(hr_mix64(salt ^ WRAP_SALT) ^ sample[0]) ^ sample[1]);
            for (const char *m = wrapped && req->model ? req->model : ""; *m; m++)
                salt = hr_mix64(salt ^ (unsigned char)*m);
            h->unit_hash(req, i, c[n].key.hash);
            c[n].key.len = u->len;
            c[n].key.salt = salt;
        }
        n++;
    }
    struct job job = {d, c, req->model, {sample[0], sample[1]}, req};
    if (abi11)
        h->parallel_for(n, run_one, &job);
    else
        for (size_t k = 0; k < n; k++)
            run_one(&job, k);
    /* Request edits stay on this thread, in unit order. */
    char tag[256] = "";
    size_t tl = 0;
    int rc = HR_OK;
    for (size_t k = 0; k < n; k++) {
        struct cand *x = &c[k];
        if (x->rc < 0 && rc == HR_OK)
            h->log(d->self, HR_LOG_WARN, "unit %zu left as is: out of memory", x->unit);
        if (x->rc == 0 && x->keep < 0)
            h->log(d->self, HR_LOG_WARN, "unit %zu left as is: the CCR store refused the original", x->unit);
        if (x->rc == 0 && x->keep == 1 &&
            h->unit_replace(req, x->unit, x->out.b.p, x->out.b.len) == HR_OK) {
            size_t kept = x->out.total - x->out.omitted;
            int w = tl ? snprintf(tag + tl, sizeof tag - tl, "+%zu/%zu", kept, x->out.total)
                       : snprintf(tag, sizeof tag, "%s:kept=%zu/%zu", d->name, kept, x->out.total);
            if (w > 0 && (size_t)w < sizeof tag - tl)
                tl += (size_t)w;
        }
        hr_text_out_free(&x->out);
    }
    free(c);
    if (tl)
        h->stage_tag(req, tag);
    return rc;
}

void hr_text_reset(void *state)
{
    struct hr_text_driver *d = state; /* the state's first member */
    if (d->memo) hr_memo_reset_counters(d->memo);
}

json_t *hr_text_memo_stats(void *driver)
{
    struct hr_text_driver *d = driver;
    struct hr_memo_counters m;
    hr_memo_read_counters(d->memo, &m);
    return json_pack("{s:{s:I,s:I,s:I,s:I,s:I}}", "result_cache", "hits", (json_int_t)m.hits, "lookups",
                     (json_int_t)m.lookups, "evictions", (json_int_t)m.evictions, "entries", (json_int_t)m.entries,
                     "bytes", (json_int_t)m.bytes);
}
