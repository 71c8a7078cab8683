/*
 * Unit tests for the leader epoch cache (storage/epochs.c): Kafka's LeaderEpochFileCacheTest
 * and LeaderEpochCheckpointFileWithFailureHandlerTest case for case, with Kafka's expected
 * values (each test names Kafka's; those needing Kafka's scheduler or log are left out), then
 * the checkpoint file: its exact text, every line of a valid file damaged, every prefix of one,
 * and a flush interrupted at each of its operations.
 *
 * Kafka's cache writes its checkpoint itself (at once after an assign, in the background after
 * a truncation); ours writes it on epochs_flush, which the ports call where Kafka's test reads
 * the file back. The lookups Kafka's tests use and epochs.h leaves out (previousEpoch,
 * previousEntry, nextEpoch, epochEntry) are a few lines over epochs_entries, below.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "storage/epochs.h"
#include "support/memio.h"
#include "test.h"

#define UNDEF TD_EPOCH_UNDEFINED
#define UNDEF_OFF TD_EPOCH_OFFSET_UNDEFINED

/* A cache on a fresh in-memory file system (as Kafka's tests use a fresh temporary file). */
typedef struct fixture {
    memio *m;
    td_epochs *c;
} fixture;

static fixture fx_open(void)
{
    fixture f = {memio_new(), NULL};
    ASSERT_OK(epochs_open(memio_table(f.m), "/p", &f.c));
    return f;
}

static void fx_close(fixture *f)
{
    epochs_close(f->c);
    memio_free(f->m);
}

/* The cache as Kafka's "new LeaderEpochFileCache(tp, checkpoint, ...)" on the same file. */
static td_epochs *reopen(fixture *f)
{
    td_epochs *c;
    ASSERT_OK(epochs_open(memio_table(f->m), "/p", &c));
    return c;
}

#define E(...) ((td_epoch_entry[]){__VA_ARGS__})
#define NE(...) (sizeof((td_epoch_entry[]){__VA_ARGS__}) / sizeof(td_epoch_entry))
/* Asserts the cache holds exactly the entries given: EXPECT_ENTRIES(c, {2, 6}, {3, 8}). */
#define EXPECT_ENTRIES(c, ...) expect_entries_at(__LINE__, c, E(__VA_ARGS__), NE(__VA_ARGS__))
#define EXPECT_EMPTY(c) expect_entries_at(__LINE__, c, NULL, 0)

static void expect_entries_at(int line, const td_epochs *c, const td_epoch_entry *want,
                              size_t nwant)
{
    size_t n;
    const td_epoch_entry *v = epochs_entries(c, &n);
    bool same = n == nwant;
    for (size_t i = 0; same && i < n; i++)
        same = v[i].epoch == want[i].epoch && v[i].start_offset == want[i].start_offset;
    if (same)
        return;
    fprintf(stderr, "line %d: the cache holds", line);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, " (%d, %lld)", (int)v[i].epoch, (long long)v[i].start_offset);
    fprintf(stderr, ", expected");
    for (size_t i = 0; i < nwant; i++)
        fprintf(stderr, " (%d, %lld)", (int)want[i].epoch, (long long)want[i].start_offset);
    TEST_FAIL_("entries differ");
}

/* Kafka's toTuple(cache.endOffsetFor(requested, leo)) == (epoch, offset). */
#define EXPECT_END(c, requested, leo, want_epoch, want_offset)                                     \
    do {                                                                                           \
        int32_t e_;                                                                                \
        int64_t o_;                                                                                \
        epochs_end_offset_for(c, requested, leo, &e_, &o_);                                        \
        ASSERT_EQ(e_, want_epoch);                                                                 \
        ASSERT_EQ(o_, want_offset);                                                                \
    } while (0)

/* Kafka's previousEpoch(): the epoch before the latest, -1 (empty) if none. */
static int32_t previous_epoch(const td_epochs *c)
{
    size_t n;
    const td_epoch_entry *v = epochs_entries(c, &n);
    return n >= 2 ? v[n - 2].epoch : -1;
}

/* Kafka's previousEntry(epoch) (lowerEntry): the last entry whose epoch is below `epoch`, NULL
 * if none; previousEpoch(epoch) is its epoch. */
static const td_epoch_entry *previous_entry(const td_epochs *c, int32_t epoch)
{
    size_t n;
    const td_epoch_entry *v = epochs_entries(c, &n), *found = NULL;
    for (size_t i = 0; i < n && v[i].epoch < epoch; i++)
        found = &v[i];
    return found;
}

