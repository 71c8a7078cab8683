/*
 * json_schema_int.h: what the JSON Schema files share (json_schema.c: the operations table and
 * the documents; json_schema_compile.c: the validator tree; json_schema_validate.c: validation;
 * json_schema_format.c: formats and value equality; json_schema_diff.c: Confluent's
 * compatibility rules).
 *
 * A schema is compiled once, at parse, into a tree of js_node (a graph once "$ref"s are
 * resolved: a recursive schema points back at an ancestor). Each node keeps its source object
 * (borrowed from the parsed documents, which live as long as the schema) for what validation
 * does not need but the comparison does (title, default, the enum's values).
 */
#ifndef TD_SCHEMA_JSON_SCHEMA_INT_H
#define TD_SCHEMA_JSON_SCHEMA_INT_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <jansson.h>
#include <pcre2.h>

#include "schema/schema_int.h"

typedef enum js_draft {
    JS_D4 = 4,
    JS_D6 = 6,
    JS_D7 = 7,
    JS_D2019 = 2019,
    JS_D2020 = 2020
} js_draft;

/* Instance types, as a mask ("type": ["string", "null"]). JT_INT is inside JT_NUM. */
enum {
    JT_NULL = 1,
    JT_BOOL = 2,
    JT_INT = 4,
    JT_NUM = 8,
    JT_STR = 16,
    JT_ARR = 32,
    JT_OBJ = 64,
    JT_ALL = 127
};

/* Formats that are checked; the others are annotations. */
typedef enum js_format {
    JF_NONE = 0,
    JF_DATE_TIME,
    JF_DATE,
    JF_EMAIL,
    JF_IPV4,
    JF_IPV6,
    JF_UUID
} js_format;

typedef struct js_node js_node;

typedef struct js_str {
    const char *s; /* borrowed from the document */
    size_t n;
} js_str;

typedef struct js_prop {
    const char *name; /* borrowed from the document */
    js_node *node;
    uint32_t hash; /* jd_hash_key of name: what a document's member keys are hashed with */
    uint32_t len;  /* of name */
} js_prop;

typedef struct js_pprop {
    pcre2_code *re;
    const char *source;
    js_node *node;
} js_pprop;

typedef struct js_dep {
    const char *name;
    const char **required; /* dependencies: ["a", "b"] / dependentRequired */
    size_t nrequired;
    js_node *schema; /* dependencies: {...} / dependentSchemas */
} js_dep;

/* Up to this many properties, validation marks which ones an object has in a bitmap, and
 * checks "required" with it instead of looking each name up. */
#define JS_SEEN_MAX 256

/* Presence bits of the numeric and counted keywords. */
enum {
    JK_MINIMUM = 1 << 0,
    JK_MAXIMUM = 1 << 1,
    JK_EXMIN = 1 << 2,
    JK_EXMAX = 1 << 3,
    JK_MULTIPLE = 1 << 4,
    JK_ENUM = 1 << 5,
    JK_CONST = 1 << 6,
    JK_UNIQUE = 1 << 7,
    JK_TYPE = 1 << 8,
    JK_ADDPROPS = 1 << 9, /* "additionalProperties" present (boolean or schema) */
    JK_ADDITEMS = 1 << 10,
    JK_REF = 1 << 11
};

/* What validation has to look at in a node (js_node.work), so that it reads only the node's
 * first cache line for the keywords a node does not have. */
enum {
    JW_APPLY = 1 << 0, /* allOf, anyOf, oneOf, not, if */
    JW_ENUM = 1 << 1,  /* enum, const */
    JW_STR = 1 << 2,   /* minLength, maxLength, pattern, format */
    JW_NUM = 1 << 3,   /* minimum, maximum, exclusive*, multipleOf */
    JW_OBJ = 1 << 4,   /* the keywords of objects */
    JW_ARR = 1 << 5    /* the keywords of arrays */
};

