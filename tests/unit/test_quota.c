/*
 * test_quota.c: client quotas (broker/quota.c over storage/catalog_quota.c): validation,
 * persistence across a reopen and an upgrade, Kafka's order of precedence, the sampled rate and
 * the throttle time it gives, who shares a measurement, and the bound on measurements.
 */
#include <math.h>
#include <sqlite3.h>
#include <string.h>

#include "base/base.h"
#include "base/metrics.h"
#include "broker/broker.h"
#include "broker/quota.h"
#include "test.h"
#include "tidings.h"

static td_engine *open_engine(const char *dir)
{
    td_options o;
    td_options_init(&o);
    o.no_background = 1;
    td_engine *e = NULL;
    ASSERT_OK(td_engine_open(dir, &o, &e));
    return e;
}

static td_quota_entity entity(td_quota_level ul, const char *user, td_quota_level cl,
                              const char *client)
{
    td_quota_entity en;
    memset(&en, 0, sizeof(en));
    en.user_level = ul;
    en.client_level = cl;
    if (user)
        snprintf(en.user, sizeof(en.user), "%s", user);
    if (client)
        snprintf(en.client_id, sizeof(en.client_id), "%s", client);
    return en;
}

static void set1(td_engine *e, td_quota_entity en, int key, double v)
{
    td_quota_op op = {.key = key, .value = v};
    ASSERT_OK(td_quota_alter(e, &en, &op, 1, 0));
}

static void test_validation(void)
{
    char *dir = test_tmpdir("quota");
    td_engine *e = open_engine(dir);
    td_quota_op ok = {.key = TD_QUOTA_PRODUCER_BYTE_RATE, .value = 1024};
    td_quota_entity none = entity(TD_QUOTA_ABSENT, NULL, TD_QUOTA_ABSENT, NULL);
    ASSERT_EQ(td_quota_alter(e, &none, &ok, 1, 0), TD_EINVAL);
    td_quota_entity bad_user = entity(TD_QUOTA_NAMED, "", TD_QUOTA_ABSENT, NULL);
    ASSERT_EQ(td_quota_alter(e, &bad_user, &ok, 1, 0), TD_ENAME);
    td_quota_entity bad_client = entity(TD_QUOTA_ABSENT, NULL, TD_QUOTA_NAMED, "a\nb");
    ASSERT_EQ(td_quota_alter(e, &bad_client, &ok, 1, 0), TD_ENAME);
    td_quota_entity alice = entity(TD_QUOTA_NAMED, "alice", TD_QUOTA_ABSENT, NULL);
    td_quota_op bad[] = {{.key = 7, .value = 1},
                         {.key = TD_QUOTA_PRODUCER_BYTE_RATE, .value = 0},
                         {.key = TD_QUOTA_PRODUCER_BYTE_RATE, .value = -5},
                         {.key = TD_QUOTA_CONSUMER_BYTE_RATE, .value = 10.5},
                         {.key = TD_QUOTA_REQUEST_PERCENTAGE, .value = NAN}};
    for (size_t i = 0; i < TD_ARRAY_LEN(bad); i++)
        ASSERT_EQ(td_quota_alter(e, &alice, &bad[i], 1, 0), TD_EINVAL);
    /* One bad change among good ones changes nothing. */
    td_quota_op mixed[] = {ok, bad[1]};
    ASSERT_EQ(td_quota_alter(e, &alice, mixed, 2, 0), TD_EINVAL);
    /* validate_only checks and changes nothing. */
    ASSERT_OK(td_quota_alter(e, &alice, &ok, 1, 1));
    td_quota_info *v;
    size_t n;
    ASSERT_OK(td_quota_list(e, &v, &n));
    ASSERT_EQ(n, 0);
    free(v);
    td_quota_op pct = {.key = TD_QUOTA_REQUEST_PERCENTAGE, .value = 12.5};
    ASSERT_OK(td_quota_alter(e, &alice, &pct, 1, 0));
    ASSERT_EQ(td_quota_key_parse("request_percentage"), TD_QUOTA_REQUEST_PERCENTAGE);
    ASSERT_EQ(td_quota_key_parse("controller_mutation_rate"), -1);
    ASSERT_STR_EQ(td_quota_key_name(TD_QUOTA_CONSUMER_BYTE_RATE), "consumer_byte_rate");
    td_engine_close(e);
    test_rmrf(dir);
}

