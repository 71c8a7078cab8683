/* Unit tests for a partition's transactions (storage/part_txn.c): the last stable offset, the
 * aborted transactions, the producers' rules for markers, part_read_to, reopening (from the
 * snapshot, the log, a lost or torn aborted-txns file), retention, the marker codec and the
 * producers' snapshot versions, and the last stable offset read while markers settle. */
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/producer.h"
#include "storage/storage.h"
#include "test.h"

#define TS 1700000000000

static td_part *open_part(const char *dir, int fsync_policy)
{
    td_topic_config c;
    td_topic_config_init(&c);
    c.fsync_policy = fsync_policy;
    td_part *p;
    ASSERT_OK(part_open(td_io_posix(), dir, "t/0", &c, &p));
    return p;
}

/* Encodes `count` records from producer pid (-1: a plain batch) at epoch and sequence seq,
 * transactional or not. */
static void encode(td_buf *b, int64_t pid, int16_t epoch, int32_t seq, int count, bool txn)
{
    td_event ev[8];
    for (int i = 0; i < count; i++)
        ev[i] = (td_event){.value = "v", .value_len = 1, .timestamp_ms = TS + i};
    td_batch_encode_opts o;
    batch_encode_opts_init(&o);
    o.producer_id = pid;
    o.producer_epoch = pid >= 0 ? epoch : -1;
    o.base_sequence = pid >= 0 ? seq : -1;
    o.transactional = txn;
    td_buf_reset(b);
    ASSERT_OK(batch_encode(b, &o, ev, (size_t)count));
}

/* Appends what encode() makes. Returns part_append's result; *base gets the base offset. */
static int put_rc(td_part *p, int64_t pid, int16_t epoch, int32_t seq, int count, bool txn,
                  int64_t *base)
{
    td_buf b;
    td_buf_init(&b);
    encode(&b, pid, epoch, seq, count, txn);
    td_append_result r;
    int rc = part_append(p, b.p, b.len, TS, &r);
    td_buf_free(&b);
    if (rc == 0) {
        ASSERT(!r.duplicate);
        ASSERT_EQ(r.last_offset, r.base_offset + count - 1);
        *base = r.base_offset;
    }
    return rc;
}

static int64_t put(td_part *p, int64_t pid, int16_t epoch, int32_t seq, int count, bool txn)
{
    int64_t base = -1;
    ASSERT_OK(put_rc(p, pid, epoch, seq, count, txn, &base));
    return base;
}

static int64_t plain(td_part *p, int count)
{
    return put(p, -1, 0, 0, count, false);
}

/* Appends a marker; returns its offset (a marker takes exactly one). */
static int64_t marker(td_part *p, int64_t pid, int16_t epoch, bool commit)
{
    td_append_result r;
    ASSERT_OK(part_append_marker(p, pid, epoch, commit, 7, TS, &r));
    ASSERT_EQ(r.last_offset, r.base_offset);
    ASSERT_EQ(r.end_offset, r.base_offset + 1);
    return r.base_offset;
}

/* part_aborted_txns into out (at most max entries); returns how many. */
static size_t aborted(td_part *p, int64_t from, int64_t upper, td_aborted_txn *out, size_t max)
{
    td_aborted_txn *v;
    size_t n;
    ASSERT_OK(part_aborted_txns(p, from, upper, &v, &n));
    ASSERT_LE(n, max);
    if (n)
        memcpy(out, v, n * sizeof(*v));
    free(v);
    return n;
}

static void assert_entry(const td_aborted_txn *a, int64_t pid, int64_t first, int64_t last,
                         int64_t lso)
{
    ASSERT_EQ(a->pid, pid);
    ASSERT_EQ(a->first, first);
    ASSERT_EQ(a->last, last);
    ASSERT_EQ(a->lso, lso);
}

