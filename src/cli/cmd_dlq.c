/*
 * cmd_dlq.c: tidings dlq list|show|redrive: dead-letter topics (docs/queues.md), locally or on a
 * running broker.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/command.h"

static const char dlq_usage[] =
    "usage: tidings dlq <action> [options]\n"
    "\n"
    "  list [--json]                 dead-letter topics, their events and queue groups\n"
    "  show DLQ [--max N] [--partition P] [--json]\n"
    "                                dead-lettered events: origin, deliveries, error, value\n"
    "  redrive DLQ [--to TOPIC] [--partition P] [--from-offset N] [--to-offset N]\n"
    "              [--since T] [--until T] [--keep] [--json]\n"
    "                                move them back to their origin (or TOPIC)\n"
    "\n"
    "options:\n"
    "  -d, --data DIR          data directory (default: $TIDINGS_DATA, else ./data)\n"
    "  -s, --server URL        a running broker's HTTP address (default: $TIDINGS_SERVER;\n"
    "                          without either, the data directory)\n"
    "  -m, --max N             show: at most N events (default 100)\n"
    "  -p, --partition P       only partition P\n"
    "      --to TOPIC          redrive to TOPIC instead of each event's origin\n"
    "      --from-offset N     redrive from offset N (with --partition on several)\n"
    "      --to-offset N       redrive up to offset N (excluded)\n"
    "      --since T, --until T  redrive what was dead-lettered in [T, T'): milliseconds\n"
    "                          since the epoch, or UTC like 2026-11-24T21:00:00Z\n"
    "      --keep              copy, leaving the events in the dead-letter topic\n"
    "      --progress, --no-progress  a progress bar on standard error (default: on a\n"
    "                          terminal)\n"
    "      --json              machine-readable output\n"
    "  -h, --help              this help\n";

typedef struct dlq_opts {
    const char *data; /* the data directory (cli_run's) */
    const char *to;
    int64_t max, partition, from, upto, since, until;
    bool keep, json;
    int progress;
} dlq_opts;

/* ---------------------------------------------------------------------------------------------
 * list
 */
/* Adds topic to the list (with its group when not NULL). */
static void dlq_add(json_t *list, const char *topic, const char *group)
{
    json_t *d, *found = NULL;
    size_t i;
    json_array_foreach(list, i, d)
    {
        if (!strcmp(cli_json_str(d, "topic"), topic))
            found = d;
    }
    if (!found) {
        found = json_pack("{s:s,s:i,s:[]}", "topic", topic, "events", 0, "groups");
        json_array_append_new(list, found);
    }
    if (group)
        json_array_append_new(json_object_get(found, "groups"), json_string(group));
}

/* A group's dead-letter topic(s): one name, or for a wildcard group a pattern ("orders.*.dlq"),
 * whose matches among the topics in the list so far get the group (the pattern itself is
 * listed while none exists yet). */
static void dlq_add_group(json_t *list, const char *dlq, const char *group)
{
    if (!strpbrk(dlq, "*#")) {
        dlq_add(list, dlq, group);
        return;
    }
    json_t *d;
    size_t i;
    bool any = false;
    json_array_foreach(list, i, d)
    {
        if (!strpbrk(cli_json_str(d, "topic"), "*#") &&
            td_topic_matches(dlq, cli_json_str(d, "topic"))) {
            json_array_append_new(json_object_get(d, "groups"), json_string(group));
            any = true;
        }
    }
    if (!any)
        dlq_add(list, dlq, group);
}

static bool is_dlq_name(const char *t)
{
    size_t n = strlen(t);
    return n > 4 && !strcmp(t + n - 4, ".dlq");
}

