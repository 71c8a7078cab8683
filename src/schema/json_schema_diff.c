/*
 * json_schema_diff.c: whether data written with one JSON Schema can be read with another, by
 * Confluent's rules (its json.diff package, STRICT policy): the original (writer) and the update
 * (reader) are compared as the schema classes its loader makes of them, each difference gets a
 * type, and the pair is compatible when every difference is in the set of compatible changes.
 * Messages are Confluent's: {errorType:"TYPE", description:"..."}, with the reader called "new"
 * and the writer "old" (BACKWARD's wording).
 *
 * A schema object is seen as one class: false, empty (true, or no constraint), string,
 * number (integer being a flag), boolean, null, object, array, enum, const, not, or combined
 * (allOf/anyOf/oneOf). An object that says several of these at once (a "type" and an "enum", or
 * a "type" beside "anyOf") is an allOf of them; several types ("type": ["string", "null"]) an
 * anyOf of one class per type. "$ref"s are followed. A pair already being compared further up
 * (a recursive schema) counts as compatible, as Confluent's; the work is bounded in steps.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/json_schema_int.h"

#define DIFF_MAX_STEPS 200000
#define DIFF_MAX_STACK 256
#define DIFF_MAX_MEMBERS 64

/* Message classes of Confluent's Difference.error(). */
enum {
    M_NONE,
    M_KW,
    M_INC,
    M_DEC,
    M_VCH,
    M_NAR,
    M_EXT,
    M_TCH,
    M_ADDOPEN,
    M_REQUNOPEN,
    M_REMCLOSED,
    M_REMNOTCOV,
    M_ADDNOTCOV
};

