/* Unit tests for the enforcement of schemas on produce (broker/registry_check.c) that need no
 * registered schema: the topic keys (storage/topic_config.c) and the policy they give, and the
 * walk over a Kafka partition's record batches (uncompressed and compressed, several batches,
 * truncated and corrupt input, tombstones, control batches), with the per-topic counters. With
 * an empty registry every wire-format id is unknown, which is what these records check. The
 * last test registers a JSON Schema: full mode over batches that the validation pool shares. */
#include "broker/broker.h"
#include "broker/registry.h"
#include "storage/batch.h"
#include "test.h"

static void test_topic_keys(void)
{
    td_topic_config c;
    td_topic_config_init(&c);
    char buf[TD_TOPIC_CONFIG_VALUE_MAX];
    ASSERT_OK(td_topic_config_get(&c, "value.schema.validation", buf, sizeof(buf)));
    ASSERT_STR_EQ(buf, "false");
    ASSERT_OK(td_topic_config_get(&c, "key.subject.name.strategy", buf, sizeof(buf)));
    ASSERT_STR_EQ(buf, "TopicNameStrategy");
    ASSERT_OK(td_topic_config_get(&c, "schema.validation.mode", buf, sizeof(buf)));
    ASSERT_STR_EQ(buf, "id");
    td_config_entry set[] = {
        {"confluent.value.schema.validation", "TRUE"},
        {"key.schema.validation", " true "},
        {"value.subject.name.strategy",
         "io.confluent.kafka.serializers.subject.TopicRecordNameStrategy"},
        {"confluent.key.subject.name.strategy", "RecordNameStrategy"},
        {"schema.validation.mode", "full"},
    };
    ASSERT_OK(td_topic_config_apply(&c, set, 5));
    ASSERT(c.value_schema_validation && c.key_schema_validation && c.schema_validation_full);
    ASSERT_EQ(c.value_subject_strategy, TD_SUBJECT_TOPIC_RECORD_NAME);
    ASSERT_EQ(c.key_subject_strategy, TD_SUBJECT_RECORD_NAME);
    /* An alias and its main name are one setting. */
    ASSERT_OK(td_topic_config_get(&c, "value.schema.validation", buf, sizeof(buf)));
    ASSERT_STR_EQ(buf, "true");
    ASSERT_OK(td_topic_config_get(&c, "confluent.key.subject.name.strategy", buf, sizeof(buf)));
    ASSERT_STR_EQ(buf, "RecordNameStrategy");
    ASSERT_OK(td_topic_config_get(&c, "value.subject.name.strategy", buf, sizeof(buf)));
    ASSERT_STR_EQ(buf, "TopicRecordNameStrategy");
    registry_policy pol;
    registry_policy_of(&c, &pol);
    ASSERT(pol.key && pol.value && pol.full && registry_policy_on(&pol));
    ASSERT_EQ(pol.value_strategy, REG_STRATEGY_TOPIC_RECORD);
    ASSERT_EQ(pol.key_strategy, REG_STRATEGY_RECORD);
    /* Bad values are refused and leave the configuration as it was. */
    const td_config_entry bad[][1] = {{{"value.schema.validation", "yes"}},
                                      {{"schema.validation.mode", "ID"}},
                                      {{"key.subject.name.strategy", "TopicName"}},
                                      {{"value.subject.name.strategy",
                                        "io.confluent.kafka.serializers.subject."}}};
    for (size_t i = 0; i < TD_ARRAY_LEN(bad); i++) {
        ASSERT_EQ(td_topic_config_apply(&c, bad[i], 1), TD_ECONFIG);
        ASSERT_CONTAINS(td_last_error(), bad[i][0].key);
    }
    ASSERT(c.schema_validation_full);
    /* Every key is listed (DescribeConfigs, the catalog, the CLI). */
    int found = 0;
    for (const char *const *k = td_topic_config_keys(); *k; k++)
        found += !strcmp(*k, "schema.validation.mode") ||
                 !strcmp(*k, "confluent.value.subject.name.strategy");
    ASSERT_EQ(found, 2);
}

/* Collects the bad records' indexes. */
typedef struct bads {
    int32_t idx[64];
    char first[600];
    int n;
} bads;

static void on_bad(void *arg, int32_t index, const char *why)
{
    bads *b = arg;
    if (b->n == 0)
        snprintf(b->first, sizeof(b->first), "%s", why);
    if (b->n < 64)
        b->idx[b->n] = index;
    b->n++;
}

