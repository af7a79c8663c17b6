/* pricing.c — loads and checks the price table, maps model names (dated,
 * provider-prefixed, aliased) to prices, and prices one request's usage. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "pricing.h"

#define MAX_NAME 128
#define MAX_PRICE 1e6   /* USD per 1M tokens; anything above is a typo, not a price */

struct named {
    char *name;
    size_t model;       /* index into models (aliases, prefixes) */
};

struct hr_prices {
    char *version;
    size_t n_models, n_aliases, n_prefixes;
    char **model_names;          /* sorted */
    struct hr_price *prices;     /* parallel to model_names */
    struct named *aliases;       /* sorted by name */
    struct named *prefixes;
};

static const char *const price_fields[] = {"input", "output", "cache_read", "cache_write_5m", "cache_write_1h"};

void hr_prices_free(struct hr_prices *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->n_models; i++) free(t->model_names[i]);
    for (size_t i = 0; i < t->n_aliases; i++) free(t->aliases[i].name);
    for (size_t i = 0; i < t->n_prefixes; i++) free(t->prefixes[i].name);
    free(t->model_names);
    free(t->prices);
    free(t->aliases);
    free(t->prefixes);
    free(t->version);
    free(t);
}

const char *hr_prices_version(const struct hr_prices *t) { return t ? t->version : NULL; }
size_t hr_prices_model_count(const struct hr_prices *t) { return t ? t->n_models : 0; }

static void lower_copy(const char *s, char *out, size_t outlen)
{
    size_t i = 0;
    for (; s[i] && i + 1 < outlen; i++) out[i] = (char)tolower((unsigned char)s[i]);
    out[i] = '\0';
}

/* Names in the file must already be what lookups compare against. */
static int valid_name(const char *s)
{
    size_t n = strlen(s);
    if (!n || n >= MAX_NAME) return 0;
    for (; *s; s++)
        if (isupper((unsigned char)*s) || isspace((unsigned char)*s) || iscntrl((unsigned char)*s)) return 0;
    return 1;
}

static int find_model(const struct hr_prices *t, size_t n, const char *name)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(t->model_names[mid], name);
        if (!c) return (int)mid;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

static int find_alias(const struct hr_prices *t, const char *name)
{
    size_t lo = 0, hi = t->n_aliases;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(t->aliases[mid].name, name);
        if (!c) return (int)mid;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }
static int cmp_named(const void *a, const void *b)
{
    return strcmp(((const struct named *)a)->name, ((const struct named *)b)->name);
}

static int parse_price(const char *model, json_t *o, struct hr_price *p, char *err, size_t errlen)
{
    if (!json_is_object(o)) {
        snprintf(err, errlen, "models.\"%s\" must be an object like {\"input\": 2.5, \"output\": 10}", model);
        return -EINVAL;
    }
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        int known = 0;
        for (size_t i = 0; i < 5; i++) known |= !strcmp(k, price_fields[i]);
        if (!known && k[0] != '_') {
            snprintf(err, errlen, "models.\"%s\": unknown field \"%s\" (expected input, output, cache_read, "
                     "cache_write_5m, cache_write_1h)", model, k);
            return -EINVAL;
        }
    }
    double vals[5];
    for (size_t i = 0; i < 5; i++) {
        json_t *f = json_object_get(o, price_fields[i]);
        if (!f) {
            if (i < 2) {
                snprintf(err, errlen, "models.\"%s\": \"%s\" is missing (USD per 1M tokens)", model, price_fields[i]);
                return -EINVAL;
            }
            vals[i] = vals[0]; /* no separate cache price: billed as plain input */
            continue;
        }
        double x = json_is_number(f) ? json_number_value(f) : -1;
        if (!json_is_number(f) || !isfinite(x) || x < 0 || x > MAX_PRICE) {
            snprintf(err, errlen, "models.\"%s\".%s must be a number from 0 to %g (USD per 1M tokens)", model,
                     price_fields[i], MAX_PRICE);
            return -EINVAL;
        }
        vals[i] = x;
    }
    *p = (struct hr_price){vals[0], vals[1], vals[2], vals[3], vals[4]};
    return 0;
}

