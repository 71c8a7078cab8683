/* Unit tests for partitions (storage/part.c) on the real file system. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/storage.h"
#include "support/partcheck.h"
#include "test.h"

static td_topic_config small_cfg(void)
{
    td_topic_config c;
    td_topic_config_init(&c);
    c.segment_bytes = 4096;
    return c;
}

/* Encodes one batch of `count` events numbered from `first`, value "event-<n>", timestamps
 * ts0 + n. */
static void make_batch(td_buf *b, int first, int count, int64_t ts0)
{
    td_event ev[64];
    char vals[64][32];
    for (int i = 0; i < count; i++) {
        snprintf(vals[i], sizeof(vals[i]), "event-%d", first + i);
        ev[i] = (td_event){.key = NULL, .value = vals[i], .value_len = strlen(vals[i]),
                           .timestamp_ms = ts0 + first + i};
    }
    td_batch_encode_opts o;
    batch_encode_opts_init(&o);
    td_buf_reset(b);
    ASSERT_OK(batch_encode(b, &o, ev, (size_t)count));
}

static int64_t append_n(td_part *p, int first, int count, int64_t ts0)
{
    td_buf b;
    td_buf_init(&b);
    make_batch(&b, first, count, ts0);
    td_append_result r;
    ASSERT_OK(part_append(p, b.p, b.len, ts0 + first, &r));
    ASSERT_EQ(r.base_offset, first);
    ASSERT_EQ(r.last_offset, first + count - 1);
    ASSERT_OK(part_wait_durable(p, r.end_offset));
    td_buf_free(&b);
    return r.end_offset;
}

/* Reads every record from `from` to the high watermark, checking values are event-<offset>. */
static int64_t read_all_check(td_part *p, int64_t from)
{
    return check_part_values(p, from, "event-");
}

static void test_append_read_roll_reopen(void)
{
    char *dir = test_tmpdir("part");
    td_topic_config c = small_cfg();
    td_part *p;
    ASSERT_OK(part_open(td_io_posix(), dir, "t/0", &c, &p));
    ASSERT_EQ(part_high_watermark(p), 0);
    int64_t end = 0;
    for (int i = 0; i < 200; i++)
        end = append_n(p, (int)end, 1 + i % 7, 1000000);
    ASSERT_EQ(part_log_end(p), end);
    ASSERT_EQ(part_high_watermark(p), end);
    td_part_stats st;
    part_stats(p, &st);
    ASSERT(st.segments > 3); /* 4 KiB segments rolled */
    ASSERT_EQ(read_all_check(p, 0), end);
    ASSERT_EQ(read_all_check(p, end / 2), end - end / 2);
    td_range r;
    ASSERT_EQ(part_read(p, end + 1, 100, &r), TD_ERANGE);
    ASSERT_EQ(part_read(p, end, 100, &r), TD_EEND);
    part_close(p);
    /* Clean reopen. */
    ASSERT_OK(part_open(td_io_posix(), dir, "t/0", &c, &p));
    ASSERT_EQ(part_log_end(p), end);
    ASSERT_EQ(read_all_check(p, 0), end);
    int64_t end2 = append_n(p, (int)end, 5, 1000000);
    ASSERT_EQ(end2, end + 5);
    part_close(p);
    /* Unclean reopen: remove the clean marker and the active index files. */
    char path[1024];
    snprintf(path, sizeof(path), "%s/.clean", dir);
    ASSERT_OK(unlink(path));
    ASSERT_OK(part_open(td_io_posix(), dir, "t/0", &c, &p));
    ASSERT_EQ(part_log_end(p), end2);
    ASSERT_EQ(read_all_check(p, 0), end2);
    part_close(p);
    test_rmrf(dir);
}

static char logged[8192];
static void sink(int level, const char *line, void *arg)
{
    (void)level;
    (void)arg;
    size_t n = strlen(logged);
    snprintf(logged + n, sizeof(logged) - n, "%s\n", line);
}

static void append_bytes_to(const char *path, const void *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_APPEND);
    ASSERT(fd >= 0);
    ASSERT_EQ(write(fd, p, n), (ssize_t)n);
    close(fd);
}

static void test_torn_tail_truncated(void)
{
    char *dir = test_tmpdir("torn");
    td_topic_config c;
    td_topic_config_init(&c);
    td_part *p;
    ASSERT_OK(part_open(td_io_posix(), dir, "t/0", &c, &p));
    int64_t end = 0;
    for (int i = 0; i < 10; i++)
        end = append_n(p, (int)end, 3, 5000);
    part_close(p);
    char path[1024];
    snprintf(path, sizeof(path), "%s/.clean", dir);
    unlink(path);
    /* Half a batch at the end of the log. */
    td_buf b;
    td_buf_init(&b);
    make_batch(&b, (int)end, 4, 5000);
    batch_set_base_offset(b.p, end);
    snprintf(path, sizeof(path), "%s/%020d.log", dir, 0);
    struct stat st0;
    ASSERT_OK(stat(path, &st0));
    append_bytes_to(path, b.p, b.len / 2);
    logged[0] = 0;
    td_log_set_sink(sink, NULL);
    ASSERT_OK(part_open(td_io_posix(), dir, "t/0", &c, &p));
    td_log_set_sink(NULL, NULL);
    ASSERT_CONTAINS(logged, "truncating");
    ASSERT_CONTAINS(logged, "00000000000000000000.log");
    ASSERT_EQ(part_log_end(p), end);
    ASSERT_EQ(read_all_check(p, 0), end);
    struct stat st1;
    ASSERT_OK(stat(path, &st1));
    ASSERT_EQ(st1.st_size, st0.st_size);
    /* Writable after recovery. */
    ASSERT_EQ(append_n(p, (int)end, 2, 5000), end + 2);
    part_close(p);
    td_buf_free(&b);
    test_rmrf(dir);
}

