/* src/tokenizer.h — internal pieces of the tiktoken-compatible BPE counter: Unicode class
 * lookup, the rank table, the two pre-tokenisers and the BPE merge. Not a public header. */
#ifndef HR_TOKENIZER_H
#define HR_TOKENIZER_H
#include <stddef.h>
#include <stdint.h>

/* Per-code-point class bits (src/unicode_tables.c, generated from Unicode 16.0). */
#define HR_UC_L  1u   /* \p{L} */
#define HR_UC_N  2u   /* \p{N} */
#define HR_UC_WS 4u   /* \s = White_Space */
#define HR_UC_UP 8u   /* [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}] (o200k) */
#define HR_UC_LO 16u  /* [\p{Ll}\p{Lm}\p{Lo}\p{M}] (o200k) */

extern const unsigned short hr_uc_stage1[];
extern const unsigned char hr_uc_stage2[][128];

static inline unsigned hr_uc_flags(uint32_t cp)
{
    return hr_uc_stage2[hr_uc_stage1[cp >> 7]][cp & 127];
}

/* A loaded rank table (one .tiktoken file); immutable after hr_bpe_load. */
struct hr_bpe;

/* Load PATH ("base64 rank" per line). 0, or -errno with a message in err. */
int hr_bpe_load(const char *path, struct hr_bpe **out, char *err, size_t errlen);
void hr_bpe_free(struct hr_bpe *b);
size_t hr_bpe_size(const struct hr_bpe *b);
/* Rank of a byte string, or UINT32_MAX when it is not a token. */
uint32_t hr_bpe_rank(const struct hr_bpe *b, const uint8_t *p, size_t n);
/* Number of tokens BPE makes of one pre-token (whole-piece lookup first, like tiktoken). */
size_t hr_bpe_count_piece(const struct hr_bpe *b, const uint8_t *p, size_t n);
/* The two merge strategies, exposed so tests can check they agree. */
size_t hr_bpe_count_small(const struct hr_bpe *b, const uint8_t *p, size_t n);
size_t hr_bpe_count_heap(const struct hr_bpe *b, const uint8_t *p, size_t n);

enum hr_pretok { HR_PRETOK_CL100K, HR_PRETOK_O200K };

/* End offset of the pre-token starting at pos in valid UTF-8 s[0..n). */
size_t hr_pretok_next(enum hr_pretok pt, const uint8_t *s, size_t n, size_t pos);
/* The same without the ASCII fast path: the reference the tests hold it to. */
size_t hr_pretok_next_general(enum hr_pretok pt, const uint8_t *s, size_t n, size_t pos);

/* Length of the valid UTF-8 prefix of s[0..n) (strict: no overlongs, surrogates, > U+10FFFF). */
size_t hr_utf8_valid_prefix(const uint8_t *s, size_t n);

/* Exact count of s[0..n): valid UTF-8 runs are tokenised independently, every invalid byte
 * counts as one (byte-level) token. */
size_t hr_tokenizer_count(const struct hr_bpe *b, enum hr_pretok pt, const uint8_t *s, size_t n);

/* Estimate without rank tables: o200k pre-tokens, each costed by its length and script. */
size_t hr_tokenizer_estimate(const uint8_t *s, size_t n);

#endif
