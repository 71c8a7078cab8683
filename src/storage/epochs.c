/*
 * epochs.c: the leader epoch cache of a partition (see epochs.h and docs/storage.md "Leader
 * epochs").
 *
 * The semantics follow Kafka's LeaderEpochFileCache (storage/.../epoch/LeaderEpochFileCache.java)
 * and its checkpoint (LeaderEpochCheckpointFile, server-common's CheckpointFile):
 *   - assign updates only when the cache is empty, the epoch differs from the latest, or the
 *     latest epoch is assigned an earlier start (isUpdateNeeded); it then removes, from the end,
 *     every entry whose epoch or start is not below the new one's
 *     (maybeTruncateNonMonotonicEntries), and appends the new one.
 *   - endOffsetFor, truncateFromEnd, truncateFromStart and epochForOffset case for case, each
 *     function below naming the cases.
 *   - the file's entries are loaded through assign, as Kafka's constructor does, so a file whose
 *     entries do not increase loads as the assigns in its order leave the cache.
 *
 * Where reading the file differs from Kafka's reader, this one is stricter, so that a torn file
 * is refused rather than read as a shorter history (the file is replaced by rename, so a torn
 * one means something other than our writes went wrong):
 *   - Kafka reads a file holding only the version line, with or without its newline, as empty;
 *     here only a file of no bytes is empty (Kafka creates one when it opens a partition).
 *   - Kafka accepts a last line without its newline ("0\n1\n5 1" where "0\n1\n5 10\n" was
 *     written reads as epoch 5 at offset 1); here it is refused as torn.
 *   - Kafka's lines may end in "\r\n" or "\r" (Java's readLine); here "\r" is refused.
 * Within a line the rules are Kafka's: numbers as Integer.parseInt and Long.parseLong read them
 * (an optional sign, decimal digits, in range), an entry is two numbers separated by whitespace
 * and may end in whitespace but not begin with it; the version must be 0, the count must match
 * the entries; a negative epoch or offset is refused (Kafka's assign throws on it).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/epochs.h"

/* A checkpoint larger than this is refused unread: ours hold at most ~32 bytes per epoch. */
#define EPOCHS_FILE_MAX (64 << 20)

struct td_epochs {
    const td_io *io;
    char *dir;
    td_epoch_entry *v; /* increasing epoch and start offset */
    size_t n, cap;
};

/* ---------------------------------------------------------------------------------------------
 * The cache
 */

/* Kafka's isUpdateNeeded. */
static bool update_needed(const td_epochs *c, int32_t epoch, int64_t start)
{
    if (c->n == 0)
        return true;
    const td_epoch_entry *last = &c->v[c->n - 1];
    return epoch != last->epoch || start < last->start_offset;
}

/* assign: 1 when the cache changed, 0 when not, -ENOMEM (the cache as it was). */
static int assign(td_epochs *c, int32_t epoch, int64_t start)
{
    if (epoch < 0 || start < 0 || !update_needed(c, epoch, start))
        return 0;
    /* Room first, so that a failure leaves the entries alone. */
    if (td_grow(&c->v, &c->cap, c->n, sizeof(*c->v), 8) != 0)
        return -ENOMEM;
    size_t keep = c->n;
    while (keep > 0 && (c->v[keep - 1].epoch >= epoch || c->v[keep - 1].start_offset >= start))
        keep--;
    /* Kafka warns only when history is lost: more than one entry, or one that started
     * elsewhere (an entry for an epoch that never wrote, replaced at the same offset, is the
     * ordinary case of a leader that changed twice before any append). */
    size_t removed = c->n - keep;
    if (removed > 1 || (removed == 1 && c->v[keep].start_offset != start))
        TD_WARN("storage",
                "%s: leader epoch %" PRId32 " at offset %" PRId64 " replaces %zu entries of the "
                "leader epoch cache, from epoch %" PRId32 " at offset %" PRId64 " on",
                c->dir, epoch, start, removed, c->v[keep].epoch, c->v[keep].start_offset);
    c->v[keep] = (td_epoch_entry){epoch, start};
    c->n = keep + 1;
    return 1;
}

bool epochs_assign(td_epochs *c, int32_t epoch, int64_t start_offset)
{
    int rc = assign(c, epoch, start_offset);
    if (rc < 0)
        TD_ERROR("storage", "%s: no memory to record leader epoch %" PRId32 " at offset %" PRId64,
                 c->dir, epoch, start_offset);
    return rc > 0;
}

void epochs_observe_batch(td_epochs *c, int32_t leader_epoch, int64_t base_offset)
{
    if (leader_epoch >= 0 && (c->n == 0 || leader_epoch > c->v[c->n - 1].epoch))
        epochs_assign(c, leader_epoch, base_offset);
}

