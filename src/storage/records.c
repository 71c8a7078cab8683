/*
 * records.c: counting the records of an offset range (storage.h, part_count_records).
 *
 * Offsets count every record ever appended, so in a log that was never compacted the records of
 * [from, to) are to - from. Compaction removes records and keeps offsets (docs/storage.md, "Log
 * compaction"): a compacted partition's counts come from the batch headers instead, one header
 * read per batch of the range, plus the decoding of the one or two batches that straddle its
 * ends. That costs a read of the range's headers: callers that count (Redis XLEN and XINFO,
 * queue depth) pay it on compacted topics only, which compaction keeps small.
 */
#include <inttypes.h>
#include <string.h>

#include "storage/part_int.h"

#define CHUNK (1u << 20)
#define MAX_UNCOMPRESSED (64u << 20)

/* The records of the batch at pos (header h) with offsets in [from, to). */
static int count_in_batch(const td_range *r, int64_t pos, const td_batch_header *h, int64_t from,
                          int64_t to, td_buf *b, td_batch_reader *rd, int64_t *n)
{
    td_buf_reset(b);
    int rc = td_buf_reserve(b, batch_total_size(h));
    if (rc == 0)
        rc = td_io_read_all(r->io, r->fd, b->p, batch_total_size(h), pos);
    if (rc)
        return rc == TD_EEND ? TD_ECORRUPT : rc;
    b->len = batch_total_size(h);
    rc = batch_reader_open(rd, b->p, b->len, MAX_UNCOMPRESSED);
    td_record rec;
    if (rc == 0)
        while ((rc = batch_reader_next(rd, &rec)) == 1)
            *n += rec.offset >= from && rec.offset < to;
    return rc < 0 ? rc : 0;
}

/* Counts the records of range r in [from, to); *done when a batch reached `to`. */
static int count_range(const td_range *r, int64_t from, int64_t to, td_buf *b, td_batch_reader *rd,
                       int64_t *n, bool *done)
{
    for (int64_t pos = r->pos; pos < r->pos + r->len;) {
        uint8_t hdr[TD_BATCH_HEADER_SIZE];
        td_batch_header h;
        int rc = td_io_read_all(r->io, r->fd, hdr, sizeof(hdr), pos);
        if (rc == 0)
            rc = batch_header_parse(hdr, sizeof(hdr), &h);
        if (rc)
            return rc == TD_EEND ? TD_ECORRUPT : rc;
        if (h.base_offset >= to) {
            *done = true;
            return 0;
        }
        int64_t last = batch_last_offset(&h);
        if (last >= from && !(h.attributes & TD_BATCH_ATTR_CONTROL)) {
            if (h.base_offset >= from && last < to)
                *n += h.record_count;
            else if ((rc = count_in_batch(r, pos, &h, from, to, b, rd, n)) != 0)
                return rc;
        }
        pos += (int64_t)batch_total_size(&h);
    }
    return 0;
}

int part_count_records(td_part *p, int64_t from, int64_t to, int64_t *n)
{
    *n = 0;
    int64_t ls = part_log_start(p), hw = part_high_watermark(p);
    from = from < ls ? ls : from;
    to = to > hw ? hw : to;
    if (from >= to)
        return 0;
    pthread_mutex_lock(&p->mu);
    bool compact = (p->cfg.cleanup_policy & TD_CLEANUP_COMPACT) != 0;
    pthread_mutex_unlock(&p->mu);
    if (!compact) {
        *n = to - from;
        return 0;
    }
    td_buf b;
    td_buf_init(&b);
    td_batch_reader rd;
    batch_reader_init(&rd);
    int rc = 0;
    bool done = false;
    for (int64_t pos = from; !done && pos < to;) {
        td_range r;
        rc = part_read(p, pos, CHUNK, &r);
        if (rc == TD_EEND) {
            rc = 0;
            break;
        }
        if (rc)
            break;
        rc = count_range(&r, from, to, &b, &rd, n, &done);
        pos = r.next_offset;
        part_range_release(&r);
        if (rc)
            break;
    }
    batch_reader_free(&rd);
    td_buf_free(&b);
    return rc;
}

bool part_has_gaps(td_part *p)
{
    pthread_mutex_lock(&p->mu);
    bool compact = (p->cfg.cleanup_policy & TD_CLEANUP_COMPACT) != 0;
    pthread_mutex_unlock(&p->mu);
    return compact;
}

int part_record_offsets(td_part *p, int64_t from, int64_t to, size_t max, int64_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    int64_t ls = part_log_start(p), hw = part_high_watermark(p);
    from = from < ls ? ls : from;
    to = to > hw ? hw : to;
    td_buf b, offs;
    td_buf_init(&b);
    td_buf_init(&offs);
    td_batch_reader rd;
    batch_reader_init(&rd);
    int rc = 0;
    for (int64_t pos = from; pos < to && (max == 0 || *n < max);) {
        td_range r;
        rc = part_read(p, pos, CHUNK, &r);
        if (rc == TD_EEND) {
            rc = 0;
            break;
        }
        if (rc)
            break;
        td_buf_reset(&b);
        rc = part_range_copy(&r, &b);
        pos = r.next_offset;
        part_range_release(&r);
        for (size_t at = 0; rc == 0 && at < b.len && (max == 0 || *n < max);) {
            td_batch_header h;
            if ((rc = batch_header_parse(b.p + at, b.len - at, &h)) != 0)
                break;
            if (!(h.attributes & TD_BATCH_ATTR_CONTROL) &&
                (rc = batch_reader_open(&rd, b.p + at, b.len - at, MAX_UNCOMPRESSED)) == 0) {
                td_record rec;
                while ((rc = batch_reader_next(&rd, &rec)) == 1 && (max == 0 || *n < max))
                    if (rec.offset >= from && rec.offset < to) {
                        if ((rc = td_buf_append(&offs, &rec.offset, sizeof(rec.offset))) != 0)
                            break;
                        (*n)++;
                    }
                rc = rc < 0 ? rc : 0;
            }
            at += batch_total_size(&h);
        }
        if (rc)
            break;
    }
    batch_reader_free(&rd);
    td_buf_free(&b);
    if (rc) {
        td_buf_free(&offs);
        *n = 0;
        return rc;
    }
    *out = (int64_t *)(void *)offs.p; /* td_buf's block is malloc'd: the caller frees it */
    return 0;
}
