/* proxy.c — the /v1/... routes: find the wire format, parse and compress
 * what an adapter owns, and forward it (upstream.c); a body nothing reads is
 * forwarded while it arrives (cut-through, hr_proxy_handle_early). The
 * answer is relayed by relay.c, counted by accounting.c; admission.c may
 * refuse or serve first. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <event2/buffer.h>
#include "asan.h"
#include "body_codec.h"
#include "fleet.h"
#include "guard.h"
#include "h1_parse.h"
#include "json_dump.h"
#include "json_get.h"
#include "json_load.h"
#include "json_scan.h"
#include "log.h"
#include "proxy.h"
#include "ratelimit.h"
#include "retrieve_tool.h"
#include "stats.h"
#include "telemetry.h"
#include "upstream.h"

/* Finished requests a worker keeps for reuse, as upstream_h1.c keeps
 * transfers; none under AddressSanitizer, which should see every request
 * freed. */
#define MAX_SPARE (HR_ASAN ? 0 : 8)

/* Hop-by-hop headers (and those headroomd sets itself), by length first: a
 * header name meets at most two candidates instead of a list of fourteen. */
int hr_proxy_is_hop_by_hop(const char *name)
{
    switch (strlen(name)) {
    case 2: return !strcasecmp(name, "te");
    case 4: return !strcasecmp(name, "host");
    case 6: return !strcasecmp(name, "expect");
    case 7: return !strcasecmp(name, "trailer") || !strcasecmp(name, "upgrade");
    case 8: return !strcasecmp(name, "trailers");
    case 10: return !strcasecmp(name, "connection") || !strcasecmp(name, "keep-alive");
    case 14: return !strcasecmp(name, "content-length");
    case 15: return !strcasecmp(name, "accept-encoding");
    case 16: return !strcasecmp(name, "proxy-connection");
    case 17: return !strcasecmp(name, "transfer-encoding");
    case 18: return !strcasecmp(name, "proxy-authenticate");
    case 19: return !strcasecmp(name, "proxy-authorization");
    default: return 0;
    }
}

struct hr_transfer_opts hr_proxy_transfer_opts(const struct proxy_req *p)
{
    const struct hr_config *cfg = p->w->d->cfg;
    return (struct hr_transfer_opts){cfg->upstream_connect_timeout_ms, cfg->upstream_timeout_s,
                                     cfg->upstream_idle_timeout_s, cfg->max_header_bytes, 0};
}

void hr_proxy_free(struct proxy_req *p)
{
    hr_relay_detach_client(p);
    if (p->fleet_wait) hr_fleet_cancel(p);
    if (p->t) hr_transfer_abort(p->t);
    p->t = NULL;
    if (p->finish_deferred) { /* accounting.c frees it after its late count */
        p->free_requested = 1;
        return;
    }
    hr_acct_count_drop(p); /* before the body and figures its counts use are freed */
    if (p->sse) hr_sse_parser_free(p->sse);
    if (p->body && !p->spare_body && p->w->n_spare < MAX_SPARE && !evbuffer_get_length(p->body))
        p->spare_body = p->body; /* sent (its chains moved out): kept for the next answer */
    else if (p->body)
        evbuffer_free(p->body);
    p->body = NULL;
    hr_pipeline_result_free(&p->pr);
    json_decref(p->sent_body);
    hr_json_spellings_sweep(); /* the body's client spellings, if it had any: not kept until the next load */
    free(p->url);
    free(p->up_body);
    free(p->logged_body);
    free(p->count_body);
    free(p->up_headers);
    if (p->live_prev) p->live_prev->live_next = p->live_next;
    else p->w->live = p->live_next;
    if (p->live_next) p->live_next->live_prev = p->live_prev;
    p->w->inflight--;
    free(p->model);
    free(p->path);
    if (p->w->n_spare < MAX_SPARE) { /* kept for the worker's next request */
        p->live_next = p->w->spare;
        p->w->spare = p;
        p->w->n_spare++;
        return;
    }
    if (p->spare_body) evbuffer_free(p->spare_body);
    free(p);
}

