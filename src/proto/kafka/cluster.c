/*
 * cluster.c: what Kafka clients are told of the cluster (docs/clustering.md): every live
 * broker and the controller in Metadata and DescribeCluster, from the membership's current
 * view. Each broker is named by its listener of the security protocol the client came through
 * (as Kafka names brokers by listener name), so a TLS client is sent to TLS ports.
 */
#include <stdio.h>
#include <string.h>

#include "cluster/cluster.h"
#include "net/net.h"
#include "proto/kafka/handler_int.h"

void kafka_server_set_cluster(kafka_server *s, struct td_cluster *cl)
{
    s->cluster = cl;
}

/* The security protocol of this broker's listener on port ("PLAINTEXT" when unknown). */
static void protocol_of(const kafka_server *s, int32_t port, char *out, size_t cap)
{
    snprintf(out, cap, "PLAINTEXT");
    const char *p = s->listeners;
    char want[16];
    snprintf(want, sizeof(want), ":%d", (int)port);
    while (p && *p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        const char *sep = memchr(p, ':', n);
        size_t wl = strlen(want);
        if (sep && n > wl && !memcmp(p + n - wl, want, wl) && (size_t)(sep - p) < cap) {
            snprintf(out, cap, "%.*s", (int)(sep - p), p);
            return;
        }
        p = end ? end + 1 : NULL;
    }
}

static const td_cluster_listener *listener_for(const td_cluster_broker *b, const char *protocol)
{
    for (int i = 0; i < b->nkafka; i++)
        if (!strcmp(b->kafka[i].protocol, protocol))
            return &b->kafka[i];
    return b->nkafka ? &b->kafka[0] : NULL;
}

void kafka_fill_cluster(kreq *q, kafka_metadata_resp *m)
{
    kafka_server *s = q->kc->s;
    if (!s->cluster)
        return;
    const td_cluster_view *v = cluster_view_acquire(s->cluster);
    char protocol[16];
    protocol_of(s, m->port, protocol, sizeof(protocol));
    kafka_broker *out = td_arena_calloc(&q->arena, v->nbrokers + 1, sizeof(*out));
    char *cid = td_arena_strdup(&q->arena, v->cluster_id);
    if (!out || !cid) {
        cluster_view_release(s->cluster, v);
        return;
    }
    int32_t n = 0;
    bool self = false;
    for (size_t i = 0; i < v->nbrokers; i++) {
        const td_cluster_broker *b = &v->brokers[i];
        kafka_broker *k = &out[n];
        k->node_id = b->id;
        k->rack = b->rack[0] ? td_arena_strdup(&q->arena, b->rack) : NULL;
        if (b->id == m->node_id) {
            self = true;
            k->host = m->host;
            k->port = m->port;
        } else {
            const td_cluster_listener *l = listener_for(b, protocol);
            if (!l)
                continue;
            k->host = td_arena_strdup(&q->arena, l->host);
            k->port = l->port;
            if (!k->host)
                continue;
        }
        n++;
    }
    if (!self) {
        /* Not registered at this moment (a lost lease, etcd away): its clients still need it,
         * it leads what it holds. */
        int32_t at = 0;
        while (at < n && out[at].node_id < m->node_id)
            at++;
        memmove(&out[at + 1], &out[at], (size_t)(n - at) * sizeof(*out));
        out[at] = (kafka_broker){m->node_id, m->host, m->port, NULL};
        n++;
    }
    m->brokers = out;
    m->nbrokers = n;
    m->controller_id = v->controller_id;
    m->cluster_id = cid;
    cluster_view_release(s->cluster, v);
}
