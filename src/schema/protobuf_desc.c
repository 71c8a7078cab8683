/*
 * protobuf_desc.c: a schema given as a base64-encoded FileDescriptorProto, turned into .proto
 * text. Confluent's registry accepts both forms, and Confluent's Python client
 * (confluent-kafka's ProtobufSerializer) registers its schemas and their imports in this one: the
 * generated code's serialized descriptor, in base64. The descriptor is decoded here and printed
 * as the .proto file it describes, which is then parsed like any text, so its canonical form,
 * checks and everything after are those of the text.
 *
 * What the descriptor holds (descriptor.proto), as read here:
 *   FileDescriptorProto  1 name, 2 package, 3 dependency, 10 public_dependency,
 *                        11 weak_dependency, 4 message_type, 5 enum_type, 6 service,
 *                        7 extension, 12 syntax
 *   DescriptorProto      1 name, 2 field, 6 extension, 3 nested_type, 4 enum_type,
 *                        5 extension_range {1 start, 2 end (exclusive)}, 8 oneof_decl {1 name},
 *                        7 options {7 map_entry}, 9 reserved_range (exclusive end),
 *                        10 reserved_name
 *   FieldDescriptorProto 1 name, 3 number, 4 label, 5 type, 6 type_name, 2 extendee,
 *                        7 default_value, 9 oneof_index, 10 json_name, 8 options {2 packed,
 *                        3 deprecated}, 17 proto3_optional
 *   EnumDescriptorProto  1 name, 2 value {1 name, 2 number}, 3 options {2 allow_alias},
 *                        4 reserved_range (inclusive end), 5 reserved_name
 *   ServiceDescriptorProto 1 name, 2 method {1 name, 2 input_type, 3 output_type,
 *                        5 client_streaming, 6 server_streaming}
 * Map fields (a repeated field of a nested map_entry message) print as map<K, V>, groups as
 * groups, proto3 optional fields with their label and without their synthetic oneof. Options
 * other than those named above are not carried over.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/protobuf_int.h"

typedef struct sl {
    const uint8_t *p;
    size_t n;
} sl;

typedef struct out {
    char *p;
    size_t n, cap;
    bool oom, bad;
    int depth;
} out;

static void put(out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(out *o, const char *fmt, ...)
{
    if (o->oom)
        return;
    va_list ap;
    va_start(ap, fmt);
    char tmp[512];
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        o->bad = true;
        return;
    }
    if (o->n + (size_t)n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 4096;
        while (cap < o->n + (size_t)n + 1)
            cap *= 2;
        char *p = realloc(o->p, cap);
        if (!p) {
            o->oom = true;
            return;
        }
        o->p = p;
        o->cap = cap;
    }
    memcpy(o->p + o->n, tmp, (size_t)n + 1);
    o->n += (size_t)n;
}

/* The next field of a message: 0 and its number, wire type and value (a varint's value, or the
 * bytes of a length-delimited one); 1 at the end; -1 when malformed. Fixed-width values are
 * skipped over (the descriptor has none that is read here). */
static int next(sl *m, uint32_t *num, int *wt, uint64_t *v, sl *sub)
{
    if (m->n == 0)
        return 1;
    uint64_t x = 0;
    for (int i = 0;; i++) {
        if (i == 10 || m->n == 0)
            return -1;
        uint8_t b = *m->p++;
        m->n--;
        x |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80))
            break;
    }
    *num = (uint32_t)(x >> 3);
    *wt = (int)(x & 7);
    if (x >> 32 || *num == 0)
        return -1;
    switch (*wt) {
    case 0:
        *v = 0;
        for (int i = 0;; i++) {
            if (i == 10 || m->n == 0)
                return -1;
            uint8_t b = *m->p++;
            m->n--;
            *v |= (uint64_t)(b & 0x7f) << (7 * i);
            if (!(b & 0x80))
                return 0;
        }
    case 1:
    case 5: {
        size_t w = *wt == 1 ? 8 : 4;
        if (m->n < w)
            return -1;
        m->p += w;
        m->n -= w;
        return 0;
    }
    case 2: {
        uint64_t len = 0;
        for (int i = 0;; i++) {
            if (i == 10 || m->n == 0)
                return -1;
            uint8_t b = *m->p++;
            m->n--;
            len |= (uint64_t)(b & 0x7f) << (7 * i);
            if (!(b & 0x80))
                break;
        }
        if (len > m->n)
            return -1;
        sub->p = m->p;
        sub->n = (size_t)len;
        m->p += len;
        m->n -= len;
        return 0;
    }
    default:
        return -1;
    }
}

