/*
 * registry_rest.c: Confluent Schema Registry's REST API v1 over the registry (registry.h), as
 * one function, registry_rest, that the HTTP listener (proto/http/registry.c) and the public
 * API (td_schema_request, for the command line's local mode and embedders) share: a method, a
 * path after the prefix, a query and a body in; an HTTP status and a JSON body out, in
 * Confluent's shapes and with its error body {"error_code": 40401, "message": "..."}.
 *
 * The path and query are parsed here, by hand (percent-decoding, segments, parameters): pure
 * functions over the strings, bounded by the path's length (fuzzed: tests/fuzz/registry_rest).
 * A body is parsed with jansson only after a scan bounds its structure (a registration is an
 * object of a few fields), so that its memory stays a small multiple of its bytes.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/authz.h"
#include "broker/registry_mem.h"
#include "broker/state.h"

#define MAX_SEGS 8
#define MAX_TOKENS (4 * REG_MAX_REFS + 64) /* structural tokens of a request body */

typedef struct rest_ctx {
    td_engine *e;
    const td_principal *p; /* NULL: local, every permission */
    const char *method;
    const char *query;
    const char *body;
    size_t len;
    char *seg[MAX_SEGS];
    int nseg;
    json_t *out; /* the answer (or NULL with raw) */
    char *raw;   /* a raw answer (the schema text) */
    int status;
} rest_ctx;

/* ---------------------------------------------------------------------------------------------
 * Path and query
 */
static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Percent-decodes s[0..n) into a malloc'd string; NULL for a bad escape or a NUL byte. */
char *registry_pct_decode(const char *s, size_t n, bool plus_space)
{
    char *d = malloc(n + 1), *o = d;
    if (!d)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            if (n - i < 3 || hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0) {
                free(d);
                return NULL;
            }
            c = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else if (c == '+' && plus_space) {
            c = ' ';
        }
        if (c == '\0') {
            free(d);
            return NULL;
        }
        *o++ = c;
    }
    *o = '\0';
    return d;
}

/* The first value of key in the query, decoded (malloc'd); NULL when absent; *bad on a bad
 * escape. */
static char *query_get(const char *q, const char *key, bool *bad)
{
    size_t kl = strlen(key);
    while (q && *q) {
        const char *amp = strchr(q, '&');
        size_t n = amp ? (size_t)(amp - q) : strlen(q);
        const char *eq = memchr(q, '=', n);
        size_t klen = eq ? (size_t)(eq - q) : n;
        if (klen == kl && !memcmp(q, key, kl)) {
            char *v = eq ? registry_pct_decode(eq + 1, n - klen - 1, true) : strdup("");
            if (!v)
                *bad = true;
            return v;
        }
        q = amp ? amp + 1 : NULL;
    }
    return NULL;
}

/* A boolean parameter: absent is dflt; "true"/"false" in any case (as Jersey's). */
static bool qbool(rest_ctx *c, const char *key, bool dflt)
{
    bool bad = false;
    char *v = query_get(c->query, key, &bad);
    bool out = v ? !strcasecmp(v, "true") : dflt;
    free(v);
    return out;
}

static char *qstr(rest_ctx *c, const char *key)
{
    bool bad = false;
    return query_get(c->query, key, &bad);
}

