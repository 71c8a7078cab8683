/*
 * cmd_token.c: `tidings token create|list|revoke`: API tokens for the HTTP API (bearer
 * credentials, docs/security.md#api-tokens), locally on a data directory no broker holds, or
 * through a running broker (--server).
 *
 * A token's text is printed once, by create, on standard output alone (so that
 * `tidings token create > token-file` captures just it); listings never show secrets.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/remote.h"

static const char token_usage[] =
    "usage: tidings token <action> [options]\n"
    "\n"
    "  create [--user U] [--expires DURATION] [--description TEXT]\n"
    "                          prints the new token (shown this once)\n"
    "  list [--user U | --all] [--json]\n"
    "                          tokens (never their secrets)\n"
    "  revoke ID               revokes a token (its id, as list shows it)\n"
    "\n"
    "options:\n"
    "  -d, --data DIR          data directory (default: $TIDINGS_DATA, else ./data)\n"
    "  -s, --server URL        through a running broker (or $TIDINGS_SERVER); credentials as\n"
    "                          'tidings --help' says (--user U with a password, or a token)\n"
    "      --user U            locally: the token's owner (required for create)\n"
    "      --owner U           the owner when it is not the user who asks (an administrator's\n"
    "                          request through --server; locally the same as --user)\n"
    "      --expires D         lifetime: N followed by s, m, h or d (30d); default: never\n"
    "      --description TEXT  what the token is for\n"
    "      --json              machine-readable output (list, create)\n"
    "  -h, --help              this help\n";

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct token_opts {
    const char *data, *server, *owner, *description;
    int64_t expires_in_ms; /* 0: never */
    bool json, all;
} token_opts;

/* "30d", "12h", "15m", "90s" (or a bare number of seconds) in milliseconds; false if not. */
static bool parse_duration(const char *s, int64_t *ms)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (end == s || v <= 0)
        return false;
    int64_t unit = 1000;
    if (*end == 'm')
        unit = 60000;
    else if (*end == 'h')
        unit = 3600000;
    else if (*end == 'd')
        unit = 86400000;
    else if (*end != 's' && *end != 0)
        return false;
    if (*end && end[1])
        return false;
    if (v > INT64_MAX / unit / 2)
        return false;
    *ms = v * unit;
    return true;
}

static void print_tokens(json_t *arr, bool json)
{
    if (json) {
        json_t *o = json_pack("{s:O}", "tokens", arr);
        cli_json_print(o);
        json_decref(o);
        return;
    }
    printf("%-16s  %-16s  %-20s  %-20s  %s\n", "ID", "USER", "CREATED", "EXPIRES", "DESCRIPTION");
    size_t i;
    json_t *t;
    json_array_foreach(arr, i, t)
    {
        char created[32], expires[40] = "never";
        cli_format_time(cli_json_int(t, "created_ms"), created, sizeof(created));
        int64_t exp = cli_json_int(t, "expires_ms");
        if (exp) {
            cli_format_time(exp, expires, sizeof(expires));
            if (json_is_true(json_object_get(t, "expired")))
                snprintf(expires + strlen(expires), sizeof(expires) - strlen(expires), "!");
        }
        printf("%-16s  %-16s  %-20s  %-20s  %s\n", cli_json_str(t, "id"), cli_json_str(t, "user"),
               created, expires, cli_json_str(t, "description"));
    }
}

static json_t *info_json(const td_token_info *t)
{
    json_t *o = json_pack("{s:s,s:s,s:s,s:I}", "id", t->id, "user", t->user, "description",
                          t->description, "created_ms", (json_int_t)t->created_ms);
    json_object_set_new(o, "expires_ms", t->expires_ms ? json_integer(t->expires_ms) : json_null());
    json_object_set_new(o, "expired", json_boolean(t->expires_ms && t->expires_ms <= wall_ms()));
    return o;
}

static void print_created(const char *token, const json_t *info, bool json)
{
    if (json) {
        json_t *o = json_deep_copy(info);
        json_object_set_new(o, "token", json_string(token));
        cli_json_print(o);
        json_decref(o);
    } else {
        printf("%s\n", token);
        fprintf(stderr, "created API token %s for user %s: keep it secret, it is not shown again\n",
                cli_json_str(info, "id"), cli_json_str(info, "user"));
    }
}

static int token_local(const char *action, const char *id, const token_opts *o)
{
    if (!strcmp(action, "create") && !o->owner)
        return cli_usage_error("token", "token create needs the token's owner: --user U");
    td_engine *e;
    int code = cli_open_hinted(cli_data_dir(o->data), false,
                               "give --data DIR, the broker's data directory",
                               "a broker runs on it: give --server URL to manage tokens through "
                               "it",
                               &e);
    if (code)
        return code;
    int rc;
    if (!strcmp(action, "create")) {
        char token[TD_TOKEN_LEN + 1];
        td_token_info info;
        int64_t exp = o->expires_in_ms ? wall_ms() + o->expires_in_ms : 0;
        if ((rc = td_token_create(e, o->owner, exp, o->description, token, &info)) == 0) {
            json_t *j = info_json(&info);
            print_created(token, j, o->json);
            json_decref(j);
            explicit_bzero(token, sizeof(token));
        } else {
            code = cli_fail("creating a token", rc);
        }
    } else if (!strcmp(action, "list")) {
        td_token_info *v;
        size_t n;
        if ((rc = td_token_list(e, o->owner, &v, &n)) == 0) {
            json_t *arr = json_array();
            for (size_t i = 0; i < n; i++)
                json_array_append_new(arr, info_json(&v[i]));
            print_tokens(arr, o->json);
            json_decref(arr);
            free(v);
        } else {
            code = cli_fail("listing tokens", rc);
        }
    } else if ((rc = td_token_revoke(e, id, o->owner)) == 0) {
        printf("revoked token %s\n", id);
    } else {
        code = cli_fail("revoking the token", rc);
    }
    return cli_close(e, code);
}

