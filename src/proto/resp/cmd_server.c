/*
 * cmd_server.c: the Redis listener's connection, server and keyspace commands, and the command
 * table (docs/redis.md): PING, ECHO, HELLO, AUTH, SELECT, QUIT, RESET, CLIENT, COMMAND, INFO,
 * CONFIG, DBSIZE, KEYS, SCAN, TYPE, EXISTS, DEL, UNLINK, FLUSHALL, FLUSHDB, FUNCTION, MULTI,
 * EXEC, DISCARD, WATCH and UNWATCH, with Redis 7.0's replies and error texts. A stream key is a
 * topic: the keyspace is the topics.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "broker/audit.h"
#include "proto/resp/resp_int.h"
#include "proto/resp/xnodes.h"

#define REDIS_VERSION "7.0.0" /* the behaviour implemented: Redis 7.0's */

void resp_reply_help(resp_w *w, const char *const *lines)
{
    size_t n = 0;
    while (lines[n])
        n++;
    resp_w_array(w, n);
    for (size_t i = 0; i < n; i++)
        resp_w_simple(w, lines[i]);
}

/* ---------------------------------------------------------------------------------------------
 * Connection
 */
static void cmd_ping(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    if (argc > 2) {
        resp_w_error(w, "ERR wrong number of arguments for 'ping' command");
        return;
    }
    if (rc->proto == 2 && resp_subscriptions(rc)) { /* subscribed mode: a message-like reply */
        resp_w_array(w, 2);
        resp_w_str(w, "pong");
        resp_w_bulk(w, argc == 2 ? argv[1].p : (const uint8_t *)"", argc == 2 ? argv[1].n : 0);
        return;
    }
    if (argc == 2)
        resp_w_bulk(w, argv[1].p, argv[1].n);
    else
        resp_w_simple(w, "PONG");
}

static void cmd_echo(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)rc;
    (void)argc;
    resp_w_bulk(w, argv[1].p, argv[1].n);
}

static void cmd_auth(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    if (argc > 3) {
        resp_reply_syntax(w);
        return;
    }
    if (argc == 2 && resp_default_nopass(rc)) {
        resp_w_error(w, "ERR AUTH <password> called without any password configured for the "
                        "default user. Are you sure your configuration is correct?");
        return;
    }
    if (resp_authenticate(rc, w, argc == 3 ? &argv[1] : NULL, argv[argc - 1]))
        resp_w_simple(w, "OK");
}

bool resp_name_ok(td_slice n)
{
    for (size_t i = 0; i < n.n; i++)
        if (n.p[i] < '!' || n.p[i] > '~')
            return false;
    return true;
}

void resp_set_name(rconn *rc, td_slice n)
{
    pthread_mutex_lock(&rc->s->clients_mu);
    size_t k = n.n < sizeof(rc->name) - 1 ? n.n : sizeof(rc->name) - 1;
    memcpy(rc->name, n.p, k);
    rc->name[k] = 0;
    pthread_mutex_unlock(&rc->s->clients_mu);
}

static void cmd_hello(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    long long ver = rc->proto;
    size_t i = 1;
    if (argc >= 2) {
        if (!resp_parse_ll(argv[1].p, argv[1].n, &ver)) {
            resp_w_error(w, "ERR Protocol version is not an integer or out of range");
            return;
        }
        if (ver < 2 || ver > 3) {
            resp_w_error(w, "NOPROTO unsupported protocol version");
            return;
        }
        i = 2;
    }
    const td_slice *user = NULL, *pass = NULL, *name = NULL;
    for (; i < argc; i++) {
        if (resp_arg_is(argv[i], "AUTH") && i + 2 < argc) {
            user = &argv[i + 1];
            pass = &argv[i + 2];
            i += 2;
        } else if (resp_arg_is(argv[i], "SETNAME") && i + 1 < argc) {
            name = &argv[i + 1];
            i++;
        } else {
            resp_w_errorf(w, "ERR Syntax error in HELLO option '%.*s'",
                          (int)(argv[i].n < 128 ? argv[i].n : 128), (const char *)argv[i].p);
            return;
        }
    }
    if (pass && !resp_authenticate(rc, w, user, *pass))
        return;
    if (!rc->authed) {
        resp_refuse_unauthenticated(rc, "hello");
        resp_w_error(w, "NOAUTH HELLO must be called with the client already authenticated, "
                        "otherwise the HELLO AUTH <user> <pass> option can be used to "
                        "authenticate the client and select the RESP protocol version at the "
                        "same time");
        return;
    }
    if (name && !resp_name_ok(*name)) {
        resp_w_error(w, "ERR Client names cannot contain spaces, newlines or special "
                        "characters.");
        return;
    }
    if (name)
        resp_set_name(rc, *name);
    rc->proto = (int)ver;
    w->proto = rc->proto;
    resp_w_map(w, 7);
    resp_w_str(w, "server");
    resp_w_str(w, "redis");
    resp_w_str(w, "version");
    resp_w_str(w, REDIS_VERSION);
    resp_w_str(w, "proto");
    resp_w_int(w, rc->proto);
    resp_w_str(w, "id");
    resp_w_int(w, (int64_t)rc->id);
    resp_w_str(w, "mode");
    resp_w_str(w, "standalone");
    resp_w_str(w, "role");
    resp_w_str(w, "master");
    resp_w_str(w, "modules");
    resp_w_array(w, 0);
}

static void cmd_select(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)rc;
    (void)argc;
    long long db;
    if (!resp_arg_ll(w, argv[1], &db))
        return;
    if (db != 0) /* one database: topics are not per database */
        resp_w_error(w, "ERR DB index is out of range");
    else
        resp_w_simple(w, "OK");
}

