/*
 * storage.h: the interface of the storage layer to the layers above (broker/): partitions as
 * segmented logs, and the metadata catalog. See docs/storage.md for the on-disk format.
 *
 * A partition is a directory of segments. Each segment is three files named by its base offset
 * as 20 zero-padded decimal digits, as in Kafka:
 *   00000000000000000000.log        record batches (v2) exactly as on the wire, base offsets set
 *   00000000000000000000.index      sparse offset index: 8-byte entries
 *                                   (relative offset u32 BE, file position u32 BE),
 *                                   one per index_interval_bytes of log
 *   00000000000000000000.timeindex  time index: 12-byte entries
 *                                   (max timestamp so far i64 BE, relative offset u32 BE),
 *                                   added when the partition's max timestamp grows
 * The newest segment is the active one; older ones are sealed (immutable, indexes fsynced).
 *
 * Concurrency: appends to one partition are serialized by the partition's lock; readers of
 * committed data take the lock only to find and reference a segment (segments are reference
 * counted, so retention can delete one that a reader still has open).
 */
#ifndef TD_STORAGE_STORAGE_H
#define TD_STORAGE_STORAGE_H

#include "base/base.h"
#include "base/metrics.h"
#include "storage/batch.h"
#include "storage/io.h"

typedef struct td_part td_part;
typedef struct td_seg td_seg;
typedef struct td_reserve td_reserve;
typedef struct td_indexer td_indexer;

#define TD_INDEX_INTERVAL_BYTES 4096

/*
 * Opens (creating if needed) the partition in directory dir and recovers it:
 * - sealed segments are trusted if their indexes are present and consistent (sizes multiples
 *   of the entry size, entries increasing, last entry inside the log); otherwise the index is
 *   rebuilt by scanning that segment's batches;
 * - the active segment is scanned from its last index entry (or from the start after an
 *   unclean shutdown) and a torn or corrupt tail is truncated to the last valid batch, logging
 *   file, position and bytes cut;
 * - a corrupt batch found in a sealed segment (or anywhere before the tail) does not fail the
 *   open: the partition opens offline (part_offline()), naming file and position.
 * `label` names the partition in logs and errors ("orders/3"); it is copied.
 * cfg is copied; change it with part_set_config().
 */
int part_open(const td_io *io, const char *dir, const char *label, const td_topic_config *cfg,
              td_part **out);

/* Syncs, writes indexes, marks a clean shutdown, frees. No reader may still hold a range. */
void part_close(td_part *p);

/* Marks a partition whose directory has been deleted: part_close then writes nothing (the
 * directory name may already belong to a new topic). */
void part_mark_deleted(td_part *p);

void part_set_config(td_part *p, const td_topic_config *cfg);

/* Topic configuration keys' types as Kafka's DescribeConfigs names them (topic_config.c). */
enum topic_config_type {
    TCT_BOOLEAN = 1,
    TCT_STRING = 2,
    TCT_INT = 3,
    TCT_LONG = 5,
    TCT_DOUBLE = 6,
    TCT_LIST = 7,
};
/* A key's type (enum topic_config_type), -1 for an unknown key; its one line of documentation,
 * NULL for an unknown key (static storage). */
int topic_config_type(const char *key);
const char *topic_config_doc(const char *key);

/*
 * The topic's rules for a batch about to be appended (recompress.c), for every protocol's
 * append: CreateTime record timestamps within message.timestamp.{difference,before,after}.max.ms
 * of now_ms (TD_ETIMESTAMP otherwise), and, when compression.type is not producer, the records
 * recompressed with the topic's codec into tmp. *out is the batch to append: `batch` itself, or
 * tmp's bytes. TD_ECORRUPT, TD_EUNSUPPORTED, TD_ETOOBIG (decompressed size above max_decomp),
 * -ENOMEM.
 */
typedef struct batch_rules {
    int compression_type;
    int timestamp_type;
    int64_t difference_max_ms, before_max_ms, after_max_ms;
    bool require_key; /* cleanup.policy has compact: a record without a key is TD_ENOKEY */
} batch_rules;
void batch_rules_of(const td_topic_config *cfg, batch_rules *r);
bool batch_rules_needed(const batch_rules *r);
int batch_apply_rules(const batch_rules *r, uint8_t *batch, size_t n, int64_t now_ms,
                      size_t max_decomp, td_buf *tmp, uint8_t **out, size_t *out_n);

/* Where a partition counts (base/metrics.h; any may be NULL): the events and bytes it appends,
 * and the duration of the fsyncs that make appends durable. Set before the partition is used
 * by other threads. */
typedef struct part_metrics {
    td_metric *events_in, *bytes_in, *fsync;
    struct part_slow *slow; /* NULL: no count of slow fsyncs */
} part_metrics;
/* The fsyncs slower than threshold_ns: how many, and the slowest (both atomic; whoever reads
 * them resets them). Shared by the partitions that point to it. */
