/*
 * memio.h: an in-memory td_io table that simulates what a crash keeps (after SQLite's
 * crash-test VFS). Each file has durable content (as of its last fsync) and the list of writes
 * and truncations made since. memio_crash() turns the current state into what a power loss
 * could leave: per file, the durable content plus the first k unsynced operations in order, the
 * (k+1)-th write torn at a random byte count, k drawn at random per file. Directory operations
 * (create, rename, unlink) are durable at once, which is the stronger assumption that ext4's
 * ordered mode and our sync_dir calls both give.
 */
#ifndef TD_TEST_MEMIO_H
#define TD_TEST_MEMIO_H

#include "storage/io.h"

typedef struct memio memio;

/* A new empty file system; its table is memio_table(m). */
memio *memio_new(void);
void memio_free(memio *m);
const td_io *memio_table(memio *m);

/* After this many more mutating operations (writes, truncates, fsyncs), every mutating
 * operation fails with -EIO: the "machine" is dead until memio_crash. -1: never. */
void memio_fail_after(memio *m, int64_t ops);
/* Counts unlink and rename among the mutating operations (failure points) too; off by
 * default. */
void memio_count_dir_ops(memio *m, bool on);
/* True once the failure point was reached. */
bool memio_dead(memio *m);

/* Simulates a crash with the given random seed; all descriptors are closed and the file
 * system keeps only what a crash may keep. */
void memio_crash(memio *m, uint64_t seed);

/* Count of fsyncs so far. */
int64_t memio_fsyncs(memio *m);

#endif /* TD_TEST_MEMIO_H */
