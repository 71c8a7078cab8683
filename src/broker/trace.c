/*
 * trace.c: the engine's part of W3C Trace Context (docs/tracing.md): giving events that arrive
 * without a `traceparent` one (trace.inject), and the span contexts of its own hops, dead
 * letters and redrives, linked to the event they copy.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "broker/engine_int.h"

int broker_trace_inject(td_engine *e, const td_event *in, size_t n, const td_event **out,
                        void **mem)
{
    *out = in;
    *mem = NULL;
    if (!e || e->opts.trace_inject != TD_TRACE_INJECT_MISSING)
        return 0;
    size_t missing = 0, headers = 0;
    for (size_t i = 0; i < n; i++) {
        td_trace_ctx c;
        if (td_trace_find(in[i].headers, in[i].header_count, &c) == 0) {
            missing++;
            headers += in[i].header_count + 1;
        }
    }
    if (missing == 0)
        return 0;
    /* One block: the events, then the headers of those given one, then their values. */
    size_t size =
        n * sizeof(td_event) + headers * sizeof(td_header) + missing * (TD_TRACEPARENT_LEN + 1);
    char *block = malloc(size);
    if (!block)
        return -ENOMEM;
    td_event *evs = (td_event *)block;
    td_header *hs = (td_header *)(block + n * sizeof(td_event));
    char *text = (char *)(hs + headers);
    uint8_t flags = e->opts.trace_sampled ? TD_TRACE_SAMPLED : 0;
    for (size_t i = 0; i < n; i++) {
        evs[i] = in[i];
        td_trace_ctx c;
        if (td_trace_find(in[i].headers, in[i].header_count, &c) != 0)
            continue; /* its own, valid or not: never replaced */
        if (in[i].header_count)
            memcpy(hs, in[i].headers, in[i].header_count * sizeof(*hs));
        td_trace_new_root(&c, flags);
        td_traceparent_format(&c, text);
        hs[in[i].header_count] = (td_header){"traceparent", 11, text, TD_TRACEPARENT_LEN};
        evs[i].headers = hs;
        evs[i].header_count = in[i].header_count + 1;
        hs += evs[i].header_count;
        text += TD_TRACEPARENT_LEN + 1;
    }
    *out = evs;
    *mem = block;
    return 0;
}

/* A header that a hop copy drops: drop_prefix ones, and the causation headers it sets anew. */
static bool hop_drops(const td_header *h, const char *drop_prefix, size_t dl)
{
    if (dl && h->key_len >= dl && !memcmp(h->key, drop_prefix, dl))
        return true;
    return (h->key_len == 14 && !memcmp(h->key, "x-causation-id", 14)) ||
           (h->key_len == 19 && !memcmp(h->key, "x-causation-span-id", 19));
}

void *broker_event_hop_copy(const td_event *ev, const char *drop_prefix, const char *cause,
                            const td_header *extra, size_t nextra, td_event *out)
{
    char tp[TD_TRACEPARENT_LEN + 1], span[17];
    bool traced = broker_trace_link(ev, tp, span) > 0;
    size_t dl = drop_prefix ? strlen(drop_prefix) : 0, k = 0;
    td_header *hs = malloc((ev->header_count + nextra + 2) * sizeof(*hs));
    if (!hs)
        return NULL;
    bool replaced = false;
    for (size_t i = 0; i < ev->header_count; i++) {
        const td_header *h = &ev->headers[i];
        if (hop_drops(h, drop_prefix, dl))
            continue;
        hs[k] = *h;
        /* The copy's span: a child of the original's, where its traceparent was. */
        if (traced && !replaced && h->key_len == 11 && !memcmp(h->key, "traceparent", 11)) {
            hs[k].value = tp;
            hs[k].value_len = TD_TRACEPARENT_LEN;
            replaced = true;
        }
        k++;
    }
    if (nextra)
        memcpy(hs + k, extra, nextra * sizeof(*hs));
    k += nextra;
    hs[k++] = (td_header){"x-causation-id", 14, cause, strlen(cause)};
    if (traced)
        hs[k++] = (td_header){"x-causation-span-id", 19, span, 16};
    td_event tmp = *ev;
    tmp.headers = hs;
    tmp.header_count = k;
    void *block = broker_event_copy(&tmp, NULL, out);
    free(hs);
    return block;
}

size_t broker_trace_link(const td_event *origin, char *traceparent, char *parent_span)
{
    td_trace_ctx c, child;
    if (td_trace_find(origin->headers, origin->header_count, &c) != 1)
        return 0;
    td_trace_new_span(&c, &child);
    td_traceparent_format(&child, traceparent);
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof(c.span_id); i++) {
        parent_span[2 * i] = hex[c.span_id[i] >> 4];
        parent_span[2 * i + 1] = hex[c.span_id[i] & 15];
    }
    parent_span[2 * sizeof(c.span_id)] = 0;
    return TD_TRACEPARENT_LEN;
}
