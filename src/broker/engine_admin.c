/*
 * engine_admin.c: topic administration behind include/tidings.h (create, delete, alter, add
 * partitions, list, describe) and the per-partition calls by topic name (describe, delete
 * records, offsets). The topic table and its locking are engine.c's (see its top).
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/engine_int.h"
#include "broker/health.h"
#include "broker/state.h"
#include "broker/xgroup.h"

/* ---------------------------------------------------------------------------------------------
 * Topic administration
 *
 * Creating or growing a topic makes a directory, files and fsyncs per partition: seconds for
 * thousands of partitions on a busy disk, minutes for the 100 000 a request may ask. That work
 * runs without admin_mu, so that committed offsets, group listings and changes of other topics
 * go on meanwhile; the topic's name is marked busy instead. Another change of that topic is
 * refused at once rather than waited for, since its caller is usually an event loop, which must
 * not wait minutes: a creation finds the name taken, and a deletion, a change or a growth finds
 * the topic missing (while it is created) or busy (while it grows).
 */
static bool busy_has(const td_engine *e, const char *name)
{
    for (size_t i = 0; i < e->nbusy; i++)
        if (!strcmp(e->busy[i], name))
            return true;
    return false;
}

/* 0 if no creation or growth of name is under way, else the error for another change (creating
 * says which kind). Caller holds admin_mu. */
static int busy_check(td_engine *e, const char *name, bool creating)
{
    if (!busy_has(e, name))
        return 0;
    if (creating)
        return td_fail(TD_EEXIST, "topic '%s' already exists (its partitions are being made)",
                       name);
    pthread_rwlock_rdlock(&e->lock);
    bool exists = engine_find_locked(e, name) != NULL;
    pthread_rwlock_unlock(&e->lock);
    if (!exists)
        return td_fail(TD_ENOTFOUND, "topic '%s' does not exist", name);
    return td_fail(TD_EINVAL, "topic '%s' is getting new partitions: try again once that is done",
                   name);
}

/* busy_check, then marks name busy. Caller holds admin_mu. */
static int busy_enter(td_engine *e, const char *name, bool creating)
{
    int rc = busy_check(e, name, creating);
    if (rc)
        return rc;
    if (td_grow(&e->busy, &e->busy_cap, e->nbusy, sizeof(*e->busy), 4) != 0)
        return -ENOMEM;
    snprintf(e->busy[e->nbusy++], sizeof(e->busy[0]), "%s", name);
    return 0;
}

/*
 * max_partitions: whether `adding` more partitions fit with the table's and those being made;
 * if so they are counted as being made until busy_leave. Caller holds admin_mu. O(topics).
 */
static int partitions_reserve(td_engine *e, int64_t adding)
{
    int64_t max = e->opts.max_partitions;
    if (max <= 0)
        return 0;
    int64_t have = e->parts_pending;
    pthread_rwlock_rdlock(&e->lock);
    for (size_t i = 0; i < e->ntopics; i++) /* the broker's own topics are not the users' */
        have += state_topic_internal(e->topics[i]->name) || e->topics[i]->system
                    ? 0
                    : e->topics[i]->nparts;
    pthread_rwlock_unlock(&e->lock);
    if (have + adding > max)
        return td_fail(TD_EINVAL,
                       "%" PRId64 " more partitions would pass the broker's limit: it has %" PRId64
                       " of its max.partitions %" PRId64,
                       adding, have, max);
    e->parts_pending += adding;
    return 0;
}

/* Takes the lock and ends busy_enter's mark, and partitions_reserve's count of `made`. */
static void busy_leave(td_engine *e, const char *name, int64_t made)
{
    pthread_mutex_lock(&e->admin_mu);
    e->parts_pending -= made;
    for (size_t i = 0; i < e->nbusy; i++)
        if (!strcmp(e->busy[i], name)) {
            if (i != --e->nbusy) /* the last one takes its place: order does not matter */
                memcpy(e->busy[i], e->busy[e->nbusy], sizeof(e->busy[0]));
            break;
        }
    pthread_mutex_unlock(&e->admin_mu);
}

/* The internal state topics take no writes, deletions or growth from clients (state.h): TD_ENAME,
 * which Kafka's clients see as INVALID_TOPIC_EXCEPTION, Kafka's answer for a produce to an
 * internal topic. Before the state topics are open, the engine itself makes them. */