/* name, compatible (STRICT), message class */
#define DIFF_TYPES(X)                                                                              \
    X(ID_CHANGED, 1, M_NONE)                                                                       \
    X(DESCRIPTION_CHANGED, 1, M_NONE)                                                              \
    X(TITLE_CHANGED, 1, M_NONE)                                                                    \
    X(DEFAULT_CHANGED, 1, M_NONE)                                                                  \
    X(SCHEMA_ADDED, 0, M_NONE)                                                                     \
    X(SCHEMA_REMOVED, 1, M_NONE)                                                                   \
    X(TYPE_EXTENDED, 1, M_NONE)                                                                    \
    X(TYPE_NARROWED, 0, M_TCH)                                                                     \
    X(TYPE_CHANGED, 0, M_TCH)                                                                      \
    X(MAX_LENGTH_ADDED, 0, M_KW)                                                                   \
    X(MAX_LENGTH_REMOVED, 1, M_NONE)                                                               \
    X(MAX_LENGTH_INCREASED, 1, M_NONE)                                                             \
    X(MAX_LENGTH_DECREASED, 0, M_DEC)                                                              \
    X(MIN_LENGTH_ADDED, 0, M_KW)                                                                   \
    X(MIN_LENGTH_REMOVED, 1, M_NONE)                                                               \
    X(MIN_LENGTH_INCREASED, 0, M_INC)                                                              \
    X(MIN_LENGTH_DECREASED, 1, M_NONE)                                                             \
    X(PATTERN_ADDED, 0, M_KW)                                                                      \
    X(PATTERN_REMOVED, 1, M_NONE)                                                                  \
    X(PATTERN_CHANGED, 0, M_VCH)                                                                   \
    X(MAXIMUM_ADDED, 0, M_KW)                                                                      \
    X(MAXIMUM_REMOVED, 1, M_NONE)                                                                  \
    X(MAXIMUM_INCREASED, 1, M_NONE)                                                                \
    X(MAXIMUM_DECREASED, 0, M_DEC)                                                                 \
    X(MINIMUM_ADDED, 0, M_KW)                                                                      \
    X(MINIMUM_REMOVED, 1, M_NONE)                                                                  \
    X(MINIMUM_INCREASED, 0, M_INC)                                                                 \
    X(MINIMUM_DECREASED, 1, M_NONE)                                                                \
    X(EXCLUSIVE_MAXIMUM_ADDED, 0, M_KW)                                                            \
    X(EXCLUSIVE_MAXIMUM_REMOVED, 1, M_NONE)                                                        \
    X(EXCLUSIVE_MAXIMUM_INCREASED, 1, M_NONE)                                                      \
    X(EXCLUSIVE_MAXIMUM_DECREASED, 0, M_DEC)                                                       \
    X(EXCLUSIVE_MINIMUM_ADDED, 0, M_KW)                                                            \
    X(EXCLUSIVE_MINIMUM_REMOVED, 1, M_NONE)                                                        \
    X(EXCLUSIVE_MINIMUM_INCREASED, 0, M_INC)                                                       \
    X(EXCLUSIVE_MINIMUM_DECREASED, 1, M_NONE)                                                      \
    X(MULTIPLE_OF_ADDED, 0, M_KW)                                                                  \
    X(MULTIPLE_OF_REMOVED, 1, M_NONE)                                                              \
    X(MULTIPLE_OF_EXPANDED, 0, M_INC)                                                              \
    X(MULTIPLE_OF_REDUCED, 1, M_NONE)                                                              \
    X(MULTIPLE_OF_CHANGED, 0, M_VCH)                                                               \
    X(REQUIRED_ATTRIBUTE_ADDED, 0, M_KW)                                                           \
    X(REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED, 1, M_NONE)                                            \
    X(REQUIRED_ATTRIBUTE_REMOVED, 1, M_NONE)                                                       \
    X(MAX_PROPERTIES_ADDED, 0, M_KW)                                                               \
    X(MAX_PROPERTIES_REMOVED, 1, M_NONE)                                                           \
    X(MAX_PROPERTIES_INCREASED, 1, M_NONE)                                                         \
    X(MAX_PROPERTIES_DECREASED, 0, M_DEC)                                                          \
    X(MIN_PROPERTIES_ADDED, 0, M_KW)                                                               \
    X(MIN_PROPERTIES_REMOVED, 1, M_NONE)                                                           \
    X(MIN_PROPERTIES_INCREASED, 0, M_INC)                                                          \
    X(MIN_PROPERTIES_DECREASED, 1, M_NONE)                                                         \
    X(ADDITIONAL_PROPERTIES_ADDED, 1, M_NONE)                                                      \
    X(ADDITIONAL_PROPERTIES_REMOVED, 0, M_KW)                                                      \
    X(ADDITIONAL_PROPERTIES_EXTENDED, 1, M_NONE)                                                   \
    X(ADDITIONAL_PROPERTIES_NARROWED, 0, M_NAR)                                                    \
    X(DEPENDENCY_ARRAY_ADDED, 0, M_KW)                                                             \
    X(DEPENDENCY_ARRAY_REMOVED, 1, M_NONE)                                                         \
    X(DEPENDENCY_ARRAY_EXTENDED, 0, M_EXT)                                                         \
    X(DEPENDENCY_ARRAY_NARROWED, 1, M_NONE)                                                        \
    X(DEPENDENCY_ARRAY_CHANGED, 0, M_VCH)                                                          \
    X(DEPENDENCY_SCHEMA_ADDED, 0, M_KW)                                                            \
    X(DEPENDENCY_SCHEMA_REMOVED, 1, M_NONE)                                                        \
    X(REQUIRED_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL, 0, M_ADDOPEN)                                 \
    X(REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_OPEN_CONTENT_MODEL, 0, M_ADDOPEN)                    \
    X(OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL, 0, M_ADDOPEN)                                 \
    X(PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL, 1, M_NONE)                           \
    X(REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL, 0, M_REQUNOPEN)                             \
    X(REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL, 1, M_NONE)                     \
    X(OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL, 1, M_NONE)                                  \
    X(PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL, 1, M_NONE)                                         \
    X(PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL, 1, M_NONE)                            \
    X(PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL, 0, M_REMCLOSED)                                  \
    X(PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL, 1, M_NONE)                      \
    X(PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL, 0, M_REMNOTCOV)                \
    X(PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL, 1, M_NONE)                        \
    X(PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL, 0, M_ADDNOTCOV)                  \
    X(MAX_ITEMS_ADDED, 0, M_KW)                                                                    \
    X(MAX_ITEMS_REMOVED, 1, M_NONE)                                                                \
    X(MAX_ITEMS_INCREASED, 1, M_NONE)                                                              \
    X(MAX_ITEMS_DECREASED, 0, M_DEC)                                                               \
    X(MIN_ITEMS_ADDED, 0, M_KW)                                                                    \
    X(MIN_ITEMS_REMOVED, 1, M_NONE)                                                                \
    X(MIN_ITEMS_INCREASED, 0, M_INC)                                                               \
    X(MIN_ITEMS_DECREASED, 1, M_NONE)                                                              \
    X(MAX_CONTAINS_ADDED, 0, M_KW)                                                                 \
    X(MAX_CONTAINS_REMOVED, 1, M_NONE)                                                             \
    X(MAX_CONTAINS_INCREASED, 1, M_NONE)                                                           \
    X(MAX_CONTAINS_DECREASED, 0, M_DEC)                                                            \
    X(MIN_CONTAINS_ADDED, 0, M_KW)                                                                 \
    X(MIN_CONTAINS_REMOVED, 1, M_NONE)                                                             \
    X(MIN_CONTAINS_INCREASED, 0, M_INC)                                                            \
    X(MIN_CONTAINS_DECREASED, 1, M_NONE)                                                           \
    X(UNIQUE_ITEMS_ADDED, 0, M_KW)                                                                 \
    X(UNIQUE_ITEMS_REMOVED, 1, M_NONE)                                                             \
    X(ADDITIONAL_ITEMS_ADDED, 1, M_NONE)                                                           \
    X(ADDITIONAL_ITEMS_REMOVED, 0, M_KW)                                                           \
    X(ADDITIONAL_ITEMS_EXTENDED, 1, M_NONE)                                                        \
    X(ADDITIONAL_ITEMS_NARROWED, 0, M_NAR)                                                         \
    X(ITEM_ADDED_TO_OPEN_CONTENT_MODEL, 0, M_ADDOPEN)                                              \
    X(ITEM_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL, 1, M_NONE)                               \
    X(ITEM_ADDED_TO_CLOSED_CONTENT_MODEL, 1, M_NONE)                                               \
    X(ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL, 1, M_NONE)                                             \
    X(ITEM_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL, 1, M_NONE)                                \
    X(ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL, 0, M_REMCLOSED)                                      \
    X(ITEM_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL, 1, M_NONE)                          \
    X(ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL, 0, M_REMNOTCOV)                    \
    X(ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL, 1, M_NONE)                            \
    X(ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL, 0, M_ADDNOTCOV)                      \
    X(ENUM_ARRAY_EXTENDED, 1, M_NONE)                                                              \
    X(ENUM_ARRAY_NARROWED, 0, M_NAR)                                                               \
    X(ENUM_ARRAY_CHANGED, 0, M_TCH)                                                                \
    X(COMBINED_TYPE_EXTENDED, 1, M_NONE)                                                           \
    X(COMBINED_TYPE_CHANGED, 0, M_TCH)                                                             \
    X(PRODUCT_TYPE_EXTENDED, 0, M_EXT)                                                             \
    X(PRODUCT_TYPE_NARROWED, 1, M_NONE)                                                            \
    X(SUM_TYPE_EXTENDED, 1, M_NONE)                                                                \
    X(SUM_TYPE_NARROWED, 0, M_NAR)                                                                 \
    X(COMBINED_TYPE_SUBSCHEMAS_CHANGED, 0, M_TCH)                                                  \
    X(NOT_TYPE_EXTENDED, 0, M_EXT)                                                                 \
    X(NOT_TYPE_NARROWED, 1, M_NONE)                                                                \
    X(COMPARISON_TOO_LARGE, 0, M_NONE)

#define X_ENUM(name, ok, cls) name,
typedef enum dtype { DIFF_TYPES(X_ENUM) DT_COUNT } dtype;
#define X_INFO(name, ok, cls) {#name, ok, cls},
static const struct {
    const char *name;
    bool compatible;
    int cls;
} dinfo[] = {DIFF_TYPES(X_INFO)};

typedef struct diff {
    dtype type;
    char *path;
} diff;

