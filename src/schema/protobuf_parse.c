/*
 * protobuf_parse.c: the parser of one .proto file, from its tokens (protobuf_lex.c) to the
 * model of protobuf_int.h. Recursive descent over the grammar of the protobuf language
 * specification (proto2 and proto3): syntax, package, import (public, weak), option, message
 * (fields with labels, scalar and named types, map<K,V>, field options, oneof, nested messages
 * and enums, reserved, extensions, extend, proto2 groups), enum (values, options, reserved),
 * service and rpc. Editions are refused: the canonical form and the rules differ and Confluent
 * clients do not send them yet.
 *
 * The parser checks what one statement shows (numbers in range, a label where proto2 needs one,
 * a default that fits its type); protobuf.c checks what needs the whole file or its imports
 * (duplicate numbers and names, reserved numbers, type names). Nesting is bounded by
 * SCHEMA_MAX_DEPTH, so a hostile file cannot exhaust the stack.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/protobuf_int.h"

typedef struct P {
    const char *text;
    const pb_tok *t;
    size_t i;
    pb_file *f;
    schema_error *err;
    int depth;
} P;

char *pb_strndup(const char *s, size_t n)
{
    char *o = malloc(n + 1);
    if (o) {
        memcpy(o, s, n);
        o[n] = 0;
    }
    return o;
}

/* Grows an array of n elements so that one more fits: capacities are powers of two, so the
 * array is reallocated only when n is one. -1 when out of memory. */
static int grow(void *arrp, size_t n, size_t size)
{
    void **arr = arrp;
    if (n && (n & (n - 1)))
        return 0;
    void *v = realloc(*arr, (n ? n * 2 : 1) * size);
    if (!v)
        return -1;
    *arr = v;
    return 0;
}

static const pb_tok *cur(const P *p)
{
    return &p->t[p->i];
}

__attribute__((format(printf, 3, 4))) static int fail_at(P *p, const pb_tok *t, const char *fmt,
                                                         ...)
{
    char where[32], msg[400];
    snprintf(where, sizeof(where), "%u:%u", t->line, t->col);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    schema_set_error(p->err, where, "syntax", "%s at line %u, column %u", msg, t->line, t->col);
    return -1;
}

static int oom(P *p)
{
    schema_set_error(p->err, "", "memory", "out of memory");
    return -1;
}

static bool is_sym(const P *p, char c)
{
    const pb_tok *t = cur(p);
    return t->kind == PB_TOK_SYM && p->text[t->off] == c;
}

static bool is_word(const P *p, const char *w)
{
    const pb_tok *t = cur(p);
    size_t n = strlen(w);
    return t->kind == PB_TOK_IDENT && t->len == n && memcmp(p->text + t->off, w, n) == 0;
}

static bool next_is_sym(const P *p, char c)
{
    const pb_tok *t = cur(p);
    if (t->kind == PB_TOK_EOF)
        return false;
    t++;
    return t->kind == PB_TOK_SYM && p->text[t->off] == c;
}

/* What a token looks like in a message. */
static const char *shown(const P *p, const pb_tok *t, char *buf, size_t n)
{
    if (t->kind == PB_TOK_EOF)
        return "the end of the file";
    snprintf(buf, n, "'%.*s'", (int)(t->len > 40 ? 40 : t->len), p->text + t->off);
    return buf;
}

static int expect(P *p, char c)
{
    if (!is_sym(p, c)) {
        char b[64];
        return fail_at(p, cur(p), "expected '%c', found %s", c, shown(p, cur(p), b, sizeof(b)));
    }
    p->i++;
    return 0;
}

static int expect_word(P *p, const char *w)
{
    if (!is_word(p, w)) {
        char b[64];
        return fail_at(p, cur(p), "expected '%s', found %s", w, shown(p, cur(p), b, sizeof(b)));
    }
    p->i++;
    return 0;
}

static int ident(P *p, char **out)
{
    const pb_tok *t = cur(p);
    if (t->kind != PB_TOK_IDENT) {
        char b[64];
        return fail_at(p, t, "expected a name, found %s", shown(p, t, b, sizeof(b)));
    }
    *out = pb_strndup(p->text + t->off, t->len);
    if (!*out)
        return oom(p);
    p->i++;
    return 0;
}

/* A dotted name (a.b.c), with a leading dot when allow_dot. */
static int full_ident(P *p, bool allow_dot, char **out)
{
    const pb_tok *first = cur(p);
    size_t start = first->off;
    if (allow_dot && is_sym(p, '.'))
        p->i++;
    for (;;) {
        if (cur(p)->kind != PB_TOK_IDENT) {
            char b[64];
            return fail_at(p, cur(p), "expected a name, found %s", shown(p, cur(p), b, sizeof(b)));
        }
        p->i++;
        if (!is_sym(p, '.'))
            break;
        p->i++;
    }
    /* Rebuild without whitespace: "a . b" is the name "a.b". */
    const pb_tok *end = cur(p);
    size_t cap = end->off - start + 1, k = 0;
    char *o = malloc(cap);
    if (!o)
        return oom(p);
    for (const pb_tok *t = first; t < end; t++) {
        memcpy(o + k, p->text + t->off, t->len);
        k += t->len;
    }
    o[k] = 0;
    *out = o;
    return 0;
}

