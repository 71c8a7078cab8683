/*
 * cluster.h: a broker's membership of a cluster kept in etcd (docs/clustering.md).
 *
 * With cluster.coordinator set, the broker holds an etcd lease, registers itself under
 * PREFIX/brokers/<broker.id> on it (its broker epoch is that key's create_revision), takes
 * part in the controller's election (PREFIX/controller on the winner's lease) and watches the
 * prefix. What it knows of the cluster is an immutable view, replaced as a whole when
 * something changes: the event loops read it without waiting on etcd. Two threads do the
 * work, each with its own connection: the session thread (lease, registration, keepalives,
 * the election) and the watch thread (a list of the prefix, then a watch from its revision).
 */
#ifndef TD_CLUSTER_H
#define TD_CLUSTER_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/metrics.h"

#define TD_CLUSTER_RACK_MAX 64
#define TD_CLUSTER_ADDR_MAX 300
#define TD_CLUSTER_LISTENERS_MAX 8

typedef struct td_cluster_config {
    /* cluster.coordinator: etcd://HOST:PORT[,HOST:PORT...][/PREFIX] (PREFIX: /tidings/default) */
    char coordinator[1024];
    int32_t broker_id;              /* broker.id: -1 = unset */
    char rack[TD_CLUSTER_RACK_MAX]; /* broker.rack: "" = none */
    int64_t session_timeout_ms;     /* cluster.session.timeout.ms: 6000 (the lease's TTL) */
    int64_t connect_timeout_ms;     /* cluster.connect.timeout.ms: 18000 */
    char data_dir[PATH_MAX];        /* where cluster.properties is kept */
} td_cluster_config;

void cluster_config_defaults(td_cluster_config *c);
/* Sets one cluster.* or broker.* setting from its text: 0; TD_ECONFIG (with a message) for a
 * bad value; 1 for a key that is not one of them. */
int cluster_config_set(td_cluster_config *c, const char *key, const char *value);
/* Their names, NULL-terminated (for TIDINGS_* environment variables). */
extern const char *const cluster_config_keys[];

/* One Kafka listener of a broker, as Metadata names it to clients of that listener. */
typedef struct td_cluster_listener {
    char protocol[16]; /* PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL */
    char host[256];
    int32_t port;
} td_cluster_listener;

/* A live broker, as registered. */
typedef struct td_cluster_broker {
    int32_t id;
    int64_t epoch; /* the create_revision of its key */
    char rack[TD_CLUSTER_RACK_MAX];
    td_cluster_listener kafka[TD_CLUSTER_LISTENERS_MAX];
    int nkafka;
    char http[TD_CLUSTER_ADDR_MAX];  /* HOST:PORT, or "" */
    char redis[TD_CLUSTER_ADDR_MAX]; /* HOST:PORT, or "" */
} td_cluster_broker;

/* What a broker knows of its cluster at one moment; never changed once published. */
typedef struct td_cluster_view {
    char cluster_id[64];
    int32_t self_id;
    int64_t self_epoch;    /* 0 while not registered */
    int32_t controller_id; /* -1: none */
    int64_t controller_epoch;
    bool etcd_up;    /* the last call to etcd succeeded */
    size_t nbrokers; /* sorted by id */
    td_cluster_broker brokers[];
} td_cluster_view;

typedef struct td_cluster td_cluster;

/* Checks a configuration (TD_ECONFIG naming the key). */
int cluster_config_check(const td_cluster_config *c);

/* Joins the cluster: registers this broker as self (its rack and addresses; the id is
 * c->broker_id), waiting up to connect_timeout_ms for etcd and for its broker.id to be free; then
 * runs the session and watch threads. TD_ECONFIG for a data directory of another cluster or broker;
 * -ETIMEDOUT (td_last_error says why) when it could not register in time. metrics may be NULL. */
int cluster_join(const td_cluster_config *c, const td_cluster_broker *self, td_metrics *metrics,
                 td_cluster **out);

/* Leaves: revokes the lease (the registration and any controllership go at once), stops the
 * threads and frees everything. NULL is a no-op. */
void cluster_leave(td_cluster *cl);

/* The current view, held until released (never NULL for a joined cluster). */
const td_cluster_view *cluster_view_acquire(td_cluster *cl);
void cluster_view_release(td_cluster *cl, const td_cluster_view *v);

/* The broker of id in v, or NULL. */
const td_cluster_broker *cluster_view_broker(const td_cluster_view *v, int32_t id);

/* Called with each new view and the one it replaces, on the thread that made it and under the
 * membership's lock: it must neither block nor call into the cluster (health_emit is fine). */
typedef void (*cluster_observer_fn)(void *arg, const td_cluster_view *before,
                                    const td_cluster_view *after);
void cluster_set_observer(td_cluster *cl, cluster_observer_fn fn, void *arg);

/* The coordinator as configured (for status pages). */
const char *cluster_coordinator(const td_cluster *cl);

#endif /* TD_CLUSTER_H */
