/* accounting.c — one request's figures: tokens before/sent/saved (what the
 * pipeline measured plus what headroomd itself added to the request), the
 * provider's usage over every upstream round, the price, and the one event
 * that carries them to /stats and the sinks. Headers, the stream's closing
 * comment and the event all read the same values from here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/event.h>
#include "cost.h"
#include "http_server.h"
#include "json_load.h"
#include "log.h"
#include "numfmt.h"
#include "par.h"
#include "proxy.h"
#include "session_floor.h"
#include "sinks.h"
#include "stats.h"

#define LOGGER "headroom.proxy"

void hr_acct_charge_sent(struct proxy_req *p, uint64_t tokens)
{
    hr_acct_settle(p);
    hr_pipeline_charge_sent(&p->pr, tokens);
}

/* The rule for every surface (doc/stats.md): a saving is credited only when
 * the provider answered the compressed request with a 2xx — it billed the
 * smaller request. A stream that broke after its 200 counts: the provider
 * billed what it sent. An answer that failed before any of it reached the
 * client (reset mid-body, over max_response_size) does not: the client got
 * headroomd's 502 and sends the request again. */
static int credited(const struct proxy_req *p, int failed)
{
    return p->llm && (p->pipeline_ran || p->counted_late) && !p->cached && p->t_first_byte > 0 && p->status >= 200 &&
           p->status < 300 && !(failed && !p->reply_started);
}

/* Token counts and provider usage of an LLM request (all rounds); failed:
 * the request ends failed (hr_acct_finish). */
static void fill_figures(const struct proxy_req *p, struct hr_event *ev, int failed)
{
    ev->credited = credited(p, failed);
    ev->tokens_input = p->pr.tokens_before;
    ev->tokens_sent = p->pr.tokens_after;
    ev->tokens_saved = ev->credited ? p->pr.tokens_before - p->pr.tokens_after : 0;
    struct hr_usage u = p->earlier_usage;
    hr_usage_add(&u, &p->usage);
    ev->tokens_output = u.output_tokens;
    ev->reasoning_tokens = u.reasoning_tokens;
    ev->provider_input_tokens = u.input_tokens;
    ev->cache_read_tokens = u.cache_read_tokens;
    ev->cache_write_tokens = u.cache_write_tokens;
    ev->cache_write_5m_tokens = u.cache_write_5m_tokens;
    ev->cache_write_1h_tokens = u.cache_write_1h_tokens;
}

static int usage_seen(const struct proxy_req *p) { return p->usage.seen || p->earlier_usage.seen; }

/* What the request costs so far (headers and stream comment; the event
 * itself is priced and accounted once, in hr_acct_finish). */
static void price_so_far(const struct proxy_req *p, struct hr_event *ev)
{
    *ev = (struct hr_event){.struct_size = sizeof *ev, .model = p->model ? p->model : "", .status = (int)p->status};
    fill_figures(p, ev, 0);
    hr_cost_price_event(ev, usage_seen(p), NULL);
}

double hr_acct_cost_so_far(const struct proxy_req *p)
{
    struct hr_event ev;
    price_so_far(p, &ev);
    return ev.cost_usd;
}

/* A forwarded body this long is counted only once the stream's last events
 * are written (about 0.2 ms of counting, several writes' cost), and by a
 * compression helper while the upstream works when there is one. */
#define LONG_COUNT_BYTES (32u * 1024u)

/* Passthrough: is what it counts LONG_COUNT_BYTES or more? */
static int long_count(const struct proxy_req *p)
{
    size_t len;
    hr_proxy_count_text(p, &len);
    return len >= LONG_COUNT_BYTES;
}

/* Passthrough's count of what it forwarded: the same count the pipeline
 * makes, with no stage to run. It reads only the forwarded bytes and
 * copies of the names, and writes only its own result, so a compression
 * helper can make it while the upstream works (hr_acct_count_start). */
struct late_job {
    struct hr_par_task task;
    const struct hr_pipeline_opts *popts; /* the daemon's, fixed for its life */
    const struct hr_api *api;
    const char *text;                     /* p->count_body or p->up_body: freed only after the join */
    size_t len;
    char *model;
    char stack[HR_MAX_STACK_LEN + 1];
    struct hr_pipeline_result pr;
    int counted;
};

