/*
 * xgroup.h: Redis consumer groups on partitions (docs/redis.md#consumer-groups), with Redis's
 * model: per stream (a partition) any number of groups, each with a last delivered ID, consumers
 * (names, seen when they last read or claimed) and the pending entries list (PEL: entries
 * delivered and not acknowledged, each with its consumer, last delivery time and delivery
 * count). Nothing is redelivered unless asked (XREADGROUP's history, XCLAIM, XAUTOCLAIM).
 *
 * The state lives in memory, guarded by one mutex, and is saved as records of the compacted
 * internal topic __xgroup_state (xgroup_state.c; docs/storage.md "State topics"): a change
 * appends the records of what it changed, in order, and waits for the group commit of events.
 * Changing calls return a sequence number; xgroups_when_saved and xgroups_wait tell when it is
 * durable.
 *
 * XDEL's removed entries are kept here too (a sorted array of offsets per stream), since group
 * deliveries must skip them; being stream data, they are saved as catalog rows (xdeleted).
 *
 * Streams are named by (topic id, partition): topic ids are never reused, so the state of a
 * deleted topic cannot be taken for a new one's; xgroups_forget_topic drops it.
 */
#ifndef TD_BROKER_XGROUP_H
#define TD_BROKER_XGROUP_H

#include "broker/broker.h"

typedef struct td_xgroups td_xgroups;

int xgroups_open(td_engine *e, td_xgroups **out);
/* Saves what is pending, stops the thread and frees everything. */
void xgroups_close(td_xgroups *x);
/* For a server stopping: saves what is pending and stops the thread now, while the listeners'
 * loops still run the completions it posts. Later changes are kept in memory only. */
void xgroups_shutdown(td_engine *e);
/* Drops every group of a topic (the topic was deleted). */
void xgroups_forget_topic(td_engine *e, int64_t topic_id);

/* A stream: a partition of a topic. */
typedef struct xstream {
    int64_t topic_id;
    int32_t partition;
    td_part *p;
} xstream;

/* Calls cb(arg, rc) once every change up to seq is durable (rc: the write's result; on the
 * engine's flusher thread for a group change, on the delivery thread (delivery.h) for an XDEL,
 * or here when it already is). 0, or an error (cb not called): TD_ECLOSED for an XDEL after
 * xgroups_shutdown. */
int xgroups_when_saved(td_engine *e, uint64_t seq, void (*cb)(void *arg, int rc), void *arg);
/* Waits until every change up to seq is durable: the write's result. */
int xgroups_wait(td_engine *e, uint64_t seq);

/* Every call below answers TD_ENOTFOUND (no td_fail text) when the group does not exist, unless
 * said otherwise; *seq (when given) gets the number to wait for, 0 if nothing changed. */

/* XGROUP CREATE: TD_EEXIST if the group exists. entries_read is Redis's counter of the entries
 * the group has read (ENTRIESREAD), -1 when unknown (Redis's default). */
int xgroup_create(td_engine *e, const xstream *s, td_slice group, td_sid last, int64_t entries_read,
                  uint64_t *seq);
/* XGROUP SETID: the last delivered ID and the counter (-1: unknown), as XGROUP CREATE's. */
int xgroup_setid(td_engine *e, const xstream *s, td_slice group, td_sid last, int64_t entries_read,
                 uint64_t *seq);
/* XGROUP POLICY (a tidings extension, docs/redis.md#queue-policies): sets (pol) or removes
 * (NULL) the group's queue policy. With one, a pending entry not acknowledged within
 * ack.timeout.ms falls due for redelivery after the backoff (XREADGROUP `>` hands it out again,
 * to whichever consumer reads, before new entries), and one whose last allowed delivery timed
 * out is copied to the dead-letter topic and leaves the PEL. Only the keys of
 * xgroup_policy_keys() apply. */
int xgroup_set_policy(td_engine *e, const xstream *s, td_slice group, const td_queue_policy *pol,
                      uint64_t *seq);
/* *has false when the group has no policy. */
int xgroup_get_policy(td_engine *e, const xstream *s, td_slice group, td_queue_policy *out,
                      bool *has);
const char *const *xgroup_policy_keys(void);
/* Sets the function called (under the groups' lock: post and return) when blocked readers
 * should retry: on the delivery thread when a group with a policy has entries due for
 * redelivery, and on the caller's when a group is destroyed or a topic's groups are dropped
 * (the topic was deleted, by any protocol). NULL removes it. */
void xgroups_set_notify(td_engine *e, void (*fn)(void *arg), void *arg);

/* XGROUP DESTROY: 0 and *seq 0 when there was no group. */
int xgroup_destroy(td_engine *e, const xstream *s, td_slice group, bool *destroyed, uint64_t *seq);
/* XGROUP CREATECONSUMER: *created false if it existed. */
int xgroup_consumer_create(td_engine *e, const xstream *s, td_slice group, td_slice consumer,
                           int64_t now_ms, bool *created, uint64_t *seq);
/* XGROUP DELCONSUMER: *pending gets how many pending entries it had (dropped with it). */
int xgroup_consumer_delete(td_engine *e, const xstream *s, td_slice group, td_slice consumer,
                           int64_t *pending, uint64_t *seq);

/* XREADGROUP with `>`: delivers up to count (0: no limit) entries to the consumer (created if
 * new, as in Redis only when it is given entries). Under a queue policy, first the pending
 * entries due for redelivery (*redelivered, malloc'd: free it), then entries after the group's
 * last delivered ID: the offsets [*from, *to) (but those XDEL removed), whose IDs are now
 * pending for it (unless noack) and the last of which is the group's last delivered ID; the
 * group's entries-read counter follows them by Redis's rules (xgroup_lag.c). */
