/*
 * tidings.h: the embedded engine API.
 *
 * tidings is an event broker; this header is the same engine as a C library, the way SQLite is
 * a database in a library. An application opens an engine on a data directory, creates topics,
 * produces events and reads them back through iterators. The broker binary (`tidings serve`) is
 * built on exactly this engine.
 *
 * Conventions (as in LMDB):
 * - Every function that can fail returns an int: 0 on success, a negative code on failure.
 *   Codes are either -errno for system errors (-ENOSPC, -EIO, -ENOMEM, ...) or one of the
 *   TD_E* codes below. td_strerror() names any of them; td_errname() gives the symbol. Each
 *   function lists the TD_E* codes it returns; any of them may also return -ENOMEM, and those
 *   that touch the disk -errno of the failed system call. Functions that cannot fail say what
 *   they return instead: predicates return bool, and lookups by name a value or a stated
 *   "none" (td_iter_next's count, td_partition_for_key's partition, td_*_parse's 0 or -1).
 * - After a failure, td_last_error() returns a one-line explanation written by the failing call
 *   in the calling thread (for example which naming rule a topic name broke, or which file and
 *   position hold a corrupt batch). It stays valid until the thread's next tidings call.
 * - Handles (td_engine, td_iter) are opaque. Pointers returned inside structures are borrowed:
 *   each function says how long they stay valid.
 * - Thread safety: a td_engine may be used from any number of threads at once. A td_iter belongs
 *   to one thread at a time.
 */
#ifndef TIDINGS_H
#define TIDINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TD_VERSION_STRING "0.1.0"

/*
 * Error codes. One X-macro list: value offset, symbol, message. The numbers are stable. Offset
 * 1 is not in the list: it is the library's internal "need more input" of its parsers, which no
 * function of this API returns.
 */
#define TD_ERRNO_MAP(XX)                                                                           \
    XX(2, EPROTO, "protocol error")                                                                \
    XX(3, ETOOBIG, "too large")                                                                    \
    XX(4, ECORRUPT, "corrupt data")                                                                \
    XX(5, ENOTFOUND, "not found")                                                                  \
    XX(6, EEXIST, "already exists")                                                                \
    XX(7, EINVAL, "invalid argument")                                                              \
    XX(8, ENAME, "invalid name")                                                                   \
    XX(9, ECONFIG, "invalid configuration")                                                        \
    XX(10, ELOCKED, "data directory is in use by another process")                                 \
    XX(11, EFORMAT, "unsupported data directory format")                                           \
    XX(12, ERANGE, "offset out of range")                                                          \
    XX(13, EOFFLINE, "partition is offline")                                                       \
    XX(14, ECLOSED, "closed")                                                                      \
    XX(15, EUNSUPPORTED, "unsupported")                                                            \
    XX(16, ECRC, "checksum mismatch")                                                              \
    XX(17, EEND, "end of data")                                                                    \
    XX(18, EFULL, "no room")                                                                       \
    XX(19, ESEQUENCE, "out of order sequence number")                                              \
    XX(20, EFENCED, "producer epoch is stale")                                                     \
    XX(21, ESTALE, "stale delivery: the event was redelivered or is done")                         \
    XX(22, ETIMESTAMP, "timestamp outside the topic's allowed range")                              \
    XX(23, EAUTH, "authentication failed")                                                         \
    XX(24, ENOKEY, "a compacted topic cannot accept records without a key")                        \
    XX(25, EVERSION, "wrong expected version")                                                     \
    XX(26, ETXN, "invalid transaction state")

enum {
#define TD_XX_(n, name, msg) TD_##name = -(1000 + (n)),
    TD_ERRNO_MAP(TD_XX_)
#undef TD_XX_
};

/* A message for any return code: TD_E* codes and -errno values. Never NULL; static storage. */
const char *td_strerror(int rc);
/* The symbol for a return code ("TD_ECORRUPT", "ENOSPC"); "UNKNOWN" if none. Static storage. */
const char *td_errname(int rc);
/* The detail of the calling thread's last failure, or "" if none. Valid until the thread's next
 * tidings call. */
const char *td_last_error(void);

/* Sets the level of the engine's log lines (written to stderr, one per event): "debug",
 * "info" (the default), "warn", "error" or "off". TD_EINVAL for anything else. */
int td_set_log_level(const char *level);

/* ---------------------------------------------------------------------------------------------
 * Engine
 */
typedef struct td_engine td_engine;

typedef struct td_options {
    /* Bytes per second the background scrub may read to verify sealed segments; 0 disables
     * the scrub; default (when no options are given) 32 MiB/s. */
    int64_t scrub_bytes_per_sec;
    /* Milliseconds between retention passes; default 30000. Retention also runs on open. */
    int64_t retention_check_ms;
    /* Idempotent producers (Kafka clients with enable.idempotence) idle for longer than this
     * are forgotten by the partitions, in the retention pass (Kafka's
     * producer.id.expiration.ms); <= 0 means the default, 86400000 (one day). */
    int64_t producer_id_expiration_ms;
    /* Transactions (docs/kafka.md#transactions), as Kafka's broker settings: the longest
     * transaction.timeout.ms a producer may ask (transaction.max.timeout.ms, 900000); how long
     * an idle transactional id is kept (transactional.id.expiration.ms, 604800000); how often
     * transactions past their timeout are looked for and aborted
     * (transaction.abort.timed.out.transaction.cleanup.interval.ms, 10000). <= 0: the default. */
    int64_t transaction_max_timeout_ms;
    int64_t transactional_id_expiration_ms;
    int64_t transaction_abort_interval_ms;
    /* Tests only: the transaction coordinator waits this long between a PrepareCommit or
     * PrepareAbort record and its markers, a window for crash tests; 0 (default): none. */
    int64_t txn_fault_pause_ms;
    /* Do not start background threads (scrub, retention, interval flusher). Tests use this
     * for determinism; the interval policy then only syncs on td_engine_flush(). */
    int no_background;
    /* Under fsync=none, how long a rolled segment waits before the background thread fsyncs
     * it and writes its index files (its seal; until then a crash makes recovery scan it).
     * By then the kernel has usually written it back on its own, so the fsync costs little
     * and appends never share the disk with a burst of a whole segment's writeback. Other
     * policies seal at their next sync. Default 30000 (the kernel's dirty_expire); 0 seals
     * within a tick of the roll. */
    int64_t none_seal_delay_ms;
    /* Bytes of the disk reserve: a file, DIR/reserve, that keeps space for deleting
     * topics and records (and retention) when the disk is full. When one of those fails for
     * lack of space, the engine truncates the file and retries; appends then fail with -ENOSPC
     * until the file is whole again, which the engine tries after every such deletion and once
     * a second. 0: no reserve (the file is removed); < 0: keep the file at the size it has.
     * Default TD_DISK_RESERVE_DEFAULT (8 MiB). See docs/operations.md#disk. */
    int64_t disk_reserve_bytes;
    /* The most partitions the engine holds, over all topics (each keeps a file descriptor, and
     * memory for its indexes): creating or growing a topic past it fails with TD_EINVAL, saying
     * so. 0 (the default): no limit. `tidings serve` sets it from max.partitions. */
    int64_t max_partitions;
    /* Log compaction (docs/storage.md#compaction): one cleaner thread compacts the partitions
     * of topics whose cleanup.policy has compact. log_cleaner_enable: 0 turns it off (default
     * 1). log_cleaner_backoff_ms: its sleep when nothing is cleanable (default 15000).
     * log_cleaner_dedupe_buffer_size: the bytes of its offset map, 24 a key (default 128 MiB;
     * at least 1 MiB). log_cleaner_io_max_bytes_per_sec: the bytes per second it may read and
     * write together; 0 (the default): unlimited. */
    int log_cleaner_enable;
    int64_t log_cleaner_backoff_ms;
    int64_t log_cleaner_dedupe_buffer_size;
    int64_t log_cleaner_io_max_bytes_per_sec;
    /* Partitions of the internal topic __consumer_offsets when the engine creates it (Kafka's
     * offsets.topic.num.partitions); <= 0: 1. An existing topic keeps the count it has. */
    int32_t offsets_topic_partitions;
    /* The fsync policy of the internal state topics (a topic `fsync` value: always,
     * interval:<ms>, none), applied at open; "" (the default): always when the engine creates
     * them, else what they have, so that a committed offset is answered only once it is on
     * disk unless an operator chose otherwise. */
    char state_topic_fsync[32];
    /* Bytes of memory the key indexes of all compacted partitions may use together (table
     * reads, td_get_key; `tidings serve` sets it from table.index.max.bytes); <= 0 means the
     * default, TD_TABLE_INDEX_DEFAULT (128 MiB, about 3 million keys). A partition whose index
     * would pass it drops its index, and its key reads fail with TD_EFULL until the budget has
     * room for it again (docs/storage.md#key-index). */
    int64_t table_index_max_bytes;
    /* The schema registry's bounds (docs/schemas.md): the most schema versions it keeps, soft
     * deleted ones included (<= 0: 100000), and the most bytes of one schema's text (<= 0:
     * 1 MiB). `tidings serve` sets them from schema.registry.max.schemas and
     * schema.registry.max.schema.bytes. */
    int64_t schema_registry_max_schemas;
    int64_t schema_registry_max_schema_bytes;
    /* Threads that validate the records of a large produced batch beside the thread that
     * produces it, when a topic has schema.validation.mode=full (docs/schemas.md): < 0 (the
     * default of td_options_init) one per online core but one, 0 none (the producing thread
     * validates alone). Created on the first batch that uses them. `tidings serve` sets it
     * from schema.validation.threads. */
    int schema_validation_threads;
    /* W3C Trace Context injection (docs/tracing.md): TD_TRACE_INJECT_NONE (the default) stores
     * events as they are given; TD_TRACE_INJECT_MISSING gives an event produced through the
     * engine (td_produce, HTTP, Redis XADD; not Kafka's client-encoded batches) that has no
     * `traceparent` header a new one, a new trace with random ids, its flags the sampled bit
     * when trace_sampled is set, else 00. `tidings serve` sets them from trace.inject and
     * trace.inject.sampled. */
    int trace_inject;
    int trace_sampled;
    /* Health events on the system topics $sys.* (docs/health.md): health_events 1 turns them
     * on (td_options_init: off; `tidings serve`: health.events, on by default). The rest as
     * health.events.rate (events per second of each type, <= 0: 10),
     * health.check.interval.ms (<= 0: 1000), health.lag.events and health.lag.ms (a group's
     * lag on a topic, in events and in the age of its oldest unconsumed event, over which
     * lag.over_threshold is said; 0: that check is off), health.disk.percent (the data
     * directory's file system at or over it: storage.disk_usage_high; <= 0: 90) and
     * health.fsync.ms (an fsync slower than it: storage.fsync_slow; default 1000, 0: every
     * fsync; < 0: none). */
    int health_events;
    int64_t health_events_rate;
    int64_t health_check_interval_ms;
    int64_t health_lag_events;
    int64_t health_lag_ms;
    int64_t health_disk_percent;
    int64_t health_fsync_ms;
    /* Delayed delivery in queue groups (docs/queues.md#delayed-delivery):
     * queue_schedule_horizon_ms (<= 0: 60000): a group keeps in memory the delayed events due
     * within twice this, and finds the later ones again in the log as their time nears;
     * queue_scheduled_max (<= 0: 1000000): the most delayed events a group keeps in memory
     * (it reads no further meanwhile). */
    int64_t queue_schedule_horizon_ms;
    int64_t queue_scheduled_max;
} td_options;

