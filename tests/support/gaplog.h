/*
 * gaplog.h: hand-made compacted logs for tests. A cleaned log (docs/storage.md, "Log
 * compaction") has gaps between batches, batches whose records' offset deltas skip, batches with
 * no records, and segments whose first batch begins above their base offset. These functions
 * write such segment files directly, so that readers can be tested without the cleaner.
 */
#ifndef TD_TEST_GAPLOG_H
#define TD_TEST_GAPLOG_H

#include "storage/storage.h"

typedef struct gap_rec {
    int32_t delta;     /* offset delta inside the batch */
    const char *key;   /* NULL: a null key */
    const char *value; /* NULL: a tombstone */
} gap_rec;

/* Appends to out one valid batch (CRC set) with base offset `base`, lastOffsetDelta last_delta
 * and the n records of v (deltas increasing, at most last_delta), timestamps ts + delta. */
int gaplog_batch(td_buf *out, int64_t base, int32_t last_delta, const gap_rec *v, size_t n,
                 int64_t ts);

/* Writes `batches` (whole batches) as segment `base` of partition directory dir, replacing the
 * segment's log and removing its index files (the partition rebuilds them at open). */
int gaplog_write_segment(const char *dir, int64_t base, const td_buf *batches);

/*
 * The standard gapped partition the tests share, written into dir after removing every
 * segment, index and snapshot file there (the directory must exist):
 *   segment 0:  batch 0..4 holding offsets 1 and 3 (deltas skip), batch 5..9 gone, batch
 *               10..12 with no record, batch 13..14 whole, 15..19 gone (a gap at the segment's
 *               end);
 *   segment 20: first batch 22..25 (above the segment's base) holding 22 and 25.
 * Offset o holds key "k<o>" and value "v<o>", except 25: key "k1" with a null value (a
 * tombstone of k1). Log start 0, log end 26, six records. Timestamps GAPLOG_TS + offset.
 */
#define GAPLOG_TS INT64_C(1700000000000)
#define GAPLOG_END 26
#define GAPLOG_RECORDS 6
extern const int64_t gaplog_offsets[GAPLOG_RECORDS];
int gaplog_write_standard(const char *dir);

#endif
