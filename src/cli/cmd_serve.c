/*
 * cmd_serve.c: tidings serve: run the broker until SIGINT or SIGTERM (see server/server.h);
 * SIGHUP reloads TLS certificates.
 * Configuration: defaults < --config FILE < TIDINGS_* environment < flags.
 */
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "server/server.h"

static const char serve_usage[] =
    "usage: tidings serve [options]\n"
    "\n"
    "Runs the broker on a data directory (created if missing) until SIGINT or SIGTERM, then\n"
    "finishes the requests in flight, fsyncs and exits 0. Every option is also a config-file\n"
    "key and a TIDINGS_* environment variable (see docs/configuration.md); flags win over the\n"
    "environment, which wins over the file. TLS listeners (kafka.tls, http.tls, redis.tls and\n"
    "their .cert.file, .key.file, .ca.file, .client.auth; docs/security.md) are set with\n"
    "--set or the file; SIGHUP reloads their certificates.\n"
    "\n"
    "options:\n"
    "  -d, --data DIR              data directory (default ./data; TIDINGS_DATA)\n"
    "      --kafka HOST:PORT|off   Kafka listener (default 127.0.0.1:9092; TIDINGS_KAFKA)\n"
    "      --http HOST:PORT|off    HTTP listener: REST, metrics (default 127.0.0.1:8080)\n"
    "      --redis HOST:PORT|off   Redis listener (default 127.0.0.1:6379)\n"
    "      --advertised-host HOST  host named in Kafka metadata (default: the listener's)\n"
    "      --loops N               event-loop threads (default 0: one per core)\n"
    "      --auto-create-topics true|false\n"
    "                              create unknown topics on Kafka metadata requests (true)\n"
    "      --default-partitions N  partitions of auto-created topics (default 1)\n"
    "      --shutdown-grace-ms MS  how long shutdown waits for work in flight (5000)\n"
    "      --allow-anonymous true|false\n"
    "                              let listeners bind addresses other than loopback without\n"
    "                              authentication (false; docs/security.md)\n"
    "  -c, --config FILE           read 'key = value' lines (keys as above without '--',\n"
    "                              with '.' for '-': auto.create.topics = false)\n"
    "  -l, --log-level LEVEL       debug, info (default), warn, error or off\n"
    "  -s, --set KEY=VALUE         any configuration key, for example\n"
    "                              --set group.initial.rebalance.delay.ms=0\n"
    "  -h, --help                  this help\n";

int cmd_serve(int argc, char **argv)
{
    enum { O_KAFKA = 256, O_HTTP, O_REDIS, O_ADV, O_LOOPS, O_AUTO, O_DEFP, O_GRACE, O_ANON };
    static const struct option longopts[] = {{"data", required_argument, NULL, 'd'},
                                             {"kafka", required_argument, NULL, O_KAFKA},
                                             {"http", required_argument, NULL, O_HTTP},
                                             {"redis", required_argument, NULL, O_REDIS},
                                             {"advertised-host", required_argument, NULL, O_ADV},
                                             {"loops", required_argument, NULL, O_LOOPS},
                                             {"auto-create-topics", required_argument, NULL,
                                              O_AUTO},
                                             {"default-partitions", required_argument, NULL,
                                              O_DEFP},
                                             {"shutdown-grace-ms", required_argument, NULL,
                                              O_GRACE},
                                             {"allow-anonymous", required_argument, NULL,
                                              O_ANON},
                                             {"config", required_argument, NULL, 'c'},
                                             {"set", required_argument, NULL, 's'},
                                             {"log-level", required_argument, NULL, 'l'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    /* Flags are collected first and applied last, over the file and the environment. */
    const char *flag_key[32];
    const char *flag_val[32];
    int nflags = 0;
    const char *config_file = NULL;
    int c;
    optind = 1;
    opterr = 0;
    char set_keys[32][64];
    while ((c = getopt_long(argc, argv, "d:c:l:s:h", longopts, NULL)) != -1) {
        const char *key = NULL;
        switch (c) {
        case 's': {
            const char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg || (size_t)(eq - optarg) >= sizeof(set_keys[0]) ||
                nflags == 32)
                return cli_usage_error("serve", "--set expects KEY=VALUE, got '%s'", optarg);
            memcpy(set_keys[nflags], optarg, (size_t)(eq - optarg));
            set_keys[nflags][eq - optarg] = 0;
            flag_key[nflags] = set_keys[nflags];
            flag_val[nflags++] = eq + 1;
            continue;
        }
        case 'd': key = "data"; break;
        case O_KAFKA: key = "kafka"; break;
        case O_HTTP: key = "http"; break;
        case O_REDIS: key = "redis"; break;
        case O_ADV: key = "advertised.host"; break;
        case O_LOOPS: key = "loops"; break;
        case O_AUTO: key = "auto.create.topics"; break;
        case O_DEFP: key = "default.partitions"; break;
        case O_GRACE: key = "shutdown.grace.ms"; break;
        case O_ANON: key = "allow.anonymous"; break;
        case 'l': key = "log.level"; break;
        case 'c':
            config_file = optarg;
            continue;
        case 'h':
            fputs(serve_usage, stdout);
            return EXIT_OK;
        default:
            return cli_usage_error("serve", "unknown or incomplete option '%s'",
                                   argv[optind - 1]);
        }
        if (nflags == 32)
            return cli_usage_error("serve", "too many options");
        flag_key[nflags] = key;
        flag_val[nflags++] = optarg;
    }
    if (optind != argc)
        return cli_usage_error("serve", "unexpected argument '%s'", argv[optind]);
    td_server_config cfg;
    server_config_defaults(&cfg);
    int rc = 0;
    if (config_file && (rc = server_config_load_file(&cfg, config_file)) != 0)
        return cli_fail("configuration", rc);
    if ((rc = server_config_from_env(&cfg)) != 0)
        return cli_fail("configuration", rc);
    for (int i = 0; i < nflags; i++)
        if ((rc = server_config_set(&cfg, flag_key[i], flag_val[i])) != 0)
            return cli_usage_error("serve", "%s", td_last_error());
    /* Block the signals before any thread starts, so that every thread inherits the mask and
     * only the sigwait in server_run receives them. SIGPIPE is ignored: a peer that goes away
     * mid-write is an EPIPE for its connection, not the end of the broker. */
    signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP); /* reloads TLS certificates */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    rc = server_run(&cfg, &set);
    if (rc)
        return cli_fail("cannot serve", rc);
    return EXIT_OK;
}
