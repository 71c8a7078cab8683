/*
 * segkeys.h: the per-segment key index of topics with key.index (segkeys.c; docs/storage.md
 * "Key index files"), for the partition's files. The interface to the rest of the broker is in
 * storage.h (part_key_version, part_key_offsets, part_append_expect).
 */
#ifndef TD_STORAGE_SEGKEYS_H
#define TD_STORAGE_SEGKEYS_H

#include "storage/part_int.h"

typedef struct seg_keys seg_keys;

/* Gives s an empty in-memory index (s must be empty, or be filled by segkeys_add next);
 * -ENOMEM. Caller holds mu or owns s. */
int segkeys_start(td_seg *s);
/* Frees s's in-memory index. Caller holds mu or owns s. */
void segkeys_drop(td_seg *s);
/* The bytes s's in-memory index takes (0 without one). */
int64_t segkeys_bytes(const td_seg *s);
/* Adds the keyed records of a batch of s (n bytes, its offsets final) to s's in-memory index,
 * if it has one; on failure (out of memory, a batch that does not decode) the index is dropped
 * (lookups then read the segment) and the failure logged. Caller holds mu or owns s. */
void segkeys_add(td_part *p, td_seg *s, const uint8_t *batch, size_t n);
/* Writes s's key index file from its in-memory index (which must not change meanwhile). */
int segkeys_write(td_part *p, td_seg *s);
/* At open, after recovery: the active segment's in-memory index built from its log, and every
 * sealed segment's index file checked (present, whole, ending where the segment ends) and
 * rebuilt from its log when it is not. */
int segkeys_open(td_part *p);
/* Under mu, when the configuration changes key.index: on, the active segment rolls (when not
 * empty) so that the new one is indexed from its first event; off, the in-memory indexes go. */
void segkeys_config_locked(td_part *p, bool on, int64_t now_ms);
/* Under mu in the append, before the batch is written: checks req (part_append_expect). */
int segkeys_expect_locked(td_part *p, part_expect *req);

#endif /* TD_STORAGE_SEGKEYS_H */
