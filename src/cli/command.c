/*
 * command.c: the skeleton shared by `topic`, `group`, `queue` and `dlq` (command.h).
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/command.h"

/* getopt's value for --json: far from the commands' own values (letters and 1000 up). */
enum { OPT_JSON = 0x7000 };

static const struct option common_longopts[] = {{"data", required_argument, NULL, 'd'},
                                                 {"server", required_argument, NULL, 's'},
                                                 {"json", no_argument, NULL, OPT_JSON},
                                                 {"help", no_argument, NULL, 'h'}};
#define NCOMMON (sizeof(common_longopts) / sizeof(common_longopts[0]))

/* "<name> needs an action: a, b or c". */
static int missing_action(const cli_command *cmd)
{
    char list[256] = "";
    size_t n = 0;
    while (cmd->actions[n])
        n++;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(list);
        snprintf(list + len, sizeof(list) - len, "%s%s", i == 0 ? "" : i + 1 == n ? " or " : ", ",
                 cmd->actions[i]);
    }
    return cli_usage_error(cmd->name, "%s needs an action: %s", cmd->name, list);
}

int cli_run_parse(const cli_command *cmd, int argc, char **argv, void *opts, cli_run *run)
{
    memset(run, 0, sizeof(*run));
    struct option longopts[CLI_COMMAND_MAX_OPTIONS + NCOMMON + 1];
    size_t n = 0;
    for (size_t i = 0; i < NCOMMON; i++)
        longopts[n++] = common_longopts[i];
    for (size_t i = 0; cmd->longopts && cmd->longopts[i].name; i++) {
        if (i == CLI_COMMAND_MAX_OPTIONS) {
            fprintf(stderr, "tidings: %s: too many options for the command skeleton\n",
                    cmd->name);
            return EXIT_RUNTIME; /* a programming error, caught by any test of the command */
        }
        longopts[n++] = cmd->longopts[i];
    }
    longopts[n] = (struct option){NULL, 0, NULL, 0};
    char shortopts[64];
    snprintf(shortopts, sizeof(shortopts), "d:s:h%s", cmd->shortopts ? cmd->shortopts : "");
    const char *data = NULL;
    int c;
    optind = 1;
    opterr = 0;
    /* GNU getopt_long permutes: options may come before or after the action and its words. */
    while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        int code = EXIT_OK;
        switch (c) {
        case 'd':
            data = optarg;
            break;
        case 's':
            run->server = optarg;
            break;
        case OPT_JSON:
            run->json = true;
            break;
        case 'h':
            fputs(cmd->usage, stdout);
            run->help = true;
            return EXIT_OK;
        case '?':
        case ':':
            return cli_usage_error(cmd->name, "unknown or incomplete option '%s'",
                                   argv[optind - 1]);
        default:
            code = cmd->option(opts, c, optarg);
            break;
        }
        if (code != EXIT_OK)
            return code;
    }
    run->data = cli_data_dir(data);
    run->server = cli_server(run->server);
    run->action = optind < argc ? argv[optind] : NULL;
    if (!run->action)
        return missing_action(cmd);
    bool known = false;
    for (size_t i = 0; cmd->actions[i]; i++)
        known |= !strcmp(cmd->actions[i], run->action);
    if (!known)
        return cli_usage_error(cmd->name, "unknown %s action '%s'", cmd->name, run->action);
    run->args = argv + optind + 1;
    run->nargs = argc - optind - 1;
    return EXIT_OK;
}

bool cli_run_is(const cli_run *run, const char *action)
{
    return run->action && !strcmp(run->action, action);
}

int cli_run_connect(cli_run *run)
{
    if (!run->server || run->connected)
        return EXIT_OK;
    int code = cli_remote_open(run->server, &run->remote);
    run->connected = code == EXIT_OK;
    return code;
}

cli_remote *cli_run_remote(cli_run *run)
{
    return run->connected ? &run->remote : NULL;
}

void cli_run_end(cli_run *run)
{
    if (run->connected)
        cli_remote_close(&run->remote);
    run->connected = false;
}
