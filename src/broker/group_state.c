/*
 * group_state.c: consumer groups' committed offsets, kept as records of the internal topic
 * __consumer_offsets (state.h) and in memory, where every read is answered.
 *
 * Records (Kafka's formats, docs/storage.md "State topics"):
 *   key   int16 1 (OffsetCommitKey v1), string group, string topic, int32 partition
 *   value int16 3, int64 offset, int32 leader epoch, string metadata (-1: none),
 *         int64 commit timestamp (wall ms)
 *   a null value: the offset is deleted (OffsetDelete, DeleteGroups, the topic's deletion,
 *   expiry).
 * A group's records go to partition abs(hashCode(group)) % partitions, as Kafka places them.
 *
 * In memory: groups sorted by name, each with its offsets sorted by (topic, partition), behind
 * one mutex. A change appends its records and changes memory under that mutex, so that memory
 * follows the log's order; then it waits (or asks to be called back) until the records are
 * durable, and only then answers. A reader may therefore see an offset whose commit has not
 * been answered yet, never one that a replay would not rebuild unless the fsync fails (which
 * takes the partition offline).
 *
 * Validation (group names, topics, partitions, metadata size) happens under the engine's
 * admin_mu with the topic table read-locked, and the append before admin_mu is released, so
 * that a topic deleted meanwhile cannot get offsets after its tombstones.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "broker/broker.h"
#include "broker/engine_int.h"
#include "broker/state.h"

#define KEY_OFFSET_COMMIT 1  /* Kafka's OffsetCommitKey version */
#define KEY_GROUP_METADATA 2 /* Kafka's GroupMetadataKey version: kept for group_meta.c */
#define VALUE_OFFSET_COMMIT 3

typedef struct off_entry {
    char *topic;
    int32_t partition;
    int64_t offset;
    int32_t leader_epoch;
    char *metadata; /* NULL: none */
    int64_t commit_ms;
} off_entry;

typedef struct off_group {
    char *name;
    off_entry *v; /* sorted by (topic, partition) */
    size_t n, cap;
} off_group;

struct td_gstate {
    pthread_mutex_t mu;
    off_group **g; /* sorted by name */
    size_t ng, cap;
    /* The latest GroupMetadata value of each group found by the replay, until the coordinator
     * takes them (gstate_take_metadata): sorted by name. */
    gstate_meta *meta;
    size_t nmeta, cap_meta;
};

/* ---------------------------------------------------------------------------------------------
 * The in-memory table (under mu)
 */