/* A string field's value, as a C string in a static-size buffer: names and type names. Refuses
 * (marks bad) what could not be a name, so the text printed stays a .proto file. */
static const char *name_of(out *o, sl s, char *buf, size_t size, bool dots)
{
    if (s.n == 0 || s.n >= size) {
        o->bad = true;
        return "x";
    }
    for (size_t i = 0; i < s.n; i++) {
        char c = (char)s.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (i && c >= '0' && c <= '9') || (dots && (c == '.' || (c >= '0' && c <= '9'))))) {
            o->bad = true;
            return "x";
        }
    }
    memcpy(buf, s.p, s.n);
    buf[s.n] = 0;
    return buf;
}

static void put_quoted(out *o, sl s, bool raw_escapes)
{
    put(o, "\"");
    for (size_t i = 0; i < s.n && !o->bad; i++) {
        unsigned char c = s.p[i];
        if (raw_escapes && c >= 0x20 && c < 0x7f && c != '"')
            put(o, "%c", c); /* already C-escaped by protoc (bytes defaults) */
        else if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
            put(o, "%c", c);
        else
            put(o, "\\%03o", c);
    }
    put(o, "\"");
}

static const char *const scalar_names[19] = {NULL,       "double",   "float",   "int64",  "uint64",
                                             "int32",    "fixed64",  "fixed32", "bool",   "string",
                                             NULL,       NULL,       "bytes",   "uint32", NULL,
                                             "sfixed32", "sfixed64", "sint32",  "sint64"};

typedef struct field {
    sl name, type_name, extendee, def, json_name;
    uint64_t number, label, type, oneof;
    bool has_oneof, proto3_optional, has_packed, packed, deprecated;
} field;

static int read_field(sl m, field *f)
{
    memset(f, 0, sizeof(*f));
    uint32_t num;
    int wt, rc;
    uint64_t v = 0;
    sl sub = {0};
    while ((rc = next(&m, &num, &wt, &v, &sub)) == 0) {
        if (wt == 2) {
            if (num == 1)
                f->name = sub;
            else if (num == 6)
                f->type_name = sub;
            else if (num == 2)
                f->extendee = sub;
            else if (num == 7)
                f->def = sub;
            else if (num == 10)
                f->json_name = sub;
            else if (num == 8) {
                uint32_t n2;
                int w2, r2;
                uint64_t v2 = 0;
                sl s2;
                while ((r2 = next(&sub, &n2, &w2, &v2, &s2)) == 0) {
                    if (w2 == 0 && n2 == 2) {
                        f->has_packed = true;
                        f->packed = v2 != 0;
                    } else if (w2 == 0 && n2 == 3) {
                        f->deprecated = v2 != 0;
                    }
                }
                if (r2 < 0)
                    return -1;
            }
        } else if (wt == 0) {
            if (num == 3)
                f->number = v;
            else if (num == 4)
                f->label = v;
            else if (num == 5)
                f->type = v;
            else if (num == 9) {
                f->oneof = v;
                f->has_oneof = true;
            } else if (num == 17)
                f->proto3_optional = v != 0;
        }
    }
    return rc < 0 ? -1 : 0;
}

/* A DescriptorProto read into arrays (views into the descriptor's bytes). */
typedef struct nested {
    sl name, body;
    bool map_entry;
} nested;

