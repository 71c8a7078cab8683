/*
 * handler_group.c: the consumer-group APIs on the group coordinator (broker/group.h):
 * FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch,
 * ListGroups, DescribeGroups, DeleteGroups, OffsetDelete.
 *
 * JoinGroup and SyncGroup wait for the other members, and OffsetCommit for the coordinator's
 * durable write: they answer later through kreq_async_begin/kreq_async_done. The others answer
 * at once (OffsetFetch and the admin calls read the metadata store on the loop: reads, no
 * fsync; DeleteGroups and OffsetDelete write it, like the other administrative calls).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/txn.h"
#include "proto/kafka/handler_int.h"
#include "proto/kafka/kauthz.h"

int16_t coord_kafka_error(coord_err e)
{
    switch (e) {
    case COORD_OK:
        return KERR_NONE;
    case COORD_UNKNOWN_MEMBER:
        return KERR_UNKNOWN_MEMBER_ID;
    case COORD_ILLEGAL_GENERATION:
        return KERR_ILLEGAL_GENERATION;
    case COORD_REBALANCING:
        return KERR_REBALANCE_IN_PROGRESS;
    case COORD_INCONSISTENT_PROTOCOL:
        return KERR_INCONSISTENT_GROUP_PROTOCOL;
    case COORD_FENCED_INSTANCE:
        return KERR_FENCED_INSTANCE_ID;
    case COORD_MEMBER_ID_REQUIRED:
        return KERR_MEMBER_ID_REQUIRED;
    case COORD_INVALID_SESSION_TIMEOUT:
        return KERR_INVALID_SESSION_TIMEOUT;
    case COORD_INVALID_GROUP_ID:
        return KERR_INVALID_GROUP_ID;
    case COORD_GROUP_FULL:
        return KERR_GROUP_MAX_SIZE_REACHED;
    case COORD_NOT_FOUND:
        return KERR_GROUP_ID_NOT_FOUND;
    case COORD_NOT_EMPTY:
        return KERR_NON_EMPTY_GROUP;
    case COORD_UNAVAILABLE:
    case COORD_STORAGE: /* retriable for clients: they try the commit again */
        return KERR_COORDINATOR_NOT_AVAILABLE;
    default:
        return KERR_UNKNOWN_SERVER_ERROR;
    }
}

static td_coord *coord_of(kreq *q)
{
    return q->kc->s->cfg.coord;
}

/* Kafka reports a member's host as "/<address>". */
static const char *client_host(kreq *q)
{
    char peer[128];
    snprintf(peer, sizeof(peer), "%s", net_conn_peer(q->kc->c));
    char *colon = strrchr(peer, ':');
    if (colon)
        *colon = 0;
    char *p = peer;
    if (*p == '[') {
        p++;
        char *end = strchr(p, ']');
        if (end)
            *end = 0;
    }
    char buf[160];
    snprintf(buf, sizeof(buf), "/%s", p);
    return td_arena_strdup(&q->arena, buf);
}

/* An empty group.instance.id means none. */
static const char *instance_of(const char *s)
{
    return s && s[0] ? s : NULL;
}

/* ---------------------------------------------------------------------------------------------
 * FindCoordinator: this broker coordinates every group and every transactional id
 * (docs/kafka.md#transactions).
 */
