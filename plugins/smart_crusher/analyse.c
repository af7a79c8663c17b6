/* analyse.c — one pass over the rows of an array of objects, read straight from the
 * validated compacted bytes: field presence, types,
 * robust numeric statistics, error/warning signals, rare fields (needles), the
 * relevance field and exact duplicates. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "crush.h"
#include "hash.h"
#include "json_scan.h"
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define TABLE_SLOTS 1024 /* > 2 * HR_SC_MAX_FIELDS, power of two */
#define KEY_WORDS (HR_SC_MAX_FIELDS / 64)

struct scratch {
    char *p;
    size_t cap;
};

struct walk {
    struct hr_sc_table *t;
    size_t clen;                 /* bytes of t->text */
    uint16_t slots[TABLE_SLOTS]; /* field index + 1, 0 = empty */
    int failed;
    struct scratch skey, skey2, sval; /* decoded keys (row, nested) and string values */
    /* Rows mostly repeat one key order: the field seen at the same position of the
     * previous row is tried before hashing the path. */
    size_t plen[HR_SC_MAX_FIELDS];
    uint8_t esc[HR_SC_MAX_FIELDS]; /* the field's name holds a backslash */
    uint16_t pred[64];   /* field index + 1 per visit position, 0 = none */
    size_t seq;          /* visit position within the current row */
    int known;           /* the next visit's field is pred[seq] (its key matched in place) */
    uint64_t *keys;      /* per row, KEY_WORDS words: the fields it carries (bit = field index) */
};

static int name_is(const char *name, const char *const *list)
{
    for (; *list; list++)
        if (strcasecmp(name, *list) == 0)
            return 1;
    return 0;
}

static uint8_t classify(const char *path)
{
    static const char *const err[] = {"error", "errors", "exception", "exceptions", "err",
        "error_message", "error_msg", "errormessage", "errmsg", "failure", "fault",
        "stacktrace", "stack_trace", "traceback",
        /* explicit flags: true (or any non-empty, non-zero value) marks the row */
        "is_anomaly", "anomaly", "is_anomalous", "anomalous", "failed", "is_failed", "is_error", "has_error",
        NULL};
    static const char *const status[] = {"status", "state", "result", "outcome", "conclusion",
        "health", "status_code", "statuscode", "http_status", "success", "ok", "passed", NULL};
    static const char *const level[] = {"level", "severity", "log_level", "loglevel", "lvl",
        "levelname", NULL};
    static const char *const exit_code[] = {"exit_code", "exitcode", "exit_status", "exitstatus",
        "returncode", "return_code", "retcode", NULL};
    static const char *const rel[] = {"score", "_score", "relevance", "relevance_score",
        "match_score", "similarity", "similarity_score", "search_score", NULL};
    static const char *const id[] = {"id", "_id", "uuid", "index", "idx", "line", "lineno",
        "line_number", "offset", "position", "seq", "row", NULL};
    const char *dot = strrchr(path, '.');
    const char *name = dot ? dot + 1 : path;
    size_t len = strlen(name);
    if (name_is(name, err))
        return HR_SC_F_ERROR;
    if (name_is(name, status))
        return HR_SC_F_STATUS;
    if (name_is(name, level))
        return HR_SC_F_LEVEL;
    if (name_is(name, exit_code))
        return HR_SC_F_EXIT;
    if (name_is(name, rel))
        return HR_SC_F_RELEVANCE;
    if (name_is(name, id) || (len > 3 && strcasecmp(name + len - 3, "_id") == 0) ||
        (len > 2 && name[len - 2] == 'I' && name[len - 1] == 'd'))
        return HR_SC_F_ID;
    return HR_SC_F_PLAIN;
}

static int ends_ci(const char *s, const char *suf)
{
    size_t n = strlen(s), l = strlen(suf);
    return n >= l && strcasecmp(s + n - l, suf) == 0;
}

/* A field named like an HTTP status, as log_compressor reads JSON-lines
 * records: "status", "status_code", "statusCode", "http_status", Traefik's
 * "DownstreamStatus" (exit_status is an exit code). */
static int http_status_name(const char *path)
{
    const char *dot = strrchr(path, '.');
    const char *name = dot ? dot + 1 : path;
    return ends_ci(name, "status") || ends_ci(name, "status_code") || ends_ci(name, "statuscode");
}

/* A field naming a request's method, path or URL: a row with one is a
 * request, so a 4xx in its "state" or "result" is the request's status. */
static int request_name(const char *path)
{
    static const char *const req[] = {"method", "http_method", "request_method", "verb", "path", "url", "uri",
        "request_uri", "request_url", "endpoint", "route", "request", NULL};
    const char *dot = strrchr(path, '.');
    return name_is(dot ? dot + 1 : path, req);
}

static int lookup_slow(struct walk *w, const char *path, size_t plen);

static int lookup(struct walk *w, const char *path, size_t plen)
{
    struct hr_sc_table *t = w->t;
    size_t seq = w->seq++;
    if (w->known) { /* walk_row matched the key to this position's field already */
        w->known = 0;
        return w->pred[seq] - 1;
    }
    if (seq < 64 && w->pred[seq]) {
        int fi = w->pred[seq] - 1;
        if (w->plen[fi] == plen && memcmp(t->fields[fi].path, path, plen) == 0)
            return fi;
    }
    int fi = lookup_slow(w, path, plen);
    if (fi >= 0 && seq < 64)
        w->pred[seq] = (uint16_t)(fi + 1);
    return fi;
}

