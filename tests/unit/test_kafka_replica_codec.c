/* Unit tests for the replication codec (proto/kafka/msgs_replica.c): the follower's Fetch
 * request read by the leader's decoder, the leader's Fetch response read by the follower's,
 * OffsetForLeaderEpoch both ways, one request checked byte for byte against Kafka's schema,
 * every truncation of every message refused, and the leader's Fetch response without the new
 * tags unchanged byte for byte. */
#include "proto/kafka/kafka.h"
#include "tidings.h"
#include "test.h"

/* Decodes a whole frame body (after the size); 0 only if it decodes and nothing is left. */
typedef int (*frame_fn)(const uint8_t *p, size_t n, int16_t v, td_arena *a, void *out);

/* The whole body decodes, and every proper prefix of it fails; the decodes go into out
 * (of `size` bytes) and their arenas are freed each time. */
static void check_truncations(const uint8_t *p, size_t n, int16_t v, frame_fn fn, size_t size)
{
    void *out = malloc(size);
    ASSERT(out);
    for (size_t k = 0; k <= n; k++) {
        td_arena a;
        td_arena_init(&a);
        int rc = fn(p, k, v, &a, out);
        if (k == n)
            ASSERT_OK(rc);
        else
            ASSERT_NE(rc, 0);
        td_arena_free(&a);
    }
    free(out);
}

/* The leader's side of a Fetch request: the request header, then the body. */
static int server_fetch(const uint8_t *p, size_t n, int16_t v, td_arena *a, void *out)
{
    kafka_reader r;
    kr_init(&r, p, n, a);
    kafka_header h;
    int rc = kafka_decode_header(&r, &h);
    if (rc == 0 && (h.api_key != KAFKA_FETCH || h.api_version != v))
        rc = -1;
    if (rc == 0)
        rc = kafka_decode_fetch(&r, v, out);
    return rc ? rc : r.off == n ? 0 : -1;
}

/* The follower's side of a Fetch response: the response header, then the body. */
static int client_fetch(const uint8_t *p, size_t n, int16_t v, td_arena *a, void *out)
{
    kafka_reader r;
    kr_init(&r, p, n, a);
    int32_t corr;
    int rc = kafka_decode_response_header(&r, KAFKA_FETCH, v, &corr);
    if (rc == 0)
        rc = kafka_decode_fetch_resp(&r, v, out);
    return rc ? rc : r.off == n && corr == 77 ? 0 : -1;
}

/* OffsetForLeaderEpoch bodies (no header: the server does not know the API yet). */
static int body_leader_epoch_req(const uint8_t *p, size_t n, int16_t v, td_arena *a, void *out)
{
    kafka_reader r;
    kr_init(&r, p, n, a);
    int rc = kafka_decode_offset_for_leader_epoch_req(&r, v, out);
    return rc ? rc : r.off == n ? 0 : -1;
}

static int body_leader_epoch_resp(const uint8_t *p, size_t n, int16_t v, td_arena *a, void *out)
{
    kafka_reader r;
    kr_init(&r, p, n, a);
    int rc = kafka_decode_offset_for_leader_epoch_resp(&r, v, out);
    return rc ? rc : r.off == n ? 0 : -1;
}

static void test_request_header(void)
{
    /* Fetch v11 is header v1, v12 header v2 (one byte of tags more); OffsetForLeaderEpoch,
     * which this broker does not serve, is known too (v4 flexible). */
    for (int16_t v = 11; v <= 12; v++) {
        kafka_out o;
        ko_init(&o);
        ASSERT_OK(kafka_encode_request_header(&o, KAFKA_FETCH, v, 9, "follower-2"));
        ko_end(&o);
        ASSERT_EQ(o.mem.len, 4 + 2 + 2 + 4 + 2 + 10 + (v >= 12));
        size_t frame;
        ASSERT_OK(kafka_frame(o.mem.p, o.mem.len, KAFKA_MAX_FRAME, &frame));
        ASSERT_EQ(frame, o.mem.len);
        td_arena a;
        td_arena_init(&a);
        kafka_reader r;
        kr_init(&r, o.mem.p + 4, o.mem.len - 4, &a);
        kafka_header h;
        ASSERT_OK(kafka_decode_header(&r, &h));
        ASSERT_EQ(h.api_key, KAFKA_FETCH);
        ASSERT_EQ(h.api_version, v);
        ASSERT_EQ(h.correlation_id, 9);
        ASSERT_STR_EQ(h.client_id, "follower-2");
        ASSERT_EQ(h.body_off, o.mem.len - 4);
        td_arena_free(&a);
        ko_free(&o);
    }
    ASSERT(!kafka_client_is_flexible(KAFKA_OFFSET_FOR_LEADER_EPOCH, 3));
    ASSERT(kafka_client_is_flexible(KAFKA_OFFSET_FOR_LEADER_EPOCH, 4));
    ASSERT(kafka_client_is_flexible(KAFKA_FETCH, 18)); /* past the range served */
    ASSERT(!kafka_client_is_flexible(KAFKA_SASL_HANDSHAKE, 1));
    kafka_out o;
    ko_init(&o);
    ASSERT_OK(kafka_encode_request_header(&o, KAFKA_OFFSET_FOR_LEADER_EPOCH, 4, 1, NULL));
    ASSERT_EQ(o.mem.len, 4 + 8 + 2 + 1); /* null client_id, tags */
    ASSERT_MEM_EQ(o.mem.p + 4, "\x00\x17\x00\x04\x00\x00\x00\x01\xff\xff\x00", 11);
    ko_free(&o);
    ko_init(&o);
    ASSERT_EQ(kafka_encode_request_header(&o, 1000, 0, 1, "x"), TD_EINVAL);
    ko_free(&o);
}

