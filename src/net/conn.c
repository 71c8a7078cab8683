/*
 * conn.c: connections: their input (read through the loop's scratch buffer, a buffer of their
 * own only while they hold part of a frame, grown within the budget), their output chains of
 * memory and file ranges, back pressure, and closing. See net.h for the model and net_int.h for
 * the budget.
 *
 * Input buffers exist only while a connection holds unconsumed bytes. A connection with none
 * reads into its loop's scratch buffer, the protocol consumes the whole frames from there, and
 * only a partial frame left over is copied into a buffer of the connection's own; a buffer that
 * empties is freed. An idle connection therefore holds no input buffer at all, and thousands of
 * them cost their structs and the kernel's socket buffers. Input beyond IN_FLOOR bytes, and all
 * memory output, is counted in the group's budget.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "base/base.h"
#include "net/net_int.h"

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

int net_conn_fd(net_conn *c)
{
    return c->fd;
}

int net_conn_listen_port(net_conn *c)
{
    return c->listen_port;
}

const char *net_conn_cert_principal(net_conn *c)
{
    return c->tls ? c->tls->principal : NULL;
}

const char *net_conn_principal(net_conn *c)
{
    return c->user ? c->user : net_conn_cert_principal(c);
}

bool net_conn_auth_required(net_conn *c)
{
    return c->auth_required;
}

int net_conn_set_user(net_conn *c, const char *user)
{
    char *u = NULL;
    if (user && !(u = strdup(user)))
        return -ENOMEM;
    free(c->user);
    c->user = u;
    return 0;
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
    tls_conn_free(c->tls);
    free(c->user);
    free(c->in);
    free(c);
}

static net_budget *budget_of(net_conn *c)
{
    return &c->loop->g->budget;
}

/* The bytes counted for an input buffer of `cap` bytes. */
static size_t charge_of(size_t cap)
{
    return cap > IN_FLOOR ? cap - IN_FLOOR : 0;
}

size_t net_conn_max_input(net_conn *c)
{
    return TD_MIN(c->proto->max_input, budget_of(c)->limit);
}

/* The most input a connection may buffer: its largest frame and a read's worth after it. */
static size_t in_max_cap(net_conn *c)
{
    return net_conn_max_input(c) + READ_MIN;
}

void net_conn_expect(net_conn *c, size_t bytes)
{
    c->expect = bytes;
}

/* Whether the connection holds more unsent output than it may while the budget is exhausted. */
static bool out_pressed(net_conn *c)
{
    return c->out_mem > OUT_FLOOR && budget_over(budget_of(c));
}

bool net_conn_output_full(net_conn *c)
{
    return c->out_bytes >= c->proto->out_limit || out_pressed(c);
}

static void out_count(net_conn *c, int64_t delta)
{
    c->out_mem += (size_t)delta;
    budget_out(budget_of(c), delta);
}

static void wait_cancel(net_conn *c)
{
    if (!c->waiting)
        return;
    budget_cancel(budget_of(c), &c->bw);
    c->waiting = false;
    c->wait_hold = false;
}

/* Frees the input buffer and gives its bytes back (no input buffered, or closing). */
static void input_free(net_conn *c)
{
    if (c->waiting && !c->wait_out && !c->wait_hold)
        wait_cancel(c);
    free(c->in);
    c->in = NULL;
    c->in_start = c->in_len = c->in_cap = 0;
    budget_release(budget_of(c), c->in_charge);
    c->in_charge = 0;
}

static uint32_t tls_interest(net_conn *c, uint32_t ev);

