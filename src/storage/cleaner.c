/*
 * cleaner.c: log compaction of one partition (cleanup.policy=compact), after Kafka's LogCleaner.
 * The engine's cleaner thread (broker/log_cleaner.c) picks the partition and calls part_clean.
 *
 * What is cleanable: the sealed segments below the active one whose seal is paid (fsynced, index
 * files written: below the recovery point) and whose largest timestamp is older than
 * min.compaction.lag.ms; the first that is not ends the cleanable range.
 *
 * A run:
 *  1. The offset map: a fixed-size open-addressing table of (key digest, latest offset), 24 bytes
 *     a slot, at most log.cleaner.dedupe.buffer.size bytes, filled to 90% (Kafka's
 *     SkimpyOffsetMap with its load factor). It covers the dirty section: the records from the
 *     cleaner checkpoint (first_dirty) to the end of the cleanable range. When it fills, the run
 *     maps only the records before the one that did not fit; the rest waits for the next run.
 *  2. The rewrite: the segments from the log start through the last mapped one are grouped (a
 *     group's old sizes sum to at most segment.bytes and its offsets fit 31 bits relative to its
 *     base: Kafka's groupSegmentsBySize) and each group is rewritten into one segment, named by
 *     the group's first base. A record stays when no later record of its key was mapped; a
 *     tombstone (null value) stays until its batch's delete horizon has passed (KIP-534: the
 *     first cleaning that keeps a tombstone sets the batch's horizon to now +
 *     delete.retention.ms in baseTimestamp, with attribute bit 6, and rebases the records'
 *     timestamp deltas on it); a record without a key (written before the topic was compacted)
 *     goes. A batch keeps its base offset, lastOffsetDelta, maxTimestamp, producer fields and
 *     codec; the kept records keep their offset deltas, so offsets never change. A batch left
 *     without records goes, unless it is an idempotent producer's last batch, which stays empty
 *     so that the producer's sequence survives a restart (Kafka keeps it likewise).
 *  3. The swap, per group (Kafka's .cleaned / .swap protocol): B.log.cleaned is written and
 *     fsynced; under the partition lock the stream ID anchors the new layout needs are written
 *     (they hold for the old segments as much as for the new), ABORTED_FILE is rewritten
 *     without the aborted transactions of the ABORT markers the group loses (see
 *     "Transactions"), B.log.cleaned is renamed to B.log.swap (the commit point), the other
 *     old segments of the group and B's index files are unlinked, B.log.swap is renamed over
 *     B.log, and the new index files are written. At open, cleaner_recover deletes any
 *     *.log.cleaned and completes any *.log.swap: it removes the old segments whose base lies
 *     within the swap's offsets, and B's index files, and renames the swap to B.log. So a crash
 *     at any point leaves the old segments or the cleaned one, never a mix that loses or
 *     repeats a record's offset.
 *  4. The checkpoint: CLEANER_CHECKPOINT_FILE gets the first offset not mapped (tmp + fsync +
 *     rename). Losing it costs only a cleaning done again.
 *
 * Waiting tombstones and markers: a run notes the earliest time one of those it kept can go
 * (a delete horizon, or a marker that becomes discardable in the next run) as p->clean_due_ms,
 * but not before delete.retention.ms from the run, so that they cost at most one run per
 * delete.retention.ms that dirty bytes did not bring. With nothing dirty, a run at or after it
 * rewrites the cleaned section (an empty map keeps every record but those), and the cleaner
 * thread picks such a partition (part_clean_info.due_ms). An open forgets it: the next run that
 * dirty bytes bring learns it again.
 *
 * Transactions (docs/storage.md "Transactions"): the cleanable range ends before the segment
 * holding the last stable offset, so an open transaction's records are never mapped; the
 * records of aborted transactions are not mapped (a later aborted record of a key must not
 * remove the committed one) and are removed. Markers go as Kafka's cleaner removes them
 * (CleanedTransactionMetadata, with KIP-534's delete horizon; marker_fate_of): a marker is
 * discardable once a run, which reads from the log start, read no batch of its transaction;
 * the first such run sets its delete horizon as for a tombstone (a marker grows by up to 9
 * bytes: TD_MARKER_MAX_SIZE), and a run after the horizon removes it, unless it is the batch
 * that carries its producer's epoch or lies at or past the oldest producer snapshot (an open
 * that falls back on that snapshot needs it). A removed ABORT marker's aborted transaction is
 * forgotten, in memory and in ABORTED_FILE, at the swap, before its commit point.
 *
 * Readers that hold a replaced segment keep reading its file (the descriptor stays valid); the
 * replaced segment objects never touch files by name again (they are not owed a seal).
 *
 * Stream IDs (docs/redis.md "Stream IDs"): an ID's ms is the largest batch timestamp up to the
 * record (and the applicable anchor's). Removing batches can lower that for the records after
 * them; before each swap an anchor is added at every kept batch (and at the group's end) whose
 * ID would change, and later anchors' ms are raised to the removed batches' largest timestamp.
 *
 * Costs: the map's memory, one read of the dirty section to map it, one read of the cleaned
 * range and one write of what stays; a compressed batch is decompressed and, when records go,
 * compressed again with its codec. I/O is throttled through io_hook.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/part_int.h"
#include "storage/segkeys.h"

#define ATTR_DELETE_HORIZON 0x40 /* KIP-534: baseTimestamp holds the delete horizon */
#define READ_CHUNK (1u << 20)
#define MAX_DECOMP (64u << 20)
#define HOOK_EVERY (1 << 20)

static int64_t base_of(const char *name, const char *ext);

static void aadd(int64_t *p, int64_t v)
{
    __atomic_add_fetch(p, v, __ATOMIC_RELAXED);
}

/* ---------------------------------------------------------------------------------------------
 * The offset map
 */
typedef struct omap_slot {
    uint8_t d[TD_KEY_DIGEST_LEN];
    int64_t off; /* -1: free */
} omap_slot;

typedef struct omap {
    omap_slot *s;
    size_t cap, n, max_n;
    size_t limit; /* the most slots the configured memory allows */
} omap;

static int omap_alloc(omap *m, size_t cap)
{
    m->s = malloc(cap * sizeof(*m->s));
    if (!m->s)
        return -ENOMEM;
    for (size_t i = 0; i < cap; i++)
        m->s[i].off = -1;
    m->cap = cap;
    m->n = 0;
    m->max_n = cap / 10 * 9;
    return 0;
}

/* Below its limit the map doubles at half load, which keeps linear probing short (at 90% an
 * absent key costs about 50 probes, at 50% 2.5); at its limit it fills to 90%, as Kafka's. */
static void omap_set_max(omap *m)
{
    m->max_n = m->cap < m->limit ? m->cap / 2 : m->cap / 10 * 9;
}

/* The map starts small and doubles up to `limit` slots: a log with few keys keeps its map in
 * the CPU's caches instead of touching the whole configured buffer at random. */
static int omap_init(omap *m, size_t limit)
{
    m->limit = TD_MAX(limit, (size_t)16);
    int rc = omap_alloc(m, TD_MIN(m->limit, (size_t)1 << 16));
    if (rc == 0)
        omap_set_max(m);
    return rc;
}