/* The marker stored at offset m: its type and coordinator epoch (7, as marker() writes). */
static int stored_marker_type(td_part *p, int64_t m)
{
    td_range r;
    ASSERT_OK(part_read(p, m, 1 << 20, &r));
    ASSERT_EQ(r.first_offset, m);
    ASSERT_EQ(r.next_offset, m + 1);
    td_buf b;
    td_buf_init(&b);
    ASSERT_OK(part_range_copy(&r, &b));
    part_range_release(&r);
    ASSERT_EQ(b.len, TD_MARKER_SIZE);
    ASSERT_OK(batch_validate(b.p, b.len, true, 1 << 20, NULL));
    int32_t ce = -1;
    int type = batch_marker_type(b.p, b.len, &ce);
    ASSERT_EQ(ce, 7);
    ASSERT_EQ((int64_t)td_load_be64(b.p), m); /* the base offset was set */
    td_buf_free(&b);
    return type;
}

/* The high watermark after an append, under fsync=always (`always`): still `before` (the LSO
 * still `lso`) until a sync, then `after`; under fsync=none at once. */
static void hw_moves(td_part *p, bool always, int64_t before, int64_t lso, int64_t after)
{
    if (always) {
        ASSERT_EQ(part_high_watermark(p), before);
        ASSERT_EQ(part_last_stable(p), lso);
        ASSERT_OK(part_wait_durable(p, after));
    }
    ASSERT_EQ(part_high_watermark(p), after);
}

/* Test 1: the last stable offset follows the high watermark, and a transaction pins it. */
static void lso_case(int policy)
{
    char *dir = test_tmpdir("txn-lso");
    td_part *p = open_part(dir, policy);
    bool always = policy == TD_FSYNC_ALWAYS;
    ASSERT_EQ(part_last_stable(p), 0);
    ASSERT_EQ(plain(p, 3), 0);
    hw_moves(p, always, 0, 0, 3);
    ASSERT_EQ(part_last_stable(p), 3);
    /* Producer A's transaction opens at k = 3. */
    int64_t k = put(p, 100, 0, 0, 2, true);
    ASSERT_EQ(k, 3);
    hw_moves(p, always, 3, 3, 5);
    ASSERT_EQ(part_last_stable(p), k);
    /* A plain batch meanwhile: below the high watermark, above the LSO. */
    ASSERT_EQ(plain(p, 1), 5);
    hw_moves(p, always, 5, k, 6);
    ASSERT_EQ(part_last_stable(p), k);
    /* A's second batch in the same transaction does not move it. */
    ASSERT_EQ(put(p, 100, 0, 2, 1, true), 6);
    hw_moves(p, always, 6, k, 7);
    ASSERT_EQ(part_last_stable(p), k);
    /* The COMMIT marker takes one offset; the LSO moves once the high watermark passes it. */
    int64_t m = marker(p, 100, 0, true);
    ASSERT_EQ(m, 7);
    ASSERT_EQ(part_log_end(p), 8);
    hw_moves(p, always, 7, k, 8);
    ASSERT_EQ(part_last_stable(p), 8);
    td_aborted_txn a[4];
    ASSERT_EQ(aborted(p, 0, 8, a, 4), 0); /* a commit is no aborted transaction */
    ASSERT_EQ(stored_marker_type(p, m), TD_MARKER_COMMIT);
    /* Without transactions, the LSO keeps up with the high watermark. */
    ASSERT_EQ(plain(p, 2), 8);
    hw_moves(p, always, 8, 8, 10);
    ASSERT_EQ(part_last_stable(p), 10);
    part_close(p);
    test_rmrf(dir);
}

static void test_last_stable(void)
{
    lso_case(TD_FSYNC_NONE);
    lso_case(TD_FSYNC_ALWAYS);
}

