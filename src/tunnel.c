/* tunnel.c — see tunnel.h. The socket stays registered for reading while
 * not paused (how the peer closing is seen); writing registers only while
 * bytes wait for the socket. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include "tunnel.h"

#define READ_CHUNK (16u << 10)
#define READ_ROUNDS 8 /* then the loop's other connections get a turn */

struct hr_tunnel {
    int fd;
    SSL *ssl;
    struct event *rd, *wr;
    struct evbuffer *out;
    char *pre;
    size_t pre_len;
    struct hr_tunnel_cbs cbs;
    void *ud;
    int started, paused, ended, wr_added, shut, held, doomed;
    char why[200];
};

static void really_free(struct hr_tunnel *t)
{
    if (t->rd) event_free(t->rd);
    if (t->wr) event_free(t->wr);
    if (t->ssl) SSL_free(t->ssl);
    if (t->fd >= 0) close(t->fd);
    if (t->out) evbuffer_free(t->out);
    free(t->pre);
    free(t);
}

static void release(struct hr_tunnel *t)
{
    if (--t->held == 0 && t->doomed) really_free(t);
}

void hr_tunnel_free(struct hr_tunnel *t)
{
    if (!t) return;
    if (t->held) {
        t->doomed = 1;
        event_del(t->rd);
        event_del(t->wr);
        return;
    }
    really_free(t);
}

/* The end, told once; reading stops. */
static void end(struct hr_tunnel *t, const char *why)
{
    if (t->ended) return;
    t->ended = 1;
    event_del(t->rd);
    event_del(t->wr);
    t->wr_added = 0;
    if (t->cbs.on_end) t->cbs.on_end(t->ud, t, why);
}

static void ssl_why(struct hr_tunnel *t, const char *doing)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    snprintf(t->why, sizeof t->why, "%s failed: %s", doing, r ? r : errno ? strerror(errno) : "TLS error");
}

/* Returns 0 when everything is written or waiting for the socket, -1 when
 * the connection failed (t->why says how). */
static int flush(struct hr_tunnel *t)
{
    while (evbuffer_get_length(t->out)) {
        if (t->ssl) {
            struct evbuffer_iovec v;
            if (evbuffer_peek(t->out, -1, NULL, &v, 1) < 1) break;
            ERR_clear_error();
            int r = SSL_write(t->ssl, v.iov_base, (int)(v.iov_len > (1u << 30) ? 1u << 30 : v.iov_len));
            if (r <= 0) {
                int e = SSL_get_error(t->ssl, r);
                if (e == SSL_ERROR_WANT_WRITE) goto wait;
                if (e == SSL_ERROR_WANT_READ) return 0; /* the read event brings us back */
                ssl_why(t, "writing");
                return -1;
            }
            evbuffer_drain(t->out, (size_t)r);
        } else {
            int n = evbuffer_write(t->out, t->fd);
            if (n < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) goto wait;
                snprintf(t->why, sizeof t->why, "writing failed: %s", strerror(errno));
                return -1;
            }
        }
    }
    if (t->wr_added) {
        event_del(t->wr);
        t->wr_added = 0;
        if (!t->shut && t->cbs.on_drained) t->cbs.on_drained(t->ud, t);
    }
    if (t->shut == 1) {
        t->shut = 2;
        if (t->ssl) SSL_shutdown(t->ssl);
        shutdown(t->fd, SHUT_WR);
    }
    return 0;
wait:
    if (!t->wr_added && event_add(t->wr, NULL) == 0) t->wr_added = 1;
    return 0;
}