static int split(rest_ctx *c, const char *path)
{
    const char *p = path ? path : "";
    while (*p) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        const char *q = strchr(p, '/');
        size_t n = q ? (size_t)(q - p) : strlen(p);
        if (c->nseg == MAX_SEGS)
            return -1;
        if (!(c->seg[c->nseg] = registry_pct_decode(p, n, false)))
            return -1;
        c->nseg++;
        p += n;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Answers
 */
static void error(rest_ctx *c, int code, const char *msg)
{
    int status = code >= 10000 ? code / 100 : code;
    c->status = status;
    json_decref(c->out);
    c->out = json_pack("{s:i,s:s}", "error_code", code, "message", msg ? msg : "");
}

static void answer(rest_ctx *c, json_t *j)
{
    c->status = 200;
    json_decref(c->out);
    c->out = j;
}

static void not_found(rest_ctx *c)
{
    error(c, 404, "HTTP 404 Not Found");
}

static void method_not_allowed(rest_ctx *c)
{
    error(c, 405, "HTTP 405 Method Not Allowed");
}

static bool is(rest_ctx *c, const char *m)
{
    return !strcmp(c->method, m);
}

/* ---------------------------------------------------------------------------------------------
 * Authorization (docs/schemas.md#authorization): subject <t>-key and <t>-value as topic <t>,
 * other subjects and the global levels as the cluster.
 */
enum { ACT_READ, ACT_REGISTER, ACT_ALTER };

static bool may(rest_ctx *c, const char *subject, int act)
{
    if (!c->p)
        return true;
    size_t n = subject ? strlen(subject) : 0;
    size_t tl = 0;
    if (n > 4 && !strcmp(subject + n - 4, "-key"))
        tl = n - 4;
    else if (n > 6 && !strcmp(subject + n - 6, "-value"))
        tl = n - 6;
    if (tl && tl <= TD_TOPIC_NAME_MAX) {
        char topic[TD_TOPIC_NAME_MAX + 1];
        memcpy(topic, subject, tl);
        topic[tl] = '\0';
        td_acl_op op = act == ACT_READ       ? TD_OP_DESCRIBE
                       : act == ACT_REGISTER ? TD_OP_WRITE
                                             : TD_OP_ALTER_CONFIGS;
        return broker_authorize(c->e, c->p, TD_RES_TOPIC, topic, op);
    }
    td_acl_op op = act == ACT_READ ? TD_OP_DESCRIBE
                   : act == ACT_REGISTER ? TD_OP_ALTER
                                         : TD_OP_ALTER_CONFIGS;
    return broker_authorize(c->e, c->p, TD_RES_CLUSTER, TD_CLUSTER_NAME, op);
}

static bool require(rest_ctx *c, const char *subject, int act)
{
    if (may(c, subject, act))
        return true;
    char msg[1200];
    snprintf(msg, sizeof(msg), "User is denied operation %s on %s%.1000s",
             act == ACT_READ ? "Read" : act == ACT_REGISTER ? "Write" : "Alter",
             subject ? "Subject: " : "the registry's global configuration", subject ? subject : "");
    error(c, 40301, msg);
    return false;
}

/* ---------------------------------------------------------------------------------------------
 * JSON of schemas
 */
static json_t *refs_json(const registry_schema *s)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < s->nrefs; i++)
        json_array_append_new(a, json_pack("{s:s,s:s,s:i}", "name", s->refs[i].name, "subject",
                                           s->refs[i].subject, "version", s->refs[i].version));
    return a;
}

/* {"subject","version","id","schemaType" (not for AVRO),"schema","references" (if any)} */
static json_t *schema_json(const registry_schema *s, bool with_subject)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    if (with_subject) {
        json_object_set_new(o, "subject", json_string(s->subject ? s->subject : ""));
        json_object_set_new(o, "version", json_integer(s->version));
    }
    json_object_set_new(o, "id", json_integer(s->id));
    if (s->type && strcmp(s->type, "AVRO") != 0)
        json_object_set_new(o, "schemaType", json_string(s->type));
    if (s->nrefs)
        json_object_set_new(o, "references", refs_json(s));
    json_object_set_new(o, "schema", json_string(s->text ? s->text : ""));
    return o;
}

static json_t *messages_json(const char *text)
{
    json_t *a = json_array();
    const char *p = text;
    while (a && p && *p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        json_array_append_new(a, json_stringn(p, n));
        p = nl ? nl + 1 : NULL;
    }
    return a;
}

/* ---------------------------------------------------------------------------------------------
 * Bodies
 */
/* Bounds the body's structure before jansson parses it: tokens outside strings. */
static bool body_bounded(const char *b, size_t n)
{
    size_t tokens = 0;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        char ch = b[i];
        if (in_str) {
            if (ch == '\\')
                i++;
            else if (ch == '"')
                in_str = false;
        } else if (ch == '"') {
            in_str = true;
        } else if (ch == '{' || ch == '[' || ch == ',' || ch == ':') {
            if (++tokens > MAX_TOKENS)
                return false;
        }
    }
    return true;
}

