/*
 * redrive.c: moving dead-lettered events back to their origin (td_redrive in tidings.h,
 * docs/queues.md). Reads the dead-letter topic partition by partition with the engine's
 * iterators, produces the copies in batches (durable before the next batch), then advances the
 * dead-letter topic's log start past the prefix that moved.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/engine_int.h"
#include "broker/health.h"

#define BATCH 500

void td_redrive_opts_init(td_redrive_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->partition = -1;
    o->from_offset = -1;
    o->to_offset = -1;
    o->since_ms = -1;
    o->until_ms = -1;
}

/* The value of header `name` as text (at most len - 1 bytes), or false. */
static bool header_text(const td_event *ev, const char *name, char *buf, size_t len)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < ev->header_count; i++) {
        const td_header *h = &ev->headers[i];
        if (h->key_len == n && !memcmp(h->key, name, n) && h->value && h->value_len < len) {
            memcpy(buf, h->value, h->value_len);
            buf[h->value_len] = 0;
            return true;
        }
    }
    return false;
}

static bool header_int(const td_event *ev, const char *name, int64_t *out)
{
    char buf[32], *end;
    if (!header_text(ev, name, buf, sizeof(buf)) || !buf[0])
        return false;
    long long v = strtoll(buf, &end, 10);
    if (*end)
        return false;
    *out = v;
    return true;
}

/* One batch of copies: events with their own bytes (the iterator's are reused), each freed
 * through its headers (broker_event_copy). */
typedef struct batch {
    td_event ev[BATCH];
    char topic[BATCH][TD_TOPIC_NAME_MAX + 1];
    size_t n;
} batch;

static void batch_clear(batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        free((void *)b->ev[i].headers);
    b->n = 0;
}

/* Adds a copy of ev (at offset `offset` of partition `from` of the dead-letter topic dlq)
 * without its x-dlq-* headers, for `topic`, at `partition` (or any): a hop of its trace, caused
 * by the dead letter (docs/tracing.md). */
static int batch_add(batch *b, const td_event *ev, const char *dlq, int32_t from,
                     const char *topic, int32_t partition)
{
    td_event *x = &b->ev[b->n];
    char cause[TD_TOPIC_NAME_MAX + 48];
    snprintf(cause, sizeof(cause), "%s/%" PRId32 "/%" PRId64, dlq, from, ev->offset);
    if (!broker_event_hop_copy(ev, "x-dlq-", cause, NULL, 0, x))
        return -ENOMEM;
    x->partition = partition;
    snprintf(b->topic[b->n], sizeof(b->topic[0]), "%s", topic);
    b->n++;
    return 0;
}

/* Produces the batch, consecutive events of one topic together, in order. */
static int batch_flush(td_engine *e, batch *b)
{
    int rc = 0;
    for (size_t i = 0; i < b->n && rc == 0;) {
        size_t j = i + 1;
        while (j < b->n && !strcmp(b->topic[j], b->topic[i]))
            j++;
        rc = td_produce(e, b->topic[i], b->ev + i, j - i, NULL);
        if (rc)
            td_fail(rc, "redriving to topic '%s': %s", b->topic[i], td_last_error());
        i = j;
    }
    batch_clear(b);
    return rc;
}

