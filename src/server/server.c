/*
 * server.c: configuration and the life of `tidings serve`.
 *
 * Start: open the engine (recovery), create the event loops, bind every listener (a port in
 * use fails here, before anything is served), start the loops, print where it listens.
 * Shutdown, on SIGINT or SIGTERM: the loops stop accepting, answer long polls at once, let
 * requests in flight finish (a produce waiting for its fsync gets it) and write their output,
 * for up to shutdown.grace.ms; then every partition is fsynced and the engine closes.
 */
#include "server/server.h"
#include "server/server_int.h"

#include <ctype.h>
#include <stddef.h>
#include <inttypes.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <dirent.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/base.h"
#include "broker/authz.h"
#include "broker/broker.h"
#include "broker/group.h"
#include "broker/health.h"
#include "broker/queue.h"
#include "broker/xgroup.h"
#include "net/net.h"
#include "proto/http/http.h"
#include "proto/kafka/kafka.h"
#include "proto/resp/resp_server.h"

static const char *const keys[] = {"data",
                                   "kafka",
                                   "http",
                                   "redis",
                                   "advertised.host",
                                   "loops",
                                   "auto.create.topics",
                                   "default.partitions",
                                   "log.level",
                                   "shutdown.grace.ms",
                                   "log.rate.limit",
                                   "max.connections",
                                   "net.buffer.memory.bytes",
                                   "group.initial.rebalance.delay.ms",
                                   "group.min.session.timeout.ms",
                                   "group.max.session.timeout.ms",
                                   "group.max.size",
                                   "offsets.retention.minutes",
                                   "producer.id.expiration.ms",
                                   "transaction.max.timeout.ms",
                                   "transactional.id.expiration.ms",
                                   "transaction.abort.timed.out.transaction.cleanup.interval.ms",
                                   "disk.reserve.bytes",
                                   "table.index.max.bytes",
                                   "fault.drop.after.append",
                                   "fault.txn.pause.after.prepare.ms",
                                   "connections.max.idle.ms",
                                   "max.partitions",
                                   "log.cleaner.enable",
                                   "trace.inject",
                                   "trace.inject.sampled",
                                   "health.events",
                                   "health.events.rate",
                                   "health.check.interval.ms",
                                   "health.lag.events",
                                   "health.lag.ms",
                                   "health.disk.percent",
                                   "health.fsync.ms",
                                   "queue.schedule.horizon.ms",
                                   "queue.scheduled.max",
                                   "log.cleaner.backoff.ms",
                                   "log.cleaner.dedupe.buffer.size",
                                   "log.cleaner.io.max.bytes.per.second",
                                   "offsets.topic.num.partitions",
                                   "state.topic.fsync",
                                   "http.request.timeout.ms",
                                   "http.idle.timeout.ms",
                                   "http.max.body.bytes",
                                   "http.sse.heartbeat.ms",
                                   "http.sse.stall.timeout.ms",
                                   "http.allowed.hosts",
                                   "http.cors.allowed.origins",
                                   "allow.anonymous",
                                   "redis.password",
                                   "redis.allow.flush",
                                   "redis.max.reply.bytes",
                                   "redis.notify.keyspace.events",
                                   "redis.monitor.buffer.bytes",
                                   "redis.stream.node.max.entries",
                                   "redis.stream.node.max.bytes",
                                   "admin.user",
                                   "kafka.tls",
                                   "kafka.tls.cert.file",
                                   "kafka.tls.key.file",
                                   "kafka.tls.ca.file",
                                   "kafka.tls.client.auth",
                                   "http.tls",
                                   "http.tls.cert.file",
                                   "http.tls.key.file",
                                   "http.tls.ca.file",
                                   "http.tls.client.auth",
                                   "redis.tls",
                                   "redis.tls.cert.file",
                                   "redis.tls.key.file",
                                   "redis.tls.ca.file",
                                   "redis.tls.client.auth",
                                   "kafka.auth",
                                   "http.auth",
                                   "redis.auth",
                                   "kafka.tls.auth",
                                   "http.tls.auth",
                                   "redis.tls.auth",
                                   "kafka.listeners",
                                   "kafka.sasl.mechanisms",
                                   "connections.max.reauth.ms",
                                   "super.users",
                                   "anonymous.access",
                                   "schema.registry.prefix",
                                   "schema.registry.listen",
                                   "schema.registry.max.schemas",
                                   "schema.registry.max.schema.bytes",
                                   NULL};

void server_config_defaults(td_server_config *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->data, sizeof(c->data), "./data");
    snprintf(c->kafka, sizeof(c->kafka), "127.0.0.1:9092");
    snprintf(c->http, sizeof(c->http), "127.0.0.1:8080");
    snprintf(c->redis, sizeof(c->redis), "127.0.0.1:6379");
    c->loops = 0;
    c->auto_create_topics = true;
    c->default_partitions = 1;
    snprintf(c->log_level, sizeof(c->log_level), "info");
    c->shutdown_grace_ms = 5000;
    c->log_rate_limit = TD_LOG_RATE_BURST;
    coord_config g;
    coord_config_defaults(&g);
    c->group_initial_rebalance_delay_ms = g.initial_rebalance_delay_ms;
    c->group_min_session_timeout_ms = g.min_session_ms;
    c->group_max_session_timeout_ms = g.max_session_ms;
    c->group_max_size = g.max_size;
    c->offsets_retention_minutes = g.offsets_retention_ms / 60000;
    td_options o;
    td_options_init(&o);
    c->producer_id_expiration_ms = o.producer_id_expiration_ms;
    c->transaction_max_timeout_ms = o.transaction_max_timeout_ms;
    c->transactional_id_expiration_ms = o.transactional_id_expiration_ms;
    c->transaction_abort_interval_ms = o.transaction_abort_interval_ms;
    c->disk_reserve_bytes = o.disk_reserve_bytes;
    c->log_cleaner_enable = o.log_cleaner_enable != 0;
    c->log_cleaner_backoff_ms = o.log_cleaner_backoff_ms;
    c->log_cleaner_dedupe_buffer_size = o.log_cleaner_dedupe_buffer_size;
    c->log_cleaner_io_max_bytes_per_sec = o.log_cleaner_io_max_bytes_per_sec;
    c->offsets_topic_partitions = 1;
    c->table_index_max_bytes = o.table_index_max_bytes;
    c->connections_max_idle_ms = 600000;
    c->health_events = true;
    c->health_events_rate = o.health_events_rate;
    c->health_check_interval_ms = o.health_check_interval_ms;
    c->health_lag_events = o.health_lag_events;
    c->health_lag_ms = o.health_lag_ms;
    c->health_disk_percent = o.health_disk_percent;
    c->health_fsync_ms = o.health_fsync_ms;
    c->queue_schedule_horizon_ms = o.queue_schedule_horizon_ms;
    c->queue_scheduled_max = o.queue_scheduled_max;
    http_server_config hc;
    http_server_config_default(&hc);
    c->http_request_timeout_ms = hc.request_timeout_ms;
    c->http_idle_timeout_ms = hc.idle_timeout_ms;
    c->http_max_body_bytes = hc.limits.max_body;
    c->http_sse_heartbeat_ms = hc.sse_heartbeat_ms;
    c->http_sse_stall_timeout_ms = hc.sse_stall_timeout_ms;
    resp_server_config rc;
    resp_server_config_default(&rc);
    c->redis_max_reply_bytes = (int64_t)rc.max_reply;
    c->redis_monitor_buffer_bytes = (int64_t)rc.monitor_limit;
    c->redis_stream_node_max_entries = rc.stream_node_max_entries;
    c->redis_stream_node_max_bytes = rc.stream_node_max_bytes;
    snprintf(c->admin_user, sizeof(c->admin_user), "admin");
    snprintf(c->kafka_sasl_mechanisms, sizeof(c->kafka_sasl_mechanisms),
             "SCRAM-SHA-256,SCRAM-SHA-512,PLAIN");
    snprintf(c->super_users, sizeof(c->super_users), "admin");
    c->anonymous_all = true;
    snprintf(c->kafka_tls.listen, sizeof(c->kafka_tls.listen), "off");
    snprintf(c->http_tls.listen, sizeof(c->http_tls.listen), "off");
    snprintf(c->schema_registry_prefix, sizeof(c->schema_registry_prefix), "/registry");
    snprintf(c->schema_registry_listen, sizeof(c->schema_registry_listen), "off");
    c->schema_registry_max_schemas = 100000;
    c->schema_registry_max_schema_bytes = 1 << 20;
    c->schema_validation_threads = -1;
    snprintf(c->redis_tls.listen, sizeof(c->redis_tls.listen), "off");
    otlp_config_defaults(&c->otlp);
    cluster_config_defaults(&c->cluster);
}