static void test_response_header(void)
{
    const struct {
        int16_t key, v;
        size_t len;
    } cases[] = {
        {KAFKA_FETCH, 11, 4},
        {KAFKA_FETCH, 12, 5},
        {KAFKA_API_VERSIONS, 3, 4}, /* always v0 */
        {KAFKA_OFFSET_FOR_LEADER_EPOCH, 3, 4},
        {KAFKA_OFFSET_FOR_LEADER_EPOCH, 4, 5},
    };
    for (size_t i = 0; i < TD_ARRAY_LEN(cases); i++) {
        kafka_out o;
        ko_init(&o);
        ko_i32(&o, 0);
        ko_i32(&o, 1234);
        if (cases[i].len == 5)
            ko_uvarint(&o, 0);
        ko_end(&o);
        td_arena a;
        td_arena_init(&a);
        kafka_reader r;
        kr_init(&r, o.mem.p + 4, o.mem.len - 4, &a);
        int32_t corr = 0;
        ASSERT_OK(kafka_decode_response_header(&r, cases[i].key, cases[i].v, &corr));
        ASSERT_EQ(corr, 1234);
        ASSERT_EQ(r.off, cases[i].len);
        kr_init(&r, o.mem.p + 4, cases[i].len - 1, &a);
        ASSERT_NE(kafka_decode_response_header(&r, cases[i].key, cases[i].v, &corr), 0);
        td_arena_free(&a);
        ko_free(&o);
    }
}

/* A follower's request: two topics of one and two partitions. */
static kafka_fetch_part req_parts[3] = {
    {.partition = 0,
     .current_leader_epoch = 7,
     .fetch_offset = 100,
     .last_fetched_epoch = 6,
     .log_start_offset = 10,
     .max_bytes = 1 << 20},
    {.partition = 1,
     .current_leader_epoch = 7,
     .fetch_offset = 5,
     .last_fetched_epoch = 2,
     .log_start_offset = 0,
     .max_bytes = 4096},
    {.partition = 4,
     .current_leader_epoch = 0,
     .fetch_offset = 0,
     .last_fetched_epoch = -1,
     .log_start_offset = 0,
     .max_bytes = 1},
};

static void fill_fetch_req(kafka_fetch_req *q, kafka_fetch_topic t[2])
{
    memset(t, 0, 2 * sizeof(*t));
    t[0] = (kafka_fetch_topic){.name = "orders", .nparts = 1, .parts = &req_parts[0]};
    t[1] = (kafka_fetch_topic){.name = "payments.eu", .nparts = 2, .parts = &req_parts[1]};
    memset(t[0].topic_id, 0xA1, 16);
    memset(t[1].topic_id, 0xB2, 16);
    *q = (kafka_fetch_req){.replica_id = 3,
                           .replica_epoch = 42,
                           .max_wait_ms = 500,
                           .min_bytes = 1,
                           .max_bytes = 50 << 20,
                           .isolation_level = 0,
                           .session_id = 0,
                           .session_epoch = -1,
                           .ntopics = 2,
                           .topics = t};
}

static void encode_fetch_req_frame(kafka_out *o, int16_t v, const kafka_fetch_req *q)
{
    ko_init(o);
    ASSERT_OK(kafka_encode_request_header(o, KAFKA_FETCH, v, 5, "replica-3"));
    kafka_encode_fetch_req(o, v, q);
    ko_end(o);
    ASSERT_OK(o->err);
}

