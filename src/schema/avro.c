/*
 * avro.c: PLACEHOLDER until the module lands: refuses every schema.
 */
#include <stdlib.h>

#include "schema/schema_int.h"

static int ph_parse(const char *text, size_t len, const schema_dep *deps, size_t ndeps,
                    void **impl, char **canonical, char **record_name, schema_error *err)
{
    (void)text;
    (void)len;
    (void)deps;
    (void)ndeps;
    (void)impl;
    (void)canonical;
    (void)record_name;
    schema_set_error(err, "", "type", "this schema type is not supported yet");
    return -1;
}

static void ph_free(void *impl)
{
    (void)impl;
}

static bool ph_can_read(const void *reader, const void *writer, schema_msgs *msgs)
{
    (void)reader;
    (void)writer;
    (void)msgs;
    return false;
}

static int ph_validate(const void *impl, const uint8_t *p, size_t n, schema_error *err)
{
    (void)impl;
    (void)p;
    (void)n;
    schema_set_error(err, "", "type", "not supported yet");
    return -1;
}

static int ph_validate_json(const void *impl, const char *json, size_t len, schema_error *err)
{
    (void)impl;
    (void)json;
    (void)len;
    schema_set_error(err, "", "type", "not supported yet");
    return -1;
}

const schema_ops schema_avro_ops = {ph_parse, ph_free, ph_can_read, ph_validate,
                                   ph_validate_json};

int schema_avro_from_json(const schema *s, const char *json, size_t len, uint8_t **out,
                          size_t *out_len, schema_error *err)
{
    (void)s;
    (void)json;
    (void)len;
    (void)out;
    (void)out_len;
    schema_set_error(err, "", "type", "not supported yet");
    return -1;
}

int schema_avro_to_json(const schema *s, const uint8_t *p, size_t n, char **json,
                        schema_error *err)
{
    (void)s;
    (void)p;
    (void)n;
    (void)json;
    schema_set_error(err, "", "type", "not supported yet");
    return -1;
}
