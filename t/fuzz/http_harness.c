/* t/fuzz/http_harness.c — headroomd started in-process the way main() does
 * it (one worker, no sinks), an upstream thread answering with chosen bytes,
 * and a blocking client for whole request/answer exchanges. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include "ccr.h"
#include "config.h"
#include "cost.h"
#include "daemon.h"
#include "host.h"
#include "log.h"
#include "par.h"
#include "ratelimit.h"
#include "respcache.h"
#include "sinks.h"
#include "stats.h"
#include "tokens.h"
#include "http_harness.h"

static struct hr_config cfg;
static struct hr_daemon d;
static int upstream_port;

static pthread_mutex_t up_lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t *up_bytes;        /* NULL: canned answers */
static size_t up_len;

static void die(const char *what, const char *why)
{
    fprintf(stderr, "http_harness: %s: %s\n", what, why);
    abort();
}

void hh_set_upstream(const uint8_t *bytes, size_t len)
{
    pthread_mutex_lock(&up_lock);
    free(up_bytes);
    up_bytes = NULL;
    up_len = 0;
    if (bytes && (up_bytes = malloc(len ? len : 1))) {
        memcpy(up_bytes, bytes, len);
        up_len = len;
    }
    pthread_mutex_unlock(&up_lock);
}

static int send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t k = send(fd, c, n, MSG_NOSIGNAL);
        if (k <= 0) {
            if (k < 0 && errno == EINTR) continue;
            return -1;
        }
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

static void set_timeouts(int fd, int secs)
{
    struct timeval tv = {secs, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

/* ------------------------------------------------------------- upstream */

static const char OA_JSON[] =
    "{\"id\":\"c1\",\"object\":\"chat.completion\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"message\":"
    "{\"role\":\"assistant\",\"content\":\"ok\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":12,"
    "\"completion_tokens\":2,\"total_tokens\":14,\"prompt_tokens_details\":{\"cached_tokens\":4}}}";
static const char OA_SSE[] =
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,"
    "\"delta\":{\"content\":\"ok\"}}]}\n\n"
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,"
    "\"completion_tokens\":2,\"total_tokens\":14}}\n\ndata: [DONE]\n\n";
static const char AN_JSON[] =
    "{\"id\":\"m1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-3-5-sonnet-20241022\",\"content\":"
    "[{\"type\":\"text\",\"text\":\"ok\"}],\"stop_reason\":\"end_turn\",\"usage\":{\"input_tokens\":12,"
    "\"output_tokens\":2,\"cache_read_input_tokens\":3,\"cache_creation_input_tokens\":5}}";
static const char AN_SSE[] =
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m1\",\"type\":\"message\","
    "\"role\":\"assistant\",\"model\":\"claude-3-5-sonnet-20241022\",\"content\":[],\"usage\":{\"input_tokens\":12,"
    "\"output_tokens\":1}}}\n\n"
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
    "\"text_delta\",\"text\":\"ok\"}}\n\n"
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":"
    "{\"output_tokens\":2}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
static const char RE_JSON[] =
    "{\"id\":\"r1\",\"object\":\"response\",\"model\":\"gpt-4o\",\"status\":\"completed\",\"output\":[{\"type\":"
    "\"message\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"ok\"}]}],\"usage\":"
    "{\"input_tokens\":12,\"output_tokens\":2,\"total_tokens\":14}}";
static const char RE_SSE[] =
    "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"ok\"}\n\n"
    "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"r1\",\"status\":"
    "\"completed\",\"usage\":{\"input_tokens\":12,\"output_tokens\":2,\"total_tokens\":14}}}\n\n";

/* A well-formed answer in the shape the request asked for. */
static void canned(int fd, const char *head, size_t head_len, const char *body, size_t body_len)
{
    int anthropic = memmem(head, head_len, "/v1/messages", 12) != NULL;
    int responses = memmem(head, head_len, "/v1/responses", 13) != NULL;
    int stream = memmem(body, body_len, "\"stream\":true", 13) || memmem(body, body_len, "\"stream\": true", 14);
    const char *b = anthropic ? (stream ? AN_SSE : AN_JSON) : responses ? (stream ? RE_SSE : RE_JSON)
                                                                        : (stream ? OA_SSE : OA_JSON);
    char h[256];
    int n = snprintf(h, sizeof h, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                     stream ? "text/event-stream" : "application/json", strlen(b));
    if (!send_all(fd, h, (size_t)n)) send_all(fd, b, strlen(b));
}

/* Read one request: headers, then Content-Length bytes of body. */
static void serve(int fd)
{
    size_t cap = 1 << 16, len = 0, head_end = 0, want = 0;
    char *buf = malloc(cap);
    if (!buf) return;
    for (;;) {
        if (len == cap) {
            char *nb = cap < (64u << 20) ? realloc(buf, cap * 2) : NULL;
            if (!nb) break;
            buf = nb;
            cap *= 2;
        }
        ssize_t k = recv(fd, buf + len, cap - len, 0);
        if (k <= 0) break;
        len += (size_t)k;
        if (!head_end) {
            char *e = memmem(buf, len, "\r\n\r\n", 4);
            if (!e) continue;
            head_end = (size_t)(e - buf) + 4;
            for (char *p = buf; p && p < e; p = memmem(p, (size_t)(e - p), "\r\n", 2), p = p ? p + 2 : NULL)
                if (!strncasecmp(p, "content-length:", 15)) want = strtoul(p + 15, NULL, 10);
        }
        if (head_end && len - head_end >= want) break;
    }
    if (head_end) {
        pthread_mutex_lock(&up_lock);
        if (up_bytes) send_all(fd, up_bytes, up_len);
        else canned(fd, buf, head_end, buf + head_end, len - head_end);
        pthread_mutex_unlock(&up_lock);
    }
    free(buf);
}

static void *upstream_main(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            return NULL;
        }
        set_timeouts(fd, 5);
        serve(fd);
        close(fd); /* the whole request was read: a FIN, not a reset */
    }
}

