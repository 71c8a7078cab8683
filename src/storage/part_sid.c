/*
 * part_sid.c: the stream IDs of a partition's records (docs/redis.md#stream-ids) and the anchors
 * file that keeps those the rule does not give (see part.c for the partition's files and locks).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/part_int.h"

/* ---------------------------------------------------------------------------------------------
 * Stream IDs (docs/redis.md#stream-ids)
 *
 * The ID of the record at offset o is (ms, seq): ms is the partition's stream time at o's batch
 * (the largest batch timestamp up to and including that batch, and at least the ms of the last
 * anchor at or before o); seq is o plus the shift of that anchor (seq_a - off_a), or o when there
 * is none. Anchors (off, ms, seq) say "the record at off has the ID (max(ms, its stream time),
 * seq)". They are written for explicit IDs that the rule would not give (and for `ms-*`, which
 * is an explicit ID once the last ID is known), for XSETID, for IDs whose ms is above INT64_MAX
 * (a batch timestamp is an int64_t: such a batch has the timestamp INT64_MAX and the anchor
 * keeps the ms), before a sequence number would pass 2^64-1 (the next batch starts at
 * (last ms + 1, 0), where Redis's `*` goes too; past 18446744073709551615-18446744073709551615
 * every append is refused with TD_EFULL, as Redis refuses XADD), and when deleting segments
 * changes what the rule would compute (retention, DeleteRecords), so that an ID once handed out
 * never changes. They are kept in memory and in ANCHOR_FILE: 28-byte entries, off (i64 BE), ms
 * (u64 BE), seq (u64 BE), CRC32C of those 24 bytes (u32 BE), appended and fdatasynced before
 * the record they describe; rewritten whole when segments are deleted. (Before ms was unsigned,
 * the file held ms below 2^63 in the same bytes: old files read the same.) The top bit of off
 * marks the one anchor that names the last ID rather than the next record's: XSETID to the
 * largest ID, after which there is no next (sanchor.last).
 *
 * Invariant: no written record's seq passes 2^64-1 (sid_room_locked writes an anchor before),
 * so seq_a + (o - off_a) never wraps for a record that exists.
 */
/* Recomputes sealed_max_ts after segments were sealed or deleted. Caller holds mu. */
void sealed_max_update_locked(td_part *p)
{
    p->sealed_max_ts = -1;
    for (size_t i = 0; i + 1 < p->nsegs; i++)
        p->sealed_max_ts = TD_MAX(p->sealed_max_ts, p->segs[i]->max_ts);
}

