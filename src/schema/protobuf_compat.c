#include "schema/protobuf_int.h"
bool pb_can_read(const void *reader, const void *writer, schema_msgs *msgs)
{
    (void)reader; (void)writer; (void)msgs;
    return true;
}