/* A zeroed request, from the worker's spares when there is one: a
 * proxy_req (~1.3 KB) is past malloc's per-thread cache, and calloc'ing
 * one cost ~1.7 k instructions. It keeps its empty answer buffer: an
 * evbuffer_new and its free cost ~800 more. */
static struct proxy_req *req_new(struct hr_worker *w)
{
    struct proxy_req *p = w->spare;
    if (!p) return calloc(1, sizeof *p);
    w->spare = p->live_next;
    w->n_spare--;
    struct evbuffer *spare_body = p->spare_body;
    memset(p, 0, sizeof *p);
    p->spare_body = spare_body;
    return p;
}

void hr_proxy_free_spares(struct hr_worker *w)
{
    while (w->spare) {
        struct proxy_req *p = w->spare;
        w->spare = p->live_next;
        if (p->spare_body) evbuffer_free(p->spare_body);
        free(p);
    }
    w->n_spare = 0;
}

static int valid_stack(const char *s)
{
    if (!s || !islower((unsigned char)s[0])) return 0;
    size_t n = 1;
    for (; s[n]; n++)
        if (!(islower((unsigned char)s[n]) || isdigit((unsigned char)s[n]) || s[n] == '_')) return 0;
    return n <= HR_MAX_STACK_LEN;
}

/* RFC 9110 7.6.1: a header the client lists in Connection (any of them)
 * is hop-by-hop too. */
static int named_in_connection(const struct hr_req *in, const char *name)
{
    for (size_t i = 0; i < hr_req_n_headers(in); i++) {
        const char *key, *value;
        hr_req_header_at(in, i, &key, &value);
        if (!strcasecmp(key, "connection") && hr_h1_list_has(value, name, 0)) return 1;
    }
    return 0;
}

/* Names and values hold no CR or LF: the request parser refuses both
 * inside a header line. */
static int forwarded(const struct hr_req *in, int has_connection, const char *key, const char *foreign_key)
{
    /* Sec-WebSocket-Extensions: no permessage-deflate, so the relay reads
     * frames as sent (ws_relay.c) */
    return !(hr_proxy_is_hop_by_hop(key) || !strncasecmp(key, "x-headroom-", 11) ||
             !strcasecmp(key, "sec-websocket-extensions") ||
             (foreign_key && !strcasecmp(key, foreign_key)) || (has_connection && named_in_connection(in, key)));
}

/* Headers forwarded upstream, as one block of "Name: value\r\n" lines: the
 * client's, minus hop-by-hop, x-headroom-* and a credential the provider
 * does not take (`foreign_key`, or NULL). */
static char *upstream_headers(const struct hr_req *in, int body_rewritten, const char *foreign_key)
{
    static const char json_type[] = "Content-Type: application/json\r\n";
    size_t need = sizeof json_type, n = hr_req_n_headers(in);
    int has_connection = hr_req_header(in, "connection") != NULL;
    unsigned char few[64], *keep = n <= sizeof few ? few : malloc(n); /* each header decided once */
    if (!keep) return NULL;
    const char *key, *value;
    for (size_t i = 0; i < n; i++) {
        hr_req_header_at(in, i, &key, &value);
        keep[i] = (unsigned char)forwarded(in, has_connection, key, foreign_key);
        if (keep[i]) need += strlen(key) + strlen(value) + 4;
    }
    char *block = malloc(need), *w = block;
    if (!block) {
        if (keep != few) free(keep);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        hr_req_header_at(in, i, &key, &value);
        if (!keep[i]) continue;
        size_t k = strlen(key), v = strlen(value);
        memcpy(w, key, k);
        memcpy(w + k, ": ", 2);
        memcpy(w + k + 2, value, v);
        memcpy(w + k + 2 + v, "\r\n", 2);
        w += k + v + 4;
    }
    if (keep != few) free(keep);
    if (body_rewritten && !hr_req_header(in, "content-type")) {
        memcpy(w, json_type, sizeof json_type - 1);
        w += sizeof json_type - 1;
    }
    *w = 0;
    return block;
}

