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

    /* An original stored again (an agent resends its tool outputs every
     * turn) skips SHA-256 through a memo, but only ever gets SHA-256's
     * address: after its entry was evicted, and for other bytes of the same
     * length, the address is computed again. */
    ok(hr_ccr_init_memory(64 * 1024, 60) == 0, "a 64 kB store");
    static char big[3][20000];
    for (int k = 0; k < 3; k++)
        for (size_t i = 0; i < sizeof big[k]; i++) big[k][i] = (char)('a' + (i * 7 + (size_t)k * (i % 13 == 0)) % 26);
    char want[3][HR_CCR_HASH_LEN + 1], got3[HR_CCR_HASH_LEN + 1];
    for (int k = 0; k < 3; k++) hr_ccr_hash(big[k], sizeof big[k], want[k]);
    ok(strcmp(want[0], want[1]) && strcmp(want[1], want[2]), "three 20 kB originals, three addresses");
    int same = 1;
    for (int round = 0; round < 3; round++)
        for (int k = 0; k < 3; k++)
            same &= hr_ccr_put(big[k], sizeof big[k], got3) == HR_OK && !strcmp(got3, want[k]);
    ok(same, "each stored three times: SHA-256's address every time");
    st = hr_ccr_stats_json();
    is_int(json_integer_value(json_object_get(st, "stores")), 9, "/stats.ccr.stores counts nine (a remembered one refreshes its entry)");
    json_decref(st);
    /* evict big[0]: 3 x 20 kB fit, a fourth pushes the oldest out */
    static char other[20000];
    memset(other, 'z', sizeof other);
    ok(hr_ccr_put(big[1], sizeof big[1], got3) == HR_OK && hr_ccr_put(big[2], sizeof big[2], got3) == HR_OK &&
           hr_ccr_put(other, sizeof other, got3) == HR_OK, "big[0] is now the oldest, and a fourth original pushes it out");
    ok(!hr_ccr_get(want[0], &len), "big[0] evicted");
    ok(hr_ccr_put(big[0], sizeof big[0], got3) == HR_OK && !strcmp(got3, want[0]),
       "stored again after eviction: its SHA-256 address, not a stale one");
    got = hr_ccr_get(want[0], &len);
    ok(got && len == sizeof big[0] && !memcmp(got, big[0], len), "and the store holds it again");
    hr_ccr_free(got);
    hr_ccr_shutdown();
    return tap_exit();
}