static omap_slot *omap_slot_of(const omap *m, const uint8_t *d)
{
    uint64_t h;
    memcpy(&h, d, sizeof(h)); /* the digest is uniform: any 8 bytes of it hash */
    size_t i = (size_t)(h % m->cap);
    while (m->s[i].off >= 0 && memcmp(m->s[i].d, d, TD_KEY_DIGEST_LEN) != 0)
        i = i + 1 == m->cap ? 0 : i + 1;
    return &m->s[i];
}

static int omap_grow(omap *m)
{
    omap old = *m;
    if (omap_alloc(m, TD_MIN(old.cap * 2, old.limit)) != 0) {
        *m = old;
        return TD_EFULL; /* no memory for more: clean what the map holds */
    }
    m->limit = old.limit;
    omap_set_max(m);
    for (size_t i = 0; i < old.cap; i++) {
        if (old.s[i].off >= 0) {
            *omap_slot_of(m, old.s[i].d) = old.s[i];
            m->n++;
        }
    }
    free(old.s);
    return 0;
}

/* 0, or TD_EFULL when a new key does not fit. Offsets are put in increasing order. */
static int omap_put(omap *m, const uint8_t *d, int64_t off)
{
    omap_slot *s = omap_slot_of(m, d);
    if (s->off < 0) {
        if (m->n >= m->max_n) {
            if (m->cap >= m->limit || omap_grow(m) != 0)
                return TD_EFULL;
            s = omap_slot_of(m, d);
        }
        memcpy(s->d, d, TD_KEY_DIGEST_LEN);
        m->n++;
    }
    s->off = off;
    return 0;
}

static int64_t omap_get(const omap *m, const uint8_t *d)
{
    return omap_slot_of(m, d)->off;
}

/* ---------------------------------------------------------------------------------------------
 * Records: a parser that accepts the gaps cleaning leaves (offset deltas only increase).
 */
typedef struct crec {
    size_t start, end; /* the record's bytes in the records area */
    size_t body;       /* where the offset delta starts (after the timestamp delta) */
    int64_t ts_delta;
    int32_t off_delta;
    td_slice key;
    bool key_null, value_null;
} crec;

static int crec_parse(const uint8_t *p, size_t n, size_t pos, crec *r)
{
    int32_t len, kl, vl;
    int k = td_varint_decode(p + pos, n - pos, &len);
    if (k <= 0 || len < 6 || (size_t)len > n - pos - (size_t)k)
        return TD_ECORRUPT;
    size_t end = pos + (size_t)k + (size_t)len, c = pos + (size_t)k + 1; /* past attributes */
    if ((k = td_varlong_decode(p + c, end - c, &r->ts_delta)) <= 0)
        return TD_ECORRUPT;
    c += (size_t)k;
    r->body = c;
    if ((k = td_varint_decode(p + c, end - c, &r->off_delta)) <= 0)
        return TD_ECORRUPT;
    c += (size_t)k;
    if ((k = td_varint_decode(p + c, end - c, &kl)) <= 0 || kl < -1 ||
        (kl > 0 && (size_t)kl > end - c - (size_t)k))
        return TD_ECORRUPT;
    c += (size_t)k;
    r->key_null = kl < 0;
    r->key = td_slice_make(p + c, kl < 0 ? 0 : (size_t)kl);
    c += r->key.n;
    if (c >= end || (k = td_varint_decode(p + c, end - c, &vl)) <= 0 || vl < -1)
        return TD_ECORRUPT;
    r->value_null = vl < 0;
    r->start = pos;
    r->end = end;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Reading a segment batch by batch, in large reads.
 */
typedef struct segr {
    const td_io *io;
    td_seg *s;
    td_buf buf;
    size_t off;      /* consumed bytes of buf */
    int64_t buf_pos; /* file position of buf.p[0] */
    int64_t pos;     /* file position of the next batch */
    int64_t read;    /* bytes read from the file */
} segr;

static void segr_init(segr *r, const td_io *io, td_seg *s, td_buf *storage)
{
    r->io = io;
    r->s = s;
    r->buf = *storage;
    td_buf_reset(&r->buf);
    r->off = 0;
    r->buf_pos = 0;
    r->pos = 0;
    r->read = 0;
}

/* 1 and the next batch (valid until the next call), 0 at the segment's end, or an error. */
static int segr_next(segr *r, const uint8_t **b, td_batch_header *h, int64_t *pos)
{
    if (r->pos >= r->s->size)
        return 0;
    for (int round = 0; round < 3; round++) {
        size_t avail = r->buf.len - r->off;
        if (avail >= TD_BATCH_HEADER_SIZE) {
            int rc = batch_header_parse(r->buf.p + r->off, avail, h);
            if (rc)
                return TD_ECORRUPT;
            if (batch_total_size(h) <= avail) {
                *b = r->buf.p + r->off;
                *pos = r->pos;
                r->off += batch_total_size(h);
                r->pos += (int64_t)batch_total_size(h);
                return 1;
            }
        }
        /* Refill: keep the partial batch, read at least READ_CHUNK or the whole batch. */
        if (avail)
            memmove(r->buf.p, r->buf.p + r->off, avail);
        r->buf.len = avail;
        r->buf_pos += (int64_t)r->off;
        r->off = 0;
        size_t want = READ_CHUNK;
        if (avail >= TD_BATCH_HEADER_SIZE)
            want = TD_MAX(want, batch_total_size(h) - avail);
        int64_t left = r->s->size - (r->buf_pos + (int64_t)avail);
        if (left <= 0)
            return TD_ECORRUPT; /* a batch crosses the segment's end */
        want = (size_t)TD_MIN((int64_t)want, left);
        int rc = td_buf_reserve(&r->buf, want);
        if (rc)
            return rc;
        rc = td_io_read_all(r->io, r->s->fd, r->buf.p + avail, want, r->buf_pos + (int64_t)avail);
        if (rc)
            return rc == TD_EEND ? TD_ECORRUPT : rc;
        r->buf.len += want;
        r->read += (int64_t)want;
    }
    return TD_ECORRUPT;
}

/* ---------------------------------------------------------------------------------------------
 * One run
 */
/* An idempotent producer of the partition's state: the last offset of its last data batch, or
 * -1 when it has none at its epoch (a marker of a newer epoch set the epoch). */
typedef struct pid_last {
    int64_t pid, last_offset;
    int16_t epoch;
} pid_last;

/* What the run has read of a producer's current transaction (Kafka's CleanedTransactionMetadata):
 * TXN_SEEN, one of its batches, kept or removed; TXN_KEPT, one that stays. Its marker clears it. */
enum { TXN_SEEN = 1, TXN_KEPT = 2 };
typedef struct txn_slot {
    int64_t pid; /* -1: free */
    uint8_t f;
} txn_slot;

typedef struct sid_cand {
    int64_t base, new_st, removed; /* a kept batch whose stream time may have dropped */
} sid_cand;

typedef struct clean_ctx {
    td_part *p;
    const part_clean_opts *o;
    int64_t now_ms, delete_retention_ms, segment_bytes;
    omap map;
    pid_last *pids;
    size_t npids;
    td_buf rd, area, recs, out;
    uint8_t *keep;
    size_t keep_cap;
    crec *meta; /* the records of the batch at hand, parsed, with their keys' digests */
    uint8_t (*dig)[TD_KEY_DIGEST_LEN];
    size_t meta_cap;
    int64_t hook_pending;
    part_clean_result *res;
    sid_cand *cands;
    size_t ncands, cands_cap;
    int64_t g_new_st, g_removed; /* per group: largest kept and removed batch timestamps */
    td_aborted_txn *ab; /* the partition's aborted transactions when the run began */
    size_t nab;
    txn_slot *tx; /* open addressing by producer id, at most half full */
    size_t tx_cap, tx_n;
    td_aborted_txn *gone; /* per group: the ABORT markers it removes (pid, last) */
    size_t ngone, gone_cap;
    int64_t snap_floor; /* the oldest producer snapshot's offset (see marker_fate) */
    int64_t due;        /* the earliest time a kept tombstone or marker can go, INT64_MAX */
} clean_ctx;

/* Whether h is a batch of an aborted transaction (its producer's entry whose marker is the
 * first at or after the batch covers it). */
static bool aborted_batch(const clean_ctx *c, const td_batch_header *h)
{
    if (!(h->attributes & TD_BATCH_ATTR_TRANSACTIONAL) || (h->attributes & TD_BATCH_ATTR_CONTROL))
        return false;
    size_t lo = 0, hi = c->nab;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->ab[mid].last < h->base_offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < c->nab; i++)
        if (c->ab[i].pid == h->producer_id)
            return c->ab[i].first <= h->base_offset;
    return false;
}

