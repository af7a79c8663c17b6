/* json_dump.c — serialise a changed request body as
 * json_dumps(body, JSON_COMPACT) does, faster: plain ASCII in strings is
 * copied 16 bytes at a time where jansson decodes every codepoint and hands
 * each run to a callback. Numbers are the one difference: as the client
 * spelled them (json_load.h), else, for reals, the shortest text that reads
 * back to the same double (0.7, not jansson's 0.69999999999999996). Whatever this file does not write itself (invalid
 * UTF-8, trees too deep) comes from jansson, so the bytes are its. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include "json_dump.h"
#include "json_load.h"
#include "json_scan.h"

/* Deeper than any parsed body (2048): only a cycle, which jansson refuses. */
#define MAX_DEPTH 4096

struct out {
    char *b;
    size_t n, cap;
    int spelled; /* a tree this thread loaded holds client spellings (json_load.h): look each number up */
};

static int room(struct out *o, size_t more)
{
    if (o->cap - o->n >= more) return 0;
    size_t cap = o->cap * 2 > o->n + more ? o->cap * 2 : o->n + more;
    char *b = realloc(o->b, cap);
    if (!b) return -1;
    o->b = b;
    o->cap = cap;
    return 0;
}

static int put(struct out *o, const char *s, size_t n)
{
    if (room(o, n)) return -1;
    memcpy(o->b + o->n, s, n);
    o->n += n;
    return 0;
}

/* Bytes in the valid UTF-8 sequence at p, by jansson's rules (no overlong
 * form, no surrogate, nothing past U+10FFFF); 0 when it is not one. */
static size_t utf8_len(const unsigned char *p, size_t avail)
{
    unsigned c = p[0], cp, min;
    size_t n;
    if (c < 0xC2) return 0; /* a continuation byte, or an overlong lead */
    if (c < 0xE0) n = 2, cp = c & 0x1F, min = 0x80;
    else if (c < 0xF0) n = 3, cp = c & 0x0F, min = 0x800;
    else if (c < 0xF5) n = 4, cp = c & 0x07, min = 0x10000;
    else return 0;
    if (avail < n) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (p[i] & 0x3F);
    }
    return cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) ? 0 : n;
}

/* How many bytes from s on need no escape and are ASCII. */
static inline size_t plain_run(const unsigned char *s, size_t len)
{
    size_t i = 0;
#ifdef __SSE2__
    const __m128i space = _mm_set1_epi8(0x20), quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
    for (; i + 16 <= len; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(s + i));
        /* signed: bytes from 0x80 are negative, so below 0x20 as well */
        __m128i special = _mm_or_si128(_mm_cmplt_epi8(v, space),
                                       _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)));
        unsigned m = (unsigned)_mm_movemask_epi8(special);
        if (m) return i + (size_t)__builtin_ctz(m);
    }
#endif
    while (i < len && s[i] >= 0x20 && s[i] < 0x80 && s[i] != '"' && s[i] != '\\') i++;
    return i;
}

/* A string as jansson writes it without JSON_ENSURE_ASCII or
 * JSON_ESCAPE_SLASH: quote, backslash and controls escaped, the rest as is.
 * -1 on invalid UTF-8 (jansson fails too) or out of memory. */
static int put_string(struct out *o, const char *str, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *s = (const unsigned char *)str;
    if (room(o, len + 2)) return -1;
    o->b[o->n++] = '"';
    size_t i = 0;
    while (i < len) {
        size_t k = plain_run(s + i, len - i);
        memcpy(o->b + o->n, s + i, k); /* room was made for the whole text */
        o->n += k;
        i += k;
        if (i == len) break;
        unsigned c = s[i];
        if (c >= 0x80) {
            size_t n = utf8_len(s + i, len - i);
            if (!n) return -1;
            memcpy(o->b + o->n, s + i, n);
            o->n += n;
            i += n;
            continue;
        }
        /* an escape: up to 6 bytes for 1, and the rest still fits */
        if (room(o, 6 + (len - i) + 1)) return -1;
        char *w = o->b + o->n;
        const char *named = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\b' ? "\\b" : c == '\f' ? "\\f"
                          : c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : NULL;
        if (named) {
            memcpy(w, named, 2);
            o->n += 2;
        } else { /* \u00XX, upper-case as jansson's %04X */
            memcpy(w, "\\u00", 4);
            w[4] = hex[c >> 4];
            w[5] = hex[c & 15];
            o->n += 6;
        }
        i++;
    }
    o->b[o->n++] = '"';
    return 0;
}

