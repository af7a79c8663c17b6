/* cli_history.c — `headroom history`: the durable savings history
 * (hr_get_history): from the savings file in-process, or from a running
 * daemon's /stats-history with --url. */
#include "cli.h"
#include "cli_util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void usage(FILE *out)
{
    fprintf(out, "usage: headroom history [--series history|hourly|daily|weekly|monthly]\n"
                 "                        [--format table|json|csv] [--url URL] [-c FILE] [--json]\n"
                 "\n"
                 "The durable savings history (savings_file sink), as GET /stats-history serves it.\n"
                 "Without --url (or $HEADROOM_URL) it reads the savings file directly ($HEADROOM_SAVINGS_PATH,\n"
                 "the `path` of `sink savings_file` in -c FILE, else $HEADROOM_WORKSPACE_DIR/proxy_savings.json,\n"
                 "else ~/.headroom/proxy_savings.json); no daemon is needed. With no file there (yet), the figures\n"
                 "are zeros and a note on stderr says where it looked.\n"
                 "\n"
                 "  -s, --series S     rows to show (default daily); history = the stored checkpoints\n"
                 "  -f, --format F     table (default), json (the whole /stats-history document) or csv\n"
                 "  --json             same as --format json (with another --format: an error)\n"
                 "  --url URL          ask this running headroomd instead of reading the file (with its\n"
                 "                     stats_token, if it has one: $HEADROOM_STATS_TOKEN, else that of -c FILE)\n"
                 "  -c, --config FILE  headroom.conf (plugin_dir, the savings_file settings, stats_token)\n");
}

static int one_of(const char *v, const char *const *allowed)
{
    for (; *allowed; allowed++)
        if (!strcmp(v, *allowed)) return 1;
    return 0;
}

/* Read offline, the history of a savings file that is not there is all
 * zeros: true before a daemon has saved anything, misleading when it keeps
 * its file elsewhere (another state directory). Say where it looked.
 * `doc`: the JSON document read, or NULL (CSV) to ask for one. */
static void no_file_note(hr_client *c, const char *doc)
{
    char *own = doc ? NULL : hr_get_history(c, "history_mode=none");
    json_t *v = json_loads(doc ? doc : own ? own : "", 0, NULL);
    const char *path = json_string_value(json_object_get(v, "storage_path"));
    struct stat st;
    if (path && stat(path, &st) && errno == ENOENT)
        fprintf(stderr, "headroom history: no savings file at %s (yet), so these are zeros: headroomd writes it once "
                "it has saved something. If it has, it keeps the file elsewhere: pass its config with -c, or set "
                "HEADROOM_WORKSPACE_DIR (or HEADROOM_SAVINGS_PATH) as headroomd has it\n", path);
    json_decref(v);
    hr_free(own);
}

