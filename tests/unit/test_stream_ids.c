/* Unit tests for stream IDs (storage/part.c, docs/redis.md#stream-ids). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "storage/storage.h"
#include "test.h"

static td_topic_config small_cfg(void)
{
    td_topic_config c;
    td_topic_config_init(&c);
    c.segment_bytes = 1024;
    c.retention_ms = -1;
    return c;
}

/* Appends a batch of `count` records with timestamp ts, with an ID request (mode, ms, seq);
 * returns the append's rc and the first record's ID in *got. */
static int append_id(td_part *p, int count, int64_t ts, int mode, uint64_t ms, uint64_t seq,
                     td_sid *got)
{
    td_event ev[16];
    for (int i = 0; i < count; i++)
        ev[i] = (td_event){.value = "v", .value_len = 1, .timestamp_ms = ts};
    td_batch_encode_opts o;
    batch_encode_opts_init(&o);
    td_buf b;
    td_buf_init(&b);
    ASSERT_OK(batch_encode(&b, &o, ev, (size_t)count));
    part_sid_req req = {mode, {ms, seq}, {0, 0}};
    td_append_result r;
    int rc = part_append_sid(p, b.p, b.len, ts, &r, &req);
    if (rc == 0)
        ASSERT_OK(part_wait_durable(p, r.end_offset));
    td_buf_free(&b);
    if (got)
        *got = req.got;
    return rc;
}

static td_sid id_at(td_part *p, int64_t off)
{
    td_sid id;
    ASSERT_OK(part_stream_id(p, off, &id, NULL));
    return id;
}

/* Every ID of the partition, offsets [from, end), into v; checks they strictly increase and
 * that seeking each finds its offset. */
static size_t all_ids(td_part *p, int64_t from, td_sid *v, size_t cap)
{
    int64_t end = part_log_end(p);
    size_t n = 0;
    for (int64_t o = from; o < end && n < cap; o++, n++) {
        v[n] = id_at(p, o);
        if (n > 0)
            ASSERT(td_sid_cmp(v[n - 1], v[n]) < 0);
        int64_t found;
        ASSERT_OK(part_stream_seek(p, v[n], from, INT64_MAX, &found));
        ASSERT_EQ(found, o);
    }
    return n;
}

static void test_rule_and_explicit_ids(void)
{
    char *dir = test_tmpdir("sid");
    td_topic_config c = small_cfg();
    td_part *p;
    ASSERT_OK(part_open(td_io_posix(), dir, "s/0", &c, &p));
    td_sid last, got;
    ASSERT_OK(part_stream_last(p, &last));
    ASSERT(last.ms == 0 && last.seq == 0);

    /* `*`: ms is the batch timestamp, seq the offset. */
    ASSERT_OK(append_id(p, 1, 1000, PART_SID_AUTO, 0, 0, &got));
    ASSERT(got.ms == 1000 && got.seq == 0);
    ASSERT_OK(append_id(p, 3, 1000, PART_SID_AUTO, 0, 0, &got));
    ASSERT(got.ms == 1000 && got.seq == 1);
    /* A timestamp going back does not take ms back: the stream time stays at 1000. */
    ASSERT_OK(append_id(p, 1, 900, PART_SID_AUTO, 0, 0, &got));
    ASSERT(got.ms == 1000 && got.seq == 4);
    ASSERT_OK(part_stream_last(p, &last));
    ASSERT(last.ms == 1000 && last.seq == 4);

    /* Explicit IDs: not above the last is refused; an ID the rule would not give is kept. */
    ASSERT_EQ(append_id(p, 1, 1000, PART_SID_EXPLICIT, 1000, 4, NULL), TD_ESEQUENCE);
    ASSERT_EQ(append_id(p, 1, 999, PART_SID_EXPLICIT, 999, 100, NULL), TD_ESEQUENCE);
    ASSERT_OK(append_id(p, 1, 1000, PART_SID_EXPLICIT, 1000, 50, &got));
    ASSERT(got.ms == 1000 && got.seq == 50);
    ASSERT_OK(append_id(p, 1, 1000, PART_SID_AUTO, 0, 0, &got)); /* continues after 1000-50 */
    ASSERT(got.ms == 1000 && got.seq == 51);
    ASSERT_OK(append_id(p, 1, 5000, PART_SID_EXPLICIT, 5000, 0, &got));
    ASSERT(got.ms == 5000 && got.seq == 0);
    /* `ms-*`: below the last ms is refused; equal continues the sequence. */
    ASSERT_EQ(append_id(p, 1, 4999, PART_SID_MS, 4999, 0, NULL), TD_ESEQUENCE);
    ASSERT_OK(append_id(p, 1, 5000, PART_SID_MS, 5000, 0, &got));
    ASSERT(got.ms == 5000 && got.seq == 1);

    /* XSETID: the next ID is above what was set. */
    ASSERT_EQ(part_stream_set_last(p, (td_sid){4000, 0}), TD_ESEQUENCE);
    ASSERT_OK(part_stream_set_last(p, (td_sid){7000, 7}));
    ASSERT_OK(part_stream_last(p, &last));
    ASSERT(last.ms == 7000 && last.seq == 7);
    ASSERT_OK(append_id(p, 1, 6000, PART_SID_AUTO, 0, 0, &got));
    ASSERT(got.ms == 7000 && got.seq == 8);

    td_sid before[64];
    size_t n = all_ids(p, 0, before, 64);
    ASSERT_EQ(n, (size_t)part_log_end(p));
    /* Seeking between IDs finds the next one; past the last finds the end. */
    int64_t off;
    ASSERT_OK(part_stream_seek(p, (td_sid){1000, 20}, 0, INT64_MAX, &off));
    ASSERT(td_sid_cmp(id_at(p, off), (td_sid){1000, 50}) == 0);
    ASSERT_OK(part_stream_seek(p, (td_sid){7001, 0}, 0, INT64_MAX, &off));
    ASSERT_EQ(off, part_log_end(p));
    ASSERT_OK(part_stream_seek(p, (td_sid){0, 0}, 2, INT64_MAX, &off));
    ASSERT_EQ(off, 2);

    /* A reopen gives the same IDs (the anchors are in their file). */
    part_close(p);
    ASSERT_OK(part_open(td_io_posix(), dir, "s/0", &c, &p));
    td_sid after[64];
    ASSERT_EQ(all_ids(p, 0, after, 64), n);
    ASSERT_MEM_EQ(before, after, n * sizeof(td_sid));
    ASSERT_OK(part_stream_last(p, &last));
    ASSERT(last.ms == 7000 && last.seq == 8);
    part_close(p);
    test_rmrf(dir);
}

