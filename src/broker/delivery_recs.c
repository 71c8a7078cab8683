/*
 * delivery_recs.c: state records of the delivery core (delivery.h): batches of keyed records
 * built under a front end's mutex and appended to a state topic (state.h) in bounded batches,
 * and the replay's one rule for a record it does not understand.
 *
 * The front ends keep their own formats (docs/storage.md, "State topics": __queue_state for
 * queue groups, __xgroup_state for Redis consumer groups); a batch only knows where each
 * record's key and value are in its buffer.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "broker/delivery.h"

void drecs_init(delivery_recs *r)
{
    memset(r, 0, sizeof(*r));
    td_buf_init(&r->buf);
}

void drecs_free(delivery_recs *r)
{
    td_buf_free(&r->buf);
    free(r->v);
    drecs_init(r);
}

void drecs_clear(delivery_recs *r)
{
    r->n = 0;
    r->buf.len = 0;
    r->bad = r->open = false;
    /* A large change (a group's deletion of a big pending list) does not keep its memory. */
    if (r->buf.cap > (1u << 20)) {
        td_buf_free(&r->buf);
        td_buf_init(&r->buf);
    }
    if (r->cap > 16384) {
        free(r->v);
        r->v = NULL;
        r->cap = 0;
    }
}

void drecs_begin(delivery_recs *r)
{
    if (td_grow(&r->v, &r->cap, r->n, sizeof(*r->v), 16) != 0) {
        r->bad = true;
        r->open = false; /* the calls that end this record must not touch the one before */
        return;
    }
    r->v[r->n++] = (delivery_rec){.koff = r->buf.len};
    r->open = true;
}

void drecs_check(delivery_recs *r, int rc)
{
    r->bad |= rc != 0;
}

/* Ends the key of the record being built. */
static delivery_rec *key_end(delivery_recs *r, bool tombstone)
{
    if (!r->open)
        return NULL;
    delivery_rec *x = &r->v[r->n - 1];
    x->klen = r->buf.len - x->koff;
    x->voff = r->buf.len;
    x->tombstone = tombstone;
    return x;
}

void drecs_value(delivery_recs *r)
{
    key_end(r, false);
}

void drecs_tombstone(delivery_recs *r)
{
    key_end(r, true);
    r->open = false;
}

void drecs_end(delivery_recs *r)
{
    if (r->open)
        r->v[r->n - 1].vlen = r->buf.len - r->v[r->n - 1].voff;
    r->open = false;
}

void drecs_copy(delivery_recs *r, const delivery_recs *from, size_t i)
{
    const delivery_rec *x = &from->v[i];
    drecs_begin(r);
    drecs_check(r, td_buf_append(&r->buf, from->buf.p + x->koff, x->klen));
    if (x->tombstone) {
        drecs_tombstone(r);
        return;
    }
    drecs_value(r);
    drecs_check(r, x->vlen ? td_buf_append(&r->buf, from->buf.p + x->voff, x->vlen) : 0);
    drecs_end(r);
}

void drecs_truncate(delivery_recs *r, size_t n)
{
    if (n >= r->n)
        return;
    r->buf.len = r->v[n].koff;
    r->n = n;
    r->open = false;
}

void drecs_drop_front(delivery_recs *r, size_t n)
{
    if (n == 0)
        return;
    if (n >= r->n) {
        drecs_clear(r);
        return;
    }
    size_t base = r->v[n].koff;
    memmove(r->buf.p, r->buf.p + base, r->buf.len - base);
    r->buf.len -= base;
    memmove(r->v, r->v + n, (r->n - n) * sizeof(*r->v));
    r->n -= n;
    for (size_t i = 0; i < r->n; i++) {
        r->v[i].koff -= base;
        r->v[i].voff -= base;
    }
}

/* Appends records [from, to) as one batch. Small batches (an ack's one tombstone) use the
 * stack: this is the path of every ack. */
static int append_range(td_engine *e, state_topic_id which, int32_t partition,
                        const delivery_recs *r, size_t from, size_t to, int64_t *end)
{
    /* Zeroed: GCC cannot see that every event is written before state_append reads it. */
    td_event local[16] = {{0}};
    td_event *ev = to - from <= 16 ? local : calloc(to - from, sizeof(*ev));
    if (!ev)
        return -ENOMEM;
    for (size_t i = from; i < to; i++) {
        const delivery_rec *x = &r->v[i];
        ev[i - from] = (td_event){.key = r->buf.p + x->koff,
                                  .key_len = x->klen,
                                  .value = x->tombstone ? NULL : r->buf.p + x->voff,
                                  .value_len = x->tombstone ? 0 : x->vlen,
                                  .partition = partition};
    }
    int rc = state_append(e, which, partition, ev, to - from, end);
    if (ev != local)
        free(ev);
    return rc;
}

int drecs_append(td_engine *e, state_topic_id which, int32_t partition, const delivery_recs *r,
                 int64_t *end, size_t *done)
{
    if (end)
        *end = -1;
    if (done)
        *done = 0;
    if (r->bad)
        return td_fail(-ENOMEM, "out of memory encoding state records");
    size_t from = 0;
    int rc = 0;
    while (from < r->n && rc == 0) {
        size_t to = from, bytes = 0;
        while (to < r->n && to - from < DELIVERY_BATCH_RECS &&
               (to == from || bytes + r->v[to].klen + r->v[to].vlen <= DELIVERY_BATCH_BYTES)) {
            bytes += r->v[to].klen + r->v[to].vlen;
            to++;
        }
        int64_t last = -1;
        if ((rc = append_range(e, which, partition, r, from, to, &last)) == 0) {
            if (end)
                *end = last;
            from = to;
        }
    }
    if (done)
        *done = from;
    return rc;
}

static const char *topic_name(state_topic_id which)
{
    switch (which) {
    case STATE_QUEUES:
        return STATE_QUEUES_TOPIC;
    case STATE_XGROUPS:
        return STATE_XGROUPS_TOPIC;
    case STATE_OFFSETS:
        return STATE_OFFSETS_TOPIC;
    default:
        return STATE_CLUSTER_TOPIC;
    }
}

int delivery_replay_refuse(state_topic_id which, int32_t partition, const td_event *ev,
                           const char *why)
{
    const char *topic = topic_name(which);
    TD_ERROR("delivery",
             "%s partition %" PRId32 " offset %" PRId64
             ": %s; refusing to start rather than lose the state it holds (run the tidings "
             "version that wrote it, or restore the data directory)",
             topic, partition, ev->offset, why);
    return td_fail(TD_ECORRUPT, "%s partition %" PRId32 " offset %" PRId64 ": %s", topic, partition,
                   ev->offset, why);
}
