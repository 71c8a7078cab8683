/*
 * queues.c: the REST API's queue groups (docs/queues.md, docs/http-api.md):
 *   PUT    /v1/queues/{group}          create, or change the policy of, a group
 *   GET    /v1/queues[/{group}]        list, describe (depth, in flight, waiting, totals)
 *   DELETE /v1/queues/{group}
 *   POST   /v1/queues/{group}/receive  {"max", "wait_ms", "consumer", "values"}
 *   POST   /v1/queues/{group}/ack      {"ids", "results"}
 *   POST   /v1/queues/{group}/nack     {"ids", "delay_ms", "error", "results"}
 *   POST   /v1/queues/{group}/extend   {"ids", "ms", "results"}
 * The receive's answer and the outcomes' bodies and answers are written and read by hand
 * (queue_wire.c); a body of another shape than the plain one is read with jansson, which
 * explains what is wrong with it.
 *
 * A receive with wait_ms waits on the connection's loop until events can be delivered or the
 * time is up: it tries again when the log advances or the queue changes (acks, nacks, deadlines:
 * both wake the loop's waiting receives at once), and every POLL_MS otherwise (redeliveries fall
 * due by the clock). Acks, nacks and extends answer once their records on __queue_state are
 * durable.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/authz.h"
#include "broker/pattern.h"
#include "broker/queue.h"
#include "proto/http/http_int.h"
#include "proto/http/queue_wire.h"

#define MAX_RECEIVE 1000
#define MAX_WAIT_MS 60000
#define POLL_MS 100
#define MAX_IDS QWIRE_MAX_IDS

/* ---------------------------------------------------------------------------------------------
 * Policy <-> JSON
 */
/* The description's JSON is written once, for the HTTP API and the command's local mode. */
static json_t *info_json(const td_queue_info *q)
{
    char *text = td_queue_info_json(q);
    json_t *o = text ? json_loads(text, 0, NULL) : NULL;
    free(text);
    return o;
}

/* One policy field: a JSON value as the setting's text, or an error answered. */
static bool field(hconn *hc, json_t *v, const char *name, const char *key, td_config_entry *out,
                  char *buf, size_t len, size_t *n)
{
    if (!v)
        return true;
    if (json_is_integer(v))
        snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (json_is_real(v)) {
        int k = snprintf(buf, len, "%.17g", json_real_value(v));
        if (k > 0 && (size_t)k < len)
            td_json_shorten_reals(buf, (size_t)k); /* 0.1 rather than 0.10000000000000001 */
    } else if (json_is_string(v))
        snprintf(buf, len, "%s", json_string_value(v));
    else {
        char msg[200];
        snprintf(msg, sizeof(msg), "'%s' must be a number or a string", name);
        http_respond_error(hc, 400, "invalid_argument", msg);
        return false;
    }
    out[(*n)++] = (td_config_entry){key, buf};
    return true;
}

/* The policy's fields in a PUT body: top-level (obj NULL), or members of an object field. */
typedef struct pfield {
    const char *obj, *name, *key;
} pfield;
static const pfield pfields[] = {
    {NULL, "ack_timeout_ms", "ack.timeout.ms"},
    {NULL, "max_deliveries", "max.deliveries"},
    {NULL, "dead_letter_topic", "dead.letter.topic"},
    {NULL, "ordering", "ordering"},
    {NULL, "max_in_flight", "max.in.flight"},
    {NULL, "max_in_flight_per_consumer", "max.in.flight.per.consumer"},
    {NULL, "start", "start"},
    {NULL, "forward_to", "forward.to"},
    {"backoff", "initial_ms", "backoff.initial.ms"},
    {"backoff", "multiplier", "backoff.multiplier"},
    {"backoff", "max_ms", "backoff.max.ms"},
    {"backoff", "jitter", "backoff.jitter"},
    {"circuit_breaker", "failure_rate", "circuit.failure.rate"},
    {"circuit_breaker", "window_ms", "circuit.window.ms"},
    {"circuit_breaker", "min_calls", "circuit.min.calls"},
    {"circuit_breaker", "open_ms", "circuit.open.ms"},
    {"circuit_breaker", "half_open_trials", "circuit.half.open.trials"},
};
#define NPFIELDS TD_ARRAY_LEN(pfields)