typedef struct part_slow {
    int64_t threshold_ns;
    uint64_t count;
    int64_t max_ns;
} part_slow;
void part_set_metrics(td_part *p, const part_metrics *m);

/* The data directory's disk reserve (NULL: none). While it is not whole, appends fail with
 * -ENOSPC; deleting records and retention release it when they fail with -ENOSPC, retry, and
 * try to restore it once they freed space. Set before the partition is shared. */
void part_set_reserve(td_part *p, td_reserve *r);
/* The thread that catches up the partition's key and trace indexes (indexer_new), so that its
 * appends do not index their batches themselves; NULL: they do. Set before the partition is
 * shared; the partition leaves it at part_close. */
void part_set_indexer(td_part *p, td_indexer *x);

/* An aborted transaction of a partition (Kafka's AbortedTxn): its producer, the offsets of its
 * first record and of its marker, and the last stable offset when the marker was written. */
typedef struct td_aborted_txn {
    int64_t pid, first, last, lso;
} td_aborted_txn;

typedef struct td_append_result {
    int64_t base_offset;
    int64_t last_offset;
    int64_t log_append_time; /* -1 unless the topic uses LogAppendTime */
    int64_t end_offset;      /* last_offset + 1: pass to part_wait_durable */
    bool duplicate;          /* an idempotent producer's retry: nothing was written, and the
                                offsets are those of the original batch */
} td_append_result;

/*
 * Appends one validated record batch (v2). The batch is modified in place: base offset set to
 * the log end offset, and for LogAppendTime topics the timestamp fields (CRC recomputed).
 * Rolls the active segment first if it is full (segment.bytes) or old (segment.ms).
 * Does not wait for durability: see part_wait_durable(). TD_ETOOBIG if the batch exceeds
 * max.message.bytes; TD_EOFFLINE; -errno on I/O failure, in which case the file is truncated
 * back so that no part of the batch is visible, and the next append can succeed.
 * A batch with a producer id (>= 0) is checked against the partition's idempotent producers
 * (storage/producer.h): a duplicate of one of the producer's last five batches is not written
 * and res says so, with the original's offsets; TD_EFENCED for a stale epoch, TD_ESEQUENCE for
 * a sequence gap, TD_EINVAL for a negative epoch or sequence.
 */
int part_append(td_part *p, uint8_t *batch, size_t n, int64_t now_ms, td_append_result *res);

/*
 * Stream IDs (docs/redis.md#stream-ids; the type td_sid is base.h's): every record of a
 * partition has an ID (ms, seq) that strictly increases with its offset and never changes: ms is
 * the partition's stream time (the largest batch timestamp so far), seq the offset plus a shift
 * that only explicit IDs and XSETID set; both cover the full 64 unsigned bits, as in Redis.
 */

enum part_sid_mode {
    PART_SID_AUTO,     /* `*`: the rule's ID (the batch's timestamp is now) */
    PART_SID_MS,       /* `ms-*`: Redis's ms-0, or last seq + 1 at the last ID's ms (TD_ERANGE
                          when that is past 2^64-1); TD_ESEQUENCE below the last ID's ms */
    PART_SID_EXPLICIT, /* `ms-seq`: exactly want (timestamp want.ms); TD_ESEQUENCE if not above
                          the last ID */
};
typedef struct part_sid_req {
    int mode;    /* enum part_sid_mode */
    td_sid want; /* in */
    td_sid got;  /* out: the ID of the batch's first record */
} part_sid_req;

/* part_append_unchecked with a stream ID request, checked and met under the partition's lock
 * (TD_EINVAL for explicit IDs on a LogAppendTime topic, TD_ERANGE for explicit IDs whose seq
 * would pass 2^64-1 within the batch). The batch's timestamp must not be above want.ms (the
 * RESP layer gives min(want.ms, INT64_MAX)). Every append, with a request or not, gets TD_EFULL
 * once the last ID is 18446744073709551615-18446744073709551615. */
int part_append_sid(td_part *p, uint8_t *batch, size_t n, int64_t now_ms, td_append_result *res,
                    part_sid_req *req);

/*
 * Entity streams (docs/event-sourcing.md; segkeys.c): with the topic's key.index, every event
 * of a partition is indexed by its key, per segment (B.keyindex). A key's stream in a partition
 * is its events there; its version is the offset of its latest event (TD_VERSION_NO_STREAM, -1,
 * when it has none left: never written, or all deleted by retention or DeleteRecords).
 *
 * part_key_version: the version as readers see it (below the high watermark).
 * part_key_offsets: the offsets of the key's events at or after `from` (and the log start),
 * below the high watermark, ascending, at most max of them into out (*got). The index compares
 * 128-bit digests (td_key_digest): a reader of the events compares the keys themselves.
 * Both: TD_EUNSUPPORTED when the topic has no key.index; TD_EOFFLINE; -errno of the reads.
 */
