/* Unit tests for the key index of compacted partitions (storage/keyindex.c). */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "broker/engine_int.h"
#include "storage/keyindex.h"
#include "tidings.h"
#include "support/gaplog.h"
#include "test.h"

static td_topic_config compact_cfg(void)
{
    td_topic_config c;
    td_topic_config_init(&c);
    c.cleanup_policy = TD_CLEANUP_COMPACT;
    c.segment_bytes = 1024; /* several segments */
    return c;
}

/* Appends one record key=value (value NULL: a tombstone); returns its offset. */
static int64_t put(td_part *p, const char *key, const char *value)
{
    td_buf b;
    td_buf_init(&b);
    gap_rec r = {0, key, value};
    ASSERT_OK(gaplog_batch(&b, 0, 0, &r, 1, GAPLOG_TS));
    td_append_result res;
    ASSERT_OK(part_append(p, b.p, b.len, GAPLOG_TS, &res));
    ASSERT_OK(part_wait_durable(p, res.end_offset));
    td_buf_free(&b);
    return res.base_offset;
}

/* The value of key: 0 and its text in out, or the lookup's error. */
static int get(td_part *p, const char *key, char *out, size_t cap, int64_t *off)
{
    part_key_hit h;
    part_key_hit_init(&h);
    int rc = part_key_lookup(p, key, strlen(key), &h);
    if (rc == 0) {
        ASSERT(h.rec.value.n < cap);
        memcpy(out, h.rec.value.p, h.rec.value.n);
        out[h.rec.value.n] = 0;
        if (off)
            *off = h.rec.offset;
    }
    part_key_hit_free(&h);
    return rc;
}

static void test_latest_tombstone_unknown_reopen(void)
{
    char *dir = test_tmpdir("keys");
    td_topic_config c = compact_cfg();
    td_keybudget *kb = keybudget_new(1 << 20);
    td_part *p;
    ASSERT_OK(part_open(td_io_posix(), dir, "k/0", &c, &p));
    char v[64];
    /* Not enabled: the topic is not compacted as far as the index knows. */
    ASSERT_EQ(get(p, "a", v, sizeof(v), NULL), TD_EUNSUPPORTED);
    ASSERT_OK(part_keys_enable(p, kb));
    char key[16], val[16];
    for (int round = 0; round < 30; round++)
        for (int k = 0; k < 20; k++) {
            snprintf(key, sizeof(key), "key-%d", k);
            snprintf(val, sizeof(val), "%d-%d", k, round);
            put(p, key, val);
        }
    int64_t tomb = put(p, "key-7", NULL);
    int64_t off;
    ASSERT_OK(get(p, "key-3", v, sizeof(v), &off));
    ASSERT_STR_EQ(v, "3-29");
    ASSERT_EQ(off, 29 * 20 + 3);
    ASSERT_EQ(get(p, "key-7", v, sizeof(v), NULL), TD_ENOTFOUND);
    ASSERT_EQ(get(p, "nope", v, sizeof(v), NULL), TD_ENOTFOUND);
    ASSERT_EQ(get(p, "", v, sizeof(v), NULL), TD_ENOTFOUND);
    int64_t keys, bytes;
    part_keys_stats(p, &keys, &bytes);
    ASSERT_EQ(keys, 20);
    ASSERT_EQ(bytes, keybudget_used(kb));
    ASSERT(bytes > 0);
    put(p, "key-7", "back");
    ASSERT_OK(get(p, "key-7", v, sizeof(v), NULL));
    ASSERT_STR_EQ(v, "back");
    ASSERT(tomb > 0);
    part_close(p);
    ASSERT_EQ(keybudget_used(kb), 0); /* closing gives the memory back */
    /* Rebuilt at open by reading the log. */
    ASSERT_OK(part_open(td_io_posix(), dir, "k/0", &c, &p));
    ASSERT_OK(part_keys_enable(p, kb));
    part_keys_stats(p, &keys, &bytes);
    ASSERT_EQ(keys, 20);
    ASSERT_OK(get(p, "key-19", v, sizeof(v), NULL));
    ASSERT_STR_EQ(v, "19-29");
    ASSERT_OK(get(p, "key-7", v, sizeof(v), NULL));
    ASSERT_STR_EQ(v, "back");
    /* Records below the log start are gone. */
    ASSERT_OK(part_delete_before(p, 29 * 20 + 5, NULL));
    ASSERT_EQ(get(p, "key-3", v, sizeof(v), NULL), TD_ENOTFOUND);
    ASSERT_OK(get(p, "key-5", v, sizeof(v), NULL));
    ASSERT_STR_EQ(v, "5-29");
    /* Disabling frees the table. */
    ASSERT_OK(part_keys_enable(p, NULL));
    ASSERT_EQ(keybudget_used(kb), 0);
    ASSERT_EQ(get(p, "key-5", v, sizeof(v), NULL), TD_EUNSUPPORTED);
    part_close(p);
    keybudget_free(kb);
    test_rmrf(dir);
}