/* aliases / prefixes: {"name": "model in models"}. */
static int parse_refs(struct hr_prices *t, json_t *o, const char *what, struct named **out, size_t *n_out, char *err,
                      size_t errlen)
{
    if (!o) return 0;
    if (!json_is_object(o)) {
        snprintf(err, errlen, "\"%s\" must be an object mapping a name to a model in \"models\"", what);
        return -EINVAL;
    }
    size_t n = json_object_size(o);
    *out = calloc(n ? n : 1, sizeof **out);
    if (!*out) return -ENOMEM;
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        if (k[0] == '_') continue;
        const char *target = json_string_value(v);
        if (!valid_name(k)) {
            snprintf(err, errlen, "%s.\"%s\": names must be lower-case, without spaces, under %d bytes", what, k,
                     MAX_NAME);
            return -EINVAL;
        }
        int idx = target ? find_model(t, t->n_models, target) : -1;
        if (idx < 0) {
            snprintf(err, errlen, "%s.\"%s\" must name a model listed in \"models\"%s%s%s", what, k,
                     target ? " (\"" : "", target ? target : "", target ? "\" is not)" : "");
            return -EINVAL;
        }
        (*out)[*n_out].name = strdup(k);
        if (!(*out)[*n_out].name) return -ENOMEM;
        (*out)[(*n_out)++].model = (size_t)idx;
    }
    return 0;
}

static int load_doc(struct hr_prices *t, json_t *doc, char *err, size_t errlen)
{
    if (!json_is_object(doc)) {
        snprintf(err, errlen, "the top level must be an object with \"prices_version\" and \"models\"");
        return -EINVAL;
    }
    const char *k;
    json_t *v;
    json_object_foreach(doc, k, v) {
        if (k[0] != '_' && strcmp(k, "prices_version") && strcmp(k, "models") && strcmp(k, "aliases") &&
            strcmp(k, "prefixes")) {
            snprintf(err, errlen, "unknown top-level key \"%s\" (expected prices_version, models, aliases, prefixes)",
                     k);
            return -EINVAL;
        }
    }
    const char *version = json_string_value(json_object_get(doc, "prices_version"));
    if (!version || !*version) {
        snprintf(err, errlen, "\"prices_version\" must be a non-empty string, e.g. \"2025-11-24\"");
        return -EINVAL;
    }
    if (!(t->version = strdup(version))) return -ENOMEM;
    json_t *models = json_object_get(doc, "models");
    if (!json_is_object(models) || !json_object_size(models)) {
        snprintf(err, errlen, "\"models\" must be a non-empty object of model name -> prices");
        return -EINVAL;
    }
    size_t n = json_object_size(models);
    t->model_names = calloc(n, sizeof *t->model_names);
    t->prices = calloc(n, sizeof *t->prices);
    if (!t->model_names || !t->prices) return -ENOMEM;
    json_object_foreach(models, k, v) {
        if (k[0] == '_') continue;
        if (!valid_name(k)) {
            snprintf(err, errlen, "models.\"%s\": names must be lower-case, without spaces, under %d bytes", k, MAX_NAME);
            return -EINVAL;
        }
        if (!(t->model_names[t->n_models] = strdup(k))) return -ENOMEM;
        t->n_models++;
    }
    /* Sort names, then parse each entry by name so prices stay parallel. */
    qsort(t->model_names, t->n_models, sizeof *t->model_names, cmp_str);
    for (size_t i = 0; i < t->n_models; i++) {
        int rc = parse_price(t->model_names[i], json_object_get(models, t->model_names[i]), &t->prices[i], err, errlen);
        if (rc) return rc;
    }
    int rc = parse_refs(t, json_object_get(doc, "aliases"), "aliases", &t->aliases, &t->n_aliases, err, errlen);
    if (!rc) rc = parse_refs(t, json_object_get(doc, "prefixes"), "prefixes", &t->prefixes, &t->n_prefixes, err, errlen);
    if (rc) return rc;
    if (t->n_aliases) qsort(t->aliases, t->n_aliases, sizeof *t->aliases, cmp_named);
    return 0;
}

int hr_prices_load_buffer(const char *buf, size_t len, const char *name, struct hr_prices **out, char *err,
                          size_t errlen)
{
    *out = NULL;
    json_error_t jerr;
    json_t *doc = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) {
        snprintf(err, errlen, "%s:%d:%d: not valid JSON: %s", name, jerr.line, jerr.column, jerr.text);
        return -EINVAL;
    }
    struct hr_prices *t = calloc(1, sizeof *t);
    if (!t) {
        json_decref(doc);
        return -ENOMEM;
    }
    char why[512] = "out of memory";
    int rc = load_doc(t, doc, why, sizeof why);
    json_decref(doc);
    if (rc) {
        snprintf(err, errlen, "%s: %s", name, why);
        hr_prices_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

int hr_prices_load_file(const char *path, struct hr_prices **out, char *err, size_t errlen)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        snprintf(err, errlen, "%s: cannot open the price table: %s", path, strerror(e));
        return -e;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 > cap) {
            cap = cap ? cap * 2 : 65536;
            if (cap > (64u << 20)) {
                fclose(f);
                free(buf);
                snprintf(err, errlen, "%s: larger than 64 MiB; is this really a price table?", path);
                return -EFBIG;
            }
            char *nb = realloc(buf, cap);
            if (!nb) {
                fclose(f);
                free(buf);
                return -ENOMEM;
            }
            buf = nb;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        snprintf(err, errlen, "%s: read error", path);
        return -EIO;
    }
    int rc = hr_prices_load_buffer(buf ? buf : "", len, path, out, err, errlen);
    free(buf);
    return rc;
}

