/*
 * xgroup.c: Redis consumer groups on partitions (xgroup.h; docs/redis.md#consumer-groups).
 *
 * This file: queue policies and their timed work, XDEL and its journal, saving, metrics, open and
 * close, and the commands that change groups and consumers. xgroup_pel.c has the structures,
 * xgroup_read.c the deliveries and acknowledgements, xgroup_state.c the records.
 *
 * Saving: each change adds records of what it changed (a group, a consumer, a pending entry, or
 * their tombstones) to x->rb, and change_done appends them to the state topic __xgroup_state
 * (xgroup_state.c) before the groups' mutex is released, so that the log has the changes in the
 * order memory had them; the offset it returns is what the caller waits for (the flusher's
 * group commit), never the event loop.
 *
 * XDEL's removed entries are stream data, not group state: they stay catalog rows, journaled
 * here and written in one transaction by the delivery core's service thread (delivery.h, shared
 * with queue groups; seq with XDEL_SEQ_BIT). The same thread sweeps the groups with a queue
 * policy when an entry falls due, and copies dead entries out; it starts only once something
 * needs it.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/metrics.h"
#include "broker/delivery.h"
#include "broker/engine_int.h"
#include "broker/queue.h"
#include "broker/state.h"
#include "broker/xgroup.h"
#include "broker/xgroup_int.h"

/* ---------------------------------------------------------------------------------------------
 * Queue policies
 */
/* The keys of td_queue_policy that apply to Redis consumer groups. */
static const char *const policy_keys[] = {
    "ack.timeout.ms", "max.deliveries", "backoff.initial.ms", "backoff.multiplier",
    "backoff.max.ms", "backoff.jitter", "dead.letter.topic",  NULL};

const char *const *xgroup_policy_keys(void)
{
    return policy_keys;
}

/* When a pending entry falls due under the group's policy: the core's rule for its pending
 * form (delivery.h), with the jitter fixed by its stream ID and count. */
int64_t xg_due_at(const xgrp *g, const xpe *pe)
{
    const int64_t id[2] = {(int64_t)pe->id.ms, (int64_t)pe->id.seq};
    return delivery_pending_due(&pe->d, g->pol, delivery_pending_jitter(&pe->d, id, sizeof(id)));
}

void xg_note_due(td_xgroups *x, xgrp *g, const xpe *pe)
{
    if (!g->pol)
        return;
    delivery_note_due(x->dc, &g->next_due, xg_due_at(g, pe)); /* the sweep runs by then */
}

bool xg_is_dead(const xgrp *g, const xpe *pe)
{
    return delivery_pending_dead(&pe->d, g->pol);
}

/* ---------------------------------------------------------------------------------------------
 * The journal of XDEL's removed entries (catalog rows; group state goes to __xgroup_state)
 */
/* A row of xdeleted: PUT of (id, offset), or PRUNE below offset; false without memory (logged:
 * the removed entries are saved whole at the next write). */
static bool jrow_del(td_xgroups *x, int op, const xstr *st, td_sid id, int64_t offset)
{
    x->seq++;
    xg_wake(x, 0);
    if (td_grow(&x->rows, &x->rowcap, x->nrows, sizeof(*x->rows), 64) != 0) {
        TD_ERROR("xgroup", "out of memory: XDEL's removed entries are saved whole next");
        x->resync = true;
        return false;
    }
    x->rows[x->nrows++] = (catalog_xrow){.op = op,
                                         .topic_id = st->topic_id,
                                         .partition = st->partition,
                                         .group = td_slice_make("", 0),
                                         .id = id,
                                         .ms = offset};
    return true;
}

/* ---------------------------------------------------------------------------------------------
 * The writer
 */
static size_t waiters_take(td_xgroups *x, bool all, xwaiter **out)
{
    size_t k = 0, n = 0;
    xwaiter *done = NULL;
    for (size_t i = 0; i < x->nw; i++)
        n += all || x->w[i].seq <= x->saved_seq;
    if (n && !(done = malloc(n * sizeof(*done))))
        n = 0; /* they are answered at a later write */
    size_t d = 0;
    for (size_t i = 0; i < x->nw; i++) {
        if (n && (all || x->w[i].seq <= x->saved_seq))
            done[d++] = x->w[i];
        else
            x->w[k++] = x->w[i];
    }
    x->nw = k;
    *out = done;
    return d;
}

/* Replaces the journal with rows that write the whole state (after the ones that failed). */
static void journal_snapshot(td_xgroups *x)
{
    free(x->rows);
    x->rows = NULL;
    x->nrows = x->rowcap = 0;
    x->resync = false;
    static const xstr all = {0};
    bool ok = jrow_del(x, CATALOG_XCLEAR, &all, (td_sid){0, 0}, 0);
    for (size_t i = 0; i < x->ns && ok; i++) {
        const xstr *st = &x->s[i];
        if (st->max_del.ms || st->max_del.seq)
            ok = jrow_del(x, CATALOG_XDEL_PUT, st, st->max_del, -1);
        for (size_t k = 0; k < st->ndel && ok; k++)
            ok = jrow_del(x, CATALOG_XDEL_PUT, st, (td_sid){0, 0}, st->del[k]);
    }
}

