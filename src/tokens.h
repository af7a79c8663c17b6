/* src/tokens.h — the host's token counter: exact tiktoken counts for OpenAI models
 * (o200k_base, cl100k_base) and a documented estimate for everything else. */
#ifndef HR_TOKENS_H
#define HR_TOKENS_H
#include <stddef.h>

enum hr_encoding { HR_ENC_O200K_BASE, HR_ENC_CL100K_BASE, HR_ENC_ESTIMATE };

/* hr_tokens_init
 * Loads the rank tables from $HEADROOM_DATA_DIR, else HR_PKGDATADIR, else HR_SRCDATADIR.
 * Idempotent and thread-safe (the first caller loads, later callers get the same result);
 * the tables are immutable afterwards and shared by every thread.
 * RETURN VALUE: 0, or a negative errno; err then says which file is missing and how to fix it. */
int hr_tokens_init(char *err, size_t errlen);

/* Model name -> encoding. NULL or "" -> HR_ENC_ESTIMATE. Matching is by prefix,
 * case-insensitive, after an optional "openai/" or "azure/" style provider prefix. */
enum hr_encoding hr_encoding_for_model(const char *model);

/* "o200k_base", "cl100k_base", "estimate". */
const char *hr_encoding_name(enum hr_encoding e);

/* Name -> encoding; 0 or -EINVAL for an unknown name. */
int hr_encoding_from_name(const char *name, enum hr_encoding *out);

/* Token count of text[0..len) (need not be NUL-terminated, may hold any bytes).
 * Exact for the two tiktoken encodings once hr_tokens_init has succeeded; otherwise, and
 * for HR_ENC_ESTIMATE, the estimate of doc/tokenizer.md. Calls hr_tokens_init if needed. */
size_t hr_count_tokens_enc(enum hr_encoding e, const char *text, size_t len);

/* The host's counter: hr_count_tokens_enc(hr_encoding_for_model(model), ...). */
size_t hr_count_tokens(const char *model, const char *text, size_t len);

/* Counting one large text in parts (on several threads): cut it only where
 * hr_tokens_split_point says, sum hr_count_tokens_part over the parts, and
 * hr_count_tokens_total(e, sum, len) is exactly hr_count_tokens_enc(e, text, len). */
/* The first cut at or after `from` that no pre-token crosses (an ASCII letter
 * or digit followed by ASCII punctuation other than '), or len when there is
 * none or e cannot be counted in parts (no tables: the shape estimate). */
size_t hr_tokens_split_point(enum hr_encoding e, const char *text, size_t len, size_t from);
size_t hr_count_tokens_part(enum hr_encoding e, const char *text, size_t len);
size_t hr_count_tokens_total(enum hr_encoding e, size_t parts_sum, size_t len);

/* 1 when the tables for e are loaded (counts are exact), else 0. */
int hr_tokens_exact(enum hr_encoding e);

#endif