/* The integer keys: name, bounds, where the value goes (int32 or int64). */
typedef struct int_key {
    const char *name;
    int64_t lo, hi;
    size_t off;
    bool wide;
} int_key;

static const int_key int_keys[] = {
    {"group.initial.rebalance.delay.ms", 0, 300000,
     offsetof(td_server_config, group_initial_rebalance_delay_ms), false},
    {"group.min.session.timeout.ms", 1, 3600000,
     offsetof(td_server_config, group_min_session_timeout_ms), false},
    {"group.max.session.timeout.ms", 1, 86400000,
     offsetof(td_server_config, group_max_session_timeout_ms), false},
    {"group.max.size", 1, 1000000, offsetof(td_server_config, group_max_size), false},
    {"offsets.retention.minutes", 1, 5256000, offsetof(td_server_config, offsets_retention_minutes),
     true},
    {"producer.id.expiration.ms", 1, INT64_MAX / 2,
     offsetof(td_server_config, producer_id_expiration_ms), true},
    {"transaction.max.timeout.ms", 1, INT32_MAX,
     offsetof(td_server_config, transaction_max_timeout_ms), true},
    {"transactional.id.expiration.ms", 1, INT64_MAX / 2,
     offsetof(td_server_config, transactional_id_expiration_ms), true},
    {"transaction.abort.timed.out.transaction.cleanup.interval.ms", 1, 86400000,
     offsetof(td_server_config, transaction_abort_interval_ms), true},
    {"disk.reserve.bytes", 0, (int64_t)1 << 30, offsetof(td_server_config, disk_reserve_bytes),
     true},
    {"table.index.max.bytes", 1 << 16, INT64_MAX / 2,
     offsetof(td_server_config, table_index_max_bytes), true},
    {"fault.txn.pause.after.prepare.ms", 0, 3600000,
     offsetof(td_server_config, fault_txn_pause_ms), true},
    {"fault.drop.after.append", 0, 1000000, offsetof(td_server_config, fault_drop_after_append),
     false},
    {"connections.max.reauth.ms", 0, INT64_MAX / 2,
     offsetof(td_server_config, connections_max_reauth_ms), true},
    {"connections.max.idle.ms", 0, INT64_MAX / 2,
     offsetof(td_server_config, connections_max_idle_ms), true},
    {"max.partitions", 0, 100000000, offsetof(td_server_config, max_partitions), true},
    {"log.cleaner.backoff.ms", 1, 86400000, offsetof(td_server_config, log_cleaner_backoff_ms),
     true},
    {"log.cleaner.dedupe.buffer.size", 1 << 20, (int64_t)1 << 40,
     offsetof(td_server_config, log_cleaner_dedupe_buffer_size), true},
    {"log.cleaner.io.max.bytes.per.second", 0, (int64_t)1 << 40,
     offsetof(td_server_config, log_cleaner_io_max_bytes_per_sec), true},
    {"offsets.topic.num.partitions", 1, 1000, offsetof(td_server_config, offsets_topic_partitions),
     false},
    {"http.request.timeout.ms", 100, 3600000, offsetof(td_server_config, http_request_timeout_ms),
     true},
    {"http.idle.timeout.ms", 100, 86400000, offsetof(td_server_config, http_idle_timeout_ms), true},
    {"http.max.body.bytes", 1024, 1 << 30, offsetof(td_server_config, http_max_body_bytes), true},
    {"http.sse.heartbeat.ms", 100, 3600000, offsetof(td_server_config, http_sse_heartbeat_ms),
     true},
    {"http.sse.stall.timeout.ms", 100, 3600000,
     offsetof(td_server_config, http_sse_stall_timeout_ms), true},
    {"redis.max.reply.bytes", 65536, (int64_t)1 << 40,
     offsetof(td_server_config, redis_max_reply_bytes), true},
    {"redis.monitor.buffer.bytes", 65536, (int64_t)1 << 40,
     offsetof(td_server_config, redis_monitor_buffer_bytes), true},
    {"redis.stream.node.max.entries", 0, INT64_MAX,
     offsetof(td_server_config, redis_stream_node_max_entries), true},
    {"redis.stream.node.max.bytes", 0, INT64_MAX,
     offsetof(td_server_config, redis_stream_node_max_bytes), true},
    {"log.rate.limit", 0, 1000000, offsetof(td_server_config, log_rate_limit), false},
    {"max.connections", 0, 100000000, offsetof(td_server_config, max_connections), true},
    {"schema.registry.max.schemas", 1, 100000000,
     offsetof(td_server_config, schema_registry_max_schemas), true},
    {"schema.registry.max.schema.bytes", 1024, 64 << 20,
     offsetof(td_server_config, schema_registry_max_schema_bytes), true},
    {"schema.validation.threads", -1, 256, offsetof(td_server_config, schema_validation_threads),
     false},
    {"health.events.rate", 1, 1000000, offsetof(td_server_config, health_events_rate), true},
    {"health.check.interval.ms", 10, 3600000, offsetof(td_server_config, health_check_interval_ms),
     true},
    {"health.lag.events", 0, INT64_MAX / 2, offsetof(td_server_config, health_lag_events), true},
    {"health.lag.ms", 0, INT64_MAX / 2, offsetof(td_server_config, health_lag_ms), true},
    {"health.disk.percent", 1, 100, offsetof(td_server_config, health_disk_percent), true},
    {"health.fsync.ms", -1, 3600000, offsetof(td_server_config, health_fsync_ms), true},
    {"queue.schedule.horizon.ms", 100, 86400000,
     offsetof(td_server_config, queue_schedule_horizon_ms), true},
    {"queue.scheduled.max", 1, 1000000000, offsetof(td_server_config, queue_scheduled_max), true},
};

static int parse_bool(const char *v, bool *out)
{
    if (!strcmp(v, "true") || !strcmp(v, "on") || !strcmp(v, "1") || !strcmp(v, "yes"))
        *out = true;
    else if (!strcmp(v, "false") || !strcmp(v, "off") || !strcmp(v, "0") || !strcmp(v, "no"))
        *out = false;
    else
        return -1;
    return 0;
}

static int parse_int(const char *v, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi)
        return -1;
    *out = x;
    return 0;
}

/* HOST:PORT with a port 0-65535, "[v6]:PORT", or "off". */
static int parse_listen(const char *v, char *host, size_t hostlen, int *port)
{
    if (!strcmp(v, "off"))
        return 1;
    const char *colon = strrchr(v, ':');
    if (!colon || colon == v)
        return -1;
    const char *h = v;
    size_t hl = (size_t)(colon - v);
    if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl == 0 || hl >= hostlen)
        return -1;
    int64_t p;
    if (parse_int(colon + 1, 0, 65535, &p) != 0)
        return -1;
    memcpy(host, h, hl);
    host[hl] = 0;
    *port = (int)p;
    return 0;
}

static const char *const client_auth_names[] = {"none", "requested", "required"};

/* <listener>.auth: none or required. */
static int parse_auth(const char *key, const char *value, bool *out)
{
    if (!strcmp(value, "none") || !strcmp(value, "required")) {
        *out = value[0] == 'r';
        return 0;
    }
    return td_fail(TD_ECONFIG, "%s: expected none or required, got '%s'", key, value);
}

