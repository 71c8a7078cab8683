/*
 * avro.c: the Avro type's operations table (schema_int.h) and the command line's conversions
 * (schema.h). The work is in avro_parse.c, avro_print.c, avro_compat.c, avro_binary.c and
 * avro_json.c; avro_int.h says what each does. docs/schemas.md ("Avro") gives the rules and
 * why libavro is not used for them.
 */
#include <stdlib.h>
#include <string.h>

#include "schema/avro_int.h"

static int a_parse(const char *text, size_t len, const schema_dep *deps, size_t ndeps, void **impl,
                   char **canonical, char **record_name, schema_error *err)
{
    av_schema *s;
    if (av_parse(text, len, deps, ndeps, &s, err))
        return -1;
    char *canon = av_canonical(s);
    char *rn = NULL;
    if (!canon || (s->root->fullname && !(rn = strdup(s->root->fullname)))) {
        free(canon);
        av_schema_free(s);
        schema_set_error(err, "", "memory", "out of memory");
        return -1;
    }
    *impl = s;
    *canonical = canon;
    *record_name = rn;
    return 0;
}

static void a_free(void *impl)
{
    av_schema_free(impl);
}

static bool a_can_read(const void *reader, const void *writer, schema_msgs *msgs)
{
    return av_can_read(reader, writer, msgs);
}

static int a_validate(const void *impl, const uint8_t *p, size_t n, schema_error *err)
{
    return av_validate(impl, p, n, err);
}

static int a_validate_json(const void *impl, const char *json, size_t len, schema_error *err)
{
    uint8_t *out = NULL;
    size_t n = 0;
    int rc = av_from_json(impl, json, len, &out, &n, err);
    free(out);
    return rc;
}

const schema_ops schema_avro_ops = {a_parse, a_free, a_can_read, a_validate, a_validate_json};

int schema_avro_from_json(const schema *s, const char *json, size_t len, uint8_t **out,
                          size_t *out_len, schema_error *err)
{
    if (s->type != SCHEMA_AVRO) {
        schema_set_error(err, "", "type", "not an Avro schema");
        return -1;
    }
    return av_from_json(s->impl, json, len, out, out_len, err);
}

int schema_avro_to_json(const schema *s, const uint8_t *p, size_t n, char **json, schema_error *err)
{
    *json = NULL;
    if (s->type != SCHEMA_AVRO) {
        schema_set_error(err, "", "type", "not an Avro schema");
        return -1;
    }
    return av_to_json(s->impl, p, n, json, err);
}
