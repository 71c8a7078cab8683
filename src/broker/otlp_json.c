/*
 * otlp_json.c: the pure half of the OTLP exporter (otlp.h): its settings, the encoder of
 * ExportTraceServiceRequest in OTLP's JSON mapping, the reader of W3C traceparent values, and
 * random ids.
 *
 * The JSON mapping (OTLP's "JSON Protobuf Encoding"): field names in lowerCamelCase, trace and
 * span ids as lower-case hex strings (not base64), 64-bit integers (times, intValue) as
 * decimal strings, enums (kind, status code) as integers, absent fields omitted.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/otlp.h"
#include "tidings.h"

/* ---------------------------------------------------------------------------------------------
 * Settings
 */
const char *const otlp_config_keys[] = {"otlp.endpoint",
                                        "otlp.headers",
                                        "otlp.service.name",
                                        "otlp.resource.attributes",
                                        "otlp.max.queue.spans",
                                        "otlp.batch.spans",
                                        "otlp.interval.ms",
                                        "otlp.timeout.ms",
                                        "otlp.retries",
                                        "otlp.shutdown.timeout.ms",
                                        NULL};

void otlp_config_defaults(otlp_config *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->service_name, sizeof(c->service_name), "tidings");
    c->max_queue_spans = 2048;
    c->batch_spans = 512;
    c->interval_ms = 1000;
    c->timeout_ms = 10000;
    c->retries = 3;
    c->shutdown_timeout_ms = 5000;
}

/* A "k=v,k2=v2" list: every item has a non-empty key before '='. */
static bool pairs_ok(const char *v)
{
    while (*v) {
        const char *end = strchr(v, ',');
        size_t n = end ? (size_t)(end - v) : strlen(v);
        const char *eq = memchr(v, '=', n);
        if (n > 0 && (!eq || eq == v))
            return false;
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
                return false; /* no CR/LF into request headers */
        v += n + (end != NULL);
    }
    return true;
}

static const struct {
    const char *name;
    int64_t lo, hi;
    size_t off;
} int_keys[] = {
    {"otlp.max.queue.spans", 1, 1000000, offsetof(otlp_config, max_queue_spans)},
    {"otlp.batch.spans", 1, 10000, offsetof(otlp_config, batch_spans)},
    {"otlp.interval.ms", 1, 3600000, offsetof(otlp_config, interval_ms)},
    {"otlp.timeout.ms", 1, 600000, offsetof(otlp_config, timeout_ms)},
    {"otlp.retries", 0, 100, offsetof(otlp_config, retries)},
    {"otlp.shutdown.timeout.ms", 0, 600000, offsetof(otlp_config, shutdown_timeout_ms)},
};

int otlp_config_set(otlp_config *c, const char *key, const char *value)
{
    struct {
        const char *name;
        char *dst;
        size_t cap;
        bool pairs;
    } strs[] = {{"otlp.endpoint", c->endpoint, sizeof(c->endpoint), false},
                {"otlp.headers", c->headers, sizeof(c->headers), true},
                {"otlp.service.name", c->service_name, sizeof(c->service_name), false},
                {"otlp.resource.attributes", c->resource_attrs, sizeof(c->resource_attrs), true}};
    for (size_t i = 0; i < TD_ARRAY_LEN(strs); i++) {
        if (strcmp(key, strs[i].name) != 0)
            continue;
        if (strlen(value) >= strs[i].cap)
            return td_fail(TD_ECONFIG, "%s: at most %zu bytes", key, strs[i].cap - 1);
        if (strs[i].pairs && !pairs_ok(value))
            return td_fail(TD_ECONFIG, "%s: expected name=value pairs separated by commas", key);
        if (!strcmp(key, "otlp.endpoint") && value[0] && strncmp(value, "http://", 7) &&
            strncmp(value, "https://", 8))
            return td_fail(TD_ECONFIG,
                           "otlp.endpoint: expected an http:// or https:// URL "
                           "(or nothing: export off), got '%s'",
                           value);
        snprintf(strs[i].dst, strs[i].cap, "%s", value);
        return 0;
    }
    for (size_t i = 0; i < TD_ARRAY_LEN(int_keys); i++) {
        if (strcmp(key, int_keys[i].name) != 0)
            continue;
        char *end;
        errno = 0;
        long long x = strtoll(value, &end, 10);
        if (errno || end == value || *end || x < int_keys[i].lo || x > int_keys[i].hi)
            return td_fail(TD_ECONFIG, "%s: expected %" PRId64 " to %" PRId64 ", got '%s'", key,
                           int_keys[i].lo, int_keys[i].hi, value);
        *(int64_t *)((char *)c + int_keys[i].off) = x;
        return 0;
    }
    return 1;
}

/* ---------------------------------------------------------------------------------------------
 * Encoding
 */
static const char hexd[] = "0123456789abcdef";

/* The writers append to b unless *err is set, and set it when memory runs out. */
static void put_n(td_buf *b, int *err, const char *s, size_t n)
{
    if (!*err && td_buf_append(b, s, n))
        *err = -ENOMEM;
}

