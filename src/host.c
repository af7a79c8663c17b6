/* host.c — the hr_host function table and the registries behind it. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "ccr.h"
#include "exporter.h"
#include "host.h"
#include "log.h"
#include "metrics.h"
#include "pipeline.h"
#include "state_dir.h"
#include "stats.h"
#include "token_cache.h"
#include "tokens.h"

static struct hr_route *routes;
static size_t n_routes;
static struct hr_stats_block *blocks;
static size_t n_blocks;
static struct hr_timer *timers;
static size_t n_timers;
static struct hr_metrics_source *sources;
static size_t n_sources;

static void host_log(const struct hr_instance *self, enum hr_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    /* self is the host's own (calloc'd) instance, const only in the ABI */
    if (self && level <= HR_LOG_WARN) atomic_fetch_add(&((struct hr_instance *)self)->complaints, 1);
    hr_logv(level, self ? self->logger : "headroom.plugin", fmt, ap);
    va_end(ap);
}

/* By enum hr_conf_type: its name, and the conf_* that reads it. */
static const char *const conf_type_names[] = {"", "HR_CONF_STRING", "HR_CONF_INT", "HR_CONF_BOOL", "HR_CONF_DOUBLE"};
static const char *const conf_readers[] = {"", "string", "int", "bool", "double"};

/* The value of `key`, or NULL. A key the plugin never declared (a typo in
 * its own call) or read as another type would silently read 0 or NULL:
 * logged, naming the call, every time during init and once after. Every
 * conf the host hands out is the `conf` of a struct hr_instance. */
static const char *conf_lookup(const struct hr_conf *conf, const char *key, const char *fn, enum hr_conf_type want)
{
    if (!conf) return NULL;
    size_t i = 0;
    while (key && i < conf->n_keys && strcmp(conf->keys[i].name, key)) i++;
    int found = key && i < conf->n_keys;
    int wrong_type = found && want && conf->keys[i].type != want && conf->keys[i].type <= HR_CONF_DOUBLE &&
                     !(want == HR_CONF_DOUBLE && conf->keys[i].type == HR_CONF_INT); /* exact either way */
    if (!found || wrong_type) {
        struct hr_instance *in = (struct hr_instance *)((char *)conf - offsetof(struct hr_instance, conf));
        if (!in->initialised || !atomic_exchange(&in->conf_misread, 1)) {
            if (wrong_type)
                host_log(in, HR_LOG_ERROR, "%s('%s'): '%s' is declared %s; read it with conf_%s", fn, key, key,
                         conf_type_names[conf->keys[i].type], conf_readers[conf->keys[i].type]);
            else {
                char names[512];
                size_t n = 0;
                names[0] = '\0';
                for (size_t k = 0; k < conf->n_keys && n < sizeof names; k++)
                    n += (size_t)snprintf(names + n, sizeof names - n, " %s", conf->keys[k].name);
                host_log(in, HR_LOG_ERROR, "%s('%s'): the plugin declares no such key, so it reads %s; declared:%s",
                         fn, key ? key : "(null)", want ? "0" : "NULL", conf->n_keys ? names : " none");
            }
        }
        if (!found) return NULL;
    }
    return conf->values[i] ? conf->values[i] : conf->keys[i].default_value;
}

static const char *conf_string(const struct hr_conf *conf, const char *key)
{
    return conf_lookup(conf, key, "conf_string", (enum hr_conf_type)0);
}

static long long conf_int(const struct hr_conf *conf, const char *key)
{
    const char *v = conf_lookup(conf, key, "conf_int", HR_CONF_INT);
    return v ? strtoll(v, NULL, 10) : 0;
}

static int conf_bool(const struct hr_conf *conf, const char *key)
{
    const char *v = conf_lookup(conf, key, "conf_bool", HR_CONF_BOOL);
    int b = 0;
    return v && hr_parse_bool(v, &b) == 0 ? b : 0;
}

static double conf_double(const struct hr_conf *conf, const char *key)
{
    const char *v = conf_lookup(conf, key, "conf_double", HR_CONF_DOUBLE);
    return v ? strtod(v, NULL) : 0;
}

static int register_route(struct hr_instance *self, const char *method, const char *path, hr_route_fn fn, void *state)
{
    if (!method || !path || path[0] != '/' || !fn) return HR_EINVAL;
    /* Two blocks serving one path (two `sink prometheus`): the second would
     * never be reached. Refused, naming both, so the config says which. */
    for (size_t i = 0; i < n_routes; i++)
        if (!strcmp(routes[i].method, method) && !strcmp(routes[i].path, path)) {
            host_log(self, HR_LOG_ERROR, "%s %s is served already by '%s' (%s); give this block (%s) another path",
                     method, path, routes[i].owner ? routes[i].owner->name : "?",
                     routes[i].owner && routes[i].owner->where ? routes[i].owner->where : "?",
                     self && self->where ? self->where : "?");
            return HR_EINVAL;
        }
    struct hr_route *r = realloc(routes, (n_routes + 1) * sizeof *r);
    if (!r) return HR_ENOMEM;
    routes = r;
    size_t len = strlen(path);
    r[n_routes] = (struct hr_route){strdup(method), strdup(path), len > 1 && path[len - 1] == '/', fn, state, self};
    n_routes++;
    return HR_OK;
}

static int route_matches(const struct hr_route *r, const char *path)
{
    return r->prefix ? !strncmp(path, r->path, strlen(r->path)) : !strcmp(path, r->path);
}