typedef struct msgd {
    sl name;
    field *fields, *exts;
    size_t nfields, nexts;
    sl *oneofs, *enums, *rnames;
    size_t noneofs, nenums, nrnames;
    nested *nested;
    size_t nnested;
    uint64_t (*ext)[2], (*res)[2];
    size_t next, nres;
} msgd;

static void msgd_free(msgd *d)
{
    free(d->fields);
    free(d->exts);
    free(d->oneofs);
    free(d->enums);
    free(d->rnames);
    free(d->nested);
    free(d->ext);
    free(d->res);
}

/* Appends one element to a growing array (capacities in powers of two). */
static bool grow(void *arrp, size_t n, size_t size)
{
    void **arr = arrp;
    if (n && (n & (n - 1)))
        return true;
    void *v = realloc(*arr, (n ? n * 2 : 1) * size);
    if (!v)
        return false;
    *arr = v;
    return true;
}

/* A range message {1 start, 2 end}. */
static bool range_of(sl m, uint64_t r[2])
{
    uint32_t num;
    int wt, rc;
    uint64_t v = 0;
    sl sub;
    r[0] = r[1] = 0;
    while ((rc = next(&m, &num, &wt, &v, &sub)) == 0)
        if (wt == 0 && (num == 1 || num == 2))
            r[num - 1] = v;
    return rc > 0;
}

static bool is_map_entry(sl m, sl *name)
{
    uint32_t num;
    int wt;
    uint64_t v;
    sl sub;
    bool entry = false;
    while (next(&m, &num, &wt, &v, &sub) == 0) {
        if (num == 1 && wt == 2)
            *name = sub;
        else if (num == 7 && wt == 2) {
            sl o = sub, s3;
            uint32_t n3;
            int w3;
            uint64_t v3;
            while (next(&o, &n3, &w3, &v3, &s3) == 0)
                if (n3 == 7 && w3 == 0 && v3)
                    entry = true;
        }
    }
    return entry;
}

static int read_msg(sl m, msgd *d)
{
    memset(d, 0, sizeof(*d));
    uint32_t num;
    int wt, rc;
    uint64_t v = 0;
    sl sub = {0};
    while ((rc = next(&m, &num, &wt, &v, &sub)) == 0) {
        if (wt != 2)
            continue;
        bool ok = true;
        if (num == 1) {
            d->name = sub;
        } else if (num == 2 || num == 6) {
            field **arr = num == 2 ? &d->fields : &d->exts;
            size_t *n = num == 2 ? &d->nfields : &d->nexts;
            ok = grow(arr, *n, sizeof(field)) && read_field(sub, &(*arr)[(*n)++]) == 0;
        } else if (num == 3) {
            ok = grow(&d->nested, d->nnested, sizeof(nested));
            if (ok) {
                nested *x = &d->nested[d->nnested++];
                x->body = sub;
                x->name = (sl){0};
                x->map_entry = is_map_entry(sub, &x->name);
            }
        } else if (num == 4) {
            ok = grow(&d->enums, d->nenums, sizeof(sl));
            if (ok)
                d->enums[d->nenums++] = sub;
        } else if (num == 5 || num == 9) {
            uint64_t(**arr)[2] = num == 5 ? &d->ext : &d->res;
            size_t *n = num == 5 ? &d->next : &d->nres;
            ok = grow(arr, *n, sizeof(**arr)) && range_of(sub, (*arr)[(*n)++]);
        } else if (num == 8) {
            ok = grow(&d->oneofs, d->noneofs, sizeof(sl));
            if (ok) {
                sl o = sub, nm = {0}, s2;
                uint32_t n2;
                int w2;
                uint64_t v2;
                while (next(&o, &n2, &w2, &v2, &s2) == 0)
                    if (n2 == 1 && w2 == 2)
                        nm = s2;
                if (!nm.p)
                    return -1;
                d->oneofs[d->noneofs++] = nm;
            }
        } else if (num == 10) {
            ok = grow(&d->rnames, d->nrnames, sizeof(sl));
            if (ok)
                d->rnames[d->nrnames++] = sub;
        }
        /* Bounds that keep the printing's lookups (linear in the nested types) cheap. */
        if (!ok || d->nfields > 8192 || d->nnested > 512)
            return -1;
    }
    return rc < 0 ? -1 : 0;
}