void kafka_serve_find_coordinator(kreq *q, kafka_reader *r)
{
    kafka_server *s = q->kc->s;
    int16_t v = q->h.api_version;
    kafka_find_coordinator_req req;
    if (kafka_decode_find_coordinator(r, v, &req) != 0) {
        q->out.err = TD_EPROTO;
        return;
    }
    for (int32_t i = 0; i < req.nkeys; i++) {
        kafka_coordinator *c = &req.keys[i];
        c->node_id = -1;
        c->host = "";
        c->port = -1;
        if (req.key_type == KAFKA_COORDINATOR_TRANSACTION) {
            if (!kafka_authz_txn(q, c->key, TD_OP_DESCRIBE)) {
                c->error_code = KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
                c->error_message = "Authorization failed.";
            } else {
                c->node_id = s->cfg.node_id;
                c->host = s->host;
                c->port = net_conn_listen_port(q->kc->c);
            }
        } else if (req.key_type != KAFKA_COORDINATOR_GROUP) {
            c->error_code = KERR_INVALID_REQUEST;
            c->error_message = "unknown coordinator key type";
        } else if (!kafka_authz_group(q, c->key, TD_OP_DESCRIBE)) {
            c->error_code = KERR_GROUP_AUTHORIZATION_FAILED;
            c->error_message = "Authorization failed.";
        } else if (!s->cfg.coord) {
            c->error_code = KERR_COORDINATOR_NOT_AVAILABLE;
            c->error_message = "no group coordinator";
        } else {
            c->node_id = s->cfg.node_id;
            c->host = s->host;
            c->port = net_conn_listen_port(q->kc->c);
        }
    }
    kreq_begin(q);
    kafka_encode_find_coordinator(&q->out, v, &req);
    ko_end(&q->out);
}

/* ---------------------------------------------------------------------------------------------
 * JoinGroup
 */
static void join_finish(kreq *q)
{
    coord_join_res *res = q->join_res;
    kafka_join_group_resp m = {.error_code = KERR_UNKNOWN_SERVER_ERROR, .generation_id = -1};
    if (res) {
        m.error_code = coord_kafka_error(res->err);
        m.generation_id = res->err ? -1 : res->generation;
        m.protocol_type = res->protocol_type;
        m.protocol_name = res->protocol_name;
        m.leader = res->leader;
        m.skip_assignment = res->skip_assignment;
        m.member_id = res->member_id;
        m.members = td_arena_calloc(&q->arena, res->nmembers + 1, sizeof(*m.members));
        if (m.members) {
            m.nmembers = (int32_t)res->nmembers;
            for (size_t i = 0; i < res->nmembers; i++) {
                m.members[i].member_id = res->members[i].member_id;
                m.members[i].group_instance_id = res->members[i].instance_id;
                m.members[i].meta = res->members[i].meta ? res->members[i].meta : "";
                m.members[i].meta_len = (int32_t)res->members[i].meta_len;
            }
        }
    }
    kreq_begin(q);
    kafka_encode_join_group(&q->out, q->h.api_version, &m);
    ko_end(&q->out);
}

static void join_cb(void *arg, coord_join_res *res)
{
    kreq *q = arg;
    q->join_res = res;
    kreq_async_done(q);
}

void kafka_serve_join_group(kreq *q, kafka_reader *r)
{
    int16_t v = q->h.api_version;
    kafka_join_group_req req;
    if (kafka_decode_join_group(r, v, &req) != 0) {
        q->out.err = TD_EPROTO;
        return;
    }
    if (!kafka_authz_group(q, req.group_id, TD_OP_READ)) {
        kafka_join_group_resp m = {.error_code = KERR_GROUP_AUTHORIZATION_FAILED,
                                   .generation_id = -1,
                                   .leader = "",
                                   .member_id = req.member_id ? req.member_id : ""};
        kreq_begin(q);
        kafka_encode_join_group(&q->out, v, &m);
        ko_end(&q->out);
        return;
    }
    coord_protocol *protos = td_arena_calloc(&q->arena, (size_t)req.nprotocols + 1,
                                             sizeof(*protos));
    if (!protos) {
        q->out.err = -ENOMEM;
        return;
    }
    for (int32_t i = 0; i < req.nprotocols; i++) {
        protos[i].name = req.protocols[i].name ? req.protocols[i].name : "";
        protos[i].meta = req.protocols[i].meta;
        protos[i].len = req.protocols[i].len > 0 ? (size_t)req.protocols[i].len : 0;
    }
    coord_join_req cq = {.group = req.group_id,
                         .member_id = req.member_id ? req.member_id : "",
                         .instance_id = instance_of(req.group_instance_id),
                         .protocol_type = req.protocol_type,
                         .client_id = q->h.client_id ? q->h.client_id : "",
                         .client_host = client_host(q),
                         .session_ms = req.session_timeout_ms,
                         .rebalance_ms = req.rebalance_timeout_ms,
                         .nprotocols = (size_t)req.nprotocols,
                         .protocols = protos,
                         .require_known_member = v >= 4,
                         .can_skip_assignment = v >= 9};
    kreq_async_begin(q, join_finish);
    if (coord_of(q))
        coord_join(coord_of(q), &cq, join_cb, q);
    else
        join_cb(q, NULL);
}

