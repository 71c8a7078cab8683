/*
 * routes.c: the REST API's routes (docs/http-api.md): health and readiness, and topics (list,
 * create, describe, alter, delete). Handlers answer through http_respond_*; every error is a
 * JSON object {"error": {"code", "message", "status"}}.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/authz.h"
#include "broker/broker.h"
#include "proto/http/http_int.h"

#define MAX_SEGMENTS 8
#define SEGMENT_MAX 512

typedef struct route_ctx {
    hconn *hc;
    char seg[MAX_SEGMENTS][SEGMENT_MAX]; /* decoded path segments */
    int nseg;
} route_ctx;

bool http_method_is(const hconn *hc, const char *m)
{
    return hc->req.method.n == strlen(m) && memcmp(hc->req.method.p, m, hc->req.method.n) == 0;
}

/* Splits the path into decoded segments; false (after answering) for a bad path. */
static bool split_path(route_ctx *rc)
{
    td_slice p = rc->hc->req.path;
    size_t i = 0;
    rc->nseg = 0;
    while (i < p.n) {
        while (i < p.n && p.p[i] == '/')
            i++;
        if (i >= p.n)
            break;
        size_t j = i;
        while (j < p.n && p.p[j] != '/')
            j++;
        if (rc->nseg == MAX_SEGMENTS) {
            http_respond_error(rc->hc, 404, "not_found", "no such path");
            return false;
        }
        if (http_pct_decode(td_slice_make(p.p + i, j - i), false, rc->seg[rc->nseg], SEGMENT_MAX) <
            0) {
            http_respond_error(rc->hc, 400, "bad_request", "a bad percent-escape in the path");
            return false;
        }
        rc->nseg++;
        i = j;
    }
    return true;
}

bool http_body_is_json(hconn *hc)
{
    /* JSON, or no type (clients that send none). Not the types an HTML form can post from
     * another site without asking (x-www-form-urlencoded, which `curl -d` sends, multipart,
     * text/plain): see guard.c. */
    const td_slice *ct = http_header_get(&hc->req, "content-type");
    if (ct && !http_content_type_json(*ct)) {
        http_respond_error(hc, 415, "unsupported_media_type",
                           "the request body must be sent as Content-Type: application/json "
                           "(curl: --json, or -H 'Content-Type: application/json' with -d)");
        return false;
    }
    return true;
}

void http_respond_invalid_json(hconn *hc, size_t pos, const char *why)
{
    int line, column;
    char msg[300];
    http_json_line_column(hc->body.p, hc->body.len, pos, &line, &column);
    snprintf(msg, sizeof(msg), "invalid JSON at line %d, column %d: %s", line, column, why);
    http_respond_error(hc, 400, "invalid_json", msg);
}

json_t *http_json_parse(hconn *hc, td_slice text, size_t flags)
{
    uint64_t cost;
    size_t at;
    const char *why;
    size_t base = text.n && hc->body.p ? (size_t)(text.p - hc->body.p) : 0;
    if (http_json_measure(text.p, text.n, &cost, &at, &why) != 0) {
        http_respond_invalid_json(hc, base + TD_MIN(at + 1, text.n), why);
        return NULL;
    }
    uint64_t budget = (uint64_t)HTTP_JSON_FACTOR * hc->body.len + HTTP_JSON_SLACK;
    if (cost > budget) {
        char msg[300];
        snprintf(msg, sizeof(msg),
                 "this JSON would take about %" PRIu64 " MiB of memory to parse, more than %d "
                 "times its size: send large values as value_text or value_b64 (one string each)",
                 (cost + (1u << 20) - 1) >> 20, HTTP_JSON_FACTOR);
        http_respond_error(hc, 413, "body_too_large", msg);
        return NULL;
    }
    json_error_t err;
    json_t *j = json_loadb((const char *)text.p, text.n, JSON_REJECT_DUPLICATES | flags, &err);
    if (!j)
        http_respond_invalid_json(hc, base + (size_t)err.position, err.text);
    return j;
}

/* The request body as JSON (an object when object_only); NULL after answering. */
json_t *http_body_json(hconn *hc, bool object_only)
{
    if (!http_body_is_json(hc))
        return NULL;
    json_t *j = http_json_parse(hc, td_buf_slice(&hc->body), 0);
    if (!j)
        return NULL;
    if (object_only && !json_is_object(j)) {
        json_decref(j);
        http_respond_error(hc, 400, "invalid_json", "the request body must be a JSON object");
        return NULL;
    }
    return j;
}