int part_key_version(td_part *p, const void *key, size_t key_len, int64_t *version);
int part_key_offsets(td_part *p, const void *key, size_t key_len, int64_t from, int64_t *out,
                     size_t max, size_t *got);
/* The same for a key (tag false) or an event tag (tag true: TD_TAG_HEADER, indexed beside the
 * keys; a tag's version is the offset of the latest event carrying it). */
int part_index_version(td_part *p, bool tag, const void *key, size_t key_len, int64_t *version);
int part_index_offsets(td_part *p, bool tag, const void *key, size_t key_len, int64_t from,
                       int64_t *out, size_t max, size_t *got);

/*
 * Trace index (segkeys.c; docs/storage.md "Trace index files", docs/tracing.md): with the
 * topic's trace.index, every event is indexed, per segment (B.traceindex), under the digests
 * of: its trace id (a valid traceparent's trace-id), the span
 * it names as its parent (an x-causation-span-id header of 16 lowercase hex digits), and the
 * event it names as its cause (an x-causation-id header, `<topic>/<partition>/<offset>`, at
 * most 320 bytes). td_trace_digest: the digest of id (n bytes: 16 for a trace id, 8 for a
 * span id, the header's text for a cause) under kind.
 * part_trace_offsets: the offsets of the events indexed under (kind, id), at or after `from`
 * (and the log start), below the high watermark, ascending, at most max into out (*got). The
 * index compares digests: a reader of the events checks their headers.
 * TD_EUNSUPPORTED when the topic has no trace.index; TD_EOFFLINE; -errno of the reads.
 */
enum { TD_TRACE_BY_TRACE = 1, TD_TRACE_BY_PARENT, TD_TRACE_BY_CAUSE };
void td_trace_digest(int kind, const void *id, size_t n, uint8_t out[TD_KEY_DIGEST_LEN]);
int part_trace_offsets(td_part *p, int kind, const void *id, size_t n, int64_t from, int64_t *out,
                       size_t max, size_t *got);

/*
 * Conditional append: part_append_unchecked, once every expectation holds, checked with the
 * append under the partition's lock (the batch is written whole or not at all). expected is a
 * version (>= 0), TD_VERSION_NO_STREAM, TD_VERSION_EXISTS or TD_VERSION_ANY; with `upto`,
 * expected is a position P (>= -1) and the key holds when it has no event after P (its version
 * <= P: a multi-key condition, docs/event-sourcing.md#consistency-boundaries). Every key is
 * checked, in order, against its version before this batch. A mismatch: TD_EVERSION, nothing
 * written, req->failed the index of the first failed expectation and its `current` the version
 * found. TD_EUNSUPPORTED when the topic has no key.index.
 */
typedef struct part_expect_key {
    const void *key;
    size_t key_len;
    int64_t expected;
    bool upto;       /* expected is a position: no event of the key after it */
    int64_t current; /* out: the version found (on a mismatch) */
    int64_t pre;     /* internal: the version below pre_upto, found before the lock */
    bool tag;        /* key is an event tag (TD_TAG_HEADER), not a record key */
} part_expect_key;
typedef struct part_expect {
    part_expect_key *keys;
    size_t n;
    size_t failed; /* out */
    int64_t pre_upto; /* internal */
} part_expect;
int part_append_expect(td_part *p, uint8_t *batch, size_t n, int64_t now_ms,
                       td_append_result *res, part_expect *req);

/* The ID of the record at offset (TD_ERANGE past the log end or below the first segment);
 * run_end (may be NULL) gets the last offset o whose ID is (id.ms, id.seq + (o - offset)). */
int part_stream_id(td_part *p, int64_t offset, td_sid *id, int64_t *run_end);
/* The first offset in [from, to) (clamped to what is stored) whose ID is >= id, or the end of
 * that range. */
int part_stream_seek(td_part *p, td_sid id, int64_t from, int64_t to, int64_t *offset);
/* The offset of the record whose ID is exactly id (among those from the log start to the high
 * watermark): TD_ENOTFOUND if none has it. */
int part_stream_find(td_part *p, td_sid id, int64_t *offset);
/* The first offset whose ID is above id (from the log start; the high watermark if none): the
 * number of records up to id, since offsets count every record ever appended. */
int part_stream_after(td_part *p, td_sid id, int64_t *offset);
/* The last ID: the last record's, or 0-0, or what XSETID set since. */
int part_stream_last(td_part *p, td_sid *last);
/* The ID of the last record written (whether trimmed or XDEL'd since), or the last ID when no
 * segment holds a record any more: what XSETID may not go below. */
int part_stream_top(td_part *p, td_sid *top);
/* XSETID: the next record's ID will be greater than `last` (TD_ESEQUENCE if `last` is below
 * part_stream_top; it may be below an earlier XSETID's; after the largest ID every append gets
 * TD_EFULL). Durable when it returns. */
