/* cache_aligner.c — the `cache_aligner` transform: keeps the provider-cached prefix
 * stable across turns (tool order, schema key order), reports volatile values in the
 * system prompt, tracks a per-session prefix hash, and can add one cache breakpoint.
 * Publishes headroom_waste_signal_tokens_total and headroom_cache_bust_total. */
#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <headroom/plugin.h>
#include "hash.h"
#include "json_get.h"

struct sess {
    char *id;
    uint64_t idh;
    uint64_t h_tools, h_system, h_msgs; /* h_msgs covers messages[0 .. floor) */
    size_t floor;
    struct sess *hnext;                 /* bucket chain */
    struct sess *prev, *next;           /* LRU list, most recent first */
};

enum { C_TOOLS_SORTED, C_SCHEMAS, C_CC_ADDED, C_CHANGES, C_CH_TOOLS, C_CH_SYSTEM, C_CH_MSGS,
       C_DATE_TOK, C_DATE_REQ, C_VOL_TOK, C_VOL_REQ, C_EVICTED, C__N };

/* The volatile-value counts of a system prompt already seen: an agent
 * resends the same prompt every turn, and finding its dates and ids is a
 * scan of every word (~0.7 M instructions for Claude Code's 7 kB). */
#define VOL_MEMO_SLOTS 256
struct vol_memo {
    uint64_t key;                       /* prompt texts and model; 0: empty */
    size_t len;
    size_t date_tokens, volatile_tokens;
};

struct aligner {
    const struct hr_host *host;
    struct hr_instance *self;
    int sort_tools, canonical_schemas, detect_volatile, track_prefix, add_cache_control;
    size_t max_sessions;
    pthread_mutex_t mu;                 /* guards the session table */
    struct sess **buckets;
    size_t n_buckets, n_sessions;
    struct sess lru;                    /* sentinel */
    atomic_ullong c[C__N];
    atomic_ullong bust[3];              /* prefix changes by enum hr_provider */
    pthread_mutex_t memo_mu;            /* guards memo */
    struct vol_memo memo[VOL_MEMO_SLOTS];
};

static const struct hr_conf_key ca_keys[] = {
    HR_CONF_KEY("sort_tools", HR_CONF_BOOL, "yes", "sort tool definitions by name (skipped when a tool carries cache_control)"),
    HR_CONF_KEY("canonical_schemas", HR_CONF_BOOL, "yes", "sort the keys of tool parameter / input_schema objects recursively (property order kept)"),
    HR_CONF_KEY("detect_volatile", HR_CONF_BOOL, "yes", "report dates, times, UUIDs and request ids in the system prompt"),
    HR_CONF_KEY("track_prefix", HR_CONF_BOOL, "yes", "keep a per-session hash of the stable prefix and report changes"),
    HR_CONF_KEY_RANGE("max_sessions", HR_CONF_INT, "10000", "sessions whose prefix hash is remembered (least recently used dropped)", 1, 10000000),
    HR_CONF_KEY("add_cache_control", HR_CONF_BOOL, "no", "Anthropic: add one cache_control breakpoint at the end of the stable prefix when the client set none"),
    HR_CONF_END,
};

/* ------------------------------------------------------------ hashing */

/* Chained over every piece (keys, strings, message by message), so order
 * counts. The messages hashed every turn are the whole conversation up to
 * the client's cache breakpoint (Claude Code's is its last message), so
 * this runs over most of each request's bytes: the shared four-lane content
 * hash (lib/hash.c), not a byte-at-a-time one. Values live only in this
 * process's memory. */
static uint64_t h_bytes(uint64_t h, const void *p, size_t n)
{
    uint64_t a, b;
    hr_hash128(p, n, &a, &b);
    return hr_mix64(h ^ a) + b;
}

/* The request's long tool outputs by text address: their content hash is
 * the host's unit hash (computed once per request, already for every unit
 * of 2 kB or more, for the count cache), so the bulk of a conversation is
 * not hashed a second time here. A text is a unit or not by its place in
 * the request alone, so each turn hashes it the same way. */
#define UNIT_HASH_MIN 2048
struct unit_text {
    const char *text;
    size_t index;
};
struct unit_texts {
    const struct hr_host *host;
    struct hr_request *req;
    size_t n;
    struct unit_text *v; /* sorted by address */
};

static int cmp_unit_text(const void *x, const void *y)
{
    uintptr_t a = (uintptr_t)((const struct unit_text *)x)->text, b = (uintptr_t)((const struct unit_text *)y)->text;
    return (a > b) - (a < b);
}

/* NULL-safe; ut->v NULL when the host has no unit_hash (before ABI 1.1) or
 * no memory: every string is then hashed here. */
static void unit_texts_init(struct unit_texts *ut, const struct hr_host *host, struct hr_request *req)
{
    *ut = (struct unit_texts){host, req, 0, NULL};
    if (!HR_HAS_FIELD(host, struct hr_host, unit_hash) || !host->unit_hash || !req->n_units)
        return;
    if (!(ut->v = malloc(req->n_units * sizeof *ut->v)))
        return;
    for (size_t i = 0; i < req->n_units; i++)
        if (req->units[i].len >= UNIT_HASH_MIN)
            ut->v[ut->n++] = (struct unit_text){req->units[i].text, i};
    qsort(ut->v, ut->n, sizeof *ut->v, cmp_unit_text);
}