static int lookup_slow(struct walk *w, const char *path, size_t plen)
{
    struct hr_sc_table *t = w->t;
    uint64_t h = hr_sc_hash(path, plen, 0x51ed);
    size_t s = (size_t)h & (TABLE_SLOTS - 1);
    for (;;) {
        uint16_t v = w->slots[s];
        if (v == 0)
            break;
        struct hr_sc_field *f = &t->fields[v - 1];
        if (f->h == h && strncmp(f->path, path, plen) == 0 && f->path[plen] == '\0')
            return v - 1;
        s = (s + 1) & (TABLE_SLOTS - 1);
    }
    if (t->n_fields >= HR_SC_MAX_FIELDS)
        return -1;
    struct hr_sc_field *f = &t->fields[t->n_fields];
    memset(f, 0, sizeof *f);
    f->path = malloc(plen + 1);
    f->nums = malloc(t->n * sizeof *f->nums);
    f->num_rows = malloc(t->n * sizeof *f->num_rows);
    if (!f->path || !f->nums || !f->num_rows) {
        free(f->path), free(f->nums), free(f->num_rows);
        w->failed = 1;
        return -1;
    }
    memcpy(f->path, path, plen);
    f->path[plen] = '\0';
    f->h = h;
    f->cls = classify(f->path);
    f->http = f->cls != HR_SC_F_EXIT && http_status_name(f->path);
    f->req = request_name(f->path);
    w->plen[t->n_fields] = plen;
    w->esc[t->n_fields] = memchr(path, '\\', plen) != NULL;
    w->slots[s] = (uint16_t)(t->n_fields + 1);
    return (int)t->n_fields++;
}

/* Error words in free text. Matches at a word start, or at a camel-case boundary
 * ("NullPointerException"), so "terror" does not count but "TypeError" does.
 * ASCII case rules (the daemon runs in the C locale), by table: this reads
 * every byte of every plain string field. */
enum { C_LOWER = 1, C_UPPER = 2, C_DIGIT = 4, C_FIRST = 8 };
#define L_ C_LOWER
#define U_ C_UPPER
#define LF (C_LOWER | C_FIRST)
#define UF (C_UPPER | C_FIRST)
static const unsigned char ascii_class[256] = {
    ['0' ... '9'] = C_DIGIT,
    ['a' ... 'b'] = L_, ['c'] = LF, ['d'] = L_, ['e' ... 'f'] = LF, ['g' ... 'o'] = L_, ['p'] = LF,
    ['q' ... 'r'] = L_, ['s' ... 't'] = LF, ['u' ... 'z'] = L_,
    ['A' ... 'B'] = U_, ['C'] = UF, ['D'] = U_, ['E' ... 'F'] = UF, ['G' ... 'O'] = U_, ['P'] = UF,
    ['Q' ... 'R'] = U_, ['S' ... 'T'] = UF, ['U' ... 'Z'] = U_,
};
#undef L_
#undef U_
#undef LF
#undef UF

/* The rest of word `w` (n letters, its first two already matched) at u[i]. */
static int word_at(const unsigned char *u, size_t i, size_t len, const char *w, size_t n)
{
    if (i + n > len)
        return 0;
    /* the words are letters: c | 0x20 is c's lower case exactly when it
     * is that letter in either case */
    for (size_t j = 2; j < n; j++)
        if ((u[i + j] | 0x20) != w[j])
            return 0;
    return 1;
}

/* One of the error words starts at u[i] (a word start; i + 5 <= len): error, exception,
 * traceback, fatal, failed, failure, panic, segfault, critical, by their first two letters. */
static int error_word_at(const unsigned char *u, size_t i, size_t len)
{
    int l2 = u[i + 1] | 0x20;
    switch (u[i] | 0x20) {
    case 'c': return l2 == 'r' && word_at(u, i, len, "critical", 8);
    case 'e': return l2 == 'r' ? word_at(u, i, len, "error", 5) : l2 == 'x' && word_at(u, i, len, "exception", 9);
    case 'f':
        return l2 == 'a' && (word_at(u, i, len, "fatal", 5) || word_at(u, i, len, "failed", 6) ||
                             word_at(u, i, len, "failure", 7));
    case 'p': return l2 == 'a' && word_at(u, i, len, "panic", 5);
    case 's': return l2 == 'e' && word_at(u, i, len, "segfault", 8);
    case 't': return l2 == 'r' && word_at(u, i, len, "traceback", 9);
    default: return 0;
    }
}

/* Bytes that join the parts of a name: package, file and path names and identifiers
 * (libgpg-error0, libgpg-error.so.0, test_errors.py, src/errors/). */
static int joiner(unsigned char c)
{
    return c == '-' || c == '_' || c == '.' || c == '/' || c == '\\';
}

/* The error word at u[i] is part of a name, not said of this row: a joiner right
 * before it, or after its letters a digit, or a joiner and then a letter or digit
 * ("libgpg-error0", "libgpg-error.so", "error_handler.c"). Not when its letters
 * are capitals, as codes and levels are written (E_FATAL, JOB_FAILED, ERROR-42). */
static int in_name(const unsigned char *u, size_t i, size_t len)
{
    size_t j = i;
    unsigned caps = C_UPPER;
    for (; j < len && (ascii_class[u[j]] & (C_LOWER | C_UPPER)); j++)
        caps &= ascii_class[u[j]];
    if (caps)
        return 0;
    if (i > 0 && joiner(u[i - 1]))
        return 1;
    return j < len && ((ascii_class[u[j]] & C_DIGIT) ||
                       (joiner(u[j]) && j + 1 < len && ascii_class[u[j + 1]] != 0));
}

