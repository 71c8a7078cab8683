/*
 * json_dom.h: a JSON document parsed into one flat array of nodes (json_dom.c), what JSON Schema
 * validation walks on the produce path instead of jansson's values.
 *
 * Why: jansson allocates every value and hashes every key, and for a 1 KiB event that costs
 * about five times the validation itself. Here the nodes of a document are laid out in pre-order
 * in one array (a container is followed by its children, each node knows the size of its
 * subtree), the strings are unescaped into one buffer (NUL-terminated, so that keys serve as C
 * strings), and both buffers are reused from one parse to the next.
 *
 * What it accepts is exactly what jansson's json_loadb accepts with JSON_DECODE_ANY |
 * JSON_ALLOW_NUL (RFC 8259, strict UTF-8, "\u0000" in values but not in keys, nesting at most
 * JD_MAX_DEPTH values deep as jansson's JSON_PARSER_MAX_DEPTH, a number that does not fit a
 * real refused), and the values are the same: integers as long long, except that when one
 * integer of the document does not fit (jansson's "too big" integer, which json_schema.c reads
 * again with JSON_DECODE_INT_AS_REAL) every integer of it is a real; a key given twice keeps the
 * place of its first occurrence and the value of its last. One quirk of jansson's lexer is kept
 * too: a NUL byte right after a number or a literal is skipped. tests/fuzz/json_dom checks both
 * against jansson.
 */
#ifndef TD_SCHEMA_JSON_DOM_H
#define TD_SCHEMA_JSON_DOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JD_MAX_DEPTH 2048

typedef enum jd_type {
    JD_NULL,
    JD_TRUE,
    JD_FALSE,
    JD_INT,
    JD_REAL,
    JD_STR,
    JD_ARR,
    JD_OBJ
} jd_type;

typedef struct jd_node {
    const char *key; /* a member of an object: its name; else NULL */
    union {
        long long i;
        double d;
        const char *s; /* NUL-terminated; may hold NULs ("\u0000"): use len */
    } u;
    uint32_t skip;    /* nodes in this subtree, itself included: the next sibling is this + skip */
    uint32_t len;     /* string: bytes; array: items; object: distinct keys */
    uint32_t keyhash; /* of key */
    uint32_t alias;   /* a member whose key comes again: the offset of its last occurrence */
    uint32_t keylen;  /* of key (a key holds no NUL) */
    uint8_t type;     /* jd_type */
    uint8_t dead;     /* a member whose key came before: skipped (the first one has its value) */
    uint8_t neg_zero; /* the integer was written "-0" (a real -0.0 when integers become reals) */
    uint8_t ascii;    /* a string known to hold only ASCII: its len is its count of characters */
} jd_node;

typedef struct jd_doc {
    jd_node *nodes;
    uint32_t n, cap;
    char *str;
    size_t str_cap, str_len;
    uint32_t *scratch; /* the members of an object, while its duplicate keys are looked for */
    size_t scratch_cap;
    bool ints_as_real;
} jd_doc;

/* Parses text into doc (its buffers reused, grown as needed). 0, or -1 when jansson would
 * refuse the text (or memory ran out). The root is doc->nodes[0]. */
int jd_parse(jd_doc *doc, const char *text, size_t len);

/* Builds doc from a jansson value (strings and keys borrowed from it). 0, or -1 (memory, or
 * nesting deeper than JD_MAX_DEPTH + 8). */
struct json_t;
int jd_from_json(jd_doc *doc, const struct json_t *v);

/* Frees the buffers. */
void jd_doc_free(jd_doc *doc);
/* Frees the buffers if they grew past what a typical document needs, so that one large
 * document does not keep its memory in a thread for ever. */
void jd_doc_trim(jd_doc *doc);

/* The thread's reusable document (NULL when memory ran out). */
jd_doc *jd_doc_tls(void);

uint32_t jd_hash_key(const char *s, size_t n);

static inline const jd_node *jd_next(const jd_node *n)
{
    return n + n->skip;
}

/* The first child of a container (valid only when its len is not 0); siblings by jd_next. */
static inline const jd_node *jd_first(const jd_node *n)
{
    return n + 1;
}

/* An object member's value (the last occurrence of its key). */
static inline const jd_node *jd_member_value(const jd_node *m)
{
    return m->alias ? m + m->alias : m;
}

static inline double jd_number(const jd_node *n)
{
    return n->type == JD_INT ? (double)n->u.i : n->u.d;
}

/* The value of key in object o, or NULL. */
const jd_node *jd_get(const jd_node *o, const char *key);

/* JSON Schema equality (numbers by value, objects regardless of order), as js_equal. */
bool jd_equal(const jd_node *a, const jd_node *b, int depth);
bool jd_equal_json(const jd_node *a, const struct json_t *b, int depth);
/* A hash consistent with jd_equal. */
uint64_t jd_hash(const jd_node *v, int depth);

#endif /* TD_SCHEMA_JSON_DOM_H */