static int listen_loopback(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof a;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 64) ||
        getsockname(fd, (struct sockaddr *)&a, &sl))
        die("upstream listener", strerror(errno));
    *port = ntohs(a.sin_port);
    return fd;
}

/* --------------------------------------------------------------- daemon */

void hh_start(int response_cache)
{
    char err[2048], dir[] = "/tmp/hr-fuzz-http-XXXXXX", path[4096];
    signal(SIGPIPE, SIG_IGN);
    if (!mkdtemp(dir)) die("mkdtemp", strerror(errno));
    setenv("HEADROOM_WORKSPACE_DIR", dir, 1);
    if (!getenv("HEADROOM_FUZZ_VERBOSE")) hr_log_set_level(HR_LOG_ERROR);

    int lfd = listen_loopback(&upstream_port);
    pthread_t up;
    if (pthread_create(&up, NULL, upstream_main, (void *)(intptr_t)lfd)) die("upstream thread", "pthread_create");
    pthread_detach(up);

    snprintf(path, sizeof path, "%s/headroom.conf", dir);
    FILE *f = fopen(path, "w");
    if (!f) die(path, strerror(errno));
    fprintf(f,
            "host 127.0.0.1\nport 0\nworkers 1\ncompress_threads 1\n"
            "openai_api_url http://127.0.0.1:%d\nanthropic_api_url http://127.0.0.1:%d\n"
            "plugin_dir %s/plugins/.libs\nlog_level error\n"
            "max_body_size 1m\nmax_header_size 16k\nmax_response_size 1m\nclient_timeout 5\n"
            "upstream_timeout 5\nupstream_connect_timeout_ms 2000\n"
            "min_tokens 10\n%srate_limit_rpm 100000000\nrate_limit_tpm 1000000000\n"
            "transform router { }\ntransform cache_aligner { }\ntransform log_compressor { }\n"
            "transform search_compressor { }\ntransform diff_compressor { }\ntransform html_extractor { }\n"
            "transform smart_crusher { }\n",
            upstream_port, upstream_port, HR_ABS_BUILDDIR, response_cache ? "cache_ttl 60\n" : "");
    fclose(f);

    hr_config_defaults(&cfg);
    if (hr_config_apply_file(&cfg, path, err, sizeof err) || hr_config_validate(&cfg, err, sizeof err))
        die("config", err);
    hr_log_set_level(getenv("HEADROOM_FUZZ_VERBOSE") ? HR_LOG_DEBUG : HR_LOG_ERROR);
    if (hr_tokens_init(err, sizeof err)) die("tokens", err);
    if (hr_cost_init(&cfg, 0, err, sizeof err)) die("prices", err);
    d = (struct hr_daemon){.cfg = &cfg, .listen_fd = -1, .n_workers = 1};
    if (hr_plugins_load(&cfg, &d.plugins, err, sizeof err)) die("plugins", err);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    d.popts = (struct hr_pipeline_opts){.min_tokens = cfg.min_tokens, .protect_recent = cfg.protect_recent,
                                        .stage_budget_ms = (double)cfg.stage_budget_ms};
    const char *names[16] = {0};
    for (size_t i = 0; i < d.plugins.n_transforms && i < 16; i++) names[i] = d.plugins.transforms[i]->name;
    hr_stats_init(1, names, d.plugins.n_transforms < 16 ? d.plugins.n_transforms : 16);
    hr_ccr_init_memory(cfg.ccr_max_bytes, (unsigned)cfg.ccr_ttl_s);
    hr_respcache_setup(&cfg);
    hr_ratelimit_setup(&cfg);
    hr_par_start(0);
    if (hr_plugins_init(&d.plugins, &hr_host_table, err, sizeof err)) die("plugin init", err);
    if (hr_sinks_start(&d.plugins, 64)) die("sinks", "cannot start");
    if (hr_server_start(&d, err, sizeof err)) die("server", err);
    /* Runs until the process ends: libFuzzer exits without teardown. */
}

