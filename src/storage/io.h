/*
 * io.h: the table of file operations that all storage I/O goes through (as SQLite's VFS).
 *
 * The POSIX table is what the engine uses. Tests substitute a table that keeps files in memory
 * and, on a simulated crash, keeps only what was fsynced plus a torn prefix of what was not
 * (tests/crash), or one that fails writes with ENOSPC.
 *
 * Every operation returns >= 0 on success and -errno on failure. File descriptors are opaque
 * ints owned by the table; only the POSIX table's are real descriptors (io->real_fds), which is
 * what zero-copy sends (sendfile) need.
 */
#ifndef TD_STORAGE_IO_H
#define TD_STORAGE_IO_H

#include <sys/types.h>

#include "base/base.h"

typedef struct td_io td_io;

struct td_io {
    void *ctx;
    bool real_fds; /* descriptors are kernel fds (sendfile, mmap work on them) */
    /* open(2) flags: O_RDONLY, O_RDWR, O_CREAT, O_EXCL, O_TRUNC are honoured. */
    int (*open)(const td_io *io, const char *path, int flags, int mode);
    int (*close)(const td_io *io, int fd);
    /* Reads/writes up to n bytes at off; returns the count (short only at end of file for
     * reads; a write either writes all n bytes or fails, possibly having written a prefix). */
    ssize_t (*pread)(const td_io *io, int fd, void *buf, size_t n, int64_t off);
    ssize_t (*pwrite)(const td_io *io, int fd, const void *buf, size_t n, int64_t off);
    /* Makes the file's data durable (fdatasync). */
    int (*fsync)(const td_io *io, int fd);
    int (*ftruncate)(const td_io *io, int fd, int64_t len);
    int (*fsize)(const td_io *io, int fd, int64_t *size);
    int (*unlink)(const td_io *io, const char *path);
    int (*rename)(const td_io *io, const char *from, const char *to);
    int (*mkdir)(const td_io *io, const char *path, int mode); /* -EEXIST if it exists */
    int (*rmdir)(const td_io *io, const char *path);
    /* Calls cb for each entry name of dir except "." and ".."; stops early if cb returns
     * non-zero and returns that value. */
    int (*list)(const td_io *io, const char *dir, int (*cb)(void *arg, const char *name),
                void *arg);
    /* Makes directory entries (creations, renames, unlinks) in dir durable. */
    int (*sync_dir)(const td_io *io, const char *dir);
};

/* The real file system. Static storage. */
const td_io *td_io_posix(void);

/* Writes all n bytes at off (loops over short writes). 0 or -errno. */
int td_io_write_all(const td_io *io, int fd, const void *buf, size_t n, int64_t off);
/* Replaces path's contents with data, whole or not at all: path.tmp written, fsynced and
 * renamed over path (the rename is durable once the caller syncs the directory). 0 or -errno;
 * path.tmp is removed on failure. */
int td_io_replace_file(const td_io *io, const char *path, const void *data, size_t n);
/* Reads exactly n bytes at off: 0, TD_EEND if the file ends first, or -errno. */
int td_io_read_all(const td_io *io, int fd, void *buf, size_t n, int64_t off);
/* mkdir -p through the table. */
int td_io_mkdirs(const td_io *io, const char *path, int mode);
/* rm -r through the table. */
int td_io_remove_tree(const td_io *io, const char *path);

#endif /* TD_STORAGE_IO_H */
