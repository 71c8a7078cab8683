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
 * Value version 2 (a Prepare record) then appends each partition's log end when it was written,
 * in the order of the partitions above: int32 count, int64 ends (-1: none). A restart that
 * finishes the Prepare marks a partition only if the producer's open transaction there began
 * below that end: one at or past it is the next transaction's (whose records the marker, already
 * durable, came before), which joins that transaction again (reconcile).
 * Replay keeps the last record of each id; a Prepare state found there is finished (markers,
 * then Complete) when the coordinator's thread starts.
 *
 * One thread does every change, one job at a time: it changes memory under mu after each
 * record is durable, so that broker_txn_verify (any thread, under mu) sees only what a restart
 * would see; but for two records that are not waited for, the Ongoing records of
 * AddPartitionsToTxn and the record that replaces a Prepare once its markers are durable: a
 * restart that lost them finishes the Prepare record and finds the partitions' open
 * transactions instead (txn_settle.c). The thread takes the queued jobs as a batch (run_batch):
 * the EndTxn calls among them write their Prepare records and are answered together once one
 * fsync covered them all, as Kafka answers EndTxn; their completions then run without holding
 * the thread (txc_complete_async), and the ids' calls that write a record wait for them
 * (must_park). The ids are in an array searched linearly (transactional ids are few: one per
 * producer instance of an exactly-once application).
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
    if (m->pend)
        txc_pend_free(m->pend);
    for (size_t i = 0; i < m->nparts; i++)
        free(m->parts[i].topic);
    free(m->parts);
    offs_clear(m);
    free(m->offs);
    free(m->id);
    free(m);
}

void txc_parts_clear(tmeta *m)
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

bool txc_has_part(const tmeta *m, const char *topic, int32_t partition)
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
    m->parts[i] = (tpart){t, partition, -1};
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
    bool ends = false;
    for (size_t i = 0; i < m->nparts; i++)
        ends |= m->parts[i].end >= 0;
    int16_t version = ends ? 2 : m->noffs ? 1 : 0;
    int rc = state_put16(v, version) | state_put64(v, m->pid) | state_put16(v, m->epoch) |
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
    if (version >= 1) {
        rc |= state_put32(v, (int32_t)m->noffs);
        for (size_t i = 0; i < m->noffs && rc == 0; i++) {
            const toff *o = &m->offs[i];
            rc |= state_put_str(v, o->group) | state_put_str(v, o->topic) |
                  state_put32(v, o->partition) | state_put64(v, o->offset) |
                  state_put32(v, o->leader_epoch) | state_put_str(v, o->metadata);
        }
    }
    if (version >= 2) {
        rc |= state_put32(v, (int32_t)m->nparts);
        for (size_t i = 0; i < m->nparts; i++)
            rc |= state_put64(v, m->parts[i].end);
    }
    return rc ? (rc == TD_ETOOBIG ? rc : -ENOMEM) : 0;
}

/* Writes m's record (a tombstone when tomb): *end gets the offset to wait for (state_wait_solo:
 * this thread is the topic's only writer) and, with wait, waits until it is durable. */
