/*
 * json_schema_validate.c: a JSON document (json_dom.h: the flat form the produce path parses
 * into, or a jansson value copied into it) validated against the compiled tree
 * (json_schema_compile.c). This runs on the produce path, so it allocates nothing in the common
 * case: the instance's path is a stack of borrowed keys and indexes, turned into a JSON pointer
 * only when a message is written; the applicators that try subschemas (anyOf, oneOf, not, if,
 * contains) run them quietly, without writing messages. The exception: "uniqueItems" on more
 * than 16 items sorts hashes of them.
 *
 * Bounds: the instance is walked no deeper than SCHEMA_MAX_DEPTH levels, "$ref"s are followed
 * no more than SCHEMA_MAX_DEPTH deep (a schema that refers to itself without consuming the
 * instance stops there), and one validation takes at most JS_MAX_STEPS steps (subschemas
 * applied), so that a schema of nested anyOfs over "$ref"s cannot make the work exponential.
 * Past a bound, the value is refused ("depth", "$ref", "steps"), never accepted: such a refusal
 * is not undone by "not" or "anyOf".
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/json_dom.h"
#include "schema/json_schema_int.h"

#define JS_MAX_STEPS 4000000L
#define JS_MAX_FRAMES (16 * SCHEMA_MAX_DEPTH)

typedef struct seg {
    const char *key; /* NULL: an array index */
    size_t index;
} seg;

typedef struct vctx {
    schema_error *err;
    int quiet;  /* > 0: inside an applicator that tries subschemas */
    bool fatal; /* a bound was passed: the whole validation fails */
    int depth;  /* of the instance path */
    int hops;   /* "$ref"s followed on the current stack */
    int frames;
    long steps;
    seg path[SCHEMA_MAX_DEPTH + 1];
} vctx;

static int validate(vctx *c, const js_node *n, const jd_node *v);

static void write_path(const vctx *c, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = 0;
    for (int i = 0; i < c->depth && len + 1 < cap; i++) {
        if (!c->path[i].key) {
            int w = snprintf(out + len, cap - len, "/%zu", c->path[i].index);
            len += w > 0 ? (size_t)w : 0;
            continue;
        }
        out[len++] = '/';
        for (const char *p = c->path[i].key; *p && len + 3 < cap; p++) {
            if (*p == '~' || *p == '/') {
                out[len++] = '~';
                out[len++] = *p == '~' ? '0' : '1';
            } else {
                out[len++] = *p;
            }
        }
    }
    out[len < cap ? len : cap - 1] = 0;
}

static int report(vctx *c, const char *rule, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int report(vctx *c, const char *rule, const char *fmt, ...)
{
    if (c->quiet > 0 || !c->err)
        return -1;
    write_path(c, c->err->path, sizeof(c->err->path));
    snprintf(c->err->rule, sizeof(c->err->rule), "%s", rule);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err->message, sizeof(c->err->message), fmt, ap);
    va_end(ap);
    return -1;
}

/* A bound passed: reported even inside a quiet applicator, and final. */
static int fatal(vctx *c, const char *rule, const char *msg)
{
    if (!c->fatal) {
        c->fatal = true;
        int q = c->quiet;
        c->quiet = 0;
        report(c, rule, "%s", msg);
        c->quiet = q;
    }
    return -1;
}

static int push_key(vctx *c, const char *key)
{
    if (c->depth >= SCHEMA_MAX_DEPTH)
        return fatal(c, "depth", "the value nests deeper than the limit of 64 levels");
    c->path[c->depth++] = (seg){key, 0};
    return 0;
}

static int push_index(vctx *c, size_t i)
{
    if (c->depth >= SCHEMA_MAX_DEPTH)
        return fatal(c, "depth", "the value nests deeper than the limit of 64 levels");
    c->path[c->depth++] = (seg){NULL, i};
    return 0;
}