/* ---------------------------------------------------------------------------------------------
 * SyncGroup, Heartbeat, LeaveGroup
 */
static void sync_finish(kreq *q)
{
    coord_sync_res *res = q->sync_res;
    kafka_sync_group_resp m = {.error_code = KERR_UNKNOWN_SERVER_ERROR, .assignment = ""};
    if (res) {
        m.error_code = coord_kafka_error(res->err);
        m.protocol_type = res->protocol_type;
        m.protocol_name = res->protocol_name;
        if (res->assignment) {
            m.assignment = res->assignment;
            m.len = (int32_t)res->len;
        }
    }
    kreq_begin(q);
    kafka_encode_sync_group(&q->out, q->h.api_version, &m);
    ko_end(&q->out);
}

static void sync_cb(void *arg, coord_sync_res *res)
{
    kreq *q = arg;
    q->sync_res = res;
    kreq_async_done(q);
}

void kafka_serve_sync_group(kreq *q, kafka_reader *r)
{
    int16_t v = q->h.api_version;
    kafka_sync_group_req req;
    if (kafka_decode_sync_group(r, v, &req) != 0) {
        q->out.err = TD_EPROTO;
        return;
    }
    if (!kafka_authz_group(q, req.group_id, TD_OP_READ)) {
        kafka_sync_group_resp m = {.error_code = KERR_GROUP_AUTHORIZATION_FAILED,
                                   .assignment = ""};
        kreq_begin(q);
        kafka_encode_sync_group(&q->out, v, &m);
        ko_end(&q->out);
        return;
    }
    coord_assignment *as = td_arena_calloc(&q->arena, (size_t)req.nassignments + 1,
                                           sizeof(*as));
    if (!as) {
        q->out.err = -ENOMEM;
        return;
    }
    for (int32_t i = 0; i < req.nassignments; i++) {
        as[i].member_id = req.assignments[i].member_id;
        as[i].data = req.assignments[i].data;
        as[i].len = req.assignments[i].len > 0 ? (size_t)req.assignments[i].len : 0;
    }
    coord_sync_req cq = {.group = req.group_id,
                         .member_id = req.member_id ? req.member_id : "",
                         .instance_id = instance_of(req.group_instance_id),
                         .protocol_type = req.protocol_type,
                         .protocol_name = req.protocol_name,
                         .generation = req.generation_id,
                         .nassignments = (size_t)req.nassignments,
                         .assignments = as};
    kreq_async_begin(q, sync_finish);
    if (coord_of(q))
        coord_sync(coord_of(q), &cq, sync_cb, q);
    else
        sync_cb(q, NULL);
}

void kafka_serve_heartbeat(kreq *q, kafka_reader *r)
{
    int16_t v = q->h.api_version;
    kafka_heartbeat_req req;
    if (kafka_decode_heartbeat(r, v, &req) != 0) {
        q->out.err = TD_EPROTO;
        return;
    }
    int16_t err;
    if (!kafka_authz_group(q, req.group_id, TD_OP_READ))
        err = KERR_GROUP_AUTHORIZATION_FAILED;
    else
        err = coord_kafka_error(coord_of(q) ? coord_heartbeat(coord_of(q), req.group_id,
                                                              req.member_id,
                                                              instance_of(req.group_instance_id),
                                                              req.generation_id)
                                            : COORD_UNAVAILABLE);
    kreq_begin(q);
    kafka_encode_heartbeat(&q->out, v, err);
    ko_end(&q->out);
}