int32_t epochs_latest(const td_epochs *c)
{
    return c->n ? c->v[c->n - 1].epoch : TD_EPOCH_UNDEFINED;
}

/* The index of the first entry whose epoch is above `epoch`, c->n if none. */
static size_t first_above(const td_epochs *c, int32_t epoch)
{
    size_t lo = 0, hi = c->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->v[mid].epoch <= epoch)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void epochs_end_offset_for(const td_epochs *c, int32_t requested, int64_t log_end, int32_t *epoch,
                           int64_t *end_offset)
{
    *epoch = TD_EPOCH_UNDEFINED;
    *end_offset = TD_EPOCH_OFFSET_UNDEFINED;
    if (requested == TD_EPOCH_UNDEFINED)
        return; /* a bootstrapping follower, or one on an old message format */
    if (c->n && c->v[c->n - 1].epoch == requested) {
        /* The current epoch: it ends at the log end. */
        *epoch = requested;
        *end_offset = log_end;
        return;
    }
    size_t hi = first_above(c, requested);
    if (hi == c->n)
        return; /* above every epoch (or the cache is empty) */
    /* The largest epoch <= requested ends where the next one starts; with none (the requested
     * epoch's data is gone), Kafka answers the requested epoch itself and the first start. */
    *epoch = hi == 0 ? requested : c->v[hi - 1].epoch;
    *end_offset = c->v[hi].start_offset;
}

int32_t epochs_epoch_for_offset(const td_epochs *c, int64_t offset)
{
    int32_t prev = TD_EPOCH_UNDEFINED;
    for (size_t i = 0; i < c->n && c->v[i].start_offset <= offset; i++)
        prev = c->v[i].epoch;
    return prev;
}

void epochs_truncate_from_end(td_epochs *c, int64_t end_offset)
{
    if (end_offset < 0)
        return;
    while (c->n > 0 && c->v[c->n - 1].start_offset >= end_offset)
        c->n--;
}

void epochs_truncate_from_start(td_epochs *c, int64_t start_offset)
{
    size_t gone = 0;
    while (gone < c->n && c->v[gone].start_offset <= start_offset)
        gone++;
    if (gone == 0)
        return;
    /* The last entry at or below the new start covers it: it stays, starting there. */
    td_epoch_entry first = {c->v[gone - 1].epoch, start_offset};
    memmove(c->v + 1, c->v + gone, (c->n - gone) * sizeof(*c->v));
    c->v[0] = first;
    c->n -= gone - 1;
}

const td_epoch_entry *epochs_entries(const td_epochs *c, size_t *n)
{
    *n = c->n;
    return c->v;
}

/* ---------------------------------------------------------------------------------------------
 * The checkpoint file
 */

static void file_path(const td_epochs *c, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", c->dir, TD_EPOCHS_FILE);
}

static bool is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\v' || ch == '\f';
}

/* A decimal number as Java's parseInt/parseLong read it (an optional sign, digits), of all n
 * bytes at s, within [min, max]. */
static bool parse_num(const char *s, size_t n, int64_t min, int64_t max, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (n > 0 && (s[0] == '+' || s[0] == '-'))
        neg = s[i++] == '-';
    if (i == n)
        return false;
    /* The largest magnitude allowed: -min for a negative number, as an unsigned value. */
    uint64_t limit = !neg ? (uint64_t)max : min >= 0 ? 0 : (uint64_t)(-(min + 1)) + 1, v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > limit / 10 || (v == limit / 10 && d > limit % 10))
            return false;
        v = v * 10 + d;
    }
    *out = neg ? (v == 0 ? 0 : -(int64_t)(v - 1) - 1) : (int64_t)v;
    return true;
}

/* An entry line: two numbers separated by whitespace, whitespace after them allowed. */
static bool parse_entry(const char *s, size_t n, int64_t *epoch, int64_t *start)
{
    size_t a = 0;
    while (a < n && !is_space(s[a]))
        a++;
    size_t b = a;
    while (b < n && is_space(s[b]))
        b++;
    size_t e = b;
    while (e < n && !is_space(s[e]))
        e++;
    for (size_t i = e; i < n; i++)
        if (!is_space(s[i]))
            return false;
    return b > a && parse_num(s, a, INT32_MIN, INT32_MAX, epoch) &&
           parse_num(s + b, e - b, INT64_MIN, INT64_MAX, start);
}

static int corrupt(const char *path, int line, const char *what)
{
    return td_fail(TD_ECORRUPT, "%s: line %d: %s", path, line, what);
}