static int validate_at_key(vctx *c, const js_node *n, const jd_node *v, const char *key)
{
    if (push_key(c, key))
        return -1;
    int rc = validate(c, n, v);
    c->depth--;
    return rc;
}

static int validate_at_index(vctx *c, const js_node *n, const jd_node *v, size_t i)
{
    if (push_index(c, i))
        return -1;
    int rc = validate(c, n, v);
    c->depth--;
    return rc;
}

/* Runs n quietly: 0 if v is valid, -1 if not (or fatal). */
static int try_node(vctx *c, const js_node *n, const jd_node *v)
{
    c->quiet++;
    int rc = validate(c, n, v);
    c->quiet--;
    return rc;
}

static unsigned type_of(const jd_node *v)
{
    switch (v->type) {
    case JD_NULL:
        return JT_NULL;
    case JD_TRUE:
    case JD_FALSE:
        return JT_BOOL;
    case JD_INT:
        return JT_INT | JT_NUM;
    case JD_REAL: {
        double d = v->u.d;
        return JT_NUM | (isfinite(d) && d == floor(d) ? JT_INT : 0);
    }
    case JD_STR:
        return JT_STR;
    case JD_ARR:
        return JT_ARR;
    default:
        return JT_OBJ;
    }
}

static const char *type_name(unsigned t)
{
    if (t & JT_OBJ)
        return "object";
    if (t & JT_ARR)
        return "array";
    if (t & JT_STR)
        return "string";
    if (t & JT_INT)
        return "integer";
    if (t & JT_NUM)
        return "number";
    if (t & JT_BOOL)
        return "boolean";
    return "null";
}

static int check_type(vctx *c, const js_node *n, const jd_node *v)
{
    unsigned t = type_of(v);
    if (t & n->types)
        return 0;
    static const unsigned order[] = {JT_OBJ, JT_ARR, JT_STR, JT_INT, JT_NUM, JT_BOOL, JT_NULL};
    char want[96] = "";
    size_t len = 0;
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        if (!(n->types & order[i]) || (order[i] == JT_INT && (n->types & JT_NUM)))
            continue;
        int w = snprintf(want + len, sizeof(want) - len, "%s%s", len ? " or " : "",
                         type_name(order[i]));
        len += w > 0 && (size_t)w < sizeof(want) - len ? (size_t)w : 0;
    }
    /* A real with a fraction is "number"; one without, where integer is wanted, cannot be. */
    return report(c, "type", "expected %s, got %s", want,
                  t & JT_INT && v->type != JD_INT ? "number" : type_name(t));
}

static bool multiple_ok(const jd_node *v, double m)
{
    if (v->type == JD_INT && m == floor(m) && m < 9.2e18)
        return v->u.i % (long long)m == 0;
    double q = jd_number(v) / m;
    if (!isfinite(q))
        return false;
    return fabs(q - nearbyint(q)) <= 1e-9 * fmax(1.0, fabs(q));
}

static int check_number(vctx *c, const js_node *n, const jd_node *v)
{
    double d = jd_number(v);
    if ((n->has & JK_MINIMUM) && d < n->minimum)
        return report(c, "minimum", "%.17g is less than the minimum %.17g", d, n->minimum);
    if ((n->has & JK_MAXIMUM) && d > n->maximum)
        return report(c, "maximum", "%.17g is more than the maximum %.17g", d, n->maximum);
    if ((n->has & JK_EXMIN) && d <= n->exmin)
        return report(c, "exclusiveMinimum", "%.17g is not more than %.17g", d, n->exmin);
    if ((n->has & JK_EXMAX) && d >= n->exmax)
        return report(c, "exclusiveMaximum", "%.17g is not less than %.17g", d, n->exmax);
    if ((n->has & JK_MULTIPLE) && !multiple_ok(v, n->multiple))
        return report(c, "multipleOf", "%.17g is not a multiple of %.17g", d, n->multiple);
    return 0;
}