static json_t *body_object(rest_ctx *c)
{
    if (!c->body || c->len == 0) {
        error(c, 400, "a JSON request body is required");
        return NULL;
    }
    if (!body_bounded(c->body, c->len)) {
        error(c, 400, "the request body has too many JSON values");
        return NULL;
    }
    json_error_t err;
    json_t *j = json_loadb(c->body, c->len, JSON_REJECT_DUPLICATES, &err);
    if (!j) {
        char msg[300];
        snprintf(msg, sizeof(msg), "Unrecognized JSON at line %d, column %d: %s", err.line,
                 err.column, err.text);
        error(c, 400, msg);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        error(c, 400, "the request body must be a JSON object");
        return NULL;
    }
    return j;
}

/* The schema of a body {"schema", "schemaType", "references", "id", "version"}: in points into
 * j; refs is malloc'd. false after answering. */
static bool read_input(rest_ctx *c, json_t *j, registry_input *in, registry_ref **refs)
{
    memset(in, 0, sizeof(*in));
    *refs = NULL;
    json_t *s = json_object_get(j, "schema"), *t = json_object_get(j, "schemaType");
    json_t *r = json_object_get(j, "references"), *id = json_object_get(j, "id");
    json_t *v = json_object_get(j, "version");
    if (!json_is_string(s)) {
        error(c, REG_EINVALID_SCHEMA, s ? "Invalid schema: 'schema' must be a string"
                                        : "Empty schema");
        return false;
    }
    in->text = json_string_value(s);
    in->len = json_string_length(s);
    struct td_registry *reg = registry_of(c->e);
    if (reg && (int64_t)in->len > reg->max_bytes) {
        char msg[200];
        snprintf(msg, sizeof(msg),
                 "Invalid schema: its %zu bytes are more than schema.registry.max.schema.bytes "
                 "(%" PRId64 ")",
                 in->len, reg->max_bytes);
        error(c, REG_EINVALID_SCHEMA, msg);
        c->status = 413;
        return false;
    }
    if (t && !json_is_null(t) && !json_is_string(t)) {
        error(c, REG_EINVALID_SCHEMA, "Invalid schema: 'schemaType' must be a string");
        return false;
    }
    in->type = json_is_string(t) ? json_string_value(t) : NULL;
    if ((id && !json_is_null(id) && !json_is_integer(id)) ||
        (v && !json_is_null(v) && !json_is_integer(v))) {
        error(c, 400, "'id' and 'version' must be integers");
        return false;
    }
    json_int_t idv = json_is_integer(id) ? json_integer_value(id) : 0;
    json_int_t vv = json_is_integer(v) ? json_integer_value(v) : 0;
    if (idv < -1 || idv > INT32_MAX || vv < -1 || vv > INT32_MAX) {
        error(c, 400, "'id' and 'version' must be between 1 and 2^31-1");
        return false;
    }
    in->id = idv > 0 ? (int32_t)idv : 0;
    in->version = vv > 0 ? (int32_t)vv : 0;
    if (r && !json_is_null(r)) {
        if (!json_is_array(r) || json_array_size(r) > REG_MAX_REFS) {
            error(c, REG_EINVALID_SCHEMA, "Invalid schema: 'references' must be an array");
            return false;
        }
        size_t n = json_array_size(r);
        *refs = calloc(n + 1, sizeof(**refs));
        if (!*refs) {
            error(c, REG_ESTORE, "out of memory");
            return false;
        }
        for (size_t i = 0; i < n; i++) {
            json_t *e = json_array_get(r, i);
            json_t *nm = json_object_get(e, "name"), *sb = json_object_get(e, "subject");
            json_t *ve = json_object_get(e, "version");
            if (!json_is_string(nm) || !json_is_string(sb) || !json_is_integer(ve) ||
                json_integer_value(ve) < -1 || json_integer_value(ve) > INT32_MAX ||
                json_integer_value(ve) == 0) {
                free(*refs);
                *refs = NULL;
                error(c, REG_EINVALID_SCHEMA,
                      "Invalid schema: each reference needs a name, a subject and a version");
                return false;
            }
            (*refs)[i] = (registry_ref){json_string_value(nm), json_string_value(sb),
                                        (int32_t)json_integer_value(ve)};
        }
        in->refs = *refs;
        in->nrefs = n;
    }
    in->normalize = qbool(c, "normalize", false);
    return true;
}

