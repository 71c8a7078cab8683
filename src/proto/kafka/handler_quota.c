/*
 * handler_quota.c: DescribeClientQuotas and AlterClientQuotas over the broker's quotas
 * (td_quota_list, td_quota_alter; docs/security.md#quotas). Describing needs DescribeConfigs on
 * the cluster and altering AlterConfigs, as in Kafka (kafka_authz_cluster: refusals are counted
 * and audited like every Kafka refusal).
 *
 * Entity types are Kafka's "user" and "client-id"; "ip" (connection-rate quotas) is not
 * supported: filters on it match nothing and changes to it are refused with INVALID_REQUEST.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/audit.h"
#include "broker/authz.h"
#include "broker/quota.h"
#include "proto/kafka/handler_int.h"
#include "proto/kafka/kauthz.h"

/* 0 user, 1 client-id, 2 ip, -1 unknown. */
static int entity_type(const char *t)
{
    if (!t)
        return -1;
    return !strcmp(t, "user") ? 0 : !strcmp(t, "client-id") ? 1 : !strcmp(t, "ip") ? 2 : -1;
}

/* ---------------------------------------------------------------------------------------------
 * DescribeClientQuotas
 */

/* A filter's first problem, or NULL. */
static const char *check_filters(const kafka_describe_quotas_req *req)
{
    bool seen[3] = {false, false, false};
    for (int32_t i = 0; i < req->nfilters; i++) {
        const kafka_quota_filter *f = &req->filters[i];
        int t = entity_type(f->type);
        if (t < 0)
            return "Custom entity type is not supported";
        if (seen[t])
            return "Duplicate entity type in the filter";
        seen[t] = true;
        if (f->match_type == 0 && !f->match)
            return "A match name is needed for an exact match";
        if ((f->match_type == 1 || f->match_type == 2) && f->match)
            return "A match name must be null for this match type";
        if (f->match_type < 0 || f->match_type > 2)
            return "Unknown match type";
    }
    return NULL;
}

static bool level_matches(td_quota_level l, const char *name, const kafka_quota_filter *f)
{
    switch (f->match_type) {
    case 0:
        return l == TD_QUOTA_NAMED && !strcmp(name, f->match);
    case 1:
        return l == TD_QUOTA_DEFAULT;
    default:
        return l != TD_QUOTA_ABSENT;
    }
}

static bool entity_matches(const td_quota_entity *en, const kafka_describe_quotas_req *req)
{
    bool filtered[2] = {false, false};
    for (int32_t i = 0; i < req->nfilters; i++) {
        const kafka_quota_filter *f = &req->filters[i];
        int t = entity_type(f->type);
        if (t == 2)
            return false; /* no entity has an ip level */
        filtered[t] = true;
        bool m = t == 0 ? level_matches(en->user_level, en->user, f)
                        : level_matches(en->client_level, en->client_id, f);
        if (!m)
            return false;
    }
    /* strict: the entity has no level the filter does not name. */
    if (req->strict && ((!filtered[0] && en->user_level != TD_QUOTA_ABSENT) ||
                        (!filtered[1] && en->client_level != TD_QUOTA_ABSENT)))
        return false;
    return true;
}

/* Fills one response entry from a quota (arena memory). */
static int fill_entry(td_arena *a, const td_quota_info *qi, kafka_quota_entry *out)
{
    const td_quota_entity *en = &qi->entity;
    int np = (en->user_level != TD_QUOTA_ABSENT) + (en->client_level != TD_QUOTA_ABSENT);
    out->parts = td_arena_alloc(a, (size_t)np * sizeof(*out->parts));
    out->values = td_arena_alloc(a, TD_QUOTA_KEYS * sizeof(*out->values));
    if (!out->parts || !out->values)
        return -1;
    out->nparts = 0;
    if (en->user_level != TD_QUOTA_ABSENT)
        out->parts[out->nparts++] = (kafka_quota_entity_part){
            "user", en->user_level == TD_QUOTA_NAMED ? td_arena_strdup(a, en->user) : NULL};
    if (en->client_level != TD_QUOTA_ABSENT)
        out->parts[out->nparts++] = (kafka_quota_entity_part){
            "client-id",
            en->client_level == TD_QUOTA_NAMED ? td_arena_strdup(a, en->client_id) : NULL};
    out->nvalues = 0;
    for (int k = 0; k < TD_QUOTA_KEYS; k++)
        if (qi->has & (1 << k))
            out->values[out->nvalues++] = (kafka_quota_value){td_quota_key_name(k), qi->values[k]};
    return 0;
}

