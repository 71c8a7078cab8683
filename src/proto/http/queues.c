/*
 * queues.c: the REST API's queue groups (docs/queues.md, docs/http-api.md):
 *   PUT    /v1/queues/{group}          create, or change the policy of, a group
 *   GET    /v1/queues[/{group}]        list, describe (depth, in flight, waiting, totals)
 *   DELETE /v1/queues/{group}
 *   POST   /v1/queues/{group}/receive  {"max", "wait_ms", "consumer", "values"}
 *   POST   /v1/queues/{group}/ack      {"ids"}
 *   POST   /v1/queues/{group}/nack     {"ids", "delay_ms", "error"}
 *   POST   /v1/queues/{group}/extend   {"ids", "ms"}
 *
 * A receive with wait_ms waits on the connection's loop until events can be delivered or the
 * time is up: it tries again when the log advances or the queue changes (acks, nacks, deadlines:
 * both wake the loop's waiting receives at once), and every POLL_MS otherwise (redeliveries fall
 * due by the clock). Acks, nacks and extends answer once the queue worker has saved them.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/authz.h"
#include "broker/pattern.h"
#include "broker/queue.h"
#include "proto/http/http_int.h"

#define MAX_RECEIVE 1000
#define MAX_WAIT_MS 60000
#define POLL_MS 100
#define MAX_IDS 1000

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

/* The policy fields of a PUT body applied to *p. */
static bool read_policy(hconn *hc, json_t *b, td_queue_policy *p)
{
    static const struct {
        const char *name, *key;
    } map[] = {{"ack_timeout_ms", "ack.timeout.ms"},
               {"max_deliveries", "max.deliveries"},
               {"dead_letter_topic", "dead.letter.topic"},
               {"ordering", "ordering"},
               {"max_in_flight", "max.in.flight"},
               {"max_in_flight_per_consumer", "max.in.flight.per.consumer"},
               {"start", "start"}};
    static const struct {
        const char *name, *key;
    } bmap[] = {{"initial_ms", "backoff.initial.ms"},
                {"multiplier", "backoff.multiplier"},
                {"max_ms", "backoff.max.ms"},
                {"jitter", "backoff.jitter"}};
    static const char *const allowed[] = {"topic",
                                          "ack_timeout_ms",
                                          "max_deliveries",
                                          "backoff",
                                          "dead_letter_topic",
                                          "ordering",
                                          "max_in_flight",
                                          "max_in_flight_per_consumer",
                                          "start",
                                          NULL};
    static const char *const ballowed[] = {"initial_ms", "multiplier", "max_ms", "jitter", NULL};
    if (!http_only_keys(hc, b, allowed))
        return false;
    td_config_entry en[16];
    char bufs[16][TD_TOPIC_NAME_MAX + 1];
    size_t n = 0;
    for (size_t i = 0; i < TD_ARRAY_LEN(map); i++)
        if (!field(hc, json_object_get(b, map[i].name), map[i].name, map[i].key, en, bufs[n],
                   sizeof(bufs[n]), &n))
            return false;
    json_t *bo = json_object_get(b, "backoff");
    if (bo && !json_is_object(bo)) {
        http_respond_error(hc, 400, "invalid_argument",
                           "'backoff' must be an object: {\"initial_ms\", \"multiplier\", "
                           "\"max_ms\", \"jitter\"}");
        return false;
    }
    if (bo && !http_only_keys(hc, bo, ballowed))
        return false;
    for (size_t i = 0; bo && i < TD_ARRAY_LEN(bmap); i++)
        if (!field(hc, json_object_get(bo, bmap[i].name), bmap[i].name, bmap[i].key, en, bufs[n],
                   sizeof(bufs[n]), &n))
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
    td_queue_policy p;
    if (exists)
        p = info.policy;
    else
        td_queue_policy_init(&p);
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
    } else if (read_policy(hc, b, &p)) {
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
    http_loop_link link; /* in the server's waits */
    char group[TD_TOPIC_NAME_MAX + 1];
    char consumer[64];
    size_t max;
    bool values_json;
    int64_t deadline; /* loop time (ms) */
    net_timer timer;
} qwait;