#define TD_TRACE_INJECT_NONE 0
#define TD_TRACE_INJECT_MISSING 1

#define TD_TABLE_INDEX_DEFAULT (128LL << 20)

#define TD_DISK_RESERVE_DEFAULT (8LL << 20)

/* Fills *opts with the defaults. */
void td_options_init(td_options *opts);

/*
 * Opens (creating if needed) the data directory `dir` and recovers every partition in it.
 * Takes an exclusive lock on the directory: a second opener, in this or another process, gets
 * TD_ELOCKED with td_last_error() naming the holder's pid. A directory written by a newer,
 * unknown format version gets TD_EFORMAT and is not modified.
 * `opts` may be NULL for the defaults. On success *out owns the engine; close it with
 * td_engine_close(). A partition whose data is corrupt does not fail the open: it is marked
 * offline (see td_partition_info.offline) and the others serve.
 */
int td_engine_open(const char *dir, const td_options *opts, td_engine **out);

/* Stops background threads, fsyncs every partition's unsynced data, releases the lock and frees
 * the engine, always (e is invalid afterwards, whatever the result). Iterators must be closed
 * first. NULL is accepted (0). Returns 0, or the error of the final sync (-errno such as -EIO,
 * or TD_EOFFLINE): events appended since the last successful sync may then be lost, and their
 * partition's next open recovers it as after a crash. */
int td_engine_close(td_engine *e);

/* fsyncs every partition's unsynced data now, whatever its policy. Offline partitions are
 * skipped. Returns the first failure (-errno of the sync; that partition goes offline). */
int td_engine_flush(td_engine *e);

/* Runs one retention pass over every topic now (also done periodically in the background).
 * Returns the first failure (-errno of a deletion); the other partitions are still passed. */
int td_engine_enforce_retention(td_engine *e);

/* Compacts every partition of the topics whose cleanup.policy has compact, now, whatever their
 * dirty ratio (the cleaner thread does it in the background when the ratio says so). Runs on
 * the caller's thread; returns the first error (-ENOMEM, -errno of the rewrite, TD_ECORRUPT for
 * a batch it cannot read). */
int td_engine_compact(td_engine *e);

/* ---------------------------------------------------------------------------------------------
 * Topics
 *
 * Names: 1 to 249 bytes; '!'..'~' stand for themselves except % / " \ * # , and every other
 * byte is written %XX (upper-case hex), in that canonical form only; not "." or "..". Any Redis
 * key maps to such a name (docs/redis.md#keys-and-topics): "user:1:events" is itself, "my key"
 * is "my%20key", the empty key is "%".
 * Configuration keys (values as strings, as in Kafka's CreateTopics):
 *   retention.ms        -1 = forever; default 604800000 (7 days)
 *   retention.bytes     -1 = no limit (default); per partition
 *   retention.records   -1 = no limit (default); per partition
 *   segment.bytes       default 1073741824; minimum 1024
 *   segment.ms          default 604800000
 *   fsync               always (default) | interval:<ms> | none
 *   max.message.bytes   default 1048588: the largest batch accepted
 *   message.timestamp.type  CreateTime (default) | LogAppendTime
 *   cleanup.policy      delete (default) | compact | compact,delete (docs/storage.md#compaction)
 *   and the other keys of td_topic_config_keys() (Kafka's, docs/storage.md)
 */
#define TD_TOPIC_NAME_MAX 249

typedef struct td_config_entry {
    const char *key;
    const char *value;
} td_config_entry;

enum td_fsync_policy { TD_FSYNC_ALWAYS = 0, TD_FSYNC_INTERVAL = 1, TD_FSYNC_NONE = 2 };
enum td_timestamp_type { TD_TS_CREATE_TIME = 0, TD_TS_LOG_APPEND_TIME = 1 };

typedef struct td_topic_config {
    int64_t retention_ms;
    int64_t retention_bytes;
    int64_t retention_records;
    int64_t segment_bytes;
    int64_t segment_ms;
    int fsync_policy;          /* enum td_fsync_policy */
    int64_t fsync_interval_ms; /* for TD_FSYNC_INTERVAL */
    int32_t max_message_bytes;
    int timestamp_type; /* enum td_timestamp_type */
    /* compression.type: TD_TOPIC_COMPRESSION_PRODUCER keeps each batch as it came; otherwise
     * every batch is stored with this codec (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd). */
    int compression_type;
    int32_t min_insync_replicas; /* > 1: Kafka producers with acks=all are refused */
    int cleanup_policy; /* cleanup.policy: TD_CLEANUP_DELETE and/or TD_CLEANUP_COMPACT bits */
    /* message.timestamp.difference/before/after.max.ms: how far a CreateTime record's timestamp
     * may lie from the broker's clock (INT64_MAX: any). */
    int64_t timestamp_difference_max_ms;
    int64_t timestamp_before_max_ms;
    int64_t timestamp_after_max_ms;
    /* Kafka's keys that are accepted, kept and reported, with no effect on this single broker
     * (docs/storage.md says why for each). */
    int64_t delete_retention_ms, file_delete_delay_ms, flush_messages, flush_ms;
    int64_t local_retention_bytes, local_retention_ms;
    int64_t max_compaction_lag_ms, min_compaction_lag_ms, segment_jitter_ms;
    int32_t index_interval_bytes, segment_index_bytes;
    double min_cleanable_dirty_ratio;
    bool message_downconversion_enable, preallocate, unclean_leader_election_enable;
    bool remote_storage_enable;
    char message_format_version[16];
    char leader_throttled_replicas[128];
    char follower_throttled_replicas[128];
    /* Schemas enforced on produce (docs/schemas.md, "Enforcement on produce"):
     * key.schema.validation and value.schema.validation, the subject name strategies
     * (TD_SUBJECT_*), and schema.validation.mode (false: id, true: full). */
    bool key_schema_validation, value_schema_validation;
    int key_subject_strategy, value_subject_strategy;
    bool schema_validation_full;
    /* key.index: every event of each partition indexed by key, for reads by key and expected
     * versions (docs/event-sourcing.md); key.index.memory.bytes: the most memory the index of
     * a partition's active segment may take (the segment rolls before it would pass it). */
    bool key_index;
    int64_t key_index_memory_bytes;
    /* trace.index: every event with a traceparent (or x-causation-* headers) indexed by trace,
     * span and cause, for trace and causation reads (docs/tracing.md); never on internal
     * topics. trace.index.memory.bytes: the bound of the active segment's index, as above. */
    bool trace_index;
    int64_t trace_index_memory_bytes;
    /* delivery.delay.ms: how long after its timestamp a queue group delivers an event that
     * names no time of its own (docs/queues.md#delayed-delivery); 0: at once. */
    int64_t delivery_delay_ms;
} td_topic_config;

/* key.subject.name.strategy / value.subject.name.strategy, as Confluent's serializers. */
#define TD_SUBJECT_TOPIC_NAME 0        /* <topic>-key, <topic>-value */
#define TD_SUBJECT_RECORD_NAME 1       /* the record's full name */
#define TD_SUBJECT_TOPIC_RECORD_NAME 2 /* <topic>-<record full name> */

#define TD_TOPIC_COMPRESSION_PRODUCER (-1)
#define TD_CLEANUP_DELETE 1
#define TD_CLEANUP_COMPACT 2
/* A buffer of this many bytes holds any value td_topic_config_get writes. */
#define TD_TOPIC_CONFIG_VALUE_MAX 128

/* Fills *cfg with the defaults listed above. */
void td_topic_config_init(td_topic_config *cfg);

/* Applies "key=value" settings to *cfg. TD_ECONFIG names the bad key or value in
 * td_last_error(); *cfg is unchanged on failure. */
int td_topic_config_apply(td_topic_config *cfg, const td_config_entry *entries, size_t n);

/* Writes the value of `key` in cfg as a string into buf (NUL-terminated). TD_ENOTFOUND for an
 * unknown key, TD_ETOOBIG if buf is too small. */
int td_topic_config_get(const td_topic_config *cfg, const char *key, char *buf, size_t len);

/* The configuration keys, in documentation order, NULL-terminated. Static storage. */
const char *const *td_topic_config_keys(void);

/* Validates a topic name: 0 or TD_ENAME with the broken rule in td_last_error(). */
int td_topic_name_validate(const char *name);

