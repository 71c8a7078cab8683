/*
 * cmd_acl.c: tidings acl add|remove|list, on a data directory (local mode), with the flags of
 * Kafka's kafka-acls.sh where they fit (docs/cli.md#acl):
 *
 *   tidings acl add --allow-principal User:alice --operation Read --topic orders \
 *       --resource-pattern-type prefixed
 *
 * As kafka-acls.sh does, several principals, operations and resources multiply: each principal
 * gets each operation on each resource. remove and list take the same flags as filters: a flag
 * left out matches everything (remove needs at least one flag, so that an empty command line
 * never removes every ACL).
 *
 * With --server (or $TIDINGS_SERVER) the same goes through the broker's /v1/acls routes
 * (proto/http/acls.c), as the connection's principal: an administrator.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/base.h" /* td_grow: pure memory code, no engine access */
#include "cli/cli.h"
#include "cli/remote.h"

static const char acl_usage[] =
    "usage: tidings acl <action> [options]\n"
    "\n"
    "  add     --allow-principal P | --deny-principal P  --operation OP  RESOURCE...\n"
    "  remove  [filters]   removes the ACLs the filters match (at least one filter)\n"
    "  list    [filters] [--json]\n"
    "\n"
    "principals: User:NAME, User:* (everyone), User:ANONYMOUS (clients that did not\n"
    "authenticate). Operations: All, Read, Write, Create, Delete, Alter, Describe,\n"
    "ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite.\n"
    "\n"
    "options (each may be repeated; add makes every combination):\n"
    "  -d, --data DIR                  data directory (default: $TIDINGS_DATA, else ./data)\n"
    "      --allow-principal P         an ACL that allows P (filter: allow ACLs of P)\n"
    "      --deny-principal P          an ACL that denies P (filter: deny ACLs of P)\n"
    "      --principal P               filter: ACLs of P, allow or deny\n"
    "      --host IP                   the client address (default *: any); also\n"
    "      --allow-host, --deny-host   as kafka-acls.sh spells it\n"
    "      --operation OP              the operation\n"
    "      --topic T, --group G, --transactional-id ID, --cluster\n"
    "                                  the resource (a name or pattern, see below)\n"
    "      --resource-pattern-type T   literal (default), prefixed, or wildcard (topic\n"
    "                                  patterns: orders.* one segment, orders.# any); filters\n"
    "                                  also take any and match (the ACLs that apply to the\n"
    "                                  named resource)\n"
    "      --json                      machine-readable output (list)\n"
    "  -s, --server URL                a running broker's HTTP API (default: $TIDINGS_SERVER;\n"
    "                                  '' for local mode); needs an administrator\n"
    "  -h, --help                      this help\n";

#define MAX_ITEMS 32

typedef struct res_arg {
    td_acl_resource type;
    const char *name;
} res_arg;

typedef struct principal_arg {
    const char *principal;
    td_acl_permission perm; /* TD_PERM_ANY for --principal */
} principal_arg;

typedef struct acl_opts {
    const char *data, *server;
    principal_arg principals[MAX_ITEMS];
    size_t nprincipals;
    const char *hosts[MAX_ITEMS];
    size_t nhosts;
    td_acl_op ops[MAX_ITEMS];
    size_t nops;
    res_arg res[MAX_ITEMS];
    size_t nres;
    td_acl_pattern pattern;
    bool have_pattern, json;
} acl_opts;

static void print_list(const td_acl *v, size_t n, bool json)
{
    if (json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(
                arr, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "principal", v[i].principal, "host",
                               v[i].host, "resource_type", td_acl_resource_name(v[i].resource_type),
                               "pattern_type", td_acl_pattern_name(v[i].pattern_type), "name",
                               v[i].name, "operation", td_acl_op_name(v[i].operation), "permission",
                               td_acl_permission_name(v[i].permission)));
        json_t *o = json_pack("{s:o}", "acls", arr);
        cli_json_print(o);
        json_decref(o);
        return;
    }
    printf("%-10s %-24s %-16s %-16s %-9s %-10s %s\n", "PERMISSION", "PRINCIPAL", "HOST",
           "OPERATION", "TYPE", "PATTERN", "RESOURCE");
    for (size_t i = 0; i < n; i++)
        printf("%-10s %-24s %-16s %-16s %-9s %-10s %s\n", td_acl_permission_name(v[i].permission),
               v[i].principal, v[i].host, td_acl_op_name(v[i].operation),
               td_acl_resource_name(v[i].resource_type), td_acl_pattern_name(v[i].pattern_type),
               v[i].name);
}

