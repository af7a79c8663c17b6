/* t/fuzz/fuzz_tokens.c — libFuzzer target for the token counter: any bytes (invalid UTF-8,
 * huge runs, odd scripts) must count without crashing and satisfy the counting invariants. */
#include "../../src/tokens.h"
#include "../../src/tokenizer.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c) do { if (!(c)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int exact = -1;
    if (exact < 0) {
        char err[512];
        exact = hr_tokens_init(err, sizeof err) == 0;  /* without tables: fuzz the estimator */
    }
    const char *s = (const char *)data;
    for (int e = 0; e < 3; e++) {
        size_t n = hr_count_tokens_enc((enum hr_encoding)e, s, size);
        /* Every token covers at least one byte, and non-empty text has a token. */
        CHECK(n <= size);
        CHECK((n == 0) == (size == 0));
    }
    if (exact && size < 4096) {
        /* Invalid bytes split the text: count = sum over valid runs + one per bad byte. */
        for (int e = 0; e < 2; e++) {
            size_t want = 0, pos = 0;
            while (pos < size) {
                size_t v = hr_utf8_valid_prefix(data + pos, size - pos);
                if (v)
                    want += hr_count_tokens_enc((enum hr_encoding)e, s + pos, v);
                pos += v;
                if (pos < size) {
                    want++;
                    pos++;
                }
            }
            CHECK(want == hr_count_tokens_enc((enum hr_encoding)e, s, size));
        }
    }
    /* Pre-tokens of valid text tile it exactly. */
    size_t v = hr_utf8_valid_prefix(data, size);
    for (int pt = 0; pt < 2; pt++)
        for (size_t pos = 0; pos < v;) {
            size_t e = hr_pretok_next((enum hr_pretok)pt, data, v, pos);
            CHECK(e > pos && e <= v);
            CHECK(hr_utf8_valid_prefix(data + pos, e - pos) == e - pos);  /* never splits a char */
            pos = e;
        }
    return 0;
}
