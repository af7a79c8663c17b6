/* pricing.h — the model price table (conf/prices.json or `prices FILE`):
 * loading, model-name lookup, and the per-request cost arithmetic. */
#ifndef HR_PRICING_H
#define HR_PRICING_H
#include <stddef.h>
#include <stdint.h>

/* USD per 1,000,000 tokens. */
struct hr_price {
    double input;           /* uncached input */
    double output;
    double cache_read;
    double cache_write_5m;
    double cache_write_1h;
};

struct hr_prices;

/*
 * hr_prices_load_buffer / hr_prices_load_file
 *   Parse a price table. `name` (the file path) prefixes error text, which
 *   says what is wrong and where (jansson's line/column for bad JSON, the
 *   JSON path of a bad field otherwise). Returns 0, -EINVAL (bad content),
 *   -ENOENT/-EACCES... (file cannot be read) or -ENOMEM.
 */
int hr_prices_load_buffer(const char *buf, size_t len, const char *name, struct hr_prices **out, char *err,
                          size_t errlen);
int hr_prices_load_file(const char *path, struct hr_prices **out, char *err, size_t errlen);
void hr_prices_free(struct hr_prices *t);

const char *hr_prices_version(const struct hr_prices *t);
size_t hr_prices_model_count(const struct hr_prices *t);

/*
 * hr_prices_lookup
 *   Price of `model`, or NULL when unknown (unpriced). Tried in order: the
 *   name as given (lower-cased), without a provider prefix ("openai/…") or a
 *   "@version" suffix, without a date suffix (-2024-08-06, -20250929); each
 *   as a model then as an alias; finally the longest matching prefix rule.
 *   `canonical` (optional) receives the price entry's model name.
 */
const struct hr_price *hr_prices_lookup(const struct hr_prices *t, const char *model, const char **canonical);

/* Strip provider prefix, "@…" suffix and a trailing date from a lower-cased
 * copy of `model` into out (always NUL-terminated). */
void hr_prices_normalise(const char *model, char *out, size_t outlen);

/* What one request used, as the provider reported it. */
struct hr_cost_usage {
    uint64_t input;             /* uncached input tokens */
    uint64_t cache_read;
    uint64_t cache_write;       /* all cache writes; what 5m/1h do not cover is billed at the 5m price */
    uint64_t cache_write_5m;
    uint64_t cache_write_1h;
    uint64_t output;
    uint64_t tokens_saved;      /* removed by compression */
};

struct hr_cost {
    double total_usd;           /* input_usd + output_usd */
    double input_usd;           /* uncached input + cache reads + cache writes */
    double output_usd;
    double savings_usd;         /* tokens_saved at the list input price */
    double cache_savings_usd;   /* cache reads at input price minus what they cost */
};

/* Cost of `u` at price `p` (p NULL: all zero). */
void hr_cost_compute(const struct hr_price *p, const struct hr_cost_usage *u, struct hr_cost *out);
#endif
