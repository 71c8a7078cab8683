/*
 * bench_cleaner.c: log compaction throughput against a sequential read of the same segments,
 * measured in the same run on the same files (bench/cleaner.sh runs it).
 *
 *   bench_cleaner DIR
 *
 * Writes BENCH_CLEANER_MB (default 256) MiB of 100-byte keyed records (BENCH_CLEANER_KEYS keys,
 * default 100 000, 100 records a batch, uncompressed) to a compacted partition with 64 MiB
 * segments, fsyncs it, then, in this order:
 *   read   reads every sealed segment file from start to end with 1 MiB preads (what any
 *          scan of the log costs: the baseline), "read <bytes> <seconds> <MB/s>";
 *   clean  one part_clean over the same segments (map the keys, rewrite, fsync, swap),
 *          "clean <bytes> <seconds> <MB/s> <bytes after>";
 *   ratio  clean MB/s over read MB/s (the target: at least 0.5).
 * Before each, the segments' pages are dropped from the page cache (posix_fadvise DONTNEED on
 * the fsynced files), so that both read from the disk, as the cleaning of a log written long
 * ago does; BENCH_CLEANER_WARM=1 keeps them cached instead (then the ratio compares the
 * cleaner's CPU with a memory copy).
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_common.h"
#include "storage/part_int.h"

/* Drops the segments' pages from the page cache (they are fsynced, so clean): both sides then
 * read from the disk, as a cleaning of data written long ago does. */
static void drop_cache(const char *dir, const int64_t *bases, size_t n)
{
    char path[4096];
    for (size_t i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "%s/%020" PRId64 ".log", dir, bases[i]);
        int fd = open(path, O_RDONLY);
        if (fd >= 0) {
            fdatasync(fd);
            posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
            close(fd);
        }
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: bench_cleaner DIR\n");
        return 2;
    }
    td_log_set_level(TD_LOG_WARN);
    long mb = env_long("BENCH_CLEANER_MB", 256), keys = env_long("BENCH_CLEANER_KEYS", 100000);
    td_topic_config c;
    td_topic_config_init(&c);
    c.cleanup_policy = TD_CLEANUP_COMPACT;
    c.segment_bytes = 64 << 20;
    c.fsync_policy = TD_FSYNC_NONE;
    td_part *p;
    if (part_open(td_io_posix(), argv[1], "bench/0", &c, &p) != 0) {
        fprintf(stderr, "cannot open %s: %s\n", argv[1], td_last_error());
        return 1;
    }
    td_event ev[100];
    char kb[100][32], vb[100][96];
    td_buf b;
    td_buf_init(&b);
    td_batch_encode_opts o;
    batch_encode_opts_init(&o);
    int64_t written = 0, n = 0, ts = td_wall_ms();
    while (written < (int64_t)mb << 20) {
        for (int i = 0; i < 100; i++, n++) {
            snprintf(kb[i], sizeof(kb[i]), "key-%08ld", (long)((n * 7919) % keys));
            memset(vb[i], 'a' + (int)(n % 26), 64);
            snprintf(vb[i] + 64, 32, "%015" PRId64, n);
            ev[i] = (td_event){.key = kb[i],
                               .key_len = strlen(kb[i]),
                               .value = vb[i],
                               .value_len = 79,
                               .timestamp_ms = ts};
        }
        td_buf_reset(&b);
        td_append_result r;
        if (batch_encode(&b, &o, ev, 100) != 0 || part_append(p, b.p, b.len, ts, &r) != 0) {
            fprintf(stderr, "append failed: %s\n", td_last_error());
            return 1;
        }
        written += (int64_t)b.len;
    }
    td_buf_free(&b);
    part_sync(p);
    /* The sealed segments, as the cleaner will see them. */
    pthread_mutex_lock(&p->mu);
    size_t nseg = p->nsegs - 1;
    int64_t *bases = malloc(nseg * sizeof(*bases)), total = 0;
    for (size_t i = 0; i < nseg; i++) {
        bases[i] = p->segs[i]->base;
        total += p->segs[i]->size;
    }
    pthread_mutex_unlock(&p->mu);
    char *buf = malloc(1 << 20), path[4096];
    bool cold = getenv("BENCH_CLEANER_WARM") == NULL;
    if (cold)
        drop_cache(argv[1], bases, nseg);
    double t0 = now_s();
    int64_t got = 0;
    for (size_t i = 0; i < nseg; i++) {
        snprintf(path, sizeof(path), "%s/%020" PRId64 ".log", argv[1], bases[i]);
        int fd = open(path, O_RDONLY);
        ssize_t k;
        while (fd >= 0 && (k = pread(fd, buf, 1 << 20, got)) > 0)
            got += k;
        got = 0;
        if (fd >= 0)
            close(fd);
    }
    double read_s = now_s() - t0;
    part_clean_opts co = {.now_ms = td_wall_ms(), .map_bytes = 128u << 20};
    part_clean_result res;
    if (cold)
        drop_cache(argv[1], bases, nseg);
    t0 = now_s();
    double c0 = cpu_s();
    int rc = part_clean(p, &co, &res);
    double clean_s = now_s() - t0, clean_cpu = cpu_s() - c0;
    if (rc) {
        fprintf(stderr, "clean failed: %s\n", td_last_error());
        return 1;
    }
    double read_mbs = (double)total / read_s / 1e6, clean_mbs = (double)total / clean_s / 1e6;
    printf("segments %zu bytes %" PRId64 " keys %ld\n", nseg, total, keys);
    printf("read %" PRId64 " %.3f %.1f\n", total, read_s, read_mbs);
    printf("clean %" PRId64 " %.3f %.1f %" PRId64 " (cpu %.3f s)\n", res.bytes_before, clean_s,
           clean_mbs, res.bytes_after, clean_cpu);
    printf("ratio %.2f (%s cache)\n", clean_mbs / read_mbs, cold ? "cold" : "warm");
    part_close(p);
    free(bases);
    free(buf);
    return 0;
}