static bool same_obj(const char *a, const char *b)
{
    return a == b || (a && b && !strcmp(a, b));
}

/* The fields of b that obj holds (obj NULL: b's own), checked for unknown keys and applied to
 * en. False after answering. */
static bool read_fields(hconn *hc, json_t *b, const char *obj, td_config_entry *en,
                        char (*bufs)[TD_TOPIC_NAME_MAX + 1], size_t *n)
{
    const char *allowed[NPFIELDS + 4];
    size_t na = 0;
    if (!obj)
        allowed[na++] = "topic";
    for (size_t i = 0; i < NPFIELDS; i++) {
        if (same_obj(pfields[i].obj, obj))
            allowed[na++] = pfields[i].name;
        else if (!obj && (i == 0 || !same_obj(pfields[i].obj, pfields[i - 1].obj)))
            allowed[na++] = pfields[i].obj; /* an object's name, once */
    }
    allowed[na] = NULL;
    json_t *o = obj ? json_object_get(b, obj) : b;
    if (!o)
        return true;
    if (!json_is_object(o)) {
        char msg[300];
        size_t k = (size_t)snprintf(msg, sizeof(msg), "'%s' must be an object: {", obj);
        for (size_t i = 0; allowed[i] && k < sizeof(msg); i++)
            k += (size_t)snprintf(msg + k, sizeof(msg) - k, "%s\"%s\"", i ? ", " : "", allowed[i]);
        if (k < sizeof(msg))
            snprintf(msg + k, sizeof(msg) - k, "}");
        http_respond_error(hc, 400, "invalid_argument", msg);
        return false;
    }
    if (!http_only_keys(hc, o, allowed))
        return false;
    for (size_t i = 0; i < NPFIELDS; i++)
        if (same_obj(pfields[i].obj, obj) &&
            !field(hc, json_object_get(o, pfields[i].name), pfields[i].name, pfields[i].key, en,
                   bufs[*n], sizeof(bufs[*n]), n))
            return false;
    return true;
}

/* The policy fields of a PUT body applied to *p. */
static bool read_policy(hconn *hc, json_t *b, td_queue_policy *p)
{
    td_config_entry en[NPFIELDS];
    char bufs[NPFIELDS][TD_TOPIC_NAME_MAX + 1];
    size_t n = 0;
    if (!read_fields(hc, b, NULL, en, bufs, &n) || !read_fields(hc, b, "backoff", en, bufs, &n) ||
        !read_fields(hc, b, "circuit_breaker", en, bufs, &n))
        return false;
    int rc = td_queue_policy_apply(p, en, n);
    if (rc) {
        http_respond_td_error(hc, rc);
        return false;
    }
    return true;
}

static void answer_info(hconn *hc, int status, const char *group)
{
    td_queue_info info;
    int rc = td_queue_describe(hc->s->e, group, &info);
    if (rc)
        return http_respond_td_error(hc, rc);
    http_respond_json(hc, status, info_json(&info), NULL);
}

/* A group change waiting for its records to be durable (queue_admin_async). */
typedef struct qadm {
    net_conn *c;
    char group[TD_TOPIC_NAME_MAX + 1];
    int status; /* 200 or 201 with the group, 204 for a deletion */
    int rc;
} qadm;

static void qadm_answer(hconn *hc, const qadm *a)
{
    if (a->rc)
        return http_respond_td_error(hc, a->rc);
    if (a->status == 204)
        return http_respond_json(hc, 204, NULL, NULL);
    answer_info(hc, a->status, a->group);
}

static void qadm_task(void *arg)
{
    qadm *a = arg;
    net_conn *c = a->c;
    hconn *hc = net_conn_closed(c) ? NULL : net_conn_data(c);
    if (hc) {
        qadm_answer(hc, a);
        http_finish_async(hc);
    }
    free(a);
    net_conn_unref(c);
}

/* The engine's flusher thread (or the loop, before queue_admin_async returns). */
static void qadm_saved(void *arg, int rc)
{
    qadm *a = arg;
    a->rc = rc;
    if (net_loop_post(net_conn_loop(a->c), qadm_task, a) != 0)
        TD_ERROR("http", "cannot post a queue group change's answer: out of memory");
}

