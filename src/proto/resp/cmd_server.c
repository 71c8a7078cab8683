/*
 * cmd_server.c: the Redis listener's connection, server and keyspace commands, and the command
 * table (docs/redis.md): PING, ECHO, HELLO, AUTH, SELECT, QUIT, RESET, CLIENT, COMMAND, INFO,
 * CONFIG, DBSIZE, KEYS, SCAN, TYPE, EXISTS, DEL, UNLINK, FLUSHALL, FLUSHDB, FUNCTION, MULTI,
 * EXEC, DISCARD, WATCH and UNWATCH, with Redis 7.0's replies and error texts. A stream key is a
 * topic: the keyspace is the topics.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "broker/audit.h"
#include "proto/resp/resp_int.h"

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

static bool name_ok(td_slice n)
{
    for (size_t i = 0; i < n.n; i++)
        if (n.p[i] < '!' || n.p[i] > '~')
            return false;
    return true;
}

static void set_name(rconn *rc, td_slice n)
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
    if (name && !name_ok(*name)) {
        resp_w_error(w, "ERR Client names cannot contain spaces, newlines or special "
                        "characters.");
        return;
    }
    if (name)
        set_name(rc, *name);
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
 * CLIENT
 */
static void client_id(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)argc;
    (void)argv;
    resp_w_int(w, (int64_t)rc->id);
}

static void client_setname(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)argc;
    if (!name_ok(argv[2])) {
        resp_w_error(w, "ERR Client names cannot contain spaces, newlines or special "
                        "characters.");
        return;
    }
    set_name(rc, argv[2]);
    resp_w_simple(w, "OK");
}

static void client_getname(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)argc;
    (void)argv;
    char name[sizeof(rc->name)];
    pthread_mutex_lock(&rc->s->clients_mu);
    memcpy(name, rc->name, sizeof(name));
    pthread_mutex_unlock(&rc->s->clients_mu);
    if (name[0])
        resp_w_str(w, name);
    else
        resp_w_null(w);
}

static void client_setinfo(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)argc;
    char *dst = resp_arg_is(argv[2], "LIB-NAME")  ? rc->lib_name
                : resp_arg_is(argv[2], "LIB-VER") ? rc->lib_ver
                                                  : NULL;
    if (!dst) {
        resp_w_errorf(w, "ERR Unrecognized option '%.*s'", (int)(argv[2].n < 64 ? argv[2].n : 64),
                      (const char *)argv[2].p);
        return;
    }
    if (!name_ok(argv[3])) {
        resp_w_errorf(w, "ERR %.*s cannot contain spaces, newlines or special characters.",
                      (int)argv[2].n, (const char *)argv[2].p);
        return;
    }
    pthread_mutex_lock(&rc->s->clients_mu);
    snprintf(dst, 64, "%.*s", (int)(argv[3].n < 63 ? argv[3].n : 63), (const char *)argv[3].p);
    pthread_mutex_unlock(&rc->s->clients_mu);
    resp_w_simple(w, "OK");
}

static void client_info(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)argc;
    (void)argv;
    td_buf b;
    td_buf_init(&b);
    pthread_mutex_lock(&rc->s->clients_mu);
    resp_client_line(rc, &b);
    pthread_mutex_unlock(&rc->s->clients_mu);
    resp_w_verbatim(w, b.p, b.len);
    td_buf_free(&b);
}

static void client_list(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    uint64_t only = 0;
    for (size_t i = 2; i < argc; i += 2) {
        long long id;
        if (i + 1 < argc && resp_arg_is(argv[i], "ID")) {
            if (!resp_arg_ll(w, argv[i + 1], &id))
                return;
            only = (uint64_t)id;
        } else if (i + 1 < argc && resp_arg_is(argv[i], "TYPE")) {
            if (!resp_arg_is(argv[i + 1], "normal") && !resp_arg_is(argv[i + 1], "pubsub") &&
                !resp_arg_is(argv[i + 1], "master") && !resp_arg_is(argv[i + 1], "replica")) {
                resp_w_errorf(w, "ERR Unknown client type '%.*s'", (int)argv[i + 1].n,
                              (const char *)argv[i + 1].p);
                return;
            }
        } else {
            resp_reply_syntax(w);
            return;
        }
    }
    td_buf b;
    td_buf_init(&b);
    pthread_mutex_lock(&rc->s->clients_mu);
    for (rconn *x = rc->s->clients; x; x = x->next)
        if (!only || x->id == only)
            resp_client_line(x, &b);
    pthread_mutex_unlock(&rc->s->clients_mu);
    resp_w_verbatim(w, b.p, b.len);
    td_buf_free(&b);
}

