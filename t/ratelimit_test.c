/* t/ratelimit_test.c — token buckets per hashed key: request and token
 * limits, refill, Retry-After values, per-key isolation, the key cap, the
 * config decision, and the 429 bodies in each provider's shape. */
#include <string.h>
#include "api/api.h"
#include "ratelimit.h"
#include "tap.h"

static uint8_t K1[32], K2[32], ANON[32];
static struct hr_ratelimit_verdict v;

static int admit(const uint8_t *key, uint64_t tokens, double now)
{
    memset(&v, 0, sizeof v);
    return hr_ratelimit_admit(key, tokens, 1, now, &v);
}

static json_int_t stat(const char *name)
{
    json_t *s = hr_ratelimit_stats_json();
    json_int_t n = json_integer_value(json_object_get(s, name));
    json_decref(s);
    return n;
}

int main(void)
{
    hr_ratelimit_key("Bearer sk-one", K1);
    hr_ratelimit_key("Bearer sk-two", K2);
    hr_ratelimit_key(NULL, ANON);
    {
        uint8_t again[32], empty[32];
        hr_ratelimit_key("Bearer sk-one", again);
        hr_ratelimit_key("", empty);
        ok(!memcmp(K1, again, 32), "same credential, same key");
        ok(memcmp(K1, K2, 32) != 0, "different credentials, different keys");
        ok(!memcmp(ANON, empty, 32), "no credential and empty credential share the anonymous bucket");
        ok(memcmp(K1, "Bearer sk-one", 13) != 0, "the key is a digest, not the credential");
    }

    /* disabled */
    is_int(hr_ratelimit_init(0, 0, 0), 0, "init with no limits");
    ok(!hr_ratelimit_enabled(), "no limits: disabled");
    for (int i = 0; i < 1000; i++)
        if (admit(K1, 1000000, 1000)) break;
    is_int(stat("rejected"), 0, "disabled: 1000 requests never limited");

    /* requests per minute */
    hr_ratelimit_init(3, 0, 0);
    ok(hr_ratelimit_enabled(), "rpm 3: enabled");
    double t = 1700000000;
    is_int(admit(K1, 10, t), 0, "request 1 of 3");
    is_int(admit(K1, 10, t), 0, "request 2 of 3");
    is_int(admit(K1, 10, t), 0, "request 3 of 3 (burst up to the limit)");
    is_int(admit(K1, 10, t), HR_RATELIMIT_LIMITED, "request 4 refused");
    is_int(v.retry_after_s, 20, "Retry-After 20 s (one request refills every 60/3 s)");
    is_str(v.limit, "requests", "the request limit refused it");
    is_int(v.per_minute, 3, "limit value reported");
    is_int(admit(K2, 10, t), 0, "another key is not affected");
    is_int(admit(ANON, 10, t), 0, "nor the anonymous bucket");
    is_int(admit(K1, 10, t + 5), HR_RATELIMIT_LIMITED, "5 s later still refused");
    is_int(v.retry_after_s, 15, "Retry-After counts down (15 s)");
    is_int(admit(K1, 10, t + 20), 0, "after 20 s one request passes");
    is_int(admit(K1, 10, t + 20), HR_RATELIMIT_LIMITED, "and only one");
    is_int(admit(K1, 10, t + 100), 0, "refilled after a pause");
    is_int(admit(K1, 10, t + 100), 0, "burst again");
    is_int(admit(K1, 10, t + 100), 0, "up to the limit");
    is_int(admit(K1, 10, t + 100), HR_RATELIMIT_LIMITED, "then refused");
    is_int(admit(K1, 10, t + 50), HR_RATELIMIT_LIMITED, "a clock that goes back refills nothing");
    is_int(stat("rejected"), 5, "rejections counted");
    is_int(stat("tracked_keys"), 3, "three keys tracked");
    is_int(stat("rpm"), 3, "stats: rpm");

    /* check-only (before compressing) does not charge */
    hr_ratelimit_init(1, 0, 0);
    is_int(hr_ratelimit_admit(K1, 0, 0, t, &v), 0, "check-only passes with room");
    is_int(hr_ratelimit_admit(K1, 0, 0, t, &v), 0, "and charges nothing");
    is_int(admit(K1, 5, t), 0, "the real request passes");
    is_int(hr_ratelimit_admit(K1, 0, 0, t, &v), HR_RATELIMIT_LIMITED, "check-only now refuses");
    is_int(v.retry_after_s, 60, "Retry-After 60 s at 1 rpm");

    /* tokens per minute */
    hr_ratelimit_init(0, 1000, 0);
    is_int(admit(K1, 600, t), 0, "600 of 1000 tokens");
    is_int(admit(K1, 600, t), HR_RATELIMIT_LIMITED, "600 more refused");
    is_str(v.limit, "tokens", "the token limit refused it");
    is_int(v.retry_after_s, 12, "Retry-After 12 s (200 tokens missing at 1000/min)");
    is_int(admit(K1, 400, t), 0, "400 still fit");
    is_int(admit(K1, 1, t), HR_RATELIMIT_LIMITED, "bucket empty");
    is_int(v.retry_after_s, 1, "Retry-After at least 1 s");
    is_int(admit(K2, 5000, t), 0, "a request larger than the minute's allowance passes on a full bucket");
    is_int(admit(K2, 1, t + 60), HR_RATELIMIT_LIMITED, "and leaves the key in debt");
    is_int(v.retry_after_s, 181, "until the debt is repaid (3000 left + 1 token at 1000/min)");
    is_int(admit(K2, 5000, t + 300), 0, "full again after 5 minutes: passes again");
    /* The check before counting (no charge) refuses only an empty bucket,
     * with the wait until it holds the caller's estimate of the request, so
     * a client that waits as told is not refused again once counted. */
    hr_ratelimit_init(0, 600, 0);
    is_int(admit(ANON, 804, t), 0, "tpm 600: an 804-token request passes on a full bucket (204 in debt)");
    is_int(hr_ratelimit_admit(ANON, 804, 0, t, &v), HR_RATELIMIT_LIMITED, "the next, before counting: refused");
    is_int(v.retry_after_s, 81, "Retry-After until the bucket holds the estimate (204 + 600 at 600/min = 80.4 s)");
    is_int(hr_ratelimit_admit(ANON, 804, 0, t + 81, &v), 0, "after waiting as told: the check passes");
    is_int(admit(ANON, 804, t + 81), 0, "and the counted request too");
    is_int(hr_ratelimit_admit(ANON, 0, 0, t + 82, &v), HR_RATELIMIT_LIMITED, "no estimate (0): refused while in debt");
    ok(v.retry_after_s >= 1 && v.retry_after_s <= 21, "no estimate: the wait until one token (%d s)", v.retry_after_s);

    /* both limits: the longer wait wins */
    hr_ratelimit_init(60, 600, 0);
    is_int(admit(K1, 600, t), 0, "rpm 60 / tpm 600: first request takes all tokens");
    is_int(admit(K1, 300, t), HR_RATELIMIT_LIMITED, "second refused");
    is_str(v.limit, "tokens", "by the token limit");
    is_int(v.retry_after_s, 30, "Retry-After 30 s");
    is_int(stat("tpm"), 600, "stats: tpm");

    /* key cap: least recently seen key forgotten */
    hr_ratelimit_init(1, 0, 2);
    uint8_t K3[32];
    hr_ratelimit_key("Bearer sk-three", K3);
    admit(K1, 1, t);
    admit(K2, 1, t);
    is_int(admit(K1, 1, t), HR_RATELIMIT_LIMITED, "K1 used up (and now most recent)");
    admit(K3, 1, t);
    is_int(stat("tracked_keys"), 2, "at most max_keys tracked");
    is_int(stat("evicted_keys"), 1, "one key forgotten");
    is_int(admit(K1, 1, t), HR_RATELIMIT_LIMITED, "K1 (recently seen) still limited");
    is_int(admit(K2, 1, t), 0, "K2 (least recently seen) was forgotten: fresh bucket");

    /* config decision */
    {
        struct hr_config c;
        hr_config_defaults(&c);
        hr_ratelimit_setup(&c);
        ok(!hr_ratelimit_enabled(), "defaults: off");
        c.rate_limit_rpm = 10;
        hr_ratelimit_setup(&c);
        ok(hr_ratelimit_enabled(), "rate_limit_rpm set: on");
        c.no_rate_limit = 1;
        hr_ratelimit_setup(&c);
        ok(!hr_ratelimit_enabled(), "rate_limit no / --no-rate-limit wins");
        hr_config_free(&c);
        json_t *s = hr_ratelimit_stats_json();
        ok(json_is_false(json_object_get(s, "enabled")), "stats: enabled false");
        json_decref(s);
    }

    /* rate-limit error bodies, as the wire formats shape them */
    {
        json_t *o = hr_api_openai_chat.error_body(HR_API_ERR_RATE_LIMIT, "slow down");
        json_t *e = json_object_get(o, "error");
        is_str(json_string_value(json_object_get(e, "type")), "rate_limit_exceeded", "openai: error.type");
        is_str(json_string_value(json_object_get(e, "code")), "rate_limit_exceeded", "openai: error.code");
        is_str(json_string_value(json_object_get(e, "message")), "slow down", "openai: error.message");
        ok(json_is_null(json_object_get(e, "param")), "openai: error.param null");
        json_decref(o);
        o = hr_api_anthropic_messages.error_body(HR_API_ERR_RATE_LIMIT, "slow down");
        is_str(json_string_value(json_object_get(o, "type")), "error", "anthropic: type error");
        e = json_object_get(o, "error");
        is_str(json_string_value(json_object_get(e, "type")), "rate_limit_error", "anthropic: error.type");
        is_str(json_string_value(json_object_get(e, "message")), "slow down", "anthropic: error.message");
        json_decref(o);
    }
    hr_ratelimit_shutdown();
    ok(!hr_ratelimit_enabled(), "shutdown: off");
    return tap_exit();
}