/* Parses a kafka.listeners value: 0 with *n entries, or TD_ECONFIG naming the bad entry. */
static int server_kafka_listeners(const char *value, td_kafka_listener *out, int *n)
{
    static const char *const protos[] = {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"};
    *n = 0;
    const char *p = value;
    while (*p) {
        size_t len = strcspn(p, ",");
        char entry[300];
        const char *s = p;
        while (len && *s == ' ')
            s++, len--;
        while (len && s[len - 1] == ' ')
            len--;
        if (len == 0 || len >= sizeof(entry))
            return td_fail(TD_ECONFIG, "kafka.listeners: an empty or too long entry");
        memcpy(entry, s, len);
        entry[len] = 0;
        char *sep = strstr(entry, "://");
        if (!sep)
            return td_fail(TD_ECONFIG,
                           "kafka.listeners: '%s' is not PROTOCOL://HOST:PORT (PLAINTEXT, SSL, "
                           "SASL_PLAINTEXT or SASL_SSL)",
                           entry);
        *sep = 0;
        if (*n == TD_KAFKA_LISTENERS_MAX)
            return td_fail(TD_ECONFIG, "kafka.listeners: at most %d listeners",
                           TD_KAFKA_LISTENERS_MAX);
        td_kafka_listener *l = &out[*n];
        memset(l, 0, sizeof(*l));
        for (size_t i = 0; i < TD_ARRAY_LEN(protos); i++)
            if (!strcasecmp(entry, protos[i]))
                snprintf(l->protocol, sizeof(l->protocol), "%s", protos[i]);
        if (!l->protocol[0])
            return td_fail(TD_ECONFIG,
                           "kafka.listeners: unknown security protocol '%s' (PLAINTEXT, SSL, "
                           "SASL_PLAINTEXT or SASL_SSL)",
                           entry);
        if (parse_listen(sep + 3, l->host, sizeof(l->host), &l->port) != 0)
            return td_fail(TD_ECONFIG, "kafka.listeners: '%s' is not HOST:PORT", sep + 3);
        l->tls = strstr(l->protocol, "SSL") != NULL;
        l->sasl = !strncmp(l->protocol, "SASL", 4);
        (*n)++;
        p += strcspn(p, ",");
        if (*p)
            p++;
    }
    return 0;
}

/* kafka.sasl.mechanisms: a non-empty comma-separated list of the mechanisms tidings has. */
static int check_sasl_mechanisms(const char *value)
{
    static const char *const known[] = {"SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"};
    const char *p = value;
    bool any = false;
    while (*p) {
        size_t n = strcspn(p, ",");
        const char *s = p;
        while (n && *s == ' ')
            s++, n--;
        while (n && s[n - 1] == ' ')
            n--;
        bool ok = n == 0;
        for (size_t i = 0; i < TD_ARRAY_LEN(known) && !ok; i++)
            ok = strlen(known[i]) == n && !strncmp(s, known[i], n);
        if (!ok)
            return td_fail(TD_ECONFIG,
                           "kafka.sasl.mechanisms: '%.*s' is not one of SCRAM-SHA-256, "
                           "SCRAM-SHA-512, PLAIN",
                           (int)n, s);
        any = any || n > 0;
        p += strcspn(p, ",");
        if (*p)
            p++;
    }
    if (!any)
        return td_fail(TD_ECONFIG, "kafka.sasl.mechanisms: at least one mechanism is needed");
    return 0;
}

/* The TLS listener a key beginning "<proto>.tls" belongs to, and the rest of the key after
 * "<proto>.tls" ("", ".cert.file", ...); NULL if the key is not one of them. */
static td_tls_listener_config *tls_key(td_server_config *c, const char *key, const char **rest)
{
    static const char *const protos[] = {"kafka", "http", "redis"};
    td_tls_listener_config *cfgs[] = {&c->kafka_tls, &c->http_tls, &c->redis_tls};
    for (size_t i = 0; i < TD_ARRAY_LEN(protos); i++) {
        size_t pl = strlen(protos[i]);
        if (!strncmp(key, protos[i], pl) && !strncmp(key + pl, ".tls", 4)) {
            *rest = key + pl + 4;
            return cfgs[i];
        }
    }
    return NULL;
}

static int tls_config_set(td_tls_listener_config *t, const char *key, const char *rest,
                          const char *value)
{
    char host[256];
    int port;
    char *dst = NULL;
    size_t cap = 0;
    if (!*rest) {
        if (parse_listen(value, host, sizeof(host), &port) < 0 || strlen(value) >= sizeof(t->listen))
            return td_fail(TD_ECONFIG, "%s: expected HOST:PORT or off, got '%s'", key, value);
        snprintf(t->listen, sizeof(t->listen), "%s", value);
        return 0;
    }
    if (!strcmp(rest, ".auth"))
        return parse_auth(key, value, &t->auth);
    if (!strcmp(rest, ".client.auth")) {
        for (int i = 0; i < 3; i++)
            if (!strcmp(value, client_auth_names[i])) {
                t->client_auth = i;
                return 0;
            }
        return td_fail(TD_ECONFIG, "%s: expected none, requested or required, got '%s'", key,
                       value);
    }
    if (!strcmp(rest, ".cert.file")) {
        dst = t->cert_file;
        cap = sizeof(t->cert_file);
    } else if (!strcmp(rest, ".key.file")) {
        dst = t->key_file;
        cap = sizeof(t->key_file);
    } else if (!strcmp(rest, ".ca.file")) {
        dst = t->ca_file;
        cap = sizeof(t->ca_file);
    } else {
        return td_fail(TD_ECONFIG, "unknown configuration key '%s'", key);
    }
    if (strlen(value) >= cap)
        return td_fail(TD_ECONFIG, "%s: at most %zu bytes", key, cap - 1);
    snprintf(dst, cap, "%s", value);
    return 0;
}

/* The schema registry's listener keys: schema.registry.prefix and schema.registry.listen. */
static int registry_config_set(td_server_config *c, const char *key, const char *value)
{
    if (!strcmp(key, "schema.registry.listen")) {
        char host[256];
        int port;
        if (parse_listen(value, host, sizeof(host), &port) < 0 ||
            strlen(value) >= sizeof(c->schema_registry_listen))
            return td_fail(TD_ECONFIG, "%s: expected HOST:PORT or off, got '%s'", key, value);
        snprintf(c->schema_registry_listen, sizeof(c->schema_registry_listen), "%s", value);
        return 0;
    }
    /* "" or "/name[/name...]", without a trailing '/', of URL-safe characters. */
    size_t len = strlen(value);
    bool ok = len < sizeof(c->schema_registry_prefix) &&
              (len == 0 || (value[0] == '/' && value[len - 1] != '/'));
    for (size_t i = 0; ok && i < len; i++)
        ok = isalnum((unsigned char)value[i]) || strchr("/-._~", value[i]);
    if (!ok)
        return td_fail(TD_ECONFIG,
                       "schema.registry.prefix: expected \"\" or a path like /registry, got '%s'",
                       value);
    snprintf(c->schema_registry_prefix, sizeof(c->schema_registry_prefix), "%s", value);
    return 0;
}

int server_config_set(td_server_config *c, const char *key, const char *value)
{
    int64_t n;
    char host[256];
    int port;
    const char *rest;
    td_tls_listener_config *tls = tls_key(c, key, &rest);
    if (tls)
        return tls_config_set(tls, key, rest, value);
    int orc = otlp_config_set(&c->otlp, key, value);
    if (orc <= 0 || (orc = cluster_config_set(&c->cluster, key, value)) <= 0)
        return orc;
    if (!strcmp(key, "schema.registry.prefix") || !strcmp(key, "schema.registry.listen"))
        return registry_config_set(c, key, value);
    if (!strcmp(key, "data")) {
        if (!*value || strlen(value) >= sizeof(c->data))
            return td_fail(TD_ECONFIG, "data: a directory path is needed");
        snprintf(c->data, sizeof(c->data), "%s", value);
    } else if (!strcmp(key, "kafka") || !strcmp(key, "http") || !strcmp(key, "redis")) {
        if (parse_listen(value, host, sizeof(host), &port) < 0)
            return td_fail(TD_ECONFIG, "%s: expected HOST:PORT or off, got '%s'", key, value);
        char *dst = !strcmp(key, "kafka") ? c->kafka : !strcmp(key, "http") ? c->http : c->redis;
        snprintf(dst, 256, "%s", value);
    } else if (!strcmp(key, "kafka.auth") || !strcmp(key, "http.auth") ||
               !strcmp(key, "redis.auth")) {
        return parse_auth(key, value,
                          key[0] == 'k'   ? &c->kafka_auth
                          : key[0] == 'h' ? &c->http_auth
                                          : &c->redis_auth);
    } else if (!strcmp(key, "kafka.listeners")) {
        td_kafka_listener v[TD_KAFKA_LISTENERS_MAX];
        int nl;
        if (strlen(value) >= sizeof(c->kafka_listeners))
            return td_fail(TD_ECONFIG, "kafka.listeners: too long");
        int rc = server_kafka_listeners(value, v, &nl);
        if (rc)
            return rc;
        snprintf(c->kafka_listeners, sizeof(c->kafka_listeners), "%s", value);
    } else if (!strcmp(key, "kafka.sasl.mechanisms")) {
        if (strlen(value) >= sizeof(c->kafka_sasl_mechanisms))
            return td_fail(TD_ECONFIG, "kafka.sasl.mechanisms: too long");
        int rc = check_sasl_mechanisms(value);
        if (rc)
            return rc;
        snprintf(c->kafka_sasl_mechanisms, sizeof(c->kafka_sasl_mechanisms), "%s", value);
    } else if (!strcmp(key, "super.users")) {
        if (strlen(value) >= sizeof(c->super_users))
            return td_fail(TD_ECONFIG, "super.users: at most %zu bytes",
                           sizeof(c->super_users) - 1);
        snprintf(c->super_users, sizeof(c->super_users), "%s", value);
    } else if (!strcmp(key, "state.topic.fsync")) {
        td_topic_config tc;
        td_topic_config_init(&tc);
        td_config_entry ce = {"fsync", value};
        if (strlen(value) >= sizeof(c->state_topic_fsync) || td_topic_config_apply(&tc, &ce, 1))
            return td_fail(TD_ECONFIG, "state.topic.fsync: expected always, none or "
                                       "interval:<ms>, got '%s'", value);
        snprintf(c->state_topic_fsync, sizeof(c->state_topic_fsync), "%s", value);
    } else if (!strcmp(key, "anonymous.access")) {
        if (strcmp(value, "all") && strcmp(value, "acl"))
            return td_fail(TD_ECONFIG, "anonymous.access: expected all or acl, got '%s'", value);
        c->anonymous_all = value[1] == 'l';
    } else if (!strcmp(key, "redis.password")) {
        if (strlen(value) >= sizeof(c->redis_password))
            return td_fail(TD_ECONFIG, "redis.password: at most %zu bytes",
                           sizeof(c->redis_password) - 1);
        snprintf(c->redis_password, sizeof(c->redis_password), "%s", value);
    } else if (!strcmp(key, "http.allowed.hosts") || !strcmp(key, "http.cors.allowed.origins")) {
        char *dst = key[5] == 'a' ? c->http_allowed_hosts : c->http_cors_allowed_origins;
        if (strlen(value) >= sizeof(c->http_allowed_hosts))
            return td_fail(TD_ECONFIG, "%s: at most %zu bytes", key,
                           sizeof(c->http_allowed_hosts) - 1);
        snprintf(dst, sizeof(c->http_allowed_hosts), "%s", value);
    } else if (!strcmp(key, "allow.anonymous")) {
        if (parse_bool(value, &c->allow_anonymous) != 0)
            return td_fail(TD_ECONFIG, "allow.anonymous: expected true or false, got '%s'", value);
    } else if (!strcmp(key, "admin.user")) {
        if (td_user_name_validate(value) != 0)
            return td_fail(TD_ECONFIG, "admin.user: %s", td_last_error());
        snprintf(c->admin_user, sizeof(c->admin_user), "%s", value);
    } else if (!strcmp(key, "log.cleaner.enable")) {
        if (parse_bool(value, &c->log_cleaner_enable) != 0)
            return td_fail(TD_ECONFIG, "log.cleaner.enable: expected true or false, got '%s'",
                           value);
    } else if (!strcmp(key, "trace.inject")) {
        if (strcmp(value, "none") && strcmp(value, "missing"))
            return td_fail(TD_ECONFIG, "trace.inject: expected none or missing, got '%s'", value);
        c->trace_inject = value[0] == 'm' ? TD_TRACE_INJECT_MISSING : TD_TRACE_INJECT_NONE;
    } else if (!strcmp(key, "health.events")) {
        if (parse_bool(value, &c->health_events) != 0)
            return td_fail(TD_ECONFIG, "health.events: expected true or false, got '%s'", value);
    } else if (!strcmp(key, "trace.inject.sampled")) {
        if (parse_bool(value, &c->trace_inject_sampled) != 0)
            return td_fail(TD_ECONFIG, "trace.inject.sampled: expected true or false, got '%s'",
                           value);
    } else if (!strcmp(key, "redis.notify.keyspace.events")) {
        if (resp_notify_flags_parse(value, strlen(value)) < 0 ||
            strlen(value) >= sizeof(c->redis_notify_keyspace_events))
            return td_fail(TD_ECONFIG,
                           "redis.notify.keyspace.events: expected classes of "
                           "'Ag$lshzxeKEtmdn' (for example KEA or Et), got '%s'",
                           value);
        snprintf(c->redis_notify_keyspace_events, sizeof(c->redis_notify_keyspace_events), "%s",
                 value);
    } else if (!strcmp(key, "redis.allow.flush")) {
        if (parse_bool(value, &c->redis_allow_flush) != 0)
            return td_fail(TD_ECONFIG, "redis.allow.flush: expected true or false, got '%s'",
                           value);
    } else if (!strcmp(key, "advertised.host")) {
        if (strlen(value) >= sizeof(c->advertised_host))
            return td_fail(TD_ECONFIG, "advertised.host: too long");
        snprintf(c->advertised_host, sizeof(c->advertised_host), "%s", value);
    } else if (!strcmp(key, "loops")) {
        if (parse_int(value, 0, 64, &n) != 0)
            return td_fail(TD_ECONFIG, "loops: expected 0 (one per core) to 64, got '%s'", value);
        c->loops = (int)n;
    } else if (!strcmp(key, "auto.create.topics")) {
        if (parse_bool(value, &c->auto_create_topics) != 0)
            return td_fail(TD_ECONFIG, "auto.create.topics: expected true or false, got '%s'",
                           value);
    } else if (!strcmp(key, "default.partitions")) {
        if (parse_int(value, 1, 100000, &n) != 0)
            return td_fail(TD_ECONFIG, "default.partitions: expected 1 to 100000, got '%s'",
                           value);
        c->default_partitions = (int32_t)n;
    } else if (!strcmp(key, "log.level")) {
        if (td_log_level_parse(value) < 0)
            return td_fail(TD_ECONFIG,
                           "log.level: expected debug, info, warn, error or off, got '%s'", value);
        snprintf(c->log_level, sizeof(c->log_level), "%s", value);
    } else if (!strcmp(key, "net.buffer.memory.bytes")) {
        if (parse_int(value, 0, (int64_t)1 << 46, &n) != 0 ||
            (n != 0 && n < (int64_t)NET_BUFFER_MEMORY_MIN))
            return td_fail(TD_ECONFIG,
                           "net.buffer.memory.bytes: expected 0 (derived from memory) or "
                           "%zu to 2^46, got '%s'",
                           NET_BUFFER_MEMORY_MIN, value);
        c->net_buffer_memory_bytes = n;
    } else if (!strcmp(key, "shutdown.grace.ms")) {
        if (parse_int(value, 0, 3600000, &n) != 0)
            return td_fail(TD_ECONFIG, "shutdown.grace.ms: expected 0 to 3600000, got '%s'",
                           value);
        c->shutdown_grace_ms = n;
    } else {
        for (size_t i = 0; i < TD_ARRAY_LEN(int_keys); i++) {
            const int_key *k = &int_keys[i];
            if (strcmp(key, k->name) != 0)
                continue;
            if (parse_int(value, k->lo, k->hi, &n) != 0)
                return td_fail(TD_ECONFIG, "%s: expected %" PRId64 " to %" PRId64 ", got '%s'",
                               key, k->lo, k->hi, value);
            if (k->wide)
                *(int64_t *)((char *)c + k->off) = n;
            else
                *(int32_t *)((char *)c + k->off) = (int32_t)n;
            return 0;
        }
        return td_fail(TD_ECONFIG, "unknown configuration key '%s'", key);
    }
    return 0;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = 0;
    return s;
}

int server_config_load_file(td_server_config *c, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return td_fail(TD_ECONFIG, "cannot read config file %s: %s", path, strerror(errno));
    char line[4096];
    int lineno = 0, rc = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = 0;
        char *s = trim(line);
        if (!*s)
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            rc = td_fail(TD_ECONFIG, "%s:%d: expected 'key = value'", path, lineno);
            break;
        }
        *eq = 0;
        char *k = trim(s), *v = trim(eq + 1);
        if ((rc = server_config_set(c, k, v)) != 0) {
            char why[512];
            snprintf(why, sizeof(why), "%s", td_last_error());
            rc = td_fail(rc, "%s:%d: %s", path, lineno, why);
            break;
        }
    }
    fclose(f);
    return rc;
}

