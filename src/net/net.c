/*
 * net.c: epoll event loops, their timers and posted tasks, listeners and accepting (see net.h for
 * the model).
 *
 * Epoll is level-triggered. A connection's interest set is recomputed after every change
 * (update_interest, conn.c): EPOLLIN while it may read (not paused, output under its limit, input
 * buffer not full, not waiting for the budget of buffered bytes, not closing), EPOLLOUT while
 * output is queued and the socket refused some. Cost per event: one read(2) of up to the free
 * input space, then as many on_data calls as there are whole frames; output goes out at the end
 * of the callback that queued it.
 *
 * Connections (input, output, the budget) are in conn.c.
 *
 * Accepting: every loop listens on every listener's socket. At max_conns open connections, a
 * loop takes the listener out of its epoll set (connections wait in the kernel's backlog) and
 * puts it back when one of its connections closes or after ACCEPT_RETRY_MS; a listener with a
 * busy reply accepts and answers it instead. When accept(2) itself fails for want of
 * descriptors or memory, the loop stops accepting for a back-off that doubles up to
 * ACCEPT_BACKOFF_MAX_MS: with a level-triggered listener, retrying at once is a busy loop.
 */
#include "net/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "net/net_int.h"

static size_t net_default_buffer_memory(void);

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---------------------------------------------------------------------------------------------
 * Timers: a binary min-heap on due_ms.
 */
static void heap_swap(net_loop *l, size_t a, size_t b)
{
    net_timer *t = l->heap[a];
    l->heap[a] = l->heap[b];
    l->heap[b] = t;
    l->heap[a]->heap_index = a;
    l->heap[b]->heap_index = b;
}

static void heap_up(net_loop *l, size_t i)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (l->heap[parent]->due_ms <= l->heap[i]->due_ms)
            break;
        heap_swap(l, i, parent);
        i = parent;
    }
}

static void heap_down(net_loop *l, size_t i)
{
    for (;;) {
        size_t a = 2 * i + 1, b = a + 1, m = i;
        if (a < l->nheap && l->heap[a]->due_ms < l->heap[m]->due_ms)
            m = a;
        if (b < l->nheap && l->heap[b]->due_ms < l->heap[m]->due_ms)
            m = b;
        if (m == i)
            break;
        heap_swap(l, i, m);
        i = m;
    }
}

void net_timer_stop(net_loop *l, net_timer *t)
{
    size_t i = t->heap_index;
    if (i == (size_t)-1 || i >= l->nheap || l->heap[i] != t)
        return;
    t->heap_index = (size_t)-1;
    l->nheap--;
    if (i != l->nheap) {
        l->heap[i] = l->heap[l->nheap];
        l->heap[i]->heap_index = i;
        heap_up(l, i);
        heap_down(l, l->heap[i]->heap_index);
    }
}

void net_timer_start(net_loop *l, net_timer *t, int64_t delay_ms, net_task_fn fn, void *arg)
{
    if (t->heap_index != (size_t)-1 && t->heap_index < l->nheap && l->heap[t->heap_index] == t)
        net_timer_stop(l, t);
    if (td_grow(&l->heap, &l->heap_cap, l->nheap, sizeof(*l->heap), 64) != 0) {
        /* Out of memory: run it now rather than never. */
        t->heap_index = (size_t)-1;
        fn(arg);
        return;
    }
    /* A client may ask for any delay (Redis's BLOCK takes up to 2^63 ms): clamped so that the
     * due time cannot overflow; a quarter of the range is still millions of years. */
    /* A delay counts from the next whole millisecond: timers fire once mono_ms() reaches
     * due_ms, and from the current (truncated) one a timer could fire up to 1 ms before its
     * delay has passed (test_wait saw 149 ms of a 150 ms fetch wait). */
    t->due_ms = delay_ms <= 0 ? mono_ms() : mono_ms() + 1 + TD_MIN(delay_ms, INT64_MAX / 4);
    t->fn = fn;
    t->arg = arg;
    t->heap_index = l->nheap;
    l->heap[l->nheap++] = t;
    heap_up(l, t->heap_index);
}

