/*
 * cmd_group.c: tidings group list|describe|reset|delete: consumer groups with their committed
 * offsets and lag, on a running broker (/v1/groups) or, in local mode, from the data directory
 * (where no broker runs, so no group has members).
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h" /* td_grow: pure memory code, no engine access */
#include "cli/cli.h"
#include "cli/command.h"

static const char group_usage[] =
    "usage: tidings group <action> [options]\n"
    "\n"
    "  list [--json]\n"
    "  describe GROUP [--json]\n"
    "  reset GROUP (--to-earliest | --to-latest | --to-offset N | --to-time T)\n"
    "        [--topic TOPIC[:P,P...]]... [--dry-run] [--json]\n"
    "  delete GROUP\n"
    "\n"
    "Offsets can be reset and groups deleted only while the group has no members.\n"
    "\n"
    "options:\n"
    "  -d, --data DIR          data directory (default: $TIDINGS_DATA, else ./data)\n"
    "  -s, --server URL        a running broker's HTTP address (default: $TIDINGS_SERVER;\n"
    "                          without either, the data directory)\n"
    "      --to-earliest       reset to each partition's log start\n"
    "      --to-latest         reset to each partition's high watermark (skip everything)\n"
    "      --to-offset N       reset to offset N (kept within each partition's log)\n"
    "      --to-time T         reset to the first event at or after T: milliseconds since the\n"
    "                          epoch, or UTC like 2026-11-24T21:00:00Z\n"
    "  -t, --topic T[:P,...]   the topic (and partitions) to reset (repeatable; default: every\n"
    "                          partition the group committed)\n"
    "  -n, --dry-run           show the new offsets without setting them\n"
    "      --json              machine-readable output (the HTTP API's JSON)\n"
    "  -h, --help              this help\n";

enum { TO_NONE, TO_EARLIEST, TO_LATEST, TO_OFFSET, TO_TIME };
/* The engine's reset for each (td_offset_reset). */
static const int reset_to[] = {-1, TD_RESET_EARLIEST, TD_RESET_LATEST, TD_RESET_OFFSET,
                               TD_RESET_TIME};
#define MAX_TOPICS 64

typedef struct group_opts {
    const char *data; /* the data directory (cli_run's) */
    int to, tos;      /* the reset, and how many --to-* were given */
    int64_t value;
    const char *time_text;
    bool dry_run;
    const char *topics[MAX_TOPICS];
    size_t ntopics;
} group_opts;

/* "orders" or "orders:0,2" as the API's topics entry. Topic names hold ':' ("user:1:events"):
 * the partitions are after the last ':', and only when it is followed by digits and commas
 * alone; a spec ending with ':' is the whole topic before it ("user:1:" for the topic user:1,
 * which "user:1" would read as partition 1 of user). */
static json_t *topic_spec(const char *spec)
{
    const char *colon = strrchr(spec, ':');
    if (!colon || (colon[1] && strspn(colon + 1, "0123456789,") != strlen(colon + 1)))
        return json_string(spec);
    if (!colon[1])
        return json_stringn(spec, (size_t)(colon - spec));
    json_t *parts = json_array();
    const char *p = colon + 1;
    while (*p) {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p || v < 0 || v > INT32_MAX || (*end && *end != ',')) {
            json_decref(parts);
            return NULL;
        }
        json_array_append_new(parts, json_integer(v));
        p = *end ? end + 1 : end;
    }
    if (json_array_size(parts) == 0) {
        json_decref(parts);
        return NULL;
    }
    char name[TD_TOPIC_NAME_MAX + 1];
    snprintf(name, sizeof(name), "%.*s", (int)(colon - spec), spec);
    return json_pack("{s:s,s:o}", "topic", name, "partitions", parts);
}

/* ---------------------------------------------------------------------------------------------
 * Local mode: the answers built as the HTTP API gives them. No broker holds the data directory,
 * so no group has members: every group is Empty.
 */
