/*
 * groups.c: the REST API's consumer groups (docs/http-api.md): list, describe (members, their
 * assignments, and committed offset, high watermark and lag per partition), reset offsets while
 * the group has no members, delete.
 *
 * Groups are the coordinator's (broker/group.h), shared with the Kafka listener: a group a Kafka
 * consumer joined is the group described here, and offsets reset here are what it reads next.
 * Kafka consumers' assignments are decoded by the coordinator's coord_assignment_topics.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/group.h"
#include "broker/authz.h"
#include "proto/http/http_int.h"

/* ---------------------------------------------------------------------------------------------
 * Helpers
 */
static void respond_coord_error(hconn *hc, const char *group, coord_err err, int rc)
{
    char msg[400];
    switch (err) {
    case COORD_INVALID_GROUP_ID:
        return http_respond_error(hc, 400, "invalid_name",
                                  "a group name is 1 to 255 bytes, without NUL");
    case COORD_NOT_FOUND:
        snprintf(msg, sizeof(msg), "no group '%.255s'", group);
        return http_respond_error(hc, 404, "not_found", msg);
    case COORD_NOT_EMPTY:
    case COORD_REBALANCING:
    case COORD_UNKNOWN_MEMBER:
    case COORD_ILLEGAL_GENERATION:
    case COORD_FENCED_INSTANCE:
        snprintf(msg, sizeof(msg),
                 "group '%.255s' has active members; stop its consumers first", group);
        return http_respond_error(hc, 409, "group_not_empty", msg);
    case COORD_UNAVAILABLE:
        return http_respond_error(hc, 503, "unavailable", "the broker is shutting down");
    case COORD_STORAGE:
        return http_respond_td_error(hc, rc);
    case COORD_NOMEM:
        return http_respond_error(hc, 500, "internal", "out of memory");
    default:
        snprintf(msg, sizeof(msg), "group '%.255s': %s", group, coord_err_name(err));
        return http_respond_error(hc, 500, "internal", msg);
    }
}

/* Total lag and partitions of a group's committed offsets; -1 lag if they cannot be read. */
static void group_lag_total(td_engine *e, const char *group, int64_t *lag, size_t *parts)
{
    td_group_lag_info *v = NULL;
    size_t n = 0;
    *lag = 0;
    *parts = 0;
    if (td_group_lag(e, group, &v, &n) != 0) {
        *lag = -1;
        return;
    }
    for (size_t i = 0; i < n; i++)
        *lag += v[i].lag;
    *parts = n;
    free(v);
}

/* ---------------------------------------------------------------------------------------------
 * GET /v1/groups
 */
static void groups_list(hconn *hc)
{
    coord_group_summary *v = NULL;
    size_t n = 0;
    int rc = coord_list(hc->s->cfg.coord, &v, &n);
    if (rc)
        return http_respond_td_error(hc, rc);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        int64_t lag;
        size_t parts;
        if (!http_may(hc, TD_RES_GROUP, v[i].name, TD_OP_DESCRIBE))
            continue;
        group_lag_total(hc->s->e, v[i].name, &lag, &parts);
        json_t *g = json_pack("{s:s,s:s,s:s,s:I,s:I}", "group", v[i].name, "state",
                              coord_state_name(v[i].state), "protocol_type", v[i].protocol_type,
                              "members", (json_int_t)v[i].members, "partitions",
                              (json_int_t)parts);
        json_object_set_new(g, "lag", lag < 0 ? json_null() : json_integer(lag));
        json_array_append_new(arr, g);
    }
    free(v);
    http_respond_json(hc, 200, json_pack("{s:o}", "groups", arr), NULL);
}

/* ---------------------------------------------------------------------------------------------
 * GET /v1/groups/{group}
 */
/* A partition assigned to a member, for the offsets table. */
typedef struct owner {
    const char *topic; /* in the describe's arena */
    int32_t partition;
    const char *member_id;
    bool seen; /* has a committed offset */
} owner;

static owner *owner_find(owner *v, size_t n, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].partition == partition && !strcmp(v[i].topic, topic))
            return &v[i];
    return NULL;
}

static int owner_cmp(const void *x, const void *y)
{
    const owner *a = x, *b = y;
    int c = strcmp(a->topic, b->topic);
    return c ? c : (a->partition > b->partition) - (a->partition < b->partition);
}

