/*
 * avro_compat.c: whether data written with one Avro schema can be read with another, by the
 * specification's "Schema Resolution" rules, reported as Java's SchemaCompatibility reports
 * them and worded as Confluent's AvroSchema does for `?verbose=true`:
 *   {errorType:'TYPE', description:'...', additionalInfo:'...'}
 * one line per incompatibility, "the new schema" being the reader. libavro cannot do this: its
 * resolution knows neither defaults nor aliases ("NIY: Default values").
 *
 * Locations are the reader's path as Avro builds it: "/fields/<i>/type", "/items", "/values",
 * "/<i>" for a writer's union branch, "/name", "/size", "/symbols"; "/" at the top.
 *
 * Recursive records: a pair of records whose comparison is under way compares as compatible
 * (as Java's memo does), and the result of a finished pair is remembered, so that a schema
 * whose records are shared many times over is compared once per pair, not once per path.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/avro_int.h"

/* The longest chain of nested comparisons: deeper schemas compare as incompatible. */
#define COMPAT_MAX_DEPTH 1024

typedef struct memo {
    const av_node *r, *w;
    int state;  /* 0 under way, 1 compatible, 2 not */
    bool quiet; /* found without reporting: not reused where messages are wanted */
} memo;

typedef struct cctx {
    schema_msgs *msgs; /* NULL while trying union branches quietly */
    bool ok;
    char loc[512];
    size_t llen;
    int depth;
    memo *memo;
    size_t nmemo, cap;
    bool oom;
} cctx;

static size_t push(cctx *c, const char *seg)
{
    size_t old = c->llen;
    int k = snprintf(c->loc + c->llen, sizeof(c->loc) - c->llen, "/%s", seg);
    if (k > 0 && (size_t)k < sizeof(c->loc) - c->llen)
        c->llen += (size_t)k;
    return old;
}

static size_t push_index(cctx *c, size_t i)
{
    char b[24];
    snprintf(b, sizeof(b), "%zu", i);
    return push(c, b);
}

static void pop(cctx *c, size_t old)
{
    c->llen = old;
    c->loc[old] = 0;
}

static const char *where(const cctx *c)
{
    return c->llen ? c->loc : "/";
}

static void incompatible(cctx *c, const char *type, const char *desc, const char *info)
{
    c->ok = false;
    if (c->msgs)
        schema_msgs_add(c->msgs, "{errorType:'%s', description:'%s', additionalInfo:'%s'}", type,
                        desc, info);
}

static void type_mismatch(cctx *c, const av_node *r, const av_node *w)
{
    char desc[700], info[128];
    snprintf(desc, sizeof(desc),
             "The type (path '%s') of a field in the new schema does not match with the old "
             "schema",
             where(c));
    snprintf(info, sizeof(info), "reader type: %s not compatible with writer type: %s",
             av_kind_upper[r->kind], av_kind_upper[w->kind]);
    incompatible(c, "TYPE_MISMATCH", desc, info);
}

static void compare(cctx *c, const av_node *r, const av_node *w);

/* Quietly: whether w resolves to r (a union branch being tried). */
static bool resolves(cctx *c, const av_node *r, const av_node *w)
{
    schema_msgs *saved = c->msgs;
    bool ok = c->ok;
    c->msgs = NULL;
    c->ok = true;
    compare(c, r, w);
    bool res = c->ok;
    c->msgs = saved;
    c->ok = ok;
    return res;
}

/* Whether a reader branch may read w at all: a named type only one of the same kind and name
 * (or alias), an unnamed type only an unnamed one. This skips the full comparison of branches
 * that cannot match, so that large unions of named types compare in about linear time. */
static bool candidate(const av_node *rb, const av_node *w)
{
    if (!w->fullname)
        return !rb->fullname;
    if (rb->kind != w->kind)
        return false;
    if (!strcmp(rb->name, w->name))
        return true;
    for (size_t i = 0; i < rb->naliases; i++)
        if (!strcmp(rb->aliases[i], w->fullname))
            return true;
    return false;
}

/* A reader union and a writer that is not one: some branch must read it. */
static void to_union(cctx *c, const av_node *r, const av_node *w)
{
    for (size_t i = 0; i < r->nbranches; i++)
        if (candidate(r->branches[i], w) && resolves(c, r->branches[i], w))
            return;
    char desc[700], info[128];
    snprintf(desc, sizeof(desc),
             "The new schema is missing a type inside a union field at path '%s' in the old "
             "schema",
             where(c));
    snprintf(info, sizeof(info), "reader union lacking writer type: %s", av_kind_upper[w->kind]);
    incompatible(c, "MISSING_UNION_BRANCH", desc, info);
}

