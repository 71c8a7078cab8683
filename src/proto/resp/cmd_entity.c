/*
 * cmd_entity.c: entity streams through Redis (docs/event-sourcing.md#redis).
 *
 *   XADD key [NOMKSTREAM] * tidings-key <entity> [tidings-expected-version <v>] field value ...
 *       An event with a key (the entity), appended only if the key's stream is at version v
 *       ("any", "no_stream", "exists", an offset, or the stream ID of the key's latest event).
 *       The condition is checked with the append under the partition's lock, by the same
 *       mechanism as HTTP's and Kafka's (broker_produce_expect_nowait); a mismatch answers
 *       -WRONGVERSION with the key and the current version, and appends nothing.
 *   XKEYRANGE key entity start end [COUNT n]
 *       The entity's events with IDs in [start, end], as XRANGE answers, found through the
 *       partition's key index (td_iter_open_key): only the batches holding them are read.
 *   XKEYVERSION key entity
 *       The stream ID of the entity's latest event (its version), or nil when it has none.
 *
 * The stream key is a topic of one partition, a partition `<topic>/<n>`, or (unlike the other
 * stream commands) the bare key of a topic of several partitions: the entity's partition is
 * then the one Kafka's partitioner (murmur2) gives its key, as HTTP and td_produce place keys.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/registry.h"
#include "broker/xgroup.h"
#include "proto/resp/resp_int.h"

/* ---------------------------------------------------------------------------------------------
 * Helpers
 */
/* An entity's bytes as a key: never NULL (an empty key is a key, not a null one). */
static const void *key_bytes(td_slice a)
{
    return a.n ? (const void *)a.p : "";
}

/* Opens the stream of key for the entity: as resp_stream_open, but the bare key of a topic of
 * several partitions names the entity's partition (murmur2 of its key). */
static int entity_open(rconn *rc, resp_w *w, td_slice key, td_slice entity, bool create, sref *s)
{
    resp_skey k;
    td_engine *e = rc->s->e;
    s->ref = NULL;
    if (resp_key_resolve(e, key, &k) == 0 && k.part < 0 &&
        broker_topic_acquire(e, k.topic, &s->ref) == 0) {
        int32_t n = broker_topic_partitions(s->ref);
        if (n > 1) {
            s->pi = td_partition_for_key(key_bytes(entity), entity.n, n);
            s->p = broker_topic_part(s->ref, s->pi);
            return 1;
        }
        broker_topic_release(s->ref);
        s->ref = NULL;
    }
    td_error_clear();
    return resp_stream_open(rc, w, key, create, s);
}

/* Bytes as one line of an error reply: printable ASCII as it is, other bytes \xHH, at most
 * about 200 bytes of input ("..." after). */
static void text_line(td_slice a, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < a.n; i++) {
        if (o + 8 >= cap || i == 200) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        uint8_t c = a.p[i];
        if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') {
            out[o++] = (char)c;
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = 0;
}

/* A version as the replies give it: "no_stream", or "<offset> (ID <ms>-<seq>)". */
static void version_line(const sref *s, int64_t v, char *out, size_t cap)
{
    td_sid id;
    char b[RESP_SID_TEXT_MAX + 1];
    if (v < 0) {
        snprintf(out, cap, "no_stream");
    } else if (broker_stream_id(s->p, v, &id, NULL) == 0) {
        b[resp_sid_format(b, id)] = 0;
        snprintf(out, cap, "%" PRId64 " (ID %s)", v, b);
    } else {
        td_error_clear();
        snprintf(out, cap, "%" PRId64, v);
    }
}

static void reply_no_index(resp_w *w, const sref *s, const char *what)
{
    td_error_clear();
    resp_w_errorf(w,
                  "ERR %s needs a topic with key.index=true: topic '%s' has none "
                  "(docs/event-sourcing.md)",
                  what, broker_topic_name(s->ref));
}

/* ---------------------------------------------------------------------------------------------
 * XADD with tidings-key and tidings-expected-version
 */
/* The topic's key.schema.validation (docs/schemas.md): the key must be in Confluent's wire
 * format with a registered schema, as a Kafka or HTTP producer's key must be. False with the
 * error reply's text in msg. */
static bool key_schema_ok(rconn *rc, const sref *s, td_slice key, char *msg, size_t msglen)
{
    td_topic_config cfg;
    broker_topic_config(s->ref, &cfg);
    registry_policy pol;
    registry_policy_of(&cfg, &pol);
    char why[600];
    if (!pol.key || registry_check_wire_ref(rc->s->e, s->ref, &pol, true, key_bytes(key), key.n,
                                            why, sizeof(why)) == 0)
        return true;
    snprintf(msg, msglen, "ERR schema violation of the key (wire-format): %s", why);
    for (char *c = msg; *c; c++) /* an error reply is one line */
        if (*c == '\r' || *c == '\n')
            *c = ' ';
    return false;
}

