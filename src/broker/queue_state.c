/*
 * queue_state.c: the state of queue groups as records of the internal compacted topic
 * __queue_state (state.h; formats in docs/storage.md, "State topics"), its replay at open, and
 * the migration of what older data directories kept in the catalog.
 *
 * Records (big-endian; strings as Kafka's: int16 length, then the bytes):
 *   group     key   int16 0, string group
 *             value int16 0 (version), string topic (or pattern), string policy (key=value
 *                   lines), int64 created_ms
 *   position  key   int16 1, string group, string topic, int32 partition
 *             value int16 0, int64 incarnation (the group's created_ms), int64 topic id,
 *                   int64 next (the first offset the group has not read)
 *             or    int16 1, the same, then the delayed events' horizon (queue_int.h qpart):
 *                   int64 hw, far_from, far_min, scan_pos, scan_end, scan_to, scan_far_from,
 *                   scan_far_min, int8 n, then n eras of the topic's default delay: int64
 *                   from, int64 delay (version 1 is written once the partition had delayed
 *                   events)
 *   entry     key   int16 2, string group, string topic, int32 partition, int64 offset
 *             value int16 0, int64 incarnation, int64 topic id, int8 state (1 in flight,
 *                   2 waiting, 3 held, 4 dead, 5 scheduled: a delayed event not due yet, `at`
 *                   its due time), int32 deliveries, int64 at (deadline or due
 *                   time), int64 first_fail, int64 last_fail, int64 event_ms, int8 has_key
 *                   (bit 0; bit 1: a scheduled event taken when read in a fallback era),
 *                   int64 key_hash, string error (-1: none)
 * A null value deletes the key. Every offset below a partition's `next` without a live entry
 * record is done: an ack writes one tombstone, a delivery one entry record (and the position
 * when new events were read), whatever the number of entries pending; the cleaner keeps one
 * record per live entry and partition.
 *
 * All records of a group go to the state partition of its name (state_partition_for), in the
 * order the changes were made under the queues' mutex; an outcome is answered once the records
 * it appended are durable (state_when_durable / state_wait).
 *
 * Replay reads the group records first (a compacted log need not keep a group's definition
 * before its entries), builds the groups on the topics as they are, then reads the positions
 * and entries. A record of another incarnation of the group (deleted and created again), of a
 * topic deleted or created again (another id), or of a group that no longer exists is not
 * state: its key gets a tombstone once replayed, unless a later record of that key is state.
 * A record the replay does not understand (a kind or version from a newer tidings, or fields
 * that do not parse) stops the start: delivery_replay_refuse, the delivery core's one rule.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "broker/queue_int.h"
#include "broker/state.h"

enum { KEY_GROUP = 0, KEY_POSITION = 1, KEY_ENTRY = 2 };
#define VALUE_V0 0
#define VALUE_V1 1 /* a position with the delayed events' horizon (queue_sched.c) */

/* ---------------------------------------------------------------------------------------------
 * Records, built in a batch of the delivery core (delivery.h)
 */
static int put8(td_buf *b, uint8_t v)
{
    return td_buf_append(b, &v, 1);
}

static int key_position(td_buf *b, const char *group, const char *topic, int32_t partition)
{
    return state_put16(b, KEY_POSITION) | state_put_str(b, group) | state_put_str(b, topic) |
           state_put32(b, partition);
}

static int key_entry(td_buf *b, const char *group, const char *topic, int32_t partition,
                     int64_t offset)
{
    return state_put16(b, KEY_ENTRY) | state_put_str(b, group) | state_put_str(b, topic) |
           state_put32(b, partition) | state_put64(b, offset);
}

static void add_position(delivery_recs *r, const qgroup *g, const qtopic *t, const qpart *p,
                         bool tomb)
{
    drecs_begin(r);
    drecs_check(r, key_position(&r->buf, g->name, t->name, p->partition));
    if (tomb) {
        drecs_tombstone(r);
        return;
    }
    drecs_value(r);
    /* Version 1 only once the partition had delayed events: a data directory that never had
     * any stays readable by a tidings from before delayed delivery. */
    bool v1 = p->hw || p->far_from != QS_NONE || p->scan_to;
    td_buf *b = &r->buf;
    drecs_check(r, state_put16(b, v1 ? VALUE_V1 : VALUE_V0) | state_put64(b, g->created_ms) |
                       state_put64(b, t->id) | state_put64(b, p->next));
    if (v1) {
        drecs_check(r, state_put64(b, p->hw) | state_put64(b, p->far_from) |
                           state_put64(b, p->far_min) | state_put64(b, p->scan_pos) |
                           state_put64(b, p->scan_end) | state_put64(b, p->scan_to) |
                           state_put64(b, p->scan_far_from) | state_put64(b, p->scan_far_min) |
                           put8(b, (uint8_t)p->neras));
        for (int32_t i = 0; i < p->neras; i++)
            drecs_check(r, state_put64(b, p->eras[i].from) | state_put64(b, p->eras[i].delay));
    }
    drecs_end(r);
}

