/* upstream.h — HTTP transfers to the providers: one libcurl multi handle per
 * worker, driven by that worker's event_base (curl's multi_socket API). */
#ifndef HR_UPSTREAM_H
#define HR_UPSTREAM_H
#include <stddef.h>
#include <curl/curl.h>
#include <event2/event.h>

struct hr_upstream;
struct hr_transfer;

struct hr_header {
    char *name, *value;
};

struct hr_transfer_cbs {
    /* The status line and headers of the final answer, before any body. */
    void (*on_headers)(void *ud, long status, const struct hr_header *h, size_t n);
    /* Body bytes as they arrive. Return 0 when consumed; 1 to pause the
     * transfer (backpressure) without consuming them: the same bytes come
     * again after hr_transfer_resume(); -1 to stop the transfer (on_done then
     * reports a write error). */
    int (*on_data)(void *ud, const char *buf, size_t len);
    /* End of transfer: CURLE_OK or the error; `why` is a short text. The
     * transfer is freed right after this returns. */
    void (*on_done)(void *ud, CURLcode rc, const char *why);
};

struct hr_transfer_opts {
    long connect_timeout_ms;
    long total_timeout_s;
    long idle_timeout_s;        /* a pooled connection idle longer is not reused (closed) */
};

/* max_idle: connections kept open for reuse once their transfers end (curl's
 * connection cache), so a steady stream of requests does not reconnect. */
struct hr_upstream *hr_upstream_new(struct event_base *base, long max_idle);
void hr_upstream_free(struct hr_upstream *u);

/* Start a request; headers are "Name: value" lines (copied). The body (NULL
 * for none) is borrowed, not copied: the caller keeps it until the transfer
 * ends (on_done, or hr_transfer_abort). NULL on error. */
struct hr_transfer *hr_transfer_start(struct hr_upstream *u, const char *method, const char *url,
                                      const struct curl_slist *headers, const char *body, size_t body_len,
                                      const struct hr_transfer_opts *opts, const struct hr_transfer_cbs *cbs,
                                      void *ud);
/* How long the request waited in headroomd's loop before curl sent it: the
 * time from hr_transfer_start to the request going out, less connecting
 * (DNS, TCP, TLS). Call once the answer has begun. 0 when unknown. */
double hr_transfer_send_wait_ms(struct hr_transfer *t);
void hr_transfer_resume(struct hr_transfer *t);
/* Stop now; no callback runs afterwards. */
void hr_transfer_abort(struct hr_transfer *t);
#endif