/* The last part of a type name (".p.M.XEntry" -> "XEntry"). */
static sl last_part(sl s)
{
    if (!s.p)
        return s;
    size_t i = s.n;
    while (i > 0 && s.p[i - 1] != '.')
        i--;
    return (sl){s.p + i, s.n - i};
}

static const nested *nested_named(const msgd *d, sl name)
{
    for (size_t i = 0; i < d->nnested; i++)
        if (name.n && d->nested[i].name.n == name.n && !memcmp(d->nested[i].name.p, name.p, name.n))
            return &d->nested[i];
    return NULL;
}

static void message(out *o, sl m, int syntax, int indent, bool body_only);

static void type_of(out *o, const field *f)
{
    char buf[256];
    if (f->type < 19 && scalar_names[f->type])
        put(o, "%s", scalar_names[f->type]);
    else if (f->type == 11 || f->type == 14)
        put(o, "%s", name_of(o, f->type_name, buf, sizeof(buf), true));
    else
        o->bad = true;
}

/* A default's constant: a number, inf, nan or an enum value's name. */
static void put_constant(out *o, sl s)
{
    if (s.n == 0 || s.n > 100) {
        o->bad = true;
        return;
    }
    for (size_t i = 0; i < s.n; i++) {
        char c = (char)s.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-' || c == '+')) {
            o->bad = true;
            return;
        }
    }
    put(o, "%.*s", (int)s.n, (const char *)s.p);
}

static void field_options(out *o, const field *f)
{
    const char *sep = " [";
    if (f->has_packed) {
        put(o, "%spacked = %s", sep, f->packed ? "true" : "false");
        sep = ", ";
    }
    if (f->def.p) {
        put(o, "%sdefault = ", sep);
        if (f->type == 9 || f->type == 12)
            put_quoted(o, f->def, f->type == 12);
        else
            put_constant(o, f->def);
        sep = ", ";
    }
    if (f->deprecated) {
        put(o, "%sdeprecated = true", sep);
        sep = ", ";
    }
    /* json_name only when it is not the default (lowerCamelCase of the name). */
    char camel[256];
    size_t k = 0;
    bool up = false;
    for (size_t i = 0; i < f->name.n && k + 1 < sizeof(camel); i++) {
        char c = (char)f->name.p[i];
        if (c == '_') {
            up = true;
            continue;
        }
        camel[k++] = up && c >= 'a' && c <= 'z' ? (char)(c - 32) : c;
        up = false;
    }
    if (f->json_name.n && (f->json_name.n != k || memcmp(f->json_name.p, camel, k))) {
        put(o, "%sjson_name = ", sep);
        put_quoted(o, f->json_name, false);
        sep = ", ";
    }
    put(o, "%s;\n", sep[0] == ',' ? "]" : "");
}

