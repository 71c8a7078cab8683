/*
 * protobuf_wire.c: validation of a Protobuf payload, on the produce path: no allocation, no
 * lock, one pass over the bytes, recursion bounded by SCHEMA_MAX_DEPTH.
 *
 * The payload (after Confluent's magic byte and schema id) starts with the message indexes
 * that select the message type: a zigzag varint count, then that many zigzag varint indexes,
 * the first among the file's top-level messages, each next among the previous one's nested
 * messages; the count 0 (the single byte 0) means [0], the first message. Then comes the
 * message's binary encoding, read to its last byte:
 *
 *   tag        varint: field number << 3 | wire type (0 varint, 1 64-bit, 2 length-delimited,
 *              3 start group, 4 end group, 5 32-bit; 6 and 7 do not exist)
 *   varint     at most 10 bytes
 *   length     a varint, then that many bytes, within the enclosing message
 *
 * A known field must come with its declared wire type: varint for the integers, bool and
 * enums, 64-bit for double, fixed64 and sfixed64, 32-bit for float, fixed32, sfixed32,
 * length-delimited for strings, bytes, messages, maps and packed repeated scalars (both packed
 * and unpacked are accepted for a repeated scalar, as parsers must), groups for proto2 group
 * fields. Nested messages and map entries are validated recursively; strings of proto3 files
 * must be UTF-8, as protobuf's parsers require; enums accept any value (open in proto3, kept
 * as unknown in proto2). Unknown fields are skipped by their wire type but must be well formed.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/base.h"
#include "schema/protobuf_int.h"

typedef struct V {
    const pb_schema *s;
    schema_error *err;
    /* The fields being decoded, outermost first, for the error's path. */
    const char *stack[SCHEMA_MAX_DEPTH + 2];
    int depth;
} V;