static void describe(const td_acl *a, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s %s %s on %s %s '%s' from %s", td_acl_permission_name(a->permission),
             a->principal, td_acl_op_name(a->operation), td_acl_resource_name(a->resource_type),
             td_acl_pattern_name(a->pattern_type), a->name, a->host);
}

static bool fits(char *dst, size_t cap, const char *s)
{
    if (strlen(s) >= cap)
        return false;
    memcpy(dst, s, strlen(s) + 1);
    return true;
}

static int acl_add(td_engine *e, const acl_opts *o)
{
    size_t nhosts = o->nhosts ? o->nhosts : 1;
    int code = EXIT_OK;
    for (size_t p = 0; p < o->nprincipals; p++)
        for (size_t h = 0; h < nhosts; h++)
            for (size_t k = 0; k < o->nops; k++)
                for (size_t r = 0; r < o->nres; r++) {
                    td_acl a;
                    memset(&a, 0, sizeof(a));
                    a.resource_type = o->res[r].type;
                    a.pattern_type = o->have_pattern ? o->pattern : TD_PAT_LITERAL;
                    a.operation = o->ops[k];
                    a.permission = o->principals[p].perm;
                    if (!fits(a.principal, sizeof(a.principal), o->principals[p].principal) ||
                        !fits(a.host, sizeof(a.host), o->nhosts ? o->hosts[h] : "*") ||
                        !fits(a.name, sizeof(a.name), o->res[r].name))
                        return cli_usage_error("acl", "a principal, host or resource name is "
                                                      "too long");
                    int rc = td_acl_add(e, &a);
                    char d[TD_ACL_PRINCIPAL_MAX + TD_ACL_NAME_MAX + 128];
                    describe(&a, d, sizeof(d));
                    if (rc)
                        return cli_fail("adding ACL", rc);
                    printf("added ACL: %s\n", d);
                }
    return code;
}

/* Runs fn over each filter the options make (principals x hosts x operations x resources,
 * each left out meaning any). */
static int for_each_filter(const acl_opts *o, int (*fn)(void *arg, const td_acl_filter *f),
                           void *arg)
{
    size_t np = o->nprincipals ? o->nprincipals : 1, nh = o->nhosts ? o->nhosts : 1;
    size_t nk = o->nops ? o->nops : 1, nr = o->nres ? o->nres : 1;
    for (size_t p = 0; p < np; p++)
        for (size_t h = 0; h < nh; h++)
            for (size_t k = 0; k < nk; k++)
                for (size_t r = 0; r < nr; r++) {
                    td_acl_filter f;
                    td_acl_filter_init(&f);
                    if (o->nprincipals) {
                        f.principal = o->principals[p].principal;
                        f.permission = o->principals[p].perm;
                    }
                    if (o->nhosts)
                        f.host = o->hosts[h];
                    if (o->nops)
                        f.operation = o->ops[k];
                    if (o->nres) {
                        f.resource_type = o->res[r].type;
                        f.name = o->res[r].name;
                    }
                    if (o->have_pattern)
                        f.pattern_type = o->pattern;
                    int code = fn(arg, &f);
                    if (code != EXIT_OK)
                        return code;
                }
    return EXIT_OK;
}

typedef struct collect {
    td_engine *e;
    bool remove;
    td_acl *v;
    size_t n, cap;
} collect;

/* Adds an ACL unless it is there already: filters made from several flags may match one ACL
 * twice (list only). 0 or -ENOMEM. */
static int acl_collect(td_acl **v, size_t *n, size_t *cap, const td_acl *a)
{
    for (size_t k = 0; k < *n; k++)
        if (memcmp(&(*v)[k], a, sizeof(*a)) == 0)
            return 0;
    if (td_grow(v, cap, *n, sizeof(**v), 16) != 0)
        return -ENOMEM;
    (*v)[(*n)++] = *a;
    return 0;
}

static int collect_one(void *arg, const td_acl_filter *f)
{
    collect *c = arg;
    td_acl *v = NULL;
    size_t n = 0;
    int rc = c->remove ? td_acl_remove(c->e, f, &v, &n) : td_acl_list(c->e, f, &v, &n);
    if (rc)
        return cli_fail(c->remove ? "removing ACLs" : "listing ACLs", rc);
    for (size_t i = 0; i < n; i++)
        if (acl_collect(&c->v, &c->n, &c->cap, &v[i]) != 0) {
            free(v);
            return cli_fail("listing ACLs", -ENOMEM);
        }
    free(v);
    return EXIT_OK;
}

