/* log_compressor.c — the plugin face of log_compressor: config, which units
 * it takes (router type log, or text/search that reads as a build log), and
 * the shared text-compressor driver (query-aware memo, CCR, parallel_for,
 * tags). */
#include <stdlib.h>
#include <headroom/plugin.h>
#include "hash.h"
#include "logc.h"

struct lc_state {
    struct hr_text_driver d; /* first: hr_text_reset takes the state as the driver */
    struct hr_logc_config cfg;
};

static const struct hr_conf_key lc_keys[] = {
    HR_CONF_KEY_RANGE("head_lines", HR_CONF_INT, "3", "first lines of a log always kept (passing tests fold)", 0, 1000),
    HR_CONF_KEY_RANGE("tail_lines", HR_CONF_INT, "3", "last lines of a log always kept (summaries and errors are kept anyway)", 0, 1000),
    HR_CONF_KEY_RANGE("context_lines", HR_CONF_INT, "2", "lines kept before and after each error or warning", 0, 100),
    HR_CONF_KEY_RANGE("max_similar", HR_CONF_INT, "5", "errors/warnings of one template kept before the rest are counted", 1, 100000),
    HR_CONF_KEY_RANGE("max_stack_frames", HR_CONF_INT, "20", "frames kept per stack trace: first and last two, then project frames", 4, 10000),
    HR_CONF_KEY_MIN("min_tokens", HR_CONF_INT, "200", "leave logs under this many tokens alone", 0),
    HR_CONF_KEY_RANGE("min_savings", HR_CONF_DOUBLE, "0.10", "leave a log alone unless it shrinks by this fraction of tokens", 0, 0.99),
    HR_CONF_KEY_RANGE("result_cache_mb", HR_CONF_INT, "2", "MB of results remembered by content and question (0 = off)", 0, 65536),
    HR_CONF_END,
};

static int lc_accept(const void *cfg, const struct hr_unit *u)
{
    (void)cfg;
    if (u->type == HR_CT_LOG)
        return 1;
    if (u->type == HR_CT_TEXT || u->type == HR_CT_UNKNOWN || u->type == HR_CT_SEARCH)
        return hr_logc_sniff(u->text, u->len);
    return 0;
}

static void lc_fini(void *state)
{
    struct lc_state *s = state;
    hr_memo_free(s->d.memo);
    free(s);
}

static int lc_init(const struct hr_host *host, struct hr_instance *self, const struct hr_conf *conf, void **state)
{
    struct lc_state *s = calloc(1, sizeof *s);
    if (!s)
        return HR_ENOMEM;
    long long v[5] = {host->conf_int(conf, "head_lines"), host->conf_int(conf, "tail_lines"),
                      host->conf_int(conf, "context_lines"), host->conf_int(conf, "max_similar"),
                      host->conf_int(conf, "max_stack_frames")};
    long long min_tokens = host->conf_int(conf, "min_tokens"), cache_mb = host->conf_int(conf, "result_cache_mb");
    double min_savings = host->conf_double(conf, "min_savings");
    if (v[0] < 0 || v[1] < 0 || v[2] < 0 || v[3] < 1 || v[4] < 4 || min_tokens < 0 || cache_mb < 0 ||
        !(min_savings >= 0 && min_savings < 1)) {
        host->log(self, HR_LOG_ERROR, "bad config: head_lines/tail_lines/context_lines >= 0, max_similar >= 1, "
                  "max_stack_frames >= 4, min_tokens >= 0, min_savings in [0,1), result_cache_mb >= 0");
        free(s);
        return HR_EINVAL;
    }
    s->cfg = (struct hr_logc_config){(size_t)v[0], (size_t)v[1], (size_t)v[2], (size_t)v[3], (size_t)v[4]};
    uint64_t salt = 0x10c;
    for (int k = 0; k < 5; k++)
        salt = hr_mix64(salt ^ (uint64_t)v[k]);
    s->d = (struct hr_text_driver){.host = host, .self = self, .name = "log_compressor", .accept = lc_accept,
                                   .compress = hr_logc_compress, .cfg = &s->cfg, .min_tokens = (size_t)min_tokens,
                                   .min_savings = min_savings, .uses_query = 1, .cfg_salt = salt};
    if (cache_mb && HR_HAS_FIELD(host, struct hr_host, unit_hash)) {
        s->d.memo = hr_memo_new((size_t)cache_mb << 20);
        int rc = s->d.memo ? host->register_stats(self, "log_compressor", hr_text_memo_stats, &s->d) : HR_ENOMEM;
        if (rc != HR_OK) {
            lc_fini(s);
            return rc;
        }
    }
    *state = s;
    return HR_OK;
}

static int lc_apply(void *state, struct hr_request *req)
{
    struct lc_state *s = state;
    return hr_text_apply(&s->d, req);
}

HR_PLUGIN_EXPORT const struct headroom_plugin headroom_plugin = {
    HR_PLUGIN_HEADER,
    .name = "log_compressor",
    .kind = HR_PLUGIN_TRANSFORM,
    .version = "1.0.0",
    .description = "keeps a log's errors, warnings, stack traces and summaries; folds repeats; drops progress bars",
    .conf_keys = lc_keys,
    .init = lc_init,
    .fini = lc_fini,
    .reset = hr_text_reset,
    .apply = lc_apply,
    .transform_flags = HR_TF_COUNTS_ON_DEMAND | HR_TF_UNITS_ONLY | HR_TF_NEEDS_UNITS,
    .content_types = HR_CT_BIT(HR_CT_LOG) | HR_CT_BIT(HR_CT_TEXT),
};
