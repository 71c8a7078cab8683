/* Unit tests for the transaction messages (proto/kafka/msgs_txn.c): AddPartitionsToTxn,
 * AddOffsetsToTxn, EndTxn, TxnOffsetCommit, DescribeProducers, DescribeTransactions and
 * ListTransactions at every version served, classic and flexible: requests decode to their
 * fields (and to the defaults of the fields a version lacks), every prefix of a valid frame is
 * refused with the reader's error set, and responses encode to exact bytes. */
#include <string.h>

#include "proto/kafka/kafka.h"
#include "test.h"
#include "tidings.h"

static void begin_request(kafka_out *o, int16_t key, int16_t v)
{
    ko_init(o);
    o->flexible = false;
    ko_i16(o, key);
    ko_i16(o, v);
    ko_i32(o, 7);
    ko_string(o, "unit");
    o->flexible = kafka_is_flexible(key, v);
    ko_tags(o);
}

typedef int (*decode_fn)(kafka_reader *r, int16_t v, void *out);

static int dec_add_partitions(kafka_reader *r, int16_t v, void *out)
{
    return kafka_decode_add_partitions_to_txn(r, v, out);
}
static int dec_add_offsets(kafka_reader *r, int16_t v, void *out)
{
    return kafka_decode_add_offsets_to_txn(r, v, out);
}
static int dec_end_txn(kafka_reader *r, int16_t v, void *out)
{
    return kafka_decode_end_txn(r, v, out);
}
static int dec_txn_offset_commit(kafka_reader *r, int16_t v, void *out)
{
    return kafka_decode_txn_offset_commit(r, v, out);
}
static int dec_describe_producers(kafka_reader *r, int16_t v, void *out)
{
    return kafka_decode_describe_producers(r, v, out);
}
static int dec_describe_transactions(kafka_reader *r, int16_t v, void *out)
{
    return kafka_decode_describe_transactions(r, v, out);
}
static int dec_list_transactions(kafka_reader *r, int16_t v, void *out)
{
    return kafka_decode_list_transactions(r, v, out);
}

/* The whole frame (p, n) decodes to its end; every strict prefix fails with the reader's error
 * set. The prefixes decode into a scratch struct of the request's size and their own arenas. */
static void decode_checked(const uint8_t *p, size_t n, td_arena *a, decode_fn fn, void *out,
                           size_t size)
{
    kafka_reader r;
    kr_init(&r, p, n, a);
    kafka_header h;
    ASSERT_OK(kafka_decode_header(&r, &h));
    ASSERT_OK(fn(&r, h.api_version, out));
    ASSERT_EQ(r.off, n);
    void *scratch = malloc(size);
    ASSERT(scratch);
    for (size_t k = 0; k < n; k++) {
        td_arena pa;
        td_arena_init(&pa);
        kafka_reader pr;
        kr_init(&pr, p, k, &pa);
        int rc = kafka_decode_header(&pr, &h);
        if (rc == 0)
            rc = fn(&pr, h.api_version, scratch);
        ASSERT_NE(rc, 0);
        ASSERT_NE(pr.err, 0);
        td_arena_free(&pa);
    }
    free(scratch);
}

static void decode_out(const kafka_out *o, td_arena *a, decode_fn fn, void *out, size_t size)
{
    decode_checked(o->mem.p, o->mem.len, a, fn, out, size);
}

/* The encoded response body equals want[0..n). */
static void expect_bytes(const kafka_out *o, const uint8_t *want, size_t n)
{
    for (size_t i = 0; i < n && i < o->mem.len; i++)
        if (o->mem.p[i] != want[i])
            TEST_FAIL_("byte %zu: 0x%02x, want 0x%02x", i, o->mem.p[i], want[i]);
    ASSERT_EQ(o->mem.len, n);
}

/* The API table's rows for the seven APIs: versions, first flexible version, answered at once;
 * their keys fit KAFKA_API_KEYS (per-key metrics). */
