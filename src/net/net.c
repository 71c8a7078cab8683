/*
 * net.c: epoll event loops, listeners, connections with bounded buffers and output chains that
 * mix memory and file ranges (see net.h for the model).
 *
 * Epoll is level-triggered. A connection's interest set is recomputed after every change
 * (update_interest): EPOLLIN while it may read (not paused, output under its limit, input
 * buffer not full, not closing), EPOLLOUT while output is queued and the socket refused some.
 * Cost per event: one read(2) of up to the free input space, then as many on_data calls as
 * there are whole frames; output goes out at the end of the callback that queued it.
 */
#include "net/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"

enum { TAG_LISTENER = 1, TAG_WAKE, TAG_CONN };

#define MAX_LISTENERS 8
#define OUT_CHUNK 16384
#define IOV_MAX_BATCH 64
#define READ_MIN 16384

typedef struct listener {
    int tag;
    int fd;
    const net_proto *proto;
    void *proto_arg;
    td_metric *m_open, *m_accepted; /* connections open now, and accepted in all */
} listener;

typedef struct out_item {
    struct out_item *next;
    bool is_file;
    /* memory */
    uint8_t *p;
    size_t n, off, cap; /* cap > 0: a copy buffer that net_conn_write may append to */
    void (*free_fn)(void *);
    /* file */
    int fd;
    int64_t pos, len;
    void (*release)(void *);
    void *rarg;
} out_item;

struct net_conn {
    int tag;
    net_loop *loop;
    int fd;
    const net_proto *proto;
    void *proto_arg;
    td_metric *m_open; /* the listener's gauge of open connections */
    void *data;
    int refs; /* atomic */
    bool closed;      /* atomic read from other threads */
    bool close_after; /* close once output drains */
    bool paused;
    bool in_data;     /* inside process_input */
    uint32_t interest;
    uint8_t *in;
    size_t in_start, in_len, in_cap;
    out_item *out_head, *out_tail;
    size_t out_bytes;
    char peer[64];
    net_conn *prev, *next;
};

typedef struct task {
    struct task *next;
    net_task_fn fn;
    void *arg;
} task;

struct net_loop {
    int tag; /* TAG_WAKE: the eventfd's epoll tag */
    net_group *g;
    int ep, evfd;
    pthread_t thr;
    bool started;
    pthread_mutex_t mu;
    task *tasks, *tasks_tail;
    bool wake_pending; /* under mu: the eventfd has been written and not yet read */
    net_timer **heap;
    size_t nheap, heap_cap;
    int64_t now;
    net_conn *conns;
    size_t nconns;
    bool stopping; /* atomic */
    int64_t stop_deadline;
};

struct net_group {
    net_config cfg;
    int nloops;
    net_loop *loops;
    listener lst[MAX_LISTENERS];
    int nlst;
};

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
    if (l->nheap == l->heap_cap) {
        size_t cap = l->heap_cap ? l->heap_cap * 2 : 64;
        net_timer **h = realloc(l->heap, cap * sizeof(*h));
        if (!h) {
            /* Out of memory: run it now rather than never. */
            t->heap_index = (size_t)-1;
            fn(arg);
            return;
        }
        l->heap = h;
        l->heap_cap = cap;
    }
    t->due_ms = mono_ms() + (delay_ms < 0 ? 0 : delay_ms);
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
 * Connections
 */
void net_conn_set_data(net_conn *c, void *data)
{
    c->data = data;
}

void *net_conn_data(net_conn *c)
{
    return c->data;
}

void *net_conn_proto_arg(net_conn *c)
{
    return c->proto_arg;
}

net_loop *net_conn_loop(net_conn *c)
{
    return c->loop;
}

const char *net_conn_peer(net_conn *c)
{
    return c->peer;
}

bool net_conn_closed(net_conn *c)
{
    return __atomic_load_n(&c->closed, __ATOMIC_ACQUIRE);
}

size_t net_conn_out_bytes(net_conn *c)
{
    return c->out_bytes;
}

void net_conn_ref(net_conn *c)
{
    __atomic_add_fetch(&c->refs, 1, __ATOMIC_ACQ_REL);
}

static void item_free(out_item *it)
{
    if (it->is_file) {
        if (it->release)
            it->release(it->rarg);
    } else if (it->free_fn) {
        it->free_fn(it->p);
    }
    free(it);
}

