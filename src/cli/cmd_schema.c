/*
 * cmd_schema.c: tidings schema register|list|show|check|delete|config: the schema registry
 * (docs/schemas.md), locally on a data directory or through a running broker's REST API at
 * its registry prefix. Both modes send the same requests (schema_client.h) and print the same
 * answers.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/command.h"
#include "cli/schema_client.h"

static const char schema_usage[] =
    "usage: tidings schema <action> [options]\n"
    "\n"
    "  register SUBJECT FILE|- [--type AVRO|JSON|PROTOBUF] [--ref NAME=SUBJECT:VERSION ...]\n"
    "  list [SUBJECT] [--deleted]         the subjects, or a subject's versions\n"
    "  show SUBJECT [VERSION|latest] [--deleted]\n"
    "  show --id ID\n"
    "  check SUBJECT FILE|- [--version V|latest|all] [--type T] [--ref ...]\n"
    "                                     whether FILE could be registered under SUBJECT:\n"
    "                                     exit 0 when compatible, 1 (with the reasons) if not\n"
    "  delete SUBJECT [VERSION|latest] [--permanent]\n"
    "  config [SUBJECT] [LEVEL]           the compatibility level: global, or a subject's;\n"
    "                                     with LEVEL, set it (BACKWARD, BACKWARD_TRANSITIVE,\n"
    "                                     FORWARD, FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE,\n"
    "                                     NONE; one LEVEL alone sets the global level)\n"
    "\n"
    "options:\n"
    "  -d, --data DIR            data directory (default: $TIDINGS_DATA, else ./data)\n"
    "  -s, --server URL          a running broker's HTTP address (default: $TIDINGS_SERVER;\n"
    "                            without either, the data directory)\n"
    "      --registry-prefix P   the registry's path on the broker (default:\n"
    "                            $TIDINGS_REGISTRY_PREFIX, else /registry; '' for the root)\n"
    "  -t, --type TYPE           AVRO, JSON or PROTOBUF (default: from FILE's name: .avsc\n"
    "                            AVRO, .json JSON, .proto PROTOBUF; else AVRO)\n"
    "  -r, --ref NAME=SUBJECT:VERSION\n"
    "                            a reference of the schema (repeatable): the name the schema\n"
    "                            uses for it, and the registered subject and version\n"
    "      --version V           check: the version to check against (default latest; all:\n"
    "                            every version the subject's compatibility level names)\n"
    "      --id ID               show: the schema with this ID\n"
    "      --deleted             list, show: soft-deleted ones too\n"
    "      --permanent           delete: hard delete (after a soft delete)\n"
    "      --json                the registry's JSON answer\n"
    "  -h, --help                this help\n";

enum { OPT_DELETED = 1000, OPT_PERMANENT, OPT_ID, OPT_VERSION, OPT_PREFIX };

typedef struct schema_opts {
    const char *type, *version, *prefix;
    json_t *refs; /* the --ref list as the registry's JSON */
    bool deleted, permanent, have_id;
    int64_t id;
} schema_opts;

static const char *const levels[] = {
    "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE",
    "FULL",     "FULL_TRANSITIVE",     "NONE",    NULL};

static bool is_level(const char *s)
{
    for (size_t i = 0; levels[i]; i++)
        if (!strcmp(levels[i], s))
            return true;
    return false;
}

/* A version argument: a positive number or "latest" (-1). */
static bool parse_version(const char *s, int64_t *v)
{
    if (!strcmp(s, "latest")) {
        *v = -1;
        return true;
    }
    return cli_parse_i64(s, v) && *v >= 1 && *v <= INT32_MAX;
}

/* --ref NAME=SUBJECT:VERSION: the subject is what lies between the first '=' and the last ':'. */
static int add_ref(schema_opts *o, const char *arg)
{
    const char *eq = strchr(arg, '='), *colon = strrchr(arg, ':');
    int64_t v;
    if (!eq || eq == arg || !colon || colon < eq + 2 || !parse_version(colon + 1, &v) || v < 0)
        return cli_usage_error("schema", "--ref takes NAME=SUBJECT:VERSION, not '%s'", arg);
    json_t *ref = json_object();
    json_object_set_new(ref, "name", json_stringn(arg, (size_t)(eq - arg)));
    json_object_set_new(ref, "subject", json_stringn(eq + 1, (size_t)(colon - eq - 1)));
    json_object_set_new(ref, "version", json_integer(v));
    if (!json_object_get(ref, "name") || !json_object_get(ref, "subject")) {
        json_decref(ref);
        return cli_usage_error("schema", "--ref: '%s' is not UTF-8", arg);
    }
    json_array_append_new(o->refs, ref);
    return EXIT_OK;
}