static void late_job_run(void *arg)
{
    struct late_job *j = arg;
    json_t *body = hr_json_load(j->text, j->len, NULL);
    if (json_is_object(body)) {
        hr_pipeline_run(NULL, 0, j->popts, j->api, body, j->model, j->stack, NULL, &j->pr);
        j->counted = 1;
    }
    json_decref(body);
}

static struct late_job *late_job_new(struct proxy_req *p)
{
    struct late_job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->popts = &p->w->d->popts;
    j->api = p->api;
    j->text = hr_proxy_count_text(p, &j->len);
    j->model = p->model ? strdup(p->model) : NULL;
    memcpy(j->stack, p->stack, sizeof j->stack);
    return j;
}

/* Takes a finished job's count into the request (or drops it) and frees it. */
static void late_job_take(struct proxy_req *p, struct late_job *j, int take)
{
    if (take && j->counted) {
        hr_pipeline_result_free(&p->pr);
        p->pr = j->pr;
        p->pr.tokens_after = p->pr.tokens_before;
        p->counted_late = 1;
    } else if (j->counted) {
        hr_pipeline_result_free(&j->pr);
    }
    free(j->model);
    free(j);
}

/* Passthrough's count of what it forwarded, taken into the request: a
 * short body's as soon as it is forwarded; a long one's once the answer
 * is on its way, the helper's when one was started, else made here on the
 * worker. */
static void count_late(struct proxy_req *p)
{
    if (!p->count_late || p->counted_late || !p->up_body) return;
    struct late_job *j = p->late_job;
    p->late_job = NULL;
    if (j) {
        hr_par_join(&j->task);
    } else {
        if (!(j = late_job_new(p))) return;
        late_job_run(j);
    }
    late_job_take(p, j, 1);
}

void hr_acct_count_start(struct proxy_req *p)
{
    if (!p->count_late || p->counted_late || !p->up_body || p->late_job) return;
    /* A short body is counted here, on the worker, while the upstream
     * works: faster than a helper is woken, and done before the answer
     * comes. Counted after the answer, it ran between the answer and the
     * client's next request (one client's p50 +12 us, p99 +42 us against
     * the shipped config's; bench/README.md, session 26). Only once the
     * request is on its way: one still waiting for its connection, or
     * libcurl's, leaves from the event loop after this returns, and would
     * wait for the count; it is counted after the answer instead. */
    if (!long_count(p)) {
        if (p->t && hr_transfer_sending(p->t)) count_late(p);
        return;
    }
    if (!hr_par_helpers()) return;
    struct late_job *j = late_job_new(p);
    if (!j) return; /* counted on the worker when the request ends */
    p->late_job = j;
    hr_par_spawn(&j->task, late_job_run, j); /* if it cannot be queued, the join runs it */
}


/* A compressed request's count after forwarding (the strings no stage
 * looked at, the rest of each never-seen output) on a helper: it writes the
 * request's figures and reads the forwarded body's tree, so hr_acct_settle
 * joins it before anything else touches either. */
struct rest_job {
    struct hr_par_task task;
    struct hr_pipeline_result *pr; /* the request's: nothing else touches it until the join */
};

static void rest_job_run(void *arg)
{
    struct rest_job *j = arg;
    hr_pipeline_count_finish(j->pr);
}

void hr_acct_count_rest(struct proxy_req *p)
{
    struct rest_job *j;
    /* A short body's rest is counted faster than a helper is woken. */
    if (p->pr.late && p->body_in_len >= LONG_COUNT_BYTES && hr_par_helpers() && (j = malloc(sizeof *j))) {
        j->pr = &p->pr;
        p->rest_job = j;
        hr_par_spawn(&j->task, rest_job_run, j); /* if it cannot be queued, the join runs it */
        return;
    }
    hr_pipeline_count_finish(&p->pr);
}

void hr_acct_settle(struct proxy_req *p)
{
    struct rest_job *j = p->rest_job;
    if (!j) return;
    p->rest_job = NULL;
    hr_par_join(&j->task);
    free(j);
}

