/*
 * apis.c: the one table of the Kafka APIs this broker serves. Each row says everything about
 * one API: its key and name, the versions served (what ApiVersions answers, what the framing
 * accepts: a version outside the range closes the connection, as Kafka's does), the first
 * flexible version (which switches the codec to compact encodings and tagged fields), the
 * handler that serves it and how it answers (kafka.h: kafka_answers). Adding an API, or a
 * version of one, is changing its row (and its codec and handler).
 *
 * The rows are in the order ApiVersions lists them (the order they were added).
 */
#include "proto/kafka/handler_int.h"

#define NOW KAFKA_ANSWERS_NOW
#define LATER KAFKA_ANSWERS_LATER
#define NOW_OR_LATER KAFKA_ANSWERS_NOW_OR_LATER
#define NONE INT16_MAX /* no flexible version in range */

static const kafka_api apis[] = {
    /* key, min, max, first flexible, name, how it answers, handler */
    {KAFKA_PRODUCE, 3, 9, 9, "Produce", LATER, kafka_serve_produce},
    {KAFKA_FETCH, 4, 17, 12, "Fetch", LATER, kafka_serve_fetch},
    {KAFKA_LIST_OFFSETS, 0, 7, 6, "ListOffsets", NOW, kafka_serve_list_offsets},
    {KAFKA_METADATA, 0, 12, 9, "Metadata", NOW, kafka_serve_metadata},
    {KAFKA_OFFSET_COMMIT, 0, 8, 8, "OffsetCommit", NOW_OR_LATER, kafka_serve_offset_commit},
    {KAFKA_OFFSET_FETCH, 0, 8, 6, "OffsetFetch", NOW, kafka_serve_offset_fetch},
    {KAFKA_FIND_COORDINATOR, 0, 4, 3, "FindCoordinator", NOW, kafka_serve_find_coordinator},
    {KAFKA_JOIN_GROUP, 0, 9, 6, "JoinGroup", NOW_OR_LATER, kafka_serve_join_group},
    {KAFKA_HEARTBEAT, 0, 4, 4, "Heartbeat", NOW, kafka_serve_heartbeat},
    {KAFKA_LEAVE_GROUP, 0, 5, 4, "LeaveGroup", NOW, kafka_serve_leave_group},
    {KAFKA_SYNC_GROUP, 0, 5, 4, "SyncGroup", NOW_OR_LATER, kafka_serve_sync_group},
    {KAFKA_DESCRIBE_GROUPS, 0, 5, 5, "DescribeGroups", NOW, kafka_serve_describe_groups},
    {KAFKA_LIST_GROUPS, 0, 4, 3, "ListGroups", NOW, kafka_serve_list_groups},
    {KAFKA_SASL_HANDSHAKE, 0, 1, NONE, "SaslHandshake", NOW, kafka_serve_sasl_handshake},
    /* Any version is answered (an unsupported one with UNSUPPORTED_VERSION in v0), so that a
     * client can learn the range. */
    {KAFKA_API_VERSIONS, 0, 3, 3, "ApiVersions", NOW, kafka_serve_api_versions},
    {KAFKA_CREATE_TOPICS, 0, 7, 5, "CreateTopics", NOW, kafka_serve_create_topics},
    {KAFKA_DELETE_TOPICS, 0, 6, 4, "DeleteTopics", NOW, kafka_serve_delete_topics},
    {KAFKA_DELETE_RECORDS, 0, 2, 2, "DeleteRecords", NOW, kafka_serve_delete_records},
    /* Later with a transactional id: the coordinator writes its state (handler_txn.c). */
    {KAFKA_INIT_PRODUCER_ID, 0, 4, 2, "InitProducerId", NOW_OR_LATER, kafka_serve_init_producer_id},
    {KAFKA_DESCRIBE_ACLS, 0, 3, 2, "DescribeAcls", NOW, kafka_serve_describe_acls},
    {KAFKA_CREATE_ACLS, 0, 3, 2, "CreateAcls", NOW, kafka_serve_create_acls},
    {KAFKA_DELETE_ACLS, 0, 3, 2, "DeleteAcls", NOW, kafka_serve_delete_acls},
    {KAFKA_DESCRIBE_CONFIGS, 0, 4, 4, "DescribeConfigs", NOW, kafka_serve_describe_configs},
    {KAFKA_DELETE_GROUPS, 0, 2, 2, "DeleteGroups", NOW, kafka_serve_delete_groups},
    {KAFKA_OFFSET_DELETE, 0, 0, NONE, "OffsetDelete", NOW, kafka_serve_offset_delete},
    {KAFKA_ALTER_CONFIGS, 0, 2, 2, "AlterConfigs", NOW, kafka_serve_alter_configs},
    {KAFKA_CREATE_PARTITIONS, 0, 3, 2, "CreatePartitions", NOW, kafka_serve_create_partitions},
    {KAFKA_INCREMENTAL_ALTER_CONFIGS, 0, 1, 1, "IncrementalAlterConfigs", NOW,
     kafka_serve_alter_configs},
    /* Later while a password is checked off the loop (PLAIN). */
    {KAFKA_SASL_AUTHENTICATE, 0, 2, 2, "SaslAuthenticate", NOW_OR_LATER,
     kafka_serve_sasl_authenticate},
    {KAFKA_DESCRIBE_USER_SCRAM_CREDENTIALS, 0, 0, 0, "DescribeUserScramCredentials", NOW,
     kafka_serve_describe_scram},
    {KAFKA_ALTER_USER_SCRAM_CREDENTIALS, 0, 0, 0, "AlterUserScramCredentials", NOW,
     kafka_serve_alter_scram},
    {KAFKA_DESCRIBE_CLUSTER, 0, 1, 0, "DescribeCluster", NOW, kafka_serve_describe_cluster},
    {KAFKA_DESCRIBE_CLIENT_QUOTAS, 0, 1, 1, "DescribeClientQuotas", NOW,
     kafka_serve_describe_client_quotas},
    {KAFKA_ALTER_CLIENT_QUOTAS, 0, 1, 1, "AlterClientQuotas", NOW, kafka_serve_alter_client_quotas},
    /* Transactions (handler_txn.c): the coordinator's calls answer later. */
    {KAFKA_ADD_PARTITIONS_TO_TXN, 0, 3, 3, "AddPartitionsToTxn", NOW_OR_LATER,
     kafka_serve_add_partitions_to_txn},
    {KAFKA_ADD_OFFSETS_TO_TXN, 0, 3, 3, "AddOffsetsToTxn", NOW_OR_LATER,
     kafka_serve_add_offsets_to_txn},
    {KAFKA_END_TXN, 0, 3, 3, "EndTxn", NOW_OR_LATER, kafka_serve_end_txn},
    {KAFKA_TXN_OFFSET_COMMIT, 0, 3, 3, "TxnOffsetCommit", NOW_OR_LATER,
     kafka_serve_txn_offset_commit},
    {KAFKA_DESCRIBE_PRODUCERS, 0, 0, 0, "DescribeProducers", NOW, kafka_serve_describe_producers},
    {KAFKA_DESCRIBE_TRANSACTIONS, 0, 0, 0, "DescribeTransactions", NOW,
     kafka_serve_describe_transactions},
    {KAFKA_LIST_TRANSACTIONS, 0, 1, 0, "ListTransactions", NOW, kafka_serve_list_transactions},
};

const kafka_api *kafka_api_find(int16_t key)
{
    for (size_t i = 0; i < TD_ARRAY_LEN(apis); i++)
        if (apis[i].key == key)
            return &apis[i];
    return NULL;
}

const kafka_api *kafka_api_all(size_t *n)
{
    *n = TD_ARRAY_LEN(apis);
    return apis;
}