/* Changes are durable, listed sorted, and removing every key removes the entity. */
static void test_persistence(void)
{
    char *dir = test_tmpdir("quota");
    td_engine *e = open_engine(dir);
    set1(e, entity(TD_QUOTA_NAMED, "bob", TD_QUOTA_NAMED, "app"), TD_QUOTA_PRODUCER_BYTE_RATE, 500);
    set1(e, entity(TD_QUOTA_DEFAULT, NULL, TD_QUOTA_ABSENT, NULL), TD_QUOTA_CONSUMER_BYTE_RATE, 9e6);
    set1(e, entity(TD_QUOTA_ABSENT, NULL, TD_QUOTA_DEFAULT, NULL), TD_QUOTA_PRODUCER_BYTE_RATE, 1e6);
    set1(e, entity(TD_QUOTA_ABSENT, NULL, TD_QUOTA_DEFAULT, NULL), TD_QUOTA_REQUEST_PERCENTAGE, 50);
    td_engine_close(e);
    e = open_engine(dir);
    td_quota_info *v;
    size_t n;
    ASSERT_OK(td_quota_list(e, &v, &n));
    ASSERT_EQ(n, 3);
    ASSERT_EQ(v[0].entity.user_level, TD_QUOTA_ABSENT);
    ASSERT_EQ(v[0].entity.client_level, TD_QUOTA_DEFAULT);
    ASSERT_EQ(v[0].has, (1 << TD_QUOTA_PRODUCER_BYTE_RATE) | (1 << TD_QUOTA_REQUEST_PERCENTAGE));
    ASSERT(v[0].values[TD_QUOTA_REQUEST_PERCENTAGE] == 50);
    ASSERT_EQ(v[1].entity.user_level, TD_QUOTA_DEFAULT);
    ASSERT(v[1].values[TD_QUOTA_CONSUMER_BYTE_RATE] == 9e6);
    ASSERT_STR_EQ(v[2].entity.user, "bob");
    ASSERT_STR_EQ(v[2].entity.client_id, "app");
    free(v);
    td_quota_op rm[] = {{.key = TD_QUOTA_PRODUCER_BYTE_RATE, .remove = 1},
                        {.key = TD_QUOTA_REQUEST_PERCENTAGE, .remove = 1}};
    td_quota_entity dc = entity(TD_QUOTA_ABSENT, NULL, TD_QUOTA_DEFAULT, NULL);
    ASSERT_OK(td_quota_alter(e, &dc, rm, 2, 0));
    td_engine_close(e);
    e = open_engine(dir);
    ASSERT_OK(td_quota_list(e, &v, &n));
    ASSERT_EQ(n, 2);
    ASSERT_EQ(v[0].entity.user_level, TD_QUOTA_DEFAULT);
    free(v);
    td_engine_close(e);
    test_rmrf(dir);
}

/* A catalog of schema version 7 (before quotas) gets the table on open. */
static void test_upgrade(void)
{
    char *dir = test_tmpdir("quota");
    td_engine *e = open_engine(dir);
    td_engine_close(e);
    char db[1024];
    snprintf(db, sizeof(db), "%s/catalog.db", dir);
    sqlite3 *s;
    ASSERT_EQ(sqlite3_open(db, &s), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(s, "DROP TABLE quotas; PRAGMA user_version=7;", NULL, NULL, NULL),
              SQLITE_OK);
    sqlite3_close(s);
    e = open_engine(dir);
    set1(e, entity(TD_QUOTA_NAMED, "u", TD_QUOTA_ABSENT, NULL), TD_QUOTA_PRODUCER_BYTE_RATE, 1);
    td_engine_close(e);
    test_rmrf(dir);
}

/*
 * The throttle time: with a quota of 1000 B/s a client may send QUOTA_BURST_MS (10 s) of it,
 * 10000 bytes, at once, as Kafka's sampled rate allows; 10000 more leave a debt of 10000 bytes,
 * which the quota pays back in 10 s (Kafka's (rate - quota) / quota * window gives the same:
 * (2000 - 1000) / 1000 * 10 s).
 */