static int check_string(vctx *c, const js_node *n, const jd_node *v)
{
    const char *s = v->u.s;
    size_t len = v->len;
    if (n->min_len >= 0 || n->max_len >= 0) {
        size_t cp = v->ascii ? len : js_utf8_len(s, len);
        if (n->min_len >= 0 && cp < (size_t)n->min_len)
            return report(c, "minLength", "the string has %zu characters, fewer than %lld", cp,
                          n->min_len);
        if (n->max_len >= 0 && cp > (size_t)n->max_len)
            return report(c, "maxLength", "the string has %zu characters, more than %lld", cp,
                          n->max_len);
    }
    if (n->pattern) {
        int m = js_regex_match(n->pattern, s, len);
        if (m < 0)
            return report(c, "pattern",
                          "matching the pattern '%.200s' took more than the work allowed",
                          n->pattern_src);
        if (!m)
            return report(c, "pattern", "the string does not match the pattern '%.200s'",
                          n->pattern_src);
    }
    if (n->format && !js_format_ok(n->format, s, len))
        return report(c, "format", "the string is not a valid %s",
                      json_string_value(json_object_get(n->src, "format")));
    return 0;
}

/* a[0..n) == b[0..n): short names (most property names) without a call, by two loads of each
 * that overlap and stay within the n bytes. */
static inline bool name_eq(const char *a, const char *b, size_t n)
{
    if (n >= 8 && n <= 16) {
        uint64_t a0, a1, b0, b1;
        memcpy(&a0, a, 8);
        memcpy(&b0, b, 8);
        memcpy(&a1, a + n - 8, 8);
        memcpy(&b1, b + n - 8, 8);
        return ((a0 ^ b0) | (a1 ^ b1)) == 0;
    }
    if (n >= 4 && n < 8) {
        uint32_t a0, a1, b0, b1;
        memcpy(&a0, a, 4);
        memcpy(&b0, b, 4);
        memcpy(&a1, a + n - 4, 4);
        memcpy(&b1, b + n - 4, 4);
        return ((a0 ^ b0) | (a1 ^ b1)) == 0;
    }
    return memcmp(a, b, n) == 0;
}

int32_t js_prop_index(const js_node *n, const char *key, size_t keylen, uint32_t hash)
{
    if (!n->prop_table)
        return -1;
    for (uint32_t slot = hash & n->prop_mask;; slot = (slot + 1) & n->prop_mask) {
        uint32_t e = n->prop_table[slot];
        if (!e)
            return -1;
        const js_prop *p = &n->props[e - 1];
        if (p->hash == hash && p->len == keylen && name_eq(p->name, key, keylen))
            return (int32_t)(e - 1);
    }
}

static int check_deps(vctx *c, const js_node *n, const jd_node *v)
{
    for (size_t i = 0; i < n->ndeps; i++) {
        const js_dep *d = &n->deps[i];
        if (!jd_get(v, d->name))
            continue;
        for (size_t r = 0; r < d->nrequired; r++)
            if (!jd_get(v, d->required[r]))
                return report(c, n->draft < 19 ? "dependencies" : "dependentRequired",
                              "property '%s' is required when '%s' is present", d->required[r],
                              d->name);
        if (d->schema && validate(c, d->schema, v))
            return -1;
    }
    return 0;
}