static void run_timers(net_loop *l, bool all)
{
    l->now = mono_ms();
    while (l->nheap > 0 && (all || l->heap[0]->due_ms <= l->now)) {
        net_timer *t = l->heap[0];
        net_timer_stop(l, t);
        t->fn(t->arg);
    }
}

int64_t net_loop_now(net_loop *l)
{
    return l->now;
}

bool net_loop_stopping(net_loop *l)
{
    return __atomic_load_n(&l->stopping, __ATOMIC_ACQUIRE);
}

/* ---------------------------------------------------------------------------------------------
 * Posted tasks
 */
int net_loop_post(net_loop *l, net_task_fn fn, void *arg)
{
    task *t = malloc(sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->next = NULL;
    t->fn = fn;
    t->arg = arg;
    pthread_mutex_lock(&l->mu);
    if (l->tasks_tail)
        l->tasks_tail->next = t;
    else
        l->tasks = t;
    l->tasks_tail = t;
    bool wake = !l->wake_pending;
    l->wake_pending = true;
    pthread_mutex_unlock(&l->mu);
    if (wake) {
        uint64_t one = 1;
        ssize_t r = write(l->evfd, &one, sizeof(one));
        (void)r; /* EAGAIN only if the counter is saturated: then it is readable anyway */
    }
    return 0;
}

static void run_tasks(net_loop *l)
{
    pthread_mutex_lock(&l->mu);
    task *t = l->tasks;
    l->tasks = l->tasks_tail = NULL;
    l->wake_pending = false;
    pthread_mutex_unlock(&l->mu);
    while (t) {
        task *next = t->next;
        t->fn(t->arg);
        free(t);
        t = next;
    }
}

/* ---------------------------------------------------------------------------------------------
 * Accepting, within max_conns and the descriptors there are
 */
static void accept_timer_fn(void *arg);

/* Takes the listener out of this loop's epoll set for ms (or until a connection closes). */
static void accept_pause(net_loop *l, int idx, int64_t ms)
{
    if (!l->lst_off[idx]) {
        epoll_ctl(l->ep, EPOLL_CTL_DEL, l->g->lst[idx].fd, NULL);
        l->lst_off[idx] = true;
    }
    net_timer_start(l, &l->accept_timer, ms, accept_timer_fn, l);
}

void accept_resume(net_loop *l)
{
    if (net_loop_stopping(l))
        return;
    bool any = false;
    for (int i = 0; i < l->g->nlst; i++) {
        if (!l->lst_off[i])
            continue;
        struct epoll_event e = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = &l->g->lst[i]};
        if (epoll_ctl(l->ep, EPOLL_CTL_ADD, l->g->lst[i].fd, &e) == 0)
            l->lst_off[i] = false;
        else
            any = true;
    }
    if (any)
        net_timer_start(l, &l->accept_timer, ACCEPT_RETRY_MS, accept_timer_fn, l);
    else
        net_timer_stop(l, &l->accept_timer);
}

static void accept_timer_fn(void *arg)
{
    accept_resume(arg);
}

/* Takes one of `limit` connection slots; false when all are taken. */
static bool slot_take(net_group *g, size_t limit)
{
    size_t n = __atomic_load_n(&g->nconns, __ATOMIC_ACQUIRE);
    do {
        if (n >= limit)
            return false;
    } while (!__atomic_compare_exchange_n(&g->nconns, &n, n + 1, false, __ATOMIC_ACQ_REL,
                                          __ATOMIC_ACQUIRE));
    return true;
}

static void at_limit(net_group *g)
{
    if (__atomic_exchange_n(&g->at_limit, true, __ATOMIC_ACQ_REL))
        return;
    char busy[64] = "";
    size_t n = 0;
    for (int i = 0; i < g->nlst && n < sizeof(busy) - 1; i++)
        if (g->lst[i].busy_reply) {
            int k = snprintf(busy + n, sizeof(busy) - n, "%s%s", n ? ", " : " (except ",
                             g->lst[i].proto->name);
            n = k < 0 ? sizeof(busy) : TD_MIN(n + (size_t)k, sizeof(busy) - 1);
        }
    td_log(TD_LOG_WARN, "net",
           "%zu connections open, the limit (max.connections): new connections wait in the "
           "listen backlog%s%s until some close",
           g->max_conns, busy, busy[0] ? ", which answers them with an error)" : "");
}

