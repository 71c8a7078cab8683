/* Unit tests for the disk reserve (storage/reserve.c) and what partitions do on a full disk:
 * deleting records and retention use the reserve, appends wait for it, owed seals back off. The
 * file system is the real one under a table that gives it a capacity (bytes of the regular files
 * under the test directory), so that "full" is exact. */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/storage.h"
#include "support/partcheck.h"
#include "test.h"

/* ---------------------------------------------------------------------------------------------
 * A capacity-limited file system
 */
static char *root;         /* what is counted */
static int64_t capacity;   /* bytes; -1: unlimited */
static bool fail_index;    /* index files cannot be created (ENOSPC) */
static char fd_path[1024][512];
static char synced_paths[64][512];
static int nsynced;

static int64_t walk_total;
static int walk_cb(const char *path, const struct stat *st, int type, struct FTW *f)
{
    (void)path;
    (void)f;
    if (type == FTW_F)
        walk_total += st->st_size;
    return 0;
}

static int64_t used(void)
{
    walk_total = 0;
    nftw(root, walk_cb, 16, FTW_PHYS);
    return walk_total;
}

/* Whether growing a file by `by` bytes fits. */
static bool fits(int64_t by)
{
    return capacity < 0 || by <= 0 || used() + by <= capacity;
}

static int q_open(const td_io *io, const char *path, int flags, int mode)
{
    size_t n = strlen(path);
    if (fail_index && n > 10 && strcmp(path + n - 10, ".index.tmp") == 0)
        return -ENOSPC;
    int fd = td_io_posix()->open(io, path, flags, mode);
    if (fd >= 0 && fd < 1024)
        snprintf(fd_path[fd], sizeof(fd_path[fd]), "%s", path);
    return fd;
}

static ssize_t q_pwrite(const td_io *io, int fd, const void *buf, size_t n, int64_t off)
{
    struct stat st;
    fstat(fd, &st);
    if (!fits(off + (int64_t)n - st.st_size))
        return -ENOSPC;
    return td_io_posix()->pwrite(io, fd, buf, n, off);
}

static int q_ftruncate(const td_io *io, int fd, int64_t len)
{
    struct stat st;
    fstat(fd, &st);
    if (!fits(len - st.st_size))
        return -ENOSPC;
    return td_io_posix()->ftruncate(io, fd, len);
}

static int q_fsync(const td_io *io, int fd)
{
    if (fd < 1024 && nsynced < 64)
        snprintf(synced_paths[nsynced++], sizeof(synced_paths[0]), "%s", fd_path[fd]);
    return td_io_posix()->fsync(io, fd);
}

static bool was_synced(const char *suffix)
{
    for (int i = 0; i < nsynced; i++) {
        size_t a = strlen(synced_paths[i]), b = strlen(suffix);
        if (a >= b && strcmp(synced_paths[i] + a - b, suffix) == 0)
            return true;
    }
    return false;
}

static td_io quota;

static void quota_init(const char *dir, int64_t cap)
{
    quota = *td_io_posix();
    quota.open = q_open;
    quota.pwrite = q_pwrite;
    quota.ftruncate = q_ftruncate;
    quota.fsync = q_fsync;
    root = (char *)dir;
    capacity = cap;
    fail_index = false;
    nsynced = 0;
}

/* Writes a file of zeros that takes exactly what is left of the capacity. */
static void fill_rest(const char *name)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/%s", root, name);
    int64_t left = capacity - used();
    FILE *f = fopen(path, "ab");
    ASSERT(f);
    for (int64_t i = 0; i < left; i++)
        fputc(0, f);
    fclose(f);
    ASSERT_EQ(used(), capacity);
}

