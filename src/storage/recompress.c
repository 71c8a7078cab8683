/*
 * recompress.c: the topic's rules for a batch about to be appended, shared by every protocol's
 * append (part_append* calls batch_apply_rules before it takes the partition's lock):
 *
 * - message.timestamp.difference.max.ms, message.timestamp.before.max.ms and
 *   message.timestamp.after.max.ms: on a CreateTime topic every record's timestamp must lie
 *   within those bounds of the broker's clock, as Kafka's LogValidator checks them
 *   (TD_ETIMESTAMP, Kafka's INVALID_TIMESTAMP, naming the record and the allowed range);
 * - compression.type: unless it is `producer`, a batch whose codec differs is rewritten with
 *   the topic's codec. Only the records area changes: the header (base offset, timestamps,
 *   producer id, epoch and sequence, the transactional and timestamp-type bits) is kept, the
 *   codec bits, the length and the CRC are set anew. Readers then see the topic's codec;
 * - cleanup.policy with compact: every record must have a key (TD_ENOKEY, Kafka's
 *   INVALID_RECORD), since compaction keeps the latest record of each key.
 *
 * Costs: nothing when every rule is at its default (the common case: one branch). Otherwise one
 * decompression and, for compression.type, one compression per batch whose codec differs, on
 * the appending thread and outside the partition's lock.
 */
#include <inttypes.h>
#include <string.h>

#include "base/base.h"
#include "storage/storage.h"

void batch_rules_of(const td_topic_config *cfg, batch_rules *r)
{
    r->compression_type = cfg->compression_type;
    r->timestamp_type = cfg->timestamp_type;
    r->difference_max_ms = cfg->timestamp_difference_max_ms;
    r->before_max_ms = cfg->timestamp_before_max_ms;
    r->after_max_ms = cfg->timestamp_after_max_ms;
    r->require_key = (cfg->cleanup_policy & TD_CLEANUP_COMPACT) != 0;
}

static bool checks_timestamps(const batch_rules *r)
{
    return r->timestamp_type == TD_TS_CREATE_TIME &&
           (r->difference_max_ms != INT64_MAX || r->before_max_ms != INT64_MAX ||
            r->after_max_ms != INT64_MAX);
}

bool batch_rules_needed(const batch_rules *r)
{
    return r->compression_type != TD_TOPIC_COMPRESSION_PRODUCER || checks_timestamps(r) ||
           r->require_key;
}

/* now - span and now + span, saturating instead of overflowing (spans default to INT64_MAX). */
static int64_t sub_sat(int64_t now, int64_t span)
{
    int64_t r;
    return __builtin_sub_overflow(now, span, &r) ? INT64_MIN : r;
}

static int64_t add_sat(int64_t now, int64_t span)
{
    int64_t r;
    return __builtin_add_overflow(now, span, &r) ? INT64_MAX : r;
}

/* A compacted topic keeps the latest record of each key: a record without one could never be
 * compacted, so Kafka refuses it (LogValidator: "Compacted topic cannot accept message without
 * key"), and so does every protocol here. */
static int check_keys(td_batch_reader *rd)
{
    td_record rec;
    int rc;
    while ((rc = batch_reader_next(rd, &rec)) == 1) {
        if (rec.key_null)
            return td_fail(TD_ENOKEY,
                           "Compacted topic cannot accept message without key (the record at "
                           "offset delta %" PRId64 ")",
                           rec.offset - rd->h.base_offset);
    }
    return rc;
}

static int check_timestamps(const batch_rules *r, td_batch_reader *rd, int64_t now_ms)
{
    int64_t lo = TD_MAX(sub_sat(now_ms, r->difference_max_ms), sub_sat(now_ms, r->before_max_ms));
    int64_t hi = TD_MIN(add_sat(now_ms, r->difference_max_ms), add_sat(now_ms, r->after_max_ms));
    td_record rec;
    int rc;
    while ((rc = batch_reader_next(rd, &rec)) == 1) {
        if (rec.timestamp < lo || rec.timestamp > hi)
            return td_fail(TD_ETIMESTAMP,
                           "timestamp %" PRId64 " of the record at offset delta %" PRId64
                           " is out of range: it must lie within [%" PRId64 ", %" PRId64
                           "] (the topic's message.timestamp.*.max.ms settings)",
                           rec.timestamp, rec.offset - rd->h.base_offset, lo, hi);
    }
    return rc;
}

int batch_apply_rules(const batch_rules *r, uint8_t *batch, size_t n, int64_t now_ms,
                      size_t max_decomp, td_buf *tmp, uint8_t **out, size_t *out_n)
{
    *out = batch;
    *out_n = n;
    if (!batch_rules_needed(r))
        return 0;
    td_batch_header h;
    int rc = batch_header_parse(batch, n, &h);
    if (rc)
        return rc == TD_EAGAIN ? TD_ECORRUPT : rc;
    bool recompress = r->compression_type != TD_TOPIC_COMPRESSION_PRODUCER &&
                      r->compression_type != batch_compression(&h) &&
                      !(h.attributes & TD_BATCH_ATTR_CONTROL);
    bool timestamps = checks_timestamps(r) && !(h.attributes & TD_BATCH_ATTR_CONTROL);
    bool keys = r->require_key && !(h.attributes & TD_BATCH_ATTR_CONTROL);
    if (!recompress && !timestamps && !keys)
        return 0;
    td_batch_reader rd;
    batch_reader_init(&rd);
    rc = batch_reader_open(&rd, batch, n, max_decomp);
    if (rc == 0 && recompress) {
        /* The records area as stored: raw, or decompressed into the reader's buffer. */
        td_slice raw = td_slice_make(rd.records, rd.records_len);
        td_buf_reset(tmp);
        rc = td_buf_append(tmp, batch, TD_BATCH_HEADER_SIZE);
        if (rc == 0 && r->compression_type == TD_COMPRESS_NONE)
            rc = td_buf_append(tmp, raw.p, raw.n);
        else if (rc == 0)
            rc = td_compress(r->compression_type, raw, tmp, 0);
        if (rc == 0 && tmp->len - TD_BATCH_LOG_OVERHEAD > (size_t)INT32_MAX)
            rc = td_fail(TD_ETOOBIG, "the recompressed batch is too large");
        if (rc == 0) {
            td_store_be32(tmp->p + 8, (uint32_t)(tmp->len - TD_BATCH_LOG_OVERHEAD));
            uint16_t attrs = (uint16_t)((h.attributes & ~TD_BATCH_ATTR_COMPRESSION_MASK) |
                                        r->compression_type);
            td_store_be16(tmp->p + 21, attrs);
            batch_update_crc(tmp->p, tmp->len);
        }
    }
    if (rc == 0 && timestamps)
        rc = check_timestamps(r, &rd, now_ms);
    if (rc == 0 && keys) {
        if (timestamps) { /* check_timestamps read them all: again from the first */
            batch_reader_free(&rd);
            batch_reader_init(&rd);
            rc = batch_reader_open(&rd, batch, n, max_decomp);
        }
        if (rc == 0)
            rc = check_keys(&rd);
    }
    batch_reader_free(&rd);
    if (rc == 0 && recompress) {
        *out = tmp->p;
        *out_n = tmp->len;
    }
    return rc;
}