int part_stream_set_last(td_part *p, td_sid last);
/* XSETID with ENTRIESADDED: as part_stream_set_last, and when added >= 0 the entries added
 * (part_stream_added) become `added` as of now; both durable when it returns, or neither
 * changed. *at gets the log end it took effect at: the records below it must be durable before
 * XSETID answers (part_wait_durable), or a crash may take them and the XSETID with them. */
int part_stream_xsetid(td_part *p, td_sid last, int64_t added, int64_t *at);
/* Redis's entries_added as of the high watermark hw: every record ever appended below hw (by
 * any protocol; trimming and compaction do not lower it), or, after an XSETID ENTRIESADDED n at
 * log end o, n + (hw - o), modulo 2^64. */
uint64_t part_stream_added(td_part *p, int64_t hw);

/* part_append without the CRC check, for a caller that has just encoded (or deep-validated)
 * the batch itself: computing the CRC twice costs as much as writing the batch. The header and
 * sizes are still checked. */
int part_append_unchecked(td_part *p, uint8_t *batch, size_t n, int64_t now_ms,
                          td_append_result *res);

/*
 * Blocks until every offset below end_offset is durable under the partition's policy:
 * under fsync=always it performs or joins a group commit (one fdatasync covers every append
 * made before it started, from any thread); under interval and none it returns at once.
 * Returns 0 or the -errno of the failed fsync (after which the partition is offline: data
 * that failed to sync cannot be trusted to be on disk).
 */
int part_wait_durable(td_part *p, int64_t end_offset);
/* part_wait_durable for a partition's only writer, which appends without waiting now and then
 * (the transaction coordinator's state): never waits first for others to append (the group
 * commit's gather, which counts appends and would take those for other producers). */
int part_wait_durable_solo(td_part *p, int64_t end_offset);

/* Syncs everything appended so far now, whatever the policy. */
int part_sync(td_part *p);

/* Called from a thread performing part_sync/part_wait_durable once end_offset is durable
 * (rc 0) or the sync failed (rc < 0). For the network server, so event loops never block. */
typedef void (*td_durable_cb)(void *arg, int rc);
/* Registers cb for end_offset; if already durable, calls it at once in this thread. Does not
 * start a sync itself: somebody (a flusher thread) must call part_sync(). */
int part_on_durable(td_part *p, int64_t end_offset, td_durable_cb cb, void *arg);

/* True if appended data is waiting for an fsync (for flusher threads; part_seals_owed tells
 * whether rolled segments wait for their seal). */
bool part_needs_sync(td_part *p);

/* True if a rolled segment still waits to be fsynced and get its index files; *since_ms is then
 * when the oldest of them rolled (td_mono_ms). part_sync() pays them; the engine's background
 * thread calls it (see part.c, "recovery-point", and td_options.none_seal_delay_ms). */
bool part_seals_owed(td_part *p, int64_t *since_ms);

/* Calls fn(arg) whenever the high watermark advances, with the partition's lock held: fn must
 * be short and must not call back into the partition (the network server writes an eventfd).
 * NULL removes it. */
void part_set_advance_hook(td_part *p, void (*fn)(void *arg), void *arg);

/* Offsets. The high watermark is the next offset readers may see: under fsync=always the end of
 * what is durable, otherwise the log end offset. Lock-free reads of atomics. */
int64_t part_log_start(td_part *p);
int64_t part_high_watermark(td_part *p);
int64_t part_log_end(td_part *p);

/*
 * Transactions (part_txn.c; docs/storage.md "Transactions"). A producer's transactional batches
 * open its transaction in the partition; part_append_marker appends its COMMIT or ABORT marker
 * (Kafka's control batch; TD_EFENCED for an epoch below the producer's), which closes it.
 * part_last_stable: the last stable offset, below which every transaction is settled (the first
 * offset of the earliest transaction whose marker is not yet below the high watermark, else the
 * high watermark). part_aborted_txns: the aborted transactions a read of [from, upper) must
 * drop (marker at or after from, first offset below upper), sorted by first offset, malloc'd.
 */
int part_append_marker(td_part *p, int64_t pid, int16_t epoch, bool commit, int32_t coord_epoch,
                       int64_t now_ms, td_append_result *res);
int64_t part_last_stable(td_part *p);
/* The producers the partition keeps state for (Kafka's DescribeProducers), malloc'd. */
typedef struct td_producer_info {
    int64_t pid;
    int16_t epoch;
    int32_t last_seq;    /* of its last batch, -1: none since its epoch began */
    int32_t coord_epoch; /* of its last marker */
    int64_t txn_first;   /* first offset of its open transaction, -1: none */
    int64_t last_ts;     /* max timestamp of its last batch, -1: none */
} td_producer_info;
int part_producers(td_part *p, td_producer_info **out, size_t *n);
int part_aborted_txns(td_part *p, int64_t from, int64_t upper, td_aborted_txn **out, size_t *n);

