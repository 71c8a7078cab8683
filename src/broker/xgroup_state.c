/*
 * xgroup_state.c: Redis consumer groups as records of the compacted state topic __xgroup_state
 * (xgroup_int.h; docs/storage.md, "State topics", for the formats).
 *
 * One record per group, per consumer and per pending entry, keyed by what names it, so that
 * a change writes only the records of what it changed (XACK of one entry: one tombstone, a few
 * dozen bytes, whatever the size of the PEL) and the cleaner keeps the topic proportional to the
 * live state. Each changing call appends its records as one batch, under the groups' mutex, to
 * the topic's single partition (one total order for every group), and its client is answered
 * once the batch is durable under the topic's fsync policy, through the group commit of events.
 *
 * At open the catalog's rows are loaded first (XDEL's removed entries, which are stream data and
 * stay there, and the group rows of a data directory from before this topic), then the topic is
 * replayed over them. Group rows found are migrated: their records are written and made durable,
 * then the rows are dropped in one catalog transaction; repeated after a crash in between, the
 * same records are written again, which changes nothing.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "broker/delivery.h"
#include "broker/queue.h"
#include "broker/state.h"
#include "broker/xgroup_int.h"

/* The record kinds: the key's first int16 (a new kind or key layout gets a new number). */
enum { XREC_GROUP = 0, XREC_CONSUMER = 1, XREC_PENDING = 2 };
/* The version of every value's fields (its first int16). A group's value is of version 1
 * since it holds Redis's entries_read counter (after the policy); version 0 (without it) is
 * still replayed, and the counter then computed (xstate_load). */
#define XREC_VALUE_V0 0
#define XREC_GROUP_V1 1

/* ---------------------------------------------------------------------------------------------
 * Encoding
 */
/* A binary-safe name: int32 length, then the bytes (-1: none). */
static int put_bytes(td_buf *b, const void *p, size_t n, bool null)
{
    if (null)
        return state_put32(b, -1);
    if (n > INT32_MAX)
        return td_fail(TD_ETOOBIG, "a consumer group name is above 2 GiB");
    int rc = state_put32(b, (int32_t)n);
    return rc ? rc : n ? td_buf_append(b, p, n) : 0;
}

/* Starts a record: its key's common fields. */
static void rec_begin(td_xgroups *x, int16_t kind, const xstr *st, const xgrp *g)
{
    delivery_recs *rb = &x->rb;
    drecs_begin(rb);
    drecs_check(rb, state_put16(&rb->buf, kind) | state_put64(&rb->buf, st->topic_id) |
                        state_put32(&rb->buf, st->partition) |
                        put_bytes(&rb->buf, g->nm.name, g->nm.len, false));
}

/* Ends the key (and starts the value, with its version, unless tombstone). */
static void rec_key_end(td_xgroups *x, bool tombstone, int16_t version)
{
    if (tombstone) {
        drecs_tombstone(&x->rb);
        return;
    }
    drecs_value(&x->rb);
    drecs_check(&x->rb, state_put16(&x->rb.buf, version));
}

static void rec_end(td_xgroups *x)
{
    drecs_end(&x->rb);
}

static void key_pending(td_xgroups *x, const xstr *st, const xgrp *g, td_sid id, bool tombstone)
{
    rec_begin(x, XREC_PENDING, st, g);
    drecs_check(&x->rb, state_put64(&x->rb.buf, (int64_t)id.ms) | state_put64(&x->rb.buf, (int64_t)id.seq));
    rec_key_end(x, tombstone, XREC_VALUE_V0);
}

static void key_consumer(td_xgroups *x, const xstr *st, const xgrp *g, const xcons *c,
                         bool tombstone)
{
    rec_begin(x, XREC_CONSUMER, st, g);
    drecs_check(&x->rb, put_bytes(&x->rb.buf, c->nm.name, c->nm.len, false));
    rec_key_end(x, tombstone, XREC_VALUE_V0);
}

