/*
 * part_txn.c: a partition's transactions (docs/storage.md "Transactions"), as Kafka keeps them
 * in its ProducerStateManager and transaction index:
 *
 * - the transactions in progress: opened by a producer's first transactional batch here, closed
 *   by its marker (a control batch the coordinator appends through part_append_marker). A
 *   closed one stays "unstable" until the high watermark passes its marker, so that a reader
 *   never sees a transaction's records as settled before its outcome is durable;
 * - the last stable offset (LSO): the first offset of the earliest unstable transaction, or
 *   the high watermark when there is none; read_committed readers stop there;
 * - the aborted transactions: per aborted transaction with records here, its producer, first
 *   offset, marker offset and the LSO when its marker was written, so that readers can drop
 *   its records. They are kept in memory, sorted by marker offset, and in the file
 *   ABORTED_FILE: 36-byte entries (big-endian: pid, first, last, lso as i64, then a CRC32C of
 *   those 32 bytes), each appended and fsynced when its marker is appended. At open, entries
 *   past the log end (their marker was lost with the unsynced tail) or below the log start go;
 *   the replay of the log after the producers' snapshot adds those whose entry was lost.
 *   Retention forgets the entries below the log start, and compaction those whose marker it
 *   removes (txn_markers_removed_locked: it removes a marker only once no record of its
 *   transaction is left, so no reader needs the entry), both by rewriting the file.
 *
 * Callers hold p->mu unless said otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/part_int.h"

static void aborted_encode(uint8_t *b, const td_aborted_txn *a)
{
    td_store_be64(b, (uint64_t)a->pid);
    td_store_be64(b + 8, (uint64_t)a->first);
    td_store_be64(b + 16, (uint64_t)a->last);
    td_store_be64(b + 24, (uint64_t)a->lso);
    td_store_be32(b + 32, td_crc32c(0, b, 32));
}

static void aborted_path(const td_part *p, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", p->dir, ABORTED_FILE);
}

/* Adds an entry in order of marker offset (a replay may find one the file had: not twice). */
static int aborted_push(td_part *p, const td_aborted_txn *a)
{
    size_t i = p->nab;
    while (i > 0 && p->ab[i - 1].last >= a->last) {
        if (p->ab[i - 1].last == a->last)
            return 0;
        i--;
    }
    if (td_grow(&p->ab, &p->ab_cap, p->nab, sizeof(*p->ab), 8) != 0)
        return -ENOMEM;
    memmove(p->ab + i + 1, p->ab + i, (p->nab - i) * sizeof(*p->ab));
    p->ab[i] = *a;
    p->nab++;
    return 0;
}

/* Appends an entry to ABORTED_FILE durably. */
static int aborted_write(td_part *p, const td_aborted_txn *a)
{
    char path[PATH_MAX];
    aborted_path(p, path, sizeof(path));
    const td_io *io = p->io;
    int fd = io->open(io, path, O_RDWR | O_CREAT, 0644);
    if (fd < 0)
        return td_fail(fd, "cannot open %s: %s", path, td_strerror(fd));
    int64_t size = 0;
    int rc = io->fsize(io, fd, &size);
    uint8_t b[ABORTED_ENTRY];
    aborted_encode(b, a);
    size -= size % ABORTED_ENTRY; /* after a torn write, overwrite its remains */
    if (rc == 0)
        rc = td_io_write_all(io, fd, b, sizeof(b), size);
    if (rc == 0)
        rc = io->fsync(io, fd);
    io->close(io, fd);
    if (rc == 0 && size == 0)
        rc = io->sync_dir(io, p->dir);
    return rc ? td_fail(rc, "cannot write %s: %s", path, td_strerror(rc)) : 0;
}

/* Rewrites ABORTED_FILE to hold the n entries of v (tmp + fsync + rename + directory fsync). */
static int aborted_rewrite_of(td_part *p, const td_aborted_txn *v, size_t n)
{
    char path[PATH_MAX];
    aborted_path(p, path, sizeof(path));
    uint8_t *b = malloc(n * ABORTED_ENTRY + 1);
    if (!b)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        aborted_encode(b + i * ABORTED_ENTRY, &v[i]);
    int rc = write_file_atomic(p, path, b, n * ABORTED_ENTRY);
    free(b);
    /* The rename itself durable: an old file coming back after a power loss could hold entries
     * whose markers were cut, at offsets new batches now hold. */
    return rc ? rc : p->io->sync_dir(p->io, p->dir);
}

