/*
 * main.c: the tidings command: dispatch to verbs, shared helpers (errors and exit codes, the
 * data directory, base64).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"

static const char usage[] =
    "usage: tidings <command> [options]\n"
    "\n"
    "tidings is an event broker: topics of partitioned, replayable logs.\n"
    "\n"
    "commands:\n"
    "  serve                      run the broker on a data directory\n"
    "  topic create|list|describe|alter|add-partitions|delete\n"
    "                             manage topics\n"
    "  produce TOPIC              append one event per line of standard input (or --file)\n"
    "  consume TOPIC              print events (--follow PATTERNS: live)\n"
    "  group list|describe|reset|delete\n"
    "                             consumer groups, their offsets and lag\n"
    "  queue create|configure|list|describe|delete|receive|ack|nack\n"
    "                             queue groups: per-event acks, retries, dead letters\n"
    "  dlq list|show|redrive      dead-letter topics, and moving their events back\n"
    "  trace TRACE-ID             a trace's events across topics as a tree (--caused T/P/O:\n"
    "                             what an event caused)\n"
    "  request TOPIC [VALUE]      publishes a request and prints the reply a service produced\n"
    "                             (through a running broker)\n"
    "  user add|passwd|remove|list\n"
    "                             users and their SCRAM credentials\n"
    "  quota set|remove|list      client quotas: byte rates and request time (on a data\n"
    "                             directory)\n"
    "  token create|list|revoke   API tokens for the HTTP API (Authorization: Bearer)\n"
    "  acl add|remove|list        ACLs: who may do what\n"
    "  schema register|list|show|check|delete|config\n"
    "                             the schema registry: subjects, versions, compatibility\n"
    "  cluster status             the brokers of a cluster and its controller (through a\n"
    "                             running broker)\n"
    "\n"
    "Every command takes --help. Commands work on a running broker given by --server URL\n"
    "(or $TIDINGS_SERVER, e.g. http://127.0.0.1:8080), or else locally on a data directory that\n"
    "no broker holds: --data DIR (default: $TIDINGS_DATA, else ./data).\n"
    "  tidings --version          print the version\n"
    "\n"
    "With --server, credentials: --user U with --password-file F, --password-stdin or\n"
    "$TIDINGS_PASSWORD; or --token-file F ($TIDINGS_TOKEN); --cacert F for https://.\n";

int cli_close(td_engine *e, int code)
{
    int rc = td_engine_close(e);
    if (rc == 0)
        return code;
    int failed = cli_fail("closing the data directory", rc);
    return code == EXIT_OK ? (failed == EXIT_OK ? EXIT_RUNTIME : failed) : code;
}

int cli_fail(const char *what, int rc)
{
    const char *detail = td_last_error();
    fprintf(stderr, "tidings: %s: %s\n", what, detail[0] ? detail : td_strerror(rc));
    switch (rc) {
    case TD_ENOTFOUND:
        return EXIT_NOTFOUND;
    case TD_ELOCKED:
    case TD_EFORMAT:
        return EXIT_DATADIR;
    case TD_ENAME:
    case TD_ECONFIG:
    case TD_EINVAL:
        return EXIT_USAGE;
    default:
        return EXIT_RUNTIME;
    }
}

int cli_usage_error(const char *verb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "tidings: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(see 'tidings %s --help')\n", verb);
    va_end(ap);
    return EXIT_USAGE;
}

const char *cli_data_dir(const char *flag)
{
    if (flag)
        return flag;
    const char *env = getenv("TIDINGS_DATA");
    return env && *env ? env : "./data";
}

int cli_open_hinted(const char *data, bool create, const char *missing_hint,
                    const char *locked_hint, td_engine **e)
{
    /* Only commands that make something (topic create, queue create) may create the data
     * directory: the others would leave an empty one behind and answer as if it were real. */
    char format[4096];
    snprintf(format, sizeof(format), "%s/FORMAT", data);
    if (!create && access(format, F_OK) != 0) {
        bool dir = access(data, F_OK) == 0;
        if (missing_hint)
            fprintf(stderr, "tidings: no tidings data in %s: %s\n", data, missing_hint);
        else
            fprintf(stderr,
                    "tidings: %s %s%s: create a topic first (tidings topic create), give --data "
                    "DIR, or --server URL to ask a running broker\n",
                    dir ? "no tidings data in" : "no data directory", dir ? "" : "at ", data);
        return EXIT_DATADIR;
    }
    td_options o;
    td_options_init(&o);
    o.no_background = 1;
    o.disk_reserve_bytes = -1; /* the reserve as the broker sized it (disk.reserve.bytes) */
    int rc = td_engine_open(data, &o, e);
    if (rc == 0)
        return EXIT_OK;
    int code = cli_fail("opening the data directory", rc);
    if (rc == TD_ELOCKED)
        fprintf(stderr, "(%s)\n",
                locked_hint ? locked_hint
                            : "a broker runs on it: give --server URL, such as --server "
                              "http://127.0.0.1:8080, or set TIDINGS_SERVER, to go through it");
    return code;
}

int cli_open(const char *data, bool create, td_engine **e)
{
    return cli_open_hinted(data, create, NULL, NULL, e);
}

