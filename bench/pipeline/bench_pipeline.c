/* bench_pipeline.c — the whole transform pipeline as headroomd runs it
 * (plugins loaded from a config, tokens counted before and after, units
 * found, every stage timed) on agent requests built from the fixtures.
 * Usage: bench_pipeline CONFIG FIXTURE_DIR [ITERATIONS] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ccr.h"
#include "config.h"
#include "hist.h"
#include "host.h"
#include "loader.h"
#include "log.h"
#include "pipeline.h"
#include "stats.h"
#include "tokens.h"
#include "slurp.h"

/* An OpenAI-shaped agent conversation: one tool call per fixture. */
static json_t *agent_request(const char *dir, const char *const *names, size_t n)
{
    json_t *messages = json_array();
    json_array_append_new(messages, json_pack("{s:s,s:s}", "role", "system", "content", "You are a coding agent."));
    json_array_append_new(messages, json_pack("{s:s,s:s}", "role", "user", "content", "Find the failing requests and explain why."));
    for (size_t i = 0; i < n; i++) {
        char path[4096], id[32];
        size_t len;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        char *text = slurp(path, &len);
        if (!text) {
            fprintf(stderr, "cannot read %s (run t/fixtures/gen_fixtures.py --out %s)\n", path, dir);
            exit(2);
        }
        snprintf(id, sizeof id, "call_%zu", i);
        json_array_append_new(messages, json_pack("{s:s,s:n,s:[{s:s,s:s,s:{s:s,s:s}}]}", "role", "assistant", "content",
                                                  "tool_calls", "id", id, "type", "function", "function", "name",
                                                  "run_tool", "arguments", "{}"));
        json_array_append_new(messages, json_pack("{s:s,s:s,s:s}", "role", "tool", "tool_call_id", id, "content", text));
        free(text);
    }
    return json_pack("{s:s,s:o}", "model", "gpt-4o", "messages", messages);
}

static void run(const char *label, struct hr_plugins *p, const struct hr_pipeline_opts *o, json_t *req, int iters)
{
    char *text = json_dumps(req, JSON_COMPACT);
    size_t bytes = strlen(text);
    struct hr_hist *parse = calloc(1, sizeof *parse), *pipe = calloc(1, sizeof *pipe),
                   *dump = calloc(1, sizeof *dump), *all = calloc(1, sizeof *all);
    uint64_t before = 0, after = 0;
    double cold_ms = 0;
    for (int i = 0; i < iters; i++) {
        double t0 = hr_monotonic_ms();
        json_t *body = json_loads(text, 0, NULL); /* the proxy parses once per request too */
        double t1 = hr_monotonic_ms();
        struct hr_pipeline_result r;
        hr_pipeline_run(p->transforms, p->n_transforms, o, HR_PROVIDER_OPENAI, body, "gpt-4o", "", NULL, &r);
        double t2 = hr_monotonic_ms();
        char *out = r.changed ? json_dumps(body, JSON_COMPACT) : NULL;
        double t3 = hr_monotonic_ms();
        hr_hist_add(parse, t1 - t0);
        /* The first run pays full token counting; later runs of the same
         * request hit the token-count cache, as an agent's next turn does. */
        if (i == 0) cold_ms = t2 - t1;
        else hr_hist_add(pipe, t2 - t1);
        hr_hist_add(dump, t3 - t2);
        hr_hist_add(all, t3 - t0);
        before = r.tokens_before;
        after = r.tokens_after;
        free(out);
        hr_pipeline_result_free(&r);
        json_decref(body);
    }
    printf("| %s | %zu | %llu -> %llu (%.1f%%) | %.2f | %.2f | %.2f / %.2f | %.2f | %.2f / %.2f |\n", label, bytes,
           (unsigned long long)before, (unsigned long long)after,
           before ? 100.0 * (double)(before - after) / (double)before : 0, hr_hist_quantile(parse, 0.5), cold_ms,
           hr_hist_quantile(pipe, 0.5), hr_hist_quantile(pipe, 0.99), hr_hist_quantile(dump, 0.5),
           hr_hist_quantile(all, 0.5), hr_hist_quantile(all, 0.99));
    free(parse);
    free(pipe);
    free(dump);
    free(all);
    free(text);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s CONFIG FIXTURE_DIR [ITERATIONS]\n", argv[0]);
        return 2;
    }
    int iters = argc > 3 ? atoi(argv[3]) : 200;
    char err[2048];
    struct hr_config c;
    hr_config_defaults(&c);
    if (hr_config_apply_file(&c, argv[1], err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    hr_log_set_level(HR_LOG_ERROR);
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
    printf("| request | bytes | tokens (saved) | parse p50 ms | pipeline, first run ms | pipeline, repeat p50 / p99 ms "
           "| serialise p50 ms | total p50 / p99 ms |\n|---|---|---|---|---|---|---|---|\n");
    json_t *small = json_pack("{s:s,s:[{s:s,s:s}]}", "model", "gpt-4o", "messages", "role", "user", "content", "Hello there");
    run("no tool output", &p, &o, small, iters * 10);
    const char *one[] = {"logs_1000.json"};
    json_t *r1 = agent_request(argv[2], one, 1);
    run("1 x logs_1000 (160 KB)", &p, &o, r1, iters);
    const char *mix[] = {"search_1000.json", "logs_1000.json", "db_1000.json", "metrics_1000.json", "code_1000.json",
                         "search_100.json", "logs_100.json", "api_100.json"};
    json_t *r2 = agent_request(argv[2], mix, 8);
    run("agent request, 8 tool outputs (~1 MB)", &p, &o, r2, iters);
    json_decref(small);
    json_decref(r1);
    json_decref(r2);
    hr_plugins_unload(&p);
    hr_ccr_shutdown();
    hr_stats_shutdown();
    hr_config_free(&c);
    return 0;
}