/* The number of anchors at or before off (the last of them applies to off). */
size_t anchors_upto(const td_part *p, int64_t off)
{
    size_t lo = 0, hi = p->nanch;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (p->anch[mid].off <= off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The largest batch timestamp of the batches up to and including the one holding `off`
 * (stored segments only; -1 if none). Caller holds mu. */
static int64_t stream_prefix_max_locked(const td_part *p, int64_t off, int64_t *run_end)
{
    int64_t m = -1;
    *run_end = INT64_MAX;
    size_t i = 0;
    if (off >= p->segs[p->nsegs - 1]->base) { /* the active segment: appends and recent reads */
        i = p->nsegs - 1;
        m = p->sealed_max_ts;
    }
    for (; i < p->nsegs; i++) {
        const td_seg *s = p->segs[i];
        if (off >= s->next_offset && i + 1 < p->nsegs) {
            m = TD_MAX(m, s->max_ts);
            continue;
        }
        /* off is in s (or beyond the log end, in the active segment) */
        uint32_t rel = off >= s->base ? (uint32_t)TD_MIN(off - s->base, (int64_t)UINT32_MAX) : 0;
        size_t lo = 0, hi = s->tidx_n;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (s->tidx[mid].rel <= rel)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo > 0)
            m = TD_MAX(m, s->tidx[lo - 1].ts);
        /* The same until the next entry that raises the segment's max, or the segment's end. */
        *run_end = lo < s->tidx_n ? s->base + s->tidx[lo].rel - 1 : s->next_offset - 1;
        if (*run_end < off)
            *run_end = off; /* beyond the log end: only off itself */
        break;
    }
    return m;
}

/* The ID of offset off (which need not be written yet). run_end (may be NULL) gets the last
 * offset whose ID is (ms, seq + (o - off)), at least off. Caller holds mu. */
td_sid sid_at_locked(const td_part *p, int64_t off, int64_t *run_end)
{
    size_t k = anchors_upto(p, off);
    const sanchor *a = k ? &p->anch[k - 1] : NULL;
    int64_t end;
    uint64_t m = sid_ts_ms(stream_prefix_max_locked(p, off, &end));
    td_sid id;
    id.ms = a ? TD_MAX(m, a->id.ms) : m;
    id.seq = a ? a->id.seq + (uint64_t)(off - a->off) : (uint64_t)off;
    if (k < p->nanch && p->anch[k].off - 1 < end)
        end = p->anch[k].off - 1;
    if (run_end)
        *run_end = TD_MAX(end, off);
    return id;
}

/* The last ID of the partition: the last record's, or what an anchor at the log end says came
 * before it (XSETID, or every record deleted), or 0-0. Caller holds mu. */
static td_sid sid_last_locked(const td_part *p)
{
    int64_t end = aload(&p->log_end);
    if (p->nanch && p->anch[p->nanch - 1].off == end) {
        td_sid a = p->anch[p->nanch - 1].id;
        if (p->anch[p->nanch - 1].last)
            return a;
        if (a.seq > 0)
            return (td_sid){a.ms, a.seq - 1};
        return a.ms > 0 ? (td_sid){a.ms - 1, UINT64_MAX} : (td_sid){0, 0};
    }
    if (end > p->segs[0]->base)
        return sid_at_locked(p, end - 1, NULL);
    return (td_sid){0, 0};
}

int anchors_push(td_part *p, int64_t off, td_sid id)
{
    /* A later anchor at the same offset replaces the earlier one. */
    if (p->nanch && p->anch[p->nanch - 1].off == off) {
        p->anch[p->nanch - 1].id = id;
        p->anch[p->nanch - 1].last = false;
        return 0;
    }
    if (td_grow(&p->anch, &p->anch_cap, p->nanch, sizeof(*p->anch), 8) != 0)
        return -ENOMEM;
    p->anch[p->nanch++] = (sanchor){off, id, false};
    return 0;
}

static void anchor_encode(uint8_t *b, const sanchor *a)
{
    td_store_be64(b, (uint64_t)a->off | (a->last ? UINT64_C(1) << 63 : 0));
    td_store_be64(b + 8, a->id.ms);
    td_store_be64(b + 16, a->id.seq);
    td_store_be32(b + 24, td_crc32c(0, b, 24));
}

/* Appends one anchor to the file, durably, then to memory. Caller holds mu. */
static int anchor_add_locked(td_part *p, int64_t off, td_sid id, bool last)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", p->dir, ANCHOR_FILE);
    const td_io *io = p->io;
    int fd = io->open(io, path, O_RDWR | O_CREAT, 0644);
    if (fd < 0)
        return td_fail(fd, "cannot open %s: %s", path, td_strerror(fd));
    int64_t size = 0;
    int rc = io->fsize(io, fd, &size);
    uint8_t b[ANCHOR_ENTRY];
    sanchor a = {off, id, last};
    anchor_encode(b, &a);
    size -= size % ANCHOR_ENTRY; /* after a torn write, overwrite its remains */
    if (rc == 0)
        rc = td_io_write_all(io, fd, b, sizeof(b), size);
    if (rc == 0)
        rc = io->fsync(io, fd);
    io->close(io, fd);
    if (rc == 0 && size == 0)
        rc = io->sync_dir(io, p->dir);
    if (rc)
        return td_fail(rc, "cannot write %s: %s", path, td_strerror(rc));
    rc = anchors_push(p, off, id);
    if (rc == 0)
        p->anch[p->nanch - 1].last = last;
    return rc;
}

