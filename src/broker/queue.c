/*
 * queue.c: the entries of queue groups and their deliveries (queue.h has the model;
 * docs/queues.md the behaviour): receiving, acks, nacks and extensions, deadlines that pass
 * (the sweep), and dead entries copied out. The rules (backoff, deadlines, when an entry is
 * dead) and the thread that runs the timed work are the delivery core's (delivery.h), shared
 * with Redis consumer groups.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/delivery.h"
#include "broker/pattern.h"
#include "broker/queue_int.h"
#include "broker/state.h"

/* ---------------------------------------------------------------------------------------------
 * Ids
 */
/* The id into buf: two int64 of at most 19 digits, two int32 of at most 10, three dots and
 * the NUL. Called per delivery: no snprintf. */
_Static_assert(19 + 10 + 19 + 10 + 3 + 1 <= TD_QUEUE_ID_MAX, "queue ids fit TD_QUEUE_ID_MAX");
size_t queue_id_text(int64_t topic_id, int32_t partition, int64_t offset, int32_t deliveries,
                     char *buf)
{
    size_t n = td_u64_text(buf, (uint64_t)topic_id);
    buf[n++] = '.';
    n += td_u64_text(buf + n, (uint32_t)partition);
    buf[n++] = '.';
    n += td_u64_text(buf + n, (uint64_t)offset);
    buf[n++] = '.';
    n += td_u64_text(buf + n, (uint32_t)deliveries);
    buf[n] = 0;
    return n;
}

/* ---------------------------------------------------------------------------------------------
 * Entries
 */