static void test_api_rows(void)
{
    static const struct {
        int16_t key, min, max, flexible;
        const char *name;
        int answers; /* the coordinator's calls answer later */
    } rows[] = {
        {KAFKA_ADD_PARTITIONS_TO_TXN, 0, 3, 3, "AddPartitionsToTxn", KAFKA_ANSWERS_NOW_OR_LATER},
        {KAFKA_ADD_OFFSETS_TO_TXN, 0, 3, 3, "AddOffsetsToTxn", KAFKA_ANSWERS_NOW_OR_LATER},
        {KAFKA_END_TXN, 0, 3, 3, "EndTxn", KAFKA_ANSWERS_NOW_OR_LATER},
        {KAFKA_TXN_OFFSET_COMMIT, 0, 3, 3, "TxnOffsetCommit", KAFKA_ANSWERS_NOW_OR_LATER},
        {KAFKA_DESCRIBE_PRODUCERS, 0, 0, 0, "DescribeProducers", KAFKA_ANSWERS_NOW},
        {KAFKA_DESCRIBE_TRANSACTIONS, 0, 0, 0, "DescribeTransactions", KAFKA_ANSWERS_NOW},
        {KAFKA_LIST_TRANSACTIONS, 0, 1, 0, "ListTransactions", KAFKA_ANSWERS_NOW},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const kafka_api *a = kafka_api_find(rows[i].key);
        ASSERT(a != NULL);
        ASSERT_EQ(a->min, rows[i].min);
        ASSERT_EQ(a->max, rows[i].max);
        ASSERT_EQ(a->flexible, rows[i].flexible);
        ASSERT_STR_EQ(a->name, rows[i].name);
        ASSERT_EQ(a->answers, rows[i].answers);
        ASSERT(a->key < KAFKA_API_KEYS);
        ASSERT_EQ(kafka_response_header_version(a->key, a->max), 1);
        ASSERT_EQ(kafka_response_header_version(a->key, a->flexible - 1 < 0 ? 0 : a->flexible - 1),
                  a->flexible == 0 ? 1 : 0);
    }
    ASSERT_EQ(KAFKA_API_KEYS, 67);
    ASSERT(kafka_api_find(27) == NULL); /* WriteTxnMarkers: not served */
}

/* ---------------------------------------------------------------------------------------------
 * AddPartitionsToTxn
 */
static void test_add_partitions_request(void)
{
    for (int16_t v = 0; v <= 3; v++) {
        kafka_out o;
        begin_request(&o, KAFKA_ADD_PARTITIONS_TO_TXN, v);
        ko_string(&o, "tx-1");
        ko_i64(&o, 4000000000LL);
        ko_i16(&o, 3);
        ko_array(&o, 2);
        ko_string(&o, "orders");
        ko_array(&o, 2);
        ko_i32(&o, 0);
        ko_i32(&o, 5);
        ko_tags(&o);
        ko_string(&o, "audit");
        ko_array(&o, 0);
        ko_tags(&o);
        ko_tags(&o);
        td_arena a;
        td_arena_init(&a);
        kafka_add_partitions_to_txn_req q;
        decode_out(&o, &a, dec_add_partitions, &q, sizeof(q));
        ASSERT_STR_EQ(q.transactional_id, "tx-1");
        ASSERT_EQ(q.producer_id, 4000000000LL);
        ASSERT_EQ(q.producer_epoch, 3);
        ASSERT_EQ(q.ntopics, 2);
        ASSERT_STR_EQ(q.topics[0].name, "orders");
        ASSERT_EQ(q.topics[0].nparts, 2);
        ASSERT_EQ(q.topics[0].parts[0], 0);
        ASSERT_EQ(q.topics[0].parts[1], 5);
        ASSERT_STR_EQ(q.topics[1].name, "audit");
        ASSERT_EQ(q.topics[1].nparts, 0);
        ko_free(&o);
        td_arena_free(&a);
    }
}

