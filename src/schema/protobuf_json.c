/*
 * protobuf_json.c: whether a JSON value is the proto3 JSON mapping of the schema's first
 * message (the command line's `produce --schema` checks this before it encodes). The mapping,
 * as protobuf's JSON parsers read it:
 *
 *   message        an object; keys are field names or their json_name (lowerCamelCase unless
 *                  set); unknown keys are refused; null means the default; at most one member
 *                  of a oneof is set
 *   int32, sint32, sfixed32, uint32, fixed32      a number with an integral value in range, or
 *                  a string holding one
 *   64-bit integers                               the same (strings are the usual form)
 *   float, double  a number, or "NaN", "Infinity", "-Infinity", or a numeric string
 *   bool           true or false
 *   string         a string; bytes: base64 (standard or URL-safe, padding optional)
 *   enum           a value's name, or its number (any int32 for a proto3 enum)
 *   repeated       an array; map<K,V>: an object whose keys read as K
 *   well-known     Timestamp and Duration as strings, FieldMask a string, wrappers as their
 *                  value, Struct an object, Value anything, ListValue an array, Any an object
 *                  with "@type", Empty an object, NullValue null
 *
 * Recursion is bounded by SCHEMA_MAX_DEPTH. Errors carry the JSON pointer of the value.
 */
#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/protobuf_int.h"

typedef struct J {
    schema_error *err;
    char path[256];
    size_t plen;
    int depth;
} J;

static int jfail(J *j, const char *rule, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int jfail(J *j, const char *rule, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    schema_set_error(j->err, j->path, rule, "%s", msg);
    return -1;
}

/* Appends one JSON pointer token (escaped: ~0 for ~, ~1 for /); returns the length to pop to. */
static size_t push(J *j, const char *tok)
{
    size_t before = j->plen;
    char buf[256];
    size_t k = 0;
    buf[k++] = '/';
    for (const char *s = tok; *s && k + 3 < sizeof(buf); s++) {
        if (*s == '~' || *s == '/') {
            buf[k++] = '~';
            buf[k++] = *s == '~' ? '0' : '1';
        } else {
            buf[k++] = *s;
        }
    }
    if (j->plen + k < sizeof(j->path)) {
        memcpy(j->path + j->plen, buf, k);
        j->plen += k;
    }
    j->path[j->plen] = 0;
    return before;
}

static size_t push_index(J *j, size_t i)
{
    char b[24];
    snprintf(b, sizeof(b), "%zu", i);
    return push(j, b);
}

static void pop(J *j, size_t to)
{
    j->plen = to;
    j->path[to] = 0;
}

/* An integer from a JSON number (integral) or a decimal string, in [lo, hi] (hi as unsigned
 * when is_unsigned). */
static bool int_ok(const json_t *v, bool is_unsigned, long double lo, long double hi)
{
    long double x;
    if (json_is_integer(v)) {
        x = (long double)json_integer_value(v);
    } else if (json_is_real(v)) {
        x = (long double)json_real_value(v);
        if (x != floorl(x))
            return false;
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        if (!*s || isspace((unsigned char)*s))
            return false;
        errno = 0;
        if (is_unsigned) {
            if (*s == '-')
                return false;
            x = (long double)strtoull(s, &end, 10);
        } else {
            x = (long double)strtoll(s, &end, 10);
        }
        if (*end || end == s || errno == ERANGE)
            return false;
    } else {
        return false;
    }
    return x >= lo && x <= hi;
}

static bool base64_ok(const char *s)
{
    size_t n = strlen(s), pad = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '=') {
            pad++;
            continue;
        }
        if (pad || !(isalnum((unsigned char)c) || c == '+' || c == '/' || c == '-' || c == '_'))
            return false;
    }
    return pad <= 2 && (pad == 0 || n % 4 == 0) && (n - pad) % 4 != 1;
}

static bool float_ok(const json_t *v, bool is_float)
{
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (!strcmp(s, "NaN") || !strcmp(s, "Infinity") || !strcmp(s, "-Infinity"))
            return true;
        char *end;
        double d = strtod(s, &end);
        if (!*s || *end || isspace((unsigned char)*s) || isinf(d) || isnan(d))
            return false;
        return !is_float || fabs(d) <= FLT_MAX;
    }
    if (!json_is_number(v))
        return false;
    return !is_float || fabs(json_number_value(v)) <= FLT_MAX;
}

