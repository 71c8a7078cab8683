/*
 * avro_json.c: a datum in Avro's JSON encoding (specification, "JSON Encoding") to the binary
 * encoding, for the command line's `produce --schema` and for schema_validate_json.
 *
 * The JSON encoding: null, booleans and numbers as themselves (floats and doubles also as the
 * strings "NaN", "Infinity", "-Infinity"); strings as strings; bytes and fixed as strings whose
 * code points 0-255 are the bytes; enums as their symbol; records as objects (a missing field
 * takes its default, keys the schema does not name are ignored, as Java's JsonDecoder does);
 * arrays as arrays; maps as objects; a union's value as null or {"<branch name>": value}, the
 * name being a named type's full name (its short name is accepted too) or the type's name.
 *
 * Accepted beyond the specification, for values written by hand: a union's value written
 * plainly, when a branch takes that kind of JSON value: the first such branch is used (null
 * for null; for an object, the first record whose fields without defaults are all present,
 * else the first map). The choice looks at the value's top only, so it costs no trial
 * encodings (whose cost would multiply with nesting).
 *
 * A field's default is written as the specification reads it: a union's default is a value of
 * its first branch, plainly.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "schema/avro_int.h"

typedef struct enc {
    av_buf *b;
    schema_error *err;
} enc;

static int fail(enc *e, const char *rule, const char *msg, const av_node *n)
{
    const char *t = n ? (n->fullname ? n->fullname : av_kind_names[n->kind]) : "";
    schema_set_error(e->err, "", rule, "%s%s%s", msg, n ? ": expected " : "", t);
    return -1;
}

static void put_long(av_buf *b, int64_t v)
{
    uint64_t u = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    uint8_t t[10];
    size_t k = 0;
    while (u >= 0x80) {
        t[k++] = (uint8_t)(u | 0x80);
        u >>= 7;
    }
    t[k++] = (uint8_t)u;
    av_buf_put(b, t, k);
}

/* A string of code points 0-255 as bytes; -1 if a code point is larger. The output is never
 * longer than the input, so it is decoded in place into a copy. */
static int latin1(const char *s, size_t n, uint8_t *out, size_t *outn)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        uint8_t c = (uint8_t)s[i];
        if (c < 0x80) {
            out[o++] = c;
            i++;
        } else if ((c == 0xc2 || c == 0xc3) && i + 1 < n) {
            out[o++] = (uint8_t)(((c & 0x03) << 6) | ((uint8_t)s[i + 1] & 0x3f));
            i += 2;
        } else {
            return -1;
        }
    }
    *outn = o;
    return 0;
}

static bool number_ok(const json_t *v)
{
    if (json_is_number(v))
        return true;
    const char *s = json_string_value(v);
    return s && (!strcmp(s, "NaN") || !strcmp(s, "Infinity") || !strcmp(s, "-Infinity"));
}

static double number_of(const json_t *v)
{
    if (json_is_number(v))
        return json_number_value(v);
    const char *s = json_string_value(v);
    return !strcmp(s, "NaN") ? NAN : s[0] == '-' ? -INFINITY : INFINITY;
}

static bool symbol_index(const av_node *n, const char *s, size_t *at)
{
    *at = av_symbol_index(n, s);
    return *at != SIZE_MAX;
}

static bool record_shape(const av_node *n, const json_t *v)
{
    for (size_t i = 0; i < n->nfields; i++)
        if (!n->fields[i].def && !json_object_get(v, n->fields[i].name))
            return false;
    return true;
}

/* Whether a branch takes this kind of JSON value (the top only). */
static bool takes(const av_node *b, const json_t *v)
{
    size_t at;
    switch (b->kind) {
    case AV_NULL:
        return json_is_null(v);
    case AV_BOOLEAN:
        return json_is_boolean(v);
    case AV_INT:
        return json_is_integer(v) && json_integer_value(v) >= INT32_MIN &&
               json_integer_value(v) <= INT32_MAX;
    case AV_LONG:
        return json_is_integer(v);
    case AV_FLOAT:
    case AV_DOUBLE:
        return number_ok(v);
    case AV_STRING:
    case AV_BYTES:
        return json_is_string(v);
    case AV_ENUM:
        return json_is_string(v) && symbol_index(b, json_string_value(v), &at);
    case AV_FIXED: {
        if (!json_is_string(v))
            return false;
        uint8_t *t = malloc(json_string_length(v) + 1);
        size_t n = 0;
        bool ok = t && !latin1(json_string_value(v), json_string_length(v), t, &n) && n == b->size;
        free(t);
        return ok;
    }
    case AV_ARRAY:
        return json_is_array(v);
    case AV_MAP:
        return json_is_object(v);
    case AV_RECORD:
        return json_is_object(v) && record_shape(b, v);
    default:
        return false;
    }
}