static json_t *local_offsets(td_engine *e, const char *group, int64_t *total, int *rc)
{
    td_group_lag_info *v = NULL;
    size_t n = 0;
    if ((*rc = td_group_lag(e, group, &v, &n)) != 0)
        return NULL;
    json_t *arr = json_array();
    *total = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *r =
            json_pack("{s:s,s:i,s:I,s:I,s:I,s:I,s:n}", "topic", v[i].topic, "partition",
                      v[i].partition, "committed", (json_int_t)v[i].committed, "high_watermark",
                      (json_int_t)v[i].high_watermark, "lag", (json_int_t)v[i].lag, "commit_ms",
                      (json_int_t)v[i].commit_ms, "member_id");
        json_array_append_new(arr, r);
        *total += v[i].lag;
    }
    free(v);
    return arr;
}

static int local_list(td_engine *e, json_t **out)
{
    td_group_info *v = NULL;
    size_t n = 0;
    int rc = td_group_list(e, &v, &n);
    if (rc)
        return cli_fail("listing groups", rc);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        int64_t lag = 0;
        json_t *offs = local_offsets(e, v[i].name, &lag, &rc);
        json_t *g = json_pack("{s:s,s:s,s:s,s:i,s:I}", "group", v[i].name, "state", "Empty",
                              "protocol_type", "", "members", 0, "partitions",
                              (json_int_t)json_array_size(offs));
        json_object_set_new(g, "lag", offs ? json_integer(lag) : json_null());
        json_decref(offs);
        json_array_append_new(arr, g);
    }
    free(v);
    *out = json_pack("{s:o}", "groups", arr);
    return EXIT_OK;
}

static int not_found(const char *group)
{
    fprintf(stderr, "tidings: group '%s' does not exist (it has no committed offsets)\n", group);
    return EXIT_NOTFOUND;
}

static int local_describe(td_engine *e, const char *group, json_t **out)
{
    int64_t lag = 0;
    int rc;
    json_t *offs = local_offsets(e, group, &lag, &rc);
    if (!offs)
        return cli_fail("describing group", rc);
    if (json_array_size(offs) == 0) {
        json_decref(offs);
        return not_found(group);
    }
    *out = json_pack("{s:s,s:s,s:i,s:s,s:s,s:s,s:[],s:o,s:I}", "group", group, "state", "Empty",
                     "generation", 0, "protocol_type", "", "protocol", "", "leader", "", "members",
                     "offsets", offs, "lag", (json_int_t)lag);
    return EXIT_OK;
}

/* Adds (topic, partition) to the commits unless it is there; false when out of memory. */
static bool add_target(td_offset_commit **v, size_t *n, size_t *cap, const char *topic,
                       int32_t partition)
{
    for (size_t i = 0; i < *n; i++)
        if ((*v)[i].partition == partition && !strcmp((*v)[i].topic, topic))
            return true;
    if (td_grow(v, cap, *n, sizeof(**v), 16) != 0)
        return false;
    char *t = strdup(topic);
    if (!t)
        return false;
    (*v)[(*n)++] = (td_offset_commit){.topic = t, .partition = partition, .leader_epoch = -1};
    return true;
}

/* The partitions to reset: those named, or every one the group committed. */
static int reset_targets(td_engine *e, const char *group, const group_opts *o, td_offset_commit **v,
                         size_t *n)
{
    size_t cap = 0;
    if (o->ntopics == 0) {
        td_committed_offset *c = NULL;
        size_t k = 0;
        int rc = td_group_offsets(e, group, &c, &k);
        if (rc)
            return cli_fail("resetting offsets", rc);
        for (size_t i = 0; i < k; i++)
            if (!add_target(v, n, &cap, c[i].topic, c[i].partition)) {
                free(c);
                return cli_fail("resetting offsets", -12);
            }
        free(c);
        if (*n == 0) {
            fprintf(stderr,
                    "tidings: resetting offsets: group '%s' has no committed offsets: "
                    "name the topics to reset (--topic)\n",
                    group);
            return EXIT_USAGE;
        }
        return EXIT_OK;
    }
    for (size_t i = 0; i < o->ntopics; i++) {
        json_t *spec = topic_spec(o->topics[i]);
        const char *name = json_is_string(spec) ? json_string_value(spec)
                                                : json_string_value(json_object_get(spec, "topic"));
        td_topic_info info;
        int rc = td_topic_describe(e, name, &info);
        if (rc) {
            json_decref(spec);
            return cli_fail("resetting offsets", rc);
        }
        json_t *parts = json_object_get(spec, "partitions");
        size_t np = parts ? json_array_size(parts) : (size_t)info.partitions;
        for (size_t k = 0; k < np; k++) {
            int64_t p = parts ? json_integer_value(json_array_get(parts, k)) : (int64_t)k;
            if (p >= info.partitions) {
                fprintf(stderr, "tidings: resetting offsets: topic '%s' has partitions 0 to %d\n",
                        info.name, info.partitions - 1);
                json_decref(spec);
                return EXIT_NOTFOUND;
            }
            if (!add_target(v, n, &cap, info.name, (int32_t)p)) {
                json_decref(spec);
                return cli_fail("resetting offsets", -12);
            }
        }
        json_decref(spec);
    }
    return EXIT_OK;
}

