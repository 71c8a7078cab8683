/*
 * msgs_group.c: decoders and encoders of the consumer-group requests and responses
 * (FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch,
 * ListGroups, DescribeGroups, DeleteGroups, OffsetDelete). As in msgs.c, each names the
 * versions that carry each field, from Kafka's JSON message definitions.
 */
#include <string.h>

#include "proto/kafka/kafka.h"


/* ---------------------------------------------------------------------------------------------
 * FindCoordinator v0-4
 *   request:  key string (v0-3), key_type int8 (v1+), coordinator_keys [string] (v4+)
 *   response: throttle_time_ms (v1+), v0-3: error_code, error_message nullable (v1+), node_id,
 *             host, port; v4+: coordinators [key, node_id, host, port, error_code,
 *             error_message nullable]
 */
int kafka_decode_find_coordinator(kafka_reader *r, int16_t v, kafka_find_coordinator_req *q)
{
    memset(q, 0, sizeof(*q));
    kr_set_flexible(r, KAFKA_FIND_COORDINATOR, v);
    const char *key = NULL;
    if (v <= 3)
        key = kr_string(r);
    if (v >= 1)
        q->key_type = kr_i8(r);
    if (v >= 4) {
        q->keys = kr_array_alloc(r, sizeof(*q->keys), &q->nkeys);
        for (int32_t i = 0; i < q->nkeys && !r->err; i++)
            q->keys[i].key = kr_string(r);
    } else {
        q->keys = kr_alloc(r, 1, sizeof(*q->keys));
        if (q->keys) {
            q->keys[0].key = key;
            q->nkeys = 1;
        }
    }
    kr_tags(r);
    return r->err;
}

void kafka_encode_find_coordinator(kafka_out *o, int16_t v, const kafka_find_coordinator_req *m)
{
    ko_set_flexible(o, KAFKA_FIND_COORDINATOR, v);
    if (v >= 1)
        ko_i32(o, 0);
    if (v <= 3) {
        const kafka_coordinator *c = &m->keys[0];
        ko_i16(o, c->error_code);
        if (v >= 1)
            ko_string(o, c->error_message);
        ko_i32(o, c->node_id);
        ko_string_nn(o, c->host);
        ko_i32(o, c->port);
    } else {
        ko_array(o, m->nkeys);
        for (int32_t i = 0; i < m->nkeys; i++) {
            const kafka_coordinator *c = &m->keys[i];
            ko_string_nn(o, c->key);
            ko_i32(o, c->node_id);
            ko_string_nn(o, c->host);
            ko_i32(o, c->port);
            ko_i16(o, c->error_code);
            ko_string(o, c->error_message);
            ko_tags(o);
        }
    }
    ko_tags(o);
}

/* ---------------------------------------------------------------------------------------------
 * JoinGroup v0-9
 *   request:  group_id, session_timeout_ms, rebalance_timeout_ms (v1+), member_id,
 *             group_instance_id nullable (v5+), protocol_type, protocols [name, metadata bytes],
 *             reason nullable (v8+)
 *   response: throttle_time_ms (v2+), error_code, generation_id, protocol_type nullable (v7+),
 *             protocol_name (nullable v7+), leader, skip_assignment (v9+), member_id,
 *             members [member_id, group_instance_id nullable (v5+), metadata bytes]
 */
int kafka_decode_join_group(kafka_reader *r, int16_t v, kafka_join_group_req *q)
{
    memset(q, 0, sizeof(*q));
    kr_set_flexible(r, KAFKA_JOIN_GROUP, v);
    q->group_id = kr_string(r);
    q->session_timeout_ms = kr_i32(r);
    q->rebalance_timeout_ms = v >= 1 ? kr_i32(r) : q->session_timeout_ms;
    q->member_id = kr_string(r);
    if (v >= 5)
        q->group_instance_id = kr_string(r);
    q->protocol_type = kr_string(r);
    q->protocols = kr_array_alloc(r, sizeof(*q->protocols), &q->nprotocols);
    for (int32_t i = 0; i < q->nprotocols && !r->err; i++) {
        kafka_join_protocol *p = &q->protocols[i];
        p->name = kr_string(r);
        p->meta = kr_bytes(r, &p->len);
        kr_tags(r);
    }
    if (v >= 8)
        q->reason = kr_string(r);
    kr_tags(r);
    return r->err;
}

