/*
 * batch.c: the Kafka record batch v2 codec (layout in batch.h).
 *
 * Validation order matters for safety: every length read from the input is checked against the
 * bytes that remain before it is used, and counts are checked against the smallest possible
 * encoding of that many items before anything is allocated, so hostile input costs at most a
 * pass over its own bytes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "storage/batch.h"

/* Offsets of header fields. */
#define OFF_BASE_OFFSET 0
#define OFF_LENGTH 8
#define OFF_EPOCH 12
#define OFF_MAGIC 16
#define OFF_CRC 17
#define OFF_ATTRIBUTES 21
#define OFF_LAST_DELTA 23
#define OFF_BASE_TS 27
#define OFF_MAX_TS 35
#define OFF_PRODUCER_ID 43
#define OFF_PRODUCER_EPOCH 51
#define OFF_BASE_SEQ 53
#define OFF_COUNT 57

/* The smallest record: length(1) attributes(1) tsDelta(1) offsetDelta(1) keyLen(1) valueLen(1)
 * headerCount(1). */
#define MIN_RECORD_SIZE 7

int batch_header_parse(const uint8_t *p, size_t n, td_batch_header *h)
{
    if (n < TD_BATCH_HEADER_SIZE)
        return TD_EAGAIN;
    h->base_offset = (int64_t)td_load_be64(p + OFF_BASE_OFFSET);
    h->batch_length = (int32_t)td_load_be32(p + OFF_LENGTH);
    h->leader_epoch = (int32_t)td_load_be32(p + OFF_EPOCH);
    h->magic = (int8_t)p[OFF_MAGIC];
    h->crc = td_load_be32(p + OFF_CRC);
    h->attributes = (int16_t)td_load_be16(p + OFF_ATTRIBUTES);
    h->last_offset_delta = (int32_t)td_load_be32(p + OFF_LAST_DELTA);
    h->base_timestamp = (int64_t)td_load_be64(p + OFF_BASE_TS);
    h->max_timestamp = (int64_t)td_load_be64(p + OFF_MAX_TS);
    h->producer_id = (int64_t)td_load_be64(p + OFF_PRODUCER_ID);
    h->producer_epoch = (int16_t)td_load_be16(p + OFF_PRODUCER_EPOCH);
    h->base_sequence = (int32_t)td_load_be32(p + OFF_BASE_SEQ);
    h->record_count = (int32_t)td_load_be32(p + OFF_COUNT);
    if (h->magic != TD_BATCH_MAGIC)
        return td_fail(TD_ECORRUPT, "record batch magic is %d, expected 2", h->magic);
    if (h->batch_length < TD_BATCH_HEADER_SIZE - TD_BATCH_LOG_OVERHEAD)
        return td_fail(TD_ECORRUPT, "record batch length %d is shorter than its header",
                       h->batch_length);
    if (h->record_count < 0)
        return td_fail(TD_ECORRUPT, "record batch has a negative record count %d",
                       h->record_count);
    if (h->last_offset_delta < 0)
        return td_fail(TD_ECORRUPT, "record batch has a negative last offset delta %d",
                       h->last_offset_delta);
    if (h->base_offset < 0)
        return td_fail(TD_ECORRUPT, "record batch has a negative base offset");
    return 0;
}

void batch_set_base_offset(uint8_t *batch, int64_t base_offset)
{
    td_store_be64(batch + OFF_BASE_OFFSET, (uint64_t)base_offset);
}

void batch_set_leader_epoch(uint8_t *batch, int32_t epoch)
{
    td_store_be32(batch + OFF_EPOCH, (uint32_t)epoch);
}

void batch_update_crc(uint8_t *batch, size_t n)
{
    td_store_be32(batch + OFF_CRC, td_crc32c(0, batch + OFF_ATTRIBUTES, n - OFF_ATTRIBUTES));
}