static void test_fetch_request_roundtrip(void)
{
    for (int16_t v = 4; v <= 17; v++) {
        kafka_fetch_topic t[2];
        kafka_fetch_req q;
        fill_fetch_req(&q, t);
        kafka_out o;
        encode_fetch_req_frame(&o, v, &q);
        td_arena a;
        td_arena_init(&a);
        kafka_fetch_req d;
        ASSERT_OK(server_fetch(o.mem.p + 4, o.mem.len - 4, v, &a, &d));
        ASSERT_EQ(d.replica_id, 3); /* in the body to v14, in ReplicaState from v15 */
        ASSERT_EQ(d.replica_epoch, v >= 15 ? 42 : -1);
        ASSERT_EQ(d.max_wait_ms, 500);
        ASSERT_EQ(d.min_bytes, 1);
        ASSERT_EQ(d.max_bytes, 50 << 20);
        ASSERT_EQ(d.session_id, 0);
        ASSERT_EQ(d.session_epoch, -1);
        ASSERT_EQ(d.ntopics, 2);
        for (int i = 0; i < 2; i++) {
            if (v >= 13) {
                ASSERT(d.topics[i].name == NULL);
                ASSERT_MEM_EQ(d.topics[i].topic_id, t[i].topic_id, 16);
            } else {
                ASSERT_STR_EQ(d.topics[i].name, t[i].name);
            }
            ASSERT_EQ(d.topics[i].nparts, t[i].nparts);
            for (int k = 0; k < t[i].nparts; k++) {
                const kafka_fetch_part *w = &t[i].parts[k], *g = &d.topics[i].parts[k];
                ASSERT_EQ(g->partition, w->partition);
                ASSERT_EQ(g->current_leader_epoch, v >= 9 ? w->current_leader_epoch : -1);
                ASSERT_EQ(g->fetch_offset, w->fetch_offset);
                ASSERT_EQ(g->last_fetched_epoch, v >= 12 ? w->last_fetched_epoch : -1);
                ASSERT_EQ(g->log_start_offset, v >= 5 ? w->log_start_offset : -1);
                ASSERT_EQ(g->max_bytes, w->max_bytes);
            }
        }
        td_arena_free(&a);
        check_truncations(o.mem.p + 4, o.mem.len - 4, v, server_fetch, sizeof(d));
        ko_free(&o);

        /* A consumer's request (replica -1, epoch -1) carries no ReplicaState. */
        q.replica_id = -1;
        q.replica_epoch = -1;
        encode_fetch_req_frame(&o, v, &q);
        td_arena_init(&a);
        ASSERT_OK(server_fetch(o.mem.p + 4, o.mem.len - 4, v, &a, &d));
        ASSERT_EQ(d.replica_id, -1);
        ASSERT_EQ(d.replica_epoch, -1);
        if (v >= 12)
            ASSERT_EQ(o.mem.p[o.mem.len - 1], 0); /* no tagged fields */
        td_arena_free(&a);
        ko_free(&o);
    }
    /* Broker 0 at epoch -1 is still a replica: ReplicaState differs from its default. */
    kafka_fetch_topic t[2];
    kafka_fetch_req q;
    fill_fetch_req(&q, t);
    q.replica_id = 0;
    q.replica_epoch = -1;
    kafka_out o;
    encode_fetch_req_frame(&o, 15, &q);
    td_arena a;
    td_arena_init(&a);
    kafka_fetch_req d;
    ASSERT_OK(server_fetch(o.mem.p + 4, o.mem.len - 4, 15, &a, &d));
    ASSERT_EQ(d.replica_id, 0);
    ASSERT_EQ(d.replica_epoch, -1);
    td_arena_free(&a);
    ko_free(&o);
    /* Versions outside 4-17 are refused. */
    ko_init(&o);
    kafka_encode_fetch_req(&o, 3, &q);
    ASSERT_EQ(o.err, TD_EINVAL);
    ko_free(&o);
}

/* The request's tagged fields as another broker may send them at v15: ClusterId (tag 0)
 * before ReplicaState (tag 1); at v14 a ReplicaState tag means nothing and is skipped. */
static void test_fetch_request_tags_from_others(void)
{
    for (int16_t v = 14; v <= 15; v++) {
        kafka_out o;
        ko_init(&o);
        o.flexible = true;
        if (v <= 14)
            ko_i32(&o, 8); /* replica_id */
        ko_i32(&o, 500);   /* max_wait_ms */
        ko_i32(&o, 1);     /* min_bytes */
        ko_i32(&o, 1000);  /* max_bytes */
        ko_i8(&o, 0);      /* isolation_level */
        ko_i32(&o, 0);     /* session_id */
        ko_i32(&o, -1);    /* session_epoch */
        ko_array(&o, 0);   /* topics */
        ko_array(&o, 0);   /* forgotten_topics_data */
        ko_string(&o, ""); /* rack_id */
        ko_uvarint(&o, 2); /* tagged fields: */
        ko_uvarint(&o, 0); /*   ClusterId "c1" */
        ko_uvarint(&o, 3);
        ko_string(&o, "c1");
        ko_uvarint(&o, 1); /*   ReplicaState */
        ko_uvarint(&o, 13);
        ko_i32(&o, 4);
        ko_i64(&o, 1234567890123);
        ko_tags(&o);
        ASSERT_OK(o.err);
        td_arena a;
        td_arena_init(&a);
        kafka_reader r;
        kr_init(&r, o.mem.p, o.mem.len, &a);
        kafka_fetch_req d;
        ASSERT_OK(kafka_decode_fetch(&r, v, &d));
        ASSERT_EQ(r.off, o.mem.len);
        ASSERT_EQ(d.replica_id, v >= 15 ? 4 : 8);
        ASSERT_EQ(d.replica_epoch, v >= 15 ? 1234567890123 : -1);
        /* A ReplicaState too short for its struct (size 12) is malformed. */
        ASSERT_EQ(o.mem.p[o.mem.len - 14], 13);
        o.mem.p[o.mem.len - 14] = 12;
        kr_init(&r, o.mem.p, o.mem.len, &a);
        if (v >= 15)
            ASSERT_NE(kafka_decode_fetch(&r, v, &d), 0);
        td_arena_free(&a);
        ko_free(&o);
    }
}

/*
 * Fetch v12 byte for byte, from FetchRequest.json (flexible from v12: compact strings and
 * arrays, length + 1 as a uvarint; every struct ends with its tagged fields, here none).
 */
