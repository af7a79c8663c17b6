/* http_parse.h — a client's HTTP/1.x request head: the request line, the
 * header block and what frames the body. Pure functions over bytes, no I/O:
 * the server (http_server.c) feeds them, the unit test and the fuzz target
 * call them directly. Strict where leniency lets two parsers disagree about
 * where a request ends (RFC 9112 section 11.2, request smuggling). */
#ifndef HR_HTTP_PARSE_H
#define HR_HTTP_PARSE_H
#include <stddef.h>
#include <stdint.h>
#include "h1_parse.h" /* struct hr_header */

struct hr_http_head {
    char *method, *target;
    int minor;               /* HTTP/1.<minor> */
    int keep_alive;          /* by version and Connection */
    int chunked;             /* Transfer-Encoding: chunked */
    int expect_continue;     /* Expect: 100-continue */
    int64_t content_length;  /* -1 when absent */
    struct hr_header *headers; /* into the parsed buffer */
    uint32_t *keys;            /* per header: its name's length and ends, case folded (hr_http_head_find) */
    size_t n_headers, cap_headers; /* the arrays are kept between requests */
};

/* Where a complete head ends in buf[0..len): its length with the blank line,
 * or 0 when it has not ended yet. `*scanned` carries how far earlier calls
 * looked (start it at 0), so a head arriving in pieces is scanned once. */
size_t hr_http_head_end(const char *buf, size_t len, size_t *scanned);

/* HTTP status for a head the server refuses, with a reason (static text). */
struct hr_http_refusal {
    int status;
    const char *why;
};

/* Parse a complete head of `len` bytes (as found by hr_http_head_end) in
 * place: names and values are NUL-terminated inside `buf` and point there.
 * 0, or -1 with *r set (400 malformed, 501 an unsupported transfer coding,
 * 505 not HTTP/1.x, 500 out of memory). */
int hr_http_parse_head(char *buf, size_t len, struct hr_http_head *h, struct hr_http_refusal *r);
/* Free what hr_http_parse_head allocated (the header array). */
void hr_http_head_free(struct hr_http_head *h);
/* The first header named `name` (any case), or NULL. */
const char *hr_http_head_find(const struct hr_http_head *h, const char *name);
#endif
