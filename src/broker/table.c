/*
 * table.c: table reads on compacted topics (docs/embedded.md#table-reads): the latest event of
 * a key, answered from the partition's key index (storage/keyindex.h) rather than a scan, as a
 * Kafka Streams KTable answers from its store. The engine enables the index of every partition
 * of a compacted topic, at open and when cleanup.policy changes, charged to one budget
 * (td_options.table_index_max_bytes, the server's table.index.max.bytes).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "broker/engine_int.h"
#include "broker/state.h"
#include "storage/keyindex.h"

/* Whether label ("<topic>/<partition>") names a partition of a state topic (state.h). */
static bool label_is_state_topic(const char *label)
{
    char name[TD_TOPIC_NAME_MAX + 1];
    const char *slash = strrchr(label, '/');
    size_t n = slash ? (size_t)(slash - label) : strlen(label);
    if (n >= sizeof(name))
        return false;
    memcpy(name, label, n);
    name[n] = 0;
    return state_topic_internal(name);
}

void table_part_config(td_engine *e, td_part *p, const td_topic_config *cfg, const char *label)
{
    /* The state topics (__queue_state, __xgroup_state, ...) are compacted and written at every
     * delivery, ack and commit, each record with its own key; nothing reads them by key but an
     * administrator's table read. Indexing every append cost 15 to 20% of the broker's CPU
     * under a queue's receive + ack load (a random access into a table of every key ever
     * written, measured with perf under bench/queue.sh), so their index is built only when a
     * table read asks for it (td_get_key). */
    /* A topic with key.index answers table reads from that index (storage/segkeys.c), which
     * knows every key's latest event: one index, not two. */
    bool compact = (cfg->cleanup_policy & TD_CLEANUP_COMPACT) != 0 &&
                   !label_is_state_topic(label) && !cfg->key_index;
    int rc = part_keys_enable(p, compact ? e->keys : NULL);
    if (rc)
        TD_ERROR("engine", "partition %s: cannot build its key index: %s (%s)", label,
                 td_strerror(rc), td_last_error());
}

/* An event and the block holding its bytes, freed together by td_event_free. */
typedef struct owned_event {
    td_event ev; /* first: td_event_free casts back */
    void *block;
} owned_event;

void td_event_free(td_event *ev)
{
    if (!ev)
        return;
    owned_event *o = (owned_event *)ev;
    free(o->block);
    free(o);
}

/* The topic, referenced, and the partition holding key; *compact says whether the topic is. */
static int find_part(td_engine *e, const char *topic, const void *key, size_t key_len,
                     int32_t *partition, td_topic **tp, td_part **pp, bool *compact, bool *keyed)
{
    pthread_rwlock_rdlock(&e->lock);
    td_topic *t = engine_find_locked(e, topic);
    int rc = 0;
    if (!t) {
        rc = td_fail(TD_ENOTFOUND, "topic '%s' does not exist", topic);
    } else if (*partition >= t->nparts) {
        rc = td_fail(TD_ENOTFOUND, "topic '%s' has no partition %" PRId32 " (it has %" PRId32 ")",
                     topic, *partition, t->nparts);
    } else {
        if (*partition < 0)
            *partition = td_partition_for_key(key, key_len, t->nparts);
        topic_ref(t);
        *tp = t;
        *pp = t->parts[*partition];
        pthread_mutex_lock(&t->cfg_mu);
        *compact = (t->cfg.cleanup_policy & TD_CLEANUP_COMPACT) != 0;
        *keyed = t->cfg.key_index;
        pthread_mutex_unlock(&t->cfg_mu);
    }
    pthread_rwlock_unlock(&e->lock);
    return rc;
}

