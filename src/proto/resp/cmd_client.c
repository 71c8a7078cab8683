/*
 * cmd_client.c: the Redis listener's CLIENT command (docs/redis.md#connection-and-server-
 * commands) as Redis 7.0 has it: ID, INFO, LIST, KILL, REPLY, UNBLOCK, SETNAME, GETNAME,
 * SETINFO, NO-EVICT, NO-TOUCH and HELP, and the line that describes a connection in CLIENT LIST and
 * CLIENT INFO.
 *
 * The line has Redis 7.0's fields in Redis 7.0's order. Connections live on several event
 * loops, and CLIENT LIST runs on one of them: what another loop's connection changes as it runs
 * (its input and output bytes, its command) is read from copies it stores atomically, never
 * from the net layer's buffers of another thread.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "proto/resp/resp_int.h"

/* What a connection is, as CLIENT LIST TYPE and CLIENT KILL TYPE name it. There are no
 * replicas and no master here, so those names are accepted and match nothing. */
enum { CT_NORMAL, CT_PUBSUB, CT_REPLICA, CT_MASTER };

static int client_type_by_name(td_slice n)
{
    if (resp_arg_is(n, "normal"))
        return CT_NORMAL;
    if (resp_arg_is(n, "pubsub"))
        return CT_PUBSUB;
    if (resp_arg_is(n, "slave") || resp_arg_is(n, "replica"))
        return CT_REPLICA;
    if (resp_arg_is(n, "master"))
        return CT_MASTER;
    return -1;
}

/* Any thread (under s->clients_mu, as the list is walked). */
static int client_type(const rconn *x)
{
    size_t subs =
        __atomic_load_n(&x->nsub, __ATOMIC_RELAXED) + __atomic_load_n(&x->npsub, __ATOMIC_RELAXED);
    return subs ? CT_PUBSUB : CT_NORMAL; /* a monitor is a normal client, as in Redis */
}

void resp_client_laddr(rconn *rc)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char ip[INET6_ADDRSTRLEN] = "";
    int port = 0;
    rc->fd = net_conn_fd(rc->c); /* at accept, on its loop: CLIENT LIST reads the copy */
    if (getsockname(rc->fd, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET) {
            const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
            port = ntohs(a->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
            port = ntohs(a->sin6_port);
        }
    }
    if (ip[0])
        snprintf(rc->laddr, sizeof(rc->laddr), "%s:%d", ip, port);
    else
        snprintf(rc->laddr, sizeof(rc->laddr), "%.48s:%d", rc->s->cfg.bind, rc->s->port);
}

/*
 * One connection's line. Under s->clients_mu (its name and library). Fields tidings keeps
 * otherwise than Redis are given as Redis gives them for an idle client:
 *   - qbuf: the connection's unread input (the command being run included); qbuf-free 0, as
 *     the net layer's buffer is not per client in Redis's sense;
 *   - argv-mem: the bytes of the arguments of the command running, multi-mem Redis's count for
 *     the commands queued in MULTI (their arguments' bytes plus a pointer each);
 *   - rbs and rbp: 16384, Redis's reply buffer of an idle client; obl 0, oll the chunks not yet
 *     sent (0 or 1), omem the bytes not yet sent (for another connection, as its last input
 *     found them), tot-mem the connection's state and buffers.
 */
