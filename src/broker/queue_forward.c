/*
 * queue_forward.c: forwarding queue groups, the delayed views (docs/queues.md#delayed-views).
 *
 * A group with forward.to has the broker as its only consumer: the delivery thread receives
 * its deliveries (what is due: new events at once, delayed ones at their time, earliest
 * first), appends them to the forward topic, and acks them once the append is durable; an
 * append that fails is a nack (the policy's backoff, then its dead-letter topic). So the forward
 * topic holds the group's events in the order they fell due, for any reader of a log: a Kafka
 * consumer, XREAD, an SSE subscription.
 *
 * Each copy keeps its event's key, value, timestamp and headers, goes to the partition of the
 * same number (modulo the forward topic's count; the topic is created with the origin's count
 * when missing), and is a hop of the event's trace as a dead letter is (an x-causation-id header
 * naming its origin, <topic>/<partition>/<offset>; with a traceparent, a child span). At least
 * once: a crash between the append and the ack forwards the event again.
 *
 * The thread looks every FORWARD_POLL_MS while a forwarding group exists (new events need no
 * wake-up of their own) and at once at a delayed event's time (the group's next due time).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "broker/queue_int.h"

#define FORWARD_BATCH 512
#define FORWARD_POLL_MS 20
#define FORWARD_CONSUMER "$forward"

/* The copies of v[0..n) appended to topic `to` (created when missing), in one call; when that
 * fails, one by one, so that an event the topic refuses (too large, a timestamp out of its
 * range) fails alone. rcs[i] gets event i's result. Each copy is a hop of its event's trace, as
 * a dead letter is (broker_event_hop_copy: x-causation-id naming its origin, a child span). */
static void append_copies(td_engine *e, const char *group, const char *to, const td_queue_msg *v,
                          size_t n, int *rcs)
{
    td_topic_info info;
    int rc = td_topic_describe(e, to, &info);
    if (rc == TD_ENOTFOUND) {
        td_topic_info from;
        int32_t parts = td_topic_describe(e, v[0].topic, &from) == 0 ? from.partitions : 1;
        rc = td_topic_create(e, to, parts, NULL, 0);
        if (rc == 0 || rc == TD_EEXIST)
            rc = td_topic_describe(e, to, &info);
    }
    td_event *ev = calloc(n, sizeof(*ev));
    void **blocks = calloc(n, sizeof(*blocks));
    td_produce_result *res = calloc(n, sizeof(*res));
    if (rc == 0 && (!ev || !blocks || !res))
        rc = td_fail(-ENOMEM, "out of memory forwarding to %s", to);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const td_event *x = &v[i].event;
        char cause[TD_TOPIC_NAME_MAX + 48];
        snprintf(cause, sizeof(cause), "%s/%" PRId32 "/%" PRId64, v[i].topic, x->partition,
                 x->offset);
        if (!(blocks[i] = broker_event_hop_copy(x, NULL, cause, NULL, 0, &ev[i])))
            rc = td_fail(-ENOMEM, "out of memory forwarding to %s", to);
        ev[i].partition = x->partition % (info.partitions > 0 ? info.partitions : 1);
        res[i].offset = -1;
    }
    int64_t start = td_wall_ms();
    int all = rc ? rc : td_produce(e, to, ev, n, res);
    /* A failed call may have written some (a batch per partition, or per max.message.bytes):
     * those stay written; the others are tried alone. */
    for (size_t i = 0; i < n; i++) {
        rcs[i] = rc                   ? rc
                 : all == 0           ? 0
                 : res[i].offset >= 0 ? 0
                 : n == 1             ? all
                                      : td_produce(e, to, &ev[i], 1, NULL);
        if (rcs[i] == 0)
            engine_trace_hop(e, "forward", v[i].topic, &ev[i], group, strlen(group), start);
    }
    for (size_t i = 0; blocks && i < n; i++)
        free(blocks[i]);
    free(blocks);
    free(res);
    free(ev);
}

/* The outcomes: those appended acked, the others nacked (the policy's backoff, then its
 * dead-letter topic). */