static ssize_t group_index(struct td_gstate *s, const char *name, bool *found)
{
    size_t lo = 0, hi = s->ng;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(s->g[mid]->name, name);
        if (c == 0) {
            *found = true;
            return (ssize_t)mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return (ssize_t)lo;
}

static off_group *group_get(struct td_gstate *s, const char *name, bool create)
{
    bool found;
    ssize_t at = group_index(s, name, &found);
    if (found)
        return s->g[at];
    if (!create || td_grow(&s->g, &s->cap, s->ng, sizeof(*s->g), 16) != 0)
        return NULL;
    off_group *g = calloc(1, sizeof(*g));
    if (!g || !(g->name = strdup(name))) {
        free(g);
        return NULL;
    }
    memmove(s->g + at + 1, s->g + at, (s->ng - (size_t)at) * sizeof(*s->g));
    s->g[at] = g;
    s->ng++;
    return g;
}

static void entry_free(off_entry *o)
{
    free(o->topic);
    free(o->metadata);
}

static void group_drop(struct td_gstate *s, off_group *g)
{
    bool found;
    ssize_t at = group_index(s, g->name, &found);
    if (!found)
        return;
    for (size_t i = 0; i < g->n; i++)
        entry_free(&g->v[i]);
    free(g->v);
    free(g->name);
    free(g);
    memmove(s->g + at, s->g + at + 1, (s->ng - (size_t)at - 1) * sizeof(*s->g));
    s->ng--;
}

static int entry_cmp(const off_entry *o, const char *topic, int32_t partition)
{
    int c = strcmp(o->topic, topic);
    return c ? c : (o->partition < partition ? -1 : o->partition > partition);
}

static ssize_t entry_index(off_group *g, const char *topic, int32_t partition, bool *found)
{
    size_t lo = 0, hi = g->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = entry_cmp(&g->v[mid], topic, partition);
        if (c == 0) {
            *found = true;
            return (ssize_t)mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return (ssize_t)lo;
}

/* Sets one offset; -ENOMEM leaves the table as it was. */
static int table_put(struct td_gstate *s, const char *group, const td_offset_commit *o,
                     int64_t commit_ms)
{
    off_group *g = group_get(s, group, true);
    if (!g)
        return -ENOMEM;
    bool found;
    ssize_t at = entry_index(g, o->topic, o->partition, &found);
    char *meta = o->metadata ? strdup(o->metadata) : NULL;
    if (o->metadata && !meta)
        return -ENOMEM;
    if (!found) {
        char *topic = strdup(o->topic);
        if (!topic || td_grow(&g->v, &g->cap, g->n, sizeof(*g->v), 4) != 0) {
            free(topic);
            free(meta);
            if (g->n == 0)
                group_drop(s, g);
            return -ENOMEM;
        }
        memmove(g->v + at + 1, g->v + at, (g->n - (size_t)at) * sizeof(*g->v));
        g->n++;
        g->v[at] = (off_entry){.topic = topic, .partition = o->partition};
    }
    off_entry *e = &g->v[at];
    free(e->metadata);
    e->metadata = meta;
    e->offset = o->offset;
    e->leader_epoch = o->leader_epoch;
    e->commit_ms = commit_ms;
    return 0;
}

static void table_remove(struct td_gstate *s, const char *group, const char *topic,
                         int32_t partition)
{
    off_group *g = group_get(s, group, false);
    bool found;
    ssize_t at = g ? entry_index(g, topic, partition, &found) : 0;
    if (!g || !found)
        return;
    entry_free(&g->v[at]);
    memmove(g->v + at, g->v + at + 1, (g->n - (size_t)at - 1) * sizeof(*g->v));
    if (--g->n == 0)
        group_drop(s, g);
}

/* ---------------------------------------------------------------------------------------------
 * Records
 */
static int encode_key(td_buf *b, const char *group, const char *topic, int32_t partition)
{
    return state_put16(b, KEY_OFFSET_COMMIT) | state_put_str(b, group) | state_put_str(b, topic) |
           state_put32(b, partition);
}

static int encode_value(td_buf *b, const td_offset_commit *o, int64_t commit_ms)
{
    return state_put16(b, VALUE_OFFSET_COMMIT) | state_put64(b, o->offset) |
           state_put32(b, o->leader_epoch) | state_put_str(b, o->metadata) |
           state_put64(b, commit_ms);
}

/*
 * A batch of records under construction: keys and values are encoded into one buffer and the
 * events point into it once it stops moving.
 */
typedef struct rec_batch {
    td_buf b;
    size_t n, cap;
    struct {
        size_t k, klen, v, vlen;
        bool tomb;
    } * r;
} rec_batch;

static int batch_add(rec_batch *rb, const char *group, const char *topic, int32_t partition,
                     const td_offset_commit *value, int64_t commit_ms)
{
    if (td_grow(&rb->r, &rb->cap, rb->n, sizeof(*rb->r), 8) != 0)
        return -ENOMEM;
    size_t k = rb->b.len;
    int rc = encode_key(&rb->b, group, topic, partition);
    size_t v = rb->b.len;
    if (rc == 0 && value)
        rc = encode_value(&rb->b, value, commit_ms);
    if (rc)
        return rc < 0 ? rc : -ENOMEM;
    rb->r[rb->n].k = k;
    rb->r[rb->n].klen = v - k;
    rb->r[rb->n].v = v;
    rb->r[rb->n].vlen = rb->b.len - v;
    rb->r[rb->n].tomb = !value;
    rb->n++;
    return 0;
}

/* Appends the batch's records to the group's partition; *end for the wait. */
static int batch_append(td_engine *e, rec_batch *rb, int32_t partition, int64_t *end)
{
    td_event *ev = calloc(rb->n ? rb->n : 1, sizeof(*ev));
    if (!ev)
        return -ENOMEM;
    for (size_t i = 0; i < rb->n; i++) {
        ev[i].key = rb->b.p + rb->r[i].k;
        ev[i].key_len = rb->r[i].klen;
        ev[i].value = rb->r[i].tomb ? NULL : rb->b.p + rb->r[i].v;
        ev[i].value_len = rb->r[i].vlen;
        ev[i].partition = partition;
    }
    int rc = state_append(e, STATE_OFFSETS, partition, ev, rb->n, end);
    free(ev);
    return rc;
}

static void batch_free(rec_batch *rb)
{
    td_buf_free(&rb->b);
    free(rb->r);
}

/* ---------------------------------------------------------------------------------------------
 * Checks (from the engine's former catalog path)
 */
static int group_name_check(const char *group)
{
    size_t n = group ? strlen(group) : 0;
    if (n == 0 || n > TD_GROUP_NAME_MAX)
        return td_fail(TD_ENAME, "a group name has 1 to %d bytes", TD_GROUP_NAME_MAX);
    return 0;
}

static int group_topic_check(const char *group, const char *topic)
{
    int rc = group_name_check(group);
    if (rc == 0 && !topic)
        rc = td_fail(TD_ENOTFOUND, "no topic named");
    return rc;
}

/* Checks one request's offsets against the topic table (under the read lock). */
static int commit_check_locked(td_engine *e, const td_offset_commit *offsets, size_t n)
{
    if (n > 0 && !offsets)
        return td_fail(TD_EINVAL, "no offsets");
    for (size_t i = 0; i < n; i++) {
        const td_offset_commit *o = &offsets[i];
        td_part *p;
        int rc;
        if (!o->topic)
            return td_fail(TD_ENOTFOUND, "no topic named");
        if ((rc = engine_part_locked(e, o->topic, o->partition, &p)) != 0)
            return rc;
        /* A negative offset is stored as given, as Kafka does: kafkajs's resetOffsets commits
         * -2 (earliest) and expects to read it back. */
        if (o->metadata && strlen(o->metadata) > TD_OFFSET_METADATA_MAX)
            return td_fail(TD_ETOOBIG, "offset metadata for %s/%" PRId32 " is above %d bytes",
                           o->topic, o->partition, TD_OFFSET_METADATA_MAX);
    }
    return 0;
}

/*
 * Checks, appends and applies one group's commit; *part and *end say what to wait for. Takes
 * admin_mu (a topic's deletion holds it while it writes the topic's tombstones).
 */
static int commit_append(td_engine *e, const char *group, const td_offset_commit *offsets, size_t n,
                         int64_t now_ms, int32_t *part, int64_t *end)
{
    struct td_gstate *s = e->gstate;
    *end = -1;
    int rc = group_name_check(group);
    if (rc)
        return rc;
    if (!s)
        return td_fail(TD_EOFFLINE, "the consumer offsets are not open");
    if (now_ms <= 0)
        now_ms = td_wall_ms();
    *part = state_partition_for(e, STATE_OFFSETS, group);
    rec_batch rb = {0};
    td_buf_init(&rb.b);
    pthread_mutex_lock(&e->admin_mu);
    pthread_rwlock_rdlock(&e->lock);
    rc = commit_check_locked(e, offsets, n);
    pthread_rwlock_unlock(&e->lock);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = batch_add(&rb, group, offsets[i].topic, offsets[i].partition, &offsets[i], now_ms);
    if (rc == 0 && n > 0) {
        pthread_mutex_lock(&s->mu);
        rc = batch_append(e, &rb, *part, end);
        for (size_t i = 0; i < n && rc == 0; i++)
            if (table_put(s, group, &offsets[i], now_ms) != 0)
                TD_WARN("group",
                        "group %s: out of memory keeping an offset: a restart will "
                        "read it from the log",
                        group);
        pthread_mutex_unlock(&s->mu);
    }
    pthread_mutex_unlock(&e->admin_mu);
    batch_free(&rb);
    return rc;
}

/* broker_group_commit_async, waiting until the records are durable. */
static int broker_group_commit(td_engine *e, const char *group, const td_offset_commit *offsets, size_t n,
                        int64_t now_ms)
{
    int32_t part = 0;
    int64_t end;
    int rc = commit_append(e, group, offsets, n, now_ms, &part, &end);
    if (rc == 0 && end >= 0)
        rc = state_wait(e, STATE_OFFSETS, part, end);
    return rc;
}

int broker_group_commit_async(td_engine *e, const char *group, const td_offset_commit *offsets,
                              size_t n, int64_t now_ms, td_durable_cb cb, void *arg)
{
    int32_t part = 0;
    int64_t end;
    int rc = commit_append(e, group, offsets, n, now_ms, &part, &end);
    if (rc)
        return rc;
    if (end < 0) {
        cb(arg, 0);
        return 0;
    }
    return state_when_durable(e, STATE_OFFSETS, part, end, cb, arg);
}

int td_group_commit(td_engine *e, const char *group, const td_offset_commit *offsets, size_t n,
                    int64_t now_ms)
{
    td_error_clear();
    return broker_group_commit(e, group, offsets, n, now_ms);
}

/*
 * Writes tombstones for the offsets of `group` that match (all when topic is NULL; those
 * committed before before_ms when it is > 0) and removes them from memory; waits for them
 * when `wait`. *removed counts them. The caller holds admin_mu.
 */
static int delete_matching(td_engine *e, const char *group, const char *topic, int32_t partition,
                           int64_t before_ms, bool wait, size_t *removed)
{
    struct td_gstate *s = e->gstate;
    *removed = 0;
    if (!s)
        return td_fail(TD_EOFFLINE, "the consumer offsets are not open");
    rec_batch rb = {0};
    td_buf_init(&rb.b);
    int rc = 0;
    int32_t part = state_partition_for(e, STATE_OFFSETS, group);
    int64_t end = -1;
    pthread_mutex_lock(&s->mu);
    off_group *g = group_get(s, group, false);
    for (size_t i = 0; g && i < g->n && rc == 0; i++) {
        off_entry *o = &g->v[i];
        if ((topic && strcmp(o->topic, topic) != 0) ||
            (partition >= 0 && o->partition != partition) ||
            (before_ms > 0 && o->commit_ms >= before_ms))
            continue;
        rc = batch_add(&rb, group, o->topic, o->partition, NULL, 0);
    }
    if (rc == 0 && rb.n > 0)
        rc = batch_append(e, &rb, part, &end);
    if (rc == 0 && g) {
        /* The same selection, removed now that its tombstones are in the log. */
        for (size_t i = 0; i < g->n;) {
            off_entry *o = &g->v[i];
            if ((topic && strcmp(o->topic, topic) != 0) ||
                (partition >= 0 && o->partition != partition) ||
                (before_ms > 0 && o->commit_ms >= before_ms)) {
                i++;
                continue;
            }
            (*removed)++;
            bool last = g->n == 1;
            table_remove(s, group, o->topic, o->partition);
            if (last)
                break; /* g is gone */
        }
    }
    pthread_mutex_unlock(&s->mu);
    batch_free(&rb);
    if (rc == 0 && end >= 0)
        rc = wait ? state_wait(e, STATE_OFFSETS, part, end)
                  : state_when_durable(e, STATE_OFFSETS, part, end, NULL, NULL);
    return rc;
}

int td_group_offset_delete(td_engine *e, const char *group, const char *topic, int32_t partition)
{
    td_error_clear();
    int rc = group_topic_check(group, topic);
    if (rc)
        return rc;
    if (partition < 0)
        return td_fail(TD_ENOTFOUND, "group '%s' has no committed offset for %s/%" PRId32, group,
                       topic, partition);
    size_t removed = 0;
    pthread_mutex_lock(&e->admin_mu);
    rc = delete_matching(e, group, topic, partition, 0, true, &removed);
    pthread_mutex_unlock(&e->admin_mu);
    if (rc == 0 && !removed)
        rc = td_fail(TD_ENOTFOUND, "group '%s' has no committed offset for %s/%" PRId32, group,
                     topic, partition);
    return rc;
}

int broker_group_expire(td_engine *e, const char *group, int64_t before_ms, size_t *removed)
{
    pthread_mutex_lock(&e->admin_mu);
    int rc = delete_matching(e, group, NULL, -1, before_ms > 0 ? before_ms : 1, true, removed);
    pthread_mutex_unlock(&e->admin_mu);
    return rc;
}

int td_group_delete(td_engine *e, const char *group)
{
    td_error_clear();
    int rc = group_name_check(group);
    if (rc)
        return rc;
    size_t removed = 0;
    pthread_mutex_lock(&e->admin_mu);
    rc = delete_matching(e, group, NULL, -1, 0, true, &removed);
    pthread_mutex_unlock(&e->admin_mu);
    if (rc == 0 && !removed)
        rc = td_fail(TD_ENOTFOUND, "group '%s' has no committed offsets", group);
    return rc;
}

void gstate_forget_topic(td_engine *e, const char *topic)
{
    struct td_gstate *s = e->gstate;
    if (!s)
        return;
    /* The groups that have offsets for the topic, copied: delete_matching takes the mutex. */
    char **names = NULL;
    size_t n = 0, cap = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->ng; i++) {
        off_group *g = s->g[i];
        for (size_t k = 0; k < g->n; k++) {
            if (strcmp(g->v[k].topic, topic) != 0)
                continue;
            char *name = strdup(g->name);
            if (name && td_grow(&names, &cap, n, sizeof(*names), 8) == 0)
                names[n++] = name;
            else
                free(name); /* a restart drops offsets of topics that are gone */
            break;
        }
    }
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; i < n; i++) {
        size_t removed;
        int rc = delete_matching(e, names[i], topic, -1, 0, false, &removed);
        if (rc)
            TD_WARN("group", "group %s: cannot delete the offsets of deleted topic %s: %s",
                    names[i], topic, td_strerror(rc));
        free(names[i]);
    }
    free(names);
}