/* Topic patterns (queue groups, live subscriptions): segments between dots, where '*' matches
 * one segment and '#' zero or more ("orders.*" matches "orders.eu", "orders.#" also "orders"
 * and "orders.eu.paris"). A predicate, which cannot fail: true when `topic` matches `pattern`,
 * false otherwise (also for an invalid pattern or a NULL argument). */
bool td_topic_matches(const char *pattern, const char *topic);

/* Creates a topic with `partitions` (1..100000) partitions. TD_EEXIST if it exists, TD_ENAME,
 * TD_ECONFIG, TD_EINVAL for a bad partition count. */
int td_topic_create(td_engine *e, const char *name, int32_t partitions,
                    const td_config_entry *config, size_t config_n);

/* Deletes a topic and all its data. TD_ENOTFOUND if there is no such topic. */
int td_topic_delete(td_engine *e, const char *name);

/* Changes configuration keys of a topic (others keep their values); takes effect at once.
 * TD_ENOTFOUND, TD_ECONFIG. */
int td_topic_alter(td_engine *e, const char *name, const td_config_entry *config,
                   size_t config_n);

/* Grows a topic to `total` partitions (never shrinks: TD_EINVAL if total <= current, or past
 * td_options.max_partitions). TD_ENOTFOUND. */
int td_topic_add_partitions(td_engine *e, const char *name, int32_t total);

typedef struct td_topic_info {
    char name[TD_TOPIC_NAME_MAX + 1];
    int32_t partitions;
    int64_t created_ms;
    td_topic_config config;
    bool internal; /* one of the broker's state topics (__consumer_offsets, ...) */
    bool system;   /* one of the system topics of health events ($sys.*, docs/health.md) */
} td_topic_info;

/* Lists topics sorted by name, without the internal state topics and the system topics. On
 * success *out is a malloc'd array of *count entries that the caller frees with free().
 * -ENOMEM. */
int td_topic_list(td_engine *e, td_topic_info **out, size_t *count);
/* The same with the internal topics (marked `internal`) and the system topics (`system`), for
 * administrators, Kafka's Metadata and pattern subscriptions. */
int td_topic_list_all(td_engine *e, td_topic_info **out, size_t *count);

/* Describes one topic. TD_ENOTFOUND. */
int td_topic_describe(td_engine *e, const char *name, td_topic_info *out);

typedef struct td_partition_info {
    int32_t partition;
    int64_t log_start_offset; /* first offset still stored */
    int64_t high_watermark;   /* next offset to be written and readable (durable under always) */
    int64_t log_end_offset;   /* next offset to be written */
    int64_t size_bytes;       /* bytes of all segments */
    int32_t segments;
    int offline; /* 1 if the partition is offline because of corruption; see td_last_error of
                    the call that found it, or `error` below */
    char error[256]; /* why it is offline, naming file and position; "" otherwise */
    /* Log compaction (cleanup.policy has compact; all 0 otherwise): */
    int compacted;
    double dirty_ratio;        /* cleanable dirty bytes / (cleaned + cleanable dirty bytes) */
    int64_t cleanable_bytes;   /* dirty bytes the cleaner may clean now */
    int64_t first_dirty_offset; /* offsets below were cleaned */
    int64_t cleaner_lag_ms;    /* how long the oldest cleanable dirty record has waited */
    int64_t reclaimed_bytes;   /* bytes compaction removed since the engine opened */
} td_partition_info;

/* Describes one partition. TD_ENOTFOUND for an unknown topic or partition. */
int td_partition_describe(td_engine *e, const char *topic, int32_t partition,
                          td_partition_info *out);

/* ---------------------------------------------------------------------------------------------
 * Events
 */
typedef struct td_header {
    const char *key; /* need not be NUL-terminated */
    size_t key_len;
    const void *value; /* NULL: a null header value */
    size_t value_len;
} td_header;

/* Delayed delivery (docs/queues.md#delayed-delivery): an event names when queue groups deliver
 * it with one of these headers, a decimal number: the time in ms since the epoch, or a delay
 * in ms after its timestamp (at most TD_DELAY_MAX_MS, ten years, where a client says it). */
#define TD_DELIVER_AT_HEADER "tidings-deliver-at"
#define TD_DELAY_HEADER "tidings-delay-ms"
#define TD_DELAY_MAX_MS (315576000000LL)
#define TD_DELIVER_AT_MAX (999999999999999999LL) /* 18 digits, as the header is read */
/* That header for a time: at, ms since 1970 (1 to TD_DELIVER_AT_MAX), a TD_DELIVER_AT_HEADER;
 * else a delay after the event's timestamp (0 to TD_DELAY_MAX_MS), a TD_DELAY_HEADER. Its value
 * is written to text (TD_DELAY_TEXT_MAX bytes), which must outlive *h. TD_EINVAL out of range. */
#define TD_DELAY_TEXT_MAX 24
int td_delay_header(bool at, int64_t ms, char *text, td_header *h);

typedef struct td_event {
    const void *key; /* NULL: no key (a null key); non-NULL with key_len 0: an empty key */
    size_t key_len;
    const void *value; /* NULL: a null value (a tombstone) */
    size_t value_len;
    const td_header *headers;
    size_t header_count;
    int64_t timestamp_ms; /* on produce: <= 0 means now; on read: the stored timestamp */
    int32_t partition;    /* on produce: TD_PARTITION_ANY or a partition; on read: the partition */
    int64_t offset;       /* on read: the offset; ignored on produce */
} td_event;

#define TD_PARTITION_ANY (-1)

/* Versions of an entity stream (docs/event-sourcing.md): the offset of the key's latest event
 * in its partition, or one of these. */
#define TD_VERSION_NO_STREAM (-1) /* the key has no event (expected: it must have none) */
#define TD_VERSION_ANY (-2)       /* expected: no condition */
#define TD_VERSION_EXISTS (-3)    /* expected: the key has at least one event */

typedef struct td_produce_result {
    int32_t partition;
    int64_t offset;
} td_produce_result;

/*
 * Appends n events to `topic`. Each event goes to its `partition`, or, with TD_PARTITION_ANY,
 * to the partition Kafka's default partitioner picks: murmur2 of the key, or round-robin for
 * events without a key. Events for one partition are written in the order given, as one record
 * batch, or as several when together they exceed the topic's max.message.bytes (each batch's
 * events get consecutive offsets). results (may be NULL) receives each event's partition and
 * offset.
 * Returns when the topic's durability policy is met: under fsync=always, after the batch is
 * on disk (concurrent producers share fsyncs). If the topic or an event's partition does not
 * exist: TD_ENOTFOUND. TD_EINVAL for no events (n 0); TD_ETOOBIG if one event alone exceeds
 * max.message.bytes; TD_ENOKEY for an event without a key on a compacted topic; TD_ETIMESTAMP
 * for a timestamp outside the topic's message.timestamp.*.max.ms range; TD_EOFFLINE for an
 * offline partition; -ENOSPC and other -errno on I/O failure (nothing of a failed batch
 * becomes visible).
 * When events go to several partitions and one fails, the others may have been written:
 * results of written events are filled, failed ones get offset -1.
 */
int td_produce(td_engine *e, const char *topic, const td_event *events, size_t n,
               td_produce_result *results);

/* ---------------------------------------------------------------------------------------------
 * Entity streams (docs/event-sourcing.md): on a topic with key.index=true, the events of one
 * key in its partition form a stream whose version is the offset of its latest event
 * (TD_VERSION_NO_STREAM when it has none).
 */

/* Where an expected version did not hold: the event (its index in the call), its partition,
 * and the stream's version found. */
typedef struct td_version_conflict {
    size_t index;
    int32_t partition;
    int64_t current;
} td_version_conflict;

/*
 * td_produce with optimistic concurrency: expected[i] (expected NULL: none) is event i's
 * condition on its key's stream, checked with the append under the partition's lock: a
 * version (the offset of the key's latest event), TD_VERSION_NO_STREAM, TD_VERSION_EXISTS or
 * TD_VERSION_ANY (no condition). Every condition is checked against the versions before the
 * call's events. The events of one partition are appended all or nothing (they must then fit
 * one batch: TD_ETOOBIG otherwise); across partitions, each partition is appended in turn, so
 * a failed condition in one leaves the events of partitions appended before it written (their
 * results say so). A failed condition: TD_EVERSION, with *conflict (may be NULL) filled and
 * td_last_error() naming the versions. TD_EUNSUPPORTED for conditions on a topic without
 * key.index; TD_EINVAL for a condition on an event without a key; td_produce's errors.
 */
int td_produce_expect(td_engine *e, const char *topic, const td_event *events,
                      const int64_t *expected, size_t n, td_produce_result *results,
                      td_version_conflict *conflict);

/*
 * A consistency boundary (docs/event-sourcing.md#consistency-boundaries): "no event of any of
 * these keys after position `after`" in one partition, checked with the append. `after` is an
 * offset of the partition (typically the version the command read: the highest offset among
 * the keys' events it decided on), or TD_VERSION_NO_STREAM (-1): none of the keys has any event.
 * partition TD_PARTITION_ANY: the keys' partition by murmur2 (as td_produce routes them), which
 * must be one for all of them. At most TD_CONDITION_KEYS_MAX keys.
 */
#define TD_CONDITION_KEYS_MAX 64
typedef struct td_condition_key {
    const void *key;
    size_t key_len;
} td_condition_key;
typedef struct td_condition {
    const td_condition_key *keys;
    size_t key_count; /* keys and tags together: 1 to TD_CONDITION_KEYS_MAX */
    int64_t after;    /* >= -1 */
    int32_t partition;
    /* Tags (TD_TAG_HEADER): "no event with any of these tags after `after`" too (tags have no
     * partition of their own: with no keys and TD_PARTITION_ANY, the events' partition). */
    const td_condition_key *tags;
    size_t tag_count;
} td_condition;