static int schema_option(void *opts, int c, const char *arg)
{
    schema_opts *o = opts;
    switch (c) {
    case 't': {
        schema_type t;
        if (!schema_type_parse(arg, &t))
            return cli_usage_error("schema", "--type is AVRO, JSON or PROTOBUF, not '%s'", arg);
        o->type = arg;
        return EXIT_OK;
    }
    case 'r':
        return add_ref(o, arg);
    case OPT_DELETED:
        o->deleted = true;
        return EXIT_OK;
    case OPT_PERMANENT:
        o->permanent = true;
        return EXIT_OK;
    case OPT_ID:
        if (!cli_parse_i64(arg, &o->id) || o->id < 0 || o->id > INT32_MAX)
            return cli_usage_error("schema", "--id takes a schema ID, not '%s'", arg);
        o->have_id = true;
        return EXIT_OK;
    case OPT_VERSION: {
        int64_t v;
        if (strcmp(arg, "all") != 0 && !parse_version(arg, &v))
            return cli_usage_error("schema",
                                   "--version takes a version, latest or all, not "
                                   "'%s'",
                                   arg);
        o->version = arg;
        return EXIT_OK;
    }
    default: /* OPT_PREFIX */
        o->prefix = arg;
        return EXIT_OK;
    }
}

static const char *const schema_actions[] = {"register", "list",   "show", "check",
                                             "delete",   "config", NULL};
static const struct option schema_longopts[] = {
    {"type", required_argument, NULL, 't'},
    {"ref", required_argument, NULL, 'r'},
    {"deleted", no_argument, NULL, OPT_DELETED},
    {"permanent", no_argument, NULL, OPT_PERMANENT},
    {"id", required_argument, NULL, OPT_ID},
    {"version", required_argument, NULL, OPT_VERSION},
    {"registry-prefix", required_argument, NULL, OPT_PREFIX},
    {NULL, 0, NULL, 0}};
static const cli_command schema_command = {"schema", schema_usage,    schema_actions,
                                           "t:r:",   schema_longopts, schema_option};

/* ---------------------------------------------------------------------------------------------
 * The schema a command sends (register, check)
 */
static const char *type_of(const schema_opts *o, const char *file)
{
    if (o->type)
        return o->type;
    const char *dot = strrchr(file, '.');
    if (dot && !strcmp(dot, ".json"))
        return "JSON";
    if (dot && !strcmp(dot, ".proto"))
        return "PROTOBUF";
    return "AVRO"; /* .avsc, standard input, any other name: Confluent's default */
}

/* Reads FILE (or standard input for "-"), at most SCHEMA_MAX_TEXT bytes, into the body the
 * registry takes: {"schema", "schemaType", "references"}. */
static int schema_body(const schema_opts *o, const char *file, const char *what, json_t **out)
{
    FILE *f = strcmp(file, "-") ? fopen(file, "r") : stdin;
    if (!f) {
        fprintf(stderr, "tidings: %s: cannot open %s: %s\n", what, file, strerror(errno));
        return EXIT_RUNTIME;
    }
    size_t cap = 1 << 16, n = 0;
    char *text = malloc(cap);
    while (text) {
        if (n == cap) {
            if (cap > SCHEMA_MAX_TEXT)
                break;
            char *t = realloc(text, 2 * cap);
            if (!t) {
                free(text);
                text = NULL;
                break;
            }
            text = t;
            cap *= 2;
        }
        size_t k = fread(text + n, 1, cap - n, f);
        n += k;
        if (k == 0)
            break;
    }
    bool bad = f != stdin ? ferror(f) : ferror(stdin);
    if (f != stdin)
        fclose(f);
    int code = EXIT_OK;
    json_t *t = NULL;
    if (!text || bad) {
        fprintf(stderr, "tidings: %s: cannot read %s%s\n", what, file,
                text ? "" : ": out of memory");
        code = EXIT_RUNTIME;
    } else if (n > SCHEMA_MAX_TEXT) {
        fprintf(stderr, "tidings: %s: %s has more than %u bytes, the largest schema\n", what, file,
                SCHEMA_MAX_TEXT);
        code = EXIT_USAGE;
    } else if (!(t = json_stringn(text, n))) {
        fprintf(stderr, "tidings: %s: %s is not UTF-8 text\n", what, file);
        code = EXIT_USAGE;
    }
    free(text);
    if (code)
        return code;
    *out = json_object();
    json_object_set_new(*out, "schema", t);
    json_object_set_new(*out, "schemaType", json_string(type_of(o, file)));
    if (json_array_size(o->refs))
        json_object_set(*out, "references", o->refs);
    return EXIT_OK;
}

