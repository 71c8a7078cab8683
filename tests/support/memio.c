/* memio.c: the crash-simulating in-memory io table (see memio.h). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "support/memio.h"

typedef struct op {
    bool truncate;
    int64_t off; /* write offset, or the truncated length */
    uint8_t *data;
    size_t len;
} op;

typedef struct mfile {
    char *path;
    bool unlinked;
    td_buf durable;
    td_buf current;
    op *ops;
    size_t nops, cap;
} mfile;

#define MAX_FILES 4096
#define MAX_FDS 1024

struct memio {
    td_io io;
    pthread_mutex_t mu;
    mfile *files[MAX_FILES];
    size_t nfiles;
    char *dirs[MAX_FILES];
    size_t ndirs;
    mfile *fds[MAX_FDS];
    int64_t fail_after;
    bool dead;
    bool dir_ops_count; /* unlink and rename are failure points too (memio_count_dir_ops) */
    int64_t fsyncs;
};

static memio *M(const td_io *io)
{
    return io->ctx;
}

static mfile *find(memio *m, const char *path)
{
    for (size_t i = 0; i < m->nfiles; i++)
        if (!m->files[i]->unlinked && strcmp(m->files[i]->path, path) == 0)
            return m->files[i];
    return NULL;
}

static bool dir_exists(memio *m, const char *path)
{
    for (size_t i = 0; i < m->ndirs; i++)
        if (strcmp(m->dirs[i], path) == 0)
            return true;
    return false;
}

/* Counts a mutating operation; false if the machine is dead. */
static bool tick(memio *m)
{
    if (m->dead)
        return false;
    if (m->fail_after >= 0 && m->fail_after-- == 0) {
        m->dead = true;
        return false;
    }
    return true;
}

static void set_len(td_buf *b, size_t len)
{
    if (len > b->len) {
        td_buf_reserve(b, len - b->len);
        memset(b->p + b->len, 0, len - b->len);
    }
    b->len = len;
}

static void apply_write(td_buf *b, int64_t off, const void *p, size_t n)
{
    if ((size_t)off + n > b->len)
        set_len(b, (size_t)off + n);
    memcpy(b->p + off, p, n);
}