/* IDs do not change when segments before them are deleted, even where a deleted segment held a
 * larger timestamp than what follows, or the anchor that set the shift. */
static void test_ids_survive_deletion(void)
{
    char *dir = test_tmpdir("sid");
    td_topic_config c = small_cfg();
    td_part *p;
    ASSERT_OK(part_open(td_io_posix(), dir, "s/0", &c, &p));
    td_sid got;
    ASSERT_OK(append_id(p, 1, 100, PART_SID_EXPLICIT, 100, 1000, &got));
    ASSERT_OK(append_id(p, 1, 9000, PART_SID_AUTO, 0, 0, &got)); /* a clock far ahead */
    ASSERT(got.ms == 9000 && got.seq == 1001);
    for (int i = 0; i < 60; i++) /* several segments of records with earlier timestamps */
        ASSERT_OK(append_id(p, 2, 200 + i, PART_SID_AUTO, 0, 0, NULL));
    td_part_stats st;
    part_stats(p, &st);
    ASSERT(st.segments >= 3);
    td_sid before[200];
    size_t n = all_ids(p, 0, before, 200);
    for (size_t i = 2; i < n; i++)
        ASSERT(before[i].ms == 9000 && before[i].seq == 1000 + i);

    int64_t cut = 40;
    int64_t ls;
    ASSERT_OK(part_delete_before(p, cut, &ls));
    part_stats(p, &st);
    ASSERT(st.segments >= 2);
    td_sid after[200];
    ASSERT_EQ(all_ids(p, ls, after, 200), n - (size_t)ls);
    ASSERT_MEM_EQ(before + ls, after, (n - (size_t)ls) * sizeof(td_sid));
    part_close(p);
    ASSERT_OK(part_open(td_io_posix(), dir, "s/0", &c, &p));
    ASSERT_EQ(all_ids(p, ls, after, 200), n - (size_t)ls);
    ASSERT_MEM_EQ(before + ls, after, (n - (size_t)ls) * sizeof(td_sid));
    /* Everything deleted: the last ID stays, and the next continues after it. */
    ASSERT_OK(part_delete_before(p, TD_DELETE_TO_HIGH_WATERMARK, &ls));
    td_sid last;
    ASSERT_OK(part_stream_last(p, &last));
    ASSERT(td_sid_cmp(last, before[n - 1]) == 0);
    ASSERT_OK(append_id(p, 1, 300, PART_SID_AUTO, 0, 0, &got));
    ASSERT(td_sid_cmp(got, last) > 0);
    part_close(p);
    test_rmrf(dir);
}

/* A torn anchor entry (a crash while writing it) is dropped at open; so is one past the log end
 * (its record was never written). */
