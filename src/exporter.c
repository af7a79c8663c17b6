/* exporter.c — asynchronous HTTP POST for plugins (hr_host.exporter_new,
 * export_post, export_stats; contract in include/headroom/plugin.h).
 *
 * Each exporter owns a thread, a libcurl easy handle (connection reuse) and
 * a ring of at most queue_max owned bodies. export_post only copies into the
 * ring, so a plugin's thread never waits for the network; nothing here runs
 * on a worker or on the housekeeping timer. Memory is bounded by
 * queue_max bodies per exporter whatever the collector does; the ring's
 * buffers (and the gzip buffer) are kept and reused, never freed per body,
 * so bodies that wait minutes for a collector that is down do not fragment
 * the heap: an exporter holds at most queue_max buffers of the largest body
 * it was given (bench/otel_down). */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <zlib.h>
#include "bg_thread.h"
#include "exporter.h"
#include "host.h"
#include "log.h"
#include "stats.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif

#define BACKOFF_CAP_MS 30000u
#define RETRY_AFTER_CAP_MS 60000u
#define SHUTDOWN_TIMEOUT_MS 2000u

struct body {
    unsigned char *data;        /* kept across uses of the slot; grown, never shrunk */
    size_t len, cap;
    uint64_t items;
    int gzipped;
};

struct hr_exporter {
    char *name, *url, *logger;
    struct curl_slist *headers;
    int gzip;
    unsigned timeout_ms, queue_max, max_attempts, backoff_ms;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;        /* CLOCK_MONOTONIC */
    struct body *ring;
    size_t head, len;
    struct body gz;             /* exporter thread only: the gzipped copy of the body in flight */
    int stop;
    int failing;                /* last attempt failed: logged once until it recovers */
    struct hr_export_stats st;
    uint64_t rng;
    long retry_after_ms;        /* from the last response, -1 when none */
    struct hr_exporter *next;
};

static pthread_mutex_t list_lock = PTHREAD_MUTEX_INITIALIZER;
static struct hr_exporter *exporters;
static int metrics_registered;

/* ------------------------------------------------------------- /metrics */

static const char *const L_EXPORTER[] = {"exporter"};
static const char *const L_EXPORTER_OUTCOME[] = {"exporter", "outcome"};

static void fam(hr_metric_visit_fn visit, void *ud, const char *name, enum hr_metric_type type, const char *help,
                size_t n_labels, const char *const *labels, const char *const *lv, double v)
{
    struct hr_metric_family f = {sizeof f, name, help, type, n_labels, labels};
    struct hr_metric_sample s = {.struct_size = sizeof s, .label_values = lv, .value = v};
    visit(ud, &f, &s);
}

