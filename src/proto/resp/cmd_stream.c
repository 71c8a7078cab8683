/*
 * cmd_stream.c: Redis Streams on topics (docs/redis.md#streams): XADD, XLEN, XRANGE, XREVRANGE,
 * XREAD and XREADGROUP (with BLOCK), XTRIM, XSETID. The other consumer group commands are in
 * cmd_xgroup.c.
 *
 * A stream key is the topic of its key (resp_key_resolve, docs/redis.md#keys-and-topics) with
 * one partition, or <key>/<partition> for any partition of a topic: a stream is one partition,
 * whose IDs (storage's stream IDs) strictly increase. Fields map to events as fields.c says.
 * XADD replies once the event is durable under the topic's fsync policy; the connection's later
 * commands wait for it (replies keep their order), except further XADDs, which append meanwhile
 * so that a pipeline shares one fsync (xadd_batch.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/xgroup.h"
#include "proto/resp/resp_int.h"
#include "proto/resp/xnodes.h"

/* ---------------------------------------------------------------------------------------------
 * Keys and IDs
 */
/* A key whose topic name would be too long (the only key that names no stream). */
static void reply_bad_key(resp_w *w, td_slice key)
{
    size_t n = 0;
    for (size_t i = 0; i < key.n; i++)
        n += td_name_plain(key.p[i]) ? 1 : 3;
    resp_w_errorf(w,
                  "ERR invalid stream key: a key of %zu bytes is the topic name of %zu bytes "
                  "(bytes other than '!' to '~' and %% / \" \\ * # , are written %%XX), and a "
                  "topic name holds at most %d",
                  key.n, n, TD_TOPIC_NAME_MAX);
}

void resp_reply_engine_error(resp_w *w, int r)
{
    const char *d = td_last_error();
    resp_w_errorf(w, "ERR %s", d[0] ? d : td_strerror(r));
}

int resp_stream_open(rconn *rc, resp_w *w, td_slice key, bool create, sref *s)
{
    resp_skey k;
    td_engine *e = rc->s->e;
    /* s->ref is NULL whenever this does not return 1, so that a caller that keeps s (a blocked
     * XREAD's keys) releases only what it holds. */
    s->ref = NULL;
    if (resp_key_resolve(e, key, &k) != 0) {
        reply_bad_key(w, key);
        return -1;
    }
    int r = broker_topic_acquire(e, k.topic, &s->ref);
    if (r == TD_ENOTFOUND && create && k.part < 0) {
        static const td_config_entry cfg[] = {{"retention.ms", "-1"}};
        r = td_topic_create(e, k.topic, 1, cfg, 1);
        if (r == 0)
            resp_notify(rc, RESP_NOTIFY_NEW, "new", key);
        if (r == 0 || r == TD_EEXIST)
            r = broker_topic_acquire(e, k.topic, &s->ref);
    }
    if (r == TD_ENOTFOUND) {
        td_error_clear();
        if (k.part >= 0 && create) { /* deleted since the key was resolved */
            resp_w_errorf(w, "ERR no such topic '%s'", k.topic);
            return -1;
        }
        return 0;
    }
    if (r) {
        resp_reply_engine_error(w, r);
        return -1;
    }
    int32_t n = broker_topic_partitions(s->ref);
    if (k.part < 0 && n > 1) {
        resp_w_errorf(w,
                      "ERR topic '%s' has %" PRId32 " partitions: name one as the stream key "
                      "%.*s/<partition> (0 to %" PRId32 ")",
                      k.topic, n, (int)TD_MIN(key.n, 300), (const char *)key.p, n - 1);
        broker_topic_release(s->ref);
        s->ref = NULL;
        return -1;
    }
    if (k.part >= n) {
        resp_w_errorf(w, "ERR topic '%s' has no partition %" PRId32, k.topic, k.part);
        broker_topic_release(s->ref);
        s->ref = NULL;
        return -1;
    }
    s->pi = k.part < 0 ? 0 : k.part;
    s->p = broker_topic_part(s->ref, s->pi);
    return 1;
}

/* For a command that writes the stream s (opened): 1, or -1 after writing an error and
 * releasing s->ref when it is an internal or a system topic, which no client writes. */
int resp_stream_writable(resp_w *w, sref *s)
{
    if (!broker_topic_readonly(s->ref))
        return 1;
    resp_w_errorf(w, "ERR cannot write to %s topic %s",
                  broker_topic_internal(s->ref) ? "internal" : "system", broker_topic_name(s->ref));
    broker_topic_release(s->ref);
    s->ref = NULL;
    return -1;
}

const char resp_invalid_id[] = "ERR Invalid stream ID specified as stream command argument";

/* Strict (no "-" or "+"), over the full unsigned range (stream_id.h); *big is always false now
 * (IDs are no longer capped), kept for the callers that test it. */
bool resp_id_parse(td_slice a, uint64_t missing_seq, td_sid *id, bool *big)
{
    *big = false;
    return resp_sid_parse(a.p, a.n, missing_seq, RESP_SID_STRICT, id, NULL);
}

void resp_w_id(resp_w *w, td_sid id)
{
    char b[RESP_SID_TEXT_MAX];
    resp_w_bulk(w, b, resp_sid_format(b, id));
}

bool resp_bound_parse(td_slice a, bool is_start, td_sid *id)
{
    return resp_sid_bound(a.p, a.n, is_start, id) == NULL;
}

void resp_w_bound_error(resp_w *w, td_slice a, bool is_start)
{
    td_sid id;
    const char *e = resp_sid_bound(a.p, a.n, is_start, &id);
    resp_w_error(w, e ? e : resp_invalid_id);
}

bool resp_range_args(resp_w *w, td_slice start, td_slice end, const td_slice *opts, size_t nopts,
                     td_sid *lo, td_sid *hi, long long *count)
{
    *count = -1;
    if (!resp_bound_parse(start, true, lo)) {
        resp_w_bound_error(w, start, true);
        return false;
    }
    if (!resp_bound_parse(end, false, hi)) {
        resp_w_bound_error(w, end, false);
        return false;
    }
    for (size_t i = 0; i < nopts; i++) {
        if (resp_arg_is(opts[i], "count") && i + 1 < nopts) {
            if (!resp_parse_count(w, opts[++i], count))
                return false;
        } else {
            resp_reply_syntax(w);
            return false;
        }
    }
    return true;
}

