/*
 * cmd_queue.c: tidings queue create|configure|list|describe|delete|receive|ack|nack: queue
 * groups (docs/queues.md), locally or on a running broker (/v1/queues).
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/command.h"

static const char queue_usage[] =
    "usage: tidings queue <action> [options]\n"
    "\n"
    "  create GROUP --topic TOPIC [--config KEY=VALUE ...]\n"
    "  configure GROUP --config KEY=VALUE ...\n"
    "  list [--json]\n"
    "  describe GROUP [--json]\n"
    "  delete GROUP\n"
    "  receive GROUP [--max N] [--wait MS] [--consumer NAME] [--ack] [--format text|json]\n"
    "  ack GROUP ID...\n"
    "  nack GROUP ID... [--delay MS] [--error TEXT]\n"
    "\n"
    "options:\n"
    "  -d, --data DIR          data directory (default: $TIDINGS_DATA, else ./data)\n"
    "  -s, --server URL        a running broker's HTTP address (default: $TIDINGS_SERVER;\n"
    "                          without either, the data directory)\n"
    "  -t, --topic TOPIC       the topic the group reads (create)\n"
    "  -c, --config KEY=VALUE  policy setting, repeatable:\n"
    "        ack.timeout.ms max.deliveries backoff.initial.ms backoff.multiplier\n"
    "        backoff.max.ms backoff.jitter dead.letter.topic ordering (none|key)\n"
    "        max.in.flight max.in.flight.per.consumer start (earliest|latest)\n"
    "        circuit.failure.rate (percent; 0: no breaker) circuit.window.ms\n"
    "        circuit.min.calls circuit.open.ms circuit.half.open.trials\n"
    "  -m, --max N             events to receive (1 to 1000; default 1)\n"
    "  -w, --wait MS           wait up to MS for events when there are none (remote; default 0)\n"
    "      --consumer NAME     the consumer's name, for its in-flight limit (default: cli)\n"
    "      --ack               ack what was received once printed\n"
    "  -f, --format FMT        receive: text (id and value per line; default) or json\n"
    "      --delay MS          nack: redeliver after MS instead of the backoff\n"
    "      --error TEXT        nack: the failure's text (kept in x-dlq-error)\n"
    "      --json              machine-readable output (the HTTP API's JSON)\n"
    "  -h, --help              this help\n";

#define MAX_CONFIGS 32
#define MAX_IDS 1000

typedef struct queue_opts {
    const char *data; /* the data directory (cli_run's) */
    const char *topic, *consumer, *error;
    td_config_entry configs[MAX_CONFIGS];
    char *config_text[MAX_CONFIGS];
    size_t nconfigs;
    int64_t max, wait, delay;
    bool fjson, ack;
} queue_opts;

/* Policy keys and the HTTP API's fields for them ("backoff.x" is x inside "backoff"). */
static const char *const field_of[][2] = {
    {"ack.timeout.ms", "ack_timeout_ms"},
    {"max.deliveries", "max_deliveries"},
    {"backoff.initial.ms", "backoff.initial_ms"},
    {"backoff.multiplier", "backoff.multiplier"},
    {"backoff.max.ms", "backoff.max_ms"},
    {"backoff.jitter", "backoff.jitter"},
    {"dead.letter.topic", "dead_letter_topic"},
    {"ordering", "ordering"},
    {"max.in.flight", "max_in_flight"},
    {"max.in.flight.per.consumer", "max_in_flight_per_consumer"},
    {"start", "start"},
    {"circuit.failure.rate", "circuit_breaker.failure_rate"},
    {"circuit.window.ms", "circuit_breaker.window_ms"},
    {"circuit.min.calls", "circuit_breaker.min_calls"},
    {"circuit.open.ms", "circuit_breaker.open_ms"},
    {"circuit.half.open.trials", "circuit_breaker.half_open_trials"},
};

/* The PUT body for the settings (checked first against a policy, for the same errors as
 * locally). */
