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

/* A tool output that is a JSON object (or array) wrapping a text: MCP's
 * {"content":[{"type":"text","text":"<log>"}],"isError":false}, Codex's
 * {"output":"<log>","metadata":{…}}, {"stdout":…,"stderr":…,"exit_code":…}.
 * The router types it json_object, smart_crusher finds no rows in it, and it
 * went upstream whole. When long string values are the bulk of it, each is
 * typed as the router types a text and, when this compressor takes that
 * type, compressed (its own marker line first, the string's text stored in
 * CCR under the marker's hash); everything else is kept byte for byte, so
 * the result is the same JSON with shorter strings. */
#define WRAP_MAX 16         /* long strings in one unit at most: the host describes 16 markers a unit */
#define WRAP_MIN_BYTES 256  /* a shorter string is never worth a marker */
#define WRAP_SALT 0x7772617070656453ULL
#define SNIFF_BYTES 8192    /* the router's default sample */
#define SNIFF_LINES 64

/* One compressed string: its body in the unit's text, where its marker's
 * hash goes in the new text, and its counts. */
struct wrap_str {
    uint64_t raw_off, raw_len, hash_at[2], n_hash, total, omitted;
};

/* Whether the quote at t[i] ends or opens a string (not an escaped one: valid
 * JSON has backslashes only inside strings). */
static int real_quote(const char *t, size_t i)
{
    size_t bs = 0;
    while (bs < i && t[i - bs - 1] == '\\')
        bs++;
    return !(bs & 1);
}

/* The first real quote in t[from, to), else SIZE_MAX. */
static size_t quote_after(const char *t, size_t from, size_t to)
{
    for (const char *q; from < to && (q = memchr(t + from, '"', to - from)); from = (size_t)(q - t) + 1)
        if (real_quote(t, (size_t)(q - t)))
            return (size_t)(q - t);
    return SIZE_MAX;
}

/* The last real quote in t[from, to), else SIZE_MAX. */
static size_t quote_before(const char *t, size_t from, size_t to)
{
    for (const char *q; to > from && (q = memrchr(t + from, '"', to - from)); to = (size_t)(q - t))
        if (real_quote(t, (size_t)(q - t)))
            return (size_t)(q - t);
    return SIZE_MAX;
}

/* A quick no for most JSON (arrays of rows): at most WRAP_MAX strings that
 * are half the text hold one of at least a 32nd of it, so one of 63 evenly
 * spaced probes lies in a string whose quotes are farther apart than that.
 * A probe in rows finds quotes a few bytes away on both sides; only a text
 * where one does not is scanned whole (long_strings). */
static int may_wrap(const char *t, size_t n)
{
    if (n < 65536)
        return 1; /* scanning it costs little */
    size_t step = n / 64, gap = n / 32;
    for (size_t k = 1; k < 64; k++) {
        size_t p = k * step, r = quote_after(t, p, p + gap < n ? p + gap : n);
        size_t l = r == SIZE_MAX ? SIZE_MAX : quote_before(t, p > gap ? p - gap : 0, p + 1);
        if (l == SIZE_MAX || r - l > gap)
            return 1;
    }
    return 0;
}

/* Value strings (not keys) of the JSON text t[0..n) whose body is at least
 * `min` bytes, in text order, in out; returns how many, their body bytes in
 * *bytes; 0 when more than WRAP_MAX (rows with long fields, such as issues
 * and their bodies, are smart_crusher's). Stops early once they can no
 * longer be half the text (an array of rows). */
static size_t long_strings(const char *t, size_t n, size_t min, struct wrap_str *out, size_t *bytes)
{
    size_t k = 0, found = 0, many = 0;
    for (size_t i = 0; i < n; i++) {
        if (found * 2 + 2 * (n - i) < n)
            break;
        const char *q = memchr(t + i, '"', n - i);
        if (!q)
            break;
        i = (size_t)(q - t);
        size_t b = i + 1, e = b;
        e = quote_after(t, b, n);
        if (e == SIZE_MAX)
            return 0; /* not JSON after all */
        i = e;
        size_t j = e + 1;
        while (j < n && (t[j] == ' ' || t[j] == '\t' || t[j] == '\n' || t[j] == '\r'))
            j++;
        if ((j < n && t[j] == ':') || e - b < min)
            continue; /* a key, or short */
        struct wrap_str w = {.raw_off = b, .raw_len = e - b};
        found += e - b;
        if (++many > WRAP_MAX)
            return 0; /* rows with long fields (issues and their bodies): smart_crusher's */
        out[k++] = w;
    }
    *bytes = 0;
    for (size_t x = 0; x < k; x++)
        *bytes += out[x].raw_len;
    return k;
}

/* The decoded value of the string whose body is t[off, off+len) (jansson:
 * the unit is JSON the router checked); NULL when it will not decode. */
static json_t *decode_string(const char *t, uint64_t off, uint64_t len)
{
    json_t *v = json_loadb(t + off - 1, len + 2, JSON_DECODE_ANY, NULL);
    if (v && !json_is_string(v)) {
        json_decref(v);
        v = NULL;
    }
    return v;
}