/* An integer, optionally negative, within [lo, hi]. */
static int integer(P *p, int64_t lo, int64_t hi, const char *what, int64_t *out)
{
    const pb_tok *at = cur(p);
    bool neg = false;
    if (is_sym(p, '-')) {
        neg = true;
        p->i++;
    }
    const pb_tok *t = cur(p);
    if (t->kind != PB_TOK_INT) {
        char b[64];
        return fail_at(p, t, "expected %s, found %s", what, shown(p, t, b, sizeof(b)));
    }
    char buf[32];
    if (t->len >= sizeof(buf))
        return fail_at(p, at, "%s is out of range", what);
    memcpy(buf, p->text + t->off, t->len);
    buf[t->len] = 0;
    errno = 0;
    unsigned long long v = strtoull(buf, NULL, 0);
    if (errno || v > (unsigned long long)INT64_MAX + 1)
        return fail_at(p, at, "%s is out of range", what);
    int64_t s = neg ? (int64_t)(0 - v) : (v > INT64_MAX ? -1 : (int64_t)v);
    if ((neg && v > (unsigned long long)INT64_MAX + 1) || (!neg && v > INT64_MAX) || s < lo ||
        s > hi)
        return fail_at(p, at, "%s %s%s is out of range [%lld, %lld]", what, neg ? "-" : "", buf,
                       (long long)lo, (long long)hi);
    p->i++;
    *out = s;
    return 0;
}

/* Skips an aggregate value { ... } of an option (text format), bounded in depth. */
static int skip_aggregate(P *p)
{
    int depth = 0;
    const pb_tok *open = cur(p);
    do {
        const pb_tok *t = cur(p);
        if (t->kind == PB_TOK_EOF)
            return fail_at(p, open, "an option's value is not closed");
        if (is_sym(p, '{') || is_sym(p, '[') || is_sym(p, '<')) {
            if (++depth > SCHEMA_MAX_DEPTH)
                return fail_at(p, t, "an option's value is nested more than %d deep",
                               SCHEMA_MAX_DEPTH);
        } else if (is_sym(p, '}') || is_sym(p, ']') || is_sym(p, '>')) {
            depth--;
        }
        p->i++;
    } while (depth > 0);
    return 0;
}

enum { C_IDENT, C_INT, C_FLOAT, C_STRING, C_AGG };

/* A constant: a name, a signed number, strings (adjacent ones concatenated), or an aggregate.
 * *kind says which; *at is its first token. */
static int constant(P *p, int *kind, const pb_tok **at)
{
    *at = cur(p);
    if (is_sym(p, '{')) {
        *kind = C_AGG;
        return skip_aggregate(p);
    }
    bool sign = false;
    if (is_sym(p, '-') || is_sym(p, '+')) {
        sign = true;
        p->i++;
    }
    const pb_tok *t = cur(p);
    switch (t->kind) {
    case PB_TOK_INT:
        *kind = C_INT;
        p->i++;
        return 0;
    case PB_TOK_FLOAT:
        *kind = C_FLOAT;
        p->i++;
        return 0;
    case PB_TOK_STRING:
        if (sign)
            break;
        *kind = C_STRING;
        while (cur(p)->kind == PB_TOK_STRING)
            p->i++;
        return 0;
    case PB_TOK_IDENT: {
        if (sign && !is_word(p, "inf") && !is_word(p, "nan"))
            break;
        *kind = C_IDENT;
        char *name;
        if (full_ident(p, false, &name) < 0)
            return -1;
        free(name);
        return 0;
    }
    default:
        break;
    }
    char b[64];
    return fail_at(p, t, "expected a constant, found %s", shown(p, t, b, sizeof(b)));
}

/* An option's name: a name or a (custom.extension), then .parts. malloc'd in *out. */
static int option_name(P *p, char **out)
{
    const pb_tok *first = cur(p);
    for (;;) {
        if (is_sym(p, '(')) {
            p->i++;
            char *ext;
            if (full_ident(p, true, &ext) < 0)
                return -1;
            free(ext);
            if (expect(p, ')') < 0)
                return -1;
        } else {
            char *part;
            if (ident(p, &part) < 0)
                return -1;
            free(part);
        }
        if (!is_sym(p, '.'))
            break;
        p->i++;
    }
    size_t k = 0, cap = cur(p)->off - first->off + 1;
    char *o = malloc(cap);
    if (!o)
        return oom(p);
    for (const pb_tok *t = first; t < cur(p); t++) {
        memcpy(o + k, p->text + t->off, t->len);
        k += t->len;
    }
    o[k] = 0;
    *out = o;
    return 0;
}

/* `option name = constant;` after the word option. *bool_true is set when the value is the
 * name true (for allow_alias); *name is malloc'd. */
