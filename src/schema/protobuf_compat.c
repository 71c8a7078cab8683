/*
 * protobuf_compat.c: whether data written with one Protobuf schema can be read with another,
 * by the rules of Confluent's registry (its io.confluent.kafka.schemaregistry.protobuf.diff
 * package), so that a subject's compatibility answers as Confluent's does. The original schema
 * is the writer, the update the reader; every difference has a type, and only the types outside
 * Confluent's compatible set make the schemas incompatible:
 *
 *   PACKAGE_CHANGED                 the files' packages differ
 *   MESSAGE_REMOVED                 a message of the writer is gone (by name, at its scope)
 *   REQUIRED_FIELD_ADDED / _REMOVED a proto2 required field appeared or disappeared
 *   ONEOF_FIELD_REMOVED             a member of a oneof that still has members is gone
 *   MULTIPLE_FIELDS_MOVED_TO_ONEOF  several top-level fields moved into one oneof
 *   FIELD_MOVED_TO_EXISTING_ONEOF   fields of different origins now share a oneof
 *   FIELD_KIND_CHANGED              scalar (enums included) / message / map changed
 *   FIELD_SCALAR_KIND_CHANGED       a scalar left its wire-compatible group: int32, int64,
 *                                   uint32, uint64, bool and enums; sint32, sint64; string,
 *                                   bytes; fixed32, sfixed32; fixed64, sfixed64; float; double
 *   FIELD_NUMERIC_LABEL_CHANGED     a numeric field's explicit label changed (optional,
 *                                   required, repeated; an implicit proto3 label compares equal
 *                                   to any, as in Confluent's code)
 *   FIELD_NAMED_TYPE_CHANGED        a message field's type has another name (without the
 *                                   package), or its message type is itself incompatible
 *
 * Fields are matched by number across the whole message, oneof members included; messages and
 * nested messages by name; enum changes are all compatible. The compared message types of
 * fields are compared once per pair (the result is remembered), which bounds the work by the
 * number of messages even when many fields share a type, and a type that contains itself ends
 * the recursion. Messages are Confluent's: {errorType:"...", description:"..."} with the path
 * "#/Message/field-number"; "new" names the reader and "old" the writer, the words of a
 * BACKWARD check (the default level), where the reader is the new schema.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/protobuf_int.h"

enum diff {
    PACKAGE_CHANGED,
    MESSAGE_REMOVED,
    FIELD_KIND_CHANGED,
    FIELD_SCALAR_KIND_CHANGED,
    FIELD_NAMED_TYPE_CHANGED,
    FIELD_NUMERIC_LABEL_CHANGED,
    REQUIRED_FIELD_ADDED,
    REQUIRED_FIELD_REMOVED,
    ONEOF_FIELD_REMOVED,
    MULTIPLE_FIELDS_MOVED_TO_ONEOF,
    FIELD_MOVED_TO_EXISTING_ONEOF,
};

/* Confluent's descriptions: the first %s is the reader's word, the second the writer's. */
static const struct {
    const char *name, *before, *middle;
} diffs[] = {
    [PACKAGE_CHANGED] = {"PACKAGE_CHANGED", "The package at '",
                         "' in the %s schema does not "
                         "match the package in the %s "
                         "schema"},
    [MESSAGE_REMOVED] = {"MESSAGE_REMOVED", "The %s schema is missing a MESSAGE type at path '",
                         "' in the %s schema"},
    [FIELD_KIND_CHANGED] = {"FIELD_KIND_CHANGED", "The type of a field at path '",
                            "' in the %s schema does not match the %s schema"},
    [FIELD_SCALAR_KIND_CHANGED] = {"FIELD_SCALAR_KIND_CHANGED",
                                   "The kind of a SCALAR field at path '",
                                   "' in the %s schema does not match its kind in the %s schema"},
    [FIELD_NAMED_TYPE_CHANGED] = {"FIELD_NAMED_TYPE_CHANGED",
                                  "The type of a MESSAGE field at path '",
                                  "' in the %s schema does not match its type in the %s schema"},
    [FIELD_NUMERIC_LABEL_CHANGED] = {"FIELD_NUMERIC_LABEL_CHANGED",
                                     "The label for a NUMERIC field at path '",
                                     "' in the %s schema does not match its label in the %s "
                                     "schema"},
    [REQUIRED_FIELD_ADDED] = {"REQUIRED_FIELD_ADDED", "A required field  at path '",
                              "' in the %s schema is missing in the %s schema"},
    [REQUIRED_FIELD_REMOVED] = {"REQUIRED_FIELD_REMOVED",
                                "The %s schema is missing a required field at path: '",
                                "' in the %s schema"},
    [ONEOF_FIELD_REMOVED] = {"ONEOF_FIELD_REMOVED",
                             "The %s schema is missing a oneof field at path '",
                             "' in the %s schema"},
    [MULTIPLE_FIELDS_MOVED_TO_ONEOF] = {"MULTIPLE_FIELDS_MOVED_TO_ONEOF",
                                        "Multiple fields in the oneof at path '",
                                        "' in the %s schema are outside a oneof in the %s schema"},
    [FIELD_MOVED_TO_EXISTING_ONEOF] = {"FIELD_MOVED_TO_EXISTING_ONEOF",
                                       "A field in the oneof at path '",
                                       "' in the %s schema is outside an existing oneof in the "
                                       "%s schema"},
};

