/* http_parse.c — see http_parse.h. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "http_parse.h"

size_t hr_http_head_end(const char *buf, size_t len, size_t *scanned)
{
    /* A head ends at the first empty line: "\n\n" or "\n\r\n" (bare LF
     * line ends are accepted, as RFC 9112 2.2 allows). */
    size_t i = *scanned > 2 ? *scanned - 2 : 0;
    while (i < len) {
        const char *nl = memchr(buf + i, '\n', len - i);
        if (!nl) break;
        size_t at = (size_t)(nl - buf);
        if (at + 1 < len && buf[at + 1] == '\n') return at + 2;
        if (at + 2 < len && buf[at + 1] == '\r' && buf[at + 2] == '\n') return at + 3;
        if (at + 2 >= len) { /* the line after may still be empty */
            *scanned = at;
            return 0;
        }
        i = at + 1;
    }
    *scanned = len;
    return 0;
}

static int refuse(struct hr_http_refusal *r, int status, const char *why)
{
    r->status = status;
    r->why = why;
    return -1;
}

/* The line at *p (within end), NUL-terminated in place without its CR LF;
 * *p moves past it. Returns its length, or -1 for a bare CR inside it or
 * when no line is left. */
static long take_line(char **p, char *end, char **line)
{
    char *s = *p, *nl = s < end ? memchr(s, '\n', (size_t)(end - s)) : NULL;
    if (!nl) return -1; /* no line left: a head of empty lines only */
    char *e = nl > s && nl[-1] == '\r' ? nl - 1 : nl;
    if (memchr(s, '\r', (size_t)(e - s))) return -1;
    *e = '\0';
    *line = s;
    *p = nl < end ? nl + 1 : end;
    return e - s;
}

static int parse_request_line(char *line, struct hr_http_head *h, struct hr_http_refusal *r)
{
    char *p = line;
    while (hr_http_tchar[(unsigned char)*p]) p++;
    if (p == line || *p != ' ') return refuse(r, 400, "malformed request line (method)");
    *p++ = '\0';
    h->method = line;
    /* Any byte but SP (and NUL) may reach routing, which refuses what a
     * path must not hold with a reason, and logs it escaped. */
    char *t = p;
    while (*p && *p != ' ') p++;
    if (p == t || *p != ' ') return refuse(r, 400, "malformed request line (target)");
    *p++ = '\0';
    h->target = t;
    if (strncmp(p, "HTTP/", 5) || p[5] < '0' || p[5] > '9' || p[6] != '.' || p[7] < '0' || p[7] > '9' || p[8])
        return refuse(r, 400, "malformed request line (version)");
    if (p[5] != '1') return refuse(r, 505, "only HTTP/1.0 and HTTP/1.1 are served");
    h->minor = p[7] - '0';
    return 0;
}

/* A header name's length and first and last bytes, ASCII case folded (the
 * | 0x20 also folds a few punctuation pairs: a key only filters, and equal
 * names always share one). The proxy looks up eight names a request, most
 * of them absent: each costs a key compare per header, not a strcasecmp of
 * every name that starts with the same letter ("content-..."). */
static uint32_t name_key(const char *name, size_t n)
{
    return n ? (uint32_t)n << 16 | (uint32_t)((unsigned char)name[0] | 0x20) << 8 |
                   (uint32_t)((unsigned char)name[n - 1] | 0x20)
             : 0;
}

static int add_header(struct hr_http_head *h, char *name, size_t name_len, char *value)
{
    if (h->n_headers == h->cap_headers) {
        size_t cap = h->cap_headers ? h->cap_headers * 2 : 16;
        struct hr_header *a = realloc(h->headers, cap * sizeof *a);
        if (!a) return -1;
        h->headers = a;
        uint32_t *k = realloc(h->keys, cap * sizeof *k);
        if (!k) return -1;
        h->keys = k;
        h->cap_headers = cap;
    }
    h->keys[h->n_headers] = name_key(name, name_len);
    h->headers[h->n_headers++] = (struct hr_header){name, value};
    return 0;
}

