/* fast_upstream.c — a minimal OpenAI-shaped upstream for bench/proxy_vs_nginx.
 *
 * One thread, epoll, keep-alive HTTP/1.1. Answers every POST (any path) with
 * a fixed small chat.completion JSON (usage included), or, when the body
 * contains "stream":true, with a chunked text/event-stream of a few
 * chat.completion.chunk events, a usage chunk and [DONE]: by default the
 * whole stream in one send() (cheapest: the upstream must never be the
 * bottleneck of what it measures); with FAST_UPSTREAM_SSE_SPLIT=1 each event
 * in its own send() (TCP_NODELAY), as a provider emits them, which costs the
 * upstream ~5x more CPU per stream. Pipelined requests are answered in
 * order. No allocation per request. FAST_UPSTREAM_DELAY_MS=N holds each
 * answer N ms first, as a provider takes time before its first token; the
 * one thread sleeps, so only for benches that send one request at a time.
 *
 * Usage: fast_upstream PORT [READY_FILE]   (PORT 0 = pick one; the bound port
 * is printed on stdout and written to READY_FILE when given)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef BUF_SIZE /* per connection: the largest request it takes (-DBUF_SIZE=... for megabyte bodies) */
#define BUF_SIZE (256 * 1024)
#endif

static const char json_body[] =
    "{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion\",\"created\":1700000000,"
    "\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
    "\"content\":\"Hello! I am doing well, thank you.\"},\"finish_reason\":\"stop\"}],"
    "\"usage\":{\"prompt_tokens\":13,\"completion_tokens\":9,\"total_tokens\":22}}";

#define CHUNK_HEAD "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"gpt-4o-mini\","
static const char *const sse_events[] = {
    CHUNK_HEAD "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
    CHUNK_HEAD "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello!\"},\"finish_reason\":null}]}\n\n",
    CHUNK_HEAD "\"choices\":[{\"index\":0,\"delta\":{\"content\":\" I am doing\"},\"finish_reason\":null}]}\n\n",
    CHUNK_HEAD "\"choices\":[{\"index\":0,\"delta\":{\"content\":\" well, thank you.\"},\"finish_reason\":null}]}\n\n",
    CHUNK_HEAD "\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
    CHUNK_HEAD "\"choices\":[],\"usage\":{\"prompt_tokens\":13,\"completion_tokens\":9,\"total_tokens\":22}}\n\n",
    "data: [DONE]\n\n",
};
#define N_EVENTS (sizeof sse_events / sizeof *sse_events)

static char json_reply[1024];
static size_t json_reply_len;
static char sse_head[256];
static size_t sse_head_len;
static char sse_chunk[N_EVENTS][512]; /* each event framed as one HTTP chunk */
static size_t sse_chunk_len[N_EVENTS];
static char sse_whole[4096]; /* head and every chunk, for one send() */
static size_t sse_whole_len;
static int sse_split;
static unsigned delay_ms;

struct conn {
    int fd;
    size_t len;
    char buf[BUF_SIZE];
};

static void build_replies(void)
{
    json_reply_len = (size_t)snprintf(json_reply, sizeof json_reply,
                                      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                      "Content-Length: %zu\r\n\r\n%s",
                                      sizeof json_body - 1, json_body);
    sse_head_len = (size_t)snprintf(sse_head, sizeof sse_head,
                                    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                                    "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (size_t i = 0; i < N_EVENTS; i++) {
        size_t n = strlen(sse_events[i]);
        sse_chunk_len[i] = (size_t)snprintf(sse_chunk[i], sizeof sse_chunk[i], "%zx\r\n%s\r\n%s", n, sse_events[i],
                                            i == N_EVENTS - 1 ? "0\r\n\r\n" : "");
    }
    memcpy(sse_whole, sse_head, sse_head_len);
    sse_whole_len = sse_head_len;
    for (size_t i = 0; i < N_EVENTS; i++) {
        memcpy(sse_whole + sse_whole_len, sse_chunk[i], sse_chunk_len[i]);
        sse_whole_len += sse_chunk_len[i];
    }
}