/* Makes a group change and answers once its records are durable, without blocking the loop. */
static void queue_admin(hconn *hc, int op, const char *group, const char *topic,
                        const td_queue_policy *p, int status)
{
    qadm *a = calloc(1, sizeof(*a));
    if (!a)
        return http_respond_error(hc, 500, "internal", "out of memory");
    a->c = hc->c;
    snprintf(a->group, sizeof(a->group), "%s", group);
    a->status = status;
    net_conn_ref(hc->c);
    int rc = queue_admin_async(hc->s->e, op, group, topic, p, qadm_saved, a);
    if (rc == 1) { /* answered once durable */
        http_begin_async(hc);
        return;
    }
    net_conn_unref(hc->c);
    a->rc = rc < 0 ? rc : 0;
    qadm_answer(hc, a);
    free(a);
}

/* The group writes for whoever names the topics it writes to (its dead letters, its forwarded
 * events): Write on the topic `now` names when the request changed it from `was` (a topic
 * set before was checked then). False after answering. */
static bool may_write_to(hconn *hc, const char *now, const char *was)
{
    return !*now || !strcmp(now, was) || http_require(hc, TD_RES_TOPIC, now, TD_OP_WRITE);
}

/* PUT /v1/queues/{group}: creates the group, or changes its policy (its topic stays). */
static void queue_put(hconn *hc, const char *group)
{
    json_t *b = http_body_json(hc, true);
    if (!b)
        return;
    td_engine *e = hc->s->e;
    td_queue_info info;
    int rc = td_queue_describe(e, group, &info);
    bool exists = rc == 0;
    const char *topic = json_string_value(json_object_get(b, "topic"));
    td_queue_policy p, was;
    if (exists)
        p = info.policy;
    else
        td_queue_policy_init(&p);
    was = p;
    const char *why = NULL;
    if (json_object_get(b, "topic") && !topic) {
        http_respond_error(hc, 400, "invalid_argument", "'topic' must be a topic name or pattern");
    } else if (topic && !td_pattern_is_literal(topic, strlen(topic)) &&
               td_pattern_validate(topic, strlen(topic), &why) != 0) {
        char msg[400];
        snprintf(msg, sizeof(msg), "invalid pattern '%.250s': %s", topic, why);
        http_respond_error(hc, 400, "invalid_pattern", msg);
    } else if (!exists && !topic) {
        http_respond_error(hc, 400, "invalid_argument", "a new queue group needs its 'topic'");
    } else if (exists && topic && strcmp(topic, info.topic)) {
        char msg[600];
        snprintf(msg, sizeof(msg),
                 "queue group '%s' reads topic '%s'; delete it to read another topic", group,
                 info.topic);
        http_respond_error(hc, 409, "conflict", msg);
    } else if (!exists && !td_pattern_is_literal(topic, strlen(topic)) && !http_is_admin(hc)) {
        /* Which topics a pattern reads changes as topics come and go: the Read checked now
         * would not hold later. Until ACLs with prefixed and wildcard patterns say it, only an
         * administrator makes a group over a pattern. */
        http_require(hc, TD_RES_CLUSTER, TD_CLUSTER_NAME, TD_OP_ALTER);
    } else if (!exists && td_pattern_is_literal(topic, strlen(topic)) &&
               !http_require(hc, TD_RES_TOPIC, topic, TD_OP_READ)) {
        /* answered */
    } else if (read_policy(hc, b, &p) &&
               may_write_to(hc, p.dead_letter_topic, was.dead_letter_topic) &&
               may_write_to(hc, p.forward_to, was.forward_to)) {
        TD_INFO("http", "%s queue group %s for %s", exists ? "configuring" : "creating", group,
                net_conn_peer(hc->c));
        queue_admin(hc, exists ? QUEUE_CONFIGURE : QUEUE_CREATE, group, topic, &p,
                    exists ? 200 : 201);
    }
    json_decref(b);
}

static void queues_list(hconn *hc)
{
    td_queue_info *v;
    size_t n;
    int rc = td_queue_list(hc->s->e, &v, &n);
    if (rc)
        return http_respond_td_error(hc, rc);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        if (http_may(hc, TD_RES_GROUP, v[i].group, TD_OP_DESCRIBE))
            json_array_append_new(arr, info_json(&v[i]));
    free(v);
    http_respond_json(hc, 200, json_pack("{s:o}", "queues", arr), NULL);
}