/* Rewrites ABORTED_FILE from memory. */
static int aborted_rewrite(td_part *p)
{
    return aborted_rewrite_of(p, p->ab, p->nab);
}

/* The smallest first offset of the unstable transactions of producers other than pid. */
static int64_t first_unstable_but(const td_part *p, int64_t pid)
{
    int64_t m = INT64_MAX;
    for (size_t i = 0; i < p->ntxns; i++)
        if (p->txns[i].pid != pid && p->txns[i].first < m)
            m = p->txns[i].first;
    return m;
}

static void unstable_update(td_part *p)
{
    astore(&p->unstable, first_unstable_but(p, -1));
}

/* ---------------------------------------------------------------------------------------------
 * Appends and replays
 */
int txn_data_locked(td_part *p, const td_batch_header *h, bool opens)
{
    if (!opens)
        return 0;
    if (td_grow(&p->txns, &p->txns_cap, p->ntxns, sizeof(*p->txns), 4) != 0)
        return -ENOMEM;
    p->txns[p->ntxns++] = (ptxn){h->producer_id, h->base_offset, -1};
    unstable_update(p);
    return 0;
}

bool txn_opens(const td_part *p, const td_batch_header *h)
{
    if (!(h->attributes & TD_BATCH_ATTR_TRANSACTIONAL) || (h->attributes & TD_BATCH_ATTR_CONTROL))
        return false;
    const td_producer *e = pstate_find(&p->producers, h->producer_id);
    return !e || e->txn_first < 0 || e->epoch != h->producer_epoch;
}

int txn_marker_check_locked(td_part *p, const td_batch_header *h)
{
    const td_producer *e = pstate_find(&p->producers, h->producer_id);
    if (e && h->producer_epoch < e->epoch)
        return td_fail(TD_EFENCED,
                       "partition %s: a transaction marker of producer %" PRId64
                       " at epoch %d, older than its epoch %d",
                       p->label, h->producer_id, h->producer_epoch, e->epoch);
    return 0;
}

int txn_marker_locked(td_part *p, const td_batch_header *h, int type, int32_t coord_epoch,
                      int64_t now_ms, bool replay)
{
    int64_t first = -1, at = h->base_offset;
    int rc = pstate_marker(&p->producers, h->producer_id, h->producer_epoch, coord_epoch, now_ms,
                           &first);
    if (rc)
        return rc;
    for (size_t i = 0; i < p->ntxns; i++)
        if (p->txns[i].pid == h->producer_id && p->txns[i].end < 0)
            p->txns[i].end = at + 1;
    int64_t others = first_unstable_but(p, h->producer_id);
    txn_hw_advanced_locked(p); /* a replay's markers are below it: settled at once */
    if (type != TD_MARKER_ABORT || first < 0)
        return 0;
    td_aborted_txn a = {h->producer_id, first, at, TD_MIN(others, at + 1)};
    if ((rc = aborted_push(p, &a)) != 0)
        return rc;
    if (replay) {
        p->ab_replayed = true;
        return 0;
    }
    if (aborted_write(p, &a) != 0) {
        /* The next producer snapshot rewrites the file first, and is not written if it cannot
         * be: the replay after the previous snapshot then finds the marker again. */
        p->ab_failed = true;
        TD_ERROR("storage",
                 "partition %s: the aborted transaction of producer %" PRId64 " at %" PRId64
                 " is in memory but not yet in %s: %s",
                 p->label, a.pid, at, ABORTED_FILE, td_last_error());
    }
    return 0;
}

int txn_before_snapshot_locked(td_part *p)
{
    if (!p->ab_failed)
        return 0;
    int rc = aborted_rewrite(p);
    if (rc == 0)
        p->ab_failed = false;
    return rc;
}

void txn_hw_advanced_locked(td_part *p)
{
    if (!p->ntxns)
        return;
    int64_t hw = aload(&p->high_watermark);
    size_t k = 0;
    for (size_t i = 0; i < p->ntxns; i++)
        if (p->txns[i].end < 0 || p->txns[i].end > hw)
            p->txns[k++] = p->txns[i];
    if (k != p->ntxns) {
        p->ntxns = k;
        unstable_update(p);
    }
}

