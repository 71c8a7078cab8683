/* libFuzzer target: the OTLP exporter's encoder (broker/otlp.h). The input gives a span its
 * ids (when it is a W3C traceparent) and its text: its name and attribute values, arbitrary
 * bytes, must encode
 * to a request that jansson parses, whose span carries the ids given and the name (as its
 * bytes, when they are UTF-8 without NUL). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/otlp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char hexd[] = "0123456789abcdef";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    otlp_span_rec s = {.kind = OTLP_KIND_PRODUCER, .start_ns = 1, .end_ns = 2};
    /* The ids: the input's, when it is a traceparent (base/trace.c's parser, fuzzed on its own
     * in tests/fuzz/traceparent), else new ones. */
    td_trace_ctx tc;
    if (td_traceparent_parse(data, size, &tc) == 0) {
        memcpy(s.parent_span_id, tc.span_id, 8);
        s.flags = tc.flags;
    } else {
        td_trace_new_root(&tc, TD_TRACE_SAMPLED);
    }
    memcpy(s.trace_id, tc.trace_id, 16);
    td_random_id(s.span_id, 8);
    char *name = malloc(size + 1);
    memcpy(name, data, size);
    name[size] = 0;
    s.name = name;
    size_t half = size / 2;
    s.attrs[0] = (otlp_attr){"a", (const char *)data, half, 0};
    s.attrs[1] = (otlp_attr){name + half, NULL, 0, (int64_t)size};
    s.attrs[2] = (otlp_attr){"c", (const char *)data + half, size - half, 0};
    s.nattrs = 3;
    s.status = size & 1 ? OTLP_STATUS_ERROR : OTLP_STATUS_UNSET;
    s.status_message = name;
    otlp_attr res[] = {{"service.name", (const char *)data, size, 0}};
    td_buf b;
    td_buf_init(&b);
    if (otlp_encode(&b, res, 1, &s, 1) != 0)
        abort();
    json_error_t je;
    json_t *j = json_loadb((const char *)b.p, b.len, JSON_ALLOW_NUL, &je);
    if (!j)
        abort();
    json_t *span = json_array_get(
        json_object_get(
            json_array_get(json_object_get(json_array_get(json_object_get(j, "resourceSpans"), 0),
                                           "scopeSpans"),
                           0),
            "spans"),
        0);
    const char *tid = json_string_value(json_object_get(span, "traceId"));
    if (!tid || strlen(tid) != 32)
        abort();
    for (int i = 0; i < 16; i++)
        if (tid[2 * i] != hexd[s.trace_id[i] >> 4] || tid[2 * i + 1] != hexd[s.trace_id[i] & 15])
            abort();
    const char *nm = json_string_value(json_object_get(span, "name"));
    size_t nl = strlen(name);
    if (!nm || (td_utf8_valid((const uint8_t *)name, nl) && strcmp(nm, name) != 0))
        abort();
    json_decref(j);
    td_buf_free(&b);
    free(name);
    return 0;
}
