/*
 * engine.c: the engine behind include/tidings.h: the data directory (format, lock, layout),
 * the topic table, produce routing, and the background work (interval flushes, retention,
 * scrub).
 *
 * Data directory layout:
 *   FORMAT                      "tidings-data 1\n": checked before anything else is touched
 *   LOCK                        flock()ed while an engine has the directory open; holds its pid
 *   catalog.db (+ -wal, -shm)   the topic catalog (storage/catalog.c)
 *   topics/<name>/<partition>/  one directory per partition (storage/part.c)
 *   trash/                      deleted topics on their way out
 *
 * Concurrency: the topic table is guarded by a reader-writer lock that prefers writers.
 * Produce holds it as a reader for the whole call, including the wait for fsync, so many
 * producers share group commits while topic administration (writers) waits for at most one
 * fsync. Iterators and broker_topic_acquire() hold a reference on a topic instead, which keeps
 * its partitions open after a delete until the last reference goes.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "broker/broker.h"
#include "broker/engine_int.h"
#include "broker/health.h"
#include "storage/keyindex.h"
#include "broker/queue.h"
#include "broker/registry.h"
#include "broker/state.h"
#include "broker/xgroup.h"

#define FORMAT_VERSION 1
#define FORMAT_MAGIC "tidings-data"

/* ---------------------------------------------------------------------------------------------
 * Topics
 */
void engine_topic_free(td_topic *t)
{
    for (int32_t i = 0; i < t->nparts; i++) {
        if (t->deleted)
            part_mark_deleted(t->parts[i]);
        part_close(t->parts[i]);
    }
    free(t->parts);
    for (size_t i = 0; i < t->nretired; i++)
        free(t->retired[i]);
    free(t->retired);
    free(t->last_sync_ms);
    pthread_mutex_destroy(&t->cfg_mu);
    free(t);
}

void topic_ref(td_topic *t)
{
    __atomic_add_fetch(&t->refs, 1, __ATOMIC_ACQ_REL);
}

void topic_unref(td_topic *t)
{
    if (__atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL) == 0)
        engine_topic_free(t);
}

static void partition_dir(const td_engine *e, const char *topic, int32_t i, char *buf,
                          size_t len)
{
    snprintf(buf, len, "%s/topics/%s/%" PRId32, e->dir, topic, i);
}

/* Every partition's high-watermark hook: calls the listeners' hooks. */
static void engine_advance(void *arg)
{
    td_engine *e = arg;
    for (size_t i = 0; i < TD_ARRAY_LEN(e->hooks); i++) {
        void (*fn)(void *) = __atomic_load_n(&e->hooks[i].fn, __ATOMIC_ACQUIRE);
        if (fn)
            fn(__atomic_load_n(&e->hooks[i].arg, __ATOMIC_RELAXED));
    }
}

/* Opens partitions [from, to) of t into parts. */
int engine_open_parts(td_engine *e, td_topic *t, td_part **parts, int32_t from, int32_t to)
{
    for (int32_t i = from; i < to; i++) {
        char dir[PATH_MAX], label[TD_TOPIC_NAME_MAX + 16];
        partition_dir(e, t->name, i, dir, sizeof(dir));
        snprintf(label, sizeof(label), "%s/%" PRId32, t->name, i);
        int rc = part_open(e->io, dir, label, &t->cfg, &parts[i]);
        if (rc) {
            while (i-- > from)
                part_close(parts[i]);
            return rc;
        }
        if (part_offline(parts[i]))
            TD_ERROR("engine", "partition %s opened offline: %s", label, part_offline(parts[i]));
        /* The state topics are written at every commit and ack: waking every waiting reader
         * of every protocol for them would cost each wait a retry per commit. An administrator
         * reading one gets new records when the wait times out. */
        if (!state_topic_internal(t->name))
            part_set_advance_hook(parts[i], engine_advance, e);
        part_set_reserve(parts[i], e->reserve);
        part_set_indexer(parts[i], e->indexer);
        /* The health events' own fsyncs are not counted: a slow one would say so again. */
        part_set_metrics(parts[i], &(part_metrics){t->m_events_in, t->m_bytes_in, e->fsync_hist,
                                                   t->system ? NULL : &e->fsync_slow});
        table_part_config(e, parts[i], &t->cfg, label);
    }
    return 0;
}

td_topic *engine_topic_new(td_engine *e, const td_catalog_topic *ct)
{
    td_topic *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->engine = e;
    snprintf(t->name, sizeof(t->name), "%s", ct->name);
    t->id = ct->id;
    t->created_ms = ct->created_ms;
    t->cfg = ct->config;
    t->system = health_topic_name(ct->name);
    t->refs = 1; /* the table's */
    pthread_mutex_init(&t->cfg_mu, NULL);
    t->parts = calloc((size_t)ct->partitions, sizeof(*t->parts));
    t->last_sync_ms = calloc((size_t)ct->partitions, sizeof(*t->last_sync_ms));
    if (!t->parts || !t->last_sync_ms) {
        free(t->parts);
        free(t->last_sync_ms);
        free(t);
        return NULL;
    }
    t->nparts = ct->partitions;
    t->m_events_in = td_metric_get1(e->f_events_in, t->name);
    t->m_bytes_in = td_metric_get1(e->f_bytes_in, t->name);
    t->m_events_out = td_metric_get1(e->f_events_out, t->name);
    t->m_bytes_out = td_metric_get1(e->f_bytes_out, t->name);
    return t;
}

/* Hides a topic's series (deleted, or never created). */
void engine_topic_metrics_remove(td_engine *e, const char *name)
{
    td_metric_remove_first(e->f_events_in, name);
    td_metric_remove_first(e->f_bytes_in, name);
    td_metric_remove_first(e->f_events_out, name);
    td_metric_remove_first(e->f_bytes_out, name);
    registry_check_metrics_remove(e, name);
}

/* Index of name in the sorted table, or -(insertion point) - 1. Caller holds the lock. */
ssize_t engine_table_find(td_engine *e, const char *name)
{
    size_t lo = 0, hi = e->ntopics;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(e->topics[mid]->name, name);
        if (c == 0)
            return (ssize_t)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -(ssize_t)lo - 1;
}

int engine_table_insert(td_engine *e, td_topic *t)
{
    ssize_t at = engine_table_find(e, t->name);
    if (at >= 0)
        return TD_EEXIST;
    size_t pos = (size_t)(-at - 1);
    if (td_grow(&e->topics, &e->topics_cap, e->ntopics, sizeof(*e->topics), 16) != 0)
        return -ENOMEM;
    memmove(e->topics + pos + 1, e->topics + pos, (e->ntopics - pos) * sizeof(*e->topics));
    e->topics[pos] = t;
    e->ntopics++;
    return 0;
}