/* Event tags (docs/event-sourcing.md#tags): on a topic with key.index=true, an event's headers
 * named TD_TAG_HEADER (one per tag) are indexed beside its key, for conditions on tags and
 * td_tag_version. At most TD_TAGS_MAX per event, each 1 to TD_TAG_MAX_LEN bytes: produce refuses
 * more (TD_EINVAL). */
#define TD_TAG_HEADER "tidings-tag"
#define TD_TAGS_MAX 16
#define TD_TAG_MAX_LEN 256

/*
 * td_produce_expect with a condition over a set of keys (cond NULL: td_produce_expect): every
 * event must go to the condition's partition, and the call's events are appended as one batch,
 * all or nothing, only if no key of cond has an event after cond->after and every expected
 * version holds, checked with the append under the partition's lock. A failed check:
 * TD_EVERSION and *conflict: conflict->index < n is the event whose expected version failed,
 * conflict->index == n + j says cond->keys[j] changed (its version, conflict->current, is after
 * cond->after), n + key_count + j that cond->tags[j] did; expected versions are checked first,
 * then the keys in order, then the tags. TD_EINVAL for a
 * malformed condition, keys of several partitions, or an event routed to another partition
 * than the condition's (a boundary is one partition until transactions exist); TD_ETOOBIG when
 * the events do not fit one batch; td_produce_expect's errors.
 */
int td_produce_cond(td_engine *e, const char *topic, const td_event *events,
                    const int64_t *expected, size_t n, const td_condition *cond,
                    td_produce_result *results, td_version_conflict *conflict);

/* The version of key's stream (partition TD_PARTITION_ANY: the key's partition by murmur2,
 * as td_produce routes it), as readers see it. TD_ENOTFOUND for an unknown topic or partition;
 * TD_EUNSUPPORTED without key.index; TD_EOFFLINE; -errno. */
int td_key_version(td_engine *e, const char *topic, const void *key, size_t key_len,
                   int32_t partition, int64_t *version);
/* The version of a tag in a partition (tags have no partition of their own: it must be named):
 * the offset of the latest event carrying it (TD_VERSION_NO_STREAM when none); as td_key_version. */
int td_tag_version(td_engine *e, const char *topic, const void *tag, size_t tag_len,
                   int32_t partition, int64_t *version);

/* ---------------------------------------------------------------------------------------------
 * Reading
 */
typedef struct td_iter td_iter;

/* Special offsets for td_iter_open and td_offset_for. TD_OFFSET_LAST_STABLE: the last stable
 * offset, below which every Kafka transaction is settled (committed or aborted); the high
 * watermark when none is open. */
#define TD_OFFSET_EARLIEST (-2)
#define TD_OFFSET_LATEST (-1)
#define TD_OFFSET_LAST_STABLE (-3)

/*
 * Opens an iterator over one partition from `offset` (an offset, TD_OFFSET_EARLIEST,
 * TD_OFFSET_LATEST or TD_OFFSET_LAST_STABLE). An offset below the log start or above the high
 * watermark gives TD_ERANGE. The iterator sees events up to where it stops (below) at each call
 * of td_iter_next(), so it also returns events appended after it was opened. TD_ENOTFOUND for an
 * unknown topic or partition; -ENOMEM.
 *
 * Transactions (docs/embedded.md#transactions): an iterator reads committed data only, unless
 * td_iter_set_isolation says otherwise. It stops at the last stable offset rather than the high
 * watermark (an open transaction's events are not reached until it ends) and skips the events
 * of aborted transactions; TD_OFFSET_LATEST is then the last stable offset too. Events written
 * without a transaction are committed as soon as they are readable.
 */
int td_iter_open(td_engine *e, const char *topic, int32_t partition, int64_t offset,
                 td_iter **out);

/* Opens an iterator at the first event whose timestamp is >= timestamp_ms (at the high
 * watermark if there is none). TD_ENOTFOUND, TD_EOFFLINE, -errno of reading the time index. */
int td_iter_open_time(td_engine *e, const char *topic, int32_t partition, int64_t timestamp_ms,
                      td_iter **out);

/*
 * Opens an iterator over the events of one key (its stream) in one partition (TD_PARTITION_ANY:
 * the key's partition by murmur2), from from_version (an offset: events at or after it;
 * TD_OFFSET_EARLIEST: from the first), found through the partition's key index without
 * reading the rest of the partition. td_iter_next returns the key's events in offset order,
 * and 0 at the high watermark, as for td_iter_open; td_iter_position is the offset after the
 * last event returned. TD_EUNSUPPORTED when the topic has no key.index (docs/event-sourcing.md);
 * TD_ENOTFOUND, TD_EINVAL for a negative from_version other than TD_OFFSET_EARLIEST.
 */
int td_iter_open_key(td_engine *e, const char *topic, const void *key, size_t key_len,
                     int32_t partition, int64_t from_version, td_iter **out);
/* td_iter_open_key for the events carrying an event tag (TD_TAG_HEADER) in a named partition
 * (TD_EINVAL for TD_PARTITION_ANY: tags have no partition of their own). */
int td_iter_open_tag(td_engine *e, const char *topic, const void *tag, size_t tag_len,
                     int32_t partition, int64_t from_version, td_iter **out);

/*
 * Reads the next event into *ev. Returns 1 if an event was read, 0 at the end of what it reads
 * (the last stable offset, or the high watermark for TD_READ_UNCOMMITTED; call again later for
 * more), or a negative code: TD_ECORRUPT or TD_ECRC with the partition and offset in
 * td_last_error(); TD_EUNSUPPORTED for a compression codec this build lacks;
 * TD_ETOOBIG for a batch that decompresses past the reader's bound; TD_ERANGE if retention
 * deleted the data under the iterator; TD_ENOTFOUND once the topic was deleted; TD_EOFFLINE;
 * -ENOMEM and -errno of the read.
 * The pointers in *ev (key, value, headers) stay valid until the next td_iter_next() or
 * td_iter_close() on this iterator.
 */
int td_iter_next(td_iter *it, td_event *ev);

/* The offset the next td_iter_next() will look at. */
int64_t td_iter_position(const td_iter *it);

/* What an iterator reads: committed data (TD_READ_COMMITTED, the default), or also the events
 * of open and aborted transactions, up to the high watermark (TD_READ_UNCOMMITTED). Usually set
 * right after the open; a later change applies from td_iter_position on. An iterator opened at
 * TD_OFFSET_LATEST and not read yet moves to the high watermark for TD_READ_UNCOMMITTED (to the
 * last stable offset for TD_READ_COMMITTED). TD_EINVAL for another value. */
#define TD_READ_COMMITTED 0
#define TD_READ_UNCOMMITTED 1
int td_iter_set_isolation(td_iter *it, int isolation);

/* Closes an iterator; NULL is accepted. */
void td_iter_close(td_iter *it);

/* ---------------------------------------------------------------------------------------------
 * Traces (docs/tracing.md "Trace index"): the events of trace.index topics by trace and by
 * cause, as a tree. An event's span is the parent-id of its traceparent; its parent is the
 * event its x-causation-id names, else the latest event before it (in time) of the span its
 * x-causation-span-id names (the earliest after it when none is before), else the latest event
 * before it of its own span (a consumer that carried the context on); an event with none of
 * these in the answer is a root. Cycles (headers can say anything) are cut at their earliest
 * event.
 */
#define TD_TRACE_MAX_EVENTS 10000 /* the largest limit of td_trace_get and td_trace_caused */
#define TD_TRACE_MAX_DEPTH 32     /* the largest depth of td_trace_caused */
#define TD_TRACE_KEY_MAX 128      /* the bytes of an event's key kept in a td_trace_event */

typedef struct td_trace_event {
    char topic[TD_TOPIC_NAME_MAX + 1];
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms;
    bool has_context; /* a valid traceparent: trace_id and span_id are its */
    uint8_t trace_id[16];
    uint8_t span_id[8];
    bool has_parent_span; /* x-causation-span-id: parent_span */
    uint8_t parent_span[8];
    char cause[TD_TOPIC_NAME_MAX + 48]; /* x-causation-id, "" without one */
    bool key_null;
    size_t key_len; /* the whole key's length; key holds its first TD_TRACE_KEY_MAX bytes */
    uint8_t key[TD_TRACE_KEY_MAX];
    size_t header_count;
    char header_names[256]; /* the headers' names, each followed by '\n' (cut to fit) */
    int32_t parent;         /* the index of its parent in the answer, -1 for a root */
    int32_t depth;          /* 0 for a root */
} td_trace_event;

typedef struct td_trace_result {
    td_trace_event *events; /* in tree order: each event before its children, depth first,
                             * siblings (and roots) by timestamp, topic, partition, offset */
    size_t n;
    size_t hidden;  /* events left out because `may_read` refused their topic */
    bool truncated; /* more events than the limit: `limit` of them are kept */
} td_trace_result;

/* Whether the caller may read topic (a principal's Read permission); NULL: every topic. */
typedef bool (*td_topic_filter)(void *arg, const char *topic);

/* Every event of the trace trace_id across the trace.index topics (internal topics are never
 * indexed), at most limit (1..TD_TRACE_MAX_EVENTS). TD_EINVAL for a bad limit; -errno. */
int td_trace_get(td_engine *e, const uint8_t trace_id[16], size_t limit, td_topic_filter may_read,
                 void *arg, td_trace_result *out);
/* The event at topic/partition/offset (the first in out) and what it caused, transitively, to
 * depth (1..TD_TRACE_MAX_DEPTH) levels: the events naming it (x-causation-id) or its span
 * (x-causation-span-id) as their parent, or carrying its span on, at most limit in all.
 * TD_ENOTFOUND for no such event or a topic may_read refuses; TD_EINVAL for bad bounds. */
int td_trace_caused(td_engine *e, const char *topic, int32_t partition, int64_t offset, int depth,
                    size_t limit, td_topic_filter may_read, void *arg, td_trace_result *out);
