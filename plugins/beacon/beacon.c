/* beacon.c — the `beacon` sink: the anonymous usage report (doc/telemetry.md).
 * The host loads it only when telemetry is on (HEADROOM_TELEMETRY=on or
 * --telemetry, and no "off" anywhere). It takes no request events: every
 * `interval` it reads the aggregate counters through metrics_visit, builds
 * the payload with lib/telemetry_data.c (the code --telemetry-preview uses)
 * and hands it to the host's exporter, which POSTs it off the request path
 * with retries. A collector that is down costs a counted failure, a longer
 * wait before the next report, and at most two queued bodies. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <headroom/plugin.h>
#include "telemetry_data.h"
#include "url_shown.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif

#define MAX_BACKOFF 8 /* reports wait at most 8 intervals while the collector fails */

struct beacon {
    const struct hr_host *host;
    struct hr_instance *self;
    int enabled;
    char why[600];          /* while not enabled: the reason, for /stats */
    char *url;
    unsigned interval_s;
    char install_id[37];
    struct hr_exporter *ex;
    /* housekeeping thread only */
    double next_due;        /* monotonic seconds */
    atomic_uint backoff;    /* multiplier of interval (read by /stats) */
    uint64_t seen_ok, seen_failed;
    double last_sent;       /* monotonic seconds */
};

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void report(struct beacon *b)
{
    struct hr_tm_counts c;
    hr_tm_gather(b->host->metrics_visit, &c);
    json_t *p = hr_tm_payload(&c, b->install_id, PACKAGE_VERSION);
    char *text = p ? hr_tm_dump(p) : NULL;
    json_decref(p);
    if (!text) return;
    b->host->export_post(b->ex, text, strlen(text), 1); /* a full queue is counted by the host */
    free(text);
    b->last_sent = mono_s();
}

/* Housekeeping timer, every second: report when due; while reports fail,
 * wait longer (doubling, up to MAX_BACKOFF intervals). */
static void tick(void *state)
{
    struct beacon *b = state;
    double now = mono_s();
    if (now < b->next_due) return;
    struct hr_export_stats st = {.struct_size = sizeof st};
    b->host->export_stats(b->ex, &st);
    uint64_t failed = st.failed + st.dropped;
    unsigned k = atomic_load(&b->backoff);
    if (failed > b->seen_failed && st.ok == b->seen_ok) atomic_store(&b->backoff, k * 2 > MAX_BACKOFF ? MAX_BACKOFF : k * 2);
    else if (st.ok > b->seen_ok) atomic_store(&b->backoff, 1);
    b->seen_ok = st.ok;
    b->seen_failed = failed;
    report(b);
    b->next_due = now + (double)b->interval_s * atomic_load(&b->backoff);
}

static json_t *iso_or_null(double t)
{
    if (t <= 0) return json_null();
    time_t s = (time_t)t;
    struct tm tm;
    char buf[32];
    gmtime_r(&s, &tm);
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(buf);
}

static json_t *stats_block(void *state)
{
    struct beacon *b = state;
    struct hr_tm_counts c;
    hr_tm_gather(b->host->metrics_visit, &c);
    json_t *j = hr_tm_stats_block(&c, b->enabled);
    struct hr_export_stats st = {.struct_size = sizeof st};
    if (b->ex) b->host->export_stats(b->ex, &st);
    json_object_set_new(j, "last_report_at", iso_or_null(st.last_ok_at));
    json_object_set_new(j, "reports_ok", json_integer((json_int_t)st.ok));
    json_object_set_new(j, "reports_failed", json_integer((json_int_t)(st.failed + st.dropped)));
    if (!b->enabled) { /* nothing is sent: no endpoint, no schedule, and why */
        json_object_set_new(j, "disabled_reason", json_string(b->why));
        return j;
    }
    char shown[512]; /* a collector's user:password@ as ***@, as /stats.otel shows its endpoint */
    hr_url_shown(b->url, shown, sizeof shown);
    json_object_set_new(j, "endpoint", json_string(shown));
    json_object_set_new(j, "interval_seconds", json_integer(b->interval_s));
    /* longer than interval_seconds while reports fail */
    json_object_set_new(j, "current_interval_seconds", json_integer((json_int_t)b->interval_s * atomic_load(&b->backoff)));
    json_object_set_new(j, "queued", json_integer((json_int_t)st.queued));
    json_object_set_new(j, "last_error", st.last_error[0] ? json_string(st.last_error) : json_null());
    return j;
}

/* Loaded but sending nothing: said once in the log, and in /stats. */
static int off(struct beacon *b)
{
    b->host->log(b->self, HR_LOG_WARN, "%s: nothing is sent", b->why);
    return HR_OK;
}