void kafka_encode_join_group(kafka_out *o, int16_t v, const kafka_join_group_resp *m)
{
    ko_set_flexible(o, KAFKA_JOIN_GROUP, v);
    if (v >= 2)
        ko_i32(o, 0);
    ko_i16(o, m->error_code);
    ko_i32(o, m->generation_id);
    if (v >= 7) {
        ko_string(o, m->protocol_type);
        ko_string(o, m->protocol_name);
    } else {
        ko_string_nn(o, m->protocol_name);
    }
    ko_string_nn(o, m->leader);
    if (v >= 9)
        ko_bool(o, m->skip_assignment);
    ko_string_nn(o, m->member_id);
    ko_array(o, m->nmembers);
    for (int32_t i = 0; i < m->nmembers; i++) {
        const kafka_group_member *x = &m->members[i];
        ko_string_nn(o, x->member_id);
        if (v >= 5)
            ko_string(o, x->group_instance_id);
        ko_bytes(o, x->meta, x->meta_len);
        ko_tags(o);
    }
    ko_tags(o);
}

/* ---------------------------------------------------------------------------------------------
 * SyncGroup v0-5
 *   request:  group_id, generation_id, member_id, group_instance_id nullable (v3+),
 *             protocol_type nullable (v5+), protocol_name nullable (v5+),
 *             assignments [member_id, assignment bytes]
 *   response: throttle_time_ms (v1+), error_code, protocol_type nullable (v5+),
 *             protocol_name nullable (v5+), assignment bytes
 */
int kafka_decode_sync_group(kafka_reader *r, int16_t v, kafka_sync_group_req *q)
{
    memset(q, 0, sizeof(*q));
    kr_set_flexible(r, KAFKA_SYNC_GROUP, v);
    q->group_id = kr_string(r);
    q->generation_id = kr_i32(r);
    q->member_id = kr_string(r);
    if (v >= 3)
        q->group_instance_id = kr_string(r);
    if (v >= 5) {
        q->protocol_type = kr_string(r);
        q->protocol_name = kr_string(r);
    }
    q->assignments = kr_array_alloc(r, sizeof(*q->assignments), &q->nassignments);
    for (int32_t i = 0; i < q->nassignments && !r->err; i++) {
        kafka_sync_assignment *a = &q->assignments[i];
        a->member_id = kr_string(r);
        a->data = kr_bytes(r, &a->len);
        kr_tags(r);
    }
    kr_tags(r);
    return r->err;
}

void kafka_encode_sync_group(kafka_out *o, int16_t v, const kafka_sync_group_resp *m)
{
    ko_set_flexible(o, KAFKA_SYNC_GROUP, v);
    if (v >= 1)
        ko_i32(o, 0);
    ko_i16(o, m->error_code);
    if (v >= 5) {
        ko_string(o, m->protocol_type);
        ko_string(o, m->protocol_name);
    }
    ko_bytes(o, m->assignment, m->len);
    ko_tags(o);
}

/* ---------------------------------------------------------------------------------------------
 * Heartbeat v0-4
 *   request:  group_id, generation_id, member_id, group_instance_id nullable (v3+)
 *   response: throttle_time_ms (v1+), error_code
 */
int kafka_decode_heartbeat(kafka_reader *r, int16_t v, kafka_heartbeat_req *q)
{
    memset(q, 0, sizeof(*q));
    kr_set_flexible(r, KAFKA_HEARTBEAT, v);
    q->group_id = kr_string(r);
    q->generation_id = kr_i32(r);
    q->member_id = kr_string(r);
    if (v >= 3)
        q->group_instance_id = kr_string(r);
    kr_tags(r);
    return r->err;
}

void kafka_encode_heartbeat(kafka_out *o, int16_t v, int16_t error_code)
{
    ko_set_flexible(o, KAFKA_HEARTBEAT, v);
    if (v >= 1)
        ko_i32(o, 0);
    ko_i16(o, error_code);
    ko_tags(o);
}

