/* Unit tests for log compaction (storage/cleaner.c) on the real file system. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "storage/storage.h"
#include "support/cleancheck.h"
#include "test.h"

#define T0 1700000000000LL

static td_topic_config compact_cfg(void)
{
    td_topic_config c;
    td_topic_config_init(&c);
    c.cleanup_policy = TD_CLEANUP_COMPACT;
    c.segment_bytes = 4096;
    c.delete_retention_ms = 1000;
    c.min_compaction_lag_ms = 0;
    c.fsync_policy = TD_FSYNC_ALWAYS;
    return c;
}

static char logged[8192];
static void sink(int level, const char *line, void *arg)
{
    (void)level;
    (void)arg;
    size_t n = strlen(logged);
    snprintf(logged + n, sizeof(logged) - n, "%s\n", line);
}

static part_clean_opts opts_at(int64_t now)
{
    part_clean_opts o = {.now_ms = now, .map_bytes = 1 << 20};
    return o;
}

/* Appends `rounds` batches of `per` records cycling over nkeys keys, and syncs. */
static void fill(td_part *p, cc_model *m, int nkeys, int rounds, int per, int64_t ts, int codec)
{
    static int cursor;
    int keys[64];
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < per; i++)
            keys[i] = cursor++ % nkeys;
        td_append_result res;
        ASSERT_OK(cc_append(p, m, keys, NULL, per, ts + r, codec, -1, 0, &res));
    }
    ASSERT_OK(part_sync(p));
}

static int64_t sealed_bytes(td_part *p)
{
    td_part_stats st;
    part_stats(p, &st);
    return st.size_bytes;
}

/* The stream IDs of the records still there are those they had (before[offset]). */
static void check_ids(td_part *p, const td_sid *before, int64_t end)
{
    static int64_t offs[4096];
    int64_t n = cc_read_offsets(p, offs, 4096);
    ASSERT(n > 0 && n <= 4096);
    for (int64_t i = 0; i < n && offs[i] < end; i++) {
        td_sid id;
        ASSERT_OK(part_stream_id(p, offs[i], &id, NULL));
        ASSERT_EQ(td_sid_cmp(id, before[offs[i]]), 0);
    }
    td_sid last, want;
    ASSERT_OK(part_stream_last(p, &last));
    if (part_log_end(p) == end) {
        want = before[end - 1];
        ASSERT_EQ(td_sid_cmp(last, want), 0);
    }
}

