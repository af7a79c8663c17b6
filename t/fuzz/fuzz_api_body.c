/* t/fuzz/fuzz_api_body.c — fuzz target: arbitrary bodies for the JSON
 * endpoints, framed as a well-formed request so every input reaches the
 * handler: byte 0 picks POST /v1/compress, POST /v1/retrieve,
 * GET /v1/retrieve/<hash>?query=, or a model route (OpenAI chat, Anthropic
 * messages, OpenAI responses) whose body runs the whole pipeline and is
 * proxied. The answer must be a complete HTTP response with a status. */
#include <stdint.h>
#include <stdio.h>
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

static const char *const routes[] = {"/v1/compress", "/v1/retrieve", NULL, "/v1/chat/completions", "/v1/messages",
                                      "/v1/responses"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    unsigned which = data[0] % 6;
    data++;
    size--;
    char *req = malloc(size * 3 + 512);
    if (!req) return 0;
    size_t n;
    if (!routes[which]) {
        /* GET /v1/retrieve/<hash>?query=<rest>: percent-encode every byte */
        n = (size_t)sprintf(req, "GET /v1/retrieve/");
        size_t h = size < 40 ? size : 40;
        for (size_t i = 0; i < size; i++) {
            if (i == h) n += (size_t)sprintf(req + n, "?query=");
            n += (size_t)sprintf(req + n, "%%%02X", data[i]);
        }
        n += (size_t)sprintf(req + n, " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    } else {
        n = (size_t)sprintf(req,
                            "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                            "Authorization: Bearer sk-fuzz\r\nx-api-key: fuzz\r\nanthropic-version: 2023-06-01\r\n"
                            "Connection: close\r\nContent-Length: %zu\r\n\r\n",
                            routes[which], size);
        memcpy(req + n, data, size);
        n += size;
    }
    char head[16];
    size_t got = hh_exchange((const uint8_t *)req, n, head, sizeof head, 0);
    free(req);
    /* a complete, well-framed request always gets an answer */
    if (got < 12 || memcmp(head, "HTTP/1.1 ", 9)) abort();
    return 0;
}