static void accept_ready(net_loop *l, listener *ls)
{
    net_group *g = l->g;
    int idx = (int)(ls - g->lst);
    size_t limit = g->max_conns + (size_t)ls->extra_conns;
    for (int i = 0; i < 64; i++) {
        bool slot = slot_take(g, limit);
        if (!slot && !ls->busy_reply) {
            at_limit(g);
            td_counter_add(ls->m_refused, 1);
            accept_pause(l, idx, ACCEPT_RETRY_MS);
            return;
        }
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(ls->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int err = errno;
            if (slot)
                __atomic_sub_fetch(&g->nconns, 1, __ATOMIC_ACQ_REL);
            if (err == EAGAIN || err == EWOULDBLOCK)
                return;
            if (err == EINTR || err == ECONNABORTED || err == EPROTO || err == EPERM)
                continue; /* that connection's trouble, not the listener's */
            /* EMFILE, ENFILE, ENOBUFS, ENOMEM: the connection stays in the backlog and the
             * listener stays readable; retrying now would spin. */
            l->backoff_ms = l->backoff_ms ? TD_MIN(l->backoff_ms * 2, ACCEPT_BACKOFF_MAX_MS)
                                          : ACCEPT_BACKOFF_MIN_MS;
            td_log(TD_LOG_WARN, "net",
                   "%s listener: accept: %s (%zu connections open); not accepting for %lld ms",
                   ls->proto->name, strerror(err), __atomic_load_n(&g->nconns, __ATOMIC_RELAXED),
                   (long long)l->backoff_ms);
            for (int k = 0; k < g->nlst; k++)
                accept_pause(l, k, l->backoff_ms);
            return;
        }
        l->backoff_ms = 0;
        if (!slot) {
            /* Past the limit with a busy reply (Redis's "max number of clients reached"):
             * best effort into the empty socket buffer, then the close. */
            ssize_t w =
                send(fd, ls->busy_reply, strlen(ls->busy_reply), MSG_NOSIGNAL | MSG_DONTWAIT);
            (void)w;
            close(fd);
            at_limit(g);
            td_counter_add(ls->m_refused, 1);
            continue;
        }
        if (__atomic_load_n(&g->at_limit, __ATOMIC_ACQUIRE) &&
            __atomic_load_n(&g->nconns, __ATOMIC_ACQUIRE) < g->max_conns - g->max_conns / 10 &&
            __atomic_exchange_n(&g->at_limit, false, __ATOMIC_ACQ_REL))
            td_log(TD_LOG_INFO, "net", "under the connection limit again (%zu open)",
                   __atomic_load_n(&g->nconns, __ATOMIC_RELAXED));
        if (!conn_open(l, ls, fd, &ss)) {
            close(fd);
            __atomic_sub_fetch(&g->nconns, 1, __ATOMIC_ACQ_REL);
        }
    }
}

/* ---------------------------------------------------------------------------------------------
 * Loops
 */
static bool idle_conn(net_conn *c)
{
    /* A TLS connection's staged bytes have left the chain but not the broker. */
    return __atomic_load_n(&c->refs, __ATOMIC_ACQUIRE) == 1 && !c->out_head &&
           !(c->tls && c->tls->woff < c->tls->wlen);
}

/* Loop 0, every second: summaries of log lines the rate limit suppressed, so that a burst that
 * ends is still reported when nothing else is logged after it. */
static void log_timer_fn(void *arg)
{
    net_loop *l = arg;
    td_log_flush_suppressed();
    if (!net_loop_stopping(l))
        net_timer_start(l, &l->log_timer, 1000, log_timer_fn, l);
}

