/*
 * cmd_trace.c: `tidings trace TRACE-ID` and `tidings trace --caused TOPIC/PARTITION/OFFSET
 * [--depth N]` (docs/cli.md#trace, docs/tracing.md "Trace index"): a trace's events, or what an
 * event caused, as an indented tree with timings. Locally on a data directory
 * (td_trace_get, td_trace_caused) or on a broker (GET /v1/traces/{id}, GET .../caused); both
 * give the HTTP API's JSON, which --json prints as it is and the tree is drawn from.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "cli/cli.h"
#include "cli/remote.h"

static const char trace_usage[] =
    "usage: tidings trace TRACE-ID [--limit N] [--json] [--data DIR | --server URL]\n"
    "       tidings trace --caused TOPIC/PARTITION/OFFSET [--depth N] [--limit N] [--json]\n"
    "                     [--data DIR | --server URL]\n"
    "\n"
    "The events of a trace across the topics with trace.index=true, in causal order, drawn as\n"
    "a tree: each line an event (topic/partition/offset), its time since the trace's first\n"
    "event and since its parent, its span and its key. With --caused, the event and what it\n"
    "caused, transitively, to --depth levels (default 8, at most 32). --limit: the most events\n"
    "(default 1000, at most 10000).\n";

static json_t *hex_json(const uint8_t *b, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    char s[33];
    for (size_t i = 0; i < n; i++) {
        s[2 * i] = hex[b[i] >> 4];
        s[2 * i + 1] = hex[b[i] & 15];
    }
    return json_stringn(s, 2 * n);
}

/* A local answer in the HTTP API's shape (docs/http-api.md#traces). */
static json_t *result_json(const td_trace_result *r)
{
    int64_t t0 = INT64_MAX, t1 = INT64_MIN;
    for (size_t i = 0; i < r->n; i++) {
        t0 = TD_MIN(t0, r->events[i].timestamp_ms);
        t1 = TD_MAX(t1, r->events[i].timestamp_ms);
    }
    json_t *evs = json_array();
    for (size_t i = 0; i < r->n; i++) {
        const td_trace_event *te = &r->events[i];
        json_t *o = json_pack("{s:s,s:i,s:I,s:I,s:I,s:i}", "topic", te->topic, "partition",
                              (int)te->partition, "offset", (json_int_t)te->offset, "timestamp",
                              (json_int_t)te->timestamp_ms, "elapsed_ms",
                              (json_int_t)(te->timestamp_ms - t0), "depth", (int)te->depth);
        json_object_set_new(o, "parent", te->parent >= 0 ? json_integer(te->parent) : json_null());
        if (te->parent >= 0)
            json_object_set_new(
                o, "since_parent_ms",
                json_integer(te->timestamp_ms - r->events[te->parent].timestamp_ms));
        json_object_set_new(o, "trace_id",
                            te->has_context ? hex_json(te->trace_id, 16) : json_null());
        json_object_set_new(o, "span_id", te->has_context ? hex_json(te->span_id, 8) : json_null());
        json_object_set_new(o, "parent_span_id",
                            te->has_parent_span ? hex_json(te->parent_span, 8) : json_null());
        json_object_set_new(o, "cause", te->cause[0] ? json_string(te->cause) : json_null());
        json_t *k = te->key_null
                        ? NULL
                        : json_stringn((const char *)te->key, TD_MIN(te->key_len, sizeof(te->key)));
        json_object_set_new(o, "key", k ? k : json_null());
        json_t *names = json_array();
        for (const char *s = te->header_names, *nl; (nl = strchr(s, '\n')); s = nl + 1) {
            json_t *nm = json_stringn(s, (size_t)(nl - s));
            if (nm)
                json_array_append_new(names, nm);
        }
        json_object_set_new(o, "headers", names);
        json_object_set_new(o, "header_count", json_integer((json_int_t)te->header_count));
        json_array_append_new(evs, o);
    }
    return json_pack("{s:o,s:I,s:I,s:b,s:I}", "events", evs, "count", (json_int_t)r->n, "hidden",
                     (json_int_t)r->hidden, "truncated", r->truncated, "duration_ms",
                     (json_int_t)(r->n ? t1 - t0 : 0));
}

static void print_tree(const json_t *ans, const char *title)
{
    const json_t *evs = json_object_get(ans, "events");
    printf("%s: %zu events over %" PRId64 " ms", title, json_array_size(evs),
           cli_json_int(ans, "duration_ms"));
    if (cli_json_int(ans, "hidden") > 0)
        printf(", %" PRId64 " hidden (topics you may not read)", cli_json_int(ans, "hidden"));
    if (json_is_true(json_object_get(ans, "truncated")))
        printf(", more than the limit");
    printf("\n");
    size_t i;
    const json_t *e;
    json_array_foreach(evs, i, e)
    {
        int64_t depth = cli_json_int(e, "depth");
        char at[TD_TOPIC_NAME_MAX + 48];
        snprintf(at, sizeof(at), "%s/%" PRId64 "/%" PRId64, cli_json_str(e, "topic"),
                 cli_json_int(e, "partition"), cli_json_int(e, "offset"));
        printf("%*s%s  +%" PRId64 "ms", (int)TD_MIN(depth, 64) * 2, "", at,
               cli_json_int(e, "elapsed_ms"));
        if (json_object_get(e, "since_parent_ms"))
            printf(" (+%" PRId64 "ms)", cli_json_int(e, "since_parent_ms"));
        const json_t *key = json_object_get(e, "key"), *cause = json_object_get(e, "cause");
        printf("  span %s", cli_json_str(e, "span_id"));
        if (json_is_string(key))
            printf("  key %.64s", json_string_value(key));
        if (json_is_string(cause))
            printf("  cause %s", json_string_value(cause));
        printf("\n");
    }
}

