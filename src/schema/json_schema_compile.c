/*
 * json_schema_compile.c: a JSON Schema's documents compiled, once, into the tree of js_node
 * that validation walks (json_schema_int.h). Every keyword's value is checked here, so that
 * validation never meets a malformed keyword: numbers are numbers, counts non-negative
 * integers, patterns compile, "$ref"s resolve.
 *
 * References: a "$ref" is resolved when it is met (so that an unresolved one is reported with
 * its place) to a JSON value of one of the documents; the value is compiled later, from a work
 * list, so that the recursion of compilation follows the nesting of the JSON only, and a value
 * compiled once (a memo keyed by the value's address) is shared by every "$ref" to it: a
 * recursive schema becomes a cycle of nodes. URIs are resolved as far as schemas use them:
 * absolute ones as they are, others against the base of the enclosing "$id" (the document's
 * name for a referenced schema), the fragment as a JSON pointer or an anchor ("$anchor", or a
 * draft-7 "$id" of the form "#name").
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/json_dom.h"
#include "schema/json_schema_int.h"

typedef struct pending {
    js_node *node;
    json_t *target;
    char *base;
} pending;

typedef struct memo_slot {
    const json_t *key;
    js_node *node;
} memo_slot;

typedef struct cctx {
    js_schema *js;
    json_t *ids; /* absolute URI (or URI#anchor) -> integer holding the json_t's address */
    const schema_dep *deps;
    size_t ndeps;
    pending *pend;
    size_t npend, cap_pend;
    memo_slot *memo;
    size_t memo_cap, memo_n;
    char path[256];
    size_t plen;
    schema_error *err;
} cctx;

static js_node *compile(cctx *c, json_t *j, const char *base, int depth);

/* ---- small helpers ---- */

static void path_push(cctx *c, const char *seg, size_t *saved)
{
    *saved = c->plen;
    size_t room = sizeof(c->path) - c->plen;
    int n = snprintf(c->path + c->plen, room, "/");
    for (const char *p = seg; *p && (size_t)n + 2 < room; p++) {
        if (*p == '~' || *p == '/') {
            c->path[c->plen + n++] = '~';
            c->path[c->plen + n++] = *p == '~' ? '0' : '1';
        } else {
            c->path[c->plen + n++] = *p;
        }
    }
    c->plen += (size_t)n < room ? (size_t)n : room - 1;
    c->path[c->plen] = 0;
}

static void path_pop(cctx *c, size_t saved)
{
    c->plen = saved;
    c->path[saved] = 0;
}

#define FAIL(c, rule, ...)                                                                         \
    do {                                                                                           \
        schema_set_error((c)->err, (c)->path, rule, __VA_ARGS__);                                  \
        return NULL;                                                                               \
    } while (0)

static js_node *node_new(cctx *c, json_t *j)
{
    js_node *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    n->src = j;
    n->boolean = -1;
    n->types = JT_ALL;
    n->min_len = n->max_len = -1;
    n->min_props = n->max_props = -1;
    n->min_items = n->max_items = -1;
    n->min_contains = n->max_contains = -1;
    /* 4, 6, 7, then 19 and 20 for 2019-09 and 2020-12 (the field is one byte). */
    n->draft = (unsigned char)(c->js->draft > 100 ? c->js->draft % 100 : c->js->draft);
    n->next_alloc = c->js->nodes;
    c->js->nodes = n;
    return n;
}

