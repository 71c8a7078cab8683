/*
 * engine_int.h: what the files of broker/ share: the engine and topic structures.
 */
#ifndef TD_BROKER_ENGINE_INT_H
#define TD_BROKER_ENGINE_INT_H

#include <pthread.h>
#include <sys/types.h>

#include "broker/broker.h"
#include "storage/storage.h"

#define TD_MAX_PARTITIONS 100000

typedef struct td_topic {
    struct td_engine *engine;
    char name[TD_TOPIC_NAME_MAX + 1];
    int64_t id;
    int64_t created_ms;
    pthread_mutex_t cfg_mu; /* guards cfg (alter runs while producers read it) */
    td_topic_config cfg;
    int32_t nparts; /* changes only under the engine's write lock */
    td_part **parts;
    int64_t *last_sync_ms; /* per partition, for fsync=interval (background thread only) */
    uint32_t round_robin;  /* atomic */
    int refs;              /* atomic: the table's reference plus iterators' and acquirers' */
    bool deleted;          /* atomic */
    bool system;           /* a system topic of health events ($sys.*, health.h): untraced */
    /* Its series in the engine's metrics (events and bytes appended and read). */
    td_metric *m_events_in, *m_bytes_in, *m_events_out, *m_bytes_out;
    /* Its series of tidings_schema_events_total (registry_check.c), looked up at the first
     * check and then read and set atomically: accepted, then each reason of a rejection. */
    td_metric *m_schema[6];
    /* Partition arrays replaced by add_partitions, freed with the topic. */
    td_part ***retired;
    size_t nretired;
} td_topic;

struct td_engine {
    char *dir;
    const td_io *io;
    int lock_fd;
    td_options opts;
    td_catalog *cat;
    td_reserve *reserve;   /* the disk reserve (storage.h), shared by every partition */
    struct td_keybudget *keys; /* the key indexes' memory (table.c; storage/keyindex.h) */
    td_indexer *indexer; /* catches up the key and trace indexes (storage.h), for every partition */
    int64_t reserve_retry_ms; /* the background thread's next restore attempt (its own; 0:
                               * the reserve was whole at its last tick) */
    pthread_rwlock_t lock; /* the topic table */
    td_topic **topics;     /* sorted by name */
    size_t ntopics, topics_cap;
    pthread_mutex_t admin_mu; /* one administrative change at a time */
    /* Topics whose partitions' files a creation or a growth is making outside admin_mu (it
     * takes long for many partitions, and offsets and other topics must not wait): another
     * change of the same topic is refused meanwhile. Under admin_mu. */
    char (*busy)[TD_TOPIC_NAME_MAX + 1];
    size_t nbusy, busy_cap;
    /* Partitions those creations and growths are making, counted against opts.max_partitions
     * with the table's until they are in it. Under admin_mu. */
    int64_t parts_pending;
    pthread_t bg;
    bool bg_running;
    pthread_mutex_t bg_mu;
    pthread_cond_t bg_cv;
    bool stopping;
    /* The high-watermark hooks every partition calls (broker_add_advance_hook): fn and arg are
     * read atomically; arg is set before fn. */
    struct {
        void (*fn)(void *arg);
        void *arg;
    } hooks[4];
    /* The change hook (broker_set_change_hook): fn and arg read atomically, arg set first. */
    struct {
        broker_change_fn fn;
        void *arg;
    } change_hook;
    uint64_t topics_gen; /* atomic: broker_topics_generation */
    /* The flusher: fsyncs partitions that asynchronous producers wait on. */
    pthread_t flusher;
    bool flusher_running;
    pthread_mutex_t flush_mu;
    pthread_cond_t flush_cv;
    struct flush_req *flushq;
    size_t nflushq, flushq_cap;
    bool flush_stopping;
    /* Producer ids for idempotent producers: handed out from a block reserved in the state
     * topic __cluster_state (pid_state.c). */
    pthread_mutex_t pid_mu;
    int64_t pid_next, pid_limit;
    /* The metrics registry every layer counts into (broker_metrics). */
    td_metrics *metrics;
    td_metric_family *f_events_in, *f_bytes_in, *f_events_out, *f_bytes_out;
    td_metric *fsync_hist;
    /* The fsyncs slower than health.fsync.ms (the health thread reads and resets it). */
    part_slow fsync_slow;
    /* The delivery core's service thread (delivery.h), shared by queue groups and Redis
     * consumer groups: made by the first to attach, freed with the last. Under admin_mu. */
    struct td_delivery *delivery;
    /* Queue groups (queue.h). */
    struct td_queues *queues;
    /* Redis consumer groups (xgroup.h). */
    struct td_xgroups *xgroups;
    /* Authorization (authz.h): super users and the anonymous rule; set once, before the
     * listeners start, and read without a lock afterwards. NULL: the defaults. */
    struct td_authz *authz;
    /* Client quotas (quota.h). */
    struct td_quotas *quotas;
    /* Bumped by every user change (users.c), atomic: caches of verified passwords (the HTTP
     * listener's) drop what they hold when it moves. */
    uint64_t users_gen;
    /* The ACL store's in-memory form (acl.c), loaded at open. */
    struct td_acls *acls;
    /* The log cleaner's thread (log_cleaner.c), or NULL when it does not run. */
    struct td_log_cleaner *cleaner;
    /* The internal state topics (state.c) and the committed offsets kept on them
     * (group_state.c). */
    struct td_state *state;
    /* The transaction coordinator (txn.c), after the state topics. */
    struct td_txns *txns;
    struct td_gstate *gstate;
    /* The schema registry (registry.h), replayed from __schemas at open. */
    struct td_registry *registry;
    /* The OTLP span exporter (otlp.h, spans.c), atomic; NULL: export off. Owned. */
    struct otlp_exporter *otlp;
    /* Health events (health.h, health.c); NULL: off. Set at open, before other threads use
     * the engine, and cleared at close after they stopped. */
    struct td_health *health;
};

