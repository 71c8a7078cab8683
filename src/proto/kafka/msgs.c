/*
 * msgs.c: decoders and encoders of the Kafka request and response bodies this broker serves.
 * Each function names, field by field, the versions that carry it (from Kafka's JSON message
 * definitions). Decoders read from a reader positioned at the body and set r->flexible first.
 */
#include <string.h>

#include "proto/kafka/kafka.h"


/* Arrays of int32 in responses (replica lists): this broker is the only replica. */
static void ko_node_list(kafka_out *o, int32_t node, bool present)
{
    if (present) {
        ko_array(o, 1);
        ko_i32(o, node);
    } else {
        ko_array(o, 0);
    }
}

/* ---------------------------------------------------------------------------------------------
 * Metadata v0-12
 *   request:  topics [topic_id uuid (v10+), name string (nullable v10+)], tags (v9+)
 *             (v0: an empty array means all topics; v1+: a null array means all)
 *             allow_auto_topic_creation bool (v4+)
 *             include_cluster_authorized_operations bool (v8-10)
 *             include_topic_authorized_operations bool (v8+)
 *   response: throttle_time_ms (v3+), brokers [node_id, host, port, rack nullable (v1+)],
 *             cluster_id nullable (v2+), controller_id (v1+),
 *             topics [error_code, name (nullable v12+), topic_id (v10+), is_internal (v1+),
 *                     partitions [error_code, partition_index, leader_id, leader_epoch (v7+),
 *                                 replica_nodes [], isr_nodes [], offline_replicas [] (v5+)],
 *                     topic_authorized_operations (v8+)],
 *             cluster_authorized_operations (v8-10)
 */
/* The brokers of Metadata (rack from v1) and DescribeCluster. */
static void ko_brokers(kafka_out *o, const kafka_metadata_resp *m, bool rack)
{
    if (m->nbrokers == 0) {
        kafka_broker self = {m->node_id, m->host, m->port, NULL};
        kafka_metadata_resp one = {.nbrokers = 1, .brokers = &self};
        ko_brokers(o, &one, rack);
        return;
    }
    ko_array(o, m->nbrokers);
    for (int32_t i = 0; i < m->nbrokers; i++) {
        const kafka_broker *b = &m->brokers[i];
        ko_i32(o, b->node_id);
        ko_string(o, b->host);
        ko_i32(o, b->port);
        if (rack)
            ko_string(o, b->rack);
        ko_tags(o);
    }
}

int kafka_decode_metadata(kafka_reader *r, int16_t v, kafka_metadata_req *q)
{
    memset(q, 0, sizeof(*q));
    kr_set_flexible(r, KAFKA_METADATA, v);
    int32_t n = kr_array(r);
    if (v == 0 && n == 0)
        n = -1;
    q->ntopics = n;
    if (n > 0) {
        q->topics = kr_alloc(r, (size_t)n, sizeof(*q->topics));
        q->topic_ids = kr_alloc(r, (size_t)n, sizeof(*q->topic_ids));
        for (int32_t i = 0; i < n && !r->err; i++) {
            if (v >= 10)
                kr_uuid(r, q->topic_ids[i]);
            q->topics[i] = kr_string(r);
            kr_tags(r);
        }
    }
    q->allow_auto_topic_creation = true;
    if (v >= 4)
        q->allow_auto_topic_creation = kr_bool(r);
    if (v >= 8 && v <= 10)
        q->include_cluster_authorized_operations = kr_bool(r);
    if (v >= 8)
        q->include_topic_authorized_operations = kr_bool(r);
    kr_tags(r);
    return r->err;
}

