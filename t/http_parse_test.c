/* t/http_parse_test.c — the client request parser (src/http_parse.c): heads
 * as clients send them, where a head ends however the bytes arrive, what
 * frames the body, and the refusals that keep two parsers from disagreeing
 * about where a request ends (status and reason for each). */
#include <stdlib.h>
#include <string.h>
#include "http_parse.h"
#include "tap.h"

static struct hr_http_head head;
static struct hr_http_refusal refusal;
static char buf[4096];

/* Parse a whole head of `len` bytes; 0, or -1 with `refusal` set. */
static int parse_n(const char *text, size_t len)
{
    size_t scanned = 0;
    memcpy(buf, text, len + 1);
    size_t end = hr_http_head_end(buf, len, &scanned);
    if (!end) {
        refusal.status = 0;
        refusal.why = "head not complete";
        return -1;
    }
    return hr_http_parse_head(buf, end, &head, &refusal);
}

static int parse(const char *text) { return parse_n(text, strlen(text)); }

/* The status a head is refused with (0 when accepted). */
static int refused(const char *text) { return parse(text) ? refusal.status : 0; }

/* The end hr_http_head_end finds feeding `step` bytes at a time. */
static size_t end_in_steps(const char *text, size_t step)
{
    size_t len = strlen(text), scanned = 0;
    for (size_t have = step; have < len + step; have += step) {
        size_t end = hr_http_head_end(text, have > len ? len : have, &scanned);
        if (end) return end;
    }
    return 0;
}

