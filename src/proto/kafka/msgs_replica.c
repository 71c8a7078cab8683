/*
 * msgs_replica.c: the Kafka messages one broker sends another to replicate (Kafka's replica
 * fetcher: Fetch with a replica id, OffsetForLeaderEpoch) and the decoders of their answers,
 * plus the tagged fields a leader needs to read and write in Fetch. Layouts are from Kafka's
 * JSON message definitions (FetchRequest.json, FetchResponse.json,
 * OffsetForLeaderEpochRequest.json and OffsetForLeaderEpochResponse.json); each function names
 * the versions that carry each field, as msgs.c does. Pure, like the rest of the codec.
 */
#include <string.h>

#include "proto/kafka/kafka.h"

/* ---------------------------------------------------------------------------------------------
 * Headers
 */
/* The APIs a broker sends without serving them, with their first flexible version. */
static const struct {
    int16_t key, flexible;
} client_only[] = {
    {KAFKA_OFFSET_FOR_LEADER_EPOCH, 4},
};

/* -1 if the key's flexible versions are not known here. */
static int client_first_flexible(int16_t key)
{
    const kafka_api *a = kafka_api_find(key);
    if (a)
        return a->flexible;
    for (size_t i = 0; i < TD_ARRAY_LEN(client_only); i++)
        if (client_only[i].key == key)
            return client_only[i].flexible;
    return -1;
}

/* Unlike kafka_is_flexible, a version above the range this broker serves is still flexible:
 * the broker asked may be newer, and a flexible version is never followed by a classic one. */
bool kafka_client_is_flexible(int16_t key, int16_t version)
{
    int first = client_first_flexible(key);
    return first >= 0 && version >= first;
}

/*
 * Request header v1: api_key int16, api_version int16, correlation_id int32, client_id
 * nullable string (classic even in v2); v2 adds tagged fields.
 */
int kafka_encode_request_header(kafka_out *o, int16_t api_key, int16_t api_version,
                                int32_t correlation_id, const char *client_id)
{
    if (client_first_flexible(api_key) < 0)
        return TD_EINVAL;
    o->flexible = false;
    ko_i32(o, 0); /* size, patched by ko_end */
    ko_i16(o, api_key);
    ko_i16(o, api_version);
    ko_i32(o, correlation_id);
    ko_string(o, client_id);
    o->flexible = kafka_client_is_flexible(api_key, api_version);
    ko_tags(o);
    return o->err;
}

/* Response header v0: correlation_id int32; v1 adds tagged fields (ApiVersions: always v0). */
int kafka_decode_response_header(kafka_reader *r, int16_t api_key, int16_t api_version,
                                 int32_t *correlation_id)
{
    bool flexible = kafka_client_is_flexible(api_key, api_version);
    r->flexible = false;
    *correlation_id = kr_i32(r);
    r->flexible = flexible;
    if (api_key != KAFKA_API_VERSIONS)
        kr_tags(r);
    return r->err;
}

/* ---------------------------------------------------------------------------------------------
 * Tagged fields
 */
int kr_tags_each(kafka_reader *r, kafka_tag_fn fn, void *arg)
{
    if (!r->flexible)
        return r->err;
    uint32_t n = kr_uvarint(r);
    for (uint32_t i = 0; i < n && !r->err; i++) {
        uint32_t tag = kr_uvarint(r);
        uint32_t size = kr_uvarint(r);
        if (r->err)
            break;
        if (size > r->n - r->off) {
            r->err = TD_EPROTO;
            break;
        }
        kafka_reader payload;
        kr_init(&payload, r->p + r->off, size, r->arena);
        payload.flexible = true;
        r->off += size;
        int rc = fn ? fn(&payload, tag, arg) : 0;
        if (rc == 0)
            rc = payload.err;
        if (rc)
            r->err = rc;
    }
    return r->err;
}

/* Fetch request v15+, tag 1: ReplicaState {replica_id int32, replica_epoch int64}. */
static int fetch_req_tag(kafka_reader *t, uint32_t tag, void *arg)
{
    kafka_fetch_req *q = arg;
    if (tag != 1)
        return 0;
    q->replica_id = kr_i32(t);
    q->replica_epoch = kr_i64(t);
    kr_tags(t);
    return t->err;
}