static void test_throttle_time(void)
{
    char *dir = test_tmpdir("quota");
    td_engine *e = open_engine(dir);
    ASSERT_EQ(broker_quota_record(e, "a", "c", TD_QUOTA_PRODUCER_BYTE_RATE, 1e9, 1000), 0);
    ASSERT(!broker_quota_any(e, TD_QUOTA_PRODUCER_BYTE_RATE));
    set1(e, entity(TD_QUOTA_NAMED, "a", TD_QUOTA_ABSENT, NULL), TD_QUOTA_PRODUCER_BYTE_RATE, 1000);
    ASSERT(broker_quota_any(e, TD_QUOTA_PRODUCER_BYTE_RATE));
    ASSERT(!broker_quota_any(e, TD_QUOTA_CONSUMER_BYTE_RATE));
    int64_t t0 = 1000000;
    /* 10000 bytes: 1000 B/s over the minimum window, exactly the quota: no throttle. */
    ASSERT_EQ(broker_quota_record(e, "a", "c", TD_QUOTA_PRODUCER_BYTE_RATE, 10000, t0), 0);
    ASSERT_EQ(broker_quota_record(e, "a", "c", TD_QUOTA_PRODUCER_BYTE_RATE, 10000, t0), 10000);
    /* Another key of the same client is not limited. */
    ASSERT_EQ(broker_quota_record(e, "a", "c", TD_QUOTA_CONSUMER_BYTE_RATE, 1e9, t0), 0);
    /* The throttle is capped at all the samples together. */
    ASSERT_EQ(broker_quota_record(e, "a", "c", TD_QUOTA_PRODUCER_BYTE_RATE, 1e9, t0 + 1),
              (int64_t)QUOTA_SAMPLES * QUOTA_WINDOW_MS);
    /* The debt is at most the longest throttle's worth: paid back once that long has passed,
     * however large the request was. */
    ASSERT_EQ(broker_quota_record(e, "a", "c", TD_QUOTA_PRODUCER_BYTE_RATE, 100,
                                  t0 + 1 + QUOTA_SAMPLES * QUOTA_WINDOW_MS + 100),
              0);
    /* A client that keeps under the quota for long is never throttled: 900 B each second (the
     * sample in progress counts whole, so bursts of exactly the quota at each window's start
     * would measure 11/10 of it, as in Kafka). */
    set1(e, entity(TD_QUOTA_NAMED, "b", TD_QUOTA_ABSENT, NULL), TD_QUOTA_PRODUCER_BYTE_RATE, 1000);
    for (int i = 0; i < 60; i++)
        ASSERT_EQ(broker_quota_record(e, "b", NULL, TD_QUOTA_PRODUCER_BYTE_RATE, 900,
                                      t0 + i * 1000),
                  0);
    /* Twice the quota for long: throttled, by about one window per window sent. */
    set1(e, entity(TD_QUOTA_NAMED, "d", TD_QUOTA_ABSENT, NULL), TD_QUOTA_PRODUCER_BYTE_RATE, 1000);
    int64_t last = 0;
    for (int i = 0; i < 60; i++)
        last = broker_quota_record(e, "d", NULL, TD_QUOTA_PRODUCER_BYTE_RATE, 2000, t0 + i * 1000);
    ASSERT(last >= 9000 && last <= 11000);
    td_engine_close(e);
    test_rmrf(dir);
}

/* Which quota applies: Kafka's eight levels, most specific first. */
static void test_precedence(void)
{
    char *dir = test_tmpdir("quota");
    td_engine *e = open_engine(dir);
    int K = TD_QUOTA_PRODUCER_BYTE_RATE;
    /* Each level gets a distinct quota; a client's throttle for 100000 bytes at once tells
     * which one applied: (10000 - q) / q * 10000 ms, capped at 11000. */
    set1(e, entity(TD_QUOTA_ABSENT, NULL, TD_QUOTA_DEFAULT, NULL), K, 1000);   /* 8 */
    set1(e, entity(TD_QUOTA_ABSENT, NULL, TD_QUOTA_NAMED, "cx"), K, 2000);     /* 7 */
    set1(e, entity(TD_QUOTA_DEFAULT, NULL, TD_QUOTA_ABSENT, NULL), K, 4000);   /* 6 */
    set1(e, entity(TD_QUOTA_NAMED, "u1", TD_QUOTA_ABSENT, NULL), K, 5000);     /* 3 */
    set1(e, entity(TD_QUOTA_NAMED, "u1", TD_QUOTA_NAMED, "cx"), K, 8000);      /* 1 */
    int64_t now = 5000000;
    /* u1/cx: level 1, 8000 B/s: (10000 - 8000) / 8000 * 10000 = 2500. */
    ASSERT_EQ(broker_quota_record(e, "u1", "cx", K, 100000, now), 2500);
    /* u1/other: level 3, 5000: 10000 ms. */
    ASSERT_EQ(broker_quota_record(e, "u1", "other", K, 100000, now), 10000);
    /* u2/cx: the default user (6) outranks the client id (7): 4000: 15000 -> capped 11000;
     * with less, 50000 bytes: 5000 B/s: 2500. */
    ASSERT_EQ(broker_quota_record(e, "u2", "cx", K, 50000, now), 2500);
    /* Anonymous clients are user ANONYMOUS: the default user applies too. */
    ASSERT_EQ(broker_quota_record(e, NULL, "zz", K, 50000, now), 2500);
    /* Without user quotas, the client id levels decide. */
    td_quota_op rm = {.key = K, .remove = 1};
    td_quota_entity du = entity(TD_QUOTA_DEFAULT, NULL, TD_QUOTA_ABSENT, NULL);
    ASSERT_OK(td_quota_alter(e, &du, &rm, 1, 0));
    ASSERT_EQ(broker_quota_record(e, "u3", "cx", K, 30000, now), 5000);   /* 7: 3000 vs 2000 */
    ASSERT_EQ(broker_quota_record(e, "u3", "cy", K, 15000, now), 5000);   /* 8: 1500 vs 1000 */
    /* A key removed everywhere stops being measured. */
    td_quota_info *v;
    size_t n;
    ASSERT_OK(td_quota_list(e, &v, &n));
    for (size_t i = 0; i < n; i++)
        ASSERT_OK(td_quota_alter(e, &v[i].entity, &rm, 1, 0));
    free(v);
    ASSERT(!broker_quota_any(e, K));
    ASSERT_EQ(broker_quota_record(e, "u1", "cx", K, 1e12, now), 0);
    td_engine_close(e);
    test_rmrf(dir);
}

