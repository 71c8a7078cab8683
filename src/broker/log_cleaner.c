/*
 * log_cleaner.c: the engine's log cleaner thread (Kafka's LogCleaner with one CleanerThread).
 *
 * Each round it looks at every partition of the topics whose cleanup.policy has compact
 * (part_clean_status: cheap, from the segments' in-memory state) and cleans the one that most
 * needs it: first any whose oldest cleanable dirty record has waited longer than the topic's
 * max.compaction.lag.ms (the longest wait first), else the one with the highest dirty ratio
 * among those at or above their min.cleanable.dirty.ratio and those whose cleaned section holds
 * tombstones or transaction markers that can go by now (part_clean_info.due_ms: their delete
 * horizon has passed). When none qualifies it sleeps log.cleaner.backoff.ms.
 * Retention of compact,delete topics is the background thread's (part_enforce_retention), as
 * for delete topics.
 *
 * The cleaning itself (storage/cleaner.c) runs without the engine's lock: the topic is held by
 * a reference, so a deletion waits for nothing (the cleaning notices and discards its work).
 * Its I/O is throttled to log.cleaner.io.max.bytes.per.second through the io hook, which also
 * stops it within about 1 MiB of I/O when the engine closes.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/engine_int.h"

struct td_log_cleaner {
    td_engine *e;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    /* The throttle's window: bytes of I/O since start_ms. */
    int64_t win_start_ms, win_bytes;
    /* Totals (atomics), for the metrics. */
    int64_t runs, run_ms, bytes_read, bytes_written, reclaimed, last_ms, last_bytes, errors;
};

static bool stopping(struct td_log_cleaner *c)
{
    pthread_mutex_lock(&c->mu);
    bool s = c->stop;
    pthread_mutex_unlock(&c->mu);
    return s;
}

/* Sleeps up to ms, waking at once when the cleaner stops; returns whether it stops. */
static bool nap(struct td_log_cleaner *c, int64_t ms)
{
    pthread_mutex_lock(&c->mu);
    if (!c->stop && ms > 0) {
        struct timespec ts = td_deadline_ns(CLOCK_REALTIME, ms * 1000000LL);
        pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    }
    bool s = c->stop;
    pthread_mutex_unlock(&c->mu);
    return s;
}

/* part_clean's io hook: holds the I/O rate to the configured bytes per second, measured over a
 * window that restarts every second of wall time, and stops the cleaning when the cleaner
 * stops. */
static int io_hook(void *arg, int64_t bytes)
{
    struct td_log_cleaner *c = arg;
    int64_t rate = c->e->opts.log_cleaner_io_max_bytes_per_sec;
    if (rate <= 0)
        return stopping(c);
    int64_t now = td_mono_ms();
    if (now - c->win_start_ms > 1000) {
        c->win_start_ms = now;
        c->win_bytes = 0;
    }
    c->win_bytes += bytes;
    int64_t due = c->win_start_ms + c->win_bytes * 1000 / rate; /* when these bytes may be done */
    return due > now ? nap(c, due - now) : stopping(c);
}

typedef struct pick {
    td_topic *t;
    int32_t part;
    bool must;
    double score;
} pick;

/* The partition to clean now (its topic referenced), or t NULL. all: any with dirty bytes. */
static pick choose(td_engine *e, bool all, int64_t now)
{
    pick best = {NULL, 0, false, -1};
    pthread_rwlock_rdlock(&e->lock);
    for (size_t i = 0; i < e->ntopics; i++) {
        td_topic *t = e->topics[i];
        pthread_mutex_lock(&t->cfg_mu);
        bool compact = (t->cfg.cleanup_policy & TD_CLEANUP_COMPACT) != 0;
        double min_ratio = t->cfg.min_cleanable_dirty_ratio;
        int64_t max_lag = t->cfg.max_compaction_lag_ms;
        pthread_mutex_unlock(&t->cfg_mu);
        if (!compact)
            continue;
        for (int32_t k = 0; k < t->nparts; k++) {
            part_clean_info st;
            if (!part_clean_status(t->parts[k], now, &st))
                continue;
            /* due: tombstones or markers whose delete horizon has passed, which a partition
             * that gets no more writes would otherwise keep for good. */
            bool due = st.due_ms <= now;
            if (st.dirty_bytes == 0 && !due)
                continue;
            bool must = max_lag >= 0 && st.lag_ms > max_lag;
            if (!all && !must && !due && st.dirty_ratio < min_ratio)
                continue;
            double score = must ? (double)st.lag_ms : st.dirty_ratio;
            if ((must && !best.must) || (must == best.must && score > best.score))
                best = (pick){t, k, must, score};
        }
    }
    if (best.t)
        topic_ref(best.t);
    pthread_rwlock_unlock(&e->lock);
    return best;
}