static int64_t file_size(const char *dir, const char *name)
{
    char path[1200];
    int n = snprintf(path, sizeof(path), "%s/%s", dir, name);
    ASSERT(n > 0 && (size_t)n < sizeof(path));
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

/* One batch of `count` events "event-<n>", each with a key of `size` bytes to take space. */
static void make_batch(td_buf *b, int first, int count, size_t size)
{
    td_event ev[16];
    static char vals[16][32], pad[4096];
    memset(pad, 'k', sizeof(pad));
    for (int i = 0; i < count; i++) {
        snprintf(vals[i], sizeof(vals[i]), "event-%d", first + i);
        ev[i] = (td_event){.key = pad, .key_len = size, .value = vals[i],
                           .value_len = strlen(vals[i]), .timestamp_ms = 1000 + first + i};
    }
    td_batch_encode_opts o;
    batch_encode_opts_init(&o);
    td_buf_reset(b);
    ASSERT_OK(batch_encode(b, &o, ev, (size_t)count));
}

/* Appends one event; its result (0 or the error). */
static int append1(td_part *p, int i, size_t size)
{
    td_buf b;
    td_buf_init(&b);
    make_batch(&b, i, 1, size);
    td_append_result r;
    int rc = part_append(p, b.p, b.len, 1000 + i, &r);
    if (rc == 0) {
        ASSERT_EQ(r.base_offset, i);
        rc = part_wait_durable(p, r.end_offset);
    }
    td_buf_free(&b);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Tests
 */
static void test_reserve_sizes(void)
{
    char *dir = test_tmpdir("reserve");
    quota_init(dir, -1);
    td_reserve *r;
    ASSERT_OK(reserve_open(&quota, dir, 300000, &r));
    ASSERT_EQ(file_size(dir, "reserve"), 300000);
    ASSERT(reserve_whole(r));
    ASSERT_OK(reserve_check(r));
    ASSERT_OK(reserve_release(r, "a test"));
    ASSERT_EQ(file_size(dir, "reserve"), 0);
    ASSERT(!reserve_whole(r));
    ASSERT_EQ(reserve_check(r), -ENOSPC);
    ASSERT_CONTAINS(td_last_error(), "appends are refused until the disk reserve");
    ASSERT_EQ(reserve_release(r, "again"), -ENOSPC); /* nothing left to give */
    ASSERT_OK(reserve_restore(r));
    ASSERT(reserve_whole(r));
    ASSERT_EQ(file_size(dir, "reserve"), 300000);
    reserve_close(r);
    /* Configured smaller: the file shrinks; < 0 keeps it as it is; 0 removes it. */
    ASSERT_OK(reserve_open(&quota, dir, 100000, &r));
    ASSERT_EQ(file_size(dir, "reserve"), 100000);
    reserve_close(r);
    ASSERT_OK(reserve_open(&quota, dir, -1, &r));
    ASSERT_EQ(file_size(dir, "reserve"), 100000);
    int64_t have, want;
    reserve_state(r, &have, &want);
    ASSERT_EQ(have, 100000);
    ASSERT_EQ(want, 100000);
    reserve_close(r);
    ASSERT_OK(reserve_open(&quota, dir, 0, &r));
    ASSERT_EQ(file_size(dir, "reserve"), -1);
    ASSERT(reserve_whole(r));
    ASSERT_EQ(reserve_release(r, "none"), -ENOSPC);
    reserve_close(r);
    ASSERT(reserve_whole(NULL));
    test_rmrf(dir);
}

/* A disk too full for the reserve: the open works, the reserve is partial and not whole, and
 * it becomes whole once space is freed. */
static void test_reserve_on_a_full_disk(void)
{
    char *dir = test_tmpdir("reserve-full");
    quota_init(dir, 1 << 20);
    char filler[600];
    snprintf(filler, sizeof(filler), "%s/filler", dir);
    FILE *f = fopen(filler, "wb");
    for (int i = 0; i < (1 << 20) - 300000; i++)
        fputc(0, f);
    fclose(f);
    td_reserve *r;
    ASSERT_OK(reserve_open(&quota, dir, 512 << 10, &r));
    ASSERT(!reserve_whole(r));
    int64_t have, want;
    reserve_state(r, &have, &want);
    ASSERT_EQ(want, 512 << 10);
    ASSERT_EQ(have, 256 << 10); /* whole steps of 256 KiB */
    ASSERT_EQ(reserve_restore(r), -ENOSPC);
    unlink(filler);
    ASSERT_OK(reserve_restore(r));
    ASSERT(reserve_whole(r));
    ASSERT_EQ(file_size(dir, "reserve"), 512 << 10);
    reserve_close(r);
    test_rmrf(dir);
}

/* DeleteRecords on a full disk: saving the log start needs a file, and the reserve gives the
 * space for it; the segments go, the reserve comes back whole, appends work again. */
static void test_delete_records_on_a_full_disk(void)
{
    char *dir = test_tmpdir("reserve-dr");
    char pdir[600];
    snprintf(pdir, sizeof(pdir), "%s/p", dir);
    quota_init(dir, 400000);
    td_reserve *r;
    ASSERT_OK(reserve_open(&quota, dir, 64 << 10, &r));
    td_topic_config c;
    td_topic_config_init(&c);
    c.segment_bytes = 16384;
    td_part *p;
    ASSERT_OK(part_open(&quota, pdir, "t/0", &c, &p));
    part_set_reserve(p, r);
    int i = 0, rc;
    while ((rc = append1(p, i, 1500)) == 0)
        i++;
    ASSERT_EQ(rc, -ENOSPC);
    ASSERT(i > 100);
    ASSERT_EQ(part_log_end(p), i);
    ASSERT(part_offline(p) == NULL);
    fill_rest("filler"); /* not a byte left */
    ASSERT_EQ(append1(p, i, 10), -ENOSPC);
    td_part_stats st;
    part_stats(p, &st);
    int32_t segs = st.segments;
    int64_t ls = -1;
    ASSERT_OK(part_delete_before(p, i, &ls));
    ASSERT_EQ(ls, i);
    part_stats(p, &st);
    ASSERT(st.segments < segs);
    ASSERT(reserve_whole(r));
    ASSERT_EQ(file_size(dir, "reserve"), 64 << 10);
    ASSERT_OK(append1(p, i, 1500));
    ASSERT_EQ(check_part_values(p, i, "event-"), 1);
    part_close(p);
    reserve_close(r);
    /* The start was saved: a reopen does not bring the records back. */
    quota_init(dir, -1);
    ASSERT_OK(part_open(&quota, pdir, "t/0", &c, &p));
    ASSERT_EQ(part_log_start(p), i);
    part_close(p);
    test_rmrf(dir);
}

/* The same without a reserve: the error says so, nothing is reported done. */
static void test_delete_records_full_without_reserve(void)
{
    char *dir = test_tmpdir("reserve-none");
    char pdir[600];
    snprintf(pdir, sizeof(pdir), "%s/p", dir);
    quota_init(dir, 200000);
    td_topic_config c;
    td_topic_config_init(&c);
    c.segment_bytes = 16384;
    td_part *p;
    ASSERT_OK(part_open(&quota, pdir, "t/0", &c, &p));
    int i = 0;
    while (append1(p, i, 1500) == 0)
        i++;
    fill_rest("filler");
    int64_t ls = -1;
    ASSERT_EQ(part_delete_before(p, i, &ls), -ENOSPC);
    ASSERT_EQ(ls, 0);
    ASSERT_EQ(part_log_start(p), 0);
    part_close(p);
    test_rmrf(dir);
}

/* While the reserve is released, appends are refused (its space is for freeing space); once it
 * is restored they go on, on the same partition. */
static void test_appends_wait_for_the_reserve(void)
{
    char *dir = test_tmpdir("reserve-wait");
    char pdir[600];
    snprintf(pdir, sizeof(pdir), "%s/p", dir);
    quota_init(dir, -1);
    td_reserve *r;
    ASSERT_OK(reserve_open(&quota, dir, 64 << 10, &r));
    td_topic_config c;
    td_topic_config_init(&c);
    td_part *p;
    ASSERT_OK(part_open(&quota, pdir, "t/0", &c, &p));
    part_set_reserve(p, r);
    ASSERT_OK(append1(p, 0, 100));
    ASSERT_OK(reserve_release(r, "a test"));
    ASSERT_EQ(append1(p, 1, 100), -ENOSPC);
    ASSERT_CONTAINS(td_last_error(), "disk reserve");
    ASSERT_EQ(part_log_end(p), 1);
    ASSERT_OK(reserve_restore(r));
    ASSERT_OK(append1(p, 1, 100));
    ASSERT_EQ(check_part_values(p, 0, "event-"), 2);
    part_close(p);
    reserve_close(r);
    test_rmrf(dir);
}

/* The .log files of a partition directory, sorted (zero-padded names sort by offset). */
static int list_logs(const char *dir, char names[][256], int max)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL && n < max) {
        size_t len = strlen(e->d_name);
        if (len > 4 && strcmp(e->d_name + len - 4, ".log") == 0)
            snprintf(names[n++], 256, "%s", e->d_name);
    }
    if (d)
        closedir(d);
    qsort(names, (size_t)n, 256, (int (*)(const void *, const void *))strcmp);
    return n;
}

