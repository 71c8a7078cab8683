/* Unit tests for the partition calls of broker.h (broker/partition.c), through which the
 * listeners append, read, trim and use stream IDs: the checks of a producer's record batches and
 * the faults they report, appends and reads on an engine's partition, and the coordinator's
 * decoder of Kafka consumers' assignments (broker/group_assign.c) on a name with a NUL byte. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/group.h"
#include "storage/batch.h"
#include "test.h"

/* A batch of n events as a producer would send it (offset 0, CreateTime). */
static void encode(td_buf *b, size_t n, int64_t pid)
{
    td_event ev[8];
    for (size_t i = 0; i < n; i++)
        ev[i] = (td_event){.value = "value", .value_len = 5, .timestamp_ms = td_wall_ms()};
    td_batch_encode_opts o;
    batch_encode_opts_init(&o);
    if (pid >= 0) {
        o.producer_id = pid;
        o.producer_epoch = 0;
        o.base_sequence = 0;
    }
    td_buf_init(b);
    ASSERT_OK(batch_encode(b, &o, ev, n));
}

/* Recomputes the CRC after a change to the bytes it covers (attributes onwards). */
static void fix_crc(uint8_t *p, size_t n)
{
    td_store_be32(p + 17, td_crc32c(0, p + 21, n - 21));
}

static int check(uint8_t *p, size_t n, int32_t max, const char **why)
{
    *why = NULL;
    int f = broker_batches_check(p, n, max, why, NULL);
    ASSERT(f == BROKER_BATCH_OK || *why != NULL); /* every refusal says why */
    return f;
}

static void test_batches_check(void)
{
    td_buf b;
    encode(&b, 3, -1);
    const char *why;
    ASSERT_EQ(check(b.p, b.len, 0, &why), BROKER_BATCH_OK);
    ASSERT_EQ(broker_batch_size(b.p), b.len);
    ASSERT_EQ(check(b.p, 0, 0, &why), BROKER_BATCH_CORRUPT);
    ASSERT_STR_EQ(why, "no record batch");
    ASSERT_EQ(check(b.p, 30, 0, &why), BROKER_BATCH_CORRUPT);
    ASSERT_STR_EQ(why, "a truncated record batch");
    ASSERT_EQ(check(b.p, b.len - 1, 0, &why), BROKER_BATCH_CORRUPT);
    ASSERT_EQ(check(b.p, b.len, (int32_t)b.len - 1, &why), BROKER_BATCH_TOO_LARGE);
    ASSERT_EQ(check(b.p, b.len, (int32_t)b.len, &why), BROKER_BATCH_OK);

    uint8_t *c = malloc(2 * b.len);
    ASSERT(c != NULL);
    memcpy(c, b.p, b.len);
    c[16] = 1; /* magic 1 */
    ASSERT_EQ(check(c, b.len, 0, &why), BROKER_BATCH_OLD_FORMAT);
    memcpy(c, b.p, b.len);
    c[b.len - 1] ^= 1; /* a record byte, CRC not fixed */
    ASSERT_EQ(check(c, b.len, 0, &why), BROKER_BATCH_CORRUPT);
    ASSERT_STR_EQ(why, "CRC mismatch");
    const struct {
        uint8_t attr;
        int fault;
    } attrs[] = {{TD_BATCH_ATTR_CONTROL, BROKER_BATCH_INVALID},
                 {TD_BATCH_ATTR_TRANSACTIONAL, BROKER_BATCH_INVALID}, /* without a producer */
                 {7, BROKER_BATCH_COMPRESSION}};
    for (size_t i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++) {
        memcpy(c, b.p, b.len);
        c[22] |= attrs[i].attr;
        fix_crc(c, b.len);
        ASSERT_EQ(check(c, b.len, 0, &why), attrs[i].fault);
    }
    /* Records that do not decode, under a valid CRC: the header counts one more than there is. */
    memcpy(c, b.p, b.len);
    td_store_be32(c + 57, 4);
    fix_crc(c, b.len);
    ASSERT_EQ(check(c, b.len, 0, &why), BROKER_BATCH_INVALID);
    ASSERT_STR_EQ(why, "invalid records");

    /* Two batches back to back are accepted, unless one is an idempotent producer's. */
    memcpy(c, b.p, b.len);
    memcpy(c + b.len, b.p, b.len);
    ASSERT_EQ(check(c, 2 * b.len, 0, &why), BROKER_BATCH_OK);
    td_buf idem;
    encode(&idem, 3, 7);
    ASSERT_EQ(idem.len, b.len);
    ASSERT_EQ(check(idem.p, idem.len, 0, &why), BROKER_BATCH_OK);
    memcpy(c, idem.p, idem.len);
    memcpy(c + b.len, b.p, b.len);
    ASSERT_EQ(check(c, 2 * b.len, 0, &why), BROKER_BATCH_INVALID);
    /* A producer id without an epoch. */
    memcpy(c, idem.p, idem.len);
    td_store_be16(c + 51, 0xffff);
    fix_crc(c, idem.len);
    ASSERT_EQ(check(c, idem.len, 0, &why), BROKER_BATCH_INVALID);
    free(c);
    td_buf_free(&idem);
    td_buf_free(&b);
}

