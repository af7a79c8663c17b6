/* t/ccr_test.c — the CCR store's content addresses: SHA-256 based, and a
 * second content under a taken address is refused and counted. */
#include <stdlib.h>
#include <string.h>
#include "ccr.h"
#include "sha256.h"
#include "tap.h"

int main(void)
{
    ok(hr_ccr_init_memory(1 << 20, 60) == 0, "memory store up");
    char h[HR_CCR_HASH_LEN + 1];
    hr_ccr_hash("abc", 3, h);
    /* SHA-256("abc") = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad */
    is_str(h, "ba7816bf8f01cfea414140de", "address = the first 24 hex digits of SHA-256 (FIPS 180-4 vector)");
    char a[HR_CCR_HASH_LEN + 1], b[HR_CCR_HASH_LEN + 1];
    ok(hr_ccr_put("[1,2,3]", 7, a) == HR_OK, "put");
    ok(hr_ccr_put("[1,2,3]", 7, b) == HR_OK && !strcmp(a, b), "the same content again: same address, accepted");
    size_t len = 0;
    char *got = hr_ccr_get(a, &len);
    ok(got && len == 7 && !memcmp(got, "[1,2,3]", 7), "get returns the original");
    hr_ccr_free(got);
    is_int(hr_ccr_put_at(a, "[9,9,9,9]", 9), HR_EINVAL, "different content under a taken address is refused");
    got = hr_ccr_get(a, &len);
    ok(got && len == 7 && !memcmp(got, "[1,2,3]", 7), "and the address still gives the first content");
    hr_ccr_free(got);
    json_t *st = hr_ccr_stats_json();
    is_int(json_integer_value(json_object_get(st, "collisions")), 1, "/stats.ccr.collisions counts it");
    json_decref(st);
    ok(!hr_ccr_get("ABCDEF", &len) && !hr_ccr_get("zzzzzzzzzzzzzzzzzzzzzzzz", &len), "malformed addresses: not found");
    hr_ccr_shutdown();
    return tap_exit();
}
