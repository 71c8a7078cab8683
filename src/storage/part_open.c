/*
 * part_open.c: opening a partition (see part.c for the files of a partition directory and the
 * locking rules): recovery of its segments and index files, and the idempotent producers' state
 * loaded from snapshots and rebuilt from the log after them, and the snapshots written at rolls.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/keyindex.h"
#include "storage/part_int.h"
#include "storage/segkeys.h"

/* ---------------------------------------------------------------------------------------------
 * Recovery
 */

/* Reads a whole small file (an index, the saved stream nodes) into a malloc'd buffer; -ENOENT
 * if missing. */
int read_file(td_part *p, const char *path, uint8_t **out, size_t *n)
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
    if (rc == 0) {
        segkeys_drop(s);
        return;
    }
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
    if (td_grow(v, cap, *n, sizeof(**v), 16) != 0)
        return -ENOMEM;
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
    if (td_grow(&p->segs, &p->segs_cap, p->nsegs, sizeof(*p->segs), 16) != 0)
        return -ENOMEM;
    p->segs[p->nsegs++] = s;
    return 0;
}

/* Creates a new empty active segment at base. Caller holds mu (or is part_open). */
int seg_create(td_part *p, int64_t base, int64_t now_ms)
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
    if (rc == 0 && segkeys_start(s, p->cfg.key_index, p->cfg.trace_index) != 0)
        TD_WARN("storage", "partition %s: no memory for the key or trace index of a new "
                           "segment: lookups read its log", p->label);
    if (rc) {
        seg_free(s);
        return td_fail(rc, "cannot create segment %s: %s", path, td_strerror(rc));
    }
    return 0;
}

/* The offset saved in the partition's file `name` (LOG_START_FILE, RECOVERY_POINT_FILE), or -1
 * if there is none or it is unreadable. */
static int64_t read_offset_file(td_part *p, const char *name)
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
td_seg *first_owed_locked(const td_part *p)
{
    for (size_t i = 0; p->owed_n > 0 && i < p->nsegs; i++)
        if (p->segs[i]->owed)
            return p->segs[i];
    return NULL;
}

/* Moves the recovery point to the first segment whose seal is owed, or the active segment.
 * Caller holds mu (or is opening or closing the partition). */
int recovery_point_update_locked(td_part *p)
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
void write_snapshot(td_part *p, int64_t offset)
{
    td_buf b;
    td_buf_init(&b);
    char path[PATH_MAX];
    seg_path(p, offset, ".snapshot", path, sizeof(path));
    int rc = txn_before_snapshot_locked(p);
    if (rc == 0)
        rc = pstate_encode(&p->producers, offset, &b);
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

/* Adds a batch at pos of s (its header h) to the producers' state and the transactions (a
 * marker is read whole). */
static int replay_batch(td_part *p, td_seg *s, int64_t pos, const td_batch_header *h,
                        int64_t now_ms)
{
    if (h->producer_id < 0)
        return 0;
    if (!(h->attributes & TD_BATCH_ATTR_CONTROL)) {
        bool opens = txn_opens(p, h);
        int rc = pstate_update(&p->producers, h, now_ms);
        return rc ? rc : txn_data_locked(p, h, opens);
    }
    uint8_t b[TD_MARKER_MAX_SIZE];
    int32_t coord_epoch = 0;
    size_t n = batch_total_size(h);
    if (n < TD_MARKER_SIZE || n > TD_MARKER_MAX_SIZE)
        return 0; /* no marker of ours: nothing to apply */
    int rc = td_io_read_all(p->io, s->fd, b, n, pos);
    if (rc)
        return td_fail(rc, "partition %s: cannot read a control batch: %s", p->label,
                       td_strerror(rc));
    int type = batch_marker_type(b, n, &coord_epoch);
    return type < 0 ? 0 : txn_marker_locked(p, h, type, coord_epoch, now_ms, true);
}

/* Adds the producer ids of the batches from offset `from` to the log end to the state, reading
 * only batch headers (and transaction markers). */
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
            if (batch_last_offset(&h) >= from && (rc = replay_batch(p, s, pos, &h, now_ms)))
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
    int rc = txn_from_snapshot(p);
    if (rc == 0)
        rc = scan_producers(p, from, td_wall_ms());
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
    pthread_mutex_init(&p->ix_mu, NULL);
    td_buf_init(&p->ix_buf);
    p->scrub_base = -1;
    pstate_init(&p->producers);
    p->unstable = INT64_MAX;
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
    if (!p->offline[0] && (rc = added_load(p)) != 0)
        goto fail;
    if (!p->offline[0] && (rc = txn_load(p)) != 0)
        goto fail;
    if (!p->offline[0] &&
        (rc = load_producers(p, lc.snaps, p->ab_full_replay ? 0 : lc.nsnaps)) != 0)
        goto fail;
    if (!p->offline[0] && (rc = txn_opened(p)) != 0)
        goto fail;
    p->first_dirty = TD_MIN(read_offset_file(p, CLEANER_CHECKPOINT_FILE), p->log_end);
    p->clean_due_ms = INT64_MAX; /* the next cleaning that dirty bytes bring learns it */
    if ((rc = segkeys_open(p)) != 0)
        goto fail;
    free(lc.snaps);
    *out = p;
    return 0;
fail:
    free(lc.bases);
    free(lc.snaps);
    part_close(p);
    return rc;
}