static int redrive(td_engine *e, const char *dlq, const td_redrive_opts *o, td_redrive_result *res)
{
    td_topic_info info;
    int rc = td_topic_describe(e, dlq, &info);
    if (rc)
        return rc;
    if (o->partition >= info.partitions)
        return td_fail(TD_ENOTFOUND, "topic '%s' has no partition %" PRId32, dlq, o->partition);
    if (o->to_topic && (rc = td_topic_describe(e, o->to_topic, &(td_topic_info){0})) != 0)
        return rc;
    int32_t first = o->partition >= 0 ? o->partition : 0;
    int32_t last = o->partition >= 0 ? o->partition : info.partitions - 1;
    int32_t np = last - first + 1;
    int64_t *from = calloc((size_t)np, sizeof(*from)), *to = calloc((size_t)np, sizeof(*to));
    batch *b = calloc(1, sizeof(*b));
    if (!from || !to || !b) {
        rc = -ENOMEM;
        goto out;
    }
    /* The ranges, and their total for the progress. */
    for (int32_t p = first; p <= last; p++) {
        int64_t start, end;
        if ((rc = td_offset_for(e, dlq, p, TD_OFFSET_EARLIEST, &start)) != 0 ||
            (rc = td_offset_for(e, dlq, p, TD_OFFSET_LATEST, &end)) != 0)
            goto out;
        from[p - first] = o->from_offset > start ? o->from_offset : start;
        to[p - first] = o->to_offset >= 0 && o->to_offset < end ? o->to_offset : end;
        if (to[p - first] > from[p - first])
            res->total += to[p - first] - from[p - first];
    }
    int64_t done = 0;
    for (int32_t p = first; p <= last && rc == 0; p++) {
        int64_t lo = from[p - first], hi = to[p - first];
        if (lo >= hi)
            continue;
        td_iter *it;
        if ((rc = td_iter_open(e, dlq, p, lo, &it)) != 0)
            break;
        /* The prefix that moved: everything below `moved_to` moved (or was the log start). */
        int64_t moved_to = lo, start = 0;
        td_offset_for(e, dlq, p, TD_OFFSET_EARLIEST, &start);
        bool prefix = lo <= start; /* still moving a prefix of the log */
        td_event ev;
        int r;
        while (rc == 0 && (r = td_iter_next(it, &ev)) == 1 && ev.offset < hi) {
            done++;
            char origin[TD_TOPIC_NAME_MAX + 1];
            int64_t failed = ev.timestamp_ms, opart = -1;
            header_int(&ev, "x-dlq-last-failure-ms", &failed);
            bool has_origin = header_text(&ev, "x-dlq-topic", origin, sizeof(origin));
            bool in_time = (o->since_ms < 0 || failed >= o->since_ms) &&
                           (o->until_ms < 0 || failed < o->until_ms);
            const char *target = o->to_topic ? o->to_topic : has_origin ? origin : NULL;
            if (!target || !in_time) {
                res->skipped++;
                prefix = false;
                continue;
            }
            /* Back to its origin partition when going home (its key's order is kept). */
            int32_t part = TD_PARTITION_ANY;
            td_topic_info ti;
            if (has_origin && !strcmp(target, origin) &&
                header_int(&ev, "x-dlq-partition", &opart) &&
                td_topic_describe(e, target, &ti) == 0 && opart >= 0 && opart < ti.partitions)
                part = (int32_t)opart;
            if ((rc = batch_add(b, &ev, dlq, p, target, part)) != 0)
                break;
            engine_trace_hop(e, "redrive", dlq, &ev, NULL, 0, td_wall_ms());
            res->moved++;
            if (prefix)
                moved_to = ev.offset + 1;
            if (b->n == BATCH) {
                rc = batch_flush(e, b);
                if (o->progress && rc == 0 && o->progress(o->arg, done, res->total) != 0)
                    rc = td_fail(TD_ECLOSED, "the redrive was stopped");
            }
        }
        td_iter_close(it);
        if (rc == 0 && r < 0)
            rc = r;
        if (rc == 0 && b->n)
            rc = batch_flush(e, b);
        bool stop = o->progress && rc == 0 && o->progress(o->arg, done, res->total) != 0;
        /* Only what is durable at its destination leaves the dead-letter topic. */
        if (rc == 0 && !o->keep && lo <= start && moved_to > start) {
            int64_t before = start, after;
            if ((rc = td_delete_records(e, dlq, p, moved_to, &after)) == 0)
                res->deleted += after - before;
        }
        if (rc == 0 && stop)
            rc = td_fail(TD_ECLOSED, "the redrive was stopped");
    }
out:
    if (b)
        batch_clear(b);
    free(b);
    free(from);
    free(to);
    return rc;
}

int td_redrive(td_engine *e, const char *dlq, const td_redrive_opts *o, td_redrive_result *res)
{
    td_error_clear();
    if (!e || !dlq || !o || !res)
        return td_fail(TD_EINVAL, "td_redrive needs an engine, a topic, options and a result");
    memset(res, 0, sizeof(*res));
    health_field s[] = {HF_STR("dead_letter_topic", dlq), HF_STR("to_topic", o->to_topic),
                        HF_INT("partition", o->partition)};
    health_emit(e, HEALTH_QUEUE_REDRIVE_STARTED, dlq, s, sizeof(s) / sizeof(s[0]));
    int rc = redrive(e, dlq, o, res);
    health_field f[] = {
        HF_STR("dead_letter_topic", dlq),  HF_STR("to_topic", o->to_topic),
        HF_INT("partition", o->partition), HF_INT("total", res->total),
        HF_INT("moved", res->moved),       HF_INT("skipped", res->skipped),
        HF_INT("deleted", res->deleted),   HF_STR("error", rc ? td_last_error() : NULL)};
    health_emit(e, HEALTH_QUEUE_REDRIVE_FINISHED, dlq, f, sizeof(f) / sizeof(f[0]));
    return rc;
}