void net_conn_unref(net_conn *c)
{
    if (__atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    while (c->out_head) {
        out_item *it = c->out_head;
        c->out_head = it->next;
        item_free(it);
    }
    free(c->in);
    free(c);
}

static void update_interest(net_conn *c)
{
    if (c->closed)
        return;
    uint32_t ev = 0;
    bool full = c->in_len >= c->in_cap && c->in_cap >= c->proto->max_input + READ_MIN;
    if (!c->paused && !c->close_after && c->out_bytes < c->proto->out_limit && !full)
        ev |= EPOLLIN;
    if (c->out_head)
        ev |= EPOLLOUT;
    if (ev == c->interest)
        return;
    struct epoll_event e = {.events = ev, .data.ptr = c};
    if (epoll_ctl(c->loop->ep, EPOLL_CTL_MOD, c->fd, &e) == 0)
        c->interest = ev;
}

static void conn_close_now(net_conn *c)
{
    if (c->closed)
        return;
    net_loop *l = c->loop;
    epoll_ctl(l->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    __atomic_store_n(&c->closed, true, __ATOMIC_RELEASE);
    while (c->out_head) {
        out_item *it = c->out_head;
        c->out_head = it->next;
        item_free(it);
    }
    c->out_tail = NULL;
    c->out_bytes = 0;
    td_gauge_add(c->m_open, -1);
    if (c->proto->on_close)
        c->proto->on_close(c);
    if (c->prev)
        c->prev->next = c->next;
    else
        l->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    l->nconns--;
    net_conn_unref(c); /* the loop's reference */
}

/* Sends queued output until the socket refuses more. Returns false if the connection closed. */
static bool flush_out(net_conn *c)
{
    while (c->out_head && !c->closed) {
        out_item *it = c->out_head;
        if (it->is_file) {
            off_t pos = (off_t)it->pos;
            size_t want = (size_t)TD_MIN(it->len, (int64_t)1 << 30);
            ssize_t w = sendfile(c->fd, it->fd, &pos, want);
            if (w < 0) {
                if (errno == EAGAIN || errno == EINTR)
                    break;
                conn_close_now(c);
                return false;
            }
            if (w == 0) { /* the file is shorter than the range: cannot happen for sealed data */
                td_log(TD_LOG_ERROR, "net", "sendfile sent nothing to %s; closing", c->peer);
                conn_close_now(c);
                return false;
            }
            it->pos += w;
            it->len -= w;
            c->out_bytes -= (size_t)w;
            if (it->len > 0)
                continue;
        } else {
            struct iovec iov[IOV_MAX_BATCH];
            int niov = 0;
            for (out_item *m = it; m && !m->is_file && niov < IOV_MAX_BATCH; m = m->next) {
                iov[niov].iov_base = m->p + m->off;
                iov[niov].iov_len = m->n - m->off;
                niov++;
            }
            ssize_t w = writev(c->fd, iov, niov);
            if (w < 0) {
                if (errno == EAGAIN || errno == EINTR)
                    break;
                conn_close_now(c);
                return false;
            }
            c->out_bytes -= (size_t)w;
            size_t left = (size_t)w;
            while (left > 0) {
                out_item *m = c->out_head;
                size_t avail = m->n - m->off;
                if (left < avail) {
                    m->off += left;
                    left = 0;
                    break;
                }
                left -= avail;
                m->off = m->n;
                c->out_head = m->next;
                if (!c->out_head)
                    c->out_tail = NULL;
                item_free(m);
            }
            if (c->out_head && !c->out_head->is_file && c->out_head->off < c->out_head->n)
                break; /* short write: the socket is full */
            continue;
        }
        c->out_head = it->next;
        if (!c->out_head)
            c->out_tail = NULL;
        item_free(it);
    }
    if (c->closed)
        return false;
    if (!c->out_head && c->close_after) {
        conn_close_now(c);
        return false;
    }
    return true;
}

static void process_input(net_conn *c);

void net_conn_flush(net_conn *c)
{
    if (c->closed)
        return;
    size_t before = c->out_bytes;
    if (!flush_out(c))
        return;
    if (before >= c->proto->out_limit && c->out_bytes < c->proto->out_limit) {
        if (c->proto->on_drain)
            c->proto->on_drain(c);
        if (c->closed)
            return;
        process_input(c); /* input held back by the limit */
        if (c->closed)
            return;
    }
    update_interest(c);
}

static void append_item(net_conn *c, out_item *it)
{
    it->next = NULL;
    if (c->out_tail)
        c->out_tail->next = it;
    else
        c->out_head = it;
    c->out_tail = it;
}

int net_conn_write(net_conn *c, const void *p, size_t n)
{
    if (c->closed)
        return -EPIPE;
    if (n == 0)
        return 0;
    out_item *t = c->out_tail;
    if (t && !t->is_file && t->cap > 0 && t->cap - t->n >= n) {
        memcpy(t->p + t->n, p, n);
        t->n += n;
        c->out_bytes += n;
        return 0;
    }
    size_t cap = TD_MAX(n, (size_t)OUT_CHUNK);
    out_item *it = calloc(1, sizeof(*it));
    uint8_t *buf = malloc(cap);
    if (!it || !buf) {
        free(it);
        free(buf);
        return -ENOMEM;
    }
    memcpy(buf, p, n);
    it->p = buf;
    it->n = n;
    it->cap = cap;
    it->free_fn = free;
    append_item(c, it);
    c->out_bytes += n;
    return 0;
}

int net_conn_write_owned(net_conn *c, void *p, size_t n, void (*free_fn)(void *))
{
    if (c->closed) {
        if (free_fn)
            free_fn(p);
        return -EPIPE;
    }
    out_item *it = calloc(1, sizeof(*it));
    if (!it) {
        if (free_fn)
            free_fn(p);
        return -ENOMEM;
    }
    it->p = p;
    it->n = n;
    it->free_fn = free_fn;
    append_item(c, it);
    c->out_bytes += n;
    return 0;
}

int net_conn_write_file(net_conn *c, int fd, int64_t pos, int64_t len, void (*release)(void *),
                        void *arg)
{
    out_item *it = c->closed ? NULL : calloc(1, sizeof(*it));
    if (!it) {
        if (release)
            release(arg);
        return c->closed ? -EPIPE : -ENOMEM;
    }
    it->is_file = true;
    it->fd = fd;
    it->pos = pos;
    it->len = len;
    it->release = release;
    it->rarg = arg;
    append_item(c, it);
    c->out_bytes += (size_t)len;
    return 0;
}

void net_conn_pause(net_conn *c)
{
    c->paused = true;
    update_interest(c);
}

void net_conn_resume(net_conn *c)
{
    if (c->closed || !c->paused)
        return;
    c->paused = false;
    /* Either step may close c, which frees it once the loop's reference goes: ours keeps it
     * readable until both are done. net_conn_flush updates the epoll interest of an open c. */
    net_conn_ref(c);
    process_input(c);
    net_conn_flush(c);
    net_conn_unref(c);
}

void net_conn_close(net_conn *c, bool now)
{
    if (c->closed)
        return;
    if (now || !c->out_head) {
        conn_close_now(c);
        return;
    }
    c->close_after = true;
    update_interest(c);
}

/* Offers buffered input to the protocol, frame by frame. Re-entry (a resume from inside
 * on_data) is folded into the running loop. */
static void process_input(net_conn *c)
{
    if (c->in_data)
        return;
    c->in_data = true;
    net_conn_ref(c);
    while (!c->closed && !c->paused && !c->close_after && c->in_len > 0 &&
           c->out_bytes < c->proto->out_limit) {
        ssize_t used = c->proto->on_data(c, c->in + c->in_start, c->in_len);
        if (c->closed)
            break;
        if (used < 0) {
            conn_close_now(c);
            break;
        }
        if (used == 0)
            break;
        c->in_start += (size_t)used;
        c->in_len -= (size_t)used;
    }
    if (!c->closed && c->in_len == 0)
        c->in_start = 0;
    c->in_data = false;
    net_conn_unref(c);
}

static void conn_readable(net_conn *c)
{
    size_t limit = c->proto->max_input + READ_MIN;
    if (c->in_start > 0 && c->in_start + c->in_len + READ_MIN > c->in_cap) {
        memmove(c->in, c->in + c->in_start, c->in_len);
        c->in_start = 0;
    }
    if (c->in_cap - c->in_start - c->in_len < READ_MIN && c->in_cap < limit) {
        size_t cap = c->in_cap ? c->in_cap * 2 : 2 * READ_MIN;
        cap = TD_MIN(TD_MAX(cap, c->in_len + READ_MIN), limit);
        uint8_t *n = realloc(c->in, cap);
        if (!n) {
            conn_close_now(c);
            return;
        }
        c->in = n;
        c->in_cap = cap;
    }
    size_t space = c->in_cap - c->in_start - c->in_len;
    if (space == 0) {
        /* The protocol let a frame grow past its own limit: it should have refused it. */
        td_log(TD_LOG_WARN, "net", "%s: input buffer full (%zu bytes); closing %s", c->proto->name,
               c->in_cap, c->peer);
        conn_close_now(c);
        return;
    }
    ssize_t r = read(c->fd, c->in + c->in_start + c->in_len, space);
    if (r == 0) {
        conn_close_now(c);
        return;
    }
    if (r < 0) {
        if (errno != EAGAIN && errno != EINTR)
            conn_close_now(c);
        return;
    }
    c->in_len += (size_t)r;
    process_input(c);
    if (!c->closed)
        net_conn_flush(c);
}

static void conn_event(net_conn *c, uint32_t ev)
{
    net_conn_ref(c);
    if (ev & (EPOLLERR | EPOLLHUP) && !(ev & EPOLLIN)) {
        conn_close_now(c);
    } else {
        if ((ev & EPOLLOUT) && !c->closed)
            net_conn_flush(c);
        if ((ev & EPOLLIN) && !c->closed)
            conn_readable(c);
        if (!c->closed)
            update_interest(c);
    }
    net_conn_unref(c);
}

static void accept_ready(net_loop *l, listener *ls)
{
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(ls->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                td_log(TD_LOG_WARN, "net", "accept: %s", strerror(errno));
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        net_conn *c = calloc(1, sizeof(*c));
        if (!c) {
            close(fd);
            continue;
        }
        c->tag = TAG_CONN;
        c->loop = l;
        c->fd = fd;
        c->proto = ls->proto;
        c->proto_arg = ls->proto_arg;
        c->refs = 1;
        char host[INET6_ADDRSTRLEN] = "?";
        int port = 0;
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
            port = ntohs(a->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
            port = ntohs(a->sin6_port);
        }
        snprintf(c->peer, sizeof(c->peer), "%s:%d", host, port);
        struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &e) != 0) {
            close(fd);
            free(c);
            continue;
        }
        c->interest = EPOLLIN;
        c->next = l->conns;
        if (l->conns)
            l->conns->prev = c;
        l->conns = c;
        l->nconns++;
        c->m_open = ls->m_open;
        td_gauge_add(c->m_open, 1);
        td_counter_add(ls->m_accepted, 1);
        if (c->proto->on_open && c->proto->on_open(c) != 0)
            conn_close_now(c);
    }
}

