/*
 * delivery.h: the delivery core under the broker's two kinds of at-least-once groups, queue
 * groups (queue.h) and Redis consumer groups (xgroup.h). What they share lives here, once:
 *
 *   the rules     when a delivery's deadline passes, when a failed entry is due again (the
 *                 backoff and its jitter), when it is dead instead (max.deliveries);
 *   entry state   delivery_entry: an entry's state (in flight, waiting, held, dead), deadline or
 *                 due time, deliveries, failure times and owner, and its transitions (deliver,
 *                 extend, fail into waiting or dead, claim, hold and release, done); and its
 *                 pending form delivery_pending, Redis's model of the same states: the last
 *                 delivery time and a 64-bit count, the state and due time derived from them by
 *                 the rules, with its transitions (deliver, claim) (delivery_entry.c; below, why
 *                 two forms). A front end embeds one in each of its entries and indexes them its
 *                 own way: a queue group's entries embed a delivery_entry, a Redis group's
 *                 pending entries a delivery_pending;
 *   the sweep     delivery_sweep and delivery_sweep_pending: the walk over a front end's entries
 *                 (spans of its arrays) that fails those whose deadline passed, or finds those
 *                 due for redelivery and those dead (delivery_entry.c);
 *   the service   one thread per engine (delivery.c) that runs the front ends' timed work: the
 *                 due-time sweep (deadlines that passed, redeliveries falling due), dead letters
 *                 copied out, and the Redis groups' XDEL journal; it starts when a front end
 *                 first has such work and serves both;
 *   dead letters  the copy of a dead entry's event to its dead-letter topic with the x-dlq-*
 *                 headers (delivery_dlq.c);
 *   state records a batch of keyed records appended to a state topic (state.h) in bounded
 *                 batches, and the one rule for a record that a replay does not understand
 *                 (delivery_recs.c; docs/storage.md "State topics");
 *   metrics       the one writer of both front ends' series at a scrape (delivery_metrics.c).
 *
 * Each front end keeps what is its own: how its entries are indexed (by partition and offset; by
 * stream ID), its protocol's semantics (Redis's claims and idle times through XPENDING and
 * XCLAIM), and its record formats, which existing data directories hold.
 *
 * Broker-internal: the listeners use queue.h and xgroup.h.
 */
#ifndef TD_BROKER_DELIVERY_H
#define TD_BROKER_DELIVERY_H

#include <stdbool.h>
#include <stdint.h>

#include "base/metrics.h"
#include "broker/broker.h"
#include "broker/state.h"

/* ---------------------------------------------------------------------------------------------
 * The rules (delivery.c). Pure.
 */
/* How long a failed dead letter (or a journal write) waits before it is tried again. */
#define DELIVERY_RETRY_MS 1000

/* The delay before the next delivery after the n-th failed one; r in [0, 1) spreads it by the
 * policy's jitter (0.5: none). Grows by backoff.multiplier from backoff.initial.ms up to
 * backoff.max.ms. */
int64_t delivery_backoff(const td_queue_policy *pol, int32_t failures, double r);

/* When an entry delivered `deliveries` times, whose last delivery failed at failed_ms (a nack,
 * or its deadline passing), is due again: after delay_ms when it is not negative (a nack's
 * explicit delay), else after the backoff. *dead is set, and failed_ms returned, when that was
 * the last delivery the policy allows: the entry goes to the dead-letter topic instead. */
int64_t delivery_retry_at(const td_queue_policy *pol, int32_t deliveries, int64_t failed_ms,
                          int64_t delay_ms, double r, bool *dead);

/* A number in [0, 1) fixed by the bytes of key: jitter that a restart computes again the same
 * (the Redis groups' entries keep no due time, only their last delivery). */
double delivery_jitter_of(const void *key, size_t n);

/* The failure text of a deadline that passed ("not acknowledged within N ms"), into buf. */
void delivery_timeout_text(const td_queue_policy *pol, char *buf, size_t len);

/* ---------------------------------------------------------------------------------------------
 * The entry state (delivery_entry.c): what a front end has delivered, and its transitions.
 *
 *   (new) --deliver--> IN FLIGHT --ack--> gone
 *                         |  ^  \--extend (a later deadline)
 *            nack or the  |  |
 *            deadline     v  | deliver (when due)
 *                       WAITING (due at `at`)     or  DEAD (the last delivery allowed failed;
 *                                                      copied to the dead-letter topic, then gone)
 *   HELD: not deliverable before an earlier entry of its key is done (ordering=key); released
 *   to WAITING, due at once.
 *
 * A front end embeds one in each of its entries and indexes them its own way (a queue group per
 * partition by offset); it keeps what belongs to it (the owner's slot is its own number) and the
 * records that persist the fields. The values of the states are those of the queue groups'
 * records (docs/storage.md "State topics"): they must not change.
 */