static void field_line(out *o, const msgd *d, const field *f, int syntax, int indent, bool in_oneof)
{
    char buf[256];
    put(o, "%*s", indent * 2, "");
    const nested *x =
        f->type == 11 || f->type == 10 ? nested_named(d, last_part(f->type_name)) : NULL;
    if (x && x->map_entry && f->label == 3) {
        msgd e;
        if (read_msg(x->body, &e) < 0 || e.nfields != 2) {
            o->bad = true;
            msgd_free(&e);
            return;
        }
        put(o, "map<");
        type_of(o, &e.fields[0]);
        put(o, ", ");
        type_of(o, &e.fields[1]);
        put(o, "> %s = %llu", name_of(o, f->name, buf, sizeof(buf), false),
            (unsigned long long)f->number);
        msgd_free(&e);
        field_options(o, f);
        return;
    }
    static const char *const labels[] = {"", "optional ", "required ", "repeated "};
    if (!in_oneof && f->label <= 3 && (syntax == 2 || f->label == 3 || f->proto3_optional))
        put(o, "%s", labels[f->label]);
    if (f->type == 10) {
        if (!x) {
            o->bad = true;
            return;
        }
        put(o, "group %s = %llu {\n", name_of(o, x->name, buf, sizeof(buf), false),
            (unsigned long long)f->number);
        message(o, x->body, syntax, indent + 1, true);
        put(o, "%*s}\n", indent * 2, "");
        return;
    }
    type_of(o, f);
    put(o, " %s = %llu", name_of(o, f->name, buf, sizeof(buf), false),
        (unsigned long long)f->number);
    field_options(o, f);
}

static void enum_def(out *o, sl e, int indent)
{
    char buf[256];
    uint32_t num;
    int wt;
    uint64_t v;
    sl sub;
    sl t = e, name = {0};
    while (next(&t, &num, &wt, &v, &sub) == 0)
        if (num == 1 && wt == 2)
            name = sub;
    put(o, "%*senum %s {\n", indent * 2, "", name_of(o, name, buf, sizeof(buf), false));
    t = e;
    while (next(&t, &num, &wt, &v, &sub) == 0) {
        if (wt != 2)
            continue;
        if (num == 3) {
            sl u = sub, s2;
            uint32_t n2;
            int w2;
            uint64_t v2;
            while (next(&u, &n2, &w2, &v2, &s2) == 0)
                if (n2 == 2 && w2 == 0 && v2)
                    put(o, "%*soption allow_alias = true;\n", indent * 2 + 2, "");
        } else if (num == 2) {
            sl u = sub, s2, vn = {0};
            uint32_t n2;
            int w2;
            uint64_t v2, number = 0;
            while (next(&u, &n2, &w2, &v2, &s2) == 0) {
                if (n2 == 1 && w2 == 2)
                    vn = s2;
                else if (n2 == 2 && w2 == 0)
                    number = v2;
            }
            put(o, "%*s%s = %d;\n", indent * 2 + 2, "", name_of(o, vn, buf, sizeof(buf), false),
                (int32_t)(uint32_t)number);
        } else if (num == 4) {
            uint64_t r[2];
            if (range_of(sub, r))
                put(o, "%*sreserved %d to %d;\n", indent * 2 + 2, "", (int32_t)(uint32_t)r[0],
                    (int32_t)(uint32_t)r[1]);
        } else if (num == 5) {
            put(o, "%*sreserved ", indent * 2 + 2, "");
            put_quoted(o, sub, false);
            put(o, ";\n");
        }
    }
    put(o, "%*s}\n", indent * 2, "");
}

static void extensions(out *o, const field *v, size_t n, int syntax, int indent)
{
    char buf[256];
    for (size_t i = 0; i < n; i++) {
        put(o, "%*sextend %s {\n", indent * 2, "",
            name_of(o, v[i].extendee, buf, sizeof(buf), true));
        msgd none = {0};
        field_line(o, &none, &v[i], syntax, indent + 1, false);
        put(o, "%*s}\n", indent * 2, "");
    }
}