static int local_reset(td_engine *e, const char *group, const group_opts *o, json_t **out)
{
    td_offset_commit *v = NULL;
    size_t n = 0;
    int code = reset_targets(e, group, o, &v, &n);
    json_t *arr = json_array();
    for (size_t i = 0; code == EXIT_OK && i < n; i++) {
        td_offset_commit *c = &v[i];
        int64_t prev;
        int rc = td_offset_reset(e, c->topic, c->partition, reset_to[o->to], o->value, &c->offset);
        if (rc) {
            code = cli_fail("resetting offsets", rc);
            break;
        }
        json_t *r = json_pack("{s:s,s:i,s:I}", "topic", c->topic, "partition", c->partition,
                              "offset", (json_int_t)c->offset);
        json_object_set_new(r, "previous",
                            td_group_committed(e, group, c->topic, c->partition, &prev) == 0
                                ? json_integer(prev)
                                : json_null());
        json_array_append_new(arr, r);
    }
    if (code == EXIT_OK && !o->dry_run) {
        int rc = td_group_commit(e, group, v, n, 0);
        if (rc)
            code = cli_fail("resetting offsets", rc);
    }
    for (size_t i = 0; i < n; i++)
        free((char *)v[i].topic);
    free(v);
    if (code == EXIT_OK)
        *out = json_pack("{s:s,s:b,s:o}", "group", group, "dry_run", o->dry_run, "offsets", arr);
    else
        json_decref(arr);
    return code;
}

static int group_local(const char *action, const char *group, const group_opts *o, json_t **out)
{
    td_engine *e;
    int rc = 0, code = cli_open(o->data, false, &e);
    if (code)
        return code;
    if (!strcmp(action, "list")) {
        code = local_list(e, out);
    } else if (!strcmp(action, "describe")) {
        code = local_describe(e, group, out);
    } else if (!strcmp(action, "reset")) {
        code = local_reset(e, group, o, out);
    } else {
        rc = td_group_delete(e, group);
        code = rc == TD_ENOTFOUND ? not_found(group) : rc ? cli_fail("deleting group", rc) : 0;
    }
    return cli_close(e, code);
}

/* ---------------------------------------------------------------------------------------------
 * Remote mode
 */
static int group_remote(cli_remote *r, const char *action, const char *group, const group_opts *o,
                        json_t **out)
{
    int code;
    char *esc = group ? cli_remote_escape(r, group) : NULL;
    char path[1024];
    snprintf(path, sizeof(path), "/v1/groups%s%s", esc ? "/" : "", esc ? esc : "");
    free(esc);
    if (!strcmp(action, "list")) {
        code = cli_remote_call(r, "GET", path, NULL, out, "listing groups");
    } else if (!strcmp(action, "describe")) {
        code = cli_remote_call(r, "GET", path, NULL, out, "describing group");
    } else if (!strcmp(action, "delete")) {
        code = cli_remote_call(r, "DELETE", path, NULL, NULL, "deleting group");
    } else {
        static const char *const names[] = {"", "earliest", "latest", "offset", "time"};
        json_t *b = json_pack("{s:s,s:b}", "to", names[o->to], "dry_run", o->dry_run);
        if (o->to == TO_OFFSET || o->to == TO_TIME)
            json_object_set_new(b, o->to == TO_OFFSET ? "offset" : "time", json_integer(o->value));
        if (o->ntopics) {
            json_t *ts = json_array();
            for (size_t i = 0; i < o->ntopics; i++)
                json_array_append_new(ts, topic_spec(o->topics[i]));
            json_object_set_new(b, "topics", ts);
        }
        strncat(path, "/reset", sizeof(path) - strlen(path) - 1);
        code = cli_remote_call(r, "POST", path, b, out, "resetting offsets");
        json_decref(b);
    }
    return code;
}

