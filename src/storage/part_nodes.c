/*
 * part_nodes.c: the partition's stream-nodes file, where the Redis front end keeps its model of
 * Redis's stream nodes across restarts (docs/storage.md, docs/redis.md#the-node-model).
 *
 * Storage does not read the file's contents: it keeps the file with the partition (so deleting
 * the topic deletes it), appends to it, and replaces it whole. The writer (one per partition:
 * the front end's model lock) frames and checks its records itself, so a torn append is found
 * by the reader, who then rewrites the file from what it trusts.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "storage/part_int.h"

static void nodes_path(const td_part *p, char *path, size_t n)
{
    snprintf(path, n, "%s/%s", p->dir, NODES_FILE);
}

int part_nodes_read(td_part *p, uint8_t **out, size_t *n)
{
    char path[PATH_MAX];
    nodes_path(p, path, sizeof(path));
    *out = NULL;
    *n = 0;
    int rc = read_file(p, path, out, n);
    if (rc == -ENOENT)
        return TD_ENOTFOUND;
    if (rc)
        return td_fail(rc, "cannot read %s: %s", path, td_strerror(rc));
    return 0;
}

int part_nodes_append(td_part *p, const void *b, size_t n, bool sync)
{
    char path[PATH_MAX];
    nodes_path(p, path, sizeof(path));
    const td_io *io = p->io;
    int fd = io->open(io, path, O_RDWR | O_CREAT, 0644);
    if (fd < 0)
        return td_fail(fd, "cannot open %s: %s", path, td_strerror(fd));
    int64_t size = 0;
    int rc = io->fsize(io, fd, &size);
    if (rc == 0)
        rc = td_io_write_all(io, fd, b, n, size);
    if (rc == 0 && sync)
        rc = io->fsync(io, fd);
    io->close(io, fd);
    if (rc == 0 && sync && size == 0)
        rc = io->sync_dir(io, p->dir);
    if (rc)
        return td_fail(rc, "cannot write %s: %s", path, td_strerror(rc));
    return 0;
}

int part_nodes_rewrite(td_part *p, const void *b, size_t n)
{
    char path[PATH_MAX];
    nodes_path(p, path, sizeof(path));
    int rc = write_file_atomic(p, path, b, n);
    if (rc == 0)
        rc = p->io->sync_dir(p->io, p->dir);
    if (rc)
        return td_fail(rc, "cannot write %s: %s", path, td_strerror(rc));
    return 0;
}