static int option_stmt(P *p, char **name, bool *bool_true)
{
    if (option_name(p, name) < 0)
        return -1;
    int kind;
    const pb_tok *at;
    if (expect(p, '=') < 0 || constant(p, &kind, &at) < 0 || expect(p, ';') < 0) {
        free(*name);
        *name = NULL;
        return -1;
    }
    *bool_true = kind == C_IDENT && at->len == 4 && memcmp(p->text + at->off, "true", 4) == 0;
    return 0;
}

static int skip_option(P *p)
{
    char *name = NULL;
    bool t;
    if (option_stmt(p, &name, &t) < 0)
        return -1;
    free(name);
    return 0;
}

static const struct {
    const char *name;
    int type;
} scalars[] = {
    {"double", PB_T_DOUBLE},     {"float", PB_T_FLOAT},   {"int64", PB_T_INT64},
    {"uint64", PB_T_UINT64},     {"int32", PB_T_INT32},   {"fixed64", PB_T_FIXED64},
    {"fixed32", PB_T_FIXED32},   {"bool", PB_T_BOOL},     {"string", PB_T_STRING},
    {"bytes", PB_T_BYTES},       {"uint32", PB_T_UINT32}, {"sfixed32", PB_T_SFIXED32},
    {"sfixed64", PB_T_SFIXED64}, {"sint32", PB_T_SINT32}, {"sint64", PB_T_SINT64},
};

const char *pb_type_name(int type)
{
    for (size_t i = 0; i < sizeof(scalars) / sizeof(scalars[0]); i++)
        if (scalars[i].type == type)
            return scalars[i].name;
    return type == PB_T_ENUM ? "enum" : type == PB_T_GROUP ? "group" : "message";
}

bool pb_type_is_scalar_numeric(int type)
{
    return type != PB_T_STRING && type != PB_T_BYTES && type != PB_T_MESSAGE &&
           type != PB_T_GROUP && type != PB_T_NAMED && type != PB_T_NONE;
}

int pb_wire_type(int type)
{
    switch (type) {
    case PB_T_DOUBLE:
    case PB_T_FIXED64:
    case PB_T_SFIXED64:
        return 1;
    case PB_T_FLOAT:
    case PB_T_FIXED32:
    case PB_T_SFIXED32:
        return 5;
    case PB_T_STRING:
    case PB_T_BYTES:
    case PB_T_MESSAGE:
        return 2;
    case PB_T_GROUP:
        return 3;
    default:
        return 0; /* the integers, bool and enums */
    }
}

static int scalar_of(const P *p, const pb_tok *t)
{
    if (t->kind != PB_TOK_IDENT)
        return PB_T_NONE;
    for (size_t i = 0; i < sizeof(scalars) / sizeof(scalars[0]); i++)
        if (strlen(scalars[i].name) == t->len &&
            memcmp(scalars[i].name, p->text + t->off, t->len) == 0)
            return scalars[i].type;
    return PB_T_NONE;
}

/* A field's type: a scalar, or a (dotted) name left for protobuf.c to resolve. */
static int field_type(P *p, pb_field *fd)
{
    int s = scalar_of(p, cur(p));
    if (s != PB_T_NONE && !next_is_sym(p, '.')) {
        fd->type = (uint8_t)s;
        p->i++;
        return 0;
    }
    fd->type = PB_T_NAMED;
    return full_ident(p, true, &fd->type_name);
}

static char *camel(const char *name)
{
    char *o = malloc(strlen(name) + 1);
    if (!o)
        return NULL;
    size_t k = 0;
    bool up = false;
    for (const char *s = name; *s; s++) {
        if (*s == '_') {
            up = true;
            continue;
        }
        o[k++] = up && *s >= 'a' && *s <= 'z' ? (char)(*s - 32) : *s;
        up = false;
    }
    o[k] = 0;
    return o;
}

/* Checks that a default's constant fits its field's type. */
static int check_default(P *p, pb_field *fd, int kind, const pb_tok *at)
{
    bool ok;
    switch (fd->type) {
    case PB_T_STRING:
    case PB_T_BYTES:
        ok = kind == C_STRING;
        break;
    case PB_T_BOOL:
        ok = kind == C_IDENT && ((at->len == 4 && !memcmp(p->text + at->off, "true", 4)) ||
                                 (at->len == 5 && !memcmp(p->text + at->off, "false", 5)));
        break;
    case PB_T_FLOAT:
    case PB_T_DOUBLE:
        if (kind == C_IDENT && at->kind == PB_TOK_SYM)
            at++; /* the sign of -inf */
        ok = kind == C_INT || kind == C_FLOAT ||
             (kind == C_IDENT && at->len == 3 &&
              (!memcmp(p->text + at->off, "inf", 3) || !memcmp(p->text + at->off, "nan", 3)));
        break;
    case PB_T_NAMED:
        /* An enum's value, checked against the enum by protobuf.c, which refuses defaults
         * of messages. */
        ok = kind == C_IDENT;
        if (ok && !fd->default_name && !(fd->default_name = pb_strndup(p->text + at->off, at->len)))
            return oom(p);
        break;
    default:
        ok = kind == C_INT;
        break;
    }
    if (!ok)
        return fail_at(p, at, "the default of field '%s' does not fit its type", fd->name);
    return 0;
}

