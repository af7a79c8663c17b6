/* base64.h — base64 decoding, written once for the .tiktoken rank tables
 * (src/tokenizer_bpe.c) and the images and PDFs in requests
 * (lib/media_size.c). */
#ifndef HR_BASE64_H
#define HR_BASE64_H
#include <stddef.h>
#include <stdint.h>

/* '-' and '_' are digits too (62 and 63, the URL-safe alphabet's), beside
 * '+' and '/'. */
#define HR_B64_URL 1u
/* A character that is not a digit (padding, a line break, anything) is
 * skipped, not an error. */
#define HR_B64_SKIP 2u

/* The value (0..63) of the base64 digit c, -1 when c is not one. */
int hr_b64_value(unsigned char c, unsigned flags);

/* Decodes s[0..n) into out, which has room for n / 4 * 3 + 3 bytes: the
 * bytes written, or -1 when a character is not a digit (without
 * HR_B64_SKIP). Trailing '=' are padding, any number of them, and need not
 * make the length a multiple of 4; bits past the last whole byte are
 * dropped. */
long hr_b64_decode(const char *s, size_t n, uint8_t *out, unsigned flags);

#endif
