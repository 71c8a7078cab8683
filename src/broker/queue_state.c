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
 *   entry     key   int16 2, string group, string topic, int32 partition, int64 offset
 *             value int16 0, int64 incarnation, int64 topic id, int8 state (1 in flight,
 *                   2 waiting, 3 held, 4 dead), int32 deliveries, int64 at (deadline or due
 *                   time), int64 first_fail, int64 last_fail, int64 event_ms, int8 has_key,
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
#define CHUNK 2048 /* records per append: bounds one batch (a group's deletion, a migration) */

/* ---------------------------------------------------------------------------------------------
 * Framed records: [u32 key length][key][u32 value length, or ~0 for a tombstone][value].
 */
static int frame_begin(td_buf *b, size_t *at)
{
    *at = b->len;
    return td_buf_append_be32(b, 0);
}

static void frame_end(td_buf *b, size_t at)
{
    uint32_t n = (uint32_t)(b->len - at - 4);
    uint8_t *p = b->p + at;
    p[0] = (uint8_t)(n >> 24);
    p[1] = (uint8_t)(n >> 16);
    p[2] = (uint8_t)(n >> 8);
    p[3] = (uint8_t)n;
}

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

static int add_position(td_buf *b, const qgroup *g, const qtopic *t, const qpart *p, bool tomb)
{
    size_t at;
    int rc = frame_begin(b, &at) | key_position(b, g->name, t->name, p->partition);
    frame_end(b, at);
    if (tomb)
        return rc | td_buf_append_be32(b, UINT32_MAX);
    rc |= frame_begin(b, &at) | state_put16(b, VALUE_V0) | state_put64(b, g->created_ms) |
          state_put64(b, t->id) | state_put64(b, p->next);
    frame_end(b, at);
    return rc;
}

static int add_entry(td_buf *b, const qgroup *g, const qtopic *t, const qpart *p, int64_t offset,
                     const qentry *en)
{
    size_t at;
    int rc = frame_begin(b, &at) | key_entry(b, g->name, t->name, p->partition, offset);
    frame_end(b, at);
    if (!en)
        return rc | td_buf_append_be32(b, UINT32_MAX);
    rc |= frame_begin(b, &at) | state_put16(b, VALUE_V0) | state_put64(b, g->created_ms) |
          state_put64(b, t->id) | put8(b, en->state) | state_put32(b, en->deliveries) |
          state_put64(b, en->at) | state_put64(b, en->first_fail) | state_put64(b, en->last_fail) |
          state_put64(b, en->event_ms) | put8(b, en->has_key) |
          state_put64(b, (int64_t)en->key_hash) | state_put_str(b, en->error);
    frame_end(b, at);
    return rc;
}

static int add_group(td_buf *b, const qgroup *g, bool tomb)
{
    size_t at;
    int rc = frame_begin(b, &at) | state_put16(b, KEY_GROUP) | state_put_str(b, g->name);
    frame_end(b, at);
    if (tomb)
        return rc | td_buf_append_be32(b, UINT32_MAX);
    char policy[2048];
    if (queue_policy_format(&g->pol, policy, sizeof(policy)) != 0)
        return td_fail(TD_ECONFIG, "the policy does not fit");
    rc |= frame_begin(b, &at) | state_put16(b, VALUE_V0) | state_put_str(b, g->topic) |
          state_put_str(b, policy) | state_put64(b, g->created_ms);
    frame_end(b, at);
    return rc;
}