static int32_t previous_epoch_of(const td_epochs *c, int32_t epoch)
{
    const td_epoch_entry *e = previous_entry(c, epoch);
    return e ? e->epoch : -1;
}

/* Kafka's nextEpoch(epoch) (higherKey): -1 (empty) if none. */
static int32_t next_epoch(const td_epochs *c, int32_t epoch)
{
    size_t n;
    const td_epoch_entry *v = epochs_entries(c, &n);
    for (size_t i = 0; i < n; i++)
        if (v[i].epoch > epoch)
            return v[i].epoch;
    return -1;
}

/* Kafka's epochEntry(epoch): the entry of that epoch, NULL if none. */
static const td_epoch_entry *epoch_entry(const td_epochs *c, int32_t epoch)
{
    size_t n;
    const td_epoch_entry *v = epochs_entries(c, &n);
    for (size_t i = 0; i < n; i++)
        if (v[i].epoch == epoch)
            return &v[i];
    return NULL;
}

/* The (2, 6), (3, 8), (4, 11) cache that many of Kafka's tests start from. */
static void assign_2_3_4(td_epochs *c)
{
    epochs_assign(c, 2, 6);
    epochs_assign(c, 3, 8);
    epochs_assign(c, 4, 11);
}

/* ---------------------------------------------------------------------------------------------
 * assign and endOffsetFor
 */

static void test_assign_and_end_offsets(void)
{
    fixture f = fx_open();
    td_epochs *c = f.c;
    /* shouldFetchLatestEpochOfEmptyCache */
    ASSERT_EQ(epochs_latest(c), UNDEF);
    /* shouldReturnUnsupportedIfNoEpochRecorded */
    EXPECT_END(c, 0, 0, UNDEF, UNDEF_OFF);
    /* shouldReturnUnsupportedIfNoEpochRecordedAndUndefinedEpochRequested */
    EXPECT_END(c, UNDEF, 73, UNDEF, UNDEF_OFF);
    /* shouldFetchEndOffsetOfEmptyCache */
    EXPECT_END(c, 7, 0, UNDEF, UNDEF_OFF);
    /* shouldClearEarliestOnEmptyCache, shouldClearLatestOnEmptyCache */
    epochs_truncate_from_start(c, 7);
    epochs_truncate_from_end(c, 7);
    EXPECT_EMPTY(c);

    /* shouldAddEpochAndMessageOffsetToCache */
    ASSERT(epochs_assign(c, 2, 10));
    ASSERT_EQ(epochs_latest(c), 2);
    EXPECT_ENTRIES(c, {2, 10});
    EXPECT_END(c, 2, 11, 2, 11);
    fx_close(&f);

    /* shouldReturnLogEndOffsetIfLatestEpochRequested */
    f = fx_open();
    epochs_assign(f.c, 2, 11);
    epochs_assign(f.c, 2, 12);
    EXPECT_END(f.c, 2, 14, 2, 14);
    fx_close(&f);

    /* shouldReturnUndefinedOffsetIfUndefinedEpochRequested */
    f = fx_open();
    epochs_assign(f.c, 2, 11);
    epochs_assign(f.c, 3, 12);
    EXPECT_END(f.c, UNDEF, 0, UNDEF, UNDEF_OFF);
    fx_close(&f);

    /* shouldReturnFirstEpochIfRequestedEpochLessThanFirstEpoch */
    f = fx_open();
    epochs_assign(f.c, 5, 11);
    epochs_assign(f.c, 6, 12);
    epochs_assign(f.c, 7, 13);
    EXPECT_END(f.c, 4, 0, 4, 11);
    fx_close(&f);

    /* shouldGetFirstOffsetOfSubsequentEpochWhenOffsetRequestedForPreviousEpoch */
    f = fx_open();
    epochs_assign(f.c, 1, 11);
    epochs_assign(f.c, 1, 12);
    epochs_assign(f.c, 2, 13);
    epochs_assign(f.c, 2, 14);
    epochs_assign(f.c, 3, 15);
    epochs_assign(f.c, 3, 16);
    EXPECT_END(f.c, 2, 17, 2, 15);
    fx_close(&f);

    /* shouldReturnNextAvailableEpochIfThereIsNoExactEpochForTheOneRequested */
    f = fx_open();
    epochs_assign(f.c, 0, 10);
    epochs_assign(f.c, 2, 13);
    epochs_assign(f.c, 4, 17);
    EXPECT_END(f.c, 1, 0, 0, 13);
    EXPECT_END(f.c, 2, 0, 2, 17);
    EXPECT_END(f.c, 3, 0, 2, 17);
    fx_close(&f);

    /* shouldReturnInvalidOffsetIfEpochIsRequestedWhichIsNotCurrentlyTracked */
    f = fx_open();
    epochs_assign(f.c, 2, 100);
    EXPECT_END(f.c, 3, 100, UNDEF, UNDEF_OFF);
    fx_close(&f);

    /* shouldSupportEpochsThatDoNotStartFromZero */
    f = fx_open();
    epochs_assign(f.c, 2, 6);
    EXPECT_END(f.c, 2, 7, 2, 7);
    EXPECT_ENTRIES(f.c, {2, 6});
    fx_close(&f);
}

