/* t/fuzz/fuzz_http_head.c — fuzz target: a client's request head through
 * the server's parser (src/http_parse.c), its end found whole and byte by
 * byte (both must agree), then parsed in place: an accepted head has a
 * method, a target and headers that all lie inside it, and framing that
 * makes sense; a refused one has a status and a reason. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "http_parse.h"

static int inside(const char *p, const char *buf, size_t len) { return p >= buf && p < buf + len; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t scanned = 0, whole = hr_http_head_end((const char *)data, size, &scanned);
    size_t step_scanned = 0, stepped = 0;
    for (size_t have = 1; have <= size && !stepped; have++)
        stepped = hr_http_head_end((const char *)data, have, &step_scanned);
    if (whole != stepped) abort(); /* the end depends on how the bytes arrived */
    if (!whole) return 0;
    char *buf = malloc(whole);
    memcpy(buf, data, whole);
    static struct hr_http_head h;
    struct hr_http_refusal r;
    if (hr_http_parse_head(buf, whole, &h, &r)) {
        if (!r.status || !r.why) abort();
    } else {
        if (!inside(h.method, buf, whole) || !inside(h.target, buf, whole) || !*h.method || !*h.target) abort();
        for (size_t i = 0; i < h.n_headers; i++)
            if (!inside(h.headers[i].name, buf, whole) || !inside(h.headers[i].value, buf, whole)) abort();
        if (h.chunked && h.content_length >= 0) abort(); /* both framings at once */
        if (h.minor > 9) abort();
    }
    free(buf);
    return 0;
}
