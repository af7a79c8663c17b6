/* src/cli.h — the `headroom` CLI's subcommand table entry type and the subcommands it knows. */
#ifndef HR_CLI_H
#define HR_CLI_H

/* Exit codes every subcommand uses. */
#define HR_EXIT_OK 0
#define HR_EXIT_RUNTIME 1  /* a file, a network call, a table... failed */
#define HR_EXIT_USAGE 2    /* the command line was wrong */

struct hr_cli_cmd {
    const char *name;
    const char *summary;                  /* one line for `headroom --help` */
    int (*run)(int argc, char **argv);    /* argv[0] is the subcommand name */
};

int hr_cli_tokens(int argc, char **argv);
int hr_cli_wrap(int argc, char **argv);

#endif
