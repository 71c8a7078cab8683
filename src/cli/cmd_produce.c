/*
 * cmd_produce.c: tidings produce TOPIC: one event per line of standard input or of a file,
 * appended locally or sent to a running broker (POST /v1/topics/{topic}/events), with a
 * progress bar on a terminal.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/remote.h"
#include "cli/schema_client.h"

static const char produce_usage[] =
    "usage: tidings produce TOPIC [options] [< events]\n"
    "\n"
    "Appends one event per line of standard input, or of --file (the newline is not part of\n"
    "the event). Returns once the events are durable under the topic's fsync policy.\n"
    "\n"
    "options:\n"
    "  -d, --data DIR            data directory (default: $TIDINGS_DATA, else ./data)\n"
    "  -s, --server URL          a running broker's HTTP address (default: $TIDINGS_SERVER;\n"
    "                            without either, the data directory)\n"
    "      --file PATH           read the events from PATH instead of standard input\n"
    "  -p, --partition P         write to partition P (default: by key, or round-robin)\n"
    "  -k, --key-separator SEP   the key is the text before the first SEP, the value after it;\n"
    "                            a line without SEP has no key\n"
    "  -H, --header KEY=VALUE    add a header to every event (repeatable)\n"
    "      --delay MS            queue groups deliver each event MS after its timestamp (the\n"
    "                            header tidings-delay-ms; docs/queues.md#delayed-delivery)\n"
    "      --deliver-at MS       ... or from MS, milliseconds since 1970 (tidings-deliver-at)\n"
    "  -b, --batch N             events per append (default 1000)\n"
    "  -v, --verbose             print partition and offset of each event\n"
    "      --progress            show progress and rate on standard error (the default when\n"
    "                            it is a terminal and --file is given)\n"
    "      --no-progress         never show progress\n"
    "      --schema SUBJECT[:VERSION]\n"
    "                            each line is a JSON value of the subject's schema (default:\n"
    "                            its latest version), sent in the schema registry's wire\n"
    "                            format: Avro encoded as binary, JSON Schema validated\n"
    "      --schema-id ID        the same with the schema of this ID\n"
    "      --registry-prefix P   the registry's path on the broker (default:\n"
    "                            $TIDINGS_REGISTRY_PREFIX, else /registry)\n"
    "  -h, --help                this help\n";

#define MAX_HEADERS 64
#define MAX_REQUEST_EVENTS 10000      /* the HTTP API's limit per request */
#define MAX_REQUEST_BYTES (4u << 20)  /* event bytes per request: half the default limit */
#define MAX_REQUEST_BODY (7u << 20)   /* split a body longer than this (the limit is 8 MiB) */
#define PROGRESS_EVERY_MS 200         /* progress redrawn five times a second */

typedef struct produce_opts {
    const char *data, *server, *file, *sep;
    const char *schema, *registry_prefix; /* --schema SUBJECT[:VERSION], --registry-prefix */
    int64_t schema_id;                    /* --schema-id, else -1 */
    int64_t partition, batch;
    bool verbose;
    int progress; /* -1 automatic, 0 off, 1 on */
    td_header headers[MAX_HEADERS];
    size_t nheaders;
    char delay_text[2][TD_DELAY_TEXT_MAX]; /* --delay, --deliver-at: the header's value */
} produce_opts;

/* Where the events go: the engine (local) or the broker (remote). */
typedef struct sink {
    const char *topic;
    const produce_opts *o;
    td_engine *e;
    cli_remote *r;
    char path[1024];
    td_produce_result *res;
    const schema *sch; /* --schema: the values' schema, and its ID */
    int32_t sch_id;
    uint64_t lines;    /* lines read, for the messages */
} sink;

/* ---------------------------------------------------------------------------------------------
 * Progress: "[#####-----]  52%  12.3/23.6 MiB  104233 events  45120 events/s  5.2 MiB/s"
 */
typedef struct progress {
    bool on;
    int64_t total_bytes; /* -1: unknown (a pipe) */
    int64_t start_ms, last_ms;
    uint64_t events, bytes;
} progress;