bool http_only_keys(hconn *hc, json_t *obj, const char *const *allowed)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        bool ok = false;
        for (size_t i = 0; allowed[i] && !ok; i++)
            ok = strcmp(k, allowed[i]) == 0;
        if (!ok) {
            char msg[300];
            snprintf(msg, sizeof(msg), "unknown field '%.200s'", k);
            http_respond_error(hc, 400, "invalid_argument", msg);
            return false;
        }
    }
    return true;
}

/* ---------------------------------------------------------------------------------------------
 * Health
 */
static void route_health(hconn *hc)
{
    if (!http_method_is(hc, "GET") && !http_method_is(hc, "HEAD"))
        return http_respond_method_not_allowed(hc, "GET, HEAD");
    http_respond_json(hc, 200, json_pack("{s:s}", "status", "ok"), NULL);
}

/* GET /metrics: the registry in the Prometheus text format. */
static void http_route_metrics(hconn *hc)
{
    if (!http_method_is(hc, "GET") && !http_method_is(hc, "HEAD"))
        return http_respond_method_not_allowed(hc, "GET, HEAD");
    td_metrics_out out = {0};
    if (td_metrics_render(broker_metrics(hc->s->e), &out) != 0) {
        td_buf_free(&out.buf);
        return http_respond_error(hc, 500, "internal", "out of memory rendering the metrics");
    }
    size_t len = out.buf.len;
    http_respond_raw(hc, 200, "text/plain; version=0.0.4; charset=utf-8", NULL,
                     (char *)out.buf.p, len);
}

static void route_ready(hconn *hc)
{
    if (!http_method_is(hc, "GET") && !http_method_is(hc, "HEAD"))
        return http_respond_method_not_allowed(hc, "GET, HEAD");
    bool ready = http_server_ready(hc->s);
    http_respond_json(hc, ready ? 200 : 503,
                      json_pack("{s:s}", "status", ready ? "ready" : "starting"), NULL);
}

/* ---------------------------------------------------------------------------------------------
 * Topics
 */
/* Who a log line says acted. */
static const char *actor(const hconn *hc)
{
    td_principal p;
    http_principal(hc, &p);
    return p.user ? p.user : "ANONYMOUS";
}

static json_t *config_json(const td_topic_config *cfg)
{
    json_t *o = json_object();
    const char *const *keys = td_topic_config_keys();
    char buf[128];
    for (size_t i = 0; keys[i]; i++)
        if (td_topic_config_get(cfg, keys[i], buf, sizeof(buf)) == 0)
            json_object_set_new(o, keys[i], json_string(buf));
    return o;
}

static json_t *topic_json(hconn *hc, const td_topic_info *t, bool detail)
{
    json_t *o = json_pack("{s:s,s:i,s:I}", "name", t->name, "partition_count", t->partitions,
                          "created_ms", (json_int_t)t->created_ms);
    if (o && t->internal)
        json_object_set_new(o, "internal", json_true());
    if (o && t->system)
        json_object_set_new(o, "system", json_true());
    if (!detail)
        return o;
    if (http_may(hc, TD_RES_TOPIC, t->name, TD_OP_DESCRIBE_CONFIGS))
        json_object_set_new(o, "config", config_json(&t->config));
    json_t *parts = json_array();
    for (int32_t i = 0; i < t->partitions; i++) {
        td_partition_info pi;
        if (td_partition_describe(hc->s->e, t->name, i, &pi) != 0)
            continue;
        json_t *p = json_pack(
            "{s:i,s:I,s:I,s:I,s:I,s:i,s:b}", "partition", pi.partition, "log_start_offset",
            (json_int_t)pi.log_start_offset, "high_watermark", (json_int_t)pi.high_watermark,
            "log_end_offset", (json_int_t)pi.log_end_offset, "size_bytes",
            (json_int_t)pi.size_bytes, "segments", pi.segments, "offline", pi.offline != 0);
        if (pi.offline)
            json_object_set_new(p, "error", json_string(pi.error));
        if (pi.compacted)
            json_object_set_new(
                p, "compaction",
                json_pack("{s:f,s:I,s:I,s:I,s:I}", "dirty_ratio", pi.dirty_ratio,
                          "cleanable_bytes", (json_int_t)pi.cleanable_bytes, "first_dirty_offset",
                          (json_int_t)pi.first_dirty_offset, "cleaner_lag_ms",
                          (json_int_t)pi.cleaner_lag_ms, "reclaimed_bytes",
                          (json_int_t)pi.reclaimed_bytes));
        json_array_append_new(parts, p);
    }
    json_object_set_new(o, "partitions", parts);
    return o;
}

