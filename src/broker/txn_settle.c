/*
 * txn_settle.c: how the transaction coordinator settles transactions in the partitions
 * (txn_int.h; docs/kafka.md#transactions): the COMMIT and ABORT markers, appended under the
 * marking lock (KIP-890's VerificationGuard); the completion after an answered EndTxn (markers
 * appended at once, their fsyncs reported to the coordinator's thread, then a commit's offsets
 * and the id's record: complete_async and finish_pend), or at once and waited for (complete, for
 * a restart, a retry or a fenced producer); and, at start, the partitions' open transactions
 * that the replayed records do not account for (reconcile).
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
#include "broker/txn_int.h"

static void marks_release(tmark *v, size_t k)
{
    for (size_t x = 0; x < k; x++)
        if (v[x].ref)
            broker_topic_release(v[x].ref);
    free(v);
}

static void marker_failed(const tmark *x, int rc)
{
    TD_ERROR("txn", "cannot write the %s marker of '%s' to %s/%" PRId32 ": %s (tried again)",
             x->m->state == ST_PREPARE_COMMIT ? "COMMIT" : "ABORT", x->m->id, x->part->topic,
             x->part->partition, td_strerror(rc));
}

/* Whether a restart's completion of m must mark p: its producer's open transaction there began
 * below the partition's log end at Prepare (tp->end; not known: yes). One at or past it is the
 * next transaction's, after this one's marker, which is durable; none: nothing to end. */
static bool marker_needed(td_part *p, const tmeta *m, const tpart *tp)
{
    if (tp->end < 0)
        return true;
    td_producer_info *v = NULL;
    size_t n = 0;
    if (part_producers(p, &v, &n) != 0)
        return true;
    int64_t first = -1;
    for (size_t i = 0; i < n; i++)
        if (v[i].pid == m->pid)
            first = v[i].txn_first;
    free(v);
    return first >= 0 && first < tp->end;
}

/* Appends m's marker (m in Prepare*) to every partition of its transaction; the caller holds
 * tx->marking exclusively, so that no verified batch is between its check and its append.
 * careful: only where marker_needed says so (a restart's or a retry's completion). *out gets
 * the markers written (references held: marks_release). Returns 0 or the first failure. A
 * deleted topic or partition needs none. */
static int append_markers_locked(struct td_txns *tx, const tmeta *m, bool careful, tmark **out,
                                 size_t *nout)
{
    tmark *v = calloc(m->nparts ? m->nparts : 1, sizeof(*v));
    size_t k = 0;
    int first = 0;
    int64_t now = td_wall_ms();
    *out = v;
    *nout = 0;
    if (!v)
        return -ENOMEM;
    for (size_t i = 0; i < m->nparts; i++) {
        tmark *x = &v[k];
        *x = (tmark){.m = m, .part = &m->parts[i]};
        if (strcmp(x->part->topic, STATE_OFFSETS_TOPIC) == 0 ||        /* a group: see the top */
            broker_topic_acquire(tx->e, x->part->topic, &x->ref) != 0) /* deleted since */
            continue;
        k++;
        td_part *p = broker_topic_part(x->ref, x->part->partition);
        if (!p || (careful && !marker_needed(p, m, x->part)))
            continue;
        td_append_result res;
        int rc =
            part_append_marker(p, m->pid, m->epoch, m->state == ST_PREPARE_COMMIT, 0, now, &res);
        if (rc == 0)
            x->end = res.end_offset;
        else if (rc != TD_ENOTFOUND) { /* the partition deleted meanwhile: nothing to mark */
            marker_failed(x, rc);
            first = first ? first : rc;
        }
    }
    *nout = k;
    return first;
}

/* Waits until the markers v[0..k) are durable: 0 or the first failure. */
static int wait_markers(const tmark *v, size_t k)
{
    int first = 0;
    for (size_t x = 0; x < k; x++) {
        td_part *p = v[x].end > 0 ? broker_topic_part(v[x].ref, v[x].part->partition) : NULL;
        int rc = p ? part_wait_durable(p, v[x].end) : 0;
        if (rc && rc != TD_ENOTFOUND) {
            marker_failed(&v[x], rc);
            first = first ? first : rc;
        }
    }
    return first;
}

/* Writes the markers of the transactions ms[0..n) (Prepare*) and waits until they are durable
 * (markers of several transactions in a partition share its fsync), carefully (see
 * append_markers_locked). rcs[i]: 0 or ms[i]'s first failure (it stays in Prepare and is tried
 * again: a marker for a transaction already closed changes nothing). */