/* A batch of values (NULL: a tombstone; len -1 strlen), compressed with codec. */
static void encode(td_buf *b, const char *const *vals, const int *lens, size_t n, int codec,
                   bool control)
{
    td_event ev[16];
    for (size_t i = 0; i < n; i++)
        ev[i] = (td_event){.value = vals[i],
                           .value_len = vals[i] ? (size_t)lens[i] : 0,
                           .timestamp_ms = 1700000000000};
    td_batch_encode_opts o;
    batch_encode_opts_init(&o);
    o.compression = codec;
    size_t at = b->len;
    ASSERT_OK(batch_encode(b, &o, ev, n));
    if (control) {
        uint8_t *p = b->p + at;
        td_store_be16(p + 21, (uint16_t)(td_load_be16(p + 21) | TD_BATCH_ATTR_CONTROL));
        td_store_be32(p + 17, td_crc32c(0, p + 21, b->len - at - 21));
    }
}

/* The value of a counter in the engine's /metrics text (0 when absent). */
static double metric(td_engine *e, const char *topic, const char *result, const char *reason)
{
    td_metrics_out out = {0};
    ASSERT_OK(td_metrics_render(broker_metrics(e), &out));
    ASSERT_OK(td_buf_append(&out.buf, "", 1));
    char pat[400];
    snprintf(pat, sizeof(pat), "tidings_schema_events_total{topic=\"%s\",result=\"%s\",reason=\"%s\"} ",
             topic, result, reason);
    const char *at = strstr((const char *)out.buf.p, pat);
    double v = at ? strtod(at + strlen(pat), NULL) : 0;
    td_buf_free(&out.buf);
    return v;
}

static void test_record_walk(void)
{
    char *dir = test_tmpdir("schema-enforce");
    td_engine *e = test_engine_open(dir);
    ASSERT_OK(td_topic_create(e, "t", 1, NULL, 0));
    td_topic_ref *ref;
    ASSERT_OK(broker_topic_acquire(e, "t", &ref));
    registry_policy pol = {.value = true};
    /* Wire format with unknown ids, plain text, a tombstone, a header with no payload, too
     * short for a header, and the wrong magic byte. */
    static const char w1[] = "\0\0\0\0\x07{\"a\":1}", w2[] = "\0\0\0\x01\0", w3[] = "\x01\0\0\0\x07x";
    const char *const vals[] = {w1, "plain", NULL, w2, "\0\0", w3};
    const int lens[] = {12, 5, 0, 5, 2, 6};
    const int codecs[] = {TD_COMPRESS_NONE, TD_COMPRESS_GZIP, TD_COMPRESS_SNAPPY, TD_COMPRESS_LZ4,
                          TD_COMPRESS_ZSTD};
    for (size_t c = 0; c < TD_ARRAY_LEN(codecs); c++) {
        td_buf b;
        td_buf_init(&b);
        encode(&b, vals, lens, 6, codecs[c], false);
        bads got = {0};
        const char *why = NULL;
        ASSERT_EQ(registry_check_batches(e, ref, &pol, b.p, b.len, on_bad, &got, &why), 5);
        int32_t want[] = {0, 1, 3, 4, 5}; /* all but the tombstone */
        ASSERT_EQ(got.n, 5);
        for (int i = 0; i < 5; i++)
            ASSERT_EQ(got.idx[i], want[i]);
        ASSERT_CONTAINS(got.first, "schema id 7 is unknown");
        /* Truncated anywhere: refused as unreadable, never read past the end. */
        for (size_t cut = 0; cut < b.len; cut += (cut < 70 ? 1 : 7)) {
            bads t = {0};
            why = NULL;
            int r = registry_check_batches(e, ref, &pol, b.p, cut, on_bad, &t, &why);
            if (cut == 0) {
                ASSERT_EQ(r, 0);
            } else {
                ASSERT_EQ(r, -1);
                ASSERT(why != NULL);
            }
        }
        td_buf_free(&b);
    }
    /* Several batches: indexes are within each batch; a control batch is skipped; keys are
     * not checked when key validation is off. */
    td_buf b;
    td_buf_init(&b);
    const char *const v2[] = {"x", w1};
    const int l2[] = {1, 12};
    encode(&b, v2, l2, 2, TD_COMPRESS_NONE, false);
    encode(&b, v2, l2, 2, TD_COMPRESS_NONE, true);
    encode(&b, v2 + 1, l2 + 1, 1, TD_COMPRESS_ZSTD, false);
    encode(&b, v2, l2, 1, TD_COMPRESS_GZIP, false);
    bads got = {0};
    const char *why = NULL;
    ASSERT_EQ(registry_check_batches(e, ref, &pol, b.p, b.len, on_bad, &got, &why), 4);
    ASSERT_EQ(got.idx[0], 0);
    ASSERT_EQ(got.idx[1], 1);
    ASSERT_EQ(got.idx[2], 0);
    ASSERT_EQ(got.idx[3], 0);
    ASSERT_CONTAINS(got.first, "not in the wire format");
    /* A corrupt record inside a batch whose CRC was made to match. */
    td_buf c;
    td_buf_init(&c);
    encode(&c, v2, l2, 2, TD_COMPRESS_NONE, false);
    c.p[61] = 0x7f; /* the first record's length varint: past the batch */
    td_store_be32(c.p + 17, td_crc32c(0, c.p + 21, c.len - 21));
    got = (bads){0};
    ASSERT_EQ(registry_check_batches(e, ref, &pol, c.p, c.len, on_bad, &got, &why), -1);
    ASSERT(why != NULL);
    td_buf_free(&c);
    td_buf_free(&b);
    /* The counters: accepted only for batches with no bad record (tombstones), rejected by
     * reason: 5 codecs x (2 unknown_id, 3 wire_format), then 2 of each. */
    ASSERT(metric(e, "t", "rejected", "unknown_id") == 5 * 2 + 2);
    ASSERT(metric(e, "t", "rejected", "wire_format") == 5 * 3 + 2);
    ASSERT(metric(e, "t", "accepted", "none") == 0);
    td_buf_init(&b);
    const char *const tomb[] = {NULL, NULL};
    encode(&b, tomb, l2, 2, TD_COMPRESS_NONE, false);
    ASSERT_EQ(registry_check_batches(e, ref, &pol, b.p, b.len, on_bad, &got, &why), 0);
    ASSERT(metric(e, "t", "accepted", "none") == 2);
    td_buf_free(&b);
    broker_topic_release(ref);
    /* A deleted topic's series go. */
    ASSERT_OK(td_topic_delete(e, "t"));
    ASSERT(metric(e, "t", "rejected", "unknown_id") == 0);
    td_engine_close(e);
    test_rmrf(dir);
}

