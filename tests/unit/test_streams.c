/* Unit tests for entity streams through the embedded API (docs/event-sourcing.md):
 * td_key_version, td_iter_open_key and td_produce_expect, including concurrent writers on one
 * entity (optimistic concurrency: exactly one wins each round, no lost update). */
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "tidings.h"
#include "test.h"

static const td_config_entry keyed[] = {{"key.index", "true"}, {"segment.bytes", "4096"}};

static td_event ev_of(const char *key, const char *value)
{
    return (td_event){.key = key, .key_len = strlen(key), .value = value,
                      .value_len = strlen(value), .partition = TD_PARTITION_ANY};
}

static void test_versions_and_key_iterator(void)
{
    char *dir = test_tmpdir("streams");
    td_engine *e = test_engine_open(dir);
    ASSERT_OK(td_topic_create(e, "orders", 3, keyed, 2));
    int64_t v;
    ASSERT_OK(td_key_version(e, "orders", "o-1", 3, TD_PARTITION_ANY, &v));
    ASSERT_EQ(v, TD_VERSION_NO_STREAM);
    /* 100 events of o-1 among 3000 of other keys, produced 31 at a time (an fsync a call):
     * each o-1 event shares its batch with events of other keys. */
    int64_t mine[100];
    int nmine = 0;
    static char key[31][32], val[31][32];
    for (int b = 0; b < 100; b++) {
        td_event evs[31];
        td_produce_result rs[31];
        for (int j = 0; j < 31; j++) {
            int i = b * 31 + j;
            if (j == 0)
                snprintf(key[j], sizeof(key[j]), "o-1");
            else
                snprintf(key[j], sizeof(key[j]), "o-%d", 2 + i % 50);
            snprintf(val[j], sizeof(val[j]), "%d", i);
            evs[j] = ev_of(key[j], val[j]);
        }
        ASSERT_OK(td_produce(e, "orders", evs, 31, rs));
        mine[nmine++] = rs[0].offset;
    }
    ASSERT_EQ(nmine, 100);
    ASSERT_OK(td_key_version(e, "orders", "o-1", 3, TD_PARTITION_ANY, &v));
    ASSERT_EQ(v, mine[99]);
    td_iter *it;
    ASSERT_OK(td_iter_open_key(e, "orders", "o-1", 3, TD_PARTITION_ANY, TD_OFFSET_EARLIEST, &it));
    td_event got;
    for (int i = 0; i < 100; i++) {
        ASSERT_EQ(td_iter_next(it, &got), 1);
        ASSERT_EQ(got.offset, mine[i]);
        ASSERT_EQ(got.key_len, 3);
        ASSERT_MEM_EQ(got.key, "o-1", 3);
        ASSERT_EQ(got.partition, td_partition_for_key("o-1", 3, 3));
    }
    ASSERT_EQ(td_iter_next(it, &got), 0);
    ASSERT_EQ(td_iter_position(it), mine[99] + 1);
    /* A new event is seen by the same iterator. */
    td_event ev = ev_of("o-1", "late");
    td_produce_result r;
    ASSERT_OK(td_produce(e, "orders", &ev, 1, &r));
    ASSERT_EQ(td_iter_next(it, &got), 1);
    ASSERT_EQ(got.offset, r.offset);
    ASSERT_MEM_EQ(got.value, "late", 4);
    td_iter_close(it);
    /* From a version in the middle. */
    ASSERT_OK(td_iter_open_key(e, "orders", "o-1", 3, TD_PARTITION_ANY, mine[50], &it));
    ASSERT_EQ(td_iter_next(it, &got), 1);
    ASSERT_EQ(got.offset, mine[50]);
    td_iter_close(it);
    /* A topic without key.index says so. */
    ASSERT_OK(td_topic_create(e, "plain", 1, NULL, 0));
    ASSERT_EQ(td_iter_open_key(e, "plain", "k", 1, TD_PARTITION_ANY, 0, &it), TD_EUNSUPPORTED);
    ASSERT_EQ(td_key_version(e, "plain", "k", 1, TD_PARTITION_ANY, &v), TD_EUNSUPPORTED);
    int64_t x = TD_VERSION_NO_STREAM;
    ev = ev_of("k", "v");
    ASSERT_EQ(td_produce_expect(e, "plain", &ev, &x, 1, NULL, NULL), TD_EUNSUPPORTED);
    x = TD_VERSION_ANY; /* no condition: a plain produce */
    ASSERT_OK(td_produce_expect(e, "plain", &ev, &x, 1, NULL, NULL));
    /* Survives a restart (the setting is stored with the topic). */
    td_engine_close(e);
    e = test_engine_open(dir);
    ASSERT_OK(td_key_version(e, "orders", "o-1", 3, TD_PARTITION_ANY, &v));
    ASSERT_EQ(v, r.offset);
    td_engine_close(e);
    test_rmrf(dir);
}