/* Every second, on loops whose group has a listener with an idle timeout or TLS: trims the
 * OpenSSL buffers of TLS connections idle for a second, closes connections that did not finish
 * their TLS handshake within TLS_HANDSHAKE_MS, and those idle
 * for longer (O(connections of the loop) a second). A connection that waits for the budget,
 * is paused by its protocol, has output queued or is referenced by work in flight is not idle. */
static void idle_timer_fn(void *arg)
{
    net_loop *l = arg;
    for (net_conn *c = l->conns, *next; c; c = next) {
        next = c->next;
        if (c->tls && c->opened && l->now - c->active_ms >= 1000 && !c->out_head)
            tls_trim(c->tls); /* OpenSSL's buffers go back while it is idle */
        if (c->tls && !c->opened && l->now - c->open_ms >= TLS_HANDSHAKE_MS) {
            td_log(TD_LOG_INFO, "net", "%s: closing %s: no TLS handshake within %d ms",
                   c->proto->name, c->peer, TLS_HANDSHAKE_MS);
            conn_close_now(c);
        } else if (c->idle_ms > 0 && l->now - c->active_ms >= c->idle_ms && !c->waiting &&
                   !c->paused && idle_conn(c)) {
            td_log(TD_LOG_DEBUG, "net", "%s: closing %s, idle for %" PRId64 " ms",
                   c->proto->name, c->peer, l->now - c->active_ms);
            conn_close_now(c);
        }
    }
    if (!net_loop_stopping(l))
        net_timer_start(l, &l->idle_timer, 1000, idle_timer_fn, l);
}

static void *loop_main(void *arg)
{
    net_loop *l = arg;
    struct epoll_event evs[128];
    l->now = mono_ms();
    if (l == &l->g->loops[0])
        net_timer_start(l, &l->log_timer, 1000, log_timer_fn, l);
    for (int i = 0; i < l->g->nlst; i++)
        if (l->g->lst[i].idle_ms > 0 || l->g->lst[i].tls) {
            net_timer_start(l, &l->idle_timer, 1000, idle_timer_fn, l);
            break;
        }
    for (;;) {
        bool stopping = net_loop_stopping(l);
        if (stopping) {
            /* Answer what waits on timers (long polls) now, close idle connections, and leave
             * once nothing is in flight or the grace period is over. */
            run_timers(l, true);
            for (net_conn *c = l->conns, *next; c; c = next) {
                next = c->next;
                if (idle_conn(c))
                    conn_close_now(c);
            }
            if (!l->conns || l->now >= l->stop_deadline)
                break;
        }
        int timeout = -1;
        if (l->nheap > 0) {
            int64_t d = l->heap[0]->due_ms - mono_ms();
            timeout = d < 0 ? 0 : (int)TD_MIN(d, 60000);
        }
        if (stopping)
            timeout = timeout < 0 ? 10 : TD_MIN(timeout, 10);
        int n = epoll_wait(l->ep, evs, 128, timeout);
        l->now = mono_ms();
        /* Tasks run after the batch's connection events: a task may close and free a
         * connection whose event is further on in this batch. */
        bool woken = false;
        for (int i = 0; i < n; i++) {
            int tag = *(int *)evs[i].data.ptr;
            if (tag == TAG_WAKE) {
                uint64_t v;
                ssize_t r = read(l->evfd, &v, sizeof(v));
                (void)r;
                woken = true;
            } else if (tag == TAG_LISTENER) {
                if (!stopping)
                    accept_ready(l, evs[i].data.ptr);
            } else {
                conn_event(evs[i].data.ptr, evs[i].events);
            }
        }
        if (woken)
            run_tasks(l);
        run_timers(l, false);
    }
    while (l->conns)
        conn_close_now(l->conns);
    run_tasks(l);
    return NULL;
}

static void loop_stop_task(void *arg)
{
    net_loop *l = arg;
    for (int i = 0; i < l->g->nlst; i++)
        if (!l->lst_off[i])
            epoll_ctl(l->ep, EPOLL_CTL_DEL, l->g->lst[i].fd, NULL);
    l->stop_deadline = mono_ms() + l->g->cfg.shutdown_grace_ms;
    __atomic_store_n(&l->stopping, true, __ATOMIC_RELEASE);
}