int part_append_marker(td_part *p, int64_t pid, int16_t epoch, bool commit, int32_t coord_epoch,
                       int64_t now_ms, td_append_result *res)
{
    uint8_t b[TD_MARKER_SIZE];
    batch_encode_marker(b, pid, epoch, commit, coord_epoch, now_ms);
    return part_append_control(p, b, sizeof(b), now_ms, res);
}

/* ---------------------------------------------------------------------------------------------
 * Readers
 */
int64_t part_last_stable(td_part *p)
{
    /* The high watermark first: a transaction's first offset is published before the high
     * watermark passes its records, so a transaction below the one read here is seen. */
    int64_t hw = aload(&p->high_watermark);
    int64_t unstable = aload(&p->unstable);
    int64_t start = aload(&p->log_start);
    int64_t lso = unstable < hw ? unstable : hw;
    return lso > start ? lso : start;
}

static int cmp_first(const void *a, const void *b)
{
    const td_aborted_txn *x = a, *y = b;
    return x->first < y->first ? -1 : x->first > y->first;
}

int part_aborted_txns(td_part *p, int64_t from, int64_t upper, td_aborted_txn **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&p->mu);
    size_t lo = 0, hi = p->nab;
    while (lo < hi) { /* the first entry whose marker is at or after from */
        size_t mid = lo + (hi - lo) / 2;
        if (p->ab[mid].last < from)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t k = 0, cap = 0;
    td_aborted_txn *v = NULL;
    int rc = 0;
    for (size_t i = lo; i < p->nab; i++) {
        const td_aborted_txn *a = &p->ab[i];
        if (a->first < upper) {
            if ((rc = td_grow(&v, &cap, k, sizeof(*v), 8)) != 0)
                break;
            v[k++] = *a;
        }
        if (a->lso >= upper)
            break; /* no later entry can start below upper (Kafka's TransactionIndex) */
    }
    pthread_mutex_unlock(&p->mu);
    if (rc) {
        free(v);
        return rc;
    }
    if (k > 1)
        qsort(v, k, sizeof(*v), cmp_first); /* clients expect them by first offset */
    *out = v;
    *n = k;
    return 0;
}

int part_producers(td_part *p, td_producer_info **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&p->mu);
    size_t k = 0;
    td_producer_info *v = calloc(p->producers.n + 1, sizeof(*v));
    for (size_t i = 0; v && i < p->producers.cap; i++) {
        const td_producer *e = &p->producers.slots[i];
        if (e->pid < 0)
            continue;
        const td_pbatch *last = e->n ? &e->b[e->n - 1] : NULL;
        v[k++] = (td_producer_info){e->pid,         e->epoch,     last ? last->last_seq : -1,
                                    e->coord_epoch, e->txn_first, last ? last->max_timestamp : -1};
    }
    pthread_mutex_unlock(&p->mu);
    if (!v)
        return -ENOMEM;
    *out = v;
    *n = k;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Open and close
 */