static void client_kill(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    if (argc == 3) { /* the old form: CLIENT KILL addr:port */
        char *addr = resp_arg_str(rc, argv[2]);
        if (addr && resp_clients_kill(rc->s, 0, addr, NULL, NULL) > 0)
            resp_w_simple(w, "OK");
        else
            resp_w_error(w, "ERR No such client");
        return;
    }
    uint64_t id = 0;
    const char *addr = NULL, *user = NULL;
    bool skipme = true;
    for (size_t i = 2; i < argc; i += 2) {
        if (i + 1 >= argc) {
            resp_reply_syntax(w);
            return;
        }
        long long v;
        if (resp_arg_is(argv[i], "ID")) {
            if (!resp_arg_ll(w, argv[i + 1], &v))
                return;
            if (v <= 0) {
                resp_w_error(w, "ERR client-id should be greater than 0");
                return;
            }
            id = (uint64_t)v;
        } else if (resp_arg_is(argv[i], "ADDR")) {
            addr = resp_arg_str(rc, argv[i + 1]);
        } else if (resp_arg_is(argv[i], "SKIPME")) {
            if (resp_arg_is(argv[i + 1], "yes"))
                skipme = true;
            else if (resp_arg_is(argv[i + 1], "no"))
                skipme = false;
            else {
                resp_reply_syntax(w);
                return;
            }
        } else if (resp_arg_is(argv[i], "USER")) {
            user = resp_arg_str(rc, argv[i + 1]);
            if (!user || strlen(user) != argv[i + 1].n || !resp_user_exists(rc, user)) {
                resp_w_errorf(w, "ERR No such user '%.*s'", (int)argv[i + 1].n,
                              (const char *)argv[i + 1].p);
                return;
            }
        } else if (resp_arg_is(argv[i], "TYPE") || resp_arg_is(argv[i], "LADDR") ||
                   resp_arg_is(argv[i], "MAXAGE")) {
            /* every client is normal, on this listener's address, and these filters narrow
             * nothing further here */
        } else {
            resp_reply_syntax(w);
            return;
        }
    }
    resp_w_int(w, (int64_t)resp_clients_kill(rc->s, id, addr, user, skipme ? rc : NULL));
}

static void client_noop(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)rc;
    (void)argc;
    if (!resp_arg_is(argv[2], "on") && !resp_arg_is(argv[2], "off")) {
        resp_reply_syntax(w);
        return;
    }
    resp_w_simple(w, "OK");
}

static void client_help(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)rc;
    (void)argc;
    (void)argv;
    static const char *const lines[] = {
        "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GETNAME",
        "    Return the name of the current connection.",
        "ID",
        "    Return the ID of the current connection.",
        "INFO",
        "    Return information about the current client connection.",
        "KILL <ip:port>",
        "    Kill connection made from <ip:port>.",
        "KILL <option> <value> [<option> <value> [...]]",
        "    Kill connections. Options are: ID <client-id>, ADDR <ip:port>, USER <username>,",
        "    SKIPME (YES|NO).",
        "LIST [options ...]",
        "    Return information about client connections. Options: TYPE, ID <client-id>.",
        "SETNAME <name>",
        "    Assign the name <name> to the current connection.",
        "SETINFO <LIB-NAME|LIB-VER> <value>",
        "    Set client library name or version.",
        "NO-EVICT (ON|OFF), NO-TOUCH (ON|OFF)",
        "    Accepted; nothing is evicted or touched here.",
        "HELP",
        "    Print this help.",
        NULL};
    resp_reply_help(w, lines);
}