#define MAX_COMPARE_DEPTH (4 * SCHEMA_MAX_DEPTH)

typedef struct memo {
    const pb_msg *a, *b;
    int state; /* 1 being compared, 2 compatible, 3 incompatible */
} memo;

typedef struct C {
    schema_msgs *msgs;
    size_t incompatible; /* count of incompatible differences so far */
    char path[1024];
    size_t plen;
    memo *memo;
    size_t nmemo, cap;
    int depth;
    bool oom;
} C;

static size_t push(C *c, const char *seg)
{
    size_t before = c->plen, n = strlen(seg);
    if (c->plen + 1 + n < sizeof(c->path)) {
        c->path[c->plen++] = '/';
        memcpy(c->path + c->plen, seg, n);
        c->plen += n;
    }
    c->path[c->plen] = 0;
    return before;
}

static size_t push_num(C *c, int32_t n)
{
    char b[16];
    snprintf(b, sizeof(b), "%d", n);
    return push(c, b);
}

static void pop(C *c, size_t to)
{
    c->plen = to;
    c->path[to] = 0;
}

static void add(C *c, enum diff d)
{
    c->incompatible++;
    if (!c->msgs)
        return;
    /* The path is made of identifiers and numbers only, so it cannot hold a conversion; the
     * description's %s are the reader's word, then the writer's. */
    char fmt[1400], text[1500];
    snprintf(fmt, sizeof(fmt), "%s#%s%s", diffs[d].before, c->plen ? c->path : "/",
             diffs[d].middle);
    snprintf(text, sizeof(text), fmt, "new", "old");
    schema_msgs_add(c->msgs, "{errorType:\"%s\", description:\"%s\"}", diffs[d].name, text);
}

static void compare_types(C *c, pb_msg *const *a, size_t na, pb_msg *const *b, size_t nb);
static void compare_msg(C *c, const pb_msg *a, const pb_msg *b);

/* The full name without its file's package, as Confluent compares message types. */
static const char *local_name(const pb_msg *m)
{
    size_t n = strlen(m->file->package);
    return n && !strncmp(m->full, m->file->package, n) && m->full[n] == '.' ? m->full + n + 1
                                                                            : m->full;
}

static memo *find_memo(C *c, const pb_msg *a, const pb_msg *b)
{
    for (size_t i = 0; i < c->nmemo; i++)
        if (c->memo[i].a == a && c->memo[i].b == b)
            return &c->memo[i];
    return NULL;
}

/* Two message types of fields with the same local name: compared in a context of their own,
 * whose paths start at the message's local name; incompatible when that comparison is. */
static bool same_message(C *c, const pb_msg *a, const pb_msg *b)
{
    memo *m = find_memo(c, a, b);
    if (m)
        return m->state != 3;
    if (c->depth >= MAX_COMPARE_DEPTH) {
        c->oom = true; /* reported as incompatible: too deep to decide */
        return false;
    }
    if (c->nmemo == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        memo *v = realloc(c->memo, cap * sizeof(*v));
        if (!v) {
            c->oom = true;
            return false;
        }
        c->memo = v;
        c->cap = cap;
    }
    size_t at = c->nmemo++;
    c->memo[at] = (memo){a, b, 1};
    char saved[sizeof(c->path)];
    size_t saved_len = c->plen;
    memcpy(saved, c->path, c->plen + 1);
    c->plen = 0;
    c->path[0] = 0;
    char local[sizeof(c->path)];
    snprintf(local, sizeof(local), "%s", local_name(a));
    for (char *s = local; *s; s++)
        if (*s == '.')
            *s = '/';
    push(c, local);
    size_t before = c->incompatible;
    c->depth++;
    compare_msg(c, a, b);
    c->depth--;
    memcpy(c->path, saved, saved_len + 1);
    c->plen = saved_len;
    bool ok = c->incompatible == before;
    c->memo[at].state = ok ? 2 : 3;
    return ok;
}

