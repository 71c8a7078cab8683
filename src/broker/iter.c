/*
 * iter.c: td_iter, reading one partition's events in offset order.
 *
 * An iterator copies a range of whole batches (part_read) into its own buffer and decodes it
 * batch by batch. The first read is FIRST_CHUNK bytes and each next one twice the last, up to
 * READ_CHUNK: a reader of a few events (a queue's redelivery, a dead letter, a page of a REST
 * read) does not copy a megabyte for them, and a long read soon moves big chunks; it holds a
 * reference on the topic, not a lock, so producers and administration go on while it reads. Control
 * batches (transaction markers) are skipped. The position advances past every batch it passes, so
 * an iterator never stalls on a batch that holds no records for it.
 *
 * Transactions (docs/embedded.md "Transactions"): an iterator reads committed data unless
 * td_iter_set_isolation says otherwise. Each refill reads below the partition's last stable
 * offset (part_read_to) instead of the high watermark, so an open transaction's records, which
 * are at or after it, are never reached, and fetches the aborted transactions of the range it
 * copied (part_aborted_txns, sorted by first offset) once; a transactional batch whose producer
 * has an aborted transaction holding its base offset ([first, marker]) is skipped whole, as a
 * control batch is. The iterator is the one place that does this because nearly every reader
 * that is not Kafka (HTTP reads and SSE, Redis XRANGE and XREAD, queue groups, the embedded
 * API) reads through it, and the rule then holds for all of them with one cache per range
 * rather than a lookup per record; broker_part_visible_runs gives the offsets the same rule lets
 * through to the readers that walk offsets without reading (Redis consumer groups, XREVRANGE's
 * window, XINFO STREAM's edges). A key's iterator applies it to the batch of each offset the key
 * index names, and stops at the last stable offset. The last stable offset only moves when the
 * high watermark does (a marker becomes durable), so the advance hook that wakes waiting readers
 * also wakes them for it.
 *
 * A key's iterator (td_iter_open_key) asks the partition's key index (part_key_offsets) for the
 * offsets of the key's next events, KEY_OFFSETS at a time, and reads the batch holding each one
 * (part_read of that offset), keeping it while the next offsets fall in it. The keys themselves
 * are compared, so that a digest collision in the index never answers another key's event.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "broker/engine_int.h"

#define FIRST_CHUNK (16u << 10)
#define READ_CHUNK (1u << 20)
#define MAX_UNCOMPRESSED (64u << 20)
#define KEY_OFFSETS 64

/* The aborted transactions of a range [from, to) of the partition, by first offset. */
typedef struct abort_list {
    td_aborted_txn *v;
    size_t n;
    int64_t from, to;
} abort_list;

/* Fetches the aborted transactions of [from, to) unless l already holds them. */
static int abort_load(td_part *p, abort_list *l, int64_t from, int64_t to)
{
    if (l->to > l->from && from >= l->from && to <= l->to)
        return 0;
    free(l->v);
    *l = (abort_list){0};
    int rc = part_aborted_txns(p, from, to, &l->v, &l->n);
    if (rc == 0) {
        l->from = from;
        l->to = to;
    }
    return rc;
}

/* Whether h is a batch of an aborted transaction of l (its range holds h). */
static bool abort_hides(const abort_list *l, const td_batch_header *h)
{
    if (!(h->attributes & TD_BATCH_ATTR_TRANSACTIONAL))
        return false;
    for (size_t i = 0; i < l->n && l->v[i].first <= h->base_offset; i++)
        if (l->v[i].pid == h->producer_id && h->base_offset <= l->v[i].last)
            return true;
    return false;
}