void kafka_encode_metadata(kafka_out *o, int16_t v, const kafka_metadata_resp *m)
{
    ko_set_flexible(o, KAFKA_METADATA, v);
    if (v >= 3)
        ko_i32(o, 0);
    ko_brokers(o, m, v >= 1);
    if (v >= 2)
        ko_string(o, m->cluster_id);
    if (v >= 1)
        ko_i32(o, m->nbrokers ? m->controller_id : m->node_id);
    ko_array(o, m->ntopics);
    for (int32_t i = 0; i < m->ntopics; i++) {
        const kafka_metadata_topic *t = &m->topics[i];
        ko_i16(o, t->error_code);
        ko_string(o, t->name);
        if (v >= 10)
            ko_uuid(o, t->topic_id);
        if (v >= 1)
            ko_bool(o, t->is_internal);
        ko_array(o, t->npartitions);
        for (int32_t k = 0; k < t->npartitions; k++) {
            const kafka_metadata_partition *p = &t->partitions[k];
            bool up = p->error_code == KERR_NONE;
            ko_i16(o, p->error_code);
            ko_i32(o, p->index);
            ko_i32(o, p->leader);
            if (v >= 7)
                ko_i32(o, p->leader_epoch);
            ko_node_list(o, m->node_id, true);
            ko_node_list(o, m->node_id, up);
            if (v >= 5)
                ko_node_list(o, m->node_id, !up);
            ko_tags(o);
        }
        if (v >= 8)
            ko_i32(o, m->topic_ops ? t->authorized_ops : INT32_MIN);
        ko_tags(o);
    }
    if (v >= 8 && v <= 10)
        ko_i32(o, m->cluster_ops ? m->cluster_authorized_ops : INT32_MIN);
    ko_tags(o);
}

/* ---------------------------------------------------------------------------------------------
 * Produce v3-9
 *   request:  transactional_id nullable string (v3+), acks int16, timeout_ms int32,
 *             topic_data [name, partition_data [index int32, records nullable records]]
 *   response: responses [name, partition_responses [index, error_code, base_offset,
 *                        log_append_time_ms (v2+), log_start_offset (v5+),
 *                        record_errors [batch_index int32, message nullable] (v8+),
 *                        error_message nullable (v8+)]],
 *             throttle_time_ms (v1+)
 */
int kafka_decode_produce(kafka_reader *r, int16_t v, kafka_produce_req *q)
{
    memset(q, 0, sizeof(*q));
    kr_set_flexible(r, KAFKA_PRODUCE, v);
    q->transactional_id = kr_string(r);
    q->acks = kr_i16(r);
    q->timeout_ms = kr_i32(r);
    q->topics = kr_array_alloc(r, sizeof(*q->topics), &q->ntopics);
    int32_t n = q->ntopics;
    for (int32_t i = 0; i < n && !r->err; i++) {
        kafka_produce_topic *t = &q->topics[i];
        t->name = kr_string(r);
        t->parts = kr_array_alloc(r, sizeof(*t->parts), &t->nparts);
        int32_t np = t->nparts;
        for (int32_t k = 0; k < np && !r->err; k++) {
            t->parts[k].index = kr_i32(r);
            t->parts[k].records = kr_bytes(r, &t->parts[k].records_len);
            kr_tags(r);
        }
        kr_tags(r);
    }
    kr_tags(r);
    return r->err;
}

void kafka_encode_produce(kafka_out *o, int16_t v, const kafka_produce_resp *m)
{
    ko_set_flexible(o, KAFKA_PRODUCE, v);
    ko_array(o, m->ntopics);
    for (int32_t i = 0; i < m->ntopics; i++) {
        const kafka_produce_topic_resp *t = &m->topics[i];
        ko_string(o, t->name);
        ko_array(o, t->nparts);
        for (int32_t k = 0; k < t->nparts; k++) {
            const kafka_produce_part_resp *p = &t->parts[k];
            ko_i32(o, p->index);
            ko_i16(o, p->error_code);
            ko_i64(o, p->base_offset);
            ko_i64(o, p->log_append_time);
            if (v >= 5)
                ko_i64(o, p->log_start_offset);
            if (v >= 8) {
                ko_array(o, p->nrecord_errors);
                for (int32_t j = 0; j < p->nrecord_errors; j++) {
                    ko_i32(o, p->record_errors[j].batch_index);
                    ko_string(o, p->record_errors[j].message);
                    ko_tags(o);
                }
                ko_string(o, p->error_message);
            }
            ko_tags(o);
        }
        ko_tags(o);
    }
    ko_i32(o, m->throttle_time_ms);
    ko_tags(o);
}

