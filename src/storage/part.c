/*
 * part.c: a partition as a directory of log segments (see storage.h and docs/storage.md).
 *
 * Files of a segment with base offset B (20 zero-padded digits):
 *   B.log        record batches v2, back to back, base offsets set by part_append.
 *   B.index      8-byte entries: relative offset (u32 BE), file position (u32 BE), strictly
 *                increasing; an entry at least every TD_INDEX_INTERVAL_BYTES of log. The first
 *                entry is always (r, 0), r the first batch's: 0 unless compaction removed it.
 *   B.timeindex  12-byte entries: the segment's largest timestamp so far (i64 BE) and the
 *                relative base offset (u32 BE) of the batch that holds it; timestamps strictly
 *                increase. The last entry names the segment's largest timestamp.
 * and in the partition directory:
 *   .clean       present only between a clean part_close and the next append: it says the
 *                active segment's index files were written at close and match its log.
 *   B.snapshot   the state of idempotent producers as of offset B (storage/producer.h), written
 *                through tmp + fsync + rename when a segment is rolled (B is the new segment's
 *                base) and at a clean close (B is the log end). The newest two are kept.
 *   stream-anchors  present once a stream ID needed one: where the IDs of records differ from
 *                what the rule gives (see "Stream IDs" below).
 *   stream-added  present once an XSETID set the stream's entries added (ENTRIESADDED): the
 *                count as of a log end offset (part_sid.c "Entries added").
 *   recovery-point  the offset below which every segment is sealed, fsynced and has its index
 *                files, as decimal text and a newline (tmp + fsync + rename). Rolling a segment
 *                does not wait for its fsync: the next sync of the partition (a producer's
 *                group commit, the flusher, or the engine's background thread, under
 *                fsync=none after a delay) fsyncs it and writes its indexes, oldest first,
 *                then moves this point. After an unclean stop, segments at or above it are
 *                recovered like the active segment: scanned whole, a torn tail cut, and the
 *                segments after a cut deleted. Written
 *                first at a partition's first roll; missing, it is the last segment's base (a
 *                directory from before it existed: what rolls then guaranteed).
 *   log-start-offset  present once records were deleted by offset (part_delete_before, Kafka's
 *                DeleteRecords): the log start offset as decimal text and a newline, written
 *                through tmp + fsync + rename. Offsets below it are gone even where their
 *                segment still exists; a value below the first segment's base is stale (retention
 *                went further) and ignored.
 *
 * Index files are written whole (to B.index.tmp, fsync, rename) when a rolled segment's seal is
 * paid and when the partition is closed; the active segment's indexes live in memory meanwhile.
 * After an unclean stop the active segment, and any segment at or above the recovery point, is
 * therefore scanned from its first byte, validating every batch CRC: this is the recovery that
 * truncates a torn tail.
 *
 * Locking: `mu` guards the segment list, the active segment's in-memory state, the sync state
 * and the offline reason. Readers take it only to find a segment and reference it; they read the
 * file without it (segments are append-only; a reader never looks past the high watermark).
 * log_start, high_watermark and log_end are atomics so offset checks need no lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "storage/keyindex.h"
#include "storage/part_int.h"
#include "storage/segkeys.h"

/* ---------------------------------------------------------------------------------------------
 * Small helpers
 */
int config_has_rules(const td_topic_config *cfg)
{
    batch_rules r;
    batch_rules_of(cfg, &r);
    return batch_rules_needed(&r);
}

void seg_path(const td_part *p, int64_t base, const char *ext, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%020" PRId64 "%s", p->dir, base, ext);
}

/* Removes a segment's index files, and its log too when `log` is set. */
void seg_unlink(const td_part *p, int64_t base, bool log)
{
    static const char *const exts[] = {".log", ".index", ".timeindex", KEYINDEX_EXT,
                                       TRACEINDEX_EXT}; /* log first */
    char path[PATH_MAX];
    for (size_t k = log ? 0 : 1; k < TD_ARRAY_LEN(exts); k++) {
        seg_path(p, base, exts[k], path, sizeof(path));
        p->io->unlink(p->io, path);
    }
}

/* Marks the partition offline with a reason; the first reason wins. Caller holds mu. */
int go_offline(td_part *p, int rc, const char *fmt, ...)
{
    if (!p->offline[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->offline, sizeof(p->offline), fmt, ap);
        va_end(ap);
        __atomic_store_n(&p->offline_flag, 1, __ATOMIC_RELEASE);
        TD_ERROR("storage", "partition %s is offline: %s", p->label, p->offline);
    }
    return td_fail(rc, "partition %s is offline: %s", p->label, p->offline);
}