static json_t *msgs_json(const td_queue_msg *m, size_t n, bool values_json)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_pack("{s:s}", "id", m[i].id);
        json_t *ev = http_event_json(m[i].topic, &m[i].event, values_json);
        json_object_update(o, ev);
        json_decref(ev);
        json_object_set_new(o, "deliveries", json_integer(m[i].deliveries));
        json_array_append_new(arr, o);
    }
    return json_pack("{s:o}", "events", arr);
}

/* Tries the receive: true when answered (events, or an error). */
static bool try_receive(hconn *hc, const char *group, const char *consumer, size_t max,
                        bool values_json, bool last_try)
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
    http_respond_json(hc, 200, msgs_json(m, n, values_json), NULL);
    td_queue_msgs_free(m, n);
    return true;
}

static void wait_unlink(qwait *w)
{
    http_loop_link_remove(&w->link);
    net_timer_stop(net_conn_loop(w->c), &w->timer);
}

static void wait_timer(void *arg);

/* On the loop: tries a waiting receive again; answers it when events came or time is up. */
static void wait_retry(qwait *w)
{
    hconn *hc = net_conn_closed(w->c) ? NULL : net_conn_data(w->c);
    if (!hc)
        return;
    net_loop *l = net_conn_loop(w->c);
    int64_t now = net_loop_now(l);
    /* A stopping loop fires every timer at once: the wait ends with what there is. */
    bool last = now >= w->deadline || net_loop_stopping(l);
    if (!try_receive(hc, w->group, w->consumer, w->max, w->values_json, last)) {
        int64_t left = w->deadline - now;
        net_timer_start(l, &w->timer, left < POLL_MS ? left : POLL_MS, wait_timer, w);
        return;
    }
    hc->qwait = NULL;
    wait_unlink(w);
    http_finish_async(hc);
    free(w);
}

static void wait_timer(void *arg)
{
    wait_retry(arg);
}

void http_queue_wait_close(hconn *hc)
{
    qwait *w = hc->qwait;
    if (!w)
        return;
    hc->qwait = NULL;
    wait_unlink(w);
    free(w);
}

void http_queue_wait_wake(hconn *hc)
{
    if (hc->qwait)
        wait_retry(hc->qwait);
}

/* Any thread: the log advanced or a queue changed. */
void http_queues_wake(void *arg)
{
    http_loop_set_wake(&((http_server *)arg)->waits);
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
    if (jvals && (!vals || (strcmp(vals, "json") && strcmp(vals, "string")))) {
        http_respond_error(hc, 400, "invalid_argument",
                           "'values' must be json (the default) or string");
        goto out;
    }
    size_t max = jmax ? (size_t)json_integer_value(jmax) : 1;
    int64_t wait = jwait ? json_integer_value(jwait) : 0;
    bool values_json = !vals || !strcmp(vals, "json");
    /* Without a name, the connection is the consumer. */
    char consumer[64];
    snprintf(consumer, sizeof(consumer), "%s",
             jcons ? json_string_value(jcons) : net_conn_peer(hc->c));
    if (try_receive(hc, group, consumer, max, values_json, wait == 0))
        goto out;
    qwait *w = calloc(1, sizeof(*w));
    http_loop_slot *slot = w ? http_loop_slot_get(&hc->s->waits, net_conn_loop(hc->c)) : NULL;
    if (!slot) {
        free(w);
        try_receive(hc, group, consumer, max, values_json, true);
        goto out;
    }
    w->c = hc->c;
    snprintf(w->group, sizeof(w->group), "%s", group);
    snprintf(w->consumer, sizeof(w->consumer), "%s", consumer);
    w->max = max;
    w->values_json = values_json;
    w->timer = (net_timer)NET_TIMER_INIT;
    net_loop *l = net_conn_loop(hc->c);
    w->deadline = net_loop_now(l) + wait;
    http_loop_link_add(slot, &w->link, hc->c);
    hc->qwait = w;
    http_begin_async(hc);
    net_timer_start(l, &w->timer, wait < POLL_MS ? wait : POLL_MS, wait_timer, w);
out:
    json_decref(b);
}