/* ---------------------------------------------------------------------------------------------
 * The actions. Each prints its answer, the registry's JSON with --json.
 */
typedef struct ctx {
    cli_registry *g;
    const schema_opts *o;
    bool json;
    char **args;
    int nargs;
} ctx;

static char *subject_path(const char *fmt_before, const char *subject, const char *after)
{
    char *seg = cli_registry_segment(subject);
    if (!seg)
        return NULL;
    size_t n = strlen(fmt_before) + strlen(seg) + strlen(after) + 1;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s%s%s", fmt_before, seg, after);
    free(seg);
    return p;
}

static int do_register(ctx *c)
{
    const char *what = "registering schema", *subject = c->args[0];
    json_t *body = NULL, *a = NULL, *found = NULL;
    int code = schema_body(c->o, c->args[1], what, &body);
    char *path = code ? NULL : subject_path("/subjects/", subject, "/versions");
    if (code == EXIT_OK && !path)
        code = EXIT_RUNTIME;
    if (code == EXIT_OK)
        code = cli_registry_ok(c->g, "POST", path, body, &a, what);
    free(path);
    /* The answer has the ID; the version is what the subject holds it as (a lookup). */
    path = code ? NULL : subject_path("/subjects/", subject, "");
    if (path && cli_registry_ok(c->g, "POST", path, body, &found, what) != EXIT_OK)
        found = NULL;
    free(path);
    if (code == EXIT_OK) {
        json_t *out = json_pack("{s:s,s:O}", "subject", subject, "id",
                                json_object_get(a, "id") ? json_object_get(a, "id") : json_null());
        json_t *v = json_object_get(found, "version");
        json_object_set(out, "version", v ? v : json_null());
        if (c->json)
            cli_json_print(out);
        else if (v)
            printf("registered %s version %" PRId64 ": schema id %" PRId64 "\n", subject,
                   (int64_t)json_integer_value(v), cli_json_int(a, "id"));
        else
            printf("registered %s: schema id %" PRId64 "\n", subject, cli_json_int(a, "id"));
        json_decref(out);
    }
    json_decref(found);
    json_decref(a);
    json_decref(body);
    return code;
}

/* `list` without a subject: the subjects, with their latest version's ID and type. */
static int list_subjects(ctx *c)
{
    const char *what = "listing subjects";
    json_t *names = NULL, *live = NULL, *latest = NULL;
    int code = cli_registry_ok(c->g, "GET", c->o->deleted ? "/subjects?deleted=true" : "/subjects",
                               NULL, &names, what);
    if (code || c->json) {
        if (code == EXIT_OK)
            cli_json_print(names);
        json_decref(names);
        return code;
    }
    /* The details are a convenience: without them the names are still printed. */
    if (cli_registry_ok(c->g, "GET",
                        c->o->deleted ? "/schemas?latestOnly=true&deleted=true"
                                      : "/schemas?latestOnly=true",
                        NULL, &latest, what) != EXIT_OK)
        latest = NULL;
    if (c->o->deleted && cli_registry_ok(c->g, "GET", "/subjects", NULL, &live, what) != EXIT_OK)
        live = NULL;
    printf("%-40s %8s %8s  %s\n", "SUBJECT", "VERSION", "ID", "TYPE");
    size_t i, k;
    json_t *name, *s;
    json_array_foreach(names, i, name)
    {
        const char *n = json_string_value(name);
        const json_t *found = NULL;
        json_array_foreach(latest, k, s) if (!found && n && !strcmp(cli_json_str(s, "subject"), n))
            found = s;
        bool deleted = false;
        if (live) {
            deleted = true;
            json_array_foreach(live, k, s) if (json_is_string(s) && n &&
                                               !strcmp(json_string_value(s), n)) deleted = false;
        }
        char version[24] = "-", id[24] = "-";
        if (found) {
            snprintf(version, sizeof(version), "%" PRId64, cli_json_int(found, "version"));
            snprintf(id, sizeof(id), "%" PRId64, cli_json_int(found, "id"));
        }
        const char *type = json_string_value(json_object_get(found, "schemaType"));
        printf("%-40s %8s %8s  %s%s\n", n ? n : "?", version, id,
               found ? (type ? type : "AVRO") : "-", deleted ? "  (deleted)" : "");
    }
    json_decref(names);
    json_decref(latest);
    json_decref(live);
    return EXIT_OK;
}

