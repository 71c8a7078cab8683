/*
 * xgroup_read.c: the Redis consumer group commands that deliver and settle entries (XREADGROUP,
 * XACK, XCLAIM, XAUTOCLAIM) and those that read the state (XINFO, XPENDING), on the structures
 * of xgroup_pel.c. Under a queue policy, redeliveries follow the delivery core's rules
 * (delivery.h), as queue groups' do.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/delivery.h"
#include "broker/xgroup_int.h"

/* ---------------------------------------------------------------------------------------------
 * Reading, acknowledging, claiming
 */
/* The consumer of a name (created if new), seen now. Its record is written when it is new or
 * when record says so: a history read that delivers nothing only changes its seen time in memory
 * (kept in the log with the consumer's next change), since its record would wake every blocked
 * reader, whose retries would write records again, and so on. */
static xcons *consumer_seen(td_xgroups *x, xstr *st, xgrp *g, td_slice name, int64_t now_ms,
                            bool record)
{
    bool known = xg_cons_find(g, name) != NULL;
    xcons *c = xg_cons_add(g, name, now_ms);
    if (!c)
        return NULL;
    c->seen_ms = now_ms;
    if (record || !known)
        xrec_consumer(x, st, g, c);
    return c;
}

/* Appends id to a malloc'd array. */
static int push_id(td_sid **v, size_t *n, size_t *cap, td_sid id)
{
    if (td_grow(v, cap, *n, sizeof(**v), 16) != 0)
        return -ENOMEM;
    (*v)[(*n)++] = id;
    return 0;
}

/* Under a policy: hands the pending entries due for redelivery to c (lowest IDs first), at most
 * count (0: no limit), into *ids; how many. */
static size_t redeliver(td_xgroups *x, xstr *st, xgrp *g, xcons *c, size_t count, int64_t now_ms,
                        td_sid **ids, int *rc)
{
    size_t n = 0, cap = 0;
    int64_t next = INT64_MAX;
    bool more = false;
    for (size_t i = 0; i < g->npel; i++) {
        xpe *pe = &g->pel[i];
        if (!pe->c)
            continue;
        int64_t d = xg_due_at(g, pe);
        if (d > now_ms || xg_is_dead(g, pe)) {
            next = TD_MIN(next, d); /* the dead: the sweep's */
            continue;
        }
        if (count && n >= count) {
            more = true;
            break;
        }
        if ((*rc = push_id(ids, &n, &cap, pe->id)) != 0) {
            more = true;
            break;
        }
        xg_pel_assign(pe, c);
        delivery_pending_deliver(&pe->d, now_ms);
        g->redelivered++;
        next = TD_MIN(next, xg_due_at(g, pe));
        xrec_pending(x, st, g, pe);
    }
    g->ready = more;
    if (!more) {
        g->next_due = next;
        if (next != INT64_MAX)
            xg_wake(x, next); /* the sweep may have to run sooner */
    }
    return n;
}

