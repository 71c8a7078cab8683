/* same.h: what tests/fuzz/json_dom and tests/unit/test_json_dom.c compare: a document of
 * schema/json_dom.h against jansson's reading of the same text, as json_schema.c reads it
 * (JSON_DECODE_ANY | JSON_ALLOW_NUL, and again with JSON_DECODE_INT_AS_REAL when an integer is
 * too big). Same types (integer and real apart), the same numbers bit for bit, the same string
 * bytes, the same members in the same order. */
#ifndef TD_TEST_JSON_DOM_SAME_H
#define TD_TEST_JSON_DOM_SAME_H

#include <jansson.h>
#include <string.h>

#include "schema/json_dom.h"

static inline json_t *same_load(const char *text, size_t len)
{
    json_error_t je;
    json_t *j = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!j && strstr(je.text, "too big"))
        j = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &je);
    return j;
}

/* 1 when a (and its subtree) is b. */
static inline int same_value(const jd_node *a, const json_t *b)
{
    switch (json_typeof(b)) {
    case JSON_NULL:
        return a->type == JD_NULL && a->skip == 1;
    case JSON_TRUE:
        return a->type == JD_TRUE && a->skip == 1;
    case JSON_FALSE:
        return a->type == JD_FALSE && a->skip == 1;
    case JSON_INTEGER:
        return a->type == JD_INT && a->skip == 1 && a->u.i == json_integer_value(b);
    case JSON_REAL: {
        double x = json_real_value(b);
        return a->type == JD_REAL && a->skip == 1 && !memcmp(&a->u.d, &x, sizeof(x));
    }
    case JSON_STRING:
        return a->type == JD_STR && a->skip == 1 && a->len == json_string_length(b) &&
               !memcmp(a->u.s, json_string_value(b), a->len) && a->u.s[a->len] == 0;
    case JSON_ARRAY: {
        if (a->type != JD_ARR || a->len != json_array_size(b))
            return 0;
        const jd_node *x = jd_first(a);
        for (size_t i = 0; i < a->len; i++, x = jd_next(x))
            if (x->key || !same_value(x, json_array_get(b, i)))
                return 0;
        return x == jd_next(a);
    }
    case JSON_OBJECT: {
        if (a->type != JD_OBJ || a->len != json_object_size(b))
            return 0;
        const jd_node *m = jd_first(a), *end = jd_next(a);
        void *it = json_object_iter((json_t *)b);
        for (; m < end; m = jd_next(m)) {
            if (m->dead)
                continue;
            if (!it || !m->key || strcmp(m->key, json_object_iter_key(it)) ||
                m->keyhash != jd_hash_key(m->key, strlen(m->key)) ||
                jd_get(a, m->key) != jd_member_value(m) ||
                !same_value(jd_member_value(m), json_object_iter_value(it)))
                return 0;
            it = json_object_iter_next((json_t *)b, it);
        }
        return !it && m == end;
    }
    default:
        return 0;
    }
}

/* 0 when jd_parse and jansson agree on text (both refuse, or both accept the same value);
 * else 1 (jd_parse accepts what jansson refuses), 2 (the reverse), 3 (different values). */
static inline int same_parse(jd_doc *d, const char *text, size_t len)
{
    json_t *j = same_load(text, len);
    int ours = jd_parse(d, text, len);
    int rc = 0;
    if (!j)
        rc = ours == 0 ? 1 : 0;
    else if (ours)
        rc = 2;
    else if (!same_value(d->nodes, j) || d->nodes[0].skip != d->n || d->nodes[0].key)
        rc = 3;
    json_decref(j);
    return rc;
}

#endif /* TD_TEST_JSON_DOM_SAME_H */
