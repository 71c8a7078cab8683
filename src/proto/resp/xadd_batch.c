/*
 * xadd_batch.c: XADD batching (docs/redis.md#streams): consecutive `XADD key * ...` of one
 * connection's input to one stream become one record batch (one write, one durability wait);
 * their replies are written when it is appended, before any other command of the connection
 * runs. Their IDs are consecutive, with the batch's ms, as for events appended one by one within
 * a millisecond. Also the two checks and replies every XADD shares: the topic's schema
 * validation and the append's errors. cmd_stream.c has the command.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/registry.h"
#include "proto/resp/resp_int.h"

#define XB_MAX_EVENTS 512
#define XB_MAX_BYTES (256u << 10)

/* A batched entry's headers: the content-type of a RESP array value, and the Trace Context
 * fields (docs/tracing.md), whose values follow the entry's value in the batch's data. */
typedef struct xb_hdrs {
    bool resp;      /* the value is a RESP array (needs the content-type header) */
    uint8_t ntrace; /* 0 to 2 */
    bool state[2];  /* trace header k is tracestate (else traceparent) */
    size_t tlen[2]; /* the length of trace header k's value */
} xb_hdrs;

struct resp_xbatch {
    td_slice key; /* owned copy */
    sref s;
    td_buf data;  /* the values (each with its trace values after it), back to back */
    size_t *len;  /* each value's length */
    xb_hdrs *hdr; /* each value's headers */
    size_t n, cap;
};

/* The bytes of entry k in the batch's data. */
static size_t xb_size(const resp_xbatch *xb, size_t k)
{
    return xb->len[k] + xb->hdr[k].tlen[0] + xb->hdr[k].tlen[1];
}

static void xb_reset(resp_xbatch *xb)
{
    if (xb->s.ref)
        broker_topic_release(xb->s.ref);
    xb->s.ref = NULL;
    free((void *)xb->key.p);
    xb->key = td_slice_make(NULL, 0);
    xb->n = 0;
    td_buf_reset(&xb->data);
}

void resp_xbatch_free(resp_xbatch *xb)
{
    if (!xb)
        return;
    xb_reset(xb);
    td_buf_free(&xb->data);
    free(xb->len);
    free(xb->hdr);
    free(xb);
}

void resp_reply_append_error(resp_w *w, int r, int mode)
{
    const char *e = NULL;
    if (r == TD_ESEQUENCE)
        e = "ERR The ID specified in XADD is equal or smaller than the target stream top item";
    else if (r == TD_EFULL)
        e = "ERR The stream has exhausted the last possible ID, unable to add more items";
    else if (r == TD_ERANGE && mode == BROKER_SID_MS)
        e = "ERR Elements are too large to be stored"; /* Redis 7.0's answer to `ms-*` at the
                                                          last ms when its seq is the largest */
    if (!e) {
        resp_reply_engine_error(w, r);
        return;
    }
    td_error_clear();
    resp_w_error(w, e);
}

/* Appends the batched XADDs of one stream and writes their replies. */
static int xb_append(rconn *rc, resp_xbatch *xb, size_t from, size_t n, size_t pos, resp_w *w)
{
    td_event *ev = malloc(n * sizeof(*ev));
    td_header *hs = malloc(n * 3 * sizeof(*hs));
    if (!ev || !hs) {
        free(ev);
        free(hs);
        return -ENOMEM;
    }
    static const td_header ct = {"content-type", 12, RESP_FIELDS_CONTENT_TYPE,
                                 sizeof(RESP_FIELDS_CONTENT_TYPE) - 1};
    int64_t now = td_wall_ms();
    for (size_t k = 0; k < n; k++) {
        const xb_hdrs *m = &xb->hdr[from + k];
        td_header *h = hs + 3 * k;
        size_t nh = 0, at = pos + xb->len[from + k];
        if (m->resp)
            h[nh++] = ct;
        for (size_t t = 0; t < m->ntrace; t++) {
            h[nh++] = (td_header){m->state[t] ? "tracestate" : "traceparent",
                                  m->state[t] ? 10u : 11u, xb->data.p + at, m->tlen[t]};
            at += m->tlen[t];
        }
        ev[k] = (td_event){.value = xb->data.p + pos,
                           .value_len = xb->len[from + k],
                           .headers = nh ? h : NULL,
                           .header_count = nh,
                           .timestamp_ms = now};
        pos += xb_size(xb, from + k);
    }
    broker_sid_req req = {BROKER_SID_AUTO, {0, 0}, {0, 0}};
    broker_append_result ar;
    const td_event *evs = ev;
    void *traced = NULL; /* trace.inject's copy */
    int r = broker_trace_inject(rc->s->e, ev, n, &evs, &traced);
    if (r == 0)
        r = broker_stream_append(xb->s.p, evs, n, now, &req, &ar);
    if (r == 0)
        broker_trace_events(xb->s.ref, xb->s.pi, evs, n, &ar, now);
    free(traced);
    free(ev);
    free(hs);
    if (r)
        return r;
    for (size_t k = 0; k < n; k++)
        resp_w_id(w, (td_sid){req.got.ms, req.got.seq + k});
    resp_wait_durable(rc, xb->s.ref, xb->s.pi, ar.end_offset);
    for (size_t k = 0; k < n; k++)
        resp_notify(rc, RESP_NOTIFY_STREAM, "xadd", xb->key);
    return 0;
}