int xgroup_deliver(td_engine *e, const xstream *s, td_slice group, td_slice consumer, size_t count,
                   bool noack, int64_t now_ms, td_sid **redelivered, size_t *nredelivered,
                   int64_t *from, int64_t *to, uint64_t *seq)
{
    td_xgroups *x = e->xgroups;
    pthread_mutex_lock(&x->mu);
    int rc = 0;
    xstr *st;
    xgrp *g = xg_group_find(x, s, group, &st);
    xcons *c = NULL;
    *from = *to = 0;
    *redelivered = NULL;
    *nredelivered = 0;
    if (!g) {
        rc = TD_ENOTFOUND;
        goto out;
    }
    /* As Redis 7.0, a read of `>` creates the consumer (or refreshes its seen time) only when
     * it is given entries: one that finds none leaves the group as it was. */
    if (g->pol && !noack && (g->ready || now_ms >= g->next_due)) {
        if (!(c = consumer_seen(x, st, g, consumer, now_ms, false))) {
            rc = -ENOMEM;
            goto out;
        }
        *nredelivered = redeliver(x, st, g, c, count, now_ms, redelivered, &rc);
        if (rc || (count && *nredelivered >= count))
            goto out;
        if (count)
            count -= *nredelivered;
    }
    int64_t hw = part_high_watermark(s->p), lso = part_last_stable(s->p), start;
    if ((rc = part_stream_after(s->p, g->last, &start)) != 0)
        goto out;
    int64_t end = start;
    size_t given = 0, d = st->ndel ? xg_del_lower(st, start) : 0;
    td_sid id = {0, 0};
    int64_t run_end = -1, run_off = 0;
    /* Committed entries only (broker/iter.c "Transactions"): offsets below the last stable
     * offset that hold a record, not a transaction marker nor an aborted transaction's, nor a
     * gap of a compacted stream. */
    broker_run *runs = NULL;
    size_t nruns = 0, ri = 0, nrecs = 0, max = st->ndel ? 0 : count;
    xview view; /* the counters of Redis's entries_read rules, computed if they need them */
    xg_view_start(&view, s->p, hw, false);
    xg_view_stream(&view, st);
    if (start < lso && (rc = broker_part_visible_runs(s->p, start, lso, max, &runs, &nruns)) != 0) {
        if (rc != TD_ERANGE)
            goto out;
        rc = 0; /* trimmed meanwhile: the next read starts at the log start */
        lso = start;
    }
    for (size_t i = 0; i < nruns; i++)
        nrecs += (size_t)(runs[i].to - runs[i].from);
    for (int64_t off = start; count == 0 || given < count; off++) {
        while (ri < nruns && off >= runs[ri].to)
            ri++;
        if (ri == nruns) {
            end = nrecs == max && max ? end : TD_MAX(end, lso); /* past the gaps up to the LSO */
            break;
        }
        off = TD_MAX(off, runs[ri].from);
        if (off > run_end) {
            if ((rc = part_stream_id(s->p, off, &id, &run_end)) != 0)
                break;
            run_off = off;
        }
        end = off + 1;
        while (d < st->ndel && st->del[d] < off)
            d++;
        if (d < st->ndel && st->del[d] == off)
            continue; /* removed by XDEL */
        td_sid eid = {id.ms, id.seq + (uint64_t)(off - run_off)};
        if (!c && !(c = consumer_seen(x, st, g, consumer, now_ms, false))) {
            rc = -ENOMEM;
            break;
        }
        g->entries_read = xg_read_advance(&view, g->entries_read, eid);
        g->last = eid;
        given++;
        if (noack)
            continue;
        xpe *pe = xg_pel_add(g, eid, c, now_ms);
        if (!pe) {
            rc = -ENOMEM;
            break;
        }
        /* A new delivery counts 1, as Redis's: also for an entry still pending that XGROUP SETID
         * made new again. */
        delivery_pending_init(&pe->d, now_ms);
        delivery_pending_deliver(&pe->d, now_ms);
        xg_note_due(x, g, pe);
        xrec_pending(x, st, g, pe);
    }
    free(runs);
    if (end > start)
        xrec_group(x, st, g);
    if (rc == TD_ERANGE) /* trimmed meanwhile: what came before is delivered */
        rc = 0;
    *from = start;
    *to = end;
out:
    if (c && (*nredelivered || *to > *from))
        xrec_consumer(x, st, g, c); /* its seen time goes with what it was given */
    rc = xg_change_done(x, rc, seq);
    pthread_mutex_unlock(&x->mu);
    return rc;
}

int xgroup_history(td_engine *e, const xstream *s, td_slice group, td_slice consumer, td_sid after,
                   size_t count, int64_t now_ms, td_sid **ids, size_t *n, uint64_t *seq)
{
    td_xgroups *x = e->xgroups;
    pthread_mutex_lock(&x->mu);
    int rc = 0;
    xstr *st;
    xgrp *g = xg_group_find(x, s, group, &st);
    xcons *c = NULL;
    *ids = NULL;
    *n = 0;
    if (!g) {
        rc = TD_ENOTFOUND;
        goto out;
    }
    if (!(c = consumer_seen(x, st, g, consumer, now_ms, false))) {
        rc = -ENOMEM;
        goto out;
    }
    size_t cap = 0;
    size_t i = xg_pel_lower(g, after);
    if (i < g->npel && td_sid_cmp(g->pel[i].id, after) == 0)
        i++;
    for (; i < g->npel && (count == 0 || *n < count) && *n < c->pending; i++) {
        xpe *pe = &g->pel[i];
        if (pe->c != c)
            continue;
        if ((rc = push_id(ids, n, &cap, pe->id)) != 0)
            break;
        delivery_pending_deliver(&pe->d, now_ms);
        xg_note_due(x, g, pe);
        xrec_pending(x, st, g, pe);
    }
out:
    if (c && *n)
        xrec_consumer(x, st, g, c); /* its seen time goes with what it was given */
    rc = xg_change_done(x, rc, seq);
    pthread_mutex_unlock(&x->mu);
    return rc;
}