static int hook(clean_ctx *c, int64_t bytes, bool force)
{
    c->hook_pending += bytes;
    if (!c->o->io_hook || (!force && c->hook_pending < HOOK_EVERY))
        return 0;
    int64_t n = c->hook_pending;
    c->hook_pending = 0;
    return c->o->io_hook(c->o->arg, n) ? TD_ECLOSED : 0;
}

static int cmp_pid(const void *a, const void *b)
{
    int64_t x = ((const pid_last *)a)->pid, y = ((const pid_last *)b)->pid;
    return x < y ? -1 : x > y;
}

/*
 * Whether h is the batch that keeps a producer's state across a restart that rebuilds it from
 * batch headers: its last data batch (its sequence and epoch), or, when a marker set its epoch
 * and no data batch followed, its markers of that epoch (Kafka's isBatchLastRecordOfProducer).
 * Markers do not enter the state's batches, so a marker is never "the last data batch".
 */
static bool producer_last_batch(const clean_ctx *c, const td_batch_header *h)
{
    if (h->producer_id < 0 || c->npids == 0)
        return false;
    pid_last k = {h->producer_id, 0, 0};
    const pid_last *e = bsearch(&k, c->pids, c->npids, sizeof(k), cmp_pid);
    if (!e)
        return false;
    if (h->attributes & TD_BATCH_ATTR_CONTROL)
        return e->last_offset < 0 && e->epoch == h->producer_epoch;
    return e->last_offset == batch_last_offset(h);
}

/* ---------------------------------------------------------------------------------------------
 * Transactions seen by the run, and when kept tombstones and markers can go
 */
static txn_slot *txn_slot_of(const clean_ctx *c, int64_t pid)
{
    size_t i = (size_t)(((uint64_t)pid * 0x9e3779b97f4a7c15ULL) >> 16) & (c->tx_cap - 1);
    while (c->tx[i].pid >= 0 && c->tx[i].pid != pid)
        i = (i + 1) & (c->tx_cap - 1);
    return &c->tx[i];
}

static int txn_grow(clean_ctx *c)
{
    size_t cap = c->tx_cap ? c->tx_cap * 2 : 64;
    txn_slot *old = c->tx, *v = malloc(cap * sizeof(*v));
    if (!v)
        return -ENOMEM;
    for (size_t i = 0; i < cap; i++)
        v[i].pid = -1;
    size_t old_cap = c->tx_cap;
    c->tx = v;
    c->tx_cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].pid >= 0)
            *txn_slot_of(c, old[i].pid) = old[i];
    free(old);
    return 0;
}

/* A transactional data batch of pid was read (kept: and stays). */
static int txn_note(clean_ctx *c, int64_t pid, bool kept)
{
    if ((c->tx_n + 1) * 2 > c->tx_cap && txn_grow(c) != 0)
        return -ENOMEM;
    txn_slot *t = txn_slot_of(c, pid);
    if (t->pid < 0) {
        t->pid = pid;
        t->f = 0;
        c->tx_n++;
    }
    t->f |= (uint8_t)(TXN_SEEN | (kept ? TXN_KEPT : 0));
    return 0;
}

/* What the run read of pid's current transaction, which its marker at hand ends. */
static uint8_t txn_take(clean_ctx *c, int64_t pid)
{
    if (!c->tx_n)
        return 0;
    txn_slot *t = txn_slot_of(c, pid);
    uint8_t f = t->pid < 0 ? 0 : t->f;
    if (t->pid >= 0)
        t->f = 0;
    return f;
}

static void due_at(clean_ctx *c, int64_t t)
{
    c->due = TD_MIN(c->due, t);
}

static int64_t new_horizon(const clean_ctx *c)
{
    int64_t hz;
    return __builtin_add_overflow(c->now_ms, c->delete_retention_ms, &hz) ? INT64_MAX : hz;
}

static int snap_cb(void *arg, const char *name)
{
    int64_t *lowest = arg, b = base_of(name, ".snapshot");
    if (b >= 0 && b < *lowest)
        *lowest = b;
    return 0;
}

/*
 * The offset of the oldest producer snapshot (INT64_MAX: none; 0 when the directory cannot be
 * listed, which keeps every marker). A snapshot at B holds a transaction open that began below
 * B and whose marker is at or above B, and the open that falls back on it (the newer one
 * damaged) learns the transaction's end by replaying that marker: a marker at or above B must
 * stay. Read without the lock: snapshots written meanwhile are at offsets past the cleanable
 * range, and one removed meanwhile only made this floor lower than it needed to be.
 */
static int64_t snapshot_floor(td_part *p)
{
    int64_t lowest = INT64_MAX;
    return p->io->list(p->io, p->dir, snap_cb, &lowest) == 0 ? lowest : 0;
}

/* The records area of batch b (decompressed into c->area when compressed). */
static int records_of(clean_ctx *c, const uint8_t *b, const td_batch_header *h, td_slice *out)
{
    const uint8_t *recs = b + TD_BATCH_HEADER_SIZE;
    size_t n = batch_total_size(h) - TD_BATCH_HEADER_SIZE;
    if (batch_compression(h) == TD_COMPRESS_NONE) {
        *out = td_slice_make(recs, n);
        return 0;
    }
    td_buf_reset(&c->area);
    int rc = td_decompress(batch_compression(h), td_slice_make(recs, n), &c->area, MAX_DECOMP);
    if (rc == 0)
        *out = td_slice_make(c->area.p, c->area.len);
    return rc;
}

