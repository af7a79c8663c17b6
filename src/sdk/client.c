/* client.c — libheadroom's public client: versions, the per-thread error,
 * opening an offline client (config, token tables, transforms in-process)
 * or attaching to a running headroomd, session stats, token counting. */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sdk.h"
#include "ccr.h"
#include "host.h"
#include "log.h"
#include "state_dir.h"
#include "state_file.h"
#include "stats_json.h"
#include "tokens.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif

static _Thread_local char last_error[2048];
static _Thread_local int last_status;
static _Thread_local int last_http_status; /* of the last call that asked a daemon */
static atomic_int offline_open;

const char *hr_version(void) { return PACKAGE_VERSION; }
unsigned hr_api_version(void) { return (HEADROOM_API_MAJOR << 16) | HEADROOM_API_MINOR; }
const char *hr_last_error(void) { return last_error; }
int hr_last_status(void) { return last_status; }
int hr_last_http_status(void) { return last_http_status; }
void hr_sdk_set_http_status(int status) { last_http_status = status; }
void hr_free(void *p) { free(p); }

void hr_sdk_clear_error(void)
{
    last_error[0] = '\0';
    last_status = HEADROOM_OK;
    last_http_status = 0;
}

int hr_sdk_fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    last_status = code;
    return code;
}

char *hr_sdk_dump(json_t *v)
{
    char *s = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(10)) : NULL;
    json_decref(v);
    if (!s) hr_sdk_fail(HEADROOM_ENOMEM, "out of memory building the answer");
    return s;
}

/* The HEADROOM_* variables a call of the library reads, and where they go.
 * The others (workers, upstream URLs, budget, telemetry...) configure a
 * headroomd only. */
static const struct env_use {
    const char *var;
    size_t off;
    enum { ENV_STR, ENV_PORT, ENV_LOG_LEVEL } kind;
} ENV_USES[] = {
    {"HEADROOM_HOST", offsetof(struct hr_config, host), ENV_STR},
    {"HEADROOM_PORT", offsetof(struct hr_config, port), ENV_PORT},
    {"HEADROOM_PLUGIN_DIR", offsetof(struct hr_config, plugin_dir), ENV_STR},
    {"HEADROOM_LOG_LEVEL", offsetof(struct hr_config, log_level), ENV_LOG_LEVEL},
    {"HEADROOM_STATS_TOKEN", offsetof(struct hr_config, stats_token), ENV_STR},
    {"HEADROOM_API_TOKEN", offsetof(struct hr_config, api_token), ENV_STR},
};
const char *const hr_sdk_offline_env[] = {"HEADROOM_PLUGIN_DIR", "HEADROOM_LOG_LEVEL", NULL};
const char *const hr_sdk_attached_env[] = {"HEADROOM_STATS_TOKEN", "HEADROOM_API_TOKEN", NULL};
const char *const hr_sdk_address_env[] = {"HEADROOM_HOST", "HEADROOM_PORT", NULL};

static int listed(const char *const *list, const char *name, size_t len)
{
    for (; *list; list++)
        if (strlen(*list) == len && !strncmp(*list, name, len)) return 1;
    return 0;
}

/* The variables of `uses` applied one by one (hr_config_apply_env stopped
 * at another's bad value, before some of them). */
static int apply_used_env(struct hr_config *cfg, const char *const *uses, char *err, size_t errlen)
{
    for (size_t i = 0; i < sizeof ENV_USES / sizeof *ENV_USES; i++) {
        const struct env_use *u = &ENV_USES[i];
        const char *v = getenv(u->var);
        if (!v || !*v || !listed(uses, u->var, strlen(u->var))) continue;
        void *field = (char *)cfg + u->off;
        long long n;
        if (u->kind == ENV_STR) {
            char *d = strdup(v);
            if (!d) {
                snprintf(err, errlen, "out of memory");
                return -ENOMEM;
            }
            free(*(char **)field);
            *(char **)field = d;
        } else if (u->kind == ENV_PORT) {
            if (hr_parse_int(v, 0, 65535, &n)) {
                snprintf(err, errlen, "environment variable %s: '%s' must be a whole number from 0 to 65535", u->var, v);
                return -EINVAL;
            }
            *(int *)field = (int)n;
        } else {
            int lv = hr_log_level_parse(v);
            if (lv < 0) {
                snprintf(err, errlen, "environment variable %s: '%s' must be error, warn, info or debug", u->var, v);
                return -EINVAL;
            }
            *(int *)field = lv;
        }
    }
    return 0;
}

