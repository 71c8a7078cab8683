/*
 * handler_produce.c: Kafka's Produce. Each partition's batches are checked
 * (broker_batches_check, mapped to Kafka's error codes), appended through the broker
 * (broker_part_append_checked) and, under acks=-1, answered once durable: the request holds a
 * count of outstanding durability callbacks and completes through kreq_async_done.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/health.h"
#include "broker/registry.h"
#include "broker/txn.h"
#include "net/net.h"
#include "proto/kafka/handler_int.h"
#include "proto/kafka/kauthz.h"

static void produce_finish(kreq *q)
{
    if (!q->no_response) {
        kreq_begin(q);
        kafka_encode_produce(&q->out, q->h.api_version, &q->presp);
        ko_end(&q->out);
    }
    q->ready = true;
}

/* Runs on the flusher thread (or at once in the loop thread). */
static void produce_durable_cb(void *arg, int rc)
{
    durable_cb *d = arg;
    if (rc) {
        d->resp->error_code = KERR_KAFKA_STORAGE_ERROR;
        d->resp->base_offset = -1;
    }
    kreq_async_done(d->q);
}

/* Validates every batch of one partition's records (broker_batches_check). Returns a Kafka
 * error code. */
static int16_t validate_records(uint8_t *p, int32_t n, int32_t max_message_bytes,
                                const char **why, size_t *expects)
{
    switch (broker_batches_check(p, n > 0 ? (size_t)n : 0, max_message_bytes, why, expects)) {
    case BROKER_BATCH_OK:
        return KERR_NONE;
    case BROKER_BATCH_OLD_FORMAT:
        return KERR_UNSUPPORTED_FOR_MESSAGE_FORMAT;
    case BROKER_BATCH_TOO_LARGE:
        return KERR_MESSAGE_TOO_LARGE;
    case BROKER_BATCH_INVALID:
        return KERR_INVALID_RECORD;
    case BROKER_BATCH_COMPRESSION:
        return KERR_UNSUPPORTED_COMPRESSION_TYPE;
    default:
        return KERR_CORRUPT_MESSAGE;
    }
}

/* The bad records of a partition's batches (registry_check_batches), kept in the request's
 * arena: at most MAX_RECORD_ERRORS are listed, as the answer must stay bounded whatever the
 * batch holds; the error message counts them all. */
#define MAX_RECORD_ERRORS 100
typedef struct bad_records {
    kreq *q;
    kafka_record_error *list;
    int32_t n, total;
} bad_records;

static void bad_record(void *arg, int32_t index, const char *why)
{
    bad_records *b = arg;
    b->total++;
    if (b->n >= MAX_RECORD_ERRORS)
        return;
    if (!b->list)
        b->list = td_arena_calloc(&b->q->arena, MAX_RECORD_ERRORS, sizeof(*b->list));
    if (!b->list)
        return;
    b->list[b->n].batch_index = index;
    b->list[b->n].message = td_arena_strdup(&b->q->arena, why);
    b->n++;
}

/* The topic's schema validation (docs/schemas.md, "Enforcement on produce"): every record's key
 * and value checked before anything is appended; one bad record fails the partition's batches
 * with INVALID_RECORD (CORRUPT_MESSAGE before v8, which has no record_errors), the bad records
 * listed in record_errors. Returns false when pr holds the error. */
static bool schema_records_ok(kreq *q, td_topic_ref *ref, const td_topic_config *cfg,
                              kafka_produce_part *pp, kafka_produce_part_resp *pr)
{
    registry_policy pol;
    registry_policy_of(cfg, &pol);
    if (!registry_policy_on(&pol))
        return true;
    bad_records b = {.q = q};
    const char *why = NULL;
    int nbad = registry_check_batches(q->kc->s->e, ref, &pol, pp->records,
                                      (size_t)pp->records_len, bad_record, &b, &why);
    if (nbad == 0)
        return true;
    pr->error_code = q->h.api_version >= 8 ? KERR_INVALID_RECORD : KERR_CORRUPT_MESSAGE;
    if (nbad < 0) {
        pr->error_message = why;
        return false;
    }
    pr->record_errors = b.list;
    pr->nrecord_errors = b.list ? b.n : 0;
    char msg[800];
    snprintf(msg, sizeof(msg), "%" PRId32 " record(s) failed schema validation; the first: %s",
             b.total, b.list ? b.list[0].message : "(no memory for the message)");
    pr->error_message = td_arena_strdup(&q->arena, msg);
    return false;
}

/* One produce request's state shared by its partitions. */
typedef struct produce_ctx {
    kreq *q;
    int16_t acks;
    int64_t now;
    const char *txn_id; /* the request's transactional id, or NULL */
    int ncb;        /* durability callbacks registered (q->cbs) */
    bool appended;  /* something new reached a log (not only retries) */
} produce_ctx;