void hr_acct_count_drop(struct proxy_req *p)
{
    hr_acct_settle(p);
    struct late_job *j = p->late_job;
    if (!j) return;
    p->late_job = NULL;
    hr_par_join(&j->task);
    late_job_take(p, j, 0);
}


void hr_acct_headers(struct proxy_req *p, struct hr_req *out)
{
    hr_acct_settle(p);
    char v[32];
    HR_REQ_OWN_HEADER(out, "x-headroom-request-id", p->request_id, strlen(p->request_id));
    if (!p->llm) return;
    struct hr_event ev;
    price_so_far(p, &ev);
    if (!p->count_late) { /* passthrough: a long body's count comes after the answer (doc/stats.md) */
        HR_REQ_OWN_HEADER(out, "x-headroom-tokens-before", v, hr_numfmt_uint((unsigned long long)ev.tokens_input, v));
        HR_REQ_OWN_HEADER(out, "x-headroom-tokens-after", v, hr_numfmt_uint((unsigned long long)ev.tokens_sent, v));
        HR_REQ_OWN_HEADER(out, "x-headroom-tokens-saved", v, hr_numfmt_uint((unsigned long long)ev.tokens_saved, v));
    }
    if (p->streaming) return; /* streams carry cost in their closing comment */
    hr_cost_format_usd(ev.cost_usd, v, sizeof v);
    HR_REQ_OWN_HEADER(out, "x-headroom-cost-usd", v, strlen(v));
    hr_cost_format_usd(ev.savings_usd, v, sizeof v);
    HR_REQ_OWN_HEADER(out, "x-headroom-savings-usd", v, strlen(v));
}

/* Clients ignore SSE comments: the stream's figures ride at its very end. */
void hr_acct_stream_comment(struct proxy_req *p)
{
    hr_acct_settle(p);
    struct hr_event ev;
    char line[320];
    /* Counting a long forwarded body takes ~6 ms per MB: the answer's last
     * events go to the client first, and only the comment and the stream's
     * end wait for the count (a short body's count costs less than a write). */
    if (p->count_late && !p->counted_late && long_count(p)) hr_req_flush(p->req);
    count_late(p);
    price_so_far(p, &ev);
    int n = hr_cost_sse_comment(&ev, line, sizeof line);
    if (n <= 0 || (size_t)n >= sizeof line) return;
    hr_req_chunk(p->req, line, (size_t)n);
}

static void finish_now(struct proxy_req *p, int status, int failed, const char *error, double now);

static void unlink_deferred(struct proxy_req *p)
{
    for (struct proxy_req **q = &p->w->deferred; *q; q = &(*q)->deferred_next)
        if (*q == p) {
            *q = p->deferred_next;
            break;
        }
}

static void run_deferred(struct proxy_req *p)
{
    unlink_deferred(p);
    finish_now(p, p->late_status, p->late_failed, p->late_error, p->t_finished);
    free(p->late_error);
    p->late_error = NULL;
    p->finish_deferred = 0;
    if (p->free_requested) hr_proxy_free(p);
}

static void deferred_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    run_deferred(arg);
}

/* Passthrough's late count would hold up an answer not yet written (a
 * stream's end is written once this loop turn's callbacks are done):
 * account one loop turn later, once the answer is written. Not a zero
 * timeout: event_base_once runs those at once, in this same turn, before
 * the client socket's write event (the answer waited the whole count, 5 ms
 * per MB); an expired timer runs after the events the next poll returns. */
static int defer_finish(struct proxy_req *p, int status, int failed, const char *error, double now)
{
    static const struct timeval now_tv = {0, 1};
    p->late_status = status;
    p->late_failed = failed;
    p->late_error = error ? strdup(error) : NULL;
    p->t_finished = now;
    if (event_base_once(p->w->base, -1, EV_TIMEOUT, deferred_cb, p, &now_tv) != 0) {
        free(p->late_error);
        p->late_error = NULL;
        return 0;
    }
    p->finish_deferred = 1;
    p->deferred_next = p->w->deferred;
    p->w->deferred = p;
    return 1;
}

