/* Unit tests for the Kafka codec (proto/kafka/codec.c, msgs.c): primitives in both encodings,
 * framing, and request decoders fed every prefix of valid frames. */
#include "broker/group.h"
#include "proto/kafka/kafka.h"
#include "proto/kafka/kafka_acl.h"
#include "tidings.h"
#include "test.h"

/* Builds a request frame body (header + body) with the output primitives, which share the
 * wire encodings with requests. */
static void begin_request(kafka_out *o, int16_t key, int16_t v)
{
    ko_init(o);
    o->flexible = false;
    ko_i16(o, key);
    ko_i16(o, v);
    ko_i32(o, 42);
    ko_string(o, "unit");
    o->flexible = kafka_is_flexible(key, v);
    ko_tags(o);
}

/* Decodes the whole frame, and every strict prefix must fail cleanly. */
typedef int (*decode_fn)(kafka_reader *r, int16_t v, void *out);

/* Every proper prefix of the request fails to decode. The decodes go into a scratch struct of
 * the request's size: what they leave points into their own arenas, freed here. */
static void check_prefixes(const kafka_out *o, decode_fn fn, size_t size)
{
    void *out = malloc(size);
    ASSERT(out);
    for (size_t n = 0; n < o->mem.len; n++) {
        td_arena a;
        td_arena_init(&a);
        kafka_reader r;
        kr_init(&r, o->mem.p, n, &a);
        kafka_header h;
        int rc = kafka_decode_header(&r, &h);
        if (rc == 0)
            rc = fn(&r, h.api_version, out);
        ASSERT_NE(rc, 0);
        td_arena_free(&a);
    }
    free(out);
}

static int dec_produce(kafka_reader *r, int16_t v, void *out)
{
    return kafka_decode_produce(r, v, out);
}
static int dec_fetch(kafka_reader *r, int16_t v, void *out)
{
    return kafka_decode_fetch(r, v, out);
}
static int dec_metadata(kafka_reader *r, int16_t v, void *out)
{
    return kafka_decode_metadata(r, v, out);
}
static int dec_create(kafka_reader *r, int16_t v, void *out)
{
    return kafka_decode_create_topics(r, v, out);
}

static int dec_describe_configs(kafka_reader *r, int16_t v, void *out)
{
    return kafka_decode_describe_configs(r, v, out);
}
static int dec_incremental_alter(kafka_reader *r, int16_t v, void *out)
{
    return kafka_decode_alter_configs(r, KAFKA_INCREMENTAL_ALTER_CONFIGS, v, out);
}
static int dec_alter(kafka_reader *r, int16_t v, void *out)
{
    return kafka_decode_alter_configs(r, KAFKA_ALTER_CONFIGS, v, out);
}
static int dec_delete_records(kafka_reader *r, int16_t v, void *out)
{
    return kafka_decode_delete_records(r, v, out);
}

/* Decodes a whole request frame (header then body) with fn. */
static void decode_whole(const kafka_out *o, td_arena *a, decode_fn fn, void *out)
{
    kafka_reader r;
    kr_init(&r, o->mem.p, o->mem.len, a);
    kafka_header h;
    ASSERT_OK(kafka_decode_header(&r, &h));
    ASSERT_OK(fn(&r, h.api_version, out));
    ASSERT_EQ(r.off, o->mem.len);
}

static void test_primitives_roundtrip(void)
{
    for (int flex = 0; flex <= 1; flex++) {
        kafka_out o;
        ko_init(&o);
        o.flexible = flex;
        ko_i8(&o, -3);
        ko_i16(&o, -300);
        ko_i32(&o, 70000);
        ko_i64(&o, -5000000000LL);
        ko_string(&o, "héllo");
        ko_string(&o, NULL);
        ko_bytes(&o, "abc", 3);
        ko_bytes(&o, NULL, -1);
        ko_array(&o, 2);
        ko_uvarint(&o, 300);
        ko_tags(&o);
        ASSERT_EQ(o.err, 0);
        td_arena a;
        td_arena_init(&a);
        kafka_reader r;
        kr_init(&r, o.mem.p, o.mem.len, &a);
        r.flexible = flex;
        ASSERT_EQ(kr_i8(&r), -3);
        ASSERT_EQ(kr_i16(&r), -300);
        ASSERT_EQ(kr_i32(&r), 70000);
        ASSERT_EQ(kr_i64(&r), -5000000000LL);
        ASSERT_STR_EQ(kr_string(&r), "héllo");
        ASSERT(kr_string(&r) == NULL);
        int32_t len;
        uint8_t *b = kr_bytes(&r, &len);
        ASSERT_EQ(len, 3);
        ASSERT_MEM_EQ(b, "abc", 3);
        kr_bytes(&r, &len);
        ASSERT_EQ(len, -1);
        ASSERT_EQ(kr_array(&r), 2);
        ASSERT_EQ(r.err, 0);
        ASSERT_EQ(kr_uvarint(&r), 300);
        kr_tags(&r);
        ASSERT_EQ(r.err, 0);
        ASSERT_EQ(r.off, o.mem.len);
        /* Reading past the end sticks an error and returns zeros. */
        ASSERT_EQ(kr_i32(&r), 0);
        ASSERT_EQ(r.err, TD_EPROTO);
        td_arena_free(&a);
        ko_free(&o);
    }
}

/* A string with NUL bytes is never cut: each NUL is kept as C0 80 while decoded (so names
 * with one fail the name rules) and written back as a NUL. */
static void test_strings_with_nul(void)
{
    for (int flex = 0; flex <= 1; flex++) {
        static const uint8_t wire[] = {'a', 'b', 0, 'c', 'd', 0};
        kafka_out o;
        ko_init(&o);
        o.flexible = flex;
        if (flex)
            ko_uvarint(&o, sizeof(wire) + 1);
        else
            ko_i16(&o, sizeof(wire));
        td_buf_append(&o.mem, wire, sizeof(wire));
        td_arena a;
        td_arena_init(&a);
        kafka_reader r;
        kr_init(&r, o.mem.p, o.mem.len, &a);
        r.flexible = flex;
        const char *s = kr_string(&r);
        ASSERT_EQ(r.err, 0);
        ASSERT_STR_EQ(s, "ab\xC0\x80" "cd\xC0\x80");
        ASSERT_EQ(td_topic_name_validate(s), TD_ENAME);
        kafka_out back;
        ko_init(&back);
        back.flexible = flex;
        ko_string(&back, s);
        ASSERT_EQ(back.mem.len, o.mem.len);
        ASSERT_MEM_EQ(back.mem.p, o.mem.p, o.mem.len);
        ko_free(&back);
        td_arena_free(&a);
        ko_free(&o);
    }
}

static void test_array_count_checked_before_allocation(void)
{
    uint8_t buf[8];
    td_store_be32(buf, 0x7fffffff);
    td_arena a;
    td_arena_init(&a);
    kafka_reader r;
    kr_init(&r, buf, sizeof(buf), &a);
    ASSERT_EQ(kr_array(&r), 0);
    ASSERT_EQ(r.err, TD_EPROTO);
    ASSERT_LE(a.total, 0);
    /* A compact array claiming 1000 elements in 3 bytes. */
    uint8_t c[3] = {0xe9, 0x07, 0x00};
    kr_init(&r, c, sizeof(c), &a);
    r.flexible = true;
    kr_array(&r);
    ASSERT_EQ(r.err, TD_EPROTO);
    td_arena_free(&a);
}