struct td_iter {
    td_topic *topic;
    td_part *part;
    int32_t partition;
    int64_t pos; /* next offset to return */
    size_t chunk; /* bytes of the next read */
    td_buf buf;
    size_t buf_pos; /* start of the batch being read in buf */
    td_batch_reader rd;
    bool rd_open;
    td_header *hdrs;
    size_t hdrs_cap;
    /* A key's iterator: the key, and the offsets of its next events (offs[ioff..noffs)). */
    uint8_t *key;
    size_t key_len;
    bool by_key;
    int trace_kind; /* an iterator of the trace index (iter_open_trace): its kind, else 0 */
    bool by_tag; /* key is an event tag (td_iter_open_tag) */
    int64_t offs[KEY_OFFSETS];
    size_t ioff, noffs;
    bool uncommitted; /* td_iter_set_isolation(TD_READ_UNCOMMITTED) */
    bool at_latest;   /* opened at TD_OFFSET_LATEST and not read yet */
    abort_list ab;    /* the aborted transactions of what buf (or the key's batch) holds */
};

static int iter_new(td_engine *e, const char *topic, int32_t partition, td_iter **it_out)
{
    td_iter *it = calloc(1, sizeof(*it));
    if (!it)
        return -ENOMEM;
    td_buf_init(&it->buf);
    batch_reader_init(&it->rd);
    pthread_rwlock_rdlock(&e->lock);
    td_part *p;
    int rc = engine_part_locked(e, topic, partition, &p);
    if (rc == 0) {
        it->topic = engine_find_locked(e, topic);
        topic_ref(it->topic);
        it->part = p;
        it->partition = partition;
    }
    pthread_rwlock_unlock(&e->lock);
    if (rc) {
        free(it);
        return rc;
    }
    *it_out = it;
    return 0;
}

int td_iter_open(td_engine *e, const char *topic, int32_t partition, int64_t offset,
                 td_iter **out)
{
    td_error_clear();
    td_iter *it;
    int rc = iter_new(e, topic, partition, &it);
    if (rc)
        return rc;
    int64_t ls = part_log_start(it->part), hw = part_high_watermark(it->part);
    it->at_latest = offset == TD_OFFSET_LATEST;
    if (offset == TD_OFFSET_EARLIEST)
        offset = ls;
    else if (offset == TD_OFFSET_LATEST || offset == TD_OFFSET_LAST_STABLE)
        offset = part_last_stable(it->part); /* committed: where this reader stops */
    if (offset < ls || offset > hw) {
        td_iter_close(it);
        return td_fail(TD_ERANGE,
                       "offset %" PRId64 " is outside partition %s/%" PRId32
                       ", which holds %" PRId64 "..%" PRId64,
                       offset, topic, partition, ls, hw);
    }
    it->pos = offset;
    *out = it;
    return 0;
}

int td_iter_open_time(td_engine *e, const char *topic, int32_t partition, int64_t timestamp_ms,
                      td_iter **out)
{
    td_error_clear();
    td_iter *it;
    int rc = iter_new(e, topic, partition, &it);
    if (rc)
        return rc;
    rc = part_offset_for_time(it->part, timestamp_ms, &it->pos);
    if (rc) {
        td_iter_close(it);
        return rc;
    }
    *out = it;
    return 0;
}

int64_t td_iter_position(const td_iter *it)
{
    return it->pos;
}

int td_iter_set_isolation(td_iter *it, int isolation)
{
    td_error_clear();
    if (!it || (isolation != TD_READ_COMMITTED && isolation != TD_READ_UNCOMMITTED))
        return td_fail(TD_EINVAL, "td_iter_set_isolation takes an iterator and "
                                  "TD_READ_COMMITTED or TD_READ_UNCOMMITTED");
    if (it->uncommitted != (isolation == TD_READ_UNCOMMITTED)) {
        /* What was read under the other isolation is read again from the position. */
        it->rd_open = false;
        it->buf_pos = it->buf.len;
    }
    it->uncommitted = isolation == TD_READ_UNCOMMITTED;
    if (it->at_latest) /* the latest is where this reader stops */
        it->pos = it->uncommitted ? part_high_watermark(it->part) : part_last_stable(it->part);
    return 0;
}