static void update_interest(net_conn *c)
{
    if (c->closed)
        return;
    uint32_t ev = 0;
    bool full = c->in_len >= c->in_cap && c->in_cap >= in_max_cap(c);
    bool pressed = out_pressed(c);
    if (c->waiting && c->wait_out && !pressed)
        wait_cancel(c); /* its own output drained, or the budget has room again */
    if (pressed && !c->waiting && !c->paused && !c->close_after) {
        c->waiting = c->wait_out = true;
        budget_wait(budget_of(c), &c->bw, 0, c->in_charge);
    }
    if (!c->paused && !c->close_after && c->out_bytes < c->proto->out_limit && !full && !c->waiting)
        ev |= EPOLLIN;
    if (c->out_head)
        ev |= EPOLLOUT;
    if (c->tls)
        ev = tls_interest(c, ev);
    if (ev == c->interest)
        return;
    struct epoll_event e = {.events = ev, .data.ptr = c};
    if (epoll_ctl(c->loop->ep, EPOLL_CTL_MOD, c->fd, &e) == 0)
        c->interest = ev;
}

static void tls_close(net_conn *c);

void conn_close_now(net_conn *c)
{
    if (c->closed)
        return;
    net_loop *l = c->loop;
    epoll_ctl(l->ep, EPOLL_CTL_DEL, c->fd, NULL);
    if (c->tls)
        tls_close(c);
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
    out_count(c, -(int64_t)c->out_mem);
    wait_cancel(c);
    budget_release(budget_of(c), c->held);
    c->held = 0;
    /* Inside on_data the protocol may still be reading the input: process_input frees it. */
    if (!c->in_data)
        input_free(c);
    td_gauge_add(c->m_open, -1);
    wait_conn_closed(c); /* before on_close, which may free the waiters */
    if (c->proto->on_close && c->opened)
        c->proto->on_close(c);
    if (c->prev)
        c->prev->next = c->next;
    else
        l->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    l->nconns--;
    __atomic_sub_fetch(&l->g->nconns, 1, __ATOMIC_ACQ_REL);
    accept_resume(l);  /* a descriptor and a connection slot are free again */
    net_conn_unref(c); /* the loop's reference */
}

static bool flush_tls(net_conn *c);

/* Sends queued output until the socket refuses more. Returns false if the connection closed. */
static bool flush_out(net_conn *c)
{
    if (c->tls)
        return flush_tls(c);
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
            out_count(c, -(int64_t)w);
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
    bool held = c->waiting && c->wait_out;
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
    } else if (held && !out_pressed(c)) {
        wait_cancel(c);
        process_input(c); /* input held back by the budget */
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
        out_count(c, (int64_t)n);
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
    out_count(c, (int64_t)n);
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
    out_count(c, (int64_t)n);
    return 0;
}

size_t net_conn_drop_unsent(net_conn *c)
{
    /* Only the head can have been partly sent (sent items leave the queue). A file range at the
     * head keeps no record of where it began, so it counts as begun. */
    out_item *keep =
        c->out_head && (c->out_head->is_file || c->out_head->off > 0) ? c->out_head : NULL;
    out_item *it = keep ? keep->next : c->out_head;
    if (keep)
        keep->next = NULL;
    else
        c->out_head = NULL;
    c->out_tail = keep;
    size_t dropped = 0, mem = 0;
    while (it) {
        out_item *next = it->next;
        size_t n = it->is_file ? (size_t)it->len : it->n - it->off;
        dropped += n;
        if (!it->is_file)
            mem += n;
        item_free(it);
        it = next;
    }
    c->out_bytes -= dropped;
    out_count(c, -(int64_t)mem);
    update_interest(c);
    return dropped;
}

int net_conn_reserve_send(net_conn *c, size_t bytes)
{
    if (c->closed)
        return -EPIPE;
    /* SO_SNDBUF reads back doubled (the kernel's bookkeeping share) and takes half the size it
     * will have; the kernel caps what it takes at net.core.wmem_max, so this is best effort. */
    int cur = 0;
    socklen_t len = sizeof(cur);
    if (getsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &cur, &len) != 0)
        return -errno;
    size_t want = ((size_t)cur + bytes) / 2 + 1;
    int v = want > INT32_MAX ? INT32_MAX : (int)want;
    if (setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v)) != 0)
        return -errno;
    int now = 0;
    len = sizeof(now);
    if (getsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &now, &len) != 0)
        return -errno;
    return (size_t)now >= (size_t)cur + bytes ? 0 : -ENOBUFS;
}