int server_config_from_env(td_server_config *c)
{
    size_t nkeys = TD_ARRAY_LEN(keys) - 1, nother = 0;
    while (otlp_config_keys[nother])
        nother++;
    for (size_t i = 0; i < nkeys + nother || cluster_config_keys[i - nkeys - nother]; i++) {
        const char *key = i < nkeys            ? keys[i]
                          : i < nkeys + nother ? otlp_config_keys[i - nkeys]
                                               : cluster_config_keys[i - nkeys - nother];
        char name[64] = "TIDINGS_";
        size_t n = strlen(name);
        for (const char *k = key; *k && n + 1 < sizeof(name); k++)
            name[n++] = *k == '.' ? '_' : (char)toupper((unsigned char)*k);
        name[n] = 0;
        const char *v = getenv(name);
        if (v && *v) {
            int rc = server_config_set(c, key, v);
            if (rc) {
                char why[512];
                snprintf(why, sizeof(why), "%s", td_last_error());
                return td_fail(rc, "%s: %s", name, why);
            }
        }
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Process metrics, read when scraped: Prometheus's standard process_* series and the version.
 */
static int64_t process_start_ms;

static void process_collect(void *arg, td_metrics_out *out)
{
    (void)arg;
    td_metrics_text_family(out, "tidings_build_info", "The broker's version.", TD_GAUGE);
    td_metrics_text_sample(out, "tidings_build_info", (const char *const[]){"version"},
                           (const char *const[]){TD_VERSION_STRING}, 1, 1);
    td_metrics_text_family(out, "process_start_time_seconds",
                           "Start time of the process since the Unix epoch in seconds.",
                           TD_GAUGE);
    td_metrics_text_sample(out, "process_start_time_seconds", NULL, NULL, 0,
                           (double)process_start_ms / 1000.0);
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                     (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
        td_metrics_text_family(out, "process_cpu_seconds_total",
                               "Total user and system CPU time spent in seconds.", TD_COUNTER);
        td_metrics_text_sample(out, "process_cpu_seconds_total", NULL, NULL, 0, cpu);
    }
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) == 2) {
            td_metrics_text_family(out, "process_resident_memory_bytes",
                                   "Resident memory size in bytes.", TD_GAUGE);
            td_metrics_text_sample(out, "process_resident_memory_bytes", NULL, NULL, 0,
                                   (double)rss * (double)sysconf(_SC_PAGESIZE));
        }
        fclose(f);
    }
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        long n = 0;
        for (struct dirent *de; (de = readdir(d)) != NULL;)
            n += de->d_name[0] != '.';
        closedir(d);
        td_metrics_text_family(out, "process_open_fds", "Number of open file descriptors.",
                               TD_GAUGE);
        td_metrics_text_sample(out, "process_open_fds", NULL, NULL, 0, (double)(n - 1));
    }
}