/* A transactional producer's records (attributes bit 4): the request names its transactional id
 * and the partition is in the producer's ongoing transaction at this epoch (Kafka's
 * verification, KIP-890 part 1: a late batch after an abort would otherwise open a transaction
 * that nothing ends). broker_batches_check made sure the batch is whole and has a producer id.
 * *held: verified, and no marker can be written until broker_txn_verified (after the append). */
static bool txn_records_ok(produce_ctx *x, const char *topic, const kafka_produce_part *pp,
                           kafka_produce_part_resp *pr, bool *held)
{
    const uint8_t *b = pp->records;
    *held = false;
    if (!(td_load_be16(b + 21) & 0x10))
        return true;
    if (!x->txn_id) {
        pr->error_code = KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
        pr->error_message = "transactional records need the request's transactional id";
        return false;
    }
    switch (broker_txn_verify(x->q->kc->s->e, x->txn_id, (int64_t)td_load_be64(b + 43),
                              (int16_t)td_load_be16(b + 51), topic, pp->index)) {
    case TXN_OK:
        *held = true;
        return true;
    case TXN_FENCED:
        pr->error_code = KERR_INVALID_PRODUCER_EPOCH;
        pr->error_message = "the producer's epoch is not its transactional id's";
        return false;
    default:
        pr->error_code = KERR_INVALID_TXN_STATE;
        pr->error_message = "the partition is not in the producer's ongoing transaction";
        return false;
    }
}

/* Appends each batch of one partition's records; the answer carries the first base offset.
 * Returns 0, or the error of the batch that failed (pr's error is then set). */
static int produce_append(produce_ctx *x, const char *topic, td_part *p,
                          const td_topic_config *cfg, bool expects, kafka_produce_part *pp,
                          kafka_produce_part_resp *pr, broker_append_result *res)
{
    kreq *q = x->q;
    size_t off = 0;
    int rc = 0;
    int32_t bad = -1;
    bool first = true;
    while (off < (size_t)pp->records_len) {
        size_t bn = broker_batch_size(pp->records + off);
        /* Expected versions in tidings-expected-version headers (docs/event-sourcing.md#kafka),
         * counted by broker_batches_check, are checked with the append. */
        rc = expects ? broker_part_append_expect(p, pp->records + off, bn,
                                                 cfg->max_message_bytes, x->now, res, &bad)
                     : broker_part_append_checked(p, pp->records + off, bn, x->now, res);
        if (rc)
            break;
        x->appended |= !res->duplicate;
        broker_trace_batch(q->kc->s->e, topic, pp->index, pp->records + off, bn, res, x->now);
        if (res->duplicate)
            TD_DEBUG("kafka",
                     "produce to %s/%" PRId32 " from %s: a retry of offsets %" PRId64 "..%" PRId64
                     ", not stored again",
                     topic, pp->index, net_conn_peer(q->kc->c), res->base_offset,
                     res->last_offset);
        if (first) {
            pr->base_offset = res->base_offset;
            pr->log_append_time = res->log_append_time;
            first = false;
        }
        off += bn;
    }
    if (rc == 0)
        return 0;
    if (first)
        pr->base_offset = -1;
    if (rc == TD_ENOKEY) {
        /* As Kafka's LogValidator: INVALID_RECORD from produce v8 (KIP-467), before it
         * CORRUPT_MESSAGE, which older clients know. */
        pr->error_code = q->h.api_version >= 8 ? KERR_INVALID_RECORD : KERR_CORRUPT_MESSAGE;
        char msg[TD_TOPIC_NAME_MAX + 128];
        snprintf(msg, sizeof(msg),
                 "Compacted topic cannot accept message without key in topic partition "
                 "%s-%" PRId32 ".",
                 topic, pp->index);
        pr->error_message = td_arena_strdup(&q->arena, msg);
        return rc;
    }
    if (bad >= 0) {
        /* A tidings-expected-version header that is malformed, on a topic without key.index,
         * or whose condition does not hold: nothing of the batch is stored. INVALID_RECORD at
         * every version (not CORRUPT_MESSAGE, which clients retry), the record named in
         * record_errors and the message (v8+), which says the key and its current version. */
        pr->error_code = KERR_INVALID_RECORD;
        pr->error_message = td_arena_strdup(&q->arena, td_last_error());
        kafka_record_error *re = td_arena_calloc(&q->arena, 1, sizeof(*re));
        if (re) {
            re->batch_index = bad;
            re->message = pr->error_message;
            pr->record_errors = re;
            pr->nrecord_errors = 1;
        }
        TD_DEBUG("kafka", "produce to %s/%" PRId32 " from %s refused: %s", topic, pp->index,
                 net_conn_peer(q->kc->c), td_last_error());
        return rc;
    }
    if (rc == TD_EFULL) {
        /* The partition's Redis stream is at the largest ID (an XADD or XSETID of
         * 18446744073709551615-18446744073709551615): no record can have an ID, as Redis
         * refuses XADD. Not retriable: INVALID_RECORD, as for other records the broker refuses
         * (docs/kafka.md), with the reason from produce v8. */
        pr->error_code = KERR_INVALID_RECORD;
        pr->error_message = "The stream has exhausted the last possible ID "
                            "(18446744073709551615-18446744073709551615): this partition takes "
                            "no more records";
        return rc;
    }
    if (rc == TD_EFENCED && pp->records_len - off >= 53) /* the batch's producer id, epoch */
        health_producer_fenced(q->kc->s->e, topic, pp->index,
                               (int64_t)td_load_be64(pp->records + off + 43),
                               (int16_t)td_load_be16(pp->records + off + 51), q->h.client_id);
    pr->error_code = kafka_error_of(rc);
    pr->error_message = rc == TD_ESEQUENCE || rc == TD_EFENCED || rc == TD_ETIMESTAMP ||
                                rc == TD_ETOOBIG
                            ? td_arena_strdup(&q->arena, td_last_error())
                            : td_strerror(rc);
    return rc;
}