/*
 * A range of whole batches in one segment file, for zero-copy sends or copying reads.
 * Holds a reference on the segment: release it with part_range_release().
 */
typedef struct td_range {
    td_seg *seg;
    int fd;               /* the segment's log file, through the partition's io table */
    const td_io *io;
    int64_t pos;          /* file position of the first batch */
    int64_t len;          /* bytes: whole batches only */
    int64_t first_offset; /* base offset of the first batch (may be < the offset asked) */
    int64_t next_offset;  /* the offset after the last batch in the range */
} td_range;

/*
 * Finds the batches holding `offset` and after it, up to the high watermark, within one
 * segment, at most max_bytes but always at least the first batch whole (as Kafka fetch does).
 * Returns 0, TD_EEND if offset is at the high watermark or between it and the log end
 * (nothing readable yet), TD_ERANGE if offset is below the log start or past the log end,
 * TD_EOFFLINE.
 */
int part_read(td_part *p, int64_t offset, size_t max_bytes, td_range *r);
/* part_read below `limit` (at most the high watermark; a batch boundary, such as the last
 * stable offset): TD_EEND when offset is at or past it. */
int part_read_to(td_part *p, int64_t offset, size_t max_bytes, int64_t limit, td_range *r);
void part_range_release(td_range *r);

/* The number of records with offsets in [from, to) (clamped to the log start and the high
 * watermark) into *n: to - from, unless the topic is compacted, whose records have gaps between
 * their offsets: then read from the batch headers of the range (records.c). Transaction markers
 * are not records. */
int part_count_records(td_part *p, int64_t from, int64_t to, int64_t *n);

/* The partition's stream-nodes file (part_nodes.c), opaque to storage: the Redis front end's
 * saved model of Redis's stream nodes. part_nodes_read gives the whole file (*out malloc'd) or
 * TD_ENOTFOUND; part_nodes_append appends at its end (fsynced with sync); part_nodes_rewrite
 * replaces it whole (tmp + fsync + rename). The file goes with the partition's directory. */
int part_nodes_read(td_part *p, uint8_t **out, size_t *n);
int part_nodes_append(td_part *p, const void *b, size_t n, bool sync);
int part_nodes_rewrite(td_part *p, const void *b, size_t n);
/* Whether offsets of p may lack a record (its topic is compacted), so that readers that walk
 * offsets one by one must ask part_record_offsets which hold one. */
bool part_has_gaps(td_part *p);
/* The offsets in [from, to) (clamped as above) that hold a record, in order, at most max (0: no
 * limit): *out malloc'd (free it; NULL when none), *n of them. Reads and decodes the range. */
int part_record_offsets(td_part *p, int64_t from, int64_t to, size_t max, int64_t **out,
                        size_t *n);

/* Copies a range's bytes into out (appending). */
int part_range_copy(const td_range *r, td_buf *out);

/*
 * The first offset whose record timestamp is >= ts (using the time index, then the batches'
 * max timestamps, then the records of the one batch), or the high watermark if none.
 */
int part_offset_for_time(td_part *p, int64_t ts, int64_t *offset);

/* The largest timestamp in the partition and the offset of the record carrying it
 * (Kafka ListOffsets MAX_TIMESTAMP); TD_ENOTFOUND if the partition is empty. */
int part_max_timestamp(td_part *p, int64_t *ts, int64_t *offset);

/*
 * Deletes whole sealed segments that retention (ms, bytes, records of the config) no longer
 * keeps; rolls the active segment first when all of it has expired by time. Sets the log start
 * offset to the new first segment's base. *deleted (may be NULL) gets the count.
 */
int part_enforce_retention(td_part *p, int64_t now_ms, int *deleted);

/*
 * Deletes the records below `offset` (Kafka's DeleteRecords): the log start offset becomes
 * `offset`, saved durably in the partition directory before the call returns, and whole
 * segments below it are removed. TD_DELETE_TO_HIGH_WATERMARK deletes everything readable.
 * An offset at or below the log start changes nothing. TD_ERANGE above the high watermark;
 * TD_EOFFLINE. *log_start (may be NULL) gets the log start offset after the call.
 */
#define TD_DELETE_TO_HIGH_WATERMARK (-1)
int part_delete_before(td_part *p, int64_t offset, int64_t *log_start);

/*
 * Scrub: verifies the CRCs of sealed segments, at most `budget` bytes per call, resuming where
 * the last call stopped and starting over after the last segment. On a bad batch the partition
 * goes offline and the error names file and position. *checked gets the bytes checked.
 * Returns 0, or TD_ECORRUPT when it found corruption.
 */
int part_scrub_step(td_part *p, int64_t budget, int64_t *checked);