/* Appends ev (one event of s's partition, for the stream key `key`) on the condition *expected
 * (NULL: none) and writes the reply. */
static void entity_append(rconn *rc, resp_w *w, td_slice key, sref *s, const td_event *ev,
                          const int64_t *expected, const resp_entity *en)
{
    int32_t np = broker_topic_partitions(s->ref);
    int64_t *ends = malloc((size_t)np * sizeof(*ends));
    if (!ends) {
        resp_w_error(w, "ERR out of memory");
        return;
    }
    td_produce_result res;
    td_version_conflict c;
    int r = broker_produce_expect_nowait(s->ref, ev, expected, 1, &res, ends, &c);
    int64_t end = ends[s->pi];
    free(ends);
    if (r == TD_EVERSION) {
        char k[900], x[900], cur[100];
        text_line(en->key, k, sizeof(k));
        text_line(en->expect, x, sizeof(x));
        version_line(s, c.current, cur, sizeof(cur));
        td_error_clear();
        resp_w_errorf(w,
                      "WRONGVERSION key '%s': expected version %s, but the stream's version is %s",
                      k, x, cur);
        return;
    }
    if (r == TD_EUNSUPPORTED && expected)
        return reply_no_index(w, s, RESP_ENTITY_EXPECT);
    if (r)
        return resp_reply_append_error(w, r, BROKER_SID_AUTO);
    td_sid id;
    if ((r = broker_stream_id(s->p, res.offset, &id, NULL)) != 0 ||
        (rc->in_exec && (r = broker_part_wait_durable(s->p, end)) != 0)) {
        resp_reply_engine_error(w, r);
        return;
    }
    resp_w_id(w, id);
    /* As XADD's (the change hook is muted for the Redis listener's own commands). */
    resp_notify(rc, RESP_NOTIFY_STREAM, "xadd", key);
    if (!rc->in_exec) /* the reply is held until the event is durable (as XADD's) */
        resp_wait_durable(rc, s->ref, s->pi, end);
}

void resp_xadd_entity(rconn *rc, resp_w *w, td_slice key, const td_slice *fv, size_t nfv,
                      bool nomkstream)
{
    td_slice *rest = malloc(2 * nfv * sizeof(*rest));
    if (!rest) {
        resp_w_error(w, "ERR out of memory");
        return;
    }
    td_slice *fields = rest + nfv;
    resp_entity en;
    const char *why = NULL;
    size_t nrest = 0, nfields = 0;
    if (resp_fields_entity_split(fv, nfv, rest, &nrest, &en, &why) != 0) {
        resp_w_error(w, why);
        free(rest);
        return;
    }
    td_header h[3] = {
        {"content-type", 12, RESP_FIELDS_CONTENT_TYPE, sizeof(RESP_FIELDS_CONTENT_TYPE) - 1}};
    td_header trace[2];
    size_t ntrace = resp_fields_trace_split(rest, nrest, fields, &nfields, trace);
    /* "any" is no condition, accepted anywhere (as HTTP's and Kafka's). */
    bool cond = en.has_expect && (en.by_id || en.expected != TD_VERSION_ANY);
    sref s;
    int o = entity_open(rc, w, key, en.key, !nomkstream && !cond, &s);
    if (o == 0 && nomkstream)
        resp_w_null(w);
    else if (o == 0)
        resp_w_errorf(w, "ERR " RESP_ENTITY_EXPECT " needs a topic with key.index=true: the key "
                         "names none (docs/event-sourcing.md)");
    if (o != 1 || resp_stream_writable(w, &s) != 1) {
        free(rest);
        return;
    }
    char err[1000];
    td_buf val;
    td_buf_init(&val);
    if (!resp_xadd_schema_ok(rc, s.ref, fields, nfields, err, sizeof(err))) {
        resp_w_error(w, err);
        goto out;
    }
    if (!key_schema_ok(rc, &s, en.key, err, sizeof(err))) {
        resp_w_error(w, err);
        goto out;
    }
    int64_t expected = en.expected;
    if (en.by_id && broker_stream_find(s.p, en.id, &expected) != 0) {
        /* No event has that ID: no stream has that version, and the check says which it has. */
        td_error_clear();
        expected = INT64_MAX;
    }
    bool json = resp_fields_json_ok(fields, nfields);
    if (resp_fields_encode(&val, fields, nfields, json) != 0) {
        resp_w_error(w, "ERR out of memory");
        goto out;
    }
    size_t nh = json ? 0 : 1;
    for (size_t k = 0; k < ntrace; k++)
        h[nh++] = trace[k];
    td_event ev = {.key = key_bytes(en.key),
                   .key_len = en.key.n,
                   .value = val.p ? (const void *)val.p : "",
                   .value_len = val.len,
                   .headers = nh ? h : NULL,
                   .header_count = nh,
                   .timestamp_ms = td_wall_ms(),
                   .partition = s.pi};
    entity_append(rc, w, key, &s, &ev, cond ? &expected : NULL, &en);
out:
    td_buf_free(&val);
    broker_topic_release(s.ref);
    free(rest);
}

