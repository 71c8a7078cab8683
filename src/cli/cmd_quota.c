/*
 * cmd_quota.c: tidings quota set|remove|list, client quotas on a data directory (local mode),
 * with entity flags after kafka-configs.sh's: --for-user NAME or --default-user, and/or
 * --for-client-id NAME or --default-client-id (--user belongs to --server's credentials). Remote management goes through Kafka's
 * AlterClientQuotas / DescribeClientQuotas (any Kafka admin client) until the HTTP API has it.
 */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/remote.h"

static const char quota_usage[] =
    "usage: tidings quota <action> [entity] [options]\n"
    "\n"
    "  set ENTITY KEY=VALUE...   set quotas, e.g. producer_byte_rate=1048576\n"
    "  remove ENTITY [KEY...]    remove the given keys (all of the entity's without keys)\n"
    "  list [--json]             every entity that has a quota\n"
    "\n"
    "ENTITY is --for-user NAME or --default-user, and/or --for-client-id ID or\n"
    "--default-client-id (--user is the credentials' option of --server).\n"
    "KEYs (Kafka's): producer_byte_rate and consumer_byte_rate (bytes per second),\n"
    "request_percentage (percent of one event loop's time).\n"
    "\n"
    "options:\n"
    "  -d, --data DIR            data directory (default: $TIDINGS_DATA, else ./data)\n"
    "      --json                machine-readable output (list)\n"
    "  -s, --server URL          not supported: use a Kafka admin client\n"
    "                            (AlterClientQuotas) on a running broker\n"
    "  -h, --help                this help\n";

typedef struct quota_opts {
    const char *data, *server;
    td_quota_entity entity;
    bool json;
} quota_opts;

static int set_level(td_quota_level *level, char *dst, size_t cap, const char *name,
                     const char *flag)
{
    if (*level != TD_QUOTA_ABSENT)
        return cli_usage_error("quota", "%s: give the entity's %s once", flag,
                               strstr(flag, "user") ? "user" : "client id");
    if (!name) {
        *level = TD_QUOTA_DEFAULT;
        return EXIT_OK;
    }
    if (strlen(name) >= cap)
        return cli_usage_error("quota", "%s: at most %zu bytes", flag, cap - 1);
    *level = TD_QUOTA_NAMED;
    snprintf(dst, cap, "%s", name);
    return EXIT_OK;
}

static const char *level_text(td_quota_level l, const char *name)
{
    return l == TD_QUOTA_NAMED ? name : l == TD_QUOTA_DEFAULT ? "<default>" : "";
}

static void print_list(const td_quota_info *v, size_t n, bool json)
{
    if (json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++) {
            const td_quota_entity *en = &v[i].entity;
            json_t *q = json_object();
            json_t *ent = json_object();
            if (en->user_level != TD_QUOTA_ABSENT)
                json_object_set_new(ent, "user", en->user_level == TD_QUOTA_NAMED
                                                     ? json_string(en->user)
                                                     : json_null());
            if (en->client_level != TD_QUOTA_ABSENT)
                json_object_set_new(ent, "client-id", en->client_level == TD_QUOTA_NAMED
                                                          ? json_string(en->client_id)
                                                          : json_null());
            for (int k = 0; k < TD_QUOTA_KEYS; k++)
                if (v[i].has & (1 << k))
                    json_object_set_new(q, td_quota_key_name(k),
                                        k == TD_QUOTA_REQUEST_PERCENTAGE
                                            ? json_real(v[i].values[k])
                                            : json_integer((json_int_t)v[i].values[k]));
            json_array_append_new(arr, json_pack("{s:o,s:o}", "entity", ent, "quotas", q));
        }
        json_t *o = json_pack("{s:o}", "quotas", arr);
        cli_json_print(o);
        json_decref(o);
        return;
    }
    if (n == 0) {
        printf("no quotas\n");
        return;
    }
    printf("%-24s %-24s %-20s %s\n", "USER", "CLIENT-ID", "KEY", "VALUE");
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < TD_QUOTA_KEYS; k++)
            if (v[i].has & (1 << k))
                printf("%-24s %-24s %-20s %.17g\n",
                       level_text(v[i].entity.user_level, v[i].entity.user),
                       level_text(v[i].entity.client_level, v[i].entity.client_id),
                       td_quota_key_name(k), v[i].values[k]);
}

/* KEY=VALUE (set) or KEY (remove) into op. */
static int parse_op(const char *arg, bool set, td_quota_op *op)
{
    char key[64];
    const char *eq = strchr(arg, '=');
    size_t kl = eq ? (size_t)(eq - arg) : strlen(arg);
    if (kl >= sizeof(key))
        return cli_usage_error("quota", "unknown quota key '%s'", arg);
    memcpy(key, arg, kl);
    key[kl] = 0;
    memset(op, 0, sizeof(*op));
    if ((op->key = td_quota_key_parse(key)) < 0)
        return cli_usage_error("quota",
                               "unknown quota key '%s' (producer_byte_rate, consumer_byte_rate, "
                               "request_percentage)",
                               key);
    if (!set) {
        if (eq)
            return cli_usage_error("quota", "quota remove takes keys without values");
        op->remove = 1;
        return EXIT_OK;
    }
    char *end = NULL;
    if (!eq || !eq[1] || ((op->value = strtod(eq + 1, &end)), *end) || !isfinite(op->value))
        return cli_usage_error("quota", "quota set takes KEY=VALUE, not '%s'", arg);
    return EXIT_OK;
}