static int fill_event(td_iter *it, const td_record *rec, td_event *ev)
{
    if (rec->header_count > it->hdrs_cap) {
        td_header *h = realloc(it->hdrs, rec->header_count * sizeof(*h));
        if (!h)
            return -ENOMEM;
        it->hdrs = h;
        it->hdrs_cap = rec->header_count;
    }
    for (size_t i = 0; i < rec->header_count; i++) {
        const td_record_header *rh = &rec->headers[i];
        it->hdrs[i] = (td_header){(const char *)rh->key.p, rh->key.n,
                                  rh->value_null ? NULL : (rh->value.p ? rh->value.p : (const void *)""),
                                  rh->value.n};
    }
    memset(ev, 0, sizeof(*ev));
    /* Empty but present keys and values point at "" so that NULL always means null. */
    ev->key = rec->key_null ? NULL : (rec->key.p ? rec->key.p : (const void *)"");
    ev->key_len = rec->key.n;
    ev->value = rec->value_null ? NULL : (rec->value.p ? rec->value.p : (const void *)"");
    ev->value_len = rec->value.n;
    ev->headers = rec->header_count ? it->hdrs : NULL;
    ev->header_count = rec->header_count;
    ev->timestamp_ms = rec->timestamp;
    ev->partition = it->partition;
    ev->offset = rec->offset;
    return 0;
}

static int key_next(td_iter *it, td_event *ev);

int td_iter_next(td_iter *it, td_event *ev)
{
    td_error_clear();
    if (__atomic_load_n(&it->topic->deleted, __ATOMIC_ACQUIRE))
        return td_fail(TD_ENOTFOUND, "topic '%s' was deleted", it->topic->name);
    it->at_latest = false;
    if (it->by_key)
        return key_next(it, ev);
    for (;;) {
        if (it->rd_open) {
            td_record rec;
            int rc = batch_reader_next(&it->rd, &rec);
            if (rc < 0)
                return td_fail(rc, "partition %s/%" PRId32 ": batch at offset %" PRId64 ": %s",
                               it->topic->name, it->partition, it->rd.h.base_offset,
                               td_last_error());
            if (rc == 1) {
                if (rec.offset < it->pos)
                    continue;
                if ((rc = fill_event(it, &rec, ev)) != 0)
                    return rc;
                it->pos = rec.offset + 1;
                td_counter_add(it->topic->m_events_out, 1);
                return 1;
            }
            it->rd_open = false;
            int64_t last = batch_last_offset(&it->rd.h);
            if (last + 1 > it->pos)
                it->pos = last + 1;
            it->buf_pos += batch_total_size(&it->rd.h);
            continue;
        }
        if (it->buf_pos < it->buf.len) {
            const uint8_t *p = it->buf.p + it->buf_pos;
            size_t left = it->buf.len - it->buf_pos;
            td_batch_header h;
            int rc = batch_header_parse(p, left, &h);
            if (rc == 0 && batch_total_size(&h) > left)
                rc = TD_ECORRUPT;
            if (rc)
                return td_fail(TD_ECORRUPT, "partition %s/%" PRId32 ": bad batch near offset %"
                                            PRId64, it->topic->name, it->partition, it->pos);
            if ((h.attributes & TD_BATCH_ATTR_CONTROL) || batch_last_offset(&h) < it->pos ||
                (!it->uncommitted && abort_hides(&it->ab, &h))) {
                if (batch_last_offset(&h) + 1 > it->pos)
                    it->pos = batch_last_offset(&h) + 1;
                it->buf_pos += batch_total_size(&h);
                continue;
            }
            td_counter_add(it->topic->m_bytes_out, batch_total_size(&h));
            rc = batch_reader_open(&it->rd, p, left, MAX_UNCOMPRESSED);
            if (rc)
                return td_fail(rc, "partition %s/%" PRId32 ": batch at offset %" PRId64 ": %s",
                               it->topic->name, it->partition, h.base_offset, td_last_error());
            it->rd_open = true;
            continue;
        }
        /* Refill. */
        td_range r;
        if (!it->chunk)
            it->chunk = FIRST_CHUNK;
        int64_t limit = it->uncommitted ? INT64_MAX : part_last_stable(it->part);
        int rc = part_read_to(it->part, it->pos, it->chunk, limit, &r);
        if (rc == TD_EEND)
            return 0;
        if (rc == TD_ERANGE && it->pos < part_log_start(it->part))
            return td_fail(TD_ERANGE,
                           "partition %s/%" PRId32 ": offset %" PRId64
                           " was deleted by retention; the log now starts at %" PRId64,
                           it->topic->name, it->partition, it->pos, part_log_start(it->part));
        if (rc)
            return rc;
        if (it->chunk < READ_CHUNK)
            it->chunk *= 2;
        td_buf_reset(&it->buf);
        it->buf_pos = 0;
        rc = part_range_copy(&r, &it->buf);
        if (rc == 0 && !it->uncommitted)
            rc = abort_load(it->part, &it->ab, r.first_offset, r.next_offset);
        part_range_release(&r);
        if (rc) {
            td_buf_reset(&it->buf); /* read again, with its aborted transactions, next time */
            return rc;
        }
    }
}

