/*
 * avro_parse.c: an Avro schema's JSON text (Avro 1.11 specification, "Schema Declaration") to
 * the node graph of avro_int.h. Written by hand over jansson rather than with libavro's
 * avro_schema_from_json, because the registry needs what libavro drops: documentation, field
 * order, aliases, unknown properties in their order (Confluent's canonical form prints them),
 * defaults checked against their types, and references into other schemas' named types.
 *
 * The rules follow Java's Schema.Parser (which is what Confluent's registry runs): a name is
 * [A-Za-z_][A-Za-z0-9_]* and, as in Java, non-ASCII letters (the specification says ASCII;
 * registries hold such names), a namespace is taken as written, as Java 1.11 does; a named type
 * without a namespace takes the one of the type it is declared in; a name is looked up in the
 * current namespace, then in none; a name may not be defined twice nor be a primitive's; a union
 * holds no union directly and no two branches of the same unnamed type or of the same name; an
 * enum's symbols are names, distinct, and its default one of them; a field's default must be a
 * value of its type (of the first branch for a union). Logical types stay properties: Java ignores
 * an invalid one rather than refusing the schema, and none changes the encoding.
 *
 * Errors carry the JSON pointer of the offending part of the schema text.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/avro_int.h"

const char *const av_kind_names[AV_NKINDS] = {"null",   "boolean", "int",    "long",   "float",
                                              "double", "bytes",   "string", "record", "enum",
                                              "array",  "map",     "union",  "fixed"};
const char *const av_kind_upper[AV_NKINDS] = {"NULL",   "BOOLEAN", "INT",    "LONG",   "FLOAT",
                                              "DOUBLE", "BYTES",   "STRING", "RECORD", "ENUM",
                                              "ARRAY",  "MAP",     "UNION",  "FIXED"};

static const char *const schema_reserved[] = {"doc",       "fields",  "items",   "name",
                                              "namespace", "size",    "symbols", "values",
                                              "type",      "aliases", NULL};
static const char *const enum_reserved[] = {"doc",       "fields",  "items",   "name",
                                            "namespace", "size",    "symbols", "values",
                                            "type",      "aliases", "default", NULL};
static const char *const field_reserved[] = {"default", "doc",     "name", "order",
                                             "type",    "aliases", NULL};

typedef struct pctx {
    av_schema *s;
    schema_error *err;
    char path[256];
    size_t plen;
    int depth;
    const char *where;            /* "" for the schema, or "reference 'x': " */
    av_node *prim[AV_STRING + 1]; /* the shared primitive nodes without properties */
} pctx;

#define FAIL(c, rule, ...)                                                                         \
    do {                                                                                           \
        char msg_[400];                                                                            \
        snprintf(msg_, sizeof(msg_), __VA_ARGS__);                                                 \
        schema_set_error((c)->err, (c)->path, rule, "%s%s", (c)->where, msg_);                     \
    } while (0)

/* Appends "/seg" to the path (truncating quietly past its size); returns the old length. */
static size_t path_push(pctx *c, const char *seg)
{
    size_t old = c->plen;
    if (c->plen + 1 < sizeof(c->path))
        c->path[c->plen++] = '/';
    for (const char *q = seg; *q && c->plen + 2 < sizeof(c->path); q++) {
        if (*q == '~' || *q == '/') {
            c->path[c->plen++] = '~';
            c->path[c->plen++] = *q == '~' ? '0' : '1';
        } else {
            c->path[c->plen++] = *q;
        }
    }
    c->path[c->plen] = 0;
    return old;
}

static size_t path_push_index(pctx *c, size_t i)
{
    char b[24];
    snprintf(b, sizeof(b), "%zu", i);
    return path_push(c, b);
}

static void path_pop(pctx *c, size_t old)
{
    c->plen = old;
    c->path[old] = 0;
}

uint64_t av_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

size_t av_strtab_find(const av_strtab *t, const char *k, av_key_fn key, const void *ctx)
{
    if (!t->slot)
        return SIZE_MAX;
    for (size_t i = (size_t)av_hash(k) & t->mask;; i = (i + 1) & t->mask) {
        size_t v = t->slot[i];
        if (!v)
            return SIZE_MAX;
        if (!strcmp(key(ctx, v - 1), k))
            return v - 1;
    }
}