/* ---------------------------------------------------------------------------------------------
 * COMMAND
 */
static const char *const flag_names[] = {"write",    "readonly", "fast",  "admin",  "no_auth",
                                         "no_multi", "loading",  "stale", "pubsub", "noscript"};

static size_t count_table(const rcmd *t)
{
    size_t n = 0;
    while (t[n].name)
        n++;
    return n;
}

static void command_info(resp_w *w, const rcmd *parent, const rcmd *c)
{
    char full[64];
    resp_command_fullname(parent, c, full, sizeof(full));
    resp_w_array(w, 10);
    resp_w_str(w, full);
    resp_w_int(w, c->arity);
    size_t nf = 0;
    for (size_t i = 0; i < TD_ARRAY_LEN(flag_names); i++)
        nf += (c->flags >> i) & 1;
    resp_w_set(w, nf);
    for (size_t i = 0; i < TD_ARRAY_LEN(flag_names); i++)
        if ((c->flags >> i) & 1)
            resp_w_simple(w, flag_names[i]);
    resp_w_int(w, c->first_key);
    resp_w_int(w, c->last_key);
    resp_w_int(w, c->step);
    /* ACL categories */
    const char *acl = c->acl ? c->acl : "";
    size_t na = 0;
    for (const char *x = acl; *x; x++)
        na += *x == '@';
    resp_w_set(w, na);
    for (const char *x = acl; *x;) {
        const char *sp = strchr(x, ' ');
        size_t len = sp ? (size_t)(sp - x) : strlen(x);
        char buf[32];
        snprintf(buf, sizeof(buf), "%.*s", (int)len, x);
        resp_w_simple(w, buf);
        x += len + (sp ? 1 : 0);
    }
    resp_w_set(w, 0);   /* tips */
    resp_w_array(w, 0); /* key specs */
    size_t ns = c->subs ? count_table(c->subs) : 0;
    resp_w_array(w, ns);
    for (size_t i = 0; i < ns; i++)
        command_info(w, c, &c->subs[i]);
}

static void command_docs_one(resp_w *w, const rcmd *parent, const rcmd *c)
{
    char full[64];
    resp_command_fullname(parent, c, full, sizeof(full));
    resp_w_str(w, full);
    size_t ns = c->subs ? count_table(c->subs) : 0;
    resp_w_map(w, ns ? 4 : 3);
    resp_w_str(w, "summary");
    resp_w_str(w, c->summary ? c->summary : "");
    resp_w_str(w, "since");
    resp_w_str(w, c->since ? c->since : "1.0.0");
    resp_w_str(w, "group");
    resp_w_str(w, c->group ? c->group : "generic");
    if (ns) {
        resp_w_str(w, "subcommands");
        resp_w_map(w, ns);
        for (size_t i = 0; i < ns; i++)
            command_docs_one(w, c, &c->subs[i]);
    }
}

static void cmd_command(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)rc;
    (void)argv;
    if (argc != 1) /* subcommands are dispatched on their own */
        return;
    size_t n = count_table(resp_commands);
    resp_w_array(w, n);
    for (size_t i = 0; i < n; i++)
        command_info(w, NULL, &resp_commands[i]);
}

static void command_count(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)rc;
    (void)argc;
    (void)argv;
    resp_w_int(w, (int64_t)count_table(resp_commands));
}

static void command_list(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)rc;
    (void)argv;
    if (argc > 2) {
        resp_reply_syntax(w); /* FILTERBY is not offered */
        return;
    }
    size_t n = count_table(resp_commands);
    resp_w_array(w, n);
    for (size_t i = 0; i < n; i++)
        resp_w_str(w, resp_commands[i].name);
}

