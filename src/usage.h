/* usage.h — token usage a provider reports for one answer. Each wire format
 * reads it from its own JSON and stream shapes (src/api/); this is the
 * common record they fill. */
#ifndef HR_USAGE_H
#define HR_USAGE_H

#include <stddef.h>
#include <stdint.h>

/* A count above this is treated as a bad field and ignored: no real request
 * comes near it, and it keeps sums and prices downstream far from overflow. */
#define HR_USAGE_MAX_TOKENS ((uint64_t)1 << 50)

struct hr_usage {
    int seen;                        /* any usage object was found */
    uint64_t input_tokens;           /* uncached input as billed (OpenAI: prompt/input minus cached) */
    uint64_t output_tokens;          /* completion / output tokens, reasoning included */
    uint64_t reasoning_tokens;       /* the reasoning part of output_tokens (OpenAI), informational */
    uint64_t cache_read_tokens;      /* OpenAI cached_tokens; Anthropic cache_read_input_tokens */
    uint64_t cache_write_tokens;     /* Anthropic cache_creation_input_tokens (OpenAI: 0) */
    uint64_t cache_write_5m_tokens;  /* Anthropic usage.cache_creation.ephemeral_5m_input_tokens */
    uint64_t cache_write_1h_tokens;  /* Anthropic usage.cache_creation.ephemeral_1h_input_tokens */
};

/* Add the counts of `u` to `to` (several upstream rounds of one request). */
void hr_usage_add(struct hr_usage *to, const struct hr_usage *u);

#endif /* HR_USAGE_H */