static void write_markers(struct td_txns *tx, tmeta *const *ms, size_t n, int *rcs)
{
    tmark **v = calloc(n, sizeof(*v));
    size_t *k = calloc(n, sizeof(*k));
    if (!v || !k) {
        for (size_t i = 0; i < n; i++)
            rcs[i] = -ENOMEM;
        free(v);
        free(k);
        return;
    }
    pthread_rwlock_wrlock(&tx->marking);
    for (size_t i = 0; i < n; i++)
        rcs[i] = append_markers_locked(tx, ms[i], true, &v[i], &k[i]);
    pthread_rwlock_unlock(&tx->marking);
    for (size_t i = 0; i < n; i++) {
        int rc = wait_markers(v[i], k[i]);
        rcs[i] = rcs[i] ? rcs[i] : rc;
        marks_release(v[i], k[i]);
    }
    free(v);
    free(k);
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

/* Notes in c (a transaction being Prepared) each partition's log end: its records are below
 * it, and its marker and the next transaction's records will be at or past it (see the top). */
void txc_note_ends(struct td_txns *tx, tmeta *c)
{
    for (size_t i = 0; i < c->nparts; i++) {
        td_topic_ref *ref = NULL;
        c->parts[i].end = -1;
        if (strcmp(c->parts[i].topic, STATE_OFFSETS_TOPIC) == 0 ||
            broker_topic_acquire(tx->e, c->parts[i].topic, &ref) != 0)
            continue;
        td_part *p = broker_topic_part(ref, c->parts[i].partition);
        if (p)
            c->parts[i].end = part_log_end(p);
        broker_topic_release(ref);
    }
}

/* Writes the Prepare record of m's transaction (Ongoing) and waits until it is durable: the
 * outcome is settled from here (a restart completes it), so EndTxn answers now, as Kafka's does,
 * and txc_complete() follows. */
int txc_prepare(struct td_txns *tx, tmeta *m, bool commit)
{
    tmeta c;
    int rc = txc_copy_meta(m, &c);
    c.state = commit ? ST_PREPARE_COMMIT : ST_PREPARE_ABORT;
    c.update_ms = td_wall_ms();
    if (rc == 0) {
        txc_note_ends(tx, &c);
        rc = txc_change(tx, m, &c, true);
    }
    txc_drop_copy(&c);
    return rc;
}

/* Tests only (txn_fault_pause_ms): a window for kill -9 between Prepare and the markers. */
static void fault_pause(struct td_txns *tx)
{
    for (int64_t left = tx->e->opts.txn_fault_pause_ms;
         left > 0 && !__atomic_load_n(&tx->stopping, __ATOMIC_ACQUIRE); left -= 10) {
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
}

/* Completes the transactions ms[0..n) (Prepare*, of distinct ids): markers, then the offsets of
 * a commit, then the Complete records. Each step waits for the one before to be durable, and
 * is shared by them all (one marking, one fsync of __transaction_state). Complete is waited
 * for too: the next transaction's Ongoing record is not (join), and a restart that found this
 * Prepare record last would write its markers again, over that next transaction's records.
 * A transaction whose step fails stays in Prepare: the scan (or a restart) tries again. */
static void complete_many(struct td_txns *tx, tmeta *const *ms, size_t n)
{
    fault_pause(tx);
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
        if (rcs[i] == 0 && (rcs[i] = txc_copy_meta(ms[i], &cs[i])) == 0) {
            txc_parts_clear(&cs[i]);
            cs[i].state = commit ? ST_COMPLETE_COMMIT : ST_COMPLETE_ABORT;
            cs[i].update_ms = td_wall_ms();
            int64_t e = 0;
            if ((rcs[i] = txc_write_meta(tx, &cs[i], false, false, &e)) == 0)
                end = TD_MAX(end, e);
        }
    }
    int rc = end >= 0 ? state_wait_solo(tx->e, STATE_TXNS, 0, end) : 0;
    for (size_t i = 0; i < n; i++) {
        if (rcs[i] == 0 && rc == 0) {
            TD_DEBUG("txn", "'%s' (producer %" PRId64 " epoch %d) %s", ms[i]->id, ms[i]->pid,
                     ms[i]->epoch, cs[i].state == ST_COMPLETE_COMMIT ? "committed" : "aborted");
            txc_apply(tx, ms[i], &cs[i]);
        }
        txc_drop_copy(&cs[i]);
    }
    free(cs);
    free(rcs);
}

void txc_complete(struct td_txns *tx, tmeta *m)
{
    complete_many(tx, &m, 1);
}

/* A marker's fsync reported (on the flusher's thread, or at once in this one). */
static void marker_durable(void *arg, int rc)
{
    tpend *pd = arg;
    pthread_mutex_lock(&pd->tx->mu);
    if (rc && !pd->rc)
        pd->rc = rc;
    pd->outstanding--;
    pthread_cond_signal(&pd->tx->cv);
    pthread_mutex_unlock(&pd->tx->mu);
}

void txc_pend_free(tpend *pd)
{
    marks_release(pd->marks, pd->nmarks);
    txc_drop_copy(&pd->snap);
    free(pd);
}

/* Completes the transactions ms[0..n) (just Prepared, of distinct ids) without waiting: their
 * markers are appended at once (before any later call of their ids can let a batch in), their
 * ids become Complete in memory, and the fsyncs are asked for; finish_pend does the rest once
 * they are durable. Meanwhile the ids' AddPartitionsToTxn calls are answered from memory, so
 * that the markers' fsync overlaps the producer's next transaction; what writes a record waits
 * (the Prepare record must stay the id's last until the markers are durable). */
void txc_complete_async(struct td_txns *tx, tmeta *const *ms, size_t n)
{
    fault_pause(tx);
    tpend **pds = calloc(n, sizeof(*pds));
    for (size_t i = 0; pds && i < n; i++)
        if ((pds[i] = calloc(1, sizeof(**pds))) && txc_copy_meta(ms[i], &pds[i]->snap) != 0) {
            txc_drop_copy(&pds[i]->snap);
            free(pds[i]);
            pds[i] = NULL;
        }
    pthread_rwlock_wrlock(&tx->marking);
    for (size_t i = 0; pds && i < n; i++)
        if (pds[i]) {
            pds[i]->tx = tx;
            pds[i]->snap.pend = NULL;
            pds[i]->rc =
                append_markers_locked(tx, &pds[i]->snap, false, &pds[i]->marks, &pds[i]->nmarks);
        }
    pthread_rwlock_unlock(&tx->marking);
    for (size_t i = 0; i < n; i++) {
        tpend *pd = pds ? pds[i] : NULL;
        tmeta *m = ms[i];
        if (!pd) { /* out of memory: the slow way */
            txc_complete(tx, m);
            continue;
        }
        pthread_mutex_lock(&tx->mu);
        for (size_t x = 0; x < pd->nmarks; x++)
            pd->outstanding += pd->marks[x].end > 0;
        m->state = m->state == ST_PREPARE_COMMIT ? ST_COMPLETE_COMMIT : ST_COMPLETE_ABORT;
        m->update_ms = td_wall_ms();
        txc_parts_clear(m);
        m->pend = pd;
        tx->npend++;
        pthread_mutex_unlock(&tx->mu);
        for (size_t x = 0; x < pd->nmarks; x++) {
            const tmark *k = &pd->marks[x];
            if (k->end > 0 &&
                broker_when_durable(k->ref, k->part->partition, k->end, marker_durable, pd) != 0)
                marker_durable(pd, -EIO);
        }
    }
    free(pds);
}

/* Puts the parked jobs of id back at the head of the queue, in order. */
static void unpark(struct td_txns *tx, const char *id)
{
    tjob *back = NULL, **bt = &back, **pp = &tx->parked;
    pthread_mutex_lock(&tx->mu);
    while (*pp) {
        tjob *j = *pp;
        if (strcmp(j->id, id) == 0) {
            *pp = j->next;
            j->next = NULL;
            *bt = j;
            bt = &j->next;
        } else {
            pp = &j->next;
        }
    }
    if (back) {
        *bt = tx->head;
        tx->head = back;
        if (!tx->tail) {
            tjob *t = back;
            while (t->next)
                t = t->next;
            tx->tail = t;
        }
    }
    pthread_mutex_unlock(&tx->mu);
}

/* Finishes m's completion once its markers are durable: a commit's offsets, then the id's
 * record as it is now (Complete, or the next transaction's Ongoing), which takes the Prepare
 * record's place. Waited for with offsets, as complete_many's Complete record is. A failure
 * leaves it for the scan (retry_pend). */
static void finish_pend(struct td_txns *tx, tmeta *m)
{
    tpend *pd = m->pend;
    int rc = pd->snap.state == ST_PREPARE_COMMIT ? commit_offsets(tx, &pd->snap) : 0;
    if (rc == 0) {
        tmeta c;
        if ((rc = txc_copy_meta(m, &c)) == 0)
            rc = txc_write_meta(tx, &c, false, pd->snap.noffs > 0, NULL);
        txc_drop_copy(&c);
    }
    pthread_mutex_lock(&tx->mu);
    if (rc) {
        pd->rc = rc;
    } else {
        m->pend = NULL;
        tx->npend--;
    }
    pthread_mutex_unlock(&tx->mu);
    if (rc)
        return;
    TD_DEBUG("txn", "'%s' (producer %" PRId64 " epoch %d) %s", m->id, pd->snap.pid, pd->snap.epoch,
             pd->snap.state == ST_PREPARE_COMMIT ? "committed" : "aborted");
    txc_pend_free(pd);
    unpark(tx, m->id);
}

/* Finishes the completions whose markers are all durable. */
void txc_finish_ready(struct td_txns *tx)
{
    for (size_t i = 0; i < tx->n; i++) {
        tmeta *m = tx->m[i];
        pthread_mutex_lock(&tx->mu);
        bool ready = m->pend && m->pend->outstanding == 0 && m->pend->rc == 0;
        pthread_mutex_unlock(&tx->mu);
        if (ready)
            finish_pend(tx, m);
    }
}

/* The scan's retry of a completion that failed: its markers again, carefully (some are
 * written, and the next transaction may have records after them), then finish_pend. */
void txc_retry_pend(struct td_txns *tx, tmeta *m)
{
    tpend *pd = m->pend;
    pthread_mutex_lock(&tx->mu);
    bool failed = pd->outstanding == 0 && pd->rc != 0;
    pthread_mutex_unlock(&tx->mu);
    if (!failed)
        return;
    tmeta *snap = &pd->snap;
    int rc = 0;
    write_markers(tx, &snap, 1, &rc);
    if (rc)
        return;
    pthread_mutex_lock(&tx->mu);
    pd->rc = 0;
    pthread_mutex_unlock(&tx->mu);
    finish_pend(tx, m);
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
void txc_reconcile(struct td_txns *tx)
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
        if (m && m->epoch == v[i].epoch && preparing && txc_has_part(m, v[i].topic, v[i].partition))
            continue;
        txn_tp tp = {v[i].topic, v[i].partition, TXN_OK};
        if (!m || m->epoch != v[i].epoch || preparing)
            abort_stray(tx, &v[i]);
        else if (!(m->state == ST_ONGOING && txc_has_part(m, tp.topic, tp.partition))) {
            TD_INFO("txn", "%s/%" PRId32 " rejoins the transaction of '%s' (a record lost)",
                    tp.topic, tp.partition, m->id);
            if (txc_join(tx, m, &tp, 1) != TXN_OK)
                TD_ERROR("txn", "cannot add %s/%" PRId32 " to the transaction of '%s': %s",
                         tp.topic, tp.partition, m->id, td_last_error());
        }
    }
    free(v);
}