/* "client|setname" or "client" (case-insensitive): the command, its parent in *parent. */
static const rcmd *find_full(td_slice name, const rcmd **parent)
{
    *parent = NULL;
    const uint8_t *bar = memchr(name.p, '|', name.n);
    if (!bar)
        return resp_command_find(resp_commands, name);
    const rcmd *p = resp_command_find(resp_commands, td_slice_make(name.p, (size_t)(bar - name.p)));
    if (!p || !p->subs)
        return NULL;
    *parent = p;
    return resp_command_find(p->subs, td_slice_make(bar + 1, name.n - (size_t)(bar - name.p) - 1));
}

static void command_info_cmd(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)rc;
    if (argc == 2) {
        cmd_command(rc, w, 1, argv);
        return;
    }
    resp_w_array(w, argc - 2);
    for (size_t i = 2; i < argc; i++) {
        const rcmd *parent, *c = find_full(argv[i], &parent);
        if (c)
            command_info(w, parent, c);
        else
            resp_w_null_array(w);
    }
}

static void command_docs(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)rc;
    if (argc == 2) {
        size_t n = count_table(resp_commands);
        resp_w_map(w, n);
        for (size_t i = 0; i < n; i++)
            command_docs_one(w, NULL, &resp_commands[i]);
        return;
    }
    size_t found = 0;
    for (size_t i = 2; i < argc; i++) {
        const rcmd *parent;
        found += find_full(argv[i], &parent) != NULL;
    }
    resp_w_map(w, found);
    for (size_t i = 2; i < argc; i++) {
        const rcmd *parent, *c = find_full(argv[i], &parent);
        if (c)
            command_docs_one(w, parent, c);
    }
}

static void command_help(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)rc;
    (void)argc;
    (void)argv;
    static const char *const lines[] = {
        "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "(no subcommand)",
        "    Return details about all commands.",
        "COUNT",
        "    Return the total number of commands.",
        "DOCS [<command-name> ...]",
        "    Return documentation details about multiple commands.",
        "INFO [<command-name> ...]",
        "    Return details about multiple commands.",
        "LIST",
        "    Return a list of all commands.",
        "HELP",
        "    Print this help.",
        NULL};
    resp_reply_help(w, lines);
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
        info_kv(&b, "connected_clients:%zu", n);
        info_kv(&b, "maxclients:%zu", max_clients(s));
        info_kv(&b, "blocked_clients:%zu",
                rc->s->blocked ? net_waitset_count(rc->s->blocked) : (size_t)0);
        info_kv(&b, "tracking_clients:0");
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
    if (wants(argc, argv, "stats", true)) {
        info_section(&b, "Stats", &first);
        info_kv(&b, "total_connections_received:%" PRIu64,
                __atomic_load_n(&s->total_connections, __ATOMIC_RELAXED));
        info_kv(&b, "total_commands_processed:%" PRIu64,
                __atomic_load_n(&s->total_commands, __ATOMIC_RELAXED));
        info_kv(&b, "rejected_connections:0");
        info_kv(&b, "expired_keys:0");
        info_kv(&b, "evicted_keys:0");
        info_kv(&b, "keyspace_hits:0");
        info_kv(&b, "keyspace_misses:0");
        size_t channels, patterns;
        resp_pubsub_counts(s, &channels, &patterns);
        info_kv(&b, "pubsub_channels:%zu", channels);
        info_kv(&b, "pubsub_patterns:%zu", patterns);
    }
    if (wants(argc, argv, "replication", true)) {
        info_section(&b, "Replication", &first);
        info_kv(&b, "role:master");
        info_kv(&b, "connected_slaves:0");
    }
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
typedef struct config_param {
    const char *name;
    bool settable;
} config_param;

static const config_param params[] = {
    {"appendonly", false},
    {"appendfsync", false},
    {"bind", false},
    {"databases", false},
    {"maxclients", false},
    {"maxmemory", false},
    {"maxmemory-policy", false},
    {"notify-keyspace-events", false},
    {"port", false},
    {"proto-max-bulk-len", false},
    {"requirepass", true},
    {"save", false},
    {"timeout", false},
    {"tidings-allow-flush", false},
};

