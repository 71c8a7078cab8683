/*
 * delivery_dlq.c: dead letters of the delivery core (delivery.h): the copy of a dead entry's
 * event to its dead-letter topic, for queue groups and Redis consumer groups alike. The headers
 * added are documented in docs/queues.md; td_redrive (redrive.c) strips them again. The copy
 * is a hop of the event's trace (docs/tracing.md): a child span, and x-causation-* headers.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/delivery.h"
#include "broker/engine_int.h"
#include "broker/health.h"

int delivery_dead_letter(td_engine *e, const delivery_dead *j)
{
    if (!j->dlq[0])
        return td_fail(TD_ECONFIG, "%s.dlq is too long a topic name: set dead.letter.topic",
                       j->topic);
    td_iter *it;
    int rc = td_iter_open(e, j->topic, j->partition, j->offset, &it);
    if (rc == TD_ERANGE || rc == TD_ENOTFOUND)
        return 0;
    if (rc)
        return rc;
    td_event ev;
    rc = td_iter_next(it, &ev);
    if (rc <= 0 || ev.offset != j->offset) {
        td_iter_close(it);
        return rc < 0 ? rc : 0;
    }
    td_topic_info info, origin;
    if (td_topic_describe(e, j->dlq, &info) == TD_ENOTFOUND) {
        int32_t parts = td_topic_describe(e, j->topic, &origin) == 0 ? origin.partitions : 1;
        /* A dead letter stays findable in its trace where its origin is (docs/tracing.md). */
        bool traced = false;
        pthread_rwlock_rdlock(&e->lock);
        td_topic *t = engine_find_locked(e, j->topic);
        if (t) {
            pthread_mutex_lock(&t->cfg_mu);
            traced = t->cfg.trace_index;
            pthread_mutex_unlock(&t->cfg_mu);
        }
        pthread_rwlock_unlock(&e->lock);
        td_config_entry ti = {"trace.index", "true"};
        rc = td_topic_create(e, j->dlq, parts, traced ? &ti : NULL, traced ? 1 : 0);
        if (rc && rc != TD_EEXIST) {
            td_iter_close(it);
            return rc;
        }
        TD_INFO("delivery", "created dead-letter topic %s for group %.*s", j->dlq,
                (int)TD_MIN(j->group.n, 300), (const char *)j->group.p);
    }
    if ((rc = td_topic_describe(e, j->dlq, &info)) != 0) {
        td_iter_close(it);
        return rc;
    }
    enum { NX = 8 };
    td_header hs[NX];
    char part[16], off[24], dl[16], ff[24], lf[24];
    snprintf(part, sizeof(part), "%" PRId32, j->partition);
    snprintf(off, sizeof(off), "%" PRId64, j->offset);
    snprintf(dl, sizeof(dl), "%" PRId32, j->deliveries);
    snprintf(ff, sizeof(ff), "%" PRId64, j->first_fail);
    snprintf(lf, sizeof(lf), "%" PRId64, j->last_fail);
    const char *kv[NX][2] = {{"x-dlq-topic", j->topic},     {"x-dlq-partition", part},
                             {"x-dlq-offset", off},         {"x-dlq-group", NULL},
                             {"x-dlq-deliveries", dl},      {"x-dlq-first-failure-ms", ff},
                             {"x-dlq-last-failure-ms", lf}, {"x-dlq-error", j->error}};
    size_t nh = 0;
    for (size_t i = 0; i < NX; i++) {
        if (i == NX - 1 && !j->error[0])
            break;
        bool grp = kv[i][1] == NULL; /* binary-safe: a Redis group's name */
        hs[nh++] =
            (td_header){kv[i][0], strlen(kv[i][0]), grp ? (const char *)j->group.p : kv[i][1],
                        grp ? j->group.n : strlen(kv[i][1])};
    }
    char cause[TD_TOPIC_NAME_MAX + 48];
    snprintf(cause, sizeof(cause), "%s/%s/%s", j->topic, part, off);
    td_event copy;
    void *block = broker_event_hop_copy(&ev, NULL, cause, hs, nh, &copy);
    td_iter_close(it);
    if (!block)
        return -ENOMEM;
    copy.partition = j->partition % info.partitions;
    int64_t start = td_wall_ms();
    rc = td_produce(e, j->dlq, &copy, 1, NULL);
    /* The span of the hop: a child of the copy's traceparent (itself a child of the
     * original's), the original's having gone with the iterator. */
    if (rc == 0)
        engine_trace_hop(e, "dead_letter", j->topic, &copy, j->group.p, j->group.n, start);
    free(block);
    if (rc == 0 && health_on(e)) {
        char group[TD_GROUP_NAME_MAX + 1];
        snprintf(group, sizeof(group), "%.*s", (int)TD_MIN(j->group.n, TD_GROUP_NAME_MAX),
                 (const char *)j->group.p);
        health_field f[] = {HF_STR("group", group),
                            HF_STR("topic", j->topic),
                            HF_INT("partition", j->partition),
                            HF_INT("offset", j->offset),
                            HF_STR("dead_letter_topic", j->dlq),
                            HF_INT("deliveries", j->deliveries),
                            HF_STR("error", j->error[0] ? j->error : NULL)};
        health_emit(e, HEALTH_QUEUE_DEAD_LETTERED, group, f, sizeof(f) / sizeof(f[0]));
    }
    return rc;
}
