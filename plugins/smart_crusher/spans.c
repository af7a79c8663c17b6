/* spans.c — byte-level helpers over already-validated JSON text: whitespace removal,
 * value skipping and a fast non-cryptographic hash. Working on
 * the original bytes keeps numbers and escapes exactly as the client sent them. */
#include <string.h>
#include "crush.h"
#include "hash.h"
#include "json_scan.h"

/* Drop whitespace outside strings. `out` must hold `len` bytes. The input must be
 * valid JSON (it was parsed before), so no error handling is needed here. */
size_t hr_sc_compact(const char *in, size_t len, char *out)
{
    size_t o = 0;
    size_t i = 0;
    while (i < len) {
        char ch = in[i];
        if (ch == '"') {
            size_t s = i++;
            while (i < len && in[i] != '"') {
                if (in[i] == '\\' && i + 1 < len)
                    i++;
                i++;
            }
            if (i < len)
                i++;
            memcpy(out + o, in + s, i - s);
            o += i - s;
        } else {
            if (ch != ' ' && ch != '\n' && ch != '\r' && ch != '\t')
                out[o++] = ch;
            i++;
        }
    }
    return o;
}

/* Position just past the value starting at `pos` in compacted text. */
size_t hr_sc_skip_value(const char *c, size_t len, size_t pos)
{
    if (pos >= len)
        return len;
    if (c[pos] == '"') {
        /* memchr to the next quote, then count the backslashes before it. */
        size_t p = pos + 1;
        for (;;) {
            const char *q = p < len ? memchr(c + p, '"', len - p) : NULL;
            if (!q)
                return len;
            size_t at = (size_t)(q - c), bs = 0;
            while (at - bs > pos + 1 && c[at - bs - 1] == '\\')
                bs++;
            if (bs % 2 == 0)
                return at + 1;
            p = at + 1;
        }
    }
    if (c[pos] == '{' || c[pos] == '[') {
        int depth = 0;
        while (pos < len) {
            char ch = c[pos];
            if (ch == '"') {
                pos = hr_sc_skip_value(c, len, pos);
                continue;
            }
            if (ch == '{' || ch == '[')
                depth++;
            else if (ch == '}' || ch == ']') {
                if (--depth == 0)
                    return pos + 1;
            }
            pos++;
        }
        return len;
    }
    while (pos < len && c[pos] != ',' && c[pos] != ']' && c[pos] != '}')
        pos++;
    return pos;
}

/* The end of the string opening at c[pos], found by lib/json_scan's block
 * scan; *plain = 1 when its body holds no escape (the body is its text). */
size_t hr_sc_skip_string(const char *c, size_t len, size_t pos, int *plain)
{
    int esc = 0;
    size_t body = hr_json_span(c + pos + 1, len - pos - 1, &esc);
    *plain = !esc;
    return pos + 1 + body + 1;
}

/* 8 bytes per step; deterministic across runs and hosts (no random seed) so that
 * duplicate detection and ordering never depend on the process. */
uint64_t hr_sc_hash(const void *data, size_t len, uint64_t seed)
{
    const unsigned char *p = data;
    uint64_t h = seed ^ (len * 0x9e3779b97f4a7c15ULL);
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ hr_mix64(w)) * 0x9e3779b97f4a7c15ULL;
        p += 8;
        len -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, p, len);
    h = (h ^ hr_mix64(w ^ len)) * 0x9e3779b97f4a7c15ULL;
    return hr_mix64(h);
}