static int unit_of(const struct unit_texts *ut, const char *text, size_t *index)
{
    if (!ut || !ut->n)
        return 0;
    struct unit_text key = {text, 0};
    const struct unit_text *f = bsearch(&key, ut->v, ut->n, sizeof *ut->v, cmp_unit_text);
    if (f)
        *index = f->index;
    return f != NULL;
}

/* Order-sensitive: providers cache bytes, so key order counts. */
static uint64_t h_json(uint64_t h, json_t *v, const struct unit_texts *ut)
{
    unsigned char t = (unsigned char)json_typeof(v);
    h = h_bytes(h, &t, 1);
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x) {
            /* A breakpoint is not content: Claude Code moves its marker to
             * the newest message every turn, and the prefix is unchanged. */
            if (!strcmp(k, "cache_control"))
                continue;
            h = h_bytes(h, k, strlen(k) + 1);
            h = h_json(h, x, ut);
        }
        break;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x)
            h = h_json(h, x, ut);
        h = h_bytes(h, "]", 1);
        break;
    }
    case JSON_STRING: {
        const char *text = json_string_value(v);
        size_t len = json_string_length(v), unit;
        if (len >= UNIT_HASH_MIN && unit_of(ut, text, &unit)) {
            uint64_t uh[2];
            ut->host->unit_hash(ut->req, unit, uh);
            h = hr_mix64(h ^ uh[0] ^ len) + uh[1];
        } else {
            h = h_bytes(h, text, len + 1);
        }
        break;
    }
    case JSON_INTEGER: {
        json_int_t i = json_integer_value(v);
        h = h_bytes(h, &i, sizeof i);
        break;
    }
    case JSON_REAL: {
        double d = json_real_value(v);
        h = h_bytes(h, &d, sizeof d);
        break;
    }
    default:
        break;
    }
    return h;
}

#define H0 1469598103934665603ULL

/* ------------------------------------------------------------ tools and schemas */

static const char *tool_name(json_t *tool)
{
    const char *n = json_string_value(hr_json_get(hr_json_get(tool, "function"), "name"));
    return n ? n : json_string_value(hr_json_get(tool, "name"));
}

struct tix { const char *name; size_t i; json_t *v; };

static int cmp_tix(const void *a, const void *b)
{
    const struct tix *x = a, *y = b;
    if (x->name && y->name) {
        int c = strcmp(x->name, y->name);
        if (c)
            return c;
    } else if (x->name != y->name) {
        return x->name ? -1 : 1; /* unnamed tools last */
    }
    return (x->i > y->i) - (x->i < y->i);
}

/* Every value this stage changes is replaced by a modified copy, never
 * edited in place (HR_TF_COPY_ON_WRITE): the host then keeps the client's
 * values by reference to undo a failure, instead of deep-copying the tool
 * definitions and system prompt before every request (~0.3 M instructions
 * for Claude Code's). */

/* The body's tools array as this request may edit it: the client's is
 * replaced by a shallow copy the first time. */
static json_t *own_tools(json_t *body, json_t **tools, int *owned)
{
    if (!*owned) {
        json_t *c = json_copy(*tools);
        if (!c || json_object_set_new(body, "tools", c))
            return NULL;
        *tools = c;
        *owned = 1;
    }
    return *tools;
}

/* 1 (body's tools now sorted by name, in a new array), 0, or -1. */
static int sort_tools(json_t *body, json_t **tools, int *owned)
{
    size_t n = json_array_size(*tools);
    if (n < 2)
        return 0;
    struct tix *v = malloc(n * sizeof *v);
    if (!v)
        return -1;
    int sorted = 1;
    for (size_t i = 0; i < n; i++) {
        json_t *t = json_array_get(*tools, i);
        if (hr_json_get(t, "cache_control")) {
            free(v);
            return 0; /* the client placed a breakpoint: its order is deliberate */
        }
        v[i] = (struct tix){tool_name(t), i, t};
        if (i && cmp_tix(&v[i - 1], &v[i]) > 0)
            sorted = 0;
    }
    if (!sorted) {
        qsort(v, n, sizeof *v, cmp_tix);
        json_t *s = json_array();
        for (size_t i = 0; s && i < n; i++)
            if (json_array_append(s, v[i].v))
                json_decref(s), s = NULL;
        if (!s || json_object_set_new(body, "tools", s)) {
            free(v);
            return -1;
        }
        *tools = s;
        *owned = 1;
    }
    free(v);
    return !sorted;
}

struct kv {
    const char *key;
    size_t len;
    json_t *val; /* reference held */
};

static int cmp_kv(const void *a, const void *b)
{
    return strcmp(((const struct kv *)a)->key, ((const struct kv *)b)->key);
}

