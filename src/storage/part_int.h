/*
 * part_int.h: the partition's structures, shared by the files of the storage layer that work
 * on a partition's segments (part.c; see docs/storage.md). Not part of the storage interface.
 */
#ifndef TD_STORAGE_PART_INT_H
#define TD_STORAGE_PART_INT_H

#include <pthread.h>

#include "storage/producer.h"
#include "storage/storage.h"

#define IDX_ENTRY 8
#define SNAPSHOTS_KEPT 2
#define TIDX_ENTRY 12
#define CLEAN_MARKER ".clean"
#define LOG_START_FILE "log-start-offset"
#define RECOVERY_POINT_FILE "recovery-point"
#define ANCHOR_FILE "stream-anchors"
#define ANCHOR_ENTRY 28
#define ADDED_FILE "stream-added"
#define ADDED_SIZE 28
#define NODES_FILE "stream-nodes"
#define CLEANER_CHECKPOINT_FILE "cleaner-offset-checkpoint"
#define KEYINDEX_EXT ".keyindex"
#define TRACEINDEX_EXT ".traceindex"
#define ABORTED_FILE "aborted-txns"
#define ABORTED_ENTRY 36

typedef struct idx_entry {
    uint32_t rel;
    uint32_t pos;
} idx_entry;

typedef struct tidx_entry {
    int64_t ts;
    uint32_t rel;
} tidx_entry;

struct td_seg {
    td_part *part;
    int64_t base;
    int64_t next_offset; /* offset after the last batch; == base when empty */
    int64_t size;        /* bytes of valid batches */
    int64_t max_ts;      /* -1 when empty */
    int64_t max_ts_base; /* base offset of the batch holding max_ts */
    int64_t created_ms;  /* for segment.ms */
    int64_t since_index; /* log bytes since the last offset index entry */
    int fd;
    int refs; /* guarded by part->mu */
    bool sealed;
    bool owed; /* sealed by a roll; its fsync and index files are still owed (see the top) */
    bool synced; /* owed, but its log is fsynced: only its index files are */
    int64_t owed_ms; /* when it rolled (td_mono_ms), if owed */
    bool deleted;
    idx_entry *idx;
    size_t idx_n, idx_cap;
    tidx_entry *tidx;
    size_t tidx_n, tidx_cap;
    /* key.index (segkeys.c): the segment's key index in memory, while it is the active segment
     * or its index file is owed (NULL otherwise; changed under part->mu); kx_checked: its
     * index file's checksum was verified (under part->mu). */
    struct seg_keys *kx;
    bool kx_checked;
    /* trace.index (segkeys.c): the segment's trace index, as kx is its key index. */
    struct seg_keys *tx;
    bool tx_checked;
    /* The bytes of the log, from the segment's start, that its in-memory indexes (kx, tx)
     * cover: the rest is read from the log when they are caught up (segkeys.c "Catching up").
     * Under part->ix_mu; ix_done is its copy for hints without the lock (atomic). */
    int64_t ix_pos, ix_done;
};

typedef struct sanchor {
    int64_t off;
    td_sid id;
    /* XSETID to the largest ID: id is the last ID itself, not the next record's (there is no
     * next); only ever the last anchor, at the log end, and every append is refused after it.
     * In ANCHOR_FILE, the top bit of off. */
    bool last;
} sanchor;

/* A transaction in progress in the partition (part_txn.c): end -1 while open, else its marker's
 * offset + 1 (unstable until the high watermark reaches end). */
typedef struct ptxn {
    int64_t pid, first, end;
} ptxn;

typedef struct durable_waiter {
    int64_t end;
    td_durable_cb cb;
    void *arg;
} durable_waiter;

