/*
 * protobuf_int.h: what the Protobuf module's files share (protobuf*.c). The module is written by
 * hand because Debian has no C library that reads .proto text: protobuf-c only runs code that
 * protoc-c generated, and libprotobuf, which has a .proto parser, is C++.
 *
 * The pipeline: protobuf_lex.c cuts the text into tokens (and prints the canonical form from
 * them); protobuf_parse.c builds the model below from the tokens of one file; protobuf.c parses
 * the imported files and the well-known types, resolves type names, checks the rules that need
 * them and is the ops table; protobuf_compat.c compares two schemas as Confluent's
 * io.confluent.kafka.schemaregistry.protobuf.diff package does; protobuf_wire.c validates a
 * binary payload and protobuf_json.c a JSON one.
 *
 * The model is immutable once parsed: validation only reads it, so that any number of threads
 * may validate against one schema.
 */
#ifndef TD_SCHEMA_PROTOBUF_INT_H
#define TD_SCHEMA_PROTOBUF_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "schema/schema_int.h"

/* Scalar types, numbered as descriptor.proto's FieldDescriptorProto.Type (so 10 is a group,
 * 11 a message, 14 an enum); PB_T_NAMED is a type name not resolved yet. */
enum {
    PB_T_NONE = 0,
    PB_T_DOUBLE = 1,
    PB_T_FLOAT = 2,
    PB_T_INT64 = 3,
    PB_T_UINT64 = 4,
    PB_T_INT32 = 5,
    PB_T_FIXED64 = 6,
    PB_T_FIXED32 = 7,
    PB_T_BOOL = 8,
    PB_T_STRING = 9,
    PB_T_GROUP = 10,
    PB_T_MESSAGE = 11,
    PB_T_BYTES = 12,
    PB_T_UINT32 = 13,
    PB_T_ENUM = 14,
    PB_T_SFIXED32 = 15,
    PB_T_SFIXED64 = 16,
    PB_T_SINT32 = 17,
    PB_T_SINT64 = 18,
    PB_T_NAMED = 19,
};

enum { PB_L_NONE = 0, PB_L_OPTIONAL, PB_L_REQUIRED, PB_L_REPEATED };

#define PB_MAX_FIELD 536870911 /* 2^29 - 1 */

/* ---- tokens (protobuf_lex.c) ---- */
enum { PB_TOK_EOF = 0, PB_TOK_IDENT, PB_TOK_INT, PB_TOK_FLOAT, PB_TOK_STRING, PB_TOK_SYM };

typedef struct pb_tok {
    uint8_t kind;
    uint32_t off, len; /* the token's bytes in the text (a string with its quotes) */
    uint32_t line, col;
} pb_tok;

typedef struct pb_toks {
    pb_tok *v;
    size_t n, cap;
} pb_toks;

/* Cuts text into tokens, skipping whitespace and comments; the list ends with an EOF token.
 * 0, or -1 with err (path "line:column"). */
int pb_lex(const char *text, size_t len, pb_toks *out, schema_error *err);
/* Decodes a string token's escapes into out (malloc'd, NUL-terminated, *n bytes without it).
 * The lexer checked the escapes already, so only allocation fails (-1). */
int pb_str_decode(const char *text, const pb_tok *t, char **out, size_t *n);
/* The canonical form: the tokens printed one statement a line, indented by two spaces per
 * block, comments dropped, strings re-escaped one way. malloc'd, or NULL (out of memory). */
char *pb_canonical(const char *text, const pb_toks *toks);

/* ---- the model ---- */
struct pb_msg;
struct pb_enum;

typedef struct pb_field {
    char *name, *json_name;
    char *type_name;    /* as written (a named type, or a map's value type), else NULL */
    char *default_name; /* the default of a named (enum) type: a value's name, else NULL */
    int32_t number;
    uint8_t label, type; /* PB_L_*, PB_T_* (a map's value type for a map) */
    uint8_t key_type;    /* a map's key type, else PB_T_NONE */
    bool is_map, packed, has_default, explicit_json_name;
    int oneof;          /* index in the message's oneofs, or -1 */
    int req_index;      /* a required field's ordinal among its message's, else -1 */
    struct pb_msg *msg; /* resolved message (or group) type, also a map's value */
    struct pb_enum *en; /* resolved enum type */
    uint32_t line, col;
} pb_field;

