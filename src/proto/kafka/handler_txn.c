/*
 * handler_txn.c: transactions (docs/kafka.md#transactions): InitProducerId (with and without a
 * transactional id), AddPartitionsToTxn, EndTxn, and the admin APIs DescribeTransactions and
 * ListTransactions, on the broker's transaction coordinator (broker/txn.h); AddOffsetsToTxn and
 * TxnOffsetCommit; DescribeProducers, from the partitions' producer state.
 *
 * The coordinator's calls write to __transaction_state and to the partitions of a transaction
 * and wait for those writes on its own thread: they answer later (kreq_async_begin), and the
 * event loop never waits on a disk. Authorization comes first, as in Kafka: Write on the
 * transactional id, and Write on each topic a transaction adds.
 *
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "broker/txn.h"
#include "proto/kafka/handler_int.h"
#include "proto/kafka/kauthz.h"

/* A coordinator call's result, kept with its request (q->txn_job). */
typedef struct txn_call {
    kreq *q;
    txn_err err;
    int64_t pid;
    int16_t epoch;
    /* AddPartitionsToTxn: the request, and one result per partition of it, in its order
     * (both in the request's arena) */
    kafka_add_partitions_to_txn_req add;
    kafka_txn_offset_commit_req commit; /* TxnOffsetCommit: the request (its arena) */
    txn_tp *tps;
    size_t ntps;
} txn_call;

/* The Kafka error of a coordinator result; PRODUCER_FENCED is INVALID_PRODUCER_EPOCH for
 * versions below fenced_from (clients older than KIP-588 know only that). */
static int16_t kerr_of(txn_err e, int16_t v, int16_t fenced_from)
{
    switch (e) {
    case TXN_OK:
        return KERR_NONE;
    case TXN_INVALID_REQUEST:
        return KERR_INVALID_REQUEST;
    case TXN_INVALID_TIMEOUT:
        return KERR_INVALID_TRANSACTION_TIMEOUT;
    case TXN_CONCURRENT:
        return KERR_CONCURRENT_TRANSACTIONS;
    case TXN_FENCED:
        return v >= fenced_from ? KERR_PRODUCER_FENCED : KERR_INVALID_PRODUCER_EPOCH;
    case TXN_BAD_MAPPING:
        return KERR_INVALID_PRODUCER_ID_MAPPING;
    case TXN_INVALID_STATE:
        return KERR_INVALID_TXN_STATE;
    case TXN_UNKNOWN_PARTITION:
        return KERR_UNKNOWN_TOPIC_OR_PARTITION;
    case TXN_NOT_ATTEMPTED:
        return KERR_OPERATION_NOT_ATTEMPTED;
    case TXN_NOT_FOUND:
        return KERR_TRANSACTIONAL_ID_NOT_FOUND;
    case TXN_DENIED:
        return KERR_TOPIC_AUTHORIZATION_FAILED;
    case TXN_INVALID_GROUP:
        return KERR_INVALID_GROUP_ID;
    default:
        return KERR_COORDINATOR_NOT_AVAILABLE;
    }
}

/* The call's state, owned by the request; NULL (q->out.err set) without memory. */
static txn_call *call_new(kreq *q)
{
    txn_call *c = calloc(1, sizeof(*c));
    if (!c) {
        q->out.err = -ENOMEM;
        return NULL;
    }
    c->q = q;
    c->pid = -1;
    c->epoch = -1;
    q->txn_job = c;
    return c;
}

/* txn_done_fn: on the coordinator's thread. */
static void call_done(void *arg, txn_err err, int64_t pid, int16_t epoch)
{
    txn_call *c = arg;
    c->err = err;
    c->pid = pid;
    c->epoch = epoch;
    kreq_async_done(c->q);
}

/* ---------------------------------------------------------------------------------------------
 * InitProducerId: without a transactional id, a new producer id at epoch 0 for an idempotent
 * producer (v3+'s producer id and epoch are then ignored), as Kafka answers; with one, the
 * coordinator's id for it at its next epoch.
 */
static void init_finish(kreq *q)
{
    txn_call *c = q->txn_job;
    int16_t v = q->h.api_version;
    kafka_init_producer_id_resp m = {kerr_of(c->err, v, 4), -1, -1};
    if (c->err == TXN_OK) {
        m.producer_id = c->pid;
        m.producer_epoch = c->epoch;
    }
    kreq_begin(q);
    kafka_encode_init_producer_id(&q->out, v, &m);
    ko_end(&q->out);
}