/* Field options: [name = constant, ...]. */
static int field_options(P *p, pb_field *fd)
{
    if (!is_sym(p, '['))
        return 0;
    p->i++;
    for (;;) {
        const pb_tok *at_name = cur(p);
        char *name;
        if (option_name(p, &name) < 0)
            return -1;
        int kind;
        const pb_tok *at;
        if (expect(p, '=') < 0 || constant(p, &kind, &at) < 0) {
            free(name);
            return -1;
        }
        int rc = 0;
        if (!strcmp(name, "packed")) {
            if (kind != C_IDENT)
                rc = fail_at(p, at, "packed must be true or false");
            fd->packed = at->len == 4 && !memcmp(p->text + at->off, "true", 4);
        } else if (!strcmp(name, "default")) {
            if (p->f->syntax == 3)
                rc = fail_at(p, at_name, "explicit default values are not allowed in proto3");
            else if (fd->label == PB_L_REPEATED || fd->is_map)
                rc = fail_at(p, at_name, "repeated fields can't have default values");
            else if (fd->has_default)
                rc = fail_at(p, at_name, "the default of field '%s' is set twice", fd->name);
            else
                rc = check_default(p, fd, kind, at);
            fd->has_default = true;
        } else if (!strcmp(name, "json_name")) {
            if (kind != C_STRING) {
                rc = fail_at(p, at, "json_name must be a string");
            } else {
                size_t n;
                free(fd->json_name);
                fd->json_name = NULL;
                if (pb_str_decode(p->text, at, &fd->json_name, &n) < 0)
                    rc = oom(p);
                fd->explicit_json_name = true;
            }
        }
        free(name);
        if (rc < 0)
            return -1;
        if (is_sym(p, ','))
            p->i++;
        else
            break;
    }
    return expect(p, ']');
}

/* The number after '=' of a field. */
static int field_number(P *p, int32_t *out)
{
    const pb_tok *at = cur(p);
    int64_t v;
    if (integer(p, 1, PB_MAX_FIELD, "a field number", &v) < 0)
        return -1;
    if (v >= 19000 && v <= 19999)
        return fail_at(p, at, "field numbers 19000 to 19999 are reserved for protobuf");
    *out = (int32_t)v;
    return 0;
}

static int message_body(P *p, pb_msg *m);

static pb_msg *new_msg(P *p, pb_msg *parent, char *name, const pb_tok *at)
{
    pb_msg *m = calloc(1, sizeof(*m));
    if (!m) {
        free(name);
        oom(p);
        return NULL;
    }
    m->name = name;
    m->parent = parent;
    m->file = p->f;
    m->line = at->line;
    m->col = at->col;
    return m;
}

/* Adds a nested (or top-level, parent NULL) message. */
static int add_msg(P *p, pb_msg *parent, pb_msg *m)
{
    pb_msg ***arr = parent ? &parent->msgs : &p->f->msgs;
    size_t *n = parent ? &parent->nmsgs : &p->f->nmsgs;
    if (grow(arr, *n, sizeof(**arr)) < 0)
        return oom(p);
    (*arr)[(*n)++] = m;
    return 0;
}

/* `group Name = N [opts] { body }` after the label: a field of type group and its body, a
 * message nested in the scope. */
static int group_field(P *p, pb_msg *scope, pb_field *fd)
{
    const pb_tok *at = cur(p);
    if (p->f->syntax == 3)
        return fail_at(p, at, "groups are not supported in proto3; use a nested message");
    p->i++; /* group */
    const pb_tok *at_name = cur(p);
    char *name;
    if (ident(p, &name) < 0)
        return -1;
    if (name[0] < 'A' || name[0] > 'Z') {
        free(name);
        return fail_at(p, at_name, "a group's name must start with a capital letter");
    }
    pb_msg *g = new_msg(p, scope, name, at_name);
    if (!g)
        return -1;
    g->is_group = true;
    if (add_msg(p, scope, g) < 0) {
        free(g->name);
        free(g);
        return -1;
    }
    fd->name = pb_strndup(name, strlen(name));
    if (!fd->name)
        return oom(p);
    for (char *s = fd->name; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s + 32);
    fd->type = PB_T_GROUP;
    fd->msg = g;
    if (expect(p, '=') < 0 || field_number(p, &fd->number) < 0 || field_options(p, fd) < 0 ||
        expect(p, '{') < 0)
        return -1;
    return message_body(p, g);
}

