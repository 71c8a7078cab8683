/*
 * broker.h: the broker layer's interface for the layers above it that need more than the public
 * API (the listeners and the server): references to topics and their partitions, so that a fetch
 * can send a segment range with sendfile and a produce can wait for durability without blocking
 * an event loop; appends, reads, stream IDs and trims of one partition (the calls below on
 * td_part, "Partitions"); offsets of groups, producer ids, metrics.
 *
 * The listeners reach storage only through these calls: storage's structures (segments, ranges,
 * append results, batch headers) stay inside storage/ and broker/, and the partition is an
 * opaque handle here. Everything here is implemented by broker/engine.c (topics, durability) and
 * broker/partition.c (partitions) on the same engine as include/tidings.h.
 */
#ifndef TD_BROKER_H
#define TD_BROKER_H

#include "base/base.h"
#include "base/metrics.h"

/* A partition of an acquired topic (broker_topic_part): opaque; storage/storage.h has the same
 * declaration, for the broker's own files. */
typedef struct td_part td_part;

/* Called once the offsets asked for are durable (rc 0) or their fsync failed (rc < 0); the same
 * type as storage.h's, which the broker's own files see. */
typedef void (*td_durable_cb)(void *arg, int rc);

typedef struct td_topic_ref td_topic_ref;

/*
 * Takes a reference on a topic: its partitions stay valid (not closed or freed) until
 * broker_topic_release(), even if the topic is deleted meanwhile. TD_ENOTFOUND.
 */
int broker_topic_acquire(td_engine *e, const char *name, td_topic_ref **out);
void broker_topic_release(td_topic_ref *t);
/* The same by catalog id (broker_topic_id): TD_ENOTFOUND if no live topic has it. */
int broker_topic_acquire_id(td_engine *e, int64_t id, td_topic_ref **out);

/* Whether the topic is one of the broker's internal state topics (broker/state.h), which no
 * client may write: listeners that append batches themselves refuse them. */
bool broker_topic_internal(const td_topic_ref *t);
/* Whether no client may write the topic: an internal state topic, or one of the system topics
 * ($sys.*) on which the broker writes its health events (health.h). */
bool broker_topic_readonly(const td_topic_ref *t);

/* The number of partitions the topic had when acquired. */
int32_t broker_topic_partitions(const td_topic_ref *t);

/* Partition i (0 <= i < partitions) of an acquired topic. */
td_part *broker_topic_part(const td_topic_ref *t, int32_t i);

/* The topic's configuration as of now. */
void broker_topic_config(const td_topic_ref *t, td_topic_config *out);

/* True once the topic has been deleted (its partitions serve nothing new). */
bool broker_topic_deleted(const td_topic_ref *t);

/* The topic's catalog id (unique, never reused) and name. */
int64_t broker_topic_id(const td_topic_ref *t);
const char *broker_topic_name(const td_topic_ref *t);

/*
 * Adds a function every partition calls when its high watermark advances (for partitions now
 * and later); see part_set_advance_hook for the rules fn must follow (any thread, under the
 * partition's lock: post work elsewhere and return). The listeners use it to wake long-polling
 * fetches and live subscriptions. At most BROKER_MAX_HOOKS; TD_EFULL beyond. Remove a hook
 * only once nothing can append any more (at shutdown, after the loops stopped).
 */
#define BROKER_MAX_HOOKS 4
int broker_add_advance_hook(td_engine *e, void (*fn)(void *arg), void *arg);
void broker_remove_advance_hook(td_engine *e, void (*fn)(void *arg), void *arg);

/*
 * Changes to topics, for listeners that tell their clients of them (the Redis listener's
 * keyspace notifications, docs/redis.md#keyspace-notifications). The engine calls the one hook
 * after events are appended (td_produce, broker_produce_nowait, and the listeners' own appends
 * that report themselves with broker_note_append), after records are deleted from a
 * partition's start (td_delete_records, retention), and after a topic is created or deleted;
 * never for the internal state topics, and never for broker_stream_append (the Redis listener
 * tells of its own XADDs). fn runs on the thread that made the change, possibly under a
 * partition's or the engine's locks: it must not call into the engine, must not block, and
 * should copy what it needs and return. The topic name is valid during the call only.
 */