/* Appends the framed records of b to a state partition, CHUNK at a time; *end: the last. */
static int append_framed(td_engine *e, int32_t partition, const td_buf *b, int64_t *end)
{
    td_event *ev = calloc(CHUNK, sizeof(*ev));
    if (!ev)
        return -ENOMEM;
    size_t pos = 0, n = 0;
    int rc = 0;
    while (rc == 0 && pos < b->len) {
        uint32_t kl = td_load_be32(b->p + pos);
        ev[n].key = b->p + pos + 4;
        ev[n].key_len = kl;
        pos += 4 + kl;
        uint32_t vl = td_load_be32(b->p + pos);
        pos += 4;
        ev[n].partition = partition;
        ev[n].value = vl == UINT32_MAX ? NULL : b->p + pos;
        ev[n].value_len = vl == UINT32_MAX ? 0 : vl;
        pos += vl == UINT32_MAX ? 0 : vl;
        if (++n == CHUNK || pos >= b->len) {
            rc = state_append(e, STATE_QUEUES, partition, ev, n, end);
            memset(ev, 0, n * sizeof(*ev));
            n = 0;
        }
    }
    free(ev);
    return rc;
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
    if (en->touched)
        return;
    if (td_grow(&g->touched, &g->captouched, g->ntouched, sizeof(*g->touched), 64) != 0) {
        /* Without memory for the list the record waits for the entry's next change (or is
         * never written: a restart then delivers the event again, at least once). */
        TD_WARN("queue", "group %s: out of memory recording a change", g->name);
        return;
    }
    g->touched[g->ntouched++] = (qtouch){p->topic_id, en->offset, p->partition};
    en->touched = true;
}

void qs_topic_forget(qgroup *g, const qtopic *t)
{
    int rc = 0;
    for (int32_t i = 0; i < t->nparts; i++) {
        const qpart *p = &t->parts[i];
        rc |= add_position(&g->pending_recs, g, t, p, true);
        for (size_t k = 0; k < p->n; k++)
            if (p->v[k].state)
                rc |= add_entry(&g->pending_recs, g, t, p, p->v[k].offset, NULL);
    }
    if (rc)
        TD_WARN("queue",
                "group %s: out of memory forgetting topic %s: its records stay until "
                "the next start",
                g->name, t->name);
}

int qs_flush(td_queues *q, qgroup *g, int64_t *end)
{
    if (end)
        *end = -1;
    td_buf b;
    td_buf_init(&b);
    int rc = g->pending_recs.len ? td_buf_append(&b, g->pending_recs.p, g->pending_recs.len) : 0;
    for (size_t i = 0; i < g->ntouched && rc == 0; i++) {
        const qtouch *x = &g->touched[i];
        qtopic *t = queue_topic_by_id(g, x->topic_id);
        if (!t || x->partition >= t->nparts)
            continue; /* the topic was dropped: qs_topic_forget wrote its tombstones */
        qpart *p = &t->parts[x->partition];
        qentry *en = queue_entry_find(p, x->offset, NULL);
        rc = add_entry(&b, g, t, p, x->offset, en && en->state ? en : NULL);
    }
    for (size_t i = 0; i < g->nall && rc == 0; i++)
        if (g->all[i].p->dirty)
            rc = add_position(&b, g, g->all[i].t, g->all[i].p, false);
    int64_t last = -1;
    int32_t part = qs_partition(q, g);
    if (rc == 0 && b.len)
        rc = append_framed(q->e, part, &b, &last);
    td_buf_free(&b);
    if (rc) {
        TD_ERROR("queue", "group %s: cannot write its state: %s", g->name, td_last_error());
        return rc < 0 ? rc : -ENOMEM; /* kept: written with the next flush */
    }
    for (size_t i = 0; i < g->ntouched; i++) {
        qtopic *t = queue_topic_by_id(g, g->touched[i].topic_id);
        qentry *en =
            t && g->touched[i].partition < t->nparts
                ? queue_entry_find(&t->parts[g->touched[i].partition], g->touched[i].offset, NULL)
                : NULL;
        if (en)
            en->touched = false;
    }
    g->ntouched = 0;
    g->pending_recs.len = 0;
    for (size_t i = 0; i < g->nall; i++)
        g->all[i].p->dirty = false;
    if (last >= 0 && end)
        *end = last;
    else if (last >= 0 && state_when_durable(q->e, STATE_QUEUES, part, last, NULL, NULL) != 0)
        td_error_clear(); /* synced with the next */
    return 0;
}

int qs_group_put(td_queues *q, qgroup *g, bool all, int64_t *end)
{
    int rc = add_group(&g->pending_recs, g, false);
    for (size_t i = 0; all && rc == 0 && i < g->nall; i++) {
        qpart *p = g->all[i].p;
        p->dirty = true;
        for (size_t k = 0; k < p->n; k++)
            if (p->v[k].state)
                qs_touch(g, p, &p->v[k]);
    }
    return rc ? (rc < 0 ? rc : -ENOMEM) : qs_flush(q, g, end);
}

