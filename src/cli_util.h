/* cli_util.h — what the `headroom` subcommands built on libheadroom's public
 * API share: common options (--json, --url, -c), time arguments, aligned
 * tables, and turning an API failure into a message and an exit code. */
#ifndef HR_CLI_UTIL_H
#define HR_CLI_UTIL_H
#include <stdio.h>
#include <jansson.h>
#include "headroom/headroom.h"

struct cli_common {
    const char *cmd;        /* "stats", for messages */
    const char *url;        /* --url, else $HEADROOM_URL, else NULL */
    const char *config;     /* -c/--config, else $HEADROOM_CONFIG, else NULL */
    int json;               /* --json */
};

/* Parse one common option at argv[*i] (advancing *i past a value).
 * 1 = consumed, 0 = not a common option, -1 = usage error (printed). */
int cli_common_option(struct cli_common *o, int argc, char **argv, int *i);
/* Value of "--name VALUE" / "--name=VALUE" at argv[*i]; *matched tells whether it was that option. */
const char *cli_optval(int argc, char **argv, int *i, const char *lng, const char *shrt, int *matched);
/* The daemon's base URL: --url, $HEADROOM_URL, else where a headroomd of the config (or of the defaults, and
 * the HEADROOM_* variables) listens (malloc'd). NULL with hr_last_error() set: the config has an error. */
char *cli_daemon_url(const struct cli_common *o);
/* "24h", "7d", "30m", "90s", "2w", "2026-03-27", "2026-03-27T09:00:00Z" or Unix seconds -> Unix seconds.
 * 0 or -1 (unparseable). */
int cli_parse_time(const char *s, double now, double *out);
/* Print the API's last error for a failed call; returns the exit code it maps to. */
int cli_fail(const struct cli_common *o, int rc_or_zero);
/* cli_fail for a call to a running daemon: an HTTP answer other than success
 * (a refusal: 401, 403; an error: 5xx) is an answer, exit 1, and a 401 says
 * how to fix it (set `token_env` to the daemon's `token_key`, or give -c the
 * daemon's config, whose `token_key` the client sent); no answer, or
 * no data source, as cli_fail (exit 3). */
int cli_fail_daemon(const struct cli_common *o, int rc_or_zero, const char *token_env, const char *token_key);
/* FILE to read (stdin for NULL or "-"), or NULL after saying on stderr why it
 * cannot be read (missing, unreadable, a directory). */
FILE *cli_open_input(const char *cmd, const char *file);
/* Print JSON text (pretty, one document) to stdout. */
void cli_print_json_text(const char *text);

/* Aligned tables: add header then rows; numbers right-aligned. */
struct cli_table;
struct cli_table *cli_table_new(size_t ncols, const char *const *headers, const int *right_align);
void cli_table_row(struct cli_table *t, const char *const *cells);
void cli_table_print(struct cli_table *t, FILE *out);
void cli_table_free(struct cli_table *t);
/* Format helpers for table cells. */
void cli_fmt_int(char *out, size_t n, long long v);   /* 12,345 */
void cli_fmt_usd(char *out, size_t n, double v);      /* $0.0420, $0.000042, $123.45 */
#endif
