/*
 * authz.c: the Kafka APIs' permissions (kauthz.h). Each function is one line of the table in
 * docs/security.md#authorization; the decision itself is broker_authorize's (broker/authz.h),
 * the same for every protocol. A refusal is an audit event (broker_audit): logged with the
 * principal, the peer, the operation, the resource and the API, and counted.
 *
 * Cost: a check is one read-locked scan of the ACLs of the resource's type (broker/acl.c);
 * super users and anonymous with anonymous.access=all are answered before the scan. The peer's
 * host is cut out of net_conn_peer ("ip:port") on the stack at each check.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/audit.h"
#include "proto/kafka/kauthz.h"

/* The principal of q's connection; host gets the peer's address without the port. */
static td_principal who(kreq *q, char host[64])
{
    const char *peer = net_conn_peer(q->kc->c);
    const char *colon = strrchr(peer, ':');
    size_t n = colon ? (size_t)(colon - peer) : strlen(peer);
    if (n > 63)
        n = 63;
    memcpy(host, peer, n);
    host[n] = '\0';
    return (td_principal){net_conn_principal(q->kc->c), host};
}

td_audit_who kafka_actor(kreq *q)
{
    return (td_audit_who){"kafka", net_conn_principal(q->kc->c), net_conn_peer(q->kc->c)};
}

bool kafka_can(kreq *q, td_acl_resource type, const char *name, td_acl_op op)
{
    char host[64];
    td_principal p = who(q, host);
    return broker_authorize(q->kc->s->e, &p, type, name, op);
}

static bool kafka_authorize(kreq *q, td_acl_resource type, const char *name, td_acl_op op)
{
    if (kafka_can(q, type, name, op))
        return true;
    kafka_server *s = q->kc->s;
    td_counter_add(s->m_denied, 1);
    const kafka_api *a = kafka_api_find(q->h.api_key);
    broker_audit(s->e, TD_AUDIT_DENIED, "kafka", net_conn_principal(q->kc->c),
                 net_conn_peer(q->kc->c), "%s on %s '%.200s' (%s)", td_acl_op_name(op),
                 td_acl_resource_name(type), name ? name : "", a ? a->name : "?");
    return false;
}

bool kafka_authz_txn(kreq *q, const char *id, td_acl_op op)
{
    return kafka_authorize(q, TD_RES_TRANSACTIONAL_ID, id ? id : "", op);
}

int16_t kafka_authz_produce(kreq *q, const char *transactional_id, const char *topic)
{
    if (transactional_id &&
        !kafka_authorize(q, TD_RES_TRANSACTIONAL_ID, transactional_id, TD_OP_WRITE))
        return KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
    return kafka_authorize(q, TD_RES_TOPIC, topic, TD_OP_WRITE) ? KERR_NONE
                                                                : KERR_TOPIC_AUTHORIZATION_FAILED;
}

bool kafka_authz_idempotent(kreq *q)
{
    char host[64];
    td_principal p = who(q, host);
    if (broker_authorize_any(q->kc->s->e, &p, TD_RES_TOPIC, TD_OP_WRITE))
        return true;
    return kafka_authorize(q, TD_RES_CLUSTER, TD_CLUSTER_NAME, TD_OP_IDEMPOTENT_WRITE);
}

bool kafka_authz_read(kreq *q, const char *topic)
{
    return kafka_authorize(q, TD_RES_TOPIC, topic, TD_OP_READ);
}

bool kafka_authz_describe(kreq *q, const char *topic)
{
    return kafka_authorize(q, TD_RES_TOPIC, topic, TD_OP_DESCRIBE);
}

bool kafka_authz_listed(kreq *q, const char *topic)
{
    return kafka_can(q, TD_RES_TOPIC, topic, TD_OP_DESCRIBE);
}

bool kafka_authz_create_topic(kreq *q, const char *topic)
{
    return kafka_can(q, TD_RES_CLUSTER, TD_CLUSTER_NAME, TD_OP_CREATE) ||
           kafka_authorize(q, TD_RES_TOPIC, topic, TD_OP_CREATE);
}

bool kafka_authz_delete_topic(kreq *q, const char *topic)
{
    return kafka_authorize(q, TD_RES_TOPIC, topic, TD_OP_DELETE);
}

bool kafka_authz_alter_topic(kreq *q, const char *topic)
{
    return kafka_authorize(q, TD_RES_TOPIC, topic, TD_OP_ALTER);
}

int16_t kafka_authz_configs(kreq *q, int8_t config_type, const char *name, bool alter)
{
    td_acl_op op = alter ? TD_OP_ALTER_CONFIGS : TD_OP_DESCRIBE_CONFIGS;
    if (config_type == 2)
        return kafka_authorize(q, TD_RES_TOPIC, name ? name : "", op)
                   ? KERR_NONE
                   : KERR_TOPIC_AUTHORIZATION_FAILED;
    return kafka_authorize(q, TD_RES_CLUSTER, TD_CLUSTER_NAME, op)
               ? KERR_NONE
               : KERR_CLUSTER_AUTHORIZATION_FAILED;
}

bool kafka_authz_group(kreq *q, const char *group, td_acl_op op)
{
    return kafka_authorize(q, TD_RES_GROUP, group ? group : "", op);
}

int32_t kafka_authorized_ops(kreq *q, td_acl_resource type, const char *name)
{
    static const td_acl_op topic_ops[] = {
        TD_OP_READ,  TD_OP_WRITE,    TD_OP_CREATE,           TD_OP_DELETE,
        TD_OP_ALTER, TD_OP_DESCRIBE, TD_OP_DESCRIBE_CONFIGS, TD_OP_ALTER_CONFIGS};
    static const td_acl_op cluster_ops[] = {
        TD_OP_CREATE,           TD_OP_ALTER,         TD_OP_DESCRIBE,        TD_OP_CLUSTER_ACTION,
        TD_OP_DESCRIBE_CONFIGS, TD_OP_ALTER_CONFIGS, TD_OP_IDEMPOTENT_WRITE};
    static const td_acl_op group_ops[] = {TD_OP_READ, TD_OP_DESCRIBE, TD_OP_DELETE};
    const td_acl_op *ops = type == TD_RES_TOPIC   ? topic_ops
                           : type == TD_RES_GROUP ? group_ops
                                                  : cluster_ops;
    size_t n = type == TD_RES_TOPIC   ? TD_ARRAY_LEN(topic_ops)
               : type == TD_RES_GROUP ? TD_ARRAY_LEN(group_ops)
                                      : TD_ARRAY_LEN(cluster_ops);
    int32_t bits = 0;
    for (size_t i = 0; i < n; i++)
        if (kafka_can(q, type, name, ops[i]))
            bits |= (int32_t)1 << ops[i];
    return bits;
}

bool kafka_authz_cluster(kreq *q, td_acl_op op)
{
    return kafka_authorize(q, TD_RES_CLUSTER, TD_CLUSTER_NAME, op);
}
