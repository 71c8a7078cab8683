/*
 * handler.c: the Kafka protocol on the event loops: framing, dispatch, and the handlers that
 * turn decoded requests into broker calls.
 *
 * Ordering: a connection's requests are processed in the order they arrive and their responses
 * leave in that order (Kafka's rule), but work overlaps: a produce waiting for its fsync does
 * not stop the next requests from being decoded and appended. Each request becomes a kreq in
 * the connection's queue; it is `ready` once its response is encoded, and the ready prefix of
 * the queue is written out. At most MAX_INFLIGHT requests are in flight per connection; beyond
 * that the connection stops reading (back pressure).
 *
 * Asynchronous completions:
 * - produce with acks=-1 on an fsync=always topic: broker_when_durable runs a callback on the
 *   engine's flusher thread, which posts a task to the connection's loop;
 * - fetch that has less than min_bytes: the request parks on its loop (net_wait_park) until
 *   max_wait_ms. Every partition's high-watermark hook wakes the loops that have parked fetches
 *   (one coalesced task each), and each loop re-tries them.
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "net/net.h"
#include "proto/kafka/handler_int.h"
#include "proto/kafka/sasl.h"
#include "proto/kafka/kauthz.h"

#define MAX_INFLIGHT 64
#define KAFKA_OUT_LIMIT (8u << 20)

/* ---------------------------------------------------------------------------------------------
 * Errors: one mapping from our codes to Kafka's.
 */
int16_t kafka_error_of(int rc)
{
    switch (rc) {
    case 0:
        return KERR_NONE;
    case TD_ENOTFOUND:
        return KERR_UNKNOWN_TOPIC_OR_PARTITION;
    case TD_EEXIST:
        return KERR_TOPIC_ALREADY_EXISTS;
    case TD_ENAME:
        return KERR_INVALID_TOPIC_EXCEPTION;
    case TD_ECONFIG:
        return KERR_INVALID_CONFIG;
    case TD_EINVAL:
        return KERR_INVALID_REQUEST;
    case TD_ERANGE:
        return KERR_OFFSET_OUT_OF_RANGE;
    case TD_ETOOBIG:
        return KERR_MESSAGE_TOO_LARGE;
    case TD_ECRC:
    case TD_ECORRUPT:
        return KERR_CORRUPT_MESSAGE;
    case TD_EUNSUPPORTED:
        return KERR_UNSUPPORTED_COMPRESSION_TYPE;
    case TD_EOFFLINE:
        return KERR_KAFKA_STORAGE_ERROR;
    case TD_ESEQUENCE:
        return KERR_OUT_OF_ORDER_SEQUENCE_NUMBER;
    case TD_EFENCED:
        return KERR_INVALID_PRODUCER_EPOCH;
    case TD_ETXN:
        return KERR_INVALID_TXN_STATE;
    case TD_ETIMESTAMP:
        return KERR_INVALID_TIMESTAMP;
    default:
        return rc < 0 && rc > -1000 ? KERR_KAFKA_STORAGE_ERROR : KERR_UNKNOWN_SERVER_ERROR;
    }
}

int16_t kafka_missing_topic_error(const char *name)
{
    if (name && td_topic_name_validate(name) != 0)
        return KERR_INVALID_TOPIC_EXCEPTION;
    return KERR_UNKNOWN_TOPIC_OR_PARTITION;
}

/* Kafka topic ids: a stable, non-zero id per topic generation: a fixed prefix ("tidings\1") and
 * the catalog id (never reused). */
static const uint8_t uuid_prefix[8] = {0x74, 0x69, 0x64, 0x69, 0x6e, 0x67, 0x73, 0x01};

static void topic_uuid(int64_t id, uint8_t out[16])
{
    memcpy(out, uuid_prefix, 8);
    td_store_be64(out + 8, (uint64_t)id);
}

/* The topic a Kafka topic id names, acquired; TD_ENOTFOUND if none. */
static int acquire_uuid(kafka_server *s, const uint8_t uuid[16], td_topic_ref **out)
{
    if (memcmp(uuid, uuid_prefix, 8) != 0)
        return TD_ENOTFOUND;
    return broker_topic_acquire_id(s->e, (int64_t)td_load_be64(uuid + 8), out);
}

/* The name of the topic a Kafka topic id names (copied into a), or NULL. */
static const char *uuid_name(kafka_server *s, const uint8_t uuid[16], td_arena *a)
{
    td_topic_ref *ref;
    if (acquire_uuid(s, uuid, &ref) != 0)
        return NULL;
    const char *name = td_arena_strdup(a, broker_topic_name(ref));
    broker_topic_release(ref);
    return name;
}

/* ---------------------------------------------------------------------------------------------
 * Requests: life cycle and ordered output
 */
static bool fetch_retry(net_waiter *w, bool final);

static kreq *req_new(kconn *kc)
{
    kreq *q = calloc(1, sizeof(*q));
    if (!q)
        return NULL;
    q->kc = kc;
    q->t0 = td_mono_ns();
    td_arena_init(&q->arena);
    ko_init(&q->out);
    net_waiter_init(&q->wait, fetch_retry);
    return q;
}

static void release_range(void *arg)
{
    broker_range *r = arg;
    broker_range_release(r);
    free(r);
}

static void req_free(kreq *q)
{
    for (int i = 0; i < q->nrefs; i++)
        broker_topic_release(q->refs[i]);
    free(q->refs);
    if (q->frefs) {
        for (int32_t i = 0; i < q->freq.ntopics; i++)
            broker_topic_release(q->frefs[i]);
        free(q->frefs);
    }
    /* Ranges not handed to the connection (never sent). */
    for (int i = 0; i < q->nranges; i++)
        if (q->ranges[i])
            release_range(q->ranges[i]);
    free(q->ranges);
    free(q->cbs);
    coord_join_res_free(q->join_res);
    coord_sync_res_free(q->sync_res);
    free(q->sasl_job); /* its password was wiped by the worker that checked it */
    free(q->txn_job);
    ko_free(&q->out);
    td_arena_free(&q->arena);
    free(q);
}

static void enqueue(kconn *kc, kreq *q)
{
    if (kc->tail)
        kc->tail->next = q;
    else
        kc->head = q;
    kc->tail = q;
    kc->ninflight++;
}

