/* h1_parse.c — RFC 9112 answers as an upstream sends them. Strict where a
 * lenient reading would let a broken or hostile upstream smuggle a second
 * answer (conflicting lengths, bad chunk sizes), lenient where real servers
 * differ harmlessly (bare LF line ends, a missing reason phrase). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "h1_parse.h"
#include "hex.h"

void hr_h1_head_clear(struct hr_h1_head *h)
{
    free(h->headers);
    free(h->arena);
    memset(h, 0, sizeof *h);
    h->content_length = -1;
}

/* The length of the head (through its blank line), 0 if it does not end
 * within buf[0..len). */
static size_t head_end(const char *buf, size_t len)
{
    const char *p = buf, *end = buf + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) return 0;
        const char *q = nl + 1;
        if (q < end && *q == '\n') return (size_t)(q + 1 - buf);
        if (q + 1 < end && q[0] == '\r' && q[1] == '\n') return (size_t)(q + 2 - buf);
        if (q >= end || (q + 1 >= end && *q == '\r')) return 0;
        p = q;
    }
    return 0;
}

const unsigned char hr_http_tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1, ['-'] = 1, ['.'] = 1,
    ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1, ['~'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1,
    ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1,
    ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1,
    ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1,
    ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

int hr_h1_list_has(const char *v, const char *token, int last)
{
    size_t n = strlen(token);
    int found = 0;
    for (const char *p = v; *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',') p++;
        const char *e = p;
        while (*e && *e != ',') e++;
        const char *t = e;
        while (t > p && (t[-1] == ' ' || t[-1] == '\t')) t--;
        int match = (size_t)(t - p) == n && !strncasecmp(p, token, n);
        if (!last && match) return 1;
        if (t > p) found = match;
        p = e;
    }
    return found;
}

/* Content-Length: digits, or a list of equal digit strings ("5, 5"). */
static int parse_length(const char *v, int64_t *out)
{
    int64_t seen = -1;
    for (const char *p = v; *p;) {
        while (*p == ' ' || *p == '\t') p++;
        if (*p < '0' || *p > '9') return -1;
        int64_t n = 0;
        for (; *p >= '0' && *p <= '9'; p++) {
            if (n > (INT64_MAX - 9) / 10) return -1;
            n = n * 10 + (*p - '0');
        }
        while (*p == ' ' || *p == '\t') p++;
        if (*p && *p != ',') return -1;
        if (*p) p++;
        if (seen >= 0 && n != seen) return -1;
        seen = n;
    }
    if (seen < 0) return -1;
    *out = seen;
    return 0;
}

static long fail(struct hr_h1_head *h, const char **why, const char *text)
{
    *why = text;
    hr_h1_head_clear(h);
    return HR_H1_BAD;
}