/*
 * Raises the soft limit on descriptors to the hard one, as most servers do (each connection,
 * and each segment of the data directory, holds one; systemd's default soft limit is 1024). The
 * hard limit is the operator's; max.connections is derived from what this leaves.
 */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
        return;
    rlim_t want = rl.rlim_max == RLIM_INFINITY ? (rlim_t)1 << 20 : rl.rlim_max;
    if (want <= rl.rlim_cur)
        return;
    rlim_t was = rl.rlim_cur;
    rl.rlim_cur = want;
    if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
        TD_DEBUG("server", "descriptor limit raised from %llu to %llu", (unsigned long long)was,
                 (unsigned long long)want);
}

/* max.partitions when not set: half of the descriptor limit (each partition holds one, and
 * connections need the rest), at least 16. */
static int64_t default_max_partitions(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 512;
    int64_t nofile = rl.rlim_cur == RLIM_INFINITY ? (int64_t)1 << 20 : (int64_t)rl.rlim_cur;
    return TD_MAX(nofile / 2, (int64_t)16);
}

/* The partitions of every topic. */
static int64_t partition_count(td_engine *e)
{
    td_topic_info *v = NULL;
    size_t n = 0;
    int64_t total = 0;
    if (td_topic_list(e, &v, &n) == 0)
        for (size_t i = 0; i < n; i++)
            total += v[i].partitions;
    free(v);
    return total;
}

/* Whether every address host stands for is a loopback address (127.0.0.0/8, ::1, or an IPv4
 * one mapped into IPv6). A name is resolved as the listener will resolve it; a name that does
 * not resolve fails later, when the listener binds. */
static bool host_is_loopback(const char *host)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, NULL, &hints, &res) != 0)
        return true;
    bool loopback = true;
    for (struct addrinfo *a = res; a && loopback; a = a->ai_next) {
        if (a->ai_family == AF_INET) {
            const struct sockaddr_in *v4 = (const struct sockaddr_in *)a->ai_addr;
            loopback = (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
        } else if (a->ai_family == AF_INET6) {
            const struct in6_addr *v6 = &((const struct sockaddr_in6 *)a->ai_addr)->sin6_addr;
            loopback = IN6_IS_ADDR_LOOPBACK(v6) ||
                       (IN6_IS_ADDR_V4MAPPED(v6) && v6->s6_addr[12] == 127);
        } else {
            loopback = false;
        }
    }
    freeaddrinfo(res);
    return loopback;
}

/* Safe defaults (docs/security.md): without authentication, a listener binds loopback
 * addresses only, unless allow.anonymous says to serve everyone who can reach it; then a
 * warning at every start. The Redis listener with redis.password set is authenticated. */
/* One listener's address against the safe defaults: 0, or TD_ECONFIG when it is not loopback,
 * does not authenticate and allow.anonymous is off (a warning when it is on). */
static int check_listener(const td_server_config *c, const char *name, const char *listen,
                          bool authenticated, const char *hint)
{
    char host[256];
    int port;
    if (parse_listen(listen, host, sizeof(host), &port) != 0 || authenticated ||
        host_is_loopback(host))
        return 0;
    if (!c->allow_anonymous)
        return td_fail(TD_ECONFIG,
                       "%s: %s is not a loopback address, and this listener does not "
                       "authenticate its clients: anyone who can reach it could read, write "
                       "and delete every topic. Listen on 127.0.0.1, %s, require client "
                       "certificates on a TLS listener (<proto>.tls.client.auth=required), "
                       "or set allow.anonymous=true (--allow-anonymous true) to serve "
                       "everyone anyway",
                       name, listen, hint);
    TD_WARN("server",
            "%s: listening on %s without authentication (allow.anonymous=true): anyone who "
            "can reach it can read, write and delete every topic",
            name, listen);
    return 0;
}

static int check_exposure(const td_server_config *c)
{
    /* A listener that requires users authenticates its clients; so does a TLS listener that
     * requires client certificates: only a holder of a certificate the CA signed gets past
     * the handshake. */
    bool redis_pw = c->redis_password[0] != 0;
    int rc = 0;
    if (c->kafka_listeners[0]) {
        td_kafka_listener v[TD_KAFKA_LISTENERS_MAX];
        int n = 0;
        if ((rc = server_kafka_listeners(c->kafka_listeners, v, &n)) != 0)
            return rc;
        for (int i = 0; i < n && rc == 0; i++) {
            char name[64], listen[300];
            snprintf(name, sizeof(name), "kafka (%.15s)", v[i].protocol);
            snprintf(listen, sizeof(listen), strchr(v[i].host, ':') ? "[%s]:%d" : "%s:%d",
                     v[i].host, v[i].port);
            rc = check_listener(c, name, listen,
                                v[i].sasl || (v[i].tls && c->kafka_tls.client_auth == 2),
                                "use SASL_PLAINTEXT or SASL_SSL");
        }
    } else if ((rc = check_listener(c, "kafka", c->kafka, c->kafka_auth,
                                    "require users (kafka.auth=required)")) == 0) {
        rc = check_listener(c, "kafka.tls", c->kafka_tls.listen,
                            c->kafka_tls.auth || c->kafka_tls.client_auth == 2,
                            "require users (kafka.tls.auth=required)");
    }
    if (rc == 0)
        rc = check_listener(c, "http", c->http, c->http_auth,
                            "require users (http.auth=required)");
    if (rc == 0)
        rc = check_listener(c, "schema.registry.listen", c->schema_registry_listen, c->http_auth,
                            "require users (http.auth=required)");
    if (rc == 0)
        rc = check_listener(c, "http.tls", c->http_tls.listen,
                            c->http_tls.auth || c->http_tls.client_auth == 2,
                            "require users (http.tls.auth=required)");
    if (rc == 0)
        rc = check_listener(c, "redis", c->redis, c->redis_auth || redis_pw,
                            "require users (redis.auth=required) or a password "
                            "(redis.password)");
    if (rc == 0)
        rc = check_listener(c, "redis.tls", c->redis_tls.listen,
                            c->redis_tls.auth || c->redis_tls.client_auth == 2 || redis_pw,
                            "require users (redis.tls.auth=required) or a password "
                            "(redis.password)");
    return rc;
}

/* The TLS listeners of a running server, reloaded on SIGHUP. */
typedef struct tls_set {
    net_tls *t[TD_KAFKA_LISTENERS_MAX + 2];
    char name[TD_KAFKA_LISTENERS_MAX + 2][48];
    int n;
} tls_set;