/* `avail` (>= len): bytes readable at s, so that whole 16-byte blocks can be read
 * past the string's end (their positions beyond it are not looked at). */
static int has_error_word(const char *s, size_t len, size_t avail)
{
    if (len < 5)
        return 0; /* shorter than any word (most values: codes, ids, flags) */
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, last = len - 5;
    unsigned pv = 0; /* class of the byte before: 0 = not a letter or digit */
#if defined(__SSE2__)
    /* The same word starts, 16 positions at a time: a first letter (c e f p s t, either
     * case) after a byte that is not a letter or digit, or upper case after lower. */
    uint32_t an_before = 0, lo_before = 0; /* bit 0: the byte before the block is so */
    for (; i <= last && avail - i >= 16; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(u + i)), l = _mm_or_si128(v, _mm_set1_epi8(0x20));
        __m128i digit = _mm_cmplt_epi8(_mm_add_epi8(v, _mm_set1_epi8((char)(0x80 - '0'))), _mm_set1_epi8(-128 + 10));
        __m128i letter = _mm_cmplt_epi8(_mm_add_epi8(l, _mm_set1_epi8((char)(0x80 - 'a'))), _mm_set1_epi8(-128 + 26));
        __m128i upper = _mm_cmplt_epi8(_mm_add_epi8(v, _mm_set1_epi8((char)(0x80 - 'A'))), _mm_set1_epi8(-128 + 26));
        __m128i first = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(l, _mm_set1_epi8('c')), _mm_cmpeq_epi8(l, _mm_set1_epi8('e'))),
                                     _mm_or_si128(_mm_cmpeq_epi8(l, _mm_set1_epi8('f')), _mm_cmpeq_epi8(l, _mm_set1_epi8('p'))));
        first = _mm_or_si128(first, _mm_or_si128(_mm_cmpeq_epi8(l, _mm_set1_epi8('s')), _mm_cmpeq_epi8(l, _mm_set1_epi8('t'))));
        uint32_t let = (uint32_t)_mm_movemask_epi8(letter), up = (uint32_t)_mm_movemask_epi8(upper);
        uint32_t an = let | (uint32_t)_mm_movemask_epi8(digit), lo = let & ~up;
        uint32_t cand = (uint32_t)_mm_movemask_epi8(first) &
                        (~((an << 1) | an_before) | (up & ((lo << 1) | lo_before)));
        an_before = (an >> 15) & 1;
        lo_before = (lo >> 15) & 1;
        if (last - i < 15)
            cand &= (2u << (last - i)) - 1; /* starts up to `last` only */
        for (; cand; cand &= cand - 1) {
            size_t at = i + (size_t)__builtin_ctz(cand);
            if (error_word_at(u, at, len) && !in_name(u, at, len))
                return 1;
        }
    }
    if (i > 0 && i <= last)
        pv = ascii_class[u[i - 1]];
#else
    (void)avail;
#endif
    for (; i <= last; i++) {
        unsigned cls = ascii_class[u[i]], prev = pv;
        pv = cls;
        if (!(cls & C_FIRST) || (prev && !((cls & C_UPPER) && (prev & C_LOWER))))
            continue;
        if (error_word_at(u, i, len) && !in_name(u, i, len))
            return 1;
    }
    return 0;
}

/* `s` (len bytes, no NUL inside: the scanner refuses \u0000) equals a list entry,
 * ignoring ASCII case — strcasecmp on the decoded string. */
static int str_in(const char *s, size_t len, const char *const *list)
{
    for (; *list; list++)
        if (strlen(*list) == len && strncasecmp(s, *list, len) == 0)
            return 1;
    return 0;
}

/* One scalar or container of a row, decoded from the validated, compacted text.
 * `type` uses jansson's json_type numbering. */
struct val {
    int type;
    const char *s;   /* JSON_STRING: decoded bytes */
    size_t len;
    size_t avail;    /* JSON_STRING: bytes readable at s (>= len) */
    int64_t i;       /* JSON_INTEGER */
    double d;        /* JSON_INTEGER (as a double) and JSON_REAL */
    int nonempty;    /* JSON_OBJECT, JSON_ARRAY */
};

static int is_number(const struct val *v)
{
    return v->type == JSON_INTEGER || v->type == JSON_REAL;
}

/* An HTTP status written as text, first digit `d`: "503", "503 Service
 * Unavailable", "404". */
static int http_text(const char *s, size_t len, char d)
{
    const unsigned char *u = (const unsigned char *)s;
    return len >= 3 && u[0] == d && (ascii_class[u[1]] & C_DIGIT) && (ascii_class[u[2]] & C_DIGIT) &&
           (len == 3 || !(ascii_class[u[3]] & (C_DIGIT | C_LOWER | C_UPPER)));
}
#define http_5xx(s, len) http_text(s, len, '5')

/* A 4xx status: a client error, weaker than a 5xx (2: below every other
 * structured error, so 4xx rows yield first under the critical cap), as
 * log_compressor counts an access log's 404. In a field named like an HTTP
 * status it is one; in another status field ("state", "result") only when
 * the row is a request (a method, path or URL field beside it: resolved in
 * group_signals). A 5xx in a field named like an HTTP status that is no
 * status field by name (DownstreamStatus) is an error, as in "status". */
