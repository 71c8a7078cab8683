/*
 * bench_storage.c: storage engine benchmark through the public API (include/tidings.h).
 *
 *   bench_storage DIR            append, read and reopen benchmarks; one line per case:
 *                                "append <size> <batch> <policy> <threads> <events/s> <MB/s>",
 *                                "read <events/s> <MB/s>", "reopen <bytes> <seconds>"
 *   bench_storage --memcpy       memory copy bandwidth, "memcpy <MB/s>"
 *   bench_storage --bare-commit THREADS FILE [staged]
 *                                the group commit of fsync=always with nothing else around it,
 *                                "bare <threads> <events/s>" (see bare_worker below)
 *
 * Environment: BENCH_SECONDS (per append case, default 2), BENCH_REOPEN_MB (size of the
 * partition reopened, default 1024), BENCH_CASES (run only some cases: see wanted()). bench/run.sh
 * runs this with the baselines and prints ratios; docs/performance.md has the figures.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>
#include <sys/syscall.h>

#include "base/base.h"
#include "tidings.h"

static double seconds_now(void)
{
    return (double)td_mono_ns() / 1e9;
}

static double env_double(const char *name, double def)
{
    const char *v = getenv(name);
    return v && *v ? atof(v) : def;
}

typedef struct worker {
    td_engine *e;
    const char *topic;
    size_t size;
    int batch;
    double deadline;
    int64_t max_events;
    int64_t events;
} worker;

static void *append_worker(void *arg)
{
    worker *w = arg;
    char *value = malloc(w->size);
    memset(value, 'x', w->size);
    td_event *ev = calloc((size_t)w->batch, sizeof(*ev));
    for (int i = 0; i < w->batch; i++)
        ev[i] = (td_event){.value = value, .value_len = w->size, .partition = 0};
    while (w->events < w->max_events) {
        if (td_produce(w->e, w->topic, ev, (size_t)w->batch, NULL) != 0) {
            fprintf(stderr, "produce failed: %s\n", td_last_error());
            exit(1);
        }
        w->events += w->batch;
        if ((w->events / w->batch) % 16 == 0 && seconds_now() > w->deadline)
            break;
    }
    free(ev);
    free(value);
    return NULL;
}

/*
 * BENCH_CASES="1024 100 none, 100 1 always 1, read" runs only the cases whose name
 * ("size batch policy threads", "read" or "reopen") contains one of the comma-separated
 * patterns as whole words: "100 1 always 1" is the one-producer case alone, "none" every
 * case under fsync=none. Unset or empty: every case.
 */
static bool wanted(const char *name)
{
    const char *only = getenv("BENCH_CASES");
    if (!only || !*only)
        return true;
    for (const char *pat = only; *pat;) {
        while (*pat == ' ' || *pat == ',')
            pat++;
        size_t len = strcspn(pat, ",");
        while (len && pat[len - 1] == ' ')
            len--;
        for (const char *h = name; len && *h; h++) {
            bool starts = h == name || h[-1] == ' ';
            if (starts && strncmp(h, pat, len) == 0 && (h[len] == 0 || h[len] == ' '))
                return true;
        }
        pat += strcspn(pat, ",");
    }
    return false;
}

static void bench_append(td_engine *e, size_t size, int batch, const char *policy, int threads,
                         double secs, int *topic_no)
{
    char name[96];
    snprintf(name, sizeof(name), "%zu %d %s %d", size, batch, policy, threads);
    if (!wanted(name))
        return;
    char topic[64];
    snprintf(topic, sizeof(topic), "bench-%d", (*topic_no)++);
    td_config_entry cfg[] = {{"fsync", policy}, {"retention.bytes", "2147483648"}};
    if (td_topic_create(e, topic, 1, cfg, 2) != 0) {
        fprintf(stderr, "create: %s\n", td_last_error());
        exit(1);
    }
    worker w[16];
    pthread_t th[16];
    double start = seconds_now();
    for (int i = 0; i < threads; i++) {
        w[i] = (worker){e, topic, size, batch, start + secs, 50000000, 0};
        pthread_create(&th[i], NULL, append_worker, &w[i]);
    }
    int64_t events = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        events += w[i].events;
    }
    double el = seconds_now() - start;
    printf("append %zu %d %s %d %.0f %.1f\n", size, batch, policy, threads, events / el,
           (double)events * (double)size / el / 1e6);
    fflush(stdout);
    td_topic_delete(e, topic); /* keep the disk footprint of the run small */
}