/* `list SUBJECT`: its versions, with each one's ID and type. */
static int list_versions(ctx *c)
{
    const char *what = "listing versions", *subject = c->args[0];
    char *path =
        subject_path("/subjects/", subject, c->o->deleted ? "/versions?deleted=true" : "/versions");
    json_t *versions = NULL, *live = NULL;
    int code = path ? cli_registry_ok(c->g, "GET", path, NULL, &versions, what) : EXIT_RUNTIME;
    free(path);
    if (code || c->json) {
        if (code == EXIT_OK)
            cli_json_print(versions);
        json_decref(versions);
        return code;
    }
    path = c->o->deleted ? subject_path("/subjects/", subject, "/versions") : NULL;
    if (path && cli_registry_ok(c->g, "GET", path, NULL, &live, what) != EXIT_OK)
        live = NULL;
    free(path);
    printf("%8s %8s  %s\n", "VERSION", "ID", "TYPE");
    size_t i, k;
    json_t *v, *l;
    json_array_foreach(versions, i, v)
    {
        char after[64];
        snprintf(after, sizeof(after), "/versions/%" PRId64 "?deleted=true",
                 (int64_t)json_integer_value(v));
        json_t *one = NULL;
        path = subject_path("/subjects/", subject, after);
        if (!path || cli_registry_ok(c->g, "GET", path, NULL, &one, what) != EXIT_OK)
            one = NULL;
        free(path);
        bool deleted = false;
        if (live) {
            deleted = true;
            json_array_foreach(live, k, l) if (json_integer_value(l) == json_integer_value(v))
                deleted = false;
        }
        const char *type = json_string_value(json_object_get(one, "schemaType"));
        char id[24] = "-";
        if (one)
            snprintf(id, sizeof(id), "%" PRId64, cli_json_int(one, "id"));
        printf("%8" PRId64 " %8s  %s%s\n", (int64_t)json_integer_value(v), id,
               one ? (type ? type : "AVRO") : "-", deleted ? "  (deleted)" : "");
        json_decref(one);
    }
    json_decref(versions);
    json_decref(live);
    return EXIT_OK;
}

/* The schema's text for reading: JSON (Avro, JSON Schema) indented, Protobuf as it is. */
static void print_schema_text(const json_t *a)
{
    const char *text = json_string_value(json_object_get(a, "schema"));
    if (!text)
        return;
    json_t *j =
        json_loadb(text, json_string_length(json_object_get(a, "schema")), JSON_DECODE_ANY, NULL);
    char *pretty = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY) : NULL;
    fputs(pretty ? pretty : text, stdout);
    fputc('\n', stdout);
    free(pretty);
    json_decref(j);
}

static int do_show(ctx *c)
{
    const char *what = "showing schema";
    char *path;
    if (c->o->have_id) {
        char p[64];
        snprintf(p, sizeof(p), "/schemas/ids/%" PRId64, c->o->id);
        path = strdup(p);
    } else {
        int64_t v = -1;
        char after[64];
        snprintf(after, sizeof(after), "/versions/%s%s",
                 c->nargs > 1 && parse_version(c->args[1], &v) && v > 0 ? c->args[1] : "latest",
                 c->o->deleted ? "?deleted=true" : "");
        path = subject_path("/subjects/", c->args[0], after);
    }
    json_t *a = NULL, *uses = NULL;
    int code = path ? cli_registry_ok(c->g, "GET", path, NULL, &a, what) : EXIT_RUNTIME;
    free(path);
    if (code || c->json) {
        if (code == EXIT_OK)
            cli_json_print(a);
        json_decref(a);
        return code;
    }
    const char *type = json_string_value(json_object_get(a, "schemaType"));
    if (c->o->have_id) {
        char p[80];
        snprintf(p, sizeof(p), "/schemas/ids/%" PRId64 "/versions", c->o->id);
        if (cli_registry_ok(c->g, "GET", p, NULL, &uses, what) != EXIT_OK)
            uses = NULL;
        printf("id          %" PRId64 "\n", c->o->id);
        size_t i;
        json_t *u;
        json_array_foreach(uses, i, u)
            printf("%-11s %s version %" PRId64 "\n", i == 0 ? "subjects" : "",
                   cli_json_str(u, "subject"), cli_json_int(u, "version"));
    } else {
        printf("subject     %s\nversion     %" PRId64 "\nid          %" PRId64 "\n",
               cli_json_str(a, "subject"), cli_json_int(a, "version"), cli_json_int(a, "id"));
    }
    printf("type        %s\n", type ? type : "AVRO");
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(a, "references"), i, r)
        printf("%-11s %s = %s version %" PRId64 "\n", i == 0 ? "references" : "",
               cli_json_str(r, "name"), cli_json_str(r, "subject"), cli_json_int(r, "version"));
    print_schema_text(a);
    json_decref(uses);
    json_decref(a);
    return EXIT_OK;
}