enum { K_SCALAR, K_MESSAGE, K_MAP };
enum { S_GENERAL, S_SIGNED, S_STRING, S_FIXED32, S_FIXED64, S_FLOAT, S_DOUBLE };

static int scalar_kind(int type)
{
    switch (type) {
    case PB_T_SINT32:
    case PB_T_SINT64:
        return S_SIGNED;
    case PB_T_STRING:
    case PB_T_BYTES:
        return S_STRING;
    case PB_T_FIXED32:
    case PB_T_SFIXED32:
        return S_FIXED32;
    case PB_T_FIXED64:
    case PB_T_SFIXED64:
        return S_FIXED64;
    case PB_T_FLOAT:
        return S_FLOAT;
    case PB_T_DOUBLE:
        return S_DOUBLE;
    default:
        return S_GENERAL; /* int32, int64, uint32, uint64, bool, enums */
    }
}

/* A type as the comparison sees it: a scalar (enums too), a message, or a map. */
typedef struct ty {
    int type;
    const pb_msg *msg;
} ty;

static int kind_of(ty t)
{
    return t.type == PB_T_MESSAGE || t.type == PB_T_GROUP ? K_MESSAGE : K_SCALAR;
}

static void compare_typed(C *c, int la, int lb, ty a, ty b)
{
    int ka = kind_of(a), kb = kind_of(b);
    if (ka != kb) {
        add(c, FIELD_KIND_CHANGED);
        return;
    }
    if (ka == K_SCALAR) {
        int sa = scalar_kind(a.type), sb = scalar_kind(b.type);
        if (sa != sb)
            add(c, FIELD_SCALAR_KIND_CHANGED);
        else if (la != PB_L_NONE && lb != PB_L_NONE && la != lb && sa != S_STRING)
            add(c, FIELD_NUMERIC_LABEL_CHANGED);
        return;
    }
    if (strcmp(local_name(a.msg), local_name(b.msg)) || !same_message(c, a.msg, b.msg))
        add(c, FIELD_NAMED_TYPE_CHANGED);
}

static void compare_field(C *c, const pb_field *a, const pb_field *b)
{
    if (a->is_map != b->is_map) {
        add(c, FIELD_KIND_CHANGED);
        return;
    }
    ty ta = {a->type, a->msg}, tb = {b->type, b->msg};
    if (a->is_map) {
        compare_typed(c, PB_L_NONE, PB_L_NONE, (ty){a->key_type, NULL}, (ty){b->key_type, NULL});
        compare_typed(c, PB_L_NONE, PB_L_NONE, ta, tb);
        return;
    }
    compare_typed(c, a->label, b->label, ta, tb);
}

static const char *oneof_of(const pb_msg *m, const pb_field *f)
{
    return f && f->oneof >= 0 ? m->oneofs[f->oneof] : NULL;
}

