/*
 * json_schema.c: JSON Schema (drafts 4, 6, 7, 2019-09 and 2020-12; draft 7 when "$schema" does
 * not say, as Confluent), the operations of schema_int.h. The schemas are parsed with
 * jansson and compiled once into a validator tree (json_schema_compile.c) that validation walks
 * (json_schema_validate.c) over the instance parsed by json_dom.c; compatibility follows
 * Confluent's rules (json_schema_diff.c).
 *
 * Written by hand because Debian packages no JSON Schema validator for C; docs/schemas.md says
 * which keywords are implemented and how.
 *
 * The canonical form is the JSON printed compactly with the keys in their order, as Confluent's
 * JsonSchema.canonicalString(); reals are printed in their shortest form that reads back the
 * same (jansson prints 17 digits: 0.1 would become 0.10000000000000001).
 */
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "schema/json_dom.h"
#include "schema/json_schema_int.h"

/* jansson refuses integers beyond 64 bits; such a text is read again with them as reals.
 * flags: JSON_ALLOW_NUL for values ("\u0000" is valid JSON; every check of a string uses its
 * length), not for schemas. */
static json_t *load(const char *text, size_t len, size_t flags, json_error_t *je)
{
    json_t *j = json_loadb(text, len, JSON_DECODE_ANY | flags, je);
    if (!j && strstr(je->text, "too big"))
        j = json_loadb(text, len, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL | flags, je);
    return j;
}

static json_t *load_schema(const char *text, size_t len, const char *what, schema_error *err)
{
    json_error_t je;
    json_t *j = load(text, len, 0, &je);
    if (!j) {
        schema_set_error(err, "", "syntax", "Invalid JSON Schema%s%s: %s at line %d, column %d",
                         what ? " " : "", what ? what : "", je.text, je.line, je.column);
        return NULL;
    }
    if (!json_is_object(j) && !json_is_boolean(j)) {
        schema_set_error(err, "", "schema",
                         "Invalid JSON Schema%s%s: a schema is an object or a boolean",
                         what ? " " : "", what ? what : "");
        json_decref(j);
        return NULL;
    }
    return j;
}

static void js_free(void *impl)
{
    js_schema *js = impl;
    if (!js)
        return;
    js_free_nodes(js);
    for (size_t i = 0; i < js->ndeps; i++)
        json_decref(js->dep_docs[i]);
    free(js->dep_docs);
    json_decref(js->root_doc);
    free(js);
}

static char *canonical_of(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    if (s)
        s[td_json_shorten_reals(s, strlen(s))] = 0;
    return s;
}

static int js_parse(const char *text, size_t len, const schema_dep *deps, size_t ndeps, void **impl,
                    char **canonical, char **record_name, schema_error *err)
{
    js_schema *js = calloc(1, sizeof(*js));
    if (!js || (ndeps && !(js->dep_docs = calloc(ndeps, sizeof(json_t *))))) {
        free(js);
        schema_set_error(err, "", "memory", "out of memory");
        return -1;
    }
    if (!(js->root_doc = load_schema(text, len, NULL, err)))
        goto fail;
    js->draft = js_draft_of(js->root_doc);
    for (size_t i = 0; i < ndeps; i++) {
        char what[200];
        snprintf(what, sizeof(what), "(reference '%.150s')", deps[i].name ? deps[i].name : "");
        if (!(js->dep_docs[i] =
                  load_schema(deps[i].text ? deps[i].text : "", deps[i].len, what, err)))
            goto fail;
        js->ndeps++;
    }
    if (js_compile(js, deps, ndeps, err))
        goto fail;
    *canonical = canonical_of(js->root_doc);
    json_t *title = json_object_get(js->root_doc, "title");
    *record_name = json_is_string(title) ? strdup(json_string_value(title)) : NULL;
    if (!*canonical || (json_is_string(title) && !*record_name)) {
        free(*canonical);
        free(*record_name);
        *canonical = *record_name = NULL;
        schema_set_error(err, "", "memory", "out of memory");
        goto fail;
    }
    *impl = js;
    return 0;
fail:
    js_free(js);
    return -1;
}

static bool js_ops_can_read(const void *reader, const void *writer, schema_msgs *msgs)
{
    return js_can_read(reader, writer, msgs);
}

/* A jansson value validated through the thread's document (json_dom.h). */
static int validate_json_t(const js_schema *js, const json_t *v, schema_error *err)
{
    jd_doc *d = jd_doc_tls();
    if (!d || jd_from_json(d, v)) {
        if (d)
            jd_doc_trim(d);
        schema_set_error(err, "", "memory", "out of memory, or the value nests too deep");
        return -1;
    }
    int rc = js_validate_value(js, d->nodes, err);
    jd_doc_trim(d);
    return rc;
}