static uint64_t ptr_hash(const void *p)
{
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

static js_node *memo_get(cctx *c, const json_t *key)
{
    if (!c->memo_cap)
        return NULL;
    for (size_t i = ptr_hash(key) & (c->memo_cap - 1);; i = (i + 1) & (c->memo_cap - 1)) {
        if (!c->memo[i].key)
            return NULL;
        if (c->memo[i].key == key)
            return c->memo[i].node;
    }
}

static int memo_put(cctx *c, const json_t *key, js_node *n)
{
    if ((c->memo_n + 1) * 2 > c->memo_cap) {
        size_t cap = c->memo_cap ? c->memo_cap * 2 : 64;
        memo_slot *m = calloc(cap, sizeof(*m));
        if (!m)
            return -1;
        for (size_t i = 0; i < c->memo_cap; i++)
            if (c->memo[i].key) {
                size_t k = ptr_hash(c->memo[i].key) & (cap - 1);
                while (m[k].key)
                    k = (k + 1) & (cap - 1);
                m[k] = c->memo[i];
            }
        free(c->memo);
        c->memo = m;
        c->memo_cap = cap;
    }
    size_t k = ptr_hash(key) & (c->memo_cap - 1);
    while (c->memo[k].key)
        k = (k + 1) & (c->memo_cap - 1);
    c->memo[k].key = key;
    c->memo[k].node = n;
    c->memo_n++;
    return 0;
}

/* ---- URIs ---- */

/* base + ref (without fragment), malloc'd. */
static char *uri_resolve(const char *base, const char *ref, size_t rlen)
{
    size_t blen = strlen(base);
    const char *colon = memchr(ref, ':', rlen);
    const char *slash = memchr(ref, '/', rlen);
    char *out;
    if (colon && (!slash || colon < slash)) { /* absolute */
        out = strndup(ref, rlen);
    } else if (rlen == 0) {
        out = strdup(base);
    } else if (ref[0] == '/') {
        /* scheme://authority of the base, then the path. */
        const char *auth = strstr(base, "://");
        size_t keep = 0;
        if (auth) {
            const char *p = strchr(auth + 3, '/');
            keep = p ? (size_t)(p - base) : blen;
        }
        out = malloc(keep + rlen + 1);
        if (out) {
            memcpy(out, base, keep);
            memcpy(out + keep, ref, rlen);
            out[keep + rlen] = 0;
        }
    } else {
        const char *last = strrchr(base, '/');
        size_t keep = last ? (size_t)(last - base) + 1 : 0;
        out = malloc(keep + rlen + 1);
        if (out) {
            memcpy(out, base, keep);
            memcpy(out + keep, ref, rlen);
            out[keep + rlen] = 0;
        }
    }
    return out;
}

static void id_put(cctx *c, const char *uri, json_t *target)
{
    if (!json_object_get(c->ids, uri))
        json_object_set_new(c->ids, uri, json_integer((json_int_t)(intptr_t)target));
}

static json_t *id_get(cctx *c, const char *uri)
{
    json_t *v = json_object_get(c->ids, uri);
    return v ? (json_t *)(intptr_t)json_integer_value(v) : NULL;
}

/* Records the "$id"s and anchors of a document. What is past the depth bound is not scanned
 * (compilation refuses it anyway). */
static void scan_ids(cctx *c, json_t *j, const char *base, int depth)
{
    if (depth > SCHEMA_MAX_DEPTH * 2)
        return;
    if (json_is_array(j)) {
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v) scan_ids(c, v, base, depth + 1);
        return;
    }
    if (!json_is_object(j))
        return;
    char *nb = NULL;
    json_t *id = json_object_get(j, "$id");
    if (!json_is_string(id) && c->js->draft == JS_D4)
        id = json_object_get(j, "id");
    if (json_is_string(id)) {
        const char *s = json_string_value(id);
        if (s[0] == '#') { /* draft 6/7 anchor */
            char *a = malloc(strlen(base) + strlen(s) + 1);
            if (a) {
                sprintf(a, "%s%s", base, s);
                id_put(c, a, j);
                free(a);
            }
        } else {
            const char *hash = strchr(s, '#');
            nb = uri_resolve(base, s, hash ? (size_t)(hash - s) : strlen(s));
            if (nb) {
                id_put(c, nb, j);
                base = nb;
            }
        }
    }
    json_t *anchor = json_object_get(j, "$anchor");
    if (!json_is_string(anchor))
        anchor = json_object_get(j, "$dynamicAnchor");
    if (json_is_string(anchor)) {
        char *a = malloc(strlen(base) + json_string_length(anchor) + 2);
        if (a) {
            sprintf(a, "%s#%s", base, json_string_value(anchor));
            id_put(c, a, j);
            free(a);
        }
    }
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v)
    {
        if (strcmp(k, "enum") && strcmp(k, "const") && strcmp(k, "default") &&
            strcmp(k, "examples"))
            scan_ids(c, v, base, depth + 1);
    }
    free(nb);
}