/* "latest", -1 or 1..2^31-1; false after answering 42202. */
static bool parse_version(rest_ctx *c, const char *s, int32_t *out)
{
    if (!strcmp(s, "latest")) {
        *out = -1;
        return true;
    }
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!errno && end != s && !*end && (v == -1 || (v >= 1 && v <= INT32_MAX))) {
        *out = (int32_t)v;
        return true;
    }
    char msg[600];
    snprintf(msg, sizeof(msg),
             "The specified version '%.400s' is not a valid version id. Allowed values are "
             "between [1, 2^31-1] and the string \"latest\"",
             s);
    error(c, REG_EINVALID_VERSION, msg);
    return false;
}

static bool parse_id(rest_ctx *c, const char *s, int32_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!errno && end != s && !*end && v >= 0 && v <= INT32_MAX) {
        *out = (int32_t)v;
        return true;
    }
    /* Jersey answers 404 to a path parameter that is not an integer. */
    not_found(c);
    return false;
}

static unsigned deleted_flags(rest_ctx *c)
{
    unsigned f = 0;
    if (qbool(c, "deleted", false))
        f |= REG_WITH_DELETED;
    if (qbool(c, "deletedOnly", false))
        f |= REG_ONLY_DELETED;
    return f;
}

/* ---------------------------------------------------------------------------------------------
 * Routes
 */
static void route_subjects_list(rest_ctx *c)
{
    registry_result res = {0};
    char *prefix = qstr(c, "subjectPrefix");
    int rc = registry_subjects(c->e, prefix ? prefix : "", deleted_flags(c), &res);
    free(prefix);
    if (rc) {
        registry_result_free(&res);
        return error(c, rc, "Error while listing subjects");
    }
    json_t *a = json_array();
    for (size_t i = 0; i < res.nnames; i++)
        if (may(c, res.names[i], ACT_READ))
            json_array_append_new(a, json_string(res.names[i]));
    registry_result_free(&res);
    answer(c, a);
}

static void route_register(rest_ctx *c, const char *subject)
{
    if (!require(c, subject, ACT_REGISTER))
        return;
    json_t *j = body_object(c);
    if (!j)
        return;
    registry_input in;
    registry_ref *refs;
    registry_result res = {0};
    const char *msg = NULL;
    if (read_input(c, j, &in, &refs)) {
        int rc = registry_register(c->e, subject, &in, &res, &msg);
        if (rc == REG_EINCOMPATIBLE && res.messages) {
            /* Confluent lists the reasons after the message: ", details: [a, b, ...]". */
            size_t n = strlen(msg) + strlen(res.messages) * 2 + 16;
            char *full = malloc(n);
            if (full) {
                size_t at = (size_t)snprintf(full, n, "%s, details: [", msg);
                for (const char *p = res.messages; *p; p++) {
                    if (*p == '\n') {
                        full[at++] = ',';
                        full[at++] = ' ';
                    } else {
                        full[at++] = *p;
                    }
                }
                full[at++] = ']';
                full[at] = '\0';
            }
            error(c, rc, full ? full : msg);
            free(full);
        } else if (rc) {
            error(c, rc, msg);
        } else {
            answer(c, json_pack("{s:i}", "id", res.schemas[0].id));
        }
    }
    free(refs);
    registry_result_free(&res);
    json_decref(j);
}