/* Registers a JSON Schema titled `title` under subject; its id. */
static int32_t reg_json(td_engine *e, const char *subject, const char *title)
{
    char path[200], body[300];
    snprintf(path, sizeof(path), "/subjects/%s/versions", subject);
    snprintf(body, sizeof(body),
             "{\"schemaType\":\"JSON\",\"schema\":\"{\\\"title\\\":\\\"%s\\\","
             "\\\"type\\\":\\\"object\\\"}\"}",
             title);
    int status = 0;
    char *resp = NULL;
    size_t len = 0;
    ASSERT_OK(td_schema_request(e, "POST", path, body, strlen(body), &status, &resp, &len));
    ASSERT_EQ(status, 200);
    const char *at = strstr(resp, "\"id\":");
    ASSERT(at != NULL);
    int32_t id = (int32_t)atoi(at + 5);
    free(resp);
    return id;
}

/* The subject name strategies and the checks of one payload against the registry. */
static void test_subjects_and_ids(void)
{
    char *dir = test_tmpdir("schema-subjects");
    td_engine *e = test_engine_open(dir);
    ASSERT_OK(td_topic_create(e, "t", 1, NULL, 0));
    td_topic_ref *ref;
    ASSERT_OK(broker_topic_acquire(e, "t", &ref));
    int32_t tv = reg_json(e, "t-value", "P");
    int32_t tp = reg_json(e, "t-Q", "Q");
    int32_t other = reg_json(e, "u-value", "R");
    int32_t rec = reg_json(e, "S", "S");
    uint8_t w[32] = {0};
    memcpy(w + 5, "{}", 2);
    char why[600];
    registry_policy pol = {.value = true};
#define WIRE(id) (td_store_be32(w + 1, (uint32_t)(id)), w)
    ASSERT_EQ(registry_check_wire_ref(e, ref, &pol, false, WIRE(tv), 7, why, sizeof(why)), 0);
    ASSERT_EQ(registry_check_wire_ref(e, ref, &pol, false, WIRE(other), 7, why, sizeof(why)), -1);
    ASSERT_CONTAINS(why, "is not registered under subject t-value");
    ASSERT_EQ(registry_check_wire_ref(e, ref, &pol, true, WIRE(tv), 7, why, sizeof(why)), -1);
    ASSERT_CONTAINS(why, "subject t-key");
    pol.value_strategy = REG_STRATEGY_TOPIC_RECORD;
    ASSERT_EQ(registry_check_wire_ref(e, ref, &pol, false, WIRE(tp), 7, why, sizeof(why)), 0);
    ASSERT_EQ(registry_check_wire_ref(e, ref, &pol, false, WIRE(tv), 7, why, sizeof(why)), -1);
    ASSERT_CONTAINS(why, "subject t-P");
    pol.value_strategy = REG_STRATEGY_RECORD;
    ASSERT_EQ(registry_check_wire_ref(e, ref, &pol, false, WIRE(rec), 7, why, sizeof(why)), 0);
    ASSERT_EQ(registry_check_wire_ref(e, ref, &pol, false, WIRE(tp), 7, why, sizeof(why)), -1);
    ASSERT_CONTAINS(why, "subject Q");
    /* The name-based form counts too. */
    ASSERT_EQ(registry_check_wire(e, "t", &pol, false, WIRE(999), 7, why, sizeof(why)), -1);
    ASSERT_CONTAINS(why, "schema id 999 is unknown");
    /* Reads: a header names a JSON Schema, or not. */
    int32_t got = 0;
    ASSERT_UEQ(registry_json_header(e, WIRE(tv), 7, &got), 5);
    ASSERT_EQ(got, tv);
    ASSERT_UEQ(registry_json_header(e, WIRE(999), 7, &got), 0);
    ASSERT_UEQ(registry_json_header(e, WIRE(tv), 5, &got), 0); /* nothing after the header */
    /* JSON values: the value subject's latest schema; none under another strategy or subject. */
    pol.value_strategy = REG_STRATEGY_TOPIC;
    registry_json_check chk;
    ASSERT_EQ(registry_check_json_value(e, ref, &pol, "{}", 2, true, &chk), 0);
    ASSERT_EQ(chk.id, tv);
    pol.value_strategy = REG_STRATEGY_RECORD;
    ASSERT_EQ(registry_check_json_value(e, ref, &pol, "{}", 2, true, &chk), -1);
    ASSERT_CONTAINS(chk.why, "wire format");
    td_slice fv[4] = {td_slice_make("a", 1), td_slice_make("1", 1), td_slice_make("a", 1),
                      td_slice_make("2", 1)};
    pol.value_strategy = REG_STRATEGY_TOPIC;
    ASSERT_EQ(registry_check_fields(e, ref, &pol, fv, 2, &chk), 0);
    ASSERT_EQ(registry_check_fields(e, ref, &pol, fv, 4, &chk), -1);
    ASSERT_CONTAINS(chk.why, "repeats");
    broker_topic_release(ref);
    ASSERT_OK(td_topic_create(e, "none", 1, NULL, 0));
    ASSERT_OK(broker_topic_acquire(e, "none", &ref));
    ASSERT_EQ(registry_check_json_value(e, ref, &pol, "{}", 2, true, &chk), -1);
    ASSERT_CONTAINS(chk.why, "subject none-value has no schema");
    ASSERT(metric(e, "none", "rejected", "no_schema") == 1);
    ASSERT(metric(e, "t", "rejected", "wrong_subject") == 4);
    ASSERT(metric(e, "t", "rejected", "unknown_id") == 1);
    ASSERT(metric(e, "t", "accepted", "none") == 2); /* the JSON value and the field map */
#undef WIRE
    broker_topic_release(ref);
    td_engine_close(e);
    test_rmrf(dir);
}