/* The class of a schema as Confluent's loader sees it. */
typedef enum vkind {
    V_FALSE,
    V_EMPTY,
    V_STRING,
    V_NUMBER,
    V_BOOLEAN,
    V_NULL,
    V_OBJECT,
    V_ARRAY,
    V_ENUM,
    V_CONST,
    V_NOT,
    V_COMBINED
} vkind;

enum { CRIT_ALL, CRIT_ANY, CRIT_ONE };
/* How a combined view's members are found. */
enum { SYN_NONE, SYN_FACETS, SYN_TYPES };

typedef struct view {
    vkind kind;
    const js_node *n;
    bool integer;
    int crit, synth;
    unsigned types; /* SYN_TYPES: the types */
    /* The node this view is the whole of (a subschema of allOf/anyOf/oneOf): such views are
     * compared through compare(), which detects cycles. */
    const js_node *whole;
} view;

typedef struct dctx {
    diff *d;
    size_t n, cap;
    char path[512];
    size_t plen;
    const js_node *stack[DIFF_MAX_STACK][2];
    int depth;
    int vdepth; /* of compare_views */
    long steps;
    bool failed; /* out of memory or past the bounds */
} dctx;

static void compare(dctx *c, const js_node *o, const js_node *u);
static void compare_views(dctx *c, const view *o, const view *u);

static void compare_members(dctx *c, const view *o, const view *u)
{
    if (o->whole && u->whole)
        compare(c, o->whole, u->whole);
    else
        compare_views(c, o, u);
}

/* ---- differences and paths ---- */

static size_t enter(dctx *c, const char *seg)
{
    size_t saved = c->plen;
    int w =
        snprintf(c->path + c->plen, sizeof(c->path) - c->plen, "%s%s", c->plen > 2 ? "/" : "", seg);
    if (w > 0)
        c->plen = c->plen + (size_t)w < sizeof(c->path) ? c->plen + (size_t)w : sizeof(c->path) - 1;
    return saved;
}

static void leave(dctx *c, size_t saved)
{
    c->plen = saved;
    c->path[saved] = 0;
}

static void add(dctx *c, dtype t)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        diff *d = realloc(c->d, cap * sizeof(*d));
        if (!d) {
            c->failed = true;
            return;
        }
        c->d = d;
        c->cap = cap;
    }
    char *p = strdup(c->path);
    if (!p) {
        c->failed = true;
        return;
    }
    c->d[c->n++] = (diff){t, p};
}

/* Adds a difference found elsewhere, with its own path. */
static void add_raw(dctx *c, dtype t, const char *path)
{
    char saved[sizeof(c->path)];
    memcpy(saved, c->path, sizeof(saved));
    snprintf(c->path, sizeof(c->path), "%s", path);
    add(c, t);
    memcpy(c->path, saved, sizeof(saved));
}

static void add_at(dctx *c, const char *attr, dtype t)
{
    size_t s = enter(c, attr);
    add(c, t);
    leave(c, s);
}

static void truncate_to(dctx *c, size_t mark)
{
    while (c->n > mark)
        free(c->d[--c->n].path);
}

static bool compatible_since(const dctx *c, size_t mark)
{
    for (size_t i = mark; i < c->n; i++)
        if (!dinfo[c->d[i].type].compatible)
            return false;
    return true;
}

/* ---- views ---- */

static bool has_only_ref(const js_node *n)
{
    return n->ref_node &&
           (n->draft < 19 ||
            (n->types == JT_ALL && !(n->has & ~JK_REF) && !n->nprops && !n->npprops &&
             !n->additional && !n->nrequired && !n->nall && !n->nany && !n->none && !n->not_ &&
             !n->items && !n->ntuple && n->min_len < 0 && n->max_len < 0 && !n->pattern));
}

static const js_node *deref(const js_node *n)
{
    for (int i = 0; n && i < SCHEMA_MAX_DEPTH && n->boolean < 0 && has_only_ref(n); i++)
        n = n->ref_node;
    return n;
}

static bool has_string_kw(const js_node *n)
{
    return n->min_len >= 0 || n->max_len >= 0 || n->pattern;
}

static bool has_number_kw(const js_node *n)
{
    return n->has & (JK_MINIMUM | JK_MAXIMUM | JK_EXMIN | JK_EXMAX | JK_MULTIPLE);
}

static bool has_object_kw(const js_node *n)
{
    return n->nprops || n->npprops || (n->has & JK_ADDPROPS) || n->nrequired || n->property_names ||
           n->min_props >= 0 || n->max_props >= 0 || n->ndeps;
}

static bool has_array_kw(const js_node *n)
{
    return n->items || n->ntuple || n->additional_items || n->contains || n->min_items >= 0 ||
           n->max_items >= 0 || (n->has & JK_UNIQUE);
}

/* The typed classes a node's "type" (or, without one, its keywords) implies. */
static unsigned implied_types(const js_node *n)
{
    if (n->has & JK_TYPE)
        return n->types;
    unsigned t = 0;
    t |= has_string_kw(n) ? JT_STR : 0;
    t |= has_number_kw(n) ? JT_NUM | JT_INT : 0;
    t |= has_object_kw(n) ? JT_OBJ : 0;
    t |= has_array_kw(n) ? JT_ARR : 0;
    return t;
}

static int type_count(unsigned t)
{
    int k = 0;
    k += !!(t & JT_NULL) + !!(t & JT_BOOL) + !!(t & JT_STR) + !!(t & JT_ARR) + !!(t & JT_OBJ);
    k += !!(t & (JT_NUM | JT_INT));
    return k;
}

static view typed_view(const js_node *n, unsigned t)
{
    view v = {.n = n};
    if (t & JT_OBJ)
        v.kind = V_OBJECT;
    else if (t & JT_ARR)
        v.kind = V_ARRAY;
    else if (t & JT_STR)
        v.kind = V_STRING;
    else if (t & (JT_NUM | JT_INT)) {
        v.kind = V_NUMBER;
        v.integer = !(t & JT_NUM);
    } else if (t & JT_BOOL)
        v.kind = V_BOOLEAN;
    else
        v.kind = V_NULL;
    return v;
}

