/*
 * protobuf.c: the Protobuf schema type (schema_protobuf_ops). A schema is a .proto file; its
 * references (schema_dep) are the files it imports, named by their import paths. The files of
 * the well-known types that Confluent's registry knows without registration
 * (google/protobuf/timestamp.proto, duration, any, struct, wrappers, empty, field_mask, and a
 * small descriptor.proto for custom options) are built in, as short texts written here.
 *
 * Parsing a schema: the file and, transitively, its imports are cut into tokens and parsed
 * (protobuf_lex.c, protobuf_parse.c); every message and enum gets its full name in one symbol
 * table, sorted for binary search; type names are resolved by protobuf's scoping rules
 * (innermost scope outwards, then the package's prefixes; a leading dot is a full name); then
 * the rules that need the whole message are checked: unique field numbers and names, reserved
 * numbers and names respected, extension ranges apart from fields, enum values unique unless
 * aliases are allowed, proto3 fields of proto3 enums only. The canonical form is printed from
 * the main file's tokens; the record name is the full name of its first message (or, without
 * messages, of its first enum), as Confluent's ProtobufSchema.name().
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/protobuf_int.h"

/* ---- the well-known types, in our own words ---- */

static const struct {
    const char *path, *text;
} wkt[] = {
    {"google/protobuf/timestamp.proto",
     "syntax = \"proto3\"; package google.protobuf;\n"
     "message Timestamp { int64 seconds = 1; int32 nanos = 2; }\n"},
    {"google/protobuf/duration.proto",
     "syntax = \"proto3\"; package google.protobuf;\n"
     "message Duration { int64 seconds = 1; int32 nanos = 2; }\n"},
    {"google/protobuf/any.proto", "syntax = \"proto3\"; package google.protobuf;\n"
                                  "message Any { string type_url = 1; bytes value = 2; }\n"},
    {"google/protobuf/empty.proto",
     "syntax = \"proto3\"; package google.protobuf;\nmessage Empty {}\n"},
    {"google/protobuf/field_mask.proto", "syntax = \"proto3\"; package google.protobuf;\n"
                                         "message FieldMask { repeated string paths = 1; }\n"},
    {"google/protobuf/struct.proto",
     "syntax = \"proto3\"; package google.protobuf;\n"
     "message Struct { map<string, Value> fields = 1; }\n"
     "message Value { oneof kind { NullValue null_value = 1; double number_value = 2;\n"
     "  string string_value = 3; bool bool_value = 4; Struct struct_value = 5;\n"
     "  ListValue list_value = 6; } }\n"
     "enum NullValue { NULL_VALUE = 0; }\n"
     "message ListValue { repeated Value values = 1; }\n"},
    {"google/protobuf/wrappers.proto",
     "syntax = \"proto3\"; package google.protobuf;\n"
     "message DoubleValue { double value = 1; }\nmessage FloatValue { float value = 1; }\n"
     "message Int64Value { int64 value = 1; }\nmessage UInt64Value { uint64 value = 1; }\n"
     "message Int32Value { int32 value = 1; }\nmessage UInt32Value { uint32 value = 1; }\n"
     "message BoolValue { bool value = 1; }\nmessage StringValue { string value = 1; }\n"
     "message BytesValue { bytes value = 1; }\n"},
    /* Only the option messages that custom options extend, open to every extension. */
    {"google/protobuf/descriptor.proto", "syntax = \"proto2\"; package google.protobuf;\n"
                                         "message FileOptions { extensions 1000 to max; }\n"
                                         "message MessageOptions { extensions 1000 to max; }\n"
                                         "message FieldOptions { extensions 1000 to max; }\n"
                                         "message OneofOptions { extensions 1000 to max; }\n"
                                         "message EnumOptions { extensions 1000 to max; }\n"
                                         "message EnumValueOptions { extensions 1000 to max; }\n"
                                         "message ServiceOptions { extensions 1000 to max; }\n"
                                         "message MethodOptions { extensions 1000 to max; }\n"},
};

