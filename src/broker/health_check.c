/*
 * health_check.c: the health thread's periodic checks (health.h, docs/health.md): what no call
 * site sees by itself.
 *   lag      each group's committed lag per topic (td_group_lag), and the age of the oldest
 *            event it has not consumed, against health.lag.events and health.lag.ms: said
 *            once when over, once when back under;
 *   disk     the data directory's file system at or over health.disk.percent used, and back
 *            under it by 2 points (so that a disk at the line does not say it every pass);
 *   offline  each partition that went offline (a corrupt segment, a failed write), once;
 *   fsync    how many fsyncs since the last pass took longer than health.fsync.ms.
 * The work of a pass is bounded by the groups, partitions and topics the broker holds.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "broker/engine_int.h"
#include "broker/health.h"
#include "broker/health_int.h"

void health_checks_free(health_checks *c)
{
    for (size_t i = 0; i < c->noffline; i++)
        free(c->offline[i]);
    free(c->offline);
    for (size_t i = 0; i < c->nover; i++) {
        free(c->over[i].group);
        free(c->over[i].topic);
    }
    free(c->over);
    memset(c, 0, sizeof(*c));
}

/* ---------------------------------------------------------------------------------------------
 * Disk
 */
static void check_disk(td_engine *e, health_checks *c)
{
    struct statvfs st;
    if (statvfs(e->dir, &st) != 0 || st.f_blocks == 0)
        return;
    /* As df counts it: what is used of what the unprivileged may use. */
    uint64_t used = (uint64_t)(st.f_blocks - st.f_bfree);
    uint64_t avail = (uint64_t)st.f_bavail;
    int64_t pct = (int64_t)((used * 100 + (used + avail) - 1) / (used + avail));
    int64_t limit = e->opts.health_disk_percent > 0 ? e->opts.health_disk_percent : 90;
    bool high = c->disk_high ? pct >= limit - 2 : pct >= limit;
    if (high == c->disk_high)
        return;
    c->disk_high = high;
    health_field f[] = {HF_STR("path", e->dir), HF_INT("used_percent", pct),
                        HF_INT("threshold_percent", limit),
                        HF_INT("available_bytes", avail * (uint64_t)st.f_frsize),
                        HF_INT("total_bytes", (uint64_t)st.f_blocks * st.f_frsize)};
    health_emit(e, high ? HEALTH_STORAGE_DISK_HIGH : HEALTH_STORAGE_DISK_OK, e->dir, f,
                sizeof(f) / sizeof(f[0]));
}

/* ---------------------------------------------------------------------------------------------
 * Offline partitions and slow fsyncs
 */
static ssize_t offline_find(const health_checks *c, const char *label)
{
    for (size_t i = 0; i < c->noffline; i++)
        if (strcmp(c->offline[i], label) == 0)
            return (ssize_t)i;
    return -1;
}

static void check_offline(td_engine *e, health_checks *c)
{
    /* Partitions once offline and no longer (a topic deleted, or reopened repaired) are
     * forgotten, so that a second failure is said again. */
    size_t old = c->noffline;
    bool *still = calloc(TD_MAX(old, 1), sizeof(*still));
    if (!still)
        return;
    pthread_rwlock_rdlock(&e->lock);
    for (size_t i = 0; i < e->ntopics; i++) {
        td_topic *t = e->topics[i];
        for (int32_t k = 0; k < t->nparts; k++) {
            const char *why = part_offline(t->parts[k]);
            if (!why)
                continue;
            char label[TD_TOPIC_NAME_MAX + 16];
            snprintf(label, sizeof(label), "%s/%" PRId32, t->name, k);
            ssize_t at = offline_find(c, label);
            if (at >= 0) {
                if ((size_t)at < old)
                    still[at] = true;
                continue;
            }
            char *copy = strdup(label);
            if (!copy ||
                td_grow(&c->offline, &c->offline_cap, c->noffline, sizeof(*c->offline), 8) != 0) {
                free(copy);
                continue;
            }
            c->offline[c->noffline++] = copy;
            health_field f[] = {HF_STR("topic", t->name), HF_INT("partition", k),
                                HF_STR("reason", why)};
            health_emit(e, HEALTH_STORAGE_PARTITION_OFFLINE, t->name, f, 3);
        }
    }
    pthread_rwlock_unlock(&e->lock);
    size_t keep = 0;
    for (size_t i = 0; i < c->noffline; i++) {
        if (i < old && !still[i])
            free(c->offline[i]);
        else
            c->offline[keep++] = c->offline[i];
    }
    c->noffline = keep;
    free(still);
}