int engine_internal_refused(td_engine *e, const char *name, const char *what)
{
    if (e->state && state_topic_internal(name))
        return td_fail(TD_ENAME, "cannot %s internal topic %s", what, name);
    if (health_topic_name(name))
        return td_fail(TD_ENAME,
                       "cannot %s system topic %s: the broker alone writes its health "
                       "events",
                       what, name);
    return 0;
}

/* td_topic_create, or with own the engine's creation of a system topic (health.c). */
static int topic_create(td_engine *e, const char *name, int32_t partitions,
                        const td_config_entry *config, size_t config_n, bool own)
{
    td_error_clear();
    int rc = td_topic_name_validate(name);
    if (rc)
        return rc;
    if (!own && health_topic_name(name))
        return td_fail(TD_ENAME, "topic names starting with %s are the broker's system topics",
                       HEALTH_TOPIC_PREFIX);
    if (partitions < 1 || partitions > TD_MAX_PARTITIONS)
        return td_fail(TD_EINVAL, "a topic needs from 1 to %d partitions, not %" PRId32,
                       TD_MAX_PARTITIONS, partitions);
    td_catalog_topic ct;
    memset(&ct, 0, sizeof(ct));
    snprintf(ct.name, sizeof(ct.name), "%s", name);
    ct.partitions = partitions;
    ct.created_ms = td_wall_ms();
    td_topic_config_init(&ct.config);
    if ((rc = td_topic_config_apply(&ct.config, config, config_n)) != 0)
        return rc;
    pthread_mutex_lock(&e->admin_mu);
    if ((rc = busy_enter(e, name, true)) != 0) {
        pthread_mutex_unlock(&e->admin_mu);
        return rc;
    }
    pthread_rwlock_rdlock(&e->lock);
    bool exists = engine_find_locked(e, name) != NULL;
    pthread_rwlock_unlock(&e->lock);
    int64_t made = 0;
    int64_t counted = state_topic_internal(name) || own ? 0 : partitions;
    if (!exists && (rc = partitions_reserve(e, counted)) == 0)
        made = counted;
    pthread_mutex_unlock(&e->admin_mu);
    td_topic *t = NULL;
    if (exists) {
        rc = td_fail(TD_EEXIST, "topic '%s' already exists", name);
        goto out;
    }
    if (rc)
        goto out;
    /* Partitions first (without admin_mu: the name is busy), then the catalog: a crash in
     * between leaves a directory that the next open moves to the trash, never a catalog entry
     * without its data. */
    if (!(t = engine_topic_new(e, &ct))) {
        rc = -ENOMEM;
        goto out;
    }
    if ((rc = engine_open_parts(e, t, t->parts, 0, partitions)) != 0) {
        t->nparts = 0;
        goto out;
    }
    pthread_mutex_lock(&e->admin_mu);
    if ((rc = catalog_topic_add(e->cat, &ct)) == 0) {
        t->id = ct.id;
        pthread_rwlock_wrlock(&e->lock);
        rc = engine_table_insert(e, t);
        if (rc == 0)
            __atomic_add_fetch(&e->topics_gen, 1, __ATOMIC_ACQ_REL);
        pthread_rwlock_unlock(&e->lock);
    }
    pthread_mutex_unlock(&e->admin_mu);
    if (rc == 0) {
        TD_INFO("engine", "created topic %s with %" PRId32 " partitions", name, partitions);
        engine_note_change(e, BROKER_CHANGE_CREATE, t, -1, 0, 0); /* t is the table's */
        t = NULL;
    }
out:
    if (t) {
        t->deleted = true;
        engine_topic_free(t);
        engine_topic_metrics_remove(e, name);
        char dir[PATH_MAX];
        snprintf(dir, sizeof(dir), "%s/topics/%s", e->dir, name);
        td_io_remove_tree(e->io, dir);
    }
    busy_leave(e, name, made);
    return rc;
}

int td_topic_create(td_engine *e, const char *name, int32_t partitions,
                    const td_config_entry *config, size_t config_n)
{
    return topic_create(e, name, partitions, config, config_n, false);
}

int engine_topic_create_own(td_engine *e, const char *name, int32_t partitions,
                            const td_config_entry *config, size_t config_n)
{
    return topic_create(e, name, partitions, config, config_n, true);
}

