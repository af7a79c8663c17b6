/* t/respcache_test.c — SHA-256 vectors, response cache key normalisation,
 * LRU eviction by entries and bytes, TTL expiry on the injectable clock
 * (an expired answer pushed out or replaced counts as expired, not evicted),
 * the config decision (off by default), and /stats.cache. */
#include <stdlib.h>
#include <string.h>
#include "respcache.h"
#include "stats.h"
#include "tap.h"

static void hex_of(const char *s, size_t n, char out[65])
{
    uint8_t d[32];
    hr_sha256(s, n, d);
    hr_sha256_hex(d, out);
}

static int key_of(const char *json, const char *cred, const char *const *hdrs, uint8_t key[32])
{
    json_t *body = json_loads(json, 0, NULL);
    struct hr_respcache_request r = {HR_PROVIDER_OPENAI, "/v1/chat/completions", NULL, body, cred, hdrs};
    int rc = hr_respcache_key(&r, key);
    json_decref(body);
    return rc;
}

static int same_key(const char *a, const char *b)
{
    uint8_t ka[32], kb[32];
    if (key_of(a, "Bearer k1", NULL, ka) || key_of(b, "Bearer k1", NULL, kb)) return -1;
    return !memcmp(ka, kb, 32);
}

static struct hr_respcache_entry entry(const char *body)
{
    return (struct hr_respcache_entry){200, (char *)"application/json", (char *)body, strlen(body), 100, 60, 0.001};
}

static void key_n(int i, uint8_t key[32])
{
    char s[32];
    snprintf(s, sizeof s, "key %d", i);
    hr_sha256(s, strlen(s), key);
}

static int present(int i)
{
    uint8_t k[32];
    struct hr_respcache_entry e;
    key_n(i, k);
    int rc = hr_respcache_get(k, &e);
    hr_respcache_entry_free(&e);
    return rc == 0;
}

static json_int_t stat(const char *name)
{
    json_t *s = hr_respcache_stats_json();
    json_int_t v = json_integer_value(json_object_get(s, name));
    json_decref(s);
    return v;
}

