/* Unit tests for compaction with transactions (storage/cleaner.c "Transactions"): an aborted
 * record of a key does not remove the committed one before it and is itself removed; nothing at
 * or past the last stable offset is cleaned; a marker goes once no batch of its transaction is
 * left and its delete horizon has passed, and an ABORT marker takes its aborted transaction
 * with it, also across reopens and a crash at any point of the run that removes it; a marker
 * that carries its producer's epoch stays. */
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/storage.h"
#include "support/memio.h"
#include "test.h"

#define TS 1700000000000LL
#define RETENTION 1000 /* delete.retention.ms of the marker tests */
#define ATTR_DELETE_HORIZON 0x40

static td_part *open_cfg(const td_io *io, const char *dir, int64_t delete_retention_ms)
{
    td_topic_config c;
    td_topic_config_init(&c);
    c.cleanup_policy = TD_CLEANUP_COMPACT;
    c.segment_bytes = 2048;
    c.min_compaction_lag_ms = 0;
    c.fsync_policy = TD_FSYNC_ALWAYS;
    if (delete_retention_ms >= 0)
        c.delete_retention_ms = delete_retention_ms;
    td_part *p;
    ASSERT_OK(part_open(io, dir, "t/0", &c, &p));
    ASSERT(part_offline(p) == NULL);
    return p;
}

static td_part *open_compacted(const char *dir)
{
    return open_cfg(td_io_posix(), dir, -1);
}

/* One record key=value (value NULL: a tombstone) from producer pid (-1: none), transactional or
 * not; its offset. */
static int64_t put(td_part *p, int64_t pid, int32_t seq, bool txn, const char *key,
                   const char *value)
{
    td_event ev = {.key = key,
                   .key_len = strlen(key),
                   .value = value,
                   .value_len = value ? strlen(value) : 0,
                   .timestamp_ms = TS};
    td_batch_encode_opts o;
    batch_encode_opts_init(&o);
    o.producer_id = pid;
    o.producer_epoch = pid >= 0 ? 0 : -1;
    o.base_sequence = pid >= 0 ? seq : -1;
    o.transactional = txn;
    td_buf b;
    td_buf_init(&b);
    ASSERT_OK(batch_encode(&b, &o, &ev, 1));
    td_append_result r;
    ASSERT_OK(part_append(p, b.p, b.len, TS, &r));
    ASSERT_OK(part_wait_durable(p, r.end_offset));
    td_buf_free(&b);
    return r.base_offset;
}

static int64_t marker_at_epoch(td_part *p, int64_t pid, int16_t epoch, bool commit)
{
    td_append_result r;
    ASSERT_OK(part_append_marker(p, pid, epoch, commit, 0, TS, &r));
    ASSERT_OK(part_wait_durable(p, r.end_offset));
    return r.base_offset;
}

static int64_t marker(td_part *p, int64_t pid, bool commit)
{
    return marker_at_epoch(p, pid, 0, commit);
}