int td_topic_delete(td_engine *e, const char *name)
{
    td_error_clear();
    int rc = engine_internal_refused(e, name, "delete");
    if (rc)
        return rc;
    pthread_mutex_lock(&e->admin_mu);
    rc = busy_check(e, name, false);
    if (rc) {
        pthread_mutex_unlock(&e->admin_mu);
        return rc;
    }
    pthread_rwlock_wrlock(&e->lock);
    ssize_t at = engine_table_find(e, name);
    if (at < 0) {
        rc = td_fail(TD_ENOTFOUND, "topic '%s' does not exist", name);
        pthread_rwlock_unlock(&e->lock);
        goto out;
    }
    td_topic *t = e->topics[at];
    rc = catalog_topic_remove(e->cat, name);
    if (rc == -ENOSPC) {
        /* The catalog's transaction needs a little space (its write-ahead log) before the topic's
         * files can free any: on a full disk, that is what the reserve is for. */
        char why[TD_TOPIC_NAME_MAX + 32];
        snprintf(why, sizeof(why), "deleting topic %s", name);
        if (reserve_release(e->reserve, why) == 0)
            rc = catalog_topic_remove(e->cat, name);
    }
    if (rc) {
        pthread_rwlock_unlock(&e->lock);
        goto out;
    }
    memmove(e->topics + at, e->topics + at + 1,
            (e->ntopics - (size_t)at - 1) * sizeof(*e->topics));
    e->ntopics--;
    __atomic_add_fetch(&e->topics_gen, 1, __ATOMIC_ACQ_REL);
    __atomic_store_n(&t->deleted, true, __ATOMIC_RELEASE);
    for (int32_t i = 0; i < t->nparts; i++)
        part_mark_deleted(t->parts[i]);
    pthread_rwlock_unlock(&e->lock);
    char from[PATH_MAX], to[PATH_MAX];
    snprintf(from, sizeof(from), "%s/topics/%s", e->dir, name);
    snprintf(to, sizeof(to), "%s/trash/%s.%" PRId64, e->dir, name, t->id);
    int r2 = e->io->rename(e->io, from, to);
    engine_topic_metrics_remove(e, name);
    xgroups_forget_topic(e, t->id);
    gstate_forget_topic(e, name); /* tombstones for its committed offsets, under admin_mu */
    TD_INFO("engine", "deleted topic %s", name);
    engine_note_change(e, BROKER_CHANGE_DELETE, t, -1, 0, 0);
    if (r2 != 0) {
        /* Without the rename (the trash is not writable), the files go where they are, under
         * admin_mu, since a topic of the same name could otherwise be created there meanwhile:
         * the space is what the caller wants back. A crash in between leaves an orphan that the
         * next open moves to the trash. */
        r2 = td_io_remove_tree(e->io, from);
        pthread_mutex_unlock(&e->admin_mu);
    } else {
        /* The files and the partitions go without admin_mu: thousands of partitions take
         * seconds to remove, and offsets and other topics must not wait. In the trash the files
         * are this topic generation's alone (a topic of the same name may be created
         * meanwhile). */
        pthread_mutex_unlock(&e->admin_mu);
        r2 = td_io_remove_tree(e->io, to);
    }
    if (r2)
        TD_WARN("engine", "deleted topic %s, but could not remove its files: %s", name,
                td_strerror(r2));
    topic_unref(t); /* the table's reference: iterators may still hold theirs */
    /* Its files are gone (or go when the last reader lets go): appends may resume. */
    reserve_restore(e->reserve);
    return 0;
out:
    pthread_mutex_unlock(&e->admin_mu);
    return rc;
}

