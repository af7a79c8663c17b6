/* json_load.c — build a jansson tree from text the shared scanner has
 * already validated. jansson's own parser appends string bytes one at a
 * time (~110 MB/s); here a string without escapes is one memcpy, so a 1 MB
 * agent request parses in about a millisecond. No validation happens in
 * this file: hr_json_scan_decode has accepted the text exactly as jansson
 * would, decoding the value strings that hold escapes on the way, but for
 * integers beyond int64 (valid JSON, which jansson refuses as "too big
 * integer"): such an integer is a real here, written back as the client
 * spelled it (the spelling table), so headroomd forwards what a provider
 * may well accept instead of refusing it. */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include "json_load.h"
#include "json_pool.h"
#include "json_scan.h"

struct spellings;

struct builder {
    const char *p, *end;
    char *scratch; /* decoded strings that carried escapes */
    size_t cap;
    int failed;
    int reject_dups;
    char *dup_key;  /* the first key seen twice in one object (reject_dups) */
    const struct hr_json_decoded *dec; /* value strings the scan decoded, in order */
    size_t next_dec;
    struct spellings *sp; /* the numbers written otherwise than the dumper would: made on the first */
};

static void skip_ws(struct builder *b)
{
    while (b->p < b->end && (*b->p == ' ' || *b->p == '\n' || *b->p == '\r' || *b->p == '\t')) b->p++;
}

/* The string at b->p (its opening quote): decoded text and length; b->p
 * moves past the closing quote. One pass finds the end and decodes (a tool
 * output sent as a JSON string escapes every quote it holds). */
static const char *read_string(struct builder *b, size_t *len)
{
    const char *s = b->p + 1;
    size_t raw;
    const char *text = hr_json_read_string(s, (size_t)(b->end - s), &b->scratch, &b->cap, &raw, len);
    b->p = s + raw + 1;
    if (!text) {
        b->failed = 1;
        *len = 0;
        return "";
    }
    return text;
}

static json_t *value(struct builder *b);

/* A client's spelling of its numbers. jansson keeps a number's value, and
 * hr_json_dump_compact writes a real in its shortest form (2899c67), so a
 * Python client's 1e-05 would go upstream as 1e-5, 2.50 as 2.5 and -0 as
 * 0: the same values, other bytes, and a provider's prompt cache compares
 * bytes. The loader keeps the text of each number whose shortest form may
 * differ in a table of the tree's own (most bodies have none, and then no
 * table), and the dumper writes that text while the node still holds the
 * value it was read with (a stage that changes it gets the shortest form).
 *
 * The table holds a reference to each such node and to the root: a node
 * it names is never freed while it exists, so no other number can come to
 * live at that address, and what is written is a function of the tree
 * alone, whatever else is in flight. It is freed once the tree is (its
 * root's last other reference gone), at the next load or sweep on the
 * thread that loaded it.
 *
 * The tables are the loading thread's own (no lock, nothing shared between
 * workers: a request lives on one thread from accept to last byte, and its
 * body is loaded and written there); a tree written on another thread is
 * written in shortest form. */
struct spelling {
    const json_t *node; /* a reference; NULL: an empty slot */
    uint64_t bits;      /* the value read: a double's bits, or the integer */
    uint32_t off, len;  /* the text, in text[] */
};

struct spellings {
    struct spellings *next; /* the live tables */
    json_t *root;           /* a reference, once the tree is whole */
    struct spelling *slot;  /* open addressing by node; cap a power of 2 */
    size_t n, cap;
    char *text;
    size_t text_n, text_cap;
};

static _Thread_local struct spellings *live;
static _Thread_local size_t n_live; /* 0 costs a load and a dump nothing */

static size_t slot_of(const json_t *node, size_t cap)
{
    uint64_t x = (uint64_t)(uintptr_t)node;
    x ^= x >> 17;
    x *= 0x9E3779B97F4A7C15ull;
    return (size_t)(x >> 32) & (cap - 1);
}

static uint64_t bits_of(const json_t *v)
{
    uint64_t bits;
    if (json_is_integer(v)) return (uint64_t)json_integer_value(v);
    double d = json_real_value(v);
    memcpy(&bits, &d, sizeof bits);
    return bits;
}

static void spellings_free(struct spellings *sp)
{
    if (!sp) return;
    json_decref(sp->root);
    for (size_t i = 0; i < sp->cap; i++) json_decref((json_t *)sp->slot[i].node);
    free(sp->slot);
    free(sp->text);
    free(sp);
}

/* node (holding the value it was read with) written as text: 0, or -1
 * when out of memory (the node is then written in its shortest form). */