static void test_fetch_v12_bytes(void)
{
    kafka_fetch_part p = {.partition = 3,
                          .current_leader_epoch = 5,
                          .fetch_offset = 100,
                          .last_fetched_epoch = 4,
                          .log_start_offset = 10,
                          .max_bytes = 65536};
    kafka_fetch_topic t = {.name = "t", .nparts = 1, .parts = &p};
    kafka_fetch_req q = {.replica_id = 2,
                         .replica_epoch = 9, /* v15+ only: not in v12 */
                         .max_wait_ms = 500,
                         .min_bytes = 1,
                         .max_bytes = 1048576,
                         .isolation_level = 1,
                         .session_id = 0,
                         .session_epoch = -1,
                         .ntopics = 1,
                         .topics = &t};
    static const uint8_t want[] = {
        0x00, 0x00, 0x00, 0x4e, /* size: the 78 bytes that follow */
        /* request header v2 */
        0x00, 0x01,             /* api_key 1 (Fetch) */
        0x00, 0x0c,             /* api_version 12 */
        0x00, 0x00, 0x00, 0x07, /* correlation_id 7 */
        0x00, 0x01, 'f',        /* client_id "f": int16 length, never compact */
        0x00,                   /* header tagged fields: none */
        /* FetchRequest v12 */
        0x00, 0x00, 0x00, 0x02,   /* ReplicaId 2 (v0-14) */
        0x00, 0x00, 0x01, 0xf4,   /* MaxWaitMs 500 */
        0x00, 0x00, 0x00, 0x01,   /* MinBytes 1 */
        0x00, 0x10, 0x00, 0x00,   /* MaxBytes 1 MiB (v3+) */
        0x01,                     /* IsolationLevel 1 (v4+) */
        0x00, 0x00, 0x00, 0x00,   /* SessionId 0 (v7+) */
        0xff, 0xff, 0xff, 0xff,   /* SessionEpoch -1 (v7+) */
        0x02,                     /* Topics: 1 element */
        0x02, 't',                /*   Topic "t" (v0-12) */
        0x02,                     /*   Partitions: 1 element */
        0x00, 0x00, 0x00, 0x03,   /*     Partition 3 */
        0x00, 0x00, 0x00, 0x05,   /*     CurrentLeaderEpoch 5 (v9+) */
        0, 0, 0, 0, 0, 0, 0, 100, /*     FetchOffset 100 */
        0x00, 0x00, 0x00, 0x04,   /*     LastFetchedEpoch 4 (v12+) */
        0, 0, 0, 0, 0, 0, 0, 10,  /*     LogStartOffset 10 (v5+) */
        0x00, 0x01, 0x00, 0x00,   /*     PartitionMaxBytes 65536 */
        0x00,                     /*     partition tagged fields */
        0x00,                     /*   topic tagged fields */
        0x01,                     /* ForgottenTopicsData: 0 elements (v7+) */
        0x01,                     /* RackId "" (v11+) */
        0x00,                     /* tagged fields: none (ClusterId is tag 0) */
    };
    kafka_out o;
    ko_init(&o);
    ASSERT_OK(kafka_encode_request_header(&o, KAFKA_FETCH, 12, 7, "f"));
    kafka_encode_fetch_req(&o, 12, &q);
    ko_end(&o);
    ASSERT_EQ(o.mem.len, sizeof(want));
    ASSERT_MEM_EQ(o.mem.p, want, sizeof(want));
    ko_free(&o);

    /* v15: no ReplicaId in the body; ReplicaState as tag 1 of the request's tagged fields:
     * count 1, tag 1, size 13, replica_id int32, replica_epoch int64, its own tags. */
    ko_init(&o);
    kafka_encode_fetch_req(&o, 15, &q);
    ASSERT_MEM_EQ(o.mem.p, "\x00\x00\x01\xf4", 4);
    static const uint8_t tail[] = {0x01, 0x01, 0x0d, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 9, 0x00};
    ASSERT(o.mem.len > sizeof(tail));
    ASSERT_MEM_EQ(o.mem.p + o.mem.len - sizeof(tail), tail, sizeof(tail));
    ko_free(&o);
}

/* The leader's response: one topic with a partition that has records, aborted transactions,
 * a diverging epoch and a current leader, one that has nothing; a second topic in error. */
static const uint8_t records[] = "not really a record batch, but borrowed all the same";
static const kafka_fetch_aborted aborted[2] = {{1000, 5}, {1001, 17}};

static void fill_fetch_resp(kafka_fetch_resp *m, kafka_fetch_topic_resp t[2],
                            kafka_fetch_part_resp p[3])
{
    memset(p, 0, 3 * sizeof(*p));
    p[0] = (kafka_fetch_part_resp){.partition = 0,
                                   .high_watermark = 120,
                                   .last_stable_offset = 110,
                                   .log_start_offset = 3,
                                   .naborted = 2,
                                   .aborted = aborted,
                                   .fd = -1,
                                   .len = sizeof(records),
                                   .mem = records,
                                   .diverging_epoch = 6,
                                   .diverging_end_offset = 90,
                                   .current_leader_id = 1,
                                   .current_leader_epoch = 8};
    p[1] = (kafka_fetch_part_resp){.partition = 1,
                                   .high_watermark = 7,
                                   .last_stable_offset = 7,
                                   .log_start_offset = 0,
                                   .naborted = -1,
                                   .fd = -1,
                                   .diverging_epoch = -1,
                                   .diverging_end_offset = -1,
                                   .current_leader_id = -1,
                                   .current_leader_epoch = -1};
    p[2] = p[1];
    p[2].partition = 2;
    p[2].error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
    p[2].current_leader_id = 0; /* epoch 0 and leader 0 are values, not absence */
    p[2].current_leader_epoch = 0;
    p[2].diverging_epoch = 0;
    p[2].diverging_end_offset = 0;
    memset(t, 0, 2 * sizeof(*t));
    t[0] = (kafka_fetch_topic_resp){.name = "orders", .nparts = 2, .parts = p};
    t[1] = (kafka_fetch_topic_resp){.name = "gone", .nparts = 1, .parts = p + 2};
    memset(t[0].topic_id, 0xA1, 16);
    memset(t[1].topic_id, 0xC3, 16);
    *m = (kafka_fetch_resp){.throttle_time_ms = 12, .session_id = 0, .ntopics = 2, .topics = t};
}