void batch_set_log_append_time(uint8_t *batch, size_t n, int64_t ts)
{
    uint16_t attr = td_load_be16(batch + OFF_ATTRIBUTES);
    td_store_be16(batch + OFF_ATTRIBUTES, (uint16_t)(attr | TD_BATCH_ATTR_LOG_APPEND_TIME));
    td_store_be64(batch + OFF_MAX_TS, (uint64_t)ts);
    batch_update_crc(batch, n);
}

/* ---------------------------------------------------------------------------------------------
 * Record parsing, shared by the reader and the deep validation.
 */

/* A cursor over the records area. */
typedef struct cursor {
    const uint8_t *p;
    size_t n;
    size_t pos;
} cursor;

static int cur_varint(cursor *c, int32_t *v)
{
    int rc = td_varint_decode(c->p + c->pos, c->n - c->pos, v);
    if (rc < 0)
        return TD_ECORRUPT;
    c->pos += (size_t)rc;
    return 0;
}

static int cur_varlong(cursor *c, int64_t *v)
{
    int rc = td_varlong_decode(c->p + c->pos, c->n - c->pos, v);
    if (rc < 0)
        return TD_ECORRUPT;
    c->pos += (size_t)rc;
    return 0;
}

/* Reads a varint length (-1 = null) and that many bytes, within `end`. */
static int cur_bytes(cursor *c, size_t end, td_slice *s, bool *is_null)
{
    int32_t len;
    if (cur_varint(c, &len))
        return TD_ECORRUPT;
    if (len < -1)
        return TD_ECORRUPT;
    if (len == -1) {
        *s = td_slice_make(NULL, 0);
        if (is_null)
            *is_null = true;
        else
            return TD_ECORRUPT; /* header keys may not be null */
        return 0;
    }
    if ((size_t)len > end - c->pos)
        return TD_ECORRUPT;
    *s = td_slice_make(c->p + c->pos, (size_t)len);
    if (is_null)
        *is_null = false;
    c->pos += (size_t)len;
    return 0;
}

/*
 * Parses one record at c->pos. headers (may be NULL) receives up to hdr_cap headers; the total
 * count goes to rec->header_count whatever the capacity, and *need_cap says how many slots the
 * record needs when it has more than hdr_cap.
 * prev_delta < -1 asks for a producer's batch, whose offset deltas are exactly 0, 1, 2, ...;
 * otherwise the batch may have been compacted (docs/storage.md, "Log compaction"): the delta
 * must only be above prev_delta (the previous record's, -1 before the first) and at most the
 * batch's lastOffsetDelta, since the cleaner removes records but never renumbers them.
 */