static int spellings_add(struct spellings *sp, const json_t *node, const char *text, size_t len)
{
    if (len > UINT32_MAX || sp->text_n > UINT32_MAX - len) return -1;
    if ((sp->n + 1) * 2 > sp->cap) {
        size_t cap = sp->cap ? sp->cap * 2 : 16;
        struct spelling *slot = calloc(cap, sizeof *slot);
        if (!slot) return -1;
        for (size_t i = 0; i < sp->cap; i++) {
            if (!sp->slot[i].node) continue;
            size_t j = slot_of(sp->slot[i].node, cap);
            while (slot[j].node) j = (j + 1) & (cap - 1);
            slot[j] = sp->slot[i];
        }
        free(sp->slot);
        sp->slot = slot;
        sp->cap = cap;
    }
    if (sp->text_cap - sp->text_n < len) {
        size_t cap = sp->text_cap * 2 > sp->text_n + len ? sp->text_cap * 2 : sp->text_n + len + 64;
        char *t = realloc(sp->text, cap);
        if (!t) return -1;
        sp->text = t;
        sp->text_cap = cap;
    }
    size_t j = slot_of(node, sp->cap);
    while (sp->slot[j].node) {
        if (sp->slot[j].node == node) return 0; /* a node seen twice (shared) */
        j = (j + 1) & (sp->cap - 1);
    }
    memcpy(sp->text + sp->text_n, text, len);
    sp->slot[j] = (struct spelling){json_incref((json_t *)node), bits_of(node), (uint32_t)sp->text_n, (uint32_t)len};
    sp->text_n += len;
    sp->n++;
    return 0;
}

static const struct spelling *spellings_find(const struct spellings *sp, const json_t *node)
{
    if (!sp->cap) return NULL;
    for (size_t j = slot_of(node, sp->cap); sp->slot[j].node; j = (j + 1) & (sp->cap - 1))
        if (sp->slot[j].node == node) return &sp->slot[j];
    return NULL;
}

/* This thread's tables whose tree is gone (only the table's reference to
 * the root is left: no one else can reach it to take another) are freed. */
void hr_json_spellings_sweep(void)
{
    if (!n_live) return;
    for (struct spellings **pp = &live; *pp;) {
        struct spellings *sp = *pp;
        if (__atomic_load_n(&sp->root->refcount, __ATOMIC_ACQUIRE) == 1) {
            *pp = sp->next;
            n_live--;
            spellings_free(sp);
        } else {
            pp = &sp->next;
        }
    }
}

/* A thread that ends lets go of its tables (their trees, if any still
 * live, are then written shortest): nothing is left only its TLS reached. */
static pthread_key_t tables_key;
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;
static int tables_keyed;

static void tables_end(void *unused)
{
    (void)unused;
    while (live) {
        struct spellings *sp = live;
        live = sp->next;
        spellings_free(sp);
    }
    n_live = 0;
}

static void tables_key_init(void) { tables_keyed = pthread_key_create(&tables_key, tables_end) == 0; }

/* As decoded_unload below: no destructor left behind by an unloaded library. */
__attribute__((destructor)) static void tables_unload(void)
{
    if (tables_keyed) pthread_key_delete(tables_key);
}

static void spellings_publish(struct spellings *sp, json_t *root)
{
    if (!live) { /* the thread's first: its end frees what is left */
        pthread_once(&tables_once, tables_key_init);
        if (tables_keyed) pthread_setspecific(tables_key, &tables_key);
    }
    sp->root = json_incref(root);
    sp->next = live;
    live = sp;
    n_live++;
}

int hr_json_spellings_live(void) { return n_live != 0; }

const char *hr_json_spelling(const json_t *number, size_t *len)
{
    for (const struct spellings *sp = live; sp; sp = sp->next) {
        const struct spelling *s = spellings_find(sp, number);
        if (!s) continue;
        if (s->bits != bits_of(number)) return NULL; /* changed since it was read */
        *len = s->len;
        return sp->text + s->off;
    }
    return NULL;
}

static void copy_spellings(const json_t *from, const json_t *to, int depth)
{
    if (depth > 4096 || !to || from == to || json_typeof(from) != json_typeof(to)) return;
    switch (json_typeof(from)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)from, k, v) copy_spellings(v, json_object_get(to, k), depth + 1);
        return;
    }
    case JSON_ARRAY:
        for (size_t i = 0; i < json_array_size(from); i++)
            copy_spellings(json_array_get(from, i), json_array_get(to, i), depth + 1);
        return;
    case JSON_REAL:
    case JSON_INTEGER:
        for (struct spellings *sp = live; sp; sp = sp->next) {
            const struct spelling *s = spellings_find(sp, from);
            if (!s) continue;
            if (s->bits == bits_of(from) && bits_of(to) == s->bits) {
                /* copied out first: the add may move the text and the slots */
                uint32_t len = s->len;
                char small[64], *t = len <= sizeof small ? small : malloc(len);
                if (!t) return;
                memcpy(t, sp->text + s->off, len);
                spellings_add(sp, to, t, len); /* out of memory: the copy is written shortest */
                if (t != small) free(t);
            }
            return;
        }
        return;
    default: return;
    }
}

