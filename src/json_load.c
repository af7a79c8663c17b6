/* json_load.c — build a jansson tree from text the shared scanner has
 * already validated. jansson's own parser appends string bytes one at a
 * time (~110 MB/s); here a string without escapes is one memcpy, so a 1 MB
 * agent request parses in about a millisecond. No validation happens in
 * this file: hr_json_scan has accepted the text exactly as jansson would. */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "json_load.h"
#include "json_pool.h"
#include "json_scan.h"
#include "par.h"

/* Bodies this long are parsed in pieces when the compress pool has a
 * helper (see load_split): ~0.25 ms of parse, enough to pay for a wake. */
#define SPLIT_MIN (256 * 1024)

struct tail;

struct builder {
    const char *p, *end;
    char *scratch; /* decoded strings that carried escapes */
    size_t cap;
    int failed;
    int reject_dups;
    char *dup_key;  /* the first key seen twice in one object (reject_dups) */
    const char *join; /* load_split: where the pieces' elements start */
    struct tail *tail;
    int joined;
    double t0;        /* when the caller started (µs) */
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

static int join_tail(struct builder *b, json_t *a);

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
        if (b->p == b->join) { /* the rest of this array is the helper's */
            if (join_tail(b, a)) break;
            return a;
        }
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

static json_t *load_whole(const char *text, size_t len, json_error_t *err, int reject_dups)
{
    size_t flags = reject_dups ? JSON_REJECT_DUPLICATES : 0;
    if (hr_json_scan(text, len, 0, NULL, NULL) != 0) return json_loadb(text, len, flags, err);
    struct builder b = {.p = text, .end = text + len, .reject_dups = reject_dups};
    skip_ws(&b);
    int pooled = hr_json_pool_begin(); /* the tree's nodes: json_pool.c */
    json_t *root = value(&b);
    if (pooled) hr_json_pool_end();
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


/* ---------------------------------------------------------- in pieces at once
 * A megabyte agent request is one big array ("messages", "input") of
 * elements tens of KB each. The text is cut where elements of an array
 * that is a member of the root start (guessed from the bytes around each
 * cut, checked below). The caller scans and builds the text before the
 * first cut while a helper takes the pieces between the cuts from the
 * front, each scanning its piece and building the elements in it; at the
 * first cut the caller takes the pieces left from the back, then the
 * elements of them all, in order. The scanner checks the guesses: each
 * piece must end exactly where an element of the same array is due
 * (hr_json_scan_part), so the pieces accept what one scan of the whole
 * accepts. Anything else — a wrong guess, bad text, a duplicate key
 * anywhere, no memory — falls back to the one-piece load, which gives
 * today's tree or today's error, byte for byte.
 *
 * The caller never waits on this shared host's run queues for a helper
 * that was preempted or woke late: a piece the helper holds past twice the
 * time the caller would take for it is built again by the caller, and the
 * helper's copy thrown away. So the helper reads its own copy of the text
 * after the first cut and owns half of `struct tail`: whichever of the two
 * lets go last frees it. */
#define PIECES 4 /* after the caller's: what a late helper holds up is small */

enum { FREE, HELPER, CALLER, DONE }; /* who has a piece */

struct built {
    json_t *elems;        /* the array's elements in [start, stop) */
    size_t after;         /* the last piece: just past the array's closing bracket */
    int ok;
};

struct piece {
    size_t start, stop;   /* stop 0: the last, to the end of the text */
    atomic_int state;
    _Atomic double taken; /* when the helper took it (µs) */
    struct built mine, its; /* the caller's build, the helper's (read once DONE) */
};

struct tail {
    atomic_int refs;      /* the caller and the posted call */
    char *copy;           /* text[cut..len), the helper's */
    size_t cut, len;
    char stack[2];        /* the containers open at every cut, guessed: root, array */
    size_t depth;
    int reject_dups;
    size_t n;
    struct piece piece[PIECES];
};

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void tail_release(struct tail *t)
{
    if (atomic_fetch_sub(&t->refs, 1) != 1) return;
    for (size_t i = 0; i < t->n; i++) {
        json_decref(t->piece[i].mine.elems);
        json_decref(t->piece[i].its.elems);
    }
    free(t->copy);
    free(t);
}

/* Scan piece `pc` and build its elements into *out: `text` is the whole
 * text (shift 0) or the helper's copy of it from t->cut on (shift t->cut). */
static void piece_build(const struct tail *t, const struct piece *pc, const char *text, size_t shift,
                        struct built *out)
{
    char stack[HR_JSON_MAX_DEPTH];
    size_t depth = 0, start = pc->start - shift, len = t->len - shift;
    out->ok = 0;
    if (pc->stop ? hr_json_scan_part(text, start, pc->stop - shift, t->stack, t->depth, stack, &depth) ||
                       depth != t->depth || memcmp(stack, t->stack, depth)
                 : hr_json_scan_part(text, start, len, t->stack, t->depth, NULL, NULL))
        return;
    struct builder b = {.p = text + start, .end = text + len, .reject_dups = t->reject_dups};
    const char *stop = pc->stop ? text + pc->stop - shift : NULL;
    int pooled = hr_json_pool_begin();
    json_t *a = json_array();
    skip_ws(&b);
    while (a && !b.failed) {
        json_t *v = value(&b);
        if (!v || json_array_append_new(a, v)) break;
        skip_ws(&b);
        if (*b.p++ == ']') { /* the array ends: in the last piece only */
            out->ok = !stop && !b.dup_key;
            break;
        }
        skip_ws(&b);
        if (b.p == stop) {
            out->ok = !b.dup_key;
            break;
        }
    }
    if (pooled) hr_json_pool_end();
    free(b.scratch);
    free(b.dup_key);
    out->elems = a;
    out->after = (size_t)(b.p - text) + shift;
}

/* The posted call: the pieces from the front, while they are free. */
static void helper_pieces(void *arg, size_t unused)
{
    (void)unused;
    struct tail *t = arg;
    for (size_t i = 0; i < t->n; i++) {
        struct piece *pc = &t->piece[i];
        int expect = FREE;
        if (!atomic_compare_exchange_strong(&pc->state, &expect, HELPER)) break; /* the caller's from here */
        atomic_store(&pc->taken, now_us());
        piece_build(t, pc, t->copy, t->cut, &pc->its);
        expect = HELPER;
        if (!atomic_compare_exchange_strong(&pc->state, &expect, DONE)) { /* the caller built it again */
            json_decref(pc->its.elems);
            pc->its.elems = NULL;
        }
    }
    tail_release(t);
}

/* The caller's part after the first cut: the free pieces from the back,
 * then each one the helper holds, waited for while it could still be
 * running ahead of the caller, else built here too. `us_per_byte` is the
 * caller's own pace. */
static void caller_pieces(struct tail *t, const char *text, double us_per_byte)
{
    for (size_t i = t->n; i-- > 0;) {
        struct piece *pc = &t->piece[i];
        int expect = FREE;
        if (atomic_compare_exchange_strong(&pc->state, &expect, CALLER)) piece_build(t, pc, text, 0, &pc->mine);
    }
    for (size_t i = 0; i < t->n; i++) {
        struct piece *pc = &t->piece[i];
        if (atomic_load(&pc->state) != HELPER) continue;
        size_t bytes = (pc->stop ? pc->stop : t->len) - pc->start;
        double deadline = atomic_load(&pc->taken) + 2 * us_per_byte * (double)bytes;
        while (atomic_load(&pc->state) == HELPER && now_us() < deadline) continue;
        int expect = HELPER;
        if (atomic_compare_exchange_strong(&pc->state, &expect, CALLER)) piece_build(t, pc, text, 0, &pc->mine);
    }
}

/* Every piece's elements in order after the caller's, at the first cut. */
static int join_tail(struct builder *b, json_t *a)
{
    struct tail *t = b->tail;
    caller_pieces(t, b->join - t->cut, (now_us() - b->t0) / (double)t->cut);
    b->joined = 1;
    const struct built *got = NULL;
    for (size_t i = 0; i < t->n; i++) {
        got = atomic_load(&t->piece[i].state) == DONE ? &t->piece[i].its : &t->piece[i].mine;
        if (!got->ok || json_array_extend(a, got->elems)) {
            b->failed = 1;
            return -1;
        }
    }
    b->p = b->join - t->cut + got->after;
    return 0;
}

static int is_ws(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

/* Is the '}' at text[i] followed by ",{" and a key or '}'? The offset of
 * that '{', or 0. */
static size_t cut_after(const char *text, size_t len, size_t i)
{
    const char *q = text + i + 1, *end = text + len;
    while (q < end && is_ws(*q)) q++;
    if (q == end || *q++ != ',') return 0;
    while (q < end && is_ws(*q)) q++;
    if (q == end || *q != '{') return 0;
    const char *r = q + 1;
    while (r < end && is_ws(*r)) r++;
    return r < end && (*r == '"' || *r == '}') ? (size_t)(q - text) : 0;
}

/* The first key of the object whose '{' is at text[at] (its bytes up to the
 * closing quote, at most 32), or 0 bytes when it has none. */
static size_t first_key(const char *text, size_t len, size_t at, const char **key)
{
    const char *r = text + at + 1, *end = text + len;
    while (r < end && is_ws(*r)) r++;
    *key = r;
    const char *q = r < end && *r == '"' ? memchr(r + 1, '"', (size_t)(end - r - 1 < 32 ? end - r - 1 : 32)) : NULL;
    return q ? (size_t)(q - r) : 0;
}

/* Where an element of an array of objects starts, nearest `from` on either
 * side but after `after`: the '{' of "},{" with a key or '}' next
 * (whitespace allowed between) and, when `key` is given, that first key.
 * Inside a string the byte after '{' would be an escaped quote, so the
 * guess is rarely wrong, and a wrong one is caught; the key keeps later
 * cuts out of arrays nested in the elements (content blocks after
 * messages). 0 when there is none. */
static size_t find_cut(const char *text, size_t len, size_t from, size_t after, const char *key, size_t klen)
{
    size_t fwd = 0, back = 0;
    const char *k;
#define FITS(at) ((at) && (!key || (first_key(text, len, (at), &k) == klen && !memcmp(k, key, klen))))
    for (const char *p = text + from; p < text + len && (p = memchr(p, '}', (size_t)(text + len - p))); p++)
        if (FITS(fwd = cut_after(text, len, (size_t)(p - text)))) break;
        else fwd = 0;
    size_t lo = fwd && fwd - from < from ? from - (fwd - from) : 0; /* no use looking further back */
    if (lo < after) lo = after;
    for (size_t i = from; i > lo;) {
        const char *p = memrchr(text + lo, '}', i - lo);
        if (!p) break;
        i = (size_t)(p - text);
        if ((back = cut_after(text, len, i)) > after && FITS(back)) break;
        back = 0;
    }
#undef FITS
    if (!back) return fwd;
    if (!fwd) return back;
    return from - back < fwd - from ? back : fwd;
}

static json_t *load_split(const char *text, size_t len, json_error_t *err, int reject_dups, size_t from, int *pieces)
{
    *pieces = 1;
    double t0 = now_us();
    const char *first = text;
    while (first < text + len && is_ws(*first)) first++;
    size_t cut = from < len ? find_cut(text, len, from, 0, NULL, 0) : 0;
    struct tail *t = cut && first < text + len && (*first == '{' || *first == '[') ? calloc(1, sizeof *t) : NULL;
    if (t) t->copy = malloc(len - cut);
    if (!t || !t->copy) {
        free(t);
        return load_whole(text, len, err, reject_dups);
    }
    memcpy(t->copy, text + cut, len - cut);
    t->cut = cut;
    t->len = len;
    t->reject_dups = reject_dups;
    t->stack[t->depth++] = *first;
    if (*first == '{') t->stack[t->depth++] = '[';
    /* The pieces: the rest cut again near equal shares, before elements
     * whose first key is the first cut's. */
    const char *key;
    size_t klen = first_key(text, len, cut, &key);
    t->piece[t->n++].start = cut;
    for (size_t k = 1; k < PIECES && klen; k++) {
        size_t at = find_cut(text, len, cut + (len - cut) * k / PIECES, t->piece[t->n - 1].start, key, klen);
        if (at > t->piece[t->n - 1].start) {
            t->piece[t->n - 1].stop = at;
            t->piece[t->n++].start = at;
        }
    }
    atomic_store(&t->refs, 2);
    hr_par_request_begin();
    if (hr_par_post(helper_pieces, t)) atomic_store(&t->refs, 1); /* no helper: all the caller's */
    char stack[HR_JSON_MAX_DEPTH];
    size_t depth = 0;
    json_t *root = NULL;
    struct builder b = {.p = text, .end = text + len, .reject_dups = reject_dups, .join = text + cut, .tail = t,
                        .t0 = t0};
    int ok = hr_json_scan_part(text, 0, cut, NULL, 0, stack, &depth) == 0 && depth == t->depth &&
             !memcmp(stack, t->stack, depth);
    if (ok) {
        skip_ws(&b);
        int pooled = hr_json_pool_begin();
        root = value(&b);
        if (pooled) hr_json_pool_end();
        ok = root && !b.failed && !b.dup_key && b.joined;
    }
    if (!b.joined) /* the pieces are not wanted: none is started now, the helper's are its to drop */
        for (size_t i = 0; i < t->n; i++) {
            int expect = FREE;
            if (!atomic_compare_exchange_strong(&t->piece[i].state, &expect, CALLER)) {
                expect = HELPER;
                atomic_compare_exchange_strong(&t->piece[i].state, &expect, CALLER);
            }
        }
    hr_par_request_end();
    free(b.scratch);
    free(b.dup_key);
    if (ok) *pieces = (int)t->n + 1;
    tail_release(t);
    if (ok) return root;
    json_decref(root);
    return load_whole(text, len, err, reject_dups); /* and its verdict, as without the split */
}

static json_t *load(const char *text, size_t len, json_error_t *err, int reject_dups)
{
    int pieces;
    if (len >= SPLIT_MIN && hr_par_helpers()) return load_split(text, len, err, reject_dups, len / 2, &pieces);
    return load_whole(text, len, err, reject_dups);
}

json_t *hr_json_load(const char *text, size_t len, json_error_t *err) { return load(text, len, err, 0); }

json_t *hr_json_load_strict(const char *text, size_t len, json_error_t *err) { return load(text, len, err, 1); }

json_t *hr_json_load_split(const char *text, size_t len, json_error_t *err, int strict, size_t from, int *pieces)
{
    return load_split(text, len, err, strict, from, pieces);
}