/* Hands a ready response to the connection: memory pieces copied, file ranges by sendfile. */
static void write_response(kconn *kc, kreq *q)
{
    kafka_out *o = &q->out;
    if (o->err) {
        TD_WARN("kafka", "cannot encode a response to %s: %s; closing",
                net_conn_peer(kc->c), td_strerror(o->err));
        net_conn_close(kc->c, true);
        return;
    }
    if (o->nfiles == 0) {
        /* Ownership of the encoded buffer passes to the connection. */
        net_conn_write_owned(kc->c, o->mem.p, o->mem.len, free);
        td_buf_init(&o->mem);
        return;
    }
    size_t at = 0;
    for (size_t i = 0; i < o->nfiles; i++) {
        kafka_file_part *f = &o->files[i];
        net_conn_write(kc->c, o->mem.p + at, f->mem_at - at);
        at = f->mem_at;
        /* The range now belongs to the connection: forget it here. */
        for (int k = 0; k < q->nranges; k++)
            if (q->ranges[k] == f->ref)
                q->ranges[k] = NULL;
        net_conn_write_file(kc->c, f->fd, f->pos, f->len, release_range, f->ref);
    }
    net_conn_write(kc->c, o->mem.p + at, o->mem.len - at);
}

/* Counts an answered request and its time from arrival to answer (metrics). */
static void kafka_count_request(kafka_server *s, const kreq *q)
{
    int16_t k = q->h.api_key;
    if (k < 0 || k >= KAFKA_API_KEYS)
        return;
    td_counter_add(s->m_requests[k], 1);
    td_histogram_observe(s->m_latency[k], td_mono_ns() - q->t0);
}

/* Writes out the responses at the head of the queue that are ready. */
static void kreq_send_ready(kconn *kc)
{
    /* Writing can close the connection (a failed send, an encoding error), and closing frees
     * kc: from then on only c, held by a reference here, may be looked at. */
    net_conn *c = kc->c;
    if (!c || net_conn_closed(c))
        return;
    net_conn_ref(c);
    bool wrote = false;
    while (kc->head && kc->head->ready) {
        kreq *q = kc->head;
        kc->head = q->next;
        if (!kc->head)
            kc->tail = NULL;
        kc->ninflight--;
        kafka_count_request(kc->s, q);
        if (!q->no_response) {
            write_response(kc, q);
            wrote = true;
        }
        bool close_after = q->close_after;
        req_free(q);
        if (close_after) {
            /* What the answer says is final (a refused authentication): nothing after it. */
            kc->closing = true;
            net_conn_flush(c);
            net_conn_close(c, false);
            goto out;
        }
        if (net_conn_closed(c))
            goto out;
    }
    if (wrote) {
        net_conn_flush(c);
        if (net_conn_closed(c))
            goto out;
    }
    if (kc->paused_by_us && kc->ninflight < MAX_INFLIGHT / 2) {
        kc->paused_by_us = false;
        if (!kafka_quota_muted(kc))
            net_conn_resume(c);
    }
out:
    net_conn_unref(c);
}

/* ---------------------------------------------------------------------------------------------
 * ApiVersions, Metadata
 */
void kafka_serve_api_versions(kreq *q, kafka_reader *r)
{
    kafka_api_versions_req body;
    int16_t v = q->h.api_version;
    const kafka_api *a = kafka_api_find(KAFKA_API_VERSIONS);
    int16_t err = KERR_NONE;
    if (v < a->min || v > a->max)
        err = KERR_UNSUPPORTED_VERSION;
    else if (kafka_decode_api_versions(r, v, &body) != 0)
        err = KERR_INVALID_REQUEST;
    kreq_begin(q); /* header v0: ApiVersions never has a flexible header */
    kafka_encode_api_versions(&q->out, err ? 0 : v, err);
    ko_end(&q->out);
}

static void fill_metadata_topic(kafka_server *s, kafka_metadata_topic *mt, td_arena *a)
{
    td_topic_ref *ref = NULL;
    int rc = broker_topic_acquire(s->e, mt->name, &ref);
    if (rc) {
        mt->error_code = kafka_error_of(rc);
        return;
    }
    topic_uuid(broker_topic_id(ref), mt->topic_id);
    mt->is_internal = broker_topic_internal(ref);
    int32_t n = broker_topic_partitions(ref);
    mt->partitions = td_arena_calloc(a, (size_t)n, sizeof(*mt->partitions));
    if (!mt->partitions) {
        mt->error_code = KERR_UNKNOWN_SERVER_ERROR;
        broker_topic_release(ref);
        return;
    }
    mt->npartitions = n;
    for (int32_t i = 0; i < n; i++) {
        kafka_metadata_partition *p = &mt->partitions[i];
        p->index = i;
        p->leader_epoch = 0;
        if (broker_part_offline(broker_topic_part(ref, i))) {
            p->error_code = KERR_LEADER_NOT_AVAILABLE;
            p->leader = -1;
        } else {
            p->leader = s->cfg.node_id;
        }
    }
    broker_topic_release(ref);
}