int td_topic_alter(td_engine *e, const char *name, const td_config_entry *config,
                   size_t config_n)
{
    td_error_clear();
    pthread_mutex_lock(&e->admin_mu);
    int rc = busy_check(e, name, false);
    if (rc) {
        pthread_mutex_unlock(&e->admin_mu);
        return rc;
    }
    pthread_rwlock_rdlock(&e->lock);
    td_topic *t = engine_find_locked(e, name);
    if (!t) {
        rc = td_fail(TD_ENOTFOUND, "topic '%s' does not exist", name);
        goto out;
    }
    td_catalog_topic ct;
    if ((rc = catalog_topic_get(e->cat, name, &ct)) != 0)
        goto out;
    if ((rc = td_topic_config_apply(&ct.config, config, config_n)) != 0)
        goto out;
    if (state_topic_internal(name) && !(ct.config.cleanup_policy & TD_CLEANUP_COMPACT)) {
        rc = td_fail(TD_ECONFIG, "internal topic %s keeps cleanup.policy=compact", name);
        goto out;
    }
    if (state_topic_internal(name) && ct.config.trace_index) {
        rc = td_fail(TD_ECONFIG, "internal topic %s is never trace-indexed", name);
        goto out;
    }
    rc = catalog_topic_update(e->cat, &ct);
    /* Lowering retention is how a Kafka operator frees a full disk: such a change may use the
     * reserve, and is applied at once rather than at the next retention pass. */
    bool retention = false, released = false;
    for (size_t i = 0; i < config_n; i++)
        retention |= strncmp(config[i].key, "retention.", 10) == 0;
    if (rc == -ENOSPC && retention) {
        char why[TD_TOPIC_NAME_MAX + 48];
        snprintf(why, sizeof(why), "changing the retention of topic %s", name);
        if ((released = reserve_release(e->reserve, why) == 0))
            rc = catalog_topic_update(e->cat, &ct);
    }
    if (rc)
        goto out;
    pthread_mutex_lock(&t->cfg_mu);
    t->cfg = ct.config;
    pthread_mutex_unlock(&t->cfg_mu);
    for (int32_t i = 0; i < t->nparts; i++) {
        part_set_config(t->parts[i], &ct.config);
        char label[TD_TOPIC_NAME_MAX + 16];
        snprintf(label, sizeof(label), "%s/%" PRId32, t->name, i);
        table_part_config(e, t->parts[i], &ct.config, label);
        int64_t ls = part_log_start(t->parts[i]);
        if (released)
            part_enforce_retention(t->parts[i], td_wall_ms(), NULL);
        if (part_log_start(t->parts[i]) > ls)
            engine_note_change(e, BROKER_CHANGE_TRIM, t, i, 0, 0);
    }
    if (released)
        reserve_restore(e->reserve);
out:
    pthread_rwlock_unlock(&e->lock);
    pthread_mutex_unlock(&e->admin_mu);
    return rc;
}

int td_topic_add_partitions(td_engine *e, const char *name, int32_t total)
{
    td_error_clear();
    int64_t made = 0; /* partitions_reserve's count, given back by busy_leave */
    /* A group's partition of __consumer_offsets depends on the count. */
    int rc = engine_internal_refused(e, name, "add partitions to");
    if (rc)
        return rc;
    pthread_mutex_lock(&e->admin_mu);
    rc = busy_enter(e, name, false);
    if (rc) {
        pthread_mutex_unlock(&e->admin_mu);
        return rc;
    }
    pthread_rwlock_rdlock(&e->lock);
    td_topic *t = engine_find_locked(e, name);
    td_part **parts = NULL;
    int64_t *syncs = NULL;
    if (!t) {
        rc = td_fail(TD_ENOTFOUND, "topic '%s' does not exist", name);
        pthread_rwlock_unlock(&e->lock);
        goto out;
    }
    int32_t have = t->nparts;
    pthread_rwlock_unlock(&e->lock);
    if (total <= have || total > TD_MAX_PARTITIONS) {
        rc = td_fail(TD_EINVAL, "topic '%s' has %" PRId32 " partitions; the new total must be "
                                "more than that and at most %d", name, have, TD_MAX_PARTITIONS);
        goto out;
    }
    if ((rc = partitions_reserve(e, total - have)) != 0)
        goto out;
    made = total - have;
    parts = calloc((size_t)total, sizeof(*parts));
    syncs = calloc((size_t)total, sizeof(*syncs));
    if (!parts || !syncs) {
        rc = -ENOMEM;
        goto out;
    }
    memcpy(parts, t->parts, (size_t)have * sizeof(*parts));
    /* The new partitions' files, without admin_mu: the name is busy, so t is neither deleted
     * nor grown nor reconfigured meanwhile. */
    pthread_mutex_unlock(&e->admin_mu);
    rc = engine_open_parts(e, t, parts, have, total);
    pthread_mutex_lock(&e->admin_mu);
    if (rc)
        goto out;
    td_catalog_topic ct;
    if ((rc = catalog_topic_get(e->cat, name, &ct)) == 0) {
        ct.partitions = total;
        rc = catalog_topic_update(e->cat, &ct);
    }
    if (rc) {
        for (int32_t i = have; i < total; i++)
            part_close(parts[i]);
        goto out;
    }
    /* Swap the arrays; references taken earlier may still read the old one, so it is kept
     * until the topic is freed. */
    pthread_rwlock_wrlock(&e->lock);
    td_part **old = t->parts;
    td_part ***nr = realloc(t->retired, (t->nretired + 1) * sizeof(*nr));
    if (nr) {
        t->retired = nr;
        t->retired[t->nretired++] = old;
    }
    free(t->last_sync_ms);
    t->parts = parts;
    t->last_sync_ms = syncs;
    t->nparts = total;
    __atomic_add_fetch(&e->topics_gen, 1, __ATOMIC_ACQ_REL);
    pthread_rwlock_unlock(&e->lock);
    if (!nr)
        free(old); /* out of memory for the list: only safe because nothing else holds it */
    parts = NULL;
    syncs = NULL;
    TD_INFO("engine", "topic %s now has %" PRId32 " partitions", name, total);
out:
    free(parts);
    free(syncs);
    pthread_mutex_unlock(&e->admin_mu);
    busy_leave(e, name, made);
    return rc;
}