static void test_gapped_log(void)
{
    char *dir = test_tmpdir("keygap");
    ASSERT_OK(gaplog_write_standard(dir));
    td_topic_config c = compact_cfg();
    td_keybudget *kb = keybudget_new(1 << 20);
    td_part *p;
    ASSERT_OK(part_open(td_io_posix(), dir, "k/0", &c, &p));
    ASSERT_OK(part_keys_enable(p, kb));
    char v[64];
    int64_t off;
    ASSERT_EQ(get(p, "k1", v, sizeof(v), NULL), TD_ENOTFOUND); /* tombstoned at 25 */
    ASSERT_OK(get(p, "k3", v, sizeof(v), &off));
    ASSERT_STR_EQ(v, "v3");
    ASSERT_EQ(off, 3);
    ASSERT_OK(get(p, "k22", v, sizeof(v), &off));
    ASSERT_EQ(off, 22);
    ASSERT_EQ(get(p, "k5", v, sizeof(v), NULL), TD_ENOTFOUND); /* in a removed batch */
    ASSERT_EQ(get(p, "k10", v, sizeof(v), NULL), TD_ENOTFOUND);
    part_close(p);
    keybudget_free(kb);
    test_rmrf(dir);
}

static void same_digest(const void *key, size_t n, uint8_t out[TD_KEY_DIGEST_LEN])
{
    (void)key;
    (void)n;
    memset(out, 0x5a, TD_KEY_DIGEST_LEN);
}

static void test_collision_never_answers_another_key(void)
{
    char *dir = test_tmpdir("keycoll");
    td_topic_config c = compact_cfg();
    td_keybudget *kb = keybudget_new(1 << 20);
    keyindex_test_digest(same_digest);
    td_part *p;
    ASSERT_OK(part_open(td_io_posix(), dir, "k/0", &c, &p));
    ASSERT_OK(part_keys_enable(p, kb));
    put(p, "alpha", "A");
    put(p, "beta", "B");
    char v[64];
    ASSERT_OK(get(p, "beta", v, sizeof(v), NULL));
    ASSERT_STR_EQ(v, "B");
    /* alpha's slot now points at beta's record: the key comparison refuses it. */
    ASSERT_EQ(get(p, "alpha", v, sizeof(v), NULL), TD_ENOTFOUND);
    part_close(p);
    keyindex_test_digest(NULL);
    keybudget_free(kb);
    test_rmrf(dir);
}

static void test_memory_limit(void)
{
    char *d1 = test_tmpdir("keylim1"), *d2 = test_tmpdir("keylim2");
    td_topic_config c = compact_cfg();
    /* Room for two first tables (16 slots of 24 bytes) but not for one to double beside the
     * other (a growth holds the old table and the new one while it moves the slots). */
    td_keybudget *kb = keybudget_new(1200);
    td_part *p1, *p2;
    ASSERT_OK(part_open(td_io_posix(), d1, "k/0", &c, &p1));
    ASSERT_OK(part_open(td_io_posix(), d2, "k/1", &c, &p2));
    ASSERT_OK(part_keys_enable(p1, kb));
    ASSERT_OK(part_keys_enable(p2, kb));
    ASSERT_EQ(keybudget_used(kb), 0); /* empty partitions hold nothing */
    put(p1, "a", "1");
    put(p2, "b", "2");
    char v[64];
    ASSERT_OK(get(p1, "a", v, sizeof(v), NULL));
    ASSERT_OK(get(p2, "b", v, sizeof(v), NULL));
    ASSERT_EQ(keybudget_used(kb), 2 * 16 * 24);
    /* p1 grows past its first table: the budget refuses, p1 drops its index and gives its
     * memory back; its lookups say why, p2 goes on. */
    char key[16];
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof(key), "key-%d", i);
        put(p1, key, "x");
    }
    ASSERT_EQ(get(p1, "a", v, sizeof(v), NULL), TD_EFULL);
    ASSERT_CONTAINS(td_last_error(), "table.index.max.bytes");
    ASSERT_CONTAINS(td_last_error(), "k/0");
    ASSERT_EQ(keybudget_used(kb), 16 * 24);
    ASSERT_OK(get(p2, "b", v, sizeof(v), NULL));
    ASSERT_STR_EQ(v, "2");
    /* Asking again without room: still refused, nothing rebuilt. */
    ASSERT_EQ(get(p1, "key-3", v, sizeof(v), NULL), TD_EFULL);
    part_close(p2);
    ASSERT_EQ(keybudget_used(kb), 0);
    /* p2's memory came back: p1's next lookup rebuilds its index from the log. */
    ASSERT_OK(get(p1, "key-3", v, sizeof(v), NULL));
    ASSERT_STR_EQ(v, "x");
    ASSERT_OK(get(p1, "a", v, sizeof(v), NULL));
    ASSERT_EQ(keybudget_used(kb), 32 * 24);
    part_close(p1);
    ASSERT_EQ(keybudget_used(kb), 0);
    keybudget_free(kb);
    test_rmrf(d1);
    test_rmrf(d2);
}