void td_trace_result_free(td_trace_result *r);

/*
 * Resolves an offset for a partition: TD_OFFSET_EARLIEST gives the log start offset,
 * TD_OFFSET_LATEST the high watermark, TD_OFFSET_LAST_STABLE the last stable offset (where
 * readers of committed data stop). Use td_offset_for_time for timestamps. TD_ENOTFOUND for an
 * unknown topic or partition, TD_EINVAL for another `which`.
 */
int td_offset_for(td_engine *e, const char *topic, int32_t partition, int64_t which,
                  int64_t *offset);

/* The first offset whose timestamp is >= timestamp_ms, or the high watermark if none.
 * TD_ENOTFOUND, TD_EOFFLINE, -errno of reading the time index. */
int td_offset_for_time(td_engine *e, const char *topic, int32_t partition, int64_t timestamp_ms,
                       int64_t *offset);

/* Where a consumer group's offset reset puts a partition, as Kafka's kafka-consumer-groups
 * --reset-offsets does: its log start (TD_RESET_EARLIEST), its high watermark (LATEST), `value`
 * kept within those two (OFFSET), or the first offset at or after the time `value` (TIME).
 * TD_ENOTFOUND for an unknown topic or partition, TD_EINVAL for another `to`; for TIME, also
 * td_offset_for_time's errors. */
enum td_reset_to { TD_RESET_EARLIEST, TD_RESET_LATEST, TD_RESET_OFFSET, TD_RESET_TIME };
int td_offset_reset(td_engine *e, const char *topic, int32_t partition, int to, int64_t value,
                    int64_t *offset);

/*
 * Deletes the events of a partition below offset `before` (TD_OFFSET_LATEST: every event up to
 * the high watermark), like Kafka's DeleteRecords: the log start offset becomes `before`, durably
 * (a restart does not bring the events back), and reads below it get TD_ERANGE. Disk space comes
 * back as whole segments fall below the new start. An offset at or below the current log start
 * changes nothing. TD_ERANGE above the high watermark; TD_ENOTFOUND; TD_EOFFLINE.
 * *log_start (may be NULL) receives the log start offset after the call.
 */
int td_delete_records(td_engine *e, const char *topic, int32_t partition, int64_t before,
                      int64_t *log_start);

/* ---------------------------------------------------------------------------------------------
 * Consumer groups: committed offsets
 *
 * A group remembers, per topic partition, the next offset it will read (Kafka's committed
 * offset), with the leader epoch and a metadata string the committer chose. Commits are
 * records of the internal topic __consumer_offsets (one batch per call: all entries of a call or
 * none), durable when the call returns under that topic's fsync policy (td_options
 * .state_topic_fsync, `always` by default). Deleting a topic deletes the offsets committed for
 * it (tombstones).
 * Group names: 1 to TD_GROUP_NAME_MAX bytes, any characters except NUL.
 */
#define TD_GROUP_NAME_MAX 255
#define TD_OFFSET_METADATA_MAX 4096 /* Kafka's offset.metadata.max.bytes */

typedef struct td_offset_commit {
    const char *topic;
    int32_t partition;
    int64_t offset;       /* the next offset to read; negative ones are kept as given (Kafka's
                             -2 "earliest" and -1 "latest", as kafkajs commits them) */
    int32_t leader_epoch; /* -1: none */
    const char *metadata; /* NULL: none; at most TD_OFFSET_METADATA_MAX bytes */
} td_offset_commit;

typedef struct td_committed_offset {
    char topic[TD_TOPIC_NAME_MAX + 1];
    int32_t partition;
    int64_t offset;
    int32_t leader_epoch;
    const char *metadata; /* NULL: none; points into the same allocation */
    int64_t commit_ms;
} td_committed_offset;

typedef struct td_group_info {
    char name[TD_GROUP_NAME_MAX + 1];
    size_t offsets;         /* committed partitions */
    int64_t last_commit_ms;
} td_group_info;

/* Commits n offsets for `group` at once. now_ms <= 0 means now. TD_ENAME for a bad group name,
 * TD_ENOTFOUND for an unknown topic or partition, TD_ETOOBIG
 * for metadata above TD_OFFSET_METADATA_MAX; nothing is committed then. */
int td_group_commit(td_engine *e, const char *group, const td_offset_commit *offsets, size_t n,
                    int64_t now_ms);

/* The offsets `group` committed, sorted by topic and partition (*count 0 and *out NULL if none).
 * *out is one malloc'd block: free it with free(). TD_ENAME for a bad group name, TD_EOFFLINE
 * when the state topic __consumer_offsets could not be opened. */
int td_group_offsets(td_engine *e, const char *group, td_committed_offset **out, size_t *count);

/* The committed offset of one partition: TD_ENOTFOUND if the group committed none there;
 * TD_ENAME, TD_EOFFLINE as td_group_offsets. */
int td_group_committed(td_engine *e, const char *group, const char *topic, int32_t partition,
                       int64_t *offset);

/* Groups that have committed offsets, sorted by name; *out malloc'd, free with free().
 * TD_EOFFLINE as td_group_offsets. */
int td_group_list(td_engine *e, td_group_info **out, size_t *count);

/* Deletes every offset of a group. TD_ENOTFOUND if it has none; TD_ENAME, TD_EOFFLINE as
 * td_group_offsets; -errno of writing the tombstones. */
int td_group_delete(td_engine *e, const char *group);

/* A group's progress on one partition: how far it committed, how far the log goes, and the
 * difference (0 when the commit is at or beyond the high watermark). */
typedef struct td_group_lag_info {
    char topic[TD_TOPIC_NAME_MAX + 1];
    int32_t partition;
    int64_t committed;
    int64_t high_watermark;
    int64_t lag;
    int64_t commit_ms;
} td_group_lag_info;

/* Lag of every partition `group` committed an offset for, sorted by topic and partition
 * (*count 0 if none); *out malloc'd, free with free(). The errors of td_group_offsets. */
int td_group_lag(td_engine *e, const char *group, td_group_lag_info **out, size_t *count);

/* Deletes the offset a group committed for one partition. TD_ENOTFOUND if there is none. */
int td_group_offset_delete(td_engine *e, const char *group, const char *topic, int32_t partition);

/*
 * The schema registry (docs/schemas.md#the-registry): one request of Confluent Schema
 * Registry's REST API v1, as the HTTP listener serves it under schema.registry.prefix, made
 * locally with every permission (the command line's local mode, embedders). method "GET",
 * "POST", "PUT", "DELETE"; path as after the prefix, percent-encoded, with its query
 * ("/subjects/orders-value/versions?normalize=true"); body the JSON request body (NULL or len
 * 0: none). On 0, *status is the HTTP status and *resp (malloc'd, NUL-terminated, free it) its
 * JSON body ({"error_code", "message"} for errors), *resp_len its length. TD_EINVAL for bad
 * arguments, -ENOMEM.
 */
int td_schema_request(td_engine *e, const char *method, const char *path, const char *body,
                      size_t len, int *status, char **resp, size_t *resp_len);

/*
 * Table reads (docs/embedded.md#table-reads): the latest event of `key` in a compacted topic
 * (cleanup.policy=compact) or a key.index topic, answered from the partition's key index, not a
 * scan. partition < 0:
 * the partition the default partitioner picks for the key (td_partition_for_key), as producers
 * do; otherwise that partition. On success *out is the event (key, value, headers, timestamp,
 * partition, offset), owned by the caller: free it with td_event_free(). TD_ENOTFOUND for an
 * unknown topic or partition, an unknown key, a key whose latest record is a tombstone (a null
 * value), or one whose record retention or compaction removed; TD_EINVAL for a topic that is
 * neither compacted nor key.index; TD_EFULL when the partition's index was dropped because table_index_max_bytes was
 * reached; TD_EOFFLINE. A key is compared byte for byte, never only by its digest.
 */
int td_get_key(td_engine *e, const char *topic, const void *key, size_t key_len,
               int32_t partition, td_event **out);
/* Frees an event td_get_key returned; NULL is accepted. */
void td_event_free(td_event *ev);

/* Kafka's default partitioner for a key: (murmur2(key) & 0x7fffffff) % partitions. */
int32_t td_partition_for_key(const void *key, size_t key_len, int32_t partitions);

/* ---------------------------------------------------------------------------------------------
 * Queues on the log (docs/queues.md)
 *
 * A queue group reads a topic and hands its events to consumers one by one. Each event handed
 * out is in flight, with a deadline (the ack timeout) and a delivery count, until the consumer
 * acks it (done), nacks it (redelivered after a backoff, or after the delay it asks for), or lets
 * the deadline pass (redelivered after the backoff). An event that fails max.deliveries times is
 * copied to the group's dead-letter topic, with x-dlq-* headers saying where it came from and
 * why, and is done. The group's state (its ack floor per partition, and the events above it in
 * flight or waiting) is kept as records of the internal state topic __queue_state: an ack
 * returns once its record is durable, so an acked event is never delivered again; after a
 * crash, an event in flight is delivered again (at least once).
 *
 * Every call below that takes an engine and a group returns TD_EINVAL for a NULL argument,
 * TD_ENOTFOUND for an unknown group, TD_ECLOSED once the engine is closing, and -errno when the
 * group's records cannot be written or synced.
 *
 * Group names follow the topic name rules. Policy keys (values as strings):
 *   ack.timeout.ms            how long a delivery may last before it counts as failed: 30000
 *   max.deliveries            deliveries before the event is dead-lettered: 5 (1 to 1000)
 *   backoff.initial.ms        delay before the first redelivery: 1000
 *   backoff.multiplier        factor per further failure: 2 (1 to 100)
 *   backoff.max.ms            the longest delay: 60000
 *   backoff.jitter            each delay times a random factor in [1 - j, 1 + j]: 0.1 (0 to 1)
 *   dead.letter.topic         "" (the default): <topic>.dlq, created when first needed
 *   ordering                  none (default) | key: while an event of a key is in flight or
 *                             waiting for a retry, later events of that key are held back
 *   max.in.flight             events in flight, waiting or held, per group: 1000
 *   max.in.flight.per.consumer  events in flight per consumer: 100
 *   start                     earliest (default) | latest: where a new group starts reading
 *   forward.to                "" (the default): consumers receive; a topic: the broker is the
 *                             group's only consumer and appends each event, once due, to that
 *                             topic (a delayed view, docs/queues.md#delayed-views)
 */