static void test_expected_versions_batch(void)
{
    char *dir = test_tmpdir("streams");
    td_engine *e = test_engine_open(dir);
    ASSERT_OK(td_topic_create(e, "acct", 1, keyed, 2));
    td_event evs[3] = {ev_of("a", "1"), ev_of("b", "1"), ev_of("a", "2")};
    int64_t x[3] = {TD_VERSION_NO_STREAM, TD_VERSION_NO_STREAM, TD_VERSION_ANY};
    td_produce_result r[3];
    td_version_conflict c;
    ASSERT_OK(td_produce_expect(e, "acct", evs, x, 3, r, &c));
    ASSERT_EQ(r[2].offset, 2);
    /* a is at 2 now; b at 1. Expecting a at 0 fails, and b's event is not written either. */
    td_event evs2[2] = {ev_of("b", "2"), ev_of("a", "3")};
    int64_t x2[2] = {1, 0};
    ASSERT_EQ(td_produce_expect(e, "acct", evs2, x2, 2, r, &c), TD_EVERSION);
    ASSERT_EQ(c.index, 1);
    ASSERT_EQ(c.current, 2);
    ASSERT_EQ(c.partition, 0);
    ASSERT_CONTAINS(td_last_error(), "expected version 0");
    int64_t v;
    ASSERT_OK(td_key_version(e, "acct", "b", 1, 0, &v));
    ASSERT_EQ(v, 1);
    x2[1] = 2;
    ASSERT_OK(td_produce_expect(e, "acct", evs2, x2, 2, r, &c));
    ASSERT_OK(td_key_version(e, "acct", "a", 1, 0, &v));
    ASSERT_EQ(v, r[1].offset);
    /* exists; and a condition without a key */
    int64_t ex = TD_VERSION_EXISTS;
    td_event nk = ev_of("zz", "v");
    ASSERT_EQ(td_produce_expect(e, "acct", &nk, &ex, 1, r, &c), TD_EVERSION);
    ASSERT_EQ(c.current, TD_VERSION_NO_STREAM);
    nk.key = NULL;
    nk.key_len = 0;
    ASSERT_EQ(td_produce_expect(e, "acct", &nk, &ex, 1, r, &c), TD_EINVAL);
    td_engine_close(e);
    test_rmrf(dir);
}

/* Table reads (td_get_key) on key.index topics come from that index: compacted or not. */
static void test_table_reads_from_the_key_index(void)
{
    char *dir = test_tmpdir("streams");
    td_engine *e = test_engine_open(dir);
    const td_config_entry compacted[] = {{"key.index", "true"}, {"cleanup.policy", "compact"}};
    ASSERT_OK(td_topic_create(e, "plainkeys", 2, keyed, 2));
    ASSERT_OK(td_topic_create(e, "table", 2, compacted, 2));
    const char *topics[] = {"plainkeys", "table"};
    for (int t = 0; t < 2; t++) {
        td_produce_result r;
        td_event evs[3] = {ev_of("c-1", "a"), ev_of("c-2", "b"), ev_of("c-1", "c")};
        ASSERT_OK(td_produce(e, topics[t], evs, 3, NULL));
        td_event *got;
        ASSERT_OK(td_get_key(e, topics[t], "c-1", 3, -1, &got));
        ASSERT_MEM_EQ(got->value, "c", 1);
        td_event_free(got);
        td_event tomb = {.key = "c-2", .key_len = 3, .partition = TD_PARTITION_ANY};
        ASSERT_OK(td_produce(e, topics[t], &tomb, 1, &r));
        ASSERT_EQ(td_get_key(e, topics[t], "c-2", 3, -1, &got), TD_ENOTFOUND);
        ASSERT_EQ(td_get_key(e, topics[t], "none", 4, -1, &got), TD_ENOTFOUND);
    }
    td_engine_close(e);
    test_rmrf(dir);
}

/* Concurrent commands on one entity, in rounds: every writer with a command left reads the
 * version, then (all at once) appends expecting it; exactly one wins each round, the others get
 * the winner's version and retry their command in the next round. Each event records the version
 * its writer expected, so the log shows whether any update was lost. */
#define WRITERS 4
#define COMMANDS 250

typedef struct shared {
    td_engine *e;
    pthread_barrier_t bar;
    int accepted; /* atomic */
    int winners[WRITERS * COMMANDS + 1];
    int rounds, bad;
} shared;