/* The member's assignment as JSON, its partitions added to owners; NULL if the bytes are not a
 * Kafka consumer assignment. */
static json_t *assignment_json(const coord_member_desc *m, td_arena *a, owner **owners,
                               size_t *n)
{
    coord_assigned_topic *at;
    int nt = coord_assignment_topics(m->assignment, m->assignment_len, a, &at);
    if (nt < 0)
        return NULL;
    size_t total = *n;
    for (int t = 0; t < nt; t++)
        total += (size_t)at[t].npartitions;
    owner *v = realloc(*owners, (total ? total : 1) * sizeof(*v));
    if (!v)
        return NULL;
    *owners = v;
    json_t *arr = json_array();
    for (int t = 0; t < nt; t++) {
        json_t *parts = json_array();
        for (int32_t k = 0; k < at[t].npartitions; k++) {
            json_array_append_new(parts, json_integer(at[t].partitions[k]));
            v[(*n)++] = (owner){at[t].topic, at[t].partitions[k], m->member_id, false};
        }
        json_array_append_new(arr, json_pack("{s:s,s:o}", "topic", at[t].topic, "partitions",
                                             parts));
    }
    return arr;
}

static void group_describe(hconn *hc, const char *group)
{
    coord_group_desc d;
    coord_err err = coord_describe(hc->s->cfg.coord, group, &d);
    if (err) {
        coord_desc_free(&d);
        return respond_coord_error(hc, group, err, 0);
    }
    if (d.state == COORD_DEAD) {
        coord_desc_free(&d);
        return respond_coord_error(hc, group, COORD_NOT_FOUND, 0);
    }
    td_group_lag_info *lags = NULL;
    size_t nlags = 0;
    int rc = td_group_lag(hc->s->e, group, &lags, &nlags);
    if (rc) {
        coord_desc_free(&d);
        return http_respond_td_error(hc, rc);
    }
    json_t *o = json_pack("{s:s,s:s,s:i,s:s,s:s,s:s}", "group", group, "state",
                          coord_state_name(d.state), "generation", d.generation, "protocol_type",
                          d.protocol_type, "protocol", d.protocol_name, "leader", d.leader);
    json_t *members = json_array();
    owner *owners = NULL;
    size_t nown = 0;
    bool consumer = !strcmp(d.protocol_type, "consumer");
    for (size_t i = 0; i < d.nmembers; i++) {
        const coord_member_desc *m = &d.members[i];
        json_t *mj = json_pack("{s:s,s:s,s:s}", "member_id", m->member_id, "client_id",
                               m->client_id ? m->client_id : "", "client_host",
                               m->client_host ? m->client_host : "");
        json_object_set_new(mj, "instance_id",
                            m->instance_id ? json_string(m->instance_id) : json_null());
        json_t *aj = consumer && m->assignment ? assignment_json(m, &d.arena, &owners, &nown)
                                               : NULL;
        if (aj)
            json_object_set_new(mj, "assignment", aj);
        json_array_append_new(members, mj);
    }
    json_object_set_new(o, "members", members);

    /* One row per committed partition, then the assigned partitions without a commit. */
    json_t *offsets = json_array();
    int64_t total = 0;
    for (size_t i = 0; i < nlags; i++) {
        const td_group_lag_info *l = &lags[i];
        json_t *r = json_pack("{s:s,s:i,s:I,s:I,s:I,s:I}", "topic", l->topic, "partition",
                              l->partition, "committed", (json_int_t)l->committed,
                              "high_watermark", (json_int_t)l->high_watermark, "lag",
                              (json_int_t)l->lag, "commit_ms", (json_int_t)l->commit_ms);
        owner *ow = owner_find(owners, nown, l->topic, l->partition);
        if (ow)
            ow->seen = true;
        json_object_set_new(r, "member_id", ow ? json_string(ow->member_id) : json_null());
        json_array_append_new(offsets, r);
        total += l->lag;
    }
    if (nown)
        qsort(owners, nown, sizeof(*owners), owner_cmp);
    for (size_t i = 0; i < nown; i++) {
        owner *ow = &owners[i];
        if (ow->seen)
            continue;
        td_partition_info pi;
        json_t *hw = td_partition_describe(hc->s->e, ow->topic, ow->partition, &pi) == 0
                         ? json_integer(pi.high_watermark)
                         : json_null();
        json_array_append_new(offsets,
                              json_pack("{s:s,s:i,s:n,s:o,s:n,s:n,s:s}", "topic", ow->topic,
                                        "partition", ow->partition, "committed", "high_watermark",
                                        hw, "lag", "commit_ms", "member_id", ow->member_id));
    }
    free(owners);
    free(lags);
    coord_desc_free(&d);
    json_object_set_new(o, "offsets", offsets);
    json_object_set_new(o, "lag", json_integer(total));
    http_respond_json(hc, 200, o, NULL);
}