/* Looks a topic up under the read lock. */
td_topic *engine_find_locked(td_engine *e, const char *name)
{
    ssize_t at = engine_table_find(e, name);
    return at >= 0 ? e->topics[at] : NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Opening and closing
 */
static int check_format(const char *dir, bool *exists)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/FORMAT", dir);
    FILE *f = fopen(path, "r");
    *exists = f != NULL;
    if (!f)
        return errno == ENOENT ? 0 : td_fail(-errno, "cannot read %s: %s", path, strerror(errno));
    char magic[32] = {0};
    int version = 0;
    int n = fscanf(f, "%31s %d", magic, &version);
    fclose(f);
    if (n != 2 || strcmp(magic, FORMAT_MAGIC) != 0)
        return td_fail(TD_EFORMAT, "%s is not a tidings data directory format file", path);
    if (version > FORMAT_VERSION)
        return td_fail(TD_EFORMAT,
                       "data directory %s has format version %d, newer than this tidings "
                       "supports (%d); nothing was changed",
                       dir, version, FORMAT_VERSION);
    if (version < 1)
        return td_fail(TD_EFORMAT, "%s names an invalid format version %d", path, version);
    return 0;
}

static int write_format(td_engine *e)
{
    char path[PATH_MAX], tmp[PATH_MAX];
    snprintf(path, sizeof(path), "%s/FORMAT", e->dir);
    snprintf(tmp, sizeof(tmp), "%s/FORMAT.tmp", e->dir);
    char text[64];
    int n = snprintf(text, sizeof(text), "%s %d\n", FORMAT_MAGIC, FORMAT_VERSION);
    int fd = e->io->open(e->io, tmp, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return td_fail(fd, "cannot write %s: %s", tmp, td_strerror(fd));
    int rc = td_io_write_all(e->io, fd, text, (size_t)n, 0);
    if (rc == 0)
        rc = e->io->fsync(e->io, fd);
    e->io->close(e->io, fd);
    if (rc == 0)
        rc = e->io->rename(e->io, tmp, path);
    if (rc == 0)
        rc = e->io->sync_dir(e->io, e->dir);
    return rc ? td_fail(rc, "cannot write %s: %s", path, td_strerror(rc)) : 0;
}

static int take_lock(td_engine *e)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/LOCK", e->dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return td_fail(-errno, "cannot open %s: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int err = errno;
        char pid[32] = {0};
        ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);
        close(fd);
        if (err == EWOULDBLOCK) {
            while (n > 0 && (pid[n - 1] == '\n' || pid[n - 1] == ' '))
                pid[--n] = 0;
            return td_fail(TD_ELOCKED, "data directory %s is locked by process %s", e->dir,
                           n > 0 ? pid : "(unknown)");
        }
        return td_fail(-err, "cannot lock %s: %s", path, strerror(err));
    }
    char pid[32];
    int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
        int err = errno;
        close(fd);
        return td_fail(-err, "cannot write %s: %s", path, strerror(err));
    }
    e->lock_fd = fd;
    return 0;
}

struct orphan_ctx {
    td_engine *e;
    int rc;
};

static int orphan_cb(void *arg, const char *name)
{
    struct orphan_ctx *c = arg;
    td_engine *e = c->e;
    td_catalog_topic ct;
    if (td_topic_name_validate(name) == 0 && catalog_topic_get(e->cat, name, &ct) == 0)
        return 0;
    char from[PATH_MAX], to[PATH_MAX];
    snprintf(from, sizeof(from), "%s/topics/%s", e->dir, name);
    snprintf(to, sizeof(to), "%s/trash/orphan.%s.%" PRId64, e->dir, name, td_wall_ms());
    TD_WARN("engine", "moving %s, which is not in the catalog, to the trash", from);
    int rc = e->io->rename(e->io, from, to);
    if (rc)
        c->rc = rc;
    return 0;
}

static int empty_trash(td_engine *e)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/trash", e->dir);
    int rc = td_io_remove_tree(e->io, path);
    if (rc == 0)
        rc = td_io_mkdirs(e->io, path, 0755);
    return rc;
}

static void *background_main(void *arg);
static void *flusher_main(void *arg);

void td_options_init(td_options *o)
{
    memset(o, 0, sizeof(*o));
    o->scrub_bytes_per_sec = 32LL << 20;
    o->retention_check_ms = 30000;
    o->producer_id_expiration_ms = 86400000;
    o->transaction_max_timeout_ms = 900000;
    o->transactional_id_expiration_ms = 604800000;
    o->transaction_abort_interval_ms = 10000;
    o->no_background = 0;
    o->none_seal_delay_ms = 30000;
    o->disk_reserve_bytes = TD_DISK_RESERVE_DEFAULT;
    o->log_cleaner_enable = 1;
    o->log_cleaner_backoff_ms = 15000;
    o->log_cleaner_dedupe_buffer_size = 128LL << 20;
    o->log_cleaner_io_max_bytes_per_sec = 0;
    o->table_index_max_bytes = TD_TABLE_INDEX_DEFAULT;
    o->schema_validation_threads = -1;
    o->health_events_rate = 10;
    o->health_check_interval_ms = 1000;
    o->health_disk_percent = 90;
    o->health_fsync_ms = 1000;
    o->queue_schedule_horizon_ms = 60000;
    o->queue_scheduled_max = 1000000;
}

/* ---------------------------------------------------------------------------------------------
 * Metrics
 */

/* Storage, read when scraped: per topic its partitions and bytes on disk; per partition its
 * offsets and whether it is offline. Each partition's figures are read once (part_stats), then
 * written family by family. */
static void engine_collect(void *arg, td_metrics_out *out)
{
    td_engine *e = arg;
    static const char *const tl[] = {"topic"}, *const pl[] = {"topic", "partition"};
    pthread_rwlock_rdlock(&e->lock);
    size_t total = 0;
    for (size_t i = 0; i < e->ntopics; i++)
        total += (size_t)e->topics[i]->nparts;
    td_part_stats *st = malloc((total ? total : 1) * sizeof(*st));
    int64_t *bytes = calloc(e->ntopics ? e->ntopics : 1, sizeof(*bytes));
    if (!st || !bytes) {
        pthread_rwlock_unlock(&e->lock);
        free(st);
        free(bytes);
        out->err = out->err ? out->err : -ENOMEM;
        return;
    }
    for (size_t i = 0, k = 0; i < e->ntopics; i++)
        for (int32_t p = 0; p < e->topics[i]->nparts; p++, k++) {
            part_stats(e->topics[i]->parts[p], &st[k]);
            bytes[i] += st[k].size_bytes;
        }
    td_metrics_text_family(out, "tidings_topic_partitions", "Partitions of the topic.", TD_GAUGE);
    for (size_t i = 0; i < e->ntopics; i++)
        td_metrics_text_sample(out, "tidings_topic_partitions", tl,
                               (const char *const[]){e->topics[i]->name}, 1,
                               (double)e->topics[i]->nparts);
    td_metrics_text_family(out, "tidings_topic_storage_bytes",
                           "Bytes of the topic's log segments on disk.", TD_GAUGE);
    for (size_t i = 0; i < e->ntopics; i++)
        td_metrics_text_sample(out, "tidings_topic_storage_bytes", tl,
                               (const char *const[]){e->topics[i]->name}, 1, (double)bytes[i]);
    static const struct {
        const char *name, *help;
    } fams[] = {
        {"tidings_partition_log_start_offset", "The first offset still stored."},
        {"tidings_partition_high_watermark", "The offset after the last readable event."},
        {"tidings_partition_storage_bytes", "Bytes of the partition's log segments."},
        {"tidings_partition_offline", "1 if the partition is offline (corrupt data)."},
    };
    for (size_t f = 0; f < TD_ARRAY_LEN(fams); f++) {
        td_metrics_text_family(out, fams[f].name, fams[f].help, TD_GAUGE);
        for (size_t i = 0, k = 0; i < e->ntopics; i++)
            for (int32_t p = 0; p < e->topics[i]->nparts; p++, k++) {
                char pk[16];
                snprintf(pk, sizeof(pk), "%" PRId32, p);
                const char *v[] = {e->topics[i]->name, pk};
                double x = f == 0   ? (double)st[k].log_start_offset
                           : f == 1 ? (double)st[k].high_watermark
                           : f == 2 ? (double)st[k].size_bytes
                                    : (double)st[k].offline;
                td_metrics_text_sample(out, fams[f].name, pl, v, 2, x);
            }
    }
    pthread_rwlock_unlock(&e->lock);
    free(st);
    free(bytes);
    if (e->reserve) {
        int64_t have, want;
        reserve_state(e->reserve, &have, &want);
        td_metrics_text_family(out, "tidings_disk_reserve_bytes",
                               "Bytes the disk reserve holds now (disk.reserve.bytes when whole).",
                               TD_GAUGE);
        td_metrics_text_sample(out, "tidings_disk_reserve_bytes", NULL, NULL, 0, (double)have);
        td_metrics_text_family(out, "tidings_disk_reserve_whole",
                               "0 while the disk reserve is not whole: the disk is full, and "
                               "appends are refused.",
                               TD_GAUGE);
        td_metrics_text_sample(out, "tidings_disk_reserve_whole", NULL, NULL, 0,
                               have >= want ? 1 : 0);
    }
}