static int parse_record(cursor *c, const td_batch_header *h, int32_t index, int32_t prev_delta,
                        td_record *rec, td_record_header *headers, size_t hdr_cap,
                        size_t *need_cap, const td_slice *count_key, size_t *counted)
{
    size_t start = c->pos;
    int32_t len;
    if (cur_varint(c, &len) || len < MIN_RECORD_SIZE - 1 || (size_t)len > c->n - c->pos)
        return td_fail(TD_ECORRUPT, "record %d: bad length at byte %zu", index, start);
    size_t end = c->pos + (size_t)len;
    cursor rc = {c->p, end, c->pos};
    int64_t ts_delta;
    int32_t off_delta, hcount;
    if (rc.pos >= end)
        return td_fail(TD_ECORRUPT, "record %d: truncated", index);
    rc.pos++; /* attributes: unused */
    if (cur_varlong(&rc, &ts_delta) || cur_varint(&rc, &off_delta))
        return td_fail(TD_ECORRUPT, "record %d: bad timestamp or offset delta", index);
    if (prev_delta < -1 ? off_delta != index
                        : off_delta <= prev_delta || off_delta > h->last_offset_delta)
        return td_fail(TD_ECORRUPT, "record %d has offset delta %d", index, off_delta);
    if (cur_bytes(&rc, end, &rec->key, &rec->key_null) ||
        cur_bytes(&rc, end, &rec->value, &rec->value_null) || cur_varint(&rc, &hcount))
        return td_fail(TD_ECORRUPT, "record %d: bad key, value or header count", index);
    /* A header takes at least two bytes: check the count before trusting it. */
    if (hcount < 0 || (size_t)hcount > (end - rc.pos) / 2)
        return td_fail(TD_ECORRUPT, "record %d: header count %d does not fit", index, hcount);
    if ((size_t)hcount > hdr_cap && need_cap) {
        *need_cap = (size_t)hcount;
        return TD_EFULL;
    }
    for (int32_t i = 0; i < hcount; i++) {
        td_slice k, v;
        bool vnull;
        if (cur_bytes(&rc, end, &k, NULL) || cur_bytes(&rc, end, &v, &vnull))
            return td_fail(TD_ECORRUPT, "record %d: bad header %d", index, i);
        if (count_key && k.n >= count_key->n && memcmp(k.p, count_key->p, count_key->n) == 0)
            ++*counted;
        if (headers && (size_t)i < hdr_cap) {
            headers[i].key = k;
            headers[i].value = v;
            headers[i].value_null = vnull;
        }
    }
    if (rc.pos != end)
        return td_fail(TD_ECORRUPT, "record %d: %zu bytes left over", index, end - rc.pos);
    /* Wrapping sums, as Java's longs wrap in Kafka's clients: a hostile header may put the
     * base near the ends of the range, and the sum must not be undefined behaviour. */
    rec->offset = (int64_t)((uint64_t)h->base_offset + (uint64_t)(int64_t)off_delta);
    if (h->attributes & TD_BATCH_ATTR_LOG_APPEND_TIME)
        rec->timestamp = h->max_timestamp;
    else
        rec->timestamp = (int64_t)((uint64_t)h->base_timestamp + (uint64_t)ts_delta);
    rec->headers = headers;
    rec->header_count = (size_t)hcount;
    c->pos = end;
    return 0;
}

/* Checks every record of a records area against the header. */
static int check_records(const td_batch_header *h, const uint8_t *p, size_t n,
                         const td_slice *count_key, size_t *counted)
{
    if ((size_t)h->record_count > n / MIN_RECORD_SIZE)
        return td_fail(TD_ECORRUPT, "record count %d does not fit in %zu bytes", h->record_count,
                       n);
    if (h->record_count > 0 && h->last_offset_delta != h->record_count - 1)
        return td_fail(TD_ECORRUPT, "last offset delta %d with %d records", h->last_offset_delta,
                       h->record_count);
    cursor c = {p, n, 0};
    for (int32_t i = 0; i < h->record_count; i++) {
        td_record rec;
        int rc = parse_record(&c, h, i, -2, &rec, NULL, 0, NULL, count_key, counted);
        if (rc)
            return rc;
    }
    if (c.pos != n)
        return td_fail(TD_ECORRUPT, "%zu bytes after the last record", n - c.pos);
    return 0;
}

static int validate(const uint8_t *p, size_t n, bool deep, size_t max_uncompressed,
                    const td_slice *count_key, size_t *counted, td_batch_header *out)
{
    td_batch_header h;
    int rc = batch_header_parse(p, n, &h);
    if (rc)
        return rc;
    size_t total = batch_total_size(&h);
    if (n < total)
        return TD_EAGAIN;
    uint32_t crc = td_crc32c(0, p + OFF_ATTRIBUTES, total - OFF_ATTRIBUTES);
    if (crc != h.crc)
        return td_fail(TD_ECRC, "record batch CRC is 0x%08x, computed 0x%08x", h.crc, crc);
    if (deep) {
        const uint8_t *recs = p + TD_BATCH_HEADER_SIZE;
        size_t recs_len = total - TD_BATCH_HEADER_SIZE;
        int codec = batch_compression(&h);
        if (codec == TD_COMPRESS_NONE) {
            rc = check_records(&h, recs, recs_len, count_key, counted);
        } else {
            td_buf b;
            td_buf_init(&b);
            rc = td_decompress(codec, td_slice_make(recs, recs_len), &b, max_uncompressed);
            if (rc == 0)
                rc = check_records(&h, b.p, b.len, count_key, counted);
            td_buf_free(&b);
        }
        if (rc)
            return rc;
    }
    if (out)
        *out = h;
    return 0;
}

