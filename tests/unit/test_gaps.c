/*
 * Unit tests for readers of a compacted log (docs/storage.md, "Log compaction"): gaps between
 * batches, offset deltas that skip inside a batch, batches with no records and segments whose
 * first batch begins above their base, as the cleaner leaves them. The logs are hand-made
 * (tests/support/gaplog.c), so these tests do not depend on the cleaner.
 */
#include <stdlib.h>
#include <unistd.h>

#include "storage/storage.h"
#include "support/gaplog.h"
#include "test.h"

static td_topic_config compact_cfg(void)
{
    td_topic_config c;
    td_topic_config_init(&c);
    c.cleanup_policy = TD_CLEANUP_COMPACT;
    return c;
}

/* The offsets of the records read from `from` with part_read and the batch reader (as Kafka
 * fetch and td_iter read), into got[]; returns how many. */
static size_t read_offsets(td_part *p, int64_t from, int64_t *got, size_t cap)
{
    size_t n = 0;
    td_buf b;
    td_buf_init(&b);
    td_batch_reader rd;
    batch_reader_init(&rd);
    int64_t pos = from;
    for (int guard = 0; guard < 100; guard++) {
        td_range r;
        int rc = part_read(p, pos, 1 << 20, &r);
        if (rc == TD_EEND)
            break;
        ASSERT_OK(rc);
        ASSERT(r.next_offset > pos); /* every read moves forward: no stall in a gap */
        td_buf_reset(&b);
        ASSERT_OK(part_range_copy(&r, &b));
        part_range_release(&r);
        size_t at = 0;
        while (at < b.len) {
            td_batch_header h;
            ASSERT_OK(batch_header_parse(b.p + at, b.len - at, &h));
            ASSERT_OK(batch_reader_open(&rd, b.p + at, b.len - at, 1 << 20));
            td_record rec;
            int k;
            while ((k = batch_reader_next(&rd, &rec)) == 1)
                if (rec.offset >= pos && n < cap)
                    got[n++] = rec.offset;
            ASSERT_EQ(k, 0);
            at += batch_total_size(&h);
        }
        pos = r.next_offset;
    }
    batch_reader_free(&rd);
    td_buf_free(&b);
    return n;
}

static void test_batch_reader_gaps_and_empty(void)
{
    td_buf b;
    td_buf_init(&b);
    gap_rec v[] = {{2, "a", "x"}, {5, "b", NULL}};
    ASSERT_OK(gaplog_batch(&b, 100, 6, v, 2, 1000));
    /* A stored batch is valid (its CRC) but not a producer's: the deep check refuses it. */
    ASSERT_OK(batch_validate(b.p, b.len, false, 0, NULL));
    ASSERT_EQ(batch_validate(b.p, b.len, true, 1 << 20, NULL), TD_ECORRUPT);
    td_batch_reader rd;
    batch_reader_init(&rd);
    ASSERT_OK(batch_reader_open(&rd, b.p, b.len, 1 << 20));
    td_record rec;
    ASSERT_EQ(batch_reader_next(&rd, &rec), 1);
    ASSERT_EQ(rec.offset, 102);
    ASSERT_EQ(rec.timestamp, 1002);
    ASSERT_EQ(batch_reader_next(&rd, &rec), 1);
    ASSERT_EQ(rec.offset, 105);
    ASSERT(rec.value_null);
    ASSERT_EQ(batch_reader_next(&rd, &rec), 0);
    /* No records at all. */
    td_buf_reset(&b);
    ASSERT_OK(gaplog_batch(&b, 7, 3, NULL, 0, 1000));
    ASSERT_OK(batch_reader_open(&rd, b.p, b.len, 1 << 20));
    ASSERT_EQ(batch_reader_next(&rd, &rec), 0);
    /* Deltas that go backwards, repeat, or pass lastOffsetDelta are corrupt. */
    gap_rec back[] = {{3, "a", "x"}, {1, "b", "y"}};
    gap_rec same[] = {{1, "a", "x"}, {1, "b", "y"}};
    gap_rec past[] = {{1, "a", "x"}, {4, "b", "y"}};
    const gap_rec *bad[] = {back, same, past};
    for (int i = 0; i < 3; i++) {
        td_buf_reset(&b);
        ASSERT_OK(gaplog_batch(&b, 0, 3, bad[i], 2, 1000));
        ASSERT_OK(batch_reader_open(&rd, b.p, b.len, 1 << 20));
        ASSERT_EQ(batch_reader_next(&rd, &rec), 1);
        ASSERT_EQ(batch_reader_next(&rd, &rec), TD_ECORRUPT);
    }
    batch_reader_free(&rd);
    td_buf_free(&b);
}