static void test_append_read_trim(void)
{
    char *dir = test_tmpdir("partition");
    td_engine *e = test_engine_open(dir);
    ASSERT_OK(td_topic_create(e, "t", 1, NULL, 0));
    td_topic_ref *ref;
    ASSERT_OK(broker_topic_acquire(e, "t", &ref));
    td_part *p = broker_topic_part(ref, 0);
    ASSERT(p != NULL);
    ASSERT(broker_part_offline(p) == NULL);

    td_buf b;
    encode(&b, 3, -1);
    size_t len = b.len;
    broker_append_result res;
    for (int i = 0; i < 2; i++) {
        ASSERT_OK(broker_part_append_checked(p, b.p, b.len, td_wall_ms(), &res));
        ASSERT_EQ(res.base_offset, 3 * i);
        ASSERT_EQ(res.last_offset, 3 * i + 2);
        ASSERT_EQ(res.end_offset, 3 * i + 3);
        ASSERT(!res.duplicate);
    }
    ASSERT_OK(broker_part_wait_durable(p, res.end_offset));
    ASSERT_EQ(broker_part_high_watermark(p), 6);
    ASSERT_EQ(broker_part_log_start(p), 0);
    ASSERT_EQ(broker_part_segments(p), 1);

    /* A range from an offset inside the first batch starts at that batch. */
    broker_range r;
    ASSERT_OK(broker_part_read(p, 1, 1 << 20, &r));
    ASSERT(r.fd >= 0);
    ASSERT_EQ(r.pos, 0);
    ASSERT_EQ(r.len, (int64_t)(2 * len));
    ASSERT_EQ(r.first_offset, 0);
    ASSERT_EQ(r.next_offset, 6);
    broker_range_release(&r);
    broker_range_release(&r); /* a second release does nothing */
    /* At least one whole batch, however small the limit. */
    ASSERT_OK(broker_part_read(p, 4, 1, &r));
    ASSERT_EQ(r.pos, (int64_t)len);
    ASSERT_EQ(r.len, (int64_t)len);
    broker_range_release(&r);
    ASSERT_EQ(broker_part_read(p, 6, 1 << 20, &r), TD_EEND);
    ASSERT_EQ(broker_part_read(p, 7, 1 << 20, &r), TD_ERANGE);
    int64_t n;
    ASSERT_OK(broker_part_count_records(p, 0, 6, &n));
    ASSERT_EQ(n, 6);
    ASSERT(!broker_part_has_gaps(p));

    /* Stream IDs: an explicit ID, then one at or below the last is refused. */
    td_event ev = {.value = "v", .value_len = 1};
    broker_sid_req req = {BROKER_SID_EXPLICIT, {INT64_C(4000000000000), 5}, {0, 0}};
    ASSERT_OK(broker_stream_append(p, &ev, 1, td_wall_ms(), &req, &res));
    ASSERT_EQ(res.base_offset, 6);
    ASSERT_EQ(req.got.ms, INT64_C(4000000000000));
    ASSERT_EQ(req.got.seq, 5);
    ASSERT_OK(broker_part_wait_durable(p, res.end_offset)); /* readers see it from here */
    td_sid last, id;
    ASSERT_OK(broker_stream_last(p, &last));
    ASSERT_EQ(td_sid_cmp(last, req.got), 0);
    ASSERT_OK(broker_stream_id(p, 6, &id, NULL));
    ASSERT_EQ(td_sid_cmp(id, req.got), 0);
    int64_t off;
    ASSERT_OK(broker_stream_find(p, req.got, &off));
    ASSERT_EQ(off, 6);
    ASSERT_EQ(broker_stream_append(p, &ev, 1, td_wall_ms(), &req, &res), TD_ESEQUENCE);
    td_error_clear();

    /* Trimming moves the log start; reading below it is out of range. */
    int64_t ls;
    ASSERT_OK(broker_part_delete_before(p, 3, &ls));
    ASSERT_EQ(ls, 3);
    ASSERT_EQ(broker_part_log_start(p), 3);
    ASSERT_EQ(broker_part_read(p, 0, 1 << 20, &r), TD_ERANGE);

    td_buf_free(&b);
    broker_topic_release(ref);
    td_engine_close(e);
    test_rmrf(dir);
}