static void check_fsync(td_engine *e)
{
    part_slow *s = &e->fsync_slow;
    uint64_t n = __atomic_exchange_n(&s->count, 0, __ATOMIC_RELAXED);
    int64_t max = __atomic_exchange_n(&s->max_ns, 0, __ATOMIC_RELAXED);
    if (n == 0)
        return;
    health_field f[] = {HF_INT("count", n), HF_INT("max_ms", max / 1000000),
                        HF_INT("threshold_ms", e->opts.health_fsync_ms),
                        HF_INT("interval_ms", e->opts.health_check_interval_ms)};
    health_emit(e, HEALTH_STORAGE_FSYNC_SLOW, e->dir, f, sizeof(f) / sizeof(f[0]));
}

/* ---------------------------------------------------------------------------------------------
 * Lag
 */
/* The timestamp of the event at offset of topic/partition, or -1. */
static int64_t event_time(td_engine *e, const char *topic, int32_t partition, int64_t offset)
{
    td_iter *it;
    if (td_iter_open(e, topic, partition, offset, &it) != 0)
        return -1;
    td_event ev;
    int64_t ts = td_iter_next(it, &ev) == 1 ? ev.timestamp_ms : -1;
    td_iter_close(it);
    return ts;
}

static ssize_t over_find(const health_checks *c, const char *group, const char *topic)
{
    for (size_t i = 0; i < c->nover; i++)
        if (!strcmp(c->over[i].group, group) && !strcmp(c->over[i].topic, topic))
            return (ssize_t)i;
    return -1;
}

/* One group's lag on one topic (lags of its partitions l[0..n)) against the thresholds. */
static void lag_topic(td_engine *e, health_checks *c, const char *group, const td_group_lag_info *l,
                      size_t n, int64_t now)
{
    int64_t lag = 0, oldest = -1;
    for (size_t i = 0; i < n; i++) {
        lag += l[i].lag;
        if (l[i].lag > 0 && e->opts.health_lag_ms > 0) {
            int64_t ts = event_time(e, l[i].topic, l[i].partition, TD_MAX(l[i].committed, 0));
            if (ts >= 0 && (oldest < 0 || ts < oldest))
                oldest = ts;
        }
    }
    int64_t age = oldest >= 0 && now > oldest ? now - oldest : 0;
    bool over = (e->opts.health_lag_events > 0 && lag > e->opts.health_lag_events) ||
                (e->opts.health_lag_ms > 0 && age > e->opts.health_lag_ms);
    ssize_t at = over_find(c, group, l[0].topic);
    if (at >= 0)
        c->over[at].seen = true;
    if (over == (at >= 0))
        return;
    if (over) {
        char *g = strdup(group), *t = strdup(l[0].topic);
        if (!g || !t || td_grow(&c->over, &c->over_cap, c->nover, sizeof(*c->over), 8) != 0) {
            free(g);
            free(t);
            return;
        }
        c->over[c->nover++] = (health_lag_over){g, t, true};
    } else {
        free(c->over[at].group);
        free(c->over[at].topic);
        c->over[at] = c->over[--c->nover];
    }
    health_field f[] = {HF_STR("group", group),
                        HF_STR("topic", l[0].topic),
                        HF_INT("lag", lag),
                        HF_INT("age_ms", age),
                        HF_INT("threshold_events", e->opts.health_lag_events),
                        HF_INT("threshold_ms", e->opts.health_lag_ms)};
    health_emit(e, over ? HEALTH_LAG_OVER : HEALTH_LAG_RECOVERED, group, f,
                sizeof(f) / sizeof(f[0]));
}

static void check_lag(td_engine *e, health_checks *c)
{
    if (e->opts.health_lag_events <= 0 && e->opts.health_lag_ms <= 0)
        return;
    td_group_info *g = NULL;
    size_t ng = 0;
    if (td_group_list(e, &g, &ng) != 0)
        return;
    for (size_t i = 0; i < c->nover; i++)
        c->over[i].seen = false;
    int64_t now = td_wall_ms();
    for (size_t i = 0; i < ng; i++) {
        td_group_lag_info *l = NULL;
        size_t nl = 0;
        if (td_group_lag(e, g[i].name, &l, &nl) != 0)
            continue;
        /* Sorted by topic: one run per topic. */
        for (size_t a = 0, b; a < nl; a = b) {
            for (b = a + 1; b < nl && !strcmp(l[b].topic, l[a].topic); b++)
                ;
            if (!health_topic_name(l[a].topic))
                lag_topic(e, c, g[i].name, l + a, b - a, now);
        }
        free(l);
    }
    free(g);
    /* A group or topic gone (offsets deleted, topic deleted) is forgotten without a word. */
    for (size_t i = 0; i < c->nover;) {
        if (c->over[i].seen) {
            i++;
            continue;
        }
        free(c->over[i].group);
        free(c->over[i].topic);
        c->over[i] = c->over[--c->nover];
    }
}

void health_check_all(td_engine *e, health_checks *c)
{
    check_disk(e, c);
    check_offline(e, c);
    check_fsync(e);
    check_lag(e, c);
}