int check_online(td_part *p)
{
    if (__atomic_load_n(&p->offline_flag, __ATOMIC_ACQUIRE))
        return td_fail(TD_EOFFLINE, "partition %s is offline: %s", p->label, p->offline);
    return 0;
}

int idx_push(td_seg *s, uint32_t rel, uint32_t pos)
{
    if (td_grow(&s->idx, &s->idx_cap, s->idx_n, sizeof(*s->idx), 64) != 0)
        return -ENOMEM;
    s->idx[s->idx_n++] = (idx_entry){rel, pos};
    return 0;
}

int tidx_push(td_seg *s, int64_t ts, uint32_t rel)
{
    if (td_grow(&s->tidx, &s->tidx_cap, s->tidx_n, sizeof(*s->tidx), 64) != 0)
        return -ENOMEM;
    s->tidx[s->tidx_n++] = (tidx_entry){ts, rel};
    return 0;
}

/*
 * Accounts a batch (already in the file at pos) in the segment's memory state: indexes, next
 * offset, max timestamp, size. The index gets an entry for the first batch and then whenever
 * TD_INDEX_INTERVAL_BYTES have passed since the last entry.
 */
int seg_account(td_seg *s, const td_batch_header *h, int64_t pos)
{
    size_t total = batch_total_size(h);
    uint32_t rel = (uint32_t)(h->base_offset - s->base);
    int64_t ts = h->max_timestamp;
    if (s->idx_n == 0 || s->since_index >= TD_INDEX_INTERVAL_BYTES) {
        int rc = idx_push(s, rel, (uint32_t)pos);
        if (rc)
            return rc;
        s->since_index = 0;
    }
    s->since_index += (int64_t)total;
    if (ts > s->max_ts) {
        s->max_ts = ts;
        s->max_ts_base = h->base_offset;
        int rc = tidx_push(s, ts, rel);
        if (rc)
            return rc;
    }
    s->next_offset = batch_last_offset(h) + 1;
    s->size = pos + (int64_t)total;
    return 0;
}

void seg_free(td_seg *s)
{
    if (s->fd >= 0)
        s->part->io->close(s->part->io, s->fd);
    free(s->idx);
    free(s->tidx);
    segkeys_drop(s);
    free(s);
}

/* Caller holds mu. */
void seg_unref_locked(td_seg *s)
{
    if (--s->refs == 0)
        seg_free(s);
}

td_seg *seg_new(td_part *p, int64_t base)
{
    td_seg *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->part = p;
    s->base = base;
    s->next_offset = base;
    s->max_ts = -1;
    s->max_ts_base = base;
    s->fd = -1;
    s->refs = 1;
    return s;
}

/* Writes a whole file through tmp + fsync + rename. */
int write_file_atomic(td_part *p, const char *path, const void *data, size_t n)
{
    return td_io_replace_file(p->io, path, data, n);
}

/* Writes both index files of a segment (used at seal and at close). */
int seg_write_indexes(td_part *p, td_seg *s)
{
    char path[PATH_MAX];
    size_t n = s->idx_n * IDX_ENTRY;
    uint8_t *b = malloc(TD_MAX(n, s->tidx_n * TIDX_ENTRY) + 1);
    if (!b)
        return -ENOMEM;
    for (size_t i = 0; i < s->idx_n; i++) {
        td_store_be32(b + i * IDX_ENTRY, s->idx[i].rel);
        td_store_be32(b + i * IDX_ENTRY + 4, s->idx[i].pos);
    }
    seg_path(p, s->base, ".index", path, sizeof(path));
    int rc = write_file_atomic(p, path, b, n);
    if (rc == 0) {
        for (size_t i = 0; i < s->tidx_n; i++) {
            td_store_be64(b + i * TIDX_ENTRY, (uint64_t)s->tidx[i].ts);
            td_store_be32(b + i * TIDX_ENTRY + 8, s->tidx[i].rel);
        }
        seg_path(p, s->base, ".timeindex", path, sizeof(path));
        rc = write_file_atomic(p, path, b, s->tidx_n * TIDX_ENTRY);
    }
    free(b);
    if (rc == 0)
        rc = segkeys_write(p, s); /* key.index: the segment's in-memory key index, if any */
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Closing
 */
void part_close(td_part *p)
{
    if (!p)
        return;
    indexer_detach(p); /* before mu: the indexer thread takes it */
    pthread_mutex_lock(&p->mu);
    const td_io *io = p->io;
    if (p->nsegs && !p->offline[0] && !p->deleted) {
        p->syncing = true; /* nothing else runs now; seals_complete_locked wants the role */
        p->seal_retry_ms = 0; /* a last try, whatever failed recently */
        int rc = seals_complete_locked(p);
        p->syncing = false;
        rc = rc ? rc : p->owed_n ? -EIO : 0; /* an index left unwritten: not a clean close */
        td_seg *act = p->segs[p->nsegs - 1];
        if (rc == 0)
            rc = io->fsync(io, act->fd);
        if (rc == 0 && act->size > 0)
            rc = seg_write_indexes(p, act);
        if (rc == 0 && !p->clean_marker)
            write_snapshot(p, aload(&p->log_end));
        if (rc == 0 && !p->clean_marker) {
            char path[PATH_MAX];
            snprintf(path, sizeof(path), "%s/%s", p->dir, CLEAN_MARKER);
            int fd = io->open(io, path, O_RDWR | O_CREAT, 0644);
            if (fd >= 0) {
                io->fsync(io, fd);
                io->close(io, fd);
                io->sync_dir(io, p->dir);
            }
        }
    }
    for (size_t i = 0; i < p->nsegs; i++)
        seg_unref_locked(p->segs[i]);
    pthread_mutex_unlock(&p->mu);
    free(p->segs);
    free(p->waiters);
    td_buf_free(&p->scrub_buf);
    td_buf_free(&p->ix_buf);
    pthread_mutex_destroy(&p->ix_mu);
    pstate_free(&p->producers);
    txn_free(p);
    free(p->anch);
    keyindex_free(p);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->synced);
    pthread_cond_destroy(&p->appended);
    free(p->dir);
    free(p->label);
    free(p);
}