const char *pb_wkt_text(const char *path)
{
    for (size_t i = 0; i < sizeof(wkt) / sizeof(wkt[0]); i++)
        if (!strcmp(wkt[i].path, path))
            return wkt[i].text;
    return NULL;
}

/* ---- symbols ---- */

enum { SYM_PACKAGE, SYM_MSG, SYM_ENUM };

typedef struct sym {
    const char *full;
    int kind;
    void *p;
} sym;

typedef struct R {
    sym *v;
    size_t n, cap;
    schema_error *err;
    const pb_file *f; /* the file being resolved, for messages */
} R;

static int rfail(R *r, uint32_t line, uint32_t col, const char *rule, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int rfail(R *r, uint32_t line, uint32_t col, const char *rule, const char *fmt, ...)
{
    char where[32], msg[400];
    snprintf(where, sizeof(where), "%u:%u", line, col);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (r->f && r->f->path[0])
        schema_set_error(r->err, where, rule, "in import \"%.100s\": %s at line %u, column %u",
                         r->f->path, msg, line, col);
    else
        schema_set_error(r->err, where, rule, "%s at line %u, column %u", msg, line, col);
    return -1;
}

static int add_sym(R *r, const char *full, int kind, void *p)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        sym *v = realloc(r->v, cap * sizeof(*v));
        if (!v) {
            schema_set_error(r->err, "", "memory", "out of memory");
            return -1;
        }
        r->v = v;
        r->cap = cap;
    }
    r->v[r->n++] = (sym){full, kind, p};
    return 0;
}

static char *join(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    char *o = malloc(na + nb + 2);
    if (!o)
        return NULL;
    memcpy(o, a, na);
    size_t k = na;
    if (na)
        o[k++] = '.';
    memcpy(o + k, b, nb + 1);
    return o;
}

static int name_enums(R *r, pb_enum **v, size_t n, const char *prefix)
{
    for (size_t i = 0; i < n; i++) {
        if (!(v[i]->full = join(prefix, v[i]->name)) || add_sym(r, v[i]->full, SYM_ENUM, v[i]))
            goto oom;
    }
    return 0;
oom:
    schema_set_error(r->err, "", "memory", "out of memory");
    return -1;
}

static int name_msgs(R *r, pb_msg **v, size_t n, const char *prefix, int depth)
{
    for (size_t i = 0; i < n; i++) {
        pb_msg *m = v[i];
        if (!(m->full = join(prefix, m->name)) || add_sym(r, m->full, SYM_MSG, m) < 0) {
            schema_set_error(r->err, "", "memory", "out of memory");
            return -1;
        }
        if (depth > SCHEMA_MAX_DEPTH)
            return rfail(r, m->line, m->col, "depth", "messages nested too deep");
        if (name_msgs(r, m->msgs, m->nmsgs, m->full, depth + 1) < 0 ||
            name_enums(r, m->enums, m->nenums, m->full) < 0)
            return -1;
    }
    return 0;
}

static int sym_cmp(const void *a, const void *b)
{
    return strcmp(((const sym *)a)->full, ((const sym *)b)->full);
}

static const sym *lookup(const R *r, const char *full)
{
    sym key = {full, 0, NULL};
    if (!r->n)
        return NULL;
    return bsearch(&key, r->v, r->n, sizeof(sym), sym_cmp);
}

/* Every package prefix of every file ("a", "a.b") is a symbol, so that names may start with a
 * package's first part. The strings are the files' own package, cut by NULs in a copy. */
