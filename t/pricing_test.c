/* t/pricing_test.c — price table loading (good and bad files), model-name
 * lookup (exact, alias, prefix, dated, provider-prefixed, unknown) and cost
 * arithmetic with cache buckets. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "pricing.h"
#include "tap.h"

#ifndef HR_SRCCONFDIR
#define HR_SRCCONFDIR "conf"
#endif

static int near(double a, double b) { return fabs(a - b) < 1e-12; }

static const char *canon(const struct hr_prices *t, const char *model)
{
    const char *c = NULL;
    return hr_prices_lookup(t, model, &c) ? c : "(unpriced)";
}

static void test_shipped_table(void)
{
    char err[1024];
    struct hr_prices *t;
    int rc = hr_prices_load_file(HR_SRCCONFDIR "/prices.json", &t, err, sizeof err);
    if (!is_int(rc, 0, "conf/prices.json loads")) {
        tap_diag("%s", err);
        return;
    }
    ok(hr_prices_version(t) && strlen(hr_prices_version(t)) == 10, "prices_version is a date");
    ok(hr_prices_model_count(t) >= 20, "OpenAI and Anthropic models listed");
    is_str(canon(t, "gpt-4o"), "gpt-4o", "exact");
    is_str(canon(t, "gpt-4o-2024-08-06"), "gpt-4o", "OpenAI dated suffix");
    is_str(canon(t, "gpt-4o-2024-05-13"), "gpt-4o-2024-05-13", "an exact dated entry beats the stripped name");
    is_str(canon(t, "claude-sonnet-4-5-20250929"), "claude-sonnet-4-5", "Anthropic dated suffix");
    is_str(canon(t, "openai/gpt-4o-mini"), "gpt-4o-mini", "provider prefix");
    is_str(canon(t, "GPT-4O-MINI-2024-07-18"), "gpt-4o-mini", "case and date");
    is_str(canon(t, "claude-3-5-sonnet-latest"), "claude-3-5-sonnet", "alias");
    is_str(canon(t, "claude-3-5-sonnet-v2@20241022"), "claude-3-5-sonnet", "Vertex @version via prefix rule");
    is_str(canon(t, "gpt-4o-mini-search-preview"), "gpt-4o-mini", "longest prefix rule wins");
    is_str(canon(t, "gpt-5-codex"), "gpt-5", "prefix rule");
    is_str(canon(t, "o4-mini-2025-04-16"), "o4-mini", "o-series dated");
    is_str(canon(t, "llama-3-70b"), "(unpriced)", "unknown model is unpriced");
    ok(!hr_prices_lookup(t, "", NULL) && !hr_prices_lookup(t, NULL, NULL), "empty name unpriced");
    const struct hr_price *p = hr_prices_lookup(t, "claude-sonnet-4-5", NULL);
    ok(p && near(p->cache_write_5m, p->input * 1.25) && near(p->cache_write_1h, p->input * 2) &&
           near(p->cache_read, p->input * 0.1), "Anthropic cache prices follow the multipliers");
    p = hr_prices_lookup(t, "gpt-4o", NULL);
    ok(p && p->cache_write_5m == 0 && p->cache_write_1h == 0 && p->cache_read < p->input,
       "OpenAI: cache writes free, reads discounted");
    /* The provider's bill for one Anthropic request with a 5-minute cache
     * write, as its pricing page gives it: 3 input + 12,304 cache-write (5m)
     * + 550 output tokens of claude-3-7-sonnet = $0.054399. */
    p = hr_prices_lookup(t, "claude-3-7-sonnet-20250219", NULL);
    struct hr_cost_usage u = {.input = 3, .cache_write = 12304, .cache_write_5m = 12304, .output = 550};
    struct hr_cost c;
    hr_cost_compute(p, &u, &c);
    ok(p && fabs(c.total_usd - 0.054399) < 5e-10, "claude-3-7-sonnet, 3 in + 12,304 cache-write 5m + 550 out = $0.054399 (%.9f)",
       c.total_usd);
    u = (struct hr_cost_usage){.input = 3, .cache_write = 12304, .output = 550}; /* no TTL breakdown: 5m */
    hr_cost_compute(p, &u, &c);
    ok(p && fabs(c.total_usd - 0.054399) < 5e-10, "cache writes without a TTL breakdown are billed at the 5m price");
    hr_prices_free(t);
}

static void test_normalise(void)
{
    char out[128];
    hr_prices_normalise("anthropic/Claude-Opus-4-1-20250805", out, sizeof out);
    is_str(out, "claude-opus-4-1", "normalise: prefix, case, date");
    hr_prices_normalise("gpt-4o-2024-08-06", out, sizeof out);
    is_str(out, "gpt-4o", "normalise: -YYYY-MM-DD");
    hr_prices_normalise("model-12345678", out, sizeof out);
    is_str(out, "model-12345678", "normalise: 8 digits that are no year stay");
    hr_prices_normalise("-20250101", out, sizeof out);
    is_str(out, "-20250101", "normalise: nothing left before the date keeps it");
}