/* A field (or group) with its label already read; appended to *arr. */
static int field(P *p, pb_msg *scope, int label, int oneof, pb_field **arr, size_t *n)
{
    if (grow(arr, *n, sizeof(**arr)) < 0)
        return oom(p);
    pb_field *fd = &(*arr)[(*n)++];
    memset(fd, 0, sizeof(*fd));
    fd->label = (uint8_t)label;
    fd->oneof = oneof;
    fd->line = cur(p)->line;
    fd->col = cur(p)->col;
    fd->packed = p->f->syntax == 3; /* proto3 packs repeated scalars unless told otherwise */
    if (is_word(p, "group") && cur(p)[1].kind == PB_TOK_IDENT) {
        if (group_field(p, scope, fd) < 0)
            return -1;
    } else {
        if (is_word(p, "map") && next_is_sym(p, '<')) {
            const pb_tok *at = cur(p);
            if (label != PB_L_NONE)
                return fail_at(p, at, "map fields can't have a label");
            if (oneof >= 0)
                return fail_at(p, at, "map fields are not allowed in oneofs");
            p->i += 2;
            int k = scalar_of(p, cur(p));
            if (k == PB_T_NONE || k == PB_T_FLOAT || k == PB_T_DOUBLE || k == PB_T_BYTES)
                return fail_at(p, cur(p), "a map's key must be an integer, bool or string type");
            p->i++;
            fd->is_map = true;
            fd->key_type = (uint8_t)k;
            fd->label = PB_L_REPEATED;
            if (expect(p, ',') < 0 || field_type(p, fd) < 0 || expect(p, '>') < 0)
                return -1;
        } else if (field_type(p, fd) < 0) {
            return -1;
        }
        if (ident(p, &fd->name) < 0 || expect(p, '=') < 0 || field_number(p, &fd->number) < 0 ||
            field_options(p, fd) < 0 || expect(p, ';') < 0)
            return -1;
    }
    if (!fd->json_name && !(fd->json_name = camel(fd->name)))
        return oom(p);
    if (!pb_type_is_scalar_numeric(fd->type) || fd->is_map || fd->label != PB_L_REPEATED)
        fd->packed = false;
    return 0;
}

/* Ranges `1, 5 to 10, 20 to max` of reserved or extensions, or names "a", "b". */
static int ranges(P *p, pb_range **rr, size_t *nr, char ***names, size_t *nn, int64_t max)
{
    do {
        if (cur(p)->kind == PB_TOK_STRING || (names && cur(p)->kind == PB_TOK_IDENT)) {
            if (!names)
                return fail_at(p, cur(p), "expected a number");
            char *s;
            size_t n;
            if (cur(p)->kind == PB_TOK_STRING) {
                if (pb_str_decode(p->text, cur(p), &s, &n) < 0)
                    return oom(p);
            } else if (!(s = pb_strndup(p->text + cur(p)->off, cur(p)->len))) {
                return oom(p);
            }
            p->i++;
            if (grow(names, *nn, sizeof(char *)) < 0) {
                free(s);
                return oom(p);
            }
            (*names)[(*nn)++] = s;
            continue;
        }
        int64_t lo, hi;
        int64_t min = max == PB_MAX_FIELD ? 1 : INT32_MIN;
        if (integer(p, min, max, "a number", &lo) < 0)
            return -1;
        hi = lo;
        if (is_word(p, "to")) {
            p->i++;
            if (is_word(p, "max")) {
                p->i++;
                hi = max;
            } else if (integer(p, min, max, "a number", &hi) < 0) {
                return -1;
            }
            if (hi < lo)
                return fail_at(p, cur(p), "a range ends before it starts");
        }
        if (grow(rr, *nr, sizeof(**rr)) < 0)
            return oom(p);
        (*rr)[(*nr)++] = (pb_range){(int32_t)lo, (int32_t)hi};
    } while (is_sym(p, ',') && (p->i++, true));
    return 0;
}

static int enum_def(P *p, pb_msg *scope);
static int extend_def(P *p, pb_msg *scope);

static int oneof_def(P *p, pb_msg *m)
{
    p->i++; /* oneof */
    char *name;
    if (ident(p, &name) < 0)
        return -1;
    if (grow(&m->oneofs, m->noneofs, sizeof(char *)) < 0) {
        free(name);
        return oom(p);
    }
    int idx = (int)m->noneofs;
    m->oneofs[m->noneofs++] = name;
    if (expect(p, '{') < 0)
        return -1;
    size_t before = m->nfields;
    while (!is_sym(p, '}')) {
        if (cur(p)->kind == PB_TOK_EOF)
            return expect(p, '}');
        if (is_sym(p, ';')) {
            p->i++;
        } else if (is_word(p, "option")) {
            p->i++;
            if (skip_option(p) < 0)
                return -1;
        } else if (is_word(p, "optional") || is_word(p, "required") || is_word(p, "repeated")) {
            return fail_at(p, cur(p), "fields in oneofs must not have labels");
        } else if (field(p, m, PB_L_NONE, idx, &m->fields, &m->nfields) < 0) {
            return -1;
        }
    }
    p->i++;
    if (m->nfields == before)
        return fail_at(p, cur(p) - 1, "oneof '%s' must have at least one field", name);
    return 0;
}

static int label_of(const P *p)
{
    return is_word(p, "optional")   ? PB_L_OPTIONAL
           : is_word(p, "required") ? PB_L_REQUIRED
           : is_word(p, "repeated") ? PB_L_REPEATED
                                    : PB_L_NONE;
}