int xgroup_ack(td_engine *e, const xstream *s, td_slice group, const td_sid *ids, size_t n,
               size_t *acked, uint64_t *seq)
{
    td_xgroups *x = e->xgroups;
    pthread_mutex_lock(&x->mu);
    xstr *st;
    xgrp *g = xg_group_find(x, s, group, &st);
    *acked = 0;
    for (size_t i = 0; g && i < n; i++) {
        xpe *pe = xg_pel_get(g, ids[i]);
        if (!pe)
            continue;
        xrec_pending_gone(x, st, g, pe->id);
        xg_pel_remove(g, pe);
        (*acked)++;
    }
    if (g)
        xg_pel_compact(g);
    int rc = xg_change_done(x, g ? 0 : TD_ENOTFOUND, seq);
    pthread_mutex_unlock(&x->mu);
    return rc;
}

/* Gives a pending entry to c as XCLAIM and XAUTOCLAIM do. */
static void claim_one(td_xgroups *x, xstr *st, xgrp *g, xcons *c, xpe *pe, const xclaim_opts *o,
                      int64_t delivery_ms)
{
    xg_pel_assign(pe, c);
    delivery_pending_claim(&pe->d, delivery_ms, o->retry_count, !o->justid);
    xg_note_due(x, g, pe);
    xrec_pending(x, st, g, pe);
}

int xgroup_claim(td_engine *e, const xstream *s, td_slice group, td_slice consumer,
                 const td_sid *ids, size_t n, const xclaim_opts *o, int64_t now_ms,
                 td_sid **claimed, size_t *nclaimed, uint64_t *seq)
{
    td_xgroups *x = e->xgroups;
    pthread_mutex_lock(&x->mu);
    int rc = 0;
    xstr *st;
    xgrp *g = xg_group_find(x, s, group, &st);
    xcons *c = NULL;
    size_t cap = 0;
    *claimed = NULL;
    *nclaimed = 0;
    if (!g) {
        rc = TD_ENOTFOUND;
        goto out;
    }
    if (o->has_last_id && td_sid_cmp(o->last_id, g->last) > 0) {
        g->last = o->last_id;
        xrec_group(x, st, g);
    }
    int64_t delivery_ms = o->delivery_ms;
    if (delivery_ms < 0 || delivery_ms > now_ms)
        delivery_ms = now_ms;
    for (size_t i = 0; i < n && rc == 0; i++) {
        xpe *pe = xg_pel_get(g, ids[i]);
        if (pe && !xg_entry_live(st, s->p, ids[i])) {
            /* Gone from the stream (trimmed): it leaves the PEL. */
            xrec_pending_gone(x, st, g, pe->id);
            xg_pel_remove(g, pe);
            continue;
        }
        if (pe && o->min_idle_ms > 0 && now_ms - pe->d.delivered < o->min_idle_ms)
            continue;
        if (!pe && !(o->force && xg_entry_live(st, s->p, ids[i])))
            continue;
        if (!c && !(c = consumer_seen(x, st, g, consumer, now_ms, true))) {
            rc = -ENOMEM;
            break;
        }
        if (!pe) {
            if (!(pe = xg_pel_add(g, ids[i], c, now_ms))) {
                rc = -ENOMEM;
                break;
            }
            /* As Redis's FORCE: a new entry, delivered once, then claimed (+1). */
            delivery_pending_deliver(&pe->d, now_ms);
        }
        claim_one(x, st, g, c, pe, o, delivery_ms);
        rc = push_id(claimed, nclaimed, &cap, ids[i]);
    }
    xg_pel_compact(g);
out:
    rc = xg_change_done(x, rc, seq);
    pthread_mutex_unlock(&x->mu);
    return rc;
}