static void strtab_put(size_t *slot, size_t mask, const char *k, size_t i)
{
    size_t at = (size_t)av_hash(k) & mask;
    while (slot[at])
        at = (at + 1) & mask;
    slot[at] = i + 1;
}

int av_strtab_add(av_strtab *t, const char *k, size_t i, av_key_fn key, const void *ctx)
{
    /* At most half full: rebuild twice as large from the keys. */
    if (!t->slot || (t->n + 1) * 2 > t->mask + 1) {
        size_t cap = t->slot ? (t->mask + 1) * 2 : 16;
        size_t *slot = calloc(cap, sizeof(*slot));
        if (!slot)
            return -1;
        for (size_t j = 0; t->slot && j <= t->mask; j++)
            if (t->slot[j])
                strtab_put(slot, cap - 1, key(ctx, t->slot[j] - 1), t->slot[j] - 1);
        free(t->slot);
        t->slot = slot;
        t->mask = cap - 1;
    }
    strtab_put(t->slot, t->mask, k, i);
    t->n++;
    return 0;
}

void av_strtab_free(av_strtab *t)
{
    free(t->slot);
    t->slot = NULL;
    t->n = 0;
}

const char *av_field_key(const void *node, size_t i)
{
    return ((const av_node *)node)->fields[i].name;
}

const char *av_symbol_key(const void *node, size_t i)
{
    return ((const av_node *)node)->symbols[i];
}

static const char *named_key(const void *sch, size_t i)
{
    return ((const av_schema *)sch)->named[i]->fullname;
}

size_t av_symbol_index(const av_node *n, const char *symbol)
{
    return av_strtab_find(&n->symbol_ix, symbol, av_symbol_key, n);
}

const av_field *av_field_named(const av_node *n, const char *name)
{
    size_t i = av_strtab_find(&n->field_ix, name, av_field_key, n);
    return i == SIZE_MAX ? NULL : &n->fields[i];
}

static av_node *node_new(pctx *c, av_kind kind)
{
    av_schema *s = c->s;
    if (s->nnodes == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        av_node **t = realloc(s->nodes, cap * sizeof(*t));
        if (!t)
            goto oom;
        s->nodes = t;
        s->cap = cap;
    }
    av_node *n = calloc(1, sizeof(*n));
    if (!n)
        goto oom;
    n->kind = kind;
    n->id = s->nnodes;
    s->nodes[s->nnodes++] = n;
    return n;
oom:
    FAIL(c, "memory", "out of memory");
    return NULL;
}

/* A name: a letter or '_', then letters, digits and '_'. As Java (Character.isLetter), letters
 * beyond ASCII are taken: any non-ASCII character counts as one (jansson has checked UTF-8). */
static bool name_ok(const char *p, size_t n)
{
    if (n == 0 || !((p[0] >= 'A' && p[0] <= 'Z') || (p[0] >= 'a' && p[0] <= 'z') || p[0] == '_' ||
                    (unsigned char)p[0] >= 0x80))
        return false;
    for (size_t i = 1; i < n; i++) {
        char ch = p[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || (unsigned char)ch >= 0x80))
            return false;
    }
    return true;
}

/* A full name as Java's Name checks it: the part after the last dot is a name; the namespace
 * before it is taken as written (Java 1.11 does not check it, and registries hold schemas with
 * namespaces such as "com.my-company"). */
static bool dotted_ok(const char *p)
{
    const char *d = strrchr(p, '.');
    const char *last = d ? d + 1 : p;
    return name_ok(last, strlen(last));
}

static bool is_primitive(const char *t, av_kind *k)
{
    for (int i = AV_NULL; i <= AV_STRING; i++)
        if (!strcmp(t, av_kind_names[i])) {
            *k = (av_kind)i;
            return true;
        }
    return false;
}

static char *join_name(const char *space, const char *name)
{
    size_t a = space ? strlen(space) : 0, b = strlen(name);
    char *f = malloc(a + b + 2);
    if (!f)
        return NULL;
    if (a) {
        memcpy(f, space, a);
        f[a] = '.';
        memcpy(f + a + 1, name, b + 1);
    } else {
        memcpy(f, name, b + 1);
    }
    return f;
}

static av_node *lookup_full(const av_schema *s, const char *full)
{
    size_t i = av_strtab_find(&s->name_ix, full, named_key, s);
    return i == SIZE_MAX ? NULL : s->named[i];
}