void hr_json_spellings_copied(const json_t *from, const json_t *to)
{
    if (!n_live || !from || !to) return;
    copy_spellings(from, to, 0);
}

/* Could the dumper write this number otherwise? Its shortest form is
 * jansson's %.15g (else 16, 17 digits) with ".0" on integral values and an
 * exponent without '+' or leading zeros, so a text without an exponent, of
 * at most 15 significant digits, no trailing zero after the first decimal
 * and a magnitude where %g writes no exponent (1e-4 up to 1e15) is written
 * as it came; anything else may not be (1e-05, 1E5, 2.50, 0.00001,
 * 0.10000000000000001), and is kept. (Of integers only -0, written 0.) */
static int spelled_otherwise(const char *s, size_t n, double d, int exponent)
{
    double a = fabs(d);
    if (exponent || (a != 0 && (a < 1e-4 || a >= 1e15))) return 1;
    /* no exponent: a real has a '.' and ends in a decimal */
    if (s[n - 1] == '0' && s[n - 2] != '.') return 1;
    if (n <= 16) return 0; /* 15 digits at most */
    size_t sig = 0;
    int lead = 1;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned)(s[i] - '0') >= 10) continue;
        lead &= s[i] == '0';
        sig += !lead;
    }
    return sig >= 16;
}

static void note_spelling(struct builder *b, const json_t *v, const char *s, size_t n)
{
    if (!b->sp && !(b->sp = calloc(1, sizeof *b->sp))) return;
    spellings_add(b->sp, v, s, n); /* out of memory: the shortest form (the same value) */
}

static json_t *object(struct builder *b)
{
    json_t *o = json_object();
    b->p++;
    skip_ws(b);
    if (*b->p == '}') {
        b->p++;
        return o;
    }
    while (o && !b->failed) {
        size_t klen;
        const char *k = read_string(b, &klen);
        /* The key may live in scratch, which the value can reuse: copy it. */
        char small[64], *key = klen < sizeof small ? small : malloc(klen + 1);
        if (!key) break;
        memcpy(key, k, klen);
        key[klen] = '\0';
        skip_ws(b);
        b->p++; /* ':' */
        skip_ws(b);
        json_t *v = value(b);
        size_t before = json_object_size(o);
        int bad = !v || json_object_setn_new_nocheck(o, key, klen, v);
        if (!bad && b->reject_dups && json_object_size(o) == before) { /* replaced: a duplicate */
            if (!b->dup_key) b->dup_key = strndup(key, klen);
            bad = 1;
        }
        if (key != small) free(key);
        if (bad) break;
        skip_ws(b);
        if (*b->p++ == '}') return o;
        skip_ws(b); /* after ',' */
    }
    json_decref(o);
    b->failed = 1;
    return NULL;
}

static json_t *array(struct builder *b)
{
    json_t *a = json_array();
    b->p++;
    skip_ws(b);
    if (*b->p == ']') {
        b->p++;
        return a;
    }
    while (a && !b->failed) {
        json_t *v = value(b);
        if (!v || json_array_append_new(a, v)) break;
        skip_ws(b);
        if (*b->p++ == ']') return a;
        skip_ws(b);
    }
    json_decref(a);
    b->failed = 1;
    return NULL;
}

/* A word or a number: jansson's lexer puts the byte after it back, and a
 * NUL put back is lost ("[1\0]" is [1]); the scanner accepts the same. */
static json_t *token(struct builder *b, const char *end_of_token, json_t *v)
{
    b->p = end_of_token;
    if (b->p < b->end && *b->p == 0) b->p++;
    return v;
}