static void progress_draw(progress *p, bool final)
{
    int64_t now = cli_mono_ms();
    if (!p->on || (!final && now - p->last_ms < PROGRESS_EVERY_MS))
        return;
    p->last_ms = now;
    double secs = (double)(now - p->start_ms) / 1e3;
    double rate = secs > 0 ? (double)p->events / secs : 0;
    double mib = (double)p->bytes / (1 << 20), mib_rate = secs > 0 ? mib / secs : 0;
    if (final) {
        cli_progress_line(true,
                          "produced %" PRIu64 " events (%.1f MiB) in %.1f s: %.0f events/s, "
                          "%.1f MiB/s",
                          p->events, mib, secs, rate, mib_rate);
        return;
    }
    char bar[64] = "";
    if (p->total_bytes > 0) {
        char cells[48];
        cli_bar(cells, sizeof(cells), (double)p->bytes / (double)p->total_bytes);
        snprintf(bar, sizeof(bar), "%s  %.1f/%.1f", cells, mib, (double)p->total_bytes / (1 << 20));
    } else {
        snprintf(bar, sizeof(bar), "%.1f", mib);
    }
    cli_progress_line(false, "%s MiB  %" PRIu64 " events  %.0f events/s  %.1f MiB/s", bar,
                      p->events, rate, mib_rate);
}

/* ---------------------------------------------------------------------------------------------
 * Sending
 */
static json_t *event_json(const td_event *ev, bool binary)
{
    json_t *o = json_object();
    if (ev->key)
        cli_json_set_bytes(o, "key", "key_b64", ev->key, ev->key_len);
    /* A value in the wire format is bytes (its header has NUL bytes): always base64. */
    if (binary) {
        char *b = cli_base64(ev->value, ev->value_len);
        json_object_set_new(o, "value_b64", b ? json_string(b) : json_null());
        free(b);
    } else {
        cli_json_set_bytes(o, "value_text", "value_b64", ev->value, ev->value_len);
    }
    if (ev->header_count)
        json_object_set_new(o, "headers", cli_headers_json(ev));
    if (ev->partition >= 0)
        json_object_set_new(o, "partition", json_integer(ev->partition));
    return o;
}

/* POSTs events [from, to) of arr, in order; fills res[from..to). A body over the ceiling is
 * sent as two halves (events whose JSON is much longer than their bytes: control characters). */
static int post(sink *s, json_t *arr, size_t from, size_t to, td_produce_result *res)
{
    json_t *part = json_array();
    for (size_t i = from; i < to; i++)
        json_array_append(part, json_array_get(arr, i));
    char *body = json_dumps(part, JSON_COMPACT);
    json_decref(part);
    if (!body) {
        fprintf(stderr, "tidings: producing: out of memory\n");
        return EXIT_RUNTIME;
    }
    size_t len = strlen(body);
    if (len > MAX_REQUEST_BODY && to - from > 1) {
        free(body);
        size_t mid = from + (to - from) / 2;
        int code = post(s, arr, from, mid, res);
        return code ? code : post(s, arr, mid, to, res);
    }
    json_t *answer = NULL;
    int code = cli_remote_call_text(s->r, "POST", s->path, body, len, &answer, "producing");
    free(body);
    if (code)
        return code;
    size_t i;
    json_t *off, *offsets = json_object_get(answer, "offsets");
    if (json_array_size(offsets) != to - from) {
        fprintf(stderr, "tidings: producing: the broker answered %zu offsets for %zu events\n",
                json_array_size(offsets), to - from);
        json_decref(answer);
        return EXIT_RUNTIME;
    }
    json_array_foreach(offsets, i, off)
    {
        res[from + i].partition = (int32_t)json_integer_value(json_object_get(off, "partition"));
        res[from + i].offset = (int64_t)json_integer_value(json_object_get(off, "offset"));
    }
    json_decref(answer);
    return EXIT_OK;
}