static void route_lookup(rest_ctx *c, const char *subject)
{
    if (!require(c, subject, ACT_READ))
        return;
    json_t *j = body_object(c);
    if (!j)
        return;
    registry_input in;
    registry_ref *refs;
    registry_result res = {0};
    const char *msg = NULL;
    if (read_input(c, j, &in, &refs)) {
        int rc = registry_lookup(c->e, subject, &in, qbool(c, "deleted", false), &res, &msg);
        if (rc)
            error(c, rc, msg);
        else
            answer(c, schema_json(&res.schemas[0], true));
    }
    free(refs);
    registry_result_free(&res);
    json_decref(j);
}

static void route_check(rest_ctx *c, const char *subject, const char *version)
{
    if (!is(c, "POST"))
        return method_not_allowed(c);
    int32_t v = -2;
    if (version && !parse_version(c, version, &v))
        return;
    if (!require(c, subject, ACT_READ))
        return;
    json_t *j = body_object(c);
    if (!j)
        return;
    registry_input in;
    registry_ref *refs;
    registry_result res = {0};
    const char *msg = NULL;
    if (read_input(c, j, &in, &refs)) {
        bool ok = false;
        int rc = registry_check(c->e, subject, v, &in, &ok, &res, &msg);
        if (rc == REG_ESUBJECT_NOT_FOUND && v == -1) {
            /* Confluent: nothing to be incompatible with. */
            rc = 0;
            ok = true;
        }
        if (rc) {
            error(c, rc, msg);
        } else {
            json_t *o = json_pack("{s:b}", "is_compatible", ok);
            if (qbool(c, "verbose", false))
                json_object_set_new(o, "messages", messages_json(res.messages));
            answer(c, o);
        }
    }
    free(refs);
    registry_result_free(&res);
    json_decref(j);
}

static void route_version(rest_ctx *c, const char *subject, const char *version, const char *tail)
{
    int32_t v;
    if (!parse_version(c, version, &v))
        return;
    registry_result res = {0};
    const char *msg = NULL;
    int rc;
    if (tail && !strcmp(tail, "referencedby")) {
        if (!is(c, "GET"))
            return method_not_allowed(c);
        if (!require(c, subject, ACT_READ))
            return;
        if ((rc = registry_referenced_by(c->e, subject, v, &res, &msg)) != 0) {
            error(c, rc, msg);
        } else {
            json_t *a = json_array();
            for (size_t i = 0; i < res.nints; i++)
                json_array_append_new(a, json_integer(res.ints[i]));
            answer(c, a);
        }
    } else if (tail && strcmp(tail, "schema") != 0) {
        return not_found(c);
    } else if (is(c, "GET")) {
        if (!require(c, subject, ACT_READ))
            return;
        unsigned f = qbool(c, "deleted", false) ? REG_WITH_DELETED : 0;
        if ((rc = registry_get_version(c->e, subject, v, f, &res, &msg)) != 0)
            error(c, rc, msg);
        else if (tail) {
            c->status = 200;
            c->raw = strdup(res.schemas[0].text);
        } else
            answer(c, schema_json(&res.schemas[0], true));
    } else if (is(c, "DELETE") && !tail) {
        if (!require(c, subject, ACT_ALTER))
            return;
        rc = registry_delete_version(c->e, subject, v, qbool(c, "permanent", false), &res, &msg);
        if (rc)
            error(c, rc, msg);
        else
            answer(c, json_integer(res.ints[0]));
    } else {
        method_not_allowed(c);
    }
    registry_result_free(&res);
}

static void route_subject(rest_ctx *c)
{
    const char *subject = c->seg[1];
    registry_result res = {0};
    const char *msg = NULL;
    int rc;
    if (c->nseg == 2) {
        if (is(c, "POST"))
            return route_lookup(c, subject);
        if (!is(c, "DELETE"))
            return method_not_allowed(c);
        if (!require(c, subject, ACT_ALTER))
            return;
        rc = registry_delete_subject(c->e, subject, qbool(c, "permanent", false), &res, &msg);
    } else if (strcmp(c->seg[2], "versions") != 0) {
        return not_found(c);
    } else if (c->nseg >= 4) {
        return route_version(c, subject, c->seg[3], c->nseg == 5 ? c->seg[4] : NULL);
    } else if (is(c, "POST")) {
        return route_register(c, subject);
    } else if (is(c, "GET")) {
        if (!require(c, subject, ACT_READ))
            return;
        rc = registry_versions(c->e, subject, deleted_flags(c), &res, &msg);
    } else {
        return method_not_allowed(c);
    }
    if (rc) {
        error(c, rc, msg);
    } else {
        json_t *a = json_array();
        for (size_t i = 0; i < res.nints; i++)
            json_array_append_new(a, json_integer(res.ints[i]));
        answer(c, a);
    }
    registry_result_free(&res);
}

