/* guard.h — Host allow-list, cross-site and token checks, the proxied
 * path's shape, and counted refusals (see guard.c). */
#ifndef HR_GUARD_H
#define HR_GUARD_H
#include <stddef.h>
#include "api/api.h"
#include "config.h"
#include "refusals.h"

struct hr_req;

/* The settings the checks read (once, before workers start). */
void hr_guard_init(const struct hr_config *cfg);

/* 1 when a Host header may reach headroomd: absent, an IP literal, localhost
 * (and *.localhost), the configured host, or a name in allowed_hosts. */
int hr_guard_host_ok(const struct hr_config *cfg, const char *host);
/* Why a state-changing request looks like a web page's (NULL when it does not). */
const char *hr_guard_cross_site(const struct hr_req *in);
/* Authorization: Bearer <token>; 1 when no token is configured. */
int hr_guard_bearer_ok(const struct hr_req *in, const char *token);
/* x-headroom-admin-token matches a configured admin_token. */
int hr_guard_admin_token_ok(const struct hr_req *in, const char *token);
/* Why a proxied request target (path and query) cannot be appended to a
 * base URL (NULL when it can). */
const char *hr_guard_path(const char *path);
/* The HTTP server's refusals (hr_req_refusal), answered and counted. */
void hr_guard_refuse_request(struct hr_req *req, int status, const char *reason, void *worker);
#endif
