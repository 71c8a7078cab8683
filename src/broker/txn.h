/*
 * txn.h: the transaction coordinator (txn.c; docs/kafka.md#transactions), Kafka's design on one
 * broker: per transactional id a producer id and epoch, a state (Empty, Ongoing, PrepareCommit,
 * PrepareAbort, CompleteCommit, CompleteAbort) and the partitions of the transaction in
 * progress, kept as records of the compacted internal topic __transaction_state in Kafka's
 * TransactionLog format. Ending a transaction writes PrepareCommit or PrepareAbort, then a
 * COMMIT or ABORT marker to every partition of the transaction, then CompleteCommit or
 * CompleteAbort, each durable before the next; a restart finishes what a Prepare record began.
 * Transactions open longer than their timeout are aborted and their producer fenced (epoch + 1).
 *
 * Calls are queued to the coordinator's one thread, which does the writes (and waits for them)
 * and then calls done(arg, ...) on that thread: done must not call back into the coordinator
 * and should hand the result to its own thread. broker_txn_verify and the descriptions answer
 * at once, on the caller's thread.
 */
#ifndef TD_BROKER_TXN_H
#define TD_BROKER_TXN_H

#include "broker/broker.h"

/* Results; each listener maps them to its protocol (Kafka's codes in the comments). */
typedef enum txn_err {
    TXN_OK = 0,
    TXN_INVALID_REQUEST,   /* INVALID_REQUEST 42: an empty transactional id */
    TXN_INVALID_TIMEOUT,   /* INVALID_TRANSACTION_TIMEOUT 50 */
    TXN_CONCURRENT,        /* CONCURRENT_TRANSACTIONS 51: retriable */
    TXN_FENCED,            /* PRODUCER_FENCED 90 (INVALID_PRODUCER_EPOCH 47 for old versions) */
    TXN_BAD_MAPPING,       /* INVALID_PRODUCER_ID_MAPPING 49 */
    TXN_INVALID_STATE,     /* INVALID_TXN_STATE 48 */
    TXN_UNKNOWN_PARTITION, /* UNKNOWN_TOPIC_OR_PARTITION 3 */
    TXN_NOT_ATTEMPTED,     /* OPERATION_NOT_ATTEMPTED 55 */
    TXN_UNAVAILABLE,       /* COORDINATOR_NOT_AVAILABLE 15: shutting down, or a write failed */
    TXN_NOT_FOUND,         /* TRANSACTIONAL_ID_NOT_FOUND 105 */
    TXN_DENIED,            /* a listener's own: the principal may not write the topic */
    TXN_INVALID_GROUP,     /* INVALID_GROUP_ID 24 */
} txn_err;

const char *txn_err_name(txn_err e);

/* Kafka's state names ("Empty", "Ongoing", ...). */
const char *txn_state_name(int state);

/* A partition of a request; err is set per partition before done runs. */
typedef struct txn_tp {
    const char *topic;
    int32_t partition;
    txn_err err;
} txn_tp;

typedef void (*txn_done_fn)(void *arg, txn_err err, int64_t pid, int16_t epoch);

/* InitProducerId with a transactional id (Kafka's handleInitProducerId): a new producer id at
 * epoch 0, or the id's at epoch + 1, aborting a transaction left open by an earlier instance.
 * pid and epoch: what the client had (-1 -1 for none; Kafka's v3+). */
int broker_txn_init_pid(td_engine *e, const char *id, int32_t timeout_ms, int64_t pid,
                        int16_t epoch, txn_done_fn done, void *arg);
/* AddPartitionsToTxn: tps[0..n) join the transaction (their err set); tps must stay valid
 * until done runs. */
int broker_txn_add_partitions(td_engine *e, const char *id, int64_t pid, int16_t epoch, txn_tp *tps,
                              size_t n, txn_done_fn done, void *arg);
/* AddOffsetsToTxn: the transaction will commit offsets of group (its partition of
 * __consumer_offsets joins the transaction). */
int broker_txn_add_offsets(td_engine *e, const char *id, int64_t pid, int16_t epoch,
                           const char *group, txn_done_fn done, void *arg);
/* TxnOffsetCommit: offsets[0..n) of group, committed when the transaction commits (visible to
 * the group only then), dropped if it aborts. Needs the group added (AddOffsetsToTxn):
 * TXN_INVALID_STATE otherwise. offsets must stay valid until done runs. */
int broker_txn_commit_offsets(td_engine *e, const char *id, int64_t pid, int16_t epoch,
                              const char *group, const td_offset_commit *offsets, size_t n,
                              txn_done_fn done, void *arg);
/* Whether a transaction not yet complete holds an offset of group for topic/partition (an
 * OffsetFetch with RequireStable answers UNSTABLE_OFFSET_COMMIT then). */
bool broker_txn_offset_pending(td_engine *e, const char *group, const char *topic,
                               int32_t partition);
/* EndTxn: commit or abort the transaction; done runs once the Prepare record is durable (the
 * outcome settled); the markers, a commit's offsets and the Complete record follow on the
 * coordinator's thread before its next job. */
int broker_txn_end(td_engine *e, const char *id, int64_t pid, int16_t epoch, bool commit,
                   txn_done_fn done, void *arg);

/* Whether producer pid at epoch may append transactional records of transactional id `id` to
 * topic/partition now: pid is the id's and the partition is in its ongoing transaction
 * (TXN_OK); TXN_FENCED for another epoch of the id; TXN_INVALID_STATE otherwise. On TXN_OK no
 * marker can be appended anywhere until the caller has appended the batch and called
 * broker_txn_verified (KIP-890's VerificationGuard: a batch verified just before its
 * transaction's marker would otherwise land after it and open a transaction nothing ends).
 * Verify one batch at a time, with nothing slow between the two calls. */
txn_err broker_txn_verify(td_engine *e, const char *id, int64_t pid, int16_t epoch,
                          const char *topic, int32_t partition);
void broker_txn_verified(td_engine *e);

/* The producers a partition keeps state for (DescribeProducers): malloc'd, *n of them. */
typedef struct broker_producer {
    int64_t pid;
    int16_t epoch;
    int32_t last_seq; /* -1: none */
    int32_t coord_epoch;
    int64_t txn_first; /* first offset of its open transaction here, -1: none */
    int64_t last_ts;   /* -1: none */
} broker_producer;
int broker_part_producers(td_part *p, broker_producer **out, size_t *n);

/* A transactional id's description (DescribeTransactions, ListTransactions). */
typedef struct txn_info {
    char *id;
    int64_t pid;
    int16_t epoch;
    int32_t timeout_ms;
    int state;
    int64_t start_ms; /* -1 with no transaction */
    txn_tp *parts;    /* topic names owned by the info */
    size_t nparts;
} txn_info;
/* Every id (n of them), malloc'd; free with broker_txn_infos_free. */
int broker_txn_list(td_engine *e, txn_info **out, size_t *n);
void broker_txn_infos_free(txn_info *v, size_t n);

#endif /* TD_BROKER_TXN_H */
