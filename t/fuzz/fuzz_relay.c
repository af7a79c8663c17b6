/* t/fuzz/fuzz_relay.c — fuzz target: arbitrary upstream bytes (status line,
 * headers, body: JSON, SSE, chunked, truncated, oversized events) answering
 * a well-formed client request; the client must always get an HTTP answer.
 * Byte 0 picks the request:
 *   bit 3 clear: a one-line request, data[0] % 3 picks OpenAI chat,
 *     Anthropic messages or OpenAI responses, bit 2 streamed. The relay,
 *     the SSE parser, usage extraction, pricing and accounting all see
 *     hostile input.
 *   bit 3 set: a turn with a tool output of rows smart_crusher crushes, so
 *     a non-streamed request is offered headroom_retrieve: (data[0] & 3) % 3
 *     picks the format, bit 2 streamed, bit 4 (responses) a conversation,
 *     bit 5 store false, bit 6 a second request continuing from response
 *     "resp_fz" and conversation "conv_fz". Every upstream request of the
 *     input gets the same bytes, so an answer calling headroom_retrieve
 *     alone is answered and asked again (the rounds, then its calls taken
 *     out), one calling it beside the client's tool has it taken out and
 *     (responses) kept, and the second request gets the kept calls'
 *     outputs put before its input. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "http_harness.h"

#define ROWS 80

static const char *const routes[] = {"/v1/chat/completions", "/v1/messages", "/v1/responses"};
static const char *const bodies[] = {
    "{\"model\":\"gpt-4o\",\"stream\":%s,\"stream_options\":{\"include_usage\":true},\"messages\":[{\"role\":\"user\","
    "\"content\":\"hi\"}]}",
    "{\"model\":\"claude-3-5-sonnet-20241022\",\"max_tokens\":64,\"stream\":%s,\"messages\":[{\"role\":\"user\","
    "\"content\":\"hi\"}]}",
    "{\"model\":\"gpt-4o\",\"stream\":%s,\"input\":\"hi\"}",
};
static char *rows_text; /* a JSON array of rows, one of them an error */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    hh_start(0);
    json_t *rows = json_array();
    for (int i = 0; i < ROWS; i++)
        json_array_append_new(rows, json_pack("{s:i,s:s,s:i,s:s}", "id", 1000 + i, "status",
                                              i == 37 ? "error: card_declined" : "ok", "ms", 3 + i * 13 % 90,
                                              "path", "/api/v2/orders"));
    rows_text = json_dumps(rows, JSON_COMPACT);
    json_decref(rows);
    if (!rows_text) abort();
    return 0;
}

static const char *const user_q = "Which order failed, and why?";

/* A turn whose tool output is the rows, with one tool of the client's. */
static json_t *tool_turn(unsigned which, int stream, unsigned flags)
{
    json_t *b;
    if (which == 0) {
        b = json_pack("{s:s,s:[{s:s,s:s},{s:s,s:n,s:[{s:s,s:s,s:{s:s,s:s}}]},{s:s,s:s,s:s}],"
                      "s:[{s:s,s:{s:s,s:{s:s,s:{}}}}]}",
                      "model", "gpt-4o", "messages", "role", "user", "content", user_q, "role", "assistant", "content",
                      "tool_calls", "id", "call_1", "type", "function", "function", "name", "list_orders", "arguments",
                      "{}", "role", "tool", "tool_call_id", "call_1", "content", rows_text, "tools", "type", "function",
                      "function", "name", "run_tests", "parameters", "type", "object", "properties");
    } else if (which == 1) {
        b = json_pack("{s:s,s:i,s:[{s:s,s:s},{s:s,s:[{s:s,s:s,s:s,s:{s:s}}]},{s:s,s:[{s:s,s:s,s:s}]}],"
                      "s:[{s:s,s:{s:s,s:{}}}]}",
                      "model", "claude-3-5-sonnet-20241022", "max_tokens", 64, "messages", "role", "user", "content",
                      user_q, "role", "assistant", "content", "type", "tool_use", "id", "toolu_1", "name", "Bash",
                      "input", "command", "cat orders.json", "role", "user", "content", "type", "tool_result",
                      "tool_use_id", "toolu_1", "content", rows_text, "tools", "name", "Bash", "input_schema", "type",
                      "object", "properties");
    } else {
        b = json_pack("{s:s,s:[{s:s,s:s},{s:s,s:s,s:s,s:s},{s:s,s:s,s:s}],s:[{s:s,s:s,s:{s:s,s:{}}},{s:s,s:s}]}",
                      "model", "gpt-4o", "input", "role", "user", "content", user_q, "type", "function_call", "name",
                      "shell", "call_id", "call_A", "arguments", "{}", "type", "function_call_output", "call_id",
                      "call_A", "output", rows_text, "tools", "type", "function", "name", "shell", "parameters", "type",
                      "object", "properties", "type", "custom", "name", "apply_patch");
        if (b && (flags & 0x10)) json_object_set_new(b, "conversation", json_string("conv_fz"));
        if (b && (flags & 0x20)) json_object_set_new(b, "store", json_false());
    }
    if (b) json_object_set_new(b, "stream", json_boolean(stream));
    return b;
}

/* The next turn after an answer with the client's call: continues a kept
 * response and conversation (responses), or answers the call (the others). */
static json_t *next_turn(unsigned which)
{
    if (which == 2)
        return json_pack("{s:s,s:s,s:s,s:[{s:s,s:s,s:s}]}", "model", "gpt-4o", "previous_response_id", "resp_fz",
                         "conversation", "conv_fz", "input", "type", "custom_tool_call_output", "call_id", "call_p",
                         "output", "Done!");
    json_t *b = tool_turn(which, 0, 0);
    json_t *msgs = json_object_get(b, "messages");
    if (which == 0)
        json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "user", "content", "Run the tests."));
    else
        json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "assistant", "content", "Done."));
    return b;
}

static void exchange(unsigned which, const char *body)
{
    size_t bl = strlen(body);
    char *req = malloc(bl + 512);
    if (!req) abort();
    int n = snprintf(req, bl + 512,
                     "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     "Authorization: Bearer sk-fuzz\r\nx-api-key: fuzz\r\nanthropic-version: 2023-06-01\r\n"
                     "Connection: close\r\nContent-Length: %zu\r\n\r\n%s",
                     routes[which], bl, body);
    char head[16];
    size_t got = hh_exchange((const uint8_t *)req, (size_t)n, head, sizeof head, 0);
    free(req);
    if (got < 12 || memcmp(head, "HTTP/1.1 ", 9)) abort(); /* the client always gets an answer */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    unsigned stream = (data[0] >> 2) & 1;
    hh_set_upstream(data + 1, size - 1);
    if (!(data[0] & 0x08)) {
        unsigned which = data[0] % 3;
        char body[512];
        snprintf(body, sizeof body, bodies[which], stream ? "true" : "false");
        exchange(which, body);
        return 0;
    }
    unsigned which = (data[0] & 3) % 3;
    json_t *b = tool_turn(which, (int)stream, data[0]);
    char *text = b ? json_dumps(b, JSON_COMPACT) : NULL;
    json_decref(b);
    if (!text) abort();
    exchange(which, text);
    free(text);
    if (data[0] & 0x40) {
        b = next_turn(which);
        text = b ? json_dumps(b, JSON_COMPACT) : NULL;
        json_decref(b);
        if (!text) abort();
        exchange(which, text);
        free(text);
    }
    return 0;
}
