/* cli_metrics.c — `headroom metrics` and `headroom summary`: the metrics
 * database (metrics_db sink) through hr_get_metrics / hr_get_summary. */
#include "cli.h"
#include "cli_util.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static void usage(FILE *out, int summary)
{
    if (summary)
        fprintf(out, "usage: headroom summary [--since WHEN] [--until WHEN] [-c FILE] [--json]\n"
                     "\n"
                     "Totals over the metrics database: requests, tokens before/after, tokens saved, average\n"
                     "compression ratio (sent/input, 1.0 = nothing saved), savings percent (saved/input, in %%),\n"
                     "cost and cost saved, and the requests of a model without a price (unpriced_requests).\n");
    else
        fprintf(out, "usage: headroom metrics [--since WHEN] [--until WHEN] [--limit N] [--model MODEL]\n"
                     "                        [-c FILE] [--json]\n"
                     "\n"
                     "Per-request rows from the metrics database, newest first.\n"
                     "\n"
                     "  -n, --limit N      at most N rows (default 100)\n"
                     "  -m, --model MODEL  only this model (its exact name)\n");
    fprintf(out, "  --since WHEN       from WHEN: 30m, 24h, 7d, 2w, 2026-03-27, 2026-03-27T09:00:00Z or Unix seconds\n"
                 "                     (default: everything stored)\n"
                 "  --until WHEN       before WHEN (same forms; default: now)\n"
                 "  -c, --config FILE  headroom.conf, whose `sink metrics_db { path ... }` names the database\n"
                 "                     (default $HEADROOM_WORKSPACE_DIR/metrics.db, else ~/.headroom/metrics.db)\n"
                 "  --json             JSON for scripts\n");
}