static const pb_field *by_number(const pb_msg *m, int32_t n)
{
    size_t lo = 0, hi = m->nfields;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (m->by_number[mid]->number == n)
            return m->by_number[mid];
        if (m->by_number[mid]->number < n)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static int oneof_index(const pb_msg *m, const char *name)
{
    for (size_t i = 0; i < m->noneofs; i++)
        if (!strcmp(m->oneofs[i], name))
            return (int)i;
    return -1;
}

/* Whether the writer's oneof `k` is gone with all its members. */
static bool oneof_deleted(const pb_msg *a, size_t k, const pb_msg *b)
{
    if (oneof_index(b, a->oneofs[k]) >= 0)
        return false;
    for (size_t i = 0; i < a->nfields; i++)
        if (a->fields[i].oneof == (int)k && by_number(b, a->fields[i].number))
            return false;
    return true;
}

/* The reader's oneofs that join fields which were independent in the writer. */
static void compare_oneofs(C *c, const pb_msg *a, const pb_msg *b)
{
    for (size_t k = 0; k < b->noneofs; k++) {
        /* The origin of each member: a writer's oneof (its index) or a top-level field
         * (-1 - its number); new fields have none. Two origins or more is the change. */
        int64_t first = 0;
        bool have = false, several = false;
        int moved_in = 0;
        for (size_t i = 0; i < b->nfields; i++) {
            const pb_field *f = &b->fields[i];
            if (f->oneof != (int)k)
                continue;
            const pb_field *o = by_number(a, f->number);
            if (!o)
                continue;
            int64_t origin = o->oneof >= 0 ? o->oneof : -1 - (int64_t)o->number;
            if (o->oneof < 0)
                moved_in++;
            if (have && origin != first)
                several = true;
            first = have ? first : origin;
            have = true;
        }
        if (several) {
            size_t at = push(c, b->oneofs[k]);
            add(c, moved_in > 1 ? MULTIPLE_FIELDS_MOVED_TO_ONEOF : FIELD_MOVED_TO_EXISTING_ONEOF);
            pop(c, at);
        }
    }
}

static void compare_fields(C *c, const pb_msg *a, const pb_msg *b)
{
    size_t i = 0, j = 0;
    while (i < a->nfields || j < b->nfields) {
        const pb_field *fa = i < a->nfields ? a->by_number[i] : NULL;
        const pb_field *fb = j < b->nfields ? b->by_number[j] : NULL;
        if (fa && fb && fa->number != fb->number) {
            if (fa->number < fb->number)
                fb = NULL;
            else
                fa = NULL;
        }
        i += fa != NULL;
        j += fb != NULL;
        const char *oa = oneof_of(a, fa), *ob = oneof_of(b, fb);
        size_t at = c->plen;
        if (!fb) {
            if (oa) {
                if (!oneof_deleted(a, (size_t)fa->oneof, b)) {
                    push(c, oa);
                    push_num(c, fa->number);
                    add(c, ONEOF_FIELD_REMOVED);
                }
            } else if (fa->label == PB_L_REQUIRED) {
                push_num(c, fa->number);
                add(c, REQUIRED_FIELD_REMOVED);
            }
        } else if (!fa) {
            if (!ob && fb->label == PB_L_REQUIRED) {
                push_num(c, fb->number);
                add(c, REQUIRED_FIELD_ADDED);
            }
        } else {
            if (ob)
                push(c, ob);
            push_num(c, fb->number);
            compare_field(c, fa, fb);
        }
        pop(c, at);
    }
}

static void compare_msg(C *c, const pb_msg *a, const pb_msg *b)
{
    compare_oneofs(c, a, b);
    compare_fields(c, a, b);
    compare_types(c, a->msgs, a->nmsgs, b->msgs, b->nmsgs);
}

/* Messages matched by name at one scope: a writer's message missing from the reader is
 * MESSAGE_REMOVED; the rest are compared. Groups' bodies are compared through their fields. */
static void compare_types(C *c, pb_msg *const *a, size_t na, pb_msg *const *b, size_t nb)
{
    if (c->depth >= MAX_COMPARE_DEPTH)
        return;
    c->depth++;
    for (size_t i = 0; i < na; i++) {
        if (a[i]->is_group)
            continue;
        const pb_msg *match = NULL;
        for (size_t k = 0; k < nb && !match; k++)
            if (!b[k]->is_group && !strcmp(a[i]->name, b[k]->name))
                match = b[k];
        size_t at = push(c, a[i]->name);
        if (!match)
            add(c, MESSAGE_REMOVED);
        else
            compare_msg(c, a[i], match);
        pop(c, at);
    }
    c->depth--;
}

bool pb_can_read(const void *reader, const void *writer, schema_msgs *msgs)
{
    const pb_file *upd = pb_main(reader), *orig = pb_main(writer);
    C c = {.msgs = msgs};
    if (strcmp(orig->package, upd->package))
        add(&c, PACKAGE_CHANGED);
    compare_types(&c, orig->msgs, orig->nmsgs, upd->msgs, upd->nmsgs);
    free(c.memo);
    if (c.oom && msgs)
        schema_msgs_add(msgs, "the schemas could not be compared whole (too deep or out of "
                              "memory)");
    return c.incompatible == 0 && !c.oom;
}