void part_mark_deleted(td_part *p)
{
    pthread_mutex_lock(&p->mu);
    p->deleted = true;
    pthread_mutex_unlock(&p->mu);
}

void part_set_config(td_part *p, const td_topic_config *cfg)
{
    pthread_mutex_lock(&p->mu);
    bool keyed = p->cfg.key_index, traced = p->cfg.trace_index;
    p->cfg = *cfg;
    if ((keyed != cfg->key_index || traced != cfg->trace_index) && p->nsegs && !p->offline[0] &&
        !p->deleted)
        segkeys_config_locked(p, keyed, traced, td_wall_ms());
    __atomic_store_n(&p->has_rules, config_has_rules(cfg), __ATOMIC_RELEASE);
    pthread_mutex_unlock(&p->mu);
}

void part_set_metrics(td_part *p, const part_metrics *m)
{
    p->metrics = *m;
}

void part_set_reserve(td_part *p, td_reserve *r)
{
    p->reserve = r;
}

/* ---------------------------------------------------------------------------------------------
 * Appending
 */

/* Seals the active segment and starts a new one at the log end. Caller holds mu. The sealed
 * segment's fsync and index files are owed to the next sync (seals_complete_locked): an append
 * that rolls does not wait for a whole segment to reach the disk. The first roll of a partition
 * writes its recovery point (the default would trust the segment it seals). */
int roll_locked(td_part *p, int64_t now_ms)
{
    td_seg *act = p->segs[p->nsegs - 1];
    int rc = p->recovery_point < 0 ? recovery_point_update_locked(p) : 0;
    if (rc == 0)
        rc = seg_create(p, act->next_offset, now_ms);
    if (rc)
        return rc;
    act->sealed = true;
    act->owed = true;
    act->owed_ms = td_mono_ms();
    __atomic_add_fetch(&p->owed_n, 1, __ATOMIC_RELAXED);
    sealed_max_update_locked(p);
    TD_DEBUG("storage", "partition %s: rolled segment at offset %" PRId64, p->label,
             act->next_offset);
    write_snapshot(p, act->next_offset);
    return 0;
}

/* The first append after a clean open removes the clean marker (durably: otherwise a crash
 * could leave the marker vouching for a log that has changed). */
static int drop_clean_marker(td_part *p)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", p->dir, CLEAN_MARKER);
    int rc = p->io->unlink(p->io, path);
    if (rc && rc != -ENOENT)
        return rc;
    rc = p->io->sync_dir(p->io, p->dir);
    if (rc == 0)
        p->clean_marker = false;
    return rc;
}

int part_append(td_part *p, uint8_t *batch, size_t n, int64_t now_ms, td_append_result *res)
{
    int rc = batch_validate(batch, n, false, 0, NULL);
    if (rc && rc != TD_EAGAIN)
        return rc;
    return part_append_unchecked(p, batch, n, now_ms, res);
}

static int append_impl(td_part *p, uint8_t *batch, size_t n, int64_t now_ms, td_append_result *res,
                       part_sid_req *req, part_expect *ereq);

