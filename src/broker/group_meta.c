/*
 * group_meta.c: consumer groups' membership kept as GroupMetadata records of __consumer_offsets,
 * as Kafka's GroupMetadataManager keeps it, so that a group survives a restart: a Stable group
 * comes back with its generation, protocol, leader and members (whose heartbeats and commits go
 * on without a rebalance), an Empty group with its generation.
 *
 * Records (Kafka's formats, docs/storage.md "State topics"):
 *   key   int16 2 (GroupMetadataKey), string group
 *   value int16 3 (GroupMetadataValue v3), string protocol type, int32 generation,
 *         string protocol (-1: none), string leader (-1: none), int64 current state timestamp
 *         (wall ms), int32 member count, then per member: string member id, string group
 *         instance id (-1: dynamic), string client id, string client host, int32 rebalance
 *         timeout ms, int32 session timeout ms, bytes subscription (int32 length: the member's
 *         metadata for the group's protocol), bytes assignment
 *   a null value: the group is gone (DeleteGroups, or expired while Empty).
 * Versions 0 to 3 are read (0 has no rebalance timeout, 0 and 1 no timestamp, 0 to 2 no
 * instance id); version 4 and later (flexible versions) are skipped with a warning.
 *
 * When they are written (Kafka's rules): when the leader's SyncGroup completes a rebalance,
 * before any member gets its assignment (the answers go out once the record is durable); when a
 * rebalance ends with no member left (Empty, with the new generation); a tombstone when the group
 * is deleted or forgotten. A crash between a rebalance and its sync leaves the previous record:
 * the group comes back at its previous generation and its members rejoin, as with Kafka.
 *
 * Every function but gmeta_wait runs with the coordinator's mutex held; the records are encoded
 * and appended there (the append does not wait), which keeps them in the order of the
 * coordinator's changes.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "broker/engine_int.h"
#include "broker/group_int.h"
#include "broker/state.h"

#define KEY_GROUP_METADATA 2
#define VALUE_GROUP_METADATA 3

static int put_bytes(td_buf *b, const void *p, size_t n)
{
    if (n > INT32_MAX)
        return td_fail(TD_ETOOBIG, "a group metadata field is above %d bytes", INT32_MAX);
    int rc = state_put32(b, (int32_t)n);
    return rc ? rc : n ? td_buf_append(b, p, n) : 0;
}

static const proto_entry *chosen_proto(const group *g, const member *m)
{
    for (size_t i = 0; g->protocol && i < m->nprotos; i++)
        if (strcmp(m->protos[i].name, g->protocol) == 0)
            return &m->protos[i];
    return NULL;
}

static int encode_value(td_buf *b, const group *g)
{
    int rc = state_put16(b, VALUE_GROUP_METADATA) |
             state_put_str(b, g->protocol_type ? g->protocol_type : "") |
             state_put32(b, g->generation) | state_put_str(b, g->nm ? g->protocol : NULL) |
             state_put_str(b, g->nm ? g->leader : NULL) | state_put64(b, td_wall_ms()) |
             state_put32(b, (int32_t)g->nm);
    for (size_t i = 0; i < g->nm && rc == 0; i++) {
        const member *m = g->m[i];
        const proto_entry *p = chosen_proto(g, m);
        rc = state_put_str(b, m->id) | state_put_str(b, m->instance_id) |
             state_put_str(b, m->client_id ? m->client_id : "") |
             state_put_str(b, m->client_host ? m->client_host : "") |
             state_put32(b, m->rebalance_ms) | state_put32(b, m->session_ms);
        if (rc == 0)
            rc = put_bytes(b, p ? p->meta : NULL, p ? p->len : 0);
        if (rc == 0)
            rc = put_bytes(b, m->assignment, m->assignment_len);
    }
    return rc;
}

/* Appends the record (value NULL: the tombstone) to the group's partition. */
static int append(td_coord *c, const char *name, const td_buf *value, int32_t *part, int64_t *end)
{
    td_buf k;
    td_buf_init(&k);
    int rc = state_put16(&k, KEY_GROUP_METADATA) | state_put_str(&k, name);
    if (rc == 0) {
        td_event ev = {.key = k.p, .key_len = k.len};
        if (value) {
            ev.value = value->p;
            ev.value_len = value->len;
        }
        *part = state_partition_for(c->e, STATE_OFFSETS, name);
        ev.partition = *part;
        rc = state_append(c->e, STATE_OFFSETS, *part, &ev, 1, end);
    }
    td_buf_free(&k);
    return rc;
}

/*
 * The sync answers that wait for a record. Shared by the group (until its next record or its
 * end) and the durability callback, which runs without the coordinator's mutex (on the flusher
 * thread, or at once under a relaxed fsync policy): its own mutex guards the list.
 */
struct gmeta_pending {
    pthread_mutex_t mu;
    int refs;
    bool done;
    int rc;
    char group[TD_GROUP_NAME_MAX + 1];
    gmeta_answer *v;
    size_t n, cap;
};