/* ---------------------------------------------------------------------------------------------
 * Reading entries
 */

/* Entries XDEL removed among offsets [from, to). */
static int64_t resp_deleted_in(rconn *rc, const sref *s, int64_t from, int64_t to)
{
    size_t n;
    xstream xs = resp_xstream(s);
    if (xstream_deleted(rc->s->e, &xs, from, to, NULL, &n, NULL) != 0)
        return 0;
    return (int64_t)n;
}

int64_t resp_stream_len(rconn *rc, const sref *s)
{
    int64_t ls = broker_part_log_start(s->p), hw = broker_part_high_watermark(s->p), n = hw - ls;
    /* Entries, not offsets: a compacted topic has gaps between its offsets. */
    if (broker_part_count_records(s->p, ls, hw, &n) != 0)
        n = hw - ls;
    return n - resp_deleted_in(rc, s, ls, hw);
}

/* One command's reply of entries may not pass redis.max.reply.bytes (the entries are buffered
 * before they are sent). */
/* One stream entry as XRANGE gives it: [id, [field, value, ...]]; 0 or -ENOMEM. */
int resp_w_entry(resp_w *w, td_sid id, const td_event *ev)
{
    td_arena a;
    td_arena_init(&a);
    td_slice *f;
    size_t nf;
    if (resp_event_fields(ev, &a, &f, &nf) != 0) {
        td_arena_free(&a);
        return -ENOMEM;
    }
    resp_w_array(w, 2);
    resp_w_id(w, id);
    resp_w_array(w, nf);
    for (size_t i = 0; i < nf; i++)
        resp_w_bulk(w, f[i].p, f[i].n);
    td_arena_free(&a);
    return 0;
}

int resp_reply_too_big(const rconn *rc)
{
    return td_fail(TD_ETOOBIG,
                   "the reply would pass redis.max.reply.bytes (%zu bytes): read the range in "
                   "parts with COUNT",
                   rc->s->cfg.max_reply);
}

int resp_read_entries(rconn *rc, const sref *s, int64_t from, td_sid hi, size_t max, td_buf *b,
                      size_t *n, int64_t *next, td_buf *ends)
{
    resp_w w = {b, rc->proto, false};
    *n = 0;
    *next = from;
    /* Committed entries only: the iterator stops at the last stable offset and skips aborted
     * transactions' (broker/iter.c "Transactions"). */
    int64_t end = broker_part_last_stable(s->p), ls = broker_part_log_start(s->p);
    if (from < ls)
        from = ls;
    *next = TD_MAX(*next, from);
    if (from >= end)
        return 0;
    /* Entries XDEL removed are skipped. */
    int64_t *del;
    size_t ndel, d = 0;
    xstream xs = resp_xstream(s);
    int r = xstream_deleted(rc->s->e, &xs, from, end, &del, &ndel, NULL);
    if (r)
        return r;
    td_iter *it;
    if ((r = td_iter_open(rc->s->e, broker_topic_name(s->ref), s->pi, from, &it)) != 0) {
        free(del);
        return r;
    }
    td_sid id = {0, 0};
    int64_t run_end = -1, run_off = -1;
    td_event ev;
    while ((max == 0 || *n < max) && (r = td_iter_next(it, &ev)) == 1) {
        while (d < ndel && del[d] < ev.offset)
            d++;
        if (d < ndel && del[d] == ev.offset) {
            *next = ev.offset + 1;
            continue;
        }
        if (ev.offset > run_end) {
            if ((r = broker_stream_id(s->p, ev.offset, &id, &run_end)) != 0)
                break;
            run_off = ev.offset;
        }
        td_sid eid = {id.ms, id.seq + (uint64_t)(ev.offset - run_off)};
        if (td_sid_cmp(eid, hi) > 0) {
            r = 0;
            break;
        }
        if ((r = resp_w_entry(&w, eid, &ev)) != 0)
            break;
        if (rc->deliver_group.n)
            broker_trace_deliver(rc->s->e, broker_topic_name(s->ref), &ev, rc->deliver_group.p,
                                 rc->deliver_group.n,
                                 __atomic_load_n(&rc->last_ms, __ATOMIC_RELAXED));
        (*n)++;
        *next = ev.offset + 1;
        if (ends && td_buf_append(ends, &b->len, sizeof(b->len)) != 0)
            w.oom = true;
        if (*n > 1 && b->len > rc->s->cfg.max_reply) {
            r = resp_reply_too_big(rc);
            break;
        }
    }
    td_iter_close(it);
    free(del);
    if (w.oom)
        return -ENOMEM;
    return r < 0 ? r : 0;
}

int resp_read_ids(rconn *rc, const sref *s, const td_sid *ids, size_t n, td_buf *b)
{
    resp_w w = {b, rc->proto, false};
    int64_t *offs = malloc((n ? n : 1) * sizeof(*offs));
    if (!offs)
        return -ENOMEM;
    /* Each ID's offset, -1 for those not in the stream (trimmed, or removed by XDEL). */
    for (size_t i = 0; i < n; i++)
        if (broker_stream_find(s->p, ids[i], &offs[i]) != 0 ||
            resp_deleted_in(rc, s, offs[i], offs[i] + 1) > 0)
            offs[i] = -1;
    int r = 0;
    for (size_t i = 0; i < n && r == 0;) {
        if (offs[i] < 0) {
            resp_w_array(&w, 2);
            resp_w_id(&w, ids[i]);
            resp_w_null_array(&w);
            i++;
            continue;
        }
        /* A run of ids at consecutive offsets: one read. */
        size_t k = i + 1;
        while (k < n && offs[k] >= 0 && offs[k] == offs[k - 1] + 1)
            k++;
        size_t got;
        int64_t next;
        r = resp_read_entries(rc, s, offs[i], ids[k - 1], k - i, b, &got, &next, NULL);
        for (size_t j = i + got; r == 0 && j < k; j++) { /* trimmed since */
            resp_w_array(&w, 2);
            resp_w_id(&w, ids[j]);
            resp_w_null_array(&w);
        }
        i = k;
    }
    free(offs);
    return w.oom ? -ENOMEM : r;
}

bool resp_parse_count(resp_w *w, td_slice a, long long *count)
{
    if (!resp_arg_ll(w, a, count))
        return false;
    if (*count < 0)
        *count = 0;
    return true;
}