static void topics_list(hconn *hc)
{
    td_topic_info *all = NULL;
    size_t n = 0;
    /* The broker's internal state topics and its system topics ($sys.*) only when asked for
     * (?internal=true), and then only those the principal may Describe, like any topic. */
    char internal[8] = "";
    int q = http_query_get(hc->req.query, "internal", internal, sizeof(internal));
    if (q < 0 || (q > 0 && strcmp(internal, "true") != 0 && strcmp(internal, "false") != 0))
        return http_respond_error(hc, 400, "invalid_argument", "'internal' is true or false");
    int rc = q > 0 && strcmp(internal, "true") == 0 ? td_topic_list_all(hc->s->e, &all, &n)
                                                    : td_topic_list(hc->s->e, &all, &n);
    if (rc)
        return http_respond_td_error(hc, rc);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        if (http_may(hc, TD_RES_TOPIC, all[i].name, TD_OP_DESCRIBE))
            json_array_append_new(arr, topic_json(hc, &all[i], false));
    free(all);
    http_respond_json(hc, 200, json_pack("{s:o}", "topics", arr), NULL);
}

/* The most keys one request may set: every topic key (41) and some room. */
#define MAX_CONFIG_KEYS 64

/* Reads a "config" object of string (or number or boolean) values into entries; null means
 * the default. False after answering 400. Strings point into obj or into bufs. */