/* Reads the n bytes of a checkpoint file into c (see the rules at the top of this file). */
static int parse_file(td_epochs *c, const char *path, const char *b, size_t n)
{
    int line = 0;
    int64_t count = 0, seen = 0, v, start;
    char what[96];
    for (size_t at = 0; at < n;) {
        line++;
        const char *s = b + at, *nl = memchr(s, '\n', n - at);
        if (!nl)
            return corrupt(path, line, "has no newline: the file is torn");
        size_t len = (size_t)(nl - s);
        at += len + 1;
        if (line == 1) {
            if (!parse_num(s, len, INT32_MIN, INT32_MAX, &v))
                return corrupt(path, line, "is not a version number");
            if (v != 0) {
                snprintf(what, sizeof(what), "version %" PRId64 ", not 0", v);
                return corrupt(path, line, what);
            }
        } else if (line == 2) {
            if (!parse_num(s, len, 0, INT32_MAX, &count))
                return corrupt(path, line, "is not a count of entries");
        } else if (++seen > count) {
            snprintf(what, sizeof(what), "is past the %" PRId64 " entries line 2 counts", count);
            return corrupt(path, line, what);
        } else if (!parse_entry(s, len, &v, &start)) {
            return corrupt(path, line, "is not an epoch and an offset");
        } else if (v < 0 || start < 0) {
            return corrupt(path, line, "has a negative epoch or offset");
        } else if (assign(c, (int32_t)v, start) < 0) {
            return -ENOMEM;
        }
    }
    if (n > 0 && (line < 2 || seen < count)) {
        snprintf(what, sizeof(what), "is missing: line 2 counts %" PRId64 " entries", count);
        return corrupt(path, line + 1, line < 2 ? "is missing: the file is torn" : what);
    }
    return 0;
}

/* Reads DIR/leader-epoch-checkpoint into c: a missing file reads as empty. */
static int load(td_epochs *c)
{
    char path[PATH_MAX];
    file_path(c, path, sizeof(path));
    const td_io *io = c->io;
    int fd = io->open(io, path, O_RDONLY, 0);
    if (fd == -ENOENT)
        return 0;
    if (fd < 0)
        return td_fail(fd, "cannot open %s: %s", path, td_strerror(fd));
    int64_t size = 0;
    char *b = NULL;
    int rc = io->fsize(io, fd, &size);
    if (rc == 0 && size > EPOCHS_FILE_MAX)
        rc =
            td_fail(TD_ECORRUPT, "%s: %" PRId64 " bytes, more than a checkpoint holds", path, size);
    else if (rc == 0 && !(b = malloc((size_t)size + 1)))
        rc = -ENOMEM;
    else if (rc == 0)
        rc = td_io_read_all(io, fd, b, (size_t)size, 0);
    io->close(io, fd);
    if (rc == TD_EEND)
        rc = td_fail(TD_ECORRUPT, "%s: shorter than its size", path);
    else if (rc == 0)
        rc = parse_file(c, path, b, (size_t)size);
    else if (rc != TD_ECORRUPT)
        rc = td_fail(rc, "cannot read %s: %s", path, td_strerror(rc));
    free(b);
    return rc;
}

int epochs_open(const td_io *io, const char *dir, td_epochs **out)
{
    *out = NULL;
    td_epochs *c = calloc(1, sizeof(*c));
    if (!c || !(c->dir = strdup(dir))) {
        free(c);
        return -ENOMEM;
    }
    c->io = io;
    int rc = load(c);
    if (rc) {
        epochs_close(c);
        return rc;
    }
    *out = c;
    return 0;
}

void epochs_close(td_epochs *c)
{
    if (!c)
        return;
    free(c->v);
    free(c->dir);
    free(c);
}

/* The file's text: the version, the count, an entry a line. */
static int format(const td_epochs *c, td_buf *b)
{
    char line[48];
    int k = snprintf(line, sizeof(line), "0\n%zu\n", c->n);
    int rc = td_buf_append(b, line, (size_t)k);
    for (size_t i = 0; rc == 0 && i < c->n; i++) {
        k = snprintf(line, sizeof(line), "%" PRId32 " %" PRId64 "\n", c->v[i].epoch,
                     c->v[i].start_offset);
        rc = td_buf_append(b, line, (size_t)k);
    }
    return rc;
}

int epochs_flush(td_epochs *c)
{
    char path[PATH_MAX];
    file_path(c, path, sizeof(path));
    td_buf b;
    td_buf_init(&b);
    int rc = format(c, &b);
    if (rc == 0)
        rc = td_io_replace_file(c->io, path, b.p, b.len);
    td_buf_free(&b);
    if (rc)
        return td_fail(rc, "cannot write %s: %s", path, td_strerror(rc));
    /* The rename durable too: an old file back after a power loss would name epochs that a
     * truncation removed, or lack one that an assign added. */
    rc = c->io->sync_dir(c->io, c->dir);
    if (rc)
        return td_fail(rc, "cannot sync the directory of %s: %s", path, td_strerror(rc));
    return 0;
}