/* The ACL of an answer's JSON object (the names td_acl_*_name give); false if it is not one. */
static bool acl_of_json(const json_t *j, td_acl *a)
{
    memset(a, 0, sizeof(*a));
    const char *p = json_string_value(json_object_get(j, "principal"));
    const char *h = json_string_value(json_object_get(j, "host"));
    const char *n = json_string_value(json_object_get(j, "name"));
    if (!p || !h || !n || !fits(a->principal, sizeof(a->principal), p) ||
        !fits(a->host, sizeof(a->host), h) || !fits(a->name, sizeof(a->name), n))
        return false;
    a->resource_type = td_acl_resource_parse(cli_json_str(j, "resource_type"));
    a->pattern_type = td_acl_pattern_parse(cli_json_str(j, "pattern_type"));
    a->operation = td_acl_op_parse(cli_json_str(j, "operation"));
    a->permission = td_acl_permission_parse(cli_json_str(j, "permission"));
    return true;
}

/* "/v1/acls?key=value&..." of a filter, escaped, as a malloc'd string. */
static char *filter_query(cli_remote *r, const td_acl_filter *f)
{
    const char *keys[] = {"principal",    "host",      "name",      "resource_type",
                          "pattern_type", "operation", "permission"};
    const char *vals[] = {
        f->principal,
        f->host,
        f->name,
        f->resource_type != TD_RES_ANY ? td_acl_resource_name(f->resource_type) : NULL,
        f->pattern_type != TD_PAT_ANY ? td_acl_pattern_name(f->pattern_type) : NULL,
        f->operation != TD_OP_ANY ? td_acl_op_name(f->operation) : NULL,
        f->permission != TD_PERM_ANY ? td_acl_permission_name(f->permission) : NULL};
    /* Escaping at most triples a byte; the names and separators fit in the rest. */
    size_t cap = 64, len = 0;
    for (size_t i = 0; i < sizeof(keys) / sizeof(*keys); i++)
        cap += vals[i] ? strlen(keys[i]) + 2 + 3 * strlen(vals[i]) : 0;
    char *path = malloc(cap);
    if (!path)
        return NULL;
    len = (size_t)snprintf(path, cap, "/v1/acls");
    char sep = '?';
    for (size_t i = 0; i < sizeof(keys) / sizeof(*keys); i++) {
        if (!vals[i])
            continue;
        char *esc = cli_remote_escape(r, vals[i]);
        if (!esc) {
            free(path);
            return NULL;
        }
        len += (size_t)snprintf(path + len, cap - len, "%c%s=%s", sep, keys[i], esc);
        free(esc);
        sep = '&';
    }
    return path;
}

typedef struct remote_ctx {
    cli_remote *r;
    const char *method;
    td_acl *v;
    size_t n, cap;
} remote_ctx;

static int remote_one(void *arg, const td_acl_filter *f)
{
    remote_ctx *c = arg;
    char *path = filter_query(c->r, f);
    if (!path)
        return cli_fail("listing ACLs", -ENOMEM);
    json_t *out = NULL;
    bool del = !strcmp(c->method, "DELETE");
    int code =
        cli_remote_call(c->r, c->method, path, NULL, &out, del ? "removing ACLs" : "listing ACLs");
    free(path);
    json_t *arr = json_object_get(out, del ? "removed" : "acls");
    size_t i;
    json_t *x;
    json_array_foreach(arr, i, x)
    {
        td_acl a;
        if (acl_of_json(x, &a) && acl_collect(&c->v, &c->n, &c->cap, &a) != 0) {
            code = cli_fail("listing ACLs", -ENOMEM);
            break;
        }
    }
    json_decref(out);
    return code;
}