/* Parse and compress a request an adapter owns. Returns the body to forward
 * (malloc'd) or NULL with the client already answered. */
/* optimize no: nothing will change the body, so it is not parsed or counted
 * on the request path (the model name is skimmed for pricing); accounting.c
 * counts it when the request ends. The response cache and a token rate limit
 * need the figures up front: with either on, the body is read as usual. */
static int passthrough_unread_cfg(const struct hr_config *c)
{
    return c->no_optimize && !c->rate_limit_tpm && !hr_respcache_enabled();
}

static int passthrough_unread(const struct proxy_req *p) { return passthrough_unread_cfg(p->w->d->cfg); }

/* The model name, for pricing, from a body nothing else reads. */
static void skim_model(struct proxy_req *p, const char *body, size_t len)
{
    const char *v;
    size_t vlen;
    free(p->model);
    p->model = NULL;
    if (!hr_json_member_near(body, len, "model", &v, &vlen)) {
        p->model = strdup("");
        return;
    }
    /* A plain name is taken as it is; json_loadb costs ~2.5 k instructions
     * even for "gpt-4o-mini". */
    if (hr_json_plain_string(v, vlen)) {
        p->model = strndup(v + 1, vlen - 2);
        return;
    }
    json_t *model = json_loadb(v, vlen, JSON_DECODE_ANY, NULL);
    p->model = strdup(json_is_string(model) ? json_string_value(model) : "");
    json_decref(model);
}

/* `body` is the client's, taken from the request; 0 to forward it. */
static int passthrough_body(struct proxy_req *p, const char *body, size_t len)
{
    skim_model(p, body, len);
    p->count_late = 1;
    return hr_admit_rate(p, HR_TOKENS_ESTIMATE(len), 0);
}

const char *hr_proxy_count_text(const struct proxy_req *p, size_t *len)
{
    *len = p->count_body ? p->count_body_len : p->up_body_len;
    return p->count_body ? p->count_body : p->up_body;
}

char *hr_proxy_encode_body(const struct proxy_req *p, char *text, size_t *len)
{
    if (p->codec == HR_CODEC_IDENTITY) return text;
    char *enc;
    size_t enc_len;
    int rc = hr_codec_encode((enum hr_codec)p->codec, text, *len, &enc, &enc_len);
    free(text);
    if (rc) return NULL;
    *len = enc_len;
    return enc;
}

/* A body sent with Content-Encoding, decoded into *out (NULL when it came
 * as it is). Returns -1 with the client answered when it cannot be read. */
static int decode_body(struct proxy_req *p, const char *raw, size_t len, char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    const char *coding = hr_req_header(p->req, "content-encoding");
    p->codec = hr_codec_parse(coding);
    if (p->codec == HR_CODEC_IDENTITY) return 0;
    if ((*out = hr_fleet_take_decoded(p->req, out_len))) return 0; /* a fleet read it first (kept calls) */
    size_t max = p->w->d->cfg->max_body_bytes;
    char why[160], msg[400];
    int rc = hr_codec_decode((enum hr_codec)p->codec, raw, len, max, out, out_len, why, sizeof why);
    if (rc == HR_CODEC_OK) return 0;
    int status = 400;
    if (rc == HR_CODEC_ERR_UNSUPPORTED) {
        status = 415;
        snprintf(msg, sizeof msg, "Content-Encoding '%s' is not one headroomd can read: send the body as it is, or "
                 "with gzip, deflate or zstd", coding);
    } else if (rc == HR_CODEC_ERR_TOO_LARGE) {
        status = 413;
        snprintf(msg, sizeof msg, "request body (Content-Encoding %s) decodes to more than max_body_size (%zu bytes): "
                 "raise max_body_size in headroom.conf", coding, max);
    } else if (rc == HR_CODEC_ERR_NOMEM) {
        status = 500;
        snprintf(msg, sizeof msg, "headroomd ran out of memory decoding the request body");
    } else {
        snprintf(msg, sizeof msg, "request body is not valid %s data (Content-Encoding): %s", coding, why);
    }
    hr_acct_send_error(p, status, status == 500 ? HR_API_ERR_INTERNAL : HR_API_ERR_INVALID_REQUEST, msg);
    hr_acct_finish(p, status, status == 500, "undecodable body");
    return -1;
}

