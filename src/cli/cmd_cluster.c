/*
 * cmd_cluster.c: `tidings cluster status` (docs/cli.md#cluster): the cluster as a running
 * broker sees it (GET /v1/cluster): its id, the controller and each live broker.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/remote.h"

static const char cluster_usage[] =
    "usage: tidings cluster status [--json] [--server URL]\n"
    "\n"
    "The cluster a running broker belongs to (docs/clustering.md): its id, the coordinator\n"
    "(etcd) and whether the broker reaches it, the controller, and one line per live broker\n"
    "with its epoch, rack and addresses. A broker without cluster.coordinator describes itself\n"
    "alone. --json prints the broker's answer (GET /v1/cluster) as it is.\n";

static const char *str(const json_t *o, const char *name)
{
    const char *s = json_string_value(json_object_get(o, name));
    return s ? s : "-";
}

static void print_status(const json_t *a)
{
    const json_t *ctl = json_object_get(a, "controller");
    printf("cluster %s (%s", str(a, "cluster_id"), str(a, "mode"));
    if (!strcmp(str(a, "mode"), "cluster"))
        printf(", etcd %s at %s", str(a, "etcd"), str(a, "coordinator"));
    printf(")\n");
    if (json_is_object(ctl))
        printf("controller: broker %lld (epoch %lld)\n",
               (long long)json_integer_value(json_object_get(ctl, "broker_id")),
               (long long)json_integer_value(json_object_get(ctl, "epoch")));
    else
        printf("controller: none\n");
    printf("%-8s %-10s %-10s %-24s %-24s %s\n", "BROKER", "EPOCH", "RACK", "KAFKA", "HTTP",
           "REDIS");
    size_t i;
    const json_t *b;
    long long self = json_integer_value(json_object_get(a, "broker_id"));
    json_array_foreach(json_object_get(a, "brokers"), i, b)
    {
        long long id = json_integer_value(json_object_get(b, "id"));
        char name[24];
        snprintf(name, sizeof(name), "%lld%s", id, id == self ? "*" : "");
        printf("%-8s %-10lld %-10s %-24s %-24s %s\n", name,
               (long long)json_integer_value(json_object_get(b, "epoch")), str(b, "rack"),
               str(b, "kafka"), str(b, "http"), str(b, "redis"));
    }
}

int cmd_cluster(int argc, char **argv)
{
    static const struct option longopts[] = {{"server", required_argument, NULL, 's'},
                                             {"json", no_argument, NULL, 'j'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    const char *server = NULL;
    bool json = false;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "s:jh", longopts, NULL)) != -1) {
        switch (c) {
        case 's':
            server = optarg;
            break;
        case 'j':
            json = true;
            break;
        case 'h':
            fputs(cluster_usage, stdout);
            return EXIT_OK;
        default:
            return cli_usage_error("cluster", "unknown or incomplete option '%s'",
                                   argv[optind - 1]);
        }
    }
    if (optind != argc - 1 || strcmp(argv[optind], "status") != 0)
        return cli_usage_error("cluster", "expected: tidings cluster status");
    if (!(server = cli_server(server)))
        return cli_usage_error("cluster", "cluster status asks a running broker: --server URL "
                                          "(or $TIDINGS_SERVER)");
    cli_remote r;
    int code = cli_remote_open(server, &r);
    if (code)
        return code;
    json_t *ans = NULL;
    code = cli_remote_call(&r, "GET", "/v1/cluster", NULL, &ans, "describing the cluster");
    cli_remote_close(&r);
    if (code)
        return code;
    if (json) {
        char *s = json_dumps(ans, JSON_COMPACT);
        if (s)
            puts(s);
        free(s);
    } else {
        print_status(ans);
    }
    json_decref(ans);
    return fflush(stdout) == 0 ? EXIT_OK : EXIT_RUNTIME;
}
