/*
 * cmd_topic.c: tidings topic create|list|describe|alter|add-partitions|delete.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/command.h"

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
    "      --internal          list: also the broker's internal state and system topics\n"
    "                          (__consumer_offsets, __cluster_state)\n"
    "      --json              machine-readable output (list, describe)\n"
    "  -h, --help              this help\n";

#define MAX_CONFIGS 64

typedef struct topic_opts {
    const char *data; /* the data directory (cli_run's) */
    int64_t partitions;
    bool have_partitions;
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
        if (v[i].system)
            json_object_set_new(t, "system", json_true());
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
    int rc = 0, code = cli_open(o->data, strcmp(action, "create") == 0, &e);
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
    return cli_close(e, code);
}

/* ---------------------------------------------------------------------------------------------
 * Remote mode
 */
static int topic_remote(cli_remote *r, const char *action, const char *name, const topic_opts *o,
                        json_t **out)
{
    int code;
    char path[1024], seg[CLI_SEGMENT_MAX];
    snprintf(path, sizeof(path), "/v1/topics%s%s", name ? "/" : "",
             name ? cli_path_segment(name, seg) : "");
    json_t *config = json_object();
    for (size_t i = 0; i < o->nconfigs; i++)
        json_object_set_new(config, o->configs[i].key, json_string(o->configs[i].value));
    json_t *body = NULL;
    if (strcmp(action, "create") == 0) {
        snprintf(path, sizeof(path), "/v1/topics");
        body = json_pack("{s:s,s:O}", "name", name, "config", config);
        if (o->have_partitions)
            json_object_set_new(body, "partitions", json_integer(o->partitions));
        code = cli_remote_call(r, "POST", path, body, NULL, "creating topic");
    } else if (strcmp(action, "list") == 0) {
        if (o->internal)
            snprintf(path, sizeof(path), "/v1/topics?internal=true");
        code = cli_remote_call(r, "GET", path, NULL, out, "listing topics");
    } else if (strcmp(action, "describe") == 0) {
        code = cli_remote_call(r, "GET", path, NULL, out, "describing topic");
    } else if (strcmp(action, "alter") == 0) {
        body = json_pack("{s:O}", "config", config);
        code = cli_remote_call(r, "PATCH", path, body, NULL, "altering topic");
    } else if (strcmp(action, "add-partitions") == 0) {
        body = json_pack("{s:I}", "partitions", (json_int_t)o->partitions);
        code = cli_remote_call(r, "PATCH", path, body, NULL, "adding partitions");
    } else {
        code = cli_remote_call(r, "DELETE", path, NULL, NULL, "deleting topic");
    }
    json_decref(body);
    json_decref(config);
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

static int topic_option(void *opts, int c, const char *arg)
{
    topic_opts *o = opts;
    switch (c) {
    case 'p':
        if (!cli_parse_i64(arg, &o->partitions) || o->partitions < 1 ||
            o->partitions > INT32_MAX)
            return cli_usage_error("topic", "--partitions takes a positive number, not '%s'",
                                   arg);
        o->have_partitions = true;
        return EXIT_OK;
    case 'c':
        return parse_config(o, arg);
    default: /* 'i' */
        o->internal = true;
        return EXIT_OK;
    }
}

static const char *const topic_actions[] = {"create", "list",           "describe",
                                            "alter",  "add-partitions", "delete",
                                            NULL};
static const struct option topic_longopts[] = {{"partitions", required_argument, NULL, 'p'},
                                               {"config", required_argument, NULL, 'c'},
                                               {"internal", no_argument, NULL, 'i'},
                                               {NULL, 0, NULL, 0}};
static const cli_command topic_command = {"topic",        topic_usage,     topic_actions, "p:c:",
                                          topic_longopts, topic_option};

/* The action's arguments: EXIT_OK or a usage error. */
static int check_args(const cli_run *run, const topic_opts *o, const char *name)
{
    bool needs_name = !cli_run_is(run, "list");
    if (run->nargs > (needs_name ? 1 : 0))
        return cli_usage_error("topic", "unexpected argument '%s'",
                               run->args[needs_name ? 1 : 0]);
    if (needs_name && !name)
        return cli_usage_error("topic", "topic %s needs a topic name", run->action);
    if (cli_run_is(run, "alter") && o->nconfigs == 0)
        return cli_usage_error("topic", "topic alter needs at least one --config KEY=VALUE");
    if (cli_run_is(run, "add-partitions") && !o->have_partitions)
        return cli_usage_error("topic", "topic add-partitions needs --partitions TOTAL");
    if (run->server && name && td_topic_name_validate(name) != 0)
        return cli_fail(action_what(run->action), TD_ENAME); /* also keeps a URL safe */
    return EXIT_OK;
}

int cmd_topic(int argc, char **argv)
{
    topic_opts o;
    memset(&o, 0, sizeof(o));
    cli_run run;
    int code = cli_run_parse(&topic_command, argc, argv, &o, &run);
    if (code || run.help)
        goto out;
    const char *action = run.action, *name = run.nargs > 0 ? run.args[0] : NULL;
    o.data = run.data;
    if ((code = check_args(&run, &o, name)) != 0 || (code = cli_run_connect(&run)) != 0)
        goto out;
    json_t *answer = NULL;
    code = run.server ? topic_remote(cli_run_remote(&run), action, name, &o, &answer)
                      : topic_local(action, name, &o, &answer);
    if (code == EXIT_OK) {
        if (answer && run.json)
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
    cli_run_end(&run);
    free_opts(&o);
    return code;
}
