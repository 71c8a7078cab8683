/*
 * reserve.c: the disk reserve, a file (DIR/reserve) that holds a few MiB of the data
 * directory's file system so that the operations which free space can still run when the disk
 * is full (see docs/storage.md#a-full-disk and docs/operations.md#disk).
 *
 * Why a file and not free space we merely promise ourselves: on a full disk, deleting a topic or
 * records needs a little space before it can free any. The catalog's SQLite transaction appends
 * frames to its write-ahead log; DeleteRecords writes log-start-offset through a temporary file;
 * removing a segment of a stream rewrites stream-anchors. Any of them fails with ENOSPC when
 * producers took the last block. Space we own in a file cannot be taken: when such an operation
 * fails with ENOSPC, the caller releases the reserve (truncates the file to zero) and retries,
 * and the file system now has the reserve's size free. This is what databases call a ballast
 * file.
 *
 * While the reserve is not whole, appends are refused with -ENOSPC (part.c asks
 * reserve_whole()): the space it released is for the operation that frees space, not for the
 * producers that filled the disk, and the next full disk must find the reserve in place again.
 * reserve_restore() grows the file back to its size; the engine calls it after each operation
 * that freed space and from its background thread, so appends resume as soon as the file system
 * has the reserve's size free again, without a restart.
 *
 * The file is written (pwrite through the io table, then fsync), not fallocated: every file
 * system and the test tables support that, and on file systems with delayed allocation the
 * blocks are reserved at write time. Its bytes are a pseudo-random pattern, not zeros: file
 * systems that compress (btrfs, ZFS) or detect zero blocks (ZFS) would store zeros in no space
 * at all, and the reserve would hold nothing. It is written in 256 KiB steps; a step that fails
 * with ENOSPC keeps what was written (the reserve is then partial, and not whole).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/storage.h"

#define RESERVE_FILE "reserve"
#define RESERVE_STEP (256 << 10)

struct td_reserve {
    const td_io *io;
    pthread_mutex_t mu;
    char *path;
    int64_t want; /* the size it should have */
    int64_t have; /* its size now (under mu) */
    int whole;    /* atomic: have >= want */
};

static void set_whole(td_reserve *r)
{
    __atomic_store_n(&r->whole, r->have >= r->want, __ATOMIC_RELEASE);
}

/* The reserve's bytes: xorshift64, so that no file system can compress them away. */
static uint8_t fill[RESERVE_STEP];

static void fill_init(void)
{
    uint64_t x = 0x9E3779B97F4A7C15u;
    for (size_t i = 0; i < sizeof(fill); i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(fill + i, &x, 8);
    }
}

/* Grows the file to r->want. Caller holds mu. 0 when whole; -ENOSPC (or another -errno) when
 * it could not get there, keeping what it wrote. */
static int grow_locked(td_reserve *r)
{
    if (r->have >= r->want)
        return 0;
    const td_io *io = r->io;
    int fd = io->open(io, r->path, O_RDWR | O_CREAT, 0644);
    if (fd < 0)
        return fd;
    static pthread_once_t fill_once = PTHREAD_ONCE_INIT;
    pthread_once(&fill_once, fill_init);
    int rc = 0;
    int64_t at = 0;
    if ((rc = io->fsize(io, fd, &at)) == 0 && at > r->have)
        r->have = at; /* another writer cannot exist (the data directory is locked) */
    while (rc == 0 && r->have < r->want) {
        size_t n = (size_t)TD_MIN((int64_t)RESERVE_STEP, r->want - r->have);
        rc = td_io_write_all(io, fd, fill, n, r->have);
        if (rc) {
            /* A step torn by ENOSPC: keep the file at a whole step, which is what we count. */
            io->ftruncate(io, fd, r->have);
            break;
        }
        r->have += (int64_t)n;
    }
    /* The blocks must be allocated, not just promised: fsync also settles delayed allocation. */
    int src = io->fsync(io, fd);
    if (rc == 0)
        rc = src;
    io->close(io, fd);
    return rc;
}