/* ---------------------------------------------------------------------------------------------
 * Receive, and waiting for events
 */
typedef struct qwait {
    net_conn *c;
    net_waiter wait; /* parked in the server's waits until wait_ms, retried every POLL_MS */
    char group[TD_TOPIC_NAME_MAX + 1];
    char consumer[64];
    size_t max;
    int values; /* QWIRE_VALUES_* */
} qwait;

/* Answers 200 with a td_buf written by queue_wire.c, which passes to the connection. */
static void respond_buf(hconn *hc, td_buf *b)
{
    http_respond_raw(hc, 200, "application/json", NULL, (char *)b->p, b->len);
    td_buf_init(b);
}

/* Tries the receive: true when answered (events, or an error). */
static bool try_receive(hconn *hc, const char *group, const char *consumer, size_t max, int values,
                        bool last_try)
{
    td_queue_msg *m = NULL;
    size_t n = 0;
    int rc = td_queue_receive(hc->s->e, group, consumer, max, &m, &n);
    if (rc) {
        http_respond_td_error(hc, rc);
        return true;
    }
    if (n == 0 && !last_try) {
        td_queue_msgs_free(m, n);
        return false;
    }
    td_buf out;
    td_buf_init(&out);
    if (qwire_write_events(&out, m, n, values) == 0)
        respond_buf(hc, &out);
    else
        http_respond_error(hc, 500, "internal", "out of memory");
    td_buf_free(&out);
    td_queue_msgs_free(m, n);
    return true;
}

/* On the loop (net_wait_fn): tries a waiting receive again; answers it when events came or
 * time is up (final: also when the loop stops, with what there is). */
static bool wait_retry(net_waiter *nw, bool final)
{
    qwait *w = (qwait *)((char *)nw - offsetof(qwait, wait));
    hconn *hc = net_conn_data(w->c); /* open: a closing connection cancels its waiters */
    if (!try_receive(hc, w->group, w->consumer, w->max, w->values, final))
        return false;
    hc->qwait = NULL;
    net_wait_cancel(nw);
    http_finish_async(hc);
    free(w);
    return true;
}

void http_queue_wait_close(hconn *hc)
{
    qwait *w = hc->qwait;
    if (!w)
        return;
    hc->qwait = NULL;
    net_wait_cancel(&w->wait);
    free(w);
}

/* Any thread: the log advanced or a queue changed. */
void http_queues_wake(void *arg)
{
    net_wait_wake(((http_server *)arg)->waits);
}

static void queue_receive(hconn *hc, const char *group)
{
    json_t *b = http_body_json(hc, true);
    if (!b)
        return;
    static const char *const allowed[] = {"max", "wait_ms", "consumer", "values", NULL};
    json_t *jmax = json_object_get(b, "max"), *jwait = json_object_get(b, "wait_ms");
    json_t *jcons = json_object_get(b, "consumer"), *jvals = json_object_get(b, "values");
    const char *vals = json_string_value(jvals);
    if (!http_only_keys(hc, b, allowed))
        goto out;
    if (jmax && (!json_is_integer(jmax) || json_integer_value(jmax) < 1 ||
                 json_integer_value(jmax) > MAX_RECEIVE)) {
        http_respond_error(hc, 400, "invalid_argument", "'max' must be 1 to 1000");
        goto out;
    }
    if (jwait && (!json_is_integer(jwait) || json_integer_value(jwait) < 0 ||
                  json_integer_value(jwait) > MAX_WAIT_MS)) {
        http_respond_error(hc, 400, "invalid_argument", "'wait_ms' must be 0 to 60000");
        goto out;
    }
    if (jcons && (!json_is_string(jcons) || json_string_length(jcons) == 0 ||
                  json_string_length(jcons) > 63)) {
        http_respond_error(hc, 400, "invalid_argument",
                           "'consumer' must be a name of 1 to 63 bytes");
        goto out;
    }
    if (jvals &&
        (!vals || (strcmp(vals, "json") && strcmp(vals, "string") && strcmp(vals, "base64")))) {
        http_respond_error(hc, 400, "invalid_argument",
                           "'values' must be json (the default), string or base64");
        goto out;
    }
    size_t max = jmax ? (size_t)json_integer_value(jmax) : 1;
    int64_t wait = jwait ? json_integer_value(jwait) : 0;
    int values = !vals || !strcmp(vals, "json") ? QWIRE_VALUES_JSON
                 : !strcmp(vals, "string")      ? QWIRE_VALUES_STRING
                                                : QWIRE_VALUES_BASE64;
    /* Without a name, the connection is the consumer. */
    char consumer[64];
    snprintf(consumer, sizeof(consumer), "%s",
             jcons ? json_string_value(jcons) : net_conn_peer(hc->c));
    if (try_receive(hc, group, consumer, max, values, wait == 0))
        goto out;
    qwait *w = calloc(1, sizeof(*w));
    if (w)
        net_waiter_init(&w->wait, wait_retry);
    if (!w || net_wait_park(hc->s->waits, &w->wait, hc->c, wait, POLL_MS) != 0) {
        free(w);
        try_receive(hc, group, consumer, max, values, true);
        goto out;
    }
    w->c = hc->c;
    snprintf(w->group, sizeof(w->group), "%s", group);
    snprintf(w->consumer, sizeof(w->consumer), "%s", consumer);
    w->max = max;
    w->values = values;
    /* Events that came between the first try and the parking woke nobody: once more. */
    if (try_receive(hc, group, consumer, max, values, false)) {
        net_wait_cancel(&w->wait);
        free(w);
        goto out;
    }
    hc->qwait = w;
    http_begin_async(hc);
out:
    json_decref(b);
}