static void bench_read(td_engine *e)
{
    td_config_entry cfg[] = {{"fsync", "none"}};
    td_topic_create(e, "bench-read", 1, cfg, 1);
    char value[1024];
    memset(value, 'r', sizeof(value));
    td_event ev[100];
    for (int i = 0; i < 100; i++)
        ev[i] = (td_event){.value = value, .value_len = sizeof(value), .partition = 0};
    for (int i = 0; i < 5000; i++) /* 500 000 events, ~530 MB */
        td_produce(e, "bench-read", ev, 100, NULL);
    td_engine_flush(e);
    double start = seconds_now();
    td_iter *it;
    td_iter_open(e, "bench-read", 0, TD_OFFSET_EARLIEST, &it);
    td_event got;
    int64_t n = 0, bytes = 0;
    while (td_iter_next(it, &got) == 1) {
        n++;
        bytes += (int64_t)got.value_len;
    }
    td_iter_close(it);
    double el = seconds_now() - start;
    printf("read %.0f %.1f\n", n / el, bytes / el / 1e6);
    td_topic_delete(e, "bench-read");
}

static void bench_reopen(const char *dir, int64_t mb)
{
    td_options o;
    td_options_init(&o);
    o.no_background = 1;
    td_engine *e;
    if (td_engine_open(dir, &o, &e) != 0) {
        fprintf(stderr, "open: %s\n", td_last_error());
        exit(1);
    }
    td_config_entry cfg[] = {{"fsync", "none"}};
    td_topic_create(e, "bench-reopen", 1, cfg, 1);
    char value[1024];
    memset(value, 'o', sizeof(value));
    td_event ev[100];
    for (int i = 0; i < 100; i++)
        ev[i] = (td_event){.value = value, .value_len = sizeof(value), .partition = 0};
    td_partition_info pi;
    do {
        for (int i = 0; i < 100; i++)
            td_produce(e, "bench-reopen", ev, 100, NULL);
        td_partition_describe(e, "bench-reopen", 0, &pi);
    } while (pi.size_bytes < mb * 1000000);
    td_engine_close(e);
    double start = seconds_now();
    td_engine_open(dir, &o, &e);
    double el = seconds_now() - start;
    td_partition_describe(e, "bench-reopen", 0, &pi);
    printf("reopen %" PRId64 " %.3f\n", pi.size_bytes, el);
    td_topic_delete(e, "bench-reopen");
    td_engine_close(e);
}

static void bench_memcpy(void)
{
    size_t n = 256u << 20;
    char *a = malloc(n), *b = malloc(n);
    memset(a, 1, n);
    memset(b, 2, n);
    double start = seconds_now();
    int reps = 8;
    for (int i = 0; i < reps; i++) {
        memcpy(i % 2 ? a : b, i % 2 ? b : a, n);
        __asm__ volatile("" ::: "memory");
    }
    double el = seconds_now() - start;
    printf("memcpy %.0f\n", (double)n * reps / el / 1e6);
    free(a);
    free(b);
}

/*
 * A baseline for the (b) case: the same leader-based group commit as part.c, stripped to what
 * any such design must do. THREADS threads each append a 169-byte record (the size of a
 * 100-byte event's batch) with pwrite under one lock and wait until an fdatasync covers it; the
 * thread that finds no sync running gathers (waits, up to two fsync times, until as many
 * records are pending as the last round released) and then fsyncs for everyone. No encoding,
 * no offsets, no indexes: what it reaches is what synchronous threads on this machine can.
 *
 * "staged" measures a different design (an experiment, not what part.c does): appenders copy
 * their record into a staging buffer under the lock, the leader writes the whole round with one
 * pwrite before its fdatasync, and waiters sleep on a futex word, so that a release does not
 * make every woken thread queue for the lock again.
 */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t synced, appended;
    int fd;
    bool syncing, staged;
    int64_t end, durable, pending, last_round, sync_ns, pos;
    uint32_t seq; /* futex word of the staged design: bumped at each release */
    char stage[64 * 169];
    size_t stage_len;
    double deadline;
} bare = {.mu = PTHREAD_MUTEX_INITIALIZER,
          .synced = PTHREAD_COND_INITIALIZER,
          .appended = PTHREAD_COND_INITIALIZER};