/* Applies the topic's append-time rules (recompress.c: compression.type and the timestamp
 * bounds) outside the lock, then appends. */
static int append_ruled(td_part *p, uint8_t *batch, size_t n, int64_t now_ms,
                        td_append_result *res, part_sid_req *req, part_expect *ereq)
{
    /* The common case (no rules) costs one atomic load, not a second trip through the lock. */
    if (!__atomic_load_n(&p->has_rules, __ATOMIC_ACQUIRE))
        return append_impl(p, batch, n, now_ms, res, req, ereq);
    batch_rules rules;
    pthread_mutex_lock(&p->mu);
    batch_rules_of(&p->cfg, &rules);
    size_t max_decomp = (size_t)TD_MAX(p->cfg.max_message_bytes, 1 << 20) * 64;
    pthread_mutex_unlock(&p->mu);
    if (!batch_rules_needed(&rules))
        return append_impl(p, batch, n, now_ms, res, req, ereq);
    td_buf tmp;
    td_buf_init(&tmp);
    uint8_t *b;
    size_t bn;
    int rc = batch_apply_rules(&rules, batch, n, now_ms, max_decomp, &tmp, &b, &bn);
    if (rc == 0)
        rc = append_impl(p, b, bn, now_ms, res, req, ereq);
    td_buf_free(&tmp);
    return rc;
}

int part_append_control(td_part *p, uint8_t *batch, size_t n, int64_t now_ms, td_append_result *res)
{
    return append_impl(p, batch, n, now_ms, res, NULL, NULL);
}

int part_append_unchecked(td_part *p, uint8_t *batch, size_t n, int64_t now_ms,
                          td_append_result *res)
{
    return append_ruled(p, batch, n, now_ms, res, NULL, NULL);
}

int part_append_expect_ruled(td_part *p, uint8_t *batch, size_t n, int64_t now_ms,
                             td_append_result *res, part_expect *req)
{
    return append_ruled(p, batch, n, now_ms, res, NULL, req);
}

int part_append_sid(td_part *p, uint8_t *batch, size_t n, int64_t now_ms, td_append_result *res,
                    part_sid_req *req)
{
    return append_ruled(p, batch, n, now_ms, res, req, NULL);
}