static void encode_fetch_resp_frame(kafka_out *o, int16_t v, const kafka_fetch_resp *m)
{
    ko_init(o);
    ko_begin(o, 77, kafka_response_header_version(KAFKA_FETCH, v));
    kafka_encode_fetch(o, v, m);
    ko_end(o);
    ASSERT_OK(o->err);
}

static void test_fetch_response_roundtrip(void)
{
    for (int16_t v = 4; v <= 17; v++) {
        kafka_fetch_part_resp p[3];
        kafka_fetch_topic_resp t[2];
        kafka_fetch_resp m;
        fill_fetch_resp(&m, t, p);
        kafka_out o;
        encode_fetch_resp_frame(&o, v, &m);
        td_arena a;
        td_arena_init(&a);
        kafka_fetch_resp d;
        ASSERT_OK(client_fetch(o.mem.p + 4, o.mem.len - 4, v, &a, &d));
        ASSERT_EQ(d.throttle_time_ms, 12);
        ASSERT_EQ(d.ntopics, 2);
        for (int i = 0; i < 2; i++) {
            if (v >= 13)
                ASSERT_MEM_EQ(d.topics[i].topic_id, t[i].topic_id, 16);
            else
                ASSERT_STR_EQ(d.topics[i].name, t[i].name);
            ASSERT_EQ(d.topics[i].nparts, t[i].nparts);
            for (int k = 0; k < t[i].nparts; k++) {
                const kafka_fetch_part_resp *w = &t[i].parts[k], *g = &d.topics[i].parts[k];
                ASSERT_EQ(g->partition, w->partition);
                ASSERT_EQ(g->error_code, w->error_code);
                ASSERT_EQ(g->high_watermark, w->high_watermark);
                ASSERT_EQ(g->last_stable_offset, w->last_stable_offset);
                ASSERT_EQ(g->log_start_offset, v >= 5 ? w->log_start_offset : -1);
                ASSERT_EQ(g->naborted, w->naborted);
                for (int32_t x = 0; x < w->naborted; x++) {
                    ASSERT_EQ(g->aborted[x].producer_id, w->aborted[x].producer_id);
                    ASSERT_EQ(g->aborted[x].first_offset, w->aborted[x].first_offset);
                }
                ASSERT_EQ(g->fd, -1);
                ASSERT_EQ(g->len, w->len);
                if (w->len) {
                    /* borrowed from the frame, not copied */
                    ASSERT(g->mem > o.mem.p && g->mem + g->len <= o.mem.p + o.mem.len);
                    ASSERT_MEM_EQ(g->mem, records, sizeof(records));
                } else {
                    ASSERT(g->mem != NULL); /* empty, not null: what the leader sends */
                }
                bool tags = v >= 12;
                ASSERT_EQ(g->diverging_epoch, tags ? w->diverging_epoch : -1);
                ASSERT_EQ(g->diverging_end_offset, tags ? w->diverging_end_offset : -1);
                ASSERT_EQ(g->current_leader_id, tags ? w->current_leader_id : -1);
                ASSERT_EQ(g->current_leader_epoch, tags ? w->current_leader_epoch : -1);
            }
        }
        td_arena_free(&a);
        check_truncations(o.mem.p + 4, o.mem.len - 4, v, client_fetch, sizeof(d));
        ko_free(&o);
    }
}

/*
 * A response as another broker may send it: null records, the SnapshotId tag (2) and an
 * unknown one (9) in a partition, NodeEndpoints (tag 0, v16+) at the top.
 */