static int engine_metrics_init(td_engine *e)
{
    int rc = td_metrics_new(&e->metrics);
    if (rc)
        return rc;
    td_metrics *m = e->metrics;
    e->f_events_in = td_metrics_family(m, TD_COUNTER, "tidings_topic_events_in_total",
                                       "Events appended to the topic, by every protocol.", "topic",
                                       NULL, 0);
    e->f_bytes_in = td_metrics_family(m, TD_COUNTER, "tidings_topic_bytes_in_total",
                                      "Bytes of record batches appended to the topic.", "topic",
                                      NULL, 0);
    e->f_events_out = td_metrics_family(m, TD_COUNTER, "tidings_topic_events_out_total",
                                        "Events read from the topic by consumers.", "topic", NULL,
                                        0);
    e->f_bytes_out = td_metrics_family(m, TD_COUNTER, "tidings_topic_bytes_out_total",
                                       "Bytes of record batches read from the topic by consumers.",
                                       "topic", NULL, 0);
    e->fsync_hist = td_metric_get(
        td_metrics_family(m, TD_HISTOGRAM, "tidings_fsync_duration_seconds",
                          "Duration of the fsyncs that make appended events durable.", NULL, NULL,
                          0),
        NULL);
    if (!e->f_events_in || !e->f_bytes_in || !e->f_events_out || !e->f_bytes_out ||
        !e->fsync_hist)
        return -ENOMEM;
    if (td_metrics_add_collector(m, table_collect, e) != 0)
        return -ENOMEM;
    return td_metrics_add_collector(m, engine_collect, e);
}

td_metrics *broker_metrics(td_engine *e)
{
    return e->metrics;
}

void broker_request_metrics(td_engine *e, td_metric_family **count, td_metric_family **latency)
{
    *count = td_metrics_family(e->metrics, TD_COUNTER, "tidings_requests_total",
                               "Requests answered, by protocol and API.", "protocol,api", NULL, 0);
    *latency =
        td_metrics_family(e->metrics, TD_HISTOGRAM, "tidings_request_duration_seconds",
                          "Time from a request's arrival to its answer, by protocol and API.",
                          "protocol,api", NULL, 0);
}

int engine_open_io(const char *dir, const td_options *opts, const td_io *io, td_engine **out)
{
    td_error_clear();
    td_engine *e = calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    e->lock_fd = -1;
    e->io = io;
    if (opts)
        e->opts = *opts;
    else
        td_options_init(&e->opts);
    e->fsync_slow.threshold_ns = e->opts.health_events && e->opts.health_fsync_ms >= 0
                                     ? e->opts.health_fsync_ms * 1000000
                                     : INT64_MAX;
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&e->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    pthread_mutex_init(&e->admin_mu, NULL);
    pthread_mutex_init(&e->pid_mu, NULL);
    if (e->opts.producer_id_expiration_ms <= 0)
        e->opts.producer_id_expiration_ms = 86400000;
    if (e->opts.transaction_max_timeout_ms <= 0)
        e->opts.transaction_max_timeout_ms = 900000;
    if (e->opts.transactional_id_expiration_ms <= 0)
        e->opts.transactional_id_expiration_ms = 604800000;
    if (e->opts.transaction_abort_interval_ms <= 0)
        e->opts.transaction_abort_interval_ms = 10000;
    pthread_mutex_init(&e->bg_mu, NULL);
    pthread_cond_init(&e->bg_cv, NULL);
    pthread_mutex_init(&e->flush_mu, NULL);
    pthread_cond_init(&e->flush_cv, NULL);
    e->dir = strdup(dir);
    int rc = e->dir ? 0 : -ENOMEM;
    if (rc == 0)
        rc = engine_metrics_init(e);
    bool have_format = false;
    td_catalog_topic *cts = NULL;
    size_t nct = 0;
    if (rc)
        goto fail;
    /* The format check comes first: a newer directory must not be touched at all. */
    rc = check_format(dir, &have_format);
    if (rc)
        goto fail;
    if (!have_format) {
        rc = td_io_mkdirs(io, dir, 0755);
        if (rc) {
            rc = td_fail(rc, "cannot create data directory %s: %s", dir, td_strerror(rc));
            goto fail;
        }
    }
    if ((rc = take_lock(e)) != 0)
        goto fail;
    if (!have_format && (rc = write_format(e)) != 0)
        goto fail;
    /* The reserve before anything that may fill the disk; a full disk does not fail the open
     * (the reserve is then partial and appends wait for space). */
    if ((rc = reserve_open(io, dir, e->opts.disk_reserve_bytes, &e->reserve)) != 0)
        goto fail;
    e->keys = keybudget_new(e->opts.table_index_max_bytes > 0 ? e->opts.table_index_max_bytes
                                                              : TD_TABLE_INDEX_DEFAULT);
    if (!e->keys) {
        rc = -ENOMEM;
        goto fail;
    }
    if ((rc = indexer_new(&e->indexer)) != 0)
        goto fail;
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/catalog.db", dir);
    if ((rc = catalog_open(path, &e->cat)) != 0 || (rc = broker_acls_open(e)) != 0)
        goto fail;
    snprintf(path, sizeof(path), "%s/topics", dir);
    if ((rc = td_io_mkdirs(io, path, 0755)) != 0 || (rc = empty_trash(e)) != 0) {
        rc = td_fail(rc, "cannot prepare %s: %s", dir, td_strerror(rc));
        goto fail;
    }
    struct orphan_ctx oc = {e, 0};
    rc = io->list(io, path, orphan_cb, &oc);
    if (rc == 0 && oc.rc == 0 && (rc = empty_trash(e)) != 0)
        goto fail;
    if ((rc = catalog_topic_list(e->cat, &cts, &nct)) != 0)
        goto fail;
    for (size_t i = 0; i < nct; i++) {
        td_topic *t = engine_topic_new(e, &cts[i]);
        if (!t) {
            rc = -ENOMEM;
            goto fail;
        }
        rc = engine_open_parts(e, t, t->parts, 0, t->nparts);
        if (rc == 0)
            rc = engine_table_insert(e, t);
        if (rc) {
            t->nparts = 0;
            engine_topic_free(t);
            goto fail;
        }
    }
    free(cts);
    cts = NULL;
    if (!e->opts.no_background) {
        if (pthread_create(&e->bg, NULL, background_main, e) != 0) {
            rc = td_fail(-EAGAIN, "cannot start the background thread");
            goto fail;
        }
        e->bg_running = true;
    }
    if (pthread_create(&e->flusher, NULL, flusher_main, e) != 0) {
        rc = td_fail(-EAGAIN, "cannot start the flusher thread");
        goto fail;
    }
    e->flusher_running = true;
    if (!e->opts.no_background && e->opts.log_cleaner_enable && (rc = log_cleaner_start(e)) != 0)
        goto fail;
    if ((rc = state_open(e)) != 0 || (rc = queues_open(e, &e->queues)) != 0 ||
        (rc = xgroups_open(e, &e->xgroups)) != 0 || (rc = quotas_open(e)) != 0 ||
        (rc = registry_open(e, &e->registry)) != 0 || (rc = health_open(e)) != 0 ||
        (rc = txns_open(e)) != 0)
        goto fail;
    /* Under the table's lock: the queue service's thread, running since queues_open, can
     * create a topic (a dead-letter topic) meanwhile. */
    pthread_rwlock_rdlock(&e->lock);
    size_t ntopics = e->ntopics;
    pthread_rwlock_unlock(&e->lock);
    TD_INFO("engine", "opened %s: %zu topics", dir, ntopics);
    *out = e;
    return 0;
fail:
    free(cts);
    {
        /* Keep the detail of the failure across the cleanup. */
        char why[512];
        snprintf(why, sizeof(why), "%s", td_last_error());
        td_engine_close(e);
        td_fail(rc, "%s", why[0] ? why : td_strerror(rc));
    }
    return rc;
}

