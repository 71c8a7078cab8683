/*
 * batch.h: Kafka record batch v2 (magic 2) codec, and the compression codecs it uses.
 *
 * Batch layout (big-endian), 61-byte header then records:
 *
 *   off size field
 *     0    8 baseOffset
 *     8    4 batchLength            bytes after this field (total size - 12)
 *    12    4 partitionLeaderEpoch
 *    16    1 magic                  2
 *    17    4 crc                    CRC32C of bytes 21 .. end (attributes to the last record)
 *    21    2 attributes             bits 0-2 compression (0 none, 1 gzip, 2 snappy, 3 lz4,
 *                                   4 zstd), bit 3 timestamp type (1 = LogAppendTime),
 *                                   bit 4 transactional, bit 5 control batch
 *    23    4 lastOffsetDelta
 *    27    8 baseTimestamp
 *    35    8 maxTimestamp
 *    43    8 producerId
 *    51    2 producerEpoch
 *    53    4 baseSequence
 *    57    4 recordCount
 *    61      records (compressed as one block when bits 0-2 are not 0)
 *
 * Record: length varint (bytes after it), attributes int8 (unused, 0), timestampDelta varlong,
 * offsetDelta varint, keyLength varint (-1 = null key), key, valueLength varint (-1 = null),
 * value, headerCount varint, then per header: keyLength varint, key, valueLength varint
 * (-1 = null), value. Varints are zigzag (see base/varint.c).
 *
 * Everything here is a pure function over buffers: no I/O, no globals.
 */
#ifndef TD_STORAGE_BATCH_H
#define TD_STORAGE_BATCH_H

#include "base/base.h"

#define TD_BATCH_HEADER_SIZE 61
#define TD_BATCH_LOG_OVERHEAD 12 /* baseOffset + batchLength */
#define TD_BATCH_MAGIC 2

enum td_compression {
    TD_COMPRESS_NONE = 0,
    TD_COMPRESS_GZIP = 1,
    TD_COMPRESS_SNAPPY = 2,
    TD_COMPRESS_LZ4 = 3,
    TD_COMPRESS_ZSTD = 4,
};

#define TD_BATCH_ATTR_COMPRESSION_MASK 0x07
#define TD_BATCH_ATTR_LOG_APPEND_TIME 0x08
#define TD_BATCH_ATTR_TRANSACTIONAL 0x10
#define TD_BATCH_ATTR_CONTROL 0x20

typedef struct td_batch_header {
    int64_t base_offset;
    int32_t batch_length; /* total size = batch_length + 12 */
    int32_t leader_epoch;
    int8_t magic;
    uint32_t crc;
    int16_t attributes;
    int32_t last_offset_delta;
    int64_t base_timestamp;
    int64_t max_timestamp;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t base_sequence;
    int32_t record_count;
} td_batch_header;

static inline size_t batch_total_size(const td_batch_header *h)
{
    return (size_t)h->batch_length + TD_BATCH_LOG_OVERHEAD;
}
static inline int64_t batch_last_offset(const td_batch_header *h)
{
    return h->base_offset + h->last_offset_delta;
}
static inline int batch_compression(const td_batch_header *h)
{
    return h->attributes & TD_BATCH_ATTR_COMPRESSION_MASK;
}

/*
 * Parses the 61-byte header at p. Checks only what the header alone can show: magic is 2,
 * batchLength covers at least the header (>= 49), recordCount >= 0, lastOffsetDelta >= 0.
 * Returns 0, TD_EAGAIN if n < 61, TD_ECORRUPT otherwise (td_last_error says which field).
 */
int batch_header_parse(const uint8_t *p, size_t n, td_batch_header *h);

/*
 * Validates one whole batch at p: header as above, n >= total size (TD_EAGAIN otherwise),
 * the CRC (TD_ECRC), and, when deep is true, every record: lengths, offset deltas 0..count-1
 * in order, lastOffsetDelta == count - 1 (for count > 0), timestamps, header counts, and that
 * the records fill the (decompressed) records area exactly (TD_ECORRUPT). Compressed batches
 * are decompressed for the deep check, at most max_uncompressed bytes (TD_ETOOBIG beyond).
 * On success fills *h (may be NULL) and returns 0.
 */
int batch_validate(const uint8_t *p, size_t n, bool deep, size_t max_uncompressed,
                   td_batch_header *h);
/* batch_validate(deep) that also adds to *counted the number of the records' headers whose
 * key begins with `key` (a compare of the key's length per header, of its first bytes when it
 * is as long): how the broker learns whether a batch carries headers of a family (tidings-),
 * without a second pass. */
int batch_validate_counting(const uint8_t *p, size_t n, size_t max_uncompressed, td_slice key,
                            size_t *counted, td_batch_header *h);

/* Rewrites baseOffset in place (outside the CRC, so the CRC stays valid). */
void batch_set_base_offset(uint8_t *batch, int64_t base_offset);
/* Rewrites partitionLeaderEpoch in place (outside the CRC). */
void batch_set_leader_epoch(uint8_t *batch, int32_t epoch);
/* Marks a batch LogAppendTime with maxTimestamp = ts, and recomputes the CRC. */
void batch_set_log_append_time(uint8_t *batch, size_t n, int64_t ts);
/* Recomputes and stores the CRC of a whole batch of size n. */
void batch_update_crc(uint8_t *batch, size_t n);

/* ---------------------------------------------------------------------------------------------
 * Encoding
 */