static int m_open(const td_io *io, const char *path, int flags, int mode)
{
    (void)mode;
    memio *m = M(io);
    pthread_mutex_lock(&m->mu);
    int rc;
    mfile *f = find(m, path);
    if (f && (flags & O_CREAT) && (flags & O_EXCL)) {
        rc = -EEXIST;
        goto out;
    }
    if (!f) {
        if (!(flags & O_CREAT)) {
            rc = -ENOENT;
            goto out;
        }
        if (m->nfiles == MAX_FILES) {
            rc = -ENOSPC;
            goto out;
        }
        f = calloc(1, sizeof(*f));
        f->path = strdup(path);
        m->files[m->nfiles++] = f;
    }
    if (flags & O_TRUNC) {
        f->current.len = 0;
        f->durable.len = 0; /* simplification: a truncating create is durable at once */
        for (size_t i = 0; i < f->nops; i++)
            free(f->ops[i].data); /* the writes it drops */
        f->nops = 0;
    }
    rc = -EMFILE;
    for (int fd = 3; fd < MAX_FDS; fd++)
        if (!m->fds[fd]) {
            m->fds[fd] = f;
            rc = fd;
            break;
        }
out:
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static int m_close(const td_io *io, int fd)
{
    memio *m = M(io);
    pthread_mutex_lock(&m->mu);
    m->fds[fd] = NULL;
    pthread_mutex_unlock(&m->mu);
    return 0;
}

static ssize_t m_pread(const td_io *io, int fd, void *buf, size_t n, int64_t off)
{
    memio *m = M(io);
    pthread_mutex_lock(&m->mu);
    mfile *f = m->fds[fd];
    ssize_t r = 0;
    if (!f)
        r = -EBADF;
    else if ((size_t)off < f->current.len) {
        r = (ssize_t)TD_MIN(n, f->current.len - (size_t)off);
        memcpy(buf, f->current.p + off, (size_t)r);
    }
    pthread_mutex_unlock(&m->mu);
    return r;
}

static ssize_t m_pwrite(const td_io *io, int fd, const void *buf, size_t n, int64_t off)
{
    memio *m = M(io);
    pthread_mutex_lock(&m->mu);
    mfile *f = m->fds[fd];
    ssize_t r = (ssize_t)n;
    if (!f) {
        r = -EBADF;
    } else if (!tick(m)) {
        r = -EIO;
    } else {
        apply_write(&f->current, off, buf, n);
        if (f->nops == f->cap) {
            f->cap = f->cap ? f->cap * 2 : 16;
            f->ops = realloc(f->ops, f->cap * sizeof(*f->ops));
        }
        op *o = &f->ops[f->nops++];
        o->truncate = false;
        o->off = off;
        o->len = n;
        o->data = malloc(n ? n : 1);
        memcpy(o->data, buf, n);
    }
    pthread_mutex_unlock(&m->mu);
    return r;
}

static void clear_ops(mfile *f)
{
    for (size_t i = 0; i < f->nops; i++)
        free(f->ops[i].data);
    f->nops = 0;
}

static int m_fsync(const td_io *io, int fd)
{
    memio *m = M(io);
    pthread_mutex_lock(&m->mu);
    mfile *f = m->fds[fd];
    int rc = 0;
    if (!f) {
        rc = -EBADF;
    } else if (!tick(m)) {
        rc = -EIO;
    } else {
        td_buf_reset(&f->durable);
        td_buf_append(&f->durable, f->current.p, f->current.len);
        clear_ops(f);
        m->fsyncs++;
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static int m_ftruncate(const td_io *io, int fd, int64_t len)
{
    memio *m = M(io);
    pthread_mutex_lock(&m->mu);
    mfile *f = m->fds[fd];
    int rc = 0;
    if (!f) {
        rc = -EBADF;
    } else if (!tick(m)) {
        rc = -EIO;
    } else {
        set_len(&f->current, (size_t)len);
        if (f->nops == f->cap) {
            f->cap = f->cap ? f->cap * 2 : 16;
            f->ops = realloc(f->ops, f->cap * sizeof(*f->ops));
        }
        f->ops[f->nops++] = (op){true, len, NULL, 0};
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static int m_fsize(const td_io *io, int fd, int64_t *size)
{
    memio *m = M(io);
    pthread_mutex_lock(&m->mu);
    mfile *f = m->fds[fd];
    if (f)
        *size = (int64_t)f->current.len;
    pthread_mutex_unlock(&m->mu);
    return f ? 0 : -EBADF;
}

static int m_unlink(const td_io *io, const char *path)
{
    memio *m = M(io);
    pthread_mutex_lock(&m->mu);
    if (m->dir_ops_count && !tick(m)) {
        pthread_mutex_unlock(&m->mu);
        return -EIO;
    }
    mfile *f = find(m, path);
    if (f)
        f->unlinked = true;
    pthread_mutex_unlock(&m->mu);
    return f ? 0 : -ENOENT;
}

static int m_rename(const td_io *io, const char *from, const char *to)
{
    memio *m = M(io);
    pthread_mutex_lock(&m->mu);
    if (m->dir_ops_count && !tick(m)) {
        pthread_mutex_unlock(&m->mu);
        return -EIO;
    }
    mfile *f = find(m, from);
    int rc = -ENOENT;
    if (f) {
        mfile *t = find(m, to);
        if (t)
            t->unlinked = true;
        free(f->path);
        f->path = strdup(to);
        rc = 0;
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static int m_mkdir(const td_io *io, const char *path, int mode)
{
    (void)mode;
    memio *m = M(io);
    pthread_mutex_lock(&m->mu);
    int rc = 0;
    if (dir_exists(m, path))
        rc = -EEXIST;
    else
        m->dirs[m->ndirs++] = strdup(path);
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static int m_rmdir(const td_io *io, const char *path)
{
    memio *m = M(io);
    pthread_mutex_lock(&m->mu);
    int rc = -ENOENT;
    for (size_t i = 0; i < m->ndirs; i++)
        if (strcmp(m->dirs[i], path) == 0) {
            free(m->dirs[i]);
            m->dirs[i] = m->dirs[--m->ndirs];
            rc = 0;
            break;
        }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static int m_list(const td_io *io, const char *dir, int (*cb)(void *, const char *), void *arg)
{
    memio *m = M(io);
    pthread_mutex_lock(&m->mu);
    if (!dir_exists(m, dir)) {
        pthread_mutex_unlock(&m->mu);
        return -ENOENT;
    }
    size_t dl = strlen(dir);
    char **names = calloc(m->nfiles + m->ndirs + 1, sizeof(char *));
    size_t n = 0;
    for (size_t i = 0; i < m->nfiles; i++) {
        const char *p = m->files[i]->path;
        if (!m->files[i]->unlinked && strncmp(p, dir, dl) == 0 && p[dl] == '/' &&
            !strchr(p + dl + 1, '/'))
            names[n++] = strdup(p + dl + 1);
    }
    for (size_t i = 0; i < m->ndirs; i++) {
        const char *p = m->dirs[i];
        if (strncmp(p, dir, dl) == 0 && p[dl] == '/' && !strchr(p + dl + 1, '/'))
            names[n++] = strdup(p + dl + 1);
    }
    pthread_mutex_unlock(&m->mu);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (!rc)
            rc = cb(arg, names[i]);
        free(names[i]);
    }
    free(names);
    return rc;
}

static int m_sync_dir(const td_io *io, const char *dir)
{
    (void)io;
    (void)dir;
    return 0;
}

memio *memio_new(void)
{
    memio *m = calloc(1, sizeof(*m));
    pthread_mutex_init(&m->mu, NULL);
    m->fail_after = -1;
    m->io = (td_io){.ctx = m, .real_fds = false, .open = m_open, .close = m_close,
                    .pread = m_pread, .pwrite = m_pwrite, .fsync = m_fsync,
                    .ftruncate = m_ftruncate, .fsize = m_fsize, .unlink = m_unlink,
                    .rename = m_rename, .mkdir = m_mkdir, .rmdir = m_rmdir, .list = m_list,
                    .sync_dir = m_sync_dir};
    return m;
}

const td_io *memio_table(memio *m)
{
    return &m->io;
}

void memio_count_dir_ops(memio *m, bool on)
{
    pthread_mutex_lock(&m->mu);
    m->dir_ops_count = on;
    pthread_mutex_unlock(&m->mu);
}

void memio_fail_after(memio *m, int64_t ops)
{
    pthread_mutex_lock(&m->mu);
    m->fail_after = ops;
    pthread_mutex_unlock(&m->mu);
}

bool memio_dead(memio *m)
{
    pthread_mutex_lock(&m->mu);
    bool d = m->dead;
    pthread_mutex_unlock(&m->mu);
    return d;
}

int64_t memio_fsyncs(memio *m)
{
    return m->fsyncs;
}

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

void memio_crash(memio *m, uint64_t seed)
{
    uint64_t s = seed * 2654435761u + 1;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->nfiles; i++) {
        mfile *f = m->files[i];
        size_t k = (size_t)(rnd(&s) % (f->nops + 1));
        td_buf_reset(&f->current);
        td_buf_append(&f->current, f->durable.p, f->durable.len);
        for (size_t j = 0; j < k; j++) {
            op *o = &f->ops[j];
            if (o->truncate)
                set_len(&f->current, (size_t)o->off);
            else
                apply_write(&f->current, o->off, o->data, o->len);
        }
        if (k < f->nops && !f->ops[k].truncate && f->ops[k].len > 0) {
            size_t torn = (size_t)(rnd(&s) % f->ops[k].len);
            apply_write(&f->current, f->ops[k].off, f->ops[k].data, torn);
        }
        td_buf_reset(&f->durable);
        td_buf_append(&f->durable, f->current.p, f->current.len);
        clear_ops(f);
    }
    memset(m->fds, 0, sizeof(m->fds));
    m->dead = false;
    m->fail_after = -1;
    pthread_mutex_unlock(&m->mu);
}

void memio_free(memio *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nfiles; i++) {
        mfile *f = m->files[i];
        clear_ops(f);
        free(f->ops);
        td_buf_free(&f->durable);
        td_buf_free(&f->current);
        free(f->path);
        free(f);
    }
    for (size_t i = 0; i < m->ndirs; i++)
        free(m->dirs[i]);
    pthread_mutex_destroy(&m->mu);
    free(m);
}
