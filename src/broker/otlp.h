/*
 * otlp.h: export of the broker's spans to an OpenTelemetry collector over OTLP/HTTP with the
 * JSON encoding (docs/otlp-export.md). Off unless otlp.endpoint is set.
 *
 * The exporter keeps a bounded queue of spans (otlp.max.queue.spans slots, allocated when it
 * starts); otlp_span copies a span into it under a mutex held for the copy only, and drops the
 * span (counted) when the queue is full: it never waits for the network, so event loops and the
 * record path may call it. One background thread posts batches of up to otlp.batch.spans
 * spans every otlp.interval.ms (sooner when a batch is full) to {endpoint}/v1/traces, with a
 * timeout, retrying a bounded number of times with backoff on 429, 502, 503, 504 and network
 * errors; a batch that still fails is dropped (counted). otlp_free flushes what it can within
 * otlp.shutdown.timeout.ms.
 *
 * The encoder (otlp_encode) is a pure function over buffers; traceparents are read and ids
 * made by base/trace.c (td_traceparent_parse, td_trace_new_span, td_random_id).
 */
#ifndef TD_BROKER_OTLP_H
#define TD_BROKER_OTLP_H

#include "base/base.h"
#include "base/metrics.h"
#include "tidings.h"

typedef struct otlp_config {
    char endpoint[512];          /* the collector's base URL; "" = export off */
    char headers[1024];          /* extra request headers: "name=value,name2=value2" */
    char service_name[128];      /* resource service.name */
    char resource_attrs[1024];   /* more resource attributes: "key=value,key2=value2" */
    int64_t max_queue_spans;     /* spans the queue holds before dropping */
    int64_t batch_spans;         /* spans per request at most */
    int64_t interval_ms;         /* the longest a span waits for its batch */
    int64_t timeout_ms;          /* of one request */
    int64_t retries;             /* retries of a failed request */
    int64_t shutdown_timeout_ms; /* otlp_free's bound on the last flush */
} otlp_config;

void otlp_config_defaults(otlp_config *c);
/* Sets one otlp.* setting from its text. 0; TD_ECONFIG (with a message) for a bad value; 1 for
 * a key that is not an otlp.* setting. */
int otlp_config_set(otlp_config *c, const char *key, const char *value);
/* The names of the otlp.* settings, NULL-terminated (for TIDINGS_* environment variables). */
extern const char *const otlp_config_keys[];

/* OTLP's SpanKind values. */
enum {
    OTLP_KIND_INTERNAL = 1,
    OTLP_KIND_SERVER,
    OTLP_KIND_CLIENT,
    OTLP_KIND_PRODUCER,
    OTLP_KIND_CONSUMER
};
/* OTLP's Status codes. */
enum { OTLP_STATUS_UNSET = 0, OTLP_STATUS_OK = 1, OTLP_STATUS_ERROR = 2 };

#define OTLP_MAX_ATTRS 8

/* An attribute: a string (str not NULL, str_len bytes) or an integer. */
typedef struct otlp_attr {
    const char *key;
    const char *str;
    size_t str_len;
    int64_t num;
} otlp_attr;

typedef struct otlp_span_rec {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t parent_span_id[8]; /* all zero: a root span */
    uint8_t flags;             /* W3C trace flags (bit 0: sampled) */
    const char *name;
    int kind;                   /* OTLP_KIND_* */
    int64_t start_ns, end_ns;   /* unix nanoseconds */
    int status;                 /* OTLP_STATUS_* */
    const char *status_message; /* NULL: none */
    otlp_attr attrs[OTLP_MAX_ATTRS];
    size_t nattrs;
} otlp_span_rec;

/*
 * Appends to out an ExportTraceServiceRequest in OTLP's JSON mapping: one resourceSpans with
 * the resource's attributes (nres of them), one scopeSpans (scope "tidings"), and the n spans.
 * Strings that are not UTF-8 have their bytes outside ASCII replaced by '?'. 0 or -ENOMEM.
 */
int otlp_encode(td_buf *out, const otlp_attr *res, size_t nres, const otlp_span_rec *spans,
                size_t n);

typedef struct otlp_exporter otlp_exporter;

/* Starts an exporter (its queue and thread); metrics (may be NULL) gets its series. 0, or an
 * error (TD_ECONFIG for no endpoint or a bad header list). */
int otlp_new(const otlp_config *cfg, td_metrics *metrics, otlp_exporter **out);
/* Flushes within cfg->shutdown_timeout_ms, stops the thread, frees. NULL is fine. */
void otlp_free(otlp_exporter *x);
/* Queues a copy of span (strings longer than the slot's room are cut); drops it, counted, when
 * the queue is full. Any thread; never blocks on the network. */
void otlp_span(otlp_exporter *x, const otlp_span_rec *span);

/* Hands the engine an exporter (NULL: none) for its spans (broker.h's broker_trace_*); the
 * engine frees it, and one it held before, and at td_engine_close flushes it once nothing
 * appends any more. Set it before the listeners start. */
void broker_set_otlp(td_engine *e, otlp_exporter *x);

#endif /* TD_BROKER_OTLP_H */
