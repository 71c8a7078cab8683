/*
 * cmd_topic.c: tidings topic create|list|describe|alter|add-partitions|delete.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/remote.h"

static const char topic_usage[] =
    "usage: tidings topic <action> [options]\n"
    "\n"
    "  create NAME [--partitions N] [--config KEY=VALUE ...]\n"
    "  list [--internal] [--json]\n"
    "  describe NAME [--json]\n"
    "  alter NAME --config KEY=VALUE ...\n"
    "  add-partitions NAME --partitions TOTAL\n"
    "  delete NAME\n"
    "\n"
    "options:\n"
    "  -d, --data DIR          data directory (default: $TIDINGS_DATA, else ./data)\n"
    "  -s, --server URL        a running broker's HTTP address (default: $TIDINGS_SERVER;\n"
    "                          without either, the data directory)\n"
    "  -p, --partitions N      partition count (create: default 1; add-partitions: new total)\n"
    "  -c, --config KEY=VALUE  topic setting, repeatable:\n"
    "        retention.ms retention.bytes retention.records segment.bytes segment.ms\n"
    "        fsync (always|interval:<ms>|none) max.message.bytes\n"
    "        message.timestamp.type (CreateTime|LogAppendTime) cleanup.policy (delete)\n"
    "      --internal          list: also the broker's internal state topics\n"
    "                          (__consumer_offsets, __cluster_state)\n"
    "      --json              machine-readable output (list, describe)\n"
    "  -h, --help              this help\n";

#define MAX_CONFIGS 64

typedef struct topic_opts {
    const char *data, *server;
    int64_t partitions;
    bool have_partitions;
    bool json;
    bool internal;
    td_config_entry configs[MAX_CONFIGS];
    char *config_text[MAX_CONFIGS];
    size_t nconfigs;
} topic_opts;

static int parse_config(topic_opts *o, const char *arg)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg)
        return cli_usage_error("topic", "--config takes KEY=VALUE, not '%s'", arg);
    if (o->nconfigs == MAX_CONFIGS)
        return cli_usage_error("topic", "too many --config settings");
    char *copy = strdup(arg);
    if (!copy)
        return EXIT_RUNTIME;
    copy[eq - arg] = 0;
    o->config_text[o->nconfigs] = copy;
    o->configs[o->nconfigs++] = (td_config_entry){copy, copy + (eq - arg) + 1};
    return 0;
}

static void free_opts(topic_opts *o)
{
    for (size_t i = 0; i < o->nconfigs; i++)
        free(o->config_text[i]);
}

static const char *action_what(const char *action)
{
    static const char *const names[][2] = {{"create", "creating topic"},
                                           {"list", "listing topics"},
                                           {"describe", "describing topic"},
                                           {"alter", "altering topic"},
                                           {"add-partitions", "adding partitions"},
                                           {"delete", "deleting topic"}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (!strcmp(names[i][0], action))
            return names[i][1];
    return action;
}

/* ---------------------------------------------------------------------------------------------
 * Local mode: the answers are built as the HTTP API gives them, so that one renderer serves
 * both modes and --json is the same whichever answers.
 */
static json_t *config_json(const td_topic_config *c)
{
    json_t *o = json_object();
    for (const char *const *k = td_topic_config_keys(); *k; k++) {
        char v[128];
        if (td_topic_config_get(c, *k, v, sizeof(v)) == 0)
            json_object_set_new(o, *k, json_string(v));
    }
    return o;
}

static json_t *topic_json(const td_topic_info *t)
{
    return json_pack("{s:s,s:i,s:I}", "name", t->name, "partition_count", t->partitions,
                     "created_ms", (json_int_t)t->created_ms);
}

static int local_list(td_engine *e, bool internal, json_t **out)
{
    td_topic_info *v;
    size_t n;
    int rc = internal ? td_topic_list_all(e, &v, &n) : td_topic_list(e, &v, &n);
    if (rc)
        return cli_fail("listing topics", rc);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *t = topic_json(&v[i]);
        if (v[i].internal)
            json_object_set_new(t, "internal", json_true());
        json_array_append_new(arr, t);
    }
    free(v);
    *out = json_pack("{s:o}", "topics", arr);
    return EXIT_OK;
}

