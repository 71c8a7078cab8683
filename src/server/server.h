/*
 * server.h: `tidings serve`: configuration (defaults < config file < TIDINGS_* environment <
 * flags), the listeners, signals and the order of a graceful shutdown.
 * See docs/configuration.md for every key and its default.
 */
#ifndef TD_SERVER_H
#define TD_SERVER_H

#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "broker/otlp.h"
#include "cluster/cluster.h"
#include "tidings.h"
/* A TLS listener of one protocol (kafka.tls, http.tls, redis.tls and their .cert.file, ...). */
typedef struct td_tls_listener_config {
    char listen[256];     /* <proto>.tls: "off" (default), or HOST:PORT */
    char cert_file[1024]; /* <proto>.tls.cert.file: PEM certificate and chain */
    char key_file[1024];  /* <proto>.tls.key.file: PEM private key */
    char ca_file[1024];   /* <proto>.tls.ca.file: PEM CAs for client certificates */
    int client_auth;      /* <proto>.tls.client.auth: none (0), requested (1), required (2) */
    bool auth;            /* <proto>.tls.auth: none (false), required (true): users */
} td_tls_listener_config;

#define TD_KAFKA_LISTENERS_MAX 8

/* One entry of kafka.listeners. */
typedef struct td_kafka_listener {
    char protocol[16]; /* PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL */
    char host[256];
    int port;
    bool tls, sasl;
} td_kafka_listener;