/* Checks, appends and (under acks=-1) registers the durability wait of one partition of a
 * produce request. ref is the topic's reference (NULL if unknown, trc its lookup's result);
 * denied is the authorization's answer for the topic. */
static void produce_part(produce_ctx *x, const char *topic, td_topic_ref *ref, int trc,
                         const td_topic_config *cfg, int16_t denied, kafka_produce_part *pp,
                         kafka_produce_part_resp *pr)
{
    kreq *q = x->q;
    pr->index = pp->index;
    pr->base_offset = -1;
    pr->log_append_time = -1;
    pr->log_start_offset = -1;
    if (x->acks != 0 && x->acks != 1 && x->acks != -1) {
        pr->error_code = KERR_INVALID_REQUIRED_ACKS;
        return;
    }
    if (denied) {
        pr->error_code = denied;
        return;
    }
    td_part *p = ref ? broker_topic_part(ref, pp->index) : NULL;
    if (trc || !p) {
        pr->error_code = ref ? KERR_UNKNOWN_TOPIC_OR_PARTITION : kafka_missing_topic_error(topic);
        return;
    }
    if (broker_topic_readonly(ref)) {
        /* Kafka's answer for a produce to an internal topic (the system topics too). */
        pr->error_code = KERR_INVALID_TOPIC_EXCEPTION;
        pr->error_message = "Cannot append to internal topic";
        return;
    }
    if (x->acks == -1 && cfg->min_insync_replicas > 1) {
        /* As Kafka answers on a topic with fewer in-sync replicas than it asks for: this
         * broker is the only replica. */
        pr->error_code = KERR_NOT_ENOUGH_REPLICAS;
        pr->error_message = "min.insync.replicas is above 1 and this single broker is the only "
                            "replica";
        return;
    }
    const char *why = NULL;
    size_t expects = 0;
    pr->error_code =
        validate_records(pp->records, pp->records_len, cfg->max_message_bytes, &why, &expects);
    if (pr->error_code != KERR_NONE) {
        pr->error_message = why;
        TD_DEBUG("kafka", "produce to %s/%" PRId32 " from %s refused: %s", topic, pp->index,
                 net_conn_peer(q->kc->c), why);
        return;
    }
    if (!schema_records_ok(q, ref, cfg, pp, pr)) {
        TD_DEBUG("kafka", "produce to %s/%" PRId32 " from %s refused: %s", topic, pp->index,
                 net_conn_peer(q->kc->c), pr->error_message);
        return;
    }
    bool held;
    if (!txn_records_ok(x, topic, pp, pr, &held)) {
        TD_DEBUG("kafka", "produce to %s/%" PRId32 " from %s refused: %s", topic, pp->index,
                 net_conn_peer(q->kc->c), pr->error_message);
        return;
    }
    broker_append_result res = {0};
    int arc = produce_append(x, topic, p, cfg, expects > 0, pp, pr, &res);
    if (held)
        broker_txn_verified(q->kc->s->e);
    if (arc != 0)
        return;
    broker_note_append(ref, pp->index, res.duplicate ? 0 : res.last_offset + 1 - pr->base_offset,
                       res.end_offset); /* keyspace notifications (docs/redis.md) */
    pr->log_start_offset = broker_part_log_start(p);
    if (x->acks != -1) {
        broker_when_durable(ref, pp->index, res.end_offset, NULL, NULL);
        return;
    }
    durable_cb *d = &q->cbs[x->ncb];
    d->q = q;
    d->resp = pr;
    __atomic_add_fetch(&q->pending, 1, __ATOMIC_ACQ_REL);
    /* Under interval and none the callback runs at once, here. */
    int rc = broker_when_durable(ref, pp->index, res.end_offset, produce_durable_cb, d);
    if (rc) {
        pr->error_code = kafka_error_of(rc);
        __atomic_sub_fetch(&q->pending, 1, __ATOMIC_ACQ_REL);
    } else {
        x->ncb++;
    }
}

