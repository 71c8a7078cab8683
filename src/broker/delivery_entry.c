/*
 * delivery_entry.c: the entry state of the delivery core (delivery.h): the transitions of an
 * entry that a front end delivered, and the due-time sweep over a front end's entries.
 */
#include <string.h>

#include "broker/delivery.h"

void delivery_entry_init(delivery_entry *d)
{
    *d = (delivery_entry){.owner = -1};
}

int64_t delivery_deliver(delivery_entry *d, int32_t owner, int64_t now, int64_t timeout_ms)
{
    d->state = DELIVERY_INFLIGHT;
    d->deliveries++;
    d->at = now + timeout_ms;
    d->owner = owner;
    return d->at;
}

int64_t delivery_fail(delivery_entry *d, const td_queue_policy *pol, int64_t now, int64_t delay_ms,
                      double r, bool *dead)
{
    d->owner = -1;
    if (!d->first_fail)
        d->first_fail = now;
    d->last_fail = now;
    int64_t at = delivery_retry_at(pol, d->deliveries, now, delay_ms, r, dead);
    if (*dead) {
        d->state = DELIVERY_DEAD;
        d->at = 0;
        return 0;
    }
    d->state = DELIVERY_WAITING;
    d->at = at;
    return at;
}

int64_t delivery_extend(delivery_entry *d, const td_queue_policy *pol, int64_t now, int64_t ms)
{
    d->at = now + (ms >= 0 ? ms : pol->ack_timeout_ms);
    return d->at;
}

void delivery_claim(delivery_entry *d, int32_t owner, int64_t at, bool count)
{
    d->state = DELIVERY_INFLIGHT;
    d->owner = owner;
    d->at = at;
    if (count)
        d->deliveries++;
}

void delivery_hold(delivery_entry *d)
{
    d->state = DELIVERY_HELD;
    d->at = 0;
}

void delivery_release(delivery_entry *d, int64_t now)
{
    d->state = DELIVERY_WAITING;
    d->at = now;
}

void delivery_done(delivery_entry *d)
{
    d->state = DELIVERY_GONE;
    d->owner = -1;
}

int64_t delivery_sweep(const delivery_walk *w, int64_t now, bool *dead)
{
    int64_t next = INT64_MAX;
    delivery_span s;
    while (w->next(w->arg, &s)) {
        char *b = s.base;
        for (size_t k = 0; k < s.n; k++) {
            delivery_entry *d = (delivery_entry *)(void *)(b + k * s.stride);
            if (d->state == DELIVERY_INFLIGHT && d->at <= now)
                w->expired(w->arg, k, d, now);
            if (d->state == DELIVERY_INFLIGHT)
                next = d->at < next ? d->at : next;
            else if (d->state == DELIVERY_DEAD)
                *dead = true;
        }
    }
    return next;
}

/* ---------------------------------------------------------------------------------------------
 * The pending form (Redis's model): its state derived by the rules from its two numbers.
 */
void delivery_pending_init(delivery_pending *p, int64_t now)
{
    *p = (delivery_pending){.delivered = now};
}

void delivery_pending_deliver(delivery_pending *p, int64_t now)
{
    p->delivered = now;
    p->deliveries++;
}

void delivery_pending_claim(delivery_pending *p, int64_t delivered, int64_t retry_count, bool count)
{
    p->delivered = delivered;
    if (retry_count >= 0)
        p->deliveries = retry_count;
    else if (count)
        p->deliveries++;
}

double delivery_pending_jitter(const delivery_pending *p, const void *id, size_t n)
{
    /* The key of the jitter: the ID's bytes, then the count (as the entries of earlier versions
     * had it: {ms, seq, count} for a stream ID). */
    unsigned char key[64];
    if (n > sizeof(key) - sizeof(p->deliveries))
        n = sizeof(key) - sizeof(p->deliveries);
    memcpy(key, id, n);
    memcpy(key + n, &p->deliveries, sizeof(p->deliveries));
    return delivery_jitter_of(key, n + sizeof(p->deliveries));
}

int64_t delivery_pending_due(const delivery_pending *p, const td_queue_policy *pol, double r)
{
    int64_t c = p->deliveries < 0 ? 0 : p->deliveries;
    bool dead;
    return delivery_retry_at(pol, (int32_t)(c < INT32_MAX ? c : INT32_MAX),
                             p->delivered + pol->ack_timeout_ms, -1, r, &dead);
}

bool delivery_pending_dead(const delivery_pending *p, const td_queue_policy *pol)
{
    return p->deliveries >= pol->max_deliveries;
}

int64_t delivery_sweep_pending(const delivery_pending_walk *w, int64_t now, bool *ready)
{
    int64_t next = INT64_MAX;
    delivery_span s;
    while (w->next(w->arg, &s)) {
        char *b = s.base;
        for (size_t k = 0; k < s.n; k++) {
            const delivery_pending *p = (const delivery_pending *)(void *)(b + k * s.stride);
            double r = w->jitter(w->arg, k, p);
            if (r < 0)
                continue;
            int64_t due = delivery_pending_due(p, w->pol, r);
            if (due > now) {
                next = due < next ? due : next;
            } else if (!delivery_pending_dead(p, w->pol)) {
                *ready = true;
            } else {
                next = now + DELIVERY_RETRY_MS < next ? now + DELIVERY_RETRY_MS : next;
                if (!w->dead(w->arg, k, p, now))
                    return next;
            }
        }
    }
    return next;
}