static void deliver(struct hr_tunnel *t, const char *buf, size_t n)
{
    if (n && t->cbs.on_read) t->cbs.on_read(t->ud, t, (const uint8_t *)buf, n);
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct hr_tunnel *t = arg;
    if (t->doomed || t->ended) return;
    t->held++;
    if (t->shut == 3) { /* a write failed in hr_tunnel_write */
        end(t, t->why);
        release(t);
        return;
    }
    if (t->pre) {
        char *pre = t->pre;
        t->pre = NULL;
        deliver(t, pre, t->pre_len);
        free(pre);
    }
    if (t->ssl && evbuffer_get_length(t->out) && !t->doomed && flush(t) < 0) { /* a write waiting on a read */
        end(t, t->why);
        release(t);
        return;
    }
    char buf[READ_CHUNK];
    for (int round = 0; round < READ_ROUNDS && !t->paused && !t->doomed && !t->ended; round++) {
        ssize_t n;
        if (t->ssl) {
            ERR_clear_error();
            int r = SSL_read(t->ssl, buf, sizeof buf);
            if (r <= 0) {
                int e = SSL_get_error(t->ssl, r);
                if (e == SSL_ERROR_WANT_READ) break;
                if (e == SSL_ERROR_WANT_WRITE) {
                    if (!t->wr_added && event_add(t->wr, NULL) == 0) t->wr_added = 1;
                    break;
                }
                if (e == SSL_ERROR_ZERO_RETURN) end(t, "");
                else if (e == SSL_ERROR_SYSCALL && !errno) end(t, "");
                else {
                    ssl_why(t, "reading");
                    end(t, t->why);
                }
                break;
            }
            n = r;
        } else {
            n = recv(t->fd, buf, sizeof buf, 0);
            if (n < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) break;
                snprintf(t->why, sizeof t->why, "reading failed: %s", strerror(errno));
                end(t, t->why);
                break;
            }
            if (n == 0) {
                end(t, "");
                break;
            }
        }
        deliver(t, buf, (size_t)n);
        if ((size_t)n < sizeof buf && !(t->ssl && SSL_pending(t->ssl))) break;
        if (round == READ_ROUNDS - 1 && !t->paused && !t->doomed && !t->ended)
            event_active(t->rd, EV_READ, 1); /* more may wait: come back next turn */
    }
    release(t);
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct hr_tunnel *t = arg;
    if (t->doomed || t->ended) return;
    t->held++;
    if (flush(t) < 0) end(t, t->why);
    else if (t->ssl && !t->paused && !t->ended && !t->doomed) event_active(t->rd, EV_READ, 1); /* a read that wanted to write */
    release(t);
}

struct hr_tunnel *hr_tunnel_new(struct event_base *base, int fd, struct ssl_st *ssl, const char *pre, size_t pre_len)
{
    struct hr_tunnel *t = calloc(1, sizeof *t);
    if (!t) {
        if (ssl) SSL_free(ssl);
        close(fd);
        return NULL;
    }
    t->fd = fd;
    t->ssl = ssl;
    t->rd = event_new(base, fd, EV_READ | EV_PERSIST, on_readable, t);
    t->wr = event_new(base, fd, EV_WRITE | EV_PERSIST, on_writable, t);
    t->out = evbuffer_new();
    if (pre_len && (t->pre = malloc(pre_len))) {
        memcpy(t->pre, pre, pre_len);
        t->pre_len = pre_len;
    }
    if (!t->rd || !t->wr || !t->out || (pre_len && !t->pre)) {
        really_free(t);
        return NULL;
    }
    return t;
}

int hr_tunnel_start(struct hr_tunnel *t, const struct hr_tunnel_cbs *cbs, void *ud)
{
    t->cbs = *cbs;
    t->ud = ud;
    t->started = 1;
    if (event_add(t->rd, NULL)) return -1;
    /* bytes read past the head, or a TLS record already decrypted */
    if (t->pre || (t->ssl && SSL_pending(t->ssl))) event_active(t->rd, EV_READ, 1);
    return 0;
}

void hr_tunnel_write(struct hr_tunnel *t, const void *buf, size_t len)
{
    if (t->ended || t->doomed || t->shut || !len) return;
    evbuffer_add(t->out, buf, len);
    if (t->wr_added) return; /* the socket is full: the write event goes on */
    if (flush(t) < 0) {
        /* told from the loop, not from inside the caller */
        event_del(t->wr);
        t->wr_added = 0;
        evbuffer_drain(t->out, evbuffer_get_length(t->out));
        t->shut = 3;
        event_active(t->rd, EV_READ, 1);
    }
}

size_t hr_tunnel_pending(const struct hr_tunnel *t) { return evbuffer_get_length(t->out); }

void hr_tunnel_pause(struct hr_tunnel *t, int paused)
{
    if (t->ended || t->doomed || t->paused == paused) return;
    t->paused = paused;
    if (paused) {
        event_del(t->rd);
        return;
    }
    event_add(t->rd, NULL);
    event_active(t->rd, EV_READ, 1); /* TLS may hold a decrypted record */
}

void hr_tunnel_shutdown(struct hr_tunnel *t)
{
    if (t->ended || t->doomed || t->shut) return;
    t->shut = 1;
    if (!t->wr_added) flush(t);
}
