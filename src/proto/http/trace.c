/*
 * trace.c: W3C Trace Context on HTTP produce (docs/tracing.md, docs/http-api.md#produce): the
 * request's `traceparent` and `tracestate` headers become headers of the request's events that
 * carry no `traceparent` of their own.
 */
#include <string.h>

#include "proto/http/http_int.h"

int http_trace_context(const http_request *r, td_slice *traceparent, td_slice *tracestate,
                       size_t *nstate)
{
    const td_slice *tp = NULL;
    size_t ntp = 0;
    *nstate = 0;
    *traceparent = *tracestate = td_slice_make(NULL, 0);
    for (size_t i = 0; i < r->nheaders; i++) {
        const http_header *h = &r->headers[i];
        if (http_name_eq(h->name, "traceparent")) {
            tp = &h->value;
            ntp++;
        } else if (http_name_eq(h->name, "tracestate")) {
            if (*nstate == 0)
                *tracestate = h->value;
            ++*nstate;
        }
    }
    td_trace_ctx c;
    /* Several traceparent fields cannot be combined: W3C's receiver treats them as invalid. */
    if (ntp != 1 || td_traceparent_parse(tp->p, tp->n, &c) != 0) {
        *nstate = 0;
        *tracestate = td_slice_make(NULL, 0);
        return 0;
    }
    *traceparent = *tp;
    return 1;
}

/* The tracestate of the request: its one field, or its fields joined with commas (as HTTP
 * combines repeated fields), when valid; NULL for none. */
static const char *joined_state(const http_request *r, td_arena *a, td_slice first, size_t nstate,
                                size_t *len)
{
    *len = 0;
    if (nstate == 1) {
        if (!td_tracestate_valid(first.p, first.n))
            return NULL;
        *len = first.n;
        return (const char *)first.p;
    }
    char *s = td_arena_alloc(a, TD_TRACESTATE_MAX + 1), *w = s;
    if (!s)
        return NULL;
    for (size_t i = 0; i < r->nheaders; i++) {
        const http_header *h = &r->headers[i];
        if (!http_name_eq(h->name, "tracestate") || h->value.n == 0)
            continue;
        size_t need = h->value.n + (w > s);
        if ((size_t)(w - s) + need > TD_TRACESTATE_MAX)
            return NULL;
        if (w > s)
            *w++ = ',';
        memcpy(w, h->value.p, h->value.n);
        w += h->value.n;
    }
    if (!td_tracestate_valid(s, (size_t)(w - s)))
        return NULL;
    *len = (size_t)(w - s);
    return s;
}

int http_trace_events(const http_request *r, td_arena *a, td_event *events, size_t n)
{
    td_slice tp, first;
    size_t nstate, slen = 0;
    if (!http_trace_context(r, &tp, &first, &nstate))
        return 0; /* none, or not valid: ignored, as the spec says */
    const char *state = nstate ? joined_state(r, a, first, nstate, &slen) : NULL;
    /* Copies: the events outlive nothing of the request today, but need not know that. */
    const char *tpv = td_arena_memdup(a, tp.p, tp.n);
    state = state ? td_arena_memdup(a, state, slen) : NULL;
    if (!tpv)
        return -1;
    for (size_t i = 0; i < n; i++) {
        td_event *ev = &events[i];
        bool own_tp = false, own_ts = false;
        for (size_t k = 0; k < ev->header_count; k++) {
            const td_header *h = &ev->headers[k];
            own_tp = own_tp || (h->key_len == 11 && !memcmp(h->key, "traceparent", 11));
            own_ts = own_ts || (h->key_len == 10 && !memcmp(h->key, "tracestate", 10));
        }
        if (own_tp) /* the event's own context, with its own state (or none) */
            continue;
        size_t add = 1 + (state && !own_ts);
        td_header *hs = td_arena_alloc(a, (ev->header_count + add) * sizeof(*hs));
        if (!hs)
            return -1;
        if (ev->header_count)
            memcpy(hs, ev->headers, ev->header_count * sizeof(*hs));
        size_t k = ev->header_count;
        hs[k++] = (td_header){"traceparent", 11, tpv, tp.n};
        if (add == 2)
            hs[k++] = (td_header){"tracestate", 10, state, slen};
        ev->headers = hs;
        ev->header_count = k;
    }
    return 0;
}