/* Index files of rolled segments that cannot be written (a full disk): every rolled log is
 * still fsynced before an append under fsync=always is durable (not only the oldest), and the
 * index writes back off instead of being retried at every sync. */
static void test_owed_seals_on_a_full_disk(void)
{
    char *dir = test_tmpdir("reserve-seal");
    char pdir[600];
    snprintf(pdir, sizeof(pdir), "%s/p", dir);
    quota_init(dir, -1);
    td_topic_config c;
    td_topic_config_init(&c);
    c.segment_bytes = 4096;
    td_part *p;
    ASSERT_OK(part_open(&quota, pdir, "t/0", &c, &p));
    fail_index = true;
    int i = 0;
    td_part_stats st;
    td_buf b;
    td_buf_init(&b);
    do { /* three rolls before any sync (as the network server's appends do): three segments
          * owe their seals, their logs unsynced */
        make_batch(&b, i, 1, 1500);
        td_append_result r;
        ASSERT_OK(part_append(p, b.p, b.len, 1000 + i, &r));
        ASSERT_EQ(r.base_offset, i++);
        part_stats(p, &st);
    } while (st.segments < 4);
    td_buf_free(&b);
    nsynced = 0;
    ASSERT_OK(part_wait_durable(p, i));
    int64_t since;
    ASSERT(!part_seals_owed(p, &since)); /* backing off: nothing to do for a while */
    char logs[8][256];
    ASSERT_EQ(list_logs(pdir, logs, 8), 4);
    for (int k = 0; k < 3; k++) /* the sealed ones; the active one is synced anyway */
        ASSERT(was_synced(logs[k]));
    ASSERT_EQ(file_size(pdir, "00000000000000000000.index"), -1);
    fail_index = false;
    part_close(p); /* a last try at close, backing off or not */
    ASSERT(file_size(pdir, "00000000000000000000.index") > 0);
    ASSERT_OK(part_open(&quota, pdir, "t/0", &c, &p));
    ASSERT_EQ(check_part_values(p, 0, "event-"), i);
    part_close(p);
    test_rmrf(dir);
}