/* ---------------------------------------------------------------------------------------------
 * Ack, nack, extend
 */
typedef struct qop {
    net_conn *c;
    const char **ids; /* into text */
    int *results;
    char *text; /* the ids, each NUL-terminated */
    size_t n, used, cap;
    bool failed_only;
    int rc;
} qop;

static void qop_free(qop *op)
{
    if (op) {
        free(op->ids);
        free(op->results);
        free(op->text);
    }
    free(op);
}

/* An outcome for n ids whose text takes at most `bytes` (NULs included); NULL when out of
 * memory. One allocation each for the ids, their results and their text, whatever n. */
static qop *qop_new(size_t n, size_t bytes)
{
    qop *op = calloc(1, sizeof(*op));
    if (!op || !(op->ids = calloc(n, sizeof(char *))) || !(op->results = calloc(n, sizeof(int))) ||
        !(op->text = malloc(bytes))) {
        qop_free(op);
        return NULL;
    }
    op->cap = bytes;
    return op;
}

/* Adds the ids an item names: its text as given for one id (queue_id_parse reads it), the
 * ids of its offsets for a range. The caller sized op for them. */
static void qop_add(qop *op, td_slice text, const qwire_item *it)
{
    if (it->first == it->last) {
        char *w = op->text + op->used;
        memcpy(w, text.p, text.n);
        w[text.n] = 0;
        op->ids[op->n++] = w;
        op->used += text.n + 1;
        return;
    }
    for (int64_t o = it->first; o <= it->last; o++) {
        char *w = op->text + op->used;
        op->used += qwire_item_id(it, o, w) + 1;
        op->ids[op->n++] = w;
    }
}

/* The bytes qop_add needs for an item. */
static size_t item_bytes(td_slice text, const qwire_item *it)
{
    return it->first == it->last ? text.n + 1
                                 : (size_t)(it->last - it->first + 1) * TD_QUEUE_ID_MAX;
}

static void qop_answer(hconn *hc, qop *op)
{
    if (op->rc)
        return http_respond_td_error(hc, op->rc);
    td_buf out;
    td_buf_init(&out);
    if (qwire_write_results(&out, op->ids, op->results, op->n, op->failed_only) == 0)
        respond_buf(hc, &out);
    else
        http_respond_error(hc, 500, "internal", "out of memory");
    td_buf_free(&out);
}

static void qop_done_task(void *arg)
{
    qop *op = arg;
    net_conn *c = op->c;
    hconn *hc = net_conn_closed(c) ? NULL : net_conn_data(c);
    if (hc) {
        qop_answer(hc, op);
        http_finish_async(hc);
    }
    qop_free(op);
    net_conn_unref(c);
}

