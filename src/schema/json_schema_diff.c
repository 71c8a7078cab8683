/* json_schema_diff.c: Confluent's compatibility rules for JSON Schema (in progress). */
#include "schema/json_schema_int.h"

bool js_can_read(const js_schema *reader, const js_schema *writer, schema_msgs *msgs)
{
    (void)reader;
    (void)writer;
    (void)msgs;
    return true;
}
