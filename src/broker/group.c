/*
 * group.c: the group coordinator (see group.h for the model): groups and their members, the
 * membership state machine (JoinGroup, SyncGroup, Heartbeat, LeaveGroup), its timers and thread,
 * administration (list, describe, delete), metrics and the life cycle. The checks of offset
 * commits and the expiry of offsets are in group_offsets.c, the GroupMetadata records that keep
 * membership across restarts in group_meta.c; the three share group_int.h.
 *
 * The rules follow Kafka's classic GroupCoordinator so that its clients behave as they do
 * against Kafka:
 * - A new member of a group that is Empty starts a rebalance that waits
 *   group.initial.rebalance.delay.ms (extended by each further newcomer, up to the rebalance
 *   timeout) so that members starting together land in one generation.
 * - A rebalance completes when every member has rejoined and no member is still fetching its
 *   id, or at the rebalance timeout (the largest of the members'), which drops the members
 *   that did not rejoin. The generation goes up by one; the protocol is the one most members
 *   prefer among those all of them support; the leader (the first member, or the old leader if
 *   it rejoined) receives every member's metadata.
 * - The leader's SyncGroup makes the group Stable and answers every member waiting in SyncGroup
 *   with its assignment. Members that do not sync within the rebalance timeout are dropped and
 *   the group rebalances again.
 * - A member that neither heartbeats nor waits in JoinGroup/SyncGroup for its session timeout is
 *   dropped (a new member waiting in its first JoinGroup for up to five minutes).
 * - Static members (group.instance.id) keep their place across restarts: a rejoin under the same
 *   instance id replaces the old member id (which is then fenced) and, in a Stable group whose
 *   protocol does not change, gets the current generation back without a rebalance.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "broker/group_int.h"
#include "broker/health.h"

void coord_config_defaults(coord_config *c)
{
    c->min_session_ms = 6000;
    c->max_session_ms = 1800000;
    c->initial_rebalance_delay_ms = 3000;
    c->max_size = 1000;
    c->offsets_retention_ms = 7LL * 24 * 3600 * 1000;
    c->retention_check_ms = 600000;
}

const char *coord_err_name(coord_err e)
{
    static const char *const names[] = {
        "ok", "unknown member", "illegal generation", "rebalance in progress",
        "inconsistent group protocol", "fenced instance id", "member id required",
        "invalid session timeout", "invalid group id", "group is full", "group not found",
        "group is not empty", "coordinator not available", "storage error", "out of memory"};
    return (size_t)e < sizeof(names) / sizeof(names[0]) ? names[e] : "?";
}

static const char *const state_names[] = {"Empty", "PreparingRebalance", "CompletingRebalance",
                                          "Stable", "Dead"};

const char *coord_state_name(coord_state s)
{
    return (size_t)s < 5 ? state_names[s] : "?";
}

int coord_state_parse(const char *name)
{
    for (int i = 0; i < 5; i++)
        if (name && strcasecmp(name, state_names[i]) == 0)
            return i;
    return -1;
}

/* ---------------------------------------------------------------------------------------------
 * Small helpers
 */
static char *dup_str(const char *s)
{
    return strdup(s ? s : "");
}

static void *dup_mem(const void *p, size_t n)
{
    void *d = malloc(n ? n : 1);
    if (d && n)
        memcpy(d, p, n);
    return d;
}

static bool streq(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

static int64_t now_ms(void)
{
    return td_mono_ms();
}

/* "<prefix>-<uuid4>", as Kafka names members. */
static char *new_member_id(const char *prefix)
{
    uint8_t r[16];
    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
        /* Unique within this process is enough: a counter and the clock. */
        static uint64_t seq;
        uint64_t a = __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED), b = (uint64_t)td_mono_ns();
        memcpy(r, &a, 8);
        memcpy(r + 8, &b, 8);
    }
    r[6] = (uint8_t)((r[6] & 0x0f) | 0x40);
    r[8] = (uint8_t)((r[8] & 0x3f) | 0x80);
    size_t n = strlen(prefix ? prefix : "") + 38;
    char *s = malloc(n);
    if (!s)
        return NULL;
    snprintf(s, n,
             "%s-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             prefix ? prefix : "", r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9],
             r[10], r[11], r[12], r[13], r[14], r[15]);
    return s;
}

bool coord_group_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    return n > 0 && n <= TD_GROUP_NAME_MAX;
}

/* ---------------------------------------------------------------------------------------------
 * Groups and members
 */
static long group_index(td_coord *c, const char *name, bool *found)
{
    size_t lo = 0, hi = c->ng;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int cmp = strcmp(c->g[mid]->name, name);
        if (cmp == 0) {
            *found = true;
            return (long)mid;
        }
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return (long)lo;
}

group *coord_group_find(td_coord *c, const char *name)
{
    bool found;
    long i = group_index(c, name, &found);
    return found ? c->g[i] : NULL;
}

group *coord_group_get(td_coord *c, const char *name)
{
    bool found;
    long i = group_index(c, name, &found);
    if (found)
        return c->g[i];
    if (td_grow(&c->g, &c->cap_g, c->ng, sizeof(*c->g), 16) != 0)
        return NULL;
    group *g = calloc(1, sizeof(*g));
    if (!g || !(g->name = strdup(name))) {
        free(g);
        return NULL;
    }
    g->state = COORD_EMPTY;
    g->empty_since = td_wall_ms();
    memmove(&c->g[i + 1], &c->g[i], (c->ng - (size_t)i) * sizeof(*c->g));
    c->g[i] = g;
    c->ng++;
    return g;
}

static void member_free_protos(member *m)
{
    for (size_t i = 0; i < m->nprotos; i++) {
        free(m->protos[i].name);
        free(m->protos[i].meta);
    }
    free(m->protos);
    m->protos = NULL;
    m->nprotos = 0;
}

void coord_member_free(member *m)
{
    member_free_protos(m);
    free(m->id);
    free(m->instance_id);
    free(m->client_id);
    free(m->client_host);
    free(m->assignment);
    free(m);
}

