/*
 * queue_int.h: the in-memory structures of queue groups, shared by queue.c (the model and its
 * operations) and queue_state.c (their records in the state topic __queue_state, replay and
 * migration). Not for other files: the public calls are in include/tidings.h and queue.h.
 */
#ifndef TD_BROKER_QUEUE_INT_H
#define TD_BROKER_QUEUE_INT_H

#include <pthread.h>

#include "broker/delivery.h"
#include "broker/engine_int.h"
#include "broker/queue.h"

#define MAX_ERROR 1024
#define MAX_CONSUMERS 4096
#define CONSUMER_NAME_MAX 64
#define IDLE_WAKE_MS 1000 /* the delivery thread sweeps queue groups at least this often */

/* The queue groups' bits of delivery_entry.flags. QF_AT_READ: a scheduled event taken by its
 * reader in a fallback era (queue_sched.c), which no rescan takes again. */
enum { QF_KEY = 1, QF_TOUCHED = 2, QF_AT_READ = 4 };

/* An entry of a partition: the delivery core's entry state (d: the state, deadline or due time,
 * deliveries, failure times, and the consumer's slot as its owner) and what only a queue group
 * has: the offset it is indexed by, the event's timestamp and key (ordering=key), the last
 * failure's text. d.flags: QF_KEY (the event has a key), QF_TOUCHED (listed in the group's
 * touched entries: its record is written at the flush). */
typedef struct qentry {
    int64_t offset;
    delivery_entry d;
    int64_t event_ms; /* the event's timestamp */
    uint64_t key_hash;
    char *error; /* the last failure's text, or NULL */
} qentry;
/* 72 bytes (64-bit): one per unacknowledged event. The core's entry must not grow it
 * (delivery.h). */
_Static_assert(sizeof(qentry) == 3 * 8 + sizeof(char *) + 40, "a queue entry's size");

/* A delayed event a partition's reader took, not due yet (queue_sched.c): in the partition's
 * heap, not among its entries, until due. */
typedef struct qsched {
    int64_t due, offset, event_ms;
    uint64_t key_hash;
    bool has_key;
    bool at_read; /* taken when read in a fallback era: a rescan would not take it again */
} qsched;

#define QS_NONE INT64_MAX
#define QS_ERAS 5 /* four values of the setting, and a fallback */

typedef struct qpart {
    int32_t partition;
    int64_t topic_id; /* its topic's */
    int64_t next;
    qentry *v; /* sorted by offset */
    size_t n, cap;
    size_t gone; /* entries done (state 0) not yet removed: below a quarter of n */
    td_iter *it; /* positioned at next, for new events; NULL until needed */
    bool dirty;  /* next changed: its position record is written at the flush */
    /* Delayed delivery (queue_sched.c; docs/queues.md#delayed-delivery). sv: the delayed
     * events taken and not due yet, a min-heap by (due, offset). Every delayed event below
     * next that is due at or before hw was taken (it is in sv, an entry, or done); the others
     * are far: the lowest of their offsets is far_from (QS_NONE: none), the earliest of their
     * due times far_min. A rescan of [scan_pos, scan_end) takes those due by scan_to (0: no
     * rescan), and gathers in scan_far_from and scan_far_min what is still farther; the
     * partition's reader takes up to scan_to meanwhile. All of it is in the position record. */
    qsched *sv;
    size_t sn, scap;
    int64_t hw, far_from, far_min;
    int64_t scan_pos, scan_end, scan_to, scan_far_from, scan_far_min;
    /* The topic's delivery.delay.ms as the reader found it, from each offset on (an era), for
     * the rescans of events without a delay header; delay -1: such events were all taken when
     * read (the eras were full). Sorted by `from`; eras no rescan can need any more go. */
    struct qera {
        int64_t from, delay;
    } eras[QS_ERAS];
    int32_t neras;
} qpart;

typedef struct qconsumer {
    char name[CONSUMER_NAME_MAX];
    int32_t inflight;
    int64_t seen_ms;
} qconsumer;