static void cmd_quit(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)argc;
    (void)argv;
    resp_w_simple(w, "OK");
    rc->closing = true;
}

static void cmd_reset(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)argc;
    (void)argv;
    resp_reset(rc);
    w->proto = rc->proto;
    resp_w_simple(w, "RESET");
}

/* ---------------------------------------------------------------------------------------------
 * INFO
 */
/* The listener's connection limit (max.connections, shared by every protocol): what Redis
 * calls maxclients. */
static size_t max_clients(const resp_server *s)
{
    return s->group ? net_group_max_conns(s->group) : 10000;
}

static void info_section(td_buf *b, const char *title, bool *first)
{
    char line[64];
    int n = snprintf(line, sizeof(line), "%s# %s\r\n", *first ? "" : "\r\n", title);
    td_buf_append(b, line, (size_t)n);
    *first = false;
}

static void info_kv(td_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void info_kv(td_buf *b, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n > 0) {
        td_buf_append(b, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
        td_buf_append(b, "\r\n", 2);
    }
}

/* Redis 7.0's selection: no argument or "default" the default sections, "all" every section
 * (commandstats included), "everything" the same here (there are no modules). */
static bool wants(size_t argc, const td_slice *argv, const char *section, bool in_default)
{
    if (argc == 1)
        return in_default;
    for (size_t i = 1; i < argc; i++)
        if (resp_arg_is(argv[i], section) || resp_arg_is(argv[i], "all") ||
            resp_arg_is(argv[i], "everything") || (in_default && resp_arg_is(argv[i], "default")))
            return true;
    return false;
}

static void cmd_info(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    resp_server *s = rc->s;
    td_buf b;
    td_buf_init(&b);
    bool first = true;
    int64_t now = td_wall_ms();
    if (wants(argc, argv, "server", true)) {
        info_section(&b, "Server", &first);
        info_kv(&b, "redis_version:%s", REDIS_VERSION);
        info_kv(&b, "tidings_version:%s", TD_VERSION_STRING);
        info_kv(&b, "redis_mode:standalone");
        info_kv(&b, "os:Linux");
        info_kv(&b, "arch_bits:%d", (int)(sizeof(void *) * 8));
        info_kv(&b, "multiplexing_api:epoll");
        info_kv(&b, "process_id:%d", (int)getpid());
        info_kv(&b, "tcp_port:%d", s->port);
        info_kv(&b, "uptime_in_seconds:%" PRId64, (now - s->start_ms) / 1000);
        info_kv(&b, "uptime_in_days:%" PRId64, (now - s->start_ms) / 86400000);
        info_kv(&b, "executable:tidings");
    }
    if (wants(argc, argv, "clients", true)) {
        pthread_mutex_lock(&s->clients_mu);
        size_t n = s->nclients;
        pthread_mutex_unlock(&s->clients_mu);
        info_section(&b, "Clients", &first);
        /* Redis 7.0's fields in its order (no cluster, no tracking, no timeout table). */
        info_kv(&b, "connected_clients:%zu", n);
        info_kv(&b, "cluster_connections:0");
        info_kv(&b, "maxclients:%zu", max_clients(s));
        info_kv(&b, "client_recent_max_input_buffer:0");
        info_kv(&b, "client_recent_max_output_buffer:0");
        info_kv(&b, "blocked_clients:%zu",
                rc->s->blocked ? net_waitset_count(rc->s->blocked) : (size_t)0);
        info_kv(&b, "tracking_clients:0");
        info_kv(&b, "clients_in_timeout_table:0");
    }
    if (wants(argc, argv, "memory", true)) {
        struct rusage ru;
        long rss = getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss * 1024 : 0;
        info_section(&b, "Memory", &first);
        info_kv(&b, "used_memory:%ld", rss);
        info_kv(&b, "maxmemory:0");
        info_kv(&b, "maxmemory_policy:noeviction");
    }
    if (wants(argc, argv, "persistence", true)) {
        info_section(&b, "Persistence", &first);
        info_kv(&b, "loading:0");
        info_kv(&b, "aof_enabled:1");
        info_kv(&b, "rdb_changes_since_last_save:0");
    }
    if (wants(argc, argv, "stats", true))
        resp_admin_info_stats(s, &b, &first);
    if (wants(argc, argv, "replication", true))
        resp_admin_info_replication(s, &b, &first);
    if (wants(argc, argv, "cpu", true)) {
        struct rusage ru;
        if (getrusage(RUSAGE_SELF, &ru) == 0) {
            info_section(&b, "CPU", &first);
            info_kv(&b, "used_cpu_sys:%ld.%06ld", (long)ru.ru_stime.tv_sec,
                    (long)ru.ru_stime.tv_usec);
            info_kv(&b, "used_cpu_user:%ld.%06ld", (long)ru.ru_utime.tv_sec,
                    (long)ru.ru_utime.tv_usec);
        }
    }
    if (wants(argc, argv, "commandstats", false)) {
        info_section(&b, "Commandstats", &first);
        resp_admin_info_commandstats(s, &b);
    }
    if (wants(argc, argv, "errorstats", true)) {
        info_section(&b, "Errorstats", &first);
        resp_admin_info_errorstats(s, &b);
    }
    if (wants(argc, argv, "keyspace", true)) {
        td_topic_info *t = NULL;
        size_t n = 0;
        info_section(&b, "Keyspace", &first);
        if (td_topic_list(s->e, &t, &n) == 0 && n)
            info_kv(&b, "db0:keys=%zu,expires=0,avg_ttl=0", n);
        free(t);
    }
    resp_w_verbatim(w, b.p ? (const char *)b.p : "", b.len);
    td_buf_free(&b);
}

/* ---------------------------------------------------------------------------------------------
 * CONFIG
 */
/* The parameters CONFIG GET shows. FIXED ones follow from tidings' own configuration (CONFIG
 * SET answers Redis's "can't set immutable config"); the others are set at run time, for the
 * whole listener, until the broker restarts. */
enum { P_FIXED, P_PASSWORD, P_ADMIN_INT, P_NOTIFY, P_XNODES };
typedef struct config_param {
    const char *name;
    int kind;
    int which; /* P_ADMIN_INT: resp_admin_get/set's */
    long long min, max;
    bool is_unsigned; /* Redis's range error says %llu */
} config_param;

static const config_param params[] = {
    {"appendonly", P_FIXED, 0, 0, 0, false},
    {"appendfsync", P_FIXED, 0, 0, 0, false},
    {"bind", P_FIXED, 0, 0, 0, false},
    {"databases", P_FIXED, 0, 0, 0, false},
    {"latency-monitor-threshold", P_ADMIN_INT, RESP_ADMIN_LATENCY_THRESHOLD, 0, LLONG_MAX, false},
    {"maxclients", P_FIXED, 0, 0, 0, false},
    {"maxmemory", P_FIXED, 0, 0, 0, false},
    {"maxmemory-policy", P_FIXED, 0, 0, 0, false},
    {"notify-keyspace-events", P_NOTIFY, 0, 0, 0, false},
    {"port", P_FIXED, 0, 0, 0, false},
    {"proto-max-bulk-len", P_FIXED, 0, 0, 0, false},
    {"requirepass", P_PASSWORD, 0, 0, 0, false},
    {"save", P_FIXED, 0, 0, 0, false},
    {"slowlog-log-slower-than", P_ADMIN_INT, RESP_ADMIN_SLOW_THRESHOLD, -1, LLONG_MAX, false},
    {"slowlog-max-len", P_ADMIN_INT, RESP_ADMIN_SLOW_MAX_LEN, 0, LONG_MAX, true},
    {"stream-node-max-bytes", P_XNODES, 0, 0, 0, false},
    {"stream-node-max-entries", P_XNODES, 0, 0, 0, false},
    {"timeout", P_FIXED, 0, 0, 0, false},
    {"tidings-allow-flush", P_FIXED, 0, 0, 0, false},
};

static void param_value(rconn *rc, const config_param *p, char *buf, size_t len)
{
    resp_server *s = rc->s;
    const char *name = p->name;
    if (p->kind == P_ADMIN_INT)
        snprintf(buf, len, "%" PRId64, resp_admin_get(s, p->which));
    else if (p->kind == P_XNODES)
        resp_xnodes_config_get(s, name, buf, len);
    else if (!strcmp(name, "appendonly"))
        snprintf(buf, len, "yes");
    else if (!strcmp(name, "appendfsync"))
        snprintf(buf, len, "always"); /* the default fsync policy of topics */
    else if (!strcmp(name, "bind"))
        snprintf(buf, len, "%s", s->cfg.bind);
    else if (!strcmp(name, "databases"))
        snprintf(buf, len, "1");
    else if (!strcmp(name, "maxclients"))
        snprintf(buf, len, "%zu", max_clients(s));
    else if (!strcmp(name, "maxmemory"))
        snprintf(buf, len, "0");
    else if (!strcmp(name, "maxmemory-policy"))
        snprintf(buf, len, "noeviction");
    else if (!strcmp(name, "port"))
        snprintf(buf, len, "%d", s->port);
    else if (!strcmp(name, "proto-max-bulk-len"))
        snprintf(buf, len, "%zu", s->cfg.limits.max_bulk);
    else if (!strcmp(name, "requirepass")) {
        pthread_mutex_lock(&s->cfg_mu);
        snprintf(buf, len, "%s", s->cfg.password);
        pthread_mutex_unlock(&s->cfg_mu);
    } else if (!strcmp(name, "tidings-allow-flush"))
        snprintf(buf, len, "%s", s->cfg.allow_flush ? "yes" : "no");
    else if (!strcmp(name, "timeout"))
        snprintf(buf, len, "0");
    else if (!strcmp(name, "notify-keyspace-events"))
        resp_notify_config_get(s, buf, len);
    else
        buf[0] = 0; /* save */
}

static const config_param *param_find(td_slice name)
{
    for (size_t k = 0; k < TD_ARRAY_LEN(params); k++)
        if (resp_arg_is(name, params[k].name))
            return &params[k];
    return NULL;
}

/* CONFIG GET parameter [parameter ...]: a name without glob characters is answered under the
 * name as given (Redis looks it up, case-insensitively); a pattern under the parameters'
 * names. */
static void config_get(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    bool match[TD_ARRAY_LEN(params)] = {false};
    td_slice as_given[TD_ARRAY_LEN(params)];
    size_t n = 0;
    for (size_t i = 2; i < argc; i++) {
        bool glob = memchr(argv[i].p, '*', argv[i].n) || memchr(argv[i].p, '?', argv[i].n) ||
                    memchr(argv[i].p, '[', argv[i].n);
        for (size_t k = 0; k < TD_ARRAY_LEN(params); k++) {
            if (match[k])
                continue;
            bool hit = glob ? resp_glob_match((const char *)argv[i].p, argv[i].n, params[k].name,
                                              strlen(params[k].name), true)
                            : resp_arg_is(argv[i], params[k].name);
            if (hit) {
                match[k] = true;
                as_given[k] =
                    glob ? (td_slice){(const uint8_t *)params[k].name, strlen(params[k].name)}
                         : argv[i];
                n++;
            }
        }
    }
    resp_w_map(w, n);
    for (size_t k = 0; k < TD_ARRAY_LEN(params); k++) {
        if (!match[k])
            continue;
        char v[300];
        param_value(rc, &params[k], v, sizeof(v));
        resp_w_bulk(w, as_given[k].p, as_given[k].n);
        resp_w_str(w, v);
    }
}

/* A value for p, or false after writing why not (Redis's words). */
static bool param_check(rconn *rc, resp_w *w, const config_param *p, td_slice v, long long *out)
{
    if (p->kind == P_NOTIFY) /* notify.c's parser, with Redis's error */
        return resp_notify_config_set(w, v, false, rc->s);
    if (p->kind == P_XNODES) { /* xnodes.c's parser (memory units), with Redis's error */
        const char *why = resp_xnodes_config_check(p->name, v);
        if (why)
            resp_w_errorf(w, "ERR CONFIG SET failed (possibly related to argument '%s') - %s",
                          p->name, why);
        return why == NULL;
    }
    if (p->kind == P_PASSWORD) {
        if (v.n == 0 && rc->s->cfg.password_required) {
            resp_w_errorf(w,
                          "ERR CONFIG SET failed (possibly related to argument '%s') - this "
                          "listener binds %s, not a loopback address, and may do so only with a "
                          "password (allow.anonymous is false)",
                          p->name, rc->s->cfg.bind);
            return false;
        }
        if (v.n >= sizeof(rc->s->cfg.password)) {
            resp_w_errorf(w,
                          "ERR CONFIG SET failed (possibly related to argument '%s') - too "
                          "long",
                          p->name);
            return false;
        }
        return true;
    }
    if (!resp_parse_ll(v.p, v.n, out)) {
        resp_w_errorf(w,
                      "ERR CONFIG SET failed (possibly related to argument '%s') - argument "
                      "couldn't be parsed into an integer",
                      p->name);
        return false;
    }
    bool out_of_range = p->is_unsigned ? (unsigned long long)*out > (unsigned long long)p->max ||
                                             (unsigned long long)*out < (unsigned long long)p->min
                                       : *out < p->min || *out > p->max;
    if (out_of_range) {
        if (p->is_unsigned)
            resp_w_errorf(w,
                          "ERR CONFIG SET failed (possibly related to argument '%s') - argument "
                          "must be between %llu and %llu inclusive",
                          p->name, (unsigned long long)p->min, (unsigned long long)p->max);
        else
            resp_w_errorf(w,
                          "ERR CONFIG SET failed (possibly related to argument '%s') - argument "
                          "must be between %lld and %lld inclusive",
                          p->name, p->min, p->max);
        return false;
    }
    return true;
}

/* CONFIG SET parameter value [parameter value ...]: all or none, with Redis 7.0's errors (the
 * first problem found is the one answered, an unknown name before any other). */
static void config_set(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    if (argc % 2) {
        resp_reply_syntax(w);
        return;
    }
    /* Per parameter (each may be given once): its pair's index and its value. */
    size_t at[TD_ARRAY_LEN(params)];
    long long vals[TD_ARRAY_LEN(params)];
    bool seen[TD_ARRAY_LEN(params)] = {false};
    for (size_t i = 2; i < argc; i += 2) {
        const config_param *p = param_find(argv[i]);
        td_slice a = argv[i];
        if (!p) {
            resp_w_errorf(w, "ERR Unknown option or number of arguments for CONFIG SET - '%.*s'",
                          (int)(a.n < 128 ? a.n : 128), (const char *)a.p);
            return;
        }
        if (p->kind == P_FIXED || seen[p - params]) {
            resp_w_errorf(w, "ERR CONFIG SET failed (possibly related to argument '%.*s') - %s",
                          (int)(a.n < 128 ? a.n : 128), (const char *)a.p,
                          p->kind == P_FIXED ? "can't set immutable config"
                                             : "duplicate parameter");
            return;
        }
        seen[p - params] = true;
        at[p - params] = i;
    }
    for (size_t i = 2; i < argc; i += 2) { /* the values in the order given, as Redis */
        size_t k = (size_t)(param_find(argv[i]) - params);
        if (!param_check(rc, w, &params[k], argv[i + 1], &vals[k]))
            return;
    }
    for (size_t k = 0; k < TD_ARRAY_LEN(params); k++) {
        if (!seen[k])
            continue;
        td_slice v = argv[at[k] + 1];
        if (params[k].kind == P_ADMIN_INT) {
            resp_admin_set(rc->s, params[k].which, vals[k]);
            continue;
        }
        if (params[k].kind == P_XNODES) {
            resp_xnodes_config_set(rc->s, params[k].name, v);
            continue;
        }
        if (params[k].kind == P_NOTIFY) {
            resp_notify_config_set(w, v, true, rc->s);
            continue;
        }
        pthread_mutex_lock(&rc->s->cfg_mu);
        snprintf(rc->s->cfg.password, sizeof(rc->s->cfg.password), "%.*s", (int)v.n,
                 (const char *)v.p);
        pthread_mutex_unlock(&rc->s->cfg_mu);
        /* The default user's password: a user change for the audit trail (never the value). */
        broker_audit(rc->s->e, TD_AUDIT_USER_CHANGE, "redis", net_conn_principal(rc->c), rc->addr,
                     "CONFIG SET requirepass: %s the default user's password",
                     v.n ? "set" : "cleared");
    }
    resp_w_simple(w, "OK");
}

static void config_resetstat(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)argc;
    (void)argv;
    __atomic_store_n(&rc->s->total_commands, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&rc->s->total_connections, 0, __ATOMIC_RELAXED);
    resp_admin_resetstat(rc->s);
    resp_w_simple(w, "OK");
}