/* Appends n events, in order; res gets each one's partition and offset. */
static int sink_write(sink *s, const td_event *ev, size_t n)
{
    if (!s->r) {
        int rc = td_produce(s->e, s->topic, ev, n, s->res);
        return rc ? cli_fail("producing", rc) : EXIT_OK;
    }
    /* Requests of at most MAX_REQUEST_EVENTS and about MAX_REQUEST_BYTES of event bytes, sent
     * one after the other so that their order is kept. */
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, event_json(&ev[i], s->sch != NULL));
    int code = EXIT_OK;
    size_t from = 0, bytes = 0;
    for (size_t i = 0; i < n && code == EXIT_OK; i++) {
        size_t size = ev[i].key_len + ev[i].value_len + 64;
        for (size_t h = 0; h < ev[i].header_count; h++)
            size += ev[i].headers[h].key_len + ev[i].headers[h].value_len + 32;
        if (i > from && (bytes + size > MAX_REQUEST_BYTES || i - from == MAX_REQUEST_EVENTS)) {
            code = post(s, arr, from, i, s->res);
            from = i;
            bytes = 0;
        }
        bytes += size;
    }
    if (code == EXIT_OK && from < n)
        code = post(s, arr, from, n, s->res);
    json_decref(arr);
    return code;
}

/* ---------------------------------------------------------------------------------------------
 * The command
 */
static int parse_opts(int argc, char **argv, produce_opts *o)
{
    enum {
        OPT_FILE = 1000,
        OPT_PROGRESS,
        OPT_NO_PROGRESS,
        OPT_SCHEMA,
        OPT_SCHEMA_ID,
        OPT_PREFIX,
        OPT_DELAY,
        OPT_DELIVER_AT
    };
    static const struct option longopts[] = {
        {"data", required_argument, NULL, 'd'},
        {"server", required_argument, NULL, 's'},
        {"file", required_argument, NULL, OPT_FILE},
        {"partition", required_argument, NULL, 'p'},
        {"key-separator", required_argument, NULL, 'k'},
        {"header", required_argument, NULL, 'H'},
        {"delay", required_argument, NULL, OPT_DELAY},
        {"deliver-at", required_argument, NULL, OPT_DELIVER_AT},
        {"batch", required_argument, NULL, 'b'},
        {"verbose", no_argument, NULL, 'v'},
        {"progress", no_argument, NULL, OPT_PROGRESS},
        {"no-progress", no_argument, NULL, OPT_NO_PROGRESS},
        {"schema", required_argument, NULL, OPT_SCHEMA},
        {"schema-id", required_argument, NULL, OPT_SCHEMA_ID},
        {"registry-prefix", required_argument, NULL, OPT_PREFIX},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "d:s:p:k:H:b:vh", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            o->data = optarg;
            break;
        case 's':
            o->server = optarg;
            break;
        case OPT_FILE:
            o->file = optarg;
            break;
        case OPT_PROGRESS:
            o->progress = 1;
            break;
        case OPT_NO_PROGRESS:
            o->progress = 0;
            break;
        case OPT_SCHEMA:
            if (!*optarg)
                return cli_usage_error("produce", "--schema takes SUBJECT or SUBJECT:VERSION");
            o->schema = optarg;
            break;
        case OPT_SCHEMA_ID:
            if (!cli_parse_i64(optarg, &o->schema_id) || o->schema_id < 0 ||
                o->schema_id > INT32_MAX)
                return cli_usage_error("produce", "--schema-id takes a schema ID, not '%s'",
                                       optarg);
            break;
        case OPT_PREFIX:
            o->registry_prefix = optarg;
            break;
        case 'p':
            if (!cli_parse_i64(optarg, &o->partition) || o->partition < 0 ||
                o->partition > INT32_MAX)
                return cli_usage_error("produce",
                                       "--partition takes a partition number, not "
                                       "'%s'",
                                       optarg);
            break;
        case 'k':
            if (!*optarg)
                return cli_usage_error("produce", "--key-separator cannot be empty");
            o->sep = optarg;
            break;
        case 'H': {
            const char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg)
                return cli_usage_error("produce", "--header takes KEY=VALUE, not '%s'", optarg);
            if (o->nheaders == MAX_HEADERS)
                return cli_usage_error("produce", "too many headers");
            o->headers[o->nheaders++] =
                (td_header){optarg, (size_t)(eq - optarg), eq + 1, strlen(eq + 1)};
            break;
        }
        case OPT_DELAY:
        case OPT_DELIVER_AT: {
            int64_t v;
            bool at = c == OPT_DELIVER_AT;
            if (o->nheaders == MAX_HEADERS)
                return cli_usage_error("produce", "too many headers");
            if (!cli_parse_i64(optarg, &v) ||
                td_delay_header(at, v, o->delay_text[at], &o->headers[o->nheaders]) != 0)
                return cli_usage_error(
                    "produce", "%s takes %s, not '%s'", at ? "--deliver-at" : "--delay",
                    at ? "milliseconds since 1970" : "milliseconds (>= 0)", optarg);
            o->nheaders++;
            break;
        }
        case 'b':
            if (!cli_parse_i64(optarg, &o->batch) || o->batch < 1 || o->batch > 1000000)
                return cli_usage_error("produce", "--batch takes a number from 1 to 1000000");
            break;
        case 'v':
            o->verbose = true;
            break;
        case 'h':
            fputs(produce_usage, stdout);
            return -1;
        default:
            return cli_usage_error("produce", "unknown or incomplete option '%s'",
                                   argv[optind - 1]);
        }
    }
    if (optind != argc - 1)
        return cli_usage_error("produce", optind >= argc ? "produce needs a topic"
                                                         : "produce takes one topic");
    if (o->schema && o->schema_id >= 0)
        return cli_usage_error("produce", "use one of --schema and --schema-id");
    return EXIT_OK;
}