static void test_assign_keeps_monotonic(void)
{
    /* shouldNotOverwriteLogEndOffsetForALeaderEpochOnceItHasBeenAssigned */
    fixture f = fx_open();
    ASSERT(epochs_assign(f.c, 2, 9));
    ASSERT(!epochs_assign(f.c, 2, 10));
    ASSERT(!epochs_assign(f.c, 2, 9)); /* the same again is no change either */
    EXPECT_ENTRIES(f.c, {2, 9});
    fx_close(&f);

    /* shouldEnforceMonotonicallyIncreasingStartOffsets */
    f = fx_open();
    epochs_assign(f.c, 2, 9);
    ASSERT(epochs_assign(f.c, 3, 9));
    EXPECT_ENTRIES(f.c, {3, 9});
    fx_close(&f);

    /* shouldNotOverwriteOffsetForALeaderEpochOnceItHasBeenAssigned */
    f = fx_open();
    epochs_assign(f.c, 2, 6);
    epochs_assign(f.c, 2, 10);
    ASSERT_EQ(epochs_entries(f.c, &(size_t){0})[0].start_offset, 6);
    fx_close(&f);

    /* shouldTruncateIfMatchingEpochButEarlierStartingOffset */
    f = fx_open();
    epochs_assign(f.c, 5, 11);
    epochs_assign(f.c, 6, 12);
    epochs_assign(f.c, 7, 13);
    ASSERT(epochs_assign(f.c, 7, 12)); /* epoch 7 starts at an earlier offset */
    EXPECT_END(f.c, 5, 0, 5, 12);
    EXPECT_END(f.c, 6, 0, 5, 12);
    EXPECT_ENTRIES(f.c, {5, 11}, {7, 12});
    fx_close(&f);

    /* shouldNotUpdateEpochAndStartOffsetIfItDidNotChange */
    f = fx_open();
    epochs_assign(f.c, 2, 6);
    epochs_assign(f.c, 2, 7);
    EXPECT_ENTRIES(f.c, {2, 6});
    fx_close(&f);

    /* shouldEnforceMonotonicallyIncreasingEpochs: an epoch in the past with a later offset
     * removes the later epochs. */
    f = fx_open();
    epochs_assign(f.c, 1, 5);
    epochs_assign(f.c, 2, 6);
    ASSERT(epochs_assign(f.c, 1, 7));
    ASSERT_EQ(epochs_latest(f.c), 1);
    EXPECT_END(f.c, 1, 8, 1, 8);
    EXPECT_END(f.c, 2, 8, UNDEF, UNDEF_OFF);
    EXPECT_ENTRIES(f.c, {1, 7});
    fx_close(&f);

    /* shouldEnforceOffsetsIncreaseMonotonically */
    f = fx_open();
    epochs_assign(f.c, 2, 6);
    epochs_assign(f.c, 3, 5);
    EXPECT_ENTRIES(f.c, {3, 5});
    fx_close(&f);

    /* Not Kafka's test: Kafka throws on a negative epoch or offset; here nothing changes. */
    f = fx_open();
    ASSERT(!epochs_assign(f.c, -1, 5));
    ASSERT(!epochs_assign(f.c, 1, -1));
    EXPECT_EMPTY(f.c);
    fx_close(&f);
}

