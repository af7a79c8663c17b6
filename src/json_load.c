/* json_load.c — build a jansson tree from text the shared scanner has
 * already validated. jansson's own parser appends string bytes one at a
 * time (~110 MB/s); here a string without escapes is one memcpy, so a 1 MB
 * agent request parses in about a millisecond. No validation happens in
 * this file: hr_json_scan_decode has accepted the text exactly as jansson
 * would, decoding the value strings that hold escapes on the way. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include "json_load.h"
#include "json_pool.h"
#include "json_scan.h"

struct builder {
    const char *p, *end;
    char *scratch; /* decoded strings that carried escapes */
    size_t cap;
    int failed;
    int reject_dups;
    char *dup_key;  /* the first key seen twice in one object (reject_dups) */
    const struct hr_json_decoded *dec; /* value strings the scan decoded, in order */
    size_t next_dec;
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
        while (e < b->end && ((unsigned)(*e - '0') < 10 || *e == '-' || *e == '+' || *e == '.' || *e == 'e' || *e == 'E'))
            e++;
        int64_t iv;
        double dv;
        int integer = hr_json_number(n, (size_t)(e - n), &iv, &dv);
        return token(b, e, integer ? json_integer((json_int_t)iv) : json_real(dv));
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
    struct hr_json_decoded none = {0}, *dec = decoded_get();
    if (!dec) dec = &none; /* no memory: every string decoded by the builder */
    else if (hr_json_scan_decode(text, len, dec) != 0) {
        decoded_trim(dec);
        return json_loadb(text, len, flags, err);
    }
    if (dec == &none && hr_json_scan(text, len, 0, NULL, NULL) != 0) return json_loadb(text, len, flags, err);
    struct builder b = {text, text + len, NULL, 0, 0, reject_dups, NULL, dec, 0};
    skip_ws(&b);
    int pooled = hr_json_pool_begin(); /* the tree's nodes: json_pool.c */
    json_t *root = value(&b);
    if (pooled) hr_json_pool_end();
    free(b.scratch);
    decoded_trim(dec);
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
