/*
 * server.c: the Redis protocol listener (docs/redis.md): connections, the dispatch of
 * commands with Redis's checks and error texts (unknown command, arity, authentication), and
 * transactions (MULTI, EXEC, DISCARD).
 *
 * A connection runs its commands in order, each reply appended to one buffer that goes to the
 * socket once per batch of input, so that a pipeline of 10 000 commands costs a few writes. A
 * protocol error is answered and closes the connection, as Redis does: the stream's framing can
 * no longer be trusted. The commands themselves are in cmd_server.c.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/xgroup.h"
#include "proto/resp/resp_int.h"

void resp_server_config_default(resp_server_config *c)
{
    memset(c, 0, sizeof(*c));
    resp_limits_default(&c->limits);
    c->max_reply = (size_t)512 << 20;
    snprintf(c->bind, sizeof(c->bind), "127.0.0.1");
}

int resp_server_create(td_engine *e, const resp_server_config *cfg, resp_server **out)
{
    resp_server *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->e = e;
    s->cfg = *cfg;
    s->start_ms = td_wall_ms();
    s->next_id = 1;
    pthread_mutex_init(&s->cfg_mu, NULL);
    pthread_mutex_init(&s->clients_mu, NULL);
    pthread_mutex_init(&s->acl_mu, NULL);
    /* Writers first: an EXEC is not starved by a stream of other commands. */
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&s->exec_lock, &ra);
    pthread_rwlockattr_destroy(&ra);
    /* The series are looked up once here, not per command. */
    td_metric_family *fr, *fl;
    broker_request_metrics(e, &fr, &fl);
    size_t n = 0;
    while (resp_commands[n].name)
        n++;
    s->ncommands = n;
    s->m_requests = calloc(n + 1, sizeof(*s->m_requests));
    s->m_latency = calloc(n + 1, sizeof(*s->m_latency));
    if (!s->m_requests || !s->m_latency) {
        resp_server_destroy(s);
        return -ENOMEM;
    }
    for (size_t i = 0; i <= n; i++) {
        const char *labels[] = {"redis", i < n ? resp_commands[i].name : "unknown"};
        s->m_requests[i] = td_metric_get(fr, labels);
        s->m_latency[i] = td_metric_get(fl, labels);
    }
    int rc = resp_pubsub_create(&s->pubsub);
    if (rc == 0)
        rc = resp_authz_create(s);
    if (rc) {
        resp_server_destroy(s);
        return rc;
    }
    *out = s;
    return 0;
}

void resp_server_set_port(resp_server *s, int port)
{
    s->port = port;
}

void resp_server_destroy(resp_server *s)
{
    if (!s)
        return;
    resp_pubsub_destroy(s->pubsub);
    resp_authz_destroy(s);
    net_waitset_destroy(s->blocked);
    free(s->m_requests);
    free(s->m_latency);
    pthread_mutex_destroy(&s->cfg_mu);
    pthread_mutex_destroy(&s->clients_mu);
    pthread_mutex_destroy(&s->acl_mu);
    pthread_rwlock_destroy(&s->exec_lock);
    free(s);
}

/* ---------------------------------------------------------------------------------------------
 * Helpers for commands
 */