/* ---------------------------------------------------------------------------------------------
 * LeaveGroup v0-5
 *   request:  group_id, member_id (v0-2),
 *             members [member_id, group_instance_id nullable, reason nullable (v5+)] (v3+)
 *   response: throttle_time_ms (v1+), error_code,
 *             members [member_id, group_instance_id nullable, error_code] (v3+)
 */
int kafka_decode_leave_group(kafka_reader *r, int16_t v, kafka_leave_group_req *q)
{
    memset(q, 0, sizeof(*q));
    kr_set_flexible(r, KAFKA_LEAVE_GROUP, v);
    q->group_id = kr_string(r);
    if (v <= 2) {
        const char *member = kr_string(r);
        q->members = kr_alloc(r, 1, sizeof(*q->members));
        if (q->members) {
            q->members[0].member_id = member;
            q->nmembers = 1;
        }
    } else {
        q->members = kr_array_alloc(r, sizeof(*q->members), &q->nmembers);
        for (int32_t i = 0; i < q->nmembers && !r->err; i++) {
            kafka_leave_member *m = &q->members[i];
            m->member_id = kr_string(r);
            m->group_instance_id = kr_string(r);
            if (v >= 5)
                m->reason = kr_string(r);
            kr_tags(r);
        }
    }
    kr_tags(r);
    return r->err;
}

void kafka_encode_leave_group(kafka_out *o, int16_t v, const kafka_leave_group_req *m)
{
    ko_set_flexible(o, KAFKA_LEAVE_GROUP, v);
    if (v >= 1)
        ko_i32(o, 0);
    ko_i16(o, m->error_code);
    if (v >= 3) {
        ko_array(o, m->nmembers);
        for (int32_t i = 0; i < m->nmembers; i++) {
            ko_string_nn(o, m->members[i].member_id);
            ko_string(o, m->members[i].group_instance_id);
            ko_i16(o, m->members[i].error_code);
            ko_tags(o);
        }
    }
    ko_tags(o);
}

/* ---------------------------------------------------------------------------------------------
 * OffsetCommit v0-8
 *   request:  group_id, generation_id (v1+), member_id (v1+), group_instance_id nullable (v7+),
 *             retention_time_ms int64 (v2-4), topics [name, partitions [partition_index,
 *             committed_offset, committed_leader_epoch (v6+), commit_timestamp int64 (v1),
 *             committed_metadata nullable]]
 *   response: throttle_time_ms (v3+), topics [name, partitions [partition_index, error_code]]
 */
int kafka_decode_offset_commit(kafka_reader *r, int16_t v, kafka_offset_commit_req *q)
{
    memset(q, 0, sizeof(*q));
    kr_set_flexible(r, KAFKA_OFFSET_COMMIT, v);
    q->group_id = kr_string(r);
    q->generation_id = -1;
    q->member_id = "";
    if (v >= 1) {
        q->generation_id = kr_i32(r);
        q->member_id = kr_string(r);
    }
    if (v >= 7)
        q->group_instance_id = kr_string(r);
    if (v >= 2 && v <= 4)
        (void)kr_i64(r); /* retention_time_ms: offsets.retention.minutes applies */
    q->topics = kr_array_alloc(r, sizeof(*q->topics), &q->ntopics);
    for (int32_t i = 0; i < q->ntopics && !r->err; i++) {
        kafka_offset_commit_topic *t = &q->topics[i];
        t->name = kr_string(r);
        t->parts = kr_array_alloc(r, sizeof(*t->parts), &t->nparts);
        for (int32_t k = 0; k < t->nparts && !r->err; k++) {
            kafka_offset_commit_part *p = &t->parts[k];
            p->partition = kr_i32(r);
            p->offset = kr_i64(r);
            p->leader_epoch = v >= 6 ? kr_i32(r) : -1;
            if (v == 1)
                (void)kr_i64(r); /* commit_timestamp: the broker's clock is used */
            p->metadata = kr_string(r);
            kr_tags(r);
        }
        kr_tags(r);
    }
    kr_tags(r);
    return r->err;
}