typedef struct pb_range {
    int32_t lo, hi; /* inclusive */
} pb_range;

typedef struct pb_enum {
    char *name, *full;
    char **names;
    int32_t *numbers;
    size_t n;
    pb_range *reserved;
    size_t nreserved;
    char **reserved_names;
    size_t nreserved_names;
    bool allow_alias, closed; /* closed: declared in a proto2 file */
    uint32_t line, col;
} pb_enum;

typedef struct pb_msg {
    char *name, *full;
    struct pb_msg *parent;
    struct pb_file *file;
    pb_field *fields; /* in source order, oneof members included */
    size_t nfields;
    pb_field **by_number; /* the same, sorted by number, for validation */
    char **oneofs;
    size_t noneofs;
    struct pb_msg **msgs; /* nested messages (groups' bodies included) */
    size_t nmsgs;
    pb_enum **enums;
    size_t nenums;
    pb_range *reserved, *extensions;
    size_t nreserved, nextensions;
    char **reserved_names;
    size_t nreserved_names;
    size_t nrequired; /* required fields (proto2) */
    bool is_group;    /* the body of a proto2 group (not counted in Confluent's message indexes) */
    uint32_t line, col;
} pb_msg;

/* A field of an extend block, or an rpc: a type name to resolve in a scope. */
typedef struct pb_ref {
    char *type_name;
    pb_msg *scope; /* NULL: the file's package */
    uint32_t line, col;
    bool must_be_message;
    /* An extendee: its fields are ext_fields[first_field, first_field + nfields). */
    bool extendee;
    size_t first_field, nfields;
} pb_ref;

typedef struct pb_file {
    char *path;    /* the import path ("" for the schema itself) */
    char *package; /* "" when none */
    int syntax;    /* 2 or 3 */
    char **imports;
    size_t nimports;
    pb_msg **msgs; /* top-level */
    size_t nmsgs;
    pb_enum **enums;
    size_t nenums;
    pb_field *ext_fields; /* fields of extend blocks (checked, resolved, not used after) */
    size_t next_fields;
    pb_ref *refs; /* extendees and rpc types to resolve */
    size_t nrefs;
} pb_file;

/* Parses one file's tokens into *out (malloc'd, freed with pb_file_free). -1 with err. */
int pb_parse_file(const char *text, const pb_toks *toks, pb_file **out, schema_error *err);
void pb_file_free(pb_file *f);

/* The parsed schema: its file (files[0]) and the files it imports, transitively. */
typedef struct pb_schema {
    pb_file **files;
    size_t nfiles;
} pb_schema;

static inline pb_file *pb_main(const pb_schema *s)
{
    return s->files[0];
}

/* A schema given as a base64-encoded FileDescriptorProto (as Confluent's Python client sends
 * it), printed as .proto text into *out (malloc'd): 0; 1 when text is not base64 (it is .proto
 * text); -1 with err when it is base64 but not a descriptor that could be read. */
int pb_descriptor_text(const char *text, size_t len, char **out, size_t *out_len,
                       schema_error *err);

/* The built-in text of a well-known type's file ("google/protobuf/timestamp.proto"), or NULL. */
const char *pb_wkt_text(const char *path);

bool pb_can_read(const void *reader, const void *writer, schema_msgs *msgs);
int pb_validate(const void *impl, const uint8_t *p, size_t n, schema_error *err);
int pb_validate_json(const void *impl, const char *json, size_t len, schema_error *err);

/* Small shared helpers (protobuf_parse.c). */
char *pb_strndup(const char *s, size_t n);
bool pb_type_is_scalar_numeric(int type);
/* The wire type a scalar type is written with (0 varint, 1 64-bit, 2 length, 5 32-bit). */
int pb_wire_type(int type);
const char *pb_type_name(int type);

#endif /* TD_SCHEMA_PROTOBUF_INT_H */
