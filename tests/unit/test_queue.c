/*
 * test_queue.c: queue groups through the embedded API (broker/queue.c): deliveries and the
 * in-flight limits, acks, nacks, deadlines and stale ids, backoff, dead letters and their
 * headers, per-key ordering, policy changes, and the state across a reopen.
 */
#include <sqlite3.h>
#include <time.h>
#include <unistd.h>

#include "broker/queue.h"
#include "test.h"
#include "tidings.h"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Appends "<prefix><i>" for i in [from, from + n) to a partition, keyed by key (may be NULL). */
static void produce(td_engine *e, const char *topic, int32_t part, const char *key, int from, int n)
{
    for (int i = from; i < from + n; i++) {
        char v[32];
        snprintf(v, sizeof(v), "v%d", i);
        td_event ev = {.key = key,
                       .key_len = key ? strlen(key) : 0,
                       .value = v,
                       .value_len = strlen(v),
                       .partition = part};
        ASSERT_OK(td_produce(e, topic, &ev, 1, NULL));
    }
}

static td_queue_policy policy(const char *const *kv)
{
    td_queue_policy p;
    td_queue_policy_init(&p);
    td_config_entry en[16];
    size_t n = 0;
    for (; kv && kv[2 * n]; n++)
        en[n] = (td_config_entry){kv[2 * n], kv[2 * n + 1]};
    ASSERT_OK(td_queue_policy_apply(&p, en, n));
    return p;
}

static size_t receive(td_engine *e, const char *g, const char *consumer, size_t max,
                      td_queue_msg **out)
{
    size_t n = 0;
    ASSERT_OK(td_queue_receive(e, g, consumer, max, out, &n));
    return n;
}

static void ack1(td_engine *e, const char *g, const char *id, int want)
{
    int r = 99;
    ASSERT_OK(td_queue_ack(e, g, &id, 1, &r));
    ASSERT_EQ(r, want);
}

/* The number in a value "v<n>" (values are not NUL-terminated). */
static int vnum(const td_queue_msg *m)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%.*s", (int)m->event.value_len, (const char *)m->event.value);
    return atoi(buf + 1);
}

static void value_is(const td_queue_msg *m, const char *v)
{
    ASSERT_EQ(m->event.value_len, strlen(v));
    ASSERT_MEM_EQ(m->event.value, v, strlen(v));
}

