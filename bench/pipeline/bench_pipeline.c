/* bench_pipeline.c — the whole transform pipeline as headroomd runs it
 * (plugins loaded from a config, tokens counted before and after, units
 * found, every stage timed) on agent requests built from the fixtures.
 * Usage: bench_pipeline CONFIG FIXTURE_DIR [ITERATIONS] */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "ccr.h"
#include "config.h"
#include "host.h"
#include "json_dump.h"
#include "json_load.h"
#include "json_scan.h"
#include "loader.h"
#include "log.h"
#include "par.h"
#include "pipeline.h"
#include "stats.h"
#include "tokens.h"
#include "slurp.h"

/* Every timing kept, so percentiles are exact (nearest rank), not bucketed. */
#define MAX_SAMPLES 8192
struct samples {
    size_t n;
    double v[MAX_SAMPLES];
};

static void sample_add(struct samples *s, double ms)
{
    if (s->n < MAX_SAMPLES) s->v[s->n++] = ms;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double sample_quantile(struct samples *s, double q)
{
    if (!s->n) return 0;
    qsort(s->v, s->n, sizeof *s->v, cmp_double);
    size_t rank = (size_t)(q * (double)s->n + 0.999999);
    return s->v[rank ? rank - 1 : 0];
}

static char *fixture(const char *dir, const char *name)
{
    char path[4096];
    size_t len;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *text = slurp(path, &len);
    if (!text) {
        fprintf(stderr, "cannot read %s (run t/fixtures/gen_fixtures.py --out %s)\n", path, dir);
        exit(2);
    }
    return text;
}

static json_t *new_conversation(void)
{
    json_t *messages = json_array();
    json_array_append_new(messages, json_pack("{s:s,s:s}", "role", "system", "content", "You are a coding agent."));
    json_array_append_new(messages, json_pack("{s:s,s:s}", "role", "user", "content", "Find the failing requests and explain why."));
    return json_pack("{s:s,s:o}", "model", "gpt-4o", "messages", messages);
}

/* One assistant tool call and its result, appended to the conversation. */
static void add_tool_turn(json_t *req, const char *id, const char *output)
{
    json_t *messages = json_object_get(req, "messages");
    json_array_append_new(messages, json_pack("{s:s,s:n,s:[{s:s,s:s,s:{s:s,s:s}}]}", "role", "assistant", "content",
                                              "tool_calls", "id", id, "type", "function", "function", "name",
                                              "run_tool", "arguments", "{}"));
    json_array_append_new(messages, json_pack("{s:s,s:s,s:s}", "role", "tool", "tool_call_id", id, "content", output));
}

/* An OpenAI-shaped agent conversation: one tool call per fixture. */
static json_t *agent_request(const char *dir, const char *const *names, size_t n)
{
    json_t *req = new_conversation();
    for (size_t i = 0; i < n; i++) {
        char id[32];
        char *text = fixture(dir, names[i]);
        snprintf(id, sizeof id, "call_%zu", i);
        add_tool_turn(req, id, text);
        free(text);
    }
    return req;
}

/* The fixture again, made unique to one call of one session without changing
 * its rows: an object gains a "call" member, an array is wrapped in one. */
static char *unique_output(const char *text, size_t session, size_t turn)
{
    size_t len = strlen(text);
    char *out = malloc(len + 64);
    while (*text == ' ' || *text == '\n') text++;
    if (*text == '{') sprintf(out, "{\"call\":\"%zu-%zu\",%s", session, turn, text + 1);
    else sprintf(out, "{\"call\":\"%zu-%zu\",\"rows\":%s}", session, turn, text);
    return out;
}

#define MAX_STAGES 8
struct timing {
    char label[160];
    struct samples *parse, *pipe, *dump, *all;
    struct samples *cpu_pipe, *cpu_all; /* this thread's CPU time: all of it with compress_threads 1 */
    struct samples *cpu_proc;           /* every thread's (helpers too), parse + pipeline + serialise */
    struct samples *cpu_late;           /* this thread's CPU counting the request total after forwarding */
    struct samples *stage[MAX_STAGES + 1]; /* each stage, then counting and unit search */
    size_t samples, bytes;
    uint64_t before, after;
};

static struct timing *new_timing(void)
{
    struct timing *tm = calloc(1, sizeof *tm);
    tm->parse = calloc(1, sizeof *tm->parse);
    tm->pipe = calloc(1, sizeof *tm->pipe);
    tm->dump = calloc(1, sizeof *tm->dump);
    tm->all = calloc(1, sizeof *tm->all);
    tm->cpu_pipe = calloc(1, sizeof *tm->cpu_pipe);
    tm->cpu_all = calloc(1, sizeof *tm->cpu_all);
    tm->cpu_proc = calloc(1, sizeof *tm->cpu_proc);
    tm->cpu_late = calloc(1, sizeof *tm->cpu_late);
    for (size_t k = 0; k <= MAX_STAGES; k++) tm->stage[k] = calloc(1, sizeof *tm->stage[k]);
    return tm;
}

static void free_timing(struct timing *tm)
{
    free(tm->parse);
    free(tm->pipe);
    free(tm->dump);
    free(tm->all);
    free(tm->cpu_pipe);
    free(tm->cpu_all);
    free(tm->cpu_proc);
    free(tm->cpu_late);
    for (size_t k = 0; k <= MAX_STAGES; k++) free(tm->stage[k]);
    free(tm);
}

/* HEADROOM_BENCH_DUMP=dir: every forwarded body is written there as
 * NNNNN.json (the body as sent, changed or not), in request order, so two
 * builds can be checked byte for byte (cmp -r). */
static void dump_body(const char *fwd, const char *text)
{
    static size_t seq;
    const char *dir = getenv("HEADROOM_BENCH_DUMP");
    if (!dir || !*dir) return;
    char path[4096];
    snprintf(path, sizeof path, "%s/%05zu.json", dir, seq++);
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
    const char *b = fwd ? fwd : text;
    fwrite(b, 1, strlen(b), f);
    fclose(f);
}

static double clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double thread_cpu_ms(void) { return clock_ms(CLOCK_THREAD_CPUTIME_ID); }

/* What `optimize no` does to a body on the request path besides moving it:
 * find the root's "model" for pricing. Clients put it first (Claude Code,
 * Codex) or after "messages" (the OpenAI and Anthropic Python SDKs); this
 * thread's CPU ms per MB, p50 of `reps`, for the full skim and the skim from
 * the nearer end. */
static void model_lookup_bench(const json_t *req, int reps)
{
    json_t *last = json_pack("{s:O,s:O,s:i,s:b}", "messages", json_object_get(req, "messages"), "model",
                             json_object_get(req, "model"), "max_tokens", 1024, "stream", 0);
    char *bodies[2] = {json_dumps(req, JSON_COMPACT | JSON_PRESERVE_ORDER), json_dumps(last, JSON_COMPACT | JSON_PRESERVE_ORDER)};
    const char *names[2] = {"model first", "model after messages"};
    json_decref(last);
    printf("\n| model lookup, ~1 MB body | bytes | hr_json_member (full skim) CPU ms/MB p50 | hr_json_member_near CPU ms/MB p50 |\n"
           "|---|---|---|---|\n");
    for (int b = 0; b < 2; b++) {
        size_t len = strlen(bodies[b]);
        double mb = (double)len / 1048576.0, p50[2];
        for (int near = 0; near < 2; near++) {
            struct samples *s = calloc(1, sizeof *s);
            for (int r = 0; r < reps; r++) {
                const char *v = NULL;
                size_t vlen = 0;
                double t0 = thread_cpu_ms();
                int found = near ? hr_json_member_near(bodies[b], len, "model", &v, &vlen)
                                 : hr_json_member(bodies[b], len, "model", &v, &vlen);
                sample_add(s, (thread_cpu_ms() - t0) / mb);
                if (!found || vlen != 8 || memcmp(v, "\"gpt-4o\"", 8)) {
                    fprintf(stderr, "model lookup failed on %s\n", names[b]);
                    exit(1);
                }
            }
            p50[near] = sample_quantile(s, 0.5);
            free(s);
        }
        printf("| %s | %zu | %.3f | %.4f |\n", names[b], len, p50[0], p50[1]);
        free(bodies[b]);
    }
}

/* Time one request the way the proxy handles it: parse, pipeline, serialise
 * before forwarding; the request total counted after (defer_count). */
static void time_request(struct hr_plugins *p, const struct hr_pipeline_opts *opts, const json_t *req, struct timing *tm)
{
    struct hr_pipeline_opts deferred = *opts, *o = &deferred;
    deferred.defer_count = 1;
    char *text = json_dumps(req, JSON_COMPACT);
    double p0 = clock_ms(CLOCK_PROCESS_CPUTIME_ID), c0 = thread_cpu_ms();
    double t0 = hr_monotonic_ms();
    json_t *body = hr_json_load(text, strlen(text), NULL); /* as the proxy parses */
    double t1 = hr_monotonic_ms(), c1 = thread_cpu_ms();
    struct hr_pipeline_result r;
    hr_pipeline_run(p->transforms, p->n_transforms, o, &hr_api_openai_chat, body, "gpt-4o", "", NULL, &r);
    double t2 = hr_monotonic_ms(), c2 = thread_cpu_ms();
    size_t fwd_len;
    char *fwd = r.changed ? hr_json_dump_compact(body, &fwd_len) : NULL; /* as the proxy serialises */
    double t3 = hr_monotonic_ms(), c3 = thread_cpu_ms(), p3 = clock_ms(CLOCK_PROCESS_CPUTIME_ID);
    hr_pipeline_count_finish(&r);
    sample_add(tm->cpu_late, thread_cpu_ms() - c3);
    sample_add(tm->cpu_proc, p3 - p0);
    sample_add(tm->cpu_pipe, c2 - c1);
    sample_add(tm->cpu_all, c3 - c0);
    sample_add(tm->parse, t1 - t0);
    sample_add(tm->pipe, t2 - t1);
    sample_add(tm->dump, t3 - t2);
    sample_add(tm->all, t3 - t0);
    tm->samples++;
    tm->bytes += strlen(text);
    tm->before += r.tokens_before;
    tm->after += r.tokens_after;
    double in_stages = 0;
    for (size_t k = 0; k < r.n_stages && k < MAX_STAGES; k++) {
        sample_add(tm->stage[k], r.stages[k].ms);
        in_stages += r.stages[k].ms;
    }
    sample_add(tm->stage[MAX_STAGES], t2 - t1 - in_stages);
    hr_pipeline_result_free(&r);
    dump_body(fwd, text);
    free(fwd);
    free(text);
    json_decref(body);
}

static void print_timing(struct timing *tm)
{
    size_t n = tm->samples ? tm->samples : 1;
    printf("| %s | %zu avg | %llu -> %llu avg (%.1f%%) | %.2f / %.2f | %.2f / %.2f | %.2f / %.2f | %.2f | %.3f |\n", tm->label,
           tm->bytes / n, (unsigned long long)(tm->before / n), (unsigned long long)(tm->after / n),
           tm->before ? 100.0 * (double)(tm->before - tm->after) / (double)tm->before : 0,
           sample_quantile(tm->pipe, 0.5), sample_quantile(tm->pipe, 0.99), sample_quantile(tm->all, 0.5),
           sample_quantile(tm->all, 0.99), sample_quantile(tm->cpu_pipe, 0.5), sample_quantile(tm->cpu_all, 0.5),
           sample_quantile(tm->cpu_proc, 0.5), sample_quantile(tm->cpu_late, 0.5));
}

static double mean(const struct samples *s)
{
    double sum = 0;
    for (size_t i = 0; i < s->n; i++) sum += s->v[i];
    return s->n ? sum / (double)s->n : 0;
}

/* Each stage's share: latency, and throughput over the request's bytes. */
static void print_stages(struct timing *tm, const struct hr_plugins *p)
{
    double mb = (double)tm->bytes / (double)(tm->samples ? tm->samples : 1) / 1e6;
    for (size_t k = 0; k <= p->n_transforms && k <= MAX_STAGES; k++) {
        size_t at = k == p->n_transforms ? MAX_STAGES : k;
        const char *name = k == p->n_transforms ? "host: unit search, token counts" : p->transforms[k]->name;
        double m = mean(tm->stage[at]);
        printf("| %s | %s | %.3f / %.3f | %.3f | %.0f |\n", tm->label, name, sample_quantile(tm->stage[at], 0.5),
               sample_quantile(tm->stage[at], 0.99), m, m > 0 ? mb / (m / 1e3) : 0);
    }
}

/* One request, again and again: the first run finds every cache cold; the
 * repeats find it all cached, as an agent resending the same turn would. */
static void run(const char *label, struct hr_plugins *p, const struct hr_pipeline_opts *o, json_t *req, int iters)
{
    struct timing *first = new_timing(), *again = new_timing();
    time_request(p, o, req, first);
    for (int i = 1; i < iters; i++) time_request(p, o, req, again);
    printf("| %s | %zu | %llu -> %llu (%.1f%%) | %.2f | %.2f | %.2f / %.2f | %.2f | %.2f / %.2f |\n", label,
           first->bytes, (unsigned long long)first->before, (unsigned long long)first->after,
           first->before ? 100.0 * (double)(first->before - first->after) / (double)first->before : 0,
           sample_quantile(again->parse, 0.5), first->pipe->v[0], sample_quantile(again->pipe, 0.5),
           sample_quantile(again->pipe, 0.99), sample_quantile(again->dump, 0.5), sample_quantile(again->all, 0.5),
           sample_quantile(again->all, 0.99));
    free_timing(first);
    free_timing(again);
}

/* Requests carrying the same 8 outputs, each time with content never seen
 * before: nothing in any cache (a client's very first ~1 MB request). */
static struct timing *cold_bench(struct hr_plugins *p, const struct hr_pipeline_opts *o, char *const *texts, size_t n_mix,
                              size_t first, size_t iters)
{
    struct timing *tm = new_timing();
    for (size_t it = 0; it < iters; it++) {
        json_t *req = new_conversation();
        for (size_t k = 0; k < n_mix; k++) {
            char id[32];
            char *out = unique_output(texts[k], 1000000 + first + it, k);
            snprintf(id, sizeof id, "call_%zu", k);
            add_tool_turn(req, id, out);
            free(out);
        }
        time_request(p, o, req, tm);
        json_decref(req);
    }
    snprintf(tm->label, sizeof tm->label, "%zu new tool outputs, all content unseen (%zu requests)", n_mix, iters);
    return tm;
}

/* Agent sessions as a proxy sees them: every turn resends the conversation so
 * far plus one new tool output. Timed: the turn at which the request first
 * reaches 1 MB (one new output, the rest seen on earlier turns). */
static struct timing *session_bench(struct hr_plugins *p, const struct hr_pipeline_opts *o, char *const *texts, size_t n_mix,
                          size_t sessions)
{
    struct timing *tm = new_timing(), *warm = new_timing();
    size_t turns = 0;
    for (size_t sn = 0; sn < sessions; sn++) {
        json_t *req = new_conversation();
        for (size_t t = 0;; t++) {
            char id[32];
            char *out = unique_output(texts[(sn + t) % n_mix], sn, t);
            snprintf(id, sizeof id, "call_%zu_%zu", sn, t);
            add_tool_turn(req, id, out);
            free(out);
            char *text = json_dumps(req, JSON_COMPACT);
            size_t len = strlen(text);
            free(text);
            if (len >= 1000000) {
                time_request(p, o, req, tm);
                turns += t + 1;
                break;
            }
            time_request(p, o, req, warm); /* the earlier turns, as the proxy saw them */
        }
        json_decref(req);
    }
    snprintf(tm->label, sizeof tm->label,
             "agent session, the turn reaching 1 MB: 1 new output + %.1f resent (%zu sessions)",
             (double)turns / (double)sessions - 1, sessions);
    free_timing(warm);
    return tm;
}

/* Several clients at once, each sending never-seen 1 MB requests: what the
 * helper threads cost or give when the cores are already busy. */
struct client {
    pthread_t t;
    struct hr_plugins *p;
    const struct hr_pipeline_opts *o;
    char *const *texts;
    size_t n_mix, first, iters;
    struct timing *tm;
};

static void *client_main(void *arg)
{
    struct client *c = arg;
    c->tm = cold_bench(c->p, c->o, c->texts, c->n_mix, c->first, c->iters);
    return NULL;
}

static void load_bench(struct hr_plugins *p, const struct hr_pipeline_opts *o, char *const *texts, size_t n_mix,
                       size_t clients, size_t iters)
{
    struct client *c = calloc(clients, sizeof *c);
    struct samples *all = calloc(1, sizeof *all);
    double t0 = hr_monotonic_ms();
    for (size_t k = 0; k < clients; k++) {
        c[k] = (struct client){.p = p, .o = o, .texts = texts, .n_mix = n_mix, .first = k * iters, .iters = iters};
        pthread_create(&c[k].t, NULL, client_main, &c[k]);
    }
    for (size_t k = 0; k < clients; k++) pthread_join(c[k].t, NULL);
    double wall = (hr_monotonic_ms() - t0) / 1e3;
    for (size_t k = 0; k < clients; k++) {
        for (size_t i = 0; i < c[k].tm->pipe->n; i++) sample_add(all, c[k].tm->pipe->v[i]);
        free_timing(c[k].tm);
    }
    printf("| %u | %zu | %zu | %.2f | %.1f | %.2f / %.2f |\n", hr_par_helpers() + 1, clients, clients * iters, wall,
           (double)(clients * iters) / wall, sample_quantile(all, 0.5), sample_quantile(all, 0.99));
    free(all);
    free(c);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s CONFIG FIXTURE_DIR [ITERATIONS [CLIENTS]]\n"
                        "  with CLIENTS: only the load test, CLIENTS threads x ITERATIONS unseen 1 MB requests\n",
                argv[0]);
        return 2;
    }
    int iters = argc > 3 ? atoi(argv[3]) : 200;
    size_t clients = argc > 4 ? (size_t)atoi(argv[4]) : 0;
    char err[2048];
    struct hr_config c;
    hr_config_defaults(&c);
    if (hr_config_apply_file(&c, argv[1], err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (hr_config_apply_env(&c, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    hr_log_set_level(HR_LOG_ERROR);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned threads = c.compress_threads ? (unsigned)c.compress_threads : (unsigned)(cores > 0 ? cores : 1);
    hr_par_start(threads - 1);
    fprintf(stderr, "compress_threads %u (set HEADROOM_COMPRESS_THREADS to change)\n", threads);
    hr_tokens_init(err, sizeof err);
    struct hr_plugins p;
    if (hr_plugins_load(&c, &p, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    hr_stats_init(1, NULL, 0);
    hr_ccr_init_memory(c.ccr_max_bytes, (unsigned)c.ccr_ttl_s);
    if (hr_plugins_init(&p, &hr_host_table, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    struct hr_pipeline_opts o = {.min_tokens = c.min_tokens, .protect_recent = c.protect_recent,
                                 .protected_tools = c.protected_tools, .n_protected_tools = c.n_protected_tools,
                                 .stage_budget_ms = 1e9};
    const char *mix[] = {"search_1000.json", "logs_1000.json", "db_1000.json", "metrics_1000.json", "code_1000.json",
                         "search_100.json", "logs_100.json", "api_100.json"};
    char *texts[8];
    for (size_t k = 0; k < 8; k++) texts[k] = fixture(argv[2], mix[k]);
    if (clients) {
        printf("| compress_threads | clients | requests | wall s | requests/s | pipeline p50 / p99 ms |\n"
               "|---|---|---|---|---|---|\n");
        load_bench(&p, &o, texts, 8, clients, (size_t)iters);
        goto done;
    }
    printf("| request | bytes | tokens (saved) | parse p50 ms | pipeline, first run ms | pipeline, repeat p50 / p99 ms "
           "| serialise p50 ms | total p50 / p99 ms |\n|---|---|---|---|---|---|---|---|\n");
    json_t *small = json_pack("{s:s,s:[{s:s,s:s}]}", "model", "gpt-4o", "messages", "role", "user", "content", "Hello there");
    run("no tool output", &p, &o, small, iters * 10);
    const char *one[] = {"logs_1000.json"};
    json_t *r1 = agent_request(argv[2], one, 1);
    run("1 x logs_1000 (160 KB)", &p, &o, r1, iters);
    json_t *r2 = agent_request(argv[2], mix, 8);
    run("agent request, 8 tool outputs (~1 MB)", &p, &o, r2, iters);
    model_lookup_bench(r2, iters);
    json_decref(small);
    json_decref(r1);
    json_decref(r2);
    printf("\n| ~1 MB agent requests | bytes | tokens (saved) | pipeline p50 / p99 ms | parse + pipeline + serialise p50 / p99 ms "
           "| this thread's CPU p50 ms: pipeline / all three | every thread's CPU p50 ms, all three "
           "| CPU p50 ms counted after forwarding |\n"
           "|---|---|---|---|---|---|---|---|\n");
    struct timing *cold = cold_bench(&p, &o, texts, 8, 0, (size_t)iters);
    struct timing *session = session_bench(&p, &o, texts, 8, (size_t)iters);
    print_timing(cold);
    print_timing(session);
    printf("\n| ~1 MB agent requests | stage | p50 / p99 ms | mean ms | MB/s (request bytes / mean) |\n"
           "|---|---|---|---|---|\n");
    print_stages(cold, &p);
    print_stages(session, &p);
    free_timing(cold);
    free_timing(session);
done:
    for (size_t k = 0; k < 8; k++) free(texts[k]);
    hr_par_stop();
    hr_plugins_unload(&p);
    hr_ccr_shutdown();
    hr_stats_shutdown();
    hr_config_free(&c);
    return 0;
}
