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
#include "proto/resp/xnodes.h"

void resp_server_config_default(resp_server_config *c)
{
    memset(c, 0, sizeof(*c));
    resp_limits_default(&c->limits);
    c->max_reply = (size_t)512 << 20;
    c->monitor_limit = (size_t)8 << 20;
    c->stream_node_max_entries = XN_DEFAULT_MAX_ENTRIES;
    c->stream_node_max_bytes = XN_DEFAULT_MAX_BYTES;
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
    s->notify_flags = cfg->notify_flags;
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
    if (rc == 0)
        rc = resp_admin_create(s);
    if (rc == 0)
        rc = resp_xnodes_create(s);
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
    resp_notify_wait_jobs(s);
    resp_pubsub_destroy(s->pubsub);
    resp_authz_destroy(s);
    resp_admin_destroy(s);
    resp_xnodes_destroy(s);
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
    /* Run once durable (or failed: rc), on the loop before the held replies go, or where the
     * wait ends otherwise; then may be NULL. */
    void (*then)(void *arg, int rc);
    void *then_arg;
} durable_wait;

static void wait_then(durable_wait *d, int r)
{
    if (d->then)
        d->then(d->then_arg, r);
    d->then = NULL;
}

/* On the connection's loop: one of its XADDs is durable (or failed). */
static void durable_done(void *arg)
{
    durable_wait *d = arg;
    net_conn *c = d->c;
    wait_then(d, d->rc);
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
            resp_notify_release(rc);
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
        wait_then(d, -ESHUTDOWN);
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
    d->then = NULL;
    d->then_arg = NULL;
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
        wait_then(d, d->rc);
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
            wait_then(d, r);
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

void resp_wait_durable_then(rconn *rc, struct td_topic_ref *ref, int32_t partition, int64_t end,
                            void (*then)(void *arg, int rc), void *arg)
{
    durable_wait *d = wait_new(rc, true);
    if (!d) {
        then(arg, -ENOMEM);
        return;
    }
    d->then = then;
    d->then_arg = arg;
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
    __atomic_and_fetch(&rc->shown_flags, ~(unsigned)RC_SHOWN_BLOCKED, __ATOMIC_RELAXED);
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

void resp_unblock_now(rconn *rc, bool error)
{
    if (!rc->blk)
        return; /* answered in the meantime */
    resp_w w = {&rc->out, rc->proto, false};
    if (!rc->reply_off) {
        if (error)
            resp_w_error(&w, "UNBLOCKED client unblocked via CLIENT UNBLOCK");
        else
            resp_w_null_array(&w); /* as at the timeout */
    }
    unblock_and_go(rc);
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
        if (!rc->reply_off)
            resp_w_null_array(&w);
        unblock_and_go(rc);
        return true;
    }
    size_t out0 = rc->out.len;
    pthread_rwlock_rdlock(&rc->s->exec_lock);
    bool answered = resp_block_retry(rc, &w, rc->blk);
    pthread_rwlock_unlock(&rc->s->exec_lock);
    if (!answered)
        return false;
    if (rc->reply_off)
        rc->out.len = out0; /* CLIENT REPLY OFF */
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
    return resp_notify_attach(s);
}

void resp_server_detach(resp_server *s)
{
    if (s && s->blocked) {
        resp_notify_detach(s);
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
    resp_client_laddr(rc);
    rc->nqueued_shown = -1;
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
    resp_admin_monitor_forget(rc);
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
    resp_unwatch_all(rc);
    resp_xadd_trims_forget(rc);
    td_buf_free(&rc->queued);
    td_buf_free(&rc->out);
    td_buf_free(&rc->notes); /* held with replies that are not sent either */
    td_arena_free(&rc->arena);
    net_conn_set_data(c, NULL);
    free(rc);
}

/* The connection's queue of commands is empty, outside MULTI (MULTI starts from here; WATCH's
 * keys stay, since WATCH comes before MULTI). */
static void multi_clear(rconn *rc)
{
    rc->in_multi = rc->multi_dirty = false;
    rc->queued.len = 0;
    rc->nqueued = 0;
    __atomic_store_n(&rc->nqueued_shown, -1, __ATOMIC_RELAXED);
    __atomic_store_n(&rc->multi_mem, 0, __ATOMIC_RELAXED);
}

/* The transaction ends (EXEC, DISCARD, RESET, an EXEC refused): its queue and its watched
 * keys go, as with Redis's discardTransaction. */
static void multi_end(rconn *rc)
{
    multi_clear(rc);
    resp_unwatch_all(rc);
}

void resp_reset(rconn *rc)
{
    resp_pubsub_forget(rc);
    resp_admin_monitor_forget(rc);
    multi_end(rc);
    /* As Redis's clearClientConnectionState: OFF and a SKIP to come are cleared, not a SKIP of
     * this very command (RESET after CLIENT REPLY SKIP is not answered). */
    rc->reply_off = rc->reply_skip_next = false;
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

/* Finds the command (and subcommand) of argv: NULL after answering why not. *found gets the
 * command found even when its arity is wrong (Redis counts that refusal against it). */
static const rcmd *lookup(resp_w *w, size_t argc, const td_slice *argv, const rcmd **parent,
                          const rcmd **found)
{
    *parent = NULL;
    *found = NULL;
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
    *found = c;
    if (!arity_ok(c, argc)) {
        char full[64];
        resp_command_fullname(*parent, c, full, sizeof(full));
        resp_w_errorf(w, "ERR wrong number of arguments for '%s' command", full);
        return NULL;
    }
    return c;
}

/* The request metrics of a command that started at t0 and ended at end. */
static void count(rconn *rc, const rcmd *parent, const rcmd *c, int64_t t0, int64_t end)
{
    __atomic_add_fetch(&rc->s->total_commands, 1, __ATOMIC_RELAXED);
    const rcmd *top = parent ? parent : c;
    size_t i = top ? (size_t)(top - resp_commands) : rc->s->ncommands; /* last: "unknown" */
    td_counter_add(rc->s->m_requests[i], 1);
    td_histogram_observe(rc->s->m_latency[i], end - t0);
}

/* The connection's current command, as CLIENT LIST and ACL LOG's client-info show it. */
static void note_command(rconn *rc, const rcmd *parent, const rcmd *c)
{
    __atomic_store_n(&rc->last_ms, td_wall_ms(), __ATOMIC_RELAXED);
    __atomic_store_n(&rc->last_cmd, parent ? parent->name : c->name, __ATOMIC_RELAXED);
    __atomic_store_n(&rc->last_sub, parent ? c->name : NULL, __ATOMIC_RELAXED);
}

/* Runs one command (not queued), then counts it (INFO commandstats, errorstats), and gives it
 * to the slow log, the latency events and the monitors. Its reply starts at rc->out[out0].
 * Returns when it ended (td_mono_ns). */
static int64_t run(rconn *rc, resp_w *w, const rcmd *parent, const rcmd *c, size_t argc,
                   const td_slice *argv)
{
    size_t out0 = rc->out.len;
    int64_t t0 = td_mono_ns();
    note_command(rc, parent, c);
    c->fn(rc, w, argc, argv);
    int64_t end = td_mono_ns();
    bool failed = resp_admin_error_at(rc->s, &rc->out, out0);
    resp_admin_called(rc, parent, c, argc, argv, end - t0, failed);
    return end;
}

/*
 * A command refused before it ran, its error written at rc->out[out0] (found: the command, NULL
 * when unknown). As Redis's rejectCommand: inside MULTI the transaction is flagged, so that
 * EXEC answers EXECABORT; a refused EXEC itself ends the transaction with "EXECABORT
 * Transaction discarded because of: <the error>".
 */
static void rejected(rconn *rc, resp_w *w, const rcmd *parent, const rcmd *found, size_t out0)
{
    if (found && !parent && found->fn == resp_exec && rc->in_multi &&
        out0 < rc->out.len && rc->out.p[out0] == '-') {
        char why[512];
        size_t n = rc->out.len - out0 - 1;
        const uint8_t *p = rc->out.p + out0 + 1, *cr = memchr(p, '\r', n);
        n = cr ? (size_t)(cr - p) : n;
        n = n < sizeof(why) - 1 ? n : sizeof(why) - 1;
        memcpy(why, p, n);
        why[n] = 0;
        rc->out.len = out0;
        /* Redis's refusals with their own prefix (NOAUTH, NOPERM) keep it; those it words
         * without one, which its reply writer then prefixes with ERR, have none here. */
        const char *text = strncmp(why, "ERR ", 4) ? why : why + 4;
        resp_w_errorf(w, "EXECABORT Transaction discarded because of: %s", text);
        multi_end(rc);
    } else {
        rc->multi_dirty |= rc->in_multi;
    }
    resp_admin_error_at(rc->s, &rc->out, out0);
    resp_admin_rejected(rc->s, found);
}

/* Queues a command inside MULTI, as a RESP array read again by EXEC. */
static void queue(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    char hdr[32];
    size_t bytes = 0;
    int n = snprintf(hdr, sizeof(hdr), "*%zu\r\n", argc);
    td_buf_append(&rc->queued, hdr, (size_t)n);
    for (size_t i = 0; i < argc; i++) {
        n = snprintf(hdr, sizeof(hdr), "$%zu\r\n", argv[i].n);
        td_buf_append(&rc->queued, hdr, (size_t)n);
        td_buf_append(&rc->queued, argv[i].p, argv[i].n);
        if (td_buf_append(&rc->queued, "\r\n", 2) != 0)
            w->oom = true;
        bytes += argv[i].n;
    }
    rc->nqueued++;
    /* Redis's multi-mem: the arguments' bytes and a pointer each. */
    __atomic_add_fetch(&rc->multi_mem, bytes + argc * sizeof(void *), __ATOMIC_RELAXED);
    __atomic_store_n(&rc->nqueued_shown, (int)rc->nqueued, __ATOMIC_RELAXED);
    resp_w_simple(w, "QUEUED");
}

/* One command from the client: checked as Redis's processCommand checks it (existence and
 * arity, authentication, the subscribed context, permissions), then run, or queued inside
 * MULTI. */
static void dispatch(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    int64_t t0 = td_mono_ns();
    size_t out0 = rc->out.len;
    const rcmd *parent = NULL, *found = NULL, *c = lookup(w, argc, argv, &parent, &found);
    const rcmd *top = parent ? parent : c;
    bool refused = !c;
    if (c && !rc->authed && !(top->flags & RF_NOAUTH)) {
        /* An unknown command is answered as such, authenticated or not. */
        resp_w_error(w, "NOAUTH Authentication required.");
        char full[64];
        resp_command_fullname(parent, c, full, sizeof(full));
        resp_refuse_unauthenticated(rc, full);
        refused = true;
    } else if (c) {
        /* Authorization is checked when a command is queued, as Redis does (a refused command
         * makes EXEC fail), and again when EXEC runs it: permissions may change in between.
         * Then the subscribed context, in Redis's order. */
        note_command(rc, parent, c);
        refused = !resp_authorize(rc, w, parent, c, argc, argv, rc->in_multi);
        if (!refused && rc->proto == 2 && resp_subscriptions(rc) && !(top->flags & RF_SUBCTX)) {
            char full[64];
            resp_command_fullname(parent, c, full, sizeof(full));
            resp_w_errorf(w,
                          "ERR Can't execute '%s': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / "
                          "PING / QUIT / RESET are allowed in this context",
                          full);
            refused = true;
        }
    }
    if (refused) {
        rejected(rc, w, parent, found, out0);
        count(rc, parent, c, t0, td_mono_ns());
        return;
    }
    if (rc->in_multi && !(top->flags & RF_NOMULTI)) {
        queue(rc, w, argc, argv);
        return;
    }
    pthread_rwlock_rdlock(&rc->s->exec_lock);
    int64_t end = run(rc, w, parent, c, argc, argv);
    pthread_rwlock_unlock(&rc->s->exec_lock);
    count(rc, parent, c, t0, end);
}

void resp_multi(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)argc;
    (void)argv;
    if (rc->in_multi) {
        /* An error, but not a refusal: the transaction goes on (Redis 7.0). */
        resp_w_error(w, "ERR MULTI calls can not be nested");
        return;
    }
    multi_clear(rc);
    rc->in_multi = true;
    __atomic_store_n(&rc->nqueued_shown, 0, __ATOMIC_RELAXED);
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
    multi_end(rc);
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
    if (rc->multi_dirty) {
        multi_end(rc);
        resp_w_error(w, "EXECABORT Transaction discarded because of previous errors.");
        return;
    }
    /* The queued commands run under the write lock (taken over from dispatch's read lock):
     * no other client's command runs in between. */
    pthread_rwlock_unlock(&rc->s->exec_lock);
    pthread_rwlock_wrlock(&rc->s->exec_lock);
    /* WATCH: a watched key that changed aborts, under the write lock, before anything runs. */
    if (!resp_watched_unchanged(rc)) {
        multi_end(rc);
        resp_w_null_array(w);
        pthread_rwlock_unlock(&rc->s->exec_lock);
        pthread_rwlock_rdlock(&rc->s->exec_lock);
        return;
    }
    size_t nq = rc->nqueued;
    td_buf q = rc->queued;
    td_buf_init(&rc->queued);
    multi_end(rc);
    resp_w_array(w, nq);
    rc->in_exec = true;
    size_t pos = 0;
    for (size_t k = 0; k < nq; k++) {
        resp_cmd cmd;
        const char *why;
        size_t out0 = rc->out.len;
        if (resp_parse_command(q.p + pos, q.len - pos, &rc->s->cfg.limits, &rc->arena, &cmd,
                               &why) != 0) {
            resp_w_error(w, "ERR internal error reading a queued command");
            resp_admin_error_at(rc->s, &rc->out, out0);
            continue;
        }
        pos += cmd.len;
        const rcmd *parent = NULL, *found = NULL;
        const rcmd *c = lookup(w, cmd.argc, cmd.argv, &parent, &found);
        if (c)
            note_command(rc, parent, c);
        if (c && resp_authorize(rc, w, parent, c, cmd.argc, cmd.argv, true))
            run(rc, w, parent, c, cmd.argc, cmd.argv);
        else
            resp_admin_error_at(rc->s, &rc->out, out0);
    }
    td_buf_free(&q);
    rc->in_exec = false;
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

/* The copies CLIENT LIST reads from other loops: before a command (the unread input with it,
 * its arguments' bytes) and after a batch of input (what is left unread and unsent). */
static void shown_running(rconn *rc, size_t unread, size_t argc, const td_slice *argv)
{
    size_t bytes = 0;
    for (size_t i = 0; i < argc; i++)
        bytes += argv[i].n;
    __atomic_store_n(&rc->qbuf, unread, __ATOMIC_RELAXED);
    __atomic_store_n(&rc->argv_mem, bytes, __ATOMIC_RELAXED);
}

static void shown_idle(rconn *rc, size_t unread)
{
    unsigned f = __atomic_load_n(&rc->shown_flags, __ATOMIC_RELAXED) & RC_SHOWN_NOEVICT;
    f |= (rc->monitor ? RC_SHOWN_MONITOR : 0) | (rc->blk ? RC_SHOWN_BLOCKED : 0) |
         (rc->closing ? RC_SHOWN_CLOSING : 0);
    __atomic_store_n(&rc->shown_flags, f, __ATOMIC_RELAXED);
    __atomic_store_n(&rc->qbuf, unread, __ATOMIC_RELAXED);
}

/* CLIENT REPLY after a command: its reply (from out0) is dropped while replies are OFF or
 * SKIPped (a batched XADD's reply is written first, so that it is dropped too), but for
 * subscription confirmations; then a SKIP given by this command applies to the next one, as
 * Redis's CLIENT_REPLY_SKIP_NEXT. */
static void reply_mode_after(rconn *rc, resp_w *w, td_slice name, size_t out0)
{
    /* Redis sends (un)subscribe confirmations as pushes, which CLIENT REPLY does not silence;
     * their errors are replies like any other. */
    static const char *const pushes[] = {"subscribe",   "psubscribe",   "ssubscribe",
                                         "unsubscribe", "punsubscribe", "sunsubscribe"};
    if (rc->reply_off || rc->reply_skip) { /* the names are compared only then: a hot path */
        bool push = false;
        for (size_t i = 0; i < TD_ARRAY_LEN(pushes) && !push; i++)
            push = resp_arg_is(name, pushes[i]);
        if (!(push && rc->out.len > out0 && rc->out.p[out0] != '-')) {
            if (resp_arg_is(name, "xadd"))
                resp_xadd_flush(rc, w);
            if (rc->out.len > out0)
                rc->out.len = out0;
        }
    }
    rc->reply_skip = rc->reply_skip_next;
    rc->reply_skip_next = false;
}

static ssize_t on_data_run(net_conn *c, uint8_t *p, size_t n)
{
    rconn *rc = net_conn_data(c);
    size_t used = 0;
    /* Output still unsent when new input comes: a client that does not read its replies. */
    __atomic_store_n(&rc->omem, net_conn_out_bytes(c), __ATOMIC_RELAXED);
    if (rc->waits || rc->blk) {
        net_conn_pause(c);
        return 0;
    }
    while (used < n && !rc->closing && !rc->throttled) {
        if (__atomic_load_n(&rc->killed, __ATOMIC_ACQUIRE))
            return -1; /* CLIENT KILL: no command after it */
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
            shown_running(rc, n - (used - cmd.len), cmd.argc, cmd.argv);
            dispatch(rc, &w, cmd.argc, cmd.argv);
            __atomic_store_n(&rc->argv_mem, 0, __ATOMIC_RELAXED);
            resp_quota_command(rc, cmd.argv[0], cmd.len,
                               rc->out.len >= out0 ? rc->out.len - out0 : 0,
                               td_mono_ns() - t0);
            reply_mode_after(rc, &w, cmd.argv[0], out0);
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
        shown_idle(rc, n - used);
        return (ssize_t)used;
    }
    flush_out(rc);
    resp_notify_release(rc);
    shown_idle(rc, n - used);
    if (rc->closing) {
        net_conn_close(c, false); /* after the replies */
        return (ssize_t)n;
    }
    return (ssize_t)used;
}

/* The commands' changes to topics reach the broker's change hook on this thread: they are
 * told of by the commands themselves (notify.c), not again by the hook. */
static ssize_t on_data(net_conn *c, uint8_t *p, size_t n)
{
    resp_notify_mute(true);
    ssize_t r = on_data_run(c, p, n);
    resp_notify_mute(false);
    return r;
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
