/*
 * Crash safety against a real process kill: a forked child appends numbered events to a
 * partition on the real file system under fsync=always and reports each acknowledged event
 * through a pipe once part_wait_durable returned; the parent kills it with SIGKILL at a random
 * moment, reopens the partition, and checks that every acknowledged event is there, in order,
 * once, with dense offsets, and that the producer state recovered names the log's last event.
 * 25 rounds on the same partition, each child continuing the log.
 */
#include <time.h>
#include <unistd.h>

#include "crash_common.h"

static void child(const char *dir, int round, int wfd)
{
    (void)round;
    td_topic_config c;
    td_topic_config_init(&c);
    c.segment_bytes = 16384; /* rolls happen under the kill too */
    td_part *p;
    if (part_open(td_io_posix(), dir, "kill/0", &c, &p) != 0)
        _exit(3);
    int64_t next = part_log_end(p);
    for (int i = 0; i < 1000000; i++) {
        int count = 1 + i % 5;
        td_append_result r;
        if (crash_append(p, next, count, &r) != 0 || part_wait_durable(p, r.end_offset) != 0)
            _exit(4);
        next += count;
        if (write(wfd, &next, sizeof(next)) != sizeof(next))
            _exit(5);
    }
    _exit(0);
}

static void test_sigkill_rounds(void)
{
    char *dir = test_tmpdir("kill");
    char pdir[1024];
    snprintf(pdir, sizeof(pdir), "%s/p", dir);
    srand((unsigned)time(NULL));
    int64_t acked = 0;
    int rounds = 25;
    for (int round = 0; round < rounds; round++) {
        int status;
        acked = crash_kill_round(child, pdir, round, 2000, 60000, acked, &status);
        ASSERT(crash_killed(status));
        td_topic_config c;
        td_topic_config_init(&c);
        c.segment_bytes = 16384;
        td_part *p;
        ASSERT_OK(part_open(td_io_posix(), pdir, "kill/0", &c, &p));
        ASSERT(part_offline(p) == NULL);
        int64_t have = crash_check_log(p);
        if (have < acked)
            TEST_FAIL_("round %d: %lld events after the kill, %lld were acknowledged", round,
                       (long long)have, (long long)acked);
        crash_check_producer(p, have);
        part_close(p);
    }
    fprintf(stderr, "%d kills survived; %lld events acknowledged\n", rounds, (long long)acked);
    ASSERT(acked > rounds); /* the children did make progress */
    test_rmrf(dir);
}

TEST_MAIN(TEST(test_sigkill_rounds))