enum {
    BROKER_CHANGE_APPEND = 1, /* count events appended to partition; end: the offset after */
    BROKER_CHANGE_TRIM,       /* records deleted from the start of partition */
    BROKER_CHANGE_CREATE,     /* the topic was created (partition -1) */
    BROKER_CHANGE_DELETE,     /* the topic was deleted (partition -1) */
};
typedef struct broker_change {
    int kind;
    const char *topic;
    int32_t partition;  /* -1 for the whole topic */
    int32_t partitions; /* the topic's partitions */
    int64_t count;      /* APPEND: the events appended */
    int64_t end;        /* APPEND: the offset after them, for broker_when_durable */
} broker_change;
typedef void (*broker_change_fn)(void *arg, const broker_change *c);
/* Sets the hook (NULL removes it; remove it only once nothing can change topics any more). One
 * hook per engine. When no hook is set a change costs one atomic load. */
void broker_set_change_hook(td_engine *e, broker_change_fn fn, void *arg);
/* For a listener that appended with broker_part_append_checked: count events of partition
 * (ending before end) are new. */
void broker_note_append(td_topic_ref *t, int32_t partition, int64_t count, int64_t end);

/* A number that changes whenever a topic is created or deleted or gains partitions, so that
 * pattern subscribers can tell cheaply when to look for new matching topics. */
uint64_t broker_topics_generation(td_engine *e);
/* A number that changes with every user change (add, password, removal; users.c): a cache of
 * verified passwords is valid while it stays the same. Any thread. */
uint64_t broker_users_generation(td_engine *e);

/*
 * td_produce without waiting for durability, for event loops: routes and appends the events
 * (results as td_produce's) and sets ends[p] (ends has broker_topic_partitions(t) entries) to
 * the offset to pass to broker_when_durable for each partition it appended to, -1 for the
 * others. Even on failure, partitions with ends[p] >= 0 hold appended events.
 */
/* broker_produce_nowait with expected versions (td_produce_expect; expected NULL: none). */
int broker_produce_expect_nowait(td_topic_ref *t, const td_event *events,
                                 const int64_t *expected, size_t n, td_produce_result *results,
                                 int64_t *ends, td_version_conflict *conflict);
/* broker_produce_nowait with expected versions and a condition over a set of keys
 * (td_produce_cond; either may be NULL): the one entry point of every protocol's conditional
 * append (docs/event-sourcing.md#consistency-boundaries). */
int broker_produce_cond_nowait(td_topic_ref *r, const td_event *events, const int64_t *expected,
                               size_t n, const td_condition *cond, td_produce_result *results,
                               int64_t *ends, td_version_conflict *conflict);
int broker_produce_nowait(td_topic_ref *t, const td_event *events, size_t n,
                          td_produce_result *results, int64_t *ends);

/*
 * trace.inject (docs/tracing.md): with it on, *out is a copy of in[0..n) in which every event
 * without a `traceparent` header has a new one (a new trace), and *mem the block to free once
 * the events are appended; otherwise *out is in and *mem NULL. -ENOMEM. For the listeners that
 * encode batches themselves from events (Redis XADD); td_produce and broker_produce_nowait do
 * it already.
 */
int broker_trace_inject(td_engine *e, const td_event *in, size_t n, const td_event **out,
                        void **mem);

/*
 * Asynchronous durability for event loops: calls cb(arg, rc) once every offset of the
 * partition below end is durable under the topic's policy. Under fsync=always the engine's
 * flusher thread performs the fsync (grouping every request queued meanwhile) and cb runs on
 * that thread; under interval and none cb runs at once, in this thread. rc is 0 or the error
 * of a failed fsync. With cb NULL it only asks the flusher to sync soon: under fsync=always the
 * high watermark (what consumers see) advances only once data is durable, so every append
 * needs a sync whether or not its producer waits for it (Kafka acks=0 and 1).
 */
int broker_when_durable(td_topic_ref *t, int32_t partition, int64_t end, td_durable_cb cb,
                        void *arg);

/*
 * Commits offsets for a group (checked: group name, topics, partitions, metadata size; all or
 * nothing) as records of the internal topic __consumer_offsets (state.h) and returns at once:
 * cb(arg, rc) runs once the records are durable under its policy (on the flusher thread, or in
 * this thread when the policy does not wait); a non-zero return means nothing was written and
 * cb will not run. (td_group_commit is the waiting form.)
 */