/* Rewrites the anchor file with the anchors in memory. Caller holds mu. */
int anchors_rewrite_locked(td_part *p)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", p->dir, ANCHOR_FILE);
    uint8_t *b = malloc(p->nanch * ANCHOR_ENTRY + 1);
    if (!b)
        return -ENOMEM;
    for (size_t i = 0; i < p->nanch; i++)
        anchor_encode(b + i * ANCHOR_ENTRY, &p->anch[i]);
    int rc = write_file_atomic(p, path, b, p->nanch * ANCHOR_ENTRY);
    free(b);
    if (rc == 0)
        rc = p->io->sync_dir(p->io, p->dir);
    return rc;
}

/* Loads the anchor file at open: entries up to the first torn or damaged one, and at or below
 * the log end (recovery may have cut records an anchor was written for). A later entry at the
 * same offset replaces an earlier one (XSETID again, also after a marked anchor). */
int anchors_load(td_part *p)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", p->dir, ANCHOR_FILE);
    const td_io *io = p->io;
    int fd = io->open(io, path, O_RDONLY, 0);
    if (fd < 0)
        return fd == -ENOENT ? 0 : td_fail(fd, "cannot open %s: %s", path, td_strerror(fd));
    int64_t size = 0;
    int rc = io->fsize(io, fd, &size);
    uint8_t *b = rc == 0 ? malloc((size_t)size + 1) : NULL;
    if (rc == 0 && !b)
        rc = -ENOMEM;
    if (rc == 0)
        rc = td_io_read_all(io, fd, b, (size_t)size, 0);
    io->close(io, fd);
    bool dropped = size % ANCHOR_ENTRY != 0;
    int64_t end = aload(&p->log_end);
    for (int64_t pos = 0; rc == 0 && pos + ANCHOR_ENTRY <= size; pos += ANCHOR_ENTRY) {
        const uint8_t *e = b + pos;
        uint64_t off = td_load_be64(e);
        sanchor a = {(int64_t)(off & INT64_MAX),
                     {td_load_be64(e + 8), td_load_be64(e + 16)},
                     off >> 63 != 0};
        bool top = a.id.ms == UINT64_MAX && a.id.seq == UINT64_MAX;
        if (td_load_be32(e + 24) != td_crc32c(0, e, 24) || (a.last && (!top || a.off < end)) ||
            (p->nanch && (a.off < p->anch[p->nanch - 1].off ||
                          (p->anch[p->nanch - 1].last && a.off != p->anch[p->nanch - 1].off)))) {
            dropped = true;
            break;
        }
        if (a.off > end) {
            dropped = true;
            continue;
        }
        rc = anchors_push(p, a.off, a.id);
        if (rc == 0)
            p->anch[p->nanch - 1].last = a.last;
    }
    free(b);
    if (rc == 0 && dropped) {
        TD_WARN("storage", "partition %s: dropping stream ID anchors past the log end", p->label);
        rc = anchors_rewrite_locked(p);
    }
    return rc ? td_fail(rc, "cannot read %s: %s", path, td_strerror(rc)) : 0;
}

/*
 * Before segment 0 is deleted: keeps the IDs of the records after it as they are, with an anchor
 * at the new first offset when the rule would otherwise compute another ID there (the deleted
 * segment held a larger timestamp, or an anchor). Caller holds mu; nsegs >= 2.
 */
int anchors_before_drop_locked(td_part *p)
{
    const td_seg *s0 = p->segs[0], *s1 = p->segs[1];
    int64_t b = s1->base;
    size_t k = anchors_upto(p, b - 1); /* anchors below b: they go */
    int64_t pb = s1->tidx_n && s1->tidx[0].rel == 0 ? s1->tidx[0].ts : -1;
    if (k == 0 && TD_MAX(s0->max_ts, 0) <= TD_MAX(pb, 0))
        return 0; /* nothing that goes changes what the rule gives after b */
    td_sid prev = sid_at_locked(p, b - 1, NULL), at = sid_at_locked(p, b, NULL);
    if (!(k < p->nanch && p->anch[k].off == b)) {
        if (k == 0) {
            if (anchors_push(p, INT64_MAX, at) != 0)
                return -ENOMEM;
            memmove(p->anch + 1, p->anch, (p->nanch - 1) * sizeof(*p->anch));
        } else {
            k--;
        }
        p->anch[k] = (sanchor){b, {prev.ms, at.seq}, false};
    }
    memmove(p->anch, p->anch + k, (p->nanch - k) * sizeof(*p->anch));
    p->nanch -= k;
    return anchors_rewrite_locked(p);
}