static char *prepare_llm_body(struct proxy_req *p, const char *raw, size_t len, size_t *out_len)
{
    struct hr_daemon *d = p->w->d;
    p->body_in_len = len;
    json_error_t jerr;
    json_t *body = hr_fleet_take_body(p->req); /* already parsed while waiting for shared state */
    if (!body) body = hr_json_load_strict(raw, len, &jerr);
    if (!body || !json_is_object(body)) {
        char msg[300];
        if (body) snprintf(msg, sizeof msg, "request body must be a JSON object");
        else if (!strncmp(jerr.text, "duplicate object key", 20))
            snprintf(msg, sizeof msg, "request body repeats a key within one object (%s): send each key once", jerr.text);
        else snprintf(msg, sizeof msg, "request body is not valid JSON: %s (line %d, column %d)", jerr.text,
                      jerr.line, jerr.column);
        json_decref(body);
        hr_acct_send_error(p, 400, HR_API_ERR_INVALID_REQUEST, msg);
        hr_acct_finish(p, 400, 0, "malformed JSON");
        return NULL;
    }
    const char *model = json_string_value(hr_json_get(body, "model"));
    p->model = strdup(model ? model : "");
    if (hr_admit_from_cache(p, body) || hr_admit_rate(p, HR_TOKENS_ESTIMATE(len), 0)) {
        json_decref(body);
        return NULL;
    }
    const char *session = hr_req_header(p->req, "x-headroom-session");
    /* The request's total (the strings no stage looks at, and the rest of
     * every tool output no stage needed counted) is counted once the body is
     * on its way (hr_proxy_handle), unless a token rate limit needs it
     * before. */
    struct hr_pipeline_opts popts = d->popts;
    popts.defer_count = 1;
    hr_pipeline_run(d->plugins.transforms, d->plugins.n_transforms, &popts, p->api, body, p->model, p->stack,
                    session, &p->pr);
    p->pipeline_ran = 1;
    if (hr_ratelimit_enabled()) hr_pipeline_count_finish(&p->pr);
    /* Offer headroom_retrieve when rows were dropped and we can answer the
     * call ourselves (a non-streamed answer; streams keep the marker's hash
     * and GET /v1/retrieve/<hash>). */
    /* A body with no tool output that no stage edited holds no marker. */
    int offer = (p->pr.n_found || p->pr.changed) && !json_is_true(hr_json_get(body, "stream")) &&
                hr_retrieve_needed(p->api, body);
    if (offer && hr_retrieve_tool_add(p->api, body) > 0) {
        json_t *tools = hr_json_get(body, hr_retrieve_tools_key(p->api, body));
        uint64_t tool_tokens = hr_json_tokens(p->model, json_array_get(tools, json_array_size(tools) - 1));
        hr_pipeline_host_added(&p->pr, body, tool_tokens); /* the client did not send it */
        hr_acct_charge_sent(p, tool_tokens);
        p->pr.changed = 1;
        p->sent_body = json_incref(body);
    }
    /* A turn continuing from a stored answer whose headroom_retrieve calls
     * the client never got (retrieve_tool.c): their results go first. */
    uint64_t added_tokens;
    if (hr_retrieve_continue(p->api, body, p->model, p->request_id, &added_tokens) > 0) {
        hr_pipeline_host_added(&p->pr, body, added_tokens); /* the client did not send them */
        hr_acct_charge_sent(p, added_tokens);
        p->pr.changed = 1;
    }
    if (hr_admit_rate(p, p->pr.tokens_after, 1)) {
        json_decref(body);
        return NULL;
    }
    char *out;
    if (p->pr.changed) {
        out = hr_json_dump_compact(body, out_len); /* json_dumps(JSON_COMPACT)'s bytes */
        if (out) out = hr_proxy_encode_body(p, out, out_len); /* as the client encoded it, if it did */
    } else {
        out = NULL;
    }
    json_decref(body);
    if (!out) { /* unchanged: forward the client's bytes exactly, without a copy */
        out = hr_req_take_body(p->req, out_len);
        if (!out && !*out_len) out = strdup("");
    }
    if (!out) {
        hr_acct_send_error(p, 500, HR_API_ERR_INTERNAL, "headroomd ran out of memory preparing the request");
        hr_acct_finish(p, 500, 1, "out of memory");
    }
    return out;
}