void kafka_serve_metadata(kreq *q, kafka_reader *r)
{
    kafka_server *s = q->kc->s;
    int16_t v = q->h.api_version;
    kafka_metadata_req req;
    if (kafka_decode_metadata(r, v, &req) != 0) {
        q->out.err = TD_EPROTO;
        return;
    }
    kafka_metadata_resp m = {.node_id = s->cfg.node_id,
                             .host = s->host,
                             .port = net_conn_listen_port(q->kc->c),
                             .cluster_id = s->cluster_id};
    td_topic_info *all = NULL;
    size_t nall = 0;
    if (req.ntopics < 0) {
        if (td_topic_list_all(s->e, &all, &nall) == 0) {
            /* Only the topics the principal may Describe are listed (Kafka's rule). */
            m.topics = td_arena_calloc(&q->arena, nall ? nall : 1, sizeof(*m.topics));
            for (size_t i = 0; m.topics && i < nall; i++)
                if (kafka_authz_listed(q, all[i].name))
                    m.topics[m.ntopics++].name = td_arena_strdup(&q->arena, all[i].name);
        }
    } else {
        m.topics = td_arena_calloc(&q->arena, (size_t)req.ntopics + 1, sizeof(*m.topics));
        m.ntopics = m.topics ? req.ntopics : 0;
        for (int32_t i = 0; i < m.ntopics; i++) {
            if (!req.topics[i] && req.topic_ids) {
                /* By id (v10+): an existing topic only; never created. */
                req.topics[i] = uuid_name(s, req.topic_ids[i], &q->arena);
                m.topics[i].name = req.topics[i];
                if (!req.topics[i] || !kafka_authz_describe(q, req.topics[i])) {
                    memcpy(m.topics[i].topic_id, req.topic_ids[i], 16);
                    m.topics[i].error_code =
                        req.topics[i] ? KERR_TOPIC_AUTHORIZATION_FAILED : KERR_UNKNOWN_TOPIC_ID;
                    m.topics[i].name = NULL; /* not told to whom may not describe it */
                }
                continue;
            }
            m.topics[i].name = req.topics[i];
            if (!req.topics[i]) {
                m.topics[i].error_code = KERR_UNKNOWN_TOPIC_ID;
                continue;
            }
            if (td_topic_name_validate(req.topics[i]) != 0) {
                m.topics[i].error_code = KERR_INVALID_TOPIC_EXCEPTION;
                continue;
            }
            /* Kafka's order: a topic the principal may not Describe, or may not create when
             * it would be auto-created, is TOPIC_AUTHORIZATION_FAILED (and not created). */
            td_topic_info info;
            bool missing = td_topic_describe(s->e, req.topics[i], &info) == TD_ENOTFOUND;
            bool autoc = missing && s->cfg.auto_create_topics && req.allow_auto_topic_creation;
            if (!kafka_authz_describe(q, req.topics[i]) ||
                (autoc && !kafka_authz_create_topic(q, req.topics[i]))) {
                m.topics[i].error_code = KERR_TOPIC_AUTHORIZATION_FAILED;
                continue;
            }
            if (autoc) {
                int rc = td_topic_create(s->e, req.topics[i], s->cfg.default_partitions, NULL, 0);
                if (rc == 0)
                    TD_INFO("kafka", "auto-created topic %s with %" PRId32 " partitions",
                            req.topics[i], s->cfg.default_partitions);
                else if (rc != TD_EEXIST)
                    m.topics[i].error_code = kafka_error_of(rc);
            }
        }
    }
    for (int32_t i = 0; i < m.ntopics; i++)
        if (m.topics[i].error_code == KERR_NONE)
            fill_metadata_topic(s, &m.topics[i], &q->arena);
    m.topic_ops = req.include_topic_authorized_operations;
    for (int32_t i = 0; m.topic_ops && i < m.ntopics; i++)
        m.topics[i].authorized_ops =
            m.topics[i].error_code == KERR_NONE
                ? kafka_authorized_ops(q, TD_RES_TOPIC, m.topics[i].name)
                : INT32_MIN; /* Kafka's value for a topic it does not describe */
    if ((m.cluster_ops = req.include_cluster_authorized_operations))
        m.cluster_authorized_ops = kafka_authorized_ops(q, TD_RES_CLUSTER, TD_CLUSTER_NAME);
    free(all);
    kreq_begin(q);
    kafka_fill_cluster(q, &m);
    kafka_encode_metadata(&q->out, v, &m);
    ko_end(&q->out);
}

/* ---------------------------------------------------------------------------------------------
 * Answering later
 */
static void async_task(void *arg)
{
    kreq *q = arg;
    kconn *kc = q->kc;
    net_conn *c = kc->c;
    if (kc->closed) {
        /* The connection went away while this request waited. */
        req_free(q);
        if (--kc->orphans == 0)
            free(kc);
    } else {
        q->finish(q);
        q->ready = true;
        kreq_send_ready(kc);
    }
    net_conn_unref(c);
}

void kreq_begin(kreq *q)
{
    ko_begin(&q->out, q->h.correlation_id,
             kafka_response_header_version(q->h.api_key, q->h.api_version));
}

void kreq_async_begin(kreq *q, void (*finish)(kreq *q))
{
    q->finish = finish;
    q->pending = 1;
    net_conn_ref(q->kc->c);
}

void kreq_async_done(kreq *q)
{
    if (__atomic_sub_fetch(&q->pending, 1, __ATOMIC_ACQ_REL) == 0 &&
        net_loop_post(net_conn_loop(q->kc->c), async_task, q) != 0)
        TD_ERROR("kafka", "cannot post a completion: out of memory");
}

/* ---------------------------------------------------------------------------------------------
 * Fetch
 */
/* The aborted transactions of a read_committed read of [from, upper), in q's arena. */
static bool fetch_aborted(kreq *q, td_part *p, int64_t from, int64_t upper,
                          kafka_fetch_part_resp *pr)
{
    broker_aborted_txn *v = NULL;
    size_t n = 0;
    if (broker_part_aborted_txns(p, from, upper, &v, &n) != 0)
        return false;
    kafka_fetch_aborted *a = n ? td_arena_calloc(&q->arena, n, sizeof(*a)) : NULL;
    for (size_t i = 0; a && i < n; i++)
        a[i] = (kafka_fetch_aborted){v[i].pid, v[i].first};
    free(v);
    if (n && !a)
        return false;
    pr->aborted = a;
    pr->naborted = (int32_t)n;
    return true;
}