static void *bare_worker(void *arg)
{
    int64_t *count = arg;
    char rec[169];
    memset(rec, 'x', sizeof(rec));
    while (seconds_now() < bare.deadline) {
        pthread_mutex_lock(&bare.mu);
        if (bare.staged) {
            memcpy(bare.stage + bare.stage_len, rec, sizeof(rec));
            bare.stage_len += sizeof(rec);
        } else {
            if (pwrite(bare.fd, rec, sizeof(rec), bare.pos) != (ssize_t)sizeof(rec)) {
                perror("pwrite");
                exit(1);
            }
            bare.pos += (int64_t)sizeof(rec);
        }
        int64_t mine = ++bare.end;
        if (++bare.pending >= bare.last_round)
            pthread_cond_signal(&bare.appended);
        bool gathered = false;
        bool locked = true;
        while (bare.durable < mine) {
            if (bare.syncing && bare.staged) {
                uint32_t seq = __atomic_load_n(&bare.seq, __ATOMIC_ACQUIRE);
                pthread_mutex_unlock(&bare.mu);
                syscall(SYS_futex, &bare.seq, FUTEX_WAIT_PRIVATE, seq, NULL, NULL, 0);
                if (__atomic_load_n(&bare.durable, __ATOMIC_ACQUIRE) >= mine) {
                    locked = false;
                    break;
                }
                pthread_mutex_lock(&bare.mu);
            } else if (bare.syncing) {
                pthread_cond_wait(&bare.synced, &bare.mu);
            } else if (!gathered && bare.pending < bare.last_round) {
                gathered = true;
                struct timespec ts =
                    td_deadline_ns(CLOCK_REALTIME, TD_MIN(bare.sync_ns * 2, 2000000));
                bare.syncing = true;
                while (bare.pending < bare.last_round &&
                       pthread_cond_timedwait(&bare.appended, &bare.mu, &ts) == 0)
                    ;
                bare.syncing = false;
            } else {
                bare.syncing = true;
                int64_t target = bare.end, round = bare.pending, at = bare.pos;
                bare.pending = 0;
                char out[sizeof(bare.stage)];
                size_t n = bare.stage_len;
                memcpy(out, bare.stage, n);
                bare.stage_len = 0;
                bare.pos += (int64_t)n;
                pthread_mutex_unlock(&bare.mu);
                if (n && pwrite(bare.fd, out, n, at) != (ssize_t)n) {
                    perror("pwrite");
                    exit(1);
                }
                int64_t t0 = td_mono_ns();
                if (fdatasync(bare.fd) != 0) {
                    perror("fdatasync");
                    exit(1);
                }
                int64_t took = td_mono_ns() - t0;
                pthread_mutex_lock(&bare.mu);
                bare.sync_ns = bare.sync_ns ? (bare.sync_ns * 7 + took) / 8 : took;
                bare.last_round = TD_MAX(round, 1);
                __atomic_store_n(&bare.durable, target, __ATOMIC_RELEASE);
                bare.syncing = false;
                pthread_cond_broadcast(&bare.synced);
                if (bare.staged) {
                    __atomic_add_fetch(&bare.seq, 1, __ATOMIC_RELEASE);
                    syscall(SYS_futex, &bare.seq, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
                }
            }
        }
        if (locked)
            pthread_mutex_unlock(&bare.mu);
        (*count)++;
    }
    return NULL;
}

static int bench_bare_commit(int threads, const char *file, bool staged, double secs)
{
    bare.staged = staged;
    if (threads < 1 || threads > 64) {
        fprintf(stderr, "bare-commit: 1 to 64 threads\n");
        return 2;
    }
    bare.fd = open(file, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (bare.fd < 0) {
        perror(file);
        return 1;
    }
    bare.last_round = 1;
    double start = seconds_now();
    bare.deadline = start + secs;
    pthread_t th[64];
    int64_t counts[64] = {0}, total = 0;
    for (int i = 0; i < threads; i++)
        pthread_create(&th[i], NULL, bare_worker, &counts[i]);
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        total += counts[i];
    }
    printf("bare %d %.0f\n", threads, (double)total / (seconds_now() - start));
    close(bare.fd);
    unlink(file);
    return 0;
}

int main(int argc, char **argv)
{
    if ((argc == 4 || (argc == 5 && strcmp(argv[4], "staged") == 0)) &&
        strcmp(argv[1], "--bare-commit") == 0)
        return bench_bare_commit(atoi(argv[2]), argv[3], argc == 5, env_double("BENCH_SECONDS", 2));
    if (argc == 2 && strcmp(argv[1], "--memcpy") == 0) {
        bench_memcpy();
        return 0;
    }
    if (argc != 2) {
        fprintf(stderr,
                "usage: bench_storage DIR | --memcpy | --bare-commit THREADS FILE [staged]\n");
        return 2;
    }
    td_set_log_level("warn");
    double secs = env_double("BENCH_SECONDS", 2);
    int64_t reopen_mb = (int64_t)env_double("BENCH_REOPEN_MB", 1024);
    td_options o;
    td_options_init(&o);
    o.scrub_bytes_per_sec = 0;
    td_engine *e;
    if (td_engine_open(argv[1], &o, &e) != 0) {
        fprintf(stderr, "open: %s\n", td_last_error());
        return 1;
    }
    static const char *policies[] = {"always", "interval:100", "none"};
    static const size_t sizes[] = {100, 1024};
    static const int batches[] = {1, 100};
    static const int threads[] = {1, 16};
    int topic_no = 0;
    for (size_t p = 0; p < 3; p++)
        for (size_t s = 0; s < 2; s++)
            for (size_t b = 0; b < 2; b++)
                for (size_t t = 0; t < 2; t++)
                    bench_append(e, sizes[s], batches[b], policies[p], threads[t], secs,
                                 &topic_no);
    if (wanted("read"))
        bench_read(e);
    td_engine_close(e);
    if (wanted("reopen"))
        bench_reopen(argv[1], reopen_mb);
    return 0;
}