static void fill_info(td_topic *t, td_topic_info *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->name, sizeof(out->name), "%s", t->name);
    out->partitions = t->nparts;
    out->created_ms = t->created_ms;
    out->internal = state_topic_internal(t->name);
    out->system = t->system;
    pthread_mutex_lock(&t->cfg_mu);
    out->config = t->cfg;
    pthread_mutex_unlock(&t->cfg_mu);
}

static int topic_list(td_engine *e, bool internal, td_topic_info **out, size_t *count)
{
    td_error_clear();
    pthread_rwlock_rdlock(&e->lock);
    size_t n = 0;
    td_topic_info *v = calloc(e->ntopics ? e->ntopics : 1, sizeof(*v));
    for (size_t i = 0; v && i < e->ntopics; i++)
        if (internal || (!state_topic_internal(e->topics[i]->name) && !e->topics[i]->system))
            fill_info(e->topics[i], &v[n++]);
    pthread_rwlock_unlock(&e->lock);
    if (!v)
        return -ENOMEM;
    *out = v;
    *count = n;
    return 0;
}

int td_topic_list(td_engine *e, td_topic_info **out, size_t *count)
{
    return topic_list(e, false, out, count);
}

int td_topic_list_all(td_engine *e, td_topic_info **out, size_t *count)
{
    return topic_list(e, true, out, count);
}

int td_topic_describe(td_engine *e, const char *name, td_topic_info *out)
{
    td_error_clear();
    pthread_rwlock_rdlock(&e->lock);
    td_topic *t = engine_find_locked(e, name);
    if (t)
        fill_info(t, out);
    pthread_rwlock_unlock(&e->lock);
    return t ? 0 : td_fail(TD_ENOTFOUND, "topic '%s' does not exist", name);
}

/* Finds topic and partition under the read lock; the caller unlocks. */
int engine_part_locked(td_engine *e, const char *topic, int32_t partition, td_part **out)
{
    td_topic *t = engine_find_locked(e, topic);
    if (!t)
        return td_fail(TD_ENOTFOUND, "topic '%s' does not exist", topic);
    if (partition < 0 || partition >= t->nparts)
        return td_fail(TD_ENOTFOUND, "topic '%s' has no partition %" PRId32, topic, partition);
    *out = t->parts[partition];
    return 0;
}