/* Metrics read at scrape time: the budget's use and the connection limit. */
static void collect(void *arg, td_metrics_out *out)
{
    net_group *g = arg;
    net_budget *b = &g->budget;
    const char *dir[] = {"direction"};
    td_metrics_text_family(out, "tidings_net_buffer_bytes",
                           "Bytes counted in net.buffer.memory.bytes: input buffered beyond each "
                           "connection's floor, and output queued in memory.",
                           TD_GAUGE);
    const char *in[] = {"input"}, *outv[] = {"output"};
    td_metrics_text_sample(out, "tidings_net_buffer_bytes", dir, in, 1,
                           (double)__atomic_load_n(&b->in_used, __ATOMIC_RELAXED));
    td_metrics_text_sample(out, "tidings_net_buffer_bytes", dir, outv, 1,
                           (double)__atomic_load_n(&b->out_used, __ATOMIC_RELAXED));
    td_metrics_text_family(out, "tidings_net_buffer_limit_bytes",
                           "net.buffer.memory.bytes: the budget of buffered bytes.", TD_GAUGE);
    td_metrics_text_sample(out, "tidings_net_buffer_limit_bytes", NULL, NULL, 0, (double)b->limit);
    td_metrics_text_family(out, "tidings_net_buffer_waiting_connections",
                           "Connections that stopped reading until the budget has room.", TD_GAUGE);
    td_metrics_text_sample(out, "tidings_net_buffer_waiting_connections", NULL, NULL, 0,
                           (double)__atomic_load_n(&b->nwait, __ATOMIC_RELAXED));
    td_metrics_text_family(out, "tidings_net_buffer_overcommits_total",
                           "Requests granted beyond the budget because every byte of it was "
                           "held by connections waiting for more (the deadlock rule).",
                           TD_COUNTER);
    td_metrics_text_sample(out, "tidings_net_buffer_overcommits_total", NULL, NULL, 0,
                           (double)__atomic_load_n(&b->forced, __ATOMIC_RELAXED));
    td_metrics_text_family(out, "tidings_connections_limit",
                           "max.connections: client connections the listeners accept at most.",
                           TD_GAUGE);
    td_metrics_text_sample(out, "tidings_connections_limit", NULL, NULL, 0, (double)g->max_conns);
}

int net_group_create(const net_config *cfg, net_group **out)
{
    net_group *g = calloc(1, sizeof(*g));
    if (!g)
        return -ENOMEM;
    g->cfg = *cfg;
    if (g->cfg.loops <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        g->cfg.loops = n > 0 ? (int)TD_MIN(n, 64) : 1;
    }
    if (g->cfg.shutdown_grace_ms <= 0)
        g->cfg.shutdown_grace_ms = 5000;
    if (g->cfg.buffer_memory == 0)
        g->cfg.buffer_memory = net_default_buffer_memory();
    g->cfg.buffer_memory = TD_MAX(g->cfg.buffer_memory, (size_t)NET_BUFFER_MEMORY_MIN);
    budget_init(&g->budget, g->cfg.buffer_memory);
    g->max_conns = g->cfg.max_conns;
    g->loops = calloc((size_t)g->cfg.loops, sizeof(net_loop));
    if (!g->loops) {
        budget_destroy(&g->budget);
        free(g);
        return -ENOMEM;
    }
    for (int i = 0; i < g->cfg.loops; i++) {
        net_loop *l = &g->loops[i];
        l->tag = TAG_WAKE;
        l->g = g;
        l->accept_timer = (net_timer)NET_TIMER_INIT;
        l->log_timer = (net_timer)NET_TIMER_INIT;
        pthread_mutex_init(&l->mu, NULL);
        l->ep = epoll_create1(EPOLL_CLOEXEC);
        l->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        l->scratch = malloc(IN_FLOOR);
        g->nloops++;
        if (l->ep < 0 || l->evfd < 0 || !l->scratch) {
            int rc = l->scratch ? -errno : -ENOMEM;
            net_group_destroy(g);
            return td_fail(rc, "creating an event loop: %s", strerror(-rc));
        }
        struct epoll_event e = {.events = EPOLLIN, .data.ptr = l};
        epoll_ctl(l->ep, EPOLL_CTL_ADD, l->evfd, &e);
    }
    *out = g;
    return 0;
}