static size_t real_text(const json_t *v, char *buf, size_t size)
{
    double d = json_real_value(v);
    size_t k = 0;
    /* %.15g first: what a client wrote as 0.7 prints as 0.7, where jansson's
     * %.17g says 0.69999999999999996 (the same double, different bytes in a
     * provider's logs or a cache keyed on them). A normal double's shortest
     * text of 15 digits or fewer is what %.15g prints (DBL_DIG is 15), so
     * this is the shortest but for rare 16-digit cases. jansson still
     * formats each try (".0" on integral values, exponent without '+' or
     * leading zeros); the first whose text reads back to the same bits wins
     * (-0.0 included); %.17g always does. */
    /* A subnormal has fewer digits of precision: its shortest may be fewer
     * than 15 digits that %.15g pads out (5e-324, not 4.94065645841247e-324). */
    for (int prec = fpclassify(d) == FP_SUBNORMAL ? 1 : 15; prec <= 17; prec++) {
        k = json_dumpb(v, buf, size, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(prec));
        if (!k || k > size) {
            k = 0;
            break;
        }
        int64_t iv;
        double back;
        if (prec == 17 || (!hr_json_number(buf, k, &iv, &back) && !memcmp(&back, &d, sizeof d))) break;
    }
    return k;
}

size_t hr_json_real_text(double d, char *buf, size_t size)
{
    json_t *v = json_real(d);
    size_t k = v ? real_text(v, buf, size) : 0;
    json_decref(v);
    return k;
}

static int put_value(struct out *o, const json_t *v, int depth)
{
    if (depth > MAX_DEPTH) return -1;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        if (put(o, "{", 1)) return -1;
        int first = 1;
        for (void *it = json_object_iter((json_t *)v); it; it = json_object_iter_next((json_t *)v, it)) {
            if (!first && put(o, ",", 1)) return -1;
            first = 0;
            if (put_string(o, json_object_iter_key(it), json_object_iter_key_len(it)) || put(o, ":", 1) ||
                put_value(o, json_object_iter_value(it), depth + 1))
                return -1;
        }
        return put(o, "}", 1);
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        if (put(o, "[", 1)) return -1;
        for (size_t i = 0; i < n; i++)
            if ((i && put(o, ",", 1)) || put_value(o, json_array_get(v, i), depth + 1)) return -1;
        return put(o, "]", 1);
    }
    case JSON_STRING: return put_string(o, json_string_value(v), json_string_length(v));
    case JSON_INTEGER: {
        const char *text;
        size_t tl;
        if (o->spelled && (text = hr_json_spelling(v, &tl))) return put(o, text, tl); /* -0 */
        char num[32];
        int k = snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return k > 0 && (size_t)k < sizeof num ? put(o, num, (size_t)k) : -1;
    }
    case JSON_REAL: { /* as the client wrote it (1e-05 stays 1e-05), else the shortest */
        const char *text;
        size_t tl;
        if (o->spelled && (text = hr_json_spelling(v, &tl))) return put(o, text, tl);
        char num[64];
        size_t k = real_text(v, num, sizeof num);
        return k ? put(o, num, k) : -1;
    }
    case JSON_TRUE: return put(o, "true", 4);
    case JSON_FALSE: return put(o, "false", 5);
    case JSON_NULL: return put(o, "null", 4);
    default: return -1;
    }
}

char *hr_json_dump_compact(const json_t *root, size_t *len)
{
    struct out o = {NULL, 0, 0, 0};
    if (json_is_object(root) || json_is_array(root)) {
        o.cap = 4096;
        o.b = malloc(o.cap);
        o.spelled = o.b && hr_json_spellings_live();
        int rc = o.b ? put_value(&o, root, 0) : -1;
        if (rc == 0 && put(&o, "", 1) == 0) {
            *len = o.n - 1;
            return o.b;
        }
        free(o.b);
    }
    /* Not written here: jansson decides (its NULL included). */
    char *text = json_dumps(root, JSON_COMPACT);
    *len = text ? strlen(text) : 0;
    return text;
}
