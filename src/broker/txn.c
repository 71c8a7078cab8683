/*
 * txn.c: the transaction coordinator (txn.h; docs/kafka.md#transactions).
 *
 * Records of __transaction_state, Kafka's TransactionLog format (version 0), big-endian:
 *   key   int16 0, string transactional id
 *   value int16 0, int64 producer id, int16 epoch, int32 timeout ms, int8 state,
 *         partitions: int32 count (-1: null) of [string topic, int32 count of int32 partition],
 *         int64 last update ms, int64 start ms (-1: none)
 *   a null value (tombstone): the id expired.
 * Value version 1 (tidings' own) appends the offsets the transaction commits (TxnOffsetCommit):
 *   int32 count of [string group, string topic, int32 partition, int64 offset,
 *                   int32 leader epoch, string metadata (nullable)]
 * Kafka writes those as transactional records of __consumer_offsets that its markers settle;
 * here they stay with the transaction, and a commit writes them as ordinary commits after its
 * markers (before CompleteCommit, so that a restart after PrepareCommit writes them again).
 * A partition of __consumer_offsets in the partition set stands for a group that
 * AddOffsetsToTxn added: it gets no marker.
 * Replay keeps the last record of each id; a Prepare state found there is finished (markers,
 * then Complete) when the coordinator's thread starts.
 *
 * One thread does every change, one job at a time: it changes memory under mu after each
 * record is durable, so that broker_txn_verify (any thread, under mu) sees only what a restart
 * would see; but for the Ongoing records of AddPartitionsToTxn, which are not waited for (every
 * later record of the id is, and covers them): a restart that lost them finds the partitions'
 * open transactions instead (reconcile). The thread takes the queued jobs as a batch
 * (run_batch): the EndTxn calls among them write their Prepare records, are answered together
 * once one fsync covered them all, as Kafka answers EndTxn, and then completed together (their
 * markers and Complete records sharing fsyncs) before the next batch. The ids are in an array
 * searched linearly (transactional ids are few: one per producer instance of an exactly-once
 * application).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/base.h"
#include "broker/engine_int.h"
#include "broker/state.h"
#include "broker/txn.h"

enum {
    ST_EMPTY,
    ST_ONGOING,
    ST_PREPARE_COMMIT,
    ST_PREPARE_ABORT,
    ST_COMPLETE_COMMIT,
    ST_COMPLETE_ABORT,
    ST_DEAD
};

#define EPOCH_EXHAUSTED 32766 /* Kafka's isEpochExhausted: a new producer id from here */

typedef struct tpart {
    char *topic;
    int32_t partition;
} tpart;

typedef struct toff {
    char *group, *topic, *metadata;
    int32_t partition, leader_epoch;
    int64_t offset;
} toff;

typedef struct tmeta {
    char *id;
    int64_t pid;
    int16_t epoch, last_epoch;
    int32_t timeout_ms;
    int state;
    tpart *parts;
    size_t nparts, cap;
    toff *offs; /* offsets to commit with the transaction */
    size_t noffs, offs_cap;
    int64_t update_ms, start_ms;
} tmeta;

enum { JOB_INIT, JOB_ADD, JOB_END, JOB_ADD_OFFSETS, JOB_COMMIT_OFFSETS };

typedef struct tjob {
    struct tjob *next;
    int kind;
    char *id;
    int32_t timeout_ms;
    int64_t pid;
    int16_t epoch;
    bool commit;
    txn_tp *tps;
    size_t ntps;
    char *group;
    const td_offset_commit *offsets;
    size_t noffsets;
    txn_done_fn done;
    void *arg;
} tjob;

struct td_txns {
    td_engine *e;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* Held shared by a transactional produce from its verification to its append, and
     * exclusively while markers are appended (KIP-890's VerificationGuard): a batch verified
     * before its transaction's marker is appended before it, never after. Writer-preferring. */
    pthread_rwlock_t marking;
    pthread_t th;
    bool running, stopping;
    tjob *head, *tail;
    tmeta **m;
    size_t n, cap;
    int64_t next_scan_ms;
};

const char *txn_err_name(txn_err e)
{
    static const char *const names[] = {
        "OK",          "INVALID_REQUEST", "INVALID_TIMEOUT",   "CONCURRENT",    "FENCED",
        "BAD_MAPPING", "INVALID_STATE",   "UNKNOWN_PARTITION", "NOT_ATTEMPTED", "UNAVAILABLE",
        "NOT_FOUND",   "DENIED",          "INVALID_GROUP"};
    return (unsigned)e < TD_ARRAY_LEN(names) ? names[e] : "?";
}

const char *txn_state_name(int state)
{
    static const char *const names[] = {"Empty",        "Ongoing",        "PrepareCommit",
                                        "PrepareAbort", "CompleteCommit", "CompleteAbort",
                                        "Dead"};
    return (unsigned)state < TD_ARRAY_LEN(names) ? names[state] : "Unknown";
}

/* ---------------------------------------------------------------------------------------------
 * Memory
 */
static void toff_free(toff *o)
{
    free(o->group);
    free(o->topic);
    free(o->metadata);
}

static void offs_clear(tmeta *m)
{
    for (size_t i = 0; i < m->noffs; i++)
        toff_free(&m->offs[i]);
    m->noffs = 0;
}

/* Adds or replaces the offset of (group, topic, partition). */
static int offs_put(tmeta *m, const char *group, const td_offset_commit *o)
{
    toff n = {strdup(group), strdup(o->topic), o->metadata ? strdup(o->metadata) : NULL,
              o->partition,  o->leader_epoch,  o->offset};
    if (!n.group || !n.topic || (o->metadata && !n.metadata)) {
        toff_free(&n);
        return -ENOMEM;
    }
    for (size_t i = 0; i < m->noffs; i++)
        if (m->offs[i].partition == o->partition && strcmp(m->offs[i].group, group) == 0 &&
            strcmp(m->offs[i].topic, o->topic) == 0) {
            toff_free(&m->offs[i]);
            m->offs[i] = n;
            return 0;
        }
    if (td_grow(&m->offs, &m->offs_cap, m->noffs, sizeof(*m->offs), 4) != 0) {
        toff_free(&n);
        return -ENOMEM;
    }
    m->offs[m->noffs++] = n;
    return 0;
}

static void meta_free(tmeta *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nparts; i++)
        free(m->parts[i].topic);
    free(m->parts);
    offs_clear(m);
    free(m->offs);
    free(m->id);
    free(m);
}

static void parts_clear(tmeta *m)
{
    for (size_t i = 0; i < m->nparts; i++)
        free(m->parts[i].topic);
    m->nparts = 0;
    offs_clear(m);
}

static int tpart_cmp(const char *t1, int32_t p1, const char *t2, int32_t p2)
{
    int c = strcmp(t1, t2);
    return c ? c : (p1 > p2) - (p1 < p2);
}

