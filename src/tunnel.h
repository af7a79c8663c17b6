/* tunnel.h — a byte pipe over a connection that has left HTTP (a WebSocket
 * after its 101): the socket, with its TLS state when it has one, read and
 * written on the worker's loop. Both sides of a relayed WebSocket are one:
 * the client's socket taken from the HTTP server, the upstream's from the
 * native upstream client. */
#ifndef HR_TUNNEL_H
#define HR_TUNNEL_H
#include <stddef.h>
#include <stdint.h>
#include <event2/event.h>

struct ssl_st;
struct hr_tunnel;

struct hr_tunnel_cbs {
    /* Bytes as they arrive. The callee may pause or free the tunnel here. */
    void (*on_read)(void *ud, struct hr_tunnel *t, const uint8_t *buf, size_t len);
    /* What was waiting to be written is all written (after a write had to
     * wait for the socket). */
    void (*on_drained)(void *ud, struct hr_tunnel *t);
    /* The peer closed (why "") or the connection failed (why says how).
     * Nothing is read afterwards; the callee frees the tunnel. */
    void (*on_end)(void *ud, struct hr_tunnel *t, const char *why);
};

/* Takes `fd` and `ssl` (NULL for plain TCP). `pre` holds bytes already read
 * past the HTTP head (copied); they are delivered first, from the loop. */
struct hr_tunnel *hr_tunnel_new(struct event_base *base, int fd, struct ssl_st *ssl, const char *pre, size_t pre_len);
/* Start reading (callbacks from the loop from now on). */
int hr_tunnel_start(struct hr_tunnel *t, const struct hr_tunnel_cbs *cbs, void *ud);
/* Write now as far as the socket takes; the rest waits (copied). */
void hr_tunnel_write(struct hr_tunnel *t, const void *buf, size_t len);
/* Bytes waiting for the socket. */
size_t hr_tunnel_pending(const struct hr_tunnel *t);
/* Stop (1) or resume (0) reading: backpressure from the other side. */
void hr_tunnel_pause(struct hr_tunnel *t, int paused);
/* No more will be written: send FIN (TLS close_notify first) once the
 * pending bytes are out. */
void hr_tunnel_shutdown(struct hr_tunnel *t);
/* Close the connection and free (safe from inside a callback). */
void hr_tunnel_free(struct hr_tunnel *t);
#endif