static int add_packages(R *r, pb_schema *s, char ***owned, size_t *nowned)
{
    for (size_t i = 0; i < s->nfiles; i++) {
        const char *pkg = s->files[i]->package;
        for (size_t k = 0; pkg[k]; k++) {
            if (pkg[k + 1] != '.' && pkg[k + 1] != 0)
                continue;
            char *pre = pb_strndup(pkg, k + 1);
            char **v = realloc(*owned, (*nowned + 1) * sizeof(char *));
            if (!pre || !v) {
                free(pre);
                if (v)
                    *owned = v;
                schema_set_error(r->err, "", "memory", "out of memory");
                return -1;
            }
            *owned = v;
            v[(*nowned)++] = pre;
            if (add_sym(r, pre, SYM_PACKAGE, NULL) < 0)
                return -1;
        }
    }
    return 0;
}

/* Sorts the table and refuses a name defined twice (packages may repeat). */
static int finish_table(R *r)
{
    if (r->n)
        qsort(r->v, r->n, sizeof(sym), sym_cmp);
    size_t k = 0;
    for (size_t i = 0; i < r->n; i++) {
        if (k && !strcmp(r->v[k - 1].full, r->v[i].full)) {
            if (r->v[i].kind == SYM_PACKAGE && r->v[k - 1].kind == SYM_PACKAGE)
                continue;
            const sym *d = r->v[i].kind == SYM_PACKAGE ? &r->v[k - 1] : &r->v[i];
            uint32_t line = d->kind == SYM_MSG ? ((pb_msg *)d->p)->line : ((pb_enum *)d->p)->line;
            uint32_t col = d->kind == SYM_MSG ? ((pb_msg *)d->p)->col : ((pb_enum *)d->p)->col;
            r->f = NULL;
            return rfail(r, line, col, "name", "\"%.200s\" is already defined", d->full);
        }
        r->v[k++] = r->v[i];
    }
    r->n = k;
    return 0;
}

/* Resolves a type name as protobuf does: a leading dot names a full name; otherwise the
 * name's first part is looked up from the innermost scope outwards (the enclosing messages,
 * then the package's prefixes, then the root), and the rest of the name must be found inside
 * what the first part names. NULL when not found. */
static const sym *resolve(const R *r, const char *name, const pb_msg *scope, const pb_file *f)
{
    if (name[0] == '.')
        return lookup(r, name + 1);
    size_t first = strcspn(name, ".");
    char buf[1024];
    /* The scopes: the enclosing messages' full names, then the package and its prefixes. */
    for (const pb_msg *m = scope;; m = m->parent) {
        const char *base = m ? m->full : f->package;
        size_t nb = strlen(base);
        for (;;) {
            if (nb + 1 + strlen(name) + 1 > sizeof(buf))
                return NULL;
            size_t k = 0;
            if (nb) {
                memcpy(buf, base, nb);
                buf[nb] = '.';
                k = nb + 1;
            }
            memcpy(buf + k, name, first);
            buf[k + first] = 0;
            if (lookup(r, buf)) {
                strcpy(buf + k, name);
                return lookup(r, buf);
            }
            if (m || nb == 0)
                break;
            while (nb > 0 && base[nb - 1] != '.')
                nb--;
            if (nb > 0)
                nb--; /* drop the dot too */
        }
        if (!m)
            return NULL;
    }
}

static int resolve_field(R *r, pb_field *fd, const pb_msg *scope, const pb_file *f)
{
    if (fd->type != PB_T_NAMED)
        return 0;
    const sym *s = resolve(r, fd->type_name, scope, f);
    if (!s || s->kind == SYM_PACKAGE)
        return rfail(r, fd->line, fd->col, "type", "\"%.200s\" is not defined", fd->type_name);
    if (s->kind == SYM_MSG) {
        fd->type = PB_T_MESSAGE;
        fd->msg = s->p;
        if (fd->has_default)
            return rfail(r, fd->line, fd->col, "default",
                         "messages can't have default values (field '%s')", fd->name);
    } else {
        fd->type = PB_T_ENUM;
        fd->en = s->p;
        if (f->syntax == 3 && fd->en->closed)
            return rfail(r, fd->line, fd->col, "type",
                         "enum \"%.200s\" is a proto2 enum and can't be used in a proto3 message",
                         fd->en->full);
        if (fd->label == PB_L_REPEATED && !fd->is_map && f->syntax == 3)
            fd->packed = true;
    }
    if (fd->is_map && fd->type == PB_T_ENUM && f->syntax == 3 && fd->en->closed)
        return rfail(r, fd->line, fd->col, "type", "a proto3 map can't hold a proto2 enum");
    return 0;
}