/* A name as written in a type position: in the current namespace, then in none. */
static av_node *lookup(const av_schema *s, const char *name, const char *space)
{
    if (strchr(name, '.') || !space)
        return lookup_full(s, name);
    char *f = join_name(space, name);
    av_node *n = f ? lookup_full(s, f) : NULL;
    free(f);
    return n ? n : lookup_full(s, name);
}

static int collect_props(pctx *c, const json_t *obj, const char *const *reserved, json_t **out)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        bool skip = false;
        for (const char *const *r = reserved; *r && !skip; r++)
            skip = !strcmp(*r, key);
        if (skip)
            continue;
        if (!*out && !(*out = json_object())) {
            FAIL(c, "memory", "out of memory");
            return -1;
        }
        if (json_object_set(*out, key, v)) {
            FAIL(c, "memory", "out of memory");
            return -1;
        }
    }
    return 0;
}

/* Optional string member: *out, NULL when absent. As Java's getOptionalText, a member that is
 * not a string counts as absent (Jackson's textValue() of it is null). 0, or -1 (memory). */
static int opt_string(pctx *c, const json_t *obj, const char *key, char **out)
{
    *out = NULL;
    const json_t *v = json_object_get(obj, key);
    if (!json_is_string(v))
        return 0;
    if (!(*out = strdup(json_string_value(v)))) {
        FAIL(c, "memory", "out of memory");
        return -1;
    }
    return 0;
}

/* "aliases": an array of strings. Named types' aliases are full names (relative to the type's
 * namespace), fields' are plain names. */
