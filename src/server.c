/* server.c — the listening socket, worker threads (one event_base, HTTP
 * server and upstream client each), request routing and the built-in
 * endpoints. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <event2/thread.h>
#include <event2/util.h>
#include "bg_thread.h"
#include "ccr.h"
#include "balance.h"
#include "conn_counters.h"
#include "conn_guard.h"
#include "guard.h"
#include "daemon.h"
#include "fleet.h"
#include "host.h"
#include "http_server.h"
#include "log.h"
#include "state_dir.h"
#include "stats.h"
#include "stats_json.h"
#include "ws_relay.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif
#define LOGGER "headroom.server"

static void send_error(struct hr_req *req, int status, const char *message)
{
    hr_send_json(req, status, json_pack("{s:{s:s,s:i}}", "error", "message", message, "status", status));
}

static void refuse(struct hr_req *req, int status, enum hr_refusal why, const char *message)
{
    hr_guard_count(why);
    send_error(req, status, message);
}

/* Admin endpoints change state: the admin token, or loopback without the
 * marks of a web page (another origin, a form post). Returns 1 when refused. */
static int refuse_non_admin(struct hr_daemon *d, struct hr_req *req)
{
    if (hr_guard_admin_token_ok(req, d->cfg->admin_token)) return 0;
    if (!hr_req_peer_is_loopback(req)) {
        refuse(req, 403, HR_REFUSE_UNAUTHORIZED, "admin endpoint: call from loopback or send x-headroom-admin-token");
        return 1;
    }
    const char *why = hr_guard_cross_site(req);
    if (why) refuse(req, 403, HR_REFUSE_CROSS_SITE, why);
    return why != NULL;
}

/* /stats and the savings views (stats_token), the Prometheus route
 * (metrics_token). Returns 1 when refused. */
static int refuse_without_token(struct hr_req *req, const char *token, const char *name)
{
    if (hr_guard_bearer_ok(req, token)) return 0;
    char msg[160];
    snprintf(msg, sizeof msg, "this endpoint needs Authorization: Bearer <%s> (set in headroom.conf)", name);
    hr_req_add_header(req, "WWW-Authenticate", "Bearer");
    refuse(req, 401, HR_REFUSE_UNAUTHORIZED, msg);
    return 1;
}

/* Always 200 while the process serves: a liveness probe on /health must
 * not restart an instance for a Redis outage or a full disk a restart
 * cannot fix. Either makes the status "degraded": figures are being lost
 * or left unchecked (readiness is /readyz's). */
static void handle_health(struct hr_daemon *d, struct hr_req *req)
{
    int ready = atomic_load(&d->ready);
    char why[512];
    const char *state_dir = hr_state_dir_health(why, sizeof why);
    json_t *checks = json_pack("{s:s,s:i,s:i,s:i,s:s}", "listener", atomic_load(&d->stopping) ? "draining" : "ok",
                               "workers", (int)d->n_workers, "transforms", (int)d->plugins.n_transforms, "sinks",
                               (int)d->plugins.n_sinks, "state_dir", state_dir);
    json_t *backend = hr_fleet_health();
    int degraded = (backend && !json_is_true(json_object_get(backend, "up"))) || strcmp(state_dir, "ok");
    if (backend) json_object_set_new(checks, "backend", backend);
    hr_send_json(req, 200, json_pack("{s:s,s:s,s:f,s:b,s:o}", "status",
                                     !ready ? "starting" : degraded ? "degraded" : "healthy", "version",
                                     PACKAGE_VERSION, "uptime_seconds", hr_round(hr_uptime_seconds(), 1), "ready",
                                     ready, "checks", checks));
}