static void settle(td_engine *e, const char *group, const td_queue_msg *v, size_t n, const int *rcs)
{
    const char **ids = malloc(n * sizeof(*ids));
    if (!ids)
        return; /* their deadline passes: they are delivered again */
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (rcs[i] == 0)
            ids[k++] = v[i].id;
    if (k && queue_forward_settle(e, group, ids, k, true, NULL) != 0)
        td_error_clear(); /* deleted meanwhile, or its records failed: delivered again */
    for (size_t i = 0; i < n; i++) {
        if (rcs[i] == 0)
            continue;
        char why[300];
        snprintf(why, sizeof(why), "cannot forward: %s", td_strerror(rcs[i]));
        const char *id = v[i].id;
        if (queue_forward_settle(e, group, &id, 1, false, why) != 0)
            td_error_clear();
    }
    free(ids);
}

/* A batch ordered by partition, then by the time each event fell due (its delivery time, or
 * its timestamp), as a receive hands out what fell due together by offset: the key of each
 * message computed once, then the messages moved into that order. */
typedef struct fkey {
    int32_t partition;
    int64_t due, offset;
    size_t i;
} fkey;

static int fkey_cmp(const void *a, const void *b)
{
    const fkey *x = a, *y = b;
    if (x->partition != y->partition)
        return x->partition < y->partition ? -1 : 1;
    if (x->due != y->due)
        return x->due < y->due ? -1 : 1;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static void order_by_due(td_queue_msg *v, size_t n)
{
    fkey *k = malloc(n * sizeof(*k));
    td_queue_msg *tmp = malloc(n * sizeof(*tmp));
    if (!k || !tmp) { /* left in receive order */
        free(k);
        free(tmp);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        int64_t due = qsched_due_of(&v[i].event, 0, NULL);
        k[i] = (fkey){v[i].event.partition, due > 0 ? due : v[i].event.timestamp_ms,
                      v[i].event.offset, i};
    }
    qsort(k, n, sizeof(*k), fkey_cmp);
    for (size_t i = 0; i < n; i++)
        tmp[i] = v[k[i].i];
    memcpy(v, tmp, n * sizeof(*v));
    free(k);
    free(tmp);
}

int64_t queue_forward_run(td_queues *q, int64_t now)
{
    bool any = false;
    for (size_t k = 0; k < q->n; k++) {
        size_t i = (q->fwd_rr + k) % q->n;
        qgroup *g = q->g[i];
        if (!g->pol.forward_to[0])
            continue;
        any = true;
        td_queue_msg *v = NULL;
        size_t n = 0;
        if (queue_receive_locked(q, g, FORWARD_CONSUMER, FORWARD_BATCH, &v, &n) != 0) {
            TD_WARN("queue", "group %s: cannot forward: %s", g->name, td_last_error());
            td_error_clear();
            continue;
        }
        if (!n)
            continue;
        char group[TD_TOPIC_NAME_MAX + 1], to[TD_TOPIC_NAME_MAX + 1];
        memcpy(group, g->name, sizeof(group));
        memcpy(to, g->pol.forward_to, sizeof(to));
        q->fwd_rr = i + 1; /* the next run starts with the next group */
        pthread_mutex_unlock(&q->mu);
        int *rcs = calloc(n, sizeof(*rcs));
        if (rcs) {
            order_by_due(v, n);
            append_copies(q->e, group, to, v, n, rcs);
            size_t bad = 0;
            int first = 0;
            for (size_t j = 0; j < n; j++)
                if (rcs[j] && !bad++)
                    first = rcs[j];
            if (bad)
                TD_WARN("queue",
                        "group %s: cannot forward %zu of %zu events to %s: %s; they are retried "
                        "after the backoff",
                        group, bad, n, to, td_strerror(first));
            settle(q->e, group, v, n, rcs);
        }
        free(rcs);
        td_queue_msgs_free(v, n);
        pthread_mutex_lock(&q->mu);
        return now; /* more may be due: at once, after the others' work */
    }
    return any ? td_wall_ms() + FORWARD_POLL_MS : INT64_MAX;
}