/* Full mode over batches larger than a chunk of the validation pool: whatever the pool's size
 * (none, one, three threads), the same records are found bad, listed in order with indexes
 * within their batch, and counted alike; the messages name each record's own failure. */
static void test_full_mode_pool(void)
{
    enum { N = 600 };
    static const int bad_at[] = {0, 15, 16, 17, 31, 32, 250, 598, 599};
    static const int sizes[] = {0, 1, 3};
    for (size_t sz = 0; sz < TD_ARRAY_LEN(sizes); sz++) {
        char *dir = test_tmpdir("schema-pool");
        td_options o;
        td_options_init(&o);
        o.no_background = 1;
        o.schema_validation_threads = sizes[sz];
        td_engine *e;
        ASSERT_OK(td_engine_open(dir, &o, &e));
        ASSERT_OK(td_topic_create(e, "t", 1, NULL, 0));
        td_topic_ref *ref;
        ASSERT_OK(broker_topic_acquire(e, "t", &ref));
        static const char body[] =
            "{\"schemaType\":\"JSON\",\"schema\":\"{\\\"type\\\":\\\"object\\\","
            "\\\"required\\\":[\\\"n\\\"],\\\"properties\\\":{\\\"n\\\":{\\\"type\\\":"
            "\\\"integer\\\",\\\"maximum\\\":100000}}}\"}";
        int status = 0;
        char *resp = NULL;
        size_t len = 0;
        ASSERT_OK(td_schema_request(e, "POST", "/subjects/t-value/versions", body,
                                    strlen(body), &status, &resp, &len));
        ASSERT_EQ(status, 200);
        int32_t id = (int32_t)atoi(strstr(resp, "\"id\":") + 5);
        free(resp);
        /* Two batches (the second compressed), each of N values; the bad ones have n too big
         * (their index in the message, so that each message can be matched to its record). */
        static char vals[N][48];
        td_event *ev = calloc(N, sizeof(*ev));
        for (int i = 0; i < N; i++) {
            bool bad = false;
            for (size_t k = 0; k < TD_ARRAY_LEN(bad_at); k++)
                bad |= bad_at[k] == i;
            vals[i][0] = 0;
            td_store_be32((uint8_t *)vals[i] + 1, (uint32_t)id);
            int n = snprintf(vals[i] + 5, sizeof(vals[i]) - 5, "{\"n\":%d}",
                             bad ? 200000 + i : i);
            ev[i] = (td_event){.value = vals[i], .value_len = (size_t)n + 5,
                               .timestamp_ms = 1700000000000};
        }
        td_buf b;
        td_buf_init(&b);
        td_batch_encode_opts eo;
        batch_encode_opts_init(&eo);
        ASSERT_OK(batch_encode(&b, &eo, ev, N));
        eo.compression = TD_COMPRESS_ZSTD;
        ASSERT_OK(batch_encode(&b, &eo, ev, N));
        free(ev);
        registry_policy pol = {.value = true, .full = true};
        bads got = {0};
        const char *why = NULL;
        const int nbad = (int)TD_ARRAY_LEN(bad_at);
        ASSERT_EQ(registry_check_batches(e, ref, &pol, b.p, b.len, on_bad, &got, &why),
                  2 * nbad);
        ASSERT_EQ(got.n, 2 * nbad);
        for (int i = 0; i < 2 * nbad; i++)
            ASSERT_EQ(got.idx[i], bad_at[i % nbad]);
        ASSERT_CONTAINS(got.first, "200000"); /* record 0's own value */
        ASSERT(metric(e, "t", "rejected", "invalid_payload") == 2 * nbad);
        ASSERT(metric(e, "t", "accepted", "none") == 0); /* nothing of the batches stored */
        /* All good: accepted, every record counted once. */
        td_buf_reset(&b);
        ev = calloc(N, sizeof(*ev));
        for (int i = 0; i < N; i++) {
            int n = snprintf(vals[i] + 5, sizeof(vals[i]) - 5, "{\"n\":%d}", i);
            ev[i] = (td_event){.value = vals[i], .value_len = (size_t)n + 5,
                               .timestamp_ms = 1700000000000};
        }
        eo.compression = TD_COMPRESS_NONE;
        ASSERT_OK(batch_encode(&b, &eo, ev, N));
        free(ev);
        got = (bads){0};
        ASSERT_EQ(registry_check_batches(e, ref, &pol, b.p, b.len, on_bad, &got, &why), 0);
        ASSERT_EQ(got.n, 0);
        ASSERT(metric(e, "t", "accepted", "none") == N);
        td_buf_free(&b);
        broker_topic_release(ref);
        td_engine_close(e);
        test_rmrf(dir);
    }
}

TEST_MAIN(TEST(test_topic_keys), TEST(test_record_walk), TEST(test_subjects_and_ids),
          TEST(test_full_mode_pool))
