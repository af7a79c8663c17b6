/* html_extractor.c — the plugin face of html_extractor: config, the units it
 * takes (router type html), and the shared text-compressor driver. */
#include <stdlib.h>
#include <headroom/plugin.h>
#include "htmlx.h"
#include "hash.h"

struct hx_state {
    struct hr_text_driver d; /* first: hr_text_reset takes the state as the driver */
    struct hr_htmlx_config cfg;
};

static const struct hr_conf_key keys[] = {
    HR_CONF_KEY("link_urls", HR_CONF_BOOL, "no", "links to absolute http(s) URLs read \"text (url)\" instead of text"),
    HR_CONF_KEY("drop_boilerplate", HR_CONF_BOOL, "yes",
                "drop elements whose id/class names cookie, consent, banner, advert, sidebar, menu or breadcrumb"),
    HR_CONF_KEY_MIN("min_tokens", HR_CONF_INT, "200", "leave pages under this many tokens alone", 0),
    HR_CONF_KEY_RANGE("min_savings", HR_CONF_DOUBLE, "0.10", "leave a page alone unless it shrinks by this fraction of tokens", 0, 0.99),
    HR_CONF_KEY_RANGE("result_cache_mb", HR_CONF_INT, "2", "MB of results remembered by content (0 = off)", 0, 65536),
    HR_CONF_END,
};

static int accept(const void *cfg, const struct hr_unit *u)
{
    (void)cfg;
    return u->type == HR_CT_HTML;
}

static void fini(void *state)
{
    struct hx_state *s = state;
    hr_memo_free(s->d.memo);
    free(s);
}

static int init(const struct hr_host *host, struct hr_instance *self, const struct hr_conf *conf, void **state)
{
    int link_urls = host->conf_bool(conf, "link_urls"), boiler = host->conf_bool(conf, "drop_boilerplate");
    long long min_tokens = host->conf_int(conf, "min_tokens"), cache_mb = host->conf_int(conf, "result_cache_mb");
    double min_savings = host->conf_double(conf, "min_savings");
    if (min_tokens < 0 || cache_mb < 0 || !(min_savings >= 0 && min_savings < 1)) {
        host->log(self, HR_LOG_ERROR, "bad config: min_tokens >= 0 (got %lld), min_savings in [0,1), "
                  "result_cache_mb >= 0", min_tokens);
        return HR_EINVAL;
    }
    struct hx_state *s = calloc(1, sizeof *s);
    if (!s)
        return HR_ENOMEM;
    s->cfg.link_urls = link_urls > 0;
    s->cfg.drop_boilerplate = boiler > 0;
    s->d = (struct hr_text_driver){.host = host, .self = self, .name = "html_extractor", .accept = accept,
                                   .compress = hr_htmlx_compress, .cfg = &s->cfg, .min_tokens = (size_t)min_tokens,
                                   .min_savings = min_savings,
                                   .cfg_salt = hr_mix64(0x47d1 ^ (uint64_t)(s->cfg.link_urls | s->cfg.drop_boilerplate << 1))};
    if (cache_mb && HR_HAS_FIELD(host, struct hr_host, unit_hash)) {
        s->d.memo = hr_memo_new((size_t)cache_mb << 20);
        int rc = s->d.memo ? host->register_stats(self, "html_extractor", hr_text_memo_stats, &s->d) : HR_ENOMEM;
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
    struct hx_state *s = state;
    return hr_text_apply(&s->d, req);
}

HR_PLUGIN_EXPORT const struct headroom_plugin headroom_plugin = {
    HR_PLUGIN_HEADER,
    .name = "html_extractor",
    .kind = HR_PLUGIN_TRANSFORM,
    .version = "1.0.0",
    .description = "turns a fetched HTML page into its readable text: title, headings, paragraphs, lists, tables, code",
    .conf_keys = keys,
    .init = init,
    .fini = fini,
    .reset = hr_text_reset,
    .apply = apply,
    .transform_flags = HR_TF_COUNTS_ON_DEMAND | HR_TF_UNITS_ONLY | HR_TF_NEEDS_UNITS,
    .content_types = HR_CT_BIT(HR_CT_HTML),
};