void xrec_group(td_xgroups *x, const xstr *st, const xgrp *g)
{
    td_buf *b = &x->rb.buf;
    rec_begin(x, XREC_GROUP, st, g);
    rec_key_end(x, false, XREC_GROUP_V1);
    char text[2048];
    bool pol = g->pol != NULL;
    if (pol && queue_policy_format(g->pol, text, sizeof(text)) != 0)
        x->rb.bad = true;
    int rc = state_put64(b, (int64_t)g->last.ms) | state_put64(b, (int64_t)g->last.seq) |
             state_put64(b, g->created_ms) | put_bytes(b, text, pol ? strlen(text) : 0, !pol) |
             state_put64(b, g->entries_read);
    drecs_check(&x->rb, rc);
    rec_end(x);
}

void xrec_consumer(td_xgroups *x, const xstr *st, const xgrp *g, const xcons *c)
{
    key_consumer(x, st, g, c, false);
    drecs_check(&x->rb, state_put64(&x->rb.buf, c->seen_ms));
    rec_end(x);
}

void xrec_pending(td_xgroups *x, const xstr *st, const xgrp *g, const xpe *pe)
{
    td_buf *b = &x->rb.buf;
    key_pending(x, st, g, pe->id, false);
    int rc = put_bytes(b, pe->c->nm.name, pe->c->nm.len, false) | state_put64(b, pe->d.delivered) |
             state_put64(b, pe->d.deliveries);
    drecs_check(&x->rb, rc);
    rec_end(x);
}

void xrec_pending_gone(td_xgroups *x, const xstr *st, const xgrp *g, td_sid id)
{
    key_pending(x, st, g, id, true);
}

void xrec_consumer_gone(td_xgroups *x, const xstr *st, const xgrp *g, const xcons *c)
{
    for (size_t i = 0; i < g->npel; i++)
        if (g->pel[i].c == c)
            key_pending(x, st, g, g->pel[i].id, true);
    key_consumer(x, st, g, c, true);
}

void xrec_group_gone(td_xgroups *x, const xstr *st, const xgrp *g)
{
    for (size_t i = 0; i < g->npel; i++)
        if (g->pel[i].c)
            key_pending(x, st, g, g->pel[i].id, true);
    for (size_t i = 0; i < g->ncons; i++)
        key_consumer(x, st, g, g->cons[i], true);
    rec_begin(x, XREC_GROUP, st, g);
    rec_key_end(x, true,
                XREC_VALUE_V0); /* last: a replay meets the group's children's tombstones first */
}

int xrec_flush(td_xgroups *x, uint64_t *seq)
{
    delivery_recs *rb = &x->rb;
    *seq = 0;
    if (rb->bad) {
        /* Memory and log now disagree on this change; the next records of the same keys
         * carry their whole state again. */
        drecs_clear(rb);
        return td_fail(-ENOMEM, "out of memory recording a consumer group change");
    }
    int64_t end = -1;
    size_t done = 0;
    int rc = drecs_append(x->e, STATE_XGROUPS, 0, rb, &end, &done);
    if (rc) {
        /* The records not appended are kept, in order, for the next change's flush. */
        TD_ERROR("xgroup", "cannot append to %s (kept for the next change): %s",
                 STATE_XGROUPS_TOPIC, td_last_error());
        drecs_drop_front(rb, done);
        return rc;
    }
    *seq = end > 0 ? (uint64_t)end : 0;
    drecs_clear(rb);
    return 0;
}

void xrec_free(td_xgroups *x)
{
    drecs_free(&x->rb);
}

/* ---------------------------------------------------------------------------------------------
 * Replay
 */
static td_slice get_bytes(state_reader *r)
{
    int32_t n = state_get32(r);
    if (r->bad || n < 0 || r->n - r->pos < (size_t)n) {
        r->bad = true;
        return td_slice_make(NULL, 0);
    }
    td_slice s = td_slice_make(r->p + r->pos, (size_t)n);
    r->pos += (size_t)n;
    return s;
}

/* The group of a record, made as a placeholder when its own record comes later in the log
 * (the cleaner keeps only a key's latest record, which may follow its children's). */
static xgrp *replay_group(td_xgroups *x, int64_t topic_id, int32_t partition, td_slice name)
{
    xstream s = {topic_id, partition, NULL};
    xstr *st;
    xgrp *g = xg_group_find(x, &s, name, &st);
    if (g || (!st && !(st = xg_stream_get(x, topic_id, partition))))
        return g;
    if ((g = xg_group_insert(st, name)))
        g->placeholder = true;
    return g;
}