static int parse_aliases(pctx *c, const json_t *obj, const char *space, bool named, char ***out,
                         size_t *nout)
{
    const json_t *a = json_object_get(obj, "aliases");
    if (!a)
        return 0;
    size_t old = path_push(c, "aliases");
    if (!json_is_array(a)) {
        FAIL(c, "aliases", "aliases must be an array of names");
        return -1;
    }
    size_t n = json_array_size(a);
    *out = calloc(n ? n : 1, sizeof(char *));
    if (!*out) {
        FAIL(c, "memory", "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(a, i);
        size_t o2 = path_push_index(c, i);
        if (!json_is_string(e) ||
            !(named ? dotted_ok(json_string_value(e))
                    : name_ok(json_string_value(e), strlen(json_string_value(e))))) {
            FAIL(c, "aliases", "an alias must be a valid name");
            return -1;
        }
        path_pop(c, o2);
        const char *v = json_string_value(e);
        char *s = named && !strchr(v, '.') ? join_name(space, v) : strdup(v);
        if (!s) {
            FAIL(c, "memory", "out of memory");
            return -1;
        }
        (*out)[(*nout)++] = s;
    }
    path_pop(c, old);
    return 0;
}

/* A named type's name, namespace, doc and aliases; registers it in the name table. */
static int parse_name(pctx *c, const json_t *obj, const char *space, av_node *n)
{
    const json_t *nm = json_object_get(obj, "name");
    if (!json_is_string(nm)) {
        FAIL(c, "name", "a %s needs a \"name\" string", av_kind_names[n->kind]);
        return -1;
    }
    const char *name = json_string_value(nm);
    /* A namespace that is not a string counts as absent, as in Java. */
    const json_t *ns = json_object_get(obj, "namespace");
    if (!json_is_string(ns))
        ns = NULL;
    const char *sp = ns ? json_string_value(ns) : space;
    const char *dot = strrchr(name, '.');
    size_t old = path_push(c, "name");
    if (dot) {
        if (!(n->space = strndup(name, (size_t)(dot - name))) || !(n->name = strdup(dot + 1)))
            goto oom;
    } else {
        if (!(n->name = strdup(name)) || (sp && *sp && !(n->space = strdup(sp))))
            goto oom;
    }
    if (n->space && !*n->space) {
        free(n->space);
        n->space = NULL;
    }
    if (!name_ok(n->name, strlen(n->name))) {
        FAIL(c, "name", "invalid name \"%s\"%s%s", name, n->space && !dot ? " in namespace " : "",
             n->space && !dot ? n->space : "");
        return -1;
    }
    if (!(n->fullname = join_name(n->space, n->name)))
        goto oom;
    av_kind k;
    if (is_primitive(n->fullname, &k)) {
        FAIL(c, "name", "schemas may not be named after primitives: %s", n->fullname);
        return -1;
    }
    if (lookup_full(c->s, n->fullname)) {
        FAIL(c, "name", "can't redefine: %s", n->fullname);
        return -1;
    }
    path_pop(c, old);
    av_schema *s = c->s;
    if (s->nnamed == s->named_cap) {
        size_t cap = s->named_cap ? s->named_cap * 2 : 8;
        av_node **t = realloc(s->named, cap * sizeof(*t));
        if (!t)
            goto oom;
        s->named = t;
        s->named_cap = cap;
    }
    if (av_strtab_add(&s->name_ix, n->fullname, s->nnamed, named_key, s))
        goto oom;
    s->named[s->nnamed++] = n;
    if (opt_string(c, obj, "doc", &n->doc))
        return -1;
    return parse_aliases(c, obj, n->space, true, &n->aliases, &n->naliases);
oom:
    FAIL(c, "memory", "out of memory");
    return -1;
}

static av_node *parse_type(pctx *c, const json_t *j, const char *space);

static int parse_field(pctx *c, const json_t *fj, const char *space, av_field *f)
{
    if (!json_is_object(fj)) {
        FAIL(c, "fields", "a field must be an object");
        return -1;
    }
    const json_t *nm = json_object_get(fj, "name");
    if (!json_is_string(nm) || !name_ok(json_string_value(nm), strlen(json_string_value(nm)))) {
        size_t old = path_push(c, "name");
        FAIL(c, "name", nm ? "invalid field name" : "no field name");
        path_pop(c, old);
        return -1;
    }
    if (!(f->name = strdup(json_string_value(nm)))) {
        FAIL(c, "memory", "out of memory");
        return -1;
    }
    if (opt_string(c, fj, "doc", &f->doc))
        return -1;
    const json_t *tj = json_object_get(fj, "type");
    if (!tj) {
        FAIL(c, "type", "no field type for field '%s'", f->name);
        return -1;
    }
    size_t old = path_push(c, "type");
    if (!(f->type = parse_type(c, tj, space)))
        return -1;
    path_pop(c, old);
    const json_t *oj = json_object_get(fj, "order");
    if (oj) {
        const char *o = json_is_string(oj) ? json_string_value(oj) : "";
        if (!strcmp(o, "ascending"))
            f->order = AV_ASCENDING;
        else if (!strcmp(o, "descending"))
            f->order = AV_DESCENDING;
        else if (!strcmp(o, "ignore"))
            f->order = AV_IGNORE;
        else {
            old = path_push(c, "order");
            FAIL(c, "order", "order must be \"ascending\", \"descending\" or \"ignore\"");
            return -1;
        }
    }
    const json_t *dj = json_object_get(fj, "default");
    if (dj) {
        old = path_push(c, "default");
        if (!av_json_fits(f->type, dj, 0)) {
            FAIL(c, "default", "invalid default for field %s: not a %s", f->name,
                 f->type->fullname ? f->type->fullname : av_kind_names[f->type->kind]);
            return -1;
        }
        path_pop(c, old);
        f->def = json_incref((json_t *)dj);
    }
    if (collect_props(c, fj, field_reserved, &f->props))
        return -1;
    return parse_aliases(c, fj, NULL, false, &f->aliases, &f->naliases);
}

static av_node *parse_record(pctx *c, const json_t *j, const char *space, bool is_error)
{
    av_node *n = node_new(c, AV_RECORD);
    if (!n || parse_name(c, j, space, n))
        return NULL;
    n->is_error = is_error;
    const json_t *fs = json_object_get(j, "fields");
    if (!json_is_array(fs)) {
        FAIL(c, "fields", "record has no fields array");
        return NULL;
    }
    size_t nf = json_array_size(fs);
    if (!(n->fields = calloc(nf ? nf : 1, sizeof(av_field)))) {
        FAIL(c, "memory", "out of memory");
        return NULL;
    }
    size_t old = path_push(c, "fields");
    for (size_t i = 0; i < nf; i++) {
        size_t o2 = path_push_index(c, i);
        /* nfields grows with each field parsed, so that the graph is always freeable. */
        av_field *f = &n->fields[n->nfields++];
        if (parse_field(c, json_array_get(fs, i), n->space, f))
            return NULL;
        if (av_field_named(n, f->name)) {
            FAIL(c, "name", "duplicate field %s in record %s", f->name, n->fullname);
            return NULL;
        }
        if (av_strtab_add(&n->field_ix, f->name, i, av_field_key, n)) {
            FAIL(c, "memory", "out of memory");
            return NULL;
        }
        path_pop(c, o2);
    }
    path_pop(c, old);
    return collect_props(c, j, schema_reserved, &n->props) ? NULL : n;
}

static av_node *parse_enum(pctx *c, const json_t *j, const char *space)
{
    av_node *n = node_new(c, AV_ENUM);
    if (!n || parse_name(c, j, space, n))
        return NULL;
    const json_t *sy = json_object_get(j, "symbols");
    if (!json_is_array(sy)) {
        FAIL(c, "symbols", "enum has no symbols array");
        return NULL;
    }
    size_t ns = json_array_size(sy);
    if (!(n->symbols = calloc(ns ? ns : 1, sizeof(char *)))) {
        FAIL(c, "memory", "out of memory");
        return NULL;
    }
    size_t old = path_push(c, "symbols");
    for (size_t i = 0; i < ns; i++) {
        const json_t *e = json_array_get(sy, i);
        size_t o2 = path_push_index(c, i);
        if (!json_is_string(e) || !name_ok(json_string_value(e), strlen(json_string_value(e)))) {
            FAIL(c, "symbols", "an enum symbol must be a valid name");
            return NULL;
        }
        if (av_symbol_index(n, json_string_value(e)) != SIZE_MAX) {
            FAIL(c, "symbols", "duplicate enum symbol %s", json_string_value(e));
            return NULL;
        }
        if (!(n->symbols[n->nsymbols] = strdup(json_string_value(e))) ||
            av_strtab_add(&n->symbol_ix, n->symbols[n->nsymbols], n->nsymbols, av_symbol_key, n)) {
            n->nsymbols += n->symbols[n->nsymbols] != NULL;
            FAIL(c, "memory", "out of memory");
            return NULL;
        }
        n->nsymbols++;
        path_pop(c, o2);
    }
    path_pop(c, old);
    if (opt_string(c, j, "default", &n->enum_default))
        return NULL;
    if (n->enum_default) {
        if (av_symbol_index(n, n->enum_default) == SIZE_MAX) {
            old = path_push(c, "default");
            FAIL(c, "default", "the enum default %s is not one of the symbols", n->enum_default);
            return NULL;
        }
    }
    return collect_props(c, j, enum_reserved, &n->props) ? NULL : n;
}

static av_node *parse_fixed(pctx *c, const json_t *j, const char *space)
{
    av_node *n = node_new(c, AV_FIXED);
    if (!n || parse_name(c, j, space, n))
        return NULL;
    const json_t *sz = json_object_get(j, "size");
    if (!json_is_integer(sz) || json_integer_value(sz) < 0 || json_integer_value(sz) > INT32_MAX) {
        size_t old = path_push(c, "size");
        FAIL(c, "size", "invalid or no size for fixed %s", n->fullname);
        path_pop(c, old);
        return NULL;
    }
    n->size = (size_t)json_integer_value(sz);
    return collect_props(c, j, schema_reserved, &n->props) ? NULL : n;
}

static av_node *parse_container(pctx *c, const json_t *j, const char *space, av_kind kind)
{
    const char *key = kind == AV_ARRAY ? "items" : "values";
    const json_t *it = json_object_get(j, key);
    if (!it) {
        FAIL(c, key, "%s has no %s type", av_kind_names[kind], key);
        return NULL;
    }
    av_node *n = node_new(c, kind);
    if (!n)
        return NULL;
    size_t old = path_push(c, key);
    if (!(n->items = parse_type(c, it, space)))
        return NULL;
    path_pop(c, old);
    return collect_props(c, j, schema_reserved, &n->props) ? NULL : n;
}

/* A union branch's identity (Java's getFullName): a named type's full name, else the type. */
static const char *branch_key(const av_node *b)
{
    return b->fullname ? b->fullname : av_kind_names[b->kind];
}

static const char *branch_key_at(const void *branches, size_t i)
{
    const av_node *b = ((av_node *const *)branches)[i];
    return branch_key(b);
}

static av_node *parse_union(pctx *c, const json_t *j, const char *space)
{
    av_strtab ix = {0};
    av_node *n = node_new(c, AV_UNION);
    if (!n)
        return NULL;
    size_t nb = json_array_size(j);
    if (!(n->branches = calloc(nb ? nb : 1, sizeof(av_node *)))) {
        FAIL(c, "memory", "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < nb; i++) {
        size_t old = path_push_index(c, i);
        av_node *b = parse_type(c, json_array_get(j, i), space);
        if (!b) {
            av_strtab_free(&ix);
            return NULL;
        }
        if (b->kind == AV_UNION) {
            FAIL(c, "union", "a union may not immediately contain another union");
            av_strtab_free(&ix);
            return NULL;
        }
        if (av_strtab_find(&ix, branch_key(b), branch_key_at, n->branches) != SIZE_MAX) {
            FAIL(c, "union", "duplicate in union: %s", branch_key(b));
            av_strtab_free(&ix);
            return NULL;
        }
        n->branches[n->nbranches] = b;
        if (av_strtab_add(&ix, branch_key(b), n->nbranches, branch_key_at, n->branches)) {
            FAIL(c, "memory", "out of memory");
            av_strtab_free(&ix);
            return NULL;
        }
        n->nbranches++;
        path_pop(c, old);
    }
    av_strtab_free(&ix);
    return n;
}

static av_node *parse_object(pctx *c, const json_t *j, const char *space)
{
    const json_t *tj = json_object_get(j, "type");
    if (!json_is_string(tj)) {
        FAIL(c, "type", tj ? "\"type\" must be a string" : "no type");
        return NULL;
    }
    const char *t = json_string_value(tj);
    av_kind k;
    if (is_primitive(t, &k)) {
        av_node *n = node_new(c, k);
        if (!n || collect_props(c, j, schema_reserved, &n->props))
            return NULL;
        return n;
    }
    if (!strcmp(t, "record") || !strcmp(t, "error"))
        return parse_record(c, j, space, t[0] == 'e');
    if (!strcmp(t, "enum"))
        return parse_enum(c, j, space);
    if (!strcmp(t, "fixed"))
        return parse_fixed(c, j, space);
    if (!strcmp(t, "array"))
        return parse_container(c, j, space, AV_ARRAY);
    if (!strcmp(t, "map"))
        return parse_container(c, j, space, AV_MAP);
    av_node *n = lookup(c->s, t, space);
    if (!n) {
        size_t old = path_push(c, "type");
        FAIL(c, "type", "\"%s\" is not a defined name", t);
        path_pop(c, old);
    }
    return n;
}

/* Primitive nodes without properties are shared per schema, one per kind, so that a schema of
 * many "string" fields costs one node for them. */
static av_node *primitive(pctx *c, av_kind k)
{
    if (!c->prim[k])
        c->prim[k] = node_new(c, k);
    return c->prim[k];
}

static av_node *parse_type(pctx *c, const json_t *j, const char *space)
{
    if (c->depth >= SCHEMA_MAX_DEPTH) {
        FAIL(c, "depth", "the schema nests deeper than %d", SCHEMA_MAX_DEPTH);
        return NULL;
    }
    c->depth++;
    av_node *n = NULL;
    if (json_is_string(j)) {
        const char *t = json_string_value(j);
        av_kind k;
        if (is_primitive(t, &k))
            n = primitive(c, k);
        else if (!(n = lookup(c->s, t, space)))
            FAIL(c, "type", "\"%s\" is not a defined name", t);
    } else if (json_is_object(j)) {
        n = parse_object(c, j, space);
    } else if (json_is_array(j)) {
        n = parse_union(c, j, space);
    } else {
        FAIL(c, "type", "a schema must be a string, an object or an array");
    }
    c->depth--;
    return n;
}

bool av_json_fits(const av_node *n, const json_t *v, int depth)
{
    if (depth > SCHEMA_MAX_DEPTH)
        return false;
    switch (n->kind) {
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
        if (json_is_string(v)) {
            const char *s = json_string_value(v);
            return !strcmp(s, "NaN") || !strcmp(s, "Infinity") || !strcmp(s, "-Infinity");
        }
        return json_is_number(v);
    case AV_BYTES:
    case AV_STRING:
    case AV_ENUM:
    case AV_FIXED:
        return json_is_string(v);
    case AV_ARRAY: {
        if (!json_is_array(v))
            return false;
        for (size_t i = 0; i < json_array_size(v); i++)
            if (!av_json_fits(n->items, json_array_get(v, i), depth + 1))
                return false;
        return true;
    }
    case AV_MAP: {
        if (!json_is_object(v))
            return false;
        const char *k;
        json_t *e;
        json_object_foreach((json_t *)v, k, e)
        {
            if (!av_json_fits(n->items, e, depth + 1))
                return false;
        }
        return true;
    }
    case AV_UNION:
        return n->nbranches > 0 && av_json_fits(n->branches[0], v, depth + 1);
    case AV_RECORD: {
        if (!json_is_object(v))
            return false;
        for (size_t i = 0; i < n->nfields; i++) {
            const json_t *e = json_object_get(v, n->fields[i].name);
            if (e ? !av_json_fits(n->fields[i].type, e, depth + 1) : !n->fields[i].def)
                return false;
        }
        return true;
    }
    default:
        return false;
    }
}

/* Marks the types whose every datum is zero bytes long, to the fixpoint (a record is when all
 * its fields are). The binary decoder skips arrays and maps of them without looping over their
 * counts, and may bound any other count by the bytes left, since such items take a byte each
 * at least. */
static void mark_always_empty(av_schema *s)
{
    for (size_t i = 0; i < s->nnodes; i++) {
        av_node *n = s->nodes[i];
        n->always_empty = n->kind == AV_NULL || (n->kind == AV_FIXED && n->size == 0);
    }
    for (bool changed = true; changed;) {
        changed = false;
        for (size_t i = 0; i < s->nnodes; i++) {
            av_node *n = s->nodes[i];
            if (n->kind != AV_RECORD || n->always_empty)
                continue;
            bool all = true;
            for (size_t k = 0; k < n->nfields && all; k++)
                all = n->fields[k].type->always_empty;
            if (all) {
                n->always_empty = true;
                changed = true;
            }
        }
    }
}

static av_node *parse_text(pctx *c, const char *text, size_t len)
{
    json_error_t je;
    json_t *doc = json_loadb(text, len, JSON_DECODE_ANY, &je);
    if (!doc) {
        schema_set_error(c->err, "", "syntax", "%sinvalid JSON at line %d column %d: %s", c->where,
                         je.line, je.column, je.text);
        return NULL;
    }
    av_node *n = parse_type(c, doc, NULL);
    json_decref(doc);
    return n;
}

int av_parse(const char *text, size_t len, const schema_dep *deps, size_t ndeps, av_schema **out,
             schema_error *err)
{
    *out = NULL;
    av_schema *s = calloc(1, sizeof(*s));
    if (!s) {
        schema_set_error(err, "", "memory", "out of memory");
        return -1;
    }
    pctx c = {.s = s, .err = err, .where = ""};
    char where[200];
    for (size_t i = 0; i < ndeps; i++) {
        snprintf(where, sizeof(where), "in reference '%s': ", deps[i].name ? deps[i].name : "");
        c.where = where;
        c.plen = 0;
        c.path[0] = 0;
        av_node *d = parse_text(&c, deps[i].text, deps[i].len);
        if (!d)
            goto fail;
        if (d->fullname)
            d->from_dep = true;
    }
    c.where = "";
    c.plen = 0;
    c.path[0] = 0;
    if (!(s->root = parse_text(&c, text, len)))
        goto fail;
    mark_always_empty(s);
    *out = s;
    return 0;
fail:
    av_schema_free(s);
    return -1;
}

static void free_strs(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void av_schema_free(av_schema *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nnodes; i++) {
        av_node *n = s->nodes[i];
        free(n->name);
        free(n->space);
        free(n->fullname);
        free(n->doc);
        free_strs(n->aliases, n->naliases);
        json_decref(n->props);
        for (size_t k = 0; k < n->nfields; k++) {
            av_field *f = &n->fields[k];
            free(f->name);
            free(f->doc);
            json_decref(f->def);
            free_strs(f->aliases, f->naliases);
            json_decref(f->props);
        }
        free(n->fields);
        av_strtab_free(&n->field_ix);
        av_strtab_free(&n->symbol_ix);
        free_strs(n->symbols, n->nsymbols);
        free(n->enum_default);
        free(n->branches);
        free(n);
    }
    free(s->nodes);
    free(s->named);
    av_strtab_free(&s->name_ix);
    free(s);
}