enum td_queue_ordering { TD_QUEUE_UNORDERED = 0, TD_QUEUE_BY_KEY = 1 };

typedef struct td_queue_policy {
    int64_t ack_timeout_ms;
    int32_t max_deliveries;
    int64_t backoff_initial_ms;
    double backoff_multiplier;
    int64_t backoff_max_ms;
    double backoff_jitter;
    char dead_letter_topic[TD_TOPIC_NAME_MAX + 1];
    int ordering; /* enum td_queue_ordering */
    int32_t max_in_flight;
    int32_t max_in_flight_per_consumer;
    int start_latest; /* 0: earliest, 1: latest */
    char forward_to[TD_TOPIC_NAME_MAX + 1]; /* "": none */
    /* The circuit breaker of a queue group (docs/queues.md#circuit-breaker): when, over the
     * last circuit_window_ms, at least circuit_min_calls outcomes were seen and
     * circuit_failure_rate percent or more of them failed (nacks and ack timeouts), deliveries
     * pause for circuit_open_ms (open), then circuit_half_open_trials trial deliveries decide:
     * all acked closes it, a failure opens it again. Failures while it is not closed are not
     * counted against max_deliveries. 0 (the default): no breaker. Queue groups only. */
    int32_t circuit_failure_rate;
    int64_t circuit_window_ms;
    int32_t circuit_min_calls;
    int64_t circuit_open_ms;
    int32_t circuit_half_open_trials;
} td_queue_policy;

void td_queue_policy_init(td_queue_policy *p);
/* Applies key=value settings to *p, all or none: TD_ECONFIG (td_last_error names the key and
 * the rule) for an unknown key or a bad value. */
int td_queue_policy_apply(td_queue_policy *p, const td_config_entry *entries, size_t n);
/* The NULL-terminated list of policy keys, and one key's value as text (TD_ENOTFOUND for an
 * unknown key, TD_ETOOBIG when buf is too small). */
const char *const *td_queue_policy_keys(void);
int td_queue_policy_get(const td_queue_policy *p, const char *key, char *buf, size_t len);

/* Creates a queue group on a topic, or on a pattern of topics ("orders.*"); policy NULL: the
 * defaults. TD_EEXIST, TD_ENAME (the group name, or the topic or pattern), TD_ENOTFOUND (no such
 * topic), TD_ECONFIG (a dead.letter.topic that is the group's own topic, or <topic>.dlq too long
 * a name). */
int td_queue_create(td_engine *e, const char *group, const char *topic,
                    const td_queue_policy *policy);
/* Changes a running group's policy (the new one applies to the next delivery, ack or failure).
 * TD_ENOTFOUND, TD_ECONFIG as td_queue_create. */
int td_queue_configure(td_engine *e, const char *group, const td_queue_policy *policy);
/* Deletes a group and its state (the topics stay). TD_ENOTFOUND. */
int td_queue_delete(td_engine *e, const char *group);

typedef struct td_queue_info {
    char group[TD_TOPIC_NAME_MAX + 1];
    char topic[TD_TOPIC_NAME_MAX + 1];
    td_queue_policy policy;
    /* The policy's, or <topic>.dlq (for a wildcard group, a pattern: "orders.*.dlq"); "" when
     * <topic>.dlq is too long a name. */
    char dead_letter_topic[TD_TOPIC_NAME_MAX + 1];
    int64_t created_ms;
    int32_t topics;         /* the topics it reads now: 1, or those its pattern matches */
    int64_t depth;          /* events not done: not yet delivered, in flight, waiting or held */
    int64_t in_flight;      /* delivered, not yet acked, nacked or timed out */
    int64_t waiting;        /* failed, waiting for their redelivery */
    int64_t held;           /* held back behind an earlier event of their key */
    /* Delayed events read and not due yet, in memory (docs/queues.md#delayed-delivery), and
     * the earliest due time among them (-1: none). Not counted in depth. */
    int64_t scheduled, next_scheduled_ms;
    int32_t consumers;      /* consumers that received in the last ack timeout */
    int64_t acked;          /* totals since the engine opened */
    int64_t redelivered;
    int64_t dead_lettered;
    int64_t oldest_unacked_ms; /* timestamp of the oldest event delivered and not done; -1 */
    /* The circuit breaker: its state (TD_CIRCUIT_*), the outcomes and failures in its window
     * now, when it opened (or last went half-open; -1: closed), when an open one goes
     * half-open (-1 otherwise), and how many times it opened since the engine opened. */
    int circuit_state;
    int64_t circuit_calls, circuit_failures;
    int64_t circuit_since_ms, circuit_open_until_ms, circuit_opened;
} td_queue_info;

#define TD_CIRCUIT_CLOSED 0
#define TD_CIRCUIT_OPEN 1
#define TD_CIRCUIT_HALF_OPEN 2

/* One group's description. TD_ENOTFOUND. */
int td_queue_describe(td_engine *e, const char *group, td_queue_info *out);
/* A description as the HTTP API's JSON object (GET /v1/queues/{group} in docs/http-api.md),
 * NUL-terminated compact text: malloc'd, free with free(); NULL when out of memory. The HTTP
 * routes and the command's local mode both show it, so they cannot differ. */
char *td_queue_info_json(const td_queue_info *q);
/* Every group, sorted by name; *out malloc'd, free with free(). -ENOMEM. */
int td_queue_list(td_engine *e, td_queue_info **out, size_t *count);

/* One delivery. The event's bytes are valid until td_queue_msgs_free. */
#define TD_QUEUE_ID_MAX 64
typedef struct td_queue_msg {
    char id[TD_QUEUE_ID_MAX]; /* names this delivery to ack, nack and extend */
    char topic[TD_TOPIC_NAME_MAX + 1];
    td_event event;
    int32_t deliveries; /* 1 the first time */
} td_queue_msg;

/*
 * Up to max events for `consumer` (any name; its in-flight limit is counted by it): those due
 * for a redelivery first, then new ones from the log. *n is 0 when none is ready, or when the
 * group or the consumer is at its in-flight limit. Free *out with td_queue_msgs_free.
 * TD_ENOTFOUND for an unknown group or a topic it reads that was deleted; TD_EFULL when the
 * group already tracks its most consumers (4096) and this is another; a read's errors
 * (TD_ECORRUPT, TD_EOFFLINE, ... as td_iter_next).
 */
int td_queue_receive(td_engine *e, const char *group, const char *consumer, size_t max,
                     td_queue_msg **out, size_t *n);
void td_queue_msgs_free(td_queue_msg *v, size_t n);

/*
 * Ack, nack or extend deliveries by id. results (n entries, may be NULL) gets 0, TD_ESTALE (the
 * delivery timed out and the event was handed out again, or it is done) or TD_EINVAL (not an id
 * of this group) for each. The call returns once the outcome is durable.
 * nack: delay_ms >= 0 redelivers after that delay, -1 after the policy's backoff; error (may be
 * NULL) is kept as the last failure's text, up to 1024 bytes.
 * extend: the deadline becomes now + ms (-1: the ack timeout).
 * The call itself fails only as the section says (TD_EINVAL, TD_ENOTFOUND, TD_ECLOSED, -errno);
 * a bad or stale id is a result, not a failure.
 */
int td_queue_ack(td_engine *e, const char *group, const char *const *ids, size_t n, int *results);
int td_queue_nack(td_engine *e, const char *group, const char *const *ids, size_t n,
                  int64_t delay_ms, const char *error, int *results);
int td_queue_extend(td_engine *e, const char *group, const char *const *ids, size_t n, int64_t ms,
                    int *results);

/*
 * Redrive: moves dead-lettered events (those of a dead-letter topic, with their x-dlq-*
 * headers) back to their origin topic, or to `to_topic`. Each copy has the event's key, value,
 * timestamp and headers without the x-dlq-* ones, and goes to its origin partition when
 * redriven to its origin (by key otherwise). The selection: the partitions (-1: all), the offset
 * range [from_offset, to_offset) (-1: the log start, the end as of the call), and the time the
 * events were dead-lettered (x-dlq-last-failure-ms) in [since_ms, until_ms) (-1: unbounded).
 * Events without an origin and no to_topic are skipped. Unless keep, the dead-letter topic's
 * log start is then advanced past what moved, where that is a prefix of the log (events skipped
 * or outside the time range stay, and so does everything after them), so that moving again does
 * not move the same events twice. Returns when the copies are durable. progress (may be NULL)
 * is called after each batch with the events looked at so far and their total; a nonzero return
 * stops the redrive there (TD_ECLOSED; what moved so far stays moved). If writing a copy fails,
 * the copies already made stay and the partition's log start is not advanced: moving again
 * copies those once more (at least once).
 * TD_EINVAL for a NULL argument, TD_ENOTFOUND for an unknown topic (the dead-letter topic or
 * to_topic) or partition, TD_ECLOSED when progress stopped it, and td_produce's and
 * td_iter_next's errors.
 */
typedef struct td_redrive_opts {
    const char *to_topic;
    int32_t partition;
    int64_t from_offset, to_offset;
    int64_t since_ms, until_ms;
    int keep;
    int (*progress)(void *arg, int64_t done, int64_t total);
    void *arg;
} td_redrive_opts;

typedef struct td_redrive_result {
    int64_t total;   /* events in the offset range */
    int64_t moved;   /* copied to their topic */
    int64_t skipped; /* without an origin, or outside the time range */
    int64_t deleted; /* removed from the dead-letter topic (its log start advanced) */
} td_redrive_result;