static int quota_local(const char *action, char **args, int nargs, const quota_opts *o)
{
    bool list = !strcmp(action, "list"), set = !strcmp(action, "set");
    td_quota_op ops[TD_QUOTA_KEYS * 2];
    size_t nops = 0;
    int code;
    if (!list) {
        if (o->entity.user_level == TD_QUOTA_ABSENT && o->entity.client_level == TD_QUOTA_ABSENT)
            return cli_usage_error("quota", "quota %s needs an entity: --for-user, --default-user, "
                                            "--for-client-id or --default-client-id", action);
        if (set && nargs == 0)
            return cli_usage_error("quota", "quota set needs KEY=VALUE");
        if ((size_t)nargs > sizeof(ops) / sizeof(ops[0]))
            return cli_usage_error("quota", "too many keys");
        for (int i = 0; i < nargs; i++)
            if ((code = parse_op(args[i], set, &ops[nops++])) != EXIT_OK)
                return code;
        if (!set && nargs == 0)
            for (int k = 0; k < TD_QUOTA_KEYS; k++)
                ops[nops++] = (td_quota_op){.key = k, .remove = 1};
    } else if (nargs > 0) {
        return cli_usage_error("quota", "unexpected argument '%s'", args[0]);
    }
    td_engine *e;
    if ((code = cli_open(cli_data_dir(o->data), set, &e)) != EXIT_OK)
        return code;
    int rc;
    if (list) {
        td_quota_info *v;
        size_t n;
        if ((rc = td_quota_list(e, &v, &n)) == 0) {
            print_list(v, n, o->json);
            free(v);
        } else {
            code = cli_fail("listing quotas", rc);
        }
    } else if ((rc = td_quota_alter(e, &o->entity, ops, nops, 0)) == 0) {
        printf("%s quotas of user %s, client id %s\n", set ? "set" : "removed",
               level_text(o->entity.user_level, o->entity.user)[0]
                   ? level_text(o->entity.user_level, o->entity.user)
                   : "-",
               level_text(o->entity.client_level, o->entity.client_id)[0]
                   ? level_text(o->entity.client_level, o->entity.client_id)
                   : "-");
    } else {
        code = cli_fail(set ? "setting quotas" : "removing quotas", rc);
    }
    return cli_close(e, code);
}

int cmd_quota(int argc, char **argv)
{
    enum { OPT_USER = 256, OPT_USER_DEFAULT, OPT_CLIENT, OPT_CLIENT_DEFAULT, OPT_JSON };
    static const struct option longopts[] = {
        {"data", required_argument, NULL, 'd'},
        {"server", required_argument, NULL, 's'},
        {"for-user", required_argument, NULL, OPT_USER},
        {"default-user", no_argument, NULL, OPT_USER_DEFAULT},
        {"for-client-id", required_argument, NULL, OPT_CLIENT},
        {"default-client-id", no_argument, NULL, OPT_CLIENT_DEFAULT},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    quota_opts o;
    memset(&o, 0, sizeof(o));
    td_quota_entity *en = &o.entity;
    int c, code = EXIT_OK;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "d:s:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            o.data = optarg;
            break;
        case 's':
            o.server = optarg;
            break;
        case OPT_USER:
        case OPT_USER_DEFAULT:
            code = set_level(&en->user_level, en->user, sizeof(en->user),
                             c == OPT_USER ? optarg : NULL, "--for-user");
            break;
        case OPT_CLIENT:
        case OPT_CLIENT_DEFAULT:
            code = set_level(&en->client_level, en->client_id, sizeof(en->client_id),
                             c == OPT_CLIENT ? optarg : NULL, "--for-client-id");
            break;
        case OPT_JSON:
            o.json = true;
            break;
        case 'h':
            fputs(quota_usage, stdout);
            return EXIT_OK;
        default:
            return cli_usage_error("quota", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
        if (code != EXIT_OK)
            return code;
    }
    if (optind >= argc)
        return cli_usage_error("quota", "quota needs an action: set, remove or list");
    const char *action = argv[optind];
    if (strcmp(action, "set") && strcmp(action, "remove") && strcmp(action, "list"))
        return cli_usage_error("quota", "unknown quota action '%s'", action);
    if (o.json && strcmp(action, "list"))
        return cli_usage_error("quota", "--json is for quota list");
    if (cli_server(o.server)) {
        fprintf(stderr, "tidings: quotas over the network (--server or $TIDINGS_SERVER) are "
                        "managed with Kafka's AlterClientQuotas and DescribeClientQuotas, from "
                        "any Kafka admin client; 'tidings quota' works with --data DIR on a "
                        "stopped broker's data directory (give --server '' to ignore "
                        "$TIDINGS_SERVER)\n");
        return EXIT_USAGE;
    }
    return quota_local(action, argv + optind + 1, argc - optind - 1, &o);
}