/* Tries to answer a fetch. Returns true once the response is encoded (q->ready). */
static bool fetch_try(kreq *q, bool final)
{
    kafka_fetch_req *f = &q->freq;
    int16_t v = q->h.api_version;
    kafka_fetch_resp resp = {0};
    resp.ntopics = f->ntopics;
    resp.topics = td_arena_calloc(&q->arena, (size_t)f->ntopics + 1, sizeof(*resp.topics));
    if (!resp.topics) {
        q->out.err = -ENOMEM;
        q->ready = true;
        return true;
    }
    /* Ranges of a previous try are released before reading again. */
    for (int i = 0; i < q->nranges; i++)
        if (q->ranges[i])
            release_range(q->ranges[i]);
    q->nranges = 0;
    int64_t budget = f->max_bytes > 0 ? f->max_bytes : INT32_MAX;
    int64_t total = 0;
    bool error = false;
    bool session_error = f->session_id != 0 && f->session_epoch > 0;
    for (int32_t i = 0; i < f->ntopics && !session_error; i++) {
        kafka_fetch_topic *t = &f->topics[i];
        kafka_fetch_topic_resp *tr = &resp.topics[i];
        tr->name = t->name;
        memcpy(tr->topic_id, t->topic_id, 16);
        tr->nparts = t->nparts;
        tr->parts = td_arena_calloc(&q->arena, (size_t)t->nparts + 1, sizeof(*tr->parts));
        if (!tr->parts) {
            q->out.err = -ENOMEM;
            q->ready = true;
            return true;
        }
        td_topic_ref *ref = q->frefs[i];
        for (int32_t k = 0; k < t->nparts; k++) {
            kafka_fetch_part *fp = &t->parts[k];
            kafka_fetch_part_resp *pr = &tr->parts[k];
            pr->partition = fp->partition;
            pr->fd = -1;
            pr->high_watermark = pr->last_stable_offset = pr->log_start_offset = -1;
            pr->naborted = -1;
            pr->diverging_epoch = pr->current_leader_id = -1; /* no tags (msgs_replica.c) */
            pr->diverging_end_offset = pr->current_leader_epoch = -1;
            if (q->fdenied && q->fdenied[i]) {
                pr->error_code = KERR_TOPIC_AUTHORIZATION_FAILED;
                error = true;
                continue;
            }
            td_part *p = ref ? broker_topic_part(ref, fp->partition) : NULL;
            if (!p || broker_topic_deleted(ref)) {
                pr->error_code = ref ? KERR_UNKNOWN_TOPIC_OR_PARTITION
                                 : q->h.api_version >= 13 ? KERR_UNKNOWN_TOPIC_ID
                                                          : kafka_missing_topic_error(t->name);
                error = true;
                continue;
            }
            if (broker_part_offline(p)) {
                pr->error_code = KERR_KAFKA_STORAGE_ERROR;
                error = true;
                continue;
            }
            pr->high_watermark = broker_part_high_watermark(p);
            pr->last_stable_offset = broker_part_last_stable(p);
            pr->log_start_offset = broker_part_log_start(p);
            /* read_committed (1): data below the last stable offset, with the aborted
             * transactions in it, which the client drops. */
            bool committed = f->isolation_level == 1;
            if (committed)
                pr->naborted = 0;
            if (budget <= 0 || fp->max_bytes <= 0)
                continue;
            broker_range *rg = malloc(sizeof(*rg));
            if (!rg) {
                q->out.err = -ENOMEM;
                q->ready = true;
                return true;
            }
            /* KIP-74: the first batch of the first partition with data is returned whole even
             * if larger than the limits, so that a consumer always makes progress; after that
             * both limits are strict, so a response never exceeds max_bytes by more than that
             * one batch (librdkafka drops larger ones as invalid). broker_part_read returns
             * more than asked only when its first batch alone is larger. */
            size_t want = (size_t)TD_MIN((int64_t)fp->max_bytes, budget);
            int rc = broker_part_read_to(p, fp->fetch_offset, want,
                                         committed ? pr->last_stable_offset : INT64_MAX, rg);
            if (rc == 0 && total > 0 && rg->len > (int64_t)want) {
                broker_range_release(rg);
                rc = TD_EEND;
            }
            if (rc) {
                free(rg);
                if (rc == TD_EEND)
                    continue;
                pr->error_code = kafka_error_of(rc);
                error = true;
                continue;
            }
            if (committed && !fetch_aborted(q, p, fp->fetch_offset, rg->next_offset, pr)) {
                broker_range_release(rg);
                free(rg);
                q->out.err = -ENOMEM;
                q->ready = true;
                return true;
            }
            q->ranges[q->nranges++] = rg;
            pr->fd = rg->fd;
            pr->pos = rg->pos;
            pr->len = rg->len;
            pr->ref = rg;
            total += rg->len;
            budget -= rg->len;
        }
    }
    if (!final && !error && !session_error && total < f->min_bytes && f->max_wait_ms > 0) {
        for (int i = 0; i < q->nranges; i++)
            release_range(q->ranges[i]);
        q->nranges = 0;
        return false;
    }
    if (session_error) {
        resp.error_code = KERR_FETCH_SESSION_ID_NOT_FOUND;
        resp.ntopics = 0;
    }
    /* What goes out, per topic, for the metrics: batches may start before the offset asked
     * (the client skips those records), so events are counted from the fetch offset. */
    uint64_t sent = 0;
    for (int32_t i = 0; i < resp.ntopics && !session_error; i++) {
        uint64_t events = 0, bytes = 0;
        for (int32_t k = 0; k < resp.topics[i].nparts; k++) {
            const broker_range *rg = resp.topics[i].parts[k].ref;
            if (!rg)
                continue;
            int64_t from = TD_MAX(f->topics[i].parts[k].fetch_offset, rg->first_offset);
            events += (uint64_t)TD_MAX(rg->next_offset - from, 0);
            bytes += (uint64_t)rg->len;
        }
        if (bytes)
            broker_topic_count_out(q->frefs[i], events, bytes);
        sent += bytes;
    }
    resp.throttle_time_ms = kafka_quota_record(q, TD_QUOTA_CONSUMER_BYTE_RATE, (double)sent);
    kreq_begin(q);
    kafka_encode_fetch(&q->out, v, &resp);
    ko_end(&q->out);
    q->ready = true;
    return true;
}

/* A parked fetch, woken (partitions advanced) or at max_wait_ms (final): answers it if it has
 * enough now, or in any case when final (net_wait_fn). */
static bool fetch_retry(net_waiter *w, bool final)
{
    kreq *q = (kreq *)((char *)w - offsetof(kreq, wait));
    if (!fetch_try(q, final))
        return false;
    net_wait_cancel(w);
    kreq_send_ready(q->kc); /* may close the connection, which frees q */
    return true;
}

