/*
 * events.c: producing and reading events over HTTP (docs/http-api.md):
 *   POST /v1/topics/{topic}/events   one event (an object) or many (an array), answered once
 *                                    they are durable under the topic's fsync policy
 *   GET  /v1/topics/{topic}/events   by partition and offset, or from earliest/latest or a
 *                                    time, with a limit
 *
 * Bytes and JSON: an event's value is given as `value` (any JSON, stored as its compact text),
 * `value_text` (a string, stored as its UTF-8 bytes) or `value_b64` (base64 bytes); keys as
 * `key` (a string) or `key_b64`. Reading gives `value` when the stored bytes are JSON,
 * `value_text` when they are other UTF-8 text, `value_b64` otherwise, so that what was written
 * through any protocol reads back faithfully.
 *
 * A produce waits for durability without blocking the loop: the appends happen at once
 * (broker_produce_nowait), the flusher calls back when the partitions are synced, and the
 * answer is written from a task posted to the connection's loop. Meanwhile the connection
 * reads no further request, so pipelined requests still answer in order.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/registry.h"
#include "proto/http/http_int.h"

#define MAX_EVENTS 10000
#define MAX_HEADERS 64
#define DEFAULT_LIMIT 100
#define MAX_LIMIT 10000

/* ---------------------------------------------------------------------------------------------
 * Produce
 */
typedef struct hproduce {
    net_conn *c;
    td_topic_ref *ref;
    td_arena arena; /* the events' bytes */
    td_event *events;
    td_produce_result *results;
    bool *json_value;  /* event i's value was given as `value` (JSON), not as text or base64 */
    int64_t *expected; /* event i's expected_version (keys.c); NULL when no event has one */
    td_condition *cond; /* the body's condition (keys.c), in arena; NULL when none */
    size_t n;
    int pending; /* atomic: durability callbacks outstanding, plus the handler's hold */
    int rc;      /* atomic: the first failure */
} hproduce;

static void produce_free(hproduce *op)
{
    size_t held = op->arena.total;
    broker_topic_release(op->ref);
    td_arena_free(&op->arena);
    free(op->results);
    free(op);
    http_release_memory(held);
}

/*
 * The bytes an object gives under `name`, the mirror of set_bytes: with as_json, `name` is any
 * JSON (stored as its compact text) and `name_text` a string; without, `name` is a string;
 * `name_b64` is base64 either way. Absent or null: no bytes (*p NULL). False (after answering)
 * for a bad or ambiguous field.
 */
static bool field_bytes(hconn *hc, td_arena *a, json_t *obj, const char *name, bool as_json,
                        const void **p, size_t *n, int idx)
{
    char text_name[32], b64_name[32], msg[200];
    snprintf(text_name, sizeof(text_name), "%s_text", name);
    snprintf(b64_name, sizeof(b64_name), "%s_b64", name);
    json_t *j = json_object_get(obj, name);
    json_t *t = as_json ? json_object_get(obj, text_name) : NULL;
    json_t *b = json_object_get(obj, b64_name);
    if (!as_json && j && !json_is_null(j)) {
        t = j; /* plain text */
        j = NULL;
    }
    *p = NULL;
    *n = 0;
    if ((j != NULL) + (t != NULL) + (b != NULL) > 1) {
        snprintf(msg, sizeof(msg), "event %d: give at most one of %s%s%s and %s", idx, name,
                 as_json ? ", " : "", as_json ? text_name : "", b64_name);
        http_respond_error(hc, 400, "invalid_argument", msg);
        return false;
    }
    if (j && !json_is_null(j)) {
        char *s = http_json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!s) {
            http_respond_error(hc, 500, "internal", "out of memory");
            return false;
        }
        *n = strlen(s);
        *p = td_arena_memdup(a, s, *n + 1);
        free(s);
    } else if (t) {
        if (!json_is_string(t)) {
            snprintf(msg, sizeof(msg), "event %d: %s must be a string", idx,
                     as_json ? text_name : name);
            http_respond_error(hc, 400, "invalid_argument", msg);
            return false;
        }
        *n = json_string_length(t);
        *p = td_arena_memdup(a, json_string_value(t), *n + 1);
    } else if (b) {
        td_buf d;
        td_buf_init(&d);
        int rc = json_is_string(b)
                     ? td_base64_decode(&d, json_string_value(b), json_string_length(b))
                     : TD_EINVAL;
        if (rc) {
            td_buf_free(&d);
            snprintf(msg, sizeof(msg), "event %d: %s must be base64 (%s)", idx, b64_name,
                     json_is_string(b) ? td_last_error() : "not a string");
            http_respond_error(hc, 400, "invalid_argument", msg);
            return false;
        }
        *n = d.len;
        *p = td_arena_memdup(a, d.p ? d.p : (const uint8_t *)"", d.len + 1);
        td_buf_free(&d);
    }
    return true;
}