bool net_conn_hold(net_conn *c, size_t total)
{
    net_budget *b = budget_of(c);
    if (total <= c->held) {
        budget_release(b, c->held - total);
        c->held = total;
        return true;
    }
    if (c->closed || c->waiting)
        return false;
    size_t need = total - c->held;
    if (budget_try(b, need)) {
        c->held = total;
        return true;
    }
    /* Like input that must grow: the connection waits in the budget's queue for all it asks,
     * holding nothing more meanwhile, and its input is offered again once granted. */
    c->waiting = true;
    c->wait_out = false;
    c->wait_hold = true;
    budget_wait(b, &c->bw, need, c->in_charge + c->held);
    update_interest(c);
    return false;
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

/* Offers bytes to the protocol frame by frame; returns how many it used. */
static size_t offer(net_conn *c, uint8_t *p, size_t n)
{
    size_t off = 0;
    while (!c->closed && !c->paused && !c->close_after && !c->wait_hold && off < n &&
           c->out_bytes < c->proto->out_limit && !out_pressed(c)) {
        c->expect = 0;
        ssize_t used = c->proto->on_data(c, p + off, n - off);
        if (c->closed)
            break;
        if (used < 0) {
            conn_close_now(c);
            break;
        }
        if (used == 0)
            break;
        off += (size_t)used;
    }
    return off;
}

/*
 * After input was consumed: an empty buffer is freed; a buffer much larger than what it still
 * holds (a big request was consumed, a small part of the next one follows) shrinks, so that
 * a connection waiting for the budget holds nothing beyond its floor; and a connection that
 * waited for room to grow no longer waits once it has room.
 */
static void input_settle(net_conn *c)
{
    if (c->closed || c->in_len == 0) {
        input_free(c);
        return;
    }
    if (c->waiting && !c->wait_out && !c->wait_hold && c->in_start + c->in_len < c->in_cap)
        wait_cancel(c);
    if (c->in_charge == 0 || c->waiting)
        return;
    size_t keep = TD_MAX(c->in_len, c->expect) + READ_MIN;
    keep = TD_MAX(keep, (size_t)2 * READ_MIN);
    if (keep > c->in_cap / 2)
        return;
    memmove(c->in, c->in + c->in_start, c->in_len);
    c->in_start = 0;
    uint8_t *n = realloc(c->in, keep);
    if (n) {
        c->in = n;
        c->in_cap = keep;
    }
    size_t charge = charge_of(c->in_cap);
    if (c->in_charge > charge) {
        budget_release(budget_of(c), c->in_charge - charge);
        c->in_charge = charge;
    }
}

/* Offers buffered input to the protocol, frame by frame. Re-entry (a resume from inside
 * on_data) is folded into the running loop. */
static void process_input(net_conn *c)
{
    if (c->in_data)
        return;
    c->in_data = true;
    net_conn_ref(c);
    if (c->in_len > 0) {
        size_t used = offer(c, c->in + c->in_start, c->in_len);
        c->in_start += used;
        c->in_len -= used;
    }
    c->in_data = false;
    input_settle(c);
    net_conn_unref(c);
}

/*
 * Makes room to read into the connection's buffer: compacts, or grows it, the budget allowing.
 * Returns 0 (room), 1 (waiting for the budget) or -1 (close: the peer sent a frame larger than
 * any the connection may buffer, which the protocol should have refused).
 */
static int input_room(net_conn *c)
{
    size_t max = in_max_cap(c);
    if (c->in_start > 0 && c->in_start + c->in_len + READ_MIN > c->in_cap) {
        memmove(c->in, c->in + c->in_start, c->in_len);
        c->in_start = 0;
    }
    size_t room = c->in_cap - c->in_start - c->in_len;
    if (room >= READ_MIN || c->in_cap >= max) {
        if (room > 0)
            return 0;
        td_log(TD_LOG_WARN, "net",
               "%s: %s sent a request larger than the %zu bytes a connection may buffer (the "
               "protocol's limit, or net.buffer.memory.bytes); closing",
               c->proto->name, c->peer, net_conn_max_input(c));
        return -1;
    }
    size_t cap = c->expect > c->in_len ? c->expect + READ_MIN : c->in_cap * 2;
    cap = TD_MIN(TD_MAX(cap, TD_MAX(c->in_len + READ_MIN, (size_t)2 * READ_MIN)), max);
    size_t charge = charge_of(cap);
    if (charge > c->in_charge) {
        size_t need = charge - c->in_charge;
        if (!budget_try(budget_of(c), need)) {
            if (room > 0)
                return 0; /* read what fits; ask when it is full */
            c->waiting = true;
            c->wait_out = false;
            budget_wait(budget_of(c), &c->bw, need, c->in_charge);
            return 1;
        }
        c->in_charge += need;
    }
    uint8_t *n = realloc(c->in, cap);
    if (!n)
        return -1;
    c->in = n;
    c->in_cap = cap;
    return 0;
}

/* Reads into the loop's scratch buffer and offers it; keeps what the protocol left. */
static void read_scratch(net_conn *c)
{
    uint8_t *p = c->loop->scratch;
    ssize_t r = c->tls ? tls_read(c->tls, p, IN_FLOOR) : read(c->fd, p, IN_FLOOR);
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
        conn_close_now(c);
        return;
    }
    if (r < 0)
        return;
    c->in_data = true;
    net_conn_ref(c);
    size_t used = offer(c, p, (size_t)r);
    c->in_data = false;
    size_t left = (size_t)r - used;
    if (!c->closed && left > 0) {
        size_t cap = TD_MIN((size_t)IN_FLOOR, TD_MAX(left + READ_MIN, (size_t)2 * READ_MIN));
        c->in = malloc(cap);
        if (!c->in) {
            conn_close_now(c);
        } else {
            memcpy(c->in, p + used, left);
            c->in_cap = cap;
            c->in_start = 0;
            c->in_len = left;
        }
    }
    input_settle(c);
    net_conn_unref(c);
}