static bool in_ranges(const pb_range *v, size_t n, int64_t x)
{
    for (size_t i = 0; i < n; i++)
        if (x >= v[i].lo && x <= v[i].hi)
            return true;
    return false;
}

static bool in_names(char *const *v, size_t n, const char *x)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(v[i], x))
            return true;
    return false;
}

static int by_number_cmp(const void *a, const void *b)
{
    const pb_field *x = *(pb_field *const *)a, *y = *(pb_field *const *)b;
    return x->number < y->number ? -1 : x->number > y->number;
}

/* The rules of one message that need all of its fields. */
static int check_msg(R *r, pb_msg *m, const pb_file *f)
{
    m->by_number = malloc((m->nfields ? m->nfields : 1) * sizeof(pb_field *));
    if (!m->by_number) {
        schema_set_error(r->err, "", "memory", "out of memory");
        return -1;
    }
    for (size_t i = 0; i < m->nfields; i++) {
        pb_field *fd = &m->fields[i];
        if (resolve_field(r, fd, m, f) < 0)
            return -1;
        if (in_ranges(m->reserved, m->nreserved, fd->number))
            return rfail(r, fd->line, fd->col, "reserved", "field '%s' uses reserved number %d",
                         fd->name, fd->number);
        if (in_names(m->reserved_names, m->nreserved_names, fd->name))
            return rfail(r, fd->line, fd->col, "reserved", "field name '%s' is reserved", fd->name);
        if (in_ranges(m->extensions, m->nextensions, fd->number))
            return rfail(r, fd->line, fd->col, "number",
                         "field '%s' uses number %d, which is in an extension range", fd->name,
                         fd->number);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(m->fields[j].name, fd->name))
                return rfail(r, fd->line, fd->col, "name",
                             "field '%s' is already defined in message '%s'", fd->name, m->full);
        m->by_number[i] = fd;
        fd->req_index = fd->label == PB_L_REQUIRED ? (int)m->nrequired++ : -1;
    }
    if (m->nfields)
        qsort(m->by_number, m->nfields, sizeof(pb_field *), by_number_cmp);
    for (size_t i = 1; i < m->nfields; i++)
        if (m->by_number[i]->number == m->by_number[i - 1]->number) {
            const pb_field *fd = m->by_number[i]->line > m->by_number[i - 1]->line ||
                                         (m->by_number[i]->line == m->by_number[i - 1]->line &&
                                          m->by_number[i]->col > m->by_number[i - 1]->col)
                                     ? m->by_number[i]
                                     : m->by_number[i - 1];
            return rfail(r, fd->line, fd->col, "number",
                         "field number %d has already been used in '%s'", fd->number, m->full);
        }
    for (size_t i = 0; i < m->nextensions; i++)
        if (in_ranges(m->reserved, m->nreserved, m->extensions[i].lo) ||
            in_ranges(m->reserved, m->nreserved, m->extensions[i].hi))
            return rfail(r, m->line, m->col, "reserved",
                         "an extension range of '%s' overlaps a reserved range", m->full);
    return 0;
}

