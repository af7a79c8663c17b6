/* t/fuzz/fuzz_http.c — fuzz target: raw bytes from a client to a running
 * headroomd (request line, headers, body, pipelining, all of it), through
 * the HTTP server (src/http_server.c), routing, limits, the built-in endpoints, the transform pipeline
 * and the proxy to an upstream answering well. Whatever arrives, an answer
 * is an HTTP/1.x response and the daemon keeps serving the next input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "http_harness.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    hh_start(1);
    hh_set_upstream(NULL, 0);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char head[16];
    size_t got = hh_exchange(data, size, head, sizeof head, 1000);
    /* every answer, refusals included, is an HTTP/1.1 status line */
    if (got && (got < 9 || memcmp(head, "HTTP/", 5))) abort(); /* not an HTTP answer */
    return 0;
}