/* RFC 6901 over j, the pointer percent-decoded first (it comes from a URI fragment). */
static json_t *pointer_get(json_t *j, const char *ptr)
{
    char seg[512];
    while (j && *ptr == '/') {
        ptr++;
        size_t n = 0;
        while (*ptr && *ptr != '/' && n + 1 < sizeof(seg)) {
            char ch = *ptr++;
            if (ch == '~' && (*ptr == '0' || *ptr == '1'))
                ch = *ptr++ == '0' ? '~' : '/';
            else if (ch == '%' && ptr[0] && ptr[1]) {
                char hex[3] = {ptr[0], ptr[1], 0};
                char *end;
                long v = strtol(hex, &end, 16);
                if (*end == 0) {
                    ch = (char)v;
                    ptr += 2;
                }
            }
            seg[n++] = ch;
        }
        seg[n] = 0;
        if (json_is_object(j)) {
            j = json_object_get(j, seg);
        } else if (json_is_array(j)) {
            char *end;
            unsigned long i = strtoul(seg, &end, 10);
            j = (*end || !n) ? NULL : json_array_get(j, i);
        } else {
            return NULL;
        }
    }
    return *ptr ? NULL : j;
}

/* Finds the document of an absolute or relative URI among the references. */
static json_t *dep_doc(cctx *c, const char *uri, size_t ulen, const char *abs)
{
    for (size_t i = 0; i < c->ndeps && i < c->js->ndeps; i++) {
        const char *name = c->deps[i].name ? c->deps[i].name : "";
        if ((strlen(name) == ulen && !memcmp(name, uri, ulen)) || !strcmp(name, abs))
            return c->js->dep_docs[i];
    }
    /* A name given as a bare file name, as schemas often say "$ref": "address.json". */
    const char *last = strrchr(abs, '/');
    last = last ? last + 1 : abs;
    for (size_t i = 0; i < c->ndeps && i < c->js->ndeps; i++) {
        const char *name = c->deps[i].name ? c->deps[i].name : "";
        const char *nl = strrchr(name, '/');
        nl = nl ? nl + 1 : name;
        if (*last && !strcmp(nl, last))
            return c->js->dep_docs[i];
    }
    return NULL;
}

/* Resolves ref against base: the target, and its resource's base (malloc'd) in *tbase. */
static json_t *resolve_ref(cctx *c, const char *ref, const char *base, char **tbase)
{
    const char *hash = strchr(ref, '#');
    size_t ulen = hash ? (size_t)(hash - ref) : strlen(ref);
    const char *frag = hash ? hash + 1 : "";
    char *abs = uri_resolve(base, ref, ulen);
    if (!abs)
        return NULL;
    json_t *res = id_get(c, abs);
    if (!res && ulen)
        res = dep_doc(c, ref, ulen, abs);
    if (!res && !ulen)
        res = c->js->root_doc;
    json_t *t = NULL;
    if (res) {
        if (!*frag) {
            t = res;
        } else if (frag[0] == '/') {
            t = pointer_get(res, frag);
        } else {
            char *a = malloc(strlen(abs) + strlen(frag) + 2);
            if (a) {
                sprintf(a, "%s#%s", abs, frag);
                t = id_get(c, a);
                free(a);
            }
        }
    }
    if (t)
        *tbase = abs;
    else
        free(abs);
    return t;
}

static int add_pending(cctx *c, js_node *n, json_t *target, char *tbase)
{
    if (c->npend == c->cap_pend) {
        size_t cap = c->cap_pend ? c->cap_pend * 2 : 16;
        pending *p = realloc(c->pend, cap * sizeof(*p));
        if (!p)
            return -1;
        c->pend = p;
        c->cap_pend = cap;
    }
    c->pend[c->npend++] = (pending){n, target, tbase};
    return 0;
}

/* ---- keywords ---- */

static bool count_of(json_t *v, long long *out)
{
    double d;
    if (json_is_integer(v))
        d = (double)json_integer_value(v);
    else if (json_is_real(v))
        d = json_real_value(v);
    else
        return false;
    if (d < 0 || d != floor(d) || d > 9.0e18)
        return false;
    *out = (long long)d;
    return true;
}