enum {
    DELIVERY_GONE = 0, /* done: a gap its front end removes */
    DELIVERY_INFLIGHT = 1,
    DELIVERY_WAITING = 2,
    DELIVERY_HELD = 3,
    DELIVERY_DEAD = 4,
    /* A queue group's event not due yet (delayed delivery, docs/queues.md#delayed-delivery):
     * never delivered, due at `at`. Kept apart from the other entries until then (queue_sched.c),
     * so it appears in records only. */
    DELIVERY_SCHEDULED = 5,
};

typedef struct delivery_entry {
    int64_t at; /* in flight: the deadline; waiting: when due; else 0 */
    int64_t first_fail, last_fail;
    int32_t deliveries;
    int32_t owner; /* in flight: the front end's number of its consumer, or -1 (unknown) */
    uint8_t state;
    uint8_t flags; /* the front end's own bits (kept here, where the padding would be) */
} delivery_entry;

/* A new entry: not delivered, no owner. */
void delivery_entry_init(delivery_entry *d);
/* Delivered (again) to owner: in flight until now + timeout_ms; its deliveries counted. The
 * deadline is returned (for the front end's lower bound of the next deadline). */
int64_t delivery_deliver(delivery_entry *d, int32_t owner, int64_t now, int64_t timeout_ms);
/* The delivery failed at now (a nack, or its deadline passing): the failure times set, the owner
 * released (-1), and by delivery_retry_at either WAITING due at the time returned (delay_ms >= 0:
 * a nack's explicit delay; else the backoff, spread by r) or DEAD (0 returned, *dead set). */
int64_t delivery_fail(delivery_entry *d, const td_queue_policy *pol, int64_t now, int64_t delay_ms,
                      double r, bool *dead);
/* An in-flight entry's deadline moved to now + ms (ms < 0: the policy's ack timeout). */
int64_t delivery_extend(delivery_entry *d, const td_queue_policy *pol, int64_t now, int64_t ms);
/* An in-flight entry claimed by (transferred to) another owner, with the deadline `at`; its
 * deliveries counted again when count. */
void delivery_claim(delivery_entry *d, int32_t owner, int64_t at, bool count);
/* A new entry held back (ordering=key): HELD, not deliverable until released. */
void delivery_hold(delivery_entry *d);
/* A held entry released: WAITING, due at now. */
void delivery_release(delivery_entry *d, int64_t now);
/* Done (acknowledged, dead-lettered, or its event gone): GONE, no owner. */
void delivery_done(delivery_entry *d);

/* ---------------------------------------------------------------------------------------------
 * The due-time sweep (delivery_entry.c): walks a front end's entries and fails those whose
 * deadline passed.
 *
 * The front end supplies its entries as spans of an array (a queue group: one per partition),
 * the delivery_entry of element k at base + k * stride, through next(arg, span) (false: no more);
 * and expired(arg, k, d, now), called for an in-flight entry whose deadline passed, which fails
 * it (delivery_fail and what the front end adds: its consumer's count, the failure's text, its
 * record). The sweep returns the earliest deadline still ahead (INT64_MAX: none) and sets *dead
 * when an entry is dead (waiting for its dead letter). Spans, not one call per entry: the loop
 * over a partition's entries stays a plain loop.
 */
typedef struct delivery_span {
    void *base;       /* the first element's entry (delivery_entry, or delivery_pending) */
    size_t n, stride; /* elements, and bytes from one element's entry to the next */
} delivery_span;

typedef struct delivery_walk {
    bool (*next)(void *arg, delivery_span *span);
    void (*expired)(void *arg, size_t k, delivery_entry *d, int64_t now);
    void *arg;
} delivery_walk;

int64_t delivery_sweep(const delivery_walk *w, int64_t now, bool *dead);

/* ---------------------------------------------------------------------------------------------
 * The pending form of an entry (delivery_entry.c): Redis's model of the same states.
 *
 * A Redis group's pending entry is in flight from its delivery until XACK, whatever happens to
 * its deadline: Redis keeps its owner and shows it in XPENDING, and XCLAIM's IDLE, TIME and
 * RETRYCOUNT set its last delivery time and its delivery count (a 64-bit number) to what the
 * client says. So the entry keeps exactly those two numbers, and its state under a queue policy
 * is derived from them by the rules, never stored: in flight until delivered + ack.timeout.ms;
 * then, after the backoff, due for redelivery (WAITING), or, past max.deliveries, DEAD (for the
 * dead-letter topic at its deadline). A derived state cannot disagree with what a client set
 * through XCLAIM, and a restart derives it again the same (the jitter is fixed by the entry's
 * ID and count, delivery_pending_jitter).
 *
 * Why not delivery_entry itself: it would have to carry the last delivery time and a 64-bit
 * count besides its own fields. A queue group's entry (72 bytes, one per unacknowledged event)
 * would grow to 80 for fields it never uses, and a Redis pending entry would grow from 40 to
 * 64 bytes (its ID and consumer, 24, plus 40) for a stored state, deadline, owner number and
 * failure times that Redis's semantics must override anyway. This form costs a pending entry
 * the 16 bytes it had before; the transitions, the due-time rule and the sweep are the core's.
 */