/* The entries in [from, to) that a reader of committed data sees (not counting XDEL's). */
static int visible_count(td_part *p, int64_t from, int64_t to, int64_t *n)
{
    broker_run *runs;
    size_t nruns;
    int r = broker_part_visible_runs(p, from, to, 0, &runs, &nruns);
    *n = 0;
    for (size_t i = 0; r == 0 && i < nruns; i++)
        *n += runs[i].to - runs[i].from;
    free(runs);
    return r;
}

/* XRANGE key start end [COUNT n], XREVRANGE key end start [COUNT n] */
static void range_cmd(rconn *rc, resp_w *w, size_t argc, const td_slice *argv, bool rev)
{
    td_sid lo, hi;
    long long count;
    if (!resp_range_args(w, argv[rev ? 3 : 2], argv[rev ? 2 : 3], argv + 4, argc - 4, &lo, &hi,
                         &count))
        return;
    sref s;
    int o = resp_stream_open(rc, w, argv[1], false, &s);
    if (o == 0)
        resp_notify_miss(rc, argv[1]);
    if (o <= 0 || count == 0 || td_sid_cmp(lo, hi) > 0) {
        if (o == 1)
            broker_topic_release(s.ref);
        if (o == 1 && count == 0)
            resp_w_null_array(w); /* as Redis: COUNT 0 (or below) of an existing stream */
        else if (o >= 0)
            resp_w_array(w, 0);
        return;
    }
    int64_t from, to;
    broker_stream_seek(s.p, lo, broker_part_log_start(s.p), INT64_MAX, &from);
    td_buf b;
    td_buf_init(&b);
    size_t n = 0;
    int64_t next;
    int r = 0;
    if (!rev) {
        r = resp_read_entries(rc, &s, from, hi, count < 0 ? 0 : (size_t)count, &b, &n, &next, NULL);
        if (r == 0) {
            resp_w_array(w, n);
            td_buf_append(w->b, b.p, b.len);
        }
    } else {
        /* The log reads forwards: take the last `count` entries of the range and write them in
         * reverse order. */
        td_sid past = hi;
        int64_t end = broker_part_last_stable(s.p); /* committed entries only */
        if (!td_sid_next(&past))
            to = end;
        else
            broker_stream_seek(s.p, past, from, INT64_MAX, &to);
        to = TD_MIN(to, end);
        int64_t start = count > 0 && to - from > count ? to - count : from;
        /* Entries XDEL removed do not count: reach back past them. */
        for (int64_t gone; count > 0 && start > from &&
                           (gone = resp_deleted_in(rc, &s, start, to)) > (to - start) - count;)
            start = TD_MAX(from, to - count - gone);
        /* Nor do offsets without an entry a reader sees (a compacted topic's gaps, transaction
         * markers, aborted transactions' records): reach back, doubling, until the window
         * holds count entries; only the last count are written. */
        for (int64_t have; count > 0 && start > from;) {
            if (visible_count(s.p, start, to, &have) != 0 ||
                have - resp_deleted_in(rc, &s, start, to) >= count)
                break;
            start = TD_MAX(from, to - 2 * (to - start));
        }
        /* Read forwards in one pass, remembering where each entry ends; written backwards. */
        td_buf ends;
        td_buf_init(&ends);
        r = resp_read_entries(rc, &s, start, hi, 0, &b, &n, &next, &ends);
        if (r == 0) {
            const size_t *e = (const size_t *)(const void *)ends.p;
            size_t skip = count > 0 && n > (size_t)count ? n - (size_t)count : 0;
            resp_w_array(w, n - skip);
            for (size_t i = n; i-- > skip;) {
                size_t st = i ? e[i - 1] : 0;
                td_buf_append(w->b, b.p + st, e[i] - st);
            }
        }
        td_buf_free(&ends);
    }
    if (r)
        resp_reply_engine_error(w, r);
    td_buf_free(&b);
    broker_topic_release(s.ref);
}

void resp_cmd_xrange(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    range_cmd(rc, w, argc, argv, false);
}

void resp_cmd_xrevrange(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    range_cmd(rc, w, argc, argv, true);
}

void resp_cmd_xlen(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)argc;
    sref s;
    int o = resp_stream_open(rc, w, argv[1], false, &s);
    if (o == 0)
        resp_w_int(w, 0);
    if (o == 0)
        resp_notify_miss(rc, argv[1]);
    if (o != 1)
        return;
    resp_w_int(w, resp_stream_len(rc, &s));
    broker_topic_release(s.ref);
}

/* ---------------------------------------------------------------------------------------------
 * Trimming
 */
/* Parses the options of XTRIM (from argv[2]) or XADD (from argv[2] up to the ID, whose index
 * *i then has) as Redis's streamParseAddOrTrimArgsOrReply: MAXLEN|MINID [=|~] threshold,
 * LIMIT n, and XADD's NOMKSTREAM, in any order; and XADD's DELAY and DELIVERAT (tidings');
 * false after replying. */