/* Test 2: aborted transactions, alone and interleaved. */
static void abort_case(int policy)
{
    char *dir = test_tmpdir("txn-abort");
    td_part *p = open_part(dir, policy);
    /* A alone: {A, first, marker, marker + 1}. */
    ASSERT_EQ(put(p, 1, 0, 0, 2, true), 0);
    int64_t ma = marker(p, 1, 0, false);
    ASSERT_EQ(ma, 2);
    ASSERT_OK(part_sync(p));
    ASSERT_EQ(part_last_stable(p), 3);
    td_aborted_txn a[8];
    ASSERT_EQ(aborted(p, 0, part_high_watermark(p), a, 8), 1);
    assert_entry(&a[0], 1, 0, 2, 3);
    ASSERT_EQ(stored_marker_type(p, ma), TD_MARKER_ABORT);
    /* Interleaved: X opens at 3, Y at 4, Z at 5; Z aborts at 6 (X and Y open: lso 3), X aborts
     * at 7 (Y open: lso == Y's first, 4), Y commits at 8. */
    ASSERT_EQ(put(p, 10, 0, 0, 1, true), 3);
    ASSERT_EQ(put(p, 20, 0, 0, 1, true), 4);
    ASSERT_EQ(put(p, 30, 0, 0, 1, true), 5);
    ASSERT_EQ(marker(p, 30, 0, false), 6);
    if (policy != TD_FSYNC_ALWAYS)
        ASSERT_EQ(part_last_stable(p), 3);
    ASSERT_EQ(marker(p, 10, 0, false), 7);
    ASSERT_EQ(put(p, 20, 0, 1, 1, true), 8); /* Y's second batch */
    ASSERT_EQ(marker(p, 20, 0, true), 9);
    ASSERT_OK(part_sync(p));
    ASSERT_EQ(part_high_watermark(p), 10);
    ASSERT_EQ(part_last_stable(p), 10);
    /* Sorted by first offset (X, Z), not by marker (Z, X). */
    ASSERT_EQ(aborted(p, 0, 10, a, 8), 3);
    assert_entry(&a[0], 1, 0, 2, 3);
    assert_entry(&a[1], 10, 3, 7, 4);
    assert_entry(&a[2], 30, 5, 6, 3);
    /* from: the markers at or after it. */
    ASSERT_EQ(aborted(p, 3, 10, a, 8), 2);
    assert_entry(&a[0], 10, 3, 7, 4);
    assert_entry(&a[1], 30, 5, 6, 3);
    ASSERT_EQ(aborted(p, 7, 10, a, 8), 1);
    assert_entry(&a[0], 10, 3, 7, 4);
    ASSERT_EQ(aborted(p, 8, 10, a, 8), 0);
    /* upper: the first offsets below it. */
    ASSERT_EQ(aborted(p, 3, 3, a, 8), 0);
    ASSERT_EQ(aborted(p, 3, 2, a, 8), 0);
    ASSERT_EQ(aborted(p, 3, 4, a, 8), 1);
    assert_entry(&a[0], 10, 3, 7, 4);
    ASSERT_EQ(aborted(p, 3, 6, a, 8), 2);
    ASSERT_EQ(aborted(p, 0, 0, a, 8), 0);
    ASSERT_EQ(aborted(p, 0, 1, a, 8), 1);
    assert_entry(&a[0], 1, 0, 2, 3);
    part_close(p);
    test_rmrf(dir);
}

static void test_aborted(void)
{
    abort_case(TD_FSYNC_NONE);
    abort_case(TD_FSYNC_ALWAYS);
}