/* The stream ID of a record. TD_ERANGE for an offset at or past the log end. */
int part_stream_id(td_part *p, int64_t offset, td_sid *id, int64_t *run_end)
{
    pthread_mutex_lock(&p->mu);
    int rc = 0;
    if (offset < p->segs[0]->base || offset >= aload(&p->log_end))
        rc = td_fail(TD_ERANGE, "no record at offset %" PRId64 " in %s", offset, p->label);
    else
        *id = sid_at_locked(p, offset, run_end);
    pthread_mutex_unlock(&p->mu);
    return rc;
}

int part_stream_last(td_part *p, td_sid *last)
{
    pthread_mutex_lock(&p->mu);
    *last = sid_last_locked(p);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

int part_stream_seek(td_part *p, td_sid id, int64_t from, int64_t to, int64_t *offset)
{
    pthread_mutex_lock(&p->mu);
    int64_t lo = TD_MAX(from, p->segs[0]->base), hi = TD_MIN(to, aload(&p->log_end));
    if (hi < lo)
        hi = lo;
    while (lo < hi) { /* IDs increase with offsets */
        int64_t mid = lo + (hi - lo) / 2;
        if (td_sid_cmp(sid_at_locked(p, mid, NULL), id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *offset = lo;
    pthread_mutex_unlock(&p->mu);
    return 0;
}

int part_stream_find(td_part *p, td_sid id, int64_t *offset)
{
    int64_t hw = part_high_watermark(p), off;
    td_sid got;
    int rc = part_stream_seek(p, id, part_log_start(p), hw, &off);
    if (rc == 0 &&
        (off >= hw || part_stream_id(p, off, &got, NULL) != 0 || td_sid_cmp(got, id) != 0)) {
        td_error_clear();
        rc = TD_ENOTFOUND;
    }
    if (rc == 0)
        *offset = off;
    return rc;
}

int part_stream_after(td_part *p, td_sid id, int64_t *offset)
{
    int64_t hw = part_high_watermark(p);
    *offset = hw;
    if (!td_sid_next(&id))
        return 0;
    return part_stream_seek(p, id, part_log_start(p), hw, offset);
}

/* The ID of the last record written (trimmed or not: a segment may still hold it and give the
 * stream time), or the last ID when no segment holds a record. Caller holds mu. */
static td_sid sid_top_locked(const td_part *p)
{
    int64_t end = aload(&p->log_end);
    if (end > p->segs[0]->base)
        return sid_at_locked(p, end - 1, NULL);
    return sid_last_locked(p);
}

int part_stream_top(td_part *p, td_sid *top)
{
    pthread_mutex_lock(&p->mu);
    *top = sid_top_locked(p);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Entries added (Redis's entries_added; docs/storage.md "Stream IDs")
 *
 * Redis counts every entry ever added to a stream, and XSETID's ENTRIESADDED sets the count.
 * Offsets already count every record ever appended, by any protocol, so the count is the log
 * end unless XSETID set it; then ADDED_FILE says "the count was N when the log end was O", and
 * the count at a later high watermark hw is N + (hw - O), modulo 2^64 as Redis's uint64_t.
 * The file is 28 bytes: "TDEA", version (u32 BE, 1), O (i64 BE), N (u64 BE), CRC32C of those
 * 24 bytes (u32 BE); replaced whole (tmp, fsync, rename) by each XSETID with ENTRIESADDED,
 * before that XSETID's anchor. At open, a file whose O is past the log end (the records before
 * it were lost, and the XSETID's anchor with them) or that is damaged is removed (logged): the
 * count is the log end again. The file goes with the partition's directory.
 */
static void added_path(const td_part *p, char *path, size_t len)
{
    snprintf(path, len, "%s/%s", p->dir, ADDED_FILE);
}

/* Replaces ADDED_FILE with (off, n), durably, then memory. Caller holds mu. */
static int added_write_locked(td_part *p, int64_t off, uint64_t n)
{
    char path[PATH_MAX];
    added_path(p, path, sizeof(path));
    uint8_t b[ADDED_SIZE];
    memcpy(b, "TDEA", 4);
    td_store_be32(b + 4, 1);
    td_store_be64(b + 8, (uint64_t)off);
    td_store_be64(b + 16, n);
    td_store_be32(b + 24, td_crc32c(0, b, 24));
    int rc = write_file_atomic(p, path, b, sizeof(b));
    if (rc == 0)
        rc = p->io->sync_dir(p->io, p->dir);
    if (rc)
        return td_fail(rc, "cannot write %s: %s", path, td_strerror(rc));
    p->has_added = true;
    p->added_off = off;
    p->added_n = n;
    return 0;
}

/* Removes ADDED_FILE: the count is the log end again. Caller holds mu. */
static int added_remove_locked(td_part *p)
{
    char path[PATH_MAX];
    added_path(p, path, sizeof(path));
    int rc = p->io->unlink(p->io, path);
    if (rc == 0)
        rc = p->io->sync_dir(p->io, p->dir);
    if (rc && rc != -ENOENT)
        return td_fail(rc, "cannot remove %s: %s", path, td_strerror(rc));
    p->has_added = false;
    return 0;
}

int added_load(td_part *p)
{
    char path[PATH_MAX];
    added_path(p, path, sizeof(path));
    const td_io *io = p->io;
    int fd = io->open(io, path, O_RDONLY, 0);
    if (fd < 0)
        return fd == -ENOENT ? 0 : td_fail(fd, "cannot open %s: %s", path, td_strerror(fd));
    int64_t size = 0;
    uint8_t b[ADDED_SIZE];
    int rc = io->fsize(io, fd, &size);
    bool good = rc == 0 && size == ADDED_SIZE;
    if (good)
        rc = td_io_read_all(io, fd, b, sizeof(b), 0);
    io->close(io, fd);
    if (rc)
        return td_fail(rc, "cannot read %s: %s", path, td_strerror(rc));
    good = good && !memcmp(b, "TDEA", 4) && td_load_be32(b + 4) == 1 &&
           td_load_be32(b + 24) == td_crc32c(0, b, 24);
    int64_t off = good ? (int64_t)td_load_be64(b + 8) : -1;
    if (good && off >= 0 && off <= aload(&p->log_end)) {
        p->has_added = true;
        p->added_off = off;
        p->added_n = td_load_be64(b + 16);
        return 0;
    }
    TD_WARN("storage", "partition %s: dropping %s (%s): the entries added are the log end",
            p->label, ADDED_FILE, good ? "past the log end" : "damaged");
    return added_remove_locked(p);
}

uint64_t part_stream_added(td_part *p, int64_t hw)
{
    pthread_mutex_lock(&p->mu);
    uint64_t n = p->has_added ? p->added_n + ((uint64_t)hw - (uint64_t)p->added_off) : (uint64_t)hw;
    pthread_mutex_unlock(&p->mu);
    return n;
}

int part_stream_xsetid(td_part *p, td_sid last, int64_t added, int64_t *at)
{
    pthread_mutex_lock(&p->mu);
    int rc = check_online(p);
    int64_t end = aload(&p->log_end);
    *at = end;
    /* Like Redis, below an earlier XSETID is fine, not below the last record: the anchor at the
     * log end is replaced. The next record's stream time is at most that record's ms. */
    if (rc == 0 && td_sid_cmp(last, sid_top_locked(p)) < 0)
        rc = td_fail(TD_ESEQUENCE, "the ID is smaller than the stream's last entry");
    /* The count first: when the anchor cannot be written, the count's file is put back as it
     * was, so that a failed XSETID changes neither. (A crash between the two writes keeps the
     * count without the ID: XSETID had not answered.) */
    bool had = p->has_added;
    int64_t old_off = p->added_off;
    uint64_t old_n = p->added_n;
    bool wrote = false;
    if (rc == 0 && added >= 0)
        wrote = (rc = added_write_locked(p, end, (uint64_t)added)) == 0;
    /* An anchor names the next record's ID; after the largest there is none: the anchor is
     * marked as naming the last ID itself. */
    td_sid next = last;
    bool top = !td_sid_next(&next);
    if (rc == 0)
        rc = anchor_add_locked(p, end, top ? last : next, top);
    if (rc && wrote) {
        int r2 = had ? added_write_locked(p, old_off, old_n) : added_remove_locked(p);
        if (r2)
            go_offline(p, r2, "cannot restore %s after a failed XSETID", ADDED_FILE);
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

int part_stream_set_last(td_part *p, td_sid last)
{
    int64_t at;
    return part_stream_xsetid(p, last, -1, &at);
}

/* Whether the record at off, after anchor a, has a sequence number (a's plus the distance),
 * into *seq; false when it would pass 2^64-1. */
static bool run_seq(const sanchor *a, int64_t off, uint64_t *seq)
{
    uint64_t d = (uint64_t)(off - a->off);
    if (d > UINT64_MAX - a->id.seq)
        return false;
    *seq = a->id.seq + d;
    return true;
}

/* Before an append of `count` records at `base` (the log end) that the rule numbers: when the
 * last of them would pass the largest sequence number, an anchor makes the batch start at
 * (last ms + 1, 0); TD_EFULL when the last ID's ms is the largest (Redis's "exhausted"). */
static int sid_room_locked(td_part *p, int64_t base, int64_t count)
{
    uint64_t seq;
    if (p->nanch && p->anch[p->nanch - 1].last)
        return td_fail(TD_EFULL, "the stream has exhausted the last possible ID");
    if (p->nanch == 0 || run_seq(&p->anch[p->nanch - 1], base + count - 1, &seq))
        return 0; /* without an anchor seq is the offset, below 2^63 */
    td_sid last = sid_last_locked(p);
    if (last.ms == UINT64_MAX)
        return td_fail(TD_EFULL, "the stream has exhausted the last possible ID");
    return anchor_add_locked(p, base, (td_sid){last.ms + 1, 0}, false);
}

/* The check before an append (under mu, before writing batch h at `base`); may write an anchor.
 * req is NULL for appends that do not ask for IDs (Kafka, HTTP): they get the rule's. */
int sid_check_locked(td_part *p, part_sid_req *req, int64_t base, const td_batch_header *h)
{
    int64_t count = (int64_t)h->last_offset_delta + 1;
    if (!req || req->mode == PART_SID_AUTO)
        return sid_room_locked(p, base, count);
    if (p->cfg.timestamp_type == TD_TS_LOG_APPEND_TIME)
        return td_fail(TD_EINVAL, "explicit IDs need message.timestamp.type=CreateTime");
    td_sid last = sid_last_locked(p);
    if (last.ms == UINT64_MAX && last.seq == UINT64_MAX)
        return td_fail(TD_EFULL, "the stream has exhausted the last possible ID");
    td_sid w = req->want;
    if (req->mode == PART_SID_MS) {
        /* Redis's `ms-*`: ms-0 above the last ID's ms, the last seq + 1 at the same ms. */
        if (w.ms < last.ms)
            return td_fail(TD_ESEQUENCE, "ID not greater than the last");
        if (w.ms == last.ms && last.seq == UINT64_MAX)
            return td_fail(TD_ERANGE, "no sequence number is left after %" PRIu64 "-%" PRIu64,
                           last.ms, last.seq);
        w.seq = w.ms == last.ms ? last.seq + 1 : 0;
    } else if (td_sid_cmp(w, last) <= 0) {
        return td_fail(TD_ESEQUENCE, "ID not greater than the last");
    }
    if ((uint64_t)count - 1 > UINT64_MAX - w.seq)
        return td_fail(TD_ERANGE, "the batch's sequence numbers would pass %" PRIu64, UINT64_MAX);
    uint64_t ts = sid_ts_ms(h->max_timestamp);
    if (ts > w.ms)
        return td_fail(TD_EINVAL, "the batch's timestamp is above the ID's ms");
    /* What the rule gives once the batch is written: its timestamp joins the stream time. */
    td_sid nat = sid_at_locked(p, base, NULL);
    nat.ms = TD_MAX(nat.ms, ts);
    size_t k = p->nanch;
    bool wraps = k && !run_seq(&p->anch[k - 1], base, &nat.seq);
    if (!wraps && td_sid_cmp(nat, w) == 0)
        return 0;
    return anchor_add_locked(p, base, w, false);
}