static void test_assignment_name_with_nul(void)
{
    /* Version 0, one topic "a\0" with one partition: not a topic name, not an assignment. */
    static const uint8_t nul[] = {0, 0, 0, 0, 0, 1, 0, 2, 'a', 0, 0, 0, 0, 1, 0, 0, 0, 3};
    static const uint8_t ok[] = {0, 0, 0, 0, 0, 1, 0, 2, 'a', 'b', 0, 0, 0, 1, 0, 0, 0, 3};
    td_arena a;
    td_arena_init(&a);
    coord_assigned_topic *at;
    ASSERT_EQ(coord_assignment_topics(nul, sizeof(nul), &a, &at), -1);
    ASSERT_EQ(coord_assignment_topics(ok, sizeof(ok), &a, &at), 1);
    ASSERT_STR_EQ(at[0].topic, "ab");
    ASSERT_EQ(at[0].npartitions, 1);
    ASSERT_EQ(at[0].partitions[0], 3);
    td_arena_free(&a);
}

/* broker_expected_version_parse over exact-size copies (ASan sees any read past the end), and
 * every truncation of each valid text. */
static int parse(const char *s, size_t n, int64_t *v)
{
    uint8_t *c = malloc(n ? n : 1);
    ASSERT(c != NULL);
    memcpy(c, s, n);
    int rc = broker_expected_version_parse(c, n, v);
    free(c);
    return rc;
}

static void test_expected_version_parse(void)
{
    static const struct {
        const char *s;
        int64_t v;
    } ok[] = {{"any", TD_VERSION_ANY},       {"no_stream", TD_VERSION_NO_STREAM},
              {"exists", TD_VERSION_EXISTS}, {"0", 0},
              {"42", 42},                    {"007", 7},
              {"9223372036854775807", INT64_MAX}};
    int64_t v;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        size_t n = strlen(ok[i].s);
        v = -100;
        ASSERT_OK(parse(ok[i].s, n, &v));
        ASSERT_EQ(v, ok[i].v);
        for (size_t k = 0; k < n; k++) { /* truncated: a number's prefix is a number */
            int rc = parse(ok[i].s, k, &v);
            if (ok[i].v >= 0 && k > 0)
                ASSERT_OK(rc);
            else
                ASSERT_EQ(rc, TD_EINVAL);
        }
    }
    static const char *bad[] = {"",   "-1",  "+1",   " 1",   "1 ",   "1x",     "0x10",
                                "ANY", "Any", "none", "no-stream", "exist", "existss",
                                "9223372036854775808", "99999999999999999999", "1e3"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = -100;
        ASSERT_EQ(parse(bad[i], strlen(bad[i]), &v), TD_EINVAL);
        ASSERT_EQ(v, -100); /* untouched */
    }
    ASSERT_EQ(parse("1\0", 2, &v), TD_EINVAL);
}