static int append_impl(td_part *p, uint8_t *batch, size_t n, int64_t now_ms, td_append_result *res,
                       part_sid_req *req, part_expect *ereq)
{
    td_batch_header h;
    int rc = batch_header_parse(batch, n, &h);
    if (rc == TD_EAGAIN || (rc == 0 && batch_total_size(&h) != n))
        return td_fail(TD_ECORRUPT, "batch size %zu does not match its length field", n);
    if (rc)
        return rc;
    pthread_mutex_lock(&p->mu);
    if ((rc = check_online(p)) != 0)
        goto out;
    if (p->deleted) {
        /* A producer that found the topic before it was deleted: its files are unlinked, and
         * what it wrote there would be acknowledged and then lost. */
        rc = td_fail(TD_ENOTFOUND, "partition %s was deleted", p->label);
        goto out;
    }
    if (n > (size_t)p->cfg.max_message_bytes && !(h.attributes & TD_BATCH_ATTR_CONTROL)) {
        rc = td_fail(TD_ETOOBIG, "batch of %zu bytes exceeds max.message.bytes %" PRId32, n,
                     p->cfg.max_message_bytes);
        goto out;
    }
    bool control = (h.attributes & TD_BATCH_ATTR_CONTROL) != 0;
    int32_t coord_epoch = 0;
    int mtype = control ? batch_marker_type(batch, n, &coord_epoch) : -1;
    if (control && (mtype < 0 || h.producer_id < 0)) {
        rc = td_fail(TD_EINVAL, "a control batch that is no transaction marker");
        goto out;
    }
    if (control) {
        if ((rc = txn_marker_check_locked(p, &h)) != 0)
            goto out;
    } else if (h.producer_id >= 0) {
        td_pbatch dup;
        rc = pstate_check(&p->producers, &h, &dup);
        if (rc == 1) {
            /* A retry of a batch already in the log: answer with the original's offsets. */
            rc = 0;
            if (res) {
                res->base_offset = dup.first_offset;
                res->last_offset = dup.last_offset;
                res->log_append_time =
                    p->cfg.timestamp_type == TD_TS_LOG_APPEND_TIME ? dup.max_timestamp : -1;
                res->end_offset = dup.last_offset + 1;
                res->duplicate = true;
            }
            goto out;
        }
        if (rc)
            goto out;
    }
    /* While the disk reserve is released, its space belongs to the operation that frees space,
     * not to producers (reserve.c). */
    if ((rc = reserve_check(p->reserve)) != 0)
        goto out;
    if (p->clean_marker && (rc = drop_clean_marker(p)) != 0)
        goto out;
    td_seg *act = p->segs[p->nsegs - 1];
    /* A compacted topic rolls by max.compaction.lag.ms too, so that the cleaner can reach its
     * records in time (Kafka's LogConfig.maxSegmentMs). */
    int64_t roll_ms = p->cfg.segment_ms;
    if ((p->cfg.cleanup_policy & TD_CLEANUP_COMPACT) && p->cfg.max_compaction_lag_ms > 0)
        roll_ms = TD_MIN(roll_ms, p->cfg.max_compaction_lag_ms);
    /* key.index, trace.index: the active segment's in-memory indexes stay within their bounds. */
    if (act->size > 0 && (act->size + (int64_t)n > p->cfg.segment_bytes ||
                          now_ms - act->created_ms >= roll_ms || segkeys_full(p, act))) {
        if ((rc = roll_locked(p, now_ms)) != 0)
            goto out;
        act = p->segs[p->nsegs - 1];
    }
    if (act->size + (int64_t)n > UINT32_MAX) {
        rc = td_fail(TD_ETOOBIG, "batch does not fit in a segment");
        goto out;
    }
    int64_t base = act->next_offset;
    bool opens = !control && txn_opens(p, &h);
    if ((rc = sid_check_locked(p, req, base, &h)) != 0)
        goto out;
    if (ereq && (rc = segkeys_expect_locked(p, ereq)) != 0)
        goto out;
    batch_set_base_offset(batch, base);
    h.base_offset = base;
    int64_t lat = -1;
    if (p->cfg.timestamp_type == TD_TS_LOG_APPEND_TIME) {
        batch_set_log_append_time(batch, n, now_ms);
        h.max_timestamp = now_ms;
        lat = now_ms;
    }
    rc = td_io_write_all(p->io, act->fd, batch, n, act->size);
    if (rc) {
        /* Nothing of a failed batch may stay: cut the file back to where it was. */
        int trc = p->io->ftruncate(p->io, act->fd, act->size);
        if (trc)
            go_offline(p, trc, "cannot undo a failed append: %s", td_strerror(trc));
        rc = td_fail(rc, "append to partition %s failed: %s", p->label, td_strerror(rc));
        goto out;
    }
    if ((rc = seg_account(act, &h, act->size)) != 0)
        goto out;
    if (act->kx || act->tx)
        segkeys_appended_locked(p, act, batch, n, now_ms);
    if (req)
        req->got = sid_at_locked(p, base, NULL);
    if (control ? txn_marker_locked(p, &h, mtype, coord_epoch, now_ms, false) != 0
                : pstate_update(&p->producers, &h, now_ms) != 0 || txn_data_locked(p, &h, opens))
        TD_ERROR("storage",
                 "partition %s: out of memory recording producer %" PRId64
                 "; a retry of its last batch would be stored again, and its transaction state"
                 " may be wrong until the next open",
                 p->label, h.producer_id);
    astore(&p->log_end, act->next_offset);
    if (p->keys)
        keyindex_appended_locked(p, batch, n);
    if (++p->pending >= p->last_round)
        pthread_cond_signal(&p->appended); /* a gathering leader has its round */
    if (p->cfg.fsync_policy != TD_FSYNC_ALWAYS) {
        astore(&p->high_watermark, act->next_offset);
        txn_hw_advanced_locked(p);
        if (p->on_advance)
            p->on_advance(p->on_advance_arg);
    }
    td_counter_add(p->metrics.events_in, (uint64_t)(batch_last_offset(&h) - base + 1));
    td_counter_add(p->metrics.bytes_in, n);
    if (res) {
        res->base_offset = base;
        res->last_offset = batch_last_offset(&h);
        res->log_append_time = lat;
        res->end_offset = act->next_offset;
        res->duplicate = false;
    }
out:
    pthread_mutex_unlock(&p->mu);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Durability
 */

/* The oldest segment whose seal is owed and whose log is not yet fsynced, or NULL. Caller
 * holds mu. */
static td_seg *first_unsynced_locked(const td_part *p)
{
    for (size_t i = 0; p->owed_n > 0 && i < p->nsegs; i++)
        if (p->segs[i]->owed && !p->segs[i]->synced)
            return p->segs[i];
    return NULL;
}

/*
 * Pays the owed seals, oldest first: fsyncs each such segment's log, then writes the index files
 * of each, then moves the recovery point past them. Caller holds mu and the sync role
 * (p->syncing), so nothing else seals or syncs meanwhile; mu is released during the file work (a
 * sealed segment's indexes no longer change). Retention may delete the segment meanwhile: then
 * the index files just written are removed again.
 * Only a failed fsync is an error (as for any sync: the partition goes offline). Every owed log
 * is fsynced whatever happens to the index files: acknowledgements under fsync=always count on
 * it. An index file that cannot be written (a full disk) leaves the seal owed, tried again at a
 * sync at least SEAL_RETRY_MS later (the background thread asks every tick; a full disk must not
 * cost a file creation and a log line each time), and is logged once until it succeeds; a
 * recovery point that cannot be written stays where it was. Either way recovery would only
 * scan more than it needs.
 */
#define SEAL_RETRY_MS 1000
int seals_complete_locked(td_part *p)
{
    if (p->deleted || (p->recovery_point < 0 && p->owed_n == 0))
        return 0; /* the directory is gone, or nothing rolled (a roll writes the point first) */
    td_seg *s;
    while ((s = first_unsynced_locked(p)) != NULL) {
        s->refs++;
        pthread_mutex_unlock(&p->mu);
        int rc = p->io->fsync(p->io, s->fd);
        pthread_mutex_lock(&p->mu);
        s->synced = rc == 0;
        seg_unref_locked(s);
        if (rc)
            return go_offline(p, rc, "fsync of a rolled segment failed: %s", td_strerror(rc));
    }
    while (td_mono_ms() >= p->seal_retry_ms && (s = first_owed_locked(p)) != NULL) {
        int64_t base = s->base;
        s->refs++;
        pthread_mutex_unlock(&p->mu);
        int irc = seg_write_indexes(p, s);
        pthread_mutex_lock(&p->mu);
        if (s->deleted) {
            seg_unlink(p, base, false);
            irc = 0; /* drop_oldest_locked settled owed_n */
        } else if (irc == 0) {
            s->owed = false;
            __atomic_sub_fetch(&p->owed_n, 1, __ATOMIC_RELAXED);
            segkeys_drop(s); /* its key index file is written: lookups read that */
        }
        seg_unref_locked(s);
        if (irc) {
            p->seal_retry_ms = td_mono_ms() + SEAL_RETRY_MS;
            if (!p->seal_failing)
                TD_WARN("storage",
                        "partition %s: cannot write the indexes of segment %020" PRId64
                        " yet (retried every %d ms): %s",
                        p->label, base, SEAL_RETRY_MS, td_strerror(irc));
            p->seal_failing = true;
            break;
        }
        if (p->seal_failing)
            TD_INFO("storage", "partition %s: wrote the indexes owed since the last failure",
                    p->label);
        p->seal_failing = false;
    }
    int rc = recovery_point_update_locked(p);
    if (rc && !p->seal_failing)
        TD_WARN("storage", "partition %s: %s", p->label, td_last_error());
    return 0;
}

/*
 * Runs one fsync covering everything appended so far. Caller holds mu and !p->syncing; mu is
 * released during the fsync and held again on return. Callbacks that became due are moved to
 * *due for the caller to run after unlocking.
 */
static int sync_locked(td_part *p, durable_waiter **due, size_t *ndue)
{
    p->syncing = true;
    int64_t target = aload(&p->log_end);
    p->last_round = p->pending;
    p->pending = 0;
    int rc = p->owed_n ? seals_complete_locked(p) : 0;
    td_seg *act = p->segs[p->nsegs - 1];
    act->refs++;
    pthread_mutex_unlock(&p->mu);
    int64_t t0 = td_mono_ns(), took = 0;
    if (rc == 0) {
        rc = p->io->fsync(p->io, act->fd);
        took = td_mono_ns() - t0;
        td_histogram_observe(p->metrics.fsync, took);
        part_slow *s = p->metrics.slow;
        if (s && took > s->threshold_ns) {
            __atomic_add_fetch(&s->count, 1, __ATOMIC_RELAXED);
            int64_t m = __atomic_load_n(&s->max_ns, __ATOMIC_RELAXED);
            while (took > m && !__atomic_compare_exchange_n(&s->max_ns, &m, took, true,
                                                            __ATOMIC_RELAXED, __ATOMIC_RELAXED))
                ;
        }
    }
    pthread_mutex_lock(&p->mu);
    if (took)
        p->sync_ns = p->sync_ns ? (p->sync_ns * 7 + took) / 8 : took;
    /* The producers this sync releases (the waiters and the leader) will likely append again
     * at once: that is the size the next round gathers for. */
    p->last_round = TD_MAX(p->last_round, (int64_t)p->nwaiting + 1);
    seg_unref_locked(act);
    p->syncing = false;
    if (rc) {
        go_offline(p, rc, "fsync failed: %s", td_strerror(rc)); /* keeps an earlier reason */
    } else if (target > p->durable) {
        p->durable = target;
        if (p->durable > aload(&p->high_watermark)) {
            astore(&p->high_watermark, p->durable);
            txn_hw_advanced_locked(p);
            if (p->on_advance)
                p->on_advance(p->on_advance_arg);
        }
    }
    /* Collect the callbacks that are due (or failed). */
    size_t k = 0;
    for (size_t i = 0; i < p->nwaiters; i++) {
        if (rc || p->waiters[i].end <= p->durable) {
            if (due) {
                durable_waiter *d = realloc(*due, (*ndue + 1) * sizeof(**due));
                if (d) {
                    *due = d;
                    d[(*ndue)++] = p->waiters[i];
                    continue;
                }
            }
        }
        p->waiters[k++] = p->waiters[i];
    }
    p->nwaiters = k;
    pthread_cond_broadcast(&p->synced);
    return rc;
}

/* An offline partition never syncs again: hands every registered waiter to *due, to be
 * answered with the error. Without this, waiters registered before the partition went offline
 * outside a sync (a failed append's undo, a corrupt batch found by a read or the scrub) would
 * wait forever, and with them the connections whose replies they hold. Caller holds mu. */
static void take_waiters_locked(td_part *p, durable_waiter **due, size_t *ndue)
{
    if (p->nwaiters == 0)
        return;
    durable_waiter *d = realloc(*due, (*ndue + p->nwaiters) * sizeof(**due));
    if (!d)
        return; /* left for the next sync attempt */
    memcpy(d + *ndue, p->waiters, p->nwaiters * sizeof(*d));
    *due = d;
    *ndue += p->nwaiters;
    p->nwaiters = 0;
}

static void run_due(durable_waiter *due, size_t ndue, int rc)
{
    for (size_t i = 0; i < ndue; i++)
        due[i].cb(due[i].arg, rc);
    free(due);
}

/*
 * Waits until every offset below end is durable, leading a sync when none is running. A
 * producer (part_wait_durable) also gathers a round before leading one (with gather: not
 * part_wait_durable_solo), keeps leading while other producers wait, and is counted among the
 * waiters that a round releases; a plain part_sync caller does none of that.
 */
static int sync_through(td_part *p, int64_t end, bool producer, bool gather)
{
    durable_waiter *due = NULL;
    size_t ndue = 0;
    int rc = 0;
    bool gathered = !gather, owe_wakeup = false, did_sync = false;
    pthread_mutex_lock(&p->mu);
    if (producer && p->cfg.fsync_policy != TD_FSYNC_ALWAYS)
        end = 0; /* nothing to wait for under interval and none */
    for (;;) {
        /* part_sync also pays owed seals when there is no data to sync. */
        if ((p->durable >= end && (producer || p->owed_n == 0 || did_sync)) ||
            (rc = check_online(p)) != 0)
            break;
        if (p->syncing) {
            p->nwaiting += producer;
            pthread_cond_wait(&p->synced, &p->mu);
            p->nwaiting -= producer;
            continue;
        }
        /* Gather: when the last round released more producers than have appended since,
         * they are probably about to append again; wait for them a little (at most two fsync
         * times) so that one fsync covers them all. A lone producer never waits. */
        if (!gathered && p->pending < p->last_round) {
            gathered = true;
            struct timespec ts = td_deadline_ns(CLOCK_REALTIME, TD_MIN(p->sync_ns * 2, 2000000));
            p->syncing = true; /* nobody else starts a sync while we gather */
            while (p->pending < p->last_round &&
                   pthread_cond_timedwait(&p->appended, &p->mu, &ts) == 0)
                ;
            p->syncing = false;
            owe_wakeup = true; /* settled by the sync below, or at the exit */
            continue;
        }
        owe_wakeup = false; /* sync_locked broadcasts */
        rc = sync_locked(p, &due, &ndue);
        did_sync = true;
        /* A producer stays the leader while others wait for data that is not yet durable:
         * syncing again at once keeps fsyncs back to back, where handing over to a waiter
         * would first cost a wake-up and a context switch on every round. Bounded, so that
         * this caller is not held forever. */
        for (int extra = 0; producer && rc == 0 && extra < 16 && p->nwaiting > 0 &&
                            p->durable < aload(&p->log_end);
             extra++)
            rc = sync_locked(p, &due, &ndue);
        if (rc)
            break;
    }
    /* Others waited on `synced` while we gathered holding the sync role; if we leave without
     * syncing (offline), nobody else would wake them. */
    if (owe_wakeup)
        pthread_cond_broadcast(&p->synced);
    if (rc && p->offline[0])
        take_waiters_locked(p, &due, &ndue);
    pthread_mutex_unlock(&p->mu);
    run_due(due, ndue, rc);
    return rc;
}

int part_wait_durable(td_part *p, int64_t end_offset)
{
    return sync_through(p, end_offset, true, true);
}

int part_wait_durable_solo(td_part *p, int64_t end_offset)
{
    return sync_through(p, end_offset, true, false);
}

int part_sync(td_part *p)
{
    return sync_through(p, aload(&p->log_end), false, false);
}

int part_on_durable(td_part *p, int64_t end_offset, td_durable_cb cb, void *arg)
{
    pthread_mutex_lock(&p->mu);
    int rc = check_online(p);
    if (rc == 0 && p->cfg.fsync_policy == TD_FSYNC_ALWAYS && p->durable < end_offset) {
        if (td_grow(&p->waiters, &p->waiters_cap, p->nwaiters, sizeof(*p->waiters), 16) != 0) {
            pthread_mutex_unlock(&p->mu);
            return -ENOMEM;
        }
        p->waiters[p->nwaiters++] = (durable_waiter){end_offset, cb, arg};
        pthread_mutex_unlock(&p->mu);
        return 0;
    }
    pthread_mutex_unlock(&p->mu);
    cb(arg, rc);
    return 0;
}

bool part_needs_sync(td_part *p)
{
    pthread_mutex_lock(&p->mu);
    bool r = !p->offline[0] && p->durable < aload(&p->log_end);
    pthread_mutex_unlock(&p->mu);
    return r;
}

bool part_seals_owed(td_part *p, int64_t *since_ms)
{
    if (__atomic_load_n(&p->owed_n, __ATOMIC_RELAXED) == 0)
        return false; /* the usual answer, without the lock: the background asks every tick */
    pthread_mutex_lock(&p->mu);
    td_seg *s = p->offline[0] ? NULL : first_owed_locked(p);
    if (s)
        *since_ms = s->owed_ms;
    /* Only index files owed, and their last write failed: nothing to do before the retry. */
    if (s && !first_unsynced_locked(p) && td_mono_ms() < p->seal_retry_ms)
        s = NULL;
    pthread_mutex_unlock(&p->mu);
    return s != NULL;
}

int64_t part_log_start(td_part *p)
{
    return aload(&p->log_start);
}

void part_set_advance_hook(td_part *p, void (*fn)(void *arg), void *arg)
{
    pthread_mutex_lock(&p->mu);
    p->on_advance = fn;
    p->on_advance_arg = arg;
    pthread_mutex_unlock(&p->mu);
}

int64_t part_high_watermark(td_part *p)
{
    return aload(&p->high_watermark);
}

int64_t part_log_end(td_part *p)
{
    return aload(&p->log_end);
}

/* ---------------------------------------------------------------------------------------------
 * Stats
 */
void part_stats(td_part *p, td_part_stats *st)
{
    memset(st, 0, sizeof(*st));
    pthread_mutex_lock(&p->mu);
    st->log_start_offset = aload(&p->log_start);
    st->high_watermark = aload(&p->high_watermark);
    st->log_end_offset = aload(&p->log_end);
    for (size_t i = 0; i < p->nsegs; i++)
        st->size_bytes += p->segs[i]->size;
    st->segments = (int32_t)p->nsegs;
    st->offline = p->offline[0] != 0;
    st->producers = (int64_t)p->producers.n;
    snprintf(st->error, sizeof(st->error), "%s", p->offline);
    pthread_mutex_unlock(&p->mu);
}

const char *part_offline(td_part *p)
{
    return __atomic_load_n(&p->offline_flag, __ATOMIC_ACQUIRE) ? p->offline : NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Idempotent producers
 */
size_t part_expire_producers(td_part *p, int64_t before_ms)
{
    pthread_mutex_lock(&p->mu);
    size_t n = pstate_expire(&p->producers, before_ms);
    pthread_mutex_unlock(&p->mu);
    if (n)
        TD_DEBUG("storage", "partition %s: %zu idle producers expired", p->label, n);
    return n;
}

int part_producer(td_part *p, int64_t pid, int16_t *epoch, int32_t *last_seq, int64_t *last_offset)
{
    pthread_mutex_lock(&p->mu);
    const td_producer *e = pstate_find(&p->producers, pid);
    int rc = e && e->n ? 0 : TD_ENOTFOUND;
    if (rc == 0) {
        *epoch = e->epoch;
        *last_seq = e->b[e->n - 1].last_seq;
        *last_offset = e->b[e->n - 1].last_offset;
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}