int batch_validate(const uint8_t *p, size_t n, bool deep, size_t max_uncompressed,
                   td_batch_header *out)
{
    return validate(p, n, deep, max_uncompressed, NULL, NULL, out);
}

int batch_validate_counting(const uint8_t *p, size_t n, size_t max_uncompressed, td_slice key,
                            size_t *counted, td_batch_header *out)
{
    return validate(p, n, true, max_uncompressed, &key, counted, out);
}

/* ---------------------------------------------------------------------------------------------
 * Encoding
 */
void batch_encode_opts_init(td_batch_encode_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->compression = TD_COMPRESS_NONE;
    o->timestamp_type = TD_TS_CREATE_TIME;
    o->producer_id = -1;
    o->producer_epoch = -1;
    o->base_sequence = -1;
}

static int append_bytes(td_buf *b, const void *p, size_t n, bool is_null)
{
    if (is_null)
        return td_buf_append_varint(b, -1);
    if (n > INT32_MAX)
        return TD_ETOOBIG;
    int rc = td_buf_append_varint(b, (int32_t)n);
    return rc ? rc : td_buf_append(b, p, n);
}

static size_t bytes_size(size_t n, bool is_null)
{
    return is_null ? td_varint_size(-1) : td_varint_size((int32_t)n) + n;
}

/* Appends the records of events to out, uncompressed. Each record's length is computed first
 * from the varint sizes, so fields go straight into out with no intermediate copy. */
static int encode_records(td_buf *out, int64_t base_ts, const td_event *ev, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const td_event *e = &ev[i];
        if (e->key_len > INT32_MAX || e->value_len > INT32_MAX || e->header_count > INT32_MAX)
            return TD_ETOOBIG;
        size_t len = 1 + td_varlong_size(e->timestamp_ms - base_ts) +
                     td_varint_size((int32_t)i) + bytes_size(e->key_len, e->key == NULL) +
                     bytes_size(e->value_len, e->value == NULL) +
                     td_varint_size((int32_t)e->header_count);
        for (size_t k = 0; k < e->header_count; k++) {
            const td_header *hd = &e->headers[k];
            if (hd->key_len > INT32_MAX || hd->value_len > INT32_MAX)
                return TD_ETOOBIG;
            len += bytes_size(hd->key_len, false) + bytes_size(hd->value_len, hd->value == NULL);
        }
        if (len > INT32_MAX)
            return TD_ETOOBIG;
        int rc = td_buf_reserve(out, len + 5);
        if (rc)
            return rc;
        rc = td_buf_append_varint(out, (int32_t)len);
        rc = rc ? rc : td_buf_append_u8(out, 0);
        rc = rc ? rc : td_buf_append_varlong(out, e->timestamp_ms - base_ts);
        rc = rc ? rc : td_buf_append_varint(out, (int32_t)i);
        rc = rc ? rc : append_bytes(out, e->key, e->key_len, e->key == NULL);
        rc = rc ? rc : append_bytes(out, e->value, e->value_len, e->value == NULL);
        rc = rc ? rc : td_buf_append_varint(out, (int32_t)e->header_count);
        for (size_t k = 0; !rc && k < e->header_count; k++) {
            const td_header *hd = &e->headers[k];
            rc = append_bytes(out, hd->key, hd->key_len, false);
            rc = rc ? rc : append_bytes(out, hd->value, hd->value_len, hd->value == NULL);
        }
        if (rc)
            return rc;
    }
    return 0;
}