static void http_signal(struct hr_sc_row *r, const struct hr_sc_field *f, const struct val *v)
{
    int c4 = v->type == JSON_INTEGER ? v->i >= 400 && v->i <= 499 : v->type == JSON_STRING && http_text(v->s, v->len, '4');
    int c5 = v->type == JSON_INTEGER ? v->i >= 500 && v->i <= 599 : v->type == JSON_STRING && http_5xx(v->s, v->len);
    if (c5 && f->http && r->err < 3)
        r->err = 3;
    if (c4 && f->http && r->err < 2)
        r->err = 2;
    else if (c4 && !f->http && f->cls == HR_SC_F_STATUS)
        r->maybe_4xx = 1;
}

static void signal(struct hr_sc_row *r, const struct hr_sc_field *f, const struct val *v)
{
    static const char *const failed[] = {"failed", "failure", "fail", "error", "errored",
        "fatal", "crashed", "critical", "aborted", "unhealthy", "down", NULL};
    static const char *const warned[] = {"warning", "warn", "degraded", NULL};
    static const char *const lvl_err[] = {"error", "err", NULL};
    static const char *const lvl_fatal[] = {"critical", "crit", "fatal", "emerg", "emergency",
        "alert", "panic", NULL};
    const char *name = strrchr(f->path, '.');
    name = name ? name + 1 : f->path;
    uint8_t e = 0;
    switch (f->cls) {
    case HR_SC_F_ERROR:
        if (v->type == JSON_STRING ? v->len > 0
            : v->type == JSON_OBJECT || v->type == JSON_ARRAY ? v->nonempty
            : v->type == JSON_TRUE ? 1
            : is_number(v) ? v->d != 0 : 0)
            e = 3;
        break;
    case HR_SC_F_STATUS:
        if (v->type == JSON_STRING) {
            if (str_in(v->s, v->len, failed) || http_5xx(v->s, v->len))
                e = 3;
            else if (str_in(v->s, v->len, warned))
                r->warn = 1;
        } else if (v->type == JSON_FALSE && (!strcasecmp(name, "success") || !strcasecmp(name, "ok") ||
                                             !strcasecmp(name, "passed"))) {
            e = 3;
        } else if (v->type == JSON_INTEGER && v->i >= 500 && v->i <= 599) {
            e = 3;
        }
        break;
    case HR_SC_F_EXIT:
        if (v->type == JSON_INTEGER && v->i != 0)
            e = 3; /* a command that did not exit 0 */
        break;
    case HR_SC_F_LEVEL:
        if (v->type == JSON_STRING) {
            if (str_in(v->s, v->len, lvl_fatal))
                e = 5;
            else if (str_in(v->s, v->len, lvl_err))
                e = 4;
            else if (str_in(v->s, v->len, warned))
                r->warn = 1;
        }
        break;
    default:
        break;
    }
    if (e > r->err)
        r->err = e;
}

static void visit(struct walk *w, size_t row, const char *path, size_t plen, const struct val *v)
{
    struct hr_sc_table *t = w->t;
    int fi = lookup(w, path, plen);
    if (fi < 0)
        return;
    struct hr_sc_field *f = &t->fields[fi];
    struct hr_sc_row *r = &t->rows[row];
    if (f->count >= t->n)
        return; /* "a.b" spelled both flat and nested in one row */
    f->count++;
    w->keys[row * KEY_WORDS + (size_t)fi / 64] |= 1ULL << (fi % 64);
    if (v->type == JSON_STRING) {
        if (f->cls == HR_SC_F_PLAIN && has_error_word(v->s, v->len, v->avail)) {
            f->kw_hits++;
            r->kw_mask |= 1ULL << (fi < 63 ? fi : 63);
        }
    } else if (is_number(v)) {
        f->nums[f->num_count] = v->d;
        f->num_rows[f->num_count++] = (uint32_t)row;
    }
    if (f->cls != HR_SC_F_PLAIN && f->cls != HR_SC_F_ID && f->cls != HR_SC_F_RELEVANCE)
        signal(r, f, v);
    if (f->http || f->cls == HR_SC_F_STATUS)
        http_signal(r, f, v);
}

/* ------------------------------------------------ reading rows from the text */

/* Decoded text of a string body; strings without escapes (most) are used in place. */
static const char *decode(struct walk *w, struct scratch *b, const char *raw, size_t len,
                          size_t *out_len)
{
    const char *s = hr_json_string(raw, len, &b->p, &b->cap, out_len);
    if (!s) {
        w->failed = 1;
        *out_len = 0;
        return "";
    }
    return s;
}

/* The decoded text of the string at c[pos] (a '"'), with the bytes readable there
 * (*avail, when not NULL); returns the position just past it. */
static size_t read_string(struct walk *w, struct scratch *b, size_t pos, const char **s, size_t *len,
                          size_t *avail)
{
    const char *c = w->t->text;
    int plain;
    size_t e = hr_sc_skip_string(c, w->clen, pos, &plain);
    if (plain) { /* no escape: the body itself, as decode would give */
        *s = c + pos + 1;
        *len = e - pos - 2;
        if (avail)
            *avail = w->clen - pos - 1;
    } else {
        *s = decode(w, b, c + pos + 1, e - pos - 2, len);
        if (avail)
            *avail = *len;
    }
    return e;
}

/* The key of the member at c[pos] (a '"'); returns the position of its value. */
static size_t read_key(struct walk *w, struct scratch *b, size_t pos, const char **key,
                       size_t *klen)
{
    return read_string(w, b, pos, key, klen, NULL) + 1; /* past ':' */
}

/* Decode the value at c[pos]; returns the position just past it. Objects and arrays
 * are not entered (only their emptiness is read); with `stay_in_object`, an object's
 * end is left to the caller, who walks its members (pos is returned). */
