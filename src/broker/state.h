/*
 * state.h: the broker's own state kept as records in compacted internal topics (docs/storage.md,
 * "State topics"), as Kafka keeps its own in __consumer_offsets and __transaction_state.
 *
 * A state topic is an ordinary topic of the engine (segments, indexes, group commit, metrics)
 * with cleanup.policy=compact, created by the engine at open when missing, that no client may
 * write, delete or turn into a non-compacted topic. Each record is keyed: the key starts with
 * an int16 that says what kind of record it is (and the version of the key's fields), the value
 * with an int16 version of its fields; a null value (a tombstone) deletes the key. The latest
 * record of a key is its state, so replaying a state topic from its log start rebuilds the
 * state, and the cleaner can compact away everything else.
 *
 * Writers append one batch per call and wait for it to be durable under the topic's fsync
 * policy (state.topic.fsync, `always` by default) before they answer: the same group commit as
 * events, so that many writers waiting together share one fsync.
 *
 * The topics:
 *   __consumer_offsets  committed offsets of consumer groups (group_state.c) and their
 *                       membership (group_meta.c), in Kafka's record formats; partitions:
 *                       offsets.topic.num.partitions (1).
 *   __cluster_state     the engine's own counters: the producer-id block (pid_state.c).
 *   __queue_state       queue groups: definitions, positions, pending entries (queue_state.c).
 *   __xgroup_state      Redis consumer groups: groups, consumers, pending entries
 *                       (xgroup_state.c).
 *   __schemas           the schema registry: schema versions, compatibility levels, modes and
 *                       the schema-ID counter (registry_store.c), one partition.
 *   __transaction_state the transaction coordinator: per transactional id its producer, epoch,
 *                       state and partitions, in Kafka's format (txn.c), one partition.
 *
 * Thread-safe. The functions below take the engine's locks they need; a caller holding the
 * engine's admin_mu may call them (the order is admin_mu, then the topic table's lock, then
 * the state's own mutex).
 */
#ifndef TD_BROKER_STATE_H
#define TD_BROKER_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "storage/storage.h"

#define STATE_OFFSETS_TOPIC "__consumer_offsets"
#define STATE_CLUSTER_TOPIC "__cluster_state"
#define STATE_QUEUES_TOPIC "__queue_state"
#define STATE_XGROUPS_TOPIC "__xgroup_state"
#define STATE_SCHEMAS_TOPIC "__schemas"
#define STATE_TXNS_TOPIC "__transaction_state"

typedef enum state_topic_id {
    STATE_OFFSETS = 0,
    STATE_CLUSTER = 1,
    STATE_QUEUES = 2,  /* queue groups (queue_state.c) */
    STATE_XGROUPS = 3, /* Redis consumer groups (xgroup_state.c), one partition */
    STATE_SCHEMAS = 4, /* the schema registry (registry_store.c), one partition */
    STATE_TXNS = 5,    /* the transaction coordinator (txn.c), one partition */
    STATE_NTOPICS
} state_topic_id;

/* Whether `name` is an internal topic (whether or not it exists yet). */
bool state_topic_internal(const char *name);

/* Creates the state topics that are missing, replays them into the modules that keep state on
 * them, and migrates what an older data directory kept in the catalog. At engine open, after the
 * topics are loaded and the flusher runs. */
int state_open(td_engine *e);
/* Releases the state topics (before the engine closes its topics). */
void state_close(td_engine *e);

/* The partitions of a state topic. */
int32_t state_partitions(td_engine *e, state_topic_id which);
/* The partition of a state topic that holds the records of `id` (a group name): Kafka's rule,
 * abs(Java's String.hashCode(id)) % partitions. */
int32_t state_partition_for(td_engine *e, state_topic_id which, const char *id);

/*
 * Appends events[0..n) (keys set; value NULL for a tombstone) as one batch to a partition of a
 * state topic, without waiting: *end is the offset to wait for (state_wait/state_when_durable).
 * The caller serializes appends whose order matters (the modules hold their own mutex across
 * the append and the change of their in-memory state, so that memory and log agree in order).
 */
int state_append(td_engine *e, state_topic_id which, int32_t partition, const td_event *events,
                 size_t n, int64_t *end);
/* The end of what was appended to a partition of a state topic (durable or not), or -1. */
int64_t state_log_end(td_engine *e, state_topic_id which, int32_t partition);
/* Blocks until offsets below end are durable under the state topic's policy. */
int state_wait(td_engine *e, state_topic_id which, int32_t partition, int64_t end);
/* state_wait for the partition's only writer (part_wait_durable_solo). */
int state_wait_solo(td_engine *e, state_topic_id which, int32_t partition, int64_t end);
/* Calls cb(arg, rc) once they are (on the flusher thread under fsync=always, else at once in
 * this thread). With cb NULL, only asks for a sync soon. 0, or the error (cb not called). */
int state_when_durable(td_engine *e, state_topic_id which, int32_t partition, int64_t end,
                       td_durable_cb cb, void *arg);

/* Reads every record of every partition of a state topic from its log start, in offset order
 * per partition, calling fn(arg, partition, ev). fn returns 0 to go on. */
typedef int (*state_replay_fn)(void *arg, int32_t partition, const td_event *ev);
int state_replay(td_engine *e, state_topic_id which, state_replay_fn fn, void *arg);

/* Encoding helpers for record formats (big-endian, Kafka's "string": int16 length, -1 null). */
/* Each returns 0 or -ENOMEM (TD_ETOOBIG for a string above 32767 bytes); callers OR them. */
int state_put16(td_buf *b, int16_t v);
int state_put32(td_buf *b, int32_t v);
int state_put64(td_buf *b, int64_t v);
int state_put_str(td_buf *b, const char *s); /* NULL: length -1 */

typedef struct state_reader {
    const uint8_t *p;
    size_t n, pos;
    bool bad; /* set by a read past the end or a bad length */
} state_reader;
int16_t state_get16(state_reader *r);
int32_t state_get32(state_reader *r);
int64_t state_get64(state_reader *r);
/* A malloc'd copy of a string (NULL for a null string, or on error: check r->bad). */
char *state_get_str(state_reader *r);

/* Committed offsets (group_state.c): replayed at open, migrated from the catalog. */
int gstate_open(td_engine *e);
void gstate_close(td_engine *e);
/* The latest GroupMetadata value (key version 2) of each group the replay found, handed once to
 * the coordinator (group_meta.c decodes them); free with gstate_meta_free. */
typedef struct gstate_meta {
    char *group;
    void *value;
    size_t len;
} gstate_meta;
void gstate_take_metadata(td_engine *e, gstate_meta **out, size_t *n);
void gstate_meta_free(gstate_meta *v, size_t n);
/* Tombstones for every offset of a deleted topic (the engine calls it under admin_mu). */
void gstate_forget_topic(td_engine *e, const char *topic);

/* Producer ids (pid_state.c): the block, replayed at open, migrated from the catalog. */
int pid_state_open(td_engine *e);

#endif /* TD_BROKER_STATE_H */