/* Whole buffer out on a blocking-ish path: loopback sockets with this little
 * data never fill, but be correct if they do. */
static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) {
                fd_set wf;
                FD_ZERO(&wf);
                FD_SET(fd, &wf);
                select(fd + 1, NULL, &wf, NULL, NULL);
                continue;
            }
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static const char *find_crlfcrlf(const char *p, size_t n)
{
    return memmem(p, n, "\r\n\r\n", 4);
}

static size_t content_length(const char *h, size_t n)
{
    for (const char *p = h, *end = h + n; p < end;) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol) break;
        if ((size_t)(eol - p) > 15 && !strncasecmp(p, "content-length:", 15)) return strtoul(p + 15, NULL, 10);
        p = eol + 1;
    }
    return 0;
}

static int wants_stream(const char *b, size_t n)
{
    const char *p = memmem(b, n, "\"stream\"", 8);
    if (!p) return 0;
    p += 8;
    const char *end = b + n;
    while (p < end && (*p == ' ' || *p == ':' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return end - p >= 4 && !memcmp(p, "true", 4);
}

/* Answer every complete request in the buffer; -1 closes the connection. */
static int serve(struct conn *c)
{
    size_t off = 0;
    for (;;) {
        const char *h = c->buf + off;
        size_t avail = c->len - off;
        const char *eoh = find_crlfcrlf(h, avail);
        if (!eoh) break;
        size_t hlen = (size_t)(eoh - h) + 4;
        size_t blen = content_length(h, hlen);
        if (hlen + blen > BUF_SIZE) return -1;
        if (avail < hlen + blen) break;
        if (delay_ms) usleep(delay_ms * 1000u);
        if (wants_stream(h + hlen, blen) && !sse_split) {
            if (send_all(c->fd, sse_whole, sse_whole_len)) return -1;
        } else if (wants_stream(h + hlen, blen)) {
            if (send_all(c->fd, sse_head, sse_head_len)) return -1;
            for (size_t i = 0; i < N_EVENTS; i++)
                if (send_all(c->fd, sse_chunk[i], sse_chunk_len[i])) return -1;
        } else if (send_all(c->fd, json_reply, json_reply_len)) {
            return -1;
        }
        off += hlen + blen;
    }
    if (off) {
        memmove(c->buf, c->buf + off, c->len - off);
        c->len -= off;
    }
    if (c->len == BUF_SIZE) return -1;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PORT [READY_FILE]\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    const char *split = getenv("FAST_UPSTREAM_SSE_SPLIT");
    sse_split = split && *split && strcmp(split, "0");
    const char *delay = getenv("FAST_UPSTREAM_DELAY_MS");
    delay_ms = delay ? (unsigned)strtoul(delay, NULL, 10) : 0;
    build_replies();
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[1]))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 4096)) {
        perror("fast_upstream: bind/listen");
        return 1;
    }
    socklen_t al = sizeof a;
    getsockname(ls, (struct sockaddr *)&a, &al);
    printf("%d\n", ntohs(a.sin_port));
    fflush(stdout);
    if (argc > 2) {
        FILE *f = fopen(argv[2], "w");
        if (f) {
            fprintf(f, "%d\n", ntohs(a.sin_port));
            fclose(f);
        }
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (!c) {
                int fd;
                while ((fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct conn *nc = malloc(sizeof *nc);
                    if (!nc) {
                        close(fd);
                        continue;
                    }
                    nc->fd = fd;
                    nc->len = 0;
                    struct epoll_event cev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = nc};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
                }
                continue;
            }
            /* Level-triggered: one read per wake-up; more data wakes us again. */
            int closeit = 0;
            ssize_t r = recv(c->fd, c->buf + c->len, BUF_SIZE - c->len, 0);
            if (r > 0) {
                c->len += (size_t)r;
                closeit = serve(c) != 0;
            } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                closeit = 1; /* EOF or error */
            }
            if (closeit) {
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                free(c);
            }
        }
    }
}