static bool trim_parse(rconn *rc, resp_w *w, size_t argc, const td_slice *argv, bool xadd,
                       size_t *i, trim_spec *t, bool *nomkstream, resp_delay *delay)
{
    size_t k = 2;
    for (; k < argc; k++) {
        size_t more = argc - 1 - k;
        td_slice o = argv[k];
        bool maxlen = resp_arg_is(o, "maxlen"), minid = resp_arg_is(o, "minid");
        if (xadd && o.n == 1 && o.p[0] == '*') {
            break;
        } else if ((maxlen || minid) && more) {
            if (t->kind) {
                resp_w_error(w, "ERR syntax error, MAXLEN and MINID options at the same time "
                                "are not compatible");
                return false;
            }
            t->approx = false;
            td_slice nx = argv[k + 1];
            if (more >= 2 && nx.n == 1 && (nx.p[0] == '~' || nx.p[0] == '=')) {
                t->approx = nx.p[0] == '~';
                k++;
            }
            if (maxlen) {
                if (!resp_arg_ll(w, argv[k + 1], &t->maxlen))
                    return false;
                if (t->maxlen < 0) {
                    resp_w_error(w, "ERR The MAXLEN argument must be >= 0.");
                    return false;
                }
            } else {
                bool big;
                td_slice a = argv[k + 1];
                if ((a.n == 1 && (a.p[0] == '-' || a.p[0] == '+')) ||
                    !resp_id_parse(a, 0, &t->minid, &big)) {
                    resp_w_error(w, resp_invalid_id);
                    return false;
                }
            }
            k++;
            t->kind = maxlen ? 1 : 2;
        } else if (resp_arg_is(o, "limit") && more) {
            if (!resp_arg_ll(w, argv[k + 1], &t->limit))
                return false;
            if (t->limit < 0) {
                resp_w_error(w, "ERR The LIMIT argument must be >= 0.");
                return false;
            }
            t->limit_given = true;
            k++;
        } else if (xadd && resp_arg_is(o, "nomkstream")) {
            *nomkstream = true;
        } else if (xadd && more && (resp_arg_is(o, "delay") || resp_arg_is(o, "deliverat"))) {
            const char *err = resp_delay_parse(o, argv[k + 1], delay);
            if (err) {
                resp_w_error(w, err);
                return false;
            }
            k++;
        } else if (xadd) {
            break; /* the ID */
        } else {
            resp_reply_syntax(w);
            return false;
        }
    }
    if (t->limit && !t->kind) {
        resp_w_error(w, "ERR syntax error, LIMIT cannot be used without specifying a trimming "
                        "strategy");
        return false;
    }
    if (!xadd && !t->kind) {
        resp_w_error(w, "ERR syntax error, XTRIM must be called with a trimming strategy");
        return false;
    }
    if (t->limit_given && !t->approx) {
        resp_w_error(w, "ERR syntax error, LIMIT cannot be used without the special ~ option");
        return false;
    }
    if (!t->limit_given)
        t->limit = t->approx ? resp_xnodes_default_limit(rc->s) : 0;
    *i = k;
    return true;
}

void resp_cmd_xtrim(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    size_t i;
    trim_spec t = {0};
    if (!trim_parse(rc, w, argc, argv, false, &i, &t, NULL, NULL))
        return;
    sref s;
    int o = resp_stream_open(rc, w, argv[1], false, &s);
    if (o == 0)
        resp_w_int(w, 0);
    if (o != 1 || resp_stream_writable(w, &s) != 1)
        return;
    int64_t n;
    int r = resp_xnodes_trim(rc->s, &s, &t, -1, &n);
    if (r)
        resp_reply_engine_error(w, r);
    else
        resp_w_int(w, n);
    if (r == 0 && n > 0)
        resp_notify(rc, RESP_NOTIFY_STREAM, "xtrim", argv[1]);
    broker_topic_release(s.ref);
}

/* ---------------------------------------------------------------------------------------------
 * XADD
 */
/* The timestamp of an event whose ID has this ms: the ms, or the largest Kafka timestamp for an
 * ms above it (storage keeps the ID's ms in an anchor; docs/redis.md#stream-ids). */
static int64_t sid_timestamp(uint64_t ms)
{
    return ms > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)ms;
}

/* An XADD's trim, waiting for its entry to be durable. */
typedef struct xadd_trim xadd_trim;

/* A connection's XADD trims, run in the order of their XADDs. Each waits for its entry to be
 * durable, and those waits can end out of order (one already durable when registered runs at
 * once, before an earlier one posted to the loop), while a trim counts the entries up to its
 * own and must find the stream as the XADDs before it left it. Shared by the connection and
 * its trims (refs), since trims still run after the connection closed; the connection's loop
 * only (a shutdown's failed waits only release). */
struct resp_xadd_trims {
    int refs;
    xadd_trim *head, *tail;
};

struct xadd_trim {
    resp_server *sv;
    sref s; /* holds the topic reference */
    trim_spec t;
    int64_t end; /* the XADD's entry's end: the trim does not count the entries after it */
    net_conn *c; /* a reference: the connection told of the trim (keyspace notifications) */
    td_slice key; /* the XADD's key (copied after the struct) */
    resp_xadd_trims *q;
    xadd_trim *next;
    bool ready; /* its wait ended, with r */
    int r;
};

static void trims_unref(resp_xadd_trims *q)
{
    if (q && --q->refs == 0)
        free(q);
}

void resp_xadd_trims_forget(rconn *rc)
{
    trims_unref(rc->trims);
    rc->trims = NULL;
}

static void xadd_trim_exec(xadd_trim *x)
{
    int64_t n = 0;
    int r = x->r, r0 = r;
    if (r == 0)
        r = resp_xnodes_trim(x->sv, &x->s, &x->t, x->end, &n);
    if (r && r != -ESHUTDOWN)
        TD_WARN("redis", "XADD on %s: trimming failed: %s", broker_topic_name(x->s.ref),
                td_strerror(r));
    /* r0 == 0: on the connection's loop (resp_wait_durable_then), where its rconn is safe to
     * use while it is open; its notifications go with its held reply, after the xadd. */
    rconn *rc = r0 == 0 && !net_conn_closed(x->c) ? net_conn_data(x->c) : NULL;
    if (rc && r == 0 && n > 0)
        resp_notify(rc, RESP_NOTIFY_STREAM, "xtrim", x->key);
    net_conn_unref(x->c);
    broker_topic_release(x->s.ref);
    trims_unref(x->q);
    free(x);
}

/* x's wait ended (r): the trims at the head of its queue whose waits ended run, in order. */
static void xadd_trim_run(void *arg, int r)
{
    xadd_trim *x = arg;
    x->ready = true;
    x->r = r;
    resp_xadd_trims *q = x->q;
    q->refs++; /* the last trim run may free q otherwise */
    while (q->head && q->head->ready) {
        xadd_trim *h = q->head;
        q->head = h->next;
        if (!q->head)
            q->tail = NULL;
        xadd_trim_exec(h);
    }
    trims_unref(q);
}

/* Trims after the XADD whose entry ends at end (r: how its wait inside EXEC went), taking over
 * s->ref: inside EXEC at once (the entry is durable), elsewhere when the entry is. */