/* --schema: a line's value, a JSON text, into the registry's wire format (magic byte 0, the
 * schema ID in big-endian, then Avro's binary encoding of the value, or the JSON text itself
 * once the JSON Schema accepts it), into *out (malloc'd). EXIT_OK, or the reason printed. */
static int encode_value(const sink *s, const char *json, size_t len, uint8_t **out, size_t *n)
{
    bool avro = schema_get_type(s->sch) == SCHEMA_AVRO;
    uint8_t *b = malloc(SCHEMA_WIRE_HEADER + (avro ? 0 : len));
    if (!b)
        return cli_fail("producing", -12);
    uint32_t id = (uint32_t)s->sch_id;
    b[0] = SCHEMA_WIRE_MAGIC;
    b[1] = (uint8_t)(id >> 24), b[2] = (uint8_t)(id >> 16), b[3] = (uint8_t)(id >> 8);
    b[4] = (uint8_t)id;
    *n = SCHEMA_WIRE_HEADER;
    schema_error err;
    int rc = avro ? schema_avro_from_json(s->sch, json, len, &b, n, &err)
                  : schema_validate_json(s->sch, json, len, &err);
    if (rc != 0) {
        free(b);
        fprintf(stderr, "tidings: producing: line %" PRIu64 " does not match schema %" PRId32
                        ": %s%s%s%s%s%s\n",
                s->lines, s->sch_id, err.path, err.path[0] ? ": " : "", err.message,
                err.rule[0] ? " (" : "", err.rule, err.rule[0] ? ")" : "");
        return EXIT_RUNTIME;
    }
    if (!avro) {
        memcpy(b + SCHEMA_WIRE_HEADER, json, len);
        *n += len;
    }
    *out = b;
    return EXIT_OK;
}