static int do_check(ctx *c)
{
    const char *what = "checking schema", *v = c->o->version ? c->o->version : "latest";
    json_t *body = NULL, *a = NULL;
    int code = schema_body(c->o, c->args[1], what, &body);
    if (code)
        return code;
    char after[64];
    if (!strcmp(v, "all"))
        snprintf(after, sizeof(after), "/versions?verbose=true");
    else
        snprintf(after, sizeof(after), "/versions/%s?verbose=true", v);
    char *path = subject_path("/compatibility/subjects/", c->args[0], after);
    code = path ? cli_registry_ok(c->g, "POST", path, body, &a, what) : EXIT_RUNTIME;
    free(path);
    json_decref(body);
    if (code)
        return code;
    json_t *ok = json_object_get(a, "is_compatible");
    if (!json_is_boolean(ok)) {
        fprintf(stderr, "tidings: %s: the registry's answer has no is_compatible\n", what);
        json_decref(a);
        return EXIT_RUNTIME;
    }
    if (c->json) {
        cli_json_print(a);
    } else {
        printf("%s\n", json_is_true(ok) ? "compatible" : "incompatible");
        size_t i;
        json_t *m;
        json_array_foreach(json_object_get(a, "messages"), i, m) if (json_is_string(m))
            printf("  %s\n", json_string_value(m));
    }
    code = json_is_true(ok) ? EXIT_OK : EXIT_RUNTIME;
    json_decref(a);
    return code;
}

static int do_delete(ctx *c)
{
    const char *what = "deleting schema", *subject = c->args[0];
    const char *q = c->o->permanent ? "?permanent=true" : "";
    char after[64];
    if (c->nargs > 1)
        snprintf(after, sizeof(after), "/versions/%s%s", c->args[1], q);
    else
        snprintf(after, sizeof(after), "%s", q);
    char *path = subject_path("/subjects/", subject, after);
    json_t *a = NULL;
    int code = path ? cli_registry_ok(c->g, "DELETE", path, NULL, &a, what) : EXIT_RUNTIME;
    free(path);
    if (code == EXIT_OK && c->json) {
        cli_json_print(a);
    } else if (code == EXIT_OK) {
        const char *how = c->o->permanent ? " permanently" : "";
        if (json_is_array(a)) {
            printf("deleted %s%s: version%s", subject, how, json_array_size(a) == 1 ? "" : "s");
            size_t i;
            json_t *v;
            json_array_foreach(a, i, v)
                printf("%s %" PRId64, i ? "," : "", (int64_t)json_integer_value(v));
            printf("\n");
        } else {
            printf("deleted %s version %" PRId64 "%s\n", subject, (int64_t)json_integer_value(a),
                   how);
        }
    }
    json_decref(a);
    return code;
}