static void xadd_trim_later(rconn *rc, sref *s, const trim_spec *t, int64_t end, int r,
                            td_slice key)
{
    xadd_trim *x = malloc(sizeof(*x) + key.n);
    if (!x) {
        TD_WARN("redis", "XADD on %s: trimming failed: out of memory", broker_topic_name(s->ref));
        if (!rc->in_exec)
            resp_wait_durable(rc, s->ref, s->pi, end);
        broker_topic_release(s->ref);
        return;
    }
    if (!rc->trims && (rc->trims = calloc(1, sizeof(*rc->trims))) != NULL)
        rc->trims->refs = 1;
    if (!rc->trims) {
        free(x);
        TD_WARN("redis", "XADD on %s: trimming failed: out of memory", broker_topic_name(s->ref));
        if (!rc->in_exec)
            resp_wait_durable(rc, s->ref, s->pi, end);
        broker_topic_release(s->ref);
        return;
    }
    memcpy(x + 1, key.p, key.n);
    *x = (xadd_trim){rc->s, *s, *t, end, rc->c, td_slice_make(x + 1, key.n), rc->trims, NULL,
                     false, 0};
    net_conn_ref(rc->c);
    rc->trims->refs++;
    if (rc->trims->tail)
        rc->trims->tail->next = x;
    else
        rc->trims->head = x;
    rc->trims->tail = x;
    if (rc->in_exec)
        xadd_trim_run(x, r);
    else
        resp_wait_durable_then(rc, s->ref, s->pi, end, xadd_trim_run, x);
}

static void xadd_one(rconn *rc, resp_w *w, td_slice key, const td_slice *fv, size_t nfv,
                     const td_header *trace, size_t ntrace, const broker_sid_req *reqp,
                     const trim_spec *tp, bool nomkstream, const td_header *delay);

void resp_cmd_xadd(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    bool nomkstream = false;
    trim_spec t = {0};
    size_t i;
    resp_delay delay = {0};
    if (!trim_parse(rc, w, argc, argv, true, &i, &t, &nomkstream, &delay))
        return;
    /* The ID (parsed before the arity is checked, as Redis does), then field value pairs. */
    broker_sid_req req = {BROKER_SID_AUTO, {0, 0}, {0, 0}};
    bool seq_given = true;
    if (i < argc && !(argv[i].n == 1 && argv[i].p[0] == '*')) {
        if (!resp_sid_parse(argv[i].p, argv[i].n, 0, RESP_SID_STRICT | RESP_SID_MS_STAR, &req.want,
                            &seq_given)) {
            resp_w_error(w, resp_invalid_id);
            return;
        }
        req.mode = seq_given ? BROKER_SID_EXPLICIT : BROKER_SID_MS;
    }
    if (i >= argc || (argc - i - 1) < 2 || (argc - i - 1) % 2) {
        resp_w_error(w, "ERR wrong number of arguments for 'xadd' command");
        return;
    }
    if (req.mode == BROKER_SID_EXPLICIT && req.want.ms == 0 && req.want.seq == 0) {
        resp_w_error(w, "ERR The ID specified in XADD must be greater than 0-0");
        return;
    }
    const td_slice *fv = argv + i + 1;
    size_t nfv = argc - i - 1;
    /* The entity fields make a keyed, possibly conditional append (cmd_entity.c). */
    if (resp_fields_entity_named(fv, nfv)) {
        resp_xadd_flush(rc, w);
        if (delay.h.key)
            resp_w_error(w, "ERR " RESP_ENTITY_KEY " takes no DELAY or DELIVERAT");
        else if (req.mode != BROKER_SID_AUTO || t.kind)
            resp_w_error(w, "ERR " RESP_ENTITY_KEY " and " RESP_ENTITY_EXPECT " need the ID * "
                            "and no MAXLEN or MINID");
        else
            resp_xadd_entity(rc, w, argv[1], fv, nfv, nomkstream);
        return;
    }
    /* Fields named traceparent and tracestate are the event's headers (docs/tracing.md). */
    bool traced = false;
    for (size_t k = 0; k < nfv && !traced; k += 2)
        traced = td_trace_header_name(fv[k].p, fv[k].n);
    td_header trace[2];
    size_t ntrace = 0, nrest = nfv;
    td_slice *rest = traced ? malloc(nfv * sizeof(*rest)) : NULL;
    if (traced && !rest) {
        resp_xadd_flush(rc, w);
        resp_w_error(w, "ERR out of memory");
        return;
    }
    if (traced)
        ntrace = resp_fields_trace_split(fv, nfv, rest, &nrest, trace);
    const td_slice *vf = rest ? rest : fv;
    if (req.mode == BROKER_SID_AUTO && !nomkstream && !t.kind && !rc->in_exec && !delay.h.key &&
        resp_xadd_batch_add(rc, w, argv[1], vf, nrest, trace, ntrace)) {
        free(rest);
        return;
    }
    resp_xadd_flush(rc, w);
    xadd_one(rc, w, argv[1], vf, nrest, trace, ntrace, &req, &t, nomkstream,
             delay.h.key ? &delay.h : NULL);
    free(rest);
}

/* An XADD appended alone: fields fv[0..nfv) as the value, trace[0..ntrace) and delay (may be
 * NULL) as headers. */
static void xadd_one(rconn *rc, resp_w *w, td_slice key, const td_slice *fv, size_t nfv,
                     const td_header *trace, size_t ntrace, const broker_sid_req *reqp,
                     const trim_spec *tp, bool nomkstream, const td_header *delay)
{
    broker_sid_req req = *reqp;
    trim_spec t = *tp;
    sref s;
    int o = resp_stream_open(rc, w, key, !nomkstream, &s);
    if (o == 0)
        resp_w_null(w);
    if (o != 1 || resp_stream_writable(w, &s) != 1)
        return;
    char err[1000];
    if (!resp_xadd_schema_ok(rc, s.ref, fv, nfv, err, sizeof(err))) {
        resp_w_error(w, err);
        broker_topic_release(s.ref);
        return;
    }
    /* The event: fields as the value, its timestamp the ID's ms (or now). */
    bool json = resp_fields_json_ok(fv, nfv);
    td_buf val;
    td_buf_init(&val);
    int r = resp_fields_encode(&val, fv, nfv, json);
    td_header h[4] = {
        {"content-type", 12, RESP_FIELDS_CONTENT_TYPE, sizeof(RESP_FIELDS_CONTENT_TYPE) - 1}};
    size_t nh = json ? 0 : 1;
    for (size_t k = 0; k < ntrace; k++)
        h[nh++] = trace[k];
    if (delay)
        h[nh++] = *delay;
    int64_t now = td_wall_ms();
    td_event ev = {.value = val.p,
                   .value_len = val.len,
                   .headers = nh ? h : NULL,
                   .header_count = nh,
                   .timestamp_ms = req.mode == BROKER_SID_AUTO ? now : sid_timestamp(req.want.ms)};
    broker_append_result ar;
    const td_event *evs = &ev;
    void *traced = NULL; /* trace.inject's copy */
    if (r == 0)
        r = broker_trace_inject(rc->s->e, &ev, 1, &evs, &traced);
    if (r == 0)
        r = broker_stream_append(s.p, evs, 1, now, &req, &ar);
    if (r == 0)
        broker_trace_events(s.ref, s.pi, evs, 1, &ar, now);
    free(traced);
    td_buf_free(&val);
    if (r) {
        resp_reply_append_error(w, r, req.mode);
    } else {
        /* Inside EXEC the commands after it must see the entry (the transaction holds every
         * other client off anyway): wait here. Elsewhere the reply waits, not the loop. */
        if (rc->in_exec && (r = broker_part_wait_durable(s.p, ar.end_offset)) != 0)
            resp_reply_engine_error(w, r);
        else
            resp_w_id(w, req.got);
        if (r == 0) /* not after EXEC's durability wait failed */
            resp_notify(rc, RESP_NOTIFY_STREAM, "xadd", key);
        if (t.kind) {
            /* The trim counts the new entry, so it runs once the entry is readable (durable),
             * before the connection's next command (xadd_trim releases s.ref). */
            xadd_trim_later(rc, &s, &t, ar.end_offset, r, key);
            return;
        }
        if (!rc->in_exec)
            resp_wait_durable(rc, s.ref, s.pi, ar.end_offset);
    }
    broker_topic_release(s.ref);
}