void hr_acct_flush_deferred(struct hr_worker *w)
{
    while (w->deferred) run_deferred(w->deferred);
}

void hr_acct_finish(struct proxy_req *p, int status, int failed, const char *error)
{
    hr_acct_settle(p);
    double now = hr_monotonic_ms();
    hr_pipeline_count_finish(&p->pr); /* ended before it was forwarded */
    if (p->count_late && !p->counted_late && p->up_body && defer_finish(p, status, failed, error, now)) return;
    finish_now(p, status, failed, error, now);
}

static void finish_now(struct proxy_req *p, int status, int failed, const char *error, double now)
{
    count_late(p);
    struct hr_event ev = {
        .struct_size = sizeof ev,
        .request_id = p->request_id,
        .timestamp = hr_now(),
        .provider = p->api->provider,
        .provider_name = hr_provider_name(p->api->provider),
        .model = p->model ? p->model : "",
        .stack = p->stack,
        .path = p->path,
        .status = status,
        .failed = failed,
        .streamed = p->streaming && p->llm,
        .latency_ms = now - p->t_start,
        .overhead_ms = p->t_forward > 0 ? p->t_forward - p->t_start + p->send_wait_ms + p->reply_ms : -1,
        .ttfb_ms = p->t_first_byte > 0 ? p->t_first_byte - p->t_forward - p->send_wait_ms : -1,
        .error = error,
        .cached = p->cached,
        .pipeline_ms = p->pipeline_ran ? p->pr.pipeline_ms : -1,
        .request_body = p->logged_body,
        .request_body_len = p->logged_body_len,
        .n_stages = p->pr.n_stages,
        .stages = p->pr.stages,
        .wire_format = p->llm ? p->api->format : HR_WIRE_UNKNOWN,
        .wire_format_name = p->llm ? p->api->name : "",
        .traceparent = p->traceparent[0] ? p->traceparent : NULL,
        .stream_error = p->stream_error[0] ? p->stream_error : NULL, /* relay.c, ws_relay.c */
    };
    if (p->llm) {
        fill_figures(p, &ev, failed);
        hr_cost_account_event(&ev, usage_seen(p));
        if (ev.credited) hr_pipeline_log_saving(ev.tokens_input, ev.tokens_sent);
    } else {
        ev.model = "";
    }
    if (p->pipeline_ran) {
        /* The provider cached this request's prefix: keep it stable next turn. */
        size_t cached_prefix =
            status == 200 && (ev.cache_read_tokens || ev.cache_write_tokens) ? p->pr.n_messages : 0;
        hr_session_record(p->pr.session_id, p->pr.raw, p->pr.n_raw, p->pr.record_raw, cached_prefix);
    }
    hr_stats_record(&ev);
    hr_sinks_emit(&ev);
    HR_DEBUG(LOGGER, "%s %s %s -> %d in %.1f ms%s%s", p->request_id, ev.provider_name, p->path, status,
             ev.latency_ms, error ? ": " : "", error ? error : "");
}

void hr_acct_refusal(struct hr_worker *w, const char *request_id, const struct hr_api *api, const char *path,
                     const char *stack, int status, const char *why)
{
    char id[40];
    if (!request_id) {
        snprintf(id, sizeof id, "hr-%zx-%llx", w->index, ++w->next_request);
        request_id = id;
    }
    struct hr_event ev = {.struct_size = sizeof ev, .request_id = request_id, .timestamp = hr_now(),
                          .provider = api->provider, .provider_name = hr_provider_name(api->provider), .model = "",
                          .stack = stack ? stack : "", .path = path, .status = status, .overhead_ms = -1,
                          .ttfb_ms = -1, .pipeline_ms = -1, .error = why, .wire_format_name = ""};
    hr_sinks_emit(&ev);
}

void hr_acct_send_error(struct proxy_req *p, int status, enum hr_api_error kind, const char *message)
{
    hr_acct_settle(p);
    hr_req_add_header(p->req, "x-headroom-request-id", p->request_id);
    hr_send_api_error(p->req, p->api, status, kind, message);
    p->req = NULL; /* answered: the request is the server's again */
}