/* A date suffix: -YYYY-MM-DD or -YYYYMMDD at the end. */
static size_t date_suffix_len(const char *s, size_t n)
{
    if (n > 11 && s[n - 11] == '-' && s[n - 6] == '-' && s[n - 3] == '-') {
        int digits = 1;
        for (size_t i = n - 10; i < n; i++)
            if (i != n - 6 && i != n - 3 && !isdigit((unsigned char)s[i])) digits = 0;
        if (digits) return 11;
    }
    if (n > 9 && s[n - 9] == '-') {
        for (size_t i = n - 8; i < n; i++)
            if (!isdigit((unsigned char)s[i])) return 0;
        /* 19xx/20xx and a month: a date, not a build number */
        int month = (s[n - 4] - '0') * 10 + (s[n - 3] - '0');
        int century = (s[n - 8] - '0') * 10 + (s[n - 7] - '0');
        return (century == 19 || century == 20) && month >= 1 && month <= 12 ? 9 : 0;
    }
    return 0;
}

void hr_prices_normalise(const char *model, char *out, size_t outlen)
{
    char tmp[MAX_NAME * 2];
    const char *slash = strrchr(model, '/');
    lower_copy(slash ? slash + 1 : model, tmp, sizeof tmp);
    char *at = strchr(tmp, '@'); /* Vertex AI: claude-3-5-sonnet-v2@20241022 */
    if (at) *at = '\0';
    size_t n = strlen(tmp);
    n -= date_suffix_len(tmp, n);
    tmp[n] = '\0';
    snprintf(out, outlen, "%s", tmp);
}

static const struct hr_price *exact(const struct hr_prices *t, const char *name, const char **canonical)
{
    int i = find_model(t, t->n_models, name);
    if (i < 0) {
        int a = find_alias(t, name);
        if (a < 0) return NULL;
        i = (int)t->aliases[a].model;
    }
    if (canonical) *canonical = t->model_names[i];
    return &t->prices[i];
}

const struct hr_price *hr_prices_lookup(const struct hr_prices *t, const char *model, const char **canonical)
{
    if (!t || !model || !*model) return NULL;
    char raw[MAX_NAME * 2], bare[MAX_NAME * 2], norm[MAX_NAME * 2];
    lower_copy(model, raw, sizeof raw);
    const char *slash = strrchr(raw, '/');
    snprintf(bare, sizeof bare, "%s", slash ? slash + 1 : raw);
    char *at = strchr(bare, '@');
    if (at) *at = '\0';
    hr_prices_normalise(model, norm, sizeof norm);
    const struct hr_price *p;
    if ((p = exact(t, raw, canonical)) || (p = exact(t, bare, canonical)) || (p = exact(t, norm, canonical))) return p;
    size_t best = 0, best_len = 0;
    for (size_t i = 0; i < t->n_prefixes; i++) {
        size_t n = strlen(t->prefixes[i].name);
        if (n > best_len && !strncmp(bare, t->prefixes[i].name, n)) {
            best = i;
            best_len = n;
        }
    }
    if (!best_len) return NULL;
    if (canonical) *canonical = t->model_names[t->prefixes[best].model];
    return &t->prices[t->prefixes[best].model];
}

void hr_cost_compute(const struct hr_price *p, const struct hr_cost_usage *u, struct hr_cost *c)
{
    memset(c, 0, sizeof *c);
    if (!p) return;
    uint64_t w5 = u->cache_write_5m, w1 = u->cache_write_1h;
    /* Writes without a TTL split (older answers) are the default 5-minute kind. */
    if (u->cache_write > w5 + w1) w5 += u->cache_write - (w5 + w1);
    const double m = 1e-6;
    c->input_usd = ((double)u->input * p->input + (double)u->cache_read * p->cache_read +
                    (double)w5 * p->cache_write_5m + (double)w1 * p->cache_write_1h) * m;
    c->output_usd = (double)u->output * p->output * m;
    c->total_usd = c->input_usd + c->output_usd;
    c->savings_usd = (double)u->tokens_saved * p->input * m;
    c->cache_savings_usd = (double)u->cache_read * (p->input - p->cache_read) * m;
}