/* A member of an object; p is its property's index (js_prop_index), or -1. */
static int check_member(vctx *c, const js_node *n, const jd_node *m, int32_t p)
{
    const char *k = m->key;
    const jd_node *e = jd_member_value(m);
    bool matched = false;
    if (p >= 0) {
        matched = true;
        if (validate_at_key(c, n->props[p].node, e, k))
            return -1;
    }
    for (size_t i = 0; i < n->npprops; i++) {
        int hit = js_regex_match(n->pprops[i].re, k, strlen(k));
        if (hit < 0) {
            push_key(c, k);
            report(c, "patternProperties", "matching the pattern '%.200s' took too long",
                   n->pprops[i].source);
            c->depth--;
            return -1;
        }
        if (hit) {
            matched = true;
            if (validate_at_key(c, n->pprops[i].node, e, k))
                return -1;
        }
    }
    if (!matched && n->additional) {
        if (n->additional->boolean == 0) {
            if (push_key(c, k))
                return -1;
            report(c, "additionalProperties", "property '%s' is not allowed", k);
            c->depth--;
            return -1;
        }
        if (validate_at_key(c, n->additional, e, k))
            return -1;
    }
    if (n->property_names) {
        /* The name as a string value, on the stack. */
        jd_node name = {.type = JD_STR, .skip = 1, .len = (uint32_t)strlen(k)};
        name.u.s = k;
        if (validate_at_key(c, n->property_names, &name, k))
            return -1;
    }
    return 0;
}

/* The property indexes of the first members of an object, looked up once for "required" and
 * used again for "properties". */
#define JS_MEMBERS_KEPT 64
typedef struct member_props {
    int32_t p[JS_MEMBERS_KEPT];
    size_t n;
} member_props;

/* "required": with the bitmap of the properties v has when every required name is one (the
 * common case; the members' property indexes are kept in *mp), else by looking each name up. */
static int check_required(vctx *c, const js_node *n, const jd_node *v, member_props *mp)
{
    if (n->required_in_props) {
        uint64_t seen[JS_SEEN_MAX / 64] = {0};
        const jd_node *end = jd_next(v);
        for (const jd_node *m = jd_first(v); m < end; m = jd_next(m)) {
            int32_t p = js_prop_index(n, m->key, m->keylen, m->keyhash);
            if (mp->n < JS_MEMBERS_KEPT)
                mp->p[mp->n++] = p;
            if (p >= 0)
                seen[p / 64] |= (uint64_t)1 << (p % 64);
        }
        for (size_t i = 0; i < n->nrequired; i++) {
            int32_t p = n->required_prop[i];
            if (!(seen[p / 64] >> (p % 64) & 1))
                return report(c, "required", "required property '%s' is missing", n->required[i]);
        }
        return 0;
    }
    for (size_t i = 0; i < n->nrequired; i++)
        if (!jd_get(v, n->required[i]))
            return report(c, "required", "required property '%s' is missing", n->required[i]);
    return 0;
}

