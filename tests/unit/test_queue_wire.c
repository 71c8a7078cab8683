/*
 * test_queue_wire.c: the queue receive's answer and the outcomes' bodies and answers written
 * and read by hand (proto/http/queue_wire.c): the answer equals, parsed, the tree that
 * http_event_json builds for every kind of key, value and header (JSON, text with escapes and
 * non-ASCII, bytes that are not UTF-8, nulls) in each values mode; delivery ids and ranges;
 * outcome bodies of the plain shape read, every other shape and every truncation declined;
 * the outcome's answer with its counts.
 */
#include <jansson.h>

#include "proto/http/http_int.h"
#include "proto/http/queue_wire.h"
#include "test.h"

static td_queue_msg msg(const char *id, const void *key, size_t key_len, const void *value,
                        size_t value_len, const td_header *h, size_t nh, int32_t deliveries)
{
    td_queue_msg m;
    memset(&m, 0, sizeof(m));
    snprintf(m.id, sizeof(m.id), "%s", id);
    snprintf(m.topic, sizeof(m.topic), "orders");
    m.event = (td_event){.key = key,
                         .key_len = key_len,
                         .value = value,
                         .value_len = value_len,
                         .headers = h,
                         .header_count = nh,
                         .timestamp_ms = 1700000000123,
                         .partition = 3,
                         .offset = 17};
    m.deliveries = deliveries;
    return m;
}

/* What the answer was before queue_wire.c: http_event_json's tree with the id and count. */
static json_t *expected(const td_queue_msg *m, size_t n, bool values_json)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_pack("{s:s}", "id", m[i].id);
        json_t *ev = http_event_json(NULL, m[i].topic, &m[i].event, values_json);
        json_object_update(o, ev);
        json_decref(ev);
        json_object_set_new(o, "deliveries", json_integer(m[i].deliveries));
        json_array_append_new(arr, o);
    }
    return json_pack("{s:o}", "events", arr);
}

static json_t *written(const td_queue_msg *m, size_t n, int values)
{
    td_buf b;
    td_buf_init(&b);
    ASSERT_OK(qwire_write_events(&b, m, n, values));
    ASSERT(b.len > 0 && b.p[b.len - 1] == '\n');
    json_error_t err;
    json_t *j = json_loadb((const char *)b.p, b.len, JSON_ALLOW_NUL, &err);
    if (!j)
        fprintf(stderr, "not JSON: %s in %.*s\n", err.text, (int)b.len, (const char *)b.p);
    ASSERT(j != NULL);
    /* Only ASCII goes out, as with JSON_ENSURE_ASCII. */
    for (size_t i = 0; i < b.len; i++)
        ASSERT(b.p[i] < 0x80);
    td_buf_free(&b);
    return j;
}

static void check_same(const td_queue_msg *m, size_t n)
{
    for (int mode = 0; mode < 2; mode++) {
        json_t *want = expected(m, n, mode == 0);
        json_t *got = written(m, n, mode == 0 ? QWIRE_VALUES_JSON : QWIRE_VALUES_STRING);
        if (!json_equal(want, got)) {
            char *a = json_dumps(want, JSON_COMPACT), *b = json_dumps(got, JSON_COMPACT);
            fprintf(stderr, "want %s\n got  %s\n", a, b);
            free(a);
            free(b);
        }
        ASSERT(json_equal(want, got));
        json_decref(want);
        json_decref(got);
    }
}

