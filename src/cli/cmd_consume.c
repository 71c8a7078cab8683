/*
 * cmd_consume.c: tidings consume TOPIC: print events, in text or JSON lines, and exit at the
 * end of the log; or, with --follow against a running broker, follow topics live (Server-Sent
 * Events from /v1/subscribe), reconnecting where the stream left off.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/remote.h"
#include "cli/schema_client.h"
#include "cli/sse.h"

static const char consume_usage[] =
    "usage: tidings consume TOPIC [options]\n"
    "       tidings consume PATTERNS --follow --server URL [options]\n"
    "\n"
    "Prints events and exits at the end of the log. Without --from-beginning, --offset or\n"
    "--time it starts at the end. With --follow it goes on printing events as they arrive,\n"
    "from every topic that matches the comma-separated PATTERNS ('*' one segment of a name,\n"
    "'#' zero or more: orders.*,billing.#), also topics created later, until interrupted.\n"
    "\n"
    "options:\n"
    "  -d, --data DIR          data directory (default: $TIDINGS_DATA, else ./data)\n"
    "  -s, --server URL        a running broker's HTTP address (default: $TIDINGS_SERVER;\n"
    "                          without either, the data directory)\n"
    "  -F, --follow            follow live (needs a running broker)\n"
    "  -b, --from-beginning    start at the earliest event\n"
    "  -o, --offset N          start at offset N (needs --partition when the topic has more\n"
    "                          than one)\n"
    "  -t, --time T            start at the first event at or after T: milliseconds since the\n"
    "                          epoch, or UTC like 2026-11-24T21:00:00Z\n"
    "  -p, --partition P       read only partition P (default: all, one after the other)\n"
    "  -m, --max N             stop after N events\n"
    "  -f, --format FMT        text (each value on its own line; default) or json (one object\n"
    "                          per line: topic, partition, offset, timestamp, key, value,\n"
    "                          headers; bytes that are not UTF-8 as key_b64/value_b64;\n"
    "                          keys and values in the schema registry's wire format decoded,\n"
    "                          with key_schema_id/value_schema_id)\n"
    "      --registry-prefix P the registry's path on the broker (default:\n"
    "                          $TIDINGS_REGISTRY_PREFIX, else /registry)\n"
    "  -h, --help              this help\n";

enum { PAGE = 500 }; /* events per request in remote mode */

typedef struct consume_opts {
    const char *server, *registry_prefix;
    cli_read_opts rd;
    bool json, follow;
    cli_registry *reg; /* --format json: the registry that decodes the wire format */
} consume_opts;

/* ---------------------------------------------------------------------------------------------
 * Local mode: the engine's iterators, each partition to its end.
 */
static int read_local(const char *topic, const cli_read_opts *o, const char *what, cli_event_fn fn,
                      void *arg)
{
    td_engine *e = o->e;
    td_topic_info info;
    int rc;
    if (e) { /* opened by the caller, which closes it */
        if ((rc = td_topic_describe(e, topic, &info)) != 0)
            return cli_fail(what, rc);
        if (o->partition >= info.partitions) {
            fprintf(stderr, "tidings: %s: topic '%s' has no partition %" PRId64 "\n", what,
                    topic, o->partition);
            return EXIT_NOTFOUND;
        }
    } else if ((rc = cli_open_topic(o->data, topic, o->partition, what, &e, &info)) != 0) {
        return rc;
    }
    int code = EXIT_OK;
    if (o->start == CLI_START_OFFSET && o->partition < 0 && info.partitions > 1) {
        code = cli_usage_error("consume",
                               "--offset needs --partition: topic '%s' has %" PRId32 " partitions",
                               topic, info.partitions);
        goto out;
    }
    int64_t printed = 0;
    int32_t from = o->partition >= 0 ? (int32_t)o->partition : 0;
    int32_t to = o->partition >= 0 ? (int32_t)o->partition + 1 : info.partitions;
    for (int32_t p = from; p < to && (o->max < 0 || printed < o->max); p++) {
        td_iter *it;
        if (o->start == CLI_START_TIME)
            rc = td_iter_open_time(e, topic, p, o->start_value, &it);
        else
            rc = td_iter_open(e, topic, p,
                              o->start == CLI_START_BEGINNING ? TD_OFFSET_EARLIEST
                              : o->start == CLI_START_OFFSET  ? o->start_value
                                                              : TD_OFFSET_LATEST,
                              &it);
        if (rc) {
            code = cli_fail(what, rc);
            goto out;
        }
        td_event ev;
        while ((o->max < 0 || printed < o->max) && (rc = td_iter_next(it, &ev)) == 1) {
            json_t *j = cli_event_json(topic, &ev);
            fn(arg, j);
            json_decref(j);
            printed++;
        }
        td_iter_close(it);
        if (rc < 0) {
            code = cli_fail(what, rc);
            goto out;
        }
    }
out:
    return o->e ? code : cli_close(e, code);
}