/* One statement of a message's body. */
static int message_item(P *p, pb_msg *m)
{
    const pb_tok *at = cur(p);
    if (is_sym(p, ';')) {
        p->i++;
        return 0;
    }
    if (is_word(p, "option")) {
        p->i++;
        return skip_option(p);
    }
    if (is_word(p, "message") && cur(p)[1].kind == PB_TOK_IDENT) {
        p->i++;
        const pb_tok *at_name = cur(p);
        char *name;
        if (ident(p, &name) < 0)
            return -1;
        pb_msg *sub = new_msg(p, m, name, at_name);
        if (!sub)
            return -1;
        if (add_msg(p, m, sub) < 0) {
            free(sub->name);
            free(sub);
            return -1;
        }
        if (expect(p, '{') < 0)
            return -1;
        return message_body(p, sub);
    }
    if (is_word(p, "enum") && cur(p)[1].kind == PB_TOK_IDENT)
        return enum_def(p, m);
    if (is_word(p, "extend") && cur(p)[1].kind != PB_TOK_SYM)
        return extend_def(p, m);
    if (is_word(p, "oneof") && cur(p)[1].kind == PB_TOK_IDENT)
        return oneof_def(p, m);
    if (is_word(p, "reserved") && cur(p)[1].kind != PB_TOK_IDENT) {
        p->i++;
        if (ranges(p, &m->reserved, &m->nreserved, &m->reserved_names, &m->nreserved_names,
                   PB_MAX_FIELD) < 0)
            return -1;
        return expect(p, ';');
    }
    if (is_word(p, "extensions") && cur(p)[1].kind == PB_TOK_INT) {
        if (p->f->syntax == 3)
            return fail_at(p, at, "extension ranges are not allowed in proto3");
        p->i++;
        if (ranges(p, &m->extensions, &m->nextensions, NULL, NULL, PB_MAX_FIELD) < 0)
            return -1;
        pb_field scratch = {0};
        int rc = field_options(p, &scratch);
        free(scratch.json_name);
        if (rc < 0)
            return -1;
        return expect(p, ';');
    }
    int label = label_of(p);
    if (label != PB_L_NONE) {
        if (label == PB_L_REQUIRED && p->f->syntax == 3)
            return fail_at(p, at, "required fields are not allowed in proto3");
        p->i++;
    } else if (p->f->syntax == 2 && !(is_word(p, "map") && next_is_sym(p, '<'))) {
        char b[64];
        return fail_at(p, at, "expected \"required\", \"optional\", or \"repeated\", found %s",
                       shown(p, at, b, sizeof(b)));
    }
    return field(p, m, label, -1, &m->fields, &m->nfields);
}

static int message_body(P *p, pb_msg *m)
{
    if (++p->depth > SCHEMA_MAX_DEPTH)
        return fail_at(p, cur(p), "messages are nested more than %d deep", SCHEMA_MAX_DEPTH);
    while (!is_sym(p, '}')) {
        if (cur(p)->kind == PB_TOK_EOF)
            return expect(p, '}');
        if (message_item(p, m) < 0)
            return -1;
    }
    p->i++;
    p->depth--;
    return 0;
}

static int enum_value(P *p, pb_enum *e)
{
    const pb_tok *at = cur(p);
    char *name;
    if (ident(p, &name) < 0)
        return -1;
    if (grow(&e->names, e->n, sizeof(char *)) < 0 || grow(&e->numbers, e->n, sizeof(int32_t)) < 0) {
        free(name);
        return oom(p);
    }
    e->names[e->n] = name;
    e->numbers[e->n] = 0;
    e->n++;
    int64_t v;
    if (expect(p, '=') < 0 || integer(p, INT32_MIN, INT32_MAX, "an enum value", &v) < 0)
        return -1;
    e->numbers[e->n - 1] = (int32_t)v;
    if (e->n == 1 && v != 0 && p->f->syntax == 3)
        return fail_at(p, at, "the first enum value must be zero in proto3");
    pb_field scratch = {0};
    int rc = field_options(p, &scratch);
    free(scratch.json_name);
    if (rc < 0)
        return -1;
    return expect(p, ';');
}

static int enum_def(P *p, pb_msg *scope)
{
    p->i++; /* enum */
    const pb_tok *at = cur(p);
    pb_enum *e = calloc(1, sizeof(*e));
    if (!e)
        return oom(p);
    pb_enum ***arr = scope ? &scope->enums : &p->f->enums;
    size_t *n = scope ? &scope->nenums : &p->f->nenums;
    if (grow(arr, *n, sizeof(**arr)) < 0) {
        free(e);
        return oom(p);
    }
    (*arr)[(*n)++] = e;
    e->line = at->line;
    e->col = at->col;
    e->closed = p->f->syntax == 2;
    if (ident(p, &e->name) < 0 || expect(p, '{') < 0)
        return -1;
    while (!is_sym(p, '}')) {
        if (cur(p)->kind == PB_TOK_EOF)
            return expect(p, '}');
        if (is_sym(p, ';')) {
            p->i++;
        } else if (is_word(p, "option")) {
            p->i++;
            char *name;
            bool yes;
            if (option_stmt(p, &name, &yes) < 0)
                return -1;
            if (!strcmp(name, "allow_alias"))
                e->allow_alias = yes;
            free(name);
        } else if (is_word(p, "reserved") && !next_is_sym(p, '=')) {
            p->i++;
            if (ranges(p, &e->reserved, &e->nreserved, &e->reserved_names, &e->nreserved_names,
                       INT32_MAX) < 0 ||
                expect(p, ';') < 0)
                return -1;
        } else if (enum_value(p, e) < 0) {
            return -1;
        }
    }
    p->i++;
    if (e->n == 0)
        return fail_at(p, at, "enum '%s' must have at least one value", e->name);
    return 0;
}