/* A message (or, body_only, a group's body) at an indentation. */
static void message(out *o, sl m, int syntax, int indent, bool body_only)
{
    char buf[256];
    msgd d;
    if (++o->depth > SCHEMA_MAX_DEPTH || read_msg(m, &d) < 0) {
        o->bad = true;
        if (o->depth <= SCHEMA_MAX_DEPTH)
            msgd_free(&d);
        o->depth--;
        return;
    }
    if (!body_only)
        put(o, "%*smessage %s {\n", indent * 2, "", name_of(o, d.name, buf, sizeof(buf), false));
    int in = body_only ? indent : indent + 1;
    for (size_t i = 0; i < d.nfields && !o->bad; i++) {
        const field *f = &d.fields[i];
        if (!f->has_oneof || f->proto3_optional) {
            field_line(o, &d, f, syntax, in, false);
            continue;
        }
        /* A oneof prints where its first member is, with all its members. */
        if (f->oneof >= d.noneofs) {
            o->bad = true;
            break;
        }
        if (d.oneofs[f->oneof].p == NULL)
            continue; /* printed already */
        put(o, "%*soneof %s {\n", in * 2, "",
            name_of(o, d.oneofs[f->oneof], buf, sizeof(buf), false));
        for (size_t k = i; k < d.nfields; k++)
            if (d.fields[k].has_oneof && !d.fields[k].proto3_optional &&
                d.fields[k].oneof == f->oneof)
                field_line(o, &d, &d.fields[k], syntax, in + 1, true);
        put(o, "%*s}\n", in * 2, "");
        d.oneofs[f->oneof].p = NULL;
    }
    for (size_t i = 0; i < d.next; i++) {
        if (d.ext[i][1] >= (uint64_t)PB_MAX_FIELD + 1)
            put(o, "%*sextensions %llu to max;\n", in * 2, "", (unsigned long long)d.ext[i][0]);
        else
            put(o, "%*sextensions %llu to %llu;\n", in * 2, "", (unsigned long long)d.ext[i][0],
                (unsigned long long)d.ext[i][1] - 1);
    }
    for (size_t i = 0; i < d.nres; i++)
        put(o, "%*sreserved %llu to %llu;\n", in * 2, "", (unsigned long long)d.res[i][0],
            (unsigned long long)d.res[i][1] - 1);
    for (size_t i = 0; i < d.nrnames; i++) {
        put(o, "%*sreserved ", in * 2, "");
        put_quoted(o, d.rnames[i], false);
        put(o, ";\n");
    }
    for (size_t i = 0; i < d.nnested && !o->bad; i++) {
        /* Map entries and groups' bodies are printed with their fields. */
        bool group = false;
        for (size_t k = 0; k < d.nfields && !group; k++)
            group =
                d.fields[k].type == 10 && d.nested[i].name.n &&
                last_part(d.fields[k].type_name).n == d.nested[i].name.n &&
                !memcmp(last_part(d.fields[k].type_name).p, d.nested[i].name.p, d.nested[i].name.n);
        if (!d.nested[i].map_entry && !group)
            message(o, d.nested[i].body, syntax, in, false);
    }
    for (size_t i = 0; i < d.nenums; i++)
        enum_def(o, d.enums[i], in);
    extensions(o, d.exts, d.nexts, syntax, in);
    if (!body_only)
        put(o, "%*s}\n", indent * 2, "");
    msgd_free(&d);
    o->depth--;
}

static void service(out *o, sl m)
{
    char buf[256], in[256], outb[256];
    uint32_t num;
    int wt;
    uint64_t v;
    sl sub, t = m, name = {0};
    while (next(&t, &num, &wt, &v, &sub) == 0)
        if (num == 1 && wt == 2)
            name = sub;
    put(o, "service %s {\n", name_of(o, name, buf, sizeof(buf), false));
    t = m;
    while (next(&t, &num, &wt, &v, &sub) == 0) {
        if (num != 2 || wt != 2)
            continue;
        sl u = sub, s2, mn = {0}, it = {0}, ot = {0};
        uint32_t n2;
        int w2;
        uint64_t v2;
        bool cs = false, ss = false;
        while (next(&u, &n2, &w2, &v2, &s2) == 0) {
            if (w2 == 2 && n2 == 1)
                mn = s2;
            else if (w2 == 2 && n2 == 2)
                it = s2;
            else if (w2 == 2 && n2 == 3)
                ot = s2;
            else if (w2 == 0 && n2 == 5)
                cs = v2 != 0;
            else if (w2 == 0 && n2 == 6)
                ss = v2 != 0;
        }
        put(o, "  rpc %s (%s%s) returns (%s%s);\n", name_of(o, mn, buf, sizeof(buf), false),
            cs ? "stream " : "", name_of(o, it, in, sizeof(in), true), ss ? "stream " : "",
            name_of(o, ot, outb, sizeof(outb), true));
    }
    put(o, "}\n");
}