static void conn_readable(net_conn *c)
{
    if (c->waiting)
        return; /* an event from before it began to wait */
    if (c->in_len == 0) {
        if (c->in)
            input_free(c);
        read_scratch(c);
    } else {
        int rc = input_room(c);
        if (rc != 0) {
            if (rc < 0)
                conn_close_now(c);
            return;
        }
        size_t space = c->in_cap - c->in_start - c->in_len;
        uint8_t *to = c->in + c->in_start + c->in_len;
        ssize_t r = c->tls ? tls_read(c->tls, to, space) : read(c->fd, to, space);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
            conn_close_now(c);
            return;
        }
        if (r < 0)
            return;
        c->in_len += (size_t)r;
        process_input(c);
    }
    if (!c->closed)
        net_conn_flush(c);
}

/* The budget granted what the connection waited for (its loop, posted by bw_wake). */
static void budget_task(void *arg)
{
    net_conn *c = arg;
    if (!c->closed && c->waiting) {
        bool queued;
        size_t got = budget_take(budget_of(c), &c->bw, &queued);
        if (c->wait_hold)
            c->held += got;
        else
            c->in_charge += got;
        if (queued) { /* a wake-up for an earlier wait */
            net_conn_unref(c);
            return;
        }
        c->waiting = false;
        c->wait_hold = false;
    }
    /* Also when the wait already ended another way (update_interest saw the budget had room):
     * input held back meanwhile is offered here, since no read may come to offer it. */
    if (!c->closed) {
        process_input(c);
        if (!c->closed)
            net_conn_flush(c);
        if (!c->closed)
            update_interest(c);
    }
    net_conn_unref(c);
}

