/*
 * delivery_entry.c: the entry state of the delivery core (delivery.h): the transitions of an
 * entry that a front end delivered, and the due-time sweep over a front end's entries.
 */
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
        char *b = (char *)s.base;
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
