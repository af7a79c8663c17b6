/* smart_crusher.c — the plugin face of smart_crusher: config, per-unit policy
 * (protected, marker, min_tokens, content type, token savings), CCR, logs and tags. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <headroom/plugin.h>
#include "crush.h"

struct sc_state {
    const struct hr_host *host;
    struct hr_instance *self;
    struct hr_sc_config cfg;
    size_t min_tokens;
};

static const struct hr_conf_key sc_keys[] = {
    {"max_items", HR_CONF_INT, "15", "rows kept per array besides critical rows (errors, needles, outliers)"},
    {"min_savings", HR_CONF_DOUBLE, "0.10", "leave an array alone unless it shrinks by this fraction"},
    {"min_tokens", HR_CONF_INT, "200", "leave units under this many tokens alone"},
    {"critical_fraction", HR_CONF_DOUBLE, "0.05", "critical rows kept: at most max(max_items, rows * this)"},
    {NULL, 0, NULL, NULL},
};

static int sc_init(const struct hr_host *host, struct hr_instance *self,
                   const struct hr_conf *conf, void **state)
{
    struct sc_state *s = calloc(1, sizeof *s);
    if (!s)
        return HR_ENOMEM;
    s->host = host;
    s->self = self;
    long long max_items = host->conf_int(conf, "max_items");
    long long min_tokens = host->conf_int(conf, "min_tokens");
    double min_savings = host->conf_double(conf, "min_savings");
    double crit = host->conf_double(conf, "critical_fraction");
    if (max_items < 1 || max_items > 100000 || min_tokens < 0 || !(min_savings >= 0) ||
        min_savings >= 1 || !(crit >= 0) || crit > 1) {
        host->log(self, HR_LOG_ERROR,
                  "bad config: need max_items 1..100000 (got %lld), min_tokens >= 0 (got %lld), "
                  "min_savings in [0,1) (got %g), critical_fraction in [0,1] (got %g)",
                  max_items, min_tokens, min_savings, crit);
        free(s);
        return HR_EINVAL;
    }
    s->cfg.max_items = (size_t)max_items;
    s->cfg.min_savings = min_savings;
    s->cfg.critical_fraction = crit;
    s->min_tokens = (size_t)min_tokens;
    *state = s;
    return HR_OK;
}

static void sc_fini(void *state)
{
    free(state);
}

static int looks_json(const struct hr_unit *u)
{
    for (size_t i = 0; i < u->len; i++) {
        char c = u->text[i];
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
            continue;
        return c == '[' || c == '{';
    }
    return 0;
}

static int sc_apply(void *state, struct hr_request *req)
{
    struct sc_state *s = state;
    const struct hr_host *h = s->host;
    char tag[256] = "";
    size_t tl = 0;
    for (size_t i = 0; i < req->n_units; i++) {
        struct hr_unit *u = &req->units[i];
        if (u->flags & (HR_UNIT_PROTECTED | HR_UNIT_HAS_MARKER) || u->tokens < s->min_tokens)
            continue;
        if (u->type == HR_CT_UNKNOWN ? !looks_json(u)
            : u->type != HR_CT_JSON_ARRAY && u->type != HR_CT_JSON_OBJECT)
            continue;
        if (memmem(u->text, u->len, "{\"_headroom\":", 13))
            continue; /* crushed on an earlier turn */
        struct hr_sc_output out;
        int rc = hr_sc_crush(&s->cfg, u->text, u->len, req->query, &out);
        if (rc < 0) {
            h->log(s->self, HR_LOG_WARN, "unit %zu (message %u) left as is: out of memory", i,
                   u->message_index);
            continue;
        }
        if (rc != HR_SC_CRUSHED)
            continue;
        size_t after = h->count_tokens(req->model, out.text, out.len);
        if ((double)after > (1.0 - s->cfg.min_savings) * (double)u->tokens) {
            hr_sc_output_free(&out);
            continue;
        }
        char hash[HR_CCR_HASH_LEN + 1];
        /* The CCR store keeps the client's original text, byte for byte. */
        if (h->ccr_put(u->text, u->len, hash) != HR_OK) {
            h->log(s->self, HR_LOG_WARN, "unit %zu left as is: the CCR store refused the original", i);
            hr_sc_output_free(&out);
            continue;
        }
        hr_sc_output_set_hash(&out, hash);
        size_t total = out.total, kept = out.kept;
        rc = h->unit_replace(req, i, out.text, out.len);
        if (rc == HR_OK) {
            h->log(s->self, HR_LOG_INFO, "SmartCrusher applied top_n strategy: kept %zu of %zu items",
                   kept, total);
            if (h->log_enabled(HR_LOG_DEBUG))
                h->log(s->self, HR_LOG_DEBUG, "Kept items: %s (%s)", out.kept_list, out.reasons);
            int w = snprintf(tag + tl, sizeof tag - tl, "%s%zu/%zu",
                             tl ? "+" : "smart_crusher:top_n:kept=", kept, total);
            if (w > 0 && (size_t)w < sizeof tag - tl)
                tl += (size_t)w;
        }
        hr_sc_output_free(&out);
    }
    if (tl)
        h->stage_tag(req, tag);
    return HR_OK;
}

HR_PLUGIN_EXPORT const struct headroom_plugin headroom_plugin = {
    HR_PLUGIN_HEADER,
    .name = "smart_crusher",
    .kind = HR_PLUGIN_TRANSFORM,
    .version = "1.0.0",
    .description = "keeps the rows of JSON arrays that matter (errors, needles, outliers, relevance) and a retrieval marker",
    .conf_keys = sc_keys,
    .init = sc_init,
    .fini = sc_fini,
    .apply = sc_apply,
    .content_types = HR_CT_BIT(HR_CT_JSON_ARRAY) | HR_CT_BIT(HR_CT_JSON_OBJECT),
};