static void test_part_reads_skip_gaps(void)
{
    char *dir = test_tmpdir("gaps");
    ASSERT_OK(gaplog_write_standard(dir));
    td_topic_config c = compact_cfg();
    td_part *p;
    ASSERT_OK(part_open(td_io_posix(), dir, "g/0", &c, &p));
    ASSERT(part_offline(p) == NULL);
    ASSERT_EQ(part_log_start(p), 0);
    ASSERT_EQ(part_log_end(p), GAPLOG_END);
    int64_t got[32];
    /* From every offset, including those inside gaps and in the empty batch, the reader gets
     * exactly the records at or after it. */
    for (int64_t from = 0; from < GAPLOG_END; from++) {
        size_t want = 0;
        for (size_t i = 0; i < GAPLOG_RECORDS; i++)
            want += gaplog_offsets[i] >= from;
        size_t n = read_offsets(p, from, got, 32);
        ASSERT_EQ(n, want);
        for (size_t i = 0; i < n; i++)
            ASSERT_EQ(got[i], gaplog_offsets[GAPLOG_RECORDS - want + i]);
    }
    /* Time lookups land on records. */
    int64_t off;
    ASSERT_OK(part_offset_for_time(p, GAPLOG_TS + 5, &off));
    ASSERT(off >= 5 && off <= 13);
    /* Appends go on after the log end, and a reopen (indexes now written) reads the same. */
    td_buf b;
    td_buf_init(&b);
    gap_rec nv[] = {{0, "k26", "v26"}};
    ASSERT_OK(gaplog_batch(&b, 0, 0, nv, 1, GAPLOG_TS + 26));
    td_append_result res;
    ASSERT_OK(part_append(p, b.p, b.len, GAPLOG_TS + 26, &res));
    ASSERT_EQ(res.base_offset, GAPLOG_END);
    ASSERT_OK(part_wait_durable(p, res.end_offset));
    part_close(p);
    ASSERT_OK(part_open(td_io_posix(), dir, "g/0", &c, &p));
    ASSERT(part_offline(p) == NULL);
    ASSERT_EQ(read_offsets(p, 15, got, 32), 3u);
    ASSERT_EQ(got[0], 22);
    ASSERT_EQ(got[2], GAPLOG_END);
    part_close(p);
    td_buf_free(&b);
    test_rmrf(dir);
}

static void test_iter_skips_gaps(void)
{
    char *dir = test_tmpdir("gapeng");
    td_engine *e;
    ASSERT_OK(td_engine_open(dir, NULL, &e));
    td_config_entry ce[] = {{"cleanup.policy", "compact"}};
    ASSERT_OK(td_topic_create(e, "g", 1, ce, 1));
    td_engine_close(e);
    char pdir[600];
    snprintf(pdir, sizeof(pdir), "%s/topics/g/0", dir);
    ASSERT_OK(gaplog_write_standard(pdir));
    ASSERT_OK(td_engine_open(dir, NULL, &e));
    for (int64_t from = 0; from < GAPLOG_END; from++) {
        td_iter *it;
        ASSERT_OK(td_iter_open(e, "g", 0, from, &it));
        size_t k = 0;
        while (k < GAPLOG_RECORDS && gaplog_offsets[k] < from)
            k++;
        td_event ev;
        int r;
        while ((r = td_iter_next(it, &ev)) == 1) {
            ASSERT(k < GAPLOG_RECORDS);
            ASSERT_EQ(ev.offset, gaplog_offsets[k]);
            char want[16];
            snprintf(want, sizeof(want), "k%lld", (long long)(ev.offset == 25 ? 1 : ev.offset));
            ASSERT_EQ(ev.key_len, strlen(want));
            ASSERT_MEM_EQ(ev.key, want, ev.key_len);
            ASSERT(ev.offset == 25 ? ev.value == NULL : ev.value != NULL);
            k++;
        }
        ASSERT_EQ(r, 0);
        ASSERT_EQ(k, (size_t)GAPLOG_RECORDS);
        ASSERT_EQ(td_iter_position(it), GAPLOG_END);
        td_iter_close(it);
    }
    td_engine_close(e);
    test_rmrf(dir);
}

static void test_count_and_list_records(void)
{
    char *dir = test_tmpdir("gapcount");
    ASSERT_OK(gaplog_write_standard(dir));
    td_topic_config c = compact_cfg();
    td_part *p;
    ASSERT_OK(part_open(td_io_posix(), dir, "g/0", &c, &p));
    ASSERT(part_has_gaps(p));
    /* Every range, against the offsets that hold records. */
    for (int64_t from = 0; from <= GAPLOG_END; from++)
        for (int64_t to = from; to <= GAPLOG_END + 3; to++) {
            int64_t want = 0, n;
            for (size_t i = 0; i < GAPLOG_RECORDS; i++)
                want += gaplog_offsets[i] >= from && gaplog_offsets[i] < to;
            ASSERT_OK(part_count_records(p, from, to, &n));
            ASSERT_EQ(n, want);
            int64_t *offs;
            size_t k;
            ASSERT_OK(part_record_offsets(p, from, to, 0, &offs, &k));
            ASSERT_EQ((int64_t)k, want);
            for (size_t i = 0, j = 0; i < GAPLOG_RECORDS; i++)
                if (gaplog_offsets[i] >= from && gaplog_offsets[i] < to)
                    ASSERT_EQ(offs[j++], gaplog_offsets[i]);
            free(offs);
            ASSERT_OK(part_record_offsets(p, from, to, 1, &offs, &k));
            ASSERT_EQ((int64_t)k, want ? 1 : 0);
            free(offs);
        }
    /* Not compacted: offset arithmetic. */
    c.cleanup_policy = TD_CLEANUP_DELETE;
    part_set_config(p, &c);
    ASSERT(!part_has_gaps(p));
    int64_t n;
    ASSERT_OK(part_count_records(p, 2, 20, &n));
    ASSERT_EQ(n, 18);
    part_close(p);
    test_rmrf(dir);
}

TEST_MAIN(TEST(test_batch_reader_gaps_and_empty), TEST(test_part_reads_skip_gaps),
          TEST(test_count_and_list_records), TEST(test_iter_skips_gaps))
