/* body_codec.h — request bodies sent with Content-Encoding (Codex CLI
 * signed in with ChatGPT sends zstd): decoded to be read, and a body the
 * stages changed encoded again the way the client sent it. */
#ifndef HR_BODY_CODEC_H
#define HR_BODY_CODEC_H
#include <stddef.h>

enum hr_codec { HR_CODEC_IDENTITY, HR_CODEC_GZIP, HR_CODEC_DEFLATE, HR_CODEC_ZSTD, HR_CODEC_UNSUPPORTED };

enum hr_codec_status {
    HR_CODEC_OK = 0,
    HR_CODEC_ERR_UNSUPPORTED = -1, /* a coding headroomd cannot read (br, a list of codings) */
    HR_CODEC_ERR_TOO_LARGE = -2,   /* decoded, it would pass the limit */
    HR_CODEC_ERR_CORRUPT = -3,     /* not valid data in that coding */
    HR_CODEC_ERR_NOMEM = -4,
};

/* The coding a Content-Encoding value names (NULL or "identity": none). */
enum hr_codec hr_codec_parse(const char *content_encoding);

/* Decode `len` bytes into a malloc'd, NUL-terminated *out of at most `max`
 * bytes. On an error, `why` says what was wrong with the data. */
int hr_codec_decode(enum hr_codec c, const char *in, size_t len, size_t max, char **out, size_t *out_len, char *why,
                    size_t whylen);

/* Encode `len` bytes (a fast level: this is on the request path) into a
 * malloc'd *out. */
int hr_codec_encode(enum hr_codec c, const char *in, size_t len, char **out, size_t *out_len);

#endif