/* shouldIncreaseAndTrackEpochsAsLeadersChangeManyTimes */
static void test_leaders_change_many_times(void)
{
    fixture f = fx_open();
    td_epochs *c = f.c;
    epochs_assign(c, 0, 0);
    epochs_assign(c, 1, 0);
    ASSERT_EQ(epochs_latest(c), 1);
    EXPECT_END(c, 1, 0, 1, 0);
    EXPECT_END(c, 0, 0, 0, 0);
    /* five messages written as epoch 1 */
    EXPECT_END(c, 1, 5, 1, 5);
    EXPECT_END(c, 0, 5, 0, 0);
    epochs_assign(c, 2, 5);
    EXPECT_END(c, 2, 10, 2, 10);
    EXPECT_END(c, 1, 10, 1, 5);
    EXPECT_END(c, 0, 10, 0, 0);
    fx_close(&f);
}

/* shouldIncreaseAndTrackEpochsAsFollowerReceivesManyMessages */
static void test_follower_receives_many_messages(void)
{
    fixture f = fx_open();
    td_epochs *c = f.c;
    epochs_assign(c, 0, 0);
    epochs_assign(c, 0, 1);
    epochs_assign(c, 0, 2);
    ASSERT_EQ(epochs_latest(c), 0);
    EXPECT_END(c, 0, 3, 0, 3);
    epochs_assign(c, 1, 3);
    epochs_assign(c, 1, 4);
    epochs_assign(c, 1, 5);
    ASSERT_EQ(epochs_latest(c), 1);
    EXPECT_END(c, 1, 6, 1, 6);
    epochs_assign(c, 2, 6);
    epochs_assign(c, 2, 7);
    epochs_assign(c, 2, 8);
    ASSERT_EQ(epochs_latest(c), 2);
    EXPECT_END(c, 2, 9, 2, 9);
    EXPECT_END(c, 0, 9, 0, 3);
    EXPECT_END(c, 1, 9, 1, 6);
    fx_close(&f);
}

/* ---------------------------------------------------------------------------------------------
 * truncateFromEnd and truncateFromStart
 */

static void test_truncate_from_end(void)
{
    /* shouldDropEntriesOnEpochBoundaryWhenRemovingLatestEntries */
    fixture f = fx_open();
    assign_2_3_4(f.c);
    epochs_truncate_from_end(f.c, 8);
    EXPECT_ENTRIES(f.c, {2, 6});
    fx_close(&f);

    /* shouldDropEntriesBetweenEpochBoundaryWhenRemovingNewest */
    f = fx_open();
    assign_2_3_4(f.c);
    epochs_truncate_from_end(f.c, 9);
    ASSERT_EQ(epochs_latest(f.c), 3);
    EXPECT_ENTRIES(f.c, {2, 6}, {3, 8});
    fx_close(&f);

    /* shouldNotResetEpochHistoryTailIfUndefinedPassed */
    f = fx_open();
    assign_2_3_4(f.c);
    epochs_truncate_from_end(f.c, UNDEF_OFF);
    EXPECT_ENTRIES(f.c, {2, 6}, {3, 8}, {4, 11});
    fx_close(&f);

    /* shouldClearAllEntries: Kafka's clearAndFlush is truncating from offset 0 here. */
    f = fx_open();
    assign_2_3_4(f.c);
    ASSERT_OK(epochs_flush(f.c));
    epochs_truncate_from_end(f.c, 0);
    EXPECT_EMPTY(f.c);
    ASSERT_OK(epochs_flush(f.c));
    td_epochs *c2 = reopen(&f);
    EXPECT_EMPTY(c2);
    epochs_close(c2);
    fx_close(&f);
}

