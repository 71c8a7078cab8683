/*
 * Compaction against a real process kill: a forked child appends keyed records to a compacted
 * partition on the real file system under fsync=always, reporting through a pipe how many were
 * acknowledged, while a second thread of the child cleans the partition over and over; the
 * parent kills the child with SIGKILL at a random moment, reopens the partition, and checks that
 * it is online, its batches valid with increasing offsets, and that every key holds its latest
 * acknowledged record or a later one of the same key (a record written but not yet
 * acknowledged may survive). 25 rounds on the same partition, each child continuing it.
 */
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "crash_common.h"
#include "support/cleancheck.h"

#define NKEYS 200
#define ROUND_GENS 10000000LL /* round r writes generations r * ROUND_GENS + 1, ... */

static int key_of(int64_t gen)
{
    return (int)((gen * 7) % NKEYS);
}

static td_topic_config cfg(void)
{
    td_topic_config c;
    td_topic_config_init(&c);
    c.cleanup_policy = TD_CLEANUP_COMPACT;
    c.segment_bytes = 4096; /* rolls, and so cleanings, all the time */
    return c;
}

static void *cleaner(void *arg)
{
    td_part *p = arg;
    for (;;) {
        part_clean_opts o = {.now_ms = td_wall_ms(), .map_bytes = 1 << 20};
        part_clean_result res;
        if (part_clean(p, &o, &res) != 0)
            _exit(6);
        usleep(500);
    }
    return NULL;
}

static void child(const char *dir, int round, int wfd)
{
    td_topic_config c = cfg();
    td_part *p;
    if (part_open(td_io_posix(), dir, "kill/0", &c, &p) != 0)
        _exit(3);
    pthread_t th;
    if (pthread_create(&th, NULL, cleaner, p) != 0)
        _exit(7);
    static cc_model m;
    cc_model_init(&m);
    m.next_gen = round * ROUND_GENS + 1;
    for (int64_t acked = 0; acked < ROUND_GENS - 10;) {
        int keys[5];
        for (int i = 0; i < 5; i++)
            keys[i] = key_of(m.next_gen + i);
        td_append_result r;
        if (cc_append(p, &m, keys, NULL, 5, td_wall_ms(), TD_COMPRESS_NONE, -1, 0, &r) != 0 ||
            part_wait_durable(p, r.end_offset) != 0)
            _exit(4);
        acked += 5;
        if (write(wfd, &acked, sizeof(acked)) != sizeof(acked))
            _exit(5);
    }
    _exit(0);
}

static void test_sigkill_while_cleaning(void)
{
    char *dir = test_tmpdir("cleankill");
    char pdir[1024];
    snprintf(pdir, sizeof(pdir), "%s/p", dir);
    srand((unsigned)time(NULL));
    static int64_t want[NKEYS];
    for (int k = 0; k < NKEYS; k++)
        want[k] = CC_ABSENT;
    int64_t total = 0;
    int rounds = 25;
    for (int round = 0; round < rounds; round++) {
        int status;
        int64_t acked = crash_kill_round(child, pdir, round, 20000, 150000, 0, &status);
        ASSERT(crash_killed(status));
        for (int64_t g = round * ROUND_GENS + 1; g <= round * ROUND_GENS + acked; g++)
            want[key_of(g)] = g;
        total += acked;
        td_topic_config c = cfg();
        td_part *p;
        ASSERT_OK(part_open(td_io_posix(), pdir, "kill/0", &c, &p));
        if (part_offline(p))
            TEST_FAIL_("round %d: offline after the kill: %s", round, part_offline(p));
        static int64_t seen[CC_KEYS_MAX];
        ASSERT(cc_read(p, seen) >= 0);
        for (int k = 0; k < NKEYS; k++) {
            if (want[k] == CC_ABSENT)
                continue;
            if (seen[k] < want[k] || key_of(seen[k]) != k)
                TEST_FAIL_("round %d: key k%d holds generation %lld, its latest acknowledged "
                           "is %lld",
                           round, k, (long long)seen[k], (long long)want[k]);
        }
        part_close(p);
    }
    fprintf(stderr, "%d kills survived; %lld records acknowledged\n", rounds, (long long)total);
    ASSERT(total > rounds);
    test_rmrf(dir);
}

TEST_MAIN(TEST(test_sigkill_while_cleaning))