static int message(J *j, const json_t *v, const pb_msg *m);

static int enum_value(J *j, const json_t *v, const pb_enum *e)
{
    if (!strcmp(e->full, "google.protobuf.NullValue") && json_is_null(v))
        return 0;
    if (json_is_string(v)) {
        for (size_t i = 0; i < e->n; i++)
            if (!strcmp(e->names[i], json_string_value(v)))
                return 0;
        return jfail(j, "enum", "\"%.100s\" is not a value of enum %s", json_string_value(v),
                     e->full);
    }
    if (json_is_integer(v) && json_integer_value(v) >= INT32_MIN &&
        json_integer_value(v) <= INT32_MAX) {
        if (!e->closed)
            return 0;
        for (size_t i = 0; i < e->n; i++)
            if (e->numbers[i] == json_integer_value(v))
                return 0;
        return jfail(j, "enum", "%lld is not a value of enum %s", (long long)json_integer_value(v),
                     e->full);
    }
    return jfail(j, "enum", "expected a name or a number of enum %s", e->full);
}

/* One value of a field's type (an element, for repeated fields and maps). */
static int value(J *j, const json_t *v, int type, const pb_msg *msg, const pb_enum *en)
{
    bool ok;
    switch (type) {
    case PB_T_INT32:
    case PB_T_SINT32:
    case PB_T_SFIXED32:
        ok = int_ok(v, false, INT32_MIN, INT32_MAX);
        break;
    case PB_T_UINT32:
    case PB_T_FIXED32:
        ok = int_ok(v, true, 0, UINT32_MAX);
        break;
    case PB_T_INT64:
    case PB_T_SINT64:
    case PB_T_SFIXED64:
        ok = int_ok(v, false, (long double)INT64_MIN, (long double)INT64_MAX);
        break;
    case PB_T_UINT64:
    case PB_T_FIXED64:
        ok = int_ok(v, true, 0, (long double)UINT64_MAX);
        break;
    case PB_T_FLOAT:
    case PB_T_DOUBLE:
        ok = float_ok(v, type == PB_T_FLOAT);
        break;
    case PB_T_BOOL:
        ok = json_is_boolean(v);
        break;
    case PB_T_STRING:
        ok = json_is_string(v);
        break;
    case PB_T_BYTES:
        ok = json_is_string(v) && base64_ok(json_string_value(v));
        break;
    case PB_T_ENUM:
        return enum_value(j, v, en);
    default:
        return message(j, v, msg);
    }
    if (!ok)
        return jfail(j, "type", "expected a %s", pb_type_name(type));
    return 0;
}

/* The well-known types with a JSON form of their own; 1 when m is not one of them. */
static int well_known(J *j, const json_t *v, const pb_msg *m)
{
    const char *n = m->full;
    if (strncmp(n, "google.protobuf.", 16))
        return 1;
    n += 16;
    if (!strcmp(n, "Timestamp") || !strcmp(n, "Duration") || !strcmp(n, "FieldMask")) {
        if (!json_is_string(v))
            return jfail(j, "type", "expected a string for google.protobuf.%s", n);
        const char *s = json_string_value(v);
        size_t len = strlen(s);
        if (!strcmp(n, "Duration") && (len < 2 || s[len - 1] != 's'))
            return jfail(j, "format", "a Duration is a number of seconds ending with 's'");
        if (!strcmp(n, "Timestamp") &&
            (len < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') ||
             s[13] != ':' || s[16] != ':'))
            return jfail(j, "format", "a Timestamp is an RFC 3339 date and time");
        return 0;
    }
    if (!strcmp(n, "Value"))
        return 0;
    if (!strcmp(n, "Struct"))
        return json_is_object(v) ? 0 : jfail(j, "type", "expected an object for a Struct");
    if (!strcmp(n, "ListValue"))
        return json_is_array(v) ? 0 : jfail(j, "type", "expected an array for a ListValue");
    if (!strcmp(n, "Any")) {
        if (!json_is_object(v) || !json_is_string(json_object_get(v, "@type")))
            return jfail(j, "type", "expected an object with \"@type\" for an Any");
        return 0;
    }
    if (strlen(n) > 5 && !strcmp(n + strlen(n) - 5, "Value") && m->nfields == 1 &&
        !strcmp(m->fields[0].name, "value"))
        return value(j, v, m->fields[0].type, NULL, NULL); /* a wrapper */
    return 1;
}