/* Every key keeps its latest value, offsets and stream IDs stay, and the cleaned log reopens. */
static void test_keeps_latest_per_key(void)
{
    char *dir = test_tmpdir("clean");
    td_topic_config c = compact_cfg();
    td_part *p;
    ASSERT_OK(part_open(td_io_posix(), dir, "t/0", &c, &p));
    cc_model m;
    cc_model_init(&m);
    fill(p, &m, 40, 120, 10, T0, TD_COMPRESS_NONE);
    int64_t end = part_log_end(p);
    ASSERT_EQ(end, 1200);
    td_sid before[1200];
    for (int64_t o = 0; o < end; o++)
        ASSERT_OK(part_stream_id(p, o, &before[o], NULL));
    int64_t size0 = sealed_bytes(p);
    part_clean_info st;
    ASSERT(part_clean_status(p, T0 + 5000, &st));
    ASSERT(st.dirty_bytes > 0);
    ASSERT_EQ(st.clean_bytes, 0);
    part_clean_opts o = opts_at(T0 + 5000);
    part_clean_result res;
    ASSERT_OK(part_clean(p, &o, &res));
    ASSERT(res.segments_before > 1);
    ASSERT_EQ(res.segments_after, res.segments_before); /* grouped by their old sizes */
    ASSERT(res.records_removed > 0);
    ASSERT(sealed_bytes(p) < size0);
    ASSERT(part_clean_status(p, T0 + 5000, &st));
    ASSERT_EQ(st.dirty_bytes, 0);
    ASSERT(st.reclaimed_bytes > 0);
    int64_t n = cc_check(p, &m, false);
    ASSERT(n >= 40);
    /* Below the active segment, each key at most once. */
    td_part_stats ps;
    part_stats(p, &ps);
    ASSERT(n <= 40 + (end - st.first_dirty));
    check_ids(p, before, end);
    ASSERT_EQ(part_log_end(p), end);
    /* Cleaning again with nothing dirty changes nothing. */
    ASSERT_OK(part_clean(p, &o, &res));
    ASSERT_EQ(res.segments_before, 0);
    part_close(p);
    logged[0] = 0;
    td_log_set_sink(sink, NULL);
    ASSERT_OK(part_open(td_io_posix(), dir, "t/0", &c, &p));
    td_log_set_sink(NULL, NULL);
    /* The cleaned segments' index files (whose first entry is not at relative offset 0) are
     * used as they are, not rebuilt. */
    ASSERT(strstr(logged, "rebuilt") == NULL);
    ASSERT(part_offline(p) == NULL);
    ASSERT_EQ(cc_check(p, &m, false), n);
    ASSERT_EQ(part_log_end(p), end);
    ASSERT(part_clean_status(p, T0 + 5000, &st));
    ASSERT_EQ(st.dirty_bytes, 0); /* the checkpoint survived */
    /* More updates: the next run cleans the clean and the dirty sections together. */
    fill(p, &m, 40, 60, 10, T0 + 200, TD_COMPRESS_NONE);
    ASSERT_OK(part_clean(p, &o, &res));
    ASSERT(res.records_removed > 0);
    ASSERT(res.segments_after < res.segments_before); /* small cleaned segments are merged */
    ASSERT(cc_check(p, &m, false) >= 40);
    check_ids(p, before, end);
    part_close(p);
    test_rmrf(dir);
}

/* Tombstones stay until delete.retention.ms after their first cleaning, then go. */
static void test_tombstones_expire(void)
{
    char *dir = test_tmpdir("clean");
    td_topic_config c = compact_cfg();
    td_part *p;
    ASSERT_OK(part_open(td_io_posix(), dir, "t/0", &c, &p));
    cc_model m;
    cc_model_init(&m);
    fill(p, &m, 20, 30, 10, T0, TD_COMPRESS_NONE);
    int keys[5] = {1, 3, 5, 7, 9};
    bool tomb[5] = {true, true, true, true, true};
    ASSERT_OK(cc_append(p, &m, keys, tomb, 5, T0 + 100, TD_COMPRESS_NONE, -1, 0, NULL));
    fill(p, &m, 20, 20, 10, T0 + 200, TD_COMPRESS_NONE); /* rolls past the tombstones */
    for (int i = 0; i < 5; i++) /* the fill rewrote them: delete them again at the end */
        m.gen[keys[i]] = m.gen[keys[i]];
    part_clean_opts o = opts_at(T0 + 10000);
    part_clean_result res;
    ASSERT_OK(part_clean(p, &o, &res));
    int64_t seen[CC_KEYS_MAX];
    ASSERT(cc_read(p, seen) > 0);
    ASSERT(cc_check(p, &m, false) > 0);
    /* Deleted for good now: tombstones for 5 keys that are not written again. */
    int dkeys[3] = {2, 4, 6};
    bool dt[3] = {true, true, true};
    ASSERT_OK(cc_append(p, &m, dkeys, dt, 3, T0 + 300, TD_COMPRESS_NONE, -1, 0, NULL));
    int other[10];
    for (int r = 0; r < 40; r++) {
        for (int i = 0; i < 10; i++)
            other[i] = 100 + (r * 10 + i) % 50;
        ASSERT_OK(cc_append(p, &m, other, NULL, 10, T0 + 400, TD_COMPRESS_NONE, -1, 0, NULL));
    }
    ASSERT_OK(part_sync(p));
    ASSERT_OK(part_clean(p, &o, &res)); /* sets their horizon: now + 1000 */
    ASSERT_OK(cc_read(p, seen) > 0 ? 0 : -1);
    ASSERT_EQ(seen[2], CC_TOMBSTONE);
    ASSERT_EQ(seen[4], CC_TOMBSTONE);
    ASSERT(cc_check(p, &m, false) > 0);
    /* Before the horizon they stay; after it the next cleaning removes them. */
    for (int r = 0; r < 40; r++) {
        for (int i = 0; i < 10; i++)
            other[i] = 100 + (r * 10 + i) % 50;
        ASSERT_OK(cc_append(p, &m, other, NULL, 10, T0 + 500, TD_COMPRESS_NONE, -1, 0, NULL));
    }
    ASSERT_OK(part_sync(p));
    o.now_ms = T0 + 10500;
    ASSERT_OK(part_clean(p, &o, &res));
    ASSERT(cc_read(p, seen) > 0);
    ASSERT_EQ(seen[2], CC_TOMBSTONE);
    for (int r = 0; r < 40; r++) {
        for (int i = 0; i < 10; i++)
            other[i] = 100 + (r * 10 + i) % 50;
        ASSERT_OK(cc_append(p, &m, other, NULL, 10, T0 + 600, TD_COMPRESS_NONE, -1, 0, NULL));
    }
    ASSERT_OK(part_sync(p));
    o.now_ms = T0 + 11001;
    ASSERT_OK(part_clean(p, &o, &res));
    ASSERT(cc_read(p, seen) > 0);
    ASSERT_EQ(seen[2], CC_ABSENT);
    ASSERT_EQ(seen[4], CC_ABSENT);
    ASSERT_EQ(seen[6], CC_ABSENT);
    ASSERT(cc_check(p, &m, true) > 0);
    part_close(p);
    ASSERT_OK(part_open(td_io_posix(), dir, "t/0", &c, &p));
    ASSERT(cc_check(p, &m, true) > 0);
    part_close(p);
    test_rmrf(dir);
}