static json_t *value(struct builder *b)
{
    size_t len;
    const char *s;
    switch (*b->p) {
    case '{': return object(b);
    case '[': return array(b);
    case '"':
        if (b->next_dec < b->dec->n && b->dec->v[b->next_dec].at == b->p + 1) { /* decoded by the scan */
            const struct hr_json_decoded_string *d = &b->dec->v[b->next_dec++];
            b->p += d->raw_len + 2;
            return json_stringn_nocheck(b->dec->buf + d->off, d->len);
        }
        s = read_string(b, &len);
        return b->failed ? NULL : json_stringn_nocheck(s, len);
    case 't': return token(b, b->p + 4, json_true());
    case 'f': return token(b, b->p + 5, json_false());
    case 'n': return token(b, b->p + 4, json_null());
    default: {
        const char *n = b->p, *e = n;
        int exponent = 0;
        for (; e < b->end; e++) {
            unsigned c = (unsigned char)*e;
            if (c - '0' < 10 || c == '.' || c == '-' || c == '+') continue;
            if ((c | 0x20) != 'e') break;
            exponent = 1;
        }
        int64_t iv;
        double dv;
        size_t len = (size_t)(e - n);
        json_t *v;
        if (hr_json_number(n, len, &iv, &dv)) {
            v = json_integer((json_int_t)iv);
            if (!iv && *n == '-' && v) note_spelling(b, v, n, len); /* -0, which is written 0 */
        } else {
            v = json_real(dv);
            if (v && spelled_otherwise(n, len, dv, exponent)) note_spelling(b, v, n, len);
        }
        return token(b, e, v);
    }
    }
}

/* The value strings the scan decodes (a tool output sent as a JSON string
 * escapes every quote it holds, one every few bytes), so the builder copies
 * them instead of finding every escape a second time. Kept per thread,
 * buffers and all, up to KEEP_DECODED bytes. */
#define KEEP_DECODED (4u << 20)
static _Thread_local struct hr_json_decoded *decoded; /* freed when the thread ends */
static pthread_key_t decoded_key;
static pthread_once_t decoded_once = PTHREAD_ONCE_INIT;

static void decoded_free(void *p)
{
    struct hr_json_decoded *d = p;
    free(d->buf);
    free(d->v);
    free(d);
}

static int decoded_keyed; /* the key exists */

static void decoded_key_init(void) { decoded_keyed = pthread_key_create(&decoded_key, decoded_free) == 0; }

/* A library unloaded (libheadroom.so under dlclose) leaves no destructor
 * behind for the threads that end after it. */
__attribute__((destructor)) static void decoded_unload(void)
{
    if (decoded_keyed) pthread_key_delete(decoded_key);
}

static struct hr_json_decoded *decoded_get(void)
{
    if (decoded) return decoded;
    pthread_once(&decoded_once, decoded_key_init);
    if (!decoded_keyed) return NULL;
    decoded = calloc(1, sizeof *decoded);
    if (decoded && pthread_setspecific(decoded_key, decoded)) {
        free(decoded);
        decoded = NULL;
    }
    return decoded;
}

static void decoded_trim(struct hr_json_decoded *d)
{
    if (d->cap + d->cap_v * sizeof *d->v <= KEEP_DECODED) return;
    free(d->buf);
    free(d->v);
    memset(d, 0, sizeof *d);
}

static json_t *load(const char *text, size_t len, json_error_t *err, int reject_dups)
{
    size_t flags = reject_dups ? JSON_REJECT_DUPLICATES : 0;
    hr_json_spellings_sweep(); /* before the pool starts: a freed tree's block can start over */
    struct hr_json_decoded none = {0}, *dec = decoded_get();
    if (!dec) dec = &none; /* no memory: every string decoded by the builder */
    else if (hr_json_scan_decode(text, len, HR_JSON_BIG_INTEGERS, dec) != 0) {
        decoded_trim(dec);
        return json_loadb(text, len, flags, err);
    }
    if (dec == &none && hr_json_scan(text, len, HR_JSON_BIG_INTEGERS, NULL, NULL) != 0)
        return json_loadb(text, len, flags, err);
    struct builder b = {text, text + len, NULL, 0, 0, reject_dups, NULL, dec, 0, NULL};
    skip_ws(&b);
    int pooled = hr_json_pool_begin(); /* the tree's nodes: json_pool.c */
    json_t *root = value(&b);
    if (pooled) hr_json_pool_end();
    free(b.scratch);
    decoded_trim(dec);
    if (b.dup_key || !root || b.failed || json_is_number(root)) { /* (a root that is the number: never swept) */
        spellings_free(b.sp);
        b.sp = NULL;
    }
    if (b.dup_key) {
        json_decref(root);
        if (err) {
            memset(err, 0, sizeof *err);
            snprintf(err->text, sizeof err->text, "duplicate object key '%.*s'", 100, b.dup_key);
            snprintf(err->source, sizeof err->source, "<buffer>");
        }
        free(b.dup_key);
        return NULL;
    }
    if (!root || b.failed) {
        json_decref(root);
        return json_loadb(text, len, flags, err); /* out of memory: let jansson try and report */
    }
    if (b.sp) spellings_publish(b.sp, root);
    return root;
}

json_t *hr_json_load(const char *text, size_t len, json_error_t *err) { return load(text, len, err, 0); }

json_t *hr_json_load_strict(const char *text, size_t len, json_error_t *err) { return load(text, len, err, 1); }