int td_engine_open(const char *dir, const td_options *opts, td_engine **out)
{
    if (!dir || !out)
        return td_fail(TD_EINVAL, "td_engine_open needs a directory and an out pointer");
    return engine_open_io(dir, opts, td_io_posix(), out);
}

int td_engine_close(td_engine *e)
{
    if (!e)
        return 0;
    if (e->metrics)
        td_metrics_remove_collector(e->metrics, engine_collect, e);
    if (e->metrics)
        td_metrics_remove_collector(e->metrics, table_collect, e);
    /* The transaction coordinator first: it writes markers, which the flusher makes durable. */
    txns_close(e);
    /* Queues next: their worker writes dead letters, which the flusher makes durable. */
    queues_close(e->queues);
    e->queues = NULL;
    xgroups_close(e->xgroups);
    e->xgroups = NULL;
    quotas_close(e);
    health_close(e); /* its last events, before the flusher and the cleaner stop */
    log_cleaner_stop(e);
    if (e->bg_running) {
        pthread_mutex_lock(&e->bg_mu);
        e->stopping = true;
        pthread_cond_broadcast(&e->bg_cv);
        pthread_mutex_unlock(&e->bg_mu);
        pthread_join(e->bg, NULL);
    }
    if (e->flusher_running) {
        pthread_mutex_lock(&e->flush_mu);
        e->flush_stopping = true;
        pthread_cond_broadcast(&e->flush_cv);
        pthread_mutex_unlock(&e->flush_mu);
        pthread_join(e->flusher, NULL);
    }
    free(e->flushq);
    engine_otlp_close(e); /* its last flush, once nothing appends any more */
    registry_close(e->registry);
    e->registry = NULL;
    state_close(e);
    /* The final sync, once nothing appends any more: under fsync=interval or none it is what
     * makes the last events durable, so its failure is the caller's to hear (those events may
     * be lost). The partitions' close syncs again, finding nothing left to do. */
    int rc = td_engine_flush(e);
    char why[256] = "";
    if (rc)
        snprintf(why, sizeof(why), "%s", td_last_error());
    pthread_rwlock_wrlock(&e->lock);
    for (size_t i = 0; i < e->ntopics; i++)
        topic_unref(e->topics[i]);
    free(e->topics);
    e->topics = NULL;
    e->ntopics = 0;
    pthread_rwlock_unlock(&e->lock);
    catalog_close(e->cat);
    reserve_close(e->reserve); /* the file stays, whole or not, for the next open */
    keybudget_free(e->keys);   /* after the partitions, whose indexes give memory back */
    indexer_free(e->indexer);  /* after the partitions, which leave it at their close */
    td_metrics_free(e->metrics); /* after the partitions, which count into it until closed */
    if (e->lock_fd >= 0)
        close(e->lock_fd); /* releases the flock */
    pthread_rwlock_destroy(&e->lock);
    pthread_mutex_destroy(&e->admin_mu);
    free(e->busy);
    broker_authz_free(e);
    broker_acls_free(e);
    pthread_mutex_destroy(&e->pid_mu);
    pthread_mutex_destroy(&e->bg_mu);
    pthread_cond_destroy(&e->bg_cv);
    pthread_mutex_destroy(&e->flush_mu);
    pthread_cond_destroy(&e->flush_cv);
    if (e->dir)
        TD_DEBUG("engine", "closed %s", e->dir);
    free(e->dir);
    free(e);
    return rc ? td_fail(rc, "final sync: %s", why[0] ? why : td_strerror(rc)) : 0;
}

int td_engine_flush(td_engine *e)
{
    int rc = 0;
    pthread_rwlock_rdlock(&e->lock);
    for (size_t i = 0; i < e->ntopics; i++) {
        td_topic *t = e->topics[i];
        for (int32_t k = 0; k < t->nparts; k++) {
            if (part_offline(t->parts[k]))
                continue;
            int r = part_sync(t->parts[k]);
            if (r && !rc)
                rc = r;
        }
    }
    pthread_rwlock_unlock(&e->lock);
    return rc;
}

