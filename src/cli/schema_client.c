/*
 * schema_client.c: requests to the schema registry, locally or remotely (schema_client.h), and
 * the schemas they name, parsed with their references.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/schema_client.h"

#define REGISTRY_CONTENT_TYPE "application/vnd.schemaregistry.v1+json"
/* At most this many references, all levels together, for one schema: a bound on the requests a
 * schema can make the command send (a registry's references cannot loop, but may be many). */
#define MAX_DEPS 1000

const char *cli_registry_prefix(const char *flag, char *buf, size_t cap)
{
    const char *p = flag;
    if (!p)
        p = getenv("TIDINGS_REGISTRY_PREFIX");
    if (!p)
        p = CLI_REGISTRY_PREFIX;
    if (*p && *p != '/') {
        fprintf(stderr,
                "tidings: the registry's prefix is a path like /registry (or '' for the "
                "root), not '%s'\n",
                p);
        return NULL;
    }
    snprintf(buf, cap, "%s", p);
    size_t n = strlen(buf);
    while (n > 0 && buf[n - 1] == '/')
        buf[--n] = 0;
    return buf;
}

char *cli_registry_segment(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *out = malloc(3 * n + 1), *o = out;
    if (!out)
        return NULL;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
            *c == '-' || *c == '.' || *c == '_' || *c == '~') {
            *o++ = (char)*c;
        } else {
            *o++ = '%';
            *o++ = hex[*c >> 4];
            *o++ = hex[*c & 15];
        }
    }
    *o = 0;
    return out;
}

/* The answer's JSON, or NULL when it is empty or not JSON (an error page of a proxy). */
static json_t *parse_answer(const char *text, size_t len)
{
    return len ? json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL) : NULL;
}

int cli_registry_call(cli_registry *g, const char *method, const char *path, const json_t *body,
                      long *status, json_t **answer, const char *what)
{
    *answer = NULL;
    *status = 0;
    char *payload = body ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (body && !payload) {
        fprintf(stderr, "tidings: %s: out of memory\n", what);
        return EXIT_RUNTIME;
    }
    size_t plen = payload ? strlen(payload) : 0;
    char *text = NULL;
    size_t len = 0;
    int code = EXIT_OK;
    if (g->r) {
        size_t n = strlen(g->prefix) + strlen(path) + 1;
        char *full = malloc(n);
        if (!full) {
            free(payload);
            fprintf(stderr, "tidings: %s: out of memory\n", what);
            return EXIT_RUNTIME;
        }
        snprintf(full, n, "%s%s", g->prefix, path);
        code = cli_remote_raw(g->r, method, full, REGISTRY_CONTENT_TYPE, payload, plen, status,
                              &text, &len, what);
        free(full);
    } else {
        int st = 0;
        int rc = td_schema_request(g->e, method, path, payload, plen, &st, &text, &len);
        if (rc)
            code = cli_fail(what, rc);
        *status = st;
    }
    free(payload);
    if (code == EXIT_OK) {
        *answer = parse_answer(text ? text : "", text ? len : 0);
        /* An error answer keeps its text for the message when it is not JSON. */
        if (!*answer && (*status < 200 || *status > 299) && text && len)
            *answer = json_stringn_nocheck(text, len);
    }
    free(text);
    return code;
}

int cli_registry_ok(cli_registry *g, const char *method, const char *path, const json_t *body,
                    json_t **answer, const char *what)
{
    long status;
    json_t *a = NULL;
    int code = cli_registry_call(g, method, path, body, &status, &a, what);
    if (code)
        return code;
    if (status >= 200 && status <= 299) {
        if (answer)
            *answer = a;
        else
            json_decref(a);
        return EXIT_OK;
    }
    code = cli_registry_error(status, a, what);
    json_decref(a);
    if (answer)
        *answer = NULL;
    return code;
}

