/* cli_stats.c — `headroom stats`: the live session stats of a running
 * headroomd (hr_session_stats on an attached client). */
#include "cli.h"
#include "cli_util.h"

#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out, "usage: headroom stats [--url URL] [-c FILE] [--json]\n"
                 "\n"
                 "Live session stats of a running headroomd (its counters since start or the last\n"
                 "POST /stats/reset): requests, tokens before/after compression, tokens saved, cache hits.\n"
                 "\n"
                 "  --url URL          the daemon (default $HEADROOM_URL, else the host/port of -c FILE,\n"
                 "                     else http://127.0.0.1:8787)\n"
                 "  -c, --config FILE  the daemon's headroom.conf: its address and its stats_token\n"
                 "                     (default $HEADROOM_CONFIG)\n"
                 "  --json             the seed's {session, config, transforms} object\n"
                 "\n"
                 "A daemon with a stats_token needs it: the one of -c FILE is sent; $HEADROOM_STATS_TOKEN,\n"
                 "when set, is sent instead.\n");
}

static void kv(struct cli_table *t, const char *k, const char *v)
{
    const char *row[2] = {k, v};
    cli_table_row(t, row);
}

int hr_cli_stats(int argc, char **argv)
{
    struct cli_common o = {.cmd = "stats", .config = getenv("HEADROOM_CONFIG")};
    for (int i = 1; i < argc; i++) {
        int r = cli_common_option(&o, argc, argv, &i);
        if (r < 0) return HR_EXIT_USAGE;
        if (r) continue;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return HR_EXIT_OK;
        }
        fprintf(stderr, "headroom stats: unknown argument '%s'; see 'headroom stats --help'\n", argv[i]);
        return HR_EXIT_USAGE;
    }
    char *url = cli_daemon_url(&o);
    if (!url) {
        int code = cli_fail(&o, hr_last_status());
        if (!strncmp(hr_last_error(), "environment variable ", 21)) /* HEADROOM_HOST/PORT: where it listens */
            fprintf(stderr, "headroom stats: it says where the daemon listens: correct or unset it, or give the "
                    "daemon's address with --url\n");
        return code;
    }
    hr_client *c = hr_client_attach(url, o.config); /* the config's stats_token goes with /stats */
    free(url);
    if (!c) return cli_fail(&o, hr_last_status());
    const char *token = getenv("HEADROOM_STATS_TOKEN"); /* the daemon's stats_token */
    if (token && *token) hr_client_set_token(c, token);
    char *text = hr_session_stats(c);
    if (!text) {
        int code = cli_fail_daemon(&o, hr_last_status(), "HEADROOM_STATS_TOKEN", "stats_token");
        hr_client_close(c);
        return code;
    }
    if (o.json) {
        cli_print_json_text(text);
    } else {
        json_t *v = json_loads(text, 0, NULL);
        json_t *s = json_object_get(v, "session"), *cf = json_object_get(v, "config"), *tr = json_object_get(v, "transforms");
        static const char *const hdr[2] = {"field", "value"};
        static const int right[2] = {0, 1};
        struct cli_table *t = cli_table_new(2, hdr, right);
        char buf[64];
        static const char *const ints[] = {"requests_total", "tokens_input_before", "tokens_input_after",
                                           "tokens_saved_total", "tokens_output_total", "cache_hits"};
        for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
            cli_fmt_int(buf, sizeof buf, (long long)json_integer_value(json_object_get(s, ints[i])));
            kv(t, ints[i], buf);
        }
        snprintf(buf, sizeof buf, "%.4f", json_number_value(json_object_get(s, "compression_ratio_avg")));
        kv(t, "compression_ratio_avg", buf);
        const char *mode = json_string_value(json_object_get(cf, "mode"));
        const char *prov = json_string_value(json_object_get(cf, "provider"));
        kv(t, "mode", mode ? mode : "");
        kv(t, "provider", prov ? prov : "-");
        const char *key;
        json_t *b;
        json_object_foreach(tr, key, b) kv(t, key, json_is_true(b) ? "yes" : "no");
        printf("headroomd at %s\n", json_string_value(json_object_get(v, "url")));
        cli_table_print(t, stdout);
        cli_table_free(t);
        json_decref(v);
    }
    hr_free(text);
    hr_client_close(c);
    return HR_EXIT_OK;
}
