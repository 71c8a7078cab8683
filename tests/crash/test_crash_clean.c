/*
 * Crash safety of log compaction: the machine dies at every mutating I/O operation of a
 * cleaning in turn (writes, fsyncs, truncates, renames, unlinks: tests/support/memio.c), the
 * power loss is simulated (unsynced writes dropped or torn), and the partition reopens: it must
 * be online, its batches valid with increasing offsets, its log end unchanged, every key's
 * latest value present (a deleted key: its tombstone, or nothing once the tombstone expired),
 * the idempotent producer's state intact, and a further cleaning must succeed.
 * `test_crash_clean <k>` replays failure point k alone.
 */
#include <stdlib.h>

#include "support/cleancheck.h"
#include "support/memio.h"
#include "test.h"

#define T0 1700000000000LL
#define PID 99

static td_topic_config cfg(void)
{
    td_topic_config c;
    td_topic_config_init(&c);
    c.cleanup_policy = TD_CLEANUP_COMPACT;
    c.segment_bytes = 2048;
    c.delete_retention_ms = 100;
    c.fsync_policy = TD_FSYNC_ALWAYS;
    return c;
}

static void fill(td_part *p, cc_model *m, int rounds, int64_t ts, int round0)
{
    static const int codecs[] = {TD_COMPRESS_NONE, TD_COMPRESS_GZIP, TD_COMPRESS_NONE,
                                 TD_COMPRESS_ZSTD};
    for (int r = 0; r < rounds; r++) {
        int keys[8];
        bool tomb[8] = {false};
        for (int i = 0; i < 8; i++) {
            keys[i] = ((round0 + r) * 8 + i) * 7 % 50;
            tomb[i] = (round0 + r + i) % 11 == 0;
        }
        int rc = cc_append(p, m, keys, tomb, 8, ts + r, codecs[r % 4], -1, 0, NULL);
        if (rc)
            TEST_FAIL_("append: %s", td_strerror(rc));
        if (round0 == 0 && r % 3 == 0) {
            /* Keys written once, early: their records live in the oldest segments. */
            int once[4] = {50 + r * 4 / 3, 51 + r * 4 / 3, 52 + r * 4 / 3, 53 + r * 4 / 3};
            ASSERT_OK(cc_append(p, m, once, NULL, 4, ts + r, TD_COMPRESS_NONE, -1, 0, NULL));
        }
    }
    int one = 49;
    static int32_t seq;
    ASSERT_OK(cc_append(p, m, &one, NULL, 1, ts + rounds, TD_COMPRESS_NONE, PID, seq++, NULL));
    ASSERT_OK(part_sync(p));
}

/* Returns true when the cleaning finished before failure point k. */
static bool run_case(int64_t k)
{
    memio *m = memio_new();
    const td_io *io = memio_table(m);
    td_topic_config c = cfg();
    td_part *p;
    ASSERT_OK(part_open(io, "/d/p", "crash/0", &c, &p));
    cc_model model;
    cc_model_init(&model);
    fill(p, &model, 40, T0, 0);
    part_clean_opts o = {.now_ms = T0 + 1000, .map_bytes = 1 << 16};
    part_clean_result res;
    ASSERT_OK(part_clean(p, &o, &res)); /* a clean section, with tombstone horizons */
    fill(p, &model, 40, T0 + 2000, 40);
    int64_t end = part_log_end(p);
    int16_t epoch;
    int32_t seq;
    int64_t last;
    ASSERT_OK(part_producer(p, PID, &epoch, &seq, &last));
    memio_count_dir_ops(m, true);
    memio_fail_after(m, k);
    o.now_ms = T0 + 5000; /* the first tombstones' horizon has passed */
    int rc = part_clean(p, &o, &res);
    bool finished = !memio_dead(m);
    if (finished)
        ASSERT_OK(rc);
    memio_fail_after(m, 0);
    part_close(p);
    memio_crash(m, (uint64_t)k * 7919 + 1);
    memio_count_dir_ops(m, false);
    ASSERT_OK(part_open(io, "/d/p", "crash/0", &c, &p));
    if (part_offline(p))
        TEST_FAIL_("failure point %lld: offline after recovery: %s", (long long)k, part_offline(p));
    if (cc_check(p, &model, true) < 0)
        TEST_FAIL_("failure point %lld: the log lost a key's latest value", (long long)k);
    ASSERT_EQ(part_log_end(p), end);
    int16_t e2;
    int32_t s2;
    int64_t l2;
    ASSERT_OK(part_producer(p, PID, &e2, &s2, &l2));
    ASSERT_EQ(s2, seq);
    ASSERT_EQ(l2, last);
    ASSERT_OK(part_clean(p, &o, &res));
    ASSERT(cc_check(p, &model, true) > 0);
    part_close(p);
    memio_free(m);
    return finished;
}

int main(int argc, char **argv)
{
    td_log_set_level(getenv("CC_VERBOSE") ? TD_LOG_INFO : TD_LOG_OFF); /* it kills on purpose */
    if (argc > 1) {
        run_case(atoll(argv[1]));
        printf("1 passed, 0 failed\n");
        return 0;
    }
    int64_t k = 0;
    while (!run_case(k)) {
        if (++k > 100000)
            TEST_FAIL_("the cleaning never finished");
    }
    printf("crash points tried: %lld\n1 passed, 0 failed\n", (long long)k + 1);
    return 0;
}