static int local_describe(td_engine *e, const char *name, const char *what, json_t **out)
{
    td_topic_info t;
    int rc = td_topic_describe(e, name, &t);
    if (rc)
        return cli_fail(what, rc);
    json_t *o = topic_json(&t), *parts = json_array();
    json_object_set_new(o, "config", config_json(&t.config));
    json_object_set_new(o, "partitions", parts);
    for (int32_t i = 0; i < t.partitions; i++) {
        td_partition_info p;
        if ((rc = td_partition_describe(e, name, i, &p)) != 0) {
            json_decref(o);
            return cli_fail(what, rc);
        }
        json_t *pj = json_pack("{s:i,s:I,s:I,s:I,s:I,s:i,s:b}", "partition", p.partition,
                               "log_start_offset", (json_int_t)p.log_start_offset, "high_watermark",
                               (json_int_t)p.high_watermark, "log_end_offset",
                               (json_int_t)p.log_end_offset, "size_bytes", (json_int_t)p.size_bytes,
                               "segments", p.segments, "offline", p.offline != 0);
        if (p.offline)
            json_object_set_new(pj, "error", json_string(p.error));
        if (p.compacted) /* the same object as the HTTP API's (routes.c) */
            json_object_set_new(
                pj, "compaction",
                json_pack("{s:f,s:I,s:I,s:I,s:I}", "dirty_ratio", p.dirty_ratio,
                          "cleanable_bytes", (json_int_t)p.cleanable_bytes, "first_dirty_offset",
                          (json_int_t)p.first_dirty_offset, "cleaner_lag_ms",
                          (json_int_t)p.cleaner_lag_ms, "reclaimed_bytes",
                          (json_int_t)p.reclaimed_bytes));
        json_array_append_new(parts, pj);
    }
    *out = o;
    return EXIT_OK;
}

static int topic_local(const char *action, const char *name, const topic_opts *o, json_t **out)
{
    td_engine *e;
    int rc = 0, code = cli_open(cli_data_dir(o->data), strcmp(action, "create") == 0, &e);
    if (code)
        return code;
    if (strcmp(action, "create") == 0) {
        rc = td_topic_create(e, name, o->have_partitions ? (int32_t)o->partitions : 1, o->configs,
                             o->nconfigs);
        code = rc ? cli_fail("creating topic", rc) : EXIT_OK;
    } else if (strcmp(action, "list") == 0) {
        code = local_list(e, o->internal, out);
    } else if (strcmp(action, "describe") == 0) {
        code = local_describe(e, name, "describing topic", out);
    } else if (strcmp(action, "alter") == 0) {
        rc = td_topic_alter(e, name, o->configs, o->nconfigs);
        code = rc ? cli_fail("altering topic", rc) : EXIT_OK;
    } else if (strcmp(action, "add-partitions") == 0) {
        rc = td_topic_add_partitions(e, name, (int32_t)o->partitions);
        code = rc ? cli_fail("adding partitions", rc) : EXIT_OK;
    } else {
        rc = td_topic_delete(e, name);
        code = rc ? cli_fail("deleting topic", rc) : EXIT_OK;
    }
    td_engine_close(e);
    return code;
}

/* ---------------------------------------------------------------------------------------------
 * Remote mode
 */