/* What server_run builds, in the order it tears it down. */
typedef struct server {
    const td_server_config *c;
    td_engine *e;
    net_group *g;
    kafka_server *ks;
    http_server *hs;
    resp_server *rs;
    td_coord *coord;
    tls_set tls;
    /* Per protocol (kafka, http, redis): the host and bound port of the plaintext listener and
     * of the TLS one; ports -1 when off. */
    char host[3][256], tls_host[3][256];
    int bound[3], tls_bound[3];
    /* The Kafka listeners (kafka.listeners, or those kafka and kafka.tls make), with the name
     * each is printed under and its bound port. */
    td_kafka_listener kl[TD_KAFKA_LISTENERS_MAX];
    char kl_name[TD_KAFKA_LISTENERS_MAX][48];
    int kl_bound[TD_KAFKA_LISTENERS_MAX], nkl;
    /* The schema registry's own listener (schema.registry.listen), port -1 when off. */
    char reg_host[256];
    int reg_bound;
    td_cluster *cluster; /* NULL: a single broker */
} server;

static int listen_tls_at(net_group *g, tls_set *ts, const char *name, const char *host,
                         int port, const td_tls_listener_config *t, bool auth,
                         const net_proto *proto, void *arg, const net_listen_opts *base,
                         int *bound)
{
    if (ts->n == (int)TD_ARRAY_LEN(ts->t))
        return td_fail(TD_ECONFIG, "too many TLS listeners");
    /* The context keeps the name for its log lines: it lives in ts, as long as the context. */
    char *stored = ts->name[ts->n];
    snprintf(stored, sizeof(ts->name[0]), "%s", name);
    net_tls_config tc = {.name = stored,
                         .cert_file = t->cert_file,
                         .key_file = t->key_file,
                         .ca_file = t->ca_file[0] ? t->ca_file : NULL,
                         .client_auth = (net_tls_client_auth)t->client_auth};
    net_tls *tls = NULL;
    int rc = net_tls_create(&tc, &tls);
    if (rc)
        return rc;
    ts->t[ts->n++] = tls;
    net_listen_opts o = base ? *base : (net_listen_opts){0};
    o.busy_reply = NULL;
    o.tls = tls;
    o.auth_required = auth;
    return net_group_listen(g, host, port, proto, arg, &o, bound);
}

/*
 * A protocol's TLS listener (t->listen not "off"): its context from the files, then the
 * listener, beside the plaintext one and with its options (without a busy reply, which would
 * go out in plaintext, and with its own auth rule). *bound gets the port; -1 when off.
 */
static int listen_tls(net_group *g, tls_set *ts, const char *name,
                      const td_tls_listener_config *t, const net_proto *proto, void *arg,
                      const net_listen_opts *base, int *bound)
{
    char host[256];
    int port;
    *bound = -1;
    if (parse_listen(t->listen, host, sizeof(host), &port) != 0)
        return 0;
    return listen_tls_at(g, ts, name, host, port, t, t->auth, proto, arg, base, bound);
}

/* SIGHUP: every TLS listener reads its files again; one that fails keeps what it had. */
static void reload_tls(tls_set *ts)
{
    if (ts->n == 0) {
        TD_INFO("server", "SIGHUP received: no TLS listener to reload");
        return;
    }
    for (int i = 0; i < ts->n; i++) {
        if (net_tls_reload(ts->t[i]) == 0)
            TD_INFO("server", "%s: certificate and key reloaded (new connections use them)",
                    ts->name[i]);
        else
            TD_WARN("server", "%s: reload failed, keeping the previous certificate: %s",
                    ts->name[i], td_last_error());
    }
}

/* Protocol i's plaintext and TLS addresses into s->host[i] and s->tls_host[i]; whether each is
 * on. The plaintext host doubles as the protocol's host when only TLS is on. */
static void listen_addrs(server *s, int i, const char *plain, const td_tls_listener_config *t,
                         int *port, int *tls_port, bool *on_plain, bool *on_tls)
{
    *on_plain = parse_listen(plain, s->host[i], sizeof(s->host[i]), port) == 0;
    *on_tls = parse_listen(t->listen, s->tls_host[i], sizeof(s->tls_host[i]), tls_port) == 0;
    if (!*on_plain && *on_tls)
        memcpy(s->host[i], s->tls_host[i], sizeof(s->host[i]));
}

/* The Kafka listeners to open: kafka.listeners, or the plaintext and TLS ones of kafka and
 * kafka.tls (with their auth settings). */
static int kafka_listener_list(server *s)
{
    const td_server_config *c = s->c;
    s->nkl = 0;
    if (c->kafka_listeners[0]) {
        int rc = server_kafka_listeners(c->kafka_listeners, s->kl, &s->nkl);
        for (int i = 0; rc == 0 && i < s->nkl; i++)
            snprintf(s->kl_name[i], sizeof(s->kl_name[i]), "kafka (%s)", s->kl[i].protocol);
        return rc;
    }
    const char *listen[] = {c->kafka, c->kafka_tls.listen};
    for (int i = 0; i < 2; i++) {
        td_kafka_listener *l = &s->kl[s->nkl];
        memset(l, 0, sizeof(*l));
        if (parse_listen(listen[i], l->host, sizeof(l->host), &l->port) != 0)
            continue;
        l->tls = i == 1;
        l->sasl = i == 0 ? c->kafka_auth : c->kafka_tls.auth;
        snprintf(l->protocol, sizeof(l->protocol), "%s%s", l->sasl ? "SASL_" : "",
                 l->tls ? "SSL" : "PLAINTEXT");
        snprintf(s->kl_name[s->nkl], sizeof(s->kl_name[0]), "%s", i == 0 ? "kafka" : "kafka.tls");
        s->nkl++;
    }
    return 0;
}

/* advertised.listeners as DescribeConfigs shows it: every listener, by its bound port. */
static void kafka_advertised(const server *s, const char *host, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = 0;
    for (int i = 0; i < s->nkl && n < cap; i++)
        if (s->kl_bound[i] >= 0)
            n += (size_t)snprintf(out + n, cap - n, "%s%s://%s:%d", n ? "," : "",
                                  s->kl[i].protocol, host, s->kl_bound[i]);
}

static int start_kafka(server *s)
{
    const td_server_config *c = s->c;
    int rc = kafka_listener_list(s);
    if (rc || s->nkl == 0)
        return rc;
    snprintf(s->host[0], sizeof(s->host[0]), "%s", s->kl[0].host);
    kafka_server_config kc = {
        .advertised_host = c->advertised_host[0] ? c->advertised_host : s->kl[0].host,
        .port = s->kl[0].port,
        .node_id = c->cluster.coordinator[0] ? c->cluster.broker_id : 1,
        .auto_create_topics = c->auto_create_topics,
        .default_partitions = c->default_partitions,
        .cluster_id = "tidings-cluster",
        .data_dir = c->data,
        .coord = s->coord,
        .fault_drop_after_append = c->fault_drop_after_append,
        .sasl_mechanisms = c->kafka_sasl_mechanisms,
        .reauth_ms = c->connections_max_reauth_ms,
    };
    if (!strcmp(kc.advertised_host, "0.0.0.0") || !strcmp(kc.advertised_host, "::"))
        kc.advertised_host = "127.0.0.1";
    if ((rc = kafka_server_create(s->e, &kc, &s->ks)) != 0)
        return rc;
    /* Kafka closes connections idle for connections.max.idle.ms; clients reconnect. */
    for (int i = 0; i < s->nkl; i++) {
        const td_kafka_listener *l = &s->kl[i];
        net_listen_opts o = {.idle_timeout_ms = c->connections_max_idle_ms,
                             .auth_required = l->sasl};
        s->kl_bound[i] = -1;
        rc = l->tls ? listen_tls_at(s->g, &s->tls, s->kl_name[i], l->host, l->port,
                                    &c->kafka_tls, l->sasl, kafka_server_proto(), s->ks, &o,
                                    &s->kl_bound[i])
                    : net_group_listen(s->g, l->host, l->port, kafka_server_proto(), s->ks, &o,
                                       &s->kl_bound[i]);
        if (rc)
            return rc;
    }
    /* Metadata names the port of the listener each client came through; this one is for
     * what has no connection. */
    kafka_server_set_port(s->ks, s->kl_bound[0]);
    char adv[1024];
    kafka_advertised(s, kc.advertised_host, adv, sizeof(adv));
    if ((rc = kafka_server_set_listeners(s->ks, adv)) != 0)
        return rc;
    return kafka_server_attach(s->ks, s->g);
}