/* ---------------------------------------------------------------------------------------------
 * Output
 */
/* A number, or "-" for null. */
static const char *num(const json_t *o, const char *key, char *buf, size_t len)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        return "-";
    snprintf(buf, len, "%" PRId64, (int64_t)json_integer_value(v));
    return buf;
}

static void print_list(const json_t *j)
{
    printf("%-32s %-20s %8s %11s %12s\n", "GROUP", "STATE", "MEMBERS", "PARTITIONS", "LAG");
    size_t i;
    json_t *g;
    json_array_foreach(json_object_get(j, "groups"), i, g)
    {
        char lag[24];
        printf("%-32s %-20s %8" PRId64 " %11" PRId64 " %12s\n", cli_json_str(g, "group"),
               cli_json_str(g, "state"), cli_json_int(g, "members"), cli_json_int(g, "partitions"),
               num(g, "lag", lag, sizeof(lag)));
    }
}

static void print_describe(const json_t *d)
{
    printf("group       %s\nstate       %s\n", cli_json_str(d, "group"), cli_json_str(d, "state"));
    if (json_array_size(json_object_get(d, "members")))
        printf("protocol    %s (%s), generation %" PRId64 "\n", cli_json_str(d, "protocol"),
               cli_json_str(d, "protocol_type"), cli_json_int(d, "generation"));
    printf("members     %zu\nlag         %" PRId64 "\n\n",
           json_array_size(json_object_get(d, "members")), cli_json_int(d, "lag"));
    printf("%-32s %9s %14s %14s %10s  %s\n", "TOPIC", "PARTITION", "COMMITTED", "HIGH-WATERMARK",
           "LAG", "MEMBER (CLIENT-ID, HOST)");
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(d, "offsets"), i, r)
    {
        char c[24], h[24], l[24], who[512] = "-";
        const char *member = json_string_value(json_object_get(r, "member_id"));
        size_t k;
        json_t *m;
        json_array_foreach(json_object_get(d, "members"), k, m)
        {
            if (member && !strcmp(member, cli_json_str(m, "member_id")))
                snprintf(who, sizeof(who), "%s (%s, %s)", member, cli_json_str(m, "client_id"),
                         cli_json_str(m, "client_host"));
        }
        printf("%-32s %9" PRId64 " %14s %14s %10s  %s\n", cli_json_str(r, "topic"),
               cli_json_int(r, "partition"), num(r, "committed", c, sizeof(c)),
               num(r, "high_watermark", h, sizeof(h)), num(r, "lag", l, sizeof(l)), who);
    }
}

static void print_reset(const json_t *j)
{
    bool dry = json_is_true(json_object_get(j, "dry_run"));
    printf("%-32s %9s %14s %14s\n", "TOPIC", "PARTITION", "PREVIOUS", "NEW");
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(j, "offsets"), i, r)
    {
        char p[24], n[24];
        printf("%-32s %9" PRId64 " %14s %14s\n", cli_json_str(r, "topic"),
               cli_json_int(r, "partition"), num(r, "previous", p, sizeof(p)),
               num(r, "offset", n, sizeof(n)));
    }
    printf(dry ? "(dry run: nothing was changed)\n" : "reset %zu offsets of group %s\n",
           json_array_size(json_object_get(j, "offsets")), cli_json_str(j, "group"));
}

enum { OPT_EARLIEST = 1000, OPT_LATEST, OPT_OFFSET, OPT_TIME };