/* A user quota is shared by all the user's client ids; a default client-id quota is measured
 * per client id. */
static void test_sharing(void)
{
    char *dir = test_tmpdir("quota");
    td_engine *e = open_engine(dir);
    int K = TD_QUOTA_CONSUMER_BYTE_RATE;
    set1(e, entity(TD_QUOTA_NAMED, "alice", TD_QUOTA_ABSENT, NULL), K, 1000);
    set1(e, entity(TD_QUOTA_ABSENT, NULL, TD_QUOTA_DEFAULT, NULL), K, 1000);
    int64_t now = 7000000;
    ASSERT_EQ(broker_quota_record(e, "alice", "one", K, 10000, now), 0);
    ASSERT(broker_quota_record(e, "alice", "two", K, 10000, now) > 0);
    ASSERT_EQ(broker_quota_record(e, "bob", "one", K, 10000, now), 0);
    ASSERT_EQ(broker_quota_record(e, "bob", "two", K, 10000, now), 0);
    ASSERT(broker_quota_record(e, "carol", "two", K, 10000, now) > 0);
    td_engine_close(e);
    test_rmrf(dir);
}

static size_t count_samples(td_engine *e, const char *prefix)
{
    td_metrics_out out = {0};
    ASSERT_OK(td_metrics_render(broker_metrics(e), &out));
    size_t n = 0, pl = strlen(prefix);
    const char *p = (const char *)out.buf.p, *end = p + out.buf.len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            nl = end;
        if ((size_t)(nl - p) > pl && !memcmp(p, prefix, pl))
            n++;
        p = nl + 1;
    }
    td_buf_free(&out.buf);
    return n;
}

/* Client ids are the client's to choose: the measurements stay within their bound, and the
 * metrics show one series per measured entity. */
static void test_bounded(void)
{
    char *dir = test_tmpdir("quota");
    td_engine *e = open_engine(dir);
    set1(e, entity(TD_QUOTA_ABSENT, NULL, TD_QUOTA_DEFAULT, NULL), TD_QUOTA_PRODUCER_BYTE_RATE, 1e6);
    int64_t now = 9000000;
    char id[32];
    for (int i = 0; i < 3; i++) {
        snprintf(id, sizeof(id), "c%d", i);
        broker_quota_record(e, NULL, id, TD_QUOTA_PRODUCER_BYTE_RATE, 10, now);
    }
    ASSERT_EQ(count_samples(e, "tidings_quota_limit{"), 3);
    ASSERT(count_samples(e, "tidings_quota_rate{type=\"producer_byte_rate\",user=\"\",client_id=\"c1\"}") == 1);
    for (int i = 0; i < QUOTA_SENSORS_MAX + 100; i++) {
        snprintf(id, sizeof(id), "client-%d", i);
        broker_quota_record(e, NULL, id, TD_QUOTA_PRODUCER_BYTE_RATE, 10, now + 1);
    }
    ASSERT_EQ(count_samples(e, "tidings_quota_limit{"), QUOTA_SENSORS_MAX);
    /* Measurements idle for an hour go when a new one is made. */
    broker_quota_record(e, NULL, "late", TD_QUOTA_PRODUCER_BYTE_RATE, 10,
                        now + QUOTA_SENSOR_IDLE_MS + 10);
    ASSERT_EQ(count_samples(e, "tidings_quota_limit{"), 1);
    td_engine_close(e);
    test_rmrf(dir);
}

TEST_MAIN(TEST(test_validation), TEST(test_persistence), TEST(test_upgrade),
          TEST(test_throttle_time), TEST(test_precedence), TEST(test_sharing),
          TEST(test_bounded))