/* "TOPIC/PARTITION/OFFSET" into its parts (the topic is what comes before the last two). */
static bool parse_coords(const char *s, char *topic, size_t cap, int64_t *p, int64_t *o)
{
    const char *s2 = strrchr(s, '/');
    if (!s2 || s2 == s)
        return false;
    const char *s1 = s2 - 1;
    while (s1 > s && *s1 != '/')
        s1--;
    if (*s1 != '/' || s1 == s || (size_t)(s1 - s) >= cap)
        return false;
    char num[32];
    size_t pl = (size_t)(s2 - s1 - 1);
    if (pl == 0 || pl >= sizeof(num))
        return false;
    memcpy(num, s1 + 1, pl);
    num[pl] = 0;
    if (!cli_parse_i64(num, p) || *p < 0 || *p > INT32_MAX || !cli_parse_i64(s2 + 1, o) || *o < 0)
        return false;
    memcpy(topic, s, (size_t)(s1 - s));
    topic[s1 - s] = 0;
    return true;
}

typedef struct trace_opts {
    const char *data, *server, *caused;
    int64_t depth, limit;
    bool json;
} trace_opts;

static int run_local(const trace_opts *o, const uint8_t *tid, const char *topic, int64_t part,
                     int64_t off, json_t **ans)
{
    td_engine *e;
    int code = cli_open(cli_data_dir(o->data), false, &e);
    if (code)
        return code;
    td_trace_result r;
    int rc = o->caused ? td_trace_caused(e, topic, (int32_t)part, off, (int)o->depth,
                                         (size_t)o->limit, NULL, NULL, &r)
                       : td_trace_get(e, tid, (size_t)o->limit, NULL, NULL, &r);
    if (rc)
        return cli_close(e, cli_fail("tracing", rc));
    *ans = result_json(&r);
    td_trace_result_free(&r);
    return cli_close(e, EXIT_OK);
}

static int run_remote(const trace_opts *o, const char *id, const char *topic, int64_t part,
                      int64_t off, json_t **ans)
{
    cli_remote r;
    int code = cli_remote_open(o->server, &r);
    if (code)
        return code;
    char path[1024];
    if (o->caused) {
        char *t = cli_remote_escape(&r, topic);
        snprintf(path, sizeof(path),
                 "/v1/topics/%s/partitions/%" PRId64 "/offsets/%" PRId64 "/caused?depth=%" PRId64
                 "&limit=%" PRId64,
                 t ? t : "", part, off, o->depth, o->limit);
        free(t);
    } else {
        snprintf(path, sizeof(path), "/v1/traces/%s?limit=%" PRId64, id, o->limit);
    }
    code = cli_remote_call(&r, "GET", path, NULL, ans, "tracing");
    cli_remote_close(&r);
    return code;
}

int cmd_trace(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"data", required_argument, NULL, 'd'},   {"server", required_argument, NULL, 's'},
        {"caused", required_argument, NULL, 'c'}, {"depth", required_argument, NULL, 'n'},
        {"limit", required_argument, NULL, 'l'},  {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
    trace_opts o = {.depth = 8, .limit = 1000};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "d:s:c:n:l:jh", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            o.data = optarg;
            break;
        case 's':
            o.server = optarg;
            break;
        case 'c':
            o.caused = optarg;
            break;
        case 'n':
            if (!cli_parse_i64(optarg, &o.depth) || o.depth < 1 || o.depth > TD_TRACE_MAX_DEPTH)
                return cli_usage_error("trace", "--depth takes 1 to %d, not '%s'",
                                       TD_TRACE_MAX_DEPTH, optarg);
            break;
        case 'l':
            if (!cli_parse_i64(optarg, &o.limit) || o.limit < 1 || o.limit > TD_TRACE_MAX_EVENTS)
                return cli_usage_error("trace", "--limit takes 1 to %d, not '%s'",
                                       TD_TRACE_MAX_EVENTS, optarg);
            break;
        case 'j':
            o.json = true;
            break;
        case 'h':
            fputs(trace_usage, stdout);
            return EXIT_OK;
        default:
            return cli_usage_error("trace", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    uint8_t tid[16];
    char topic[TD_TOPIC_NAME_MAX + 1];
    int64_t part = 0, off = 0;
    const char *id = NULL;
    if (o.caused) {
        if (optind != argc)
            return cli_usage_error("trace", "--caused takes no trace id");
        if (!parse_coords(o.caused, topic, sizeof(topic), &part, &off))
            return cli_usage_error("trace", "--caused takes TOPIC/PARTITION/OFFSET, not '%s'",
                                   o.caused);
    } else {
        if (optind != argc - 1)
            return cli_usage_error("trace", "trace needs one trace id (or --caused)");
        id = argv[optind];
        if (td_trace_id_parse(id, strlen(id), tid) != 0)
            return cli_usage_error("trace", "a trace id is 32 lowercase hex digits, not '%s'", id);
    }
    o.server = cli_server(o.server);
    json_t *ans = NULL;
    int code = o.server ? run_remote(&o, id, topic, part, off, &ans)
                        : run_local(&o, tid, topic, part, off, &ans);
    if (code)
        return code;
    if (o.json) {
        char *s = json_dumps(ans, JSON_COMPACT);
        if (s)
            puts(s);
        free(s);
    } else {
        char title[TD_TOPIC_NAME_MAX + 80];
        if (o.caused)
            snprintf(title, sizeof(title), "caused by %s", o.caused);
        else
            snprintf(title, sizeof(title), "trace %s", id);
        print_tree(ans, title);
    }
    json_decref(ans);
    return fflush(stdout) == 0 ? EXIT_OK : EXIT_RUNTIME;
}