/* Plain records of distinct keys, n of them (40 roll about two segments). */
static void filler(td_part *p, int n)
{
    static int k;
    for (int i = 0; i < n; i++) {
        char key[32];
        snprintf(key, sizeof(key), "f%d", k++);
        put(p, -1, 0, false, key, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    }
}

/* Calls fn on every batch from the log start to `upper` (INT64_MAX: the high watermark). */
typedef void (*batch_fn)(void *arg, const uint8_t *b, const td_batch_header *h);

static void walk(td_part *p, int64_t upper, batch_fn fn, void *arg)
{
    int64_t off = part_log_start(p), hw = TD_MIN(part_high_watermark(p), upper);
    td_buf buf;
    td_buf_init(&buf);
    while (off < hw) {
        td_range r;
        ASSERT_OK(part_read(p, off, 1 << 20, &r));
        td_buf_reset(&buf);
        ASSERT_OK(part_range_copy(&r, &buf));
        for (size_t pos = 0; pos < buf.len;) {
            td_batch_header h;
            ASSERT_OK(batch_header_parse(buf.p + pos, buf.len - pos, &h));
            if (h.base_offset < hw)
                fn(arg, buf.p + pos, &h);
            pos += batch_total_size(&h);
        }
        off = r.next_offset;
        part_range_release(&r);
    }
    td_buf_free(&buf);
}

/* The values of key `key` among a batch's records, appended to out with ','. */
static void append_values(const uint8_t *b, const td_batch_header *h, const char *key, char *out,
                          size_t cap)
{
    td_batch_reader br;
    batch_reader_init(&br);
    ASSERT_OK(batch_reader_open(&br, b, batch_total_size(h), 1 << 20));
    td_record rec;
    while (batch_reader_next(&br, &rec) == 1)
        if (rec.key.n == strlen(key) && memcmp(rec.key.p, key, rec.key.n) == 0)
            snprintf(out + strlen(out), cap - strlen(out), "%s%.*s", out[0] ? "," : "",
                     rec.value_null ? 6 : (int)rec.value.n,
                     rec.value_null ? "(null)" : (const char *)rec.value.p);
    batch_reader_free(&br);
}

typedef struct values_ctx {
    const char *key;
    char *out;
    size_t cap;
    int markers;
} values_ctx;

static void values_cb(void *arg, const uint8_t *b, const td_batch_header *h)
{
    values_ctx *v = arg;
    if (h->attributes & TD_BATCH_ATTR_CONTROL)
        v->markers++;
    else
        append_values(b, h, v->key, v->out, v->cap);
}

/* Every record with key `key` below the high watermark, read_uncommitted: its values, joined
 * with ','. Also counts the transaction markers in *markers. */
static void values_of(td_part *p, const char *key, char *out, size_t cap, int *markers)
{
    out[0] = 0;
    values_ctx v = {key, out, cap, 0};
    walk(p, INT64_MAX, values_cb, &v);
    *markers = v.markers;
}

/* A read_committed consumer as Kafka's Java client is one (Fetcher's CompletedFetch): the
 * aborted transactions of the read, by first offset, put their producer in an aborted set
 * once a batch reaches their first offset; the producer's ABORT marker takes it out again; a
 * transactional batch of a producer in the set is skipped. It reads below the LSO. An entry
 * whose marker is gone would make it skip that producer's later transactions. */
typedef struct committed_ctx {
    values_ctx v;
    td_aborted_txn *ab;
    size_t nab, next;
    int64_t set[16];
    size_t nset;
} committed_ctx;

static void committed_cb(void *arg, const uint8_t *b, const td_batch_header *h)
{
    committed_ctx *c = arg;
    for (; c->next < c->nab && c->ab[c->next].first <= batch_last_offset(h); c->next++) {
        ASSERT(c->nset < 16);
        c->set[c->nset++] = c->ab[c->next].pid;
    }
    bool in_set = false;
    for (size_t i = 0; i < c->nset; i++)
        in_set |= c->set[i] == h->producer_id;
    if (h->attributes & TD_BATCH_ATTR_CONTROL) {
        if (batch_marker_type(b, batch_total_size(h), NULL) != TD_MARKER_ABORT)
            return;
        size_t k = 0;
        for (size_t i = 0; i < c->nset; i++)
            if (c->set[i] != h->producer_id)
                c->set[k++] = c->set[i];
        c->nset = k;
        return;
    }
    if (!((h->attributes & TD_BATCH_ATTR_TRANSACTIONAL) && in_set))
        append_values(b, h, c->v.key, c->v.out, c->v.cap);
}

static void committed_values(td_part *p, const char *key, char *out, size_t cap)
{
    out[0] = 0;
    committed_ctx c = {{key, out, cap, 0}, NULL, 0, 0, {0}, 0};
    int64_t lso = part_last_stable(p);
    ASSERT_OK(part_aborted_txns(p, part_log_start(p), lso, &c.ab, &c.nab));
    walk(p, lso, committed_cb, &c);
    free(c.ab);
}

/* The batches of the log: base and last offsets, attributes. */
typedef struct batch_list {
    td_batch_header *v;
    size_t n, cap;
} batch_list;

static void list_cb(void *arg, const uint8_t *b, const td_batch_header *h)
{
    (void)b;
    batch_list *l = arg;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 256;
        l->v = realloc(l->v, l->cap * sizeof(*l->v));
        ASSERT(l->v);
    }
    l->v[l->n++] = *h;
}