/* ---------------------------------------------------------------------------------------------
 * The offsets readers of committed data see, for those that walk offsets without reading
 */
/* Appends [from, to) to the runs, merged with the last when adjacent. */
static int run_add(broker_run **v, size_t *n, size_t *cap, int64_t from, int64_t to)
{
    if (*n && (*v)[*n - 1].to == from) {
        (*v)[*n - 1].to = to;
        return 0;
    }
    if (td_grow(v, cap, *n, sizeof(**v), 16) != 0)
        return -ENOMEM;
    (*v)[(*n)++] = (broker_run){from, to};
    return 0;
}

/* The runs of the batches in buf (one range, its aborted transactions in ab) within [from, to),
 * up to *left records (0: no limit; counted down). */
static int runs_of_range(const td_buf *buf, const abort_list *ab, bool gaps, int64_t from,
                         int64_t to, size_t *left, bool limited, td_batch_reader *rd,
                         broker_run **v, size_t *n, size_t *cap)
{
    for (size_t at = 0; at < buf->len && (!limited || *left);) {
        td_batch_header h;
        int rc = batch_header_parse(buf->p + at, buf->len - at, &h);
        if (rc == 0 && batch_total_size(&h) > buf->len - at)
            rc = TD_ECORRUPT;
        if (rc)
            return TD_ECORRUPT;
        at += batch_total_size(&h);
        int64_t lo = TD_MAX(h.base_offset, from), hi = TD_MIN(batch_last_offset(&h) + 1, to);
        if ((h.attributes & TD_BATCH_ATTR_CONTROL) || lo >= hi || abort_hides(ab, &h))
            continue;
        if (!gaps) { /* every offset of the batch holds a record */
            if (limited && (uint64_t)(hi - lo) > *left)
                hi = lo + (int64_t)*left;
            if (limited)
                *left -= (size_t)(hi - lo);
            if ((rc = run_add(v, n, cap, lo, hi)) != 0)
                return rc;
            continue;
        }
        if ((rc = batch_reader_open(rd, buf->p + at - batch_total_size(&h), batch_total_size(&h),
                                    MAX_UNCOMPRESSED)) != 0)
            return rc;
        td_record rec;
        while ((!limited || *left) && (rc = batch_reader_next(rd, &rec)) == 1) {
            if (rec.offset >= hi)
                break;
            if (rec.offset < lo)
                continue;
            if ((rc = run_add(v, n, cap, rec.offset, rec.offset + 1)) != 0)
                return rc;
            if (limited)
                (*left)--;
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

int broker_part_visible_runs(td_part *p, int64_t from, int64_t to, size_t max, broker_run **out,
                             size_t *n)
{
    *out = NULL;
    *n = 0;
    from = TD_MAX(from, part_log_start(p));
    to = TD_MIN(to, part_last_stable(p));
    bool gaps = part_has_gaps(p), limited = max > 0;
    size_t left = max, cap = 0, chunk = FIRST_CHUNK;
    td_buf buf;
    td_buf_init(&buf);
    td_batch_reader rd;
    batch_reader_init(&rd);
    abort_list ab = {0};
    int rc = 0;
    for (int64_t pos = from; pos < to && (!limited || left);) {
        td_range r;
        if ((rc = part_read_to(p, pos, chunk, to, &r)) != 0)
            break;
        td_buf_reset(&buf);
        rc = part_range_copy(&r, &buf);
        if (rc == 0)
            rc = abort_load(p, &ab, r.first_offset, r.next_offset);
        pos = r.next_offset;
        part_range_release(&r);
        if (rc == 0)
            rc = runs_of_range(&buf, &ab, gaps, from, to, &left, limited, &rd, out, n, &cap);
        if (rc)
            break;
        chunk = TD_MIN(chunk * 2, (size_t)READ_CHUNK);
    }
    if (rc == TD_EEND)
        rc = 0;
    free(ab.v);
    batch_reader_free(&rd);
    td_buf_free(&buf);
    if (rc) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

/* The record at offset off into *rec, reading its batch unless the open reader is before it
 * in the same batch: 1, 0 when the offset holds no record (the cleaner removed it), < 0. */
static int key_record_at(td_iter *it, int64_t off, td_record *rec)
{
    if (!it->rd_open || off < it->rd.h.base_offset || off > batch_last_offset(&it->rd.h)) {
        it->rd_open = false;
        td_range r;
        int rc = part_read(it->part, off, 1, &r);
        if (rc == TD_EEND || (rc == TD_ERANGE && off < part_log_start(it->part)))
            return 0; /* deleted by retention since the index named it */
        if (rc)
            return rc;
        td_buf_reset(&it->buf);
        rc = part_range_copy(&r, &it->buf);
        part_range_release(&r);
        td_batch_header h;
        if (rc == 0 && (rc = batch_header_parse(it->buf.p, it->buf.len, &h)) != 0)
            rc = TD_ECORRUPT;
        if (rc)
            return rc;
        if (h.base_offset > off || (h.attributes & TD_BATCH_ATTR_CONTROL))
            return 0;
        if (!it->uncommitted && (h.attributes & TD_BATCH_ATTR_TRANSACTIONAL) &&
            ((rc = abort_load(it->part, &it->ab, h.base_offset, batch_last_offset(&h) + 1)) != 0 ||
             abort_hides(&it->ab, &h)))
            return rc ? rc : 0; /* an aborted transaction's */
        td_counter_add(it->topic->m_bytes_out, batch_total_size(&h));
        if ((rc = batch_reader_open(&it->rd, it->buf.p, batch_total_size(&h), MAX_UNCOMPRESSED)))
            return td_fail(rc, "partition %s/%" PRId32 ": batch at offset %" PRId64 ": %s",
                           it->topic->name, it->partition, h.base_offset, td_last_error());
        it->rd_open = true;
    }
    int rc;
    while ((rc = batch_reader_next(&it->rd, rec)) == 1)
        if (rec->offset >= off)
            return rec->offset == off;
    it->rd_open = false;
    return rc;
}

/* Whether rec carries the tag among the headers the key index takes (segkeys.c). */
static bool has_tag(const td_record *rec, const uint8_t *tag, size_t n)
{
    static const size_t hl = sizeof(TD_TAG_HEADER) - 1;
    for (size_t i = 0, seen = 0; i < rec->header_count && seen < TD_TAGS_MAX; i++) {
        const td_record_header *h = &rec->headers[i];
        if (h->value_null || h->key.n != hl || memcmp(h->key.p, TD_TAG_HEADER, hl) != 0)
            continue;
        seen++;
        if (h->value.n == n && memcmp(h->value.p, tag, n) == 0)
            return true;
    }
    return false;
}

static int key_next(td_iter *it, td_event *ev)
{
    int64_t limit = it->uncommitted ? INT64_MAX : part_last_stable(it->part);
    for (int guard = 0; guard < 1 << 20; guard++) {
        if (it->ioff == it->noffs) {
            it->ioff = 0;
            int rc = it->trace_kind
                         ? part_trace_offsets(it->part, it->trace_kind, it->key, it->key_len,
                                              it->pos, it->offs, KEY_OFFSETS, &it->noffs)
                         : part_index_offsets(it->part, it->by_tag, it->key, it->key_len,
                                              it->pos, it->offs, KEY_OFFSETS, &it->noffs);
            if (rc)
                return rc;
            if (it->noffs == 0)
                return 0;
        }
        int64_t off = it->offs[it->ioff];
        if (off >= limit)
            return 0; /* an open transaction's, or after it: not yet */
        it->ioff++;
        td_record rec;
        int rc = key_record_at(it, off, &rec);
        if (rc < 0)
            return rc;
        it->pos = off + 1;
        if (rc == 0 ||
            (!it->trace_kind &&
             (it->by_tag ? !has_tag(&rec, it->key, it->key_len)
                         : rec.key_null || rec.key.n != it->key_len ||
                               (it->key_len && memcmp(rec.key.p, it->key, it->key_len)))))
            continue; /* removed by the cleaner, or a digest collision (traces.c checks its
                       * events' headers) */
        if ((rc = fill_event(it, &rec, ev)) != 0)
            return rc;
        td_counter_add(it->topic->m_events_out, 1);
        return 1;
    }
    return 0; /* a bound on the work of one call: call again */
}

static int iter_open_index(td_engine *e, const char *topic, bool tag, const void *key,
                           size_t key_len, int32_t partition, int64_t from_version, td_iter **out)
{
    td_error_clear();
    if (!e || !topic || !out || (!key && key_len))
        return td_fail(TD_EINVAL, "td_iter_open_%s needs an engine, a topic, a %s and out",
                       tag ? "tag" : "key", tag ? "tag" : "key");
    if (tag && partition == TD_PARTITION_ANY)
        return td_fail(TD_EINVAL, "td_iter_open_tag needs a partition: tags have none of their own");
    if (from_version < 0 && from_version != TD_OFFSET_EARLIEST)
        return td_fail(TD_EINVAL, "from_version must be an offset >= 0 or TD_OFFSET_EARLIEST");
    if (partition == TD_PARTITION_ANY) {
        pthread_rwlock_rdlock(&e->lock);
        td_topic *t = engine_find_locked(e, topic);
        if (t)
            partition = td_partition_for_key(key ? key : "", key_len, t->nparts);
        pthread_rwlock_unlock(&e->lock);
        if (!t)
            return td_fail(TD_ENOTFOUND, "topic '%s' does not exist", topic);
    }
    td_iter *it;
    int rc = iter_new(e, topic, partition, &it);
    if (rc)
        return rc;
    int64_t v;
    rc = part_index_version(it->part, tag, key ? key : "", key_len, &v); /* no index? */
    it->key = malloc(key_len + 1);
    if (rc == 0 && !it->key)
        rc = -ENOMEM;
    if (rc) {
        td_iter_close(it);
        return rc;
    }
    if (key_len)
        memcpy(it->key, key, key_len);
    it->key_len = key_len;
    it->by_key = true;
    it->by_tag = tag;
    it->pos = TD_MAX(from_version, 0);
    *out = it;
    return 0;
}

int iter_open_trace(td_engine *e, const char *topic, int32_t partition, int kind, const void *id,
                    size_t n, td_iter **out)
{
    td_iter *it;
    int rc = iter_new(e, topic, partition, &it);
    if (rc)
        return rc;
    if (!(it->key = malloc(n + 1))) {
        td_iter_close(it);
        return -ENOMEM;
    }
    memcpy(it->key, id, n);
    it->key_len = n;
    it->by_key = true;
    it->trace_kind = kind;
    *out = it;
    return 0;
}

int td_iter_open_key(td_engine *e, const char *topic, const void *key, size_t key_len,
                     int32_t partition, int64_t from_version, td_iter **out)
{
    return iter_open_index(e, topic, false, key, key_len, partition, from_version, out);
}

int td_iter_open_tag(td_engine *e, const char *topic, const void *tag, size_t tag_len,
                     int32_t partition, int64_t from_version, td_iter **out)
{
    return iter_open_index(e, topic, true, tag, tag_len, partition, from_version, out);
}

/* td_key_version (tag false) and td_tag_version. */
static int index_version(td_engine *e, const char *topic, bool tag, const void *key,
                         size_t key_len, int32_t partition, int64_t *version)
{
    td_error_clear();
    if (!e || !topic || !version || (!key && key_len))
        return td_fail(TD_EINVAL, "td_%s_version needs an engine, a topic, a %s and version",
                       tag ? "tag" : "key", tag ? "tag" : "key");
    if (tag && partition == TD_PARTITION_ANY)
        return td_fail(TD_EINVAL, "td_tag_version needs a partition: tags have none of their own");
    if (!key)
        key = "";
    pthread_rwlock_rdlock(&e->lock);
    td_topic *t = engine_find_locked(e, topic);
    int rc = 0;
    if (!t)
        rc = td_fail(TD_ENOTFOUND, "topic '%s' does not exist", topic);
    else if (partition == TD_PARTITION_ANY)
        partition = td_partition_for_key(key, key_len, t->nparts);
    td_part *p = NULL;
    if (rc == 0)
        rc = engine_part_locked(e, topic, partition, &p);
    if (rc == 0)
        topic_ref(t);
    pthread_rwlock_unlock(&e->lock);
    if (rc)
        return rc;
    rc = part_index_version(p, tag, key, key_len, version);
    topic_unref(t);
    return rc;
}

int td_key_version(td_engine *e, const char *topic, const void *key, size_t key_len,
                   int32_t partition, int64_t *version)
{
    return index_version(e, topic, false, key, key_len, partition, version);
}

int td_tag_version(td_engine *e, const char *topic, const void *tag, size_t tag_len,
                   int32_t partition, int64_t *version)
{
    return index_version(e, topic, true, tag, tag_len, partition, version);
}

void td_iter_close(td_iter *it)
{
    if (!it)
        return;
    free(it->key);
    free(it->ab.v);
    batch_reader_free(&it->rd);
    td_buf_free(&it->buf);
    free(it->hdrs);
    topic_unref(it->topic);
    free(it);
}

void *broker_event_copy(const td_event *ev, const char *drop_prefix, td_event *out)
{
    size_t dl = drop_prefix ? strlen(drop_prefix) : 0, nh = 0;
    size_t size = ev->key_len + ev->value_len;
    for (size_t i = 0; i < ev->header_count; i++) {
        const td_header *h = &ev->headers[i];
        if (dl && h->key_len >= dl && !memcmp(h->key, drop_prefix, dl))
            continue;
        nh++;
        size += h->key_len + h->value_len;
    }
    char *block = malloc(nh * sizeof(td_header) + size + 1);
    if (!block)
        return NULL;
    td_header *hs = (td_header *)block;
    char *w = block + nh * sizeof(td_header);
    *out = *ev;
    out->headers = hs;
    out->header_count = nh;
    size_t k = 0;
    for (size_t i = 0; i < ev->header_count; i++) {
        const td_header *h = &ev->headers[i];
        if (dl && h->key_len >= dl && !memcmp(h->key, drop_prefix, dl))
            continue;
        hs[k] = *h;
        hs[k].key = w;
        if (h->key_len)
            memcpy(w, h->key, h->key_len);
        w += h->key_len;
        if (h->value) {
            hs[k].value = w;
            if (h->value_len)
                memcpy(w, h->value, h->value_len);
            w += h->value_len;
        }
        k++;
    }
    if (ev->key) {
        out->key = w;
        if (ev->key_len)
            memcpy(w, ev->key, ev->key_len);
        w += ev->key_len;
    }
    if (ev->value) {
        out->value = w;
        if (ev->value_len)
            memcpy(w, ev->value, ev->value_len);
    }
    return block;
}