static int list_local(const dlq_opts *o, json_t **out)
{
    td_engine *e;
    int rc = cli_open(o->data, false, &e);
    if (rc)
        return rc;
    json_t *list = json_array();
    td_queue_info *q = NULL;
    td_topic_info *t = NULL;
    size_t nq = 0, nt = 0;
    if ((rc = td_queue_list(e, &q, &nq)) == 0 && (rc = td_topic_list(e, &t, &nt)) == 0) {
        for (size_t i = 0; i < nt; i++)
            if (is_dlq_name(t[i].name))
                dlq_add(list, t[i].name, NULL);
        for (size_t i = 0; i < nq; i++)
            dlq_add_group(list, q[i].dead_letter_topic, q[i].group);
        json_t *d;
        size_t i;
        json_array_foreach(list, i, d)
        {
            td_topic_info ti;
            int64_t events = 0;
            bool exists = td_topic_describe(e, cli_json_str(d, "topic"), &ti) == 0;
            for (int32_t p = 0; exists && p < ti.partitions; p++) {
                td_partition_info pi;
                if (td_partition_describe(e, ti.name, p, &pi) == 0)
                    events += pi.high_watermark - pi.log_start_offset;
            }
            json_object_set_new(d, "events", json_integer(events));
            json_object_set_new(d, "exists", json_boolean(exists));
        }
    }
    free(q);
    free(t);
    int closed = td_engine_close(e);
    rc = rc ? rc : closed;
    if (rc) {
        json_decref(list);
        return cli_fail("listing dead-letter topics", rc);
    }
    *out = json_pack("{s:o}", "dead_letter_topics", list);
    return EXIT_OK;
}

static int list_remote(cli_remote *r, json_t **out)
{
    json_t *qs = NULL, *ts = NULL, *list = json_array();
    int code = cli_remote_call(r, "GET", "/v1/queues", NULL, &qs, "listing queue groups");
    if (code == 0)
        code = cli_remote_call(r, "GET", "/v1/topics", NULL, &ts, "listing topics");
    json_t *x;
    size_t i;
    json_array_foreach(json_object_get(ts, "topics"), i, x)
    {
        if (is_dlq_name(cli_json_str(x, "name")))
            dlq_add(list, cli_json_str(x, "name"), NULL);
    }
    json_array_foreach(json_object_get(qs, "queues"), i, x)
    {
        dlq_add_group(list, cli_json_str(json_object_get(x, "policy"), "dead_letter_topic"),
                      cli_json_str(x, "group"));
    }
    json_array_foreach(list, i, x)
    {
        char path[1024], seg[CLI_SEGMENT_MAX];
        json_t *t = NULL;
        int64_t events = 0;
        bool exists = false;
        snprintf(path, sizeof(path), "/v1/topics/%s",
                 cli_path_segment(cli_json_str(x, "topic"), seg));
        if (code == 0 && td_topic_name_validate(cli_json_str(x, "topic")) == 0) {
            /* Created with its first dead letter: a 404 is "none yet". */
            code = cli_remote_get_if_exists(r, path, &t, &exists, "listing dead-letter topics");
        }
        json_t *p;
        size_t k;
        json_array_foreach(json_object_get(t, "partitions"), k, p)
        {
            events += cli_json_int(p, "high_watermark") - cli_json_int(p, "log_start_offset");
        }
        json_decref(t);
        json_object_set_new(x, "events", json_integer(events));
        json_object_set_new(x, "exists", json_boolean(exists));
    }
    json_decref(qs);
    json_decref(ts);
    if (code) {
        json_decref(list);
        return code;
    }
    *out = json_pack("{s:o}", "dead_letter_topics", list);
    return EXIT_OK;
}