static int start_http(server *s)
{
    const td_server_config *c = s->c;
    int port = 0, tls_port = 0, rc;
    bool plain, tls;
    listen_addrs(s, 1, c->http, &c->http_tls, &port, &tls_port, &plain, &tls);
    bool reg = strcmp(c->schema_registry_listen, "off") != 0;
    if (!plain && !tls && !reg)
        return 0;
    http_server_config hc;
    http_server_config_default(&hc);
    hc.default_partitions = c->default_partitions;
    hc.request_timeout_ms = c->http_request_timeout_ms;
    hc.idle_timeout_ms = c->http_idle_timeout_ms;
    hc.limits.max_body = c->http_max_body_bytes;
    hc.coord = s->coord;
    hc.sse_heartbeat_ms = c->http_sse_heartbeat_ms;
    hc.sse_stall_timeout_ms = c->http_sse_stall_timeout_ms;
    snprintf(hc.allowed_hosts, sizeof(hc.allowed_hosts), "%s", c->http_allowed_hosts);
    snprintf(hc.cors_allowed_origins, sizeof(hc.cors_allowed_origins), "%s",
             c->http_cors_allowed_origins);
    snprintf(hc.registry_prefix, sizeof(hc.registry_prefix), "%s", c->schema_registry_prefix);
    if ((rc = http_server_create(s->e, &hc, &s->hs)) != 0)
        return rc;
    /* The HTTP listener serves /health, /ready and /metrics: it may accept a few connections
     * past max.connections, so that probes answer while Kafka and Redis clients hold every
     * other one. */
    net_listen_opts o = {.extra_conns = 16, .auth_required = c->http_auth};
    if (plain && (rc = net_group_listen(s->g, s->host[1], port, http_server_proto(), s->hs, &o,
                                        &s->bound[1])) != 0)
        return rc;
    if (reg) {
        /* The schema registry's own listener: the same server, which serves the registry at
         * the root of connections accepted on this port. */
        int rport;
        if (parse_listen(c->schema_registry_listen, s->reg_host, sizeof(s->reg_host), &rport) !=
                0 ||
            (rc = net_group_listen(s->g, s->reg_host, rport, http_server_proto(), s->hs, &o,
                                   &s->reg_bound)) != 0)
            return rc ? rc : td_fail(TD_ECONFIG, "schema.registry.listen: a bad address");
        http_server_set_registry_port(s->hs, s->reg_bound);
    }
    return listen_tls(s->g, &s->tls, "http.tls", &c->http_tls, http_server_proto(), s->hs, &o,
                      &s->tls_bound[1]);
}

static int start_redis(server *s)
{
    const td_server_config *c = s->c;
    int port = 0, tls_port = 0, rc;
    bool plain, tls;
    listen_addrs(s, 2, c->redis, &c->redis_tls, &port, &tls_port, &plain, &tls);
    if (!plain && !tls)
        return 0;
    resp_server_config rcfg;
    resp_server_config_default(&rcfg);
    snprintf(rcfg.password, sizeof(rcfg.password), "%s", c->redis_password);
    snprintf(rcfg.bind, sizeof(rcfg.bind), "%s", s->host[2]);
    rcfg.allow_flush = c->redis_allow_flush;
    /* A public listener that has no other authentication needs the password. */
    rcfg.password_required =
        !c->allow_anonymous &&
        ((plain && !c->redis_auth && !host_is_loopback(s->host[2])) ||
         (tls && c->redis_tls.client_auth != 2 && !c->redis_tls.auth &&
          !host_is_loopback(s->tls_host[2])));
    rcfg.max_reply = (size_t)c->redis_max_reply_bytes;
    rcfg.notify_flags = resp_notify_flags_parse(c->redis_notify_keyspace_events,
                                                strlen(c->redis_notify_keyspace_events));
    rcfg.monitor_limit = (size_t)c->redis_monitor_buffer_bytes;
    rcfg.stream_node_max_entries = c->redis_stream_node_max_entries;
    rcfg.stream_node_max_bytes = c->redis_stream_node_max_bytes;
    if ((rc = resp_server_create(s->e, &rcfg, &s->rs)) != 0)
        return rc;
    /* Redis answers a client past maxclients with this error, then closes; so do we. */
    net_listen_opts o = {.busy_reply = "-ERR max number of clients reached\r\n",
                         .auth_required = c->redis_auth};
    if (plain && (rc = net_group_listen(s->g, s->host[2], port, resp_server_proto(), s->rs, &o,
                                        &s->bound[2])) != 0)
        return rc;
    if ((rc = listen_tls(s->g, &s->tls, "redis.tls", &c->redis_tls, resp_server_proto(), s->rs,
                         &o, &s->tls_bound[2])) != 0)
        return rc;
    resp_server_set_port(s->rs, s->bound[2] >= 0 ? s->bound[2] : s->tls_bound[2]);
    return resp_server_attach(s->rs, s->g);
}

/* The group coordinator, with the consumer-group settings. */
/* The host other brokers and clients are told for a listener bound to host. */
static const char *advertised(const server *s, const char *host)
{
    if (s->c->advertised_host[0])
        return s->c->advertised_host;
    return !strcmp(host, "0.0.0.0") || !strcmp(host, "::") ? "127.0.0.1" : host;
}

/* With cluster.coordinator set: registers this broker and its listeners (all bound by now),
 * then hands the membership to the listeners; /v1/cluster describes a single broker too. */
static int start_cluster(server *s)
{
    const td_server_config *c = s->c;
    td_cluster_config cc = c->cluster;
    snprintf(cc.data_dir, sizeof(cc.data_dir), "%s", c->data);
    td_cluster_broker self = {.id = cc.coordinator[0] ? cc.broker_id : 1};
    snprintf(self.rack, sizeof(self.rack), "%s", cc.rack);
    for (int i = 0; i < s->nkl && self.nkafka < TD_CLUSTER_LISTENERS_MAX; i++) {
        if (s->kl_bound[i] < 0)
            continue;
        td_cluster_listener *l = &self.kafka[self.nkafka++];
        snprintf(l->protocol, sizeof(l->protocol), "%s", s->kl[i].protocol);
        snprintf(l->host, sizeof(l->host), "%s", advertised(s, s->kl[i].host));
        l->port = s->kl_bound[i];
    }
    if (s->bound[1] >= 0)
        snprintf(self.http, sizeof(self.http), "%s:%d", advertised(s, s->host[1]), s->bound[1]);
    if (s->bound[2] >= 0)
        snprintf(self.redis, sizeof(self.redis), "%s:%d", advertised(s, s->host[2]), s->bound[2]);
    int rc = cc.coordinator[0] ? cluster_join(&cc, &self, broker_metrics(s->e), &s->cluster) : 0;
    if (rc)
        return rc;
    if (s->cluster)
        cluster_set_observer(s->cluster, server_cluster_observe, s->e);
    if (s->ks && s->cluster)
        kafka_server_set_cluster(s->ks, s->cluster);
    if (s->hs)
        http_server_set_cluster(s->hs, s->cluster, &self);
    return 0;
}

static int start_coordinator(server *s)
{
    const td_server_config *c = s->c;
    coord_config cc;
    coord_config_defaults(&cc);
    cc.initial_rebalance_delay_ms = c->group_initial_rebalance_delay_ms;
    cc.min_session_ms = c->group_min_session_timeout_ms;
    cc.max_session_ms = c->group_max_session_timeout_ms;
    cc.max_size = c->group_max_size;
    cc.offsets_retention_ms = c->offsets_retention_minutes * 60000;
    if (cc.min_session_ms > cc.max_session_ms)
        return td_fail(TD_ECONFIG, "group.min.session.timeout.ms is above "
                                   "group.max.session.timeout.ms");
    return coord_create(s->e, &cc, &s->coord);
}

/* The engine with its options, the first administrator and authorization's settings; *fds
 * gets the descriptors left for partitions that max.partitions still allows. */