int hr_sdk_load_config(struct hr_config *cfg, const char *path, const char *const *uses, char *ignored,
                       size_t ignoredlen, char *err, size_t errlen)
{
    if (ignored && ignoredlen) *ignored = '\0';
    hr_config_defaults(cfg);
    if (path && hr_config_apply_file(cfg, path, err, errlen)) return -EINVAL;
    if (hr_config_apply_env(cfg, err, errlen)) {
        /* "environment variable NAME: why". A variable this call does not
         * read fails only headroomd (HEADROOM_PORT=abc stops no `headroom
         * summary`): said, not an error; those it reads are applied here,
         * and one of theirs that is bad is the error. */
        static const char PREFIX[] = "environment variable ";
        const char *name = !strncmp(err, PREFIX, sizeof PREFIX - 1) ? err + sizeof PREFIX - 1 : NULL;
        size_t len = name ? strcspn(name, ":") : 0;
        if (!uses || !name || listed(uses, name, len)) return -EINVAL;
        if (ignored) snprintf(ignored, ignoredlen, "%s", err);
        else HR_WARN("headroom.config", "%s; ignored here (not read by this call), but a headroomd started with it "
                     "would refuse to start: correct or unset it", err);
        if (apply_used_env(cfg, uses, err, errlen)) return -EINVAL;
    }
    if (hr_config_validate(cfg, err, errlen)) return -EINVAL;
    return 0;
}

char *hr_sdk_sink_file(const hr_client *c, const char *sink, const char *name, int *in_block, int *from_path)
{
    const char *path = NULL;
    *in_block = *from_path = 0;
    for (size_t i = 0; c && c->cfg_loaded && i < c->cfg.n_plugins && !path; i++) {
        const struct hr_plugin_block *b = &c->cfg.plugins[i];
        if (!b->is_sink || strcmp(b->name, sink)) continue;
        *in_block = 1;
        const struct hr_conf_node *p = hr_conf_find(b->node, "path");
        if (p && p->n_args == 1 && *p->args[0]) path = p->args[0];
    }
    *from_path = path != NULL;
    return hr_state_file(&hr_host_table, path, name);
}

void hr_sdk_missing_file_hint(const hr_client *c, const char *sink, int in_block, int from_path, char *out,
                              size_t outlen)
{
    if (from_path)
        snprintf(out, outlen, "as the `path` of `sink %s` in the config says (is headroomd running with this config? a "
                 "relative path is taken from the directory headroomd started in: give an absolute one)", sink);
    else if (in_block) /* the block is there: the daemon runs with another state directory */
        snprintf(out, outlen, "`sink %s` has no `path`, so the file is looked for in the state directory "
                 "($HEADROOM_WORKSPACE_DIR, else ~/.headroom); if headroomd runs with another (a service's "
                 "HEADROOM_WORKSPACE_DIR), set HEADROOM_WORKSPACE_DIR to it here too, or give the block a `path`", sink);
    else if (c->cfg_file)
        snprintf(out, outlen, "the config has no `sink %s`: add `sink %s { }` to headroomd's headroom.conf and "
                 "restart it, or pass the config headroomd runs with", sink, sink);
    else
        snprintf(out, outlen, "no config given: pass the one headroomd runs with (-c FILE, $HEADROOM_CONFIG; its "
                 "`sink %s` block says where the file is), or set HEADROOM_WORKSPACE_DIR to headroomd's state "
                 "directory", sink);
}

static hr_client *client_new(void)
{
    hr_client *c = calloc(1, sizeof *c);
    if (!c) hr_sdk_fail(HEADROOM_ENOMEM, "out of memory");
    return c;
}

hr_client *hr_client_open(const char *config_path)
{
    hr_sdk_clear_error();
    int expected = 0;
    if (!atomic_compare_exchange_strong(&offline_open, &expected, 1)) {
        hr_sdk_fail(HEADROOM_EBUSY, "an offline headroom client is already open in this process: close it first, "
                    "or use hr_client_attach to talk to a running headroomd");
        return NULL;
    }
    hr_client *c = client_new();
    if (!c) goto fail;
    c->offline = 1;
    char err[2048];
    if (hr_sdk_load_config(&c->cfg, config_path, hr_sdk_offline_env, NULL, 0, err, sizeof err)) {
        hr_sdk_fail(HEADROOM_ECONFIG, "%s", err);
        hr_config_free(&c->cfg);
        goto fail;
    }
    c->cfg_loaded = 1;
    c->cfg_file = config_path != NULL;
    /* A library stays quiet unless asked: warnings only, or HEADROOM_LOG_LEVEL. */
    hr_log_set_level(getenv("HEADROOM_LOG_LEVEL") ? (enum hr_log_level)c->cfg.log_level : HR_LOG_WARN);
    if (hr_tokens_init(err, sizeof err)) HR_WARN("headroom.tokens", "%s; token counts are estimates", err);
    if (hr_plugins_load(&c->cfg, &c->plugins, err, sizeof err)) {
        hr_sdk_fail(HEADROOM_ECONFIG, "%s", err);
        goto fail;
    }
    c->plugins_loaded = 1;
    hr_ccr_init_memory(c->cfg.ccr_max_bytes, (unsigned)c->cfg.ccr_ttl_s);
    /* Transforms only: sinks would write the state root and export. */
    struct hr_plugins transforms = {.transforms = c->plugins.transforms, .n_transforms = c->plugins.n_transforms};
    if (hr_plugins_init(&transforms, &hr_host_table, err, sizeof err)) {
        hr_sdk_fail(HEADROOM_ECONFIG, "%s", err);
        goto fail;
    }
    c->popts = (struct hr_pipeline_opts){.min_tokens = c->cfg.min_tokens,
                                         .protect_recent = c->cfg.protect_recent,
                                         .protected_tools = c->cfg.protected_tools,
                                         .n_protected_tools = c->cfg.n_protected_tools,
                                         .stage_budget_ms = (double)c->cfg.stage_budget_ms,
                                         .dry_run = 1};
    return c;
fail:
    if (c) {
        char keep[sizeof last_error];
        int keep_status = last_status;
        memcpy(keep, last_error, sizeof keep);
        hr_client_close(c);
        memcpy(last_error, keep, sizeof keep);
        last_status = keep_status;
    } else {
        atomic_store(&offline_open, 0);
    }
    return NULL;
}