void resp_client_line(rconn *rc, td_buf *b, bool self)
{
    char line[1024];
    int64_t now = td_wall_ms();
    int64_t last = __atomic_load_n(&rc->last_ms, __ATOMIC_RELAXED);
    const char *cmd = __atomic_load_n(&rc->last_cmd, __ATOMIC_RELAXED);
    const char *sub = __atomic_load_n(&rc->last_sub, __ATOMIC_RELAXED);
    size_t nsub = __atomic_load_n(&rc->nsub, __ATOMIC_RELAXED);
    size_t npsub = __atomic_load_n(&rc->npsub, __ATOMIC_RELAXED);
    size_t nssub = __atomic_load_n(&rc->nssub, __ATOMIC_RELAXED);
    size_t qbuf = __atomic_load_n(&rc->qbuf, __ATOMIC_RELAXED);
    size_t omem = __atomic_load_n(&rc->omem, __ATOMIC_RELAXED);
    if (self)
        omem = net_conn_out_bytes(rc->c); /* this loop's own connection: exact */
    size_t argv_mem = __atomic_load_n(&rc->argv_mem, __ATOMIC_RELAXED);
    size_t multi_mem = __atomic_load_n(&rc->multi_mem, __ATOMIC_RELAXED);
    int nqueued = __atomic_load_n(&rc->nqueued_shown, __ATOMIC_RELAXED);
    unsigned st = __atomic_load_n(&rc->shown_flags, __ATOMIC_RELAXED);
    char flags[8], *f = flags;
    if (st & RC_SHOWN_MONITOR)
        *f++ = 'O';
    if (nsub + npsub + nssub)
        *f++ = 'P';
    if (nqueued >= 0)
        *f++ = 'x';
    if (st & RC_SHOWN_BLOCKED)
        *f++ = 'b';
    if (st & RC_SHOWN_CLOSING)
        *f++ = 'c';
    if (st & RC_SHOWN_NOEVICT)
        *f++ = 'e';
    if (f == flags)
        *f++ = 'N';
    *f = 0;
    size_t tot = sizeof(*rc) + qbuf + omem + argv_mem + multi_mem;
    int n = snprintf(line, sizeof(line),
                     "id=%" PRIu64 " addr=%s laddr=%s fd=%d name=%s age=%" PRId64 " idle=%" PRId64
                     " flags=%s db=0 sub=%zu psub=%zu ssub=%zu multi=%d "
                     "qbuf=%zu qbuf-free=0 argv-mem=%zu multi-mem=%zu rbs=16384 rbp=16384 "
                     "obl=0 oll=%d omem=%zu tot-mem=%zu events=r%s cmd=%s%s%s user=%s redir=-1 "
                     "resp=%d lib-name=%s lib-ver=%s\n",
                     rc->id, rc->addr, rc->laddr, rc->fd, rc->name,
                     (now - rc->created_ms) / 1000, (now - last) / 1000, flags, nsub, npsub,
                     nssub, nqueued, qbuf, argv_mem, multi_mem, omem ? 1 : 0, omem, tot, omem ? "w" : "",
                     cmd, sub ? "|" : "", sub ? sub : "", rc->user[0] ? rc->user : "default",
                     rc->proto, rc->lib_name, rc->lib_ver);
    if (n > 0)
        td_buf_append(b, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

static void kill_task(void *arg)
{
    net_conn *c = arg;
    if (!net_conn_closed(c))
        net_conn_close(c, true);
    net_conn_unref(c);
}

bool resp_kill_match(const rconn *x, const resp_kill_filter *f)
{
    if ((f->skip && x == f->skip) || __atomic_load_n(&x->killed, __ATOMIC_ACQUIRE))
        return false; /* killed already: gone, as far as clients can tell */
    if (f->id && x->id != f->id)
        return false;
    if (f->addr && strcmp(f->addr, x->addr))
        return false;
    if (f->laddr && strcmp(f->laddr, x->laddr))
        return false;
    if (f->user && strcmp(f->user, x->user[0] ? x->user : "default"))
        return false;
    if (f->type >= 0 && client_type(x) != f->type)
        return false;
    return true;
}

size_t resp_clients_kill(resp_server *s, const resp_kill_filter *f, rconn *self)
{
    size_t n = 0;
    pthread_mutex_lock(&s->clients_mu);
    for (rconn *x = s->clients; x; x = x->next) {
        if (!resp_kill_match(x, f))
            continue;
        if (x == self) {
            /* Closed once the reply is written, as Redis's CLIENT_CLOSE_AFTER_REPLY. */
            x->closing = true;
            n++;
            continue;
        }
        __atomic_store_n(&x->killed, true, __ATOMIC_RELEASE);
        net_conn_ref(x->c);
        if (net_loop_post(net_conn_loop(x->c), kill_task, x->c) != 0)
            net_conn_unref(x->c);
        else
            n++;
    }
    pthread_mutex_unlock(&s->clients_mu);
    return n;
}

/* ---------------------------------------------------------------------------------------------
 * The subcommands
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
    if (!resp_name_ok(argv[2])) {
        resp_w_error(w, "ERR Client names cannot contain spaces, newlines or special "
                        "characters.");
        return;
    }
    resp_set_name(rc, argv[2]);
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
    if (!resp_name_ok(argv[3])) {
        resp_w_errorf(w, "ERR %.*s cannot contain spaces, newlines or special characters.",
                      (int)argv[2].n, (const char *)argv[2].p);
        return;
    }
    pthread_mutex_lock(&rc->s->clients_mu);
    snprintf(dst, 64, "%.*s", (int)(argv[3].n < 63 ? argv[3].n : 63), (const char *)argv[3].p);
    pthread_mutex_unlock(&rc->s->clients_mu);
    resp_w_simple(w, "OK");
}

static void reply_lines(resp_w *w, td_buf *b)
{
    resp_w_verbatim(w, b->p ? (const char *)b->p : "", b->len);
    td_buf_free(b);
}

static void client_info(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)argc;
    (void)argv;
    td_buf b;
    td_buf_init(&b);
    pthread_mutex_lock(&rc->s->clients_mu);
    resp_client_line(rc, &b, true);
    pthread_mutex_unlock(&rc->s->clients_mu);
    reply_lines(w, &b);
}

/* CLIENT LIST [TYPE type] | [ID id ...], with Redis 7.0's errors. */
static void client_list(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    int type = -1;
    uint64_t *ids = NULL;
    size_t nids = 0;
    if (argc == 4 && resp_arg_is(argv[2], "type")) {
        type = client_type_by_name(argv[3]);
        if (type < 0) {
            resp_w_errorf(w, "ERR Unknown client type '%.*s'",
                          (int)(argv[3].n < 128 ? argv[3].n : 128), (const char *)argv[3].p);
            return;
        }
    } else if (argc > 3 && resp_arg_is(argv[2], "id")) {
        ids = td_arena_alloc(&rc->arena, (argc - 3) * sizeof(*ids));
        if (!ids) {
            resp_w_error(w, "ERR out of memory");
            return;
        }
        for (size_t i = 3; i < argc; i++) {
            long long v;
            if (!resp_parse_ll(argv[i].p, argv[i].n, &v)) {
                resp_w_error(w, "ERR Invalid client ID");
                return;
            }
            ids[nids++] = (uint64_t)v;
        }
    } else if (argc != 2) {
        resp_reply_syntax(w);
        return;
    }
    td_buf b;
    td_buf_init(&b);
    pthread_mutex_lock(&rc->s->clients_mu);
    if (ids) {
        /* In the order asked, as Redis's lookups by ID. */
        for (size_t i = 0; i < nids; i++)
            for (rconn *x = rc->s->clients; x; x = x->next)
                if (x->id == ids[i] && !__atomic_load_n(&x->killed, __ATOMIC_ACQUIRE))
                    resp_client_line(x, &b, x == rc);
    } else {
        /* Oldest first, as Redis lists its clients. */
        rconn *x = rc->s->clients;
        while (x && x->next)
            x = x->next;
        /* A connection CLIENT KILL closed from another loop is gone for clients, even while
         * its loop has not yet closed it. */
        for (; x; x = x->prev)
            if ((type < 0 || client_type(x) == type) &&
                !__atomic_load_n(&x->killed, __ATOMIC_ACQUIRE))
                resp_client_line(x, &b, x == rc);
    }
    pthread_mutex_unlock(&rc->s->clients_mu);
    reply_lines(w, &b);
}

/* CLIENT KILL addr:port | CLIENT KILL <filter> <value> ...: every filter of Redis 7.0 (ID,
 * TYPE, ADDR, LADDR, USER, SKIPME). */
static void client_kill(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    resp_kill_filter f = {0, NULL, NULL, NULL, -1, rc};
    if (argc == 3) { /* the old form: may kill this connection too */
        f.addr = resp_arg_str(rc, argv[2]);
        f.skip = NULL;
        if (f.addr && resp_clients_kill(rc->s, &f, rc) > 0)
            resp_w_simple(w, "OK");
        else
            resp_w_error(w, "ERR No such client");
        return;
    }
    for (size_t i = 2; i < argc; i += 2) {
        bool more = i + 1 < argc;
        td_slice v = more ? argv[i + 1] : argv[i];
        if (more && resp_arg_is(argv[i], "id")) {
            long long id;
            if (!resp_parse_ll(v.p, v.n, &id) || id < 1) {
                resp_w_error(w, "ERR client-id should be greater than 0");
                return;
            }
            f.id = (uint64_t)id;
        } else if (more && resp_arg_is(argv[i], "type")) {
            f.type = client_type_by_name(v);
            if (f.type < 0) {
                resp_w_errorf(w, "ERR Unknown client type '%.*s'", (int)(v.n < 128 ? v.n : 128),
                              (const char *)v.p);
                return;
            }
        } else if (more && resp_arg_is(argv[i], "addr")) {
            f.addr = resp_arg_str(rc, v);
        } else if (more && resp_arg_is(argv[i], "laddr")) {
            f.laddr = resp_arg_str(rc, v);
        } else if (more && resp_arg_is(argv[i], "user")) {
            f.user = resp_arg_str(rc, v);
            if (!f.user || strlen(f.user) != v.n || !resp_user_exists(rc, f.user)) {
                resp_w_errorf(w, "ERR No such user '%.*s'", (int)(v.n < 128 ? v.n : 128),
                              (const char *)v.p);
                return;
            }
        } else if (more && resp_arg_is(argv[i], "skipme")) {
            if (resp_arg_is(v, "yes"))
                f.skip = rc;
            else if (resp_arg_is(v, "no"))
                f.skip = NULL;
            else {
                resp_reply_syntax(w);
                return;
            }
        } else {
            resp_reply_syntax(w);
            return;
        }
    }
    if (f.type == CT_REPLICA || f.type == CT_MASTER) {
        resp_w_int(w, 0); /* there are none */
        return;
    }
    resp_w_int(w, (int64_t)resp_clients_kill(rc->s, &f, rc));
}

/* CLIENT REPLY ON|OFF|SKIP: OFF answers nothing (not even itself) until ON; SKIP answers
 * neither itself nor the next command. server.c drops the replies. */
static void client_reply(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)argc;
    if (resp_arg_is(argv[2], "on")) {
        rc->reply_off = rc->reply_skip = rc->reply_skip_next = false;
        resp_w_simple(w, "OK");
    } else if (resp_arg_is(argv[2], "off")) {
        rc->reply_off = true;
    } else if (resp_arg_is(argv[2], "skip")) {
        if (!rc->reply_off)
            rc->reply_skip_next = true;
    } else {
        resp_reply_syntax(w);
    }
}

typedef struct unblock_req {
    net_conn *c;
    bool error;
} unblock_req;

static void unblock_task(void *arg)
{
    unblock_req *u = arg;
    rconn *rc = net_conn_closed(u->c) ? NULL : net_conn_data(u->c);
    if (rc)
        resp_unblock_now(rc, u->error);
    net_conn_unref(u->c);
    free(u);
}

/* CLIENT UNBLOCK id [TIMEOUT|ERROR]: a connection blocked in XREAD or XREADGROUP is answered
 * as at its timeout, or with -UNBLOCKED. 1 when it was blocked. The connection lives on its own
 * loop: the answer is posted there, and a read that ends by itself in between is answered
 * once, by whichever comes first. */
static void client_unblock(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    bool error = false;
    if (argc == 4) {
        if (resp_arg_is(argv[3], "error"))
            error = true;
        else if (!resp_arg_is(argv[3], "timeout")) {
            resp_w_error(w, "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR");
            return;
        }
    } else if (argc != 3) {
        resp_w_errorf(w,
                      "ERR unknown subcommand or wrong number of arguments for '%.*s'. Try "
                      "CLIENT HELP.",
                      (int)argv[1].n, (const char *)argv[1].p);
        return;
    }
    long long id;
    if (!resp_arg_ll(w, argv[2], &id))
        return;
    int64_t n = 0;
    pthread_mutex_lock(&rc->s->clients_mu);
    for (rconn *x = rc->s->clients; x; x = x->next) {
        if (x->id != (uint64_t)id || __atomic_load_n(&x->killed, __ATOMIC_ACQUIRE) ||
            !(__atomic_load_n(&x->shown_flags, __ATOMIC_RELAXED) & RC_SHOWN_BLOCKED))
            continue;
        unblock_req *u = malloc(sizeof(*u));
        if (!u)
            break;
        u->c = x->c;
        u->error = error;
        net_conn_ref(x->c);
        if (net_loop_post(net_conn_loop(x->c), unblock_task, u) != 0) {
            net_conn_unref(x->c);
            free(u);
        } else {
            n = 1;
        }
    }
    pthread_mutex_unlock(&rc->s->clients_mu);
    resp_w_int(w, n);
}

/* CLIENT NO-EVICT ON|OFF: nothing evicts clients here; the flag is kept and shown ('e'). */
static void client_no_evict(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)argc;
    if (resp_arg_is(argv[2], "on"))
        __atomic_or_fetch(&rc->shown_flags, RC_SHOWN_NOEVICT, __ATOMIC_RELAXED);
    else if (resp_arg_is(argv[2], "off"))
        __atomic_and_fetch(&rc->shown_flags, ~(unsigned)RC_SHOWN_NOEVICT, __ATOMIC_RELAXED);
    else {
        resp_reply_syntax(w);
        return;
    }
    resp_w_simple(w, "OK");
}