const struct hr_route *hr_routes_find(const char *method, const char *path, int *method_mismatch)
{
    *method_mismatch = 0;
    for (size_t i = 0; i < n_routes; i++) {
        const struct hr_route *r = &routes[i];
        if (!route_matches(r, path)) continue;
        if (!strcmp(r->method, method)) return r;
        *method_mismatch = 1;
    }
    return NULL;
}

size_t hr_routes_allow(const char *path, char *out, size_t outlen)
{
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n_routes; i++) {
        const struct hr_route *r = &routes[i];
        if (!route_matches(r, path) || strstr(out, r->method)) continue;
        int k = snprintf(out + n, outlen - n, "%s%s", n ? ", " : "", r->method);
        if (k < 0 || (size_t)k >= outlen - n) break;
        n += (size_t)k;
    }
    return n;
}

static int add_stats_block(const char *key, json_t *(*fn)(void *), json_t *(*fn_for)(void *, int), void *state)
{
    if (!key || (!fn && !fn_for)) return HR_EINVAL;
    struct hr_stats_block *b = realloc(blocks, (n_blocks + 1) * sizeof *b);
    if (!b) return HR_ENOMEM;
    blocks = b;
    b[n_blocks++] = (struct hr_stats_block){strdup(key), fn, fn_for, state};
    return HR_OK;
}

static void events_off(struct hr_instance *self)
{
    if (self) self->events_off = 1;
}

static int register_stats(struct hr_instance *self, const char *key, json_t *(*fn)(void *), void *state)
{
    (void)self;
    return add_stats_block(key, fn, NULL, state);
}

static int register_stats_for(struct hr_instance *self, const char *key, json_t *(*fn)(void *, int), void *state)
{
    (void)self;
    return add_stats_block(key, NULL, fn, state);
}

size_t hr_stats_block_count(void) { return n_blocks; }
const struct hr_stats_block *hr_stats_block_at(size_t i) { return i < n_blocks ? &blocks[i] : NULL; }

static int add_timer(struct hr_instance *self, unsigned interval_ms, void (*fn)(void *), void *state)
{
    (void)self;
    if (!fn || interval_ms == 0) return HR_EINVAL;
    struct hr_timer *t = realloc(timers, (n_timers + 1) * sizeof *t);
    if (!t) return HR_ENOMEM;
    timers = t;
    t[n_timers++] = (struct hr_timer){interval_ms, fn, state, 0};
    return HR_OK;
}

static int register_metrics(struct hr_instance *self, int (*fn)(void *, hr_metric_visit_fn, void *), void *state)
{
    (void)self;
    if (!fn) return HR_EINVAL;
    struct hr_metrics_source *m = realloc(sources, (n_sources + 1) * sizeof *m);
    if (!m) return HR_ENOMEM;
    sources = m;
    m[n_sources++] = (struct hr_metrics_source){fn, state};
    return HR_OK;
}

size_t hr_metrics_source_count(void) { return n_sources; }
const struct hr_metrics_source *hr_metrics_source_at(size_t i) { return i < n_sources ? &sources[i] : NULL; }

unsigned hr_timers_run(double now_ms)
{
    double next = now_ms + 1000;
    for (size_t i = 0; i < n_timers; i++) {
        struct hr_timer *t = &timers[i];
        if (t->next_ms == 0) t->next_ms = now_ms + t->interval_ms;
        if (now_ms >= t->next_ms) {
            t->fn(t->state);
            t->next_ms = now_ms + t->interval_ms;
        }
        if (t->next_ms < next) next = t->next_ms;
    }
    return next > now_ms ? (unsigned)(next - now_ms) : 1;
}

void hr_timers_run_all(void)
{
    for (size_t i = 0; i < n_timers; i++) timers[i].fn(timers[i].state);
}

void hr_host_registries_free(void)
{
    for (size_t i = 0; i < n_routes; i++) {
        free(routes[i].method);
        free(routes[i].path);
    }
    for (size_t i = 0; i < n_blocks; i++) free(blocks[i].key);
    free(routes);
    free(blocks);
    free(timers);
    free(sources);
    sources = NULL;
    n_sources = 0;
    routes = NULL;
    blocks = NULL;
    timers = NULL;
    n_routes = n_blocks = n_timers = 0;
}

const struct hr_host hr_host_table = {
    .struct_size = sizeof(struct hr_host),
    .abi_major = HR_ABI_MAJOR,
    .abi_minor = HR_ABI_MINOR,
    .log = host_log,
    .log_enabled = hr_log_enabled,
    .conf_string = conf_string,
    .conf_int = conf_int,
    .conf_bool = conf_bool,
    .conf_double = conf_double,
    .count_tokens = hr_count_tokens_cached,
    .unit_replace = hr_pipeline_unit_replace,
    .stage_tag = hr_pipeline_stage_tag,
    .ccr_put = hr_ccr_put,
    .ccr_get = hr_ccr_get,
    .ccr_free = hr_ccr_free,
    .register_route = register_route,
    .register_stats = register_stats,
    .add_timer = add_timer,
    .metrics_visit = hr_metrics_visit,
    .register_metrics = register_metrics,
    .register_stats_for = register_stats_for,
    .stage_tokens_removed = hr_pipeline_stage_tokens_removed,
    .unit_hash = hr_pipeline_unit_hash,
    .parallel_for = hr_pipeline_parallel_for,
    .now = hr_clock_now,
    .state_dir = hr_state_dir,
    .exporter_new = hr_exporter_new,
    .export_post = hr_export_post,
    .export_stats = hr_export_stats,
    .events_off = events_off,
    .unit_tokens_at_least = hr_pipeline_unit_tokens_at_least,
    .unit_tokens = hr_pipeline_unit_tokens,
    .ccr_put_unit = hr_pipeline_ccr_put_unit,
};
