/* upstream_curl.c — the libcurl client behind upstream.h, for what the
 * native one does not do (an HTTP proxy from the environment, credentials in
 * the URL, `upstream_client curl`): curl's multi_socket driven by libevent,
 * as in curl's hiperfifo example — curl tells us which sockets and timeouts
 * to watch, libevent tells curl when they fire. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <curl/curl.h>
#include "conn_counters.h"
#include "upstream_impl.h"

/* One per socket curl gave us, by descriptor, from the first time curl asks
 * us to watch it until curl closes it. */
struct sock_watch {
    struct event *ev;
    short kind;     /* EV_READ / EV_WRITE the event is registered for */
    int registered; /* in the loop (epoll) */
    int parked;     /* curl stopped watching it: an idle kept-alive connection */
};

struct hr_curl_multi {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    int running;
    struct sock_watch **watch; /* by fd */
    size_t n_watch;
    struct hr_upstream_counts *counts; /* or NULL */
};

struct curl_xfer {
    struct hr_transfer base; /* native = 0 */
    struct hr_curl_multi *up;
    CURL *easy;
    struct curl_slist *req_headers;
    struct hr_transfer_cbs cbs;
    void *ud;
    long status;
    struct hr_header *headers;
    size_t n_headers, cap_headers;
    int headers_sent;
    size_t header_bytes, max_header_bytes;
    int headers_too_large;
    int paused;
    int in_callback;     /* abort requested from inside a curl callback */
    int aborted;
    char errbuf[CURL_ERROR_SIZE];
};

static void check_done(struct hr_curl_multi *u);

static void free_headers(struct curl_xfer *t)
{
    for (size_t i = 0; i < t->n_headers; i++) {
        free(t->headers[i].name);
        free(t->headers[i].value);
    }
    t->n_headers = 0;
}

static void transfer_free(struct curl_xfer *t)
{
    curl_multi_remove_handle(t->up->multi, t->easy);
    curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->req_headers);
    free_headers(t);
    free(t->headers);
    free(t);
}

static void event_cb(evutil_socket_t fd, short what, void *arg)
{
    struct hr_curl_multi *u = arg;
    struct sock_watch *w = (size_t)fd < u->n_watch ? u->watch[fd] : NULL;
    if (w && w->parked) {
        /* An idle connection spoke (the upstream closed it, mostly): stop
         * watching it; curl finds it dead when it next tries to reuse it. */
        event_del(w->ev);
        w->registered = 0;
        return;
    }
    int flags = (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
    curl_multi_socket_action(u->multi, fd, flags, &u->running);
    check_done(u);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct hr_curl_multi *u = arg;
    curl_multi_socket_action(u->multi, CURL_SOCKET_TIMEOUT, 0, &u->running);
    check_done(u);
}

static struct sock_watch *watch_of(struct hr_curl_multi *u, curl_socket_t s)
{
    if (s < 0) return NULL;
    if ((size_t)s >= u->n_watch) {
        size_t n = u->n_watch ? u->n_watch : 64;
        while (n <= (size_t)s) n *= 2;
        struct sock_watch **grown = realloc(u->watch, n * sizeof *grown);
        if (!grown) return NULL;
        memset(grown + u->n_watch, 0, (n - u->n_watch) * sizeof *grown);
        u->watch = grown;
        u->n_watch = n;
    }
    if (!u->watch[s]) {
        struct sock_watch *w = calloc(1, sizeof *w);
        if (!w) return NULL;
        w->ev = event_new(u->base, s, EV_PERSIST | EV_READ, event_cb, u);
        if (!w->ev) {
            free(w);
            return NULL;
        }
        u->watch[s] = w;
    }
    return u->watch[s];
}

static void watch_free(struct hr_curl_multi *u, curl_socket_t s)
{
    if (s < 0 || (size_t)s >= u->n_watch || !u->watch[s]) return;
    event_free(u->watch[s]->ev);
    free(u->watch[s]);
    u->watch[s] = NULL;
}

/* curl's socket callback. A kept-alive connection goes from "watch for the
 * answer" to "not watched" and back to "watch" with every request: its event
 * stays registered for reading while parked, so a request on a reused
 * connection costs no epoll_ctl at all. */
static int socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)easy;
    (void)socketp;
    struct hr_curl_multi *u = userp;
    struct sock_watch *w = watch_of(u, s);
    if (!w) return what == CURL_POLL_REMOVE ? 0 : -1;
    short kind = what == CURL_POLL_REMOVE ? EV_READ
                                          : (short)((what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0));
    w->parked = what == CURL_POLL_REMOVE;
    if (w->registered && kind == w->kind) return 0;
    if (w->registered) event_del(w->ev);
    w->registered = 0;
    if (!kind) return 0;
    event_assign(w->ev, u->base, s, EV_PERSIST | kind, event_cb, u);
    if (event_add(w->ev, NULL) != 0) return w->parked ? 0 : -1;
    w->kind = kind;
    w->registered = 1;
    return 0;
}