void kafka_encode_offset_commit(kafka_out *o, int16_t v, const kafka_offset_commit_req *m)
{
    ko_set_flexible(o, KAFKA_OFFSET_COMMIT, v);
    if (v >= 3)
        ko_i32(o, 0);
    ko_array(o, m->ntopics);
    for (int32_t i = 0; i < m->ntopics; i++) {
        const kafka_offset_commit_topic *t = &m->topics[i];
        ko_string_nn(o, t->name);
        ko_array(o, t->nparts);
        for (int32_t k = 0; k < t->nparts; k++) {
            ko_i32(o, t->parts[k].partition);
            ko_i16(o, t->parts[k].error_code);
            ko_tags(o);
        }
        ko_tags(o);
    }
    ko_tags(o);
}

/* ---------------------------------------------------------------------------------------------
 * OffsetFetch v0-8
 *   request:  v0-7: group_id, topics [name, partition_indexes [int32]] (nullable v2+: all);
 *             v8+: groups [group_id, topics nullable [name, partition_indexes]];
 *             require_stable bool (v7+)
 *   response: throttle_time_ms (v3+),
 *             v0-7: topics [name, partitions [partition_index, committed_offset,
 *                   committed_leader_epoch (v5+), metadata nullable, error_code]],
 *                   error_code (v2+);
 *             v8+: groups [group_id, topics [name, partitions [partition_index,
 *                   committed_offset, committed_leader_epoch, metadata nullable, error_code]],
 *                   error_code]
 */
static void decode_fetch_topics(kafka_reader *r, kafka_offset_fetch_group *g)
{
    int32_t n = kr_array(r);
    if (n < 0 && !r->err) {
        g->ntopics = -1; /* null: every committed partition */
        return;
    }
    g->ntopics = r->err ? 0 : n;
    g->topics = kr_alloc(r, (size_t)g->ntopics, sizeof(*g->topics));
    for (int32_t i = 0; i < g->ntopics && !r->err; i++) {
        kafka_offset_fetch_topic *t = &g->topics[i];
        t->name = kr_string(r);
        t->parts = kr_array_alloc(r, sizeof(*t->parts), &t->nparts);
        for (int32_t k = 0; k < t->nparts && !r->err; k++) {
            t->parts[k].partition = kr_i32(r);
            t->parts[k].offset = -1;
            t->parts[k].leader_epoch = -1;
        }
        kr_tags(r);
    }
}

int kafka_decode_offset_fetch(kafka_reader *r, int16_t v, kafka_offset_fetch_req *q)
{
    memset(q, 0, sizeof(*q));
    kr_set_flexible(r, KAFKA_OFFSET_FETCH, v);
    if (v <= 7) {
        q->groups = kr_alloc(r, 1, sizeof(*q->groups));
        if (q->groups) {
            q->ngroups = 1;
            q->groups[0].group_id = kr_string(r);
            decode_fetch_topics(r, &q->groups[0]);
            if (v < 2 && q->groups[0].ntopics < 0)
                r->err = r->err ? r->err : TD_EPROTO; /* null arrays came with v2 */
        }
    } else {
        q->groups = kr_array_alloc(r, sizeof(*q->groups), &q->ngroups);
        for (int32_t i = 0; i < q->ngroups && !r->err; i++) {
            q->groups[i].group_id = kr_string(r);
            decode_fetch_topics(r, &q->groups[i]);
            kr_tags(r);
        }
    }
    if (v >= 7)
        q->require_stable = kr_bool(r);
    kr_tags(r);
    return r->err;
}

static void encode_fetch_topics(kafka_out *o, int16_t v, const kafka_offset_fetch_group *g)
{
    int32_t nt = g->ntopics < 0 ? 0 : g->ntopics;
    ko_array(o, nt);
    for (int32_t i = 0; i < nt; i++) {
        const kafka_offset_fetch_topic *t = &g->topics[i];
        ko_string_nn(o, t->name);
        ko_array(o, t->nparts);
        for (int32_t k = 0; k < t->nparts; k++) {
            const kafka_offset_fetch_part *p = &t->parts[k];
            ko_i32(o, p->partition);
            ko_i64(o, p->offset);
            if (v >= 5)
                ko_i32(o, p->leader_epoch);
            ko_string(o, p->metadata);
            ko_i16(o, p->error_code);
            ko_tags(o);
        }
        ko_tags(o);
    }
}

