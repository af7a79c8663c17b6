/* fleet.h — shared state for many headroomd instances (`backend redis`):
 * the CCR store, response cache, rate-limit buckets and budget spend live
 * in Redis. The request path stays synchronous in-process code: before it
 * runs, a request that needs shared state waits (without blocking its
 * worker) for the few Redis answers it needs, then is dispatched again
 * with those answers at hand. Without a backend every call here is a no-op. */
#ifndef HR_FLEET_H
#define HR_FLEET_H
#include <jansson.h>
#include <stdint.h>
#include "config.h"
#include "sha256.h"

struct hr_worker;
struct proxy_req;
struct hr_req;

/* From the config, after the cache, rate limit and budget are set up. */
int hr_fleet_setup(const struct hr_config *c, char *err, size_t errlen);
void hr_fleet_shutdown(void);
int hr_fleet_enabled(void);
/* Why /readyz should say not ready (a static string), or NULL: Redis is
 * down and on_backend_error closed refuses every request whose budget or
 * rate limit it would check. No network call: the connections' state. */
const char *hr_fleet_unready(void);

/* /health checks.backend: the connections' state (no network call), and
 * while one is down for how long, why, and what that means; NULL without
 * a backend. */
json_t *hr_fleet_health(void);

/* Per worker: connect on its loop (server start); bind the worker thread;
 * close (server stop, after the loop ended). */
int hr_fleet_worker_start(struct hr_worker *w);
void hr_fleet_bind_thread(struct hr_worker *w);
void hr_fleet_worker_stop(struct hr_worker *w);

/* The server's route, called again with the answers at hand. */
typedef void (*hr_fleet_dispatch_fn)(struct hr_req *req, void *worker);

/*
 * hr_fleet_defer
 *   For a /v1/ request: 1 when it waits for shared state (budget spend,
 *   cached answer, rate-limit verdict, a stored original) and `again` will
 *   run it; 0 to handle it now (no backend, nothing shared needed, or this
 *   is that second run).
 */
int hr_fleet_defer(struct hr_worker *w, struct hr_req *req, const char *path, hr_fleet_dispatch_fn again);

/* When a request that waited for shared state arrived (monotonic ms), or 0. */
double hr_fleet_arrived_ms(struct hr_req *req);

/* A body sent with Content-Encoding that the wait (or hr_fleet_defer, for a
 * request it let go at once) already decoded: malloc'd, NUL-terminated, the
 * caller owns it; NULL when there is none. */
char *hr_fleet_take_decoded(struct hr_req *req, size_t *len);

/* The request body the wait already parsed (the caller owns it), or NULL. */
json_t *hr_fleet_take_body(struct hr_req *req);

/*
 * hr_fleet_retrieve_wait
 *   The model answered with headroom_retrieve calls: 1 when originals this
 *   process lacks are being fetched, and `resume(p)` will run once they
 *   are here (or known missing); 0 to answer now.
 */
int hr_fleet_retrieve_wait(struct proxy_req *p, const json_t *answer, void (*resume)(struct proxy_req *p));
/*
 * hr_fleet_message_wait
 *   A WebSocket message (no HTTP request of its own to defer) meets what a
 *   POST's wait reads: 1 when Redis is asked for the shared rate limit's
 *   verdict for `rate_key` (NULL: none; the message charged, as a POST's
 *   wait charges it), and for headroom_retrieve calls another instance kept
 *   for the answer `body` continues from (and the originals they ask for),
 *   and `resume(p)` will run with those at hand: hr_ratelimit_admit then
 *   returns the verdict, hr_retrieve_continue finds the calls; 0 to go on
 *   now (no backend, nothing to read).
 */
int hr_fleet_message_wait(struct proxy_req *p, const uint8_t *rate_key, json_t *body,
                          void (*resume)(struct proxy_req *p));
/* In that resume: the refusal message when Redis did not answer and
 * on_backend_error is closed (counted), else NULL. */
const char *hr_fleet_unchecked_refused(const struct proxy_req *p);
/* hr_proxy_free: the request is gone; a pending fetch must not resume it. */
void hr_fleet_cancel(struct proxy_req *p);

/* Draining (worker's thread): requests of `w` still waiting for Redis are in
 * flight too; at shutdown_timeout each is answered 503 with `message`.
 * Both return how many. */
int hr_fleet_waiting(struct hr_worker *w);
int hr_fleet_abort_waits(struct hr_worker *w, const char *message);
#endif