/* Whether the principal may read a subject holding id (else the id is "not found"). */
static bool may_read_id(rest_ctx *c, int32_t id)
{
    if (!c->p)
        return true;
    registry_result res = {0};
    const char *msg;
    bool ok = false;
    if (registry_id_subjects(c->e, id, REG_WITH_DELETED, &res, &msg) == 0)
        for (size_t i = 0; i < res.nnames && !ok; i++)
            ok = may(c, res.names[i], ACT_READ);
    registry_result_free(&res);
    return ok;
}

static void route_schemas(rest_ctx *c)
{
    if (!is(c, "GET"))
        return method_not_allowed(c);
    registry_result res = {0};
    const char *msg = NULL;
    int rc;
    if (c->nseg == 1) {
        char *prefix = qstr(c, "subjectPrefix");
        rc = registry_schemas(c->e, prefix ? prefix : "", qbool(c, "latestOnly", false),
                              qbool(c, "deleted", false) ? REG_WITH_DELETED : 0, &res);
        free(prefix);
        if (rc) {
            error(c, rc, "Error while listing schemas");
        } else {
            json_t *a = json_array();
            for (size_t i = 0; i < res.nschemas; i++)
                if (may(c, res.schemas[i].subject, ACT_READ))
                    json_array_append_new(a, schema_json(&res.schemas[i], true));
            answer(c, a);
        }
        return registry_result_free(&res);
    }
    if (c->nseg == 2 && !strcmp(c->seg[1], "types"))
        return answer(c, json_pack("[s,s,s]", "JSON", "PROTOBUF", "AVRO"));
    int32_t id;
    if (c->nseg < 3 || c->nseg > 4 || strcmp(c->seg[1], "ids") != 0)
        return not_found(c);
    if (!parse_id(c, c->seg[2], &id))
        return;
    if (!may_read_id(c, id)) {
        char m[64];
        snprintf(m, sizeof(m), "Schema %" PRId32 " not found", id);
        return error(c, REG_ESCHEMA_NOT_FOUND, m);
    }
    const char *tail = c->nseg == 4 ? c->seg[3] : NULL;
    unsigned f = qbool(c, "deleted", false) ? REG_WITH_DELETED : 0;
    if (!tail || !strcmp(tail, "schema")) {
        char *subject = qstr(c, "subject");
        rc = registry_get_id(c->e, id, subject, &res, &msg);
        free(subject);
        if (rc)
            error(c, rc, msg);
        else if (tail) {
            c->status = 200;
            c->raw = strdup(res.schemas[0].text);
        } else {
            json_t *o = json_object();
            if (strcmp(res.schemas[0].type, "AVRO") != 0)
                json_object_set_new(o, "schemaType", json_string(res.schemas[0].type));
            json_object_set_new(o, "schema", json_string(res.schemas[0].text));
            if (res.schemas[0].nrefs)
                json_object_set_new(o, "references", refs_json(&res.schemas[0]));
            answer(c, o);
        }
    } else if (!strcmp(tail, "subjects")) {
        if ((rc = registry_id_subjects(c->e, id, f, &res, &msg)) != 0) {
            error(c, rc, msg);
        } else {
            json_t *a = json_array();
            for (size_t i = 0; i < res.nnames; i++)
                if (may(c, res.names[i], ACT_READ))
                    json_array_append_new(a, json_string(res.names[i]));
            answer(c, a);
        }
    } else if (!strcmp(tail, "versions")) {
        if ((rc = registry_id_versions(c->e, id, f, &res, &msg)) != 0) {
            error(c, rc, msg);
        } else {
            json_t *a = json_array();
            for (size_t i = 0; i < res.nschemas; i++)
                if (may(c, res.schemas[i].subject, ACT_READ))
                    json_array_append_new(a, json_pack("{s:s,s:i}", "subject",
                                                       res.schemas[i].subject, "version",
                                                       res.schemas[i].version));
            answer(c, a);
        }
    } else {
        not_found(c);
    }
    registry_result_free(&res);
}