int xgroup_autoclaim(td_engine *e, const xstream *s, td_slice group, td_slice consumer,
                     td_sid start, size_t count, const xclaim_opts *o, int64_t now_ms,
                     td_sid **claimed, size_t *nclaimed, td_sid **deleted, size_t *ndeleted,
                     td_sid *next, uint64_t *seq)
{
    td_xgroups *x = e->xgroups;
    pthread_mutex_lock(&x->mu);
    int rc = 0;
    xstr *st;
    xgrp *g = xg_group_find(x, s, group, &st);
    xcons *c = NULL;
    size_t cap = 0, dcap = 0;
    *claimed = *deleted = NULL;
    *nclaimed = *ndeleted = 0;
    *next = (td_sid){0, 0};
    if (!g) {
        rc = TD_ENOTFOUND;
        goto out;
    }
    size_t attempts = count * 10, i = xg_pel_lower(g, start);
    for (; i < g->npel && attempts && count && rc == 0; i++) {
        xpe *pe = &g->pel[i];
        if (!pe->c)
            continue;
        attempts--;
        if (!xg_entry_live(st, s->p, pe->id)) {
            xrec_pending_gone(x, st, g, pe->id);
            rc = push_id(deleted, ndeleted, &dcap, pe->id);
            xg_pel_remove(g, pe);
            count--;
            continue;
        }
        if (o->min_idle_ms > 0 && now_ms - pe->d.delivered < o->min_idle_ms)
            continue;
        if (!c && !(c = consumer_seen(x, st, g, consumer, now_ms, true))) {
            rc = -ENOMEM;
            break;
        }
        claim_one(x, st, g, c, pe, o, now_ms);
        rc = push_id(claimed, nclaimed, &cap, pe->id);
        count--;
    }
    while (i < g->npel && !g->pel[i].c)
        i++;
    if (i < g->npel)
        *next = g->pel[i].id;
    xg_pel_compact(g);
out:
    rc = xg_change_done(x, rc, seq);
    pthread_mutex_unlock(&x->mu);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Reading the state
 */
static void group_info(const xgrp *g, xgroup_info *out)
{
    *out = (xgroup_info){.name = td_slice_make(g->nm.name, g->nm.len),
                         .last_id = g->last,
                         .consumers = g->ncons,
                         .pending = g->live,
                         .entries_read = g->entries_read};
    for (size_t i = 0; i < g->npel; i++)
        if (g->pel[i].c) {
            out->pel_min = g->pel[i].id;
            break;
        }
    for (size_t i = g->npel; i > 0; i--)
        if (g->pel[i - 1].c) {
            out->pel_max = g->pel[i - 1].id;
            break;
        }
}

int xgroup_list(td_engine *e, const xstream *s, void (*fn)(void *arg, const xgroup_info *g),
                void *arg)
{
    td_xgroups *x = e->xgroups;
    xview view; /* one for every group: the same counters, counted before the lock */
    if (s->p)
        xg_view_start(&view, s->p, -1, true);
    pthread_mutex_lock(&x->mu);
    xstr *st = xg_stream_find(x, s->topic_id, s->partition);
    if (s->p)
        xg_view_stream(&view, st);
    for (size_t i = 0; st && i < st->n; i++) {
        xgroup_info gi;
        group_info(st->g[i], &gi);
        if (s->p)
            gi.lag_known = xg_lag(&view, gi.last_id, gi.entries_read, &gi.lag);
        fn(arg, &gi);
    }
    pthread_mutex_unlock(&x->mu);
    return 0;
}

int xgroup_consumers(td_engine *e, const xstream *s, td_slice group, xgroup_info *gi,
                     void (*fn)(void *arg, const xconsumer_info *c), void *arg)
{
    td_xgroups *x = e->xgroups;
    pthread_mutex_lock(&x->mu);
    xgrp *g = xg_group_find(x, s, group, NULL);
    if (g) {
        group_info(g, gi);
        for (size_t i = 0; fn && i < g->ncons; i++) {
            xconsumer_info ci = {td_slice_make(g->cons[i]->nm.name, g->cons[i]->nm.len),
                                 g->cons[i]->seen_ms, g->cons[i]->pending};
            fn(arg, &ci);
        }
    }
    pthread_mutex_unlock(&x->mu);
    return g ? 0 : TD_ENOTFOUND;
}

int xgroup_pending(td_engine *e, const xstream *s, td_slice group, td_sid lo, td_sid hi,
                   td_slice consumer, int64_t min_idle_ms, size_t count, int64_t now_ms,
                   void (*fn)(void *arg, const xpending_info *p), void *arg)
{
    td_xgroups *x = e->xgroups;
    pthread_mutex_lock(&x->mu);
    xgrp *g = xg_group_find(x, s, group, NULL);
    const xcons *only = g && consumer.p ? xg_cons_find(g, consumer) : NULL;
    size_t n = 0;
    bool none = !g || (consumer.p && !only); /* an unknown consumer has nothing pending */
    for (size_t i = none ? 0 : xg_pel_lower(g, lo);
         !none && i < g->npel && (count == 0 || n < count); i++) {
        const xpe *pe = &g->pel[i];
        if (td_sid_cmp(pe->id, hi) > 0)
            break;
        if (!pe->c || (only && pe->c != only) ||
            (min_idle_ms > 0 && now_ms - pe->d.delivered < min_idle_ms))
            continue;
        xpending_info pi = {pe->id, td_slice_make(pe->c->nm.name, pe->c->nm.len), pe->d.delivered,
                            pe->d.deliveries};
        fn(arg, &pi);
        n++;
    }
    pthread_mutex_unlock(&x->mu);
    return g ? 0 : TD_ENOTFOUND;
}
