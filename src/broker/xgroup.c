/*
 * xgroup.c: Redis consumer groups on partitions (xgroup.h; docs/redis.md#consumer-groups).
 *
 * Memory: per stream (topic id, partition) its groups sorted by name; per group its consumers
 * sorted by name and the PEL, an array sorted by ID in which an acknowledged entry becomes a
 * hole (consumer NULL) until holes outnumber entries and the array is compacted: deliveries
 * append at the end and acknowledgements mostly remove from the front, so neither moves memory.
 *
 * Saving: each change adds records of what it changed (a group, a consumer, a pending entry, or
 * their tombstones) to x->rb, and change_done appends them to the state topic __xgroup_state
 * (xgroup_state.c) before the groups' mutex is released, so that the log has the changes in the
 * order memory had them; the offset it returns is what the caller waits for (the flusher's
 * group commit), never the event loop.
 *
 * XDEL's removed entries are stream data, not group state: they stay catalog rows, journaled
 * here and written by this file's thread in one transaction (seq with XDEL_SEQ_BIT). The same
 * thread sweeps the groups with a queue policy when an entry falls due, and copies dead
 * entries out; it starts only once something needs it.
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
 * Names, lookups
 */
static int name_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    int c = memcmp(a, b, TD_MIN(an, bn));
    return c ? c : (an > bn) - (an < bn);
}