/*
 * Parses every record of a batch into c->meta and digests their keys into c->dig, prefetching
 * each key's slot of the map: the slots of a big map are cache misses, and asking for a batch's
 * worth of them at once overlaps those misses instead of paying them one after another.
 */
static int parse_batch(clean_ctx *c, td_slice recs, const td_batch_header *h)
{
    size_t n = (size_t)h->record_count;
    if (n > recs.n / 7 + 1)
        return TD_ECORRUPT; /* more records than the smallest record size allows */
    if (n > c->meta_cap) {
        crec *m = realloc(c->meta, n * sizeof(*m));
        if (m)
            c->meta = m;
        uint8_t(*d)[TD_KEY_DIGEST_LEN] = realloc(c->dig, n * sizeof(*d));
        if (d)
            c->dig = d;
        uint8_t *k = realloc(c->keep, n);
        if (k)
            c->keep = k;
        if (!m || !d || !k)
            return -ENOMEM;
        c->meta_cap = n;
    }
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        int rc = crec_parse(recs.p, recs.n, pos, &c->meta[i]);
        if (rc)
            return rc;
        pos = c->meta[i].end;
        if (!c->meta[i].key_null) {
            td_key_digest(c->meta[i].key.p, c->meta[i].key.n, c->dig[i]);
            uint64_t hh;
            memcpy(&hh, c->dig[i], sizeof(hh));
            __builtin_prefetch(&c->map.s[hh % c->map.cap]);
        }
    }
    return 0;
}

/* Maps the keys of the batch's records at or above from. *full: the record at *stop (and those
 * after it) did not fit. */
static int map_batch(clean_ctx *c, const uint8_t *b, const td_batch_header *h, int64_t from,
                     bool *full, int64_t *stop)
{
    if (h->attributes & TD_BATCH_ATTR_CONTROL || batch_last_offset(h) < from || aborted_batch(c, h))
        return 0;
    td_slice recs;
    int rc = records_of(c, b, h, &recs);
    if (rc == 0)
        rc = parse_batch(c, recs, h);
    for (int32_t i = 0; rc == 0 && i < h->record_count; i++) {
        const crec *r = &c->meta[i];
        int64_t off = h->base_offset + r->off_delta;
        if (off < from || r->key_null)
            continue;
        if (omap_put(&c->map, c->dig[i], off) == TD_EFULL) {
            *full = true;
            *stop = off;
            return 0;
        }
    }
    return rc;
}

/* Appends a record to c->recs with its timestamp delta rebased from base_ts to new_base. */
static int rebase_record(clean_ctx *c, const uint8_t *area, const crec *r, int64_t base_ts,
                         int64_t new_base)
{
    /* Wrapping, like the reader's sum (batch.c): stored timestamps may be anything. */
    int64_t delta = (int64_t)((uint64_t)base_ts + (uint64_t)r->ts_delta - (uint64_t)new_base);
    size_t body = r->end - r->body;
    uint8_t tmp[24];
    size_t len = 1 + td_varlong_size(delta) + body;
    if (len > INT32_MAX)
        return TD_ECORRUPT;
    size_t k = td_varint_encode(tmp, (int32_t)len);
    tmp[k++] = 0; /* attributes */
    k += td_varlong_encode(tmp + k, delta);
    int rc = td_buf_append(&c->recs, tmp, k);
    return rc ? rc : td_buf_append(&c->recs, area + r->body, body);
}

/*
 * Appends batch b rewritten to c->out: the records c->keep keeps (c->meta, parsed from recs;
 * nkept of them), compressed again with its codec, with a new delete horizon (attribute bit 6
 * and baseTimestamp, the records' timestamp deltas rebased on it) when set_horizon. *nh gets
 * the new header.
 */
static int rebuild_batch(clean_ctx *c, const uint8_t *b, const td_batch_header *h, td_slice recs,
                         int32_t nkept, bool set_horizon, td_batch_header *nh)
{
    int rc = 0;
    int64_t new_base = set_horizon ? new_horizon(c) : h->base_timestamp;
    td_buf_reset(&c->recs);
    for (int32_t i = 0; i < h->record_count; i++) {
        const crec *r = &c->meta[i];
        if (!c->keep[i])
            continue;
        if (new_base == h->base_timestamp)
            rc = td_buf_append(&c->recs, recs.p + r->start, r->end - r->start);
        else
            rc = rebase_record(c, recs.p, r, h->base_timestamp, new_base);
        if (rc)
            return rc;
    }
    size_t at = c->out.len;
    int codec = nkept ? batch_compression(h) : TD_COMPRESS_NONE;
    if ((rc = td_buf_append(&c->out, b, TD_BATCH_HEADER_SIZE)) != 0)
        return rc;
    if (codec == TD_COMPRESS_NONE)
        rc = c->recs.len ? td_buf_append(&c->out, c->recs.p, c->recs.len) : 0;
    else
        rc = td_compress(codec, td_slice_make(c->recs.p, c->recs.len), &c->out, 0);
    if (rc)
        return rc;
    uint8_t *nb = c->out.p + at;
    size_t n = c->out.len - at;
    uint16_t attrs = (uint16_t)((h->attributes & ~TD_BATCH_ATTR_COMPRESSION_MASK) | codec);
    if (set_horizon)
        attrs |= ATTR_DELETE_HORIZON;
    td_store_be32(nb + 8, (uint32_t)(n - TD_BATCH_LOG_OVERHEAD));
    td_store_be16(nb + 21, attrs);
    td_store_be64(nb + 27, (uint64_t)new_base);
    td_store_be32(nb + 57, (uint32_t)nkept);
    batch_update_crc(nb, n);
    return batch_header_parse(nb, n, nh);
}

/* The cleaned form of a data batch, as filter_batch says. */
static int filter_data(clean_ctx *c, const uint8_t *b, const td_batch_header *h, bool *kept,
                       td_batch_header *nh, int64_t *removed)
{
    td_slice recs;
    int rc = records_of(c, b, h, &recs);
    if (rc == 0)
        rc = parse_batch(c, recs, h);
    if (rc)
        return rc;
    bool horizon = (h->attributes & ATTR_DELETE_HORIZON) != 0;
    bool tombstone_kept = false, aborted = aborted_batch(c, h);
    int32_t nkept = 0;
    for (int32_t i = 0; i < h->record_count; i++) {
        const crec *r = &c->meta[i];
        int64_t off = h->base_offset + r->off_delta;
        bool keep = !aborted && !r->key_null && omap_get(&c->map, c->dig[i]) <= off;
        if (keep && r->value_null) {
            keep = !(horizon && h->base_timestamp <= c->now_ms);
            tombstone_kept |= keep;
        }
        c->keep[i] = keep;
        nkept += keep;
    }
    *removed = h->record_count - nkept;
    bool set_horizon = tombstone_kept && !horizon;
    if (tombstone_kept) /* it can go once its horizon has passed */
        due_at(c, set_horizon ? new_horizon(c) : h->base_timestamp);
    if (nkept == h->record_count && !set_horizon)
        return td_buf_append(&c->out, b, batch_total_size(h));
    if (nkept == 0 && !producer_last_batch(c, h)) {
        *kept = false;
        return 0;
    }
    return rebuild_batch(c, b, h, recs, nkept, set_horizon, nh);
}