static int export_metrics(void *state, hr_metric_visit_fn visit, void *ud)
{
    (void)state;
    pthread_mutex_lock(&list_lock);
    size_t n = 0;
    for (struct hr_exporter *e = exporters; e; e = e->next) n++;
    struct hr_export_stats *st = calloc(n ? n : 1, sizeof *st);
    const char **names = calloc(n ? n : 1, sizeof *names);
    size_t i = 0;
    for (struct hr_exporter *e = exporters; e && st && names; e = e->next, i++) {
        hr_export_stats(e, &st[i]);
        names[i] = e->name; /* exporters are freed only at shutdown, after the last walk */
    }
    pthread_mutex_unlock(&list_lock);
    if (!st || !names) {
        free(st);
        free(names);
        return HR_ENOMEM;
    }
    static const struct {
        const char *outcome;
        size_t off;
    } outcomes[] = {{"ok", offsetof(struct hr_export_stats, ok)}, {"failed", offsetof(struct hr_export_stats, failed)}};
    /* Samples of one family arrive together. */
    for (size_t k = 0; k < 2; k++)
        for (i = 0; i < n; i++)
            fam(visit, ud, "headroom_export_requests_total", HR_METRIC_COUNTER,
                "Export bodies (OTLP requests) delivered or given up on, per exporter", 2, L_EXPORTER_OUTCOME,
                (const char *const[]){names[i], outcomes[k].outcome},
                (double)*(const uint64_t *)((const char *)&st[i] + outcomes[k].off));
    for (i = 0; i < n; i++)
        fam(visit, ud, "headroom_export_items_total", HR_METRIC_COUNTER, "Items (data points' requests, spans) delivered",
            1, L_EXPORTER, (const char *const[]){names[i]}, (double)st[i].items_ok);
    for (i = 0; i < n; i++)
        fam(visit, ud, "headroom_export_retries_total", HR_METRIC_COUNTER, "Export attempts after the first (backoff)", 1,
            L_EXPORTER, (const char *const[]){names[i]}, (double)st[i].retries);
    for (i = 0; i < n; i++)
        fam(visit, ud, "headroom_export_dropped_total", HR_METRIC_COUNTER, "Export bodies refused by a full queue", 1,
            L_EXPORTER, (const char *const[]){names[i]}, (double)st[i].dropped);
    for (i = 0; i < n; i++)
        fam(visit, ud, "headroom_export_queue_length", HR_METRIC_GAUGE, "Export bodies waiting (incl. one in flight)", 1,
            L_EXPORTER, (const char *const[]){names[i]}, (double)st[i].queued);
    for (i = 0; i < n; i++)
        fam(visit, ud, "headroom_export_last_success_timestamp_seconds", HR_METRIC_GAUGE,
            "Unix time of the last delivered export (0 = never)", 1, L_EXPORTER, (const char *const[]){names[i]},
            st[i].last_ok_at);
    free(st);
    free(names);
    return HR_OK;
}

/* ------------------------------------------------------------------ http */

struct reply {
    char text[160];
    size_t len;
    long retry_after_ms;
};

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct reply *r = ud;
    size_t len = size * n, room = sizeof r->text - 1 - r->len;
    size_t take = len < room ? len : room;
    memcpy(r->text + r->len, p, take);
    r->len += take;
    r->text[r->len] = '\0';
    return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    struct reply *r = ud;
    size_t len = size * n;
    if (len > 12 && !strncasecmp(p, "retry-after:", 12)) {
        char v[64];
        size_t vl = len - 12 < sizeof v - 1 ? len - 12 : sizeof v - 1;
        memcpy(v, p + 12, vl);
        v[vl] = '\0';
        char *s = v;
        while (*s == ' ' || *s == '\t') s++;
        s[strcspn(s, "\r\n")] = '\0';
        char *end;
        long secs = strtol(s, &end, 10);
        if (end != s && *end == '\0' && secs >= 0) {
            r->retry_after_ms = secs > (long)(RETRY_AFTER_CAP_MS / 1000) ? (long)RETRY_AFTER_CAP_MS : secs * 1000;
        } else {
            time_t when = curl_getdate(s, NULL);
            if (when > 0) {
                double ms = ((double)when - hr_clock_now()) * 1000;
                r->retry_after_ms = ms < 0 ? 0 : ms > RETRY_AFTER_CAP_MS ? (long)RETRY_AFTER_CAP_MS : (long)ms;
            }
        }
    }
    return len;
}

/* Gzip `b` into `gz` (its buffer reused). 0 or -1. */
static int gzip_body(const struct body *b, struct body *gz)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return -1;
    uLong cap = deflateBound(&z, (uLong)b->len);
    if (gz->cap < cap) {
        unsigned char *d = realloc(gz->data, cap);
        if (!d) {
            deflateEnd(&z);
            return -1;
        }
        gz->data = d;
        gz->cap = cap;
    }
    z.next_in = b->data;
    z.avail_in = (uInt)b->len;
    z.next_out = gz->data;
    z.avail_out = (uInt)gz->cap;
    int rc = deflate(&z, Z_FINISH);
    size_t n = z.total_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END) return -1;
    gz->len = n;
    gz->items = b->items;
    gz->gzipped = 1;
    return 0;
}