static void test_torn_anchor_file(void)
{
    char *dir = test_tmpdir("sid");
    td_topic_config c = small_cfg();
    td_part *p;
    ASSERT_OK(part_open(td_io_posix(), dir, "s/0", &c, &p));
    td_sid got;
    ASSERT_OK(append_id(p, 1, 100, PART_SID_EXPLICIT, 100, 10, &got));
    ASSERT_OK(append_id(p, 1, 100, PART_SID_EXPLICIT, 100, 20, &got));
    part_close(p);
    char path[512];
    snprintf(path, sizeof(path), "%s/stream-anchors", dir);
    FILE *f = fopen(path, "ab");
    ASSERT(f);
    static const uint8_t junk[40] = {0, 0, 0, 0, 0, 0, 0, 9, 1, 2, 3};
    ASSERT_EQ(fwrite(junk, 1, sizeof(junk), f), sizeof(junk));
    fclose(f);
    ASSERT_OK(part_open(td_io_posix(), dir, "s/0", &c, &p));
    ASSERT(td_sid_cmp(id_at(p, 0), (td_sid){100, 10}) == 0);
    ASSERT(td_sid_cmp(id_at(p, 1), (td_sid){100, 20}) == 0);
    ASSERT_OK(append_id(p, 1, 100, PART_SID_AUTO, 0, 0, &got));
    ASSERT(got.ms == 100 && got.seq == 21);
    part_close(p);
    test_rmrf(dir);
}

/* Exact lookups, the first offset after an ID, and the next ID. */
static void test_find_and_after(void)
{
    char *dir = test_tmpdir("sid-find");
    td_topic_config c = small_cfg();
    td_part *p;
    ASSERT_OK(part_open(td_io_posix(), dir, "s/0", &c, &p));
    td_sid got;
    ASSERT_OK(append_id(p, 3, 1000, PART_SID_AUTO, 0, 0, &got)); /* 1000-0 .. 1000-2 */
    ASSERT_OK(append_id(p, 2, 2000, PART_SID_AUTO, 0, 0, &got)); /* 2000-3, 2000-4 */
    int64_t off;
    ASSERT_OK(part_stream_find(p, (td_sid){2000, 4}, &off));
    ASSERT_EQ(off, 4);
    ASSERT_EQ(part_stream_find(p, (td_sid){2000, 2}, &off), TD_ENOTFOUND); /* between two */
    ASSERT_EQ(part_stream_find(p, (td_sid){3000, 0}, &off), TD_ENOTFOUND); /* past the end */
    ASSERT_OK(part_stream_after(p, (td_sid){0, 0}, &off));
    ASSERT_EQ(off, 0);
    ASSERT_OK(part_stream_after(p, (td_sid){1000, 2}, &off));
    ASSERT_EQ(off, 3);
    ASSERT_OK(part_stream_after(p, (td_sid){1500, 0}, &off));
    ASSERT_EQ(off, 3);
    ASSERT_OK(part_stream_after(p, (td_sid){UINT64_MAX, UINT64_MAX}, &off));
    ASSERT_EQ(off, 5);
    /* Below the log start, nothing is found; after counts from it. */
    int64_t start;
    ASSERT_OK(part_delete_before(p, 2, &start));
    ASSERT_EQ(part_stream_find(p, (td_sid){1000, 1}, &off), TD_ENOTFOUND);
    ASSERT_OK(part_stream_after(p, (td_sid){0, 0}, &off));
    ASSERT_EQ(off, 2);
    td_sid id = {5, 7};
    ASSERT(td_sid_next(&id) && id.ms == 5 && id.seq == 8);
    id = (td_sid){5, UINT64_MAX};
    ASSERT(td_sid_next(&id) && id.ms == 6 && id.seq == 0);
    id = (td_sid){INT64_MAX, UINT64_MAX}; /* ms is unsigned: the full 64 bits */
    ASSERT(td_sid_next(&id) && id.ms == (uint64_t)INT64_MAX + 1 && id.seq == 0);
    id = (td_sid){UINT64_MAX, UINT64_MAX};
    ASSERT(!td_sid_next(&id));
    part_close(p);
    test_rmrf(dir);
}

/* An io table whose renames onto the anchor file fail while fail_anchors is set. */
static bool fail_anchors;
static int anchor_rename(const td_io *io, const char *from, const char *to)
{
    if (fail_anchors && strstr(to, "stream-anchors"))
        return -ENOSPC;
    return td_io_posix()->rename(io, from, to);
}

/* Segments that DeleteRecords could not remove at the time (their anchors could not be saved)
 * go at the next retention pass, with no retention limit configured; IDs do not change. */