/* Test 3: TD_ETXN, TD_EFENCED, and markers without an open transaction. */
static void test_producer_rules(void)
{
    char *dir = test_tmpdir("txn-rules");
    td_part *p = open_part(dir, TD_FSYNC_NONE);
    ASSERT_EQ(put(p, 7, 2, 0, 1, true), 0);
    int64_t base = -1;
    /* A batch outside the open transaction, same epoch: refused, nothing written. */
    ASSERT_EQ(put_rc(p, 7, 2, 1, 1, false, &base), TD_ETXN);
    ASSERT_EQ(part_log_end(p), 1);
    /* A marker of an older epoch: fenced, nothing written, the transaction still open. */
    td_append_result r;
    ASSERT_EQ(part_append_marker(p, 7, 1, true, 7, TS, &r), TD_EFENCED);
    ASSERT_EQ(part_log_end(p), 1);
    ASSERT_EQ(part_last_stable(p), 0);
    ASSERT_EQ(put_rc(p, 7, 2, 1, 1, false, &base), TD_ETXN); /* still open */
    /* The transaction goes on, and its marker closes it. */
    ASSERT_EQ(put(p, 7, 2, 1, 1, true), 1);
    ASSERT_EQ(marker(p, 7, 2, true), 2);
    ASSERT_EQ(part_last_stable(p), 3);
    ASSERT_EQ(put(p, 7, 2, 2, 1, false), 3); /* outside a transaction now: fine */
    /* Markers with no transaction open: of an unknown producer, of a known one; one offset
     * each, no aborted entry, the LSO at the high watermark. */
    ASSERT_EQ(marker(p, 99, 0, false), 4);
    ASSERT_EQ(marker(p, 7, 2, false), 5);
    ASSERT_EQ(part_log_end(p), 6);
    ASSERT_EQ(part_high_watermark(p), 6);
    ASSERT_EQ(part_last_stable(p), 6);
    td_aborted_txn a[4];
    ASSERT_EQ(aborted(p, 0, 6, a, 4), 0);
    /* And the producer's sequence goes on where it was. */
    ASSERT_EQ(put(p, 7, 2, 3, 1, false), 6);
    ASSERT_EQ(part_last_stable(p), 7);
    part_close(p);
    test_rmrf(dir);
}

/* Test 4: part_read_to below the LSO. */
static void test_read_to_lso(void)
{
    char *dir = test_tmpdir("txn-read");
    td_part *p = open_part(dir, TD_FSYNC_NONE);
    ASSERT_EQ(plain(p, 2), 0);
    ASSERT_EQ(put(p, 5, 0, 0, 2, true), 2);
    ASSERT_EQ(plain(p, 1), 4);
    int64_t lso = part_last_stable(p);
    ASSERT_EQ(lso, 2);
    ASSERT_EQ(part_high_watermark(p), 5);
    td_range r;
    ASSERT_OK(part_read_to(p, 0, 1 << 20, lso, &r));
    ASSERT_EQ(r.first_offset, 0);
    ASSERT_EQ(r.next_offset, 2);
    ASSERT_LE(r.next_offset, lso);
    part_range_release(&r);
    ASSERT_OK(part_read_to(p, 1, 1 << 20, lso, &r));
    ASSERT_EQ(r.first_offset, 0);
    ASSERT_EQ(r.next_offset, 2);
    part_range_release(&r);
    ASSERT_EQ(part_read_to(p, 2, 1 << 20, lso, &r), TD_EEND);
    ASSERT_EQ(part_read_to(p, 3, 1 << 20, lso, &r), TD_EEND);
    ASSERT_EQ(part_read_to(p, 6, 1 << 20, lso, &r), TD_ERANGE);
    ASSERT_OK(part_read(p, 0, 1 << 20, &r)); /* without a limit: to the high watermark */
    ASSERT_EQ(r.next_offset, 5);
    part_range_release(&r);
    /* Committed: the LSO is the high watermark again and the range goes to it. */
    ASSERT_EQ(marker(p, 5, 0, true), 5);
    lso = part_last_stable(p);
    ASSERT_EQ(lso, 6);
    ASSERT_OK(part_read_to(p, 0, 1 << 20, lso, &r));
    ASSERT_EQ(r.next_offset, 6);
    part_range_release(&r);
    ASSERT_EQ(part_read_to(p, 6, 1 << 20, lso, &r), TD_EEND);
    part_close(p);
    test_rmrf(dir);
}

/* A history for the reopen and retention tests (fsync=none):
 *   0-1 plain; 2 B's transaction, 3 its COMMIT; 4-5 A's transaction, 6 its ABORT;
 *   7 C's transaction (left open); 8 D's transaction, 9 its ABORT; 10 plain.
 * Aborted: {A, 4, 6, 7} (nothing else unstable then), {D, 8, 9, 7} (C open). LSO 7, HW 11. */