void kafka_serve_fetch(kreq *q, kafka_reader *r)
{
    kafka_server *s = q->kc->s;
    kafka_fetch_req *f = &q->freq;
    if (kafka_decode_fetch(r, q->h.api_version, f) != 0) {
        q->out.err = TD_EPROTO;
        return;
    }
    int32_t nparts = 0;
    for (int32_t i = 0; i < f->ntopics; i++)
        nparts += f->topics[i].nparts;
    q->frefs = calloc((size_t)f->ntopics + 1, sizeof(*q->frefs));
    q->ranges = calloc((size_t)nparts + 1, sizeof(*q->ranges));
    if (!q->frefs || !q->ranges) {
        q->out.err = -ENOMEM;
        return;
    }
    for (int32_t i = 0; i < f->ntopics; i++) {
        const char *name = f->topics[i].name;
        if (q->h.api_version >= 13 && acquire_uuid(s, f->topics[i].topic_id, &q->frefs[i]) == 0)
            name = broker_topic_name(q->frefs[i]);
        if (name && !kafka_authz_read(q, name)) {
            /* Refused: the topic is answered TOPIC_AUTHORIZATION_FAILED by fetch_try. */
            broker_topic_release(q->frefs[i]);
            q->frefs[i] = NULL;
            if (!q->fdenied && !(q->fdenied = td_arena_calloc(&q->arena, (size_t)f->ntopics, 1))) {
                q->out.err = -ENOMEM;
                return;
            }
            q->fdenied[i] = 1;
        } else if (q->h.api_version < 13 && name) {
            broker_topic_acquire(s->e, name, &q->frefs[i]);
        }
    }
    if (fetch_try(q, false))
        return;
    /* Park until data arrives or max_wait_ms passes. */
    if (net_wait_park(s->fetches, &q->wait, q->kc->c, f->max_wait_ms, 0) != 0) {
        fetch_try(q, true);
        return;
    }
    /* An append between the try and the parking found no fetch to wake: try once more now
     * that this one is parked. */
    if (fetch_try(q, false))
        net_wait_cancel(&q->wait);
}

/* ---------------------------------------------------------------------------------------------
 * ListOffsets
 */
void kafka_serve_list_offsets(kreq *q, kafka_reader *r)
{
    kafka_server *s = q->kc->s;
    int16_t v = q->h.api_version;
    kafka_list_offsets_req req;
    if (kafka_decode_list_offsets(r, v, &req) != 0) {
        q->out.err = TD_EPROTO;
        return;
    }
    for (int32_t i = 0; i < req.ntopics; i++) {
        kafka_list_offsets_topic *t = &req.topics[i];
        td_topic_ref *ref = NULL;
        bool denied = !t->name || !kafka_authz_describe(q, t->name);
        if (!denied)
            broker_topic_acquire(s->e, t->name, &ref);
        for (int32_t k = 0; k < t->nparts; k++) {
            kafka_list_offsets_part *p = &t->parts[k];
            p->out_timestamp = -1;
            p->out_offset = -1;
            if (denied) {
                p->error_code = KERR_TOPIC_AUTHORIZATION_FAILED;
                continue;
            }
            td_part *part = ref ? broker_topic_part(ref, p->partition) : NULL;
            if (!part) {
                p->error_code =
                    ref ? KERR_UNKNOWN_TOPIC_OR_PARTITION : kafka_missing_topic_error(t->name);
                continue;
            }
            if (broker_part_offline(part)) {
                p->error_code = KERR_KAFKA_STORAGE_ERROR;
                continue;
            }
            int rc = 0;
            /* read_committed (1) sees the log up to its last stable offset. */
            int64_t end = req.isolation_level == 1 ? broker_part_last_stable(part)
                                                   : broker_part_high_watermark(part);
            if (p->timestamp == -1) {
                p->out_offset = end;
            } else if (p->timestamp == -2) {
                p->out_offset = broker_part_log_start(part);
            } else if (p->timestamp == -3) {
                rc = broker_part_max_timestamp(part, &p->out_timestamp, &p->out_offset);
                if (rc == TD_ENOTFOUND) {
                    rc = 0;
                    p->out_timestamp = -1;
                    p->out_offset = -1;
                }
            } else if (p->timestamp >= 0) {
                int64_t off;
                rc = broker_part_offset_for_time(part, p->timestamp, &off);
                if (rc == 0 && off < end) {
                    /* Kafka answers with the found record's own timestamp. */
                    p->out_offset = off;
                    p->out_timestamp = p->timestamp;
                    td_iter *it = NULL;
                    td_event ev;
                    if (td_iter_open(s->e, t->name, p->partition, off, &it) == 0) {
                        /* the record at off, whatever its transaction's fate */
                        td_iter_set_isolation(it, TD_READ_UNCOMMITTED);
                        if (td_iter_next(it, &ev) == 1)
                            p->out_timestamp = ev.timestamp_ms;
                        td_iter_close(it);
                    }
                } else if (rc == 0) {
                    p->out_offset = -1; /* no record at or after ts */
                    p->out_timestamp = -1;
                }
            } else {
                p->error_code = KERR_INVALID_REQUEST;
                continue;
            }
            if (rc)
                p->error_code = kafka_error_of(rc);
        }
        broker_topic_release(ref);
    }
    kreq_begin(q);
    kafka_encode_list_offsets(&q->out, v, &req);
    ko_end(&q->out);
}

/* ---------------------------------------------------------------------------------------------
 * CreateTopics, DeleteTopics
 */

/* A manual replica assignment is accepted, as Kafka's controller accepts it, when it names
 * partitions 0..n-1 once each, every one with this broker as its only replica, and the request
 * leaves num_partitions and replication_factor at -1. */