/* A batch of one record per (key, expected) pair; expected NULL: no header. */
static void encode_expect(td_buf *b, const char *const *keys, const char *const *expected,
                          size_t n, int codec)
{
    td_event ev[8];
    td_header h[8];
    for (size_t i = 0; i < n; i++) {
        h[i] = (td_header){BROKER_EXPECT_HEADER, strlen(BROKER_EXPECT_HEADER), expected[i],
                           expected[i] ? strlen(expected[i]) : 0};
        ev[i] = (td_event){.key = keys[i], .key_len = keys[i] ? strlen(keys[i]) : 0,
                           .value = "v", .value_len = 1, .timestamp_ms = td_wall_ms(),
                           .headers = expected[i] ? &h[i] : NULL,
                           .header_count = expected[i] ? 1 : 0};
    }
    td_batch_encode_opts o;
    batch_encode_opts_init(&o);
    o.compression = codec;
    td_buf_init(b);
    ASSERT_OK(batch_encode(b, &o, ev, n));
}

static int append_expect(td_part *p, const char *const *keys, const char *const *expected,
                         size_t n, int codec, int32_t *bad, broker_append_result *res)
{
    td_buf b;
    encode_expect(&b, keys, expected, n, codec);
    /* broker_batches_check counts the headers, compressed or not */
    size_t want = 0, got = 99;
    const char *why;
    for (size_t i = 0; i < n; i++)
        want += expected[i] != NULL;
    ASSERT_EQ(broker_batches_check(b.p, b.len, 0, &why, &got), BROKER_BATCH_OK);
    ASSERT_EQ(got, want);
    int rc = broker_part_append_expect(p, b.p, b.len, 0, td_wall_ms(), res, bad);
    td_buf_free(&b);
    return rc;
}

static void test_append_expect(void)
{
    char *dir = test_tmpdir("partition-expect");
    td_engine *e = test_engine_open(dir);
    td_config_entry cfg[] = {{"key.index", "true"}};
    ASSERT_OK(td_topic_create(e, "k", 1, cfg, 1));
    ASSERT_OK(td_topic_create(e, "plain", 1, NULL, 0));
    td_topic_ref *ref, *pref;
    ASSERT_OK(broker_topic_acquire(e, "k", &ref));
    ASSERT_OK(broker_topic_acquire(e, "plain", &pref));
    td_part *p = broker_topic_part(ref, 0), *pp = broker_topic_part(pref, 0);
    broker_append_result res;
    int32_t bad;
    const char *k2[] = {"a", "b"}, *k1[] = {"a"}, *knull[] = {NULL};
    int64_t hw = 0; /* the next offset of p */
    for (int codec = TD_COMPRESS_NONE; codec <= TD_COMPRESS_GZIP; codec++) {
        const char *first[] = {codec ? "exists" : "no_stream", "any"};
        ASSERT_OK(append_expect(p, k2, first, 2, codec, &bad, &res));
        ASSERT_EQ(res.base_offset, hw);
        ASSERT_EQ(bad, -1);
        /* "a" is at hw now: a wrong version fails the whole batch, naming the record */
        char ok[24], wrong[24];
        snprintf(ok, sizeof(ok), "%" PRId64, hw);
        snprintf(wrong, sizeof(wrong), "%" PRId64, hw + 1);
        const char *two[] = {ok, wrong};
        const char *ka[] = {"a", "a"};
        ASSERT_EQ(append_expect(p, ka, two, 2, codec, &bad, &res), TD_EVERSION);
        ASSERT_EQ(bad, 1);
        ASSERT(strstr(td_last_error(), "key 'a'") != NULL);
        const char *right[] = {ok};
        ASSERT_OK(append_expect(p, k1, right, 1, codec, &bad, &res));
        ASSERT_EQ(res.base_offset, hw + 2); /* the failed batch wrote nothing */
        /* malformed, and a header on a record without a key */
        const char *junk[] = {NULL, "x"};
        ASSERT_EQ(append_expect(p, k2, junk, 2, codec, &bad, &res), TD_EINVAL);
        ASSERT_EQ(bad, 1);
        const char *ns[] = {"no_stream"};
        ASSERT_EQ(append_expect(p, knull, ns, 1, codec, &bad, &res), TD_EINVAL);
        ASSERT_EQ(bad, 0);
        /* no key.index: refused, "any" and no header accepted */
        ASSERT_EQ(append_expect(pp, k1, ns, 1, codec, &bad, &res), TD_EUNSUPPORTED);
        ASSERT_EQ(bad, 0);
        ASSERT(strstr(td_last_error(), "key.index") != NULL);
        const char *any[] = {"any", NULL};
        ASSERT_OK(append_expect(pp, k2, any, 2, codec, &bad, &res));
        hw += 3;
    }
    td_error_clear();
    broker_topic_release(ref);
    broker_topic_release(pref);
    td_engine_close(e);
    test_rmrf(dir);
}