hr_client *hr_client_attach(const char *url, const char *config_path)
{
    hr_sdk_clear_error();
    char why[512], err[2048];
    char *norm = NULL;
    if (!url || hr_parse_url(url, &norm, why, sizeof why)) {
        hr_sdk_fail(HEADROOM_EINVAL, "daemon URL '%s': %s (e.g. http://127.0.0.1:8787)", url ? url : "(null)",
                    url ? why : "missing");
        return NULL;
    }
    hr_client *c = client_new();
    if (!c) {
        free(norm);
        return NULL;
    }
    size_t n = strlen(norm);
    while (n && norm[n - 1] == '/') norm[--n] = '\0';
    c->url = norm;
    if (hr_sdk_load_config(&c->cfg, config_path, hr_sdk_attached_env, NULL, 0, err, sizeof err)) {
        hr_sdk_fail(HEADROOM_ECONFIG, "%s", err);
        hr_config_free(&c->cfg);
        free(c->url);
        free(c);
        return NULL;
    }
    c->cfg_loaded = 1;
    c->cfg_file = config_path != NULL;
    return c;
}

int hr_client_set_token(hr_client *c, const char *token)
{
    if (!c) return hr_sdk_fail(HEADROOM_EINVAL, "hr_client_set_token: client is NULL");
    free(c->token);
    c->token = token ? strdup(token) : NULL;
    hr_sdk_clear_error();
    return HEADROOM_OK;
}

void hr_client_close(hr_client *c)
{
    if (!c) return;
    if (c->offline) {
        if (c->history_plugins.n_sinks) hr_plugins_unload(&c->history_plugins);
        hr_conf_doc_free(c->history_doc);
        if (c->plugins_loaded) hr_plugins_unload(&c->plugins);
        hr_host_registries_free();
        hr_ccr_shutdown();
        atomic_store(&offline_open, 0);
    }
    if (c->cfg_loaded) hr_config_free(&c->cfg);
    free(c->url);
    free(c->token);
    free(c);
}

/* Does the stage list contain a transform of this plugin? */
static int has_transform(const hr_client *c, json_t *stage_names, const char *plugin)
{
    if (c->offline) {
        for (size_t i = 0; i < c->plugins.n_transforms; i++)
            if (!strcmp(c->plugins.transforms[i]->desc->name, plugin)) return 1;
        return 0;
    }
    return json_object_get(stage_names, plugin) != NULL;
}

static json_t *config_and_transforms(const hr_client *c, json_t *out, json_t *stage_names, const char *provider,
                                     int response_cache, const char *daemon_mode)
{
    /* Attached, the daemon's own mode (/stats mode): the client's config may
     * be another file, or none, and said "optimize" of a passthrough daemon. */
    const char *mode = daemon_mode ? daemon_mode : c->cfg.no_optimize ? "passthrough" : "optimize";
    json_object_set_new(out, "config", json_pack("{s:s,s:s?,s:b,s:b,s:b}", "mode", mode, "provider",
                                                  provider, "cache_optimizer_enabled",
                                                  has_transform(c, stage_names, "cache_aligner"),
                                                  "semantic_cache_enabled", 0, "response_cache_enabled",
                                                  response_cache));
    /* Every stage of the pipeline, in order, as /stats pipeline_timing names
     * them (the instance name: `transform smart_crusher as strict` is
     * strict_enabled); then the seed's three keys that no stage gave, false.
     * Only those three were listed: a daemon running router, the text
     * compressors and smart_crusher showed smart_crusher alone. */
    json_t *tr = json_object();
    char key[160];
    if (c->offline) {
        for (size_t i = 0; i < c->plugins.n_transforms; i++) {
            snprintf(key, sizeof key, "%s_enabled", c->plugins.transforms[i]->name);
            json_object_set_new(tr, key, json_true());
        }
    } else {
        const char *stage;
        json_t *v;
        json_object_foreach(stage_names, stage, v) {
            if (!strcmp(stage, "pipeline_total")) continue; /* the whole pipeline, not a stage */
            snprintf(key, sizeof key, "%s_enabled", stage);
            json_object_set_new(tr, key, json_true());
        }
    }
    static const char *const seed[] = {"smart_crusher", "cache_aligner", "rolling_window"};
    for (size_t i = 0; i < sizeof seed / sizeof *seed; i++) {
        snprintf(key, sizeof key, "%s_enabled", seed[i]);
        if (has_transform(c, stage_names, seed[i])) json_object_set_new(tr, key, json_true());
        else if (!json_object_get(tr, key)) json_object_set_new(tr, key, json_false());
    }
    json_object_set_new(out, "transforms", tr);
    return out;
}