static void test_corrupt_sealed_goes_offline(void)
{
    char *dir = test_tmpdir("corrupt");
    char *dir2 = test_tmpdir("healthy");
    td_topic_config c = small_cfg();
    td_part *p, *q;
    ASSERT_OK(part_open(td_io_posix(), dir, "t/0", &c, &p));
    ASSERT_OK(part_open(td_io_posix(), dir2, "t/1", &c, &q));
    int64_t end = 0;
    for (int i = 0; i < 100; i++) {
        end = append_n(p, (int)end, 4, 1);
        append_n(q, i * 4, 4, 1);
    }
    /* The scrub passes over healthy sealed segments. */
    int64_t checked = 0;
    ASSERT_OK(part_scrub_step(p, 1 << 30, &checked));
    ASSERT(checked > 4096);
    part_close(p);
    /* Flip a byte in the middle of the first (sealed) segment: inside a record of a batch
     * that is not the first. */
    char path[1024];
    snprintf(path, sizeof(path), "%s/%020d.log", dir, 0);
    int fd = open(path, O_RDWR);
    uint8_t byte;
    ASSERT_EQ(pread(fd, &byte, 1, 2000), 1);
    byte ^= 0xff;
    ASSERT_EQ(pwrite(fd, &byte, 1, 2000), 1);
    close(fd);
    /* With intact indexes the open does not read that far: the scrub finds it. */
    logged[0] = 0;
    td_log_set_sink(sink, NULL);
    ASSERT_OK(part_open(td_io_posix(), dir, "t/0", &c, &p));
    if (!part_offline(p)) {
        int rc = part_scrub_step(p, 1 << 30, &checked);
        ASSERT_EQ(rc, TD_ECORRUPT);
    }
    td_log_set_sink(NULL, NULL);
    ASSERT(part_offline(p) != NULL);
    ASSERT_CONTAINS(part_offline(p), "00000000000000000000.log");
    ASSERT_CONTAINS(part_offline(p), "position");
    td_range r;
    ASSERT_EQ(part_read(p, 0, 100, &r), TD_EOFFLINE);
    td_buf b;
    td_buf_init(&b);
    make_batch(&b, 0, 1, 1);
    td_append_result ar;
    ASSERT_EQ(part_append(p, b.p, b.len, 1, &ar), TD_EOFFLINE);
    part_close(p);
    /* Without its index the rebuild finds the corruption at open. */
    snprintf(path, sizeof(path), "%s/%020d.index", dir, 0);
    ASSERT_OK(unlink(path));
    ASSERT_OK(part_open(td_io_posix(), dir, "t/0", &c, &p));
    ASSERT(part_offline(p) != NULL);
    ASSERT_CONTAINS(part_offline(p), "corrupt batch in");
    part_close(p);
    /* The other partition is untouched. */
    ASSERT(part_offline(q) == NULL);
    ASSERT_EQ(read_all_check(q, 0), 400);
    part_close(q);
    td_buf_free(&b);
    test_rmrf(dir);
    test_rmrf(dir2);
}

static void test_index_rebuild(void)
{
    char *dir = test_tmpdir("idx");
    td_topic_config c = small_cfg();
    td_part *p;
    ASSERT_OK(part_open(td_io_posix(), dir, "t/0", &c, &p));
    int64_t end = 0;
    for (int i = 0; i < 100; i++)
        end = append_n(p, (int)end, 3, 1);
    part_close(p);
    /* Damage: truncate one index to a partial entry, fill another with garbage. */
    char path[1024];
    snprintf(path, sizeof(path), "%s/%020d.index", dir, 0);
    ASSERT_OK(truncate(path, 5));
    td_part_stats st;
    ASSERT_OK(part_open(td_io_posix(), dir, "t/0", &c, &p));
    part_stats(p, &st);
    ASSERT(!st.offline);
    ASSERT_EQ(read_all_check(p, 0), end);
    part_close(p);
    /* The rebuilt index was written back. */
    struct stat sb;
    ASSERT_OK(stat(path, &sb));
    ASSERT(sb.st_size >= 8 && sb.st_size % 8 == 0);
    test_rmrf(dir);
}

