/* diff_compressor.c — the plugin face of diff_compressor: config, the units
 * it takes (router type diff), and the shared text-compressor driver. */
#include <stdlib.h>
#include <headroom/plugin.h>
#include "diffc.h"
#include "hash.h"

struct dc_state {
    struct hr_text_driver d; /* first: hr_text_reset takes the state as the driver */
    struct hr_diffc_config cfg;
};

static const struct hr_conf_key keys[] = {
    HR_CONF_KEY_RANGE("context_lines", HR_CONF_INT, "2", "unchanged lines kept before and after each change", 0, 1000),
    HR_CONF_KEY_MIN("min_tokens", HR_CONF_INT, "200", "leave diffs under this many tokens alone", 0),
    HR_CONF_KEY_RANGE("min_savings", HR_CONF_DOUBLE, "0.10", "leave a diff alone unless it shrinks by this fraction of tokens", 0, 0.99),
    HR_CONF_KEY_RANGE("result_cache_mb", HR_CONF_INT, "2", "MB of results remembered by content (0 = off)", 0, 65536),
    HR_CONF_END,
};

static int accept(const void *cfg, const struct hr_unit *u)
{
    (void)cfg;
    return u->type == HR_CT_DIFF;
}

static void fini(void *state)
{
    struct dc_state *s = state;
    hr_memo_free(s->d.memo);
    free(s);
}

static int init(const struct hr_host *host, struct hr_instance *self, const struct hr_conf *conf, void **state)
{
    long long ctx = host->conf_int(conf, "context_lines");
    long long min_tokens = host->conf_int(conf, "min_tokens"), cache_mb = host->conf_int(conf, "result_cache_mb");
    double min_savings = host->conf_double(conf, "min_savings");
    if (ctx < 0 || min_tokens < 0 || cache_mb < 0 || !(min_savings >= 0 && min_savings < 1)) {
        host->log(self, HR_LOG_ERROR, "bad config: context_lines >= 0 (got %lld), min_tokens >= 0, "
                  "min_savings in [0,1), result_cache_mb >= 0", ctx);
        return HR_EINVAL;
    }
    struct dc_state *s = calloc(1, sizeof *s);
    if (!s)
        return HR_ENOMEM;
    s->cfg.context_lines = (size_t)ctx;
    s->d = (struct hr_text_driver){.host = host, .self = self, .name = "diff_compressor", .accept = accept,
                                   .compress = hr_diffc_compress, .cfg = &s->cfg, .min_tokens = (size_t)min_tokens,
                                   .min_savings = min_savings, .cfg_salt = hr_mix64(0xd1ff ^ (uint64_t)ctx)};
    if (cache_mb && HR_HAS_FIELD(host, struct hr_host, unit_hash)) {
        s->d.memo = hr_memo_new((size_t)cache_mb << 20);
        int rc = s->d.memo ? host->register_stats(self, "diff_compressor", hr_text_memo_stats, &s->d) : HR_ENOMEM;
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
    struct dc_state *s = state;
    return hr_text_apply(&s->d, req);
}

HR_PLUGIN_EXPORT const struct headroom_plugin headroom_plugin = {
    HR_PLUGIN_HEADER,
    .name = "diff_compressor",
    .kind = HR_PLUGIN_TRANSFORM,
    .version = "1.0.0",
    .description = "keeps every added/removed line and hunk header of a diff; trims context; folds lockfile/binary/rename diffs",
    .conf_keys = keys,
    .init = init,
    .fini = fini,
    .reset = hr_text_reset,
    .apply = apply,
    .transform_flags = HR_TF_COUNTS_ON_DEMAND | HR_TF_UNITS_ONLY | HR_TF_NEEDS_UNITS,
    .content_types = HR_CT_BIT(HR_CT_DIFF),
};
