/* h1_parse.h — an upstream's HTTP/1.x answer: the status line and header
 * block, and the body's framing (Content-Length, chunked, or until close).
 * Pure functions over bytes, no I/O: the native upstream client feeds them,
 * the unit test and the fuzz target call them directly. */
#ifndef HR_H1_PARSE_H
#define HR_H1_PARSE_H
#include <stddef.h>
#include <stdint.h>

struct hr_header {
    char *name, *value;
};

/* 1 for the bytes of an HTTP token (RFC 9110 tchar: a header name, a method). */
extern const unsigned char hr_http_tchar[256];

/* One parsed head. Names and values point into `arena` (one allocation). */
struct hr_h1_head {
    int status;
    int minor;              /* HTTP/1.<minor> */
    int keep_alive;         /* the connection may carry another request */
    int chunked;            /* Transfer-Encoding ends in chunked */
    int64_t content_length; /* -1 when absent */
    struct hr_header *headers;
    size_t n_headers;
    char *arena;
};

enum { HR_H1_MORE = 0, HR_H1_BAD = -1, HR_H1_TOO_LARGE = -2, HR_H1_NOMEM = -3 };

/* Parse the head at the start of buf[0..len). Returns its length in bytes
 * (the blank line included) once complete; HR_H1_MORE when more bytes are
 * needed; HR_H1_TOO_LARGE when no head ends within `max` bytes; HR_H1_BAD
 * (with *why set to a static text) for a malformed head; HR_H1_NOMEM. The
 * previous contents of *h are freed. */
long hr_h1_parse_head(const char *buf, size_t len, size_t max, struct hr_h1_head *h, const char **why);
void hr_h1_head_clear(struct hr_h1_head *h);

/* Does the comma-separated header value `v` hold `token` (any case, list
 * whitespace ignored)? With last=1, only as its last element. */
int hr_h1_list_has(const char *v, const char *token, int last);

/* Chunked transfer coding, one step at a time so a caller can hand the
 * payload on and consume it only once it was taken (backpressure). */
struct hr_h1_chunked {
    int state;
    uint64_t left;     /* payload bytes left in the current chunk */
    unsigned line_len; /* bytes of the size/trailer line seen so far */
    int digits;        /* hex digits of the size seen so far */
};

/* Skip framing at in[0..len): returns the framing bytes consumed, and sets
 * *avail to how many payload bytes follow them in the input (0 if none yet).
 * Sets *done once the last chunk and trailer are read (the return value
 * then ends the body). Returns -1 with *why for a malformed coding. */
long hr_h1_chunked_step(struct hr_h1_chunked *c, const char *in, size_t len, size_t *avail, int *done,
                        const char **why);
/* n payload bytes (at most the *avail of the last step) were delivered. */
void hr_h1_chunked_consumed(struct hr_h1_chunked *c, size_t n);
#endif