int broker_group_commit_async(td_engine *e, const char *group, const td_offset_commit *offsets,
                              size_t n, int64_t now_ms, td_durable_cb cb, void *arg);

/* A new producer id for an idempotent producer (Kafka's InitProducerId): never handed out before
 * by this data directory, across restarts. */
int broker_producer_id_new(td_engine *e, int64_t *pid);

/* The metrics registry of this engine (base/metrics.h), which every layer counts into and HTTP
 * /metrics renders. The engine counts events and bytes appended per topic, fsync durations, and
 * collects storage figures; readers that bypass td_iter (Kafka fetch) count what they send with
 * broker_topic_count_out. Valid until td_engine_close. */
td_metrics *broker_metrics(td_engine *e);
/* The families every listener counts its requests in, labelled by protocol and API:
 * tidings_requests_total and tidings_request_duration_seconds. */
void broker_request_metrics(td_engine *e, td_metric_family **count, td_metric_family **latency);
void broker_topic_count_out(td_topic_ref *t, uint64_t events, uint64_t bytes);

/* Deletes a group's offsets committed before before_ms (offset expiry). */
int broker_group_expire(td_engine *e, const char *group, int64_t before_ms, size_t *removed);

/* A topic configuration key's type as Kafka's DescribeConfigs numbers them (BOOLEAN 1, STRING 2,
 * INT 3, LONG 5, DOUBLE 6, LIST 7; -1 for an unknown key) and its one line of documentation
 * (static storage; NULL for an unknown key). */
int broker_topic_config_type(const char *key);
const char *broker_topic_config_doc(const char *key);

/* ---------------------------------------------------------------------------------------------
 * Partitions (broker/partition.c): what the listeners do with one partition of an acquired
 * topic (broker_topic_part), valid while the reference is held. Any thread; appends to one
 * partition are serialized inside, readers take no lock but to find a segment.
 */

/* Offsets, lock-free: the first offset still stored, and the high watermark, the next offset
 * readers may see (under fsync=always the end of what is durable). */
int64_t broker_part_log_start(td_part *p);
int64_t broker_part_high_watermark(td_part *p);
/* Transactions (docs/kafka.md#transactions): the last stable offset, below which every
 * transaction is settled (read_committed readers stop there); the aborted transactions a read
 * of [from, upper) must drop, by first offset, malloc'd (*n of them). */
typedef struct broker_aborted_txn {
    int64_t pid, first;
} broker_aborted_txn;
int64_t broker_part_last_stable(td_part *p);
int broker_part_aborted_txns(td_part *p, int64_t from, int64_t upper, broker_aborted_txn **out,
                             size_t *n);
/* The offsets in [from, to) holding the records a reader of committed data sees (broker/iter.c
 * "Transactions"), for readers that walk offsets without reading them: below the last stable
 * offset, not transaction markers, not the records of aborted transactions, and on a compacted
 * topic only the offsets whose record the cleaner left. As runs [from, to), in order, adjacent
 * ones merged, holding at most max records (0: no limit): *out malloc'd (NULL when none). Reads
 * the range's batches (decoding them only on a compacted topic). TD_ERANGE if retention passed
 * the range meanwhile, TD_ECORRUPT, TD_EOFFLINE, -ENOMEM. */
typedef struct broker_run {
    int64_t from, to;
} broker_run;
int broker_part_visible_runs(td_part *p, int64_t from, int64_t to, size_t max, broker_run **out,
                             size_t *n);
/* The partition's stream-nodes file, which the Redis front end owns (storage.h part_nodes_*). */
int broker_part_nodes_read(td_part *p, uint8_t **out, size_t *n);
int broker_part_nodes_append(td_part *p, const void *b, size_t n, bool sync);
int broker_part_nodes_rewrite(td_part *p, const void *b, size_t n);
/* Non-NULL (the reason, naming file and position) if the partition is offline; valid while the
 * topic reference is held. */
const char *broker_part_offline(td_part *p);
/* The number of log segments (Redis's XINFO STREAM shows it for its radix tree's figures). */
int32_t broker_part_segments(td_part *p);

/* What an append did: the batch's first and last offsets, its LogAppendTime (-1 unless the
 * topic uses it), the offset to wait on for durability (last + 1), and whether it was an
 * idempotent producer's retry (nothing written; the offsets are the original batch's). */