static batch_list batches(td_part *p)
{
    batch_list l = {NULL, 0, 0};
    walk(p, INT64_MAX, list_cb, &l);
    return l;
}

/* The batch at base offset off, or NULL. */
static const td_batch_header *batch_at(const batch_list *l, int64_t off)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].base_offset == off)
            return &l->v[i];
    return NULL;
}

/* The batches of `before` that are gone from p are exactly the n of `gone`; the others are
 * there with the same offsets and records. */
static void only_gone(td_part *p, const batch_list *before, const int64_t *gone, size_t n)
{
    batch_list now = batches(p);
    size_t missing = 0;
    for (size_t i = 0; i < before->n; i++) {
        const td_batch_header *a = &before->v[i], *b = batch_at(&now, a->base_offset);
        bool expected = false;
        for (size_t k = 0; k < n; k++)
            expected |= gone[k] == a->base_offset;
        if (expected) {
            ASSERT(b == NULL);
            missing++;
            continue;
        }
        ASSERT(b != NULL);
        ASSERT_EQ(batch_last_offset(b), batch_last_offset(a));
        ASSERT_EQ(b->record_count, a->record_count);
    }
    ASSERT_EQ(missing, n);
    free(now.v);
}

static size_t aborted_count(td_part *p)
{
    td_aborted_txn *a = NULL;
    size_t n = 0;
    ASSERT_OK(part_aborted_txns(p, 0, INT64_MAX, &a, &n));
    free(a);
    return n;
}

/* pid's state in the partition; false if it has none. */
static bool producer(td_part *p, int64_t pid, td_producer_info *out)
{
    td_producer_info *v;
    size_t n;
    ASSERT_OK(part_producers(p, &v, &n));
    bool found = false;
    for (size_t i = 0; i < n; i++) {
        if (v[i].pid == pid) {
            *out = v[i];
            found = true;
        }
    }
    free(v);
    return found;
}

static int64_t file_size(const char *dir, const char *name)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

/* Removes the producer snapshots, so that the next open rebuilds the producers' state and the
 * aborted transactions from the batch headers of the whole (cleaned) log. */
static void drop_snapshots(const char *dir)
{
    DIR *d = opendir(dir);
    ASSERT(d);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len > 9 && strcmp(e->d_name + len - 9, ".snapshot") == 0) {
            char path[1024];
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            ASSERT_EQ(unlink(path), 0);
            n++;
        }
    }
    closedir(d);
    ASSERT(n > 0);
}

/* The offset of the newest producer snapshot in dir (-1: none). */
static int64_t newest_snapshot(const char *dir)
{
    DIR *d = opendir(dir);
    ASSERT(d);
    struct dirent *e;
    int64_t newest = -1;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len == 29 && strcmp(e->d_name + 20, ".snapshot") == 0)
            newest = TD_MAX(newest, (int64_t)strtoll(e->d_name, NULL, 10));
    }
    closedir(d);
    return newest;
}

/* Appends filler records until the active segment rolls; returns the new segment's base. */
static int64_t fill_until_roll(td_part *p, const char *dir)
{
    int64_t was = newest_snapshot(dir);
    for (int i = 0; i < 100; i++) {
        filler(p, 1);
        if (newest_snapshot(dir) != was)
            return newest_snapshot(dir);
    }
    TEST_FAIL_("no roll");
}

static void clean_at(td_part *p, int64_t now, part_clean_result *res)
{
    part_clean_opts o = {.now_ms = now, .map_bytes = 1 << 20};
    ASSERT_OK(part_clean(p, &o, res));
}

