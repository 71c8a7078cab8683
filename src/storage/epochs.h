/*
 * epochs.h: the leader epoch cache of a partition (Kafka's LeaderEpochFileCache, KIP-101 and
 * KIP-279; docs/storage.md "Leader epochs"): for each leader epoch that wrote to the log, the
 * offset of its first batch. A follower asks its leader for the end offset of its own latest
 * epoch (OffsetsForLeaderEpoch) and truncates its log there, instead of at its high watermark,
 * which loses acknowledged records or keeps divergent ones when leaders change quickly.
 *
 * The entries increase in both epoch and start offset. The semantics are Kafka's, case for case
 * (epochs.c says where they come from); the differences are that reading the file is stricter
 * (epochs.c's header lists how) and that a negative epoch or offset is ignored, not thrown.
 *
 * The cache lives in memory and is saved to DIR/leader-epoch-checkpoint by epochs_flush, in
 * Kafka's text format, so that a Kafka partition directory's file reads here and ours there:
 *
 *   0                  the version
 *   2                  the number of entries
 *   0 0                an epoch and its start offset, one entry a line
 *   3 120
 *
 * When to flush is the caller's choice: Kafka flushes at once after an assign, and in the
 * background after a truncation, which is safe because opening a log truncates the cache again
 * to the log's bounds. A missing file is an empty cache, which epochs_observe_batch rebuilds
 * from the batches' partitionLeaderEpoch field.
 *
 * Thread safety: none inside. A cache belongs to a partition and is used under that partition's
 * lock, as the partition's other state is: a change (assign, truncate, observe) must not run
 * beside any other call; the const readers may run beside each other. epochs_flush reads the
 * entries while it writes the file, so the lock is held across its fsync (as Kafka holds the
 * cache's read lock while it writes the checkpoint).
 *
 * Memory: one 16-byte entry per epoch that wrote to the log (it grows with leader changes).
 */
#ifndef TD_STORAGE_EPOCHS_H
#define TD_STORAGE_EPOCHS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/io.h"

/* The file in a partition's directory, and Kafka's markers of "no epoch" and "no offset"
 * (OffsetsForLeaderEpochResponse's UNDEFINED_EPOCH and UNDEFINED_EPOCH_OFFSET). */
#define TD_EPOCHS_FILE "leader-epoch-checkpoint"
#define TD_EPOCH_UNDEFINED (-1)
#define TD_EPOCH_OFFSET_UNDEFINED (-1)

typedef struct td_epoch_entry {
    int32_t epoch;
    int64_t start_offset;
} td_epoch_entry;

typedef struct td_epochs td_epochs;

/* Opens the cache of the partition directory dir (io must outlive it) from
 * DIR/leader-epoch-checkpoint: a missing or empty file is an empty cache. A file that is not one
 * Kafka would read, or that is torn (its last line lacks its newline, it has fewer entries than
 * it says), is TD_ECORRUPT with td_last_error() naming the file and the line; -errno of reading;
 * -ENOMEM. */
int epochs_open(const td_io *io, const char *dir, td_epochs **out);
void epochs_close(td_epochs *c);

/* Records that `epoch` starts at `start_offset` (Kafka's assign) and returns whether the cache
 * changed. Nothing changes when the latest entry has this epoch and starts at or below
 * start_offset (a later batch of the current epoch). Otherwise every entry from the end whose
 * epoch is >= epoch or whose start is >= start_offset is removed first, so that both keep
 * increasing: the newest assignment wins, even over a later epoch. A negative epoch or offset
 * changes nothing (Kafka throws). Out of memory, it logs an error and changes nothing. */
bool epochs_assign(td_epochs *c, int32_t epoch, int64_t start_offset);

/* What a partition does for each batch it appends or recovers (Kafka's LogSegment.recover and
 * the leader's append): assigns leader_epoch at base_offset when it is above the latest epoch.
 * A batch with epoch -1 (written without a leader epoch, as a single broker does) adds
 * nothing; so does a batch of an older or the current epoch. */
void epochs_observe_batch(td_epochs *c, int32_t leader_epoch, int64_t base_offset);

/* The latest epoch, TD_EPOCH_UNDEFINED when the cache is empty. */
int32_t epochs_latest(const td_epochs *c);

/* Kafka's endOffsetFor, the answer to OffsetsForLeaderEpoch: for a requested epoch, the largest
 * epoch <= requested and its end offset, the start of the next epoch in the cache, or log_end
 * when requested is the latest epoch. A requested epoch below the first one gives (requested,
 * the first epoch's start): that data is gone, and the follower truncates to where the leader's
 * history begins. (TD_EPOCH_UNDEFINED, TD_EPOCH_OFFSET_UNDEFINED) when requested is
 * TD_EPOCH_UNDEFINED, the cache is empty, or requested is above the latest epoch. */
void epochs_end_offset_for(const td_epochs *c, int32_t requested, int64_t log_end, int32_t *epoch,
                           int64_t *end_offset);

/* Kafka's epochForOffset: the epoch of the entry that starts at offset, else of the last entry
 * that starts below it; TD_EPOCH_UNDEFINED when offset is below the first entry or the cache is
 * empty. */
int32_t epochs_epoch_for_offset(const td_epochs *c, int64_t offset);

/* Kafka's truncateFromEnd, after the log is truncated to end_offset: removes every entry that
 * starts at or after it; 0 empties the cache (Kafka's clear). A negative end_offset
 * (TD_EPOCH_OFFSET_UNDEFINED) does nothing. */
void epochs_truncate_from_end(td_epochs *c, int64_t end_offset);
/* Kafka's truncateFromStart, after the log start moves to start_offset (retention, deletion by
 * offset): the entries that start at or below it go but the last of them, which now starts at
 * start_offset. Nothing changes when every entry starts above it. */
void epochs_truncate_from_start(td_epochs *c, int64_t start_offset);

/* The entries, oldest first, into *n; valid until the next change. */
const td_epoch_entry *epochs_entries(const td_epochs *c, size_t *n);

/* Saves the cache to DIR/leader-epoch-checkpoint: DIR/leader-epoch-checkpoint.tmp written and
 * fsynced, renamed over the file, the directory synced; a crash leaves the old file or the new
 * one. 0, or -errno (td_last_error() names the file); on an error the old file is intact. */
int epochs_flush(td_epochs *c);

#endif /* TD_STORAGE_EPOCHS_H */
