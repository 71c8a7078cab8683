/*
 * delivery.c: the rules of the delivery core and its service thread (delivery.h).
 *
 * The service. Queue groups and Redis consumer groups each used to own a thread that slept
 * until their next deadline. Both threads did the same kind of work (a sweep over entries
 * whose time came, then copies to dead-letter topics, which block on the disk) and were idle
 * almost always, so one thread serves both: each front end is a client with a wake-up time,
 * and the thread runs the clients whose time came, one after another, in turn. A client's work
 * runs without the service's lock, so a front end may call delivery_wake under its own mutex
 * while the thread waits for that mutex in its work function: the order is always the front
 * end's mutex, then the service's.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/delivery.h"
#include "broker/engine_int.h"

/* ---------------------------------------------------------------------------------------------
 * The rules
 */
int64_t delivery_backoff(const td_queue_policy *pol, int32_t failures, double r)
{
    double d = (double)pol->backoff_initial_ms;
    for (int32_t i = 1; i < failures && d < (double)pol->backoff_max_ms; i++)
        d *= pol->backoff_multiplier;
    if (d > (double)pol->backoff_max_ms)
        d = (double)pol->backoff_max_ms;
    if (pol->backoff_jitter > 0)
        d *= 1 - pol->backoff_jitter + 2 * pol->backoff_jitter * r;
    return (int64_t)llround(d);
}

int64_t delivery_retry_at(const td_queue_policy *pol, int32_t deliveries, int64_t failed_ms,
                          int64_t delay_ms, double r, bool *dead)
{
    *dead = deliveries >= pol->max_deliveries;
    if (*dead)
        return failed_ms;
    return failed_ms + (delay_ms >= 0 ? delay_ms : delivery_backoff(pol, TD_MAX(deliveries, 1), r));
}

double delivery_jitter_of(const void *key, size_t n)
{
    return (double)(td_hash64(key, n) >> 11) / (double)(1ull << 53);
}

void delivery_timeout_text(const td_queue_policy *pol, char *buf, size_t len)
{
    snprintf(buf, len, "not acknowledged within %" PRId64 " ms", pol->ack_timeout_ms);
}

/* ---------------------------------------------------------------------------------------------
 * The service
 */
/* A client's run this long is logged (the other client's deadlines waited for it). */
#define SLOW_RUN_MS 1000

struct delivery_client {
    struct td_delivery *svc;
    char name[16]; /* for the log: "queues", "xgroups" */
    delivery_work_fn work;
    void *arg;
    int64_t at; /* when its work runs next (INT64_MAX: when woken) */
    bool running, detached;
    delivery_client *next;
};

typedef struct td_delivery {
    td_engine *e;
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* the thread waits for the next wake-up */
    pthread_cond_t idle_cv; /* delivery_detach waits for a client's run to end */
    delivery_client *clients;
    delivery_client *last; /* the client run last: the next run starts after it (fairness) */
    pthread_t thr;
    bool started, stop;
    int refs;
} td_delivery;

static int threads_running; /* atomic: delivery_threads() */

int delivery_threads(void)
{
    return __atomic_load_n(&threads_running, __ATOMIC_RELAXED);
}

/* The client whose time came, after `last` in turn, or NULL; *next the earliest time ahead. */
static delivery_client *due_client(td_delivery *d, int64_t now, int64_t *next)
{
    *next = INT64_MAX;
    delivery_client *first = d->last && d->last->next ? d->last->next : d->clients;
    for (delivery_client *c = first; c;) {
        if (!c->detached && !c->running) {
            if (c->at <= now)
                return c;
            *next = TD_MIN(*next, c->at);
        }
        c = c->next ? c->next : d->clients;
        if (c == first)
            break;
    }
    return NULL;
}

