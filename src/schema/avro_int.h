/*
 * avro_int.h: what the Avro files share. A parsed Avro schema is a graph of av_node: named
 * types (record, enum, fixed) are single nodes that every reference points to, so a recursive
 * record is a cycle in the graph. Every node is owned by the av_schema's node list; the JSON
 * values kept from the schema text (defaults, unknown properties) are jansson values whose
 * references the schema holds. After parsing, nothing is written: any number of threads may
 * read a schema at once (jansson's getters do not touch reference counts).
 *
 * Files: avro.c (the ops table), avro_parse.c (schema JSON -> graph, defaults), avro_print.c
 * (the canonical form, and a JSON writer shared with avro_binary.c), avro_compat.c (schema
 * resolution), avro_binary.c (binary datum validation and binary -> JSON), avro_json.c (JSON
 * datum -> binary).
 */
#ifndef TD_SCHEMA_AVRO_INT_H
#define TD_SCHEMA_AVRO_INT_H

#include <jansson.h>

#include "schema/schema_int.h"

typedef enum av_kind {
    AV_NULL,
    AV_BOOLEAN,
    AV_INT,
    AV_LONG,
    AV_FLOAT,
    AV_DOUBLE,
    AV_BYTES,
    AV_STRING,
    AV_RECORD,
    AV_ENUM,
    AV_ARRAY,
    AV_MAP,
    AV_UNION,
    AV_FIXED,
    AV_NKINDS
} av_kind;

typedef enum av_order { AV_ASCENDING, AV_DESCENDING, AV_IGNORE } av_order;

typedef struct av_node av_node;

/* A hash index of strings that live in the caller's array: slots hold an index + 1 (0 is empty)
 * and key(ctx, i) gives the string of index i. Lookups of names, fields and symbols cost O(1)
 * rather than a scan, so that a schema of 100,000 fields parses and compares in linear time. */
typedef const char *(*av_key_fn)(const void *ctx, size_t i);
typedef struct av_strtab {
    size_t *slot;
    size_t mask, n;
} av_strtab;
uint64_t av_hash(const char *s);
/* The index of k, or SIZE_MAX. */
size_t av_strtab_find(const av_strtab *t, const char *k, av_key_fn key, const void *ctx);
/* Adds index i (whose key is k); grows the table. 0, or -1 when out of memory. */
int av_strtab_add(av_strtab *t, const char *k, size_t i, av_key_fn key, const void *ctx);
void av_strtab_free(av_strtab *t);

typedef struct av_field {
    char *name;
    av_node *type;
    char *doc;
    json_t *def; /* the default as written, or NULL when the field has none */
    av_order order;
    char **aliases;
    size_t naliases;
    json_t *props; /* properties the specification does not name, in their order; or NULL */
} av_field;

struct av_node {
    av_kind kind;
    size_t id;         /* its index in the schema's node list */
    bool is_error;     /* a record written as "error" */
    bool always_empty; /* every datum encodes to zero bytes (null, fixed 0, such records) */
    char *name;        /* named types: the short name */
    char *space;       /* named types: the namespace, NULL for none */
    char *fullname;    /* named types: space.name, or name */
    char *doc;
    char **aliases; /* named types: full names */
    size_t naliases;
    json_t *props; /* unknown properties (and logicalType and its parameters), or NULL */
    av_field *fields;
    size_t nfields;
    av_strtab field_ix; /* records: fields by name */
    char **symbols;
    size_t nsymbols;
    av_strtab symbol_ix; /* enums: symbols */
    char *enum_default;
    size_t size;    /* fixed */
    av_node *items; /* array items, map values */
    av_node **branches;
    size_t nbranches;
    bool from_dep; /* defined at the top of a reference: printed by name */
};

typedef struct av_schema {
    av_node **nodes; /* every node, owned */
    size_t nnodes, cap;
    av_node **named; /* the name table: named nodes, references' first */
    size_t nnamed, named_cap;
    av_strtab name_ix; /* named, by full name */
    av_node *root;
} av_schema;

extern const char *const av_kind_names[AV_NKINDS]; /* "null", "int", ... */
extern const char *const av_kind_upper[AV_NKINDS]; /* "NULL", "INT", ... (Java's Type) */

/* avro_parse.c */
int av_parse(const char *text, size_t len, const schema_dep *deps, size_t ndeps, av_schema **out,
             schema_error *err);
void av_schema_free(av_schema *s);
/* Whether v is a valid JSON value for a datum of n (defaults, and the JSON encoding's values
 * for one union branch, unwrapped). depth bounds the recursion. */
bool av_json_fits(const av_node *n, const json_t *v, int depth);

/* Keys of the indexes: a record's field names, an enum's symbols, the name table's full names. */
const char *av_field_key(const void *node, size_t i);
const char *av_symbol_key(const void *node, size_t i);
/* The index of a symbol in an enum, or SIZE_MAX. */
size_t av_symbol_index(const av_node *n, const char *symbol);
/* The field of that name in a record, or NULL. */
const av_field *av_field_named(const av_node *n, const char *name);

/* avro_print.c: a growable text buffer; on allocation failure `failed` is set and writes stop. */
typedef struct av_buf {
    char *p;
    size_t n, cap;
    bool failed;
} av_buf;
void av_buf_put(av_buf *b, const void *p, size_t n);
void av_buf_puts(av_buf *b, const char *s);
void av_buf_putc(av_buf *b, char c);
/* A JSON string of p[0..n) (UTF-8), escaped as Jackson does. */
void av_buf_json_str(av_buf *b, const char *p, size_t n);
/* A double as Java's Double.toString prints it (Jackson's DoubleNode). */
void av_buf_java_double(av_buf *b, double d);
/* A JSON value, compactly, as Jackson prints a JsonNode. */
void av_buf_json(av_buf *b, const json_t *v);
/* The canonical form (Confluent's canonicalString): malloc'd, or NULL on allocation failure. */
char *av_canonical(const av_schema *s);

/* avro_compat.c */
bool av_can_read(const av_schema *reader, const av_schema *writer, schema_msgs *msgs);

/* avro_binary.c */
int av_validate(const av_schema *s, const uint8_t *p, size_t n, schema_error *err);
int av_to_json(const av_schema *s, const uint8_t *p, size_t n, char **json, schema_error *err);

/* avro_json.c */
int av_from_json(const av_schema *s, const char *json, size_t len, uint8_t **out, size_t *out_len,
                 schema_error *err);

/* Prepends "/seg" (escaped as a JSON pointer token) to err->path: the decoders build the path
 * of a failure while they return from it, so the success path builds nothing. */
void av_err_prepend(schema_error *err, const char *seg, size_t n);
void av_err_prepend_index(schema_error *err, uint64_t i);

#endif /* TD_SCHEMA_AVRO_INT_H */
