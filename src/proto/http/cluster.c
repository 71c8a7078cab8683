/*
 * cluster.c: GET /v1/cluster (docs/http-api.md#cluster): the cluster as this broker sees it:
 * its id, the controller and every live broker with its epoch and addresses. A single broker
 * describes itself alone.
 */
#include <stdio.h>
#include <string.h>

#include "proto/http/http_int.h"

void http_server_set_cluster(http_server *s, struct td_cluster *cl,
                             const struct td_cluster_broker *self)
{
    s->cluster = cl;
    s->self = *self;
}

static json_t *str_or_null(const char *s)
{
    return s[0] ? json_string(s) : json_null();
}

static json_t *broker_json(const td_cluster_broker *b)
{
    json_t *ls = json_array();
    char kafka[300] = "";
    for (int i = 0; i < b->nkafka; i++) {
        const td_cluster_listener *l = &b->kafka[i];
        if (i == 0)
            snprintf(kafka, sizeof(kafka), "%s:%d", l->host, (int)l->port);
        json_array_append_new(ls, json_pack("{s:s,s:s,s:i}", "protocol", l->protocol, "host",
                                            l->host, "port", (json_int_t)l->port));
    }
    return json_pack("{s:i,s:I,s:o,s:o,s:o,s:o,s:o}", "id", (json_int_t)b->id, "epoch",
                     (json_int_t)b->epoch, "rack", str_or_null(b->rack), "kafka",
                     str_or_null(kafka), "listeners", ls, "http", str_or_null(b->http), "redis",
                     str_or_null(b->redis));
}

static json_t *single(const http_server *s)
{
    json_t *brokers = json_array();
    json_array_append_new(brokers, broker_json(&s->self));
    return json_pack("{s:s,s:s,s:i,s:i,s:n,s:n,s:{s:i,s:i},s:o}", "mode", "single", "cluster_id",
                     "tidings-cluster", "broker_id", (json_int_t)s->self.id, "epoch", 0,
                     "coordinator", "etcd", "controller", "broker_id", (json_int_t)s->self.id,
                     "epoch", 0, "brokers", brokers);
}

static json_t *clustered(http_server *s)
{
    const td_cluster_view *v = cluster_view_acquire(s->cluster);
    json_t *brokers = json_array();
    for (size_t i = 0; i < v->nbrokers; i++)
        json_array_append_new(brokers, broker_json(&v->brokers[i]));
    json_t *controller = v->controller_id >= 0
                             ? json_pack("{s:i,s:I}", "broker_id", (json_int_t)v->controller_id,
                                         "epoch", (json_int_t)v->controller_epoch)
                             : json_null();
    json_t *o =
        json_pack("{s:s,s:s,s:i,s:I,s:s,s:s,s:o,s:o}", "mode", "cluster", "cluster_id",
                  v->cluster_id, "broker_id", (json_int_t)v->self_id, "epoch",
                  (json_int_t)v->self_epoch, "coordinator", cluster_coordinator(s->cluster), "etcd",
                  v->etcd_up ? "up" : "down", "controller", controller, "brokers", brokers);
    cluster_view_release(s->cluster, v);
    return o;
}

void http_route_cluster(hconn *hc)
{
    if (!http_method_is(hc, "GET") && !http_method_is(hc, "HEAD"))
        return http_respond_method_not_allowed(hc, "GET, HEAD");
    http_server *s = hc->s;
    json_t *o = s->cluster ? clustered(s) : single(s);
    if (!o)
        return http_respond_error(hc, 500, "internal", "out of memory");
    http_respond_json(hc, 200, o, NULL);
}