static int run(int argc, char **argv, int summary)
{
    struct cli_common o = {.cmd = summary ? "summary" : "metrics", .config = getenv("HEADROOM_CONFIG")};
    double start = 0, end = 0, now = (double)time(NULL);
    long long limit = 100;
    const char *model = NULL;
    for (int i = 1; i < argc; i++) {
        int r = cli_common_option(&o, argc, argv, &i), m;
        const char *v;
        if (r < 0) return HR_EXIT_USAGE;
        if (r) continue;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout, summary);
            return HR_EXIT_OK;
        }
        if ((v = cli_optval(argc, argv, &i, "--since", NULL, &m)) || m) {
            if (cli_parse_time(v, now, &start)) goto bad_time;
            continue;
        }
        if ((v = cli_optval(argc, argv, &i, "--until", NULL, &m)) || m) {
            if (cli_parse_time(v, now, &end)) goto bad_time;
            continue;
        }
        if (!summary && ((v = cli_optval(argc, argv, &i, "--limit", "-n", &m)) || m)) {
            char *e;
            limit = v ? strtoll(v, &e, 10) : 0;
            if (!v || *e || limit < 1 || limit > 1000000) {
                fprintf(stderr, "headroom metrics: --limit needs a whole number from 1 to 1000000 (got '%s')\n",
                        v ? v : "");
                return HR_EXIT_USAGE;
            }
            continue;
        }
        if (!summary && ((v = cli_optval(argc, argv, &i, "--model", "-m", &m)) || m)) {
            if (!v || !*v) {
                fprintf(stderr, "headroom metrics: --model needs a model name, e.g. --model gpt-4o\n");
                return HR_EXIT_USAGE;
            }
            model = v;
            continue;
        }
        fprintf(stderr, "headroom %s: unknown argument '%s'; see 'headroom %s --help'\n", o.cmd, argv[i], o.cmd);
        return HR_EXIT_USAGE;
    bad_time:
        fprintf(stderr, "headroom %s: cannot read the time '%s' of --since/--until: use 30m, 24h, 7d, 2w, "
                "2026-03-27, 2026-03-27T09:00:00Z or Unix seconds\n", o.cmd, v ? v : "");
        return HR_EXIT_USAGE;
    }
    if (start > 0 && end > 0 && start >= end) {
        fprintf(stderr, "headroom %s: --since must be before --until (the range is empty)\n", o.cmd);
        return HR_EXIT_USAGE;
    }
    /* The database is read locally: an attached client that never calls the daemon. */
    hr_client *c = hr_client_attach("http://127.0.0.1:8787", o.config);
    if (!c) return cli_fail(&o, hr_last_status());
    char *text = summary ? hr_get_summary(c, start, end) : hr_get_metrics(c, start, end, (size_t)limit, model);
    if (!text) {
        int code = cli_fail(&o, hr_last_status());
        hr_client_close(c);
        return code;
    }
    json_t *v = json_loads(text, 0, NULL);
    char a[64], b[64], s[64], d[64], e[64], f[64], g[64];
    if (o.json) {
        cli_print_json_text(text);
    } else if (summary) {
        static const char *const hdr[2] = {"field", "value"};
        static const int right[2] = {0, 1};
        struct cli_table *t = cli_table_new(2, hdr, right);
        static const char *const ints[] = {"total_requests", "total_tokens_before", "total_tokens_after",
                                           "total_tokens_saved", "total_tokens_output"};
        for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
            cli_fmt_int(a, sizeof a, (long long)json_integer_value(json_object_get(v, ints[i])));
            const char *row[2] = {ints[i], a};
            cli_table_row(t, row);
        }
        /* A ratio, as `headroom stats` prints compression_ratio_avg; the percentage is savings_percent's. */
        snprintf(a, sizeof a, "%.4f", json_number_value(json_object_get(v, "avg_compression_ratio")));
        snprintf(b, sizeof b, "%.2f%%", json_number_value(json_object_get(v, "savings_percent")));
        cli_fmt_usd(s, sizeof s, json_number_value(json_object_get(v, "total_cost_usd")));
        cli_fmt_usd(d, sizeof d, json_number_value(json_object_get(v, "total_cost_saved_usd")));
        /* Requests of a model the price table does not know add $0 to both
         * sums: say how many, as /stats' cost.unpriced_requests does. */
        cli_fmt_int(e, sizeof e, (long long)json_integer_value(json_object_get(v, "unpriced_requests")));
        const char *rows[][2] = {{"avg_compression_ratio", a}, {"savings_percent", b}, {"total_cost_usd", s},
                                 {"total_cost_saved_usd", d}, {"unpriced_requests", e}};
        for (size_t i = 0; i < 5; i++) cli_table_row(t, rows[i]);
        cli_table_print(t, stdout);
        cli_table_free(t);
        const char *first = json_string_value(json_object_get(v, "first_timestamp"));
        const char *last = json_string_value(json_object_get(v, "last_timestamp"));
        printf("from %s to %s in %s\n", first ? first : "-", last ? last : "-",
               json_string_value(json_object_get(v, "database")));
    } else {
        static const char *const hdr[] = {"time", "model", "provider", "status", "before", "after", "saved",
                                          "output", "cost", "savings", "latency_ms", "transforms"};
        static const int right[] = {0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0};
        struct cli_table *t = cli_table_new(12, hdr, right);
        size_t i;
        json_t *r;
        json_array_foreach(v, i, r) {
            char st[16], lat[32], *tr = json_dumps(json_object_get(r, "transforms"), JSON_COMPACT);
            snprintf(st, sizeof st, "%lld", (long long)json_integer_value(json_object_get(r, "status")));
            cli_fmt_int(a, sizeof a, (long long)json_integer_value(json_object_get(r, "tokens_input_before")));
            cli_fmt_int(b, sizeof b, (long long)json_integer_value(json_object_get(r, "tokens_input_after")));
            cli_fmt_int(s, sizeof s, (long long)json_integer_value(json_object_get(r, "tokens_saved")));
            cli_fmt_int(d, sizeof d, (long long)json_integer_value(json_object_get(r, "tokens_output")));
            cli_fmt_usd(e, sizeof e, json_number_value(json_object_get(r, "cost_usd")));
            cli_fmt_usd(f, sizeof f, json_number_value(json_object_get(r, "savings_usd")));
            /* A model without a price costs $0 here, which is not free: say so. */
            const char *mname = json_string_value(json_object_get(r, "model"));
            if (json_is_false(json_object_get(r, "priced")) && mname && *mname) {
                snprintf(e, sizeof e, "unpriced");
                snprintf(f, sizeof f, "unpriced");
            }
            snprintf(lat, sizeof lat, "%.1f", json_number_value(json_object_get(r, "latency_ms")));
            snprintf(g, sizeof g, "%s", tr && strcmp(tr, "[]") ? tr : "-");
            const char *row[] = {json_string_value(json_object_get(r, "time")),
                                 json_string_value(json_object_get(r, "model")),
                                 json_string_value(json_object_get(r, "provider")), st, a, b, s, d, e, f, lat, g};
            cli_table_row(t, row);
            free(tr);
        }
        cli_table_print(t, stdout);
        cli_table_free(t);
        if (!json_array_size(v) && model)
            fprintf(stderr, "headroom metrics: no requests of model '%s' stored in that range (the name must match "
                    "exactly, as the requests gave it: `headroom metrics` lists them)\n", model);
        else if (!json_array_size(v))
            fprintf(stderr, "headroom metrics: no requests stored in that range\n");
    }
    json_decref(v);
    hr_free(text);
    hr_client_close(c);
    return HR_EXIT_OK;
}

int hr_cli_metrics(int argc, char **argv) { return run(argc, argv, 0); }
int hr_cli_summary(int argc, char **argv) { return run(argc, argv, 1); }