static void test_time_lookup_and_max(void)
{
    char *dir = test_tmpdir("time");
    td_topic_config c = small_cfg();
    td_part *p;
    ASSERT_OK(part_open(td_io_posix(), dir, "t/0", &c, &p));
    /* Event n has timestamp 1000 + n. */
    int64_t end = 0;
    for (int i = 0; i < 150; i++)
        end = append_n(p, (int)end, 1 + i % 5, 1000);
    for (int64_t t = 990; t <= 1000 + end + 5; t += 7) {
        int64_t off;
        ASSERT_OK(part_offset_for_time(p, t, &off));
        int64_t want = t <= 1000 ? 0 : t - 1000;
        if (want > end)
            want = end;
        ASSERT_EQ(off, want);
    }
    int64_t ts, off;
    ASSERT_OK(part_max_timestamp(p, &ts, &off));
    ASSERT_EQ(ts, 1000 + end - 1);
    ASSERT_EQ(off, end - 1);
    part_close(p);
    test_rmrf(dir);
}

static void test_retention(void)
{
    char *dir = test_tmpdir("ret");
    td_topic_config c = small_cfg();
    td_part *p;
    ASSERT_OK(part_open(td_io_posix(), dir, "t/0", &c, &p));
    int64_t end = 0;
    for (int i = 0; i < 300; i++)
        end = append_n(p, (int)end, 2, 1000);
    td_part_stats st;
    part_stats(p, &st);
    int32_t segs = st.segments;
    /* By bytes: keep at least 8 KiB, deleting whole segments. */
    c.retention_bytes = 8192;
    part_set_config(p, &c);
    int deleted;
    ASSERT_OK(part_enforce_retention(p, 2000, &deleted));
    ASSERT(deleted > 0);
    part_stats(p, &st);
    ASSERT_EQ(st.segments, segs - deleted);
    ASSERT_GE(st.size_bytes, 8192);
    ASSERT_LE(st.size_bytes, 8192 + 4096);
    ASSERT(st.log_start_offset > 0);
    ASSERT_EQ(read_all_check(p, st.log_start_offset), end - st.log_start_offset);
    td_range r;
    ASSERT_EQ(part_read(p, 0, 100, &r), TD_ERANGE);
    /* By records: keep at least 60. */
    c.retention_bytes = -1;
    c.retention_records = 60;
    part_set_config(p, &c);
    ASSERT_OK(part_enforce_retention(p, 2000, &deleted));
    ASSERT(deleted > 0);
    part_stats(p, &st);
    ASSERT_GE(end - st.log_start_offset, 60);
    ASSERT_LE(end - st.log_start_offset, 60 + 4096 / 20);
    c.retention_records = -1;
    /* By time: everything is older than now - 1 s, the active segment rolls and goes too. */
    c.retention_ms = 1000;
    part_set_config(p, &c);
    ASSERT_OK(part_enforce_retention(p, 1000000, &deleted));
    part_stats(p, &st);
    ASSERT_EQ(st.segments, 1);
    ASSERT_EQ(st.log_start_offset, end);
    ASSERT_EQ(st.high_watermark, end);
    ASSERT_EQ(append_n(p, (int)end, 1, 1000), end + 1);
    part_close(p);
    ASSERT_OK(part_open(td_io_posix(), dir, "t/0", &c, &p));
    ASSERT_EQ(part_log_start(p), end);
    ASSERT_EQ(part_log_end(p), end + 1);
    part_close(p);
    test_rmrf(dir);
}

static void test_segment_ms_and_limits(void)
{
    char *dir = test_tmpdir("segms");
    td_topic_config c;
    td_topic_config_init(&c);
    c.segment_ms = 1000;
    c.max_message_bytes = 200;
    td_part *p;
    ASSERT_OK(part_open(td_io_posix(), dir, "t/0", &c, &p));
    td_buf b;
    td_buf_init(&b);
    make_batch(&b, 0, 1, 0);
    td_append_result r;
    ASSERT_OK(part_append(p, b.p, b.len, td_wall_ms(), &r));
    ASSERT_OK(part_append(p, b.p, b.len, td_wall_ms() + 5000, &r));
    td_part_stats st;
    part_stats(p, &st);
    ASSERT_EQ(st.segments, 2);
    make_batch(&b, 0, 20, 0);
    ASSERT_EQ(part_append(p, b.p, b.len, 0, &r), TD_ETOOBIG);
    b.p[30] ^= 1; /* break the CRC */
    ASSERT_EQ(part_append(p, b.p, b.len, 0, &r), TD_ECRC);
    part_close(p);
    td_buf_free(&b);
    test_rmrf(dir);
}