int batch_encode(td_buf *out, const td_batch_encode_opts *o, const td_event *events, size_t n)
{
    if (n == 0 || n > INT32_MAX)
        return TD_EINVAL;
    if (o->compression < TD_COMPRESS_NONE || o->compression > TD_COMPRESS_ZSTD)
        return td_fail(TD_EUNSUPPORTED, "unknown compression codec %d", o->compression);
    int64_t base_ts = events[0].timestamp_ms, max_ts = base_ts;
    for (size_t i = 1; i < n; i++)
        if (events[i].timestamp_ms > max_ts)
            max_ts = events[i].timestamp_ms;
    /* Reserve the whole batch at once (an upper bound: 25 bytes of varints and attributes per
     * record, 10 per header), rather than growing by doubling with a copy at every step. */
    size_t estimate = TD_BATCH_HEADER_SIZE;
    for (size_t i = 0; i < n; i++) {
        estimate += 25 + events[i].key_len + events[i].value_len;
        for (size_t k = 0; k < events[i].header_count; k++)
            estimate += 10 + events[i].headers[k].key_len + events[i].headers[k].value_len;
    }
    size_t start = out->len;
    int rc = td_buf_reserve(out, o->compression == TD_COMPRESS_NONE ? estimate
                                                                     : TD_BATCH_HEADER_SIZE);
    if (rc)
        return rc;
    memset(out->p + start, 0, TD_BATCH_HEADER_SIZE);
    out->len += TD_BATCH_HEADER_SIZE;
    if (o->compression == TD_COMPRESS_NONE) {
        rc = encode_records(out, base_ts, events, n);
    } else {
        td_buf raw;
        td_buf_init(&raw);
        rc = encode_records(&raw, base_ts, events, n);
        if (!rc)
            rc = td_compress(o->compression, td_buf_slice(&raw), out, o->compression_level);
        td_buf_free(&raw);
    }
    if (rc)
        goto fail;
    size_t total = out->len - start;
    if (total - TD_BATCH_LOG_OVERHEAD > INT32_MAX) {
        rc = TD_ETOOBIG;
        goto fail;
    }
    uint8_t *h = out->p + start;
    int16_t attr = (int16_t)o->compression;
    if (o->timestamp_type == TD_TS_LOG_APPEND_TIME)
        attr |= TD_BATCH_ATTR_LOG_APPEND_TIME;
    if (o->transactional)
        attr |= TD_BATCH_ATTR_TRANSACTIONAL;
    td_store_be64(h + OFF_BASE_OFFSET, (uint64_t)o->base_offset);
    td_store_be32(h + OFF_LENGTH, (uint32_t)(total - TD_BATCH_LOG_OVERHEAD));
    td_store_be32(h + OFF_EPOCH, 0);
    h[OFF_MAGIC] = TD_BATCH_MAGIC;
    td_store_be16(h + OFF_ATTRIBUTES, (uint16_t)attr);
    td_store_be32(h + OFF_LAST_DELTA, (uint32_t)(n - 1));
    td_store_be64(h + OFF_BASE_TS, (uint64_t)base_ts);
    td_store_be64(h + OFF_MAX_TS, (uint64_t)max_ts);
    td_store_be64(h + OFF_PRODUCER_ID, (uint64_t)o->producer_id);
    td_store_be16(h + OFF_PRODUCER_EPOCH, (uint16_t)o->producer_epoch);
    td_store_be32(h + OFF_BASE_SEQ, (uint32_t)o->base_sequence);
    td_store_be32(h + OFF_COUNT, (uint32_t)n);
    batch_update_crc(h, total);
    return 0;
fail:
    out->len = start;
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Reader
 */
void batch_reader_init(td_batch_reader *r)
{
    memset(r, 0, sizeof(*r));
    td_buf_init(&r->decomp);
}

void batch_reader_free(td_batch_reader *r)
{
    td_buf_free(&r->decomp);
    free(r->hdrs);
    batch_reader_init(r);
}

int batch_reader_open(td_batch_reader *r, const uint8_t *p, size_t n, size_t max_uncompressed)
{
    int rc = batch_validate(p, n, false, 0, &r->h);
    if (rc)
        return rc;
    size_t total = batch_total_size(&r->h);
    const uint8_t *recs = p + TD_BATCH_HEADER_SIZE;
    size_t recs_len = total - TD_BATCH_HEADER_SIZE;
    int codec = batch_compression(&r->h);
    if (codec != TD_COMPRESS_NONE) {
        td_buf_reset(&r->decomp);
        rc = td_decompress(codec, td_slice_make(recs, recs_len), &r->decomp, max_uncompressed);
        if (rc)
            return rc;
        recs = r->decomp.p;
        recs_len = r->decomp.len;
    }
    if ((size_t)r->h.record_count > recs_len / MIN_RECORD_SIZE)
        return td_fail(TD_ECORRUPT, "record count %d does not fit in %zu bytes",
                       r->h.record_count, recs_len);
    r->records = recs;
    r->records_len = recs_len;
    r->pos = 0;
    r->index = 0;
    r->prev_delta = -1;
    return 0;
}

int batch_reader_next_key(td_batch_reader *r, int64_t *offset, td_slice *key, bool *key_null)
{
    if (r->index >= r->h.record_count)
        return r->pos == r->records_len
                   ? 0
                   : td_fail(TD_ECORRUPT, "%zu bytes after the last record",
                             r->records_len - r->pos);
    cursor c = {r->records, r->records_len, r->pos};
    int32_t len, off_delta;
    int64_t ts_delta;
    if (cur_varint(&c, &len) || len < MIN_RECORD_SIZE - 1 || (size_t)len > c.n - c.pos)
        return td_fail(TD_ECORRUPT, "record %d: bad length", r->index);
    size_t end = c.pos + (size_t)len;
    cursor rc = {c.p, end, c.pos + 1}; /* after the attributes */
    if (rc.pos >= end || cur_varlong(&rc, &ts_delta) || cur_varint(&rc, &off_delta) ||
        off_delta <= r->prev_delta || off_delta > r->h.last_offset_delta ||
        cur_bytes(&rc, end, key, key_null))
        return td_fail(TD_ECORRUPT, "record %d: bad offset delta or key", r->index);
    *offset = (int64_t)((uint64_t)r->h.base_offset + (uint64_t)(int64_t)off_delta);
    r->prev_delta = off_delta;
    r->pos = end;
    r->index++;
    return 1;
}

int batch_reader_next_key_headers(td_batch_reader *r, int64_t *offset, td_slice *key,
                                  bool *key_null, td_slice name, td_slice *vals, size_t max,
                                  size_t *nvals)
{
    *nvals = 0;
    size_t start = r->pos;
    int rc = batch_reader_next_key(r, offset, key, key_null);
    if (rc != 1)
        return rc;
    /* The record's framing is checked: find its key again, then read on past it. */
    cursor c = {r->records, r->pos, start};
    int32_t len, off_delta, hcount;
    int64_t ts_delta;
    td_slice k, v;
    bool vnull;
    (void)cur_varint(&c, &len);
    c.pos++; /* attributes */
    (void)cur_varlong(&c, &ts_delta);
    (void)cur_varint(&c, &off_delta);
    (void)cur_bytes(&c, r->pos, &k, &vnull);
    if (cur_bytes(&c, r->pos, &v, &vnull) || cur_varint(&c, &hcount) || hcount < 0 ||
        (size_t)hcount > (r->pos - c.pos) / 2)
        return td_fail(TD_ECORRUPT, "record %d: bad value or header count", r->index - 1);
    for (int32_t i = 0; i < hcount; i++) {
        if (cur_bytes(&c, r->pos, &k, NULL) || cur_bytes(&c, r->pos, &v, &vnull))
            return td_fail(TD_ECORRUPT, "record %d: bad header %d", r->index - 1, i);
        if (!vnull && k.n == name.n && memcmp(k.p, name.p, name.n) == 0 && *nvals < max)
            vals[(*nvals)++] = v;
    }
    return 1;
}

int batch_reader_next(td_batch_reader *r, td_record *rec)
{
    if (r->index >= r->h.record_count) {
        if (r->pos != r->records_len)
            return td_fail(TD_ECORRUPT, "%zu bytes after the last record",
                           r->records_len - r->pos);
        return 0;
    }
    for (;;) {
        cursor c = {r->records, r->records_len, r->pos};
        size_t need = 0;
        int rc = parse_record(&c, &r->h, r->index, r->prev_delta, rec, r->hdrs, r->hdrs_cap,
                              &need, NULL, NULL);
        if (rc == TD_EFULL) {
            /* need is bounded by the record's bytes (checked in parse_record). */
            td_record_header *nh = realloc(r->hdrs, need * sizeof(*nh));
            if (!nh)
                return -ENOMEM;
            r->hdrs = nh;
            r->hdrs_cap = need;
            continue;
        }
        if (rc)
            return rc;
        r->pos = c.pos;
        r->index++;
        /* Unsigned, as rec->offset was computed: a base offset near INT64_MAX wraps. */
        r->prev_delta = (int32_t)((uint64_t)rec->offset - (uint64_t)r->h.base_offset);
        return 1;
    }
}

/* ---------------------------------------------------------------------------------------------
 * Transaction markers
 */
void batch_encode_marker(uint8_t out[TD_MARKER_SIZE], int64_t pid, int16_t epoch, bool commit,
                         int32_t coord_epoch, int64_t ts)
{
    memset(out, 0, TD_MARKER_SIZE);
    td_store_be32(out + 8, TD_MARKER_SIZE - TD_BATCH_LOG_OVERHEAD);
    out[16] = TD_BATCH_MAGIC;
    td_store_be16(out + OFF_ATTRIBUTES, TD_BATCH_ATTR_TRANSACTIONAL | TD_BATCH_ATTR_CONTROL);
    td_store_be64(out + 27, (uint64_t)ts);
    td_store_be64(out + 35, (uint64_t)ts);
    td_store_be64(out + 43, (uint64_t)pid);
    td_store_be16(out + 51, (uint16_t)epoch);
    td_store_be32(out + 53, UINT32_MAX); /* base sequence -1 */
    td_store_be32(out + 57, 1);
    /* The record: length 16, attributes, timestamp and offset deltas 0, key of 4 bytes, value of
     * 6, no headers (zigzag varints). */
    uint8_t *r = out + TD_BATCH_HEADER_SIZE;
    r[0] = 0x20;
    r[4] = 0x08;
    td_store_be16(r + 7, commit ? TD_MARKER_COMMIT : TD_MARKER_ABORT);
    r[9] = 0x0c;
    td_store_be32(r + 12, (uint32_t)coord_epoch);
    batch_update_crc(out, TD_MARKER_SIZE);
}

int batch_marker_type(const uint8_t *b, size_t n, int32_t *coord_epoch)
{
    td_batch_header h;
    if (batch_header_parse(b, n, &h) != 0 || !(h.attributes & TD_BATCH_ATTR_CONTROL) ||
        h.record_count != 1 || batch_compression(&h) != TD_COMPRESS_NONE ||
        batch_total_size(&h) > n)
        return -1;
    size_t pos = TD_BATCH_HEADER_SIZE, end = batch_total_size(&h);
    int32_t v[4] = {0}; /* length, (the attributes byte), deltas, the key's length */
    for (int i = 0; i < 4; i++) {
        if (pos >= end)
            return -1;
        int64_t x = 0;
        int k = i == 1 ? td_varlong_decode(b + pos, end - pos, &x)
                       : td_varint_decode(b + pos, end - pos, &v[i]);
        if (k <= 0)
            return -1;
        pos += (size_t)k + (i == 0); /* the attributes byte follows the length */
    }
    if (v[3] < 4 || end - pos < (size_t)v[3])
        return -1;
    int type = (int16_t)td_load_be16(b + pos + 2);
    pos += (size_t)v[3];
    int32_t vlen = 0;
    int k = pos < end ? td_varint_decode(b + pos, end - pos, &vlen) : -1;
    if (k <= 0 || vlen < 6 || end - pos - (size_t)k < (size_t)vlen)
        return -1;
    if (coord_epoch)
        *coord_epoch = (int32_t)td_load_be32(b + pos + (size_t)k + 2);
    return type == TD_MARKER_ABORT || type == TD_MARKER_COMMIT ? type : -1;
}