static void answer(gmeta_answer *a, int rc)
{
    if (rc && a->res)
        a->res->err = COORD_STORAGE;
    a->cb(a->arg, a->res);
}

void gmeta_release(struct gmeta_pending *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    bool last = --p->refs == 0;
    pthread_mutex_unlock(&p->mu);
    if (last) {
        pthread_mutex_destroy(&p->mu);
        free(p->v);
        free(p);
    }
}

static void store_durable(void *arg, int rc)
{
    struct gmeta_pending *p = arg;
    if (rc)
        TD_WARN("group", "group %s: its metadata could not be written: %s", p->group,
                td_strerror(rc));
    pthread_mutex_lock(&p->mu);
    p->done = true;
    p->rc = rc;
    gmeta_answer *v = p->v;
    size_t n = p->n;
    p->v = NULL;
    p->n = p->cap = 0;
    pthread_mutex_unlock(&p->mu);
    for (size_t i = 0; i < n; i++)
        answer(&v[i], rc);
    free(v);
    gmeta_release(p);
}

void gmeta_sync_answer(group *g, coord_sync_cb cb, void *arg, coord_sync_res *res)
{
    gmeta_answer a = {.cb = cb, .arg = arg, .res = res};
    struct gmeta_pending *p = g->pending;
    int rc = 0;
    if (p) {
        pthread_mutex_lock(&p->mu);
        bool queued = false;
        if (!p->done && td_grow(&p->v, &p->cap, p->n, sizeof(*p->v), 4) == 0) {
            p->v[p->n++] = a;
            queued = true;
        }
        rc = p->rc;
        pthread_mutex_unlock(&p->mu);
        if (queued)
            return;
    }
    answer(&a, rc);
}

int gmeta_store(td_coord *c, group *g, gmeta_answer *answers, size_t n)
{
    td_buf v;
    td_buf_init(&v);
    struct gmeta_pending *p = NULL;
    int32_t part = 0;
    int64_t end = -1;
    int rc = encode_value(&v, g);
    if (rc == 0 && n > 0) {
        p = calloc(1, sizeof(*p));
        if (!p || !(p->v = malloc(n * sizeof(*p->v))))
            rc = -ENOMEM;
    }
    if (rc == 0)
        rc = append(c, g->name, &v, &part, &end);
    td_buf_free(&v);
    if (rc) {
        TD_WARN("group", "group %s: its metadata could not be written: %s", g->name,
                td_strerror(rc));
        if (p)
            free(p->v);
        free(p);
        for (size_t i = 0; i < n; i++)
            answer(&answers[i], rc);
        return rc;
    }
    gmeta_release(g->pending);
    g->pending = NULL;
    if (!p)
        return state_when_durable(c->e, STATE_OFFSETS, part, end, NULL, NULL);
    pthread_mutex_init(&p->mu, NULL);
    p->refs = 2; /* the group's and the callback's */
    snprintf(p->group, sizeof(p->group), "%s", g->name);
    memcpy(p->v, answers, n * sizeof(*answers));
    p->n = p->cap = n;
    g->pending = p;
    rc = state_when_durable(c->e, STATE_OFFSETS, part, end, store_durable, p);
    if (rc)
        store_durable(p, rc);
    return rc;
}

int gmeta_delete(td_coord *c, const char *name, int64_t *end)
{
    int32_t part;
    *end = -1;
    int rc = append(c, name, NULL, &part, end);
    if (rc)
        TD_WARN("group", "group %s: its tombstone could not be written: %s", name, td_strerror(rc));
    return rc;
}

int gmeta_wait(td_coord *c, const char *name, int64_t end)
{
    if (end < 0)
        return 0;
    return state_wait(c->e, STATE_OFFSETS, state_partition_for(c->e, STATE_OFFSETS, name), end);
}

/* ---------------------------------------------------------------------------------------------
 * Restore
 */
/* Kafka's "bytes": int32 length, then the bytes; a null (-1) is read as empty. */
static void *get_bytes(state_reader *r, size_t *len)
{
    int32_t n = state_get32(r);
    *len = 0;
    if (r->bad)
        return NULL;
    if (n == -1)
        n = 0;
    if (n < 0 || (size_t)n > r->n - r->pos) {
        r->bad = true;
        return NULL;
    }
    void *p = malloc(n ? (size_t)n : 1);
    if (!p) {
        r->bad = true;
        return NULL;
    }
    memcpy(p, r->p + r->pos, (size_t)n);
    r->pos += (size_t)n;
    *len = (size_t)n;
    return p;
}

static char *get_nonnull(state_reader *r)
{
    char *s = state_get_str(r);
    if (!s && !r->bad)
        s = strdup("");
    if (!s)
        r->bad = true;
    return s;
}