static int check_enum(R *r, const pb_enum *e)
{
    for (size_t i = 0; i < e->n; i++) {
        if (in_ranges(e->reserved, e->nreserved, e->numbers[i]))
            return rfail(r, e->line, e->col, "reserved",
                         "value %s of enum '%s' uses reserved number %d", e->names[i], e->full,
                         e->numbers[i]);
        if (in_names(e->reserved_names, e->nreserved_names, e->names[i]))
            return rfail(r, e->line, e->col, "reserved", "value name %s of enum '%s' is reserved",
                         e->names[i], e->full);
        for (size_t j = 0; j < i; j++) {
            if (!strcmp(e->names[i], e->names[j]))
                return rfail(r, e->line, e->col, "name", "value %s is defined twice in enum '%s'",
                             e->names[i], e->full);
            if (e->numbers[i] == e->numbers[j] && !e->allow_alias)
                return rfail(r, e->line, e->col, "number",
                             "%s and %s of enum '%s' have the same number %d; set "
                             "option allow_alias = true to allow aliases",
                             e->names[j], e->names[i], e->full, e->numbers[i]);
        }
    }
    return 0;
}

static int check_msgs(R *r, pb_msg **v, size_t n, const pb_file *f)
{
    for (size_t i = 0; i < n; i++) {
        if (check_msg(r, v[i], f) < 0 || check_msgs(r, v[i]->msgs, v[i]->nmsgs, f) < 0)
            return -1;
        for (size_t k = 0; k < v[i]->nenums; k++)
            if (check_enum(r, v[i]->enums[k]) < 0)
                return -1;
    }
    return 0;
}

static int check_file(R *r, pb_file *f)
{
    r->f = f;
    if (check_msgs(r, f->msgs, f->nmsgs, f) < 0)
        return -1;
    for (size_t k = 0; k < f->nenums; k++)
        if (check_enum(r, f->enums[k]) < 0)
            return -1;
    for (size_t i = 0; i < f->nrefs; i++) {
        const pb_ref *ref = &f->refs[i];
        const sym *s = resolve(r, ref->type_name, ref->scope, f);
        if (!s || s->kind == SYM_PACKAGE)
            return rfail(r, ref->line, ref->col, "type", "\"%.200s\" is not defined",
                         ref->type_name);
        if (ref->must_be_message && s->kind != SYM_MSG)
            return rfail(r, ref->line, ref->col, "type", "\"%.200s\" is not a message type",
                         ref->type_name);
        const pb_msg *target = s->p;
        for (size_t k = 0; ref->extendee && k < ref->nfields; k++) {
            const pb_field *fd = &f->ext_fields[ref->first_field + k];
            if (!in_ranges(target->extensions, target->nextensions, fd->number))
                return rfail(r, fd->line, fd->col, "number",
                             "\"%.200s\" does not declare %d as an extension number", target->full,
                             fd->number);
        }
    }
    r->f = NULL;
    return 0;
}

/* ---- the files of a schema ---- */

static void schema_destroy(pb_schema *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nfiles; i++)
        pb_file_free(s->files[i]);
    free(s->files);
    free(s);
}

static void pb_free(void *impl)
{
    schema_destroy(impl);
}

/* Parses one file's text; its canonical form into *canonical when asked. */
static int load(pb_schema *s, const char *path, const char *text, size_t len, char **canonical,
                schema_error *err)
{
    pb_toks toks;
    if (pb_lex(text, len, &toks, err) < 0)
        goto prefix;
    pb_file *f = NULL;
    int rc = pb_parse_file(text, &toks, &f, err);
    if (f) {
        pb_file **v = realloc(s->files, (s->nfiles + 1) * sizeof(*v));
        if (!v) {
            pb_file_free(f);
            free(toks.v);
            schema_set_error(err, "", "memory", "out of memory");
            return -1;
        }
        s->files = v;
        v[s->nfiles++] = f;
        if (!(f->path = pb_strndup(path, strlen(path))))
            rc = -1;
    }
    if (rc == 0 && canonical && !(*canonical = pb_canonical(text, &toks))) {
        schema_set_error(err, "", "memory", "out of memory");
        rc = -1;
    }
    free(toks.v);
    if (rc == 0)
        return 0;
prefix:
    if (path[0] && err) {
        char msg[sizeof(err->message)];
        snprintf(msg, sizeof(msg), "in import \"%.100s\": %.380s", path, err->message);
        memcpy(err->message, msg, sizeof(msg));
    }
    return -1;
}