int net_group_listen(net_group *g, const char *host, int port, const net_proto *proto,
                     void *proto_arg, const net_listen_opts *opts, int *bound_port)
{
    if (g->nlst == MAX_LISTENERS)
        return td_fail(TD_EINVAL, "too many listeners");
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    char ps[16];
    snprintf(ps, sizeof(ps), "%d", port);
    int gr = getaddrinfo(host, ps, &hints, &ai);
    if (gr != 0)
        return td_fail(TD_EINVAL, "%s listener: cannot resolve '%s': %s", proto->name, host,
                       gai_strerror(gr));
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        int rc = -errno;
        freeaddrinfo(ai);
        return td_fail(rc, "%s listener: socket: %s", proto->name, strerror(-rc));
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
        int rc = -errno;
        freeaddrinfo(ai);
        close(fd);
        return td_fail(rc, "%s listener: cannot listen on %s:%d: %s", proto->name, host, port,
                       strerror(-rc));
    }
    freeaddrinfo(ai);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    int p = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                     : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (bound_port)
        *bound_port = p;
    listener *ls = &g->lst[g->nlst++];
    ls->tag = TAG_LISTENER;
    ls->fd = fd;
    ls->proto = proto;
    ls->m_open = td_metric_get1(
        td_metrics_family(g->cfg.metrics, TD_GAUGE, "tidings_connections",
                          "Client connections open now, by protocol.", "protocol", NULL, 0),
        proto->name);
    ls->m_accepted = td_metric_get1(
        td_metrics_family(g->cfg.metrics, TD_COUNTER, "tidings_connections_accepted_total",
                          "Client connections accepted, by protocol.", "protocol", NULL, 0),
        proto->name);
    ls->m_refused = td_metric_get1(
        td_metrics_family(g->cfg.metrics, TD_COUNTER, "tidings_connections_refused_total",
                          "Times a listener found max.connections open: it answered a busy "
                          "reply, or left new connections in the backlog for a while.",
                          "protocol", NULL, 0),
        proto->name);
    ls->proto_arg = proto_arg;
    if (opts) {
        ls->extra_conns = TD_MAX(opts->extra_conns, 0);
        ls->busy_reply = opts->busy_reply;
        ls->idle_ms = TD_MAX(opts->idle_timeout_ms, 0);
        ls->tls = opts->tls;
        ls->auth_required = opts->auth_required;
    }
    ls->port = p;
    return 0;
}

/* Descriptors open now (those of the data directory, the loops and the listeners). */
static size_t open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return 64;
    size_t n = 0;
    for (struct dirent *de; (de = readdir(d)) != NULL;)
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

/*
 * max.connections when not set: the descriptors RLIMIT_NOFILE allows, less those open now, less
 * those reserved for partitions still to be made (cfg.reserve_fds), less a headroom for what
 * else the broker opens later (segments read, SQLite's journal, the extra connections of the
 * HTTP listener): 1/16 of the limit, at least 32.
 */
static size_t derive_max_conns(size_t reserve, size_t *nofile_out)
{
    struct rlimit rl;
    size_t nofile = 1024;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        nofile = rl.rlim_cur == RLIM_INFINITY ? (size_t)1 << 20 : (size_t)rl.rlim_cur;
    *nofile_out = nofile;
    size_t used = open_fds() + TD_MAX(nofile / 16, (size_t)32) + reserve;
    return nofile > used + 16 ? nofile - used : 16;
}