int td_partition_describe(td_engine *e, const char *topic, int32_t partition,
                          td_partition_info *out)
{
    td_error_clear();
    pthread_rwlock_rdlock(&e->lock);
    td_part *p;
    int rc = engine_part_locked(e, topic, partition, &p);
    if (rc == 0) {
        td_part_stats st;
        part_stats(p, &st);
        memset(out, 0, sizeof(*out));
        out->partition = partition;
        out->log_start_offset = st.log_start_offset;
        out->high_watermark = st.high_watermark;
        out->log_end_offset = st.log_end_offset;
        out->size_bytes = st.size_bytes;
        out->segments = st.segments;
        out->offline = st.offline;
        snprintf(out->error, sizeof(out->error), "%s", st.error);
        part_clean_info ci;
        if (part_clean_status(p, td_wall_ms(), &ci)) {
            out->compacted = 1;
            out->dirty_ratio = ci.dirty_ratio;
            out->cleanable_bytes = ci.dirty_bytes;
            out->first_dirty_offset = ci.first_dirty;
            out->cleaner_lag_ms = ci.lag_ms;
            out->reclaimed_bytes = ci.reclaimed_bytes;
        }
    }
    pthread_rwlock_unlock(&e->lock);
    return rc;
}

/* Consumer groups' committed offsets: group_state.c; producer ids: pid_state.c. */

int td_delete_records(td_engine *e, const char *topic, int32_t partition, int64_t before,
                      int64_t *log_start)
{
    td_error_clear();
    if (before < 0 && before != TD_OFFSET_LATEST)
        return td_fail(TD_ERANGE, "cannot delete records before offset %" PRId64, before);
    int rc = engine_internal_refused(e, topic, "delete records of");
    if (rc)
        return rc;
    pthread_rwlock_rdlock(&e->lock);
    td_part *p;
    rc = engine_part_locked(e, topic, partition, &p);
    int64_t ls0 = rc == 0 ? part_log_start(p) : 0, ls1 = 0;
    if (rc == 0)
        rc = part_delete_before(p, before == TD_OFFSET_LATEST ? TD_DELETE_TO_HIGH_WATERMARK
                                                              : before,
                                &ls1);
    if (rc == 0 && log_start)
        *log_start = ls1;
    if (rc == 0 && ls1 > ls0)
        engine_note_change(e, BROKER_CHANGE_TRIM, engine_find_locked(e, topic), partition, 0, 0);
    pthread_rwlock_unlock(&e->lock);
    return rc;
}

int td_offset_for(td_engine *e, const char *topic, int32_t partition, int64_t which,
                  int64_t *offset)
{
    td_error_clear();
    pthread_rwlock_rdlock(&e->lock);
    td_part *p;
    int rc = engine_part_locked(e, topic, partition, &p);
    if (rc == 0) {
        if (which == TD_OFFSET_EARLIEST)
            *offset = part_log_start(p);
        else if (which == TD_OFFSET_LATEST)
            *offset = part_high_watermark(p);
        else if (which == TD_OFFSET_LAST_STABLE)
            *offset = part_last_stable(p);
        else
            rc = td_fail(TD_EINVAL, "td_offset_for takes TD_OFFSET_EARLIEST, TD_OFFSET_LATEST or "
                                    "TD_OFFSET_LAST_STABLE");
    }
    pthread_rwlock_unlock(&e->lock);
    return rc;
}

int td_offset_for_time(td_engine *e, const char *topic, int32_t partition, int64_t timestamp_ms,
                       int64_t *offset)
{
    td_error_clear();
    pthread_rwlock_rdlock(&e->lock);
    td_part *p;
    int rc = engine_part_locked(e, topic, partition, &p);
    if (rc == 0)
        rc = part_offset_for_time(p, timestamp_ms, offset);
    pthread_rwlock_unlock(&e->lock);
    return rc;
}

int td_offset_reset(td_engine *e, const char *topic, int32_t partition, int to, int64_t value,
                    int64_t *offset)
{
    int64_t start, hwm;
    int rc = td_offset_for(e, topic, partition, TD_OFFSET_EARLIEST, &start);
    if (rc == 0)
        rc = td_offset_for(e, topic, partition, TD_OFFSET_LATEST, &hwm);
    if (rc)
        return rc;
    switch (to) {
    case TD_RESET_EARLIEST:
        *offset = start;
        return 0;
    case TD_RESET_LATEST:
        *offset = hwm;
        return 0;
    case TD_RESET_OFFSET:
        *offset = value < start ? start : value > hwm ? hwm : value;
        return 0;
    case TD_RESET_TIME:
        return td_offset_for_time(e, topic, partition, value, offset);
    default:
        return td_fail(TD_EINVAL, "unknown offset reset %d", to);
    }
}