typedef struct broker_append_result {
    int64_t base_offset;
    int64_t last_offset;
    int64_t log_append_time;
    int64_t end_offset;
    bool duplicate;
} broker_append_result;

/*
 * Spans for the OTLP exporter (docs/otlp-export.md), for listeners that append themselves:
 * after an append that stored records (res), one call makes the batch's PRODUCER span, a child
 * of its first event's traceparent header; start_ms is when the request arrived. Each is one
 * atomic load when span export is off (the default). broker_trace_batch takes a record batch
 * as appended by broker_part_append_checked, broker_trace_events the events given to
 * broker_stream_append.
 */
void broker_trace_batch(td_engine *e, const char *topic, int32_t partition, const uint8_t *batch,
                        size_t n, const broker_append_result *res, int64_t start_ms);
void broker_trace_events(td_topic_ref *t, int32_t partition, const td_event *events, size_t n,
                         const broker_append_result *res, int64_t start_ms);
/* The CONSUMER span of one event a Redis consumer group delivered (XREADGROUP), as a queue
 * group's deliveries have: a child of the event's traceparent, named "deliver <topic>", with
 * the group's name. */
void broker_trace_deliver(td_engine *e, const char *topic, const td_event *ev, const void *group,
                          size_t group_len, int64_t start_ms);

/* Why broker_batches_check refused a producer's record batches; each listener maps these to its
 * protocol's errors (Kafka's in proto/kafka/handler.c). */
enum broker_batch_fault {
    BROKER_BATCH_OK = 0,
    BROKER_BATCH_CORRUPT,     /* truncated, bad header or CRC, no batch at all */
    BROKER_BATCH_OLD_FORMAT,  /* not record batch v2 (magic 2) */
    BROKER_BATCH_TOO_LARGE,   /* a batch above max_message_bytes */
    BROKER_BATCH_INVALID,     /* control batch, bad records, idempotence rules */
    BROKER_BATCH_COMPRESSION, /* an unknown or unsupported compression codec */
};
/*
 * Checks a producer's record batches (records[0..n), one or more back to back, as Kafka's
 * produce carries them) before anything is appended: whole v2 batches with valid CRCs, each at
 * most max_message_bytes (<= 0: no limit), no control or transactional batch, records that
 * decode (decompressing at most 64 times max(max_message_bytes, 1 MiB)), and an idempotent
 * producer's batch alone with an epoch and a sequence. Returns a fault with *why, a sentence
 * for the client (static storage). *expects (may be NULL) gets the number of headers named
 * BROKER_HEADER_PREFIX... in the records (counted during the check of the records, at the cost
 * of a compare of each header key's length): when 0, broker_part_append_checked suffices.
 */
int broker_batches_check(uint8_t *records, size_t n, int32_t max_message_bytes,
                         const char **why, size_t *expects);
/* The bytes of the batch that starts at batch (one broker_batches_check accepted). */
size_t broker_batch_size(const uint8_t *batch);
/*
 * Appends one batch broker_batches_check accepted, applying the topic's rules (timestamps,
 * compression.type, keys on compacted topics) and its idempotent producer checks; the batch is
 * changed in place (offsets, LogAppendTime). Does not wait for durability (broker_when_durable).
 * TD_ETOOBIG, TD_ETIMESTAMP, TD_ENOKEY, TD_EFENCED, TD_ESEQUENCE (td_last_error() has the
 * detail), TD_EOFFLINE, -ENOSPC and other -errno of the write.
 */
int broker_part_append_checked(td_part *p, uint8_t *batch, size_t n, int64_t now_ms,
                               broker_append_result *res);
/*
 * Expected versions in Kafka records (docs/event-sourcing.md#kafka): a record header of this name
 * carries the expected version of the record's key, as text.
 */
#define BROKER_EXPECT_HEADER "tidings-expected-version"
/* A consistency boundary (docs/event-sourcing.md#consistency-boundaries): on the first record of a batch, one
 * BROKER_COND_KEY_HEADER per key (at most TD_CONDITION_KEYS_MAX; its value is the key's bytes)
 * and one BROKER_COND_AFTER_HEADER (the position: "no_stream" or an offset in decimal): the
 * batch is appended only if none of the keys has an event after the position in the batch's
 * partition. */