/* The index of key in a sorted array of groups or consumers (*found), or where it goes. */
size_t xg_name_search(void *const *arr, size_t n, td_slice key, bool *found)
{
    size_t lo = 0, hi = n;
    *found = false;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const xname *nm = arr[mid];
        int c = name_cmp(nm->name, nm->len, key.p, key.n);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

bool xg_name_set(xname *nm, td_slice v)
{
    if (!(nm->name = malloc(v.n ? v.n : 1)))
        return false;
    memcpy(nm->name, v.p, v.n);
    nm->len = v.n;
    return true;
}

xstr *xg_stream_find(td_xgroups *x, int64_t topic_id, int32_t partition)
{
    for (size_t i = 0; i < x->ns; i++)
        if (x->s[i].topic_id == topic_id && x->s[i].partition == partition)
            return &x->s[i];
    return NULL;
}

xstr *xg_stream_get(td_xgroups *x, int64_t topic_id, int32_t partition)
{
    xstr *st = xg_stream_find(x, topic_id, partition);
    if (st)
        return st;
    if (td_grow(&x->s, &x->scap, x->ns, sizeof(*x->s), 8) != 0)
        return NULL;
    st = &x->s[x->ns++];
    *st = (xstr){.topic_id = topic_id, .partition = partition};
    return st;
}

xgrp *xg_group_find(td_xgroups *x, const xstream *s, td_slice name, xstr **stp)
{
    xstr *st = xg_stream_find(x, s->topic_id, s->partition);
    if (stp)
        *stp = st;
    if (!st)
        return NULL;
    bool found;
    size_t i = xg_name_search((void *const *)st->g, st->n, name, &found);
    return found ? st->g[i] : NULL;
}

void xg_group_free(xgrp *g)
{
    for (size_t i = 0; i < g->ncons; i++) {
        free(g->cons[i]->nm.name);
        free(g->cons[i]);
    }
    free(g->cons);
    free(g->pel);
    free(g->nm.name);
    free(g->pol);
    free(g);
}

xcons *xg_cons_find(xgrp *g, td_slice name)
{
    bool found;
    size_t i = xg_name_search((void *const *)g->cons, g->ncons, name, &found);
    return found ? g->cons[i] : NULL;
}

xcons *xg_cons_add(xgrp *g, td_slice name, int64_t now_ms)
{
    bool found;
    size_t i = xg_name_search((void *const *)g->cons, g->ncons, name, &found);
    if (found)
        return g->cons[i];
    if (td_grow(&g->cons, &g->conscap, g->ncons, sizeof(*g->cons), 4) != 0)
        return NULL;
    xcons *c = calloc(1, sizeof(*c));
    if (!c || !xg_name_set(&c->nm, name)) {
        free(c);
        return NULL;
    }
    c->seen_ms = now_ms;
    memmove(g->cons + i + 1, g->cons + i, (g->ncons - i) * sizeof(*g->cons));
    g->cons[i] = c;
    g->ncons++;
    return c;
}

/* ---------------------------------------------------------------------------------------------
 * The PEL
 */
/* The first slot (hole or not) whose ID is >= id. */
size_t xg_pel_lower(const xgrp *g, td_sid id)
{
    size_t lo = 0, hi = g->npel;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (td_sid_cmp(g->pel[mid].id, id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

xpe *xg_pel_get(xgrp *g, td_sid id)
{
    size_t i = xg_pel_lower(g, id);
    if (i < g->npel && g->pel[i].c && td_sid_cmp(g->pel[i].id, id) == 0)
        return &g->pel[i];
    return NULL;
}

static void pel_assign(xpe *pe, xcons *c)
{
    if (pe->c == c)
        return;
    if (pe->c)
        pe->c->pending--;
    pe->c = c;
    c->pending++;
}

/* The entry of id, added (for consumer c, count 0) if it is not pending; NULL without memory.
 * Slots may move. */
xpe *xg_pel_add(xgrp *g, td_sid id, xcons *c, int64_t now_ms)
{
    size_t i = g->npel;
    if (g->npel && td_sid_cmp(g->pel[g->npel - 1].id, id) >= 0)
        i = xg_pel_lower(g, id);
    if (i < g->npel && td_sid_cmp(g->pel[i].id, id) == 0) {
        xpe *pe = &g->pel[i];
        if (!pe->c) {
            g->live++;
            pe->count = 0;
        }
        pel_assign(pe, c);
        pe->delivery_ms = now_ms;
        return pe;
    }
    if (td_grow(&g->pel, &g->pelcap, g->npel, sizeof(*g->pel), 16) != 0)
        return NULL;
    memmove(g->pel + i + 1, g->pel + i, (g->npel - i) * sizeof(*g->pel));
    g->npel++;
    g->live++;
    g->pel[i] = (xpe){.id = id, .c = c, .delivery_ms = now_ms};
    c->pending++;
    return &g->pel[i];
}

void xg_pel_remove(xgrp *g, xpe *pe)
{
    pe->c->pending--;
    pe->c = NULL;
    g->live--;
}

/* Drops the holes once they outnumber the entries (call when no slot pointer is held). */
void xg_pel_compact(xgrp *g)
{
    size_t holes = g->npel - g->live;
    if (holes < 64 || holes < g->live)
        return;
    size_t k = 0;
    for (size_t i = 0; i < g->npel; i++)
        if (g->pel[i].c)
            g->pel[k++] = g->pel[i];
    g->npel = k;
    if (g->pelcap > 64 && k < g->pelcap / 4) {
        size_t cap = TD_MAX(k * 2, 16);
        xpe *v = realloc(g->pel, cap * sizeof(*v));
        if (v) {
            g->pel = v;
            g->pelcap = cap;
        }
    }
}

/* ---------------------------------------------------------------------------------------------
 * Entries of the stream, and those XDEL removed
 */
static size_t del_lower(const xstr *st, int64_t off)
{
    size_t lo = 0, hi = st->ndel;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (st->del[mid] < off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool del_has(const xstr *st, int64_t off)
{
    if (!st || !st->ndel)
        return false;
    size_t i = del_lower(st, off);
    return i < st->ndel && st->del[i] == off;
}

/* The offset of the entry of that ID, or -1 if the stream does not have it. */
static int64_t entry_offset(td_part *p, td_sid id)
{
    int64_t off;
    return part_stream_find(p, id, &off) == 0 ? off : -1;
}

/* Whether the stream has the entry (in the log, not removed by XDEL). */
static bool entry_live(const xstr *st, td_part *p, td_sid id)
{
    int64_t off = entry_offset(p, id);
    return off >= 0 && !del_has(st, off);
}

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

/* A number in [0, 1) fixed for an entry's n-th delivery: the jitter of its backoff. */
static double entry_jitter(td_sid id, int64_t n)
{
    const int64_t v[3] = {id.ms, (int64_t)id.seq, n};
    return (double)(td_hash64(v, sizeof(v)) >> 11) / (double)(1ull << 53);
}

/* When a pending entry falls due under the group's policy: for redelivery after its ack timeout
 * and backoff, or, past its last delivery allowed, for the dead-letter topic at its timeout. */
static int64_t due_at(const xgrp *g, const xpe *pe)
{
    const td_queue_policy *p = g->pol;
    int64_t t = pe->delivery_ms + p->ack_timeout_ms;
    if (pe->count >= p->max_deliveries)
        return t;
    int32_t n = pe->count < 1 ? 1 : (int32_t)pe->count;
    return t + delivery_backoff(p, n, entry_jitter(pe->id, pe->count));
}

static void note_due(td_xgroups *x, xgrp *g, const xpe *pe)
{
    if (!g->pol)
        return;
    int64_t d = due_at(g, pe);
    if (d < g->next_due) {
        g->next_due = d;
        pthread_cond_signal(&x->cv); /* the writer's sweep may have to run sooner */
    }
}

static bool is_dead(const xgrp *g, const xpe *pe)
{
    return pe->count >= g->pol->max_deliveries;
}

/* ---------------------------------------------------------------------------------------------
 * The journal of XDEL's removed entries (catalog rows; group state goes to __xgroup_state)
 */
/* A row of xdeleted: PUT of (id, offset), or PRUNE below offset; false without memory (logged:
 * the removed entries are saved whole at the next write). */
static bool jrow_del(td_xgroups *x, int op, const xstr *st, td_sid id, int64_t offset)
{
    x->seq++;
    pthread_cond_signal(&x->cv);
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
            int64_t gn = INT64_MAX;
            bool ready = false;
            for (size_t j = 0; j < g->npel; j++) {
                const xpe *pe = &g->pel[j];
                if (!pe->c)
                    continue;
                int64_t d = due_at(g, pe);
                if (d > now) {
                    gn = TD_MIN(gn, d);
                    continue;
                }
                if (!is_dead(g, pe)) {
                    ready = true;
                    continue;
                }
                gn = TD_MIN(gn, now + 1000); /* looked at again if it is still there */
                if (td_grow(jobs, &cap, *njobs, sizeof(**jobs), 16) != 0)
                    break;
                xdead *dj = &(*jobs)[*njobs];
                *dj = (xdead){.topic_id = st->topic_id,
                              .partition = st->partition,
                              .id = pe->id,
                              .count = pe->count,
                              .delivery_ms = pe->delivery_ms,
                              .timeout_ms = g->pol->ack_timeout_ms,
                              .glen = g->nm.len};
                if (!(dj->group = malloc(g->nm.len ? g->nm.len : 1)))
                    break;
                memcpy(dj->group, g->nm.name, g->nm.len);
                snprintf(dj->dlq, sizeof(dj->dlq), "%s", g->pol->dead_letter_topic);
                (*njobs)++;
            }
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
            off = entry_offset(broker_topic_part(ref, j->partition), j->id);
        pthread_mutex_lock(&x->mu);
        xstr *st = xg_stream_find(x, j->topic_id, j->partition);
        bool gone = off < 0 || del_has(st, off); /* trimmed or removed: nothing to keep */
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
                        "cannot dead-letter %s/%" PRId32 " %" PRId64 "-%" PRIu64
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
        if (pe && pe->count == j->count && pe->delivery_ms == j->delivery_ms) {
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

static void *writer(void *arg)
{
    td_xgroups *x = arg;
    pthread_mutex_lock(&x->mu);
    while (!x->stopping || x->nrows || x->resync) {
        if (!x->stopping) {
            int64_t now = td_wall_ms();
            xdead *jobs = NULL;
            size_t nj = 0;
            bool wake = false;
            int64_t next = sweep(x, now, &jobs, &nj, &wake);
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
            if (!x->nrows && !x->resync) {
                if (next == INT64_MAX) {
                    pthread_cond_wait(&x->cv, &x->mu);
                } else {
                    int64_t at = TD_MIN(next, now + 1000);
                    struct timespec ts = {at / 1000, (long)(at % 1000) * 1000000};
                    pthread_cond_timedwait(&x->cv, &x->mu, &ts);
                }
                continue;
            }
        } else if (!x->nrows && !x->resync) {
            pthread_cond_wait(&x->cv, &x->mu);
            continue;
        }
        int rc = write_once(x);
        /* A failure answers the waiters it concerned with its error. */
        answer(x, rc != 0, rc);
        if (rc && !x->stopping) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            pthread_cond_timedwait(&x->cv, &x->mu, &ts);
        } else if (rc) {
            break; /* stopping: given up; the rows are lost, as in a crash */
        }
    }
    answer(x, true, x->save_rc ? x->save_rc : TD_ECLOSED);
    pthread_mutex_unlock(&x->mu);
    return NULL;
}

void xgroups_set_notify(td_engine *e, void (*fn)(void *arg), void *arg)
{
    td_xgroups *x = e->xgroups;
    pthread_mutex_lock(&x->mu);
    x->notify = fn;
    x->notify_arg = arg;
    pthread_mutex_unlock(&x->mu);
}

int xg_writer_need(td_xgroups *x)
{
    if (x->running || x->stopped)
        return 0;
    if (pthread_create(&x->thr, NULL, writer, x) != 0)
        return td_fail(-EAGAIN, "cannot start the Redis consumer group thread");
    x->running = true;
    return 0;
}

static void writer_stop(td_xgroups *x)
{
    pthread_mutex_lock(&x->mu);
    bool running = x->running && !x->stopped;
    x->stopping = true;
    x->stopped = true;
    pthread_cond_broadcast(&x->cv);
    pthread_mutex_unlock(&x->mu);
    if (running)
        pthread_join(x->thr, NULL);
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
    static const struct {
        const char *name, *help;
        int type;
    } fams[] = {
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
    for (size_t f = 0; topics && f < TD_ARRAY_LEN(fams); f++) {
        td_metrics_text_family(out, fams[f].name, fams[f].help, fams[f].type);
        for (size_t i = 0; i < n; i++) {
            if (!topics[i][0])
                continue; /* its topic was deleted meanwhile */
            char part[16];
            snprintf(part, sizeof(part), "%" PRId32, v[i].partition);
            const char *values[] = {topics[i], part, v[i].name};
            td_metrics_text_sample(out, fams[f].name, labels, values, 3, v[i].v[f]);
        }
    }
    if (!topics)
        out->err = out->err ? out->err : -ENOMEM;
    for (size_t i = 0; i < n; i++)
        free(v[i].name);
    free(v);
    free(topics);
}

/* ---------------------------------------------------------------------------------------------
 * Open and close
 */
xgrp *xg_group_insert(xstr *st, td_slice name)
{
    bool found;
    size_t i = xg_name_search((void *const *)st->g, st->n, name, &found);
    xgrp *g = NULL;
    if (found || td_grow(&st->g, &st->cap, st->n, sizeof(*st->g), 4) != 0 ||
        !(g = calloc(1, sizeof(*g))) || !xg_name_set(&g->nm, name)) {
        free(g);
        return NULL;
    }
    g->next_due = INT64_MAX;
    memmove(st->g + i + 1, st->g + i, (st->n - i) * sizeof(*st->g));
    st->g[i] = g;
    st->n++;
    return g;
}

void xg_group_remove(xstr *st, size_t i)
{
    xgrp *g = st->g[i];
    memmove(st->g + i, st->g + i + 1, (st->n - i - 1) * sizeof(*st->g));
    st->n--;
    xg_group_free(g);
}

size_t xg_cons_remove(xgrp *g, xcons *c)
{
    size_t pending = c->pending;
    for (size_t k = 0; k < g->npel && c->pending; k++)
        if (g->pel[k].c == c)
            xg_pel_remove(g, &g->pel[k]);
    bool found;
    size_t i = xg_name_search((void *const *)g->cons, g->ncons,
                              td_slice_make(c->nm.name, c->nm.len), &found);
    if (found) {
        memmove(g->cons + i, g->cons + i + 1, (g->ncons - i - 1) * sizeof(*g->cons));
        g->ncons--;
    }
    free(c->nm.name);
    free(c);
    xg_pel_compact(g);
    return pending;
}

void xg_stream_drop(td_xgroups *x, size_t i)
{
    for (size_t k = 0; k < x->s[i].n; k++)
        xg_group_free(x->s[i].g[k]);
    free(x->s[i].g);
    free(x->s[i].del);
    __atomic_sub_fetch(&x->ndel, x->s[i].ndel, __ATOMIC_RELAXED);
    x->s[i] = x->s[--x->ns];
}

/* A row of the catalog: XDEL's removed entries, and the group rows of a data directory from
 * before __xgroup_state (migrated by xstate_load). */
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
    pe->count = r->count;
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
    pthread_cond_init(&x->cv, NULL);
    pthread_cond_init(&x->done_cv, NULL);
    row_loader l = {x, false};
    pthread_mutex_lock(&e->admin_mu);
    int rc = catalog_xrows_list(e->cat, load_row, &l);
    pthread_mutex_unlock(&e->admin_mu);
    pthread_mutex_lock(&x->mu);
    if (rc == 0)
        rc = xstate_load(x, l.had_rows);
    /* The thread runs only for what needs it: XDEL's rows and queue policies' deadlines. */
    bool need = x->ndel > 0;
    for (size_t i = 0; i < x->ns && !need; i++)
        for (size_t k = 0; k < x->s[i].n && !need; k++)
            need = x->s[i].g[k]->pol != NULL;
    if (rc == 0 && need)
        rc = xg_writer_need(x);
    pthread_mutex_unlock(&x->mu);
    if (rc == 0 && (rc = td_metrics_add_collector(broker_metrics(e), xgroups_collect, x)) != 0)
        writer_stop(x);
    if (rc) {
        writer_stop(x);
        state_free(x);
        xrec_free(x);
        free(x->rows);
        pthread_mutex_destroy(&x->mu);
        pthread_cond_destroy(&x->cv);
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
    pthread_cond_destroy(&x->cv);
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
static int change_done(td_xgroups *x, int rc, uint64_t *seq)
{
    uint64_t s = 0;
    int frc = xrec_flush(x, &s);
    if (seq)
        *seq = s;
    return rc ? rc : frc;
}

int xgroup_create(td_engine *e, const xstream *s, td_slice group, td_sid last, uint64_t *seq)
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
        g->created_ms = td_wall_ms();
        xrec_group(x, st, g);
    }
    rc = change_done(x, rc, seq);
    pthread_mutex_unlock(&x->mu);
    return rc;
}

int xgroup_setid(td_engine *e, const xstream *s, td_slice group, td_sid last, uint64_t *seq)
{
    td_xgroups *x = e->xgroups;
    pthread_mutex_lock(&x->mu);
    xstr *st;
    xgrp *g = xg_group_find(x, s, group, &st);
    if (g) {
        g->last = last;
        xrec_group(x, st, g);
    }
    int rc = change_done(x, g ? 0 : TD_ENOTFOUND, seq);
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
        pthread_cond_signal(&x->cv);
        xrec_group(x, st, g);
        if (copy)
            rc = xg_writer_need(x); /* its deadlines need the thread */
    }
    rc = change_done(x, rc, seq);
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
    int rc = change_done(x, 0, seq);
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
    rc = change_done(x, rc, seq);
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
    int rc = change_done(x, g ? 0 : TD_ENOTFOUND, seq);
    pthread_mutex_unlock(&x->mu);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Reading, acknowledging, claiming
 */
/* The consumer of a name (created if new), seen now. Its record is written when it is new or
 * when record says so: a read that delivers nothing only changes its seen time in memory (kept
 * in the log with the consumer's next change), since its record would wake every blocked
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
        int64_t d = due_at(g, pe);
        if (d > now_ms || is_dead(g, pe)) {
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
        pel_assign(pe, c);
        pe->delivery_ms = now_ms;
        pe->count++;
        g->redelivered++;
        next = TD_MIN(next, due_at(g, pe));
        xrec_pending(x, st, g, pe);
    }
    g->ready = more;
    if (!more) {
        g->next_due = next;
        pthread_cond_signal(&x->cv); /* the thread's sweep may have to run sooner */
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
    if (!(c = consumer_seen(x, st, g, consumer, now_ms, false))) {
        rc = -ENOMEM;
        goto out;
    }
    if (g->pol && !noack && (g->ready || now_ms >= g->next_due)) {
        *nredelivered = redeliver(x, st, g, c, count, now_ms, redelivered, &rc);
        if (rc || (count && *nredelivered >= count))
            goto out;
        if (count)
            count -= *nredelivered;
    }
    int64_t hw = part_high_watermark(s->p), start;
    if ((rc = part_stream_after(s->p, g->last, &start)) != 0)
        goto out;
    int64_t end = start;
    size_t given = 0, d = st->ndel ? del_lower(st, start) : 0;
    td_sid id = {0, 0};
    int64_t run_end = -1, run_off = 0;
    /* A compacted stream has offsets without an entry: walk those that hold one. */
    int64_t *recs = NULL;
    size_t nrecs = 0, ri = 0;
    bool gaps = part_has_gaps(s->p);
    if (gaps &&
        (rc = part_record_offsets(s->p, start, hw, st->ndel ? 0 : count, &recs, &nrecs)) != 0)
        goto out;
    for (int64_t off = start; off < hw && (count == 0 || given < count); off++) {
        if (gaps && ri == nrecs) {
            end = nrecs == count && count ? end : hw; /* past the gaps up to the last entry */
            break;
        }
        if (gaps)
            off = recs[ri++];
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
        g->last = eid;
        given++;
        if (noack)
            continue;
        xpe *pe = xg_pel_add(g, eid, c, now_ms);
        if (!pe) {
            rc = -ENOMEM;
            break;
        }
        pe->count = 1;
        note_due(x, g, pe);
        xrec_pending(x, st, g, pe);
    }
    free(recs);
    if (end > start)
        xrec_group(x, st, g);
    if (rc == TD_ERANGE) /* trimmed meanwhile: what came before is delivered */
        rc = 0;
    *from = start;
    *to = end;
out:
    if (c && (*nredelivered || *to > *from))
        xrec_consumer(x, st, g, c); /* its seen time goes with what it was given */
    rc = change_done(x, rc, seq);
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
        pe->delivery_ms = now_ms;
        pe->count++;
        note_due(x, g, pe);
        xrec_pending(x, st, g, pe);
    }
out:
    if (c && *n)
        xrec_consumer(x, st, g, c); /* its seen time goes with what it was given */
    rc = change_done(x, rc, seq);
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
    int rc = change_done(x, g ? 0 : TD_ENOTFOUND, seq);
    pthread_mutex_unlock(&x->mu);
    return rc;
}

/* Gives a pending entry to c as XCLAIM and XAUTOCLAIM do. */
static void claim_one(td_xgroups *x, xstr *st, xgrp *g, xcons *c, xpe *pe, const xclaim_opts *o,
                      int64_t delivery_ms)
{
    pel_assign(pe, c);
    pe->delivery_ms = delivery_ms;
    if (o->retry_count >= 0)
        pe->count = o->retry_count;
    else if (!o->justid)
        pe->count++;
    note_due(x, g, pe);
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
        if (pe && !entry_live(st, s->p, ids[i])) {
            /* Gone from the stream (trimmed): it leaves the PEL. */
            xrec_pending_gone(x, st, g, pe->id);
            xg_pel_remove(g, pe);
            continue;
        }
        if (pe && o->min_idle_ms > 0 && now_ms - pe->delivery_ms < o->min_idle_ms)
            continue;
        if (!pe && !(o->force && entry_live(st, s->p, ids[i])))
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
            pe->count = 1; /* as Redis's FORCE: a new entry, then claimed (+1) */
        }
        claim_one(x, st, g, c, pe, o, delivery_ms);
        rc = push_id(claimed, nclaimed, &cap, ids[i]);
    }
    xg_pel_compact(g);
out:
    rc = change_done(x, rc, seq);
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
        if (!entry_live(st, s->p, pe->id)) {
            xrec_pending_gone(x, st, g, pe->id);
            rc = push_id(deleted, ndeleted, &dcap, pe->id);
            xg_pel_remove(g, pe);
            count--;
            continue;
        }
        if (o->min_idle_ms > 0 && now_ms - pe->delivery_ms < o->min_idle_ms)
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
    rc = change_done(x, rc, seq);
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
    size_t below = del_lower(st, ls);
    if (below) {
        memmove(st->del, st->del + below, (st->ndel - below) * sizeof(*st->del));
        st->ndel -= below;
        __atomic_sub_fetch(&x->ndel, below, __ATOMIC_RELAXED);
        jrow_del(x, CATALOG_XDEL_PRUNE, st, (td_sid){0, 0}, ls);
    }
    for (size_t i = 0; i < n; i++) {
        int64_t off = entry_offset(s->p, ids[i]);
        if (off < 0 || del_has(st, off))
            continue;
        if (td_grow(&st->del, &st->delcap, st->ndel, sizeof(*st->del), 16) != 0) {
            rc = -ENOMEM;
            break;
        }
        size_t at = del_lower(st, off);
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
    if (x->seq != before && xg_writer_need(x) != 0 && rc == 0)
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
        size_t a = del_lower(st, from), b = del_lower(st, to);
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

/* ---------------------------------------------------------------------------------------------
 * Reading the state
 */
static void group_info(const xgrp *g, xgroup_info *out)
{
    *out = (xgroup_info){.name = td_slice_make(g->nm.name, g->nm.len),
                         .last_id = g->last,
                         .consumers = g->ncons,
                         .pending = g->live};
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
    pthread_mutex_lock(&x->mu);
    xstr *st = xg_stream_find(x, s->topic_id, s->partition);
    for (size_t i = 0; st && i < st->n; i++) {
        xgroup_info gi;
        group_info(st->g[i], &gi);
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
            (min_idle_ms > 0 && now_ms - pe->delivery_ms < min_idle_ms))
            continue;
        xpending_info pi = {pe->id, td_slice_make(pe->c->nm.name, pe->c->nm.len), pe->delivery_ms,
                            pe->count};
        fn(arg, &pi);
        n++;
    }
    pthread_mutex_unlock(&x->mu);
    return g ? 0 : TD_ENOTFOUND;
}