static void test_framing(void)
{
    uint8_t b[8] = {0, 0, 0, 4, 1, 2, 3, 4};
    size_t n = 0;
    ASSERT_EQ(kafka_frame(b, 3, 100, &n), TD_EAGAIN);
    ASSERT_EQ(kafka_frame(b, 7, 100, &n), TD_EAGAIN);
    ASSERT_OK(kafka_frame(b, 8, 100, &n));
    ASSERT_EQ(n, 8);
    ASSERT_EQ(kafka_frame(b, 8, 3, &n), TD_ETOOBIG);
    td_store_be32(b, 0x80000000u);
    ASSERT_EQ(kafka_frame(b, 8, 100, &n), TD_ETOOBIG);
}

static void test_produce_v9_and_v3(void)
{
    static const int16_t versions[] = {3, 9};
    for (size_t vi = 0; vi < 2; vi++) {
        int16_t v = versions[vi];
        kafka_out o;
        begin_request(&o, KAFKA_PRODUCE, v);
        ko_string(&o, NULL); /* transactional id */
        ko_i16(&o, -1);
        ko_i32(&o, 5000);
        ko_array(&o, 1);
        ko_string(&o, "orders");
        ko_array(&o, 2);
        ko_i32(&o, 0);
        ko_bytes(&o, "0123456789", 10);
        ko_tags(&o);
        ko_i32(&o, 3);
        ko_bytes(&o, NULL, -1);
        ko_tags(&o);
        ko_tags(&o);
        ko_tags(&o);
        ASSERT_EQ(o.err, 0);
        td_arena a;
        td_arena_init(&a);
        kafka_reader r;
        kr_init(&r, o.mem.p, o.mem.len, &a);
        kafka_header h;
        ASSERT_OK(kafka_decode_header(&r, &h));
        ASSERT_EQ(h.api_key, KAFKA_PRODUCE);
        ASSERT_EQ(h.correlation_id, 42);
        ASSERT_STR_EQ(h.client_id, "unit");
        kafka_produce_req q;
        ASSERT_OK(kafka_decode_produce(&r, v, &q));
        ASSERT_EQ(r.off, o.mem.len);
        ASSERT_EQ(q.acks, -1);
        ASSERT_EQ(q.timeout_ms, 5000);
        ASSERT_EQ(q.ntopics, 1);
        ASSERT_STR_EQ(q.topics[0].name, "orders");
        ASSERT_EQ(q.topics[0].nparts, 2);
        ASSERT_EQ(q.topics[0].parts[0].records_len, 10);
        ASSERT_MEM_EQ(q.topics[0].parts[0].records, "0123456789", 10);
        ASSERT_EQ(q.topics[0].parts[1].index, 3);
        ASSERT_EQ(q.topics[0].parts[1].records_len, -1);
        td_arena_free(&a);
        check_prefixes(&o, dec_produce, sizeof(q));
        ko_free(&o);
    }
}