/* An entry's record, or its tombstone when en is NULL. */
static void add_entry(delivery_recs *r, const qgroup *g, const qtopic *t, const qpart *p,
                      int64_t offset, const qentry *en)
{
    td_buf *b = &r->buf;
    drecs_begin(r);
    drecs_check(r, key_entry(b, g->name, t->name, p->partition, offset));
    if (!en) {
        drecs_tombstone(r);
        return;
    }
    drecs_value(r);
    drecs_check(r, state_put16(b, VALUE_V0) | state_put64(b, g->created_ms) |
                       state_put64(b, t->id) | put8(b, en->d.state) |
                       state_put32(b, en->d.deliveries) | state_put64(b, en->d.at) |
                       state_put64(b, en->d.first_fail) | state_put64(b, en->d.last_fail) |
                       state_put64(b, en->event_ms) |
                       put8(b, (uint8_t)(((en->d.flags & QF_KEY) ? 1 : 0) |
                                         ((en->d.flags & QF_AT_READ) ? 2 : 0))) |
                       state_put64(b, (int64_t)en->key_hash) | state_put_str(b, en->error));
    drecs_end(r);
}

static void add_group(delivery_recs *r, const qgroup *g, bool tomb)
{
    drecs_begin(r);
    drecs_check(r, state_put16(&r->buf, KEY_GROUP) | state_put_str(&r->buf, g->name));
    if (tomb) {
        drecs_tombstone(r);
        return;
    }
    char policy[2048];
    drecs_check(r, queue_policy_format(&g->pol, policy, sizeof(policy)));
    drecs_value(r);
    drecs_check(r, state_put16(&r->buf, VALUE_V0) | state_put_str(&r->buf, g->topic) |
                       state_put_str(&r->buf, policy) | state_put64(&r->buf, g->created_ms));
    drecs_end(r);
}

/* Records added since mark could not all be encoded (no memory): they go, and the batch is good
 * again; -ENOMEM, or 0 when they all were. */
static int recs_settle(delivery_recs *r, size_t mark)
{
    if (!r->bad)
        return 0;
    drecs_truncate(r, mark);
    r->bad = false;
    return td_fail(-ENOMEM, "out of memory encoding queue state records");
}

/* ---------------------------------------------------------------------------------------------
 * Changes
 */
int32_t qs_partition(td_queues *q, const qgroup *g)
{
    return state_partition_for(q->e, STATE_QUEUES, g->name);
}

int qs_wait(td_queues *q, int32_t partition, int64_t end)
{
    return end < 0 ? 0 : state_wait(q->e, STATE_QUEUES, partition, end);
}

void qs_touch(qgroup *g, const qpart *p, qentry *en)
{
    if (en->d.flags & QF_TOUCHED)
        return;
    if (td_grow(&g->touched, &g->captouched, g->ntouched, sizeof(*g->touched), 64) != 0) {
        /* Without memory for the list the record waits for the entry's next change (or is
         * never written: a restart then delivers the event again, at least once). */
        TD_WARN("queue", "group %s: out of memory recording a change", g->name);
        return;
    }
    g->touched[g->ntouched++] = (qtouch){p->topic_id, en->offset, p->partition};
    en->d.flags |= QF_TOUCHED;
}

void qs_entry_record(qgroup *g, const qtopic *t, const qpart *p, int64_t offset, const qentry *en)
{
    size_t mark = g->recs.n;
    add_entry(&g->recs, g, t, p, offset, en);
    if (recs_settle(&g->recs, mark) != 0) {
        /* Kept in memory and delivered in time, but a restart before then would not know
         * it (as an entry whose record fails, qs_touch). */
        TD_WARN("queue", "group %s: out of memory recording a scheduled event", g->name);
        td_error_clear();
    }
}

