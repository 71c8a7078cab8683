/*
 * cmd_consume.c: tidings consume TOPIC: print events, in text or JSON lines, and exit at the
 * end of the log.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"

static const char consume_usage[] =
    "usage: tidings consume TOPIC [options]\n"
    "\n"
    "Prints events and exits at the end of the log. Without --from-beginning, --offset or\n"
    "--time it starts at the end (prints nothing new in local mode). Live following\n"
    "(--follow) comes with the network server.\n"
    "\n"
    "options:\n"
    "  -d, --data DIR          data directory (default: $TIDINGS_DATA, else ./data)\n"
    "  -b, --from-beginning    start at the earliest event\n"
    "  -o, --offset N          start at offset N (needs --partition when the topic has more\n"
    "                          than one)\n"
    "  -t, --time T            start at the first event at or after T: milliseconds since the\n"
    "                          epoch, or UTC like 2026-11-24T21:00:00Z\n"
    "  -p, --partition P       read only partition P (default: all, one after the other)\n"
    "  -m, --max N             stop after N events\n"
    "  -f, --format FMT        text (each value on its own line; default) or json (one object\n"
    "                          per line: topic, partition, offset, timestamp, key, value,\n"
    "                          headers; bytes that are not UTF-8 as key_b64/value_b64)\n"
    "  -h, --help              this help\n";

enum start_kind { START_END, START_BEGINNING, START_OFFSET, START_TIME };

/* Milliseconds since the epoch from a number or an ISO 8601 UTC time. */
static bool parse_time(const char *s, int64_t *ms)
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

static void print_bytes_field(const char *name, const void *p, size_t n, bool is_null)
{
    if (is_null) {
        printf(",\"%s\":null", name);
    } else if (utf8_valid(p, n)) {
        printf(",\"%s\":", name);
        cli_json_string(stdout, p, n);
    } else {
        printf(",\"%s_b64\":", name);
        cli_base64_write(stdout, p, n);
    }
}

static void print_event(const char *topic, const td_event *ev, bool json)
{
    if (!json) {
        if (ev->value)
            fwrite(ev->value, 1, ev->value_len, stdout);
        fputc('\n', stdout);
        return;
    }
    printf("{\"topic\":");
    cli_json_string(stdout, topic, strlen(topic));
    printf(",\"partition\":%" PRId32 ",\"offset\":%" PRId64 ",\"timestamp\":%" PRId64,
           ev->partition, ev->offset, ev->timestamp_ms);
    print_bytes_field("key", ev->key, ev->key_len, ev->key == NULL);
    print_bytes_field("value", ev->value, ev->value_len, ev->value == NULL);
    printf(",\"headers\":[");
    for (size_t i = 0; i < ev->header_count; i++) {
        const td_header *h = &ev->headers[i];
        printf("%s{\"key\":", i ? "," : "");
        cli_json_string(stdout, h->key, h->key_len);
        /* print_bytes_field starts with a comma */
        print_bytes_field("value", h->value, h->value_len, h->value == NULL);
        printf("}");
    }
    printf("]}\n");
}

int cmd_consume(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"data", required_argument, NULL, 'd'},   {"from-beginning", no_argument, NULL, 'b'},
        {"offset", required_argument, NULL, 'o'}, {"time", required_argument, NULL, 't'},
        {"partition", required_argument, NULL, 'p'}, {"max", required_argument, NULL, 'm'},
        {"format", required_argument, NULL, 'f'}, {"follow", no_argument, NULL, 'F'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
    const char *data = NULL;
    enum start_kind start = START_END;
    int64_t start_value = 0, partition = -1, max = -1;
    bool json = false;
    int c, starts = 0;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "d:bo:t:p:m:f:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            data = optarg;
            break;
        case 'b':
            start = START_BEGINNING;
            starts++;
            break;
        case 'o':
            if (!cli_parse_i64(optarg, &start_value) || start_value < 0)
                return cli_usage_error("consume", "--offset takes an offset, not '%s'", optarg);
            start = START_OFFSET;
            starts++;
            break;
        case 't':
            if (!parse_time(optarg, &start_value))
                return cli_usage_error("consume", "--time takes milliseconds since the epoch "
                                                  "or a UTC time like 2026-11-24T21:00:00Z, not "
                                                  "'%s'", optarg);
            start = START_TIME;
            starts++;
            break;
        case 'p':
            if (!cli_parse_i64(optarg, &partition) || partition < 0 || partition > INT32_MAX)
                return cli_usage_error("consume", "--partition takes a partition number, not "
                                                  "'%s'", optarg);
            break;
        case 'm':
            if (!cli_parse_i64(optarg, &max) || max < 0)
                return cli_usage_error("consume", "--max takes a count, not '%s'", optarg);
            break;
        case 'f':
            if (strcmp(optarg, "json") == 0)
                json = true;
            else if (strcmp(optarg, "text") != 0)
                return cli_usage_error("consume", "--format is text or json, not '%s'", optarg);
            break;
        case 'F':
            return cli_usage_error("consume", "--follow needs a running broker (it comes with "
                                              "the network server)");
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
    td_engine *e;
    td_topic_info info;
    int rc = cli_open_topic(data, topic, partition, "consuming", &e, &info);
    if (rc)
        return rc;
    int code = EXIT_OK;
    if (start == START_OFFSET && partition < 0 && info.partitions > 1) {
        code = cli_usage_error("consume", "--offset needs --partition: topic '%s' has %" PRId32
                                          " partitions", topic, info.partitions);
        goto out;
    }
    int64_t printed = 0;
    int32_t from = partition >= 0 ? (int32_t)partition : 0;
    int32_t to = partition >= 0 ? (int32_t)partition + 1 : info.partitions;
    for (int32_t p = from; p < to && (max < 0 || printed < max); p++) {
        td_iter *it;
        if (start == START_TIME)
            rc = td_iter_open_time(e, topic, p, start_value, &it);
        else
            rc = td_iter_open(e, topic, p,
                              start == START_BEGINNING ? TD_OFFSET_EARLIEST
                              : start == START_OFFSET  ? start_value
                                                       : TD_OFFSET_LATEST,
                              &it);
        if (rc) {
            code = cli_fail("consuming", rc);
            goto out;
        }
        td_event ev;
        while ((max < 0 || printed < max) && (rc = td_iter_next(it, &ev)) == 1) {
            print_event(topic, &ev, json);
            printed++;
        }
        td_iter_close(it);
        if (rc < 0) {
            code = cli_fail("consuming", rc);
            goto out;
        }
    }
    if (fflush(stdout) != 0)
        code = EXIT_RUNTIME;
out:
    td_engine_close(e);
    return code;
}
