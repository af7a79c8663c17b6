/* router.c — the `router` transform: detects each candidate unit's content type
 * (exact for JSON, a bounded line sample otherwise), writes it into the unit, tags
 * the stage and keeps per-type counters for /stats. */
#include <ctype.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <headroom/plugin.h>
#include "json_scan.h"
#include "memo.h"
#include "textc.h"

/* Types of outputs at least this long are remembered by content: an agent
 * resends them every turn, and a JSON scan of a big one costs ~1 ms/MB. */
#define MEMO_MIN_BYTES 4096
#define MEMO_BYTES (1u << 20)

static const char *const ct_names[HR_CT__COUNT] = {
    "unknown", "json_array", "json_object", "log", "search", "diff", "code", "html", "text",
};

struct router {
    const struct hr_host *host;
    struct hr_instance *self;
    size_t sample_bytes;
    size_t sample_lines;
    atomic_ullong counts[HR_CT__COUNT];
    struct hr_memo *memo; /* content type by content; NULL before ABI 1.1 */
};

static const struct hr_conf_key router_keys[] = {
    HR_CONF_KEY_RANGE("sample_bytes", HR_CONF_INT, "8192", "bytes of a non-JSON unit looked at to guess its type", 64, 16777216),
    HR_CONF_KEY_RANGE("sample_lines", HR_CONF_INT, "64", "lines of that sample looked at", 1, 100000),
    HR_CONF_END,
};

/* Detect one text's type; exported for tests through the plugin only. JSON is
 * validated as jansson's json_loadb would (duplicate keys allowed) without building
 * a tree; out of memory (wide objects only) counts as not JSON, as a failed load did. */
static enum hr_content_type detect(const struct router *r, const char *text, size_t len)
{
    size_t i = 0;
    while (i < len && isspace((unsigned char)text[i]))
        i++;
    if (i < len && (text[i] == '[' || text[i] == '{')) {
        struct hr_json_info info;
        if (hr_json_scan(text, len, 0, &info, NULL) == 0)
            return info.root == '[' ? HR_CT_JSON_ARRAY : HR_CT_JSON_OBJECT;
    }
    return hr_text_sniff_type(text, len, r->sample_bytes, r->sample_lines);
}

static json_t *router_stats(void *state)
{
    struct router *r = state;
    json_t *types = json_object();
    for (int t = HR_CT_JSON_ARRAY; t < HR_CT__COUNT; t++)
        json_object_set_new(types, ct_names[t], json_integer((json_int_t)atomic_load(&r->counts[t])));
    return json_pack("{s:o}", "content_types", types);
}

static void router_fini(void *state)
{
    struct router *r = state;
    hr_memo_free(r->memo);
    free(r);
}

static int router_init(const struct hr_host *host, struct hr_instance *self,
                       const struct hr_conf *conf, void **state)
{
    long long sb = host->conf_int(conf, "sample_bytes"), sl = host->conf_int(conf, "sample_lines");
    if (sb < 64 || sb > (1 << 24) || sl < 1 || sl > 100000) {
        host->log(self, HR_LOG_ERROR,
                  "bad config: sample_bytes must be 64..16777216 (got %lld), sample_lines 1..100000 (got %lld)",
                  sb, sl);
        return HR_EINVAL;
    }
    struct router *r = calloc(1, sizeof *r);
    if (!r)
        return HR_ENOMEM;
    r->host = host;
    r->self = self;
    r->sample_bytes = (size_t)sb;
    r->sample_lines = (size_t)sl;
    for (int t = 0; t < HR_CT__COUNT; t++)
        atomic_init(&r->counts[t], 0);
    if (HR_HAS_FIELD(host, struct hr_host, parallel_for))
        r->memo = hr_memo_new(MEMO_BYTES);
    int rc = host->register_stats(self, "router", router_stats, r);
    if (rc != HR_OK) {
        router_fini(r);
        return rc;
    }
    *state = r;
    return HR_OK;
}

