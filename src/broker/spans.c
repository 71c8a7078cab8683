/*
 * spans.c: the broker's spans for the OTLP exporter (otlp.h, docs/otlp-export.md): one PRODUCER
 * span per appended batch of a partition, whichever protocol appended it (td_produce and
 * broker_produce_nowait here, Kafka's produce and Redis's XADD through broker_trace_*), and
 * CONSUMER and INTERNAL spans for queue groups' and Redis consumer groups' deliveries, dead
 * letters and redrives.
 *
 * A span is a child of the traceparent header of the batch's first event when it has a valid
 * one, else the root of a new trace. Cost: with export off (no exporter set, the default) each
 * hook is one atomic load.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "broker/engine_int.h"
#include "broker/otlp.h"
#include "broker/state.h"
#include "storage/batch.h"

/* The most a compressed Kafka batch may inflate to when its first record is looked at. */
#define TRACE_MAX_UNCOMPRESSED (64u << 20)

static otlp_exporter *exporter(td_engine *e)
{
    return __atomic_load_n(&e->otlp, __ATOMIC_ACQUIRE);
}

void broker_set_otlp(td_engine *e, otlp_exporter *x)
{
    otlp_exporter *old = __atomic_exchange_n(&e->otlp, x, __ATOMIC_ACQ_REL);
    otlp_free(old);
}

void engine_otlp_close(td_engine *e)
{
    broker_set_otlp(e, NULL);
}

static int64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The span's trace: the traceparent's (its span the parent), or a new one. */
static void span_ids(otlp_span_rec *s, const void *tp, size_t tp_len)
{
    td_trace_ctx parent, me;
    if (tp && td_traceparent_parse(tp, tp_len, &parent) == 0) {
        td_trace_new_span(&parent, &me);
        memcpy(s->parent_span_id, parent.span_id, sizeof(s->parent_span_id));
    } else {
        td_trace_new_root(&me, TD_TRACE_SAMPLED); /* the broker exports every span it makes */
        memset(s->parent_span_id, 0, sizeof(s->parent_span_id));
    }
    memcpy(s->trace_id, me.trace_id, sizeof(s->trace_id));
    memcpy(s->span_id, me.span_id, sizeof(s->span_id));
    s->flags = me.flags;
}

static const td_header *find_traceparent(const td_header *h, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (h[i].key_len == 11 && !memcmp(h[i].key, "traceparent", 11) && h[i].value)
            return &h[i];
    return NULL;
}

/* What a span says of an operation on a partition. */
typedef struct span_what {
    const char *op; /* "publish", "deliver", "dead_letter", "redrive" */
    int kind;
    const char *topic;
    int32_t partition;
    int64_t offset;    /* the first */
    int64_t count;     /* of a batch; -1: one event */
    const void *group; /* a queue group's name, or NULL */
    size_t group_len;
    int32_t deliveries; /* of a delivery; 0: none */
} span_what;

/* Queues the span of w, which started at start_ms and ends now, as a child of tp (a
 * traceparent's text, or NULL). */
static void emit(otlp_exporter *x, const span_what *w, int64_t start_ms, const void *tp,
                 size_t tp_len)
{
    otlp_span_rec s = {.kind = w->kind, .start_ns = start_ms * 1000000, .end_ns = wall_ns()};
    if (s.start_ns > s.end_ns)
        s.start_ns = s.end_ns;
    span_ids(&s, tp, tp_len);
    char name[TD_TOPIC_NAME_MAX + 32], part[16];
    snprintf(name, sizeof(name), "%s %s", w->op, w->topic);
    snprintf(part, sizeof(part), "%" PRId32, w->partition);
    s.name = name;
    size_t i = 0;
    s.attrs[i++] = (otlp_attr){"messaging.system", "tidings", 7, 0};
    s.attrs[i++] = (otlp_attr){"messaging.operation", w->op, strlen(w->op), 0};
    s.attrs[i++] = (otlp_attr){"messaging.destination.name", w->topic, strlen(w->topic), 0};
    s.attrs[i++] = (otlp_attr){"messaging.destination.partition.id", part, strlen(part), 0};
    s.attrs[i++] = (otlp_attr){"messaging.kafka.offset", NULL, 0, w->offset};
    if (w->count >= 0)
        s.attrs[i++] = (otlp_attr){"messaging.batch.message_count", NULL, 0, w->count};
    if (w->group)
        s.attrs[i++] = (otlp_attr){"messaging.consumer.group.name", w->group, w->group_len, 0};
    if (w->deliveries > 0)
        s.attrs[i++] = (otlp_attr){"tidings.deliveries", NULL, 0, w->deliveries};
    s.nattrs = i;
    otlp_span(x, &s);
}