int main(void)
{
    static const char simple[] = "POST /v1/chat/completions?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8787\r\n"
                                 "Content-Type:application/json \r\nContent-Length: 12\r\n\r\n{\"model\":1}\n";
    ok(parse(simple) == 0, "a plain POST parses");
    ok(!strcmp(head.method, "POST") && !strcmp(head.target, "/v1/chat/completions?x=1"), "method and target");
    is_int(head.minor, 1, "HTTP/1.1");
    ok(head.keep_alive && !head.chunked && !head.expect_continue, "HTTP/1.1 keeps the connection by default");
    is_int(head.content_length, 12, "Content-Length read");
    is_int(head.n_headers, 3, "three headers");
    ok(!strcmp(hr_http_head_find(&head, "content-type"), "application/json"),
       "a value's surrounding whitespace is trimmed; names match in any case");
    ok(hr_http_head_find(&head, "x-missing") == NULL, "a missing header is NULL");
    /* Lookups filter on each name's length and case-folded ends first: names
     * that share them (and ^/~, which the fold makes alike) are still told
     * apart, and every case of a name still matches. */
    ok(parse("GET / HTTP/1.1\r\nX-A^b: 1\r\nx-a~B: 2\r\nX-AxB: 3\r\nCONTENT-ENCODING: gzip\r\n"
             "Content-Length: 0\r\nContent-Type: t\r\n\r\n") == 0,
       "a head of names with shared lengths and ends parses");
    const char *v1 = hr_http_head_find(&head, "x-a^B"), *v2 = hr_http_head_find(&head, "X-A~b"),
               *v3 = hr_http_head_find(&head, "x-axb"), *ce = hr_http_head_find(&head, "content-encoding"),
               *ct = hr_http_head_find(&head, "content-type");
    ok(v1 && !strcmp(v1, "1") && v2 && !strcmp(v2, "2") && v3 && !strcmp(v3, "3") && ce && !strcmp(ce, "gzip") &&
           ct && !strcmp(ct, "t"),
       "names alike in length and ends are told apart; case never matters");
    ok(!hr_http_head_find(&head, "x-a_b") && !hr_http_head_find(&head, "content-language") &&
           !hr_http_head_find(&head, "") && !hr_http_head_find(&head, "X"),
       "absent names alike in length and ends, the empty name and a one-byte name find nothing");
    size_t whole = strstr(simple, "\r\n\r\n") - simple + 4;
    int same = 1;
    for (size_t step = 1; step < 40; step++) same &= end_in_steps(simple, step) == whole;
    ok(same, "the head's end is found the same whichever way the bytes arrive (1 to 39 bytes at a time)");

    ok(parse("GET /health HTTP/1.1\nHost: x\n\n") == 0 && !strcmp(hr_http_head_find(&head, "host"), "x"),
       "bare LF line ends are accepted");
    ok(parse("\r\n\r\nGET / HTTP/1.1\r\n\r\n") == 0 || refusal.status == 400,
       "empty lines before a request are skipped or refused, never mistaken for a request");
    is_int(refused("\n\n"), 400, "a head of empty lines only: 400 (found by fuzz_http_head)");
    ok(parse("\r\nGET /livez HTTP/1.1\r\nHost: x\r\n\r\n") == 0 && !strcmp(head.target, "/livez"),
       "one empty line before the request line is ignored");
    ok(parse("GET / HTTP/1.0\r\n\r\n") == 0 && head.minor == 0 && !head.keep_alive, "HTTP/1.0 closes by default");
    ok(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n") == 0 && head.keep_alive,
       "HTTP/1.0 with Connection: keep-alive keeps it");
    ok(parse("GET / HTTP/1.1\r\nConnection: foo, close\r\n\r\n") == 0 && !head.keep_alive,
       "Connection: close in a list closes");
    ok(parse("POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n") == 0 && head.expect_continue,
       "Expect: 100-continue noted");
    ok(parse("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n") == 0 && head.chunked &&
       head.content_length == -1, "Transfer-Encoding: chunked");
    ok(parse("POST / HTTP/1.1\r\nContent-Length: 7\r\nContent-Length: 7\r\n\r\n") == 0 && head.content_length == 7,
       "a repeated, equal Content-Length is accepted");
    ok(parse("GET / HTTP/1.1\r\nX-Big: \x80\xff ok\r\n\r\n") == 0, "bytes >= 0x80 (obs-text) allowed in values");

    /* refusals: the framing ones first (request smuggling) */
    is_int(refused("POST / HTTP/1.1\r\nContent-Length: 7\r\nContent-Length: 8\r\n\r\n"), 400,
           "conflicting Content-Length: 400");
    is_int(refused("POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\n"), 400, "negative Content-Length: 400");
    is_int(refused("POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n"), 400, "a Content-Length list: 400");
    is_int(refused("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n"), 400,
           "Content-Length past 63 bits: 400");
    is_int(refused("POST / HTTP/1.1\r\nContent-Length:\r\n\r\n"), 400, "empty Content-Length: 400");
    is_int(refused("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"), 400,
           "Transfer-Encoding with Content-Length: 400");
    is_int(refused("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), 501,
           "a coding other than chunked: 501");
    is_int(refused("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"), 501,
           "Transfer-Encoding twice: 501");
    is_int(refused("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400,
           "Transfer-Encoding in HTTP/1.0: 400");
    is_int(refused("GET / HTTP/1.1\r\nX-A: 1\r\n  folded\r\n\r\n"), 400, "a folded header line (obs-fold): 400");
    is_int(refused("GET / HTTP/1.1\r\nX-A : 1\r\n\r\n"), 400, "whitespace before the colon: 400");
    is_int(refused("GET / HTTP/1.1\r\nX-A: 1\rX-B: 2\r\n\r\n"), 400, "a bare CR inside a line: 400");
    static const char nul[] = "GET / HTTP/1.1\r\nX-A: a\0b\r\n\r\n";
    ok(parse_n(nul, sizeof nul - 1) && refusal.status == 400, "a NUL byte in a value: 400");
    ok(parse("GET / HTTP/1.1\r\nX-A: a\x01b\r\n\r\n") == 0, "other control bytes in a value are kept (RFC 9110 5.5)");
    ok(parse("GET /v1/models\x1b[31m HTTP/1.1\r\n\r\n") == 0 && !strcmp(head.target, "/v1/models\x1b[31m"),
       "control bytes in the target reach routing, which refuses them with a reason");
    is_int(refused("GET / HTTP/1.1\r\n: no name\r\n\r\n"), 400, "an empty header name: 400");
    is_int(refused("GET / HTTP/2.0\r\n\r\n"), 505, "HTTP/2.0 on a HTTP/1 connection: 505");
    is_int(refused("GET / HTTP/1.10\r\n\r\n"), 400, "a malformed version: 400");
    is_int(refused("GET /\r\n\r\n"), 400, "no version (HTTP/0.9 style): 400");
    is_int(refused("GET  / HTTP/1.1\r\n\r\n"), 400, "two spaces in the request line: 400");
    is_int(refused("G(T / HTTP/1.1\r\n\r\n"), 400, "a method that is not a token: 400");
    is_int(refused("\x16\x03\x01\x02\x05\x01\x01\r\n\r\n"), 400, "bytes of a TLS hello: 400");
    ok(refusal.why && *refusal.why, "every refusal carries a reason");

    size_t scanned = 0;
    ok(hr_http_head_end("GET / HTTP/1.1\r\nHost: x\r\n", 25, &scanned) == 0, "an unfinished head has no end yet");
    hr_http_head_free(&head);
    tap_done();
    return tap_failed ? 1 : 0;
}