#define BAD(json, needle, name)                                                          \
    do {                                                                                 \
        struct hr_prices *t_ = NULL;                                                     \
        char e_[1024] = "";                                                              \
        int rc_ = hr_prices_load_buffer(json, strlen(json), "p.json", &t_, e_, sizeof e_); \
        ok(rc_ < 0 && !t_ && strstr(e_, needle), "bad table: %s", name);               \
        if (!strstr(e_, needle)) tap_diag("error was: %s", e_);                          \
        hr_prices_free(t_);                                                              \
    } while (0)

static void test_bad_tables(void)
{
    BAD("{", "p.json:1:", "truncated JSON names line and column");
    BAD("[]", "top level", "not an object");
    BAD("{\"models\":{\"a\":{\"input\":1,\"output\":2}}}", "prices_version", "no version");
    BAD("{\"prices_version\":\"x\"}", "\"models\"", "no models");
    BAD("{\"prices_version\":\"x\",\"models\":{}}", "non-empty", "empty models");
    BAD("{\"prices_version\":\"x\",\"models\":{\"a\":{\"input\":1}}}", "\"output\" is missing", "missing output");
    BAD("{\"prices_version\":\"x\",\"models\":{\"a\":{\"input\":-1,\"output\":2}}}", "models.\"a\".input", "negative");
    BAD("{\"prices_version\":\"x\",\"models\":{\"a\":{\"input\":\"1\",\"output\":2}}}", "must be a number", "string price");
    BAD("{\"prices_version\":\"x\",\"models\":{\"a\":{\"input\":1,\"ouput\":2}}}", "unknown field \"ouput\"", "typo");
    BAD("{\"prices_version\":\"x\",\"models\":{\"A\":{\"input\":1,\"output\":2}}}", "lower-case", "upper-case name");
    BAD("{\"prices_version\":\"x\",\"models\":{\"a\":{\"input\":1,\"output\":2}},\"aliases\":{\"b\":\"c\"}}",
        "aliases.\"b\"", "alias to nowhere");
    BAD("{\"prices_version\":\"x\",\"models\":{\"a\":{\"input\":1,\"output\":2}},\"prefixes\":[]}", "\"prefixes\"",
        "prefixes not an object");
    BAD("{\"prices_version\":\"x\",\"models\":{\"a\":{\"input\":1,\"output\":2}},\"extra\":1}", "unknown top-level",
        "unknown key");
    BAD("{\"prices_version\":\"x\",\"prices_version\":\"y\",\"models\":{}}", "p.json:1:", "duplicate key");
    struct hr_prices *t;
    char err[256];
    ok(hr_prices_load_file("/nonexistent/prices.json", &t, err, sizeof err) < 0 && strstr(err, "/nonexistent"),
       "missing file names the path");
}

static void test_cost(void)
{
    const char *json = "{\"prices_version\":\"t\",\"models\":{"
                       "\"m\":{\"input\":3,\"output\":15,\"cache_read\":0.3,\"cache_write_5m\":3.75,\"cache_write_1h\":6},"
                       "\"n\":{\"input\":2,\"output\":8}}}";
    struct hr_prices *t;
    char err[256];
    if (!is_int(hr_prices_load_buffer(json, strlen(json), "t", &t, err, sizeof err), 0, "small table loads")) return;
    const struct hr_price *p = hr_prices_lookup(t, "m", NULL);
    struct hr_cost c;
    struct hr_cost_usage u = {.input = 1000, .cache_read = 20000, .cache_write = 3000, .cache_write_5m = 1000,
                              .cache_write_1h = 2000, .output = 500, .tokens_saved = 4000};
    hr_cost_compute(p, &u, &c);
    double in = (1000 * 3 + 20000 * 0.3 + 1000 * 3.75 + 2000 * 6) / 1e6, out = 500 * 15 / 1e6;
    ok(near(c.input_usd, in), "input side: uncached + reads + 5m + 1h writes (%.9f)", c.input_usd);
    ok(near(c.output_usd, out), "output side");
    ok(near(c.total_usd, in + out), "total = input + output");
    ok(near(c.savings_usd, 4000 * 3 / 1e6), "savings: saved tokens at list input price");
    ok(near(c.cache_savings_usd, 20000 * (3 - 0.3) / 1e6), "cache savings: reads at input price minus their cost");
    struct hr_cost_usage u2 = {.cache_write = 1000};
    hr_cost_compute(p, &u2, &c);
    ok(near(c.total_usd, 1000 * 3.75 / 1e6), "writes without a TTL split are 5m writes");
    p = hr_prices_lookup(t, "n", NULL);
    ok(p && p->cache_read == 2 && p->cache_write_5m == 2 && p->cache_write_1h == 2, "absent cache prices = input");
    hr_cost_compute(NULL, &u, &c);
    ok(c.total_usd == 0 && c.savings_usd == 0, "unpriced costs 0");
    hr_prices_free(t);
}

int main(void)
{
    test_shipped_table();
    test_normalise();
    test_bad_tables();
    test_cost();
    tap_done();
    return tap_failed ? 1 : 0;
}