static void group_free(group *g)
{
    for (size_t i = 0; i < g->nm; i++)
        coord_member_free(g->m[i]);
    for (size_t i = 0; i < g->np; i++)
        free(g->pend[i].id);
    free(g->m);
    free(g->pend);
    free(g->name);
    free(g->protocol_type);
    free(g->protocol);
    free(g->leader);
    gmeta_release(g->pending);
    free(g);
}

void coord_group_remove(td_coord *c, group *g)
{
    bool found;
    long i = group_index(c, g->name, &found);
    if (!found)
        return;
    memmove(&c->g[i], &c->g[i + 1], (c->ng - (size_t)i - 1) * sizeof(*c->g));
    c->ng--;
    group_free(g);
}

member *coord_member_find(group *g, const char *id)
{
    for (size_t i = 0; id && i < g->nm; i++)
        if (strcmp(g->m[i]->id, id) == 0)
            return g->m[i];
    return NULL;
}

static member *member_find_static(group *g, const char *instance_id)
{
    for (size_t i = 0; instance_id && i < g->nm; i++)
        if (streq(g->m[i]->instance_id, instance_id))
            return g->m[i];
    return NULL;
}

static long pending_find(group *g, const char *id)
{
    for (size_t i = 0; id && i < g->np; i++)
        if (strcmp(g->pend[i].id, id) == 0)
            return (long)i;
    return -1;
}

static void pending_remove(group *g, long i)
{
    free(g->pend[i].id);
    g->pend[i] = g->pend[--g->np];
}

/* Another member holds the static instance id this caller claims. */
bool coord_fenced(group *g, const char *member_id, const char *instance_id)
{
    if (!instance_id)
        return false;
    member *m = member_find_static(g, instance_id);
    return m && !streq(m->id, member_id);
}

static bool is_leader(const group *g, const member *m)
{
    return g->leader && strcmp(g->leader, m->id) == 0;
}

static int member_set_protocols(member *m, const coord_join_req *q)
{
    proto_entry *v = calloc(q->nprotocols ? q->nprotocols : 1, sizeof(*v));
    if (!v)
        return -ENOMEM;
    for (size_t i = 0; i < q->nprotocols; i++) {
        v[i].name = dup_str(q->protocols[i].name);
        v[i].meta = dup_mem(q->protocols[i].meta, q->protocols[i].len);
        v[i].len = q->protocols[i].len;
        if (!v[i].name || !v[i].meta) {
            member tmp = {.protos = v, .nprotos = i + 1};
            member_free_protos(&tmp);
            return -ENOMEM;
        }
    }
    member_free_protos(m);
    m->protos = v;
    m->nprotos = q->nprotocols;
    m->session_ms = q->session_ms;
    m->rebalance_ms = q->rebalance_ms > 0 ? q->rebalance_ms : q->session_ms;
    free(m->client_id);
    free(m->client_host);
    m->client_id = dup_str(q->client_id);
    m->client_host = dup_str(q->client_host);
    return m->client_id && m->client_host ? 0 : -ENOMEM;
}

static const proto_entry *member_proto(const member *m, const char *name)
{
    for (size_t i = 0; name && i < m->nprotos; i++)
        if (strcmp(m->protos[i].name, name) == 0)
            return &m->protos[i];
    return NULL;
}

/* True if every member supports `name` (except `skip`, whose protocols are being replaced). */
static bool all_support(const group *g, const char *name, const member *skip)
{
    for (size_t i = 0; i < g->nm; i++)
        if (g->m[i] != skip && !member_proto(g->m[i], name))
            return false;
    return true;
}

/* Kafka's supportsProtocols: the joiner's type matches and one of its protocols is supported by
 * every other member. */
static bool protocols_ok(const group *g, const coord_join_req *q, const member *self)
{
    if (!q->protocol_type || !q->protocol_type[0] || q->nprotocols == 0)
        return false;
    size_t others = g->nm - (self ? 1 : 0);
    if (others == 0)
        return true;
    if (!streq(g->protocol_type, q->protocol_type))
        return false;
    for (size_t i = 0; i < q->nprotocols; i++)
        if (q->protocols[i].name && all_support(g, q->protocols[i].name, self))
            return true;
    return false;
}

/* Same protocols and metadata as the member has now. */
static bool protocols_same(const member *m, const coord_join_req *q)
{
    if (m->nprotos != q->nprotocols)
        return false;
    for (size_t i = 0; i < q->nprotocols; i++) {
        const proto_entry *p = &m->protos[i];
        if (!streq(p->name, q->protocols[i].name) || p->len != q->protocols[i].len ||
            (p->len && memcmp(p->meta, q->protocols[i].meta, p->len) != 0))
            return false;
    }
    return true;
}

/* Kafka's selectProtocol: among the protocols every member supports, the one most members list
 * first; ties go to the leader's (first member's) order of preference. */
static const char *select_protocol(const group *g)
{
    if (g->nm == 0)
        return NULL;
    const member *first = g->m[0];
    const char *best = NULL;
    size_t best_votes = 0;
    for (size_t i = 0; i < first->nprotos; i++) {
        const char *cand = first->protos[i].name;
        if (!all_support(g, cand, NULL))
            continue;
        size_t votes = 0;
        for (size_t k = 0; k < g->nm; k++) {
            const member *m = g->m[k];
            for (size_t j = 0; j < m->nprotos; j++) {
                if (all_support(g, m->protos[j].name, NULL)) {
                    votes += strcmp(m->protos[j].name, cand) == 0;
                    break;
                }
            }
        }
        if (!best || votes > best_votes) {
            best = cand;
            best_votes = votes;
        }
    }
    return best;
}

static int32_t max_rebalance_ms(const group *g)
{
    int32_t v = 0;
    for (size_t i = 0; i < g->nm; i++)
        v = TD_MAX(v, g->m[i]->rebalance_ms);
    return v;
}

/* ---------------------------------------------------------------------------------------------
 * Answers
 */
static coord_join_res *join_res_new(coord_err err)
{
    coord_join_res *r = malloc(sizeof(*r));
    if (!r)
        return NULL;
    memset(r, 0, offsetof(coord_join_res, arena));
    td_arena_init(&r->arena);
    r->err = err;
    r->generation = -1;
    return r;
}