void td_redrive_opts_init(td_redrive_opts *o);
int td_redrive(td_engine *e, const char *dlq_topic, const td_redrive_opts *o,
               td_redrive_result *res);

/* ---------------------------------------------------------------------------------------------
 * Users: one store, in the catalog, for every protocol (docs/security.md#users). Passwords are
 * never stored: each user has SCRAM credentials (RFC 5802, RFC 7677) for SCRAM-SHA-256 and/or
 * SCRAM-SHA-512, each a random salt, an iteration count, StoredKey and ServerKey, from which
 * the password cannot be recovered (only guessed, at the cost of `iterations` HMACs a guess).
 *
 * Names: 1 to TD_USER_NAME_MAX bytes of UTF-8 without control characters (Kafka's SCRAM user
 * names are any non-empty string; the bound and the printable rule keep logs and listings
 * unambiguous). Passwords: 1 to TD_USER_PASSWORD_MAX bytes without NUL (SASL PLAIN separates
 * its fields with NUL); no SASLprep normalization is applied, as Kafka applies none.
 */
#define TD_USER_NAME_MAX 255
#define TD_USER_PASSWORD_MAX 1024

/* Mechanisms, as bits of a mask; the values are Kafka's ScramMechanism types. */
#define TD_SCRAM_SHA_256 1
#define TD_SCRAM_SHA_512 2
#define TD_SCRAM_ALL (TD_SCRAM_SHA_256 | TD_SCRAM_SHA_512)

/* Iteration counts accepted: Kafka's bounds for SCRAM (4096, its default and RFC 7677's
 * minimum, to 16384). Every authentication with a password costs the server `iterations`
 * HMACs, so the bound also bounds the work an unauthenticated client can cause. */
#define TD_SCRAM_ITERATIONS_MIN 4096
#define TD_SCRAM_ITERATIONS_MAX 16384
#define TD_SCRAM_ITERATIONS_DEFAULT 4096
#define TD_SCRAM_SALT_LEN 32   /* bytes of salt made for each new credential */
#define TD_SCRAM_SALT_MAX 128  /* the longest salt a stored credential may have */
#define TD_SCRAM_KEY_MAX 64    /* SHA-512's output */

/* One stored credential. key_len is the hash's output size (32 or 64). */
typedef struct td_scram_credential {
    int mechanism; /* TD_SCRAM_SHA_256 or TD_SCRAM_SHA_512 */
    int32_t iterations;
    size_t salt_len, key_len;
    uint8_t salt[TD_SCRAM_SALT_MAX];
    uint8_t stored_key[TD_SCRAM_KEY_MAX];
    uint8_t server_key[TD_SCRAM_KEY_MAX];
} td_scram_credential;

/* "SCRAM-SHA-256" or "SCRAM-SHA-512" for one mechanism bit; NULL for anything else. */
const char *td_scram_mechanism_name(int mechanism);
/* The mechanism bit for "SCRAM-SHA-256" or "SCRAM-SHA-512" (case-insensitive); 0 otherwise. */
int td_scram_mechanism_parse(const char *name);

/* Validate a user name / a password: 0 or TD_ENAME / TD_EINVAL, the rule in td_last_error(). */
int td_user_name_validate(const char *name);
int td_user_password_validate(const void *password, size_t len);

/* Creates a user with credentials for each mechanism in the mask (TD_SCRAM_*), derived from the
 * password with `iterations` (0: TD_SCRAM_ITERATIONS_DEFAULT) and a fresh random salt each. The
 * password is not kept, in the store or in memory the engine holds. Written in one catalog
 * transaction (durable when this returns). TD_EEXIST if the user exists, TD_ENAME, TD_EINVAL
 * (password, mask or iterations; the rule in td_last_error()). */
int td_user_add(td_engine *e, const char *name, const void *password, size_t password_len,
                int mechanisms, int32_t iterations);

/* Replaces every credential of an existing user with new ones for `mechanisms` (a mechanism
 * not in the mask no longer works for the user). TD_ENOTFOUND if there is no such user; the
 * other errors as td_user_add. */
int td_user_passwd(td_engine *e, const char *name, const void *password, size_t password_len,
                   int mechanisms, int32_t iterations);

/* Removes a user and its credentials. TD_ENOTFOUND. */
int td_user_remove(td_engine *e, const char *name);

/* A user as listings show it: never a salt or a key. */
typedef struct td_user_info {
    char name[TD_USER_NAME_MAX + 1];
    int mechanisms;             /* mask of TD_SCRAM_* the user has credentials for */
    int32_t sha256_iterations;  /* 0 when the user has no SCRAM-SHA-256 credential */
    int32_t sha512_iterations;  /* 0 when the user has no SCRAM-SHA-512 credential */
} td_user_info;

/* Lists users sorted by name (bytewise). *out is a malloc'd array of *count entries (NULL when
 * there are none) that the caller frees with free(). -ENOMEM, or the catalog's failure. */
int td_user_list(td_engine *e, td_user_info **out, size_t *count);

/* The stored credential of a user for one mechanism (what a SCRAM server exchange needs).
 * TD_ENOTFOUND if the user does not exist or has no credential for that mechanism. */
int td_user_credential(td_engine *e, const char *name, int mechanism, td_scram_credential *out);

/* Checks a plaintext password (SASL PLAIN, HTTP Basic) against the user's stored credentials:
 * derives StoredKey with the stored salt and iterations (SCRAM-SHA-512's when the user has it,
 * else SCRAM-SHA-256's) and compares in constant time. 0 when it matches; TD_EAUTH when it
 * does not, when the user does not exist, or when the password is not a valid one: callers
 * cannot tell these apart (nor should the clients they answer). An unknown user costs one
 * derivation too, so that timing does not tell either. A catalog failure returns its own code
 * (-EIO, TD_ECORRUPT for a damaged credential), never 0. */
int td_user_verify(td_engine *e, const char *name, const void *password, size_t password_len);

/* ---------------------------------------------------------------------------------------------
 * Quotas (docs/security.md#quotas): Kafka's client quotas. A quota limits what one client
 * entity may do per second on this broker: the bytes of events it produces
 * (producer_byte_rate), the bytes it fetches (consumer_byte_rate), and the share of one event
 * loop's time its requests take (request_percentage: 100 is one loop's whole time). Past it,
 * requests are answered, and the client is then made to wait (Kafka's throttle_time_ms; the
 * connection is not read meanwhile), so that its rate comes back to the quota.
 *
 * An entity is a user, a client id, or both; either level may be the default (Kafka's
 * <default>), which applies to each user or client id that has no quota of its own. For each
 * key, a client's quota is the first that exists of, in Kafka's order: (user, client id),
 * (user, default client), (user), (default user, client id), (default user, default client),
 * (default user), (client id), (default client). Unauthenticated clients are user ANONYMOUS.
 */
#define TD_QUOTA_CLIENT_ID_MAX 255

typedef enum td_quota_key {
    TD_QUOTA_PRODUCER_BYTE_RATE = 0,
    TD_QUOTA_CONSUMER_BYTE_RATE = 1,
    TD_QUOTA_REQUEST_PERCENTAGE = 2,
} td_quota_key;
#define TD_QUOTA_KEYS 3

/* "producer_byte_rate", ... for a key; NULL for anything else. */
const char *td_quota_key_name(int key);
/* The key for a name (Kafka's), or -1. */
int td_quota_key_parse(const char *name);

/* One level of an entity: absent, the default, or a name. */
typedef enum td_quota_level {
    TD_QUOTA_ABSENT = 0,
    TD_QUOTA_DEFAULT = 1,
    TD_QUOTA_NAMED = 2,
} td_quota_level;

typedef struct td_quota_entity {
    td_quota_level user_level;
    char user[TD_USER_NAME_MAX + 1];              /* when user_level is TD_QUOTA_NAMED */
    td_quota_level client_level;
    char client_id[TD_QUOTA_CLIENT_ID_MAX + 1];   /* when client_level is TD_QUOTA_NAMED */
} td_quota_entity;

/* One change: set key to value, or remove it. */
typedef struct td_quota_op {
    int key;      /* td_quota_key */
    double value; /* > 0; byte rates are whole bytes per second */
    int remove;
} td_quota_op;

/* Applies n changes to one entity in one catalog transaction (durable when this returns) and
 * to the quotas in force. With validate_only, checks them and changes nothing. TD_EINVAL for
 * an entity with no level, an unknown key, a value out of range (the rule in td_last_error());
 * TD_ENAME for a user or client id name that is not valid. Removing a key the entity does not
 * have is not an error. */
int td_quota_alter(td_engine *e, const td_quota_entity *entity, const td_quota_op *ops, size_t n,
                   int validate_only);

/* An entity with the quotas it has: values[k] is meaningful when the bit (1 << k) of has is
 * set. */
typedef struct td_quota_info {
    td_quota_entity entity;
    int has;
    double values[TD_QUOTA_KEYS];
} td_quota_info;

/* Every entity that has a quota, sorted (user level, user, client level, client id). *out is a
 * malloc'd array the caller frees with free(). -ENOMEM. */
int td_quota_list(td_engine *e, td_quota_info **out, size_t *count);

/* ---------------------------------------------------------------------------------------------
 * API tokens (docs/security.md#api-tokens): bearer credentials for HTTP, each owned by a user
 * and acting as that user. A token is the text
 *
 *     tdk_<id>_<secret>
 *
 * where <id> is TD_TOKEN_ID_LEN lowercase hex digits (8 random bytes: the token's public name,
 * shown by listings and used to revoke it) and <secret> the base64url form (no padding, 43
 * characters) of 32 random bytes (OpenSSL's RAND_bytes). The store keeps the SHA-256 of the
 * secret, never the secret: the secret is shown once, when the token is created. Tokens are kept
 * in the catalog with their owner, an optional expiry, a description and their creation time;
 * removing a user removes its tokens, in the same transaction.
 */
