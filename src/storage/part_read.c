/*
 * part_read.c: reading a partition (ranges of whole batches for sendfile or copies, offsets by
 * time), retention and the deletion of records by offset, and the scrub of sealed segments (see
 * part.c for the partition's files and locks).
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/keyindex.h"
#include "storage/part_int.h"

/* ---------------------------------------------------------------------------------------------
 * Reading
 */

/* Index of the last segment whose base is <= offset (0 if none). Caller holds mu. */
static size_t seg_find(td_part *p, int64_t offset)
{
    size_t lo = 0, hi = p->nsegs;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (p->segs[mid]->base <= offset)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* Position of the last index entry at or below offset. Caller holds mu. */
int64_t idx_lookup(const td_seg *s, int64_t offset)
{
    if (s->idx_n == 0)
        return 0;
    int64_t rel = offset - s->base;
    size_t lo = 0, hi = s->idx_n;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if ((int64_t)s->idx[mid].rel <= rel)
            lo = mid;
        else
            hi = mid;
    }
    return s->idx[lo].pos;
}

int part_read(td_part *p, int64_t offset, size_t max_bytes, td_range *r)
{
    return part_read_to(p, offset, max_bytes, INT64_MAX, r);
}

int part_read_to(td_part *p, int64_t offset, size_t max_bytes, int64_t limit, td_range *r)
{
    memset(r, 0, sizeof(*r));
    r->fd = -1;
    int rc = check_online(p);
    if (rc)
        return rc;
    int64_t hw = aload(&p->high_watermark), ls = aload(&p->log_start), end = aload(&p->log_end);
    /* As Kafka's log read: an offset between the high watermark and the log end is there but
     * not readable yet (nothing, not an error); only one past the log end is out of range. A
     * reader can be told such an offset by a leader whose high watermark ran ahead of this
     * one's, and the log end of a partition whose appends wait for their fsync is ahead too. */
    if (offset < ls || offset > TD_MAX(hw, end))
        return td_fail(TD_ERANGE, "offset %" PRId64 " is outside %" PRId64 "..%" PRId64, offset,
                       ls, TD_MAX(hw, end));
    hw = TD_MIN(hw, limit); /* below it from here on */
    if (offset >= hw)
        return TD_EEND;
    pthread_mutex_lock(&p->mu);
    size_t i = seg_find(p, offset);
    td_seg *s = p->segs[i];
    if (s->next_offset <= offset && i + 1 < p->nsegs)
        s = p->segs[++i];
again:
    s->refs++;
    int64_t pos = idx_lookup(s, offset), size = s->size;
    pthread_mutex_unlock(&p->mu);

    const td_io *io = p->io;
    int64_t start = -1, len = 0, first = 0, next = offset;
    while (pos < size) {
        uint8_t hdr[TD_BATCH_HEADER_SIZE];
        td_batch_header h;
        rc = td_io_read_all(io, s->fd, hdr, sizeof(hdr), pos);
        if (rc == 0)
            rc = batch_header_parse(hdr, sizeof(hdr), &h);
        if (rc) {
            pthread_mutex_lock(&p->mu);
            char path[PATH_MAX];
            seg_path(p, s->base, ".log", path, sizeof(path));
            rc = go_offline(p, TD_ECORRUPT, "unreadable batch header in %s at position %" PRId64,
                            path, pos);
            seg_unref_locked(s);
            pthread_mutex_unlock(&p->mu);
            return rc;
        }
        int64_t total = (int64_t)batch_total_size(&h);
        if (h.base_offset >= hw)
            break;
        if (start < 0) {
            if (batch_last_offset(&h) < offset) {
                pos += total;
                continue;
            }
            start = pos;
            first = h.base_offset;
        } else if (len + total > (int64_t)max_bytes) {
            break;
        }
        len += total;
        next = batch_last_offset(&h) + 1;
        pos += total;
    }
    if (start < 0) {
        /* offset was in a gap at the end of this segment (compaction removed its last batches):
         * the next batch is the next segment's first, if there is one. */
        /* s may be freed by the unref (retention deleted it meanwhile): only its base is used
         * after. */
        int64_t base = s->base;
        pthread_mutex_lock(&p->mu);
        seg_unref_locked(s);
        i = seg_find(p, base);
        if (i + 1 < p->nsegs && p->segs[i]->base == base && p->segs[i + 1]->base < hw) {
            s = p->segs[++i];
            goto again; /* idx_lookup of an offset below s->base gives its first batch */
        }
        pthread_mutex_unlock(&p->mu);
        return TD_EEND;
    }
    r->seg = s;
    r->fd = s->fd;
    r->io = io;
    r->pos = start;
    r->len = len;
    r->first_offset = first;
    r->next_offset = next;
    return 0;
}