static unsigned type_bit(const char *t)
{
    static const struct {
        const char *name;
        unsigned bit;
    } names[] = {{"null", JT_NULL},  {"boolean", JT_BOOL}, {"integer", JT_INT}, {"number", JT_NUM},
                 {"string", JT_STR}, {"array", JT_ARR},    {"object", JT_OBJ}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (!strcmp(t, names[i].name))
            return names[i].bit;
    return 0;
}

static js_node *sub(cctx *c, json_t *parent, const char *key, const char *key2, const char *base,
                    int depth)
{
    size_t s1, s2 = 0;
    path_push(c, key, &s1);
    if (key2)
        path_push(c, key2, &s2);
    js_node *n = compile(c, parent, base, depth + 1);
    if (n) {
        if (key2)
            path_pop(c, s2);
        path_pop(c, s1);
    }
    return n;
}

/* An array of schemas (allOf, anyOf, oneOf, items, prefixItems). */
static js_node **sub_array(cctx *c, json_t *arr, const char *key, size_t *count, const char *base,
                           int depth, bool nonempty)
{
    size_t n = json_array_size(arr);
    size_t saved;
    path_push(c, key, &saved);
    if (!json_is_array(arr) || (nonempty && n == 0))
        FAIL(c, key, "'%s' must be a%s array of schemas", key, nonempty ? " non-empty" : "n");
    js_node **out = calloc(n ? n : 1, sizeof(*out));
    if (!out)
        FAIL(c, "memory", "out of memory");
    for (size_t i = 0; i < n; i++) {
        char idx[24];
        snprintf(idx, sizeof(idx), "%zu", i);
        size_t s2;
        path_push(c, idx, &s2);
        out[i] = compile(c, json_array_get(arr, i), base, depth + 1);
        if (!out[i]) {
            free(out);
            return NULL;
        }
        path_pop(c, s2);
    }
    path_pop(c, saved);
    *count = n;
    return out;
}

static int cmp_prop(const void *a, const void *b)
{
    return strcmp(((const js_prop *)a)->name, ((const js_prop *)b)->name);
}

/* The hash table of n's properties (validation looks each member of an object up in it). */
static int prop_table(js_node *n)
{
    size_t size = 8;
    while (size < 2 * n->nprops)
        size *= 2;
    n->prop_table = calloc(size, sizeof(*n->prop_table));
    if (!n->prop_table)
        return -1;
    n->prop_mask = (uint32_t)(size - 1);
    for (size_t i = 0; i < n->nprops; i++) {
        uint32_t slot = n->props[i].hash & n->prop_mask;
        while (n->prop_table[slot])
            slot = (slot + 1) & n->prop_mask;
        n->prop_table[slot] = (uint32_t)i + 1;
    }
    return 0;
}

/* Where each required name is among the properties (after prop_table). */
static int required_props(js_node *n)
{
    n->required_prop = calloc(n->nrequired + 1, sizeof(*n->required_prop));
    if (!n->required_prop)
        return -1;
    n->required_in_props = n->nprops <= JS_SEEN_MAX;
    for (size_t i = 0; i < n->nrequired; i++) {
        n->required_prop[i] = js_prop_index(n, n->required[i], strlen(n->required[i]),
                                            jd_hash_key(n->required[i], strlen(n->required[i])));
        if (n->required_prop[i] < 0)
            n->required_in_props = false;
    }
    return 0;
}

static js_node *compile_object_kw(cctx *c, js_node *n, json_t *j, const char *base, int depth)
{
    json_t *v;
    if ((v = json_object_get(j, "properties"))) {
        if (!json_is_object(v))
            FAIL(c, "properties", "'properties' must be an object");
        n->props = calloc(json_object_size(v) + 1, sizeof(*n->props));
        if (!n->props)
            FAIL(c, "memory", "out of memory");
        const char *k;
        json_t *ps;
        json_object_foreach(v, k, ps)
        {
            js_node *p = sub(c, ps, "properties", k, base, depth);
            if (!p)
                return NULL;
            n->props[n->nprops++] = (js_prop){k, p, jd_hash_key(k, strlen(k)), (uint32_t)strlen(k)};
        }
        qsort(n->props, n->nprops, sizeof(*n->props), cmp_prop);
        if (prop_table(n))
            FAIL(c, "memory", "out of memory");
    }
    if ((v = json_object_get(j, "patternProperties"))) {
        if (!json_is_object(v))
            FAIL(c, "patternProperties", "'patternProperties' must be an object");
        n->pprops = calloc(json_object_size(v) + 1, sizeof(*n->pprops));
        if (!n->pprops)
            FAIL(c, "memory", "out of memory");
        const char *k;
        json_t *ps;
        json_object_foreach(v, k, ps)
        {
            char why[160];
            pcre2_code *re = js_regex_compile(k, why, sizeof(why));
            if (!re) {
                size_t s1, s2;
                path_push(c, "patternProperties", &s1);
                path_push(c, k, &s2);
                FAIL(c, "patternProperties", "invalid pattern '%s': %s", k, why);
            }
            n->pprops[n->npprops++] = (js_pprop){re, k, NULL};
            js_node *p = sub(c, ps, "patternProperties", k, base, depth);
            if (!p)
                return NULL;
            n->pprops[n->npprops - 1].node = p;
        }
    }
    if ((v = json_object_get(j, "additionalProperties"))) {
        n->has |= JK_ADDPROPS;
        if (!(n->additional = sub(c, v, "additionalProperties", NULL, base, depth)))
            return NULL;
    }
    if ((v = json_object_get(j, "required")) && json_is_array(v)) {
        n->required = calloc(json_array_size(v) + 1, sizeof(*n->required));
        if (!n->required)
            FAIL(c, "memory", "out of memory");
        size_t i;
        json_t *r;
        json_array_foreach(v, i, r)
        {
            if (!json_is_string(r))
                FAIL(c, "required", "'required' must be an array of strings");
            n->required[n->nrequired++] = json_string_value(r);
        }
        if (required_props(n))
            FAIL(c, "memory", "out of memory");
    }
    if ((v = json_object_get(j, "propertyNames")) &&
        !(n->property_names = sub(c, v, "propertyNames", NULL, base, depth)))
        return NULL;
    return n;
}

static js_node *compile_deps(cctx *c, js_node *n, json_t *j, const char *base, int depth)
{
    static const char *const kws[] = {"dependencies", "dependentRequired", "dependentSchemas"};
    size_t total = 0;
    for (int k = 0; k < 3; k++) {
        json_t *v = json_object_get(j, kws[k]);
        if (v && !json_is_object(v))
            FAIL(c, kws[k], "'%s' must be an object", kws[k]);
        total += json_object_size(v);
    }
    if (!total)
        return n;
    n->deps = calloc(total, sizeof(*n->deps));
    if (!n->deps)
        FAIL(c, "memory", "out of memory");
    for (int k = 0; k < 3; k++) {
        const char *name;
        json_t *d;
        json_object_foreach(json_object_get(j, kws[k]), name, d)
        {
            js_dep *dep = &n->deps[n->ndeps++];
            dep->name = name;
            if (json_is_array(d) && k < 2) {
                dep->required = calloc(json_array_size(d) + 1, sizeof(char *));
                if (!dep->required)
                    FAIL(c, "memory", "out of memory");
                size_t i;
                json_t *r;
                json_array_foreach(d, i, r)
                {
                    if (!json_is_string(r))
                        FAIL(c, kws[k], "'%s' of '%s' must list property names", kws[k], name);
                    dep->required[dep->nrequired++] = json_string_value(r);
                }
            } else if (k != 1) {
                if (!(dep->schema = sub(c, d, kws[k], name, base, depth)))
                    return NULL;
            } else {
                FAIL(c, kws[k], "'%s' of '%s' must be an array", kws[k], name);
            }
        }
    }
    return n;
}

static js_node *compile_array_kw(cctx *c, js_node *n, json_t *j, const char *base, int depth)
{
    json_t *items = json_object_get(j, "items");
    json_t *prefix = json_object_get(j, "prefixItems");
    json_t *rest = NULL;
    const char *rest_key = NULL;
    if (prefix) {
        if (!(n->tuple = sub_array(c, prefix, "prefixItems", &n->ntuple, base, depth, true)))
            return NULL;
        rest = items, rest_key = "items";
    } else if (json_is_array(items)) {
        if (!(n->tuple = sub_array(c, items, "items", &n->ntuple, base, depth, false)))
            return NULL;
        rest = json_object_get(j, "additionalItems"), rest_key = "additionalItems";
        if (rest)
            n->has |= JK_ADDITEMS;
    } else {
        rest = items, rest_key = "items";
    }
    if (rest && !(n->items = sub(c, rest, rest_key, NULL, base, depth)))
        return NULL;
    json_t *ai = json_object_get(j, "additionalItems");
    if (ai && !prefix && !(n->additional_items = sub(c, ai, "additionalItems", NULL, base, depth)))
        return NULL;
    json_t *v;
    if ((v = json_object_get(j, "contains")) &&
        !(n->contains = sub(c, v, "contains", NULL, base, depth)))
        return NULL;
    if ((v = json_object_get(j, "uniqueItems")) && json_is_true(v))
        n->has |= JK_UNIQUE;
    return n;
}

static js_node *compile_counts(cctx *c, js_node *n, json_t *j)
{
    static const struct {
        const char *kw;
        size_t off;
    } counts[] = {
        {"minLength", offsetof(js_node, min_len)},
        {"maxLength", offsetof(js_node, max_len)},
        {"minItems", offsetof(js_node, min_items)},
        {"maxItems", offsetof(js_node, max_items)},
        {"minProperties", offsetof(js_node, min_props)},
        {"maxProperties", offsetof(js_node, max_props)},
        {"minContains", offsetof(js_node, min_contains)},
        {"maxContains", offsetof(js_node, max_contains)},
    };
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        json_t *v = json_object_get(j, counts[i].kw);
        if (v && !count_of(v, (long long *)((char *)n + counts[i].off))) {
            size_t s;
            path_push(c, counts[i].kw, &s);
            FAIL(c, counts[i].kw, "'%s' must be a non-negative integer", counts[i].kw);
        }
    }
    return n;
}