#define BROKER_COND_KEY_HEADER "tidings-condition-key"
#define BROKER_COND_AFTER_HEADER "tidings-condition-after"
/* One per tag of the boundary (docs/event-sourcing.md#tags): "no event with this tag after the
 * position" too; keys and tags together at most TD_CONDITION_KEYS_MAX. */
#define BROKER_COND_TAG_HEADER "tidings-condition-tag"
/* The family of these, and of TD_TAG_HEADER: what broker_batches_check counts. */
#define BROKER_HEADER_PREFIX "tidings-"
/* Parses a condition's position s[0..n): "no_stream" (-1) or an offset in decimal. 0 and *v, or
 * TD_EINVAL (*v untouched). A pure function of its bytes. */
int broker_condition_after_parse(const uint8_t *s, size_t n, int64_t *v);
/* Parses an expected version's text s[0..n): "any", "no_stream", "exists", or an offset in
 * decimal (digits only, at most INT64_MAX). 0 and *v (TD_VERSION_* or the offset), or
 * TD_EINVAL. A pure function of its bytes. */
int broker_expected_version_parse(const uint8_t *s, size_t n, int64_t *v);
/*
 * broker_part_append_checked with the conditions that the batch's records carry in
 * BROKER_EXPECT_HEADER headers and its first record in BROKER_COND_*_HEADER headers (their
 * keys checked after the records' expected versions), checked with the append under the
 * partition's lock
 * (part_append_expect): the batch is written whole or not at all. For batches in which
 * broker_batches_check counted such headers: it reads the records again (a compressed batch is
 * decompressed again). max_message_bytes bounds the decompression as in broker_batches_check.
 * Besides broker_part_append_checked's errors, with *bad_record the index of the record in its
 * batch and td_last_error() a sentence naming it (and its key and the versions): TD_EINVAL (a
 * malformed value, two such headers in one record, one on a record without a key, condition headers
 * elsewhere than on the first record, incomplete, or with more than TD_CONDITION_KEYS_MAX keys),
 * TD_EUNSUPPORTED (the topic has no key.index), TD_EVERSION (a condition does not hold).
 * *bad_record is -1 for other errors.
 */
int broker_part_append_expect(td_part *p, uint8_t *batch, size_t n, int32_t max_message_bytes,
                              int64_t now_ms, broker_append_result *res, int32_t *bad_record);
/* Blocks until every offset below end is durable under the topic's policy (a group commit under
 * fsync=always; at once otherwise): for callers that may block, such as a Redis transaction. */
int broker_part_wait_durable(td_part *p, int64_t end);

/*
 * A range of whole batches in one segment file, for sendfile or a copy: fd and pos are the file
 * and position of the first batch, len the bytes; first_offset is the first batch's base offset
 * (may be below the offset asked), next_offset the offset after the last batch. It holds the
 * segment open until broker_range_release (hold is the broker's; do not touch).
 */
typedef struct broker_range {
    int fd;
    int64_t pos;
    int64_t len;
    int64_t first_offset;
    int64_t next_offset;
    struct td_seg *hold;
} broker_range;
/*
 * The batches holding `offset` and after it, up to the high watermark, within one segment, at
 * most max_bytes but always at least the first batch whole (as Kafka's fetch). 0, TD_EEND at the
 * high watermark (nothing yet), TD_ERANGE below the log start or above the high watermark,
 * TD_EOFFLINE. Release a filled range with broker_range_release (a second release does nothing).
 */
int broker_part_read(td_part *p, int64_t offset, size_t max_bytes, broker_range *r);
/* broker_part_read below limit (a batch boundary at most the high watermark, such as the last
 * stable offset): TD_EEND at or past it. */
int broker_part_read_to(td_part *p, int64_t offset, size_t max_bytes, int64_t limit,
                        broker_range *r);
void broker_range_release(broker_range *r);
/* The first offset whose record timestamp is >= ts, or the high watermark if none. */
int broker_part_offset_for_time(td_part *p, int64_t ts, int64_t *offset);
/* The largest timestamp and the offset of its record (Kafka's MAX_TIMESTAMP); TD_ENOTFOUND if
 * the partition is empty. */
