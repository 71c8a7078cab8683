/* gaplog.c: hand-made compacted logs for tests (gaplog.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "support/gaplog.h"

const int64_t gaplog_offsets[GAPLOG_RECORDS] = {1, 3, 13, 14, 22, 25};

static int append_bytes(td_buf *b, const char *s)
{
    if (!s)
        return td_buf_append_varint(b, -1);
    int rc = td_buf_append_varint(b, (int32_t)strlen(s));
    return rc ? rc : td_buf_append(b, s, strlen(s));
}

int gaplog_batch(td_buf *out, int64_t base, int32_t last_delta, const gap_rec *v, size_t n,
                 int64_t ts)
{
    td_buf recs, one;
    td_buf_init(&recs);
    td_buf_init(&one);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        td_buf_reset(&one);
        uint8_t attr = 0;
        rc = td_buf_append(&one, &attr, 1);
        if (rc == 0)
            rc = td_buf_append_varlong(&one, v[i].delta);
        if (rc == 0)
            rc = td_buf_append_varint(&one, v[i].delta);
        if (rc == 0)
            rc = append_bytes(&one, v[i].key);
        if (rc == 0)
            rc = append_bytes(&one, v[i].value);
        if (rc == 0)
            rc = td_buf_append_varint(&one, 0);
        if (rc == 0)
            rc = td_buf_append_varint(&recs, (int32_t)one.len);
        if (rc == 0)
            rc = td_buf_append(&recs, one.p, one.len);
    }
    uint8_t h[TD_BATCH_HEADER_SIZE] = {0};
    td_store_be64(h, (uint64_t)base);
    td_store_be32(h + 8, (uint32_t)(TD_BATCH_HEADER_SIZE - TD_BATCH_LOG_OVERHEAD + recs.len));
    h[16] = TD_BATCH_MAGIC;
    td_store_be32(h + 23, (uint32_t)last_delta);
    td_store_be64(h + 27, (uint64_t)ts);
    td_store_be64(h + 35, (uint64_t)(ts + last_delta));
    td_store_be64(h + 43, UINT64_MAX); /* producer id -1 */
    td_store_be16(h + 51, UINT16_MAX);
    td_store_be32(h + 53, UINT32_MAX);
    td_store_be32(h + 57, (uint32_t)n);
    size_t at = out->len;
    if (rc == 0)
        rc = td_buf_append(out, h, sizeof(h));
    if (rc == 0)
        rc = td_buf_append(out, recs.p, recs.len);
    if (rc == 0)
        batch_update_crc(out->p + at, out->len - at);
    td_buf_free(&recs);
    td_buf_free(&one);
    return rc;
}

int gaplog_write_segment(const char *dir, int64_t base, const td_buf *batches)
{
    static const char *const ext[] = {".index", ".timeindex"};
    char path[4096];
    for (size_t i = 0; i < 2; i++) {
        snprintf(path, sizeof(path), "%s/%020" PRId64 "%s", dir, base, ext[i]);
        unlink(path);
    }
    snprintf(path, sizeof(path), "%s/%020" PRId64 ".log", dir, base);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return -errno;
    size_t off = 0;
    while (off < batches->len) {
        ssize_t w = write(fd, batches->p + off, batches->len - off);
        if (w <= 0) {
            int e = w < 0 ? -errno : -EIO;
            close(fd);
            return e;
        }
        off += (size_t)w;
    }
    int rc = fsync(fd) ? -errno : 0;
    close(fd);
    return rc;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

/* Removes the segment, index, snapshot and recovery files of dir. */
static int clear_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    struct dirent *de;
    char path[4096];
    while ((de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        if (ends_with(n, ".log") || ends_with(n, ".index") || ends_with(n, ".timeindex") ||
            ends_with(n, ".snapshot") || !strcmp(n, "recovery-point") ||
            !strcmp(n, "log-start-offset")) {
            snprintf(path, sizeof(path), "%s/%s", dir, n);
            unlink(path);
        }
    }
    closedir(d);
    return 0;
}

int gaplog_write_standard(const char *dir)
{
    int rc = clear_dir(dir);
    if (rc)
        return rc;
    td_buf b;
    td_buf_init(&b);
    gap_rec a[] = {{1, "k1", "v1"}, {3, "k3", "v3"}};
    gap_rec d[] = {{0, "k13", "v13"}, {1, "k14", "v14"}};
    gap_rec e[] = {{0, "k22", "v22"}, {3, "k1", NULL}};
    rc = gaplog_batch(&b, 0, 4, a, 2, GAPLOG_TS + 0);
    if (rc == 0)
        rc = gaplog_batch(&b, 10, 2, NULL, 0, GAPLOG_TS + 10);
    if (rc == 0)
        rc = gaplog_batch(&b, 13, 1, d, 2, GAPLOG_TS + 13);
    if (rc == 0)
        rc = gaplog_write_segment(dir, 0, &b);
    td_buf_reset(&b);
    if (rc == 0)
        rc = gaplog_batch(&b, 22, 3, e, 2, GAPLOG_TS + 22);
    if (rc == 0)
        rc = gaplog_write_segment(dir, 20, &b);
    td_buf_free(&b);
    return rc;
}