/* A record the replay does not understand stops the start (the delivery core's one rule). */
static int bad_record(const td_event *ev, const char *why)
{
    return delivery_replay_refuse(STATE_XGROUPS, 0, ev, why);
}

/* Pending records are replayed in a second pass, after every group and consumer record:
 * gathered, sorted by group and ID, and only the latest of each ID applied, so that a PEL of a
 * million entries is built in O(n log n) whatever order the log has them in (redeliveries and
 * claims move an entry's latest record after those of higher IDs; inserting each in place
 * would move memory quadratically). */
typedef struct rpend {
    xgrp *g;
    td_sid id;
    uint64_t order;
    xcons *c;    /* its consumer when it existed in the second pass, else: */
    char *cname; /* a copy of the name (created only if the entry stays pending) */
    size_t cnlen;
    int64_t delivery, count;
    bool tombstone;
} rpend;

typedef struct replay_ctx {
    td_xgroups *x;
    int pass; /* 1: groups and consumers; 2: pending entries */
    rpend *v;
    size_t n, cap;
} replay_ctx;

static int replay_pending(replay_ctx *rx, xgrp *g, td_sid id, const td_event *ev, state_reader *v)
{
    if (!g)
        return 0; /* its group is gone: its pending entries were tombstoned with it */
    if (td_grow(&rx->v, &rx->cap, rx->n, sizeof(*rx->v), 1024) != 0)
        return -ENOMEM;
    rpend *r = &rx->v[rx->n];
    *r = (rpend){.g = g, .id = id, .order = rx->n, .tombstone = !ev->value};
    if (ev->value) {
        td_slice cname = get_bytes(v);
        r->delivery = state_get64(v);
        r->count = state_get64(v);
        if (v->bad)
            return bad_record(ev, "a pending entry value too short");
        if (!(r->c = xg_cons_find(g, cname))) {
            if (!(r->cname = malloc(cname.n ? cname.n : 1)))
                return -ENOMEM;
            memcpy(r->cname, cname.p, cname.n);
            r->cnlen = cname.n;
        }
    }
    rx->n++;
    return 0;
}

static int rpend_cmp(const void *a, const void *b)
{
    const rpend *x = a, *y = b;
    if (x->g != y->g)
        return (uintptr_t)x->g < (uintptr_t)y->g ? -1 : 1;
    int c = td_sid_cmp(x->id, y->id);
    return c ? c : (x->order > y->order) - (x->order < y->order);
}

/* Applies the latest record of each pending entry gathered by the second pass. */
static int replay_pending_apply(replay_ctx *rx)
{
    int rc = 0;
    if (rx->n)
        qsort(rx->v, rx->n, sizeof(*rx->v), rpend_cmp);
    for (size_t i = 0; i < rx->n && rc == 0; i++) {
        const rpend *r = &rx->v[i];
        if (i + 1 < rx->n && rx->v[i + 1].g == r->g && td_sid_cmp(rx->v[i + 1].id, r->id) == 0)
            continue; /* a later record of the same entry decides */
        if (r->tombstone) {
            xpe *pe = xg_pel_get(r->g, r->id); /* pending from the catalog's rows, if any */
            if (pe)
                xg_pel_remove(r->g, pe);
            continue;
        }
        xcons *c = r->c ? r->c : xg_cons_add(r->g, td_slice_make(r->cname, r->cnlen), r->delivery);
        xpe *pe = c ? xg_pel_add(r->g, r->id, c, r->delivery) : NULL;
        if (!pe)
            rc = -ENOMEM;
        else
            pe->d.deliveries = r->count;
    }
    for (size_t i = 0; i < rx->n; i++)
        free(rx->v[i].cname);
    for (size_t i = 0; i < rx->x->ns; i++)
        for (size_t k = 0; k < rx->x->s[i].n; k++)
            xg_pel_compact(rx->x->s[i].g[k]);
    return rc;
}