static void test_fetch_v4_to_v17(void)
{
    static const int16_t versions[] = {4, 12, 13, 15, 17};
    static const uint8_t id[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    for (size_t vi = 0; vi < TD_ARRAY_LEN(versions); vi++) {
        int16_t v = versions[vi];
        kafka_out o;
        begin_request(&o, KAFKA_FETCH, v);
        if (v <= 14)
            ko_i32(&o, -1); /* replica id; v15+ has it in a tagged field */
        ko_i32(&o, 500);
        ko_i32(&o, 1);
        ko_i32(&o, 1 << 20);
        ko_i8(&o, 1);
        if (v >= 7) {
            ko_i32(&o, 0);
            ko_i32(&o, -1);
        }
        ko_array(&o, 1);
        if (v >= 13)
            ko_uuid(&o, id);
        else
            ko_string(&o, "t");
        ko_array(&o, 1);
        ko_i32(&o, 2);
        if (v >= 9)
            ko_i32(&o, 7);
        ko_i64(&o, 123);
        if (v >= 12)
            ko_i32(&o, -1);
        if (v >= 5)
            ko_i64(&o, 0);
        ko_i32(&o, 4096);
        ko_tags(&o);
        ko_tags(&o);
        if (v >= 7) {
            ko_array(&o, 1); /* one forgotten topic */
            if (v >= 13)
                ko_uuid(&o, id);
            else
                ko_string(&o, "f");
            ko_array(&o, 1);
            ko_i32(&o, 0);
            ko_tags(&o);
        }
        if (v >= 11)
            ko_string(&o, "rack");
        ko_tags(&o);
        td_arena a;
        td_arena_init(&a);
        kafka_reader r;
        kr_init(&r, o.mem.p, o.mem.len, &a);
        kafka_header h;
        ASSERT_OK(kafka_decode_header(&r, &h));
        kafka_fetch_req q;
        ASSERT_OK(kafka_decode_fetch(&r, v, &q));
        ASSERT_EQ(r.off, o.mem.len);
        ASSERT_EQ(q.max_wait_ms, 500);
        ASSERT_EQ(q.isolation_level, 1);
        ASSERT_EQ(q.topics[0].parts[0].partition, 2);
        ASSERT_EQ(q.topics[0].parts[0].fetch_offset, 123);
        ASSERT_EQ(q.topics[0].parts[0].max_bytes, 4096);
        ASSERT_EQ(q.replica_id, -1);
        if (v >= 13) {
            ASSERT(q.topics[0].name == NULL);
            ASSERT_MEM_EQ(q.topics[0].topic_id, id, 16);
        } else {
            ASSERT_STR_EQ(q.topics[0].name, "t");
        }
        /* The response names the topic the same way. */
        kafka_fetch_part_resp pr = {.partition = 2,
                                    .fd = -1,
                                    .high_watermark = 5,
                                    .diverging_epoch = -1,
                                    .current_leader_id = -1};
        kafka_fetch_topic_resp tr = {.name = "t", .nparts = 1, .parts = &pr};
        memcpy(tr.topic_id, id, 16);
        kafka_fetch_resp m = {.ntopics = 1, .topics = &tr};
        kafka_out resp;
        ko_init(&resp);
        kafka_encode_fetch(&resp, v, &m);
        size_t at = 4 + (v >= 7 ? 6 : 0) + (v >= 12 ? 1 : 4); /* throttle, error+session, count */
        if (v >= 13)
            ASSERT_MEM_EQ(resp.mem.p + at, id, 16);
        else
            ASSERT_MEM_EQ(resp.mem.p + at, v >= 12 ? "\x02t" : "\x00\x01t", v >= 12 ? 2 : 3);
        ko_free(&resp);
        td_arena_free(&a);
        check_prefixes(&o, dec_fetch, sizeof(q));
        ko_free(&o);
    }
}

static void test_metadata_null_and_empty(void)
{
    /* v1+: a null array is all topics; v0: an empty one is. */
    for (int16_t v = 0; v <= 12; v += 12) {
        kafka_out o;
        begin_request(&o, KAFKA_METADATA, v);
        ko_array(&o, v == 0 ? 0 : -1);
        if (v >= 4)
            ko_bool(&o, false);
        if (v >= 8)
            ko_bool(&o, false);
        ko_tags(&o);
        td_arena a;
        td_arena_init(&a);
        kafka_reader r;
        kr_init(&r, o.mem.p, o.mem.len, &a);
        kafka_header h;
        ASSERT_OK(kafka_decode_header(&r, &h));
        kafka_metadata_req q;
        ASSERT_OK(kafka_decode_metadata(&r, v, &q));
        ASSERT_EQ(q.ntopics, -1);
        ASSERT_EQ(q.allow_auto_topic_creation, v == 0);
        td_arena_free(&a);
        check_prefixes(&o, dec_metadata, sizeof(q));
        ko_free(&o);
    }
}

static void test_create_topics_v7(void)
{
    kafka_out o;
    begin_request(&o, KAFKA_CREATE_TOPICS, 7);
    ko_array(&o, 1);
    ko_string(&o, "new");
    ko_i32(&o, -1);
    ko_i16(&o, -1);
    ko_array(&o, 0);
    ko_array(&o, 1);
    ko_string(&o, "retention.ms");
    ko_string(&o, "1000");
    ko_tags(&o);
    ko_tags(&o);
    ko_i32(&o, 30000);
    ko_bool(&o, true);
    ko_tags(&o);
    td_arena a;
    td_arena_init(&a);
    kafka_reader r;
    kr_init(&r, o.mem.p, o.mem.len, &a);
    kafka_header h;
    ASSERT_OK(kafka_decode_header(&r, &h));
    kafka_create_topics_req q;
    ASSERT_OK(kafka_decode_create_topics(&r, 7, &q));
    ASSERT_EQ(q.ntopics, 1);
    ASSERT_EQ(q.topics[0].num_partitions, -1);
    ASSERT_STR_EQ(q.topics[0].configs[0].name, "retention.ms");
    ASSERT_STR_EQ(q.topics[0].configs[0].value, "1000");
    ASSERT(q.validate_only);
    /* The response encodes: topic, uuid, error, message, partitions, rf, configs. */
    q.topics[0].out_partitions = 1;
    kafka_out resp;
    ko_init(&resp);
    ko_begin(&resp, 42, kafka_response_header_version(KAFKA_CREATE_TOPICS, 7));
    kafka_encode_create_topics(&resp, 7, &q);
    ko_end(&resp);
    ASSERT_EQ(resp.err, 0);
    ASSERT_EQ(td_load_be32(resp.mem.p), resp.mem.len - 4);
    ASSERT_EQ(td_load_be32(resp.mem.p + 4), 42);
    ko_free(&resp);
    td_arena_free(&a);
    check_prefixes(&o, dec_create, sizeof(q));
    ko_free(&o);
}

/* DescribeConfigs in the first and the flexible version: null key list (all keys), a key list,
 * and responses whose fields depend on the version. */
static void test_describe_configs(void)
{
    for (int16_t v = 0; v <= 4; v += 4) {
        kafka_out o;
        begin_request(&o, KAFKA_DESCRIBE_CONFIGS, v);
        ko_array(&o, 2);
        ko_i8(&o, KAFKA_RESOURCE_TOPIC);
        ko_string(&o, "orders");
        ko_array(&o, -1);
        ko_tags(&o);
        ko_i8(&o, KAFKA_RESOURCE_BROKER);
        ko_string(&o, "1");
        ko_array(&o, 2);
        ko_string(&o, "log.dirs");
        ko_string(&o, "num.partitions");
        ko_tags(&o);
        if (v >= 1)
            ko_bool(&o, true);
        if (v >= 3)
            ko_bool(&o, true);
        ko_tags(&o);
        td_arena a;
        td_arena_init(&a);
        kafka_describe_configs_req q;
        decode_whole(&o, &a, dec_describe_configs, &q);
        ASSERT_EQ(q.nresources, 2);
        ASSERT_EQ(q.resources[0].type, KAFKA_RESOURCE_TOPIC);
        ASSERT_STR_EQ(q.resources[0].name, "orders");
        ASSERT_EQ(q.resources[0].nkeys, -1);
        ASSERT_EQ(q.resources[1].nkeys, 2);
        ASSERT_STR_EQ(q.resources[1].keys[1], "num.partitions");
        ASSERT_EQ(q.include_synonyms, v >= 1);
        ASSERT_EQ(q.include_documentation, v >= 3);
        /* One described entry: v0 carries is_default, v1+ source and synonyms, v3+ type and
         * documentation. */
        kafka_config_desc d = {.name = "retention.ms", .value = "1000", .source = 1,
                               .type = KAFKA_CONFIG_LONG, .doc = "doc"};
        q.resources[0].nout = 1;
        q.resources[0].out = &d;
        q.resources[1].error_code = KERR_INVALID_REQUEST;
        q.resources[1].error_message = "no";
        kafka_out resp;
        ko_init(&resp);
        ko_begin(&resp, 42, kafka_response_header_version(KAFKA_DESCRIBE_CONFIGS, v));
        kafka_encode_describe_configs(&resp, v, &q);
        ko_end(&resp);
        ASSERT_EQ(resp.err, 0);
        kafka_reader r;
        kr_init(&r, resp.mem.p + 4, resp.mem.len - 4, &a);
        ASSERT_EQ(kr_i32(&r), 42);
        r.flexible = v >= 4;
        kr_tags(&r);
        ASSERT_EQ(kr_i32(&r), 0);
        ASSERT_EQ(kr_array(&r), 2);
        ASSERT_EQ(kr_i16(&r), 0);
        ASSERT(kr_string(&r) == NULL);
        ASSERT_EQ(kr_i8(&r), KAFKA_RESOURCE_TOPIC);
        ASSERT_STR_EQ(kr_string(&r), "orders");
        ASSERT_EQ(kr_array(&r), 1);
        ASSERT_STR_EQ(kr_string(&r), "retention.ms");
        ASSERT_STR_EQ(kr_string(&r), "1000");
        ASSERT(!kr_bool(&r)); /* read only */
        if (v == 0)
            ASSERT(!kr_bool(&r)); /* is_default */
        else
            ASSERT_EQ(kr_i8(&r), 1);
        ASSERT(!kr_bool(&r)); /* sensitive */
        if (v >= 1) {
            ASSERT_EQ(kr_array(&r), 1);
            ASSERT_STR_EQ(kr_string(&r), "retention.ms");
            ASSERT_STR_EQ(kr_string(&r), "1000");
            ASSERT_EQ(kr_i8(&r), 1);
            kr_tags(&r);
        }
        if (v >= 3) {
            ASSERT_EQ(kr_i8(&r), KAFKA_CONFIG_LONG);
            ASSERT_STR_EQ(kr_string(&r), "doc");
        }
        kr_tags(&r);
        kr_tags(&r);
        ASSERT_EQ(kr_i16(&r), KERR_INVALID_REQUEST);
        ASSERT_STR_EQ(kr_string(&r), "no");
        ASSERT_EQ(kr_i8(&r), KAFKA_RESOURCE_BROKER);
        ASSERT_STR_EQ(kr_string(&r), "1");
        ASSERT_EQ(kr_array(&r), 0);
        kr_tags(&r);
        kr_tags(&r);
        ASSERT_EQ(r.err, 0);
        ASSERT_EQ(r.off, resp.mem.len - 4);
        ko_free(&resp);
        td_arena_free(&a);
        check_prefixes(&o, dec_describe_configs, sizeof(q));
        ko_free(&o);
    }
}

static void test_alter_configs_and_delete_records(void)
{
    /* IncrementalAlterConfigs v1 (flexible) carries an operation per entry. */
    kafka_out o;
    begin_request(&o, KAFKA_INCREMENTAL_ALTER_CONFIGS, 1);
    ko_array(&o, 1);
    ko_i8(&o, KAFKA_RESOURCE_TOPIC);
    ko_string(&o, "t");
    ko_array(&o, 2);
    ko_string(&o, "retention.ms");
    ko_i8(&o, KAFKA_OP_SET);
    ko_string(&o, "5");
    ko_tags(&o);
    ko_string(&o, "segment.ms");
    ko_i8(&o, KAFKA_OP_DELETE);
    ko_string(&o, NULL);
    ko_tags(&o);
    ko_tags(&o);
    ko_bool(&o, true);
    ko_tags(&o);
    td_arena a;
    td_arena_init(&a);
    kafka_alter_configs_req q;
    decode_whole(&o, &a, dec_incremental_alter, &q);
    ASSERT_EQ(q.nresources, 1);
    ASSERT_EQ(q.resources[0].nconfigs, 2);
    ASSERT_EQ(q.resources[0].configs[1].op, KAFKA_OP_DELETE);
    ASSERT(q.resources[0].configs[1].value == NULL);
    ASSERT(q.validate_only);
    check_prefixes(&o, dec_incremental_alter, sizeof(q));
    ko_free(&o);

    /* AlterConfigs v0 (classic) has no operation. */
    begin_request(&o, KAFKA_ALTER_CONFIGS, 0);
    ko_array(&o, 1);
    ko_i8(&o, KAFKA_RESOURCE_TOPIC);
    ko_string(&o, "t");
    ko_array(&o, 1);
    ko_string(&o, "fsync");
    ko_string(&o, "none");
    ko_bool(&o, false);
    decode_whole(&o, &a, dec_alter, &q);
    ASSERT_EQ(q.resources[0].configs[0].op, KAFKA_OP_SET);
    ASSERT_STR_EQ(q.resources[0].configs[0].value, "none");
    check_prefixes(&o, dec_alter, sizeof(q));
    q.resources[0].error_code = KERR_INVALID_CONFIG;
    kafka_out resp;
    ko_init(&resp);
    ko_begin(&resp, 7, 0);
    kafka_encode_alter_configs(&resp, KAFKA_ALTER_CONFIGS, 0, &q);
    ko_end(&resp);
    /* size, correlation, throttle, count, error, null message, type, "t" */
    ASSERT_EQ(resp.mem.len, 4 + 4 + 4 + 4 + 2 + 2 + 1 + 3);
    ASSERT_EQ(td_load_be16(resp.mem.p + 16), KERR_INVALID_CONFIG);
    ko_free(&resp);
    ko_free(&o);

    /* DeleteRecords v2 (flexible). */
    begin_request(&o, KAFKA_DELETE_RECORDS, 2);
    ko_array(&o, 1);
    ko_string(&o, "t");
    ko_array(&o, 2);
    ko_i32(&o, 0);
    ko_i64(&o, 10);
    ko_tags(&o);
    ko_i32(&o, 3);
    ko_i64(&o, -1);
    ko_tags(&o);
    ko_tags(&o);
    ko_i32(&o, 1000);
    ko_tags(&o);
    kafka_delete_records_req d;
    decode_whole(&o, &a, dec_delete_records, &d);
    ASSERT_EQ(d.ntopics, 1);
    ASSERT_EQ(d.topics[0].nparts, 2);
    ASSERT_EQ(d.topics[0].parts[0].offset, 10);
    ASSERT_EQ(d.topics[0].parts[1].partition, 3);
    ASSERT_EQ(d.topics[0].parts[1].offset, -1);
    ASSERT_EQ(d.timeout_ms, 1000);
    check_prefixes(&o, dec_delete_records, sizeof(d));
    d.topics[0].parts[0].low_watermark = 10;
    d.topics[0].parts[1].error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
    ko_init(&resp);
    ko_begin(&resp, 7, kafka_response_header_version(KAFKA_DELETE_RECORDS, 2));
    kafka_encode_delete_records(&resp, 2, &d);
    ko_end(&resp);
    kafka_reader r;
    kr_init(&r, resp.mem.p + 4, resp.mem.len - 4, &a);
    r.flexible = true;
    ASSERT_EQ(kr_i32(&r), 7);
    kr_tags(&r);
    ASSERT_EQ(kr_i32(&r), 0);
    ASSERT_EQ(kr_array(&r), 1);
    ASSERT_STR_EQ(kr_string(&r), "t");
    ASSERT_EQ(kr_array(&r), 2);
    ASSERT_EQ(kr_i32(&r), 0);
    ASSERT_EQ(kr_i64(&r), 10);
    ASSERT_EQ(kr_i16(&r), 0);
    kr_tags(&r);
    ASSERT_EQ(kr_i32(&r), 3);
    ASSERT_EQ(kr_i64(&r), -1);
    ASSERT_EQ(kr_i16(&r), KERR_UNKNOWN_TOPIC_OR_PARTITION);
    kr_tags(&r);
    kr_tags(&r);
    kr_tags(&r);
    ASSERT_EQ(r.err, 0);
    ASSERT_EQ(r.off, resp.mem.len - 4);
    ko_free(&resp);
    ko_free(&o);
    td_arena_free(&a);
}

/* The one table of APIs (apis.c): every row complete and consistent, each key once, and
 * kafka_api_find finds exactly the rows. */
static void test_api_table(void)
{
    size_t n;
    const kafka_api *all = kafka_api_all(&n);
    ASSERT(n > 0);
    for (size_t i = 0; i < n; i++) {
        const kafka_api *a = &all[i];
        ASSERT(a->key >= 0 && a->key < KAFKA_API_KEYS);
        ASSERT(a->min >= 0 && a->min <= a->max);
        ASSERT(a->flexible == INT16_MAX || (a->flexible >= 0 && a->flexible <= a->max));
        ASSERT(a->name && a->name[0]);
        ASSERT(a->handle != NULL);
        ASSERT(a->answers == KAFKA_ANSWERS_NOW || a->answers == KAFKA_ANSWERS_LATER ||
               a->answers == KAFKA_ANSWERS_NOW_OR_LATER);
        ASSERT(kafka_api_find(a->key) == a);
        for (size_t k = i + 1; k < n; k++)
            ASSERT_NE(all[k].key, a->key);
    }
    /* The flexible versions the codec switches on come from the same rows. */
    ASSERT(kafka_is_flexible(KAFKA_FETCH, 12) && !kafka_is_flexible(KAFKA_FETCH, 11));
    ASSERT(!kafka_is_flexible(KAFKA_SASL_HANDSHAKE, 1));
    ASSERT_EQ(kafka_api_find(KAFKA_PRODUCE)->answers, KAFKA_ANSWERS_LATER);
    ASSERT_EQ(kafka_api_find(KAFKA_JOIN_GROUP)->answers, KAFKA_ANSWERS_NOW_OR_LATER);
    ASSERT(kafka_api_find(-1) == NULL);
    ASSERT(kafka_api_find(KAFKA_API_KEYS) == NULL);
    ASSERT(kafka_api_find(4) == NULL); /* LeaderAndIsr: a controller's API, not served */
}

static void test_api_versions_encoding(void)
{
    kafka_out o;
    ko_init(&o);
    ko_begin(&o, 9, 0);
    kafka_encode_api_versions(&o, 3, 0);
    ko_end(&o);
    td_arena a;
    td_arena_init(&a);
    kafka_reader r;
    kr_init(&r, o.mem.p + 4, o.mem.len - 4, &a);
    ASSERT_EQ(kr_i32(&r), 9);
    r.flexible = true; /* body flexible, header v0 */
    ASSERT_EQ(kr_i16(&r), 0);
    size_t n;
    kafka_api_all(&n);
    ASSERT_EQ(kr_array(&r), (int32_t)n);
    for (size_t i = 0; i < n; i++) {
        kr_i16(&r);
        ASSERT_LE(kr_i16(&r), kr_i16(&r));
        kr_tags(&r);
    }
    ASSERT_EQ(kr_i32(&r), 0);
    kr_tags(&r);
    ASSERT_EQ(r.err, 0);
    ASSERT_EQ(r.off, o.mem.len - 4);
    /* The error answer is v0: no throttle time, classic array. */
    ko_free(&o);
    ko_init(&o);
    ko_begin(&o, 9, 0);
    kafka_encode_api_versions(&o, 0, KERR_UNSUPPORTED_VERSION);
    ko_end(&o);
    ASSERT_EQ(o.mem.len, 4 + 4 + 2 + 4 + n * 6);
    ko_free(&o);
    td_arena_free(&a);
}


static int dec_join(kafka_reader *r, int16_t v, void *out)
{
    return kafka_decode_join_group(r, v, out);
}
static int dec_sync(kafka_reader *r, int16_t v, void *out)
{
    return kafka_decode_sync_group(r, v, out);
}
static int dec_commit(kafka_reader *r, int16_t v, void *out)
{
    return kafka_decode_offset_commit(r, v, out);
}
static int dec_offset_fetch(kafka_reader *r, int16_t v, void *out)
{
    return kafka_decode_offset_fetch(r, v, out);
}
static int dec_leave(kafka_reader *r, int16_t v, void *out)
{
    return kafka_decode_leave_group(r, v, out);
}
static int dec_find(kafka_reader *r, int16_t v, void *out)
{
    return kafka_decode_find_coordinator(r, v, out);
}

static void test_group_requests(void)
{
    td_arena a;
    td_arena_init(&a);
    kafka_out o;

    /* JoinGroup v9 (flexible): every field, two protocols. */
    begin_request(&o, KAFKA_JOIN_GROUP, 9);
    ko_string(&o, "g");
    ko_i32(&o, 45000);
    ko_i32(&o, 300000);
    ko_string(&o, "");
    ko_string(&o, "host-1");
    ko_string(&o, "consumer");
    ko_array(&o, 2);
    ko_string(&o, "cooperative-sticky");
    ko_bytes(&o, "\x00\x01", 2);
    ko_tags(&o);
    ko_string(&o, "range");
    ko_bytes(&o, "", 0);
    ko_tags(&o);
    ko_string(&o, NULL);
    ko_tags(&o);
    kafka_join_group_req j;
    decode_whole(&o, &a, dec_join, &j);
    ASSERT_STR_EQ(j.group_id, "g");
    ASSERT_EQ(j.session_timeout_ms, 45000);
    ASSERT_EQ(j.rebalance_timeout_ms, 300000);
    ASSERT_STR_EQ(j.group_instance_id, "host-1");
    ASSERT_EQ(j.nprotocols, 2);
    ASSERT_STR_EQ(j.protocols[0].name, "cooperative-sticky");
    ASSERT_EQ(j.protocols[0].len, 2);
    ASSERT_EQ(j.protocols[1].len, 0);
    check_prefixes(&o, dec_join, sizeof(j));
    ko_free(&o);

    /* JoinGroup v0: no rebalance timeout (the session timeout stands in), no instance id. */
    begin_request(&o, KAFKA_JOIN_GROUP, 0);
    ko_string(&o, "g");
    ko_i32(&o, 10000);
    ko_string(&o, "m-1");
    ko_string(&o, "consumer");
    ko_array(&o, 1);
    ko_string(&o, "range");
    ko_bytes(&o, "x", 1);
    decode_whole(&o, &a, dec_join, &j);
    ASSERT_EQ(j.rebalance_timeout_ms, 10000);
    ASSERT(j.group_instance_id == NULL);
    ASSERT_STR_EQ(j.member_id, "m-1");
    check_prefixes(&o, dec_join, sizeof(j));
    ko_free(&o);

    /* The v0 answer: no throttle time; a null protocol name is sent as "" before v7. */
    kafka_group_member mem = {.member_id = "m-1", .meta = "x", .meta_len = 1};
    kafka_join_group_resp jr = {.error_code = 0, .generation_id = 3, .leader = "m-1",
                                .member_id = "m-1", .nmembers = 1, .members = &mem};
    kafka_out resp;
    ko_init(&resp);
    ko_begin(&resp, 9, 0);
    kafka_encode_join_group(&resp, 0, &jr);
    ko_end(&resp);
    /* size, corr, error, generation, "" , "m-1", "m-1", count, "m-1", bytes "x" */
    ASSERT_EQ(resp.mem.len, 4 + 4 + 2 + 4 + 2 + 5 + 5 + 4 + 5 + 5);
    ASSERT_EQ(td_load_be32(resp.mem.p + 10), 3);
    ko_free(&resp);

    /* SyncGroup v5 with the leader's plan. */
    begin_request(&o, KAFKA_SYNC_GROUP, 5);
    ko_string(&o, "g");
    ko_i32(&o, 3);
    ko_string(&o, "m-1");
    ko_string(&o, NULL);
    ko_string(&o, "consumer");
    ko_string(&o, "range");
    ko_array(&o, 1);
    ko_string(&o, "m-1");
    ko_bytes(&o, "plan", 4);
    ko_tags(&o);
    ko_tags(&o);
    kafka_sync_group_req sq;
    decode_whole(&o, &a, dec_sync, &sq);
    ASSERT_EQ(sq.generation_id, 3);
    ASSERT(sq.group_instance_id == NULL);
    ASSERT_STR_EQ(sq.protocol_name, "range");
    ASSERT_EQ(sq.nassignments, 1);
    ASSERT_MEM_EQ(sq.assignments[0].data, "plan", 4);
    check_prefixes(&o, dec_sync, sizeof(sq));
    ko_free(&o);

    /* OffsetCommit v2 (retention time) and v8 (flexible, leader epoch, instance id). */
    begin_request(&o, KAFKA_OFFSET_COMMIT, 2);
    ko_string(&o, "g");
    ko_i32(&o, -1);
    ko_string(&o, "");
    ko_i64(&o, -1);
    ko_array(&o, 1);
    ko_string(&o, "t");
    ko_array(&o, 1);
    ko_i32(&o, 4);
    ko_i64(&o, 77);
    ko_string(&o, NULL);
    kafka_offset_commit_req cq;
    decode_whole(&o, &a, dec_commit, &cq);
    ASSERT_EQ(cq.generation_id, -1);
    ASSERT_EQ(cq.topics[0].parts[0].partition, 4);
    ASSERT_EQ(cq.topics[0].parts[0].offset, 77);
    ASSERT_EQ(cq.topics[0].parts[0].leader_epoch, -1);
    ASSERT(cq.topics[0].parts[0].metadata == NULL);
    check_prefixes(&o, dec_commit, sizeof(cq));
    ko_free(&o);
    begin_request(&o, KAFKA_OFFSET_COMMIT, 8);
    ko_string(&o, "g");
    ko_i32(&o, 5);
    ko_string(&o, "m");
    ko_string(&o, "inst");
    ko_array(&o, 1);
    ko_string(&o, "t");
    ko_array(&o, 1);
    ko_i32(&o, 0);
    ko_i64(&o, 9);
    ko_i32(&o, 2);
    ko_string(&o, "meta");
    ko_tags(&o);
    ko_tags(&o);
    ko_tags(&o);
    decode_whole(&o, &a, dec_commit, &cq);
    ASSERT_STR_EQ(cq.group_instance_id, "inst");
    ASSERT_EQ(cq.topics[0].parts[0].leader_epoch, 2);
    ASSERT_STR_EQ(cq.topics[0].parts[0].metadata, "meta");
    check_prefixes(&o, dec_commit, sizeof(cq));
    ko_free(&o);

    /* OffsetFetch: v7 with null topics (all), v8 with two groups. */
    begin_request(&o, KAFKA_OFFSET_FETCH, 7);
    ko_string(&o, "g");
    ko_array(&o, -1);
    ko_bool(&o, true);
    ko_tags(&o);
    kafka_offset_fetch_req fq;
    decode_whole(&o, &a, dec_offset_fetch, &fq);
    ASSERT_EQ(fq.ngroups, 1);
    ASSERT_EQ(fq.groups[0].ntopics, -1);
    ASSERT(fq.require_stable);
    check_prefixes(&o, dec_offset_fetch, sizeof(fq));
    ko_free(&o);
    begin_request(&o, KAFKA_OFFSET_FETCH, 8);
    ko_array(&o, 2);
    ko_string(&o, "g1");
    ko_array(&o, 1);
    ko_string(&o, "t");
    ko_array(&o, 2);
    ko_i32(&o, 0);
    ko_i32(&o, 1);
    ko_tags(&o);
    ko_tags(&o);
    ko_string(&o, "g2");
    ko_array(&o, -1);
    ko_tags(&o);
    ko_bool(&o, false);
    ko_tags(&o);
    decode_whole(&o, &a, dec_offset_fetch, &fq);
    ASSERT_EQ(fq.ngroups, 2);
    ASSERT_EQ(fq.groups[0].topics[0].nparts, 2);
    ASSERT_EQ(fq.groups[0].topics[0].parts[1].partition, 1);
    ASSERT_EQ(fq.groups[0].topics[0].parts[1].offset, -1);
    ASSERT_EQ(fq.groups[1].ntopics, -1);
    check_prefixes(&o, dec_offset_fetch, sizeof(fq));
    ko_free(&o);
    /* v1 has no null arrays. */
    begin_request(&o, KAFKA_OFFSET_FETCH, 1);
    ko_string(&o, "g");
    ko_array(&o, -1);
    kafka_reader r;
    kr_init(&r, o.mem.p, o.mem.len, &a);
    kafka_header h;
    ASSERT_OK(kafka_decode_header(&r, &h));
    ASSERT_NE(kafka_decode_offset_fetch(&r, 1, &fq), 0);
    ko_free(&o);

    /* LeaveGroup v5 (members) and v0 (one member id). */
    begin_request(&o, KAFKA_LEAVE_GROUP, 5);
    ko_string(&o, "g");
    ko_array(&o, 2);
    ko_string(&o, "m1");
    ko_string(&o, NULL);
    ko_string(&o, "bye");
    ko_tags(&o);
    ko_string(&o, "");
    ko_string(&o, "inst");
    ko_string(&o, NULL);
    ko_tags(&o);
    ko_tags(&o);
    kafka_leave_group_req lq;
    decode_whole(&o, &a, dec_leave, &lq);
    ASSERT_EQ(lq.nmembers, 2);
    ASSERT_STR_EQ(lq.members[0].reason, "bye");
    ASSERT_STR_EQ(lq.members[1].group_instance_id, "inst");
    check_prefixes(&o, dec_leave, sizeof(lq));
    ko_free(&o);
    begin_request(&o, KAFKA_LEAVE_GROUP, 0);
    ko_string(&o, "g");
    ko_string(&o, "m1");
    decode_whole(&o, &a, dec_leave, &lq);
    ASSERT_EQ(lq.nmembers, 1);
    ASSERT_STR_EQ(lq.members[0].member_id, "m1");
    check_prefixes(&o, dec_leave, sizeof(lq));
    ko_free(&o);

    /* FindCoordinator v4 (batched keys) and v1. */
    begin_request(&o, KAFKA_FIND_COORDINATOR, 4);
    ko_i8(&o, 0);
    ko_array(&o, 2);
    ko_string(&o, "a");
    ko_string(&o, "b");
    ko_tags(&o);
    kafka_find_coordinator_req fc;
    decode_whole(&o, &a, dec_find, &fc);
    ASSERT_EQ(fc.nkeys, 2);
    ASSERT_STR_EQ(fc.keys[1].key, "b");
    check_prefixes(&o, dec_find, sizeof(fc));
    ko_free(&o);
    begin_request(&o, KAFKA_FIND_COORDINATOR, 1);
    ko_string(&o, "a");
    ko_i8(&o, 1);
    decode_whole(&o, &a, dec_find, &fc);
    ASSERT_EQ(fc.key_type, 1);
    ASSERT_EQ(fc.nkeys, 1);
    check_prefixes(&o, dec_find, sizeof(fc));
    ko_free(&o);

    /* The consumer protocol's subscription: topics out, junk refused. */
    kafka_out sub;
    ko_init(&sub);
    ko_i16(&sub, 1);
    ko_array(&sub, 2);
    ko_string(&sub, "orders");
    ko_string(&sub, "payments");
    ko_bytes(&sub, NULL, -1);
    ko_array(&sub, 0);
    const char **topics;
    ASSERT_EQ(kafka_consumer_subscription_topics(sub.mem.p, sub.mem.len, &a, &topics), 2);
    ASSERT_STR_EQ(topics[1], "payments");
    ASSERT_EQ(kafka_consumer_subscription_topics(sub.mem.p, 5, &a, &topics), -1);
    ASSERT_EQ(kafka_consumer_subscription_topics((const uint8_t *)"\xff\xff", 2, &a, &topics),
              -1);
    ko_free(&sub);

    /* The consumer protocol's assignment: version 1; [("ab", [0, 7]), ("c", [])]; user data. */
    static const uint8_t asg[] = {0, 1, 0, 0, 0, 2, 0, 2, 'a', 'b', 0, 0, 0, 2, 0, 0, 0,
                                  0, 0, 0, 0, 7, 0, 1, 'c', 0, 0, 0, 0, 0, 0, 0, 4, 1, 2, 3, 4};
    coord_assigned_topic *at;
    ASSERT_EQ(coord_assignment_topics(asg, sizeof(asg), &a, &at), 2);
    ASSERT_STR_EQ(at[0].topic, "ab");
    ASSERT_EQ(at[0].npartitions, 2);
    ASSERT_EQ(at[0].partitions[0], 0);
    ASSERT_EQ(at[0].partitions[1], 7);
    ASSERT_STR_EQ(at[1].topic, "c");
    ASSERT_EQ(at[1].npartitions, 0);
    /* Every prefix that cuts the topics short is refused; past them, user data is not read. */
    for (size_t k = 0; k < 29; k++)
        ASSERT_EQ(coord_assignment_topics(asg, k, &a, &at), -1);
    /* Negative counts and lengths, counts beyond the bytes, a negative version. */
    static const uint8_t neg_topics[] = {0, 0, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t null_topic[] = {0, 0, 0, 0, 0, 1, 0xff, 0xff};
    static const uint8_t many[] = {0, 0, 0, 0, 0, 1, 0, 1, 'x', 0x10, 0, 0, 0, 0, 0, 0, 1};
    static const uint8_t neg_version[] = {0xff, 0xff, 0, 0, 0, 0};
    ASSERT_EQ(coord_assignment_topics(neg_topics, sizeof(neg_topics), &a, &at), -1);
    ASSERT_EQ(coord_assignment_topics(null_topic, sizeof(null_topic), &a, &at), -1);
    ASSERT_EQ(coord_assignment_topics(many, sizeof(many), &a, &at), -1);
    ASSERT_EQ(coord_assignment_topics(neg_version, sizeof(neg_version), &a, &at), -1);
    td_arena_free(&a);
}

static int dec_init_pid(kafka_reader *r, int16_t v, void *out)
{
    return kafka_decode_init_producer_id(r, v, out);
}

/* InitProducerId: v0-2 carry no producer id; v3+ do; v2+ are flexible. */
static void test_init_producer_id(void)
{
    for (int16_t v = 0; v <= 4; v++) {
        kafka_out o;
        begin_request(&o, KAFKA_INIT_PRODUCER_ID, v);
        ko_string(&o, v == 1 ? "tx-1" : NULL);
        ko_i32(&o, 60000);
        if (v >= 3) {
            ko_i64(&o, 42);
            ko_i16(&o, 3);
        }
        ko_tags(&o);
        td_arena a;
        td_arena_init(&a);
        kafka_init_producer_id_req q;
        decode_whole(&o, &a, dec_init_pid, &q);
        if (v == 1)
            ASSERT_STR_EQ(q.transactional_id, "tx-1");
        else
            ASSERT(q.transactional_id == NULL);
        ASSERT_EQ(q.transaction_timeout_ms, 60000);
        ASSERT_EQ(q.producer_id, v >= 3 ? 42 : -1);
        ASSERT_EQ(q.producer_epoch, v >= 3 ? 3 : -1);
        check_prefixes(&o, dec_init_pid, sizeof(q));
        kafka_out resp;
        ko_init(&resp);
        ko_begin(&resp, 9, kafka_response_header_version(KAFKA_INIT_PRODUCER_ID, v));
        kafka_init_producer_id_resp m = {KERR_NONE, 1234567890123, 0};
        kafka_encode_init_producer_id(&resp, v, &m);
        ko_end(&resp);
        /* size, correlation, [header tags], throttle, error, producer id, epoch, [tags] */
        size_t flex = v >= 2;
        ASSERT_EQ(resp.mem.len, 4 + 4 + flex + 4 + 2 + 8 + 2 + flex);
        ASSERT_EQ((int64_t)td_load_be64(resp.mem.p + 8 + flex + 6), 1234567890123);
        ko_free(&resp);
        ko_free(&o);
        td_arena_free(&a);
    }
}

static int dec_describe_acls(kafka_reader *r, int16_t v, void *out)
{
    return kafka_decode_describe_acls(r, v, out);
}
static int dec_create_acls(kafka_reader *r, int16_t v, void *out)
{
    return kafka_decode_create_acls(r, v, out);
}
static int dec_delete_acls(kafka_reader *r, int16_t v, void *out)
{
    return kafka_decode_delete_acls(r, v, out);
}

static void put_binding(kafka_out *o, int16_t v, const char *name, const char *principal)
{
    ko_i8(o, TD_RES_TOPIC);
    ko_string(o, name);
    if (v >= 1)
        ko_i8(o, TD_PAT_PREFIXED);
    ko_string(o, principal);
    ko_string(o, "*");
    ko_i8(o, TD_OP_READ);
    ko_i8(o, TD_PERM_ALLOW);
}

/* DescribeAcls, CreateAcls, DeleteAcls v0-3: v0 carries no pattern type (LITERAL is meant);
 * v2+ are flexible; every prefix is refused; the responses have Kafka's layout. */
static void test_acl_requests(void)
{
    for (int16_t v = 0; v <= 3; v++) {
        td_arena a;
        td_arena_init(&a);
        kafka_out o;
        begin_request(&o, KAFKA_DESCRIBE_ACLS, v);
        put_binding(&o, v, NULL, "User:alice");
        ko_tags(&o);
        kafka_acl_binding f;
        decode_whole(&o, &a, dec_describe_acls, &f);
        ASSERT_EQ(f.resource_type, TD_RES_TOPIC);
        ASSERT(f.resource_name == NULL);
        ASSERT_EQ(f.pattern_type, v >= 1 ? TD_PAT_PREFIXED : TD_PAT_LITERAL);
        ASSERT_STR_EQ(f.principal, "User:alice");
        ASSERT_STR_EQ(f.host, "*");
        ASSERT_EQ(f.operation, TD_OP_READ);
        ASSERT_EQ(f.permission, TD_PERM_ALLOW);
        check_prefixes(&o, dec_describe_acls, sizeof(f));
        ko_free(&o);

        for (int k = 0; k < 2; k++) {
            int16_t key = k ? KAFKA_DELETE_ACLS : KAFKA_CREATE_ACLS;
            begin_request(&o, key, v);
            ko_array(&o, 2);
            put_binding(&o, v, "orders", "User:a");
            ko_tags(&o);
            put_binding(&o, v, "logs", NULL);
            ko_tags(&o);
            ko_tags(&o);
            kafka_acl_list_req q;
            decode_whole(&o, &a, k ? dec_delete_acls : dec_create_acls, &q);
            ASSERT_EQ(q.n, 2);
            ASSERT_STR_EQ(q.v[0].resource_name, "orders");
            ASSERT_STR_EQ(q.v[0].principal, "User:a");
            ASSERT_STR_EQ(q.v[1].resource_name, "logs");
            ASSERT(q.v[1].principal == NULL);
            ASSERT_EQ(q.v[1].pattern_type, v >= 1 ? TD_PAT_PREFIXED : TD_PAT_LITERAL);
            check_prefixes(&o, k ? dec_delete_acls : dec_create_acls, sizeof(q));
            ko_free(&o);
        }

        /* Responses: two ACLs of one resource and one of another make two resources; a
         * wildcard ACL's pattern type is UNKNOWN (0) on the wire. */
        td_acl acls[3] = {
            {.principal = "User:a", .host = "*", .resource_type = TD_RES_TOPIC,
             .pattern_type = TD_PAT_LITERAL, .name = "t", .operation = TD_OP_READ,
             .permission = TD_PERM_ALLOW},
            {.principal = "User:b", .host = "*", .resource_type = TD_RES_TOPIC,
             .pattern_type = TD_PAT_LITERAL, .name = "t", .operation = TD_OP_WRITE,
             .permission = TD_PERM_DENY},
            {.principal = "User:c", .host = "::1", .resource_type = TD_RES_TOPIC,
             .pattern_type = TD_PAT_WILDCARD, .name = "t.*", .operation = TD_OP_ALL,
             .permission = TD_PERM_ALLOW},
        };
        kafka_out resp;
        ko_init(&resp);
        ko_begin(&resp, 9, kafka_response_header_version(KAFKA_DESCRIBE_ACLS, v));
        kafka_encode_describe_acls(&resp, v, KERR_NONE, NULL, acls, 3);
        ko_end(&resp);
        kafka_reader r;
        kr_init(&r, resp.mem.p + 8, resp.mem.len - 8, &a);
        kr_set_flexible(&r, KAFKA_DESCRIBE_ACLS, v);
        if (v >= 2)
            kr_tags(&r); /* the response header's */
        ASSERT_EQ(kr_i32(&r), 0);
        ASSERT_EQ(kr_i16(&r), KERR_NONE);
        ASSERT(kr_string(&r) == NULL);
        ASSERT_EQ(kr_array(&r), 2);
        ASSERT_EQ(kr_i8(&r), TD_RES_TOPIC);
        ASSERT_STR_EQ(kr_string(&r), "t");
        if (v >= 1)
            ASSERT_EQ(kr_i8(&r), TD_PAT_LITERAL);
        ASSERT_EQ(kr_array(&r), 2);
        for (int i = 0; i < 2; i++) {
            ASSERT_STR_EQ(kr_string(&r), acls[i].principal);
            ASSERT_STR_EQ(kr_string(&r), "*");
            ASSERT_EQ(kr_i8(&r), acls[i].operation);
            ASSERT_EQ(kr_i8(&r), acls[i].permission);
            kr_tags(&r);
        }
        kr_tags(&r);
        ASSERT_EQ(kr_i8(&r), TD_RES_TOPIC);
        ASSERT_STR_EQ(kr_string(&r), "t.*");
        if (v >= 1)
            ASSERT_EQ(kr_i8(&r), 0);
        ASSERT_EQ(kr_array(&r), 1);
        ASSERT_STR_EQ(kr_string(&r), "User:c");
        ASSERT_STR_EQ(kr_string(&r), "::1");
        ASSERT_EQ(kr_i8(&r), TD_OP_ALL);
        ASSERT_EQ(kr_i8(&r), TD_PERM_ALLOW);
        kr_tags(&r);
        kr_tags(&r);
        kr_tags(&r);
        ASSERT_EQ(r.err, 0);
        ASSERT_EQ(r.off, r.n);
        ko_free(&resp);

        ko_init(&resp);
        ko_begin(&resp, 9, kafka_response_header_version(KAFKA_DELETE_ACLS, v));
        kafka_acl_result res[2] = {{KERR_NONE, NULL, acls, 1},
                                   {KERR_INVALID_REQUEST, "bad filter", NULL, 0}};
        kafka_encode_delete_acls(&resp, v, res, 2);
        ko_end(&resp);
        kr_init(&r, resp.mem.p + 8, resp.mem.len - 8, &a);
        kr_set_flexible(&r, KAFKA_DELETE_ACLS, v);
        if (v >= 2)
            kr_tags(&r);
        ASSERT_EQ(kr_i32(&r), 0);
        ASSERT_EQ(kr_array(&r), 2);
        ASSERT_EQ(kr_i16(&r), KERR_NONE);
        ASSERT(kr_string(&r) == NULL);
        ASSERT_EQ(kr_array(&r), 1);
        ASSERT_EQ(kr_i16(&r), KERR_NONE);
        ASSERT(kr_string(&r) == NULL);
        ASSERT_EQ(kr_i8(&r), TD_RES_TOPIC);
        ASSERT_STR_EQ(kr_string(&r), "t");
        if (v >= 1)
            ASSERT_EQ(kr_i8(&r), TD_PAT_LITERAL);
        ASSERT_STR_EQ(kr_string(&r), "User:a");
        ASSERT_STR_EQ(kr_string(&r), "*");
        ASSERT_EQ(kr_i8(&r), TD_OP_READ);
        ASSERT_EQ(kr_i8(&r), TD_PERM_ALLOW);
        kr_tags(&r);
        kr_tags(&r);
        ASSERT_EQ(kr_i16(&r), KERR_INVALID_REQUEST);
        ASSERT_STR_EQ(kr_string(&r), "bad filter");
        ASSERT_EQ(kr_array(&r), 0);
        kr_tags(&r);
        kr_tags(&r);
        ASSERT_EQ(r.err, 0);
        ASSERT_EQ(r.off, r.n);
        ko_free(&resp);

        ko_init(&resp);
        ko_begin(&resp, 9, kafka_response_header_version(KAFKA_CREATE_ACLS, v));
        kafka_encode_create_acls(&resp, v, res, 2);
        ko_end(&resp);
        size_t flex = v >= 2;
        /* size, correlation, [tags], throttle, count, (error, null message, [tags]),
         * (error, message, [tags]), [tags] */
        ASSERT_EQ(resp.mem.len, 4 + 4 + flex + 4 + (flex ? 1 : 4) + (2 + (flex ? 1 : 2) + flex) +
                                    (2 + (flex ? 1 : 2) + 10 + flex) + flex);
        ko_free(&resp);
        td_arena_free(&a);
    }
}

TEST_MAIN(TEST(test_group_requests), TEST(test_primitives_roundtrip), TEST(test_strings_with_nul), TEST(test_array_count_checked_before_allocation),
          TEST(test_framing), TEST(test_produce_v9_and_v3), TEST(test_fetch_v4_to_v17),
          TEST(test_metadata_null_and_empty), TEST(test_create_topics_v7),
          TEST(test_describe_configs), TEST(test_alter_configs_and_delete_records),
          TEST(test_api_table), TEST(test_api_versions_encoding), TEST(test_init_producer_id),
          TEST(test_acl_requests))