/* Named types match by unqualified name, or by the writer's full name among the reader's
 * aliases (Java's SchemaCompatibility.schemaNameEquals). As Java, a name that differs does not
 * stop the comparison of the rest: each difference is a message. */
static void names_match(cctx *c, const av_node *r, const av_node *w)
{
    if (!strcmp(r->name, w->name))
        return;
    for (size_t i = 0; i < r->naliases; i++)
        if (!strcmp(r->aliases[i], w->fullname))
            return;
    size_t old = push(c, "name");
    char desc[700], info[600];
    snprintf(desc, sizeof(desc), "The name of the schema has changed (path '%s')", where(c));
    snprintf(info, sizeof(info), "expected: %s", w->fullname);
    incompatible(c, "NAME_MISMATCH", desc, info);
    pop(c, old);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void enum_symbols(cctx *c, const av_node *r, const av_node *w)
{
    const char **missing = calloc(w->nsymbols ? w->nsymbols : 1, sizeof(char *));
    if (!missing) {
        c->oom = true;
        c->ok = false;
        return;
    }
    size_t nm = 0;
    for (size_t i = 0; i < w->nsymbols; i++)
        if (av_symbol_index(r, w->symbols[i]) == SIZE_MAX)
            missing[nm++] = w->symbols[i];
    /* A reader's enum default reads the symbols it lacks. */
    if (nm && !r->enum_default) {
        qsort(missing, nm, sizeof(char *), cmp_str);
        av_buf info = {0};
        av_buf_putc(&info, '[');
        for (size_t i = 0; i < nm; i++) {
            if (i)
                av_buf_puts(&info, ", ");
            av_buf_puts(&info, missing[i]);
        }
        av_buf_putc(&info, ']');
        size_t old = push(c, "symbols");
        char *desc = NULL;
        const char *list = info.failed ? "" : info.p;
        size_t dl = strlen(list) + strlen(c->loc) + 100;
        if ((desc = malloc(dl)))
            snprintf(desc, dl,
                     "The new schema is missing enum symbols '%s' at path '%s' in the old schema",
                     list, where(c));
        incompatible(c, "MISSING_ENUM_SYMBOLS", desc ? desc : "", list);
        free(desc);
        free(info.p);
        pop(c, old);
    }
    free(missing);
}

static const av_field *writer_field(const av_node *w, const av_field *rf)
{
    const av_field *f = av_field_named(w, rf->name);
    for (size_t a = 0; !f && a < rf->naliases; a++)
        f = av_field_named(w, rf->aliases[a]);
    return f;
}

static void record_fields(cctx *c, const av_node *r, const av_node *w)
{
    size_t o1 = push(c, "fields");
    for (size_t i = 0; i < r->nfields; i++) {
        const av_field *rf = &r->fields[i];
        size_t o2 = push_index(c, i);
        const av_field *wf = writer_field(w, rf);
        if (wf) {
            size_t o3 = push(c, "type");
            compare(c, rf->type, wf->type);
            pop(c, o3);
        } else if (!rf->def && rf->type->kind == AV_ENUM && rf->type->enum_default) {
            /* Java's quirk, kept for the same answers: a missing enum field whose enum has a
             * default is compared with the writer's record itself (a TYPE_MISMATCH). */
            size_t o3 = push(c, "type");
            compare(c, rf->type, w);
            pop(c, o3);
        } else if (!rf->def) {
            char desc[900];
            snprintf(desc, sizeof(desc),
                     "The field '%s' at path '%s' in the new schema has no default value and is "
                     "missing in the old schema",
                     rf->name, where(c));
            incompatible(c, "READER_FIELD_MISSING_DEFAULT_VALUE", desc, rf->name);
        }
        pop(c, o2);
    }
    pop(c, o1);
}

/* The memo is an open-addressed hash of (reader, writer) pairs, at most half full. */
static size_t pair_hash(const av_node *r, const av_node *w)
{
    uint64_t h = (uint64_t)(uintptr_t)r * 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)w;
    return (size_t)(h ^ (h >> 29));
}

static memo *memo_find(cctx *c, const av_node *r, const av_node *w, bool quiet)
{
    if (!c->cap)
        return NULL;
    for (size_t i = pair_hash(r, w) & (c->cap - 1);; i = (i + 1) & (c->cap - 1)) {
        memo *m = &c->memo[i];
        if (!m->r)
            return NULL;
        if (m->r == r && m->w == w && m->quiet == quiet)
            return m;
    }
}