static void *service_main(void *arg)
{
    td_delivery *d = arg;
    __atomic_add_fetch(&threads_running, 1, __ATOMIC_RELAXED);
    pthread_mutex_lock(&d->mu);
    while (!d->stop) {
        int64_t now = td_wall_ms(), next;
        delivery_client *c = due_client(d, now, &next);
        if (!c) {
            if (next == INT64_MAX) {
                pthread_cond_wait(&d->cv, &d->mu);
            } else {
                /* At most an hour at a time: a far time must not overflow the nanoseconds. */
                int64_t ms = TD_MIN(next - now, 3600000);
                struct timespec ts = td_deadline_ns(CLOCK_REALTIME, ms * 1000000);
                pthread_cond_timedwait(&d->cv, &d->mu, &ts);
            }
            continue;
        }
        c->running = true;
        c->at = INT64_MAX; /* a wake-up during the run asks for another */
        d->last = c;
        pthread_mutex_unlock(&d->mu);
        int64_t t0 = td_mono_ns();
        int64_t want = c->work(c->arg, now);
        int64_t took_ms = (td_mono_ns() - t0) / 1000000;
        /* The clients share the thread: a long run delays the others' deadlines. */
        if (took_ms >= SLOW_RUN_MS)
            TD_WARN("delivery",
                    "%s: a run of the timed work took %" PRId64 " ms (a slow dead-letter write?)",
                    c->name, took_ms);
        pthread_mutex_lock(&d->mu);
        c->running = false;
        c->at = TD_MIN(c->at, want);
        pthread_cond_broadcast(&d->idle_cv);
    }
    pthread_mutex_unlock(&d->mu);
    __atomic_sub_fetch(&threads_running, 1, __ATOMIC_RELAXED);
    return NULL;
}

int delivery_attach(td_engine *e, const char *name, delivery_work_fn work, void *arg,
                    delivery_client **out)
{
    delivery_client *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    snprintf(c->name, sizeof(c->name), "%s", name);
    c->work = work;
    c->arg = arg;
    c->at = INT64_MAX;
    /* The engine opens and closes its front ends one after another: admin_mu orders them
     * against anything else that may look at e->delivery. */
    pthread_mutex_lock(&e->admin_mu);
    td_delivery *d = e->delivery;
    if (!d) {
        if (!(d = calloc(1, sizeof(*d)))) {
            pthread_mutex_unlock(&e->admin_mu);
            free(c);
            return -ENOMEM;
        }
        pthread_mutex_init(&d->mu, NULL);
        pthread_cond_init(&d->cv, NULL);
        pthread_cond_init(&d->idle_cv, NULL);
        d->e = e;
        e->delivery = d;
    }
    d->refs++;
    c->svc = d;
    pthread_mutex_lock(&d->mu);
    c->next = d->clients;
    d->clients = c;
    pthread_mutex_unlock(&d->mu);
    pthread_mutex_unlock(&e->admin_mu);
    *out = c;
    return 0;
}

int delivery_wake(delivery_client *c, int64_t at)
{
    if (!c)
        return td_fail(TD_ECLOSED, "the delivery service is stopped");
    td_delivery *d = c->svc;
    int rc = 0;
    pthread_mutex_lock(&d->mu);
    if (c->detached || d->stop) {
        rc = td_fail(TD_ECLOSED, "the delivery service is stopped");
    } else if (at < c->at) {
        c->at = at;
        if (!d->started) {
            if (pthread_create(&d->thr, NULL, service_main, d) != 0)
                rc = td_fail(-EAGAIN, "cannot start the delivery thread");
            else
                d->started = true;
        }
        pthread_cond_signal(&d->cv);
    }
    pthread_mutex_unlock(&d->mu);
    return rc;
}

void delivery_note_due(delivery_client *c, int64_t *bound, int64_t at)
{
    if (at >= *bound)
        return;
    *bound = at;
    if (c && delivery_wake(c, at) != 0)
        td_error_clear(); /* detached meanwhile: the front end is stopping */
}

/* The engine's service, when its last client leaves: the thread stopped and joined. */
static void service_release(td_delivery *d)
{
    td_engine *e = d->e;
    pthread_mutex_lock(&e->admin_mu);
    bool last = --d->refs == 0;
    if (last)
        e->delivery = NULL;
    pthread_mutex_unlock(&e->admin_mu);
    if (!last)
        return;
    pthread_mutex_lock(&d->mu);
    d->stop = true;
    pthread_cond_broadcast(&d->cv);
    bool started = d->started;
    pthread_mutex_unlock(&d->mu);
    if (started)
        pthread_join(d->thr, NULL);
    pthread_mutex_destroy(&d->mu);
    pthread_cond_destroy(&d->cv);
    pthread_cond_destroy(&d->idle_cv);
    free(d);
}

void delivery_detach(delivery_client *c)
{
    if (!c)
        return;
    td_delivery *d = c->svc;
    pthread_mutex_lock(&d->mu);
    c->detached = true;
    while (c->running)
        pthread_cond_wait(&d->idle_cv, &d->mu);
    for (delivery_client **pp = &d->clients; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    if (d->last == c)
        d->last = NULL;
    pthread_mutex_unlock(&d->mu);
    free(c);
    service_release(d);
}