/* Writes the journal once; under x->mu, which it drops meanwhile. */
static int write_once(td_xgroups *x)
{
    if (x->resync)
        journal_snapshot(x);
    if (x->resync)
        return x->save_rc = -ENOMEM;
    catalog_xrow *rows = x->rows;
    size_t n = x->nrows;
    uint64_t seq = x->seq;
    x->rows = NULL;
    x->nrows = x->rowcap = 0;
    pthread_mutex_unlock(&x->mu);
    pthread_mutex_lock(&x->e->admin_mu);
    int rc = catalog_xrows_put(x->e->cat, rows, n);
    pthread_mutex_unlock(&x->e->admin_mu);
    free(rows);
    pthread_mutex_lock(&x->mu);
    if (rc) {
        TD_ERROR("xgroup", "cannot save XDEL's removed entries (retrying): %s", td_last_error());
        x->resync = true; /* the rows are gone: write the whole state next time */
    } else {
        x->saved_seq = seq;
    }
    x->save_rc = rc;
    return rc;
}

static void answer(td_xgroups *x, bool all, int rc)
{
    xwaiter *done;
    size_t n = waiters_take(x, all, &done);
    pthread_cond_broadcast(&x->done_cv);
    if (!n)
        return;
    pthread_mutex_unlock(&x->mu);
    for (size_t i = 0; i < n; i++)
        done[i].cb(done[i].arg, rc);
    free(done);
    pthread_mutex_lock(&x->mu);
}

/* A pending entry past its last delivery allowed, to copy to the dead-letter topic. */
typedef struct xdead {
    int64_t topic_id;
    int32_t partition;
    td_sid id;
    int64_t count, delivery_ms, timeout_ms;
    uint8_t *group; /* malloc'd */
    size_t glen;
    char dlq[TD_TOPIC_NAME_MAX + 1]; /* "": <topic>.dlq */
} xdead;

/* The sweep of one group's PEL (one span) by the core's delivery_sweep_pending: the dead
 * entries that are due collected as jobs. */
typedef struct xsweep {
    const xstr *st;
    xgrp *g;
    bool given; /* the one span handed out */
    xdead **jobs;
    size_t *njobs, cap;
} xsweep;

static bool xsweep_next(void *arg, delivery_span *span)
{
    xsweep *w = arg;
    if (w->given || !w->g->npel)
        return false;
    w->given = true;
    *span = (delivery_span){&w->g->pel[0].d, w->g->npel, sizeof(xpe)};
    return true;
}

static double xsweep_jitter(void *arg, size_t k, const delivery_pending *p)
{
    const xpe *pe = &((xsweep *)arg)->g->pel[k];
    const int64_t id[2] = {(int64_t)pe->id.ms, (int64_t)pe->id.seq};
    return pe->c ? delivery_pending_jitter(p, id, sizeof(id)) : -1; /* a hole: no entry */
}

static bool xsweep_dead(void *arg, size_t k, const delivery_pending *p, int64_t now)
{
    (void)now;
    xsweep *w = arg;
    const xgrp *g = w->g;
    if (td_grow(w->jobs, &w->cap, *w->njobs, sizeof(**w->jobs), 16) != 0)
        return false;
    xdead *dj = &(*w->jobs)[*w->njobs];
    *dj = (xdead){.topic_id = w->st->topic_id,
                  .partition = w->st->partition,
                  .id = g->pel[k].id,
                  .count = p->deliveries,
                  .delivery_ms = p->delivered,
                  .timeout_ms = g->pol->ack_timeout_ms,
                  .glen = g->nm.len};
    if (!(dj->group = malloc(g->nm.len ? g->nm.len : 1)))
        return false;
    memcpy(dj->group, g->nm.name, g->nm.len);
    snprintf(dj->dlq, sizeof(dj->dlq), "%s", g->pol->dead_letter_topic);
    (*w->njobs)++;
    return true;
}

/* Under x->mu: collects the dead entries of the groups with a policy that are due, and says
 * (*wake) whether a group has entries due for redelivery that it had not; the time to look
 * again (INT64_MAX: never, until a change says so). */
static int64_t sweep(td_xgroups *x, int64_t now, xdead **jobs, size_t *njobs, bool *wake)
{
    int64_t next = INT64_MAX;
    size_t cap = 0;
    for (size_t i = 0; i < x->ns; i++) {
        xstr *st = &x->s[i];
        for (size_t k = 0; k < st->n; k++) {
            xgrp *g = st->g[k];
            if (!g->pol)
                continue;
            if (now < g->next_due) {
                next = TD_MIN(next, g->next_due);
                continue;
            }
            xsweep ws = {st, g, false, jobs, njobs, cap};
            delivery_pending_walk w = {xsweep_next, xsweep_jitter, xsweep_dead, g->pol, &ws};
            bool ready = false;
            int64_t gn = delivery_sweep_pending(&w, now, &ready);
            cap = ws.cap;
            *wake |= ready && !g->ready;
            g->ready |= ready;
            g->next_due = gn;
            next = TD_MIN(next, gn);
        }
    }
    return next;
}