/* A topic the group reads. */
typedef struct qtopic {
    char name[TD_TOPIC_NAME_MAX + 1];
    size_t len;
    int64_t id;
    qpart *parts;
    int32_t nparts;
} qtopic;

/* One partition of one topic: g->all lists them all, rebuilt whenever topics or partitions
 * change (group_sync), so that loops over the partitions need not know about topics. */
typedef struct qref {
    qtopic *t;
    qpart *p;
} qref;

/* An entry whose record is due at the next flush (queue_state.c). */
typedef struct qtouch {
    int64_t topic_id, offset;
    int32_t partition;
} qtouch;

/* The circuit breaker's memory (queue_circuit.c): a sliding window of QC_BUCKETS buckets, each
 * a tenth of circuit.window.ms, counting outcomes and failures; the state and its times. In
 * memory only: a restart starts closed. */
#define QC_BUCKETS 10
typedef struct qcircuit {
    int state;          /* TD_CIRCUIT_* */
    int64_t since_ms;   /* when the state began */
    int64_t open_until; /* OPEN: when it goes half-open */
    int64_t bucket_id[QC_BUCKETS];
    uint32_t calls[QC_BUCKETS], fails[QC_BUCKETS];
    int32_t trials_out, trials_ok; /* HALF_OPEN: trial deliveries made, and acked */
    int64_t opened;                /* times it opened */
} qcircuit;

typedef struct qgroup {
    char name[TD_TOPIC_NAME_MAX + 1];
    char topic[TD_TOPIC_NAME_MAX + 1]; /* a topic, or a pattern (broker/pattern.h) */
    bool wildcard;
    td_queue_policy pol;
    int64_t created_ms; /* also the incarnation that the group's state records carry */
    qtopic *topics;     /* sorted by name */
    size_t ntopics, captopics;
    qref *all;
    size_t nall;
    uint64_t gen; /* the engine's topics generation the topics are in step with, if synced */
    bool synced;
    qconsumer *cons;
    size_t ncons, capcons;
    int64_t pending;   /* entries in all partitions */
    int64_t scheduled; /* delayed events taken, not due yet (in the partitions' heaps) */
    int64_t sched_at;  /* no rescan to start or step before then (qsched_work; a lower bound) */
    bool read_more;    /* a receive stopped reading at its budget of delayed events */
    int64_t acked, redelivered, dead_lettered;
    size_t rr; /* the partition (in all) new events are read from first */
    int64_t dead_retry_at;
    /* Lower bounds that spare scans of every entry: no deadline passes before next_deadline,
     * nothing waiting is due before next_due; has_dead is set when an entry dies. */
    int64_t next_deadline, next_due;
    bool has_dead;
    /* Records not yet appended to the state topic (queue_state.c): the entries changed since
     * the last flush, and the records already encoded (tombstones of a topic dropped). */
    qtouch *touched;
    size_t ntouched, captouched;
    delivery_recs recs;
    qcircuit circuit;
} qgroup;

struct td_queues {
    td_engine *e;
    pthread_mutex_t mu; /* everything below */
    qgroup **g;         /* sorted by name */
    size_t n, cap;
    /* The queues' client of the delivery service (delivery.h), which runs queue_work: NULL
     * once stopping (queues_shutdown). */
    struct delivery_client *dc;
    bool stopping;
    size_t fwd_rr;  /* the forwarding group queue_forward_run looks at first */
    int scan_turns; /* rescan steps left in this run of queue_work (one) */
    uint64_t rng;
    void (*notify)(void *arg);
    void *notify_arg;
};

static inline td_queues *queues_of(td_engine *e)
{
    return e ? e->queues : NULL;
}

static inline void queue_notify(td_queues *q)
{
    if (q->notify)
        q->notify(q->notify_arg);
}

/* queue.c: a receive for `consumer` (td_queue_receive without its checks), under q->mu. */
int queue_receive_locked(td_queues *q, qgroup *g, const char *consumer, size_t max,
                         td_queue_msg **out, size_t *n);
/* queue_forward.c: the forwarding groups' work (forward.to, docs/queues.md#delayed-views), on
 * the delivery thread under q->mu, which it releases while it appends: one batch of one
 * group. Returns when it wants to run next. */