/* Copies n bytes into the arena: *out and *out_len stay NULL and 0 when there is nothing. */
static void arena_bytes(td_arena *a, const void *p, size_t n, const void **out, size_t *out_len)
{
    *out = td_arena_memdup(a, p, n);
    *out_len = *out ? n : 0;
}

static void join_answer_err(coord_join_cb cb, void *arg, coord_err err, const char *member_id)
{
    coord_join_res *r = join_res_new(err);
    if (r)
        r->member_id = td_arena_strdup(&r->arena, member_id ? member_id : "");
    cb(arg, r); /* NULL: out of memory; the callback answers with a generic error */
}

/* The join answer for m in the group's current generation. old_leader, when not NULL, is the
 * answer of a static leader that rejoins a Stable group below JoinGroup v9 (it cannot be told to
 * skip the assignment): the generation and protocol as they are, no members, and the leader's
 * old member id as the leader, as Kafka's GroupCoordinator answers. The member sees a leader id
 * that is not its own, so it syncs as a follower and gets its current assignment back; an
 * assignment it computed as leader would be ignored by a Stable group anyway. */
static void join_answer(group *g, member *m, coord_join_cb cb, void *arg, bool skip_assignment,
                        const char *old_leader)
{
    coord_join_res *r = join_res_new(COORD_OK);
    if (!r) {
        cb(arg, NULL);
        return;
    }
    td_arena *a = &r->arena;
    r->generation = g->generation;
    r->protocol_type = td_arena_strdup(a, g->protocol_type);
    r->protocol_name = td_arena_strdup(a, g->protocol);
    r->leader = td_arena_strdup(a, old_leader ? old_leader : g->leader ? g->leader : "");
    r->member_id = td_arena_strdup(a, m->id);
    r->skip_assignment = skip_assignment;
    if (!old_leader && is_leader(g, m)) {
        r->members = td_arena_calloc(a, g->nm, sizeof(*r->members));
        for (size_t i = 0; r->members && i < g->nm; i++) {
            const member *x = g->m[i];
            const proto_entry *p = member_proto(x, g->protocol);
            coord_member_desc *d = &r->members[i];
            d->member_id = td_arena_strdup(a, x->id);
            d->instance_id = td_arena_strdup(a, x->instance_id);
            if (p)
                arena_bytes(a, p->meta, p->len, &d->meta, &d->meta_len);
        }
        r->nmembers = r->members ? g->nm : 0;
    }
    cb(arg, r);
}

static coord_sync_res *sync_res_new(coord_err err)
{
    coord_sync_res *r = malloc(sizeof(*r));
    if (!r)
        return NULL;
    memset(r, 0, offsetof(coord_sync_res, arena));
    td_arena_init(&r->arena);
    r->err = err;
    return r;
}

static coord_sync_res *sync_res_of(group *g, member *m)
{
    coord_sync_res *r = sync_res_new(COORD_OK);
    if (r) {
        r->protocol_type = td_arena_strdup(&r->arena, g->protocol_type);
        r->protocol_name = td_arena_strdup(&r->arena, g->protocol);
        arena_bytes(&r->arena, m->assignment, m->assignment_len, &r->assignment, &r->len);
    }
    return r;
}

void coord_join_res_free(coord_join_res *r)
{
    if (r) {
        td_arena_free(&r->arena);
        free(r);
    }
}

void coord_sync_res_free(coord_sync_res *r)
{
    if (r) {
        td_arena_free(&r->arena);
        free(r);
    }
}

static void member_fail_waits(member *m, coord_err err)
{
    if (m->join_cb) {
        coord_join_cb cb = m->join_cb;
        m->join_cb = NULL;
        join_answer_err(cb, m->join_arg, err, m->id);
    }
    if (m->sync_cb) {
        coord_sync_cb cb = m->sync_cb;
        m->sync_cb = NULL;
        coord_sync_res *r = sync_res_new(err);
        cb(m->sync_arg, r);
    }
}

/* ---------------------------------------------------------------------------------------------
 * The state machine
 */
static void maybe_complete_join(td_coord *c, group *g, int64_t now, bool timed_out);

/* A health event of group g (health.h), about member m if not NULL. */
static void group_event(td_coord *c, health_type t, const group *g, const member *m,
                        const char *reason)
{
    if (!health_on(c->e))
        return;
    health_field f[10];
    size_t n = 0;
    f[n++] = HF_STR("group", g->name);
    if (m) {
        f[n++] = HF_STR("member", m->id);
        f[n++] = HF_STR("client_id", m->client_id);
        f[n++] = HF_STR("client_host", m->client_host);
        f[n++] = HF_STR("group_instance_id", m->instance_id);
    }
    f[n++] = HF_INT("generation", g->generation);
    /* A member leaving is still in the list: the count is what stays. */
    bool gone = t == HEALTH_GROUP_MEMBER_LEFT || t == HEALTH_GROUP_MEMBER_TIMED_OUT;
    f[n++] = HF_INT("members", gone ? g->nm - 1 : g->nm);
    if (t == HEALTH_GROUP_REBALANCE_COMPLETED) {
        f[n++] = HF_STR("protocol", g->protocol);
        f[n++] = HF_STR("leader", g->leader);
    }
    if (reason)
        f[n++] = HF_STR("reason", reason);
    health_emit(c->e, t, g->name, f, n);
}

static void prepare_rebalance(td_coord *c, group *g, int64_t now)
{
    if (g->state == COORD_COMPLETING) {
        /* The plan being synced is void: its waiters rejoin. */
        for (size_t i = 0; i < g->nm; i++) {
            member *m = g->m[i];
            free(m->assignment);
            m->assignment = NULL;
            m->assignment_len = 0;
            if (m->sync_cb) {
                coord_sync_cb cb = m->sync_cb;
                m->sync_cb = NULL;
                cb(m->sync_arg, sync_res_new(COORD_REBALANCING));
            }
        }
    }
    int32_t timeout = max_rebalance_ms(g);
    if (g->state == COORD_EMPTY) {
        int32_t delay = TD_MIN(c->cfg.initial_rebalance_delay_ms, timeout);
        g->initial_until = delay > 0 ? now + delay : 0;
        g->initial_limit = now + timeout;
    } else {
        g->initial_until = 0;
    }
    g->deadline = now + timeout;
    g->state = COORD_PREPARING;
    group_event(c, HEALTH_GROUP_REBALANCE_STARTED, g, NULL, NULL);
    pthread_cond_signal(&c->cv);
}