void qs_topic_forget(qgroup *g, const qtopic *t)
{
    size_t mark = g->recs.n;
    for (int32_t i = 0; i < t->nparts; i++) {
        const qpart *p = &t->parts[i];
        add_position(&g->recs, g, t, p, true);
        for (size_t k = 0; k < p->n; k++)
            if (p->v[k].d.state)
                add_entry(&g->recs, g, t, p, p->v[k].offset, NULL);
        qsched_records(g, t, p, true);
    }
    if (recs_settle(&g->recs, mark) != 0) {
        TD_WARN("queue",
                "group %s: out of memory forgetting topic %s: its records stay until "
                "the next start",
                g->name, t->name);
        td_error_clear();
    }
}

/* Forgets which entries and positions changed (their records were written, or the group is
 * going). */
static void untouch(qgroup *g)
{
    for (size_t i = 0; i < g->ntouched; i++) {
        qtopic *t = queue_topic_by_id(g, g->touched[i].topic_id);
        qentry *en =
            t && g->touched[i].partition < t->nparts
                ? queue_entry_find(&t->parts[g->touched[i].partition], g->touched[i].offset, NULL)
                : NULL;
        if (en)
            en->d.flags &= (uint8_t)~QF_TOUCHED;
    }
    g->ntouched = 0;
    for (size_t i = 0; i < g->nall; i++)
        g->all[i].p->dirty = false;
}

int qs_flush(td_queues *q, qgroup *g, int64_t *end)
{
    if (end)
        *end = -1;
    delivery_recs *r = &g->recs; /* already: tombstones of topics dropped */
    size_t mark = r->n;
    for (size_t i = 0; i < g->ntouched; i++) {
        const qtouch *x = &g->touched[i];
        qtopic *t = queue_topic_by_id(g, x->topic_id);
        if (!t || x->partition >= t->nparts)
            continue; /* the topic was dropped: qs_topic_forget wrote its tombstones */
        qpart *p = &t->parts[x->partition];
        qentry *en = queue_entry_find(p, x->offset, NULL);
        add_entry(r, g, t, p, x->offset, en && en->d.state ? en : NULL);
    }
    for (size_t i = 0; i < g->nall; i++)
        if (g->all[i].p->dirty)
            add_position(r, g, g->all[i].t, g->all[i].p, false);
    int64_t last = -1;
    size_t done = 0;
    int32_t part = qs_partition(q, g);
    int rc = recs_settle(r, mark);
    if (rc == 0 && r->n)
        rc = drecs_append(q->e, STATE_QUEUES, part, r, &last, &done);
    if (rc) {
        TD_ERROR("queue", "group %s: cannot write its state: %s", g->name, td_last_error());
        /* Kept: the entries and positions still marked are encoded again at the next flush,
         * after what came before them and was not appended. */
        drecs_truncate(r, mark);
        drecs_drop_front(r, TD_MIN(done, mark));
        return rc < 0 ? rc : -ENOMEM;
    }
    untouch(g);
    drecs_clear(r);
    if (last >= 0 && end)
        *end = last;
    else if (last >= 0 && state_when_durable(q->e, STATE_QUEUES, part, last, NULL, NULL) != 0)
        td_error_clear(); /* synced with the next */
    return 0;
}

int qs_group_put(td_queues *q, qgroup *g, bool all, int64_t *end)
{
    size_t mark = g->recs.n;
    add_group(&g->recs, g, false);
    int rc = recs_settle(&g->recs, mark);
    for (size_t i = 0; all && rc == 0 && i < g->nall; i++) {
        qpart *p = g->all[i].p;
        p->dirty = true;
        for (size_t k = 0; k < p->n; k++)
            if (p->v[k].d.state)
                qs_touch(g, p, &p->v[k]);
        qsched_records(g, g->all[i].t, p, false);
    }
    return rc ? rc : qs_flush(q, g, end);
}

int qs_group_delete(td_queues *q, qgroup *g, int64_t *end)
{
    for (size_t i = 0; i < g->ntopics; i++)
        qs_topic_forget(g, &g->topics[i]);
    size_t mark = g->recs.n;
    add_group(&g->recs, g, true);
    int rc = recs_settle(&g->recs, mark);
    /* Nothing else of the group is written after its tombstones. */
    untouch(g);
    return rc ? rc : qs_flush(q, g, end);
}

/* ---------------------------------------------------------------------------------------------
 * Replay
 */