/* ---------------------------------------------------------------------------------------------
 * Remote mode: pages of GET /v1/topics/{topic}/events, each partition up to the high watermark
 * it had when the command started.
 */
static int read_remote(cli_remote *r, const char *topic, const cli_read_opts *o, const char *what,
                       cli_event_fn fn, void *arg)
{
    char path[1024], seg[CLI_SEGMENT_MAX];
    snprintf(path, sizeof(path), "/v1/topics/%s", cli_path_segment(topic, seg));
    json_t *t = NULL;
    int code = cli_remote_call(r, "GET", path, NULL, &t, what);
    if (code)
        return code;
    json_t *parts = json_object_get(t, "partitions");
    int64_t count = (int64_t)json_array_size(parts);
    if (o->partition >= count) {
        fprintf(stderr, "tidings: %s: topic '%s' has no partition %" PRId64 "\n", what, topic,
                o->partition);
        json_decref(t);
        return EXIT_NOTFOUND;
    }
    if (o->start == CLI_START_OFFSET && o->partition < 0 && count > 1) {
        json_decref(t);
        return cli_usage_error("consume",
                               "--offset needs --partition: topic '%s' has %" PRId64 " partitions",
                               topic, count);
    }
    if (o->start == CLI_START_END) { /* from the end to the end: nothing, as locally */
        json_decref(t);
        return EXIT_OK;
    }
    int64_t printed = 0;
    int64_t from = o->partition >= 0 ? o->partition : 0;
    int64_t to = o->partition >= 0 ? o->partition + 1 : count;
    for (int64_t p = from; p < to && code == EXIT_OK && (o->max < 0 || printed < o->max); p++) {
        int64_t end = (int64_t)json_integer_value(
            json_object_get(json_array_get(parts, (size_t)p), "high_watermark"));
        char start[64];
        if (o->start == CLI_START_TIME)
            snprintf(start, sizeof(start), "time=%" PRId64, o->start_value);
        else if (o->start == CLI_START_OFFSET)
            snprintf(start, sizeof(start), "offset=%" PRId64, o->start_value);
        else
            snprintf(start, sizeof(start), "from=earliest");
        for (;;) {
            int64_t limit = PAGE;
            if (o->max >= 0 && o->max - printed < limit)
                limit = o->max - printed;
            snprintf(path, sizeof(path),
                     "/v1/topics/%s/events?partition=%" PRId64 "&%s&limit=%" PRId64
                     "&values=string",
                     seg, p, start, limit);
            json_t *page = NULL;
            if ((code = cli_remote_call(r, "GET", path, NULL, &page, what)) != 0)
                break;
            size_t i, n = json_array_size(json_object_get(page, "events"));
            json_t *ev;
            json_array_foreach(json_object_get(page, "events"), i, ev)
            {
                /* The topic first, as subscriptions give it. */
                json_t *full = json_pack("{s:s}", "topic", topic);
                json_object_update(full, ev);
                fn(arg, full);
                json_decref(full);
            }
            printed += (int64_t)n;
            char pk[24];
            snprintf(pk, sizeof(pk), "%" PRId64, p);
            int64_t next = (int64_t)json_integer_value(
                json_object_get(json_object_get(page, "next_offsets"), pk));
            json_decref(page);
            if (n == 0 || next >= end || (o->max >= 0 && printed >= o->max))
                break;
            snprintf(start, sizeof(start), "offset=%" PRId64, next);
        }
    }
    json_decref(t);
    return code;
}