/* The topic table's helpers that engine.c and engine_admin.c share. engine_topic_new makes a
 * topic (without partitions) from its catalog row, engine_topic_free frees one whose references
 * are gone; engine_open_parts opens partitions [from, to) of t into parts; the table functions
 * run under the engine's lock (find: the index of name or -1; insert keeps the order by name);
 * engine_topic_metrics_remove drops a deleted topic's series; engine_internal_refused is
 * TD_ENAME for a client's change of an internal state topic (`what` names it), else 0. */
td_topic *engine_topic_new(td_engine *e, const td_catalog_topic *ct);
void engine_topic_free(td_topic *t);
int engine_open_parts(td_engine *e, td_topic *t, td_part **parts, int32_t from, int32_t to);
ssize_t engine_table_find(td_engine *e, const char *name);
int engine_table_insert(td_engine *e, td_topic *t);
void engine_topic_metrics_remove(td_engine *e, const char *name);
/* The topic of a reference (registry_check.c keeps its schema series on it). */
td_topic *engine_topic_of(const td_topic_ref *r);
/* Drops a deleted topic's series of tidings_schema_events_total (registry_check.c). */
void registry_check_metrics_remove(td_engine *e, const char *name);
int engine_internal_refused(td_engine *e, const char *name, const char *what);
/* Health events (health.c): open makes the system topics and starts the thread (when
 * opts.health_events), close stops it; engine_produce_own appends the broker's own events to a
 * topic clients cannot write (broker_produce_nowait without the refusal). */
int txns_open(td_engine *e);
void txns_close(td_engine *e);
int health_open(td_engine *e);
void health_close(td_engine *e);
int engine_produce_own(td_topic_ref *r, const td_event *events, size_t n, int64_t *ends);
int engine_topic_create_own(td_engine *e, const char *name, int32_t partitions,
                            const td_config_entry *config, size_t config_n);
/* Calls the change hook (changes.c), if one is set, for a change to topic t (not an internal
 * one): the kind, the partition (-1: the whole topic), and for appends the count and end. */
void engine_note_change(td_engine *e, int kind, const struct td_topic *t, int32_t partition,
                        int64_t count, int64_t end);
/* The span of n events appended to a partition from base_offset (spans.c); nothing when span
 * export is off. engine_otlp_close stops and frees the exporter. */
void engine_trace_events(td_engine *e, const char *topic, int32_t partition,
                         const td_event *events, size_t n, int64_t base_offset, int64_t start_ms);