typedef struct td_part_stats {
    int64_t log_start_offset;
    int64_t high_watermark;
    int64_t log_end_offset;
    int64_t size_bytes;
    int32_t segments;
    bool offline;
    int64_t producers; /* idempotent producers the partition keeps state for */
    char error[256];
} td_part_stats;

void part_stats(td_part *p, td_part_stats *st);

/* ---------------------------------------------------------------------------------------------
 * Log compaction (cleaner.c; docs/storage.md "Compaction")
 */
typedef struct part_clean_info {
    int64_t first_dirty;    /* offsets below were cleaned (the cleaner checkpoint) */
    int64_t clean_bytes;    /* sealed bytes below first_dirty */
    int64_t dirty_bytes;    /* cleanable bytes above it: sealed, their seal paid, and older
                             * than min.compaction.lag.ms */
    double dirty_ratio;     /* dirty / (clean + dirty); 0 when both are 0 */
    int64_t lag_ms;         /* how long the oldest cleanable dirty batch has waited (by its
                             * timestamp; Kafka's max-compaction-delay); 0 without one */
    int64_t due_ms;         /* from when cleaning the cleaned section again removes something
                             * without dirty bytes (a tombstone's or marker's delete horizon),
                             * as the last cleaning found it; INT64_MAX: nothing known */
    int64_t reclaimed_bytes; /* since open: bytes compaction removed */
    int64_t runs, run_ms, read_bytes; /* since open: cleanings, their time and bytes read */
} part_clean_info;

/* Fills *st; returns false (and st zeroed) unless the partition's cleanup.policy has compact. */
bool part_clean_status(td_part *p, int64_t now_ms, part_clean_info *st);

typedef struct part_clean_opts {
    int64_t now_ms;
    size_t map_bytes; /* the offset map's memory (log.cleaner.dedupe.buffer.size) */
    /* Called with the bytes read or written since the last call (at most about 1 MiB apart):
     * it may sleep to throttle (log.cleaner.io.max.bytes.per.second); non-zero stops the
     * cleaning, which then returns TD_ECLOSED having changed nothing durable. May be NULL. */
    int (*io_hook)(void *arg, int64_t bytes);
    void *arg;
} part_clean_opts;

typedef struct part_clean_result {
    int64_t bytes_before, bytes_after; /* of the segments rewritten */
    int32_t segments_before, segments_after;
    int64_t records_removed;
    int64_t first_dirty; /* the checkpoint after the run */
    int64_t read_bytes;
} part_clean_result;

/*
 * Cleans the partition once, as Kafka's Cleaner.clean: maps the latest offset of each key of the
 * dirty section (as much as the map holds), then rewrites the sealed segments from the log start
 * through the mapped end, in groups of at most segment.bytes, keeping per key only its latest
 * record, tombstones until their delete horizon, transaction markers until no batch of their
 * transaction is left and their delete horizon has passed, and each idempotent producer's last
 * batch. With nothing dirty it rewrites the cleaned section when part_clean_info's due_ms has
 * come, and else does nothing. Offsets and stream IDs never change. Crash-safe at every step
 * (see cleaner.c). Runs on the caller's thread (the engine's cleaner); appends and reads go on
 * meanwhile. Returns 0 (also when there was nothing to clean), TD_ECLOSED if stopped by
 * io_hook, or an I/O error.
 */
int part_clean(td_part *p, const part_clean_opts *o, part_clean_result *res);

/* Forgets the idempotent producers whose last append was before before_ms (Kafka's
 * producer.id.expiration.ms); returns how many. */
size_t part_expire_producers(td_part *p, int64_t before_ms);

/* An idempotent producer's epoch and last batch in this partition; TD_ENOTFOUND if the
 * partition keeps no state for it. */
int part_producer(td_part *p, int64_t pid, int16_t *epoch, int32_t *last_seq,
                  int64_t *last_offset);

/* Non-NULL (the reason, naming file and position) if the partition is offline. The string stays
 * valid until part_close. */
const char *part_offline(td_part *p);

/* ---------------------------------------------------------------------------------------------
 * The indexer (indexer.c): one thread that catches up the in-memory key and trace indexes of
 * the partitions given it (part_set_indexer) from their logs, off their appends' path
 * (docs/storage.md "Key index files"). Thread-safe.
 */
int indexer_new(td_indexer **out);
/* Stops the thread; the partitions given it must be closed first. */
void indexer_free(td_indexer *x);

/* ---------------------------------------------------------------------------------------------
 * The disk reserve (reserve.c): a file, DIR/reserve, that keeps a few MiB of the file
 * system for the operations that free space (deleting topics and records, retention), so that
 * they work on a full disk. Thread-safe.
 */
/* Opens the reserve of data directory dir and grows it to `bytes` (0: none, the file is
 * removed; < 0: keep the size the file has). A full disk is not an error: the reserve is then
 * partial and not whole, which the log says. */