void resp_xadd_flush(rconn *rc, resp_w *w)
{
    resp_xbatch *xb = rc->xb;
    if (!xb || xb->n == 0)
        return;
    int r = xb_append(rc, xb, 0, xb->n, 0, w);
    if ((r == TD_ETOOBIG || r == TD_EFULL) && xb->n > 1) {
        /* Together above the topic's max.message.bytes, or past the last possible ID: one by
         * one (those before the last ID are added, as Redis adds them). */
        size_t pos = 0;
        for (size_t k = 0; k < xb->n; k++) {
            r = xb_append(rc, xb, k, 1, pos, w);
            if (r)
                resp_reply_append_error(w, r, BROKER_SID_AUTO);
            pos += xb_size(xb, k);
        }
    } else if (r) {
        for (size_t k = 0; k < xb->n; k++)
            resp_reply_append_error(w, r, BROKER_SID_AUTO);
    }
    xb_reset(xb);
}

bool resp_xadd_schema_ok(rconn *rc, td_topic_ref *ref, const td_slice *fv, size_t nfv, char *msg,
                         size_t msglen)
{
    td_topic_config cfg;
    broker_topic_config(ref, &cfg);
    if (!cfg.value_schema_validation)
        return true;
    registry_policy pol;
    registry_policy_of(&cfg, &pol);
    registry_json_check chk;
    if (registry_check_fields(rc->s->e, ref, &pol, fv, nfv, &chk) == 0)
        return true;
    snprintf(msg, msglen, "ERR schema violation at %s: %s%s%s%s", *chk.pointer ? chk.pointer : "/",
             chk.why, *chk.rule ? " (" : "", chk.rule, *chk.rule ? ")" : "");
    for (char *c = msg; *c; c++) /* an error reply is one line */
        if (*c == '\r' || *c == '\n')
            *c = ' ';
    return false;
}

bool resp_xadd_batch_add(rconn *rc, resp_w *w, td_slice key, const td_slice *fv, size_t nfv,
                         const td_header *trace, size_t ntrace)
{
    resp_xbatch *xb = rc->xb;
    if (!xb) {
        xb = rc->xb = calloc(1, sizeof(*xb));
        if (!xb)
            return false;
        td_buf_init(&xb->data);
    }
    if (xb->n && !(xb->key.n == key.n && memcmp(xb->key.p, key.p, key.n) == 0))
        resp_xadd_flush(rc, w);
    if (xb->n == 0) {
        void *copy = malloc(key.n + 1);
        if (!copy)
            return false;
        int o = resp_stream_open(rc, w, key, true, &xb->s);
        if (o == 1)
            o = resp_stream_writable(w, &xb->s);
        if (o != 1) {
            free(copy);
            xb->s.ref = NULL;
            return o < 0; /* an error is written: done; 0 cannot happen with create */
        }
        memcpy(copy, key.p, key.n);
        xb->key = td_slice_make(copy, key.n);
    }
    char err[1000];
    if (!resp_xadd_schema_ok(rc, xb->s.ref, fv, nfv, err, sizeof(err))) {
        /* The batched XADDs before it answer first (replies keep their order); with none,
         * the stream opened for this XADD is dropped. */
        if (xb->n == 0)
            xb_reset(xb);
        else
            resp_xadd_flush(rc, w);
        resp_w_error(w, err);
        return true;
    }
    /* Two arrays of one capacity: it is the smaller of theirs when only one could grow. */
    size_t lcap = xb->cap, rcap = xb->cap;
    int g = td_grow(&xb->len, &lcap, xb->n, sizeof(*xb->len), 32);
    if (g == 0)
        g = td_grow(&xb->hdr, &rcap, xb->n, sizeof(*xb->hdr), 32);
    xb->cap = TD_MIN(lcap, rcap);
    if (g) {
        resp_w_error(w, "ERR out of memory");
        return true;
    }
    bool json = resp_fields_json_ok(fv, nfv);
    size_t before = xb->data.len;
    int e = resp_fields_encode(&xb->data, fv, nfv, json);
    size_t vlen = xb->data.len - before;
    xb_hdrs m = {.resp = !json, .ntrace = (uint8_t)ntrace};
    for (size_t k = 0; k < ntrace && e == 0; k++) {
        m.state[k] = trace[k].key_len == 10;
        m.tlen[k] = trace[k].value_len;
        e = td_buf_append(&xb->data, trace[k].value, trace[k].value_len);
    }
    if (e != 0) {
        xb->data.len = before;
        resp_w_error(w, "ERR out of memory");
        return true;
    }
    xb->len[xb->n] = vlen;
    xb->hdr[xb->n] = m;
    xb->n++;
    if (xb->n >= XB_MAX_EVENTS || xb->data.len >= XB_MAX_BYTES)
        resp_xadd_flush(rc, w);
    return true;
}
