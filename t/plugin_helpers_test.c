/* t/plugin_helpers_test.c — the inline helpers of headroom/plugin.h.
 * hr_tokens_for_savings must turn a stage's savings test,
 * (double)after <= (1.0 - min_savings) * (double)tokens, into a threshold on
 * the original's count that decides exactly alike for every count: stages
 * ask the host "at least that many?" instead of reading a whole count. */
#include <stdlib.h>
#include <string.h>
#include "headroom/plugin.h"
#include "tap.h"

static size_t at_least_calls;
static int fake_at_least(struct hr_request *req, size_t i, size_t n)
{
    at_least_calls++;
    return req->units[i].tokens >= n + 1000; /* distinguishable from reading .tokens */
}

int main(void)
{
    static const double savings[] = {0.0, 0.05, 0.1, 0.1 + 1e-12, 0.25, 1.0 / 3.0, 0.5, 0.9, 0.99};
    static const size_t afters[] = {0, 1, 2, 3, 7, 9, 10, 11, 99, 100, 101, 999, 1000, 1263, 4096, 123457};
    size_t checked = 0, wrong = 0;
    for (size_t a = 0; a < sizeof afters / sizeof *afters; a++)
        for (size_t m = 0; m < sizeof savings / sizeof *savings; m++) {
            size_t need = hr_tokens_for_savings(afters[a], savings[m]);
            size_t lo = need > 3 ? need - 3 : 0;
            for (size_t t = lo; t < need + 4; t++) {
                int direct = (double)afters[a] <= (1.0 - savings[m]) * (double)t;
                if (direct != (t >= need)) {
                    tap_diag("after %zu, min_savings %.17g, tokens %zu: direct %d, threshold %zu", afters[a], savings[m], t,
                         direct, need);
                    wrong++;
                }
                checked++;
            }
        }
    is_int((long long)wrong, 0, "hr_tokens_for_savings decides as the direct test, %zu cases", checked);
    is_int((long long)hr_tokens_for_savings(5, 1.0), (long long)HR_TOKENS_UNKNOWN,
           "min_savings 1: no count is enough");
    is_int((long long)hr_tokens_for_savings(0, 0.1), 0, "an empty result saves enough of anything");

    /* hr_unit_tokens_at_least: a 1.3 host is asked; an older one's count is read. */
    struct hr_unit u = {.struct_size = sizeof u, .tokens = 1500};
    struct hr_request req = {.struct_size = sizeof req, .units = &u, .n_units = 1};
    struct hr_host host;
    memset(&host, 0, sizeof host);
    host.struct_size = sizeof host;
    host.unit_tokens_at_least = fake_at_least;
    ok(!hr_unit_tokens_at_least(&host, &req, 0, 600) && at_least_calls == 1, "1.3 host: the host answers");
    host.struct_size = (uint32_t)offsetof(struct hr_host, unit_tokens_at_least);
    ok(hr_unit_tokens_at_least(&host, &req, 0, 600) && at_least_calls == 1, "1.2 host: hr_unit.tokens is read");
    ok(!hr_unit_tokens_at_least(&host, &req, 0, 1501), "1.2 host: 1501 > 1500");
    return tap_exit();
}