/* No producer has a transaction open, and the LSO is the high watermark. */
static void settled(td_part *p)
{
    td_producer_info *v;
    size_t n;
    ASSERT_OK(part_producers(p, &v, &n));
    for (size_t i = 0; i < n; i++)
        ASSERT_EQ(v[i].txn_first, -1);
    free(v);
    ASSERT_EQ(part_last_stable(p), part_high_watermark(p));
}

static void test_aborted_records_are_removed_not_mapped(void)
{
    char *dir = test_tmpdir("clean-txn");
    td_part *p = open_compacted(dir);
    put(p, 1, 0, true, "k", "committed");
    marker(p, 1, true);
    put(p, 2, 0, true, "k", "aborted");
    marker(p, 2, false);
    put(p, -1, 0, false, "j", "j1");
    put(p, -1, 0, false, "j", "j2");
    filler(p, 80); /* several segments */
    char v[256];
    int markers;
    values_of(p, "k", v, sizeof(v), &markers);
    ASSERT_STR_EQ(v, "committed,aborted");
    part_clean_opts o = {.now_ms = TS + 1000, .map_bytes = 1 << 20};
    part_clean_result res;
    ASSERT_OK(part_clean(p, &o, &res));
    ASSERT(res.records_removed >= 2);
    values_of(p, "k", v, sizeof(v), &markers);
    ASSERT_STR_EQ(v, "committed"); /* the aborted one went, and did not take the committed */
    ASSERT_EQ(markers, 2); /* markers stay while this run read their transactions' batches */
    values_of(p, "j", v, sizeof(v), &markers);
    ASSERT_STR_EQ(v, "j2");
    /* The aborted transaction is still listed (its marker is there); readers find nothing. */
    ASSERT_EQ(aborted_count(p), 1);
    part_close(p);
    test_rmrf(dir);
}

static void test_nothing_past_the_last_stable_offset(void)
{
    char *dir = test_tmpdir("clean-lso");
    td_part *p = open_compacted(dir);
    put(p, -1, 0, false, "k", "old");
    filler(p, 40);
    int64_t open_at = put(p, 3, 0, true, "t", "pending"); /* a transaction left open */
    put(p, -1, 0, false, "k", "new");
    filler(p, 80);
    ASSERT_EQ(part_last_stable(p), open_at);
    part_clean_opts o = {.now_ms = TS + 1000, .map_bytes = 1 << 20};
    part_clean_result res;
    ASSERT_OK(part_clean(p, &o, &res));
    ASSERT(res.first_dirty <= open_at); /* the cleaned range ended before the open transaction */
    char v[256];
    int markers;
    values_of(p, "k", v, sizeof(v), &markers);
    ASSERT_STR_EQ(v, "old,new"); /* "new" is past the LSO: not mapped, so "old" stays */
    values_of(p, "t", v, sizeof(v), &markers);
    ASSERT_STR_EQ(v, "pending");
    marker(p, 3, true);
    filler(p, 40);
    ASSERT_OK(part_clean(p, &o, &res));
    values_of(p, "k", v, sizeof(v), &markers);
    ASSERT_STR_EQ(v, "new");
    part_close(p);
    test_rmrf(dir);
}

/* Closes and reopens p (the close writes a snapshot at the log end), then once more without
 * snapshots (the whole log replayed); returns the partition reopened. */
static td_part *reopen_both_ways(td_part *p, const char *dir)
{
    part_close(p);
    p = open_cfg(td_io_posix(), dir, RETENTION);
    settled(p);
    part_close(p);
    drop_snapshots(dir);
    return open_cfg(td_io_posix(), dir, RETENTION);
}

/*
 * A committed transaction whose records are all superseded: the run that removes its batch
 * keeps its marker (it read the batch), the next sets the marker's horizon, one after the
 * horizon removes it. Another committed transaction with a live record keeps its marker.
 * Each step is checked again after reopening, with and without snapshots; new records before
 * each run make it dirty (a reopen forgets when the cleaned section has work).
 */