/* ---------------------------------------------------------------------------------------------
 * POST /v1/groups/{group}/reset
 * {"to": "earliest"|"latest"|"offset"|"time", "offset": N, "time": ms or "2026-01-02T03:04:05Z",
 *  "topics": ["t", {"topic": "t", "partitions": [0, 1]}], "dry_run": false}
 */
enum {
    TO_EARLIEST = TD_RESET_EARLIEST,
    TO_LATEST = TD_RESET_LATEST,
    TO_OFFSET = TD_RESET_OFFSET,
    TO_TIME = TD_RESET_TIME
};

typedef struct reset_op {
    net_conn *c;
    char *group;
    td_offset_commit *v;
    int64_t *previous; /* -1: none */
    size_t n;
    coord_err err;
    int rc;
} reset_op;

static void reset_free(reset_op *op)
{
    if (!op)
        return;
    for (size_t i = 0; i < op->n; i++)
        free((char *)op->v[i].topic);
    free(op->v);
    free(op->previous);
    free(op->group);
    free(op);
}

static void reset_answer(hconn *hc, reset_op *op, bool dry_run)
{
    if (op->err)
        return respond_coord_error(hc, op->group, op->err, op->rc);
    json_t *arr = json_array();
    for (size_t i = 0; i < op->n; i++) {
        json_t *r = json_pack("{s:s,s:i,s:I}", "topic", op->v[i].topic, "partition",
                              op->v[i].partition, "offset", (json_int_t)op->v[i].offset);
        json_object_set_new(r, "previous",
                            op->previous[i] < 0 ? json_null() : json_integer(op->previous[i]));
        json_array_append_new(arr, r);
    }
    http_respond_json(hc, 200,
                      json_pack("{s:s,s:b,s:o}", "group", op->group, "dry_run", dry_run, "offsets",
                                arr),
                      NULL);
}

static void reset_done(void *arg)
{
    reset_op *op = arg;
    net_conn *c = op->c;
    hconn *hc = net_conn_closed(c) ? NULL : net_conn_data(c);
    if (hc) {
        if (!op->err)
            TD_INFO("http", "reset %zu offsets of group %s for %s", op->n, op->group,
                    net_conn_peer(c));
        reset_answer(hc, op, false);
        http_finish_async(hc);
    }
    reset_free(op);
    net_conn_unref(c);
}

/* Any thread: the coordinator's, or this one when refused at once. */
static void reset_committed(void *arg, coord_err err, int rc)
{
    reset_op *op = arg;
    op->err = err;
    op->rc = rc;
    if (net_loop_post(net_conn_loop(op->c), reset_done, op) != 0)
        TD_ERROR("http", "cannot post a reset completion: out of memory");
}

static bool op_add(reset_op *op, size_t *cap, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < op->n; i++)
        if (op->v[i].partition == partition && !strcmp(op->v[i].topic, topic))
            return true;
    /* Two arrays of one length: previous grows first, so that a failure leaves both as large
     * as op->n needs. */
    size_t cap_previous = *cap;
    if (td_grow(&op->previous, &cap_previous, op->n, sizeof(*op->previous), 16) != 0 ||
        td_grow(&op->v, cap, op->n, sizeof(*op->v), 16) != 0)
        return false;
    char *t = strdup(topic);
    if (!t)
        return false;
    op->v[op->n] = (td_offset_commit){.topic = t, .partition = partition, .leader_epoch = -1};
    op->previous[op->n++] = -1;
    return true;
}