void kafka_serve_leave_group(kreq *q, kafka_reader *r)
{
    int16_t v = q->h.api_version;
    kafka_leave_group_req req;
    if (kafka_decode_leave_group(r, v, &req) != 0) {
        q->out.err = TD_EPROTO;
        return;
    }
    coord_leaver *lv = td_arena_calloc(&q->arena, (size_t)req.nmembers + 1, sizeof(*lv));
    if (!lv) {
        q->out.err = -ENOMEM;
        return;
    }
    for (int32_t i = 0; i < req.nmembers; i++) {
        lv[i].member_id = req.members[i].member_id ? req.members[i].member_id : "";
        lv[i].instance_id = instance_of(req.members[i].group_instance_id);
    }
    bool allowed = kafka_authz_group(q, req.group_id, TD_OP_READ);
    coord_err top = !allowed    ? COORD_OK
                    : coord_of(q) ? coord_leave(coord_of(q), req.group_id, lv, (size_t)req.nmembers)
                                  : COORD_UNAVAILABLE;
    for (int32_t i = 0; i < req.nmembers; i++)
        req.members[i].error_code = !allowed ? KERR_GROUP_AUTHORIZATION_FAILED
                                             : coord_kafka_error(top ? top : lv[i].err);
    /* v0-2 name one member: its result is the answer. */
    req.error_code = allowed ? coord_kafka_error(top) : KERR_GROUP_AUTHORIZATION_FAILED;
    if (v <= 2 && req.nmembers == 1)
        req.error_code = req.members[0].error_code;
    kreq_begin(q);
    kafka_encode_leave_group(&q->out, v, &req);
    ko_end(&q->out);
}

/* ---------------------------------------------------------------------------------------------
 * OffsetCommit: partitions are checked here (topic, partition, metadata size); the valid ones
 * go to the coordinator, which checks membership and answers once they are durable.
 */
static void commit_finish(kreq *q)
{
    kafka_offset_commit_req *m = &q->commit;
    int16_t err = coord_kafka_error(q->commit_err);
    if (q->commit_err == COORD_STORAGE && q->commit_rc == TD_ENOTFOUND)
        err = KERR_UNKNOWN_TOPIC_OR_PARTITION; /* a topic was deleted meanwhile */
    for (int32_t i = 0; i < m->ntopics; i++)
        for (int32_t k = 0; k < m->topics[i].nparts; k++)
            if (m->topics[i].parts[k].error_code == KERR_NONE)
                m->topics[i].parts[k].error_code = err;
    kreq_begin(q);
    kafka_encode_offset_commit(&q->out, q->h.api_version, m);
    ko_end(&q->out);
}

size_t kafka_commit_parts(kreq *q, kafka_offset_commit_topic *topics, int32_t ntopics, int16_t all,
                          td_offset_commit *oc)
{
    size_t n = 0;
    for (int32_t i = 0; i < ntopics; i++) {
        kafka_offset_commit_topic *t = &topics[i];
        td_topic_ref *ref = NULL;
        bool topic_ok = !all && t->name && kafka_authz_read(q, t->name);
        if (topic_ok)
            broker_topic_acquire(q->kc->s->e, t->name, &ref);
        int32_t nparts = ref ? broker_topic_partitions(ref) : 0;
        if (ref)
            broker_topic_release(ref);
        for (int32_t k = 0; k < t->nparts; k++) {
            kafka_offset_commit_part *p = &t->parts[k];
            if (all)
                p->error_code = all;
            else if (t->name && !topic_ok)
                p->error_code = KERR_TOPIC_AUTHORIZATION_FAILED;
            else if (!ref)
                p->error_code = kafka_missing_topic_error(t->name);
            else if (p->partition < 0 || p->partition >= nparts)
                p->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
            else if (p->metadata && strlen(p->metadata) > TD_OFFSET_METADATA_MAX)
                p->error_code = KERR_OFFSET_METADATA_TOO_LARGE;
            else
                oc[n++] = (td_offset_commit){.topic = t->name,
                                             .partition = p->partition,
                                             .offset = p->offset,
                                             .leader_epoch = p->leader_epoch,
                                             .metadata = p->metadata};
        }
    }
    return n;
}