/* The index of the first entry at or above offset (p->n: none). */
static size_t lower_bound(const qpart *p, int64_t offset)
{
    size_t lo = 0, hi = p->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->v[mid].offset < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

qentry *queue_entry_find(qpart *p, int64_t offset, size_t *idx)
{
    size_t lo = lower_bound(p, offset);
    if (lo < p->n && p->v[lo].offset == offset) {
        if (idx)
            *idx = lo;
        return &p->v[lo];
    }
    return NULL;
}

qentry *queue_entry_insert(qgroup *g, qpart *p, int64_t offset)
{
    size_t at = p->n && p->v[p->n - 1].offset > offset ? lower_bound(p, offset) : p->n;
    if (td_grow(&p->v, &p->cap, p->n, sizeof(*p->v), 16) != 0)
        return NULL;
    memmove(&p->v[at + 1], &p->v[at], (p->n - at) * sizeof(*p->v));
    p->n++;
    qentry *en = &p->v[at];
    memset(en, 0, sizeof(*en));
    en->offset = offset;
    delivery_entry_init(&en->d);
    g->pending++;
    return en;
}

void queue_consumer_release(qgroup *g, qentry *en)
{
    if (en->d.state == DELIVERY_INFLIGHT && en->d.owner >= 0 && (size_t)en->d.owner < g->ncons &&
        g->cons[en->d.owner].inflight > 0)
        g->cons[en->d.owner].inflight--;
    en->d.owner = -1;
}

/* The entry is done: left as a gap (state 0) that part_compact removes once gaps are a quarter
 * of the entries, so that acks move the rest rarely, not once per ack; every loop over entries
 * skips gaps. Under ordering=key, the next held event of its key is released: the first live
 * entry of its key, which comes after it, or before it when a delayed event fell due while
 * this one was out (qsched_promote holds it then). */
static void entry_done(qgroup *g, qpart *p, size_t idx, int64_t now)
{
    qentry *en = &p->v[idx];
    queue_consumer_release(g, en);
    if (g->pol.ordering == TD_QUEUE_BY_KEY && (en->d.flags & QF_KEY)) {
        for (size_t i = 0; i < p->n; i++) {
            qentry *h = &p->v[i];
            if (i != idx && h->d.state && (h->d.flags & QF_KEY) && h->key_hash == en->key_hash) {
                if (h->d.state == DELIVERY_HELD) {
                    delivery_release(&h->d, now);
                    g->next_due = now < g->next_due ? now : g->next_due;
                    qs_touch(g, p, h);
                }
                break;
            }
        }
    }
    qs_touch(g, p, en); /* before the state goes: a tombstone at the flush */
    free(en->error);
    en->error = NULL;
    delivery_done(&en->d);
    p->gone++;
    g->pending--;
}

/* Removes the gaps entry_done left, once they are a quarter of the entries: an ack costs
 * O(1) amortized, not a move of every entry above it, whatever the number pending. */
static void part_compact(qpart *p)
{
    if (!p->gone || p->gone * 4 < p->n)
        return;
    size_t k = 0;
    for (size_t i = 0; i < p->n; i++)
        if (p->v[i].d.state)
            p->v[k++] = p->v[i];
    p->n = k;
    p->gone = 0;
}

static double rnd(td_queues *q)
{
    /* xorshift64*: jitter needs spread, not secrecy. */
    q->rng ^= q->rng >> 12;
    q->rng ^= q->rng << 25;
    q->rng ^= q->rng >> 27;
    return (double)((q->rng * 2685821657736338717ull) >> 11) / (double)(1ull << 53);
}

/* An in-flight entry failed (nacked, or its deadline passed): waiting, or dead after the last
 * delivery allowed. delay_ms < 0: the backoff. */
static void entry_fail(td_queues *q, qgroup *g, qpart *p, qentry *en, int64_t now, int64_t delay_ms,
                       const char *error)
{
    queue_consumer_release(g, en);
    if (error) {
        size_t n = strnlen(error, MAX_ERROR);
        char *e = malloc(n + 1);
        if (e) {
            memcpy(e, error, n);
            e[n] = 0;
            free(en->error);
            en->error = e;
        }
    }
    /* While the circuit is not closed a failure is the outage's: the delivery is not counted
     * against max.deliveries, so nothing is dead-lettered because a dependency is down. */
    if (qc_forgives(g) && en->d.deliveries > 0)
        en->d.deliveries--;
    bool dead;
    double r = g->pol.backoff_jitter > 0 ? rnd(q) : 0.5;
    int64_t at = delivery_fail(&en->d, &g->pol, now, delay_ms, r, &dead);
    if (dead)
        g->has_dead = true;
    else
        delivery_note_due(q->dc, &g->next_due, at); /* receivers are told when it is due */
    qs_touch(g, p, en);
}

/* The group's entries for the core's sweep (delivery.h): one span per partition. */
typedef struct sweep_walk {
    td_queues *q;
    qgroup *g;
    qpart *p; /* the span last given */
    size_t i; /* the next partition */
    const char *msg;
} sweep_walk;

static bool sweep_next(void *arg, delivery_span *span)
{
    sweep_walk *w = arg;
    if (w->i >= w->g->nall)
        return false;
    w->p = w->g->all[w->i++].p;
    *span = (delivery_span){w->p->n ? &w->p->v[0].d : NULL, w->p->n, sizeof(qentry)};
    return true;
}

static void sweep_expired(void *arg, size_t k, delivery_entry *d, int64_t now)
{
    (void)d;
    sweep_walk *w = arg;
    qc_record(w->q, w->g, now, true); /* an ack timeout is a failure for the circuit */
    entry_fail(w->q, w->g, w->p, &w->p->v[k], now, -1, w->msg);
    queue_notify(w->q);
}

/* Deadlines that passed become failures. Returns the earliest deadline still ahead (or
 * INT64_MAX), and sets *dead when an entry is dead. */
static int64_t sweep(td_queues *q, qgroup *g, int64_t now, bool *dead)
{
    *dead |= g->has_dead;
    if (now < g->next_deadline)
        return g->next_deadline;
    char msg[80];
    delivery_timeout_text(&g->pol, msg, sizeof(msg));
    sweep_walk w = {q, g, NULL, 0, msg};
    g->next_deadline = delivery_sweep(&(delivery_walk){sweep_next, sweep_expired, &w}, now, dead);
    return g->next_deadline;
}

/* ---------------------------------------------------------------------------------------------
 * The timed work: deadlines, dead letters
 */
typedef struct dead_job {
    char group[TD_TOPIC_NAME_MAX + 1];
    char topic[TD_TOPIC_NAME_MAX + 1];
    char dlq[TD_TOPIC_NAME_MAX + 1]; /* "": <topic>.dlq is too long a name */
    int64_t topic_id;
    int32_t partition;
    int64_t offset, first_fail, last_fail;
    int32_t deliveries;
    char error[MAX_ERROR + 1];
} dead_job;

/* Copies a dead entry of a queue group out. */
static int dead_letter(td_engine *e, const dead_job *j)
{
    delivery_dead d = {j->topic,
                       j->partition,
                       j->offset,
                       j->dlq,
                       td_slice_make(j->group, strlen(j->group)),
                       j->deliveries,
                       j->first_fail,
                       j->last_fail,
                       j->error};
    return delivery_dead_letter(e, &d);
}

/* One dead entry of any group, copied out; false if none is ready. Under q->mu. */
static bool dead_take(td_queues *q, int64_t now, dead_job *j)
{
    for (size_t i = 0; i < q->n; i++) {
        qgroup *g = q->g[i];
        if (!g->has_dead || g->dead_retry_at > now)
            continue;
        for (size_t pi = 0; pi < g->nall; pi++) {
            const qtopic *t = g->all[pi].t;
            const qpart *p = g->all[pi].p;
            for (size_t k = 0; k < p->n; k++) {
                const qentry *en = &p->v[k];
                if (en->d.state != DELIVERY_DEAD)
                    continue;
                memset(j, 0, sizeof(*j));
                snprintf(j->group, sizeof(j->group), "%s", g->name);
                memcpy(j->topic, t->name, t->len + 1);
                j->topic_id = t->id;
                if (!queue_dlq_name(g->pol.dead_letter_topic, t->name, j->dlq, sizeof(j->dlq)))
                    j->dlq[0] = 0;
                j->partition = p->partition;
                j->offset = en->offset;
                j->first_fail = en->d.first_fail;
                j->last_fail = en->d.last_fail;
                j->deliveries = en->d.deliveries;
                snprintf(j->error, sizeof(j->error), "%s", en->error ? en->error : "");
                return true;
            }
        }
        g->has_dead = false; /* none left */
    }
    return false;
}

static void dead_done(td_queues *q, const dead_job *j, int rc, int64_t now)
{
    qgroup *g = queue_group_find(q, j->group, NULL);
    qtopic *t = g ? queue_topic_find(g, j->topic) : NULL;
    if (!t || t->id != j->topic_id || j->partition >= t->nparts)
        return;
    if (rc) {
        TD_WARN("queue",
                "group %s: cannot write %s/%" PRId32 "@%" PRId64
                " to dead-letter topic %s: %s; retrying",
                g->name, j->topic, j->partition, j->offset, j->dlq, td_last_error());
        g->dead_retry_at = now + DELIVERY_RETRY_MS;
        return;
    }
    qpart *p = &t->parts[j->partition];
    size_t idx;
    qentry *en = queue_entry_find(p, j->offset, &idx);
    if (en && en->d.state == DELIVERY_DEAD) {
        entry_done(g, p, idx, now);
        part_compact(p);
        g->dead_lettered++;
        qs_flush(q, g, NULL); /* copied: its tombstone (a crash before copies it again) */
        queue_notify(q);
    }
}

/* The queues' timed work, on the delivery service's thread: deadlines that passed become
 * failures (their records written), then one dead entry is copied out, outside the lock since
 * it writes to a topic; with more to do it asks to run again at once, so that the Redis groups'
 * work on the same thread is not kept waiting behind a long run of dead letters. */
int64_t queue_work(void *arg, int64_t now)
{
    td_queues *q = arg;
    pthread_mutex_lock(&q->mu);
    /* A second at the latest: a deadline set by a delivery asks for no wake-up of its own. */
    int64_t wake = q->n ? now + IDLE_WAKE_MS : INT64_MAX;
    bool dead = false, due = false;
    q->scan_turns = 1;
    for (size_t i = 0; i < q->n; i++) {
        qgroup *g = q->g[i];
        int64_t t = sweep(q, g, now, &dead);
        int64_t s = qsched_work(q, g, now); /* the delayed events' horizon and rescans */
        qs_flush(q, g, NULL); /* deadlines that passed: waiting or dead entries */
        if (t < wake)
            wake = t;
        if (s < wake)
            wake = s;
        if ((t = qc_tick(q, g, now)) < wake) /* an open circuit's time to go half-open */
            wake = t;
        if (g->dead_retry_at > now && g->dead_retry_at < wake)
            wake = g->dead_retry_at;
        /* A backoff that ended: receivers waiting (long polls) are told; the next receive
         * takes the entry and moves next_due past it. So are they when a receive stopped
         * reading at READ_BUDGET. */
        if (g->next_due <= now || g->read_more)
            due = true;
        else if (g->next_due < wake)
            wake = g->next_due;
        g->read_more = false;
    }
    if (due)
        queue_notify(q);
    dead_job job;
    if (dead && !q->stopping && dead_take(q, now, &job)) {
        pthread_mutex_unlock(&q->mu);
        int rc = dead_letter(q->e, &job);
        pthread_mutex_lock(&q->mu);
        dead_done(q, &job, rc, td_wall_ms());
        wake = 0;
    }
    if (!q->stopping) {
        int64_t f = queue_forward_run(q, td_wall_ms());
        wake = f < wake ? f : wake;
    }
    pthread_mutex_unlock(&q->mu);
    return wake;
}

void queue_wake(td_queues *q, int64_t at)
{
    if (q->dc && delivery_wake(q->dc, at) != 0)
        TD_WARN("queue", "cannot wake the delivery thread: %s", td_last_error());
}

/* ---------------------------------------------------------------------------------------------
 * Receiving
 */
typedef struct msgs {
    td_queue_msg *v;
    size_t n, cap;
} msgs;

/* Appends a copy of ev (its bytes in one block owned by the message). */
static int msg_add(msgs *m, const qtopic *t, const qpart *p, const qentry *en, const td_event *ev)
{
    if (td_grow(&m->v, &m->cap, m->n, sizeof(*m->v), 16) != 0)
        return -ENOMEM;
    td_queue_msg *msg = &m->v[m->n];
    memset(msg, 0, sizeof(*msg));
    /* Freed through event.headers (td_queue_msgs_free). */
    if (!broker_event_copy(ev, NULL, &msg->event))
        return -ENOMEM;
    m->n++;
    queue_id_text(t->id, p->partition, en->offset, en->d.deliveries, msg->id);
    memcpy(msg->topic, t->name, t->len + 1);
    msg->deliveries = en->d.deliveries;
    return 0;
}

void td_queue_msgs_free(td_queue_msg *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free((void *)v[i].event.headers);
    free(v);
}

static void deliver(qgroup *g, qpart *p, qentry *en, int slot, int64_t now)
{
    qs_touch(g, p, en);
    int64_t at = delivery_deliver(&en->d, slot, now, g->pol.ack_timeout_ms);
    /* No wake-up of its own: the sweep runs at least once a second, and every receive and
     * outcome sweeps the group first, so a deadline is a failure by the time anyone could see
     * it. (A wake-up at each first deadline was tried: it moves the failure time of an entry
     * that a slow client then nacks to before the nack, and the backoff with it.) */
    g->next_deadline = at < g->next_deadline ? at : g->next_deadline;
    if (slot >= 0)
        g->cons[slot].inflight++;
    if (en->d.deliveries > 1)
        g->redelivered++;
}

/* Redeliveries due now, lowest offsets first. */
static int take_due(td_queues *q, qgroup *g, int slot, size_t want, int64_t now, msgs *m)
{
    if (now < g->next_due)
        return 0;
    int64_t next_due = qsched_promote(g, now, want); /* delayed events that fell due */
    for (size_t pi = 0; pi < g->nall; pi++) {
        const qtopic *t = g->all[pi].t;
        qpart *p = g->all[pi].p;
        /* One iterator per partition, read forward from one due entry to the next. */
        td_iter *it = NULL;
        int64_t pos = -1; /* the offset the iterator returns next */
        int rc = 0;
        for (size_t k = 0; k < p->n && rc == 0; k++) {
            qentry *en = &p->v[k];
            if (en->d.state != DELIVERY_WAITING)
                continue;
            if (en->d.at > now || m->n >= want) {
                next_due = en->d.at < next_due ? en->d.at : next_due;
                continue;
            }
            if (it && (pos > en->offset || en->offset - pos > 256)) {
                td_iter_close(it);
                it = NULL;
            }
            if (!it && (rc = td_iter_open(q->e, t->name, p->partition, en->offset, &it)) != 0)
                it = NULL;
            td_event ev = {0};
            int r = 0;
            while (rc == 0 && (r = td_iter_next(it, &ev)) == 1 && ev.offset < en->offset)
                ;
            if (rc == 0 && r < 0)
                rc = r;
            pos = rc == 0 && r == 1 ? ev.offset + 1 : INT64_MAX;
            if (rc == 0 && r == 1 && ev.offset == en->offset) {
                deliver(g, p, en, slot, now);
                rc = msg_add(m, t, p, en, &ev);
            } else if (rc == 0 || rc == TD_ERANGE) {
                /* Deleted by retention (or records deleted): nothing to deliver. */
                entry_done(g, p, k, now);
                rc = 0;
            }
        }
        part_compact(p);
        if (it)
            td_iter_close(it);
        if (rc < 0)
            return rc;
    }
    g->next_due = next_due;
    /* The service runs then (it sleeps up to IDLE_WAKE_MS otherwise), to tell receivers that
     * wait: a delayed event is delivered at its time, not at the next poll. */
    if (next_due != INT64_MAX && q->dc && delivery_wake(q->dc, next_due) != 0)
        td_error_clear();
    return 0;
}

/* The partition's iterator at next, repositioned at the log start when retention passed it. */
static int part_iter(td_queues *q, qgroup *g, const qtopic *t, qpart *p, int64_t now)
{
    if (p->it)
        return 0;
    int rc = td_iter_open(q->e, t->name, p->partition, p->next, &p->it);
    if (rc != TD_ERANGE)
        return rc;
    int64_t start = 0, end = 0;
    td_offset_for(q->e, t->name, p->partition, TD_OFFSET_EARLIEST, &start);
    td_offset_for(q->e, t->name, p->partition, TD_OFFSET_LAST_STABLE, &end);
    int64_t to = p->next < start ? start : end;
    TD_WARN("queue", "group %s: %s/%" PRId32 " offset %" PRId64 " is gone; going on at %" PRId64,
            g->name, t->name, p->partition, p->next, to);
    for (size_t k = 0; k < p->n && p->v[k].offset < to && p->v[k].offset < start; k++)
        if (p->v[k].d.state)
            entry_done(g, p, k, now);
    part_compact(p);
    p->next = to;
    p->dirty = true;
    return td_iter_open(q->e, t->name, p->partition, p->next, &p->it);
}

/* New events, one per partition per round, while the limits allow. Delayed events it only
 * schedules count against READ_BUDGET: past it, the receive ends (a reader that meets a
 * million of them does not hold the mutex for as long), and g->read_more has the delivery
 * thread wake the receivers that wait, to read on. */
#define READ_BUDGET 4096
static int take_new(td_queues *q, qgroup *g, int slot, size_t want, int64_t now, msgs *m)
{
    bool progress = true;
    size_t scheduled = 0;
    const qtopic *dflt_of = NULL;
    int64_t dflt = 0;
    while (progress && m->n < want && g->pending < g->pol.max_in_flight && qsched_room(q, g)) {
        progress = false;
        for (size_t r = 0;
             r < g->nall && m->n < want && g->pending < g->pol.max_in_flight && qsched_room(q, g);
             r++) {
            const qref *ref = &g->all[(g->rr + r) % g->nall];
            qpart *p = ref->p;
            int rc = part_iter(q, g, ref->t, p, now);
            if (rc)
                return rc;
            td_event ev;
            rc = td_iter_next(p->it, &ev);
            if (rc < 0)
                return rc;
            if (rc == 0)
                continue;
            progress = true;
            p->next = ev.offset + 1;
            p->dirty = true;
            /* A delayed event not due yet is scheduled (queue_sched.c), not delivered. */
            if (ref->t != dflt_of) { /* the topic's delivery.delay.ms, once a call per topic */
                dflt_of = ref->t;
                dflt = qsched_topic_delay(q->e, ref->t->name);
            }
            qsched_read(p, ev.offset, dflt);
            bool by_header;
            int64_t due = qsched_due_of(&ev, dflt, &by_header);
            if (due > 0 && (rc = qsched_take(q, g, ref->t, p, &ev, due, by_header, now)) <= 0) {
                if (rc < 0)
                    return rc;
                if (++scheduled >= READ_BUDGET) {
                    g->read_more = true;
                    return 0;
                }
                continue;
            }
            qentry *en = queue_entry_insert(g, p, ev.offset);
            if (!en)
                return -ENOMEM;
            en->event_ms = ev.timestamp_ms;
            if (ev.key) {
                en->d.flags |= QF_KEY;
                en->key_hash = td_hash64(ev.key, ev.key_len);
            }
            bool held = false;
            if (g->pol.ordering == TD_QUEUE_BY_KEY && (en->d.flags & QF_KEY))
                for (size_t k = 0; k + 1 < p->n && !held; k++)
                    held = p->v[k].d.state && (p->v[k].d.flags & QF_KEY) &&
                           p->v[k].key_hash == en->key_hash;
            if (held) {
                delivery_hold(&en->d);
                qs_touch(g, p, en);
                continue;
            }
            deliver(g, p, en, slot, now);
            if ((rc = msg_add(m, ref->t, p, en, &ev)) != 0)
                return rc;
        }
        g->rr = g->nall ? (g->rr + 1) % g->nall : 0;
    }
    return 0;
}

int queue_receive_locked(td_queues *q, qgroup *g, const char *consumer, size_t max,
                         td_queue_msg **out, size_t *n)
{
    msgs m = {0};
    bool changed = false;
    int rc = queue_group_sync(q->e, g, false, &changed);
    if (rc == 0) {
        int64_t now = td_wall_ms();
        bool dead = false;
        sweep(q, g, now, &dead);
        if (dead)
            queue_wake(q, 0);
        int slot = queue_consumer_slot(g, consumer && *consumer ? consumer : "-", now,
                                       g->pol.ack_timeout_ms * 10);
        int64_t room = slot >= 0 ? g->pol.max_in_flight_per_consumer - g->cons[slot].inflight : 0;
        size_t want = room <= 0 ? 0 : (size_t)room < max ? (size_t)room : max;
        qc_tick(q, g, now);
        want = qc_allow(g, want); /* none while the circuit is open, the trials when half-open */
        if (slot < 0)
            rc = td_fail(TD_EFULL, "queue group '%s' has %d consumers", g->name, MAX_CONSUMERS);
        if (rc == 0 && want)
            rc = take_due(q, g, slot, want, now, &m);
        if (rc == 0 && m.n < want)
            rc = take_new(q, g, slot, want, now, &m);
        qc_delivered(g, m.n);
        if (g->read_more)
            queue_wake(q, 0);
    }
    /* Deliveries are not waited for: a crash before their records are durable delivers the
     * events again (at least once); an ack waits for them, being after them in the log. */
    int frc = qs_flush(q, g, NULL);
    if (frc && m.n == 0 && rc == 0)
        rc = frc;
    if (rc && m.n == 0) {
        td_queue_msgs_free(m.v, m.n);
        return rc;
    }
    *out = m.v;
    *n = m.n;
    return 0;
}

int td_queue_receive(td_engine *e, const char *group, const char *consumer, size_t max,
                     td_queue_msg **out, size_t *n)
{
    td_error_clear();
    td_queues *q = queues_of(e);
    if (!q || !group || !out || !n)
        return td_fail(TD_EINVAL, "td_queue_receive needs an engine, a group and out pointers");
    *out = NULL;
    *n = 0;
    int64_t start = td_wall_ms();
    pthread_mutex_lock(&q->mu);
    qgroup *g = queue_group_find(q, group, NULL);
    int rc = !g ? td_fail(TD_ENOTFOUND, "queue group '%s' does not exist", group)
             : g->pol.forward_to[0]
                 ? td_fail(TD_EINVAL,
                           "queue group '%s' forwards its events to topic '%s': read them there",
                           group, g->pol.forward_to)
                 : queue_receive_locked(q, g, consumer, max, out, n);
    pthread_mutex_unlock(&q->mu);
    if (rc == 0)
        engine_trace_received(e, group, *out, *n, start);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Outcomes
 */
enum { OP_ACK = QUEUE_ACK, OP_NACK = QUEUE_NACK, OP_EXTEND = QUEUE_EXTEND };
#define OP_BROKER 0x100 /* the broker's own outcome: a forwarding group's (queue_forward.c) */

/* The in-flight entry an id names, or NULL with *rc set. */
static qentry *entry_of(qgroup *g, const char *id, qpart **pp, size_t *idx, int *rc)
{
    int64_t topic_id, offset;
    int32_t partition, deliveries;
    qtopic *t = NULL;
    if (!queue_id_parse(id, &topic_id, &partition, &offset, &deliveries) ||
        !(t = queue_topic_by_id(g, topic_id)) || partition >= t->nparts) {
        *rc = TD_EINVAL;
        return NULL;
    }
    qpart *p = &t->parts[partition];
    qentry *en = queue_entry_find(p, offset, idx);
    if (!en || en->d.state != DELIVERY_INFLIGHT || en->d.deliveries != deliveries) {
        *rc = en || offset < p->next ? TD_ESTALE : TD_EINVAL;
        return NULL;
    }
    *pp = p;
    *rc = 0;
    return en;
}

/* Applies the outcome and appends its records; then, when something changed: with done,
 * asks to have it called once they are durable and returns 1; without, waits for them. */
static int outcome(td_engine *e, const char *group, const char *const *ids, size_t n, int op,
                   int64_t ms, const char *error, int *results, queue_done_fn done, void *arg)
{
    td_error_clear();
    td_queues *q = queues_of(e);
    if (!q || !group || (n && !ids))
        return td_fail(TD_EINVAL, "queue outcome calls need an engine, a group and ids");
    bool broker = op & OP_BROKER;
    op &= ~OP_BROKER;
    pthread_mutex_lock(&q->mu);
    qgroup *g = queue_group_find(q, group, NULL);
    if (!g || q->stopping || (g->pol.forward_to[0] && !broker)) {
        int rc = !g            ? td_fail(TD_ENOTFOUND, "queue group '%s' does not exist", group)
                 : q->stopping ? td_fail(TD_ECLOSED, "the queues are shutting down")
                               : td_fail(TD_EINVAL,
                                         "queue group '%s' forwards its events to topic '%s': the "
                                         "broker settles its deliveries",
                                         group, g->pol.forward_to);
        pthread_mutex_unlock(&q->mu);
        return rc;
    }
    int64_t now = td_wall_ms();
    bool dead = false;
    sweep(q, g, now, &dead); /* a deadline that passed is a failure, whatever comes now */
    size_t changed = 0;
    for (size_t i = 0; i < n; i++) {
        qpart *p = NULL;
        size_t idx = 0;
        int rc;
        qentry *en = ids[i] ? entry_of(g, ids[i], &p, &idx, &rc) : (rc = TD_EINVAL, NULL);
        if (en) {
            changed++;
            if (op == OP_ACK) {
                entry_done(g, p, idx, now);
                g->acked++;
                qc_record(q, g, now, false);
            } else if (op == OP_NACK) {
                qc_record(q, g, now, true);
                entry_fail(q, g, p, en, now, ms, error);
                dead |= en->d.state == DELIVERY_DEAD;
            } else {
                qs_touch(g, p, en);
                delivery_extend(&en->d, &g->pol, now, ms);
            }
        }
        if (results)
            results[i] = rc;
    }
    for (size_t i = 0; op == OP_ACK && i < g->nall; i++)
        part_compact(g->all[i].p);
    int64_t end = -1;
    int32_t part = qs_partition(q, g);
    int rc = qs_flush(q, g, &end);
    if (changed)
        queue_notify(q);
    if (dead)
        queue_wake(q, 0);
    pthread_mutex_unlock(&q->mu);
    if (rc || !changed || end < 0)
        return rc;
    if (!done)
        return qs_wait(q, part, end);
    rc = state_when_durable(e, STATE_QUEUES, part, end, done, arg);
    return rc ? rc : 1;
}

int queue_outcome_async(td_engine *e, const char *group, const char *const *ids, size_t n, int op,
                        int64_t ms, const char *error, int *results, queue_done_fn done, void *arg)
{
    if (!done)
        return td_fail(TD_EINVAL, "queue_outcome_async needs a completion");
    return outcome(e, group, ids, n, op, ms, error, results, done, arg);
}

void queue_set_notify(td_engine *e, void (*fn)(void *arg), void *arg)
{
    td_queues *q = queues_of(e);
    if (!q)
        return;
    pthread_mutex_lock(&q->mu);
    q->notify = fn;
    q->notify_arg = arg;
    pthread_mutex_unlock(&q->mu);
}

int queue_forward_settle(td_engine *e, const char *group, const char *const *ids, size_t n, bool ok,
                         const char *error)
{
    return outcome(e, group, ids, n, (ok ? OP_ACK : OP_NACK) | OP_BROKER, -1, error, NULL, NULL,
                   NULL);
}

int td_queue_ack(td_engine *e, const char *group, const char *const *ids, size_t n, int *results)
{
    return outcome(e, group, ids, n, OP_ACK, 0, NULL, results, NULL, NULL);
}

int td_queue_nack(td_engine *e, const char *group, const char *const *ids, size_t n,
                  int64_t delay_ms, const char *error, int *results)
{
    return outcome(e, group, ids, n, OP_NACK, delay_ms < 0 ? -1 : delay_ms, error, results, NULL,
                   NULL);
}

int td_queue_extend(td_engine *e, const char *group, const char *const *ids, size_t n, int64_t ms,
                    int *results)
{
    return outcome(e, group, ids, n, OP_EXTEND, ms < 0 ? -1 : ms, NULL, results, NULL, NULL);
}