/* The same request written byte by byte (v0, then v3), independently of the ko_ helpers. */
static void test_add_partitions_request_bytes(void)
{
    static const uint8_t v0[] = {
        0x00, 0x18, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0x00, 0x01, 'c', /* header */
        0x00, 0x02, 't',  'x',                                           /* transactional_id */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2A,                  /* producer_id 42 */
        0x00, 0x01,                                                      /* producer_epoch */
        0x00, 0x00, 0x00, 0x01,                                          /* topics */
        0x00, 0x01, 't',                                                 /* name */
        0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x09,                  /* partitions [9] */
    };
    static const uint8_t v3[] = {
        0x00, 0x18, 0x00, 0x03, 0x00, 0x00, 0x00, 0x07, 0x00, 0x01, 'c', 0x00, /* header v2 */
        0x03, 't',  'x',                                            /* transactional_id, compact */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2A, 0x00, 0x01, /* producer_id, epoch */
        0x02,                                                       /* topics: 1 */
        0x02, 't',  0x02, 0x00, 0x00, 0x00, 0x09,                   /* name, partitions [9] */
        0x01, 0x00, 0x01, 0x7F, /* a topic tag: tag 0, size 1, one byte */
        0x00,                   /* the request's tags */
    };
    const uint8_t *frames[] = {v0, v3};
    size_t lens[] = {sizeof(v0), sizeof(v3)};
    for (int i = 0; i < 2; i++) {
        td_arena a;
        td_arena_init(&a);
        kafka_add_partitions_to_txn_req q;
        decode_checked(frames[i], lens[i], &a, dec_add_partitions, &q, sizeof(q));
        ASSERT_STR_EQ(q.transactional_id, "tx");
        ASSERT_EQ(q.producer_id, 42);
        ASSERT_EQ(q.producer_epoch, 1);
        ASSERT_EQ(q.ntopics, 1);
        ASSERT_STR_EQ(q.topics[0].name, "t");
        ASSERT_EQ(q.topics[0].nparts, 1);
        ASSERT_EQ(q.topics[0].parts[0], 9);
        td_arena_free(&a);
    }
}

static void test_add_partitions_response(void)
{
    kafka_txn_part_result parts[] = {{0, KERR_COORDINATOR_NOT_AVAILABLE}, {3, KERR_NONE}};
    kafka_txn_topic_result topic = {"t", 2, parts};
    kafka_add_partitions_to_txn_resp m = {1, &topic};
    static const uint8_t v2[] = {
        0x00, 0x00, 0x00, 0x00,                  /* throttle_time_ms */
        0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 't', /* results_by_topic, name */
        0x00, 0x00, 0x00, 0x02,                  /* results_by_partition */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x0F,      /* 0: COORDINATOR_NOT_AVAILABLE */
        0x00, 0x00, 0x00, 0x03, 0x00, 0x00,      /* 3: NONE */
    };
    static const uint8_t v3[] = {
        0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 't',  0x03, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x0F, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, /* topic tags */
        0x00,                                                             /* response tags */
    };
    kafka_out o;
    ko_init(&o);
    kafka_encode_add_partitions_to_txn(&o, 2, &m);
    expect_bytes(&o, v2, sizeof(v2));
    ko_free(&o);
    ko_init(&o);
    kafka_encode_add_partitions_to_txn(&o, 3, &m);
    expect_bytes(&o, v3, sizeof(v3));
    ko_free(&o);
}

/* ---------------------------------------------------------------------------------------------
 * AddOffsetsToTxn and EndTxn
 */