void kafka_encode_offset_fetch(kafka_out *o, int16_t v, const kafka_offset_fetch_req *m)
{
    ko_set_flexible(o, KAFKA_OFFSET_FETCH, v);
    if (v >= 3)
        ko_i32(o, 0);
    if (v <= 7) {
        encode_fetch_topics(o, v, &m->groups[0]);
        if (v >= 2)
            ko_i16(o, m->groups[0].error_code);
    } else {
        ko_array(o, m->ngroups);
        for (int32_t i = 0; i < m->ngroups; i++) {
            ko_string_nn(o, m->groups[i].group_id);
            encode_fetch_topics(o, v, &m->groups[i]);
            ko_i16(o, m->groups[i].error_code);
            ko_tags(o);
        }
    }
    ko_tags(o);
}

/* ---------------------------------------------------------------------------------------------
 * ListGroups v0-4
 *   request:  states_filter [string] (v4+)
 *   response: throttle_time_ms (v1+), error_code, groups [group_id, protocol_type,
 *             group_state (v4+)]
 */
int kafka_decode_list_groups(kafka_reader *r, int16_t v, kafka_list_groups_req *q)
{
    memset(q, 0, sizeof(*q));
    kr_set_flexible(r, KAFKA_LIST_GROUPS, v);
    if (v >= 4) {
        q->states = kr_array_alloc(r, sizeof(*q->states), &q->nstates);
        for (int32_t i = 0; i < q->nstates && !r->err; i++)
            q->states[i] = kr_string(r);
    }
    kr_tags(r);
    return r->err;
}

void kafka_encode_list_groups(kafka_out *o, int16_t v, const kafka_list_groups_req *m)
{
    ko_set_flexible(o, KAFKA_LIST_GROUPS, v);
    if (v >= 1)
        ko_i32(o, 0);
    ko_i16(o, m->error_code);
    ko_array(o, m->ngroups);
    for (int32_t i = 0; i < m->ngroups; i++) {
        ko_string_nn(o, m->groups[i].group_id);
        ko_string_nn(o, m->groups[i].protocol_type);
        if (v >= 4)
            ko_string_nn(o, m->groups[i].state);
        ko_tags(o);
    }
    ko_tags(o);
}

/* ---------------------------------------------------------------------------------------------
 * DescribeGroups v0-5
 *   request:  groups [string], include_authorized_operations (v3+)
 *   response: throttle_time_ms (v1+), groups [error_code, group_id, group_state, protocol_type,
 *             protocol_data, members [member_id, group_instance_id nullable (v4+), client_id,
 *             client_host, member_metadata bytes, member_assignment bytes],
 *             authorized_operations int32 (v3+)]
 */
int kafka_decode_describe_groups(kafka_reader *r, int16_t v, kafka_describe_groups_req *q)
{
    memset(q, 0, sizeof(*q));
    kr_set_flexible(r, KAFKA_DESCRIBE_GROUPS, v);
    q->groups = kr_array_alloc(r, sizeof(*q->groups), &q->ngroups);
    for (int32_t i = 0; i < q->ngroups && !r->err; i++)
        q->groups[i].group_id = kr_string(r);
    if (v >= 3)
        q->include_authorized_operations = kr_bool(r);
    kr_tags(r);
    return r->err;
}

void kafka_encode_describe_groups(kafka_out *o, int16_t v, const kafka_describe_groups_req *m)
{
    ko_set_flexible(o, KAFKA_DESCRIBE_GROUPS, v);
    if (v >= 1)
        ko_i32(o, 0);
    ko_array(o, m->ngroups);
    for (int32_t i = 0; i < m->ngroups; i++) {
        const kafka_described_group *g = &m->groups[i];
        ko_i16(o, g->error_code);
        ko_string_nn(o, g->group_id);
        ko_string_nn(o, g->state);
        ko_string_nn(o, g->protocol_type);
        ko_string_nn(o, g->protocol_data);
        ko_array(o, g->nmembers);
        for (int32_t k = 0; k < g->nmembers; k++) {
            const kafka_group_member *x = &g->members[k];
            ko_string_nn(o, x->member_id);
            if (v >= 4)
                ko_string(o, x->group_instance_id);
            ko_string_nn(o, x->client_id);
            ko_string_nn(o, x->client_host);
            ko_bytes(o, x->meta ? x->meta : "", x->meta_len);
            ko_bytes(o, x->assignment ? x->assignment : "", x->assignment_len);
            ko_tags(o);
        }
        if (v >= 3)
            ko_i32(o, m->include_authorized_operations ? g->authorized_ops : INT32_MIN);
        ko_tags(o);
    }
    ko_tags(o);
}