/* A string literal ("" lit "" refuses anything else at compile time). */
#define put(b, err, lit) put_n(b, err, "" lit "", sizeof(lit) - 1)

static void put_hex(td_buf *b, int *err, const uint8_t *id, size_t n)
{
    char h[2 * 16 + 2];
    h[0] = '"';
    for (size_t i = 0; i < n; i++) {
        h[1 + 2 * i] = hexd[id[i] >> 4];
        h[2 + 2 * i] = hexd[id[i] & 15];
    }
    h[1 + 2 * n] = '"';
    put_n(b, err, h, 2 * n + 2);
}

static void put_i64(td_buf *b, int *err, int64_t v, bool quoted)
{
    char s[24];
    char *e = s + sizeof(s), *p = e;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    if (quoted)
        *--p = '"';
    do
        *--p = (char)('0' + u % 10);
    while ((u /= 10) != 0);
    if (v < 0)
        *--p = '-';
    if (quoted)
        *--p = '"';
    put_n(b, err, p, (size_t)(e - p));
}

/* A JSON string of s[0..n): quotes, backslashes and control bytes escaped; bytes outside ASCII
 * kept when s is UTF-8, else written as '?'. */
static void put_str(td_buf *b, int *err, const char *s, size_t n)
{
    put(b, err, "\"");
    int utf8 = -1;  /* unknown until a byte outside ASCII asks */
    size_t run = 0; /* bytes of s[i - run .. i) to copy as they are */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80 && utf8 < 0)
            utf8 = td_utf8_valid((const uint8_t *)s, n);
        if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f && (c < 0x80 || utf8 == 1)) {
            run++;
            continue;
        }
        put_n(b, err, s + i - run, run);
        run = 0;
        char e[8];
        if (c == '"' || c == '\\')
            put_n(b, err, c == '"' ? "\\\"" : "\\\\", 2);
        else if (c >= 0x80)
            put(b, err, "?");
        else
            put_n(b, err, e, (size_t)snprintf(e, sizeof(e), "\\u%04x", c));
    }
    put_n(b, err, s + n - run, run);
    put(b, err, "\"");
}

static void put_attrs(td_buf *b, int *err, const otlp_attr *a, size_t n)
{
    put(b, err, "[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            put(b, err, ",");
        put(b, err, "{\"key\":");
        put_str(b, err, a[i].key, strlen(a[i].key));
        if (a[i].str) {
            put(b, err, ",\"value\":{\"stringValue\":");
            put_str(b, err, a[i].str, a[i].str_len);
        } else {
            put(b, err, ",\"value\":{\"intValue\":");
            put_i64(b, err, a[i].num, true);
        }
        put(b, err, "}}");
    }
    put(b, err, "]");
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

static void put_span(td_buf *b, int *err, const otlp_span_rec *s)
{
    put(b, err, "{\"traceId\":");
    put_hex(b, err, s->trace_id, 16);
    put(b, err, ",\"spanId\":");
    put_hex(b, err, s->span_id, 8);
    if (!all_zero(s->parent_span_id, 8)) {
        put(b, err, ",\"parentSpanId\":");
        put_hex(b, err, s->parent_span_id, 8);
    }
    if (s->flags) {
        put(b, err, ",\"flags\":");
        put_i64(b, err, s->flags, false);
    }
    put(b, err, ",\"name\":");
    const char *name = s->name ? s->name : "";
    put_str(b, err, name, strlen(name));
    put(b, err, ",\"kind\":");
    put_i64(b, err, s->kind, false);
    put(b, err, ",\"startTimeUnixNano\":");
    put_i64(b, err, s->start_ns, true);
    put(b, err, ",\"endTimeUnixNano\":");
    put_i64(b, err, s->end_ns, true);
    put(b, err, ",\"attributes\":");
    put_attrs(b, err, s->attrs, TD_MIN(s->nattrs, (size_t)OTLP_MAX_ATTRS));
    if (s->status != OTLP_STATUS_UNSET) {
        put(b, err, ",\"status\":{\"code\":");
        put_i64(b, err, s->status, false);
        if (s->status_message) {
            put(b, err, ",\"message\":");
            put_str(b, err, s->status_message, strlen(s->status_message));
        }
        put(b, err, "}");
    }
    put(b, err, "}");
}

int otlp_encode(td_buf *out, const otlp_attr *res, size_t nres, const otlp_span_rec *spans,
                size_t n)
{
    int err = td_buf_reserve(out, 256 + n * 640) ? -ENOMEM : 0; /* a span takes about 600 */
    put(out, &err, "{\"resourceSpans\":[{\"resource\":{\"attributes\":");
    put_attrs(out, &err, res, nres);
    put(out, &err,
        "},\"scopeSpans\":[{\"scope\":{\"name\":\"tidings\",\"version\":\"" TD_VERSION_STRING
        "\"},\"spans\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            put(out, &err, ",");
        put_span(out, &err, &spans[i]);
    }
    put(out, &err, "]}]}]}");
    return err;
}