static void kv_free(struct kv *e, size_t n)
{
    for (size_t i = 0; e && i < n; i++)
        json_decref(e[i].val);
    free(e);
}

/* Member `k` of the object being iterated, holding `val` (a reference). */
static struct kv kv_of(const char *k, json_t *val)
{
    return (struct kv){k, json_object_iter_key_len(json_object_key_to_iter(k)), val};
}

/* Room for v's n members, the first `upto` filled (key, its length, a
 * reference to the value). */
static struct kv *kv_new(json_t *v, size_t upto, size_t n)
{
    struct kv *e = malloc((n ? n : 1) * sizeof *e);
    size_t i = 0;
    const char *k;
    json_t *x;
    if (!e)
        return NULL;
    json_object_foreach(v, k, x) {
        if (i == upto)
            break;
        e[i++] = kv_of(k, json_incref(x));
    }
    return e;
}

/* v with object keys sorted bytewise at every depth: *out is a new value
 * when anything in v changes (values that do not are shared), else NULL.
 * Returns how many objects changed, or -1 out of memory. `names`: v is a
 * schema's "properties" map, whose key order is kept (its values, schemas,
 * are still made canonical): a model fills a tool's arguments, and strict
 * structured outputs generate them, in that order, so sorting it would put
 * a "final_answer" before the "reasoning" the client asked for first. */
static int canon(json_t *v, json_t **out, int names)
{
    int changed = 0, rc;
    json_t *x, *r;
    *out = NULL;
    if (json_is_array(v)) {
        size_t i;
        json_t *copy = NULL;
        json_array_foreach(v, i, x) {
            if ((rc = canon(x, &r, 0)) < 0 || (r && !copy && !(copy = json_copy(v)))) {
                json_decref(r);
                json_decref(copy);
                return -1;
            }
            changed += rc;
            if (r)
                json_array_set_new(copy, i, r);
        }
        *out = copy;
        return changed;
    }
    if (!json_is_object(v))
        return 0;
    /* e is only made once something changes: most objects already are
     * canonical, and cost a pass and no allocation. */
    size_t n = json_object_size(v), i = 0;
    struct kv *e = NULL;
    const char *k, *prev = NULL;
    int sorted = 1;
    json_object_foreach(v, k, x) {
        if ((rc = canon(x, &r, !names && !strcmp(k, "properties"))) < 0 || (r && !e && !(e = kv_new(v, i, n)))) {
            json_decref(r);
            kv_free(e, i);
            return -1;
        }
        changed += rc;
        if (e)
            e[i] = kv_of(k, r ? r : json_incref(x));
        i++;
        if (!names && prev && strcmp(prev, k) > 0)
            sorted = 0;
        prev = k;
    }
    if (sorted && !e)
        return changed;
    if (!e && !(e = kv_new(v, n, n)))
        return -1;
    if (!sorted)
        qsort(e, n, sizeof *e, cmp_kv);
    json_t *o = json_object();
    for (i = 0; o && i < n; i++) {
        if (json_object_setn_new_nocheck(o, e[i].key, e[i].len, e[i].val))
            json_decref(o), o = NULL;
        e[i].val = NULL; /* the object took it, or it is gone */
    }
    kv_free(e, n);
    if (!o)
        return -1;
    *out = o;
    return changed + !sorted;
}

/* Tool i, as a copy, with its schema at `key` (under "function" when fn)
 * replaced by s (taken). */
static int put_schema(json_t *tools, size_t i, int fn, const char *key, json_t *s)
{
    json_t *t = json_copy(json_array_get(tools, i));
    json_t *holder = !t ? NULL : fn ? json_copy(hr_json_get(t, "function")) : json_incref(t);
    int rc = holder ? json_object_set_new(holder, key, s) : (json_decref(s), -1);
    if (rc == 0 && fn)
        rc = json_object_set(t, "function", holder);
    json_decref(holder);
    if (rc) {
        json_decref(t);
        return -1;
    }
    return json_array_set_new(tools, i, t) ? -1 : 0;
}

/* How many schema objects had their keys sorted (0: tools untouched), or -1. */
static int canon_schemas(json_t *body, json_t **tools, int *owned)
{
    int changed = 0;
    for (size_t i = 0; i < json_array_size(*tools); i++) {
        for (int fn = 1; fn >= 0; fn--) {
            json_t *t = json_array_get(*tools, i);
            const char *key = fn ? "parameters" : "input_schema";
            json_t *s = hr_json_get(fn ? hr_json_get(t, "function") : t, key), *r;
            if (!s)
                continue;
            int rc = canon(s, &r, 0);
            if (rc < 0)
                return -1;
            if (!r)
                continue;
            if (!own_tools(body, tools, owned)) {
                json_decref(r);
                return -1;
            }
            if (put_schema(*tools, i, fn, key, r) < 0)
                return -1;
            changed += rc;
        }
    }
    return changed;
}

/* ------------------------------------------------------------ volatile values */