static memo *memo_add(cctx *c, const av_node *r, const av_node *w, bool quiet)
{
    if ((c->nmemo + 1) * 2 > c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        memo *t = calloc(cap, sizeof(*t));
        if (!t)
            return NULL;
        for (size_t i = 0; i < c->cap; i++) {
            if (!c->memo[i].r)
                continue;
            size_t at = pair_hash(c->memo[i].r, c->memo[i].w) & (cap - 1);
            while (t[at].r)
                at = (at + 1) & (cap - 1);
            t[at] = c->memo[i];
        }
        free(c->memo);
        c->memo = t;
        c->cap = cap;
    }
    size_t at = pair_hash(r, w) & (c->cap - 1);
    while (c->memo[at].r)
        at = (at + 1) & (c->cap - 1);
    c->memo[at] = (memo){r, w, 0, quiet};
    c->nmemo++;
    return &c->memo[at];
}

static void records(cctx *c, const av_node *r, const av_node *w)
{
    bool quiet = !c->msgs;
    /* Where messages are wanted, only a result found with messages is reused; quietly, any. */
    memo *m = memo_find(c, r, w, false);
    if (!m && quiet)
        m = memo_find(c, r, w, true);
    if (m) {
        /* Under way (a recursion): compatible so far; finished: its result, reported once. */
        if (m->state == 2)
            c->ok = false;
        return;
    }
    if (!memo_add(c, r, w, quiet)) {
        c->oom = true;
        c->ok = false;
        return;
    }
    bool ok = c->ok;
    c->ok = true;
    names_match(c, r, w);
    record_fields(c, r, w);
    /* The table may have grown meanwhile: find the entry again. */
    memo_find(c, r, w, quiet)->state = c->ok ? 1 : 2;
    c->ok = c->ok && ok;
}

static void same_kind(cctx *c, const av_node *r, const av_node *w)
{
    size_t old;
    switch (r->kind) {
    case AV_ARRAY:
    case AV_MAP:
        old = push(c, r->kind == AV_ARRAY ? "items" : "values");
        compare(c, r->items, w->items);
        pop(c, old);
        return;
    case AV_FIXED:
        names_match(c, r, w);
        if (r->size != w->size) {
            old = push(c, "size");
            char desc[700], info[96];
            snprintf(desc, sizeof(desc),
                     "The size of FIXED type field at path '%s' in the new schema does not match "
                     "with the old schema",
                     where(c));
            snprintf(info, sizeof(info), "expected: %zu, found: %zu", w->size, r->size);
            incompatible(c, "FIXED_SIZE_MISMATCH", desc, info);
            pop(c, old);
        }
        return;
    case AV_ENUM:
        names_match(c, r, w);
        enum_symbols(c, r, w);
        return;
    case AV_RECORD:
        records(c, r, w);
        return;
    case AV_UNION:
        for (size_t i = 0; i < w->nbranches; i++) {
            old = push_index(c, i);
            compare(c, r, w->branches[i]);
            pop(c, old);
        }
        return;
    default:
        return; /* the same primitive */
    }
}

static void compare(cctx *c, const av_node *r, const av_node *w)
{
    if (c->depth >= COMPAT_MAX_DEPTH) {
        incompatible(c, "TYPE_MISMATCH", "The schemas nest too deeply to be compared", "too deep");
        return;
    }
    c->depth++;
    if (r->kind == w->kind) {
        same_kind(c, r, w);
    } else if (w->kind == AV_UNION) {
        /* Each branch the writer may have written must be readable. */
        for (size_t i = 0; i < w->nbranches; i++) {
            size_t old = push_index(c, i);
            compare(c, r, w->branches[i]);
            pop(c, old);
        }
    } else {
        bool ok;
        switch (r->kind) {
        case AV_LONG:
            ok = w->kind == AV_INT;
            break;
        case AV_FLOAT:
            ok = w->kind == AV_INT || w->kind == AV_LONG;
            break;
        case AV_DOUBLE:
            ok = w->kind == AV_INT || w->kind == AV_LONG || w->kind == AV_FLOAT;
            break;
        case AV_BYTES:
            ok = w->kind == AV_STRING;
            break;
        case AV_STRING:
            ok = w->kind == AV_BYTES;
            break;
        case AV_UNION:
            to_union(c, r, w);
            ok = true;
            break;
        default:
            ok = false;
        }
        if (!ok)
            type_mismatch(c, r, w);
    }
    c->depth--;
}

bool av_can_read(const av_schema *reader, const av_schema *writer, schema_msgs *msgs)
{
    cctx c = {.msgs = msgs, .ok = true};
    compare(&c, reader->root, writer->root);
    free(c.memo);
    if (c.oom && msgs)
        schema_msgs_add(msgs, "out of memory while comparing the schemas");
    return c.ok && !c.oom;
}