static bool read_config(hconn *hc, json_t *cfg, td_config_entry *entries, char (*bufs)[64],
                        size_t cap, size_t *n)
{
    *n = 0;
    if (!cfg)
        return true;
    if (!json_is_object(cfg)) {
        http_respond_error(hc, 400, "invalid_argument", "'config' must be an object");
        return false;
    }
    td_topic_config defaults;
    td_topic_config_init(&defaults);
    const char *k;
    json_t *v;
    json_object_foreach(cfg, k, v)
    {
        if (*n == cap) {
            http_respond_error(hc, 400, "invalid_argument", "too many configuration keys");
            return false;
        }
        const char *val = NULL;
        if (json_is_string(v)) {
            val = json_string_value(v);
        } else if (json_is_integer(v)) {
            snprintf(bufs[*n], 64, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
            val = bufs[*n];
        } else if (json_is_boolean(v)) {
            val = json_is_true(v) ? "true" : "false";
        } else if (json_is_null(v)) {
            if (td_topic_config_get(&defaults, k, bufs[*n], 64) != 0) {
                char msg[300];
                snprintf(msg, sizeof(msg), "unknown configuration key '%.200s'", k);
                http_respond_error(hc, 400, "invalid_config", msg);
                return false;
            }
            val = bufs[*n];
        } else {
            char msg[300];
            snprintf(msg, sizeof(msg), "configuration value of '%.200s' must be a string", k);
            http_respond_error(hc, 400, "invalid_config", msg);
            return false;
        }
        entries[(*n)++] = (td_config_entry){k, val};
    }
    return true;
}

static void topic_answer(hconn *hc, int status, const char *name)
{
    td_topic_info info;
    int rc = td_topic_describe(hc->s->e, name, &info);
    if (rc)
        return http_respond_td_error(hc, rc);
    http_respond_json(hc, status, topic_json(hc, &info, true), NULL);
}

static void topics_create(hconn *hc)
{
    json_t *b = http_body_json(hc, true);
    if (!b)
        return;
    static const char *const allowed[] = {"name", "partitions", "config", NULL};
    td_config_entry entries[MAX_CONFIG_KEYS];
    char bufs[MAX_CONFIG_KEYS][64];
    size_t n = 0;
    json_t *name = json_object_get(b, "name"), *parts = json_object_get(b, "partitions");
    if (!http_only_keys(hc, b, allowed))
        goto out;
    if (!json_is_string(name)) {
        http_respond_error(hc, 400, "invalid_argument", "'name' (a string) is required");
        goto out;
    }
    if (parts && !json_is_integer(parts)) {
        http_respond_error(hc, 400, "invalid_argument", "'partitions' must be an integer");
        goto out;
    }
    json_int_t np = parts ? json_integer_value(parts) : hc->s->cfg.default_partitions;
    if (np < 1 || np > 100000) {
        http_respond_error(hc, 400, "invalid_argument", "'partitions' must be 1 to 100000");
        goto out;
    }
    if (!read_config(hc, json_object_get(b, "config"), entries, bufs, MAX_CONFIG_KEYS, &n))
        goto out;
    /* Kafka's CreateTopics: Create on the cluster, or on the topic itself. */
    if (!http_may(hc, TD_RES_CLUSTER, TD_CLUSTER_NAME, TD_OP_CREATE) &&
        !http_require(hc, TD_RES_TOPIC, json_string_value(name), TD_OP_CREATE))
        goto out;
    int rc = td_topic_create(hc->s->e, json_string_value(name), (int32_t)np, entries, n);
    if (rc) {
        http_respond_td_error(hc, rc);
        goto out;
    }
    TD_INFO("http", "created topic %s with %" PRId64 " partitions for %s (user %s)",
            json_string_value(name), (int64_t)np, net_conn_peer(hc->c), actor(hc));
    topic_answer(hc, 201, json_string_value(name));
out:
    json_decref(b);
}

static void topic_alter(hconn *hc, const char *topic)
{
    json_t *b = http_body_json(hc, true);
    if (!b)
        return;
    static const char *const allowed[] = {"partitions", "config", NULL};
    td_config_entry entries[MAX_CONFIG_KEYS];
    char bufs[MAX_CONFIG_KEYS][64];
    size_t n = 0;
    json_t *parts = json_object_get(b, "partitions");
    if (!http_only_keys(hc, b, allowed) ||
        !read_config(hc, json_object_get(b, "config"), entries, bufs, MAX_CONFIG_KEYS, &n))
        goto out;
    if (parts && !json_is_integer(parts)) {
        http_respond_error(hc, 400, "invalid_argument", "'partitions' must be an integer");
        goto out;
    }
    /* Kafka's CreatePartitions needs Alter on the topic. */
    if (parts && !http_require(hc, TD_RES_TOPIC, topic, TD_OP_ALTER))
        goto out;
    td_topic_info info;
    int rc = td_topic_describe(hc->s->e, topic, &info);
    if (rc == 0 && n > 0)
        rc = td_topic_alter(hc->s->e, topic, entries, n);
    if (rc == 0 && parts && json_integer_value(parts) != info.partitions) {
        json_int_t np = json_integer_value(parts);
        if (np < info.partitions) {
            http_respond_error(hc, 400, "invalid_argument",
                               "a topic's partitions can be added, never removed");
            goto out;
        }
        if (np > 100000) {
            http_respond_error(hc, 400, "invalid_argument", "'partitions' must be at most 100000");
            goto out;
        }
        rc = td_topic_add_partitions(hc->s->e, topic, (int32_t)np);
    }
    if (rc) {
        http_respond_td_error(hc, rc);
        goto out;
    }
    topic_answer(hc, 200, topic);
out:
    json_decref(b);
}

static void route_topics(route_ctx *rc)
{
    hconn *hc = rc->hc;
    if (rc->nseg == 2) {
        if (http_method_is(hc, "GET") || http_method_is(hc, "HEAD"))
            return topics_list(hc);
        if (http_method_is(hc, "POST"))
            return topics_create(hc);
        return http_respond_method_not_allowed(hc, "GET, HEAD, POST");
    }
    if (rc->nseg == 4 && !strcmp(rc->seg[3], "events"))
        return http_route_events(hc, rc->seg[2]);
    if (rc->nseg == 4 && !strcmp(rc->seg[3], "requests"))
        return http_route_requests(hc, rc->seg[2]);
    if (rc->nseg == 5 && !strcmp(rc->seg[3], "keys"))
        return http_route_key(hc, rc->seg[2], rc->seg[4], strlen(rc->seg[4]));
    if (rc->nseg == 6 && !strcmp(rc->seg[3], "keys") && !strcmp(rc->seg[5], "events"))
        return http_route_key_events(hc, rc->seg[2], rc->seg[4], strlen(rc->seg[4]));
    if (rc->nseg == 8 && !strcmp(rc->seg[3], "partitions") && !strcmp(rc->seg[5], "offsets") &&
        !strcmp(rc->seg[7], "caused"))
        return http_route_caused(hc, rc->seg[2], rc->seg[4], rc->seg[6]);
    if (rc->nseg == 6 && !strcmp(rc->seg[3], "tags") && !strcmp(rc->seg[5], "events"))
        return http_route_index_events(hc, rc->seg[2], true, rc->seg[4], strlen(rc->seg[4]));
    if (rc->nseg == 4 && !strcmp(rc->seg[3], "redrive")) {
        if (!http_method_is(hc, "POST"))
            return http_respond_method_not_allowed(hc, "POST");
        return http_redrive_start(hc, rc->seg[2]);
    }
    if (rc->nseg == 3) {
        const char *topic = rc->seg[2];
        if (http_method_is(hc, "GET") || http_method_is(hc, "HEAD"))
            return topic_answer(hc, 200, topic);
        if (http_method_is(hc, "PATCH"))
            return topic_alter(hc, topic);
        if (http_method_is(hc, "DELETE")) {
            int r = td_topic_delete(hc->s->e, topic);
            if (r)
                return http_respond_td_error(hc, r);
            TD_INFO("http", "deleted topic %s for %s (user %s)", topic, net_conn_peer(hc->c),
                    actor(hc));
            return http_respond_json(hc, 204, NULL, NULL);
        }
        return http_respond_method_not_allowed(hc, "GET, HEAD, PATCH, DELETE");
    }
    http_respond_error(hc, 404, "not_found", "no such path");
}

/* The template of a /v1 path, for metrics: names in the path become placeholders. */
static const char *v1_template(const route_ctx *rc)
{
    bool topics = !strcmp(rc->seg[1], "topics"), groups = !strcmp(rc->seg[1], "groups");
    if (topics && rc->nseg == 2)
        return "/v1/topics";
    if (topics && rc->nseg == 3)
        return "/v1/topics/{topic}";
    if (topics && rc->nseg == 4 && !strcmp(rc->seg[3], "events"))
        return "/v1/topics/{topic}/events";
    if (topics && rc->nseg == 4 && !strcmp(rc->seg[3], "requests"))
        return "/v1/topics/{topic}/requests";
    if (topics && rc->nseg == 5 && !strcmp(rc->seg[3], "keys"))
        return "/v1/topics/{topic}/keys/{key}";
    if (topics && rc->nseg == 6 && !strcmp(rc->seg[3], "keys") && !strcmp(rc->seg[5], "events"))
        return "/v1/topics/{topic}/keys/{key}/events";
    if (topics && rc->nseg == 6 && !strcmp(rc->seg[3], "tags") && !strcmp(rc->seg[5], "events"))
        return "/v1/topics/{topic}/tags/{tag}/events";
    if (topics && rc->nseg == 4 && !strcmp(rc->seg[3], "redrive"))
        return "/v1/topics/{topic}/redrive";
    if (topics && rc->nseg == 8 && !strcmp(rc->seg[3], "partitions") &&
        !strcmp(rc->seg[5], "offsets") && !strcmp(rc->seg[7], "caused"))
        return "/v1/topics/{topic}/partitions/{partition}/offsets/{offset}/caused";
    if (rc->nseg == 3 && !strcmp(rc->seg[1], "traces"))
        return "/v1/traces/{id}";
    if (!strcmp(rc->seg[1], "redrives") && rc->nseg <= 3)
        return rc->nseg == 2 ? "/v1/redrives" : "/v1/redrives/{id}";
    if (groups && rc->nseg == 2)
        return "/v1/groups";
    if (groups && rc->nseg == 3)
        return "/v1/groups/{group}";
    if (groups && rc->nseg == 4 && !strcmp(rc->seg[3], "reset"))
        return "/v1/groups/{group}/reset";
    if (rc->nseg == 2 && !strcmp(rc->seg[1], "subscribe"))
        return "/v1/subscribe";
    if (!strcmp(rc->seg[1], "users")) {
        if (rc->nseg == 2)
            return "/v1/users";
        if (rc->nseg == 3)
            return "/v1/users/{name}";
        if (rc->nseg == 4 && !strcmp(rc->seg[3], "password"))
            return "/v1/users/{name}/password";
    }
    if (!strcmp(rc->seg[1], "tokens") && rc->nseg <= 3)
        return rc->nseg == 2 ? "/v1/tokens" : "/v1/tokens/{id}";
    if (rc->nseg == 2 && !strcmp(rc->seg[1], "acls"))
        return "/v1/acls";
    if (rc->nseg == 2 && !strcmp(rc->seg[1], "cluster"))
        return "/v1/cluster";
    if (!strcmp(rc->seg[1], "queues")) {
        static const char *const actions[] = {"receive", "ack", "nack", "extend"};
        static const char *const templates[] = {
            "/v1/queues/{group}/receive", "/v1/queues/{group}/ack", "/v1/queues/{group}/nack",
            "/v1/queues/{group}/extend"};
        if (rc->nseg == 2)
            return "/v1/queues";
        if (rc->nseg == 3)
            return "/v1/queues/{group}";
        for (size_t i = 0; rc->nseg == 4 && i < TD_ARRAY_LEN(actions); i++)
            if (!strcmp(rc->seg[3], actions[i]))
                return templates[i];
    }
    return NULL;
}

void http_route(hconn *hc)
{
    /* The schema registry's API under its prefix (registry.c) answers in its own shapes. */
    if (http_route_registry(hc))
        return;
    route_ctx rc = {.hc = hc};
    if (!split_path(&rc))
        return;
    /* Probes stay open on every listener: /health and /ready tell nothing about the data. */
    bool open = rc.nseg == 1 && (!strcmp(rc.seg[0], "health") || !strcmp(rc.seg[0], "ready"));
    if (!http_authenticate(hc, open))
        return;
    if (rc.nseg == 1 && !strcmp(rc.seg[0], "health")) {
        hc->route = "/health";
        return route_health(hc);
    }
    if (rc.nseg == 1 && !strcmp(rc.seg[0], "ready")) {
        hc->route = "/ready";
        return route_ready(hc);
    }
    if (rc.nseg == 1 && !strcmp(rc.seg[0], "metrics")) {
        hc->route = "/metrics";
        if (!http_authorize_route(hc, NULL))
            return;
        return http_route_metrics(hc);
    }
    if (rc.nseg >= 2 && !strcmp(rc.seg[0], "v1"))
        hc->route = v1_template(&rc);
    if (!http_authorize_route(hc, rc.nseg > 2 ? rc.seg[2] : NULL))
        return;
    /* A principal that owes under its quotas waits here; the route runs again afterwards. */
    if (http_quota_delay(hc))
        return;
    if (rc.nseg >= 2 && rc.nseg <= 4 && !strcmp(rc.seg[0], "v1") && !strcmp(rc.seg[1], "users"))
        return http_route_users(hc, rc.nseg > 2 ? rc.seg[2] : NULL,
                                rc.nseg > 3 ? rc.seg[3] : NULL);
    if ((rc.nseg == 2 || rc.nseg == 3) && !strcmp(rc.seg[0], "v1") &&
        !strcmp(rc.seg[1], "tokens"))
        return http_route_tokens(hc, rc.nseg > 2 ? rc.seg[2] : NULL);
    if (rc.nseg >= 2 && !strcmp(rc.seg[0], "v1") && !strcmp(rc.seg[1], "topics"))
        return route_topics(&rc);
    if (rc.nseg == 3 && !strcmp(rc.seg[0], "v1") && !strcmp(rc.seg[1], "traces"))
        return http_route_trace(hc, rc.seg[2]);
    if (rc.nseg == 2 && !strcmp(rc.seg[0], "v1") && !strcmp(rc.seg[1], "subscribe"))
        return http_route_subscribe(hc);
    if (rc.nseg == 2 && !strcmp(rc.seg[0], "v1") && !strcmp(rc.seg[1], "acls"))
        return http_route_acls(hc);
    if (rc.nseg == 2 && !strcmp(rc.seg[0], "v1") && !strcmp(rc.seg[1], "cluster"))
        return http_route_cluster(hc);
    if ((rc.nseg == 2 || rc.nseg == 3) && !strcmp(rc.seg[0], "v1") &&
        !strcmp(rc.seg[1], "redrives"))
        return http_route_redrives(hc, rc.nseg == 3 ? rc.seg[2] : NULL);
    if (rc.nseg >= 2 && rc.nseg <= 4 && !strcmp(rc.seg[0], "v1") && !strcmp(rc.seg[1], "queues"))
        return http_route_queues(hc, rc.nseg > 2 ? rc.seg[2] : NULL,
                                 rc.nseg > 3 ? rc.seg[3] : NULL);
    if (rc.nseg >= 2 && rc.nseg <= 4 && !strcmp(rc.seg[0], "v1") && !strcmp(rc.seg[1], "groups"))
        return http_route_groups(hc, rc.nseg > 2 ? rc.seg[2] : NULL,
                                 rc.nseg > 3 ? rc.seg[3] : NULL);
    char msg[300];
    snprintf(msg, sizeof(msg), "no route for %.*s %.*s", (int)hc->req.method.n,
             (const char *)hc->req.method.p, (int)TD_MIN(hc->req.path.n, 200),
             (const char *)hc->req.path.p);
    http_respond_error(hc, 404, "not_found", msg);
}