/* An io table that counts fsyncs and can fail writes with ENOSPC after a byte budget. */
static int fsyncs;
static int64_t space_left = -1;
static td_io counting;
static int cnt_fsync(const td_io *io, int fd)
{
    __atomic_add_fetch(&fsyncs, 1, __ATOMIC_RELAXED);
    return td_io_posix()->fsync(io, fd);
}
static ssize_t cnt_pwrite(const td_io *io, int fd, const void *buf, size_t n, int64_t off)
{
    if (space_left >= 0) {
        if ((int64_t)n > space_left) {
            /* a partial write, then no space */
            if (space_left > 0) {
                ssize_t w = td_io_posix()->pwrite(io, fd, buf, (size_t)space_left, off);
                space_left = 0;
                return w;
            }
            return -ENOSPC;
        }
        space_left -= (int64_t)n;
    }
    return td_io_posix()->pwrite(io, fd, buf, n, off);
}

struct prod {
    td_part *p;
    int n;
    int64_t *offsets;
};

static void *producer(void *arg)
{
    struct prod *pr = arg;
    td_buf b;
    td_buf_init(&b);
    for (int i = 0; i < pr->n; i++) {
        make_batch(&b, 0, 1, 0);
        td_append_result r;
        ASSERT_OK(part_append(pr->p, b.p, b.len, 0, &r));
        ASSERT_OK(part_wait_durable(pr->p, r.end_offset));
        ASSERT(part_high_watermark(pr->p) >= r.end_offset);
        pr->offsets[i] = r.base_offset;
    }
    td_buf_free(&b);
    return NULL;
}

static void test_group_commit(void)
{
    char *dir = test_tmpdir("gc");
    counting = *td_io_posix();
    counting.fsync = cnt_fsync;
    counting.pwrite = cnt_pwrite;
    td_topic_config c;
    td_topic_config_init(&c);
    td_part *p;
    ASSERT_OK(part_open(&counting, dir, "t/0", &c, &p));
    enum { T = 16, N = 40 };
    pthread_t th[T];
    struct prod pr[T];
    static int64_t offs[T][N];
    fsyncs = 0;
    for (int t = 0; t < T; t++) {
        pr[t] = (struct prod){p, N, offs[t]};
        pthread_create(&th[t], NULL, producer, &pr[t]);
    }
    for (int t = 0; t < T; t++)
        pthread_join(th[t], NULL);
    /* Every offset exactly once. */
    static char seen[T * N];
    memset(seen, 0, sizeof(seen));
    for (int t = 0; t < T; t++)
        for (int i = 0; i < N; i++) {
            ASSERT(offs[t][i] >= 0 && offs[t][i] < T * N);
            ASSERT(!seen[offs[t][i]]);
            seen[offs[t][i]] = 1;
        }
    fprintf(stderr, "%d appends, %d fsyncs\n", T * N, fsyncs);
    ASSERT(fsyncs < T * N / 2);
    ASSERT_EQ(part_high_watermark(p), T * N);
    part_close(p);
    test_rmrf(dir);
}

static void test_enospc_leaves_nothing(void)
{
    char *dir = test_tmpdir("nospc");
    counting = *td_io_posix();
    counting.pwrite = cnt_pwrite;
    td_topic_config c;
    td_topic_config_init(&c);
    td_part *p;
    ASSERT_OK(part_open(&counting, dir, "t/0", &c, &p));
    int64_t end = append_n(p, 0, 3, 1);
    td_buf b;
    td_buf_init(&b);
    make_batch(&b, (int)end, 5, 1);
    space_left = 20; /* the next write gets 20 bytes in, then ENOSPC */
    td_append_result r;
    ASSERT_EQ(part_append(p, b.p, b.len, 1, &r), -ENOSPC);
    ASSERT_EQ(part_log_end(p), end);
    ASSERT(part_offline(p) == NULL);
    space_left = -1; /* space returns */
    make_batch(&b, (int)end, 5, 1);
    ASSERT_OK(part_append(p, b.p, b.len, 1, &r));
    ASSERT_OK(part_wait_durable(p, r.end_offset));
    ASSERT_EQ(r.base_offset, end);
    ASSERT_EQ(read_all_check(p, 0), end + 5);
    part_close(p);
    /* And nothing torn on disk either. */
    ASSERT_OK(part_open(td_io_posix(), dir, "t/0", &c, &p));
    ASSERT_EQ(read_all_check(p, 0), end + 5);
    part_close(p);
    td_buf_free(&b);
    test_rmrf(dir);
}

/* A durability waiter registered before its partition goes offline outside a sync (here a
 * failed append whose undo fails too) is answered, with an error, by the next sync: it used to
 * wait forever, holding the connection whose reply it was to release. */
static int fail_truncate;
static int trunc_fails(const td_io *io, int fd, int64_t len)
{
    return fail_truncate ? -EIO : td_io_posix()->ftruncate(io, fd, len);
}
static void waiter_cb(void *arg, int rc)
{
    int *got = arg;
    got[0]++;
    got[1] = rc;
}