static int acl_remote(const char *action, const acl_opts *o, const char *server)
{
    cli_remote r;
    int code = cli_remote_open(server, &r);
    if (code != EXIT_OK)
        return code;
    if (!strcmp(action, "add")) {
        size_t nhosts = o->nhosts ? o->nhosts : 1;
        for (size_t p = 0; p < o->nprincipals && code == EXIT_OK; p++)
            for (size_t h = 0; h < nhosts && code == EXIT_OK; h++)
                for (size_t k = 0; k < o->nops && code == EXIT_OK; k++)
                    for (size_t i = 0; i < o->nres && code == EXIT_OK; i++) {
                        td_acl a = {.resource_type = o->res[i].type,
                                    .pattern_type = o->have_pattern ? o->pattern : TD_PAT_LITERAL,
                                    .operation = o->ops[k],
                                    .permission = o->principals[p].perm};
                        json_t *b = json_pack(
                            "{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "principal",
                            o->principals[p].principal, "host", o->nhosts ? o->hosts[h] : "*",
                            "resource_type", td_acl_resource_name(a.resource_type), "pattern_type",
                            td_acl_pattern_name(a.pattern_type), "name", o->res[i].name,
                            "operation", td_acl_op_name(a.operation), "permission",
                            td_acl_permission_name(a.permission));
                        json_t *out = NULL;
                        code = cli_remote_call(&r, "POST", "/v1/acls", b, &out, "adding ACL");
                        json_decref(b);
                        td_acl got;
                        if (code == EXIT_OK && acl_of_json(json_object_get(out, "acl"), &got)) {
                            char d[TD_ACL_PRINCIPAL_MAX + TD_ACL_NAME_MAX + 128];
                            describe(&got, d, sizeof(d));
                            printf("added ACL: %s\n", d);
                        }
                        json_decref(out);
                    }
    } else {
        remote_ctx c = {.r = &r, .method = !strcmp(action, "remove") ? "DELETE" : "GET"};
        code = for_each_filter(o, remote_one, &c);
        if (code == EXIT_OK && !strcmp(action, "remove")) {
            for (size_t i = 0; i < c.n; i++) {
                char d[TD_ACL_PRINCIPAL_MAX + TD_ACL_NAME_MAX + 128];
                describe(&c.v[i], d, sizeof(d));
                printf("removed ACL: %s\n", d);
            }
            if (c.n == 0)
                printf("no ACL matched\n");
        } else if (code == EXIT_OK) {
            print_list(c.v, c.n, o->json);
        }
        free(c.v);
    }
    cli_remote_close(&r);
    return code;
}

static int acl_local(const char *action, const acl_opts *o)
{
    td_engine *e;
    bool adding = !strcmp(action, "add");
    int code = cli_open_hinted(o->data ? o->data : cli_data_dir(NULL), adding,
                               "give --data DIR, the broker's data directory",
                               "a broker runs on it: stop it to change ACLs with this command, "
                               "or use Kafka's CreateAcls / DeleteAcls (kafka-acls.sh, an "
                               "AdminClient) against the running broker",
                               &e);
    if (code != EXIT_OK)
        return code;
    if (adding) {
        code = acl_add(e, o);
    } else {
        collect c = {.e = e, .remove = !strcmp(action, "remove")};
        code = for_each_filter(o, collect_one, &c);
        if (code == EXIT_OK && c.remove) {
            for (size_t i = 0; i < c.n; i++) {
                char d[TD_ACL_PRINCIPAL_MAX + TD_ACL_NAME_MAX + 128];
                describe(&c.v[i], d, sizeof(d));
                printf("removed ACL: %s\n", d);
            }
            if (c.n == 0)
                printf("no ACL matched\n");
        } else if (code == EXIT_OK) {
            print_list(c.v, c.n, o->json);
        }
        free(c.v);
    }
    return cli_close(e, code);
}

static int add_item(size_t *n, const char *what)
{
    if (*n >= MAX_ITEMS)
        return cli_usage_error("acl", "at most %d %s", MAX_ITEMS, what);
    (*n)++;
    return EXIT_OK;
}

static int add_resource(acl_opts *o, td_acl_resource type, const char *name)
{
    int code = add_item(&o->nres, "resources");
    if (code == EXIT_OK)
        o->res[o->nres - 1] = (res_arg){type, name};
    return code;
}

static int add_principal(acl_opts *o, const char *p, td_acl_permission perm)
{
    int code = add_item(&o->nprincipals, "principals");
    if (code == EXIT_OK)
        o->principals[o->nprincipals - 1] = (principal_arg){p, perm};
    return code;
}

/* The checks of the whole command line once parsed. */
static int check_opts(const char *action, const acl_opts *o)
{
    bool add = !strcmp(action, "add"), list = !strcmp(action, "list");
    if (!add && !list && strcmp(action, "remove"))
        return cli_usage_error("acl", "unknown acl action '%s'", action);
    if (o->json && !list)
        return cli_usage_error("acl", "--json is for acl list");
    if (add) {
        if (!o->nprincipals)
            return cli_usage_error("acl", "acl add needs --allow-principal or --deny-principal");
        for (size_t i = 0; i < o->nprincipals; i++)
            if (o->principals[i].perm == TD_PERM_ANY)
                return cli_usage_error("acl", "acl add takes --allow-principal or "
                                              "--deny-principal, not --principal");
        if (!o->nops)
            return cli_usage_error("acl", "acl add needs --operation");
        if (!o->nres)
            return cli_usage_error("acl", "acl add needs a resource: --topic, --group, "
                                          "--transactional-id or --cluster");
        if (o->have_pattern && (o->pattern == TD_PAT_ANY || o->pattern == TD_PAT_MATCH))
            return cli_usage_error("acl", "an ACL's pattern type is literal, prefixed or "
                                          "wildcard (any and match are for filters)");
    }
    if (!add && !list && !o->nprincipals && !o->nhosts && !o->nops && !o->nres)
        return cli_usage_error("acl", "acl remove needs at least one filter (a principal, "
                                      "host, operation or resource)");
    return EXIT_OK;
}