/* curl closes its sockets through here (also the cached connections it
 * drops later): the watch goes before the descriptor can be reused. */
static int close_socket_cb(void *clientp, curl_socket_t s)
{
    watch_free(clientp, s);
    return close(s);
}

static int timer_set_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct hr_curl_multi *u = userp;
    if (timeout_ms < 0) {
        evtimer_del(u->timer);
        return 0;
    }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    evtimer_add(u->timer, &tv);
    return 0;
}

struct hr_curl_multi *hr_curl_multi_new(struct event_base *base, long max_idle, struct hr_upstream_counts *counts)
{
    struct hr_curl_multi *u = calloc(1, sizeof *u);
    if (!u) return NULL;
    u->base = base;
    u->counts = counts;
    u->multi = curl_multi_init();
    u->timer = evtimer_new(base, timer_cb, u);
    if (!u->multi || !u->timer) {
        hr_curl_multi_free(u);
        return NULL;
    }
    curl_multi_setopt(u->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(u->multi, CURLMOPT_SOCKETDATA, u);
    curl_multi_setopt(u->multi, CURLMOPT_TIMERFUNCTION, timer_set_cb);
    curl_multi_setopt(u->multi, CURLMOPT_TIMERDATA, u);
    /* Without a fixed size the cache follows the number of easy handles, so
     * it shrinks between bursts and reused connections get closed. */
    curl_multi_setopt(u->multi, CURLMOPT_MAXCONNECTS, max_idle > 0 ? max_idle : 32L);
    return u;
}

void hr_curl_multi_free(struct hr_curl_multi *u)
{
    if (!u) return;
    /* Transfers still attached belong to requests that are being torn down. */
    if (u->multi) curl_multi_cleanup(u->multi);
    if (u->timer) event_free(u->timer);
    for (size_t i = 0; i < u->n_watch; i++) watch_free(u, (curl_socket_t)i);
    free(u->watch);
    free(u);
}

static void deliver_headers(struct curl_xfer *t)
{
    if (t->headers_sent) return;
    t->headers_sent = 1;
    if (t->cbs.on_headers) t->cbs.on_headers(t->ud, t->status, t->headers, t->n_headers);
}

static size_t header_cb(char *buf, size_t size, size_t n, void *ud)
{
    struct curl_xfer *t = ud;
    size_t len = size * n;
    t->header_bytes += len;
    if (t->header_bytes > t->max_header_bytes) {
        t->headers_too_large = 1;
        return 0; /* fails the transfer; check_done says why */
    }
    if (len >= 5 && !strncmp(buf, "HTTP/", 5)) {
        /* A new status line: 1xx answers come before the final one. */
        free_headers(t);
        const char *sp = memchr(buf, ' ', len);
        t->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        return len;
    }
    const char *colon = memchr(buf, ':', len);
    if (!colon) return len; /* the blank line that ends the block */
    size_t nlen = (size_t)(colon - buf);
    const char *v = colon + 1, *end = buf + len;
    while (v < end && (*v == ' ' || *v == '\t')) v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ')) end--;
    if (t->n_headers == t->cap_headers) {
        size_t cap = t->cap_headers ? t->cap_headers * 2 : 16;
        struct hr_header *h = realloc(t->headers, cap * sizeof *h);
        if (!h) return 0;
        t->headers = h;
        t->cap_headers = cap;
    }
    t->headers[t->n_headers].name = strndup(buf, nlen);
    t->headers[t->n_headers].value = strndup(v, (size_t)(end - v));
    t->n_headers++;
    return len;
}

static size_t write_cb(char *buf, size_t size, size_t n, void *ud)
{
    struct curl_xfer *t = ud;
    size_t len = size * n;
    if (t->aborted) return 0;
    if (t->status >= 100 && t->status < 200) return len;
    t->in_callback = 1;
    deliver_headers(t);
    int pause = t->aborted ? 0 : t->cbs.on_data(t->ud, buf, len);
    t->in_callback = 0;
    if (t->aborted || pause < 0) return 0; /* makes curl fail the transfer */
    if (pause) {
        /* Returning PAUSE keeps this data: curl delivers it again on resume. */
        t->paused = 1;
        return CURL_WRITEFUNC_PAUSE;
    }
    return len;
}

static void check_done(struct hr_curl_multi *u)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(u->multi, &left))) {
        if (msg->msg != CURLMSG_DONE) continue;
        struct curl_xfer *t;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        CURLcode rc = msg->data.result;
        long made = 0; /* connections this transfer had to open */
        if (u->counts && curl_easy_getinfo(msg->easy_handle, CURLINFO_NUM_CONNECTS, &made) == CURLE_OK && made > 0)
            hr_owned_add(&u->counts->opened, (uint64_t)made);
        if (!t->aborted) {
            if (rc == CURLE_OK) deliver_headers(t);
            char why[CURL_ERROR_SIZE + 16];
            /* curl reports a header line over its own 100 kB cap as "out of memory" */
            if (t->headers_too_large || (rc == CURLE_OUT_OF_MEMORY && !t->headers_sent))
                snprintf(why, sizeof why, "the answer's headers exceed %zu bytes (max_header_size)", t->max_header_bytes);
            else
                snprintf(why, sizeof why, "%s", rc == CURLE_OK ? "" : t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc));
            enum hr_xfer_result r = rc == CURLE_OK                    ? HR_XFER_OK
                                    : rc == CURLE_OPERATION_TIMEDOUT ? HR_XFER_TIMEOUT
                                                                     : HR_XFER_FAILED;
            if (t->cbs.on_done) t->cbs.on_done(t->ud, r, why);
        }
        transfer_free(t);
    }
}