static void param_value(rconn *rc, const char *name, char *buf, size_t len)
{
    resp_server *s = rc->s;
    if (!strcmp(name, "appendonly"))
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
    else
        buf[0] = 0; /* save, notify-keyspace-events */
}

static void config_get(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    bool match[TD_ARRAY_LEN(params)] = {false};
    size_t n = 0;
    for (size_t i = 2; i < argc; i++)
        for (size_t k = 0; k < TD_ARRAY_LEN(params); k++)
            if (!match[k] && resp_glob_match((const char *)argv[i].p, argv[i].n, params[k].name,
                                             strlen(params[k].name), true)) {
                match[k] = true;
                n++;
            }
    resp_w_map(w, n);
    for (size_t k = 0; k < TD_ARRAY_LEN(params); k++) {
        if (!match[k])
            continue;
        char v[300];
        param_value(rc, params[k].name, v, sizeof(v));
        resp_w_str(w, params[k].name);
        resp_w_str(w, v);
    }
}

static void config_set(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    if (argc % 2) {
        resp_w_errorf(w, "ERR Unknown option or number of arguments for CONFIG SET - '%.*s'",
                      (int)argv[argc - 1].n, (const char *)argv[argc - 1].p);
        return;
    }
    for (size_t i = 2; i < argc; i += 2) { /* all or none */
        const config_param *p = NULL;
        for (size_t k = 0; k < TD_ARRAY_LEN(params); k++)
            if (resp_arg_is(argv[i], params[k].name))
                p = &params[k];
        if (!p) {
            resp_w_errorf(w, "ERR Unknown option or number of arguments for CONFIG SET - '%.*s'",
                          (int)(argv[i].n < 128 ? argv[i].n : 128), (const char *)argv[i].p);
            return;
        }
        if (!p->settable) {
            resp_w_errorf(w,
                          "ERR CONFIG SET failed (possibly related to argument '%s') - can't set "
                          "immutable config",
                          p->name);
            return;
        }
        if (argv[i + 1].n == 0 && rc->s->cfg.password_required) {
            resp_w_errorf(w,
                          "ERR CONFIG SET failed (possibly related to argument '%s') - this "
                          "listener binds %s, not a loopback address, and may do so only with a "
                          "password (allow.anonymous is false)",
                          p->name, rc->s->cfg.bind);
            return;
        }
        if (argv[i + 1].n >= sizeof(rc->s->cfg.password)) {
            resp_w_errorf(w,
                          "ERR CONFIG SET failed (possibly related to argument '%s') - too "
                          "long",
                          p->name);
            return;
        }
    }
    for (size_t i = 2; i < argc; i += 2) {
        /* requirepass: the only settable one */
        pthread_mutex_lock(&rc->s->cfg_mu);
        snprintf(rc->s->cfg.password, sizeof(rc->s->cfg.password), "%.*s", (int)argv[i + 1].n,
                 (const char *)argv[i + 1].p);
        pthread_mutex_unlock(&rc->s->cfg_mu);
        /* The default user's password: a user change for the audit trail (never the value). */
        broker_audit(rc->s->e, TD_AUDIT_USER_CHANGE, "redis", net_conn_principal(rc->c), rc->addr,
                     "CONFIG SET requirepass: %s the default user's password",
                     argv[i + 1].n ? "set" : "cleared");
    }
    resp_w_simple(w, "OK");
}

static void config_resetstat(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)argc;
    (void)argv;
    __atomic_store_n(&rc->s->total_commands, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&rc->s->total_connections, 0, __ATOMIC_RELAXED);
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
        "SET <directive> <value>",
        "    Set the configuration <directive> to <value> (requirepass only).",
        "RESETSTAT",
        "    Reset statistics reported by the INFO command.",
        "HELP",
        "    Print this help.",
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

static void cmd_watch(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)argc;
    (void)argv;
    if (rc->in_multi)
        resp_w_error(w, "ERR WATCH inside MULTI is not allowed");
    else
        resp_w_error(w, "ERR WATCH is not supported by tidings: MULTI/EXEC transactions run "
                        "without interleaving, but optimistic locks on keys are not offered");
}