static void config_help(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)rc;
    (void)argc;
    (void)argv;
    static const char *const lines[] = {
        "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GET <pattern>",
        "    Return parameters matching the glob-like <pattern> and their values.",
        "SET <directive> <value> [<directive> <value> ...]",
        "    Set the configuration <directive> to <value>.",
        "RESETSTAT",
        "    Reset statistics reported by the INFO command.",
        "HELP",
        "    Prints this help.",
        NULL};
    resp_reply_help(w, lines);
}

static void function_flush(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)rc;
    if (argc > 3 ||
        (argc == 3 && !resp_arg_is(argv[2], "ASYNC") && !resp_arg_is(argv[2], "SYNC"))) {
        resp_reply_syntax(w);
        return;
    }
    resp_w_simple(w, "OK"); /* there are no functions */
}

static void function_list(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)rc;
    (void)argc;
    (void)argv;
    resp_w_array(w, 0);
}

/* ---------------------------------------------------------------------------------------------
 * The table
 */
#define CONN "connection"
#define SRV "server"
#define GEN "generic"

static const rcmd config_subs[] = {
    {"get", -3, RF_ADMIN | RF_NOSCRIPT | RF_LOADING | RF_STALE, config_get, SRV,
     "Returns the effective values of configuration parameters.", "2.0.0", 0, 0, 0, NULL,
     "@admin @slow @dangerous"},
    {"set", -4, RF_ADMIN | RF_NOSCRIPT | RF_LOADING | RF_STALE, config_set, SRV,
     "Sets configuration parameters in-flight.", "2.0.0", 0, 0, 0, NULL, "@admin @slow @dangerous"},
    {"resetstat", 2, RF_ADMIN | RF_NOSCRIPT | RF_LOADING | RF_STALE, config_resetstat, SRV,
     "Resets the server's statistics.", "2.0.0", 0, 0, 0, NULL, "@admin @slow @dangerous"},
    {"help", 2, RF_LOADING | RF_STALE, config_help, SRV,
     "Returns helpful text about the different subcommands.", "5.0.0", 0, 0, 0, NULL, "@slow"},
    {NULL, 0, 0, NULL, NULL, NULL, NULL, 0, 0, 0, NULL, NULL},
};

