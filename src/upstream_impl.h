/* upstream_impl.h — what upstream.c dispatches to: the native HTTP/1.1
 * client and the libcurl one share the transfer handle's first member. */
#ifndef HR_UPSTREAM_IMPL_H
#define HR_UPSTREAM_IMPL_H
#include "upstream.h"

struct hr_transfer {
    int native; /* 1: upstream_h1.c, 0: upstream_curl.c */
};

struct hr_h1_pool;
struct hr_upstream_counts;
/* counts (or NULL): where the pool keeps its connection figures (conn_counters.h). */
struct hr_h1_pool *hr_h1_pool_new(struct event_base *base, long max_idle, struct hr_upstream_counts *counts);
void hr_h1_pool_free(struct hr_h1_pool *pool);
/* NULL with *declined set when the URL is not one the native client takes
 * (only http or https, no user information): libcurl's then. body_have <
 * body_len: the rest of the body comes later (hr_h1_body_more). */
struct hr_transfer *hr_h1_start(struct hr_h1_pool *pool, const char *method, const char *url, const char *headers,
                                const char *body, size_t body_len, size_t body_have,
                                const struct hr_transfer_opts *opts, const struct hr_transfer_cbs *cbs, void *ud,
                                int *declined);
/* Whether hr_h1_start would take the URL: asked before a cut-through
 * request is taken early, when falling back to libcurl is no longer possible. */
int hr_h1_takes_url(const char *url);
void hr_h1_body_more(struct hr_transfer *t, size_t body_have);
double hr_h1_send_wait_ms(struct hr_transfer *t);
int hr_h1_sending(const struct hr_transfer *t);
void hr_h1_resume(struct hr_transfer *t);
void hr_h1_abort(struct hr_transfer *t);
struct hr_tunnel *hr_h1_take_tunnel(struct hr_transfer *t);

struct hr_curl_multi;
struct hr_curl_multi *hr_curl_multi_new(struct event_base *base, long max_idle, struct hr_upstream_counts *counts);
void hr_curl_multi_free(struct hr_curl_multi *m);
struct hr_transfer *hr_curl_start(struct hr_curl_multi *m, const char *method, const char *url, const char *headers,
                                  const char *body, size_t body_len, const struct hr_transfer_opts *opts,
                                  const struct hr_transfer_cbs *cbs, void *ud);
double hr_curl_send_wait_ms(struct hr_transfer *t);
void hr_curl_resume(struct hr_transfer *t);
void hr_curl_abort(struct hr_transfer *t);
#endif