void engine_otlp_close(td_engine *e);
/* The span of one event's hop inside the broker (spans.c), a child of its traceparent header:
 * op "dead_letter" (ev read from topic, group the queue group's name, binary-safe) or
 * "redrive" (ev read from the dead-letter topic). engine_trace_received: a CONSUMER span per
 * message a queue group's receive hands out. Nothing when span export is off. */
void engine_trace_hop(td_engine *e, const char *op, const char *topic, const td_event *ev,
                      const void *group, size_t group_len, int64_t start_ms);
void engine_trace_received(td_engine *e, const char *group, const td_queue_msg *v, size_t n,
                           int64_t start_ms);

/* Opens an engine over an io table (tests pass fault-injecting tables). */
int engine_open_io(const char *dir, const td_options *opts, const td_io *io, td_engine **out);

void topic_ref(td_topic *t);
void topic_unref(td_topic *t);
/* Under the engine's read lock. */
td_topic *engine_find_locked(td_engine *e, const char *name);
int engine_part_locked(td_engine *e, const char *topic, int32_t partition, td_part **out);
/* iter.c: an iterator of the events of a partition's trace index under (kind, id) (storage.h
 * part_trace_offsets), in offset order; traces.c checks their headers. */
int iter_open_trace(td_engine *e, const char *topic, int32_t partition, int kind,
                    const void *id, size_t n, td_iter **out);

/* A copy of ev whose bytes live in one malloc'd block (returned; NULL when out of memory) that
 * starts with the headers' array: out->headers always points at the block (header_count 0 when
 * there are none), so freeing out->headers frees the copy. Headers whose key starts with
 * drop_prefix (when not NULL) are left out. (iter.c) */
/* Enables or drops the key index of a partition as its topic's cleanup.policy says (table.c). */
void table_part_config(td_engine *e, td_part *p, const td_topic_config *cfg, const char *label);
/* The key indexes' metrics: memory used and its bound, keys per compacted topic. */
void table_collect(void *arg, td_metrics_out *out);
/* The records of partition `partition` of topic with offsets in [from, to) (part_count_records):
 * to - from but on compacted topics, whose offsets have gaps (table.c). */
int engine_count_records(td_engine *e, const char *topic, int32_t partition, int64_t from,
                         int64_t to, int64_t *n);
/* The span context of a copy the engine makes of an event (a dead letter, a redrive; trace.c):
 * when origin has a valid `traceparent`, writes a child of it (same trace-id and flags, a new
 * span-id) into traceparent (TD_TRACEPARENT_LEN + 1 bytes) and origin's span-id as 16 hex
 * digits into parent_span (17 bytes), and returns TD_TRACEPARENT_LEN; else 0. */
size_t broker_trace_link(const td_event *origin, char *traceparent, char *parent_span);
/* A copy of ev that the engine makes to send it on (a dead letter, a redrive; docs/tracing.md),
 * as broker_event_copy (freed through out->headers): ev's headers without those starting with
 * drop_prefix (may be NULL) and without x-causation-id and x-causation-span-id, its
 * `traceparent` (when valid) replaced in place by a child span (broker_trace_link), then
 * extra[0..nextra), then `x-causation-id: cause` and, when traced, `x-causation-span-id` (the
 * span-id of ev's traceparent). NULL when memory ran out. */
void *broker_event_hop_copy(const td_event *ev, const char *drop_prefix, const char *cause,
                            const td_header *extra, size_t nextra, td_event *out);
void *broker_event_copy(const td_event *ev, const char *drop_prefix, td_event *out);

/* Client quotas (quota.c): loaded from the catalog at open, freed at close. */
int quotas_open(td_engine *e);
void quotas_close(td_engine *e);

/* The log cleaner (log_cleaner.c): started at open when opts.log_cleaner_enable is set and
 * background threads run; stopped at close before the partitions are (it stops within one
 * batch of I/O). */
int log_cleaner_start(td_engine *e);
void log_cleaner_stop(td_engine *e);

/* Frees the authorization state at close (authz.c). */
void broker_authz_free(td_engine *e);
/* Loads the ACLs from the catalog at open / frees them at close (acl.c). */
int broker_acls_open(td_engine *e);
void broker_acls_free(td_engine *e);

#endif /* TD_BROKER_ENGINE_INT_H */