static bool read_headers(hconn *hc, td_arena *a, json_t *hs, td_event *out, int idx)
{
    char msg[200];
    if (!hs)
        return true;
    size_t count = json_is_object(hs)  ? json_object_size(hs)
                   : json_is_array(hs) ? json_array_size(hs)
                                       : (size_t)-1;
    if (count == (size_t)-1 || count > MAX_HEADERS) {
        snprintf(msg, sizeof(msg), "event %d: headers must be an object or an array of at most %d",
                 idx, MAX_HEADERS);
        http_respond_error(hc, 400, "invalid_argument", msg);
        return false;
    }
    td_header *h = td_arena_calloc(a, count + 1, sizeof(*h));
    if (!h) {
        http_respond_error(hc, 500, "internal", "out of memory");
        return false;
    }
    size_t k = 0;
    if (json_is_object(hs)) {
        const char *name;
        json_t *v;
        json_object_foreach(hs, name, v)
        {
            if (!json_is_string(v) && !json_is_null(v)) {
                snprintf(msg, sizeof(msg), "event %d: header '%.100s' must be a string or null",
                         idx, name);
                http_respond_error(hc, 400, "invalid_argument", msg);
                return false;
            }
            h[k].key = td_arena_strdup(a, name);
            h[k].key_len = strlen(name);
            if (json_is_string(v)) {
                h[k].value_len = json_string_length(v);
                h[k].value = td_arena_memdup(a, json_string_value(v), h[k].value_len + 1);
            }
            k++;
        }
    } else {
        size_t i;
        json_t *v;
        json_array_foreach(hs, i, v)
        {
            json_t *key = json_object_get(v, "key");
            if (!json_is_object(v) || !json_is_string(key)) {
                snprintf(msg, sizeof(msg), "event %d: header %zu needs a string 'key'", idx, i);
                http_respond_error(hc, 400, "invalid_argument", msg);
                return false;
            }
            h[k].key_len = json_string_length(key);
            h[k].key = td_arena_memdup(a, json_string_value(key), h[k].key_len + 1);
            if (!field_bytes(hc, a, v, "value", false, &h[k].value, &h[k].value_len, idx))
                return false;
            k++;
        }
    }
    out->headers = h;
    out->header_count = k;
    return true;
}

/* An event's "tags" (docs/event-sourcing.md#tags): strings, each becoming a TD_TAG_HEADER header
 * after the event's headers. */
static bool read_tags(hconn *hc, td_arena *a, json_t *tags, td_event *out, int idx)
{
    char msg[200];
    if (!tags)
        return true;
    size_t nt = json_is_array(tags) ? json_array_size(tags) : (size_t)-1;
    if (nt == (size_t)-1 || nt > TD_TAGS_MAX) {
        snprintf(msg, sizeof(msg), "event %d: tags must be an array of at most %d strings", idx,
                 TD_TAGS_MAX);
        http_respond_error(hc, 400, "invalid_argument", msg);
        return false;
    }
    td_header *h = td_arena_calloc(a, out->header_count + nt + 1, sizeof(*h));
    if (!h) {
        http_respond_error(hc, 500, "internal", "out of memory");
        return false;
    }
    if (out->header_count)
        memcpy(h, out->headers, out->header_count * sizeof(*h));
    for (size_t i = 0; i < nt; i++) {
        json_t *t = json_array_get(tags, i);
        if (!json_is_string(t) || json_string_length(t) == 0 ||
            json_string_length(t) > TD_TAG_MAX_LEN) {
            snprintf(msg, sizeof(msg), "event %d: tag %zu must be a string of 1 to %d bytes", idx,
                     i, TD_TAG_MAX_LEN);
            http_respond_error(hc, 400, "invalid_argument", msg);
            return false;
        }
        td_header *x = &h[out->header_count + i];
        x->key = TD_TAG_HEADER;
        x->key_len = sizeof(TD_TAG_HEADER) - 1;
        x->value_len = json_string_length(t);
        x->value = td_arena_memdup(a, json_string_value(t), x->value_len + 1);
        if (!x->value) {
            http_respond_error(hc, 500, "internal", "out of memory");
            return false;
        }
    }
    out->headers = h;
    out->header_count += nt;
    return true;
}