static void test_offline_answers_waiters(void)
{
    char *dir = test_tmpdir("offline-waiters");
    counting = *td_io_posix();
    counting.pwrite = cnt_pwrite;
    counting.ftruncate = trunc_fails;
    td_topic_config c;
    td_topic_config_init(&c); /* fsync=always: an append is durable only after a sync */
    td_part *p;
    ASSERT_OK(part_open(&counting, dir, "t/0", &c, &p));
    td_buf b;
    td_buf_init(&b);
    make_batch(&b, 0, 3, 1);
    td_append_result r;
    ASSERT_OK(part_append(p, b.p, b.len, 1, &r));
    int got[2] = {0, 0};
    ASSERT_OK(part_on_durable(p, r.end_offset, waiter_cb, got));
    ASSERT_EQ(got[0], 0);
    /* The next append fails and cannot be cut back: the partition goes offline. */
    space_left = 0;
    fail_truncate = 1;
    make_batch(&b, 3, 2, 1);
    logged[0] = 0;
    td_log_set_sink(sink, NULL);
    ASSERT(part_append(p, b.p, b.len, 1, &r) != 0);
    td_log_set_sink(NULL, NULL);
    ASSERT(part_offline(p) != NULL);
    space_left = -1;
    fail_truncate = 0;
    /* The flusher's sync: the waiter gets the partition's error, once. */
    ASSERT(part_sync(p) != 0);
    ASSERT_EQ(got[0], 1);
    ASSERT(got[1] != 0);
    ASSERT(part_sync(p) != 0);
    ASSERT_EQ(got[0], 1);
    part_close(p);
    td_buf_free(&b);
    test_rmrf(dir);
}

/* Readers and retention race with appenders: no crash, and what is read is right. */
static volatile int stop_flag;
static void *reader_thread(void *arg)
{
    td_part *p = arg;
    td_buf b;
    td_buf_init(&b);
    int loops = 0;
    while (!__atomic_load_n(&stop_flag, __ATOMIC_ACQUIRE) && loops++ < 100000) {
        int64_t ls = part_log_start(p);
        td_range r;
        int rc = part_read(p, ls, 4096, &r);
        if (rc == 0) {
            td_buf_reset(&b);
            ASSERT_OK(part_range_copy(&r, &b));
            /* A range is whole batches, each one intact, the first at first_offset. */
            td_batch_header h;
            ASSERT_OK(batch_header_parse(b.p, b.len, &h));
            ASSERT_EQ(h.base_offset, r.first_offset);
            size_t pos = 0;
            while (pos < b.len) {
                ASSERT_OK(batch_validate(b.p + pos, b.len - pos, true, 1 << 20, &h));
                pos += batch_total_size(&h);
            }
            ASSERT_EQ(pos, b.len);
            part_range_release(&r);
        } else {
            ASSERT(rc == TD_EEND || rc == TD_ERANGE);
        }
    }
    td_buf_free(&b);
    return NULL;
}

static void test_concurrent_read_retention(void)
{
    char *dir = test_tmpdir("race");
    td_topic_config c = small_cfg();
    c.fsync_policy = TD_FSYNC_NONE;
    c.retention_records = 50;
    td_part *p;
    ASSERT_OK(part_open(td_io_posix(), dir, "t/0", &c, &p));
    stop_flag = 0;
    pthread_t rt[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&rt[i], NULL, reader_thread, p);
    int64_t end = 0;
    for (int i = 0; i < 500; i++) {
        end = append_n(p, (int)end, 2, 1);
        if (i % 20 == 0)
            ASSERT_OK(part_enforce_retention(p, 2, NULL));
    }
    __atomic_store_n(&stop_flag, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 2; i++)
        pthread_join(rt[i], NULL);
    ASSERT_EQ(read_all_check(p, part_log_start(p)), end - part_log_start(p));
    part_close(p);
    test_rmrf(dir);
}


/* An idempotent producer's batch: `count` events "event-<seq>" from producer pid, epoch 0. */
static int append_idem(td_part *p, int64_t pid, int32_t seq, int count, td_append_result *r)
{
    td_event ev[16];
    char vals[16][32];
    for (int i = 0; i < count; i++) {
        snprintf(vals[i], sizeof(vals[i]), "event-%d", seq + i);
        ev[i] = (td_event){.value = vals[i], .value_len = strlen(vals[i]),
                           .timestamp_ms = 1000000 + seq + i};
    }
    td_batch_encode_opts o;
    batch_encode_opts_init(&o);
    o.producer_id = pid;
    o.producer_epoch = 0;
    o.base_sequence = seq;
    td_buf b;
    td_buf_init(&b);
    ASSERT_OK(batch_encode(&b, &o, ev, (size_t)count));
    int rc = part_append(p, b.p, b.len, 1000000, r);
    td_buf_free(&b);
    return rc;
}

static int count_snapshots(const char *dir, int64_t *newest)
{
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "ls %s | grep -c '\\.snapshot$'", dir);
    FILE *f = popen(cmd, "r");
    int n = -1;
    ASSERT(f && fscanf(f, "%d", &n) == 1);
    pclose(f);
    if (newest) {
        snprintf(cmd, sizeof(cmd), "ls %s | grep '\\.snapshot$' | sort | tail -1", dir);
        f = popen(cmd, "r");
        long long v = -1;
        if (fscanf(f, "%lld", &v) != 1)
            v = -1;
        pclose(f);
        *newest = v;
    }
    return n;
}