int64_t queue_forward_run(td_queues *q, int64_t now);
/* queue.c: a forwarding group's deliveries acked (ok) or nacked with error, by the broker
 * (clients' outcomes on such a group are refused). Not under q->mu; waits for durability. */
int queue_forward_settle(td_engine *e, const char *group, const char *const *ids, size_t n, bool ok,
                         const char *error);

/* queue.c: the timed work (deadlines, dead letters), run by the delivery service; asks for a
 * run at `at` (0: now). Under q->mu. */
int64_t queue_work(void *arg, int64_t now_ms);
void queue_wake(td_queues *q, int64_t at);
/* A consumer's delivery is gone (done, failed, or its topic dropped): its count goes down. */
void queue_consumer_release(qgroup *g, qentry *en);

/* queue_sched.c: delayed delivery (docs/queues.md#delayed-delivery), under q->mu. */
/* When an event is to be delivered: its tidings-deliver-at header (ms since the epoch), or its
 * timestamp plus its tidings-delay-ms header, or plus the topic's delivery.delay.ms
 * (default_delay); 0: at once. *by_header (may be NULL): whether a header named it. */
int64_t qsched_due_of(const td_event *ev, int64_t default_delay, bool *by_header);
/* The topic's delivery.delay.ms (0 when it is gone). */
int64_t qsched_topic_delay(td_engine *e, const char *topic);
/* The partition's reader is at offset, where the topic's delivery.delay.ms is delay: a new era
 * when it changed. Before qsched_take, for every event read. */
void qsched_read(qpart *p, int64_t offset, int64_t delay);
/* A partition starting out (created, or its topic found): nothing far, nothing scheduled. */
void qsched_part_init(qpart *p);
/* Frees the partition's heap (its records are the caller's: qs_topic_forget). */
void qsched_part_free(qgroup *g, qpart *p);
/* The partition's reader read ev (at p->next - 1), due at `due` (> 0; by_header: a header named
 * it, qsched_due_of): 1 when it is due now (the reader delivers it); else 0: taken (into the
 * heap, its record encoded) when due by the horizon, or remembered as far. -ENOMEM. */
int qsched_take(td_queues *q, qgroup *g, const qtopic *t, qpart *p, const td_event *ev, int64_t due,
                bool by_header, int64_t now);
/* Whether the group may take more delayed events (queue.scheduled.max). */
bool qsched_room(const td_queues *q, const qgroup *g);
/* Scheduled events now due become entries of their partitions, waiting (due at their time),
 * or held behind their key (ordering=key): at most max of them, earliest first (a receive
 * asks for what it can deliver, so that a backlog is delivered in order of due time). Returns
 * the earliest due time still scheduled (QS_NONE: none). */
int64_t qsched_promote(qgroup *g, int64_t now, size_t max);
/* The horizon's work on the delivery thread: raises the horizon, runs rescans a bounded step
 * at a time. Returns when it wants to run again (QS_NONE: not before the horizon nears). */
int64_t qsched_work(td_queues *q, qgroup *g, int64_t now);
/* Adds the records of the partition's scheduled events (state DELIVERY_SCHEDULED; tombstones
 * when tomb) to the group's pending records. */
void qsched_records(qgroup *g, const qtopic *t, const qpart *p, bool tomb);
/* Tests: while hold, rescans start (their position is written) but read nothing. */
void qsched_test_hold_rescans(bool hold);
/* Replay: a scheduled entry's latest record (x->d.at: its due time), back into the heap unless
 * a rescan will take it again; -ENOMEM. */
int qsched_restore(qgroup *g, qpart *p, const qentry *x);

/* queue_circuit.c: the circuit breaker (docs/queues.md#circuit-breaker), under q->mu. */
/* An outcome of a delivery: acked (failed false), or nacked or timed out. Opens or closes. */
void qc_record(td_queues *q, qgroup *g, int64_t now, bool failed);
/* Whether a failure now is the outage's (the circuit is not closed): not counted against
 * max.deliveries. */