/* ---------------------------------------------------------------------------------------------
 * Fetch v4-17
 *   request:  replica_id (v0-14; v15+ in a tagged field), max_wait_ms, min_bytes, max_bytes (v3+),
 *             isolation_level int8 (v4+), session_id (v7+), session_epoch (v7+),
 *             topics [topic string (v0-12) | topic_id uuid (v13+),
 *                     partitions [partition, current_leader_epoch (v9+),
 *                     fetch_offset int64, last_fetched_epoch (v12+), log_start_offset (v5+),
 *                     partition_max_bytes, (v17+ tagged replica_directory_id)]],
 *             forgotten_topics_data [topic (v7-12) | topic_id (v13+), partitions [int32]] (v7+),
 *             rack_id string (v11+)
 *   response: throttle_time_ms, error_code (v7+), session_id (v7+),
 *             responses [topic (v0-12) | topic_id (v13+),
 *                        partitions [partition_index, error_code, high_watermark,
 *                        last_stable_offset (v4+), log_start_offset (v5+),
 *                        aborted_transactions nullable [producer_id, first_offset] (v4+),
 *                        preferred_read_replica (v11+), records nullable,
 *                        tagged (v12+): diverging_epoch (0), current_leader (1)]]
 */
int kafka_decode_fetch(kafka_reader *r, int16_t v, kafka_fetch_req *q)
{
    memset(q, 0, sizeof(*q));
    kr_set_flexible(r, KAFKA_FETCH, v);
    q->replica_id = v <= 14 ? kr_i32(r) : -1; /* v15+: the ReplicaState tag, read last */
    q->replica_epoch = -1;
    q->max_wait_ms = kr_i32(r);
    q->min_bytes = kr_i32(r);
    q->max_bytes = kr_i32(r);
    q->isolation_level = kr_i8(r);
    q->session_epoch = -1;
    if (v >= 7) {
        q->session_id = kr_i32(r);
        q->session_epoch = kr_i32(r);
    }
    q->topics = kr_array_alloc(r, sizeof(*q->topics), &q->ntopics);
    int32_t n = q->ntopics;
    for (int32_t i = 0; i < n && !r->err; i++) {
        kafka_fetch_topic *t = &q->topics[i];
        if (v >= 13)
            kr_uuid(r, t->topic_id);
        else
            t->name = kr_string(r);
        t->parts = kr_array_alloc(r, sizeof(*t->parts), &t->nparts);
        int32_t np = t->nparts;
        for (int32_t k = 0; k < np && !r->err; k++) {
            kafka_fetch_part *p = &t->parts[k];
            p->partition = kr_i32(r);
            p->current_leader_epoch = v >= 9 ? kr_i32(r) : -1;
            p->fetch_offset = kr_i64(r);
            p->last_fetched_epoch = v >= 12 ? kr_i32(r) : -1;
            p->log_start_offset = v >= 5 ? kr_i64(r) : -1;
            p->max_bytes = kr_i32(r);
            kr_tags(r);
        }
        kr_tags(r);
    }
    if (v >= 7) {
        int32_t nf = kr_array(r);
        for (int32_t i = 0; i < nf && !r->err; i++) {
            uint8_t id[16];
            if (v >= 13)
                kr_uuid(r, id);
            else
                kr_string(r);
            int32_t np = kr_array(r);
            for (int32_t k = 0; k < np && !r->err; k++)
                kr_i32(r);
            kr_tags(r);
        }
    }
    if (v >= 11)
        kr_string(r);
    kafka_decode_fetch_req_tags(r, v, q); /* msgs_replica.c */
    return r->err;
}

void kafka_encode_fetch(kafka_out *o, int16_t v, const kafka_fetch_resp *m)
{
    ko_set_flexible(o, KAFKA_FETCH, v);
    ko_i32(o, m->throttle_time_ms);
    if (v >= 7) {
        ko_i16(o, m->error_code);
        ko_i32(o, m->session_id);
    }
    ko_array(o, m->ntopics);
    for (int32_t i = 0; i < m->ntopics; i++) {
        const kafka_fetch_topic_resp *t = &m->topics[i];
        if (v >= 13)
            ko_uuid(o, t->topic_id);
        else
            ko_string(o, t->name);
        ko_array(o, t->nparts);
        for (int32_t k = 0; k < t->nparts; k++) {
            const kafka_fetch_part_resp *p = &t->parts[k];
            ko_i32(o, p->partition);
            ko_i16(o, p->error_code);
            ko_i64(o, p->high_watermark);
            ko_i64(o, p->last_stable_offset);
            if (v >= 5)
                ko_i64(o, p->log_start_offset);
            ko_array(o, p->naborted);
            for (int32_t a = 0; a < p->naborted; a++) {
                ko_i64(o, p->aborted[a].producer_id);
                ko_i64(o, p->aborted[a].first_offset);
                ko_tags(o);
            }
            if (v >= 11)
                ko_i32(o, -1);
            if (p->len <= 0) {
                ko_bytes(o, NULL, 0); /* empty, also with an error: Kafka sends
                                         * MemoryRecords.EMPTY and librdkafka refuses null */
            } else if (p->fd >= 0) {
                ko_bytes_len(o, (int32_t)p->len);
                ko_file(o, p->fd, p->pos, p->len, p->ref);
            } else {
                ko_bytes(o, p->mem, (int32_t)p->len);
            }
            kafka_encode_fetch_part_tags(o, p); /* v12+: DivergingEpoch, CurrentLeader */
        }
        ko_tags(o);
    }
    ko_tags(o);
}

