/* prometheus.c — the `prometheus` sink: serves GET <path> (default /metrics)
 * in Prometheus text format 0.0.4, rendered from one metrics walk per scrape.
 * It keeps no counters of its own: the host registry already counts every
 * event, so it has no on_event and requests hand it nothing (no queue, no
 * thread). */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <headroom/plugin.h>
#include "render.h"

struct prom {
    const struct hr_host *host;
    struct hr_instance *self;
    char *path;
    atomic_int warned;         /* dropped-sample WARN is logged once per process */
};

static const struct hr_conf_key prom_keys[] = {
    HR_CONF_KEY("path", HR_CONF_STRING, "/metrics", "URL path Prometheus scrapes (GET)"),
    HR_CONF_END,
};

static int valid_path(const char *p)
{
    if (!p || p[0] != '/' || strlen(p) > 256) return 0;
    for (; *p; p++)
        if (*p <= ' ' || *p == '?' || *p == '#' || *p == 0x7f) return 0;
    return 1;
}

/* Runs on worker threads concurrently: everything lives in this call's render;
 * the host's walk sums the shards under their own short locks. */
static int serve(void *state, const struct hr_http_request *req, struct hr_http_response *resp)
{
    struct prom *s = state;
    (void)req;
    struct hr_prom_render *r = hr_prom_render_new();
    if (!r) return HR_ENOMEM;
    int rc = s->host->metrics_visit(hr_prom_visit, r);
    const char *why = NULL;
    size_t dropped = hr_prom_render_dropped(r, &why);
    if (dropped && !atomic_exchange(&s->warned, 1))
        s->host->log(s->self, HR_LOG_WARN, "left %zu sample(s) out of %s (first: %s); the rest of the scrape is fine",
                     dropped, s->path, why);
    char *body = NULL;
    size_t len = 0;
    if (rc == HR_OK) rc = hr_prom_render_finish(r, &body, &len);
    hr_prom_render_free(r);
    if (rc != HR_OK) {
        s->host->log(s->self, HR_LOG_ERROR, "could not render %s (error %d)", s->path, rc);
        return rc;
    }
    resp->status = 200;
    resp->content_type = HR_PROM_CONTENT_TYPE;
    resp->body = body;
    resp->body_len = len;
    resp->free_body = free;
    return HR_OK;
}

static int init(const struct hr_host *host, struct hr_instance *self, const struct hr_conf *conf, void **out)
{
    if (!HR_HAS_FIELD(host, struct hr_host, metrics_visit) || !host->metrics_visit || !host->register_route) {
        host->log(self, HR_LOG_ERROR, "this headroomd has no metrics registry to render; upgrade headroomd");
        return HR_EINVAL;
    }
    const char *path = host->conf_string(conf, "path");
    if (!valid_path(path)) {
        host->log(self, HR_LOG_ERROR,
                  "path '%s' is not a URL path: use an absolute path without spaces, '?' or '#', e.g. `path /metrics;`",
                  path ? path : "");
        return HR_EINVAL;
    }
    struct prom *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        free(s);
        return HR_ENOMEM;
    }
    s->host = host;
    s->self = self;
    int rc = host->register_route(self, "GET", s->path, serve, s);
    if (rc != HR_OK) {
        host->log(self, HR_LOG_ERROR, "could not register GET %s (error %d)", s->path, rc);
        free(s->path);
        free(s);
        return rc;
    }
    host->log(self, HR_LOG_INFO, "serving Prometheus metrics on GET %s", s->path);
    *out = s;
    return HR_OK;
}

static void fini(void *state)
{
    struct prom *s = state;
    if (!s) return;
    free(s->path);
    free(s);
}

HR_PLUGIN_EXPORT const struct headroom_plugin headroom_plugin = {
    HR_PLUGIN_HEADER,
    .name = "prometheus",
    .kind = HR_PLUGIN_SINK,
    .version = "1.0.0",
    .description = "GET /metrics in Prometheus text format 0.0.4",
    .conf_keys = prom_keys,
    .init = init,
    .fini = fini,
};
