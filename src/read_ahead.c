/* read_ahead.c — libevent 2.1 reads a socket at most 4 KB per loop turn
 * (EVBUFFER_MAX_READ in buffer.c), so a 1 MB request body costs evhttp 256
 * turns of the worker's loop: an epoll_wait, a FIONREAD and a readv each,
 * and the wait for the CPU again on a busy host. When one of those reads
 * fills its 4 KB, the socket most likely holds more: this reads what it
 * holds straight into the same input buffer, in large steps, before evhttp
 * looks at it, so a body arrives in a few turns. Nothing else changes:
 * evhttp still parses and bounds everything (max_body_size, header limits);
 * an end of stream or an error is left for libevent's next read to report. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <event2/buffer.h>
#include "read_ahead.h"

#define LIBEVENT_READ 4096          /* what evbuffer_read takes at most */
#define STEP (256 * 1024)           /* one readv */
#define MAX_PER_TURN (4 * 1024 * 1024) /* other connections of the worker get their turn too */
#define MAX_ROOM (64u * 1024 * 1024)   /* above any max_body_size worth having */

/* The first 4 KB of a request just came in (a lone chain of exactly that):
 * when its head announces a large body, make room for all of it in that
 * chain, so head and body stay in one piece and the proxy's pullup of the
 * body copies nothing (it was a fresh 1 MB allocation and copy per MB). The
 * room is only address space until the body arrives; evhttp still refuses
 * what is over max_body_size. */
static void room_for_body(struct evbuffer *in)
{
    char head[LIBEVENT_READ + 1];
    size_t n = evbuffer_copyout(in, head, LIBEVENT_READ);
    if (n != LIBEVENT_READ) return;
    head[n] = '\0';
    const char *end = strstr(head, "\r\n\r\n");
    if (!end) return;
    unsigned long long want = 0;
    for (const char *l = strchr(head, '\n'); l && l < end; l = strchr(l + 1, '\n'))
        if (!strncasecmp(l + 1, "content-length:", 15)) {
            char *stop;
            want = strtoull(l + 16, &stop, 10);
            break;
        }
    size_t have = n - (size_t)(end + 4 - head);
    if (want > have + STEP && want <= MAX_ROOM) evbuffer_expand(in, (size_t)(want - have));
}

static void input_grew(struct evbuffer *in, const struct evbuffer_cb_info *info, void *arg)
{
    static _Thread_local int inside; /* our own commits call back here */
    struct bufferevent *bev = arg;
    if (inside || info->n_added != LIBEVENT_READ) return;
    int fd = (int)bufferevent_getfd(bev);
    if (fd < 0) return;
    inside = 1;
    if (evbuffer_get_length(in) == LIBEVENT_READ) room_for_body(in);
    for (size_t total = 0; total < MAX_PER_TURN;) {
        int avail = 0;
        if (ioctl(fd, FIONREAD, &avail) < 0 || avail <= 0) break;
        size_t want = (size_t)avail < STEP ? (size_t)avail : STEP;
        struct evbuffer_iovec v[2];
        int nv = evbuffer_reserve_space(in, (ev_ssize_t)want, v, 2);
        if (nv <= 0) break;
        struct iovec io[2];
        size_t room = 0;
        for (int i = 0; i < nv; i++) {
            size_t l = v[i].iov_len;
            if (room + l > want) l = want - room;
            io[i].iov_base = v[i].iov_base;
            io[i].iov_len = l;
            v[i].iov_len = l;
            room += l;
        }
        ssize_t r = readv(fd, io, nv);
        if (r <= 0) {
            evbuffer_commit_space(in, v, 0);
            break; /* EAGAIN, EOF or an error: libevent's own read sees it next */
        }
        /* Commit only what arrived: trim the vectors to r bytes. */
        size_t left = (size_t)r;
        int used = 0;
        for (; used < nv && left; used++) {
            if (v[used].iov_len > left) v[used].iov_len = left;
            left -= v[used].iov_len;
        }
        if (evbuffer_commit_space(in, v, used) < 0) break;
        total += (size_t)r;
        if ((size_t)r < want) break;
    }
    inside = 0;
}

int hr_read_ahead_attach(struct bufferevent *bev)
{
    struct evbuffer *in = bufferevent_get_input(bev);
    return in && evbuffer_add_cb(in, input_grew, bev) ? 0 : -1;
}