static view view_of(const js_node *n, int depth);

/* The facets of n, each a view; returns how many (at most cap). */
static size_t facets(const js_node *n, view *out, size_t cap, int depth)
{
    size_t k = 0;
    if (n->ref_node && k < cap)
        out[k++] = view_of(n->ref_node, depth + 1);
    if ((n->has & JK_ENUM) && k < cap)
        out[k++] = (view){.kind = V_ENUM, .n = n};
    if ((n->has & JK_CONST) && k < cap)
        out[k++] = (view){.kind = V_CONST, .n = n};
    if (n->nall && k < cap)
        out[k++] = (view){.kind = V_COMBINED, .n = n, .crit = CRIT_ALL};
    if (n->nany && k < cap)
        out[k++] = (view){.kind = V_COMBINED, .n = n, .crit = CRIT_ANY};
    if (n->none && k < cap)
        out[k++] = (view){.kind = V_COMBINED, .n = n, .crit = CRIT_ONE};
    if (n->not_ && k < cap)
        out[k++] = (view){.kind = V_NOT, .n = n};
    unsigned t = implied_types(n);
    int tc = type_count(t);
    if (tc == 1 && k < cap)
        out[k++] = typed_view(n, t);
    else if (tc > 1 && k < cap)
        out[k++] =
            (view){.kind = V_COMBINED, .n = n, .crit = CRIT_ANY, .synth = SYN_TYPES, .types = t};
    return k;
}

static view view_of(const js_node *n, int depth)
{
    n = deref(n);
    if (n->boolean >= 0 || depth > 8) /* a "$ref" with siblings that comes back to itself */
        return (view){.kind = n->boolean == 0 ? V_FALSE : V_EMPTY, .n = n};
    view f[8];
    size_t k = facets(n, f, 8, depth);
    if (k == 0)
        return (view){.kind = V_EMPTY, .n = n};
    if (k == 1)
        return f[0];
    return (view){.kind = V_COMBINED, .n = n, .crit = CRIT_ALL, .synth = SYN_FACETS};
}

/* The members of a combined view. */
static size_t members(const view *v, view *out, size_t cap)
{
    const js_node *n = v->n;
    size_t k = 0;
    if (v->synth == SYN_FACETS)
        return facets(n, out, cap, 0);
    if (v->synth == SYN_TYPES) {
        static const unsigned bits[] = {JT_OBJ, JT_ARR, JT_STR, JT_NUM | JT_INT, JT_BOOL, JT_NULL};
        for (size_t i = 0; i < 6 && k < cap; i++)
            if (v->types & bits[i])
                out[k++] =
                    typed_view(n, bits[i] == (JT_NUM | JT_INT) ? v->types & bits[i] : bits[i]);
        return k;
    }
    js_node *const *arr = v->crit == CRIT_ALL   ? n->all_of
                          : v->crit == CRIT_ANY ? n->any_of
                                                : n->one_of;
    size_t cnt = v->crit == CRIT_ALL ? n->nall : v->crit == CRIT_ANY ? n->nany : n->none;
    for (size_t i = 0; i < cnt && k < cap; i++) {
        /* Duplicates collapse, as Confluent's sets of subschemas. */
        bool dup = false;
        for (size_t j = 0; j < i && !dup; j++)
            dup = js_equal(arr[i]->src, arr[j]->src, 0);
        if (!dup) {
            out[k] = view_of(arr[i], 0);
            out[k++].whole = arr[i];
        }
    }
    return k;
}

/* ---- objects ---- */

static const js_node *prop_of(const js_node *n, const char *name)
{
    for (size_t i = 0; i < n->nprops; i++)
        if (!strcmp(n->props[i].name, name))
            return n->props[i].node;
    return NULL;
}

static bool is_required(const js_node *n, const char *name)
{
    for (size_t i = 0; i < n->nrequired; i++)
        if (!strcmp(n->required[i], name))
            return true;
    return false;
}

static bool has_default(const js_node *n)
{
    n = deref(n);
    return n && json_is_object(n->src) && json_object_get(n->src, "default");
}

/* additionalProperties: absent or true is open (with no patternProperties). */
static bool permits_additional(const js_node *a)
{
    return !a || a->boolean != 0;
}

static const js_node *additional_schema(const js_node *a)
{
    return a && a->boolean < 0 ? a : NULL;
}

static bool open_object(const js_node *n)
{
    return permits_additional(n->additional) && !additional_schema(n->additional) && !n->npprops;
}

static const js_node *partial_schema(const js_node *n, const char *key)
{
    for (size_t i = 0; i < n->npprops; i++)
        if (js_regex_match(n->pprops[i].re, key, strlen(key)) == 1)
            return n->pprops[i].node;
    return additional_schema(n->additional);
}

static bool is_empty_schema(const js_node *n)
{
    view v = view_of(n, 0);
    return v.kind == V_EMPTY;
}

static bool is_false_schema(const js_node *n)
{
    n = deref(n);
    return n->boolean == 0;
}

static void property_removed(dctx *c, const js_node *u, const char *key, const js_node *os)
{
    if (open_object(u)) {
        add(c, PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL);
        return;
    }
    const js_node *p = partial_schema(u, key);
    if (p) {
        size_t mark = c->n;
        compare(c, os, p);
        add(c, compatible_since(c, mark)
                   ? PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL
                   : PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL);
    } else {
        add(c, is_false_schema(os) ? PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL
                                   : PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL);
    }
}

static void property_added(dctx *c, const js_node *o, const js_node *u, const char *key,
                           const js_node *us)
{
    bool req = is_required(u, key);
    if (open_object(o)) {
        if (is_empty_schema(us))
            add(c, PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL);
        else if (req)
            add(c, has_default(us) ? REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_OPEN_CONTENT_MODEL
                                   : REQUIRED_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL);
        else
            add(c, OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL);
        return;
    }
    const js_node *p = partial_schema(o, key);
    if (p) {
        size_t mark = c->n;
        compare(c, p, us);
        add(c, compatible_since(c, mark)
                   ? PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL
                   : PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL);
    }
    if (req)
        add(c, has_default(us) ? REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL
                               : REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL);
    else
        add(c, OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL);
}