typedef enum { MARKER_KEEP, MARKER_SET_HORIZON, MARKER_REMOVE } marker_fate;

/*
 * What becomes of a marker (Kafka's CleanedTransactionMetadata.onControlBatchRead, with
 * KIP-534's delete horizon). It is discardable when the run read no batch of the transaction it
 * ends: the run reads from the log start in offset order, so every batch of that transaction is
 * gone from the log (an aborted transaction's records go in one run, its marker in a later
 * one). A discardable marker then waits like a tombstone: the first run that finds it so sets
 * its delete horizon, and a run after the horizon removes it, unless it carries its producer's
 * epoch (producer_last_batch) or a producer snapshot may need it (snapshot_floor); those stay
 * until the producer's next batch or the next snapshots, which bring dirty bytes. A removed
 * ABORT marker's aborted transaction is forgotten at the swap (swap_group_locked).
 */
static int marker_fate_of(clean_ctx *c, const uint8_t *b, const td_batch_header *h,
                          marker_fate *fate)
{
    uint8_t seen = txn_take(c, h->producer_id);
    *fate = MARKER_KEEP;
    if (seen & TXN_SEEN) {
        if (!(seen & TXN_KEPT))
            due_at(c, c->now_ms); /* this run removed the last of them: discardable next run */
        return 0;
    }
    if (!(h->attributes & ATTR_DELETE_HORIZON)) {
        *fate = MARKER_SET_HORIZON;
        due_at(c, new_horizon(c));
        return 0;
    }
    if (h->base_timestamp > c->now_ms) {
        due_at(c, h->base_timestamp);
        return 0;
    }
    if (producer_last_batch(c, h) || h->base_offset >= c->snap_floor)
        return 0;
    *fate = MARKER_REMOVE;
    if (batch_marker_type(b, batch_total_size(h), NULL) != TD_MARKER_ABORT)
        return 0;
    if (td_grow(&c->gone, &c->gone_cap, c->ngone, sizeof(*c->gone), 16) != 0)
        return -ENOMEM;
    c->gone[c->ngone++] = (td_aborted_txn){h->producer_id, -1, h->base_offset, -1};
    return 0;
}

/*
 * Appends the cleaned form of batch b to c->out: the batch as it is, a rewritten one, or nothing
 * (*kept false). *removed counts the records that went.
 */
static int filter_batch(clean_ctx *c, const uint8_t *b, const td_batch_header *h, bool *kept,
                        td_batch_header *nh, int64_t *removed)
{
    *kept = true;
    *nh = *h;
    *removed = 0;
    if (!(h->attributes & TD_BATCH_ATTR_CONTROL)) {
        int rc = filter_data(c, b, h, kept, nh, removed);
        if (rc == 0 && (h->attributes & TD_BATCH_ATTR_TRANSACTIONAL))
            rc = txn_note(c, h->producer_id, *kept);
        return rc;
    }
    marker_fate fate;
    int rc = marker_fate_of(c, b, h, &fate);
    if (rc || fate == MARKER_KEEP)
        return rc ? rc : td_buf_append(&c->out, b, batch_total_size(h));
    if (fate == MARKER_REMOVE) {
        *kept = false;
        *removed = h->record_count;
        return 0;
    }
    td_slice recs;
    rc = records_of(c, b, h, &recs);
    if (rc == 0)
        rc = parse_batch(c, recs, h);
    if (rc)
        return rc;
    if (h->record_count > 0)
        memset(c->keep, 1, (size_t)h->record_count);
    return rebuild_batch(c, b, h, recs, h->record_count, true, nh);
}

static int cand_push(clean_ctx *c, int64_t base)
{
    if (td_grow(&c->cands, &c->cands_cap, c->ncands, sizeof(*c->cands), 64) != 0)
        return -ENOMEM;
    c->cands[c->ncands++] = (sid_cand){base, c->g_new_st, c->g_removed};
    return 0;
}

/* Puts anchor (off, id) at its place in the list, replacing one at the same offset. */
static int anchor_insert(td_part *p, int64_t off, td_sid id)
{
    size_t k = anchors_upto(p, off);
    if (k && p->anch[k - 1].off == off) {
        p->anch[k - 1].id = id;
        return 0;
    }
    if (anchors_push(p, INT64_MAX, id) != 0) /* grows the array by one at the end */
        return -ENOMEM;
    memmove(p->anch + k + 1, p->anch + k, (p->nanch - 1 - k) * sizeof(*p->anch));
    p->anch[k] = (sanchor){off, id, false};
    return 0;
}

/*
 * Adds the anchors that keep every stream ID as it is once the group at segs[i0] is replaced
 * (see the top), and writes the anchor file if they changed. The anchors hold for the old
 * segments too, so they are written before the swap. Caller holds mu.
 */
static int anchors_for_swap_locked(td_part *p, clean_ctx *c, size_t i0, int64_t boundary)
{
    int64_t prefix = -1;
    for (size_t i = 0; i < i0; i++)
        prefix = TD_MAX(prefix, p->segs[i]->max_ts);
    bool changed = false;
    for (size_t i = 0; i <= c->ncands; i++) {
        sid_cand k = i < c->ncands ? c->cands[i] : (sid_cand){boundary, c->g_new_st, c->g_removed};
        if (TD_MAX(prefix, k.new_st) >= TD_MAX(prefix, k.removed))
            continue; /* the removed batches did not set the stream time here */
        td_sid old = sid_at_locked(p, k.base, NULL);
        size_t a = anchors_upto(p, k.base);
        uint64_t ms = sid_ts_ms(TD_MAX(prefix, k.new_st));
        if (a)
            ms = TD_MAX(ms, p->anch[a - 1].id.ms);
        if (ms == old.ms)
            continue;
        if (anchor_insert(p, k.base, old) != 0)
            return -ENOMEM;
        changed = true;
    }
    for (size_t a = anchors_upto(p, boundary); a < p->nanch; a++) {
        if (p->anch[a].id.ms < sid_ts_ms(c->g_removed)) {
            p->anch[a].id.ms = sid_ts_ms(c->g_removed);
            changed = true;
        }
    }
    return changed ? anchors_rewrite_locked(p) : 0;
}

/* Index of s in the segment list, or -1. Caller holds mu. */
static ssize_t seg_index_locked(const td_part *p, const td_seg *s)
{
    for (size_t i = 0; i < p->nsegs; i++)
        if (p->segs[i] == s)
            return (ssize_t)i;
    return -1;
}

/*
 * Replaces old[0..k) (still in the segment list, in order) by ns, whose log is fsynced as
 * B.log.cleaned: the swap of the top. Returns 1 when the list changed meanwhile (retention,
 * DeleteRecords, a deleted topic: the cleaned file is then discarded). Caller holds mu.
 */