/* XSETID key last-id [ENTRIESADDED n] [MAXDELETEDID id], checked in Redis 7.0's order. The last
 * ID and the entries added are the partition's (stream-anchors and stream-added, written
 * together), the largest deleted ID is XDEL's (a catalog row); the reply waits until both are
 * saved and the entries before it are durable. */
void resp_cmd_xsetid(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    td_sid id, md = {0, 0};
    if (!resp_sid_parse(argv[2].p, argv[2].n, 0, RESP_SID_STRICT, &id, NULL)) {
        resp_w_error(w, resp_invalid_id);
        return;
    }
    long long added = -1;
    for (size_t i = 3; i < argc; i++) {
        if (resp_arg_is(argv[i], "entriesadded") && i + 1 < argc) {
            if (!resp_arg_ll(w, argv[++i], &added))
                return;
            if (added < 0) {
                resp_w_error(w, "ERR entries_added must be positive");
                return;
            }
        } else if (resp_arg_is(argv[i], "maxdeletedid") && i + 1 < argc) {
            if (!resp_sid_parse(argv[i + 1].p, argv[i + 1].n, 0, RESP_SID_STRICT, &md, NULL)) {
                resp_w_error(w, resp_invalid_id);
                return;
            }
            i++;
            if (td_sid_cmp(id, md) < 0) {
                resp_w_error(w, "ERR The ID specified in XSETID is smaller than the provided "
                                "max_deleted_entry_id");
                return;
            }
        } else {
            resp_reply_syntax(w);
            return;
        }
    }
    sref s;
    int o = resp_stream_open(rc, w, argv[1], false, &s);
    if (o == 0)
        resp_w_error(w, "ERR no such key");
    if (o != 1 || resp_stream_writable(w, &s) != 1)
        return;
    /* Redis compares with the top item, then the length, when the stream has entries; the
     * broker compares with the last ID again under the partition's lock. */
    int64_t len = resp_stream_len(rc, &s), at = 0;
    td_sid top;
    uint64_t seq = 0;
    int r = broker_stream_top(s.p, &top);
    if (r == 0 && len > 0 && td_sid_cmp(id, top) < 0)
        r = TD_ESEQUENCE;
    if (r == 0 && len > 0 && added >= 0 && added < len) {
        resp_w_error(w, "ERR The entries_added specified in XSETID is smaller than the target "
                        "stream length");
    } else if (r == 0 && (r = broker_stream_xsetid(s.p, id, added, &at)) == 0) {
        /* Redis leaves the largest deleted ID for MAXDELETEDID 0-0 (or none). */
        xstream xs = resp_xstream(&s);
        if (md.ms || md.seq)
            r = xstream_set_max_deleted(rc->s->e, &xs, md, &seq);
        if (r == 0) {
            resp_w_simple(w, "OK");
            resp_notify(rc, RESP_NOTIFY_STREAM, "xsetid", argv[1]);
            /* A crash must not take the entries before the new ID (and the anchor, which open
             * drops past the log end) once OK is sent: under fsync=always, wait for them. */
            resp_wait_durable(rc, s.ref, s.pi, at);
            resp_wait_saved(rc, seq);
        }
    }
    if (r == TD_ESEQUENCE) {
        td_error_clear();
        resp_w_error(w, "ERR The ID specified in XSETID is smaller than the target stream top "
                        "item");
    } else if (r) {
        resp_reply_engine_error(w, r);
    }
    broker_topic_release(s.ref);
}

/* ---------------------------------------------------------------------------------------------
 * XREAD
 */
typedef struct bkey {
    td_slice key; /* owned copy */
    sref s;       /* s.ref NULL: the stream does not exist (yet, or any more) */
    int64_t from;
    bool history; /* XREADGROUP with an ID: the consumer's pending entries after `after` */
    /* XREAD: entries after this ID are wanted (`$`: the last ID when the command ran), for a
     * stream created (again) while the read waits, as Redis runs the command again then. */
    td_sid after;
    bool none; /* XREAD: an ID above every possible one was given: nothing will come */
} bkey;

struct resp_block {
    bkey *keys;
    size_t nkeys;
    size_t count; /* 0: no limit */
    bool group, noack;     /* XREADGROUP */
    td_slice gname, cname; /* owned copies */
};

void resp_block_free(resp_block *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->nkeys; i++) {
        free((void *)b->keys[i].key.p);
        if (b->keys[i].s.ref)
            broker_topic_release(b->keys[i].s.ref);
    }
    free((void *)b->gname.p);
    free((void *)b->cname.p);
    free(b->keys);
    free(b);
}

/* Also the answer of a blocked XREADGROUP whose stream is deleted (by any protocol) or whose
 * group is destroyed, at once: Redis 7.2 runs the blocked command again then, which answers
 * this. (Redis 7.0 answered "UNBLOCKED the stream key no longer exists" and "NOGROUP the
 * consumer group this client was blocked on no longer exists".) */