static void test_policy_and_ids(void)
{
    td_queue_policy p;
    td_queue_policy_init(&p);
    ASSERT_EQ(p.ack_timeout_ms, 30000);
    ASSERT_EQ(p.max_deliveries, 5);
    td_config_entry good[] = {{"ack.timeout.ms", "1500"}, {"backoff.multiplier", "1.5"},
                              {"ordering", "key"},        {"dead.letter.topic", "parked"},
                              {"start", "latest"},        {"backoff.jitter", "0"}};
    ASSERT_OK(td_queue_policy_apply(&p, good, 6));
    char buf[300];
    /* <topic>.dlq, a valid name for every topic: that of the key <key>.dlq. */
    static const char *const dlqs[][2] = {{"orders", "orders.dlq"},
                                          {"user:1", "user:1.dlq"},
                                          {"my%20key", "my%20key.dlq"},
                                          {"%", ".dlq"},
                                          {"%2E", "..dlq"},
                                          {"%2E%2E", "...dlq"}};
    for (size_t i = 0; i < sizeof(dlqs) / sizeof(dlqs[0]); i++) {
        ASSERT(queue_dlq_name("", dlqs[i][0], buf, sizeof(buf)));
        ASSERT_STR_EQ(buf, dlqs[i][1]);
        ASSERT_OK(td_topic_name_validate(buf));
    }
    char longest[TD_TOPIC_NAME_MAX + 1];
    memset(longest, 'a', TD_TOPIC_NAME_MAX - 4);
    longest[TD_TOPIC_NAME_MAX - 4] = 0;
    ASSERT(queue_dlq_name("", longest, buf, sizeof(buf)) && strlen(buf) == TD_TOPIC_NAME_MAX);
    longest[TD_TOPIC_NAME_MAX - 4] = 'a';
    longest[TD_TOPIC_NAME_MAX - 3] = 0;
    ASSERT(!queue_dlq_name("", longest, buf, sizeof(buf)));
    ASSERT(queue_dlq_name("parked", "x", buf, sizeof(buf)) && !strcmp(buf, "parked"));
    ASSERT_OK(td_queue_policy_get(&p, "ack.timeout.ms", buf, sizeof(buf)));
    ASSERT_STR_EQ(buf, "1500");
    ASSERT_OK(td_queue_policy_get(&p, "backoff.multiplier", buf, sizeof(buf)));
    ASSERT_STR_EQ(buf, "1.5");
    ASSERT_OK(td_queue_policy_get(&p, "ordering", buf, sizeof(buf)));
    ASSERT_STR_EQ(buf, "key");
    ASSERT_OK(td_queue_policy_get(&p, "start", buf, sizeof(buf)));
    ASSERT_STR_EQ(buf, "latest");
    /* Every key reads back. */
    for (const char *const *k = td_queue_policy_keys(); *k; k++)
        ASSERT_OK(td_queue_policy_get(&p, *k, buf, sizeof(buf)));
    const char *bad[][2] = {
        {"ack.timeout.ms", "0"},     {"max.deliveries", "1001"}, {"backoff.multiplier", "0.5"},
        {"backoff.jitter", "2"},     {"ordering", "fifo"},       {"dead.letter.topic", "a b"},
        {"colour", "blue"},          {"max.in.flight", "x"},     {"start", "middle"},
        {"backoff.initial.ms", "-1"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        td_queue_policy before = p;
        td_config_entry en = {bad[i][0], bad[i][1]};
        ASSERT_EQ(td_queue_policy_apply(&p, &en, 1), TD_ECONFIG);
        ASSERT(memcmp(&before, &p, sizeof(p)) == 0); /* nothing applied */
        ASSERT_CONTAINS(td_last_error(), bad[i][0]);
    }
    td_config_entry order[] = {{"backoff.initial.ms", "5000"}, {"backoff.max.ms", "100"}};
    ASSERT_EQ(td_queue_policy_apply(&p, order, 2), TD_ECONFIG);

    int64_t t, o;
    int32_t part, d;
    ASSERT(queue_id_parse("7.2.123.4", &t, &part, &o, &d));
    ASSERT(t == 7 && part == 2 && o == 123 && d == 4);
    const char *junk[] = {"",        "7.2.123",  "7.2.123.4.5",       "a.2.3.4",
                          "7..3.4",  "7.2.3.4 ", "7.99999999999.1.1", "99999999999999999999.1.1.1",
                          "-1.2.3.4"};
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
        ASSERT(!queue_id_parse(junk[i], &t, &part, &o, &d));
}

static void test_deliver_ack_limits(void)
{
    char *dir = test_tmpdir("queue");
    td_engine *e = test_engine_open(dir);
    ASSERT_OK(td_topic_create(e, "jobs", 2, NULL, 0));
    produce(e, "jobs", 0, NULL, 0, 6);
    produce(e, "jobs", 1, NULL, 6, 4);
    ASSERT_EQ(td_queue_create(e, "w", "nope", NULL), TD_ENOTFOUND);
    ASSERT_EQ(td_queue_create(e, "bad name", "jobs", NULL), TD_ENAME);
    td_queue_policy p = policy((const char *[]){"max.in.flight.per.consumer", "3", NULL});
    ASSERT_OK(td_queue_create(e, "w", "jobs", &p));
    ASSERT_EQ(td_queue_create(e, "w", "jobs", &p), TD_EEXIST);

    td_queue_msg *a, *b;
    size_t na = receive(e, "w", "alice", 10, &a);
    ASSERT_EQ(na, 3); /* alice's limit */
    size_t nb = receive(e, "w", "bob", 2, &b);
    ASSERT_EQ(nb, 2);
    td_queue_msg *none;
    ASSERT_EQ(receive(e, "w", "alice", 10, &none), 0);
    td_queue_msgs_free(none, 0);
    for (size_t i = 0; i < na; i++) {
        ASSERT_EQ(a[i].deliveries, 1);
        ASSERT_STR_EQ(a[i].topic, "jobs");
        for (size_t k = 0; k < nb; k++)
            ASSERT(strcmp(a[i].id, b[k].id) != 0);
    }
    td_queue_info info;
    ASSERT_OK(td_queue_describe(e, "w", &info));
    ASSERT_EQ(info.depth, 10);
    ASSERT_EQ(info.in_flight, 5);
    ASSERT_EQ(info.consumers, 2);
    ASSERT(info.oldest_unacked_ms > 0);
    /* Acks free alice's room; an id acked twice is stale, a made-up one invalid. */
    const char *ids[] = {a[0].id, a[1].id, "1.0.999.1", "garbage"};
    int res[4];
    ASSERT_OK(td_queue_ack(e, "w", ids, 4, res));
    ASSERT_EQ(res[0], 0);
    ASSERT_EQ(res[1], 0);
    ASSERT_EQ(res[2], TD_EINVAL);
    ASSERT_EQ(res[3], TD_EINVAL);
    ack1(e, "w", a[0].id, TD_ESTALE);
    td_queue_msg *c;
    size_t nc = receive(e, "w", "alice", 10, &c);
    ASSERT_EQ(nc, 2);
    ASSERT_OK(td_queue_describe(e, "w", &info));
    ASSERT_EQ(info.acked, 2);
    ASSERT_EQ(info.depth, 8);
    /* Everything acked: every event was delivered exactly once. */
    int seen[10] = {0};
    td_queue_msg *all[] = {a, b, c};
    size_t ns[] = {na, nb, nc};
    for (int s = 0; s < 3; s++)
        for (size_t i = 0; i < ns[s]; i++) {
            int v = vnum(&all[s][i]);
            seen[v]++;
            if (!(s == 0 && i < 2))
                ack1(e, "w", all[s][i].id, 0);
        }
    td_queue_msg *more;
    size_t nm;
    while ((nm = receive(e, "w", "carol", 10, &more)) > 0) {
        for (size_t i = 0; i < nm; i++) {
            seen[vnum(&more[i])]++;
            ack1(e, "w", more[i].id, 0);
        }
        td_queue_msgs_free(more, nm);
    }
    td_queue_msgs_free(more, 0);
    for (int i = 0; i < 10; i++)
        ASSERT_EQ(seen[i], 1);
    ASSERT_OK(td_queue_describe(e, "w", &info));
    ASSERT_EQ(info.depth, 0);
    ASSERT_EQ(info.acked, 10);
    ASSERT_EQ(info.oldest_unacked_ms, -1);
    td_queue_msgs_free(a, na);
    td_queue_msgs_free(b, nb);
    td_queue_msgs_free(c, nc);
    ASSERT_OK(td_queue_delete(e, "w"));
    ASSERT_EQ(td_queue_delete(e, "w"), TD_ENOTFOUND);
    ASSERT_EQ(td_queue_receive(e, "w", "x", 1, &more, &nm), TD_ENOTFOUND);
    td_engine_close(e);
    test_rmrf(dir);
}

static void test_nack_timeout_backoff(void)
{
    char *dir = test_tmpdir("queue-retry");
    td_engine *e = test_engine_open(dir);
    ASSERT_OK(td_topic_create(e, "t", 1, NULL, 0));
    produce(e, "t", 0, "k", 0, 2);
    td_queue_policy p =
        policy((const char *[]){"ack.timeout.ms", "100", "backoff.initial.ms", "300",
                                "backoff.jitter", "0", "max.deliveries", "10", NULL});
    ASSERT_OK(td_queue_create(e, "r", "t", &p));
    td_queue_msg *m;
    ASSERT_EQ(receive(e, "r", "c", 2, &m), 2);
    /* Nack with no delay: at once again, second delivery, a new id. */
    const char *id0 = m[0].id;
    int res;
    ASSERT_OK(td_queue_nack(e, "r", &id0, 1, 0, "try again", &res));
    ASSERT_EQ(res, 0);
    td_queue_msg *again;
    ASSERT_EQ(receive(e, "r", "c", 1, &again), 1);
    ASSERT_EQ(again[0].deliveries, 2);
    ASSERT_EQ(again[0].event.offset, 0);
    ASSERT(strcmp(again[0].id, m[0].id) != 0);
    ack1(e, "r", m[0].id, TD_ESTALE); /* the first delivery's id no longer counts */
    /* Extend, then let the other one time out: redelivered after the backoff (300 ms). */
    const char *id1 = m[1].id;
    ASSERT_OK(td_queue_extend(e, "r", &id1, 1, 60000, &res));
    ASSERT_EQ(res, 0);
    int64_t t0 = now_ms();
    const char *ida = again[0].id;
    ASSERT_OK(td_queue_nack(e, "r", &ida, 1, -1, NULL, &res));
    td_queue_msg *late = NULL;
    size_t n = 0;
    while ((n = receive(e, "r", "c", 1, &late)) == 0 && now_ms() - t0 < 10000) {
        td_queue_msgs_free(late, 0);
        usleep(10000);
    }
    int64_t waited = now_ms() - t0;
    ASSERT_EQ(n, 1);
    ASSERT_EQ(late[0].deliveries, 3);
    /* Second failure: initial * 2^1 = 600 ms after the nack, which came after t0. */
    ASSERT_GE(waited, 600);
    /* A deadline that passes is a failure: the id goes stale, the event comes back. */
    usleep(150000);
    ack1(e, "r", late[0].id, TD_ESTALE);
    ack1(e, "r", m[1].id, 0); /* extended: still valid */
    td_queue_info info;
    ASSERT_OK(td_queue_describe(e, "r", &info));
    ASSERT_EQ(info.waiting, 1);
    ASSERT_EQ(info.redelivered, 2);
    td_queue_msgs_free(m, 2);
    td_queue_msgs_free(again, 1);
    td_queue_msgs_free(late, 1);
    td_engine_close(e);
    test_rmrf(dir);
}

/* The header named key of ev, as a string, or NULL. */
static const char *header(const td_event *ev, const char *key, char *buf, size_t len)
{
    for (size_t i = 0; i < ev->header_count; i++) {
        const td_header *h = &ev->headers[i];
        if (h->key_len == strlen(key) && !memcmp(h->key, key, h->key_len)) {
            snprintf(buf, len, "%.*s", (int)h->value_len, (const char *)h->value);
            return buf;
        }
    }
    return NULL;
}

static void test_dead_letters(void)
{
    char *dir = test_tmpdir("queue-dlq");
    td_engine *e = test_engine_open(dir);
    ASSERT_OK(td_topic_create(e, "orders", 3, NULL, 0));
    td_header h = {"trace", 5, "t-1", 3};
    td_event ev = {.key = "k",
                   .key_len = 1,
                   .value = "payload",
                   .value_len = 7,
                   .headers = &h,
                   .header_count = 1,
                   .partition = 2,
                   .timestamp_ms = 1234};
    ASSERT_OK(td_produce(e, "orders", &ev, 1, NULL));
    td_queue_policy p = policy((const char *[]){"max.deliveries", "2", NULL});
    ASSERT_OK(td_queue_create(e, "billing", "orders", &p));
    int64_t t0 = now_ms();
    for (int i = 0; i < 2; i++) {
        td_queue_msg *m;
        ASSERT_EQ(receive(e, "billing", "c", 1, &m), 1);
        ASSERT_EQ(m[0].deliveries, i + 1);
        const char *id = m[0].id;
        int res;
        ASSERT_OK(td_queue_nack(e, "billing", &id, 1, 0, i ? "card declined" : "timeout", &res));
        ASSERT_EQ(res, 0);
        td_queue_msgs_free(m, 1);
    }
    /* The worker copies it to orders.dlq (created with 3 partitions), same partition. */
    td_queue_info info;
    for (int i = 0; i < 500; i++) {
        ASSERT_OK(td_queue_describe(e, "billing", &info));
        if (info.dead_lettered == 1)
            break;
        usleep(10000);
    }
    ASSERT_EQ(info.dead_lettered, 1);
    ASSERT_EQ(info.depth, 0);
    td_topic_info ti;
    ASSERT_OK(td_topic_describe(e, "orders.dlq", &ti));
    ASSERT_EQ(ti.partitions, 3);
    td_iter *it;
    ASSERT_OK(td_iter_open(e, "orders.dlq", 2, TD_OFFSET_EARLIEST, &it));
    td_event got;
    ASSERT_EQ(td_iter_next(it, &got), 1);
    ASSERT_MEM_EQ(got.value, "payload", 7);
    ASSERT_MEM_EQ(got.key, "k", 1);
    ASSERT_EQ(got.timestamp_ms, 1234);
    char buf[64];
    ASSERT_STR_EQ(header(&got, "trace", buf, sizeof(buf)), "t-1");
    ASSERT_STR_EQ(header(&got, "x-dlq-topic", buf, sizeof(buf)), "orders");
    ASSERT_STR_EQ(header(&got, "x-dlq-partition", buf, sizeof(buf)), "2");
    ASSERT_STR_EQ(header(&got, "x-dlq-offset", buf, sizeof(buf)), "0");
    ASSERT_STR_EQ(header(&got, "x-dlq-group", buf, sizeof(buf)), "billing");
    ASSERT_STR_EQ(header(&got, "x-dlq-deliveries", buf, sizeof(buf)), "2");
    ASSERT_STR_EQ(header(&got, "x-dlq-error", buf, sizeof(buf)), "card declined");
    int64_t first = atoll(header(&got, "x-dlq-first-failure-ms", buf, sizeof(buf)));
    int64_t last = atoll(header(&got, "x-dlq-last-failure-ms", buf, sizeof(buf)));
    ASSERT(first >= t0 && last >= first && last <= now_ms());
    ASSERT_EQ(td_iter_next(it, &got), 0);
    td_iter_close(it);
    /* A dead-letter topic of its own name; never the group's own topic. */
    td_queue_policy own = policy((const char *[]){"dead.letter.topic", "orders", NULL});
    ASSERT_EQ(td_queue_configure(e, "billing", &own), TD_ECONFIG);
    td_engine_close(e);
    test_rmrf(dir);
}

static void test_key_ordering(void)
{
    char *dir = test_tmpdir("queue-keys");
    td_engine *e = test_engine_open(dir);
    ASSERT_OK(td_topic_create(e, "t", 1, NULL, 0));
    produce(e, "t", 0, "k1", 0, 2); /* v0 v1 */
    produce(e, "t", 0, "k2", 2, 1); /* v2 */
    produce(e, "t", 0, "k1", 3, 1); /* v3 */
    produce(e, "t", 0, NULL, 4, 1); /* v4: no key, never held */
    td_queue_policy p = policy((const char *[]){"ordering", "key", NULL});
    ASSERT_OK(td_queue_create(e, "o", "t", &p));
    td_queue_msg *m;
    size_t n = receive(e, "o", "c", 10, &m);
    ASSERT_EQ(n, 3);
    value_is(&m[0], "v0");
    value_is(&m[1], "v2");
    value_is(&m[2], "v4");
    td_queue_info info;
    ASSERT_OK(td_queue_describe(e, "o", &info));
    ASSERT_EQ(info.held, 2);
    /* v0 fails: it comes back before v1, which stays held. */
    const char *id = m[0].id;
    ASSERT_OK(td_queue_nack(e, "o", &id, 1, 0, NULL, NULL));
    td_queue_msg *r;
    ASSERT_EQ(receive(e, "o", "c", 10, &r), 1);
    value_is(&r[0], "v0");
    ack1(e, "o", r[0].id, 0);
    td_queue_msg *r2;
    ASSERT_EQ(receive(e, "o", "c", 10, &r2), 1);
    value_is(&r2[0], "v1");
    ASSERT_EQ(r2[0].deliveries, 1);
    ack1(e, "o", r2[0].id, 0);
    td_queue_msg *r3;
    ASSERT_EQ(receive(e, "o", "c", 10, &r3), 1);
    value_is(&r3[0], "v3");
    /* Ordering off: nothing is held any more. */
    produce(e, "t", 0, "k1", 5, 1);
    td_queue_policy none = p;
    none.ordering = TD_QUEUE_UNORDERED;
    ASSERT_OK(td_queue_configure(e, "o", &none));
    td_queue_msg *r4;
    ASSERT_EQ(receive(e, "o", "c", 10, &r4), 1);
    value_is(&r4[0], "v5");
    td_queue_msgs_free(m, n);
    td_queue_msgs_free(r, 1);
    td_queue_msgs_free(r2, 1);
    td_queue_msgs_free(r3, 1);
    td_queue_msgs_free(r4, 1);
    td_engine_close(e);
    test_rmrf(dir);
}

static void test_state_survives_reopen(void)
{
    char *dir = test_tmpdir("queue-reopen");
    td_engine *e = test_engine_open(dir);
    ASSERT_OK(td_topic_create(e, "t", 2, NULL, 0));
    produce(e, "t", 0, NULL, 0, 5);
    produce(e, "t", 1, NULL, 5, 5);
    td_queue_policy p = policy((const char *[]){"ack.timeout.ms", "200", "backoff.initial.ms", "0",
                                                "max.in.flight", "6", NULL});
    ASSERT_OK(td_queue_create(e, "s", "t", &p));
    td_queue_msg *m;
    size_t n = receive(e, "s", "c", 100, &m);
    ASSERT_EQ(n, 6); /* the group's limit */
    int acked[10] = {0};
    for (size_t i = 0; i < n; i += 2) {
        ack1(e, "s", m[i].id, 0);
        acked[vnum(&m[i])] = 1;
    }
    const char *nid = m[1].id;
    ASSERT_OK(td_queue_nack(e, "s", &nid, 1, 0, "kept across the reopen", NULL));
    td_queue_msgs_free(m, n);
    td_engine_close(e);

    e = test_engine_open(dir);
    td_queue_info info;
    ASSERT_OK(td_queue_describe(e, "s", &info));
    ASSERT_EQ(info.depth, 7);
    ASSERT_EQ(info.policy.max_in_flight, 6);
    ASSERT_EQ(info.policy.ack_timeout_ms, 200);
    /* The in-flight ones keep their deadline; after it, everything not acked comes back once,
     * the nacked one with its count. */
    usleep(250000);
    int seen[10] = {0}, total = 0;
    int64_t t0 = now_ms();
    while (total < 7 && now_ms() - t0 < 10000) {
        n = receive(e, "s", "c", 100, &m);
        for (size_t i = 0; i < n; i++) {
            int v = vnum(&m[i]);
            ASSERT(!acked[v]);
            seen[v]++;
            total++;
            ack1(e, "s", m[i].id, 0);
        }
        td_queue_msgs_free(m, n);
    }
    ASSERT_EQ(total, 7);
    for (int i = 0; i < 10; i++)
        ASSERT_EQ(seen[i] + acked[i], 1);
    td_engine_close(e);
    test_rmrf(dir);
}

/* Receives and acks until nothing comes, counting per topic; returns the number received. */
static size_t drain(td_engine *e, const char *g, int *eu, int *us, int *other)
{
    size_t total = 0, n;
    td_queue_msg *m;
    while ((n = receive(e, g, "c", 100, &m)) > 0) {
        for (size_t i = 0; i < n; i++) {
            int *c = !strcmp(m[i].topic, "orders.eu")   ? eu
                     : !strcmp(m[i].topic, "orders.us") ? us
                                                        : other;
            (*c)++;
            ack1(e, g, m[i].id, 0);
        }
        total += n;
        td_queue_msgs_free(m, n);
    }
    return total;
}

static void test_wildcard_group(void)
{
    ASSERT(td_topic_matches("orders.*", "orders.eu"));
    ASSERT(!td_topic_matches("orders.*", "orders.eu.paris"));
    ASSERT(td_topic_matches("orders.#", "orders"));
    ASSERT(!td_topic_matches("ord*", "orders"));
    char *dir = test_tmpdir("queue-wild");
    td_engine *e = test_engine_open(dir);
    ASSERT_OK(td_topic_create(e, "orders.eu", 2, NULL, 0));
    ASSERT_OK(td_topic_create(e, "orders.us", 1, NULL, 0));
    ASSERT_OK(td_topic_create(e, "billing", 1, NULL, 0));
    produce(e, "orders.eu", 0, NULL, 0, 3);
    produce(e, "orders.eu", 1, NULL, 3, 3);
    produce(e, "orders.us", 0, NULL, 6, 4);
    produce(e, "billing", 0, NULL, 10, 5);
    td_queue_policy bad = policy(NULL);
    ASSERT_EQ(td_queue_create(e, "w", "ord*", &bad), TD_ENAME);
    td_queue_policy p = policy((const char *[]){"max.deliveries", "1", NULL});
    ASSERT_OK(td_queue_create(e, "w", "orders.*", &p));
    td_queue_info info;
    ASSERT_OK(td_queue_describe(e, "w", &info));
    ASSERT_STR_EQ(info.topic, "orders.*");
    ASSERT_EQ(info.topics, 2);
    ASSERT_EQ(info.depth, 10);
    ASSERT_STR_EQ(info.dead_letter_topic, "orders.*.dlq");

    /* Every event of the matching topics, none of billing's; each message names its topic. */
    int eu = 0, us = 0, other = 0;
    ASSERT_EQ(drain(e, "w", &eu, &us, &other), 10);
    ASSERT_EQ(eu, 6);
    ASSERT_EQ(us, 4);
    ASSERT_EQ(other, 0);

    /* A topic created later is read from its start. A failed event goes to <its topic>.dlq,
     * which "orders.*" does not match; but "orders.dlq" it matches, and reads: it is not the
     * dead-letter topic of a topic the pattern matches ("orders" is not one). */
    ASSERT_OK(td_topic_create(e, "orders.asia", 1, NULL, 0));
    produce(e, "orders.asia", 0, NULL, 20, 2);
    td_queue_msg *m;
    ASSERT_EQ(receive(e, "w", "c", 100, &m), 2);
    ASSERT_STR_EQ(m[0].topic, "orders.asia");
    ASSERT_EQ(vnum(&m[0]), 20);
    ack1(e, "w", m[0].id, 0);
    const char *nid = m[1].id;
    ASSERT_OK(td_queue_nack(e, "w", &nid, 1, 0, "bad", NULL));
    td_queue_msgs_free(m, 2);
    for (int i = 0; i < 500; i++) {
        ASSERT_OK(td_queue_describe(e, "w", &info));
        if (info.dead_lettered == 1)
            break;
        usleep(10000);
    }
    ASSERT_EQ(info.dead_lettered, 1);
    td_partition_info pi;
    ASSERT_OK(td_partition_describe(e, "orders.asia.dlq", 0, &pi));
    ASSERT_EQ(pi.high_watermark, 1);
    ASSERT_OK(td_topic_create(e, "orders.dlq", 1, NULL, 0)); /* matches, and is not one of its */
    produce(e, "orders.dlq", 0, NULL, 30, 1);
    ASSERT_EQ(receive(e, "w", "c", 100, &m), 1);
    ASSERT_STR_EQ(m[0].topic, "orders.dlq");
    ack1(e, "w", m[0].id, 0);
    td_queue_msgs_free(m, 1);
    ASSERT_OK(td_queue_describe(e, "w", &info));
    ASSERT_EQ(info.topics, 4); /* eu, us, asia, orders.dlq */
    /* "orders.#" matches the dead-letter topics too, and leaves them out: orders.asia.dlq, and
     * orders.dlq as the one of a topic "orders" it would read. */
    ASSERT_OK(td_queue_create(e, "deep", "orders.#", &p));
    ASSERT_OK(td_queue_describe(e, "deep", &info));
    ASSERT_EQ(info.topics, 3);
    eu = us = other = 0;
    ASSERT_EQ(drain(e, "deep", &eu, &us, &other), 12);
    ASSERT_EQ(other, 2); /* orders.asia's */
    ASSERT_OK(td_queue_delete(e, "deep"));

    /* A deleted topic's deliveries are forgotten: its ids are no longer the group's. */
    produce(e, "orders.us", 0, NULL, 40, 2);
    ASSERT_EQ(receive(e, "w", "c", 100, &m), 2);
    ASSERT_OK(td_topic_delete(e, "orders.us"));
    ASSERT_OK(td_queue_describe(e, "w", &info));
    ASSERT_EQ(info.topics, 3);
    ASSERT_EQ(info.in_flight, 0);
    ASSERT_EQ(info.depth, 0);
    ack1(e, "w", m[0].id, TD_EINVAL);
    td_queue_msgs_free(m, 2);

    /* Across a reopen: nothing acked comes back; events written meanwhile (and a topic created
     * meanwhile) are delivered. */
    produce(e, "orders.eu", 1, NULL, 50, 1);
    td_engine_close(e);
    e = test_engine_open(dir);
    ASSERT_OK(td_topic_create(e, "orders.us", 1, NULL, 0));
    produce(e, "orders.us", 0, NULL, 60, 2);
    eu = us = other = 0;
    ASSERT_EQ(drain(e, "w", &eu, &us, &other), 3);
    ASSERT_EQ(eu, 1);
    ASSERT_EQ(us, 2);
    ASSERT_OK(td_queue_describe(e, "w", &info));
    ASSERT_EQ(info.acked, 3);
    td_engine_close(e);
    test_rmrf(dir);
}

static int on_progress(void *arg, int64_t done, int64_t total)
{
    int64_t *last = arg;
    ASSERT(done >= last[0] && done <= total);
    last[0] = done;
    last[1] = total;
    return 0;
}

static void test_redrive(void)
{
    char *dir = test_tmpdir("queue-redrive");
    td_engine *e = test_engine_open(dir);
    ASSERT_OK(td_topic_create(e, "src", 2, NULL, 0));
    ASSERT_OK(td_topic_create(e, "src.dlq", 2, NULL, 0));
    ASSERT_OK(td_topic_create(e, "other", 1, NULL, 0));
    /* Dead letters as the queue writes them: origin headers after the event's own. */
    for (int i = 0; i < 10; i++) {
        char v[16], part[16], failed[24];
        snprintf(v, sizeof(v), "d%d", i);
        snprintf(part, sizeof(part), "%d", i % 2);
        snprintf(failed, sizeof(failed), "%d", 1000 * (i + 1));
        td_header hs[] = {{"trace", 5, "t", 1},
                          {"x-dlq-topic", 11, i == 7 ? "gone" : "src", i == 7 ? 4 : 3},
                          {"x-dlq-partition", 15, part, strlen(part)},
                          {"x-dlq-last-failure-ms", 21, failed, strlen(failed)}};
        td_event ev = {.key = "k",
                       .key_len = 1,
                       .value = v,
                       .value_len = strlen(v),
                       .headers = hs,
                       .header_count = i == 9 ? 1 : 4,
                       .partition = 0};
        ASSERT_OK(td_produce(e, "src.dlq", &ev, 1, NULL));
    }
    /* Offsets 0-3 by time [1000, 5000): 4 events; keep them in the dead-letter topic. */
    td_redrive_opts o;
    td_redrive_opts_init(&o);
    o.since_ms = 1000;
    o.until_ms = 5000;
    o.to_offset = 6;
    o.keep = 1;
    int64_t prog[2] = {0, 0};
    o.progress = on_progress;
    o.arg = prog;
    td_redrive_result r;
    ASSERT_OK(td_redrive(e, "src.dlq", &o, &r));
    ASSERT_EQ(r.total, 6);
    ASSERT_EQ(r.moved, 4);
    ASSERT_EQ(r.skipped, 2);
    ASSERT_EQ(r.deleted, 0);
    ASSERT_EQ(prog[0], 6);
    ASSERT_EQ(prog[1], 6);
    /* The copies: at their origin partition, without the x-dlq-* headers, naming the dead
     * letter they come from (docs/tracing.md). */
    td_iter *it;
    td_event got;
    ASSERT_OK(td_iter_open(e, "src", 1, TD_OFFSET_EARLIEST, &it));
    ASSERT_EQ(td_iter_next(it, &got), 1);
    ASSERT_MEM_EQ(got.value, "d1", 2);
    ASSERT_EQ(got.header_count, 2);
    ASSERT_MEM_EQ(got.headers[0].key, "trace", 5);
    ASSERT_MEM_EQ(got.headers[1].key, "x-causation-id", 14);
    ASSERT_EQ(got.headers[1].value_len, 11);
    ASSERT_MEM_EQ(got.headers[1].value, "src.dlq/0/1", 11);
    ASSERT_EQ(td_iter_next(it, &got), 1);
    ASSERT_MEM_EQ(got.value, "d3", 2);
    ASSERT_EQ(td_iter_next(it, &got), 0);
    td_iter_close(it);
    /* Everything else, moved: d7 (its origin is gone) and d9 (no origin) stop the prefix. */
    td_redrive_opts_init(&o);
    ASSERT_EQ(td_redrive(e, "src.dlq", &o, &r), TD_ENOTFOUND); /* "gone" does not exist */
    ASSERT_OK(td_topic_create(e, "gone", 1, NULL, 0));
    ASSERT_OK(td_redrive(e, "src.dlq", &o, &r));
    ASSERT_EQ(r.total, 10);
    ASSERT_EQ(r.skipped, 1); /* d9 */
    ASSERT_EQ(r.deleted, 9); /* offsets 0 to 8 left the dead-letter topic */
    int64_t start;
    ASSERT_OK(td_offset_for(e, "src.dlq", 0, TD_OFFSET_EARLIEST, &start));
    ASSERT_EQ(start, 9);
    /* Moving again moves nothing twice; to another topic, by key. */
    td_redrive_opts_init(&o);
    o.to_topic = "other";
    ASSERT_OK(td_redrive(e, "src.dlq", &o, &r));
    ASSERT_EQ(r.total, 1);
    ASSERT_EQ(r.moved, 1);
    ASSERT_EQ(r.deleted, 1);
    ASSERT_OK(td_iter_open(e, "other", 0, TD_OFFSET_EARLIEST, &it));
    ASSERT_EQ(td_iter_next(it, &got), 1);
    ASSERT_MEM_EQ(got.value, "d9", 2);
    td_iter_close(it);
    td_redrive_opts_init(&o);
    o.partition = 5;
    ASSERT_EQ(td_redrive(e, "src.dlq", &o, &r), TD_ENOTFOUND);
    td_engine_close(e);
    test_rmrf(dir);
}

/* One entry in the catalog's format of older versions (little-endian; queue_migrate.c). */
static size_t legacy_entry(unsigned char *w, int64_t offset, int64_t at, int64_t fail,
                           uint64_t key_hash, int32_t deliveries, uint8_t state, const char *error)
{
    unsigned char *start = w;
    int64_t f[6] = {offset, at, fail, fail, 1000, (int64_t)key_hash};
    for (int k = 0; k < 6; k++)
        for (int i = 0; i < 8; i++)
            *w++ = (unsigned char)((uint64_t)f[k] >> (8 * i));
    for (int i = 0; i < 4; i++)
        *w++ = (unsigned char)((uint32_t)deliveries >> (8 * i));
    *w++ = state;
    *w++ = key_hash != 0;
    size_t el = error ? strlen(error) : 0;
    *w++ = (unsigned char)el;
    *w++ = (unsigned char)(el >> 8);
    memcpy(w, error ? error : "", el);
    return (size_t)(w + el - start);
}

/* The older catalog's blob read back by the pure decoder, whole and cut at every length. */
static void test_saved_state_decoder(void)
{
    unsigned char blob[512];
    size_t len = legacy_entry(blob, 0, 5000, 100, 42, 1, 2, "a reason");
    len += legacy_entry(blob + len, 1, 9000, 0, 42, 1, 1, NULL);
    len += legacy_entry(blob + len, 2, 8000, 0, 0, 1, 1, NULL);
    int64_t next = 3;
    const unsigned char *r = blob;
    queue_saved_entry se[4];
    int n = 0, rc;
    int64_t after = -1;
    while ((rc = queue_saved_entry_next(&r, blob + len, next, after, &se[n])) == 1)
        after = se[n++].offset;
    ASSERT_EQ(rc, 0);
    ASSERT_EQ(n, 3);
    ASSERT(se[0].offset == 0 && se[0].state == 2 && se[0].deliveries == 1);
    ASSERT(se[0].error_len == 8 && !memcmp(se[0].error, "a reason", 8));
    ASSERT(se[1].offset == 1 && se[1].state == 1 && se[1].error == NULL);
    ASSERT(se[2].offset == 2 && se[2].state == 1 && se[2].at < se[1].at && !se[2].has_key);
    ASSERT(se[0].has_key && se[0].key_hash == se[1].key_hash);
    /* Every cut inside an entry is refused, never read past. */
    for (size_t cut = 0; cut < len; cut++) {
        unsigned char *part = malloc(cut ? cut : 1);
        memcpy(part, blob, cut);
        r = part;
        after = -1;
        int k = 0;
        while ((rc = queue_saved_entry_next(&r, part + cut, next, after, &se[k % 4])) == 1)
            after = se[k++ % 4].offset;
        ASSERT(r <= part + cut);
        ASSERT(rc == 0 || rc == -1);
        if (rc == 0)
            ASSERT(cut == 0 || (size_t)(r - part) == cut);
        free(part);
    }
    /* Offsets at or above next, or out of order, are refused. */
    r = blob;
    ASSERT_EQ(queue_saved_entry_next(&r, blob + len, 0, -1, &se[0]), -1);
    r = blob;
    ASSERT_EQ(queue_saved_entry_next(&r, blob + len, next, 5, &se[0]), -1);
}

/* Writes a queue group into the catalog as older versions kept it: on topic t (its id read
 * from the catalog), next 5, entries 0 waiting (due now, 2 deliveries, an error), 1 in flight
 * past its deadline, 3 in flight for an hour; 2 and 4 are done. */
static void legacy_rows(const char *dir)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/catalog.db", dir);
    sqlite3 *db;
    ASSERT_EQ(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT id FROM topics WHERE name = 't'", -1, &st, NULL),
              SQLITE_OK);
    ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
    int64_t tid = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    unsigned char blob[512];
    int64_t now = now_ms();
    size_t len = legacy_entry(blob, 0, now, now - 10, 0, 2, 2, "old failure");
    len += legacy_entry(blob + len, 1, now - 1000, 0, 0, 1, 1, NULL);
    len += legacy_entry(blob + len, 3, now + 3600000, 0, 0, 1, 1, NULL);
    ASSERT_EQ(sqlite3_exec(db,
                           "INSERT OR REPLACE INTO queues(name, topic, policy, created_ms) VALUES "
                           "('old', 't', 'ack.timeout.ms=60000\nmax.deliveries=5\n"
                           "backoff.initial.ms=0\n', 1234)",
                           NULL, NULL, NULL),
              SQLITE_OK);
    ASSERT_EQ(
        sqlite3_prepare_v2(db,
                           "INSERT OR REPLACE INTO queue_parts(grp, topic, partition, "
                           "topic_id, floor, next, pending) VALUES('old', 't', 0, ?, 0, 5, ?)",
                           -1, &st, NULL),
        SQLITE_OK);
    sqlite3_bind_int64(st, 1, tid);
    sqlite3_bind_blob(st, 2, blob, (int)len, SQLITE_TRANSIENT);
    ASSERT_EQ(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static int legacy_row_count(const char *dir)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/catalog.db", dir);
    sqlite3 *db;
    ASSERT_EQ(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    ASSERT_EQ(sqlite3_prepare_v2(db,
                                 "SELECT (SELECT count(*) FROM queues) + "
                                 "(SELECT count(*) FROM queue_parts)",
                                 -1, &st, NULL),
              SQLITE_OK);
    ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
    int n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

/* The migrated group: 0 and 1 are due now, 3 in flight, 5 and 6 unread; 2 and 4 never come. */
static void legacy_check(td_engine *e)
{
    td_queue_info info;
    ASSERT_OK(td_queue_describe(e, "old", &info));
    ASSERT_EQ(info.created_ms, 1234);
    ASSERT_EQ(info.policy.ack_timeout_ms, 60000);
    ASSERT_EQ(info.depth, 5);
    td_queue_msg *m;
    size_t n = receive(e, "old", "c", 10, &m);
    ASSERT_EQ(n, 4);
    ASSERT_EQ(vnum(&m[0]), 0);
    ASSERT_EQ(m[0].deliveries, 3);
    ASSERT_EQ(vnum(&m[1]), 1);
    ASSERT_EQ(m[1].deliveries, 2);
    ASSERT_EQ(vnum(&m[2]), 5);
    ASSERT_EQ(vnum(&m[3]), 6);
    td_queue_msgs_free(m, n);
}

/* An older data directory's queue groups are migrated at the first start: the state is the
 * same, the catalog rows are gone; doing it again (a crash before the rows were dropped) gives
 * the same state, not a double one. */
static void test_migrates_catalog_state(void)
{
    char *dir = test_tmpdir("queue-migrate");
    td_engine *e = test_engine_open(dir);
    ASSERT_OK(td_topic_create(e, "t", 1, NULL, 0));
    produce(e, "t", 0, NULL, 0, 7);
    td_engine_close(e);
    legacy_rows(dir);
    ASSERT_EQ(legacy_row_count(dir), 2);

    e = test_engine_open(dir);
    ASSERT_EQ(legacy_row_count(dir), 0);
    legacy_check(e);
    td_engine_close(e);

    /* Again, as if the first migration had written its records but not dropped the rows. */
    legacy_rows(dir);
    e = test_engine_open(dir);
    ASSERT_EQ(legacy_row_count(dir), 0);
    legacy_check(e);
    td_engine_close(e);

    /* Without rows: what was received since is in the state topic (in flight, not due). */
    e = test_engine_open(dir);
    td_queue_info info;
    ASSERT_OK(td_queue_describe(e, "old", &info));
    ASSERT_EQ(info.depth, 5);
    ASSERT_EQ(info.in_flight, 5);
    td_engine_close(e);
    test_rmrf(dir);
}

/* An ack appends one record to __queue_state, with 2 or 1000 entries pending; the state
 * replayed after a reopen has the same entries. */
static void test_ack_writes_one_record(void)
{
    char *dir = test_tmpdir("queue-o1");
    td_engine *e = test_engine_open(dir);
    ASSERT_OK(td_topic_create(e, "t", 1, NULL, 0));
    produce(e, "t", 0, NULL, 0, 1002);
    td_queue_policy p = policy(
        (const char *[]){"max.in.flight", "2000", "max.in.flight.per.consumer", "2000", NULL});
    ASSERT_OK(td_queue_create(e, "s", "t", &p));
    size_t sizes[] = {2, 1000};
    for (int round = 0; round < 2; round++) {
        td_queue_msg *m;
        size_t n = receive(e, "s", "c", sizes[round], &m);
        ASSERT_EQ(n, sizes[round]);
        int64_t before, after;
        ack1(e, "s", m[0].id, 0); /* answered once durable: the deliveries' records too */
        ASSERT_OK(td_offset_for(e, "__queue_state", 0, TD_OFFSET_LATEST, &before));
        ack1(e, "s", m[n / 2].id, 0);
        ASSERT_OK(td_offset_for(e, "__queue_state", 0, TD_OFFSET_LATEST, &after));
        ASSERT_EQ(after - before, 1);
        td_queue_msgs_free(m, n);
    }
    td_engine_close(e);
    e = test_engine_open(dir);
    td_queue_info info;
    ASSERT_OK(td_queue_describe(e, "s", &info));
    ASSERT_EQ(info.depth, 998);
    ASSERT_EQ(info.in_flight, 998);
    td_engine_close(e);
    test_rmrf(dir);
}

/* The circuit breaker (docs/queues.md#circuit-breaker): its policy keys, the failure that opens
 * it, nothing delivered while open, failures then not counted (max.deliveries 1 would have
 * dead-lettered them), the trials of half-open, and closing. */
static void test_circuit_breaker(void)
{
    char *dir = test_tmpdir("queue-circuit");
    td_engine *e = test_engine_open(dir);
    ASSERT_OK(td_topic_create(e, "t", 1, NULL, 0));
    produce(e, "t", 0, NULL, 0, 10);
    td_queue_policy p = policy((const char *[]){
        "max.deliveries", "1", "backoff.initial.ms", "0", "backoff.max.ms", "0",
        "circuit.failure.rate", "100", "circuit.min.calls", "2", "circuit.open.ms", "200",
        "circuit.half.open.trials", "1", NULL});
    char v[32];
    ASSERT_OK(td_queue_policy_get(&p, "circuit.open.ms", v, sizeof(v)));
    ASSERT_STR_EQ(v, "200");
    td_queue_policy bad = p;
    ASSERT_EQ(td_queue_policy_apply(&bad, &(td_config_entry){"circuit.failure.rate", "101"}, 1),
              TD_ECONFIG);
    ASSERT_OK(td_queue_create(e, "g", "t", &p));
    td_queue_msg *m;
    ASSERT_EQ(receive(e, "g", "c", 3, &m), 3);
    /* An ack, then two failures: 2 of 3 is not 100 %; the third failure of 4... */
    ack1(e, "g", m[0].id, 0);
    const char *ids[2] = {m[1].id, m[2].id};
    int res[2];
    ASSERT_OK(td_queue_nack(e, "g", ids, 1, -1, "down", res));
    td_queue_info info;
    ASSERT_OK(td_queue_describe(e, "g", &info));
    ASSERT_EQ(info.circuit_state, TD_CIRCUIT_CLOSED);
    ASSERT_EQ(info.circuit_calls, 2);
    ASSERT_EQ(info.circuit_failures, 1);
    ASSERT_EQ(info.dead_lettered + info.waiting, 1); /* max.deliveries 1: that one is dead */
    td_queue_msgs_free(m, 3);
    /* ...so the window restarts for a clean test: a new group on the same topic. */
    ASSERT_OK(td_queue_delete(e, "g"));
    ASSERT_OK(td_queue_create(e, "g2", "t", &p));
    ASSERT_EQ(receive(e, "g2", "c", 3, &m), 3);
    /* The first failure (1 of 1, under min.calls) counts: max.deliveries 1 kills it; the
     * second opens the circuit (2 of 2) and is the outage's: not counted. */
    const char *two[2] = {m[0].id, m[1].id};
    ASSERT_OK(td_queue_nack(e, "g2", two, 2, -1, "down", res));
    ASSERT_OK(td_queue_describe(e, "g2", &info));
    ASSERT_EQ(info.circuit_state, TD_CIRCUIT_OPEN);
    ASSERT_EQ(info.circuit_opened, 1);
    ASSERT(info.circuit_open_until_ms - info.circuit_since_ms == 200);
    int64_t failed_before = info.dead_lettered + info.waiting; /* dead ones wait for the copy */
    ASSERT_EQ(failed_before, 2);
    /* Open: nothing delivered; the one still in flight fails uncounted. */
    td_queue_msg *none;
    ASSERT_EQ(receive(e, "g2", "c", 5, &none), 0);
    td_queue_msgs_free(none, 0);
    const char *third = m[2].id;
    ASSERT_OK(td_queue_nack(e, "g2", &third, 1, -1, "down", res));
    ASSERT_OK(td_queue_describe(e, "g2", &info));
    ASSERT_EQ(info.dead_lettered + info.waiting, 3);
    td_queue_msgs_free(m, 3);
    /* Half-open after 200 ms: one trial; acked, it closes. */
    usleep(250000);
    ASSERT_EQ(receive(e, "g2", "c", 5, &m), 1);
    ASSERT_OK(td_queue_describe(e, "g2", &info));
    ASSERT_EQ(info.circuit_state, TD_CIRCUIT_HALF_OPEN);
    ASSERT_EQ(receive(e, "g2", "c", 5, &none), 0);
    td_queue_msgs_free(none, 0);
    ack1(e, "g2", m[0].id, 0);
    td_queue_msgs_free(m, 1);
    ASSERT_OK(td_queue_describe(e, "g2", &info));
    ASSERT_EQ(info.circuit_state, TD_CIRCUIT_CLOSED);
    ASSERT_EQ(info.circuit_calls, 0);
    /* The other forgiven one and the 7 never delivered; only the first failure died. */
    ASSERT_EQ(receive(e, "g2", "c", 20, &m), 8);
    td_queue_msgs_free(m, 8);
    for (int i = 0; i < 100; i++) {
        ASSERT_OK(td_queue_describe(e, "g2", &info));
        if (info.dead_lettered == 1)
            break;
        usleep(20000);
    }
    ASSERT_EQ(info.dead_lettered, 1);
    td_engine_close(e);
    test_rmrf(dir);
}

TEST_MAIN(TEST(test_policy_and_ids), TEST(test_circuit_breaker), TEST(test_deliver_ack_limits), TEST(test_nack_timeout_backoff),
          TEST(test_dead_letters), TEST(test_key_ordering), TEST(test_state_survives_reopen),
          TEST(test_wildcard_group), TEST(test_redrive), TEST(test_saved_state_decoder),
          TEST(test_migrates_catalog_state), TEST(test_ack_writes_one_record))