static void print_list(const json_t *j)
{
    printf("%-40s %10s  %s\n", "DEAD-LETTER TOPIC", "EVENTS", "QUEUE GROUPS");
    json_t *d;
    size_t i;
    json_array_foreach(json_object_get(j, "dead_letter_topics"), i, d)
    {
        char groups[512] = "";
        json_t *g;
        size_t k;
        json_array_foreach(json_object_get(d, "groups"), k, g)
        {
            size_t n = strlen(groups);
            snprintf(groups + n, sizeof(groups) - n, "%s%s", n ? "," : "", json_string_value(g));
        }
        printf("%-40s %10" PRId64 "  %s%s\n", cli_json_str(d, "topic"), cli_json_int(d, "events"),
               groups[0] ? groups : "-",
               json_is_false(json_object_get(d, "exists")) ? " (no dead letters yet)" : "");
    }
}

/* ---------------------------------------------------------------------------------------------
 * show
 */
static const char *header(const json_t *ev, const char *name)
{
    json_t *h;
    size_t i;
    json_array_foreach(json_object_get(ev, "headers"), i, h)
    {
        if (!strcmp(cli_json_str(h, "key"), name))
            return json_string_value(json_object_get(h, "value"));
    }
    return NULL;
}

static void show_event(const json_t *ev, bool json)
{
    if (json)
        return cli_json_print(ev);
    char when[32] = "-";
    const char *failed = header(ev, "x-dlq-last-failure-ms");
    if (failed)
        cli_format_time(strtoll(failed, NULL, 10), when, sizeof(when));
    const char *t = header(ev, "x-dlq-topic"), *p = header(ev, "x-dlq-partition"),
               *o = header(ev, "x-dlq-offset"), *d = header(ev, "x-dlq-deliveries"),
               *err = header(ev, "x-dlq-error");
    char origin[300];
    snprintf(origin, sizeof(origin), "%s/%s@%s", t ? t : "?", p ? p : "?", o ? o : "?");
    printf("%-9" PRId64 " %-10" PRId64 " %-32s %10s  %-20s  %-30s ", cli_json_int(ev, "partition"),
           cli_json_int(ev, "offset"), origin, d ? d : "-", when, err ? err : "-");
    cli_print_event(ev, false);
}

static void show_one(void *arg, const json_t *ev)
{
    show_event(ev, *(const bool *)arg);
}

static int show(const char *dlq, const dlq_opts *o, cli_remote *r)
{
    if (!o->json)
        printf("%-9s %-10s %-32s %10s  %-20s  %-30s %s\n", "PARTITION", "OFFSET",
               "ORIGIN (TOPIC/PARTITION@OFFSET)", "DELIVERIES", "DEAD-LETTERED", "ERROR", "VALUE");
    cli_read_opts ro = {
        .data = o->data, .start = CLI_START_BEGINNING, .partition = o->partition, .max = o->max};
    return cli_read_events(r, dlq, &ro, "showing", show_one, (void *)&o->json);
}

/* ---------------------------------------------------------------------------------------------
 * redrive
 */
static void draw(bool on, int64_t done, int64_t total)
{
    if (!on)
        return;
    char bar[64];
    cli_bar(bar, sizeof(bar), total > 0 ? (double)done / (double)total : 1.0);
    cli_progress_line(false, "%s  %" PRId64 "/%" PRId64 " events", bar, done, total);
}

typedef struct local_progress {
    bool on;
    int64_t last_ms;
} local_progress;

static int on_progress(void *arg, int64_t done, int64_t total)
{
    local_progress *lp = arg;
    int64_t now = cli_mono_ms();
    if (now - lp->last_ms >= 200 || done == total) {
        lp->last_ms = now;
        draw(lp->on, done, total);
    }
    return 0;
}