static int policy_body(const queue_opts *o, json_t **out)
{
    td_queue_policy scratch;
    td_queue_policy_init(&scratch);
    if (td_queue_policy_apply(&scratch, o->configs, o->nconfigs) != 0)
        return cli_fail("queue settings", TD_ECONFIG);
    json_t *b = json_object();
    for (size_t i = 0; i < o->nconfigs; i++)
        for (size_t k = 0; k < sizeof(field_of) / sizeof(field_of[0]); k++) {
            if (strcmp(field_of[k][0], o->configs[i].key))
                continue;
            const char *f = field_of[k][1], *dot = strchr(f, '.');
            json_t *v = json_string(o->configs[i].value);
            if (dot) { /* a field of an object: "backoff", "circuit_breaker" */
                char obj[32];
                snprintf(obj, sizeof(obj), "%.*s", (int)(dot - f), f);
                json_t *inner = json_object_get(b, obj);
                if (!inner)
                    json_object_set_new(b, obj, inner = json_object());
                json_object_set_new(inner, dot + 1, v);
            } else {
                json_object_set_new(b, f, v);
            }
        }
    *out = b;
    return EXIT_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Local mode: the answers built as the HTTP API gives them
 */
static json_t *info_json(const td_queue_info *q)
{
    char *text = td_queue_info_json(q); /* the broker's own text for it */
    json_t *o = text ? json_loads(text, 0, NULL) : NULL;
    free(text);
    return o;
}

static const char *result_name(int r)
{
    return r == 0 ? "ok" : r == TD_ESTALE ? "stale" : "unknown";
}

static int queue_local(const char *action, const char *group, char **ids, size_t nids,
                       const queue_opts *o, json_t **out)
{
    td_engine *e;
    int rc = 0, code = cli_open(o->data, !strcmp(action, "create"), &e);
    if (code)
        return code;
    if (!strcmp(action, "create") || !strcmp(action, "configure")) {
        td_queue_info info;
        td_queue_policy p;
        td_queue_policy_init(&p);
        bool create = !strcmp(action, "create");
        if (!create && (rc = td_queue_describe(e, group, &info)) == 0)
            p = info.policy;
        if (rc == 0)
            rc = td_queue_policy_apply(&p, o->configs, o->nconfigs);
        if (rc == 0)
            rc =
                create ? td_queue_create(e, group, o->topic, &p) : td_queue_configure(e, group, &p);
        if (rc == 0 && (rc = td_queue_describe(e, group, &info)) == 0)
            *out = info_json(&info);
        code = rc ? cli_fail(create ? "creating queue group" : "configuring queue group", rc) : 0;
    } else if (!strcmp(action, "list")) {
        td_queue_info *v;
        size_t n;
        if ((rc = td_queue_list(e, &v, &n)) == 0) {
            json_t *arr = json_array();
            for (size_t i = 0; i < n; i++)
                json_array_append_new(arr, info_json(&v[i]));
            free(v);
            *out = json_pack("{s:o}", "queues", arr);
        }
        code = rc ? cli_fail("listing queue groups", rc) : 0;
    } else if (!strcmp(action, "describe")) {
        td_queue_info info;
        if ((rc = td_queue_describe(e, group, &info)) == 0)
            *out = info_json(&info);
        code = rc ? cli_fail("describing queue group", rc) : 0;
    } else if (!strcmp(action, "delete")) {
        rc = td_queue_delete(e, group);
        code = rc ? cli_fail("deleting queue group", rc) : 0;
    } else if (!strcmp(action, "receive")) {
        td_queue_msg *m;
        size_t n;
        rc = td_queue_receive(e, group, o->consumer, (size_t)o->max, &m, &n);
        if (rc == 0) {
            json_t *arr = json_array();
            for (size_t i = 0; i < n; i++) {
                json_t *x = json_pack("{s:s}", "id", m[i].id);
                json_t *ev = cli_event_json(m[i].topic, &m[i].event);
                json_object_update(x, ev);
                json_decref(ev);
                json_object_set_new(x, "deliveries", json_integer(m[i].deliveries));
                json_array_append_new(arr, x);
            }
            td_queue_msgs_free(m, n);
            *out = json_pack("{s:o}", "events", arr);
        }
        code = rc ? cli_fail("receiving", rc) : 0;
    } else { /* ack, nack */
        int *res = calloc(nids, sizeof(int));
        bool ack = !strcmp(action, "ack");
        rc = !res ? -12
             : ack
                 ? td_queue_ack(e, group, (const char *const *)ids, nids, res)
                 : td_queue_nack(e, group, (const char *const *)ids, nids, o->delay, o->error, res);
        if (rc == 0) {
            json_t *arr = json_array();
            for (size_t i = 0; i < nids; i++)
                json_array_append_new(
                    arr, json_pack("{s:s,s:s}", "id", ids[i], "result", result_name(res[i])));
            *out = json_pack("{s:o}", "results", arr);
        }
        free(res);
        code = rc ? cli_fail(ack ? "acking" : "nacking", rc) : 0;
    }
    return cli_close(e, code);
}

/* ---------------------------------------------------------------------------------------------
 * Remote mode
 */
static int queue_remote(cli_remote *r, const char *action, const char *group, char **ids,
                        size_t nids, const queue_opts *o, json_t **out)
{
    int code = EXIT_OK;
    char path[512];
    snprintf(path, sizeof(path), "/v1/queues%s%s", group ? "/" : "", group ? group : "");
    json_t *body = NULL;
    if (!strcmp(action, "create") || !strcmp(action, "configure")) {
        bool create = !strcmp(action, "create");
        if ((code = policy_body(o, &body)) == 0) {
            if (create)
                json_object_set_new(body, "topic", json_string(o->topic));
            /* PUT creates or configures: create must not configure, nor configure create. */
            const char *what = create ? "creating queue group" : "configuring queue group";
            bool exists = false;
            code = cli_remote_get_if_exists(r, path, NULL, &exists, what);
            if (code == 0 && exists == create) {
                fprintf(stderr, "tidings: %s: queue group '%s' %s\n", what, group,
                        create ? "already exists" : "does not exist");
                code = create ? EXIT_RUNTIME : EXIT_NOTFOUND;
            }
            if (code == 0)
                code = cli_remote_call(r, "PUT", path, body, out,
                                       create ? "creating queue group" : "configuring queue group");
        }
    } else if (!strcmp(action, "list")) {
        code = cli_remote_call(r, "GET", path, NULL, out, "listing queue groups");
    } else if (!strcmp(action, "describe")) {
        code = cli_remote_call(r, "GET", path, NULL, out, "describing queue group");
    } else if (!strcmp(action, "delete")) {
        code = cli_remote_call(r, "DELETE", path, NULL, NULL, "deleting queue group");
    } else if (!strcmp(action, "receive")) {
        body = json_pack("{s:I,s:I,s:s,s:s}", "max", (json_int_t)o->max, "wait_ms",
                         (json_int_t)o->wait, "consumer", o->consumer, "values", "string");
        strncat(path, "/receive", sizeof(path) - strlen(path) - 1);
        code = cli_remote_call(r, "POST", path, body, out, "receiving");
    } else {
        bool ack = !strcmp(action, "ack");
        json_t *arr = json_array();
        for (size_t i = 0; i < nids; i++)
            json_array_append_new(arr, json_string(ids[i]));
        body = json_pack("{s:o}", "ids", arr);
        if (!ack && o->delay >= 0)
            json_object_set_new(body, "delay_ms", json_integer(o->delay));
        if (!ack && o->error)
            json_object_set_new(body, "error", json_string(o->error));
        strncat(path, ack ? "/ack" : "/nack", sizeof(path) - strlen(path) - 1);
        code = cli_remote_call(r, "POST", path, body, out, ack ? "acking" : "nacking");
    }
    json_decref(body);
    return code;
}

/* ---------------------------------------------------------------------------------------------
 * Output
 */
static void print_list(const json_t *j)
{
    printf("%-28s %-28s %10s %10s %9s %12s\n", "GROUP", "TOPIC", "DEPTH", "IN-FLIGHT", "WAITING",
           "DEAD-LETTERED");
    size_t i;
    json_t *q;
    json_array_foreach(json_object_get(j, "queues"), i, q)
    {
        printf("%-28s %-28s %10" PRId64 " %10" PRId64 " %9" PRId64 " %12" PRId64 "\n",
               cli_json_str(q, "group"), cli_json_str(q, "topic"), cli_json_int(q, "depth"),
               cli_json_int(q, "in_flight"), cli_json_int(q, "waiting"),
               cli_json_int(q, "dead_lettered"));
    }
}

static void print_describe(const json_t *q)
{
    json_t *p = json_object_get(q, "policy"), *b = json_object_get(p, "backoff");
    char created[32];
    cli_format_time(cli_json_int(q, "created_ms"), created, sizeof(created));
    printf("group          %s\ntopic          %s", cli_json_str(q, "group"),
           cli_json_str(q, "topic"));
    if (strpbrk(cli_json_str(q, "topic"), "*#")) /* a pattern */
        printf(" (%" PRId64 " topics)", cli_json_int(q, "topic_count"));
    printf("\ncreated        %s\n", created);
    printf("depth          %" PRId64 "\nin flight      %" PRId64 "\nwaiting        %" PRId64
           "\nheld           %" PRId64 "\nconsumers      %" PRId64 "\n",
           cli_json_int(q, "depth"), cli_json_int(q, "in_flight"), cli_json_int(q, "waiting"),
           cli_json_int(q, "held"), cli_json_int(q, "consumers"));
    printf("acked          %" PRId64 "\nredelivered    %" PRId64 "\ndead-lettered  %" PRId64 "\n",
           cli_json_int(q, "acked"), cli_json_int(q, "redelivered"),
           cli_json_int(q, "dead_lettered"));
    printf("scheduled      %" PRId64 "\n", cli_json_int(q, "scheduled"));
    json_t *next = json_object_get(q, "next_scheduled_ms");
    if (json_is_integer(next)) {
        char t[32];
        cli_format_time(json_integer_value(next), t, sizeof(t));
        printf("next scheduled %s\n", t);
    }
    json_t *old = json_object_get(q, "oldest_unacked_ms");
    if (json_is_integer(old)) {
        char t[32];
        cli_format_time(json_integer_value(old), t, sizeof(t));
        printf("oldest unacked %s\n", t);
    }
    printf("policy\n  ack.timeout.ms              %" PRId64
           "\n  max.deliveries              %" PRId64 "\n  backoff                     %" PRId64
           " ms x %g, at most %" PRId64
           " ms, jitter %g\n  dead.letter.topic           %s\n  ordering                    %s\n"
           "  max.in.flight               %" PRId64 "\n  max.in.flight.per.consumer  %" PRId64
           "\n  start                       %s\n",
           cli_json_int(p, "ack_timeout_ms"), cli_json_int(p, "max_deliveries"),
           cli_json_int(b, "initial_ms"), json_number_value(json_object_get(b, "multiplier")),
           cli_json_int(b, "max_ms"), json_number_value(json_object_get(b, "jitter")),
           cli_json_str(p, "dead_letter_topic"), cli_json_str(p, "ordering"),
           cli_json_int(p, "max_in_flight"), cli_json_int(p, "max_in_flight_per_consumer"),
           cli_json_str(p, "start"));
}

/* Prints received events; collects their ids for --ack. */
static void print_events(const json_t *j, bool json, char ***ids, size_t *n)
{
    json_t *evs = json_object_get(j, "events"), *ev;
    size_t i;
    *ids = calloc(json_array_size(evs) ? json_array_size(evs) : 1, sizeof(char *));
    *n = 0;
    json_array_foreach(evs, i, ev)
    {
        if (*ids)
            (*ids)[(*n)++] = strdup(cli_json_str(ev, "id"));
        if (!json) {
            printf("%s\t", cli_json_str(ev, "id"));
        }
        cli_print_event(ev, json);
    }
}

/* Whether s looks like a delivery id, "<topic id>.<partition>.<offset>.<delivery count>" (as
 * receive prints them): four decimal numbers. The broker checks their ranges. */
static bool id_looks_valid(const char *s)
{
    static const size_t max_digits[4] = {19, 10, 19, 10};
    for (int part = 0; part < 4; part++) {
        size_t n = strspn(s, "0123456789");
        if (n == 0 || n > max_digits[part])
            return false;
        s += n;
        if (part < 3 && *s++ != '.')
            return false;
    }
    return *s == 0;
}

static int parse_id_results(const json_t *j)
{
    json_t *r;
    size_t i;
    int code = EXIT_OK;
    json_array_foreach(json_object_get(j, "results"), i, r)
    {
        printf("%s %s\n", cli_json_str(r, "id"), cli_json_str(r, "result"));
        if (strcmp(cli_json_str(r, "result"), "ok"))
            code = EXIT_RUNTIME;
    }
    return code;
}

enum { OPT_CONSUMER = 1000, OPT_ACK, OPT_DELAY, OPT_ERROR };

static int queue_option(void *opts, int c, const char *arg)
{
    queue_opts *o = opts;
    switch (c) {
    case 't':
        o->topic = arg;
        return EXIT_OK;
    case 'c': {
        const char *eq = strchr(arg, '=');
        if (!eq || eq == arg || o->nconfigs == MAX_CONFIGS)
            return cli_usage_error("queue", "--config takes KEY=VALUE, not '%s'", arg);
        char *copy = strdup(arg);
        if (!copy)
            return EXIT_RUNTIME;
        copy[eq - arg] = 0;
        o->config_text[o->nconfigs] = copy;
        o->configs[o->nconfigs++] = (td_config_entry){copy, copy + (eq - arg) + 1};
        return EXIT_OK;
    }
    case 'm':
        if (!cli_parse_i64(arg, &o->max) || o->max < 1 || o->max > 1000)
            return cli_usage_error("queue", "--max takes 1 to 1000, not '%s'", arg);
        return EXIT_OK;
    case 'w':
        if (!cli_parse_i64(arg, &o->wait) || o->wait < 0 || o->wait > 60000)
            return cli_usage_error("queue", "--wait takes 0 to 60000 ms, not '%s'", arg);
        return EXIT_OK;
    case OPT_CONSUMER:
        if (!*arg || strlen(arg) > 63)
            return cli_usage_error("queue", "--consumer takes a name of 1 to 63 bytes");
        o->consumer = arg;
        return EXIT_OK;
    case OPT_ACK:
        o->ack = true;
        return EXIT_OK;
    case 'f':
        if (strcmp(arg, "json") && strcmp(arg, "text"))
            return cli_usage_error("queue", "--format is text or json, not '%s'", arg);
        o->fjson = !strcmp(arg, "json");
        return EXIT_OK;
    case OPT_DELAY:
        if (!cli_parse_i64(arg, &o->delay) || o->delay < 0 || o->delay > 86400000)
            return cli_usage_error("queue", "--delay takes 0 to 86400000 ms, not '%s'", arg);
        return EXIT_OK;
    default: /* OPT_ERROR */
        o->error = arg;
        return EXIT_OK;
    }
}

static const char *const queue_actions[] = {"create",  "configure", "list", "describe", "delete",
                                            "receive", "ack",       "nack", NULL};
static const struct option queue_longopts[] = {{"topic", required_argument, NULL, 't'},
                                               {"config", required_argument, NULL, 'c'},
                                               {"max", required_argument, NULL, 'm'},
                                               {"wait", required_argument, NULL, 'w'},
                                               {"consumer", required_argument, NULL, OPT_CONSUMER},
                                               {"ack", no_argument, NULL, OPT_ACK},
                                               {"format", required_argument, NULL, 'f'},
                                               {"delay", required_argument, NULL, OPT_DELAY},
                                               {"error", required_argument, NULL, OPT_ERROR},
                                               {NULL, 0, NULL, 0}};
static const cli_command queue_command = {"queue",        queue_usage,     queue_actions,
                                          "t:c:m:w:f:",   queue_longopts, queue_option};

/* The action's arguments (the group, the ids of ack and nack) and the options it needs:
 * EXIT_OK or a usage error. */
static int check_args(const cli_run *run, const queue_opts *o)
{
    const char *action = run->action, *group = run->nargs > 0 ? run->args[0] : NULL;
    bool list = cli_run_is(run, "list"),
         ids_action = cli_run_is(run, "ack") || cli_run_is(run, "nack");
    char **ids = run->args + 1;
    size_t nids = run->nargs > 1 ? (size_t)(run->nargs - 1) : 0;
    if (!list && (!group || td_topic_name_validate(group) != 0))
        return cli_usage_error("queue", "queue %s needs a group name (the rules of topic names)",
                               action);
    if ((list && group) || (!list && !ids_action && nids))
        return cli_usage_error("queue", "unexpected argument '%s'", list ? group : ids[0]);
    if (ids_action && (nids == 0 || nids > MAX_IDS))
        return cli_usage_error("queue", "queue %s needs 1 to 1000 delivery ids", action);
    for (size_t i = 0; ids_action && i < nids; i++)
        if (!id_looks_valid(ids[i]))
            return cli_usage_error("queue",
                                   "'%s' is not a delivery id: ids look like 3.0.17.1 (topic "
                                   "id, partition, offset, delivery), as queue receive prints "
                                   "them",
                                   ids[i]);
    if (cli_run_is(run, "create") && (!o->topic || !*o->topic)) /* checked by the engine */
        return cli_usage_error("queue", "queue create needs --topic TOPIC (or a PATTERN)");
    if (cli_run_is(run, "configure") && o->nconfigs == 0)
        return cli_usage_error("queue", "queue configure needs --config KEY=VALUE");
    if (!run->server && o->wait)
        return cli_usage_error("queue", "--wait needs a running broker (--server)");
    return EXIT_OK;
}

/* One action, locally or on the broker. */
static int queue_do(cli_run *run, const char *action, const char *group, char **ids, size_t nids,
                    const queue_opts *o, json_t **out)
{
    return run->server ? queue_remote(cli_run_remote(run), action, group, ids, nids, o, out)
                       : queue_local(action, group, ids, nids, o, out);
}

/* receive: prints the events, then acks them with --ack. */
static int receive(cli_run *run, const char *group, const queue_opts *o, const json_t *answer)
{
    char **got = NULL;
    size_t ngot = 0;
    int code = EXIT_OK;
    print_events(answer, o->fjson, &got, &ngot);
    fflush(stdout);
    if (o->ack && ngot) {
        json_t *acked = NULL;
        code = queue_do(run, "ack", group, got, ngot, o, &acked);
        json_t *r;
        size_t i;
        json_array_foreach(json_object_get(acked, "results"), i, r)
        {
            if (strcmp(cli_json_str(r, "result"), "ok") && code == EXIT_OK) {
                fprintf(stderr, "tidings: acking: %s is %s\n", cli_json_str(r, "id"),
                        cli_json_str(r, "result"));
                code = EXIT_RUNTIME;
            }
        }
        json_decref(acked);
    }
    for (size_t i = 0; got && i < ngot; i++)
        free(got[i]);
    free(got);
    return code;
}

/* The answer of any other action, as text (or as its JSON with --json). */
static int print_answer(const cli_run *run, const char *group, const json_t *answer)
{
    const char *action = run->action;
    if (answer && run->json)
        cli_json_print(answer);
    else if (cli_run_is(run, "list"))
        print_list(answer);
    else if (cli_run_is(run, "describe"))
        print_describe(answer);
    else if (cli_run_is(run, "create") || cli_run_is(run, "configure"))
        printf("%s queue group %s\n", strcmp(action, "create") ? "configured" : "created", group);
    else if (cli_run_is(run, "ack") || cli_run_is(run, "nack"))
        return parse_id_results(answer);
    else
        printf("deleted queue group %s\n", group);
    return EXIT_OK;
}

int cmd_queue(int argc, char **argv)
{
    queue_opts o;
    memset(&o, 0, sizeof(o));
    o.max = 1;
    o.delay = -1;
    o.consumer = "cli";
    cli_run run;
    int code = cli_run_parse(&queue_command, argc, argv, &o, &run);
    if (code || run.help)
        goto out;
    o.data = run.data;
    if ((code = check_args(&run, &o)) != 0 || (code = cli_run_connect(&run)) != 0)
        goto out;
    const char *group = run.nargs > 0 ? run.args[0] : NULL;
    char **ids = run.args + 1;
    size_t nids = run.nargs > 1 ? (size_t)(run.nargs - 1) : 0;
    json_t *answer = NULL;
    code = queue_do(&run, run.action, group, ids, nids, &o, &answer);
    if (code == EXIT_OK)
        code = cli_run_is(&run, "receive") ? receive(&run, group, &o, answer)
                                           : print_answer(&run, group, answer);
    json_decref(answer);
out:
    cli_run_end(&run);
    for (size_t i = 0; i < o.nconfigs; i++)
        free(o.config_text[i]);
    return code;
}
