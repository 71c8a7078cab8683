/* libFuzzer target: the Protobuf schema type (src/schema/protobuf*.c). The input is a .proto
 * text, then a NUL, then a payload. Whatever the input, nothing reads outside it and nothing
 * leaks; a schema that parses can read itself (every difference with itself is compatible), its
 * canonical form parses again to the same canonical form, and its payload validation (binary
 * and JSON) answers without crashing. The payload is also validated against a fixed schema with
 * every kind of field, so the binary decoder is fuzzed even when the text is not a schema. */
#include <stdlib.h>
#include <string.h>

#include "schema/schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fixed_text[] =
    "syntax = \"proto2\"; package f;\n"
    "message A { optional int32 i = 1; optional sint64 s = 2; optional fixed32 x = 3;\n"
    "  optional double d = 4; optional string t = 5; repeated int64 r = 6 [packed = true];\n"
    "  optional B b = 7; map<string, B> m = 8; repeated group G = 9 { optional bytes y = 1; }\n"
    "  optional E e = 10; oneof o { float fl = 11; sfixed64 sf = 12; }\n"
    "  message B { optional A a = 1; repeated fixed64 q = 2; } enum E { Z = 0; } }\n"
    "message C { optional string u = 1; }\n";

static schema *fixed;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    schema_error err;
    if (!fixed &&
        schema_parse(SCHEMA_PROTOBUF, fixed_text, strlen(fixed_text), NULL, 0, &fixed, &err) != 0)
        abort();
    const uint8_t *nul = memchr(data, 0, size);
    size_t tlen = nul ? (size_t)(nul - data) : size;
    const uint8_t *payload = nul ? nul + 1 : data + size;
    size_t plen = nul ? size - tlen - 1 : 0;

    (void)schema_validate(fixed, payload, plen, &err);
    (void)schema_validate_json(fixed, (const char *)payload, plen, &err);

    schema *s = NULL;
    if (schema_parse(SCHEMA_PROTOBUF, (const char *)data, tlen, NULL, 0, &s, &err) != 0)
        return 0;
    schema_msgs m = {0};
    if (!schema_can_read(s, s, &m))
        abort(); /* a schema always reads its own data */
    schema_msgs_free(&m);
    (void)schema_can_read(s, fixed, &m);
    schema_msgs_free(&m);
    (void)schema_can_read(fixed, s, NULL);
    const char *canon = schema_canonical(s);
    schema *again = NULL;
    if (schema_parse(SCHEMA_PROTOBUF, canon, strlen(canon), NULL, 0, &again, &err) != 0)
        abort(); /* the canonical form is a schema */
    if (strcmp(schema_canonical(again), canon) != 0)
        abort(); /* and its own canonical form */
    const char *a = schema_record_name(s), *b = schema_record_name(again);
    if ((a == NULL) != (b == NULL) || (a && strcmp(a, b)))
        abort();
    schema_free(again);
    (void)schema_validate(s, payload, plen, &err);
    (void)schema_validate_json(s, (const char *)payload, plen, &err);
    schema_free(s);
    return 0;
}