int reserve_open(const td_io *io, const char *dir, int64_t bytes, td_reserve **out);
void reserve_close(td_reserve *r);
/* Whether the reserve is whole (a NULL reserve is). Lock-free: appends ask it. */
bool reserve_whole(const td_reserve *r);
/* 0 when whole; else -ENOSPC with td_last_error() saying that appends wait for the reserve. */
int reserve_check(td_reserve *r);
/* Gives the reserve's space back to the file system, for an operation that frees space and
 * failed with -ENOSPC, to retry; `why` names it in the log. Returns 0 if space was released,
 * -ENOSPC if there was none to release (a retry would fail as well). Appends are refused from
 * now until reserve_restore() makes the reserve whole again. */
int reserve_release(td_reserve *r, const char *why);
/* Grows the reserve back towards its size: 0 once whole, -ENOSPC (keeping what it could
 * take) while the file system lacks the space. Cheap when whole. */
int reserve_restore(td_reserve *r);
/* Its size now and the size it should have, in bytes. */
void reserve_state(td_reserve *r, int64_t *have, int64_t *want);

/* ---------------------------------------------------------------------------------------------
 * Catalog: the topic catalog and other metadata, in SQLite (WAL mode) in the data directory.
 * The record path never touches it.
 */
typedef struct td_catalog td_catalog;

typedef struct td_catalog_topic {
    char name[TD_TOPIC_NAME_MAX + 1];
    int64_t id; /* unique, never reused: names the topic's directory generation */
    int32_t partitions;
    int64_t created_ms;
    td_topic_config config;
} td_catalog_topic;

/* Opens or creates the catalog database at path. TD_EFORMAT if its schema version is newer
 * than this build knows. */
int catalog_open(const char *path, td_catalog **out);
void catalog_close(td_catalog *c);
/* Inserts a topic; assigns t->id. TD_EEXIST. */
int catalog_topic_add(td_catalog *c, td_catalog_topic *t);
/* Updates partitions and config of an existing topic. TD_ENOTFOUND. */
int catalog_topic_update(td_catalog *c, const td_catalog_topic *t);
int catalog_topic_remove(td_catalog *c, const char *name);
int catalog_topic_get(td_catalog *c, const char *name, td_catalog_topic *t);
/* All topics sorted by name: *out malloc'd, free with free(). */
int catalog_topic_list(td_catalog *c, td_catalog_topic **out, size_t *count);
/* What an older data directory kept of consumer groups and producer ids, read once to migrate
 * it to the internal state topics (broker/state.h): every group's committed offsets (lists are
 * one malloc'd block, free with free()), and the next producer id (0 if none was reserved). */
int catalog_offsets_list(td_catalog *c, const char *group, td_committed_offset **out,
                         size_t *count);
int catalog_groups_list(td_catalog *c, td_group_info **out, size_t *count);
int catalog_producer_ids_legacy(td_catalog *c, int64_t *next);
/* Drops those rows in one transaction, once the state topics hold them durably; *had (may be
 * NULL) says whether there were any. */
int catalog_state_migrated(td_catalog *c, bool *had);

/* Queue groups as older data directories kept them (broker/queue_migrate.c moves them to the
 * state topic __queue_state): a group's definition, and its state per partition (the ack floor,
 * the next offset to read, and the encoded entries in between that are not done). */
typedef struct catalog_queue {
    char name[TD_TOPIC_NAME_MAX + 1];
    char topic[TD_TOPIC_NAME_MAX + 1];
    char policy[2048]; /* key=value lines */
    int64_t created_ms;
} catalog_queue;
int catalog_queue_list(td_catalog *c, catalog_queue **out, size_t *count);
typedef struct catalog_qpart {
    const char *group;
    const char *topic;
    int32_t partition;
    int64_t topic_id;
    int64_t floor, next;
    const void *pending;
    size_t pending_len;
} catalog_qpart;
/* Calls fn for each stored partition state of a group (pointers valid during the call); stops at
 * the first nonzero fn result and returns it. */
int catalog_qparts_list(td_catalog *c, const char *group,
                        int (*fn)(void *arg, const catalog_qpart *q), void *arg);
/* Drops every queue group and partition state in one transaction, once migrated; *had (may be
 * NULL) says whether there were any. */
int catalog_queues_migrated(td_catalog *c, bool *had);

/* Redis consumer groups (broker/xgroup.c): rows of xdeleted (entries XDEL removed from a stream's
 * view), and, in a data directory from before __xgroup_state, of xgroups, xconsumers and
 * xpending (read once to be migrated; the other kinds are kept for that). A GROUP_DEL
 * removes the group with its consumers and pending entries; a CONS_DEL the consumer with its
 * pending entries. */