static void test_add_offsets(void)
{
    for (int16_t v = 0; v <= 3; v++) {
        kafka_out o;
        begin_request(&o, KAFKA_ADD_OFFSETS_TO_TXN, v);
        ko_string(&o, "tx-1");
        ko_i64(&o, 77);
        ko_i16(&o, 32766);
        ko_string(&o, "group-a");
        ko_tags(&o);
        td_arena a;
        td_arena_init(&a);
        kafka_add_offsets_to_txn_req q;
        decode_out(&o, &a, dec_add_offsets, &q, sizeof(q));
        ASSERT_STR_EQ(q.transactional_id, "tx-1");
        ASSERT_EQ(q.producer_id, 77);
        ASSERT_EQ(q.producer_epoch, 32766);
        ASSERT_STR_EQ(q.group_id, "group-a");
        ko_free(&o);
        td_arena_free(&a);
    }
    kafka_add_offsets_to_txn_resp m = {KERR_PRODUCER_FENCED};
    static const uint8_t v1[] = {0, 0, 0, 0, 0x00, 0x5A};
    static const uint8_t v3[] = {0, 0, 0, 0, 0x00, 0x5A, 0x00};
    kafka_out o;
    ko_init(&o);
    kafka_encode_add_offsets_to_txn(&o, 1, &m);
    expect_bytes(&o, v1, sizeof(v1));
    ko_free(&o);
    ko_init(&o);
    kafka_encode_add_offsets_to_txn(&o, 3, &m);
    expect_bytes(&o, v3, sizeof(v3));
    ko_free(&o);
}

static void test_end_txn(void)
{
    for (int16_t v = 0; v <= 3; v++) {
        for (int committed = 0; committed <= 1; committed++) {
            kafka_out o;
            begin_request(&o, KAFKA_END_TXN, v);
            ko_string(&o, "tx-1");
            ko_i64(&o, 5);
            ko_i16(&o, 0);
            ko_bool(&o, committed);
            ko_tags(&o);
            td_arena a;
            td_arena_init(&a);
            kafka_end_txn_req q;
            decode_out(&o, &a, dec_end_txn, &q, sizeof(q));
            ASSERT_STR_EQ(q.transactional_id, "tx-1");
            ASSERT_EQ(q.producer_id, 5);
            ASSERT_EQ(q.producer_epoch, 0);
            ASSERT_EQ(q.committed, committed);
            ko_free(&o);
            td_arena_free(&a);
        }
    }
    /* EndTxn v3 by hand: a flexible header and body. */
    static const uint8_t req[] = {
        0x00, 0x1A, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0xFF, 0xFF, 0x00, /* null client id */
        0x02, 'x',                                                        /* transactional_id */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,                   /* producer_id 256 */
        0x00, 0x02, 0x01, 0x00,                                           /* epoch, commit */
    };
    td_arena a;
    td_arena_init(&a);
    kafka_end_txn_req q;
    decode_checked(req, sizeof(req), &a, dec_end_txn, &q, sizeof(q));
    ASSERT_STR_EQ(q.transactional_id, "x");
    ASSERT_EQ(q.producer_id, 256);
    ASSERT_EQ(q.producer_epoch, 2);
    ASSERT(q.committed);
    td_arena_free(&a);

    kafka_end_txn_resp m = {KERR_INVALID_TXN_STATE};
    static const uint8_t v0[] = {0, 0, 0, 0, 0x00, 0x30};
    static const uint8_t v3[] = {0, 0, 0, 0, 0x00, 0x30, 0x00};
    kafka_out o;
    ko_init(&o);
    kafka_encode_end_txn(&o, 0, &m);
    expect_bytes(&o, v0, sizeof(v0));
    ko_free(&o);
    ko_init(&o);
    kafka_encode_end_txn(&o, 3, &m);
    expect_bytes(&o, v3, sizeof(v3));
    ko_free(&o);
}

/* ---------------------------------------------------------------------------------------------
 * TxnOffsetCommit: committed_leader_epoch from v2, the member fields from v3 (their defaults
 * before), a null metadata and a null group_instance_id.
 */
