/*
 * handler_int.h: what the Kafka handler files share (handler.c: framing, dispatch, produce,
 * fetch, topics; handler_config.c: configs and DeleteRecords; handler_group.c: consumer
 * groups; sasl.c, acls.c, handler_quota.c: security; handler_txn.c: transactions): the server,
 * connection and request structures, and the way a request answers later.
 */
#ifndef TD_PROTO_KAFKA_HANDLER_INT_H
#define TD_PROTO_KAFKA_HANDLER_INT_H

#include "broker/broker.h"
#include "broker/group.h"
#include "broker/quota.h"
#include "net/net.h"
#include "proto/kafka/kafka.h"

#define MAX_INFLIGHT 64

typedef struct kconn kconn;
typedef struct kreq kreq;
typedef struct ksasl ksasl;                         /* a connection's authentication (sasl.c) */
typedef struct kafka_sasl_server kafka_sasl_server; /* the server's (sasl.c) */

struct kafka_server {
    td_engine *e;
    kafka_server_config cfg;
    char host[256];
    char cluster_id[64];
    char *listeners; /* kafka_server_set_listeners; NULL: PLAINTEXT on host and port */
    int nloops;           /* the event loops' (kafka_server_attach) */
    net_waitset *fetches; /* fetches waiting for data, woken when partitions advance */
    uint64_t produced; /* atomic: produce requests that appended (for fault injection) */
    td_metric *m_requests[KAFKA_API_KEYS]; /* by API key; NULL for keys not served */
    td_metric *m_latency[KAFKA_API_KEYS];
    kafka_sasl_server *sasl;
    td_metric *m_denied; /* tidings_security_denied_total{protocol="kafka",reason="acl"} */
    struct td_cluster *cluster; /* kafka_server_set_cluster; NULL: a single broker */
};

struct kconn {
    net_conn *c;
    kafka_server *s;
    kreq *head, *tail;
    int ninflight;
    bool paused_by_us;
    bool throttled;          /* input muted by a quota until the timer fires (handler_quota.c) */
    net_timer throttle_timer;
    bool closed;
    int orphans; /* requests still waiting for a durability callback after the close */
    ksasl *sasl;  /* NULL until the connection's first SASL request */
    bool closing; /* a response asked to close once sent: read nothing more */
};

typedef struct durable_cb {
    kreq *q;
    kafka_produce_part_resp *resp;
} durable_cb;

struct kreq {
    kreq *next;
    kconn *kc;
    int64_t t0; /* arrival (monotonic ns) */
    size_t size; /* the request's bytes (what the produce byte rate counts) */
    kafka_header h;
    td_arena arena;
    bool ready;
    bool no_response; /* produce with acks=0 */
    bool drop_connection; /* fault injection: close instead of answering */
    bool close_after;     /* close the connection once this response is sent (SASL failures) */
    void *sasl_job;       /* a password check off the loop (sasl.c); freed with the request */
    void *txn_job; /* a transaction coordinator call's result (handler_txn.c); freed likewise */
    kafka_out out;
    /* produce */
    kafka_produce_resp presp;
    int pending; /* atomic: durability callbacks or coordinator answers outstanding */
    durable_cb *cbs;
    td_topic_ref **refs;
    int nrefs;
    /* fetch */
    kafka_fetch_req freq;
    td_topic_ref **frefs; /* one per request topic; NULL if unknown */
    uint8_t *fdenied;     /* NULL, or 1 per request topic the principal may not Read */
    net_waiter wait; /* parked until data arrives or max_wait_ms passes */
    broker_range **ranges;
    int nranges;
    /* answering later (kreq_async_begin): encodes the response on the loop */
    void (*finish)(kreq *q);
    /* consumer groups */
    coord_join_res *join_res;
    coord_sync_res *sync_res;
    kafka_offset_commit_req commit;
    coord_err commit_err;
    int commit_rc;
};


/* The Kafka error code for a td_ error code. */
int16_t kafka_error_of(int rc);
/* The error for a topic name that names no topic: INVALID_TOPIC_EXCEPTION (17) when no topic
 * could have it (Kafka's naming rules, td_topic_name_validate), else
 * UNKNOWN_TOPIC_OR_PARTITION (3). */
int16_t kafka_missing_topic_error(const char *name);

/* The Kafka error code for a group coordinator result (handler_group.c). */
int16_t coord_kafka_error(coord_err e);
/* The partitions of an OffsetCommit or TxnOffsetCommit (handler_group.c): with `all` an error,
 * every partition gets it; else each is checked (Read on its topic, the topic and partition,
 * the metadata's size) and gets its error, or goes into oc. Returns how many went into oc. */
size_t kafka_commit_parts(kreq *q, kafka_offset_commit_topic *topics, int32_t ntopics, int16_t all,
                          td_offset_commit *oc);

/* Starts q's response frame (correlation id, the header version of its API and version). */
void kreq_begin(kreq *q);


/*
 * A request that answers later: kreq_async_begin (loop thread) holds the connection; whoever
 * finishes (any thread) calls kreq_async_done, which posts to the loop a task that runs
 * finish(q) to encode the response and sends what is ready. If the connection closed meanwhile,
 * the request is freed instead.
 */