typedef struct delivery_pending {
    int64_t delivered;  /* the last delivery's time (ms since the epoch) */
    int64_t deliveries; /* times delivered: XPENDING's count, set by XCLAIM RETRYCOUNT */
} delivery_pending;

/* A new pending entry delivered at now, counted 0 times yet (delivery_pending_deliver counts). */
void delivery_pending_init(delivery_pending *p, int64_t now);
/* Delivered (again) at now: counted once more. */
void delivery_pending_deliver(delivery_pending *p, int64_t now);
/* Claimed (XCLAIM, XAUTOCLAIM) with the last delivery time `delivered`: its count set to
 * retry_count when that is not negative (RETRYCOUNT), else counted once more when count (not
 * JUSTID). */
void delivery_pending_claim(delivery_pending *p, int64_t delivered, int64_t retry_count,
                            bool count);
/* The jitter of the entry whose identity is the n bytes at id (a stream ID): fixed by them and
 * its count, so the due time is the same after a restart and moves with each delivery. */
double delivery_pending_jitter(const delivery_pending *p, const void *id, size_t n);
/* When it falls due under pol: redelivery after the deadline and backoff, or (dead) the
 * deadline itself, spread by r (delivery_pending_jitter). */
int64_t delivery_pending_due(const delivery_pending *p, const td_queue_policy *pol, double r);
/* Whether it is past the last delivery pol allows: dead once due. */
bool delivery_pending_dead(const delivery_pending *p, const td_queue_policy *pol);

/* The due-time sweep over pending entries: spans as delivery_sweep's (base: a delivery_pending),
 * all under one policy (a Redis group's). jitter(arg, k, p) gives element k's jitter, or a
 * negative number when there is no entry there (a hole); dead(arg, k, p, now) is called for an
 * entry that is due and dead, and returns false to stop (no memory: the sweep runs again).
 * Returns the earliest due time still ahead (a dead entry: looked at again DELIVERY_RETRY_MS
 * later, in case its dead letter failed), and sets *ready when an entry is due for
 * redelivery now. */
typedef struct delivery_pending_walk {
    bool (*next)(void *arg, delivery_span *span);
    double (*jitter)(void *arg, size_t k, const delivery_pending *p);
    bool (*dead)(void *arg, size_t k, const delivery_pending *p, int64_t now);
    const td_queue_policy *pol;
    void *arg;
} delivery_pending_walk;

int64_t delivery_sweep_pending(const delivery_pending_walk *w, int64_t now, bool *ready);

/* ---------------------------------------------------------------------------------------------
 * The service (delivery.c): one thread per engine for the front ends' timed work.
 *
 * A front end attaches once (at open) with its work function and a name for the log. work(arg, now)
 * runs on the service thread, never on two threads at once, without any lock of the service held
 * (it takes the front end's own): it does what is due and returns when it wants to run next
 * (INT64_MAX: not until woken). delivery_wake asks for a run at `at` at the latest (0: now); it may
 * be called under the front end's own mutex (the service's lock is taken after it, never before),
 * and starts the thread on first need. delivery_detach waits for a run in progress to end;
 * the work function is not called after it returns. The thread ends with the last client.
 */
typedef struct delivery_client delivery_client;
typedef int64_t (*delivery_work_fn)(void *arg, int64_t now_ms);

int delivery_attach(td_engine *e, const char *name, delivery_work_fn work, void *arg,
                    delivery_client **out);
/* 0, TD_ECLOSED when the client is detached (or c is NULL), or -EAGAIN when the thread cannot
 * start. */
int delivery_wake(delivery_client *c, int64_t at);
void delivery_detach(delivery_client *c);
/* The due-time sweep's schedule: a front end keeps, per group and under its own mutex, a lower
 * bound of the next time something of the group falls due (*bound); an entry that falls due
 * at `at` lowers it, and when it moves the service is asked to run by then. Cheap when it does
 * not move (the steady state: new deadlines come after the earliest). c may be NULL (the front
 * end is stopping): then only the bound moves. */
void delivery_note_due(delivery_client *c, int64_t *bound, int64_t at);
/* For tests: the service threads running in this process (0 or 1 per engine open). */
int delivery_threads(void);