static int16_t kafka_check_assignment(const kafka_create_topic *t, int32_t node_id,
                                      const char **why)
{
    if (t->num_partitions != -1 || t->replication_factor != -1) {
        *why = "a manual replica assignment needs num_partitions and replication_factor -1";
        return KERR_INVALID_REQUEST;
    }
    for (int32_t k = 0; k < t->nassignments; k++) {
        const kafka_replica_assignment *a = &t->assignments[k];
        bool seen = false;
        for (int32_t j = 0; j < t->nassignments && !seen; j++)
            seen = t->assignments[j].partition == k;
        if (!seen) {
            *why = "the assigned partitions must be numbered 0 to n-1, each once";
            return KERR_INVALID_REPLICA_ASSIGNMENT;
        }
        if (a->nbrokers != 1 || a->brokers[0] != node_id) {
            *why = "every partition's replicas must be this broker alone (a single broker, "
                   "replication factor 1)";
            return KERR_INVALID_REPLICA_ASSIGNMENT;
        }
    }
    return KERR_NONE;
}
void kafka_serve_create_topics(kreq *q, kafka_reader *r)
{
    kafka_server *s = q->kc->s;
    int16_t v = q->h.api_version;
    kafka_create_topics_req req;
    if (kafka_decode_create_topics(r, v, &req) != 0) {
        q->out.err = TD_EPROTO;
        return;
    }
    for (int32_t i = 0; i < req.ntopics; i++) {
        kafka_create_topic *t = &req.topics[i];
        bool dup = false;
        for (int32_t k = 0; k < i && !dup; k++)
            dup = t->name && req.topics[k].name && strcmp(t->name, req.topics[k].name) == 0;
        if (!t->name || dup) {
            t->error_code = KERR_INVALID_REQUEST;
            t->error_message = dup ? "topic named twice in one request" : "no topic name";
            continue;
        }
        if (!kafka_authz_create_topic(q, t->name)) {
            t->error_code = KERR_TOPIC_AUTHORIZATION_FAILED;
            t->error_message = "Authorization failed.";
            continue;
        }
        int32_t parts = t->num_partitions == -1 ? s->cfg.default_partitions : t->num_partitions;
        if (t->nassignments > 0) {
            const char *why = NULL;
            t->error_code = kafka_check_assignment(t, s->cfg.node_id, &why);
            if (t->error_code != KERR_NONE) {
                t->error_message = why;
                continue;
            }
            parts = t->nassignments;
        }
        if (t->replication_factor != -1 && t->replication_factor != 1) {
            t->error_code = KERR_INVALID_REPLICATION_FACTOR;
            t->error_message = "replication factor must be 1 (single broker)";
            continue;
        }
        if (parts <= 0) {
            t->error_code = KERR_INVALID_PARTITIONS;
            t->error_message = "number of partitions must be at least 1";
            continue;
        }
        td_config_entry *cfg = td_arena_calloc(&q->arena, (size_t)t->nconfigs + 1, sizeof(*cfg));
        if (!cfg) {
            t->error_code = KERR_UNKNOWN_SERVER_ERROR;
            continue;
        }
        size_t ncfg = 0;
        for (int32_t k = 0; k < t->nconfigs; k++) {
            if (!t->configs[k].name || !t->configs[k].value)
                continue;
            cfg[ncfg].key = t->configs[k].name;
            cfg[ncfg].value = t->configs[k].value;
            ncfg++;
        }
        int rc;
        td_topic_config tc;
        td_topic_config_init(&tc);
        if ((rc = td_topic_name_validate(t->name)) == 0 &&
            (rc = td_topic_config_apply(&tc, cfg, ncfg)) == 0 && !req.validate_only)
            rc = td_topic_create(s->e, t->name, parts, cfg, ncfg);
        else if (rc == 0 && req.validate_only) {
            td_topic_info info;
            if (td_topic_describe(s->e, t->name, &info) == 0)
                rc = td_fail(TD_EEXIST, "topic '%s' already exists", t->name);
            else if (parts > 100000)
                rc = td_fail(TD_EINVAL, "too many partitions");
        }
        if (rc) {
            t->error_code = kafka_error_of(rc);
            if (rc == TD_EINVAL)
                t->error_code = KERR_INVALID_PARTITIONS;
            const char *why = td_last_error();
            t->error_message = td_arena_strdup(&q->arena, why);
            continue;
        }
        t->out_partitions = parts;
        td_topic_info info;
        if (!req.validate_only && td_topic_describe(s->e, t->name, &info) == 0)
            tc = info.config;
        const char *const *keys = td_topic_config_keys();
        size_t nk = 0;
        while (keys[nk])
            nk++;
        t->out_configs = td_arena_calloc(&q->arena, nk + 1, sizeof(*t->out_configs));
        for (size_t k = 0; t->out_configs && k < nk; k++) {
            char buf[TD_TOPIC_CONFIG_VALUE_MAX];
            if (td_topic_config_get(&tc, keys[k], buf, sizeof(buf)) != 0)
                continue;
            t->out_configs[t->nout_configs].name = keys[k];
            t->out_configs[t->nout_configs].value = td_arena_strdup(&q->arena, buf);
            t->nout_configs++;
        }
        td_topic_ref *ref = NULL;
        if (!req.validate_only && broker_topic_acquire(s->e, t->name, &ref) == 0) {
            topic_uuid(broker_topic_id(ref), t->topic_id);
            broker_topic_release(ref);
        }
        if (!req.validate_only)
            TD_INFO("kafka", "created topic %s with %" PRId32 " partitions for %s", t->name,
                    parts, net_conn_peer(q->kc->c));
    }
    kreq_begin(q);
    kafka_encode_create_topics(&q->out, v, &req);
    ko_end(&q->out);
}

void kafka_serve_delete_topics(kreq *q, kafka_reader *r)
{
    kafka_server *s = q->kc->s;
    int16_t v = q->h.api_version;
    kafka_delete_topics_req req;
    if (kafka_decode_delete_topics(r, v, &req) != 0) {
        q->out.err = TD_EPROTO;
        return;
    }
    for (int32_t i = 0; i < req.ntopics; i++) {
        kafka_delete_topic *t = &req.topics[i];
        if (!t->name)
            t->name = uuid_name(s, t->topic_id, &q->arena); /* v6: by id */
        if (!t->name) {
            t->error_code = KERR_UNKNOWN_TOPIC_ID;
            continue;
        }
        if (!kafka_authz_delete_topic(q, t->name)) {
            t->error_code = KERR_TOPIC_AUTHORIZATION_FAILED;
            continue;
        }
        int rc = td_topic_name_validate(t->name);
        if (rc == 0)
            rc = td_topic_delete(s->e, t->name);
        if (rc) {
            t->error_code = kafka_error_of(rc);
            const char *why = td_last_error();
            t->error_message = td_arena_strdup(&q->arena, why);
        } else {
            TD_INFO("kafka", "deleted topic %s for %s", t->name, net_conn_peer(q->kc->c));
        }
    }
    kreq_begin(q);
    kafka_encode_delete_topics(&q->out, v, &req);
    ko_end(&q->out);
}