static int swap_group_locked(td_part *p, clean_ctx *c, td_seg **old, size_t k, td_seg *ns)
{
    if (p->deleted || p->offline[0])
        return 1;
    ssize_t at = seg_index_locked(p, old[0]);
    if (at < 0 || (size_t)at + k >= p->nsegs)
        return 1;
    for (size_t j = 1; j < k; j++)
        if (p->segs[(size_t)at + j] != old[j])
            return 1;
    const td_io *io = p->io;
    int64_t b = ns->base, boundary = p->segs[(size_t)at + k]->base;
    int rc = anchors_for_swap_locked(p, c, (size_t)at, boundary);
    if (rc)
        return td_fail(rc, "partition %s: cannot write stream ID anchors: %s", p->label,
                       td_strerror(rc));
    /* The aborted transactions of the ABORT markers the group loses, before the commit point:
     * a marker goes only once no record of its transaction is left (marker_fate_of), so no
     * reader needs its entry any more, and a crash after this leaves the marker without an
     * entry, which the open accepts (a replay that reaches the marker finds its producer with
     * nothing open and adds none). The other way round, an entry without its marker would make
     * a Kafka consumer that sees the entry but not the marker drop the producer's later
     * transactions. Readers take their range before the list (Kafka's fetch, td_iter), so one
     * that reads the new segment gets the list without the entry. */
    if (c->ngone && (rc = txn_markers_removed_locked(p, c->gone, c->ngone)) != 0)
        return rc;
    char cleaned[PATH_MAX], swap[PATH_MAX], log[PATH_MAX];
    seg_path(p, b, ".log.cleaned", cleaned, sizeof(cleaned));
    seg_path(p, b, ".log.swap", swap, sizeof(swap));
    seg_path(p, b, ".log", log, sizeof(log));
    if ((rc = io->rename(io, cleaned, swap)) != 0 || (rc = io->sync_dir(io, p->dir)) != 0) {
        io->unlink(io, swap);
        return td_fail(rc, "partition %s: cannot rename %s: %s", p->label, cleaned,
                       td_strerror(rc));
    }
    /* Committed: from here on, recovery completes the swap. */
    for (size_t j = 1; j < k; j++)
        seg_unlink(p, old[j]->base, true);
    seg_unlink(p, b, false);
    if ((rc = io->rename(io, swap, log)) == 0)
        rc = io->sync_dir(io, p->dir);
    if (rc)
        return go_offline(p, rc,
                          "cannot complete the compaction of segment %020" PRId64
                          " (reopening completes it): %s",
                          b, td_strerror(rc));
    ns->sealed = true;
    p->segs[at] = ns;
    memmove(p->segs + at + 1, p->segs + (size_t)at + k,
            (p->nsegs - (size_t)at - k) * sizeof(*p->segs));
    p->nsegs -= k - 1;
    owe_indexes(p, ns); /* writes them now, or leaves them to the next sync */
    sealed_max_update_locked(p);
    if (p->scrub_base >= b && p->scrub_base < boundary) {
        p->scrub_base = b; /* positions in the old files mean nothing in the new one */
        p->scrub_pos = 0;
    }
    for (size_t j = 0; j < k; j++)
        seg_unref_locked(old[j]); /* the list's reference; ours go at the end of the run */
    return 0;
}