static void compare_properties(dctx *c, const js_node *o, const js_node *u)
{
    size_t s = enter(c, "required");
    for (size_t i = 0; i < o->nprops; i++) {
        const char *k = o->props[i].name;
        if (!prop_of(u, k))
            continue;
        bool orq = is_required(o, k), urq = is_required(u, k);
        if (orq != urq)
            add_at(c, k,
                   orq                          ? REQUIRED_ATTRIBUTE_REMOVED
                   : has_default(prop_of(u, k)) ? REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED
                                                : REQUIRED_ATTRIBUTE_ADDED);
    }
    leave(c, s);
    s = enter(c, "properties");
    for (size_t i = 0; i < o->nprops; i++) {
        size_t s2 = enter(c, o->props[i].name);
        const js_node *us = prop_of(u, o->props[i].name);
        if (!us)
            property_removed(c, u, o->props[i].name, o->props[i].node);
        else
            compare(c, o->props[i].node, us);
        leave(c, s2);
    }
    for (size_t i = 0; i < u->nprops; i++) {
        if (prop_of(o, u->props[i].name))
            continue;
        size_t s2 = enter(c, u->props[i].name);
        property_added(c, o, u, u->props[i].name, u->props[i].node);
        leave(c, s2);
    }
    leave(c, s);
}

static const js_dep *dep_of(const js_node *n, const char *name, bool is_schema)
{
    for (size_t i = 0; i < n->ndeps; i++)
        if (!strcmp(n->deps[i].name, name) &&
            (is_schema ? !!n->deps[i].schema : !n->deps[i].schema))
            return &n->deps[i];
    return NULL;
}

static bool list_contains_all(const js_dep *a, const js_dep *b)
{
    for (size_t i = 0; i < b->nrequired; i++) {
        bool found = false;
        for (size_t j = 0; j < a->nrequired && !found; j++)
            found = !strcmp(a->required[j], b->required[i]);
        if (!found)
            return false;
    }
    return true;
}

static void compare_dependencies(dctx *c, const js_node *o, const js_node *u)
{
    size_t s = enter(c, "dependencies");
    for (int pass = 0; pass < 2; pass++) {
        const js_node *a = pass ? u : o, *b = pass ? o : u;
        for (size_t i = 0; i < a->ndeps; i++) {
            const js_dep *d = &a->deps[i];
            bool is_schema = d->schema != NULL;
            const js_dep *other = dep_of(b, d->name, is_schema);
            if (pass && other)
                continue; /* compared in the first pass */
            size_t s2 = enter(c, d->name);
            if (!other) {
                add(c, pass ? (is_schema ? DEPENDENCY_SCHEMA_ADDED : DEPENDENCY_ARRAY_ADDED)
                            : (is_schema ? DEPENDENCY_SCHEMA_REMOVED : DEPENDENCY_ARRAY_REMOVED));
            } else if (is_schema) {
                compare(c, d->schema, other->schema);
            } else {
                bool up = list_contains_all(other, d), down = list_contains_all(d, other);
                if (!(up && down))
                    add(c, up     ? DEPENDENCY_ARRAY_EXTENDED
                           : down ? DEPENDENCY_ARRAY_NARROWED
                                  : DEPENDENCY_ARRAY_CHANGED);
            }
            leave(c, s2);
        }
    }
    leave(c, s);
}

static void compare_counts(dctx *c, const char *kw, long long o, long long u, dtype added)
{
    /* added, removed, increased, decreased follow each other in the list of types. */
    if (o == u)
        return;
    if (o < 0)
        add_at(c, kw, added);
    else if (u < 0)
        add_at(c, kw, (dtype)(added + 1));
    else
        add_at(c, kw, o < u ? (dtype)(added + 2) : (dtype)(added + 3));
}

static void compare_object(dctx *c, const js_node *o, const js_node *u)
{
    compare_properties(c, o, u);
    compare_dependencies(c, o, u);
    size_t s = enter(c, "additionalProperties");
    bool op = permits_additional(o->additional), up = permits_additional(u->additional);
    const js_node *os = additional_schema(o->additional), *us = additional_schema(u->additional);
    if (op != up)
        add(c, up ? ADDITIONAL_PROPERTIES_ADDED : ADDITIONAL_PROPERTIES_REMOVED);
    else if (!os && us)
        add(c, ADDITIONAL_PROPERTIES_NARROWED);
    else if (os && !us)
        add(c, ADDITIONAL_PROPERTIES_EXTENDED);
    else if (os && us)
        compare(c, os, us);
    leave(c, s);
    compare_counts(c, "maxProperties", o->max_props, u->max_props, MAX_PROPERTIES_ADDED);
    compare_counts(c, "minProperties", o->min_props, u->min_props, MIN_PROPERTIES_ADDED);
}

/* ---- arrays ---- */

static const js_node *all_items(const js_node *n)
{
    return n->ntuple ? NULL : n->items;
}

/* The schema of the items past the tuple: "additionalItems" (or 2020-12's "items" after
 * "prefixItems"); absent means permitted. */
static const js_node *additional_items(const js_node *n)
{
    return n->ntuple ? n->items : n->additional_items;
}

static bool permits_additional_items(const js_node *n)
{
    const js_node *a = additional_items(n);
    return !a || a->boolean != 0;
}

static const js_node *additional_items_schema(const js_node *n)
{
    const js_node *a = additional_items(n);
    return a && a->boolean < 0 ? a : NULL;
}

static bool open_array(const js_node *n)
{
    return permits_additional_items(n) && !additional_items_schema(n);
}

static void item_removed(dctx *c, const js_node *u, const js_node *os)
{
    if (open_array(u)) {
        add(c, ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL);
        return;
    }
    const js_node *p = additional_items_schema(u);
    if (p) {
        size_t mark = c->n;
        compare(c, os, p);
        add(c, compatible_since(c, mark)
                   ? ITEM_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL
                   : ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL);
    } else {
        add(c, is_false_schema(os) ? ITEM_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL
                                   : ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL);
    }
}