static void test_truncate_from_start(void)
{
    /* shouldPreserveResetOffsetOnClearEarliestIfOneExists */
    fixture f = fx_open();
    assign_2_3_4(f.c);
    epochs_truncate_from_start(f.c, 8);
    EXPECT_ENTRIES(f.c, {3, 8}, {4, 11});
    fx_close(&f);

    /* shouldUpdateSavedOffsetWhenOffsetToClearToIsBetweenEpochs, and
     * shouldUpdateOffsetBetweenEpochBoundariesOnClearEarliest (the same case) */
    f = fx_open();
    assign_2_3_4(f.c);
    epochs_truncate_from_start(f.c, 9);
    EXPECT_ENTRIES(f.c, {3, 9}, {4, 11});
    fx_close(&f);

    /* shouldNotClearAnythingIfOffsetToEarly */
    f = fx_open();
    assign_2_3_4(f.c);
    epochs_truncate_from_start(f.c, 1);
    EXPECT_ENTRIES(f.c, {2, 6}, {3, 8}, {4, 11});
    fx_close(&f);

    /* shouldNotClearAnythingIfOffsetToFirstOffset */
    f = fx_open();
    assign_2_3_4(f.c);
    epochs_truncate_from_start(f.c, 6);
    EXPECT_ENTRIES(f.c, {2, 6}, {3, 8}, {4, 11});
    fx_close(&f);

    /* shouldRetainLatestEpochOnClearAllEarliest */
    f = fx_open();
    assign_2_3_4(f.c);
    epochs_truncate_from_start(f.c, 11);
    EXPECT_ENTRIES(f.c, {4, 11});
    fx_close(&f);

    /* shouldUpdateOffsetBetweenEpochBoundariesOnClearEarliest2 */
    f = fx_open();
    epochs_assign(f.c, 0, 0);
    epochs_assign(f.c, 1, 7);
    epochs_assign(f.c, 2, 10);
    epochs_truncate_from_start(f.c, 5);
    EXPECT_ENTRIES(f.c, {0, 5}, {1, 7}, {2, 10});
    fx_close(&f);

    /* shouldRetainLatestEpochOnClearAllEarliestAndUpdateItsOffset */
    f = fx_open();
    assign_2_3_4(f.c);
    epochs_truncate_from_start(f.c, 15);
    EXPECT_ENTRIES(f.c, {4, 15});
    fx_close(&f);

    /* shouldNotResetEpochHistoryHeadIfUndefinedPassed */
    f = fx_open();
    assign_2_3_4(f.c);
    epochs_truncate_from_start(f.c, UNDEF_OFF);
    EXPECT_ENTRIES(f.c, {2, 6}, {3, 8}, {4, 11});
    fx_close(&f);

    /* shouldWriteCheckpointOnTruncation */
    f = fx_open();
    assign_2_3_4(f.c);
    epochs_truncate_from_end(f.c, 11);
    epochs_truncate_from_start(f.c, 8);
    ASSERT_OK(epochs_flush(f.c));
    td_epochs *c2 = reopen(&f);
    EXPECT_ENTRIES(c2, {3, 8});
    epochs_close(c2);
    fx_close(&f);
}

/* ---------------------------------------------------------------------------------------------
 * Lookups
 */

static void test_lookups(void)
{
    /* testPreviousEpoch */
    fixture f = fx_open();
    td_epochs *c = f.c;
    ASSERT_EQ(previous_epoch(c), -1);
    epochs_assign(c, 2, 10);
    ASSERT_EQ(previous_epoch(c), -1);
    epochs_assign(c, 4, 15);
    ASSERT_EQ(previous_epoch(c), 2);
    epochs_assign(c, 10, 20);
    ASSERT_EQ(previous_epoch(c), 4);
    epochs_truncate_from_end(c, 18);
    ASSERT_EQ(previous_epoch(c), 2);
    fx_close(&f);

    /* testFindPreviousEpoch */
    f = fx_open();
    c = f.c;
    ASSERT_EQ(previous_epoch_of(c, 2), -1);
    epochs_assign(c, 2, 10);
    ASSERT_EQ(previous_epoch_of(c, 2), -1);
    epochs_assign(c, 4, 15);
    ASSERT_EQ(previous_epoch_of(c, 4), 2);
    epochs_assign(c, 10, 20);
    ASSERT_EQ(previous_epoch_of(c, 10), 4);
    epochs_truncate_from_end(c, 18);
    ASSERT_EQ(previous_epoch_of(c, epochs_latest(c)), 2);
    fx_close(&f);

    /* testFindPreviousEntry */
    f = fx_open();
    c = f.c;
    ASSERT(!previous_entry(c, 2));
    epochs_assign(c, 2, 10);
    ASSERT(!previous_entry(c, 2));
    epochs_assign(c, 4, 15);
    ASSERT_EQ(previous_entry(c, 4)->epoch, 2);
    ASSERT_EQ(previous_entry(c, 4)->start_offset, 10);
    epochs_assign(c, 10, 20);
    ASSERT_EQ(previous_entry(c, 10)->epoch, 4);
    ASSERT_EQ(previous_entry(c, 10)->start_offset, 15);
    epochs_truncate_from_end(c, 18);
    ASSERT_EQ(previous_entry(c, epochs_latest(c))->epoch, 2);
    ASSERT_EQ(previous_entry(c, epochs_latest(c))->start_offset, 10);
    fx_close(&f);

    /* testFindNextEpoch */
    f = fx_open();
    c = f.c;
    epochs_assign(c, 0, 0);
    epochs_assign(c, 1, 100);
    epochs_assign(c, 2, 200);
    ASSERT_EQ(next_epoch(c, -1), 0);
    ASSERT_EQ(next_epoch(c, 0), 1);
    ASSERT_EQ(next_epoch(c, 1), 2);
    ASSERT_EQ(next_epoch(c, 2), -1);
    ASSERT_EQ(next_epoch(c, 100), -1);
    fx_close(&f);

    /* testGetEpochEntry */
    f = fx_open();
    c = f.c;
    epochs_assign(c, 2, 100);
    epochs_assign(c, 3, 500);
    epochs_assign(c, 5, 1000);
    ASSERT_EQ(epoch_entry(c, 2)->start_offset, 100);
    ASSERT_EQ(epoch_entry(c, 3)->start_offset, 500);
    ASSERT_EQ(epoch_entry(c, 5)->start_offset, 1000);
    ASSERT(!epoch_entry(c, 4));
    fx_close(&f);

    /* shouldFetchEpochForGivenOffset */
    f = fx_open();
    c = f.c;
    ASSERT_EQ(epochs_epoch_for_offset(c, 5), UNDEF);
    epochs_assign(c, 0, 10);
    epochs_assign(c, 1, 20);
    epochs_assign(c, 5, 30);
    ASSERT_EQ(epochs_epoch_for_offset(c, 25), 1);
    ASSERT_EQ(epochs_epoch_for_offset(c, 20), 1);
    ASSERT_EQ(epochs_epoch_for_offset(c, 30), 5);
    ASSERT_EQ(epochs_epoch_for_offset(c, 50), 5);
    ASSERT_EQ(epochs_epoch_for_offset(c, 5), UNDEF);
    fx_close(&f);
}