/* ---------------------------------------------------------------------------------------------
 * ListOffsets v0-7
 *   request:  replica_id, isolation_level int8 (v2+),
 *             topics [name, partitions [partition_index, current_leader_epoch (v4+),
 *                     timestamp int64, max_num_offsets int32 (v0)]]
 *   response: throttle_time_ms (v2+),
 *             topics [name, partitions [partition_index, error_code,
 *                     old_style_offsets [int64] (v0), timestamp (v1+), offset (v1+),
 *                     leader_epoch (v4+)]]
 */
int kafka_decode_list_offsets(kafka_reader *r, int16_t v, kafka_list_offsets_req *q)
{
    memset(q, 0, sizeof(*q));
    kr_set_flexible(r, KAFKA_LIST_OFFSETS, v);
    q->replica_id = kr_i32(r);
    if (v >= 2)
        q->isolation_level = kr_i8(r);
    q->topics = kr_array_alloc(r, sizeof(*q->topics), &q->ntopics);
    int32_t n = q->ntopics;
    for (int32_t i = 0; i < n && !r->err; i++) {
        kafka_list_offsets_topic *t = &q->topics[i];
        t->name = kr_string(r);
        t->parts = kr_array_alloc(r, sizeof(*t->parts), &t->nparts);
        int32_t np = t->nparts;
        for (int32_t k = 0; k < np && !r->err; k++) {
            kafka_list_offsets_part *p = &t->parts[k];
            p->partition = kr_i32(r);
            p->current_leader_epoch = v >= 4 ? kr_i32(r) : -1;
            p->timestamp = kr_i64(r);
            p->max_num_offsets = v == 0 ? kr_i32(r) : 1;
            kr_tags(r);
        }
        kr_tags(r);
    }
    kr_tags(r);
    return r->err;
}

void kafka_encode_list_offsets(kafka_out *o, int16_t v, const kafka_list_offsets_req *m)
{
    ko_set_flexible(o, KAFKA_LIST_OFFSETS, v);
    if (v >= 2)
        ko_i32(o, 0);
    ko_array(o, m->ntopics);
    for (int32_t i = 0; i < m->ntopics; i++) {
        const kafka_list_offsets_topic *t = &m->topics[i];
        ko_string(o, t->name);
        ko_array(o, t->nparts);
        for (int32_t k = 0; k < t->nparts; k++) {
            const kafka_list_offsets_part *p = &t->parts[k];
            ko_i32(o, p->partition);
            ko_i16(o, p->error_code);
            if (v == 0) {
                bool some = p->error_code == KERR_NONE && p->out_offset >= 0 &&
                            p->max_num_offsets > 0;
                ko_array(o, some ? 1 : 0);
                if (some)
                    ko_i64(o, p->out_offset);
            } else {
                ko_i64(o, p->out_timestamp);
                ko_i64(o, p->out_offset);
                if (v >= 4)
                    ko_i32(o, p->error_code == KERR_NONE ? 0 : -1);
            }
            ko_tags(o);
        }
        ko_tags(o);
    }
    ko_tags(o);
}

/* ---------------------------------------------------------------------------------------------
 * CreateTopics v0-7
 *   request:  topics [name, num_partitions int32, replication_factor int16,
 *                     assignments [partition_index, broker_ids [int32]],
 *                     configs [name, value nullable]],
 *             timeout_ms, validate_only bool (v1+)
 *   response: throttle_time_ms (v2+),
 *             topics [name, topic_id uuid (v7+), error_code, error_message nullable (v1+),
 *                     topic_config_error_code int16 (tag 0, v5+),
 *                     num_partitions (v5+), replication_factor int16 (v5+),
 *                     configs nullable [name, value nullable, read_only bool,
 *                                       config_source int8, is_sensitive bool] (v5+)]
 */