static void produce_kv(td_engine *e, const char *topic, const char *key, const char *value)
{
    td_header h = {"h", 1, "hv", 2};
    td_event ev = {.key = key,
                   .key_len = strlen(key),
                   .value = value,
                   .value_len = value ? strlen(value) : 0,
                   .headers = &h,
                   .header_count = 1,
                   .partition = TD_PARTITION_ANY};
    td_produce_result r;
    ASSERT_OK(td_produce(e, topic, &ev, 1, &r));
}

static void test_engine_get_key(void)
{
    char *dir = test_tmpdir("keyeng");
    td_engine *e = test_engine_open(dir);
    td_config_entry ce[] = {{"cleanup.policy", "compact"}};
    ASSERT_OK(td_topic_create(e, "table", 3, ce, 1));
    ASSERT_OK(td_topic_create(e, "plain", 1, NULL, 0));
    char key[16], val[16];
    for (int round = 0; round < 3; round++)
        for (int k = 0; k < 50; k++) {
            snprintf(key, sizeof(key), "user-%d", k);
            snprintf(val, sizeof(val), "v%d-%d", k, round);
            produce_kv(e, "table", key, val);
        }
    produce_kv(e, "table", "user-9", NULL);
    produce_kv(e, "plain", "user-1", "x");
    for (int pass = 0; pass < 2; pass++) {
        td_event *ev;
        ASSERT_OK(td_get_key(e, "table", "user-4", 6, -1, &ev));
        ASSERT_EQ(ev->value_len, 4u);
        ASSERT_MEM_EQ(ev->value, "v4-2", 4);
        ASSERT_EQ(ev->partition, td_partition_for_key("user-4", 6, 3));
        ASSERT_EQ(ev->header_count, 1u);
        ASSERT_MEM_EQ(ev->headers[0].value, "hv", 2);
        int32_t part = ev->partition;
        td_event_free(ev);
        /* The right partition named outright answers the same; another one does not know it. */
        ASSERT_OK(td_get_key(e, "table", "user-4", 6, part, &ev));
        td_event_free(ev);
        ASSERT_EQ(td_get_key(e, "table", "user-4", 6, (part + 1) % 3, &ev), TD_ENOTFOUND);
        ASSERT_EQ(td_get_key(e, "table", "user-9", 6, -1, &ev), TD_ENOTFOUND);
        ASSERT_EQ(td_get_key(e, "table", "nobody", 6, -1, &ev), TD_ENOTFOUND);
        ASSERT_EQ(td_get_key(e, "table", "user-4", 6, 3, &ev), TD_ENOTFOUND);
        ASSERT_EQ(td_get_key(e, "nosuch", "user-4", 6, -1, &ev), TD_ENOTFOUND);
        ASSERT_EQ(td_get_key(e, "plain", "user-1", 6, -1, &ev), TD_EINVAL);
        ASSERT(ev == NULL);
        /* Reopened: the indexes are rebuilt from the logs. */
        td_engine_close(e);
        e = test_engine_open(dir);
    }
    /* Compacting a topic later builds its index from what it holds. */
    td_config_entry cc[] = {{"cleanup.policy", "compact,delete"}};
    ASSERT_OK(td_topic_alter(e, "plain", cc, 1));
    td_event *ev;
    ASSERT_OK(td_get_key(e, "plain", "user-1", 6, -1, &ev));
    ASSERT_MEM_EQ(ev->value, "x", 1);
    td_event_free(ev);
    td_engine_close(e);
    test_rmrf(dir);
}

#define WRITER_MAX_ROUNDS 1000

typedef struct writer_arg {
    td_part *p;
    int min_rounds;
    int stop;   /* atomic: the lookups are done */
    int rounds; /* the rounds written, when joined */
} writer_arg;

/* Writes rounds of the 50 keys (round r's value is r) until the lookups are done and at least
 * min_rounds are written: the writer is appending during every lookup, however fast the disk. */
static void *writer_main(void *arg)
{
    writer_arg *w = arg;
    char key[16], val[16];
    int r = 0;
    for (; r < WRITER_MAX_ROUNDS &&
           (r < w->min_rounds || !__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE));
         r++)
        for (int k = 0; k < 50; k++) {
            snprintf(key, sizeof(key), "key-%d", k);
            snprintf(val, sizeof(val), "%d", r);
            put(w->p, key, val);
        }
    w->rounds = r;
    return NULL;
}