int txc_write_meta(struct td_txns *tx, const tmeta *m, bool tomb, bool wait, int64_t *end_out)
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
    int32_t nends = version >= 2 ? state_get32(&v) : 0;
    if (nends != (version >= 2 ? (int32_t)m->nparts : 0))
        v.bad = true;
    for (int32_t i = 0; i < nends && !v.bad; i++)
        m->parts[i].end = state_get64(&v);
    if (v.bad || m->state > ST_COMPLETE_ABORT || m->pid < 0) {
        TD_WARN("txn", "ignoring an unreadable record of transactional id '%s'", id);
        meta_free(m);
        return 0;
    }
    if (m->state == ST_EMPTY || m->state >= ST_COMPLETE_COMMIT)
        txc_parts_clear(m);
    int rc = insert_meta(tx, m);
    if (rc)
        meta_free(m);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Changes (on the coordinator's thread)
 */
/* Frees what a copy (copy_meta) or a replaced state owns, but its id. */
void txc_drop_copy(tmeta *c)
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
void txc_apply(struct td_txns *tx, tmeta *m, tmeta *c)
{
    pthread_mutex_lock(&tx->mu);
    tmeta old = *m;
    *m = *c;
    pthread_mutex_unlock(&tx->mu);
    old.id = NULL;
    txc_drop_copy(&old);
    c->parts = NULL; /* m owns them now */
    c->nparts = c->cap = 0;
    c->offs = NULL;
    c->noffs = c->offs_cap = 0;
}

/* Applies a change of m (a copy, c) once its record is durable (with wait; else once it is
 * written: a later durable record of the topic covers it). */
int txc_change(struct td_txns *tx, tmeta *m, tmeta *c, bool wait)
{
    int rc = txc_write_meta(tx, c, false, wait, NULL);
    if (rc == 0)
        txc_apply(tx, m, c);
    return rc;
}

/* A deep copy of m's partitions into c (a copy of m). */
int txc_copy_meta(const tmeta *m, tmeta *c)
{
    *c = *m;
    c->parts = NULL;
    c->nparts = c->cap = 0;
    c->offs = NULL;
    c->noffs = c->offs_cap = 0;
    for (size_t i = 0; i < m->nparts; i++)
        if (add_part(c, m->parts[i].topic, m->parts[i].partition) != 0)
            return -ENOMEM;
    for (size_t i = 0; i < m->nparts; i++) /* in the same order */
        c->parts[i].end = m->parts[i].end;
    for (size_t i = 0; i < m->noffs; i++) {
        const toff *o = &m->offs[i];
        td_offset_commit x = {o->topic, o->partition, o->offset, o->leader_epoch, o->metadata};
        if (offs_put(c, o->group, &x) != 0)
            return -ENOMEM;
    }
    return 0;
}

/* Ends m's transaction (Ongoing, or Prepare* when recovering) at m's epoch. */
static int end_txn(struct td_txns *tx, tmeta *m, bool commit)
{
    int rc = m->state == ST_ONGOING ? txc_prepare(tx, m, commit) : 0;
    if (rc == 0)
        txc_complete(tx, m);
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
    if (txc_copy_meta(m, &c) != 0) {
        txc_drop_copy(&c);
        return TXN_UNAVAILABLE;
    }
    if (j->epoch >= 0 && j->pid == m->pid && j->epoch == m->last_epoch && m->epoch >= 0) {
        txc_drop_copy(&c); /* a retry of the call that bumped it */
        *pid = m->pid;
        *epoch = m->epoch;
        return TXN_OK;
    }
    if (j->epoch >= 0 && j->pid == m->pid && j->epoch != m->epoch) {
        txc_drop_copy(&c);
        return TXN_FENCED;
    }
    if (m->epoch >= EPOCH_EXHAUSTED) {
        if (broker_producer_id_new(tx->e, &c.pid) != 0) {
            txc_drop_copy(&c);
            return TXN_UNAVAILABLE;
        }
        c.epoch = 0;
        c.last_epoch = -1;
    } else {
        c.last_epoch = m->epoch;
        c.epoch = (int16_t)(m->epoch + 1);
    }
    txc_parts_clear(&c);
    c.state = ST_EMPTY;
    c.timeout_ms = j->timeout_ms;
    c.start_ms = -1;
    c.update_ms = td_wall_ms();
    int rc = txc_change(tx, m, &c, true);
    txc_drop_copy(&c);
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
txn_err txc_join(struct td_txns *tx, tmeta *m, const txn_tp *tps, size_t n)
{
    bool all = m->state == ST_ONGOING;
    for (size_t i = 0; all && i < n; i++)
        all = txc_has_part(m, tps[i].topic, tps[i].partition);
    if (all)
        return TXN_OK;
    tmeta c;
    int rc = txc_copy_meta(m, &c);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = add_part(&c, tps[i].topic, tps[i].partition);
    if (rc == 0) {
        if (m->state != ST_ONGOING)
            c.start_ms = td_wall_ms();
        c.state = ST_ONGOING;
        c.update_ms = td_wall_ms();
        /* Not waited for: a restart that lost it finds the partitions' open transactions
         * instead (reconcile). Every later record of the id is waited for, and covers it.
         * While the last transaction's completion runs, not written at all (finish_pend
         * writes the id's state): the Prepare record must stay the id's last till then. */
        if (m->pend)
            txc_apply(tx, m, &c);
        else
            rc = txc_change(tx, m, &c, false);
    }
    txc_drop_copy(&c);
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
        err = txc_join(tx, m, j->tps, j->ntps);
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
    return txc_join(tx, m, &tp, 1);
}

static txn_err do_commit_offsets(struct td_txns *tx, tjob *j)
{
    tmeta *m = NULL;
    txn_err err = check_producer(tx, j, &m);
    if (err)
        return err;
    if (m->state != ST_ONGOING ||
        !txc_has_part(m, STATE_OFFSETS_TOPIC, state_partition_for(tx->e, STATE_OFFSETS, j->group)))
        return TXN_INVALID_STATE; /* AddOffsetsToTxn first */
    tmeta c;
    int rc = txc_copy_meta(m, &c);
    for (size_t i = 0; rc == 0 && i < j->noffsets; i++)
        rc = offs_put(&c, j->group, &j->offsets[i]);
    c.update_ms = td_wall_ms();
    if (rc == 0)
        rc = txc_change(tx, m, &c, true);
    txc_drop_copy(&c);
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
        if (m->pend) { /* its completion runs: nothing else till it is done */
            txc_retry_pend(tx, m);
            continue;
        }
        if (m->state == ST_PREPARE_COMMIT || m->state == ST_PREPARE_ABORT) {
            txc_complete(tx, m); /* a marker that failed before */
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
        bool idle = !m->pend && (m->state == ST_EMPTY || m->state >= ST_COMPLETE_COMMIT);
        if (idle && m->update_ms + exp <= now && txc_write_meta(tx, m, true, true, NULL) == 0) {
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

void txc_job_free(tjob *j)
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
            txc_apply(tx, v[i].m, &v[i].c);
            if (ms)
                ms[k++] = v[i].m;
        }
        txc_drop_copy(&v[i].c);
        v[i].j->done(v[i].j->arg, rc ? TXN_UNAVAILABLE : TXN_OK, -1, -1);
        if (rc == 0 && !ms)
            txc_complete(tx, v[i].m);
        txc_job_free(v[i].j);
    }
    if (k)
        txc_complete_async(tx, ms, k);
    free(ms);
}

/* Whether j waits for its id's completion (complete_async): every call that writes a record of
 * the id does, but AddPartitionsToTxn and AddOffsetsToTxn (answered from memory meanwhile),
 * and every call after one that waits, so that the id's calls keep their order. */
static bool must_park(struct td_txns *tx, const tjob *j)
{
    for (const tjob *p = tx->parked; p; p = p->next)
        if (strcmp(p->id, j->id) == 0)
            return true;
    const tmeta *m = find_id(tx, j->id);
    return m && m->pend && j->kind != JOB_ADD && j->kind != JOB_ADD_OFFSETS;
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
            txc_job_free(j);
            continue;
        }
        if (must_park(tx, j)) {
            tjob **pp = &tx->parked;
            while (*pp)
                pp = &(*pp)->next;
            *pp = j;
            continue;
        }
        if (j->kind != JOB_END) {
            run_job(tx, j);
            txc_job_free(j);
            continue;
        }
        tmeta *m;
        txn_err err = end_check(tx, j, &m);
        if (m && td_grow(&v, &cap, n, sizeof(*v), 8) != 0)
            err = TXN_UNAVAILABLE;
        else if (m) {
            tending *t = &v[n];
            int64_t e = 0;
            int rc = txc_copy_meta(m, &t->c);
            t->c.state = j->commit ? ST_PREPARE_COMMIT : ST_PREPARE_ABORT;
            t->c.update_ms = td_wall_ms();
            if (rc == 0)
                txc_note_ends(tx, &t->c);
            if (rc == 0 && txc_write_meta(tx, &t->c, false, false, &e) == 0) {
                t->j = j;
                t->m = m;
                n++;
                end = TD_MAX(end, e);
                continue;
            }
            txc_drop_copy(&t->c);
            err = TXN_UNAVAILABLE;
        }
        j->done(j->arg, err, -1, -1);
        txc_job_free(j);
    }
    if (n)
        end_batch(tx, v, n, end);
    free(v);
    return later;
}