/* One attempt. Returns 1 delivered, 0 retryable, -1 not retryable. */
static int attempt(struct hr_exporter *ex, CURL *c, const struct body *b, unsigned timeout_ms, int *status, char *err,
                   size_t errlen)
{
    struct reply r = {.retry_after_ms = -1};
    struct curl_slist *h = ex->headers;
    struct curl_slist *gz = NULL;
    if (b->gzipped) {
        gz = curl_slist_append(NULL, "Content-Encoding: gzip");
        if (gz) gz->next = ex->headers; /* borrowed tail: detached before freeing */
        h = gz ? gz : h;
    }
    curl_easy_setopt(c, CURLOPT_URL, ex->url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)b->data);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)b->len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)(timeout_ms < 5000 ? timeout_ms : 5000));
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "headroomd/" PACKAGE_VERSION);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
    CURLcode cc = curl_easy_perform(c);
    if (gz) {
        gz->next = NULL;
        curl_slist_free_all(gz);
    }
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    *status = cc == CURLE_OK ? (int)code : 0;
    ex->retry_after_ms = r.retry_after_ms;
    if (cc != CURLE_OK) {
        snprintf(err, errlen, "%s", curl_easy_strerror(cc));
        return 0;
    }
    if (code >= 200 && code < 300) {
        err[0] = '\0';
        return 1;
    }
    /* The collector's words, on one line. */
    for (char *p = r.text; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t') *p = ' ';
    snprintf(err, errlen, "HTTP %ld%s%.100s", code, r.len ? ": " : "", r.text);
    return code == 429 || code >= 500 ? 0 : -1;
}

static uint64_t rng_next(struct hr_exporter *ex)
{
    uint64_t x = ex->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return ex->rng = x;
}

/* Delay before retry `n` (1-based): exponential, capped, with jitter in
 * [d/2, d]; a Retry-After from the collector wins. */
static unsigned retry_delay_ms(struct hr_exporter *ex, unsigned n)
{
    if (ex->retry_after_ms >= 0) return (unsigned)ex->retry_after_ms;
    uint64_t d = ex->backoff_ms;
    for (unsigned i = 1; i < n && d < BACKOFF_CAP_MS; i++) d *= 2;
    if (d > BACKOFF_CAP_MS) d = BACKOFF_CAP_MS;
    return (unsigned)(d / 2 + rng_next(ex) % (d / 2 + 1));
}