/* Copies dead entries to their dead-letter topics, then takes them out of their PEL (if no one
 * claimed or acknowledged them meanwhile). Without x->mu. */
static void dead_letters(td_xgroups *x, xdead *jobs, size_t n)
{
    td_engine *e = x->e;
    for (size_t i = 0; i < n; i++) {
        xdead *j = &jobs[i];
        td_topic_ref *ref;
        if (broker_topic_acquire_id(e, j->topic_id, &ref) != 0)
            continue; /* deleted: its groups go with it */
        int rc = 0;
        int64_t off = -1;
        if (j->partition < broker_topic_partitions(ref))
            off = xg_entry_offset(broker_topic_part(ref, j->partition), j->id);
        pthread_mutex_lock(&x->mu);
        xstr *st = xg_stream_find(x, j->topic_id, j->partition);
        bool gone = off < 0 || xg_del_has(st, off); /* trimmed or removed: nothing to keep */
        pthread_mutex_unlock(&x->mu);
        if (!gone) {
            char dlq[TD_TOPIC_NAME_MAX + 1] = "", error[96];
            const char *topic = broker_topic_name(ref);
            queue_dlq_name(j->dlq, topic, dlq, sizeof(dlq)); /* "": queue_dead_letter says why */
            snprintf(error, sizeof(error), "not acknowledged within %" PRId64 " ms", j->timeout_ms);
            int64_t failed = j->delivery_ms + j->timeout_ms;
            delivery_dead d = {topic,
                               j->partition,
                               off,
                               dlq,
                               td_slice_make(j->group, j->glen),
                               (int32_t)TD_MIN(j->count, INT32_MAX),
                               failed,
                               failed,
                               error};
            if ((rc = delivery_dead_letter(e, &d)) != 0)
                TD_WARN("xgroup",
                        "cannot dead-letter %s/%" PRId32 " %" PRIu64 "-%" PRIu64
                        " (tried again in a second): %s",
                        topic, j->partition, j->id.ms, j->id.seq, td_last_error());
        }
        broker_topic_release(ref);
        if (rc)
            continue;
        pthread_mutex_lock(&x->mu);
        xstream s = {j->topic_id, j->partition, NULL};
        xgrp *g = xg_group_find(x, &s, td_slice_make(j->group, j->glen), &st);
        xpe *pe = g ? xg_pel_get(g, j->id) : NULL;
        if (pe && pe->d.deliveries == j->count && pe->d.delivered == j->delivery_ms) {
            xrec_pending_gone(x, st, g, pe->id);
            xg_pel_remove(g, pe);
            xg_pel_compact(g);
            g->dead_lettered++;
        }
        uint64_t seq = 0;
        if (xrec_flush(x, &seq) != 0) /* kept for the next change's batch */
            TD_WARN("xgroup", "cannot record a dead-lettered entry yet: %s", td_last_error());
        pthread_mutex_unlock(&x->mu);
        if (seq) /* nobody waits: asks for the sync that makes it durable */
            state_when_durable(e, STATE_XGROUPS, 0, (int64_t)seq, NULL, NULL);
    }
}

/* The groups' timed work, on the delivery service's thread: the sweep of the groups with a
 * queue policy (blocked readers told when redeliveries fall due; dead entries copied out,
 * outside the lock), then the XDEL journal written. A failed write is tried again a second
 * later; a group with entries pending is looked at again within a second. */
static int64_t xg_work(void *arg, int64_t now)
{
    td_xgroups *x = arg;
    pthread_mutex_lock(&x->mu);
    int64_t next = INT64_MAX;
    if (!x->stopping) {
        xdead *jobs = NULL;
        size_t nj = 0;
        bool wake = false;
        next = sweep(x, now, &jobs, &nj, &wake);
        if (wake && x->notify)
            x->notify(x->notify_arg);
        if (nj) {
            pthread_mutex_unlock(&x->mu);
            dead_letters(x, jobs, nj);
            for (size_t i = 0; i < nj; i++)
                free(jobs[i].group);
            pthread_mutex_lock(&x->mu);
        }
        free(jobs);
        if (next != INT64_MAX)
            next = TD_MIN(next, now + DELIVERY_RETRY_MS);
    }
    if (x->nrows || x->resync) {
        int rc = write_once(x);
        /* A failure answers the waiters it concerned with its error. */
        answer(x, rc != 0, rc);
        if (rc)
            next = TD_MIN(next, now + DELIVERY_RETRY_MS);
    }
    pthread_mutex_unlock(&x->mu);
    return next;
}