void kafka_serve_produce(kreq *q, kafka_reader *r)
{
    kafka_server *s = q->kc->s;
    int16_t v = q->h.api_version;
    kafka_produce_req req;
    if (kafka_decode_produce(r, v, &req) != 0) {
        q->out.err = TD_EPROTO;
        return;
    }
    bool acks_ok = req.acks == 0 || req.acks == 1 || req.acks == -1;
    q->no_response = req.acks == 0;
    /* Kafka counts the whole request against the producer byte rate. */
    q->presp.throttle_time_ms = kafka_quota_record(q, TD_QUOTA_PRODUCER_BYTE_RATE, (double)q->size);
    q->presp.ntopics = req.ntopics;
    q->presp.topics = td_arena_calloc(&q->arena, (size_t)req.ntopics + 1, sizeof(*q->presp.topics));
    int32_t total_parts = 0;
    for (int32_t i = 0; i < req.ntopics; i++)
        total_parts += req.topics[i].nparts;
    q->cbs = calloc((size_t)total_parts + 1, sizeof(*q->cbs));
    q->refs = calloc((size_t)req.ntopics + 1, sizeof(*q->refs));
    if (!q->presp.topics || !q->cbs || !q->refs) {
        q->out.err = -ENOMEM;
        return;
    }
    /* Every allocation that can fail comes before the first append: once a durability
     * callback is registered, the request must live until it runs, so failing later would
     * free it under the callback. */
    for (int32_t i = 0; i < req.ntopics; i++) {
        kafka_produce_topic_resp *tr = &q->presp.topics[i];
        tr->parts =
            td_arena_calloc(&q->arena, (size_t)req.topics[i].nparts + 1, sizeof(*tr->parts));
        if (!tr->parts) {
            q->out.err = -ENOMEM;
            return;
        }
    }
    produce_ctx x = {.q = q, .acks = req.acks, .now = td_wall_ms(), .txn_id = req.transactional_id};
    q->pending = 1; /* held until every partition is handled */
    q->finish = produce_finish;
    for (int32_t i = 0; i < req.ntopics; i++) {
        kafka_produce_topic *t = &req.topics[i];
        kafka_produce_topic_resp *tr = &q->presp.topics[i];
        tr->name = t->name;
        tr->nparts = t->nparts;
        /* Authorization comes before existence, as in Kafka: a principal that may not write
         * a topic does not learn whether it exists. A transactional producer needs Write on
         * its transactional id too. */
        int16_t denied = acks_ok && t->name
                             ? kafka_authz_produce(q, req.transactional_id, t->name)
                             : KERR_NONE;
        td_topic_ref *ref = NULL;
        int trc = t->name && !denied ? broker_topic_acquire(s->e, t->name, &ref) : TD_ENOTFOUND;
        if (ref)
            q->refs[q->nrefs++] = ref;
        td_topic_config cfg;
        if (ref)
            broker_topic_config(ref, &cfg);
        for (int32_t k = 0; k < t->nparts; k++)
            produce_part(&x, t->name, ref, trc, &cfg, denied, &t->parts[k], &tr->parts[k]);
    }
    /* Fault injection for tests (fault.drop.after.append): the data is in the log, and the
     * producer never hears of it; k_data closes the connection. */
    int every = s->cfg.fault_drop_after_append;
    if (every > 0 && x.appended &&
        __atomic_add_fetch(&s->produced, 1, __ATOMIC_RELAXED) % every == 0)
        q->drop_connection = true;
    /* Drop the hold. Whoever brings `pending` to zero completes the request: this thread
     * now (no callback outstanding), or the last callback (kreq_async_done), which posts
     * async_task to this loop; that task drops the connection reference taken here. */
    if (x.ncb > 0)
        net_conn_ref(q->kc->c);
    if (__atomic_sub_fetch(&q->pending, 1, __ATOMIC_ACQ_REL) == 0) {
        if (x.ncb > 0)
            net_conn_unref(q->kc->c);
        produce_finish(q);
    }
}