static const char *const compat_error =
    "Invalid compatibility level. Valid values are none, backward, forward, full, "
    "backward_transitive, forward_transitive, and full_transitive";

/* /config[/{s}] and /mode[/{s}]. */
static void route_level(rest_ctx *c, bool config)
{
    const char *subject = c->nseg == 2 ? c->seg[1] : NULL;
    if (c->nseg > 2)
        return not_found(c);
    const char *key = config ? "compatibilityLevel" : "mode";
    const char *msg = NULL;
    int rc, v = 0;
    if (is(c, "GET")) {
        if (!require(c, subject, ACT_READ))
            return;
        bool fb = qbool(c, "defaultToGlobal", false);
        registry_compat cv;
        registry_mode mv;
        rc = config ? registry_config_get(c->e, subject, fb, &cv, &msg)
                    : registry_mode_get(c->e, subject, fb, &mv, &msg);
        if (rc)
            return error(c, rc, msg);
        return answer(c, json_pack("{s:s}", key,
                                   config ? registry_compat_name(cv) : registry_mode_name(mv)));
    }
    if (!require(c, subject, ACT_ALTER))
        return;
    if (is(c, "DELETE")) {
        registry_compat oc;
        registry_mode om;
        rc = config ? registry_config_delete(c->e, subject, &oc, &msg)
                    : registry_mode_delete(c->e, subject, &om, &msg);
        if (rc)
            return error(c, rc, msg);
        return answer(c, json_pack("{s:s}", key,
                                   config ? registry_compat_name(oc) : registry_mode_name(om)));
    }
    if (!is(c, "PUT"))
        return method_not_allowed(c);
    json_t *j = body_object(c);
    if (!j)
        return;
    json_t *val = json_object_get(j, config ? "compatibility" : "mode");
    if (config && !val)
        val = json_object_get(j, "compatibilityLevel");
    const char *name = json_string_value(val);
    registry_compat cv = REG_COMPAT_BACKWARD;
    registry_mode mv = REG_MODE_READWRITE;
    if (config && !registry_compat_parse(name, &cv)) {
        error(c, REG_EINVALID_COMPAT, compat_error);
    } else if (!config && !registry_mode_parse(name, &mv)) {
        error(c, REG_EINVALID_MODE, "Invalid mode. Valid values are READWRITE, READONLY, IMPORT");
    } else {
        v = config ? (int)cv : (int)mv;
        rc = config ? registry_config_set(c->e, subject, cv, &msg)
                    : registry_mode_set(c->e, subject, mv, qbool(c, "force", false), &msg);
        if (rc)
            error(c, rc, msg);
        else
            answer(c, json_pack("{s:s}", config ? "compatibility" : "mode",
                                config ? registry_compat_name((registry_compat)v)
                                       : registry_mode_name((registry_mode)v)));
    }
    json_decref(j);
}

static void route(rest_ctx *c)
{
    const char *s0 = c->nseg ? c->seg[0] : "";
    if (c->nseg == 0) {
        if (!is(c, "GET"))
            return method_not_allowed(c);
        return answer(c, json_object());
    }
    if (!strcmp(s0, "subjects")) {
        if (c->nseg == 1)
            return is(c, "GET") ? route_subjects_list(c) : method_not_allowed(c);
        if (c->nseg > 5)
            return not_found(c);
        return route_subject(c);
    }
    if (!strcmp(s0, "schemas"))
        return route_schemas(c);
    if (!strcmp(s0, "config"))
        return route_level(c, true);
    if (!strcmp(s0, "mode"))
        return route_level(c, false);
    if (!strcmp(s0, "compatibility") && c->nseg >= 4 && c->nseg <= 5 &&
        !strcmp(c->seg[1], "subjects") && !strcmp(c->seg[3], "versions"))
        return route_check(c, c->seg[2], c->nseg == 5 ? c->seg[4] : NULL);
    if (!strcmp(s0, "contexts") && c->nseg == 1)
        return is(c, "GET") ? answer(c, json_pack("[s]", ".")) : method_not_allowed(c);
    not_found(c);
}

