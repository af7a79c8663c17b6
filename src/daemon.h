/* daemon.h — the running daemon: settings, loaded plugins, worker threads. */
#ifndef HR_DAEMON_H
#define HR_DAEMON_H
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <event2/event.h>
#include "api/api.h"
#include "config.h"
#include "loader.h"
#include "pipeline.h"
#include "upstream.h"

struct hr_daemon;
struct hr_balance;
struct hr_conn_guard;
struct hr_http_server;
struct hr_req;
struct proxy_req;
struct hr_ws;

struct hr_worker {
    size_t index;
    struct hr_daemon *d;
    pthread_t thread;
    struct event_base *base;
    struct hr_http_server *http;
    struct hr_upstream *up;
    int inflight;
    unsigned long long next_request;
    struct proxy_req *deferred; /* accounting.c: requests whose figures wait one loop turn */
    struct hr_conn_guard *guard;        /* conn_guard.c: fd limit, slow clients */
    struct proxy_req *live;             /* proxied requests in flight (drain aborts them) */
    struct hr_ws *ws;                   /* ws_relay.c: relayed WebSockets */
    struct proxy_req *spare;            /* proxy.c: finished requests kept for reuse */
    int n_spare;
    struct event *drain_check;          /* drain.c */
    struct hr_balance *balance;         /* balance.c: with balance_connections yes */
    atomic_int drained;
};

struct hr_daemon {
    struct hr_config *cfg;
    struct hr_plugins plugins;
    struct hr_pipeline_opts popts;
    evutil_socket_t listen_fd;
    int port;                           /* bound port (useful with port 0) */
    size_t n_workers;
    struct hr_worker *workers;
    atomic_int ready;
    atomic_int stopping;
};

/* Bind the listening socket, start workers; returns once they run. */
int hr_server_start(struct hr_daemon *d, char *err, size_t errlen);
/* Stop accepting, let workers finish their loops, join them. */
void hr_server_stop(struct hr_daemon *d);
/* drain.c: after SIGTERM/SIGINT: stop accepting, /readyz 503, let in-flight
 * requests finish for up to shutdown_timeout, then abort the rest with an
 * error. Returns 1 when one of `sigs` arrived meanwhile (exit at once). */
int hr_server_drain(struct hr_daemon *d, const sigset_t *sigs);

/* proxy.c: requests under /v1/. */
void hr_proxy_handle(struct hr_worker *w, struct hr_req *req, const char *path);
/* Cut-through (http_server.h's early hook): take a request whose body is
 * still arriving and forward it as it comes; 0 to have it handled whole. */
int hr_proxy_handle_early(struct hr_worker *w, struct hr_req *req, const char *path);
/* proxy.c: the worker's kept requests, freed when it stops. */
void hr_proxy_free_spares(struct hr_worker *w);
/* Account (and free) the requests still waiting for their late count
 * (passthrough): the worker's loop has stopped. */
void hr_acct_flush_deferred(struct hr_worker *w);
/* compress_api.c: POST /v1/compress (pipeline only, no upstream). */
void hr_compress_handle(struct hr_daemon *d, struct hr_req *req, const char *query);
/* compress_api.c: GET /v1/retrieve/<hash>[?query=] (hash_in_path) or POST /v1/retrieve {"hash","query"?}. */
void hr_retrieve_handle(struct hr_daemon *d, struct hr_req *req, const char *hash_in_path, const char *query);
/* reply.c: a JSON body with status (takes the reference). */
void hr_send_json(struct hr_req *req, int status, json_t *body);
/* reply.c: an error in the wire format's own error shape. */
void hr_send_api_error(struct hr_req *req, const struct hr_api *api, int status, enum hr_api_error kind,
                       const char *message);
#endif