void part_range_release(td_range *r)
{
    if (!r->seg)
        return;
    td_part *p = r->seg->part;
    pthread_mutex_lock(&p->mu);
    seg_unref_locked(r->seg);
    pthread_mutex_unlock(&p->mu);
    r->seg = NULL;
}

int part_range_copy(const td_range *r, td_buf *out)
{
    int rc = td_buf_reserve(out, (size_t)r->len);
    if (rc)
        return rc;
    rc = td_io_read_all(r->io, r->fd, out->p + out->len, (size_t)r->len, r->pos);
    if (rc)
        return rc == TD_EEND ? -EIO : rc;
    out->len += (size_t)r->len;
    return 0;
}

/* Reads the batch at pos of s whole into b. */
static int read_batch(td_part *p, td_seg *s, int64_t pos, td_buf *b, td_batch_header *h)
{
    uint8_t hdr[TD_BATCH_HEADER_SIZE];
    int rc = td_io_read_all(p->io, s->fd, hdr, sizeof(hdr), pos);
    if (rc == 0)
        rc = batch_header_parse(hdr, sizeof(hdr), h);
    if (rc)
        return rc == TD_EEND ? TD_ECORRUPT : rc;
    td_buf_reset(b);
    rc = td_buf_reserve(b, batch_total_size(h));
    if (rc == 0)
        rc = td_io_read_all(p->io, s->fd, b->p, batch_total_size(h), pos);
    if (rc)
        return rc == TD_EEND ? TD_ECORRUPT : rc;
    b->len = batch_total_size(h);
    return 0;
}

/* Finds in batch b the first record at or after min_offset with timestamp >= ts (or == ts
 * when exact). */
static int find_in_batch(td_buf *b, int64_t min_offset, int64_t ts, bool exact, int64_t *found)
{
    td_batch_reader r;
    batch_reader_init(&r);
    int rc = batch_reader_open(&r, b->p, b->len, 64u << 20);
    td_record rec;
    *found = -1;
    if (rc == 0) {
        while ((rc = batch_reader_next(&r, &rec)) == 1) {
            if (rec.offset >= min_offset &&
                (exact ? rec.timestamp == ts : rec.timestamp >= ts)) {
                *found = rec.offset;
                break;
            }
        }
    }
    batch_reader_free(&r);
    return rc < 0 ? rc : 0;
}