static kafka_config *decode_configs(kafka_reader *r, int32_t *count, bool with_op)
{
    kafka_config *c = kr_array_alloc(r, sizeof(*c), count);
    int32_t n = *count;
    for (int32_t i = 0; i < n && !r->err; i++) {
        c[i].name = kr_string(r);
        if (with_op)
            c[i].op = kr_i8(r);
        c[i].value = kr_string(r);
        kr_tags(r);
    }
    return c;
}

int kafka_decode_create_topics(kafka_reader *r, int16_t v, kafka_create_topics_req *q)
{
    memset(q, 0, sizeof(*q));
    kr_set_flexible(r, KAFKA_CREATE_TOPICS, v);
    q->topics = kr_array_alloc(r, sizeof(*q->topics), &q->ntopics);
    int32_t n = q->ntopics;
    for (int32_t i = 0; i < n && !r->err; i++) {
        kafka_create_topic *t = &q->topics[i];
        t->name = kr_string(r);
        t->num_partitions = kr_i32(r);
        t->replication_factor = kr_i16(r);
        t->assignments = kr_array_alloc(r, sizeof(*t->assignments), &t->nassignments);
        for (int32_t k = 0; k < t->nassignments && !r->err; k++) {
            kafka_replica_assignment *a = &t->assignments[k];
            a->partition = kr_i32(r);
            int32_t nb = kr_array(r);
            a->nbrokers = nb < 0 ? 0 : nb;
            a->brokers = kr_alloc(r, (size_t)a->nbrokers, sizeof(*a->brokers));
            for (int32_t b = 0; b < nb && !r->err; b++)
                a->brokers[b] = kr_i32(r);
            kr_tags(r);
        }
        t->configs = decode_configs(r, &t->nconfigs, false);
        kr_tags(r);
    }
    q->timeout_ms = kr_i32(r);
    if (v >= 1)
        q->validate_only = kr_bool(r);
    kr_tags(r);
    return r->err;
}

void kafka_encode_create_topics(kafka_out *o, int16_t v, const kafka_create_topics_req *m)
{
    ko_set_flexible(o, KAFKA_CREATE_TOPICS, v);
    if (v >= 2)
        ko_i32(o, 0);
    ko_array(o, m->ntopics);
    for (int32_t i = 0; i < m->ntopics; i++) {
        const kafka_create_topic *t = &m->topics[i];
        ko_string(o, t->name);
        if (v >= 7)
            ko_uuid(o, t->topic_id);
        ko_i16(o, t->error_code);
        if (v >= 1)
            ko_string(o, t->error_message);
        if (v >= 5) {
            bool ok = t->error_code == KERR_NONE;
            ko_i32(o, ok ? t->out_partitions : -1);
            ko_i16(o, ok ? 1 : -1);
            if (ok) {
                ko_array(o, t->nout_configs);
                for (int32_t k = 0; k < t->nout_configs; k++) {
                    ko_string(o, t->out_configs[k].name);
                    ko_string(o, t->out_configs[k].value);
                    ko_bool(o, false);
                    ko_i8(o, 5); /* DEFAULT_CONFIG; 1 (DYNAMIC_TOPIC_CONFIG) when set */
                    ko_bool(o, false);
                    ko_tags(o);
                }
            } else {
                ko_array(o, -1);
            }
        }
        ko_tags(o);
    }
    ko_tags(o);
}

/* ---------------------------------------------------------------------------------------------
 * DeleteTopics v0-6
 *   request:  topics [name nullable, topic_id uuid] (v6+) | topic_names [string] (v0-5),
 *             timeout_ms
 *   response: throttle_time_ms (v1+),
 *             responses [name (nullable v6+), topic_id (v6+), error_code,
 *                        error_message nullable (v5+)]
 */
int kafka_decode_delete_topics(kafka_reader *r, int16_t v, kafka_delete_topics_req *q)
{
    memset(q, 0, sizeof(*q));
    kr_set_flexible(r, KAFKA_DELETE_TOPICS, v);
    q->topics = kr_array_alloc(r, sizeof(*q->topics), &q->ntopics);
    int32_t n = q->ntopics;
    for (int32_t i = 0; i < n && !r->err; i++) {
        q->topics[i].name = kr_string(r);
        if (v >= 6) {
            kr_uuid(r, q->topics[i].topic_id);
            kr_tags(r);
        }
    }
    q->timeout_ms = kr_i32(r);
    kr_tags(r);
    return r->err;
}