static void commit_cb(void *arg, coord_err err, int rc)
{
    kreq *q = arg;
    q->commit_err = err;
    q->commit_rc = rc;
    kreq_async_done(q);
}

void kafka_serve_offset_commit(kreq *q, kafka_reader *r)
{
    int16_t v = q->h.api_version;
    kafka_offset_commit_req *req = &q->commit;
    if (kafka_decode_offset_commit(r, v, req) != 0) {
        q->out.err = TD_EPROTO;
        return;
    }
    size_t total = 0;
    for (int32_t i = 0; i < req->ntopics; i++)
        total += (size_t)req->topics[i].nparts;
    td_offset_commit *oc = td_arena_calloc(&q->arena, total + 1, sizeof(*oc));
    if (!oc) {
        q->out.err = -ENOMEM;
        return;
    }
    /* Read on the group, then Read on each topic (Kafka's order). */
    bool group_ok = kafka_authz_group(q, req->group_id, TD_OP_READ);
    size_t n = kafka_commit_parts(q, req->topics, req->ntopics,
                                  group_ok ? KERR_NONE : KERR_GROUP_AUTHORIZATION_FAILED, oc);
    kreq_async_begin(q, commit_finish);
    if (!group_ok)
        commit_cb(q, COORD_OK, 0); /* every partition has its error already */
    else if (coord_of(q))
        coord_commit(coord_of(q), req->group_id, req->member_id,
                     instance_of(req->group_instance_id), req->generation_id, oc, n, commit_cb,
                     q);
    else
        commit_cb(q, COORD_UNAVAILABLE, 0);
}

/* ---------------------------------------------------------------------------------------------
 * OffsetFetch
 */
static const td_committed_offset *find_offset(const td_committed_offset *v, size_t n,
                                              const char *topic, int32_t partition)
{
    for (size_t i = 0; topic && i < n; i++)
        if (v[i].partition == partition && strcmp(v[i].topic, topic) == 0)
            return &v[i];
    return NULL;
}

static void fill_fetch_part(kreq *q, kafka_offset_fetch_part *p, const td_committed_offset *o)
{
    p->offset = o ? o->offset : -1;
    p->leader_epoch = o ? o->leader_epoch : -1;
    p->metadata = o && o->metadata ? td_arena_strdup(&q->arena, o->metadata) : "";
    p->error_code = KERR_NONE;
}

/* Fills one group's answer. Returns false when out of memory. With stable (RequireStable,
 * v7+), a partition whose offset a transaction still holds answers UNSTABLE_OFFSET_COMMIT, which
 * the client retries (KIP-447). */
