/*
 * test_health.c: health events (broker/health.h) on an embedded engine: the system topics made
 * at open and closed to clients, events appended in order with their envelope and header, the
 * per-type rate limit with its `suppressed` count, emitters on many threads at once, what the
 * close drains, and the checks of the health thread (disk usage, offline partitions).
 */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>

#include "../test.h"
#include "broker/broker.h"
#include "broker/engine_int.h"
#include "broker/health.h"
#include "storage/part_int.h"

static td_engine *open_health(const char *dir, int64_t rate, int64_t disk_percent)
{
    td_options o;
    td_options_init(&o);
    o.no_background = 1;
    o.health_events = 1;
    o.health_events_rate = rate;
    o.health_check_interval_ms = 50;
    o.health_disk_percent = disk_percent;
    td_engine *e;
    ASSERT_OK(td_engine_open(dir, &o, &e));
    return e;
}

/* The values of topic's events (parsed; the caller frees them), at least `want` of them
 * (waiting up to 10 s for the health thread), and their count. */
static size_t read_events(td_engine *e, const char *topic, size_t want, json_t **out, size_t cap)
{
    size_t n = 0;
    for (int tries = 0; tries < 1000; tries++) {
        n = 0;
        td_iter *it;
        ASSERT_OK(td_iter_open(e, topic, 0, TD_OFFSET_EARLIEST, &it));
        td_event ev;
        while (n < cap && td_iter_next(it, &ev) == 1) {
            ASSERT_EQ(ev.header_count, 1);
            ASSERT_MEM_EQ(ev.headers[0].key, "tidings-health-type", 19);
            json_error_t err;
            out[n] = json_loadb(ev.value, ev.value_len, 0, &err);
            ASSERT(out[n] != NULL);
            const char *type = json_string_value(json_object_get(out[n], "type"));
            ASSERT(type && strlen(type) == ev.headers[0].value_len &&
                   !memcmp(type, ev.headers[0].value, ev.headers[0].value_len));
            n++;
        }
        td_iter_close(it);
        if (n >= want)
            return n;
        for (size_t i = 0; i < n; i++)
            json_decref(out[i]);
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    TEST_FAIL_("%zu events of %s, not %zu", n, topic, want);
    return 0;
}

static void free_all(json_t **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        json_decref(v[i]);
}

static void test_topics_made_and_closed_to_clients(void)
{
    char *dir = test_tmpdir("health");
    td_engine *e = open_health(dir, 10, 100);
    static const char *const names[] = {"$sys.groups",  "$sys.lag",     "$sys.queues",
                                        "$sys.storage", "$sys.clients", "$sys.cluster"};
    td_topic_info info;
    for (size_t i = 0; i < TD_ARRAY_LEN(names); i++) {
        ASSERT_OK(td_topic_describe(e, names[i], &info));
        ASSERT(info.system && !info.internal);
        ASSERT_EQ(info.partitions, 1);
    }
    /* Listed only with the internal ones. */
    td_topic_info *v;
    size_t n;
    ASSERT_OK(td_topic_list(e, &v, &n));
    ASSERT_EQ(n, 0);
    free(v);
    ASSERT_OK(td_topic_list_all(e, &v, &n));
    size_t sys = 0;
    for (size_t i = 0; i < n; i++)
        sys += v[i].system;
    ASSERT_EQ(sys, TD_ARRAY_LEN(names));
    free(v);
    /* Clients cannot write, delete or make them. */
    td_event ev = {.value = "x", .value_len = 1, .partition = TD_PARTITION_ANY};
    ASSERT_EQ(td_produce(e, "$sys.groups", &ev, 1, NULL), TD_ENAME);
    ASSERT_EQ(td_topic_delete(e, "$sys.groups"), TD_ENAME);
    ASSERT_EQ(td_topic_create(e, "$sys.mine", 1, NULL, 0), TD_ENAME);
    int64_t after;
    ASSERT_EQ(td_delete_records(e, "$sys.groups", 0, 0, &after), TD_ENAME);
    td_engine_close(e);
    /* Off: nothing made, nothing emitted. */
    td_options o;
    td_options_init(&o);
    o.no_background = 1;
    char *dir2 = test_tmpdir("health-off");
    ASSERT_OK(td_engine_open(dir2, &o, &e));
    ASSERT_EQ(td_topic_describe(e, "$sys.groups", &info), TD_ENOTFOUND);
    ASSERT(!health_on(e));
    health_emit(e, HEALTH_GROUP_MEMBER_JOINED, "g", NULL, 0); /* a no-op */
    td_engine_close(e);
    test_rmrf(dir);
    test_rmrf(dir2);
}

static void test_events_rate_limit_and_suppressed(void)
{
    char *dir = test_tmpdir("health-rate");
    td_engine *e = open_health(dir, 3, 100);
    for (int i = 0; i < 10; i++) {
        health_field f[] = {HF_STR("group", "g"), HF_INT("n", i), HF_STR("none", NULL)};
        health_emit(e, HEALTH_GROUP_MEMBER_JOINED, "g", f, 3);
    }
    /* Another type has its own bucket. */
    health_field q[] = {HF_STR("group", "q")};
    health_emit(e, HEALTH_GROUP_REBALANCE_STARTED, "q", q, 1);
    json_t *v[16];
    size_t n = read_events(e, "$sys.groups", 4, v, 16);
    ASSERT_EQ(n, 4);
    for (size_t i = 0; i < 3; i++) {
        ASSERT_STR_EQ(json_string_value(json_object_get(v[i], "type")), "group.member_joined");
        ASSERT_EQ(json_integer_value(json_object_get(v[i], "n")), (json_int_t)i);
        ASSERT_EQ(json_integer_value(json_object_get(v[i], "version")), 1);
        ASSERT(json_is_null(json_object_get(v[i], "none")));
        ASSERT(json_object_get(v[i], "suppressed") == NULL);
        const char *t = json_string_value(json_object_get(v[i], "time"));
        ASSERT(t && strlen(t) == 24 && t[10] == 'T' && t[23] == 'Z');
    }
    ASSERT_STR_EQ(json_string_value(json_object_get(v[3], "type")), "group.rebalance_started");
    free_all(v, n);
    /* After a refill, the next event of the type says the 7 dropped. */
    struct timespec ts = {0, 400 * 1000000L};
    nanosleep(&ts, NULL);
    health_field f[] = {HF_STR("group", "g"), HF_INT("n", 10)};
    health_emit(e, HEALTH_GROUP_MEMBER_JOINED, "g", f, 2);
    n = read_events(e, "$sys.groups", 5, v, 16);
    ASSERT_EQ(json_integer_value(json_object_get(v[4], "suppressed")), 7);
    ASSERT_EQ(json_integer_value(json_object_get(v[4], "n")), 10);
    free_all(v, n);
    td_engine_close(e);
    test_rmrf(dir);
}

typedef struct emitter {
    td_engine *e;
    int id;
} emitter;

static void *emit_main(void *arg)
{
    emitter *m = arg;
    for (int i = 0; i < 200; i++) {
        /* Not UTF-8 (a Redis group's name may be any bytes): written as '?'. */
        char name[16] = "q\xff";
        health_field f[] = {HF_STR("group", name), HF_INT("thread", m->id), HF_INT("i", i)};
        health_emit(m->e, HEALTH_QUEUE_DEAD_LETTERED, name, f, 3);
    }
    return NULL;
}

/* Many threads emit at once, more than the rate lets through: every event appended is whole
 * and in its thread's order, and the close appends what is still queued. */
static void test_concurrent_emitters_and_close(void)
{
    char *dir = test_tmpdir("health-mt");
    td_engine *e = open_health(dir, 500, 100);
    pthread_t th[4];
    emitter em[4];
    for (int i = 0; i < 4; i++) {
        em[i] = (emitter){e, i};
        ASSERT_EQ(pthread_create(&th[i], NULL, emit_main, &em[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    td_engine_close(e); /* drains the queue */
    e = open_health(dir, 500, 100);
    static json_t *v[1000];
    size_t n = read_events(e, "$sys.queues", 1, v, 1000);
    ASSERT_GE(n, 500); /* the burst at least; no more than were emitted */
    ASSERT_LE(n, 800);
    int last[4] = {-1, -1, -1, -1};
    for (size_t k = 0; k < n; k++) {
        ASSERT_STR_EQ(json_string_value(json_object_get(v[k], "group")), "q?");
        int t = (int)json_integer_value(json_object_get(v[k], "thread"));
        int i = (int)json_integer_value(json_object_get(v[k], "i"));
        ASSERT(t >= 0 && t < 4 && i > last[t]);
        last[t] = i;
    }
    free_all(v, n);
    td_engine_close(e);
    test_rmrf(dir);
}

/* The health thread's checks: a disk over 1 % is said once (not at every pass), and a
 * partition that goes offline once. */
static void test_checks(void)
{
    char *dir = test_tmpdir("health-checks");
    td_engine *e = open_health(dir, 10, 1);
    ASSERT_OK(td_topic_create(e, "t", 2, NULL, 0));
    json_t *v[8];
    size_t n = read_events(e, "$sys.storage", 1, v, 8);
    ASSERT_STR_EQ(json_string_value(json_object_get(v[0], "type")), "storage.disk_usage_high");
    ASSERT_EQ(json_integer_value(json_object_get(v[0], "threshold_percent")), 1);
    ASSERT(json_integer_value(json_object_get(v[0], "total_bytes")) > 0);
    free_all(v, n);
    /* Partition t/1 goes offline: said at the next pass, and only once. */
    td_topic_ref *ref;
    ASSERT_OK(broker_topic_acquire(e, "t", &ref));
    td_part *p = broker_topic_part(ref, 1);
    pthread_mutex_lock(&p->mu);
    go_offline(p, -EIO, "a test took it offline");
    pthread_mutex_unlock(&p->mu);
    broker_topic_release(ref);
    n = read_events(e, "$sys.storage", 2, v, 8);
    ASSERT_STR_EQ(json_string_value(json_object_get(v[1], "type")), "storage.partition_offline");
    ASSERT_STR_EQ(json_string_value(json_object_get(v[1], "topic")), "t");
    ASSERT_EQ(json_integer_value(json_object_get(v[1], "partition")), 1);
    ASSERT_CONTAINS(json_string_value(json_object_get(v[1], "reason")), "a test took it");
    free_all(v, n);
    struct timespec ts = {0, 300 * 1000000L}; /* six passes */
    nanosleep(&ts, NULL);
    n = read_events(e, "$sys.storage", 2, v, 8);
    ASSERT_EQ(n, 2);
    free_all(v, n);
    td_engine_close(e);
    test_rmrf(dir);
}

TEST_MAIN(TEST(test_topics_made_and_closed_to_clients), TEST(test_events_rate_limit_and_suppressed),
          TEST(test_concurrent_emitters_and_close), TEST(test_checks))
