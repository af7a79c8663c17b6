/* t/fuzz/fuzz_request_log.c — fuzz target: a request-log line built around
 * arbitrary client bytes (as the request body and as the strings of the
 * event); every line must be one line of valid JSON. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../plugins/request_log/line.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The same bytes as a NUL-terminated string for the string fields. */
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    struct hr_stage_result st = {.struct_size = sizeof st, .name = text, .ms = 1.5, .tokens_saved = 3, .tag = text};
    struct hr_event ev = {
        .struct_size = sizeof ev, .request_id = "r", .timestamp = size * 1e6, .provider_name = "openai",
        .model = text, .stack = "", .path = "/v1/chat/completions", .status = 200, .tokens_input = size,
        .latency_ms = 1, .overhead_ms = -1, .ttfb_ms = 0, .n_stages = 1, .stages = &st,
        .error = size & 1 ? text : NULL, .request_body = (const char *)data, .request_body_len = size,
    };
    char *line = NULL;
    size_t len = 0;
    if (hr_rlog_format(&ev, 1, &line, &len)) abort();
    if (len == 0 || line[len - 1] != '\n' || memchr(line, '\n', len - 1) || strlen(line) != len) abort();
    json_error_t err;
    json_t *back = json_loadb(line, len, JSON_ALLOW_NUL, &err);
    if (!json_is_object(back) || !json_object_get(back, "request") || !json_is_string(json_object_get(back, "model")))
        abort();
    json_decref(back);
    free(line);
    free(text);
    return 0;
}