long hr_h1_parse_head(const char *buf, size_t len, size_t max, struct hr_h1_head *h, const char **why)
{
    hr_h1_head_clear(h);
    *why = "";
    size_t hlen = head_end(buf, len < max ? len : max);
    if (!hlen) {
        if (len >= max) {
            *why = "the answer's header block is too large";
            return HR_H1_TOO_LARGE;
        }
        return HR_H1_MORE;
    }
    size_t lines = 0; /* bounds the header count: memchr, not a byte loop (~5 instructions a byte) */
    for (const char *q = buf, *e = buf + hlen; (q = memchr(q, '\n', (size_t)(e - q))) != NULL; q++) lines++;
    h->arena = malloc(hlen + 1);
    h->headers = malloc(lines * sizeof *h->headers);
    if (!h->arena || !h->headers) {
        hr_h1_head_clear(h);
        return HR_H1_NOMEM;
    }
    memcpy(h->arena, buf, hlen);
    h->arena[hlen] = 0;
    if (memchr(h->arena, 0, hlen)) return fail(h, why, "a NUL byte in the answer's headers");

    char *p = h->arena, *end = h->arena + hlen;
    char *nl = memchr(p, '\n', (size_t)(end - p));
    char *le = nl > p && nl[-1] == '\r' ? nl - 1 : nl;
    *le = 0;
    if (strncmp(p, "HTTP/1.", 7) || p[7] < '0' || p[7] > '9' || p[8] != ' ' || p[9] < '1' || p[9] > '9' ||
        p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9' || (p[12] && p[12] != ' '))
        return fail(h, why, "the answer does not start with an HTTP/1.x status line");
    h->minor = p[7] - '0';
    h->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    int conn_close = 0, conn_keep = 0, te = 0;
    for (p = nl + 1; p < end;) {
        nl = memchr(p, '\n', (size_t)(end - p));
        le = nl > p && nl[-1] == '\r' ? nl - 1 : nl;
        if (le == p) break; /* the blank line */
        *le = 0;
        if (memchr(p, '\r', (size_t)(le - p))) return fail(h, why, "a bare CR in the answer's headers");
        if (*p == ' ' || *p == '\t') {
            /* obs-fold: the line continues the previous value, joined by
             * one space (RFC 9112 5.2); moved left within the arena. */
            if (!h->n_headers) return fail(h, why, "the answer's headers start with a continuation line");
            struct hr_header *prev = &h->headers[h->n_headers - 1];
            char *dst = prev->value + strlen(prev->value), *src = p, *t = le;
            while (src < t && (*src == ' ' || *src == '\t')) src++;
            while (t > src && (t[-1] == ' ' || t[-1] == '\t')) t--;
            if (t > src) {
                if (dst > prev->value) *dst++ = ' ';
                memmove(dst, src, (size_t)(t - src));
                dst += t - src;
            }
            *dst = 0;
            p = nl + 1;
            continue;
        }
        char *colon = p;
        while (colon < le && hr_http_tchar[(unsigned char)*colon]) colon++;
        if (colon == p || *colon != ':') return fail(h, why, "a malformed header line in the answer");
        *colon = 0;
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t') v++;
        char *t = le;
        while (t > v && (t[-1] == ' ' || t[-1] == '\t')) t--;
        *t = 0;
        h->headers[h->n_headers++] = (struct hr_header){p, v};
        p = nl + 1;
    }
    /* Framing and persistence, once every value is whole (folds joined). */
    for (size_t i = 0; i < h->n_headers; i++) {
        const char *n = h->headers[i].name, *v = h->headers[i].value;
        if (!strcasecmp(n, "content-length")) {
            int64_t cl;
            if (parse_length(v, &cl) || (h->content_length >= 0 && cl != h->content_length))
                return fail(h, why, "an invalid or conflicting Content-Length in the answer");
            h->content_length = cl;
        } else if (!strcasecmp(n, "transfer-encoding")) {
            te = 1;
            h->chunked = hr_h1_list_has(v, "chunked", 1);
        } else if (!strcasecmp(n, "connection")) {
            conn_close |= hr_h1_list_has(v, "close", 0);
            conn_keep |= hr_h1_list_has(v, "keep-alive", 0);
        }
    }
    if (te) {
        /* RFC 9112 6.3: Transfer-Encoding overrides Content-Length, and such
         * a connection is not reused; without chunked, the body runs to close. */
        if (h->content_length >= 0 || !h->chunked) conn_close = 1;
        h->content_length = -1;
    }
    h->keep_alive = !conn_close && (h->minor >= 1 || conn_keep);
    return (long)hlen;
}

enum { CH_SIZE, CH_EXT, CH_SIZE_LF, CH_DATA, CH_DATA_CR, CH_DATA_LF, CH_TRAILER, CH_DONE };

#define MAX_CHUNK_LINE 4096

long hr_h1_chunked_step(struct hr_h1_chunked *c, const char *in, size_t len, size_t *avail, int *done,
                        const char **why)
{
    size_t i = 0;
    *avail = 0;
    *done = c->state == CH_DONE;
    while (i < len && !*done) {
        /* The usual framing whole in the buffer, "\r\n" after a payload and
         * "<hex>\r\n" before the next, read without a state per byte (a
         * stream's events come one chunk each); anything else, byte by byte. */
        if (c->state == CH_DATA_CR && len - i >= 2 && in[i] == '\r' && in[i + 1] == '\n') {
            c->state = CH_SIZE;
            i += 2;
            continue;
        }
        if (c->state == CH_SIZE && !c->digits) {
            size_t k = i;
            uint64_t v = 0;
            int d;
            while (k < len && k - i < 15 && (d = hr_hex_digit((unsigned char)in[k])) >= 0) {
                v = v * 16 + (uint64_t)d;
                k++;
            }
            if (k > i && len - k >= 2 && in[k] == '\r' && in[k + 1] == '\n') {
                c->left = v;
                i = k + 1; /* at the LF, as CH_SIZE_LF leaves it */
                goto size_done;
            }
        }
        unsigned char ch = (unsigned char)in[i];
        switch (c->state) {
        case CH_SIZE: {
            int d = hr_hex_digit(ch);
            if (d >= 0) {
                if (c->left >> 60) goto bad_size;
                c->left = c->left * 16 + (uint64_t)d;
                c->digits++;
            } else if (!c->digits) {
                goto bad_size;
            } else if (ch == ';' || ch == ' ' || ch == '\t') {
                c->state = CH_EXT;
            } else if (ch == '\r') {
                c->state = CH_SIZE_LF;
            } else if (ch == '\n') {
                goto size_done;
            } else {
                goto bad_size;
            }
            break;
        }
        case CH_EXT: /* chunk extensions are allowed and ignored */
            if (++c->line_len > MAX_CHUNK_LINE) goto bad_size;
            if (ch == '\r') c->state = CH_SIZE_LF;
            else if (ch == '\n') goto size_done;
            break;
        case CH_SIZE_LF:
            if (ch != '\n') goto bad_size;
        size_done:
            c->line_len = 0;
            c->digits = 0;
            c->state = c->left ? CH_DATA : CH_TRAILER;
            if (c->state == CH_DATA) {
                i++;
                size_t have = len - i;
                *avail = have < c->left ? have : (size_t)c->left;
                return (long)i;
            }
            break;
        case CH_DATA: {
            size_t have = len - i;
            *avail = have < c->left ? have : (size_t)c->left;
            return (long)i;
        }
        case CH_DATA_CR:
            if (ch == '\r') {
                c->state = CH_DATA_LF;
                break;
            }
            /* a bare LF after the payload */
            /* fall through */
        case CH_DATA_LF:
            if (ch != '\n') {
                *why = "a chunk of the answer is longer than its declared size";
                return -1;
            }
            c->state = CH_SIZE;
            break;
        case CH_TRAILER:
            /* trailer fields are read and dropped; an empty line ends them */
            if (ch == '\n') {
                if (c->line_len == 0) {
                    c->state = CH_DONE;
                    *done = 1;
                }
                c->line_len = 0;
            } else if (ch != '\r' || c->line_len) {
                if (++c->line_len > MAX_CHUNK_LINE) {
                    *why = "the answer's chunked trailer is too long";
                    return -1;
                }
            }
            break;
        }
        i++;
    }
    return (long)i;
bad_size:
    *why = "a malformed chunk size in the answer";
    return -1;
}

void hr_h1_chunked_consumed(struct hr_h1_chunked *c, size_t n)
{
    c->left -= n;
    if (!c->left && c->state == CH_DATA) c->state = CH_DATA_CR;
}
