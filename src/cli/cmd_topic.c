/*
 * cmd_topic.c: tidings topic create|list|describe|alter|add-partitions|delete.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"

static const char topic_usage[] =
    "usage: tidings topic <action> [options]\n"
    "\n"
    "  create NAME [--partitions N] [--config KEY=VALUE ...]\n"
    "  list [--json]\n"
    "  describe NAME [--json]\n"
    "  alter NAME --config KEY=VALUE ...\n"
    "  add-partitions NAME --partitions TOTAL\n"
    "  delete NAME\n"
    "\n"
    "options:\n"
    "  -d, --data DIR          data directory (default: $TIDINGS_DATA, else ./data)\n"
    "  -p, --partitions N      partition count (create: default 1; add-partitions: new total)\n"
    "  -c, --config KEY=VALUE  topic setting, repeatable:\n"
    "        retention.ms retention.bytes retention.records segment.bytes segment.ms\n"
    "        fsync (always|interval:<ms>|none) max.message.bytes\n"
    "        message.timestamp.type (CreateTime|LogAppendTime) cleanup.policy (delete)\n"
    "      --json              machine-readable output (list, describe)\n"
    "  -h, --help              this help\n";

#define MAX_CONFIGS 64

typedef struct topic_opts {
    const char *data;
    int64_t partitions;
    bool have_partitions;
    bool json;
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

static void print_config_json(const td_topic_config *c)
{
    printf("{");
    int first = 1;
    for (const char *const *k = td_topic_config_keys(); *k; k++) {
        char v[64];
        td_topic_config_get(c, *k, v, sizeof(v));
        printf("%s", first ? "" : ",");
        cli_json_string(stdout, *k, strlen(*k));
        printf(":");
        cli_json_string(stdout, v, strlen(v));
        first = 0;
    }
    printf("}");
}

static void format_time(int64_t ms, char *buf, size_t len)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int do_list(td_engine *e, const topic_opts *o)
{
    td_topic_info *v;
    size_t n;
    int rc = td_topic_list(e, &v, &n);
    if (rc)
        return cli_fail("listing topics", rc);
    if (o->json) {
        printf("[");
        for (size_t i = 0; i < n; i++) {
            printf("%s{\"name\":", i ? "," : "");
            cli_json_string(stdout, v[i].name, strlen(v[i].name));
            printf(",\"partitions\":%" PRId32 ",\"created_ms\":%" PRId64 ",\"config\":",
                   v[i].partitions, v[i].created_ms);
            print_config_json(&v[i].config);
            printf("}");
        }
        printf("]\n");
    } else {
        printf("%-40s %10s  %-16s %s\n", "TOPIC", "PARTITIONS", "RETENTION.MS", "FSYNC");
        for (size_t i = 0; i < n; i++) {
            char ret[32], fs[32];
            td_topic_config_get(&v[i].config, "retention.ms", ret, sizeof(ret));
            td_topic_config_get(&v[i].config, "fsync", fs, sizeof(fs));
            printf("%-40s %10" PRId32 "  %-16s %s\n", v[i].name, v[i].partitions, ret, fs);
        }
    }
    free(v);
    return EXIT_OK;
}

static int do_describe(td_engine *e, const char *name, const topic_opts *o)
{
    td_topic_info t;
    int rc = td_topic_describe(e, name, &t);
    if (rc)
        return cli_fail("describing topic", rc);
    td_partition_info *parts = calloc((size_t)t.partitions, sizeof(*parts));
    if (!parts)
        return cli_fail("describing topic", -12);
    for (int32_t i = 0; i < t.partitions; i++) {
        rc = td_partition_describe(e, name, i, &parts[i]);
        if (rc) {
            free(parts);
            return cli_fail("describing partition", rc);
        }
    }
    if (o->json) {
        printf("{\"name\":");
        cli_json_string(stdout, t.name, strlen(t.name));
        printf(",\"partitions\":%" PRId32 ",\"created_ms\":%" PRId64 ",\"config\":", t.partitions,
               t.created_ms);
        print_config_json(&t.config);
        printf(",\"partition_info\":[");
        for (int32_t i = 0; i < t.partitions; i++) {
            td_partition_info *p = &parts[i];
            printf("%s{\"partition\":%" PRId32 ",\"log_start_offset\":%" PRId64
                   ",\"high_watermark\":%" PRId64 ",\"log_end_offset\":%" PRId64
                   ",\"size_bytes\":%" PRId64 ",\"segments\":%" PRId32 ",\"offline\":%s",
                   i ? "," : "", p->partition, p->log_start_offset, p->high_watermark,
                   p->log_end_offset, p->size_bytes, p->segments, p->offline ? "true" : "false");
            if (p->offline) {
                printf(",\"error\":");
                cli_json_string(stdout, p->error, strlen(p->error));
            }
            printf("}");
        }
        printf("]}\n");
    } else {
        char created[32];
        format_time(t.created_ms, created, sizeof(created));
        printf("topic       %s\npartitions  %" PRId32 "\ncreated     %s\nconfig\n", t.name,
               t.partitions, created);
        for (const char *const *k = td_topic_config_keys(); *k; k++) {
            char v[64];
            td_topic_config_get(&t.config, *k, v, sizeof(v));
            printf("  %-24s %s\n", *k, v);
        }
        printf("%-10s %16s %16s %14s %9s  %s\n", "PARTITION", "LOG-START", "HIGH-WATERMARK",
               "BYTES", "SEGMENTS", "STATE");
        for (int32_t i = 0; i < t.partitions; i++) {
            td_partition_info *p = &parts[i];
            printf("%-10" PRId32 " %16" PRId64 " %16" PRId64 " %14" PRId64 " %9" PRId32 "  %s%s\n",
                   p->partition, p->log_start_offset, p->high_watermark, p->size_bytes,
                   p->segments, p->offline ? "OFFLINE: " : "online", p->offline ? p->error : "");
        }
    }
    free(parts);
    return EXIT_OK;
}

int cmd_topic(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"data", required_argument, NULL, 'd'},  {"partitions", required_argument, NULL, 'p'},
        {"config", required_argument, NULL, 'c'}, {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0}};
    topic_opts o;
    memset(&o, 0, sizeof(o));
    int c, code = EXIT_OK;
    optind = 1;
    opterr = 0;
    /* GNU getopt_long permutes: options may come before or after the action and the name. */
    while ((c = getopt_long(argc, argv, "d:p:c:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            o.data = optarg;
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
    td_engine *e;
    int rc = cli_open(cli_data_dir(o.data), &e);
    if (rc) {
        code = cli_fail("opening the data directory", rc);
        goto out;
    }
    if (strcmp(action, "create") == 0) {
        rc = td_topic_create(e, name, o.have_partitions ? (int32_t)o.partitions : 1, o.configs,
                             o.nconfigs);
        code = rc ? cli_fail("creating topic", rc) : EXIT_OK;
        if (!rc)
            printf("created topic %s\n", name);
    } else if (strcmp(action, "list") == 0) {
        code = do_list(e, &o);
    } else if (strcmp(action, "describe") == 0) {
        code = do_describe(e, name, &o);
    } else if (strcmp(action, "alter") == 0) {
        rc = td_topic_alter(e, name, o.configs, o.nconfigs);
        code = rc ? cli_fail("altering topic", rc) : EXIT_OK;
        if (!rc)
            printf("altered topic %s\n", name);
    } else if (strcmp(action, "add-partitions") == 0) {
        rc = td_topic_add_partitions(e, name, (int32_t)o.partitions);
        code = rc ? cli_fail("adding partitions", rc) : EXIT_OK;
        if (!rc)
            printf("topic %s now has %" PRId64 " partitions\n", name, o.partitions);
    } else {
        rc = td_topic_delete(e, name);
        code = rc ? cli_fail("deleting topic", rc) : EXIT_OK;
        if (!rc)
            printf("deleted topic %s\n", name);
    }
    td_engine_close(e);
out:
    free_opts(&o);
    return code;
}
