/*
 * msgs_txn.c: the transaction messages (KIP-98's coordinator APIs, KIP-664's admin APIs), pure
 * functions over buffers like msgs.c. Each names the versions that carry each field.
 */
#include <string.h>

#include "proto/kafka/kafka.h"

/* Topics as [name, partitions []int32]. */
static kafka_txn_topic *read_topics(kafka_reader *r, int32_t *n)
{
    kafka_txn_topic *v = kr_array_alloc(r, sizeof(*v), n);
    for (int32_t i = 0; i < *n && !r->err; i++) {
        v[i].name = kr_string(r);
        v[i].parts = kr_array_alloc(r, sizeof(*v[i].parts), &v[i].nparts);
        for (int32_t k = 0; k < v[i].nparts && !r->err; k++)
            v[i].parts[k] = kr_i32(r);
        kr_tags(r);
    }
    return v;
}

static void write_topics(kafka_out *o, const kafka_txn_topic *v, int32_t n)
{
    ko_array(o, n);
    for (int32_t i = 0; i < n; i++) {
        ko_string_nn(o, v[i].name);
        ko_array(o, v[i].nparts);
        for (int32_t k = 0; k < v[i].nparts; k++)
            ko_i32(o, v[i].parts[k]);
        ko_tags(o);
    }
}

/* Results as [name, partitions [partition_index, error_code]]. */
static void write_results(kafka_out *o, const kafka_txn_topic_result *v, int32_t n)
{
    ko_array(o, n);
    for (int32_t i = 0; i < n; i++) {
        ko_string_nn(o, v[i].name);
        ko_array(o, v[i].nparts);
        for (int32_t k = 0; k < v[i].nparts; k++) {
            ko_i32(o, v[i].parts[k].partition);
            ko_i16(o, v[i].parts[k].error_code);
            ko_tags(o);
        }
        ko_tags(o);
    }
}

/* An array of strings (not nullable: a null element decodes to NULL). */
static const char **read_strings(kafka_reader *r, int32_t *n)
{
    const char **v = kr_array_alloc(r, sizeof(*v), n);
    for (int32_t i = 0; i < *n && !r->err; i++)
        v[i] = kr_string(r);
    return v;
}

static void write_strings(kafka_out *o, const char *const *v, int32_t n)
{
    ko_array(o, n);
    for (int32_t i = 0; i < n; i++)
        ko_string_nn(o, v[i]);
}

/* ---------------------------------------------------------------------------------------------
 * AddPartitionsToTxn v0-3 (flexible v3+; v4+, broker to broker, is not served)
 *   request:  transactional_id, producer_id int64, producer_epoch int16,
 *             topics [name, partitions []int32]
 *   response: throttle_time_ms, results_by_topic [name, results_by_partition [partition_index,
 *             partition_error_code]]
 */
int kafka_decode_add_partitions_to_txn(kafka_reader *r, int16_t v,
                                       kafka_add_partitions_to_txn_req *q)
{
    memset(q, 0, sizeof(*q));
    kr_set_flexible(r, KAFKA_ADD_PARTITIONS_TO_TXN, v);
    q->transactional_id = kr_string(r);
    q->producer_id = kr_i64(r);
    q->producer_epoch = kr_i16(r);
    q->topics = read_topics(r, &q->ntopics);
    kr_tags(r);
    return r->err;
}

void kafka_encode_add_partitions_to_txn(kafka_out *o, int16_t v,
                                        const kafka_add_partitions_to_txn_resp *m)
{
    ko_set_flexible(o, KAFKA_ADD_PARTITIONS_TO_TXN, v);
    ko_i32(o, 0);
    write_results(o, m->topics, m->ntopics);
    ko_tags(o);
}

/* ---------------------------------------------------------------------------------------------
 * AddOffsetsToTxn v0-3 (flexible v3+)
 *   request:  transactional_id, producer_id int64, producer_epoch int16, group_id
 *   response: throttle_time_ms, error_code
 */
int kafka_decode_add_offsets_to_txn(kafka_reader *r, int16_t v, kafka_add_offsets_to_txn_req *q)
{
    memset(q, 0, sizeof(*q));
    kr_set_flexible(r, KAFKA_ADD_OFFSETS_TO_TXN, v);
    q->transactional_id = kr_string(r);
    q->producer_id = kr_i64(r);
    q->producer_epoch = kr_i16(r);
    q->group_id = kr_string(r);
    kr_tags(r);
    return r->err;
}