/* Cleans partition k of t, with the thread's throttle and figures when c is not NULL;
 * *progress (may be NULL) says whether any segment was rewritten. */
static int clean_one(td_engine *e, struct td_log_cleaner *c, td_topic *t, int32_t k, bool *progress)
{
    part_clean_opts o = {
        .now_ms = td_wall_ms(),
        .map_bytes = (size_t)TD_MAX(e->opts.log_cleaner_dedupe_buffer_size, (int64_t)1 << 20),
        .io_hook = c ? io_hook : NULL,
        .arg = c};
    part_clean_result res;
    int64_t t0 = td_mono_ms();
    int rc = part_clean(t->parts[k], &o, &res);
    int64_t ms = td_mono_ms() - t0;
    if (progress)
        *progress = res.segments_after > 0;
    if (rc && rc != TD_ECLOSED)
        TD_WARN("cleaner", "cleaning %s/%" PRId32 " failed: %s", t->name, k, td_last_error());
    if (c) {
        __atomic_add_fetch(&c->runs, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&c->run_ms, ms, __ATOMIC_RELAXED);
        __atomic_add_fetch(&c->bytes_read, res.read_bytes, __ATOMIC_RELAXED);
        __atomic_add_fetch(&c->bytes_written, res.bytes_after, __ATOMIC_RELAXED);
        __atomic_add_fetch(&c->reclaimed, res.bytes_before - res.bytes_after, __ATOMIC_RELAXED);
        __atomic_store_n(&c->last_ms, ms, __ATOMIC_RELAXED);
        __atomic_store_n(&c->last_bytes, res.read_bytes + res.bytes_after, __ATOMIC_RELAXED);
        if (rc && rc != TD_ECLOSED)
            __atomic_add_fetch(&c->errors, 1, __ATOMIC_RELAXED);
    }
    return rc;
}

static void *cleaner_main(void *arg)
{
    struct td_log_cleaner *c = arg;
    td_engine *e = c->e;
    while (!stopping(c)) {
        pick pk = choose(e, false, td_wall_ms());
        if (!pk.t) {
            nap(c, e->opts.log_cleaner_backoff_ms);
            continue;
        }
        bool progress = false;
        int rc = clean_one(e, c, pk.t, pk.part, &progress);
        topic_unref(pk.t);
        /* An I/O error, or nothing done (another cleaning of it runs, or its segments changed
         * under it): not in a tight loop. */
        if ((rc && rc != TD_ECLOSED) || (rc == 0 && !progress))
            nap(c, e->opts.log_cleaner_backoff_ms);
    }
    return NULL;
}

int td_engine_compact(td_engine *e)
{
    int rc = 0;
    pthread_rwlock_rdlock(&e->lock);
    size_t n = e->ntopics;
    td_topic **ts = malloc((n ? n : 1) * sizeof(*ts));
    for (size_t i = 0; ts && i < n; i++) {
        ts[i] = e->topics[i];
        topic_ref(ts[i]);
    }
    pthread_rwlock_unlock(&e->lock);
    if (!ts)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        for (int32_t k = 0; k < ts[i]->nparts; k++) {
            int r = clean_one(e, NULL, ts[i], k, NULL); /* the thread's throttle is its own */
            if (r && !rc)
                rc = r;
        }
        topic_unref(ts[i]);
    }
    free(ts);
    return rc;
}

