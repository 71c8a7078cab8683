/* Unit tests for what the embedded iterator (broker/iter.c "Transactions") reads of Kafka
 * transactions: committed data only by default (below the last stable offset, without aborted
 * transactions' records), everything with TD_READ_UNCOMMITTED, the latest offset of each,
 * an open transaction's events once it commits, aborted batches interleaved with committed
 * ones across the iterator's refills, a key's iterator, and broker_part_visible_runs. The
 * batches are appended through the broker's partition calls as Kafka's produce does, and the
 * markers through storage, as the transaction coordinator does. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "storage/batch.h"
#include "storage/storage.h"
#include "test.h"

typedef struct txpart {
    td_part *p;
    int32_t seq[8]; /* next sequence per producer id 1000..1007 */
} txpart;

/* Appends `count` records of value size vlen, each keyed `key` (NULL: none), from producer pid
 * (-1: a plain batch), transactional or not; returns the base offset. */
static int64_t put_sized(txpart *tp, int64_t pid, int count, bool txn, const char *key, size_t vlen)
{
    static char value[4096];
    memset(value, 'v', sizeof(value));
    td_event ev[16];
    ASSERT(count <= 16 && vlen <= sizeof(value));
    for (int i = 0; i < count; i++)
        ev[i] = (td_event){.key = key,
                           .key_len = key ? strlen(key) : 0,
                           .value = value,
                           .value_len = vlen,
                           .timestamp_ms = td_wall_ms()};
    td_batch_encode_opts o;
    batch_encode_opts_init(&o);
    if (pid >= 0) {
        o.producer_id = pid;
        o.producer_epoch = 0;
        o.base_sequence = tp->seq[pid - 1000];
        o.transactional = txn;
        tp->seq[pid - 1000] += count;
    }
    td_buf b;
    td_buf_init(&b);
    ASSERT_OK(batch_encode(&b, &o, ev, (size_t)count));
    broker_append_result res;
    ASSERT_OK(broker_part_append_checked(tp->p, b.p, b.len, td_wall_ms(), &res));
    ASSERT_OK(broker_part_wait_durable(tp->p, res.end_offset));
    td_buf_free(&b);
    return res.base_offset;
}

static int64_t put(txpart *tp, int64_t pid, int count, bool txn)
{
    return put_sized(tp, pid, count, txn, NULL, 1);
}

/* A COMMIT or ABORT marker of pid; its offset. */
static int64_t marker(txpart *tp, int64_t pid, bool commit)
{
    td_append_result r;
    ASSERT_OK(part_append_marker(tp->p, pid, 0, commit, 0, td_wall_ms(), &r));
    ASSERT_OK(broker_part_wait_durable(tp->p, r.end_offset));
    return r.base_offset;
}

/* Reads it until td_iter_next gives 0, into offs (at most max); how many. */
static size_t drain(td_iter *it, int64_t *offs, size_t max)
{
    td_event ev;
    size_t n = 0;
    int rc;
    while ((rc = td_iter_next(it, &ev)) == 1) {
        ASSERT(n < max);
        offs[n++] = ev.offset;
    }
    ASSERT_EQ(rc, 0);
    return n;
}

static void expect_offsets(const int64_t *got, size_t n, const int64_t *want, size_t nwant)
{
    ASSERT_EQ(n, nwant);
    for (size_t i = 0; i < n; i++)
        ASSERT_EQ(got[i], want[i]);
}

#define WANT(it, ...)                                                                              \
    do {                                                                                           \
        const int64_t want_[] = {__VA_ARGS__};                                                     \
        int64_t got_[64];                                                                          \
        size_t n_ = drain(it, got_, 64);                                                           \
        expect_offsets(got_, n_, want_, sizeof(want_) / sizeof(want_[0]));                         \
    } while (0)

#define WANT_NONE(it)                                                                              \
    do {                                                                                           \
        int64_t got_[1];                                                                           \
        ASSERT_EQ(drain(it, got_, 0), 0);                                                          \
    } while (0)

/*
 * offsets: 0-1 plain, 2-3 txn of 1000, 4-5 txn of 1001, 6 COMMIT 1000, 7 ABORT 1001, 8 plain,
 * 9-10 txn of 1002 (open), 11 plain; then 12 COMMIT 1002.
 */