/* Takes member i out of the group: its waits are answered with `why`; a leader is succeeded by
 * the first member left. */
static void member_unlink(group *g, size_t i, coord_err why)
{
    member *m = g->m[i];
    member_fail_waits(m, why);
    memmove(&g->m[i], &g->m[i + 1], (g->nm - i - 1) * sizeof(*g->m));
    g->nm--;
    if (is_leader(g, m)) {
        free(g->leader);
        g->leader = g->nm ? strdup(g->m[0]->id) : NULL;
    }
    coord_member_free(m);
}

/* Removes member m: its waits are answered with `why`; the group rebalances without it. */
static void member_remove(td_coord *c, group *g, member *m, coord_err why, int64_t now)
{
    size_t i = 0;
    while (i < g->nm && g->m[i] != m)
        i++;
    if (i == g->nm)
        return;
    member_unlink(g, i, why);
    switch (g->state) {
    case COORD_STABLE:
    case COORD_COMPLETING:
        prepare_rebalance(c, g, now);
        maybe_complete_join(c, g, now, false);
        break;
    case COORD_PREPARING:
        maybe_complete_join(c, g, now, false);
        break;
    default:
        break;
    }
}

static bool has_rejoined(const member *m)
{
    return m->join_cb != NULL;
}

static bool has_synced(const member *m)
{
    return m->synced;
}

/* At a rebalance or sync timeout: drops the members that did not `what` in time, without
 * starting another rebalance (the caller decides). */
static void drop_members(td_coord *c, group *g, bool (*kept)(const member *), const char *what)
{
    for (size_t i = 0; i < g->nm;) {
        member *m = g->m[i];
        if (kept(m)) {
            i++;
            continue;
        }
        TD_INFO("group", "group %s: member %s did not %s within the rebalance timeout", g->name,
                m->id, what);
        group_event(c, HEALTH_GROUP_MEMBER_TIMED_OUT, g, m,
                    what[0] == 'r' ? "did not rejoin within the rebalance timeout"
                                   : "did not sync within the rebalance timeout");
        member_unlink(g, i, COORD_UNKNOWN_MEMBER);
    }
}

static void maybe_complete_join(td_coord *c, group *g, int64_t now, bool timed_out)
{
    if (g->state != COORD_PREPARING)
        return;
    if (!timed_out) {
        if (g->initial_until && now < g->initial_until)
            return;
        if (g->np > 0)
            return;
        for (size_t i = 0; i < g->nm; i++)
            if (!g->m[i]->join_cb)
                return;
    } else {
        /* The rebalance timeout: members that did not rejoin are out (without triggering
         * another rebalance: this one completes now). */
        drop_members(c, g, has_rejoined, "rejoin");
    }
    g->initial_until = 0;
    g->generation++;
    free(g->protocol);
    g->protocol = NULL;
    if (g->nm == 0) {
        g->state = COORD_EMPTY;
        g->empty_since = td_wall_ms();
        TD_INFO("group", "group %s is empty (generation %" PRId32 ")", g->name, g->generation);
        gmeta_store(c, g, NULL, 0);
        return;
    }
    const char *proto = select_protocol(g);
    g->protocol = proto ? strdup(proto) : NULL;
    if (!g->leader || !coord_member_find(g, g->leader)) {
        free(g->leader);
        g->leader = strdup(g->m[0]->id);
    }
    g->state = COORD_COMPLETING;
    g->deadline = now + max_rebalance_ms(g);
    TD_INFO("group", "group %s: generation %" PRId32 " with %zu member%s, protocol %s, leader %s",
            g->name, g->generation, g->nm, g->nm == 1 ? "" : "s", g->protocol ? g->protocol : "-",
            g->leader ? g->leader : "-");
    for (size_t i = 0; i < g->nm; i++) {
        member *m = g->m[i];
        m->is_new = false;
        m->synced = false;
        free(m->assignment);
        m->assignment = NULL;
        m->assignment_len = 0;
        m->deadline = now + m->session_ms;
        coord_join_cb cb = m->join_cb;
        m->join_cb = NULL;
        join_answer(g, m, cb, m->join_arg, false, NULL);
    }
    pthread_cond_signal(&c->cv);
}

static member *member_add(td_coord *c, group *g, char *id, const coord_join_req *q,
                          coord_join_cb cb, void *arg, int64_t now)
{
    if (td_grow(&g->m, &g->cap_m, g->nm, sizeof(*g->m), 4) != 0) {
        free(id);
        return NULL;
    }
    member *m = calloc(1, sizeof(*m));
    if (!m) {
        free(id);
        return NULL;
    }
    m->id = id;
    if ((q->instance_id && !(m->instance_id = strdup(q->instance_id))) ||
        member_set_protocols(m, q) != 0) {
        coord_member_free(m);
        return NULL;
    }
    if (!g->protocol_type || g->nm == 0) {
        free(g->protocol_type);
        g->protocol_type = strdup(q->protocol_type);
    }
    m->is_new = true;
    m->join_cb = cb;
    m->join_arg = arg;
    m->deadline = now + NEW_MEMBER_JOIN_TIMEOUT_MS;
    g->m[g->nm++] = m;
    if (!g->leader)
        g->leader = strdup(m->id);
    group_event(c, HEALTH_GROUP_MEMBER_JOINED, g, m, NULL);
    if (g->state == COORD_PREPARING && g->initial_until)
        g->initial_until = TD_MIN(now + c->cfg.initial_rebalance_delay_ms, g->initial_limit);
    if (g->state != COORD_PREPARING)
        prepare_rebalance(c, g, now);
    maybe_complete_join(c, g, now, false);
    return m;
}