/* Reads lines into batches and writes them to the sink. */
static int produce_lines(sink *s, FILE *in, progress *pg)
{
    const produce_opts *o = s->o;
    size_t cap = (size_t)o->batch;
    char **lines = calloc(cap, sizeof(*lines));
    size_t *caps = calloc(cap, sizeof(*caps));
    td_event *ev = calloc(cap, sizeof(*ev));
    uint8_t **enc = calloc(cap, sizeof(*enc)); /* --schema: the values in the wire format */
    s->res = calloc(cap, sizeof(*s->res));
    int code = EXIT_OK, bad = EXIT_OK;
    if (!lines || !caps || !ev || !enc || !s->res) {
        code = cli_fail("producing", -12);
        goto out;
    }
    size_t n = 0, seplen = o->sep ? strlen(o->sep) : 0;
    uint64_t bytes = 0;
    for (;;) {
        ssize_t len = getline(&lines[n], &caps[n], in);
        if (len >= 0) {
            bytes += (uint64_t)len;
            if (len > 0 && lines[n][len - 1] == '\n')
                lines[n][--len] = 0;
            td_event *x = &ev[n];
            memset(x, 0, sizeof(*x));
            x->partition = (int32_t)o->partition;
            x->value = lines[n];
            x->value_len = (size_t)len;
            char *at = o->sep ? memmem(lines[n], (size_t)len, o->sep, seplen) : NULL;
            if (at) {
                x->key = lines[n];
                x->key_len = (size_t)(at - lines[n]);
                x->value = at + seplen;
                x->value_len = (size_t)len - x->key_len - seplen;
            }
            x->headers = o->nheaders ? o->headers : NULL;
            x->header_count = o->nheaders;
            s->lines++;
            if (s->sch) {
                size_t elen;
                bad = encode_value(s, x->value, x->value_len, &enc[n], &elen);
                x->value = (const char *)enc[n];
                x->value_len = elen;
            }
            /* A line that does not match ends the command, after the lines before it. */
            if (bad == EXIT_OK)
                n++;
        }
        if (n == cap || ((len < 0 || bad) && n > 0)) {
            code = sink_write(s, ev, n);
            for (size_t i = 0; i < n; i++) {
                free(enc[i]);
                enc[i] = NULL;
            }
            if (code != EXIT_OK)
                goto out;
            for (size_t i = 0; o->verbose && i < n; i++)
                printf("%" PRId32 " %" PRId64 "\n", s->res[i].partition, s->res[i].offset);
            pg->events += n;
            pg->bytes = bytes;
            progress_draw(pg, false);
            n = 0;
        }
        if (bad) {
            if (pg->on)
                fputc('\n', stderr);
            fprintf(stderr, "tidings: producing: the %" PRIu64 " event%s before it %s written\n",
                    pg->events, pg->events == 1 ? "" : "s", pg->events == 1 ? "was" : "were");
            code = bad;
            goto out;
        }
        if (len < 0)
            break;
    }
    if (ferror(in)) {
        if (pg->on)
            fputc('\n', stderr);
        fprintf(stderr, "tidings: producing: error reading %s after %" PRIu64 " events\n",
                o->file ? o->file : "standard input", pg->events);
        code = EXIT_RUNTIME;
    } else {
        progress_draw(pg, true);
    }
out:
    if (code != EXIT_OK && !bad && pg->on && pg->events)
        fprintf(stderr,
                "tidings: producing: %" PRIu64 " events were written before the "
                "error\n",
                pg->events);
    for (size_t i = 0; lines && i < cap; i++)
        free(lines[i]);
    for (size_t i = 0; enc && i < cap; i++)
        free(enc[i]);
    free(enc);
    free(lines);
    free(caps);
    free(ev);
    free(s->res);
    s->res = NULL;
    return code;
}

/* --schema SUBJECT[:VERSION] or --schema-id ID: the schema, from the registry (of the data
 * directory, or of the broker), with its references. Protobuf is refused: the command line
 * has no encoder from JSON to Protobuf's binary encoding. */
