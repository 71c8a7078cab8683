/* Unit tests for the client-quota messages (proto/kafka/msgs_quota.c): DescribeClientQuotas and
 * AlterClientQuotas in both encodings, null names (the default entity), float64 values, every
 * prefix of a valid frame refused, and the responses' layout. */
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

static int dec_describe(kafka_reader *r, int16_t v, void *out)
{
    return kafka_decode_describe_quotas(r, v, out);
}
static int dec_alter(kafka_reader *r, int16_t v, void *out)
{
    return kafka_decode_alter_quotas(r, v, out);
}

/* The whole frame decodes to its end; every strict prefix fails. */
static void decode_checked(const kafka_out *o, td_arena *a, decode_fn fn, void *out, size_t size)
{
    kafka_reader r;
    kr_init(&r, o->mem.p, o->mem.len, a);
    kafka_header h;
    ASSERT_OK(kafka_decode_header(&r, &h));
    ASSERT_OK(fn(&r, h.api_version, out));
    ASSERT_EQ(r.off, o->mem.len);
    void *scratch = malloc(size);
    ASSERT(scratch);
    for (size_t n = 0; n < o->mem.len; n++) {
        td_arena pa;
        td_arena_init(&pa);
        kafka_reader pr;
        kr_init(&pr, o->mem.p, n, &pa);
        int rc = kafka_decode_header(&pr, &h);
        if (rc == 0)
            rc = fn(&pr, h.api_version, scratch);
        ASSERT_NE(rc, 0);
        td_arena_free(&pa);
    }
    free(scratch);
}

static void test_describe_request(void)
{
    for (int16_t v = 0; v <= 1; v++) {
        kafka_out o;
        begin_request(&o, KAFKA_DESCRIBE_CLIENT_QUOTAS, v);
        ko_array(&o, 2);
        ko_string(&o, "user");
        ko_i8(&o, 0);
        ko_string(&o, "alice");
        ko_tags(&o);
        ko_string(&o, "client-id");
        ko_i8(&o, 1);
        ko_string(&o, NULL);
        ko_tags(&o);
        ko_bool(&o, true);
        ko_tags(&o);
        td_arena a;
        td_arena_init(&a);
        kafka_describe_quotas_req q;
        decode_checked(&o, &a, dec_describe, &q, sizeof(q));
        ASSERT_EQ(q.nfilters, 2);
        ASSERT_STR_EQ(q.filters[0].type, "user");
        ASSERT_EQ(q.filters[0].match_type, 0);
        ASSERT_STR_EQ(q.filters[0].match, "alice");
        ASSERT_STR_EQ(q.filters[1].type, "client-id");
        ASSERT_EQ(q.filters[1].match_type, 1);
        ASSERT(q.filters[1].match == NULL);
        ASSERT(q.strict);
        ko_free(&o);
        td_arena_free(&a);
    }
}

static void test_alter_request(void)
{
    for (int16_t v = 0; v <= 1; v++) {
        kafka_out o;
        begin_request(&o, KAFKA_ALTER_CLIENT_QUOTAS, v);
        ko_array(&o, 1);
        ko_array(&o, 2); /* entity */
        ko_string(&o, "user");
        ko_string(&o, NULL);
        ko_tags(&o);
        ko_string(&o, "client-id");
        ko_string(&o, "app");
        ko_tags(&o);
        ko_array(&o, 2); /* ops */
        ko_string(&o, "producer_byte_rate");
        ko_f64(&o, 1048576.0);
        ko_bool(&o, false);
        ko_tags(&o);
        ko_string(&o, "request_percentage");
        ko_f64(&o, 0);
        ko_bool(&o, true);
        ko_tags(&o);
        ko_tags(&o);
        ko_bool(&o, true); /* validate_only */
        ko_tags(&o);
        td_arena a;
        td_arena_init(&a);
        kafka_alter_quotas_req q;
        decode_checked(&o, &a, dec_alter, &q, sizeof(q));
        ASSERT_EQ(q.nentries, 1);
        ASSERT_EQ(q.entries[0].nparts, 2);
        ASSERT_STR_EQ(q.entries[0].parts[0].type, "user");
        ASSERT(q.entries[0].parts[0].name == NULL);
        ASSERT_STR_EQ(q.entries[0].parts[1].name, "app");
        ASSERT_EQ(q.entries[0].nops, 2);
        ASSERT(q.entries[0].ops[0].value == 1048576.0);
        ASSERT(!q.entries[0].ops[0].remove);
        ASSERT(q.entries[0].ops[1].remove);
        ASSERT(q.validate_only);
        ko_free(&o);
        td_arena_free(&a);
    }
}

/* The describe response: throttle, error, entries with a null (default) name and a float64
 * value at known offsets (classic encoding). */
static void test_describe_response(void)
{
    kafka_out o;
    ko_init(&o);
    kafka_quota_entity_part parts[] = {{"user", NULL}};
    kafka_quota_value vals[] = {{"consumer_byte_rate", 2.5}};
    kafka_quota_entry entry = {1, parts, 1, vals};
    kafka_describe_quotas_resp m = {KERR_NONE, NULL, 1, &entry};
    kafka_encode_describe_quotas(&o, 0, &m);
    const uint8_t *p = o.mem.p;
    ASSERT_EQ(td_load_be32(p), 0);                   /* throttle_time_ms */
    ASSERT_EQ(td_load_be16(p + 4), 0);               /* error_code */
    ASSERT_EQ((int16_t)td_load_be16(p + 6), -1);     /* error_message null */
    ASSERT_EQ(td_load_be32(p + 8), 1);               /* entries */
    ASSERT_EQ(td_load_be32(p + 12), 1);              /* entity parts */
    ASSERT_EQ(td_load_be16(p + 16), 4);              /* "user" */
    ASSERT(!memcmp(p + 18, "user", 4));
    ASSERT_EQ((int16_t)td_load_be16(p + 22), -1);    /* the default: a null name */
    ASSERT_EQ(td_load_be32(p + 24), 1);              /* values */
    ASSERT_EQ(td_load_be16(p + 28), 18);
    uint64_t bits = td_load_be64(p + 30 + 18);
    double d;
    memcpy(&d, &bits, sizeof(d));
    ASSERT(d == 2.5);
    ASSERT_EQ(o.mem.len, (size_t)(30 + 18 + 8));
    ko_free(&o);
    /* A refused describe has null entries. */
    ko_init(&o);
    kafka_describe_quotas_resp err = {KERR_INVALID_REQUEST, "bad", -1, NULL};
    kafka_encode_describe_quotas(&o, 0, &err);
    ASSERT_EQ(td_load_be16(o.mem.p + 4), KERR_INVALID_REQUEST);
    ASSERT_EQ((int32_t)td_load_be32(o.mem.p + 11), -1);
    ko_free(&o);
}

TEST_MAIN(TEST(test_describe_request), TEST(test_alter_request), TEST(test_describe_response))