void kafka_decode_fetch_req_tags(kafka_reader *r, int16_t v, kafka_fetch_req *q)
{
    kr_tags_each(r, v >= 15 ? fetch_req_tag : NULL, q);
}

/*
 * Fetch response partition, v12+: tag 0 DivergingEpoch {epoch int32, end_offset int64},
 * tag 1 CurrentLeader {leader_id int32, leader_epoch int32}, tag 2 SnapshotId (never sent
 * here; skipped when read). Each tag's payload is the struct in the flexible encoding, so it
 * ends with its own (empty) tagged fields. Tags go in ascending order.
 */
void kafka_encode_fetch_part_tags(kafka_out *o, const kafka_fetch_part_resp *p)
{
    if (!o->flexible)
        return;
    bool diverging = p->diverging_epoch >= 0;
    bool leader = p->current_leader_id >= 0;
    ko_uvarint(o, (uint32_t)diverging + (uint32_t)leader);
    if (diverging) {
        ko_uvarint(o, 0);
        ko_uvarint(o, 4 + 8 + 1);
        ko_i32(o, p->diverging_epoch);
        ko_i64(o, p->diverging_end_offset);
        ko_tags(o);
    }
    if (leader) {
        ko_uvarint(o, 1);
        ko_uvarint(o, 4 + 4 + 1);
        ko_i32(o, p->current_leader_id);
        ko_i32(o, p->current_leader_epoch);
        ko_tags(o);
    }
}

static int fetch_part_tag(kafka_reader *t, uint32_t tag, void *arg)
{
    kafka_fetch_part_resp *p = arg;
    if (tag == 0) {
        p->diverging_epoch = kr_i32(t);
        p->diverging_end_offset = kr_i64(t);
        kr_tags(t);
    } else if (tag == 1) {
        p->current_leader_id = kr_i32(t);
        p->current_leader_epoch = kr_i32(t);
        kr_tags(t);
    }
    return t->err;
}

/* ---------------------------------------------------------------------------------------------
 * Fetch v4-17, the follower's side (the fields are listed at kafka_decode_fetch in msgs.c)
 */
static void encode_fetch_part(kafka_out *o, int16_t v, const kafka_fetch_part *p)
{
    ko_i32(o, p->partition);
    if (v >= 9)
        ko_i32(o, p->current_leader_epoch);
    ko_i64(o, p->fetch_offset);
    if (v >= 12)
        ko_i32(o, p->last_fetched_epoch);
    if (v >= 5)
        ko_i64(o, p->log_start_offset);
    ko_i32(o, p->max_bytes);
    ko_tags(o); /* v17's ReplicaDirectoryId (tag 0) is not sent */
}

void kafka_encode_fetch_req(kafka_out *o, int16_t v, const kafka_fetch_req *q)
{
    if (v < 4 || v > 17) {
        o->err = o->err ? o->err : TD_EINVAL;
        return;
    }
    o->flexible = kafka_client_is_flexible(KAFKA_FETCH, v);
    if (v <= 14)
        ko_i32(o, q->replica_id);
    ko_i32(o, q->max_wait_ms);
    ko_i32(o, q->min_bytes);
    ko_i32(o, q->max_bytes);
    ko_i8(o, q->isolation_level);
    if (v >= 7) {
        ko_i32(o, q->session_id);
        ko_i32(o, q->session_epoch);
    }
    ko_array(o, q->ntopics);
    for (int32_t i = 0; i < q->ntopics; i++) {
        const kafka_fetch_topic *t = &q->topics[i];
        if (v >= 13)
            ko_uuid(o, t->topic_id);
        else
            ko_string_nn(o, t->name);
        ko_array(o, t->nparts);
        for (int32_t k = 0; k < t->nparts; k++)
            encode_fetch_part(o, v, &t->parts[k]);
        ko_tags(o);
    }
    if (v >= 7)
        ko_array(o, 0); /* forgotten_topics_data: a full fetch forgets nothing */
    if (v >= 11)
        ko_string(o, ""); /* rack_id */
    /* v15+: ReplicaState (tag 1), written as Kafka writes a tagged struct: when it differs
     * from its default (-1, -1), so a consumer's request carries none. */
    if (v >= 15 && (q->replica_id != -1 || q->replica_epoch != -1)) {
        ko_uvarint(o, 1);
        ko_uvarint(o, 1);
        ko_uvarint(o, 4 + 8 + 1);
        ko_i32(o, q->replica_id);
        ko_i64(o, q->replica_epoch);
        ko_tags(o);
    } else {
        ko_tags(o);
    }
}