static void test_deleted_segments_go_later(void)
{
    char *dir = test_tmpdir("sid-later");
    td_topic_config c = small_cfg();
    c.retention_bytes = c.retention_records = -1;
    td_io io = *td_io_posix();
    io.rename = anchor_rename;
    td_part *p;
    ASSERT_OK(part_open(&io, dir, "s/0", &c, &p));
    ASSERT_OK(append_id(p, 1, 9000, PART_SID_AUTO, 0, 0, NULL)); /* a clock far ahead */
    for (int i = 0; i < 60; i++) /* earlier timestamps: dropping a segment needs an anchor */
        ASSERT_OK(append_id(p, 2, 200 + i, PART_SID_AUTO, 0, 0, NULL));
    td_part_stats st;
    part_stats(p, &st);
    size_t segs = st.segments;
    ASSERT(segs >= 4);
    td_sid before[200];
    size_t n = all_ids(p, 0, before, 200);
    int deleted = -1;
    ASSERT_OK(part_enforce_retention(p, td_wall_ms(), &deleted));
    ASSERT_EQ(deleted, 0); /* nothing is due */

    fail_anchors = true;
    int64_t ls;
    /* The records are deleted (the start is saved), but the space is not free: reported. */
    ASSERT_EQ(part_delete_before(p, 80, &ls), -ENOSPC);
    ASSERT(strstr(td_last_error(), "are deleted, but their segments could not be removed"));
    ASSERT_EQ(ls, 80);
    ASSERT_EQ(part_log_start(p), 80);
    part_stats(p, &st);
    ASSERT_EQ(st.segments, segs); /* the anchor could not be saved: every segment stays */
    ASSERT_EQ(part_enforce_retention(p, td_wall_ms(), &deleted), -ENOSPC);
    ASSERT_EQ(deleted, 0);

    fail_anchors = false;
    ASSERT_OK(part_enforce_retention(p, td_wall_ms(), &deleted));
    ASSERT(deleted >= 2);
    part_stats(p, &st);
    ASSERT_EQ(st.segments, segs - (size_t)deleted);
    ASSERT(part_log_start(p) == 80);
    td_sid after[200];
    ASSERT_EQ(all_ids(p, 80, after, 200), n - 80);
    ASSERT_MEM_EQ(before + 80, after, (n - 80) * sizeof(td_sid));
    ASSERT_OK(part_enforce_retention(p, td_wall_ms(), &deleted));
    ASSERT_EQ(deleted, 0); /* the segment holding offset 80 stays */
    part_close(p);
    test_rmrf(dir);
}

#define U64MAX UINT64_MAX
#define BIG ((uint64_t)INT64_MAX + 1) /* the first ms above every Kafka timestamp */

/* Redis's `ms-*`: ms-0 above the last ID's ms, last seq + 1 at the same ms, 0-1 on an empty
 * stream; kept by anchors across a reopen. */
static void test_ms_star(void)
{
    char *dir = test_tmpdir("sid-ms");
    td_topic_config c = small_cfg();
    td_part *p;
    ASSERT_OK(part_open(td_io_posix(), dir, "s/0", &c, &p));
    td_sid got;
    ASSERT_OK(append_id(p, 1, 0, PART_SID_MS, 0, 0, &got));
    ASSERT(got.ms == 0 && got.seq == 1);
    ASSERT_OK(append_id(p, 1, 123, PART_SID_EXPLICIT, 123, 456, &got));
    ASSERT_OK(append_id(p, 1, 789, PART_SID_MS, 789, 0, &got));
    ASSERT(got.ms == 789 && got.seq == 0);
    ASSERT_OK(append_id(p, 1, 789, PART_SID_MS, 789, 0, &got));
    ASSERT(got.ms == 789 && got.seq == 1);
    ASSERT_EQ(append_id(p, 1, 788, PART_SID_MS, 788, 0, NULL), TD_ESEQUENCE);
    ASSERT_OK(append_id(p, 1, 1000, PART_SID_AUTO, 0, 0, &got)); /* the rule after the anchor */
    ASSERT(got.ms == 1000 && got.seq == 2);
    /* The same ms after the largest seq: no seq is left (Redis refuses it too). */
    ASSERT_OK(append_id(p, 1, 2000, PART_SID_EXPLICIT, 2000, U64MAX, &got));
    ASSERT_EQ(append_id(p, 1, 2000, PART_SID_MS, 2000, 0, NULL), TD_ERANGE);
    td_sid before[16];
    size_t n = all_ids(p, 0, before, 16);
    ASSERT_EQ(n, (size_t)6);
    part_close(p);
    ASSERT_OK(part_open(td_io_posix(), dir, "s/0", &c, &p));
    td_sid after[16];
    ASSERT_EQ(all_ids(p, 0, after, 16), n);
    ASSERT_MEM_EQ(before, after, n * sizeof(td_sid));
    part_close(p);
    test_rmrf(dir);
}