static void *txn_main(void *arg)
{
    struct td_txns *tx = arg;
    /* A restart finishes the transactions a Prepare record began (carefully: the next
     * transaction may have records after their markers), then settles the partitions' open
     * transactions that no record accounts for. */
    for (size_t i = 0; i < tx->n; i++) {
        tmeta *m = tx->m[i];
        if (m->state == ST_PREPARE_COMMIT || m->state == ST_PREPARE_ABORT) {
            TD_INFO("txn", "completing the %s of '%s' that a restart interrupted",
                    m->state == ST_PREPARE_COMMIT ? "commit" : "abort", m->id);
            txc_complete(tx, m);
        }
    }
    txc_reconcile(tx);
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
        if (tx->npend) {
            pthread_mutex_unlock(&tx->mu);
            txc_finish_ready(tx);
            pthread_mutex_lock(&tx->mu);
            if (tx->head)
                continue;
        }
        int64_t now = td_wall_ms();
        if (now >= tx->next_scan_ms) {
            tx->next_scan_ms = now + tx->e->opts.transaction_abort_interval_ms;
            pthread_mutex_unlock(&tx->mu);
            scan(tx, now);
            pthread_mutex_lock(&tx->mu);
            continue;
        }
        if (tx->npend && txc_pend_ready_locked(tx))
            continue;
        struct timespec ts = td_deadline_ns(CLOCK_MONOTONIC, (tx->next_scan_ms - now) * 1000000);
        pthread_cond_timedwait(&tx->cv, &tx->mu, &ts);
    }
    pthread_mutex_unlock(&tx->mu);
    txc_drain(tx);
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
        for (int which = 0; which < 2 && !found; which++) {
            /* the id's transaction, and the last one while its completion runs */
            const tmeta *m = which ? (tx->m[i]->pend ? &tx->m[i]->pend->snap : NULL) : tx->m[i];
            for (size_t k = 0; m && !found && k < m->noffs; k++) {
                const toff *o = &m->offs[k];
                found = o->partition == partition && strcmp(o->group, group) == 0 &&
                        strcmp(o->topic, topic) == 0;
            }
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
        else if (m->state == ST_ONGOING && txc_has_part(m, topic, partition))
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
        /* While the last transaction's markers are not yet durable, it is what shows (in
         * Prepare, as Kafka shows it till its markers are written), unless a new one began. */
        const tmeta *m = tx->m[i];
        if (m->pend && m->state != ST_ONGOING)
            m = &m->pend->snap;
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
    if (tx->running && !tx->drained)
        return; /* a marker's fsync callback still holds it (drain): kept, not freed */
    for (size_t i = 0; i < tx->n; i++)
        meta_free(tx->m[i]);
    free(tx->m);
    pthread_rwlock_destroy(&tx->marking);
    pthread_cond_destroy(&tx->cv);
    pthread_mutex_destroy(&tx->mu);
    free(tx);
}