static void test_committed_marker_goes(void)
{
    char *dir = test_tmpdir("clean-commit");
    td_part *p = open_cfg(td_io_posix(), dir, RETENTION);
    int64_t d1 = put(p, 1, 0, true, "c", "t1");
    int64_t m1 = marker(p, 1, true);
    put(p, -1, 0, false, "c", "plain"); /* supersedes t1 */
    int64_t d2 = put(p, 1, 1, true, "live", "t2");
    int64_t m2 = marker(p, 1, true);
    filler(p, 80);
    batch_list before = batches(p);
    int64_t t = TS + 5000;
    part_clean_result res;
    for (int step = 1; step <= 4; step++) {
        /* 1: d1 goes, m1 stays (read with it); 2: m1 gets its horizon, t + 2R; 3: before the
         * horizon m1 stays; 4: after it m1 goes. */
        int64_t now = step == 1 ? t : step == 2 ? t + RETENTION : t + 2 * RETENTION - (step == 3);
        filler(p, 40);
        clean_at(p, now, &res);
        for (int pass = 0; pass < 2; pass++) {
            batch_list l = batches(p);
            ASSERT(batch_at(&l, d1) == NULL);
            const td_batch_header *h1 = batch_at(&l, m1);
            if (step < 4) {
                ASSERT(h1 != NULL);
                ASSERT_EQ((h1->attributes & ATTR_DELETE_HORIZON) != 0, step >= 2);
                if (step >= 2)
                    ASSERT_EQ(h1->base_timestamp, t + 2 * RETENTION);
            } else {
                ASSERT(h1 == NULL);
            }
            ASSERT(batch_at(&l, d2) != NULL); /* a live record: its batch and marker stay */
            ASSERT(batch_at(&l, m2) != NULL);
            ASSERT((batch_at(&l, m2)->attributes & ATTR_DELETE_HORIZON) == 0);
            int64_t gone[2] = {d1, m1};
            only_gone(p, &before, gone, step < 4 ? 1 : 2);
            char v[256];
            int markers;
            values_of(p, "c", v, sizeof(v), &markers);
            ASSERT_STR_EQ(v, "plain");
            committed_values(p, "live", v, sizeof(v));
            ASSERT_STR_EQ(v, "t2");
            settled(p);
            td_producer_info pi;
            ASSERT(producer(p, 1, &pi));
            ASSERT_EQ(pi.epoch, 0);
            free(l.v);
            if (pass == 0)
                p = reopen_both_ways(p, dir);
        }
    }
    free(before.v);
    part_close(p);
    test_rmrf(dir);
}

/*
 * An aborted transaction: its record goes in the first run (never visible to read_committed),
 * its marker gets a horizon in the second and goes in a run after the horizon, and with it its
 * aborted transaction, in memory and in aborted-txns. The producer's next transaction, which
 * follows the marker, is read_committed data throughout.
 */