/* An event's "delay_ms" or "deliver_at" (docs/queues.md#delayed-delivery): the header
 * tidings-delay-ms or tidings-deliver-at after the event's headers. */
static bool read_delay(hconn *hc, td_arena *a, json_t *ev, td_event *out, int idx)
{
    json_t *d = json_object_get(ev, "delay_ms"), *at = json_object_get(ev, "deliver_at");
    char msg[200], text[TD_DELAY_TEXT_MAX];
    if (!d && !at)
        return true;
    int64_t v = -1;
    td_header dh = {0};
    if (d && at)
        snprintf(msg, sizeof(msg), "event %d: give delay_ms or deliver_at, not both", idx);
    else if (d &&
             (!json_is_integer(d) || td_delay_header(false, json_integer_value(d), text, &dh) != 0))
        snprintf(msg, sizeof(msg), "event %d: delay_ms must be an integer from 0 to %lld", idx,
                 (long long)TD_DELAY_MAX_MS);
    else if (at && (!http_json_time(at, &v) || td_delay_header(true, v, text, &dh) != 0))
        snprintf(msg, sizeof(msg),
                 "event %d: deliver_at must be milliseconds since 1970 (> 0) or an ISO 8601 "
                 "time (2026-12-07T12:00:00Z)",
                 idx);
    else
        msg[0] = 0;
    td_error_clear();
    if (msg[0]) {
        http_respond_error(hc, 400, "invalid_argument", msg);
        return false;
    }
    td_header *h = td_arena_calloc(a, out->header_count + 1, sizeof(*h));
    dh.value = td_arena_memdup(a, text, dh.value_len + 1);
    if (!h || !dh.value) {
        http_respond_error(hc, 500, "internal", "out of memory");
        return false;
    }
    if (out->header_count)
        memcpy(h, out->headers, out->header_count * sizeof(*h));
    h[out->header_count] = dh;
    out->headers = h;
    out->header_count++;
    return true;
}

bool http_read_event(hconn *hc, td_arena *a, json_t *ev, td_event *out, bool *json_value, int idx)
{
    static const char *const allowed[] = {
        "key",      "key_b64",    "value",     "value_text",       "value_b64",
        "headers",  "partition",  "timestamp", "expected_version", "tags",
        "delay_ms", "deliver_at", NULL};
    char msg[200];
    if (!json_is_object(ev)) {
        snprintf(msg, sizeof(msg), "event %d must be an object", idx);
        http_respond_error(hc, 400, "invalid_argument", msg);
        return false;
    }
    const char *k;
    json_t *v;
    json_object_foreach(ev, k, v)
    {
        bool ok = false;
        for (size_t i = 0; allowed[i] && !ok; i++)
            ok = strcmp(k, allowed[i]) == 0;
        if (!ok) {
            snprintf(msg, sizeof(msg), "event %d: unknown field '%.100s'", idx, k);
            http_respond_error(hc, 400, "invalid_argument", msg);
            return false;
        }
    }
    memset(out, 0, sizeof(*out));
    out->partition = TD_PARTITION_ANY;
    /* A key is text (its UTF-8 bytes), never JSON: "key": "k1" is the two bytes k1. */
    if (!field_bytes(hc, a, ev, "key", false, &out->key, &out->key_len, idx) ||
        !field_bytes(hc, a, ev, "value", true, &out->value, &out->value_len, idx))
        return false;
    json_t *jv = json_object_get(ev, "value");
    *json_value = jv && !json_is_null(jv);
    json_t *p = json_object_get(ev, "partition"), *ts = json_object_get(ev, "timestamp");
    if (p &&
        (!json_is_integer(p) || json_integer_value(p) < 0 || json_integer_value(p) > INT32_MAX)) {
        snprintf(msg, sizeof(msg), "event %d: partition must be an integer >= 0", idx);
        http_respond_error(hc, 400, "invalid_argument", msg);
        return false;
    }
    if (ts && (!json_is_integer(ts) || json_integer_value(ts) <= 0)) {
        snprintf(msg, sizeof(msg), "event %d: timestamp must be milliseconds since 1970 (> 0)",
                 idx);
        http_respond_error(hc, 400, "invalid_argument", msg);
        return false;
    }
    if (p)
        out->partition = (int32_t)json_integer_value(p);
    if (ts)
        out->timestamp_ms = json_integer_value(ts);
    return read_headers(hc, a, json_object_get(ev, "headers"), out, idx) &&
           read_tags(hc, a, json_object_get(ev, "tags"), out, idx) &&
           read_delay(hc, a, ev, out, idx);
}