static bool has_part(const tmeta *m, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < m->nparts; i++)
        if (tpart_cmp(m->parts[i].topic, m->parts[i].partition, topic, partition) == 0)
            return true;
    return false;
}

/* Adds a partition in order (topic, partition); nothing if it is there. */
static int add_part(tmeta *m, const char *topic, int32_t partition)
{
    size_t i = 0;
    while (i < m->nparts &&
           tpart_cmp(m->parts[i].topic, m->parts[i].partition, topic, partition) < 0)
        i++;
    if (i < m->nparts && tpart_cmp(m->parts[i].topic, m->parts[i].partition, topic, partition) == 0)
        return 0;
    char *t = strdup(topic);
    if (!t || td_grow(&m->parts, &m->cap, m->nparts, sizeof(*m->parts), 4) != 0) {
        free(t);
        return -ENOMEM;
    }
    memmove(m->parts + i + 1, m->parts + i, (m->nparts - i) * sizeof(*m->parts));
    m->parts[i] = (tpart){t, partition};
    m->nparts++;
    return 0;
}

static tmeta *find_id(struct td_txns *tx, const char *id)
{
    for (size_t i = 0; i < tx->n; i++)
        if (strcmp(tx->m[i]->id, id) == 0)
            return tx->m[i];
    return NULL;
}

static void remove_id(struct td_txns *tx, const char *id)
{
    for (size_t i = 0; i < tx->n; i++)
        if (strcmp(tx->m[i]->id, id) == 0) {
            meta_free(tx->m[i]);
            tx->m[i] = tx->m[--tx->n];
            return;
        }
}

