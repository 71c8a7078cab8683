/*
 * test_state.c: the internal state topics (broker/state.h): Kafka's partitioning of groups,
 * replay of offsets and tombstones, producer-id blocks across reopens, records that are not
 * understood, and the protection of the topics against client changes.
 */
#include <pthread.h>

#include "../test.h"
#include "broker/broker.h"
#include "broker/engine_int.h"
#include "broker/state.h"

static td_engine *open_with(const char *dir, int32_t offsets_partitions)
{
    td_options o;
    td_options_init(&o);
    o.no_background = 1;
    o.offsets_topic_partitions = offsets_partitions;
    td_engine *e;
    ASSERT_OK(td_engine_open(dir, &o, &e));
    return e;
}

static int64_t count_records(td_engine *e, const char *topic, int32_t partition)
{
    td_iter *it;
    ASSERT_OK(td_iter_open(e, topic, partition, TD_OFFSET_EARLIEST, &it));
    td_event ev;
    int64_t n = 0;
    while (td_iter_next(it, &ev) == 1)
        n++;
    td_iter_close(it);
    return n;
}

/* Kafka's partitionFor: abs(String.hashCode) % n, with UTF-16 units and Utils.abs. The values
 * are Java's (hashCode of "my-group" is -1906497762; "polygenelubricants" hashes to
 * Integer.MIN_VALUE, which Utils.abs makes 0). */
static void test_partition_for_is_kafkas(void)
{
    char *dir = test_tmpdir("state-part");
    td_engine *e = open_with(dir, 50);
    ASSERT_EQ(state_partitions(e, STATE_OFFSETS), 50);
    ASSERT_EQ(state_partition_for(e, STATE_OFFSETS, "my-group"), 12);
    ASSERT_EQ(state_partition_for(e, STATE_OFFSETS, "console-consumer-12345"), 6);
    ASSERT_EQ(state_partition_for(e, STATE_OFFSETS, "\xc3\xa9-grp"), 17); /* é */
    ASSERT_EQ(state_partition_for(e, STATE_OFFSETS, "g\xf0\x9f\x98\x80x"),
              12); /* a surrogate pair */
    ASSERT_EQ(state_partition_for(e, STATE_OFFSETS, "polygenelubricants"), 0);
    /* The records go there. */
    ASSERT_OK(td_topic_create(e, "t", 1, NULL, 0));
    td_offset_commit oc = {.topic = "t", .partition = 0, .offset = 4, .leader_epoch = -1};
    ASSERT_OK(td_group_commit(e, "my-group", &oc, 1, 0));
    ASSERT_EQ(count_records(e, STATE_OFFSETS_TOPIC, 12), 1);
    ASSERT_EQ(count_records(e, STATE_OFFSETS_TOPIC, 0), 0);
    td_engine_close(e);
    /* An existing topic keeps its partition count whatever the setting says now. */
    e = open_with(dir, 3);
    ASSERT_EQ(state_partitions(e, STATE_OFFSETS), 50);
    int64_t off;
    ASSERT_OK(td_group_committed(e, "my-group", "t", 0, &off));
    ASSERT_EQ(off, 4);
    td_engine_close(e);
    test_rmrf(dir);
}

/* The latest record of a key wins, tombstones delete, across reopens; records of kinds this
 * version does not know, and malformed ones, are skipped. */
static void test_replay(void)
{
    char *dir = test_tmpdir("state-replay");
    td_engine *e = open_with(dir, 0);
    ASSERT_OK(td_topic_create(e, "a", 2, NULL, 0));
    td_offset_commit v[] = {{"a", 0, 10, 2, "meta"}, {"a", 1, 20, -1, NULL}};
    ASSERT_OK(td_group_commit(e, "g", v, 2, 1000));
    v[0].offset = 11;
    ASSERT_OK(td_group_commit(e, "g", v, 1, 2000));
    ASSERT_OK(td_group_commit(e, "h", v + 1, 1, 3000));
    ASSERT_OK(td_group_offset_delete(e, "g", "a", 1));
    ASSERT_OK(td_group_delete(e, "h"));
    /* A key kind of a later version, a malformed key, a malformed value. */
    static const uint8_t later[] = {0, 9, 1, 2}, bad_key[] = {0, 1, 0, 50, 'x'},
                         bad_val[] = {0, 3, 0};
    uint8_t good_key[64];
    td_buf k;
    td_buf_init(&k);
    ASSERT_OK(state_put16(&k, 1) | state_put_str(&k, "g") | state_put_str(&k, "a") |
              state_put32(&k, 0));
    memcpy(good_key, k.p, k.len);
    td_event evs[] = {
        {.key = later, .key_len = sizeof(later), .value = "v", .value_len = 1},
        {.key = bad_key, .key_len = sizeof(bad_key), .value = "v", .value_len = 1},
        {.key = good_key, .key_len = k.len, .value = bad_val, .value_len = sizeof(bad_val)}};
    int64_t end;
    ASSERT_OK(state_append(e, STATE_OFFSETS, 0, evs, 3, &end));
    ASSERT_OK(state_wait(e, STATE_OFFSETS, 0, end));
    td_buf_free(&k);
    td_engine_close(e);

    e = open_with(dir, 0);
    td_committed_offset *c;
    size_t n;
    ASSERT_OK(td_group_offsets(e, "g", &c, &n));
    ASSERT_EQ(n, 1);
    ASSERT_EQ(c[0].offset, 11);
    ASSERT_EQ(c[0].leader_epoch, 2);
    ASSERT_STR_EQ(c[0].metadata, "meta");
    ASSERT_EQ(c[0].commit_ms, 2000);
    free(c);
    td_group_info *gi;
    ASSERT_OK(td_group_list(e, &gi, &n));
    ASSERT_EQ(n, 1); /* h is gone */
    ASSERT_STR_EQ(gi[0].name, "g");
    free(gi);
    /* Every change was one record: 2 + 1 + 1 commits, 2 tombstones, and the 3 written above. */
    ASSERT_EQ(count_records(e, STATE_OFFSETS_TOPIC, 0), 9);
    td_engine_close(e);
    test_rmrf(dir);
}