static void test_fetch_response_from_others(void)
{
    kafka_out o;
    ko_init(&o);
    o.flexible = true;
    ko_i32(&o, 0);        /* throttle_time_ms */
    ko_i16(&o, 0);        /* error_code */
    ko_i32(&o, 0);        /* session_id */
    ko_array(&o, 1);      /* responses */
    uint8_t id[16] = {1}; /* topic_id */
    ko_uuid(&o, id);
    ko_array(&o, 1); /* partitions */
    ko_i32(&o, 4);   /* partition_index */
    ko_i16(&o, KERR_OFFSET_OUT_OF_RANGE);
    ko_i64(&o, 10);         /* high_watermark */
    ko_i64(&o, 10);         /* last_stable_offset */
    ko_i64(&o, 2);          /* log_start_offset */
    ko_array(&o, -1);       /* aborted_transactions: null */
    ko_i32(&o, 3);          /* preferred_read_replica */
    ko_bytes(&o, NULL, -1); /* records: null */
    ko_uvarint(&o, 3);      /* tagged fields: */
    ko_uvarint(&o, 1);      /*   CurrentLeader */
    ko_uvarint(&o, 9);
    ko_i32(&o, 2);
    ko_i32(&o, 11);
    ko_tags(&o);
    ko_uvarint(&o, 2); /*   SnapshotId {end_offset int64, epoch int32} */
    ko_uvarint(&o, 13);
    ko_i64(&o, 9);
    ko_i32(&o, 10);
    ko_tags(&o);
    ko_uvarint(&o, 9); /*   something newer */
    ko_uvarint(&o, 3);
    ko_bytes(&o, "ab", 2);
    ko_tags(&o);       /* topic */
    ko_uvarint(&o, 1); /* tagged fields: NodeEndpoints, an empty array */
    ko_uvarint(&o, 0);
    ko_uvarint(&o, 1);
    ko_array(&o, 0);
    ASSERT_OK(o.err);

    td_arena a;
    td_arena_init(&a);
    kafka_reader r;
    kr_init(&r, o.mem.p, o.mem.len, &a);
    kafka_fetch_resp d;
    ASSERT_OK(kafka_decode_fetch_resp(&r, 16, &d));
    ASSERT_EQ(r.off, o.mem.len);
    const kafka_fetch_part_resp *g = &d.topics[0].parts[0];
    ASSERT_EQ(g->partition, 4);
    ASSERT_EQ(g->error_code, KERR_OFFSET_OUT_OF_RANGE);
    ASSERT_EQ(g->naborted, -1);
    ASSERT(g->mem == NULL);
    ASSERT_EQ(g->len, 0);
    ASSERT_EQ(g->current_leader_id, 2);
    ASSERT_EQ(g->current_leader_epoch, 11);
    ASSERT_EQ(g->diverging_epoch, -1);
    ASSERT_EQ(g->diverging_end_offset, -1);

    /* A tag whose size runs past the frame, and a tag payload too short for its struct. */
    for (int bad = 0; bad < 2; bad++) {
        ko_free(&o);
        ko_init(&o);
        o.flexible = true;
        ko_i32(&o, 0);
        ko_i16(&o, 0);
        ko_i32(&o, 0);
        ko_array(&o, 1);
        ko_uuid(&o, id);
        ko_array(&o, 1);
        ko_i32(&o, 0);
        ko_i16(&o, 0);
        ko_i64(&o, 0);
        ko_i64(&o, 0);
        ko_i64(&o, 0);
        ko_array(&o, 0);
        ko_i32(&o, -1);
        ko_bytes(&o, "", 0);
        ko_uvarint(&o, 1);
        ko_uvarint(&o, 0); /* DivergingEpoch */
        ko_uvarint(&o, bad ? 4 : 200);
        ko_i32(&o, 1);
        ko_tags(&o);
        ko_tags(&o);
        kr_init(&r, o.mem.p, o.mem.len, &a);
        ASSERT_NE(kafka_decode_fetch_resp(&r, 13, &d), 0);
    }
    /* Versions outside 4-17. */
    kr_init(&r, o.mem.p, o.mem.len, &a);
    ASSERT_NE(kafka_decode_fetch_resp(&r, 3, &d), 0);
    kr_init(&r, o.mem.p, o.mem.len, &a);
    ASSERT_NE(kafka_decode_fetch_resp(&r, 18, &d), 0);
    td_arena_free(&a);
    ko_free(&o);
}

/* kafka_encode_fetch as it was before the tags (commit 2bb9ab8), to hold the new one to it. */
static void encode_fetch_before_tags(kafka_out *o, int16_t v, const kafka_fetch_resp *m)
{
    ko_set_flexible(o, KAFKA_FETCH, v);
    ko_i32(o, m->throttle_time_ms);
    if (v >= 7) {
        ko_i16(o, m->error_code);
        ko_i32(o, m->session_id);
    }
    ko_array(o, m->ntopics);
    for (int32_t i = 0; i < m->ntopics; i++) {
        const kafka_fetch_topic_resp *t = &m->topics[i];
        if (v >= 13)
            ko_uuid(o, t->topic_id);
        else
            ko_string(o, t->name);
        ko_array(o, t->nparts);
        for (int32_t k = 0; k < t->nparts; k++) {
            const kafka_fetch_part_resp *p = &t->parts[k];
            ko_i32(o, p->partition);
            ko_i16(o, p->error_code);
            ko_i64(o, p->high_watermark);
            ko_i64(o, p->last_stable_offset);
            if (v >= 5)
                ko_i64(o, p->log_start_offset);
            ko_array(o, p->naborted);
            for (int32_t a = 0; a < p->naborted; a++) {
                ko_i64(o, p->aborted[a].producer_id);
                ko_i64(o, p->aborted[a].first_offset);
                ko_tags(o);
            }
            if (v >= 11)
                ko_i32(o, -1);
            if (p->len <= 0) {
                ko_bytes(o, NULL, 0);
            } else if (p->fd >= 0) {
                ko_bytes_len(o, (int32_t)p->len);
                ko_file(o, p->fd, p->pos, p->len, p->ref);
            } else {
                ko_bytes(o, p->mem, (int32_t)p->len);
            }
            ko_tags(o);
        }
        ko_tags(o);
    }
    ko_tags(o);
}