static void pubsub_help(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)rc;
    (void)argc;
    (void)argv;
    static const char *const lines[] = {
        "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CHANNELS [<pattern>]",
        "    Return the currently active channels matching a <pattern> (default: '*').",
        "NUMPAT",
        "    Return number of subscriptions to patterns.",
        "NUMSUB [<channel> ...]",
        "    Return the number of subscribers for the specified channels, excluding",
        "    pattern subscriptions(default: no channels).",
        "SHARDCHANNELS [<pattern>]",
        "    Return the currently active shard level channels matching a <pattern> (default: '*').",
        "SHARDNUMSUB [<shardchannel> ...]",
        "    Return the number of subscribers for the specified shard level channel(s)",
        "HELP",
        "    Prints this help.",
        NULL};
    resp_reply_help(w, lines);
}

static const rcmd pubsub_subs[] = {
    {"channels", -2, RF_PUBSUB | RF_LOADING | RF_STALE, resp_pubsub_channels, "pubsub",
     "Returns the active channels.", "2.8.0", 0, 0, 0, NULL, "@pubsub @slow"},
    {"numpat", 2, RF_PUBSUB | RF_LOADING | RF_STALE, resp_pubsub_numpat, "pubsub",
     "Returns a count of unique pattern subscriptions.", "2.8.0", 0, 0, 0, NULL, "@pubsub @slow"},
    {"numsub", -2, RF_PUBSUB | RF_LOADING | RF_STALE, resp_pubsub_numsub, "pubsub",
     "Returns a count of subscribers to channels.", "2.8.0", 0, 0, 0, NULL, "@pubsub @slow"},
    {"shardchannels", -2, RF_PUBSUB | RF_LOADING | RF_STALE, resp_pubsub_shardchannels, "pubsub",
     "List active shard channels", "7.0.0", 0, 0, 0, NULL, "@pubsub @slow"},
    {"shardnumsub", -2, RF_PUBSUB | RF_LOADING | RF_STALE, resp_pubsub_shardnumsub, "pubsub",
     "Get the count of subscribers for shard channels", "7.0.0", 0, 0, 0, NULL, "@pubsub @slow"},
    {"help", 2, RF_LOADING | RF_STALE, pubsub_help, "pubsub",
     "Returns helpful text about the different subcommands.", "6.2.0", 0, 0, 0, NULL, "@slow"},
    {NULL, 0, 0, NULL, NULL, NULL, NULL, 0, 0, 0, NULL, NULL},
};