/* The text is parsed by json_dom.c, which accepts what jansson accepts (load() with
 * JSON_ALLOW_NUL) with the same values, without jansson's allocation per value. A text it
 * refuses goes through jansson again, for jansson's message (which callers and clients already
 * see), and so that, should the two ever disagree, jansson's reading stands. */
static int js_validate_json(const void *impl, const char *json, size_t len, schema_error *err)
{
    jd_doc *d = jd_doc_tls();
    if (d && !jd_parse(d, json, len)) {
        int rc = js_validate_value(impl, d->nodes, err);
        jd_doc_trim(d);
        return rc;
    }
    if (d)
        jd_doc_trim(d);
    json_error_t je;
    json_t *v = load(json, len, JSON_ALLOW_NUL, &je);
    if (!v) {
        schema_set_error(err, "", "syntax", "not JSON: %s at line %d, column %d", je.text, je.line,
                         je.column);
        return -1;
    }
    int rc = validate_json_t(impl, v, err);
    json_decref(v);
    return rc;
}

static int js_validate(const void *impl, const uint8_t *p, size_t n, schema_error *err)
{
    return js_validate_json(impl, (const char *)p, n, err);
}

const schema_ops schema_json_ops = {js_parse, js_free, js_ops_can_read, js_validate,
                                    js_validate_json};

int schema_json_validate_value(const schema *s, const struct json_t *v, schema_error *err)
{
    if (!s || s->type != SCHEMA_JSON) {
        schema_set_error(err, "", "type", "the schema is not a JSON Schema");
        return -1;
    }
    return validate_json_t(s->impl, v, err);
}

/* Whether a node may accept some string; unknown cases say yes. */
static bool may_be_string(const js_node *n, int depth)
{
    if (!n || depth > SCHEMA_MAX_DEPTH)
        return true;
    if (n->boolean >= 0)
        return n->boolean == 1;
    if (n->ref_node && !may_be_string(n->ref_node, depth + 1))
        return false;
    if (!(n->types & JT_STR))
        return false;
    if ((n->has & JK_CONST) && !json_is_string(n->const_value))
        return false;
    if (n->has & JK_ENUM) {
        bool any = false;
        size_t i;
        json_t *e;
        json_array_foreach(n->enum_values, i, e) any |= json_is_string(e);
        if (!any)
            return false;
    }
    for (size_t i = 0; i < n->nall; i++)
        if (!may_be_string(n->all_of[i], depth + 1))
            return false;
    if (n->nany || n->none) {
        bool any = false;
        for (size_t i = 0; i < n->nany; i++)
            any |= may_be_string(n->any_of[i], depth + 1);
        for (size_t i = 0; i < n->none; i++)
            any |= may_be_string(n->one_of[i], depth + 1);
        if (!any)
            return false;
    }
    return true;
}

/* The schema of property `name` in the object schema n (following "$ref" and allOf): 1 and
 * *out when it says one, 0 when it does not. */
static int property_node(const js_node *n, const char *name, const js_node **out, int depth)
{
    if (!n || depth > SCHEMA_MAX_DEPTH || n->boolean >= 0)
        return 0;
    for (size_t i = 0; i < n->nprops; i++)
        if (!strcmp(n->props[i].name, name)) {
            *out = n->props[i].node;
            return 1;
        }
    /* A name that is not UTF-8 (a Redis field's) matches no pattern: js_regex_match takes UTF-8. */
    bool utf8 = n->npprops && td_utf8_valid((const uint8_t *)name, strlen(name));
    for (size_t i = 0; utf8 && i < n->npprops; i++)
        if (js_regex_match(n->pprops[i].re, name, strlen(name)) == 1) {
            *out = n->pprops[i].node;
            return 1;
        }
    if (property_node(n->ref_node, name, out, depth + 1))
        return 1;
    for (size_t i = 0; i < n->nall; i++)
        if (property_node(n->all_of[i], name, out, depth + 1))
            return 1;
    if (n->additional) {
        *out = n->additional;
        return 1;
    }
    return 0;
}

bool schema_json_accepts_string_at(const schema *s, const char *property)
{
    if (!s || s->type != SCHEMA_JSON || !property)
        return true;
    const js_schema *js = s->impl;
    const js_node *p = NULL;
    if (!property_node(js->root, property, &p, 0))
        return true;
    return may_be_string(p, 0);
}