static void decode_fetch_part_resp(kafka_reader *r, int16_t v, kafka_fetch_part_resp *p)
{
    p->fd = -1;
    p->diverging_epoch = -1;
    p->diverging_end_offset = -1;
    p->current_leader_id = -1;
    p->current_leader_epoch = -1;
    p->partition = kr_i32(r);
    p->error_code = kr_i16(r);
    p->high_watermark = kr_i64(r);
    p->last_stable_offset = kr_i64(r);
    p->log_start_offset = v >= 5 ? kr_i64(r) : -1;
    int32_t na = kr_array(r);
    if (na < 0 || r->err) {
        p->naborted = -1;
    } else {
        kafka_fetch_aborted *a = kr_alloc(r, (size_t)na, sizeof(*a));
        for (int32_t i = 0; i < na && !r->err; i++) {
            a[i].producer_id = kr_i64(r);
            a[i].first_offset = kr_i64(r);
            kr_tags(r);
        }
        p->aborted = a;
        p->naborted = r->err ? 0 : na;
    }
    if (v >= 11)
        kr_i32(r); /* preferred_read_replica: a follower reads from the leader */
    int32_t len;
    const uint8_t *records = kr_bytes(r, &len);
    p->mem = len >= 0 ? records : NULL;
    p->len = len > 0 ? len : 0;
    kr_tags_each(r, fetch_part_tag, p);
}

int kafka_decode_fetch_resp(kafka_reader *r, int16_t v, kafka_fetch_resp *out)
{
    memset(out, 0, sizeof(*out));
    if (v < 4 || v > 17) {
        r->err = r->err ? r->err : TD_EPROTO;
        return r->err;
    }
    r->flexible = kafka_client_is_flexible(KAFKA_FETCH, v);
    out->throttle_time_ms = kr_i32(r);
    if (v >= 7) {
        out->error_code = kr_i16(r);
        out->session_id = kr_i32(r);
    }
    out->topics = kr_array_alloc(r, sizeof(*out->topics), &out->ntopics);
    for (int32_t i = 0; i < out->ntopics && !r->err; i++) {
        kafka_fetch_topic_resp *t = &out->topics[i];
        if (v >= 13)
            kr_uuid(r, t->topic_id);
        else
            t->name = kr_string(r);
        t->parts = kr_array_alloc(r, sizeof(*t->parts), &t->nparts);
        for (int32_t k = 0; k < t->nparts && !r->err; k++)
            decode_fetch_part_resp(r, v, &t->parts[k]);
        kr_tags(r);
    }
    kr_tags(r); /* v16+: NodeEndpoints (tag 0), not needed by a follower */
    return r->err;
}

/* ---------------------------------------------------------------------------------------------
 * OffsetForLeaderEpoch v0-4 (fields in kafka.h)
 */
void kafka_encode_offset_for_leader_epoch_req(kafka_out *o, int16_t v,
                                              const kafka_leader_epoch_req *q)
{
    o->flexible = kafka_client_is_flexible(KAFKA_OFFSET_FOR_LEADER_EPOCH, v);
    if (v >= 3)
        ko_i32(o, q->replica_id);
    ko_array(o, q->ntopics);
    for (int32_t i = 0; i < q->ntopics; i++) {
        const kafka_leader_epoch_topic *t = &q->topics[i];
        ko_string_nn(o, t->name);
        ko_array(o, t->nparts);
        for (int32_t k = 0; k < t->nparts; k++) {
            const kafka_leader_epoch_part *p = &t->parts[k];
            ko_i32(o, p->partition);
            if (v >= 2)
                ko_i32(o, p->current_leader_epoch);
            ko_i32(o, p->leader_epoch);
            ko_tags(o);
        }
        ko_tags(o);
    }
    ko_tags(o);
}