/* CLIENT NO-TOUCH ON|OFF (Redis 7.2): no key has an access time here to leave untouched. */
static void client_no_touch(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
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
        "    Kill connections. Options are:",
        "    * ADDR (<ip:port>|<unixsocket>:0)",
        "      Kill connections made from the specified address",
        "    * LADDR (<ip:port>|<unixsocket>:0)",
        "      Kill connections made to specified local address",
        "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
        "      Kill connections by type.",
        "    * USER <username>",
        "      Kill connections authenticated by <username>.",
        "    * SKIPME (YES|NO)",
        "      Skip killing current connection (default: yes).",
        "LIST [options ...]",
        "    Return information about client connections. Options:",
        "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
        "      Return clients of specified type.",
        "REPLY (ON|OFF|SKIP)",
        "    Control the replies sent to the current connection.",
        "SETNAME <name>",
        "    Assign the name <name> to the current connection.",
        "UNBLOCK <clientid> [TIMEOUT|ERROR]",
        "    Unblock the specified blocked client.",
        "SETINFO <LIB-NAME|LIB-VER> <value>",
        "    Set client library name or version.",
        "NO-EVICT (ON|OFF)",
        "    Protect current client connection from eviction.",
        "NO-TOUCH (ON|OFF)",
        "    Accepted; no key has an access time to leave untouched.",
        "HELP",
        "    Prints this help.",
        NULL};
    resp_reply_help(w, lines);
}