/* An existing member rejoins with (possibly new) protocols and waits for the join to complete. */
static int member_rejoin(group *g, member *m, const coord_join_req *q, coord_join_cb cb,
                         void *arg)
{
    (void)g;
    if (member_set_protocols(m, q) != 0)
        return -ENOMEM;
    if (m->join_cb) {
        /* A second JoinGroup while the first waits: the first is superseded. */
        coord_join_cb old = m->join_cb;
        m->join_cb = NULL;
        join_answer_err(old, m->join_arg, COORD_REBALANCING, m->id);
    }
    m->join_cb = cb;
    m->join_arg = arg;
    return 0;
}

/* A static member comes back with no member id: it takes over its old entry. */
static void static_rejoin(td_coord *c, group *g, member *m, const coord_join_req *q,
                          coord_join_cb cb, void *arg, int64_t now)
{
    char *id = new_member_id(q->instance_id);
    if (!id) {
        join_answer_err(cb, arg, COORD_NOMEM, NULL);
        return;
    }
    member_fail_waits(m, COORD_FENCED_INSTANCE);
    bool was_leader = is_leader(g, m);
    TD_INFO("group", "group %s: static member %s rejoins as %s (was %s)", g->name,
            q->instance_id, id, m->id);
    char *old_id = m->id;
    m->id = id;
    if (was_leader) {
        free(g->leader);
        g->leader = strdup(id);
    }
    m->deadline = now + m->session_ms;
    bool same = protocols_same(m, q);
    if (member_set_protocols(m, q) != 0) {
        free(old_id);
        join_answer_err(cb, arg, COORD_NOMEM, NULL);
        return;
    }
    if (g->state == COORD_STABLE) {
        const char *next = select_protocol(g);
        if (same || streq(next, g->protocol)) {
            if (was_leader && !q->can_skip_assignment)
                join_answer(g, m, cb, arg, false, old_id);
            else
                join_answer(g, m, cb, arg, was_leader, NULL);
            free(old_id);
            return;
        }
    }
    free(old_id);
    m->join_cb = cb;
    m->join_arg = arg;
    if (g->state != COORD_PREPARING)
        prepare_rebalance(c, g, now);
    maybe_complete_join(c, g, now, false);
}

void coord_join(td_coord *c, const coord_join_req *q, coord_join_cb cb, void *arg)
{
    if (!coord_group_name_ok(q->group)) {
        join_answer_err(cb, arg, COORD_INVALID_GROUP_ID, q->member_id);
        return;
    }
    if (q->session_ms < c->cfg.min_session_ms || q->session_ms > c->cfg.max_session_ms) {
        join_answer_err(cb, arg, COORD_INVALID_SESSION_TIMEOUT, q->member_id);
        return;
    }
    const char *mid = q->member_id ? q->member_id : "";
    int64_t now = now_ms();
    pthread_mutex_lock(&c->mu);
    if (c->stopping) {
        pthread_mutex_unlock(&c->mu);
        join_answer_err(cb, arg, COORD_UNAVAILABLE, mid);
        return;
    }
    group *g = mid[0] ? coord_group_find(c, q->group) : coord_group_get(c, q->group);
    coord_err err = COORD_OK;
    if (!g) {
        err = mid[0] ? COORD_UNKNOWN_MEMBER : COORD_NOMEM;
    } else if (!mid[0]) {
        member *sm = member_find_static(g, q->instance_id);
        if (!protocols_ok(g, q, sm)) {
            err = COORD_INCONSISTENT_PROTOCOL;
        } else if (sm) {
            static_rejoin(c, g, sm, q, cb, arg, now);
        } else if (g->nm + g->np >= (size_t)c->cfg.max_size) {
            err = COORD_GROUP_FULL;
        } else {
            char *id = new_member_id(q->instance_id ? q->instance_id : q->client_id);
            if (!id) {
                err = COORD_NOMEM;
            } else if (q->require_known_member && !q->instance_id) {
                /* KIP-394: the member learns its id first and rejoins with it. */
                if (td_grow(&g->pend, &g->cap_p, g->np, sizeof(*g->pend), 4) != 0) {
                    free(id);
                    err = COORD_NOMEM;
                    goto out;
                }
                g->pend[g->np].id = id;
                g->pend[g->np].deadline = now + q->session_ms;
                g->np++;
                pthread_cond_signal(&c->cv);
                join_answer_err(cb, arg, COORD_MEMBER_ID_REQUIRED, id);
            } else if (!member_add(c, g, id, q, cb, arg, now)) {
                err = COORD_NOMEM;
            }
        }
    } else {
        long pi = pending_find(g, mid);
        member *m = coord_member_find(g, mid);
        if (pi >= 0) {
            if (!protocols_ok(g, q, NULL)) {
                err = COORD_INCONSISTENT_PROTOCOL;
            } else {
                char *id = strdup(mid);
                pending_remove(g, pi);
                if (!id || !member_add(c, g, id, q, cb, arg, now))
                    err = COORD_NOMEM;
            }
        } else if (coord_fenced(g, mid, q->instance_id)) {
            err = COORD_FENCED_INSTANCE;
        } else if (!m) {
            err = COORD_UNKNOWN_MEMBER;
        } else if (!protocols_ok(g, q, m)) {
            err = COORD_INCONSISTENT_PROTOCOL;
        } else {
            m->deadline = now + m->session_ms;
            switch (g->state) {
            case COORD_PREPARING:
                if (member_rejoin(g, m, q, cb, arg) != 0)
                    err = COORD_NOMEM;
                else
                    maybe_complete_join(c, g, now, false);
                break;
            case COORD_COMPLETING:
            case COORD_STABLE:
                if (protocols_same(m, q) && (g->state == COORD_COMPLETING || !is_leader(g, m))) {
                    /* Nothing changed: the member lost our answer; give it again. */
                    join_answer(g, m, cb, arg, false, NULL);
                } else if (member_rejoin(g, m, q, cb, arg) != 0) {
                    err = COORD_NOMEM;
                } else {
                    prepare_rebalance(c, g, now);
                    maybe_complete_join(c, g, now, false);
                }
                break;
            default:
                err = COORD_UNKNOWN_MEMBER;
                break;
            }
        }
    }
out:
    pthread_mutex_unlock(&c->mu);
    if (err)
        join_answer_err(cb, arg, err, mid);
}