static int start(struct beacon *b, const struct hr_conf *conf)
{
    const struct hr_host *host = b->host;
    const char *url = getenv("HEADROOM_TELEMETRY_URL");
    if (!url || !*url) url = host->conf_string(conf, "url");
    b->interval_s = (unsigned)host->conf_int(conf, "interval");
    unsigned first = (unsigned)host->conf_int(conf, "first_delay");
    if (!url || !*url) {
        snprintf(b->why, sizeof b->why, "telemetry is on but no collector is configured (set `url` in the `sink beacon` "
                 "block or HEADROOM_TELEMETRY_URL)");
        return off(b);
    }
    if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)) {
        char shown[512];
        hr_url_shown(url, shown, sizeof shown);
        snprintf(b->why, sizeof b->why, "%s '%s' is not an http:// or https:// URL",
                 getenv("HEADROOM_TELEMETRY_URL") && *getenv("HEADROOM_TELEMETRY_URL") ? "HEADROOM_TELEMETRY_URL"
                                                                                         : "the beacon block's url",
                 shown);
        return off(b);
    }
    if (!(b->url = strdup(url))) return HR_ENOMEM;
    char err[256];
    if (hr_tm_install_id(host->state_dir(), b->install_id, err, sizeof err)) {
        snprintf(b->why, sizeof b->why, "%s", err);
        return off(b);
    }
    struct hr_export_conf ec = {.struct_size = sizeof ec, .name = "beacon", .url = b->url, .content_type = "application/json",
                                .timeout_ms = 10000, .queue_max = 2, .max_attempts = 3, .backoff_ms = 2000};
    if (!(b->ex = host->exporter_new(b->self, &ec))) {
        char shown[512];
        hr_url_shown(url, shown, sizeof shown);
        snprintf(b->why, sizeof b->why, "cannot start the exporter for %s", shown);
        return off(b);
    }
    atomic_store(&b->backoff, 1);
    b->next_due = mono_s() + first;
    if (host->add_timer(b->self, 1000, tick, b)) {
        snprintf(b->why, sizeof b->why, "cannot schedule reports");
        return off(b);
    }
    b->enabled = 1;
    char shown[512];
    hr_url_shown(b->url, shown, sizeof shown);
    host->log(b->self, HR_LOG_INFO, "anonymous usage report to %s every %u s (first in %u s); preview it with "
                                    "headroomd --telemetry-preview, turn it off with --no-telemetry",
              shown, b->interval_s, first);
    return HR_OK;
}

static int init(const struct hr_host *host, struct hr_instance *self, const struct hr_conf *conf, void **out)
{
    if (!HR_HAS_FIELD(host, struct hr_host, events_off) || !host->exporter_new) {
        host->log(self, HR_LOG_ERROR, "this headroomd has no export path (ABI 1.2 exporter_new); upgrade headroomd");
        return HR_EINVAL;
    }
    struct beacon *b = calloc(1, sizeof *b);
    if (!b) return HR_ENOMEM;
    b->host = host;
    b->self = self;
    *out = b;
    int rc = start(b, conf);
    if (rc) return rc;
    host->register_stats(self, "telemetry", stats_block, b);
    return HR_OK;
}

static void fini(void *state)
{
    struct beacon *b = state;
    if (!b) return;
    /* The last report at clean shutdown (unless the shutdown's timer run
     * just sent one); the host gives it one short attempt. */
    if (b->enabled && mono_s() - b->last_sent > 1.0) report(b);
    free(b->url);
    free(b);
}

static const struct hr_conf_key keys[] = {
    HR_CONF_KEY("url", HR_CONF_STRING, "", "collector URL the report is POSTed to (HEADROOM_TELEMETRY_URL overrides); empty = send nothing"),
    HR_CONF_KEY_RANGE("interval", HR_CONF_INT, "300", "seconds between reports", 1, 86400),
    HR_CONF_KEY_RANGE("first_delay", HR_CONF_INT, "60", "seconds from start to the first report", 0, 86400),
    HR_CONF_END,
};

HR_PLUGIN_EXPORT const struct headroom_plugin headroom_plugin = {
    HR_PLUGIN_HEADER,
    .name = "beacon",
    .kind = HR_PLUGIN_SINK,
    .version = "1.0.0",
    .description = "anonymous usage report (aggregate counts only), off unless HEADROOM_TELEMETRY=on or --telemetry",
    .conf_keys = keys,
    .init = init,
    .fini = fini,
    .on_event = NULL,
};