/* FUNCTION HELP: Redis's text; of its subcommands only FLUSH and LIST are served (there are no
 * functions: docs/redis.md). */
static void function_help(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)rc;
    (void)argc;
    (void)argv;
    static const char *const lines[] = {
        "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "LOAD [REPLACE] <FUNCTION CODE>",
        "    Create a new library with the given library name and code.",
        "DELETE <LIBRARY NAME>",
        "    Delete the given library.",
        "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
        "    Return general information on all the libraries:",
        "    * Library name",
        "    * The engine used to run the Library",
        "    * Library description",
        "    * Functions list",
        "    * Library code (if WITHCODE is given)",
        "    It also possible to get only function that matches a pattern using LIBRARYNAME "
        "argument.",
        "STATS",
        "    Return information about the current function running:",
        "    * Function name",
        "    * Command used to run the function",
        "    * Duration in MS that the function is running",
        "    If no function is running, return nil",
        "    In addition, returns a list of available engines.",
        "KILL",
        "    Kill the current running function.",
        "FLUSH [ASYNC|SYNC]",
        "    Delete all the libraries.",
        "    When called without the optional mode argument, the behavior is determined by the",
        "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
        "    * ASYNC: Asynchronously flush the libraries.",
        "    * SYNC: Synchronously flush the libraries.",
        "DUMP",
        "    Return a serialized payload representing the current libraries, can be restored "
        "using FUNCTION RESTORE command",
        "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
        "    Restore the libraries represented by the given payload, it is possible to give a "
        "restore policy to",
        "    control how to handle existing libraries (default APPEND):",
        "    * FLUSH: delete all existing libraries.",
        "    * APPEND: appends the restored libraries to the existing libraries. On collision, "
        "abort.",
        "    * REPLACE: appends the restored libraries to the existing libraries, On collision, "
        "replace the old",
        "      libraries with the new libraries (notice that even on this option there is a "
        "chance of failure",
        "      in case of functions name collision with another library).",
        "HELP",
        "    Prints this help.",
        NULL};
    resp_reply_help(w, lines);
}

