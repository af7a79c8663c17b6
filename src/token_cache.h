/* token_cache.h — remembers token counts of strings by content, so an
 * agent conversation that resends the same tool definitions, messages and
 * tool outputs every turn is not tokenized again each turn. */
#ifndef HR_TOKEN_CACHE_H
#define HR_TOKEN_CACHE_H
#include <stddef.h>
#include <stdint.h>
#include "tokens.h"

/* hr_count_tokens with a bounded, thread-safe cache (strings of up to 48 bytes are
 * remembered per thread by their bytes, longer ones by a content hash). */
size_t hr_count_tokens_cached(const char *model, const char *text, size_t len);
/* The same for an encoding already resolved (hr_encoding_for_model): a
 * caller counting many strings of one request resolves it once. */
size_t hr_count_tokens_cached_enc(enum hr_encoding enc, const char *text, size_t len);
/* The same, given hr_hash128 of the text (computed once by the caller). */
size_t hr_count_tokens_cached_hash(const char *model, const char *text, size_t len, const uint64_t hash[2]);
/* The two halves of the above, for a caller that counts a miss itself
 * (in parts, on several threads): 1 and *tokens on a hit, else 0. */
int hr_token_cache_lookup(const char *model, size_t len, const uint64_t hash[2], size_t *tokens);
void hr_token_cache_store(const char *model, size_t len, const uint64_t hash[2], size_t tokens);
/* Hits and lookups so far (for benchmarks and /stats). */
void hr_token_cache_counters(uint64_t *hits, uint64_t *lookups);
/* Short strings this thread counted because its memo did not hold them
 * (for tests: the strings every request carries must stay remembered). */
uint64_t hr_token_short_misses(void);
#endif
