/*
 * io_posix.c: the real file system behind the td_io operations table, and helpers that work
 * over any table (write-all, read-all, mkdir -p, rm -r).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/io.h"

static int px_open(const td_io *io, const char *path, int flags, int mode)
{
    (void)io;
    int fd;
    do
        fd = open(path, flags | O_CLOEXEC, mode);
    while (fd < 0 && errno == EINTR);
    return fd < 0 ? -errno : fd;
}

static int px_close(const td_io *io, int fd)
{
    (void)io;
    return close(fd) < 0 && errno != EINTR ? -errno : 0;
}

static ssize_t px_pread(const td_io *io, int fd, void *buf, size_t n, int64_t off)
{
    (void)io;
    ssize_t r;
    do
        r = pread(fd, buf, n, (off_t)off);
    while (r < 0 && errno == EINTR);
    return r < 0 ? -errno : r;
}

static ssize_t px_pwrite(const td_io *io, int fd, const void *buf, size_t n, int64_t off)
{
    (void)io;
    ssize_t r;
    do
        r = pwrite(fd, buf, n, (off_t)off);
    while (r < 0 && errno == EINTR);
    return r < 0 ? -errno : r;
}

static int px_fsync(const td_io *io, int fd)
{
    (void)io;
    return fdatasync(fd) < 0 ? -errno : 0;
}

static int px_ftruncate(const td_io *io, int fd, int64_t len)
{
    (void)io;
    int r;
    do
        r = ftruncate(fd, (off_t)len);
    while (r < 0 && errno == EINTR);
    return r < 0 ? -errno : 0;
}

static int px_fsize(const td_io *io, int fd, int64_t *size)
{
    (void)io;
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    *size = st.st_size;
    return 0;
}

static int px_unlink(const td_io *io, const char *path)
{
    (void)io;
    return unlink(path) < 0 ? -errno : 0;
}

static int px_rename(const td_io *io, const char *from, const char *to)
{
    (void)io;
    return rename(from, to) < 0 ? -errno : 0;
}

static int px_mkdir(const td_io *io, const char *path, int mode)
{
    (void)io;
    return mkdir(path, (mode_t)mode) < 0 ? -errno : 0;
}

static int px_rmdir(const td_io *io, const char *path)
{
    (void)io;
    return rmdir(path) < 0 ? -errno : 0;
}

static int px_list(const td_io *io, const char *dir, int (*cb)(void *arg, const char *name),
                   void *arg)
{
    (void)io;
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        rc = cb(arg, e->d_name);
        if (rc)
            break;
    }
    closedir(d);
    return rc;
}

static int px_sync_dir(const td_io *io, const char *dir)
{
    (void)io;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

static const td_io posix_io = {
    .ctx = NULL,
    .real_fds = true,
    .open = px_open,
    .close = px_close,
    .pread = px_pread,
    .pwrite = px_pwrite,
    .fsync = px_fsync,
    .ftruncate = px_ftruncate,
    .fsize = px_fsize,
    .unlink = px_unlink,
    .rename = px_rename,
    .mkdir = px_mkdir,
    .rmdir = px_rmdir,
    .list = px_list,
    .sync_dir = px_sync_dir,
};

const td_io *td_io_posix(void)
{
    return &posix_io;
}

int td_io_write_all(const td_io *io, int fd, const void *buf, size_t n, int64_t off)
{
    const uint8_t *p = buf;
    while (n > 0) {
        ssize_t w = io->pwrite(io, fd, p, n, off);
        if (w < 0)
            return (int)w;
        if (w == 0)
            return -EIO;
        p += w;
        n -= (size_t)w;
        off += w;
    }
    return 0;
}

int td_io_replace_file(const td_io *io, const char *path, const void *data, size_t n)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
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

int td_io_read_all(const td_io *io, int fd, void *buf, size_t n, int64_t off)
{
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t r = io->pread(io, fd, p, n, off);
        if (r < 0)
            return (int)r;
        if (r == 0)
            return TD_EEND;
        p += r;
        n -= (size_t)r;
        off += r;
    }
    return 0;
}

int td_io_mkdirs(const td_io *io, const char *path, int mode)
{
    char buf[PATH_MAX];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof(buf))
        return -ENAMETOOLONG;
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == 0) {
            char c = buf[i];
            buf[i] = 0;
            int rc = io->mkdir(io, buf, mode);
            if (rc && rc != -EEXIST)
                return rc;
            buf[i] = c;
        }
    }
    return 0;
}

struct rm_ctx {
    const td_io *io;
    const char *dir;
    int rc;
};

static int rm_entry(void *arg, const char *name)
{
    struct rm_ctx *c = arg;
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", c->dir, name) >= sizeof(path))
        return -ENAMETOOLONG;
    int rc = c->io->unlink(c->io, path);
    if (rc == -EISDIR || rc == -EPERM)
        rc = td_io_remove_tree(c->io, path);
    if (rc && rc != -ENOENT)
        c->rc = rc;
    return 0;
}

int td_io_remove_tree(const td_io *io, const char *path)
{
    struct rm_ctx c = {io, path, 0};
    int rc = io->list(io, path, rm_entry, &c);
    if (rc == -ENOENT)
        return 0;
    if (rc == -ENOTDIR)
        return io->unlink(io, path);
    if (rc)
        return rc;
    if (c.rc)
        return c.rc;
    rc = io->rmdir(io, path);
    return rc == -ENOENT ? 0 : rc;
}