void kafka_serve_describe_client_quotas(kreq *q, kafka_reader *r)
{
    int16_t v = q->h.api_version;
    kafka_describe_quotas_req req;
    if (kafka_decode_describe_quotas(r, v, &req) != 0) {
        q->out.err = TD_EPROTO;
        return;
    }
    kafka_describe_quotas_resp resp = {.nentries = -1};
    const char *bad = check_filters(&req);
    td_quota_info *list = NULL;
    size_t n = 0;
    int rc;
    if (!kafka_authz_cluster(q, TD_OP_DESCRIBE_CONFIGS)) {
        resp.error_code = KERR_CLUSTER_AUTHORIZATION_FAILED;
        resp.error_message = "Cluster authorization failed.";
    } else if (bad) {
        resp.error_code = KERR_INVALID_REQUEST;
        resp.error_message = bad;
    } else if ((rc = td_quota_list(q->kc->s->e, &list, &n)) != 0) {
        resp.error_code = kafka_error_of(rc);
    } else {
        resp.entries = td_arena_alloc(&q->arena, (n ? n : 1) * sizeof(*resp.entries));
        resp.nentries = 0;
        for (size_t i = 0; resp.entries && i < n; i++)
            if (entity_matches(&list[i].entity, &req) &&
                fill_entry(&q->arena, &list[i], &resp.entries[resp.nentries]) == 0)
                resp.nentries++;
        if (!resp.entries) {
            q->out.err = -ENOMEM;
            free(list);
            return;
        }
    }
    free(list);
    kreq_begin(q);
    kafka_encode_describe_quotas(&q->out, v, &resp);
    ko_end(&q->out);
}

/* ---------------------------------------------------------------------------------------------
 * AlterClientQuotas
 */

/* The entity of a request entry; an error code with *why when it is not one tidings has. */
static int16_t parse_entity(const kafka_quota_alter_entry *x, td_quota_entity *en,
                            const char **why)
{
    memset(en, 0, sizeof(*en));
    for (int32_t i = 0; i < x->nparts; i++) {
        const kafka_quota_entity_part *p = &x->parts[i];
        int t = entity_type(p->type);
        if (t < 0 || t == 2) {
            *why = t == 2 ? "IP quotas are not supported" : "Custom entity type is not supported";
            return KERR_INVALID_REQUEST;
        }
        td_quota_level *l = t == 0 ? &en->user_level : &en->client_level;
        char *dst = t == 0 ? en->user : en->client_id;
        size_t cap = t == 0 ? sizeof(en->user) : sizeof(en->client_id);
        if (*l != TD_QUOTA_ABSENT) {
            *why = "Duplicate entity type";
            return KERR_INVALID_REQUEST;
        }
        *l = p->name ? TD_QUOTA_NAMED : TD_QUOTA_DEFAULT;
        if (p->name && strlen(p->name) >= cap) {
            *why = "Entity name too long";
            return KERR_INVALID_REQUEST;
        }
        if (p->name)
            snprintf(dst, cap, "%s", p->name);
    }
    return KERR_NONE;
}