static td_part *history(const char *dir)
{
    td_part *p = open_part(dir, TD_FSYNC_NONE);
    ASSERT_EQ(plain(p, 2), 0);
    ASSERT_EQ(put(p, 200, 0, 0, 1, true), 2);
    ASSERT_EQ(marker(p, 200, 0, true), 3);
    ASSERT_EQ(put(p, 100, 0, 0, 2, true), 4);
    ASSERT_EQ(marker(p, 100, 0, false), 6);
    ASSERT_EQ(put(p, 300, 0, 0, 1, true), 7);
    ASSERT_EQ(put(p, 400, 0, 0, 1, true), 8);
    ASSERT_EQ(marker(p, 400, 0, false), 9);
    ASSERT_EQ(plain(p, 1), 10);
    return p;
}

/* The state history() leaves, after whatever reopen: the open transaction pins the LSO and
 * the aborted transactions are those of history(). */
static void check_history(td_part *p)
{
    ASSERT_EQ(part_log_end(p), 11);
    ASSERT_EQ(part_high_watermark(p), 11);
    ASSERT_EQ(part_last_stable(p), 7);
    td_aborted_txn a[4];
    ASSERT_EQ(aborted(p, 0, 11, a, 4), 2);
    assert_entry(&a[0], 100, 4, 6, 7);
    assert_entry(&a[1], 400, 8, 9, 7);
    ASSERT_EQ(aborted(p, 7, 11, a, 4), 1);
    assert_entry(&a[0], 400, 8, 9, 7);
}

static int64_t file_size(const char *dir, const char *name)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

static void run(const char *fmt, const char *dir)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), fmt, dir);
    ASSERT_EQ(system(cmd), 0);
}

/* Test 5a and 5b: a clean reopen (from the close's snapshot), then one without snapshots (a
 * replay of the whole log, the aborted-txns file still there). */
static void test_reopen_clean_and_replayed(void)
{
    char *dir = test_tmpdir("txn-reopen");
    td_part *p = history(dir);
    check_history(p);
    ASSERT_EQ(file_size(dir, "aborted-txns"), 72);
    part_close(p);
    p = open_part(dir, TD_FSYNC_NONE);
    check_history(p);
    part_close(p);
    run("ls %s | grep -q '\\.snapshot$'", dir);
    run("rm -f %s/*.snapshot", dir);
    p = open_part(dir, TD_FSYNC_NONE);
    check_history(p);
    ASSERT_EQ(file_size(dir, "aborted-txns"), 72);
    ASSERT_EQ(marker(p, 300, 0, true), 11); /* C commits: the LSO is the high watermark */
    ASSERT_EQ(part_last_stable(p), 12);
    td_aborted_txn a[4];
    ASSERT_EQ(aborted(p, 0, 12, a, 4), 2);
    part_close(p);
    p = open_part(dir, TD_FSYNC_NONE);
    ASSERT_EQ(part_last_stable(p), 12);
    part_close(p);
    test_rmrf(dir);
}

/* history(), a clean close (its snapshot at the log end), then damage: `cmd` (the directory as
 * %s; NULL: none) and aborted-txns cut to `cut` bytes (-1: not). The reopened partition must
 * hold history()'s state, and aborted-txns be rewritten whole. */
static void reopen_damaged(const char *cmd, const char *cmd2, off_t cut)
{
    char *dir = test_tmpdir("txn-damaged"), path[1024];
    part_close(history(dir));
    if (cmd)
        run(cmd, dir);
    if (cmd2)
        run(cmd2, dir);
    snprintf(path, sizeof(path), "%s/aborted-txns", dir);
    if (cut >= 0)
        ASSERT_OK(truncate(path, cut));
    td_part *p = open_part(dir, TD_FSYNC_NONE);
    check_history(p);
    ASSERT_EQ(file_size(dir, "aborted-txns"), 72);
    part_close(p);
    test_rmrf(dir);
}

/* Test 5d: aborted-txns cut to 50 bytes (the second entry torn, as a crash in its write leaves
 * it: its marker is after the newest snapshot, which the replay reads again), and a damaged
 * first entry (a flipped byte: the whole log is replayed). */