static js_node *compile_numbers(cctx *c, js_node *n, json_t *j)
{
    static const struct {
        const char *kw;
        unsigned bit;
        size_t off;
    } nums[] = {
        {"minimum", JK_MINIMUM, offsetof(js_node, minimum)},
        {"maximum", JK_MAXIMUM, offsetof(js_node, maximum)},
        {"exclusiveMinimum", JK_EXMIN, offsetof(js_node, exmin)},
        {"exclusiveMaximum", JK_EXMAX, offsetof(js_node, exmax)},
        {"multipleOf", JK_MULTIPLE, offsetof(js_node, multiple)},
    };
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        json_t *v = json_object_get(j, nums[i].kw);
        if (!v)
            continue;
        if (json_is_number(v)) {
            *(double *)((char *)n + nums[i].off) = json_number_value(v);
            n->has |= nums[i].bit;
        } else if (!(json_is_boolean(v) && (nums[i].bit & (JK_EXMIN | JK_EXMAX)))) {
            size_t s;
            path_push(c, nums[i].kw, &s);
            FAIL(c, nums[i].kw, "'%s' must be a number", nums[i].kw);
        }
    }
    if ((n->has & JK_MULTIPLE) && !(n->multiple > 0))
        FAIL(c, "multipleOf", "'multipleOf' must be greater than 0");
    /* Draft 4's boolean form: the bound becomes exclusive. */
    if (json_is_true(json_object_get(j, "exclusiveMinimum")) && (n->has & JK_MINIMUM)) {
        n->exmin = n->minimum;
        n->has = (n->has & ~JK_MINIMUM) | JK_EXMIN;
    }
    if (json_is_true(json_object_get(j, "exclusiveMaximum")) && (n->has & JK_MAXIMUM)) {
        n->exmax = n->maximum;
        n->has = (n->has & ~JK_MAXIMUM) | JK_EXMAX;
    }
    return n;
}

