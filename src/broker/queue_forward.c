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
 * when missing), and gets an x-causation-id header naming its origin
 * (<topic>/<partition>/<offset>). At least once: a crash between the append and the ack forwards
 * the event again.
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

/* The copies of v[0..n) appended to topic `to`, created when missing. */
static int append_copies(td_engine *e, const char *to, const td_queue_msg *v, size_t n)
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
    if (rc)
        return rc;
    td_event *ev = calloc(n, sizeof(*ev));
    char(*cause)[TD_TOPIC_NAME_MAX + 48] = calloc(n, sizeof(*cause));
    td_header *hs = NULL;
    size_t nh = 0;
    for (size_t i = 0; i < n; i++)
        nh += v[i].event.header_count + 1;
    hs = calloc(nh ? nh : 1, sizeof(*hs));
    if (!ev || !cause || !hs) {
        rc = td_fail(-ENOMEM, "out of memory forwarding to %s", to);
        goto out;
    }
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        const td_event *x = &v[i].event;
        td_header *h = hs + at;
        memcpy(h, x->headers, x->header_count * sizeof(*h));
        int len = snprintf(cause[i], sizeof(cause[i]), "%s/%" PRId32 "/%" PRId64, v[i].topic,
                           x->partition, x->offset);
        h[x->header_count] = (td_header){"x-causation-id", 14, cause[i], (size_t)len};
        ev[i] = (td_event){.key = x->key,
                           .key_len = x->key_len,
                           .value = x->value,
                           .value_len = x->value_len,
                           .headers = h,
                           .header_count = x->header_count + 1,
                           .timestamp_ms = x->timestamp_ms,
                           .partition = x->partition % (info.partitions > 0 ? info.partitions : 1)};
        at += x->header_count + 1;
    }
    rc = td_produce(e, to, ev, n, NULL);
out:
    free(ev);
    free(cause);
    free(hs);
    return rc;
}

/* The outcome of a batch: acked once appended, else nacked (the policy's backoff). */
static void settle(td_engine *e, const char *group, const td_queue_msg *v, size_t n, int rc)
{
    const char **ids = malloc(n * sizeof(*ids));
    if (!ids)
        return; /* their deadline passes: they are delivered again */
    for (size_t i = 0; i < n; i++)
        ids[i] = v[i].id;
    char why[300];
    if (rc)
        snprintf(why, sizeof(why), "cannot forward: %s", td_last_error());
    int r =
        rc ? td_queue_nack(e, group, ids, n, -1, why, NULL) : td_queue_ack(e, group, ids, n, NULL);
    if (r)
        td_error_clear(); /* deleted meanwhile, or its records failed: delivered again */
    free(ids);
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
        int rc = append_copies(q->e, to, v, n);
        if (rc)
            TD_WARN("queue",
                    "group %s: cannot forward %zu events to %s: %s; retrying after the "
                    "backoff",
                    group, n, to, td_last_error());
        settle(q->e, group, v, n, rc);
        td_queue_msgs_free(v, n);
        pthread_mutex_lock(&q->mu);
        return now; /* more may be due: at once, after the others' work */
    }
    (void)now;
    return any ? td_wall_ms() + FORWARD_POLL_MS : INT64_MAX;
}