/* ---------------------------------------------------------------------------------------------
 * Reads
 */
int td_group_offsets(td_engine *e, const char *group, td_committed_offset **out, size_t *count)
{
    td_error_clear();
    *out = NULL;
    *count = 0;
    int rc = group_name_check(group);
    if (rc)
        return rc;
    struct td_gstate *s = e->gstate;
    if (!s)
        return td_fail(TD_EOFFLINE, "the consumer offsets are not open");
    pthread_mutex_lock(&s->mu);
    off_group *g = group_get(s, group, false);
    size_t n = g ? g->n : 0, size = (n ? n : 1) * sizeof(td_committed_offset);
    for (size_t i = 0; i < n; i++)
        size += g->v[i].metadata ? strlen(g->v[i].metadata) + 1 : 0;
    /* None: *out stays NULL, as the catalog's lists were. */
    td_committed_offset *v = n ? calloc(1, size) : NULL;
    char *p = v ? (char *)(v + (n ? n : 1)) : NULL;
    for (size_t i = 0; v && i < n; i++) {
        off_entry *o = &g->v[i];
        snprintf(v[i].topic, sizeof(v[i].topic), "%s", o->topic);
        v[i].partition = o->partition;
        v[i].offset = o->offset;
        v[i].leader_epoch = o->leader_epoch;
        v[i].commit_ms = o->commit_ms;
        if (o->metadata) {
            v[i].metadata = strcpy(p, o->metadata);
            p += strlen(p) + 1;
        }
    }
    pthread_mutex_unlock(&s->mu);
    if (!v && n)
        return -ENOMEM;
    *out = v;
    *count = n;
    return 0;
}

