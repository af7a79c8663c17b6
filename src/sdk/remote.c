/* remote.c — attached clients: one blocking libcurl call to the daemon per
 * API call (the SDK is not on any request path). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>
#include "sdk.h"
#include "json_load.h"

struct buf {
    char *p;
    size_t n, cap;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct buf *b = ud;
    size_t add = size * nmemb;
    if (b->n + add + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + add + 1) cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) return 0;
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, ptr, add);
    b->n += add;
    b->p[b->n] = '\0';
    return add;
}

static void curl_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

/* The Bearer token of a call to `path`: hr_client_set_token's, else that of
 * the config the client was attached with (read as headroomd reads it, so
 * HEADROOM_STATS_TOKEN / HEADROOM_API_TOKEN win over the file) for the
 * endpoints it guards: the daemon of that config wants it there. */
static const char *call_token(const hr_client *c, const char *path)
{
    const char *t = c->token;
    if (!t && c->cfg_file) {
        if (!strncmp(path, "/stats", 6)) t = c->cfg.stats_token;
        else if (!strncmp(path, "/v1/compress", 12) || !strncmp(path, "/v1/retrieve", 12)) t = c->cfg.api_token;
    }
    return t && *t ? t : NULL;
}

int hr_sdk_http(const hr_client *c, const char *method, const char *path, const char *body, size_t len,
                struct hr_sdk_answer *a)
{
    memset(a, 0, sizeof *a);
    static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
    pthread_once(&curl_once, curl_init);
    CURL *h = curl_easy_init();
    if (!h) return hr_sdk_fail(HEADROOM_ENOMEM, "cannot start libcurl");
    char *url = NULL;
    if (asprintf(&url, "%s%s", c->url, path) < 0) {
        curl_easy_cleanup(h);
        return hr_sdk_fail(HEADROOM_ENOMEM, "out of memory");
    }
    struct curl_slist *hdrs = NULL;
    char auth[1024];
    const char *token = call_token(c, path);
    if (token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
        hdrs = curl_slist_append(hdrs, auth);
    }
    struct buf b = {0};
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms > 0 ? c->timeout_ms : 120000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (!strcmp(method, "POST")) {
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    if (hdrs) curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    CURLcode rc = curl_easy_perform(h);
    int ret = HEADROOM_OK;
    if (rc != CURLE_OK) {
        ret = hr_sdk_fail(HEADROOM_ENET, "cannot reach headroomd at %s: %s (is it running? start it with "
                          "'headroomd -c headroom.conf', or pass the right --url)", url, curl_easy_strerror(rc));
        free(b.p);
    } else {
        char *ct = NULL;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &a->status);
        curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct);
        snprintf(a->ctype, sizeof a->ctype, "%s", ct ? ct : "");
        hr_sdk_set_http_status((int)a->status);
        if (!b.p) b.p = calloc(1, 1);
        a->body = b.p;
        a->len = b.n;
    }
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    free(url);
    return ret;
}

const char *hr_sdk_error_message(const json_t *v)
{
    return json_string_value(json_object_get(json_object_get(v, "error"), "message"));
}

int hr_sdk_not_headroomd(const hr_client *c, const char *method, const char *path, const struct hr_sdk_answer *a,
                         const char *what)
{
    int plen = (int)strcspn(path, "?");
    hr_sdk_set_http_status(0); /* no headroomd answered */
    /* 502/503/504 without headroomd's JSON is a gateway's answer (nginx,
     * Caddy, a load balancer) about what is behind it: the daemon there is
     * down or not answering, as unreachable as a refused connection (the
     * CLI's exit 3), not a wrong address. */
    if (a->status == 502 || a->status == 503 || a->status == 504)
        return hr_sdk_fail(HEADROOM_ENET, "a proxy at %s answered %s %.*s with HTTP %ld %s (%s%s%s), not headroomd: "
                           "the headroomd behind it may be down or not answering; check it where it runs (is it "
                           "started? its /health), or the proxy's upstream address", c->url, method, plen, path,
                           a->status, a->status == 502 ? "Bad Gateway" : a->status == 503 ? "Service Unavailable"
                           : "Gateway Timeout", *a->ctype ? a->ctype : "no Content-Type", what ? ": " : "",
                           what ? what : "");
    return hr_sdk_fail(HEADROOM_EINVAL, "the server at %s is not headroomd (or a proxy in front of it answered for "
                       "it): %s %.*s got HTTP %ld (%s%s%s), not headroomd's JSON; check the address (--url, "
                       "$HEADROOM_URL, or the config's host and port)", c->url, method, plen, path, a->status,
                       *a->ctype ? a->ctype : "no Content-Type", what ? ": " : "", what ? what : "");
}

json_t *hr_sdk_get_json(const hr_client *c, const char *path, const char *key)
{
    struct hr_sdk_answer a;
    if (hr_sdk_http(c, "GET", path, NULL, 0, &a)) return NULL;
    json_t *v = json_loadb(a.body, a.len, 0, NULL);
    const char *msg = hr_sdk_error_message(v);
    if (a.status == 200 && json_is_object(json_object_get(v, key))) {
        /* headroomd's answer */
    } else if (a.status != 200 && msg) {
        hr_sdk_fail(HEADROOM_ENET, "headroomd at %s answered GET %s with HTTP %ld: %.300s", c->url, path, a.status, msg);
        json_decref(v);
        v = NULL;
    } else {
        hr_sdk_not_headroomd(c, "GET", path, &a, v ? "JSON without headroomd's fields" : NULL);
        json_decref(v);
        v = NULL;
    }
    free(a.body);
    return v;
}