static void item_added(dctx *c, const js_node *o, const js_node *us)
{
    if (open_array(o)) {
        add(c, is_empty_schema(us) ? ITEM_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL
                                   : ITEM_ADDED_TO_OPEN_CONTENT_MODEL);
        return;
    }
    const js_node *p = additional_items_schema(o);
    if (p) {
        size_t mark = c->n;
        compare(c, p, us);
        add(c, compatible_since(c, mark) ? ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL
                                         : ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL);
    } else {
        add(c, ITEM_ADDED_TO_CLOSED_CONTENT_MODEL);
    }
}

static void compare_array(dctx *c, const js_node *o, const js_node *u)
{
    size_t s = enter(c, "items");
    compare(c, all_items(o), all_items(u));
    leave(c, s);
    size_t max = o->ntuple > u->ntuple ? o->ntuple : u->ntuple;
    for (size_t i = 0; i < max; i++) {
        char seg[32];
        snprintf(seg, sizeof(seg), "items/%zu", i);
        s = enter(c, seg);
        if (i < o->ntuple && i < u->ntuple)
            compare(c, o->tuple[i], u->tuple[i]);
        else if (i < o->ntuple)
            item_removed(c, u, o->tuple[i]);
        else
            item_added(c, o, u->tuple[i]);
        leave(c, s);
    }
    s = enter(c, "additionalItems");
    bool op = permits_additional_items(o), up = permits_additional_items(u);
    const js_node *os = additional_items_schema(o), *us = additional_items_schema(u);
    if (op != up)
        add(c, op ? ADDITIONAL_ITEMS_REMOVED : ADDITIONAL_ITEMS_ADDED);
    else if (!os && us)
        add(c, ADDITIONAL_ITEMS_NARROWED);
    else if (os && !us)
        add(c, ADDITIONAL_ITEMS_EXTENDED);
    else if (os && us)
        compare(c, os, us);
    leave(c, s);
    compare_counts(c, "maxItems", o->max_items, u->max_items, MAX_ITEMS_ADDED);
    compare_counts(c, "minItems", o->min_items, u->min_items, MIN_ITEMS_ADDED);
    if (!!(o->has & JK_UNIQUE) != !!(u->has & JK_UNIQUE))
        add_at(c, "uniqueItems", o->has & JK_UNIQUE ? UNIQUE_ITEMS_REMOVED : UNIQUE_ITEMS_ADDED);
    compare_counts(c, "maxContains", o->max_contains, u->max_contains, MAX_CONTAINS_ADDED);
    compare_counts(c, "minContains", o->min_contains, u->min_contains, MIN_CONTAINS_ADDED);
}

/* ---- scalars ---- */

static void compare_bound(dctx *c, const char *kw, unsigned bit, double ov, double uv,
                          const js_node *o, const js_node *u, dtype added)
{
    bool oh = o->has & bit, uh = u->has & bit;
    if (!oh && !uh)
        return;
    if (!oh)
        add_at(c, kw, added);
    else if (!uh)
        add_at(c, kw, (dtype)(added + 1));
    else if (ov < uv)
        add_at(c, kw, (dtype)(added + 2));
    else if (ov > uv)
        add_at(c, kw, (dtype)(added + 3));
}

static bool is_multiple(double a, double b)
{
    if (b == 0)
        return false;
    double q = a / b;
    return isfinite(q) && fabs(q - nearbyint(q)) <= 1e-9 * fmax(1.0, fabs(q));
}

static void compare_number(dctx *c, const view *ov, const view *uv)
{
    const js_node *o = ov->n, *u = uv->n;
    compare_bound(c, "maximum", JK_MAXIMUM, o->maximum, u->maximum, o, u, MAXIMUM_ADDED);
    compare_bound(c, "minimum", JK_MINIMUM, o->minimum, u->minimum, o, u, MINIMUM_ADDED);
    compare_bound(c, "exclusiveMaximum", JK_EXMAX, o->exmax, u->exmax, o, u,
                  EXCLUSIVE_MAXIMUM_ADDED);
    compare_bound(c, "exclusiveMinimum", JK_EXMIN, o->exmin, u->exmin, o, u,
                  EXCLUSIVE_MINIMUM_ADDED);
    bool om = o->has & JK_MULTIPLE, um = u->has & JK_MULTIPLE;
    if (om != um || (om && o->multiple != u->multiple)) {
        dtype t = !om                                     ? MULTIPLE_OF_ADDED
                  : !um                                   ? MULTIPLE_OF_REMOVED
                  : is_multiple(u->multiple, o->multiple) ? MULTIPLE_OF_EXPANDED
                  : is_multiple(o->multiple, u->multiple) ? MULTIPLE_OF_REDUCED
                                                          : MULTIPLE_OF_CHANGED;
        add_at(c, "multipleOf", t);
    }
    if (ov->integer != uv->integer)
        add(c, ov->integer ? TYPE_EXTENDED : TYPE_NARROWED);
}

static void compare_string(dctx *c, const js_node *o, const js_node *u)
{
    compare_counts(c, "maxLength", o->max_len, u->max_len, MAX_LENGTH_ADDED);
    compare_counts(c, "minLength", o->min_len, u->min_len, MIN_LENGTH_ADDED);
    if (!o->pattern_src && u->pattern_src)
        add_at(c, "pattern", PATTERN_ADDED);
    else if (o->pattern_src && !u->pattern_src)
        add_at(c, "pattern", PATTERN_REMOVED);
    else if (o->pattern_src && strcmp(o->pattern_src, u->pattern_src))
        add_at(c, "pattern", PATTERN_CHANGED);
}

static bool values_within(const json_t *a, const json_t *b)
{
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
    {
        bool found = false;
        for (size_t j = 0; j < json_array_size(b) && !found; j++)
            found = js_equal(v, json_array_get(b, j), 0);
        if (!found)
            return false;
    }
    return true;
}

static void compare_enum(dctx *c, const js_node *o, const js_node *u)
{
    bool up = values_within(o->enum_values, u->enum_values);
    bool down = values_within(u->enum_values, o->enum_values);
    if (up && down)
        return;
    add_at(c, "enum", up ? ENUM_ARRAY_EXTENDED : down ? ENUM_ARRAY_NARROWED : ENUM_ARRAY_CHANGED);
}