static int redrive(const char *dlq, const dlq_opts *o, cli_remote *r, bool bar, json_t **out)
{
    if (!r) {
        td_engine *e;
        int rc = cli_open(o->data, false, &e);
        if (rc)
            return rc;
        td_redrive_opts ro;
        td_redrive_opts_init(&ro);
        ro.to_topic = o->to;
        ro.partition = (int32_t)o->partition;
        ro.from_offset = o->from;
        ro.to_offset = o->upto;
        ro.since_ms = o->since;
        ro.until_ms = o->until;
        ro.keep = o->keep;
        local_progress lp = {bar, 0};
        ro.progress = on_progress;
        ro.arg = &lp;
        td_redrive_result res;
        rc = td_redrive(e, dlq, &ro, &res);
        int closed = td_engine_close(e);
        rc = rc ? rc : closed;
        if (rc) {
            if (bar)
                fputc('\n', stderr);
            return cli_fail("redriving", rc);
        }
        *out = json_pack("{s:s,s:s,s:I,s:I,s:I,s:I}", "topic", dlq, "state", "done", "total",
                         (json_int_t)res.total, "moved", (json_int_t)res.moved, "skipped",
                         (json_int_t)res.skipped, "deleted", (json_int_t)res.deleted);
        return EXIT_OK;
    }
    json_t *b = json_object();
    if (o->to)
        json_object_set_new(b, "to_topic", json_string(o->to));
    const char *names[] = {"partition", "from_offset", "to_offset", "since", "until"};
    int64_t vals[] = {o->partition, o->from, o->upto, o->since, o->until};
    for (int i = 0; i < 5; i++)
        if (vals[i] >= 0)
            json_object_set_new(b, names[i], json_integer(vals[i]));
    if (o->keep)
        json_object_set_new(b, "keep", json_true());
    char path[1024], seg[CLI_SEGMENT_MAX];
    snprintf(path, sizeof(path), "/v1/topics/%s/redrive", cli_path_segment(dlq, seg));
    json_t *job = NULL;
    int code = cli_remote_call(r, "POST", path, b, &job, "redriving");
    json_decref(b);
    /* The job runs on the broker: follow it. */
    while (code == 0 && !strcmp(cli_json_str(job, "state"), "running")) {
        draw(bar, cli_json_int(job, "done"), cli_json_int(job, "total"));
        usleep(200 * 1000);
        snprintf(path, sizeof(path), "/v1/redrives/%" PRId64, cli_json_int(job, "id"));
        json_t *next = NULL;
        code = cli_remote_call(r, "GET", path, NULL, &next, "following the redrive");
        if (code == 0) {
            json_decref(job);
            job = next;
        }
    }
    if (code == 0 && !strcmp(cli_json_str(job, "state"), "failed")) {
        if (bar)
            fputc('\n', stderr);
        fprintf(stderr, "tidings: redriving: %s (moved %" PRId64 " before that)\n",
                cli_json_str(job, "error"), cli_json_int(job, "moved"));
        code = EXIT_RUNTIME;
    }
    if (code) {
        json_decref(job);
        return code;
    }
    *out = job;
    return EXIT_OK;
}

enum { OPT_TO = 1000, OPT_FROM, OPT_UPTO, OPT_SINCE, OPT_UNTIL, OPT_KEEP, OPT_PROGRESS,
       OPT_NO_PROGRESS };

static int dlq_option(void *opts, int c, const char *arg)
{
    dlq_opts *o = opts;
    int64_t *num = c == 'm'        ? &o->max
                   : c == 'p'      ? &o->partition
                   : c == OPT_FROM ? &o->from
                   : c == OPT_UPTO ? &o->upto
                                   : NULL;
    switch (c) {
    case 'm':
    case 'p':
    case OPT_FROM:
    case OPT_UPTO:
        if (!cli_parse_i64(arg, num) || *num < (c == 'm' ? 1 : 0) || *num > INT32_MAX * 2LL)
            return cli_usage_error("dlq", "'%s' is not a valid number here", arg);
        return EXIT_OK;
    case OPT_SINCE:
    case OPT_UNTIL:
        if (!cli_parse_time(arg, c == OPT_SINCE ? &o->since : &o->until))
            return cli_usage_error("dlq",
                                   "--since and --until take milliseconds since the "
                                   "epoch or a UTC time like 2026-11-24T21:00:00Z, "
                                   "not '%s'",
                                   arg);
        return EXIT_OK;
    case OPT_TO:
        if (td_topic_name_validate(arg) != 0)
            return cli_usage_error("dlq", "--to takes a topic name, not '%s'", arg);
        o->to = arg;
        return EXIT_OK;
    case OPT_KEEP:
        o->keep = true;
        return EXIT_OK;
    default: /* OPT_PROGRESS, OPT_NO_PROGRESS */
        o->progress = c == OPT_PROGRESS;
        return EXIT_OK;
    }
}