static void test_reopen_torn_aborted_file(void)
{
    reopen_damaged("rm -f %s/*.snapshot", NULL, 50);
    reopen_damaged("printf '\\377' | dd of=%s/aborted-txns bs=1 seek=3 conv=notrunc status=none",
                   NULL, -1);
}

/* Test 5c: aborted-txns deleted with the snapshots (the file is data of the partition, as its
 * segments are: without snapshots, the replay of the whole log finds both aborts again, and
 * must give them the LSO they had (B's transaction had settled long before A's abort). */
static void test_reopen_replay_lso(void)
{
    reopen_damaged("rm %s/aborted-txns", "rm %s/*.snapshot", -1);
}

/* Test 6: retention past an aborted transaction's marker forgets it, also after a reopen. */
static void test_retention(void)
{
    char *dir = test_tmpdir("txn-retention");
    td_part *p = history(dir);
    int64_t ls = -1;
    ASSERT_OK(part_delete_before(p, 7, &ls));
    ASSERT_EQ(ls, 7);
    td_aborted_txn a[4];
    ASSERT_EQ(aborted(p, 0, 11, a, 4), 1);
    assert_entry(&a[0], 400, 8, 9, 7);
    ASSERT_EQ(file_size(dir, "aborted-txns"), 36);
    ASSERT_EQ(part_last_stable(p), 7);
    part_close(p);
    p = open_part(dir, TD_FSYNC_NONE);
    ASSERT_EQ(part_log_start(p), 7);
    ASSERT_EQ(aborted(p, 0, 11, a, 4), 1);
    assert_entry(&a[0], 400, 8, 9, 7);
    ASSERT_EQ(part_last_stable(p), 7);
    /* Past D's marker too: none left; the LSO is not below the log start. */
    ASSERT_OK(part_delete_before(p, 10, &ls));
    ASSERT_EQ(aborted(p, 0, 11, a, 4), 0);
    ASSERT_EQ(file_size(dir, "aborted-txns"), 0);
    ASSERT_EQ(part_last_stable(p), 10);
    part_close(p);
    p = open_part(dir, TD_FSYNC_NONE);
    ASSERT_EQ(aborted(p, 0, 11, a, 4), 0);
    ASSERT_EQ(part_last_stable(p), 10);
    ASSERT_EQ(marker(p, 300, 0, true), 11);
    ASSERT_EQ(part_last_stable(p), 12);
    part_close(p);
    test_rmrf(dir);
}

/* Test 7: the marker codec. */
static void test_marker_codec(void)
{
    uint8_t m[TD_MARKER_SIZE];
    td_batch_header h;
    int32_t ce = 0;
    for (int commit = 0; commit < 2; commit++) {
        batch_encode_marker(m, 77, 5, commit, commit ? 9 : -3, TS);
        ASSERT_OK(batch_validate(m, sizeof(m), true, 1 << 20, &h));
        ASSERT_EQ(batch_total_size(&h), 78);
        ASSERT_EQ(h.attributes, 0x30);
        ASSERT_EQ(h.producer_id, 77);
        ASSERT_EQ(h.producer_epoch, 5);
        ASSERT_EQ(h.base_sequence, -1);
        ASSERT_EQ(h.record_count, 1);
        ASSERT_EQ(h.last_offset_delta, 0);
        ASSERT_EQ(h.base_timestamp, TS);
        ASSERT_EQ(h.max_timestamp, TS);
        ASSERT_EQ(batch_marker_type(m, sizeof(m), &ce),
                  commit ? TD_MARKER_COMMIT : TD_MARKER_ABORT);
        ASSERT_EQ(ce, commit ? 9 : -3);
        ASSERT_EQ(batch_marker_type(m, sizeof(m), NULL), commit);
        for (size_t n = 0; n < sizeof(m); n++)
            ASSERT_EQ(batch_marker_type(m, n, &ce), -1);
    }
    /* The key is version 0, type 1; the value version 0, coordinator epoch 9. */
    static const uint8_t key[4] = {0, 0, 0, 1}, val[6] = {0, 0, 0, 0, 0, 9};
    ASSERT_MEM_EQ(m + TD_BATCH_HEADER_SIZE + 5, key, 4);
    ASSERT_MEM_EQ(m + TD_BATCH_HEADER_SIZE + 10, val, 6);
    /* An unknown marker type is no marker. */
    td_store_be16(m + TD_BATCH_HEADER_SIZE + 7, 2);
    batch_update_crc(m, sizeof(m));
    ASSERT_EQ(batch_marker_type(m, sizeof(m), &ce), -1);
    /* Data batches, transactional or not, are no markers. */
    td_buf b;
    td_buf_init(&b);
    encode(&b, -1, 0, 0, 1, false);
    ASSERT_EQ(batch_marker_type(b.p, b.len, &ce), -1);
    encode(&b, 3, 0, 0, 1, true);
    ASSERT_EQ(batch_marker_type(b.p, b.len, &ce), -1);
    td_buf_free(&b);
}

