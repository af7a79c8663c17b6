/* server.c — the listening socket, worker threads (one event_base + evhttp +
 * curl multi each), request routing and the built-in endpoints. */
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
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <event2/util.h>
#include "ccr.h"
#include "daemon.h"
#include "host.h"
#include "log.h"
#include "stats.h"
#include "stats_json.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif
#define LOGGER "headroom.server"

static int peer_is_loopback(struct evhttp_request *req)
{
    struct evhttp_connection *c = evhttp_request_get_connection(req);
    const char *addr = NULL;
    ev_uint16_t port;
    if (c) evhttp_connection_get_peer(c, (char **)&addr, &port);
    return addr && (!strncmp(addr, "127.", 4) || !strcmp(addr, "::1") || !strncmp(addr, "::ffff:127.", 11));
}

/* Admin endpoints: loopback, or the configured admin token as a bearer token. */
static int is_admin(struct hr_daemon *d, struct evhttp_request *req)
{
    if (peer_is_loopback(req)) return 1;
    const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req), "x-headroom-admin-token");
    return d->cfg->admin_token && *d->cfg->admin_token && auth && !strcmp(auth, d->cfg->admin_token);
}

static void send_error(struct evhttp_request *req, int status, const char *message)
{
    hr_send_json(req, status, json_pack("{s:{s:s,s:i}}", "error", "message", message, "status", status));
}

static void handle_health(struct hr_daemon *d, struct evhttp_request *req)
{
    int ready = atomic_load(&d->ready);
    json_t *checks = json_pack("{s:s,s:i,s:i,s:i}", "listener", "ok", "workers", (int)d->n_workers, "transforms",
                               (int)d->plugins.n_transforms, "sinks", (int)d->plugins.n_sinks);
    hr_send_json(req, 200, json_pack("{s:s,s:s,s:f,s:b,s:o}", "status", ready ? "healthy" : "starting", "version",
                                     PACKAGE_VERSION, "uptime_seconds", hr_round(hr_uptime_seconds(), 1), "ready",
                                     ready, "checks", checks));
}