/* Would the daemon be left waiting for more bytes? (No blank line ending
 * the headers, or a Content-Length / chunked body cut short.) Then the
 * client half-closes at once, else it waits for the answer with the
 * connection open: evhttp takes an early EOF as the client going away. */
/* The number after a header name, read no further than `end` (the input is
 * not NUL-terminated, and strtoll would skip a line end looking for digits). */
static long long header_number(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t')) p++;
    long long v = 0;
    for (; p < end && *p >= '0' && *p <= '9' && v < (1LL << 50); p++) v = v * 10 + (*p - '0');
    return v;
}

static int request_incomplete(const uint8_t *req, size_t len)
{
    const char *r = (const char *)req, *end = NULL;
    size_t hdr = 0;
    for (size_t i = 0; i + 1 < len; i++) {
        if (r[i] != '\n') continue;
        if (r[i + 1] == '\n') { hdr = i + 2; break; }
        if (i + 2 < len && r[i + 1] == '\r' && r[i + 2] == '\n') { hdr = i + 3; break; }
    }
    if (!hdr) return 1;
    end = r + hdr;
    long long want = 0;
    int chunked = 0;
    for (const char *p = r; p && p < end; p = memchr(p, '\n', (size_t)(end - p)), p = p ? p + 1 : NULL) {
        if ((size_t)(end - p) > 15 && !strncasecmp(p, "content-length:", 15)) want = header_number(p + 15, end);
        if ((size_t)(end - p) > 18 && !strncasecmp(p, "transfer-encoding:", 18) &&
            memmem(p, (size_t)(end - p) < 64 ? (size_t)(end - p) : 64, "chunked", 7))
            chunked = 1;
    }
    if (chunked) return !memmem(end, len - hdr, "0\r\n\r\n", 5) && !memmem(end, len - hdr, "0\n\n", 3);
    /* evhttp reads a POST/PUT/PATCH body without Content-Length to EOF */
    if (!want && (!strncmp(r, "POST ", 5) || !strncmp(r, "PUT ", 4) || !strncmp(r, "PATCH ", 6))) {
        for (const char *p = r; p && p < end; p = memchr(p, '\n', (size_t)(end - p)), p = p ? p + 1 : NULL)
            if ((size_t)(end - p) > 15 && !strncasecmp(p, "content-length:", 15)) return 0;
        return 1;
    }
    return want > (long long)(len - hdr);
}