/* The header of a transactional batch of two records. */
static td_batch_header txn_hdr(int64_t pid, int16_t epoch, int32_t seq, int64_t base)
{
    return (td_batch_header){.base_offset = base,
                             .attributes = TD_BATCH_ATTR_TRANSACTIONAL,
                             .last_offset_delta = 1,
                             .max_timestamp = TS,
                             .producer_id = pid,
                             .producer_epoch = epoch,
                             .base_sequence = seq,
                             .record_count = 2};
}

static void assert_producer(const td_pstate *s, int64_t pid, int epoch, int n, int64_t txn_first,
                            int32_t coord_epoch)
{
    const td_producer *e = pstate_find(s, pid);
    ASSERT(e);
    ASSERT_EQ(e->epoch, epoch);
    ASSERT_EQ(e->n, n);
    ASSERT_EQ(e->txn_first, txn_first);
    ASSERT_EQ(e->coord_epoch, coord_epoch);
}

/* Decodes a snapshot into a fresh state; returns pstate_decode's result (*off its offset). */
static int decode(const uint8_t *b, size_t n, td_pstate *d, int64_t *off)
{
    pstate_init(d);
    int rc = pstate_decode(b, n, d, off);
    if (rc)
        pstate_free(d);
    return rc;
}

/* Test 8: snapshots keep txn_first and coord_epoch; version 1 still decodes. */
static void test_snapshot_versions(void)
{
    td_pstate s, d;
    pstate_init(&s);
    td_batch_header h[3] = {txn_hdr(5, 1, 0, 10), txn_hdr(5, 1, 2, 12), txn_hdr(6, 0, 0, 14)};
    for (int i = 0; i < 3; i++)
        ASSERT_OK(pstate_update(&s, &h[i], 100));
    int64_t first = -2, off = -1;
    ASSERT_OK(pstate_marker(&s, 6, 0, 42, 100, &first));
    ASSERT_EQ(first, 14);
    assert_producer(&s, 5, 1, 2, 10, 0);
    assert_producer(&s, 6, 0, 1, -1, 42);
    td_buf b;
    td_buf_init(&b);
    ASSERT_OK(pstate_encode(&s, 20, &b));
    ASSERT_OK(decode(b.p, b.len, &d, &off));
    ASSERT_EQ(off, 20);
    assert_producer(&d, 5, 1, 2, 10, 0);
    assert_producer(&d, 6, 0, 1, -1, 42);
    ASSERT_EQ(pstate_find(&d, 5)->b[1].first_offset, 12);
    pstate_free(&d);
    /* A transaction said to begin at or after the snapshot's offset is impossible. */
    td_buf_reset(&b);
    ASSERT_OK(pstate_encode(&s, 10, &b));
    ASSERT_EQ(decode(b.p, b.len, &d, &off), TD_ECORRUPT);
    pstate_free(&s);
    td_buf_free(&b);
    /* Version 1, by hand: one producer (pid 9, epoch 3, last_ms 777) with one batch (sequences
     * 0-4 at offsets 100-104, max timestamp 1234), as of offset 200. */
    uint8_t v1[24 + 20 + 32] = {'T', 'D', 'P', 'S', 0, 1};
    td_store_be64(v1 + 12, 200);
    td_store_be32(v1 + 20, 1);
    td_store_be64(v1 + 24, 9);
    td_store_be16(v1 + 32, 3);
    v1[34] = 1;
    td_store_be64(v1 + 36, 777);
    td_store_be32(v1 + 48, 4);
    td_store_be64(v1 + 52, 100);
    td_store_be64(v1 + 60, 104);
    td_store_be64(v1 + 68, 1234);
    td_store_be32(v1 + 8, td_crc32c(0, v1 + 12, sizeof(v1) - 12));
    ASSERT_OK(decode(v1, sizeof(v1), &d, &off));
    ASSERT_EQ(off, 200);
    assert_producer(&d, 9, 3, 1, -1, 0);
    const td_producer *e = pstate_find(&d, 9);
    ASSERT_EQ(e->last_ms, 777);
    ASSERT_EQ(e->b[0].first_seq, 0);
    ASSERT_EQ(e->b[0].last_seq, 4);
    ASSERT_EQ(e->b[0].first_offset, 100);
    ASSERT_EQ(e->b[0].last_offset, 104);
    ASSERT_EQ(e->b[0].max_timestamp, 1234);
    pstate_free(&d);
    /* An unknown version is refused. */
    td_store_be16(v1 + 4, 3);
    td_store_be32(v1 + 8, td_crc32c(0, v1 + 12, sizeof(v1) - 12));
    ASSERT_EQ(decode(v1, sizeof(v1), &d, &off), TD_ECORRUPT);
}