typedef struct writer {
    shared *sh;
    int id;
    int conflicts;
} writer;

static void *write_loop(void *arg)
{
    writer *w = arg;
    shared *sh = w->sh;
    int next = 0;
    for (int round = 0; round <= WRITERS * COMMANDS; round++) {
        pthread_barrier_wait(&sh->bar);
        int64_t v = 0;
        bool mine = next < COMMANDS;
        if (mine && td_key_version(sh->e, "bank", "acct-1", 6, TD_PARTITION_ANY, &v) != 0)
            __atomic_add_fetch(&sh->bad, 1, __ATOMIC_RELAXED);
        pthread_barrier_wait(&sh->bar); /* every reader has its version: now they all append */
        if (mine) {
            char val[64];
            snprintf(val, sizeof(val), "%d:%d:%" PRId64, w->id, next, v);
            td_event ev = ev_of("acct-1", val);
            td_produce_result r;
            td_version_conflict c;
            int rc = td_produce_expect(sh->e, "bank", &ev, &v, 1, &r, &c);
            if (rc == 0) {
                next++;
                __atomic_add_fetch(&sh->winners[round], 1, __ATOMIC_RELAXED);
                __atomic_add_fetch(&sh->accepted, 1, __ATOMIC_RELAXED);
            } else if (rc == TD_EVERSION && c.current > v) {
                w->conflicts++; /* retried next round */
            } else {
                __atomic_add_fetch(&sh->bad, 1, __ATOMIC_RELAXED);
            }
        }
        pthread_barrier_wait(&sh->bar);
        if (__atomic_load_n(&sh->accepted, __ATOMIC_RELAXED) == WRITERS * COMMANDS) {
            if (w->id == 0)
                sh->rounds = round + 1;
            break;
        }
    }
    return NULL;
}

static void test_concurrent_writers_lose_no_update(void)
{
    char *dir = test_tmpdir("streams");
    td_engine *e = test_engine_open(dir);
    const td_config_entry cfg[] = {{"key.index", "true"}, {"fsync", "none"}};
    ASSERT_OK(td_topic_create(e, "bank", 2, cfg, 2));
    static shared sh;
    memset(&sh, 0, sizeof(sh));
    sh.e = e;
    ASSERT_OK(pthread_barrier_init(&sh.bar, NULL, WRITERS));
    writer w[WRITERS];
    pthread_t th[WRITERS];
    for (int i = 0; i < WRITERS; i++) {
        w[i] = (writer){&sh, i, 0};
        ASSERT_OK(pthread_create(&th[i], NULL, write_loop, &w[i]));
    }
    int conflicts = 0;
    for (int i = 0; i < WRITERS; i++) {
        pthread_join(th[i], NULL);
        conflicts += w[i].conflicts;
    }
    pthread_barrier_destroy(&sh.bar);
    ASSERT_EQ(sh.bad, 0);
    ASSERT_EQ(sh.accepted, WRITERS * COMMANDS);
    ASSERT_EQ(sh.rounds, WRITERS * COMMANDS);
    for (int r = 0; r < sh.rounds; r++)
        ASSERT_EQ(sh.winners[r], 1); /* exactly one winner each round */
    ASSERT(conflicts >= WRITERS * COMMANDS / 2); /* the losers retried, and won later */
    /* The stream: WRITERS * COMMANDS events, each expecting the one before it. */
    td_iter *it;
    ASSERT_OK(td_iter_open_key(e, "bank", "acct-1", 6, TD_PARTITION_ANY, 0, &it));
    td_event ev;
    int64_t prev = TD_VERSION_NO_STREAM;
    int n = 0, per[WRITERS] = {0};
    while (td_iter_next(it, &ev) == 1) {
        char val[64];
        ASSERT(ev.value_len < sizeof(val));
        memcpy(val, ev.value, ev.value_len);
        val[ev.value_len] = 0;
        int id, cmd;
        long long expected;
        ASSERT_EQ(sscanf(val, "%d:%d:%lld", &id, &cmd, &expected), 3);
        ASSERT_EQ(expected, prev); /* it saw the event before it: nothing lost */
        ASSERT_EQ(cmd, per[id]++); /* each writer's commands in order, once */
        prev = ev.offset;
        n++;
    }
    ASSERT_EQ(n, WRITERS * COMMANDS);
    td_iter_close(it);
    fprintf(stderr, "%d commands, %d conflicts retried\n", n, conflicts);
    td_engine_close(e);
    test_rmrf(dir);
}

TEST_MAIN(TEST(test_versions_and_key_iterator), TEST(test_expected_versions_batch),
          TEST(test_table_reads_from_the_key_index),
          TEST(test_concurrent_writers_lose_no_update))