/* "hr-<worker>-<n>" in hex, as snprintf "hr-%zx-%llx" would print it. */
static void request_id(char out[40], size_t worker, unsigned long long n)
{
    static const char hex[] = "0123456789abcdef";
    char d[16];
    int k;
    memcpy(out, "hr-", 3);
    out += 3;
    for (k = 0; k == 0 || worker; worker >>= 4) d[k++] = hex[worker & 15];
    while (k) *out++ = d[--k];
    *out++ = '-';
    for (k = 0; k == 0 || n; n >>= 4) d[k++] = hex[n & 15];
    while (k) *out++ = d[--k];
    *out = '\0';
}

static char *upstream_url(const struct hr_api *api, const struct hr_config *cfg, const struct hr_req *req,
                          const char *path, const char *uri);

struct proxy_req *hr_proxy_track(struct hr_worker *w, struct hr_req *req, const struct hr_api *api, int llm,
                                 const char *path)
{
    struct proxy_req *p = req_new(w);
    if (!p) return NULL;
    w->inflight++;
    p->live_next = w->live;
    if (w->live) w->live->live_prev = p;
    w->live = p;
    p->w = w;
    p->req = req;
    p->api = api;
    p->llm = llm;
    p->path = strdup(path);
    p->t_start = hr_monotonic_ms();
    request_id(p->request_id, w->index, ++w->next_request);
    return p;
}

/* A request the proxy refuses before tracking it, answered and counted as
 * every other request is: /stats, and a sink event (request log, metrics.db,
 * savings file), under the request id its answer names. */
static void refuse_counted(struct hr_worker *w, struct hr_req *req, const struct hr_api *api, const char *path,
                           int status, const char *message)
{
    char id[40];
    request_id(id, w->index, ++w->next_request);
    hr_req_add_header(req, "x-headroom-request-id", id);
    hr_send_api_error(req, api, status, HR_API_ERR_INVALID_REQUEST, message);
    hr_stats_count_rejected(status, 0, 0);
    hr_acct_refusal(w, id, api, path, NULL, status, message);
}

/* A WebSocket upgrade: relayed (ws_relay.c) on /v1/responses to an
 * upstream the native client reaches, unless `websocket no`; else refused
 * with 501 saying why (Codex CLI then falls back to HTTPS by itself).
 * Returns 1 when refused. */