void kafka_encode_delete_topics(kafka_out *o, int16_t v, const kafka_delete_topics_req *m)
{
    ko_set_flexible(o, KAFKA_DELETE_TOPICS, v);
    if (v >= 1)
        ko_i32(o, 0);
    ko_array(o, m->ntopics);
    for (int32_t i = 0; i < m->ntopics; i++) {
        const kafka_delete_topic *t = &m->topics[i];
        ko_string(o, t->name);
        if (v >= 6)
            ko_uuid(o, t->topic_id);
        ko_i16(o, t->error_code);
        if (v >= 5)
            ko_string(o, t->error_message);
        ko_tags(o);
    }
    ko_tags(o);
}

/* ---------------------------------------------------------------------------------------------
 * CreatePartitions v0-3
 *   request:  topics [name, count int32, assignments nullable [broker_ids [int32]]],
 *             timeout_ms, validate_only bool
 *   response: throttle_time_ms, results [name, error_code, error_message nullable]
 */
int kafka_decode_create_partitions(kafka_reader *r, int16_t v, kafka_create_partitions_req *q)
{
    memset(q, 0, sizeof(*q));
    kr_set_flexible(r, KAFKA_CREATE_PARTITIONS, v);
    q->topics = kr_array_alloc(r, sizeof(*q->topics), &q->ntopics);
    int32_t n = q->ntopics;
    for (int32_t i = 0; i < n && !r->err; i++) {
        kafka_create_partitions_topic *t = &q->topics[i];
        t->name = kr_string(r);
        t->count = kr_i32(r);
        int32_t na = kr_array(r);
        t->nassignments = na;
        for (int32_t k = 0; k < na && !r->err; k++) {
            int32_t nb = kr_array(r);
            for (int32_t b = 0; b < nb && !r->err; b++)
                kr_i32(r);
            kr_tags(r);
        }
        kr_tags(r);
    }
    q->timeout_ms = kr_i32(r);
    q->validate_only = kr_bool(r);
    kr_tags(r);
    return r->err;
}

void kafka_encode_create_partitions(kafka_out *o, int16_t v,
                                    const kafka_create_partitions_req *m)
{
    ko_set_flexible(o, KAFKA_CREATE_PARTITIONS, v);
    ko_i32(o, 0);
    ko_array(o, m->ntopics);
    for (int32_t i = 0; i < m->ntopics; i++) {
        ko_string(o, m->topics[i].name);
        ko_i16(o, m->topics[i].error_code);
        ko_string(o, m->topics[i].error_message);
        ko_tags(o);
    }
    ko_tags(o);
}

/* ---------------------------------------------------------------------------------------------
 * InitProducerId v0-4 (flexible v2+)
 *   request:  transactional_id nullable, transaction_timeout_ms int32, producer_id int64 (v3+),
 *             producer_epoch int16 (v3+)
 *   response: throttle_time_ms, error_code, producer_id int64, producer_epoch int16
 */
int kafka_decode_init_producer_id(kafka_reader *r, int16_t v, kafka_init_producer_id_req *q)
{
    memset(q, 0, sizeof(*q));
    kr_set_flexible(r, KAFKA_INIT_PRODUCER_ID, v);
    q->transactional_id = kr_string(r);
    q->transaction_timeout_ms = kr_i32(r);
    q->producer_id = v >= 3 ? kr_i64(r) : -1;
    q->producer_epoch = v >= 3 ? kr_i16(r) : -1;
    kr_tags(r);
    return r->err;
}

void kafka_encode_init_producer_id(kafka_out *o, int16_t v, const kafka_init_producer_id_resp *m)
{
    ko_set_flexible(o, KAFKA_INIT_PRODUCER_ID, v);
    ko_i32(o, 0);
    ko_i16(o, m->error_code);
    ko_i64(o, m->producer_id);
    ko_i16(o, m->producer_epoch);
    ko_tags(o);
}

/* ---------------------------------------------------------------------------------------------
 * DescribeCluster v0-1 (flexible from v0)
 *   request:  include_cluster_authorized_operations bool, endpoint_type int8 (v1+)
 *   response: throttle_time_ms, error_code, error_message nullable, endpoint_type int8 (v1+),
 *             cluster_id, controller_id, brokers [broker_id, host, port, rack nullable],
 *             cluster_authorized_operations int32
 */
