/*
 * wait.c: readers that wait, parked per loop, woken from any thread, retried on their loop
 * (net.h describes the mechanism; Kafka fetches, Redis blocked reads, HTTP live subscriptions
 * and long-polling queue receives use it).
 *
 * Per set and loop, one slot: the list of the waiters parked on that loop (touched by the loop's
 * thread only), their number and whether a wake-up task is queued (atomics read by the wakers).
 * The slots of a set are made at its first park, one per loop of the parking connection's group.
 *
 * Lost wake-ups: a waiter counts itself in (n, total) before its owner's second try, and a
 * waker publishes its event (a partition's high watermark) before it reads the counts, each side
 * with a full barrier between its write and its read (a store may otherwise pass a later load,
 * even on x86); so either the second try sees the event or the waker sees the waiter. The
 * barrier costs the wakers one fence per event.
 * A wake-up task clears `posted` before it walks the list: a wake that comes during the walk
 * posts another task, which retries everyone again (a retry already running may have read the
 * state before the event).
 *
 * Walking safely: a retry may answer and free its waiter, close other connections (which cancel
 * their waiters), or park waiters again (a Redis client's next command blocks). The walk keeps a
 * cursor node in the list just after the waiter being retried, and goes on from whatever follows
 * the cursor then; waiters parked during the walk go in at the head, before the cursor, and wait
 * for the next wake-up. Each wake-up costs one pass over the loop's waiters of the set.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "base/base.h"
#include "net/net.h"
#include "net/net_int.h"

typedef struct net_waitslot {
    net_waitset *set;
    net_loop *loop;
    size_t n;          /* atomic: the waiters parked on this loop */
    bool posted;       /* atomic: a wake-up task is queued and has not started */
    net_waiter *head;  /* loop thread: the parked waiters (and the cursor of a running walk) */
    net_waiter cursor; /* loop thread: where the running wake-up's walk is */
} net_waitslot;

/* A full barrier (see above). GCC's ThreadSanitizer does not support fences: there, a sequentially
 * consistent read-modify-write of `word`, which both sides touch, orders the same. */
#if defined(__SANITIZE_THREAD__)
#define WAIT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WAIT_TSAN 1
#endif
#endif

static inline void full_barrier(size_t *word)
{
#ifdef WAIT_TSAN
    __atomic_fetch_add(word, 0, __ATOMIC_SEQ_CST);
#else
    (void)word;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
}

struct net_waitset {
    pthread_mutex_t mu;  /* making the slots */
    net_group *g;        /* whose loops the slots are for */
    net_waitslot *slots; /* atomic; NULL until the first park */
    int nslots;
    size_t total; /* atomic: waiters parked over all loops */
};

int net_waitset_create(net_waitset **out)
{
    net_waitset *set = calloc(1, sizeof(*set));
    if (!set)
        return -ENOMEM;
    pthread_mutex_init(&set->mu, NULL);
    *out = set;
    return 0;
}

void net_waitset_destroy(net_waitset *set)
{
    if (!set)
        return;
    pthread_mutex_destroy(&set->mu);
    free(set->slots);
    free(set);
}

void net_waiter_init(net_waiter *w, net_wait_fn retry)
{
    *w = (net_waiter){.retry = retry, .timer = NET_TIMER_INIT, .deadline = INT64_MAX};
}

bool net_wait_parked(const net_waiter *w)
{
    return w->slot != NULL;
}

size_t net_waitset_count(net_waitset *set)
{
    return __atomic_load_n(&set->total, __ATOMIC_RELAXED);
}

/* The slot of loop l, the set's slots made on first use. NULL: no memory. */
static net_waitslot *slot_of(net_waitset *set, net_loop *l)
{
    net_waitslot *slots = __atomic_load_n(&set->slots, __ATOMIC_ACQUIRE);
    if (!slots) {
        pthread_mutex_lock(&set->mu);
        slots = set->slots;
        if (!slots && (slots = calloc((size_t)l->g->nloops, sizeof(*slots)))) {
            for (int i = 0; i < l->g->nloops; i++) {
                slots[i].set = set;
                slots[i].loop = &l->g->loops[i];
            }
            set->g = l->g;
            set->nslots = l->g->nloops;
            __atomic_store_n(&set->slots, slots, __ATOMIC_RELEASE);
        }
        pthread_mutex_unlock(&set->mu);
        if (!slots)
            return NULL;
    }
    /* A set serves the loops of one group. */
    if (l->g != set->g)
        return NULL;
    return &slots[l - l->g->loops];
}

static void list_unlink(net_waitslot *slot, net_waiter *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        slot->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->prev = w->next = NULL;
}

