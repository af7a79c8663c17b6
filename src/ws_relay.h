/* ws_relay.h — the Responses API's WebSocket mode relayed after its 101:
 * frames both ways as they arrive, each response.create compressed like a
 * POST /v1/responses body and counted as one request (accounting.c). */
#ifndef HR_WS_RELAY_H
#define HR_WS_RELAY_H
#include <stddef.h>
#include "h1_parse.h"

struct proxy_req;
struct hr_worker;

/* From relay.c's on_headers: the upstream answered the handshake `p`
 * carries with 101. Takes both connections, answers the client's 101 and
 * starts relaying; frees `p` (the handshake is not a request of its own). */
void hr_ws_upgraded(struct proxy_req *p, const struct hr_header *h, size_t n);
/* Draining: close every WebSocket of the worker with no response pending
 * (1001), and the others once their response ends. Returns how many are
 * still open. */
int hr_ws_drain(struct hr_worker *w);
/* Shutdown past shutdown_timeout, or the worker stopping: close them all
 * now (1001), count the pending responses as failed (`why`), free.
 * Returns how many there were. */
int hr_ws_abort_all(struct hr_worker *w, const char *why);
#endif