/* The engine's flusher thread (or the loop, before queue_outcome_async returns): the outcome
 * is durable. */
static void qop_saved(void *arg, int rc)
{
    qop *op = arg;
    op->rc = rc;
    if (net_loop_post(net_conn_loop(op->c), qop_done_task, op) != 0)
        TD_ERROR("http", "cannot post a queue completion: out of memory");
}

/* Applies the outcome op holds (ms -1: none; error NULL: none) and answers, now or once it is
 * durable; takes op. */
static void qop_run(hconn *hc, const char *group, int kind, qop *op, int64_t ms, const char *error)
{
    op->c = hc->c;
    net_conn_ref(hc->c);
    int rc = queue_outcome_async(hc->s->e, group, op->ids, op->n, kind, ms, error, op->results,
                                 qop_saved, op);
    if (rc == 1) { /* answered once saved */
        http_begin_async(hc);
        return;
    }
    net_conn_unref(hc->c);
    op->rc = rc < 0 ? rc : 0;
    qop_answer(hc, op);
    qop_free(op);
}

/* A body of the plain shape, read in place (queue_wire.c): no tree, no object per id. */
static void outcome_fast(hconn *hc, const char *group, int kind, const qwire_outcome *o)
{
    size_t bytes = o->error.n + 1, pos = 0;
    td_slice t;
    qwire_item it;
    while (qwire_ids_next(o, &pos, &t, &it))
        bytes += item_bytes(t, &it);
    qop *op = qop_new(o->n_ids, bytes);
    if (!op)
        return http_respond_error(hc, 500, "internal", "out of memory");
    op->failed_only = o->failed_only;
    for (pos = 0; qwire_ids_next(o, &pos, &t, &it);)
        qop_add(op, t, &it);
    char *error = NULL;
    if (o->has_error) {
        error = op->text + op->used;
        memcpy(error, o->error.p, o->error.n);
        error[o->error.n] = 0;
    }
    qop_run(hc, group, kind, op, o->has_ms ? o->ms : -1, error);
}

static void queue_outcome(hconn *hc, const char *group, int kind)
{
    if (!http_body_is_json(hc))
        return;
    qwire_outcome fast;
    if (qwire_outcome_parse((const char *)hc->body.p, hc->body.len,
                            kind == QUEUE_ACK    ? QWIRE_ACK
                            : kind == QUEUE_NACK ? QWIRE_NACK
                                                 : QWIRE_EXTEND,
                            &fast) == 0)
        return outcome_fast(hc, group, kind, &fast);
    /* Another shape: read with jansson, which names what is wrong (or takes escapes). */
    json_t *b = http_body_json(hc, true);
    if (!b)
        return;
    static const char *const ack_keys[] = {"ids", "results", NULL};
    static const char *const nack_keys[] = {"ids", "delay_ms", "error", "results", NULL};
    static const char *const extend_keys[] = {"ids", "ms", "results", NULL};
    json_t *ids = json_object_get(b, "ids");
    json_t *ms = json_object_get(b, kind == QUEUE_NACK ? "delay_ms" : "ms");
    json_t *err = json_object_get(b, "error");
    json_t *res = json_object_get(b, "results");
    const char *res_s = json_string_value(res);
    qop *op = NULL;
    if (!http_only_keys(hc, b,
                        kind == QUEUE_ACK    ? ack_keys
                        : kind == QUEUE_NACK ? nack_keys
                                             : extend_keys))
        goto out;
    if (!json_is_array(ids) || json_array_size(ids) == 0 || json_array_size(ids) > MAX_IDS) {
        http_respond_error(hc, 400, "invalid_argument",
                           "'ids' must be an array of 1 to 1000 delivery ids");
        goto out;
    }
    if (ms &&
        (!json_is_integer(ms) || json_integer_value(ms) < 0 || json_integer_value(ms) > 86400000)) {
        http_respond_error(hc, 400, "invalid_argument",
                           kind == QUEUE_NACK ? "'delay_ms' must be 0 to 86400000"
                                              : "'ms' must be 0 to 86400000");
        goto out;
    }
    if (err && !json_is_string(err)) {
        http_respond_error(hc, 400, "invalid_argument", "'error' must be a string");
        goto out;
    }
    if (res && (!res_s || (strcmp(res_s, "all") && strcmp(res_s, "failed")))) {
        http_respond_error(hc, 400, "invalid_argument", "'results' must be all or failed");
        goto out;
    }
    /* Each id well-formed first, and the bytes they take: a string that is no delivery id at
     * all is a mistake in the request (a stale or foreign id is an answer: "stale" or
     * "unknown"). */
    size_t n = json_array_size(ids), nids = 0, bytes = 1;
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(ids, i);
        const char *id = json_string_value(v);
        qwire_item it;
        if (!id) {
            http_respond_error(hc, 400, "invalid_argument", "each of 'ids' is a string");
            goto out;
        }
        td_slice t = td_slice_make(id, json_string_length(v));
        if (!qwire_item_parse(id, t.n, &it)) {
            char msg[300];
            snprintf(msg, sizeof(msg),
                     "'%.64s' is not a delivery id (<topic id>.<partition>.<offset>.<delivery>, "
                     "such as 3.0.17.1, as receive gives them) nor a range of them "
                     "(<topic id>.<partition>.<first>-<last>.<delivery>, such as 3.0.17-99.1)",
                     id);
            http_respond_error(hc, 400, "invalid_argument", msg);
            goto out;
        }
        nids += (size_t)(it.last - it.first) + 1;
        bytes += item_bytes(t, &it);
    }
    if (nids > MAX_IDS) {
        http_respond_error(hc, 400, "invalid_argument",
                           "'ids' must name 1 to 1000 delivery ids (a range counts its offsets)");
        goto out;
    }
    if (!(op = qop_new(nids, bytes))) {
        http_respond_error(hc, 500, "internal", "out of memory");
        goto out;
    }
    op->failed_only = res_s && !strcmp(res_s, "failed");
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(ids, i);
        td_slice t = td_slice_make(json_string_value(v), json_string_length(v));
        qwire_item it;
        qwire_item_parse((const char *)t.p, t.n, &it);
        qop_add(op, t, &it);
    }
    qop_run(hc, group, kind, op, ms ? json_integer_value(ms) : -1, json_string_value(err));
    op = NULL;