void coord_sync(td_coord *c, const coord_sync_req *q, coord_sync_cb cb, void *arg)
{
    int64_t now = now_ms();
    coord_err err = COORD_OK;
    pthread_mutex_lock(&c->mu);
    group *g = c->stopping ? NULL : coord_group_find(c, q->group ? q->group : "");
    member *m = g ? coord_member_find(g, q->member_id) : NULL;
    if (c->stopping)
        err = COORD_UNAVAILABLE;
    else if (!g)
        err = COORD_UNKNOWN_MEMBER;
    else if (coord_fenced(g, q->member_id, q->instance_id))
        err = COORD_FENCED_INSTANCE;
    else if (!m)
        err = COORD_UNKNOWN_MEMBER;
    else if (q->generation != g->generation)
        err = COORD_ILLEGAL_GENERATION;
    else if ((q->protocol_type && !streq(q->protocol_type, g->protocol_type)) ||
             (q->protocol_name && !streq(q->protocol_name, g->protocol)))
        err = COORD_INCONSISTENT_PROTOCOL;
    else if (g->state == COORD_PREPARING)
        err = COORD_REBALANCING;
    else if (g->state == COORD_EMPTY)
        err = COORD_UNKNOWN_MEMBER;
    if (err) {
        pthread_mutex_unlock(&c->mu);
        cb(arg, sync_res_new(err));
        return;
    }
    m->deadline = now + m->session_ms;
    if (g->state == COORD_STABLE) {
        gmeta_sync_answer(g, cb, arg, sync_res_of(g, m));
        pthread_mutex_unlock(&c->mu);
        return;
    }
    /* CompletingRebalance: wait for the leader's plan (or deliver it). */
    if (m->sync_cb) {
        coord_sync_cb old = m->sync_cb;
        m->sync_cb = NULL;
        old(m->sync_arg, sync_res_new(COORD_REBALANCING));
    }
    m->synced = true;
    m->sync_cb = cb;
    m->sync_arg = arg;
    if (is_leader(g, m)) {
        for (size_t i = 0; i < g->nm; i++) {
            member *x = g->m[i];
            free(x->assignment);
            x->assignment = NULL;
            x->assignment_len = 0;
            for (size_t k = 0; k < q->nassignments; k++) {
                if (streq(q->assignments[k].member_id, x->id)) {
                    x->assignment = dup_mem(q->assignments[k].data, q->assignments[k].len);
                    x->assignment_len = x->assignment ? q->assignments[k].len : 0;
                    break;
                }
            }
        }
        g->state = COORD_STABLE;
        group_event(c, HEALTH_GROUP_REBALANCE_COMPLETED, g, NULL, NULL);
        /* The answers go out once the group's record is durable (group_meta.c). */
        gmeta_answer *ans = calloc(g->nm, sizeof(*ans));
        size_t na = 0;
        for (size_t i = 0; i < g->nm; i++) {
            member *x = g->m[i];
            if (x->sync_cb) {
                x->deadline = now + x->session_ms;
                coord_sync_res *r = sync_res_of(g, x);
                if (ans)
                    ans[na++] = (gmeta_answer){.cb = x->sync_cb, .arg = x->sync_arg, .res = r};
                else
                    x->sync_cb(x->sync_arg, r);
                x->sync_cb = NULL;
            }
        }
        gmeta_store(c, g, ans, na);
        free(ans);
        TD_INFO("group", "group %s is stable at generation %" PRId32, g->name, g->generation);
    }
    pthread_mutex_unlock(&c->mu);
}

coord_err coord_heartbeat(td_coord *c, const char *group_name, const char *member_id,
                          const char *instance_id, int32_t generation)
{
    coord_err err = COORD_OK;
    pthread_mutex_lock(&c->mu);
    group *g = coord_group_find(c, group_name ? group_name : "");
    member *m = g ? coord_member_find(g, member_id) : NULL;
    if (c->stopping)
        err = COORD_UNAVAILABLE;
    else if (!g)
        err = COORD_UNKNOWN_MEMBER;
    else if (coord_fenced(g, member_id, instance_id))
        err = COORD_FENCED_INSTANCE;
    else if (!m)
        err = COORD_UNKNOWN_MEMBER;
    else if (generation != g->generation)
        err = COORD_ILLEGAL_GENERATION;
    else if (g->state == COORD_EMPTY)
        err = COORD_UNKNOWN_MEMBER;
    else {
        m->deadline = now_ms() + m->session_ms;
        if (g->state == COORD_PREPARING)
            err = COORD_REBALANCING;
    }
    pthread_mutex_unlock(&c->mu);
    return err;
}

coord_err coord_leave(td_coord *c, const char *group_name, coord_leaver *v, size_t n)
{
    int64_t now = now_ms();
    pthread_mutex_lock(&c->mu);
    group *g = c->stopping ? NULL : coord_group_find(c, group_name ? group_name : "");
    coord_err top = c->stopping ? COORD_UNAVAILABLE : g ? COORD_OK : COORD_UNKNOWN_MEMBER;
    for (size_t i = 0; i < n; i++) {
        coord_leaver *l = &v[i];
        if (top) {
            l->err = top;
            continue;
        }
        const char *mid = l->member_id ? l->member_id : "";
        member *m;
        long pi;
        if (l->instance_id) {
            m = member_find_static(g, l->instance_id);
            l->err = !m ? COORD_UNKNOWN_MEMBER
                        : mid[0] && strcmp(mid, m->id) != 0 ? COORD_FENCED_INSTANCE : COORD_OK;
        } else if ((pi = pending_find(g, mid)) >= 0) {
            pending_remove(g, pi);
            l->err = COORD_OK;
            maybe_complete_join(c, g, now, false);
            continue;
        } else {
            m = coord_member_find(g, mid);
            l->err = m ? COORD_OK : COORD_UNKNOWN_MEMBER;
        }
        if (l->err == COORD_OK) {
            TD_INFO("group", "group %s: member %s leaves", g->name, m->id);
            group_event(c, HEALTH_GROUP_MEMBER_LEFT, g, m, "LeaveGroup");
            member_remove(c, g, m, COORD_UNKNOWN_MEMBER, now);
        }
    }
    pthread_mutex_unlock(&c->mu);
    return top;
}

