/*
 * queue.h: queue groups on the log (docs/design.md §6), protocol-neutral. The public calls are
 * the td_queue_* functions of include/tidings.h; this header is what the engine and the
 * listeners need besides them.
 *
 * Model. A group reads one topic. Per partition it keeps `next` (the first offset it has not
 * read yet) and the entries in [floor, next) that are not done, sorted by offset; every other
 * offset below `next` is done, and `floor` is the lowest entry (or `next`). An entry is
 *   in flight  delivered to a consumer, with a deadline and the delivery count;
 *   waiting    failed (nacked or timed out), due for redelivery at a time;
 *   held       not yet delivered: an earlier event of its key is not done (ordering=key);
 *   dead       failed max.deliveries times, being copied to the dead-letter topic.
 * Memory per group is bounded by max.in.flight entries, not by the topic.
 *
 * State. Every change appends its records to the internal topic __queue_state (queue_state.c,
 * docs/storage.md): O(1) bytes per entry changed. Acks, nacks, extensions and group changes
 * return once their records are durable, through the group commit of events (calls that arrive
 * together share one fsync).
 *
 * Threads. Every call is thread-safe (one mutex for all groups). The delivery core's service
 * thread (delivery.h, shared with Redis consumer groups; started with the first group) fires
 * deadlines and copies dead events to their dead-letter topics.
 */
#ifndef TD_BROKER_QUEUE_H
#define TD_BROKER_QUEUE_H

#include "broker/broker.h"

typedef struct td_queues td_queues;

/* A delivery's id, "topic-id.partition.offset.deliveries", into buf (TD_QUEUE_ID_MAX bytes,
 * NUL-terminated); returns its length. The one writer of the id's text, for the engine and the
 * HTTP listener, which writes the ids of acknowledged ranges. Called per delivery: no printf. */
size_t queue_id_text(int64_t topic_id, int32_t partition, int64_t offset, int32_t deliveries,
                     char *buf);

/* Replays the engine's queue groups from __queue_state, migrating an older catalog's (the
 * engine's topics and state topics must be open). */
int queues_open(td_engine *e, td_queues **out);
/* Leaves the delivery thread, waits for the records appended, and frees everything. */
void queues_close(td_queues *q);
/* For a server stopping: leaves the delivery thread (a dead letter being written is finished
 * first) and waits until the records appended are durable, while the listeners' loops still
 * run the completions posted (outcomes waiting for their records are answered, later ones get
 * TD_ECLOSED), and no dead letter is written after it. */
void queues_shutdown(td_engine *e);

/*
 * Ack, nack or extend for event loops: applies the outcome at once (results as td_queue_ack's)
 * and, when something changed, returns 1 and calls done(arg, rc) once the change is durable,
 * on the engine's flusher thread, or in this thread before the return when the state topic is
 * not fsync=always (done must not call into the queues: post and return). Returns
 * 0 when nothing changed (done is not called), or an error (TD_ENOTFOUND: no such group).
 */
enum { QUEUE_ACK, QUEUE_NACK, QUEUE_EXTEND };
typedef void (*queue_done_fn)(void *arg, int rc);
int queue_outcome_async(td_engine *e, const char *group, const char *const *ids, size_t n, int op,
                        int64_t ms, const char *error, int *results, queue_done_fn done, void *arg);

/* td_queue_create, td_queue_configure (topic unused) and td_queue_delete (topic and policy
 * unused) for event loops: the change is made at once; returns 1 and calls done(arg, rc) once
 * its records are durable (as queue_outcome_async), or 0 or an error (done is not called). */
enum { QUEUE_CREATE, QUEUE_CONFIGURE, QUEUE_DELETE };
int queue_admin_async(td_engine *e, int op, const char *group, const char *topic,
                      const td_queue_policy *policy, queue_done_fn done, void *arg);

/* The topic (or pattern) a group reads, into topic (len bytes): TD_ENOTFOUND when there is no
 * such group. Cheap (td_queue_describe counts the group's entries): for the listeners' checks
 * before every receive and outcome. */
int queue_group_topic(td_engine *e, const char *group, char *topic, size_t len);

/* Sets the function called when a group may have something new to deliver: after acks and
 * nacks, deadlines that passed, and dead letters written (any thread, under the queues' lock:
 * post work and return). One function per engine; NULL removes it. */
void queue_set_notify(td_engine *e, void (*fn)(void *arg), void *arg);

/* One entry of a partition's state as older versions saved it (catalog_qpart.pending, read
 * once to migrate it: queue_migrate.c), read from *p, which
 * advances: 1 read, 0 at the end, -1 for bytes that are not an entry (a truncated one, an
 * unknown state, an offset not in (after, below), a delivery count out of range). Pure; the
 * error text points into the input. */
typedef struct queue_saved_entry {
    int64_t offset, at, first_fail, last_fail, event_ms;
    uint64_t key_hash;
    int32_t deliveries;
    uint8_t state; /* 1 in flight, 2 waiting, 3 held, 4 dead */
    bool has_key;
    const char *error;
    size_t error_len;
} queue_saved_entry;
int queue_saved_entry_next(const unsigned char **p, const unsigned char *end, int64_t below,
                           int64_t after, queue_saved_entry *out);

/* A policy as the catalog keeps it: "key=value" lines of every key (TD_ETOOBIG if len is too
 * small), and back: defaults, then the lines' keys (unknown ones, from a newer version, and bad
 * values are skipped). Queue groups and Redis consumer groups save their policies so. */
int queue_policy_format(const td_queue_policy *p, char *buf, size_t len);
void queue_policy_parse(const char *text, td_queue_policy *p);

/* A group's dead-letter topic for events of `topic`: the configured one, or <topic>.dlq; false
 * (buf untouched) when that name would be too long. */
bool queue_dlq_name(const char *configured, const char *topic, char *buf, size_t len);

/* Delivery ids: "<topic id>.<partition>.<offset>.<delivery count>". Pure; false for anything
 * else. */
bool queue_id_parse(const char *id, int64_t *topic_id, int32_t *partition, int64_t *offset,
                    int32_t *deliveries);

#endif /* TD_BROKER_QUEUE_H */