int net_group_start(net_group *g)
{
    size_t nofile = 0;
    if (g->max_conns == 0)
        g->max_conns = derive_max_conns(g->cfg.reserve_fds, &nofile);
    TD_INFO("net",
            "up to %zu connections (max.connections%s), %zu MiB for buffered requests and "
            "responses (net.buffer.memory.bytes)",
            g->max_conns, nofile ? ", from ulimit -n" : "",
            g->budget.limit >> 20);
    if (g->cfg.metrics && !g->collecting &&
        td_metrics_add_collector(g->cfg.metrics, collect, g) == 0)
        g->collecting = true;
    for (int i = 0; i < g->nloops; i++) {
        net_loop *l = &g->loops[i];
        for (int k = 0; k < g->nlst; k++) {
            struct epoll_event e = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = &g->lst[k]};
            if (epoll_ctl(l->ep, EPOLL_CTL_ADD, g->lst[k].fd, &e) != 0)
                return td_fail(-errno, "epoll_ctl: %s", strerror(errno));
        }
    }
    for (int i = 0; i < g->nloops; i++) {
        int rc = pthread_create(&g->loops[i].thr, NULL, loop_main, &g->loops[i]);
        if (rc)
            return td_fail(-rc, "starting an event loop: %s", strerror(rc));
        g->loops[i].started = true;
    }
    return 0;
}

void net_group_stop(net_group *g)
{
    for (int i = 0; i < g->nloops; i++)
        if (g->loops[i].started)
            net_loop_post(&g->loops[i], loop_stop_task, &g->loops[i]);
    for (int i = 0; i < g->nloops; i++) {
        if (g->loops[i].started)
            pthread_join(g->loops[i].thr, NULL);
        g->loops[i].started = false;
    }
    for (int i = 0; i < g->nlst; i++) {
        close(g->lst[i].fd);
        g->lst[i].fd = -1;
    }
    g->nlst = 0;
}

void net_group_destroy(net_group *g)
{
    if (!g)
        return;
    net_group_stop(g);
    for (int i = 0; i < g->nloops; i++) {
        net_loop *l = &g->loops[i];
        /* Tasks posted after the loop ended (completions of work that was in flight) run
         * here: they find their connections closed and only drop references. */
        run_tasks(l);
        while (l->conns)
            conn_close_now(l->conns);
        run_tasks(l);
        if (l->ep >= 0)
            close(l->ep);
        if (l->evfd >= 0)
            close(l->evfd);
        free(l->heap);
        free(l->scratch);
        pthread_mutex_destroy(&l->mu);
    }
    if (g->collecting)
        td_metrics_remove_collector(g->cfg.metrics, collect, g);
    budget_destroy(&g->budget);
    free(g->loops);
    free(g);
}

size_t net_group_max_conns(const net_group *g)
{
    return g->max_conns;
}

/* The memory the process may use: physical memory, or a cgroup's limit when lower. */
static size_t memory_total(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    size_t total = pages > 0 && size > 0 ? (size_t)pages * (size_t)size : (size_t)1 << 30;
    const char *files[] = {"/sys/fs/cgroup/memory.max",
                           "/sys/fs/cgroup/memory/memory.limit_in_bytes"};
    for (size_t i = 0; i < TD_ARRAY_LEN(files); i++) {
        FILE *f = fopen(files[i], "re");
        unsigned long long v;
        if (f && fscanf(f, "%llu", &v) == 1 && v > 0 && v < total)
            total = (size_t)v;
        if (f)
            fclose(f);
    }
    return total;
}

/* 1/8 of the memory there is (physical, or the cgroup's limit), between 64 MiB and 4 GiB. */
static size_t net_default_buffer_memory(void)
{
    size_t m = memory_total() / 8;
    return TD_MIN(TD_MAX(m, (size_t)NET_BUFFER_MEMORY_DEFAULT_MIN),
                  (size_t)NET_BUFFER_MEMORY_DEFAULT_MAX);
}

int net_group_size(const net_group *g)
{
    return g->nloops;
}

net_loop *net_group_loop(net_group *g, int i)
{
    return &g->loops[i];
}
