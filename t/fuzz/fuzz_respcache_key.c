/* t/fuzz/fuzz_respcache_key.c — fuzz target: response cache keys of any
 * request body. A body that parses must get the same key after a
 * round trip through jansson with keys reordered (normalisation is stable);
 * the answer bytes stored under it must come back unchanged. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "respcache.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int started;
    if (!started) {
        hr_respcache_init_memory(16, 1 << 16, 60);
        started = 1;
    }
    json_t *body = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
    const char *const hdrs[] = {"anthropic-version", "2023-06-01", "x-api-key", NULL, NULL};
    struct hr_respcache_request r = {HR_PROVIDER_ANTHROPIC, "/v1/messages", NULL, body, "Bearer k", hdrs};
    uint8_t k1[HR_RESPCACHE_KEY_LEN], k2[HR_RESPCACHE_KEY_LEN];
    int rc = hr_respcache_key(&r, k1);
    if (rc == HR_OK) {
        char *again = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
        json_t *b2 = again ? json_loads(again, 0, NULL) : NULL;
        r.body = b2;
        if (b2 && hr_respcache_key(&r, k2) == HR_OK && memcmp(k1, k2, sizeof k1)) abort();
        json_decref(b2);
        free(again);
        struct hr_respcache_entry e = {200, (char *)"application/json", (char *)data, size, size, size / 2, 0.0}, out;
        if (hr_respcache_put(k1, &e) == HR_OK) {
            if (hr_respcache_get(k1, &out) != HR_OK) abort();
            if (out.body_len != size || (size && memcmp(out.body, data, size))) abort();
            hr_respcache_entry_free(&out);
        }
    } else if (json_is_object(body) && !json_is_true(json_object_get(body, "stream"))) {
        abort(); /* every non-streaming object is cacheable */
    }
    json_decref(body);
    return 0;
}