static void deadline_in(struct timespec *ts, unsigned ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void *export_thread(void *arg)
{
    struct hr_exporter *ex = arg;
    hr_thread_name("export");
    CURL *c = curl_easy_init();
    pthread_mutex_lock(&ex->lock);
    for (;;) {
        while (!ex->len && !ex->stop) pthread_cond_wait(&ex->cond, &ex->lock);
        if (!ex->len) break;
        struct body *b = &ex->ring[ex->head]; /* posters never touch the head slot while len > 0 */
        pthread_mutex_unlock(&ex->lock);
        const struct body *send = b;
        if (ex->gzip) {
            if (gzip_body(b, &ex->gz) == 0) send = &ex->gz;
            else hr_log(HR_LOG_WARN, ex->logger, "exporter %s: gzip failed; sending this body uncompressed", ex->name);
        }
        int delivered = 0;
        for (unsigned n = 1;; n++) {
            pthread_mutex_lock(&ex->lock);
            int stopping = ex->stop, was_failing = ex->failing;
            pthread_mutex_unlock(&ex->lock);
            /* At shutdown a collector that just failed gets no more tries. */
            if (stopping && was_failing) break;
            int status = 0;
            char err[sizeof ex->st.last_error];
            int rc = c ? attempt(ex, c, send, stopping && ex->timeout_ms > SHUTDOWN_TIMEOUT_MS ? SHUTDOWN_TIMEOUT_MS
                                                                                          : ex->timeout_ms,
                                 &status, err, sizeof err)
                       : -1;
            if (!c) snprintf(err, sizeof err, "libcurl could not start");
            pthread_mutex_lock(&ex->lock);
            ex->st.last_status = status;
            ex->st.last_attempt_at = hr_clock_now();
            snprintf(ex->st.last_error, sizeof ex->st.last_error, "%s", err);
            if (rc == 1) {
                delivered = 1;
                ex->st.last_ok_at = ex->st.last_attempt_at;
                if (ex->failing) hr_log(HR_LOG_INFO, ex->logger, "exporter %s: %s accepts exports again", ex->name, ex->url);
                ex->failing = 0;
                pthread_mutex_unlock(&ex->lock);
                break;
            }
            if (!ex->failing)
                hr_log(HR_LOG_WARN, ex->logger, "exporter %s: POST %s failed (%s); %s", ex->name, ex->url, err,
                       rc == 0 ? "retrying with backoff; requests are not affected"
                               : "not retryable: check the endpoint and headers");
            ex->failing = 1;
            if (rc < 0 || n >= ex->max_attempts || ex->stop) {
                pthread_mutex_unlock(&ex->lock);
                break;
            }
            ex->st.retries++;
            struct timespec ts;
            deadline_in(&ts, retry_delay_ms(ex, n));
            while (!ex->stop && pthread_cond_timedwait(&ex->cond, &ex->lock, &ts) != ETIMEDOUT) {
            }
            pthread_mutex_unlock(&ex->lock);
        }
        pthread_mutex_lock(&ex->lock);
        if (delivered) {
            ex->st.ok++;
            ex->st.items_ok += b->items;
        } else {
            ex->st.failed++;
            ex->st.items_failed += b->items;
        }
        b->len = 0; /* the slot keeps its buffer for the next body */
        ex->head = (ex->head + 1) % ex->queue_max;
        ex->len--;
    }
    pthread_mutex_unlock(&ex->lock);
    if (c) curl_easy_cleanup(c);
    return NULL;
}

/* ------------------------------------------------------------------- API */

static void exporter_free(struct hr_exporter *ex)
{
    if (!ex) return;
    for (size_t i = 0; ex->ring && i < ex->queue_max; i++) free(ex->ring[i].data);
    free(ex->ring);
    free(ex->gz.data);
    curl_slist_free_all(ex->headers);
    free(ex->name);
    free(ex->url);
    free(ex->logger);
    free(ex);
}

static int valid_name(const char *s)
{
    if (!s || !*s || strlen(s) > 64) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_')) return 0;
    return 1;
}

static int valid_header(const char *h)
{
    const char *colon = strchr(h, ':');
    if (!colon || colon == h) return 0;
    for (const char *p = h; *p; p++)
        if (*p == '\r' || *p == '\n') return 0;
    return 1;
}

struct hr_exporter *hr_exporter_new(struct hr_instance *self, const struct hr_export_conf *conf)
{
    const char *logger = self ? self->logger : "headroom.exporter";
    if (!conf || conf->struct_size < offsetof(struct hr_export_conf, backoff_ms) + sizeof conf->backoff_ms) {
        HR_ERROR(logger, "exporter_new: struct hr_export_conf too small (built against another ABI?)");
        return NULL;
    }
    if (!valid_name(conf->name)) {
        HR_ERROR(logger, "exporter_new: name '%s' must match [a-z0-9_]+", conf->name ? conf->name : "");
        return NULL;
    }
    if (!conf->url || (strncmp(conf->url, "http://", 7) && strncmp(conf->url, "https://", 8))) {
        HR_ERROR(logger, "exporter %s: URL '%s' must start with http:// or https://", conf->name,
                 conf->url ? conf->url : "");
        return NULL;
    }
    struct hr_exporter *ex = calloc(1, sizeof *ex);
    if (!ex) return NULL;
    ex->name = strdup(conf->name);
    ex->url = strdup(conf->url);
    ex->logger = strdup(logger);
    ex->gzip = conf->gzip;
    ex->timeout_ms = conf->timeout_ms ? conf->timeout_ms : 10000;
    ex->queue_max = conf->queue_max ? conf->queue_max : 16;
    ex->max_attempts = conf->max_attempts ? conf->max_attempts : 6;
    ex->backoff_ms = conf->backoff_ms ? conf->backoff_ms : 1000;
    ex->ring = calloc(ex->queue_max, sizeof *ex->ring);
    ex->st.struct_size = sizeof ex->st;
    ex->retry_after_ms = -1;
    if (getrandom(&ex->rng, sizeof ex->rng, 0) != sizeof ex->rng || !ex->rng) ex->rng = 0x9e3779b97f4a7c15ull;
    char line[512];
    snprintf(line, sizeof line, "Content-Type: %s",
             conf->content_type && *conf->content_type ? conf->content_type : "application/octet-stream");
    struct curl_slist *h = curl_slist_append(NULL, line);
    if (h) h = curl_slist_append(h, "Expect:");
    for (size_t i = 0; h && conf->headers && conf->headers[i]; i++) {
        if (!valid_header(conf->headers[i])) {
            /* Never echo the header: it may carry a secret. */
            HR_ERROR(logger, "exporter %s: header #%zu is not 'Name: value' on one line", conf->name, i + 1);
            curl_slist_free_all(h);
            h = NULL;
            ex->headers = NULL;
            exporter_free(ex);
            return NULL;
        }
        h = curl_slist_append(h, conf->headers[i]);
    }
    ex->headers = h;
    if (!ex->name || !ex->url || !ex->logger || !ex->ring || !h) {
        exporter_free(ex);
        return NULL;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&ex->cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&ex->lock, NULL);
    if (pthread_create(&ex->thread, NULL, export_thread, ex)) {
        pthread_mutex_destroy(&ex->lock);
        pthread_cond_destroy(&ex->cond);
        exporter_free(ex);
        return NULL;
    }
    pthread_mutex_lock(&list_lock);
    ex->next = exporters;
    exporters = ex;
    int reg = !metrics_registered;
    metrics_registered = 1;
    pthread_mutex_unlock(&list_lock);
    if (reg) hr_host_table.register_metrics(self, export_metrics, NULL);
    return ex;
}

int hr_export_post(struct hr_exporter *ex, const void *body, size_t len, uint64_t items)
{
    if (!ex || (!body && len)) return HR_EINVAL;
    pthread_mutex_lock(&ex->lock);
    if (ex->len == ex->queue_max || ex->stop) {
        ex->st.dropped++;
        pthread_mutex_unlock(&ex->lock);
        return HR_EAGAIN;
    }
    /* The free slot is not the one in flight (that is the head while len > 0). */
    struct body *b = &ex->ring[(ex->head + ex->len) % ex->queue_max];
    if (b->cap < len || !b->data) {
        unsigned char *d = realloc(b->data, len ? len : 1);
        if (!d) {
            pthread_mutex_unlock(&ex->lock);
            return HR_ENOMEM;
        }
        b->data = d;
        b->cap = len ? len : 1;
    }
    if (len) memcpy(b->data, body, len);
    b->len = len;
    b->items = items;
    b->gzipped = 0;
    ex->len++;
    pthread_cond_signal(&ex->cond);
    pthread_mutex_unlock(&ex->lock);
    return HR_OK;
}

void hr_export_stats(struct hr_exporter *ex, struct hr_export_stats *out)
{
    uint32_t size = out->struct_size ? out->struct_size : (uint32_t)sizeof *out;
    struct hr_export_stats st;
    pthread_mutex_lock(&ex->lock);
    st = ex->st;
    st.queued = ex->len;
    pthread_mutex_unlock(&ex->lock);
    st.struct_size = size < sizeof st ? size : (uint32_t)sizeof st;
    memcpy(out, &st, st.struct_size);
}

void hr_exporters_shutdown(void)
{
    pthread_mutex_lock(&list_lock);
    struct hr_exporter *list = exporters;
    exporters = NULL;
    pthread_mutex_unlock(&list_lock);
    for (struct hr_exporter *e = list; e; e = e->next) {
        pthread_mutex_lock(&e->lock);
        e->stop = 1;
        pthread_cond_broadcast(&e->cond);
        pthread_mutex_unlock(&e->lock);
    }
    while (list) {
        struct hr_exporter *e = list;
        list = e->next;
        pthread_join(e->thread, NULL);
        pthread_mutex_destroy(&e->lock);
        pthread_cond_destroy(&e->cond);
        exporter_free(e);
    }
    pthread_mutex_lock(&list_lock);
    metrics_registered = 0;
    pthread_mutex_unlock(&list_lock);
}