static int plugin_route(struct hr_worker *w, struct hr_req *req, const char *method, const char *path, const char *query)
{
    int wrong_method;
    const struct hr_route *r = hr_routes_find(method, path, &wrong_method);
    if (!r) {
        if (wrong_method) {
            char allow[128];
            if (hr_routes_allow(path, allow, sizeof allow)) hr_req_add_header(req, "Allow", allow);
            send_error(req, 405, "method not allowed on this path");
        }
        return wrong_method;
    }
    const struct hr_config *cfg = w->d->cfg;
    const char *owner = r->owner && r->owner->desc ? r->owner->desc->name : "";
    if (!strcmp(owner, "prometheus") ? refuse_without_token(req, cfg->metrics_token, "metrics_token")
        : !strcmp(path, "/stats-history") ? refuse_without_token(req, cfg->stats_token, "stats_token")
                                           : 0)
        return 1;
    size_t blen;
    const char *body = hr_req_body(req, &blen);
    struct hr_http_request hreq = {sizeof hreq, method, path, query ? query : "", body, blen,
                                   hr_req_peer_is_loopback(req)};
    struct hr_http_response resp = {.struct_size = sizeof resp, .status = 200};
    int rc = r->fn(r->state, &hreq, &resp);
    if (rc) {
        if (resp.body && resp.free_body) resp.free_body(resp.body);
        send_error(req, 500, "plugin route failed");
        return 1;
    }
    hr_req_add_header(req, "Content-Type", resp.content_type ? resp.content_type : "text/plain; charset=utf-8");
    for (const char *const *h = resp.extra_headers; h && h[0] && h[1]; h += 2) hr_req_add_header(req, h[0], h[1]);
    hr_req_send(req, resp.status ? resp.status : 200, resp.body ? resp.body : "", resp.body ? resp.body_len : 0);
    if (resp.body && resp.free_body) resp.free_body(resp.body);
    return 1;
}

static void dispatch(struct hr_req *req, void *arg);

/* With `backend redis`, a /v1/ request first waits (off the worker) for the
 * shared state it needs, then comes back through dispatch. */
static int deferred(struct hr_worker *w, struct hr_req *req, const char *path)
{
    return hr_fleet_enabled() && hr_fleet_defer(w, req, path, dispatch);
}

/* Cut-through: a /v1/ request whose body is still arriving goes to the
 * proxy now when it is one dispatch would hand to hr_proxy_handle; anything
 * else (refused, a built-in or plugin route) waits for its whole body. */
static int early(struct hr_req *req, void *arg)
{
    struct hr_worker *w = arg;
    const char *uri = hr_req_uri(req), *method = hr_req_method(req);
    size_t plen = strcspn(uri, "?");
    char path[2048];
    int wrong_method;
    if (strncmp(uri, "/v1/", 4) || plen >= sizeof path || !hr_guard_host_ok(w->d->cfg, hr_req_header(req, "host")))
        return 0;
    memcpy(path, uri, plen);
    path[plen] = '\0';
    if (!strcmp(path, "/v1/compress") || !strncmp(path, "/v1/retrieve", 12) ||
        hr_routes_find(method, path, &wrong_method) || wrong_method)
        return 0;
    return hr_proxy_handle_early(w, req, path);
}

/* A request may switch a socket between reading and writing more than once
 * within one loop iteration (libcurl's upstream sockets): epoll's changelist
 * folds those into at most one epoll_ctl per socket per iteration. (Its one
 * hazard, two dup()s of a socket in one loop, does not arise: each loop has
 * its own listening socket or its own dup of the shared one.) */
static struct event_base *new_worker_base(void)
{
    struct event_config *cfg = event_config_new();
    if (!cfg) return event_base_new();
    event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    struct event_base *base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    return base ? base : event_base_new();
}

