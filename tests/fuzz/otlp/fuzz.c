/* libFuzzer target: the OTLP exporter's pure parts (broker/otlp.h). The input is read as a W3C
 * traceparent (accepted only in its exact form, and then written back the same, lower-case
 * hex) and as the text of a span: its name and attribute values, arbitrary bytes, must encode
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
    if (otlp_traceparent_parse(data, size, s.trace_id, s.parent_span_id, &s.flags) == 0) {
        char again[56];
        snprintf(again, sizeof(again), "%.2s-", (const char *)data);
        for (int i = 0; i < 16; i++) {
            again[3 + 2 * i] = hexd[s.trace_id[i] >> 4];
            again[4 + 2 * i] = hexd[s.trace_id[i] & 15];
        }
        again[35] = '-';
        for (int i = 0; i < 8; i++) {
            again[36 + 2 * i] = hexd[s.parent_span_id[i] >> 4];
            again[37 + 2 * i] = hexd[s.parent_span_id[i] & 15];
        }
        again[52] = '-';
        again[53] = hexd[s.flags >> 4];
        again[54] = hexd[s.flags & 15];
        if (memcmp(again, data, 55) != 0)
            abort();
    } else {
        otlp_random_id(s.trace_id, 16);
    }
    otlp_random_id(s.span_id, 8);
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