/* ---------------------------------------------------------------------------------------------
 * XKEYRANGE, XKEYVERSION
 */
/* The entity's events from offset from while their ID is <= hi, at most max (0: all), as
 * resp_read_entries writes entries (entries XDEL removed are skipped, as XRANGE skips them). */
static int key_entries(rconn *rc, const sref *s, td_slice entity, int64_t from, td_sid hi,
                       size_t max, td_buf *b, size_t *n)
{
    resp_w w = {b, rc->proto, false};
    *n = 0;
    int64_t hw = broker_part_high_watermark(s->p);
    int64_t *del = NULL;
    size_t ndel = 0, d = 0;
    xstream xs = resp_xstream(s);
    int r = from < hw ? xstream_deleted(rc->s->e, &xs, from, hw, &del, &ndel, NULL) : 0;
    if (r)
        return r;
    td_iter *it;
    r = td_iter_open_key(rc->s->e, broker_topic_name(s->ref), key_bytes(entity), entity.n, s->pi,
                         from, &it);
    if (r) {
        free(del);
        return r;
    }
    td_event ev;
    while ((max == 0 || *n < max) && (r = td_iter_next(it, &ev)) == 1) {
        if (ev.offset >= hw) /* appended since: the reply ends where it began */
            break;
        while (d < ndel && del[d] < ev.offset)
            d++;
        if (d < ndel && del[d] == ev.offset)
            continue;
        td_sid id;
        if ((r = broker_stream_id(s->p, ev.offset, &id, NULL)) != 0)
            break;
        if (td_sid_cmp(id, hi) > 0) {
            r = 0;
            break;
        }
        if ((r = resp_w_entry(&w, id, &ev)) != 0)
            break;
        (*n)++;
        if (*n > 1 && b->len > rc->s->cfg.max_reply) {
            r = resp_reply_too_big(rc);
            break;
        }
    }
    td_iter_close(it);
    free(del);
    if (w.oom)
        return -ENOMEM;
    return r < 0 ? r : 0;
}

/* XKEYRANGE key entity start end [COUNT n] */
void resp_cmd_xkeyrange(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    td_sid lo, hi;
    long long count;
    if (!resp_range_args(w, argv[3], argv[4], argv + 5, argc - 5, &lo, &hi, &count))
        return;
    sref s;
    int o = entity_open(rc, w, argv[1], argv[2], false, &s);
    if (o == 0)
        resp_w_array(w, 0);
    if (o != 1)
        return;
    int64_t v;
    int r =
        td_key_version(rc->s->e, broker_topic_name(s.ref), key_bytes(argv[2]), argv[2].n, s.pi, &v);
    if (r == TD_EUNSUPPORTED) {
        reply_no_index(w, &s, "XKEYRANGE");
    } else if (r) {
        resp_reply_engine_error(w, r);
    } else if (count == 0 || td_sid_cmp(lo, hi) > 0 || v < 0) {
        resp_w_array(w, 0);
    } else {
        int64_t from;
        broker_stream_seek(s.p, lo, broker_part_log_start(s.p), INT64_MAX, &from);
        td_buf b;
        td_buf_init(&b);
        size_t n = 0;
        r = key_entries(rc, &s, argv[2], from, hi, count < 0 ? 0 : (size_t)count, &b, &n);
        if (r) {
            resp_reply_engine_error(w, r);
        } else {
            resp_w_array(w, n);
            td_buf_append(w->b, b.p, b.len);
        }
        td_buf_free(&b);
    }
    broker_topic_release(s.ref);
}

/* XKEYVERSION key entity */
void resp_cmd_xkeyversion(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)argc;
    sref s;
    int o = entity_open(rc, w, argv[1], argv[2], false, &s);
    if (o == 0)
        resp_w_null(w);
    if (o != 1)
        return;
    int64_t v;
    td_sid id;
    int r =
        td_key_version(rc->s->e, broker_topic_name(s.ref), key_bytes(argv[2]), argv[2].n, s.pi, &v);
    if (r == TD_EUNSUPPORTED)
        reply_no_index(w, &s, "XKEYVERSION");
    else if (r)
        resp_reply_engine_error(w, r);
    else if (v < 0)
        resp_w_null(w);
    else if ((r = broker_stream_id(s.p, v, &id, NULL)) != 0)
        resp_reply_engine_error(w, r);
    else
        resp_w_id(w, id);
    broker_topic_release(s.ref);
}
