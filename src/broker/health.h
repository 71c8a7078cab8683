/*
 * health.h: health events (docs/health.md). The broker tells of what goes wrong, and of what
 * recovers, as events on its system topics: $sys.groups, $sys.lag, $sys.queues, $sys.storage,
 * $sys.clients and $sys.cluster. Clients read them like any other topic (Kafka, Redis, HTTP/SSE,
 * queue groups; the pattern $sys.# takes them all) and cannot write, delete or grow them.
 *
 * Each event is a JSON object with a versioned shape ({"version":1, "type", "time", "time_ms",
 * then the type's fields}), keyed by the thing it is about (a group, a queue, a topic, a user),
 * with the header tidings-health-type naming its type.
 *
 * Emitting never blocks the work that causes it: health_emit checks the type's rate limit
 * (health.events.rate per second, each type its own bucket), formats the event and queues it
 * (at most HEALTH_QUEUE_MAX); the health thread appends it. What a limit or a full queue drops
 * is counted (tidings_health_events_total{result="dropped"}) and said in the type's next event
 * ("suppressed": n). The same thread looks, every health.check.interval.ms, at what no single
 * call site sees: groups' lag against thresholds, the disk's usage, partitions gone offline,
 * slow fsyncs.
 *
 * Any thread, under any lock of the caller's: health_emit takes only the health module's own
 * mutex, which the health thread never holds while it calls into the engine.
 */
#ifndef TD_BROKER_HEALTH_H
#define TD_BROKER_HEALTH_H

#include <stddef.h>
#include <stdint.h>

#include "broker/broker.h"

#define HEALTH_TOPIC_PREFIX "$sys."
#define HEALTH_VERSION 1
#define HEALTH_QUEUE_MAX 1024

typedef enum health_type {
    HEALTH_GROUP_MEMBER_JOINED,
    HEALTH_GROUP_MEMBER_LEFT,
    HEALTH_GROUP_MEMBER_TIMED_OUT,
    HEALTH_GROUP_REBALANCE_STARTED,
    HEALTH_GROUP_REBALANCE_COMPLETED,
    HEALTH_LAG_OVER,
    HEALTH_LAG_RECOVERED,
    HEALTH_QUEUE_DEAD_LETTERED,
    HEALTH_QUEUE_REDRIVE_STARTED,
    HEALTH_QUEUE_REDRIVE_FINISHED,
    HEALTH_QUEUE_CIRCUIT_OPENED,
    HEALTH_QUEUE_CIRCUIT_CLOSED,
    HEALTH_STORAGE_DISK_HIGH,
    HEALTH_STORAGE_DISK_OK,
    HEALTH_STORAGE_PARTITION_OFFLINE,
    HEALTH_STORAGE_FSYNC_SLOW,
    HEALTH_CLIENT_AUTH_FAILED,
    HEALTH_CLIENT_PRODUCER_FENCED,
    HEALTH_CLUSTER_BROKER_JOINED,
    HEALTH_CLUSTER_BROKER_LEFT,
    HEALTH_CLUSTER_CONTROLLER_CHANGED,
    HEALTH_CLUSTER_LEASE_LOST,
    HEALTH_CLUSTER_ETCD_UNREACHABLE,
    HEALTH_CLUSTER_ETCD_REACHABLE,
    HEALTH_NTYPES
} health_type;

/* The type's name ("group.member_joined") and the topic it goes to ("$sys.groups"). */
const char *health_type_name(health_type t);
const char *health_type_topic(health_type t);

/* Whether name is one of the system topics' names ($sys. and anything after): the broker
 * alone writes them. */
bool health_topic_name(const char *name);

/* One field of an event: a string (s; NULL writes null) or an integer. */
typedef struct health_field {
    const char *name;
    const char *s;
    int64_t i;
    bool is_int;
} health_field;
#define HF_STR(n, v) ((health_field){.name = (n), .s = (v)})
#define HF_INT(n, v) ((health_field){.name = (n), .i = (int64_t)(v), .is_int = true})

/* Queues an event of type about key (NULL: none) with fields f[0..n), if health events are on
 * and the type's rate allows it. Never blocks; never fails the caller. */
void health_emit(td_engine *e, health_type type, const char *key, const health_field *f, size_t n);

/* Stops the health thread's appends until health_close (events go on being queued, and the
 * close appends them): a stopping server calls it before it stops its loops and removes its
 * hooks, which the appends would otherwise call into, as queues_shutdown does for the delivery
 * thread. Waits for an append in progress. */
void health_quiesce(td_engine *e);

/* Whether health events are on (one atomic load): call sites with costly fields ask first. */
bool health_on(td_engine *e);

/* A Kafka producer fenced by a newer epoch of its transactional id or producer id (the
 * listener's answer PRODUCER_FENCED / INVALID_PRODUCER_EPOCH). */
void health_producer_fenced(td_engine *e, const char *topic, int32_t partition, int64_t producer_id,
                            int16_t epoch, const char *client_id);

#endif /* TD_BROKER_HEALTH_H */