static int open_engine(server *s, size_t *fds)
{
    const td_server_config *c = s->c;
    td_options opts;
    td_options_init(&opts);
    opts.producer_id_expiration_ms = c->producer_id_expiration_ms;
    opts.transaction_max_timeout_ms = c->transaction_max_timeout_ms;
    opts.transactional_id_expiration_ms = c->transactional_id_expiration_ms;
    opts.transaction_abort_interval_ms = c->transaction_abort_interval_ms;
    opts.txn_fault_pause_ms = c->fault_txn_pause_ms;
    opts.disk_reserve_bytes = c->disk_reserve_bytes;
    opts.log_cleaner_enable = c->log_cleaner_enable;
    opts.trace_inject = c->trace_inject;
    opts.trace_sampled = c->trace_inject_sampled;
    opts.health_events = c->health_events;
    opts.health_events_rate = c->health_events_rate;
    opts.health_check_interval_ms = c->health_check_interval_ms;
    opts.health_lag_events = c->health_lag_events;
    opts.health_lag_ms = c->health_lag_ms;
    opts.health_disk_percent = c->health_disk_percent;
    opts.health_fsync_ms = c->health_fsync_ms;
    opts.queue_schedule_horizon_ms = c->queue_schedule_horizon_ms;
    opts.queue_scheduled_max = c->queue_scheduled_max;
    opts.log_cleaner_backoff_ms = c->log_cleaner_backoff_ms;
    opts.log_cleaner_dedupe_buffer_size = c->log_cleaner_dedupe_buffer_size;
    opts.log_cleaner_io_max_bytes_per_sec = c->log_cleaner_io_max_bytes_per_sec;
    opts.table_index_max_bytes = c->table_index_max_bytes;
    opts.max_partitions = c->max_partitions > 0 ? c->max_partitions : default_max_partitions();
    opts.offsets_topic_partitions = c->offsets_topic_partitions;
    opts.schema_registry_max_schemas = c->schema_registry_max_schemas;
    opts.schema_registry_max_schema_bytes = c->schema_registry_max_schema_bytes;
    opts.schema_validation_threads = c->schema_validation_threads;
    snprintf(opts.state_topic_fsync, sizeof(opts.state_topic_fsync), "%s", c->state_topic_fsync);
    int rc = td_engine_open(c->data, &opts, &s->e);
    if (rc)
        return rc;
    if ((rc = server_first_admin(s->e, c->admin_user)) != 0 ||
        (rc = broker_authz_configure(s->e, c->super_users, c->anonymous_all)) != 0)
        return rc;
    /* Each partition holds a descriptor: those max.partitions still allows are kept out of
     * the connections' share. */
    int64_t nparts = partition_count(s->e);
    *fds = opts.max_partitions > nparts ? (size_t)(opts.max_partitions - nparts) : 0;
    process_start_ms = td_wall_ms();
    if (c->otlp.endpoint[0]) {
        otlp_exporter *x;
        if ((rc = otlp_new(&c->otlp, broker_metrics(s->e), &x)) != 0)
            return rc;
        broker_set_otlp(s->e, x); /* the engine's from here: it flushes it at its close */
    }
    return td_metrics_add_collector(broker_metrics(s->e), process_collect, NULL);
}

static void print_listeners(const server *s)
{
    static const char *const names[] = {"http", "redis"};
    static const char *const tls_names[] = {"http.tls", "redis.tls"};
    printf("tidings %s: data directory %s, %d event loop%s\n", TD_VERSION_STRING, s->c->data,
           net_group_size(s->g), net_group_size(s->g) == 1 ? "" : "s");
    /* "kafka: off" only when there is no Kafka listener at all; with only a TLS one, its own
     * line says where it is. */
    if (s->nkl == 0 || (!s->c->kafka_listeners[0] && s->kl[0].tls))
        printf("kafka: off\n");
    for (int i = 0; i < s->nkl; i++)
        if (!s->kl[i].tls || s->c->kafka_listeners[0])
            printf("%s: listening on %s:%d\n", s->kl_name[i], s->kl[i].host, s->kl_bound[i]);
    for (int i = 1; i < 3; i++)
        if (s->bound[i] >= 0)
            printf("%s: listening on %s:%d\n", names[i - 1], s->host[i], s->bound[i]);
        else
            printf("%s: off\n", names[i - 1]);
    for (int i = 0; i < s->nkl; i++)
        if (s->kl[i].tls && !s->c->kafka_listeners[0])
            printf("%s: listening on %s:%d\n", s->kl_name[i], s->kl[i].host, s->kl_bound[i]);
    for (int i = 1; i < 3; i++)
        if (s->tls_bound[i] >= 0)
            printf("%s: listening on %s:%d\n", tls_names[i - 1], s->tls_host[i], s->tls_bound[i]);
    if (s->reg_bound > 0)
        printf("schema registry: listening on %s:%d\n", s->reg_host, s->reg_bound);
    printf("ready; stop with Ctrl-C or SIGTERM\n");
    fflush(stdout);
}

/* The graceful stop, in order; returns rc, or the flush's failure when rc was 0. */
static int stop_server(server *s, int rc)
{
    char why[512];
    snprintf(why, sizeof(why), "%s", td_last_error());
    /* Members waiting in JoinGroup/SyncGroup are answered (COORDINATOR_NOT_AVAILABLE) and the
     * queued offset commits written, before the loops wind down. */
    coord_shutdown(s->coord);
    /* The queue groups and the Redis groups leave the delivery thread (their waiting acks are
     * answered by completions that run on the loops below): no dead letter or wake-up comes
     * from it once the loops are gone. */
    if (s->e) {
        queues_shutdown(s->e);
        xgroups_shutdown(s->e); /* the same for Redis consumer groups' waiting commands */
        health_quiesce(s->e);   /* health events wait for td_engine_close, when no hook is left */
    }
    http_server_stop_work(s->hs); /* redrives stop between batches */
    if (s->g) {
        if (s->hs)
            http_server_set_ready(s->hs, false);
        net_group_stop(s->g); /* in-flight work finishes; the flusher is still running */
        kafka_server_detach(s->ks);
        resp_server_detach(s->rs);
        int frc = td_engine_flush(s->e); /* runs the last durability callbacks */
        if (frc && !rc) {
            rc = frc;
            snprintf(why, sizeof(why), "flushing on shutdown: %s", td_strerror(frc));
        }
        net_group_destroy(s->g); /* runs the tasks those callbacks posted */
    }
    kafka_server_destroy(s->ks);
    http_server_destroy(s->hs);
    resp_server_destroy(s->rs);
    coord_destroy(s->coord);
    cluster_leave(s->cluster); /* its lease revoked: the others see this broker gone at once */
    for (int i = 0; i < s->tls.n; i++)
        net_tls_destroy(s->tls.t[i]); /* after the group: connections hold the contexts' SSLs */
    if (s->e)
        td_metrics_remove_collector(broker_metrics(s->e), process_collect, NULL);
    int crc = td_engine_close(s->e); /* the final sync: its failure fails the stop */
    if (crc && !rc) {
        rc = crc;
        snprintf(why, sizeof(why), "closing the data directory: %s", td_last_error());
    }
    td_log_flush_suppressed();
    if (rc)
        td_fail(rc, "%s", why[0] ? why : td_strerror(rc));
    return rc;
}

int server_run(const td_server_config *c, const sigset_t *signals)
{
    td_set_log_level(c->log_level);
    td_log_set_rate_limit(c->log_rate_limit, TD_LOG_RATE_INTERVAL_MS);
    int rc = check_exposure(c);
    if (rc == 0 && c->cluster.coordinator[0])
        rc = cluster_config_check(&c->cluster); /* before the data directory is opened */
    if (rc)
        return rc;
    raise_nofile();
    server s = {.c = c, .bound = {-1, -1, -1}, .tls_bound = {-1, -1, -1}};
    size_t reserve_fds = 0;
    if ((rc = open_engine(&s, &reserve_fds)) != 0)
        return stop_server(&s, rc);
    if (c->fault_drop_after_append > 0)
        TD_WARN("server",
                "fault.drop.after.append=%" PRId32 ": every %" PRId32 "th produce request that "
                "appends closes its connection unanswered (for tests only)",
                c->fault_drop_after_append, c->fault_drop_after_append);
    if (c->fault_txn_pause_ms > 0)
        TD_WARN("server",
                "fault.txn.pause.after.prepare.ms=%" PRId64 ": every commit and abort of a "
                "transaction waits that long before its markers (for tests only)",
                c->fault_txn_pause_ms);
    net_config nc = {.loops = c->loops,
                     .shutdown_grace_ms = c->shutdown_grace_ms,
                     .metrics = broker_metrics(s.e),
                     .buffer_memory = (size_t)c->net_buffer_memory_bytes,
                     .max_conns = (size_t)c->max_connections,
                     .reserve_fds = reserve_fds};
    if ((rc = start_coordinator(&s)) != 0 || (rc = net_group_create(&nc, &s.g)) != 0 ||
        (rc = start_kafka(&s)) != 0 || (rc = start_http(&s)) != 0 || (rc = start_redis(&s)) != 0 ||
        (rc = start_cluster(&s)) != 0 || (rc = net_group_start(s.g)) != 0)
        return stop_server(&s, rc);
    if (s.hs)
        http_server_set_ready(s.hs, true);
    print_listeners(&s);
    int sig = 0;
    while (sigwait(signals, &sig) == 0 && sig == SIGHUP)
        reload_tls(&s.tls);
    TD_INFO("server", "%s received: stopping (grace %" PRId64 " ms)",
            sig == SIGINT ? "SIGINT" : "SIGTERM", c->shutdown_grace_ms);
    return stop_server(&s, 0);
}