int registry_rest(td_engine *e, const td_principal *p, const char *method, const char *path,
                  const char *query, const char *body, size_t len, char **resp, size_t *resp_len)
{
    rest_ctx c = {.e = e, .p = p, .method = method ? method : "GET", .query = query ? query : "",
                  .body = body, .len = len};
    *resp = NULL;
    *resp_len = 0;
    if (!strcmp(c.method, "HEAD"))
        c.method = "GET";
    if (split(&c, path) != 0)
        not_found(&c);
    else if (!registry_of(e))
        error(&c, REG_ESTORE, "the schema registry is not open");
    else
        route(&c);
    for (int i = 0; i < c.nseg; i++)
        free(c.seg[i]);
    if (c.raw) {
        *resp = c.raw;
        *resp_len = strlen(c.raw);
        return c.status;
    }
    char *text = c.out ? json_dumps(c.out, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(c.out);
    if (!text) {
        text = strdup("{\"error_code\":50001,\"message\":\"out of memory\"}");
        c.status = 500;
    }
    *resp = text;
    *resp_len = text ? strlen(text) : 0;
    return c.status ? c.status : 500;
}

int td_schema_request(td_engine *e, const char *method, const char *path, const char *body,
                      size_t len, int *status, char **resp, size_t *resp_len)
{
    if (!e || !method || !path || !status || !resp || !resp_len)
        return td_fail(TD_EINVAL, "td_schema_request needs an engine, a method, a path and outs");
    const char *q = strchr(path, '?');
    char *p = q ? strndup(path, (size_t)(q - path)) : NULL;
    if (q && !p)
        return -ENOMEM;
    *status = registry_rest(e, NULL, method, q ? p : path, q ? q + 1 : "", body, len, resp,
                            resp_len);
    free(p);
    return *resp ? 0 : -ENOMEM;
}

/* An answer waiting for its change to be durable (registry_rest_async). */
typedef struct rest_pending {
    int status;
    char *resp;
    size_t len;
    registry_rest_done done;
    void *arg;
} rest_pending;

static void pending_durable(void *arg, int rc)
{
    rest_pending *pd = arg;
    if (rc) {
        TD_ERROR("registry", "a change of the registry is not durable: %s", td_last_error());
        free(pd->resp);
        pd->resp = strdup("{\"error_code\":50001,\"message\":\"Error in the backend data store: "
                          "the change is not durable\"}");
        pd->len = pd->resp ? strlen(pd->resp) : 0;
        pd->status = 500;
    }
    pd->done(pd->arg, pd->status, pd->resp, pd->len);
    free(pd);
}

int registry_rest_async(td_engine *e, const td_principal *p, const char *method,
                        const char *path, const char *query, const char *body, size_t len,
                        int *status, char **resp, size_t *resp_len, registry_rest_done done,
                        void *arg)
{
    int64_t end = -1;
    reg_defer_waits(&end);
    *status = registry_rest(e, p, method, path, query, body, len, resp, resp_len);
    reg_defer_waits(NULL);
    if (end < 0 || !*resp)
        return 0;
    rest_pending *pd = malloc(sizeof(*pd));
    if (pd) {
        *pd = (rest_pending){*status, *resp, *resp_len, done, arg};
        if (state_when_durable(e, STATE_SCHEMAS, 0, end, pending_durable, pd) == 0)
            return 1;
        free(pd);
    }
    /* It could not be waited for: the change may not be durable, so it is not acknowledged. */
    free(*resp);
    *resp = strdup("{\"error_code\":50001,\"message\":\"Error in the backend data store\"}");
    *resp_len = *resp ? strlen(*resp) : 0;
    *status = 500;
    return 0;
}