/* The full unsigned range: ms above INT64_MAX (the batch's timestamp is INT64_MAX), seq up to
 * 2^64-1, the rule's next batch at (ms + 1, 0) when seq would pass it, and every append refused
 * after the largest ID, Kafka's too; the same IDs after a reopen. */
static void test_full_range(void)
{
    char *dir = test_tmpdir("sid-full");
    td_topic_config c = small_cfg();
    td_part *p;
    ASSERT_OK(part_open(td_io_posix(), dir, "s/0", &c, &p));
    td_sid got, last;
    ASSERT_OK(append_id(p, 1, INT64_MAX, PART_SID_EXPLICIT, BIG + 5, U64MAX - 1, &got));
    ASSERT(got.ms == BIG + 5 && got.seq == U64MAX - 1);
    /* Below the last ID: refused, whatever the batch's timestamp. */
    ASSERT_EQ(append_id(p, 1, INT64_MAX, PART_SID_EXPLICIT, 1000, 0, NULL), TD_ESEQUENCE);
    ASSERT_OK(append_id(p, 1, 1000, PART_SID_AUTO, 0, 0, &got));
    ASSERT(got.ms == BIG + 5 && got.seq == U64MAX);
    ASSERT_OK(append_id(p, 3, 1000, PART_SID_AUTO, 0, 0, &got)); /* seq would pass 2^64-1 */
    ASSERT(got.ms == BIG + 6 && got.seq == 0);
    ASSERT_OK(part_stream_last(p, &last));
    ASSERT(last.ms == BIG + 6 && last.seq == 2);
    ASSERT_OK(append_id(p, 1, INT64_MAX, PART_SID_MS, BIG + 6, 0, &got));
    ASSERT(got.ms == BIG + 6 && got.seq == 3);
    /* An explicit batch whose later records would pass the largest seq is refused. */
    ASSERT_EQ(append_id(p, 2, INT64_MAX, PART_SID_EXPLICIT, BIG + 7, U64MAX, NULL), TD_ERANGE);
    /* XSETID to an ID with the largest seq: the next is (ms + 1, 0). */
    ASSERT_OK(part_stream_set_last(p, (td_sid){BIG + 9, U64MAX}));
    ASSERT_OK(append_id(p, 1, 1000, PART_SID_AUTO, 0, 0, &got));
    ASSERT(got.ms == BIG + 10 && got.seq == 0);
    ASSERT_OK(append_id(p, 1, INT64_MAX, PART_SID_EXPLICIT, U64MAX, U64MAX - 1, &got));
    ASSERT_OK(append_id(p, 1, INT64_MAX, PART_SID_MS, U64MAX, 0, &got));
    ASSERT(got.ms == U64MAX && got.seq == U64MAX);
    /* Exhausted: every append is refused, with or without an ID request. */
    ASSERT_EQ(append_id(p, 1, 1000, PART_SID_AUTO, 0, 0, NULL), TD_EFULL);
    ASSERT_EQ(append_id(p, 1, INT64_MAX, PART_SID_MS, U64MAX, 0, NULL), TD_EFULL);
    ASSERT_EQ(append_id(p, 1, INT64_MAX, PART_SID_EXPLICIT, U64MAX, U64MAX, NULL), TD_EFULL);
    td_event ev = {.value = "k", .value_len = 1, .timestamp_ms = 5};
    td_batch_encode_opts o;
    batch_encode_opts_init(&o);
    td_buf b;
    td_buf_init(&b);
    ASSERT_OK(batch_encode(&b, &o, &ev, 1));
    ASSERT_EQ(part_append(p, b.p, b.len, 5, NULL), TD_EFULL);
    td_buf_free(&b);

    td_sid before[16];
    size_t n = all_ids(p, 0, before, 16);
    ASSERT_EQ(n, (size_t)(part_log_end(p)));
    ASSERT(td_sid_cmp(before[n - 1], (td_sid){U64MAX, U64MAX}) == 0);
    int64_t off;
    ASSERT_OK(part_stream_find(p, (td_sid){BIG + 6, 1}, &off));
    ASSERT_EQ(off, 3);
    part_close(p);
    ASSERT_OK(part_open(td_io_posix(), dir, "s/0", &c, &p));
    td_sid after[16];
    ASSERT_EQ(all_ids(p, 0, after, 16), n);
    ASSERT_MEM_EQ(before, after, n * sizeof(td_sid));
    ASSERT_EQ(append_id(p, 1, 1000, PART_SID_AUTO, 0, 0, NULL), TD_EFULL);
    part_close(p);
    test_rmrf(dir);
}

/* XSETID to the largest ID: the last ID is that ID (a marked anchor), every append is refused,
 * and both hold after a reopen. */