static void test_txn_offset_commit_request(void)
{
    for (int16_t v = 0; v <= 3; v++) {
        for (int with_instance = 0; with_instance <= (v >= 3); with_instance++) {
            kafka_out o;
            begin_request(&o, KAFKA_TXN_OFFSET_COMMIT, v);
            ko_string(&o, "tx-1");
            ko_string(&o, "group-a");
            ko_i64(&o, 9);
            ko_i16(&o, 4);
            if (v >= 3) {
                ko_i32(&o, 12);
                ko_string(&o, "member-1");
                ko_string(&o, with_instance ? "instance-1" : NULL);
            }
            ko_array(&o, 1);
            ko_string(&o, "orders");
            ko_array(&o, 2);
            ko_i32(&o, 0);
            ko_i64(&o, 100);
            if (v >= 2)
                ko_i32(&o, 6);
            ko_string(&o, "meta");
            ko_tags(&o);
            ko_i32(&o, 1);
            ko_i64(&o, 200);
            if (v >= 2)
                ko_i32(&o, -1);
            ko_string(&o, NULL);
            ko_tags(&o);
            ko_tags(&o);
            ko_tags(&o);
            td_arena a;
            td_arena_init(&a);
            kafka_txn_offset_commit_req q;
            decode_out(&o, &a, dec_txn_offset_commit, &q, sizeof(q));
            ASSERT_STR_EQ(q.transactional_id, "tx-1");
            ASSERT_STR_EQ(q.group_id, "group-a");
            ASSERT_EQ(q.producer_id, 9);
            ASSERT_EQ(q.producer_epoch, 4);
            ASSERT_EQ(q.generation_id, v >= 3 ? 12 : -1);
            ASSERT_STR_EQ(q.member_id, v >= 3 ? "member-1" : "");
            if (with_instance)
                ASSERT_STR_EQ(q.group_instance_id, "instance-1");
            else
                ASSERT(q.group_instance_id == NULL);
            ASSERT_EQ(q.ntopics, 1);
            ASSERT_STR_EQ(q.topics[0].name, "orders");
            ASSERT_EQ(q.topics[0].nparts, 2);
            const kafka_offset_commit_part *p = q.topics[0].parts;
            ASSERT_EQ(p[0].partition, 0);
            ASSERT_EQ(p[0].offset, 100);
            ASSERT_EQ(p[0].leader_epoch, v >= 2 ? 6 : -1);
            ASSERT_STR_EQ(p[0].metadata, "meta");
            ASSERT_EQ(p[0].error_code, 0);
            ASSERT_EQ(p[1].partition, 1);
            ASSERT_EQ(p[1].offset, 200);
            ASSERT_EQ(p[1].leader_epoch, -1);
            ASSERT(p[1].metadata == NULL);
            ko_free(&o);
            td_arena_free(&a);
        }
    }
}

static void test_txn_offset_commit_response(void)
{
    kafka_txn_part_result parts[] = {{2, KERR_UNKNOWN_TOPIC_OR_PARTITION}};
    kafka_txn_topic_result topics[] = {{"ab", 1, parts}, {"c", 0, NULL}};
    kafka_txn_offset_commit_resp m = {2, topics};
    static const uint8_t v0[] = {
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, /* throttle, topics */
        0x00, 0x02, 'a',  'b',  0x00, 0x00, 0x00, 0x01, /* "ab", partitions */
        0x00, 0x00, 0x00, 0x02, 0x00, 0x03,             /* 2: UNKNOWN_TOPIC_OR_... */
        0x00, 0x01, 'c',  0x00, 0x00, 0x00, 0x00,       /* "c", no partitions */
    };
    static const uint8_t v3[] = {
        0x00, 0x00, 0x00, 0x00, 0x03,             /* throttle, topics */
        0x03, 'a',  'b',  0x02,                   /* "ab", partitions */
        0x00, 0x00, 0x00, 0x02, 0x00, 0x03, 0x00, /* partition, error, tags */
        0x00,                                     /* topic tags */
        0x02, 'c',  0x01, 0x00,                   /* "c", no partitions, tags */
        0x00,                                     /* response tags */
    };
    kafka_out o;
    ko_init(&o);
    kafka_encode_txn_offset_commit(&o, 0, &m);
    expect_bytes(&o, v0, sizeof(v0));
    ko_free(&o);
    ko_init(&o);
    kafka_encode_txn_offset_commit(&o, 3, &m);
    expect_bytes(&o, v3, sizeof(v3));
    ko_free(&o);
}