static js_node *compile_scalars(cctx *c, js_node *n, json_t *j)
{
    json_t *v;
    size_t s;
    if ((v = json_object_get(j, "type"))) {
        n->has |= JK_TYPE;
        n->types = 0;
        if (json_is_string(v)) {
            n->types = type_bit(json_string_value(v));
            if (!n->types) {
                path_push(c, "type", &s);
                FAIL(c, "type", "unknown type '%s'", json_string_value(v));
            }
        } else if (json_is_array(v) && json_array_size(v)) {
            size_t i;
            json_t *t;
            json_array_foreach(v, i, t)
            {
                unsigned b = json_is_string(t) ? type_bit(json_string_value(t)) : 0;
                if (!b) {
                    path_push(c, "type", &s);
                    FAIL(c, "type", "'type' must name JSON Schema types");
                }
                n->types |= b;
            }
        } else {
            path_push(c, "type", &s);
            FAIL(c, "type", "'type' must be a type name or an array of them");
        }
        if (n->types & JT_NUM)
            n->types |= JT_INT;
    }
    if ((v = json_object_get(j, "enum"))) {
        if (!json_is_array(v)) {
            path_push(c, "enum", &s);
            FAIL(c, "enum", "'enum' must be an array");
        }
        n->enum_values = v;
        n->has |= JK_ENUM;
        size_t i, ns = 0;
        json_t *e;
        json_array_foreach(v, i, e) ns += json_is_string(e);
        if (ns == json_array_size(v) && ns > 0 &&
            (n->enum_strs = calloc(ns, sizeof(*n->enum_strs))) != NULL)
            json_array_foreach(v, i, e) n->enum_strs[i] =
                (js_str){json_string_value(e), json_string_length(e)};
    }
    if ((v = json_object_get(j, "const"))) {
        n->const_value = v;
        n->has |= JK_CONST;
    }
    if ((v = json_object_get(j, "pattern"))) {
        char why[160];
        path_push(c, "pattern", &s);
        if (!json_is_string(v))
            FAIL(c, "pattern", "'pattern' must be a string");
        if (!(n->pattern = js_regex_compile(json_string_value(v), why, sizeof(why))))
            FAIL(c, "pattern", "invalid pattern: %s", why);
        n->pattern_src = json_string_value(v);
        path_pop(c, s);
    }
    if ((v = json_object_get(j, "format")) && json_is_string(v))
        n->format = js_format_parse(json_string_value(v));
    return n;
}