static int encode(enc *e, const av_node *n, const json_t *v, int depth, bool def);

static int encode_union(enc *e, const av_node *n, const json_t *v, int depth, bool def)
{
    size_t pick = n->nbranches;
    const json_t *inner = v;
    if (def) {
        pick = 0;
    } else if (json_is_object(v) && json_object_size(v) == 1) {
        const char *k = json_object_iter_key(json_object_iter((json_t *)v));
        for (size_t i = 0; i < n->nbranches && pick == n->nbranches; i++) {
            const av_node *b = n->branches[i];
            if ((b->fullname && (!strcmp(k, b->fullname) || !strcmp(k, b->name))) ||
                (!b->fullname && !strcmp(k, av_kind_names[b->kind]))) {
                pick = i;
                inner = json_object_iter_value(json_object_iter((json_t *)v));
            }
        }
    }
    for (size_t i = 0; i < n->nbranches && pick == n->nbranches; i++)
        if (takes(n->branches[i], v))
            pick = i;
    for (size_t i = 0; i < n->nbranches && pick == n->nbranches; i++)
        if (n->branches[i]->kind == AV_MAP && json_is_object(v))
            pick = i;
    if (pick >= n->nbranches)
        return fail(e, "union", "the value fits no branch of the union", NULL);
    put_long(e->b, (int64_t)pick);
    /* A union is no level of nesting of its own: it cannot hold a union directly. */
    return encode(e, n->branches[pick], inner, depth, def);
}

static int encode_record(enc *e, const av_node *n, const json_t *v, int depth, bool def)
{
    if (!json_is_object(v))
        return fail(e, "type", "not an object", n);
    for (size_t i = 0; i < n->nfields; i++) {
        const av_field *f = &n->fields[i];
        const json_t *fv = json_object_get(v, f->name);
        bool fdef = def;
        if (!fv) {
            if (!f->def) {
                schema_set_error(e->err, "", "required", "the field %s is missing", f->name);
                av_err_prepend(e->err, f->name, strlen(f->name));
                return -1;
            }
            fv = f->def;
            fdef = true;
        }
        if (encode(e, f->type, fv, depth + 1, fdef)) {
            av_err_prepend(e->err, f->name, strlen(f->name));
            return -1;
        }
    }
    return 0;
}

static int encode_blocks(enc *e, const av_node *n, const json_t *v, int depth, bool def)
{
    if (n->kind == AV_ARRAY) {
        if (!json_is_array(v))
            return fail(e, "type", "not an array", n);
        size_t cnt = json_array_size(v);
        if (cnt)
            put_long(e->b, (int64_t)cnt);
        for (size_t i = 0; i < cnt; i++)
            if (encode(e, n->items, json_array_get(v, i), depth + 1, def)) {
                av_err_prepend_index(e->err, i);
                return -1;
            }
    } else {
        if (!json_is_object(v))
            return fail(e, "type", "not an object", n);
        size_t cnt = json_object_size(v);
        if (cnt)
            put_long(e->b, (int64_t)cnt);
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x)
        {
            size_t kl = strlen(k);
            put_long(e->b, (int64_t)kl);
            av_buf_put(e->b, k, kl);
            if (encode(e, n->items, x, depth + 1, def)) {
                av_err_prepend(e->err, k, kl);
                return -1;
            }
        }
    }
    put_long(e->b, 0);
    return 0;
}

