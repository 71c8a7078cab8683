/* libFuzzer target: JSON Schema (schema/json_schema*.c). The input is a schema and an instance
 * separated by the first NUL byte (the instance is empty without one). Whatever the input,
 * parsing either refuses with a message or gives a schema whose canonical form parses again to
 * the same canonical form; validation ends (bounded in depth and steps) with 0 or a message and
 * a JSON pointer; the schema compared with itself is compatible, and compared with the
 * instance read as a schema, the comparison ends. */
#include <stdlib.h>
#include <string.h>

#include "schema/schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static schema *parse(const char *p, size_t n)
{
    schema *s = NULL;
    schema_error err = {0};
    if (schema_parse(SCHEMA_JSON, p, n, NULL, 0, &s, &err)) {
        if (s || !err.message[0])
            abort();
        return NULL;
    }
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    const uint8_t *nul = memchr(data, 0, size);
    size_t slen = nul ? (size_t)(nul - data) : size;
    const char *inst = nul ? (const char *)nul + 1 : "";
    size_t ilen = nul ? size - slen - 1 : 0;

    schema *s = parse(text, slen);
    if (!s)
        return 0;
    const char *canon = schema_canonical(s);
    schema *again = parse(canon, strlen(canon));
    if (!again || strcmp(schema_canonical(again), canon))
        abort();

    schema_error err = {0};
    int rc = schema_validate_json(s, inst, ilen, &err);
    if (rc != 0 && (rc != -1 || !err.rule[0] || (err.path[0] && err.path[0] != '/')))
        abort();
    if (schema_validate(s, (const uint8_t *)inst, ilen, &err) != rc)
        abort();
    (void)schema_json_accepts_string_at(s, "a");

    schema_msgs m = {0};
    if (!schema_can_read(s, again, &m) && !m.count)
        abort();
    schema_msgs_free(&m);
    schema *other = parse(inst, ilen);
    if (other) {
        (void)schema_can_read(s, other, &m);
        schema_msgs_free(&m);
        (void)schema_can_read(other, s, &m);
        schema_msgs_free(&m);
        schema_free(other);
    }
    schema_free(again);
    schema_free(s);
    return 0;
}