/* The partitions to reset, from "topics" or, without it, every committed partition. */
static bool reset_targets(hconn *hc, const char *group, json_t *topics, reset_op *op)
{
    size_t cap = 0;
    char msg[400];
    if (!topics) {
        td_committed_offset *v = NULL;
        size_t n = 0;
        int rc = td_group_offsets(hc->s->e, group, &v, &n);
        if (rc) {
            http_respond_td_error(hc, rc);
            return false;
        }
        for (size_t i = 0; i < n; i++)
            if (!op_add(op, &cap, v[i].topic, v[i].partition)) {
                free(v);
                http_respond_error(hc, 500, "internal", "out of memory");
                return false;
            }
        free(v);
        if (op->n == 0) {
            snprintf(msg, sizeof(msg),
                     "group '%.255s' has no committed offsets: name the 'topics' to reset", group);
            http_respond_error(hc, 400, "invalid_argument", msg);
            return false;
        }
        return true;
    }
    if (!json_is_array(topics) || json_array_size(topics) == 0) {
        http_respond_error(hc, 400, "invalid_argument",
                           "'topics' must be a non-empty array of topic names or "
                           "{\"topic\", \"partitions\"} objects");
        return false;
    }
    size_t i;
    json_t *t;
    json_array_foreach(topics, i, t)
    {
        json_t *name = json_is_object(t) ? json_object_get(t, "topic") : t;
        json_t *parts = json_is_object(t) ? json_object_get(t, "partitions") : NULL;
        if (!json_is_string(name) || (parts && !json_is_array(parts))) {
            http_respond_error(hc, 400, "invalid_argument",
                               "each of 'topics' is a topic name or {\"topic\": name, "
                               "\"partitions\": [numbers]}");
            return false;
        }
        td_topic_info info;
        int rc = td_topic_describe(hc->s->e, json_string_value(name), &info);
        if (rc) {
            http_respond_td_error(hc, rc);
            return false;
        }
        size_t np = parts ? json_array_size(parts) : (size_t)info.partitions;
        for (size_t k = 0; k < np; k++) {
            json_t *pj = parts ? json_array_get(parts, k) : NULL;
            if (pj && (!json_is_integer(pj) || json_integer_value(pj) < 0 ||
                       json_integer_value(pj) >= info.partitions)) {
                snprintf(msg, sizeof(msg), "topic '%s' has partitions 0 to %d", info.name,
                         info.partitions - 1);
                http_respond_error(hc, 400, "invalid_argument", msg);
                return false;
            }
            if (!op_add(op, &cap, info.name, pj ? (int32_t)json_integer_value(pj) : (int32_t)k)) {
                http_respond_error(hc, 500, "internal", "out of memory");
                return false;
            }
        }
    }
    return true;
}

/* Sets each target's new offset (within the log's bounds, as Kafka's tool clamps) and its
 * previous commit. */
static bool reset_offsets(hconn *hc, reset_op *op, int to, int64_t value)
{
    td_engine *e = hc->s->e;
    /* Committing offsets for a topic reads it (Kafka's OffsetCommit: Read on the topic). */
    for (size_t i = 0; i < op->n; i++)
        if ((i == 0 || strcmp(op->v[i].topic, op->v[i - 1].topic) != 0) &&
            !http_require(hc, TD_RES_TOPIC, op->v[i].topic, TD_OP_READ))
            return false;
    for (size_t i = 0; i < op->n; i++) {
        td_offset_commit *c = &op->v[i];
        int rc = td_offset_reset(e, c->topic, c->partition, to, value, &c->offset);
        if (rc) {
            http_respond_td_error(hc, rc);
            return false;
        }
        int64_t prev;
        if (td_group_committed(e, op->group, c->topic, c->partition, &prev) == 0)
            op->previous[i] = prev;
    }
    return true;
}