typedef struct td_server_config {
    char data[PATH_MAX];      /* data: ./data */
    char kafka[256];          /* kafka: 127.0.0.1:9092, or "off" */
    char http[256];           /* http: 127.0.0.1:8080, or "off" */
    char redis[256];          /* redis: 127.0.0.1:6379, or "off" */
    char advertised_host[256]; /* advertised.host: "" = the Kafka listener's host */
    int loops;                /* loops: 0 = one per core */
    bool auto_create_topics;  /* auto.create.topics: true */
    int32_t default_partitions; /* default.partitions: 1 */
    char log_level[16];       /* log.level: info */
    /* allow.anonymous: false; listeners may bind addresses other than loopback without
     * authentication (a warning at every start) */
    bool allow_anonymous;
    int64_t shutdown_grace_ms; /* shutdown.grace.ms: 5000 */
    int32_t log_rate_limit;    /* log.rate.limit: 10 lines per call site per 5 s; 0 = off */
    /* connections and buffers (docs/operations.md) */
    int64_t max_connections;   /* max.connections: 0 = derived from ulimit -n */
    int64_t net_buffer_memory_bytes; /* net.buffer.memory.bytes: 0 = 1/8 of memory, 64 MiB-4 GiB */
    /* consumer groups, under Kafka's names */
    int32_t group_initial_rebalance_delay_ms; /* group.initial.rebalance.delay.ms: 3000 */
    int32_t group_min_session_timeout_ms;     /* group.min.session.timeout.ms: 6000 */
    int32_t group_max_session_timeout_ms;     /* group.max.session.timeout.ms: 1800000 */
    int32_t group_max_size;                   /* group.max.size: 1000 */
    int64_t offsets_retention_minutes;        /* offsets.retention.minutes: 10080 (7 days) */
    int64_t producer_id_expiration_ms;        /* producer.id.expiration.ms: 86400000 */
    int64_t transaction_max_timeout_ms;       /* transaction.max.timeout.ms: 900000 */
    int64_t transactional_id_expiration_ms;   /* transactional.id.expiration.ms: 7 days */
    /* transaction.abort.timed.out.transaction.cleanup.interval.ms: 10000 */
    int64_t transaction_abort_interval_ms;
    int64_t disk_reserve_bytes;               /* disk.reserve.bytes: 8388608 */
    int64_t table_index_max_bytes;            /* table.index.max.bytes: 134217728 */
    /* fault.drop.after.append: 0; tests only: every Nth produce request that appends closes
     * its connection instead of answering */
    int32_t fault_drop_after_append;
    /* fault.txn.pause.after.prepare.ms: 0; tests only: the transaction coordinator waits this
     * long between a PrepareCommit/PrepareAbort record and its markers (a window for kill -9) */
    int64_t fault_txn_pause_ms;
    /* connections.max.idle.ms: 600000 (Kafka's default); a Kafka connection idle this long is
     * closed; 0: never */
    int64_t connections_max_idle_ms;
    /* max.partitions: 0 (derived: half of the descriptor limit); the most partitions over all
     * topics */
    int64_t max_partitions;
    bool log_cleaner_enable;                  /* log.cleaner.enable: true */
    int trace_inject;          /* trace.inject: none (TD_TRACE_INJECT_*) */
    bool trace_inject_sampled; /* trace.inject.sampled: false */
    /* Health events (docs/health.md): health.events (true), health.events.rate (10 per type
     * per second), health.check.interval.ms (1000), health.lag.events and health.lag.ms (0:
     * off), health.disk.percent (90), health.fsync.ms (1000). */
    bool health_events;
    int64_t health_events_rate, health_check_interval_ms, health_lag_events, health_lag_ms;
    int64_t health_disk_percent, health_fsync_ms;
    /* Delayed delivery: queue.schedule.horizon.ms (60000), queue.scheduled.max (1000000). */
    int64_t queue_schedule_horizon_ms, queue_scheduled_max;
    int64_t log_cleaner_backoff_ms;           /* log.cleaner.backoff.ms: 15000 */
    int64_t log_cleaner_dedupe_buffer_size;   /* log.cleaner.dedupe.buffer.size: 128 MiB */
    int64_t log_cleaner_io_max_bytes_per_sec; /* log.cleaner.io.max.bytes.per.second: 0 */
    /* offsets.topic.num.partitions: 1; partitions of __consumer_offsets when it is created */
    int32_t offsets_topic_partitions;
    /* state.topic.fsync: "" (always); the internal state topics' fsync policy */
    char state_topic_fsync[32];
    /* the HTTP listener */
    int64_t http_request_timeout_ms; /* http.request.timeout.ms: 30000 */
    int64_t http_idle_timeout_ms;    /* http.idle.timeout.ms: 120000 */
    int64_t http_max_body_bytes;     /* http.max.body.bytes: 8388608 */
    int64_t http_sse_heartbeat_ms;   /* http.sse.heartbeat.ms: 15000 */
    int64_t http_sse_stall_timeout_ms; /* http.sse.stall.timeout.ms: 30000 */
    char http_allowed_hosts[1024];        /* http.allowed.hosts: "" (IPs and localhost only) */
    char http_cors_allowed_origins[1024]; /* http.cors.allowed.origins: "" (no CORS) */
    /* the Redis listener */
    char redis_password[256]; /* redis.password: "" (none) */
    bool redis_allow_flush;   /* redis.allow.flush: false (FLUSHALL/FLUSHDB refused) */
    int64_t redis_max_reply_bytes; /* redis.max.reply.bytes: 536870912 */
    char redis_notify_keyspace_events[64]; /* redis.notify.keyspace.events: "" (none) */
    int64_t redis_monitor_buffer_bytes; /* redis.monitor.buffer.bytes: 8388608 */
    int64_t redis_stream_node_max_entries; /* redis.stream.node.max.entries: 100 */
    int64_t redis_stream_node_max_bytes;   /* redis.stream.node.max.bytes: 4096 */
    /* admin.user: "admin"; the first administrator, made on a start with an empty user store
     * when TIDINGS_ADMIN_PASSWORD is set (server_first_admin) */
    char admin_user[TD_USER_NAME_MAX + 1];
    /* TLS listeners beside the plaintext ones (docs/security.md) */
    td_tls_listener_config kafka_tls, http_tls, redis_tls;
    /* The schema registry (docs/schemas.md): schema.registry.prefix ("/registry"; "" at the
     * root of the HTTP listener), schema.registry.listen (a listener of its own, HOST:PORT, or
     * "off", the default), schema.registry.max.schemas (100000 versions),
     * schema.registry.max.schema.bytes (1 MiB). */
    char schema_registry_prefix[256];
    char schema_registry_listen[256];
    int64_t schema_registry_max_schemas, schema_registry_max_schema_bytes;
    /* schema.validation.threads: threads validating large batches beside the event loop
     * (-1, the default: one per core but one; 0: none). */
    int32_t schema_validation_threads;
    /* Span export to an OpenTelemetry collector, otlp.* (docs/otlp-export.md): off while
     * otlp.endpoint is empty, the default. */
    otlp_config otlp;
    /* kafka.auth, http.auth, redis.auth: none (false, the default) or required (true): the
     * plaintext listener's clients must authenticate as a user (SASL_PLAINTEXT, Redis AUTH,
     * HTTP Basic or a token) */
    bool kafka_auth, http_auth, redis_auth;
    /* kafka.listeners: "" (use kafka and kafka.tls), or Kafka's list of listeners, each
     * SECURITY_PROTOCOL://HOST:PORT with PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL (at most
     * TD_KAFKA_LISTENERS_MAX); SSL ones use the kafka.tls.* files and client.auth */
    char kafka_listeners[1024];
    /* kafka.sasl.mechanisms: "SCRAM-SHA-256,SCRAM-SHA-512,PLAIN"; the SASL mechanisms the
     * Kafka listeners offer (Kafka's sasl.enabled.mechanisms) */
    char kafka_sasl_mechanisms[128];
    /* connections.max.reauth.ms: 0 (never); Kafka's KIP-368 session lifetime: a SASL
     * connection must re-authenticate within it or be closed */
    int64_t connections_max_reauth_ms;
    /* super.users: "admin"; comma-separated user names allowed everything (Kafka's
     * super.users) */
    char super_users[1024];
    /* anonymous.access: all (true, the default) or acl (false): what clients of listeners
     * that do not authenticate may do (broker/authz.h) */
    bool anonymous_all;
    /* Membership of a cluster (cluster.coordinator, broker.id, broker.rack,
     * cluster.session.timeout.ms, cluster.connect.timeout.ms; docs/clustering.md): a single
     * broker while cluster.coordinator is empty, the default. */
    td_cluster_config cluster;
} td_server_config;