static int replay_record(void *arg, int32_t partition, const td_event *ev)
{
    (void)partition;
    replay_ctx *rx = arg;
    td_xgroups *x = rx->x;
    state_reader k = {ev->key, ev->key_len, 0, false};
    state_reader v = {ev->value, ev->value_len, 0, false};
    int16_t kind = state_get16(&k);
    int64_t topic_id = state_get64(&k);
    int32_t part = state_get32(&k);
    td_slice gname = get_bytes(&k);
    if (k.bad || !ev->key)
        return bad_record(ev, "a key too short");
    int16_t version = ev->value ? state_get16(&v) : XREC_VALUE_V0;
    if (version != XREC_VALUE_V0 && !(kind == XREC_GROUP && version == XREC_GROUP_V1))
        return bad_record(ev, "a value of an unknown version (written by a newer tidings?)");
    xstream s = {topic_id, part, NULL};
    xstr *st;
    xgrp *g = xg_group_find(x, &s, gname, &st);
    if (kind != XREC_GROUP && kind != XREC_CONSUMER && kind != XREC_PENDING)
        return bad_record(ev, "a key of an unknown kind (written by a newer tidings?)");
    if ((kind == XREC_PENDING) != (rx->pass == 2))
        return 0; /* the other pass's */
    if (kind == XREC_GROUP) {
        if (!ev->value) {
            bool found;
            size_t i = st ? xg_name_search((void *const *)st->g, st->n, gname, &found) : 0;
            if (st && found)
                xg_group_remove(st, i);
            return 0;
        }
        if (!g && !(g = replay_group(x, topic_id, part, gname)))
            return -ENOMEM;
        g->last.ms = (uint64_t)state_get64(&v); /* the bits of a u64 */
        g->last.seq = (uint64_t)state_get64(&v);
        g->created_ms = state_get64(&v);
        int32_t plen = state_get32(&v);
        if (v.bad || plen < -1 || (plen > 0 && v.n - v.pos < (size_t)plen) || plen > 4095)
            return bad_record(ev, "a group value too short");
        char text[4096];
        if (plen > 0) {
            memcpy(text, v.p + v.pos, (size_t)plen);
            text[plen] = '\0';
            v.pos += (size_t)plen;
        }
        g->read_legacy = version == XREC_VALUE_V0;
        g->entries_read = g->read_legacy ? XG_READ_UNKNOWN : state_get64(&v);
        if (v.bad) /* any value: Redis's counter wraps */
            return bad_record(ev, "a group value too short");
        free(g->pol);
        g->pol = NULL;
        if (plen > 0) {
            if (!(g->pol = malloc(sizeof(*g->pol))))
                return -ENOMEM;
            queue_policy_parse(text, g->pol);
        }
        g->placeholder = false;
        g->next_due = INT64_MIN; /* swept once at the start */
        return 0;
    }
    if (kind == XREC_CONSUMER) {
        td_slice cname = get_bytes(&k);
        if (k.bad)
            return bad_record(ev, "a consumer key too short");
        if (!ev->value) {
            xcons *c = g ? xg_cons_find(g, cname) : NULL;
            if (c)
                xg_cons_remove(g, c);
            return 0;
        }
        int64_t seen = state_get64(&v);
        if (v.bad)
            return bad_record(ev, "a consumer value too short");
        xcons *c;
        if ((!g && !(g = replay_group(x, topic_id, part, gname))) ||
            !(c = xg_cons_add(g, cname, seen)))
            return -ENOMEM;
        c->seen_ms = seen;
        return 0;
    }
    td_sid id;
    id.ms = (uint64_t)state_get64(&k);
    id.seq = (uint64_t)state_get64(&k);
    if (k.bad)
        return bad_record(ev, "a pending entry key too short");
    return replay_pending(rx, g, id, ev, &v);
}

/* Drops the groups whose own record never came (their records outlived a tombstone the
 * cleaner removed: cannot happen as written, but a replay must not invent groups), and the
 * streams of topics deleted while their tombstones were not yet written (a crash). */
static void replay_prune(td_xgroups *x)
{
    size_t dropped = 0;
    for (size_t i = 0; i < x->ns;) {
        xstr *st = &x->s[i];
        td_topic_ref *ref;
        bool gone = broker_topic_acquire_id(x->e, st->topic_id, &ref) != 0;
        if (!gone) {
            gone = st->partition >= broker_topic_partitions(ref);
            broker_topic_release(ref);
        }
        if (gone) {
            for (size_t k = 0; k < st->n; k++)
                xrec_group_gone(x, st, st->g[k]);
            xg_stream_drop(x, i);
            continue;
        }
        for (size_t k = 0; k < st->n;) {
            if (st->g[k]->placeholder) {
                xrec_group_gone(x, st, st->g[k]);
                xg_group_remove(st, k);
                dropped++;
            } else {
                k++;
            }
        }
        i++;
    }
    if (dropped)
        TD_WARN("xgroup", "%zu consumer group(s) in %s had no group record: dropped", dropped,
                STATE_XGROUPS_TOPIC);
}