static bool loaded(const pb_schema *s, const char *path)
{
    for (size_t i = 1; i < s->nfiles; i++)
        if (!strcmp(s->files[i]->path, path))
            return true;
    return false;
}

/* Loads the imports of every loaded file, transitively: from the references first, then from
 * the built-in well-known types. Each path is loaded once, so cycles end. */
static int load_imports(pb_schema *s, const schema_dep *deps, size_t ndeps, schema_error *err)
{
    for (size_t i = 0; i < s->nfiles; i++) {
        for (size_t k = 0; k < s->files[i]->nimports; k++) {
            const char *path = s->files[i]->imports[k];
            if (loaded(s, path))
                continue;
            const schema_dep *d = NULL;
            for (size_t j = 0; j < ndeps && !d; j++)
                if (deps[j].name && !strcmp(deps[j].name, path))
                    d = &deps[j];
            const char *text = d ? d->text : pb_wkt_text(path);
            if (!text) {
                schema_set_error(err, "", "reference",
                                 "import \"%.200s\" is neither a reference of the schema nor a "
                                 "well-known type",
                                 path);
                return -1;
            }
            if (load(s, path, text, d ? d->len : strlen(text), NULL, err) < 0)
                return -1;
        }
    }
    return 0;
}

static int resolve_all(pb_schema *s, schema_error *err)
{
    R r = {.err = err};
    char **pkgs = NULL;
    size_t npkgs = 0;
    int rc = -1;
    for (size_t i = 0; i < s->nfiles; i++) {
        pb_file *f = s->files[i];
        r.f = f;
        if (name_msgs(&r, f->msgs, f->nmsgs, f->package, 1) < 0 ||
            name_enums(&r, f->enums, f->nenums, f->package) < 0)
            goto out;
    }
    if (add_packages(&r, s, &pkgs, &npkgs) < 0 || finish_table(&r) < 0)
        goto out;
    for (size_t i = 0; i < s->nfiles; i++)
        if (check_file(&r, s->files[i]) < 0)
            goto out;
    rc = 0;
out:
    for (size_t i = 0; i < npkgs; i++)
        free(pkgs[i]);
    free(pkgs);
    free(r.v);
    return rc;
}

static char *record_name(const pb_file *f)
{
    const char *name = NULL;
    for (size_t i = 0; i < f->nmsgs && !name; i++)
        if (!f->msgs[i]->is_group)
            name = f->msgs[i]->name;
    if (!name && f->nenums)
        name = f->enums[0]->name;
    return name ? join(f->package, name) : NULL;
}

static int pb_parse(const char *text, size_t len, const schema_dep *deps, size_t ndeps, void **impl,
                    char **canonical, char **rname, schema_error *err)
{
    *impl = NULL;
    *canonical = NULL;
    *rname = NULL;
    pb_schema *s = calloc(1, sizeof(*s));
    if (!s) {
        schema_set_error(err, "", "memory", "out of memory");
        return -1;
    }
    if (load(s, "", text, len, canonical, err) < 0 || load_imports(s, deps, ndeps, err) < 0 ||
        resolve_all(s, err) < 0)
        goto fail;
    const pb_file *f = pb_main(s);
    if ((f->nmsgs || f->nenums) && !(*rname = record_name(f))) {
        schema_set_error(err, "", "memory", "out of memory");
        goto fail;
    }
    *impl = s;
    return 0;
fail:
    free(*canonical);
    *canonical = NULL;
    schema_destroy(s);
    return -1;
}

const schema_ops schema_protobuf_ops = {pb_parse, pb_free, pb_can_read, pb_validate,
                                        pb_validate_json};
