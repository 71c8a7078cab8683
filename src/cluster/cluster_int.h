/*
 * cluster_int.h: what the files of src/cluster/ share: the values kept in etcd under the
 * cluster's prefix (docs/clustering.md#keys), encoded and decoded as pure functions.
 */
#ifndef TD_CLUSTER_INT_H
#define TD_CLUSTER_INT_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "cluster/cluster.h"

/* PREFIX/brokers/<id>: {"id":N,"rack":R|null,"listeners":[{"protocol":..,"host":..,"port":N}],
 * "http":"HOST:PORT"|null,"redis":..|null,"version":V}. Decoding fills everything but the
 * epoch (the key's create_revision); TD_EPROTO for what is not such a value. */
int cluster_broker_encode(td_buf *out, const td_cluster_broker *b);
int cluster_broker_decode(const char *p, size_t n, td_cluster_broker *out);

/* PREFIX/controller: {"broker_id":N}. */
int cluster_controller_encode(td_buf *out, int32_t broker_id);
int cluster_controller_decode(const char *p, size_t n, int32_t *broker_id);

/* The broker id at the end of PREFIX/brokers/<id> (rest is what follows "brokers/"): 0, or
 * TD_EPROTO when rest is not a decimal id in 0..2^31-1. */
int cluster_broker_key_id(const char *rest, size_t n, int32_t *id);

/* DATA/cluster.properties: the cluster and broker ids a data directory belongs to, and the
 * lease of its last registration (so that a restart takes its id back at once). */
typedef struct cluster_props {
    char cluster_id[64]; /* "" when the file is absent */
    int32_t broker_id;   /* -1 when absent */
    int64_t lease;       /* 0 when absent */
} cluster_props;

/* 0 (an absent file gives empty props), TD_ECORRUPT naming the line, -errno. */
int cluster_props_read(const char *data_dir, cluster_props *p);
/* Written to a temporary file, synced and renamed over it. */
int cluster_props_write(const char *data_dir, const cluster_props *p);

#endif /* TD_CLUSTER_INT_H */
