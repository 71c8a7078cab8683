/*
 * budget.c: the broker-wide budget of buffered bytes and its queues of waiting connections (the
 * model and the deadlock rule are in net_int.h).
 *
 * The counters are atomics, so that the common case (a connection grows its buffer, or queues
 * output, while the budget has room and nobody waits) costs one atomic operation and no lock.
 * The mutex guards the queues only, and is taken when a connection must wait or when bytes come
 * back while someone waits. A lost wake-up is impossible: a waiter is queued, and then tried,
 * under the mutex; whoever gives bytes back first makes them visible (the atomic subtraction)
 * and then looks at nwait, and takes the mutex to grant if anyone waits.
 */
#include "net/net_int.h"

#include "base/base.h"

void budget_init(net_budget *b, size_t limit)
{
    *b = (net_budget){.limit = limit};
    pthread_mutex_init(&b->mu, NULL);
}

void budget_destroy(net_budget *b)
{
    pthread_mutex_destroy(&b->mu);
}

static size_t used(net_budget *b)
{
    return __atomic_load_n(&b->in_used, __ATOMIC_SEQ_CST) +
           __atomic_load_n(&b->out_used, __ATOMIC_SEQ_CST);
}

bool budget_over(net_budget *b)
{
    return used(b) >= b->limit;
}

/* Charges n input bytes if the total stays within the limit. */
static bool charge(net_budget *b, size_t n)
{
    size_t in = __atomic_load_n(&b->in_used, __ATOMIC_SEQ_CST);
    for (;;) {
        size_t out = __atomic_load_n(&b->out_used, __ATOMIC_SEQ_CST);
        if (in + out > b->limit || n > b->limit - in - out)
            return false;
        if (__atomic_compare_exchange_n(&b->in_used, &in, in + n, false, __ATOMIC_SEQ_CST,
                                        __ATOMIC_SEQ_CST))
            return true;
    }
}

bool budget_try(net_budget *b, size_t n)
{
    if (n == 0)
        return true;
    if (__atomic_load_n(&b->nwait, __ATOMIC_SEQ_CST) > 0)
        return false; /* first come, first served: do not pass those who wait */
    return charge(b, n);
}

static void unlink_w(net_budget *b, net_bwait *w)
{
    bool input = w->need > 0;
    net_bwait **head = input ? &b->in_head : &b->out_head;
    net_bwait **tail = input ? &b->in_tail : &b->out_tail;
    if (w->prev)
        w->prev->next = w->next;
    else
        *head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        *tail = w->prev;
    w->next = w->prev = NULL;
    w->queued = false;
    if (input)
        b->held_waiting -= w->held;
    __atomic_sub_fetch(&b->nwait, 1, __ATOMIC_SEQ_CST);
}

static void link_w(net_budget *b, net_bwait *w)
{
    bool input = w->need > 0;
    net_bwait **head = input ? &b->in_head : &b->out_head;
    net_bwait **tail = input ? &b->in_tail : &b->out_tail;
    w->next = NULL;
    w->prev = *tail;
    if (*tail)
        (*tail)->next = w;
    else
        *head = w;
    *tail = w;
    w->queued = true;
    if (input)
        b->held_waiting += w->held;
    __atomic_add_fetch(&b->nwait, 1, __ATOMIC_SEQ_CST);
}

/* Grants what fits, in order (mu held). Output waiters only need the total under the limit and
 * do not queue behind input waiters, which wait for something more specific. */
static void grant_locked(net_budget *b)
{
    while (b->in_head) {
        net_bwait *w = b->in_head;
        bool ok = charge(b, w->need);
        if (!ok && b->held_waiting > 0 &&
            __atomic_load_n(&b->in_used, __ATOMIC_SEQ_CST) <= b->held_waiting) {
            /* Every input byte counted belongs to a waiter: nobody else will free any. */
            __atomic_add_fetch(&b->in_used, w->need, __ATOMIC_SEQ_CST);
            __atomic_add_fetch(&b->forced, 1, __ATOMIC_RELAXED);
            ok = true;
        }
        if (!ok)
            break;
        unlink_w(b, w);
        w->granted += w->need;
        w->wake(w);
    }
    while (b->out_head && used(b) < b->limit) {
        net_bwait *w = b->out_head;
        unlink_w(b, w);
        w->wake(w);
    }
}

void budget_wait(net_budget *b, net_bwait *w, size_t need, size_t held)
{
    pthread_mutex_lock(&b->mu);
    if (w->queued && (w->need > 0) == (need > 0)) {
        if (need > 0) /* the same queue: keep the place, update the need */
            b->held_waiting = b->held_waiting - w->held + held;
        w->need = need;
        w->held = held;
    } else {
        if (w->queued)
            unlink_w(b, w);
        w->need = need;
        w->held = held;
        link_w(b, w);
    }
    grant_locked(b);
    pthread_mutex_unlock(&b->mu);
}

size_t budget_take(net_budget *b, net_bwait *w, bool *queued)
{
    pthread_mutex_lock(&b->mu);
    size_t n = w->granted;
    w->granted = 0;
    *queued = w->queued;
    pthread_mutex_unlock(&b->mu);
    return n;
}

void budget_cancel(net_budget *b, net_bwait *w)
{
    pthread_mutex_lock(&b->mu);
    if (w->queued)
        unlink_w(b, w);
    size_t n = w->granted;
    w->granted = 0;
    if (n)
        __atomic_sub_fetch(&b->in_used, n, __ATOMIC_SEQ_CST);
    if (b->in_head || b->out_head)
        grant_locked(b); /* what it gave back, or its place at the head */
    pthread_mutex_unlock(&b->mu);
}

static void kick(net_budget *b)
{
    if (__atomic_load_n(&b->nwait, __ATOMIC_SEQ_CST) == 0)
        return;
    pthread_mutex_lock(&b->mu);
    grant_locked(b);
    pthread_mutex_unlock(&b->mu);
}

void budget_release(net_budget *b, size_t n)
{
    if (n == 0)
        return;
    __atomic_sub_fetch(&b->in_used, n, __ATOMIC_SEQ_CST);
    kick(b);
}

void budget_out(net_budget *b, int64_t delta)
{
    if (delta == 0)
        return;
    __atomic_add_fetch(&b->out_used, (size_t)delta, __ATOMIC_SEQ_CST);
    if (delta < 0)
        kick(b);
}