/* ---------------------------------------------------------------------------------------------
 * Loops
 */
static bool idle_conn(net_conn *c)
{
    return __atomic_load_n(&c->refs, __ATOMIC_ACQUIRE) == 1 && !c->out_head;
}

static void *loop_main(void *arg)
{
    net_loop *l = arg;
    struct epoll_event evs[128];
    l->now = mono_ms();
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
        epoll_ctl(l->ep, EPOLL_CTL_DEL, l->g->lst[i].fd, NULL);
    l->stop_deadline = mono_ms() + l->g->cfg.shutdown_grace_ms;
    __atomic_store_n(&l->stopping, true, __ATOMIC_RELEASE);
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
    g->loops = calloc((size_t)g->cfg.loops, sizeof(net_loop));
    if (!g->loops) {
        free(g);
        return -ENOMEM;
    }
    for (int i = 0; i < g->cfg.loops; i++) {
        net_loop *l = &g->loops[i];
        l->tag = TAG_WAKE;
        l->g = g;
        pthread_mutex_init(&l->mu, NULL);
        l->ep = epoll_create1(EPOLL_CLOEXEC);
        l->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        g->nloops++;
        if (l->ep < 0 || l->evfd < 0) {
            int rc = -errno;
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
                     void *proto_arg, int *bound_port)
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
    ls->proto_arg = proto_arg;
    return 0;
}

int net_group_start(net_group *g)
{
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
        pthread_mutex_destroy(&l->mu);
    }
    free(g->loops);
    free(g);
}

int net_group_size(const net_group *g)
{
    return g->nloops;
}

net_loop *net_group_loop(net_group *g, int i)
{
    return &g->loops[i];
}

/* ---------------------------------------------------------------------------------------------
 * Waiters
 */
void net_waiters_count(net_waiters *w, size_t *total, int delta)
{
    __atomic_add_fetch(&w->n, (size_t)delta, __ATOMIC_ACQ_REL);
    if (total)
        __atomic_add_fetch(total, (size_t)delta, __ATOMIC_ACQ_REL);
}

void net_waiters_kick(net_waiters *w, net_task_fn fn, void *arg)
{
    if (__atomic_load_n(&w->n, __ATOMIC_ACQUIRE) == 0)
        return;
    if (!__atomic_exchange_n(&w->posted, true, __ATOMIC_ACQ_REL))
        net_loop_post(w->loop, fn, arg);
}

void net_waiters_woken(net_waiters *w)
{
    __atomic_store_n(&w->posted, false, __ATOMIC_RELEASE);
}
