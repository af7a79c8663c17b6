/* t/fuzz/fuzz_crush.c — libFuzzer-style target for smart_crusher's core: any bytes in,
 * no crash or leak, and whenever it crushes, the output parses as JSON. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../../plugins/smart_crusher/crush.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The first byte picks max_items so small arrays reach the selection code too. */
    struct hr_sc_config cfg = {1 + (size ? data[0] % 16 : 0), 0.0, 0.05};
    size_t len = size ? size - 1 : 0;
    char *text = malloc(len + 1); /* NUL-terminated, as hr_sc_crush requires */
    if (!text)
        return 0;
    memcpy(text, size ? (const char *)data + 1 : "", len);
    text[len] = '\0';
    struct hr_sc_output out;
    int rc = hr_sc_crush(&cfg, text, len, "error timeout", &out);
    free(text);
    if (rc == HR_SC_CRUSHED) {
        hr_sc_output_set_hash(&out, "0123456789abcdef01234567");
        json_t *j = json_loadb(out.text, out.len, 0, NULL);
        if (!j)
            abort();
        json_decref(j);
        hr_sc_output_free(&out);
    }
    return 0;
}
