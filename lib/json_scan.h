/* json_scan.h — a single-pass validating JSON scanner that accepts exactly what
 * jansson's json_loadb() accepts, without building a tree, plus decoders for text it
 * accepted. Compiled into each plugin that uses it (plugins link only jansson + libc). */
#ifndef HR_JSON_SCAN_H
#define HR_JSON_SCAN_H

#include <stddef.h>
#include <stdint.h>

#define HR_JSON_MAX_DEPTH 2048 /* jansson's JSON_PARSER_MAX_DEPTH */

/* Flags of hr_json_scan(). */
enum {
    HR_JSON_REJECT_DUPLICATES = 1u << 0, /* as jansson's JSON_REJECT_DUPLICATES */
    /* Ours, not jansson's: an integer beyond int64 (valid JSON, which jansson
     * refuses: "too big integer") is accepted, up to 308 digits (a double's
     * range). hr_json_number then gives it as a real. */
    HR_JSON_BIG_INTEGERS = 1u << 1,
};

struct hr_json_info {
    char root;          /* '[' or '{' */
    /* The largest non-empty array whose elements are all objects, when that array is
     * the root itself, or a member of the root object (the first of equal size wins):
     * the "rows" smart_crusher works on. 0 when there is none. */
    size_t rows;
    size_t rows_member; /* its member index in the root object; 0 when it is the root */
    int whitespace;     /* whitespace outside strings: the text is not compact */
};

struct hr_json_error {
    size_t pos;         /* byte offset where the text stopped being acceptable */
    const char *msg;    /* static text, e.g. "invalid UTF-8 in string" */
};

/* Validate `len` bytes as one JSON array or object, with optional whitespace around it
 * (jansson's json_loadb with flags 0, or JSON_REJECT_DUPLICATES). Accepts what jansson
 * accepts: RFC 8259 syntax, strict UTF-8, no \u0000, paired surrogate escapes,
 * integers within int64, reals that do not overflow a double, nesting depth at most
 * HR_JSON_MAX_DEPTH. `info` and `err` may be NULL.
 * Returns 0, -22 (not acceptable; `err` says where and why) or -12 (out of memory). */
int hr_json_scan(const char *text, size_t len, unsigned flags, struct hr_json_info *info,
                 struct hr_json_error *err);

/* Value strings with escapes, decoded by the pass that validates them
 * (hr_json_scan_decode). Keep one across calls: the buffers are reused. */
struct hr_json_decoded_string {
    const char *at;     /* the body in the text (just past the opening quote) */
    size_t raw_len;     /* the body's length in the text */
    size_t off, len;    /* the decoded text: buf + off, len bytes, NUL-terminated */
};
struct hr_json_decoded {
    char *buf;
    size_t used, cap;
    struct hr_json_decoded_string *v; /* in the order of the text */
    size_t n, cap_v;
    int failed;         /* out of memory: strings from there on are not in v */
};

/* hr_json_scan(text, len, flags, NULL, NULL), and every value string (not
 * key) that holds an escape decoded into `d` on the way (what is already
 * there is dropped). Same return. */
int hr_json_scan_decode(const char *text, size_t len, unsigned flags, struct hr_json_decoded *d);

/* Decode the body of a string (between its quotes) that hr_json_scan accepted into
 * `out`, which must hold `len` bytes (decoding never grows). Returns the decoded length. */
size_t hr_json_unescape(const char *s, size_t len, char *out);

/* Length of the body of a string that hr_json_scan accepted, `s` just past its
 * opening quote and `avail` bytes readable there: the offset of the closing
 * quote (avail when there is none). *esc is set to 1 when the body holds an
 * escape, and left as it was otherwise. */
size_t hr_json_span(const char *s, size_t avail, int *esc);

/* The decoded text of a string body that hr_json_scan accepted: the body
 * itself when it holds no escape, else decoded (and NUL-terminated) into
 * *buf, which grows with realloc (*cap is its size). NULL when out of memory. */
const char *hr_json_string(const char *s, size_t len, char **buf, size_t *cap, size_t *out_len);

/* The string whose body starts at `s` (just past its opening quote) in text
 * hr_json_scan accepted, `avail` bytes readable there, decoded in one pass:
 * the body itself when it holds no escape, else decoded (and NUL-terminated)
 * into *buf, which grows with realloc (*cap is its size). *raw_len is the
 * offset of the closing quote, *out_len the decoded length. NULL when out
 * of memory (*raw_len still set). */
const char *hr_json_read_string(const char *s, size_t avail, char **buf, size_t *cap, size_t *raw_len,
                                size_t *out_len);

/* 1 when the n bytes at v are a JSON string that holds no escape and that
 * jansson takes as it is (quoted, no control character, valid UTF-8): its
 * text is then v[1, n - 1). 0 for anything else, which the caller parses. */
int hr_json_plain_string(const char *v, size_t n);

/* Value of a number that hr_json_scan accepted, `len` bytes at `s`. Returns 1 for an
 * integer (no '.', 'e', 'E': *iv set, and *dv = (double)*iv as jansson's
 * json_number_value), 0 for a real (*dv set exactly as strtod in the C locale)
 * or an integer beyond int64 (HR_JSON_BIG_INTEGERS: *dv its nearest double). */
int hr_json_number(const char *s, size_t len, int64_t *iv, double *dv);

/* The value of the root object's member `key` (the last of that name, as
 * jansson keeps): *val points at its first byte, *vlen spans it. Skims without
 * validating, so parse the value itself before trusting it; a key written
 * with escapes is not recognised. Returns 1 when found, 0 when not (or the
 * root is not an object, or the text ends early). */
int hr_json_member(const char *text, size_t len, const char *key, const char **val, size_t *vlen);
/* The same for n keys in one pass: vals[k] (NULL when absent) and vlens[k].
 * Returns how many were found (0 as well when the root is not a whole object). */
size_t hr_json_members(const char *text, size_t len, const char *const *keys, size_t n, const char **vals,
                       size_t *vlens);

/* The root object's members in order, skimmed as hr_json_member does: the
 * first `max` go to out, *n says how many there are. Returns 0, or -1 (and
 * *n = 0) when the text is not a whole object. */
struct hr_json_span {
    const char *key; /* as written: a key with escapes is not decoded */
    size_t klen;
    const char *val;
    size_t vlen;
};
int hr_json_member_list(const char *text, size_t len, struct hr_json_span *out, size_t max, size_t *n);

/* hr_json_scan(text, len, 0, NULL, NULL), and when the root is an object its
 * members listed as hr_json_member_list lists them, in the same pass: one
 * read of the text where a check and then a skim would take two. *n is 0
 * unless the text is accepted. Same return as hr_json_scan. */
int hr_json_scan_members(const char *text, size_t len, struct hr_json_span *out, size_t max, size_t *n);

/* The same member, read from whichever end of the root reaches it first: a
 * request's "model" comes before or after a megabyte of "messages" depending
 * on the client, and only the members between it and the nearer end are
 * skimmed (when long members sit at both ends, up to 84 KB of each, then the
 * rest once from the front: never much more than hr_json_member). Checks
 * only that the text starts with '{' and ends with '}' and that the members
 * it reads are shaped as members; when the key appears twice, either value
 * may be returned. */
int hr_json_member_near(const char *text, size_t len, const char *key, const char **val, size_t *vlen);

#endif