int td_get_key(td_engine *e, const char *topic, const void *key, size_t key_len, int32_t partition,
               td_event **out)
{
    td_error_clear();
    if (!e || !topic || !out || (!key && key_len))
        return td_fail(TD_EINVAL, "td_get_key needs an engine, a topic, a key and out");
    *out = NULL;
    if (!key)
        key = "";
    td_topic *t = NULL;
    td_part *p = NULL;
    bool compact = false, keyed = false;
    int rc = find_part(e, topic, key, key_len, &partition, &t, &p, &compact, &keyed);
    if (rc)
        return rc;
    if (!compact && !keyed) {
        rc = td_fail(TD_EINVAL,
                     "topic '%s' is not compacted: reading by key needs cleanup.policy=compact "
                     "(or key.index=true)",
                     topic);
        goto out;
    }
    /* A state topic's index is built at its first table read (table_part_config says why),
     * and kept from then on; enabling an enabled index does nothing. */
    if (state_topic_internal(topic) && (rc = part_keys_enable(p, e->keys)) != 0)
        goto out;
    part_key_hit hit;
    part_key_hit_init(&hit);
    rc = part_key_lookup(p, key, key_len, &hit);
    if (rc == TD_EUNSUPPORTED) /* compacted a moment ago: its index is being built */
        rc = td_fail(TD_EINVAL, "topic '%s' is not compacted", topic);
    if (rc == 0) {
        const td_record *r = &hit.rec;
        td_header *hs = r->header_count ? calloc(r->header_count, sizeof(*hs)) : NULL;
        owned_event *o = calloc(1, sizeof(*o));
        if (!o || (r->header_count && !hs)) {
            rc = -ENOMEM;
        } else {
            for (size_t i = 0; i < r->header_count; i++) {
                const td_record_header *rh = &r->headers[i];
                hs[i] = (td_header){(const char *)rh->key.p, rh->key.n,
                                    rh->value_null ? NULL
                                    : rh->value.p  ? (const void *)rh->value.p
                                                   : "",
                                    rh->value.n};
            }
            td_event ev = {.key = r->key.p ? (const void *)r->key.p : "",
                           .key_len = r->key.n,
                           .value = r->value.p ? (const void *)r->value.p : "",
                           .value_len = r->value.n,
                           .headers = hs,
                           .header_count = r->header_count,
                           .timestamp_ms = r->timestamp,
                           .partition = partition,
                           .offset = r->offset};
            o->block = broker_event_copy(&ev, NULL, &o->ev);
            if (!o->block)
                rc = -ENOMEM;
        }
        free(hs);
        if (rc == 0) {
            *out = &o->ev;
            td_counter_add(t->m_events_out, 1);
            td_counter_add(t->m_bytes_out, hit.buf.len);
        } else {
            free(o);
        }
    }
    part_key_hit_free(&hit);
out:
    topic_unref(t);
    return rc;
}

int engine_count_records(td_engine *e, const char *topic, int32_t partition, int64_t from,
                         int64_t to, int64_t *n)
{
    pthread_rwlock_rdlock(&e->lock);
    td_part *p;
    int rc = engine_part_locked(e, topic, partition, &p);
    td_topic *t = rc == 0 ? engine_find_locked(e, topic) : NULL;
    if (t)
        topic_ref(t);
    pthread_rwlock_unlock(&e->lock);
    if (rc)
        return rc;
    rc = part_count_records(p, from, to, n);
    topic_unref(t);
    return rc;
}

void table_collect(void *arg, td_metrics_out *out)
{
    td_engine *e = arg;
    static const char *const tl[] = {"topic"};
    td_metrics_text_family(out, "tidings_table_index_bytes",
                           "Memory the key indexes of compacted partitions use together.",
                           TD_GAUGE);
    td_metrics_text_sample(out, "tidings_table_index_bytes", NULL, NULL, 0,
                           (double)keybudget_used(e->keys));
    td_metrics_text_family(out, "tidings_table_index_max_bytes",
                           "The bound of that memory (table.index.max.bytes).", TD_GAUGE);
    td_metrics_text_sample(out, "tidings_table_index_max_bytes", NULL, NULL, 0,
                           (double)keybudget_max(e->keys));
    td_metrics_text_family(out, "tidings_table_index_keys",
                           "Keys in the key indexes of the topic's partitions.", TD_GAUGE);
    pthread_rwlock_rdlock(&e->lock);
    for (size_t i = 0; i < e->ntopics; i++) {
        td_topic *t = e->topics[i];
        int64_t sum = 0, keys, bytes;
        bool any = false;
        for (int32_t p = 0; p < t->nparts; p++) {
            part_keys_stats(t->parts[p], &keys, &bytes);
            sum += keys;
            any = any || bytes > 0;
        }
        if (any) {
            const char *v[] = {t->name};
            td_metrics_text_sample(out, "tidings_table_index_keys", tl, v, 1, (double)sum);
        }
    }
    pthread_rwlock_unlock(&e->lock);
}