int cmd_acl(int argc, char **argv)
{
    enum {
        OPT_ALLOW = 256,
        OPT_DENY,
        OPT_PRINCIPAL,
        OPT_HOST,
        OPT_OP,
        OPT_TOPIC,
        OPT_GROUP,
        OPT_CLUSTER,
        OPT_TXN,
        OPT_PATTERN,
        OPT_JSON
    };
    static const struct option longopts[] = {
        {"data", required_argument, NULL, 'd'},
        {"server", required_argument, NULL, 's'},
        {"allow-principal", required_argument, NULL, OPT_ALLOW},
        {"deny-principal", required_argument, NULL, OPT_DENY},
        {"principal", required_argument, NULL, OPT_PRINCIPAL},
        {"host", required_argument, NULL, OPT_HOST},
        {"allow-host", required_argument, NULL, OPT_HOST},
        {"deny-host", required_argument, NULL, OPT_HOST},
        {"operation", required_argument, NULL, OPT_OP},
        {"topic", required_argument, NULL, OPT_TOPIC},
        {"group", required_argument, NULL, OPT_GROUP},
        {"cluster", no_argument, NULL, OPT_CLUSTER},
        {"transactional-id", required_argument, NULL, OPT_TXN},
        {"resource-pattern-type", required_argument, NULL, OPT_PATTERN},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    acl_opts o;
    memset(&o, 0, sizeof(o));
    int c, code = EXIT_OK;
    optind = 1;
    opterr = 0;
    while (code == EXIT_OK && (c = getopt_long(argc, argv, "d:s:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            o.data = optarg;
            break;
        case 's':
            o.server = optarg;
            break;
        case OPT_ALLOW:
        case OPT_DENY:
        case OPT_PRINCIPAL:
            code = add_principal(&o, optarg,
                                 c == OPT_ALLOW  ? TD_PERM_ALLOW
                                 : c == OPT_DENY ? TD_PERM_DENY
                                                 : TD_PERM_ANY);
            break;
        case OPT_HOST:
            if ((code = add_item(&o.nhosts, "hosts")) == EXIT_OK)
                o.hosts[o.nhosts - 1] = optarg;
            break;
        case OPT_OP: {
            td_acl_op op = td_acl_op_parse(optarg);
            if (!op || op == TD_OP_ANY)
                return cli_usage_error("acl", "unknown operation '%s'", optarg);
            if ((code = add_item(&o.nops, "operations")) == EXIT_OK)
                o.ops[o.nops - 1] = op;
            break;
        }
        case OPT_TOPIC:
            code = add_resource(&o, TD_RES_TOPIC, optarg);
            break;
        case OPT_GROUP:
            code = add_resource(&o, TD_RES_GROUP, optarg);
            break;
        case OPT_TXN:
            code = add_resource(&o, TD_RES_TRANSACTIONAL_ID, optarg);
            break;
        case OPT_CLUSTER:
            code = add_resource(&o, TD_RES_CLUSTER, TD_CLUSTER_NAME);
            break;
        case OPT_PATTERN:
            if (!(o.pattern = td_acl_pattern_parse(optarg)))
                return cli_usage_error("acl",
                                       "--resource-pattern-type takes literal, prefixed, "
                                       "wildcard, any or match, not '%s'",
                                       optarg);
            o.have_pattern = true;
            break;
        case OPT_JSON:
            o.json = true;
            break;
        case 'h':
            fputs(acl_usage, stdout);
            return EXIT_OK;
        default:
            return cli_usage_error("acl", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (code != EXIT_OK)
        return code;
    if (optind >= argc)
        return cli_usage_error("acl", "acl needs an action: add, remove or list");
    const char *action = argv[optind];
    if (argc - optind > 1)
        return cli_usage_error("acl", "unexpected argument '%s'", argv[optind + 1]);
    if ((code = check_opts(action, &o)) != EXIT_OK)
        return code;
    const char *server = cli_server(o.server);
    if (server)
        return acl_remote(action, &o, server);
    return acl_local(action, &o);
}
