/* t/fuzz/fuzz_relay.c — fuzz target: arbitrary upstream bytes (status line,
 * headers, body: JSON, SSE, chunked, truncated, oversized events) answering
 * a well-formed client request; byte 0 picks the request: OpenAI chat,
 * Anthropic messages or OpenAI responses, streamed or not. The relay, the
 * SSE parser, usage extraction, pricing and accounting all see hostile
 * input; the client must always get an HTTP answer. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "http_harness.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    hh_start(0);
    return 0;
}

static const char *const routes[] = {"/v1/chat/completions", "/v1/messages", "/v1/responses"};
static const char *const bodies[] = {
    "{\"model\":\"gpt-4o\",\"stream\":%s,\"stream_options\":{\"include_usage\":true},\"messages\":[{\"role\":\"user\","
    "\"content\":\"hi\"}]}",
    "{\"model\":\"claude-3-5-sonnet-20241022\",\"max_tokens\":64,\"stream\":%s,\"messages\":[{\"role\":\"user\","
    "\"content\":\"hi\"}]}",
    "{\"model\":\"gpt-4o\",\"stream\":%s,\"input\":\"hi\"}",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    unsigned which = data[0] % 3, stream = (data[0] >> 2) & 1;
    hh_set_upstream(data + 1, size - 1);
    char body[512], req[1024];
    int bl = snprintf(body, sizeof body, bodies[which], stream ? "true" : "false");
    int n = snprintf(req, sizeof req,
                     "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     "Authorization: Bearer sk-fuzz\r\nx-api-key: fuzz\r\nanthropic-version: 2023-06-01\r\n"
                     "Connection: close\r\nContent-Length: %d\r\n\r\n%s",
                     routes[which], bl, body);
    char head[16];
    size_t got = hh_exchange((const uint8_t *)req, (size_t)n, head, sizeof head, 0);
    if (got < 12 || memcmp(head, "HTTP/1.1 ", 9)) abort(); /* the client always gets an answer */
    return 0;
}
