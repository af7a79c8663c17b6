/* src/cli_main.c — `headroom` CLI entry point: global flags and dispatch through a table of
 * subcommands, so each new command is one row here plus its own cli_<name>.c. */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif

static const struct hr_cli_cmd commands[] = {
    {"stats", "live session stats of a running headroomd", hr_cli_stats},
    {"history", "durable savings history: hourly, daily, weekly, monthly rollups", hr_cli_history},
    {"summary", "totals over the metrics database (requests, tokens saved, cost saved)", hr_cli_summary},
    {"metrics", "per-request rows from the metrics database, newest first", hr_cli_metrics},
    {"doctor", "check config, plugins, state root, prices, upstreams, port; exit 1 on problems", hr_cli_doctor},
    {"compress", "compress a request body (stdin or file) offline, as headroomd would", hr_cli_compress},
    {"tokens", "count the tokens of a file or stdin for a model or encoding", hr_cli_tokens},
    {"wrap", "run claude, codex, aider or any command through headroomd", hr_cli_wrap},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *out)
{
    fprintf(out,
            "usage: headroom [--help] [--version] COMMAND [ARGS]\n"
            "\n"
            "commands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nRun 'headroom COMMAND --help' for the options of one command.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return HR_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    int rc = -1;
    char *help_argv[] = {argv[0], argc > 2 ? argv[2] : NULL, "--help", NULL};
    if (strcmp(cmd, "help") == 0 && argc > 2) { /* `headroom help stats` = `headroom stats --help` */
        cmd = argv[2];
        argc = 3;
        argv = help_argv;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        rc = HR_EXIT_OK;
    } else if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
        printf("headroom %s\n", PACKAGE_VERSION);
        rc = HR_EXIT_OK;
    }
    for (size_t i = 0; rc < 0 && i < NCOMMANDS; i++)
        if (strcmp(cmd, commands[i].name) == 0) rc = commands[i].run(argc - 1, argv + 1);
    if (rc < 0) {
        fprintf(stderr, "headroom: unknown %s '%s'; run 'headroom --help' for the list of commands\n",
                cmd[0] == '-' ? "option" : "command", cmd);
        return HR_EXIT_USAGE;
    }
    /* Output that did not all reach stdout (a full disk, a closed pipe's
     * EPIPE when SIGPIPE is ignored) is a failure: a script saving a report
     * must not get exit 0 and half a file. */
    int werr = fflush(stdout) ? errno : ferror(stdout) ? EIO : 0;
    if (werr && rc == HR_EXIT_OK) {
        fprintf(stderr, "headroom %s: cannot write the output: %s\n", cmd, strerror(werr));
        rc = HR_EXIT_RUNTIME;
    }
    return rc;
}
