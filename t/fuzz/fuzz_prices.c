/* t/fuzz/fuzz_prices.c — fuzz target: the price table parser on any bytes;
 * a table that loads is then asked about a few model names and priced. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pricing.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hr_prices *t = NULL;
    char err[512];
    int rc = hr_prices_load_buffer((const char *)data, size, "fuzz.json", &t, err, sizeof err);
    if (rc == 0) {
        static const char *const names[] = {"gpt-4o", "openai/gpt-4o-2024-08-06", "claude-sonnet-4-5-20250929",
                                            "a", "", "x@y", "claude-3-5-sonnet-v2@20241022", "-20250101"};
        for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
            const char *canon = NULL;
            const struct hr_price *p = hr_prices_lookup(t, names[i], &canon);
            struct hr_cost_usage u = {1000, 2000, 300, 100, 100, 50, 400};
            struct hr_cost c;
            hr_cost_compute(p, &u, &c);
            if (p && (!canon || c.total_usd < 0)) abort();
        }
        /* Names taken from the input itself (short NUL-free pieces). */
        char name[64];
        size_t n = size < sizeof name - 1 ? size : sizeof name - 1;
        memcpy(name, data, n);
        name[n] = '\0';
        hr_prices_lookup(t, name, NULL);
        hr_prices_free(t);
    } else if (t || !err[0]) {
        abort(); /* a failure must say why and hand back nothing */
    }
    return 0;
}
