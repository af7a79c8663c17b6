/* conn_guard.c — the file-descriptor limit: accept() failing with EMFILE
 * would make the listener spin. (Clients that dribble a request meet
 * client_timeout in http_server.c.) */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <event2/listener.h>
#include "conn_guard.h"
#include "guard.h"
#include "http_server.h"
#include "log.h"
#include "stats.h"

#define LOGGER "headroom.server"
#define ACCEPT_PAUSE_MS 250

struct hr_conn_guard {
    struct hr_worker *w;
    struct event *resume;
    struct evconnlistener *listener;
    int reserve_fd;
};

static void resume_accepting(evutil_socket_t unused, short what, void *arg)
{
    (void)unused;
    (void)what;
    struct hr_conn_guard *g = arg;
    if (g->reserve_fd < 0) g->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (g->listener) evconnlistener_enable(g->listener);
}

/* accept() failed for a reason retrying at once cannot fix (no descriptor
 * left): answer one waiting client with the reserve descriptor so it is not
 * left hanging, then stop accepting for a moment instead of spinning. */
static struct hr_conn_guard *guards[256]; /* by worker index */

static void on_accept_error(struct evconnlistener *l, void *arg)
{
    int err = errno;
    (void)arg; /* the HTTP server's own argument */
    struct hr_conn_guard *g = NULL;
    for (size_t i = 0; i < sizeof guards / sizeof *guards && !g; i++)
        if (guards[i] && guards[i]->listener == l) g = guards[i];
    if (!g) return;
    static struct hr_log_limit lim;
    hr_guard_count_accept_error();
    HR_WARN_LIMITED(&lim, 60, LOGGER,
                    "cannot accept connections: %s; pausing accepts for %d ms (raise the open-file limit, "
                    "e.g. LimitNOFILE= or ulimit -n, or lower max_connections)", strerror(err), ACCEPT_PAUSE_MS);
    if ((err == EMFILE || err == ENFILE) && g->reserve_fd >= 0) {
        close(g->reserve_fd);
        g->reserve_fd = -1;
        int fd = accept4(evconnlistener_get_fd(l), NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd >= 0) {
            static const char body[] = "{\"error\":{\"message\":\"headroomd is out of file descriptors; retry "
                                       "shortly\",\"type\":\"overloaded_error\",\"param\":null,\"code\":\"overloaded\"}}";
            char msg[512];
            int n = snprintf(msg, sizeof msg,
                             "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
                             "Connection: close\r\nContent-Length: %zu\r\n\r\n%s", sizeof body - 1, body);
            ssize_t wr = send(fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
            (void)wr;
            close(fd);
            hr_guard_count(HR_REFUSE_OVERLOADED);
        }
    }
    evconnlistener_disable(l);
    struct timeval tv = {0, ACCEPT_PAUSE_MS * 1000};
    evtimer_add(g->resume, &tv);
}

int hr_conn_guard_worker(struct hr_worker *w, struct evconnlistener *listener)
{
    struct hr_conn_guard *g = calloc(1, sizeof *g);
    if (!g) return -ENOMEM;
    w->guard = g;
    g->w = w;
    g->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    g->resume = evtimer_new(w->base, resume_accepting, g);
    if (!g->resume) return -ENOMEM;
    g->listener = listener;
    if (w->index < sizeof guards / sizeof *guards) guards[w->index] = g;
    if (g->listener) evconnlistener_set_error_cb(g->listener, on_accept_error);
    return 0;
}

void hr_conn_guard_stop_accepting(struct hr_worker *w)
{
    struct hr_conn_guard *g = w->guard;
    if (!g || !g->listener) return;
    evtimer_del(g->resume);
    /* Closed, not just paused: new connections are refused at once (and a
     * replacement process can take the port) instead of waiting in the backlog. */
    hr_http_server_stop_accepting(w->http);
    g->listener = NULL;
}

void hr_conn_guard_worker_free(struct hr_worker *w)
{
    struct hr_conn_guard *g = w->guard;
    if (!g) return;
    if (g->resume) event_free(g->resume);
    if (g->reserve_fd >= 0) close(g->reserve_fd);
    if (w->index < sizeof guards / sizeof *guards) guards[w->index] = NULL;
    free(g);
    w->guard = NULL;
}
