/*
 * schema_int.h: what the files of schema/ share: each schema type is a table of operations
 * (schema.c dispatches to it), implemented in its own files (avro*.c, json_schema*.c,
 * protobuf*.c).
 */
#ifndef TD_SCHEMA_SCHEMA_INT_H
#define TD_SCHEMA_SCHEMA_INT_H

#include "schema/schema.h"

typedef struct schema_ops {
    /* Parses text with its references into the type's own representation (*impl), its
     * canonical form (*canonical, malloc'd) and its record name (*record_name, malloc'd or
     * NULL). 0, or -1 with err. */
    int (*parse)(const char *text, size_t len, const schema_dep *deps, size_t ndeps, void **impl,
                 char **canonical, char **record_name, schema_error *err);
    void (*free)(void *impl);
    bool (*can_read)(const void *reader, const void *writer, schema_msgs *msgs);
    int (*validate)(const void *impl, const uint8_t *p, size_t n, schema_error *err);
    int (*validate_json)(const void *impl, const char *json, size_t len, schema_error *err);
} schema_ops;

extern const schema_ops schema_avro_ops;
extern const schema_ops schema_json_ops;
extern const schema_ops schema_protobuf_ops;

struct schema {
    schema_type type;
    const schema_ops *ops;
    void *impl;
    char *canonical;
    char *record_name;
};

/* Fills err (any of its arguments may be NULL). */
void schema_set_error(schema_error *err, const char *path, const char *rule, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif /* TD_SCHEMA_SCHEMA_INT_H */
