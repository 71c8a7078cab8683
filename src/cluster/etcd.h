/*
 * etcd.h: a client of etcd's v3 JSON gateway over libcurl (blocking; one per thread): unary
 * calls and one watch stream. The bodies are etcd_json.h's.
 */
#ifndef TD_CLUSTER_ETCD_H
#define TD_CLUSTER_ETCD_H

#include <stdbool.h>
#include <stdint.h>

#include "base/base.h"
#include "cluster/etcd_json.h"

#define ETCD_ENDPOINTS_MAX 8

typedef struct etcd_client {
    char endpoints[ETCD_ENDPOINTS_MAX][280]; /* http://HOST:PORT */
    int nendpoints;
    int current;        /* the endpoint in use; the next one after a failure */
    int64_t timeout_ms; /* a unary call's bound */
    void *curl;         /* CURL *, reused: its connection stays open */
    void *headers;      /* struct curl_slist *: a unary call's request headers */
    void *watch_headers; /* a watch's */
    td_buf in;          /* the answer being read */
    char error[256];    /* the last transport failure */
} etcd_client;

/* hosts: "HOST:PORT[,HOST:PORT...]". TD_ECONFIG for a bad list. */
int etcd_client_init(etcd_client *c, const char *hosts, int64_t timeout_ms);
void etcd_client_free(etcd_client *c);

/* POSTs req to path ("/v3/kv/range", ...) and decodes the answer into *resp (an error body
 * sets resp->error_code). Returns 0; -EIO when no endpoint answered (c->error says why; the
 * next call tries the next endpoint); TD_EPROTO for an answer that is not etcd's. */
int etcd_call(etcd_client *c, const char *path, const td_buf *req, etcd_resp *resp);

/* Opens the watch req (etcd_req_watch's body) and calls on_msg for each message until it
 * returns nonzero (returned), stop(arg) returns true (0), or the stream ends or fails (-EIO,
 * TD_EPROTO). stop is polled about every 100 ms while nothing comes. */
int etcd_watch(etcd_client *c, const td_buf *req, int (*on_msg)(void *arg, etcd_watch_msg *m),
               bool (*stop)(void *arg), void *arg);

#endif /* TD_CLUSTER_ETCD_H */