static void dispatch(struct hr_req *req, void *arg)
{
    struct hr_worker *w = arg;
    struct hr_daemon *d = w->d;
    const char *uri = hr_req_uri(req);
    char path[2048];
    /* DNS rebinding: a web page whose name now points at 127.0.0.1 still
     * sends its own name as Host. */
    if (!hr_guard_host_ok(d->cfg, hr_req_header(req, "host"))) {
        refuse(req, 403, HR_REFUSE_HOST, "Host header names a host headroomd does not serve: use localhost or an IP "
                                         "address, or add the name to allowed_hosts in headroom.conf");
        return;
    }
    const char *q = strchr(uri, '?');
    size_t plen = q ? (size_t)(q - uri) : strlen(uri);
    if (uri[0] != '/') { /* absolute-form (a proxy request) or '*' */
        refuse(req, 400, HR_REFUSE_BAD_PATH, "request target must be a path (origin-form), not an absolute URL: "
                                             "headroomd is not a forward proxy");
        return;
    }
    if (plen >= sizeof path) {
        refuse(req, 414, HR_REFUSE_BAD_PATH, "request path longer than 2047 bytes");
        return;
    }
    memcpy(path, uri, plen);
    path[plen] = '\0';
    const char *method = hr_req_method(req);

    if (!strcmp(path, "/livez")) {
        hr_send_json(req, 200, json_pack("{s:s}", "status", "alive"));
    } else if (!strcmp(path, "/readyz")) {
        int ready = atomic_load(&d->ready) && !atomic_load(&d->stopping);
        const char *why = ready ? hr_fleet_unready() : NULL; /* Redis down, on_backend_error closed */
        json_t *o = json_pack("{s:b}", "ready", ready && !why);
        if (why) json_object_set_new(o, "reason", json_string(why));
        hr_send_json(req, ready && !why ? 200 : 503, o);
    } else if (!strcmp(path, "/health")) {
        handle_health(d, req);
    } else if (!strcmp(path, "/stats") && !strcmp(method, "GET")) {
        if (!refuse_without_token(req, d->cfg->stats_token, "stats_token"))
            hr_send_json(req, 200, hr_stats_json(hr_req_peer_is_loopback(req)));
    } else if (!strcmp(path, "/stats/reset")) {
        if (strcmp(method, "POST")) {
            hr_req_add_header(req, "Allow", "POST");
            send_error(req, 405, "use POST /stats/reset");
        } else if (refuse_non_admin(d, req)) {
            /* refused */
        } else {
            hr_stats_reset();
            hr_plugins_reset(&d->plugins);
            HR_INFO(LOGGER, "live counters reset by an admin request (durable savings untouched)");
            hr_send_json(req, 200, json_pack("{s:b}", "reset", 1));
        }
    } else if (!strncmp(path, "/v1/", 4) && deferred(w, req, path)) {
        /* waiting for the shared backend; dispatched again on its answer */
    } else if (!strcmp(path, "/v1/compress") && !strcmp(method, "POST")) {
        hr_compress_handle(d, req, q ? q + 1 : "");
    } else if (!strncmp(path, "/v1/retrieve/", 13) && !strcmp(method, "GET")) {
        hr_retrieve_handle(d, req, path + 13, q ? q + 1 : "");
    } else if (!strcmp(path, "/v1/retrieve") && !strcmp(method, "POST")) {
        hr_retrieve_handle(d, req, NULL, NULL);
    } else if (plugin_route(w, req, method, path, q ? q + 1 : "")) {
        /* answered by a plugin */
    } else if (!strncmp(path, "/v1/", 4)) {
        hr_proxy_handle(w, req, path);
    } else {
        send_error(req, 404, "not found: headroomd serves /v1/* (proxy), /stats, /health, /livez, /readyz");
    }
}

static void *worker_main(void *arg)
{
    struct hr_worker *w = arg;
    char name[16];
    snprintf(name, sizeof name, "worker-%zu", w->index);
    hr_thread_name(name);
    hr_stats_bind_thread(w->index);
    hr_fleet_bind_thread(w);
    event_base_dispatch(w->base);
    return NULL;
}

/* reuseport: every worker gets its own listening socket on the same port
 * (SO_REUSEPORT), so the kernel spreads new connections over the workers
 * instead of waking whichever loop polls first on one shared socket. */
static evutil_socket_t listen_on(const char *host, int port, int reuseport, int *bound_port, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res;
    char portstr[8];
    snprintf(portstr, sizeof portstr, "%d", port);
    int rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc) {
        snprintf(err, errlen, "cannot resolve host '%s': %s (set host or --host to an address)", host, gai_strerror(rc));
        return -1;
    }
    evutil_socket_t fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
#ifdef SO_REUSEPORT
    if (fd >= 0 && reuseport) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
#else
    (void)reuseport;