bool resp_arg_is(td_slice a, const char *s)
{
    size_t n = strlen(s);
    if (a.n != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (tolower(a.p[i]) != tolower((unsigned char)s[i]))
            return false;
    return true;
}

bool resp_arg_ll(resp_w *w, td_slice a, long long *out)
{
    if (resp_parse_ll(a.p, a.n, out))
        return true;
    resp_w_error(w, "ERR value is not an integer or out of range");
    return false;
}

char *resp_arg_str(rconn *rc, td_slice a)
{
    return td_arena_strndup(&rc->arena, (const char *)a.p, a.n);
}

void resp_reply_syntax(resp_w *w)
{
    resp_w_error(w, "ERR syntax error");
}

const rcmd *resp_command_find(const rcmd *table, td_slice name)
{
    if (name.n == 0)
        return NULL;
    int first = tolower(name.p[0]);
    for (const rcmd *c = table; c->name; c++)
        if (c->name[0] == first && resp_arg_is(name, c->name))
            return c;
    return NULL;
}

void resp_command_fullname(const rcmd *parent, const rcmd *c, char *buf, size_t len)
{
    if (parent)
        snprintf(buf, len, "%s|%s", parent->name, c->name);
    else
        snprintf(buf, len, "%s", c->name);
}

/* ---------------------------------------------------------------------------------------------
 * Connections
 */
/* ---------------------------------------------------------------------------------------------
 * Replies held for durability, and connections blocked in XREAD
 */
static void flush_out(rconn *rc);

typedef struct durable_wait {
    net_conn *c;
    net_loop *loop;
    int rc;
    bool data; /* an XADD's entries (counted in data_waits too), not a group's save */
    /* Atomic: 0 while broker_when_durable runs, then 1; 2 if the callback came before it
     * returned (durable already: fsync=interval or none), so that no task is posted. */
    int state;
} durable_wait;

/* On the connection's loop: one of its XADDs is durable (or failed). */
static void durable_done(void *arg)
{
    durable_wait *d = arg;
    net_conn *c = d->c;
    rconn *rc = net_conn_closed(c) ? NULL : net_conn_data(c);
    if (rc) {
        rc->waits--;
        rc->data_waits -= d->data;
        rc->wait_failed |= d->rc != 0;
        if (rc->waits == 0 && rc->wait_failed) {
            TD_WARN("redis", "closing %s: a change could not be made durable: %s", rc->addr,
                    td_strerror(d->rc));
            net_conn_close(c, true);
        } else if (rc->waits == 0) {
            flush_out(rc);
            if (rc->closing)
                net_conn_close(c, false);
            else if (!rc->blk && !rc->throttled)
                net_conn_resume(c);
        }
    }
    net_conn_unref(c);
    free(d);
}

/* Any thread (the flusher's, or this loop's under interval and none). */
static void durable_cb(void *arg, int r)
{
    durable_wait *d = arg;
    d->rc = r;
    int zero = 0;
    if (__atomic_compare_exchange_n(&d->state, &zero, 2, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return; /* resp_wait_durable sees it */
    if (net_loop_post(d->loop, durable_done, d) != 0) {
        net_conn_unref(d->c); /* shutting down: nothing will run */
        free(d);
    }
}

/* A wait for the connection, or NULL (then it is closed unanswered once the others are done:
 * the change may not be durable). */
static durable_wait *wait_new(rconn *rc, bool data)
{
    durable_wait *d = malloc(sizeof(*d));
    if (!d) {
        rc->wait_failed = true; /* not counted: nothing would ever count it off */
        return NULL;
    }
    rc->waits++;
    rc->data_waits += data;
    d->c = rc->c;
    d->loop = net_conn_loop(rc->c);
    d->data = data;
    d->rc = 0;
    d->state = 0;
    net_conn_ref(rc->c);
    return d;
}

/* After the call that registered durable_cb for d returned r. */
static void wait_registered(rconn *rc, durable_wait *d, int r)
{
    int zero = 0;
    if (r == 0 && !__atomic_compare_exchange_n(&d->state, &zero, 1, false, __ATOMIC_ACQ_REL,
                                               __ATOMIC_ACQUIRE)) {
        /* Already durable (fsync=interval or none): no task to post. */
        rc->waits--;
        rc->data_waits -= d->data;
        rc->wait_failed |= d->rc != 0;
        net_conn_unref(rc->c);
        free(d);
        return;
    }
    if (r) {
        d->rc = r;
        if (net_loop_post(d->loop, durable_done, d) != 0) {
            rc->waits--;
            rc->data_waits -= d->data;
            rc->wait_failed = true;
            net_conn_unref(rc->c);
            free(d);
        }
    }
}

void resp_wait_durable(rconn *rc, struct td_topic_ref *ref, int32_t partition, int64_t end)
{
    durable_wait *d = wait_new(rc, true);
    if (d)
        wait_registered(rc, d, broker_when_durable(ref, partition, end, durable_cb, d));
}

void resp_wait_saved(rconn *rc, uint64_t seq)
{
    if (seq == 0)
        return;
    durable_wait *d = wait_new(rc, false);
    if (d)
        wait_registered(rc, d, xgroups_when_saved(rc->s->e, seq, durable_cb, d));
}

static void unblock(rconn *rc)
{
    resp_block *b = rc->blk;
    if (!b)
        return;
    net_wait_cancel(&rc->wait);
    rc->blk = NULL;
    resp_block_free(b);
}

/* The reply is written: send it and read the connection's next commands. */
static void unblock_and_go(rconn *rc)
{
    net_conn *c = rc->c;
    unblock(rc);
    resp_quota_unblocked(rc, rc->out.len);
    /* With a wait outstanding (XREADGROUP's deliveries being made durable) the connection
     * stays paused: durable_done sends the reply and resumes it. Resumed now, it would not be
     * paused again without input, and durable_done's resume would not send. */
    if (rc->waits)
        return;
    flush_out(rc);
    if (!rc->throttled)
        net_conn_resume(c);
}

/* Retries a blocked connection's read (net_wait_fn); true if it was answered. The retry runs
 * like a command, under the read lock: never in the middle of another client's EXEC (Redis
 * serves blocked clients after the command that readied their keys). At the timeout (final) the
 * answer is a null array, as Redis's. */
static bool retry_blocked(net_waiter *wt, bool final)
{
    rconn *rc = (rconn *)((char *)wt - offsetof(rconn, wait));
    resp_w w = {&rc->out, rc->proto, false};
    if (final) {
        resp_w_null_array(&w);
        unblock_and_go(rc);
        return true;
    }
    pthread_rwlock_rdlock(&rc->s->exec_lock);
    bool answered = resp_block_retry(rc, &w, rc->blk);
    pthread_rwlock_unlock(&rc->s->exec_lock);
    if (!answered)
        return false;
    unblock_and_go(rc);
    return true;
}

void resp_block_start(rconn *rc, resp_block *b, long long ms)
{
    resp_w w = {&rc->out, rc->proto, false};
    rc->blk = b;
    if (net_wait_park(rc->s->blocked, &rc->wait, rc->c, ms > 0 ? ms : -1, 0) != 0) {
        resp_w_null_array(&w); /* no memory to wait: as if the time were up */
        unblock(rc);
        return;
    }
    /* An append between the first try and now found nothing blocked: once more. */
    if (resp_block_retry(rc, &w, b))
        unblock(rc);
}

int resp_server_attach(resp_server *s, net_group *g)
{
    s->group = g;
    net_waitset *set;
    int r = net_waitset_create(&set);
    if (r == 0 && (r = broker_add_advance_hook(s->e, net_wait_wake_hook, set)) != 0)
        net_waitset_destroy(set);
    if (r)
        return r;
    s->blocked = set;
    /* Entries of a group with a queue policy falling due wake blocked readers too. */
    xgroups_set_notify(s->e, net_wait_wake_hook, set);
    return 0;
}

void resp_server_detach(resp_server *s)
{
    if (s && s->blocked) {
        xgroups_set_notify(s->e, NULL, NULL);
        broker_remove_advance_hook(s->e, net_wait_wake_hook, s->blocked);
    }
}

static int on_open(net_conn *c)
{
    resp_server *s = net_conn_proto_arg(c);
    rconn *rc = calloc(1, sizeof(*rc));
    if (!rc)
        return -ENOMEM;
    rc->s = s;
    rc->c = c;
    rc->proto = 2;
    rc->created_ms = td_wall_ms();
    rc->last_ms = rc->created_ms;
    rc->last_cmd = "NULL";
    snprintf(rc->addr, sizeof(rc->addr), "%s", net_conn_peer(c));
    td_buf_init(&rc->queued);
    td_buf_init(&rc->out);
    td_arena_init(&rc->arena);
    rc->authed = !resp_auth_required(rc);
    resp_note_user(rc); /* a client certificate's name (the handshake is done) */
    net_waiter_init(&rc->wait, retry_blocked);
    pthread_mutex_lock(&s->clients_mu);
    rc->id = s->next_id++;
    rc->next = s->clients;
    if (s->clients)
        s->clients->prev = rc;
    s->clients = rc;
    s->nclients++;
    pthread_mutex_unlock(&s->clients_mu);
    __atomic_add_fetch(&s->total_connections, 1, __ATOMIC_RELAXED);
    net_conn_set_data(c, rc);
    return 0;
}

static void on_close(net_conn *c)
{
    rconn *rc = net_conn_data(c);
    if (!rc)
        return;
    resp_server *s = rc->s;
    resp_quota_close(rc);
    resp_pubsub_forget(rc);
    unblock(rc);
    resp_xbatch_free(rc->xb);
    pthread_mutex_lock(&s->clients_mu);
    if (rc->prev)
        rc->prev->next = rc->next;
    else
        s->clients = rc->next;
    if (rc->next)
        rc->next->prev = rc->prev;
    s->nclients--;
    pthread_mutex_unlock(&s->clients_mu);
    td_buf_free(&rc->queued);
    td_buf_free(&rc->out);
    td_arena_free(&rc->arena);
    net_conn_set_data(c, NULL);
    free(rc);
}

void resp_client_line(rconn *rc, td_buf *b)
{
    char line[1024];
    int64_t now = td_wall_ms();
    int64_t last = __atomic_load_n(&rc->last_ms, __ATOMIC_RELAXED);
    const char *cmd = __atomic_load_n(&rc->last_cmd, __ATOMIC_RELAXED);
    const char *sub = __atomic_load_n(&rc->last_sub, __ATOMIC_RELAXED);
    size_t nsub = __atomic_load_n(&rc->nsub, __ATOMIC_RELAXED);
    size_t npsub = __atomic_load_n(&rc->npsub, __ATOMIC_RELAXED);
    const char *flags = rc->in_multi ? "x" : nsub + npsub ? "P" : "N";
    int n = snprintf(line, sizeof(line),
                     "id=%" PRIu64 " addr=%s laddr=%s:%d fd=-1 name=%s age=%" PRId64
                     " idle=%" PRId64 " flags=%s db=0 sub=%zu psub=%zu ssub=0 multi=%d qbuf=0 "
                     "qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 "
                     "tot-mem=0 events=r cmd=%s%s%s user=%s redir=-1 resp=%d lib-name=%s "
                     "lib-ver=%s\n",
                     rc->id, rc->addr, rc->s->cfg.bind, rc->s->port, rc->name,
                     (now - rc->created_ms) / 1000, (now - last) / 1000, flags, nsub, npsub,
                     rc->in_multi ? (int)rc->nqueued : -1, cmd, sub ? "|" : "", sub ? sub : "",
                     rc->user[0] ? rc->user : "default", rc->proto, rc->lib_name, rc->lib_ver);
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

size_t resp_clients_kill(resp_server *s, uint64_t id, const char *addr, const char *user,
                         const rconn *skip)
{
    size_t n = 0;
    pthread_mutex_lock(&s->clients_mu);
    for (rconn *x = s->clients; x; x = x->next) {
        if (x == skip || (id && x->id != id) || (addr && strcmp(addr, x->addr)) ||
            (user && strcmp(user, x->user[0] ? x->user : "default")))
            continue;
        net_conn_ref(x->c);
        if (net_loop_post(net_conn_loop(x->c), kill_task, x->c) != 0)
            net_conn_unref(x->c);
        else
            n++;
    }
    pthread_mutex_unlock(&s->clients_mu);
    return n;
}

void resp_reset(rconn *rc)
{
    resp_pubsub_forget(rc);
    rc->in_multi = rc->multi_dirty = false;
    rc->queued.len = 0;
    rc->nqueued = 0;
    rc->proto = 2;
    /* RESET forgets the user AUTH established, as Redis's does. */
    net_conn_set_user(rc->c, NULL);
    pthread_mutex_lock(&rc->s->clients_mu);
    rc->name[0] = 0;
    pthread_mutex_unlock(&rc->s->clients_mu);
    resp_note_user(rc);
    rc->authed = !resp_auth_required(rc);
}

/* ---------------------------------------------------------------------------------------------
 * Dispatch
 */
/* Redis's "unknown command" text: the name, and the first arguments up to 128 characters. */
static void unknown_command(resp_w *w, size_t argc, const td_slice *argv)
{
    char args[512] = "";
    size_t n = 0;
    for (size_t i = 1; i < argc && n < 128; i++) {
        int room = 128 - (int)n;
        int k = snprintf(args + n, sizeof(args) - n, "'%.*s' ",
                         (int)(argv[i].n < (size_t)room ? argv[i].n : (size_t)room),
                         (const char *)argv[i].p);
        if (k < 0)
            break;
        n += (size_t)k;
    }
    resp_w_errorf(w, "ERR unknown command '%.*s', with args beginning with: %s",
                  (int)(argv[0].n < 128 ? argv[0].n : 128), (const char *)argv[0].p, args);
}

static bool arity_ok(const rcmd *c, size_t argc)
{
    return c->arity > 0 ? argc == (size_t)c->arity : argc >= (size_t)-c->arity;
}

/* Finds the command (and subcommand) of argv: NULL after answering why not. */
static const rcmd *lookup(resp_w *w, size_t argc, const td_slice *argv, const rcmd **parent)
{
    *parent = NULL;
    const rcmd *c = resp_command_find(resp_commands, argv[0]);
    if (!c) {
        unknown_command(w, argc, argv);
        return NULL;
    }
    if (c->subs && argc >= 2) {
        const rcmd *sub = resp_command_find(c->subs, argv[1]);
        if (!sub) {
            char up[32];
            size_t i = 0;
            for (; c->name[i] && i < sizeof(up) - 1; i++)
                up[i] = (char)toupper((unsigned char)c->name[i]);
            up[i] = 0;
            resp_w_errorf(w, "ERR unknown subcommand '%.*s'. Try %s HELP.",
                          (int)(argv[1].n < 128 ? argv[1].n : 128), (const char *)argv[1].p, up);
            return NULL;
        }
        *parent = c;
        c = sub;
    }
    if (!arity_ok(c, argc)) {
        char full[64];
        resp_command_fullname(*parent, c, full, sizeof(full));
        resp_w_errorf(w, "ERR wrong number of arguments for '%s' command", full);
        return NULL;
    }
    return c;
}

static void count(rconn *rc, const rcmd *parent, const rcmd *c, int64_t t0)
{
    __atomic_add_fetch(&rc->s->total_commands, 1, __ATOMIC_RELAXED);
    const rcmd *top = parent ? parent : c;
    size_t i = top ? (size_t)(top - resp_commands) : rc->s->ncommands; /* last: "unknown" */
    td_counter_add(rc->s->m_requests[i], 1);
    td_histogram_observe(rc->s->m_latency[i], td_mono_ns() - t0);
}

/* The connection's current command, as CLIENT LIST and ACL LOG's client-info show it. */
static void note_command(rconn *rc, const rcmd *parent, const rcmd *c)
{
    __atomic_store_n(&rc->last_ms, td_wall_ms(), __ATOMIC_RELAXED);
    __atomic_store_n(&rc->last_cmd, parent ? parent->name : c->name, __ATOMIC_RELAXED);
    __atomic_store_n(&rc->last_sub, parent ? c->name : NULL, __ATOMIC_RELAXED);
}

/* Runs one command (not queued). */
static void run(rconn *rc, resp_w *w, const rcmd *parent, const rcmd *c, size_t argc,
                const td_slice *argv)
{
    note_command(rc, parent, c);
    c->fn(rc, w, argc, argv);
}

/* One command from the client: checked, then run, or queued inside MULTI. */
static void dispatch(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    int64_t t0 = td_mono_ns();
    const rcmd *parent = NULL, *c = lookup(w, argc, argv, &parent);
    const rcmd *top = parent ? parent : c;
    if (!rc->authed && (!top || !(top->flags & RF_NOAUTH))) {
        if (c) { /* an unknown command is answered as such, authenticated or not */
            resp_w_error(w, "NOAUTH Authentication required.");
            char full[64];
            resp_command_fullname(parent, c, full, sizeof(full));
            resp_refuse_unauthenticated(rc, full);
        }
        rc->multi_dirty |= rc->in_multi;
        count(rc, parent, c, t0);
        return;
    }
    if (!c) {
        rc->multi_dirty |= rc->in_multi;
        count(rc, parent, c, t0);
        return;
    }
    if (rc->proto == 2 && resp_subscriptions(rc) && !(top->flags & RF_SUBCTX)) {
        char full[64];
        resp_command_fullname(parent, c, full, sizeof(full));
        resp_w_errorf(w,
                      "ERR Can't execute '%s': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / "
                      "QUIT / RESET are allowed in this context",
                      full);
        count(rc, parent, c, t0);
        return;
    }
    /* Authorization is checked when a command is queued, as Redis does (a refused command
     * makes EXEC fail), and again when EXEC runs it: permissions may change in between. */
    note_command(rc, parent, c);
    if (!resp_authorize(rc, w, parent, c, argc, argv, false)) {
        rc->multi_dirty |= rc->in_multi;
        count(rc, parent, c, t0);
        return;
    }
    if (rc->in_multi && !(top->flags & RF_NOMULTI)) {
        /* Queued as a RESP array, read again by EXEC. */
        char hdr[32];
        int n = snprintf(hdr, sizeof(hdr), "*%zu\r\n", argc);
        td_buf_append(&rc->queued, hdr, (size_t)n);
        for (size_t i = 0; i < argc; i++) {
            n = snprintf(hdr, sizeof(hdr), "$%zu\r\n", argv[i].n);
            td_buf_append(&rc->queued, hdr, (size_t)n);
            td_buf_append(&rc->queued, argv[i].p, argv[i].n);
            if (td_buf_append(&rc->queued, "\r\n", 2) != 0)
                w->oom = true;
        }
        rc->nqueued++;
        resp_w_simple(w, "QUEUED");
        return;
    }
    pthread_rwlock_rdlock(&rc->s->exec_lock);
    run(rc, w, parent, c, argc, argv);
    pthread_rwlock_unlock(&rc->s->exec_lock);
    count(rc, parent, c, t0);
}

void resp_multi(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)argc;
    (void)argv;
    if (rc->in_multi) {
        resp_w_error(w, "ERR MULTI calls can not be nested");
        return;
    }
    rc->in_multi = true;
    rc->multi_dirty = false;
    rc->queued.len = 0;
    rc->nqueued = 0;
    resp_w_simple(w, "OK");
}

void resp_discard(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)argc;
    (void)argv;
    if (!rc->in_multi) {
        resp_w_error(w, "ERR DISCARD without MULTI");
        return;
    }
    rc->in_multi = rc->multi_dirty = false;
    rc->queued.len = 0;
    rc->nqueued = 0;
    resp_w_simple(w, "OK");
}

void resp_exec(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)argc;
    (void)argv;
    if (!rc->in_multi) {
        resp_w_error(w, "ERR EXEC without MULTI");
        return;
    }
    rc->in_multi = false;
    if (rc->multi_dirty) {
        rc->multi_dirty = false;
        rc->queued.len = 0;
        rc->nqueued = 0;
        resp_w_error(w, "EXECABORT Transaction discarded because of previous errors.");
        return;
    }
    /* The queued commands run under the write lock (taken over from dispatch's read lock):
     * no other client's command runs in between. */
    pthread_rwlock_unlock(&rc->s->exec_lock);
    pthread_rwlock_wrlock(&rc->s->exec_lock);
    resp_w_array(w, rc->nqueued);
    rc->in_exec = true;
    size_t pos = 0;
    td_buf q = rc->queued;
    td_buf_init(&rc->queued);
    for (size_t k = 0; k < rc->nqueued; k++) {
        resp_cmd cmd;
        const char *why;
        if (resp_parse_command(q.p + pos, q.len - pos, &rc->s->cfg.limits, &rc->arena, &cmd,
                               &why) != 0) {
            resp_w_error(w, "ERR internal error reading a queued command");
            continue;
        }
        pos += cmd.len;
        const rcmd *parent = NULL, *c = lookup(w, cmd.argc, cmd.argv, &parent);
        if (c)
            note_command(rc, parent, c);
        if (c && resp_authorize(rc, w, parent, c, cmd.argc, cmd.argv, true))
            run(rc, w, parent, c, cmd.argc, cmd.argv);
    }
    td_buf_free(&q);
    rc->in_exec = false;
    rc->nqueued = 0;
    pthread_rwlock_unlock(&rc->s->exec_lock);
    pthread_rwlock_rdlock(&rc->s->exec_lock);
}

/* Hands the replies written so far to the connection. */
static void flush_out(rconn *rc)
{
    if (rc->out.len == 0)
        return;
    net_conn_write(rc->c, rc->out.p, rc->out.len);
    rc->out.len = 0;
    if (rc->out.cap > (1u << 20)) { /* a big reply's buffer is not kept */
        td_buf_free(&rc->out);
        td_buf_init(&rc->out);
    }
}

/* ---------------------------------------------------------------------------------------------
 * Cross-protocol requests
 *
 * A web page can make a browser send an HTTP request to 127.0.0.1:6379. Read as inline
 * commands, its header lines are unknown commands, but the lines of its body are commands like
 * any other, so a page could write, delete or lock streams. Redis closes a connection whose
 * command is named POST or Host: (any case, inline or multibulk) before running it, whoever
 * sent it and whatever state the connection is in, and logs a warning at most once a minute;
 * so does this listener. A GET request is caught at its Host: line, which HTTP/1.1 requires
 * before any body.
 */
#define XPROTO_LOG_EVERY_MS 60000

static bool cross_protocol(td_slice name)
{
    return resp_arg_is(name, "post") || resp_arg_is(name, "host:");
}

/* The warning, at most once per XPROTO_LOG_EVERY_MS for the whole listener, so that a flood of
 * such requests cannot fill the log; the next line says how many went unlogged. */
static void cross_protocol_warn(rconn *rc)
{
    resp_server *s = rc->s;
    int64_t now = td_mono_ns() / 1000000;
    int64_t last = __atomic_load_n(&s->xproto_logged_ms, __ATOMIC_RELAXED);
    if ((last && now - last < XPROTO_LOG_EVERY_MS) ||
        !__atomic_compare_exchange_n(&s->xproto_logged_ms, &last, now, false, __ATOMIC_RELAXED,
                                     __ATOMIC_RELAXED)) {
        __atomic_add_fetch(&s->xproto_unlogged, 1, __ATOMIC_RELAXED);
        return;
    }
    uint64_t more = __atomic_exchange_n(&s->xproto_unlogged, 0, __ATOMIC_RELAXED);
    char tail[96] = "";
    if (more)
        snprintf(tail, sizeof(tail),
                 " (%" PRIu64 " more such connection%s aborted since the last warning)", more,
                 more == 1 ? "" : "s");
    TD_WARN("redis",
            "Possible SECURITY ATTACK detected. It looks like somebody is sending POST or Host: "
            "commands to Redis. This is likely due to an attacker attempting to use Cross "
            "Protocol Scripting to compromise your Redis instance. Connection from %s "
            "aborted.%s",
            rc->addr, tail);
}

/* A change of this connection could not be made durable, or its wait not even registered (an
 * offline partition, no memory), and no other wait is outstanding: the connection is closed
 * without the replies held, since the client must not take the change for done. (With waits
 * outstanding, the last one's durable_done closes it.) */
static bool failed_unanswered(rconn *rc)
{
    if (!rc->wait_failed || rc->waits)
        return false;
    TD_WARN("redis", "closing %s: a change could not be made durable", rc->addr);
    return true;
}

static ssize_t on_data(net_conn *c, uint8_t *p, size_t n)
{
    rconn *rc = net_conn_data(c);
    size_t used = 0;
    if (rc->waits || rc->blk) {
        net_conn_pause(c);
        return 0;
    }
    while (used < n && !rc->closing && !rc->throttled) {
        resp_w w = {&rc->out, rc->proto, false};
        resp_cmd cmd;
        const char *why;
        td_arena_free(&rc->arena);
        td_arena_init(&rc->arena);
        int r = resp_parse_command(p + used, n - used, &rc->s->cfg.limits, &rc->arena, &cmd, &why);
        if (r == TD_EAGAIN)
            break;
        if (r != 0) {
            resp_w_errorf(&w, "ERR %s", r == TD_EPROTO ? why : "out of memory");
            TD_INFO("redis", "closing %s: %s", rc->addr, r == TD_EPROTO ? why : "out of memory");
            rc->closing = true;
            break;
        }
        /* While XADDs wait for durability, only more XADDs run (they join the same fsync);
         * anything else waits, so that it sees what they wrote. While only groups' saves wait
         * (XACK, XREADGROUP, XCLAIM ...), every command runs: the groups' state in memory is
         * already changed, the replies are held until the saves are durable, and pipelined
         * changes share their group commits instead of taking one each. Replies held that way
         * stop the reading at 256 KiB. */
        bool xadd = cmd.argc && resp_arg_is(cmd.argv[0], "xadd");
        if (!xadd)
            resp_xadd_flush(rc, &w);
        if (failed_unanswered(rc))
            return -1;
        if ((rc->data_waits && !xadd) || (rc->waits && rc->out.len >= (256u << 10)))
            break;
        used += cmd.len;
        if (cmd.argc && cross_protocol(cmd.argv[0])) {
            /* Closed at once: neither this command nor anything after it runs, and the
             * replies not yet sent are dropped, as Redis drops them. */
            cross_protocol_warn(rc);
            return -1;
        }
        if (cmd.argc) {
            size_t out0 = rc->out.len;
            int64_t t0 = td_mono_ns();
            dispatch(rc, &w, cmd.argc, cmd.argv);
            resp_quota_command(rc, cmd.argv[0], cmd.len,
                               rc->out.len >= out0 ? rc->out.len - out0 : 0,
                               td_mono_ns() - t0);
        }
        if (failed_unanswered(rc))
            return -1;
        if (w.oom) {
            rc->closing = true;
            break;
        }
        if (rc->blk)
            break;
        /* A client that sends commands faster than it reads their replies (pipelining
         * without reading) stops being read at the output limit or when the broker's buffer
         * budget is spent; the rest of its input runs once its output drains. The loop checks
         * between reads; within one, replies are handed over (and checked) every 256 KiB. */
        if (rc->out.len >= (256u << 10) && !rc->waits) {
            flush_out(rc);
            if (net_conn_output_full(c))
                break;
        }
    }
    resp_w fw = {&rc->out, rc->proto, false};
    resp_xadd_flush(rc, &fw);
    if (failed_unanswered(rc))
        return -1;
    td_arena_free(&rc->arena);
    td_arena_init(&rc->arena);
    if ((rc->waits || rc->blk) && !rc->closing) {
        if (!rc->waits)
            flush_out(rc);
        net_conn_pause(c);
        return (ssize_t)used;
    }
    flush_out(rc);
    if (rc->closing) {
        net_conn_close(c, false); /* after the replies */
        return (ssize_t)n;
    }
    return (ssize_t)used;
}

static const net_proto proto = {
    .name = "redis",
    .on_open = on_open,
    .on_data = on_data,
    .on_close = on_close,
    .max_input = (64u << 20) + (1u << 20),
    .out_limit = 64u << 20,
};

const net_proto *resp_server_proto(void)
{
    return &proto;
}