enum {
    CATALOG_XGROUP_PUT,
    CATALOG_XGROUP_DEL,
    CATALOG_XCONS_PUT,
    CATALOG_XCONS_DEL,
    CATALOG_XPEND_PUT,
    CATALOG_XPEND_DEL,
    CATALOG_XCLEAR,     /* every deleted entry */
    CATALOG_XDEL_PUT,   /* an entry XDEL removed: id, ms = its offset (-1: the largest ID) */
    CATALOG_XDEL_PRUNE, /* forgets the removed entries below offset ms (retention took them) */
};
typedef struct catalog_xrow {
    int op;
    int64_t topic_id;
    int32_t partition;
    td_slice group;     /* every row */
    td_slice name;      /* the consumer: CONS_*, PEND_PUT */
    td_sid id;          /* GROUP_PUT: the last delivered ID; PEND_*: the entry's */
    int64_t ms;         /* GROUP_PUT: created; CONS_PUT: last seen; PEND_PUT: last delivery */
    int64_t count;      /* PEND_PUT: deliveries */
    const char *policy; /* GROUP_PUT (NULL: "") */
} catalog_xrow;
/* Applies n row changes in order, in one transaction. */
int catalog_xrows_put(td_catalog *c, const catalog_xrow *v, size_t n);
/* Calls fn with every stored row as a PUT: the groups, then the consumers, then the pending
 * entries, then the deleted entries by offset (pointers valid during the call); stops at the
 * first nonzero result and returns it. */
int catalog_xrows_list(td_catalog *c, int (*fn)(void *arg, const catalog_xrow *r), void *arg);
/* Drops every row of xgroups, xconsumers and xpending in one transaction, once the state topic
 * __xgroup_state holds them durably (xdeleted, stream data, stays). */
int catalog_xgroups_migrated(td_catalog *c);

/* Users (docs/security.md#users): SCRAM credentials by user and mechanism, never passwords.
 * catalog_user_put stores a user's credentials (n of them, distinct mechanisms) in one
 * transaction: a new user (TD_EEXIST if it exists) or, with replace, in place of every
 * credential an existing user had (TD_ENOTFOUND if it does not exist). Names and credentials
 * are the caller's to validate. */
int catalog_user_put(td_catalog *c, const char *name, const td_scram_credential *v, size_t n,
                     bool replace);
int catalog_user_remove(td_catalog *c, const char *name); /* TD_ENOTFOUND */
/* Names, mechanisms and iteration counts, sorted by name; *out malloc'd (NULL when empty). */
int catalog_user_list(td_catalog *c, td_user_info **out, size_t *count);
/* One credential: TD_ENOTFOUND when the user has none for the mechanism; TD_ECORRUPT for a row
 * whose salt or keys do not have the sizes a credential has. */
int catalog_user_get(td_catalog *c, const char *name, int mechanism, td_scram_credential *out);

/* Quotas (catalog_quota.c): catalog_quota_set replaces every row of q->entity with q's values
 * in one transaction (q->has 0: the entity's rows go); catalog_quota_list reads them all,
 * sorted as td_quota_list promises. Rows with a key this build does not know are skipped. */
int catalog_quota_set(td_catalog *c, const td_quota_info *q);
int catalog_quota_list(td_catalog *c, td_quota_info **out, size_t *count);
/* API tokens (docs/security.md#api-tokens): one row per token, with the SHA-256 of its secret.
 * catalog_token_add: TD_ENOTFOUND when t->user is not a user (checked in the same transaction,
 * so a token never outlives its owner); TD_EEXIST for an id in use. catalog_token_get: the
 * token and its digest, TD_ENOTFOUND. catalog_token_list: of one user (NULL: all), sorted by
 * user and creation; *out malloc'd (NULL when empty). catalog_token_remove: with user not NULL
 * only that user's token; TD_ENOTFOUND. catalog_user_remove also removes the user's tokens. */
#define CATALOG_TOKEN_HASH_LEN 32
int catalog_token_add(td_catalog *c, const td_token_info *t,
                      const uint8_t hash[CATALOG_TOKEN_HASH_LEN]);
int catalog_token_get(td_catalog *c, const char *id, td_token_info *t,
                      uint8_t hash[CATALOG_TOKEN_HASH_LEN]);
int catalog_token_list(td_catalog *c, const char *user, td_token_info **out, size_t *count);
int catalog_token_remove(td_catalog *c, const char *id, const char *user);
/* ACLs (docs/security.md#authorization), validated by the caller. catalog_acl_put stores one
 * (nothing happens if the same ACL is there); catalog_acl_remove removes each of v (those not
 * there are ignored) in one transaction; catalog_acl_list reads all of them, *out malloc'd
 * (NULL when none), TD_ECORRUPT for a row whose strings do not fit a td_acl. */
int catalog_acl_put(td_catalog *c, const td_acl *a);
int catalog_acl_remove(td_catalog *c, const td_acl *v, size_t n);
int catalog_acl_list(td_catalog *c, td_acl **out, size_t *count);

#endif /* TD_STORAGE_STORAGE_H */
