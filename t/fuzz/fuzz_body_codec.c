/* t/fuzz/fuzz_body_codec.c — fuzz target: request-body decoding
 * (src/body_codec.c) on hostile bytes. Byte 0 picks the coding (low 2 bits:
 * gzip, deflate, zstd) and the limit (the rest: 0..63 KB in 1 KB steps, so
 * the too-large path is reached); the rest is the body. A body that decodes
 * must fit the limit and be NUL-terminated, and must come back the same
 * after our own encode and decode. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "body_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    static const enum hr_codec codecs[] = {HR_CODEC_GZIP, HR_CODEC_DEFLATE, HR_CODEC_ZSTD, HR_CODEC_ZSTD};
    enum hr_codec c = codecs[data[0] & 3];
    size_t max = (size_t)(data[0] >> 2) * 1024;
    char *out, why[160];
    size_t out_len;
    if (hr_codec_decode(c, (const char *)data + 1, size - 1, max, &out, &out_len, why, sizeof why) != HR_CODEC_OK)
        return 0;
    if (out_len > max || out[out_len] != '\0') abort();
    char *enc, *back;
    size_t enc_len, back_len;
    if (hr_codec_encode(c, out, out_len, &enc, &enc_len) == HR_CODEC_OK) {
        if (hr_codec_decode(c, enc, enc_len, max, &back, &back_len, why, sizeof why) != HR_CODEC_OK ||
            back_len != out_len || memcmp(back, out, out_len))
            abort();
        free(back);
        free(enc);
    }
    free(out);
    return 0;
}