struct detect_job {
    const struct router *r;
    struct hr_unit *units;
    struct hr_memo_key *keys; /* len 0: not remembered */
};

static void detect_one(void *ctx, size_t i)
{
    struct detect_job *j = ctx;
    struct hr_unit *u = &j->units[i];
    size_t len;
    unsigned char *known = j->keys[i].len ? hr_memo_get(j->r->memo, &j->keys[i], &len) : NULL;
    if (known && len == 1 && *known < HR_CT__COUNT) {
        u->type = (enum hr_content_type)*known;
    } else {
        u->type = detect(j->r, u->text, u->len);
        unsigned char t = (unsigned char)u->type;
        if (j->keys[i].len)
            hr_memo_put(j->r->memo, &j->keys[i], &t, 1);
    }
    free(known);
}

static int router_apply(void *state, struct hr_request *req)
{
    struct router *r = state;
    if (!req->n_units)
        return HR_OK; /* no tool output: nothing to classify, count or tag */
    /* The stages after this one type a text wrapped in a JSON string (MCP
     * content, {"output":…}) themselves: with this sample, so it is typed as
     * this router types the same text sent bare (1.9). */
    if (HR_HAS_FIELD(req, struct hr_request, sample_lines)) {
        req->sample_bytes = r->sample_bytes;
        req->sample_lines = r->sample_lines;
    }
    size_t seen[HR_CT__COUNT] = {0};
    struct detect_job job = {r, req->units, calloc(req->n_units ? req->n_units : 1, sizeof *job.keys)};
    if (!job.keys)
        return HR_ENOMEM;
    for (size_t i = 0; r->memo && i < req->n_units; i++)
        if (req->units[i].len >= MEMO_MIN_BYTES) {
            r->host->unit_hash(req, i, job.keys[i].hash);
            job.keys[i].len = req->units[i].len;
        }
    if (r->memo)
        r->host->parallel_for(req->n_units, detect_one, &job);
    else
        for (size_t i = 0; i < req->n_units; i++)
            detect_one(&job, i);
    free(job.keys);
    for (size_t i = 0; i < req->n_units; i++) {
        enum hr_content_type t = req->units[i].type;
        seen[t]++;
        atomic_fetch_add_explicit(&r->counts[t], 1, memory_order_relaxed);
    }
    char tag[256];
    size_t l = (size_t)snprintf(tag, sizeof tag, "router:");
    int any = 0;
    for (int t = HR_CT_JSON_ARRAY; t < HR_CT__COUNT; t++) {
        if (!seen[t])
            continue;
        int w = snprintf(tag + l, sizeof tag - l, "%s%s=%zu", any ? "," : "", ct_names[t], seen[t]);
        if (w < 0 || (size_t)w >= sizeof tag - l)
            break;
        l += (size_t)w;
        any = 1;
    }
    if (any)
        r->host->stage_tag(req, tag);
    return HR_OK;
}

/* POST /stats/reset: the per-type counts and the result-cache counters. */
static void router_reset(void *state)
{
    struct router *r = state;
    for (int t = 0; t < HR_CT__COUNT; t++)
        atomic_store(&r->counts[t], 0);
    hr_memo_reset_counters(r->memo);
}

HR_PLUGIN_EXPORT const struct headroom_plugin headroom_plugin = {
    HR_PLUGIN_HEADER,
    .name = "router",
    .kind = HR_PLUGIN_TRANSFORM,
    .version = "1.0.0",
    .description = "detects the content type of each tool output (json, log, search, diff, code, html, text)",
    .conf_keys = router_keys,
    .init = router_init,
    .fini = router_fini,
    .apply = router_apply,
    .transform_flags = HR_TF_COUNTS_ON_DEMAND | HR_TF_UNITS_ONLY | HR_TF_NEEDS_UNITS,
    .content_types = 0,
    .reset = router_reset,
};