/* Append s[0..n) as the body of a JSON string (no quotes), \uxxxx for every
 * non-ASCII character when `ascii` (the original had none: Python's
 * json.dumps writes so), hex in lower case as most encoders write it
 * (jansson's capitals would be the only change in an ASCII wrapper). -1 when
 * s is not valid UTF-8. */
static int put_escaped(struct hr_tbuf *b, const char *s, size_t n, int ascii)
{
    if (!n)
        return 0;
    json_t *v = json_stringn(s, n);
    char *e = v ? json_dumps(v, JSON_ENCODE_ANY | (ascii ? JSON_ENSURE_ASCII : 0)) : NULL;
    json_decref(v);
    if (!e)
        return -1;
    size_t el = strlen(e);
    for (size_t i = 1; i + 1 < el; i++)
        if (e[i] == '\\' && e[++i] == 'u')
            for (size_t k = i + 1; k < i + 5 && k < el; k++)
                e[k] = (char)tolower((unsigned char)e[k]);
    hr_tbuf_put(b, e + 1, el - 2);
    free(e);
    return 0;
}

/* The number of tokens of s is at least `want` (a prefix usually settles it:
 * a token is at least one byte). */
static int tokens_at_least(const struct hr_text_driver *d, const char *model, const char *s, size_t n, size_t want)
{
    if (n < want)
        return 0;
    size_t pre = 16 * want + 64;
    if (pre < n) {
        while (pre < n && ((unsigned char)s[pre] & 0xC0) == 0x80)
            pre++; /* on a character boundary */
        if (d->host->count_tokens(model, s, pre) >= want)
            return 1;
    }
    return d->host->count_tokens(model, s, n) >= want;
}

/* Compress the long strings of the JSON unit text t[0..n) this compressor
 * takes; out gets the new text (placeholders where the hashes go) with the
 * strings' totals, ws[0..*nws) each string. 0, a positive code to leave the
 * unit alone, or a negative error. */
static int wrap_compress(const struct hr_text_driver *d, const char *model, const char *t, size_t n, const char *query,
                         struct hr_text_out *out, struct wrap_str *ws, size_t *nws)
{
    struct wrap_str cand[WRAP_MAX];
    size_t min = d->min_tokens > WRAP_MIN_BYTES ? d->min_tokens : WRAP_MIN_BYTES; /* a token is at least a byte */
    size_t bytes = 0, k = may_wrap(t, n) ? long_strings(t, n, min, cand, &bytes) : 0;
    memset(out, 0, sizeof *out);
    *nws = 0;
    if (!k || bytes * 2 < n)
        return 1; /* no text the bulk of it */
    int ascii = 1;
    for (size_t i = 0; i < n && ascii; i++)
        ascii = (unsigned char)t[i] < 0x80;
    size_t at = 0; /* t[0..at) is written */
    int rc = 0;
    for (size_t x = 0; x < k && rc >= 0; x++) {
        json_t *v = decode_string(t, cand[x].raw_off, cand[x].raw_len);
        const char *s = v ? json_string_value(v) : NULL;
        size_t sl = v ? json_string_length(v) : 0, p = 0;
        while (p < sl && isspace((unsigned char)s[p]))
            p++;
        /* not a text: already compressed (an earlier text compressor's
         * marker), or JSON in a string (data, as the router would type it) */
        int text = s && !strstr(s, HR_TEXT_MARKER);
        if (text && p < sl && (s[p] == '{' || s[p] == '[')) {
            json_t *j = json_loadb(s, sl, 0, NULL);
            text = !j;
            json_decref(j);
        }
        struct hr_unit su = {.struct_size = sizeof su, .text = s, .len = sl, .tokens = HR_TOKENS_UNKNOWN,
                             .type = text ? hr_text_sniff_type(s, sl, SNIFF_BYTES, SNIFF_LINES) : HR_CT_UNKNOWN};
        struct hr_text_out o = {0};
        int r = text && d->accept(d->cfg, &su) &&
                        tokens_at_least(d, model, s, sl, d->min_tokens)
                    ? d->compress(d->cfg, s, sl, query, &o)
                    : 1;
        if (r == 0 && o.b.oom)
            r = -12;
        if (r == 0 && (double)o.b.len > (1.0 - d->min_savings) * (double)sl)
            r = 4; /* not worth its marker */
        if (r == 0) {
            struct wrap_str *w = &ws[(*nws)++];
            *w = cand[x];
            hr_tbuf_put(&out->b, t + at, cand[x].raw_off - at);
            size_t from = 0;
            for (size_t h = 0; h < o.n_hash_off && h < 2 && r == 0; h++) {
                r = put_escaped(&out->b, o.b.p + from, o.hash_off[h] - from, ascii);
                w->hash_at[w->n_hash++] = out->b.len;
                from = o.hash_off[h];
            }
            if (r == 0)
                r = put_escaped(&out->b, o.b.p + from, o.b.len - from, ascii);
            at = cand[x].raw_off + cand[x].raw_len;
            w->total = o.total;
            w->omitted = o.omitted;
            out->total += o.total;
            out->omitted += o.omitted;
            if (r)
                rc = -22; /* not UTF-8: cannot be a JSON string */
        } else if (r < 0) {
            rc = r;
        }
        hr_text_out_free(&o);
        json_decref(v);
    }
    if (rc == 0 && !*nws)
        rc = 3; /* none of its strings is this compressor's, or none shrank */
    if (rc == 0)
        hr_tbuf_put(&out->b, t + at, n - at);
    if (rc == 0 && out->b.oom)
        rc = -12;
    if (rc)
        hr_text_out_free(out);
    return rc;
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
    struct wrap_str ws[WRAP_MAX];
    size_t nws;
};