static void test_aborted_marker_and_its_entry_go(void)
{
    char *dir = test_tmpdir("clean-abort");
    td_part *p = open_cfg(td_io_posix(), dir, RETENTION);
    put(p, -1, 0, false, "k", "committed");
    int64_t a1 = put(p, 2, 0, true, "k", "aborted");
    int64_t ma = marker(p, 2, false);
    int64_t d2 = put(p, 2, 1, true, "q", "p2");
    int64_t mc = marker(p, 2, true);
    filler(p, 80);
    batch_list before = batches(p);
    char v[256];
    int markers;
    committed_values(p, "k", v, sizeof(v));
    ASSERT_STR_EQ(v, "committed");
    ASSERT_EQ(aborted_count(p), 1);
    ASSERT_EQ(file_size(dir, "aborted-txns"), 36);
    int64_t t = TS + 5000;
    part_clean_result res;
    for (int step = 1; step <= 3; step++) {
        /* 1: a1's record goes (its batch too: not the producer's last), ma stays; 2: ma gets
         * its horizon; 3: after it ma goes with its entry. */
        filler(p, 40);
        clean_at(p, t + (step - 1) * RETENTION, &res);
        for (int pass = 0; pass < 2; pass++) {
            batch_list l = batches(p);
            ASSERT(batch_at(&l, a1) == NULL);
            const td_batch_header *h = batch_at(&l, ma);
            ASSERT_EQ(h != NULL, step < 3);
            if (h)
                ASSERT_EQ((h->attributes & ATTR_DELETE_HORIZON) != 0, step == 2);
            ASSERT(batch_at(&l, d2) != NULL && batch_at(&l, mc) != NULL);
            int64_t gone[2] = {a1, ma};
            only_gone(p, &before, gone, step < 3 ? 1 : 2);
            ASSERT_EQ(aborted_count(p), step < 3 ? 1 : 0);
            ASSERT_EQ(file_size(dir, "aborted-txns"), step < 3 ? 36 : 0);
            values_of(p, "k", v, sizeof(v), &markers);
            ASSERT_STR_EQ(v, "committed");
            committed_values(p, "k", v, sizeof(v));
            ASSERT_STR_EQ(v, "committed");
            committed_values(p, "q", v, sizeof(v));
            ASSERT_STR_EQ(v, "p2");
            settled(p);
            free(l.v);
            if (pass == 0)
                p = reopen_both_ways(p, dir);
        }
    }
    free(before.v);
    part_close(p);
    test_rmrf(dir);
}

/*
 * A producer whose last batch is a marker: the coordinator aborted its transaction at a newer
 * epoch, so its state holds no data batch at its epoch, and only that marker says the epoch. Its
 * aborted record goes, the marker gets a horizon, and stays after it; an open that replays the
 * whole log still finds the producer at epoch 1, with nothing open.
 */
static void test_producer_last_marker_stays(void)
{
    char *dir = test_tmpdir("clean-last");
    td_part *p = open_cfg(td_io_posix(), dir, RETENTION);
    int64_t a = put(p, 3, 0, true, "z", "aborted");
    int64_t m = marker_at_epoch(p, 3, 1, false);
    filler(p, 80);
    int64_t t = TS + 5000;
    part_clean_result res;
    for (int step = 0; step < 4; step++) {
        filler(p, 40);
        clean_at(p, t + step * RETENTION, &res);
    }
    batch_list l = batches(p);
    ASSERT(batch_at(&l, a) == NULL);
    const td_batch_header *h = batch_at(&l, m);
    ASSERT(h != NULL);
    ASSERT((h->attributes & ATTR_DELETE_HORIZON) != 0); /* discardable, but carries the epoch */
    ASSERT(h->base_timestamp < t + 3 * RETENTION);
    free(l.v);
    char v[64];
    committed_values(p, "z", v, sizeof(v));
    ASSERT_STR_EQ(v, "");
    p = reopen_both_ways(p, dir);
    td_producer_info pi;
    ASSERT(producer(p, 3, &pi));
    ASSERT_EQ(pi.epoch, 1);
    ASSERT_EQ(pi.txn_first, -1);
    settled(p);
    part_close(p);
    test_rmrf(dir);
}

/*
 * A marker at or past the oldest producer snapshot stays: that snapshot holds its transaction
 * open, and an open that falls back on it (the newer snapshot lost) learns the transaction's
 * end only from the marker. Here the transaction's batch is below the snapshot at B, its marker
 * above it, and its record superseded; after the marker's horizon the partition's files are
 * copied as a crash would leave them (no close, so no snapshot at the log end), the newer
 * snapshot is removed, and the copy must open with no transaction open.
 */