static void test_fetch_response_unchanged_without_tags(void)
{
    for (int16_t v = 4; v <= 17; v++) {
        kafka_fetch_part_resp p[3];
        kafka_fetch_topic_resp t[2];
        kafka_fetch_resp m;
        fill_fetch_resp(&m, t, p);
        for (int i = 0; i < 3; i++) {
            p[i].diverging_epoch = p[i].current_leader_id = -1;
            p[i].diverging_end_offset = p[i].current_leader_epoch = -1;
        }
        p[1].fd = 5; /* a file range too, as the leader sends from its segments */
        p[1].pos = 100;
        p[1].len = 300;
        kafka_out now, before;
        ko_init(&now);
        ko_init(&before);
        kafka_encode_fetch(&now, v, &m);
        encode_fetch_before_tags(&before, v, &m);
        ASSERT_OK(now.err);
        ASSERT_EQ(now.mem.len, before.mem.len);
        ASSERT_MEM_EQ(now.mem.p, before.mem.p, now.mem.len);
        ASSERT_EQ(now.nfiles, 1);
        ASSERT_EQ(before.nfiles, 1);
        ASSERT_EQ(now.files[0].mem_at, before.files[0].mem_at);
        /* With the tags, v12+ grows by DivergingEpoch's 15 bytes and CurrentLeader's 11. */
        p[0].diverging_epoch = 6;
        p[0].current_leader_id = 1;
        kafka_out tagged;
        ko_init(&tagged);
        kafka_encode_fetch(&tagged, v, &m);
        ASSERT_EQ(tagged.mem.len, now.mem.len + (v >= 12 ? 2 + 13 + 2 + 9 : 0));
        ko_free(&tagged);
        ko_free(&now);
        ko_free(&before);
    }
}

static kafka_leader_epoch_part le_parts[3] = {
    {.partition = 0, .current_leader_epoch = 9, .leader_epoch = 8},
    {.partition = 1, .current_leader_epoch = 9, .leader_epoch = 0},
    {.partition = 7, .current_leader_epoch = -1, .leader_epoch = 3},
};

static void test_offset_for_leader_epoch_request(void)
{
    for (int16_t v = 0; v <= 4; v++) {
        kafka_leader_epoch_topic t[2] = {
            {.name = "orders", .nparts = 2, .parts = le_parts},
            {.name = "x", .nparts = 1, .parts = le_parts + 2},
        };
        kafka_leader_epoch_req q = {.replica_id = 2, .ntopics = 2, .topics = t};
        kafka_out o;
        ko_init(&o);
        kafka_encode_offset_for_leader_epoch_req(&o, v, &q);
        ASSERT_OK(o.err);
        /* replica_id (v3+), count, "orders", count, 2 x (partition, [current], epoch, [tags]),
         * [tags], "x", count, 1 x (...), [tags], [tags] */
        size_t flex = v >= 4, arr = flex ? 1 : 4, str = flex ? 1 : 2;
        size_t part = 4 + (v >= 2 ? 4 : 0) + 4 + flex;
        ASSERT_EQ(o.mem.len, (v >= 3 ? 4 : 0) + arr + (str + 6) + arr + 2 * part + flex +
                                 (str + 1) + arr + part + flex + flex);
        td_arena a;
        td_arena_init(&a);
        kafka_leader_epoch_req d;
        ASSERT_OK(body_leader_epoch_req(o.mem.p, o.mem.len, v, &a, &d));
        ASSERT_EQ(d.replica_id, v >= 3 ? 2 : -2);
        ASSERT_EQ(d.ntopics, 2);
        for (int i = 0; i < 2; i++) {
            ASSERT_STR_EQ(d.topics[i].name, t[i].name);
            ASSERT_EQ(d.topics[i].nparts, t[i].nparts);
            for (int k = 0; k < t[i].nparts; k++) {
                ASSERT_EQ(d.topics[i].parts[k].partition, t[i].parts[k].partition);
                ASSERT_EQ(d.topics[i].parts[k].current_leader_epoch,
                          v >= 2 ? t[i].parts[k].current_leader_epoch : -1);
                ASSERT_EQ(d.topics[i].parts[k].leader_epoch, t[i].parts[k].leader_epoch);
            }
        }
        td_arena_free(&a);
        check_truncations(o.mem.p, o.mem.len, v, body_leader_epoch_req, sizeof(d));
        ko_free(&o);
    }
    /* v4 byte for byte: replica_id 2, 1 topic "t" with partition 5, current 9, epoch 8. */
    kafka_leader_epoch_part p = {5, 9, 8};
    kafka_leader_epoch_topic t = {.name = "t", .nparts = 1, .parts = &p};
    kafka_leader_epoch_req q = {.replica_id = 2, .ntopics = 1, .topics = &t};
    kafka_out o;
    ko_init(&o);
    kafka_encode_offset_for_leader_epoch_req(&o, 4, &q);
    static const uint8_t want[] = {0, 0, 0, 2, 0x02, 0x02, 't', 0x02, 0,    0,    0,   5,
                                   0, 0, 0, 9, 0,    0,    0,   8,    0x00, 0x00, 0x00};
    ASSERT_EQ(o.mem.len, sizeof(want));
    ASSERT_MEM_EQ(o.mem.p, want, sizeof(want));
    ko_free(&o);
}