/* Duplicates are answered with the original offsets and not written; the state survives clean
 * and unclean reopens (from snapshots, from batch headers, or both), a snapshot beyond a cut
 * tail is dropped, and a damaged one is ignored. Sequences equal offsets here (producer 9 is
 * the only writer), so the log itself shows that nothing was stored twice. */
static void test_idempotent_producer_state(void)
{
    char *dir = test_tmpdir("idem");
    td_topic_config c = small_cfg();
    td_part *p;
    ASSERT_OK(part_open(td_io_posix(), dir, "t/0", &c, &p));
    td_append_result r;
    int32_t seq = 0;
    for (int i = 0; i < 300; i++) {
        int n = 1 + i % 4;
        ASSERT_OK(append_idem(p, 9, seq, n, &r));
        ASSERT(!r.duplicate);
        ASSERT_EQ(r.base_offset, seq);
        seq += n;
    }
    /* The last batch again: a duplicate with its offsets; nothing written. */
    int64_t end = part_log_end(p);
    ASSERT_OK(append_idem(p, 9, seq - 4, 4, &r));
    ASSERT(r.duplicate);
    ASSERT_EQ(r.base_offset, seq - 4);
    ASSERT_EQ(r.last_offset, seq - 1);
    ASSERT_EQ(r.end_offset, seq);
    ASSERT_EQ(part_log_end(p), end);
    ASSERT_EQ(append_idem(p, 9, seq + 1, 1, &r), TD_ESEQUENCE);
    ASSERT_CONTAINS(td_last_error(), "after");
    ASSERT_EQ(part_log_end(p), end);
    /* Segments rolled and left snapshots, two at most. */
    td_part_stats st;
    part_stats(p, &st);
    ASSERT(st.segments > 3);
    ASSERT_EQ(st.producers, 1);
    ASSERT_EQ(count_snapshots(dir, NULL), 2);
    part_close(p);
    int64_t newest;
    ASSERT_EQ(count_snapshots(dir, &newest), 2);
    ASSERT_EQ(newest, end); /* written at close */

    /* Clean reopen: from the close's snapshot. */
    ASSERT_OK(part_open(td_io_posix(), dir, "t/0", &c, &p));
    ASSERT_OK(append_idem(p, 9, seq - 4, 4, &r));
    ASSERT(r.duplicate && r.base_offset == seq - 4);
    int16_t epoch;
    int32_t last_seq;
    int64_t last_off;
    ASSERT_OK(part_producer(p, 9, &epoch, &last_seq, &last_off));
    ASSERT_EQ(epoch, 0);
    ASSERT_EQ(last_seq, seq - 1);
    ASSERT_EQ(last_off, seq - 1);
    ASSERT_EQ(part_producer(p, 10, &epoch, &last_seq, &last_off), TD_ENOTFOUND);
    ASSERT_OK(append_idem(p, 9, seq, 2, &r));
    seq += 2;
    part_close(p);

    /* Unclean, with every snapshot gone: the whole log's headers rebuild the state. */
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "rm -f %s/*.snapshot %s/.clean", dir, dir);
    ASSERT_OK(system(cmd));
    ASSERT_OK(part_open(td_io_posix(), dir, "t/0", &c, &p));
    ASSERT_OK(append_idem(p, 9, seq - 2, 2, &r));
    ASSERT(r.duplicate && r.base_offset == seq - 2);
    ASSERT_EQ(append_idem(p, 9, seq - 3, 1, &r), TD_ESEQUENCE); /* inside a batch */
    part_close(p);

    /* A damaged newest snapshot is ignored: an older one (or none) and the headers serve. */
    ASSERT_EQ(count_snapshots(dir, &newest), 1);
    snprintf(cmd, sizeof(cmd), "printf 'garbage' > %s/%020lld.snapshot", dir, (long long)newest);
    ASSERT_OK(system(cmd));
    logged[0] = 0;
    td_log_set_sink(sink, NULL);
    ASSERT_OK(part_open(td_io_posix(), dir, "t/0", &c, &p));
    td_log_set_sink(NULL, NULL);
    ASSERT_CONTAINS(logged, "ignoring");
    ASSERT_OK(append_idem(p, 9, seq - 2, 2, &r));
    ASSERT(r.duplicate);
    part_close(p);

    /* A snapshot beyond the log end (its tail was cut by recovery) is removed, not trusted. */
    snprintf(cmd, sizeof(cmd), "cp %s/%020lld.snapshot %s/%020lld.snapshot", dir,
             (long long)newest, dir, (long long)newest + 1000);
    ASSERT_OK(system(cmd));
    logged[0] = 0;
    td_log_set_sink(sink, NULL);
    ASSERT_OK(part_open(td_io_posix(), dir, "t/0", &c, &p));
    td_log_set_sink(NULL, NULL);
    ASSERT_CONTAINS(logged, "beyond the log end");
    ASSERT_OK(append_idem(p, 9, seq, 1, &r));
    ASSERT(!r.duplicate && r.base_offset == seq);
    seq++;
    /* Expiry forgets idle producers; a forgotten producer may start anywhere. */
    ASSERT_EQ(part_expire_producers(p, 0), 0u);
    ASSERT_EQ(part_expire_producers(p, INT64_MAX), 1u);
    ASSERT_OK(append_idem(p, 9, seq + 50, 1, &r));
    ASSERT_EQ(r.base_offset, seq);
    part_close(p);
    test_rmrf(dir);
}

