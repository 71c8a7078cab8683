/*
 * xgroup_int.h: the structures of Redis consumer groups, shared by xgroup.c (the commands) and
 * xgroup_state.c (their records in the state topic __xgroup_state, replay and migration).
 * Everything here is guarded by td_xgroups.mu.
 */
#ifndef TD_BROKER_XGROUP_INT_H
#define TD_BROKER_XGROUP_INT_H

#include <pthread.h>

#include "broker/delivery.h"
#include "broker/engine_int.h"
#include "broker/xgroup.h"

/* A group's or consumer's name (binary-safe): the first member of both. */
typedef struct xname {
    uint8_t *name;
    size_t len;
} xname;

typedef struct xcons {
    xname nm;
    int64_t seen_ms;
    size_t pending;
} xcons;

/* A pending entry: its stream ID, its consumer, and its delivery state in the core's pending
 * form (delivery.h: the last delivery time and count; under a policy its due time derived). */
typedef struct xpe {
    td_sid id;
    xcons *c; /* NULL: a hole */
    delivery_pending d;
} xpe;
/* 40 bytes (64-bit), as before the core's pending form: one per pending entry, and a PEL may
 * hold millions. */
_Static_assert(sizeof(xpe) == sizeof(td_sid) + sizeof(void *) + 16, "a pending entry's size");

typedef struct xgrp {
    xname nm;
    td_sid last;
    /* Redis's entries_read: the entries the group has read, as Redis counts and estimates them
     * (xgroup_lag.c), XG_READ_UNKNOWN where Redis has none (XINFO's nil). */
    int64_t entries_read;
    bool read_legacy; /* replay: from a record without it (xstate_load computes it) */
    int64_t created_ms;
    /* A queue policy (XGROUP POLICY), or NULL: Redis's behaviour. With one, next_due is the
     * earliest time a pending entry falls due (for redelivery, or the dead-letter topic) as far
     * as known, and ready says that some are due for redelivery now. */
    td_queue_policy *pol;
    int64_t next_due;
    bool ready;
    bool placeholder; /* replay: made by a consumer or pending record before its group's */
    uint64_t redelivered, dead_lettered; /* by the policy, since the broker started (metrics) */
    xcons **cons;                        /* sorted by name */
    size_t ncons, conscap;
    xpe *pel;
    size_t npel, pelcap, live;
} xgrp;

typedef struct xstr {
    int64_t topic_id;
    int32_t partition;
    xgrp **g; /* sorted by name */
    size_t n, cap;
    int64_t *del; /* offsets XDEL removed, sorted (those below the log start are pruned) */
    size_t ndel, delcap;
    td_sid max_del; /* the largest ID XDEL removed, 0-0 */
} xstr;

typedef struct xwaiter {
    uint64_t seq;
    void (*cb)(void *arg, int rc);
    void *arg;
} xwaiter;

/* A change's wait number (xgroups_when_saved) for the catalog journal of XDEL (the state
 * records' are offsets of __xgroup_state, below 2^63). */
#define XDEL_SEQ_BIT (UINT64_C(1) << 63)

struct td_xgroups {
    td_engine *e;
    pthread_mutex_t mu;
    pthread_cond_t done_cv; /* xgroups_wait waits for XDEL writes */
    xstr *s;
    size_t ns, scap;
    delivery_recs rb; /* group state records of the change being made */
    /* The journal of XDEL's removed entries (catalog xdeleted rows): rows not yet written,
     * written by the delivery thread (xg_work) in one transaction. */
    catalog_xrow *rows;
    size_t nrows, rowcap;
    bool resync; /* an XDEL row could not be journaled, or a write failed: write them all */
    uint64_t seq, saved_seq; /* of the XDEL journal */
    int save_rc;
    xwaiter *w;
    size_t nw, wcap;
    size_t ndel; /* atomic: offsets removed by XDEL, every stream (a fast path when none) */
    void (*notify)(void *arg); /* xgroups_set_notify */
    void *notify_arg;
    /* The groups' client of the delivery service (delivery.h), which runs their timed work
     * and writes the XDEL journal: NULL once stopped (xgroups_shutdown). */
    struct delivery_client *dc;
    bool stopping, stopped;
};

/* Lookups and changes of the structures (xgroup.c). */
size_t xg_name_search(void *const *arr, size_t n, td_slice key, bool *found);
bool xg_name_set(xname *nm, td_slice v);
xstr *xg_stream_find(td_xgroups *x, int64_t topic_id, int32_t partition);
xstr *xg_stream_get(td_xgroups *x, int64_t topic_id, int32_t partition);
xgrp *xg_group_find(td_xgroups *x, const xstream *s, td_slice name, xstr **stp);
/* Inserts a new group of that name (NULL without memory, or if it exists: check first). */
xgrp *xg_group_insert(xstr *st, td_slice name);
/* Takes the group at index i out of its stream and frees it. */
void xg_group_remove(xstr *st, size_t i);
void xg_group_free(xgrp *g);
xcons *xg_cons_find(xgrp *g, td_slice name);
xcons *xg_cons_add(xgrp *g, td_slice name, int64_t now_ms);
/* Removes a consumer with its pending entries; how many it had. */
size_t xg_cons_remove(xgrp *g, xcons *c);
size_t xg_pel_lower(const xgrp *g, td_sid id);
xpe *xg_pel_get(xgrp *g, td_sid id);
xpe *xg_pel_add(xgrp *g, td_sid id, xcons *c, int64_t now_ms);
void xg_pel_remove(xgrp *g, xpe *pe);
void xg_pel_compact(xgrp *g);
void xg_stream_drop(td_xgroups *x, size_t i);
/* Asks the delivery service to run the groups' timed work at `at` at the latest (0: now):
 * XDEL rows to write, a queue policy's deadlines. TD_ECLOSED once stopped. */