/* ---------------------------------------------------------------------------------------------
 * DeleteGroups v0-2
 *   request:  groups_names [string]
 *   response: throttle_time_ms, results [group_id, error_code]
 */
int kafka_decode_delete_groups(kafka_reader *r, int16_t v, kafka_delete_groups_req *q)
{
    memset(q, 0, sizeof(*q));
    kr_set_flexible(r, KAFKA_DELETE_GROUPS, v);
    q->groups = kr_array_alloc(r, sizeof(*q->groups), &q->ngroups);
    for (int32_t i = 0; i < q->ngroups && !r->err; i++)
        q->groups[i].group_id = kr_string(r);
    kr_tags(r);
    return r->err;
}

void kafka_encode_delete_groups(kafka_out *o, int16_t v, const kafka_delete_groups_req *m)
{
    ko_set_flexible(o, KAFKA_DELETE_GROUPS, v);
    ko_i32(o, 0);
    ko_array(o, m->ngroups);
    for (int32_t i = 0; i < m->ngroups; i++) {
        ko_string_nn(o, m->groups[i].group_id);
        ko_i16(o, m->groups[i].error_code);
        ko_tags(o);
    }
    ko_tags(o);
}

/* ---------------------------------------------------------------------------------------------
 * OffsetDelete v0
 *   request:  group_id, topics [name, partitions [partition_index]]
 *   response: error_code, throttle_time_ms, topics [name, partitions [partition_index,
 *             error_code]]
 */
int kafka_decode_offset_delete(kafka_reader *r, int16_t v, kafka_offset_delete_req *q)
{
    memset(q, 0, sizeof(*q));
    kr_set_flexible(r, KAFKA_OFFSET_DELETE, v);
    q->group_id = kr_string(r);
    q->topics = kr_array_alloc(r, sizeof(*q->topics), &q->ntopics);
    for (int32_t i = 0; i < q->ntopics && !r->err; i++) {
        kafka_offset_delete_topic *t = &q->topics[i];
        t->name = kr_string(r);
        t->parts = kr_array_alloc(r, sizeof(*t->parts), &t->nparts);
        for (int32_t k = 0; k < t->nparts && !r->err; k++)
            t->parts[k].partition = kr_i32(r);
    }
    return r->err;
}

void kafka_encode_offset_delete(kafka_out *o, int16_t v, const kafka_offset_delete_req *m)
{
    ko_set_flexible(o, KAFKA_OFFSET_DELETE, v);
    ko_i16(o, m->error_code);
    ko_i32(o, 0);
    ko_array(o, m->ntopics);
    for (int32_t i = 0; i < m->ntopics; i++) {
        const kafka_offset_delete_topic *t = &m->topics[i];
        ko_string_nn(o, t->name);
        ko_array(o, t->nparts);
        for (int32_t k = 0; k < t->nparts; k++) {
            ko_i32(o, t->parts[k].partition);
            ko_i16(o, t->parts[k].error_code);
        }
    }
}

/* ---------------------------------------------------------------------------------------------
 * ConsumerProtocolSubscription (never flexible): version int16, topics [string],
 * user_data nullable bytes, owned_partitions (v1+), generation_id (v2+), rack_id (v3+).
 */
int kafka_consumer_subscription_topics(const uint8_t *p, size_t n, td_arena *a,
                                       const char ***topics)
{
    kafka_reader r;
    kr_init(&r, p, n, a);
    r.flexible = false;
    *topics = NULL;
    int16_t version = kr_i16(&r);
    int32_t count = 0;
    const char **v = kr_array_alloc(&r, sizeof(*v), &count);
    for (int32_t i = 0; i < count && !r.err; i++)
        v[i] = kr_string(&r);
    if (r.err || version < 0)
        return -1;
    *topics = v;
    return count;
}