typedef struct replay {
    td_queues *q;
    int pass; /* 1: group records; 2: positions and entries */
    struct rdef {
        char *name, *topic, *policy;
        int64_t created_ms;
    } * defs; /* the latest definition of each group; NULL name: deleted */
    size_t ndefs, capdefs;
    uint32_t seq; /* records seen in pass 2: the order of an entry's records */
    /* Tombstones of keys that are not state, per partition of the state topic. */
    delivery_recs *orphans;
    int32_t norphans;
} replay;

static struct rdef *def_find(replay *r, const char *name)
{
    for (size_t i = 0; i < r->ndefs; i++)
        if (r->defs[i].name && !strcmp(r->defs[i].name, name))
            return &r->defs[i];
    return NULL;
}

static int replay_group(replay *r, int32_t sp, state_reader *k, const td_event *ev)
{
    char *name = state_get_str(k);
    if (k->bad || !name) {
        free(name);
        return delivery_replay_refuse(STATE_QUEUES, sp, ev, "a group key that does not parse");
    }
    struct rdef *d = def_find(r, name);
    if (!ev->value) {
        if (d) {
            free(d->name);
            free(d->topic);
            free(d->policy);
            memset(d, 0, sizeof(*d));
        }
        free(name);
        return 0;
    }
    state_reader v = {ev->value, ev->value_len, 0, false};
    int16_t ver = state_get16(&v);
    char *topic = state_get_str(&v), *policy = state_get_str(&v);
    int64_t created = state_get64(&v);
    if (v.bad || ver != VALUE_V0 || !topic || !policy) {
        free(name);
        free(topic);
        free(policy);
        return delivery_replay_refuse(STATE_QUEUES, sp, ev,
                                      ver != VALUE_V0 ? "a group value of an unknown version"
                                                      : "a group value that does not parse");
    }
    if (!d) {
        if (td_grow(&r->defs, &r->capdefs, r->ndefs, sizeof(*r->defs), 8) != 0) {
            free(name);
            free(topic);
            free(policy);
            return -ENOMEM;
        }
        d = &r->defs[r->ndefs++];
        d->name = name;
    } else {
        free(name);
        free(d->topic);
        free(d->policy);
    }
    d->topic = topic;
    d->policy = policy;
    d->created_ms = created;
    return 0;
}

/* The tombstone of a record's key, for after the replay. */
static int orphan(replay *r, int32_t partition, const td_event *ev)
{
    if (partition < 0 || partition >= r->norphans)
        return 0;
    delivery_recs *o = &r->orphans[partition];
    drecs_begin(o);
    drecs_check(o, td_buf_append(&o->buf, ev->key, ev->key_len));
    drecs_tombstone(o);
    return o->bad ? -ENOMEM : 0;
}

/* The group's partition a position or entry key names, or NULL (then the record is not
 * state, or, with k->bad, the key does not parse). */
static qpart *key_part(replay *r, state_reader *k, qgroup **gp, qtopic **tp)
{
    char *group = state_get_str(k), *topic = state_get_str(k);
    int32_t partition = state_get32(k);
    qgroup *g = !k->bad && group ? queue_group_find(r->q, group, NULL) : NULL;
    qtopic *t = g && topic ? queue_topic_find(g, topic) : NULL;
    free(group);
    free(topic);
    if (!t || partition < 0 || partition >= t->nparts)
        return NULL;
    *gp = g;
    *tp = t;
    return &t->parts[partition];
}

static int replay_position(replay *r, int32_t sp, state_reader *k, const td_event *ev)
{
    qgroup *g;
    qtopic *t;
    qpart *p = key_part(r, k, &g, &t);
    if (k->bad)
        return delivery_replay_refuse(STATE_QUEUES, sp, ev, "a position key that does not parse");
    if (!p)
        return ev->value ? orphan(r, sp, ev) : 0;
    if (!ev->value)
        return 0;
    state_reader v = {ev->value, ev->value_len, 0, false};
    int16_t ver = state_get16(&v);
    int64_t inc = state_get64(&v), tid = state_get64(&v), next = state_get64(&v);
    int64_t h[8] = {0, QS_NONE, QS_NONE, 0, 0, 0, QS_NONE, QS_NONE};
    for (int i = 0; ver == VALUE_V1 && i < 8; i++)
        h[i] = state_get64(&v);
    int neras = ver == VALUE_V1 && v.pos < v.n ? v.p[v.pos++] : 0;
    struct qera eras[QS_ERAS];
    for (int i = 0; i < neras && i < QS_ERAS; i++) {
        eras[i].from = state_get64(&v);
        eras[i].delay = state_get64(&v);
    }
    if (neras > QS_ERAS)
        v.bad = true;
    if (v.bad || (ver != VALUE_V0 && ver != VALUE_V1))
        return delivery_replay_refuse(STATE_QUEUES, sp, ev,
                                      ver != VALUE_V0 && ver != VALUE_V1
                                          ? "a position value of an unknown version"
                                          : "a position value that does not parse");
    if (inc != g->created_ms || tid != t->id) {
        p->dirty = true; /* another incarnation's: this one's is written over it */
        return 0;
    }
    p->next = next;
    p->hw = h[0];
    p->far_from = h[1];
    p->far_min = h[2];
    p->scan_pos = h[3];
    p->scan_end = h[4];
    p->scan_to = h[5];
    p->scan_far_from = h[6];
    p->scan_far_min = h[7];
    p->neras = neras;
    memcpy(p->eras, eras, (size_t)neras * sizeof(eras[0]));
    p->dirty = false;
    return 0;
}