/* ---------------------------------------------------------------------------------------------
 * DescribeProducers (v0, flexible): producer_epoch is an int32 here.
 */
static void test_describe_producers(void)
{
    kafka_out o;
    begin_request(&o, KAFKA_DESCRIBE_PRODUCERS, 0);
    ko_array(&o, 2);
    ko_string(&o, "orders");
    ko_array(&o, 3);
    ko_i32(&o, 0);
    ko_i32(&o, 1);
    ko_i32(&o, 7);
    ko_tags(&o);
    ko_string(&o, "audit");
    ko_array(&o, -1); /* a null array: no partitions */
    ko_tags(&o);
    ko_tags(&o);
    td_arena a;
    td_arena_init(&a);
    kafka_describe_producers_req q;
    decode_out(&o, &a, dec_describe_producers, &q, sizeof(q));
    ASSERT_EQ(q.ntopics, 2);
    ASSERT_STR_EQ(q.topics[0].name, "orders");
    ASSERT_EQ(q.topics[0].nparts, 3);
    ASSERT_EQ(q.topics[0].parts[2], 7);
    ASSERT_STR_EQ(q.topics[1].name, "audit");
    ASSERT_EQ(q.topics[1].nparts, 0);
    ko_free(&o);
    td_arena_free(&a);

    kafka_producer_state ps = {0x0102030405060708LL, 5, 9, 0x10, 2, -1};
    kafka_describe_producers_part parts[] = {
        {1, KERR_NONE, NULL, 1, &ps},
        {2, KERR_COORDINATOR_NOT_AVAILABLE, "x", 0, NULL},
    };
    kafka_describe_producers_topic topic = {"t", 2, parts};
    kafka_describe_producers_resp m = {1, &topic};
    static const uint8_t want[] = {
        0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 't',  0x03, /* throttle, topics, "t", partitions */
        0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,       /* 1, NONE, null message */
        0x02,                                           /* active_producers: 1 */
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, /* producer_id */
        0x00, 0x00, 0x00, 0x05,                         /* producer_epoch int32 */
        0x00, 0x00, 0x00, 0x09,                         /* last_sequence */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, /* last_timestamp */
        0x00, 0x00, 0x00, 0x02,                         /* coordinator_epoch */
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, /* current_txn_start_offset -1 */
        0x00, 0x00,                                     /* producer tags, partition tags */
        0x00, 0x00, 0x00, 0x02, 0x00, 0x0F, 0x02, 'x',  /* 2, COORDINATOR_NOT_AVAILABLE, "x" */
        0x01, 0x00,                                     /* no producers, partition tags */
        0x00, 0x00,                                     /* topic tags, response tags */
    };
    ko_init(&o);
    kafka_encode_describe_producers(&o, 0, &m);
    expect_bytes(&o, want, sizeof(want));
    ko_free(&o);
}

/* ---------------------------------------------------------------------------------------------
 * DescribeTransactions (v0, flexible)
 */
