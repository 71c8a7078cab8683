/*
 * schema.h: event schemas (Avro, JSON Schema, Protobuf) as pure functions over text and bytes:
 * parsing, the canonical form that gives a schema its identity, the compatibility of two
 * schemas, the validation of a payload, and the conversions the command line needs. No engine
 * state, no I/O, no locks: the schema registry (broker/registry.h) keeps schemas and decides
 * which pairs to compare; the listeners validate payloads through it. docs/schemas.md describes
 * the rules; each type's file says which library it uses and what it writes by hand, and why.
 *
 * A parsed schema is immutable: once schema_parse returned it, any number of threads may read
 * it at once (validate, compare, print) without locks.
 *
 * Bounds: a schema's text is at most SCHEMA_MAX_TEXT bytes, its nesting (records in records,
 * subschemas, messages) at most SCHEMA_MAX_DEPTH, a payload's nesting at most
 * SCHEMA_MAX_DEPTH; what goes past is refused with a message, never recursed into.
 */
#ifndef TD_SCHEMA_SCHEMA_H
#define TD_SCHEMA_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SCHEMA_MAX_TEXT (8u << 20)
#define SCHEMA_MAX_DEPTH 64

typedef enum schema_type {
    SCHEMA_AVRO = 0,
    SCHEMA_JSON = 1,     /* JSON Schema (drafts 4, 6, 7, 2019-09, 2020-12) */
    SCHEMA_PROTOBUF = 2, /* a .proto file (proto2 or proto3) */
    SCHEMA_NTYPES
} schema_type;

/* "AVRO", "JSON", "PROTOBUF": Confluent's names, as the REST API says them. */
const char *schema_type_name(schema_type t);
/* Parses a type's name (case-sensitive, as Confluent); false if unknown. */
bool schema_type_parse(const char *name, schema_type *out);

/*
 * A schema that the schema refers to, resolved by the registry: `name` is how the schema
 * names it (Avro: the referenced type's full name; JSON Schema: the URL its "$ref"s use;
 * Protobuf: the import path), `text` its text, `type` its type. The registry passes every
 * reference, transitively, referenced ones before those that refer to them.
 */
typedef struct schema_dep {
    const char *name;
    const char *text;
    size_t len;
} schema_dep;

typedef struct schema schema;

/* A message about a schema or a payload: where, which rule, and why. */
typedef struct schema_error {
    /* Where: for a payload, the JSON pointer of the failing part of the instance ("" for the
     * whole value, "/address/zip"), or the Avro/Protobuf field path in the same notation; for
     * a schema, the JSON pointer of its failing part, or "line:column" in a .proto file. */
    char path[256];
    /* The rule: a JSON Schema keyword ("required", "type", "maxLength"), or for Avro and
     * Protobuf a short name ("type", "truncated", "union", "wire-type", "enum"). */
    char rule[48];
    char message[512];
} schema_error;

/*
 * Parses text[0..len) as a schema of type t with its references deps[0..ndeps). 0 and *out,
 * or -1 with err filled (a syntax error, an unknown type, an unresolved reference, a default
 * that does not match its field's type, past a bound). *out is freed with schema_free.
 */
int schema_parse(schema_type t, const char *text, size_t len, const schema_dep *deps, size_t ndeps,
                 schema **out, schema_error *err);
void schema_free(schema *s);

schema_type schema_get_type(const schema *s);

/*
 * The canonical form of the schema, which the registry compares to give the same schema the
 * same ID and to find a schema under a subject (POST /subjects/{s}), and answers in GET
 * requests, as Confluent's canonicalString(): Avro: the schema parsed and printed compactly,
 * with the attributes in the order of the Avro specification and those it does not know kept;
 * JSON Schema: the JSON printed compactly, keys in their order; Protobuf: the file printed in
 * one normalized layout. NUL-terminated, owned by s.
 */
const char *schema_canonical(const schema *s);

/*
 * Whether data written with `writer` can be read with `reader`: Avro by the specification's
 * schema resolution, JSON Schema by Confluent's rules for it, Protobuf by field numbers and wire
 * types. Both must be of the same type (else false with one message). Each reason they are
 * not appends one line to msgs (a '\n'-separated list in Confluent's wording, for
 * `?verbose=true`), if msgs is not NULL; returns true when compatible.
 */
typedef struct schema_msgs {
    char *text; /* malloc'd, NUL-terminated, '\n' between messages; NULL when empty */
    size_t len, count;
} schema_msgs;
bool schema_can_read(const schema *reader, const schema *writer, schema_msgs *msgs);
void schema_msgs_add(schema_msgs *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void schema_msgs_free(schema_msgs *m);

/*
 * Validates one payload against s, without Confluent's wire header (the caller strips the
 * magic byte and the schema id; for Protobuf, `p` starts at the message indexes):
 *   Avro: p is the binary encoding of one datum of the schema, read to its last byte;
 *   JSON Schema: p is JSON text, validated as the schema says;
 *   Protobuf: p is the message indexes then the message's binary encoding, every field's wire
 *   type matching its declaration (unknown fields are allowed, as protobuf allows them).
 * 0 when valid; -1 with err (the JSON pointer of the first failing part and the rule).
 */
int schema_validate(const schema *s, const uint8_t *p, size_t n, schema_error *err);

/*
 * The same for a JSON value given as text, for each type: JSON Schema validates it; Avro and
 * Protobuf check that it could be encoded (the JSON encoding of the datum: the command line's
 * `produce --schema`). 0, or -1 with err.
 */
int schema_validate_json(const schema *s, const char *json, size_t len, schema_error *err);

/*
 * Avro only (the command line): encodes a JSON value (Avro's JSON encoding, with plain values
 * accepted for unions where only one branch fits) as the schema's binary encoding, appending to
 * *out (malloc'd, grown); and decodes a binary datum into JSON text. 0, or -1 with err.
 */
int schema_avro_from_json(const schema *s, const char *json, size_t len, uint8_t **out,
                          size_t *out_len, schema_error *err);
int schema_avro_to_json(const schema *s, const uint8_t *p, size_t n, char **json,
                        schema_error *err);

/*
 * Names the schema defines that the subject name strategies use: Avro: the full name of a
 * record (or enum, fixed) at its top; JSON Schema: its "title"; Protobuf: the full name of
 * its first message. NULL if it has none. Owned by s.
 */
const char *schema_record_name(const schema *s);

/*
 * JSON Schema only, for the listeners that already hold the payload parsed (the Redis XADD
 * check builds a jansson value of the field map): validates v as schema_validate_json does the
 * text. 0, or -1 with err (also when s is not a JSON Schema). v is only read.
 */
struct json_t;
int schema_json_validate_value(const schema *s, const struct json_t *v, schema_error *err);

/*
 * JSON Schema only: whether the property `property` of the top-level object may be a string
 * (its subschema, found through "properties", "patternProperties", "additionalProperties",
 * "$ref" and "allOf", accepts some string). The Redis field-map rule parses a field's value as
 * JSON where this is false, and takes it as a JSON string where it is true. True when the
 * schema says nothing of the property, or s is not a JSON Schema.
 */
bool schema_json_accepts_string_at(const schema *s, const char *property);

/* Confluent's wire format: magic byte 0, then the schema ID as a big-endian int32. */
#define SCHEMA_WIRE_MAGIC 0
#define SCHEMA_WIRE_HEADER 5
/* Reads the header of p[0..n): 0 and *id, or -1 (too short, or another magic byte). */
int schema_wire_header(const uint8_t *p, size_t n, int32_t *id);

#endif /* TD_SCHEMA_SCHEMA_H */