/* Not Kafka's test: rebuilding from batches takes an epoch only when it is above the latest
 * (LogSegment.recover), and nothing from batches without one. */
static void test_observe_batches(void)
{
    fixture f = fx_open();
    td_epochs *c = f.c;
    epochs_observe_batch(c, -1, 0);
    epochs_observe_batch(c, -1, 3);
    EXPECT_EMPTY(c);
    epochs_observe_batch(c, 0, 5);
    epochs_observe_batch(c, 0, 7);
    epochs_observe_batch(c, 2, 9);
    epochs_observe_batch(c, 1, 12); /* an older epoch after a newer one: not taken */
    epochs_observe_batch(c, 2, 14);
    epochs_observe_batch(c, -1, 15);
    epochs_observe_batch(c, 4, 20);
    EXPECT_ENTRIES(c, {0, 5}, {2, 9}, {4, 20});
    EXPECT_END(c, 3, 30, 2, 20);
    fx_close(&f);
}

/* ---------------------------------------------------------------------------------------------
 * The checkpoint file
 */

/* Writes text as the whole file /p/leader-epoch-checkpoint, durably. */
static void put_file(memio *m, const char *text, size_t n)
{
    const td_io *io = memio_table(m);
    int fd = io->open(io, "/p/" TD_EPOCHS_FILE, O_RDWR | O_CREAT | O_TRUNC, 0644);
    ASSERT(fd >= 0);
    ASSERT_OK(td_io_write_all(io, fd, text, n, 0));
    ASSERT_OK(io->fsync(io, fd));
    io->close(io, fd);
}

/* The whole file /p/leader-epoch-checkpoint as a string (the caller frees it). */
static char *get_file(memio *m)
{
    const td_io *io = memio_table(m);
    int fd = io->open(io, "/p/" TD_EPOCHS_FILE, O_RDONLY, 0);
    ASSERT(fd >= 0);
    int64_t size;
    ASSERT_OK(io->fsize(io, fd, &size));
    char *b = calloc(1, (size_t)size + 1);
    ASSERT_OK(td_io_read_all(io, fd, b, (size_t)size, 0));
    io->close(io, fd);
    return b;
}

/* Opens a cache on a file holding text: the code of epochs_open, and the cache in *out on 0. */
static int open_text(const char *text, size_t n, memio **mp, td_epochs **out)
{
    memio *m = memio_new();
    put_file(m, text, n);
    td_error_clear();
    int rc = epochs_open(memio_table(m), "/p", out);
    if (mp)
        *mp = m;
    else
        memio_free(m);
    return rc;
}

