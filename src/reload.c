/* reload.c — SIGHUP: apply what can change in a running daemon (log level,
 * prices, budget, rate limits, request and upstream limits) from a freshly
 * read config, and name everything else as needing a restart. */
#include <stdio.h>
#include <string.h>
#include <event2/event.h>
#include "cost.h"
#include "daemon.h"
#include "http_server.h"
#include "log.h"
#include "ratelimit.h"
#include "reload.h"

#define LOGGER "headroom.server"

/* Directives a reload applies. budget and prices are handled by cost.c,
 * rate limits by ratelimit.c; the rest are plain numbers workers read. */
static const char *const reloadable[] = {
    "log_level", "budget", "budget_period", "prices", "rate_limit", "rate_limit_rpm", "rate_limit_tpm",
    "max_body_size", "max_header_size", "max_response_size", "max_connections", "client_timeout",
    "upstream_connect_timeout_ms", "upstream_timeout", "upstream_idle_timeout",
};

/* What changed, by name (the config table's names, literals, or a buffer
 * that outlives the reload), until the log lines are written. */
struct diff {
    const char *applied[64], *restart[64];
    size_t na, nr;
};

static void add(const char **list, size_t *n, const char *name)
{
    if (*n < 64) list[(*n)++] = name;
}

/* Removes `name` from the list: a change cost.c could not apply. */
static void drop(const char **list, size_t *n, const char *name)
{
    for (size_t i = 0; i < *n; i++)
        if (!strcmp(list[i], name)) {
            memmove(list + i, list + i + 1, (*n - i - 1) * sizeof *list);
            (*n)--;
            return;
        }
}

static const char *joined(const char *const *list, size_t n, char *buf, size_t cap)
{
    size_t k = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && k < cap; i++) {
        int w = snprintf(buf + k, cap - k, "%s%s", i ? ", " : "", list[i]);
        if (w > 0) k += (size_t)w;
    }
    return n ? buf : "nothing";
}

static void classify(const char *name, void *ud)
{
    struct diff *df = ud;
    for (size_t i = 0; i < sizeof reloadable / sizeof *reloadable; i++)
        if (!strcmp(reloadable[i], name)) {
            add(df->applied, &df->na, name);
            return;
        }
    add(df->restart, &df->nr, name);
}

static int same_str(const char *a, const char *b) { return a == b || (a && b && !strcmp(a, b)); }

/* The `backend redis { }` block is not a directive hr_config_diff knows.
 * Its connections are made when the workers start: any change needs a
 * restart. The url is named, never shown (it may hold a password). */
static void diff_backend(const struct hr_config *a, const struct hr_config *b, struct diff *df)
{
    if (!a->backend_url || !b->backend_url) {
        if (a->backend_url || b->backend_url)
            add(df->restart, &df->nr,
                a->backend_url ? "backend redis (removed)" : "backend redis (added)");
        return;
    }
    if (!same_str(a->backend_url, b->backend_url)) add(df->restart, &df->nr, "backend redis url");
    if (!same_str(a->backend_prefix, b->backend_prefix))
        add(df->restart, &df->nr, "backend redis prefix");
    if (a->backend_timeout_ms != b->backend_timeout_ms)
        add(df->restart, &df->nr, "backend redis timeout_ms");
    if (a->backend_fail_closed != b->backend_fail_closed)
        add(df->restart, &df->nr, "backend redis on_backend_error");
}

/* Workers read these numbers per request or per connection: word-sized
 * stores, atomic so a reader sees the old or the new value, never a mix. */
#define STORE(field, value) __atomic_store_n(&(field), (value), __ATOMIC_RELAXED)

/* The HTTP server's limits belong to the worker's loop: set them from inside it. */
static void apply_http_limits(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct hr_worker *w = arg;
    const struct hr_config *c = w->d->cfg;
    struct hr_http_limits lim = {__atomic_load_n(&c->max_body_bytes, __ATOMIC_RELAXED),
                                 __atomic_load_n(&c->max_header_bytes, __ATOMIC_RELAXED),
                                 __atomic_load_n(&c->client_timeout_s, __ATOMIC_RELAXED)};
    hr_http_server_set_limits(w->http, &lim);
}

int hr_reload_apply(struct hr_daemon *d, const struct hr_config *fresh, char *err, size_t errlen)
{
    struct hr_config *live = d->cfg;
    struct diff df = {0};
    hr_config_diff(live, fresh, classify, &df);
    diff_backend(live, fresh, &df);

    /* Prices and budget first: they can fail, and then nothing changes. */
    char cost_done[512], cost_restart[256];
    if (hr_cost_reload(fresh, cost_done, sizeof cost_done, cost_restart, sizeof cost_restart, err, errlen))
        return -1;
    if (*cost_restart) { /* budget_period with a budget running: not applied (cost.c says why) */
        drop(df.applied, &df.na, "budget_period");
        add(df.restart, &df.nr, cost_restart);
    }
    if (hr_ratelimit_reconfigure(fresh)) HR_WARN(LOGGER, "reload: out of memory for the rate-limit table: limits unchanged");

    hr_log_set_level(fresh->log_level);
    STORE(live->log_level, fresh->log_level);
    live->budget_usd = fresh->budget_usd; /* only this thread reads it */
    STORE(live->rate_limit_rpm, fresh->rate_limit_rpm);
    STORE(live->rate_limit_tpm, fresh->rate_limit_tpm);
    STORE(live->no_rate_limit, fresh->no_rate_limit);
    STORE(live->max_body_bytes, fresh->max_body_bytes);
    STORE(live->max_header_bytes, fresh->max_header_bytes);
    STORE(live->max_response_bytes, fresh->max_response_bytes);
    STORE(live->max_connections, fresh->max_connections);
    STORE(live->client_timeout_s, fresh->client_timeout_s);
    STORE(live->upstream_connect_timeout_ms, fresh->upstream_connect_timeout_ms);
    STORE(live->upstream_timeout_s, fresh->upstream_timeout_s);
    STORE(live->upstream_idle_timeout_s, fresh->upstream_idle_timeout_s);
    for (size_t i = 0; i < d->n_workers; i++)
        event_base_once(d->workers[i].base, -1, EV_TIMEOUT, apply_http_limits, &d->workers[i], NULL);

    char list[1024];
    HR_INFO(LOGGER, "reloaded %s: changed and applied: %s; %s", fresh->file ? fresh->file : "(no config file)",
            joined(df.applied, df.na, list, sizeof list), cost_done);
    if (df.nr)
        HR_WARN(LOGGER, "reload: changed but needing a restart to take effect (still running with the old values): %s",
                joined(df.restart, df.nr, list, sizeof list));
    return 0;
}