static int check_object(vctx *c, const js_node *n, const jd_node *v)
{
    member_props mp;
    mp.n = 0;
    if (n->nrequired && check_required(c, n, v, &mp))
        return -1;
    size_t size = v->len;
    if (n->min_props >= 0 && size < (size_t)n->min_props)
        return report(c, "minProperties", "the object has %zu properties, fewer than %lld", size,
                      n->min_props);
    if (n->max_props >= 0 && size > (size_t)n->max_props)
        return report(c, "maxProperties", "the object has %zu properties, more than %lld", size,
                      n->max_props);
    if (n->nprops || n->npprops || n->additional || n->property_names) {
        const jd_node *end = jd_next(v);
        size_t i = 0;
        for (const jd_node *m = jd_first(v); m < end; m = jd_next(m), i++) {
            if (m->dead)
                continue;
            int32_t p = i < mp.n ? mp.p[i] : js_prop_index(n, m->key, m->keylen, m->keyhash);
            if (check_member(c, n, m, p))
                return -1;
        }
    }
    return n->ndeps ? check_deps(c, n, v) : 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Whether two items are equal: pairs for a few items, sorted hashes for more. */
static bool has_duplicates(const jd_node *v)
{
    size_t n = v->len;
    if (n <= 16) {
        const jd_node *a = jd_first(v);
        for (size_t i = 0; i < n; i++, a = jd_next(a)) {
            const jd_node *b = jd_next(a);
            for (size_t j = i + 1; j < n; j++, b = jd_next(b))
                if (jd_equal(a, b, 0))
                    return true;
        }
        return false;
    }
    /* Pairs of (hash, offset of the item from the array's node). */
    uint64_t *h = malloc(n * 2 * sizeof(*h));
    if (!h)
        return true; /* refused rather than accepted unchecked */
    const jd_node *a = jd_first(v);
    for (size_t i = 0; i < n; i++, a = jd_next(a)) {
        h[2 * i] = jd_hash(a, 0);
        h[2 * i + 1] = (uint64_t)(a - v);
    }
    qsort(h, n, 2 * sizeof(*h), cmp_u64);
    bool dup = false;
    for (size_t i = 0; i + 1 < n && !dup; i++)
        for (size_t j = i + 1; j < n && h[2 * j] == h[2 * i] && !dup; j++)
            dup = jd_equal(v + h[2 * i + 1], v + h[2 * j + 1], 0);
    free(h);
    return dup;
}

static int check_contains(vctx *c, const js_node *n, const jd_node *v)
{
    size_t count = 0, size = v->len;
    const jd_node *e = jd_first(v);
    for (size_t i = 0; i < size; i++, e = jd_next(e)) {
        if (!try_node(c, n->contains, e))
            count++;
        else if (c->fatal)
            return -1;
    }
    long long min = n->min_contains >= 0 ? n->min_contains : 1;
    if ((long long)count < min)
        return report(c, count ? "minContains" : "contains",
                      "the array has %zu items that match 'contains', fewer than %lld", count, min);
    if (n->max_contains >= 0 && (long long)count > n->max_contains)
        return report(c, "maxContains",
                      "the array has %zu items that match 'contains', more than %lld", count,
                      n->max_contains);
    return 0;
}

static int check_array(vctx *c, const js_node *n, const jd_node *v)
{
    size_t size = v->len;
    if (n->min_items >= 0 && size < (size_t)n->min_items)
        return report(c, "minItems", "the array has %zu items, fewer than %lld", size,
                      n->min_items);
    if (n->max_items >= 0 && size > (size_t)n->max_items)
        return report(c, "maxItems", "the array has %zu items, more than %lld", size, n->max_items);
    const jd_node *e = jd_first(v);
    for (size_t i = 0; i < size; i++, e = jd_next(e)) {
        const js_node *s = i < n->ntuple ? n->tuple[i] : n->items;
        if (!s)
            break;
        if (s->boolean == 0 && i >= n->ntuple) {
            if (push_index(c, i))
                return -1;
            report(c, n->has & JK_ADDITEMS ? "additionalItems" : "items",
                   "the array may have at most %zu items", n->ntuple);
            c->depth--;
            return -1;
        }
        if (validate_at_index(c, s, e, i))
            return -1;
    }
    if ((n->has & JK_UNIQUE) && has_duplicates(v))
        return report(c, "uniqueItems", "the array's items are not unique");
    return n->contains ? check_contains(c, n, v) : 0;
}

static int check_some_of(vctx *c, const js_node *n, const jd_node *v)
{
    if (n->nany) {
        size_t i;
        for (i = 0; i < n->nany; i++) {
            if (!try_node(c, n->any_of[i], v))
                break;
            if (c->fatal)
                return -1;
        }
        if (i == n->nany)
            return report(c, "anyOf", "the value matches none of the %zu schemas of anyOf",
                          n->nany);
    }
    if (n->none) {
        size_t ok = 0;
        for (size_t i = 0; i < n->none && ok < 2; i++) {
            if (!try_node(c, n->one_of[i], v))
                ok++;
            else if (c->fatal)
                return -1;
        }
        if (ok != 1)
            return report(c, "oneOf",
                          ok ? "the value matches more than one of the schemas of oneOf"
                             : "the value matches none of the %zu schemas of oneOf",
                          n->none);
    }
    return 0;
}

static int check_applicators(vctx *c, const js_node *n, const jd_node *v)
{
    for (size_t i = 0; i < n->nall; i++)
        if (validate(c, n->all_of[i], v))
            return -1;
    if ((n->nany || n->none) && check_some_of(c, n, v))
        return -1;
    if (n->not_) {
        int rc = try_node(c, n->not_, v);
        if (c->fatal)
            return -1;
        if (!rc)
            return report(c, "not", "the value matches the schema of 'not'");
    }
    if (n->if_) {
        int rc = try_node(c, n->if_, v);
        if (c->fatal)
            return -1;
        const js_node *next = rc ? n->else_ : n->then_;
        if (next && validate(c, next, v))
            return -1;
    }
    return 0;
}

/* The JW_* bit of the keywords of an instance's type (by jd_type). */
static const unsigned char typed_work[] = {
    [JD_NULL] = 0,      [JD_TRUE] = 0,     [JD_FALSE] = 0,    [JD_INT] = JW_NUM,
    [JD_REAL] = JW_NUM, [JD_STR] = JW_STR, [JD_ARR] = JW_ARR, [JD_OBJ] = JW_OBJ};

static int check_typed(vctx *c, const js_node *n, const jd_node *v)
{
    switch (v->type) {
    case JD_OBJ:
        return check_object(c, n, v);
    case JD_ARR:
        return check_array(c, n, v);
    case JD_STR:
        return check_string(c, n, v);
    case JD_INT:
    case JD_REAL:
        return check_number(c, n, v);
    default:
        return 0;
    }
}

static int check_enum(vctx *c, const js_node *n, const jd_node *v)
{
    if (n->has & JK_CONST && !jd_equal_json(v, n->const_value, 0))
        return report(c, "const", "the value is not the constant of the schema");
    if ((n->has & JK_ENUM) && n->enum_strs) { /* strings only: only a string can match */
        size_t ne = json_array_size(n->enum_values);
        for (size_t i = 0; v->type == JD_STR && i < ne; i++)
            if (n->enum_strs[i].n == v->len && !memcmp(n->enum_strs[i].s, v->u.s, v->len))
                return 0;
        return report(c, "enum", "the value is not one of the %zu values of the enum", ne);
    }
    if (n->has & JK_ENUM) {
        size_t i;
        json_t *e;
        json_array_foreach(n->enum_values, i, e)
        {
            if (jd_equal_json(v, e, 0))
                return 0;
        }
        return report(c, "enum", "the value is not one of the %zu values of the enum",
                      json_array_size(n->enum_values));
    }
    return 0;
}

static int validate(vctx *c, const js_node *n, const jd_node *v)
{
    if (c->fatal)
        return -1;
    if (++c->steps > JS_MAX_STEPS)
        return fatal(c, "steps", "the validation takes more steps than allowed");
    if (n->boolean >= 0)
        return n->boolean ? 0 : report(c, "false", "no value is allowed here");
    if (c->frames >= JS_MAX_FRAMES)
        return fatal(c, "depth", "the schema's subschemas nest deeper than allowed");
    c->frames++;
    int rc = 0;
    if (n->ref_node) {
        if (c->hops >= SCHEMA_MAX_DEPTH) {
            c->frames--;
            return fatal(c, "$ref", "references are followed deeper than the limit of 64");
        }
        c->hops++;
        rc = validate(c, n->ref_node, v);
        c->hops--;
    }
    if (!rc && (n->types & type_of(v)) == 0)
        rc = check_type(c, n, v);
    if (!rc && (n->work & JW_ENUM))
        rc = check_enum(c, n, v);
    if (!rc && (n->work & typed_work[v->type]))
        rc = check_typed(c, n, v);
    if (!rc && (n->work & JW_APPLY))
        rc = check_applicators(c, n, v);
    c->frames--;
    return rc;
}

int js_validate_value(const js_schema *js, const jd_node *v, schema_error *err)
{
    vctx c = {.err = err};
    return validate(&c, js->root, v) ? -1 : 0;
}