static void test_setid_top(void)
{
    char *dir = test_tmpdir("sid-top");
    td_topic_config c = small_cfg();
    td_part *p;
    ASSERT_OK(part_open(td_io_posix(), dir, "s/0", &c, &p));
    td_sid last;
    ASSERT_OK(append_id(p, 2, 100, PART_SID_AUTO, 0, 0, NULL));
    ASSERT_OK(part_stream_set_last(p, (td_sid){U64MAX, U64MAX}));
    ASSERT_OK(part_stream_set_last(p, (td_sid){U64MAX, U64MAX}));       /* equal: allowed */
    ASSERT_EQ(part_stream_set_last(p, (td_sid){100, 0}), TD_ESEQUENCE); /* below the last record */
    for (int reopen = 0; reopen < 2; reopen++) {
        ASSERT_OK(part_stream_last(p, &last));
        ASSERT(last.ms == U64MAX && last.seq == U64MAX);
        ASSERT_EQ(append_id(p, 1, 100, PART_SID_AUTO, 0, 0, NULL), TD_EFULL);
        ASSERT_EQ(append_id(p, 1, INT64_MAX, PART_SID_MS, U64MAX, 0, NULL), TD_EFULL);
        ASSERT_EQ(append_id(p, 1, 100, PART_SID_EXPLICIT, U64MAX, U64MAX, NULL), TD_EFULL);
        ASSERT(td_sid_cmp(id_at(p, 1), (td_sid){100, 1}) == 0);
        ASSERT_EQ(part_log_end(p), 2);
        part_close(p);
        ASSERT_OK(part_open(td_io_posix(), dir, "s/0", &c, &p));
    }
    /* Below an earlier XSETID but not below the last record, as Redis allows: appends again. */
    ASSERT_OK(part_stream_set_last(p, (td_sid){U64MAX, U64MAX - 1}));
    part_close(p); /* the later anchor at the same offset replaces the marked one */
    ASSERT_OK(part_open(td_io_posix(), dir, "s/0", &c, &p));
    ASSERT_OK(part_stream_last(p, &last));
    ASSERT(last.ms == U64MAX && last.seq == U64MAX - 1);
    td_sid got;
    ASSERT_OK(append_id(p, 1, 100, PART_SID_AUTO, 0, 0, &got));
    ASSERT(got.ms == U64MAX && got.seq == U64MAX);
    ASSERT_EQ(append_id(p, 1, 100, PART_SID_AUTO, 0, 0, NULL), TD_EFULL);
    ASSERT_EQ(part_stream_set_last(p, (td_sid){U64MAX, U64MAX - 1}), TD_ESEQUENCE);
    part_close(p);
    test_rmrf(dir);
}

/* XSETID may go below an earlier XSETID, down to the last record (trimmed or not), as Redis
 * compares with its last entry; explicit IDs between are then exact. */
static void test_setid_lower(void)
{
    char *dir = test_tmpdir("sid-lower");
    td_topic_config c = small_cfg();
    td_part *p;
    ASSERT_OK(part_open(td_io_posix(), dir, "s/0", &c, &p));
    td_sid got, last;
    ASSERT_OK(append_id(p, 1, 5, PART_SID_EXPLICIT, 5, 5, &got));
    ASSERT_OK(part_stream_set_last(p, (td_sid){BIG + 10, 10}));
    ASSERT_OK(part_stream_set_last(p, (td_sid){7, 7}));
    ASSERT_OK(part_stream_last(p, &last));
    ASSERT(last.ms == 7 && last.seq == 7);
    ASSERT_EQ(part_stream_set_last(p, (td_sid){5, 4}), TD_ESEQUENCE);
    ASSERT_OK(part_stream_set_last(p, (td_sid){5, 5}));
    ASSERT_OK(append_id(p, 1, 6, PART_SID_EXPLICIT, 6, 1, &got));
    ASSERT(got.ms == 6 && got.seq == 1);
    ASSERT_OK(part_stream_set_last(p, (td_sid){9, 0}));
    int64_t ls;
    ASSERT_OK(part_delete_before(p, TD_DELETE_TO_HIGH_WATERMARK, &ls));
    /* Trimmed: the last record still bounds it (its timestamp is in the stream time). */
    ASSERT_EQ(part_stream_set_last(p, (td_sid){6, 0}), TD_ESEQUENCE);
    ASSERT_OK(part_stream_set_last(p, (td_sid){6, 1}));
    part_close(p);
    ASSERT_OK(part_open(td_io_posix(), dir, "s/0", &c, &p));
    ASSERT_OK(append_id(p, 1, 6, PART_SID_MS, 6, 0, &got));
    ASSERT(got.ms == 6 && got.seq == 2);
    td_sid v[4];
    ASSERT_EQ(all_ids(p, ls, v, 4), (size_t)1);
    ASSERT(v[0].ms == 6 && v[0].seq == 2);
    part_close(p);
    test_rmrf(dir);
}