int reserve_open(const td_io *io, const char *dir, int64_t bytes, td_reserve **out)
{
    *out = NULL;
    td_reserve *r = calloc(1, sizeof(*r));
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", dir, RESERVE_FILE);
    if (!r || !(r->path = strdup(path))) {
        free(r);
        return -ENOMEM;
    }
    r->io = io;
    pthread_mutex_init(&r->mu, NULL);
    int rc = 0;
    int fd = io->open(io, path, O_RDWR, 0);
    if (fd >= 0) {
        rc = io->fsize(io, fd, &r->have);
        if (rc == 0 && bytes >= 0 && r->have > bytes) {
            rc = io->ftruncate(io, fd, bytes); /* configured smaller since */
            if (rc == 0)
                r->have = bytes;
        }
        io->close(io, fd);
    } else if (fd != -ENOENT) {
        rc = fd;
    }
    if (rc) {
        reserve_close(r);
        return td_fail(rc, "cannot open the disk reserve %s: %s", path, td_strerror(rc));
    }
    /* bytes < 0: keep the reserve as the broker sized it (the command line's local mode). */
    r->want = bytes >= 0 ? bytes : r->have;
    if (bytes == 0 && (rc = io->unlink(io, path)) != 0 && rc != -ENOENT) {
        reserve_close(r);
        return td_fail(rc, "cannot remove the disk reserve %s: %s", path, td_strerror(rc));
    }
    rc = grow_locked(r);
    set_whole(r);
    if (rc == -ENOSPC)
        TD_WARN("storage",
                "the disk is full: the disk reserve %s has %" PRId64 " of its %" PRId64
                " bytes; appends are refused until it is whole (free space by deleting topics "
                "or records)",
                path, r->have, r->want);
    else if (rc) {
        reserve_close(r);
        return td_fail(rc, "cannot write the disk reserve %s: %s", path, td_strerror(rc));
    }
    *out = r;
    return 0;
}

void reserve_close(td_reserve *r)
{
    if (!r)
        return;
    pthread_mutex_destroy(&r->mu);
    free(r->path);
    free(r);
}

bool reserve_whole(const td_reserve *r)
{
    return !r || __atomic_load_n(&r->whole, __ATOMIC_ACQUIRE);
}

int reserve_check(td_reserve *r)
{
    if (reserve_whole(r))
        return 0;
    int64_t have, want;
    reserve_state(r, &have, &want);
    return td_fail(-ENOSPC,
                   "the disk is full: appends are refused until the disk reserve %s is whole "
                   "again (it has %" PRId64 " of %" PRId64 " bytes); free space by deleting "
                   "topics or records",
                   r->path, have, want);
}

int reserve_release(td_reserve *r, const char *why)
{
    if (!r)
        return -ENOSPC;
    pthread_mutex_lock(&r->mu);
    int rc = -ENOSPC; /* nothing to give: a retry would fail the same way */
    if (r->have > 0) {
        const td_io *io = r->io;
        int fd = io->open(io, r->path, O_RDWR, 0);
        rc = fd < 0 ? fd : io->ftruncate(io, fd, 0);
        if (fd >= 0)
            io->close(io, fd);
        if (rc == 0) {
            TD_WARN("storage",
                    "the disk is full: released the disk reserve (%" PRId64
                    " bytes) for %s; appends are refused until it is whole again",
                    r->have, why);
            r->have = 0;
        } else {
            TD_ERROR("storage", "cannot release the disk reserve %s: %s", r->path,
                     td_strerror(rc));
            rc = -ENOSPC;
        }
    }
    set_whole(r);
    pthread_mutex_unlock(&r->mu);
    return rc;
}

int reserve_restore(td_reserve *r)
{
    if (!r || reserve_whole(r))
        return 0;
    pthread_mutex_lock(&r->mu);
    bool was = r->have >= r->want;
    int rc = grow_locked(r);
    set_whole(r);
    if (!was && r->have >= r->want)
        TD_INFO("storage", "the disk reserve is whole again (%" PRId64 " bytes): appends resume",
                r->have);
    pthread_mutex_unlock(&r->mu);
    return rc;
}

void reserve_state(td_reserve *r, int64_t *have, int64_t *want)
{
    pthread_mutex_lock(&r->mu);
    *have = r->have;
    *want = r->want;
    pthread_mutex_unlock(&r->mu);
}