/* ---------------------------------------------------------------------------------------------
 * --format json: keys and values in the schema registry's wire format (magic byte 0, a schema
 * ID, the payload) decoded when the registry knows the ID: Avro as its JSON encoding, JSON
 * Schema as the JSON after the header; Protobuf keeps its bytes (base64), with the ID. Each ID
 * is fetched once. Anything else (no header, an unknown ID, a payload that does not decode) is
 * shown as before: the stored bytes, as a string or base64.
 */
/* The field `name` of ev (or its `<name>_b64`) decoded: *decoded its JSON (NULL when it stays
 * as stored) and *id its schema ID (-1 when it is not in the wire format of a known ID). */
static void decode_field(cli_registry *g, const json_t *ev, const char *name, json_t **decoded,
                         int32_t *id)
{
    char b64_name[32];
    snprintf(b64_name, sizeof(b64_name), "%s_b64", name);
    json_t *text = json_object_get(ev, name), *b64 = json_object_get(ev, b64_name);
    const uint8_t *p = NULL;
    size_t n = 0;
    char *bytes = NULL;
    *decoded = NULL;
    *id = -1;
    if (json_is_string(text)) {
        p = (const uint8_t *)json_string_value(text);
        n = json_string_length(text);
    } else if (json_is_string(b64)) {
        bytes = cli_unbase64(json_string_value(b64), json_string_length(b64), &n);
        p = (const uint8_t *)bytes;
    }
    int32_t sid;
    const schema *s = p && schema_wire_header(p, n, &sid) == 0 ? cli_registry_by_id(g, sid) : NULL;
    if (!s) {
        free(bytes);
        return;
    }
    const uint8_t *payload = p + SCHEMA_WIRE_HEADER;
    size_t plen = n - SCHEMA_WIRE_HEADER;
    if (schema_get_type(s) == SCHEMA_AVRO) {
        char *json = NULL;
        schema_error err;
        if (schema_avro_to_json(s, payload, plen, &json, &err) == 0)
            *decoded = json_loads(json, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        free(json);
    } else if (schema_get_type(s) == SCHEMA_JSON) {
        *decoded =
            json_loadb((const char *)payload, plen, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    }
    if (*decoded || schema_get_type(s) == SCHEMA_PROTOBUF)
        *id = sid;
    free(bytes);
}

static void print_event(const consume_opts *o, const json_t *ev)
{
    if (!o->reg || !o->json) {
        cli_print_event(ev, o->json);
        return;
    }
    json_t *key, *value;
    int32_t key_id, value_id;
    decode_field(o->reg, ev, "key", &key, &key_id);
    decode_field(o->reg, ev, "value", &value, &value_id);
    /* The event's fields in their order, a decoded one where its bytes were, then the IDs. */
    json_t *out = json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)ev, k, v)
    {
        if (key && (!strcmp(k, "key") || !strcmp(k, "key_b64")))
            json_object_set(out, "key", key);
        else if (value && (!strcmp(k, "value") || !strcmp(k, "value_b64")))
            json_object_set(out, "value", value);
        else
            json_object_set(out, k, v);
    }
    if (key_id >= 0)
        json_object_set_new(out, "key_schema_id", json_integer(key_id));
    if (value_id >= 0)
        json_object_set_new(out, "value_schema_id", json_integer(value_id));
    cli_print_event(out, true);
    json_decref(out);
    json_decref(key);
    json_decref(value);
}

static void print_one(void *arg, const json_t *ev)
{
    print_event(arg, ev);
}

int cli_read_events(cli_remote *r, const char *topic, const cli_read_opts *o, const char *what,
                    cli_event_fn fn, void *arg)
{
    return r ? read_remote(r, topic, o, what, fn, arg) : read_local(topic, o, what, fn, arg);
}

/* ---------------------------------------------------------------------------------------------
 * --follow: a subscription, resumed after its last event when the stream breaks.
 */
typedef struct follow_ctx {
    const consume_opts *o;
    sse_reader sse;
    int64_t printed;
    bool done; /* --max reached */
    bool oops; /* a bad event or line */
} follow_ctx;