/* Metrics, read when scraped. */
static void collect(void *arg, td_metrics_out *out)
{
    struct td_log_cleaner *c = arg;
    td_engine *e = c->e;
    static const char *const pl[] = {"topic", "partition"};
    static const struct {
        const char *name, *help;
        td_metric_type type;
    } fams[] = {
        {"tidings_partition_cleaner_dirty_ratio",
         "Cleanable dirty bytes over cleaned plus cleanable dirty bytes (compacted topics).",
         TD_GAUGE},
        {"tidings_partition_cleaner_cleanable_bytes",
         "Bytes the cleaner may compact now (compacted topics).", TD_GAUGE},
        {"tidings_partition_cleaner_lag_seconds",
         "How long the oldest cleanable dirty record has waited (Kafka's max-compaction-delay).",
         TD_GAUGE},
        {"tidings_partition_cleaner_reclaimed_bytes_total",
         "Bytes compaction removed from the partition since the broker started.", TD_COUNTER},
    };
    int64_t now = td_wall_ms(), max_lag = 0;
    pthread_rwlock_rdlock(&e->lock);
    for (size_t f = 0; f < TD_ARRAY_LEN(fams); f++) {
        td_metrics_text_family(out, fams[f].name, fams[f].help, fams[f].type);
        for (size_t i = 0; i < e->ntopics; i++) {
            td_topic *t = e->topics[i];
            for (int32_t k = 0; k < t->nparts; k++) {
                part_clean_info st;
                if (!part_clean_status(t->parts[k], now, &st))
                    continue;
                char pk[16];
                snprintf(pk, sizeof(pk), "%" PRId32, k);
                const char *v[] = {t->name, pk};
                double x = f == 0   ? st.dirty_ratio
                           : f == 1 ? (double)st.dirty_bytes
                           : f == 2 ? (double)st.lag_ms / 1000.0
                                    : (double)st.reclaimed_bytes;
                max_lag = TD_MAX(max_lag, st.lag_ms);
                td_metrics_text_sample(out, fams[f].name, pl, v, 2, x);
            }
        }
    }
    pthread_rwlock_unlock(&e->lock);
    int64_t last_ms = __atomic_load_n(&c->last_ms, __ATOMIC_RELAXED);
    int64_t last_bytes = __atomic_load_n(&c->last_bytes, __ATOMIC_RELAXED);
    struct {
        const char *name, *help;
        td_metric_type type;
        double v;
    } g[] = {
        {"tidings_cleaner_runs_total", "Cleanings the log cleaner ran.", TD_COUNTER,
         (double)__atomic_load_n(&c->runs, __ATOMIC_RELAXED)},
        {"tidings_cleaner_errors_total", "Cleanings that failed (the log says why).", TD_COUNTER,
         (double)__atomic_load_n(&c->errors, __ATOMIC_RELAXED)},
        {"tidings_cleaner_seconds_total", "Time the log cleaner spent cleaning.", TD_COUNTER,
         (double)__atomic_load_n(&c->run_ms, __ATOMIC_RELAXED) / 1000.0},
        {"tidings_cleaner_read_bytes_total", "Bytes the log cleaner read.", TD_COUNTER,
         (double)__atomic_load_n(&c->bytes_read, __ATOMIC_RELAXED)},
        {"tidings_cleaner_written_bytes_total", "Bytes the log cleaner wrote.", TD_COUNTER,
         (double)__atomic_load_n(&c->bytes_written, __ATOMIC_RELAXED)},
        {"tidings_cleaner_reclaimed_bytes_total", "Bytes compaction removed, all partitions.",
         TD_COUNTER, (double)__atomic_load_n(&c->reclaimed, __ATOMIC_RELAXED)},
        {"tidings_cleaner_last_run_seconds", "Duration of the last cleaning.", TD_GAUGE,
         (double)last_ms / 1000.0},
        {"tidings_cleaner_last_run_bytes_per_second",
         "Bytes read and written per second by the last cleaning.", TD_GAUGE,
         last_ms > 0 ? (double)last_bytes * 1000.0 / (double)last_ms : 0},
        {"tidings_cleaner_max_compaction_delay_seconds",
         "The longest wait of a cleanable dirty record, over all partitions.", TD_GAUGE,
         (double)max_lag / 1000.0},
    };
    for (size_t i = 0; i < TD_ARRAY_LEN(g); i++) {
        td_metrics_text_family(out, g[i].name, g[i].help, g[i].type);
        td_metrics_text_sample(out, g[i].name, NULL, NULL, 0, g[i].v);
    }
}

int log_cleaner_start(td_engine *e)
{
    struct td_log_cleaner *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->e = e;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    c->win_start_ms = td_mono_ms();
    if (pthread_create(&c->th, NULL, cleaner_main, c) != 0) {
        pthread_mutex_destroy(&c->mu);
        pthread_cond_destroy(&c->cv);
        free(c);
        return td_fail(-EAGAIN, "cannot start the log cleaner thread");
    }
    e->cleaner = c;
    if (e->metrics)
        td_metrics_add_collector(e->metrics, collect, c);
    return 0;
}

void log_cleaner_stop(td_engine *e)
{
    struct td_log_cleaner *c = e->cleaner;
    if (!c)
        return;
    if (e->metrics)
        td_metrics_remove_collector(e->metrics, collect, c);
    pthread_mutex_lock(&c->mu);
    c->stop = true;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->th, NULL);
    e->cleaner = NULL;
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c);
}