/* broker_condition_after_parse: "no_stream" or an offset, over exact-size copies. */
static void test_condition_after_parse(void)
{
    static const char *bad[] = {"",   "any",        "exists",    "-1",
                                "1x", "no_stream ", "NO_STREAM", "9223372036854775808"};
    int64_t v = -100;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t n = strlen(bad[i]);
        uint8_t *c = malloc(n ? n : 1);
        memcpy(c, bad[i], n);
        ASSERT_EQ(broker_condition_after_parse(c, n, &v), TD_EINVAL);
        free(c);
    }
    ASSERT_EQ(v, -100); /* untouched */
    ASSERT_OK(broker_condition_after_parse((const uint8_t *)"no_stream", 9, &v));
    ASSERT_EQ(v, TD_VERSION_NO_STREAM);
    ASSERT_OK(broker_condition_after_parse((const uint8_t *)"1203", 4, &v));
    ASSERT_EQ(v, 1203);
    ASSERT_EQ(broker_condition_after_parse((const uint8_t *)"no_strea", 8, &v), TD_EINVAL);
}

/* A batch of n records (keys), the first carrying the condition's headers hs[0..nh); extra
 * (may be NULL) is a header on the second record. */
static int append_cond(td_part *p, const char *const *keys, size_t n, const td_header *hs,
                       size_t nh, const td_header *extra, int codec, int32_t *bad,
                       broker_append_result *res)
{
    td_event ev[8];
    for (size_t i = 0; i < n; i++)
        ev[i] = (td_event){.key = keys[i],
                           .key_len = strlen(keys[i]),
                           .value = "v",
                           .value_len = 1,
                           .timestamp_ms = td_wall_ms(),
                           .headers = i == 0   ? hs
                                      : i == 1 ? extra
                                               : NULL,
                           .header_count = i == 0            ? nh
                                           : i == 1 && extra ? 1
                                                             : 0};
    td_batch_encode_opts o;
    batch_encode_opts_init(&o);
    o.compression = codec;
    td_buf b;
    td_buf_init(&b);
    ASSERT_OK(batch_encode(&b, &o, ev, n));
    size_t got = 0;
    const char *why;
    ASSERT_EQ(broker_batches_check(b.p, b.len, 0, &why, &got), BROKER_BATCH_OK);
    ASSERT_EQ(got, nh + (extra != NULL)); /* counted: the batch takes the checked path */
    int rc = broker_part_append_expect(p, b.p, b.len, 0, td_wall_ms(), res, bad);
    td_buf_free(&b);
    return rc;
}

#define HK(v)                                                                                      \
    {                                                                                              \
        BROKER_COND_KEY_HEADER, sizeof(BROKER_COND_KEY_HEADER) - 1, v, sizeof(v) - 1               \
    }
#define HA(v)                                                                                      \
    {                                                                                              \
        BROKER_COND_AFTER_HEADER, sizeof(BROKER_COND_AFTER_HEADER) - 1, v, sizeof(v) - 1           \
    }