static bool on_event(void *arg, const char *event, const char *id, const char *data, size_t n)
{
    (void)id;
    follow_ctx *f = arg;
    if (!strcmp(event, "error")) {
        json_t *j = json_loadb(data, n, 0, NULL);
        const char *msg =
            json_string_value(json_object_get(json_object_get(j, "error"), "message"));
        fprintf(stderr, "tidings: consuming: the broker ended the stream: %s\n", msg ? msg : data);
        json_decref(j);
        return true;
    }
    if (strcmp(event, "message") != 0)
        return true; /* subscribed: its id is the starting cursor, kept by the reader */
    json_error_t je;
    json_t *ev = json_loadb(data, n, 0, &je);
    if (!ev) {
        fprintf(stderr, "tidings: consuming: an event that is not JSON: %s\n", je.text);
        f->oops = true;
        return false;
    }
    print_event(f->o, ev);
    json_decref(ev);
    fflush(stdout);
    if (f->o->rd.max >= 0 && ++f->printed >= f->o->rd.max) {
        f->done = true;
        return false;
    }
    return true;
}

static bool on_bytes(void *arg, const char *p, size_t n)
{
    follow_ctx *f = arg;
    int rc = sse_feed(&f->sse, p, n, on_event, f);
    if (rc < 0) {
        fprintf(stderr, "tidings: consuming: the stream has a line over %u bytes\n", SSE_MAX_LINE);
        f->oops = true;
    }
    return rc == 0;
}

static int consume_follow(cli_remote *r, const char *patterns, const consume_opts *o)
{
    char *esc = cli_remote_escape(r, patterns);
    if (!esc)
        return EXIT_RUNTIME;
    char path[8192], from[32] = "latest";
    if (o->rd.start == CLI_START_BEGINNING)
        snprintf(from, sizeof(from), "earliest");
    else if (o->rd.start == CLI_START_TIME)
        snprintf(from, sizeof(from), "%" PRId64, o->rd.start_value);
    snprintf(path, sizeof(path), "/v1/subscribe?topics=%s&from=%s&values=string", esc, from);
    free(esc);
    follow_ctx f = {.o = o};
    sse_init(&f.sse);
    bool connected = false, told = false;
    int code = EXIT_OK;
    for (;;) {
        long status = 0;
        sse_restart(&f.sse);
        code = cli_remote_stream(r, path, f.sse.id, on_bytes, &f, "following", &status);
        if (f.done || cli_interrupted()) {
            code = EXIT_OK;
            break;
        }
        if (f.oops) {
            code = EXIT_RUNTIME;
            break;
        }
        if (status && status != 200)
            break; /* refused: the error is printed */
        if (status == 200) {
            connected = true;
            told = false;
        }
        if (!connected) { /* never reached the broker */
            fprintf(stderr, "tidings: following: cannot reach the broker at %s: %s\n", r->base,
                    cli_remote_why(r));
            break;
        }
        /* The stream ended (a restart, a network break): resume after the last event. */
        if (!told) {
            fprintf(stderr, "tidings: following: the stream ended (%s); reconnecting\n",
                    status == 200 && code == EXIT_OK ? "closed by the broker" : cli_remote_why(r));
            told = true;
        }
        for (int i = 0; i < 10 && !cli_interrupted(); i++)
            usleep(100 * 1000);
        if (cli_interrupted()) {
            code = EXIT_OK;
            break;
        }
    }
    sse_free(&f.sse);
    return code;
}

