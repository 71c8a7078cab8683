/*
 * cmd_request.c: `tidings request TOPIC [VALUE]` (docs/cli.md#request, docs/http-api.md
 * #request-reply): publishes one event as a request and prints the reply that a service
 * produced to the reply topic with the request's correlation id, through a running broker
 * (POST /v1/topics/{topic}/requests). There is no local mode: a reply needs a service running.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "cli/cli.h"
#include "cli/remote.h"

static const char request_usage[] =
    "usage: tidings request TOPIC [VALUE] [--key KEY] [--header NAME=VALUE ...]\n"
    "                       [--reply-to TOPIC] [--timeout MS] [--json] [--server URL]\n"
    "\n"
    "Publishes VALUE (JSON when it parses as JSON, else text; none: a null value) to TOPIC with\n"
    "the headers reply-to and correlation-id, and waits for the event a service produces to\n"
    "the reply topic (default TOPIC.replies) with that correlation id, as a header or as a\n"
    "member of its JSON value. Prints the reply's value (--json: the whole answer). --timeout:\n"
    "how long to wait, 1 to 300000 ms (default 30000); exit 1 when no reply came.\n";

#define MAX_HEADERS 64

int cmd_request(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"server", required_argument, NULL, 's'},  {"key", required_argument, NULL, 'k'},
        {"header", required_argument, NULL, 'H'},  {"reply-to", required_argument, NULL, 'r'},
        {"timeout", required_argument, NULL, 't'}, {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0}};
    const char *server = NULL, *key = NULL, *reply_to = NULL;
    const char *headers[MAX_HEADERS];
    size_t nh = 0;
    int64_t timeout = -1;
    bool as_json = false;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "s:k:H:r:t:jh", longopts, NULL)) != -1) {
        switch (c) {
        case 's':
            server = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 'H':
            if (nh == MAX_HEADERS || !strchr(optarg, '='))
                return cli_usage_error("request", "--header takes NAME=VALUE (at most %d)",
                                       MAX_HEADERS);
            headers[nh++] = optarg;
            break;
        case 'r':
            reply_to = optarg;
            break;
        case 't':
            if (!cli_parse_i64(optarg, &timeout) || timeout < 1 || timeout > 300000)
                return cli_usage_error("request", "--timeout takes 1 to 300000, not '%s'", optarg);
            break;
        case 'j':
            as_json = true;
            break;
        case 'h':
            fputs(request_usage, stdout);
            return EXIT_OK;
        default:
            return cli_usage_error("request", "unknown or incomplete option '%s'",
                                   argv[optind - 1]);
        }
    }
    if (optind != argc - 1 && optind != argc - 2)
        return cli_usage_error("request", "request needs a topic and at most one value");
    const char *topic = argv[optind], *value = optind == argc - 2 ? argv[optind + 1] : NULL;
    server = cli_server(server);
    if (!server)
        return cli_usage_error("request", "request needs a running broker: --server URL or "
                                          "TIDINGS_SERVER (a reply comes from a service)");
    json_t *body = json_object();
    if (value) {
        json_t *v = json_loads(value, JSON_DECODE_ANY, NULL);
        json_object_set_new(body, v ? "value" : "value_text", v ? v : json_string(value));
    }
    if (key)
        json_object_set_new(body, "key", json_string(key));
    if (nh) {
        json_t *hs = json_object();
        for (size_t i = 0; i < nh; i++) {
            const char *eq = strchr(headers[i], '=');
            char name[256];
            snprintf(name, sizeof(name), "%.*s", (int)(eq - headers[i]), headers[i]);
            json_object_set_new(hs, name, json_string(eq + 1));
        }
        json_object_set_new(body, "headers", hs);
    }
    if (reply_to)
        json_object_set_new(body, "reply_to", json_string(reply_to));
    if (timeout > 0)
        json_object_set_new(body, "timeout_ms", json_integer(timeout));
    cli_remote r;
    int code = cli_remote_open(server, &r);
    json_t *ans = NULL;
    if (code == EXIT_OK) {
        char seg[CLI_SEGMENT_MAX], path[CLI_SEGMENT_MAX + 32];
        snprintf(path, sizeof(path), "/v1/topics/%s/requests", cli_path_segment(topic, seg));
        code = cli_remote_call(&r, "POST", path, body, &ans, "request");
        cli_remote_close(&r);
    }
    json_decref(body);
    if (code)
        return code;
    if (as_json)
        cli_json_print(ans);
    else
        cli_json_print(json_object_get(json_object_get(ans, "reply"), "value"));
    json_decref(ans);
    return fflush(stdout) == 0 ? EXIT_OK : EXIT_RUNTIME;
}