/* Content-Length: digits only; repeats must agree (RFC 9112 6.3). */
static int content_length(struct hr_http_head *h, const char *v, struct hr_http_refusal *r)
{
    if (!*v) return refuse(r, 400, "empty Content-Length");
    int64_t n = 0;
    for (const char *p = v; *p; p++) {
        if (*p < '0' || *p > '9') return refuse(r, 400, "Content-Length is not a number");
        if (n > (INT64_MAX - 9) / 10) return refuse(r, 400, "Content-Length too large");
        n = n * 10 + (*p - '0');
    }
    if (h->content_length >= 0 && h->content_length != n) return refuse(r, 400, "conflicting Content-Length headers");
    h->content_length = n;
    return 0;
}

int hr_http_parse_head(char *buf, size_t len, struct hr_http_head *h, struct hr_http_refusal *r)
{
    r->status = 0;
    r->why = NULL;
    h->method = h->target = NULL;
    h->minor = 1;
    h->keep_alive = h->chunked = h->expect_continue = 0;
    h->content_length = -1;
    h->n_headers = 0;
    char *p = buf, *end = buf + len, *line;
    /* RFC 9112 2.2: empty lines before a request line are ignored. */
    while (p < end && (*p == '\r' || *p == '\n')) p++;
    if (take_line(&p, end, &line) < 0 || parse_request_line(line, h, r)) {
        if (!r->status) refuse(r, 400, "malformed request line");
        return -1;
    }
    int close = 0, keep_alive = 0, te = 0;
    for (;;) {
        long n = take_line(&p, end, &line);
        if (n < 0) return refuse(r, 400, "bare CR in a header line");
        if (n == 0) break;
        if (line[0] == ' ' || line[0] == '\t') return refuse(r, 400, "folded header line (obs-fold)");
        char *c = line;
        while (hr_http_tchar[(unsigned char)*c]) c++;
        if (c == line || *c != ':') return refuse(r, 400, "malformed header name");
        size_t nl = (size_t)(c - line); /* the names below are told apart by length first */
        *c++ = '\0';
        while (*c == ' ' || *c == '\t') c++;
        char *e = line + n;
        while (e > c && (e[-1] == ' ' || e[-1] == '\t')) e--;
        *e = '\0';
        /* NUL would cut the value short; other control bytes are kept (RFC
         * 9110 5.5 allows it) and never reach a header we write. */
        if (memchr(c, '\0', (size_t)(e - c))) return refuse(r, 400, "NUL byte in a header value");
        if (add_header(h, line, nl, c)) return refuse(r, 500, "out of memory");
        if (nl == 14 && !strcasecmp(line, "content-length")) {
            if (content_length(h, c, r)) return -1;
        } else if (nl == 17 && !strcasecmp(line, "transfer-encoding")) {
            /* Only chunked, and only once: anything else is a coding we
             * would have to undo, or a way to disagree about framing. */
            if (te || strcasecmp(c, "chunked")) return refuse(r, 501, "unsupported Transfer-Encoding (only chunked)");
            te = 1;
        } else if (nl == 10 && !strcasecmp(line, "connection")) {
            close |= hr_h1_list_has(c, "close", 0);
            keep_alive |= hr_h1_list_has(c, "keep-alive", 0);
        } else if (nl == 6 && !strcasecmp(line, "expect")) {
            h->expect_continue = !strcasecmp(c, "100-continue");
        }
    }
    if (te && h->minor == 0) return refuse(r, 400, "Transfer-Encoding in an HTTP/1.0 request");
    if (te && h->content_length >= 0) return refuse(r, 400, "both Transfer-Encoding and Content-Length");
    h->chunked = te;
    h->keep_alive = !close && (h->minor >= 1 || keep_alive);
    return 0;
}

void hr_http_head_free(struct hr_http_head *h)
{
    free(h->headers);
    free(h->keys);
    h->headers = NULL;
    h->keys = NULL;
    h->n_headers = h->cap_headers = 0;
}

const char *hr_http_head_find(const struct hr_http_head *h, const char *name)
{
    uint32_t key = name_key(name, strlen(name));
    for (size_t i = 0; i < h->n_headers; i++)
        if (h->keys[i] == key && !strcasecmp(h->headers[i].name, name)) return h->headers[i].value;
    return NULL;
}