int cmd_consume(int argc, char **argv)
{
    static const struct option longopts[] = {{"data", required_argument, NULL, 'd'},
                                             {"from-beginning", no_argument, NULL, 'b'},
                                             {"offset", required_argument, NULL, 'o'},
                                             {"time", required_argument, NULL, 't'},
                                             {"partition", required_argument, NULL, 'p'},
                                             {"max", required_argument, NULL, 'm'},
                                             {"format", required_argument, NULL, 'f'},
                                             {"follow", no_argument, NULL, 'F'},
                                             {"server", required_argument, NULL, 's'},
                                             {"registry-prefix", required_argument, NULL, 'R'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    consume_opts o = {.rd = {.start = CLI_START_END, .partition = -1, .max = -1}};
    int c, starts = 0;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "d:s:R:Fbo:t:p:m:f:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            o.rd.data = optarg;
            break;
        case 's':
            o.server = optarg;
            break;
        case 'R':
            o.registry_prefix = optarg;
            break;
        case 'F':
            o.follow = true;
            break;
        case 'b':
            o.rd.start = CLI_START_BEGINNING;
            starts++;
            break;
        case 'o':
            if (!cli_parse_i64(optarg, &o.rd.start_value) || o.rd.start_value < 0)
                return cli_usage_error("consume", "--offset takes an offset, not '%s'", optarg);
            o.rd.start = CLI_START_OFFSET;
            starts++;
            break;
        case 't':
            if (!cli_parse_time(optarg, &o.rd.start_value))
                return cli_usage_error("consume", "--time takes milliseconds since the epoch "
                                                  "or a UTC time like 2026-11-24T21:00:00Z, not "
                                                  "'%s'", optarg);
            o.rd.start = CLI_START_TIME;
            starts++;
            break;
        case 'p':
            if (!cli_parse_i64(optarg, &o.rd.partition) || o.rd.partition < 0 ||
                o.rd.partition > INT32_MAX)
                return cli_usage_error("consume", "--partition takes a partition number, not "
                                                  "'%s'", optarg);
            break;
        case 'm':
            if (!cli_parse_i64(optarg, &o.rd.max) || o.rd.max < 0)
                return cli_usage_error("consume", "--max takes a count, not '%s'", optarg);
            break;
        case 'f':
            if (strcmp(optarg, "json") == 0)
                o.json = true;
            else if (strcmp(optarg, "text") != 0)
                return cli_usage_error("consume", "--format is text or json, not '%s'", optarg);
            break;
        case 'h':
            fputs(consume_usage, stdout);
            return EXIT_OK;
        default:
            return cli_usage_error("consume", "unknown or incomplete option '%s'",
                                   argv[optind - 1]);
        }
    }
    if (optind != argc - 1)
        return cli_usage_error("consume", optind >= argc ? "consume needs a topic"
                                                         : "consume takes one topic");
    if (starts > 1)
        return cli_usage_error("consume", "use one of --from-beginning, --offset and --time");
    const char *topic = argv[optind];
    o.server = cli_server(o.server);
    if (o.follow && !o.server)
        return cli_usage_error("consume", "--follow needs a running broker: give --server URL "
                                          "or set TIDINGS_SERVER");
    if (o.follow && (o.rd.partition >= 0 || o.rd.start == CLI_START_OFFSET))
        return cli_usage_error("consume", "--follow reads whole topics: --partition and "
                                          "--offset do not apply (use --from-beginning or "
                                          "--time)");
    if (!o.follow) {
        int rc = td_topic_name_validate(topic);
        if (rc)
            return cli_fail(
                strpbrk(topic, "*#,") ? "consuming (patterns need --follow)" : "consuming", rc);
    }
    if (o.rd.max == 0)
        return EXIT_OK;
    int code;
    char prefix[512];
    cli_registry reg = {0};
    if (o.json) {
        if (!(reg.prefix = cli_registry_prefix(o.registry_prefix, prefix, sizeof(prefix))))
            return EXIT_USAGE;
        o.reg = &reg;
    }
    if (!o.server) {
        /* JSON output decodes through the registry of the same data directory: the engine is
         * opened here, once, for both. */
        if (o.json && (code = cli_open(cli_data_dir(o.rd.data), false, &o.rd.e)) != 0)
            return code;
        reg.e = o.rd.e;
        code = cli_read_events(NULL, topic, &o.rd, "consuming", print_one, &o);
        cli_registry_free(&reg);
        if (o.rd.e)
            code = cli_close(o.rd.e, code);
    } else {
        /* The registry has its own connection: with --follow its requests are made while the
         * stream's is busy. */
        cli_remote r, rr;
        if ((code = cli_remote_open(o.server, &r)) != 0)
            return code;
        if (o.json && (code = cli_remote_open(o.server, &rr)) != 0) {
            cli_remote_close(&r);
            return code;
        }
        reg.r = o.json ? &rr : NULL;
        code = o.follow ? consume_follow(&r, topic, &o)
                        : cli_read_events(&r, topic, &o.rd, "consuming", print_one, &o);
        cli_registry_free(&reg);
        if (o.json)
            cli_remote_close(&rr);
        cli_remote_close(&r);
    }
    if (fflush(stdout) != 0 && code == EXIT_OK)
        code = EXIT_RUNTIME;
    return code;
}
