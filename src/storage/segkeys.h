/*
 * segkeys.h: the per-segment key index of topics with key.index (segkeys.c; docs/storage.md
 * "Key index files"), for the partition's files. The interface to the rest of the broker is in
 * storage.h (part_key_version, part_key_offsets, part_append_expect).
 */
#ifndef TD_STORAGE_SEGKEYS_H
#define TD_STORAGE_SEGKEYS_H

#include "storage/part_int.h"

typedef struct seg_keys seg_keys;

/* The same code keeps the trace index of topics with trace.index (docs/storage.md "Trace
 * index files"): in s->tx and B.traceindex, as the key index is in s->kx and B.keyindex. The
 * functions below work on both, each index where it is enabled. */

/* Gives s an empty in-memory key index (keys) and trace index (traces), those it lacks (s must
 * be empty, or be filled by segkeys_add next); -ENOMEM. Caller holds mu or owns s. */
int segkeys_start(td_seg *s, bool keys, bool traces);
/* Frees s's in-memory indexes (taking ix_mu). Caller holds mu or owns s. */
void segkeys_drop(td_seg *s);
/* Whether an in-memory index of s reached its bound (key.index.memory.bytes,
 * trace.index.memory.bytes): the active segment then rolls. Caller holds mu. */
bool segkeys_full(const td_part *p, const td_seg *s);
/* Adds the records of a batch of s (n bytes at its ix_pos, its offsets final) to s's in-memory
 * indexes, those it has; on failure (out of memory, a batch that does not decode) the index
 * fails (its memory freed, lookups then read the segment) and the failure is logged. Caller
 * owns s, or holds mu and ix_mu. */
void segkeys_add(td_part *p, td_seg *s, const uint8_t *batch, size_t n);
/* Under mu, after an append of a batch (n bytes) to the active segment s, which has an
 * in-memory index: wakes the indexer thread, or, without one or when the index is too far
 * behind, indexes what it lacks now (segkeys.c "Catching up"). */
void segkeys_appended_locked(td_part *p, td_seg *s, const uint8_t *batch, size_t n, int64_t now_ms);
/* The indexer thread's turn at p (no lock held): catches up the in-memory indexes of p's
 * segments, a few MiB of log at most; true when there is more to do. */
bool segkeys_catch_up(td_part *p);
/* The bytes of the active segment's log that its in-memory indexes do not cover yet. */
int64_t segkeys_lag(td_part *p);
/* Tests: the lag at which an append wakes the indexer thread, and past which it indexes
 * itself (< 0: the defaults, 256 KiB and 8 MiB). Not thread-safe: set before appends. */
void segkeys_test_tune(int64_t wake, int64_t lag_max);
/* Writes s's index files from its in-memory indexes (which must not change meanwhile). */
int segkeys_write(td_part *p, td_seg *s);
/* At open, after recovery, for each enabled index: the active segment's in-memory index built
 * from its log, and every sealed segment's index file checked (present, whole, ending where the
 * segment ends) and rebuilt from its log when it is not. */
int segkeys_open(td_part *p);
/* Under mu, after the configuration changed (p->cfg is the new one; keys_was and traces_was
 * the old key.index and trace.index): an index turned on makes the active segment roll (when
 * not empty) so that the new one is indexed from its first event; off, its in-memory indexes
 * go. */
void segkeys_config_locked(td_part *p, bool keys_was, bool traces_was, int64_t now_ms);
/* Under mu in the append, before the batch is written: checks req (part_append_expect). */
int segkeys_expect_locked(td_part *p, part_expect *req);

#endif /* TD_STORAGE_SEGKEYS_H */