void kafka_serve_create_partitions(kreq *q, kafka_reader *r)
{
    kafka_server *s = q->kc->s;
    int16_t v = q->h.api_version;
    kafka_create_partitions_req req;
    if (kafka_decode_create_partitions(r, v, &req) != 0) {
        q->out.err = TD_EPROTO;
        return;
    }
    for (int32_t i = 0; i < req.ntopics; i++) {
        kafka_create_partitions_topic *t = &req.topics[i];
        if (t->name && !kafka_authz_alter_topic(q, t->name)) {
            t->error_code = KERR_TOPIC_AUTHORIZATION_FAILED;
            t->error_message = "Authorization failed.";
            continue;
        }
        td_topic_info info;
        int rc = t->name ? td_topic_describe(s->e, t->name, &info) : TD_ENOTFOUND;
        if (rc) {
            t->error_code = kafka_missing_topic_error(t->name);
            t->error_message = t->error_code == KERR_INVALID_TOPIC_EXCEPTION
                                   ? "invalid topic name (docs/kafka.md#topic-names)"
                                   : "no such topic";
            continue;
        }
        if (t->nassignments >= 0) {
            t->error_code = KERR_INVALID_REPLICA_ASSIGNMENT;
            t->error_message = "manual replica assignment is not supported (single broker)";
            continue;
        }
        if (t->count <= info.partitions) {
            t->error_code = KERR_INVALID_PARTITIONS;
            t->error_message = "the new partition count must be larger than the current one";
            continue;
        }
        if (req.validate_only)
            continue;
        rc = td_topic_add_partitions(s->e, t->name, t->count);
        if (rc) {
            t->error_code = rc == TD_EINVAL ? KERR_INVALID_PARTITIONS : kafka_error_of(rc);
            const char *why = td_last_error();
            t->error_message = td_arena_strdup(&q->arena, why);
        } else {
            TD_INFO("kafka", "topic %s now has %" PRId32 " partitions (for %s)", t->name,
                    t->count, net_conn_peer(q->kc->c));
        }
    }
    kreq_begin(q);
    kafka_encode_create_partitions(&q->out, v, &req);
    ko_end(&q->out);
}

void kafka_serve_describe_cluster(kreq *q, kafka_reader *r)
{
    kafka_server *s = q->kc->s;
    int16_t v = q->h.api_version;
    kafka_describe_cluster_req req;
    if (kafka_decode_describe_cluster(r, v, &req) != 0) {
        q->out.err = TD_EPROTO;
        return;
    }
    kafka_metadata_resp m = {.node_id = s->cfg.node_id,
                             .host = s->host,
                             .port = net_conn_listen_port(q->kc->c),
                             .cluster_id = s->cluster_id};
    if ((m.cluster_ops = req.include_cluster_authorized_operations))
        m.cluster_authorized_ops = kafka_authorized_ops(q, TD_RES_CLUSTER, TD_CLUSTER_NAME);
    kreq_begin(q);
    kafka_fill_cluster(q, &m);
    kafka_encode_describe_cluster(&q->out, v, &req, &m);
    ko_end(&q->out);
}

/* ---------------------------------------------------------------------------------------------
 * Connection callbacks
 */
static int k_open(net_conn *c)
{
    kafka_server *s = net_conn_proto_arg(c);
    kconn *kc = calloc(1, sizeof(*kc));
    if (!kc)
        return -ENOMEM;
    kc->c = c;
    kc->s = s;
    net_conn_set_data(c, kc);
    TD_DEBUG("kafka", "connection from %s", net_conn_peer(c));
    return 0;
}

/* The connection closed: requests whose answer is still to come (a durability callback or the
 * coordinator outstanding, or the completion task already posted to this loop) stay alive: their
 * task frees them, and kc with the last one. Everything else is freed now. (Testing `pending`
 * alone is not enough: it is already 0 once the task is posted, and the task would then find
 * the request freed.) */
static void k_close(net_conn *c)
{
    kconn *kc = net_conn_data(c);
    if (!kc)
        return;
    net_conn_set_data(c, NULL);
    kafka_quota_close(kc);
    kc->closed = true;
    kreq *q = kc->head;
    while (q) {
        kreq *next = q->next;
        net_wait_cancel(&q->wait); /* net did it already (a closing connection's waiters) */
        if (!q->ready && q->finish)
            kc->orphans++;
        else
            req_free(q);
        q = next;
    }
    kc->head = kc->tail = NULL;
    kafka_sasl_conn_free(kc);
    if (kc->orphans == 0)
        free(kc);
}