/* The provider with the most requests in /stats requests.by_provider. */
static const char *busiest(json_t *by)
{
    const char *key, *best = NULL;
    json_t *v;
    json_int_t most = 0;
    json_object_foreach(by, key, v) {
        if (json_integer_value(v) > most) {
            most = json_integer_value(v);
            best = key;
        }
    }
    return best;
}

char *hr_session_stats(hr_client *c)
{
    hr_sdk_clear_error();
    if (!c) {
        hr_sdk_fail(HEADROOM_EINVAL, "hr_session_stats: client is NULL");
        return NULL;
    }
    if (c->offline) {
        double avg = c->requests ? c->ratio_sum / (double)c->requests : 1.0;
        json_t *out = json_pack("{s:{s:I,s:I,s:I,s:I,s:i,s:i,s:f},s:s}", "session", "requests_total",
                                (json_int_t)c->requests, "tokens_input_before", (json_int_t)c->tokens_before,
                                "tokens_input_after", (json_int_t)c->tokens_after, "tokens_saved_total",
                                (json_int_t)(c->tokens_before - c->tokens_after), "tokens_output_total", 0,
                                "cache_hits", 0, "compression_ratio_avg", hr_round(avg, 4), "source", "offline");
        return hr_sdk_dump(config_and_transforms(c, out, NULL, c->last_provider[0] ? c->last_provider : NULL, 0, NULL));
    }
    json_t *st = hr_sdk_get_json(c, "/stats", "tokens");
    if (!st) return NULL;
    json_t *req = json_object_get(st, "requests"), *tok = json_object_get(st, "tokens");
    json_t *cache = json_object_get(st, "cache");
    json_t *ratio = json_object_get(tok, "compression_ratio_avg");
    json_t *out = json_pack("{s:{s:I,s:I,s:I,s:I,s:I,s:I,s:f},s:s,s:s}", "session", "requests_total",
                            json_integer_value(json_object_get(req, "total")), "tokens_input_before",
                            json_integer_value(json_object_get(tok, "input")), "tokens_input_after",
                            json_integer_value(json_object_get(tok, "sent")), "tokens_saved_total",
                            json_integer_value(json_object_get(tok, "saved")), "tokens_output_total",
                            json_integer_value(json_object_get(tok, "output")), "cache_hits",
                            json_integer_value(json_object_get(cache, "total_hits")), "compression_ratio_avg",
                            json_is_number(ratio) ? json_number_value(ratio) : 1.0, "source", "daemon", "url", c->url);
    json_t *stages = json_object_get(st, "pipeline_timing");
    config_and_transforms(c, out, stages, busiest(json_object_get(req, "by_provider")),
                          json_is_true(json_object_get(cache, "enabled")),
                          json_string_value(json_object_get(st, "mode")));
    json_decref(st);
    return hr_sdk_dump(out);
}

int hr_token_count(const char *model, const char *encoding, const char *text, size_t len, size_t *count)
{
    hr_sdk_clear_error();
    if (!count || (!text && len)) return hr_sdk_fail(HEADROOM_EINVAL, "hr_token_count: text and count are required");
    enum hr_encoding e;
    if (encoding) {
        if (hr_encoding_from_name(encoding, &e) < 0)
            return hr_sdk_fail(HEADROOM_EINVAL, "unknown encoding '%s'; use o200k_base, cl100k_base or estimate",
                               encoding);
    } else {
        e = hr_encoding_for_model(model);
    }
    char err[512];
    if (e != HR_ENC_ESTIMATE && hr_tokens_init(err, sizeof err) < 0) return hr_sdk_fail(HEADROOM_EIO, "%s", err);
    *count = hr_count_tokens_enc(e, text ? text : "", len);
    return HEADROOM_OK;
}