static int add_ref(P *p, pb_msg *scope, char *name, const pb_tok *at, bool must_be_message)
{
    if (grow(&p->f->refs, p->f->nrefs, sizeof(pb_ref)) < 0) {
        free(name);
        return oom(p);
    }
    p->f->refs[p->f->nrefs++] =
        (pb_ref){name, scope, at->line, at->col, must_be_message, false, 0, 0};
    return 0;
}

/* `extend Type { fields }`: the extendee and the fields' types are resolved by protobuf.c
 * (as refs); the fields are checked for their numbers and otherwise not kept, since they are
 * not part of any message's layout that validation reads. */
static int extend_def(P *p, pb_msg *scope)
{
    p->i++; /* extend */
    const pb_tok *at = cur(p);
    char *target;
    if (full_ident(p, true, &target) < 0 || add_ref(p, scope, target, at, true) < 0 ||
        expect(p, '{') < 0)
        return -1;
    size_t ref = p->f->nrefs - 1;
    p->f->refs[ref].extendee = true;
    p->f->refs[ref].first_field = p->f->next_fields;
    while (!is_sym(p, '}')) {
        if (cur(p)->kind == PB_TOK_EOF)
            return expect(p, '}');
        if (is_sym(p, ';')) {
            p->i++;
            continue;
        }
        int label = label_of(p);
        if (label != PB_L_NONE)
            p->i++;
        else if (p->f->syntax == 2)
            return fail_at(p, cur(p), "expected \"required\", \"optional\", or \"repeated\"");
        if (label == PB_L_REQUIRED)
            return fail_at(p, cur(p) - 1, "extensions can't be required");
        const pb_tok *at_type = cur(p);
        if (field(p, scope, label, -1, &p->f->ext_fields, &p->f->next_fields) < 0)
            return -1;
        p->f->refs[ref].nfields = p->f->next_fields - p->f->refs[ref].first_field;
        pb_field *fd = &p->f->ext_fields[p->f->next_fields - 1];
        if (fd->is_map)
            return fail_at(p, at_type, "map fields are not allowed in extensions");
        if (fd->type_name) {
            char *copy = pb_strndup(fd->type_name, strlen(fd->type_name));
            if (!copy || add_ref(p, scope, copy, at_type, false) < 0)
                return copy ? -1 : oom(p);
        }
    }
    p->i++;
    return 0;
}

/* `( [stream] Type )` of an rpc. */
static int rpc_type(P *p)
{
    if (expect(p, '(') < 0)
        return -1;
    if (is_word(p, "stream") && (cur(p)[1].kind == PB_TOK_IDENT || next_is_sym(p, '.')))
        p->i++;
    const pb_tok *at = cur(p);
    char *name;
    if (full_ident(p, true, &name) < 0 || add_ref(p, NULL, name, at, true) < 0)
        return -1;
    return expect(p, ')');
}

static int service_def(P *p)
{
    p->i++; /* service */
    char *name;
    if (ident(p, &name) < 0)
        return -1;
    free(name);
    if (expect(p, '{') < 0)
        return -1;
    while (!is_sym(p, '}')) {
        if (cur(p)->kind == PB_TOK_EOF)
            return expect(p, '}');
        if (is_sym(p, ';')) {
            p->i++;
        } else if (is_word(p, "option")) {
            p->i++;
            if (skip_option(p) < 0)
                return -1;
        } else {
            if (expect_word(p, "rpc") < 0 || ident(p, &name) < 0)
                return -1;
            free(name);
            if (rpc_type(p) < 0 || expect_word(p, "returns") < 0 || rpc_type(p) < 0)
                return -1;
            if (is_sym(p, '{')) {
                p->i++;
                while (!is_sym(p, '}')) {
                    if (cur(p)->kind == PB_TOK_EOF)
                        return expect(p, '}');
                    if (is_sym(p, ';'))
                        p->i++;
                    else if (expect_word(p, "option") < 0 || skip_option(p) < 0)
                        return -1;
                }
                p->i++;
            } else if (expect(p, ';') < 0) {
                return -1;
            }
        }
    }
    p->i++;
    return 0;
}

static int string_value(P *p, char **out)
{
    if (cur(p)->kind != PB_TOK_STRING) {
        char b[64];
        return fail_at(p, cur(p), "expected a string, found %s", shown(p, cur(p), b, sizeof(b)));
    }
    size_t n;
    if (pb_str_decode(p->text, cur(p), out, &n) < 0)
        return oom(p);
    p->i++;
    return 0;
}

