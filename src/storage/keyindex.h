/*
 * keyindex.h: the key index of a compacted partition (docs/storage.md#key-index): the digest of
 * each key (td_key_digest) to the offset of the latest record with that key, so that a table
 * read (the latest value of a key) reads one record instead of scanning the log.
 *
 * The index is kept in memory only. It is built when enabled (at open, by reading the log from
 * its start: compaction keeps that proportional to the live keys), kept up to date by every
 * append under the partition's lock, and caught up by lookups for what it missed (records
 * appended while it was being built). All the indexes of a broker share one memory budget
 * (the `table.index.max.bytes` setting): a partition whose index would pass it drops its index,
 * and its lookups fail with TD_EFULL naming the setting, until the budget has room for what it
 * asked: then the next lookup rebuilds it.
 */
#ifndef TD_STORAGE_KEYINDEX_H
#define TD_STORAGE_KEYINDEX_H

#include "storage/storage.h"

typedef struct td_keybudget td_keybudget;
typedef struct td_keyindex td_keyindex;

/* The memory all the key indexes of a broker may use together, in bytes (> 0). */
td_keybudget *keybudget_new(int64_t max_bytes);
void keybudget_free(td_keybudget *b);
int64_t keybudget_used(const td_keybudget *b);
int64_t keybudget_max(const td_keybudget *b);

/*
 * Enables the key index of p, charged to budget, and builds it by reading the log (which takes
 * time proportional to the log); enabling an enabled index does nothing. budget NULL disables it
 * and frees its memory. Not under the partition's lock; safe while the partition is in use.
 * Returns 0 even when the budget refused the index (lookups then say so), or an I/O error.
 */
int part_keys_enable(td_part *p, td_keybudget *budget);

/* The record a lookup found: rec's slices point into buf (or rd's buffer) until
 * part_key_hit_free(). */
typedef struct part_key_hit {
    td_buf buf;
    td_batch_reader rd;
    td_record rec;
} part_key_hit;
void part_key_hit_init(part_key_hit *h);
void part_key_hit_free(part_key_hit *h);

/*
 * The latest record of `key` in p (up to the high watermark), into *hit: 0 when there is one and
 * its value is not null; TD_ENOTFOUND for an unknown key, a tombstone (null value), or a key
 * whose latest record is gone (below the log start, or removed by the cleaner); TD_EFULL when
 * the index was dropped for lack of budget (td_last_error() names table.index.max.bytes);
 * TD_EUNSUPPORTED when the index is not enabled (the topic is not compacted); TD_EOFFLINE.
 * The key itself is compared, so a digest collision cannot answer another key's record.
 */
int part_key_lookup(td_part *p, const void *key, size_t keylen, part_key_hit *hit);

/* The number of keys and bytes the index of p holds (0 when not enabled). */
void part_keys_stats(td_part *p, int64_t *keys, int64_t *bytes);

/* For part.c: records the keys of a batch just appended (under the partition's lock), and
 * frees the index at close. */
void keyindex_appended_locked(td_part *p, const uint8_t *batch, size_t n);
void keyindex_free(td_part *p);

/* Tests: replaces the digest function (NULL: td_key_digest), to force collisions. */
void keyindex_test_digest(void (*fn)(const void *key, size_t n, uint8_t out[TD_KEY_DIGEST_LEN]));

#endif /* TD_STORAGE_KEYINDEX_H */