int xg_wake(td_xgroups *x, int64_t at);
/* Appends the change's records (under x->mu, so that the log has the changes in the order
 * memory had them): the call's result, which a failed append fails. */
int xg_change_done(td_xgroups *x, int rc, uint64_t *seq);
/* Queue policies (xgroup.c): when a pending entry falls due, whether it is dead then, and the
 * group's next_due lowered for it (waking the sweep). */
int64_t xg_due_at(const xgrp *g, const xpe *pe);
bool xg_is_dead(const xgrp *g, const xpe *pe);
void xg_note_due(td_xgroups *x, xgrp *g, const xpe *pe);
/* xgroup_pel.c */
void xg_pel_assign(xpe *pe, xcons *c);
/* The first of the stream's XDEL-removed offsets at or above off; whether off is one. */
size_t xg_del_lower(const xstr *st, int64_t off);
bool xg_del_has(const xstr *st, int64_t off);
/* The offset of the entry of that ID, or -1 if the stream does not have it. */
int64_t xg_entry_offset(td_part *p, td_sid id);
/* Whether the stream has the entry (in the log, not removed by XDEL). */
bool xg_entry_live(const xstr *st, td_part *p, td_sid id);

/* Entries read and lag as Redis 7.0 has them (xgroup_lag.c): a view of the stream's counters
 * as Redis keeps them, computed from the log when a rule first needs them. Under x->mu. */
#define XG_READ_UNKNOWN (-1) /* Redis's SCG_INVALID_ENTRIES_READ */
typedef struct xview {
    const xstr *st; /* may be NULL: no XDEL */
    td_part *p;
    int64_t hw;      /* the high watermark the view is taken at */
    int64_t added;   /* entries_added: part_stream_added at hw (offsets count every entry added,
                        unless XSETID's ENTRIESADDED set the count) */
    int64_t start;   /* the log start when the view was taken */
    int64_t records; /* the records in [start, hw), -1 until counted */
    td_sid max_del;  /* max_deleted_entry_id */
    bool have;       /* the rest is computed */
    int64_t length;  /* the entries from the log start, less those XDEL removed */
    td_sid first;    /* first_id: the first entry's, 0-0 when empty */
    td_sid last;     /* last_id: the last ID, which XSETID may have raised */
} xview;
/* Takes the view at the high watermark hw (-1: now). count_now counts a compacted stream's
 * records at once (which reads its batch headers: call it outside x->mu), else only if a rule
 * needs them. Then xg_view_stream, under x->mu, adds what XDEL removed (st may be NULL). */
void xg_view_start(xview *v, td_part *p, int64_t hw, bool count_now);
void xg_view_stream(xview *v, const xstr *st);
/* streamEstimateDistanceFromFirstEverEntry: the entries read up to id, or XG_READ_UNKNOWN. */
int64_t xg_estimate(xview *v, td_sid id);
/* The counter after delivering the entry id (in ID order, after the group's last ID). */
int64_t xg_read_advance(xview *v, int64_t read, td_sid id);
/* streamReplyWithCGLag: false where Redis answers nil. */
bool xg_lag(xview *v, td_sid last, int64_t read, int64_t *lag);

/* The group state records (xgroup_state.c, docs/storage.md "State topics"), under x->mu: each
 * call adds a record of the current state of that key (or its tombstone) to x->rb; xrec_flush
 * appends them as one batch to __xgroup_state and gives the offset to wait for in *seq (0 when
 * there was none). A failed append keeps the records for the next flush, and fails. */
void xrec_group(td_xgroups *x, const xstr *st, const xgrp *g);
void xrec_consumer(td_xgroups *x, const xstr *st, const xgrp *g, const xcons *c);
void xrec_pending(td_xgroups *x, const xstr *st, const xgrp *g, const xpe *pe);
/* Tombstones: of the group with its consumers and pending entries; of a consumer with its
 * pending entries (call before taking them out of memory); of one pending entry. */
void xrec_group_gone(td_xgroups *x, const xstr *st, const xgrp *g);
void xrec_consumer_gone(td_xgroups *x, const xstr *st, const xgrp *g, const xcons *c);
void xrec_pending_gone(td_xgroups *x, const xstr *st, const xgrp *g, td_sid id);
int xrec_flush(td_xgroups *x, uint64_t *seq);
void xrec_free(td_xgroups *x);
/* At open, after the catalog's rows are loaded: replays __xgroup_state over them, drops what
 * belongs to deleted topics, and migrates group rows the catalog still held (had_rows): their
 * records are written and made durable, then the rows are dropped in one transaction. */
int xstate_load(td_xgroups *x, bool had_rows);

#endif /* TD_BROKER_XGROUP_INT_H */
