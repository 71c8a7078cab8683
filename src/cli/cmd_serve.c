/*
 * cmd_serve.c: tidings serve: run the broker on a data directory until SIGINT or SIGTERM.
 *
 * Today the broker serves storage only: it holds the data directory, recovers it, and runs the
 * background work (fsync=interval flushes, retention, the CRC scrub). The network listeners
 * (Kafka, Redis, HTTP) arrive with the protocol issues and will be started here.
 */
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static const char serve_usage[] =
    "usage: tidings serve [options]\n"
    "\n"
    "Runs the broker on a data directory (created if missing) until SIGINT or SIGTERM, then\n"
    "flushes, fsyncs and exits 0.\n"
    "\n"
    "options:\n"
    "  -d, --data DIR          data directory (default: $TIDINGS_DATA, else ./data)\n"
    "  -l, --log-level LEVEL   debug, info (default), warn, error or off\n"
    "                          (also $TIDINGS_LOG_LEVEL)\n"
    "  -h, --help              this help\n";

int cmd_serve(int argc, char **argv)
{
    static const struct option longopts[] = {{"data", required_argument, NULL, 'd'},
                                             {"log-level", required_argument, NULL, 'l'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    const char *data = NULL;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "d:l:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            data = optarg;
            break;
        case 'l':
            if (td_set_log_level(optarg) != 0)
                return cli_usage_error("serve", "%s", td_last_error());
            break;
        case 'h':
            fputs(serve_usage, stdout);
            return EXIT_OK;
        default:
            return cli_usage_error("serve", "unknown or incomplete option '%s'",
                                   argv[optind - 1]);
        }
    }
    if (optind != argc)
        return cli_usage_error("serve", "unexpected argument '%s'", argv[optind]);
    /* Block the signals before any thread starts, so that every thread inherits the mask and
     * only sigwait below receives them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    const char *dir = cli_data_dir(data);
    td_engine *e;
    int rc = td_engine_open(dir, NULL, &e);
    if (rc)
        return cli_fail("cannot serve", rc);
    printf("tidings %s serving data directory %s (storage: recovery done; retention, scrub and "
           "interval flushes running)\n"
           "network listeners (Kafka, Redis, HTTP) are not available in this version; stop with "
           "Ctrl-C or SIGTERM\n",
           TD_VERSION_STRING, dir);
    fflush(stdout);
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "tidings: %s received, shutting down\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    rc = td_engine_flush(e);
    td_engine_close(e);
    if (rc)
        return cli_fail("flushing on shutdown", rc);
    return EXIT_OK;
}