static int refuse_websocket(struct hr_worker *w, struct hr_req *req, const struct hr_api *api, const char *method,
                            const char *path)
{
    const struct hr_config *cfg = w->d->cfg;
    char why[300];
    char *url = NULL;
    if (cfg->no_websocket) {
        snprintf(why, sizeof why, "headroomd does not relay WebSocket connections (websocket no in headroom.conf): "
                                  "send the request over HTTP(S)");
    } else if (strcmp(method, "GET") || !hr_api_for_websocket(path)) {
        snprintf(why, sizeof why, "headroomd relays WebSockets only where an API has a WebSocket mode (GET "
                                  "/v1/responses), not %s %s", method, path);
    } else if (!(url = upstream_url(api, cfg, req, path, hr_req_uri(req))) || !hr_transfer_streams_body(w->up, url)) {
        snprintf(why, sizeof why, "headroomd relays WebSockets only through its native upstream client, and this "
                                  "upstream needs libcurl (upstream_client curl, an HTTP proxy from the environment, "
                                  "or credentials in the URL): send the request over HTTP(S)");
    } else if (!hr_req_header(req, "sec-websocket-key")) {
        free(url);
        hr_guard_count(HR_REFUSE_BAD_REQUEST);
        refuse_counted(w, req, api, path, 400, "WebSocket upgrade without Sec-WebSocket-Key (RFC 6455 4.1)");
        return 1;
    } else {
        free(url);
        return 0;
    }
    free(url);
    hr_guard_count(HR_REFUSE_NOT_IMPLEMENTED);
    HR_DEBUG("headroom.proxy", "WebSocket upgrade to %s refused: %s", path, why);
    refuse_counted(w, req, api, path, 501, why);
    return 1;
}

/* The request tracked from here on, or NULL with the client answered
 * (a refused path, max_connections, budget). */