static void test_marker_past_a_snapshot_stays(void)
{
    char *dir = test_tmpdir("clean-snap");
    td_part *p = open_cfg(td_io_posix(), dir, RETENTION);
    filler(p, 5);
    int64_t d = put(p, 5, 0, true, "x", "t");
    int64_t b = fill_until_roll(p, dir);
    int64_t m = marker(p, 5, true);
    put(p, -1, 0, false, "x", "new");
    int64_t b2 = fill_until_roll(p, dir);
    ASSERT(d < b && b <= m && m < b2);
    put(p, 5, 1, false, "y", "i"); /* not in a transaction: d is not the producer's last */
    int64_t t = TS + 5000;
    part_clean_result res;
    for (int step = 0; step < 4; step++)
        clean_at(p, t + step * RETENTION, &res); /* d goes, then m would after its horizon */
    batch_list l = batches(p);
    ASSERT(batch_at(&l, d) == NULL);
    ASSERT(batch_at(&l, m) != NULL);
    ASSERT((batch_at(&l, m)->attributes & ATTR_DELETE_HORIZON) != 0);
    free(l.v);
    ASSERT_EQ(newest_snapshot(dir), b2);
    char *copy = test_tmpdir("clean-snap-copy"), cmd[2048], path[1024];
    snprintf(cmd, sizeof(cmd), "cp -a '%s'/. '%s'/", dir, copy);
    ASSERT_EQ(system(cmd), 0);
    snprintf(path, sizeof(path), "%s/%020" PRId64 ".snapshot", copy, b2);
    ASSERT_EQ(unlink(path), 0);
    td_part *q = open_cfg(td_io_posix(), copy, RETENTION);
    settled(q);
    part_close(q);
    test_rmrf(copy);
    part_close(p);
    test_rmrf(dir);
}

/*
 * With no more writes, the cleaned section is cleaned again once something in it can go
 * (part_clean_info.due_ms), and not before: a tombstone, and an aborted transaction's marker,
 * which takes a run to become discardable and one more after its horizon.
 */
static void test_due_without_new_records(void)
{
    char *dir = test_tmpdir("clean-due");
    td_part *p = open_cfg(td_io_posix(), dir, RETENTION);
    put(p, -1, 0, false, "gone", "v");
    put(p, -1, 0, false, "gone", NULL);
    int64_t a1 = put(p, 2, 0, true, "k", "aborted");
    int64_t ma = marker(p, 2, false);
    put(p, 2, 1, true, "q", "p2");
    marker(p, 2, true);
    filler(p, 80);
    int64_t t = TS + 5000;
    part_clean_info st;
    ASSERT(part_clean_status(p, t, &st));
    ASSERT_EQ(st.due_ms, INT64_MAX);
    part_clean_result res;
    clean_at(p, t, &res); /* the tombstone's horizon: t + R; a1 goes, ma waits a run */
    ASSERT(part_clean_status(p, t, &st));
    ASSERT_EQ(st.dirty_bytes, 0);
    ASSERT_EQ(st.due_ms, t + RETENTION);
    char v[64];
    int markers;
    values_of(p, "gone", v, sizeof(v), &markers);
    ASSERT_STR_EQ(v, "(null)");
    clean_at(p, t + RETENTION - 1, &res); /* not due yet: nothing */
    ASSERT_EQ(res.segments_before, 0);
    clean_at(p, t + RETENTION, &res); /* the tombstone goes, ma gets its horizon t + 2R */
    ASSERT(res.segments_before > 0);
    values_of(p, "gone", v, sizeof(v), &markers);
    ASSERT_STR_EQ(v, "");
    batch_list l = batches(p);
    ASSERT(batch_at(&l, a1) == NULL);
    ASSERT(batch_at(&l, ma) != NULL);
    free(l.v);
    ASSERT(part_clean_status(p, t + RETENTION, &st));
    ASSERT_EQ(st.due_ms, t + 2 * RETENTION);
    clean_at(p, t + 2 * RETENTION, &res);
    ASSERT(res.segments_before > 0);
    l = batches(p);
    ASSERT(batch_at(&l, ma) == NULL);
    free(l.v);
    ASSERT_EQ(aborted_count(p), 0);
    ASSERT(part_clean_status(p, t + 2 * RETENTION, &st));
    ASSERT_EQ(st.due_ms, INT64_MAX); /* nothing waits any more */
    clean_at(p, t + 10 * RETENTION, &res);
    ASSERT_EQ(res.segments_before, 0);
    part_close(p);
    test_rmrf(dir);
}

