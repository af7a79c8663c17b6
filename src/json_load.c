/* json_load.c — build a jansson tree from text the shared scanner has
 * already validated. jansson's own parser appends string bytes one at a
 * time (~110 MB/s); here a string without escapes is one memcpy, so a 1 MB
 * agent request parses in about a millisecond. No validation happens in
 * this file: hr_json_scan has accepted the text exactly as jansson would. */
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include "json_load.h"
#include "json_scan.h"
#include "par.h"

/* A long string left out of the tree while it is built (its bytes are
 * decoded on another thread meanwhile): a stand-in holds its place, in an
 * object under key or in an array at index. */
struct slot {
    json_t *stand_in;  /* reference held: a later duplicate key cannot free it */
    json_t *holder;    /* reference held */
    char *key;         /* NULL in an array */
    size_t klen, index;
    json_t *value;     /* the decoded string */
};

struct builder {
    const char *p, *end;
    char *scratch; /* decoded strings that carried escapes */
    size_t cap;
    int failed;
    int reject_dups;
    char *dup_key;  /* the first key seen twice in one object (reject_dups) */
    const char *text;
    const struct hr_json_long *longs; /* the scanner's long strings, in text order */
    struct slot *slots;
    size_t n_longs, next_long;
    struct slot *placed; /* the slot value() just returned a stand-in for */
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
        struct slot *sl = b->placed;
        b->placed = NULL;
        size_t before = json_object_size(o);
        int bad = !v || json_object_setn_new_nocheck(o, key, klen, v);
        if (!bad && sl && !(sl->key = malloc(klen + 1))) bad = 1;
        if (!bad && sl) {
            memcpy(sl->key, key, klen);
            sl->key[klen] = '\0';
            sl->klen = klen;
            sl->holder = json_incref(o);
        }
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
        struct slot *sl = b->placed;
        b->placed = NULL;
        if (!v || json_array_append_new(a, v)) break;
        if (sl) {
            sl->index = json_array_size(a) - 1;
            sl->holder = json_incref(a);
        }
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
        if (b->next_long < b->n_longs && (size_t)(b->p + 1 - b->text) == b->longs[b->next_long].off) {
            struct slot *sl = &b->slots[b->next_long];
            b->p += b->longs[b->next_long++].len + 2;
            sl->stand_in = json_object();
            b->placed = sl;
            return sl->stand_in ? json_incref(sl->stand_in) : NULL;
        }
        s = read_string(b, &len);
        return b->failed ? NULL : json_stringn_nocheck(s, len);
    case 't': return token(b, b->p + 4, json_true());
    case 'f': return token(b, b->p + 5, json_false());
    case 'n': return token(b, b->p + 4, json_null());
    default: {
        const char *n = b->p, *e = n;
        while (e < b->end && ((unsigned)(*e - '0') < 10 || *e == '-' || *e == '+' || *e == '.' || *e == 'e' || *e == 'E'))
            e++;
        int64_t iv;
        double dv;
        int integer = hr_json_number(n, (size_t)(e - n), &iv, &dv);
        return token(b, e, integer ? json_integer((json_int_t)iv) : json_real(dv));
    }
    }
}

/* Strings this long are decoded apart, on the pool's threads, in a body
 * this long: below, handing them over costs more than it saves. */
#define LONG_STRING (16 * 1024)
#define PARALLEL_BODY (64 * 1024)

struct parallel_build {
    struct builder *b;
    json_t *root;
};

/* Item 0 builds the tree around the long strings; item k decodes long
 * string k - 1. */
static void build_part(void *ctx, size_t i)
{
    struct parallel_build *pb = ctx;
    struct builder *b = pb->b;
    if (i == 0) {
        skip_ws(b);
        pb->root = value(b);
        return;
    }
    const struct hr_json_long *l = &b->longs[i - 1];
    char *buf = NULL;
    size_t cap = 0, raw, n;
    const char *s = hr_json_read_string(b->text + l->off, l->len + 1, &buf, &cap, &raw, &n);
    b->slots[i - 1].value = s ? json_stringn_nocheck(s, n) : NULL; /* NULL: out of memory */
    free(buf);
}

/* Put each decoded string where its stand-in still is (a duplicate key may
 * have replaced it since, as jansson would have replaced the string). */
static void place_longs(struct builder *b)
{
    for (size_t k = 0; k < b->n_longs; k++) {
        struct slot *sl = &b->slots[k];
        if (sl->holder && sl->value) {
            if (sl->key) {
                if (json_object_getn(sl->holder, sl->key, sl->klen) == sl->stand_in) {
                    json_object_setn_new_nocheck(sl->holder, sl->key, sl->klen, sl->value);
                    sl->value = NULL;
                }
            } else if (json_array_get(sl->holder, sl->index) == sl->stand_in) {
                json_array_set_new(sl->holder, sl->index, sl->value);
                sl->value = NULL;
            }
        }
        json_decref(sl->value);
        json_decref(sl->holder);
        json_decref(sl->stand_in);
        free(sl->key);
    }
}

/* Scan, then build: when the body is large, a helper is there and the scan
 * found long strings, those are decoded on the pool while this thread
 * builds the rest. The tree is the same either way. */
static json_t *build(struct builder *b, const char *text, size_t len, int *scanned)
{
    struct hr_json_longs longs = {.min_len = LONG_STRING};
    *scanned = 0;
    if (len >= PARALLEL_BODY && hr_par_helpers() > 0) {
        int rc = hr_json_scan_longs(text, len, 0, &longs);
        if (rc == 0 && longs.n && (b->slots = calloc(longs.n, sizeof *b->slots))) {
            *scanned = 1;
            b->longs = longs.v;
            b->n_longs = longs.n;
            struct parallel_build pb = {b, NULL};
            hr_par_request_begin();
            hr_par_for(longs.n + 1, build_part, &pb);
            hr_par_request_end();
            for (size_t k = 0; k < longs.n; k++)
                if (!b->slots[k].value) b->failed = 1;
            if (b->next_long != b->n_longs) b->failed = 1;
            place_longs(b);
            free(b->slots);
            free(longs.v);
            return pb.root;
        }
        free(longs.v);
        if (rc != 0) return NULL; /* refused: jansson reports it */
        *scanned = 1;
    } else if (hr_json_scan(text, len, 0, NULL, NULL) != 0) {
        return NULL;
    }
    *scanned = 1;
    skip_ws(b);
    return value(b);
}

static json_t *load(const char *text, size_t len, json_error_t *err, int reject_dups)
{
    size_t flags = reject_dups ? JSON_REJECT_DUPLICATES : 0;
    struct builder b = {text, text + len, NULL, 0, 0, reject_dups, NULL, text, NULL, NULL, 0, 0, NULL};
    int scanned;
    json_t *root = build(&b, text, len, &scanned);
    if (!scanned) return json_loadb(text, len, flags, err);
    free(b.scratch);
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
    return root;
}

json_t *hr_json_load(const char *text, size_t len, json_error_t *err) { return load(text, len, err, 0); }

json_t *hr_json_load_strict(const char *text, size_t len, json_error_t *err) { return load(text, len, err, 1); }
