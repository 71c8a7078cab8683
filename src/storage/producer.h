/*
 * producer.h: the state of idempotent producers in one partition, as Kafka keeps it
 * (ProducerStateManager): per producer id its epoch and the sequence ranges and offsets of its
 * last five batches. part.c consults it under the partition lock before every append of a batch
 * that carries a producer id, updates it after the write, rebuilds it on open from snapshots and
 * the batch headers in the log, and writes snapshots when it rolls a segment and at close.
 *
 * The rules (Kafka's ProducerAppendInfo.checkSequence and ProducerStateEntry):
 * - a batch whose epoch and first and last sequence equal one of the producer's last five
 *   batches is a duplicate: it is not stored again, and the caller answers with the offsets of
 *   the original;
 * - an epoch below the producer's current epoch is fenced (TD_EFENCED: Kafka's
 *   INVALID_PRODUCER_EPOCH);
 * - a new epoch must start at sequence 0; within an epoch the first sequence must follow the
 *   last (with wrap-around after INT32_MAX): otherwise TD_ESEQUENCE (OUT_OF_ORDER_SEQUENCE_NUMBER);
 * - a producer the partition has no state for (new, or expired) may start at any sequence.
 *
 * Transactions (Kafka's ProducerAppendInfo): a producer's first transactional batch in the
 * partition opens its transaction there (txn_first: that batch's offset); its transaction marker
 * (a control batch the coordinator appends) closes it. While one is open, a batch of the same
 * producer without the transactional bit is refused (TD_ETXN: INVALID_TXN_STATE), and the
 * producer never expires.
 *
 * Everything here is pure data: no I/O, no locks (the partition's lock covers it).
 */
#ifndef TD_STORAGE_PRODUCER_H
#define TD_STORAGE_PRODUCER_H

#include "storage/batch.h"

#define TD_PRODUCER_BATCHES 5 /* batches remembered per producer, as in Kafka */

typedef struct td_pbatch {
    int32_t first_seq, last_seq;
    int64_t first_offset, last_offset;
    int64_t max_timestamp; /* the batch's (the append time under LogAppendTime) */
} td_pbatch;

typedef struct td_producer {
    int64_t pid; /* -1: a free slot */
    int16_t epoch;
    uint8_t n;       /* batches in b, oldest first */
    int64_t last_ms; /* wall clock of the producer's last append, for expiry */
    int64_t txn_first;   /* offset of the first batch of its open transaction here, or -1 */
    int32_t coord_epoch; /* the coordinator epoch of its last marker here (0 before any) */
    td_pbatch b[TD_PRODUCER_BATCHES];
} td_producer;

/* An open-addressing table of producers keyed by producer id. */
typedef struct td_pstate {
    td_producer *slots;
    size_t cap, n;
} td_pstate;

void pstate_init(td_pstate *s);
void pstate_free(td_pstate *s);
/* The producer's state, or NULL. */
const td_producer *pstate_find(const td_pstate *s, int64_t pid);

/* The last sequence of a batch: base_sequence + last_offset_delta, wrapping after INT32_MAX. */
int32_t pstate_last_seq(const td_batch_header *h);

/*
 * Checks a client's batch (h->producer_id >= 0) against the state. Returns 0 when the batch is
 * new and in order (append it, then call pstate_update), 1 when it duplicates one of the last
 * five batches (*dup, may be NULL, gets the original), TD_EFENCED, TD_ESEQUENCE, or TD_EINVAL
 * for a negative epoch or sequence; td_last_error() explains.
 */
int pstate_check(const td_pstate *s, const td_batch_header *h, td_pbatch *dup);

/* Records an appended batch (h->base_offset set) at wall time now_ms. A batch without a
 * producer id is ignored. Returns 0 or -ENOMEM. */
int pstate_update(td_pstate *s, const td_batch_header *h, int64_t now_ms);

/* Checks a transaction marker of producer pid at epoch (TD_EFENCED below the producer's epoch)
 * and applies it: the producer's transaction here is closed; *first (may be NULL) gets its
 * first offset, or -1 when the producer had none open. Returns 0, TD_EFENCED or -ENOMEM. */
int pstate_marker(td_pstate *s, int64_t pid, int16_t epoch, int32_t coord_epoch, int64_t now_ms,
                  int64_t *first);

/* Forgets producers whose last append was before before_ms, except those with a transaction
 * open; returns how many. */
size_t pstate_expire(td_pstate *s, int64_t before_ms);

/*
 * Snapshots: the state as of log offset `offset` (every batch below it is in the state).
 * Layout (big-endian): "TDPS", version u16 (2), reserved u16, CRC32C u32 of everything after
 * it, offset i64, count u32, then per producer: pid i64, epoch i16, batch count u8, reserved
 * u8, last_ms i64, txn_first i64, coord_epoch i32, and per batch first_seq i32, last_seq i32,
 * first_offset i64, last_offset i64, max_timestamp i64. Version 1 (read, never written) has no
 * txn_first and coord_epoch.
 */
int pstate_encode(const td_pstate *s, int64_t offset, td_buf *out);
/* Decodes a snapshot into *s (initialised, empty). TD_ECORRUPT for any inconsistency (s is then
 * left empty); td_last_error() says what. */
int pstate_decode(const uint8_t *p, size_t n, td_pstate *s, int64_t *offset);

#endif /* TD_STORAGE_PRODUCER_H */