out:
    qop_free(op);
    json_decref(b);
}

/* ---------------------------------------------------------------------------------------------
 * Routing: /v1/queues[/{group}[/{action}]]
 */
void http_route_queues(hconn *hc, const char *group, const char *action)
{
    if (!group) {
        if (http_method_is(hc, "GET") || http_method_is(hc, "HEAD"))
            return queues_list(hc);
        return http_respond_method_not_allowed(hc, "GET, HEAD");
    }
    if (!action) {
        if (http_method_is(hc, "GET") || http_method_is(hc, "HEAD"))
            return answer_info(hc, 200, group);
        if (http_method_is(hc, "PUT"))
            return queue_put(hc, group);
        if (http_method_is(hc, "DELETE")) {
            TD_INFO("http", "deleting queue group %s for %s", group, net_conn_peer(hc->c));
            return queue_admin(hc, QUEUE_DELETE, group, NULL, NULL, 204);
        }
        return http_respond_method_not_allowed(hc, "GET, HEAD, PUT, DELETE");
    }
    static const char *const actions[] = {"receive", "ack", "nack", "extend"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(action, actions[i]) != 0)
            continue;
        if (!http_method_is(hc, "POST"))
            return http_respond_method_not_allowed(hc, "POST");
        /* Receiving, and settling what was received, read the group's topic (not described:
         * that counts every entry of the group, at each call). */
        char topic[TD_TOPIC_NAME_MAX + 1];
        int rc = queue_group_topic(hc->s->e, group, topic, sizeof(topic));
        if (rc)
            return http_respond_td_error(hc, rc);
        if (td_pattern_is_literal(topic, strlen(topic))
                ? !http_require(hc, TD_RES_TOPIC, topic, TD_OP_READ)
                : !http_require(hc, TD_RES_CLUSTER, TD_CLUSTER_NAME, TD_OP_ALTER))
            return;
        if (i == 0)
            return queue_receive(hc, group);
        return queue_outcome(hc, group, i == 1 ? QUEUE_ACK : i == 2 ? QUEUE_NACK : QUEUE_EXTEND);
    }
    http_respond_error(hc, 404, "not_found", "no such path");
}