struct js_node {
    json_t *src;         /* the schema's JSON (object or boolean), borrowed */
    signed char boolean; /* -1: an object; 0: false; 1: true */
    unsigned char draft; /* 4, 6, 7, 19 (2019-09), 20 (2020-12) */
    unsigned char work;  /* JW_*, set once the tree is compiled */
    unsigned types;      /* mask of "type"; JT_ALL when absent */
    unsigned has;        /* JK_* */
    const char *ref;     /* the "$ref" text, borrowed */
    js_node *ref_node;
    /* numbers */
    double minimum, maximum, exmin, exmax, multiple;
    /* strings */
    long long min_len, max_len; /* -1 when absent */
    pcre2_code *pattern;
    const char *pattern_src;
    js_format format;
    /* enum / const */
    json_t *enum_values; /* array, borrowed */
    /* When every value of the enum is a string (the common case): them, compared without a
     * call into jansson per value (NULL otherwise). */
    js_str *enum_strs;
    json_t *const_value;
    /* objects */
    js_prop *props; /* sorted by name */
    size_t nprops;
    uint32_t *prop_table;   /* open addressing on js_prop.hash: an index into props + 1, 0 empty */
    uint32_t prop_mask;     /* the table's size - 1 */
    int32_t *required_prop; /* per required name, its index in props, or -1 */
    bool required_in_props; /* every required name is a property, and nprops <= JS_SEEN_MAX */
    js_pprop *pprops;
    size_t npprops;
    js_node *additional; /* NULL when absent (or true) */
    const char **required;
    size_t nrequired;
    js_node *property_names;
    long long min_props, max_props;
    js_dep *deps;
    size_t ndeps;
    /* arrays */
    js_node *items; /* the schema of the items past the tuple (or of all) */
    js_node **tuple;
    size_t ntuple;
    js_node *contains;
    js_node *additional_items; /* "additionalItems" however "items" is written (the comparison) */
    long long min_items, max_items, min_contains, max_contains;
    /* applicators */
    js_node **all_of, **any_of, **one_of;
    size_t nall, nany, none;
    js_node *not_, *if_, *then_, *else_;
    /* The list of all nodes, for freeing. */
    js_node *next_alloc;
};

typedef struct js_schema {
    json_t *root_doc;
    json_t **dep_docs;
    size_t ndeps;
    js_node *root;
    js_node *nodes; /* every node, through next_alloc */
    js_draft draft;
} js_schema;

/* json_schema_compile.c: builds the tree of the documents (the root first, then deps, each
 * with its name). 0, or -1 with err (the schema's JSON pointer in err->path). */
int js_compile(js_schema *js, const schema_dep *deps, size_t ndeps, schema_error *err);
void js_free_nodes(js_schema *js);
js_draft js_draft_of(const json_t *doc);

/* json_schema_validate.c: v is a document of json_dom.h. */
struct jd_node;
/* The index of the property named key (hashed by jd_hash_key) among n's, or -1. */
int32_t js_prop_index(const js_node *n, const char *key, size_t keylen, uint32_t hash);
int js_validate_value(const js_schema *js, const struct jd_node *v, schema_error *err);

/* json_schema_format.c */
bool js_format_ok(js_format f, const char *s, size_t n);
js_format js_format_parse(const char *name);
/* JSON Schema equality: numbers by value (1 == 1.0), objects regardless of key order. */
bool js_equal(const json_t *a, const json_t *b, int depth);
/* A hash consistent with js_equal. */
uint64_t js_hash(const json_t *v, int depth);
/* Unicode code points of UTF-8 text (jansson's strings are valid UTF-8). */
size_t js_utf8_len(const char *s, size_t n);
/* Whether the string matches (unanchored, as ECMA-262's test()); -1 when the match limit was
 * reached (the caller reports it as a failure of the pattern). */
int js_regex_match(const pcre2_code *re, const char *s, size_t n);
pcre2_code *js_regex_compile(const char *src, char *why, size_t whylen);

/* json_schema_diff.c: Confluent's rules; writer is the original, reader the update. */
bool js_can_read(const js_schema *reader, const js_schema *writer, schema_msgs *msgs);

#endif /* TD_SCHEMA_JSON_SCHEMA_INT_H */
