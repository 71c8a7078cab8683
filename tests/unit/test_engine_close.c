/*
 * test_engine_close.c: td_engine_close reports a failed final sync. Under fsync=none the close
 * is what makes the last events durable; when its fdatasync fails the caller must hear it (the
 * events may be lost), not get the silence of a void function. The engine runs over the real
 * file system through an io table whose fsync can be made to fail.
 */
#include <errno.h>

#include "broker/engine_int.h"
#include "storage/io.h"
#include "test.h"

static td_io failing;
static int fail_fsync; /* set: every fsync of a data file fails with -EIO */

static int fsync_maybe(const td_io *io, int fd)
{
    if (__atomic_load_n(&fail_fsync, __ATOMIC_ACQUIRE))
        return -EIO;
    return td_io_posix()->fsync(io, fd);
}

static td_engine *open_engine(const char *dir)
{
    failing = *td_io_posix();
    failing.fsync = fsync_maybe;
    td_options o;
    td_options_init(&o);
    o.no_background = true; /* no interval syncs behind the test's back */
    td_engine *e;
    ASSERT_OK(engine_open_io(dir, &o, &failing, &e));
    return e;
}

static void produce(td_engine *e, int n)
{
    for (int i = 0; i < n; i++) {
        td_event ev = {.value = "v", .value_len = 1, .partition = 0};
        td_produce_result r;
        ASSERT_OK(td_produce(e, "t", &ev, 1, &r));
    }
}

static void test_close_reports_failed_sync(void)
{
    char *dir = test_tmpdir("close");
    td_engine *e = open_engine(dir);
    td_config_entry cfg = {"fsync", "none"};
    ASSERT_OK(td_topic_create(e, "t", 1, &cfg, 1));
    produce(e, 10);
    __atomic_store_n(&fail_fsync, 1, __ATOMIC_RELEASE);
    int rc = td_engine_close(e);
    __atomic_store_n(&fail_fsync, 0, __ATOMIC_RELEASE);
    ASSERT_EQ(rc, -EIO);
    ASSERT(strstr(td_last_error(), "final sync") != NULL);
    /* The directory opens again (recovered as after a crash) and closes cleanly. */
    e = open_engine(dir);
    td_partition_info p;
    ASSERT_OK(td_partition_describe(e, "t", 0, &p));
    ASSERT(p.offline == 0);
    ASSERT_EQ(td_engine_close(e), 0);
    test_rmrf(dir);
}

static void test_close_ok(void)
{
    char *dir = test_tmpdir("close-ok");
    td_engine *e = open_engine(dir);
    td_config_entry cfg = {"fsync", "none"};
    ASSERT_OK(td_topic_create(e, "t", 1, &cfg, 1));
    produce(e, 10);
    ASSERT_EQ(td_engine_close(e), 0);
    ASSERT_EQ(td_engine_close(NULL), 0);
    e = open_engine(dir);
    td_partition_info p;
    ASSERT_OK(td_partition_describe(e, "t", 0, &p));
    ASSERT_EQ(p.high_watermark, 10);
    ASSERT_EQ(td_engine_close(e), 0);
    test_rmrf(dir);
}

TEST_MAIN(TEST(test_close_reports_failed_sync), TEST(test_close_ok))
