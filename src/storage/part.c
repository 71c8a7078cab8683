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

/* ---------------------------------------------------------------------------------------------
 * Small helpers
 */
static int config_has_rules(const td_topic_config *cfg)
{
    batch_rules r;
    batch_rules_of(cfg, &r);
    return batch_rules_needed(&r);
}

static int64_t aload(const int64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static void astore(int64_t *p, int64_t v)
{
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}

void seg_path(const td_part *p, int64_t base, const char *ext, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%020" PRId64 "%s", p->dir, base, ext);
}

/* Removes a segment's index files, and its log too when `log` is set. */
void seg_unlink(const td_part *p, int64_t base, bool log)
{
    static const char *const exts[] = {".log", ".index", ".timeindex"}; /* the log first */
    char path[PATH_MAX];
    for (size_t k = log ? 0 : 1; k < 3; k++) {
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

static int check_online(td_part *p)
{
    if (__atomic_load_n(&p->offline_flag, __ATOMIC_ACQUIRE))
        return td_fail(TD_EOFFLINE, "partition %s is offline: %s", p->label, p->offline);
    return 0;
}

static int idx_push(td_seg *s, uint32_t rel, uint32_t pos)
{
    if (s->idx_n == s->idx_cap) {
        size_t cap = s->idx_cap ? s->idx_cap * 2 : 64;
        idx_entry *n = realloc(s->idx, cap * sizeof(*n));
        if (!n)
            return -ENOMEM;
        s->idx = n;
        s->idx_cap = cap;
    }
    s->idx[s->idx_n++] = (idx_entry){rel, pos};
    return 0;
}

static int tidx_push(td_seg *s, int64_t ts, uint32_t rel)
{
    if (s->tidx_n == s->tidx_cap) {
        size_t cap = s->tidx_cap ? s->tidx_cap * 2 : 64;
        tidx_entry *n = realloc(s->tidx, cap * sizeof(*n));
        if (!n)
            return -ENOMEM;
        s->tidx = n;
        s->tidx_cap = cap;
    }
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

static void seg_free(td_seg *s)
{
    if (s->fd >= 0)
        s->part->io->close(s->part->io, s->fd);
    free(s->idx);
    free(s->tidx);
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
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    const td_io *io = p->io;
    int fd = io->open(io, tmp, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return fd;
    int rc = td_io_write_all(io, fd, data, n, 0);
    if (rc == 0)
        rc = io->fsync(io, fd);
    io->close(io, fd);
    if (rc == 0)
        rc = io->rename(io, tmp, path);
    if (rc)
        io->unlink(io, tmp);
    return rc;
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
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Recovery
 */

/* Reads a whole small file (an index) into a malloc'd buffer; -ENOENT if missing. */
static int read_file(td_part *p, const char *path, uint8_t **out, size_t *n)
{
    const td_io *io = p->io;
    int fd = io->open(io, path, O_RDONLY, 0);
    if (fd < 0)
        return fd;
    int64_t size;
    int rc = io->fsize(io, fd, &size);
    uint8_t *b = NULL;
    if (rc == 0) {
        b = malloc((size_t)size + 1);
        rc = b ? td_io_read_all(io, fd, b, (size_t)size, 0) : -ENOMEM;
    }
    io->close(io, fd);
    if (rc) {
        free(b);
        return rc == TD_EEND ? -EIO : rc;
    }
    *out = b;
    *n = (size_t)size;
    return 0;
}

/* Loads and checks a segment's index files against the log size; 0 if usable. */
static int seg_load_indexes(td_part *p, td_seg *s, int64_t log_size)
{
    char path[PATH_MAX];
    uint8_t *b = NULL;
    size_t n = 0;
    seg_path(p, s->base, ".index", path, sizeof(path));
    int rc = read_file(p, path, &b, &n);
    if (rc)
        return rc;
    if (n % IDX_ENTRY || n == 0) {
        free(b);
        return TD_ECORRUPT;
    }
    for (size_t i = 0; i < n / IDX_ENTRY; i++) {
        uint32_t rel = td_load_be32(b + i * IDX_ENTRY), pos = td_load_be32(b + i * IDX_ENTRY + 4);
        bool ok = i == 0 ? pos == 0 /* rel > 0 when compaction removed the first batches */
                         : rel > s->idx[i - 1].rel && pos > s->idx[i - 1].pos;
        if (!ok || (int64_t)pos >= log_size || idx_push(s, rel, pos)) {
            free(b);
            return TD_ECORRUPT;
        }
    }
    free(b);
    b = NULL;
    seg_path(p, s->base, ".timeindex", path, sizeof(path));
    rc = read_file(p, path, &b, &n);
    if (rc)
        return rc;
    if (n % TIDX_ENTRY) {
        free(b);
        return TD_ECORRUPT;
    }
    for (size_t i = 0; i < n / TIDX_ENTRY; i++) {
        int64_t ts = (int64_t)td_load_be64(b + i * TIDX_ENTRY);
        uint32_t rel = td_load_be32(b + i * TIDX_ENTRY + 8);
        if ((i > 0 && ts <= s->tidx[i - 1].ts) || tidx_push(s, ts, rel)) {
            free(b);
            return TD_ECORRUPT;
        }
    }
    free(b);
    return 0;
}

static void seg_reset_indexes(td_seg *s)
{
    s->idx_n = 0;
    s->tidx_n = 0;
    s->since_index = 0;
    s->max_ts = -1;
    s->max_ts_base = s->base;
    s->next_offset = s->base;
    s->size = 0;
}

/*
 * Scans the log of s from position pos (a batch boundary) to file_size, validating every batch
 * (header, CRC, offsets continuing from s->next_offset) and accounting it. Stops at the first
 * bad batch and reports its position in *bad_pos (or -1 if the scan reached file_size).
 * *bad_is_tail is set when nothing valid follows the bad batch (a torn or corrupt tail),
 * false when a valid batch follows it (corruption in the middle).
 */
static int seg_scan(td_part *p, td_seg *s, int64_t pos, int64_t file_size, int64_t *bad_pos,
                    bool *bad_is_tail, char *why, size_t why_len)
{
    const td_io *io = p->io;
    td_buf b;
    td_buf_init(&b);
    int rc = 0;
    *bad_pos = -1;
    while (pos < file_size) {
        uint8_t hdr[TD_BATCH_HEADER_SIZE];
        td_batch_header h;
        int64_t left = file_size - pos;
        const char *problem = NULL;
        if (left < TD_BATCH_HEADER_SIZE) {
            problem = "a partial batch header";
        } else if ((rc = td_io_read_all(io, s->fd, hdr, sizeof(hdr), pos)) != 0) {
            goto out;
        } else if (batch_header_parse(hdr, sizeof(hdr), &h) != 0) {
            problem = "an invalid batch header";
        } else if ((int64_t)batch_total_size(&h) > left) {
            problem = "a batch that extends past the end of the file";
        } else if (h.base_offset < s->next_offset) {
            /* Above is fine: compaction leaves gaps between batches (docs/storage.md). */
            problem = "a batch whose base offset does not follow the previous batch";
        } else {
            td_buf_reset(&b);
            if ((rc = td_buf_reserve(&b, batch_total_size(&h))) != 0)
                goto out;
            rc = td_io_read_all(io, s->fd, b.p, batch_total_size(&h), pos);
            if (rc)
                goto out;
            b.len = batch_total_size(&h);
            if (batch_validate(b.p, b.len, false, 0, NULL) != 0)
                problem = "a batch whose CRC does not match";
        }
        if (problem) {
            *bad_pos = pos;
            snprintf(why, why_len, "%s", problem);
            /* Is this the tail? Look for any valid batch after the bad one: when the bad
             * batch's length is readable, at the position it claims to end. */
            *bad_is_tail = true;
            if (left >= TD_BATCH_HEADER_SIZE && batch_header_parse(hdr, sizeof(hdr), &h) == 0 &&
                (int64_t)batch_total_size(&h) < left) {
                int64_t npos = pos + (int64_t)batch_total_size(&h);
                uint8_t nh[TD_BATCH_HEADER_SIZE];
                td_batch_header h2;
                if (file_size - npos >= TD_BATCH_HEADER_SIZE &&
                    td_io_read_all(io, s->fd, nh, sizeof(nh), npos) == 0 &&
                    batch_header_parse(nh, sizeof(nh), &h2) == 0 &&
                    (int64_t)batch_total_size(&h2) <= file_size - npos &&
                    h2.base_offset > h.base_offset) {
                    td_buf_reset(&b);
                    if (td_buf_reserve(&b, batch_total_size(&h2)) == 0 &&
                        td_io_read_all(io, s->fd, b.p, batch_total_size(&h2), npos) == 0 &&
                        batch_validate(b.p, batch_total_size(&h2), false, 0, NULL) == 0)
                        *bad_is_tail = false;
                }
            }
            goto out;
        }
        if ((rc = seg_account(s, &h, pos)) != 0)
            goto out;
        pos += (int64_t)batch_total_size(&h);
    }
out:
    td_buf_free(&b);
    return rc;
}

/* At open, after a sealed segment's indexes were rebuilt in memory: writes its index files,
 * or, when they cannot be written (a full disk), leaves them owed like a rolled segment's, for
 * a later sync to write. A full disk must not keep a partition from opening. */
void owe_indexes(td_part *p, td_seg *s)
{
    int rc = seg_write_indexes(p, s);
    if (rc == 0)
        return;
    TD_WARN("storage", "partition %s: cannot write the indexes of segment %020" PRId64
            " yet: %s", p->label, s->base, td_strerror(rc));
    s->owed = s->synced = true;
    s->owed_ms = td_mono_ms();
    p->seal_failing = true;
    __atomic_add_fetch(&p->owed_n, 1, __ATOMIC_RELAXED);
}

/* Opens a segment's log file and recovers its state. Sealed segments and the active one differ
 * in what they trust; see the file comment. */
static int seg_recover(td_part *p, td_seg *s, bool active, bool clean)
{
    char path[PATH_MAX];
    const td_io *io = p->io;
    seg_path(p, s->base, ".log", path, sizeof(path));
    s->fd = io->open(io, path, O_RDWR, 0644);
    if (s->fd < 0)
        return td_fail(s->fd, "cannot open %s: %s", path, td_strerror(s->fd));
    int64_t size;
    int rc = io->fsize(io, s->fd, &size);
    if (rc)
        return rc;
    int64_t start = 0;
    bool have_idx = false;
    if ((!active || clean) && size > 0 && seg_load_indexes(p, s, size) == 0) {
        /* Resume from the last index entry: everything before it is trusted. */
        idx_entry last = s->idx[s->idx_n - 1];
        uint8_t hdr[TD_BATCH_HEADER_SIZE];
        td_batch_header h;
        if (td_io_read_all(io, s->fd, hdr, sizeof(hdr), last.pos) == 0 &&
            batch_header_parse(hdr, sizeof(hdr), &h) == 0 &&
            h.base_offset == s->base + last.rel) {
            have_idx = true;
            start = last.pos;
            s->idx_n--; /* seg_account re-adds it */
            s->next_offset = h.base_offset;
            /* max_ts comes from the time index; entries at or after the resume point are
             * re-added by the scan. */
            while (s->tidx_n && s->tidx[s->tidx_n - 1].rel >= last.rel)
                s->tidx_n--;
            if (s->tidx_n) {
                s->max_ts = s->tidx[s->tidx_n - 1].ts;
                s->max_ts_base = s->base + s->tidx[s->tidx_n - 1].rel;
            }
            s->since_index = TD_INDEX_INTERVAL_BYTES; /* force the entry at `start` */
        }
    }
    if (!have_idx) {
        seg_reset_indexes(s);
        start = 0;
    }
    int64_t bad_pos;
    bool tail = true;
    char why[128];
    rc = seg_scan(p, s, start, size, &bad_pos, &tail, why, sizeof(why));
    if (rc)
        return rc;
    if (bad_pos >= 0) {
        if (active && tail) {
            TD_WARN("storage",
                    "partition %s: truncating %" PRId64 " bytes of torn or corrupt tail at %s "
                    "position %" PRId64 " (%s)",
                    p->label, size - bad_pos, path, bad_pos, why);
            rc = io->ftruncate(io, s->fd, bad_pos);
            if (rc)
                return rc;
            rc = io->fsync(io, s->fd);
            if (rc)
                return rc;
        } else {
            go_offline(p, TD_ECORRUPT, "corrupt batch in %s at position %" PRId64 ": %s", path,
                       bad_pos, why);
            return 0;
        }
    }
    if (!have_idx && !active && !p->offline[0] && size > 0) { /* empty: none to write */
        TD_WARN("storage", "partition %s: rebuilt the indexes of %s", p->label, path);
        owe_indexes(p, s);
    }
    return rc;
}

struct list_ctx {
    td_part *p;
    int64_t *bases;
    size_t n, cap;
    int64_t *snaps; /* snapshot offsets */
    size_t nsnaps, snaps_cap;
    int rc;
};

static int push_i64(int64_t **v, size_t *n, size_t *cap, int64_t x)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        int64_t *nv = realloc(*v, c * sizeof(*nv));
        if (!nv)
            return -ENOMEM;
        *v = nv;
        *cap = c;
    }
    (*v)[(*n)++] = x;
    return 0;
}

static int parse_base(const char *name, const char *ext, int64_t *base)
{
    size_t n = strlen(name), e = strlen(ext);
    if (n != 20 + e || strcmp(name + 20, ext) != 0)
        return -1;
    int64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9')
            return -1;
        if (v > (INT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (name[i] - '0');
    }
    *base = v;
    return 0;
}

static int list_cb(void *arg, const char *name)
{
    struct list_ctx *c = arg;
    int64_t base;
    size_t n = strlen(name);
    if (n > 4 && strcmp(name + n - 4, ".tmp") == 0) {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", c->p->dir, name);
        c->p->io->unlink(c->p->io, path); /* an interrupted index write */
        return 0;
    }
    if (parse_base(name, ".snapshot", &base) == 0)
        c->rc = push_i64(&c->snaps, &c->nsnaps, &c->snaps_cap, base);
    else if (parse_base(name, ".log", &base) == 0)
        c->rc = push_i64(&c->bases, &c->n, &c->cap, base);
    return c->rc ? 1 : 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int segs_push(td_part *p, td_seg *s)
{
    if (p->nsegs == p->segs_cap) {
        size_t cap = p->segs_cap ? p->segs_cap * 2 : 16;
        td_seg **n = realloc(p->segs, cap * sizeof(*n));
        if (!n)
            return -ENOMEM;
        p->segs = n;
        p->segs_cap = cap;
    }
    p->segs[p->nsegs++] = s;
    return 0;
}

/* Creates a new empty active segment at base. Caller holds mu (or is part_open). */
static int seg_create(td_part *p, int64_t base, int64_t now_ms)
{
    char path[PATH_MAX];
    seg_path(p, base, ".log", path, sizeof(path));
    td_seg *s = seg_new(p, base);
    if (!s)
        return -ENOMEM;
    s->created_ms = now_ms;
    s->fd = p->io->open(p->io, path, O_RDWR | O_CREAT, 0644);
    int64_t size = 0;
    int rc = s->fd < 0 ? s->fd : p->io->fsize(p->io, s->fd, &size);
    if (rc == 0 && size != 0)
        rc = p->io->ftruncate(p->io, s->fd, 0); /* a leftover of a roll that crashed */
    if (rc == 0)
        rc = p->io->sync_dir(p->io, p->dir);
    if (rc == 0)
        rc = segs_push(p, s);
    if (rc) {
        seg_free(s);
        return td_fail(rc, "cannot create segment %s: %s", path, td_strerror(rc));
    }
    return 0;
}

/* The offset saved in the partition's file `name` (LOG_START_FILE, RECOVERY_POINT_FILE), or -1
 * if there is none or it is unreadable. */
int64_t read_offset_file(td_part *p, const char *name)
{
    char path[PATH_MAX], buf[32];
    snprintf(path, sizeof(path), "%s/%s", p->dir, name);
    int fd = p->io->open(p->io, path, O_RDONLY, 0);
    if (fd < 0)
        return -1;
    ssize_t n = p->io->pread(p->io, fd, buf, sizeof(buf) - 1, 0);
    p->io->close(p->io, fd);
    if (n <= 1 || buf[n - 1] != '\n')
        return -1;
    buf[n - 1] = 0;
    char *end;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (errno || *end || v < 0) {
        TD_WARN("storage", "partition %s: ignoring unreadable %s", p->label, name);
        return -1;
    }
    return v;
}

/* Saves an offset in the partition's file `name` durably (tmp + fsync + rename + directory). */
int write_offset_file(td_part *p, const char *name, int64_t offset)
{
    char path[PATH_MAX], text[32];
    snprintf(path, sizeof(path), "%s/%s", p->dir, name);
    int n = snprintf(text, sizeof(text), "%" PRId64 "\n", offset);
    int rc = write_file_atomic(p, path, text, (size_t)n);
    if (rc == 0)
        rc = p->io->sync_dir(p->io, p->dir);
    if (rc)
        return td_fail(rc, "cannot write %s: %s", path, td_strerror(rc));
    return 0;
}

/* The oldest segment whose seal is owed, or NULL. Caller holds mu. */
static td_seg *first_owed_locked(const td_part *p)
{
    for (size_t i = 0; p->owed_n > 0 && i < p->nsegs; i++)
        if (p->segs[i]->owed)
            return p->segs[i];
    return NULL;
}

/* Moves the recovery point to the first segment whose seal is owed, or the active segment.
 * Caller holds mu (or is opening or closing the partition). */
static int recovery_point_update_locked(td_part *p)
{
    td_seg *owed = first_owed_locked(p);
    int64_t rp = owed ? owed->base : p->segs[p->nsegs - 1]->base;
    if (rp == p->recovery_point)
        return 0;
    int rc = write_offset_file(p, RECOVERY_POINT_FILE, rp);
    if (rc == 0)
        p->recovery_point = rp;
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Stream IDs (docs/redis.md#stream-ids)
 *
 * The ID of the record at offset o is (ms, seq): ms is the partition's stream time at o's batch
 * (the largest batch timestamp up to and including that batch, and at least the ms of the last
 * anchor at or before o); seq is o plus the shift of that anchor (seq_a - off_a), or o when there
 * is none. Anchors (off, ms, seq) say "the record at off has the ID (max(ms, its stream time),
 * seq)". They are written for explicit IDs that the rule would not give, for XSETID, and when
 * deleting segments changes what the rule would compute (retention, DeleteRecords), so that an
 * ID once handed out never changes. They are kept in memory and in ANCHOR_FILE: 28-byte entries,
 * off (i64 BE), ms (i64 BE), seq (u64 BE), CRC32C of those 24 bytes (u32 BE), appended and
 * fdatasynced before the record they describe; rewritten whole when segments are deleted.
 */
/* Recomputes sealed_max_ts after segments were sealed or deleted. Caller holds mu. */
void sealed_max_update_locked(td_part *p)
{
    p->sealed_max_ts = -1;
    for (size_t i = 0; i + 1 < p->nsegs; i++)
        p->sealed_max_ts = TD_MAX(p->sealed_max_ts, p->segs[i]->max_ts);
}

/* The number of anchors at or before off (the last of them applies to off). */
size_t anchors_upto(const td_part *p, int64_t off)
{
    size_t lo = 0, hi = p->nanch;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (p->anch[mid].off <= off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The largest batch timestamp of the batches up to and including the one holding `off`
 * (stored segments only; -1 if none). Caller holds mu. */
static int64_t stream_prefix_max_locked(const td_part *p, int64_t off, int64_t *run_end)
{
    int64_t m = -1;
    *run_end = INT64_MAX;
    size_t i = 0;
    if (off >= p->segs[p->nsegs - 1]->base) { /* the active segment: appends and recent reads */
        i = p->nsegs - 1;
        m = p->sealed_max_ts;
    }
    for (; i < p->nsegs; i++) {
        const td_seg *s = p->segs[i];
        if (off >= s->next_offset && i + 1 < p->nsegs) {
            m = TD_MAX(m, s->max_ts);
            continue;
        }
        /* off is in s (or beyond the log end, in the active segment) */
        uint32_t rel = off >= s->base ? (uint32_t)TD_MIN(off - s->base, (int64_t)UINT32_MAX) : 0;
        size_t lo = 0, hi = s->tidx_n;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (s->tidx[mid].rel <= rel)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo > 0)
            m = TD_MAX(m, s->tidx[lo - 1].ts);
        /* The same until the next entry that raises the segment's max, or the segment's end. */
        *run_end = lo < s->tidx_n ? s->base + s->tidx[lo].rel - 1 : s->next_offset - 1;
        if (*run_end < off)
            *run_end = off; /* beyond the log end: only off itself */
        break;
    }
    return m;
}

/* The ID of offset off (which need not be written yet). run_end (may be NULL) gets the last
 * offset whose ID is (ms, seq + (o - off)), at least off. Caller holds mu. */
td_sid sid_at_locked(const td_part *p, int64_t off, int64_t *run_end)
{
    size_t k = anchors_upto(p, off);
    const sanchor *a = k ? &p->anch[k - 1] : NULL;
    int64_t end;
    int64_t m = TD_MAX(stream_prefix_max_locked(p, off, &end), 0);
    td_sid id;
    id.ms = a ? TD_MAX(m, a->id.ms) : m;
    id.seq = a ? a->id.seq + (uint64_t)(off - a->off) : (uint64_t)off;
    if (k < p->nanch && p->anch[k].off - 1 < end)
        end = p->anch[k].off - 1;
    if (run_end)
        *run_end = TD_MAX(end, off);
    return id;
}

int td_sid_cmp(td_sid a, td_sid b)
{
    if (a.ms != b.ms)
        return a.ms < b.ms ? -1 : 1;
    return a.seq < b.seq ? -1 : a.seq > b.seq;
}

bool td_sid_next(td_sid *id)
{
    if (id->seq < UINT64_MAX) {
        id->seq++;
        return true;
    }
    if (id->ms == INT64_MAX)
        return false;
    id->ms++;
    id->seq = 0;
    return true;
}

/* The last ID of the partition: the last record's, or what an anchor at the log end says came
 * before it (XSETID, or every record deleted), or 0-0. Caller holds mu. */
static td_sid sid_last_locked(const td_part *p)
{
    int64_t end = aload(&p->log_end);
    if (p->nanch && p->anch[p->nanch - 1].off == end) {
        td_sid a = p->anch[p->nanch - 1].id;
        if (a.seq > 0)
            return (td_sid){a.ms, a.seq - 1};
        return a.ms > 0 ? (td_sid){a.ms - 1, UINT64_MAX} : (td_sid){0, 0};
    }
    if (end > p->segs[0]->base)
        return sid_at_locked(p, end - 1, NULL);
    return (td_sid){0, 0};
}

int anchors_push(td_part *p, int64_t off, td_sid id)
{
    /* A later anchor at the same offset replaces the earlier one. */
    if (p->nanch && p->anch[p->nanch - 1].off == off) {
        p->anch[p->nanch - 1].id = id;
        return 0;
    }
    if (p->nanch == p->anch_cap) {
        size_t cap = p->anch_cap ? p->anch_cap * 2 : 8;
        sanchor *n = realloc(p->anch, cap * sizeof(*n));
        if (!n)
            return -ENOMEM;
        p->anch = n;
        p->anch_cap = cap;
    }
    p->anch[p->nanch++] = (sanchor){off, id};
    return 0;
}

static void anchor_encode(uint8_t *b, const sanchor *a)
{
    td_store_be64(b, (uint64_t)a->off);
    td_store_be64(b + 8, (uint64_t)a->id.ms);
    td_store_be64(b + 16, a->id.seq);
    td_store_be32(b + 24, td_crc32c(0, b, 24));
}

/* Appends one anchor to the file, durably, then to memory. Caller holds mu. */
static int anchor_add_locked(td_part *p, int64_t off, td_sid id)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", p->dir, ANCHOR_FILE);
    const td_io *io = p->io;
    int fd = io->open(io, path, O_RDWR | O_CREAT, 0644);
    if (fd < 0)
        return td_fail(fd, "cannot open %s: %s", path, td_strerror(fd));
    int64_t size = 0;
    int rc = io->fsize(io, fd, &size);
    uint8_t b[ANCHOR_ENTRY];
    sanchor a = {off, id};
    anchor_encode(b, &a);
    size -= size % ANCHOR_ENTRY; /* after a torn write, overwrite its remains */
    if (rc == 0)
        rc = td_io_write_all(io, fd, b, sizeof(b), size);
    if (rc == 0)
        rc = io->fsync(io, fd);
    io->close(io, fd);
    if (rc == 0 && size == 0)
        rc = io->sync_dir(io, p->dir);
    if (rc)
        return td_fail(rc, "cannot write %s: %s", path, td_strerror(rc));
    return anchors_push(p, off, id);
}

/* Rewrites the anchor file with the anchors in memory. Caller holds mu. */
int anchors_rewrite_locked(td_part *p)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", p->dir, ANCHOR_FILE);
    uint8_t *b = malloc(p->nanch * ANCHOR_ENTRY + 1);
    if (!b)
        return -ENOMEM;
    for (size_t i = 0; i < p->nanch; i++)
        anchor_encode(b + i * ANCHOR_ENTRY, &p->anch[i]);
    int rc = write_file_atomic(p, path, b, p->nanch * ANCHOR_ENTRY);
    free(b);
    if (rc == 0)
        rc = p->io->sync_dir(p->io, p->dir);
    return rc;
}

/* Loads the anchor file at open: entries up to the first torn or damaged one, and at or below
 * the log end (recovery may have cut records an anchor was written for). */
static int anchors_load(td_part *p)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", p->dir, ANCHOR_FILE);
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
    bool dropped = size % ANCHOR_ENTRY != 0;
    int64_t end = aload(&p->log_end);
    for (int64_t pos = 0; rc == 0 && pos + ANCHOR_ENTRY <= size; pos += ANCHOR_ENTRY) {
        const uint8_t *e = b + pos;
        sanchor a = {(int64_t)td_load_be64(e),
                     {(int64_t)td_load_be64(e + 8), td_load_be64(e + 16)}};
        if (td_load_be32(e + 24) != td_crc32c(0, e, 24) || a.off < 0 || a.id.ms < 0 ||
            (p->nanch && a.off < p->anch[p->nanch - 1].off)) {
            dropped = true;
            break;
        }
        if (a.off > end) {
            dropped = true;
            continue;
        }
        rc = anchors_push(p, a.off, a.id);
    }
    free(b);
    if (rc == 0 && dropped) {
        TD_WARN("storage", "partition %s: dropping stream ID anchors past the log end", p->label);
        rc = anchors_rewrite_locked(p);
    }
    return rc ? td_fail(rc, "cannot read %s: %s", path, td_strerror(rc)) : 0;
}

/*
 * Before segment 0 is deleted: keeps the IDs of the records after it as they are, with an anchor
 * at the new first offset when the rule would otherwise compute another ID there (the deleted
 * segment held a larger timestamp, or an anchor). Caller holds mu; nsegs >= 2.
 */
static int anchors_before_drop_locked(td_part *p)
{
    const td_seg *s0 = p->segs[0], *s1 = p->segs[1];
    int64_t b = s1->base;
    size_t k = anchors_upto(p, b - 1); /* anchors below b: they go */
    int64_t pb = s1->tidx_n && s1->tidx[0].rel == 0 ? s1->tidx[0].ts : -1;
    if (k == 0 && TD_MAX(s0->max_ts, 0) <= TD_MAX(pb, 0))
        return 0; /* nothing that goes changes what the rule gives after b */
    td_sid prev = sid_at_locked(p, b - 1, NULL), at = sid_at_locked(p, b, NULL);
    if (!(k < p->nanch && p->anch[k].off == b)) {
        if (k == 0) {
            if (anchors_push(p, INT64_MAX, at) != 0)
                return -ENOMEM;
            memmove(p->anch + 1, p->anch, (p->nanch - 1) * sizeof(*p->anch));
        } else {
            k--;
        }
        p->anch[k] = (sanchor){b, {prev.ms, at.seq}};
    }
    memmove(p->anch, p->anch + k, (p->nanch - k) * sizeof(*p->anch));
    p->nanch -= k;
    return anchors_rewrite_locked(p);
}

/* The stream ID of a record. TD_ERANGE for an offset at or past the log end. */
int part_stream_id(td_part *p, int64_t offset, td_sid *id, int64_t *run_end)
{
    pthread_mutex_lock(&p->mu);
    int rc = 0;
    if (offset < p->segs[0]->base || offset >= aload(&p->log_end))
        rc = td_fail(TD_ERANGE, "no record at offset %" PRId64 " in %s", offset, p->label);
    else
        *id = sid_at_locked(p, offset, run_end);
    pthread_mutex_unlock(&p->mu);
    return rc;
}

int part_stream_last(td_part *p, td_sid *last)
{
    pthread_mutex_lock(&p->mu);
    *last = sid_last_locked(p);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

int part_stream_seek(td_part *p, td_sid id, int64_t from, int64_t to, int64_t *offset)
{
    pthread_mutex_lock(&p->mu);
    int64_t lo = TD_MAX(from, p->segs[0]->base), hi = TD_MIN(to, aload(&p->log_end));
    if (hi < lo)
        hi = lo;
    while (lo < hi) { /* IDs increase with offsets */
        int64_t mid = lo + (hi - lo) / 2;
        if (td_sid_cmp(sid_at_locked(p, mid, NULL), id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *offset = lo;
    pthread_mutex_unlock(&p->mu);
    return 0;
}

int part_stream_find(td_part *p, td_sid id, int64_t *offset)
{
    int64_t hw = part_high_watermark(p), off;
    td_sid got;
    int rc = part_stream_seek(p, id, part_log_start(p), hw, &off);
    if (rc == 0 &&
        (off >= hw || part_stream_id(p, off, &got, NULL) != 0 || td_sid_cmp(got, id) != 0)) {
        td_error_clear();
        rc = TD_ENOTFOUND;
    }
    if (rc == 0)
        *offset = off;
    return rc;
}

int part_stream_after(td_part *p, td_sid id, int64_t *offset)
{
    int64_t hw = part_high_watermark(p);
    *offset = hw;
    if (!td_sid_next(&id))
        return 0;
    return part_stream_seek(p, id, part_log_start(p), hw, offset);
}

int part_stream_set_last(td_part *p, td_sid last)
{
    pthread_mutex_lock(&p->mu);
    int rc = check_online(p);
    if (rc == 0 && td_sid_cmp(last, sid_last_locked(p)) < 0)
        rc = td_fail(TD_ESEQUENCE, "the ID is smaller than the stream's last ID");
    if (rc == 0 && last.seq >= TD_SID_SEQ_MAX)
        rc = td_fail(TD_EINVAL, "sequence numbers stop at %" PRIu64, TD_SID_SEQ_MAX - 1);
    if (rc == 0)
        rc = anchor_add_locked(p, aload(&p->log_end), (td_sid){last.ms, last.seq + 1});
    pthread_mutex_unlock(&p->mu);
    return rc;
}

/* The check before an append with a stream ID request (under mu, before writing at `base`);
 * may write an anchor. */
static int sid_check_locked(td_part *p, const part_sid_req *req, int64_t base)
{
    if (p->cfg.timestamp_type == TD_TS_LOG_APPEND_TIME)
        return td_fail(TD_EINVAL, "explicit IDs need message.timestamp.type=CreateTime");
    td_sid last = sid_last_locked(p);
    td_sid w = req->want;
    if (w.seq >= TD_SID_SEQ_MAX)
        return td_fail(TD_EINVAL, "sequence numbers stop at %" PRIu64, TD_SID_SEQ_MAX - 1);
    if (req->mode == PART_SID_MS)
        return w.ms < last.ms ? td_fail(TD_ESEQUENCE, "ID not greater than the last") : 0;
    if (td_sid_cmp(w, last) <= 0)
        return td_fail(TD_ESEQUENCE, "ID not greater than the last");
    /* The batch's timestamp is w.ms, the largest so far: the rule gives (w.ms, natural seq). */
    td_sid nat = sid_at_locked(p, base, NULL);
    if (nat.seq == w.seq)
        return 0;
    return anchor_add_locked(p, base, w);
}

/* ---------------------------------------------------------------------------------------------
 * Producer state snapshots
 */
static int collect_snapshot(void *arg, const char *name)
{
    struct list_ctx *c = arg;
    int64_t off;
    if (parse_base(name, ".snapshot", &off) == 0)
        c->rc = push_i64(&c->snaps, &c->nsnaps, &c->snaps_cap, off);
    return c->rc ? 1 : 0;
}

/* Writes the producer state as of `offset` (every batch below it is in the state) and removes
 * all but the newest SNAPSHOTS_KEPT snapshots. Caller holds mu, or is opening or closing. A
 * failure is logged and otherwise ignored: without a snapshot, the next open reads the state
 * from the batch headers instead. */
static void write_snapshot(td_part *p, int64_t offset)
{
    td_buf b;
    td_buf_init(&b);
    char path[PATH_MAX];
    seg_path(p, offset, ".snapshot", path, sizeof(path));
    int rc = pstate_encode(&p->producers, offset, &b);
    if (rc == 0)
        rc = write_file_atomic(p, path, b.p, b.len);
    if (rc == 0)
        rc = p->io->sync_dir(p->io, p->dir);
    td_buf_free(&b);
    if (rc) {
        TD_WARN("storage", "partition %s: cannot write %s: %s", p->label, path, td_strerror(rc));
        return;
    }
    struct list_ctx lc = {p, NULL, 0, 0, NULL, 0, 0, 0};
    if (p->io->list(p->io, p->dir, collect_snapshot, &lc) == 0 && lc.rc == 0 &&
        lc.nsnaps > SNAPSHOTS_KEPT) {
        qsort(lc.snaps, lc.nsnaps, sizeof(int64_t), cmp_i64);
        for (size_t i = 0; i + SNAPSHOTS_KEPT < lc.nsnaps; i++) {
            seg_path(p, lc.snaps[i], ".snapshot", path, sizeof(path));
            p->io->unlink(p->io, path);
        }
    }
    free(lc.snaps);
}

static int64_t idx_lookup(const td_seg *s, int64_t offset);
static int seals_complete_locked(td_part *p);

/* Adds the producer ids of the batches from offset `from` to the log end to the state, reading
 * only batch headers. */
static int scan_producers(td_part *p, int64_t from, int64_t now_ms)
{
    for (size_t i = 0; i < p->nsegs; i++) {
        td_seg *s = p->segs[i];
        if (s->next_offset <= from)
            continue;
        int64_t pos = from > s->base ? idx_lookup(s, from) : 0;
        while (pos < s->size) {
            uint8_t hdr[TD_BATCH_HEADER_SIZE];
            td_batch_header h;
            int rc = td_io_read_all(p->io, s->fd, hdr, sizeof(hdr), pos);
            if (rc)
                return td_fail(rc, "partition %s: cannot read a batch header: %s", p->label,
                               td_strerror(rc));
            if (batch_header_parse(hdr, sizeof(hdr), &h) != 0)
                return td_fail(TD_ECORRUPT, "partition %s: a recovered batch header at %" PRId64
                               " does not parse", p->label, pos);
            if (batch_last_offset(&h) >= from && (rc = pstate_update(&p->producers, &h, now_ms)))
                return rc;
            pos += (int64_t)batch_total_size(&h);
        }
    }
    return 0;
}

/* Rebuilds the producer state at open: the newest readable snapshot at or below the log end,
 * then the batch headers after it (all of them without a snapshot). Snapshots beyond the log
 * end (the tail they describe was cut by recovery) are deleted. */
static int load_producers(td_part *p, int64_t *snaps, size_t n)
{
    int64_t end = aload(&p->log_end), from = p->segs[0]->base;
    if (n)
        qsort(snaps, n, sizeof(int64_t), cmp_i64);
    char path[PATH_MAX];
    for (size_t i = n; i-- > 0;) {
        seg_path(p, snaps[i], ".snapshot", path, sizeof(path));
        if (snaps[i] > end) {
            TD_WARN("storage", "partition %s: removing %s, which is beyond the log end %" PRId64,
                    p->label, path, end);
            p->io->unlink(p->io, path);
            continue;
        }
        uint8_t *data = NULL;
        size_t len = 0;
        int64_t off = -1;
        int rc = read_file(p, path, &data, &len);
        if (rc == 0)
            rc = pstate_decode(data, len, &p->producers, &off);
        free(data);
        if (rc == 0 && off == snaps[i]) {
            from = TD_MAX(from, off);
            break;
        }
        pstate_free(&p->producers);
        TD_WARN("storage", "partition %s: ignoring %s: %s", p->label, path,
                rc == TD_ECORRUPT ? td_last_error()
                : rc              ? td_strerror(rc)
                                  : "its offset does not match its name");
    }
    int64_t t0 = td_mono_ms();
    int rc = scan_producers(p, from, td_wall_ms());
    if (rc == 0 && end > from)
        TD_DEBUG("storage",
                 "partition %s: producer state from offset %" PRId64 " to %" PRId64
                 " read in %" PRId64 " ms (%zu producers)",
                 p->label, from, end, td_mono_ms() - t0, p->producers.n);
    return rc;
}

/* Removes the segments with the given bases, which follow a segment that recovery cut at
 * `end`, so that the log stays contiguous. Opening only. */
static void cut_after(td_part *p, const int64_t *bases, size_t n, int64_t end)
{
    for (size_t i = 0; i < n; i++) {
        seg_unlink(p, bases[i], true);
        TD_WARN("storage",
                "partition %s: removed segment %020" PRId64 ", which followed records lost in a "
                "crash (the log now ends at offset %" PRId64 ")",
                p->label, bases[i], end);
    }
    if (n)
        p->io->sync_dir(p->io, p->dir);
}

int part_open(const td_io *io, const char *dir, const char *label, const td_topic_config *cfg,
              td_part **out)
{
    td_part *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->io = io;
    p->dir = strdup(dir);
    p->label = strdup(label);
    p->cfg = *cfg;
    p->has_rules = config_has_rules(cfg);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->synced, NULL);
    pthread_cond_init(&p->appended, NULL);
    td_buf_init(&p->scrub_buf);
    p->scrub_base = -1;
    pstate_init(&p->producers);
    struct list_ctx lc = {p, NULL, 0, 0, NULL, 0, 0, 0};
    int rc = p->dir && p->label ? 0 : -ENOMEM;
    if (rc == 0)
        rc = td_io_mkdirs(io, dir, 0755);
    if (rc == 0)
        rc = cleaner_recover(p); /* an interrupted compaction's files (cleaner.c) */
    if (rc == 0)
        rc = io->list(io, dir, list_cb, &lc);
    if (rc == 0)
        rc = lc.rc;
    if (rc) {
        rc = td_fail(rc, "cannot open partition directory %s: %s", dir, td_strerror(rc));
        goto fail;
    }
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", dir, CLEAN_MARKER);
    int cfd = io->open(io, path, O_RDONLY, 0);
    bool clean = cfd >= 0;
    if (clean)
        io->close(io, cfd);
    p->clean_marker = clean;
    if (lc.n)
        qsort(lc.bases, lc.n, sizeof(int64_t), cmp_i64);
    /* Segments at or above the recovery point may have lost unsynced writes: they are
     * recovered like the active segment (unless the close was clean, which pays every seal). */
    p->recovery_point = read_offset_file(p, RECOVERY_POINT_FILE);
    int64_t rp = p->recovery_point >= 0 ? p->recovery_point : lc.n ? lc.bases[lc.n - 1] : 0;
    for (size_t i = 0; i < lc.n; i++) {
        td_seg *s = seg_new(p, lc.bases[i]);
        if (!s || segs_push(p, s)) {
            free(s);
            rc = -ENOMEM;
            goto fail;
        }
        s->sealed = i + 1 < lc.n;
        s->created_ms = td_wall_ms();
        bool untrusted = !s->sealed || (s->base >= rp && !clean);
        rc = seg_recover(p, s, untrusted, clean);
        if (rc)
            goto fail;
        if (p->offline[0])
            break;
        if (untrusted && s->sealed && s->next_offset < lc.bases[i + 1]) {
            /* It lost its tail: what follows continues records that are gone. */
            cut_after(p, lc.bases + i + 1, lc.n - i - 1, s->next_offset);
            lc.n = i + 1;
            s->sealed = false;
        }
        if (untrusted && s->sealed) {
            /* Intact: pay its seal now (the index files may wait for space). */
            if ((rc = io->fsync(io, s->fd)) != 0)
                goto fail;
            owe_indexes(p, s);
        }
        if (i > 0 && p->segs[i - 1]->next_offset > s->base) { /* below: a compaction gap */
            go_offline(p, TD_ECORRUPT,
                       "segment %020" PRId64 ".log does not continue the previous segment, "
                       "which ends at offset %" PRId64,
                       s->base, p->segs[i - 1]->next_offset);
            break;
        }
    }
    if (p->nsegs == 0 && (rc = seg_create(p, 0, td_wall_ms())) != 0)
        goto fail;
    free(lc.bases);
    lc.bases = NULL;
    td_seg *act = p->segs[p->nsegs - 1];
    /* What recovery found in the files counts as durable once synced here. */
    if (!p->offline[0] && (rc = io->fsync(io, act->fd)) != 0)
        goto fail;
    /* Seals paid above move the recovery point. A directory without the file gets it at its
     * first roll; until then the last segment's base, the default, is right. Failing to move
     * it is no error: recovery would only scan more than it needs. */
    if (!p->offline[0] && p->recovery_point >= 0 && recovery_point_update_locked(p) != 0)
        TD_WARN("storage", "partition %s: %s", p->label, td_last_error());
    p->log_start = p->segs[0]->base;
    p->log_end = act->next_offset;
    if (!p->offline[0]) {
        int64_t kept = read_offset_file(p, LOG_START_FILE);
        if (kept > p->log_start)
            p->log_start = TD_MIN(kept, p->log_end);
    }
    if (p->offline[0]) {
        /* Offsets of an offline partition: as far as its first segment got. */
        p->log_end = p->segs[0]->next_offset;
    }
    p->durable = p->log_end;
    p->high_watermark = p->log_end;
    sealed_max_update_locked(p);
    if (!p->offline[0] && (rc = anchors_load(p)) != 0)
        goto fail;
    if (!p->offline[0] && (rc = load_producers(p, lc.snaps, lc.nsnaps)) != 0)
        goto fail;
    p->first_dirty = TD_MIN(read_offset_file(p, CLEANER_CHECKPOINT_FILE), p->log_end);
    free(lc.snaps);
    *out = p;
    return 0;
fail:
    free(lc.bases);
    free(lc.snaps);
    part_close(p);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Closing
 */
void part_close(td_part *p)
{
    if (!p)
        return;
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
    pstate_free(&p->producers);
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
    p->cfg = *cfg;
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
static int roll_locked(td_part *p, int64_t now_ms)
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
                       part_sid_req *req);

/* Applies the topic's append-time rules (recompress.c: compression.type and the timestamp
 * bounds) outside the lock, then appends. */
static int append_ruled(td_part *p, uint8_t *batch, size_t n, int64_t now_ms,
                        td_append_result *res, part_sid_req *req)
{
    /* The common case (no rules) costs one atomic load, not a second trip through the lock. */
    if (!__atomic_load_n(&p->has_rules, __ATOMIC_ACQUIRE))
        return append_impl(p, batch, n, now_ms, res, req);
    batch_rules rules;
    pthread_mutex_lock(&p->mu);
    batch_rules_of(&p->cfg, &rules);
    size_t max_decomp = (size_t)TD_MAX(p->cfg.max_message_bytes, 1 << 20) * 64;
    pthread_mutex_unlock(&p->mu);
    if (!batch_rules_needed(&rules))
        return append_impl(p, batch, n, now_ms, res, req);
    td_buf tmp;
    td_buf_init(&tmp);
    uint8_t *b;
    size_t bn;
    int rc = batch_apply_rules(&rules, batch, n, now_ms, max_decomp, &tmp, &b, &bn);
    if (rc == 0)
        rc = append_impl(p, b, bn, now_ms, res, req);
    td_buf_free(&tmp);
    return rc;
}

int part_append_unchecked(td_part *p, uint8_t *batch, size_t n, int64_t now_ms,
                          td_append_result *res)
{
    return append_ruled(p, batch, n, now_ms, res, NULL);
}

int part_append_sid(td_part *p, uint8_t *batch, size_t n, int64_t now_ms, td_append_result *res,
                    part_sid_req *req)
{
    return append_ruled(p, batch, n, now_ms, res, req);
}

static int append_impl(td_part *p, uint8_t *batch, size_t n, int64_t now_ms, td_append_result *res,
                       part_sid_req *req)
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
    if (n > (size_t)p->cfg.max_message_bytes) {
        rc = td_fail(TD_ETOOBIG, "batch of %zu bytes exceeds max.message.bytes %" PRId32, n,
                     p->cfg.max_message_bytes);
        goto out;
    }
    if (h.producer_id >= 0) {
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
    if (act->size > 0 && (act->size + (int64_t)n > p->cfg.segment_bytes ||
                          now_ms - act->created_ms >= roll_ms)) {
        if ((rc = roll_locked(p, now_ms)) != 0)
            goto out;
        act = p->segs[p->nsegs - 1];
    }
    if (act->size + (int64_t)n > UINT32_MAX) {
        rc = td_fail(TD_ETOOBIG, "batch does not fit in a segment");
        goto out;
    }
    int64_t base = act->next_offset;
    if (req && req->mode != PART_SID_AUTO && (rc = sid_check_locked(p, req, base)) != 0)
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
    if (req)
        req->got = sid_at_locked(p, base, NULL);
    if (pstate_update(&p->producers, &h, now_ms) != 0)
        TD_ERROR("storage",
                 "partition %s: out of memory recording producer %" PRId64
                 "; a retry of its last batch would be stored again",
                 p->label, h.producer_id);
    astore(&p->log_end, act->next_offset);
    if (p->keys)
        keyindex_appended_locked(p, batch, n);
    if (++p->pending >= p->last_round)
        pthread_cond_signal(&p->appended); /* a gathering leader has its round */
    if (p->cfg.fsync_policy != TD_FSYNC_ALWAYS) {
        astore(&p->high_watermark, act->next_offset);
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
static int seals_complete_locked(td_part *p)
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
 * producer (part_wait_durable) also gathers a round before leading one, keeps leading while
 * other producers wait, and is counted among the waiters that a round releases; a plain
 * part_sync caller does none of that.
 */
static int sync_through(td_part *p, int64_t end, bool producer)
{
    durable_waiter *due = NULL;
    size_t ndue = 0;
    int rc = 0;
    bool gathered = !producer, owe_wakeup = false, did_sync = false;
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
    return sync_through(p, end_offset, true);
}

int part_sync(td_part *p)
{
    return sync_through(p, aload(&p->log_end), false);
}

int part_on_durable(td_part *p, int64_t end_offset, td_durable_cb cb, void *arg)
{
    pthread_mutex_lock(&p->mu);
    int rc = check_online(p);
    if (rc == 0 && p->cfg.fsync_policy == TD_FSYNC_ALWAYS && p->durable < end_offset) {
        if (p->nwaiters == p->waiters_cap) {
            size_t cap = p->waiters_cap ? p->waiters_cap * 2 : 16;
            durable_waiter *n = realloc(p->waiters, cap * sizeof(*n));
            if (!n) {
                pthread_mutex_unlock(&p->mu);
                return -ENOMEM;
            }
            p->waiters = n;
            p->waiters_cap = cap;
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
 * Reading
 */

/* Index of the last segment whose base is <= offset (0 if none). Caller holds mu. */
static size_t seg_find(td_part *p, int64_t offset)
{
    size_t lo = 0, hi = p->nsegs;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (p->segs[mid]->base <= offset)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* Position of the last index entry at or below offset. Caller holds mu. */
static int64_t idx_lookup(const td_seg *s, int64_t offset)
{
    if (s->idx_n == 0)
        return 0;
    int64_t rel = offset - s->base;
    size_t lo = 0, hi = s->idx_n;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if ((int64_t)s->idx[mid].rel <= rel)
            lo = mid;
        else
            hi = mid;
    }
    return s->idx[lo].pos;
}

int part_read(td_part *p, int64_t offset, size_t max_bytes, td_range *r)
{
    memset(r, 0, sizeof(*r));
    r->fd = -1;
    int rc = check_online(p);
    if (rc)
        return rc;
    int64_t hw = aload(&p->high_watermark), ls = aload(&p->log_start);
    if (offset < ls || offset > hw)
        return td_fail(TD_ERANGE, "offset %" PRId64 " is outside %" PRId64 "..%" PRId64, offset,
                       ls, hw);
    if (offset == hw)
        return TD_EEND;
    pthread_mutex_lock(&p->mu);
    size_t i = seg_find(p, offset);
    td_seg *s = p->segs[i];
    if (s->next_offset <= offset && i + 1 < p->nsegs)
        s = p->segs[++i];
again:
    s->refs++;
    int64_t pos = idx_lookup(s, offset), size = s->size;
    pthread_mutex_unlock(&p->mu);

    const td_io *io = p->io;
    int64_t start = -1, len = 0, first = 0, next = offset;
    while (pos < size) {
        uint8_t hdr[TD_BATCH_HEADER_SIZE];
        td_batch_header h;
        rc = td_io_read_all(io, s->fd, hdr, sizeof(hdr), pos);
        if (rc == 0)
            rc = batch_header_parse(hdr, sizeof(hdr), &h);
        if (rc) {
            pthread_mutex_lock(&p->mu);
            char path[PATH_MAX];
            seg_path(p, s->base, ".log", path, sizeof(path));
            rc = go_offline(p, TD_ECORRUPT, "unreadable batch header in %s at position %" PRId64,
                            path, pos);
            seg_unref_locked(s);
            pthread_mutex_unlock(&p->mu);
            return rc;
        }
        int64_t total = (int64_t)batch_total_size(&h);
        if (h.base_offset >= hw)
            break;
        if (start < 0) {
            if (batch_last_offset(&h) < offset) {
                pos += total;
                continue;
            }
            start = pos;
            first = h.base_offset;
        } else if (len + total > (int64_t)max_bytes) {
            break;
        }
        len += total;
        next = batch_last_offset(&h) + 1;
        pos += total;
    }
    if (start < 0) {
        /* offset was in a gap at the end of this segment (compaction removed its last batches):
         * the next batch is the next segment's first, if there is one. */
        pthread_mutex_lock(&p->mu);
        seg_unref_locked(s);
        i = seg_find(p, s->base);
        if (i + 1 < p->nsegs && p->segs[i]->base == s->base && p->segs[i + 1]->base < hw) {
            s = p->segs[++i];
            goto again; /* idx_lookup of an offset below s->base gives its first batch */
        }
        pthread_mutex_unlock(&p->mu);
        return TD_EEND;
    }
    r->seg = s;
    r->fd = s->fd;
    r->io = io;
    r->pos = start;
    r->len = len;
    r->first_offset = first;
    r->next_offset = next;
    return 0;
}

void part_range_release(td_range *r)
{
    if (!r->seg)
        return;
    td_part *p = r->seg->part;
    pthread_mutex_lock(&p->mu);
    seg_unref_locked(r->seg);
    pthread_mutex_unlock(&p->mu);
    r->seg = NULL;
}

int part_range_copy(const td_range *r, td_buf *out)
{
    int rc = td_buf_reserve(out, (size_t)r->len);
    if (rc)
        return rc;
    rc = td_io_read_all(r->io, r->fd, out->p + out->len, (size_t)r->len, r->pos);
    if (rc)
        return rc == TD_EEND ? -EIO : rc;
    out->len += (size_t)r->len;
    return 0;
}

/* Reads the batch at pos of s whole into b. */
static int read_batch(td_part *p, td_seg *s, int64_t pos, td_buf *b, td_batch_header *h)
{
    uint8_t hdr[TD_BATCH_HEADER_SIZE];
    int rc = td_io_read_all(p->io, s->fd, hdr, sizeof(hdr), pos);
    if (rc == 0)
        rc = batch_header_parse(hdr, sizeof(hdr), h);
    if (rc)
        return rc == TD_EEND ? TD_ECORRUPT : rc;
    td_buf_reset(b);
    rc = td_buf_reserve(b, batch_total_size(h));
    if (rc == 0)
        rc = td_io_read_all(p->io, s->fd, b->p, batch_total_size(h), pos);
    if (rc)
        return rc == TD_EEND ? TD_ECORRUPT : rc;
    b->len = batch_total_size(h);
    return 0;
}

/* Finds in batch b the first record at or after min_offset with timestamp >= ts (or == ts
 * when exact). */
static int find_in_batch(td_buf *b, int64_t min_offset, int64_t ts, bool exact, int64_t *found)
{
    td_batch_reader r;
    batch_reader_init(&r);
    int rc = batch_reader_open(&r, b->p, b->len, 64u << 20);
    td_record rec;
    *found = -1;
    if (rc == 0) {
        while ((rc = batch_reader_next(&r, &rec)) == 1) {
            if (rec.offset >= min_offset &&
                (exact ? rec.timestamp == ts : rec.timestamp >= ts)) {
                *found = rec.offset;
                break;
            }
        }
    }
    batch_reader_free(&r);
    return rc < 0 ? rc : 0;
}

int part_offset_for_time(td_part *p, int64_t ts, int64_t *offset)
{
    int rc = check_online(p);
    if (rc)
        return rc;
    int64_t hw = aload(&p->high_watermark), ls = aload(&p->log_start);
    pthread_mutex_lock(&p->mu);
    td_seg *s = NULL;
    for (size_t i = 0; i < p->nsegs; i++)
        if (p->segs[i]->max_ts >= ts && p->segs[i]->base < hw) {
            s = p->segs[i];
            break;
        }
    if (!s) {
        pthread_mutex_unlock(&p->mu);
        *offset = hw;
        return 0;
    }
    s->refs++;
    /* Start from the last time index entry whose timestamp is below ts. */
    int64_t from = s->base;
    for (size_t i = 0; i < s->tidx_n && s->tidx[i].ts < ts; i++)
        from = s->base + s->tidx[i].rel;
    int64_t pos = idx_lookup(s, from), size = s->size;
    pthread_mutex_unlock(&p->mu);
    td_buf b;
    td_buf_init(&b);
    *offset = hw;
    while (pos < size) {
        td_batch_header h;
        if ((rc = read_batch(p, s, pos, &b, &h)) != 0)
            break;
        if (h.base_offset >= hw)
            break;
        if (h.max_timestamp >= ts && batch_last_offset(&h) >= ls) {
            int64_t found;
            rc = find_in_batch(&b, ls, ts, false, &found);
            if (rc)
                break;
            if (found >= 0) {
                *offset = found;
                break;
            }
        }
        pos += (int64_t)batch_total_size(&h);
    }
    td_buf_free(&b);
    pthread_mutex_lock(&p->mu);
    seg_unref_locked(s);
    pthread_mutex_unlock(&p->mu);
    return rc;
}

int part_max_timestamp(td_part *p, int64_t *ts, int64_t *offset)
{
    int rc = check_online(p);
    if (rc)
        return rc;
    int64_t hw = aload(&p->high_watermark);
    pthread_mutex_lock(&p->mu);
    td_seg *best = NULL;
    for (size_t i = 0; i < p->nsegs; i++) {
        td_seg *s = p->segs[i];
        if (s->max_ts >= 0 && s->max_ts_base < hw && (!best || s->max_ts > best->max_ts))
            best = s;
    }
    if (!best) {
        pthread_mutex_unlock(&p->mu);
        return TD_ENOTFOUND;
    }
    best->refs++;
    int64_t want = best->max_ts, from = best->max_ts_base;
    int64_t pos = idx_lookup(best, from), size = best->size;
    pthread_mutex_unlock(&p->mu);
    td_buf b;
    td_buf_init(&b);
    rc = TD_ENOTFOUND;
    while (pos < size) {
        td_batch_header h;
        int r2 = read_batch(p, best, pos, &b, &h);
        if (r2) {
            rc = r2;
            break;
        }
        if (h.base_offset == from) {
            int64_t found;
            rc = find_in_batch(&b, 0, want, true, &found);
            if (rc == 0 && found < 0)
                found = batch_last_offset(&h);
            *ts = want;
            *offset = found;
            break;
        }
        pos += (int64_t)batch_total_size(&h);
    }
    td_buf_free(&b);
    pthread_mutex_lock(&p->mu);
    seg_unref_locked(best);
    pthread_mutex_unlock(&p->mu);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Retention
 */

/* Removes the oldest segment, keeping the stream IDs after it. Caller holds mu; nsegs >= 2. */
static int drop_oldest_locked(td_part *p)
{
    int rc = anchors_before_drop_locked(p);
    if (rc)
        return rc;
    td_seg *s = p->segs[0];
    memmove(p->segs, p->segs + 1, (p->nsegs - 1) * sizeof(*p->segs));
    p->nsegs--;
    sealed_max_update_locked(p);
    if (p->segs[0]->base > aload(&p->log_start))
        astore(&p->log_start, p->segs[0]->base);
    seg_unlink(p, s->base, true);
    s->deleted = true;
    if (s->owed) { /* nothing is owed for a deleted segment */
        s->owed = false;
        __atomic_sub_fetch(&p->owed_n, 1, __ATOMIC_RELAXED);
    }
    TD_INFO("storage", "partition %s: deleted segment %020" PRId64 " (%" PRId64 " bytes)",
            p->label, s->base, s->size);
    seg_unref_locked(s); /* readers holding a range keep the fd until they release it */
    return 0;
}

/*
 * Removes the oldest segment as drop_oldest_locked does; when that fails for lack of space (the
 * stream ID anchors could not be rewritten), releases the disk reserve and tries once more:
 * removing segments is how a full disk gets space back. Caller holds mu; nsegs >= 2.
 */
static int drop_oldest_reserved_locked(td_part *p, bool *released)
{
    int rc = drop_oldest_locked(p);
    if (rc == -ENOSPC && !*released) {
        char why[300];
        snprintf(why, sizeof(why), "removing a segment of partition %s", p->label);
        if (reserve_release(p->reserve, why) == 0) {
            *released = true;
            rc = drop_oldest_locked(p);
        }
    }
    if (rc)
        TD_ERROR("storage", "partition %s: keeping segment %020" PRId64 " for now: %s",
                 p->label, p->segs[0]->base, td_strerror(rc));
    return rc;
}

int part_enforce_retention(td_part *p, int64_t now_ms, int *deleted)
{
    int count = 0, rc = 0;
    bool released = false;
    pthread_mutex_lock(&p->mu);
    if (p->offline[0])
        goto out;
    td_topic_config cc = p->cfg;
    const td_topic_config *c = &cc;
    if (!(c->cleanup_policy & TD_CLEANUP_DELETE)) /* compact alone: the cleaner's to shrink */
        cc.retention_ms = cc.retention_bytes = cc.retention_records = -1;
    td_seg *act = p->segs[p->nsegs - 1];
    /* An active segment that has wholly expired by time is rolled so that it can go. */
    if (c->retention_ms >= 0 && act->size > 0 && act->max_ts < now_ms - c->retention_ms &&
        aload(&p->high_watermark) == act->next_offset) {
        if ((rc = roll_locked(p, now_ms)) != 0)
            goto out;
    }
    int64_t total = 0;
    for (size_t i = 0; i < p->nsegs; i++)
        total += p->segs[i]->size;
    while (p->nsegs > 1) {
        td_seg *s = p->segs[0];
        bool by_time = c->retention_ms >= 0 && s->max_ts < now_ms - c->retention_ms;
        bool by_bytes = c->retention_bytes >= 0 && total - s->size >= c->retention_bytes;
        bool by_records = c->retention_records >= 0 &&
                          aload(&p->log_end) - p->segs[1]->base >= c->retention_records;
        /* Wholly below the log start: DeleteRecords could not remove it at the time. */
        bool deleted_records = s->next_offset <= aload(&p->log_start);
        if (!by_time && !by_bytes && !by_records && !deleted_records)
            break;
        int64_t size = s->size;
        if ((rc = drop_oldest_reserved_locked(p, &released)) != 0)
            break;
        total -= size;
        count++;
    }
out:
    pthread_mutex_unlock(&p->mu);
    if (count > 0 || released)
        reserve_restore(p->reserve); /* space came back: appends may resume */
    if (deleted)
        *deleted = count;
    return rc;
}

/* part_delete_before under mu: moves the log start (durably first), then removes the whole
 * segments below it, including any that an earlier call could not remove. */
static int delete_before_locked(td_part *p, int64_t offset, bool *released)
{
    int rc = check_online(p);
    int64_t hw = aload(&p->high_watermark), ls = aload(&p->log_start);
    if (rc == 0 && offset == TD_DELETE_TO_HIGH_WATERMARK)
        offset = hw;
    if (rc == 0 && (offset < 0 || offset > hw))
        rc = td_fail(TD_ERANGE,
                     "cannot delete records before offset %" PRId64 ": partition %s holds %" PRId64
                     "..%" PRId64,
                     offset, p->label, ls, hw);
    if (rc)
        return rc;
    if (offset > ls) {
        /* Durable first: once the call returns, a restart must not bring the records back. */
        if ((rc = write_offset_file(p, LOG_START_FILE, offset)) != 0)
            return rc;
        astore(&p->log_start, offset);
        TD_INFO("storage", "partition %s: records before offset %" PRId64 " deleted", p->label,
                offset);
    }
    /* Whole segments below the start go now; the active one always stays. */
    ls = aload(&p->log_start);
    while (p->nsegs > 1 && p->segs[0]->next_offset <= ls) {
        if ((rc = drop_oldest_reserved_locked(p, released)) != 0) {
            /* The records are gone for readers, and the start is saved; the files go at the
             * next retention pass or a retried call. Reported, since the space is not free. */
            return td_fail(rc,
                           "records before offset %" PRId64 " of partition %s are deleted, but "
                           "their segments could not be removed yet: %s",
                           ls, p->label, td_strerror(rc));
        }
    }
    return 0;
}

int part_delete_before(td_part *p, int64_t offset, int64_t *log_start)
{
    bool released = false;
    pthread_mutex_lock(&p->mu);
    int64_t segs = (int64_t)p->nsegs;
    int rc = delete_before_locked(p, offset, &released);
    if (rc == -ENOSPC && !released) {
        /* The log start could not be saved for lack of space: retry on the reserve's. */
        char why[300];
        snprintf(why, sizeof(why), "deleting records of partition %s", p->label);
        if (reserve_release(p->reserve, why) == 0) {
            released = true;
            rc = delete_before_locked(p, offset, &released);
        }
    }
    bool freed = (int64_t)p->nsegs < segs;
    if (log_start)
        *log_start = aload(&p->log_start);
    pthread_mutex_unlock(&p->mu);
    if (freed || released)
        reserve_restore(p->reserve); /* space came back: appends may resume */
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Scrub
 */
int part_scrub_step(td_part *p, int64_t budget, int64_t *checked)
{
    int64_t done = 0;
    int rc = 0;
    if (checked)
        *checked = 0;
    while (done < budget) {
        pthread_mutex_lock(&p->mu);
        if (p->offline[0]) {
            pthread_mutex_unlock(&p->mu);
            break;
        }
        /* The next sealed segment at or after scrub_base. */
        td_seg *s = NULL;
        for (size_t i = 0; i + 1 < p->nsegs; i++)
            if (p->segs[i]->base >= p->scrub_base) {
                s = p->segs[i];
                break;
            }
        if (!s) {
            /* Past the last sealed segment: start over next time. */
            p->scrub_base = -1;
            p->scrub_pos = 0;
            pthread_mutex_unlock(&p->mu);
            break;
        }
        if (s->base != p->scrub_base) {
            p->scrub_base = s->base;
            p->scrub_pos = 0;
        }
        int64_t pos = p->scrub_pos, size = s->size;
        s->refs++;
        pthread_mutex_unlock(&p->mu);
        const char *why = NULL;
        td_batch_header h;
        int64_t next = pos;
        if (pos < size) {
            int r2 = read_batch(p, s, pos, &p->scrub_buf, &h);
            if (r2 == TD_ECORRUPT || (r2 == 0 && pos + (int64_t)batch_total_size(&h) > size))
                why = "an invalid batch header";
            else if (r2)
                rc = r2;
            else if (batch_validate(p->scrub_buf.p, p->scrub_buf.len, false, 0, NULL) != 0)
                why = "a batch whose CRC does not match";
            else
                next = pos + (int64_t)batch_total_size(&h);
        }
        pthread_mutex_lock(&p->mu);
        if (why) {
            char path[PATH_MAX];
            seg_path(p, s->base, ".log", path, sizeof(path));
            rc = go_offline(p, TD_ECORRUPT, "scrub found a corrupt batch in %s at position %" PRId64
                            ": %s", path, pos, why);
        } else if (rc == 0) {
            done += next - pos;
            if (next >= size) {
                p->scrub_base = s->base + 1;
                p->scrub_pos = 0;
            } else {
                p->scrub_pos = next;
            }
        }
        seg_unref_locked(s);
        pthread_mutex_unlock(&p->mu);
        if (rc)
            break;
    }
    if (checked)
        *checked = done;
    return rc;
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