static const char *const dlq_actions[] = {"list", "show", "redrive", NULL};
static const struct option dlq_longopts[] = {{"max", required_argument, NULL, 'm'},
                                             {"partition", required_argument, NULL, 'p'},
                                             {"to", required_argument, NULL, OPT_TO},
                                             {"from-offset", required_argument, NULL, OPT_FROM},
                                             {"to-offset", required_argument, NULL, OPT_UPTO},
                                             {"since", required_argument, NULL, OPT_SINCE},
                                             {"until", required_argument, NULL, OPT_UNTIL},
                                             {"keep", no_argument, NULL, OPT_KEEP},
                                             {"progress", no_argument, NULL, OPT_PROGRESS},
                                             {"no-progress", no_argument, NULL, OPT_NO_PROGRESS},
                                             {NULL, 0, NULL, 0}};
static const cli_command dlq_command = {"dlq", dlq_usage, dlq_actions, "m:p:", dlq_longopts,
                                        dlq_option};

/* redrive, with its progress bar and its summary. */
static int redrive_print(const char *dlq, const dlq_opts *o, cli_remote *r)
{
    json_t *answer = NULL;
    bool bar = o->progress == 1 || (o->progress == -1 && isatty(STDERR_FILENO));
    int code = redrive(dlq, o, r, bar, &answer);
    if (code == 0) {
        if (bar)
            draw(true, cli_json_int(answer, "total"), cli_json_int(answer, "total"));
        if (bar)
            fputc('\n', stderr);
        if (o->json)
            cli_json_print(answer);
        else
            printf("moved %" PRId64 " events from %s (%" PRId64 " skipped; %" PRId64
                   " removed from it)\n",
                   cli_json_int(answer, "moved"), dlq, cli_json_int(answer, "skipped"),
                   cli_json_int(answer, "deleted"));
    }
    json_decref(answer);
    return code;
}

int cmd_dlq(int argc, char **argv)
{
    dlq_opts o = {.max = 100,
                  .partition = -1,
                  .from = -1,
                  .upto = -1,
                  .since = -1,
                  .until = -1,
                  .progress = -1};
    cli_run run;
    int code = cli_run_parse(&dlq_command, argc, argv, &o, &run);
    if (code || run.help)
        goto out;
    const char *dlq = run.nargs > 0 ? run.args[0] : NULL;
    bool list = cli_run_is(&run, "list");
    o.data = run.data;
    o.json = run.json;
    if (run.nargs > (list ? 0 : 1))
        code = cli_usage_error("dlq", "unexpected argument '%s'", run.args[list ? 0 : 1]);
    else if (!list && (!dlq || td_topic_name_validate(dlq) != 0))
        code = cli_usage_error("dlq", "dlq %s needs a dead-letter topic", run.action);
    if (code || (code = cli_run_connect(&run)) != 0)
        goto out;
    cli_remote *r = cli_run_remote(&run);
    if (list) {
        json_t *answer = NULL;
        code = r ? list_remote(r, &answer) : list_local(&o, &answer);
        if (code == 0)
            o.json ? cli_json_print(answer) : print_list(answer);
        json_decref(answer);
    } else if (cli_run_is(&run, "show")) {
        code = show(dlq, &o, r);
    } else {
        code = redrive_print(dlq, &o, r);
    }
out:
    cli_run_end(&run);
    return code;
}