static void test_describe_transactions(void)
{
    kafka_out o;
    begin_request(&o, KAFKA_DESCRIBE_TRANSACTIONS, 0);
    ko_array(&o, 3);
    ko_string(&o, "tx-1");
    ko_string(&o, "");
    ko_string(&o, "tx-2");
    ko_tags(&o);
    td_arena a;
    td_arena_init(&a);
    kafka_describe_transactions_req q;
    decode_out(&o, &a, dec_describe_transactions, &q, sizeof(q));
    ASSERT_EQ(q.nids, 3);
    ASSERT_STR_EQ(q.ids[0], "tx-1");
    ASSERT_STR_EQ(q.ids[1], "");
    ASSERT_STR_EQ(q.ids[2], "tx-2");
    ko_free(&o);
    td_arena_free(&a);

    int32_t parts[] = {0, 1};
    kafka_txn_topic topic = {"t", 2, parts};
    kafka_described_txn txns[] = {
        {KERR_NONE, "tx", "Ongoing", 60000, 1000, 7, 3, 1, &topic},
        {KERR_TRANSACTIONAL_ID_NOT_FOUND, "zz", NULL, 0, 0, 0, 0, 0, NULL},
    };
    kafka_describe_transactions_resp m = {2, txns};
    static const uint8_t want[] = {
        0x00, 0x00, 0x00, 0x00, 0x03,                   /* throttle, transaction_states */
        0x00, 0x00, 0x03, 't',  'x',                    /* NONE, "tx" */
        0x08, 'O',  'n',  'g',  'o',  'i',  'n',  'g',  /* state */
        0x00, 0x00, 0xEA, 0x60,                         /* timeout 60000 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xE8, /* start time 1000 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, /* producer_id */
        0x00, 0x03,                                     /* producer_epoch int16 */
        0x02, 0x02, 't',  0x03, 0x00, 0x00, 0x00, 0x00, /* topics ["t", [0, 1]] */
        0x00, 0x00, 0x00, 0x01, 0x00,                   /* ..., topic tags */
        0x00,                                           /* state tags */
        0x00, 0x69, 0x03, 'z',  'z',  0x01,             /* TRANSACTIONAL_ID_NOT_FOUND, "zz",
                                                           state "" */
        0x00, 0x00, 0x00, 0x00,                         /* timeout */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* start time */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* producer_id */
        0x00, 0x00, 0x01, 0x00,                         /* epoch, no topics, state tags */
        0x00,                                           /* response tags */
    };
    ko_init(&o);
    kafka_encode_describe_transactions(&o, 0, &m);
    expect_bytes(&o, want, sizeof(want));
    ko_free(&o);
}

/* ---------------------------------------------------------------------------------------------
 * ListTransactions v0-1 (flexible): duration_filter from v1 (-1 before).
 */