int broker_part_max_timestamp(td_part *p, int64_t *ts, int64_t *offset);
/* The records with offsets in [from, to) (clamped to the log start and the high watermark):
 * to - from but on compacted topics, whose offsets have gaps. */
int broker_part_count_records(td_part *p, int64_t from, int64_t to, int64_t *n);
/* Whether offsets may lack a record (a compacted topic): walkers of offsets then ask
 * broker_part_record_offsets which hold one. */
bool broker_part_has_gaps(td_part *p);
/* The offsets in [from, to) (clamped) that hold a record, in order, at most max (0: all): *out
 * malloc'd (free it; NULL when none), *n of them. */
int broker_part_record_offsets(td_part *p, int64_t from, int64_t to, size_t max, int64_t **out,
                               size_t *n);
/*
 * Trims: deletes the records below offset (Kafka's DeleteRecords, Redis's XTRIM), saved durably
 * before it returns; an offset at or below the log start changes nothing. TD_ERANGE above the
 * high watermark, TD_EOFFLINE. *log_start (may be NULL) gets the log start after the call.
 */
int broker_part_delete_before(td_part *p, int64_t offset, int64_t *log_start);

/* Streams (docs/redis.md#stream-ids): the IDs of a partition's records, as Redis streams use
 * them. An append with an ID request: */
enum broker_sid_mode {
    BROKER_SID_AUTO,     /* `*`: the rule's ID (the batch's timestamp is now) */
    BROKER_SID_MS,       /* `ms-*`: Redis's ms-0, or the last seq + 1 at the last ID's ms
                            (TD_ERANGE past 2^64-1); TD_ESEQUENCE below the last ID's ms */
    BROKER_SID_EXPLICIT, /* `ms-seq`: exactly want; TD_ESEQUENCE if not above the last ID */
};
typedef struct broker_sid_req {
    int mode;    /* enum broker_sid_mode */
    td_sid want; /* in */
    td_sid got;  /* out: the ID of the first event */
} broker_sid_req;
/*
 * Appends events[0..n) (n >= 1) as one batch whose IDs meet req, checked under the partition's
 * lock: record k gets ID (got.ms, got.seq + k). As broker_part_append_checked otherwise; also
 * TD_EINVAL for explicit IDs on a LogAppendTime topic, and TD_EFULL once the last ID is the
 * largest (part_append_sid). An event's timestamp is min(want.ms, INT64_MAX) for `ms-*` and
 * `ms-seq`.
 */
int broker_stream_append(td_part *p, const td_event *events, size_t n, int64_t now_ms,
                         broker_sid_req *req, broker_append_result *res);
/* The ID of the record at offset (TD_ERANGE outside what is stored); run_end (may be NULL) gets
 * the last offset o whose ID is (id.ms, id.seq + (o - offset)). */
int broker_stream_id(td_part *p, int64_t offset, td_sid *id, int64_t *run_end);
/* The first offset in [from, to) (clamped to what is stored) whose ID is >= id, or the end of
 * that range. */
int broker_stream_seek(td_part *p, td_sid id, int64_t from, int64_t to, int64_t *offset);
/* The offset of the record whose ID is exactly id: TD_ENOTFOUND if none has it. */
int broker_stream_find(td_part *p, td_sid id, int64_t *offset);
/* The first offset whose ID is above id (the high watermark if none). */
int broker_stream_after(td_part *p, td_sid id, int64_t *offset);
/* The last ID: the last record's, or 0-0, or what XSETID set since. */
int broker_stream_last(td_part *p, td_sid *last);
/* XSETID: the next ID will be above last (TD_ESEQUENCE if last is below broker_stream_top);
 * durable when it returns. */
int broker_stream_set_last(td_part *p, td_sid last);
/* XSETID with ENTRIESADDED (-1: unchanged), both durable or neither changed; *at gets the log
 * end it took effect at, whose records must be durable before XSETID answers
 * (part_stream_xsetid). */
int broker_stream_xsetid(td_part *p, td_sid last, int64_t added, int64_t *at);
/* Redis's entries_added as of the high watermark hw (part_stream_added). */
uint64_t broker_stream_added(td_part *p, int64_t hw);
/* part_stream_top: the last record's ID, which XSETID may not go below. */
int broker_stream_top(td_part *p, td_sid *top);

#endif /* TD_BROKER_H */