static int vfail(V *v, const char *rule, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int vfail(V *v, const char *rule, const char *fmt, ...)
{
    if (!v->err)
        return -1;
    char path[256];
    size_t k = 0;
    path[0] = 0;
    for (int i = 0; i < v->depth && k < sizeof(path) - 1; i++) {
        int w = snprintf(path + k, sizeof(path) - k, "/%s", v->stack[i]);
        if (w < 0)
            break;
        k += (size_t)w;
        if (k >= sizeof(path))
            k = sizeof(path) - 1;
    }
    char msg[sizeof(v->err->message)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    schema_set_error(v->err, path, rule, "%s", msg);
    return -1;
}

/* A varint: 0 and *out, -1 when the bytes end inside it, -2 when it runs past 10 bytes. */
static int varint(const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
    const uint8_t *p = *pp;
    uint64_t x = 0;
    for (int i = 0; i < 10; i++) {
        if (p >= end)
            return -1;
        uint8_t b = *p++;
        x |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *pp = p;
            *out = x;
            return 0;
        }
    }
    return -2;
}

static int read_varint(V *v, const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
    int rc = varint(pp, end, out);
    if (rc == -1)
        return vfail(v, "truncated", "the payload ends inside a varint");
    if (rc == -2)
        return vfail(v, "varint", "a varint is longer than 10 bytes");
    return 0;
}

/* Skips a value of wire type wt (the field's tag read); for a group, up to its end tag. */
static int skip(V *v, const uint8_t **pp, const uint8_t *end, int wt, uint32_t number, int depth)
{
    uint64_t x;
    switch (wt) {
    case 0:
        return read_varint(v, pp, end, &x);
    case 1:
    case 5: {
        size_t w = wt == 1 ? 8 : 4;
        if ((size_t)(end - *pp) < w)
            return vfail(v, "truncated", "the payload ends inside a %zu-byte value", w);
        *pp += w;
        return 0;
    }
    case 2:
        if (read_varint(v, pp, end, &x) < 0)
            return -1;
        if (x > (uint64_t)(end - *pp))
            return vfail(v, "truncated", "a length of %llu runs past the end of its message",
                         (unsigned long long)x);
        *pp += x;
        return 0;
    case 3:
        if (depth > SCHEMA_MAX_DEPTH)
            return vfail(v, "depth", "groups are nested more than %d deep", SCHEMA_MAX_DEPTH);
        for (;;) {
            if (read_varint(v, pp, end, &x) < 0)
                return -1;
            uint32_t n = (uint32_t)(x >> 3);
            int w = (int)(x & 7);
            if (x > UINT32_MAX || n == 0)
                return vfail(v, "tag", "invalid tag %llu", (unsigned long long)x);
            if (w == 4) {
                if (n != number)
                    return vfail(v, "group", "a group of field %u ends with field %u", number, n);
                return 0;
            }
            if (w > 5)
                return vfail(v, "wire-type", "field %u has wire type %d, which does not exist", n,
                             w);
            if (skip(v, pp, end, w, n, depth + 1) < 0)
                return -1;
        }
    default:
        return vfail(v, "wire-type", "wire type %d where none was expected", wt);
    }
}

static const pb_field *find(const pb_msg *m, uint32_t number)
{
    size_t lo = 0, hi = m->nfields;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const pb_field *f = m->by_number[mid];
        if ((uint32_t)f->number == number)
            return f;
        if ((uint32_t)f->number < number)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static int message(V *v, const uint8_t **pp, const uint8_t *end, const pb_msg *m,
                   uint32_t group_number);

static const char *wire_name(int wt)
{
    static const char *const n[] = {
        "varint", "64-bit", "length-delimited", "start-group", "end-group", "32-bit", "6", "7"};
    return n[wt & 7];
}

/* A value of a known scalar type whose tag said wire type wt. */
static int scalar(V *v, const uint8_t **pp, const uint8_t *end, int type, int wt, bool utf8)
{
    int want = pb_wire_type(type);
    if (wt != want)
        return vfail(v, "wire-type", "a %s field came with wire type %s instead of %s",
                     pb_type_name(type), wire_name(wt), wire_name(want));
    if (wt != 2)
        return skip(v, pp, end, wt, 0, 0);
    uint64_t len;
    if (read_varint(v, pp, end, &len) < 0)
        return -1;
    if (len > (uint64_t)(end - *pp))
        return vfail(v, "truncated", "a length of %llu runs past the end of its message",
                     (unsigned long long)len);
    if (type == PB_T_STRING && utf8 && !td_utf8_valid(*pp, len))
        return vfail(v, "utf8", "a string field is not valid UTF-8");
    *pp += len;
    return 0;
}

/* A map entry: key (1) and value (2), each optional, other fields skipped. */
static int map_entry(V *v, const uint8_t *p, const uint8_t *end, const pb_field *f, bool utf8)
{
    while (p < end) {
        uint64_t tag;
        if (read_varint(v, &p, end, &tag) < 0)
            return -1;
        uint32_t n = (uint32_t)(tag >> 3);
        int wt = (int)(tag & 7);
        if (tag > UINT32_MAX || n == 0 || wt > 5 || wt == 4)
            return vfail(v, "tag", "invalid tag %llu in a map entry", (unsigned long long)tag);
        int rc;
        if (n == 1) {
            rc = scalar(v, &p, end, f->key_type, wt, utf8);
        } else if (n == 2 && f->type == PB_T_MESSAGE) {
            if (wt != 2)
                return vfail(v, "wire-type", "a map's message value came with wire type %s",
                             wire_name(wt));
            uint64_t len;
            if (read_varint(v, &p, end, &len) < 0)
                return -1;
            if (len > (uint64_t)(end - p))
                return vfail(v, "truncated", "a length of %llu runs past the end of its entry",
                             (unsigned long long)len);
            const uint8_t *q = p;
            rc = message(v, &q, p + len, f->msg, 0);
            p += len;
        } else if (n == 2) {
            rc = scalar(v, &p, end, f->type, wt, utf8);
        } else {
            rc = skip(v, &p, end, wt, n, v->depth);
        }
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* A packed run of a repeated scalar: whole elements only. */
static int packed(V *v, const uint8_t **pp, const uint8_t *end, int type)
{
    uint64_t len;
    if (read_varint(v, pp, end, &len) < 0)
        return -1;
    if (len > (uint64_t)(end - *pp))
        return vfail(v, "truncated", "a length of %llu runs past the end of its message",
                     (unsigned long long)len);
    const uint8_t *p = *pp, *e = p + len;
    int wt = pb_wire_type(type);
    if (wt == 1 || wt == 5) {
        if (len % (wt == 1 ? 8 : 4))
            return vfail(v, "truncated", "a packed %s run of %llu bytes is not whole elements",
                         pb_type_name(type), (unsigned long long)len);
    } else {
        while (p < e) {
            uint64_t x;
            if (read_varint(v, &p, e, &x) < 0)
                return -1;
        }
    }
    *pp = e;
    return 0;
}

/* One known field's value; utf8: the message is of a proto3 file. */
static int field_value(V *v, const uint8_t **pp, const uint8_t *end, const pb_field *f, int wt,
                       bool utf8)
{
    if (f->type == PB_T_GROUP) {
        if (wt != 3)
            return vfail(v, "wire-type", "a group field came with wire type %s", wire_name(wt));
        return message(v, pp, end, f->msg, (uint32_t)f->number);
    }
    if (f->is_map || f->type == PB_T_MESSAGE) {
        if (wt != 2)
            return vfail(v, "wire-type",
                         "a %s field came with wire type %s instead of "
                         "length-delimited",
                         f->is_map ? "map" : "message", wire_name(wt));
        uint64_t len;
        if (read_varint(v, pp, end, &len) < 0)
            return -1;
        if (len > (uint64_t)(end - *pp))
            return vfail(v, "truncated", "a length of %llu runs past the end of its message",
                         (unsigned long long)len);
        const uint8_t *q = *pp, *e = q + len;
        *pp = e;
        if (f->is_map)
            return map_entry(v, q, e, f, utf8);
        return message(v, &q, e, f->msg, 0);
    }
    if (f->label == PB_L_REPEATED && wt == 2 && pb_type_is_scalar_numeric(f->type))
        return packed(v, pp, end, f->type);
    return scalar(v, pp, end, f->type, wt, utf8);
}

/* A message's fields up to end, or up to the end tag of group group_number. */
static int message(V *v, const uint8_t **pp, const uint8_t *end, const pb_msg *m,
                   uint32_t group_number)
{
    if (v->depth >= SCHEMA_MAX_DEPTH)
        return vfail(v, "depth", "messages are nested more than %d deep", SCHEMA_MAX_DEPTH);
    bool utf8 = m->file->syntax == 3;
    const uint8_t *p = *pp;
    /* The required fields seen, as protobuf's parsers refuse a message without one; a message
     * with more than 64 of them has the rest unchecked, to stay without allocation. */
    uint64_t seen = 0;
    while (p < end) {
        uint64_t tag;
        if (read_varint(v, &p, end, &tag) < 0)
            return -1;
        uint32_t n = (uint32_t)(tag >> 3);
        int wt = (int)(tag & 7);
        if (tag > UINT32_MAX || n == 0)
            return vfail(v, "tag", "invalid tag %llu in message %s", (unsigned long long)tag,
                         m->full);
        if (wt > 5)
            return vfail(v, "wire-type", "field %u of %s has wire type %d, which does not exist", n,
                         m->full, wt);
        if (wt == 4) {
            if (group_number && n == group_number) {
                group_number = 0; /* ended */
                break;
            }
            return vfail(v, "group", "an unexpected end of group (field %u) in %s", n, m->full);
        }
        const pb_field *f = find(m, n);
        int rc;
        if (!f) {
            rc = skip(v, &p, end, wt, n, v->depth);
        } else {
            if (f->req_index >= 0 && f->req_index < 64)
                seen |= (uint64_t)1 << f->req_index;
            v->stack[v->depth++] = f->name;
            rc = field_value(v, &p, end, f, wt, utf8);
            if (rc == 0)
                v->depth--;
        }
        if (rc < 0)
            return -1;
    }
    if (group_number)
        return vfail(v, "truncated", "the payload ends inside group %s", m->full);
    if (m->nrequired) {
        size_t n = m->nrequired < 64 ? m->nrequired : 64;
        uint64_t all = n == 64 ? UINT64_MAX : ((uint64_t)1 << n) - 1;
        if ((seen & all) != all) {
            for (size_t i = 0; i < m->nfields; i++) {
                const pb_field *f = &m->fields[i];
                if (f->req_index >= 0 && f->req_index < 64 && !(seen >> f->req_index & 1))
                    return vfail(v, "required", "required field '%s' of %s is missing", f->name,
                                 m->full);
            }
        }
    }
    *pp = p;
    return 0;
}

/* The messages Confluent's indexes count: the declared ones, groups' bodies left out. */
static const pb_msg *nth(pb_msg *const *v, size_t n, uint64_t index)
{
    for (size_t i = 0; i < n; i++)
        if (!v[i]->is_group && index-- == 0)
            return v[i];
    return NULL;
}

static int64_t unzigzag(uint64_t x)
{
    return (int64_t)(x >> 1) ^ -(int64_t)(x & 1);
}

int pb_validate(const void *impl, const uint8_t *p, size_t n, schema_error *err)
{
    const pb_schema *s = impl;
    V v = {.s = s, .err = err};
    const uint8_t *end = p + n;
    uint64_t x;
    if (read_varint(&v, &p, end, &x) < 0)
        return vfail(&v, "message-index", "the payload does not start with message indexes");
    int64_t count = unzigzag(x);
    if (count < 0 || count > SCHEMA_MAX_DEPTH)
        return vfail(&v, "message-index", "%lld message indexes", (long long)count);
    const pb_file *f = pb_main(s);
    const pb_msg *m = NULL;
    if (count == 0) {
        m = nth(f->msgs, f->nmsgs, 0);
    } else {
        for (int64_t i = 0; i < count; i++) {
            if (read_varint(&v, &p, end, &x) < 0)
                return -1;
            int64_t idx = unzigzag(x);
            m = idx < 0  ? NULL
                : i == 0 ? nth(f->msgs, f->nmsgs, (uint64_t)idx)
                         : nth(m->msgs, m->nmsgs, (uint64_t)idx);
            if (!m)
                return vfail(&v, "message-index",
                             "message index %lld (at position %lld) names no message of the "
                             "schema",
                             (long long)idx, (long long)i);
        }
    }
    if (!m)
        return vfail(&v, "message-index", "the schema has no message");
    return message(&v, &p, end, m, 0);
}