static ssize_t k_data(net_conn *c, uint8_t *p, size_t n)
{
    kconn *kc = net_conn_data(c);
    size_t used = 0;
    while (used < n) {
        if (kafka_quota_muted(kc))
            break; /* a quota throttles the client: the rest waits in the buffer */
        if (kc->ninflight >= MAX_INFLIGHT) {
            kc->paused_by_us = true;
            net_conn_pause(c);
            break;
        }
        if (net_conn_output_full(c))
            break; /* offered again once the output drains */
        if (kc->closing)
            break; /* the connection closes once its last answer is sent */
        if (kafka_sasl_busy(kc)) {
            /* A password is being checked off the loop: nothing more is read until the answer
             * (Kafka's server also mutes a connection while it authenticates). */
            kc->paused_by_us = true;
            net_conn_pause(c);
            break;
        }
        size_t flen, max = kafka_sasl_frame_max(kc, net_conn_max_input(c) - 4);
        int rc = kafka_frame(p + used, n - used, max, &flen);
        if (rc == TD_EAGAIN) {
            if (n - used >= 4) /* the whole frame is asked of the buffer budget at once */
                net_conn_expect(c, 4 + (size_t)td_load_be32(p + used));
            break;
        }
        if (rc) {
            kafka_log_bad_frame(c, p + used, n - used, max);
            return -1;
        }
        uint8_t *frame = p + used + 4;
        size_t size = flen - 4;
        used += flen;
        if (kafka_sasl_raw_expected(kc)) {
            /* A raw SASL token after SaslHandshake v0: answered in order, like a request. */
            kreq *q = req_new(kc);
            if (!q)
                return -1;
            q->h.api_key = KAFKA_SASL_AUTHENTICATE;
            q->h.api_version = -1;
            enqueue(kc, q);
            if (kafka_sasl_raw_token(q, frame, size) == 0)
                q->ready = true;
            kreq_send_ready(kc);
            if (net_conn_closed(c))
                return -1;
            continue;
        }
        kreq *q = req_new(kc);
        if (!q)
            return -1;
        q->size = size;
        kafka_reader r;
        kr_init(&r, frame, size, &q->arena);
        if (kafka_decode_header(&r, &q->h) != 0) {
            TD_WARN("kafka", "%s sent a malformed request header; closing", net_conn_peer(c));
            req_free(q);
            return -1;
        }
        const kafka_api *a = kafka_api_find(q->h.api_key);
        if (!a) {
            TD_WARN("kafka", "%s sent unknown API key %d (client %s); closing",
                    net_conn_peer(c), q->h.api_key, q->h.client_id ? q->h.client_id : "-");
            req_free(q);
            return -1;
        }
        if (q->h.api_key != KAFKA_API_VERSIONS &&
            (q->h.api_version < a->min || q->h.api_version > a->max)) {
            /* Kafka closes the connection here: a response in a version the broker cannot
             * encode would be misread. Clients negotiate through ApiVersions first. */
            TD_WARN("kafka", "%s sent API %d version %d outside %d-%d; closing",
                    net_conn_peer(c), q->h.api_key, q->h.api_version, a->min, a->max);
            req_free(q);
            return -1;
        }
        if (kafka_sasl_gate(kc, &q->h) != 0) {
            req_free(q);
            return -1;
        }
        enqueue(kc, q);
        /* request_percentage counts the time requests take on the loop. */
        int64_t h0 = broker_quota_any(kc->s->e, TD_QUOTA_REQUEST_PERCENTAGE) ? td_mono_ns() : 0;
        a->handle(q, &r);
        /* How the API answers is its row's (apis.c); a request whose handling failed answers
         * now. */
        bool async = a->answers == KAFKA_ANSWERS_LATER ||
                     (a->answers == KAFKA_ANSWERS_NOW_OR_LATER && q->finish);
        if (h0)
            kafka_quota_record(q, TD_QUOTA_REQUEST_PERCENTAGE, (double)(td_mono_ns() - h0) * 1e-7);
        if (!async || q->out.err)
            q->ready = true;
        if (q->drop_connection) {
            TD_WARN("kafka", "fault injection: closing %s after appending, before answering",
                    net_conn_peer(c));
            return -1;
        }
        if (q->out.err == TD_EPROTO) {
            TD_WARN("kafka", "%s sent a malformed %d v%d request; closing", net_conn_peer(c),
                    q->h.api_key, q->h.api_version);
            return -1;
        }
        kreq_send_ready(kc);
        if (net_conn_closed(c))
            return -1;
    }
    return (ssize_t)used;
}

static const net_proto kafka_proto = {
    .name = "kafka",
    .on_open = k_open,
    .on_data = k_data,
    .on_close = k_close,
    .max_input = KAFKA_MAX_FRAME + 4,
    .out_limit = KAFKA_OUT_LIMIT,
};

const net_proto *kafka_server_proto(void)
{
    return &kafka_proto;
}

int kafka_server_create(td_engine *e, const kafka_server_config *cfg, kafka_server **out)
{
    kafka_server *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->e = e;
    s->cfg = *cfg;
    snprintf(s->host, sizeof(s->host), "%s", cfg->advertised_host ? cfg->advertised_host
                                                                   : "127.0.0.1");
    snprintf(s->cluster_id, sizeof(s->cluster_id), "%s", cfg->cluster_id ? cfg->cluster_id
                                                                         : "tidings");
    s->cfg.advertised_host = s->host;
    s->cfg.cluster_id = s->cluster_id;
    s->cfg.data_dir = NULL;
    if (cfg->data_dir && !(s->cfg.data_dir = strdup(cfg->data_dir))) {
        free(s);
        return -ENOMEM;
    }
    if (s->cfg.default_partitions <= 0)
        s->cfg.default_partitions = 1;
    int rc = kafka_sasl_server_create(s);
    if (rc) {
        free((char *)s->cfg.data_dir);
        free(s);
        return rc;
    }
    td_metric_family *fc, *fh;
    broker_request_metrics(e, &fc, &fh);
    size_t n;
    const kafka_api *a = kafka_api_all(&n);
    for (size_t i = 0; i < n; i++) {
        const char *labels[] = {"kafka", a[i].name};
        if (a[i].key >= 0 && a[i].key < KAFKA_API_KEYS) {
            s->m_requests[a[i].key] = td_metric_get(fc, labels);
            s->m_latency[a[i].key] = td_metric_get(fh, labels);
        }
    }
    td_metric_family *fd = td_metrics_family(
        broker_metrics(e), TD_COUNTER, "tidings_security_denied_total",
        "Requests refused by a security check, by protocol and reason.", "protocol,reason", NULL, 0);
    s->m_denied = td_metric_get(fd, (const char *const[]){"kafka", "acl"});
    *out = s;
    return 0;
}

int kafka_server_attach(kafka_server *s, net_group *g)
{
    s->nloops = net_group_size(g);
    int rc = net_waitset_create(&s->fetches);
    if (rc == 0 && (rc = broker_add_advance_hook(s->e, net_wait_wake_hook, s->fetches)) != 0) {
        net_waitset_destroy(s->fetches);
        s->fetches = NULL;
    }
    return rc;
}

int kafka_server_set_listeners(kafka_server *s, const char *listeners)
{
    char *copy = strdup(listeners);
    if (!copy)
        return -ENOMEM;
    free(s->listeners);
    s->listeners = copy;
    return 0;
}

void kafka_server_set_port(kafka_server *s, int32_t port)
{
    s->cfg.port = port;
}

void kafka_server_detach(kafka_server *s)
{
    if (s && s->fetches)
        broker_remove_advance_hook(s->e, net_wait_wake_hook, s->fetches);
    if (s)
        kafka_sasl_stop(s); /* password checks in flight post their answers now */
}

void kafka_server_destroy(kafka_server *s)
{
    if (!s)
        return;
    kafka_server_detach(s);
    kafka_sasl_server_destroy(s);
    free((char *)s->cfg.data_dir);
    free(s->listeners);
    net_waitset_destroy(s->fetches);
    free(s);
}
