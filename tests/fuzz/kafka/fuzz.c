/*
 * libFuzzer target for the Kafka request codec: the input is one frame body (after the size):
 * the header, then the body of whatever API and version the header names. Every decoder must
 * reject or accept it without crashing, reading out of bounds or allocating from lying counts;
 * decoded requests whose response echoes them are encoded back.
 */
#include <stdint.h>
#include <stdlib.h>

#include "broker/group.h"
#include "proto/kafka/kafka.h"
#include "proto/kafka/sasl.h"
#include "proto/kafka/kafka_acl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A transaction response's results: the request's topics and partitions, each with an error. */
static kafka_txn_topic_result *txn_results(kafka_reader *r, const kafka_txn_topic *topics,
                                           int32_t n)
{
    kafka_txn_topic_result *t = kr_alloc(r, (size_t)n + 1, sizeof(*t));
    for (int32_t i = 0; t && i < n; i++) {
        t[i].name = topics[i].name;
        t[i].nparts = topics[i].nparts;
        t[i].parts = kr_alloc(r, (size_t)t[i].nparts + 1, sizeof(*t[i].parts));
        if (!t[i].parts)
            return NULL;
        for (int32_t k = 0; k < t[i].nparts; k++)
            t[i].parts[k] = (kafka_txn_part_result){topics[i].parts[k], KERR_NOT_COORDINATOR};
    }
    return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    td_arena a;
    td_arena_init(&a);
    kafka_reader r;
    kr_init(&r, data, size, &a);
    kafka_header h;
    if (kafka_decode_header(&r, &h) != 0 || !kafka_api_find(h.api_key)) {
        td_arena_free(&a);
        return 0;
    }
    int16_t v = h.api_version;
    const kafka_api *range = kafka_api_find(h.api_key);
    if (v < range->min || v > range->max) {
        td_arena_free(&a);
        return 0;
    }
    kafka_out o;
    ko_init(&o);
    ko_begin(&o, h.correlation_id, kafka_response_header_version(h.api_key, v));
    switch (h.api_key) {
    case KAFKA_API_VERSIONS: {
        kafka_api_versions_req q;
        if (kafka_decode_api_versions(&r, v, &q) == 0)
            kafka_encode_api_versions(&o, v, 0);
        break;
    }
    case KAFKA_METADATA: {
        kafka_metadata_req q;
        kafka_decode_metadata(&r, v, &q);
        break;
    }
    case KAFKA_PRODUCE: {
        kafka_produce_req q;
        kafka_decode_produce(&r, v, &q);
        break;
    }
    case KAFKA_FETCH: {
        kafka_fetch_req q;
        kafka_decode_fetch(&r, v, &q);
        break;
    }
    case KAFKA_LIST_OFFSETS: {
        kafka_list_offsets_req q;
        if (kafka_decode_list_offsets(&r, v, &q) == 0)
            kafka_encode_list_offsets(&o, v, &q);
        break;
    }
    case KAFKA_CREATE_TOPICS: {
        kafka_create_topics_req q;
        if (kafka_decode_create_topics(&r, v, &q) == 0)
            kafka_encode_create_topics(&o, v, &q);
        break;
    }
    case KAFKA_DELETE_TOPICS: {
        kafka_delete_topics_req q;
        if (kafka_decode_delete_topics(&r, v, &q) == 0)
            kafka_encode_delete_topics(&o, v, &q);
        break;
    }
    case KAFKA_CREATE_PARTITIONS: {
        kafka_create_partitions_req q;
        if (kafka_decode_create_partitions(&r, v, &q) == 0)
            kafka_encode_create_partitions(&o, v, &q);
        break;
    }
    case KAFKA_INIT_PRODUCER_ID: {
        kafka_init_producer_id_req q;
        kafka_init_producer_id_resp m = {KERR_NONE, 1, 0};
        if (kafka_decode_init_producer_id(&r, v, &q) == 0)
            kafka_encode_init_producer_id(&o, v, &m);
        break;
    }
    case KAFKA_DESCRIBE_CLUSTER: {
        kafka_describe_cluster_req q;
        kafka_metadata_resp m = {.node_id = 1, .host = "h", .port = 1, .cluster_id = "c"};
        if (kafka_decode_describe_cluster(&r, v, &q) == 0)
            kafka_encode_describe_cluster(&o, v, &q, &m);
        break;
    }
    case KAFKA_DESCRIBE_ACLS: {
        kafka_acl_binding f;
        td_acl acl = {.principal = "User:a", .host = "*", .resource_type = TD_RES_TOPIC,
                      .pattern_type = TD_PAT_WILDCARD, .name = "a.*",
                      .operation = TD_OP_READ, .permission = TD_PERM_ALLOW};
        if (kafka_decode_describe_acls(&r, v, &f) == 0)
            kafka_encode_describe_acls(&o, v, 0, f.resource_name, &acl, 1);
        break;
    }
    case KAFKA_CREATE_ACLS:
    case KAFKA_DELETE_ACLS: {
        kafka_acl_list_req q;
        int rc = h.api_key == KAFKA_CREATE_ACLS ? kafka_decode_create_acls(&r, v, &q)
                                                : kafka_decode_delete_acls(&r, v, &q);
        if (rc == 0) {
            kafka_acl_result *res = kr_alloc(&r, (size_t)q.n + 1, sizeof(*res));
            for (int32_t i = 0; res && i < q.n; i++)
                res[i].error_message = q.v[i].principal;
            if (res && h.api_key == KAFKA_CREATE_ACLS)
                kafka_encode_create_acls(&o, v, res, q.n);
            else if (res)
                kafka_encode_delete_acls(&o, v, res, q.n);
        }
        break;
    }
    case KAFKA_DESCRIBE_CONFIGS: {
        kafka_describe_configs_req q;
        if (kafka_decode_describe_configs(&r, v, &q) == 0)
            kafka_encode_describe_configs(&o, v, &q);
        break;
    }
    case KAFKA_ALTER_CONFIGS:
    case KAFKA_INCREMENTAL_ALTER_CONFIGS: {
        kafka_alter_configs_req q;
        if (kafka_decode_alter_configs(&r, h.api_key, v, &q) == 0)
            kafka_encode_alter_configs(&o, h.api_key, v, &q);
        break;
    }
    case KAFKA_DELETE_RECORDS: {
        kafka_delete_records_req q;
        if (kafka_decode_delete_records(&r, v, &q) == 0)
            kafka_encode_delete_records(&o, v, &q);
        break;
    }
    case KAFKA_FIND_COORDINATOR: {
        kafka_find_coordinator_req q;
        if (kafka_decode_find_coordinator(&r, v, &q) == 0)
            kafka_encode_find_coordinator(&o, v, &q);
        break;
    }
    case KAFKA_JOIN_GROUP: {
        kafka_join_group_req q;
        kafka_decode_join_group(&r, v, &q);
        break;
    }
    case KAFKA_SYNC_GROUP: {
        kafka_sync_group_req q;
        kafka_decode_sync_group(&r, v, &q);
        break;
    }
    case KAFKA_HEARTBEAT: {
        kafka_heartbeat_req q;
        if (kafka_decode_heartbeat(&r, v, &q) == 0)
            kafka_encode_heartbeat(&o, v, 0);
        break;
    }
    case KAFKA_LEAVE_GROUP: {
        kafka_leave_group_req q;
        if (kafka_decode_leave_group(&r, v, &q) == 0)
            kafka_encode_leave_group(&o, v, &q);
        break;
    }
    case KAFKA_OFFSET_COMMIT: {
        kafka_offset_commit_req q;
        if (kafka_decode_offset_commit(&r, v, &q) == 0)
            kafka_encode_offset_commit(&o, v, &q);
        break;
    }
    case KAFKA_OFFSET_FETCH: {
        kafka_offset_fetch_req q;
        if (kafka_decode_offset_fetch(&r, v, &q) == 0 && q.ngroups > 0)
            kafka_encode_offset_fetch(&o, v, &q);
        break;
    }
    case KAFKA_LIST_GROUPS: {
        kafka_list_groups_req q;
        if (kafka_decode_list_groups(&r, v, &q) == 0)
            kafka_encode_list_groups(&o, v, &q);
        break;
    }
    case KAFKA_DESCRIBE_GROUPS: {
        kafka_describe_groups_req q;
        if (kafka_decode_describe_groups(&r, v, &q) == 0)
            kafka_encode_describe_groups(&o, v, &q);
        break;
    }
    case KAFKA_DELETE_GROUPS: {
        kafka_delete_groups_req q;
        if (kafka_decode_delete_groups(&r, v, &q) == 0)
            kafka_encode_delete_groups(&o, v, &q);
        break;
    }
    case KAFKA_SASL_HANDSHAKE: {
        const char *mech;
        (void)kafka_decode_sasl_handshake(&r, v, &mech);
        break;
    }
    case KAFKA_SASL_AUTHENTICATE: {
        const uint8_t *b;
        int32_t n;
        if (kafka_decode_sasl_authenticate(&r, v, &b, &n) == 0) {
            if (n < 0 || (size_t)n > size)
                abort();
            kafka_sasl_authenticate_resp m = {.auth_bytes = b, .auth_len = n};
            kafka_encode_sasl_authenticate(&o, v, &m);
        }
        break;
    }
    case KAFKA_DESCRIBE_USER_SCRAM_CREDENTIALS: {
        kafka_describe_scram_req q;
        if (kafka_decode_describe_scram(&r, v, &q) == 0 && q.nusers > (int32_t)size)
            abort();
        break;
    }
    case KAFKA_ALTER_USER_SCRAM_CREDENTIALS: {
        kafka_alter_scram_req q;
        if (kafka_decode_alter_scram(&r, v, &q) == 0)
            for (int32_t i = 0; i < q.nalter; i++)
                if (!q.alter[i].deletion &&
                    (q.alter[i].salt_len > (int32_t)size || q.alter[i].salted_len > (int32_t)size))
                    abort();
        break;
    }
    case KAFKA_OFFSET_DELETE: {
        kafka_offset_delete_req q;
        if (kafka_decode_offset_delete(&r, v, &q) == 0)
            kafka_encode_offset_delete(&o, v, &q);
        break;
    }
    case KAFKA_DESCRIBE_CLIENT_QUOTAS: {
        kafka_describe_quotas_req q;
        if (kafka_decode_describe_quotas(&r, v, &q) == 0) {
            kafka_describe_quotas_resp m = {.nentries = 0};
            kafka_encode_describe_quotas(&o, v, &m);
        }
        break;
    }
    case KAFKA_ALTER_CLIENT_QUOTAS: {
        kafka_alter_quotas_req q;
        if (kafka_decode_alter_quotas(&r, v, &q) == 0)
            kafka_encode_alter_quotas(&o, v, &q);
        break;
    }
    case KAFKA_ADD_PARTITIONS_TO_TXN: {
        kafka_add_partitions_to_txn_req q;
        if (kafka_decode_add_partitions_to_txn(&r, v, &q) == 0) {
            kafka_add_partitions_to_txn_resp m = {q.ntopics, txn_results(&r, q.topics, q.ntopics)};
            if (m.topics)
                kafka_encode_add_partitions_to_txn(&o, v, &m);
        }
        break;
    }
    case KAFKA_ADD_OFFSETS_TO_TXN: {
        kafka_add_offsets_to_txn_req q;
        kafka_add_offsets_to_txn_resp m = {KERR_COORDINATOR_NOT_AVAILABLE};
        if (kafka_decode_add_offsets_to_txn(&r, v, &q) == 0)
            kafka_encode_add_offsets_to_txn(&o, v, &m);
        break;
    }
    case KAFKA_END_TXN: {
        kafka_end_txn_req q;
        kafka_end_txn_resp m = {KERR_COORDINATOR_NOT_AVAILABLE};
        if (kafka_decode_end_txn(&r, v, &q) == 0)
            kafka_encode_end_txn(&o, v, &m);
        break;
    }
    case KAFKA_TXN_OFFSET_COMMIT: {
        kafka_txn_offset_commit_req q;
        if (kafka_decode_txn_offset_commit(&r, v, &q) == 0) {
            kafka_txn_topic_result *t = kr_alloc(&r, (size_t)q.ntopics + 1, sizeof(*t));
            for (int32_t i = 0; t && i < q.ntopics; i++) {
                const kafka_offset_commit_topic *qt = &q.topics[i];
                if (qt->nparts < 0 || (size_t)qt->nparts > size / 14)
                    abort(); /* every partition takes at least 14 bytes */
                t[i] = (kafka_txn_topic_result){qt->name, qt->nparts, NULL};
                t[i].parts = kr_alloc(&r, (size_t)qt->nparts + 1, sizeof(*t[i].parts));
                for (int32_t k = 0; t[i].parts && k < qt->nparts; k++)
                    t[i].parts[k] = (kafka_txn_part_result){qt->parts[k].partition, 0};
                if (!t[i].parts)
                    t = NULL;
            }
            kafka_txn_offset_commit_resp m = {q.ntopics, t};
            if (t)
                kafka_encode_txn_offset_commit(&o, v, &m);
        }
        break;
    }
    case KAFKA_DESCRIBE_PRODUCERS: {
        kafka_describe_producers_req q;
        if (kafka_decode_describe_producers(&r, v, &q) == 0) {
            kafka_describe_producers_topic *t = kr_alloc(&r, (size_t)q.ntopics + 1, sizeof(*t));
            kafka_producer_state ps = {1, 0, -1, -1, 0, -1};
            kafka_describe_producers_part part = {0, 0, "m", 1, &ps};
            for (int32_t i = 0; t && i < q.ntopics; i++)
                t[i] = (kafka_describe_producers_topic){q.topics[i].name, q.topics[i].nparts > 0,
                                                        &part};
            kafka_describe_producers_resp m = {q.ntopics, t};
            if (t)
                kafka_encode_describe_producers(&o, v, &m);
        }
        break;
    }
    case KAFKA_DESCRIBE_TRANSACTIONS: {
        kafka_describe_transactions_req q;
        if (kafka_decode_describe_transactions(&r, v, &q) == 0) {
            kafka_described_txn *t = kr_alloc(&r, (size_t)q.nids + 1, sizeof(*t));
            for (int32_t i = 0; t && i < q.nids; i++)
                t[i] = (kafka_described_txn){.transactional_id = q.ids[i], .state = "Empty"};
            kafka_describe_transactions_resp m = {q.nids, t};
            if (t)
                kafka_encode_describe_transactions(&o, v, &m);
        }
        break;
    }
    case KAFKA_LIST_TRANSACTIONS: {
        kafka_list_transactions_req q;
        if (kafka_decode_list_transactions(&r, v, &q) == 0) {
            if (q.nproducer_ids < 0 || (size_t)q.nproducer_ids > size / 8)
                abort(); /* every producer id takes eight bytes */
            kafka_list_transactions_resp m = {0, q.nstates, q.states, 0, NULL};
            kafka_encode_list_transactions(&o, v, &m);
        }
        break;
    }
    default:
        break;
    }
    /* The consumer protocol's subscription and assignment parsers take any bytes. */
    const char **topics;
    kafka_consumer_subscription_topics(data, size, &a, &topics);
    coord_assigned_topic *at;
    int nt = coord_assignment_topics(data, size, &a, &at);
    for (int t = 0; t < nt; t++)
        if (at[t].npartitions < 0 || (size_t)at[t].npartitions > size / 4)
            abort(); /* every partition takes four bytes */
    ko_end(&o);
    ko_free(&o);
    td_arena_free(&a);
    return 0;
}