static void group_reset(hconn *hc, const char *group)
{
    json_t *b = http_body_json(hc, true);
    if (!b)
        return;
    reset_op *op = calloc(1, sizeof(*op));
    if (!op || !(op->group = strdup(group))) {
        http_respond_error(hc, 500, "internal", "out of memory");
        goto fail;
    }
    op->c = hc->c;
    const char *k;
    json_t *v;
    json_object_foreach(b, k, v)
    {
        if (strcmp(k, "to") && strcmp(k, "offset") && strcmp(k, "time") && strcmp(k, "topics") &&
            strcmp(k, "dry_run")) {
            char msg[300];
            snprintf(msg, sizeof(msg), "unknown field '%.200s'", k);
            http_respond_error(hc, 400, "invalid_argument", msg);
            goto fail;
        }
    }
    const char *to_s = json_string_value(json_object_get(b, "to"));
    int to = !to_s                       ? -1
             : !strcmp(to_s, "earliest") ? TO_EARLIEST
             : !strcmp(to_s, "latest")   ? TO_LATEST
             : !strcmp(to_s, "offset")   ? TO_OFFSET
             : !strcmp(to_s, "time")     ? TO_TIME
                                         : -1;
    if (to < 0) {
        http_respond_error(hc, 400, "invalid_argument",
                           "'to' must be \"earliest\", \"latest\", \"offset\" or \"time\"");
        goto fail;
    }
    int64_t value = 0;
    json_t *dry = json_object_get(b, "dry_run");
    if (dry && !json_is_boolean(dry)) {
        http_respond_error(hc, 400, "invalid_argument", "'dry_run' must be true or false");
        goto fail;
    }
    if (to == TO_OFFSET) {
        json_t *o = json_object_get(b, "offset");
        if (!json_is_integer(o) || json_integer_value(o) < 0) {
            http_respond_error(hc, 400, "invalid_argument",
                               "\"to\": \"offset\" needs 'offset', a number >= 0");
            goto fail;
        }
        value = json_integer_value(o);
    } else if (to == TO_TIME) {
        if (!http_json_time(json_object_get(b, "time"), &value)) {
            http_respond_error(hc, 400, "invalid_argument",
                               "\"to\": \"time\" needs 'time': Unix milliseconds or an ISO 8601 "
                               "time such as \"2026-01-02T03:04:05Z\"");
            goto fail;
        }
    }
    coord_group_desc d;
    coord_err err = coord_describe(hc->s->cfg.coord, group, &d);
    size_t members = d.nmembers;
    coord_state state = d.state;
    coord_desc_free(&d);
    if (err) {
        respond_coord_error(hc, group, err, 0);
        goto fail;
    }
    if (state != COORD_EMPTY && state != COORD_DEAD) {
        char msg[400];
        snprintf(msg, sizeof(msg),
                 "group '%.255s' is %s with %zu members: offsets can be reset only while it has "
                 "no members; stop its consumers first",
                 group, coord_state_name(state), members);
        http_respond_error(hc, 409, "group_not_empty", msg);
        goto fail;
    }
    if (!reset_targets(hc, group, json_object_get(b, "topics"), op) ||
        !reset_offsets(hc, op, to, value))
        goto fail;
    if (json_is_true(dry)) {
        reset_answer(hc, op, true);
        goto fail; /* nothing to keep */
    }
    json_decref(b);
    net_conn_ref(hc->c);
    http_begin_async(hc);
    /* As a client that manages its own partitions: refused if members joined meanwhile. */
    coord_commit(hc->s->cfg.coord, group, "", NULL, -1, op->v, op->n, reset_committed, op);
    return;
fail:
    reset_free(op);
    json_decref(b);
}

/* ---------------------------------------------------------------------------------------------
 * Routing: /v1/groups[/{group}[/reset]]
 */
void http_route_groups(hconn *hc, const char *group, const char *action)
{
    if (!group) {
        if (http_method_is(hc, "GET") || http_method_is(hc, "HEAD"))
            return groups_list(hc);
        return http_respond_method_not_allowed(hc, "GET, HEAD");
    }
    if (action) {
        if (strcmp(action, "reset") != 0)
            return http_respond_error(hc, 404, "not_found", "no such path");
        if (http_method_is(hc, "POST"))
            return group_reset(hc, group);
        return http_respond_method_not_allowed(hc, "POST");
    }
    if (http_method_is(hc, "GET") || http_method_is(hc, "HEAD"))
        return group_describe(hc, group);
    if (http_method_is(hc, "DELETE")) {
        int rc = 0;
        coord_err err = coord_delete(hc->s->cfg.coord, group, &rc);
        if (err)
            return respond_coord_error(hc, group, err, rc);
        TD_INFO("http", "deleted group %s for %s", group, net_conn_peer(hc->c));
        return http_respond_json(hc, 204, NULL, NULL);
    }
    http_respond_method_not_allowed(hc, "GET, HEAD, DELETE");
}
