/* src/cli_main.c — `headroom` CLI entry point: global flags and dispatch through a table of
 * subcommands, so each new command is one row here plus its own cli_<name>.c. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif

static const struct hr_cli_cmd commands[] = {
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
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return HR_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
        printf("headroom %s\n", PACKAGE_VERSION);
        return HR_EXIT_OK;
    }
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(cmd, commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "headroom: unknown %s '%s'; run 'headroom --help' for the list of commands\n",
            cmd[0] == '-' ? "option" : "command", cmd);
    return HR_EXIT_USAGE;
}