static size_t read_value(struct walk *w, size_t pos, struct val *v, int stay_in_object)
{
    const char *c = w->t->text;
    size_t len = w->clen;
    memset(v, 0, sizeof *v);
    switch (c[pos]) {
    case '"':
        v->type = JSON_STRING;
        return read_string(w, &w->sval, pos, &v->s, &v->len, &v->avail);
    case '{':
        v->type = JSON_OBJECT;
        v->nonempty = c[pos + 1] != '}';
        return stay_in_object ? pos : hr_sc_skip_value(c, len, pos);
    case '[':
        v->type = JSON_ARRAY;
        v->nonempty = c[pos + 1] != ']';
        return hr_sc_skip_value(c, len, pos);
    case 't': v->type = JSON_TRUE; break;
    case 'f': v->type = JSON_FALSE; break;
    case 'n': v->type = JSON_NULL; break;
    default: {
        /* Most numbers are short integers: up to 18 digits then a delimiter are
         * exact in m (the value and double hr_json_number gives them). */
        size_t n = pos + (c[pos] == '-'), d0 = n;
        uint64_t m = 0;
        while (n < len && n - d0 < 18 && (unsigned)(c[n] - '0') < 10)
            m = m * 10 + (uint64_t)(c[n++] - '0');
        if (n > d0 && n < len && (c[n] == ',' || c[n] == '}' || c[n] == ']')) {
            int64_t iv = c[pos] == '-' ? -(int64_t)m : (int64_t)m;
            v->type = JSON_INTEGER;
            v->i = iv;
            v->d = (double)iv;
            return n;
        }
        n = pos;
        while (n < len && ((unsigned)(c[n] - '0') < 10 || c[n] == '-' || c[n] == '+' ||
                           c[n] == '.' || c[n] == 'e' || c[n] == 'E'))
            n++;
        v->type = hr_json_number(c + pos, n - pos, &v->i, &v->d) ? JSON_INTEGER : JSON_REAL;
        if (n < len && (c[n] == ',' || c[n] == '}' || c[n] == ']'))
            return n; /* the delimiter right after the digits: no second look */
        break;
    }
    }
    /* Literals and numbers end at the delimiter (a NUL byte jansson drops may precede it). */
    return hr_sc_skip_value(c, len, pos);
}


