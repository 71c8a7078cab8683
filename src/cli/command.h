/*
 * command.h: the skeleton of the commands that take an action and work locally or on a running
 * broker (`topic`, `group`, `queue`, `dlq`): their common flags (--data, --server, --json,
 * --help), the action word, and the broker's connection. Each command describes its own
 * options in a cli_command and keeps only what is its own: their meaning, the checks of its
 * actions' arguments, the work and the output.
 */
#ifndef TD_CLI_COMMAND_H
#define TD_CLI_COMMAND_H

#include <getopt.h>
#include <stdbool.h>

#include "cli/remote.h"

/* At most this many options of a command's own (the common four are added to them). */
#define CLI_COMMAND_MAX_OPTIONS 28

typedef struct cli_command {
    const char *name;           /* "queue": in errors ("unknown queue action") */
    const char *usage;          /* printed by --help */
    const char *const *actions; /* NULL-terminated, in the order the error lists them */
    const char *shortopts;      /* the command's own, without d:s:h */
    const struct option *longopts; /* its own, without data, server, json and help; ends with
                                    * a zero entry */
    /* One of the command's own options (getopt's value and argument) into `opts`: EXIT_OK, or
     * an exit code after printing why (cli_usage_error). */
    int (*option)(void *opts, int c, const char *arg);
} cli_command;

/* What every such command has once its flags are parsed. */
typedef struct cli_run {
    const char *data;   /* the data directory (cli_data_dir of --data) */
    const char *server; /* --server, else $TIDINGS_SERVER; NULL: local mode */
    bool json;          /* --json */
    bool help;          /* --help was given and the usage printed: the command ends, EXIT_OK */
    const char *action; /* one of the command's actions */
    char **args;        /* the words after the action */
    int nargs;
    cli_remote remote; /* open between cli_run_connect and cli_run_end, when server is set */
    bool connected;
} cli_run;

/* Parses argv (options may come before or after the words: GNU getopt permutes) and checks the
 * action: "<name> needs an action: a, b or c" when there is none, "unknown <name> action 'x'"
 * for another word. EXIT_OK with *run filled (run->help: nothing more to do), or the usage
 * error's exit code. */
int cli_run_parse(const cli_command *cmd, int argc, char **argv, void *opts, cli_run *run);

/* Whether the action is `action`. */
bool cli_run_is(const cli_run *run, const char *action);

/* Prepares the requests to the broker when run->server is set (nothing otherwise): EXIT_OK, or
 * the exit code of a server address that cannot be used. Called after the command has checked
 * its arguments, so that a usage error is reported before anything else. */
int cli_run_connect(cli_run *run);

/* The remote connection, or NULL in local mode. */
cli_remote *cli_run_remote(cli_run *run);

/* Closes what cli_run_connect opened. */
void cli_run_end(cli_run *run);

#endif /* TD_CLI_COMMAND_H */