int part_offset_for_time(td_part *p, int64_t ts, int64_t *offset)
{
    int rc = check_online(p);
    if (rc)
        return rc;
    int64_t hw = aload(&p->high_watermark), ls = aload(&p->log_start);
    pthread_mutex_lock(&p->mu);
    td_seg *s = NULL;
    for (size_t i = 0; i < p->nsegs; i++)
        if (p->segs[i]->max_ts >= ts && p->segs[i]->base < hw) {
            s = p->segs[i];
            break;
        }
    if (!s) {
        pthread_mutex_unlock(&p->mu);
        *offset = hw;
        return 0;
    }
    s->refs++;
    /* Start from the last time index entry whose timestamp is below ts. */
    int64_t from = s->base;
    for (size_t i = 0; i < s->tidx_n && s->tidx[i].ts < ts; i++)
        from = s->base + s->tidx[i].rel;
    int64_t pos = idx_lookup(s, from), size = s->size;
    pthread_mutex_unlock(&p->mu);
    td_buf b;
    td_buf_init(&b);
    *offset = hw;
    while (pos < size) {
        td_batch_header h;
        if ((rc = read_batch(p, s, pos, &b, &h)) != 0)
            break;
        if (h.base_offset >= hw)
            break;
        if (h.max_timestamp >= ts && batch_last_offset(&h) >= ls) {
            int64_t found;
            rc = find_in_batch(&b, ls, ts, false, &found);
            if (rc)
                break;
            if (found >= 0) {
                *offset = found;
                break;
            }
        }
        pos += (int64_t)batch_total_size(&h);
    }
    td_buf_free(&b);
    pthread_mutex_lock(&p->mu);
    seg_unref_locked(s);
    pthread_mutex_unlock(&p->mu);
    return rc;
}

