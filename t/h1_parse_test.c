/* t/h1_parse_test.c — the upstream answer parser (src/h1_parse.c): heads as
 * real servers send them, the framing decisions that keep a connection safe
 * to reuse, malformed heads refused with a reason, and chunked bodies decoded
 * the same whichever way the bytes are split. */
#include <stdlib.h>
#include <string.h>
#include "h1_parse.h"
#include "tap.h"

static const char *header(const struct hr_h1_head *h, const char *name)
{
    for (size_t i = 0; i < h->n_headers; i++)
        if (!strcmp(h->headers[i].name, name)) return h->headers[i].value;
    return NULL;
}

/* Decode a chunked body fed `step` bytes at a time (0 = all at once).
 * Returns the payload (caller frees), or NULL on a framing error (*why). */
static char *dechunk(const char *in, size_t len, size_t step, size_t *out_len, int *done, const char **why)
{
    struct hr_h1_chunked c = {0};
    char *out = malloc(len + 1), *buf = malloc(len + 1);
    size_t o = 0, have = 0, fed = 0;
    *done = 0;
    while (!*done) {
        size_t add = step ? step : len;
        if (fed + add > len) add = len - fed;
        memcpy(buf + have, in + fed, add);
        have += add;
        fed += add;
        size_t off = 0;
        for (;;) {
            size_t avail;
            long n = hr_h1_chunked_step(&c, buf + off, have - off, &avail, done, why);
            if (n < 0) {
                free(out);
                free(buf);
                return NULL;
            }
            off += (size_t)n;
            if (*done || !avail) break;
            memcpy(out + o, buf + off, avail);
            o += avail;
            hr_h1_chunked_consumed(&c, avail);
            off += avail;
        }
        memmove(buf, buf + off, have - off);
        have -= off;
        if (fed == len && !*done) break;
    }
    free(buf);
    *out_len = o;
    out[o] = 0;
    return out;
}

