/* search_compressor.c — the plugin face of search_compressor: config, the
 * units it takes (router type search), and the shared text-compressor driver
 * (query-aware memo, CCR, parallel_for, tags). */
#include <stdlib.h>
#include <headroom/plugin.h>
#include "hash.h"
#include "searchc.h"

struct sc_state {
    struct hr_text_driver d; /* first: hr_text_reset takes the state as the driver */
    struct hr_searchc_config cfg;
};

static const struct hr_conf_key keys[] = {
    HR_CONF_KEY_RANGE("max_matches", HR_CONF_INT, "30", "matches kept by relevance to the question, besides each file's first", 0, 100000),
    HR_CONF_KEY_RANGE("max_per_file", HR_CONF_INT, "5", "of those, at most this many in one file", 1, 100000),
    HR_CONF_KEY_MIN("min_tokens", HR_CONF_INT, "200", "leave search output under this many tokens alone", 0),
    HR_CONF_KEY_RANGE("min_savings", HR_CONF_DOUBLE, "0.10", "leave output alone unless it shrinks by this fraction of tokens", 0, 0.99),
    HR_CONF_KEY_RANGE("result_cache_mb", HR_CONF_INT, "2", "MB of results remembered by content and question (0 = off)", 0, 65536),
    HR_CONF_END,
};

static int accept(const void *cfg, const struct hr_unit *u)
{
    (void)cfg;
    return u->type == HR_CT_SEARCH;
}

static void fini(void *state)
{
    struct sc_state *s = state;
    hr_memo_free(s->d.memo);
    free(s);
}

static int init(const struct hr_host *host, struct hr_instance *self, const struct hr_conf *conf, void **state)
{
    long long mm = host->conf_int(conf, "max_matches"), pf = host->conf_int(conf, "max_per_file");
    long long min_tokens = host->conf_int(conf, "min_tokens"), cache_mb = host->conf_int(conf, "result_cache_mb");
    double min_savings = host->conf_double(conf, "min_savings");
    if (mm < 0 || pf < 1 || min_tokens < 0 || cache_mb < 0 || !(min_savings >= 0 && min_savings < 1)) {
        host->log(self, HR_LOG_ERROR, "bad config: max_matches >= 0 (got %lld), max_per_file >= 1 (got %lld), "
                  "min_tokens >= 0, min_savings in [0,1), result_cache_mb >= 0", mm, pf);
        return HR_EINVAL;
    }
    struct sc_state *s = calloc(1, sizeof *s);
    if (!s)
        return HR_ENOMEM;
    s->cfg = (struct hr_searchc_config){(size_t)mm, (size_t)pf};
    s->d = (struct hr_text_driver){.host = host, .self = self, .name = "search_compressor", .accept = accept,
                                   .compress = hr_searchc_compress, .cfg = &s->cfg, .min_tokens = (size_t)min_tokens,
                                   .min_savings = min_savings, .uses_query = 1,
                                   .cfg_salt = hr_mix64(0x5ea4c ^ hr_mix64((uint64_t)mm) ^ (uint64_t)pf)};
    if (cache_mb && HR_HAS_FIELD(host, struct hr_host, unit_hash)) {
        s->d.memo = hr_memo_new((size_t)cache_mb << 20);
        int rc = s->d.memo ? host->register_stats(self, "search_compressor", hr_text_memo_stats, &s->d) : HR_ENOMEM;
        if (rc != HR_OK) {
            fini(s);
            return rc;
        }
    }
    *state = s;
    return HR_OK;
}

static int apply(void *state, struct hr_request *req)
{
    struct sc_state *s = state;
    return hr_text_apply(&s->d, req);
}

HR_PLUGIN_EXPORT const struct headroom_plugin headroom_plugin = {
    HR_PLUGIN_HEADER,
    .name = "search_compressor",
    .kind = HR_PLUGIN_TRANSFORM,
    .version = "1.0.0",
    .description = "keeps each file's first grep/rg match and the matches most relevant to the question; counts the rest",
    .conf_keys = keys,
    .init = init,
    .fini = fini,
    .reset = hr_text_reset,
    .apply = apply,
    .transform_flags = HR_TF_COUNTS_ON_DEMAND | HR_TF_UNITS_ONLY | HR_TF_NEEDS_UNITS,
    .content_types = HR_CT_BIT(HR_CT_SEARCH),
};