static void test_committed_and_uncommitted(void)
{
    char *dir = test_tmpdir("iter-txn");
    td_engine *e = test_engine_open(dir);
    ASSERT_OK(td_topic_create(e, "t", 1, NULL, 0));
    td_topic_ref *ref;
    ASSERT_OK(broker_topic_acquire(e, "t", &ref));
    txpart tp = {.p = broker_topic_part(ref, 0)};
    ASSERT_EQ(put(&tp, -1, 2, false), 0);
    ASSERT_EQ(put(&tp, 1000, 2, true), 2);
    ASSERT_EQ(put(&tp, 1001, 2, true), 4);
    ASSERT_EQ(marker(&tp, 1000, true), 6);
    ASSERT_EQ(marker(&tp, 1001, false), 7);
    ASSERT_EQ(put(&tp, -1, 1, false), 8);
    ASSERT_EQ(put(&tp, 1002, 2, true), 9);
    ASSERT_EQ(put(&tp, -1, 1, false), 11);
    ASSERT_EQ(broker_part_high_watermark(tp.p), 12);
    ASSERT_EQ(broker_part_last_stable(tp.p), 9);

    int64_t off;
    ASSERT_OK(td_offset_for(e, "t", 0, TD_OFFSET_LAST_STABLE, &off));
    ASSERT_EQ(off, 9);
    ASSERT_OK(td_offset_for(e, "t", 0, TD_OFFSET_LATEST, &off));
    ASSERT_EQ(off, 12);

    /* Committed (the default): the aborted transaction's records are skipped, and the read
     * stops at the open transaction, with the position there. */
    td_iter *c;
    ASSERT_OK(td_iter_open(e, "t", 0, TD_OFFSET_EARLIEST, &c));
    WANT(c, 0, 1, 2, 3, 8);
    ASSERT_EQ(td_iter_position(c), 9);

    /* Uncommitted: all but the markers, up to the high watermark. */
    td_iter *u;
    ASSERT_OK(td_iter_open(e, "t", 0, TD_OFFSET_EARLIEST, &u));
    ASSERT_OK(td_iter_set_isolation(u, TD_READ_UNCOMMITTED));
    WANT(u, 0, 1, 2, 3, 4, 5, 8, 9, 10, 11);
    ASSERT_EQ(td_iter_position(u), 12);
    td_iter_close(u);
    ASSERT_EQ(td_iter_set_isolation(c, 7), TD_EINVAL);
    /* A change between reads applies from the position on. */
    td_event ev;
    ASSERT_OK(td_iter_open(e, "t", 0, 3, &u));
    ASSERT_OK(td_iter_set_isolation(u, TD_READ_UNCOMMITTED));
    ASSERT_EQ(td_iter_next(u, &ev), 1);
    ASSERT_EQ(ev.offset, 3);
    ASSERT_OK(td_iter_set_isolation(u, TD_READ_COMMITTED));
    WANT(u, 8);
    ASSERT_OK(td_iter_set_isolation(u, TD_READ_UNCOMMITTED));
    WANT(u, 9, 10, 11);
    td_iter_close(u);

    /* The latest of each: the last stable offset, or the high watermark. */
    td_iter *lc, *lu, *ls;
    ASSERT_OK(td_iter_open(e, "t", 0, TD_OFFSET_LATEST, &lc));
    ASSERT_EQ(td_iter_position(lc), 9);
    ASSERT_OK(td_iter_open(e, "t", 0, TD_OFFSET_LATEST, &lu));
    ASSERT_OK(td_iter_set_isolation(lu, TD_READ_UNCOMMITTED));
    ASSERT_EQ(td_iter_position(lu), 12);
    ASSERT_OK(td_iter_open(e, "t", 0, TD_OFFSET_LAST_STABLE, &ls));
    ASSERT_EQ(td_iter_position(ls), 9);
    td_iter_close(ls);
    /* An offset inside the open transaction may be opened; nothing comes from it yet. */
    td_iter *mid;
    ASSERT_OK(td_iter_open(e, "t", 0, 10, &mid));
    WANT_NONE(mid);

    /* The runs of offsets readers of committed data see. */
    broker_run *runs;
    size_t nruns;
    ASSERT_OK(broker_part_visible_runs(tp.p, 0, INT64_MAX, 0, &runs, &nruns));
    ASSERT_EQ(nruns, 2);
    ASSERT_EQ(runs[0].from, 0);
    ASSERT_EQ(runs[0].to, 4);
    ASSERT_EQ(runs[1].from, 8);
    ASSERT_EQ(runs[1].to, 9);
    free(runs);
    ASSERT_OK(broker_part_visible_runs(tp.p, 1, 9, 2, &runs, &nruns)); /* at most 2 records */
    ASSERT_EQ(nruns, 1);
    ASSERT_EQ(runs[0].from, 1);
    ASSERT_EQ(runs[0].to, 3);
    free(runs);
    ASSERT_OK(broker_part_visible_runs(tp.p, 4, 8, 0, &runs, &nruns));
    ASSERT_EQ(nruns, 0);
    ASSERT(runs == NULL);

    /* The open transaction commits: the iterators that waited read it, then what followed. */
    ASSERT_EQ(marker(&tp, 1002, true), 12);
    ASSERT_EQ(broker_part_last_stable(tp.p), 13);
    WANT(c, 9, 10, 11);
    ASSERT_EQ(td_iter_position(c), 13);
    WANT(lc, 9, 10, 11);
    WANT_NONE(lu);
    WANT(mid, 10, 11);
    ASSERT_OK(broker_part_visible_runs(tp.p, 0, INT64_MAX, 0, &runs, &nruns));
    ASSERT_EQ(nruns, 2);
    ASSERT_EQ(runs[1].from, 8);
    ASSERT_EQ(runs[1].to, 12);
    free(runs);
    td_iter_close(mid);
    td_iter_close(lu);
    td_iter_close(lc);
    td_iter_close(c);
    broker_topic_release(ref);
    td_engine_close(e);
    test_rmrf(dir);
}