static bool fetch_group(kreq *q, kafka_offset_fetch_group *g, bool stable)
{
    td_committed_offset *v = NULL;
    size_t n = 0;
    bool allowed = kafka_authz_group(q, g->group_id, TD_OP_DESCRIBE);
    int rc = allowed ? td_group_offsets(q->kc->s->e, g->group_id ? g->group_id : "", &v, &n) : 0;
    if (!allowed) {
        g->error_code = KERR_GROUP_AUTHORIZATION_FAILED;
        n = 0;
    } else if (rc) {
        g->error_code = rc == TD_ENAME ? KERR_INVALID_GROUP_ID : kafka_error_of(rc);
        n = 0;
    }
    bool ok = true;
    if (g->ntopics < 0) {
        /* Every committed partition, grouped by topic (the list is sorted by topic). */
        /* Topics the principal may not Describe are left out (Kafka's rule). */
        size_t kept = 0;
        for (size_t i = 0; i < n; i++) {
            if (kept > 0 && strcmp(v[i].topic, v[kept - 1].topic) == 0)
                v[kept++] = v[i];
            else if (kafka_authz_listed(q, v[i].topic))
                v[kept++] = v[i];
        }
        n = kept;
        int32_t nt = 0;
        for (size_t i = 0; i < n; i++)
            nt += i == 0 || strcmp(v[i].topic, v[i - 1].topic) != 0;
        g->topics = td_arena_calloc(&q->arena, (size_t)nt + 1, sizeof(*g->topics));
        ok = g->topics != NULL;
        g->ntopics = ok ? nt : 0;
        int32_t t = -1;
        for (size_t i = 0; ok && i < n; i++) {
            if (i == 0 || strcmp(v[i].topic, v[i - 1].topic) != 0) {
                size_t cnt = 0;
                while (i + cnt < n && strcmp(v[i + cnt].topic, v[i].topic) == 0)
                    cnt++;
                kafka_offset_fetch_topic *ft = &g->topics[++t];
                ft->name = td_arena_strdup(&q->arena, v[i].topic);
                ft->parts = td_arena_calloc(&q->arena, cnt, sizeof(*ft->parts));
                ok = ft->name && ft->parts;
            }
            if (ok) {
                kafka_offset_fetch_topic *ft = &g->topics[t];
                kafka_offset_fetch_part *p = &ft->parts[ft->nparts++];
                p->partition = v[i].partition;
                fill_fetch_part(q, p, &v[i]);
                if (stable &&
                    broker_txn_offset_pending(q->kc->s->e, g->group_id, v[i].topic, v[i].partition))
                    p->error_code = KERR_UNSTABLE_OFFSET_COMMIT;
            }
        }
    } else {
        for (int32_t i = 0; i < g->ntopics; i++) {
            kafka_offset_fetch_topic *t = &g->topics[i];
            bool topic_ok = g->error_code || !t->name || kafka_authz_describe(q, t->name);
            for (int32_t k = 0; k < t->nparts; k++) {
                kafka_offset_fetch_part *p = &t->parts[k];
                fill_fetch_part(q, p, topic_ok ? find_offset(v, n, t->name, p->partition) : NULL);
                if (g->error_code)
                    p->error_code = g->error_code; /* v0-1 have only these */
                else if (!topic_ok)
                    p->error_code = KERR_TOPIC_AUTHORIZATION_FAILED;
                else if (stable &&
                         broker_txn_offset_pending(q->kc->s->e, g->group_id, t->name, p->partition))
                    p->error_code = KERR_UNSTABLE_OFFSET_COMMIT;
            }
        }
    }
    free(v);
    return ok;
}

void kafka_serve_offset_fetch(kreq *q, kafka_reader *r)
{
    int16_t v = q->h.api_version;
    kafka_offset_fetch_req req;
    if (kafka_decode_offset_fetch(r, v, &req) != 0) {
        q->out.err = TD_EPROTO;
        return;
    }
    for (int32_t i = 0; i < req.ngroups; i++) {
        if (!fetch_group(q, &req.groups[i], req.require_stable)) {
            q->out.err = -ENOMEM;
            return;
        }
    }
    kreq_begin(q);
    kafka_encode_offset_fetch(&q->out, v, &req);
    ko_end(&q->out);
}

/* ---------------------------------------------------------------------------------------------
 * ListGroups, DescribeGroups, DeleteGroups, OffsetDelete
 */
void kafka_serve_list_groups(kreq *q, kafka_reader *r)
{
    int16_t v = q->h.api_version;
    kafka_list_groups_req req;
    if (kafka_decode_list_groups(r, v, &req) != 0) {
        q->out.err = TD_EPROTO;
        return;
    }
    coord_group_summary *all = NULL;
    size_t n = 0;
    int rc = coord_of(q) ? coord_list(coord_of(q), &all, &n) : 0;
    if (!coord_of(q))
        req.error_code = KERR_COORDINATOR_NOT_AVAILABLE;
    else if (rc)
        req.error_code = kafka_error_of(rc);
    req.groups = td_arena_calloc(&q->arena, n + 1, sizeof(*req.groups));
    if (!req.groups) {
        free(all);
        q->out.err = -ENOMEM;
        return;
    }
    /* Describe on the cluster lists every group; else only those the principal may Describe
     * (Kafka's rule, without a refusal). */
    bool all_groups = kafka_can(q, TD_RES_CLUSTER, TD_CLUSTER_NAME, TD_OP_DESCRIBE);
    for (size_t i = 0; i < n; i++) {
        const char *state = coord_state_name(all[i].state);
        bool wanted = req.nstates == 0;
        if (!all_groups && !kafka_can(q, TD_RES_GROUP, all[i].name, TD_OP_DESCRIBE))
            continue;
        for (int32_t k = 0; k < req.nstates && !wanted; k++)
            wanted = coord_state_parse(req.states[k]) == (int)all[i].state;
        if (!wanted)
            continue;
        kafka_listed_group *g = &req.groups[req.ngroups++];
        g->group_id = td_arena_strdup(&q->arena, all[i].name);
        g->protocol_type = td_arena_strdup(&q->arena, all[i].protocol_type);
        g->state = state;
    }
    free(all);
    kreq_begin(q);
    kafka_encode_list_groups(&q->out, v, &req);
    ko_end(&q->out);
}