/* ---------------------------------------------------------------------------------------------
 * Metrics (delivery_metrics.c): both front ends' series, written at a scrape through one helper
 * (the names, help texts and labels are each front end's, as docs/metrics.md lists them).
 */
typedef struct delivery_family {
    const char *name, *help;
    td_metric_type type;
} delivery_family;

/* Writes each of the nfams families with one sample per row: row i's labels are
 * label_values[i * nlabels ...] (named label_names), its value of family f is
 * vals[i * nfams + f]. A row whose first label value is NULL or empty is skipped (its topic was
 * deleted meanwhile). */
void delivery_metrics_write(td_metrics_out *out, const delivery_family *fams, size_t nfams,
                            const char *const *label_names, size_t nlabels,
                            const char *const *label_values, const double *vals, size_t nrows);

/* ---------------------------------------------------------------------------------------------
 * Dead letters (delivery_dlq.c)
 */
/* Copies an event to a dead-letter topic (created with the origin's partition count when
 * missing), into the same partition number, with its key, value, timestamp and headers and the
 * x-dlq-* headers after them (docs/queues.md). 0 when written or when the event no longer exists
 * (retention deleted it: nothing to keep). */
typedef struct delivery_dead {
    const char *topic;
    int32_t partition;
    int64_t offset;
    const char *dlq; /* "": <topic>.dlq would be too long a name */
    td_slice group;  /* binary-safe */
    int32_t deliveries;
    int64_t first_fail, last_fail;
    const char *error; /* "": none */
} delivery_dead;
int delivery_dead_letter(td_engine *e, const delivery_dead *d);

/* ---------------------------------------------------------------------------------------------
 * State records (delivery_recs.c)
 *
 * A batch of keyed records being built: keys and values in buf, each record's place in v.
 * A record is built as: drecs_begin, the key's fields (written to buf, their results passed to
 * drecs_check), then drecs_value and the value's fields and drecs_end, or drecs_tombstone.
 * A field that could not be written (no memory) marks the batch bad.
 */
typedef struct delivery_rec {
    size_t koff, klen, voff, vlen;
    bool tombstone;
} delivery_rec;

typedef struct delivery_recs {
    td_buf buf;
    delivery_rec *v;
    size_t n, cap;
    bool bad;
    bool open; /* the last record was begun and is not ended yet */
} delivery_recs;

void drecs_init(delivery_recs *r);
void drecs_free(delivery_recs *r);
/* Empties the batch; one that grew large (a group's deletion) gives its memory back. */
void drecs_clear(delivery_recs *r);
void drecs_begin(delivery_recs *r);
void drecs_check(delivery_recs *r, int rc);
void drecs_value(delivery_recs *r);
void drecs_end(delivery_recs *r);
void drecs_tombstone(delivery_recs *r);
/* Appends a record copied from another batch's record i. */
void drecs_copy(delivery_recs *r, const delivery_recs *from, size_t i);
/* Keeps records [0, n) (n <= r->n). */
void drecs_truncate(delivery_recs *r, size_t n);
/* Drops records [0, n) (n <= r->n), keeping the others in order. */
void drecs_drop_front(delivery_recs *r, size_t n);

/* The most records and bytes of records in one appended batch: well below a state topic's
 * max.message.bytes (1 MiB), since one change may write many records (a group's deletion, a
 * migration, XREADGROUP without COUNT). A change split in batches may be cut short by a crash
 * between them: each record being a key's whole state, what is replayed is then part of a
 * change no client was answered for. */
#define DELIVERY_BATCH_RECS 2048
#define DELIVERY_BATCH_BYTES (256u << 10)

/* Appends the batch's records to a partition of a state topic, in order, as few batches as the
 * bounds allow: *end (may be NULL) gets the offset to wait for (state_wait), -1 when there was
 * nothing; *done (may be NULL) how many records were appended (all of them on success). The
 * batch is left as it was: the caller clears it, or drops what was appended. A batch marked bad
 * is not appended (-ENOMEM). */
int drecs_append(td_engine *e, state_topic_id which, int32_t partition, const delivery_recs *r,
                 int64_t *end, size_t *done);

/* The one rule for a record of a state topic that the replay does not understand: a key of an
 * unknown kind, a value of an unknown version (written by a newer tidings), or fields that do
 * not parse. Skipping it would lose the state it holds (a pending entry forgotten is an event
 * never redelivered), so the start is refused: logs one line that names the topic, partition,
 * offset and why, and returns TD_ECORRUPT (the replay stops, the engine does not open). */
int delivery_replay_refuse(state_topic_id which, int32_t partition, const td_event *ev,
                           const char *why);

#endif /* TD_BROKER_DELIVERY_H */