int td_engine_enforce_retention(td_engine *e)
{
    int rc = 0;
    int64_t now = td_wall_ms();
    pthread_rwlock_rdlock(&e->lock);
    for (size_t i = 0; i < e->ntopics; i++) {
        td_topic *t = e->topics[i];
        for (int32_t k = 0; k < t->nparts; k++) {
            int64_t ls = part_log_start(t->parts[k]);
            int r = part_enforce_retention(t->parts[k], now, NULL);
            if (part_log_start(t->parts[k]) > ls)
                engine_note_change(e, BROKER_CHANGE_TRIM, t, k, 0, 0);
            if (r && !rc)
                rc = r;
        }
    }
    pthread_rwlock_unlock(&e->lock);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Background work: interval flushes, retention, scrub. One thread; each duty has its own clock.
 */
#define BG_TICK_MS 20

static void background_tick(td_engine *e, int64_t now, int64_t *next_retention,
                            int64_t *scrub_credit, size_t *scrub_cursor)
{
    pthread_rwlock_rdlock(&e->lock);
    /* Seals of rolled segments (so that a roll never waits for a whole segment's fsync, and
     * recovery after a crash has little to scan): at once, or after none_seal_delay_ms under
     * fsync=none; and interval flushes. */
    for (size_t i = 0; i < e->ntopics; i++) {
        td_topic *t = e->topics[i];
        pthread_mutex_lock(&t->cfg_mu);
        int policy = t->cfg.fsync_policy;
        int64_t interval = t->cfg.fsync_interval_ms;
        pthread_mutex_unlock(&t->cfg_mu);
        for (int32_t k = 0; k < t->nparts; k++) {
            bool due = policy == TD_FSYNC_INTERVAL && now - t->last_sync_ms[k] >= interval &&
                       part_needs_sync(t->parts[k]);
            int64_t since;
            bool seal = part_seals_owed(t->parts[k], &since) &&
                        (policy != TD_FSYNC_NONE || now - since >= e->opts.none_seal_delay_ms);
            if (!due && !seal)
                continue;
            if (policy == TD_FSYNC_INTERVAL)
                t->last_sync_ms[k] = now;
            part_sync(t->parts[k]);
        }
    }
    /* The disk reserve, once a second while it is not whole: space freed by readers letting go
     * of deleted files, by retention, or by hand, lets appends resume without a restart. The
     * first attempt comes a second after the tick that found it released, not at once: it was
     * released because the disk was full, for a deletion that has yet to free its files. */
    if (reserve_whole(e->reserve)) {
        e->reserve_retry_ms = 0;
    } else if (e->reserve_retry_ms == 0) {
        e->reserve_retry_ms = now + 1000;
    } else if (now >= e->reserve_retry_ms) {
        e->reserve_retry_ms = now + 1000;
        reserve_restore(e->reserve);
    }
    /* Retention. */
    if (now >= *next_retention) {
        *next_retention = now + e->opts.retention_check_ms;
        int64_t wall = td_wall_ms();
        for (size_t i = 0; i < e->ntopics; i++) {
            for (int32_t k = 0; k < e->topics[i]->nparts; k++) {
                int64_t ls = part_log_start(e->topics[i]->parts[k]);
                part_enforce_retention(e->topics[i]->parts[k], wall, NULL);
                if (part_log_start(e->topics[i]->parts[k]) > ls)
                    engine_note_change(e, BROKER_CHANGE_TRIM, e->topics[i], k, 0, 0);
                part_expire_producers(e->topics[i]->parts[k],
                                      wall - e->opts.producer_id_expiration_ms);
            }
        }
    }
    /* Scrub: a budget of bytes per tick, spent on one partition after another. */
    if (e->opts.scrub_bytes_per_sec > 0 && e->ntopics > 0) {
        *scrub_credit += e->opts.scrub_bytes_per_sec * BG_TICK_MS / 1000;
        size_t total = 0;
        for (size_t i = 0; i < e->ntopics; i++)
            total += (size_t)e->topics[i]->nparts;
        for (size_t tries = 0; tries < total && *scrub_credit > 0; tries++) {
            size_t c = *scrub_cursor % total, i = 0;
            while (c >= (size_t)e->topics[i]->nparts)
                c -= (size_t)e->topics[i++]->nparts;
            int64_t checked = 0;
            part_scrub_step(e->topics[i]->parts[c], *scrub_credit, &checked);
            *scrub_credit -= checked;
            if (checked == 0)
                (*scrub_cursor)++; /* that partition has nothing sealed left this round */
        }
        if (*scrub_credit > e->opts.scrub_bytes_per_sec)
            *scrub_credit = e->opts.scrub_bytes_per_sec; /* no hoarding while idle */
    }
    pthread_rwlock_unlock(&e->lock);
}

static void *background_main(void *arg)
{
    td_engine *e = arg;
    int64_t next_retention = td_mono_ms() + e->opts.retention_check_ms;
    int64_t scrub_credit = 0;
    size_t scrub_cursor = 0;
    pthread_mutex_lock(&e->bg_mu);
    while (!e->stopping) {
        pthread_mutex_unlock(&e->bg_mu);
        background_tick(e, td_mono_ms(), &next_retention, &scrub_credit, &scrub_cursor);
        pthread_mutex_lock(&e->bg_mu);
        if (e->stopping)
            break;
        struct timespec ts = td_deadline_ns(CLOCK_REALTIME, BG_TICK_MS * 1000000LL);
        pthread_cond_timedwait(&e->bg_cv, &e->bg_mu, &ts);
    }
    pthread_mutex_unlock(&e->bg_mu);
    return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Produce
 */
/* The most bytes an event can take in an uncompressed batch: its data and the largest varints
 * of its record's fields (length, attributes, timestamp and offset deltas, key and value
 * lengths, header count, and each header's two lengths). */
static size_t record_bound(const td_event *ev)
{
    size_t n = 5 + 1 + 10 + 5 + 5 + ev->key_len + 5 + ev->value_len + 5;
    for (size_t i = 0; i < ev->header_count; i++)
        n += 10 + ev->headers[i].key_len + ev->headers[i].value_len;
    return n;
}

/*
 * Routes and appends events to topic t over its partitions parts[0..nparts) (the table's, or an
 * acquired reference's view) without waiting for durability; the caller holds a reference on
 * t. Fills results (may be NULL) and, per partition it appended to, ends[p] = the end offset to
 * wait for (others -1; ends has nparts entries).
 */
/* The expectations of the events of one partition's batch grp[from..to) (order: their indexes
 * in the call), into req (keys has room for them); TD_EINVAL for one without a key. */
static int expect_group(const td_event *grp, const size_t *order, size_t from, size_t to,
                        const int64_t *expected, part_expect *req)
{
    req->n = 0;
    for (size_t j = from; j < to; j++) {
        int64_t x = expected[order[j]];
        if (x == TD_VERSION_ANY)
            continue;
        if (x < TD_VERSION_EXISTS)
            return td_fail(TD_EINVAL, "event %zu: %" PRId64 " is not an expected version",
                           order[j], x);
        if (!grp[j].key)
            return td_fail(TD_EINVAL, "event %zu: an expected version needs a key", order[j]);
        req->keys[req->n++] = (part_expect_key){grp[j].key, grp[j].key_len, x, false, 0, 0, false};
    }
    return 0;
}

/* The partition of condition c over a topic of nparts (docs/event-sourcing.md#consistency-
 * boundaries): TD_EINVAL for a malformed one or keys of several partitions. */
static int cond_partition(const td_topic *t, int32_t nparts, const td_condition *c, int32_t *out)
{
    size_t nk = c->keys ? c->key_count : 0, nt = c->tags ? c->tag_count : 0;
    if (nk + nt == 0 || nk + nt > TD_CONDITION_KEYS_MAX)
        return td_fail(TD_EINVAL, "a condition needs 1 to %d keys and tags, not %zu",
                       TD_CONDITION_KEYS_MAX, nk + nt);
    for (size_t i = 0; i < nt; i++)
        if (!c->tags[i].key || c->tags[i].key_len == 0 || c->tags[i].key_len > TD_TAG_MAX_LEN)
            return td_fail(TD_EINVAL, "condition tag %zu: a tag has 1 to %d bytes", i,
                           TD_TAG_MAX_LEN);
    if (c->after < TD_VERSION_NO_STREAM)
        return td_fail(TD_EINVAL,
                       "a condition's position is an offset, or -1 (no event at all), not %" PRId64,
                       c->after);
    int32_t p = c->partition;
    if (nk == 0 && p == TD_PARTITION_ANY) { /* tags only: the events' partition (the caller's) */
        *out = TD_PARTITION_ANY;
        return 0;
    }
    for (size_t i = 0; i < nk; i++) {
        if (!c->keys[i].key)
            return td_fail(TD_EINVAL, "condition key %zu is NULL", i);
        if (c->partition != TD_PARTITION_ANY)
            continue;
        int32_t kp = td_partition_for_key(c->keys[i].key, c->keys[i].key_len, nparts);
        if (i > 0 && kp != p)
            return td_fail(TD_EINVAL,
                           "condition key %zu is in partition %" PRId32 " and key 0 in "
                           "partition %" PRId32 ": a consistency boundary is one partition until "
                           "transactions exist (choose keys of one partition, or name one)",
                           i, kp, p);
        p = kp;
    }
    if (p < 0 || p >= nparts)
        return td_fail(TD_ENOTFOUND, "topic '%s' has no partition %" PRId32, t->name, p);
    *out = p;
    return 0;
}

/* Appends condition c's keys to req (room for them), after the events' expectations. */
static void cond_group(const td_condition *c, part_expect *req)
{
    for (size_t i = 0; c->keys && i < c->key_count; i++)
        req->keys[req->n++] =
            (part_expect_key){c->keys[i].key, c->keys[i].key_len, c->after, true, 0, 0, false};
    for (size_t i = 0; c->tags && i < c->tag_count; i++)
        req->keys[req->n++] =
            (part_expect_key){c->tags[i].key, c->tags[i].key_len, c->after, true, 0, 0, true};
}

/* Event i's tags (TD_TAG_HEADER headers): at most TD_TAGS_MAX, each of 1 to TD_TAG_MAX_LEN bytes
 * (docs/event-sourcing.md#tags), or TD_EINVAL. */
static int check_tags(const td_event *ev, size_t i)
{
    size_t nt = 0, hl = sizeof(TD_TAG_HEADER) - 1;
    for (size_t h = 0; h < ev->header_count; h++) {
        const td_header *x = &ev->headers[h];
        if (x->key_len != hl || memcmp(x->key, TD_TAG_HEADER, hl) != 0)
            continue;
        if (!x->value || x->value_len == 0 || x->value_len > TD_TAG_MAX_LEN)
            return td_fail(TD_EINVAL, "event %zu: a tag (" TD_TAG_HEADER ") has 1 to %d bytes", i,
                           TD_TAG_MAX_LEN);
        if (++nt > TD_TAGS_MAX)
            return td_fail(TD_EINVAL, "event %zu: an event has at most %d tags", i, TD_TAGS_MAX);
    }
    return 0;
}

static int produce_append(td_topic *t, int32_t nparts, td_part **parts, const td_event *events,
                          const int64_t *expected, size_t n, const td_condition *cond,
                          td_produce_result *results, int64_t *ends, td_version_conflict *conflict)
{
    int32_t *pidx = malloc(n * sizeof(*pidx));
    td_event *grp = malloc(n * sizeof(*grp));
    size_t *order = malloc(n * sizeof(*order));
    bool *done_parts = calloc((size_t)nparts, sizeof(bool));
    bool checked = expected || cond; /* appended through part_append_expect */
    size_t cap = (expected ? n : 0) +
                 (cond ? (cond->keys ? cond->key_count : 0) + (cond->tags ? cond->tag_count : 0)
                       : 0);
    part_expect req = {checked ? malloc(TD_MAX(cap, 1) * sizeof(part_expect_key)) : NULL, 0, 0, 0};
    int32_t cond_part = -1;
    td_buf b;
    td_buf_init(&b);
    void *traced = NULL; /* the events with a traceparent injected (trace.inject), if any */
    int rc = 0;
    for (int32_t p = 0; p < nparts; p++)
        ends[p] = -1;
    if (!pidx || !grp || !order || !done_parts || (checked && !req.keys) ||
        (!t->system && broker_trace_inject(t->engine, events, n, &events, &traced) != 0)) {
        rc = -ENOMEM;
        goto out;
    }
    pthread_mutex_lock(&t->cfg_mu);
    int ts_type = t->cfg.timestamp_type;
    size_t max_batch = (size_t)t->cfg.max_message_bytes;
    pthread_mutex_unlock(&t->cfg_mu);
    /* Events without a key and without a partition all go to one partition per call, picked
     * round-robin (Kafka's sticky partitioning per batch): one batch, one append. */
    int32_t sticky =
        (int32_t)(__atomic_fetch_add(&t->round_robin, 1, __ATOMIC_RELAXED) % (uint32_t)nparts);
    if (cond && (rc = cond_partition(t, nparts, cond, &cond_part)) != 0)
        goto out;
    if (cond && cond_part >= 0) /* events without a key nor partition: the boundary's */
        sticky = cond_part;
    for (size_t i = 0; i < n; i++) {
        int32_t p = events[i].partition;
        if (p == TD_PARTITION_ANY)
            p = events[i].key ? td_partition_for_key(events[i].key, events[i].key_len, nparts)
                              : sticky;
        if (p < 0 || p >= nparts) {
            rc = td_fail(TD_ENOTFOUND, "topic '%s' has no partition %" PRId32, t->name, p);
            goto out;
        }
        if ((rc = check_tags(&events[i], i)) != 0)
            goto out;
        if (cond && cond_part == TD_PARTITION_ANY) /* a condition of tags only: event 0's */
            cond_part = p;
        if (cond && p != cond_part) {
            rc = td_fail(TD_EINVAL,
                         "event %zu goes to partition %" PRId32 ", the condition's partition is "
                         "%" PRId32 ": a consistency boundary is one partition until transactions "
                         "exist",
                         i, p, cond_part);
            goto out;
        }
        pidx[i] = p;
    }
    int64_t now = td_wall_ms();
    /* Group by partition in order of first appearance, keeping each partition's order. */
    for (size_t i = 0; i < n && rc == 0; i++) {
        int32_t p = pidx[i];
        if (done_parts[p])
            continue;
        done_parts[p] = true;
        size_t k = 0;
        for (size_t j = i; j < n; j++) {
            if (pidx[j] != p)
                continue;
            grp[k] = events[j];
            if (grp[k].timestamp_ms <= 0)
                grp[k].timestamp_ms = now;
            order[k++] = j;
        }
        /* As few batches as max.message.bytes allows (an event too big alone is refused by the
         * append), each one appended whole. */
        for (size_t from = 0, to; from < k && rc == 0; from = to) {
            size_t bytes = TD_BATCH_HEADER_SIZE + record_bound(&grp[from]);
            for (to = from + 1; to < k && bytes + record_bound(&grp[to]) <= max_batch; to++)
                bytes += record_bound(&grp[to]);
            req.n = 0;
            if (expected && (rc = expect_group(grp, order, from, k, expected, &req)) != 0)
                break;
            size_t nexp = req.n; /* the events' expectations; the condition's keys follow */
            if (cond)
                cond_group(cond, &req);
            if (req.n && to < k) {
                rc = td_fail(TD_ETOOBIG,
                             "the events for partition %" PRId32 " of topic '%s' carry "
                             "conditions and are appended all or nothing, as one batch: "
                             "together they exceed max.message.bytes (%zu)",
                             p, t->name, max_batch);
                break;
            }
            td_batch_encode_opts o;
            batch_encode_opts_init(&o);
            o.timestamp_type = ts_type;
            td_buf_reset(&b);
            if ((rc = batch_encode(&b, &o, grp + from, to - from)) != 0)
                break;
            td_append_result ar;
            if (req.n)
                rc = part_append_expect(parts[p], b.p, b.len, now, &ar, &req);
            else
                rc = part_append_unchecked(parts[p], b.p, b.len, now, &ar); /* just encoded */
            if (rc == TD_EVERSION && conflict) {
                /* req.keys[req.failed] is the failed one's: find its event. */
                size_t seen = 0;
                for (size_t j = from; j < to && req.failed < nexp; j++)
                    if (expected[order[j]] != TD_VERSION_ANY && seen++ == req.failed)
                        conflict->index = order[j];
                if (req.failed >= nexp) /* condition key req.failed - nexp: index n + it */
                    conflict->index = n + (req.failed - nexp);
                conflict->partition = p;
                conflict->current = req.keys[req.failed].current;
            }
            if (rc)
                break;
            for (size_t j = from; results && j < to; j++)
                results[order[j]] = (td_produce_result){p, ar.base_offset + (int64_t)(j - from)};
            ends[p] = ar.end_offset;
            if (!t->system) /* the broker's own health events make no spans */
                engine_trace_events(t->engine, t->name, p, grp + from, to - from, ar.base_offset,
                                    now);
            engine_note_change(t->engine, BROKER_CHANGE_APPEND, t, p, (int64_t)(to - from),
                               ar.end_offset);
        }
    }
out:
    td_buf_free(&b);
    free(traced);
    free(pidx);
    free(grp);
    free(order);
    free(done_parts);
    free(req.keys);
    return rc;
}

int td_produce(td_engine *e, const char *topic, const td_event *events, size_t n,
               td_produce_result *results)
{
    return td_produce_cond(e, topic, events, NULL, n, NULL, results, NULL);
}

int td_produce_expect(td_engine *e, const char *topic, const td_event *events,
                      const int64_t *expected, size_t n, td_produce_result *results,
                      td_version_conflict *conflict)
{
    return td_produce_cond(e, topic, events, expected, n, NULL, results, conflict);
}

int td_produce_cond(td_engine *e, const char *topic, const td_event *events,
                    const int64_t *expected, size_t n, const td_condition *cond,
                    td_produce_result *results, td_version_conflict *conflict)
{
    td_error_clear();
    if (n == 0)
        return 0;
    if (!events)
        return td_fail(TD_EINVAL, "no events");
    for (size_t i = 0; results && i < n; i++)
        results[i] = (td_produce_result){-1, -1};
    int rc = engine_internal_refused(e, topic, "write to");
    if (rc)
        return rc;
    pthread_rwlock_rdlock(&e->lock);
    td_topic *t = engine_find_locked(e, topic);
    int64_t *ends = t ? malloc((size_t)t->nparts * sizeof(*ends)) : NULL;
    if (!t)
        rc = td_fail(TD_ENOTFOUND, "topic '%s' does not exist", topic);
    else if (!ends)
        rc = -ENOMEM;
    else
        rc = produce_append(t, t->nparts, t->parts, events, expected, n, cond, results, ends,
                            conflict);
    /* Wait for durability after all appends, so partitions of one call share the wait; also
     * for what a failed call did append. */
    for (int32_t p = 0; t && ends && p < t->nparts; p++) {
        if (ends[p] < 0)
            continue;
        int r = part_wait_durable(t->parts[p], ends[p]);
        if (r && !rc)
            rc = r;
    }
    pthread_rwlock_unlock(&e->lock);
    free(ends);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * broker.h
 */
struct td_topic_ref {
    td_topic *t;
    int32_t nparts;
    td_part **parts;
};

/* A reference on t, from the table (the caller holds the engine's read lock); NULL for no t
 * or no memory. */
static td_topic_ref *ref_new_locked(td_topic *t)
{
    td_topic_ref *r = t ? calloc(1, sizeof(*r)) : NULL;
    if (r) {
        topic_ref(t);
        r->t = t;
        r->nparts = t->nparts;
        r->parts = t->parts; /* kept alive until the topic is freed (see add_partitions) */
    }
    return r;
}

int broker_topic_acquire(td_engine *e, const char *name, td_topic_ref **out)
{
    pthread_rwlock_rdlock(&e->lock);
    td_topic *t = engine_find_locked(e, name);
    td_topic_ref *r = ref_new_locked(t);
    pthread_rwlock_unlock(&e->lock);
    if (!r)
        return t ? -ENOMEM : td_fail(TD_ENOTFOUND, "topic '%s' does not exist", name);
    *out = r;
    return 0;
}

int broker_topic_acquire_id(td_engine *e, int64_t id, td_topic_ref **out)
{
    pthread_rwlock_rdlock(&e->lock);
    td_topic *t = NULL;
    for (size_t i = 0; i < e->ntopics && !t; i++)
        if (e->topics[i]->id == id)
            t = e->topics[i];
    td_topic_ref *r = ref_new_locked(t);
    pthread_rwlock_unlock(&e->lock);
    if (!r)
        return t ? -ENOMEM : td_fail(TD_ENOTFOUND, "no topic has id %" PRId64, id);
    *out = r;
    return 0;
}

void broker_topic_release(td_topic_ref *r)
{
    if (!r)
        return;
    topic_unref(r->t);
    free(r);
}

bool broker_topic_internal(const td_topic_ref *r)
{
    return state_topic_internal(r->t->name);
}

bool broker_topic_readonly(const td_topic_ref *r)
{
    return state_topic_internal(r->t->name) || r->t->system;
}

int32_t broker_topic_partitions(const td_topic_ref *r)
{
    return r->nparts;
}

td_part *broker_topic_part(const td_topic_ref *r, int32_t i)
{
    return i >= 0 && i < r->nparts ? r->parts[i] : NULL;
}

td_topic *engine_topic_of(const td_topic_ref *r)
{
    return r->t;
}

void broker_topic_config(const td_topic_ref *r, td_topic_config *out)
{
    pthread_mutex_lock(&r->t->cfg_mu);
    *out = r->t->cfg;
    pthread_mutex_unlock(&r->t->cfg_mu);
}

bool broker_topic_deleted(const td_topic_ref *r)
{
    return __atomic_load_n(&r->t->deleted, __ATOMIC_ACQUIRE);
}

int64_t broker_topic_id(const td_topic_ref *r)
{
    return r->t->id;
}

const char *broker_topic_name(const td_topic_ref *r)
{
    return r->t->name;
}

void broker_topic_count_out(td_topic_ref *r, uint64_t events, uint64_t bytes)
{
    td_topic *t = r->t;
    td_counter_add(t->m_events_out, events);
    td_counter_add(t->m_bytes_out, bytes);
}

void broker_note_append(td_topic_ref *r, int32_t partition, int64_t count, int64_t end)
{
    if (count > 0)
        engine_note_change(r->t->engine, BROKER_CHANGE_APPEND, r->t, partition, count, end);
}

int broker_add_advance_hook(td_engine *e, void (*fn)(void *arg), void *arg)
{
    int rc = td_fail(TD_EFULL, "more than %d high-watermark hooks", BROKER_MAX_HOOKS);
    pthread_rwlock_wrlock(&e->lock);
    for (size_t i = 0; i < TD_ARRAY_LEN(e->hooks); i++)
        if (!e->hooks[i].fn) {
            __atomic_store_n(&e->hooks[i].arg, arg, __ATOMIC_RELAXED);
            __atomic_store_n(&e->hooks[i].fn, fn, __ATOMIC_RELEASE);
            rc = 0;
            break;
        }
    pthread_rwlock_unlock(&e->lock);
    if (rc == 0)
        td_error_clear();
    return rc;
}

void broker_remove_advance_hook(td_engine *e, void (*fn)(void *arg), void *arg)
{
    pthread_rwlock_wrlock(&e->lock);
    for (size_t i = 0; i < TD_ARRAY_LEN(e->hooks); i++)
        if (e->hooks[i].fn == fn && e->hooks[i].arg == arg) {
            __atomic_store_n(&e->hooks[i].fn, NULL, __ATOMIC_RELEASE);
            break;
        }
    pthread_rwlock_unlock(&e->lock);
}

uint64_t broker_topics_generation(td_engine *e)
{
    return __atomic_load_n(&e->topics_gen, __ATOMIC_ACQUIRE);
}

/* ---------------------------------------------------------------------------------------------
 * The flusher: one thread per engine that fsyncs the partitions asynchronous producers (the
 * network server) wait on, so that no event loop ever blocks on fsync. Each round takes the
 * whole queue, so one fdatasync per partition covers every request that arrived meanwhile:
 * group commit across connections and loops.
 */
struct flush_req {
    td_topic *t; /* referenced */
    td_part *p;
};

int broker_produce_nowait(td_topic_ref *r, const td_event *events, size_t n,
                          td_produce_result *results, int64_t *ends)
{
    return broker_produce_cond_nowait(r, events, NULL, n, NULL, results, ends, NULL);
}

int broker_produce_expect_nowait(td_topic_ref *r, const td_event *events,
                                 const int64_t *expected, size_t n, td_produce_result *results,
                                 int64_t *ends, td_version_conflict *conflict)
{
    return broker_produce_cond_nowait(r, events, expected, n, NULL, results, ends, conflict);
}

int broker_produce_cond_nowait(td_topic_ref *r, const td_event *events, const int64_t *expected,
                               size_t n, const td_condition *cond, td_produce_result *results,
                               int64_t *ends, td_version_conflict *conflict)
{
    td_error_clear();
    for (size_t i = 0; results && i < n; i++)
        results[i] = (td_produce_result){-1, -1};
    for (int32_t p = 0; p < r->nparts; p++)
        ends[p] = -1;
    if (n == 0)
        return 0;
    if (__atomic_load_n(&r->t->deleted, __ATOMIC_ACQUIRE))
        return td_fail(TD_ENOTFOUND, "topic '%s' was deleted", r->t->name);
    int rc = engine_internal_refused(r->t->engine, r->t->name, "write to");
    if (rc)
        return rc;
    /* Routed over the partitions the reference knows (added ones are used by the next). */
    return produce_append(r->t, r->nparts, r->parts, events, expected, n, cond, results, ends,
                          conflict);
}

int engine_produce_own(td_topic_ref *r, const td_event *events, size_t n, int64_t *ends)
{
    for (int32_t p = 0; p < r->nparts; p++)
        ends[p] = -1;
    if (__atomic_load_n(&r->t->deleted, __ATOMIC_ACQUIRE))
        return td_fail(TD_ENOTFOUND, "topic '%s' was deleted", r->t->name);
    return produce_append(r->t, r->nparts, r->parts, events, NULL, n, NULL, NULL, ends, NULL);
}

int broker_when_durable(td_topic_ref *r, int32_t partition, int64_t end, td_durable_cb cb,
                        void *arg)
{
    td_part *p = broker_topic_part(r, partition);
    if (!p)
        return td_fail(TD_ENOTFOUND, "no partition %" PRId32, partition);
    td_topic_config cfg;
    broker_topic_config(r, &cfg);
    if (cfg.fsync_policy != TD_FSYNC_ALWAYS) {
        if (cb)
            cb(arg, 0);
        return 0;
    }
    int rc = cb ? part_on_durable(p, end, cb, arg) : 0;
    if (rc)
        return rc;
    td_engine *eng = r->t->engine;
    pthread_mutex_lock(&eng->flush_mu);
    if (td_grow(&eng->flushq, &eng->flushq_cap, eng->nflushq, sizeof(*eng->flushq), 64) != 0) {
        pthread_mutex_unlock(&eng->flush_mu);
        /* The waiter is registered; sync here rather than leave it hanging. The sync answers
         * it, with the sync's error if any: returning that error too would have the caller
         * answer (and free) the same waiter a second time. */
        part_sync(p);
        return 0;
    }
    topic_ref(r->t);
    eng->flushq[eng->nflushq++] = (struct flush_req){r->t, p};
    if (eng->nflushq == 1)
        pthread_cond_signal(&eng->flush_cv);
    pthread_mutex_unlock(&eng->flush_mu);
    return 0;
}

static int flush_req_cmp(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const struct flush_req *)a)->p;
    uintptr_t y = (uintptr_t)((const struct flush_req *)b)->p;
    return x < y ? -1 : x > y;
}

static void *flusher_main(void *arg)
{
    td_engine *e = arg;
    struct flush_req *work = NULL;
    size_t nwork = 0, work_cap = 0;
    pthread_mutex_lock(&e->flush_mu);
    for (;;) {
        while (e->nflushq == 0 && !e->flush_stopping)
            pthread_cond_wait(&e->flush_cv, &e->flush_mu);
        if (e->nflushq == 0 && e->flush_stopping)
            break;
        /* Swap the queue out, so producers keep queueing while this round syncs. */
        struct flush_req *q = e->flushq;
        size_t cap = e->flushq_cap;
        nwork = e->nflushq;
        e->flushq = work;
        e->flushq_cap = work_cap;
        e->nflushq = 0;
        work = q;
        work_cap = cap;
        pthread_mutex_unlock(&e->flush_mu);
        qsort(work, nwork, sizeof(*work), flush_req_cmp);
        for (size_t i = 0; i < nwork; i++)
            if (i == 0 || work[i].p != work[i - 1].p)
                part_sync(work[i].p);
        for (size_t i = 0; i < nwork; i++)
            topic_unref(work[i].t);
        pthread_mutex_lock(&e->flush_mu);
    }
    pthread_mutex_unlock(&e->flush_mu);
    free(work);
    return NULL;
}
