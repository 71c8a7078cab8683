/*
 * json_schema.c: JSON Schema. PLACEHOLDER until the JSON Schema module lands: parses and
 * prints the canonical form only.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "schema/schema_int.h"

static int js_parse(const char *text, size_t len, const schema_dep *deps, size_t ndeps,
                    void **impl, char **canonical, char **record_name, schema_error *err)
{
    (void)deps;
    (void)ndeps;
    json_error_t je;
    json_t *j = json_loadb(text, len, JSON_DECODE_ANY, &je);
    if (!j || (!json_is_object(j) && !json_is_boolean(j))) {
        schema_set_error(err, "", "syntax", "Invalid schema: %s", j ? "not an object" : je.text);
        json_decref(j);
        return -1;
    }
    *canonical = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    json_t *title = json_is_object(j) ? json_object_get(j, "title") : NULL;
    *record_name = json_is_string(title) ? strdup(json_string_value(title)) : NULL;
    *impl = j;
    return 0;
}

static void js_free(void *impl)
{
    json_decref(impl);
}

static bool js_can_read(const void *reader, const void *writer, schema_msgs *msgs)
{
    (void)reader;
    (void)writer;
    (void)msgs;
    return true;
}

static int js_validate_json(const void *impl, const char *json, size_t len, schema_error *err)
{
    (void)impl;
    json_error_t je;
    json_t *j = json_loadb(json, len, JSON_DECODE_ANY, &je);
    if (!j) {
        schema_set_error(err, "", "syntax", "not JSON: %s", je.text);
        return -1;
    }
    json_decref(j);
    return 0;
}

static int js_validate(const void *impl, const uint8_t *p, size_t n, schema_error *err)
{
    return js_validate_json(impl, (const char *)p, n, err);
}

const schema_ops schema_json_ops = {js_parse, js_free, js_can_read, js_validate,
                                    js_validate_json};