static void test_checkpoint_round_trip(void)
{
    /* shouldPersistAndOverwriteAndReloadFile (on the real file system) */
    char *dir = test_tmpdir("epochs");
    td_epochs *c, *c2;
    ASSERT_OK(epochs_open(td_io_posix(), dir, &c));
    EXPECT_EMPTY(c);
    epochs_assign(c, 0, 1);
    epochs_assign(c, 1, 2);
    epochs_assign(c, 2, 3);
    ASSERT_OK(epochs_flush(c));
    ASSERT_OK(epochs_open(td_io_posix(), dir, &c2));
    EXPECT_ENTRIES(c2, {0, 1}, {1, 2}, {2, 3});
    epochs_close(c2);
    epochs_truncate_from_end(c, 0);
    epochs_assign(c, 3, 4);
    epochs_assign(c, 4, 5);
    ASSERT_OK(epochs_flush(c));
    /* shouldRetainValuesEvenIfCheckpointIsRecreated */
    ASSERT_OK(epochs_open(td_io_posix(), dir, &c2));
    EXPECT_ENTRIES(c2, {3, 4}, {4, 5});
    epochs_close(c2);
    epochs_close(c);
    test_rmrf(dir);

    /* shouldPersistEpochsBetweenInstances */
    fixture f = fx_open();
    epochs_assign(f.c, 2, 6);
    ASSERT_OK(epochs_flush(f.c));
    c2 = reopen(&f);
    EXPECT_ENTRIES(c2, {2, 6});
    epochs_close(c2);
    fx_close(&f);

    /* The exact text, Kafka's; an empty cache writes a count of 0, and large values survive. */
    f = fx_open();
    ASSERT_OK(epochs_flush(f.c));
    char *text = get_file(f.m);
    ASSERT_STR_EQ(text, "0\n0\n");
    free(text);
    epochs_assign(f.c, 0, 1);
    epochs_assign(f.c, 1, 2);
    epochs_assign(f.c, 2147483647, INT64_MAX);
    ASSERT_OK(epochs_flush(f.c));
    text = get_file(f.m);
    ASSERT_STR_EQ(text, "0\n3\n0 1\n1 2\n2147483647 9223372036854775807\n");
    free(text);
    c2 = reopen(&f);
    EXPECT_ENTRIES(c2, {0, 1}, {1, 2}, {2147483647, INT64_MAX});
    epochs_close(c2);
    fx_close(&f);
}

static void test_checkpoint_reads_kafka_forms(void)
{
    td_epochs *c;
    /* No file, and an empty file (Kafka creates one when it opens a partition): empty. */
    fixture f = fx_open();
    EXPECT_EMPTY(f.c);
    fx_close(&f);
    ASSERT_OK(open_text("", 0, NULL, &c));
    EXPECT_EMPTY(c);
    epochs_close(c);
    /* What Java's parseInt and a split on \s+ accept: signs, tabs and runs of spaces between
     * the numbers, whitespace after them. */
    const char *t = "-0\n+2\n1\t\t5 \n+2   +9\t\v\n";
    ASSERT_OK(open_text(t, strlen(t), NULL, &c));
    EXPECT_ENTRIES(c, {1, 5}, {2, 9});
    epochs_close(c);
    /* Entries are loaded through assign, as Kafka's constructor does: ones that do not
     * increase leave what those assigns leave. */
    t = "0\n4\n5 10\n3 20\n3 30\n4 25\n";
    ASSERT_OK(open_text(t, strlen(t), NULL, &c));
    EXPECT_ENTRIES(c, {3, 20}, {4, 25});
    epochs_close(c);
}

/* The file is refused with TD_ECORRUPT, the error naming `line`. */
static void expect_refused(const char *text, size_t n, int line)
{
    td_epochs *c = (td_epochs *)1;
    int rc = open_text(text, n, NULL, &c);
    if (rc != TD_ECORRUPT)
        TEST_FAIL_("%zu bytes of \"%s\": %d, not TD_ECORRUPT", n, text, rc);
    ASSERT(c == NULL);
    char want[32];
    snprintf(want, sizeof(want), "line %d:", line);
    ASSERT_CONTAINS(td_last_error(), want);
    ASSERT_CONTAINS(td_last_error(), TD_EPOCHS_FILE);
}