/* Copies the files of directory `from` into the new directory `to`: what a crash of the
 * process would leave (the page cache survives it), to recover from without closing `from`. */
static void copy_dir(const char *from, const char *to)
{
    ASSERT_OK(mkdir(to, 0755));
    DIR *d = opendir(from);
    ASSERT(d != NULL);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' && (!de->d_name[1] || de->d_name[1] == '.'))
            continue;
        char a[1024], b[1024], buf[65536];
        snprintf(a, sizeof(a), "%s/%s", from, de->d_name);
        snprintf(b, sizeof(b), "%s/%s", to, de->d_name);
        int in = open(a, O_RDONLY), out = open(b, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        ASSERT(in >= 0 && out >= 0);
        ssize_t n;
        while ((n = read(in, buf, sizeof(buf))) > 0)
            ASSERT_EQ(write(out, buf, (size_t)n), n);
        close(in);
        close(out);
    }
    closedir(d);
}

static bool file_exists(const char *dir, const char *name)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

static int64_t recovery_point(const char *dir)
{
    char path[1024], text[32] = {0};
    snprintf(path, sizeof(path), "%s/recovery-point", dir);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    ASSERT(read(fd, text, sizeof(text) - 1) > 0);
    close(fd);
    return strtoll(text, NULL, 10);
}

/*
 * A roll does not wait for the rolled segment's fsync: the next sync pays that seal (fsync and
 * index files) and moves the recovery point. A crash before it leaves segments at or above the
 * recovery point to be recovered like the active one: an intact one is sealed at open; one that
 * lost its tail is cut, and the segments after it are removed, so the log stays contiguous.
 */
static void test_roll_owes_its_seal(void)
{
    char *dir = test_tmpdir("owed");
    td_topic_config c = small_cfg();
    c.fsync_policy = TD_FSYNC_NONE;
    td_part *p;
    ASSERT_OK(part_open(td_io_posix(), dir, "t/0", &c, &p));
    ASSERT_EQ(recovery_point(dir), -1); /* written at the first roll, before it owes a seal */
    int64_t end = 0;
    td_part_stats st;
    do {
        end = append_n(p, (int)end, 5, 1);
        part_stats(p, &st);
    } while (st.segments < 3);
    char name[64];
    snprintf(name, sizeof(name), "%020d.index", 0);
    ASSERT(!file_exists(dir, name)); /* owed */
    int64_t since = -1;
    ASSERT(part_seals_owed(p, &since));
    ASSERT(since > 0 && since <= td_mono_ms());
    ASSERT(part_needs_sync(p));
    ASSERT_EQ(recovery_point(dir), 0);
    /* Two crash images: one intact, one where segment 0 lost its last bytes. */
    char *intact = test_tmpdir("owed-intact"), *torn = test_tmpdir("owed-torn");
    ASSERT_OK(rmdir(intact));
    ASSERT_OK(rmdir(torn));
    copy_dir(dir, intact);
    copy_dir(dir, torn);
    char path[1024];
    snprintf(path, sizeof(path), "%s/%020d.log", torn, 0);
    struct stat sb;
    ASSERT_OK(stat(path, &sb));
    ASSERT_OK(truncate(path, sb.st_size - 10));
    /* The sync pays both seals, oldest first, and moves the recovery point to the active
     * segment. */
    ASSERT_OK(part_sync(p));
    ASSERT(!part_seals_owed(p, &since));
    ASSERT(file_exists(dir, name));
    int64_t active_base = recovery_point(dir);
    ASSERT(active_base > 0);
    snprintf(name, sizeof(name), "%020lld.log", (long long)active_base);
    ASSERT(file_exists(dir, name));
    part_close(p);

    /* Intact: every event is there, and both rolled segments are sealed at open. */
    ASSERT_OK(part_open(td_io_posix(), intact, "t/0", &c, &p));
    ASSERT(part_offline(p) == NULL);
    ASSERT_EQ(part_log_end(p), end);
    ASSERT_EQ(read_all_check(p, 0), end);
    part_stats(p, &st);
    ASSERT_EQ(st.segments, 3);
    snprintf(name, sizeof(name), "%020d.index", 0);
    ASSERT(file_exists(intact, name));
    ASSERT_EQ(recovery_point(intact), active_base);
    part_close(p);

    /* Torn: segment 0 is cut to its last whole batch, the two after it are removed. */
    logged[0] = 0;
    td_log_set_sink(sink, NULL);
    ASSERT_OK(part_open(td_io_posix(), torn, "t/0", &c, &p));
    td_log_set_sink(NULL, NULL);
    ASSERT(part_offline(p) == NULL);
    ASSERT_CONTAINS(logged, "truncating");
    ASSERT_CONTAINS(logged, "followed records lost in a crash");
    part_stats(p, &st);
    ASSERT_EQ(st.segments, 1);
    int64_t kept = part_log_end(p);
    ASSERT(kept > 0 && kept < active_base);
    ASSERT_EQ(kept % 5, 0); /* whole batches of 5 */
    ASSERT_EQ(read_all_check(p, 0), kept);
    snprintf(name, sizeof(name), "%020lld.log", (long long)active_base);
    ASSERT(!file_exists(torn, name));
    ASSERT_EQ(recovery_point(torn), 0);
    /* It goes on from there, and reopens cleanly. */
    ASSERT_EQ(append_n(p, (int)kept, 5, 1), kept + 5);
    part_close(p);
    ASSERT_OK(part_open(td_io_posix(), torn, "t/0", &c, &p));
    ASSERT_EQ(read_all_check(p, 0), kept + 5);
    part_close(p);
    test_rmrf(dir);
    test_rmrf(intact);
    test_rmrf(torn);
}