/* A partition that gets no more writes: its cleaned section is cleaned again once a tombstone's
 * delete horizon has passed (part_clean_info.due_ms), not before, and not again after. Before,
 * a partition with nothing dirty was never cleaned and its tombstones stayed. */
static void test_tombstones_expire_without_new_records(void)
{
    char *dir = test_tmpdir("cleaner-due");
    td_topic_config c = compact_cfg();
    td_part *p;
    ASSERT_OK(part_open(td_io_posix(), dir, "t/0", &c, &p));
    cc_model m;
    cc_model_init(&m);
    int keys[3] = {1, 2, 3};
    bool tomb[3] = {true, true, false};
    ASSERT_OK(cc_append(p, &m, keys, NULL, 3, T0, TD_COMPRESS_NONE, -1, 0, NULL));
    ASSERT_OK(cc_append(p, &m, keys, tomb, 3, T0 + 1, TD_COMPRESS_NONE, -1, 0, NULL));
    int other[10]; /* other keys, rolling past them (not fill(): its cursor is the next tests') */
    for (int r = 0; r < 60; r++) {
        for (int i = 0; i < 10; i++)
            other[i] = 100 + (r * 10 + i) % 40;
        ASSERT_OK(cc_append(p, &m, other, NULL, 10, T0 + 2, TD_COMPRESS_NONE, -1, 0, NULL));
    }
    ASSERT_OK(part_sync(p));
    part_clean_info st;
    ASSERT(part_clean_status(p, T0 + 10000, &st));
    ASSERT_EQ(st.due_ms, INT64_MAX);
    part_clean_opts o = opts_at(T0 + 10000);
    part_clean_result res;
    ASSERT_OK(part_clean(p, &o, &res)); /* their horizon: T0 + 11000 */
    int64_t seen[CC_KEYS_MAX];
    ASSERT(cc_read(p, seen) > 0);
    ASSERT_EQ(seen[1], CC_TOMBSTONE);
    ASSERT(part_clean_status(p, T0 + 10000, &st));
    ASSERT_EQ(st.dirty_bytes, 0);
    ASSERT_EQ(st.due_ms, T0 + 11000);
    o.now_ms = T0 + 10999;
    ASSERT_OK(part_clean(p, &o, &res)); /* nothing dirty, nothing due */
    ASSERT_EQ(res.segments_before, 0);
    o.now_ms = T0 + 11000;
    ASSERT_OK(part_clean(p, &o, &res));
    ASSERT(res.segments_before > 0 && res.records_removed == 2);
    ASSERT(cc_read(p, seen) > 0);
    ASSERT_EQ(seen[1], CC_ABSENT);
    ASSERT_EQ(seen[2], CC_ABSENT);
    ASSERT(cc_check(p, &m, true) > 0);
    ASSERT(part_clean_status(p, T0 + 11000, &st));
    ASSERT_EQ(st.due_ms, INT64_MAX);
    o.now_ms = T0 + 100000;
    ASSERT_OK(part_clean(p, &o, &res));
    ASSERT_EQ(res.segments_before, 0);
    part_close(p);
    test_rmrf(dir);
}