int xgroup_deliver(td_engine *e, const xstream *s, td_slice group, td_slice consumer, size_t count,
                   bool noack, int64_t now_ms, td_sid **redelivered, size_t *nredelivered,
                   int64_t *from, int64_t *to, uint64_t *seq);
/* XREADGROUP with an ID: the consumer's pending entries after `after`, at most count (0: no
 * limit), each delivered once more (time now_ms, count + 1). *ids is malloc'd (free it). */
int xgroup_history(td_engine *e, const xstream *s, td_slice group, td_slice consumer, td_sid after,
                   size_t count, int64_t now_ms, td_sid **ids, size_t *n, uint64_t *seq);
/* XACK: how many of the ids were pending (and are no more). TD_ENOTFOUND is 0 acknowledged. */
int xgroup_ack(td_engine *e, const xstream *s, td_slice group, const td_sid *ids, size_t n,
               size_t *acked, uint64_t *seq);

/* XCLAIM and XAUTOCLAIM. */
typedef struct xclaim_opts {
    int64_t min_idle_ms;
    int64_t delivery_ms; /* the new delivery time (IDLE, TIME): -1 for now */
    int64_t retry_count; /* RETRYCOUNT: -1 to add one (unless justid) */
    bool force, justid;
    bool has_last_id;
    td_sid last_id; /* LASTID */
} xclaim_opts;
/* Claims those of ids that are pending (with force: or in the stream) and idle for at least
 * min_idle_ms; entries no longer in the stream leave the PEL instead. *claimed (malloc'd) gets
 * the claimed IDs in the order asked. */
int xgroup_claim(td_engine *e, const xstream *s, td_slice group, td_slice consumer,
                 const td_sid *ids, size_t n, const xclaim_opts *o, int64_t now_ms,
                 td_sid **claimed, size_t *nclaimed, uint64_t *seq);
/* Scans the PEL from start for at most count * 10 entries, claiming up to count idle ones;
 * *deleted (malloc'd) gets those that left the PEL because the stream no longer has them;
 * *next the ID to start the next call from (0-0 when the scan reached the end). */
int xgroup_autoclaim(td_engine *e, const xstream *s, td_slice group, td_slice consumer,
                     td_sid start, size_t count, const xclaim_opts *o, int64_t now_ms,
                     td_sid **claimed, size_t *nclaimed, td_sid **deleted, size_t *ndeleted,
                     td_sid *next, uint64_t *seq);

/* Where a group whose last delivered ID is `last` stands, exactly: *read, the entries up to it
 * (offsets count every entry ever added), and *lag, the entries after it that XDEL did not
 * remove (the metrics' lag; XINFO gives Redis's counter and estimates, xgroup_info). */
void xstream_progress(td_engine *e, const xstream *s, td_sid last, int64_t *read, int64_t *lag);

/* Reading the state: the visitors run under the groups' lock (they must not call in here). */
typedef struct xgroup_info {
    td_slice name;
    td_sid last_id;
    size_t consumers, pending;
    td_sid pel_min, pel_max; /* the lowest and highest pending IDs, when pending > 0 */
    /* As Redis 7.0's XINFO has them (xgroup_list only): its entries_read counter (-1: nil)
     * and the lag (when lag_known; else nil), counted and estimated by Redis's rules. */
    int64_t entries_read, lag;
    bool lag_known;
} xgroup_info;
typedef struct xconsumer_info {
    td_slice name;
    int64_t seen_ms;
    size_t pending;
} xconsumer_info;
typedef struct xpending_info {
    td_sid id;
    td_slice consumer;
    int64_t delivery_ms;
    int64_t deliveries;
} xpending_info;
/* The groups of a stream, by name, with their entries read and lag (s->p needed). */
int xgroup_list(td_engine *e, const xstream *s, void (*fn)(void *arg, const xgroup_info *g),
                void *arg);
/* One group (TD_ENOTFOUND) and its consumers (by name). */
int xgroup_consumers(td_engine *e, const xstream *s, td_slice group, xgroup_info *g,
                     void (*fn)(void *arg, const xconsumer_info *c), void *arg);
/* Pending entries of a group in [lo, hi], of one consumer (when consumer.p is not NULL), idle
 * for at least min_idle_ms (when above 0), at most count (0: no limit), by ID. */
int xgroup_pending(td_engine *e, const xstream *s, td_slice group, td_sid lo, td_sid hi,
                   td_slice consumer, int64_t min_idle_ms, size_t count, int64_t now_ms,
                   void (*fn)(void *arg, const xpending_info *p), void *arg);

/* XDEL: removes entries from the stream's view (the log is immutable: Kafka and HTTP readers
 * still see them until retention or XTRIM takes their segment). *deleted gets how many of ids
 * were in the stream and are now removed. Pending entries of groups stay, as in Redis. */
int xstream_delete(td_engine *e, const xstream *s, const td_sid *ids, size_t n, size_t *deleted,
                   uint64_t *seq);
/* XSETID's MAXDELETEDID: the largest ID XDEL removed becomes id (also below what it was, as in
 * Redis); later XDELs raise it again. Saved with XDEL's rows (wait for *seq). */
int xstream_set_max_deleted(td_engine *e, const xstream *s, td_sid id, uint64_t *seq);
/* The offsets in [from, to) that XDEL removed, sorted: *offs malloc'd (NULL when none: free
 * it), or, with offs NULL, only their number in *n; max_deleted (may be NULL) gets the largest
 * ID XDEL ever removed, or what XSETID set since (0-0). Without max_deleted and with nothing removed anywhere, costs no
 * lock. */
int xstream_deleted(td_engine *e, const xstream *s, int64_t from, int64_t to, int64_t **offs,
                    size_t *n, td_sid *max_deleted);

#endif /* TD_BROKER_XGROUP_H */