static int group_option(void *opts, int c, const char *arg)
{
    group_opts *o = opts;
    switch (c) {
    case OPT_EARLIEST:
    case OPT_LATEST:
        o->to = c == OPT_EARLIEST ? TO_EARLIEST : TO_LATEST;
        o->tos++;
        return EXIT_OK;
    case OPT_OFFSET:
        if (!cli_parse_i64(arg, &o->value) || o->value < 0)
            return cli_usage_error("group", "--to-offset takes an offset, not '%s'", arg);
        o->to = TO_OFFSET;
        o->tos++;
        return EXIT_OK;
    case OPT_TIME:
        if (!cli_parse_time(arg, &o->value))
            return cli_usage_error("group",
                                   "--to-time takes milliseconds since the epoch "
                                   "or a UTC time like 2026-11-24T21:00:00Z, not "
                                   "'%s'",
                                   arg);
        o->to = TO_TIME;
        o->tos++;
        return EXIT_OK;
    case 't': {
        json_t *spec = topic_spec(arg);
        const char *name = json_is_string(spec)
                               ? json_string_value(spec)
                               : json_string_value(json_object_get(spec, "topic"));
        bool ok = name && td_topic_name_validate(name) == 0;
        json_decref(spec);
        if (!ok)
            return cli_usage_error("group", "--topic takes TOPIC or TOPIC:P,P..., not '%s'", arg);
        if (o->ntopics == MAX_TOPICS)
            return cli_usage_error("group", "too many --topic");
        o->topics[o->ntopics++] = arg;
        return EXIT_OK;
    }
    default: /* 'n' */
        o->dry_run = true;
        return EXIT_OK;
    }
}

static const char *const group_actions[] = {"list", "describe", "reset", "delete", NULL};
static const struct option group_longopts[] = {{"to-earliest", no_argument, NULL, OPT_EARLIEST},
                                               {"to-latest", no_argument, NULL, OPT_LATEST},
                                               {"to-offset", required_argument, NULL, OPT_OFFSET},
                                               {"to-time", required_argument, NULL, OPT_TIME},
                                               {"topic", required_argument, NULL, 't'},
                                               {"dry-run", no_argument, NULL, 'n'},
                                               {NULL, 0, NULL, 0}};
static const cli_command group_command = {"group",        group_usage,     group_actions, "t:n",
                                          group_longopts, group_option};

/* The action's arguments: EXIT_OK or a usage error. */
static int check_args(const cli_run *run, const group_opts *o, const char *group)
{
    bool list = cli_run_is(run, "list");
    if (run->nargs > (list ? 0 : 1))
        return cli_usage_error("group", "unexpected argument '%s'", run->args[list ? 0 : 1]);
    if (!list && (!group || !*group || strlen(group) > TD_GROUP_NAME_MAX))
        return cli_usage_error("group", "group %s needs a group name (1 to %d bytes)",
                               run->action, TD_GROUP_NAME_MAX);
    bool reset = cli_run_is(run, "reset");
    if (reset && o->tos != 1)
        return cli_usage_error("group", "group reset needs one of --to-earliest, --to-latest, "
                                        "--to-offset and --to-time");
    if (!reset && (o->tos || o->ntopics || o->dry_run))
        return cli_usage_error("group", "--to-*, --topic and --dry-run go with group reset");
    return EXIT_OK;
}

int cmd_group(int argc, char **argv)
{
    group_opts o;
    memset(&o, 0, sizeof(o));
    cli_run run;
    int code = cli_run_parse(&group_command, argc, argv, &o, &run);
    if (code || run.help)
        goto out;
    const char *action = run.action, *group = run.nargs > 0 ? run.args[0] : NULL;
    o.data = run.data;
    if ((code = check_args(&run, &o, group)) != 0 || (code = cli_run_connect(&run)) != 0)
        goto out;
    json_t *answer = NULL;
    code = run.server ? group_remote(cli_run_remote(&run), action, group, &o, &answer)
                      : group_local(action, group, &o, &answer);
    if (code == EXIT_OK) {
        if (answer && run.json)
            cli_json_print(answer);
        else if (!strcmp(action, "list"))
            print_list(answer);
        else if (!strcmp(action, "describe"))
            print_describe(answer);
        else if (!strcmp(action, "reset"))
            print_reset(answer);
        else
            printf("deleted group %s\n", group);
    }
    json_decref(answer);
out:
    cli_run_end(&run);
    return code;
}