bool qc_forgives(const qgroup *g);
/* Moves an open circuit whose time is up to half-open (receivers are told), or a circuit whose
 * policy no longer has a breaker to closed. Returns when it next needs a look (INT64_MAX:
 * never). */
int64_t qc_tick(td_queues *q, qgroup *g, int64_t now);
/* How many of `want` deliveries the circuit allows now (after qc_tick); qc_delivered counts
 * the n made. */
size_t qc_allow(const qgroup *g, size_t want);
void qc_delivered(qgroup *g, size_t n);
/* Its state for td_queue_info. */
void qc_describe(const qgroup *g, int64_t now, td_queue_info *out);

/* queue_group.c */
/* The slot of a consumer of that name, seen now (a new one may take the slot of one idle for
 * idle_ms with nothing in flight); -1 when the group has MAX_CONSUMERS, or without memory. */
int queue_consumer_slot(qgroup *g, const char *name, int64_t now, int64_t idle_ms);
/* Builds a group from its stored definition (a replayed record, or an older catalog's row),
 * inserts it into q, and brings it in step with the topics as they are (every partition at
 * offset 0, to be read from its position record, or written). A missing topic is logged, not
 * an error. *out (may be NULL) gets the group. At open, under nothing. */
int queue_group_restore(td_queues *q, const char *name, const char *topic, const char *policy,
                        int64_t created_ms, qgroup **out);

/* queue.c and queue_group.c, for queue_state.c. */
/* A new entry, in offset order: appended when above every other (new events come in offset
 * order), else inserted (a scheduled event falling due). */
qentry *queue_entry_insert(qgroup *g, qpart *p, int64_t offset);
qtopic *queue_topic_find(qgroup *g, const char *name);
qtopic *queue_topic_by_id(qgroup *g, int64_t id);
qentry *queue_entry_find(qpart *p, int64_t offset, size_t *idx);
int queue_group_sync(td_engine *e, qgroup *g, bool created, bool *changed_out);
qgroup *queue_group_new(const char *name, const char *topic, const td_queue_policy *pol,
                        int64_t created_ms);
void queue_group_free(qgroup *g);
/* Inserts g into q->g (sorted); -ENOMEM. Under q->mu. */
int queue_group_insert(td_queues *q, qgroup *g);
qgroup *queue_group_find(td_queues *q, const char *name, size_t *idx);

/*
 * queue_state.c: the records of __queue_state (docs/storage.md, "State topics"). Under q->mu:
 * a change marks the entry (qs_touch) or the partition's position (p->dirty), and the
 * operation then flushes the group: one append of the records of what changed, O(1) bytes per
 * entry changed, whatever the number of entries pending. *end (may be NULL) is the offset to
 * wait for, -1 when nothing was appended.
 */
void qs_touch(qgroup *g, const qpart *p, qentry *en);
/* Encodes an entry's record into the group's pending records now (scheduled events, which are
 * not entries). */
void qs_entry_record(qgroup *g, const qtopic *t, const qpart *p, int64_t offset, const qentry *en);
int qs_flush(td_queues *q, qgroup *g, int64_t *end);
/* The group's definition, and with `all` the position of every partition (a group created or
 * migrated), appended. */
int qs_group_put(td_queues *q, qgroup *g, bool all, int64_t *end);
/* Tombstones for the group's definition, positions and entries, appended. */
int qs_group_delete(td_queues *q, qgroup *g, int64_t *end);
/* Tombstones for a topic's positions and entries, encoded into the group's pending records
 * (the topic is dropped from the group: deleted, or created again). */
void qs_topic_forget(qgroup *g, const qtopic *t);
/* The state topic's partition of a group. */
int32_t qs_partition(td_queues *q, const qgroup *g);
/* Blocks until the group's records up to end are durable (end < 0: nothing to wait for). */
int qs_wait(td_queues *q, int32_t partition, int64_t end);
/* At open: rebuilds the groups from the state topic, then migrates those an older data
 * directory kept in the catalog. */
int qs_load(td_queues *q);
/* queue_migrate.c: the groups of an older catalog, written as records, then dropped from it. */
int qs_migrate(td_queues *q);

#endif /* TD_BROKER_QUEUE_INT_H */