/* Offset expiry (offsets.retention.minutes) writes tombstones for the offsets committed before
 * the limit only, and a reopen does not bring them back. */
static void test_expiry_tombstones(void)
{
    char *dir = test_tmpdir("state-expire");
    td_engine *e = open_with(dir, 0);
    ASSERT_OK(td_topic_create(e, "t", 3, NULL, 0));
    td_offset_commit v[] = {{"t", 0, 1, -1, NULL}, {"t", 1, 2, -1, NULL}, {"t", 2, 3, -1, NULL}};
    ASSERT_OK(td_group_commit(e, "g", v, 2, 1000));
    ASSERT_OK(td_group_commit(e, "g", v + 2, 1, 5000));
    size_t removed = 0;
    ASSERT_OK(broker_group_expire(e, "g", 2000, &removed));
    ASSERT_EQ(removed, 2);
    ASSERT_EQ(count_records(e, STATE_OFFSETS_TOPIC, 0), 5); /* 3 commits, 2 tombstones */
    td_engine_close(e);
    e = open_with(dir, 0);
    td_committed_offset *c;
    size_t n;
    ASSERT_OK(td_group_offsets(e, "g", &c, &n));
    ASSERT_EQ(n, 1);
    ASSERT_EQ(c[0].partition, 2);
    free(c);
    ASSERT_OK(broker_group_expire(e, "g", 9000, &removed));
    ASSERT_EQ(removed, 1);
    td_group_info *gi;
    ASSERT_OK(td_group_list(e, &gi, &n));
    ASSERT_EQ(n, 0);
    free(gi);
    td_engine_close(e);
    test_rmrf(dir);
}

/* Producer ids are never handed out twice, across reopens: a block is recorded before its first
 * id is used, and a reopen starts after the last block. */
static void test_producer_id_blocks(void)
{
    char *dir = test_tmpdir("state-pid");
    td_engine *e = open_with(dir, 0);
    int64_t a, b, c;
    ASSERT_OK(broker_producer_id_new(e, &a));
    ASSERT_OK(broker_producer_id_new(e, &b));
    ASSERT_EQ(a, 0);
    ASSERT_EQ(b, 1);
    ASSERT_EQ(count_records(e, STATE_CLUSTER_TOPIC, 0), 1);
    td_engine_close(e);
    e = open_with(dir, 0);
    ASSERT_OK(broker_producer_id_new(e, &c));
    ASSERT_EQ(c, 1000);
    for (int i = 0; i < 999; i++)
        ASSERT_OK(broker_producer_id_new(e, &c));
    ASSERT_EQ(c, 1999);
    ASSERT_EQ(count_records(e, STATE_CLUSTER_TOPIC, 0), 2);
    ASSERT_OK(broker_producer_id_new(e, &c));
    ASSERT_EQ(c, 2000);
    ASSERT_EQ(count_records(e, STATE_CLUSTER_TOPIC, 0), 3);
    td_engine_close(e);
    test_rmrf(dir);
}

