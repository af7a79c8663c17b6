/* one_conn.c — one client, one keep-alive connection, one request at a time:
 * the latency of each request as that client sees it (first byte sent to
 * the answer's last byte read), with no correction for requests "not sent"
 * while one waited. That is what an agent waiting on each answer sees; wrk
 * corrects for coordinated omission, so one 80 ms host stall in a run fills
 * its p99 with synthetic samples.
 *
 * Usage: one_conn PORT SECONDS [json|sse]
 * Prints: "ONECONN requests=N p50_us= p90_us= p99_us= p999_us= max_us= over10ms="
 * Answers must be 200 with Content-Length or chunked framing. 127.0.0.1 only. */
#define _GNU_SOURCE /* strcasestr */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SAMPLES 4000000

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Reads one whole answer; 0 on a 200 with its body read, -1 otherwise. */
static int read_answer(int fd, char *buf, size_t cap)
{
    size_t have = 0;
    char *body = NULL;
    for (;;) {
        ssize_t n = recv(fd, buf + have, cap - 1 - have, 0);
        if (n <= 0) return -1;
        have += (size_t)n;
        buf[have] = 0;
        if (!body) {
            char *e = strstr(buf, "\r\n\r\n");
            if (!e) continue;
            if (strncmp(buf, "HTTP/1.1 200", 12)) return -1;
            body = e + 4;
        }
        size_t head = (size_t)(body - buf);
        char *cl = strcasestr(buf, "\r\ncontent-length:");
        if (cl && cl < body) {
            size_t want = strtoul(cl + 17, NULL, 10);
            if (have - head >= want) return 0;
        } else if (have - head >= 5 && !memcmp(buf + have - 5, "0\r\n\r\n", 5)) {
            return 0; /* chunked: the last chunk */
        }
        if (have + 1 >= cap) return -1;
    }
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: one_conn PORT SECONDS [json|sse]\n");
        return 2;
    }
    int port = atoi(argv[1]);
    double secs = atof(argv[2]);
    int sse = argc > 3 && !strcmp(argv[3], "sse");
    const char *body = sse ? "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"system\",\"content\":\"You are a helpful "
                             "assistant.\"},{\"role\":\"user\",\"content\":\"Hello, how are you today?\"}],\"stream\":"
                             "true,\"stream_options\":{\"include_usage\":true}}"
                           : "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"system\",\"content\":\"You are a helpful "
                             "assistant.\"},{\"role\":\"user\",\"content\":\"Hello, how are you today?\"}]}";
    char req[1024];
    int rl = snprintf(req, sizeof req,
                      "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
                      "Authorization: Bearer sk-bench-not-a-key\r\nContent-Length: %zu\r\n\r\n%s",
                      port, strlen(body), body);
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a)) {
        perror("one_conn: connect");
        return 1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    double *lat = malloc(sizeof(double) * MAX_SAMPLES);
    static char buf[1 << 16];
    size_t n = 0;
    double end = now_us() + secs * 1e6;
    while (n < MAX_SAMPLES) {
        double t0 = now_us();
        if (t0 >= end) break;
        if (send(fd, req, (size_t)rl, 0) != rl || read_answer(fd, buf, sizeof buf)) {
            fprintf(stderr, "one_conn: request %zu failed\n", n);
            return 1;
        }
        lat[n++] = now_us() - t0;
    }
    close(fd);
    if (!n) return 1;
    size_t over = 0;
    for (size_t i = 0; i < n; i++) over += lat[i] > 10000;
    qsort(lat, n, sizeof *lat, cmp);
#define PCT(p) lat[(size_t)((p) / 100.0 * (double)(n - 1))]
    printf("ONECONN requests=%zu p50_us=%.0f p90_us=%.0f p99_us=%.0f p999_us=%.0f max_us=%.0f over10ms=%zu\n", n,
           PCT(50), PCT(90), PCT(99), PCT(99.9), lat[n - 1], over);
    free(lat);
    return 0;
}
