/* src/cli.h — the `headroom` CLI's subcommand table entry type and the subcommands it knows. */
#ifndef HR_CLI_H
#define HR_CLI_H

/* Exit codes every subcommand uses. */
#define HR_EXIT_OK 0
#define HR_EXIT_RUNTIME 1  /* a file, a network call, a table... failed */
#define HR_EXIT_USAGE 2    /* the command line was wrong */
#define HR_EXIT_UNAVAILABLE 3 /* no data source: the daemon did not answer, or there is no metrics database */

struct hr_cli_cmd {
    const char *name;
    const char *summary;                  /* one line for `headroom --help` */
    int (*run)(int argc, char **argv);    /* argv[0] is the subcommand name */
};

int hr_cli_tokens(int argc, char **argv);
int hr_cli_stats(int argc, char **argv);
int hr_cli_history(int argc, char **argv);
int hr_cli_summary(int argc, char **argv);
int hr_cli_metrics(int argc, char **argv);
int hr_cli_doctor(int argc, char **argv);
int hr_cli_compress(int argc, char **argv);
int hr_cli_wrap(int argc, char **argv);

#endif
