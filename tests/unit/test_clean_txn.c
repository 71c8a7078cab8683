/* Unit tests for compaction with transactions (storage/cleaner.c "Transactions"): an aborted
 * record of a key does not remove the committed one before it and is itself removed; markers
 * stay; nothing at or past the last stable offset is cleaned. */
#include "storage/storage.h"
#include "test.h"

#define TS 1700000000000LL

static td_part *open_compacted(const char *dir)
{
    td_topic_config c;
    td_topic_config_init(&c);
    c.cleanup_policy = TD_CLEANUP_COMPACT;
    c.segment_bytes = 2048;
    c.min_compaction_lag_ms = 0;
    c.fsync_policy = TD_FSYNC_ALWAYS;
    td_part *p;
    ASSERT_OK(part_open(td_io_posix(), dir, "t/0", &c, &p));
    return p;
}

/* One record key=value from producer pid (-1: none), transactional or not; its offset. */
static int64_t put(td_part *p, int64_t pid, int32_t seq, bool txn, const char *key,
                   const char *value)
{
    td_event ev = {.key = key,
                   .key_len = strlen(key),
                   .value = value,
                   .value_len = strlen(value),
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

static int64_t marker(td_part *p, int64_t pid, bool commit)
{
    td_append_result r;
    ASSERT_OK(part_append_marker(p, pid, 0, commit, 0, TS, &r));
    ASSERT_OK(part_wait_durable(p, r.end_offset));
    return r.base_offset;
}

/* Plain records of distinct keys until the log end passes `until` segments' worth. */
static void filler(td_part *p, int n)
{
    static int k;
    for (int i = 0; i < n; i++) {
        char key[32];
        snprintf(key, sizeof(key), "f%d", k++);
        put(p, -1, 0, false, key, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    }
}

/* Every record with key `key` below the high watermark: its values, joined with ','. Also
 * counts the transaction markers in *markers. */
static void values_of(td_part *p, const char *key, char *out, size_t cap, int *markers)
{
    out[0] = 0;
    *markers = 0;
    int64_t off = part_log_start(p), hw = part_high_watermark(p);
    td_batch_reader br;
    batch_reader_init(&br);
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
            if (h.attributes & TD_BATCH_ATTR_CONTROL) {
                (*markers)++;
            } else {
                ASSERT_OK(batch_reader_open(&br, buf.p + pos, batch_total_size(&h), 1 << 20));
                td_record rec;
                while (batch_reader_next(&br, &rec) == 1)
                    if (rec.key.n == strlen(key) && memcmp(rec.key.p, key, rec.key.n) == 0)
                        snprintf(out + strlen(out), cap - strlen(out), "%s%.*s", out[0] ? "," : "",
                                 (int)rec.value.n, (const char *)rec.value.p);
            }
            pos += batch_total_size(&h);
        }
        off = r.next_offset;
        part_range_release(&r);
    }
    td_buf_free(&buf);
    batch_reader_free(&br);
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
    ASSERT_EQ(markers, 2);         /* markers stay */
    values_of(p, "j", v, sizeof(v), &markers);
    ASSERT_STR_EQ(v, "j2");
    /* The aborted transaction is still listed (its marker is there); readers find nothing. */
    td_aborted_txn *a = NULL;
    size_t n = 0;
    ASSERT_OK(part_aborted_txns(p, 0, part_high_watermark(p), &a, &n));
    ASSERT_EQ(n, 1);
    free(a);
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

TEST_MAIN(TEST(test_aborted_records_are_removed_not_mapped),
          TEST(test_nothing_past_the_last_stable_offset))