struct td_part {
    const td_io *io;
    char *dir;
    char *label;
    pthread_mutex_t mu;
    pthread_cond_t synced;
    td_topic_config cfg;
    td_seg **segs; /* sorted by base; the last is the active segment */
    size_t nsegs, segs_cap;
    int64_t log_start; /* atomics */
    int64_t high_watermark;
    int64_t log_end;
    int64_t durable; /* offsets below are on disk; under mu */
    bool syncing;
    int nwaiting; /* producers blocked in part_wait_durable */
    pthread_cond_t appended;
    int64_t pending;      /* appends since the last sync started */
    int64_t last_round;   /* appends the last sync covered */
    int64_t sync_ns;      /* moving average of fsync latency */
    bool clean_marker;
    int owed_n; /* segments whose seal is owed: changed under mu with atomics, read anyhow */
    int64_t recovery_point; /* as RECOVERY_POINT_FILE says; -1 before it is written */
    int64_t seal_retry_ms;  /* no index writes of owed seals before (td_mono_ms; under mu) */
    bool seal_failing;      /* an owed index write failed, and was logged (under mu) */
    bool deleted; /* the directory is gone: write nothing at close */
    int offline_flag; /* atomic */
    int has_rules;    /* atomic: the config has append-time rules (batch_rules_needed) */
    char offline[256];
    durable_waiter *waiters;
    size_t nwaiters, waiters_cap;
    void (*on_advance)(void *arg); /* the high watermark moved (under mu) */
    void *on_advance_arg;
    part_metrics metrics; /* set before the partition is shared */
    td_reserve *reserve;  /* the data directory's disk reserve, or NULL; set likewise */
    /* scrub position */
    int64_t scrub_base;
    int64_t scrub_pos;
    td_buf scrub_buf;
    td_pstate producers; /* idempotent producers (under mu) */
    int64_t sealed_max_ts; /* the largest timestamp of the sealed segments, -1 (under mu) */
    sanchor *anch;       /* stream ID anchors, by offset (under mu) */
    size_t nanch, anch_cap;
    /* XSETID's ENTRIESADDED (ADDED_FILE): the entries added were added_n when the log end was
     * added_off; has_added false: the entries added are the log end (under mu). */
    bool has_added;
    int64_t added_off;
    uint64_t added_n;
    /* Log compaction (cleaner.c): offsets below first_dirty were cleaned, as
     * CLEANER_CHECKPOINT_FILE says (-1: never); under mu. The counters are atomics. */
    int64_t first_dirty;
    bool cleaning; /* a part_clean runs (one at a time) */
    /* When cleaning the cleaned section again has work without new dirty bytes (a tombstone's
     * or marker's delete horizon passes, a marker whose transaction's batches the last
     * cleaning removed); INT64_MAX: none known, as after an open. */
    int64_t clean_due_ms;
    int64_t clean_reclaimed, clean_runs, clean_ms, clean_read_bytes;
    struct td_keyindex *keys; /* compacted topics' key index (keyindex.c), or NULL; set under mu */
    /* The segments' in-memory key and trace indexes (segkeys.c "Catching up"): ix_mu guards
     * their contents and the segments' ix_pos (the pointers kx and tx change under mu and
     * ix_mu both); it is taken after mu, never before it. ix_buf: the log read to catch up
     * (under ix_mu). indexer: the thread that catches them up (indexer.c; NULL: each append
     * indexes its batch); ix_queued (atomic), ix_next, ix_detached: its queue's (under its
     * lock). */
    pthread_mutex_t ix_mu;
    td_buf ix_buf;
    struct td_indexer *indexer;
    int64_t ix_woke_ms; /* when an append last woke it (under mu) */
    int ix_queued;
    struct td_part *ix_next;
    bool ix_detached;
    /* Transactions (part_txn.c), under mu: the unstable ones by first offset; unstable, an
     * atomic copy of the smallest first offset among them (INT64_MAX: none); the aborted ones
     * by marker offset; ab_replayed: the open's replay changed them (ABORTED_FILE is
     * rewritten). */
    ptxn *txns;
    size_t ntxns, txns_cap;
    int64_t unstable;
    td_aborted_txn *ab;
    size_t nab, ab_cap;
    bool ab_replayed;
    bool ab_failed;      /* an entry could not be written: rewrite the file before a snapshot */
    bool ab_full_replay; /* the file was damaged: the open ignores the snapshots */
};