/* Prints the file; syntax first, then package, imports, messages, enums, services, extends. */
static void file(out *o, sl f)
{
    char buf[256];
    uint32_t num;
    int wt;
    uint64_t v;
    sl sub, t = f;
    int syntax = 2, rc;
    while ((rc = next(&t, &num, &wt, &v, &sub)) == 0)
        if (num == 12 && wt == 2 && sub.n == 6 && !memcmp(sub.p, "proto3", 6))
            syntax = 3;
    if (rc < 0) {
        o->bad = true;
        return;
    }
    put(o, "syntax = \"proto%d\";\n", syntax);
    for (int pass = 0; pass < 6 && !o->bad; pass++) {
        static const uint32_t order[] = {2, 3, 4, 5, 6, 7};
        uint64_t dep = 0;
        t = f;
        while (next(&t, &num, &wt, &v, &sub) == 0 && !o->bad) {
            if (num != order[pass])
                continue;
            if (num == 2 && wt == 2) {
                put(o, "package %s;\n", name_of(o, sub, buf, sizeof(buf), true));
            } else if (num == 3 && wt == 2) {
                /* public (10) and weak (11) dependencies are named by their index. */
                const char *kind = "";
                sl u = f, s2;
                uint32_t n2;
                int w2;
                uint64_t v2;
                while (next(&u, &n2, &w2, &v2, &s2) == 0)
                    if (w2 == 0 && v2 == dep && (n2 == 10 || n2 == 11))
                        kind = n2 == 10 ? "public " : "weak ";
                put(o, "import %s", kind);
                put_quoted(o, sub, false);
                put(o, ";\n");
                dep++;
            } else if (num == 4 && wt == 2) {
                message(o, sub, syntax, 0, false);
            } else if (num == 5 && wt == 2) {
                enum_def(o, sub, 0);
            } else if (num == 6 && wt == 2) {
                service(o, sub);
            } else if (num == 7 && wt == 2) {
                field x;
                if (read_field(sub, &x) < 0)
                    o->bad = true;
                else
                    extensions(o, &x, 1, syntax, 0);
            }
        }
    }
}

static int b64val(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

int pb_descriptor_text(const char *text, size_t len, char **out_text, size_t *out_len,
                       schema_error *err)
{
    /* Base64 only: a .proto text always has a ';' or a '{' or is blank, never this. */
    size_t pad = 0;
    if (len == 0 || len % 4)
        return 1;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '=' && i + 2 >= len) {
            pad++;
            continue;
        }
        if (pad || b64val((unsigned char)text[i]) < 0)
            return 1;
    }
    size_t n = len / 4 * 3 - pad, k = 0;
    uint8_t *bin = malloc(n + 3);
    if (!bin)
        goto oom;
    for (size_t i = 0; i < len; i += 4) {
        uint32_t x = 0;
        for (int j = 0; j < 4; j++)
            x = x << 6 | (uint32_t)(text[i + j] == '=' ? 0 : b64val((unsigned char)text[i + j]));
        bin[k++] = (uint8_t)(x >> 16);
        bin[k++] = (uint8_t)(x >> 8);
        bin[k++] = (uint8_t)x;
    }
    out o = {0};
    file(&o, (sl){bin, n});
    free(bin);
    if (o.oom) {
        free(o.p);
        goto oom;
    }
    if (o.bad) {
        free(o.p);
        schema_set_error(err, "", "syntax",
                         "the schema is neither .proto text nor a base64-encoded "
                         "FileDescriptorProto that could be read");
        return -1;
    }
    *out_text = o.p;
    *out_len = o.n;
    return 0;
oom:
    schema_set_error(err, "", "memory", "out of memory");
    return -1;
}