static int topic_remote(const char *server, const char *action, const char *name,
                        const topic_opts *o, json_t **out)
{
    cli_remote r;
    int code = cli_remote_open(server, &r);
    if (code)
        return code;
    char path[1024];
    snprintf(path, sizeof(path), "/v1/topics%s%s", name ? "/" : "", name ? name : "");
    json_t *config = json_object();
    for (size_t i = 0; i < o->nconfigs; i++)
        json_object_set_new(config, o->configs[i].key, json_string(o->configs[i].value));
    json_t *body = NULL;
    if (strcmp(action, "create") == 0) {
        snprintf(path, sizeof(path), "/v1/topics");
        body = json_pack("{s:s,s:O}", "name", name, "config", config);
        if (o->have_partitions)
            json_object_set_new(body, "partitions", json_integer(o->partitions));
        code = cli_remote_call(&r, "POST", path, body, NULL, "creating topic");
    } else if (strcmp(action, "list") == 0) {
        if (o->internal)
            snprintf(path, sizeof(path), "/v1/topics?internal=true");
        code = cli_remote_call(&r, "GET", path, NULL, out, "listing topics");
    } else if (strcmp(action, "describe") == 0) {
        code = cli_remote_call(&r, "GET", path, NULL, out, "describing topic");
    } else if (strcmp(action, "alter") == 0) {
        body = json_pack("{s:O}", "config", config);
        code = cli_remote_call(&r, "PATCH", path, body, NULL, "altering topic");
    } else if (strcmp(action, "add-partitions") == 0) {
        body = json_pack("{s:I}", "partitions", (json_int_t)o->partitions);
        code = cli_remote_call(&r, "PATCH", path, body, NULL, "adding partitions");
    } else {
        code = cli_remote_call(&r, "DELETE", path, NULL, NULL, "deleting topic");
    }
    json_decref(body);
    json_decref(config);
    cli_remote_close(&r);
    return code;
}

/* ---------------------------------------------------------------------------------------------
 * Output, from the API's JSON
 */
static void print_list(const json_t *j)
{
    printf("%-40s %10s  %s\n", "TOPIC", "PARTITIONS", "CREATED");
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(j, "topics"), i, t)
    {
        char created[32];
        cli_format_time(cli_json_int(t, "created_ms"), created, sizeof(created));
        printf("%-40s %10" PRId64 "  %s\n", json_string_value(json_object_get(t, "name")),
               cli_json_int(t, "partition_count"), created);
    }
}

static void print_describe(const json_t *t)
{
    char created[32];
    cli_format_time(cli_json_int(t, "created_ms"), created, sizeof(created));
    printf("topic       %s\npartitions  %" PRId64 "\ncreated     %s\nconfig\n",
           json_string_value(json_object_get(t, "name")), cli_json_int(t, "partition_count"),
           created);
    const char *k;
    json_t *v;
    int width = 0; /* the longest key's, so that every value starts in one column */
    json_object_foreach(json_object_get(t, "config"), k, v)
        if ((int)strlen(k) > width)
            width = (int)strlen(k);
    json_object_foreach(json_object_get(t, "config"), k, v)
        printf("  %-*s  %s\n", width, k, json_string_value(v));
    printf("%-10s %16s %16s %14s %9s  %s\n", "PARTITION", "LOG-START", "HIGH-WATERMARK", "BYTES",
           "SEGMENTS", "STATE");
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(t, "partitions"), i, p)
    {
        bool offline = json_is_true(json_object_get(p, "offline"));
        const char *err = json_string_value(json_object_get(p, "error"));
        printf("%-10" PRId64 " %16" PRId64 " %16" PRId64 " %14" PRId64 " %9" PRId64 "  %s%s\n",
               cli_json_int(p, "partition"), cli_json_int(p, "log_start_offset"),
               cli_json_int(p, "high_watermark"), cli_json_int(p, "size_bytes"),
               cli_json_int(p, "segments"), offline ? "OFFLINE: " : "online",
               offline && err ? err : "");
    }
    bool header = false;
    json_array_foreach(json_object_get(t, "partitions"), i, p)
    {
        const json_t *c = json_object_get(p, "compaction");
        if (!c)
            continue;
        if (!header)
            printf("compaction\n%-10s %11s %16s %16s %16s %12s\n", "PARTITION", "DIRTY-RATIO",
                   "CLEANABLE-BYTES", "RECLAIMED-BYTES", "FIRST-DIRTY", "LAG-MS");
        header = true;
        printf("%-10" PRId64 " %11.3f %16" PRId64 " %16" PRId64 " %16" PRId64 " %12" PRId64 "\n",
               cli_json_int(p, "partition"),
               json_number_value(json_object_get(c, "dirty_ratio")),
               cli_json_int(c, "cleanable_bytes"), cli_json_int(c, "reclaimed_bytes"),
               cli_json_int(c, "first_dirty_offset"), cli_json_int(c, "cleaner_lag_ms"));
    }
}