void kafka_serve_init_producer_id(kreq *q, kafka_reader *r)
{
    int16_t v = q->h.api_version;
    kafka_init_producer_id_req req;
    if (kafka_decode_init_producer_id(r, v, &req) != 0) {
        q->out.err = TD_EPROTO;
        return;
    }
    kafka_init_producer_id_resp m = {KERR_NONE, -1, -1};
    if (req.transactional_id && !kafka_authz_txn(q, req.transactional_id, TD_OP_WRITE)) {
        m.error_code = KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
    } else if (req.transactional_id) {
        txn_call *c = call_new(q);
        if (!c)
            return;
        kreq_async_begin(q, init_finish);
        if (broker_txn_init_pid(q->kc->s->e, req.transactional_id, req.transaction_timeout_ms,
                                req.producer_id, req.producer_epoch, call_done, c) != 0)
            call_done(c, TXN_UNAVAILABLE, -1, -1);
        return;
    } else if (!kafka_authz_idempotent(q)) {
        m.error_code = KERR_CLUSTER_AUTHORIZATION_FAILED;
    } else {
        int rc = broker_producer_id_new(q->kc->s->e, &m.producer_id);
        if (rc) {
            TD_ERROR("kafka", "cannot allocate a producer id: %s", td_last_error());
            m.error_code = KERR_COORDINATOR_NOT_AVAILABLE; /* retriable */
            m.producer_id = -1;
        } else {
            m.producer_epoch = 0;
            TD_DEBUG("kafka", "producer id %" PRId64 " for %s (client %s)", m.producer_id,
                     net_conn_peer(q->kc->c), q->h.client_id ? q->h.client_id : "-");
        }
    }
    kreq_begin(q);
    kafka_encode_init_producer_id(&q->out, v, &m);
    ko_end(&q->out);
}

/* ---------------------------------------------------------------------------------------------
 * AddPartitionsToTxn
 */
/* The response from the request's topics and the per-partition codes tps (in request order),
 * or one code for every partition (tps NULL). */
static void add_partitions_answer(kreq *q, const kafka_add_partitions_to_txn_req *req,
                                  const txn_tp *tps, int16_t all)
{
    int16_t v = q->h.api_version;
    kafka_add_partitions_to_txn_resp m = {req->ntopics, NULL};
    m.topics = td_arena_calloc(&q->arena, (size_t)req->ntopics + 1, sizeof(*m.topics));
    size_t at = 0;
    for (int32_t i = 0; m.topics && i < req->ntopics; i++) {
        kafka_txn_topic_result *t = &m.topics[i];
        t->name = req->topics[i].name;
        t->nparts = req->topics[i].nparts;
        t->parts = td_arena_calloc(&q->arena, (size_t)t->nparts + 1, sizeof(*t->parts));
        if (!t->parts) {
            m.topics = NULL;
            break;
        }
        for (int32_t k = 0; k < t->nparts; k++, at++) {
            t->parts[k].partition = req->topics[i].parts[k];
            t->parts[k].error_code = tps ? kerr_of(tps[at].err, v, 2) : all;
        }
    }
    if (!m.topics) {
        q->out.err = -ENOMEM;
        return;
    }
    kreq_begin(q);
    kafka_encode_add_partitions_to_txn(&q->out, v, &m);
    ko_end(&q->out);
}

static void add_partitions_finish(kreq *q)
{
    txn_call *c = q->txn_job;
    add_partitions_answer(q, &c->add, c->tps, KERR_NONE);
}