static void test_append_condition(void)
{
    char *dir = test_tmpdir("partition-cond");
    td_engine *e = test_engine_open(dir);
    td_config_entry cfg[] = {{"key.index", "true"}, {"fsync", "none"}}; /* visible at once */
    ASSERT_OK(td_topic_create(e, "k", 1, cfg, 2));
    td_topic_ref *ref;
    ASSERT_OK(broker_topic_acquire(e, "k", &ref));
    td_part *p = broker_topic_part(ref, 0);
    broker_append_result res;
    int32_t bad;
    const char *ab[] = {"a", "b"};
    for (int codec = TD_COMPRESS_NONE; codec <= TD_COMPRESS_GZIP; codec++) {
        int64_t hw = broker_part_high_watermark(p);
        /* a and c have no event after hw - 1: both records appended */
        char pos[24];
        snprintf(pos, sizeof(pos), "%" PRId64, hw - 1);
        td_header ok[3] = {HK("a"), HK("c"), {BROKER_COND_AFTER_HEADER, 23, pos, strlen(pos)}};
        if (hw == 0)
            ok[2] = (td_header)HA("no_stream");
        ASSERT_OK(append_cond(p, ab, 2, ok, 3, NULL, codec, &bad, &res));
        ASSERT_EQ(res.base_offset, hw);
        /* The same again: a changed (at hw); nothing written, record 0 named */
        ASSERT_EQ(append_cond(p, ab, 2, ok, 3, NULL, codec, &bad, &res), TD_EVERSION);
        ASSERT_EQ(bad, 0);
        ASSERT_CONTAINS(td_last_error(), "condition key 0 'a'");
        char v[40];
        snprintf(v, sizeof(v), "version %" PRId64 " is after", hw);
        ASSERT_CONTAINS(td_last_error(), v);
        /* c unchanged, b changed: the second key named */
        td_header cb[3] = {HK("c"), HK("b"), ok[2]};
        ASSERT_EQ(append_cond(p, ab, 2, cb, 3, NULL, codec, &bad, &res), TD_EVERSION);
        ASSERT_CONTAINS(td_last_error(), "condition key 1 'b'");
        ASSERT_EQ(broker_part_high_watermark(p), hw + 2);
        /* Malformed: after missing, keys missing, two afters, bad after, on record 1, other
         * tidings- headers (counted, ignored) */
        td_header only_key[1] = {HK("a")}, only_after[1] = {HA("5")};
        td_header two[3] = {HK("a"), HA("5"), HA("6")}, junk[2] = {HK("a"), HA("any")};
        td_header other[1] = {{"tidings-other", 13, "x", 1}};
        ASSERT_EQ(append_cond(p, ab, 2, only_key, 1, NULL, codec, &bad, &res), TD_EINVAL);
        ASSERT_EQ(bad, 0);
        ASSERT_EQ(append_cond(p, ab, 2, only_after, 1, NULL, codec, &bad, &res), TD_EINVAL);
        ASSERT_EQ(append_cond(p, ab, 2, two, 3, NULL, codec, &bad, &res), TD_EINVAL);
        ASSERT_EQ(append_cond(p, ab, 2, junk, 2, NULL, codec, &bad, &res), TD_EINVAL);
        ASSERT_CONTAINS(td_last_error(), "no_stream");
        td_header late = HK("a");
        ASSERT_EQ(append_cond(p, ab, 2, ok, 3, &late, codec, &bad, &res), TD_EINVAL);
        ASSERT_EQ(bad, 1);
        ASSERT_CONTAINS(td_last_error(), "first record");
        ASSERT_EQ(broker_part_high_watermark(p), hw + 2);
        ASSERT_OK(append_cond(p, ab, 2, other, 1, NULL, codec, &bad, &res));
        ASSERT_EQ(broker_part_high_watermark(p), hw + 4);
    }
    /* At most TD_CONDITION_KEYS_MAX keys. */
    static td_header many[TD_CONDITION_KEYS_MAX + 2];
    for (int i = 0; i <= TD_CONDITION_KEYS_MAX; i++)
        many[i] = (td_header)HK("z");
    many[TD_CONDITION_KEYS_MAX + 1] = (td_header)HA("no_stream");
    ASSERT_EQ(append_cond(p, ab, 2, many, TD_CONDITION_KEYS_MAX + 2, NULL, 0, &bad, &res),
              TD_EINVAL);
    ASSERT_CONTAINS(td_last_error(), "at most");
    many[TD_CONDITION_KEYS_MAX] = (td_header)HA("no_stream");
    ASSERT_OK(append_cond(p, ab, 2, many, TD_CONDITION_KEYS_MAX + 1, NULL, 0, &bad, &res));
    td_error_clear();
    broker_topic_release(ref);
    td_engine_close(e);
    test_rmrf(dir);
}

TEST_MAIN(TEST(test_batches_check), TEST(test_append_read_trim),
          TEST(test_assignment_name_with_nul), TEST(test_expected_version_parse),
          TEST(test_append_expect), TEST(test_condition_after_parse), TEST(test_append_condition))