static int header(P *p)
{
    p->f->syntax = 2; /* a file without `syntax` is proto2 */
    if (is_word(p, "edition") && next_is_sym(p, '='))
        return fail_at(p, cur(p),
                       "editions are not supported; use syntax = \"proto2\" or "
                       "\"proto3\"");
    if (!is_word(p, "syntax") || !next_is_sym(p, '='))
        return 0;
    p->i += 2;
    const pb_tok *at = cur(p);
    char *s;
    if (string_value(p, &s) < 0)
        return -1;
    int rc = 0;
    if (!strcmp(s, "proto3"))
        p->f->syntax = 3;
    else if (strcmp(s, "proto2"))
        rc = fail_at(p, at, "unknown syntax \"%.40s\"; expected \"proto2\" or \"proto3\"", s);
    free(s);
    return rc < 0 ? -1 : expect(p, ';');
}

static int top_item(P *p)
{
    const pb_tok *at = cur(p);
    if (is_sym(p, ';')) {
        p->i++;
        return 0;
    }
    if (is_word(p, "package")) {
        if (p->f->package)
            return fail_at(p, at, "multiple package definitions");
        p->i++;
        return full_ident(p, false, &p->f->package) < 0 ? -1 : expect(p, ';');
    }
    if (is_word(p, "import")) {
        p->i++;
        if (is_word(p, "public") || is_word(p, "weak"))
            p->i++;
        char *path;
        if (string_value(p, &path) < 0)
            return -1;
        if (grow(&p->f->imports, p->f->nimports, sizeof(char *)) < 0) {
            free(path);
            return oom(p);
        }
        p->f->imports[p->f->nimports++] = path;
        return expect(p, ';');
    }
    if (is_word(p, "option")) {
        p->i++;
        return skip_option(p);
    }
    if (is_word(p, "message")) {
        p->i++;
        const pb_tok *at_name = cur(p);
        char *name;
        if (ident(p, &name) < 0)
            return -1;
        pb_msg *m = new_msg(p, NULL, name, at_name);
        if (!m)
            return -1;
        if (add_msg(p, NULL, m) < 0) {
            free(m->name);
            free(m);
            return -1;
        }
        return expect(p, '{') < 0 ? -1 : message_body(p, m);
    }
    if (is_word(p, "enum"))
        return enum_def(p, NULL);
    if (is_word(p, "service"))
        return service_def(p);
    if (is_word(p, "extend"))
        return extend_def(p, NULL);
    if ((is_word(p, "syntax") || is_word(p, "edition")) && next_is_sym(p, '='))
        return fail_at(p, at, "'%.*s' must be the first statement of the file", (int)at->len,
                       p->text + at->off);
    char b[64];
    return fail_at(p, at, "expected a top-level statement, found %s", shown(p, at, b, sizeof(b)));
}

int pb_parse_file(const char *text, const pb_toks *toks, pb_file **out, schema_error *err)
{
    P p = {text, toks->v, 0, calloc(1, sizeof(pb_file)), err, 0};
    *out = p.f;
    if (!p.f)
        return oom(&p);
    if (header(&p) < 0)
        return -1;
    while (cur(&p)->kind != PB_TOK_EOF)
        if (top_item(&p) < 0)
            return -1;
    if (!p.f->package && !(p.f->package = pb_strndup("", 0)))
        return oom(&p);
    return 0;
}

static void free_strs(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void free_fields(pb_field *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].name);
        free(v[i].json_name);
        free(v[i].type_name);
        free(v[i].default_name);
    }
    free(v);
}

static void free_enum(pb_enum *e)
{
    free(e->name);
    free(e->full);
    free_strs(e->names, e->n);
    free(e->numbers);
    free(e->reserved);
    free_strs(e->reserved_names, e->nreserved_names);
    free(e);
}

static void free_msg(pb_msg *m)
{
    free(m->name);
    free(m->full);
    free_fields(m->fields, m->nfields);
    free(m->by_number);
    free_strs(m->oneofs, m->noneofs);
    for (size_t i = 0; i < m->nmsgs; i++)
        free_msg(m->msgs[i]);
    free(m->msgs);
    for (size_t i = 0; i < m->nenums; i++)
        free_enum(m->enums[i]);
    free(m->enums);
    free(m->reserved);
    free(m->extensions);
    free_strs(m->reserved_names, m->nreserved_names);
    free(m);
}

void pb_file_free(pb_file *f)
{
    if (!f)
        return;
    free(f->path);
    free(f->package);
    free_strs(f->imports, f->nimports);
    for (size_t i = 0; i < f->nmsgs; i++)
        free_msg(f->msgs[i]);
    free(f->msgs);
    for (size_t i = 0; i < f->nenums; i++)
        free_enum(f->enums[i]);
    free(f->enums);
    free_fields(f->ext_fields, f->next_fields);
    for (size_t i = 0; i < f->nrefs; i++)
        free(f->refs[i].type_name);
    free(f->refs);
    free(f);
}