static void reply_nogroup(resp_w *w, const resp_block *b, td_slice key)
{
    resp_w_errorf(w,
                  "NOGROUP No such key '%.*s' or consumer group '%.*s' in XREADGROUP with GROUP "
                  "option",
                  (int)TD_MIN(key.n, 300), (const char *)key.p, (int)TD_MIN(b->gname.n, 300),
                  (const char *)b->gname.p);
}

/* XREADGROUP: every key's stream and group still exist (they may go while the read waits);
 * false after answering NOGROUP for the first that does not. Checked before anything is
 * delivered, so that no entry becomes pending in a reply that is an error. */
static bool xreadgroup_keys_ok(rconn *rc, resp_w *w, resp_block *b)
{
    for (size_t i = 0; i < b->nkeys; i++) {
        bkey *k = &b->keys[i];
        xgroup_info gi;
        if (!k->s.ref || broker_topic_deleted(k->s.ref) ||
            xgroup_consumers(rc->s->e, &(xstream){broker_topic_id(k->s.ref), k->s.pi, k->s.p},
                             b->gname, &gi, NULL, NULL) != 0) {
            reply_nogroup(w, b, k->key);
            return false;
        }
    }
    return true;
}

/* XREAD: a stream deleted while the read waits is let go (its reference would keep the deleted
 * partitions' files and memory), and one created under its key is opened: Redis serves a
 * blocked XREAD from the key's next stream. */
static void xread_reopen(rconn *rc, bkey *k, td_buf *scratch)
{
    if (k->s.ref && !broker_topic_deleted(k->s.ref))
        return;
    if (k->s.ref)
        broker_topic_release(k->s.ref);
    resp_w dummy = {scratch, rc->proto, false};
    size_t mark = scratch->len;
    int o = resp_stream_open(rc, &dummy, k->key, false, &k->s);
    scratch->len = mark; /* a key that now names no partition is as missing: no error */
    if (o != 1)
        return;
    if (k->none)
        k->from = INT64_MAX;
    else
        broker_stream_after(k->s.p, k->after, &k->from);
}

/* One key of an XREADGROUP: its entries into ent (*n of them); false after writing an error. */
static int xreadgroup_key(rconn *rc, resp_w *w, resp_block *b, bkey *k, td_buf *ent, size_t *n)
{
    xstream xs = {broker_topic_id(k->s.ref), k->s.pi, k->s.p};
    td_engine *e = rc->s->e;
    int64_t now = td_wall_ms();
    uint64_t seq = 0;
    int r;
    *n = 0;
    bool known = resp_notify_consumer_known(rc, &xs, b->gname, b->cname);
    if (k->history) {
        td_sid *ids;
        r = xgroup_history(e, &xs, b->gname, b->cname, k->after, b->count, now, &ids, n, &seq);
        if (r == 0)
            r = resp_read_ids(rc, &k->s, ids, *n, ent);
        free(ids);
    } else {
        int64_t from, to, next;
        td_sid hi, *redo; /* hi: the last delivered (XDEL's removed entries are not counted) */
        size_t nredo, nnew = 0;
        rc->deliver_group = b->gname; /* the entries read below are deliveries: spans */
        r = xgroup_deliver(e, &xs, b->gname, b->cname, b->count, b->noack, now, &redo, &nredo,
                           &from, &to, &seq);
        /* A queue policy's redeliveries first, then new entries. */
        if (r == 0 && nredo)
            r = resp_read_ids(rc, &k->s, redo, nredo, ent);
        free(redo);
        if (r == 0 && to > from && (r = broker_stream_id(k->s.p, to - 1, &hi, NULL)) == 0)
            r = resp_read_entries(rc, &k->s, from, hi, (size_t)(to - from), ent, &nnew, &next,
                                  NULL);
        *n = nredo + nnew;
    }
    rc->deliver_group = (td_slice){0};
    if (r == TD_ENOTFOUND) {
        reply_nogroup(w, b, k->key);
        return -1;
    }
    /* Entries handed out are answered once their delivery is durable (the reply is held, in
     * EXEC as elsewhere), so that a restart never shows a read entry as never delivered. A
     * read that found nothing does not wait: only its consumer's seen time changed. */
    if (r == 0 && *n && seq)
        resp_wait_saved(rc, seq);
    resp_notify_consumer_made(rc, &xs, k->key, b->gname, b->cname, known);
    if (r) {
        resp_reply_engine_error(w, r);
        return -1;
    }
    return 0;
}

/* Writes the XREAD reply for the keys that have entries; 0 if none has (nothing written). */
static int xread_try(rconn *rc, resp_w *w, resp_block *b)
{
    td_buf tmp;
    td_buf_init(&tmp);
    size_t with = 0;
    int r = 0;
    const td_sid all = {UINT64_MAX, UINT64_MAX};
    if (b->group && !xreadgroup_keys_ok(rc, w, b))
        return 1;
    for (size_t i = 0; i < b->nkeys && r == 0; i++) {
        bkey *k = &b->keys[i];
        if (!b->group)
            xread_reopen(rc, k, &tmp);
        if (!k->s.ref)
            continue;
        if (!b->group && broker_part_last_stable(k->s.p) <= k->from)
            continue; /* nothing committed since */
        td_buf ent;
        td_buf_init(&ent);
        size_t n;
        int64_t next;
        if (b->group) {
            if (xreadgroup_key(rc, w, b, k, &ent, &n) != 0) {
                td_buf_free(&ent);
                td_buf_free(&tmp);
                return 1;
            }
        } else {
            r = resp_read_entries(rc, &k->s, k->from, all, b->count, &ent, &n, &next, NULL);
        }
        if (r == 0 && (n > 0 || k->history)) {
            resp_w tw = {&tmp, rc->proto, false};
            if (rc->proto == 2)
                resp_w_array(&tw, 2);
            resp_w_bulk(&tw, k->key.p, k->key.n);
            resp_w_array(&tw, n);
            td_buf_append(&tmp, ent.p, ent.len);
            with++;
            if (!b->group && with > 1 && tmp.len > rc->s->cfg.max_reply)
                r = resp_reply_too_big(rc); /* several keys, each under the limit */
        }
        td_buf_free(&ent);
    }
    if (r)
        resp_reply_engine_error(w, r);
    else if (with) {
        if (rc->proto == 2)
            resp_w_array(w, with);
        else
            resp_w_map(w, with);
        td_buf_append(w->b, tmp.p, tmp.len);
    }
    td_buf_free(&tmp);
    return r ? 1 : with > 0;
}