static const rcmd function_subs[] = {
    {"flush", -2, RF_WRITE | RF_NOSCRIPT, function_flush, "scripting",
     "Deletes all libraries and functions.", "7.0.0", 0, 0, 0, NULL, "@write @slow @scripting"},
    {"list", -2, RF_NOSCRIPT, function_list, "scripting",
     "Returns information about all libraries.", "7.0.0", 0, 0, 0, NULL, "@slow @scripting"},
    {"help", 2, RF_LOADING | RF_STALE, function_help, "scripting",
     "Returns helpful text about the different subcommands.", "7.0.0", 0, 0, 0, NULL,
     "@slow @scripting"},
    {NULL, 0, 0, NULL, NULL, NULL, NULL, 0, 0, 0, NULL, NULL},
};

const rcmd resp_commands[] = {
    {"acl", -2, 0, NULL, SRV, "A container for Access List Control commands.", "6.0.0", 0, 0, 0,
     resp_acl_subs, "@slow"},
    {"auth", -2, RF_NOAUTH | RF_NOSCRIPT | RF_LOADING | RF_STALE | RF_FAST, cmd_auth, CONN,
     "Authenticates the connection.", "1.0.0", 0, 0, 0, NULL, "@fast @connection"},
    {"client", -2, 0, NULL, CONN, "A container for client connection commands.", "2.4.0", 0, 0, 0,
     resp_client_subs, "@slow"},
    {"command", -1, RF_LOADING | RF_STALE, resp_cmd_command, SRV,
     "Returns detailed information about all commands.", "2.8.13", 0, 0, 0, resp_command_subs,
     "@slow @connection"},
    {"config", -2, 0, NULL, SRV, "A container for server configuration commands.", "2.0.0", 0, 0, 0,
     config_subs, "@slow"},
    {"dbsize", 1, RF_READONLY | RF_FAST, resp_cmd_dbsize, SRV,
     "Returns the number of keys in the database.", "1.0.0", 0, 0, 0, NULL,
     "@keyspace @read @fast"},
    {"del", -2, RF_WRITE, resp_cmd_del, GEN, "Deletes one or more keys.", "1.0.0", 1, -1, 1, NULL,
     "@keyspace @write @slow"},
    {"discard", 1, RF_NOSCRIPT | RF_LOADING | RF_STALE | RF_FAST | RF_NOMULTI, resp_discard,
     "transactions", "Discards a transaction.", "2.0.0", 0, 0, 0, NULL, "@fast @transaction"},
    {"echo", 2, RF_LOADING | RF_STALE | RF_FAST, cmd_echo, CONN, "Returns the given string.",
     "1.0.0", 0, 0, 0, NULL, "@fast @connection"},
    {"exec", 1, RF_NOSCRIPT | RF_LOADING | RF_STALE | RF_NOMULTI, resp_exec, "transactions",
     "Executes all commands in a transaction.", "1.2.0", 0, 0, 0, NULL, "@slow @transaction"},
    {"exists", -2, RF_READONLY | RF_FAST, resp_cmd_exists, GEN,
     "Determines whether one or more keys exist.", "1.0.0", 1, -1, 1, NULL,
     "@keyspace @read @fast"},
    {"flushall", -1, RF_WRITE, resp_cmd_flush, SRV, "Removes all keys from all databases.", "1.0.0",
     0, 0, 0, NULL, "@keyspace @write @slow @dangerous"},
    {"flushdb", -1, RF_WRITE, resp_cmd_flush, SRV, "Remove all keys from the current database.",
     "1.0.0", 0, 0, 0, NULL, "@keyspace @write @slow @dangerous"},
    {"function", -2, 0, NULL, "scripting", "A container for function commands.", "7.0.0", 0, 0, 0,
     function_subs, "@slow"},
    {"hello", -1, RF_NOAUTH | RF_NOSCRIPT | RF_LOADING | RF_STALE | RF_FAST, cmd_hello, CONN,
     "Handshakes with the Redis server.", "6.0.0", 0, 0, 0, NULL, "@fast @connection"},
    {"info", -1, RF_LOADING | RF_STALE, cmd_info, SRV,
     "Returns information and statistics about the server.", "1.0.0", 0, 0, 0, NULL,
     "@slow @dangerous"},
    {"keys", 2, RF_READONLY, resp_cmd_keys, GEN, "Returns all key names that match a pattern.", "1.0.0",
     0, 0, 0, NULL, "@keyspace @read @slow @dangerous"},
    {"latency", -2, 0, NULL, SRV, "A container for latency diagnostics commands.", "2.8.13", 0, 0,
     0, resp_latency_subs, "@slow"},
    {"monitor", 1, RF_ADMIN | RF_NOSCRIPT | RF_LOADING | RF_STALE, resp_cmd_monitor, SRV,
     "Listens for all requests received by the server in real-time.", "1.0.0", 0, 0, 0, NULL,
     "@admin @slow @dangerous"},
    {"multi", 1, RF_NOSCRIPT | RF_LOADING | RF_STALE | RF_FAST | RF_NOMULTI, resp_multi,
     "transactions", "Starts a transaction.", "1.2.0", 0, 0, 0, NULL, "@fast @transaction"},
    {"ping", -1, RF_SUBCTX | RF_FAST, cmd_ping, CONN, "Returns the server's liveliness response.",
     "1.0.0", 0, 0, 0, NULL, "@fast @connection"},
    {"psubscribe", -2, RF_SUBCTX | RF_PUBSUB | RF_NOSCRIPT | RF_LOADING | RF_STALE,
     resp_cmd_psubscribe, "pubsub",
     "Listens for messages published to channels that match one or more patterns.", "2.0.0", 0, 0,
     0, NULL, "@pubsub @slow"},
    {"publish", 3, RF_PUBSUB | RF_LOADING | RF_STALE | RF_FAST, resp_cmd_publish, "pubsub",
     "Posts a message to a channel.", "2.0.0", 0, 0, 0, NULL, "@pubsub @fast"},
    {"pubsub", -2, 0, NULL, "pubsub", "A container for Pub/Sub commands.", "2.8.0", 0, 0, 0,
     pubsub_subs, "@slow"},
    {"punsubscribe", -1, RF_SUBCTX | RF_PUBSUB | RF_NOSCRIPT | RF_LOADING | RF_STALE,
     resp_cmd_punsubscribe, "pubsub",
     "Stops listening to messages published to channels that match one or more "
     "patterns.",
     "2.0.0", 0, 0, 0, NULL, "@pubsub @slow"},
    {"quit", -1, RF_SUBCTX | RF_NOAUTH | RF_NOSCRIPT | RF_LOADING | RF_STALE | RF_FAST | RF_NOMULTI,
     cmd_quit, CONN, "Closes the connection.", "1.0.0", 0, 0, 0, NULL, "@fast @connection"},
    {"reset", 1, RF_SUBCTX | RF_NOAUTH | RF_NOSCRIPT | RF_LOADING | RF_STALE | RF_FAST | RF_NOMULTI,
     cmd_reset, CONN, "Resets the connection.", "6.2.0", 0, 0, 0, NULL, "@fast @connection"},
    {"role", 1, RF_NOSCRIPT | RF_LOADING | RF_STALE | RF_FAST, resp_cmd_role, SRV,
     "Returns the replication role.", "2.8.12", 0, 0, 0, NULL, "@admin @fast @dangerous"},
    {"scan", -2, RF_READONLY, resp_cmd_scan, GEN, "Iterates over the key names in the database.",
     "2.8.0", 0, 0, 0, NULL, "@keyspace @read @slow"},
    {"select", 2, RF_LOADING | RF_STALE | RF_FAST, cmd_select, CONN,
     "Changes the selected database.", "1.0.0", 0, 0, 0, NULL, "@fast @connection"},
    {"slowlog", -2, 0, NULL, SRV, "A container for slow log commands.", "2.2.12", 0, 0, 0,
     resp_slowlog_subs, "@slow"},
    {"spublish", 3, RF_PUBSUB | RF_LOADING | RF_STALE | RF_FAST, resp_cmd_spublish, "pubsub",
     "Post a message to a shard channel", "7.0.0", 1, 1, 1, NULL, "@pubsub @fast"},
    {"ssubscribe", -2, RF_SUBCTX | RF_PUBSUB | RF_NOSCRIPT | RF_LOADING | RF_STALE,
     resp_cmd_ssubscribe, "pubsub", "Listen for messages published to the given shard channels",
     "7.0.0", 1, -1, 1, NULL, "@pubsub @slow"},
    {"subscribe", -2, RF_SUBCTX | RF_PUBSUB | RF_NOSCRIPT | RF_LOADING | RF_STALE,
     resp_cmd_subscribe, "pubsub", "Listens for messages published to channels.", "2.0.0", 0, 0, 0,
     NULL, "@pubsub @slow"},
    {"sunsubscribe", -1, RF_SUBCTX | RF_PUBSUB | RF_NOSCRIPT | RF_LOADING | RF_STALE,
     resp_cmd_sunsubscribe, "pubsub",
     "Stop listening for messages posted to the given shard channels", "7.0.0", 1, -1, 1, NULL,
     "@pubsub @slow"},
    {"time", 1, RF_LOADING | RF_STALE | RF_FAST, resp_cmd_time, SRV, "Returns the server time.",
     "2.6.0", 0, 0, 0, NULL, "@fast"},
    {"type", 2, RF_READONLY | RF_FAST, resp_cmd_type, GEN,
     "Determines the type of value stored at a key.", "1.0.0", 1, 1, 1, NULL,
     "@keyspace @read @fast"},
    {"unlink", -2, RF_WRITE | RF_FAST, resp_cmd_del, GEN,
     "Asynchronously deletes one or more keys.", "4.0.0", 1, -1, 1, NULL, "@keyspace @write @fast"},
    {"unsubscribe", -1, RF_SUBCTX | RF_PUBSUB | RF_NOSCRIPT | RF_LOADING | RF_STALE,
     resp_cmd_unsubscribe, "pubsub", "Stops listening to messages posted to channels.", "2.0.0", 0,
     0, 0, NULL, "@pubsub @slow"},
    {"unwatch", 1, RF_NOSCRIPT | RF_LOADING | RF_STALE | RF_FAST, resp_cmd_unwatch, "transactions",
     "Forgets about watched keys of a transaction.", "2.2.0", 0, 0, 0, NULL, "@fast @transaction"},
    {"wait", 3, RF_NOSCRIPT, resp_cmd_wait, GEN,
     "Blocks until the asynchronous replication of all preceding write commands sent by the "
     "connection is completed.",
     "3.0.0", 0, 0, 0, NULL, "@slow @connection"},
    {"watch", -2, RF_NOSCRIPT | RF_LOADING | RF_STALE | RF_FAST | RF_NOMULTI, resp_cmd_watch,
     "transactions", "Monitors changes to keys to determine the execution of a transaction.",
     "2.2.0", 1, -1, 1, NULL, "@fast @transaction"},
    {"xack", -4, RF_WRITE | RF_FAST, resp_cmd_xack, "stream",
     "Returns the number of messages that were successfully acknowledged by the consumer group "
     "member of a stream.",
     "5.0.0", 1, 1, 1, NULL, "@write @stream @fast"},
    {"xadd", -5, RF_WRITE | RF_FAST, resp_cmd_xadd, "stream",
     "Appends a new message to a stream. Creates the key if it doesn't exist.", "5.0.0", 1, 1, 1,
     NULL, "@write @stream @fast"},
    {"xautoclaim", -6, RF_WRITE | RF_FAST, resp_cmd_xautoclaim, "stream",
     "Changes, or acquires, ownership of messages in a consumer group, as if the messages were "
     "delivered to as consumer group member.",
     "6.2.0", 1, 1, 1, NULL, "@write @stream @fast"},
    {"xclaim", -6, RF_WRITE | RF_FAST, resp_cmd_xclaim, "stream",
     "Changes, or acquires, ownership of a message in a consumer group, as if the message was "
     "delivered a consumer group member.",
     "5.0.0", 1, 1, 1, NULL, "@write @stream @fast"},
    {"xdel", -3, RF_WRITE | RF_FAST, resp_cmd_xdel, "stream",
     "Returns the number of messages after removing them from a stream.", "5.0.0", 1, 1, 1, NULL,
     "@write @stream @fast"},
    {"xgroup", -2, 0, NULL, "stream", "A container for consumer groups commands.", "5.0.0", 0, 0, 0,
     resp_xgroup_subs, "@slow"},
    {"xinfo", -2, 0, NULL, "stream", "A container for stream introspection commands.", "5.0.0", 0,
     0, 0, resp_xinfo_subs, "@slow"},
    {"xkeyrange", -5, RF_READONLY, resp_cmd_xkeyrange, "stream",
     "Returns the events of one key (an entity) of a stream within a range of IDs, through the "
     "key index (a tidings extension).",
     "7.0.0", 1, 1, 1, NULL, "@read @stream @slow"},
    {"xkeyversion", 3, RF_READONLY | RF_FAST, resp_cmd_xkeyversion, "stream",
     "Returns the ID of the latest event of one key (an entity) of a stream: its version (a "
     "tidings extension).",
     "7.0.0", 1, 1, 1, NULL, "@read @stream @fast"},
    {"xlen", 2, RF_READONLY | RF_FAST, resp_cmd_xlen, "stream",
     "Return the number of messages in a stream.", "5.0.0", 1, 1, 1, NULL, "@read @stream @fast"},
    {"xpending", -3, RF_READONLY, resp_cmd_xpending, "stream",
     "Returns the information and entries from a stream consumer group's pending entries list.",
     "5.0.0", 1, 1, 1, NULL, "@read @stream @slow"},
    {"xrange", -4, RF_READONLY, resp_cmd_xrange, "stream",
     "Returns the messages from a stream within a range of IDs.", "5.0.0", 1, 1, 1, NULL,
     "@read @stream @slow"},
    {"xread", -4, RF_READONLY, resp_cmd_xread, "stream",
     "Returns messages from multiple streams with IDs greater than the ones requested. Blocks "
     "until a message is available otherwise.",
     "5.0.0", 0, 0, 0, NULL, "@read @stream @slow @blocking"},
    {"xreadgroup", -7, RF_WRITE, resp_cmd_xreadgroup, "stream",
     "Returns new or historical messages from a stream for a consumer in a group. Blocks until a "
     "message is available otherwise.",
     "5.0.0", 0, 0, 0, NULL, "@write @stream @slow @blocking"},
    {"xrevrange", -4, RF_READONLY, resp_cmd_xrevrange, "stream",
     "Returns the messages from a stream within a range of IDs in reverse order.", "5.0.0", 1, 1, 1,
     NULL, "@read @stream @slow"},
    {"xsetid", -3, RF_WRITE | RF_FAST, resp_cmd_xsetid, "stream",
     "An internal command for replicating stream values.", "5.0.0", 1, 1, 1, NULL,
     "@write @stream @fast"},
    {"xtrim", -4, RF_WRITE, resp_cmd_xtrim, "stream",
     "Deletes messages from the beginning of a stream.", "5.0.0", 1, 1, 1, NULL,
     "@write @stream @slow"},
    {NULL, 0, 0, NULL, NULL, NULL, NULL, 0, 0, 0, NULL, NULL},
};