/* ---- combined ---- */

static bool kuhn(size_t i, size_t nu, const bool *adj, int *match_u, bool *seen)
{
    for (size_t j = 0; j < nu; j++) {
        if (!adj[i * nu + j] || seen[j])
            continue;
        seen[j] = true;
        if (match_u[j] < 0 || kuhn((size_t)match_u[j], nu, adj, match_u, seen)) {
            match_u[j] = (int)i;
            return true;
        }
    }
    return false;
}

static bool compare_criteria(dctx *c, const view *o, const view *u, size_t no, size_t nu)
{
    if (o->crit == u->crit)
        return true;
    bool extended = u->crit == CRIT_ANY || (no == 1 && nu == 1) ||
                    (no == 1 && u->crit == CRIT_ONE) || (nu == 1 && o->crit == CRIT_ALL);
    add(c, extended ? COMBINED_TYPE_EXTENDED : COMBINED_TYPE_CHANGED);
    return extended;
}

static void compare_combined(dctx *c, const view *o, const view *u)
{
    /* On the heap: this recurses, and members are many. */
    view *om = malloc(2 * DIFF_MAX_MEMBERS * sizeof(view));
    if (!om) {
        c->failed = true;
        return;
    }
    view *um = om + DIFF_MAX_MEMBERS;
    size_t no = members(o, om, DIFF_MAX_MEMBERS), nu = members(u, um, DIFF_MAX_MEMBERS);
    if (!compare_criteria(c, o, u, no, nu)) {
        free(om);
        return;
    }
    if (no < nu)
        add(c, u->crit == CRIT_ALL ? PRODUCT_TYPE_EXTENDED : SUM_TYPE_EXTENDED);
    else if (no > nu)
        add(c, o->crit == CRIT_ALL ? PRODUCT_TYPE_NARROWED : SUM_TYPE_NARROWED);
    /* The differences of each compatible pair, kept to add those of the matching. */
    size_t *first = calloc(no * nu + 1, sizeof(size_t));
    size_t *last = calloc(no * nu + 1, sizeof(size_t));
    bool *adj = calloc(no * nu + 1, sizeof(bool));
    dctx *side = calloc(1, sizeof(*side)); /* large: not on the recursion's stack */
    if (!first || !last || !adj || !side) {
        free(side);
        free(om);
        free(first);
        free(last);
        free(adj);
        c->failed = true;
        return;
    }
    for (size_t i = 0; i < no; i++) {
        char seg[48];
        snprintf(seg, sizeof(seg), "%s/%zu",
                 o->crit == CRIT_ALL   ? "allOf"
                 : o->crit == CRIT_ANY ? "anyOf"
                                       : "oneOf",
                 i);
        size_t s = enter(c, seg);
        for (size_t j = 0; j < nu; j++) {
            size_t mark = c->n;
            compare_members(c, &om[i], &um[j]);
            adj[i * nu + j] = compatible_since(c, mark);
            first[i * nu + j] = side->n;
            for (size_t k = mark; adj[i * nu + j] && k < c->n; k++)
                add_raw(side, c->d[k].type, c->d[k].path);
            last[i * nu + j] = side->n;
            truncate_to(c, mark);
        }
        leave(c, s);
    }
    int match_u[DIFF_MAX_MEMBERS];
    memset(match_u, -1, sizeof(match_u));
    size_t matched = 0;
    for (size_t i = 0; i < no; i++) {
        bool seen[DIFF_MAX_MEMBERS] = {0};
        matched += kuhn(i, nu, adj, match_u, seen);
    }
    for (size_t j = 0; j < nu; j++) {
        if (match_u[j] < 0)
            continue;
        size_t e = (size_t)match_u[j] * nu + j;
        for (size_t k = first[e]; k < last[e]; k++)
            add_raw(c, side->d[k].type, side->d[k].path);
    }
    if (matched < (no < nu ? no : nu))
        add(c, COMBINED_TYPE_SUBSCHEMAS_CHANGED);
    c->failed |= side->failed;
    truncate_to(side, 0);
    free(side->d);
    free(side);
    free(first);
    free(last);
    free(adj);
    free(om);
}

/* ---- the hub ---- */

/* Confluent's special cases: a one-member combination against a plain schema, an anyOf or
 * oneOf in the update with a member compatible with the original (the sum extended), an allOf
 * in the original with a member compatible with the update (the product narrowed). */
static bool one_member_compatible(dctx *c, const view *o, const view *u, bool in_update,
                                  dtype extra)
{
    const view *comb = in_update ? u : o;
    view *m = malloc(DIFF_MAX_MEMBERS * sizeof(view));
    if (!m) {
        c->failed = true;
        return false;
    }
    size_t k = members(comb, m, DIFF_MAX_MEMBERS);
    bool crit_ok = in_update ? comb->crit != CRIT_ALL : comb->crit == CRIT_ALL;
    bool found = false;
    for (size_t i = 0; (k == 1 || crit_ok) && i < k && !found; i++) {
        size_t mark = c->n;
        compare_members(c, in_update ? o : &m[i], in_update ? &m[i] : u);
        found = compatible_since(c, mark);
        if (found && k != 1)
            add(c, extra);
        if (!found)
            truncate_to(c, mark);
    }
    free(m);
    return found;
}

static void compare_kinds(dctx *c, const view *o, const view *u);

static void compare_views(dctx *c, const view *o, const view *u)
{
    if (c->failed || ++c->steps > DIFF_MAX_STEPS || c->vdepth >= DIFF_MAX_STACK) {
        c->failed = true;
        return;
    }
    c->vdepth++;
    compare_kinds(c, o, u);
    c->vdepth--;
}