static void bw_wake(net_bwait *w)
{
    net_conn *c = (net_conn *)((char *)w - offsetof(net_conn, bw));
    net_conn_ref(c);
    if (net_loop_post(c->loop, budget_task, c) != 0)
        net_conn_unref(c); /* without memory for a task it waits for the next grant */
}

static uint32_t tls_event(net_conn *c, uint32_t ev);

void conn_event(net_conn *c, uint32_t ev)
{
    c->active_ms = c->loop->now;
    net_conn_ref(c);
    if (c->tls && !(ev & (EPOLLERR | EPOLLHUP) && !(ev & EPOLLIN)))
        ev = tls_event(c, ev);
    if (ev == 0) {
        /* the handshake took the event */
    } else if (ev & (EPOLLERR | EPOLLHUP) && !(ev & EPOLLIN)) {
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

/* Accepts one connection on fd; false if it was refused for lack of memory. */
bool conn_open(net_loop *l, listener *ls, int fd, const struct sockaddr_storage *ss)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    net_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return false;
    c->tag = TAG_CONN;
    c->loop = l;
    c->fd = fd;
    c->proto = ls->proto;
    c->proto_arg = ls->proto_arg;
    c->refs = 1;
    c->bw.wake = bw_wake;
    c->idle_ms = ls->idle_ms;
    c->active_ms = l->now;
    c->open_ms = l->now;
    c->listen_port = ls->port;
    c->auth_required = ls->auth_required;
    if (ls->tls && !(c->tls = tls_conn_new(ls->tls, fd))) {
        free(c);
        return false;
    }
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        port = ntohs(a->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        port = ntohs(a->sin6_port);
    }
    snprintf(c->peer, sizeof(c->peer), "%s:%d", host, port);
    struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &e) != 0) {
        tls_conn_free(c->tls);
        free(c);
        return false;
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
    if (c->tls)
        return true; /* on_open runs once the handshake is done */
    c->opened = true;
    if (c->proto->on_open && c->proto->on_open(c) != 0)
        conn_close_now(c);
    return true;
}

/* ---------------------------------------------------------------------------------------------
 * TLS connections (tls.c has the OpenSSL calls). Plaintext connections never come here: their
 * cost is the test of c->tls at each read, flush and interest update.
 */

/* Copies queued output into the staging buffer, memory items as they are and file ranges with
 * pread, in chain order. Staged bytes leave the chain and count as memory output. Returns false
 * (and closes) when a file cannot be read. */
static bool tls_stage(net_conn *c)
{
    tls_conn *t = c->tls;
    while (c->out_head && t->wlen < TLS_WBUF) {
        out_item *it = c->out_head;
        size_t room = TLS_WBUF - t->wlen;
        if (it->is_file) {
            size_t want = (size_t)TD_MIN((int64_t)room, it->len);
            ssize_t r = pread(it->fd, t->wbuf + t->wlen, want, (off_t)it->pos);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) { /* the file is shorter than the range: cannot happen for sealed data */
                td_log(TD_LOG_ERROR, "net", "reading a file range for %s failed (%s); closing",
                       c->peer, r < 0 ? strerror(errno) : "end of file");
                conn_close_now(c);
                return false;
            }
            it->pos += r;
            it->len -= r;
            t->wlen += (size_t)r;
            out_count(c, r); /* now in memory */
            if (it->len > 0)
                continue;
        } else {
            size_t k = TD_MIN(room, it->n - it->off);
            memcpy(t->wbuf + t->wlen, it->p + it->off, k);
            it->off += k;
            t->wlen += k;
            if (it->off < it->n)
                continue;
        }
        c->out_head = it->next;
        if (!c->out_head)
            c->out_tail = NULL;
        item_free(it);
    }
    return true;
}