static const pb_field *field_named(const pb_msg *m, const char *key)
{
    for (size_t i = 0; i < m->nfields; i++)
        if (!strcmp(m->fields[i].name, key) || !strcmp(m->fields[i].json_name, key))
            return &m->fields[i];
    return NULL;
}

static int map_value(J *j, const json_t *v, const pb_field *f)
{
    if (!json_is_object(v))
        return jfail(j, "type", "expected an object for map field '%s'", f->name);
    const char *key;
    json_t *e;
    json_object_foreach((json_t *)v, key, e)
    {
        size_t at = push(j, key);
        if (f->key_type == PB_T_BOOL ? strcmp(key, "true") && strcmp(key, "false")
                                     : f->key_type != PB_T_STRING) {
            json_t *k = json_string(key);
            int rc = k ? value(j, k, f->key_type, NULL, NULL) : -1;
            json_decref(k);
            if (rc < 0)
                return jfail(j, "type", "the key \"%.100s\" is not a %s", key,
                             pb_type_name(f->key_type));
        }
        if (json_is_null(e) || value(j, e, f->type, f->msg, f->en) < 0)
            return json_is_null(e) ? jfail(j, "type", "a map's value can't be null") : -1;
        pop(j, at);
    }
    return 0;
}

static int field_value(J *j, const json_t *v, const pb_field *f)
{
    if (json_is_null(v) &&
        !(f->type == PB_T_MESSAGE && !strcmp(f->msg->full, "google.protobuf.Value")))
        return 0;
    if (f->is_map)
        return map_value(j, v, f);
    if (f->label != PB_L_REPEATED)
        return value(j, v, f->type, f->msg, f->en);
    if (!json_is_array(v))
        return jfail(j, "type", "expected an array for repeated field '%s'", f->name);
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        size_t at = push_index(j, i);
        if (json_is_null(e))
            return jfail(j, "type", "an element of a repeated field can't be null");
        if (value(j, e, f->type, f->msg, f->en) < 0)
            return -1;
        pop(j, at);
    }
    return 0;
}

static int message(J *j, const json_t *v, const pb_msg *m)
{
    if (j->depth >= SCHEMA_MAX_DEPTH)
        return jfail(j, "depth", "nested more than %d deep", SCHEMA_MAX_DEPTH);
    j->depth++;
    int rc = well_known(j, v, m);
    if (rc <= 0) {
        j->depth--;
        return rc;
    }
    if (!json_is_object(v))
        return jfail(j, "type", "expected an object for message %s", m->full);
    const char *key;
    json_t *e;
    /* A oneof member set: the other keys are scanned for another member of the same oneof
     * (quadratic in the keys of one object, which the command line's values keep small). */
    json_object_foreach((json_t *)v, key, e)
    {
        const pb_field *f = field_named(m, key);
        size_t at = push(j, key);
        if (!f)
            return jfail(j, "unknown", "message %s has no field \"%.100s\"", m->full, key);
        if (f->oneof >= 0 && !json_is_null(e)) {
            const char *k2;
            json_t *e2;
            json_object_foreach((json_t *)v, k2, e2)
            {
                const pb_field *g = field_named(m, k2);
                if (g && g != f && g->oneof == f->oneof && !json_is_null(e2))
                    return jfail(j, "oneof", "fields '%s' and '%s' of oneof '%s' are both set",
                                 g->name, f->name, m->oneofs[f->oneof]);
            }
        }
        if (field_value(j, e, f) < 0)
            return -1;
        pop(j, at);
    }
    j->depth--;
    return 0;
}

int pb_validate_json(const void *impl, const char *json, size_t len, schema_error *err)
{
    const pb_schema *s = impl;
    const pb_file *f = pb_main(s);
    const pb_msg *m = NULL;
    for (size_t i = 0; i < f->nmsgs && !m; i++)
        if (!f->msgs[i]->is_group)
            m = f->msgs[i];
    if (!m) {
        schema_set_error(err, "", "type", "the schema has no message");
        return -1;
    }
    json_error_t jerr;
    json_t *v = json_loadb(json, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    if (!v) {
        schema_set_error(err, "", "json", "invalid JSON: %s", jerr.text);
        return -1;
    }
    J j = {.err = err};
    int rc = message(&j, v, m);
    json_decref(v);
    return rc;
}