/* k-th smallest (Hoare quickselect, middle pivot: deterministic, O(n) on typical data). */
static double select_kth(double *v, size_t n, size_t k)
{
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        double pivot = v[lo + (hi - lo) / 2];
        size_t i = lo, j = hi;
        while (i <= j) {
            while (v[i] < pivot)
                i++;
            while (v[j] > pivot)
                j--;
            if (i <= j) {
                double x = v[i];
                v[i] = v[j];
                v[j] = x;
                i++;
                if (j == 0)
                    break;
                j--;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            break;
    }
    return v[k];
}

static double median_of(double *v, size_t n)
{
    double hi = select_kth(v, n, n / 2);
    if (n % 2)
        return hi;
    /* After the select, everything left of n/2 is <= v[n/2]: the lower middle is their max. */
    double lo = v[0];
    for (size_t i = 1; i < n / 2; i++)
        if (v[i] > lo)
            lo = v[i];
    return (lo + hi) / 2;
}

/* Modified z-score (Iglewicz & Hoaglin): |x - median| / (MAD / 0.6745); when more than
 * half the values are equal the MAD is 0 and the mean absolute deviation stands in.
 * `nums`/`rows`: the field's m values in one schema group of `size` rows. */
static int numeric_stats(struct hr_sc_table *t, struct hr_sc_field *f, const double *nums,
                         const uint32_t *rows, size_t m, size_t size)
{
    if (m < 8 || m * 2 < size || f->cls == HR_SC_F_ID || f->cls == HR_SC_F_RELEVANCE)
        return 0;
    int increasing = 1;
    for (size_t i = 1; i < m && increasing; i++)
        if (!(nums[i] > nums[i - 1]))
            increasing = 0;
    if (increasing)
        return 0; /* a sequence (ids, offsets, timestamps in order) has no outliers */
    double *tmp = malloc(m * sizeof *tmp);
    if (!tmp)
        return -1;
    memcpy(tmp, nums, m * sizeof *tmp);
    double med = median_of(tmp, m);
    double mean_ad = 0;
    for (size_t i = 0; i < m; i++) {
        tmp[i] = fabs(nums[i] - med);
        mean_ad += tmp[i];
    }
    mean_ad /= (double)m;
    double mad = median_of(tmp, m);
    free(tmp);
    double scale = mad > 0 ? mad / 0.6745 : mean_ad * 1.253314;
    if (!(scale > 0) || !isfinite(scale))
        return 0;
    f->median = med;
    f->scale = scale;
    /* Heavy-tailed values (sizes, counts: more than a tenth of them beyond 3.5
     * deviations) are the distribution itself, not anomalies: none is an outlier. */
    size_t far = 0;
    for (size_t i = 0; i < m; i++)
        far += fabs(nums[i] - med) / scale > 3.5;
    if (far * 10 > m)
        return 0;
    for (size_t i = 0; i < m; i++) {
        double z = fabs(nums[i] - med) / scale;
        struct hr_sc_row *r = &t->rows[rows[i]];
        if (z > 3.5 && z > r->z) {
            r->z = z > 1e30 ? 1e30f : (float)z;
            r->z_field = (uint16_t)(f - t->fields);
        }
    }
    return 0;
}

/* A row byte-identical to an earlier one is a duplicate: an open-addressing
 * set of the first rows of each text, by row hash (filled in by the walk). */
static int mark_duplicates(struct hr_sc_table *t)
{
    size_t slots = 16;
    while (slots < t->n * 2)
        slots *= 2;
    uint32_t *set = calloc(slots, sizeof *set); /* row index + 1, 0 = empty */
    if (!set)
        return -1;
    for (size_t i = 0; i < t->n; i++) {
        struct hr_sc_row *r = &t->rows[i];
        size_t s = (size_t)(r->hash ^ (r->hash >> 31)) & (slots - 1);
        for (;; s = (s + 1) & (slots - 1)) {
            if (!set[s]) {
                set[s] = (uint32_t)i + 1;
                break;
            }
            const struct hr_sc_row *o = &t->rows[set[s] - 1];
            if (o->hash == r->hash && o->len == r->len && memcmp(t->text + o->off, t->text + r->off, r->len) == 0) {
                r->dup = 1;
                t->n_dups++;
                break;
            }
        }
    }
    free(set);
    return 0;
}

/* The relevance field: a top-level score-like field that is numeric in most
 * rows (the most such rows wins; on a tie, the earlier name in the list).
 * Its values were recorded by the walk like any number's. */
static void pick_relevance(struct hr_sc_table *t)
{
    static const char *const rel[] = {"score", "_score", "relevance", "relevance_score",
        "match_score", "similarity", "similarity_score", "search_score", NULL};
    size_t best = 0;
    for (size_t r = 0; rel[r]; r++)
        for (size_t fi = 0; fi < t->n_fields; fi++) {
            const struct hr_sc_field *f = &t->fields[fi];
            if (strcmp(f->path, rel[r]) == 0 && f->num_count * 2 > t->n && f->num_count > best) {
                best = f->num_count;
                t->rel_field = (int32_t)fi;
            }
        }
    if (t->rel_field < 0)
        return;
    const struct hr_sc_field *f = &t->fields[t->rel_field];
    for (size_t k = 0; k < f->num_count; k++) {
        t->rows[f->num_rows[k]].rel = f->nums[k];
        t->rows[f->num_rows[k]].has_rel = 1;
    }
}

/* A row's hash, for duplicate detection alone (which compares the bytes of rows
 * whose hashes match): one multiply per 8 bytes, mixed once at the end. */
static uint64_t row_hash(const char *p, size_t len)
{
    uint64_t h = len * 0x9e3779b97f4a7c15ULL, x;
    for (; len >= 8; p += 8, len -= 8) {
        memcpy(&x, p, 8);
        h = (h ^ x) * 0xd6e8feb86659fd93ULL;
        h ^= h >> 29;
    }
    x = 0;
    memcpy(&x, p, len);
    return hr_mix64(h ^ x);
}

/* Visit every member of row `i`, the object opening at c[start], and the members of
 * object members one level down as "parent.child", in text order (jansson's order for
 * duplicate-free objects). Records the row's span and hash; returns the position just
 * past the row, or 0 when the text is not an object there. */
static size_t walk_row(struct walk *w, size_t i, size_t start)
{
    const char *c = w->t->text;
    char path[256];
    if (start >= w->clen || c[start] != '{')
        return 0;
    size_t pos = start + 1;
    w->seq = 0;
    while (c[pos] == '"') {
        const char *k;
        size_t kl;
        struct val v;
        /* Rows repeat one key order: when the key is, byte for byte, the field
         * seen at this position in the previous row, and that name holds no
         * backslash (so the key has no escape), it needs no skip or decode. */
        uint16_t pf = w->seq < 64 ? w->pred[w->seq] : 0;
        const struct hr_sc_field *f = pf ? &w->t->fields[pf - 1] : NULL;
        size_t fl = f ? w->plen[pf - 1] : 0;
        if (f && !w->esc[pf - 1] && pos + fl + 2 < w->clen && c[pos + 1 + fl] == '"' && c[pos + 2 + fl] == ':' &&
            memcmp(c + pos + 1, f->path, fl) == 0) {
            k = c + pos + 1;
            kl = fl;
            pos += fl + 3;
            w->known = 1;
        } else {
            pos = read_key(w, &w->skey, pos, &k, &kl);
        }
        size_t vpos = pos;
        /* an object one level down is walked member by member: its end is found there */
        int nest = c[vpos] == '{' && kl + 2 < sizeof path;
        pos = read_value(w, vpos, &v, nest);
        visit(w, i, k, kl, &v);
        if (nest) {
            memcpy(path, k, kl);
            path[kl] = '.';
            size_t p2 = vpos + 1;
            while (c[p2] == '"') {
                const char *k2;
                size_t k2l;
                struct val v2;
                p2 = read_key(w, &w->skey2, p2, &k2, &k2l);
                p2 = read_value(w, p2, &v2, 0);
                if (kl + 1 + k2l < sizeof path) {
                    memcpy(path + kl + 1, k2, k2l);
                    path[kl + 1 + k2l] = '\0';
                    visit(w, i, path, kl + 1 + k2l, &v2);
                }
                if (c[p2] == ',')
                    p2++;
            }
            pos = p2 < w->clen && c[p2] == '}' ? p2 + 1 : hr_sc_skip_value(c, w->clen, vpos);
        }
        if (c[pos] == ',')
            pos++;
    }
    if (pos >= w->clen || c[pos] != '}' || pos + 1 - start > UINT32_MAX || start > UINT32_MAX)
        return 0;
    struct hr_sc_row *r = &w->t->rows[i];
    r->off = (uint32_t)start;
    r->len = (uint32_t)(pos + 1 - start);
    r->hash = row_hash(c + start, r->len);
    return pos + 1;
}

static int popcount_words(const uint64_t *a, const uint64_t *b, int and)
{
    int n = 0;
    for (size_t k = 0; k < KEY_WORDS; k++)
        n += __builtin_popcountll(and ? a[k] & b[k] : a[k] | b[k]);
    return n;
}

/* Key sets alike: Jaccard similarity >= 1/2 (an optional field or two does not split
 * a schema; orders and customers in one result set are two). */
static int alike(const uint64_t *a, const uint64_t *b)
{
    int u = popcount_words(a, b, 0);
    return u == 0 || 2 * popcount_words(a, b, 1) >= u;
}

struct kset { uint32_t first, count; };

static int cmp_kset(const void *a, const void *b)
{
    const struct kset *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return (x->first > y->first) - (x->first < y->first);
}

/* Schema groups: distinct key sets, most common first, each joining the first group
 * whose founding key set it is alike to. More than HR_SC_MAX_SCHEMAS distinct key sets
 * means no shared schema to speak of: one group. */
static int group_rows(struct hr_sc_table *t, const uint64_t *keys)
{
    struct kset sets[HR_SC_MAX_SCHEMAS];
    uint16_t set_group[HR_SC_MAX_SCHEMAS];
    uint32_t base[HR_SC_MAX_SCHEMAS]; /* founding row of each group */
    size_t ns = 0, ng = 0;
    uint8_t *set_of = malloc(t->n);
    t->groups = calloc(HR_SC_MAX_SCHEMAS, sizeof *t->groups);
    if (!set_of || !t->groups) {
        free(set_of);
        return -1;
    }
    for (size_t i = 0; i < t->n && ns <= HR_SC_MAX_SCHEMAS; i++) {
        const uint64_t *k = keys + i * KEY_WORDS;
        size_t j = 0;
        while (j < ns && memcmp(keys + (size_t)sets[j].first * KEY_WORDS, k, KEY_WORDS * sizeof *k))
            j++;
        if (j == ns) {
            if (ns == HR_SC_MAX_SCHEMAS) {
                ns++; /* too many: give up grouping */
                break;
            }
            sets[ns++] = (struct kset){(uint32_t)i, 0};
        }
        sets[j].count++;
        set_of[i] = (uint8_t)j;
    }
    if (ns > HR_SC_MAX_SCHEMAS || ns <= 1) {
        free(set_of);
        for (size_t i = 0; i < t->n; i++)
            t->rows[i].group = 0;
        t->groups[0] = (struct hr_sc_group){(uint32_t)t->n, 0, (uint32_t)(t->n - 1)};
        t->n_groups = 1;
        return 0;
    }
    struct kset sorted[HR_SC_MAX_SCHEMAS];
    memcpy(sorted, sets, ns * sizeof *sets);
    qsort(sorted, ns, sizeof *sorted, cmp_kset);
    for (size_t a = 0; a < ns; a++) {
        const uint64_t *k = keys + (size_t)sorted[a].first * KEY_WORDS;
        size_t g = 0;
        while (g < ng && !alike(keys + (size_t)base[g] * KEY_WORDS, k))
            g++;
        if (g == ng)
            base[ng++] = sorted[a].first;
        for (size_t j = 0; j < ns; j++)
            if (sets[j].first == sorted[a].first)
                set_group[j] = (uint16_t)g;
    }
    /* Number groups by first row so the output does not depend on the sort's ties. */
    uint16_t renum[HR_SC_MAX_SCHEMAS];
    for (size_t g = 0; g < ng; g++)
        renum[g] = UINT16_MAX;
    uint16_t next = 0;
    for (size_t i = 0; i < t->n; i++) {
        uint16_t g = set_group[set_of[i]];
        if (renum[g] == UINT16_MAX) {
            renum[g] = next++;
            t->groups[renum[g]].first = (uint32_t)i;
        }
        struct hr_sc_group *gr = &t->groups[renum[g]];
        t->rows[i].group = renum[g];
        gr->count++;
        gr->last = (uint32_t)i;
    }
    t->n_groups = ng;
    free(set_of);
    return 0;
}

/* Numeric outliers per field within each schema group: a field shared by two schemas
 * is judged against its own schema's values. */
static int outliers(struct hr_sc_table *t, struct hr_sc_field *f)
{
    if (t->n_groups == 1)
        return numeric_stats(t, f, f->nums, f->num_rows, f->num_count, t->n);
    size_t m = f->num_count;
    if (m < 8)
        return 0;
    double *nums = malloc(m * sizeof *nums);
    uint32_t *rows = malloc(m * sizeof *rows);
    int rc = nums && rows ? 0 : -1;
    for (size_t g = 0; g < t->n_groups && rc == 0; g++) {
        size_t k = 0;
        for (size_t i = 0; i < m; i++)
            if (t->rows[f->num_rows[i]].group == g) {
                nums[k] = f->nums[i];
                rows[k++] = f->num_rows[i];
            }
        rc = numeric_stats(t, f, nums, rows, k, t->groups[g].count);
    }
    free(nums);
    free(rows);
    return rc;
}

/* Per schema group: error keywords that are not the group's vocabulary, and rare fields
 * (in at most 5 % of the group's rows, not in all) whose rows are needles unless the
 * group is heterogeneous (more than a tenth of its rows carry one). */
static int group_signals(struct hr_sc_table *t, const uint64_t *keys)
{
    size_t nf = t->n_fields, ng = t->n_groups;
    uint32_t *cnt = calloc(ng * nf + 1, sizeof *cnt), *kw = calloc(ng * 64, sizeof *kw);
    uint32_t *needles = calloc(ng, sizeof *needles);
    if (!cnt || !kw || !needles) {
        free(cnt), free(kw), free(needles);
        return -1;
    }
    for (size_t i = 0; i < t->n; i++) {
        const struct hr_sc_row *r = &t->rows[i];
        const uint64_t *k = keys + i * KEY_WORDS;
        for (size_t wd = 0; wd < KEY_WORDS; wd++)
            for (uint64_t m = k[wd]; m; m &= m - 1)
                cnt[r->group * nf + wd * 64 + (size_t)__builtin_ctzll(m)]++;
        for (uint64_t m = r->kw_mask; m; m &= m - 1)
            kw[r->group * 64 + (size_t)__builtin_ctzll(m)]++;
    }
    for (size_t i = 0; i < t->n; i++) {
        struct hr_sc_row *r = &t->rows[i];
        size_t size = t->groups[r->group].count;
        if (r->maybe_4xx && r->err < 2) { /* a 4xx "state" or "result": the status of a request? */
            const uint64_t *k = keys + i * KEY_WORDS;
            for (size_t wd = 0; wd < KEY_WORDS && r->err < 2; wd++)
                for (uint64_t m = k[wd]; m; m &= m - 1)
                    if (t->fields[wd * 64 + (size_t)__builtin_ctzll(m)].req) {
                        r->err = 2;
                        break;
                    }
        }
        if (r->kw_mask && r->err == 0)
            for (size_t fi = 0; fi < nf; fi++) {
                size_t b = fi < 63 ? fi : 63;
                if (!(r->kw_mask & (1ULL << b)))
                    continue;
                /* A keyword in a tenth of the group's rows is vocabulary, not a signal. */
                int ok = b < 63 ? (size_t)kw[r->group * 64 + b] * 10 <= size : t->fields[fi].kw_ok;
                if (ok) {
                    r->err = 1;
                    break;
                }
            }
        size_t cap = size / 20 > 1 ? size / 20 : 1;
        const uint64_t *k = keys + i * KEY_WORDS;
        /* the first rare field it carries, by field index */
        for (size_t wd = 0; wd < KEY_WORDS && !r->needle; wd++)
            for (uint64_t m = k[wd]; m && !r->needle; m &= m - 1) {
                size_t fi = wd * 64 + (size_t)__builtin_ctzll(m);
                uint32_t c = cnt[r->group * nf + fi];
                if (c <= cap && c < size) {
                    r->needle = 1;
                    r->rare_field = (uint16_t)fi;
                    needles[r->group]++;
                }
            }
    }
    t->needles_on = 0;
    for (size_t i = 0; i < t->n; i++) {
        struct hr_sc_row *r = &t->rows[i];
        size_t size = t->groups[r->group].count, limit = size / 10 > 2 ? size / 10 : 2;
        if (needles[r->group] > limit)
            r->needle = 0;
        t->needles_on |= r->needle;
    }
    free(cnt), free(kw), free(needles);
    return 0;
}

int hr_sc_analyse(struct hr_sc_table *t, size_t text_len, size_t apos, size_t *aend)
{
    struct walk *w = calloc(1, sizeof *w);
    if (!w)
        return -1;
    w->t = t;
    w->clen = text_len;
    t->fields = calloc(HR_SC_MAX_FIELDS, sizeof *t->fields);
    uint64_t *keys = calloc(t->n * KEY_WORDS, sizeof *keys);
    if (!t->fields || !keys) {
        free(keys);
        free(w);
        return -1;
    }
    w->keys = keys;
    t->rel_field = -1;
    /* The rows of the array opening at text[apos], one after the other. */
    const char *c = t->text;
    size_t pos = apos < text_len && c[apos] == '[' ? apos + 1 : 0;
    for (size_t i = 0; i < t->n && pos && !w->failed; i++) {
        pos = walk_row(w, i, pos);
        if (pos && pos < text_len && c[pos] == (i + 1 < t->n ? ',' : ']'))
            pos++;
        else
            pos = 0;
    }
    free(w->skey.p);
    free(w->skey2.p);
    free(w->sval.p);
    int failed = w->failed;
    free(w);
    if (!failed && !pos) {
        free(keys);
        return -2; /* the rows are not where the scan counted them */
    }
    *aend = pos;
    if (failed || group_rows(t, keys)) {
        free(keys);
        return -1;
    }
    pick_relevance(t);
    for (size_t fi = 0; fi < t->n_fields; fi++) {
        struct hr_sc_field *f = &t->fields[fi];
        if (outliers(t, f)) {
            free(keys);
            return -1;
        }
        f->kw_ok = f->kw_hits > 0 && (size_t)f->kw_hits * 10 <= t->n;
    }
    int rc = group_signals(t, keys);
    free(keys);
    return rc ? rc : mark_duplicates(t);
}

void hr_sc_table_free(struct hr_sc_table *t)
{
    if (t->fields) {
        for (size_t i = 0; i < t->n_fields; i++) {
            free(t->fields[i].path);
            free(t->fields[i].nums);
            free(t->fields[i].num_rows);
        }
        free(t->fields);
    }
    free(t->groups);
    free(t->rows);
    memset(t, 0, sizeof *t);
}
