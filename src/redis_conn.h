/* redis_conn.h — one asynchronous Redis connection per worker, on that
 * worker's event_base (hiredis and its libevent adapter): commands are
 * pipelined, each is bounded by a timeout, a lost connection is retried
 * with backoff. Figures for /stats and /metrics are kept here. */
#ifndef HR_REDIS_CONN_H
#define HR_REDIS_CONN_H
#include <stddef.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include "headroom/plugin.h"

#define HR_RCONN_MAX_KINDS 12

struct hr_rconn;

struct hr_rconn_settings {
    const char *host;
    int port, db;
    const char *user;            /* NULL: AUTH password (Redis's default user) */
    const char *password;        /* NULL (and no user): no AUTH */
    int timeout_ms;              /* one command's limit, connecting included */
    /* What an outage means for requests (on_backend_error and its effect),
     * for the "Redis unavailable" WARN; NULL: a generic phrase. */
    const char *(*down_effect)(void);
};

/* How a command ended. Only HR_RCONN_OK has a reply; the others are counted
 * as errors of its kind. */
enum hr_rconn_status {
    HR_RCONN_OK,                 /* answered (never an error reply) */
    HR_RCONN_UNSENT,             /* never written to Redis: not connected, or the connection failed first */
    HR_RCONN_LOST,               /* written, no answer (timeout, connection lost): Redis may still run it */
    HR_RCONN_REFUSED,            /* Redis answered with an error */
};

/* The answer (status HR_RCONN_OK), or NULL with the reason there is none. */
typedef void (*hr_rconn_done_fn)(void *ud, int status, const redisReply *r);

/* Name the operation kinds (labels of the ops/errors figures), once. */
void hr_rconn_kinds(const char *const *names, size_t n);

/* Start connecting (the worker's loop does the rest). `on_up` runs on the
 * loop each time the connection is (re)established: connected, and Redis
 * answered AUTH and SELECT (or a PING when there is neither) without an
 * error (a refused one counts as a failed connection). */
struct hr_rconn *hr_rconn_new(struct event_base *base, const struct hr_rconn_settings *s, size_t index,
                              void (*on_up)(struct hr_rconn *c, void *ud), void *ud);
/* Close; commands still waiting get no answer callback (the loop is gone). */
void hr_rconn_free(struct hr_rconn *c);
int hr_rconn_connected(const struct hr_rconn *c);
/* A command sent now would be written to Redis (connected, or connecting:
 * it waits for the connection); 0 while down, waiting to reconnect. */
int hr_rconn_sendable(const struct hr_rconn *c);
/* Every worker's connection is up (headroom_backend_up). */
int hr_rconn_all_up(void);

/*
 * hr_rconn_command
 *   Send argv (binary-safe) and call done(ud, status, reply) exactly once:
 *   on the answer, on a failure, or at once (before this returns) when the
 *   connection is down. While connecting it waits (within its timeout) until
 *   the connection is up. Never blocks.
 */
void hr_rconn_command(struct hr_rconn *c, int kind, int argc, const char **argv, const size_t *argvlen,
                      hr_rconn_done_fn done, void *ud);

/* The connections' state for /health, without a network call: how many
 * are up, for how long not all of them have been (0 while all are), and
 * the last reason one went down or failed to connect ("" if none did). */
struct hr_rconn_health {
    int connections, up;
    double down_ms;
    char last_error[200];
};
void hr_rconn_health(struct hr_rconn_health *h);

/* /stats "backend" figures (added to `o`) and /metrics families. */
void hr_rconn_stats(json_t *o);
int hr_rconn_metrics(hr_metric_visit_fn visit, void *ud);
#endif
