/*
 * broker.h: the broker layer's interface for the layers above it that need more than the public
 * API (the network server, in the Kafka issue): direct access to a topic's partitions, so that
 * a fetch can send a segment range with sendfile and a produce can wait for durability without
 * blocking an event loop.
 *
 * Everything here is implemented by broker/engine.c on the same engine as include/tidings.h.
 */
#ifndef TD_BROKER_H
#define TD_BROKER_H

#include "storage/storage.h"

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
int broker_produce_nowait(td_topic_ref *t, const td_event *events, size_t n,
                          td_produce_result *results, int64_t *ends);

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
 * nothing) as records of the internal topic __consumer_offsets (state.h), and waits until they
 * are durable under its policy. The _async form returns at once: cb(arg, rc) runs once the
 * records are durable (on the flusher thread, or in this thread when the policy does not wait);
 * a non-zero return means nothing was written and cb will not run.
 */
int broker_group_commit(td_engine *e, const char *group, const td_offset_commit *offsets,
                        size_t n, int64_t now_ms);
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

#endif /* TD_BROKER_H */