/* IDs of the full range (ms-*, ms above INT64_MAX, the batch after the largest seq) do not
 * change when the segments before them go, step by step, nor after a reopen; the last ID stays
 * once everything is deleted. */
static void test_full_range_survives_deletion(void)
{
    char *dir = test_tmpdir("sid-fdel");
    td_topic_config c = small_cfg();
    td_part *p;
    ASSERT_OK(part_open(td_io_posix(), dir, "s/0", &c, &p));
    uint64_t ms = 500;
    for (int i = 0; i < 40; i++) {
        ASSERT_OK(append_id(p, 2, 100 + i, PART_SID_AUTO, 0, 0, NULL));
        if (i % 7 == 3 && i < 20) {
            ms += 10;
            ASSERT_OK(append_id(p, 1, (int64_t)ms, PART_SID_MS, ms, 0, NULL));
        }
        if (i == 20)
            ASSERT_OK(append_id(p, 1, INT64_MAX, PART_SID_EXPLICIT, BIG + 3, U64MAX - 3, NULL));
        if (i == 30)
            ASSERT_OK(append_id(p, 1, INT64_MAX, PART_SID_MS, BIG + 9, 0, NULL));
        if (i == 33)
            ASSERT_OK(part_stream_set_last(p, (td_sid){BIG + 11, U64MAX}));
    }
    td_part_stats st;
    part_stats(p, &st);
    ASSERT(st.segments >= 4);
    td_sid before[200];
    size_t n = all_ids(p, 0, before, 200);
    ASSERT(before[n - 1].ms == BIG + 12);
    for (int64_t cut = 10; cut < (int64_t)n; cut += 17) {
        int64_t ls;
        ASSERT_OK(part_delete_before(p, cut, &ls));
        td_sid after[200];
        ASSERT_EQ(all_ids(p, ls, after, 200), n - (size_t)ls);
        ASSERT_MEM_EQ(before + ls, after, (n - (size_t)ls) * sizeof(td_sid));
        if (cut == 61) {
            part_close(p);
            ASSERT_OK(part_open(td_io_posix(), dir, "s/0", &c, &p));
        }
    }
    int64_t ls;
    ASSERT_OK(part_delete_before(p, TD_DELETE_TO_HIGH_WATERMARK, &ls));
    td_sid last, got;
    ASSERT_OK(part_stream_last(p, &last));
    ASSERT(td_sid_cmp(last, before[n - 1]) == 0);
    ASSERT_OK(append_id(p, 1, 300, PART_SID_AUTO, 0, 0, &got));
    ASSERT(td_sid_cmp(got, last) > 0);
    part_close(p);
    test_rmrf(dir);
}

/* An anchor file written before ms was unsigned (ms below 2^63 in the same bytes) reads the
 * same; an entry with ms above 2^63 (which that version refused as damaged) is kept now. */
static void test_old_anchor_file(void)
{
    char *dir = test_tmpdir("sid-old");
    td_topic_config c = small_cfg();
    td_part *p;
    ASSERT_OK(part_open(td_io_posix(), dir, "s/0", &c, &p));
    ASSERT_OK(append_id(p, 3, 100, PART_SID_AUTO, 0, 0, NULL));
    part_close(p);
    /* Hand-written entries: (off 1, ms 500, seq 7) and (off 2, ms 2^63 + 1, seq 3). */
    const uint64_t e[2][3] = {{1, 500, 7}, {2, BIG + 1, 3}};
    uint8_t buf[56];
    for (int i = 0; i < 2; i++) {
        for (int j = 0; j < 3; j++)
            td_store_be64(buf + i * 28 + j * 8, e[i][j]);
        td_store_be32(buf + i * 28 + 24, td_crc32c(0, buf + i * 28, 24));
    }
    char path[512];
    snprintf(path, sizeof(path), "%s/stream-anchors", dir);
    FILE *f = fopen(path, "wb");
    ASSERT(f);
    ASSERT_EQ(fwrite(buf, 1, sizeof(buf), f), sizeof(buf));
    fclose(f);
    ASSERT_OK(part_open(td_io_posix(), dir, "s/0", &c, &p));
    ASSERT(td_sid_cmp(id_at(p, 0), (td_sid){100, 0}) == 0);
    ASSERT(td_sid_cmp(id_at(p, 1), (td_sid){500, 7}) == 0);
    ASSERT(td_sid_cmp(id_at(p, 2), (td_sid){BIG + 1, 3}) == 0);
    part_close(p);
    test_rmrf(dir);
}

/* XSETID's ENTRIESADDED (part_stream_added): the count follows every later append, survives a
 * reopen and a trim, is unchanged by a refused XSETID, and a damaged or stale file is dropped. */
