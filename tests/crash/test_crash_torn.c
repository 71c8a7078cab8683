/*
 * Crash safety with torn and dropped writes: 1200 seeded random cases. Each case appends to a
 * partition on the in-memory crash-simulating io table (tests/support/memio.c) until the
 * "machine" dies at a random operation, then simulates the power loss (unsynced writes dropped,
 * the last kept one torn at a random byte), recovers, and checks that the log is a valid prefix
 * holding every acknowledged event (under fsync=always), that the idempotent producer's state
 * rebuilt from snapshots and batch headers matches it exactly, and that it accepts appends
 * again (and recognises their retry).
 * A failing case prints its seed; run `test_crash_torn <seed>` to replay it alone.
 */
#include "crash_common.h"
#include "support/memio.h"

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static int64_t current_seed;
static int64_t total_acked, total_recovered, total_segments;

static void run_case(uint64_t seed)
{
    current_seed = (int64_t)seed;
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 7;
    memio *m = memio_new();
    td_topic_config c;
    td_topic_config_init(&c);
    c.segment_bytes = 1024 + (int64_t)(rnd(&s) % 8192);
    bool always = rnd(&s) % 4 != 0;
    c.fsync_policy = always ? TD_FSYNC_ALWAYS : TD_FSYNC_NONE;
    td_part *p;
    ASSERT_OK(part_open(memio_table(m), "/d/p", "crash/0", &c, &p));
    memio_fail_after(m, 3 + (int64_t)(rnd(&s) % 1500));
    int64_t acked = 0, next = 0;
    for (int i = 0; i < 1000; i++) {
        int count = 1 + (int)(rnd(&s) % 8);
        td_append_result r;
        if (crash_append(p, next, count, &r) != 0)
            break;
        next += count;
        if (!always) {
            if (rnd(&s) % 5 == 0 && part_sync(p) == 0)
                acked = next;
            continue;
        }
        if (part_wait_durable(p, r.end_offset) != 0)
            break;
        acked = next;
    }
    memio_fail_after(m, 0); /* the machine is dead: part_close writes nothing */
    part_close(p);
    memio_crash(m, seed);
    ASSERT_OK(part_open(memio_table(m), "/d/p", "crash/0", &c, &p));
    if (part_offline(p))
        TEST_FAIL_("seed %llu: offline after recovery: %s", (unsigned long long)seed,
                   part_offline(p));
    int64_t have = crash_check_log(p);
    if (have < acked)
        TEST_FAIL_("seed %llu: %lld events after recovery, %lld were acknowledged",
                   (unsigned long long)seed, (long long)have, (long long)acked);
    ASSERT_LE(have, next);
    total_acked += acked;
    total_recovered += have;
    td_part_stats st;
    part_stats(p, &st);
    total_segments += st.segments;
    /* The producer's state matches what survived, and the log is writable again, at the
     * right offset; a retry of that batch is recognised. */
    crash_check_producer(p, have);
    td_append_result r;
    ASSERT_OK(crash_append(p, have, 2, &r));
    ASSERT_EQ(r.base_offset, have);
    ASSERT(!r.duplicate);
    ASSERT_OK(part_wait_durable(p, r.end_offset));
    ASSERT_OK(crash_append(p, have, 2, &r));
    ASSERT(r.duplicate);
    ASSERT_EQ(r.base_offset, have);
    ASSERT_EQ(crash_check_log(p), have + 2);
    part_close(p);
    memio_free(m);
}

static int cases = 1200;
static uint64_t only_seed;

static void test_torn_and_dropped_writes(void)
{
    if (only_seed) {
        run_case(only_seed);
        return;
    }
    for (int i = 1; i <= cases; i++)
        run_case((uint64_t)i);
    fprintf(stderr, "%d crash cases recovered: %lld events acknowledged, %lld recovered, "
                    "%lld segments\n", cases, (long long)total_acked, (long long)total_recovered,
            (long long)total_segments);
    /* The cases must exercise something: acknowledged data and segment rolls. */
    ASSERT(total_acked > cases * 10);
    ASSERT(total_segments > cases * 2);
}

int main(int argc, char **argv)
{
    td_log_set_level(TD_LOG_OFF); /* every case kills the machine on purpose */
    if (argc > 1)
        only_seed = strtoull(argv[1], NULL, 10);
    fprintf(stderr, "-- test_torn_and_dropped_writes\n");
    test_torn_and_dropped_writes();
    printf("1 passed, 0 failed\n");
    return 0;
}