static int do_config(ctx *c)
{
    const char *subject = NULL, *level = NULL;
    if (c->nargs == 1 && is_level(c->args[0]))
        level = c->args[0];
    else if (c->nargs >= 1)
        subject = c->args[0];
    if (c->nargs == 2)
        level = c->args[1];
    char *path = subject ? subject_path("/config/", subject, "") : strdup("/config");
    if (!path)
        return EXIT_RUNTIME;
    json_t *a = NULL;
    int code;
    bool global = !subject;
    if (level) {
        json_t *body = json_pack("{s:s}", "compatibility", level);
        code = cli_registry_ok(c->g, "PUT", path, body, &a, "setting the compatibility level");
        json_decref(body);
    } else {
        /* A subject without its own level has the global one: asked for separately, so that
         * the output says which it is. */
        long status = 0;
        code = cli_registry_call(c->g, "GET", path, NULL, &status, &a,
                                 "reading the compatibility level");
        if (code == EXIT_OK && subject && status == 404 &&
            json_integer_value(json_object_get(a, "error_code")) == 40408) {
            json_decref(a);
            a = NULL;
            global = true;
            code = cli_registry_ok(c->g, "GET", "/config", NULL, &a,
                                   "reading the compatibility level");
        } else if (code == EXIT_OK && (status < 200 || status > 299)) {
            code = cli_registry_error(status, a, "reading the compatibility level");
        }
    }
    free(path);
    if (code == EXIT_OK && c->json) {
        cli_json_print(a);
    } else if (code == EXIT_OK) {
        const char *l =
            json_string_value(json_object_get(a, level ? "compatibility" : "compatibilityLevel"));
        if (subject)
            printf("%s: %s%s\n", subject, l ? l : "?", global ? " (the global level)" : "");
        else
            printf("global: %s\n", l ? l : "?");
    }
    json_decref(a);
    return code;
}

/* ---------------------------------------------------------------------------------------------
 * The command
 */
static int check_args(const cli_run *run, const schema_opts *o)
{
    int min = 1, max = 1;
    if (cli_run_is(run, "register") || cli_run_is(run, "check"))
        min = max = 2;
    else if (cli_run_is(run, "list"))
        min = 0;
    else if (cli_run_is(run, "show"))
        min = o->have_id ? 0 : 1, max = o->have_id ? 0 : 2;
    else if (cli_run_is(run, "delete"))
        max = 2;
    else if (cli_run_is(run, "config"))
        min = 0, max = 2;
    if (run->nargs > max)
        return cli_usage_error("schema", "unexpected argument '%s'", run->args[max]);
    if (run->nargs < min)
        return cli_usage_error("schema", "schema %s needs %s", run->action,
                               min == 2 ? "a subject and a file (or - for standard input)"
                                        : "a subject");
    int64_t v;
    if ((cli_run_is(run, "show") || cli_run_is(run, "delete")) && run->nargs == 2 &&
        !parse_version(run->args[1], &v))
        return cli_usage_error("schema", "a version is a number from 1 or latest, not '%s'",
                               run->args[1]);
    if (cli_run_is(run, "config") && run->nargs == 2 && !is_level(run->args[1]))
        return cli_usage_error("schema",
                               "a compatibility level is one of BACKWARD, "
                               "BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, "
                               "FULL, FULL_TRANSITIVE and NONE, not '%s'",
                               run->args[1]);
    if (o->have_id && !cli_run_is(run, "show"))
        return cli_usage_error("schema", "--id applies to show");
    return EXIT_OK;
}

int cmd_schema(int argc, char **argv)
{
    schema_opts o = {.refs = json_array()};
    cli_run run;
    cli_registry g = {0};
    td_engine *e = NULL;
    int code = cli_run_parse(&schema_command, argc, argv, &o, &run);
    if (code || run.help || (code = check_args(&run, &o)) != 0)
        goto out;
    char prefix[512];
    if (!(g.prefix = cli_registry_prefix(o.prefix, prefix, sizeof(prefix)))) {
        code = EXIT_USAGE;
        goto out;
    }
    if ((code = cli_run_connect(&run)) != 0)
        goto out;
    g.r = cli_run_remote(&run);
    /* Locally, registering (or setting a level) may create the data directory, as creating a
     * topic does; the other actions need one. */
    bool writes = cli_run_is(&run, "register") ||
                  (cli_run_is(&run, "config") &&
                   (run.nargs == 2 || (run.nargs == 1 && is_level(run.args[0]))));
    if (!g.r && (code = cli_open(run.data, writes, &e)) != 0)
        goto out;
    g.e = e;
    ctx c = {&g, &o, run.json, run.args, run.nargs};
    if (cli_run_is(&run, "register"))
        code = do_register(&c);
    else if (cli_run_is(&run, "list"))
        code = run.nargs ? list_versions(&c) : list_subjects(&c);
    else if (cli_run_is(&run, "show"))
        code = do_show(&c);
    else if (cli_run_is(&run, "check"))
        code = do_check(&c);
    else if (cli_run_is(&run, "delete"))
        code = do_delete(&c);
    else
        code = do_config(&c);
    if (e)
        code = cli_close(e, code);
out:
    cli_registry_free(&g);
    cli_run_end(&run);
    json_decref(o.refs);
    return code;
}