int cli_registry_error(long status, const json_t *answer, const char *what)
{
    char *text = json_is_string(answer) ? strdup(json_string_value(answer))
                 : answer               ? json_dumps(answer, JSON_COMPACT)
                                        : NULL;
    int code = cli_answer_error(status, text ? text : "", text ? strlen(text) : 0, what);
    free(text);
    return code;
}

/* ---------------------------------------------------------------------------------------------
 * Schemas with their references
 */
typedef struct deps {
    schema_dep *v;
    char **subjects; /* "subject\nversion" of each, to fetch each once */
    size_t n, cap;
} deps;

static void deps_free(deps *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free((char *)d->v[i].name);
        free((char *)d->v[i].text);
        free(d->subjects[i]);
    }
    free(d->v);
    free(d->subjects);
}

static bool deps_seen(const deps *d, const char *key)
{
    for (size_t i = 0; i < d->n; i++)
        if (!strcmp(d->subjects[i], key))
            return true;
    return false;
}

/* Appends the references of `refs` (the registry's JSON array of {name, subject, version}) to d,
 * each after its own references, as schema_parse wants them. */
static int collect(cli_registry *g, const json_t *refs, deps *d, int depth, const char *what)
{
    size_t i;
    json_t *ref;
    json_array_foreach(refs, i, ref)
    {
        const char *name = json_string_value(json_object_get(ref, "name"));
        const char *subject = json_string_value(json_object_get(ref, "subject"));
        json_int_t version = json_integer_value(json_object_get(ref, "version"));
        if (!name || !subject) {
            fprintf(stderr,
                    "tidings: %s: the registry answered a reference without a name or "
                    "subject\n",
                    what);
            return EXIT_RUNTIME;
        }
        char key[1024];
        snprintf(key, sizeof(key), "%s\n%lld", subject, (long long)version);
        if (deps_seen(d, key))
            continue;
        if (depth >= SCHEMA_MAX_DEPTH || d->n >= MAX_DEPS) {
            fprintf(stderr,
                    "tidings: %s: the schema's references go deeper than %d or number "
                    "more than %d\n",
                    what, SCHEMA_MAX_DEPTH, MAX_DEPS);
            return EXIT_RUNTIME;
        }
        char *seg = cli_registry_segment(subject), path[4096];
        if (!seg)
            return EXIT_RUNTIME;
        snprintf(path, sizeof(path), "/subjects/%s/versions/%lld", seg, (long long)version);
        free(seg);
        json_t *a = NULL;
        int code = cli_registry_ok(g, "GET", path, NULL, &a, what);
        if (code == EXIT_OK)
            code = collect(g, json_object_get(a, "references"), d, depth + 1, what);
        const char *text = json_string_value(json_object_get(a, "schema"));
        if (code == EXIT_OK && !text) {
            fprintf(stderr, "tidings: %s: the registry answered no text for %s version %lld\n",
                    what, subject, (long long)version);
            code = EXIT_RUNTIME;
        }
        if (code == EXIT_OK && d->n == d->cap) {
            size_t cap = d->cap ? 2 * d->cap : 8;
            schema_dep *v = realloc(d->v, cap * sizeof(*v));
            if (v)
                d->v = v;
            char **s = v ? realloc(d->subjects, cap * sizeof(*s)) : NULL;
            if (s)
                d->subjects = s;
            if (!v || !s)
                code = EXIT_RUNTIME;
            else
                d->cap = cap;
        }
        if (code == EXIT_OK) {
            size_t len = json_string_length(json_object_get(a, "schema"));
            char *t = malloc(len + 1);
            if (t) {
                memcpy(t, text, len);
                t[len] = 0;
            }
            d->v[d->n] = (schema_dep){strdup(name), t, len};
            d->subjects[d->n] = strdup(key);
            d->n++;
        }
        json_decref(a);
        if (code)
            return code;
    }
    return EXIT_OK;
}

