/* libFuzzer target: the Avro schema type (src/schema/avro*.c) on any input, split at NUL bytes
 * into a schema's text, a second schema's text and a binary datum. Whatever the bytes: nothing
 * reads outside them, nothing leaks; a parsed schema's canonical form parses again to the same
 * canonical form; can_read runs both ways, and a schema can read itself; a datum that
 * validates converts to JSON, a datum that does not fails the conversion too; the JSON of a
 * datum encodes back to a binary datum that validates. */
#include <stdlib.h>
#include <string.h>

#include "schema/schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t *part(const uint8_t **p, const uint8_t *end, size_t *n)
{
    const uint8_t *start = *p;
    const uint8_t *z = memchr(start, 0, (size_t)(end - start));
    *n = (size_t)((z ? z : end) - start);
    *p = z ? z + 1 : end;
    return start;
}

static void datum(const schema *s, const uint8_t *d, size_t dn)
{
    schema_error err;
    int v = schema_validate(s, d, dn, &err);
    char *json = NULL;
    int t = schema_avro_to_json(s, d, dn, &json, &err);
    /* Only the JSON writer's bound on expanded empty items can fail a valid datum. */
    if (v != 0 && t == 0)
        abort();
    if (t != 0) {
        if (json)
            abort();
        return;
    }
    uint8_t *bin = NULL;
    size_t n = 0;
    if (schema_avro_from_json(s, json, strlen(json), &bin, &n, &err) == 0 &&
        schema_validate(s, bin, n, &err) != 0)
        abort();
    free(bin);
    free(json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *p = data, *end = data + size;
    size_t an, bn, dn;
    const uint8_t *a = part(&p, end, &an);
    const uint8_t *b = part(&p, end, &bn);
    const uint8_t *d = p;
    dn = (size_t)(end - p);
    schema_error err;
    schema *sa = NULL, *sb = NULL;
    if (schema_parse(SCHEMA_AVRO, (const char *)a, an, NULL, 0, &sa, &err) == 0) {
        const char *c = schema_canonical(sa);
        schema *again = NULL;
        if (schema_parse(SCHEMA_AVRO, c, strlen(c), NULL, 0, &again, &err) != 0 ||
            strcmp(schema_canonical(again), c) != 0)
            abort();
        if (!schema_can_read(sa, again, NULL))
            abort();
        schema_free(again);
        datum(sa, d, dn);
        datum(sa, b, bn);
    }
    if (schema_parse(SCHEMA_AVRO, (const char *)b, bn, NULL, 0, &sb, &err) == 0) {
        datum(sb, d, dn);
        if (sa) {
            schema_msgs m = {0};
            bool ok = schema_can_read(sa, sb, &m);
            if (ok != (m.count == 0))
                abort();
            schema_msgs_free(&m);
            (void)schema_can_read(sb, sa, NULL);
        }
    }
    schema_free(sa);
    schema_free(sb);
    return 0;
}
