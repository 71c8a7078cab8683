/* cleancheck.h: writing keyed records to a partition and checking what compaction left. */
#ifndef TD_TEST_CLEANCHECK_H
#define TD_TEST_CLEANCHECK_H

#include "storage/storage.h"

#define CC_KEYS_MAX 4096
#define CC_ABSENT (-2)
#define CC_TOMBSTONE (-1)

/* What the partition must hold: per key index its latest generation, CC_TOMBSTONE, or
 * CC_ABSENT (never written). */
typedef struct cc_model {
    int64_t gen[CC_KEYS_MAX];
    int64_t next_gen;
} cc_model;

void cc_model_init(cc_model *m);

/*
 * Appends one batch: record i has key "k<keys[i]>" and value "k<key>-g<generation>" (a fresh
 * generation each), or a null value when tomb[i] is set (tomb may be NULL). codec: the batch's
 * compression; pid >= 0: an idempotent producer's batch with base sequence seq. The model is
 * updated only when the append succeeds. Returns part_append's rc.
 */
int cc_append(td_part *p, cc_model *m, const int *keys, const bool *tomb, int n, int64_t ts,
              int codec, int64_t pid, int32_t seq, td_append_result *res);

/*
 * Reads the partition from its log start to its high watermark through part_read, checking the
 * batches' CRCs and that offsets only increase, and records per key the last generation seen
 * (or CC_TOMBSTONE, CC_ABSENT) in seen[CC_KEYS_MAX]. Returns the number of records read, or a
 * negative error.
 */
int64_t cc_read(td_part *p, int64_t *seen);

/* As cc_read, storing the offsets of the records read in offs (up to cap of them). */
int64_t cc_read_offsets(td_part *p, int64_t *offs, int64_t cap);

/* Checks the partition against the model: every written key's latest generation is what the
 * partition holds last; a deleted key's is a tombstone or (when gone_ok) nothing. Returns the
 * number of records read, or -1 (after printing why) when it differs. */
int64_t cc_check(td_part *p, const cc_model *m, bool gone_ok);

#endif