static void test_entries_added(void)
{
    char *dir = test_tmpdir("sid");
    td_topic_config c = small_cfg();
    td_part *p;
    ASSERT_OK(part_open(td_io_posix(), dir, "s/0", &c, &p));
    td_sid got;
    int64_t at = -1;
    ASSERT_EQ(part_stream_added(p, part_high_watermark(p)), 0);
    ASSERT_OK(append_id(p, 3, 100, PART_SID_AUTO, 0, 0, &got));
    ASSERT_EQ(part_stream_added(p, part_high_watermark(p)), 3);
    ASSERT_OK(part_stream_xsetid(p, (td_sid){200, 0}, 10, &at));
    ASSERT_EQ(at, 3);
    ASSERT_EQ(part_stream_added(p, 3), 10);
    ASSERT_OK(append_id(p, 2, 300, PART_SID_AUTO, 0, 0, &got));
    ASSERT(got.ms == 300 && got.seq == 1); /* after 200-0 */
    ASSERT_EQ(part_stream_added(p, 5), 12);
    /* Refused (below the last entry): neither the ID nor the count changes. */
    ASSERT_EQ(part_stream_xsetid(p, (td_sid){100, 0}, 99, &at), TD_ESEQUENCE);
    ASSERT_EQ(part_stream_added(p, 5), 12);
    /* Without ENTRIESADDED the count stays. */
    ASSERT_OK(part_stream_set_last(p, (td_sid){400, 0}));
    ASSERT_EQ(part_stream_added(p, 5), 12);
    part_close(p);
    ASSERT_OK(part_open(td_io_posix(), dir, "s/0", &c, &p));
    ASSERT_EQ(part_stream_added(p, part_high_watermark(p)), 12);
    int64_t ls;
    ASSERT_OK(part_delete_before(p, TD_DELETE_TO_HIGH_WATERMARK, &ls));
    ASSERT_EQ(part_stream_added(p, part_high_watermark(p)), 12);
    /* Lowered below the appends, then counted on; modulo 2^64 like Redis's counter. */
    ASSERT_OK(part_stream_xsetid(p, (td_sid){500, 0}, 0, &at));
    ASSERT_EQ(part_stream_added(p, 5), 0);
    ASSERT_OK(append_id(p, 1, 600, PART_SID_AUTO, 0, 0, &got));
    ASSERT_EQ(part_stream_added(p, 6), 1);
    ASSERT_OK(part_stream_xsetid(p, (td_sid){700, 0}, INT64_MAX, &at));
    ASSERT_OK(append_id(p, 1, 800, PART_SID_AUTO, 0, 0, &got));
    ASSERT(part_stream_added(p, 7) == (uint64_t)INT64_MAX + 1);
    part_close(p);

    /* A damaged file is dropped: the count is the log end again. */
    char path[512];
    snprintf(path, sizeof(path), "%s/stream-added", dir);
    FILE *f = fopen(path, "r+b");
    ASSERT(f);
    ASSERT_EQ(fseek(f, 20, SEEK_SET), 0);
    ASSERT_EQ(fputc(0x55, f), 0x55);
    fclose(f);
    ASSERT_OK(part_open(td_io_posix(), dir, "s/0", &c, &p));
    ASSERT_EQ(part_stream_added(p, part_high_watermark(p)), 7);
    f = fopen(path, "rb");
    ASSERT(!f); /* removed */
    /* One past the log end (its records were lost) is dropped too. */
    ASSERT_OK(part_stream_xsetid(p, (td_sid){900, 0}, 50, &at));
    part_close(p);
    uint8_t b[28];
    f = fopen(path, "r+b");
    ASSERT(f);
    ASSERT_EQ(fread(b, 1, sizeof(b), f), sizeof(b));
    b[15] = 8; /* offset 8 > the log end 7 */
    td_store_be32(b + 24, td_crc32c(0, b, 24));
    ASSERT_EQ(fseek(f, 0, SEEK_SET), 0);
    ASSERT_EQ(fwrite(b, 1, sizeof(b), f), sizeof(b));
    fclose(f);
    ASSERT_OK(part_open(td_io_posix(), dir, "s/0", &c, &p));
    ASSERT_EQ(part_stream_added(p, part_high_watermark(p)), 7);
    part_close(p);
    test_rmrf(dir);
}

TEST_MAIN(TEST(test_rule_and_explicit_ids), TEST(test_ids_survive_deletion),
          TEST(test_torn_anchor_file), TEST(test_find_and_after),
          TEST(test_deleted_segments_go_later), TEST(test_ms_star), TEST(test_full_range),
          TEST(test_setid_top), TEST(test_setid_lower), TEST(test_full_range_survives_deletion),
          TEST(test_old_anchor_file), TEST(test_entries_added))