static void cmd_unwatch(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)rc;
    (void)argc;
    (void)argv;
    resp_w_simple(w, "OK");
}

/* ---------------------------------------------------------------------------------------------
 * The table
 */
#define CONN "connection"
#define SRV "server"
#define GEN "generic"

static const rcmd client_subs[] = {
    {"id", 2, RF_NOSCRIPT | RF_LOADING | RF_STALE, client_id, CONN,
     "Returns the unique client ID of the connection.", "5.0.0", 0, 0, 0, NULL,
     "@slow @connection"},
    {"setname", 3, RF_NOSCRIPT | RF_LOADING | RF_STALE, client_setname, CONN,
     "Sets the connection name.", "2.6.9", 0, 0, 0, NULL, "@slow @connection"},
    {"getname", 2, RF_NOSCRIPT | RF_LOADING | RF_STALE, client_getname, CONN,
     "Returns the name of the connection.", "2.6.9", 0, 0, 0, NULL, "@slow @connection"},
    {"setinfo", 4, RF_NOSCRIPT | RF_LOADING | RF_STALE, client_setinfo, CONN,
     "Sets information specific to the client or connection.", "7.2.0", 0, 0, 0, NULL,
     "@slow @connection"},
    {"info", 2, RF_NOSCRIPT | RF_LOADING | RF_STALE, client_info, CONN,
     "Returns information about the connection.", "6.2.0", 0, 0, 0, NULL, "@slow @connection"},
    {"list", -2, RF_ADMIN | RF_NOSCRIPT | RF_LOADING | RF_STALE, client_list, CONN,
     "Lists open connections.", "2.4.0", 0, 0, 0, NULL, "@admin @slow @dangerous @connection"},
    {"kill", -3, RF_ADMIN | RF_NOSCRIPT | RF_LOADING | RF_STALE, client_kill, CONN,
     "Terminates open connections.", "2.4.0", 0, 0, 0, NULL, "@admin @slow @dangerous @connection"},
    {"no-evict", 3, RF_ADMIN | RF_NOSCRIPT | RF_LOADING | RF_STALE, client_noop, CONN,
     "Sets the client eviction mode of the connection.", "7.0.0", 0, 0, 0, NULL,
     "@admin @slow @dangerous @connection"},
    {"no-touch", 3, RF_NOSCRIPT | RF_LOADING | RF_STALE, client_noop, CONN,
     "Controls whether commands sent by the client affect the LRU/LFU of accessed keys.", "7.2.0",
     0, 0, 0, NULL, "@slow @connection"},
    {"help", 2, RF_LOADING | RF_STALE, client_help, CONN,
     "Returns helpful text about the "
     "different subcommands.",
     "5.0.0", 0, 0, 0, NULL, "@slow @connection"},
    {NULL, 0, 0, NULL, NULL, NULL, NULL, 0, 0, 0, NULL, NULL},
};

static const rcmd command_subs[] = {
    {"count", 2, RF_LOADING | RF_STALE, command_count, SRV, "Returns a count of commands.",
     "2.8.13", 0, 0, 0, NULL, "@slow @connection"},
    {"docs", -2, RF_LOADING | RF_STALE, command_docs, SRV,
     "Returns documentary information about one, multiple or all commands.", "7.0.0", 0, 0, 0, NULL,
     "@slow @connection"},
    {"info", -2, RF_LOADING | RF_STALE, command_info_cmd, SRV,
     "Returns information about one, multiple or all commands.", "2.8.13", 0, 0, 0, NULL,
     "@slow @connection"},
    {"list", -2, RF_LOADING | RF_STALE, command_list, SRV, "Returns a list of command names.",
     "7.0.0", 0, 0, 0, NULL, "@slow @connection"},
    {"help", 2, RF_LOADING | RF_STALE, command_help, SRV,
     "Returns helpful text about the different subcommands.", "5.0.0", 0, 0, 0, NULL,
     "@slow @connection"},
    {NULL, 0, 0, NULL, NULL, NULL, NULL, 0, 0, 0, NULL, NULL},
};

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
        "HELP",
        "    Print this help.",
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
    {"help", 2, RF_LOADING | RF_STALE, pubsub_help, "pubsub",
     "Returns helpful text about the different subcommands.", "6.2.0", 0, 0, 0, NULL, "@slow"},
    {NULL, 0, 0, NULL, NULL, NULL, NULL, 0, 0, 0, NULL, NULL},
};