void engine_trace_events(td_engine *e, const char *topic, int32_t partition, const td_event *events,
                         size_t n, int64_t base_offset, int64_t start_ms)
{
    otlp_exporter *x = exporter(e);
    if (!x || n == 0 || state_topic_internal(topic))
        return;
    const td_header *h = find_traceparent(events[0].headers, events[0].header_count);
    span_what w = {
        "publish", OTLP_KIND_PRODUCER, topic, partition, base_offset, (int64_t)n, NULL, 0, 0};
    emit(x, &w, start_ms, h ? h->value : NULL, h ? h->value_len : 0);
}

void broker_trace_events(td_topic_ref *r, int32_t partition, const td_event *events, size_t n,
                         const broker_append_result *res, int64_t start_ms)
{
    td_topic *t = engine_topic_of(r);
    engine_trace_events(t->engine, t->name, partition, events, n, res->base_offset, start_ms);
}

void broker_trace_batch(td_engine *e, const char *topic, int32_t partition, const uint8_t *batch,
                        size_t n, const broker_append_result *res, int64_t start_ms)
{
    otlp_exporter *x = exporter(e);
    if (!x || res->duplicate)
        return;
    /* The first record's traceparent header: the batch was validated before its append. */
    td_batch_reader rd;
    batch_reader_init(&rd);
    td_record rec;
    const td_record_header *h = NULL;
    if (batch_reader_open(&rd, batch, n, TRACE_MAX_UNCOMPRESSED) == 0 &&
        batch_reader_next(&rd, &rec) == 1) {
        for (size_t i = 0; i < rec.header_count && !h; i++)
            if (rec.headers[i].key.n == 11 && !memcmp(rec.headers[i].key.p, "traceparent", 11))
                h = &rec.headers[i];
    }
    span_what w = {"publish",
                   OTLP_KIND_PRODUCER,
                   topic,
                   partition,
                   res->base_offset,
                   res->last_offset + 1 - res->base_offset,
                   NULL,
                   0,
                   0};
    emit(x, &w, start_ms, h ? h->value.p : NULL, h ? h->value.n : 0);
    batch_reader_free(&rd);
}

void engine_trace_hop(td_engine *e, const char *op, const char *topic, const td_event *ev,
                      const void *group, size_t group_len, int64_t start_ms)
{
    otlp_exporter *x = exporter(e);
    if (!x)
        return;
    const td_header *h = find_traceparent(ev->headers, ev->header_count);
    span_what w = {op,    OTLP_KIND_INTERNAL, topic, ev->partition, ev->offset, -1,
                   group, group_len,          0};
    emit(x, &w, start_ms, h ? h->value : NULL, h ? h->value_len : 0);
}

void broker_trace_deliver(td_engine *e, const char *topic, const td_event *ev, const void *group,
                          size_t group_len, int64_t start_ms)
{
    otlp_exporter *x = exporter(e);
    if (!x)
        return;
    const td_header *h = find_traceparent(ev->headers, ev->header_count);
    span_what w = {"deliver", OTLP_KIND_CONSUMER, topic, ev->partition, ev->offset, -1,
                   group,     group_len,          0};
    emit(x, &w, start_ms, h ? h->value : NULL, h ? h->value_len : 0);
}

void engine_trace_received(td_engine *e, const char *group, const td_queue_msg *v, size_t n,
                           int64_t start_ms)
{
    otlp_exporter *x = exporter(e);
    for (size_t i = 0; x && i < n; i++) {
        const td_event *ev = &v[i].event;
        const td_header *h = find_traceparent(ev->headers, ev->header_count);
        span_what w = {"deliver", OTLP_KIND_CONSUMER, v[i].topic,     ev->partition, ev->offset, -1,
                       group,     strlen(group),      v[i].deliveries};
        emit(x, &w, start_ms, h ? h->value : NULL, h ? h->value_len : 0);
    }
}