static void produce_answer(hconn *hc, hproduce *op)
{
    int rc = __atomic_load_n(&op->rc, __ATOMIC_ACQUIRE);
    if (rc) {
        http_respond_td_error(hc, rc);
        return;
    }
    json_t *offs = json_array();
    for (size_t i = 0; i < op->n; i++)
        json_array_append_new(offs, json_pack("{s:i,s:I}", "partition", op->results[i].partition,
                                              "offset", (json_int_t)op->results[i].offset));
    http_respond_json(hc, 200, json_pack("{s:o}", "offsets", offs), NULL);
}

/* On the connection's loop, once every partition is durable. */
static void produce_done(void *arg)
{
    hproduce *op = arg;
    net_conn *c = op->c;
    hconn *hc = net_conn_closed(c) ? NULL : net_conn_data(c);
    if (hc) {
        produce_answer(hc, op);
        http_finish_async(hc);
    }
    produce_free(op);
    net_conn_unref(c);
}

/* Any thread (the flusher, or this one under interval and none). */
static void produce_durable(void *arg, int rc)
{
    hproduce *op = arg;
    if (rc) {
        int zero = 0;
        __atomic_compare_exchange_n(&op->rc, &zero, rc, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
    }
    if (__atomic_sub_fetch(&op->pending, 1, __ATOMIC_ACQ_REL) == 0 &&
        net_loop_post(net_conn_loop(op->c), produce_done, op) != 0)
        TD_ERROR("http", "cannot post a produce completion: out of memory");
}

static bool alloc_events(hconn *hc, hproduce *op, size_t n)
{
    op->n = n;
    op->events = td_arena_calloc(&op->arena, n, sizeof(*op->events));
    op->results = calloc(n, sizeof(*op->results));
    op->json_value = td_arena_calloc(&op->arena, n, sizeof(*op->json_value));
    if (!op->events || !op->results || !op->json_value) {
        http_respond_error(hc, 500, "internal", "out of memory");
        return false;
    }
    return true;
}

/* A body {"events": [...], "condition": {...}} (docs/http-api.md#conditional-appends): the
 * events and the condition over a set of keys. False after answering. */
static bool read_envelope(hconn *hc, hproduce *op, json_t *b)
{
    char msg[200];
    const char *k;
    json_t *v;
    json_object_foreach(b, k, v)
    {
        if (strcmp(k, "events") != 0 && strcmp(k, "condition") != 0) {
            snprintf(msg, sizeof(msg),
                     "unknown field '%.100s': a body with \"events\" has \"events\" and "
                     "\"condition\"",
                     k);
            http_respond_error(hc, 400, "invalid_argument", msg);
            return false;
        }
    }
    json_t *evs = json_object_get(b, "events");
    if (!json_is_array(evs) || json_array_size(evs) == 0 || json_array_size(evs) > MAX_EVENTS) {
        snprintf(msg, sizeof(msg), "events must be an array of 1 to %d events", MAX_EVENTS);
        http_respond_error(hc, 400, "invalid_argument", msg);
        return false;
    }
    if (!alloc_events(hc, op, json_array_size(evs)))
        return false;
    for (size_t i = 0; i < op->n; i++) {
        json_t *ev = json_array_get(evs, i);
        if (!http_read_event(hc, &op->arena, ev, &op->events[i], &op->json_value[i], (int)i) ||
            !http_expected_version(hc, &op->arena, ev, i, op->n, &op->expected))
            return false;
    }
    json_t *c = json_object_get(b, "condition");
    return !c || http_condition(hc, &op->arena, c, &op->cond);
}

/*
 * Reads the body's events into op: one object, or an array of them parsed an element at a time,
 * so that jansson holds one event's tree at a time instead of the whole array's (30 to 80 times
 * the body). A first pass over the array checks its structure and counts the events before
 * anything is parsed; or an object with "events" and a "condition" (read_envelope). False after
 * answering.
 */
static bool read_events(hconn *hc, hproduce *op)
{
    char msg[100];
    td_slice body = td_buf_slice(&hc->body), elem;
    http_json_iter it;
    if (!http_json_array_open(&it, body.p, body.n)) {
        json_t *b = http_json_parse(hc, body, 0);
        if (!b)
            return false;
        bool ok;
        if (json_object_get(b, "events"))
            ok = read_envelope(hc, op, b);
        else
            ok = alloc_events(hc, op, 1) &&
                 http_read_event(hc, &op->arena, b, &op->events[0], &op->json_value[0], 0) &&
                 http_expected_version(hc, &op->arena, b, 0, 1, &op->expected);
        json_decref(b);
        return ok;
    }
    uint64_t cost = 0;
    int rc;
    while ((rc = http_json_array_next(&it, &elem, &cost)) == 1 && it.count <= MAX_EVENTS)
        ;
    if (rc < 0) {
        http_respond_invalid_json(hc, TD_MIN(it.pos + 1, body.n), it.why);
        return false;
    }
    if (it.count == 0 || it.count > MAX_EVENTS) {
        snprintf(msg, sizeof(msg), "give 1 to %d events", MAX_EVENTS);
        http_respond_error(hc, 400, "invalid_argument", msg);
        return false;
    }
    if (!alloc_events(hc, op, it.count))
        return false;
    http_json_array_open(&it, body.p, body.n);
    for (size_t i = 0; i < op->n; i++) {
        http_json_array_next(&it, &elem, &cost);
        json_t *ev = http_json_parse(hc, elem, JSON_DECODE_ANY);
        bool ok = ev &&
                  http_read_event(hc, &op->arena, ev, &op->events[i], &op->json_value[i], (int)i) &&
                  http_expected_version(hc, &op->arena, ev, i, op->n, &op->expected);
        json_decref(ev);
        if (!ok)
            return false;
    }
    return true;
}

/* A 422 for event idx that failed its topic's schema (docs/http-api.md). */
static void schema_violation(hconn *hc, size_t idx, const char *pointer, const char *rule,
                             const char *why)
{
    char msg[800];
    snprintf(msg, sizeof(msg), "event %zu: %s%s%s", idx, why, *pointer ? " at " : "", pointer);
    http_respond_json(hc, 422,
                      json_pack("{s:{s:s,s:s,s:i,s:I,s:s,s:s}}", "error", "code",
                                "schema_violation", "message", msg, "status", 422, "index",
                                (json_int_t)idx, "pointer", pointer, "rule", rule),
                      NULL);
}

/*
 * The topic's schema validation (docs/schemas.md, "Enforcement on produce"), all events before
 * any is appended: a JSON `value` is validated against the value subject's latest JSON Schema
 * and stored with the wire header of that schema's id; a value given as bytes (`value_text`,
 * `value_b64`) must already be in the wire format, as from Kafka; keys are bytes. False after
 * answering 422 for the first bad event.
 */
static bool schema_check_events(hconn *hc, hproduce *op, const registry_policy *pol)
{
    td_engine *e = hc->s->e;
    char why[600];
    for (size_t i = 0; i < op->n; i++) {
        td_event *ev = &op->events[i];
        if (pol->key && ev->key &&
            registry_check_wire_ref(e, op->ref, pol, true, ev->key, ev->key_len, why,
                                    sizeof(why)) != 0) {
            schema_violation(hc, i, "", "wire-format", why);
            return false;
        }
        if (!pol->value || !ev->value) /* a null value (a tombstone) passes */
            continue;
        if (!op->json_value[i]) {
            if (registry_check_wire_ref(e, op->ref, pol, false, ev->value, ev->value_len, why,
                                        sizeof(why)) != 0) {
                schema_violation(hc, i, "", "wire-format", why);
                return false;
            }
            continue;
        }
        registry_json_check chk;
        if (registry_check_json_value(e, op->ref, pol, ev->value, ev->value_len, false, &chk)) {
            schema_violation(hc, i, chk.pointer, chk.rule, chk.why);
            return false;
        }
        uint8_t *v = td_arena_alloc(&op->arena, ev->value_len + 5);
        if (!v) {
            http_respond_error(hc, 500, "internal", "out of memory");
            return false;
        }
        v[0] = 0; /* Confluent's wire format: magic 0, the schema id big-endian, the JSON */
        td_store_be32(v + 1, (uint32_t)chk.id);
        memcpy(v + 5, ev->value, ev->value_len);
        ev->value = v;
        ev->value_len += 5;
    }
    registry_count_accepted(e, op->ref, op->n);
    return true;
}

static void events_produce(hconn *hc, const char *topic)
{
    if (!http_body_is_json(hc))
        return;
    hproduce *op = calloc(1, sizeof(*op));
    if (!op)
        return http_respond_error(hc, 500, "internal", "out of memory");
    td_arena_init(&op->arena);
    op->c = hc->c;
    int64_t *ends = NULL;
    size_t n;
    if (!read_events(hc, op))
        goto fail;
    if (http_trace_events(&hc->req, &op->arena, op->events, op->n) != 0) {
        http_respond_error(hc, 500, "internal", "out of memory");
        goto fail;
    }
    n = op->n;
    int rc = broker_topic_acquire(hc->s->e, topic, &op->ref);
    if (rc) {
        http_respond_td_error(hc, rc);
        goto fail;
    }
    td_topic_config cfg;
    broker_topic_config(op->ref, &cfg);
    registry_policy pol;
    registry_policy_of(&cfg, &pol);
    if (registry_policy_on(&pol) && !schema_check_events(hc, op, &pol))
        goto fail;
    int32_t nparts = broker_topic_partitions(op->ref);
    ends = malloc((size_t)nparts * sizeof(*ends));
    if (!ends) {
        http_respond_error(hc, 500, "internal", "out of memory");
        goto fail;
    }
    td_version_conflict conflict;
    rc = broker_produce_cond_nowait(op->ref, op->events, op->expected, n, op->cond, op->results,
                                    ends, &conflict);
    if (rc) {
        /* What was appended before the failure is synced like any append. */
        for (int32_t p = 0; p < nparts; p++)
            if (ends[p] >= 0)
                broker_when_durable(op->ref, p, ends[p], NULL, NULL);
        if (rc == TD_EVERSION) /* an expected version did not hold (keys.c) */
            http_respond_wrong_version(hc, op->events, op->expected, op->cond, op->results, n,
                                       &conflict);
        else if (rc == TD_EUNSUPPORTED && (op->expected || op->cond)) /* no key.index */
            http_respond_error(hc, 400, "no_key_index", td_last_error());
        else if (rc == TD_EFULL) /* the only TD_EFULL of an append (docs/http-api.md) */
            http_respond_error(hc, 409, "stream_exhausted",
                               "The stream has exhausted the last possible ID "
                               "(18446744073709551615-18446744073709551615): the partition takes "
                               "no more events");
        else
            http_respond_td_error(hc, rc);
        goto fail;
    }
    op->pending = 1; /* held while the callbacks are registered */
    for (int32_t p = 0; p < nparts; p++) {
        if (ends[p] < 0)
            continue;
        __atomic_add_fetch(&op->pending, 1, __ATOMIC_ACQ_REL);
        rc = broker_when_durable(op->ref, p, ends[p], produce_durable, op);
        if (rc)
            produce_durable(op, rc); /* drops that partition's count with the error */
    }
    free(ends);
    net_conn_ref(hc->c);
    http_begin_async(hc);
    produce_durable(op, 0); /* drops the hold; may complete at once (posted to this loop) */
    return;
fail:
    free(ends);
    produce_free(op);
}

/* ---------------------------------------------------------------------------------------------
 * Read
 */
static json_t *b64_json(const void *p, size_t n)
{
    td_buf b;
    td_buf_init(&b);
    json_t *s = td_base64_encode(&b, p, n) == 0 ? json_stringn((const char *)b.p, b.len) : NULL;
    td_buf_free(&b);
    return s;
}

/* Sets the bytes on o: null for none; with as_json, `name` when they are one JSON text and
 * `name_text` when they are other UTF-8; without, `name` for UTF-8; `name_b64` otherwise. */
static void set_bytes(json_t *o, const char *name, const void *p, size_t n, bool as_json)
{
    char field[32];
    if (!p) {
        json_object_set_new(o, name, json_null());
        return;
    }
    json_t *j = as_json ? json_loadb(p, n, JSON_DECODE_ANY, NULL) : NULL;
    if (j) {
        json_object_set_new(o, name, j);
        return;
    }
    j = json_stringn(p, n); /* NULL unless valid UTF-8 */
    snprintf(field, sizeof(field), "%s%s", name, j ? (as_json ? "_text" : "") : "_b64");
    json_object_set_new(o, field, j ? j : b64_json(p, n));
}

json_t *http_event_json(td_engine *e, const char *topic, const td_event *ev, bool values_json)
{
    json_t *o = topic ? json_pack("{s:s}", "topic", topic) : json_object();
    json_object_set_new(o, "partition", json_integer(ev->partition));
    json_object_set_new(o, "offset", json_integer(ev->offset));
    json_object_set_new(o, "timestamp", json_integer(ev->timestamp_ms));
    /* Keys are text when they can be (never parsed as JSON). */
    if (!ev->key) {
        json_object_set_new(o, "key", json_null());
    } else {
        json_t *k = json_stringn(ev->key, ev->key_len);
        json_object_set_new(o, k ? "key" : "key_b64", k ? k : b64_json(ev->key, ev->key_len));
    }
    /* JSON stored with a schema's wire header reads as the JSON: no JSON text starts with a
     * 0 byte, so only such values pay the registry lookup. */
    int32_t sid = 0;
    size_t skip =
        e && values_json && ev->value && ev->value_len > 5 && ((const uint8_t *)ev->value)[0] == 0
            ? registry_json_header(e, ev->value, ev->value_len, &sid)
            : 0;
    json_t *sv = skip ? json_loadb((const char *)ev->value + skip, ev->value_len - skip,
                                   JSON_DECODE_ANY, NULL)
                      : NULL;
    if (sv) {
        json_object_set_new(o, "value", sv);
        json_object_set_new(o, "value_schema_id", json_integer(sid));
    } else {
        set_bytes(o, "value", ev->value, ev->value_len, values_json);
    }
    json_t *hs = json_array();
    for (size_t i = 0; i < ev->header_count; i++) {
        const td_header *h = &ev->headers[i];
        json_t *ho = json_object();
        json_t *k = json_stringn(h->key, h->key_len);
        json_object_set_new(ho, k ? "key" : "key_b64", k ? k : b64_json(h->key, h->key_len));
        set_bytes(ho, "value", h->value, h->value_len, false);
        json_array_append_new(hs, ho);
    }
    json_object_set_new(o, "headers", hs);
    return o;
}

bool http_values_param(hconn *hc, bool *values_json)
{
    char v[16];
    int rc = http_query_get(hc->req.query, "values", v, sizeof(v));
    *values_json = rc == 0 || (rc > 0 && !strcmp(v, "json"));
    if (rc != 0 && !*values_json && (rc < 0 || strcmp(v, "string"))) {
        http_respond_error(hc, 400, "invalid_argument",
                           "query parameter 'values' must be json (the default) or string");
        return false;
    }
    return true;
}

bool http_isolation_param(hconn *hc, int *isolation)
{
    char v[32];
    int rc = http_query_get(hc->req.query, "isolation", v, sizeof(v));
    *isolation = TD_READ_COMMITTED;
    if (rc > 0 && !strcmp(v, "read_uncommitted"))
        *isolation = TD_READ_UNCOMMITTED;
    else if (rc != 0 && (rc < 0 || strcmp(v, "read_committed"))) {
        http_respond_error(hc, 400, "invalid_argument",
                           "query parameter 'isolation' must be read_committed (the default) or "
                           "read_uncommitted");
        return false;
    }
    return true;
}

int http_query_int(hconn *hc, const char *name, int64_t lo, int64_t hi, int64_t *out)
{
    char buf[64], msg[160];
    int rc = http_query_get(hc->req.query, name, buf, sizeof(buf));
    if (rc == 0)
        return 0;
    char *end = NULL;
    long long v = rc > 0 ? strtoll(buf, &end, 10) : 0;
    if (rc < 0 || !buf[0] || *end || v < lo || v > hi) {
        snprintf(msg, sizeof(msg),
                 "query parameter '%s' must be an integer from %" PRId64 " to %" PRId64, name, lo,
                 hi);
        http_respond_error(hc, 400, "invalid_argument", msg);
        return -1;
    }
    *out = v;
    return 1;
}

static void events_read(hconn *hc, const char *topic)
{
    td_topic_info info;
    int rc = td_topic_describe(hc->s->e, topic, &info);
    if (rc)
        return http_respond_td_error(hc, rc);
    int64_t part = -1, offset = -1, time_ms = -1, limit = DEFAULT_LIMIT;
    int hp = http_query_int(hc, "partition", 0, info.partitions - 1, &part);
    int ho = hp >= 0 ? http_query_int(hc, "offset", 0, INT64_MAX, &offset) : -1;
    int ht = ho >= 0 ? http_query_int(hc, "time", 0, INT64_MAX, &time_ms) : -1;
    int hl = ht >= 0 ? http_query_int(hc, "limit", 1, MAX_LIMIT, &limit) : -1;
    bool values_json;
    int iso;
    if (hp < 0 || ho < 0 || ht < 0 || hl < 0 || !http_values_param(hc, &values_json) ||
        !http_isolation_param(hc, &iso))
        return;
    char from[32] = "earliest";
    int hf = http_query_get(hc->req.query, "from", from, sizeof(from));
    if (hf < 0 || (strcmp(from, "earliest") && strcmp(from, "latest")))
        return http_respond_error(hc, 400, "invalid_argument",
                                  "query parameter 'from' must be earliest or latest");
    if ((ho > 0) + (ht > 0) + (hf > 0) > 1)
        return http_respond_error(hc, 400, "invalid_argument",
                                  "give at most one of offset, time and from");
    if (ho > 0 && hp == 0)
        return http_respond_error(hc, 400, "invalid_argument", "an offset needs a partition");
    json_t *events = json_array(), *next = json_object();
    int32_t first = hp > 0 ? (int32_t)part : 0, last = hp > 0 ? (int32_t)part : info.partitions - 1;
    int64_t left = limit;
    for (int32_t p = first; p <= last; p++) {
        td_iter *it = NULL;
        if (ho > 0)
            rc = td_iter_open(hc->s->e, topic, p, offset, &it);
        else if (ht > 0)
            rc = td_iter_open_time(hc->s->e, topic, p, time_ms, &it);
        else
            rc = td_iter_open(hc->s->e, topic, p,
                              strcmp(from, "latest") ? TD_OFFSET_EARLIEST : TD_OFFSET_LATEST, &it);
        if (rc == 0)
            rc = td_iter_set_isolation(it, iso);
        if (rc) {
            td_iter_close(it);
            json_decref(events);
            json_decref(next);
            if (rc == TD_ERANGE) {
                char msg[300];
                snprintf(msg, sizeof(msg), "%s", td_last_error());
                return http_respond_error(hc, 400, "offset_out_of_range", msg);
            }
            return http_respond_td_error(hc, rc);
        }
        td_event ev;
        while (left > 0 && (rc = td_iter_next(it, &ev)) == 1) {
            json_array_append_new(events, http_event_json(hc->s->e, NULL, &ev, values_json));
            left--;
        }
        char pk[16];
        snprintf(pk, sizeof(pk), "%" PRId32, p);
        json_object_set_new(next, pk, json_integer(td_iter_position(it)));
        td_iter_close(it);
        if (rc < 0) {
            json_decref(events);
            json_decref(next);
            return http_respond_td_error(hc, rc);
        }
    }
    http_respond_json(hc, 200, json_pack("{s:o,s:o}", "events", events, "next_offsets", next),
                      NULL);
}

void http_route_events(hconn *hc, const char *topic)
{
    if (http_method_is(hc, "POST"))
        return events_produce(hc, topic);
    if (http_method_is(hc, "GET") || http_method_is(hc, "HEAD"))
        return events_read(hc, topic);
    http_respond_method_not_allowed(hc, "GET, HEAD, POST");
}
