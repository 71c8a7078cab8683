/*
 * txn_int.h: what the transaction coordinator's two files share (docs/kafka.md#transactions):
 * txn.c keeps the ids' state, its records in __transaction_state and the calls' jobs;
 * txn_settle.c settles transactions in the partitions: markers, the completion that follows an
 * answered EndTxn, and what a restart finds open. Not for use outside them.
 */
#ifndef TD_BROKER_TXN_INT_H
#define TD_BROKER_TXN_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "broker/engine_int.h"
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
    int64_t end; /* in a Prepare record: the partition's log end then (-1: not known) */
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
    struct tpend *pend; /* the completion of its last transaction, while it runs */
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
    size_t npend; /* ids with a completion running (tpend), under mu */
    bool drained; /* every completion's fsyncs reported at the stop */
    tjob *parked; /* jobs of those ids waiting for it, in order */
    int64_t next_scan_ms;
};

/* A marker written to a partition (append_markers_locked). */
typedef struct tmark {
    const tmeta *m;    /* whose */
    const tpart *part; /* where */
    td_topic_ref *ref;
    int64_t end; /* to wait for; 0: nothing written */
} tmark;

/* A transaction completed after its EndTxn was answered (complete_async): its markers are
 * written and their fsyncs asked for; once they are durable, finish_pend commits its offsets
 * and writes the id's record, and the id's calls that would write a record wait till then. */
typedef struct tpend {
    struct td_txns *tx;
    tmeta snap; /* the transaction as its Prepare record has it */
    tmark *marks;
    size_t nmarks;
    int outstanding; /* markers whose fsync has not reported yet, under tx->mu */
    int rc;          /* the first failure, under tx->mu: the scan tries again */
} tpend;

/* txn.c: an id's state in memory and its records (the coordinator's thread but where said). */
int txc_copy_meta(const tmeta *m, tmeta *c);
void txc_drop_copy(tmeta *c);
void txc_apply(struct td_txns *tx, tmeta *m, tmeta *c);
int txc_change(struct td_txns *tx, tmeta *m, tmeta *c, bool wait);
int txc_write_meta(struct td_txns *tx, const tmeta *m, bool tomb, bool wait, int64_t *end_out);
bool txc_has_part(const tmeta *m, const char *topic, int32_t partition);
void txc_parts_clear(tmeta *m);
txn_err txc_join(struct td_txns *tx, tmeta *m, const txn_tp *tps, size_t n);
void txc_job_free(tjob *j);

/* txn_settle.c (the coordinator's thread). */
void txc_pend_free(tpend *pd);
int txc_prepare(struct td_txns *tx, tmeta *m, bool commit);
void txc_complete(struct td_txns *tx, tmeta *m);
void txc_complete_async(struct td_txns *tx, tmeta *const *ms, size_t n);
void txc_note_ends(struct td_txns *tx, tmeta *c);
void txc_finish_ready(struct td_txns *tx);
void txc_retry_pend(struct td_txns *tx, tmeta *m);
void txc_reconcile(struct td_txns *tx);
bool txc_pend_ready_locked(struct td_txns *tx);
void txc_drain(struct td_txns *tx);

#endif
