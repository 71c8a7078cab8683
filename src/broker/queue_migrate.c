/*
 * queue_migrate.c: queue groups that an older data directory kept in the catalog (a group's
 * definition in `queues`, each partition's state as one blob in `queue_parts`), moved to the
 * state topic __queue_state at the first start (queue_state.c has the records).
 *
 * Each group is loaded as the older versions loaded it, its records are appended (definition,
 * positions, entries) and waited for; then the catalog's rows go in one transaction. A crash
 * before that migrates again at the next start: the group replayed from the state topic is
 * replaced by the catalog's, and the same keys are written again.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "broker/queue_int.h"
#include "broker/state.h"

/*
 * The catalog's blob: per partition, floor and next, and the entries, each as
 *   offset i64, at i64, first_fail i64, last_fail i64, event_ms i64, key_hash u64,
 *   deliveries i32, state u8, has_key u8, error length u16, error bytes
 * in little-endian order.
 */
static uint64_t get64(const unsigned char **p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t) * (*p)++ << (8 * i);
    return v;
}

#define ENTRY_FIXED (8 * 6 + 4 + 1 + 1 + 2)

int queue_saved_entry_next(const unsigned char **p, const unsigned char *end, int64_t below,
                           int64_t after, queue_saved_entry *out)
{
    const unsigned char *r = *p;
    if (r == end)
        return 0;
    if ((size_t)(end - r) < ENTRY_FIXED)
        return -1;
    memset(out, 0, sizeof(*out));
    out->offset = (int64_t)get64(&r);
    out->at = (int64_t)get64(&r);
    out->first_fail = (int64_t)get64(&r);
    out->last_fail = (int64_t)get64(&r);
    out->event_ms = (int64_t)get64(&r);
    out->key_hash = get64(&r);
    uint32_t d = 0;
    for (int i = 0; i < 4; i++)
        d |= (uint32_t)*r++ << (8 * i);
    out->deliveries = (int32_t)d;
    out->state = *r++;
    out->has_key = *r++ != 0;
    size_t el = r[0] | (size_t)r[1] << 8;
    r += 2;
    if ((size_t)(end - r) < el || out->state < DELIVERY_INFLIGHT || out->state > DELIVERY_DEAD ||
        out->offset < 0 || out->offset >= below || out->offset <= after || out->deliveries < 0 ||
        out->deliveries > 1000)
        return -1;
    out->error = el ? (const char *)r : NULL;
    out->error_len = el;
    *p = r + el;
    return 1;
}

/* Decodes a partition's entries; false if the bytes are not entries (then none are kept). */
static bool entries_decode(qgroup *g, qpart *p, const unsigned char *b, size_t len)
{
    /* SQLite gives an empty blob as NULL, and NULL + 0 is undefined. */
    if (len == 0)
        return true;
    const unsigned char *r = b, *end = b + len;
    queue_saved_entry se;
    int rc;
    while ((rc = queue_saved_entry_next(&r, end, p->next, p->n ? p->v[p->n - 1].offset : -1,
                                        &se)) == 1) {
        qentry *x = queue_entry_insert(g, p, se.offset);
        if (!x)
            return false;
        x->d.at = se.at;
        x->d.first_fail = se.first_fail;
        x->d.last_fail = se.last_fail;
        x->event_ms = se.event_ms;
        x->key_hash = se.key_hash;
        x->d.deliveries = se.deliveries;
        x->d.state = se.state;
        x->d.flags = se.has_key ? QF_KEY : 0;
        g->has_dead |= se.state == DELIVERY_DEAD;
        if (se.error_len && (x->error = malloc(se.error_len + 1)) != NULL) {
            memcpy(x->error, se.error, se.error_len);
            x->error[se.error_len] = 0;
        }
    }
    return rc == 0;
}

static int load_part(void *arg, const catalog_qpart *c)
{
    qgroup *g = arg;
    qtopic *t = queue_topic_find(g, c->topic);
    if (!t || c->topic_id != t->id || c->partition < 0 || c->partition >= t->nparts) {
        /* An older topic of that name, or one gone: its rows go with the catalog's. */
        return 0;
    }
    qpart *p = &t->parts[c->partition];
    p->next = c->next;
    p->dirty = false;
    if (!entries_decode(g, p, c->pending, c->pending_len)) {
        TD_WARN("queue",
                "group %s: the saved state of %s/%" PRId32
                " is unreadable; delivering again from offset %" PRId64,
                g->name, t->name, c->partition, c->floor);
        g->pending -= (int64_t)p->n;
        for (size_t k = 0; k < p->n; k++)
            free(p->v[k].error);
        p->n = 0;
        p->next = c->floor;
        p->dirty = true;
    }
    return 0;
}

/* Loads one catalog group into q (replacing one of that name the replay built) and writes its
 * records. Under nothing: the engine is opening. */
static int migrate_group(td_queues *q, const catalog_queue *cq)
{
    size_t idx;
    qgroup *old = queue_group_find(q, cq->name, &idx);
    if (old) {
        memmove(&q->g[idx], &q->g[idx + 1], (q->n - idx - 1) * sizeof(*q->g));
        q->n--;
        queue_group_free(old);
    }
    qgroup *g = NULL;
    int rc = queue_group_restore(q, cq->name, cq->topic, cq->policy, cq->created_ms, &g);
    if (rc)
        return rc;
    pthread_mutex_lock(&q->e->admin_mu);
    rc = catalog_qparts_list(q->e->cat, g->name, load_part, g);
    pthread_mutex_unlock(&q->e->admin_mu);
    g->next_deadline = g->next_due = 0;
    int64_t end = -1;
    if (rc == 0)
        rc = qs_group_put(q, g, true, &end);
    if (rc == 0)
        rc = qs_wait(q, qs_partition(q, g), end);
    return rc;
}

int qs_migrate(td_queues *q)
{
    catalog_queue *cq = NULL;
    size_t n = 0;
    pthread_mutex_lock(&q->e->admin_mu);
    int rc = catalog_queue_list(q->e->cat, &cq, &n);
    pthread_mutex_unlock(&q->e->admin_mu);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = migrate_group(q, &cq[i]);
    free(cq);
    bool had = false;
    if (rc == 0) {
        pthread_mutex_lock(&q->e->admin_mu);
        rc = catalog_queues_migrated(q->e->cat, &had);
        pthread_mutex_unlock(&q->e->admin_mu);
    }
    if (rc == 0 && had)
        TD_INFO("queue", "migrated %zu queue group%s from the catalog to %s", n, n == 1 ? "" : "s",
                STATE_QUEUES_TOPIC);
    else if (rc)
        TD_ERROR("queue", "cannot migrate the queue groups from the catalog: %s", td_last_error());
    return rc;
}
