/*
 * queue_sched.c: delayed delivery in queue groups (docs/queues.md#delayed-delivery).
 *
 * An event names its delivery time with a header (tidings-deliver-at: ms since the epoch;
 * tidings-delay-ms: after its timestamp), or its topic's delivery.delay.ms does. The log keeps
 * it in order of arrival; a queue group delivers it from that time on.
 *
 * A partition's reader (queue.c take_new) reads events in order of offset. One that is not due
 * yet becomes a *scheduled* event: a small item in the partition's heap ordered by due time
 * (40 bytes, not an entry), with its record (state DELIVERY_SCHEDULED) in __queue_state. When
 * it falls due, a receive makes it an entry waiting since its due time (qsched_promote), and it
 * is delivered like any redelivery that fell due; the delivery thread wakes the receivers
 * then (the group's next_due).
 *
 * Memory proportional to what is due soon, not to all that is scheduled: the reader takes into
 * the heap only what is due by the partition's horizon `hw`, which the partition keeps between
 * queue.schedule.horizon.ms and twice that ahead of the clock. A delayed event due later is
 * *far*: not kept at all, only the lowest offset (far_from) and the earliest due time (far_min)
 * of the far events. Before far_min comes within the horizon, the delivery thread rescans the log
 * from far_from to where the reader was (a bounded step per run) and takes what is due by the
 * new horizon. The invariant that makes each event taken once: every delayed event below the
 * reader's position that is due by hw was taken; an event read during a rescan is taken by the
 * reader when due by the rescan's target, else it is far for the next one.
 *
 * Events delayed by their topic's delivery.delay.ms (no header) are far like the others: the
 * setting can change, so the partition keeps its *eras*, the value the reader found from each
 * offset on (four, those a rescan may still need), and a rescan reads an event's
 * default delay from its era. When a change finds the eras full, the last slot is a fallback
 * era: events without a header are taken when read whatever their time (bounded by
 * queue.scheduled.max), and rescans pass them over.
 *
 * Crashes: a scheduled event's record is appended before the position record that moved past
 * it, in the same flush. At replay a scheduled record at or above the reader's position is
 * dropped (the reader reads it again), and so is one that the rescan in progress will take
 * again, unless its reader took it in a fallback era, which its record says (qsched_restore).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/base.h"
#include "broker/queue_int.h"

#define SCAN_STEP 4096 /* events a rescan reads per run of the delivery thread */

/* Tests: rescans start but take no step while set (a crash image mid-rescan). */
static bool test_hold;
void qsched_test_hold_rescans(bool hold)
{
    __atomic_store_n(&test_hold, hold, __ATOMIC_RELAXED);
}

/* ---------------------------------------------------------------------------------------------
 * Due times
 */
static bool hname(const td_header *h, const char *name)
{
    size_t n = strlen(name);
    return h->key_len == n && !strncasecmp(h->key, name, n);
}

/* A decimal integer of 1 to 18 digits (a leading '-' for delays), or false. */
static bool decimal(const td_header *h, bool sign, int64_t *out)
{
    const char *s = h->value;
    size_t n = h->value_len, i = 0;
    bool neg = false;
    if (!s || !n)
        return false;
    if (sign && s[0] == '-') {
        neg = true;
        i = 1;
    }
    if (n - i == 0 || n - i > 18)
        return false;
    int64_t v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = neg ? -v : v;
    return true;
}

/* The first header named `name` whose value is a decimal integer (one that does not parse is
 * passed over, so it cannot hide a good one). */
static bool hvalue(const td_event *ev, const char *name, bool sign, int64_t *out)
{
    for (size_t i = 0; i < ev->header_count; i++)
        if (hname(&ev->headers[i], name) && decimal(&ev->headers[i], sign, out))
            return true;
    return false;
}

/* t + d for a delay d >= 0, saturating: a timestamp near the end of time is not a wrap to the
 * past (which would deliver at once). */
static int64_t plus(int64_t t, int64_t d)
{
    int64_t r;
    return __builtin_add_overflow(t, d, &r) ? INT64_MAX - 1 : r;
}