/* A broker stopped while the index files of rolled segments could not be written (a full
 * disk) opens again on the still full disk: the segments are recovered from their logs, their
 * seals stay owed, and are paid once space returns. */
static void test_open_on_a_full_disk_with_owed_seals(void)
{
    char *dir = test_tmpdir("reserve-reopen");
    char pdir[600];
    snprintf(pdir, sizeof(pdir), "%s/p", dir);
    quota_init(dir, -1);
    td_topic_config c;
    td_topic_config_init(&c);
    c.segment_bytes = 4096;
    td_part *p;
    ASSERT_OK(part_open(&quota, pdir, "t/0", &c, &p));
    fail_index = true;
    int i = 0;
    td_part_stats st;
    do {
        ASSERT_OK(append1(p, i++, 1500));
        part_stats(p, &st);
    } while (st.segments < 4);
    part_close(p); /* not clean: the seals are still owed */
    fail_index = false;
    ASSERT_EQ(file_size(pdir, "00000000000000000000.index"), -1);
    capacity = used(); /* not a byte left */
    ASSERT_OK(part_open(&quota, pdir, "t/0", &c, &p));
    ASSERT(part_offline(p) == NULL);
    ASSERT_EQ(check_part_values(p, 0, "event-"), i);
    int64_t since;
    ASSERT(part_seals_owed(p, &since));
    capacity = -1;
    ASSERT_OK(part_sync(p));
    ASSERT(!part_seals_owed(p, &since));
    ASSERT(file_size(pdir, "00000000000000000000.index") > 0);
    ASSERT_OK(append1(p, i, 100));
    part_close(p);
    ASSERT_OK(part_open(&quota, pdir, "t/0", &c, &p));
    ASSERT_EQ(check_part_values(p, 0, "event-"), i + 1);
    part_close(p);
    /* A sealed segment's index files lost, in a directory from before recovery-point files:
     * rebuilt at open, written once there is space. */
    char path[700];
    snprintf(path, sizeof(path), "%s/00000000000000000000.index", pdir);
    ASSERT_OK(unlink(path));
    snprintf(path, sizeof(path), "%s/recovery-point", pdir);
    ASSERT_OK(unlink(path));
    capacity = used();
    ASSERT_OK(part_open(&quota, pdir, "t/0", &c, &p));
    ASSERT_EQ(check_part_values(p, 0, "event-"), i + 1);
    ASSERT(part_seals_owed(p, &since));
    capacity = -1;
    ASSERT_OK(part_sync(p));
    ASSERT(!part_seals_owed(p, &since));
    ASSERT(file_size(pdir, "00000000000000000000.index") > 0);
    part_close(p);
    test_rmrf(dir);
}

TEST_MAIN(TEST(test_reserve_sizes), TEST(test_reserve_on_a_full_disk),
          TEST(test_delete_records_on_a_full_disk), TEST(test_delete_records_full_without_reserve),
          TEST(test_appends_wait_for_the_reserve), TEST(test_owed_seals_on_a_full_disk),
          TEST(test_open_on_a_full_disk_with_owed_seals))