static void test_list_transactions(void)
{
    for (int16_t v = 0; v <= 1; v++) {
        kafka_out o;
        begin_request(&o, KAFKA_LIST_TRANSACTIONS, v);
        ko_array(&o, 2);
        ko_string(&o, "Ongoing");
        ko_string(&o, "Nope");
        ko_array(&o, 2);
        ko_i64(&o, 1);
        ko_i64(&o, -5);
        if (v >= 1)
            ko_i64(&o, 30000);
        ko_tags(&o);
        td_arena a;
        td_arena_init(&a);
        kafka_list_transactions_req q;
        decode_out(&o, &a, dec_list_transactions, &q, sizeof(q));
        ASSERT_EQ(q.nstates, 2);
        ASSERT_STR_EQ(q.states[0], "Ongoing");
        ASSERT_STR_EQ(q.states[1], "Nope");
        ASSERT_EQ(q.nproducer_ids, 2);
        ASSERT_EQ(q.producer_ids[0], 1);
        ASSERT_EQ(q.producer_ids[1], -5);
        ASSERT_EQ(q.duration_ms, v >= 1 ? 30000 : -1);
        ko_free(&o);
        td_arena_free(&a);

        /* Empty filters: every transaction. */
        begin_request(&o, KAFKA_LIST_TRANSACTIONS, v);
        ko_array(&o, 0);
        ko_array(&o, 0);
        if (v >= 1)
            ko_i64(&o, -1);
        ko_tags(&o);
        td_arena_init(&a);
        decode_out(&o, &a, dec_list_transactions, &q, sizeof(q));
        ASSERT_EQ(q.nstates, 0);
        ASSERT_EQ(q.nproducer_ids, 0);
        ASSERT_EQ(q.duration_ms, -1);
        ko_free(&o);
        td_arena_free(&a);
    }

    const char *unknown[] = {"Nope"};
    kafka_listed_txn txns[] = {{"tx", 7, "Ongoing"}};
    kafka_list_transactions_resp m = {KERR_NONE, 1, unknown, 1, txns};
    static const uint8_t want[] = {
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00,                   /* throttle, error */
        0x02, 0x05, 'N',  'o',  'p',  'e',                    /* unknown_state_filters */
        0x02, 0x03, 't',  'x',                                /* transaction_states, "tx" */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07,       /* producer_id */
        0x08, 'O',  'n',  'g',  'o',  'i',  'n',  'g',  0x00, /* state, tags */
        0x00,                                                 /* response tags */
    };
    for (int16_t v = 0; v <= 1; v++) { /* v1 is v0 */
        kafka_out o;
        ko_init(&o);
        kafka_encode_list_transactions(&o, v, &m);
        expect_bytes(&o, want, sizeof(want));
        ko_free(&o);
    }
    /* The stub's answer: an error and nothing listed. */
    kafka_list_transactions_resp err = {.error_code = KERR_COORDINATOR_NOT_AVAILABLE};
    static const uint8_t want_err[] = {0, 0, 0, 0, 0x00, 0x0F, 0x01, 0x01, 0x00};
    kafka_out o;
    ko_init(&o);
    kafka_encode_list_transactions(&o, 0, &err);
    expect_bytes(&o, want_err, sizeof(want_err));
    ko_free(&o);
}

/* An array count larger than the bytes left is refused before anything is allocated. */
static void test_lying_counts(void)
{
    kafka_out o;
    begin_request(&o, KAFKA_DESCRIBE_TRANSACTIONS, 0);
    ko_uvarint(&o, 0x7FFFFFF0); /* transactional_ids */
    ko_tags(&o);
    td_arena a;
    td_arena_init(&a);
    kafka_reader r;
    kr_init(&r, o.mem.p, o.mem.len, &a);
    kafka_header h;
    ASSERT_OK(kafka_decode_header(&r, &h));
    kafka_describe_transactions_req q;
    ASSERT_EQ(kafka_decode_describe_transactions(&r, h.api_version, &q), TD_EPROTO);
    ASSERT_EQ(q.nids, 0);
    ko_free(&o);
    td_arena_free(&a);

    begin_request(&o, KAFKA_ADD_PARTITIONS_TO_TXN, 0);
    ko_string(&o, "tx");
    ko_i64(&o, 1);
    ko_i16(&o, 0);
    ko_array(&o, 1);
    ko_string(&o, "t");
    ko_i32(&o, 1000000); /* partitions */
    ko_i32(&o, 0);
    td_arena_init(&a);
    kr_init(&r, o.mem.p, o.mem.len, &a);
    ASSERT_OK(kafka_decode_header(&r, &h));
    kafka_add_partitions_to_txn_req ap;
    ASSERT_EQ(kafka_decode_add_partitions_to_txn(&r, h.api_version, &ap), TD_EPROTO);
    ko_free(&o);
    td_arena_free(&a);
}

TEST_MAIN(TEST(test_api_rows), TEST(test_add_partitions_request),
          TEST(test_add_partitions_request_bytes), TEST(test_add_partitions_response),
          TEST(test_add_offsets), TEST(test_end_txn), TEST(test_txn_offset_commit_request),
          TEST(test_txn_offset_commit_response), TEST(test_describe_producers),
          TEST(test_describe_transactions), TEST(test_list_transactions), TEST(test_lying_counts))
