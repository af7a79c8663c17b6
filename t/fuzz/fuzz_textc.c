/* t/fuzz/fuzz_textc.c — libFuzzer-style target for the log, search and diff
 * compressors' cores: any bytes in, no crash or leak; a result has its
 * marker with the hash placeholder, and the same input gives the same bytes.
 * The first byte picks the compressor and small settings, so short inputs
 * reach the folding code too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "logc.h"
#include "searchc.h"
#include "diffc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned sel = size ? data[0] : 0;
    size_t len = size ? size - 1 : 0;
    char *text = malloc(len + 1); /* NUL-terminated, as units are */
    if (!text)
        return 0;
    memcpy(text, size ? (const char *)data + 1 : "", len);
    text[len] = '\0';
    struct hr_logc_config lc = {sel >> 2 & 3, sel >> 4 & 3, sel >> 6, 1 + (sel >> 2 & 7), 4 + (sel >> 5)};
    struct hr_searchc_config sc = {sel >> 2 & 7, 1 + (sel >> 5)};
    struct hr_diffc_config dc = {sel >> 2 & 3};
    hr_text_compress_fn fn = sel % 3 == 0 ? hr_logc_compress : sel % 3 == 1 ? hr_searchc_compress : hr_diffc_compress;
    const void *cfg = sel % 3 == 0 ? (const void *)&lc : sel % 3 == 1 ? (const void *)&sc : (const void *)&dc;
    struct hr_text_out a, b;
    int ra = fn(cfg, text, len, "error timeout stream", &a);
    int rb = fn(cfg, text, len, "error timeout stream", &b);
    if (ra != rb)
        abort();
    if (ra == 0) {
        if (a.b.len != b.b.len || memcmp(a.b.p, b.b.p, a.b.len) || !memmem(a.b.p, a.b.len, "hash=" HR_TEXTC_PLACEHOLDER, 29))
            abort();
        hr_text_out_free(&a);
        hr_text_out_free(&b);
    }
    free(text);
    return 0;
}