/* An entry's record, kept in order of the log (consumer holds the order until the sort): the
 * latest record of an offset wins; a tombstone (state 0) or another incarnation's record
 * (state 0, deliveries -1: its key gets a tombstone) deletes it. */
static int replay_entry(replay *r, int32_t sp, state_reader *k, const td_event *ev)
{
    qgroup *g;
    qtopic *t;
    qpart *p = key_part(r, k, &g, &t);
    int64_t offset = state_get64(k);
    if (k->bad)
        return delivery_replay_refuse(STATE_QUEUES, sp, ev, "an entry key that does not parse");
    if (!p)
        return ev->value ? orphan(r, sp, ev) : 0;
    qentry x = {.offset = offset, .d.owner = (int32_t)r->seq++};
    if (ev->value) {
        state_reader v = {ev->value, ev->value_len, 0, false};
        int16_t ver = state_get16(&v);
        int64_t inc = state_get64(&v), tid = state_get64(&v);
        uint8_t st = v.pos < v.n ? v.p[v.pos++] : 0;
        x.d.deliveries = state_get32(&v);
        x.d.at = state_get64(&v);
        x.d.first_fail = state_get64(&v);
        x.d.last_fail = state_get64(&v);
        x.event_ms = state_get64(&v);
        uint8_t kb = v.pos < v.n ? v.p[v.pos++] : 0;
        x.d.flags = (uint8_t)(((kb & 1) ? QF_KEY : 0) | ((kb & 2) ? QF_AT_READ : 0));
        x.key_hash = (uint64_t)state_get64(&v);
        char *err = state_get_str(&v);
        if (v.bad || ver != VALUE_V0 || st < DELIVERY_INFLIGHT || st > DELIVERY_SCHEDULED ||
            x.d.deliveries < 0) {
            free(err);
            return delivery_replay_refuse(STATE_QUEUES, sp, ev,
                                          ver != VALUE_V0
                                              ? "an entry value of an unknown version"
                                              : "an entry value that does not parse (an "
                                                "unknown state, or a bad delivery count)");
        }
        if (inc != g->created_ms || tid != t->id) {
            free(err);
            x.d.deliveries = -1;
        } else {
            x.d.state = st;
            x.error = err;
        }
    }
    if (td_grow(&p->v, &p->cap, p->n, sizeof(*p->v), 16) != 0) {
        free(x.error);
        return -ENOMEM;
    }
    p->v[p->n++] = x;
    return 0;
}

static int replay_record(void *arg, int32_t sp, const td_event *ev)
{
    replay *r = arg;
    state_reader k = {ev->key, ev->key_len, 0, false};
    int16_t type = ev->key ? state_get16(&k) : -1;
    if (k.bad || type < KEY_GROUP || type > KEY_ENTRY)
        return delivery_replay_refuse(STATE_QUEUES, sp, ev,
                                      "a key of an unknown kind (written by a newer tidings?)");
    if (r->pass == 1)
        return type == KEY_GROUP ? replay_group(r, sp, &k, ev) : 0;
    if (type == KEY_POSITION)
        return replay_position(r, sp, &k, ev);
    if (type == KEY_ENTRY)
        return replay_entry(r, sp, &k, ev);
    return 0;
}