void kreq_async_begin(kreq *q, void (*finish)(kreq *q));
void kreq_async_done(kreq *q);

/*
 * The handlers of the table of APIs (apis.c, kafka_api.handle), one per API (AlterConfigs and
 * IncrementalAlterConfigs share one): each decodes its request's body from r and encodes the
 * response, or sets q->out.err (TD_EPROTO: a malformed request, which closes the connection).
 * How each answers (now, later, or later after kreq_async_begin) is the table's `answers`.
 */
/* handler.c */
void kafka_serve_api_versions(kreq *q, kafka_reader *r);
void kafka_serve_metadata(kreq *q, kafka_reader *r);
void kafka_serve_produce(kreq *q, kafka_reader *r);
void kafka_serve_fetch(kreq *q, kafka_reader *r);
void kafka_serve_list_offsets(kreq *q, kafka_reader *r);
void kafka_serve_create_topics(kreq *q, kafka_reader *r);
void kafka_serve_delete_topics(kreq *q, kafka_reader *r);
void kafka_serve_create_partitions(kreq *q, kafka_reader *r);
void kafka_serve_describe_cluster(kreq *q, kafka_reader *r);
void kafka_serve_init_producer_id(kreq *q, kafka_reader *r);
/* handler_group.c: consumer groups */
void kafka_serve_find_coordinator(kreq *q, kafka_reader *r);
void kafka_serve_join_group(kreq *q, kafka_reader *r);
void kafka_serve_sync_group(kreq *q, kafka_reader *r);
void kafka_serve_heartbeat(kreq *q, kafka_reader *r);
void kafka_serve_leave_group(kreq *q, kafka_reader *r);
void kafka_serve_offset_commit(kreq *q, kafka_reader *r);
void kafka_serve_offset_fetch(kreq *q, kafka_reader *r);
void kafka_serve_list_groups(kreq *q, kafka_reader *r);
void kafka_serve_describe_groups(kreq *q, kafka_reader *r);
void kafka_serve_delete_groups(kreq *q, kafka_reader *r);
void kafka_serve_offset_delete(kreq *q, kafka_reader *r);
/* handler_config.c */
void kafka_serve_describe_configs(kreq *q, kafka_reader *r);
void kafka_serve_alter_configs(kreq *q, kafka_reader *r); /* and IncrementalAlterConfigs */
void kafka_serve_delete_records(kreq *q, kafka_reader *r);
/* handler_quota.c */
void kafka_serve_describe_client_quotas(kreq *q, kafka_reader *r);
void kafka_serve_alter_client_quotas(kreq *q, kafka_reader *r);
/* handler_txn.c: transactions */
void kafka_serve_add_partitions_to_txn(kreq *q, kafka_reader *r);
void kafka_serve_add_offsets_to_txn(kreq *q, kafka_reader *r);
void kafka_serve_end_txn(kreq *q, kafka_reader *r);
void kafka_serve_txn_offset_commit(kreq *q, kafka_reader *r);
void kafka_serve_describe_producers(kreq *q, kafka_reader *r);
void kafka_serve_describe_transactions(kreq *q, kafka_reader *r);
void kafka_serve_list_transactions(kreq *q, kafka_reader *r);
/* acls.c */
void kafka_serve_describe_acls(kreq *q, kafka_reader *r);
void kafka_serve_create_acls(kreq *q, kafka_reader *r);
void kafka_serve_delete_acls(kreq *q, kafka_reader *r);
/* sasl.c */
void kafka_serve_sasl_handshake(kreq *q, kafka_reader *r);
void kafka_serve_sasl_authenticate(kreq *q, kafka_reader *r);
void kafka_serve_describe_scram(kreq *q, kafka_reader *r);
void kafka_serve_alter_scram(kreq *q, kafka_reader *r);

/* Records amount for q's client under a quota key (loop thread) and returns the throttle time
 * in ms, 0 within the quota. A throttled connection's input is muted for that long (Kafka's
 * KIP-219: the response goes out at once, with throttle_time_ms, and the broker reads nothing
 * more from the client until the time has passed); the longest throttle wins. */
int32_t kafka_quota_record(kreq *q, td_quota_key key, double amount);
/* The connection closes: stops its throttle timer. */
void kafka_quota_close(kconn *kc);
/* Whether input may be resumed (not muted by a quota). */
bool kafka_quota_muted(const kconn *kc);

/* Logs why a frame whose size prefix is impossible was refused: TLS, HTTP or Redis on the Kafka
 * port, or the size (sniff.c). p holds n >= 4 bytes from the frame's start. */
void kafka_log_bad_frame(net_conn *c, const uint8_t *p, size_t n, size_t max);

/* cluster.c: in a cluster, fills m's brokers (each through the listener of the same security
 * protocol as the one q came through), controller and cluster id from the current view, in
 * q's arena; a single broker leaves m as it is. */
void kafka_fill_cluster(kreq *q, kafka_metadata_resp *m);

#endif /* TD_PROTO_KAFKA_HANDLER_INT_H */
