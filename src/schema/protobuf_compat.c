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
 * the recursion. Pairs are found through a hash table and messages matched by name through a
 * sorted array, so the work is O(n log n) in the messages; at most MAX_MESSAGES differences are
 * written out (the rest counted in one line). Messages are Confluent's: {errorType:"...",
 * description:"..."} with the path
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

/* Message types compared inside message types, at most this deep (a chain of that many distinct
 * types is reported as not decided, hence incompatible); a level costs under a kilobyte of
 * stack. At most MAX_MESSAGES differences are written out (all are counted). */
#define MAX_COMPARE_DEPTH 1024
#define MAX_MESSAGES 100
#define PATH_CAP 65536

typedef struct memo {
    const pb_msg *a, *b;
    int state; /* 1 being compared, 2 compatible, 3 incompatible */
} memo;

typedef struct C {
    schema_msgs *msgs;
    size_t incompatible; /* count of incompatible differences so far */
    char *path;          /* PATH_CAP bytes; the current context's path starts at base */
    size_t plen, base;
    memo *memo;
    size_t nmemo, cap;
    size_t *slots, nslots;
    int depth;
    bool oom;
} C;

static size_t push(C *c, const char *seg)
{
    size_t before = c->plen, n = strlen(seg);
    if (c->plen + 1 + n < PATH_CAP) {
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
    if (++c->incompatible > MAX_MESSAGES || !c->msgs)
        return;
    /* The path is made of identifiers and numbers only, so it cannot hold a conversion; the
     * description's %s are the reader's word, then the writer's. */
    char fmt[1400], text[1500];
    snprintf(fmt, sizeof(fmt), "%s#%s%s", diffs[d].before,
             c->plen > c->base ? c->path + c->base : "/", diffs[d].middle);
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

/* The remembered pairs: an append-only array (indices stay valid while comparisons nest)
 * indexed by an open-addressing table of index + 1, kept at most half full. */
static size_t pair_hash(const pb_msg *a, const pb_msg *b)
{
    uint64_t x = (uint64_t)(uintptr_t)a * 0x9e3779b97f4a7c15ull ^
                 (uint64_t)(uintptr_t)b * 0xc2b2ae3d27d4eb4full;
    return (size_t)(x ^ (x >> 29));
}

static memo *find_memo(C *c, const pb_msg *a, const pb_msg *b)
{
    if (!c->nslots)
        return NULL;
    for (size_t i = pair_hash(a, b) & (c->nslots - 1);; i = (i + 1) & (c->nslots - 1)) {
        if (!c->slots[i])
            return NULL;
        memo *m = &c->memo[c->slots[i] - 1];
        if (m->a == a && m->b == b)
            return m;
    }
}

static void place(C *c, size_t index)
{
    const memo *m = &c->memo[index];
    size_t i = pair_hash(m->a, m->b) & (c->nslots - 1);
    while (c->slots[i])
        i = (i + 1) & (c->nslots - 1);
    c->slots[i] = index + 1;
}

/* Indexes memo[index], growing the table first when it would be more than half full. */
static bool index_memo(C *c, size_t index)
{
    if ((index + 1) * 2 > c->nslots) {
        size_t n = c->nslots ? c->nslots * 2 : 64;
        size_t *v = calloc(n, sizeof(*v));
        if (!v)
            return false;
        free(c->slots);
        c->slots = v;
        c->nslots = n;
        for (size_t i = 0; i < index; i++)
            place(c, i);
    }
    place(c, index);
    return true;
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
    if (!index_memo(c, at)) {
        c->oom = true;
        return false;
    }
    /* The sub-context's path is written after the current one, which stays for the return. */
    size_t saved_len = c->plen, saved_base = c->base;
    c->base = c->plen;
    push(c, local_name(a));
    for (size_t i = c->base + 1; i < c->plen; i++)
        if (c->path[i] == '.')
            c->path[i] = '/';
    size_t before = c->incompatible;
    c->depth++;
    compare_msg(c, a, b);
    c->depth--;
    c->plen = saved_len;
    c->base = saved_base;
    c->path[c->plen] = 0;
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

static int msg_name_cmp(const void *x, const void *y)
{
    return strcmp((*(const pb_msg *const *)x)->name, (*(const pb_msg *const *)y)->name);
}

/* Messages matched by name at one scope: a writer's message missing from the reader is
 * MESSAGE_REMOVED; the rest are compared. Groups' bodies are compared through their fields. */
static void compare_types(C *c, pb_msg *const *a, size_t na, pb_msg *const *b, size_t nb)
{
    if (c->depth >= MAX_COMPARE_DEPTH)
        return;
    c->depth++;
    /* The reader's messages sorted by name, so that matching is a binary search. */
    const pb_msg **sorted = malloc((nb ? nb : 1) * sizeof(*sorted));
    size_t ns = 0;
    if (!sorted) {
        c->oom = true;
        c->depth--;
        return;
    }
    for (size_t k = 0; k < nb; k++)
        if (!b[k]->is_group)
            sorted[ns++] = b[k];
    if (ns)
        qsort(sorted, ns, sizeof(*sorted), msg_name_cmp);
    for (size_t i = 0; i < na; i++) {
        if (a[i]->is_group)
            continue;
        const pb_msg key = {.name = a[i]->name}, *kp = &key;
        const pb_msg **hit = ns ? bsearch(&kp, sorted, ns, sizeof(*sorted), msg_name_cmp) : NULL;
        const pb_msg *match = hit ? *hit : NULL;
        size_t at = push(c, a[i]->name);
        if (!match)
            add(c, MESSAGE_REMOVED);
        else
            compare_msg(c, a[i], match);
        pop(c, at);
    }
    free(sorted);
    c->depth--;
}

bool pb_can_read(const void *reader, const void *writer, schema_msgs *msgs)
{
    const pb_file *upd = pb_main(reader), *orig = pb_main(writer);
    C c = {.msgs = msgs, .path = malloc(PATH_CAP)};
    if (!c.path) {
        if (msgs)
            schema_msgs_add(msgs, "out of memory");
        return false;
    }
    c.path[0] = 0;
    if (strcmp(orig->package, upd->package))
        add(&c, PACKAGE_CHANGED);
    compare_types(&c, orig->msgs, orig->nmsgs, upd->msgs, upd->nmsgs);
    free(c.memo);
    free(c.slots);
    free(c.path);
    if (c.incompatible > MAX_MESSAGES && msgs)
        schema_msgs_add(msgs, "(%zu more differences)", c.incompatible - MAX_MESSAGES);
    if (c.oom && msgs)
        schema_msgs_add(msgs, "the schemas could not be compared whole (too deep or out of "
                              "memory)");
    return c.incompatible == 0 && !c.oom;
}