/* No client change reaches the state topics; listings hide them unless asked. */
static void test_protected_and_hidden(void)
{
    char *dir = test_tmpdir("state-protect");
    td_engine *e = open_with(dir, 0);
    ASSERT_OK(td_topic_create(e, "user", 1, NULL, 0));
    td_event ev = {
        .key = "k", .key_len = 1, .value = "v", .value_len = 1, .partition = TD_PARTITION_ANY};
    ASSERT_EQ(td_produce(e, STATE_OFFSETS_TOPIC, &ev, 1, NULL), TD_ENAME);
    ASSERT_EQ(td_topic_delete(e, STATE_OFFSETS_TOPIC), TD_ENAME);
    ASSERT_EQ(td_topic_delete(e, STATE_CLUSTER_TOPIC), TD_ENAME);
    ASSERT_EQ(td_topic_add_partitions(e, STATE_OFFSETS_TOPIC, 2), TD_ENAME);
    int64_t ls;
    ASSERT_EQ(td_delete_records(e, STATE_OFFSETS_TOPIC, 0, 0, &ls), TD_ENAME);
    td_config_entry del = {"cleanup.policy", "delete"}, both = {"cleanup.policy", "compact,delete"},
                    ret = {"retention.ms", "1000"};
    ASSERT_EQ(td_topic_alter(e, STATE_OFFSETS_TOPIC, &del, 1), TD_ECONFIG);
    ASSERT_OK(td_topic_alter(e, STATE_OFFSETS_TOPIC, &both, 1));
    ASSERT_OK(td_topic_alter(e, STATE_OFFSETS_TOPIC, &ret, 1));
    td_topic_ref *r;
    ASSERT_OK(broker_topic_acquire(e, STATE_OFFSETS_TOPIC, &r));
    ASSERT(broker_topic_internal(r));
    int64_t ends[1];
    ASSERT_EQ(broker_produce_nowait(r, &ev, 1, NULL, ends), TD_ENAME);
    broker_topic_release(r);
    td_topic_info *v;
    size_t n;
    ASSERT_OK(td_topic_list(e, &v, &n));
    ASSERT_EQ(n, 1);
    ASSERT_STR_EQ(v[0].name, "user");
    ASSERT(!v[0].internal);
    free(v);
    ASSERT_OK(td_topic_list_all(e, &v, &n));
    ASSERT_EQ(n, (size_t)STATE_NTOPICS + 1); /* every state topic and "user" */
    size_t offsets = n;
    for (size_t i = 0; i < n; i++) {
        ASSERT_EQ(v[i].internal, strcmp(v[i].name, "user") != 0);
        ASSERT_EQ(v[i].internal, state_topic_internal(v[i].name));
        if (strcmp(v[i].name, STATE_OFFSETS_TOPIC) == 0)
            offsets = i;
    }
    ASSERT(offsets < n);
    ASSERT(v[offsets].config.cleanup_policy & TD_CLEANUP_COMPACT);
    ASSERT_EQ(v[offsets].config.fsync_policy, TD_FSYNC_ALWAYS);
    free(v);
    td_engine_close(e);
    /* The fsync setting is applied at every open. */
    td_options o;
    td_options_init(&o);
    o.no_background = 1;
    snprintf(o.state_topic_fsync, sizeof(o.state_topic_fsync), "none");
    ASSERT_OK(td_engine_open(dir, &o, &e));
    td_topic_info ti;
    ASSERT_OK(td_topic_describe(e, STATE_OFFSETS_TOPIC, &ti));
    ASSERT_EQ(ti.config.fsync_policy, TD_FSYNC_NONE);
    td_engine_close(e);
    test_rmrf(dir);
}

/* Commits from many threads at once: each is all there after a reopen (the replay gives the
 * last commit of each thread's partition). */
struct committer {
    td_engine *e;
    int id;
};

static void *commit_main(void *arg)
{
    struct committer *c = arg;
    char group[16];
    snprintf(group, sizeof(group), "g%d", c->id);
    for (int i = 1; i <= 200; i++) {
        td_offset_commit oc = {
            .topic = "t", .partition = c->id % 2, .offset = i, .leader_epoch = -1};
        ASSERT_OK(td_group_commit(c->e, group, &oc, 1, 0));
    }
    return NULL;
}

static void test_concurrent_commits(void)
{
    char *dir = test_tmpdir("state-conc");
    td_engine *e = open_with(dir, 4);
    ASSERT_OK(td_topic_create(e, "t", 2, NULL, 0));
    pthread_t th[6];
    struct committer cs[6];
    for (int i = 0; i < 6; i++) {
        cs[i] = (struct committer){e, i};
        ASSERT_EQ(pthread_create(&th[i], NULL, commit_main, &cs[i]), 0);
    }
    for (int i = 0; i < 6; i++)
        pthread_join(th[i], NULL);
    td_engine_close(e);
    e = open_with(dir, 4);
    for (int i = 0; i < 6; i++) {
        char group[16];
        snprintf(group, sizeof(group), "g%d", i);
        int64_t off;
        ASSERT_OK(td_group_committed(e, group, "t", i % 2, &off));
        ASSERT_EQ(off, 200);
    }
    td_engine_close(e);
    test_rmrf(dir);
}

TEST_MAIN(TEST(test_partition_for_is_kafkas), TEST(test_replay), TEST(test_expiry_tombstones),
          TEST(test_producer_id_blocks), TEST(test_protected_and_hidden),
          TEST(test_concurrent_commits))