int qs_group_delete(td_queues *q, qgroup *g, int64_t *end)
{
    int rc = 0;
    for (size_t i = 0; i < g->ntopics; i++)
        qs_topic_forget(g, &g->topics[i]);
    rc = add_group(&g->pending_recs, g, true);
    /* Nothing else of the group is written after its tombstones. */
    for (size_t i = 0; i < g->ntouched; i++) {
        qtopic *t = queue_topic_by_id(g, g->touched[i].topic_id);
        qentry *en =
            t && g->touched[i].partition < t->nparts
                ? queue_entry_find(&t->parts[g->touched[i].partition], g->touched[i].offset, NULL)
                : NULL;
        if (en)
            en->touched = false;
    }
    g->ntouched = 0;
    for (size_t i = 0; i < g->nall; i++)
        g->all[i].p->dirty = false;
    return rc ? (rc < 0 ? rc : -ENOMEM) : qs_flush(q, g, end);
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
    uint32_t seq;   /* records seen in pass 2: the order of an entry's records */
    td_buf orphans; /* framed tombstones of keys that are not state, with their partition */
    size_t skipped; /* records not understood (a newer version's, or damaged) */
} replay;

static struct rdef *def_find(replay *r, const char *name)
{
    for (size_t i = 0; i < r->ndefs; i++)
        if (r->defs[i].name && !strcmp(r->defs[i].name, name))
            return &r->defs[i];
    return NULL;
}