int cli_open_topic(const char *data, const char *topic, int64_t partition, const char *what,
                   td_engine **e, td_topic_info *info)
{
    int rc = cli_open(cli_data_dir(data), false, e);
    if (rc)
        return rc;
    if ((rc = td_topic_describe(*e, topic, info)) != 0) {
        int code = cli_fail(what, rc);
        td_engine_close(*e);
        return code;
    }
    if (partition >= info->partitions) {
        fprintf(stderr, "tidings: %s: topic '%s' has no partition %lld\n", what, topic,
                (long long)partition);
        td_engine_close(*e);
        return EXIT_NOTFOUND;
    }
    return EXIT_OK;
}

bool cli_parse_i64(const char *s, int64_t *out)
{
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

/* Milliseconds since the epoch from a number or an ISO 8601 UTC time. */
bool cli_parse_time(const char *s, int64_t *ms)
{
    if (cli_parse_i64(s, ms))
        return *ms >= 0;
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end)
        return false;
    int64_t frac = 0;
    if (*end == '.') {
        int digits = 0;
        for (end++; *end >= '0' && *end <= '9'; end++, digits++)
            if (digits < 3)
                frac = frac * 10 + (*end - '0');
        for (; digits < 3; digits++)
            frac *= 10;
    }
    if (strcmp(end, "Z") != 0 && *end != 0)
        return false;
    *ms = (int64_t)timegm(&tm) * 1000 + frac;
    return true;
}

void cli_format_time(int64_t ms, char *buf, size_t len)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int64_t cli_json_int(const json_t *o, const char *key)
{
    return (int64_t)json_integer_value(json_object_get(o, key));
}

static const char b64_tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *cli_base64(const void *data, size_t n)
{
    const unsigned char *p = data;
    char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        *o++ = b64_tbl[v >> 18];
        *o++ = b64_tbl[(v >> 12) & 63];
        *o++ = i + 1 < n ? b64_tbl[(v >> 6) & 63] : '=';
        *o++ = i + 2 < n ? b64_tbl[v & 63] : '=';
    }
    *o = 0;
    return out;
}

char *cli_unbase64(const char *s, size_t n, size_t *len)
{
    if (n % 4)
        return NULL;
    char *out = malloc(n / 4 * 3 + 1);
    if (!out)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i += 4) {
        uint32_t v = 0;
        int pad = 0;
        for (int j = 0; j < 4; j++) {
            char c = s[i + j];
            const char *at = c ? strchr(b64_tbl, c) : NULL;
            if (c == '=' && i + 4 == n && j >= 2 && (j == 3 || s[i + 3] == '=')) {
                pad++;
                v <<= 6;
            } else if (at && !pad) {
                v = v << 6 | (uint32_t)(at - b64_tbl);
            } else {
                free(out);
                return NULL;
            }
        }
        out[k++] = (char)(v >> 16);
        if (pad < 2)
            out[k++] = (char)(v >> 8);
        if (pad < 1)
            out[k++] = (char)v;
    }
    out[k] = 0;
    *len = k;
    return out;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("tidings %s\n", TD_VERSION_STRING);
        return EXIT_OK;
    }
    /* The library logs to stderr; the local commands keep quiet unless asked. */
    const char *level = getenv("TIDINGS_LOG_LEVEL");
    if (level && td_set_log_level(level) != 0)
        return cli_fail("TIDINGS_LOG_LEVEL", TD_EINVAL);
    if (!level && strcmp(argv[1], "serve") != 0)
        td_set_log_level("warn");
    const char *verb = argv[1];
    int code = cli_auth_take(&argc, argv, verb);
    if (code != EXIT_OK)
        return code;
    if (strcmp(verb, "topic") == 0)
        return cmd_topic(argc - 1, argv + 1);
    if (strcmp(verb, "produce") == 0)
        return cmd_produce(argc - 1, argv + 1);
    if (strcmp(verb, "consume") == 0)
        return cmd_consume(argc - 1, argv + 1);
    if (strcmp(verb, "serve") == 0)
        return cmd_serve(argc - 1, argv + 1);
    if (strcmp(verb, "group") == 0)
        return cmd_group(argc - 1, argv + 1);
    if (strcmp(verb, "queue") == 0)
        return cmd_queue(argc - 1, argv + 1);
    if (strcmp(verb, "dlq") == 0)
        return cmd_dlq(argc - 1, argv + 1);
    if (strcmp(verb, "trace") == 0)
        return cmd_trace(argc - 1, argv + 1);
    if (strcmp(verb, "cluster") == 0)
        return cmd_cluster(argc - 1, argv + 1);
    if (strcmp(verb, "request") == 0)
        return cmd_request(argc - 1, argv + 1);
    if (strcmp(verb, "user") == 0)
        return cmd_user(argc - 1, argv + 1);
    if (strcmp(verb, "quota") == 0)
        return cmd_quota(argc - 1, argv + 1);
    if (strcmp(verb, "token") == 0)
        return cmd_token(argc - 1, argv + 1);
    if (strcmp(verb, "acl") == 0)
        return cmd_acl(argc - 1, argv + 1);
    if (strcmp(verb, "schema") == 0)
        return cmd_schema(argc - 1, argv + 1);
    fprintf(stderr, "tidings: unknown command '%s'\n(see 'tidings --help')\n", verb);
    return EXIT_USAGE;
}