/* Groups whose records had no entries_read (version 0, or the catalog's rows of an older data
 * directory) get the count tidings showed for them then, the entries up to the last delivered
 * ID (exact: offsets count every entry added), from which Redis's rules go on; their records
 * are written again, of version 1, so that the next start finds the same count. */
static void legacy_reads(td_xgroups *x)
{
    for (size_t i = 0; i < x->ns; i++) {
        xstr *st = &x->s[i];
        bool any = false;
        for (size_t k = 0; k < st->n; k++)
            any |= st->g[k]->read_legacy;
        td_topic_ref *ref;
        if (!any || broker_topic_acquire_id(x->e, st->topic_id, &ref) != 0)
            continue; /* replay_prune dropped the streams of deleted topics */
        td_part *p = st->partition < broker_topic_partitions(ref)
                         ? broker_topic_part(ref, st->partition)
                         : NULL;
        for (size_t k = 0; k < st->n; k++) {
            xgrp *g = st->g[k];
            int64_t read;
            if (!g->read_legacy)
                continue;
            g->read_legacy = false;
            if (p && part_stream_after(p, g->last, &read) == 0)
                g->entries_read = read;
            xrec_group(x, st, g);
        }
        broker_topic_release(ref);
    }
}

/* The whole state as records (a migration). */
static void record_all(td_xgroups *x)
{
    for (size_t i = 0; i < x->ns; i++) {
        const xstr *st = &x->s[i];
        for (size_t k = 0; k < st->n; k++) {
            const xgrp *g = st->g[k];
            xrec_group(x, st, g);
            for (size_t j = 0; j < g->ncons; j++)
                xrec_consumer(x, st, g, g->cons[j]);
            for (size_t j = 0; j < g->npel; j++)
                if (g->pel[j].c)
                    xrec_pending(x, st, g, &g->pel[j]);
        }
    }
}

int xstate_load(td_xgroups *x, bool had_rows)
{
    td_engine *e = x->e;
    int64_t t0 = td_mono_ns();
    replay_ctx rx = {.x = x, .pass = 1};
    int rc = state_replay(e, STATE_XGROUPS, replay_record, &rx);
    if (rc == 0) {
        rx.pass = 2;
        rc = state_replay(e, STATE_XGROUPS, replay_record, &rx);
    }
    if (rc == 0)
        rc = replay_pending_apply(&rx);
    else
        for (size_t i = 0; i < rx.n; i++)
            free(rx.v[i].cname);
    free(rx.v);
    if (rc) {
        if (rc != TD_ECORRUPT) /* delivery_replay_refuse said why */
            TD_ERROR("xgroup", "cannot replay %s: %s", STATE_XGROUPS_TOPIC, td_last_error());
        return rc;
    }
    replay_prune(x);
    legacy_reads(x);
    if (had_rows)
        record_all(x);
    uint64_t seq = 0;
    if ((rc = xrec_flush(x, &seq)) == 0 && seq)
        rc = state_wait(e, STATE_XGROUPS, 0, (int64_t)seq);
    if (rc == 0 && had_rows) {
        pthread_mutex_lock(&e->admin_mu);
        rc = catalog_xgroups_migrated(e->cat);
        pthread_mutex_unlock(&e->admin_mu);
        if (rc == 0)
            TD_INFO("xgroup", "migrated the Redis consumer groups from the catalog to %s",
                    STATE_XGROUPS_TOPIC);
    }
    size_t groups = 0, pending = 0;
    for (size_t i = 0; i < x->ns; i++)
        for (size_t k = 0; k < x->s[i].n; k++) {
            groups++;
            pending += x->s[i].g[k]->live;
        }
    if (groups)
        TD_INFO("xgroup",
                "replayed %zu Redis consumer group(s), %zu pending entries, in %" PRId64 " ms",
                groups, pending, (td_mono_ns() - t0) / 1000000);
    return rc;
}