void xgroups_set_notify(td_engine *e, void (*fn)(void *arg), void *arg)
{
    td_xgroups *x = e->xgroups;
    pthread_mutex_lock(&x->mu);
    x->notify = fn;
    x->notify_arg = arg;
    pthread_mutex_unlock(&x->mu);
}

int xg_wake(td_xgroups *x, int64_t at)
{
    if (x->stopped)
        return td_fail(TD_ECLOSED, "the Redis consumer groups are shutting down");
    return delivery_wake(x->dc, at);
}

/* Leaves the delivery service (a run in progress ends first), then writes the XDEL rows still
 * journaled, once, and answers every waiter: those it saved with 0, the others with the error
 * (TD_ECLOSED when none). Idempotent. */
static void writer_stop(td_xgroups *x)
{
    pthread_mutex_lock(&x->mu);
    if (x->stopped) {
        pthread_mutex_unlock(&x->mu);
        return;
    }
    x->stopping = true;
    x->stopped = true;
    delivery_client *dc = x->dc;
    x->dc = NULL;
    pthread_mutex_unlock(&x->mu);
    delivery_detach(dc);
    pthread_mutex_lock(&x->mu);
    if (x->nrows || x->resync) {
        int rc = write_once(x);
        answer(x, rc != 0, rc); /* given up on failure: the rows are lost, as in a crash */
    }
    answer(x, true, x->save_rc ? x->save_rc : TD_ECLOSED);
    pthread_mutex_unlock(&x->mu);
}

int xgroups_when_saved(td_engine *e, uint64_t seq, void (*cb)(void *arg, int rc), void *arg)
{
    td_xgroups *x = e->xgroups;
    if (!(seq & XDEL_SEQ_BIT)) /* a group change: durable with the state topic's batch */
        return state_when_durable(e, STATE_XGROUPS, 0, (int64_t)seq, cb, arg);
    seq &= ~XDEL_SEQ_BIT;
    pthread_mutex_lock(&x->mu);
    if (x->saved_seq >= seq) {
        pthread_mutex_unlock(&x->mu);
        cb(arg, 0);
        return 0;
    }
    if (x->stopped) {
        pthread_mutex_unlock(&x->mu);
        return TD_ECLOSED;
    }
    if (td_grow(&x->w, &x->wcap, x->nw, sizeof(*x->w), 16) != 0) {
        pthread_mutex_unlock(&x->mu);
        return -ENOMEM;
    }
    x->w[x->nw++] = (xwaiter){seq, cb, arg};
    pthread_mutex_unlock(&x->mu);
    return 0;
}

