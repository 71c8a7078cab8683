/* libFuzzer target: W3C traceparent values (base/trace.c). A value that parses formats back to a
 * version 00 traceparent that parses to the same context, and equals the input when the input
 * is version 00; the parser never reads past the input (a heap copy of exactly its length);
 * tracestate checks the same bytes without reading past them. */
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    td_trace_ctx c, again;
    if (td_traceparent_parse(copy, size, &c) == 0) {
        char out[TD_TRACEPARENT_LEN + 1];
        if (td_traceparent_format(&c, out) != TD_TRACEPARENT_LEN ||
            strlen(out) != TD_TRACEPARENT_LEN)
            abort();
        if (td_traceparent_parse(out, TD_TRACEPARENT_LEN, &again) != 0 ||
            memcmp(&again.trace_id, &c.trace_id, 16) || memcmp(&again.span_id, &c.span_id, 8) ||
            again.flags != c.flags)
            abort();
        if (size == TD_TRACEPARENT_LEN && copy[0] == '0' && copy[1] == '0' &&
            memcmp(out, copy, size))
            abort();
        td_trace_ctx child;
        td_trace_new_span(&c, &child);
        if (memcmp(child.trace_id, c.trace_id, 16) || !memcmp(child.span_id, c.span_id, 8))
            abort();
    }
    (void)td_tracestate_valid(copy, size);
    td_header h = {"traceparent", 11, copy, size};
    if (td_trace_find(&h, 1, &c) == 0)
        abort();
    free(copy);
    return 0;
}