static void alter_entry(kreq *q, kafka_quota_alter_entry *x, bool validate_only)
{
    td_quota_entity en;
    const char *why = NULL;
    if ((x->error_code = parse_entity(x, &en, &why)) != KERR_NONE) {
        x->error_message = why;
        return;
    }
    td_quota_op *ops = calloc((size_t)(x->nops ? x->nops : 1), sizeof(*ops));
    if (!ops) {
        x->error_code = KERR_UNKNOWN_SERVER_ERROR;
        return;
    }
    for (int32_t k = 0; k < x->nops; k++) {
        ops[k].key = td_quota_key_parse(x->ops[k].key);
        ops[k].value = x->ops[k].value;
        ops[k].remove = x->ops[k].remove;
        if (ops[k].key < 0) {
            x->error_code = KERR_INVALID_REQUEST;
            /* Kafka's words for it. */
            char msg[320];
            snprintf(msg, sizeof(msg), "Invalid configuration key %.256s",
                     x->ops[k].key ? x->ops[k].key : "null");
            x->error_message = td_arena_strdup(&q->arena, msg);
            free(ops);
            return;
        }
    }
    int rc = td_quota_alter(q->kc->s->e, &en, ops, (size_t)x->nops, validate_only);
    free(ops);
    if (rc == TD_EINVAL || rc == TD_ENAME) {
        x->error_code = KERR_INVALID_REQUEST;
        x->error_message = td_arena_strdup(&q->arena, td_last_error());
    } else if (rc) {
        x->error_code = kafka_error_of(rc);
        x->error_message = td_arena_strdup(&q->arena, td_last_error());
    } else if (!validate_only) {
        broker_audit(q->kc->s->e, TD_AUDIT_QUOTA_CHANGE, "kafka", net_conn_principal(q->kc->c),
                     net_conn_peer(q->kc->c), "AlterClientQuotas of user %s, client id %s",
                     en.user_level == TD_QUOTA_NAMED     ? en.user
                     : en.user_level == TD_QUOTA_DEFAULT ? "<default>"
                                                         : "-",
                     en.client_level == TD_QUOTA_NAMED     ? en.client_id
                     : en.client_level == TD_QUOTA_DEFAULT ? "<default>"
                                                           : "-");
    }
}

void kafka_serve_alter_client_quotas(kreq *q, kafka_reader *r)
{
    int16_t v = q->h.api_version;
    kafka_alter_quotas_req req;
    if (kafka_decode_alter_quotas(r, v, &req) != 0) {
        q->out.err = TD_EPROTO;
        return;
    }
    bool allowed = kafka_authz_cluster(q, TD_OP_ALTER_CONFIGS);
    for (int32_t i = 0; i < req.nentries; i++) {
        if (!allowed) {
            req.entries[i].error_code = KERR_CLUSTER_AUTHORIZATION_FAILED;
            req.entries[i].error_message = "Cluster authorization failed.";
            continue;
        }
        alter_entry(q, &req.entries[i], req.validate_only);
    }
    kreq_begin(q);
    kafka_encode_alter_quotas(&q->out, v, &req);
    ko_end(&q->out);
}

/* ---------------------------------------------------------------------------------------------
 * Throttling a connection's input
 */
static void throttle_done(void *arg)
{
    kconn *kc = arg;
    kc->throttled = false;
    if (!kc->paused_by_us && !kc->closed)
        net_conn_resume(kc->c);
}

int32_t kafka_quota_record(kreq *q, td_quota_key key, double amount)
{
    kconn *kc = q->kc;
    td_engine *e = kc->s->e;
    if (!broker_quota_any(e, key) || kc->closed)
        return 0;
    net_loop *l = net_conn_loop(kc->c);
    int64_t now = net_loop_now(l);
    int64_t t = broker_quota_record(e, net_conn_principal(kc->c), q->h.client_id, key, amount,
                                    td_mono_ms());
    if (t <= 0)
        return 0;
    /* The longest throttle wins: a timer already armed for longer stays. */
    if (!kc->throttled || kc->throttle_timer.due_ms < now + t) {
        if (kc->throttled)
            net_timer_stop(l, &kc->throttle_timer);
        else
            kc->throttle_timer = (net_timer)NET_TIMER_INIT;
        kc->throttled = true;
        net_conn_pause(kc->c);
        net_timer_start(l, &kc->throttle_timer, t, throttle_done, kc);
    }
    return (int32_t)TD_MIN(t, INT32_MAX);
}

void kafka_quota_close(kconn *kc)
{
    if (kc->throttled) {
        net_timer_stop(net_conn_loop(kc->c), &kc->throttle_timer);
        kc->throttled = false;
    }
}

bool kafka_quota_muted(const kconn *kc)
{
    return kc->throttled;
}
