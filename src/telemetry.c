/* telemetry.c — beacon on/off, install_mode and HEADROOM_STACK for the
 * host; the payload itself is built by lib/telemetry.c (shared with the
 * beacon sink, so the preview is what would be sent). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "log.h"
#include "metrics.h"
#include "state_dir.h"
#include "telemetry.h"
#include "telemetry_data.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif
#define LOGGER "headroom.telemetry"

static const char *default_stack;

/* The config file sets `port`: a service on a fixed port. */
static int file_fixes_port(const struct hr_config *c)
{
    if (!c->doc) return 0;
    for (size_t i = 0; i < c->doc->root.n_children; i++)
        if (!strcmp(c->doc->root.children[i].name, "port")) return 1;
    return 0;
}

static int env_set(const char *name)
{
    const char *v = getenv(name);
    return v && *v;
}

static const char *detect_install_mode(const struct hr_config *c)
{
    /* A service manager started us: systemd sets INVOCATION_ID or
     * NOTIFY_SOCKET, launchd XPC_SERVICE_NAME; a daemon reparented to init
     * is long-lived too. */
    const char *xpc = getenv("XPC_SERVICE_NAME");
    if (env_set("INVOCATION_ID") || env_set("NOTIFY_SOCKET") || (xpc && *xpc && strcmp(xpc, "0")) || getppid() == 1)
        return "persistent";
    if (file_fixes_port(c)) return "persistent";
    return "on_demand";
}

static void drop_block(struct hr_config *c, size_t i)
{
    free(c->plugins[i].name);
    free(c->plugins[i].instance);
    memmove(&c->plugins[i], &c->plugins[i + 1], (c->n_plugins - i - 1) * sizeof *c->plugins);
    c->n_plugins--;
}

int hr_telemetry_setup(struct hr_config *c, char *err, size_t errlen)
{
    const char *mode = getenv("HEADROOM_INSTALL_MODE");
    if (mode && *mode && !hr_tm_install_mode_valid(mode))
        HR_WARN(LOGGER, "HEADROOM_INSTALL_MODE='%s' is not valid (wrapped, persistent, on_demand or unknown); detecting it", mode);
    if (!hr_tm_install_mode_valid(mode) && setenv("HEADROOM_INSTALL_MODE", detect_install_mode(c), 1)) return -errno;
    const char *stack = getenv("HEADROOM_STACK");
    default_stack = NULL;
    if (stack && *stack) {
        if (hr_tm_stack_valid(stack)) default_stack = stack;
        else HR_WARN(LOGGER, "HEADROOM_STACK='%s' is not valid (lower-case letters, digits and _, starting with a letter, "
                             "at most 64); ignored", stack);
    }

    int on = c->telemetry == 1;
    struct hr_plugin_block keep = {0};
    int have = 0;
    for (size_t i = 0; i < c->n_plugins;) {
        if (c->plugins[i].is_sink && !strcmp(c->plugins[i].name, "beacon")) {
            if (on && !have) {
                keep = c->plugins[i];
                have = 1;
                memmove(&c->plugins[i], &c->plugins[i + 1], (c->n_plugins - i - 1) * sizeof *c->plugins);
                c->n_plugins--;
            } else {
                if (!on) HR_INFO(LOGGER, "telemetry is off: the beacon sink in %s is not loaded", c->file ? c->file : "the config");
                drop_block(c, i);
            }
            continue;
        }
        i++;
    }
    if (!on) return 0;
    if (!have) {
        static const char text[] = "sink beacon { }\n";
        struct hr_conf_doc *doc = NULL;
        int rc = hr_conf_parse_string("--telemetry", text, sizeof text - 1, NULL, &doc, err, errlen);
        if (rc) return rc;
        keep = (struct hr_plugin_block){.is_sink = 1, .name = strdup("beacon"), .instance = strdup("beacon"),
                                        .node = &doc->root.children[0]};
        c->telemetry_doc = doc;
    }
    /* Last: sinks stop in reverse order, and the beacon's final report
     * reads the metrics other sinks contribute. */
    struct hr_plugin_block *p = realloc(c->plugins, (c->n_plugins + 1) * sizeof *p);
    if (!p) return -ENOMEM;
    c->plugins = p;
    p[c->n_plugins++] = keep;
    return 0;
}

const char *hr_telemetry_default_stack(void) { return default_stack; }

json_t *hr_telemetry_stats_json(void)
{
    struct hr_tm_counts counts;
    hr_tm_gather(hr_metrics_visit, &counts);
    json_t *j = hr_tm_stats_block(&counts, 0);
    json_object_set_new(j, "last_report_at", json_null());
    json_object_set_new(j, "reports_ok", json_integer(0));
    json_object_set_new(j, "reports_failed", json_integer(0));
    json_object_set_new(j, "disabled_reason",
                        json_string("telemetry is off (the default: turn it on with --telemetry, HEADROOM_TELEMETRY=on "
                                    "or `telemetry on`; an off anywhere wins)"));
    return j;
}

int hr_telemetry_preview(const struct hr_config *c, FILE *out, char *err, size_t errlen)
{
    char id[37];
    if (hr_tm_install_id(hr_state_dir(), id, err, errlen)) return -1;
    struct hr_tm_counts counts;
    hr_tm_gather(hr_metrics_visit, &counts);
    json_t *p = hr_tm_payload(&counts, id, PACKAGE_VERSION);
    char *text = p ? hr_tm_dump(p) : NULL;
    json_decref(p);
    if (!text) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    fprintf(out, "%s\n", text);
    free(text);
    fprintf(stderr, "headroomd: telemetry is %s%s\n", c->telemetry == 1 ? "on" : "off",
            c->telemetry == 1 ? ": the beacon sends a report like this one every interval (doc/telemetry.md)"
                              : ": nothing is sent (turn it on with --telemetry or HEADROOM_TELEMETRY=on)");
    return 0;
}