void kafka_serve_describe_groups(kreq *q, kafka_reader *r)
{
    int16_t v = q->h.api_version;
    kafka_describe_groups_req req;
    if (kafka_decode_describe_groups(r, v, &req) != 0) {
        q->out.err = TD_EPROTO;
        return;
    }
    for (int32_t i = 0; i < req.ngroups; i++) {
        kafka_described_group *g = &req.groups[i];
        g->state = "Dead";
        g->protocol_type = g->protocol_data = "";
        g->authorized_ops = INT32_MIN; /* until described */
        if (!coord_of(q)) {
            g->error_code = KERR_COORDINATOR_NOT_AVAILABLE;
            continue;
        }
        size_t len = g->group_id ? strlen(g->group_id) : 0;
        if (len == 0 || len > TD_GROUP_NAME_MAX) {
            g->error_code = KERR_INVALID_GROUP_ID;
            continue;
        }
        if (!kafka_authz_group(q, g->group_id, TD_OP_DESCRIBE)) {
            g->error_code = KERR_GROUP_AUTHORIZATION_FAILED;
            continue;
        }
        if (req.include_authorized_operations)
            g->authorized_ops = kafka_authorized_ops(q, TD_RES_GROUP, g->group_id);
        coord_group_desc d;
        coord_err e = coord_describe(coord_of(q), g->group_id, &d);
        if (e) {
            g->error_code = coord_kafka_error(e);
            coord_desc_free(&d);
            continue;
        }
        g->state = coord_state_name(d.state);
        g->protocol_type = td_arena_strdup(&q->arena, d.protocol_type);
        g->protocol_data = td_arena_strdup(&q->arena, d.protocol_name);
        g->members = td_arena_calloc(&q->arena, d.nmembers + 1, sizeof(*g->members));
        if (!g->members || !g->protocol_type || !g->protocol_data) {
            coord_desc_free(&d);
            q->out.err = -ENOMEM;
            return;
        }
        g->nmembers = (int32_t)d.nmembers;
        for (size_t k = 0; k < d.nmembers; k++) {
            const coord_member_desc *x = &d.members[k];
            kafka_group_member *m = &g->members[k];
            m->member_id = td_arena_strdup(&q->arena, x->member_id);
            m->group_instance_id = td_arena_strdup(&q->arena, x->instance_id);
            m->client_id = td_arena_strdup(&q->arena, x->client_id);
            m->client_host = td_arena_strdup(&q->arena, x->client_host);
            m->meta = td_arena_memdup(&q->arena, x->meta, x->meta_len);
            m->meta_len = m->meta ? (int32_t)x->meta_len : 0;
            m->assignment = td_arena_memdup(&q->arena, x->assignment, x->assignment_len);
            m->assignment_len = m->assignment ? (int32_t)x->assignment_len : 0;
        }
        coord_desc_free(&d);
    }
    kreq_begin(q);
    kafka_encode_describe_groups(&q->out, v, &req);
    ko_end(&q->out);
}