static int entry_order(const void *a, const void *b)
{
    const qentry *x = a, *y = b;
    if (x->offset != y->offset)
        return x->offset < y->offset ? -1 : 1;
    uint32_t u = (uint32_t)x->d.owner, v = (uint32_t)y->d.owner;
    return u < v ? -1 : u > v;
}

/* Sorts a partition's replayed records by offset and keeps each offset's latest; tombstones
 * for records that are not state. */
static int part_settle(qgroup *g, const qtopic *t, qpart *p)
{
    if (p->n == 0)
        return 0; /* and qsort of NULL is undefined */
    qsort(p->v, p->n, sizeof(*p->v), entry_order);
    size_t k = 0, mark = g->recs.n;
    for (size_t i = 0; i < p->n; i++) {
        qentry *x = &p->v[i];
        bool last = i + 1 == p->n || p->v[i + 1].offset != x->offset;
        if (!last || !x->d.state || x->offset >= p->next) {
            if (last && (x->d.deliveries < 0 || x->d.state))
                add_entry(&g->recs, g, t, p, x->offset, NULL);
            free(x->error);
            continue;
        }
        x->d.owner = -1;
        if (x->d.state == DELIVERY_SCHEDULED) { /* not an entry: back into the heap */
            int rc = qsched_restore(g, p, x);
            if (rc < 0)
                return rc;
            continue;
        }
        g->has_dead |= x->d.state == DELIVERY_DEAD;
        p->v[k++] = *x;
    }
    p->n = k;
    g->pending += (int64_t)k;
    return recs_settle(&g->recs, mark);
}

static int groups_build(replay *r)
{
    for (size_t i = 0; i < r->ndefs; i++) {
        struct rdef *d = &r->defs[i];
        int rc = d->name
                     ? queue_group_restore(r->q, d->name, d->topic, d->policy, d->created_ms, NULL)
                     : 0;
        if (rc)
            return rc;
    }
    return 0;
}

static int orphans_write(replay *r)
{
    int rc = 0;
    for (int32_t sp = 0; sp < r->norphans && rc == 0; sp++) {
        int64_t end = -1;
        if ((rc = drecs_append(r->q->e, STATE_QUEUES, sp, &r->orphans[sp], &end, NULL)) == 0)
            rc = qs_wait(r->q, sp, end);
    }
    return rc;
}

int qs_load(td_queues *q)
{
    replay r = {.q = q, .pass = 1};
    int64_t t0 = td_mono_ns();
    r.norphans = state_partitions(q->e, STATE_QUEUES);
    r.orphans = calloc((size_t)TD_MAX(r.norphans, 1), sizeof(*r.orphans));
    if (!r.orphans)
        return -ENOMEM;
    for (int32_t i = 0; i < r.norphans; i++)
        drecs_init(&r.orphans[i]);
    int rc = state_replay(q->e, STATE_QUEUES, replay_record, &r);
    if (rc == 0)
        rc = groups_build(&r);
    r.pass = 2;
    if (rc == 0)
        rc = state_replay(q->e, STATE_QUEUES, replay_record, &r);
    size_t entries = 0;
    for (size_t i = 0; i < q->n && rc == 0; i++) {
        qgroup *g = q->g[i];
        for (size_t k = 0; k < g->nall && rc == 0; k++) {
            rc = part_settle(g, g->all[k].t, g->all[k].p);
            entries += g->all[k].p->n;
        }
        g->next_deadline = g->next_due = 0; /* swept at once */
    }
    if (rc == 0)
        rc = orphans_write(&r);
    if (rc == 0 && q->n)
        TD_INFO("queue", "replayed %zu queue group%s with %zu pending entr%s in %" PRId64 " ms",
                q->n, q->n == 1 ? "" : "s", entries, entries == 1 ? "y" : "ies",
                (td_mono_ns() - t0) / 1000000);
    for (size_t i = 0; i < r.ndefs; i++) {
        free(r.defs[i].name);
        free(r.defs[i].topic);
        free(r.defs[i].policy);
    }
    free(r.defs);
    for (int32_t i = 0; i < r.norphans; i++)
        drecs_free(&r.orphans[i]);
    free(r.orphans);
    if (rc == 0)
        rc = qs_migrate(q);
    /* What the replay found to write: positions of partitions new since, tombstones. */
    for (size_t i = 0; i < q->n && rc == 0; i++) {
        int64_t end;
        if ((rc = qs_flush(q, q->g[i], &end)) == 0)
            rc = qs_wait(q, qs_partition(q, q->g[i]), end);
    }
    return rc;
}