static const rcmd function_subs[] = {
    {"flush", -2, RF_WRITE | RF_NOSCRIPT, function_flush, "scripting",
     "Deletes all libraries and functions.", "7.0.0", 0, 0, 0, NULL, "@write @slow @scripting"},
    {"list", -2, RF_NOSCRIPT, function_list, "scripting",
     "Returns information about all libraries.", "7.0.0", 0, 0, 0, NULL, "@slow @scripting"},
    {NULL, 0, 0, NULL, NULL, NULL, NULL, 0, 0, 0, NULL, NULL},
};

const rcmd resp_commands[] = {
    {"acl", -2, 0, NULL, SRV, "A container for Access List Control commands.", "6.0.0", 0, 0, 0,
     resp_acl_subs, "@slow"},
    {"auth", -2, RF_NOAUTH | RF_NOSCRIPT | RF_LOADING | RF_STALE | RF_FAST, cmd_auth, CONN,
     "Authenticates the connection.", "1.0.0", 0, 0, 0, NULL, "@fast @connection"},
    {"client", -2, 0, NULL, CONN, "A container for client connection commands.", "2.4.0", 0, 0, 0,
     client_subs, "@slow"},
    {"command", -1, RF_LOADING | RF_STALE, cmd_command, SRV,
     "Returns detailed information about all commands.", "2.8.13", 0, 0, 0, command_subs,
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
    {"keys", 2, RF_READONLY, resp_cmd_keys, GEN, "Returns all key names that match a pattern.",
     "1.0.0", 0, 0, 0, NULL, "@keyspace @read @slow @dangerous"},
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
    {"scan", -2, RF_READONLY, resp_cmd_scan, GEN, "Iterates over the key names in the database.",
     "2.8.0", 0, 0, 0, NULL, "@keyspace @read @slow"},
    {"select", 2, RF_LOADING | RF_STALE | RF_FAST, cmd_select, CONN,
     "Changes the selected database.", "1.0.0", 0, 0, 0, NULL, "@fast @connection"},
    {"subscribe", -2, RF_SUBCTX | RF_PUBSUB | RF_NOSCRIPT | RF_LOADING | RF_STALE,
     resp_cmd_subscribe, "pubsub", "Listens for messages published to channels.", "2.0.0", 0, 0, 0,
     NULL, "@pubsub @slow"},
    {"type", 2, RF_READONLY | RF_FAST, resp_cmd_type, GEN,
     "Determines the type of value stored at a key.", "1.0.0", 1, 1, 1, NULL,
     "@keyspace @read @fast"},
    {"unlink", -2, RF_WRITE | RF_FAST, resp_cmd_del, GEN,
     "Asynchronously deletes one or more keys.", "4.0.0", 1, -1, 1, NULL, "@keyspace @write @fast"},
    {"unsubscribe", -1, RF_SUBCTX | RF_PUBSUB | RF_NOSCRIPT | RF_LOADING | RF_STALE,
     resp_cmd_unsubscribe, "pubsub", "Stops listening to messages posted to channels.", "2.0.0", 0,
     0, 0, NULL, "@pubsub @slow"},
    {"unwatch", 1, RF_NOSCRIPT | RF_LOADING | RF_STALE | RF_FAST, cmd_unwatch, "transactions",
     "Forgets about watched keys of a transaction.", "2.2.0", 0, 0, 0, NULL, "@fast @transaction"},
    {"watch", -2, RF_NOSCRIPT | RF_LOADING | RF_STALE | RF_FAST | RF_NOMULTI, cmd_watch,
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