static js_node *compile_applicators(cctx *c, js_node *n, json_t *j, const char *base, int depth)
{
    json_t *v;
    if ((v = json_object_get(j, "allOf")) &&
        !(n->all_of = sub_array(c, v, "allOf", &n->nall, base, depth, true)))
        return NULL;
    if ((v = json_object_get(j, "anyOf")) &&
        !(n->any_of = sub_array(c, v, "anyOf", &n->nany, base, depth, true)))
        return NULL;
    if ((v = json_object_get(j, "oneOf")) &&
        !(n->one_of = sub_array(c, v, "oneOf", &n->none, base, depth, true)))
        return NULL;
    if ((v = json_object_get(j, "not")) && !(n->not_ = sub(c, v, "not", NULL, base, depth)))
        return NULL;
    if ((v = json_object_get(j, "if"))) {
        if (!(n->if_ = sub(c, v, "if", NULL, base, depth)))
            return NULL;
        if ((v = json_object_get(j, "then")) && !(n->then_ = sub(c, v, "then", NULL, base, depth)))
            return NULL;
        if ((v = json_object_get(j, "else")) && !(n->else_ = sub(c, v, "else", NULL, base, depth)))
            return NULL;
    }
    return n;
}

static js_node *compile_ref(cctx *c, js_node *n, json_t *j, const char *base)
{
    json_t *r = json_object_get(j, "$ref");
    const char *ref = json_string_value(r);
    if (!ref && json_is_string(json_object_get(j, "$recursiveRef")))
        ref = "#";
    if (!ref)
        ref = json_string_value(json_object_get(j, "$dynamicRef"));
    if (!ref)
        return n;
    size_t s;
    path_push(c, "$ref", &s);
    char *tbase = NULL;
    json_t *target = resolve_ref(c, ref, base, &tbase);
    if (!target)
        FAIL(c, "$ref", "unresolved reference '%s'", ref);
    if (add_pending(c, n, target, tbase)) {
        free(tbase);
        FAIL(c, "memory", "out of memory");
    }
    path_pop(c, s);
    n->ref = ref;
    n->has |= JK_REF;
    return n;
}

static js_node *compile(cctx *c, json_t *j, const char *base, int depth)
{
    js_node *n = memo_get(c, j);
    if (n)
        return n;
    if (depth > SCHEMA_MAX_DEPTH)
        FAIL(c, "depth", "the schema nests deeper than %d", SCHEMA_MAX_DEPTH);
    if (!json_is_object(j) && !json_is_boolean(j))
        FAIL(c, "schema", "a schema must be an object or a boolean");
    if (!(n = node_new(c, j)) || memo_put(c, j, n))
        FAIL(c, "memory", "out of memory");
    if (json_is_boolean(j)) {
        n->boolean = json_is_true(j) ? 1 : 0;
        return n;
    }
    char *nb = NULL;
    json_t *id = json_object_get(j, c->js->draft == JS_D4 ? "id" : "$id");
    if (json_is_string(id) && json_string_value(id)[0] != '#') {
        const char *s = json_string_value(id);
        const char *hash = strchr(s, '#');
        if ((nb = uri_resolve(base, s, hash ? (size_t)(hash - s) : strlen(s))))
            base = nb;
    }
    js_node *ok = compile_ref(c, n, j, base);
    /* Before 2019-09, "$ref" stands alone: the keywords beside it are ignored. */
    if (ok && !(n->ref && c->js->draft <= JS_D7)) {
        ok = compile_scalars(c, n, j);
        ok = ok ? compile_numbers(c, n, j) : NULL;
        ok = ok ? compile_counts(c, n, j) : NULL;
        ok = ok ? compile_object_kw(c, n, j, base, depth) : NULL;
        ok = ok ? compile_deps(c, n, j, base, depth) : NULL;
        ok = ok ? compile_array_kw(c, n, j, base, depth) : NULL;
        ok = ok ? compile_applicators(c, n, j, base, depth) : NULL;
    }
    free(nb);
    return ok;
}