/* ---------------------------------------------------------------------------------------------
 * Ack, nack, extend
 */
typedef struct qop {
    net_conn *c;
    char **ids;
    int *results;
    size_t n;
    int rc;
} qop;

static void qop_free(qop *op)
{
    for (size_t i = 0; op && i < op->n; i++)
        free(op->ids[i]);
    if (op) {
        free(op->ids);
        free(op->results);
    }
    free(op);
}

static void qop_answer(hconn *hc, qop *op)
{
    if (op->rc)
        return http_respond_td_error(hc, op->rc);
    json_t *arr = json_array();
    for (size_t i = 0; i < op->n; i++) {
        int r = op->results[i];
        json_array_append_new(arr, json_pack("{s:s,s:s}", "id", op->ids[i], "result",
                                             r == 0           ? "ok"
                                             : r == TD_ESTALE ? "stale"
                                                              : "unknown"));
    }
    http_respond_json(hc, 200, json_pack("{s:o}", "results", arr), NULL);
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

static void queue_outcome(hconn *hc, const char *group, int kind)
{
    json_t *b = http_body_json(hc, true);
    if (!b)
        return;
    static const char *const ack_keys[] = {"ids", NULL};
    static const char *const nack_keys[] = {"ids", "delay_ms", "error", NULL};
    static const char *const extend_keys[] = {"ids", "ms", NULL};
    json_t *ids = json_object_get(b, "ids");
    json_t *ms = json_object_get(b, kind == QUEUE_NACK ? "delay_ms" : "ms");
    json_t *err = json_object_get(b, "error");
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
    size_t n = json_array_size(ids);
    op = calloc(1, sizeof(*op));
    if (!op || !(op->ids = calloc(n, sizeof(char *))) || !(op->results = calloc(n, sizeof(int)))) {
        http_respond_error(hc, 500, "internal", "out of memory");
        goto out;
    }
    op->n = n;
    for (size_t i = 0; i < n; i++) {
        const char *id = json_string_value(json_array_get(ids, i));
        if (!id) {
            http_respond_error(hc, 400, "invalid_argument", "each of 'ids' is a string");
            goto out;
        }
        /* A string that is no delivery id at all is a mistake in the request (a stale or
         * foreign id is an answer: "stale" or "unknown"). */
        int64_t t, o;
        int32_t p, d;
        if (!queue_id_parse(id, &t, &p, &o, &d)) {
            char msg[200];
            snprintf(msg, sizeof(msg),
                     "'%.64s' is not a delivery id (<topic id>.<partition>.<offset>.<delivery>, "
                     "such as 3.0.17.1, as receive gives them)",
                     id);
            http_respond_error(hc, 400, "invalid_argument", msg);
            goto out;
        }
        if (!(op->ids[i] = strdup(id))) {
            http_respond_error(hc, 500, "internal", "out of memory");
            goto out;
        }
    }
    op->c = hc->c;
    net_conn_ref(hc->c);
    int rc = queue_outcome_async(hc->s->e, group, (const char *const *)op->ids, n, kind,
                                 ms ? json_integer_value(ms) : -1, json_string_value(err),
                                 op->results, qop_saved, op);
    if (rc == 1) { /* answered once saved */
        http_begin_async(hc);
        op = NULL;
        goto out;
    }
    net_conn_unref(hc->c);
    op->rc = rc < 0 ? rc : 0;
    qop_answer(hc, op);
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