static int encode_bytes(enc *e, const av_node *n, const json_t *v)
{
    if (!json_is_string(v))
        return fail(e, "type", "not a string", n);
    size_t len = json_string_length(v), bn = 0;
    uint8_t *t = malloc(len + 1);
    if (!t)
        return fail(e, "memory", "out of memory", NULL);
    if (latin1(json_string_value(v), len, t, &bn)) {
        free(t);
        return fail(e, "type", "bytes are written with code points 0 to 255", n);
    }
    if (n->kind == AV_FIXED && bn != n->size) {
        free(t);
        schema_set_error(e->err, "", "size", "%zu bytes for a fixed of %zu", bn, n->size);
        return -1;
    }
    if (n->kind == AV_BYTES)
        put_long(e->b, (int64_t)bn);
    av_buf_put(e->b, t, bn);
    free(t);
    return 0;
}

static int encode(enc *e, const av_node *n, const json_t *v, int depth, bool def)
{
    uint8_t t[8];
    if (depth >= SCHEMA_MAX_DEPTH &&
        (n->kind == AV_RECORD || n->kind == AV_ARRAY || n->kind == AV_MAP))
        return fail(e, "depth", "the value nests too deeply", NULL);
    switch (n->kind) {
    case AV_NULL:
        return json_is_null(v) ? 0 : fail(e, "type", "not null", n);
    case AV_BOOLEAN:
        if (!json_is_boolean(v))
            return fail(e, "type", "not a boolean", n);
        av_buf_putc(e->b, json_is_true(v) ? 1 : 0);
        return 0;
    case AV_INT:
    case AV_LONG:
        if (!json_is_integer(v) || (n->kind == AV_INT && (json_integer_value(v) < INT32_MIN ||
                                                          json_integer_value(v) > INT32_MAX)))
            return fail(e, "type", "not an integer in range", n);
        put_long(e->b, json_integer_value(v));
        return 0;
    case AV_FLOAT: {
        if (!number_ok(v))
            return fail(e, "type", "not a number", n);
        float f = (float)number_of(v);
        uint32_t u;
        memcpy(&u, &f, 4);
        for (int k = 0; k < 4; k++)
            t[k] = (uint8_t)(u >> (8 * k));
        av_buf_put(e->b, t, 4);
        return 0;
    }
    case AV_DOUBLE: {
        if (!number_ok(v))
            return fail(e, "type", "not a number", n);
        double d = number_of(v);
        uint64_t u;
        memcpy(&u, &d, 8);
        for (int k = 0; k < 8; k++)
            t[k] = (uint8_t)(u >> (8 * k));
        av_buf_put(e->b, t, 8);
        return 0;
    }
    case AV_STRING:
        if (!json_is_string(v))
            return fail(e, "type", "not a string", n);
        put_long(e->b, (int64_t)json_string_length(v));
        av_buf_put(e->b, json_string_value(v), json_string_length(v));
        return 0;
    case AV_BYTES:
    case AV_FIXED:
        return encode_bytes(e, n, v);
    case AV_ENUM: {
        size_t at;
        if (!json_is_string(v) || !symbol_index(n, json_string_value(v), &at))
            return fail(e, "enum", "not a symbol of the enum", n);
        put_long(e->b, (int64_t)at);
        return 0;
    }
    case AV_RECORD:
        return encode_record(e, n, v, depth, def);
    case AV_UNION:
        return encode_union(e, n, v, depth, def);
    default:
        return encode_blocks(e, n, v, depth, def);
    }
}

int av_from_json(const av_schema *s, const char *json, size_t len, uint8_t **out, size_t *out_len,
                 schema_error *err)
{
    json_error_t je;
    json_t *v = json_loadb(json, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!v) {
        schema_set_error(err, "", "syntax", "invalid JSON at line %d column %d: %s", je.line,
                         je.column, je.text);
        return -1;
    }
    av_buf b = {0};
    if (*out && *out_len)
        av_buf_put(&b, *out, *out_len);
    enc e = {.b = &b, .err = err};
    if (err)
        err->path[0] = 0;
    int rc = encode(&e, s->root, v, 0, false);
    json_decref(v);
    if (!rc && b.failed)
        rc = fail(&e, "memory", "out of memory", NULL);
    if (rc) {
        free(b.p);
        return -1;
    }
    free(*out);
    *out = (uint8_t *)b.p;
    *out_len = b.n;
    return 0;
}