/* The LSO read while transactions open and settle: producer P alternates a transactional batch
 * (at even offsets 2i) and its COMMIT (at 2i + 1), under fsync=none. A reader must never see
 * an LSO above the high watermark, nor an LSO of 2i + 1 while the log still ends there (the
 * transaction at 2i open: its records would read as settled). */
struct lso_reader {
    td_part *p;
    int stop;
    int64_t reads, above_hw, past_open, above_ex, past_ex;
};

static void *lso_reader_main(void *arg)
{
    struct lso_reader *r = arg;
    while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
        int64_t lso = part_last_stable(r->p);
        int64_t end = part_log_end(r->p), hw = part_high_watermark(r->p);
        r->reads++;
        if (lso > hw) {
            r->above_hw++;
            r->above_ex = lso;
        } else if ((lso & 1) && lso == end) {
            r->past_open++;
            r->past_ex = lso;
        }
    }
    return NULL;
}

static void test_lso_while_settling(void)
{
    char *dir = test_tmpdir("txn-race");
    td_part *p = open_part(dir, TD_FSYNC_NONE);
    struct lso_reader r = {.p = p};
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, lso_reader_main, &r), 0);
    for (int i = 0; i < 30000; i++) {
        ASSERT_EQ(put(p, 1, 0, i, 1, true), 2 * i);
        ASSERT_EQ(marker(p, 1, 0, true), 2 * i + 1);
    }
    __atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
    ASSERT_EQ(pthread_join(t, NULL), 0);
    fprintf(stderr,
            "%" PRId64 " reads: %" PRId64 " above the high watermark (e.g. %" PRId64 "), %" PRId64
            " past an open transaction (e.g. %" PRId64 ")\n",
            r.reads, r.above_hw, r.above_ex, r.past_open, r.past_ex);
    ASSERT_EQ(r.above_hw, 0);
    ASSERT_EQ(r.past_open, 0);
    ASSERT_EQ(part_last_stable(p), 60000);
    part_close(p);
    test_rmrf(dir);
}

TEST_MAIN(TEST(test_last_stable), TEST(test_aborted), TEST(test_producer_rules),
          TEST(test_read_to_lso), TEST(test_reopen_clean_and_replayed), TEST(test_retention),
          TEST(test_marker_codec), TEST(test_snapshot_versions),
          TEST(test_reopen_torn_aborted_file), TEST(test_reopen_replay_lso),
          TEST(test_lso_while_settling))