/* One member as the record has it; NULL if it is malformed (r->bad) or out of memory. */
static member *read_member(state_reader *r, int16_t ver, const char *protocol, int64_t now)
{
    member *m = calloc(1, sizeof(*m));
    if (!m) {
        r->bad = true;
        return NULL;
    }
    m->id = state_get_str(r);
    m->instance_id = ver >= 3 ? state_get_str(r) : NULL;
    m->client_id = get_nonnull(r);
    m->client_host = get_nonnull(r);
    m->rebalance_ms = ver >= 1 ? state_get32(r) : 0;
    m->session_ms = state_get32(r);
    if (ver < 1)
        m->rebalance_ms = m->session_ms;
    size_t sub_len = 0;
    void *sub = get_bytes(r, &sub_len);
    m->assignment = get_bytes(r, &m->assignment_len);
    if (!r->bad && sub && m->id && protocol) {
        m->protos = calloc(1, sizeof(*m->protos));
        if (m->protos && (m->protos[0].name = strdup(protocol))) {
            m->protos[0].meta = sub;
            m->protos[0].len = sub_len;
            m->nprotos = 1;
            sub = NULL;
        }
    }
    free(sub);
    if (r->bad || !m->id || !m->assignment || (protocol && m->nprotos != 1)) {
        r->bad = true;
        coord_member_free(m);
        return NULL;
    }
    /* Kafka restarts every member's session at load: a member that is gone expires one session
     * timeout after the restart, the others go on heartbeating. */
    m->deadline = now + m->session_ms;
    m->synced = true;
    return m;
}

/* Fills the Empty group g from the record; false if the record is malformed (g is then as the
 * record left it: the caller removes it). */
static bool restore_group(group *g, const gstate_meta *rec, int64_t now)
{
    state_reader r = {.p = rec->value, .n = rec->len};
    int16_t ver = state_get16(&r);
    if (ver < 0 || ver > VALUE_GROUP_METADATA) {
        TD_WARN("group", "group %s: metadata version %d is not known: the group starts empty",
                rec->group, ver);
        return true;
    }
    char *ptype = get_nonnull(&r);
    int32_t gen = state_get32(&r);
    char *proto = state_get_str(&r), *leader = state_get_str(&r);
    int64_t ts = ver >= 2 ? state_get64(&r) : -1;
    int32_t nm = state_get32(&r);
    g->protocol_type = ptype && ptype[0] ? ptype : NULL;
    if (!g->protocol_type)
        free(ptype);
    g->generation = gen;
    g->protocol = proto;
    g->leader = leader;
    /* A member takes at least 24 bytes of the value: the count cannot make us allocate more
     * than the record's size. */
    if (r.bad || nm < 0 || (size_t)nm > rec->len / 24 || (nm > 0 && (!proto || !leader)))
        return false;
    if (nm > 0 && !(g->m = calloc((size_t)nm, sizeof(*g->m))))
        return false;
    g->cap_m = (size_t)nm;
    for (int32_t i = 0; i < nm; i++) {
        member *m = read_member(&r, ver, proto, now);
        if (!m)
            return false;
        g->m[g->nm++] = m;
    }
    if (nm > 0) {
        g->state = COORD_STABLE;
        bool found = false;
        for (size_t i = 0; i < g->nm && !found; i++)
            found = strcmp(g->m[i]->id, leader) == 0;
        if (!found) { /* not written so; the first member leads, as after a leader leaves */
            free(g->leader);
            g->leader = strdup(g->m[0]->id);
            if (!g->leader)
                return false;
        }
    } else {
        g->state = COORD_EMPTY;
        free(g->protocol);
        free(g->leader);
        g->protocol = g->leader = NULL;
        if (ts > 0)
            g->empty_since = ts; /* offsets expire from when it became empty, as before */
    }
    return true;
}

int gmeta_restore(td_coord *c)
{
    gstate_meta *v = NULL;
    size_t n = 0;
    gstate_take_metadata(c->e, &v, &n);
    int64_t now = td_mono_ms();
    size_t stable = 0, empty = 0;
    int rc = 0;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < n && rc == 0; i++) {
        group *g = coord_group_get(c, v[i].group);
        if (!g) {
            rc = -ENOMEM;
            break;
        }
        if (!restore_group(g, &v[i], now)) {
            TD_WARN("group", "group %s: malformed metadata in %s: the group starts empty",
                    v[i].group, STATE_OFFSETS_TOPIC);
            for (size_t k = 0; k < g->nm; k++)
                coord_member_free(g->m[k]);
            g->nm = 0;
            g->state = COORD_EMPTY;
            free(g->protocol);
            free(g->leader);
            g->protocol = g->leader = NULL;
        }
        if (g->state == COORD_STABLE)
            stable++;
        else
            empty++;
    }
    if (n)
        pthread_cond_signal(&c->cv); /* the members' session timers */
    pthread_mutex_unlock(&c->mu);
    gstate_meta_free(v, n);
    if (n)
        TD_INFO("group", "restored %zu stable and %zu empty groups from %s", stable, empty,
                STATE_OFFSETS_TOPIC);
    return rc;
}
