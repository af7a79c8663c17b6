/* usage.h — token usage reported by OpenAI / Anthropic responses, read from a
 * whole JSON body or from the events of a stream. */
#ifndef HR_USAGE_H
#define HR_USAGE_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "headroom/plugin.h"

/* A count above this is treated as a bad field and ignored: no real request
 * comes near it, and it keeps sums and prices downstream far from overflow. */
#define HR_USAGE_MAX_TOKENS ((uint64_t)1 << 50)

struct hr_usage {
    int seen;                        /* any usage object was found */
    uint64_t input_tokens;           /* uncached input as billed: OpenAI prompt_tokens - cached_tokens; Anthropic input_tokens */
    uint64_t output_tokens;          /* OpenAI completion_tokens; Anthropic output_tokens */
    uint64_t cache_read_tokens;      /* OpenAI prompt_tokens_details.cached_tokens; Anthropic cache_read_input_tokens */
    uint64_t cache_write_tokens;     /* Anthropic cache_creation_input_tokens (OpenAI: 0) */
    uint64_t cache_write_5m_tokens;  /* Anthropic usage.cache_creation.ephemeral_5m_input_tokens */
    uint64_t cache_write_1h_tokens;  /* Anthropic usage.cache_creation.ephemeral_1h_input_tokens */
    char model[128];                 /* "model" reported by the response, if any (truncated, NUL-terminated) */
};

/*
 * hr_usage_from_json
 *   Read the usage of a non-streamed response body into *u. Zero *u before
 *   the first call; only fields found (and valid) are written. Fields of the
 *   wrong type, negative, fractional or above HR_USAGE_MAX_TOKENS are ignored.
 *   HR_PROVIDER_UNKNOWN guesses the shape from the usage keys.
 */
void hr_usage_from_json(enum hr_provider p, const json_t *response_body, struct hr_usage *u);

/*
 * hr_usage_from_sse
 *   Fold one event of a streamed response into *u (zeroed before the
 *   stream's first event). Cheap on events that cannot carry usage: those are
 *   recognised without a JSON parse. Non-JSON data (OpenAI's "[DONE]",
 *   garbage) is ignored.
 */
void hr_usage_from_sse(enum hr_provider p, const char *event, size_t event_len,
                       const char *data, size_t data_len, struct hr_usage *u);

#endif /* HR_USAGE_H */