/* ---------------------------------------------------------------------------------------------
 * Timers and expiry (coordinator thread, under the lock)
 */
static int64_t min_deadline(int64_t a, int64_t b)
{
    return a == 0 ? b : b == 0 ? a : TD_MIN(a, b);
}

/* Fires whatever is due; returns the next deadline (0: none). */
static int64_t run_timers(td_coord *c, int64_t now)
{
    int64_t next = 0;
    for (size_t gi = 0; gi < c->ng; gi++) {
        group *g = c->g[gi];
        if (g->state == COORD_PREPARING) {
            if (g->initial_until && now >= g->initial_until) {
                g->initial_until = 0;
                maybe_complete_join(c, g, now, false);
            }
            if (g->state == COORD_PREPARING && now >= g->deadline)
                maybe_complete_join(c, g, now, true);
        } else if (g->state == COORD_COMPLETING && now >= g->deadline) {
            /* The leader's plan never came: members that did not sync are out. */
            drop_members(c, g, has_synced, "sync");
            prepare_rebalance(c, g, now);
            maybe_complete_join(c, g, now, false);
        }
        for (size_t i = 0; i < g->np;) {
            if (now >= g->pend[i].deadline) {
                pending_remove(g, (long)i);
                maybe_complete_join(c, g, now, false);
            } else {
                next = min_deadline(next, g->pend[i++].deadline);
            }
        }
        for (size_t i = 0; i < g->nm;) {
            member *m = g->m[i];
            bool waiting = (m->join_cb && !m->is_new) || m->sync_cb;
            if (!waiting && now >= m->deadline) {
                TD_INFO("group", "group %s: member %s session expired", g->name, m->id);
                group_event(c, HEALTH_GROUP_MEMBER_TIMED_OUT, g, m, "session timeout");
                member_remove(c, g, m, COORD_UNKNOWN_MEMBER, now);
                i = 0; /* the list changed */
                continue;
            }
            if (!waiting)
                next = min_deadline(next, m->deadline);
            i++;
        }
        if (g->state == COORD_PREPARING)
            next = min_deadline(next, g->initial_until ? g->initial_until : g->deadline);
        if (g->state == COORD_COMPLETING)
            next = min_deadline(next, g->deadline);
    }
    return next;
}