int td_group_committed(td_engine *e, const char *group, const char *topic, int32_t partition,
                       int64_t *offset)
{
    td_error_clear();
    int rc = group_topic_check(group, topic);
    if (rc)
        return rc;
    struct td_gstate *s = e->gstate;
    if (!s)
        return td_fail(TD_EOFFLINE, "the consumer offsets are not open");
    pthread_mutex_lock(&s->mu);
    off_group *g = group_get(s, group, false);
    bool found = false;
    ssize_t at = g ? entry_index(g, topic, partition, &found) : 0;
    if (found)
        *offset = g->v[at].offset;
    pthread_mutex_unlock(&s->mu);
    if (!found)
        return td_fail(TD_ENOTFOUND, "group '%s' has no committed offset for %s/%" PRId32, group,
                       topic, partition);
    return 0;
}

int td_group_list(td_engine *e, td_group_info **out, size_t *count)
{
    td_error_clear();
    *out = NULL;
    *count = 0;
    struct td_gstate *s = e->gstate;
    if (!s)
        return td_fail(TD_EOFFLINE, "the consumer offsets are not open");
    pthread_mutex_lock(&s->mu);
    td_group_info *v = s->ng ? calloc(s->ng, sizeof(*v)) : NULL;
    for (size_t i = 0; v && i < s->ng; i++) {
        off_group *g = s->g[i];
        snprintf(v[i].name, sizeof(v[i].name), "%s", g->name);
        v[i].offsets = g->n;
        for (size_t k = 0; k < g->n; k++)
            v[i].last_commit_ms = TD_MAX(v[i].last_commit_ms, g->v[k].commit_ms);
    }
    size_t n = s->ng;
    pthread_mutex_unlock(&s->mu);
    if (!v && n)
        return -ENOMEM;
    *out = v;
    *count = n;
    return 0;
}