int hr_cli_history(int argc, char **argv)
{
    struct cli_common o = {.cmd = "history", .config = getenv("HEADROOM_CONFIG"), .url = getenv("HEADROOM_URL")};
    const char *series = "daily", *format = "table";
    int format_given = 0;
    static const char *const series_ok[] = {"history", "hourly", "daily", "weekly", "monthly", NULL};
    static const char *const format_ok[] = {"table", "json", "csv", NULL};
    for (int i = 1; i < argc; i++) {
        int r = cli_common_option(&o, argc, argv, &i), m;
        const char *v;
        if (r < 0) return HR_EXIT_USAGE;
        if (r) continue;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return HR_EXIT_OK;
        }
        if ((v = cli_optval(argc, argv, &i, "--series", "-s", &m)) || m) {
            if (!v || !one_of(v, series_ok)) {
                fprintf(stderr, "headroom history: --series must be history, hourly, daily, weekly or monthly "
                        "(got '%s')\n", v ? v : "");
                return HR_EXIT_USAGE;
            }
            series = v;
            continue;
        }
        if ((v = cli_optval(argc, argv, &i, "--format", "-f", &m)) || m) {
            if (!v || !one_of(v, format_ok)) {
                fprintf(stderr, "headroom history: --format must be table, json or csv (got '%s')\n", v ? v : "");
                return HR_EXIT_USAGE;
            }
            format = v;
            format_given = 1;
            continue;
        }
        fprintf(stderr, "headroom history: unknown argument '%s'; see 'headroom history --help'\n", argv[i]);
        return HR_EXIT_USAGE;
    }
    if (o.json && format_given && strcmp(format, "json")) {
        fprintf(stderr, "headroom history: --format %s and --json conflict (--json means --format json): give only "
                "one of them\n", format);
        return HR_EXIT_USAGE;
    }
    if (o.json) format = "json";
    hr_client *c = o.url ? hr_client_attach(o.url, o.config) : hr_client_open(o.config);
    if (!c) return cli_fail(&o, hr_last_status());
    const char *token = getenv("HEADROOM_STATS_TOKEN"); /* the daemon's stats_token guards /stats-history */
    if (o.url && token && *token) hr_client_set_token(c, token);
    char query[128];
    int csv = !strcmp(format, "csv"), table = !strcmp(format, "table");
    if (csv) snprintf(query, sizeof query, "format=csv&series=%s", series);
    else if (table && strcmp(series, "history")) snprintf(query, sizeof query, "history_mode=none");
    else snprintf(query, sizeof query, "history_mode=%s", table ? "full" : "compact");
    char *text = hr_get_history(c, query);
    if (!text) {
        int code = o.url ? cli_fail_daemon(&o, hr_last_status(), "HEADROOM_STATS_TOKEN", "stats_token")
                         : cli_fail(&o, hr_last_status());
        hr_client_close(c);
        return code;
    }
    if (csv) {
        fputs(text, stdout);
    } else if (!table) {
        cli_print_json_text(text);
    } else {
        json_t *v = json_loads(text, 0, NULL);
        json_t *rows = !strcmp(series, "history") ? json_object_get(v, "history")
                                                  : json_object_get(json_object_get(v, "series"), series);
        int cumulative = !strcmp(series, "history");
        static const char *const hdr_s[] = {"timestamp", "requests", "input_tokens", "tokens_saved", "savings_usd",
                                            "cost_usd"};
        static const char *const hdr_h[] = {"timestamp", "total_tokens_saved", "savings_usd"};
        static const int right[] = {0, 1, 1, 1, 1, 1};
        struct cli_table *t = cli_table_new(cumulative ? 3 : 6, cumulative ? hdr_h : hdr_s, right);
        size_t i;
        json_t *r;
        char a[64], b[64], d[64], e[64], f[64];
        json_array_foreach(rows, i, r) {
            const char *ts = json_string_value(json_object_get(r, "timestamp"));
            cli_fmt_usd(e, sizeof e, json_number_value(json_object_get(r, "compression_savings_usd")));
            if (cumulative) {
                cli_fmt_int(a, sizeof a, (long long)json_integer_value(json_object_get(r, "total_tokens_saved")));
                const char *row[] = {ts, a, e};
                cli_table_row(t, row);
                continue;
            }
            cli_fmt_int(a, sizeof a, (long long)json_integer_value(json_object_get(r, "requests")));
            cli_fmt_int(b, sizeof b, (long long)json_integer_value(json_object_get(r, "input_tokens")));
            cli_fmt_int(d, sizeof d, (long long)json_integer_value(json_object_get(r, "tokens_saved")));
            cli_fmt_usd(f, sizeof f, json_number_value(json_object_get(r, "total_cost_usd")));
            const char *row[] = {ts, a, b, d, e, f};
            cli_table_row(t, row);
        }
        cli_table_print(t, stdout);
        cli_table_free(t);
        json_t *life = json_object_get(v, "lifetime");
        cli_fmt_int(a, sizeof a, (long long)json_integer_value(json_object_get(life, "tokens_saved")));
        cli_fmt_usd(e, sizeof e, json_number_value(json_object_get(life, "compression_savings_usd")));
        printf("lifetime: %s tokens saved, %s\n", a, e);
        json_decref(v);
    }
    if (!o.url) no_file_note(c, csv ? NULL : text);
    hr_free(text);
    hr_client_close(c);
    return HR_EXIT_OK;
}