/* The index is enabled (built by reading the log) while a writer appends, and looked up
 * meanwhile: the build, the append hook and the lookups' catch-up race; at the end every key
 * answers its last value. Run under ThreadSanitizer too. */
static void build_race(int policy, int min_rounds)
{
    char *dir = test_tmpdir("keyrace");
    td_topic_config c = compact_cfg();
    c.fsync_policy = policy;
    td_keybudget *kb = keybudget_new(1 << 20);
    td_part *p;
    ASSERT_OK(part_open(td_io_posix(), dir, "k/0", &c, &p));
    writer_arg w = {p, min_rounds, 0, 0};
    pthread_t th;
    ASSERT_EQ(pthread_create(&th, NULL, writer_main, &w), 0);
    ASSERT_OK(part_keys_enable(p, kb));
    char v[64];
    for (int i = 0; i < 200; i++) {
        int rc = get(p, "key-7", v, sizeof(v), NULL);
        ASSERT(rc == 0 || rc == TD_ENOTFOUND);
        if (rc == 0)
            ASSERT(atoi(v) >= 0 && atoi(v) < WRITER_MAX_ROUNDS);
    }
    __atomic_store_n(&w.stop, 1, __ATOMIC_RELEASE);
    pthread_join(th, NULL);
    char key[16];
    for (int k = 0; k < 50; k++) {
        snprintf(key, sizeof(key), "key-%d", k);
        ASSERT_OK(get(p, key, v, sizeof(v), NULL));
        ASSERT_EQ(atoi(v), w.rounds - 1);
    }
    int64_t keys, bytes;
    part_keys_stats(p, &keys, &bytes);
    ASSERT_EQ(keys, 50);
    part_close(p);
    keybudget_free(kb);
    test_rmrf(dir);
}

static void test_build_races_appends(void)
{
    build_race(TD_FSYNC_NONE, 40);
    /* Lookups may find records not yet durable, and wait. An fsync per append: fewer rounds
     * (the writer still appends until the lookups are done). */
    build_race(TD_FSYNC_ALWAYS, 4);
}

/* The state topics are compacted but nothing reads them by key on the hot path: their index is
 * not kept at every delivery and ack (it cost 15-20% of the broker's CPU under queue load), and
 * is built at the first table read of one, which then answers. */
static void test_state_topics_indexed_on_demand(void)
{
    char *dir = test_tmpdir("keystate");
    td_engine *e = test_engine_open(dir);
    ASSERT_OK(td_topic_create(e, "jobs", 1, NULL, 0));
    for (int i = 0; i < 20; i++)
        produce_kv(e, "jobs", "k", "v");
    td_queue_policy pol;
    td_queue_policy_init(&pol);
    ASSERT_OK(td_queue_create(e, "g", "jobs", &pol));
    td_queue_msg *m;
    size_t n;
    ASSERT_OK(td_queue_receive(e, "g", "c", 20, &m, &n));
    ASSERT_EQ(n, 20u);
    const char *ids[10];
    for (size_t i = 0; i < 10; i++)
        ids[i] = m[i].id;
    ASSERT_OK(td_queue_ack(e, "g", ids, 10, NULL));
    td_queue_msgs_free(m, n);
    /* Records were written to __queue_state, and no index holds memory. */
    ASSERT_EQ(keybudget_used(e->keys), 0);
    /* The latest live key of the state topic, read back by a table read. */
    td_iter *it;
    td_event ev;
    char key[256];
    size_t key_len = 0;
    int64_t records = 0;
    ASSERT_OK(td_iter_open(e, "__queue_state", 0, TD_OFFSET_EARLIEST, &it));
    while (td_iter_next(it, &ev) == 1) {
        records++;
        if (ev.key && ev.value && ev.key_len <= sizeof(key)) {
            memcpy(key, ev.key, ev.key_len);
            key_len = ev.key_len;
        }
    }
    td_iter_close(it);
    ASSERT(records > 0 && key_len > 0);
    td_event *got;
    ASSERT_OK(td_get_key(e, "__queue_state", key, key_len, 0, &got));
    ASSERT(got->key_len == key_len && !memcmp(got->key, key, key_len));
    td_event_free(got);
    ASSERT(keybudget_used(e->keys) > 0);
    td_engine_close(e);
    test_rmrf(dir);
}

TEST_MAIN(TEST(test_latest_tombstone_unknown_reopen), TEST(test_build_races_appends),
          TEST(test_gapped_log), TEST(test_state_topics_indexed_on_demand), TEST(test_engine_get_key),
          TEST(test_collision_never_answers_another_key), TEST(test_memory_limit))