/* Rewrites old[0..k) into one segment and swaps it in. 1: skipped (the list changed). */
static int clean_group(clean_ctx *c, td_seg **old, size_t k, td_buf *rbuf)
{
    td_part *p = c->p;
    const td_io *io = p->io;
    int64_t b = old[0]->base;
    char path[PATH_MAX];
    seg_path(p, b, ".log.cleaned", path, sizeof(path));
    td_seg *ns = seg_new(p, b);
    if (!ns)
        return -ENOMEM;
    ns->created_ms = c->now_ms;
    ns->fd = io->open(io, path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    int rc = ns->fd < 0 ? ns->fd : 0;
    pthread_mutex_lock(&p->mu);
    /* the new segment's key and trace indexes follow what it keeps */
    bool keyed = p->cfg.key_index, traced = p->cfg.trace_index;
    pthread_mutex_unlock(&p->mu);
    if (rc == 0)
        rc = segkeys_start(ns, keyed, traced);
    c->ncands = 0;
    c->ngone = 0;
    c->g_new_st = c->g_removed = -1;
    int64_t flushed = 0; /* bytes of c->out written to the file so far */
    td_buf_reset(&c->out);
    for (size_t j = 0; rc == 0 && j < k; j++) {
        segr r;
        segr_init(&r, io, old[j], rbuf);
        const uint8_t *batch;
        td_batch_header h, nh;
        int64_t pos;
        c->res->bytes_before += old[j]->size;
        while (rc == 0 && (rc = segr_next(&r, &batch, &h, &pos)) == 1) {
            bool kept;
            int64_t removed;
            size_t start = c->out.len; /* the output is written in chunks of READ_CHUNK */
            rc = filter_batch(c, batch, &h, &kept, &nh, &removed);
            size_t added = c->out.len - start;
            c->res->records_removed += removed;
            if (rc == 0 && kept) {
                int64_t at = flushed + (int64_t)start;
                if (flushed + (int64_t)c->out.len > UINT32_MAX)
                    rc = td_fail(TD_ETOOBIG, "a cleaned segment outgrew 4 GiB");
                if (rc == 0)
                    rc = seg_account(ns, &nh, at);
                if (rc == 0 && (ns->kx || ns->tx))
                    segkeys_add(p, ns, c->out.p + start, added);
                if (rc == 0 && c->out.len >= READ_CHUNK) {
                    rc = td_io_write_all(io, ns->fd, c->out.p, c->out.len, flushed);
                    flushed += (int64_t)c->out.len;
                    td_buf_reset(&c->out);
                }
                c->g_new_st = TD_MAX(c->g_new_st, nh.max_timestamp);
                if (rc == 0 && c->g_new_st < c->g_removed)
                    rc = cand_push(c, nh.base_offset);
            } else if (rc == 0) {
                c->g_removed = TD_MAX(c->g_removed, h.max_timestamp);
            }
            if (rc == 0)
                rc = hook(c, (int64_t)(batch_total_size(&h) + added), false);
        }
        *rbuf = r.buf;
        c->res->read_bytes += r.read;
        if (rc == TD_ECORRUPT)
            rc = td_fail(rc,
                         "partition %s: a batch of segment %020" PRId64 " near position %" PRId64
                         " does not parse",
                         p->label, old[j]->base, r.pos);
    }
    if (rc == 0 && c->out.len)
        rc = td_io_write_all(io, ns->fd, c->out.p, c->out.len, flushed);
    if (rc == 0)
        rc = io->fsync(io, ns->fd);
    if (rc == 0) {
        pthread_mutex_lock(&p->mu);
        rc = swap_group_locked(p, c, old, k, ns);
        pthread_mutex_unlock(&p->mu);
    }
    if (rc != 0) {
        io->unlink(io, path); /* still .cleaned unless the swap committed */
        pthread_mutex_lock(&p->mu);
        seg_unref_locked(ns);
        pthread_mutex_unlock(&p->mu);
        return rc;
    }
    c->res->bytes_after += ns->size;
    c->res->segments_after++;
    return 0;
}

/* Index of the first segment that cannot be cleaned yet (see the top). Caller holds mu. */
static size_t cleanable_end_locked(const td_part *p, int64_t now_ms)
{
    int64_t lag = p->cfg.min_compaction_lag_ms;
    int64_t lso = TD_MIN(aload(&p->unstable), aload(&p->high_watermark));
    /* Only below the recovery point as the file says it (a failed write of the file can leave
     * it behind the seals paid): recovery scans the segments above it as it scans the active
     * one, and would take a cleaned segment's trailing gap for a lost tail. */
    int64_t rp = p->recovery_point >= 0 ? p->recovery_point : p->segs[p->nsegs - 1]->base;
    for (size_t i = 0; i + 1 < p->nsegs; i++) {
        const td_seg *s = p->segs[i];
        if (s->owed || p->segs[i + 1]->base > rp || (lag > 0 && s->max_ts > now_ms - lag) ||
            s->next_offset > lso)
            return i;
    }
    return p->nsegs - 1;
}

/* Index of the first segment holding offsets at or above the checkpoint. Caller holds mu. */
static size_t first_dirty_locked(const td_part *p, int64_t *from)
{
    *from = TD_MAX(p->first_dirty, p->segs[0]->base);
    size_t i = 0;
    while (i + 1 < p->nsegs && p->segs[i]->next_offset <= *from && p->segs[i + 1]->base <= *from)
        i++;
    return i;
}

bool part_clean_status(td_part *p, int64_t now_ms, part_clean_info *st)
{
    memset(st, 0, sizeof(*st));
    pthread_mutex_lock(&p->mu);
    bool compact = (p->cfg.cleanup_policy & TD_CLEANUP_COMPACT) && !p->offline[0];
    if (compact) {
        int64_t from;
        size_t d = first_dirty_locked(p, &from), end = cleanable_end_locked(p, now_ms);
        st->first_dirty = from;
        for (size_t i = 0; i < d; i++)
            st->clean_bytes += p->segs[i]->size;
        for (size_t i = d; i < end; i++)
            st->dirty_bytes += p->segs[i]->size;
        if (st->clean_bytes + st->dirty_bytes > 0)
            st->dirty_ratio = (double)st->dirty_bytes / (double)(st->clean_bytes + st->dirty_bytes);
        for (size_t i = d; i < end; i++) {
            if (p->segs[i]->tidx_n) {
                st->lag_ms = TD_MAX(now_ms - p->segs[i]->tidx[0].ts, 0);
                break;
            }
        }
        st->due_ms = p->clean_due_ms;
        st->reclaimed_bytes = aload(&p->clean_reclaimed);
        st->runs = aload(&p->clean_runs);
        st->run_ms = aload(&p->clean_ms);
        st->read_bytes = aload(&p->clean_read_bytes);
    }
    pthread_mutex_unlock(&p->mu);
    return compact;
}

/* Builds the offset map over segs[d..n) from offset `from`; *next gets the first offset not
 * mapped and *last the index of the last segment (partly) mapped. */
static int build_map(clean_ctx *c, td_seg **segs, size_t d, size_t n, int64_t from,
                     int64_t end_offset, int64_t *next, size_t *last, td_buf *rbuf)
{
    *next = end_offset;
    *last = n - 1;
    int rc = 0;
    bool full = false;
    for (size_t i = d; rc == 0 && i < n && !full; i++) {
        segr r;
        segr_init(&r, c->p->io, segs[i], rbuf);
        const uint8_t *batch;
        td_batch_header h;
        int64_t pos, stop = 0;
        while (rc == 0 && !full && (rc = segr_next(&r, &batch, &h, &pos)) == 1) {
            rc = map_batch(c, batch, &h, from, &full, &stop);
            if (rc == 0)
                rc = hook(c, (int64_t)batch_total_size(&h), false);
        }
        *rbuf = r.buf;
        c->res->read_bytes += r.read;
        if (full) {
            if (stop <= from)
                return td_fail(TD_EFULL,
                               "partition %s: the offset map holds no key (raise "
                               "log.cleaner.dedupe.buffer.size)",
                               c->p->label);
            *next = stop; /* > from >= segs[0]->base, so i > 0 when stop is i's base */
            *last = stop <= segs[i]->base ? i - 1 : i;
        }
    }
    return rc < 0 ? rc : 0;
}

/*
 * Takes what a run needs of the partition: references on segs[0..end) (*segs, *n), the
 * producers' last batches, the aborted transactions; *dirty_bytes: the size of segs[d..end).
 * Caller holds mu.
 */
static int run_begin_locked(td_part *p, clean_ctx *c, size_t d, size_t end, td_seg ***segs,
                            size_t *n, int64_t *dirty_bytes)
{
    p->cleaning = true;
    c->delete_retention_ms = TD_MAX(p->cfg.delete_retention_ms, 0);
    c->segment_bytes = TD_MIN(p->cfg.segment_bytes, (int64_t)UINT32_MAX);
    *segs = malloc(end * sizeof(**segs));
    c->pids = malloc((p->producers.n + 1) * sizeof(*c->pids));
    if (!*segs || !c->pids)
        return -ENOMEM;
    for (size_t i = 0; i < end; i++) {
        (*segs)[(*n)++] = p->segs[i];
        p->segs[i]->refs++;
        if (i >= d)
            *dirty_bytes += p->segs[i]->size;
    }
    for (size_t i = 0; i < p->producers.cap; i++) {
        const td_producer *e = &p->producers.slots[i];
        if (e->pid >= 0 && e->epoch >= 0)
            c->pids[c->npids++] =
                (pid_last){e->pid, e->n ? e->b[e->n - 1].last_offset : -1, e->epoch};
    }
    if (p->nab) {
        c->ab = malloc(p->nab * sizeof(*c->ab));
        if (!c->ab)
            return -ENOMEM;
        memcpy(c->ab, p->ab, p->nab * sizeof(*c->ab));
        c->nab = p->nab;
    }
    return 0;
}

static void run_free(clean_ctx *c)
{
    free(c->pids);
    free(c->ab);
    free(c->map.s);
    free(c->keep);
    free(c->meta);
    free(c->dig);
    free(c->cands);
    free(c->tx);
    free(c->gone);
    td_buf_free(&c->rd);
    td_buf_free(&c->area);
    td_buf_free(&c->recs);
    td_buf_free(&c->out);
}

int part_clean(td_part *p, const part_clean_opts *o, part_clean_result *res)
{
    memset(res, 0, sizeof(*res));
    clean_ctx c;
    memset(&c, 0, sizeof(c));
    c.p = p;
    c.o = o;
    c.res = res;
    c.now_ms = o->now_ms;
    c.due = INT64_MAX;
    td_buf_init(&c.rd);
    td_buf_init(&c.area);
    td_buf_init(&c.recs);
    td_buf_init(&c.out);
    td_seg **segs = NULL;
    size_t n = 0;
    int64_t t0 = td_mono_ms();
    pthread_mutex_lock(&p->mu);
    res->first_dirty = p->first_dirty;
    if (!(p->cfg.cleanup_policy & TD_CLEANUP_COMPACT) || p->offline[0] || p->deleted ||
        p->cleaning) {
        pthread_mutex_unlock(&p->mu);
        return 0;
    }
    int64_t from;
    size_t d = first_dirty_locked(p, &from), end = cleanable_end_locked(p, c.now_ms);
    /* Nothing dirty: the cleaned section again, when a tombstone or marker can go by now. */
    bool again = d >= end && end > 0 && p->clean_due_ms <= c.now_ms;
    if (d >= end && !again) {
        pthread_mutex_unlock(&p->mu);
        return 0;
    }
    int64_t end_offset = p->segs[end]->base, dirty_bytes = 0;
    int rc = run_begin_locked(p, &c, d, end, &segs, &n, &dirty_bytes);
    pthread_mutex_unlock(&p->mu);
    c.snap_floor = snapshot_floor(p);
    if (c.npids)
        qsort(c.pids, c.npids, sizeof(*c.pids), cmp_pid);
    /* A slot per 16 dirty bytes is more than any uncompressed log needs; never more than the
     * configured memory. */
    size_t want = (size_t)TD_MAX(dirty_bytes / 16, 1024);
    if (rc == 0)
        rc = omap_init(&c.map, TD_MIN(want, o->map_bytes / sizeof(omap_slot)));
    int64_t next = again ? from : end_offset; /* again: the checkpoint stays */
    size_t last = n - 1;
    if (rc == 0 && !again)
        rc = build_map(&c, segs, d, n, from, end_offset, &next, &last, &c.rd);
    /* Groups of segments from the log start through the last one mapped. */
    for (size_t i = 0; rc == 0 && i <= last;) {
        size_t j = i + 1;
        int64_t size = segs[i]->size;
        while (j <= last && size + segs[j]->size <= c.segment_bytes &&
               segs[j]->next_offset - 1 - segs[i]->base <= INT32_MAX)
            size += segs[j++]->size;
        res->segments_before += (int32_t)(j - i);
        rc = clean_group(&c, segs + i, j - i, &c.rd);
        i = j;
    }
    if (rc == 0)
        rc = hook(&c, 0, true);
    pthread_mutex_lock(&p->mu);
    if (rc == 0 && !p->deleted && next > p->first_dirty) {
        int w = write_offset_file(p, CLEANER_CHECKPOINT_FILE, next);
        if (w)
            TD_WARN("storage", "partition %s: %s (the next run cleans again)", p->label,
                    td_last_error());
        p->first_dirty = next;
    }
    /* The run read the whole cleaned section: what waits there is known. Not before
     * delete.retention.ms from now, so that waiting tombstones and markers cost at most one run
     * per delete.retention.ms that dirty bytes did not bring. */
    if (rc == 0)
        p->clean_due_ms = c.due == INT64_MAX ? INT64_MAX : TD_MAX(c.due, new_horizon(&c));
    res->first_dirty = p->first_dirty;
    for (size_t i = 0; i < n; i++)
        seg_unref_locked(segs[i]);
    p->cleaning = false;
    pthread_mutex_unlock(&p->mu);
    if (rc == 1)
        rc = 0; /* skipped: the segments changed under us; the next run starts over */
    aadd(&p->clean_reclaimed, res->bytes_before - res->bytes_after);
    aadd(&p->clean_runs, 1);
    aadd(&p->clean_ms, td_mono_ms() - t0);
    aadd(&p->clean_read_bytes, res->read_bytes);
    if (rc == 0 && res->segments_before)
        TD_INFO("storage",
                "partition %s: cleaned %" PRId32 " segments into %" PRId32 " (%" PRId64
                " -> %" PRId64 " bytes, %" PRId64 " records removed) in %" PRId64 " ms",
                p->label, res->segments_before, res->segments_after, res->bytes_before,
                res->bytes_after, res->records_removed, td_mono_ms() - t0);
    free(segs);
    run_free(&c);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Recovery at open
 */
struct recover_ctx {
    int64_t *swaps, *logs;
    size_t nswaps, nlogs, swaps_cap, logs_cap;
    td_part *p;
    int rc;
};

static int push(int64_t **v, size_t *n, size_t *cap, int64_t x)
{
    if (td_grow(v, cap, *n, sizeof(**v), 16) != 0)
        return -ENOMEM;
    (*v)[(*n)++] = x;
    return 0;
}

/* The base of a segment file name "B<ext>" (B: 20 digits), or -1. */
static int64_t base_of(const char *name, const char *ext)
{
    size_t n = strlen(name), e = strlen(ext);
    if (n != 20 + e || strcmp(name + 20, ext) != 0)
        return -1;
    int64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9' || v > (INT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (name[i] - '0');
    }
    return v;
}

static int recover_cb(void *arg, const char *name)
{
    struct recover_ctx *c = arg;
    int64_t b;
    if ((b = base_of(name, ".log.cleaned")) >= 0) {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", c->p->dir, name);
        c->p->io->unlink(c->p->io, path); /* a cleaning that did not commit */
    } else if ((b = base_of(name, ".log.swap")) >= 0) {
        c->rc = push(&c->swaps, &c->nswaps, &c->swaps_cap, b);
    } else if ((b = base_of(name, ".log")) >= 0) {
        c->rc = push(&c->logs, &c->nlogs, &c->logs_cap, b);
    }
    return c->rc ? 1 : 0;
}

/* The last offset of the batches in a swap file (fsynced before it got its name), or base - 1. */
static int64_t swap_last_offset(td_part *p, const char *path, int64_t base)
{
    const td_io *io = p->io;
    int fd = io->open(io, path, O_RDONLY, 0);
    int64_t size = 0, pos = 0, last = base - 1;
    if (fd < 0 || io->fsize(io, fd, &size) != 0)
        size = 0;
    while (pos + TD_BATCH_HEADER_SIZE <= size) {
        uint8_t hdr[TD_BATCH_HEADER_SIZE];
        td_batch_header h;
        if (td_io_read_all(io, fd, hdr, sizeof(hdr), pos) != 0 ||
            batch_header_parse(hdr, sizeof(hdr), &h) != 0)
            break;
        last = batch_last_offset(&h);
        pos += (int64_t)batch_total_size(&h);
    }
    if (fd >= 0)
        io->close(io, fd);
    return last;
}

int cleaner_recover(td_part *p)
{
    struct recover_ctx c = {.p = p};
    const td_io *io = p->io;
    int rc = io->list(io, p->dir, recover_cb, &c);
    if (rc == 0)
        rc = c.rc;
    for (size_t i = 0; rc == 0 && i < c.nswaps; i++) {
        int64_t b = c.swaps[i];
        char swap[PATH_MAX], log[PATH_MAX];
        seg_path(p, b, ".log.swap", swap, sizeof(swap));
        seg_path(p, b, ".log", log, sizeof(log));
        int64_t last = swap_last_offset(p, swap, b);
        for (size_t j = 0; j < c.nlogs; j++)
            if (c.logs[j] > b && c.logs[j] <= last)
                seg_unlink(p, c.logs[j], true);
        seg_unlink(p, b, false);
        rc = io->rename(io, swap, log);
        if (rc == 0)
            rc = io->sync_dir(io, p->dir);
        if (rc)
            rc = td_fail(rc, "cannot complete the compaction swap %s: %s", swap, td_strerror(rc));
        else
            TD_WARN("storage",
                    "partition %s: completed an interrupted compaction of segment "
                    "%020" PRId64,
                    p->label, b);
    }
    free(c.swaps);
    free(c.logs);
    return rc;
}