/* Batches of an aborted transaction interleaved with another producer's committed ones, big
 * enough that the iterator reads them in several ranges (each with its own aborted list). */
static void test_interleaved_across_refills(void)
{
    char *dir = test_tmpdir("iter-txn-il");
    td_engine *e = test_engine_open(dir);
    ASSERT_OK(td_topic_create(e, "t", 1, NULL, 0));
    td_topic_ref *ref;
    ASSERT_OK(broker_topic_acquire(e, "t", &ref));
    txpart tp = {.p = broker_topic_part(ref, 0)};
    int64_t want[256];
    size_t nwant = 0;
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 20; i++) {
            put_sized(&tp, 1000, 4, true, NULL, 1000); /* aborted below */
            int64_t b = put_sized(&tp, 1001, 2, true, NULL, 1000);
            want[nwant++] = b;
            want[nwant++] = b + 1;
            int64_t pl = put_sized(&tp, -1, 1, false, NULL, 10);
            want[nwant++] = pl;
        }
        marker(&tp, 1000, false);
        marker(&tp, 1001, true);
    }
    ASSERT_EQ(broker_part_last_stable(tp.p), broker_part_high_watermark(tp.p));
    td_iter *it;
    ASSERT_OK(td_iter_open(e, "t", 0, TD_OFFSET_EARLIEST, &it));
    int64_t got[256];
    size_t n = drain(it, got, 256);
    expect_offsets(got, n, want, nwant);
    ASSERT_EQ(td_iter_position(it), broker_part_high_watermark(tp.p));
    td_iter_close(it);
    /* From the middle of the log, and the runs agree with the iterator. */
    ASSERT_OK(td_iter_open(e, "t", 0, want[40], &it));
    n = drain(it, got, 256);
    expect_offsets(got, n, want + 40, nwant - 40);
    td_iter_close(it);
    broker_run *runs;
    size_t nruns, k = 0;
    ASSERT_OK(broker_part_visible_runs(tp.p, 0, INT64_MAX, 0, &runs, &nruns));
    for (size_t i = 0; i < nruns; i++)
        for (int64_t o = runs[i].from; o < runs[i].to; o++) {
            ASSERT(k < nwant);
            ASSERT_EQ(o, want[k++]);
        }
    ASSERT_EQ(k, nwant);
    free(runs);
    broker_topic_release(ref);
    td_engine_close(e);
    test_rmrf(dir);
}

/* A key's iterator (td_iter_open_key) drops the aborted transaction's events of the key and
 * stops at the open one's, until it commits. */
static void test_key_iterator(void)
{
    char *dir = test_tmpdir("iter-txn-key");
    td_engine *e = test_engine_open(dir);
    td_config_entry cfg[] = {{"key.index", "true"}};
    ASSERT_OK(td_topic_create(e, "k", 1, cfg, 1));
    td_topic_ref *ref;
    ASSERT_OK(broker_topic_acquire(e, "k", &ref));
    txpart tp = {.p = broker_topic_part(ref, 0)};
    ASSERT_EQ(put_sized(&tp, -1, 1, false, "a", 1), 0);
    ASSERT_EQ(put_sized(&tp, 1000, 2, true, "a", 1), 1); /* aborted */
    ASSERT_EQ(put_sized(&tp, -1, 1, false, "b", 1), 3);
    ASSERT_EQ(marker(&tp, 1000, false), 4);
    ASSERT_EQ(put_sized(&tp, -1, 1, false, "a", 1), 5);
    ASSERT_EQ(put_sized(&tp, 1001, 1, true, "a", 1), 6); /* open */
    ASSERT_EQ(put_sized(&tp, -1, 1, false, "a", 1), 7);

    td_iter *c, *u;
    ASSERT_OK(td_iter_open_key(e, "k", "a", 1, 0, TD_OFFSET_EARLIEST, &c));
    WANT(c, 0, 5);
    ASSERT_OK(td_iter_open_key(e, "k", "a", 1, 0, TD_OFFSET_EARLIEST, &u));
    ASSERT_OK(td_iter_set_isolation(u, TD_READ_UNCOMMITTED));
    WANT(u, 0, 1, 2, 5, 6, 7);
    td_iter_close(u);
    ASSERT_EQ(marker(&tp, 1001, true), 8);
    WANT(c, 6, 7);
    td_iter_close(c);
    broker_topic_release(ref);
    td_engine_close(e);
    test_rmrf(dir);
}

TEST_MAIN(TEST(test_committed_and_uncommitted), TEST(test_interleaved_across_refills),
          TEST(test_key_iterator))