int td_group_lag(td_engine *e, const char *group, td_group_lag_info **out, size_t *count)
{
    *out = NULL;
    *count = 0;
    td_committed_offset *offs = NULL;
    size_t n = 0;
    int rc = td_group_offsets(e, group, &offs, &n);
    if (rc)
        return rc;
    td_group_lag_info *v = calloc(n ? n : 1, sizeof(*v));
    if (!v) {
        free(offs);
        return -ENOMEM;
    }
    pthread_rwlock_rdlock(&e->lock);
    for (size_t i = 0; i < n; i++) {
        td_part *p;
        snprintf(v[i].topic, sizeof(v[i].topic), "%s", offs[i].topic);
        v[i].partition = offs[i].partition;
        v[i].committed = offs[i].offset;
        v[i].commit_ms = offs[i].commit_ms;
        v[i].high_watermark = engine_part_locked(e, offs[i].topic, offs[i].partition, &p) == 0
                                  ? part_high_watermark(p)
                                  : -1;
        /* A negative committed offset (Kafka's -2, earliest, or -1, latest) says where a
         * consumer will start, not how far it is: it counts as the log start. */
        int64_t from = v[i].committed;
        if (from < 0)
            from = engine_part_locked(e, offs[i].topic, offs[i].partition, &p) == 0
                       ? part_log_start(p)
                       : 0;
        v[i].lag = TD_MAX(v[i].high_watermark - from, 0);
    }
    pthread_rwlock_unlock(&e->lock);
    td_error_clear();
    free(offs);
    *out = v;
    *count = n;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Replay and migration
 */
static ssize_t meta_index(struct td_gstate *s, const char *name, bool *found)
{
    size_t lo = 0, hi = s->nmeta;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(s->meta[mid].group, name);
        if (c == 0) {
            *found = true;
            return (ssize_t)mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return (ssize_t)lo;
}

static void meta_free(gstate_meta *m)
{
    free(m->group);
    free(m->value);
}

/* A GroupMetadata record: its value replaces the group's (a tombstone removes it). The value
 * is decoded by the coordinator (group_meta.c), which knows its versions. */
static int replay_metadata(struct td_gstate *s, state_reader *k, const td_event *ev)
{
    char *group = state_get_str(k);
    if (k->bad || !group) {
        free(group);
        TD_WARN("group", "skipping a malformed group metadata key at %s offset %" PRId64,
                STATE_OFFSETS_TOPIC, ev->offset);
        return 0;
    }
    bool found;
    ssize_t at = meta_index(s, group, &found);
    if (!ev->value) {
        if (found) {
            meta_free(&s->meta[at]);
            memmove(s->meta + at, s->meta + at + 1, (s->nmeta - (size_t)at - 1) * sizeof(*s->meta));
            s->nmeta--;
        }
        free(group);
        return 0;
    }
    void *value = malloc(ev->value_len ? ev->value_len : 1);
    if (!value) {
        free(group);
        return -ENOMEM;
    }
    memcpy(value, ev->value, ev->value_len);
    if (found) {
        free(group);
        free(s->meta[at].value);
    } else {
        if (td_grow(&s->meta, &s->cap_meta, s->nmeta, sizeof(*s->meta), 16) != 0) {
            free(group);
            free(value);
            return -ENOMEM;
        }
        memmove(s->meta + at + 1, s->meta + at, (s->nmeta - (size_t)at) * sizeof(*s->meta));
        s->nmeta++;
        s->meta[at].group = group;
    }
    s->meta[at].value = value;
    s->meta[at].len = ev->value_len;
    return 0;
}

void gstate_take_metadata(td_engine *e, gstate_meta **out, size_t *n)
{
    struct td_gstate *s = e->gstate;
    *out = NULL;
    *n = 0;
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    *out = s->meta;
    *n = s->nmeta;
    s->meta = NULL;
    s->nmeta = s->cap_meta = 0;
    pthread_mutex_unlock(&s->mu);
}

void gstate_meta_free(gstate_meta *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        meta_free(&v[i]);
    free(v);
}

static int replay_record(void *arg, int32_t partition, const td_event *ev)
{
    struct td_gstate *s = arg;
    (void)partition;
    if (!ev->key)
        return 0; /* not a state record (none is written without a key) */
    state_reader k = {.p = ev->key, .n = ev->key_len};
    int16_t kind = state_get16(&k);
    if (kind == KEY_GROUP_METADATA)
        return replay_metadata(s, &k, ev);
    if (kind != KEY_OFFSET_COMMIT)
        return 0; /* kinds of later versions: not ours */
    char *group = state_get_str(&k), *topic = state_get_str(&k);
    int32_t part = state_get32(&k);
    int rc = 0;
    if (k.bad || !group || !topic) {
        TD_WARN("group", "skipping a malformed offset key at %s offset %" PRId64,
                STATE_OFFSETS_TOPIC, ev->offset);
    } else if (!ev->value) {
        table_remove(s, group, topic, part);
    } else {
        state_reader v = {.p = ev->value, .n = ev->value_len};
        int16_t ver = state_get16(&v);
        td_offset_commit o = {.topic = topic, .partition = part};
        o.offset = state_get64(&v);
        o.leader_epoch = ver >= 3 ? state_get32(&v) : -1;
        char *meta = state_get_str(&v);
        o.metadata = meta;
        int64_t commit_ms = state_get64(&v);
        if (v.bad || ver < 1)
            TD_WARN("group", "skipping a malformed offset value at %s offset %" PRId64,
                    STATE_OFFSETS_TOPIC, ev->offset);
        else
            rc = table_put(s, group, &o, commit_ms);
        free(meta);
    }
    free(group);
    free(topic);
    return rc;
}

/* Writes what an older data directory keeps in the catalog's offsets table to the topic,
 * durably. The rows are dropped later, with the producer-id row, in one transaction
 * (state_open): a crash before that migrates again, which writes the same records. */
static int migrate(td_engine *e)
{
    td_group_info *groups = NULL;
    size_t ng = 0;
    int rc = catalog_groups_list(e->cat, &groups, &ng);
    size_t total = 0;
    for (size_t i = 0; i < ng && rc == 0; i++) {
        td_committed_offset *v = NULL;
        size_t n = 0;
        if ((rc = catalog_offsets_list(e->cat, groups[i].name, &v, &n)) != 0)
            break;
        for (size_t k = 0; k < n && rc == 0; k++) {
            td_offset_commit o = {.topic = v[k].topic,
                                  .partition = v[k].partition,
                                  .offset = v[k].offset,
                                  .leader_epoch = v[k].leader_epoch,
                                  .metadata = v[k].metadata};
            /* One record per append keeps batches small; migration runs once. */
            rc = broker_group_commit(e, groups[i].name, &o, 1, v[k].commit_ms);
            if (rc == TD_ENOTFOUND) {
                rc = 0; /* a topic deleted since: its offsets go */
                continue;
            }
            total += rc == 0;
        }
        free(v);
    }
    free(groups);
    if (rc == 0 && total)
        TD_INFO("state", "migrated %zu committed offset%s of %zu group%s from the catalog to %s",
                total, total == 1 ? "" : "s", ng, ng == 1 ? "" : "s", STATE_OFFSETS_TOPIC);
    return rc;
}

/* Offsets of topics deleted while a tombstone could not be written (a crash in between) are
 * dropped now. */
static int drop_orphans(td_engine *e)
{
    struct td_gstate *s = e->gstate;
    char **topics = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    pthread_rwlock_rdlock(&e->lock);
    for (size_t i = 0; i < s->ng && rc == 0; i++)
        for (size_t k = 0; k < s->g[i]->n && rc == 0; k++) {
            const char *t = s->g[i]->v[k].topic;
            bool seen = false;
            for (size_t j = 0; j < n && !seen; j++)
                seen = strcmp(topics[j], t) == 0;
            if (seen || engine_find_locked(e, t))
                continue;
            char *c = strdup(t);
            if (!c || td_grow(&topics, &cap, n, sizeof(*topics), 4) != 0) {
                free(c);
                rc = -ENOMEM;
            } else {
                topics[n++] = c;
            }
        }
    pthread_rwlock_unlock(&e->lock);
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_lock(&e->admin_mu);
    for (size_t i = 0; i < n; i++) {
        if (rc == 0)
            gstate_forget_topic(e, topics[i]);
        free(topics[i]);
    }
    pthread_mutex_unlock(&e->admin_mu);
    free(topics);
    return rc;
}

int gstate_open(td_engine *e)
{
    struct td_gstate *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    pthread_mutex_init(&s->mu, NULL);
    e->gstate = s;
    int64_t t0 = td_mono_ms();
    int rc = state_replay(e, STATE_OFFSETS, replay_record, s);
    if (rc == 0) {
        size_t n = 0;
        for (size_t i = 0; i < s->ng; i++)
            n += s->g[i]->n;
        TD_INFO("state",
                "replayed %s: %zu offsets of %zu groups, metadata of %zu groups in %" PRId64 " ms",
                STATE_OFFSETS_TOPIC, n, s->ng, s->nmeta, td_mono_ms() - t0);
        rc = migrate(e);
    }
    if (rc == 0)
        rc = drop_orphans(e);
    return rc;
}

void gstate_close(td_engine *e)
{
    struct td_gstate *s = e->gstate;
    if (!s)
        return;
    while (s->ng)
        group_drop(s, s->g[s->ng - 1]);
    free(s->g);
    gstate_meta_free(s->meta, s->nmeta);
    pthread_mutex_destroy(&s->mu);
    free(s);
    e->gstate = NULL;
}