static bool explicit_due(const td_event *ev, int64_t *due)
{
    int64_t v;
    if (hvalue(ev, TD_DELIVER_AT_HEADER, false, &v)) {
        *due = v;
        return true;
    }
    if (hvalue(ev, TD_DELAY_HEADER, true, &v)) {
        *due = v > 0 ? plus(ev->timestamp_ms, v) : 0;
        return true;
    }
    return false;
}

int64_t qsched_due_of(const td_event *ev, int64_t default_delay, bool *by_header)
{
    int64_t due;
    bool h = ev->header_count && explicit_due(ev, &due);
    if (by_header)
        *by_header = h;
    if (h)
        return due > 0 ? due : 0;
    return default_delay > 0 && ev->timestamp_ms > 0 ? plus(ev->timestamp_ms, default_delay) : 0;
}

int td_delay_header(bool at, int64_t ms, char *text, td_header *h)
{
    if (at ? ms <= 0 || ms > TD_DELIVER_AT_MAX : ms < 0 || ms > TD_DELAY_MAX_MS)
        return td_fail(TD_EINVAL, "%s must be %s", at ? "a delivery time" : "a delay",
                       at ? "1 to 999999999999999999 ms since 1970" : "0 to ten years in ms");
    int n = snprintf(text, TD_DELAY_TEXT_MAX, "%" PRId64, ms);
    const char *name = at ? TD_DELIVER_AT_HEADER : TD_DELAY_HEADER;
    *h = (td_header){name, strlen(name), text, (size_t)n};
    return 0;
}

int64_t qsched_topic_delay(td_engine *e, const char *topic)
{
    int64_t d = 0;
    pthread_rwlock_rdlock(&e->lock);
    td_topic *t = engine_find_locked(e, topic);
    if (t) {
        pthread_mutex_lock(&t->cfg_mu);
        d = t->cfg.delivery_delay_ms;
        pthread_mutex_unlock(&t->cfg_mu);
    }
    pthread_rwlock_unlock(&e->lock);
    return d;
}

/* ---------------------------------------------------------------------------------------------
 * The heap
 */
static bool before(const qsched *a, const qsched *b)
{
    return a->due != b->due ? a->due < b->due : a->offset < b->offset;
}

static int heap_push(qpart *p, const qsched *s)
{
    if (td_grow(&p->sv, &p->scap, p->sn, sizeof(*p->sv), 64) != 0)
        return -ENOMEM;
    size_t i = p->sn++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!before(s, &p->sv[up]))
            break;
        p->sv[i] = p->sv[up];
        i = up;
    }
    p->sv[i] = *s;
    return 0;
}

static qsched heap_pop(qpart *p)
{
    qsched top = p->sv[0], last = p->sv[--p->sn];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= p->sn)
            break;
        if (c + 1 < p->sn && before(&p->sv[c + 1], &p->sv[c]))
            c++;
        if (!before(&p->sv[c], &last))
            break;
        p->sv[i] = p->sv[c];
        i = c;
    }
    if (p->sn)
        p->sv[i] = last;
    if (p->sn == 0 && p->scap > 4096) { /* a burst went: its memory too */
        free(p->sv);
        p->sv = NULL;
        p->scap = 0;
    } else if (p->scap > 4096 && p->sn < p->scap / 4) { /* most of it: half its memory */
        qsched *v = realloc(p->sv, p->scap / 2 * sizeof(*v));
        if (v) {
            p->sv = v;
            p->scap /= 2;
        }
    }
    return top;
}

void qsched_part_init(qpart *p)
{
    p->far_from = p->far_min = QS_NONE;
    p->scan_far_from = p->scan_far_min = QS_NONE;
}

void qsched_part_free(qgroup *g, qpart *p)
{
    g->scheduled -= (int64_t)p->sn;
    free(p->sv);
    p->sv = NULL;
    p->sn = p->scap = 0;
}