int xgroups_wait(td_engine *e, uint64_t seq)
{
    td_xgroups *x = e->xgroups;
    if (!(seq & XDEL_SEQ_BIT))
        return state_wait(e, STATE_XGROUPS, 0, (int64_t)seq);
    seq &= ~XDEL_SEQ_BIT;
    pthread_mutex_lock(&x->mu);
    while (x->saved_seq < seq && !x->stopped) {
        pthread_cond_wait(&x->done_cv, &x->mu);
        if (x->save_rc)
            break; /* this write failed: say so */
    }
    int rc = x->saved_seq >= seq ? 0 : x->save_rc ? x->save_rc : TD_ECLOSED;
    pthread_mutex_unlock(&x->mu);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Metrics, collected when scraped (docs/metrics.md)
 */
typedef struct xgroup_sample {
    int64_t topic_id;
    int32_t partition;
    char *name; /* NUL-terminated copy (a NUL inside ends the label) */
    td_sid last;
    double v[5]; /* pending, consumers, lag (filled later), redelivered, dead-lettered */
} xgroup_sample;

static void xgroups_collect(void *arg, td_metrics_out *out)
{
    td_xgroups *x = arg;
    xgroup_sample *v = NULL;
    size_t n = 0, cap = 0;
    pthread_mutex_lock(&x->mu);
    for (size_t i = 0; i < x->ns; i++) {
        for (size_t k = 0; k < x->s[i].n; k++) {
            const xgrp *g = x->s[i].g[k];
            char *name = td_metrics_label_of(g->nm.name, g->nm.len);
            if (!name || td_grow(&v, &cap, n, sizeof(*v), 16) != 0) {
                free(name);
                out->err = out->err ? out->err : -ENOMEM;
                break;
            }
            v[n++] = (xgroup_sample){x->s[i].topic_id,
                                     x->s[i].partition,
                                     name,
                                     g->last,
                                     {(double)g->live, (double)g->ncons, 0, (double)g->redelivered,
                                      (double)g->dead_lettered}};
        }
    }
    pthread_mutex_unlock(&x->mu);
    static const delivery_family fams[] = {
        {"tidings_redis_group_pending", "Entries delivered and not acknowledged (the PEL).",
         TD_GAUGE},
        {"tidings_redis_group_consumers", "Consumers of the group.", TD_GAUGE},
        {"tidings_redis_group_lag", "Entries of the stream not yet delivered to the group.",
         TD_GAUGE},
        {"tidings_redis_group_redelivered_total",
         "Entries the group's queue policy redelivered since the broker started.", TD_COUNTER},
        {"tidings_redis_group_dead_lettered_total",
         "Entries the group's queue policy dead-lettered since the broker started.", TD_COUNTER},
    };
    /* Topic names and lags, outside the groups' lock. */
    char(*topics)[TD_TOPIC_NAME_MAX + 1] = calloc(n ? n : 1, sizeof(*topics));
    for (size_t i = 0; topics && i < n; i++) {
        td_topic_ref *ref;
        if (broker_topic_acquire_id(x->e, v[i].topic_id, &ref) != 0)
            continue;
        snprintf(topics[i], sizeof(topics[i]), "%s", broker_topic_name(ref));
        if (v[i].partition < broker_topic_partitions(ref)) {
            xstream xs = {v[i].topic_id, v[i].partition, broker_topic_part(ref, v[i].partition)};
            int64_t read, lag;
            xstream_progress(x->e, &xs, v[i].last, &read, &lag);
            v[i].v[2] = (double)lag;
        }
        broker_topic_release(ref);
    }
    static const char *const labels[] = {"topic", "partition", "group"};
    enum { NF = TD_ARRAY_LEN(fams) };
    char(*parts)[16] = calloc(n ? n : 1, sizeof(*parts));
    const char **lv = calloc(n ? 3 * n : 1, sizeof(*lv));
    double *vals = calloc(n ? n * NF : 1, sizeof(*vals));
    for (size_t i = 0; topics && parts && lv && vals && i < n; i++) {
        snprintf(parts[i], sizeof(parts[i]), "%" PRId32, v[i].partition);
        lv[3 * i] = topics[i]; /* "": its topic was deleted meanwhile, and the row is skipped */
        lv[3 * i + 1] = parts[i];
        lv[3 * i + 2] = v[i].name;
        for (size_t f = 0; f < NF; f++)
            vals[i * NF + f] = v[i].v[f];
    }
    if (topics && parts && lv && vals)
        delivery_metrics_write(out, fams, NF, labels, 3, lv, vals, n);
    else
        out->err = out->err ? out->err : -ENOMEM;
    free(parts);
    free(lv);
    free(vals);
    for (size_t i = 0; i < n; i++)
        free(v[i].name);
    free(v);
    free(topics);
}

/* ---------------------------------------------------------------------------------------------
 * Open and close
 */
typedef struct row_loader {
    td_xgroups *x;
    bool had_rows; /* group rows */
} row_loader;

static int load_row(void *arg, const catalog_xrow *r)
{
    row_loader *l = arg;
    td_xgroups *x = l->x;
    xstream s = {r->topic_id, r->partition, NULL};
    xstr *st = xg_stream_get(x, r->topic_id, r->partition);
    if (!st)
        return -ENOMEM;
    if (r->op == CATALOG_XDEL_PUT) {
        if (r->ms < 0) {
            st->max_del = r->id;
            return 0;
        }
        if (td_grow(&st->del, &st->delcap, st->ndel, sizeof(*st->del), 16) != 0)
            return -ENOMEM;
        st->del[st->ndel++] = r->ms; /* in offset order */
        x->ndel++;
        return 0;
    }
    l->had_rows = true;
    if (r->op == CATALOG_XGROUP_PUT) {
        xgrp *g = xg_group_insert(st, r->group);
        if (!g)
            return -ENOMEM;
        g->last = r->id;
        g->read_legacy = true; /* these rows have no entries_read: computed after the replay */
        g->created_ms = r->ms;
        g->next_due = INT64_MIN; /* swept once at the start */
        if (r->policy && r->policy[0] && (g->pol = malloc(sizeof(*g->pol))))
            queue_policy_parse(r->policy, g->pol);
        return 0;
    }
    xgrp *g = xg_group_find(x, &s, r->group, NULL);
    if (!g)
        return 0; /* rows of a group that is gone */
    xcons *c = xg_cons_add(g, r->name, r->ms);
    if (!c)
        return -ENOMEM;
    if (r->op == CATALOG_XCONS_PUT) {
        c->seen_ms = r->ms;
        return 0;
    }
    xpe *pe = xg_pel_add(g, r->id, c, r->ms);
    if (!pe)
        return -ENOMEM;
    pe->d.deliveries = r->count;
    return 0;
}

static void state_free(td_xgroups *x)
{
    while (x->ns)
        xg_stream_drop(x, x->ns - 1);
    free(x->s);
    x->s = NULL;
    x->scap = 0;
}

int xgroups_open(td_engine *e, td_xgroups **out)
{
    td_xgroups *x = calloc(1, sizeof(*x));
    if (!x)
        return -ENOMEM;
    x->e = e;
    pthread_mutex_init(&x->mu, NULL);
    pthread_cond_init(&x->done_cv, NULL);
    drecs_init(&x->rb);
    int rc = delivery_attach(e, "xgroups", xg_work, x, &x->dc);
    row_loader l = {x, false};
    if (rc == 0) {
        pthread_mutex_lock(&e->admin_mu);
        rc = catalog_xrows_list(e->cat, load_row, &l);
        pthread_mutex_unlock(&e->admin_mu);
    }
    pthread_mutex_lock(&x->mu);
    if (rc == 0)
        rc = xstate_load(x, l.had_rows);
    /* The thread runs only for what needs it: XDEL's rows and queue policies' deadlines. */
    bool need = x->ndel > 0;
    for (size_t i = 0; i < x->ns && !need; i++)
        for (size_t k = 0; k < x->s[i].n && !need; k++)
            need = x->s[i].g[k]->pol != NULL;
    if (rc == 0 && need)
        rc = xg_wake(x, 0);
    pthread_mutex_unlock(&x->mu);
    if (rc == 0 && (rc = td_metrics_add_collector(broker_metrics(e), xgroups_collect, x)) != 0)
        writer_stop(x);
    if (rc) {
        writer_stop(x);
        state_free(x);
        xrec_free(x);
        free(x->rows);
        pthread_mutex_destroy(&x->mu);
        pthread_cond_destroy(&x->done_cv);
        free(x);
        return rc;
    }
    *out = x;
    return 0;
}

void xgroups_shutdown(td_engine *e)
{
    if (e->xgroups)
        writer_stop(e->xgroups);
}

void xgroups_close(td_xgroups *x)
{
    if (!x)
        return;
    td_metrics_remove_collector(broker_metrics(x->e), xgroups_collect, x);
    writer_stop(x);
    /* What changed after xgroups_shutdown (commands that ran while the loops wound down). */
    pthread_mutex_lock(&x->mu);
    if (x->nrows || x->resync)
        write_once(x);
    uint64_t seq = 0;
    xrec_flush(x, &seq); /* records a failed append kept, if any */
    pthread_mutex_unlock(&x->mu);
    if (seq)
        state_wait(x->e, STATE_XGROUPS, 0, (int64_t)seq);
    state_free(x);
    xrec_free(x);
    free(x->rows);
    free(x->w);
    pthread_mutex_destroy(&x->mu);
    pthread_cond_destroy(&x->done_cv);
    free(x);
}

void xgroups_forget_topic(td_engine *e, int64_t topic_id)
{
    td_xgroups *x = e->xgroups;
    if (!x)
        return;
    pthread_mutex_lock(&x->mu);
    for (size_t i = 0; i < x->ns;) {
        if (x->s[i].topic_id != topic_id) {
            i++;
            continue;
        }
        /* Tombstones for its groups' records (the catalog dropped its XDEL rows itself). */
        for (size_t k = 0; k < x->s[i].n; k++)
            xrec_group_gone(x, &x->s[i], x->s[i].g[k]);
        xg_stream_drop(x, i);
    }
    uint64_t seq = 0;
    if (xrec_flush(x, &seq) != 0) /* a start drops the records of deleted topics anyway */
        TD_WARN("xgroup", "cannot record a deleted topic's groups as gone: %s", td_last_error());
    /* Readers blocked on the topic's streams are answered now, whichever protocol deleted it
     * (XREADGROUP: its group is gone), and blocked XREADs let the deleted partitions go. */
    if (x->notify)
        x->notify(x->notify_arg);
    pthread_mutex_unlock(&x->mu);
    if (seq)
        state_when_durable(e, STATE_XGROUPS, 0, (int64_t)seq, NULL, NULL);
}

/* ---------------------------------------------------------------------------------------------
 * Groups and consumers
 */
/* Appends the change's records (under x->mu, so that the log has the changes in the order
 * memory had them): the call's result, which a failed append fails. */
int xg_change_done(td_xgroups *x, int rc, uint64_t *seq)
{
    uint64_t s = 0;
    int frc = xrec_flush(x, &s);
    if (seq)
        *seq = s;
    return rc ? rc : frc;
}

int xgroup_create(td_engine *e, const xstream *s, td_slice group, td_sid last, int64_t entries_read,
                  uint64_t *seq)
{
    td_xgroups *x = e->xgroups;
    pthread_mutex_lock(&x->mu);
    int rc = 0;
    xstr *st = xg_stream_get(x, s->topic_id, s->partition);
    xgrp *g = NULL;
    if (st && xg_group_find(x, s, group, NULL))
        rc = TD_EEXIST;
    else if (!st || !(g = xg_group_insert(st, group)))
        rc = -ENOMEM;
    if (g) {
        g->last = last;
        g->entries_read = entries_read;
        g->created_ms = td_wall_ms();
        xrec_group(x, st, g);
    }
    rc = xg_change_done(x, rc, seq);
    pthread_mutex_unlock(&x->mu);
    return rc;
}

int xgroup_setid(td_engine *e, const xstream *s, td_slice group, td_sid last, int64_t entries_read,
                 uint64_t *seq)
{
    td_xgroups *x = e->xgroups;
    pthread_mutex_lock(&x->mu);
    xstr *st;
    xgrp *g = xg_group_find(x, s, group, &st);
    if (g) {
        g->last = last;
        g->entries_read = entries_read; /* as Redis: unknown unless given */
        xrec_group(x, st, g);
    }
    int rc = xg_change_done(x, g ? 0 : TD_ENOTFOUND, seq);
    pthread_mutex_unlock(&x->mu);
    return rc;
}

int xgroup_set_policy(td_engine *e, const xstream *s, td_slice group, const td_queue_policy *pol,
                      uint64_t *seq)
{
    td_xgroups *x = e->xgroups;
    pthread_mutex_lock(&x->mu);
    int rc = 0;
    xstr *st;
    xgrp *g = xg_group_find(x, s, group, &st);
    td_queue_policy *copy = NULL;
    if (!g)
        rc = TD_ENOTFOUND;
    else if (pol && !(copy = malloc(sizeof(*copy))))
        rc = -ENOMEM;
    if (rc == 0) {
        if (copy)
            *copy = *pol;
        free(g->pol);
        g->pol = copy;
        g->ready = false;
        g->next_due = INT64_MIN; /* swept at once: the timeouts may have passed already */
        xrec_group(x, st, g);
        if (copy)
            rc = xg_wake(x, 0); /* its deadlines need the thread */
    }
    rc = xg_change_done(x, rc, seq);
    pthread_mutex_unlock(&x->mu);
    return rc;
}

int xgroup_get_policy(td_engine *e, const xstream *s, td_slice group, td_queue_policy *out,
                      bool *has)
{
    td_xgroups *x = e->xgroups;
    pthread_mutex_lock(&x->mu);
    xgrp *g = xg_group_find(x, s, group, NULL);
    *has = g && g->pol;
    if (*has)
        *out = *g->pol;
    pthread_mutex_unlock(&x->mu);
    return g ? 0 : TD_ENOTFOUND;
}

int xgroup_destroy(td_engine *e, const xstream *s, td_slice group, bool *destroyed, uint64_t *seq)
{
    td_xgroups *x = e->xgroups;
    pthread_mutex_lock(&x->mu);
    xstr *st = xg_stream_find(x, s->topic_id, s->partition);
    bool found = false;
    size_t i = st ? xg_name_search((void *const *)st->g, st->n, group, &found) : 0;
    if (found) {
        xgrp *g = st->g[i];
        xrec_group_gone(x, st, g);
        xg_group_remove(st, i);
        /* Its blocked readers get NOGROUP now, as in Redis, not at the next entry. */
        if (x->notify)
            x->notify(x->notify_arg);
    }
    *destroyed = found;
    int rc = xg_change_done(x, 0, seq);
    pthread_mutex_unlock(&x->mu);
    return rc;
}

int xgroup_consumer_create(td_engine *e, const xstream *s, td_slice group, td_slice consumer,
                           int64_t now_ms, bool *created, uint64_t *seq)
{
    td_xgroups *x = e->xgroups;
    pthread_mutex_lock(&x->mu);
    int rc = 0;
    xstr *st;
    xgrp *g = xg_group_find(x, s, group, &st);
    *created = false;
    if (!g) {
        rc = TD_ENOTFOUND;
    } else if (!xg_cons_find(g, consumer)) {
        xcons *c = xg_cons_add(g, consumer, now_ms);
        if (c) {
            *created = true;
            xrec_consumer(x, st, g, c);
        } else {
            rc = -ENOMEM;
        }
    }
    rc = xg_change_done(x, rc, seq);
    pthread_mutex_unlock(&x->mu);
    return rc;
}

int xgroup_consumer_delete(td_engine *e, const xstream *s, td_slice group, td_slice consumer,
                           int64_t *pending, uint64_t *seq)
{
    td_xgroups *x = e->xgroups;
    pthread_mutex_lock(&x->mu);
    xstr *st;
    xgrp *g = xg_group_find(x, s, group, &st);
    *pending = 0;
    xcons *c = g ? xg_cons_find(g, consumer) : NULL;
    if (c) {
        xrec_consumer_gone(x, st, g, c); /* with its pending entries' tombstones */
        *pending = (int64_t)xg_cons_remove(g, c);
    }
    int rc = xg_change_done(x, g ? 0 : TD_ENOTFOUND, seq);
    pthread_mutex_unlock(&x->mu);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * XDEL
 */
int xstream_delete(td_engine *e, const xstream *s, const td_sid *ids, size_t n, size_t *deleted,
                   uint64_t *seq)
{
    td_xgroups *x = e->xgroups;
    pthread_mutex_lock(&x->mu);
    uint64_t before = x->seq;
    int rc = 0;
    *deleted = 0;
    xstr *st = xg_stream_get(x, s->topic_id, s->partition);
    if (!st) {
        rc = -ENOMEM;
        goto out;
    }
    /* Forget what retention or XTRIM took. */
    int64_t ls = part_log_start(s->p);
    size_t below = xg_del_lower(st, ls);
    if (below) {
        memmove(st->del, st->del + below, (st->ndel - below) * sizeof(*st->del));
        st->ndel -= below;
        __atomic_sub_fetch(&x->ndel, below, __ATOMIC_RELAXED);
        jrow_del(x, CATALOG_XDEL_PRUNE, st, (td_sid){0, 0}, ls);
    }
    for (size_t i = 0; i < n; i++) {
        int64_t off = xg_entry_offset(s->p, ids[i]);
        if (off < 0 || xg_del_has(st, off))
            continue;
        if (td_grow(&st->del, &st->delcap, st->ndel, sizeof(*st->del), 16) != 0) {
            rc = -ENOMEM;
            break;
        }
        size_t at = xg_del_lower(st, off);
        memmove(st->del + at + 1, st->del + at, (st->ndel - at) * sizeof(*st->del));
        st->del[at] = off;
        st->ndel++;
        __atomic_add_fetch(&x->ndel, 1, __ATOMIC_RELAXED);
        if (td_sid_cmp(ids[i], st->max_del) > 0)
            st->max_del = ids[i];
        jrow_del(x, CATALOG_XDEL_PUT, st, ids[i], off);
        (*deleted)++;
    }
    if (*deleted)
        jrow_del(x, CATALOG_XDEL_PUT, st, st->max_del, -1);
out:
    if (seq)
        *seq = x->seq != before ? x->seq | XDEL_SEQ_BIT : 0;
    if (x->seq != before && xg_wake(x, 0) != 0 && rc == 0)
        rc = TD_ECLOSED; /* no thread to write the rows */
    pthread_mutex_unlock(&x->mu);
    return rc;
}

/* XSETID's MAXDELETEDID: the value XDEL raises, saved in the same catalog row (offset -1) by the
 * same thread, so that the last of the two to change it wins after a restart as in memory. */
int xstream_set_max_deleted(td_engine *e, const xstream *s, td_sid id, uint64_t *seq)
{
    td_xgroups *x = e->xgroups;
    pthread_mutex_lock(&x->mu);
    uint64_t before = x->seq;
    int rc = 0;
    xstr *st = xg_stream_get(x, s->topic_id, s->partition);
    if (st) {
        st->max_del = id;
        jrow_del(x, CATALOG_XDEL_PUT, st, id, -1);
    } else {
        rc = -ENOMEM;
    }
    if (seq)
        *seq = x->seq != before ? x->seq | XDEL_SEQ_BIT : 0;
    if (x->seq != before && xg_wake(x, 0) != 0 && rc == 0)
        rc = TD_ECLOSED; /* no thread to write the rows */
    pthread_mutex_unlock(&x->mu);
    return rc;
}

int xstream_deleted(td_engine *e, const xstream *s, int64_t from, int64_t to, int64_t **offs,
                    size_t *n, td_sid *max_deleted)
{
    td_xgroups *x = e->xgroups;
    if (offs)
        *offs = NULL;
    *n = 0;
    if (max_deleted)
        *max_deleted = (td_sid){0, 0};
    else if (__atomic_load_n(&x->ndel, __ATOMIC_RELAXED) == 0)
        return 0;
    pthread_mutex_lock(&x->mu);
    int rc = 0;
    xstr *st = xg_stream_find(x, s->topic_id, s->partition);
    if (st) {
        if (max_deleted)
            *max_deleted = st->max_del;
        size_t a = xg_del_lower(st, from), b = xg_del_lower(st, to);
        if (b > a && !offs) {
            *n = b - a;
        } else if (b > a) {
            if ((*offs = malloc((b - a) * sizeof(**offs)))) {
                memcpy(*offs, st->del + a, (b - a) * sizeof(**offs));
                *n = b - a;
            } else {
                rc = -ENOMEM;
            }
        }
    }
    pthread_mutex_unlock(&x->mu);
    return rc;
}

void xstream_progress(td_engine *e, const xstream *s, td_sid last, int64_t *read, int64_t *lag)
{
    int64_t hw = part_high_watermark(s->p);
    size_t gone = 0;
    if (part_stream_after(s->p, last, read) != 0)
        *read = hw;
    xstream_deleted(e, s, *read, hw, NULL, &gone, NULL);
    /* Entries, not offsets: a compacted stream has offsets without one. */
    int64_t unread = hw - *read;
    if (part_count_records(s->p, *read, hw, &unread) != 0)
        unread = hw - *read;
    *lag = TD_MAX(0, unread - (int64_t)gone);
}
