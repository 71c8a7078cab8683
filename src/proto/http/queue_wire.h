/*
 * queue_wire.h: the fast wire forms of the REST API's queue receive and outcomes
 * (queue_wire.c; docs/http-api.md#queue-groups, docs/queues.md):
 *
 *   - a receive's answer written straight into one buffer, without a jansson tree per event;
 *   - the body of an ack, nack or extend read without a jansson tree: the request shapes
 *     {"ids": [...], "delay_ms": N, "ms": N, "error": "...", "results": "all"|"failed"},
 *     where each of "ids" is a delivery id "<topic id>.<partition>.<offset>.<delivery>" or a
 *     range "<topic id>.<partition>.<first>-<last>.<delivery>" (offsets first to last, each
 *     delivered that many times: how a bulk consumer acks a batch in a few bytes);
 *   - the outcome's answer written by hand.
 *
 * The readers are pure functions over a buffer, fuzzed (tests/fuzz/qwire) and unit-tested on
 * truncated input (tests/unit/test_queue_wire.c). The body reader takes the plain shape only:
 * anything else (escapes, unknown or repeated keys, other types, invalid JSON) makes it decline,
 * and queues.c then reads the body with jansson, which answers the precise error.
 */
#ifndef TD_PROTO_HTTP_QUEUE_WIRE_H
#define TD_PROTO_HTTP_QUEUE_WIRE_H

#include "base/base.h"
#include "tidings.h"

/* At most this many delivery ids in one outcome, ranges counted by their offsets. */
#define QWIRE_MAX_IDS 1000

/* How a receive gives values: parsed JSON when they are one JSON text (value, else value_text
 * or value_b64), UTF-8 strings (value, else value_b64), or base64 always (value_b64). */
enum { QWIRE_VALUES_JSON, QWIRE_VALUES_STRING, QWIRE_VALUES_BASE64 };

/* Appends {"events":[...]}\n for n messages to out: each event as http_event_json gives it
 * (topic, partition, offset, timestamp, key, value, headers) after its "id", and its
 * "deliveries". 0 or -ENOMEM. */
int qwire_write_events(td_buf *out, const td_queue_msg *m, size_t n, int values);

/* One of "ids": a delivery id (first == last) or a range of offsets with one delivery count.
 * Pure: true when s[0..n) is one; numbers as queue_id_parse takes them (digits, no sign), the
 * range's last >= first and spanning at most QWIRE_MAX_IDS offsets. */
typedef struct qwire_item {
    int64_t topic_id, first, last;
    int32_t partition, deliveries;
} qwire_item;
bool qwire_item_parse(const char *s, size_t n, qwire_item *out);
/* Writes the id of offset `offset` of it into buf (TD_QUEUE_ID_MAX bytes, NUL-terminated);
 * returns its length. */
size_t qwire_item_id(const qwire_item *it, int64_t offset, char *buf);

/* An outcome body read by qwire_outcome_parse. Slices point into the body. */
typedef struct qwire_outcome {
    td_slice ids;   /* the text inside the brackets of "ids" (qwire_ids_next walks it) */
    size_t n_items; /* strings in it */
    size_t n_ids;   /* delivery ids they name, ranges expanded */
    bool has_ms;    /* "delay_ms" (nack) or "ms" (extend) */
    int64_t ms;
    bool has_error; /* "error" (nack), without escapes */
    td_slice error;
    bool failed_only; /* "results": "failed" */
} qwire_outcome;

enum { QWIRE_ACK, QWIRE_NACK, QWIRE_EXTEND };

/* Reads the body of an ack, nack or extend (kind) of the plain shape, with every one of "ids"
 * a well-formed id or range and 1 to QWIRE_MAX_IDS ids in all, "delay_ms" / "ms" from 0 to
 * 86400000: 0. Anything else: -1, and the caller reads it the slow way, which explains.
 * Pure. */
int qwire_outcome_parse(const char *body, size_t n, int kind, qwire_outcome *out);
/* The next string of o->ids: true with *item set (its text in *text), false at the end. *pos
 * starts at 0. Only for an outcome that qwire_outcome_parse accepted. */
bool qwire_ids_next(const qwire_outcome *o, size_t *pos, td_slice *text, qwire_item *item);

/* Appends {"results":[{"id","result"}...],"ok":N,"stale":N,"unknown":N}\n to out, for the n ids
 * and their results (0, TD_ESTALE, else unknown); with failed_only, "results" lists only those
 * that are not ok. The ids are as the client gave or as ranges expand, and must need no JSON
 * escaping (delivery ids are digits and dots). 0 or -ENOMEM. */
int qwire_write_results(td_buf *out, const char *const *ids, const int *results, size_t n,
                        bool failed_only);

#endif /* TD_PROTO_HTTP_QUEUE_WIRE_H */