/* The atomic offsets (log_start, high_watermark, log_end): lock-free reads and writes. */
static inline int64_t aload(const int64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline void astore(int64_t *p, int64_t v)
{
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}

/* The helpers the partition's files (part.c, part_open.c, part_sid.c, part_read.c) and
 * cleaner.c share. Callers hold mu unless said otherwise. */
/* Marks the partition offline with a reason (the first wins); returns rc with that detail. */
int go_offline(td_part *p, int rc, const char *fmt, ...) TD_PRINTF(3, 4);
void seg_path(const td_part *p, int64_t base, const char *ext, char *buf, size_t len);
td_seg *seg_new(td_part *p, int64_t base);
/* Removes a segment's index files, and its log too when `log` is set. */
void seg_unlink(const td_part *p, int64_t base, bool log);
int seg_account(td_seg *s, const td_batch_header *h, int64_t pos);
void seg_unref_locked(td_seg *s);
int write_file_atomic(td_part *p, const char *path, const void *data, size_t n);
/* A whole small file into a malloc'd buffer (*out, *n bytes); -ENOENT if it is missing. */
int read_file(td_part *p, const char *path, uint8_t **out, size_t *n);
int seg_write_indexes(td_part *p, td_seg *s);
void owe_indexes(td_part *p, td_seg *s);
int write_offset_file(td_part *p, const char *name, int64_t offset);
void sealed_max_update_locked(td_part *p);
td_sid sid_at_locked(const td_part *p, int64_t off, int64_t *run_end);
/* A batch timestamp (-1 for none) as a stream ID's ms: below 0 counts as 0. */
static inline uint64_t sid_ts_ms(int64_t ts)
{
    return ts > 0 ? (uint64_t)ts : 0;
}
size_t anchors_upto(const td_part *p, int64_t off);
int anchors_push(td_part *p, int64_t off, td_sid id);
int anchors_rewrite_locked(td_part *p);

/* part_append_expect's append, after its reads outside the lock (segkeys.c). */
int part_append_expect_ruled(td_part *p, uint8_t *batch, size_t n, int64_t now_ms,
                             td_append_result *res, part_expect *req);
/* Whether a configuration has append-time rules (batch_rules_needed). */
int config_has_rules(const td_topic_config *cfg);
/* 0, or the offline error with its reason when the partition is offline. */
int check_online(td_part *p);
/* Appends an entry to a segment's in-memory offset or time index (-ENOMEM). */
int idx_push(td_seg *s, uint32_t rel, uint32_t pos);
int tidx_push(td_seg *s, int64_t ts, uint32_t rel);
/* The file position of the last offset index entry at or below offset (part_read.c). */
int64_t idx_lookup(const td_seg *s, int64_t offset);
void seg_free(td_seg *s);
/* Pays the seals owed by rolled segments, oldest first (part.c "Durability"); the caller has
 * the syncing role. */
int seals_complete_locked(td_part *p);
/* Rolls the active segment: a new one at the log end (part.c "Appending"). */
int roll_locked(td_part *p, int64_t now_ms);
/* part_open.c: creates the segment at base as the new active segment; the oldest segment whose
 * seal is owed (NULL if none); rewrites RECOVERY_POINT_FILE from the segments; writes the
 * producers' snapshot as of offset (its failure is logged, not returned). */
int seg_create(td_part *p, int64_t base, int64_t now_ms);
td_seg *first_owed_locked(const td_part *p);
int recovery_point_update_locked(td_part *p);
void write_snapshot(td_part *p, int64_t offset);
/* part_sid.c: checks a batch at offset base (with its stream ID request, or NULL) against the
 * last ID, writing the anchor it needs; loads
 * ANCHOR_FILE at open; keeps the anchors that the records after a dropped oldest segment need. */
int sid_check_locked(td_part *p, part_sid_req *req, int64_t base, const td_batch_header *h);
int anchors_load(td_part *p);
/* part_sid.c: loads ADDED_FILE at open (after the log end is known). */
int added_load(td_part *p);
int anchors_before_drop_locked(td_part *p);

/* indexer.c: queues p for the indexer thread (no-op when it is queued or being caught up;
 * may be called under p->mu); takes p out of its queue for good, waiting until the thread is
 * done with it (never under p->mu: the thread takes it). */
void indexer_wake(td_part *p);
void indexer_detach(td_part *p);

/* part_txn.c. txn_opens: whether the data batch h (not yet appended) opens its producer's
 * transaction here; txn_data_locked records it once appended (opens: what txn_opens said);
 * txn_marker_check_locked refuses a stale marker before it is written; txn_marker_locked
 * applies a written marker of type TD_MARKER_* (replay: found by the open's replay, which
 * writes no file); txn_hw_advanced_locked settles the transactions whose marker the high
 * watermark passed. At open: txn_load reads ABORTED_FILE (after the log's bounds are known),
 * txn_from_snapshot takes the open transactions of the producers' snapshot (before the replay
 * after it), txn_opened finishes. txn_retained_locked forgets the aborted transactions below
 * the log start. part.c's part_append_control appends a control batch (a marker). */
bool txn_opens(const td_part *p, const td_batch_header *h);
int txn_data_locked(td_part *p, const td_batch_header *h, bool opens);
int txn_marker_check_locked(td_part *p, const td_batch_header *h);
int txn_marker_locked(td_part *p, const td_batch_header *h, int type, int32_t coord_epoch,
                      int64_t now_ms, bool replay);
void txn_hw_advanced_locked(td_part *p);
int txn_load(td_part *p);
int txn_from_snapshot(td_part *p);
int txn_opened(td_part *p);
void txn_retained_locked(td_part *p);
/* cleaner.c's swap, before its commit point: forgets the aborted transactions of the n ABORT
 * markers in gone (pid and last set; by marker offset) that the cleaned segment leaves out,
 * rewriting ABORTED_FILE first; on an error nothing changed. */
int txn_markers_removed_locked(td_part *p, const td_aborted_txn *gone, size_t n);
/* Before a producer snapshot: an entry that could not be written is written now (rewriting the
 * file); an error means the snapshot must not be written. */
int txn_before_snapshot_locked(td_part *p);
void txn_free(td_part *p);
int part_append_control(td_part *p, uint8_t *batch, size_t n, int64_t now_ms,
                        td_append_result *res);

/* cleaner.c: completes or discards an interrupted compaction's files at open, before the
 * segments are listed (the .cleaned / .swap protocol of docs/storage.md "Compaction"). */
int cleaner_recover(td_part *p);

#endif /* TD_STORAGE_PART_INT_H */
