/* loader.h — loading plugins (libltdl), checking their ABI, validating their
 * config blocks, and the instances the host keeps for them. */
#ifndef HR_LOADER_H
#define HR_LOADER_H
#include <stdatomic.h>
#include "headroom/plugin.h"
#include "config.h"

struct hr_conf {
    const struct hr_conf_key *keys;
    char **values;              /* per key: configured text, or NULL for the default */
    size_t n_keys;
};

struct hr_sink_queue;

struct hr_instance {
    const struct headroom_plugin *desc;
    void *handle;               /* lt_dlhandle */
    char *path;
    char *name;                 /* instance name (stage name for transforms) */
    char *logger;               /* headroom.transforms.<name> / headroom.sinks.<name> */
    char *where;                /* "file:line:col" of its block, for errors about it */
    char *label;                /* "transform 'name' (path)": hr_crash_where while its code runs */
    struct hr_conf conf;
    void *state;
    int initialised;
    size_t stage_index;         /* transforms: position in the pipeline */
    struct hr_sink_queue *queue; /* sinks */
    int events_off;             /* sinks: asked for no events (hr_host.events_off) */
    atomic_ullong events, dropped;
    atomic_int broke_units_only; /* transforms: warned once that HR_TF_UNITS_ONLY was not kept */
    atomic_uint complaints;     /* ERROR and WARN lines it logged: an init failing without one is named */
    atomic_int conf_misread;    /* logged once after init that it read an undeclared key (host.c) */
};

struct hr_plugins {
    struct hr_instance **transforms;
    size_t n_transforms;
    struct hr_instance **sinks;
    size_t n_sinks;
};

/* Directory plugins are loaded from when neither the config nor a flag names one. */
const char *hr_default_plugin_dir(void);

/* Open every plugin block of `c`, check ABI and config keys. Does not call
 * init. Errors (file:line:col or the .so path) go to err. */
int hr_plugins_load(const struct hr_config *c, struct hr_plugins *out, char *err, size_t errlen);
/* init() every instance in config order; on failure, those done are fini'd. */
int hr_plugins_init(struct hr_plugins *p, const struct hr_host *host, char *err, size_t errlen);
/* fini() and unload everything (sinks must already be drained). */
void hr_plugins_unload(struct hr_plugins *p);
/* POST /stats/reset: each instance's reset (ABI 1.2), where it has one. */
void hr_plugins_reset(const struct hr_plugins *p);
/* Print the loaded plugins and their config keys (--check-config). */
void hr_plugins_describe(const struct hr_plugins *p, FILE *out);
#endif