static void test_events_as_before(void)
{
    static const char *const values[] = {
        "{\"total\": 42, \"items\": [1, 2.5, true, null]}", /* JSON: parsed */
        "  [1e3, -0.1]\n",                                  /* JSON with white space */
        "plain text",                                       /* text */
        "quote \" backslash \\ tab \t nl \n cr \r bs \b ff \f bell \a del \x7f",
        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", /* 2, 3 and 4 bytes */
        "true story",                                /* starts like JSON, is not */
        "\"unterminated",
        "",
    };
    for (size_t i = 0; i < TD_ARRAY_LEN(values); i++) {
        td_queue_msg m = msg("7.3.17.1", "k", 1, values[i], strlen(values[i]), NULL, 0, 1);
        check_same(&m, 1);
    }
    /* Not UTF-8 as jansson sees it: base64 in every mode. */
    static const char *const bad[] = {"\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                                      "a\xff",    "\xe2\x82",     "\x80"};
    for (size_t i = 0; i < TD_ARRAY_LEN(bad); i++) {
        td_queue_msg m =
            msg("7.3.17.2", bad[i], strlen(bad[i]), bad[i], strlen(bad[i]), NULL, 0, 2);
        check_same(&m, 1);
    }
    /* NUL bytes are UTF-8 (escaped), and a null key and value are null. */
    td_queue_msg m = msg("1.0.0.1", "a\0b", 3, "x\0y", 3, NULL, 0, 1);
    check_same(&m, 1);
    m = msg("1.0.0.1", NULL, 0, NULL, 0, NULL, 0, 1);
    check_same(&m, 1);
    m = msg("1.0.0.1", "", 0, "", 0, NULL, 0, 1);
    check_same(&m, 1);
}

static void test_headers_and_batches(void)
{
    td_header h[] = {{"trace", 5, "abc", 3},
                     {"bin\xff", 4, "\x01\x02\xfe", 3},
                     {"none", 4, NULL, 0},
                     {"json", 4, "{\"a\":1}", 7}};
    td_queue_msg m[3];
    m[0] = msg("9.1.100.1", "user-1", 6, "{\"n\":1}", 7, h, 4, 1);
    m[1] = msg("9.1.101.3", NULL, 0, "text", 4, h + 2, 1, 3);
    m[2] = msg("9.2.5.1", "\xff", 1, "\xfe", 1, NULL, 0, 1);
    check_same(m, 3);
    check_same(m, 0); /* {"events":[]} */
}

static void test_base64_values(void)
{
    const char *v = "{\"n\":1}";
    td_queue_msg m[2];
    m[0] = msg("1.0.0.1", "k", 1, v, strlen(v), NULL, 0, 1);
    m[1] = msg("1.0.1.1", "k", 1, NULL, 0, NULL, 0, 1);
    json_t *j = written(m, 2, QWIRE_VALUES_BASE64);
    json_t *e0 = json_array_get(json_object_get(j, "events"), 0);
    json_t *e1 = json_array_get(json_object_get(j, "events"), 1);
    ASSERT_STR_EQ(json_string_value(json_object_get(e0, "value_b64")), "eyJuIjoxfQ==");
    ASSERT(json_object_get(e0, "value") == NULL);
    ASSERT_STR_EQ(json_string_value(json_object_get(e0, "key")), "k");
    ASSERT(json_is_null(json_object_get(e1, "value")));
    /* The rest is as in the other modes. */
    json_object_del(e0, "value_b64");
    json_t *want = expected(m, 1, false);
    json_t *w0 = json_array_get(json_object_get(want, "events"), 0);
    json_object_del(w0, "value");
    ASSERT(json_equal(w0, e0));
    json_decref(want);
    json_decref(j);
}

static void test_items(void)
{
    qwire_item it;
    ASSERT(qwire_item_parse("3.0.17.1", 8, &it));
    ASSERT_EQ(it.topic_id, 3);
    ASSERT_EQ(it.partition, 0);
    ASSERT_EQ(it.first, 17);
    ASSERT_EQ(it.last, 17);
    ASSERT_EQ(it.deliveries, 1);
    ASSERT(qwire_item_parse("3.2.17-1016.4", 13, &it));
    ASSERT_EQ(it.first, 17);
    ASSERT_EQ(it.last, 1016);
    ASSERT_EQ(it.partition, 2);
    ASSERT_EQ(it.deliveries, 4);
    char id[TD_QUEUE_ID_MAX];
    ASSERT_EQ(qwire_item_id(&it, 500, id), strlen("3.2.500.4"));
    ASSERT_STR_EQ(id, "3.2.500.4");
    ASSERT(qwire_item_parse("3.2.5-5.1", 9, &it) && it.first == 5 && it.last == 5);
    ASSERT(qwire_item_parse("9223372036854775807.2147483647.0.2147483647", 43, &it));
    static const char *const bad[] = {
        "",
        "3",
        "3.0",
        "3.0.17",
        "3.0.17.",
        "3.0.17.1.",
        "3..17.1",
        "a.0.17.1",
        "3.0.17.-1",
        "3.0.-17.1",
        "3.0.17-.1",
        "3.0.17-16.1",
        "3.0.0-1000.1",
        "3.0.17.1 ",
        " 3.0.17.1",
        "3.0.17-20",
        "3.2147483648.0.1",
        "3.0.0.2147483648",
        "9223372036854775808.0.0.1",
        "3.0.17--20.1",
        "3.0.17-20-30.1",
        "+3.0.17.1",
    };
    for (size_t i = 0; i < TD_ARRAY_LEN(bad); i++) {
        if (qwire_item_parse(bad[i], strlen(bad[i]), &it))
            fprintf(stderr, "accepted '%s'\n", bad[i]);
        ASSERT(!qwire_item_parse(bad[i], strlen(bad[i]), &it));
    }
    /* The widest range: QWIRE_MAX_IDS offsets. */
    ASSERT(qwire_item_parse("3.0.0-999.1", 11, &it));
    /* Every proper prefix of an id or range is none (a truncated body never acks less). */
    static const char *const good[] = {"3.0.17.1", "12.3.17-1016.4"};
    for (size_t g = 0; g < 2; g++)
        for (size_t n = 0; n < strlen(good[g]); n++) {
            bool ok = qwire_item_parse(good[g], n, &it);
            /* "12.3.17-1016.4" cut to "12.3.17-1016." is no id; only a shorter delivery count
             * could be ("3.0.17.1" has none shorter). */
            ASSERT(!ok);
        }
}

static int parse(const char *s, int kind, qwire_outcome *o)
{
    return qwire_outcome_parse(s, strlen(s), kind, o);
}

static void test_outcome_bodies(void)
{
    qwire_outcome o;
    ASSERT_OK(parse("{\"ids\":[\"3.0.17.1\",\"3.1.5-9.2\"]}", QWIRE_ACK, &o));
    ASSERT_UEQ(o.n_items, 2);
    ASSERT_UEQ(o.n_ids, 6);
    ASSERT(!o.has_ms && !o.has_error && !o.failed_only);
    size_t pos = 0;
    td_slice t;
    qwire_item it;
    ASSERT(qwire_ids_next(&o, &pos, &t, &it));
    ASSERT(t.n == 8 && !memcmp(t.p, "3.0.17.1", 8) && it.first == 17);
    ASSERT(qwire_ids_next(&o, &pos, &t, &it));
    ASSERT(it.first == 5 && it.last == 9 && it.partition == 1 && it.deliveries == 2);
    ASSERT(!qwire_ids_next(&o, &pos, &t, &it));
    ASSERT_OK(parse(" { \"results\" : \"failed\" ,\n\"ids\" : [ \"1.0.0.1\" ] ,\"delay_ms\":250,"
                    "\"error\":\"boom: no space\" } \n",
                    QWIRE_NACK, &o));
    ASSERT(o.failed_only && o.has_ms && o.ms == 250 && o.has_error);
    ASSERT(o.error.n == 14 && !memcmp(o.error.p, "boom: no space", 14));
    pos = 0;
    ASSERT(qwire_ids_next(&o, &pos, &t, &it) && it.first == 0 && it.topic_id == 1);
    ASSERT(!qwire_ids_next(&o, &pos, &t, &it));
    ASSERT_OK(parse("{\"ids\":[\"1.0.0.1\"],\"ms\":0,\"results\":\"all\"}", QWIRE_EXTEND, &o));
    ASSERT(o.has_ms && o.ms == 0 && !o.failed_only);
    ASSERT_OK(parse("{\"ids\":[\"1.0.0-999.1\"]}", QWIRE_ACK, &o));
    ASSERT_UEQ(o.n_ids, 1000);

    /* Shapes left to the slow way, which explains them or takes them. */
    static const struct {
        int kind;
        const char *body;
    } declined[] = {
        {QWIRE_ACK, ""},
        {QWIRE_ACK, "{}"},
        {QWIRE_ACK, "[]"},
        {QWIRE_ACK, "{\"ids\":[]}"},
        {QWIRE_ACK, "{\"ids\":[1]}"},
        {QWIRE_ACK, "{\"ids\":\"1.0.0.1\"}"},
        {QWIRE_ACK, "{\"ids\":[\"junk\"]}"},
        {QWIRE_ACK, "{\"ids\":[\"1.0.0.1\",]}"},
        {QWIRE_ACK, "{\"ids\":[\"1.0.0.1\" \"1.0.1.1\"]}"},
        {QWIRE_ACK, "{\"ids\":[\"1.0.0.1\"],}"},
        {QWIRE_ACK, "{\"ids\":[\"1.0.0.1\"]} x"},
        {QWIRE_ACK, "{\"ids\":[\"1.0.0.1\"]}{}"},
        {QWIRE_ACK, "{\"ids\":[\"1.0.0.1\"],\"ids\":[\"1.0.1.1\"]}"}, /* repeated */
        {QWIRE_ACK, "{\"ids\":[\"1.0.0.1\"],\"delay_ms\":1}"},        /* not an ack's */
        {QWIRE_ACK, "{\"ids\":[\"1.0.0.1\"],\"colour\":1}"},
        {QWIRE_ACK, "{\"ids\":[\"1.0.0\\u002e1\"]}"}, /* an escape */
        {QWIRE_ACK, "{\"i\\u0064s\":[\"1.0.0.1\"]}"},
        {QWIRE_ACK, "{\"ids\":[\"1.0.0-999.1\",\"2.0.0.1\"]}"}, /* 1 001 ids */
        {QWIRE_ACK, "{\"ids\":[\"1.0.0.1\"],\"results\":\"some\"}"},
        {QWIRE_ACK, "{\"ids\":[\"1.0.0.1\"],\"results\":1}"},
        {QWIRE_NACK, "{\"ids\":[\"1.0.0.1\"],\"delay_ms\":-1}"},
        {QWIRE_NACK, "{\"ids\":[\"1.0.0.1\"],\"delay_ms\":1.5}"},
        {QWIRE_NACK, "{\"ids\":[\"1.0.0.1\"],\"delay_ms\":1e3}"},
        {QWIRE_NACK, "{\"ids\":[\"1.0.0.1\"],\"delay_ms\":012}"},
        {QWIRE_NACK, "{\"ids\":[\"1.0.0.1\"],\"delay_ms\":86400001}"},
        {QWIRE_NACK, "{\"ids\":[\"1.0.0.1\"],\"delay_ms\":\"5\"}"},
        {QWIRE_NACK, "{\"ids\":[\"1.0.0.1\"],\"error\":5}"},
        {QWIRE_NACK, "{\"ids\":[\"1.0.0.1\"],\"error\":\"a\\nb\"}"},
        {QWIRE_NACK, "{\"ids\":[\"1.0.0.1\"],\"error\":\"caf\xc3\xa9\"}"},
        {QWIRE_NACK, "{\"ids\":[\"1.0.0.1\"],\"ms\":5}"},
        {QWIRE_EXTEND, "{\"ids\":[\"1.0.0.1\"],\"delay_ms\":5}"},
        {QWIRE_EXTEND, "{\"ids\":[\"1.0.0.1\"],\"error\":\"x\"}"},
        {QWIRE_EXTEND, "{\"ids\":[\"1.0.0.1\"],\"ms\":null}"},
    };
    for (size_t i = 0; i < TD_ARRAY_LEN(declined); i++) {
        if (parse(declined[i].body, declined[i].kind, &o) == 0)
            fprintf(stderr, "accepted %s\n", declined[i].body);
        ASSERT_EQ(parse(declined[i].body, declined[i].kind, &o), -1);
    }
}

/* Every truncation of a body that reads is declined: a body cut anywhere never acks part of
 * what the client sent. */
static void test_truncated_bodies(void)
{
    static const struct {
        int kind;
        const char *body;
    } good[] = {
        {QWIRE_ACK, "{\"ids\":[\"3.0.17.1\",\"3.1.5-9.2\"],\"results\":\"failed\"}"},
        {QWIRE_NACK, "{ \"ids\" : [ \"1.0.0.1\" ] , \"delay_ms\" : 250 , \"error\" : \"e\" }"},
        {QWIRE_EXTEND, "{\"ms\":30000,\"ids\":[\"12.3.100-199.1\"]}"},
    };
    for (size_t g = 0; g < TD_ARRAY_LEN(good); g++) {
        qwire_outcome o;
        size_t n = strlen(good[g].body);
        ASSERT_OK(qwire_outcome_parse(good[g].body, n, good[g].kind, &o));
        for (size_t k = 0; k < n; k++) {
            /* Copied so that ASan sees any read past the cut. */
            char *cut = malloc(k ? k : 1);
            memcpy(cut, good[g].body, k);
            ASSERT_EQ(qwire_outcome_parse(cut, k, good[g].kind, &o), -1);
            free(cut);
        }
    }
}

static void test_results(void)
{
    const char *ids[] = {"1.0.0.1", "1.0.1.1", "1.0.2.1", "01.0.3.1"};
    int res[] = {0, TD_ESTALE, TD_EINVAL, 0};
    for (int failed = 0; failed < 2; failed++) {
        td_buf b;
        td_buf_init(&b);
        ASSERT_OK(qwire_write_results(&b, ids, res, 4, failed));
        json_t *j = json_loadb((const char *)b.p, b.len, 0, NULL);
        ASSERT(j != NULL);
        ASSERT_EQ(json_integer_value(json_object_get(j, "ok")), 2);
        ASSERT_EQ(json_integer_value(json_object_get(j, "stale")), 1);
        ASSERT_EQ(json_integer_value(json_object_get(j, "unknown")), 1);
        json_t *r = json_object_get(j, "results");
        const char *want_all =
            "[{\"id\":\"1.0.0.1\",\"result\":\"ok\"},{\"id\":\"1.0.1.1\",\"result\":\"stale\"},"
            "{\"id\":\"1.0.2.1\",\"result\":\"unknown\"},{\"id\":\"01.0.3.1\",\"result\":\"ok\"}]";
        const char *want_failed = "[{\"id\":\"1.0.1.1\",\"result\":\"stale\"},"
                                  "{\"id\":\"1.0.2.1\",\"result\":\"unknown\"}]";
        json_t *want = json_loads(failed ? want_failed : want_all, 0, NULL);
        ASSERT(json_equal(r, want));
        json_decref(want);
        json_decref(j);
        td_buf_free(&b);
    }
    td_buf b;
    td_buf_init(&b);
    int ok[] = {0};
    ASSERT_OK(qwire_write_results(&b, ids, ok, 1, true));
    ASSERT_UEQ(b.len, strlen("{\"results\":[],\"ok\":1,\"stale\":0,\"unknown\":0}\n"));
    ASSERT(!memcmp(b.p, "{\"results\":[],\"ok\":1,\"stale\":0,\"unknown\":0}\n", b.len));
    td_buf_free(&b);
}

TEST_MAIN(TEST(test_events_as_before), TEST(test_headers_and_batches), TEST(test_base64_values),
          TEST(test_items), TEST(test_outcome_bodies), TEST(test_truncated_bodies),
          TEST(test_results))
