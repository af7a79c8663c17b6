/* host.h — the function table handed to plugins, and the registries it
 * fills (routes, /stats blocks, timers). Registration happens during
 * plugin init, before workers start; afterwards the registries are read-only. */
#ifndef HR_HOST_H
#define HR_HOST_H
#include "headroom/plugin.h"
#include "loader.h"

struct hr_route {
    char *method;
    char *path;
    int prefix;                 /* path ends in '/': matches what starts with it */
    hr_route_fn fn;
    void *state;
    const struct hr_instance *owner;
};

struct hr_stats_block {
    char *key;
    json_t *(*fn)(void *state);
    json_t *(*fn_for)(void *state, int from_loopback);
    void *state;
};

struct hr_timer {
    unsigned interval_ms;
    void (*fn)(void *state);
    void *state;
    double next_ms;
};

struct hr_metrics_source {
    int (*fn)(void *state, hr_metric_visit_fn visit, void *ud);
    void *state;
};

extern const struct hr_host hr_host_table;

size_t hr_metrics_source_count(void);
const struct hr_metrics_source *hr_metrics_source_at(size_t i);

const struct hr_route *hr_routes_find(const char *method, const char *path, int *method_mismatch);
/* The methods registered for `path`, as an Allow header's value ("GET, POST");
 * its length (0: none). */
size_t hr_routes_allow(const char *path, char *out, size_t outlen);
size_t hr_stats_block_count(void);
const struct hr_stats_block *hr_stats_block_at(size_t i);
/* Run due timers; returns ms until the next one is due (capped at 1000). */
unsigned hr_timers_run(double now_ms);
/* Run every timer once more (clean shutdown flush). */
void hr_timers_run_all(void);
void hr_host_registries_free(void);
#endif