/* A scheduled event's record: an entry record of state DELIVERY_SCHEDULED due at s->due. */
static void record(qgroup *g, const qtopic *t, const qpart *p, const qsched *s, bool tomb)
{
    qentry x = {.offset = s->offset, .event_ms = s->event_ms, .key_hash = s->key_hash};
    x.d.state = DELIVERY_SCHEDULED;
    x.d.at = s->due;
    x.d.owner = -1;
    x.d.flags = (uint8_t)((s->has_key ? QF_KEY : 0) | (s->at_read ? QF_AT_READ : 0));
    qs_entry_record(g, t, p, s->offset, tomb ? NULL : &x);
}

void qsched_records(qgroup *g, const qtopic *t, const qpart *p, bool tomb)
{
    for (size_t i = 0; i < p->sn; i++)
        record(g, t, p, &p->sv[i], tomb);
}

static int64_t horizon(const td_queues *q)
{
    int64_t h = q->e->opts.queue_schedule_horizon_ms;
    return h > 0 ? h : 60000;
}

bool qsched_room(const td_queues *q, const qgroup *g)
{
    int64_t max = q->e->opts.queue_scheduled_max;
    return g->scheduled < (max > 0 ? max : 1000000);
}

/* Keeps the horizon between one and two horizons ahead of now, but never past a far event
 * (that takes a rescan, qsched_work). */
static void raise_hw(td_queues *q, qpart *p, int64_t now)
{
    int64_t h = horizon(q);
    if (p->scan_to || p->hw >= now + h)
        return;
    int64_t to = now + 2 * h;
    if (p->far_from != QS_NONE && p->far_min <= to)
        to = p->far_min - 1;
    if (to > p->hw) {
        p->hw = to;
        p->dirty = true;
    }
}

/* ---------------------------------------------------------------------------------------------
 * Eras of the topic's default delay
 */
/* Eras entirely below every offset a rescan may still read go (the last one stays). */
static void era_trim(qpart *p)
{
    int64_t lo = p->far_from;
    if (p->scan_to && p->scan_pos < lo)
        lo = p->scan_pos;
    size_t k = 0;
    while (k + 1 < (size_t)p->neras && p->eras[k + 1].from <= lo)
        k++;
    if (k) {
        memmove(p->eras, p->eras + k, ((size_t)p->neras - k) * sizeof(p->eras[0]));
        p->neras -= (int32_t)k;
        p->dirty = true;
    }
}

void qsched_read(qpart *p, int64_t offset, int64_t delay)
{
    if (p->neras && (p->eras[p->neras - 1].delay == delay))
        return;
    if (p->neras == 0) {
        p->eras[0] = (struct qera){0, delay};
        p->neras = 1;
        p->dirty = true;
        return;
    }
    era_trim(p);
    bool fallback = p->eras[p->neras - 1].delay == -1;
    if (p->neras < QS_ERAS - 1 || (fallback && p->neras < QS_ERAS))
        p->eras[p->neras++] = (struct qera){offset, delay};
    else if (!fallback) /* the last slot: events without a header are taken when read */
        p->eras[p->neras++] = (struct qera){offset, -1};
    else
        return;
    p->dirty = true;
}

/* The default delay for events without a header at offset (-1: taken when read). */
static int64_t era_delay(const qpart *p, int64_t offset)
{
    int64_t d = 0;
    for (int32_t i = 0; i < p->neras && p->eras[i].from <= offset; i++)
        d = p->eras[i].delay;
    return d;
}

static int take(td_queues *q, qgroup *g, const qtopic *t, qpart *p, const td_event *ev, int64_t due,
                bool at_read)
{
    qsched s = {due, ev->offset, ev->timestamp_ms, 0, ev->key != NULL, at_read};
    if (ev->key)
        s.key_hash = td_hash64(ev->key, ev->key_len);
    if (heap_push(p, &s) != 0)
        return -ENOMEM;
    g->scheduled++;
    record(g, t, p, &s, false);
    delivery_note_due(q->dc, &g->next_due, due); /* receivers are told when it is due */
    return 0;
}