/* A wrapped result as one byte string for the memo: rc, the strings, then the text. */
static void *pack_wrapped(int rc, const struct cand *c, size_t *len)
{
    uint64_t head[2] = {(uint64_t)(int64_t)rc, rc == 0 ? c->nws : 0};
    size_t sl = (size_t)head[1] * sizeof *c->ws, tl = rc == 0 ? c->out.b.len : 0;
    unsigned char *p = malloc(sizeof head + sl + tl + 1);
    if (!p)
        return NULL;
    memcpy(p, head, sizeof head);
    if (sl)
        memcpy(p + sizeof head, c->ws, sl);
    if (tl)
        memcpy(p + sizeof head + sl, c->out.b.p, tl);
    *len = sizeof head + sl + tl;
    return p;
}

static int unpack_wrapped(const unsigned char *p, size_t len, struct cand *c)
{
    uint64_t head[2];
    if (len < sizeof head)
        return -22;
    memcpy(head, p, sizeof head);
    if ((int64_t)head[0] != 0)
        return (int)(int64_t)head[0];
    size_t sl = (size_t)head[1] * sizeof *c->ws;
    if (head[1] > WRAP_MAX || len < sizeof head + sl)
        return -22;
    memset(&c->out, 0, sizeof c->out);
    c->nws = (size_t)head[1];
    memcpy(c->ws, p + sizeof head, sl);
    hr_tbuf_put(&c->out.b, p + sizeof head + sl, len - sizeof head - sl);
    if (c->out.b.oom) {
        hr_tbuf_free(&c->out.b);
        return -12;
    }
    for (size_t x = 0; x < c->nws; x++) {
        c->out.total += c->ws[x].total;
        c->out.omitted += c->ws[x].omitted;
    }
    return 0;
}

/* Each compressed string's text goes to CCR under its marker's hash. */
static int store_wrapped(const struct hr_text_driver *d, struct cand *c)
{
    for (size_t x = 0; x < c->nws; x++) {
        const struct wrap_str *w = &c->ws[x];
        json_t *v = decode_string(c->text, w->raw_off, w->raw_len);
        char hash[HR_CCR_HASH_LEN + 1];
        int rc = v ? d->host->ccr_put(json_string_value(v), json_string_length(v), hash) : HR_EINVAL;
        json_decref(v);
        if (rc != HR_OK)
            return -1;
        for (uint64_t h = 0; h < w->n_hash && h < 2; h++)
            if (w->hash_at[h] + HR_CCR_HASH_LEN <= c->out.b.len)
                memcpy(c->out.b.p + w->hash_at[h], hash, HR_CCR_HASH_LEN);
    }
    return 1;
}

struct job {
    const struct hr_text_driver *d;
    struct cand *c;
    const char *model;
    struct hr_request *req;     /* for unit_tokens_at_least (1.3) and ccr_put_unit (1.6) only */
};

static void run_one(void *ctx, size_t i)
{
    struct job *j = ctx;
    struct cand *c = &j->c[i];
    const struct hr_text_driver *d = j->d;
    size_t blen;
    unsigned char *blob = d->memo && c->key.len ? hr_memo_get(d->memo, &c->key, &blen) : NULL;
    c->rc = !blob ? -1 : c->wrapped ? unpack_wrapped(blob, blen, c) : unpack(blob, blen, &c->out);
    free(blob);
    if (!blob || c->rc < 0) {
        c->rc = c->wrapped ? wrap_compress(d, j->model, c->text, c->len, c->query, &c->out, c->ws, &c->nws)
                           : d->compress(d->cfg, c->text, c->len, c->query, &c->out);
        if (c->rc == 0 && c->out.b.oom) {
            hr_text_out_free(&c->out);
            c->rc = -12;
        }
        if (c->rc >= 0 && d->memo && c->key.len) {
            void *p = c->wrapped ? pack_wrapped(c->rc, c, &blen) : pack(c->rc, &c->out, &blen);
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
        c->keep = store_wrapped(d, c);
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
            (wrapped ? u->len < 2 * WRAP_MIN_BYTES ||
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
            /* a wrapped string's min_tokens is counted with the model's tokenizer */
            if (wrapped)
                salt = hr_mix64(salt ^ WRAP_SALT);
            for (const char *m = wrapped && req->model ? req->model : ""; *m; m++)
                salt = hr_mix64(salt ^ (unsigned char)*m);
            h->unit_hash(req, i, c[n].key.hash);
            c[n].key.len = u->len;
            c[n].key.salt = salt;
        }
        n++;
    }
    struct job job = {d, c, req->model, req};
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