/* flush_out for TLS: stage, SSL_write until the socket (or OpenSSL) refuses more. */
static bool flush_tls(net_conn *c)
{
    tls_conn *t = c->tls;
    if (!t->done)
        return true; /* output queued before the handshake (none today) waits for it */
    while (!c->closed) {
        if (t->woff == t->wlen) {
            t->woff = t->wlen = 0;
            if (!c->out_head)
                break;
            if (!t->wbuf && !(t->wbuf = malloc(TLS_WBUF))) {
                conn_close_now(c);
                return false;
            }
            if (!tls_stage(c))
                return false;
        }
        ssize_t w = tls_write(t, t->wbuf + t->woff, t->wlen - t->woff);
        if (w < 0) {
            if (errno == EAGAIN)
                break;
            conn_close_now(c);
            return false;
        }
        t->woff += (size_t)w;
        c->out_bytes -= (size_t)w;
        out_count(c, -(int64_t)w);
    }
    if (c->closed)
        return false;
    if (t->woff == t->wlen && t->wbuf) {
        /* Nothing staged: idle connections hold no staging buffer. */
        free(t->wbuf);
        t->wbuf = NULL;
        t->woff = t->wlen = 0;
    }
    if (!c->out_head && !t->wbuf && c->close_after) {
        conn_close_now(c);
        return false;
    }
    return true;
}

/* Reads what OpenSSL holds decrypted (posted by tls_interest: no epoll event announces it). */
static void tls_pending_task(void *arg)
{
    net_conn *c = arg;
    if (!c->closed && c->tls) {
        c->tls->pending_posted = false;
        if (c->interest & EPOLLIN)
            conn_event(c, EPOLLIN);
    }
    net_conn_unref(c);
}

/* The epoll interest of a TLS connection, from what the plaintext rules chose (ev): during the
 * handshake, the direction it waits for; afterwards also staged bytes, and the other direction
 * when a read or write waits for it. */
static uint32_t tls_interest(net_conn *c, uint32_t ev)
{
    tls_conn *t = c->tls;
    if (!t->done)
        return t->want_write ? EPOLLOUT : EPOLLIN;
    if (t->woff < t->wlen || t->rd_wants_write)
        ev |= EPOLLOUT;
    if (t->wr_wants_read)
        ev |= EPOLLIN;
    if ((ev & EPOLLIN) && !c->waiting && !t->pending_posted && tls_pending(t)) {
        net_conn_ref(c);
        t->pending_posted = true;
        if (net_loop_post(c->loop, tls_pending_task, c) != 0) {
            t->pending_posted = false;
            net_conn_unref(c);
        }
    }
    return ev;
}

/* A TLS connection's epoll event: drives the handshake (returns 0: nothing more to do), or maps
 * the event onto what the plaintext path does: a read that waits for writability reads on
 * EPOLLOUT, a write that waits for readability writes on EPOLLIN. */
static uint32_t tls_event(net_conn *c, uint32_t ev)
{
    tls_conn *t = c->tls;
    t->trimmed = false;
    if (t->done) {
        if ((ev & EPOLLOUT) && t->rd_wants_write)
            ev |= EPOLLIN;
        if ((ev & EPOLLIN) && t->wr_wants_read)
            ev |= EPOLLOUT;
        return ev;
    }
    int rc = tls_handshake(t, c->peer);
    if (rc < 0) {
        conn_close_now(c);
        return 0;
    }
    if (rc == 0) {
        update_interest(c);
        return 0;
    }
    c->opened = true;
    if (c->proto->on_open && c->proto->on_open(c) != 0) {
        conn_close_now(c);
        return 0;
    }
    /* The client may have sent its first request with its Finished message. */
    return EPOLLIN | EPOLLOUT;
}

/* Before the socket closes: a close_notify alert, best effort (a peer that reads it knows the
 * stream ended here and was not cut), and the staging buffer goes. */
static void tls_close(net_conn *c)
{
    tls_conn *t = c->tls;
    if (t->done && !t->failed)
        tls_shutdown(t);
    /* Staged bytes are part of out_mem, which conn_close_now gives back. */
    free(t->wbuf);
    t->wbuf = NULL;
    t->wlen = t->woff = 0;
}