static void far(td_queues *q, qgroup *g, qpart *p, int64_t offset, int64_t due)
{
    int64_t *from = p->scan_to ? &p->scan_far_from : &p->far_from;
    int64_t *min = p->scan_to ? &p->scan_far_min : &p->far_min;
    if (offset < *from)
        *from = offset;
    if (due >= *min)
        return;
    *min = due;
    if (!p->scan_to) { /* the rescan must start before it comes within the horizon */
        int64_t at = TD_MAX(p->far_min - horizon(q), 0);
        g->sched_at = TD_MIN(g->sched_at, at);
        queue_wake(q, at);
    }
}

int qsched_take(td_queues *q, qgroup *g, const qtopic *t, qpart *p, const td_event *ev, int64_t due,
                bool by_header, int64_t now)
{
    raise_hw(q, p, now);
    p->dirty = true;
    int64_t lim = p->scan_to ? p->scan_to : p->hw;
    /* Far unless delayed by the topic's default in a fallback era (rescans could not tell):
     * then taken whatever its time, and its record says so (qsched_restore). */
    if (due > lim && (by_header || era_delay(p, ev->offset) >= 0)) {
        far(q, g, p, ev->offset, due);
        return 0;
    }
    return due <= now ? 1 : take(q, g, t, p, ev, due, due > lim);
}

/* ---------------------------------------------------------------------------------------------
 * Falling due
 */
int64_t qsched_promote(qgroup *g, int64_t now, size_t max)
{
    int64_t next = QS_NONE;
    for (size_t i = 0; i < g->nall; i++) {
        qpart *p = g->all[i].p;
        while (p->sn && p->sv[0].due <= now && g->pending < g->pol.max_in_flight && max) {
            max--;
            qsched s = p->sv[0];
            if (queue_entry_find(p, s.offset, NULL)) { /* taken twice (it cannot): once */
                heap_pop(p);
                g->scheduled--;
                continue;
            }
            qentry *en = queue_entry_insert(g, p, s.offset);
            if (!en)
                break; /* no memory: tried again at the next receive */
            heap_pop(p);
            g->scheduled--;
            en->event_ms = s.event_ms;
            en->key_hash = s.key_hash;
            en->d.flags = s.has_key ? QF_KEY : 0;
            /* Under ordering=key it joins its key's order now: behind any entry of its key. */
            bool held = false;
            if (g->pol.ordering == TD_QUEUE_BY_KEY && s.has_key)
                for (size_t k = 0; k < p->n && !held; k++)
                    held = p->v[k].offset != s.offset && p->v[k].d.state &&
                           (p->v[k].d.flags & QF_KEY) && p->v[k].key_hash == s.key_hash;
            if (held) {
                delivery_hold(&en->d);
            } else {
                delivery_release(&en->d, s.due); /* waiting since its time */
                g->next_due = TD_MIN(g->next_due, s.due);
            }
            qs_touch(g, p, en);
        }
        if (p->sn && p->sv[0].due < next)
            next = p->sv[0].due;
    }
    return next;
}

/* ---------------------------------------------------------------------------------------------
 * Rescans
 */
static void scan_start(td_queues *q, qpart *p, int64_t now)
{
    p->scan_to = TD_MAX(now + 2 * horizon(q), p->hw + 1);
    p->scan_pos = p->far_from;
    p->scan_end = p->next;
    p->scan_far_from = p->scan_far_min = QS_NONE;
    p->dirty = true;
}

static void scan_finish(qpart *p)
{
    p->hw = p->scan_to;
    p->far_from = p->scan_far_from;
    p->far_min = p->scan_far_min;
    p->scan_to = p->scan_pos = p->scan_end = 0;
    p->scan_far_from = p->scan_far_min = QS_NONE;
    p->dirty = true;
}