static void test_offset_for_leader_epoch_response(void)
{
    for (int16_t v = 0; v <= 4; v++) {
        kafka_leader_epoch_part_resp p[3] = {
            {KERR_NONE, 0, 8, 1200},
            {KERR_NONE, 1, 0, 0},
            {KERR_UNKNOWN_TOPIC_OR_PARTITION, 7, -1, -1},
        };
        kafka_leader_epoch_topic_resp t[2] = {
            {.name = "orders", .nparts = 2, .parts = p},
            {.name = "x", .nparts = 1, .parts = p + 2},
        };
        kafka_leader_epoch_resp m = {.throttle_time_ms = 3, .ntopics = 2, .topics = t};
        kafka_out o;
        ko_init(&o);
        ko_begin(&o, 77, kafka_client_is_flexible(KAFKA_OFFSET_FOR_LEADER_EPOCH, v) ? 1 : 0);
        kafka_encode_offset_for_leader_epoch_resp(&o, v, &m);
        ko_end(&o);
        ASSERT_OK(o.err);
        td_arena a;
        td_arena_init(&a);
        kafka_reader r;
        kr_init(&r, o.mem.p + 4, o.mem.len - 4, &a);
        int32_t corr;
        ASSERT_OK(kafka_decode_response_header(&r, KAFKA_OFFSET_FOR_LEADER_EPOCH, v, &corr));
        ASSERT_EQ(corr, 77);
        size_t body = r.off + 4;
        kafka_leader_epoch_resp d;
        ASSERT_OK(kafka_decode_offset_for_leader_epoch_resp(&r, v, &d));
        ASSERT_EQ(r.off + 4, o.mem.len);
        ASSERT_EQ(d.throttle_time_ms, v >= 2 ? 3 : 0);
        ASSERT_EQ(d.ntopics, 2);
        for (int i = 0; i < 2; i++) {
            ASSERT_STR_EQ(d.topics[i].name, t[i].name);
            ASSERT_EQ(d.topics[i].nparts, t[i].nparts);
            for (int k = 0; k < t[i].nparts; k++) {
                const kafka_leader_epoch_part_resp *w = &t[i].parts[k], *g = &d.topics[i].parts[k];
                ASSERT_EQ(g->error_code, w->error_code);
                ASSERT_EQ(g->partition, w->partition);
                ASSERT_EQ(g->leader_epoch, v >= 1 ? w->leader_epoch : -1);
                ASSERT_EQ(g->end_offset, w->end_offset);
            }
        }
        td_arena_free(&a);
        check_truncations(o.mem.p + body, o.mem.len - body, v, body_leader_epoch_resp, sizeof(d));
        ko_free(&o);
    }
}

static void test_lying_counts(void)
{
    /* Counts far beyond the bytes left fail before anything is allocated for them; a null
     * topic name fails; unknown versions fail. */
    static const uint8_t huge_topics[] = {0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff};
    static const uint8_t huge_parts[] = {0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 't', 0x7f, 0xff, 0xff, 0xff};
    static const uint8_t null_name[] = {0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0, 0, 0, 0};
    td_arena a;
    td_arena_init(&a);
    kafka_reader r;
    kafka_leader_epoch_resp m;
    kafka_leader_epoch_req q;
    kafka_fetch_resp f;
    kr_init(&r, huge_topics, sizeof(huge_topics), &a);
    ASSERT_NE(kafka_decode_offset_for_leader_epoch_resp(&r, 3, &m), 0);
    kr_init(&r, huge_parts, sizeof(huge_parts), &a);
    ASSERT_NE(kafka_decode_offset_for_leader_epoch_resp(&r, 3, &m), 0);
    kr_init(&r, huge_parts, sizeof(huge_parts), &a);
    ASSERT_NE(kafka_decode_offset_for_leader_epoch_req(&r, 3, &q), 0);
    kr_init(&r, null_name, sizeof(null_name), &a);
    ASSERT_NE(kafka_decode_offset_for_leader_epoch_resp(&r, 3, &m), 0);
    kr_init(&r, null_name + 4, sizeof(null_name) - 4, &a);
    ASSERT_NE(kafka_decode_offset_for_leader_epoch_req(&r, 2, &q), 0);
    kr_init(&r, huge_topics, sizeof(huge_topics), &a);
    ASSERT_NE(kafka_decode_offset_for_leader_epoch_req(&r, 5, &q), 0);
    kr_init(&r, huge_topics, sizeof(huge_topics), &a);
    ASSERT_NE(kafka_decode_fetch_resp(&r, 4, &f), 0);
    td_arena_free(&a);
}

TEST_MAIN(TEST(test_request_header), TEST(test_response_header), TEST(test_fetch_request_roundtrip),
          TEST(test_fetch_request_tags_from_others), TEST(test_fetch_v12_bytes),
          TEST(test_fetch_response_roundtrip), TEST(test_fetch_response_from_others),
          TEST(test_fetch_response_unchanged_without_tags),
          TEST(test_offset_for_leader_epoch_request), TEST(test_offset_for_leader_epoch_response),
          TEST(test_lying_counts))