/* The stream-nodes file: storage keeps what the front end writes, byte for byte, across a
 * reopen; missing, it is TD_ENOTFOUND. */
static void test_nodes_file(void)
{
    char *dir = test_tmpdir("nodes");
    td_topic_config c = small_cfg();
    td_part *p;
    ASSERT_OK(part_open(td_io_posix(), dir, "t/0", &c, &p));
    uint8_t *b;
    size_t n;
    ASSERT_EQ(part_nodes_read(p, &b, &n), TD_ENOTFOUND);
    ASSERT_OK(part_nodes_append(p, "abc", 3, false));
    ASSERT_OK(part_nodes_append(p, "defg", 4, true));
    ASSERT_OK(part_nodes_append(p, NULL, 0, true)); /* an fsync only */
    part_close(p);
    ASSERT_OK(part_open(td_io_posix(), dir, "t/0", &c, &p));
    ASSERT_OK(part_nodes_read(p, &b, &n));
    ASSERT_EQ(n, 7);
    ASSERT_MEM_EQ(b, "abcdefg", 7);
    free(b);
    ASSERT_OK(part_nodes_rewrite(p, "xy", 2));
    ASSERT_OK(part_nodes_read(p, &b, &n));
    ASSERT_EQ(n, 2);
    ASSERT_MEM_EQ(b, "xy", 2);
    free(b);
    part_close(p);
    test_rmrf(dir);
}

/* An offset between the high watermark and the log end (appended, not yet durable) is read as
 * nothing yet, as Kafka reads it; only past the log end is out of range. */
static void test_read_between_hw_and_log_end(void)
{
    char *dir = test_tmpdir("hwend");
    td_topic_config c;
    td_topic_config_init(&c); /* fsync=always: the high watermark waits for the fsync */
    td_part *p;
    ASSERT_OK(part_open(td_io_posix(), dir, "t/0", &c, &p));
    ASSERT_EQ(append_n(p, 0, 2, 1000), 2);
    td_buf b;
    td_buf_init(&b);
    make_batch(&b, 2, 3, 1000);
    td_append_result r;
    ASSERT_OK(part_append(p, b.p, b.len, 1002, &r)); /* not waited for */
    td_buf_free(&b);
    ASSERT_EQ(part_log_end(p), 5);
    ASSERT_EQ(part_high_watermark(p), 2);
    td_range rg;
    for (int64_t off = 2; off <= 5; off++)
        ASSERT_EQ(part_read(p, off, 1 << 20, &rg), TD_EEND);
    ASSERT_EQ(part_read(p, 6, 1 << 20, &rg), TD_ERANGE);
    ASSERT_OK(part_read(p, 1, 1 << 20, &rg)); /* below the high watermark: as before */
    ASSERT_EQ(rg.next_offset, 2);
    part_range_release(&rg);
    ASSERT_OK(part_wait_durable(p, r.end_offset));
    ASSERT_OK(part_read(p, 3, 1 << 20, &rg));
    ASSERT_EQ(rg.next_offset, 5);
    part_range_release(&rg);
    part_close(p);
    test_rmrf(dir);
}

TEST_MAIN(TEST(test_nodes_file), TEST(test_append_read_roll_reopen),
          TEST(test_torn_tail_truncated),
          TEST(test_corrupt_sealed_goes_offline), TEST(test_index_rebuild),
          TEST(test_time_lookup_and_max), TEST(test_retention), TEST(test_segment_ms_and_limits),
          TEST(test_group_commit), TEST(test_enospc_leaves_nothing),
          TEST(test_concurrent_read_retention), TEST(test_idempotent_producer_state),
          TEST(test_roll_owes_its_seal), TEST(test_offline_answers_waiters),
          TEST(test_read_between_hw_and_log_end))