void server_config_defaults(td_server_config *c);
/* Sets one key ("kafka", "auto.create.topics", ...). TD_ECONFIG with td_last_error naming the
 * key and the rule. */
int server_config_set(td_server_config *c, const char *key, const char *value);
/* Reads `key = value` lines ('#' starts a comment). TD_ECONFIG names file and line. */
int server_config_load_file(td_server_config *c, const char *path);
/* Applies TIDINGS_<KEY> variables (key upper-cased, '.' as '_'): TIDINGS_DATA,
 * TIDINGS_KAFKA, TIDINGS_AUTO_CREATE_TOPICS, ... */
int server_config_from_env(td_server_config *c);

/* The first administrator (admin.c): when TIDINGS_ADMIN_PASSWORD is set and non-empty and the
 * engine has no users, creates `user` with that password (both SCRAM mechanisms); an existing
 * store is never changed. The variable is removed from the environment afterwards; the
 * password is never logged. TD_ECONFIG when it is not a valid password. */
int server_first_admin(td_engine *e, const char *user);

/*
 * Runs the broker until SIGINT or SIGTERM among `signals` (already blocked in every thread)
 * arrives, then shuts down gracefully; SIGHUP, if in `signals`, reloads the TLS listeners'
 * certificates and keys. Prints one line per listener to stdout ("kafka: listening on HOST:PORT").
 * Returns 0, or a negative code with td_last_error() set (unusable data directory, port in
 * use, ...).
 */
int server_run(const td_server_config *c, const sigset_t *signals);

#endif /* TD_SERVER_H */