struct hr_transfer *hr_curl_start(struct hr_curl_multi *u, const char *method, const char *url, const char *headers,
                                  const char *body, size_t body_len, const struct hr_transfer_opts *opts,
                                  const struct hr_transfer_cbs *cbs, void *ud)
{
    struct curl_xfer *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->up = u;
    t->cbs = *cbs;
    t->ud = ud;
    t->max_header_bytes = opts->max_header_bytes ? opts->max_header_bytes : 64u << 10;
    t->easy = curl_easy_init();
    if (!t->easy) goto fail;
    int has_content_type = 0;
    for (const char *line = headers; line && *line;) {
        size_t n = strcspn(line, "\r\n");
        char *one = strndup(line, n);
        if (one) {
            t->req_headers = curl_slist_append(t->req_headers, one);
            if (!strncasecmp(one, "content-type:", 13)) has_content_type = 1;
            free(one);
        }
        line += n;
        line += strspn(line, "\r\n");
    }
    /* curl's own defaults must not leak into a relayed request: no
     * 100-continue round trip, no invented form Content-Type. */
    t->req_headers = curl_slist_append(t->req_headers, "Expect:");
    if (!has_content_type) t->req_headers = curl_slist_append(t->req_headers, "Content-Type:");
    CURL *e = t->easy;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->req_headers);
    curl_easy_setopt(e, CURLOPT_PRIVATE, t);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, close_socket_cb);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, u);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, opts->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, opts->total_timeout_s);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    if (opts->idle_timeout_s > 0) curl_easy_setopt(e, CURLOPT_MAXAGE_CONN, opts->idle_timeout_s);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    if (body || strcasecmp(method, "GET")) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? body_len : 0));
    }
    /* POSTFIELDS implies POST: name any other method (a GET with a body too). */
    if (strcasecmp(method, "POST") && (body || strcasecmp(method, "GET")))
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    if (!strcasecmp(method, "HEAD")) curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    if (curl_multi_add_handle(u->multi, e) != CURLM_OK) goto fail;
    return &t->base;
fail:
    if (t->easy) curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->req_headers);
    free(t);
    return NULL;
}

double hr_curl_send_wait_ms(struct hr_transfer *base)
{
    struct curl_xfer *t = (struct curl_xfer *)base;
    curl_off_t pre = 0, conn = 0, app = 0;
    if (curl_easy_getinfo(t->easy, CURLINFO_PRETRANSFER_TIME_T, &pre) != CURLE_OK) return 0;
    curl_easy_getinfo(t->easy, CURLINFO_CONNECT_TIME_T, &conn);
    curl_easy_getinfo(t->easy, CURLINFO_APPCONNECT_TIME_T, &app);
    curl_off_t setup = app > conn ? app : conn;
    return pre > setup ? (double)(pre - setup) / 1000.0 : 0;
}

void hr_curl_resume(struct hr_transfer *base)
{
    struct curl_xfer *t = (struct curl_xfer *)base;
    if (!t->paused || t->aborted) return;
    t->paused = 0;
    curl_easy_pause(t->easy, CURLPAUSE_CONT);
}

void hr_curl_abort(struct hr_transfer *base)
{
    struct curl_xfer *t = (struct curl_xfer *)base;
    if (!t || t->aborted) return;
    t->aborted = 1;
    if (t->in_callback) return; /* write_cb returns 0; check_done frees it */
    transfer_free(t);
}