/* An idempotent producer whose records were all superseded keeps its last batch (empty), so its
 * sequence survives a restart; compressed batches are filtered and keep their codec. */
static void test_producer_state_and_codecs(void)
{
    static const int codecs[] = {TD_COMPRESS_GZIP, TD_COMPRESS_LZ4, TD_COMPRESS_ZSTD,
                                 TD_COMPRESS_SNAPPY};
    char *dir = test_tmpdir("clean");
    td_topic_config c = compact_cfg();
    td_part *p;
    ASSERT_OK(part_open(td_io_posix(), dir, "t/0", &c, &p));
    cc_model m;
    cc_model_init(&m);
    int keys[10];
    for (int i = 0; i < 10; i++)
        keys[i] = i;
    td_append_result res;
    for (int32_t s = 0; s < 30; s += 10)
        ASSERT_OK(cc_append(p, &m, keys, NULL, 10, T0, TD_COMPRESS_NONE, 4242, s, &res));
    int64_t last = res.last_offset;
    for (int r = 0; r < 60; r++)
        fill(p, &m, 10, 1, 10, T0 + r, codecs[r % 4]);
    part_clean_opts o = opts_at(T0 + 5000);
    part_clean_result cr;
    ASSERT_OK(part_clean(p, &o, &cr));
    ASSERT(cr.records_removed >= 30);
    ASSERT(cc_check(p, &m, false) > 0);
    part_close(p);
    /* Without snapshots the state comes from the batch headers alone. */
    DIR *dh = opendir(dir);
    struct dirent *de;
    while ((de = readdir(dh)) != NULL) {
        if (strstr(de->d_name, ".snapshot")) {
            char path[4096];
            snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
            unlink(path);
        }
    }
    closedir(dh);
    ASSERT_OK(part_open(td_io_posix(), dir, "t/0", &c, &p));
    int16_t epoch;
    int32_t seq;
    int64_t lo;
    ASSERT_OK(part_producer(p, 4242, &epoch, &seq, &lo));
    ASSERT_EQ(seq, 29);
    ASSERT_EQ(lo, last);
    /* Its retry is still recognised. */
    cc_model m2 = m;
    ASSERT_OK(cc_append(p, &m2, keys, NULL, 10, T0, TD_COMPRESS_NONE, 4242, 20, &res));
    ASSERT(res.duplicate);
    ASSERT(cc_check(p, &m, false) > 0);
    part_close(p);
    test_rmrf(dir);
}

