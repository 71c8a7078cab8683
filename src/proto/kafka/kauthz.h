/*
 * kauthz.h: what each Kafka API needs (authz.c, docs/security.md#authorization), in one place:
 * the handlers ask these before acting, with the request's principal (the connection's user or
 * certificate CN, and its peer's address) and Kafka's rules (KIP-11, Kafka's AclAuthorizer).
 *
 * kafka_can asks without side effects (for listings that leave out what the principal may not
 * see); the kafka_authz_* checks below also count a refusal
 * (tidings_security_denied_total{protocol="kafka",reason="acl"}) and audit it (broker_audit),
 * except where they say otherwise.
 */
#ifndef TD_PROTO_KAFKA_KAUTHZ_H
#define TD_PROTO_KAFKA_KAUTHZ_H

#include "broker/authz.h"
#include "proto/kafka/handler_int.h"

bool kafka_can(kreq *q, td_acl_resource type, const char *name, td_acl_op op);
/* The acting principal of q's connection for the audit trail (its strings are the
 * connection's, valid while it lives). */
td_audit_who kafka_actor(kreq *q);

/* Produce: Write on the topic, and on the transactional id if there is one. KERR_NONE, or
 * TRANSACTIONAL_ID_AUTHORIZATION_FAILED / TOPIC_AUTHORIZATION_FAILED. (An idempotent produce
 * needs nothing more: Kafka 3.0 dropped IdempotentWrite from Produce, KIP-679.) */
int16_t kafka_authz_produce(kreq *q, const char *transactional_id, const char *topic);
/* A transactional id: Describe (FindCoordinator) or Write (InitProducerId, AddPartitionsToTxn,
 * AddOffsetsToTxn, EndTxn, TxnOffsetCommit) on it. */
bool kafka_authz_txn(kreq *q, const char *id, td_acl_op op);
/* InitProducerId without a transactional id: IdempotentWrite on the cluster, or Write allowed
 * on some topic (Kafka's authorizeByResourceType, KIP-679). */
bool kafka_authz_idempotent(kreq *q);
/* Fetch: Read on the topic. ListOffsets, Metadata: Describe on the topic. */
bool kafka_authz_read(kreq *q, const char *topic);
bool kafka_authz_describe(kreq *q, const char *topic);
/* Metadata without topics: whether the listing shows the topic (Describe, no refusal counted). */
bool kafka_authz_listed(kreq *q, const char *topic);
/* CreateTopics and auto-creation: Create on the cluster or on the topic. */
bool kafka_authz_create_topic(kreq *q, const char *topic);
/* DeleteTopics, DeleteRecords: Delete on the topic. CreatePartitions: Alter on the topic. */
bool kafka_authz_delete_topic(kreq *q, const char *topic);
bool kafka_authz_alter_topic(kreq *q, const char *topic);
/* DescribeConfigs / AlterConfigs / IncrementalAlterConfigs of a config resource (Kafka's config
 * resource types: 2 topic, 4 broker, 8 broker logger): DescribeConfigs / AlterConfigs on the
 * topic, or on the cluster for the others. Returns KERR_NONE or the refusal's error code. */
int16_t kafka_authz_configs(kreq *q, int8_t config_type, const char *name, bool alter);
/* Group APIs: op (Read, Describe, Delete) on the group. */
bool kafka_authz_group(kreq *q, const char *group, td_acl_op op);
/* Cluster operations: op on the cluster (ListGroups: Describe; ACL changes: Alter). */
bool kafka_authz_cluster(kreq *q, td_acl_op op);

/* The operations the principal may do on a topic (Read, Write, Create, Delete, Alter, Describe,
 * DescribeConfigs, AlterConfigs), a group (Read, Describe, Delete) or the cluster (Create,
 * Alter, Describe, ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite), as bits
 * (1 << op): Kafka's authorized
 * operations (KIP-430) in Metadata and DescribeCluster. No refusal is counted. */
int32_t kafka_authorized_ops(kreq *q, td_acl_resource type, const char *name);

#endif /* TD_PROTO_KAFKA_KAUTHZ_H */