js_draft js_draft_of(const json_t *doc)
{
    const char *s = json_string_value(json_object_get(doc, "$schema"));
    if (!s)
        return JS_D7;
    if (strstr(s, "draft-04"))
        return JS_D4;
    if (strstr(s, "draft-06"))
        return JS_D6;
    if (strstr(s, "2019-09"))
        return JS_D2019;
    if (strstr(s, "2020-12"))
        return JS_D2020;
    return JS_D7;
}

static const char *doc_base(json_t *doc, js_draft d, const char *fallback)
{
    const char *id = json_string_value(json_object_get(doc, d == JS_D4 ? "id" : "$id"));
    return id && id[0] != '#' ? id : fallback;
}

/* Which keywords of n validation must look at (js_node.work). */
static unsigned char work_of(const js_node *n)
{
    unsigned char w = 0;
    if (n->nall || n->nany || n->none || n->not_ || n->if_)
        w |= JW_APPLY;
    if (n->has & (JK_ENUM | JK_CONST))
        w |= JW_ENUM;
    if (n->min_len >= 0 || n->max_len >= 0 || n->pattern || n->format)
        w |= JW_STR;
    if (n->has & (JK_MINIMUM | JK_MAXIMUM | JK_EXMIN | JK_EXMAX | JK_MULTIPLE))
        w |= JW_NUM;
    if (n->nrequired || n->min_props >= 0 || n->max_props >= 0 || n->nprops || n->npprops ||
        n->additional || n->property_names || n->ndeps)
        w |= JW_OBJ;
    if (n->min_items >= 0 || n->max_items >= 0 || n->items || n->ntuple || (n->has & JK_UNIQUE) ||
        n->contains)
        w |= JW_ARR;
    return w;
}

int js_compile(js_schema *js, const schema_dep *deps, size_t ndeps, schema_error *err)
{
    cctx c = {.js = js, .deps = deps, .ndeps = ndeps, .err = err};
    int rc = -1;
    if (!(c.ids = json_object())) {
        schema_set_error(err, "", "memory", "out of memory");
        return -1;
    }
    for (size_t i = 0; i < js->ndeps; i++) {
        const char *name = deps[i].name ? deps[i].name : "";
        char *b = uri_resolve("", doc_base(js->dep_docs[i], js->draft, name),
                              strlen(doc_base(js->dep_docs[i], js->draft, name)));
        if (b) {
            id_put(&c, b, js->dep_docs[i]);
            scan_ids(&c, js->dep_docs[i], b, 0);
            free(b);
        }
    }
    const char *rbase = doc_base(js->root_doc, js->draft, "");
    id_put(&c, rbase, js->root_doc);
    scan_ids(&c, js->root_doc, rbase, 0);
    js->root = compile(&c, js->root_doc, rbase, 0);
    /* The targets of "$ref"s, compiled until no new one appears; each at most once. */
    while (js->root && c.npend) {
        pending p = c.pend[--c.npend];
        /* The path of a reference's target is where the reference points, from there. */
        c.plen = 0;
        c.path[0] = 0;
        p.node->ref_node = compile(&c, p.target, p.base, 0);
        free(p.base);
        if (!p.node->ref_node) {
            if (err) {
                size_t ml = strlen(err->message);
                snprintf(err->message + ml, sizeof(err->message) - ml,
                         " (in the target of \"$ref\": \"%.200s\")", p.node->ref);
            }
            js->root = NULL;
        }
    }
    if (js->root)
        rc = 0;
    for (js_node *n = js->nodes; n; n = n->next_alloc)
        n->work = work_of(n);
    while (c.npend)
        free(c.pend[--c.npend].base);
    free(c.pend);
    free(c.memo);
    json_decref(c.ids);
    return rc;
}

void js_free_nodes(js_schema *js)
{
    js_node *n = js->nodes;
    while (n) {
        js_node *next = n->next_alloc;
        free(n->props);
        free(n->enum_strs);
        free(n->prop_table);
        free(n->required_prop);
        for (size_t i = 0; i < n->npprops; i++)
            pcre2_code_free(n->pprops[i].re);
        free(n->pprops);
        free(n->required);
        for (size_t i = 0; i < n->ndeps; i++)
            free(n->deps[i].required);
        free(n->deps);
        free(n->tuple);
        free(n->all_of);
        free(n->any_of);
        free(n->one_of);
        pcre2_code_free(n->pattern);
        free(n);
        n = next;
    }
    js->nodes = NULL;
}