/* A map too small for the dirty section cleans the prefix it holds, then the rest. */
static void test_small_map_cleans_in_steps(void)
{
    char *dir = test_tmpdir("clean");
    td_topic_config c = compact_cfg();
    td_part *p;
    ASSERT_OK(part_open(td_io_posix(), dir, "t/0", &c, &p));
    cc_model m;
    cc_model_init(&m);
    fill(p, &m, 3000, 100, 10, T0, TD_COMPRESS_NONE);
    part_clean_opts o = opts_at(T0 + 5000);
    o.map_bytes = 1000 * 24; /* 900 keys */
    part_clean_result res;
    ASSERT_OK(part_clean(p, &o, &res));
    part_clean_info st;
    ASSERT(part_clean_status(p, T0 + 5000, &st));
    ASSERT(st.first_dirty > 0 && st.first_dirty < part_log_end(p));
    ASSERT(st.dirty_bytes > 0);
    ASSERT(cc_check(p, &m, false) > 0);
    for (int i = 0; i < 10 && st.dirty_bytes > 0; i++) {
        ASSERT_OK(part_clean(p, &o, &res));
        ASSERT(part_clean_status(p, T0 + 5000, &st));
    }
    ASSERT_EQ(st.dirty_bytes, 0);
    ASSERT(cc_check(p, &m, false) > 0);
    part_close(p);
    test_rmrf(dir);
}

/* Leftovers of an interrupted cleaning: a .cleaned file goes, a .swap file replaces the
 * segments it covers. */
static void test_recover_leftovers(void)
{
    char *dir = test_tmpdir("clean");
    td_topic_config c = compact_cfg();
    td_part *p;
    ASSERT_OK(part_open(td_io_posix(), dir, "t/0", &c, &p));
    cc_model m;
    cc_model_init(&m);
    fill(p, &m, 40, 80, 10, T0, TD_COMPRESS_NONE);
    part_close(p);
    char path[4096];
    snprintf(path, sizeof(path), "%s/%020d.log.cleaned", dir, 0);
    int fd = open(path, O_CREAT | O_WRONLY, 0644);
    ASSERT(fd >= 0);
    ASSERT_EQ(write(fd, "garbage", 7), 7);
    close(fd);
    ASSERT_OK(part_open(td_io_posix(), dir, "t/0", &c, &p));
    ASSERT(access(path, F_OK) != 0);
    ASSERT(cc_check(p, &m, false) > 0);
    part_close(p);
    test_rmrf(dir);
}

/* max.compaction.lag.ms rolls the active segment of a compacted topic as segment.ms does. */
static void test_max_lag_rolls(void)
{
    char *dir = test_tmpdir("clean");
    td_topic_config c = compact_cfg();
    c.segment_bytes = 1 << 20;
    c.max_compaction_lag_ms = 1000;
    td_part *p;
    ASSERT_OK(part_open(td_io_posix(), dir, "t/0", &c, &p));
    cc_model m;
    cc_model_init(&m);
    int k = 1;
    td_append_result r;
    int64_t t = td_wall_ms();
    ASSERT_OK(cc_append(p, &m, &k, NULL, 1, t, TD_COMPRESS_NONE, -1, 0, &r));
    ASSERT_OK(cc_append(p, &m, &k, NULL, 1, t + 500, TD_COMPRESS_NONE, -1, 0, &r));
    td_part_stats st;
    part_stats(p, &st);
    ASSERT_EQ(st.segments, 1);
    ASSERT_OK(cc_append(p, &m, &k, NULL, 1, t + 1500, TD_COMPRESS_NONE, -1, 0, &r));
    part_stats(p, &st);
    ASSERT_EQ(st.segments, 2);
    part_close(p);
    test_rmrf(dir);
}

/* Through the engine: td_engine_compact, td_partition_describe's figures, the refusal of a
 * record without a key, and the cleaner thread, which a close stops at once. */