/* Adds m to the ids, under mu (the readers of other threads walk the array under it). */
static int insert_meta(struct td_txns *tx, tmeta *m)
{
    int rc = 0;
    pthread_mutex_lock(&tx->mu);
    if (td_grow(&tx->m, &tx->cap, tx->n, sizeof(*tx->m), 16) != 0)
        rc = -ENOMEM;
    else
        tx->m[tx->n++] = m;
    pthread_mutex_unlock(&tx->mu);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Records
 */
static int encode_value(td_buf *v, const tmeta *m)
{
    int rc = state_put16(v, m->noffs ? 1 : 0) | state_put64(v, m->pid) | state_put16(v, m->epoch) |
             state_put32(v, m->timeout_ms) | td_buf_append_u8(v, (uint8_t)m->state);
    if (m->state == ST_EMPTY) {
        rc |= state_put32(v, -1);
    } else {
        int32_t topics = 0;
        for (size_t i = 0; i < m->nparts; i++)
            topics += i == 0 || strcmp(m->parts[i].topic, m->parts[i - 1].topic) != 0;
        rc |= state_put32(v, topics);
        for (size_t i = 0; i < m->nparts && rc == 0;) {
            size_t k = i;
            while (k < m->nparts && strcmp(m->parts[k].topic, m->parts[i].topic) == 0)
                k++;
            rc |= state_put_str(v, m->parts[i].topic) | state_put32(v, (int32_t)(k - i));
            for (; i < k; i++)
                rc |= state_put32(v, m->parts[i].partition);
        }
    }
    rc |= state_put64(v, m->update_ms) | state_put64(v, m->start_ms);
    if (m->noffs) {
        rc |= state_put32(v, (int32_t)m->noffs);
        for (size_t i = 0; i < m->noffs && rc == 0; i++) {
            const toff *o = &m->offs[i];
            rc |= state_put_str(v, o->group) | state_put_str(v, o->topic) |
                  state_put32(v, o->partition) | state_put64(v, o->offset) |
                  state_put32(v, o->leader_epoch) | state_put_str(v, o->metadata);
        }
    }
    return rc ? (rc == TD_ETOOBIG ? rc : -ENOMEM) : 0;
}

/* Writes m's record (a tombstone when tomb): *end gets the offset to wait for (state_wait_solo:
 * this thread is the topic's only writer) and, with wait, waits until it is durable. */
static int write_meta(struct td_txns *tx, const tmeta *m, bool tomb, bool wait, int64_t *end_out)
{
    td_buf k, v;
    td_buf_init(&k);
    td_buf_init(&v);
    int rc = state_put16(&k, 0) | state_put_str(&k, m->id);
    rc = rc ? -ENOMEM : tomb ? 0 : encode_value(&v, m);
    int64_t end = 0;
    td_event ev = {
        .key = k.p, .key_len = k.len, .value = tomb ? NULL : v.p, .value_len = tomb ? 0 : v.len};
    if (rc == 0)
        rc = state_append(tx->e, STATE_TXNS, 0, &ev, 1, &end);
    if (rc == 0 && wait)
        rc = state_wait_solo(tx->e, STATE_TXNS, 0, end);
    if (end_out)
        *end_out = end;
    td_buf_free(&k);
    td_buf_free(&v);
    if (rc)
        TD_ERROR("txn", "cannot write the state of transactional id '%s': %s", m->id,
                 td_last_error());
    return rc;
}

static int replay_record(void *arg, int32_t partition, const td_event *ev)
{
    struct td_txns *tx = arg;
    (void)partition;
    state_reader k = {.p = ev->key, .n = ev->key_len};
    if (!ev->key || state_get16(&k) != 0)
        return 0; /* another kind of record */
    char *id = state_get_str(&k);
    if (!id || k.bad) {
        free(id);
        return 0;
    }
    remove_id(tx, id);
    if (!ev->value) {
        free(id);
        return 0;
    }
    tmeta *m = calloc(1, sizeof(*m));
    if (!m) {
        free(id);
        return -ENOMEM;
    }
    m->id = id;
    m->last_epoch = -1;
    state_reader v = {.p = ev->value, .n = ev->value_len};
    int16_t version = state_get16(&v);
    m->pid = state_get64(&v);
    m->epoch = state_get16(&v);
    m->timeout_ms = state_get32(&v);
    m->state = v.pos < v.n ? v.p[v.pos++] : (v.bad = true, 0);
    int32_t topics = state_get32(&v);
    for (int32_t i = 0; i < topics && !v.bad; i++) {
        char *t = state_get_str(&v);
        int32_t np = state_get32(&v);
        for (int32_t j = 0; j < np && !v.bad && t; j++)
            if (add_part(m, t, state_get32(&v)) != 0)
                v.bad = true;
        free(t);
    }
    m->update_ms = state_get64(&v);
    m->start_ms = state_get64(&v);
    int32_t noffs = version >= 1 ? state_get32(&v) : 0;
    for (int32_t i = 0; i < noffs && !v.bad; i++) {
        char *group = state_get_str(&v), *topic = state_get_str(&v);
        td_offset_commit o = {.topic = topic};
        o.partition = state_get32(&v);
        o.offset = state_get64(&v);
        o.leader_epoch = state_get32(&v);
        char *meta = state_get_str(&v);
        o.metadata = meta;
        if (!v.bad && (!group || !topic || offs_put(m, group, &o) != 0))
            v.bad = true;
        free(group);
        free(topic);
        free(meta);
    }
    if (v.bad || m->state > ST_COMPLETE_ABORT || m->pid < 0) {
        TD_WARN("txn", "ignoring an unreadable record of transactional id '%s'", id);
        meta_free(m);
        return 0;
    }
    if (m->state == ST_EMPTY || m->state >= ST_COMPLETE_COMMIT)
        parts_clear(m);
    int rc = insert_meta(tx, m);
    if (rc)
        meta_free(m);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Changes (on the coordinator's thread)
 */
/* Frees what a copy (copy_meta) or a replaced state owns, but its id. */
static void drop_copy(tmeta *c)
{
    for (size_t i = 0; i < c->nparts; i++)
        free(c->parts[i].topic);
    free(c->parts);
    c->parts = NULL;
    c->nparts = c->cap = 0;
    offs_clear(c);
    free(c->offs);
    c->offs = NULL;
    c->offs_cap = 0;
}

/* Applies a change of m (c, a copy: apply takes what it owns) to memory. */
static void apply(struct td_txns *tx, tmeta *m, tmeta *c)
{
    pthread_mutex_lock(&tx->mu);
    tmeta old = *m;
    *m = *c;
    pthread_mutex_unlock(&tx->mu);
    old.id = NULL;
    drop_copy(&old);
    c->parts = NULL; /* m owns them now */
    c->nparts = c->cap = 0;
    c->offs = NULL;
    c->noffs = c->offs_cap = 0;
}

/* Applies a change of m (a copy, c) once its record is durable (with wait; else once it is
 * written: a later durable record of the topic covers it). */
static int change(struct td_txns *tx, tmeta *m, tmeta *c, bool wait)
{
    int rc = write_meta(tx, c, false, wait, NULL);
    if (rc == 0)
        apply(tx, m, c);
    return rc;
}

/* A deep copy of m's partitions into c (a copy of m). */
static int copy_meta(const tmeta *m, tmeta *c)
{
    *c = *m;
    c->parts = NULL;
    c->nparts = c->cap = 0;
    c->offs = NULL;
    c->noffs = c->offs_cap = 0;
    for (size_t i = 0; i < m->nparts; i++)
        if (add_part(c, m->parts[i].topic, m->parts[i].partition) != 0)
            return -ENOMEM;
    for (size_t i = 0; i < m->noffs; i++) {
        const toff *o = &m->offs[i];
        td_offset_commit x = {o->topic, o->partition, o->offset, o->leader_epoch, o->metadata};
        if (offs_put(c, o->group, &x) != 0)
            return -ENOMEM;
    }
    return 0;
}

/* One marker to write (write_markers). */
typedef struct tmark {
    size_t m;          /* which transaction */
    const tpart *part; /* where */
    td_topic_ref *ref;
    int64_t end; /* to wait for; 0: nothing written */
} tmark;

/* Appends the marker of each transaction ms[0..n) (in state Prepare*) to every partition of it,
 * all under the marking lock (so that no verified batch is between its check and its append),
 * then waits until they are all durable: markers of several transactions in a partition share
 * its fsync. rcs[i] gets 0, or ms[i]'s first failure (it stays in Prepare; the scan writes its
 * markers again: a marker for a transaction already closed changes nothing). A deleted topic
 * or partition needs none. */
static void write_markers(struct td_txns *tx, tmeta *const *ms, size_t n, int *rcs)
{
    size_t total = 0, k = 0;
    for (size_t i = 0; i < n; i++) {
        total += ms[i]->nparts;
        rcs[i] = 0;
    }
    tmark *v = calloc(total ? total : 1, sizeof(*v));
    if (!v) {
        for (size_t i = 0; i < n; i++)
            rcs[i] = -ENOMEM;
        return;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < ms[i]->nparts; j++)
            if (strcmp(ms[i]->parts[j].topic, STATE_OFFSETS_TOPIC) != 0) /* a group: see the top */
                v[k++] = (tmark){.m = i, .part = &ms[i]->parts[j]};
    int64_t now = td_wall_ms();
    pthread_rwlock_wrlock(&tx->marking);
    for (size_t pass = 0; pass < 2; pass++) {
        for (size_t x = 0; x < k; x++) {
            const tmeta *m = ms[v[x].m];
            bool commit = m->state == ST_PREPARE_COMMIT;
            if (pass == 0 && broker_topic_acquire(tx->e, v[x].part->topic, &v[x].ref) != 0)
                continue; /* deleted since: nothing to mark */
            td_part *p = v[x].ref ? broker_topic_part(v[x].ref, v[x].part->partition) : NULL;
            td_append_result res;
            int rc = 0;
            if (p && pass == 0 &&
                (rc = part_append_marker(p, m->pid, m->epoch, commit, 0, now, &res)) == 0)
                v[x].end = res.end_offset;
            else if (p && pass == 1 && v[x].end > 0)
                rc = part_wait_durable(p, v[x].end);
            if (rc == TD_ENOTFOUND) /* the partition was deleted meanwhile */
                rc = 0;
            if (rc) {
                TD_ERROR("txn",
                         "cannot write the %s marker of '%s' to %s/%" PRId32
                         ": %s (tried again at the next scan)",
                         commit ? "COMMIT" : "ABORT", m->id, v[x].part->topic, v[x].part->partition,
                         td_last_error());
                rcs[v[x].m] = rcs[v[x].m] ? rcs[v[x].m] : rc;
            }
        }
        if (pass == 0)
            pthread_rwlock_unlock(&tx->marking);
    }
    for (size_t x = 0; x < k; x++)
        if (v[x].ref)
            broker_topic_release(v[x].ref);
    free(v);
}

/* Writes the offsets of a committing transaction as the groups' commits, durably. */
static int commit_offsets(struct td_txns *tx, const tmeta *m)
{
    if (!m->noffs)
        return 0;
    td_offset_commit *v = calloc(m->noffs, sizeof(*v));
    if (!v)
        return -ENOMEM;
    int rc = 0;
    bool *done = calloc(m->noffs, sizeof(*done));
    for (size_t i = 0; done && rc == 0 && i < m->noffs; i++) {
        if (done[i])
            continue;
        size_t n = 0; /* every offset of this group, in one commit */
        for (size_t k = i; k < m->noffs; k++)
            if (!done[k] && strcmp(m->offs[k].group, m->offs[i].group) == 0) {
                const toff *o = &m->offs[k];
                v[n++] = (td_offset_commit){o->topic, o->partition, o->offset, o->leader_epoch,
                                            o->metadata};
                done[k] = true;
            }
        rc = td_group_commit(tx->e, m->offs[i].group, v, n, td_wall_ms());
        /* A topic deleted since (or a partition gone): the others are committed one by one,
         * and the offsets of what is gone are dropped; any other failure is tried again. */
        for (size_t k = 0; rc == TD_ENOTFOUND && k < n; k++) {
            int one = td_group_commit(tx->e, m->offs[i].group, &v[k], 1, td_wall_ms());
            if (one == TD_ENOTFOUND)
                TD_WARN("txn", "'%s' commits no offset for %s/%" PRId32 ": no such partition",
                        m->id, v[k].topic, v[k].partition);
            else if (one)
                rc = one;
            if (k + 1 == n && rc == TD_ENOTFOUND)
                rc = 0;
        }
        if (rc)
            TD_ERROR("txn", "cannot commit the offsets of group '%s' for '%s': %s",
                     m->offs[i].group, m->id, td_last_error());
    }
    if (!done)
        rc = -ENOMEM;
    free(done);
    free(v);
    return rc;
}

/* Writes the Prepare record of m's transaction (Ongoing) and waits until it is durable: the
 * outcome is settled from here (a restart completes it), so EndTxn answers now, as Kafka's does,
 * and complete() follows. */
static int prepare(struct td_txns *tx, tmeta *m, bool commit)
{
    tmeta c;
    int rc = copy_meta(m, &c);
    c.state = commit ? ST_PREPARE_COMMIT : ST_PREPARE_ABORT;
    c.update_ms = td_wall_ms();
    if (rc == 0)
        rc = change(tx, m, &c, true);
    drop_copy(&c);
    return rc;
}

/* Completes the transactions ms[0..n) (Prepare*, of distinct ids): markers, then the offsets of
 * a commit, then the Complete records. Each step waits for the one before to be durable, and
 * is shared by them all (one marking, one fsync of __transaction_state). Complete is waited
 * for too: the next transaction's Ongoing record is not (join), and a restart that found this
 * Prepare record last would write its markers again, over that next transaction's records.
 * A transaction whose step fails stays in Prepare: the scan (or a restart) tries again. */
static void complete_many(struct td_txns *tx, tmeta *const *ms, size_t n)
{
    /* Tests only (txn_fault_pause_ms): a window for kill -9. */
    for (int64_t left = tx->e->opts.txn_fault_pause_ms;
         left > 0 && !__atomic_load_n(&tx->stopping, __ATOMIC_ACQUIRE); left -= 10) {
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    int *rcs = calloc(n, sizeof(*rcs));
    tmeta *cs = calloc(n, sizeof(*cs));
    if (!rcs || !cs) {
        free(rcs);
        free(cs);
        return;
    }
    write_markers(tx, ms, n, rcs);
    int64_t end = -1;
    for (size_t i = 0; i < n; i++) {
        bool commit = ms[i]->state == ST_PREPARE_COMMIT;
        if (rcs[i] == 0 && commit)
            rcs[i] = commit_offsets(tx, ms[i]);
        if (rcs[i] == 0 && (rcs[i] = copy_meta(ms[i], &cs[i])) == 0) {
            parts_clear(&cs[i]);
            cs[i].state = commit ? ST_COMPLETE_COMMIT : ST_COMPLETE_ABORT;
            cs[i].update_ms = td_wall_ms();
            int64_t e = 0;
            if ((rcs[i] = write_meta(tx, &cs[i], false, false, &e)) == 0)
                end = TD_MAX(end, e);
        }
    }
    int rc = end >= 0 ? state_wait_solo(tx->e, STATE_TXNS, 0, end) : 0;
    for (size_t i = 0; i < n; i++) {
        if (rcs[i] == 0 && rc == 0) {
            TD_DEBUG("txn", "'%s' (producer %" PRId64 " epoch %d) %s", ms[i]->id, ms[i]->pid,
                     ms[i]->epoch, cs[i].state == ST_COMPLETE_COMMIT ? "committed" : "aborted");
            apply(tx, ms[i], &cs[i]);
        }
        drop_copy(&cs[i]);
    }
    free(cs);
    free(rcs);
}

static void complete(struct td_txns *tx, tmeta *m)
{
    complete_many(tx, &m, 1);
}

/* Ends m's transaction (Ongoing, or Prepare* when recovering) at m's epoch. */
static int end_txn(struct td_txns *tx, tmeta *m, bool commit)
{
    int rc = m->state == ST_ONGOING ? prepare(tx, m, commit) : 0;
    if (rc == 0)
        complete(tx, m);
    return rc;
}

/* Aborts m's ongoing transaction under a new epoch, fencing its producer (Kafka's
 * PrepareEpochFence). */
static int fence_abort(struct td_txns *tx, tmeta *m)
{
    pthread_mutex_lock(&tx->mu);
    m->last_epoch = -1;
    m->epoch = (int16_t)(m->epoch + 1); /* in memory first: verify refuses the old epoch */
    pthread_mutex_unlock(&tx->mu);
    return end_txn(tx, m, false);
}

static txn_err do_init(struct td_txns *tx, tjob *j, int64_t *pid, int16_t *epoch)
{
    if (!j->id[0])
        return TXN_INVALID_REQUEST;
    int64_t max = tx->e->opts.transaction_max_timeout_ms;
    if (j->timeout_ms <= 0 || j->timeout_ms > max)
        return TXN_INVALID_TIMEOUT;
    tmeta *m = find_id(tx, j->id);
    if (!m) {
        tmeta *n = calloc(1, sizeof(*n));
        if (!n || !(n->id = strdup(j->id)) || broker_producer_id_new(tx->e, &n->pid) != 0 ||
            insert_meta(tx, n) != 0) {
            meta_free(n);
            return TXN_UNAVAILABLE;
        }
        n->epoch = n->last_epoch = -1;
        n->start_ms = -1;
        m = n;
    }
    if (j->pid >= 0 && !(m->epoch < 0 || j->pid == m->pid))
        return TXN_FENCED;
    if (m->state == ST_ONGOING && fence_abort(tx, m) != 0)
        return TXN_UNAVAILABLE;
    if (m->state == ST_PREPARE_COMMIT || m->state == ST_PREPARE_ABORT)
        return TXN_CONCURRENT;
    tmeta c;
    if (copy_meta(m, &c) != 0) {
        drop_copy(&c);
        return TXN_UNAVAILABLE;
    }
    if (j->epoch >= 0 && j->pid == m->pid && j->epoch == m->last_epoch && m->epoch >= 0) {
        drop_copy(&c); /* a retry of the call that bumped it */
        *pid = m->pid;
        *epoch = m->epoch;
        return TXN_OK;
    }
    if (j->epoch >= 0 && j->pid == m->pid && j->epoch != m->epoch) {
        drop_copy(&c);
        return TXN_FENCED;
    }
    if (m->epoch >= EPOCH_EXHAUSTED) {
        if (broker_producer_id_new(tx->e, &c.pid) != 0) {
            drop_copy(&c);
            return TXN_UNAVAILABLE;
        }
        c.epoch = 0;
        c.last_epoch = -1;
    } else {
        c.last_epoch = m->epoch;
        c.epoch = (int16_t)(m->epoch + 1);
    }
    parts_clear(&c);
    c.state = ST_EMPTY;
    c.timeout_ms = j->timeout_ms;
    c.start_ms = -1;
    c.update_ms = td_wall_ms();
    int rc = change(tx, m, &c, true);
    drop_copy(&c);
    if (rc)
        return TXN_UNAVAILABLE;
    *pid = m->pid;
    *epoch = m->epoch;
    TD_DEBUG("txn", "'%s' is producer %" PRId64 " at epoch %d", m->id, m->pid, m->epoch);
    return TXN_OK;
}

/* The checks AddPartitionsToTxn and EndTxn share. */
static txn_err check_producer(struct td_txns *tx, tjob *j, tmeta **out)
{
    if (!j->id[0])
        return TXN_INVALID_REQUEST;
    tmeta *m = find_id(tx, j->id);
    if (!m || m->pid != j->pid)
        return TXN_BAD_MAPPING;
    if (m->epoch != j->epoch)
        return TXN_FENCED;
    if (m->state == ST_PREPARE_COMMIT || m->state == ST_PREPARE_ABORT)
        return TXN_CONCURRENT;
    *out = m;
    return TXN_OK;
}

/* Adds tps to m's transaction (Ongoing from here, its start time set when it begins). */
static txn_err join(struct td_txns *tx, tmeta *m, const txn_tp *tps, size_t n)
{
    bool all = m->state == ST_ONGOING;
    for (size_t i = 0; all && i < n; i++)
        all = has_part(m, tps[i].topic, tps[i].partition);
    if (all)
        return TXN_OK;
    tmeta c;
    int rc = copy_meta(m, &c);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = add_part(&c, tps[i].topic, tps[i].partition);
    if (rc == 0) {
        if (m->state != ST_ONGOING)
            c.start_ms = td_wall_ms();
        c.state = ST_ONGOING;
        c.update_ms = td_wall_ms();
        /* Not waited for: a restart that lost it finds the partitions' open transactions
         * instead (reconcile). Every later record of the id is waited for, and covers it. */
        rc = change(tx, m, &c, false);
    }
    drop_copy(&c);
    return rc ? TXN_UNAVAILABLE : TXN_OK;
}

static txn_err do_add(struct td_txns *tx, tjob *j)
{
    tmeta *m = NULL;
    txn_err err = check_producer(tx, j, &m);
    bool unknown = false;
    for (size_t i = 0; err == TXN_OK && i < j->ntps; i++) {
        td_topic_ref *ref = NULL;
        bool ok = broker_topic_acquire(tx->e, j->tps[i].topic, &ref) == 0 &&
                  !broker_topic_internal(ref) && j->tps[i].partition >= 0 &&
                  j->tps[i].partition < broker_topic_partitions(ref);
        if (ref)
            broker_topic_release(ref);
        j->tps[i].err = ok ? TXN_OK : TXN_UNKNOWN_PARTITION;
        unknown |= !ok;
    }
    if (unknown) {
        for (size_t i = 0; i < j->ntps; i++)
            if (j->tps[i].err == TXN_OK)
                j->tps[i].err = TXN_NOT_ATTEMPTED;
        return TXN_OK;
    }
    if (err == TXN_OK)
        err = join(tx, m, j->tps, j->ntps);
    for (size_t i = 0; i < j->ntps; i++)
        j->tps[i].err = err;
    return err;
}

static txn_err do_add_offsets(struct td_txns *tx, tjob *j)
{
    tmeta *m = NULL;
    txn_err err = check_producer(tx, j, &m);
    if (err)
        return err;
    if (!j->group || !j->group[0] || strlen(j->group) > TD_GROUP_NAME_MAX)
        return TXN_INVALID_GROUP;
    txn_tp tp = {STATE_OFFSETS_TOPIC, state_partition_for(tx->e, STATE_OFFSETS, j->group), TXN_OK};
    return join(tx, m, &tp, 1);
}

static txn_err do_commit_offsets(struct td_txns *tx, tjob *j)
{
    tmeta *m = NULL;
    txn_err err = check_producer(tx, j, &m);
    if (err)
        return err;
    if (m->state != ST_ONGOING ||
        !has_part(m, STATE_OFFSETS_TOPIC, state_partition_for(tx->e, STATE_OFFSETS, j->group)))
        return TXN_INVALID_STATE; /* AddOffsetsToTxn first */
    tmeta c;
    int rc = copy_meta(m, &c);
    for (size_t i = 0; rc == 0 && i < j->noffsets; i++)
        rc = offs_put(&c, j->group, &j->offsets[i]);
    c.update_ms = td_wall_ms();
    if (rc == 0)
        rc = change(tx, m, &c, true);
    drop_copy(&c);
    return rc ? TXN_UNAVAILABLE : TXN_OK;
}

/* EndTxn's checks: TXN_OK with *ending set to the id's transaction when it is to end (Ongoing),
 * TXN_OK alone for a retry of the call that ended it. */
static txn_err end_check(struct td_txns *tx, tjob *j, tmeta **ending)
{
    tmeta *m = NULL;
    txn_err err = check_producer(tx, j, &m);
    *ending = NULL;
    if (err)
        return err;
    if (m->state == ST_ONGOING) {
        *ending = m;
        return TXN_OK;
    }
    if ((m->state == ST_COMPLETE_COMMIT && j->commit) ||
        (m->state == ST_COMPLETE_ABORT && !j->commit))
        return TXN_OK; /* a retry of the call that ended it */
    return TXN_INVALID_STATE;
}

/* Aborts the transactions open past their timeout; forgets the ids idle past
 * transactional.id.expiration.ms. */
static void scan(struct td_txns *tx, int64_t now)
{
    for (size_t i = 0; i < tx->n; i++) {
        tmeta *m = tx->m[i];
        if (m->state == ST_PREPARE_COMMIT || m->state == ST_PREPARE_ABORT) {
            complete(tx, m); /* a marker that failed before */
            continue;
        }
        if (m->state == ST_ONGOING && m->start_ms + m->timeout_ms < now) {
            TD_INFO("txn",
                    "aborting the transaction of '%s' (producer %" PRId64
                    "), open longer than its timeout of %" PRId32 " ms",
                    m->id, m->pid, m->timeout_ms);
            fence_abort(tx, m);
        }
    }
    int64_t exp = tx->e->opts.transactional_id_expiration_ms;
    for (size_t i = 0; i < tx->n;) {
        tmeta *m = tx->m[i];
        bool idle = m->state == ST_EMPTY || m->state >= ST_COMPLETE_COMMIT;
        if (idle && m->update_ms + exp <= now && write_meta(tx, m, true, true, NULL) == 0) {
            TD_INFO("txn", "transactional id '%s' expired", m->id);
            pthread_mutex_lock(&tx->mu);
            tx->m[i] = tx->m[--tx->n];
            pthread_mutex_unlock(&tx->mu);
            meta_free(m);
            continue;
        }
        i++;
    }
}

/* Every job but EndTxn (run_batch). */
static void run_job(struct td_txns *tx, tjob *j)
{
    int64_t pid = -1;
    int16_t epoch = -1;
    txn_err err;
    switch (j->kind) {
    case JOB_INIT:
        err = do_init(tx, j, &pid, &epoch);
        break;
    case JOB_ADD:
        err = do_add(tx, j);
        break;
    case JOB_ADD_OFFSETS:
        err = do_add_offsets(tx, j);
        break;
    default:
        err = do_commit_offsets(tx, j);
    }
    j->done(j->arg, err, pid, epoch);
}

static void job_free(tjob *j)
{
    free(j->group);
    free(j->id);
    free(j);
}

/* An EndTxn of run_batch whose Prepare record is written. */
typedef struct tending {
    tjob *j;
    tmeta *m, c;
} tending;

/* Answers the EndTxn calls of v[0..n) once their Prepare records (written up to end) are
 * durable, then completes their transactions together. */
static void end_batch(struct td_txns *tx, tending *v, size_t n, int64_t end)
{
    int rc = state_wait_solo(tx->e, STATE_TXNS, 0, end);
    tmeta **ms = calloc(n, sizeof(*ms));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (rc == 0) {
            apply(tx, v[i].m, &v[i].c);
            if (ms)
                ms[k++] = v[i].m;
        }
        drop_copy(&v[i].c);
        v[i].j->done(v[i].j->arg, rc ? TXN_UNAVAILABLE : TXN_OK, -1, -1);
        if (rc == 0 && !ms)
            complete(tx, v[i].m);
        job_free(v[i].j);
    }
    /* The markers overlap the clients' next steps, which queue behind them. */
    if (k)
        complete_many(tx, ms, k);
    free(ms);
}

/* Runs the queued jobs (a list), in order: each EndTxn writes its Prepare record without
 * waiting, and they are answered together once one fsync covered them all (end_batch), their
 * markers and Complete records sharing fsyncs too; every other job runs on its own. A job of
 * an id whose EndTxn is in the batch waits for the next one: returns those, in order. */
static tjob *run_batch(struct td_txns *tx, tjob *jobs)
{
    tending *v = NULL;
    size_t n = 0, cap = 0;
    tjob *later = NULL, **tail = &later;
    int64_t end = -1;
    while (jobs) {
        tjob *j = jobs;
        jobs = j->next;
        j->next = NULL;
        bool busy = false;
        for (size_t i = 0; i < n && !busy; i++)
            busy = strcmp(v[i].j->id, j->id) == 0;
        if (busy) {
            *tail = j;
            tail = &j->next;
            continue;
        }
        if (__atomic_load_n(&tx->stopping, __ATOMIC_ACQUIRE)) {
            j->done(j->arg, TXN_UNAVAILABLE, -1, -1);
            job_free(j);
            continue;
        }
        if (j->kind != JOB_END) {
            run_job(tx, j);
            job_free(j);
            continue;
        }
        tmeta *m;
        txn_err err = end_check(tx, j, &m);
        if (m && td_grow(&v, &cap, n, sizeof(*v), 8) != 0)
            err = TXN_UNAVAILABLE;
        else if (m) {
            tending *t = &v[n];
            int64_t e = 0;
            int rc = copy_meta(m, &t->c);
            t->c.state = j->commit ? ST_PREPARE_COMMIT : ST_PREPARE_ABORT;
            t->c.update_ms = td_wall_ms();
            if (rc == 0 && write_meta(tx, &t->c, false, false, &e) == 0) {
                t->j = j;
                t->m = m;
                n++;
                end = TD_MAX(end, e);
                continue;
            }
            drop_copy(&t->c);
            err = TXN_UNAVAILABLE;
        }
        j->done(j->arg, err, -1, -1);
        job_free(j);
    }
    if (n)
        end_batch(tx, v, n, end);
    free(v);
    return later;
}

/* A partition's open transaction, found at start (reconcile). */
typedef struct open_txn {
    char topic[TD_TOPIC_NAME_MAX + 1];
    int32_t partition;
    int16_t epoch;
    int64_t pid;
} open_txn;

/* The open transactions of every partition, malloc'd (*n of them). */
static int open_txns(td_engine *e, open_txn **out, size_t *n)
{
    open_txn *v = NULL;
    size_t k = 0, cap = 0;
    int rc = 0;
    pthread_rwlock_rdlock(&e->lock);
    for (size_t i = 0; rc == 0 && i < e->ntopics; i++)
        for (int32_t j = 0; rc == 0 && j < e->topics[i]->nparts; j++) {
            td_producer_info *pv = NULL;
            size_t np = 0;
            if ((rc = part_producers(e->topics[i]->parts[j], &pv, &np)) != 0)
                break;
            for (size_t q = 0; rc == 0 && q < np; q++) {
                if (pv[q].txn_first < 0)
                    continue;
                if ((rc = td_grow(&v, &cap, k, sizeof(*v), 8)) != 0)
                    break;
                v[k] = (open_txn){.partition = j, .epoch = pv[q].epoch, .pid = pv[q].pid};
                snprintf(v[k++].topic, sizeof(v->topic), "%s", e->topics[i]->name);
            }
            free(pv);
        }
    pthread_rwlock_unlock(&e->lock);
    if (rc) {
        free(v);
        return rc;
    }
    *out = v;
    *n = k;
    return 0;
}

/* Aborts the open transaction of o's producer in o's partition (an ABORT marker, durable). */
static void abort_stray(struct td_txns *tx, const open_txn *o)
{
    td_topic_ref *ref = NULL;
    if (broker_topic_acquire(tx->e, o->topic, &ref) != 0)
        return;
    td_part *p = broker_topic_part(ref, o->partition);
    td_append_result res;
    pthread_rwlock_wrlock(&tx->marking);
    int rc = p ? part_append_marker(p, o->pid, o->epoch, false, 0, td_wall_ms(), &res) : 0;
    pthread_rwlock_unlock(&tx->marking);
    if (p && rc == 0)
        rc = part_wait_durable(p, res.end_offset);
    if (rc)
        TD_ERROR("txn", "cannot abort producer %" PRId64 "'s transaction in %s/%" PRId32 ": %s",
                 o->pid, o->topic, o->partition, td_last_error());
    else
        TD_INFO("txn",
                "aborted producer %" PRId64 "'s transaction in %s/%" PRId32
                ", which no transactional id holds",
                o->pid, o->topic, o->partition);
    broker_topic_release(ref);
}

/* At start, before any job: the partitions' open transactions against the replayed ids. The
 * Ongoing records are not waited for (join), so a crash can lose the last ones of an id while
 * a partition kept the records they let in. For producer pid's open transaction at epoch e in
 * partition P:
 *  - the id of pid is at epoch e and Ongoing, Empty or Complete*: P joins its transaction
 *    (Ongoing again if the record that began it was lost; the producer commits or aborts it,
 *    or the time-out does). A Complete record is written only after its markers are durable,
 *    so the open records are a later transaction's;
 *  - the id is at epoch e and Prepare* with P: completing it marks P;
 *  - anything else (no id, another epoch, a Prepare without P): nothing would ever end it, so
 *    P gets an ABORT marker now.
 * Joining writes no waited record: a crash before it is durable makes the next start do it
 * again. */
static void reconcile(struct td_txns *tx)
{
    open_txn *v = NULL;
    size_t n = 0;
    if (open_txns(tx->e, &v, &n) != 0) {
        TD_ERROR("txn", "cannot list the partitions' open transactions: %s", td_last_error());
        return;
    }
    for (size_t i = 0; i < n; i++) {
        tmeta *m = NULL;
        for (size_t k = 0; k < tx->n && !m; k++)
            if (tx->m[k]->pid == v[i].pid)
                m = tx->m[k];
        bool preparing = m && (m->state == ST_PREPARE_COMMIT || m->state == ST_PREPARE_ABORT);
        if (m && m->epoch == v[i].epoch && preparing && has_part(m, v[i].topic, v[i].partition))
            continue;
        txn_tp tp = {v[i].topic, v[i].partition, TXN_OK};
        if (!m || m->epoch != v[i].epoch || preparing)
            abort_stray(tx, &v[i]);
        else if (!(m->state == ST_ONGOING && has_part(m, tp.topic, tp.partition))) {
            TD_INFO("txn", "%s/%" PRId32 " rejoins the transaction of '%s' (a record lost)",
                    tp.topic, tp.partition, m->id);
            if (join(tx, m, &tp, 1) != TXN_OK)
                TD_ERROR("txn", "cannot add %s/%" PRId32 " to the transaction of '%s': %s",
                         tp.topic, tp.partition, m->id, td_last_error());
        }
    }
    free(v);
}

static void *txn_main(void *arg)
{
    struct td_txns *tx = arg;
    reconcile(tx);
    /* A restart finishes the transactions a Prepare record began. */
    for (size_t i = 0; i < tx->n; i++) {
        tmeta *m = tx->m[i];
        if (m->state == ST_PREPARE_COMMIT || m->state == ST_PREPARE_ABORT) {
            TD_INFO("txn", "completing the %s of '%s' that a restart interrupted",
                    m->state == ST_PREPARE_COMMIT ? "commit" : "abort", m->id);
            complete(tx, m);
        }
    }
    pthread_mutex_lock(&tx->mu);
    for (;;) {
        while (tx->head) {
            tjob *jobs = tx->head;
            tx->head = tx->tail = NULL;
            pthread_mutex_unlock(&tx->mu);
            tjob *later = run_batch(tx, jobs);
            pthread_mutex_lock(&tx->mu);
            if (later) { /* ahead of what came meanwhile */
                tjob *last = later;
                while (last->next)
                    last = last->next;
                last->next = tx->head;
                tx->head = later;
                if (!tx->tail)
                    tx->tail = last;
            }
        }
        if (tx->stopping)
            break;
        int64_t now = td_wall_ms();
        if (now >= tx->next_scan_ms) {
            tx->next_scan_ms = now + tx->e->opts.transaction_abort_interval_ms;
            pthread_mutex_unlock(&tx->mu);
            scan(tx, now);
            pthread_mutex_lock(&tx->mu);
            continue;
        }
        struct timespec ts = td_deadline_ns(CLOCK_MONOTONIC, (tx->next_scan_ms - now) * 1000000);
        pthread_cond_timedwait(&tx->cv, &tx->mu, &ts);
    }
    pthread_mutex_unlock(&tx->mu);
    return NULL;
}

static int submit(td_engine *e, tjob *j)
{
    struct td_txns *tx = e->txns;
    if (!tx || !j->id) {
        free(j->id);
        free(j);
        return tx ? -ENOMEM : TD_ECLOSED;
    }
    pthread_mutex_lock(&tx->mu);
    bool stopping = tx->stopping;
    if (!stopping) {
        if (tx->tail)
            tx->tail->next = j;
        else
            tx->head = j;
        tx->tail = j;
        pthread_cond_signal(&tx->cv);
    }
    pthread_mutex_unlock(&tx->mu);
    if (stopping) {
        free(j->id);
        free(j);
        return TD_ECLOSED;
    }
    return 0;
}

static tjob *job_new(int kind, const char *id, int64_t pid, int16_t epoch, txn_done_fn done,
                     void *arg)
{
    tjob *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    *j = (tjob){.kind = kind,
                .id = strdup(id ? id : ""),
                .pid = pid,
                .epoch = epoch,
                .done = done,
                .arg = arg};
    return j;
}

int broker_txn_init_pid(td_engine *e, const char *id, int32_t timeout_ms, int64_t pid,
                        int16_t epoch, txn_done_fn done, void *arg)
{
    tjob *j = job_new(JOB_INIT, id, pid, epoch, done, arg);
    if (!j)
        return -ENOMEM;
    j->timeout_ms = timeout_ms;
    return submit(e, j);
}

int broker_txn_add_partitions(td_engine *e, const char *id, int64_t pid, int16_t epoch, txn_tp *tps,
                              size_t n, txn_done_fn done, void *arg)
{
    tjob *j = job_new(JOB_ADD, id, pid, epoch, done, arg);
    if (!j)
        return -ENOMEM;
    j->tps = tps;
    j->ntps = n;
    return submit(e, j);
}

int broker_txn_add_offsets(td_engine *e, const char *id, int64_t pid, int16_t epoch,
                           const char *group, txn_done_fn done, void *arg)
{
    tjob *j = job_new(JOB_ADD_OFFSETS, id, pid, epoch, done, arg);
    if (!j)
        return -ENOMEM;
    if (!(j->group = strdup(group ? group : ""))) {
        free(j->id);
        free(j);
        return -ENOMEM;
    }
    return submit(e, j);
}

int broker_txn_commit_offsets(td_engine *e, const char *id, int64_t pid, int16_t epoch,
                              const char *group, const td_offset_commit *offsets, size_t n,
                              txn_done_fn done, void *arg)
{
    tjob *j = job_new(JOB_COMMIT_OFFSETS, id, pid, epoch, done, arg);
    if (!j)
        return -ENOMEM;
    if (!(j->group = strdup(group ? group : ""))) {
        free(j->id);
        free(j);
        return -ENOMEM;
    }
    j->offsets = offsets;
    j->noffsets = n;
    return submit(e, j);
}

bool broker_txn_offset_pending(td_engine *e, const char *group, const char *topic,
                               int32_t partition)
{
    struct td_txns *tx = e->txns;
    bool found = false;
    if (!tx || !group || !topic)
        return false;
    pthread_mutex_lock(&tx->mu);
    for (size_t i = 0; !found && i < tx->n; i++)
        for (size_t k = 0; !found && k < tx->m[i]->noffs; k++) {
            const toff *o = &tx->m[i]->offs[k];
            found = o->partition == partition && strcmp(o->group, group) == 0 &&
                    strcmp(o->topic, topic) == 0;
        }
    pthread_mutex_unlock(&tx->mu);
    return found;
}

int broker_txn_end(td_engine *e, const char *id, int64_t pid, int16_t epoch, bool commit,
                   txn_done_fn done, void *arg)
{
    tjob *j = job_new(JOB_END, id, pid, epoch, done, arg);
    if (!j)
        return -ENOMEM;
    j->commit = commit;
    return submit(e, j);
}

txn_err broker_txn_verify(td_engine *e, const char *id, int64_t pid, int16_t epoch,
                          const char *topic, int32_t partition)
{
    struct td_txns *tx = e->txns;
    if (!tx || !id)
        return TXN_INVALID_STATE;
    txn_err err = TXN_INVALID_STATE;
    pthread_rwlock_rdlock(&tx->marking);
    pthread_mutex_lock(&tx->mu);
    const tmeta *m = find_id(tx, id);
    if (m && m->pid == pid) {
        if (m->epoch != epoch)
            err = TXN_FENCED;
        else if (m->state == ST_ONGOING && has_part(m, topic, partition))
            err = TXN_OK;
    }
    pthread_mutex_unlock(&tx->mu);
    if (err != TXN_OK)
        pthread_rwlock_unlock(&tx->marking);
    return err;
}

void broker_txn_verified(td_engine *e)
{
    pthread_rwlock_unlock(&e->txns->marking);
}

int broker_part_producers(td_part *p, broker_producer **out, size_t *n)
{
    td_producer_info *v = NULL;
    size_t k = 0;
    int rc = part_producers(p, &v, &k);
    *out = NULL;
    *n = 0;
    if (rc)
        return rc;
    broker_producer *w = calloc(k + 1, sizeof(*w));
    for (size_t i = 0; w && i < k; i++)
        w[i] = (broker_producer){v[i].pid,         v[i].epoch,     v[i].last_seq,
                                 v[i].coord_epoch, v[i].txn_first, v[i].last_ts};
    free(v);
    if (!w)
        return -ENOMEM;
    *out = w;
    *n = k;
    return 0;
}

void broker_txn_infos_free(txn_info *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        for (size_t k = 0; k < v[i].nparts; k++)
            free((char *)v[i].parts[k].topic);
        free(v[i].parts);
        free(v[i].id);
    }
    free(v);
}

int broker_txn_list(td_engine *e, txn_info **out, size_t *n)
{
    struct td_txns *tx = e->txns;
    *out = NULL;
    *n = 0;
    if (!tx)
        return 0;
    pthread_mutex_lock(&tx->mu);
    txn_info *v = calloc(tx->n + 1, sizeof(*v));
    int rc = v ? 0 : -ENOMEM;
    for (size_t i = 0; rc == 0 && i < tx->n; i++) {
        const tmeta *m = tx->m[i];
        v[i] = (txn_info){.id = strdup(m->id),
                          .pid = m->pid,
                          .epoch = m->epoch,
                          .timeout_ms = m->timeout_ms,
                          .state = m->state,
                          .start_ms = m->start_ms};
        v[i].parts = calloc(m->nparts + 1, sizeof(*v[i].parts));
        if (!v[i].id || !v[i].parts)
            rc = -ENOMEM;
        for (size_t k = 0; rc == 0 && k < m->nparts; k++) {
            v[i].parts[k] = (txn_tp){strdup(m->parts[k].topic), m->parts[k].partition, TXN_OK};
            v[i].nparts = k + 1;
            if (!v[i].parts[k].topic)
                rc = -ENOMEM;
        }
    }
    size_t count = tx->n;
    pthread_mutex_unlock(&tx->mu);
    if (rc) {
        broker_txn_infos_free(v, count);
        return rc;
    }
    *out = v;
    *n = count;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Open and close
 */
int txns_open(td_engine *e)
{
    struct td_txns *tx = calloc(1, sizeof(*tx));
    if (!tx)
        return -ENOMEM;
    tx->e = e;
    pthread_mutex_init(&tx->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&tx->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&tx->marking, &ra);
    pthread_rwlockattr_destroy(&ra);
    int64_t t0 = td_mono_ms();
    int rc = state_replay(e, STATE_TXNS, replay_record, tx);
    if (rc == 0 && pthread_create(&tx->th, NULL, txn_main, tx) != 0)
        rc = td_fail(-EAGAIN, "cannot start the transaction coordinator's thread");
    if (rc) {
        for (size_t i = 0; i < tx->n; i++)
            meta_free(tx->m[i]);
        free(tx->m);
        pthread_rwlock_destroy(&tx->marking);
        pthread_cond_destroy(&tx->cv);
        pthread_mutex_destroy(&tx->mu);
        free(tx);
        return rc;
    }
    tx->running = true;
    e->txns = tx;
    TD_INFO("txn", "replayed %s: %zu transactional ids in %" PRId64 " ms", STATE_TXNS_TOPIC, tx->n,
            td_mono_ms() - t0);
    return 0;
}

void txns_close(td_engine *e)
{
    struct td_txns *tx = e->txns;
    if (!tx)
        return;
    pthread_mutex_lock(&tx->mu);
    __atomic_store_n(&tx->stopping, true, __ATOMIC_RELEASE);
    pthread_cond_signal(&tx->cv);
    pthread_mutex_unlock(&tx->mu);
    if (tx->running)
        pthread_join(tx->th, NULL);
    e->txns = NULL;
    for (size_t i = 0; i < tx->n; i++)
        meta_free(tx->m[i]);
    free(tx->m);
    pthread_rwlock_destroy(&tx->marking);
    pthread_cond_destroy(&tx->cv);
    pthread_mutex_destroy(&tx->mu);
    free(tx);
}