void kafka_serve_add_partitions_to_txn(kreq *q, kafka_reader *r)
{
    int16_t v = q->h.api_version;
    kafka_add_partitions_to_txn_req req;
    if (kafka_decode_add_partitions_to_txn(r, v, &req) != 0) {
        q->out.err = TD_EPROTO;
        return;
    }
    if (!kafka_authz_txn(q, req.transactional_id, TD_OP_WRITE)) {
        add_partitions_answer(q, &req, NULL, KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
        return;
    }
    size_t n = 0;
    for (int32_t i = 0; i < req.ntopics; i++)
        n += (size_t)req.topics[i].nparts;
    txn_tp *tps = td_arena_calloc(&q->arena, n + 1, sizeof(*tps));
    if (!tps) {
        q->out.err = -ENOMEM;
        return;
    }
    /* Write on every topic; when one is refused nothing joins the transaction: the refused
     * ones get TOPIC_AUTHORIZATION_FAILED, the others OPERATION_NOT_ATTEMPTED. */
    bool denied = false;
    size_t at = 0;
    for (int32_t i = 0; i < req.ntopics; i++) {
        const char *name = req.topics[i].name ? req.topics[i].name : "";
        bool ok = kafka_authz_produce(q, NULL, name) == KERR_NONE;
        denied |= !ok;
        for (int32_t k = 0; k < req.topics[i].nparts; k++, at++)
            tps[at] = (txn_tp){name, req.topics[i].parts[k], ok ? TXN_OK : TXN_INVALID_REQUEST};
    }
    txn_call *c = call_new(q);
    if (!c)
        return;
    c->add = req;
    c->tps = tps;
    c->ntps = n;
    if (denied) {
        for (size_t i = 0; i < n; i++)
            tps[i].err = tps[i].err == TXN_OK ? TXN_NOT_ATTEMPTED : TXN_DENIED;
        add_partitions_finish(q);
        return;
    }
    kreq_async_begin(q, add_partitions_finish);
    if (broker_txn_add_partitions(q->kc->s->e, req.transactional_id, req.producer_id,
                                  req.producer_epoch, tps, n, call_done, c) != 0) {
        for (size_t i = 0; i < n; i++)
            tps[i].err = TXN_UNAVAILABLE;
        call_done(c, TXN_UNAVAILABLE, -1, -1);
    }
}

/* ---------------------------------------------------------------------------------------------
 * EndTxn
 */
/* The answer of EndTxn or AddOffsetsToTxn, whose responses are an error code alone. */
static void answer_code(kreq *q, int16_t code)
{
    int16_t v = q->h.api_version;
    kreq_begin(q);
    if (q->h.api_key == KAFKA_END_TXN)
        kafka_encode_end_txn(&q->out, v, &(kafka_end_txn_resp){code});
    else
        kafka_encode_add_offsets_to_txn(&q->out, v, &(kafka_add_offsets_to_txn_resp){code});
    ko_end(&q->out);
}

/* EndTxn's and AddOffsetsToTxn's answer once the coordinator is done. */
static void code_finish(kreq *q)
{
    txn_call *c = q->txn_job;
    answer_code(q, kerr_of(c->err, q->h.api_version, 2));
}

void kafka_serve_end_txn(kreq *q, kafka_reader *r)
{
    int16_t v = q->h.api_version;
    kafka_end_txn_req req;
    if (kafka_decode_end_txn(r, v, &req) != 0) {
        q->out.err = TD_EPROTO;
        return;
    }
    if (!kafka_authz_txn(q, req.transactional_id, TD_OP_WRITE)) {
        answer_code(q, KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
        return;
    }
    txn_call *c = call_new(q);
    if (!c)
        return;
    kreq_async_begin(q, code_finish);
    if (broker_txn_end(q->kc->s->e, req.transactional_id, req.producer_id, req.producer_epoch,
                       req.committed, call_done, c) != 0)
        call_done(c, TXN_UNAVAILABLE, -1, -1);
}

/* ---------------------------------------------------------------------------------------------
 * DescribeTransactions, ListTransactions (Describe on each id; the ids a principal may not
 * describe are left out of a listing, as Kafka does)
 */
static const txn_info *info_of(const txn_info *v, size_t n, const char *id)
{
    for (size_t i = 0; id && i < n; i++)
        if (strcmp(v[i].id, id) == 0)
            return &v[i];
    return NULL;
}

/* t's partitions grouped by topic (they come sorted by topic), in the arena. */
static bool topics_of(kreq *q, const txn_info *t, kafka_described_txn *d)
{
    d->topics = td_arena_calloc(&q->arena, t->nparts + 1, sizeof(*d->topics));
    if (!d->topics)
        return false;
    for (size_t i = 0; i < t->nparts;) {
        size_t k = i;
        while (k < t->nparts && strcmp(t->parts[k].topic, t->parts[i].topic) == 0)
            k++;
        kafka_txn_topic *x = &d->topics[d->ntopics++];
        x->name = td_arena_strdup(&q->arena, t->parts[i].topic);
        x->parts = td_arena_calloc(&q->arena, k - i + 1, sizeof(*x->parts));
        if (!x->name || !x->parts)
            return false;
        for (; i < k; i++)
            x->parts[x->nparts++] = t->parts[i].partition;
    }
    return true;
}

void kafka_serve_describe_transactions(kreq *q, kafka_reader *r)
{
    int16_t v = q->h.api_version;
    kafka_describe_transactions_req req;
    if (kafka_decode_describe_transactions(r, v, &req) != 0) {
        q->out.err = TD_EPROTO;
        return;
    }
    txn_info *all = NULL;
    size_t n = 0;
    kafka_describe_transactions_resp m = {req.nids, NULL};
    m.txns = td_arena_calloc(&q->arena, (size_t)req.nids + 1, sizeof(*m.txns));
    if (!m.txns || broker_txn_list(q->kc->s->e, &all, &n) != 0) {
        q->out.err = -ENOMEM;
        return;
    }
    bool ok = true;
    for (int32_t i = 0; ok && i < req.nids; i++) {
        /* Kafka's answer for an id in error: the code and the id, every other field its
         * default. */
        kafka_described_txn *d = &m.txns[i];
        d->transactional_id = req.ids[i];
        d->state = "";
        const txn_info *t = info_of(all, n, req.ids[i]);
        if (!req.ids[i] || !req.ids[i][0])
            d->error_code = KERR_INVALID_REQUEST;
        else if (!kafka_authz_txn(q, req.ids[i], TD_OP_DESCRIBE))
            d->error_code = KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
        else if (!t)
            d->error_code = KERR_TRANSACTIONAL_ID_NOT_FOUND;
        else {
            d->state = txn_state_name(t->state);
            d->timeout_ms = t->timeout_ms;
            d->start_time_ms = t->start_ms;
            d->producer_id = t->pid;
            d->producer_epoch = t->epoch;
            ok = topics_of(q, t, d);
        }
    }
    broker_txn_infos_free(all, n);
    if (!ok) {
        q->out.err = -ENOMEM;
        return;
    }
    kreq_begin(q);
    kafka_encode_describe_transactions(&q->out, v, &m);
    ko_end(&q->out);
}

/* Whether name is one of Kafka's transaction states. */
static bool is_state_name(const char *name)
{
    for (int s = 0; s <= 6; s++)
        if (strcmp(txn_state_name(s), name) == 0)
            return true;
    return strcmp(name, "PrepareEpochFence") == 0;
}

static bool listed(const kafka_list_transactions_req *req, const txn_info *t, int64_t now)
{
    bool state = req->nstates == 0, pid = req->nproducer_ids == 0;
    for (int32_t i = 0; !state && i < req->nstates; i++)
        state = req->states[i] && strcmp(req->states[i], txn_state_name(t->state)) == 0;
    for (int32_t i = 0; !pid && i < req->nproducer_ids; i++)
        pid = req->producer_ids[i] == t->pid;
    bool long_enough =
        req->duration_ms < 0 || (t->start_ms >= 0 && now - t->start_ms > req->duration_ms);
    return state && pid && long_enough;
}

void kafka_serve_list_transactions(kreq *q, kafka_reader *r)
{
    int16_t v = q->h.api_version;
    kafka_list_transactions_req req;
    if (kafka_decode_list_transactions(r, v, &req) != 0) {
        q->out.err = TD_EPROTO;
        return;
    }
    txn_info *all = NULL;
    size_t n = 0;
    kafka_list_transactions_resp m = {0};
    m.unknown_states = td_arena_calloc(&q->arena, (size_t)req.nstates + 1, sizeof(char *));
    if (!m.unknown_states || broker_txn_list(q->kc->s->e, &all, &n) != 0) {
        q->out.err = -ENOMEM;
        return;
    }
    for (int32_t i = 0; i < req.nstates; i++)
        if (!req.states[i] || !is_state_name(req.states[i]))
            m.unknown_states[m.nunknown_states++] = req.states[i] ? req.states[i] : "";
    m.txns = td_arena_calloc(&q->arena, n + 1, sizeof(*m.txns));
    int64_t now = td_wall_ms();
    for (size_t i = 0; m.txns && i < n; i++) {
        if (!listed(&req, &all[i], now) || !kafka_authz_txn(q, all[i].id, TD_OP_DESCRIBE))
            continue;
        kafka_listed_txn *x = &m.txns[m.ntxns++];
        x->transactional_id = td_arena_strdup(&q->arena, all[i].id);
        x->producer_id = all[i].pid;
        x->state = txn_state_name(all[i].state);
        if (!x->transactional_id)
            m.txns = NULL;
    }
    broker_txn_infos_free(all, n);
    if (!m.txns) {
        q->out.err = -ENOMEM;
        return;
    }
    kreq_begin(q);
    kafka_encode_list_transactions(&q->out, v, &m);
    ko_end(&q->out);
}

/* ---------------------------------------------------------------------------------------------
 * AddOffsetsToTxn, TxnOffsetCommit: a consume-transform-produce loop's input offsets, committed
 * with its transaction (librdkafka's send_offsets_to_transaction, kafkajs's sendOffsets).
 * Write on the transactional id, Read on the group (and on each topic for the offsets).
 */
void kafka_serve_add_offsets_to_txn(kreq *q, kafka_reader *r)
{
    int16_t v = q->h.api_version;
    kafka_add_offsets_to_txn_req req;
    if (kafka_decode_add_offsets_to_txn(r, v, &req) != 0) {
        q->out.err = TD_EPROTO;
        return;
    }
    int16_t denied = !kafka_authz_txn(q, req.transactional_id, TD_OP_WRITE)
                         ? KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED
                     : !kafka_authz_group(q, req.group_id, TD_OP_READ)
                         ? KERR_GROUP_AUTHORIZATION_FAILED
                         : KERR_NONE;
    if (denied) {
        answer_code(q, denied);
        return;
    }
    txn_call *c = call_new(q);
    if (!c)
        return;
    kreq_async_begin(q, code_finish);
    if (broker_txn_add_offsets(q->kc->s->e, req.transactional_id, req.producer_id,
                               req.producer_epoch, req.group_id, call_done, c) != 0)
        call_done(c, TXN_UNAVAILABLE, -1, -1);
}

/* The response: each partition's own error if it has one, else the call's. */
static void txn_commit_finish(kreq *q)
{
    txn_call *c = q->txn_job;
    int16_t v = q->h.api_version;
    const kafka_txn_offset_commit_req *req = &c->commit;
    /* TxnOffsetCommit below v2 answers COORDINATOR_NOT_AVAILABLE for a coordinator loading. */
    int16_t all = kerr_of(c->err, v, 2);
    kafka_txn_offset_commit_resp m = {req->ntopics, NULL};
    m.topics = td_arena_calloc(&q->arena, (size_t)req->ntopics + 1, sizeof(*m.topics));
    for (int32_t i = 0; m.topics && i < req->ntopics; i++) {
        kafka_txn_topic_result *t = &m.topics[i];
        t->name = req->topics[i].name;
        t->nparts = req->topics[i].nparts;
        t->parts = td_arena_calloc(&q->arena, (size_t)t->nparts + 1, sizeof(*t->parts));
        if (!t->parts) {
            m.topics = NULL;
            break;
        }
        for (int32_t k = 0; k < t->nparts; k++) {
            const kafka_offset_commit_part *p = &req->topics[i].parts[k];
            t->parts[k].partition = p->partition;
            t->parts[k].error_code = p->error_code ? p->error_code : all;
        }
    }
    if (!m.topics) {
        q->out.err = -ENOMEM;
        return;
    }
    kreq_begin(q);
    kafka_encode_txn_offset_commit(&q->out, v, &m);
    ko_end(&q->out);
}

/* Checks each partition of a TxnOffsetCommit (its error_code set when refused) and gathers the
 * others into oc (*n of them). Returns false when the group itself is refused. */
static bool txn_commit_check(kreq *q, kafka_txn_offset_commit_req *req, td_offset_commit *oc,
                             size_t *n)
{
    bool txn_ok = kafka_authz_txn(q, req->transactional_id, TD_OP_WRITE);
    bool group_ok = txn_ok && kafka_authz_group(q, req->group_id, TD_OP_READ);
    /* KIP-447: a consumer of an older generation (a zombie) cannot commit. */
    td_coord *coord = q->kc->s->cfg.coord;
    coord_err member = group_ok && coord
                           ? coord_check_txn_member(coord, req->group_id, req->member_id,
                                                    req->group_instance_id, req->generation_id)
                           : COORD_OK;
    int16_t all = !txn_ok     ? KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED
                  : !group_ok ? KERR_GROUP_AUTHORIZATION_FAILED
                              : coord_kafka_error(member);
    *n = kafka_commit_parts(q, req->topics, req->ntopics, all, oc);
    return group_ok;
}

void kafka_serve_txn_offset_commit(kreq *q, kafka_reader *r)
{
    int16_t v = q->h.api_version;
    kafka_txn_offset_commit_req req;
    if (kafka_decode_txn_offset_commit(r, v, &req) != 0) {
        q->out.err = TD_EPROTO;
        return;
    }
    size_t total = 0;
    for (int32_t i = 0; i < req.ntopics; i++)
        total += (size_t)req.topics[i].nparts;
    td_offset_commit *oc = td_arena_calloc(&q->arena, total + 1, sizeof(*oc));
    txn_call *c = oc ? call_new(q) : NULL;
    if (!c) {
        q->out.err = -ENOMEM;
        return;
    }
    c->commit = req;
    size_t n = 0;
    bool group_ok = txn_commit_check(q, &c->commit, oc, &n);
    if (!group_ok || n == 0) {
        txn_commit_finish(q); /* every partition has its error */
        return;
    }
    kreq_async_begin(q, txn_commit_finish);
    if (broker_txn_commit_offsets(q->kc->s->e, req.transactional_id, req.producer_id,
                                  req.producer_epoch, req.group_id, oc, n, call_done, c) != 0)
        call_done(c, TXN_UNAVAILABLE, -1, -1);
}

/* ---------------------------------------------------------------------------------------------
 * DescribeProducers: the producers each partition keeps state for (Read on the topic; Kafka
 * asks Read too), with the first offset of an open transaction.
 */
static bool describe_part(kreq *q, td_topic_ref *ref, kafka_describe_producers_part *dp)
{
    td_part *p = ref ? broker_topic_part(ref, dp->partition) : NULL;
    if (!p) {
        dp->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
        return true;
    }
    broker_producer *v = NULL;
    size_t n = 0;
    if (broker_part_producers(p, &v, &n) != 0)
        return false;
    dp->producers = td_arena_calloc(&q->arena, n + 1, sizeof(*dp->producers));
    for (size_t i = 0; dp->producers && i < n; i++)
        dp->producers[dp->nproducers++] = (kafka_producer_state){
            v[i].pid, v[i].epoch, v[i].last_seq, v[i].last_ts, v[i].coord_epoch, v[i].txn_first};
    free(v);
    return dp->producers != NULL;
}

void kafka_serve_describe_producers(kreq *q, kafka_reader *r)
{
    int16_t v = q->h.api_version;
    kafka_describe_producers_req req;
    if (kafka_decode_describe_producers(r, v, &req) != 0) {
        q->out.err = TD_EPROTO;
        return;
    }
    kafka_describe_producers_resp m = {req.ntopics, NULL};
    m.topics = td_arena_calloc(&q->arena, (size_t)req.ntopics + 1, sizeof(*m.topics));
    bool ok = m.topics != NULL;
    for (int32_t i = 0; ok && i < req.ntopics; i++) {
        kafka_describe_producers_topic *t = &m.topics[i];
        t->name = req.topics[i].name;
        t->nparts = req.topics[i].nparts;
        t->parts = td_arena_calloc(&q->arena, (size_t)t->nparts + 1, sizeof(*t->parts));
        ok = t->parts != NULL;
        bool allowed = t->name && kafka_authz_read(q, t->name);
        td_topic_ref *ref = NULL;
        if (allowed && broker_topic_acquire(q->kc->s->e, t->name, &ref) == 0 &&
            broker_topic_deleted(ref)) {
            broker_topic_release(ref);
            ref = NULL;
        }
        for (int32_t k = 0; ok && k < t->nparts; k++) {
            kafka_describe_producers_part *dp = &t->parts[k];
            dp->partition = req.topics[i].parts[k];
            if (!allowed)
                dp->error_code = KERR_TOPIC_AUTHORIZATION_FAILED;
            else
                ok = describe_part(q, ref, dp);
        }
        if (ref)
            broker_topic_release(ref);
    }
    if (!ok) {
        q->out.err = -ENOMEM;
        return;
    }
    kreq_begin(q);
    kafka_encode_describe_producers(&q->out, v, &m);
    ko_end(&q->out);
}