void kafka_serve_delete_groups(kreq *q, kafka_reader *r)
{
    int16_t v = q->h.api_version;
    kafka_delete_groups_req req;
    if (kafka_decode_delete_groups(r, v, &req) != 0) {
        q->out.err = TD_EPROTO;
        return;
    }
    for (int32_t i = 0; i < req.ngroups; i++) {
        int rc = 0;
        if (!kafka_authz_group(q, req.groups[i].group_id, TD_OP_DELETE)) {
            req.groups[i].error_code = KERR_GROUP_AUTHORIZATION_FAILED;
            continue;
        }
        coord_err e = coord_of(q) ? coord_delete(coord_of(q), req.groups[i].group_id, &rc)
                                  : COORD_UNAVAILABLE;
        req.groups[i].error_code = e == COORD_STORAGE ? kafka_error_of(rc) : coord_kafka_error(e);
    }
    kreq_begin(q);
    kafka_encode_delete_groups(&q->out, v, &req);
    ko_end(&q->out);
}

/* True if a member of a consumer group subscribes to topic. */
static bool subscribed(kreq *q, const coord_group_desc *d, const char *topic)
{
    for (size_t i = 0; i < d->nmembers; i++) {
        const char **topics;
        int n = kafka_consumer_subscription_topics(d->members[i].sub_meta,
                                                   d->members[i].sub_len, &q->arena, &topics);
        for (int k = 0; k < n; k++)
            if (topics[k] && topic && strcmp(topics[k], topic) == 0)
                return true;
    }
    return false;
}

void kafka_serve_offset_delete(kreq *q, kafka_reader *r)
{
    int16_t v = q->h.api_version;
    kafka_offset_delete_req req;
    if (kafka_decode_offset_delete(r, v, &req) != 0) {
        q->out.err = TD_EPROTO;
        return;
    }
    size_t len = req.group_id ? strlen(req.group_id) : 0;
    coord_group_desc d;
    bool have = false;
    if (!coord_of(q)) {
        req.error_code = KERR_COORDINATOR_NOT_AVAILABLE;
    } else if (len == 0 || len > TD_GROUP_NAME_MAX) {
        req.error_code = KERR_INVALID_GROUP_ID;
    } else if (!kafka_authz_group(q, req.group_id, TD_OP_DELETE)) {
        req.error_code = KERR_GROUP_AUTHORIZATION_FAILED;
    } else {
        coord_err e = coord_describe(coord_of(q), req.group_id, &d);
        have = true;
        if (e)
            req.error_code = coord_kafka_error(e);
        else if (d.state == COORD_DEAD)
            req.error_code = KERR_GROUP_ID_NOT_FOUND;
        else if (d.state != COORD_EMPTY && strcmp(d.protocol_type, "consumer") != 0)
            req.error_code = KERR_NON_EMPTY_GROUP;
    }
    for (int32_t i = 0; i < req.ntopics && req.error_code == KERR_NONE; i++) {
        kafka_offset_delete_topic *t = &req.topics[i];
        td_topic_info info;
        bool topic_ok = t->name && kafka_authz_read(q, t->name);
        bool exists = topic_ok && td_topic_describe(q->kc->s->e, t->name, &info) == 0;
        bool busy = exists && d.state != COORD_EMPTY && subscribed(q, &d, t->name);
        for (int32_t k = 0; k < t->nparts; k++) {
            kafka_offset_delete_part *p = &t->parts[k];
            if (t->name && !topic_ok) {
                p->error_code = KERR_TOPIC_AUTHORIZATION_FAILED;
            } else if (!exists) {
                p->error_code = kafka_missing_topic_error(t->name);
            } else if (p->partition < 0 || p->partition >= info.partitions) {
                p->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
            } else if (busy) {
                p->error_code = KERR_GROUP_SUBSCRIBED_TO_TOPIC;
            } else {
                int rc = td_group_offset_delete(q->kc->s->e, req.group_id, t->name,
                                                p->partition);
                p->error_code = rc == TD_ENOTFOUND ? KERR_NONE : kafka_error_of(rc);
            }
        }
    }
    if (have)
        coord_desc_free(&d);
    if (req.error_code)
        req.ntopics = 0; /* a group-level error answers no partitions, as Kafka does */
    kreq_begin(q);
    kafka_encode_offset_delete(&q->out, v, &req);
    ko_end(&q->out);
}