/*
 * Transaction markers (Kafka's EndTransactionMarker): a control batch (attributes transactional
 * and control) of one record whose key is int16 version 0, int16 type (0 ABORT, 1 COMMIT) and
 * whose value is int16 version 0, int32 coordinator epoch; 78 bytes, base sequence -1.
 */
#define TD_MARKER_SIZE 78
/* The largest marker in a log: compaction gives a marker a delete horizon (storage/cleaner.c),
 * rebasing its record's timestamp delta on it, which takes up to 10 bytes instead of 1. */
#define TD_MARKER_MAX_SIZE (TD_MARKER_SIZE + 9)
enum { TD_MARKER_ABORT = 0, TD_MARKER_COMMIT = 1 };
/* Encodes a marker at base offset 0 with both timestamps ts (CRC set). */
void batch_encode_marker(uint8_t out[TD_MARKER_SIZE], int64_t pid, int16_t epoch, bool commit,
                         int32_t coord_epoch, int64_t ts);
/* The type of the transaction marker in the control batch b[0..n) (TD_MARKER_ABORT or
 * TD_MARKER_COMMIT) and its coordinator epoch (coord_epoch may be NULL), or -1 when b is no
 * transaction marker. Reads only what n holds. */
int batch_marker_type(const uint8_t *b, size_t n, int32_t *coord_epoch);

typedef struct td_batch_encode_opts {
    int64_t base_offset;
    int compression; /* enum td_compression */
    int compression_level; /* 0: the codec's default */
    int timestamp_type;    /* enum td_timestamp_type from tidings.h */
    int64_t producer_id;   /* -1 when not idempotent */
    int16_t producer_epoch;
    int32_t base_sequence;
    bool transactional;
} td_batch_encode_opts;

/* Defaults: offset 0, no compression, CreateTime, producer id/epoch/sequence -1. */
void batch_encode_opts_init(td_batch_encode_opts *o);

/*
 * Appends one batch holding events[0..n) to out (n >= 1). Timestamps are taken as given
 * (the caller replaces <= 0 by "now" first). Returns 0, TD_EINVAL (n == 0), -ENOMEM, or
 * TD_EUNSUPPORTED for an unknown codec.
 */
int batch_encode(td_buf *out, const td_batch_encode_opts *o, const td_event *events, size_t n);

/* ---------------------------------------------------------------------------------------------
 * Reading records
 */
typedef struct td_record_header {
    td_slice key;
    td_slice value;
    bool value_null;
} td_record_header;

typedef struct td_record {
    int64_t offset;
    int64_t timestamp;
    td_slice key;
    bool key_null;
    td_slice value;
    bool value_null;
    const td_record_header *headers; /* owned by the reader */
    size_t header_count;
} td_record;

/* Iterates the records of one batch. Decompresses into a buffer it owns and reuses. */
typedef struct td_batch_reader {
    td_batch_header h;
    const uint8_t *records; /* records area: into the batch, or into decomp */
    size_t records_len;
    size_t pos;
    int32_t index;
    int32_t prev_delta; /* the last record's offset delta, -1 before the first */
    td_buf decomp;
    td_record_header *hdrs;
    size_t hdrs_cap;
} td_batch_reader;

void batch_reader_init(td_batch_reader *r);
void batch_reader_free(td_batch_reader *r);

/*
 * Starts reading the batch at p (n bytes, at least the batch's total size). A stored batch may
 * have been compacted: it may hold fewer records than lastOffsetDelta + 1, even none, and the
 * offset deltas of its records may skip (they only increase, up to lastOffsetDelta); the reader
 * accepts that, as Kafka's consumers do. Checks the header
 * and the CRC; decompresses (at most max_uncompressed bytes, TD_ETOOBIG beyond).
 * The batch bytes must stay valid while records are read.
 */
int batch_reader_open(td_batch_reader *r, const uint8_t *p, size_t n, size_t max_uncompressed);

/*
 * Reads the next record: 1 and *rec filled, 0 after the last record, or TD_ECORRUPT. The
 * slices in *rec point into the batch or the reader's buffer and stay valid until the next
 * batch_reader_open() or batch_reader_free(); rec->headers until the next batch_reader_next().
 */
int batch_reader_next(td_batch_reader *r, td_record *rec);
/* The next record's offset and key only, for the indexes that need no more (the rest of the
 * record is skipped, its framing and the key's bounds checked): as batch_reader_next. */
int batch_reader_next_key(td_batch_reader *r, int64_t *offset, td_slice *key, bool *key_null);
/* batch_reader_next_key, and the non-null values of the record's headers named `name`: the first
 * max of them into vals (*nvals of them; the value is skipped, the headers' framing checked). */
int batch_reader_next_key_headers(td_batch_reader *r, int64_t *offset, td_slice *key,
                                  bool *key_null, td_slice name, td_slice *vals, size_t max,
                                  size_t *nvals);

/* ---------------------------------------------------------------------------------------------
 * Compression, with Kafka's framings: gzip (RFC 1952), snappy (raw, or the xerial framing that
 * Java clients write, detected by its magic), lz4 (the LZ4 frame format), zstd (frames).
 */
/* Appends the compressed form of in to out. level 0: default. */
int td_compress(int codec, td_slice in, td_buf *out, int level);
/* Appends the decompressed form of in to out, failing with TD_ETOOBIG past max_out bytes and
 * TD_ECORRUPT on malformed input. */
int td_decompress(int codec, td_slice in, td_buf *out, size_t max_out);
/* "none", "gzip", "snappy", "lz4", "zstd"; "unknown". */
const char *td_compression_name(int codec);

#endif /* TD_STORAGE_BATCH_H */
