/*
 * cmd_produce.c: tidings produce TOPIC: one event per line of standard input.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static const char produce_usage[] =
    "usage: tidings produce TOPIC [options] < events\n"
    "\n"
    "Appends one event per line of standard input (the newline is not part of the event).\n"
    "Returns once the events are durable under the topic's fsync policy.\n"
    "\n"
    "options:\n"
    "  -d, --data DIR            data directory (default: $TIDINGS_DATA, else ./data)\n"
    "  -p, --partition P         write to partition P (default: by key, or round-robin)\n"
    "  -k, --key-separator SEP   the key is the text before the first SEP, the value after it;\n"
    "                            a line without SEP has no key\n"
    "  -H, --header KEY=VALUE    add a header to every event (repeatable)\n"
    "  -b, --batch N             events per append (default 1000)\n"
    "  -v, --verbose             print partition and offset of each event\n"
    "  -h, --help                this help\n";

#define MAX_HEADERS 64

int cmd_produce(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"data", required_argument, NULL, 'd'},  {"partition", required_argument, NULL, 'p'},
        {"key-separator", required_argument, NULL, 'k'},
        {"header", required_argument, NULL, 'H'}, {"batch", required_argument, NULL, 'b'},
        {"verbose", no_argument, NULL, 'v'},     {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *data = NULL, *sep = NULL;
    int64_t partition = TD_PARTITION_ANY, batch = 1000;
    bool verbose = false;
    td_header headers[MAX_HEADERS];
    size_t nheaders = 0;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "d:p:k:H:b:vh", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            data = optarg;
            break;
        case 'p':
            if (!cli_parse_i64(optarg, &partition) || partition < 0 || partition > INT32_MAX)
                return cli_usage_error("produce", "--partition takes a partition number, not "
                                                  "'%s'", optarg);
            break;
        case 'k':
            if (!*optarg)
                return cli_usage_error("produce", "--key-separator cannot be empty");
            sep = optarg;
            break;
        case 'H': {
            const char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg)
                return cli_usage_error("produce", "--header takes KEY=VALUE, not '%s'", optarg);
            if (nheaders == MAX_HEADERS)
                return cli_usage_error("produce", "too many headers");
            headers[nheaders++] = (td_header){optarg, (size_t)(eq - optarg), eq + 1,
                                              strlen(eq + 1)};
            break;
        }
        case 'b':
            if (!cli_parse_i64(optarg, &batch) || batch < 1 || batch > 1000000)
                return cli_usage_error("produce", "--batch takes a number from 1 to 1000000");
            break;
        case 'v':
            verbose = true;
            break;
        case 'h':
            fputs(produce_usage, stdout);
            return EXIT_OK;
        default:
            return cli_usage_error("produce", "unknown or incomplete option '%s'",
                                   argv[optind - 1]);
        }
    }
    if (optind != argc - 1)
        return cli_usage_error("produce", optind >= argc ? "produce needs a topic"
                                                         : "produce takes one topic");
    const char *topic = argv[optind];
    td_engine *e;
    td_topic_info info;
    int rc = cli_open_topic(data, topic, partition, "producing", &e, &info);
    if (rc)
        return rc;
    /* Lines are kept in their own buffers until the batch is appended. */
    size_t cap = (size_t)batch;
    char **lines = calloc(cap, sizeof(*lines));
    size_t *caps = calloc(cap, sizeof(*caps));
    td_event *ev = calloc(cap, sizeof(*ev));
    td_produce_result *res = calloc(cap, sizeof(*res));
    int code = EXIT_OK;
    if (!lines || !caps || !ev || !res) {
        code = cli_fail("producing", -12);
        goto out;
    }
    size_t n = 0, seplen = sep ? strlen(sep) : 0;
    uint64_t total = 0;
    for (;;) {
        ssize_t len = getline(&lines[n], &caps[n], stdin);
        if (len >= 0) {
            if (len > 0 && lines[n][len - 1] == '\n')
                lines[n][--len] = 0;
            td_event *x = &ev[n];
            memset(x, 0, sizeof(*x));
            x->partition = (int32_t)partition;
            x->value = lines[n];
            x->value_len = (size_t)len;
            char *at = sep ? memmem(lines[n], (size_t)len, sep, seplen) : NULL;
            if (at) {
                x->key = lines[n];
                x->key_len = (size_t)(at - lines[n]);
                x->value = at + seplen;
                x->value_len = (size_t)len - x->key_len - seplen;
            }
            x->headers = nheaders ? headers : NULL;
            x->header_count = nheaders;
            n++;
        }
        if (n == cap || (len < 0 && n > 0)) {
            rc = td_produce(e, topic, ev, n, res);
            if (rc) {
                code = cli_fail("producing", rc);
                goto out;
            }
            for (size_t i = 0; verbose && i < n; i++)
                printf("%" PRId32 " %" PRId64 "\n", res[i].partition, res[i].offset);
            total += n;
            n = 0;
        }
        if (len < 0)
            break;
    }
    if (ferror(stdin)) {
        fprintf(stderr, "tidings: producing: error reading standard input after %" PRIu64
                        " events\n", total);
        code = EXIT_RUNTIME;
    }
out:
    for (size_t i = 0; lines && i < cap; i++)
        free(lines[i]);
    free(lines);
    free(caps);
    free(ev);
    free(res);
    td_engine_close(e);
    return code;
}