/* Parses the schema of a registry answer ({"schema", "schemaType", "references"}). */
static int parse_answer_schema(cli_registry *g, const json_t *a, schema **out, const char *what)
{
    const char *type_name = json_string_value(json_object_get(a, "schemaType"));
    const json_t *text = json_object_get(a, "schema");
    schema_type t = SCHEMA_AVRO; /* Confluent leaves the type out for Avro */
    if ((type_name && !schema_type_parse(type_name, &t)) || !json_is_string(text)) {
        fprintf(stderr, "tidings: %s: the registry answered a schema of unknown type '%s'\n", what,
                type_name ? type_name : "?");
        return EXIT_RUNTIME;
    }
    deps d = {0};
    int code = collect(g, json_object_get(a, "references"), &d, 0, what);
    if (code == EXIT_OK) {
        schema_error err;
        if (schema_parse(t, json_string_value(text), json_string_length(text), d.v, d.n, out,
                         &err) != 0) {
            fprintf(stderr, "tidings: %s: the registered schema does not parse here: %s%s%s\n",
                    what, err.path[0] ? err.path : "", err.path[0] ? ": " : "", err.message);
            code = EXIT_RUNTIME;
        }
    }
    deps_free(&d);
    return code;
}

int cli_registry_fetch(cli_registry *g, const char *subject, int32_t version, int32_t id,
                       schema **out, int32_t *id_out, const char *what)
{
    char path[4096];
    *out = NULL;
    if (subject) {
        char *seg = cli_registry_segment(subject), v[16] = "latest";
        if (!seg)
            return EXIT_RUNTIME;
        if (version >= 0)
            snprintf(v, sizeof(v), "%d", (int)version);
        snprintf(path, sizeof(path), "/subjects/%s/versions/%s", seg, v);
        free(seg);
    } else {
        snprintf(path, sizeof(path), "/schemas/ids/%d", (int)id);
    }
    json_t *a = NULL;
    int code = cli_registry_ok(g, "GET", path, NULL, &a, what);
    if (code == EXIT_OK && subject) {
        json_t *j = json_object_get(a, "id");
        if (!json_is_integer(j)) {
            fprintf(stderr, "tidings: %s: the registry's answer has no schema id\n", what);
            code = EXIT_RUNTIME;
        }
        id = (int32_t)json_integer_value(j);
    }
    if (code == EXIT_OK)
        code = parse_answer_schema(g, a, out, what);
    if (code == EXIT_OK && id_out)
        *id_out = id;
    json_decref(a);
    return code;
}

const schema *cli_registry_by_id(cli_registry *g, int32_t id)
{
    for (size_t i = 0; i < g->ncache; i++)
        if (g->cache[i].id == id)
            return g->cache[i].s;
    if (g->ncache == g->capcache) {
        size_t cap = g->capcache ? 2 * g->capcache : 8;
        cli_schema_entry *c = realloc(g->cache, cap * sizeof(*c));
        if (!c)
            return NULL;
        g->cache = c;
        g->capcache = cap;
    }
    /* Unknown IDs are kept too (s NULL), so that each is asked once. The registry's message
     * for one (a value that only looks like the wire format) is not shown: the value is shown
     * as it is stored instead. */
    char path[64];
    snprintf(path, sizeof(path), "/schemas/ids/%d", (int)id);
    long status;
    json_t *a = NULL;
    schema *s = NULL;
    if (cli_registry_call(g, "GET", path, NULL, &status, &a, "fetching a schema") == EXIT_OK &&
        status == 200 && parse_answer_schema(g, a, &s, "fetching a schema") != EXIT_OK)
        s = NULL;
    json_decref(a);
    g->cache[g->ncache++] = (cli_schema_entry){id, s};
    return s;
}

void cli_registry_free(cli_registry *g)
{
    for (size_t i = 0; i < g->ncache; i++)
        schema_free(g->cache[i].s);
    free(g->cache);
    g->cache = NULL;
    g->ncache = g->capcache = 0;
}