/* Framing of the answer read so far: 1 when it is complete. */
static int answer_complete(const char *a, size_t n, int head_request)
{
    const char *e = memmem(a, n, "\r\n\r\n", 4);
    if (!e) return 0;
    size_t hdr = (size_t)(e - a) + 4;
    int status = n > 12 ? atoi(a + 9) : 0;
    if (head_request || status == 204 || status == 304 || (status >= 100 && status < 200)) return 1;
    for (const char *p = a; p && p < e; p = memmem(p, (size_t)(e - p), "\r\n", 2), p = p ? p + 2 : NULL) {
        if (!strncasecmp(p, "content-length:", 15)) return n - hdr >= strtoull(p + 15, NULL, 10);
        if (!strncasecmp(p, "transfer-encoding:", 18)) return n >= 5 && !memcmp(a + n - 5, "0\r\n\r\n", 5);
    }
    return 0; /* until the daemon closes */
}

/* connect(2) that a signal (libFuzzer's timers) may interrupt: the
 * connection goes on in the background, so wait for it instead of failing. */
static int connect_retrying(int fd, const struct sockaddr *a, socklen_t alen)
{
    if (connect(fd, a, alen) == 0) return 0;
    if (errno != EINTR && errno != EINPROGRESS) return -1;
    for (;;) {
        struct pollfd pfd = {fd, POLLOUT, 0};
        int pr = poll(&pfd, 1, 10000);
        if (pr < 0 && errno == EINTR) continue;
        if (pr <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        int err = 0;
        socklen_t elen = sizeof err;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen)) return -1;
        if (err) {
            errno = err;
            return -1;
        }
        return 0;
    }
}

size_t hh_exchange(const uint8_t *req, size_t len, char *out, size_t cap, int patience_ms)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)d.port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || connect_retrying(fd, (struct sockaddr *)&a, sizeof a)) die("connect to headroomd", strerror(errno));
    set_timeouts(fd, 8);
    send_all(fd, req, len); /* the daemon may refuse and close early: fine */
    int half_closed = request_incomplete(req, len);
    /* (with patience_ms, an answer not started that long after a request
     * that looked complete: half-close, which evhttp takes as the client
     * leaving, also a path worth running) */
    if (half_closed) shutdown(fd, SHUT_WR);
    size_t got = 0, keep = 0;
    static char head[1 << 16]; /* the answer's first bytes, for framing */
    char buf[16384];
    for (;;) {
        struct pollfd pfd = {fd, POLLIN, 0};
        int pr = poll(&pfd, 1, half_closed || !patience_ms ? 10000 : patience_ms);
        if (pr == 0 && !half_closed && patience_ms) { /* a request evhttp may still wait on (odd framing) */
            shutdown(fd, SHUT_WR);
            half_closed = 1;
            continue;
        }
        if (pr == 0) {
            fprintf(stderr, "http_harness: no answer from headroomd within 10 s of the request\n");
            abort();
        }
        ssize_t k = recv(fd, buf, sizeof buf, 0);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        if (out && got < cap) memcpy(out + got, buf, (size_t)k < cap - got ? (size_t)k : cap - got);
        if (keep < sizeof head) {
            size_t c = (size_t)k < sizeof head - keep ? (size_t)k : sizeof head - keep;
            memcpy(head + keep, buf, c);
            keep += c;
        }
        got += (size_t)k;
        if (keep < sizeof head && answer_complete(head, keep, len >= 5 && !memcmp(req, "HEAD ", 5))) break;
    }
    close(fd);
    if (getenv("HEADROOM_FUZZ_SHOW")) { /* which answer each input got, for corpus work */
        size_t eol = 0;
        while (eol < keep && head[eol] != '\r' && head[eol] != '\n') eol++;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        fprintf(stderr, "http_harness: %zu bytes sent, %zu received in %.0f ms: %.*s\n", len, got,
                (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6, (int)eol, head);
    }
    return got;
}