static int is_month(const char *s, size_t n)
{
    static const char *const m[] = {"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep",
                                    "oct", "nov", "dec", NULL};
    if (n < 3)
        return 0;
    for (const char *const *p = m; *p; p++) /* first letters before whole names: most words meet none */
        if (tolower((unsigned char)s[0]) == (*p)[0] && strncasecmp(s, *p, 3) == 0)
            return 1;
    return 0;
}

static int is_weekday(const char *s, size_t n)
{
    static const char *const d[] = {"monday", "tuesday", "wednesday", "thursday", "friday",
                                    "saturday", "sunday", NULL};
    if (n < 6 || n > 9)
        return 0; /* no weekday is shorter or longer */
    for (const char *const *p = d; *p; p++)
        if (tolower((unsigned char)s[0]) == (*p)[0] && n == strlen(*p) && strncasecmp(s, *p, n) == 0)
            return 1;
    return 0;
}

static int digits(const char *s, size_t n, size_t k)
{
    if (n < k)
        return 0;
    for (size_t i = 0; i < k; i++)
        if (!isdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

static int hexrun(const char *s, size_t n, size_t k)
{
    if (n < k)
        return 0;
    for (size_t i = 0; i < k; i++)
        if (!isxdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

/* Offset of the first date/time (kind 0) or id-like value (kind 1), or -1. */
static long first_volatile(const char *s, size_t n, int kind)
{
    for (size_t i = 0; i < n; i++) {
        if (i && isalnum((unsigned char)s[i - 1]))
            continue; /* only at a word start */
        const char *p = s + i;
        size_t r = n - i;
        if (kind == 0) {
            if (digits(p, r, 4) && r >= 10 && (p[4] == '-' || p[4] == '/') && digits(p + 5, r - 5, 2) &&
                p[7] == p[4] && digits(p + 8, r - 8, 2))
                return (long)i; /* 2025-01-31 */
            if (digits(p, r, 2) && r >= 10 && (p[2] == '/' || p[2] == '.') && digits(p + 3, r - 3, 2) &&
                p[5] == p[2] && digits(p + 6, r - 6, 4))
                return (long)i; /* 31/01/2025 */
            size_t d = 0;
            while (d < r && isdigit((unsigned char)p[d]))
                d++;
            if ((d == 1 || d == 2) && d + 3 <= r && p[d] == ':' && digits(p + d + 1, r - d - 1, 2))
                return (long)i; /* 9:30, 14:05:59 */
            if (d == 10 && p[0] == '1' && p[1] >= '5' && p[1] <= '9' && (d == r || !isalnum((unsigned char)p[d])))
                return (long)i; /* Unix time 2017..2033 */
            size_t w = 0;
            while (w < r && isalpha((unsigned char)p[w]))
                w++;
            if (w && is_weekday(p, w))
                return (long)i;
            if (w >= 3 && w <= 9 && is_month(p, w)) {
                size_t j = w;
                if (j < r && p[j] == '.')
                    j++;
                if (j < r && p[j] == ' ' && j + 1 < r && isdigit((unsigned char)p[j + 1]))
                    return (long)i; /* January 5, Jan 5 */
            }
        } else {
            if (hexrun(p, r, 8) && r >= 36 && p[8] == '-' && hexrun(p + 9, r - 9, 4) && p[13] == '-' &&
                hexrun(p + 14, r - 14, 4) && p[18] == '-' && hexrun(p + 19, r - 19, 4) && p[23] == '-' &&
                hexrun(p + 24, r - 24, 12))
                return (long)i; /* UUID */
            size_t w = 0, nd = 0, na = 0;
            while (w < r && (isalnum((unsigned char)p[w]) || p[w] == '_' || p[w] == '-')) {
                nd += isdigit((unsigned char)p[w]) != 0;
                na += isalpha((unsigned char)p[w]) != 0;
                w++;
            }
            if (w >= 16 && nd >= 4 && na >= 4)
                return (long)i; /* req_01HZX3..., 9f8e7d6c5b4a3f2e1d */
            if (w)
                i += w - 1;
        }
    }
    return -1;
}

/* System prompt texts, in prompt order. */
static size_t system_texts(json_t *body, const char **out, size_t *lens, size_t max)
{
    size_t n = 0;
    json_t *sys = hr_json_get(body, "system");
    if (json_is_string(sys) && n < max) {
        out[n] = json_string_value(sys);
        lens[n++] = json_string_length(sys);
    } else if (json_is_array(sys)) {
        size_t i;
        json_t *b;
        json_array_foreach(sys, i, b) {
            json_t *t = hr_json_get(b, "text");
            if (json_is_string(t) && n < max) {
                out[n] = json_string_value(t);
                lens[n++] = json_string_length(t);
            }
        }
    }
    size_t i;
    json_t *m;
    json_array_foreach(hr_json_get(body, "messages"), i, m) {
        const char *role = json_string_value(hr_json_get(m, "role"));
        if (!role || (strcmp(role, "system") && strcmp(role, "developer")))
            continue;
        json_t *c = hr_json_get(m, "content");
        if (json_is_string(c) && n < max) {
            out[n] = json_string_value(c);
            lens[n++] = json_string_length(c);
        } else if (json_is_array(c)) {
            size_t j;
            json_t *p;
            json_array_foreach(c, j, p) {
                json_t *t = hr_json_get(p, "text");
                if (json_is_string(t) && n < max) {
                    out[n] = json_string_value(t);
                    lens[n++] = json_string_length(t);
                }
            }
        }
    }
    return n;
}

/* Tokens from the first volatile value of `kind` to the end of the system prompt:
 * the part a provider cache cannot reuse once the value changes. 0 when none. */
static size_t volatile_tokens(const struct aligner *a, const char *model, const char **txt,
                              const size_t *lens, size_t n, int kind)
{
    size_t tokens = 0;
    int found = 0;
    for (size_t i = 0; i < n; i++) {
        if (found) {
            tokens += a->host->count_tokens(model, txt[i], lens[i]);
            continue;
        }
        long off = first_volatile(txt[i], lens[i], kind);
        if (off >= 0) {
            found = 1;
            size_t t = a->host->count_tokens(model, txt[i] + off, lens[i] - (size_t)off);
            tokens += t ? t : 1;
        }
    }
    return tokens;
}

/* Both counts of volatile_tokens, from the memo when this prompt (hash
 * `hs` of its texts, `total` bytes) was seen with this model. */
static void volatile_counts(struct aligner *a, const char *model, const char **txt, const size_t *lens, size_t n,
                            uint64_t hs, size_t total, size_t *dt, size_t *vt)
{
    uint64_t key = h_bytes(hs, model ? model : "", model ? strlen(model) : 0) | 1; /* never 0 */
    struct vol_memo *m = &a->memo[key % VOL_MEMO_SLOTS];
    pthread_mutex_lock(&a->memo_mu);
    int hit = m->key == key && m->len == total;
    if (hit) {
        *dt = m->date_tokens;
        *vt = m->volatile_tokens;
    }
    pthread_mutex_unlock(&a->memo_mu);
    if (hit)
        return;
    *dt = volatile_tokens(a, model, txt, lens, n, 0);
    *vt = volatile_tokens(a, model, txt, lens, n, 1);
    pthread_mutex_lock(&a->memo_mu);
    *m = (struct vol_memo){key, total, *dt, *vt};
    pthread_mutex_unlock(&a->memo_mu);
}

/* ------------------------------------------------------------ sessions */

static void lru_unlink(struct sess *s)
{
    s->prev->next = s->next;
    s->next->prev = s->prev;
}

static void lru_front(struct aligner *a, struct sess *s)
{
    s->next = a->lru.next;
    s->prev = &a->lru;
    a->lru.next->prev = s;
    a->lru.next = s;
}

static void sess_drop(struct aligner *a, struct sess *s)
{
    struct sess **pp = &a->buckets[s->idh % a->n_buckets];
    while (*pp && *pp != s)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = s->hnext;
    lru_unlink(s);
    free(s->id);
    free(s);
    a->n_sessions--;
}

/* Which parts changed since the session's previous request: bit 0 tools, 1 system,
 * 2 messages. Records the new state. Returns -1 on a new session. */
static int track(struct aligner *a, const char *sid, uint64_t ht, uint64_t hs, json_t *msgs,
                 size_t floor, const struct unit_texts *ut)
{
    uint64_t idh = h_bytes(H0, sid, strlen(sid));
    size_t nm = json_array_size(msgs);
    if (floor > nm)
        floor = nm;
    /* The protected messages hashed once, before the lock (it serves every
     * worker, and this is most of a long conversation's bytes): cum[i]
     * covers messages[0 .. i). */
    uint64_t *cum = malloc((floor + 1) * sizeof *cum);
    if (!cum)
        return -1;
    cum[0] = H0;
    for (size_t i = 0; i < floor; i++)
        cum[i + 1] = h_json(cum[i], json_array_get(msgs, i), ut);
    uint64_t h = cum[floor];
    pthread_mutex_lock(&a->mu);
    struct sess *s = a->buckets[idh % a->n_buckets];
    while (s && (s->idh != idh || strcmp(s->id, sid)))
        s = s->hnext;
    int changed = -1;
    size_t old_floor = s ? s->floor : 0;
    uint64_t h_at_old = old_floor <= floor ? cum[old_floor] : H0;
    free(cum);
    if (s) {
        changed = 0;
        if (s->h_tools != ht)
            changed |= 1;
        if (s->h_system != hs)
            changed |= 2;
        if (old_floor <= floor && h_at_old != s->h_msgs)
            changed |= 4;
        lru_unlink(s);
    } else {
        s = calloc(1, sizeof *s);
        if (s && !(s->id = strdup(sid))) {
            free(s);
            s = NULL;
        }
        if (!s) {
            pthread_mutex_unlock(&a->mu);
            return -1;
        }
        s->idh = idh;
        s->hnext = a->buckets[idh % a->n_buckets];
        a->buckets[idh % a->n_buckets] = s;
        a->n_sessions++;
        while (a->n_sessions > a->max_sessions && a->lru.prev != &a->lru) {
            sess_drop(a, a->lru.prev);
            atomic_fetch_add(&a->c[C_EVICTED], 1);
        }
    }
    lru_front(a, s);
    s->h_tools = ht;
    s->h_system = hs;
    s->h_msgs = h;
    s->floor = floor;
    pthread_mutex_unlock(&a->mu);
    return changed;
}

/* ------------------------------------------------------------ cache_control */

static int has_cache_control(json_t *v)
{
    if (json_is_object(v)) {
        if (hr_json_get(v, "cache_control"))
            return 1;
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x)
            if ((json_is_array(x) || json_is_object(x)) && strcmp(k, "input_schema") && has_cache_control(x))
                return 1;
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x)
            if (has_cache_control(x))
                return 1;
    }
    return 0;
}

/* body[key] replaced by a copy of `arr` whose last element is a copy with
 * cache_control set to cc (taken). */
static int mark_last(json_t *body, const char *key, json_t *arr, json_t *cc)
{
    size_t n = json_array_size(arr);
    json_t *a2 = json_copy(arr), *last = json_copy(json_array_get(arr, n - 1));
    if (!a2 || !last) {
        json_decref(a2);
        json_decref(last);
        json_decref(cc);
        return -1;
    }
    if (json_object_set_new(last, "cache_control", cc) || json_array_set_new(a2, n - 1, json_incref(last)) ||
        json_object_set(body, key, a2)) {
        json_decref(last);
        json_decref(a2);
        return -1;
    }
    json_decref(last);
    json_decref(a2);
    return 1;
}

static int add_breakpoint(json_t *body)
{
    if (has_cache_control(hr_json_get(body, "tools")) ||
        has_cache_control(hr_json_get(body, "system")) ||
        has_cache_control(hr_json_get(body, "messages")))
        return 0;
    json_t *cc = json_pack("{s:s}", "type", "ephemeral");
    if (!cc)
        return -1;
    json_t *sys = hr_json_get(body, "system");
    if (json_is_string(sys) && json_string_length(sys) > 0) {
        json_t *blocks = json_pack("[{s:s,s:O,s:o}]", "type", "text", "text", sys, "cache_control", cc);
        return blocks && json_object_set_new(body, "system", blocks) == 0 ? 1 : -1;
    }
    if (json_is_object(json_array_get(sys, json_array_size(sys) - 1)))
        return mark_last(body, "system", sys, cc);
    json_t *tools = hr_json_get(body, "tools");
    if (json_is_object(json_array_get(tools, json_array_size(tools) - 1)))
        return mark_last(body, "tools", tools, cc);
    json_decref(cc);
    return 0;
}

/* ------------------------------------------------------------ plugin */

static json_t *ca_stats(void *state)
{
    struct aligner *a = state;
#define C(i) ((json_int_t)atomic_load(&a->c[i]))
    pthread_mutex_lock(&a->mu);
    json_int_t sessions = (json_int_t)a->n_sessions;
    pthread_mutex_unlock(&a->mu);
    json_int_t bust_openai = (json_int_t)atomic_load(&a->bust[HR_PROVIDER_OPENAI]);
    json_int_t bust_anthropic = (json_int_t)atomic_load(&a->bust[HR_PROVIDER_ANTHROPIC]);
    return json_pack("{s:{s:{s:I,s:I},s:{s:I,s:I}},s:I,s:{s:I,s:I,s:I},s:{s:I,s:I},s:I,s:I,s:I,s:I,s:I}",
                     "waste_signals", "dynamic_date", "tokens", C(C_DATE_TOK), "requests", C(C_DATE_REQ),
                     "volatile", "tokens", C(C_VOL_TOK), "requests", C(C_VOL_REQ),
                     "prefix_changes", C(C_CHANGES), "prefix_changes_by_part", "tools", C(C_CH_TOOLS),
                     "system", C(C_CH_SYSTEM), "messages", C(C_CH_MSGS), "prefix_changes_by_provider",
                     "openai", bust_openai, "anthropic", bust_anthropic, "tools_sorted", C(C_TOOLS_SORTED),
                     "schemas_canonicalised", C(C_SCHEMAS), "cache_control_added", C(C_CC_ADDED),
                     "sessions", sessions, "sessions_evicted", C(C_EVICTED));
#undef C
}

/* Prometheus families (register_metrics): the waste-signal tokens and the
 * prefix changes per provider, since start. */
static int ca_metrics(void *state, hr_metric_visit_fn visit, void *ud)
{
    struct aligner *a = state;
    static const char *const signal_label[] = {"signal"}, *const provider_label[] = {"provider"};
    const char *v[1];
    struct hr_metric_sample smp = {.struct_size = sizeof smp, .label_values = v};
    if (a->detect_volatile) {
        struct hr_metric_family fam = {sizeof fam, "headroom_waste_signal_tokens_total",
                                       "System-prompt tokens a provider cache cannot reuse because of a volatile value "
                                       "(from the first date/time or id to the end of the system prompt)",
                                       HR_METRIC_COUNTER, 1, signal_label};
        v[0] = "dynamic_date";
        smp.value = (double)atomic_load(&a->c[C_DATE_TOK]);
        visit(ud, &fam, &smp);
        v[0] = "volatile";
        smp.value = (double)atomic_load(&a->c[C_VOL_TOK]);
        visit(ud, &fam, &smp);
    }
    if (a->track_prefix) {
        struct hr_metric_family fam = {sizeof fam, "headroom_cache_bust_total",
                                       "Requests whose stable prefix (tools, system prompt, cached messages) changed "
                                       "since the session's previous request, busting the provider prompt cache",
                                       HR_METRIC_COUNTER, 1, provider_label};
        v[0] = "openai";
        smp.value = (double)atomic_load(&a->bust[HR_PROVIDER_OPENAI]);
        visit(ud, &fam, &smp);
        v[0] = "anthropic";
        smp.value = (double)atomic_load(&a->bust[HR_PROVIDER_ANTHROPIC]);
        visit(ud, &fam, &smp);
    }
    return 0;
}

static int ca_init(const struct hr_host *host, struct hr_instance *self, const struct hr_conf *conf,
                   void **state)
{
    long long ms = host->conf_int(conf, "max_sessions");
    if (ms < 1 || ms > 10000000) {
        host->log(self, HR_LOG_ERROR, "bad config: max_sessions must be 1..10000000 (got %lld)", ms);
        return HR_EINVAL;
    }
    struct aligner *a = calloc(1, sizeof *a);
    if (!a)
        return HR_ENOMEM;
    a->host = host;
    a->self = self;
    a->sort_tools = host->conf_bool(conf, "sort_tools");
    a->canonical_schemas = host->conf_bool(conf, "canonical_schemas");
    a->detect_volatile = host->conf_bool(conf, "detect_volatile");
    a->track_prefix = host->conf_bool(conf, "track_prefix");
    a->add_cache_control = host->conf_bool(conf, "add_cache_control");
    a->max_sessions = (size_t)ms;
    a->n_buckets = a->max_sessions < 1024 ? 1024 : a->max_sessions;
    a->buckets = calloc(a->n_buckets, sizeof *a->buckets);
    /* Adaptive: every request thread takes these for a lookup; spinning a
     * moment beats sleeping on a futex when two meet. */
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP);
    int mu_rc = a->buckets ? pthread_mutex_init(&a->mu, &ma) : -1;
    int memo_rc = mu_rc ? -1 : pthread_mutex_init(&a->memo_mu, &ma);
    pthread_mutexattr_destroy(&ma);
    if (mu_rc || memo_rc) {
        if (!mu_rc) pthread_mutex_destroy(&a->mu);
        free(a->buckets);
        free(a);
        return HR_ENOMEM;
    }
    a->lru.next = a->lru.prev = &a->lru;
    for (int i = 0; i < C__N; i++)
        atomic_init(&a->c[i], 0);
    for (int i = 0; i < 3; i++)
        atomic_init(&a->bust[i], 0);
    int rc = host->register_stats(self, "cache_aligner", ca_stats, a);
    /* An older host without register_metrics still gets the /stats block. */
    if (rc == HR_OK && (a->detect_volatile || a->track_prefix) &&
        HR_HAS_FIELD(host, struct hr_host, register_metrics) && host->register_metrics)
        rc = host->register_metrics(self, ca_metrics, a);
    if (rc != HR_OK) {
        pthread_mutex_destroy(&a->memo_mu);
        pthread_mutex_destroy(&a->mu);
        free(a->buckets);
        free(a);
        return rc;
    }
    *state = a;
    return HR_OK;
}

static void ca_fini(void *state)
{
    struct aligner *a = state;
    while (a->lru.next != &a->lru)
        sess_drop(a, a->lru.next);
    pthread_mutex_destroy(&a->memo_mu);
    pthread_mutex_destroy(&a->mu);
    free(a->buckets);
    free(a);
}

/* Only Anthropic Messages takes cache_control breakpoints (hosts before
 * ABI 1.2 do not say the wire format: their only Anthropic API was it). */
static int takes_cache_control(const struct hr_request *req)
{
    if (HR_HAS_FIELD(req, struct hr_request, wire_format)) return req->wire_format == HR_WIRE_ANTHROPIC_MESSAGES;
    return req->provider == HR_PROVIDER_ANTHROPIC;
}

/* The conversation array: `input` in the Responses API, else `messages`. */
static const char *conversation_key(const struct hr_request *req)
{
    return HR_HAS_FIELD(req, struct hr_request, wire_format) && req->wire_format == HR_WIRE_OPENAI_RESPONSES
               ? "input"
               : "messages";
}

static int ca_apply(void *state, struct hr_request *req)
{
    struct aligner *a = state;
    json_t *body = req->body;
    json_t *tools = hr_json_get(body, "tools");
    char tag[256];
    size_t tl = (size_t)snprintf(tag, sizeof tag, "cache_aligner:");
#define TAG(...) do { int w_ = snprintf(tag + tl, sizeof tag - tl, __VA_ARGS__); \
        if (w_ > 0 && (size_t)w_ < sizeof tag - tl) tl += (size_t)w_; } while (0)
    size_t tl0 = tl;

    int owned = 0; /* tools is our copy, not the client's array */
    if (a->sort_tools && json_is_array(tools)) {
        int rc = sort_tools(body, &tools, &owned);
        if (rc < 0)
            return HR_ENOMEM;
        if (rc) {
            req->body_edited = 1;
            atomic_fetch_add(&a->c[C_TOOLS_SORTED], 1);
            TAG("%stools_sorted", tl > tl0 ? "," : "");
        }
    }
    if (a->canonical_schemas && json_is_array(tools)) {
        int n = canon_schemas(body, &tools, &owned);
        if (n < 0)
            return HR_ENOMEM;
        if (n) {
            req->body_edited = 1;
            atomic_fetch_add(&a->c[C_SCHEMAS], 1);
            TAG("%sschema_keys=%d", tl > tl0 ? "," : "", n);
        }
    }
    const char *txt[64];
    size_t lens[64];
    size_t nt = system_texts(body, txt, lens, 64);
    /* the prompt's hash serves the volatile memo and the prefix tracking */
    uint64_t hs = H0;
    size_t total = 0;
    for (size_t i = 0; (a->detect_volatile || a->track_prefix) && i < nt; i++) {
        hs = h_bytes(hs, txt[i], lens[i] + 1);
        total += lens[i];
    }
    if (a->detect_volatile && nt) {
        size_t dt, vt;
        volatile_counts(a, req->model, txt, lens, nt, hs, total, &dt, &vt);
        if (dt) {
            atomic_fetch_add(&a->c[C_DATE_TOK], dt);
            atomic_fetch_add(&a->c[C_DATE_REQ], 1);
            TAG("%sdynamic_date=%zu", tl > tl0 ? "," : "", dt);
        }
        if (vt) {
            atomic_fetch_add(&a->c[C_VOL_TOK], vt);
            atomic_fetch_add(&a->c[C_VOL_REQ], 1);
            TAG("%svolatile=%zu", tl > tl0 ? "," : "", vt);
        }
    }
    if (a->track_prefix && req->session_id && *req->session_id) {
        struct unit_texts ut;
        unit_texts_init(&ut, a->host, req);
        uint64_t ht = tools ? h_json(H0, tools, NULL) : H0;
        json_t *msgs = hr_json_get(body, conversation_key(req));
        int ch = track(a, req->session_id, ht, hs, msgs, req->protected_floor, &ut);
        free(ut.v);
        if (ch > 0) {
            atomic_fetch_add(&a->c[C_CHANGES], 1);
            if (req->provider == HR_PROVIDER_OPENAI || req->provider == HR_PROVIDER_ANTHROPIC)
                atomic_fetch_add(&a->bust[req->provider], 1);
            if (ch & 1)
                atomic_fetch_add(&a->c[C_CH_TOOLS], 1);
            if (ch & 2)
                atomic_fetch_add(&a->c[C_CH_SYSTEM], 1);
            if (ch & 4)
                atomic_fetch_add(&a->c[C_CH_MSGS], 1);
            a->host->log(a->self, HR_LOG_INFO, "stable prefix changed for session %s:%s%s%s (provider cache busted)",
                         req->session_id, ch & 1 ? " tools" : "", ch & 2 ? " system" : "",
                         ch & 4 ? " cached messages" : "");
            TAG("%sprefix_changed", tl > tl0 ? "," : "");
        }
    }
    if (a->add_cache_control && takes_cache_control(req)) {
        int rc = add_breakpoint(body);
        if (rc < 0)
            return HR_ENOMEM;
        if (rc) {
            req->body_edited = 1;
            atomic_fetch_add(&a->c[C_CC_ADDED], 1);
            TAG("%scache_control", tl > tl0 ? "," : "");
        }
    }
#undef TAG
    if (tl > tl0)
        a->host->stage_tag(req, tag);
    return HR_OK;
}

/* POST /stats/reset: every counter (the sessions it remembers stay). */
static void ca_reset(void *state)
{
    struct aligner *a = state;
    for (size_t i = 0; i < C__N; i++)
        atomic_store(&a->c[i], 0);
    for (size_t i = 0; i < sizeof a->bust / sizeof *a->bust; i++)
        atomic_store(&a->bust[i], 0);
}

HR_PLUGIN_EXPORT const struct headroom_plugin headroom_plugin = {
    HR_PLUGIN_HEADER,
    .name = "cache_aligner",
    .kind = HR_PLUGIN_TRANSFORM,
    .version = "1.0.0",
    .description = "keeps the provider-cached prefix stable: tool order, schema key order, volatile values, prefix changes",
    .conf_keys = ca_keys,
    .init = ca_init,
    .fini = ca_fini,
    .apply = ca_apply,
    .transform_flags = HR_TF_COUNTS_ON_DEMAND | HR_TF_COPY_ON_WRITE,
    .content_types = 0,
    .reset = ca_reset,
};
