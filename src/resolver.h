/* resolver.h — host names to addresses without blocking the worker: numeric
 * addresses at once, names through libevent's evdns (/etc/hosts and
 * /etc/resolv.conf), answers remembered for a minute so a new upstream
 * connection seldom waits for DNS. */
#ifndef HR_RESOLVER_H
#define HR_RESOLVER_H
#include <sys/socket.h>
#include <event2/event.h>

#define HR_RESOLVE_MAX_ADDRS 8

struct hr_addrs {
    int n;
    struct sockaddr_storage addr[HR_RESOLVE_MAX_ADDRS];
    socklen_t len[HR_RESOLVE_MAX_ADDRS];
};

struct hr_resolver;
struct hr_resolve_req;

/* err is 0 with addrs, or an EVUTIL_EAI_* code (text: evutil_gai_strerror). */
typedef void (*hr_resolved_cb)(void *arg, int err, const struct hr_addrs *addrs);

struct hr_resolver *hr_resolver_new(struct event_base *base);
void hr_resolver_free(struct hr_resolver *r);
/* Resolve host:port. Returns a request to cancel, or NULL when the callback
 * has already run (a numeric or remembered address, or an immediate error). */
struct hr_resolve_req *hr_resolve(struct hr_resolver *r, const char *host, int port, hr_resolved_cb cb, void *arg);
/* The callback will not run. */
void hr_resolve_cancel(struct hr_resolve_req *req);
#endif