static int plugin_route(struct evhttp_request *req, const char *method, const char *path, const char *query)
{
    int wrong_method;
    const struct hr_route *r = hr_routes_find(method, path, &wrong_method);
    if (!r) {
        if (wrong_method) send_error(req, 405, "method not allowed on this path");
        return wrong_method;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t blen = evbuffer_get_length(in);
    struct hr_http_request hreq = {sizeof hreq, method, path, query ? query : "",
                                   blen ? (const char *)evbuffer_pullup(in, -1) : "", blen, peer_is_loopback(req)};
    struct hr_http_response resp = {.struct_size = sizeof resp, .status = 200};
    int rc = r->fn(r->state, &hreq, &resp);
    if (rc) {
        if (resp.body && resp.free_body) resp.free_body(resp.body);
        send_error(req, 500, "plugin route failed");
        return 1;
    }
    struct evbuffer *b = evbuffer_new();
    if (resp.body) evbuffer_add(b, resp.body, resp.body_len);
    if (resp.body && resp.free_body) resp.free_body(resp.body);
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    evhttp_add_header(out, "Content-Type", resp.content_type ? resp.content_type : "text/plain; charset=utf-8");
    for (const char *const *h = resp.extra_headers; h && h[0] && h[1]; h += 2) evhttp_add_header(out, h[0], h[1]);
    evhttp_send_reply(req, resp.status ? resp.status : 200, NULL, b);
    evbuffer_free(b);
    return 1;
}

/* A request switches its sockets between reading and writing several times
 * within one loop iteration (evhttp, then curl): epoll's changelist folds
 * those into at most one epoll_ctl per socket per iteration. (Its one hazard,
 * two dup()s of a socket in one loop, does not arise: each loop has its own
 * listening socket or its own dup of the shared one.) */
static struct event_base *new_worker_base(void)
{
    struct event_config *cfg = event_config_new();
    if (!cfg) return event_base_new();
    event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    struct event_base *base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    return base ? base : event_base_new();
}

static void dispatch(struct evhttp_request *req, void *arg)
{
    struct hr_worker *w = arg;
    struct hr_daemon *d = w->d;
    const char *uri = evhttp_request_get_uri(req);
    char path[2048];
    const char *q = strchr(uri, '?');
    size_t plen = q ? (size_t)(q - uri) : strlen(uri);
    if (plen >= sizeof path || uri[0] != '/') {
        send_error(req, 414, "request path too long or not absolute");
        return;
    }
    memcpy(path, uri, plen);
    path[plen] = '\0';
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    const char *method = cmd == EVHTTP_REQ_GET ? "GET" : cmd == EVHTTP_REQ_POST ? "POST" : cmd == EVHTTP_REQ_HEAD ? "HEAD" : "OTHER";

    if (!strcmp(path, "/livez")) {
        hr_send_json(req, 200, json_pack("{s:s}", "status", "alive"));
    } else if (!strcmp(path, "/readyz")) {
        int ready = atomic_load(&d->ready) && !atomic_load(&d->stopping);
        hr_send_json(req, ready ? 200 : 503, json_pack("{s:b}", "ready", ready));
    } else if (!strcmp(path, "/health")) {
        handle_health(d, req);
    } else if (!strcmp(path, "/stats") && !strcmp(method, "GET")) {
        hr_send_json(req, 200, hr_stats_json(peer_is_loopback(req)));
    } else if (!strcmp(path, "/stats/reset")) {
        if (strcmp(method, "POST")) send_error(req, 405, "use POST /stats/reset");
        else if (!is_admin(d, req)) send_error(req, 403, "admin endpoint: call from loopback or send x-headroom-admin-token");
        else {
            hr_stats_reset();
            hr_plugins_reset(&d->plugins);
            HR_INFO(LOGGER, "live counters reset by an admin request (durable savings untouched)");
            hr_send_json(req, 200, json_pack("{s:b}", "reset", 1));
        }
    } else if (!strcmp(path, "/v1/compress") && !strcmp(method, "POST")) {
        hr_compress_handle(d, req, q ? q + 1 : "");
    } else if (!strncmp(path, "/v1/retrieve/", 13) && !strcmp(method, "GET")) {
        hr_retrieve_handle(d, req, path + 13, q ? q + 1 : "");
    } else if (!strcmp(path, "/v1/retrieve") && !strcmp(method, "POST")) {
        hr_retrieve_handle(d, req, NULL, NULL);
    } else if (plugin_route(req, method, path, q ? q + 1 : "")) {
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
    hr_stats_bind_thread(w->index);
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

int hr_server_start(struct hr_daemon *d, char *err, size_t errlen)
{
    evthread_use_pthreads();
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
    for (size_t i = 0; i < d->n_workers; i++) {
        struct hr_worker *w = &d->workers[i];
        w->index = i;
        w->d = d;
        w->base = new_worker_base();
        w->http = w->base ? evhttp_new(w->base) : NULL;
        w->up = w->base ? hr_upstream_new(w->base, d->cfg->upstream_keepalive) : NULL;
        if (!w->http || !w->up) {
            snprintf(err, errlen, "cannot create worker %zu event loop", i);
            return -1;
        }
        evhttp_set_max_body_size(w->http, (ev_ssize_t)d->cfg->max_body_bytes);
        evhttp_set_max_headers_size(w->http, (ev_ssize_t)d->cfg->max_header_bytes);
        evhttp_set_timeout(w->http, d->cfg->client_timeout_s);
        evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
                                                EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
        evhttp_set_gencb(w->http, dispatch, w);
        /* Worker 0 takes (a dup of: evhttp closes what it was given) the
         * first socket; the others bind their own on the port it got. Where
         * that fails, a worker shares the first socket. */
        evutil_socket_t fd = -1;
        if (i > 0 && reuseport) {
            char ignored[160];
            int port = d->port;
            fd = listen_on(d->cfg->host, d->port, 1, &port, ignored, sizeof ignored);
        }
        if (fd < 0) fd = fcntl(d->listen_fd, F_DUPFD_CLOEXEC, 0);
        if (fd < 0 || !evhttp_accept_socket_with_handle(w->http, fd)) {
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
        if (w->http) evhttp_free(w->http); /* closes connections; in-flight requests are aborted */
        hr_acct_flush_deferred(w);
        if (w->up) hr_upstream_free(w->up);
        if (w->base) event_base_free(w->base);
    }
    free(d->workers);
    d->workers = NULL;
    if (d->listen_fd >= 0) close(d->listen_fd);
    d->listen_fd = -1;
}
