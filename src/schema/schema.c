/*
 * schema.c: the dispatch of schema.h to each type's operations (schema_int.h), and what the
 * types share: type names, messages, errors, Confluent's wire header.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/schema_int.h"

static const char *const type_names[SCHEMA_NTYPES] = {"AVRO", "JSON", "PROTOBUF"};

static const schema_ops *ops_of(schema_type t)
{
    switch (t) {
    case SCHEMA_AVRO:
        return &schema_avro_ops;
    case SCHEMA_JSON:
        return &schema_json_ops;
    case SCHEMA_PROTOBUF:
        return &schema_protobuf_ops;
    default:
        return NULL;
    }
}

const char *schema_type_name(schema_type t)
{
    return (unsigned)t < SCHEMA_NTYPES ? type_names[t] : "UNKNOWN";
}

bool schema_type_parse(const char *name, schema_type *out)
{
    for (int t = 0; name && t < SCHEMA_NTYPES; t++)
        if (!strcmp(name, type_names[t])) {
            *out = (schema_type)t;
            return true;
        }
    return false;
}

void schema_set_error(schema_error *err, const char *path, const char *rule, const char *fmt, ...)
{
    if (!err)
        return;
    snprintf(err->path, sizeof(err->path), "%s", path ? path : "");
    snprintf(err->rule, sizeof(err->rule), "%s", rule ? rule : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
}

int schema_parse(schema_type t, const char *text, size_t len, const schema_dep *deps, size_t ndeps,
                 schema **out, schema_error *err)
{
    *out = NULL;
    const schema_ops *ops = ops_of(t);
    if (!ops) {
        schema_set_error(err, "", "type", "unknown schema type %d", (int)t);
        return -1;
    }
    if (len > SCHEMA_MAX_TEXT) {
        schema_set_error(err, "", "size", "the schema has %zu bytes, more than %u", len,
                         SCHEMA_MAX_TEXT);
        return -1;
    }
    schema *s = calloc(1, sizeof(*s));
    if (!s) {
        schema_set_error(err, "", "memory", "out of memory");
        return -1;
    }
    s->type = t;
    s->ops = ops;
    if (ops->parse(text, len, deps, ndeps, &s->impl, &s->canonical, &s->record_name, err)) {
        free(s);
        return -1;
    }
    *out = s;
    return 0;
}

void schema_free(schema *s)
{
    if (!s)
        return;
    s->ops->free(s->impl);
    free(s->canonical);
    free(s->record_name);
    free(s);
}

schema_type schema_get_type(const schema *s)
{
    return s->type;
}

const char *schema_canonical(const schema *s)
{
    return s->canonical;
}

const char *schema_record_name(const schema *s)
{
    return s->record_name;
}

bool schema_can_read(const schema *reader, const schema *writer, schema_msgs *msgs)
{
    if (reader->type != writer->type) {
        if (msgs)
            schema_msgs_add(msgs, "Incompatible because of different schema type: %s and %s",
                            schema_type_name(reader->type), schema_type_name(writer->type));
        return false;
    }
    return reader->ops->can_read(reader->impl, writer->impl, msgs);
}

int schema_validate(const schema *s, const uint8_t *p, size_t n, schema_error *err)
{
    return s->ops->validate(s->impl, p, n, err);
}

int schema_validate_json(const schema *s, const char *json, size_t len, schema_error *err)
{
    return s->ops->validate_json(s->impl, json, len, err);
}

void schema_msgs_add(schema_msgs *m, const char *fmt, ...)
{
    if (!m)
        return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (k < 0)
        return;
    size_t need = m->len + (m->len ? 1 : 0) + (size_t)k + 1;
    char *t = realloc(m->text, need);
    if (!t)
        return;
    m->text = t;
    if (m->len)
        t[m->len++] = '\n';
    va_start(ap, fmt);
    vsnprintf(t + m->len, (size_t)k + 1, fmt, ap);
    va_end(ap);
    m->len += (size_t)k;
    m->count++;
}

void schema_msgs_free(schema_msgs *m)
{
    if (!m)
        return;
    free(m->text);
    m->text = NULL;
    m->len = m->count = 0;
}

int schema_wire_header(const uint8_t *p, size_t n, int32_t *id)
{
    if (n < SCHEMA_WIRE_HEADER || p[0] != SCHEMA_WIRE_MAGIC)
        return -1;
    *id = (int32_t)((uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4]);
    return 0;
}