static void test_checkpoint_corrupt_lines(void)
{
    /* Each line of "0\n2\n1 5\n3 9\n" replaced by what Kafka refuses there. */
    static const char *const bad[4][9] = {
        {"x", "", " 0", "0 ", "1", "-1", "00x", "99999999999", NULL},
        {"x", "", "-1", " 2", "2 ", "2147483648", "1 1", NULL},
        {"x", "", "1", "1 5 7", " 1 5", "1 x", "-1 5", "1 -5", "2147483648 5"},
        {"x", "", "3", "3 9 9", " 3 9", "3 9x", "3 99999999999999999999", "3,9", NULL},
    };
    const char *lines[4] = {"0", "2", "1 5", "3 9"};
    for (int l = 0; l < 4; l++)
        for (int k = 0; k < 9 && bad[l][k]; k++) {
            char text[128] = "";
            for (int i = 0; i < 4; i++) {
                strcat(text, i == l ? bad[l][k] : lines[i]);
                strcat(text, "\n");
            }
            expect_refused(text, strlen(text), l + 1);
        }
    /* "\r\n" endings (Java's readLine takes them; refused here) and a NUL inside a number. */
    expect_refused("0\r\n0\r\n", 7, 1);
    expect_refused("0\n1\n1\0 5\n", 9, 3);
    /* More entries than counted: refused at the first extra one; fewer: at the line after. */
    expect_refused("0\n1\n1 5\n3 9\n", 12, 4);
    expect_refused("0\n3\n1 5\n3 9\n", 12, 5);
    expect_refused("0\n0\n1 5\n", 8, 3);
}

static void test_checkpoint_prefixes(void)
{
    /* Every proper prefix of a valid file but the empty one is refused (a torn file: Kafka
     * would read some as empty or as shorter entries); the whole file reads. */
    const char *t = "0\n3\n0 1\n12 345\n6789 1011121314\n";
    size_t n = strlen(t);
    for (size_t len = 1; len < n; len++) {
        td_epochs *c;
        int rc = open_text(t, len, NULL, &c);
        if (rc != TD_ECORRUPT)
            TEST_FAIL_("a prefix of %zu bytes: %d, not TD_ECORRUPT", len, rc);
        ASSERT_CONTAINS(td_last_error(), "line ");
    }
    td_epochs *c;
    ASSERT_OK(open_text(t, n, NULL, &c));
    EXPECT_ENTRIES(c, {0, 1}, {12, 345}, {6789, 1011121314});
    epochs_close(c);
}

/* A flush interrupted at each of its operations (the write, the fsync, the rename), then the
 * power lost: the old checkpoint reads, whole; a flush that returned 0 reads as the new one. */
static void test_flush_interrupted(void)
{
    for (int64_t ops = 0; ops < 6; ops++)
        for (uint64_t seed = 1; seed <= 8; seed++) {
            memio *m = memio_new();
            td_epochs *c;
            ASSERT_OK(epochs_open(memio_table(m), "/p", &c));
            assign_2_3_4(c);
            ASSERT_OK(epochs_flush(c));
            epochs_truncate_from_start(c, 9);
            epochs_assign(c, 7, 30);
            memio_count_dir_ops(m, true);
            memio_fail_after(m, ops);
            int rc = epochs_flush(c);
            epochs_close(c);
            ASSERT_EQ(rc == 0, ops >= 3); /* the write, the fsync, the rename */
            memio_crash(m, seed);
            ASSERT_OK(epochs_open(memio_table(m), "/p", &c));
            if (rc == 0)
                EXPECT_ENTRIES(c, {3, 9}, {4, 11}, {7, 30});
            else
                EXPECT_ENTRIES(c, {2, 6}, {3, 8}, {4, 11});
            epochs_close(c);
            memio_free(m);
        }
}

TEST_MAIN(TEST(test_assign_and_end_offsets), TEST(test_assign_keeps_monotonic),
          TEST(test_leaders_change_many_times), TEST(test_follower_receives_many_messages),
          TEST(test_truncate_from_end), TEST(test_truncate_from_start), TEST(test_lookups),
          TEST(test_observe_batches), TEST(test_checkpoint_round_trip),
          TEST(test_checkpoint_reads_kafka_forms), TEST(test_checkpoint_corrupt_lines),
          TEST(test_checkpoint_prefixes), TEST(test_flush_interrupted))