void kafka_encode_add_offsets_to_txn(kafka_out *o, int16_t v,
                                     const kafka_add_offsets_to_txn_resp *m)
{
    ko_set_flexible(o, KAFKA_ADD_OFFSETS_TO_TXN, v);
    ko_i32(o, 0);
    ko_i16(o, m->error_code);
    ko_tags(o);
}

/* ---------------------------------------------------------------------------------------------
 * EndTxn v0-3 (flexible v3+)
 *   request:  transactional_id, producer_id int64, producer_epoch int16, committed bool
 *   response: throttle_time_ms, error_code (v5+ adds producer_id and producer_epoch: not served)
 */
int kafka_decode_end_txn(kafka_reader *r, int16_t v, kafka_end_txn_req *q)
{
    memset(q, 0, sizeof(*q));
    kr_set_flexible(r, KAFKA_END_TXN, v);
    q->transactional_id = kr_string(r);
    q->producer_id = kr_i64(r);
    q->producer_epoch = kr_i16(r);
    q->committed = kr_bool(r);
    kr_tags(r);
    return r->err;
}

void kafka_encode_end_txn(kafka_out *o, int16_t v, const kafka_end_txn_resp *m)
{
    ko_set_flexible(o, KAFKA_END_TXN, v);
    ko_i32(o, 0);
    ko_i16(o, m->error_code);
    ko_tags(o);
}

/* ---------------------------------------------------------------------------------------------
 * TxnOffsetCommit v0-3 (flexible v3+)
 *   request:  transactional_id, group_id, producer_id int64, producer_epoch int16,
 *             generation_id int32 (v3+), member_id (v3+), group_instance_id nullable (v3+),
 *             topics [name, partitions [partition_index, committed_offset int64,
 *             committed_leader_epoch int32 (v2+), committed_metadata nullable]]
 *   response: throttle_time_ms, topics [name, partitions [partition_index, error_code]]
 */
int kafka_decode_txn_offset_commit(kafka_reader *r, int16_t v, kafka_txn_offset_commit_req *q)
{
    memset(q, 0, sizeof(*q));
    kr_set_flexible(r, KAFKA_TXN_OFFSET_COMMIT, v);
    q->transactional_id = kr_string(r);
    q->group_id = kr_string(r);
    q->producer_id = kr_i64(r);
    q->producer_epoch = kr_i16(r);
    q->generation_id = -1;
    q->member_id = "";
    if (v >= 3) {
        q->generation_id = kr_i32(r);
        q->member_id = kr_string(r);
        q->group_instance_id = kr_string(r);
    }
    q->topics = kr_array_alloc(r, sizeof(*q->topics), &q->ntopics);
    for (int32_t i = 0; i < q->ntopics && !r->err; i++) {
        kafka_offset_commit_topic *t = &q->topics[i];
        t->name = kr_string(r);
        t->parts = kr_array_alloc(r, sizeof(*t->parts), &t->nparts);
        for (int32_t k = 0; k < t->nparts && !r->err; k++) {
            kafka_offset_commit_part *p = &t->parts[k];
            p->partition = kr_i32(r);
            p->offset = kr_i64(r);
            p->leader_epoch = v >= 2 ? kr_i32(r) : -1;
            p->metadata = kr_string(r);
            kr_tags(r);
        }
        kr_tags(r);
    }
    kr_tags(r);
    return r->err;
}

void kafka_encode_txn_offset_commit(kafka_out *o, int16_t v, const kafka_txn_offset_commit_resp *m)
{
    ko_set_flexible(o, KAFKA_TXN_OFFSET_COMMIT, v);
    ko_i32(o, 0);
    write_results(o, m->topics, m->ntopics);
    ko_tags(o);
}

/* ---------------------------------------------------------------------------------------------
 * DescribeProducers v0 (flexible from v0)
 *   request:  topics [name, partition_indexes []int32]
 *   response: throttle_time_ms, topics [name, partitions [partition_index, error_code,
 *             error_message nullable, active_producers [producer_id int64, producer_epoch int32,
 *             last_sequence int32, last_timestamp int64, coordinator_epoch int32,
 *             current_txn_start_offset int64]]]
 */
int kafka_decode_describe_producers(kafka_reader *r, int16_t v, kafka_describe_producers_req *q)
{
    memset(q, 0, sizeof(*q));
    kr_set_flexible(r, KAFKA_DESCRIBE_PRODUCERS, v);
    q->topics = read_topics(r, &q->ntopics);
    kr_tags(r);
    return r->err;
}