/* One step of the rescan: up to SCAN_STEP events. */
static int scan_step(td_queues *q, qgroup *g, const qtopic *t, qpart *p)
{
    td_iter *it = NULL;
    int rc = td_iter_open(q->e, t->name, p->partition, p->scan_pos, &it);
    if (rc == TD_ERANGE) { /* retention passed it: what it deleted needs no delivery */
        int64_t start = p->scan_end;
        td_offset_for(q->e, t->name, p->partition, TD_OFFSET_EARLIEST, &start);
        p->scan_pos = TD_MAX(p->scan_pos, TD_MIN(start, p->scan_end));
        p->dirty = true;
        if (p->scan_pos >= p->scan_end)
            scan_finish(p);
        return 0;
    }
    if (rc)
        return rc;
    td_event ev;
    int r = 1;
    for (int n = 0; n < SCAN_STEP && p->scan_pos < p->scan_end && qsched_room(q, g); n++) {
        if ((r = td_iter_next(it, &ev)) <= 0)
            break;
        if (ev.offset >= p->scan_end) { /* past it (a gap of a compacted log before it) */
            p->scan_pos = p->scan_end;
            break;
        }
        int64_t due = 0, d;
        if (!(ev.header_count && explicit_due(&ev, &due)) && (d = era_delay(p, ev.offset)) > 0 &&
            ev.timestamp_ms > 0)
            due = plus(ev.timestamp_ms, d); /* without a header: the default of its era */
        if (due > p->hw) {
            if (due <= p->scan_to)
                rc = take(q, g, t, p, &ev, due, false);
            else
                far(q, g, p, ev.offset, due);
        }
        if (rc)
            break;
        p->scan_pos = ev.offset + 1;
        p->dirty = true;
    }
    td_iter_close(it);
    if (rc == 0 && r < 0)
        rc = r;
    if (rc == 0 && (p->scan_pos >= p->scan_end || r == 0)) /* r 0: the log's end */
        scan_finish(p);
    return rc;
}

int64_t qsched_work(td_queues *q, qgroup *g, int64_t now)
{
    if (now < g->sched_at) /* nothing to start or step before then */
        return g->sched_at;
    int64_t wake = QS_NONE, h = horizon(q);
    for (size_t i = 0; i < g->nall; i++) {
        qpart *p = g->all[i].p;
        if (!p->scan_to && p->far_from != QS_NONE && p->far_min <= now + h) {
            if (!qsched_room(q, g)) {
                wake = TD_MIN(wake, now + IDLE_WAKE_MS);
                continue;
            }
            scan_start(q, p, now);
        }
        if (p->scan_to && !qsched_room(q, g)) {
            wake = TD_MIN(wake, now + 100); /* resumed as scheduled events fall due */
        } else if (p->scan_to && __atomic_load_n(&test_hold, __ATOMIC_RELAXED)) {
            wake = TD_MIN(wake, now + 10);
        } else if (p->scan_to && !q->scan_turns) {
            wake = now; /* one step a run: the lock is released between steps */
        } else if (p->scan_to) {
            q->scan_turns--;
            int rc = scan_step(q, g, g->all[i].t, p);
            if (rc) {
                TD_WARN("queue", "group %s: rescan of %s/%" PRId32 " for delayed events: %s",
                        g->name, g->all[i].t->name, p->partition, td_last_error());
                td_error_clear();
                wake = TD_MIN(wake, now + IDLE_WAKE_MS);
            } else if (p->scan_to) {
                wake = now; /* more to read: the next run, after the others' work */
            }
        }
        if (!p->scan_to && p->far_from != QS_NONE)
            wake = TD_MIN(wake, TD_MAX(p->far_min - h, now));
    }
    g->sched_at = wake;
    return wake;
}

int qsched_restore(qgroup *g, qpart *p, const qentry *x)
{
    int64_t due = x->d.at;
    bool at_read = (x->d.flags & QF_AT_READ) != 0;
    if (!at_read && p->scan_to && x->offset >= p->scan_pos && x->offset < p->scan_end &&
        due > p->hw && due <= p->scan_to)
        return 1; /* the rescan takes it again */
    qsched s = {due, x->offset, x->event_ms, x->key_hash, (x->d.flags & QF_KEY) != 0, at_read};
    if (heap_push(p, &s) != 0)
        return -ENOMEM;
    g->scheduled++;
    return 0;
}