/*
 * A crash at every write, fsync, rename and unlink of the run that removes an ABORT marker
 * (tests/support/memio.c), with the unsynced writes dropped or torn: the reopened partition is
 * online, has no transaction open and its LSO at the high watermark, a read_committed read
 * never sees the aborted record nor loses the producer's next transaction, and the aborted
 * transaction is listed only while its marker is there. A crash after aborted-txns was
 * rewritten and before the swap's commit point leaves the marker without its entry: some
 * failure point must end there, and the next run then removes the marker.
 */
static void crash_case(int64_t k, bool *finished, bool *marker_without_entry)
{
    memio *m = memio_new();
    const td_io *io = memio_table(m);
    td_part *p = open_cfg(io, "/d/p", RETENTION);
    put(p, -1, 0, false, "k", "committed");
    put(p, 2, 0, true, "k", "aborted");
    int64_t ma = marker(p, 2, false);
    put(p, 2, 1, true, "q", "p2");
    marker(p, 2, true);
    filler(p, 80);
    int64_t t = TS + 5000;
    part_clean_result res;
    clean_at(p, t, &res);
    clean_at(p, t + RETENTION, &res); /* ma's horizon: t + 2R */
    int64_t end = part_log_end(p);
    memio_count_dir_ops(m, true);
    memio_fail_after(m, k);
    part_clean_opts o = {.now_ms = t + 2 * RETENTION, .map_bytes = 1 << 20};
    int rc = part_clean(p, &o, &res);
    *finished = !memio_dead(m);
    if (*finished)
        ASSERT_OK(rc);
    memio_fail_after(m, 0);
    part_close(p);
    memio_crash(m, (uint64_t)k * 7919 + 1);
    memio_count_dir_ops(m, false);
    p = open_cfg(io, "/d/p", RETENTION);
    ASSERT_EQ(part_log_end(p), end);
    settled(p);
    char v[64];
    committed_values(p, "k", v, sizeof(v));
    ASSERT_STR_EQ(v, "committed");
    committed_values(p, "q", v, sizeof(v));
    ASSERT_STR_EQ(v, "p2");
    batch_list l = batches(p);
    bool has_marker = batch_at(&l, ma) != NULL;
    free(l.v);
    size_t entries = aborted_count(p);
    if (!has_marker)
        ASSERT_EQ(entries, 0);
    if (*finished)
        ASSERT(!has_marker);
    if (has_marker && entries == 0) {
        *marker_without_entry = true;
        filler(p, 40); /* the open forgot what was due: new records make the next run */
        clean_at(p, t + 2 * RETENTION, &res);
        l = batches(p);
        ASSERT(batch_at(&l, ma) == NULL);
        free(l.v);
        settled(p);
    }
    part_close(p);
    memio_free(m);
}

static void test_crash_while_removing_a_marker(void)
{
    td_log_set_level(TD_LOG_OFF); /* it kills on purpose */
    bool finished = false, marker_without_entry = false;
    int64_t k = 0;
    for (; !finished; k++) {
        ASSERT(k < 10000);
        crash_case(k, &finished, &marker_without_entry);
    }
    td_log_set_level(TD_LOG_INFO);
    ASSERT(k > 5);
    ASSERT(marker_without_entry);
}

TEST_MAIN(TEST(test_aborted_records_are_removed_not_mapped),
          TEST(test_nothing_past_the_last_stable_offset), TEST(test_committed_marker_goes),
          TEST(test_aborted_marker_and_its_entry_go), TEST(test_producer_last_marker_stays),
          TEST(test_marker_past_a_snapshot_stays), TEST(test_due_without_new_records),
          TEST(test_crash_while_removing_a_marker))