#endif
    if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) || listen(fd, 1024)) {
        snprintf(err, errlen, "cannot listen on %s:%d: %s%s", host, port, strerror(errno),
                 errno == EADDRINUSE ? " (another process uses the port: pick another with --port)" : "");
        if (fd >= 0) close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    evutil_make_socket_nonblocking(fd);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *bound_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                 : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

/* A listener other machines can reach, with nothing guarding what it shows. */
static void warn_exposed(const struct hr_config *c)
{
    char warning[512];
    if (hr_config_exposed(c, warning, sizeof warning)) HR_WARN(LOGGER, "%s", warning);
}

static enum hr_upstream_client upstream_client(const struct hr_config *cfg)
{
    const char *v = cfg->upstream_client;
    return !v || !strcmp(v, "auto") ? HR_UPSTREAM_AUTO : !strcmp(v, "curl") ? HR_UPSTREAM_CURL : HR_UPSTREAM_NATIVE;
}

int hr_server_start(struct hr_daemon *d, char *err, size_t errlen)
{
    evthread_use_pthreads();
    hr_guard_init(d->cfg);
    warn_exposed(d->cfg);
    int reuseport = d->n_workers > 1;
    if (reuseport && d->cfg->port != 0) {
        /* SO_REUSEPORT would let this bind join another process's listener
         * on the port: find out first, with a plain bind, that it is free. */
        int probe_port;
        evutil_socket_t probe = listen_on(d->cfg->host, d->cfg->port, 0, &probe_port, err, errlen);
        if (probe < 0) return -1;
        close(probe);
    }
    d->listen_fd = listen_on(d->cfg->host, d->cfg->port, reuseport, &d->port, err, errlen);
    if (d->listen_fd < 0) return -1;
    d->workers = calloc(d->n_workers, sizeof *d->workers);
    if (!d->workers) return -1;
    hr_conn_counters_init(d->n_workers);
    for (size_t i = 0; i < d->n_workers; i++) {
        struct hr_worker *w = &d->workers[i];
        w->index = i;
        w->d = d;
        w->base = new_worker_base();
        w->up = w->base ? hr_upstream_new(w->base, d->cfg->upstream_keepalive, upstream_client(d->cfg),
                                          hr_upstream_counts(i))
                        : NULL;
        if (!w->up) {
            snprintf(err, errlen, "cannot create worker %zu event loop", i);
            return -1;
        }
        if (hr_fleet_worker_start(w)) {
            snprintf(err, errlen, "cannot set up worker %zu's Redis connection", i);
            return -1;
        }
        /* Worker 0 takes (a dup of: its server closes what it was given)
         * the first socket; the others bind their own on the port it got.
         * Where that fails, a worker shares the first socket. */
        evutil_socket_t fd = -1;
        if (i > 0 && reuseport) {
            char ignored[160];
            int port = d->port;
            fd = listen_on(d->cfg->host, d->port, 1, &port, ignored, sizeof ignored);
        }
        if (fd < 0) fd = fcntl(d->listen_fd, F_DUPFD_CLOEXEC, 0);
        struct hr_http_limits lim = {d->cfg->max_body_bytes, d->cfg->max_header_bytes, d->cfg->client_timeout_s};
        w->http = fd < 0 ? NULL : hr_http_server_new(w->base, fd, &lim, dispatch, hr_guard_refuse_request, w);
        if (!w->http && fd >= 0) close(fd);
        if (w->http) hr_http_server_set_early(w->http, early);
        if (w->http) hr_http_server_count_open(w->http, hr_conn_counter(i)); /* headroom_client_connections */
        if (!w->http || hr_conn_guard_worker(w, hr_http_server_listener(w->http)) || hr_balance_worker_start(w)) {
            snprintf(err, errlen, "worker %zu cannot accept on the listening socket", i);
            return -1;
        }
    }
    for (size_t i = 0; i < d->n_workers; i++)
        if (pthread_create(&d->workers[i].thread, NULL, worker_main, &d->workers[i])) {
            snprintf(err, errlen, "cannot start worker thread %zu", i);
            return -1;
        }
    atomic_store(&d->ready, 1);
    return 0;
}

void hr_server_stop(struct hr_daemon *d)
{
    atomic_store(&d->stopping, 1);
    if (!d->workers) d->n_workers = 0; /* start failed before workers existed */
    for (size_t i = 0; i < d->n_workers; i++)
        if (d->workers[i].base) event_base_loopexit(d->workers[i].base, NULL);
    for (size_t i = 0; i < d->n_workers; i++)
        if (d->workers[i].thread) pthread_join(d->workers[i].thread, NULL);
    for (size_t i = 0; i < d->n_workers; i++) {
        struct hr_worker *w = &d->workers[i];
        hr_balance_worker_stop(w);
        hr_http_server_free(w->http); /* closes connections; in-flight requests are aborted */
        hr_ws_abort_all(w, "headroomd stopped");
        hr_fleet_worker_stop(w);
        hr_acct_flush_deferred(w);
        hr_conn_guard_worker_free(w);
        if (w->drain_check) event_free(w->drain_check);
        if (w->up) hr_upstream_free(w->up);
        hr_proxy_free_spares(w);
        if (w->base) event_base_free(w->base);
    }
    free(d->workers);
    d->workers = NULL;
    if (d->listen_fd >= 0) close(d->listen_fd);
    d->listen_fd = -1;
}