int txn_load(td_part *p)
{
    char path[PATH_MAX];
    aborted_path(p, path, sizeof(path));
    const td_io *io = p->io;
    int fd = io->open(io, path, O_RDONLY, 0);
    if (fd < 0)
        return fd == -ENOENT ? 0 : td_fail(fd, "cannot open %s: %s", path, td_strerror(fd));
    int64_t size = 0;
    int rc = io->fsize(io, fd, &size);
    uint8_t *b = rc == 0 ? malloc((size_t)size + 1) : NULL;
    if (rc == 0 && !b)
        rc = -ENOMEM;
    if (rc == 0)
        rc = td_io_read_all(io, fd, b, (size_t)size, 0);
    io->close(io, fd);
    /* A torn last entry (a crash in its write) is one whose marker is after the newest snapshot
     * (see aborted_write): the replay finds it again. */
    bool damaged = false, dropped = size % ABORTED_ENTRY != 0;
    int64_t end = aload(&p->log_end), start = aload(&p->log_start);
    for (int64_t pos = 0; rc == 0 && pos + ABORTED_ENTRY <= size; pos += ABORTED_ENTRY) {
        const uint8_t *e = b + pos;
        td_aborted_txn a = {(int64_t)td_load_be64(e), (int64_t)td_load_be64(e + 8),
                            (int64_t)td_load_be64(e + 16), (int64_t)td_load_be64(e + 24)};
        if (td_load_be32(e + 32) != td_crc32c(0, e, 32) || a.pid < 0 || a.first < 0 ||
            a.first > a.last) {
            damaged = true;
            continue;
        }
        if (a.last >= end || a.last < start) {
            dropped = true; /* its marker was lost with the unsynced tail, or deleted */
            continue;
        }
        rc = aborted_push(p, &a);
    }
    free(b);
    /* Each entry is fsynced when its marker is appended, under the lock that orders snapshots:
     * a crash tears at most one whose marker is after the newest snapshot, which the replay
     * finds again. Anything else damaged: the whole log is replayed. */
    p->ab_replayed = dropped || damaged;
    p->ab_full_replay = damaged;
    if (damaged)
        TD_WARN("storage",
                "partition %s: %s is damaged; its transactions are read again from the"
                " whole log",
                p->label, ABORTED_FILE);
    return rc ? td_fail(rc, "cannot read %s: %s", path, td_strerror(rc)) : 0;
}

int txn_opened(td_part *p)
{
    /* The replay left the open transactions in the producers and in txns (their markers above
     * the high watermark, none: the whole log is durable at open). */
    txn_hw_advanced_locked(p);
    if (!p->ab_replayed)
        return 0;
    p->ab_replayed = false;
    int rc = aborted_rewrite(p);
    return rc ? td_fail(rc, "partition %s: cannot rewrite %s: %s", p->label, ABORTED_FILE,
                        td_strerror(rc))
              : 0;
}

int txn_from_snapshot(td_part *p)
{
    for (size_t i = 0; i < p->producers.cap; i++) {
        const td_producer *e = &p->producers.slots[i];
        if (e->pid < 0 || e->txn_first < 0)
            continue;
        td_batch_header h = {.producer_id = e->pid, .base_offset = e->txn_first};
        int rc = txn_data_locked(p, &h, true);
        if (rc)
            return rc;
    }
    return 0;
}

void txn_retained_locked(td_part *p)
{
    int64_t start = aload(&p->log_start);
    size_t k = 0;
    while (k < p->nab && p->ab[k].last < start)
        k++;
    if (!k)
        return;
    memmove(p->ab, p->ab + k, (p->nab - k) * sizeof(*p->ab));
    p->nab -= k;
    int rc = aborted_rewrite(p);
    if (rc)
        TD_WARN("storage", "partition %s: cannot rewrite %s: %s", p->label, ABORTED_FILE,
                td_strerror(rc));
}

int txn_markers_removed_locked(td_part *p, const td_aborted_txn *gone, size_t n)
{
    td_aborted_txn *v = malloc((p->nab + 1) * sizeof(*v));
    if (!v)
        return -ENOMEM;
    size_t k = 0, j = 0;
    for (size_t i = 0; i < p->nab; i++) { /* both by marker offset: one merge */
        while (j < n && gone[j].last < p->ab[i].last)
            j++;
        if (j == n || gone[j].last != p->ab[i].last || gone[j].pid != p->ab[i].pid)
            v[k++] = p->ab[i];
    }
    int rc = 0;
    if (k < p->nab) {
        /* The file first, memory once the file holds the same. The rewrite is of memory, so it
         * also writes an entry whose append failed (ab_failed). */
        rc = aborted_rewrite_of(p, v, k);
        if (rc == 0) {
            memcpy(p->ab, v, k * sizeof(*v));
            p->nab = k;
            p->ab_failed = false;
        }
    }
    free(v);
    return rc ? td_fail(rc, "partition %s: cannot rewrite %s: %s", p->label, ABORTED_FILE,
                        td_strerror(rc))
              : 0;
}

void txn_free(td_part *p)
{
    free(p->txns);
    free(p->ab);
    p->txns = NULL;
    p->ab = NULL;
    p->ntxns = p->nab = p->txns_cap = p->ab_cap = 0;
}