int cmd_topic(int argc, char **argv)
{
    static const struct option longopts[] = {{"data", required_argument, NULL, 'd'},
                                             {"partitions", required_argument, NULL, 'p'},
                                             {"config", required_argument, NULL, 'c'},
                                             {"json", no_argument, NULL, 'j'},
                                             {"internal", no_argument, NULL, 'i'},
                                             {"server", required_argument, NULL, 's'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    topic_opts o;
    memset(&o, 0, sizeof(o));
    int c, code = EXIT_OK;
    optind = 1;
    opterr = 0;
    /* GNU getopt_long permutes: options may come before or after the action and the name. */
    while ((c = getopt_long(argc, argv, "d:p:c:s:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            o.data = optarg;
            break;
        case 's':
            o.server = optarg;
            break;
        case 'p':
            if (!cli_parse_i64(optarg, &o.partitions) || o.partitions < 1 ||
                o.partitions > INT32_MAX) {
                code = cli_usage_error("topic", "--partitions takes a positive number, not '%s'",
                                       optarg);
                goto out;
            }
            o.have_partitions = true;
            break;
        case 'c':
            if ((code = parse_config(&o, optarg)) != 0)
                goto out;
            break;
        case 'i':
            o.internal = true;
            break;
        case 'j':
            o.json = true;
            break;
        case 'h':
            fputs(topic_usage, stdout);
            goto out;
        default:
            code = cli_usage_error("topic", "unknown or incomplete option '%s'",
                                   argv[optind - 1]);
            goto out;
        }
    }
    const char *pos[2] = {NULL, NULL};
    if (argc - optind > 2) {
        code = cli_usage_error("topic", "unexpected argument '%s'", argv[optind + 2]);
        goto out;
    }
    for (int i = 0; optind + i < argc; i++)
        pos[i] = argv[optind + i];
    const char *action = pos[0], *name = pos[1];
    if (!action) {
        code = cli_usage_error("topic", "topic needs an action: create, list, describe, alter, "
                                        "add-partitions or delete");
        goto out;
    }
    bool needs_name = strcmp(action, "list") != 0;
    static const char *const actions[] = {"create", "list", "describe", "alter",
                                          "add-partitions", "delete", NULL};
    bool known = false;
    for (size_t i = 0; actions[i]; i++)
        known |= strcmp(actions[i], action) == 0;
    if (!known) {
        code = cli_usage_error("topic", "unknown topic action '%s'", action);
        goto out;
    }
    if (needs_name && !name) {
        code = cli_usage_error("topic", "topic %s needs a topic name", action);
        goto out;
    }
    if (!needs_name && name) {
        code = cli_usage_error("topic", "unexpected argument '%s'", name);
        goto out;
    }
    if (strcmp(action, "alter") == 0 && o.nconfigs == 0) {
        code = cli_usage_error("topic", "topic alter needs at least one --config KEY=VALUE");
        goto out;
    }
    if (strcmp(action, "add-partitions") == 0 && !o.have_partitions) {
        code = cli_usage_error("topic", "topic add-partitions needs --partitions TOTAL");
        goto out;
    }
    const char *server = cli_server(o.server);
    if (server && name && td_topic_name_validate(name) != 0) {
        code = cli_fail(action_what(action), TD_ENAME); /* also keeps the name safe in a URL */
        goto out;
    }
    json_t *answer = NULL;
    code = server ? topic_remote(server, action, name, &o, &answer)
                  : topic_local(action, name, &o, &answer);
    if (code == EXIT_OK) {
        if (answer && o.json)
            cli_json_print(answer);
        else if (strcmp(action, "list") == 0)
            print_list(answer);
        else if (strcmp(action, "describe") == 0)
            print_describe(answer);
        else if (strcmp(action, "create") == 0)
            printf("created topic %s\n", name);
        else if (strcmp(action, "alter") == 0)
            printf("altered topic %s\n", name);
        else if (strcmp(action, "add-partitions") == 0)
            printf("topic %s now has %" PRId64 " partitions\n", name, o.partitions);
        else
            printf("deleted topic %s\n", name);
    }
    json_decref(answer);
out:
    free_opts(&o);
    return code;
}