bool resp_block_retry(rconn *rc, resp_w *w, resp_block *b)
{
    return xread_try(rc, w, b) != 0;
}

static bool copy_arg(td_slice a, td_slice *out)
{
    void *copy = malloc(a.n + 1);
    if (!copy)
        return false;
    memcpy(copy, a.p, a.n);
    *out = td_slice_make(copy, a.n);
    return true;
}

/* XREAD [COUNT n] [BLOCK ms] STREAMS key ... id ..., and XREADGROUP GROUP g c [COUNT n]
 * [BLOCK ms] [NOACK] STREAMS key ... id ... */
static void xread_cmd(rconn *rc, resp_w *w, size_t argc, const td_slice *argv, bool group)
{
    long long count = 0, block = -1;
    td_slice gname = {NULL, 0}, cname = {NULL, 0};
    bool noack = false;
    size_t i = 1;
    for (; i < argc; i++) {
        if (resp_arg_is(argv[i], "count") && i + 1 < argc) {
            if (!resp_parse_count(w, argv[++i], &count))
                return;
        } else if (resp_arg_is(argv[i], "block") && i + 1 < argc) {
            if (!resp_arg_ll(w, argv[++i], &block))
                return;
            if (block < 0) {
                resp_w_error(w, "ERR timeout is negative");
                return;
            }
        } else if (resp_arg_is(argv[i], "streams")) {
            break;
        } else if (resp_arg_is(argv[i], "group") && i + 2 < argc) {
            if (!group) {
                resp_w_error(w, "ERR The GROUP option is only supported by XREADGROUP. You "
                                "called XREAD instead.");
                return;
            }
            gname = argv[++i];
            cname = argv[++i];
        } else if (resp_arg_is(argv[i], "noack")) {
            if (!group) {
                resp_w_error(w, "ERR The NOACK option is only supported by XREADGROUP. You "
                                "called XREAD instead.");
                return;
            }
            noack = true;
        } else {
            resp_reply_syntax(w);
            return;
        }
    }
    size_t rest = i < argc ? argc - i - 1 : 0;
    if (i >= argc) {
        resp_reply_syntax(w);
        return;
    }
    if (rest == 0 || rest % 2) {
        resp_w_errorf(w,
                      "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' "
                      "must be specified.");
        return;
    }
    if (group && !gname.p) {
        resp_w_error(w, "ERR Missing GROUP option for XREADGROUP");
        return;
    }
    size_t nk = rest / 2;
    const td_slice *keys = argv + i + 1, *ids = keys + nk;
    resp_block *b = calloc(1, sizeof(*b));
    if (b)
        b->keys = calloc(nk, sizeof(*b->keys));
    if (!b || !b->keys || (group && (!copy_arg(gname, &b->gname) || !copy_arg(cname, &b->cname)))) {
        resp_block_free(b);
        resp_w_error(w, "ERR out of memory");
        return;
    }
    b->count = (size_t)count;
    b->group = group;
    b->noack = noack;
    bool ok = true, history = false;
    for (size_t k = 0; k < nk && ok; k++) {
        bkey *bk = &b->keys[k];
        if (!copy_arg(keys[k], &bk->key)) {
            resp_w_error(w, "ERR out of memory");
            ok = false;
            break;
        }
        b->nkeys = k + 1;
        int o = resp_stream_open(rc, w, keys[k], false, &bk->s);
        if (o < 0) {
            ok = false;
            break;
        }
        if (o == 0)
            bk->s.ref = NULL;
        if (o == 0)
            resp_notify_miss(rc, keys[k]);
        if (group) {
            xgroup_info gi;
            xstream xs = {o == 1 ? broker_topic_id(bk->s.ref) : 0, bk->s.pi, bk->s.p};
            if (o == 0 || xgroup_consumers(rc->s->e, &xs, b->gname, &gi, NULL, NULL) != 0) {
                reply_nogroup(w, b, keys[k]);
                ok = false;
                break;
            }
        }
        td_sid id = {0, 0};
        bool dollar = ids[k].n == 1 && ids[k].p[0] == '$', big = false;
        bool gt = ids[k].n == 1 && ids[k].p[0] == '>';
        if (dollar && group) {
            resp_w_error(w, "ERR The $ ID is meaningless in the context of XREADGROUP: you want "
                            "to read the history of this consumer by specifying a proper ID, or "
                            "use the > ID to get new messages. The $ ID would just return an "
                            "empty result set.");
            ok = false;
        } else if (gt && !group) {
            resp_w_error(w, "ERR The > ID can be specified only when calling XREADGROUP using the "
                            "GROUP <group> <consumer> option.");
            ok = false;
        } else if (!dollar && !gt && !resp_id_parse(ids[k], 0, &id, &big)) {
            resp_w_error(w, resp_invalid_id);
            ok = false;
        }
        if (!ok)
            continue;
        if (!group) {
            bk->after = id; /* `$` on a missing key: 0-0, as in Redis */
            if (dollar && o == 1)
                broker_stream_last(bk->s.p, &bk->after);
            bk->none = big;
        }
        if (o == 0)
            continue;
        if (group) {
            bk->history = !gt;
            bk->after = id;
            history |= !gt;
        } else if (dollar) {
            bk->from = broker_part_last_stable(bk->s.p); /* an open transaction's come later */
        } else if (big || !td_sid_next(&id)) {
            bk->from = INT64_MAX;
            bk->none = true;
        } else {
            broker_stream_seek(bk->s.p, id, broker_part_log_start(bk->s.p), INT64_MAX, &bk->from);
        }
    }
    if (!ok) {
        resp_block_free(b);
        return;
    }
    for (size_t k = 0; k < nk; k++) /* Redis looks the keys up again to serve them */
        if (!b->keys[k].s.ref)
            resp_notify_miss(rc, b->keys[k].key);
    int got = xread_try(rc, w, b);
    if (got || block < 0 || history || rc->in_exec || !rc->s->blocked) {
        if (!got)
            resp_w_null_array(w);
        resp_block_free(b);
        return;
    }
    resp_block_start(rc, b, block);
}

void resp_cmd_xread(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    xread_cmd(rc, w, argc, argv, false);
}

void resp_cmd_xreadgroup(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    xread_cmd(rc, w, argc, argv, true);
}