static void test_engine_compaction(void)
{
    char *dir = test_tmpdir("clean");
    td_options o;
    td_options_init(&o);
    o.log_cleaner_backoff_ms = 3600000; /* a close must not wait for its sleep */
    td_engine *e;
    ASSERT_OK(td_engine_open(dir, &o, &e));
    td_config_entry cfg[] = {{"cleanup.policy", "compact"},
                             {"segment.bytes", "2048"},
                             {"min.cleanable.dirty.ratio", "0.99"}};
    ASSERT_OK(td_topic_create(e, "tbl", 1, cfg, 3));
    char key[16], val[32];
    for (int i = 0; i < 400; i++) {
        snprintf(key, sizeof(key), "k%d", i % 10);
        snprintf(val, sizeof(val), "v%d", i);
        td_event ev = {.key = key,
                       .key_len = strlen(key),
                       .value = val,
                       .value_len = strlen(val),
                       .partition = 0};
        ASSERT_OK(td_produce(e, "tbl", &ev, 1, NULL));
    }
    td_event nokey = {.value = "x", .value_len = 1, .partition = 0};
    ASSERT_EQ(td_produce(e, "tbl", &nokey, 1, NULL), TD_ENOKEY);
    ASSERT_CONTAINS(td_last_error(), "without key");
    td_partition_info pi;
    ASSERT_OK(td_partition_describe(e, "tbl", 0, &pi));
    ASSERT_EQ(pi.compacted, 1);
    ASSERT(pi.cleanable_bytes > 0);
    ASSERT_EQ(pi.reclaimed_bytes, 0);
    ASSERT_OK(td_engine_compact(e));
    ASSERT_OK(td_partition_describe(e, "tbl", 0, &pi));
    ASSERT_EQ(pi.cleanable_bytes, 0);
    ASSERT(pi.reclaimed_bytes > 0);
    ASSERT_EQ(pi.log_end_offset, 400);
    int64_t t0 = td_mono_ms();
    td_engine_close(e);
    ASSERT(td_mono_ms() - t0 < 10000);
    test_rmrf(dir);
}

/* A removed batch held the largest timestamp so far: the kept records after it keep their stream
 * IDs through anchors, before and after a reopen. */
static void test_stream_ids_with_removed_maximum(void)
{
    char *dir = test_tmpdir("clean");
    td_topic_config c = compact_cfg();
    td_part *p;
    ASSERT_OK(part_open(td_io_posix(), dir, "t/0", &c, &p));
    cc_model m;
    cc_model_init(&m);
    for (int r = 0; r < 60; r++) {
        int keys[10];
        for (int i = 0; i < 10; i++)
            keys[i] = r % 3 == 0 ? 0 : 1 + (r * 10 + i) % 90; /* key 0: the far-future batches */
        int64_t ts = r % 3 == 0 ? T0 + 100000 + r : T0 + r;
        ASSERT_OK(
            cc_append(p, &m, keys, NULL, r % 3 == 0 ? 1 : 10, ts, TD_COMPRESS_NONE, -1, 0, NULL));
    }
    ASSERT_OK(part_sync(p));
    int64_t end = part_log_end(p);
    static td_sid before[4096];
    ASSERT(end <= 4096);
    for (int64_t o = 0; o < end; o++)
        ASSERT_OK(part_stream_id(p, o, &before[o], NULL));
    part_clean_opts o = opts_at(T0 + 200000);
    part_clean_result res;
    ASSERT_OK(part_clean(p, &o, &res));
    ASSERT(res.records_removed > 0);
    check_ids(p, before, end);
    part_close(p);
    ASSERT_OK(part_open(td_io_posix(), dir, "t/0", &c, &p));
    check_ids(p, before, end);
    ASSERT(cc_check(p, &m, false) > 0);
    part_close(p);
    test_rmrf(dir);
}

TEST_MAIN(TEST(test_keeps_latest_per_key), TEST(test_stream_ids_with_removed_maximum),
          TEST(test_engine_compaction), TEST(test_max_lag_rolls), TEST(test_tombstones_expire),
          TEST(test_tombstones_expire_without_new_records), TEST(test_producer_state_and_codecs),
          TEST(test_small_map_cleans_in_steps), TEST(test_recover_leftovers))