static struct proxy_req *proxy_begin(struct hr_worker *w, struct hr_req *req, const char *path)
{
    const char *method = hr_req_method(req);
    const struct hr_api *owner = hr_api_for_route(method, path);
    const struct hr_api *api = owner ? owner : hr_api_for_passthrough(path);
    const char *bad = hr_guard_path(hr_req_uri(req));
    if (bad) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s: headroomd forwards only plain paths under the provider's base URL", bad);
        hr_guard_count(HR_REFUSE_BAD_PATH);
        HR_DEBUG("headroom.proxy", "refused %s: %s", hr_req_uri(req), bad);
        refuse_counted(w, req, api, path, 400, msg);
        return NULL;
    }
    const char *upgrade = hr_req_header(req, "upgrade");
    int websocket = upgrade && hr_h1_list_has(upgrade, "websocket", 0);
    if (websocket && refuse_websocket(w, req, api, method, path)) return NULL;
    if (hr_admit_connection(w, req, api, method, path)) return NULL;
    struct proxy_req *p = hr_proxy_track(w, req, api, owner != NULL, path);
    if (!p) {
        hr_send_api_error(req, api, 500, HR_API_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    p->upgrade = websocket;
    double arrived = hr_fleet_arrived_ms(req); /* a request that waited for shared state counts from arrival */
    if (arrived > 0) p->t_start = arrived;
    const char *stack = hr_req_header(req, "x-headroom-stack");
    if (valid_stack(stack)) snprintf(p->stack, sizeof p->stack, "%s", stack);
    else if (!stack && hr_telemetry_default_stack()) /* HEADROOM_STACK: this process serves one stack */
        snprintf(p->stack, sizeof p->stack, "%s", hr_telemetry_default_stack());
    const char *traceparent = hr_req_header(req, "traceparent");
    if (traceparent && strlen(traceparent) < sizeof p->traceparent) snprintf(p->traceparent, sizeof p->traceparent, "%s", traceparent);
    return p;
}

/* base, path, query (malloc'd; NULL when out of memory). Codex CLI signed
 * in with ChatGPT sends its plan's requests with a ChatGPT-Account-ID
 * header: they go to chatgpt_api_url, whose paths have no /v1. */
static char *upstream_url(const struct hr_api *api, const struct hr_config *cfg, const struct hr_req *req,
                          const char *path, const char *uri)
{
    const char *base = hr_api_upstream_base(api, cfg, hr_req_header(req, "chatgpt-account-id") != NULL);
    if (base == cfg->chatgpt_url && !strncmp(path, "/v1/", 4)) path += 3;
    const char *query = strchr(uri, '?');
    size_t bl = strlen(base), pl = strlen(path), ql = query ? strlen(query) : 0;
    char *url = malloc(bl + pl + ql + 1);
    if (url) {
        memcpy(url, base, bl);
        memcpy(url + bl, path, pl);
        memcpy(url + bl + pl, query ? query : "", ql);
        url[bl + pl + ql] = '\0';
    }
    return url;
}

/* Start the upstream request with p->up_body (the whole body), or, cut
 * through, with the `have` bytes of `partial` in so far. Takes `url`. */
static void forward(struct proxy_req *p, char *url, const char *partial, size_t total, size_t have)
{
    struct hr_req *req = p->req;
    const char *method = hr_req_method(req);
    char *headers = upstream_headers(req, p->pr.changed, hr_api_foreign_credential(p->api));
    struct hr_transfer_opts opts = hr_proxy_transfer_opts(p);
    if (p->upgrade && headers) { /* the client's Sec-WebSocket-Key goes as it came: its 101 is relayed */
        static const char up[] = "Connection: Upgrade\r\nUpgrade: websocket\r\n";
        size_t hl = strlen(headers);
        char *h = realloc(headers, hl + sizeof up);
        if (h) memcpy(h + hl, up, sizeof up);
        headers = h;
        opts.upgrade = 1;
    }
    struct hr_upstream *up = p->w->up;
    hr_relay_watch_client(p);
    p->t_forward = hr_monotonic_ms();
    if (!url) p->t = NULL;
    else if (partial)
        p->t = hr_transfer_start_partial(up, method, url, headers, partial, total, have, &opts, &hr_relay_cbs, p);
    else p->t = hr_transfer_start(up, method, url, headers, p->up_body, p->up_body_len, &opts, &hr_relay_cbs, p);
    /* Sent (or connecting): count while the upstream works. */
    hr_acct_count_rest(p);
    if (p->sent_body) { /* kept for headroom_retrieve follow-ups */
        p->url = url;
        p->up_headers = headers;
    } else {
        free(headers);
        free(url);
    }
    if (!p->t) {
        hr_relay_detach_client(p);
        hr_send_api_error(req, p->api, 500, HR_API_ERR_INTERNAL, "headroomd could not start the upstream request");
        hr_acct_finish(p, 500, 1, "transfer setup failed");
        hr_proxy_free(p);
    } else if (!partial) {
        hr_acct_count_start(p);
    }
}

void hr_proxy_handle(struct hr_worker *w, struct hr_req *req, const char *path)
{
    struct hr_daemon *d = w->d;
    struct proxy_req *p = proxy_begin(w, req, path);
    if (!p) return;
    size_t raw_len;
    const char *raw = hr_req_body(req, &raw_len);
    char *decoded = NULL;
    size_t decoded_len = 0;
    if (p->llm && decode_body(p, raw, raw_len, &decoded, &decoded_len)) {
        hr_proxy_free(p);
        return;
    }
    if (decoded) { /* what is read; the client's bytes still go on when nothing changes */
        raw = decoded;
        raw_len = decoded_len;
    }
    if (p->llm && d->cfg->log_messages && (p->logged_body = malloc(raw_len + 1))) {
        memcpy(p->logged_body, raw, raw_len + 1);
        p->logged_body_len = raw_len;
    }
    char *body = NULL;
    size_t body_len = raw_len;
    if (p->llm && !passthrough_unread(p)) {
        body = prepare_llm_body(p, raw, raw_len, &body_len);
        free(decoded);
        if (!body) {
            hr_proxy_free(p);
            return;
        }
    } else {
        /* Forwarded as it came: the request's own buffer, no copy. */
        body = hr_req_take_body(req, &body_len);
        if (decoded) { /* read from its decoded copy */
            p->count_body = decoded;
            p->count_body_len = raw_len;
        }
        const char *text = decoded ? decoded : body ? body : "";
        if (p->llm && passthrough_body(p, text, decoded ? raw_len : body_len)) {
            free(body);
            hr_proxy_free(p);
            return;
        }
    }
    p->up_body = body;
    p->up_body_len = body_len;
    forward(p, upstream_url(p->api, d->cfg, req, path, hr_req_uri(req)), NULL, 0, 0);
}

/* Cut-through: more of the body is in; sent on at once. Once it is all in,
 * the request owns it (up_body: counted late, logged) while the upstream
 * client goes on sending from the same buffer. */
static void body_arrived(struct hr_req *req, void *arg, int done)
{
    struct proxy_req *p = arg;
    if (done < 0) {
        char msg[200];
        snprintf(msg, sizeof msg, "request body not received within client_timeout (%d s); raise client_timeout in headroom.conf",
                 p->w->d->cfg->client_timeout_s);
        if (p->t) hr_transfer_abort(p->t);
        p->t = NULL;
        hr_relay_detach_client(p);
        hr_acct_send_error(p, 408, HR_API_ERR_INVALID_REQUEST, msg);
        hr_acct_finish(p, 408, 1, "request body timed out");
        hr_proxy_free(p);
        return;
    }
    size_t have, total;
    hr_req_body_so_far(req, &have, &total);
    if (p->t) hr_transfer_body_more(p->t, have);
    if (!done) return;
    p->up_body = hr_req_take_body(req, &p->up_body_len);
    if (!p->llm || !p->up_body) return;
    /* Already on its way as sent: an encoded body is decoded only to be
     * read (model, late count); one that cannot be is counted as it is. */
    p->codec = hr_codec_parse(hr_req_header(req, "content-encoding"));
    char why[160];
    if (p->codec != HR_CODEC_IDENTITY &&
        hr_codec_decode((enum hr_codec)p->codec, p->up_body, p->up_body_len, p->w->d->cfg->max_body_bytes,
                        &p->count_body, &p->count_body_len, why, sizeof why))
        HR_WARN("headroom.proxy", "%s: its %s body could not be decoded to be counted: %s", p->request_id,
                hr_req_header(req, "content-encoding"), why[0] ? why : "unsupported or too large");
    size_t text_len;
    const char *text = hr_proxy_count_text(p, &text_len);
    skim_model(p, text, text_len);
    if (p->w->d->cfg->log_messages && (p->logged_body = malloc(text_len + 1))) {
        memcpy(p->logged_body, text, text_len + 1);
        p->logged_body_len = text_len;
    }
    hr_acct_count_start(p);
}

int hr_proxy_handle_early(struct hr_worker *w, struct hr_req *req, const char *path)
{
    const struct hr_config *cfg = w->d->cfg;
    const char *uri = hr_req_uri(req);
    const struct hr_api *owner = hr_api_for_route(hr_req_method(req), path);
    /* Only what nothing reads before forwarding; anything refused here is
     * refused later, whole, as without cut-through. */
    if (cfg->no_cut_through || hr_fleet_enabled() || (owner && !passthrough_unread_cfg(cfg)) || hr_guard_path(uri))
        return 0;
    const struct hr_api *api = owner ? owner : hr_api_for_passthrough(path);
    char *url = upstream_url(api, cfg, req, path, uri);
    if (!url || !hr_transfer_streams_body(w->up, url)) { /* libcurl's: buffered */
        free(url);
        return 0;
    }
    struct proxy_req *p = proxy_begin(w, req, path);
    if (!p) {
        free(url);
        return 1;
    }
    size_t have, total;
    const char *buf = hr_req_body_so_far(req, &have, &total);
    if (p->llm) {
        p->count_late = 1;
        if (hr_admit_rate(p, HR_TOKENS_ESTIMATE(total), 0)) {
            free(url);
            hr_proxy_free(p);
            return 1;
        }
    }
    hr_req_on_body(req, body_arrived, p);
    forward(p, url, buf, total, have);
    return 1;
}