#define CONN "connection"

const rcmd resp_client_subs[] = {
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
    {"unblock", -3, RF_ADMIN | RF_NOSCRIPT | RF_LOADING | RF_STALE, client_unblock, CONN,
     "Unblocks a client blocked by a blocking command from a different connection.", "5.0.0", 0, 0,
     0, NULL, "@admin @slow @dangerous @connection"},
    {"reply", 3, RF_NOSCRIPT | RF_LOADING | RF_STALE, client_reply, CONN,
     "Instructs the server whether to reply to commands.", "3.2.0", 0, 0, 0, NULL,
     "@slow @connection"},
    {"no-evict", 3, RF_ADMIN | RF_NOSCRIPT | RF_LOADING | RF_STALE, client_no_evict, CONN,
     "Sets the client eviction mode of the connection.", "7.0.0", 0, 0, 0, NULL,
     "@admin @slow @dangerous @connection"},
    {"no-touch", 3, RF_NOSCRIPT | RF_LOADING | RF_STALE, client_no_touch, CONN,
     "Controls whether commands sent by the client affect the LRU/LFU of accessed keys.", "7.2.0",
     0, 0, 0, NULL, "@slow @connection"},
    {"help", 2, RF_LOADING | RF_STALE, client_help, CONN,
     "Returns helpful text about the different subcommands.", "5.0.0", 0, 0, 0, NULL,
     "@slow @connection"},
    {NULL, 0, 0, NULL, NULL, NULL, NULL, 0, 0, 0, NULL, NULL},
};