int kafka_decode_describe_cluster(kafka_reader *r, int16_t v, kafka_describe_cluster_req *q)
{
    memset(q, 0, sizeof(*q));
    kr_set_flexible(r, KAFKA_DESCRIBE_CLUSTER, v);
    q->include_cluster_authorized_operations = kr_bool(r);
    q->endpoint_type = v >= 1 ? kr_i8(r) : 1;
    kr_tags(r);
    return r->err;
}

void kafka_encode_describe_cluster(kafka_out *o, int16_t v, const kafka_describe_cluster_req *q,
                                   const kafka_metadata_resp *m)
{
    ko_set_flexible(o, KAFKA_DESCRIBE_CLUSTER, v);
    bool bad_type = q->endpoint_type != 1 && q->endpoint_type != 2;
    ko_i32(o, 0);
    ko_i16(o, bad_type ? KERR_INVALID_REQUEST : KERR_NONE);
    ko_string(o, bad_type ? "unknown endpoint type" : NULL);
    if (v >= 1)
        ko_i8(o, q->endpoint_type);
    ko_string(o, m->cluster_id);
    ko_i32(o, m->nbrokers ? m->controller_id : m->node_id);
    if (bad_type)
        ko_array(o, 0);
    else
        ko_brokers(o, m, true);
    ko_i32(o, m->cluster_ops ? m->cluster_authorized_ops : INT32_MIN);
    ko_tags(o);
}

/* ---------------------------------------------------------------------------------------------
 * DescribeConfigs v0-4 (flexible v4+)
 *   request:  resources [resource_type int8, resource_name, configuration_keys nullable
 *             [string]], include_synonyms bool (v1+), include_documentation bool (v3+)
 *   response: throttle_time_ms, results [error_code, error_message nullable, resource_type,
 *             resource_name, configs [name, value nullable, read_only, is_default (v0),
 *             config_source int8 (v1+), is_sensitive, synonyms [name, value nullable, source]
 *             (v1+), config_type int8 (v3+), documentation nullable (v3+)]]
 */
int kafka_decode_describe_configs(kafka_reader *r, int16_t v, kafka_describe_configs_req *q)
{
    memset(q, 0, sizeof(*q));
    kr_set_flexible(r, KAFKA_DESCRIBE_CONFIGS, v);
    q->resources = kr_array_alloc(r, sizeof(*q->resources), &q->nresources);
    int32_t n = q->nresources;
    for (int32_t i = 0; i < n && !r->err; i++) {
        kafka_config_resource *res = &q->resources[i];
        res->type = kr_i8(r);
        res->name = kr_string(r);
        res->nkeys = kr_array(r);
        if (res->nkeys > 0)
            res->keys = kr_alloc(r, (size_t)res->nkeys, sizeof(*res->keys));
        for (int32_t k = 0; k < res->nkeys && !r->err; k++)
            res->keys[k] = kr_string(r);
        kr_tags(r);
    }
    if (v >= 1)
        q->include_synonyms = kr_bool(r);
    if (v >= 3)
        q->include_documentation = kr_bool(r);
    kr_tags(r);
    return r->err;
}

void kafka_encode_describe_configs(kafka_out *o, int16_t v, const kafka_describe_configs_req *m)
{
    ko_set_flexible(o, KAFKA_DESCRIBE_CONFIGS, v);
    ko_i32(o, 0);
    ko_array(o, m->nresources);
    for (int32_t i = 0; i < m->nresources; i++) {
        const kafka_config_resource *res = &m->resources[i];
        ko_i16(o, res->error_code);
        ko_string(o, res->error_message);
        ko_i8(o, res->type);
        ko_string_nn(o, res->name);
        ko_array(o, res->nout);
        for (int32_t k = 0; k < res->nout; k++) {
            const kafka_config_desc *d = &res->out[k];
            ko_string(o, d->name);
            ko_string(o, d->value);
            ko_bool(o, d->read_only);
            if (v == 0)
                ko_bool(o, d->is_default);
            if (v >= 1)
                ko_i8(o, d->source);
            ko_bool(o, d->sensitive);
            if (v >= 1) {
                /* The synonym list names where the value comes from: the value itself. */
                bool syn = m->include_synonyms && !d->is_default;
                ko_array(o, syn ? 1 : 0);
                if (syn) {
                    ko_string(o, d->name);
                    ko_string(o, d->value);
                    ko_i8(o, d->source);
                    ko_tags(o);
                }
            }
            if (v >= 3) {
                ko_i8(o, d->type);
                ko_string(o, m->include_documentation ? d->doc : NULL);
            }
            ko_tags(o);
        }
        ko_tags(o);
    }
    ko_tags(o);
}