static void compare_kinds(dctx *c, const view *o, const view *u)
{
    if (o->kind != V_COMBINED && u->kind == V_COMBINED &&
        one_member_compatible(c, o, u, true, SUM_TYPE_EXTENDED))
        return;
    if (o->kind == V_COMBINED && u->kind != V_COMBINED &&
        one_member_compatible(c, o, u, false, PRODUCT_TYPE_NARROWED))
        return;
    if (o->kind != u->kind) {
        if (o->kind == V_FALSE || u->kind == V_EMPTY)
            return;
        const char *oc = json_string_value(json_object_get(o->n->src, "connect.type"));
        const char *uc = json_string_value(json_object_get(u->n->src, "connect.type"));
        if (oc && uc && !strcmp(oc, "bytes") && !strcmp(uc, "bytes"))
            return;
        add(c, TYPE_CHANGED);
        return;
    }
    static const char *const ann[] = {"$id", "description", "title", "default"};
    for (int i = 0; i < 4; i++) {
        const json_t *a = json_object_get(o->n->src, ann[i]),
                     *b = json_object_get(u->n->src, ann[i]);
        if ((a || b) && (!a || !b || !js_equal(a, b, 0)))
            add(c, (dtype)(ID_CHANGED + i));
    }
    switch (o->kind) {
    case V_STRING:
        compare_string(c, o->n, u->n);
        break;
    case V_NUMBER:
        compare_number(c, o, u);
        break;
    case V_CONST:
        if (!js_equal(o->n->const_value, u->n->const_value, 0))
            add_at(c, "const", ENUM_ARRAY_CHANGED);
        break;
    case V_ENUM:
        compare_enum(c, o->n, u->n);
        break;
    case V_COMBINED:
        compare_combined(c, o, u);
        break;
    case V_NOT: {
        size_t s = enter(c, "not"), mark = c->n;
        compare(c, u->n->not_, o->n->not_);
        bool ok = compatible_since(c, mark);
        truncate_to(c, mark);
        add(c, ok ? NOT_TYPE_NARROWED : NOT_TYPE_EXTENDED);
        leave(c, s);
        break;
    }
    case V_OBJECT:
        compare_object(c, o->n, u->n);
        break;
    case V_ARRAY:
        compare_array(c, o->n, u->n);
        break;
    default:
        break;
    }
}

static void compare(dctx *c, const js_node *o, const js_node *u)
{
    if (!o && !u)
        return;
    if (!o || !u) {
        add(c, o ? SCHEMA_REMOVED : SCHEMA_ADDED);
        return;
    }
    o = deref(o);
    u = deref(u);
    /* A pair already being compared: a cycle, taken as compatible. */
    for (int i = 0; i < c->depth; i++)
        if (c->stack[i][0] == o && c->stack[i][1] == u)
            return;
    if (c->depth >= DIFF_MAX_STACK) {
        c->failed = true;
        return;
    }
    c->stack[c->depth][0] = o;
    c->stack[c->depth][1] = u;
    c->depth++;
    view ov = view_of(o, 0), uv = view_of(u, 0);
    compare_views(c, &ov, &uv);
    c->depth--;
}

static void describe(schema_msgs *m, const diff *d)
{
    const char *p = d->path;
    const char *r = "new", *w = "old";
    char desc[700];
    switch (dinfo[d->type].cls) {
    case M_KW:
        snprintf(desc, sizeof(desc),
                 "The keyword at path '%s' in the %s schema is not present in the %s schema", p, r,
                 w);
        break;
    case M_INC:
        snprintf(desc, sizeof(desc),
                 "The value at path '%s' in the %s schema is more than its value in the %s schema",
                 p, r, w);
        break;
    case M_DEC:
        snprintf(desc, sizeof(desc),
                 "The value at path '%s' in the %s schema is less than its value in the %s schema",
                 p, r, w);
        break;
    case M_VCH:
        snprintf(desc, sizeof(desc),
                 "The value at path '%s' is different between the %s and %s "
                 "schema",
                 p, r, w);
        break;
    case M_NAR:
    case M_EXT:
        snprintf(desc, sizeof(desc),
                 "An array or combined type at path '%s' has %s elements in "
                 "the %s schema than the %s schema",
                 p, dinfo[d->type].cls == M_NAR ? "fewer" : "more", r, w);
        break;
    case M_TCH:
        snprintf(desc, sizeof(desc),
                 "A type at path '%s' is different between the %s schema and "
                 "the %s schema",
                 p, r, w);
        break;
    case M_ADDOPEN:
        snprintf(desc, sizeof(desc),
                 "The %s schema has an open content model and has a property "
                 "or item at path '%s' which is missing in the %s schema",
                 r, p, w);
        break;
    case M_REQUNOPEN:
        snprintf(desc, sizeof(desc),
                 "The %s schema has an unopen content model and has a "
                 "required property at path '%s' which is missing in the %s schema",
                 r, p, w);
        break;
    case M_REMCLOSED:
        snprintf(desc, sizeof(desc),
                 "The %s has a closed content model and is missing a property "
                 "or item present at path '%s' in the %s schema",
                 r, p, w);
        break;
    case M_REMNOTCOV:
        snprintf(desc, sizeof(desc),
                 "A property or item is missing in the %s schema but present "
                 "at path '%s' in the %s schema and is not covered by its partially open content "
                 "model",
                 r, p, w);
        break;
    case M_ADDNOTCOV:
        snprintf(desc, sizeof(desc),
                 "The %s schema has a property or item at path '%s' which is "
                 "missing in the %s schema and is not covered by its partially open content model",
                 r, p, w);
        break;
    default:
        desc[0] = 0;
    }
    schema_msgs_add(m, "{errorType:\"%s\", description:\"%s'}", dinfo[d->type].name, desc);
}

bool js_can_read(const js_schema *reader, const js_schema *writer, schema_msgs *msgs)
{
    dctx *c = calloc(1, sizeof(*c));
    if (!c) {
        if (msgs)
            schema_msgs_add(msgs, "out of memory comparing the schemas");
        return false;
    }
    snprintf(c->path, sizeof(c->path), "#/");
    c->plen = 2;
    compare(c, writer->root, reader->root);
    bool ok = !c->failed;
    for (size_t i = 0; i < c->n; i++) {
        if (dinfo[c->d[i].type].compatible)
            continue;
        ok = false;
        if (msgs)
            describe(msgs, &c->d[i]);
    }
    if (c->failed && msgs)
        schema_msgs_add(msgs, "The schemas are too large or too deeply nested to compare");
    truncate_to(c, 0);
    free(c->d);
    free(c);
    return ok;
}