int part_max_timestamp(td_part *p, int64_t *ts, int64_t *offset)
{
    int rc = check_online(p);
    if (rc)
        return rc;
    int64_t hw = aload(&p->high_watermark);
    pthread_mutex_lock(&p->mu);
    td_seg *best = NULL;
    for (size_t i = 0; i < p->nsegs; i++) {
        td_seg *s = p->segs[i];
        if (s->max_ts >= 0 && s->max_ts_base < hw && (!best || s->max_ts > best->max_ts))
            best = s;
    }
    if (!best) {
        pthread_mutex_unlock(&p->mu);
        return TD_ENOTFOUND;
    }
    best->refs++;
    int64_t want = best->max_ts, from = best->max_ts_base;
    int64_t pos = idx_lookup(best, from), size = best->size;
    pthread_mutex_unlock(&p->mu);
    td_buf b;
    td_buf_init(&b);
    rc = TD_ENOTFOUND;
    while (pos < size) {
        td_batch_header h;
        int r2 = read_batch(p, best, pos, &b, &h);
        if (r2) {
            rc = r2;
            break;
        }
        if (h.base_offset == from) {
            int64_t found;
            rc = find_in_batch(&b, 0, want, true, &found);
            if (rc == 0 && found < 0)
                found = batch_last_offset(&h);
            *ts = want;
            *offset = found;
            break;
        }
        pos += (int64_t)batch_total_size(&h);
    }
    td_buf_free(&b);
    pthread_mutex_lock(&p->mu);
    seg_unref_locked(best);
    pthread_mutex_unlock(&p->mu);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Retention
 */

/* Removes the oldest segment, keeping the stream IDs after it. Caller holds mu; nsegs >= 2. */
static int drop_oldest_locked(td_part *p)
{
    int rc = anchors_before_drop_locked(p);
    if (rc)
        return rc;
    td_seg *s = p->segs[0];
    memmove(p->segs, p->segs + 1, (p->nsegs - 1) * sizeof(*p->segs));
    p->nsegs--;
    sealed_max_update_locked(p);
    if (p->segs[0]->base > aload(&p->log_start))
        astore(&p->log_start, p->segs[0]->base);
    txn_retained_locked(p);
    seg_unlink(p, s->base, true);
    s->deleted = true;
    if (s->owed) { /* nothing is owed for a deleted segment */
        s->owed = false;
        __atomic_sub_fetch(&p->owed_n, 1, __ATOMIC_RELAXED);
    }
    TD_INFO("storage", "partition %s: deleted segment %020" PRId64 " (%" PRId64 " bytes)",
            p->label, s->base, s->size);
    seg_unref_locked(s); /* readers holding a range keep the fd until they release it */
    return 0;
}

/*
 * Removes the oldest segment as drop_oldest_locked does; when that fails for lack of space (the
 * stream ID anchors could not be rewritten), releases the disk reserve and tries once more:
 * removing segments is how a full disk gets space back. Caller holds mu; nsegs >= 2.
 */
static int drop_oldest_reserved_locked(td_part *p, bool *released)
{
    int rc = drop_oldest_locked(p);
    if (rc == -ENOSPC && !*released) {
        char why[300];
        snprintf(why, sizeof(why), "removing a segment of partition %s", p->label);
        if (reserve_release(p->reserve, why) == 0) {
            *released = true;
            rc = drop_oldest_locked(p);
        }
    }
    if (rc)
        TD_ERROR("storage", "partition %s: keeping segment %020" PRId64 " for now: %s",
                 p->label, p->segs[0]->base, td_strerror(rc));
    return rc;
}

int part_enforce_retention(td_part *p, int64_t now_ms, int *deleted)
{
    int count = 0, rc = 0;
    bool released = false;
    pthread_mutex_lock(&p->mu);
    if (p->offline[0])
        goto out;
    td_topic_config cc = p->cfg;
    const td_topic_config *c = &cc;
    if (!(c->cleanup_policy & TD_CLEANUP_DELETE)) /* compact alone: the cleaner's to shrink */
        cc.retention_ms = cc.retention_bytes = cc.retention_records = -1;
    td_seg *act = p->segs[p->nsegs - 1];
    /* An active segment that has wholly expired by time is rolled so that it can go. */
    if (c->retention_ms >= 0 && act->size > 0 && act->max_ts < now_ms - c->retention_ms &&
        aload(&p->high_watermark) == act->next_offset) {
        if ((rc = roll_locked(p, now_ms)) != 0)
            goto out;
    }
    int64_t total = 0;
    for (size_t i = 0; i < p->nsegs; i++)
        total += p->segs[i]->size;
    while (p->nsegs > 1) {
        td_seg *s = p->segs[0];
        bool by_time = c->retention_ms >= 0 && s->max_ts < now_ms - c->retention_ms;
        bool by_bytes = c->retention_bytes >= 0 && total - s->size >= c->retention_bytes;
        bool by_records = c->retention_records >= 0 &&
                          aload(&p->log_end) - p->segs[1]->base >= c->retention_records;
        /* Wholly below the log start: DeleteRecords could not remove it at the time. */
        bool deleted_records = s->next_offset <= aload(&p->log_start);
        if (!by_time && !by_bytes && !by_records && !deleted_records)
            break;
        int64_t size = s->size;
        if ((rc = drop_oldest_reserved_locked(p, &released)) != 0)
            break;
        total -= size;
        count++;
    }
out:
    pthread_mutex_unlock(&p->mu);
    if (count > 0 || released)
        reserve_restore(p->reserve); /* space came back: appends may resume */
    if (deleted)
        *deleted = count;
    return rc;
}

/* part_delete_before under mu: moves the log start (durably first), then removes the whole
 * segments below it, including any that an earlier call could not remove. */
static int delete_before_locked(td_part *p, int64_t offset, bool *released)
{
    int rc = check_online(p);
    int64_t hw = aload(&p->high_watermark), ls = aload(&p->log_start);
    if (rc == 0 && offset == TD_DELETE_TO_HIGH_WATERMARK)
        offset = hw;
    if (rc == 0 && (offset < 0 || offset > hw))
        rc = td_fail(TD_ERANGE,
                     "cannot delete records before offset %" PRId64 ": partition %s holds %" PRId64
                     "..%" PRId64,
                     offset, p->label, ls, hw);
    if (rc)
        return rc;
    if (offset > ls) {
        /* Durable first: once the call returns, a restart must not bring the records back. */
        if ((rc = write_offset_file(p, LOG_START_FILE, offset)) != 0)
            return rc;
        astore(&p->log_start, offset);
        txn_retained_locked(p);
        TD_INFO("storage", "partition %s: records before offset %" PRId64 " deleted", p->label,
                offset);
    }
    /* Whole segments below the start go now; the active one always stays. */
    ls = aload(&p->log_start);
    while (p->nsegs > 1 && p->segs[0]->next_offset <= ls) {
        if ((rc = drop_oldest_reserved_locked(p, released)) != 0) {
            /* The records are gone for readers, and the start is saved; the files go at the
             * next retention pass or a retried call. Reported, since the space is not free. */
            return td_fail(rc,
                           "records before offset %" PRId64 " of partition %s are deleted, but "
                           "their segments could not be removed yet: %s",
                           ls, p->label, td_strerror(rc));
        }
    }
    return 0;
}

int part_delete_before(td_part *p, int64_t offset, int64_t *log_start)
{
    bool released = false;
    pthread_mutex_lock(&p->mu);
    int64_t segs = (int64_t)p->nsegs;
    int rc = delete_before_locked(p, offset, &released);
    if (rc == -ENOSPC && !released) {
        /* The log start could not be saved for lack of space: retry on the reserve's. */
        char why[300];
        snprintf(why, sizeof(why), "deleting records of partition %s", p->label);
        if (reserve_release(p->reserve, why) == 0) {
            released = true;
            rc = delete_before_locked(p, offset, &released);
        }
    }
    bool freed = (int64_t)p->nsegs < segs;
    if (log_start)
        *log_start = aload(&p->log_start);
    pthread_mutex_unlock(&p->mu);
    if (freed || released)
        reserve_restore(p->reserve); /* space came back: appends may resume */
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Scrub
 */
int part_scrub_step(td_part *p, int64_t budget, int64_t *checked)
{
    int64_t done = 0;
    int rc = 0;
    if (checked)
        *checked = 0;
    while (done < budget) {
        pthread_mutex_lock(&p->mu);
        if (p->offline[0]) {
            pthread_mutex_unlock(&p->mu);
            break;
        }
        /* The next sealed segment at or after scrub_base. */
        td_seg *s = NULL;
        for (size_t i = 0; i + 1 < p->nsegs; i++)
            if (p->segs[i]->base >= p->scrub_base) {
                s = p->segs[i];
                break;
            }
        if (!s) {
            /* Past the last sealed segment: start over next time. */
            p->scrub_base = -1;
            p->scrub_pos = 0;
            pthread_mutex_unlock(&p->mu);
            break;
        }
        if (s->base != p->scrub_base) {
            p->scrub_base = s->base;
            p->scrub_pos = 0;
        }
        int64_t pos = p->scrub_pos, size = s->size;
        s->refs++;
        pthread_mutex_unlock(&p->mu);
        const char *why = NULL;
        td_batch_header h;
        int64_t next = pos;
        if (pos < size) {
            int r2 = read_batch(p, s, pos, &p->scrub_buf, &h);
            if (r2 == TD_ECORRUPT || (r2 == 0 && pos + (int64_t)batch_total_size(&h) > size))
                why = "an invalid batch header";
            else if (r2)
                rc = r2;
            else if (batch_validate(p->scrub_buf.p, p->scrub_buf.len, false, 0, NULL) != 0)
                why = "a batch whose CRC does not match";
            else
                next = pos + (int64_t)batch_total_size(&h);
        }
        pthread_mutex_lock(&p->mu);
        if (why) {
            char path[PATH_MAX];
            seg_path(p, s->base, ".log", path, sizeof(path));
            rc = go_offline(p, TD_ECORRUPT, "scrub found a corrupt batch in %s at position %" PRId64
                            ": %s", path, pos, why);
        } else if (rc == 0) {
            done += next - pos;
            if (next >= size) {
                p->scrub_base = s->base + 1;
                p->scrub_pos = 0;
            } else {
                p->scrub_pos = next;
            }
        }
        seg_unref_locked(s);
        pthread_mutex_unlock(&p->mu);
        if (rc)
            break;
    }
    if (checked)
        *checked = done;
    return rc;
}

