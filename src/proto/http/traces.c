/*
 * traces.c: the trace index over HTTP (docs/http-api.md#traces, docs/tracing.md):
 *   GET /v1/traces/{trace_id}[?limit=L]
 *       Every event of the trace across the trace.index topics (td_trace_get), as a tree.
 *   GET /v1/topics/{topic}/partitions/{p}/offsets/{o}/caused[?depth=N][&limit=L]
 *       The event and what it caused, transitively, to depth N (td_trace_caused).
 * Authorization: Read on each topic. A trace's events in topics the principal may not read
 * are left out and counted in "hidden"; the event asked for by /caused needs Read on its topic
 * (authz.c), and what it caused in other topics is left out likewise.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/authz.h"
#include "broker/broker.h"
#include "proto/http/http_int.h"

#define DEFAULT_LIMIT 1000
#define DEFAULT_DEPTH 8

static bool may_read(void *arg, const char *topic)
{
    return http_may(arg, TD_RES_TOPIC, topic, TD_OP_READ);
}

static json_t *hex_json(const uint8_t *b, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    char s[33];
    for (size_t i = 0; i < n; i++) {
        s[2 * i] = hex[b[i] >> 4];
        s[2 * i + 1] = hex[b[i] & 15];
    }
    return json_stringn(s, 2 * n);
}

static json_t *event_json(const td_trace_result *r, size_t i, int64_t t0)
{
    const td_trace_event *te = &r->events[i];
    json_t *o =
        json_pack("{s:s,s:i,s:I,s:I,s:I,s:i}", "topic", te->topic, "partition", (int)te->partition,
                  "offset", (json_int_t)te->offset, "timestamp", (json_int_t)te->timestamp_ms,
                  "elapsed_ms", (json_int_t)(te->timestamp_ms - t0), "depth", (int)te->depth);
    if (te->parent >= 0) {
        json_object_set_new(o, "parent", json_integer(te->parent));
        json_object_set_new(o, "since_parent_ms",
                            json_integer(te->timestamp_ms - r->events[te->parent].timestamp_ms));
    } else {
        json_object_set_new(o, "parent", json_null());
    }
    json_object_set_new(o, "trace_id", te->has_context ? hex_json(te->trace_id, 16) : json_null());
    json_object_set_new(o, "span_id", te->has_context ? hex_json(te->span_id, 8) : json_null());
    json_object_set_new(o, "parent_span_id",
                        te->has_parent_span ? hex_json(te->parent_span, 8) : json_null());
    json_object_set_new(o, "cause", te->cause[0] ? json_string(te->cause) : json_null());
    if (te->key_null) {
        json_object_set_new(o, "key", json_null());
    } else {
        size_t n = TD_MIN(te->key_len, sizeof(te->key));
        json_t *k = json_stringn((const char *)te->key, n);
        json_object_set_new(o, "key", k ? k : json_null());
        if (n < te->key_len || !k)
            json_object_set_new(o, "key_truncated", json_true());
    }
    json_t *names = json_array();
    for (const char *s = te->header_names, *nl; (nl = strchr(s, '\n')); s = nl + 1) {
        json_t *nm = json_stringn(s, (size_t)(nl - s));
        if (nm)
            json_array_append_new(names, nm);
    }
    json_object_set_new(o, "headers", names);
    json_object_set_new(o, "header_count", json_integer((json_int_t)te->header_count));
    return o;
}

static void respond_result(hconn *hc, json_t *head, td_trace_result *r, int64_t limit)
{
    int64_t t0 = INT64_MAX;
    for (size_t i = 0; i < r->n; i++)
        t0 = TD_MIN(t0, r->events[i].timestamp_ms);
    json_t *events = json_array();
    for (size_t i = 0; i < r->n; i++)
        json_array_append_new(events, event_json(r, i, t0));
    json_object_set_new(head, "events", events);
    json_object_set_new(head, "count", json_integer((json_int_t)r->n));
    json_object_set_new(head, "hidden", json_integer((json_int_t)r->hidden));
    json_object_set_new(head, "truncated", json_boolean(r->truncated));
    json_object_set_new(head, "limit", json_integer(limit));
    int64_t t1 = INT64_MIN;
    for (size_t i = 0; i < r->n; i++)
        t1 = TD_MAX(t1, r->events[i].timestamp_ms);
    json_object_set_new(head, "duration_ms", json_integer(r->n ? t1 - t0 : 0));
    td_trace_result_free(r);
    http_respond_json(hc, 200, head, NULL);
}

void http_route_trace(hconn *hc, const char *id)
{
    if (!http_method_is(hc, "GET") && !http_method_is(hc, "HEAD"))
        return http_respond_method_not_allowed(hc, "GET, HEAD");
    uint8_t tid[16];
    if (td_trace_id_parse(id, strlen(id), tid) != 0)
        return http_respond_error(hc, 400, "invalid_trace_id",
                                  "a trace id is 32 lowercase hex digits, not all zero");
    int64_t limit = DEFAULT_LIMIT;
    if (http_query_int(hc, "limit", 1, TD_TRACE_MAX_EVENTS, &limit) < 0)
        return;
    td_trace_result r;
    int rc = td_trace_get(hc->s->e, tid, (size_t)limit, may_read, hc, &r);
    if (rc)
        return http_respond_td_error(hc, rc);
    respond_result(hc, json_pack("{s:s}", "trace_id", id), &r, limit);
}

/* A decimal integer in [lo, hi] that is the whole of s. */
static bool whole_int(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    if (!*s || *s == '-' || *s == '+' || *s == ' ')
        return false;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end || errno || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

void http_route_caused(hconn *hc, const char *topic, const char *part, const char *off)
{
    if (!http_method_is(hc, "GET") && !http_method_is(hc, "HEAD"))
        return http_respond_method_not_allowed(hc, "GET, HEAD");
    int64_t p, o, depth = DEFAULT_DEPTH, limit = DEFAULT_LIMIT;
    if (!whole_int(part, 0, INT32_MAX, &p) || !whole_int(off, 0, INT64_MAX, &o))
        return http_respond_error(hc, 400, "invalid_argument",
                                  "the partition and the offset are integers >= 0");
    if (http_query_int(hc, "depth", 1, TD_TRACE_MAX_DEPTH, &depth) < 0 ||
        http_query_int(hc, "limit", 1, TD_TRACE_MAX_EVENTS, &limit) < 0)
        return;
    td_trace_result r;
    int rc = td_trace_caused(hc->s->e, topic, (int32_t)p, o, (int)depth, (size_t)limit, may_read,
                             hc, &r);
    if (rc)
        return http_respond_td_error(hc, rc);
    respond_result(hc,
                   json_pack("{s:s,s:i,s:I,s:i}", "topic", topic, "partition", (int)p, "offset",
                             (json_int_t)o, "depth", (int)depth),
                   &r, limit);
}