/* ---------------------------------------------------------------------------------------------
 * AlterConfigs v0-2 (flexible v2+), IncrementalAlterConfigs v0-1 (flexible v1+)
 *   request:  resources [resource_type int8, resource_name, configs [name,
 *             config_operation int8 (IncrementalAlterConfigs only), value nullable]],
 *             validate_only bool
 *   response: throttle_time_ms, responses [error_code, error_message nullable, resource_type,
 *             resource_name]
 */
int kafka_decode_alter_configs(kafka_reader *r, int16_t key, int16_t v,
                               kafka_alter_configs_req *q)
{
    memset(q, 0, sizeof(*q));
    kr_set_flexible(r, key, v);
    bool incremental = key == KAFKA_INCREMENTAL_ALTER_CONFIGS;
    q->resources = kr_array_alloc(r, sizeof(*q->resources), &q->nresources);
    int32_t n = q->nresources;
    for (int32_t i = 0; i < n && !r->err; i++) {
        kafka_config_resource *res = &q->resources[i];
        res->type = kr_i8(r);
        res->name = kr_string(r);
        res->nkeys = -1;
        /* AlterConfigs entries have no operation: op stays 0, KAFKA_OP_SET. */
        res->configs = decode_configs(r, &res->nconfigs, incremental);
        kr_tags(r);
    }
    q->validate_only = kr_bool(r);
    kr_tags(r);
    return r->err;
}

void kafka_encode_alter_configs(kafka_out *o, int16_t key, int16_t v,
                                const kafka_alter_configs_req *m)
{
    ko_set_flexible(o, key, v);
    ko_i32(o, 0);
    ko_array(o, m->nresources);
    for (int32_t i = 0; i < m->nresources; i++) {
        const kafka_config_resource *res = &m->resources[i];
        ko_i16(o, res->error_code);
        ko_string(o, res->error_message);
        ko_i8(o, res->type);
        ko_string_nn(o, res->name);
        ko_tags(o);
    }
    ko_tags(o);
}

/* ---------------------------------------------------------------------------------------------
 * DeleteRecords v0-2 (flexible v2+)
 *   request:  topics [name, partitions [partition_index int32, offset int64]], timeout_ms
 *   response: throttle_time_ms, topics [name, partitions [partition_index, low_watermark int64,
 *             error_code]]
 */
int kafka_decode_delete_records(kafka_reader *r, int16_t v, kafka_delete_records_req *q)
{
    memset(q, 0, sizeof(*q));
    kr_set_flexible(r, KAFKA_DELETE_RECORDS, v);
    q->topics = kr_array_alloc(r, sizeof(*q->topics), &q->ntopics);
    int32_t n = q->ntopics;
    for (int32_t i = 0; i < n && !r->err; i++) {
        kafka_delete_records_topic *t = &q->topics[i];
        t->name = kr_string(r);
        t->parts = kr_array_alloc(r, sizeof(*t->parts), &t->nparts);
        int32_t np = t->nparts;
        for (int32_t k = 0; k < np && !r->err; k++) {
            t->parts[k].partition = kr_i32(r);
            t->parts[k].offset = kr_i64(r);
            t->parts[k].low_watermark = -1;
            kr_tags(r);
        }
        kr_tags(r);
    }
    q->timeout_ms = kr_i32(r);
    kr_tags(r);
    return r->err;
}

void kafka_encode_delete_records(kafka_out *o, int16_t v, const kafka_delete_records_req *m)
{
    ko_set_flexible(o, KAFKA_DELETE_RECORDS, v);
    ko_i32(o, 0);
    ko_array(o, m->ntopics);
    for (int32_t i = 0; i < m->ntopics; i++) {
        const kafka_delete_records_topic *t = &m->topics[i];
        ko_string_nn(o, t->name);
        ko_array(o, t->nparts);
        for (int32_t k = 0; k < t->nparts; k++) {
            ko_i32(o, t->parts[k].partition);
            ko_i64(o, t->parts[k].low_watermark);
            ko_i16(o, t->parts[k].error_code);
            ko_tags(o);
        }
        ko_tags(o);
    }
    ko_tags(o);
}
