/* t/fuzz/fuzz_h1_response.c — fuzz target: an upstream's answer through the
 * head parser and the chunked decoder, fed whole and in input-chosen pieces;
 * both runs must agree, and every header must lie inside the head. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "h1_parse.h"

struct run {
    long head;
    int status, keep_alive, chunked;
    int64_t length;
    size_t n_headers;
    uint64_t body_hash;
    size_t body_len;
    int body_rc; /* 1 done, 0 unfinished, -1 malformed */
};

static void decode(const uint8_t *data, size_t size, size_t step, struct run *r)
{
    struct hr_h1_head h = {0};
    const char *why;
    memset(r, 0, sizeof *r);
    /* the head, as it arrives */
    size_t have = step ? 0 : size;
    for (;;) {
        r->head = hr_h1_parse_head((const char *)data, have, 8192, &h, &why);
        if (r->head != HR_H1_MORE || have == size) break;
        have = have + step > size ? size : have + step;
    }
    if (r->head <= 0) {
        hr_h1_head_clear(&h);
        return;
    }
    for (size_t i = 0; i < h.n_headers; i++) {
        const char *lo = h.arena, *hi = h.arena + r->head;
        if (h.headers[i].name < lo || h.headers[i].name >= hi || h.headers[i].value < lo || h.headers[i].value > hi)
            abort();
        if (strchr(h.headers[i].value, '\r') || strchr(h.headers[i].value, '\n')) abort();
    }
    r->status = h.status;
    r->keep_alive = h.keep_alive;
    r->chunked = h.chunked;
    r->length = h.content_length;
    r->n_headers = h.n_headers;
    int chunked = h.chunked;
    hr_h1_head_clear(&h);
    if (!chunked) return;
    const char *in = (const char *)data + r->head;
    size_t len = size - (size_t)r->head, fed = 0, off = 0;
    struct hr_h1_chunked c = {0};
    r->body_hash = 1469598103934665603ull;
    while (fed < len || off < fed) {
        fed = step && fed + step < len ? fed + step : len;
        for (;;) {
            size_t avail;
            int done;
            long n = hr_h1_chunked_step(&c, in + off, fed - off, &avail, &done, &why);
            if (n < 0) {
                r->body_rc = -1;
                return;
            }
            off += (size_t)n;
            if (done) {
                r->body_rc = 1;
                return;
            }
            if (!avail) break;
            if (off + avail > fed) abort();
            for (size_t i = 0; i < avail; i++) r->body_hash = (r->body_hash ^ (uint8_t)in[off + i]) * 1099511628211ull;
            r->body_len += avail;
            hr_h1_chunked_consumed(&c, avail);
            off += avail;
        }
        if (fed == len) break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t step = data[0] % 16 + 1;
    struct run whole, pieces;
    decode(data + 1, size - 1, 0, &whole);
    decode(data + 1, size - 1, step, &pieces);
    if (memcmp(&whole, &pieces, sizeof whole)) abort();
    return 0;
}