static void timer_fire(void *arg);

/* Arms w's timer for its next retry: the period's or the deadline's, whichever comes first. */
static void arm(net_waiter *w)
{
    if (w->deadline == INT64_MAX && w->period_ms <= 0)
        return;
    net_loop *l = w->c->loop;
    int64_t left = w->deadline - net_loop_now(l);
    int64_t delay = w->period_ms > 0 ? TD_MIN(w->period_ms, left) : left;
    net_timer_start(l, &w->timer, delay, timer_fire, w);
}

int net_wait_park(net_waitset *set, net_waiter *w, net_conn *c, int64_t timeout_ms,
                  int64_t period_ms)
{
    net_waitslot *slot = slot_of(set, c->loop);
    if (!slot)
        return -ENOMEM;
    int64_t now = net_loop_now(c->loop);
    w->c = c;
    w->slot = slot;
    w->prev = NULL;
    w->next = slot->head;
    if (slot->head)
        slot->head->prev = w;
    slot->head = w;
    w->cprev = NULL;
    w->cnext = c->parked;
    if (c->parked)
        c->parked->cprev = w;
    c->parked = w;
    /* A deadline beyond a quarter of the clock's range is none (Redis's BLOCK takes up to
     * 2^63 ms). */
    w->deadline = timeout_ms < 0 || timeout_ms > INT64_MAX / 4 ? INT64_MAX : now + timeout_ms;
    w->period_ms = period_ms;
    /* Counted in before the owner's second try (see the top of the file). */
    __atomic_add_fetch(&slot->n, 1, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(&set->total, 1, __ATOMIC_SEQ_CST);
    full_barrier(&set->total);
    arm(w);
    return 0;
}

void net_wait_cancel(net_waiter *w)
{
    net_waitslot *slot = w->slot;
    if (!slot)
        return;
    list_unlink(slot, w);
    net_conn *c = w->c;
    if (w->cprev)
        w->cprev->cnext = w->cnext;
    else
        c->parked = w->cnext;
    if (w->cnext)
        w->cnext->cprev = w->cprev;
    w->cprev = w->cnext = NULL;
    net_timer_stop(slot->loop, &w->timer);
    w->slot = NULL;
    __atomic_sub_fetch(&slot->n, 1, __ATOMIC_SEQ_CST);
    __atomic_sub_fetch(&slot->set->total, 1, __ATOMIC_SEQ_CST);
}

void wait_conn_closed(net_conn *c)
{
    while (c->parked)
        net_wait_cancel(c->parked);
}

/* The deadline (final) or the period. */
static void timer_fire(void *arg)
{
    net_waiter *w = arg;
    net_conn *c = w->c;
    net_loop *l = c->loop;
    /* A stopping loop fires every timer at once: the wait ends with what there is. */
    bool final = net_loop_now(l) >= w->deadline || w->period_ms <= 0 || net_loop_stopping(l);
    net_conn_ref(c);
    if (final) {
        net_wait_cancel(w);
        w->retry(w, true);
    } else if (!w->retry(w, false)) {
        arm(w);
    }
    net_conn_unref(c);
}

/* On the slot's loop: one retry per parked waiter. */
static void wake_task(void *arg)
{
    net_waitslot *slot = arg;
    __atomic_store_n(&slot->posted, false, __ATOMIC_SEQ_CST);
    net_waiter *cur = &slot->cursor;
    net_waiter *w = slot->head;
    while (w) {
        cur->prev = w;
        cur->next = w->next;
        if (w->next)
            w->next->prev = cur;
        w->next = cur;
        net_conn *c = w->c;
        net_conn_ref(c);
        w->retry(w, false);
        net_conn_unref(c);
        w = cur->next;
        list_unlink(slot, cur);
    }
}

void net_wait_wake(net_waitset *set)
{
    /* The caller's event is published before the counts are read (see the top of the file). */
    full_barrier(&set->total);
    if (__atomic_load_n(&set->total, __ATOMIC_RELAXED) == 0)
        return;
    net_waitslot *slots = __atomic_load_n(&set->slots, __ATOMIC_ACQUIRE);
    for (int i = 0; slots && i < set->nslots; i++) {
        net_waitslot *slot = &slots[i];
        if (__atomic_load_n(&slot->n, __ATOMIC_RELAXED) == 0)
            continue;
        if (!__atomic_exchange_n(&slot->posted, true, __ATOMIC_SEQ_CST) &&
            net_loop_post(slot->loop, wake_task, slot) != 0)
            __atomic_store_n(&slot->posted, false, __ATOMIC_SEQ_CST);
    }
}

void net_wait_wake_hook(void *set)
{
    net_wait_wake(set);
}