#define TD_TOKEN_ID_LEN 16
#define TD_TOKEN_LEN 64 /* "tdk_" + id + "_" + secret */
#define TD_TOKEN_DESCRIPTION_MAX 255

typedef struct td_token_info {
    char id[TD_TOKEN_ID_LEN + 1];
    char user[TD_USER_NAME_MAX + 1];
    char description[TD_TOKEN_DESCRIPTION_MAX + 1];
    int64_t created_ms; /* Unix milliseconds */
    int64_t expires_ms; /* Unix milliseconds; 0: never */
} td_token_info;

/* Creates a token for an existing user, expiring at expires_ms (Unix milliseconds; 0: never),
 * with a description (NULL or "" for none; at most TD_TOKEN_DESCRIPTION_MAX bytes of UTF-8
 * without control characters). The token's text goes to token (NUL-terminated); *info (may be
 * NULL) gets what listings show. Durable when this returns. TD_ENOTFOUND for an unknown user,
 * TD_ENAME, TD_EINVAL (description, or an expiry already past). */
int td_token_create(td_engine *e, const char *user, int64_t expires_ms, const char *description,
                    char token[TD_TOKEN_LEN + 1], td_token_info *info);

/* Tokens of one user (user NULL: of every user), expired ones included, sorted by user and
 * creation time. *out malloc'd (NULL when empty), freed by the caller with free(). -ENOMEM, or
 * the catalog's failure (-EIO, TD_ECORRUPT). */
int td_token_list(td_engine *e, const char *user, td_token_info **out, size_t *count);

/* Revokes (deletes) token id; with user not NULL, only if that user owns it. TD_ENOTFOUND
 * otherwise (whether the token exists is not told to a user who does not own it). */
int td_token_revoke(td_engine *e, const char *id, const char *user);

/* Checks a token's text (len bytes, not NUL-terminated). 0 when it is a stored, unexpired token
 * whose secret matches (compared as SHA-256 digests in constant time), with *info filled.
 * TD_EAUTH otherwise; when the token matched but has expired, *info is filled too (so that the
 * caller can say so: info->expires_ms <= now), else info->id is empty. A catalog failure
 * returns its own code, never 0. */
int td_token_verify(td_engine *e, const char *token, size_t len, td_token_info *info);
/* Kafka's AlterUserScramCredentials (docs/security.md#kafka): sets one mechanism's credential
 * of a user from a SaltedPassword computed by the client (Hi(password, salt, iterations), the
 * hash's size: 32 or 64 bytes), creating the user if it has none; the other mechanism's
 * credential is kept. Iterations within TD_SCRAM_ITERATIONS_MIN..MAX, salt 1..TD_SCRAM_SALT_MAX
 * bytes: TD_EINVAL otherwise, TD_ENAME for a bad name. */
int td_user_set_salted(td_engine *e, const char *name, int mechanism, const uint8_t *salt,
                       size_t salt_len, const uint8_t *salted_password, size_t salted_len,
                       int32_t iterations);
/* Removes one mechanism's credential of a user; a user left without any no longer exists.
 * TD_ENOTFOUND if the user has no credential for it. */
int td_user_remove_credential(td_engine *e, const char *name, int mechanism);

/* ---------------------------------------------------------------------------------------------
 * ACLs: who may do what, in Kafka's model (docs/security.md#authorization), one set for every
 * protocol. An ACL allows or denies a principal ("User:alice", "User:*" for everyone,
 * "User:ANONYMOUS" for clients that did not authenticate), connecting from a host (an IP
 * address, or "*"), an operation on the resources a pattern selects. Deny wins over allow; a
 * principal that no ACL allows is refused. The store lives in the catalog (durable when a
 * change returns) and in memory, where every request's check reads it.
 *
 * The codes are Kafka's (CreateAcls, DescribeAcls), so that they travel on the wire as they are.
 */

/* Resource types. */
typedef enum td_acl_resource {
    TD_RES_ANY = 1, /* filters only */
    TD_RES_TOPIC = 2,
    TD_RES_GROUP = 3, /* consumer groups, queue groups and Redis consumer groups alike */
    TD_RES_CLUSTER = 4,
    TD_RES_TRANSACTIONAL_ID = 5,
} td_acl_resource;

/* Operations. */
typedef enum td_acl_op {
    TD_OP_ANY = 1, /* filters only */
    TD_OP_ALL = 2,
    TD_OP_READ = 3,
    TD_OP_WRITE = 4,
    TD_OP_CREATE = 5,
    TD_OP_DELETE = 6,
    TD_OP_ALTER = 7,
    TD_OP_DESCRIBE = 8,
    TD_OP_CLUSTER_ACTION = 9,
    TD_OP_DESCRIBE_CONFIGS = 10,
    TD_OP_ALTER_CONFIGS = 11,
    TD_OP_IDEMPOTENT_WRITE = 12,
} td_acl_op;

/* Pattern types: how an ACL's resource name selects resources. LITERAL: the resource of that
 * name, or every resource of the type when the name is "*". PREFIXED: every resource whose name
 * starts with it. WILDCARD (tidings' own): the topic wildcard patterns subscriptions use
 * (segments separated by '.', '*' one segment, '#' zero or more; include pattern rules), so
 * "orders.*" covers "orders.eu". ANY and MATCH exist only in filters: ANY selects ACLs of every
 * pattern type by their exact name; MATCH selects the ACLs that apply to the named resource. */
typedef enum td_acl_pattern {
    TD_PAT_ANY = 1,
    TD_PAT_MATCH = 2,
    TD_PAT_LITERAL = 3,
    TD_PAT_PREFIXED = 4,
    TD_PAT_WILDCARD = 64, /* not a Kafka code: DescribeAcls shows it as UNKNOWN (0) */
} td_acl_pattern;

/* Permission types. */
typedef enum td_acl_permission {
    TD_PERM_ANY = 1, /* filters only */
    TD_PERM_DENY = 2,
    TD_PERM_ALLOW = 3,
} td_acl_permission;

#define TD_ACL_PRINCIPAL_MAX (5 + TD_USER_NAME_MAX) /* "User:" and a user name */
#define TD_ACL_HOST_MAX 45                         /* the longest IPv6 address text */
#define TD_ACL_NAME_MAX 255                        /* a resource name or pattern */
#define TD_ACL_MAX 10000 /* ACLs the store holds at most: each change copies the set (~6 MB) */

/* The cluster resource's one name, as Kafka names it. */
#define TD_CLUSTER_NAME "kafka-cluster"

/* One ACL (a binding, in Kafka's words). */
typedef struct td_acl {
    char principal[TD_ACL_PRINCIPAL_MAX + 1];
    char host[TD_ACL_HOST_MAX + 1];
    td_acl_resource resource_type;
    td_acl_pattern pattern_type;
    char name[TD_ACL_NAME_MAX + 1];
    td_acl_op operation;
    td_acl_permission permission;
} td_acl;

/* A filter: NULL strings and the ANY codes match everything. */
typedef struct td_acl_filter {
    const char *principal;
    const char *host;
    td_acl_resource resource_type;
    td_acl_pattern pattern_type;
    const char *name;
    td_acl_op operation;
    td_acl_permission permission;
} td_acl_filter;

/* A filter that matches every ACL. */
void td_acl_filter_init(td_acl_filter *f);

/* 0 if a is an ACL the store can hold, else TD_EINVAL with the rule in td_last_error(): a
 * principal "User:<user name>" or "User:*"; a host "*" or an IPv4 or IPv6 address; a concrete
 * resource type, pattern type, operation and permission (not ANY or MATCH); a name 1 to
 * TD_ACL_NAME_MAX bytes, "kafka-cluster" (literal) for the cluster, a valid topic pattern for
 * WILDCARD. */
int td_acl_validate(const td_acl *a);
/* 0 if f is a filter DescribeAcls or DeleteAcls accept, else TD_EINVAL: known codes (ANY and
 * MATCH allowed), strings no longer than an ACL's. Principal and host are matched as strings. */
int td_acl_filter_validate(const td_acl_filter *f);

/* Adds an ACL (one catalog transaction; effective for requests checked after this returns).
 * Adding an ACL that exists already succeeds and changes nothing, as in Kafka. TD_EINVAL
 * (td_acl_validate), TD_EFULL when the store holds TD_ACL_MAX. */
int td_acl_add(td_engine *e, const td_acl *a);

/* Removes every ACL the filter matches, in one transaction. *removed (may be NULL) gets a
 * malloc'd array of what was removed (NULL when nothing matched) of *count entries. TD_EINVAL
 * (td_acl_filter_validate), -ENOMEM, or the catalog's failure. */
int td_acl_remove(td_engine *e, const td_acl_filter *f, td_acl **removed, size_t *count);

/* The ACLs the filter matches, sorted by resource type, name, pattern type, principal, host,
 * operation and permission. *out is malloc'd (NULL when none), freed by the caller. TD_EINVAL
 * (td_acl_filter_validate), -ENOMEM. */
int td_acl_list(td_engine *e, const td_acl_filter *f, td_acl **out, size_t *count);

/* Kafka's names, for listings and parsing ("Topic", "Read", "Prefixed", "Allow"; parsing is
 * case-insensitive and accepts "-"/"_" spellings: "transactional-id", "describe_configs").
 * The name functions return "Unknown" for a code without a name; the parse functions 0. */
const char *td_acl_resource_name(td_acl_resource r);
const char *td_acl_op_name(td_acl_op op);
const char *td_acl_pattern_name(td_acl_pattern p);
const char *td_acl_permission_name(td_acl_permission p);
td_acl_resource td_acl_resource_parse(const char *s);
td_acl_op td_acl_op_parse(const char *s);
td_acl_pattern td_acl_pattern_parse(const char *s);
td_acl_permission td_acl_permission_parse(const char *s);

#ifdef __cplusplus
}
#endif
#endif /* TIDINGS_H */