static int load_schema(sink *s, cli_remote *r, schema **out)
{
    const produce_opts *o = s->o;
    const char *what = "producing: fetching the schema";
    char prefix[512];
    cli_registry g = {.e = s->e, .r = r};
    if (!(g.prefix = cli_registry_prefix(o->registry_prefix, prefix, sizeof(prefix))))
        return EXIT_USAGE;
    char *subject = NULL;
    int64_t version = -1;
    if (o->schema) {
        /* SUBJECT:VERSION when what follows the last ':' is a version; else all is the
         * subject (subjects may hold ':'). */
        subject = strdup(o->schema);
        char *colon = subject ? strrchr(subject, ':') : NULL;
        if (colon && !strcmp(colon + 1, "latest"))
            *colon = 0;
        else if (colon && cli_parse_i64(colon + 1, &version) && version >= 1 &&
                 version <= INT32_MAX)
            *colon = 0;
        else
            version = -1;
    }
    int code = cli_registry_fetch(&g, subject, (int32_t)version, (int32_t)o->schema_id, out,
                                  &s->sch_id, what);
    free(subject);
    cli_registry_free(&g);
    if (code == EXIT_OK && schema_get_type(*out) == SCHEMA_PROTOBUF) {
        fprintf(stderr, "tidings: producing: schema %" PRId32 " is a Protobuf schema: the "
                        "command line encodes Avro and JSON Schema values only (send Protobuf "
                        "with a Kafka client's serializer)\n",
                s->sch_id);
        schema_free(*out);
        *out = NULL;
        code = EXIT_USAGE;
    }
    s->sch = *out;
    return code;
}

int cmd_produce(int argc, char **argv)
{
    produce_opts o = {
        .partition = TD_PARTITION_ANY, .batch = 1000, .progress = -1, .schema_id = -1};
    int code = parse_opts(argc, argv, &o);
    if (code)
        return code < 0 ? EXIT_OK : code;
    sink s = {.topic = argv[optind], .o = &o};
    int rc = td_topic_name_validate(s.topic);
    if (rc)
        return cli_fail("producing", rc);
    FILE *in = stdin;
    if (o.file && strcmp(o.file, "-") != 0 && !(in = fopen(o.file, "r"))) {
        fprintf(stderr, "tidings: producing: cannot open %s: %s\n", o.file, strerror(errno));
        return EXIT_RUNTIME;
    }
    schema *sch = NULL;
    bool with_schema = o.schema || o.schema_id >= 0;
    progress pg = {.total_bytes = -1, .start_ms = cli_mono_ms()};
    pg.on = o.progress == 1 || (o.progress == -1 && o.file && isatty(STDERR_FILENO));
    struct stat st;
    if (fstat(fileno(in), &st) == 0 && S_ISREG(st.st_mode))
        pg.total_bytes = st.st_size;

    cli_remote r;
    o.server = cli_server(o.server);
    if (o.server) {
        if ((code = cli_remote_open(o.server, &r)) != 0)
            goto out;
        s.r = &r;
        char seg[CLI_SEGMENT_MAX];
        cli_path_segment(s.topic, seg);
        snprintf(s.path, sizeof(s.path), "/v1/topics/%s/events", seg);
        /* The topic and partition are checked before anything is read. */
        char path[1024];
        json_t *t = NULL;
        snprintf(path, sizeof(path), "/v1/topics/%s", seg);
        code = cli_remote_call(&r, "GET", path, NULL, &t, "producing");
        int64_t parts = (int64_t)json_integer_value(json_object_get(t, "partition_count"));
        json_decref(t);
        if (code == EXIT_OK && o.partition >= parts) {
            fprintf(stderr, "tidings: producing: topic '%s' has no partition %" PRId64 "\n",
                    s.topic, o.partition);
            code = EXIT_NOTFOUND;
        }
        if (code == EXIT_OK && with_schema)
            code = load_schema(&s, &r, &sch);
        if (code == EXIT_OK)
            code = produce_lines(&s, in, &pg);
        cli_remote_close(&r);
    } else {
        td_topic_info info;
        if ((code = cli_open_topic(o.data, s.topic, o.partition, "producing", &s.e, &info)) != 0)
            goto out;
        if (with_schema)
            code = load_schema(&s, NULL, &sch);
        if (code == EXIT_OK)
            code = produce_lines(&s, in, &pg);
        code = cli_close(s.e, code);
    }
out:
    schema_free(sch);
    if (in != stdin)
        fclose(in);
    return code;
}