int main(void)
{
    char h[65];
    /* FIPS 180-4 / NIST example vectors. */
    hex_of("", 0, h);
    is_str(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "sha256 of empty");
    hex_of("abc", 3, h);
    is_str(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "sha256 of abc");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    hex_of(two, strlen(two), h);
    is_str(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1", "sha256 of the 448-bit vector");
    {
        struct hr_sha256 c;
        uint8_t d[32];
        char a[1001];
        memset(a, 'a', sizeof a);
        hr_sha256_init(&c);
        for (int i = 0; i < 1000; i++) hr_sha256_update(&c, a, i % 2 ? 999 : 1001); /* uneven splits, 10^6 bytes */
        hr_sha256_final(&c, d);
        hr_sha256_hex(d, h);
        is_str(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0", "sha256 of a million a's, split");
    }

    /* --- key normalisation --- */
    const char *base = "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"temperature\":0.2}";
    is_int(same_key(base, "{ \"temperature\": 0.20, \"messages\": [{\"content\":\"hi\", \"role\":\"user\"}], \"model\": \"gpt-4o\" }"),
           1, "reordered keys, whitespace and 0.20 vs 0.2: same key");
    is_int(same_key(base, "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"temperature\":0.7}"), 0,
           "different temperature: different key");
    is_int(same_key(base, "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"temperature\":0.2}"), 0,
           "different model: different key");
    is_int(same_key(base, "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi!\"}],\"temperature\":0.2}"), 0,
           "different message: different key");
    is_int(same_key(base, "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"temperature\":0.2,"
                          "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}"), 0, "tools added: different key");
    is_int(same_key(base, "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"temperature\":0.2,\"seed\":1}"),
           0, "seed added: different key");
    is_int(same_key(base, "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"temperature\":0.2,"
                          "\"user\":\"u1\",\"metadata\":{\"a\":1},\"stream\":false,\"stream_options\":{\"include_usage\":true}}"),
           1, "user, metadata, stream:false, stream_options ignored");
    is_int(same_key(base, "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"temperature\":0.2,"
                          "\"some_future_param\":1}"), 0, "an unknown field is part of the key (miss, never a wrong hit)");
    {
        uint8_t a[32], b[32], c[32], d[32];
        key_of(base, "Bearer k1", NULL, a);
        key_of(base, "Bearer k2", NULL, b);
        key_of(base, NULL, NULL, c);
        ok(memcmp(a, b, 32) != 0, "different API key: different key");
        ok(memcmp(a, c, 32) != 0 && memcmp(b, c, 32) != 0, "no API key: its own key");
        const char *const beta[] = {"anthropic-beta", "x", NULL};
        key_of(base, "Bearer k1", beta, d);
        ok(memcmp(a, d, 32) != 0, "a header that changes the answer (anthropic-beta) is part of the key");
        json_t *body = json_loads(base, 0, NULL);
        struct hr_respcache_request r = {HR_PROVIDER_ANTHROPIC, "/v1/chat/completions", NULL, body, "Bearer k1", NULL};
        hr_respcache_key(&r, d);
        ok(memcmp(a, d, 32) != 0, "provider is part of the key");
        r.provider = HR_PROVIDER_OPENAI;
        r.query = "api-version=1";
        hr_respcache_key(&r, d);
        ok(memcmp(a, d, 32) != 0, "query string is part of the key");
        json_decref(body);
    }
    {
        uint8_t k[32];
        is_int(key_of("{\"model\":\"m\",\"messages\":[],\"stream\":true}", NULL, NULL, k), HR_EINVAL, "stream: not cacheable");
        is_int(key_of("[1,2]", NULL, NULL, k), HR_EINVAL, "not an object: not cacheable");
        struct hr_respcache_request r = {HR_PROVIDER_OPENAI, "/v1/chat/completions", NULL, NULL, NULL, NULL};
        is_int(hr_respcache_key(&r, k), HR_EINVAL, "no body: not cacheable");
        is_int(hr_respcache_key(NULL, k), HR_EINVAL, "NULL request: not cacheable");
    }

    /* --- disabled by default --- */
    {
        struct hr_config c;
        hr_config_defaults(&c);
        hr_respcache_setup(&c);
        ok(!hr_respcache_enabled(), "defaults: cache off");
        c.cache_ttl_s = 60;
        hr_respcache_setup(&c);
        ok(hr_respcache_enabled(), "cache_ttl set: cache on");
        is_int(stat("ttl_seconds"), 60, "ttl from cache_ttl");
        hr_respcache_shutdown();
        c.no_cache = 1; /* cache no / --no-cache */
        hr_respcache_setup(&c);
        ok(!hr_respcache_enabled(), "cache_ttl set but cache no: off");
        c.no_cache = 0;
        c.cache_ttl_s = 0;
        hr_respcache_setup(&c);
        ok(hr_respcache_enabled(), "cache yes: on");
        is_int(stat("ttl_seconds"), 300, "default ttl 300 s");
        is_int(stat("max_entries"), 1000, "default max_entries 1000");
        is_int(stat("max_bytes"), 64 << 20, "default max_bytes 64m");
        hr_respcache_shutdown();
        hr_config_free(&c);
        uint8_t k[32] = {0};
        struct hr_respcache_entry e = entry("x");
        is_int(hr_respcache_put(k, &e), HR_EINVAL, "put while off: refused");
        is_int(hr_respcache_get(k, &e), HR_RESPCACHE_MISS, "get while off: miss");
        json_t *s = hr_respcache_stats_json();
        ok(json_is_false(json_object_get(s, "enabled")), "stats: enabled false while off");
        json_decref(s);
    }

    /* --- store, hit, copy semantics --- */
    setenv("HEADROOM_TEST_NOW", "1700000000", 1);
    hr_respcache_init_memory(3, 1 << 20, 10);
    {
        uint8_t k[32];
        key_n(1, k);
        struct hr_respcache_entry in = entry("{\"answer\":1}"), out;
        is_int(hr_respcache_get(k, &out), HR_RESPCACHE_MISS, "empty cache: miss");
        is_int(hr_respcache_put(k, &in), 0, "put");
        is_int(hr_respcache_get(k, &out), 0, "then a hit");
        is_str(out.body, "{\"answer\":1}", "body back");
        is_int(out.body_len, 12, "body length back");
        is_str(out.content_type, "application/json", "content type back");
        is_int(out.status, 200, "status back");
        ok(out.tokens_before == 100 && out.tokens_after == 60, "token figures back");
        hr_respcache_entry_free(&out);
        is_int(stat("total_hits"), 1, "one hit counted");
        is_int(stat("misses"), 1, "one miss counted");
        is_int(stat("entries"), 1, "one entry");
        in = entry("{\"answer\":2}");
        hr_respcache_put(k, &in);
        hr_respcache_get(k, &out);
        is_str(out.body, "{\"answer\":2}", "put on the same key replaces");
        hr_respcache_entry_free(&out);
        is_int(stat("entries"), 1, "still one entry");
    }

    /* --- LRU by entries --- */
    {
        uint8_t k[32];
        struct hr_respcache_entry e = entry("{}");
        for (int i = 2; i <= 3; i++) {
            key_n(i, k);
            hr_respcache_put(k, &e);
        }
        ok(present(1), "touch key 1 so key 2 is least recently used");
        key_n(4, k);
        hr_respcache_put(k, &e);
        is_int(stat("entries"), 3, "max_entries 3 kept");
        ok(!present(2), "least recently used (2) evicted");
        ok(present(1) && present(3) && present(4), "the others stay");
        is_int(stat("evictions"), 1, "one eviction counted");
    }
    hr_respcache_shutdown();

    /* --- LRU by bytes --- */
    hr_respcache_init_memory(100, 4096, 10);
    {
        char *big = malloc(1500);
        memset(big, 'x', 1499);
        big[1499] = '\0';
        struct hr_respcache_entry e = entry(big);
        uint8_t k[32];
        for (int i = 1; i <= 3; i++) {
            key_n(i, k);
            is_int(hr_respcache_put(k, &e), 0, "put 1.5 KB answer %d", i);
        }
        ok(stat("bytes") <= 4096, "bytes within max_bytes (%lld)", (long long)stat("bytes"));
        is_int(stat("entries"), 2, "third answer evicted the oldest");
        ok(!present(1) && present(2) && present(3), "oldest (1) gone, 2 and 3 kept");
        char *huge = malloc(5000);
        memset(huge, 'y', 4999);
        huge[4999] = '\0';
        e = entry(huge);
        key_n(9, k);
        is_int(hr_respcache_put(k, &e), HR_ENOMEM, "an answer larger than max_bytes is not stored");
        ok(present(2) && present(3), "and evicts nothing");
        free(big);
        free(huge);
    }
    hr_respcache_shutdown();

    /* --- TTL on the injectable clock --- */
    setenv("HEADROOM_TEST_NOW", "1700000000", 1);
    hr_respcache_init_memory(10, 1 << 20, 300);
    {
        uint8_t k[32];
        key_n(1, k);
        struct hr_respcache_entry e = entry("{}");
        hr_respcache_put(k, &e);
        setenv("HEADROOM_TEST_NOW", "1700000299", 1);
        ok(present(1), "fresh at 299 s");
        setenv("HEADROOM_TEST_NOW", "1700000300", 1);
        ok(!present(1), "expired at 300 s (hits do not extend the TTL)");
        is_int(stat("entries"), 0, "expired entry removed");
        is_int(stat("expired"), 1, "expiry counted");
        setenv("HEADROOM_TEST_NOW", "not a number", 1);
        double now = hr_clock_now();
        ok(now > 1.6e9 && now < 1e11, "a bad HEADROOM_TEST_NOW falls back to the wall clock");
        unsetenv("HEADROOM_TEST_NOW");
    }
    hr_respcache_shutdown();

    /* --- a full cache: what goes past its TTL counts as expired --- */
    setenv("HEADROOM_TEST_NOW", "1700000000", 1);
    hr_respcache_init_memory(2, 1 << 20, 300);
    {
        uint8_t k[32];
        struct hr_respcache_entry e = entry("{}");
        for (int i = 1; i <= 2; i++) {
            key_n(i, k);
            hr_respcache_put(k, &e);
        }
        setenv("HEADROOM_TEST_NOW", "1700000300", 1);
        key_n(3, k);
        hr_respcache_put(k, &e);
        is_int(stat("expired"), 1, "an expired answer pushed out for room counts as expired");
        is_int(stat("evictions"), 0, "and not as an eviction");
        key_n(2, k);
        hr_respcache_put(k, &e);
        is_int(stat("expired"), 2, "an expired answer replaced by a put on its key counts as expired");
        key_n(4, k);
        hr_respcache_put(k, &e);
        is_int(stat("evictions"), 1, "a live answer pushed out for room is an eviction");
        is_int(stat("expired"), 2, "and not expired");
        ok(present(2) && present(4) && !present(3), "the least recently used live answer (3) went");
        unsetenv("HEADROOM_TEST_NOW");
    }
    hr_respcache_shutdown();
    return tap_exit();
}