static void *coord_thread(void *arg)
{
    td_coord *c = arg;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        if (c->stopping)
            break;
        int64_t now = now_ms();
        int64_t next = run_timers(c, now);
        if (now >= c->next_expiry) {
            c->next_expiry = now + c->cfg.retention_check_ms;
            pthread_mutex_unlock(&c->mu);
            coord_expire_offsets(c);
            pthread_mutex_lock(&c->mu);
            continue;
        }
        if (c->stopping)
            continue;
        next = min_deadline(next, c->next_expiry);
        int64_t wait_ms = TD_MIN(TD_MAX(next - now, 1), INT64_MAX / 1000000); /* configured */
        struct timespec ts = td_deadline_ns(CLOCK_MONOTONIC, wait_ms * 1000000);
        pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Administration
 */
int coord_list(td_coord *c, coord_group_summary **out, size_t *count)
{
    *out = NULL;
    *count = 0;
    td_group_info *stored = NULL;
    size_t nstored = 0;
    int rc = td_group_list(c->e, &stored, &nstored);
    if (rc)
        return rc;
    pthread_mutex_lock(&c->mu);
    size_t cap = c->ng + nstored;
    coord_group_summary *v = calloc(cap ? cap : 1, sizeof(*v));
    if (!v) {
        pthread_mutex_unlock(&c->mu);
        free(stored);
        return -ENOMEM;
    }
    /* Merge two sorted lists. */
    size_t i = 0, k = 0, n = 0;
    while (i < c->ng || k < nstored) {
        int cmp = i == c->ng ? 1 : k == nstored ? -1 : strcmp(c->g[i]->name, stored[k].name);
        coord_group_summary *s = &v[n++];
        if (cmp <= 0) {
            group *g = c->g[i++];
            snprintf(s->name, sizeof(s->name), "%s", g->name);
            snprintf(s->protocol_type, sizeof(s->protocol_type), "%s",
                     g->protocol_type ? g->protocol_type : "");
            s->state = g->state;
            s->members = g->nm;
            if (cmp == 0)
                k++;
        } else {
            snprintf(s->name, sizeof(s->name), "%s", stored[k++].name);
            s->state = COORD_EMPTY;
        }
    }
    pthread_mutex_unlock(&c->mu);
    free(stored);
    *out = v;
    *count = n;
    return 0;
}

coord_err coord_describe(td_coord *c, const char *group_name, coord_group_desc *d)
{
    memset(d, 0, offsetof(coord_group_desc, arena));
    td_arena_init(&d->arena);
    td_arena *a = &d->arena;
    d->state = COORD_DEAD;
    d->protocol_type = d->protocol_name = d->leader = "";
    pthread_mutex_lock(&c->mu);
    group *g = group_name ? coord_group_find(c, group_name) : NULL;
    if (g) {
        bool stable = g->state == COORD_STABLE;
        d->state = g->state;
        d->generation = g->generation;
        d->protocol_type = td_arena_strdup(a, g->protocol_type ? g->protocol_type : "");
        d->protocol_name = td_arena_strdup(a, stable && g->protocol ? g->protocol : "");
        d->leader = td_arena_strdup(a, g->leader ? g->leader : "");
        d->members = td_arena_calloc(a, g->nm ? g->nm : 1, sizeof(*d->members));
        for (size_t i = 0; d->members && i < g->nm; i++) {
            member *m = g->m[i];
            coord_member_desc *x = &d->members[i];
            x->member_id = td_arena_strdup(a, m->id);
            x->instance_id = td_arena_strdup(a, m->instance_id);
            x->client_id = td_arena_strdup(a, m->client_id);
            x->client_host = td_arena_strdup(a, m->client_host);
            const proto_entry *p = stable ? member_proto(m, g->protocol) : NULL;
            if (p)
                arena_bytes(a, p->meta, p->len, &x->meta, &x->meta_len);
            if (m->nprotos)
                arena_bytes(a, m->protos[0].meta, m->protos[0].len, &x->sub_meta, &x->sub_len);
            if (stable)
                arena_bytes(a, m->assignment, m->assignment_len, &x->assignment,
                            &x->assignment_len);
        }
        d->nmembers = d->members ? g->nm : 0;
    }
    pthread_mutex_unlock(&c->mu);
    if (!g && coord_group_name_ok(group_name)) {
        td_committed_offset *offs = NULL;
        size_t n = 0;
        if (td_group_offsets(c->e, group_name, &offs, &n) == 0 && n > 0)
            d->state = COORD_EMPTY; /* a group that only stores offsets */
        free(offs);
    }
    if (!d->protocol_type || !d->protocol_name || !d->leader || (g && !d->members))
        return COORD_NOMEM;
    return COORD_OK;
}

void coord_desc_free(coord_group_desc *d)
{
    td_arena_free(&d->arena);
}

coord_err coord_delete(td_coord *c, const char *group_name, int *rc)
{
    *rc = 0;
    if (!coord_group_name_ok(group_name))
        return COORD_INVALID_GROUP_ID;
    pthread_mutex_lock(&c->mu);
    group *g = coord_group_find(c, group_name);
    if (g && (g->nm > 0 || g->np > 0)) {
        pthread_mutex_unlock(&c->mu);
        return COORD_NOT_EMPTY;
    }
    bool known = g != NULL;
    int64_t end = -1;
    int r = 0;
    if (g) {
        r = gmeta_delete(c, group_name, &end);
        coord_group_remove(c, g);
    }
    pthread_mutex_unlock(&c->mu);
    if (r == 0)
        r = gmeta_wait(c, group_name, end);
    if (r == 0)
        r = td_group_delete(c->e, group_name);
    if (r == TD_ENOTFOUND)
        return known ? COORD_OK : COORD_NOT_FOUND;
    if (r) {
        *rc = r;
        return COORD_STORAGE;
    }
    TD_INFO("group", "group %s deleted", group_name);
    return COORD_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Life cycle
 */
/* ---------------------------------------------------------------------------------------------
 * Metrics: read when scraped
 */
static void coord_collect(void *arg, td_metrics_out *out)
{
    td_coord *c = arg;
    coord_group_summary *v = NULL;
    size_t n = 0;
    if (coord_list(c, &v, &n) != 0)
        return;
    /* Each group's lag is read once, then written in two families. */
    td_group_lag_info **lags = calloc(n ? n : 1, sizeof(*lags));
    size_t *nlags = calloc(n ? n : 1, sizeof(*nlags));
    if (!lags || !nlags) {
        free(lags);
        free(nlags);
        free(v);
        out->err = out->err ? out->err : -ENOMEM;
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (td_group_lag(c->e, v[i].name, &lags[i], &nlags[i]) != 0)
            nlags[i] = 0;
    static const char *const gl[] = {"group"}, *const pl[] = {"group", "topic", "partition"};
    td_metrics_text_family(out, "tidings_group_members", "Members of the consumer group.",
                           TD_GAUGE);
    for (size_t i = 0; i < n; i++)
        td_metrics_text_sample(out, "tidings_group_members", gl,
                               (const char *const[]){v[i].name}, 1, (double)v[i].members);
    static const char *const names[] = {"tidings_group_lag", "tidings_group_committed_offset"};
    static const char *const helps[] = {
        "Events between the group's committed offset and the high watermark.",
        "The group's committed offset (the next offset it reads)."};
    for (int f = 0; f < 2; f++) {
        td_metrics_text_family(out, names[f], helps[f], TD_GAUGE);
        for (size_t i = 0; i < n; i++)
            for (size_t k = 0; k < nlags[i]; k++) {
                const td_group_lag_info *l = &lags[i][k];
                char pk[16];
                snprintf(pk, sizeof(pk), "%" PRId32, l->partition);
                const char *vals[] = {v[i].name, l->topic, pk};
                td_metrics_text_sample(out, names[f], pl, vals, 3,
                                       (double)(f == 0 ? l->lag : l->committed));
            }
    }
    for (size_t i = 0; i < n; i++)
        free(lags[i]);
    free(lags);
    free(nlags);
    free(v);
}

int coord_create(td_engine *e, const coord_config *cfg, td_coord **out)
{
    td_coord *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->e = e;
    if (cfg)
        c->cfg = *cfg;
    else
        coord_config_defaults(&c->cfg);
    if (c->cfg.retention_check_ms <= 0)
        c->cfg.retention_check_ms = 600000;
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cv, &ca);
    pthread_condattr_destroy(&ca);
    /* The first expiry pass comes one interval after start: groups active before a restart
     * have rejoined by then. */
    c->next_expiry = now_ms() + c->cfg.retention_check_ms;
    int rc = gmeta_restore(c);
    if (rc == 0)
        rc = -pthread_create(&c->thread, NULL, coord_thread, c);
    if (rc) {
        for (size_t i = 0; i < c->ng; i++)
            group_free(c->g[i]);
        free(c->g);
        pthread_cond_destroy(&c->cv);
        pthread_mutex_destroy(&c->mu);
        free(c);
        return rc;
    }
    c->running = true;
    if (td_metrics_add_collector(broker_metrics(e), coord_collect, c) != 0)
        TD_WARN("group", "out of memory: consumer groups will be missing from the metrics");
    *out = c;
    return 0;
}

void coord_shutdown(td_coord *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    c->stopping = true;
    for (size_t i = 0; i < c->ng; i++)
        for (size_t k = 0; k < c->g[i]->nm; k++)
            member_fail_waits(c->g[i]->m[k], COORD_UNAVAILABLE);
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (c->running) {
        pthread_join(c->thread, NULL);
        c->running = false;
    }
}

void coord_destroy(td_coord *c)
{
    if (!c)
        return;
    td_metrics_remove_collector(broker_metrics(c->e), coord_collect, c);
    coord_shutdown(c);
    for (size_t i = 0; i < c->ng; i++)
        group_free(c->g[i]);
    free(c->g);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}