void kafka_encode_describe_producers(kafka_out *o, int16_t v,
                                     const kafka_describe_producers_resp *m)
{
    ko_set_flexible(o, KAFKA_DESCRIBE_PRODUCERS, v);
    ko_i32(o, 0);
    ko_array(o, m->ntopics);
    for (int32_t i = 0; i < m->ntopics; i++) {
        const kafka_describe_producers_topic *t = &m->topics[i];
        ko_string_nn(o, t->name);
        ko_array(o, t->nparts);
        for (int32_t k = 0; k < t->nparts; k++) {
            const kafka_describe_producers_part *p = &t->parts[k];
            ko_i32(o, p->partition);
            ko_i16(o, p->error_code);
            ko_string(o, p->error_message);
            ko_array(o, p->nproducers);
            for (int32_t j = 0; j < p->nproducers; j++) {
                const kafka_producer_state *s = &p->producers[j];
                ko_i64(o, s->producer_id);
                ko_i32(o, s->producer_epoch);
                ko_i32(o, s->last_sequence);
                ko_i64(o, s->last_timestamp);
                ko_i32(o, s->coordinator_epoch);
                ko_i64(o, s->current_txn_start_offset);
                ko_tags(o);
            }
            ko_tags(o);
        }
        ko_tags(o);
    }
    ko_tags(o);
}

/* ---------------------------------------------------------------------------------------------
 * DescribeTransactions v0 (flexible from v0)
 *   request:  transactional_ids []string
 *   response: throttle_time_ms, transaction_states [error_code, transactional_id,
 *             transaction_state, transaction_timeout_ms int32, transaction_start_time_ms int64,
 *             producer_id int64, producer_epoch int16, topics [topic, partitions []int32]]
 */
int kafka_decode_describe_transactions(kafka_reader *r, int16_t v,
                                       kafka_describe_transactions_req *q)
{
    memset(q, 0, sizeof(*q));
    kr_set_flexible(r, KAFKA_DESCRIBE_TRANSACTIONS, v);
    q->ids = read_strings(r, &q->nids);
    kr_tags(r);
    return r->err;
}

void kafka_encode_describe_transactions(kafka_out *o, int16_t v,
                                        const kafka_describe_transactions_resp *m)
{
    ko_set_flexible(o, KAFKA_DESCRIBE_TRANSACTIONS, v);
    ko_i32(o, 0);
    ko_array(o, m->ntxns);
    for (int32_t i = 0; i < m->ntxns; i++) {
        const kafka_described_txn *t = &m->txns[i];
        ko_i16(o, t->error_code);
        ko_string_nn(o, t->transactional_id);
        ko_string_nn(o, t->state);
        ko_i32(o, t->timeout_ms);
        ko_i64(o, t->start_time_ms);
        ko_i64(o, t->producer_id);
        ko_i16(o, t->producer_epoch);
        write_topics(o, t->topics, t->ntopics);
        ko_tags(o);
    }
    ko_tags(o);
}

/* ---------------------------------------------------------------------------------------------
 * ListTransactions v0-1 (flexible from v0)
 *   request:  state_filters []string, producer_id_filters []int64, duration_filter int64 (v1+)
 *   response: throttle_time_ms, error_code, unknown_state_filters []string,
 *             transaction_states [transactional_id, producer_id int64, transaction_state]
 */
int kafka_decode_list_transactions(kafka_reader *r, int16_t v, kafka_list_transactions_req *q)
{
    memset(q, 0, sizeof(*q));
    kr_set_flexible(r, KAFKA_LIST_TRANSACTIONS, v);
    q->states = read_strings(r, &q->nstates);
    q->producer_ids = kr_array_alloc(r, sizeof(*q->producer_ids), &q->nproducer_ids);
    for (int32_t i = 0; i < q->nproducer_ids && !r->err; i++)
        q->producer_ids[i] = kr_i64(r);
    q->duration_ms = v >= 1 ? kr_i64(r) : -1;
    kr_tags(r);
    return r->err;
}

void kafka_encode_list_transactions(kafka_out *o, int16_t v, const kafka_list_transactions_resp *m)
{
    ko_set_flexible(o, KAFKA_LIST_TRANSACTIONS, v);
    ko_i32(o, 0);
    ko_i16(o, m->error_code);
    write_strings(o, m->unknown_states, m->nunknown_states);
    ko_array(o, m->ntxns);
    for (int32_t i = 0; i < m->ntxns; i++) {
        const kafka_listed_txn *t = &m->txns[i];
        ko_string_nn(o, t->transactional_id);
        ko_i64(o, t->producer_id);
        ko_string_nn(o, t->state);
        ko_tags(o);
    }
    ko_tags(o);
}