static int replay_group(replay *r, state_reader *k, const td_event *ev)
{
    char *name = state_get_str(k);
    if (k->bad || !name) {
        free(name);
        r->skipped++;
        return 0;
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
        r->skipped++;
        return 0;
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
    size_t at;
    int rc = td_buf_append_be32(&r->orphans, (uint32_t)partition) | frame_begin(&r->orphans, &at) |
             td_buf_append(&r->orphans, ev->key, ev->key_len);
    frame_end(&r->orphans, at);
    return (rc | td_buf_append_be32(&r->orphans, UINT32_MAX)) ? -ENOMEM : 0;
}

/* The group's partition a position or entry key names, or NULL (then the record is not
 * state). */
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
    if (!p)
        return ev->value ? orphan(r, sp, ev) : 0;
    if (!ev->value)
        return 0;
    state_reader v = {ev->value, ev->value_len, 0, false};
    int16_t ver = state_get16(&v);
    int64_t inc = state_get64(&v), tid = state_get64(&v), next = state_get64(&v);
    if (v.bad || ver != VALUE_V0) {
        r->skipped++;
        return 0;
    }
    if (inc != g->created_ms || tid != t->id) {
        p->dirty = true; /* another incarnation's: this one's is written over it */
        return 0;
    }
    p->next = next;
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
    if (!p || k->bad)
        return ev->value ? orphan(r, sp, ev) : 0;
    qentry x = {.offset = offset, .consumer = (int32_t)r->seq++};
    if (ev->value) {
        state_reader v = {ev->value, ev->value_len, 0, false};
        int16_t ver = state_get16(&v);
        int64_t inc = state_get64(&v), tid = state_get64(&v);
        uint8_t st = v.pos < v.n ? v.p[v.pos++] : 0;
        x.deliveries = state_get32(&v);
        x.at = state_get64(&v);
        x.first_fail = state_get64(&v);
        x.last_fail = state_get64(&v);
        x.event_ms = state_get64(&v);
        x.has_key = v.pos < v.n ? v.p[v.pos++] != 0 : false;
        x.key_hash = (uint64_t)state_get64(&v);
        char *err = state_get_str(&v);
        if (v.bad || ver != VALUE_V0 || st < Q_INFLIGHT || st > Q_DEAD || x.deliveries < 0) {
            free(err);
            r->skipped++;
            return 0;
        }
        if (inc != g->created_ms || tid != t->id) {
            free(err);
            x.deliveries = -1;
        } else {
            x.state = st;
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
    if (r->pass == 1)
        return type == KEY_GROUP ? replay_group(r, &k, ev) : 0;
    if (type == KEY_POSITION)
        return replay_position(r, sp, &k, ev);
    if (type == KEY_ENTRY)
        return replay_entry(r, sp, &k, ev);
    if (type == KEY_GROUP)
        return 0;
    r->skipped++;
    return 0;
}

static int entry_order(const void *a, const void *b)
{
    const qentry *x = a, *y = b;
    if (x->offset != y->offset)
        return x->offset < y->offset ? -1 : 1;
    uint32_t u = (uint32_t)x->consumer, v = (uint32_t)y->consumer;
    return u < v ? -1 : u > v;
}

/* Sorts a partition's replayed records by offset and keeps each offset's latest; tombstones
 * for records that are not state. */
static int part_settle(qgroup *g, const qtopic *t, qpart *p)
{
    if (p->n == 0)
        return 0; /* and qsort of NULL is undefined */
    qsort(p->v, p->n, sizeof(*p->v), entry_order);
    size_t k = 0;
    int rc = 0;
    for (size_t i = 0; i < p->n; i++) {
        qentry *x = &p->v[i];
        bool last = i + 1 == p->n || p->v[i + 1].offset != x->offset;
        if (!last || !x->state || x->offset >= p->next) {
            if (last && (x->deliveries < 0 || x->state))
                rc |= add_entry(&g->pending_recs, g, t, p, x->offset, NULL);
            free(x->error);
            continue;
        }
        x->consumer = -1;
        g->has_dead |= x->state == Q_DEAD;
        p->v[k++] = *x;
    }
    p->n = k;
    g->pending += (int64_t)k;
    return rc ? -ENOMEM : 0;
}

static int groups_build(replay *r)
{
    td_queues *q = r->q;
    for (size_t i = 0; i < r->ndefs; i++) {
        struct rdef *d = &r->defs[i];
        if (!d->name)
            continue;
        td_queue_policy pol;
        queue_policy_parse(d->policy, &pol);
        qgroup *g = queue_group_new(d->name, d->topic, &pol, d->created_ms);
        int rc = g ? queue_group_insert(q, g) : -ENOMEM;
        if (rc) {
            queue_group_free(g);
            return rc;
        }
        /* The topics as they are now, every partition at 0 and changed; then what was
         * written. */
        bool changed = false;
        if ((rc = queue_group_sync(q->e, g, false, &changed)) == TD_ENOTFOUND) {
            TD_WARN("queue", "group %s: topic %s does not exist", g->name, g->topic);
            td_error_clear();
        } else if (rc) {
            return rc;
        }
    }
    return 0;
}

static int orphans_write(replay *r)
{
    int rc = 0;
    int32_t n = state_partitions(r->q->e, STATE_QUEUES);
    for (int32_t sp = 0; sp < n && rc == 0; sp++) {
        td_buf b;
        td_buf_init(&b);
        for (size_t pos = 0; pos < r->orphans.len && rc == 0;) {
            uint32_t part = td_load_be32(r->orphans.p + pos);
            uint32_t kl = td_load_be32(r->orphans.p + pos + 4);
            size_t len = 4 + kl + 4; /* the key's frame and the tombstone's */
            if ((int32_t)part == sp)
                rc = td_buf_append(&b, r->orphans.p + pos + 4, len);
            pos += 4 + len;
        }
        int64_t end = -1;
        if (rc == 0 && b.len)
            rc = append_framed(r->q->e, sp, &b, &end);
        if (rc == 0)
            rc = qs_wait(r->q, sp, end);
        td_buf_free(&b);
    }
    return rc;
}

int qs_load(td_queues *q)
{
    replay r = {.q = q, .pass = 1};
    td_buf_init(&r.orphans);
    int64_t t0 = td_mono_ns();
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
    if (r.skipped)
        TD_WARN("queue", "%zu records of %s not understood (skipped)", r.skipped,
                STATE_QUEUES_TOPIC);
    for (size_t i = 0; i < r.ndefs; i++) {
        free(r.defs[i].name);
        free(r.defs[i].topic);
        free(r.defs[i].policy);
    }
    free(r.defs);
    td_buf_free(&r.orphans);
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