int main(void)
{
    struct hr_h1_head h = {0};
    const char *why;

    const char *a = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12\r\n"
                    "X-Request-Id:   abc  \r\n\r\n{\"ok\":true}\n";
    long n = hr_h1_parse_head(a, strlen(a), 65536, &h, &why);
    is_int(n, strstr(a, "\r\n\r\n") + 4 - a, "a complete head: its length, blank line included");
    is_int(h.status, 200, "status");
    is_int(h.content_length, 12, "Content-Length");
    ok(h.keep_alive && !h.chunked, "HTTP/1.1 is kept alive by default");
    is_str(header(&h, "X-Request-Id"), "abc", "value trimmed of surrounding spaces");
    is_int(h.n_headers, 3, "three headers");

    for (size_t cut = 0; cut < strlen(a) - 13; cut++)
        if (hr_h1_parse_head(a, cut, 65536, &h, &why) != HR_H1_MORE) {
            ok(0, "a head cut at %zu asks for more", cut);
            break;
        }
    ok(1, "a head cut anywhere before its end asks for more bytes");

    n = hr_h1_parse_head("HTTP/1.1 200 OK\nContent-Length: 0\n\n", 35, 65536, &h, &why);
    is_int(n, 35, "bare LF line ends accepted");
    n = hr_h1_parse_head("HTTP/1.1 204\r\n\r\n", 16, 65536, &h, &why);
    ok(n == 16 && h.status == 204, "no reason phrase accepted");

    const char *te = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
    hr_h1_parse_head(te, strlen(te), 65536, &h, &why);
    ok(h.chunked && h.keep_alive && h.content_length == -1, "chunked as the last coding");
    const char *both = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\n";
    hr_h1_parse_head(both, strlen(both), 65536, &h, &why);
    ok(h.chunked && !h.keep_alive && h.content_length == -1,
       "Transfer-Encoding wins over Content-Length, and the connection is not reused");
    const char *gz = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n";
    hr_h1_parse_head(gz, strlen(gz), 65536, &h, &why);
    ok(!h.chunked && !h.keep_alive, "a coding without chunked: the body runs to the close");
    const char *h10 = "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n";
    hr_h1_parse_head(h10, strlen(h10), 65536, &h, &why);
    ok(!h.keep_alive, "HTTP/1.0 closes by default");
    const char *h10k = "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\n";
    hr_h1_parse_head(h10k, strlen(h10k), 65536, &h, &why);
    ok(h.keep_alive, "HTTP/1.0 with Connection: keep-alive is kept");
    const char *cl = "HTTP/1.1 200 OK\r\nConnection: foo, close\r\nContent-Length: 2\r\n\r\n";
    hr_h1_parse_head(cl, strlen(cl), 65536, &h, &why);
    ok(!h.keep_alive, "Connection: close in a list");
    const char *same = "HTTP/1.1 200 OK\r\nContent-Length: 7, 7\r\nContent-Length: 7\r\n\r\n";
    n = hr_h1_parse_head(same, strlen(same), 65536, &h, &why);
    ok(n > 0 && h.content_length == 7, "repeated equal Content-Length values accepted");
    const char *fold = "HTTP/1.1 200 OK\r\nX-A: one\r\n \t two \r\nX-B: 3\r\n\r\n";
    hr_h1_parse_head(fold, strlen(fold), 65536, &h, &why);
    ok(header(&h, "X-A") && !strcmp(header(&h, "X-A"), "one two") && header(&h, "X-B") &&
           !strcmp(header(&h, "X-B"), "3"),
       "a folded value is joined by one space");

    static const struct {
        const char *text, *what;
    } bad[] = {
        {"HTTP/2 200 OK\r\n\r\n", "not HTTP/1.x"},
        {"HTTP/1.1 20 OK\r\n\r\n", "a two-digit status"},
        {"HTTP/1.1 200OK\r\n\r\n", "no space after the status"},
        {"ICY 200 OK\r\n\r\n", "not HTTP at all"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", "conflicting Content-Length"},
        {"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "a negative Content-Length"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", "an overflowing Content-Length"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", "Content-Length with junk"},
        {"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", "a space in a header name"},
        {"HTTP/1.1 200 OK\r\nName : x\r\n\r\n", "a space before the colon"},
        {"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", "a line without a colon"},
        {"HTTP/1.1 200 OK\r\n continued\r\n\r\n", "a continuation with nothing to continue"},
        {"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", "a bare CR in a value"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        n = hr_h1_parse_head(bad[i].text, strlen(bad[i].text), 65536, &h, &why);
        ok(n == HR_H1_BAD && why && *why, "refused: %s (%s)", bad[i].what, why);
    }
    const char nul[] = "HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n";
    ok(hr_h1_parse_head(nul, sizeof nul - 1, 65536, &h, &why) == HR_H1_BAD, "refused: a NUL byte");

    char big[4096];
    memcpy(big, "HTTP/1.1 200 OK\r\n", 17);
    memset(big + 17, 'x', sizeof big - 17);
    ok(hr_h1_parse_head(big, sizeof big, 1024, &h, &why) == HR_H1_TOO_LARGE,
       "no end within the limit: too large");
    ok(hr_h1_parse_head(big, 1000, 1024, &h, &why) == HR_H1_MORE, "under the limit: more");
    hr_h1_head_clear(&h);

    /* chunked bodies */
    const char *body = "5\r\nhello\r\n1;ext=1\r\n \r\n6\r\nworld!\r\n0\r\nX-Trailer: t\r\n\r\n";
    size_t olen;
    int done_;
    int all_same = 1;
    for (size_t step = 0; step <= strlen(body); step++) {
        char *o = dechunk(body, strlen(body), step, &olen, &done_, &why);
        if (!o || !done_ || strcmp(o, "hello world!")) all_same = 0;
        free(o);
    }
    ok(all_same, "chunked body with an extension and a trailer: the same payload for every split");
    const char *lf = "3\nabc\n0\n\n";
    char *o = dechunk(lf, strlen(lf), 1, &olen, &done_, &why);
    ok(o && done_ && !strcmp(o, "abc"), "bare LF in chunked framing accepted");
    free(o);
    o = dechunk("3\r\nab", 5, 0, &olen, &done_, &why);
    ok(o && !done_ && !strcmp(o, "ab"), "an unfinished body is not done");
    free(o);

    static const char *const badc[] = {"zz\r\n{}\r\n0\r\n\r\n", "\r\n", "3\r\nabcd\r\n0\r\n\r\n",
                                       "fffffffffffffffff\r\n", "-1\r\n"};
    for (size_t i = 0; i < sizeof badc / sizeof *badc; i++) {
        o = dechunk(badc[i], strlen(badc[i]), 0, &olen, &done_, &why);
        ok(!o && why && *why, "malformed chunked framing %zu refused (%s)", i, o ? "" : why);
        free(o);
    }
    return tap_exit();
}