static int token_remote(const char *server, const char *action, const char *id, const token_opts *o)
{
    cli_remote r;
    int code = cli_remote_open(server, &r);
    if (code)
        return code;
    json_t *ans = NULL;
    if (!strcmp(action, "create")) {
        json_t *b = json_object();
        if (o->owner)
            json_object_set_new(b, "user", json_string(o->owner));
        if (o->expires_in_ms)
            json_object_set_new(b, "expires_in_ms", json_integer(o->expires_in_ms));
        if (o->description)
            json_object_set_new(b, "description", json_string(o->description));
        code = cli_remote_call(&r, "POST", "/v1/tokens", b, &ans, "creating a token");
        json_decref(b);
        const char *token = json_string_value(json_object_get(ans, "token"));
        if (code == EXIT_OK && token) {
            json_t *info = json_deep_copy(ans);
            json_object_del(info, "token");
            print_created(token, info, o->json);
            json_decref(info);
        } else if (code == EXIT_OK) {
            fprintf(stderr, "tidings: creating a token: the broker's answer has no token\n");
            code = EXIT_RUNTIME;
        }
    } else if (!strcmp(action, "list")) {
        char path[1024] = "/v1/tokens";
        char *esc = o->owner ? cli_remote_escape(&r, o->owner) : NULL;
        if (esc)
            snprintf(path, sizeof(path), "/v1/tokens?user=%s", esc);
        else if (o->all)
            snprintf(path, sizeof(path), "/v1/tokens?all=true");
        free(esc);
        if ((code = cli_remote_call(&r, "GET", path, NULL, &ans, "listing tokens")) == EXIT_OK)
            print_tokens(json_object_get(ans, "tokens"), o->json);
    } else {
        char path[256];
        char *esc = cli_remote_escape(&r, id);
        snprintf(path, sizeof(path), "/v1/tokens/%s", esc ? esc : "");
        free(esc);
        if ((code = cli_remote_call(&r, "DELETE", path, NULL, NULL, "revoking the token")) ==
            EXIT_OK)
            printf("revoked token %s\n", id);
    }
    json_decref(ans);
    cli_remote_close(&r);
    return code;
}

int cmd_token(int argc, char **argv)
{
    enum { OPT_JSON = 256, OPT_OWNER, OPT_EXPIRES, OPT_DESC, OPT_ALL };
    static const struct option longopts[] = {
        {"data", required_argument, NULL, 'd'},
        {"server", required_argument, NULL, 's'},
        {"owner", required_argument, NULL, OPT_OWNER},
        {"expires", required_argument, NULL, OPT_EXPIRES},
        {"description", required_argument, NULL, OPT_DESC},
        {"all", no_argument, NULL, OPT_ALL},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    token_opts o = {0};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "d:s:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            o.data = optarg;
            break;
        case 's':
            o.server = optarg;
            break;
        case OPT_OWNER:
            o.owner = optarg;
            break;
        case OPT_EXPIRES:
            if (!parse_duration(optarg, &o.expires_in_ms))
                return cli_usage_error("token",
                                       "--expires takes a duration like 90s, 15m, 12h or 30d, "
                                       "not '%s'",
                                       optarg);
            break;
        case OPT_DESC:
            o.description = optarg;
            break;
        case OPT_ALL:
            o.all = true;
            break;
        case OPT_JSON:
            o.json = true;
            break;
        case 'h':
            fputs(token_usage, stdout);
            return EXIT_OK;
        default:
            return cli_usage_error("token", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return cli_usage_error("token", "token needs an action: create, list or revoke");
    const char *action = argv[optind], *id = optind + 1 < argc ? argv[optind + 1] : NULL;
    bool revoke = !strcmp(action, "revoke");
    if (!revoke && strcmp(action, "create") && strcmp(action, "list"))
        return cli_usage_error("token", "unknown token action '%s'", action);
    if (argc - optind > (revoke ? 2 : 1))
        return cli_usage_error("token", "unexpected argument '%s'",
                               argv[optind + (revoke ? 2 : 1)]);
    if (revoke && !id)
        return cli_usage_error("token", "token revoke needs the token's id (token list)");
    if ((o.expires_in_ms || o.description) && strcmp(action, "create"))
        return cli_usage_error("token", "--expires and --description are for token create");
    const char *server = cli_server(o.server);
    /* Locally, --user names the owner; through a broker it is who asks (the credentials), and
     * --owner names another user. */
    if (!server && !o.owner)
        o.owner = cli_auth_user();
    if (o.all && o.owner)
        return cli_usage_error("token", "give --all or an owner, not both");
    return server ? token_remote(server, action, id, &o) : token_local(action, id, &o);
}