/* Whether a completion has all its markers' fsyncs reported (under mu). */
bool txc_pend_ready_locked(struct td_txns *tx)
{
    for (size_t i = 0; i < tx->n; i++)
        if (tx->m[i]->pend && tx->m[i]->pend->outstanding == 0 && tx->m[i]->pend->rc == 0)
            return true;
    return false;
}

/* At the stop: the completions still running are finished if their markers' fsyncs report
 * within a bound (each forced by a wait), else left to the restart, which finishes them from
 * their Prepare records; the parked jobs are answered. A completion whose fsync has not
 * reported is not freed: its callback still holds it (and tx: see txns_close). */
void txc_drain(struct td_txns *tx)
{
    for (size_t i = 0; i < tx->n; i++)
        if (tx->m[i]->pend)
            wait_markers(tx->m[i]->pend->marks, tx->m[i]->pend->nmarks);
    pthread_mutex_lock(&tx->mu);
    struct timespec ts = td_deadline_ns(CLOCK_MONOTONIC, 10 * 1000000000LL);
    bool all = false;
    while (!all) {
        all = true;
        for (size_t i = 0; i < tx->n; i++)
            all &= !tx->m[i]->pend || tx->m[i]->pend->outstanding == 0;
        if (!all && pthread_cond_timedwait(&tx->cv, &tx->mu, &ts) != 0)
            break;
    }
    tjob *parked = tx->parked;
    tx->parked = NULL;
    pthread_mutex_unlock(&tx->mu);
    if (all)
        txc_finish_ready(tx);
    while (parked) {
        tjob *j = parked;
        parked = j->next;
        j->done(j->arg, TXN_UNAVAILABLE, -1, -1);
        txc_job_free(j);
    }
    if (!all)
        TD_ERROR("txn", "a marker's fsync did not report within 10 s of the stop");
    tx->drained = all;
}