int kafka_decode_offset_for_leader_epoch_req(kafka_reader *r, int16_t v, kafka_leader_epoch_req *q)
{
    memset(q, 0, sizeof(*q));
    if (v < 0 || v > 4) {
        r->err = r->err ? r->err : TD_EPROTO;
        return r->err;
    }
    r->flexible = kafka_client_is_flexible(KAFKA_OFFSET_FOR_LEADER_EPOCH, v);
    q->replica_id = v >= 3 ? kr_i32(r) : -2;
    q->topics = kr_array_alloc(r, sizeof(*q->topics), &q->ntopics);
    for (int32_t i = 0; i < q->ntopics && !r->err; i++) {
        kafka_leader_epoch_topic *t = &q->topics[i];
        t->name = kr_string(r);
        if (!t->name)
            r->err = r->err ? r->err : TD_EPROTO; /* not nullable */
        t->parts = kr_array_alloc(r, sizeof(*t->parts), &t->nparts);
        for (int32_t k = 0; k < t->nparts && !r->err; k++) {
            kafka_leader_epoch_part *p = &t->parts[k];
            p->partition = kr_i32(r);
            p->current_leader_epoch = v >= 2 ? kr_i32(r) : -1;
            p->leader_epoch = kr_i32(r);
            kr_tags(r);
        }
        kr_tags(r);
    }
    kr_tags(r);
    return r->err;
}

void kafka_encode_offset_for_leader_epoch_resp(kafka_out *o, int16_t v,
                                               const kafka_leader_epoch_resp *m)
{
    o->flexible = kafka_client_is_flexible(KAFKA_OFFSET_FOR_LEADER_EPOCH, v);
    if (v >= 2)
        ko_i32(o, m->throttle_time_ms);
    ko_array(o, m->ntopics);
    for (int32_t i = 0; i < m->ntopics; i++) {
        const kafka_leader_epoch_topic_resp *t = &m->topics[i];
        ko_string_nn(o, t->name);
        ko_array(o, t->nparts);
        for (int32_t k = 0; k < t->nparts; k++) {
            const kafka_leader_epoch_part_resp *p = &t->parts[k];
            ko_i16(o, p->error_code);
            ko_i32(o, p->partition);
            if (v >= 1)
                ko_i32(o, p->leader_epoch);
            ko_i64(o, p->end_offset);
            ko_tags(o);
        }
        ko_tags(o);
    }
    ko_tags(o);
}

int kafka_decode_offset_for_leader_epoch_resp(kafka_reader *r, int16_t v,
                                              kafka_leader_epoch_resp *m)
{
    memset(m, 0, sizeof(*m));
    if (v < 0 || v > 4) {
        r->err = r->err ? r->err : TD_EPROTO;
        return r->err;
    }
    r->flexible = kafka_client_is_flexible(KAFKA_OFFSET_FOR_LEADER_EPOCH, v);
    if (v >= 2)
        m->throttle_time_ms = kr_i32(r);
    m->topics = kr_array_alloc(r, sizeof(*m->topics), &m->ntopics);
    for (int32_t i = 0; i < m->ntopics && !r->err; i++) {
        kafka_leader_epoch_topic_resp *t = &m->topics[i];
        t->name = kr_string(r);
        if (!t->name)
            r->err = r->err ? r->err : TD_EPROTO;
        t->parts = kr_array_alloc(r, sizeof(*t->parts), &t->nparts);
        for (int32_t k = 0; k < t->nparts && !r->err; k++) {
            kafka_leader_epoch_part_resp *p = &t->parts[k];
            p->error_code = kr_i16(r);
            p->partition = kr_i32(r);
            p->leader_epoch = v >= 1 ? kr_i32(r) : -1;
            p->end_offset = kr_i64(r);
            kr_tags(r);
        }
        kr_tags(r);
    }
    kr_tags(r);
    return r->err;
}
