/*
 * test_delivery_entry.c: the delivery core's entry state (broker/delivery.h): the transitions
 * of a delivered entry (deliver, extend, fail by nack or passed deadline into waiting or dead,
 * claim, hold and release, done) and the due-time sweep over a front end's entries given as
 * spans of its own arrays; the same for the pending form (Redis's model: a last delivery time
 * and a 64-bit count, the state derived).
 */
#include <stddef.h>
#include <string.h>

#include "broker/delivery.h"
#include "broker/queue.h"
#include "test.h"

static td_queue_policy policy(int32_t max_deliveries)
{
    td_queue_policy p;
    td_queue_policy_init(&p);
    p.backoff_initial_ms = 100;
    p.backoff_multiplier = 2;
    p.backoff_max_ms = 10000;
    p.backoff_jitter = 0;
    p.max_deliveries = max_deliveries;
    p.ack_timeout_ms = 1000;
    return p;
}

static void test_transitions(void)
{
    td_queue_policy pol = policy(3);
    delivery_entry d;
    delivery_entry_init(&d);
    ASSERT_EQ(d.state, DELIVERY_GONE);
    ASSERT_EQ(d.owner, -1);
    ASSERT_EQ(d.deliveries, 0);

    /* Delivered: in flight to its owner until the deadline. */
    ASSERT_EQ(delivery_deliver(&d, 7, 5000, 1000), 6000);
    ASSERT_EQ(d.state, DELIVERY_INFLIGHT);
    ASSERT_EQ(d.owner, 7);
    ASSERT_EQ(d.deliveries, 1);
    ASSERT_EQ(d.at, 6000);

    /* Extended: by the given time, or by the policy's ack timeout. */
    ASSERT_EQ(delivery_extend(&d, &pol, 5500, 200), 5700);
    ASSERT_EQ(d.at, 5700);
    ASSERT_EQ(delivery_extend(&d, &pol, 5500, -1), 6500);
    ASSERT_EQ(d.state, DELIVERY_INFLIGHT);

    /* Failed (its deadline passed): waiting for the first backoff, the owner released. */
    bool dead = true;
    ASSERT_EQ(delivery_fail(&d, &pol, 6500, -1, 0, &dead), 6600);
    ASSERT(!dead);
    ASSERT_EQ(d.state, DELIVERY_WAITING);
    ASSERT_EQ(d.at, 6600);
    ASSERT_EQ(d.owner, -1);
    ASSERT_EQ(d.first_fail, 6500);
    ASSERT_EQ(d.last_fail, 6500);

    /* Delivered again, then nacked with an explicit delay: the first failure time stays. */
    ASSERT_EQ(delivery_deliver(&d, 2, 7000, 1000), 8000);
    ASSERT_EQ(d.deliveries, 2);
    ASSERT_EQ(delivery_fail(&d, &pol, 7100, 30, 0, &dead), 7130);
    ASSERT(!dead);
    ASSERT_EQ(d.first_fail, 6500);
    ASSERT_EQ(d.last_fail, 7100);

    /* Claimed by another owner (a transfer): in flight to it, counted when asked. */
    delivery_claim(&d, 9, 9000, true);
    ASSERT_EQ(d.state, DELIVERY_INFLIGHT);
    ASSERT_EQ(d.owner, 9);
    ASSERT_EQ(d.at, 9000);
    ASSERT_EQ(d.deliveries, 3);
    delivery_claim(&d, 4, 9500, false);
    ASSERT_EQ(d.owner, 4);
    ASSERT_EQ(d.deliveries, 3);

    /* The third delivery was the last allowed: dead, no due time. */
    ASSERT_EQ(delivery_fail(&d, &pol, 9600, -1, 0, &dead), 0);
    ASSERT(dead);
    ASSERT_EQ(d.state, DELIVERY_DEAD);
    ASSERT_EQ(d.at, 0);
    ASSERT_EQ(d.last_fail, 9600);
    ASSERT_EQ(d.first_fail, 6500);

    delivery_done(&d);
    ASSERT_EQ(d.state, DELIVERY_GONE);
    ASSERT_EQ(d.owner, -1);

    /* Held (ordering=key), then released: due at once. The front end's flags are kept. */
    delivery_entry h;
    delivery_entry_init(&h);
    h.flags = 3;
    delivery_hold(&h);
    ASSERT_EQ(h.state, DELIVERY_HELD);
    delivery_release(&h, 4242);
    ASSERT_EQ(h.state, DELIVERY_WAITING);
    ASSERT_EQ(h.at, 4242);
    ASSERT_EQ(h.flags, 3);
    ASSERT_EQ(h.deliveries, 0);
}

/* A front end's entry: its own fields around the core's, as a queue group's. */
typedef struct fe_entry {
    int64_t offset;
    delivery_entry d;
    int64_t extra;
} fe_entry;

typedef struct fe {
    fe_entry *parts[3];
    size_t nparts[3];
    size_t i, cur;
    td_queue_policy pol;
    int64_t expired[16]; /* the offsets failed by the sweep, in order */
    size_t nexpired;
} fe;

static bool fe_next(void *arg, delivery_span *s)
{
    fe *f = arg;
    if (f->i >= 3)
        return false;
    f->cur = f->i++;
    fe_entry *v = f->parts[f->cur];
    *s = (delivery_span){f->nparts[f->cur] ? &v[0].d : NULL, f->nparts[f->cur], sizeof(fe_entry)};
    return true;
}

static void fe_expired(void *arg, size_t k, delivery_entry *d, int64_t now)
{
    fe *f = arg;
    fe_entry *en = &f->parts[f->cur][k];
    ASSERT(d == &en->d); /* the k-th element of the span being walked */
    if (f->nexpired < 16)
        f->expired[f->nexpired++] = en->offset;
    bool dead;
    delivery_fail(d, &f->pol, now, -1, 0, &dead);
}

static fe_entry entry(int64_t offset, int state, int64_t at, int32_t deliveries)
{
    fe_entry e = {.offset = offset, .extra = -offset};
    delivery_entry_init(&e.d);
    e.d.state = (uint8_t)state;
    e.d.at = at;
    e.d.deliveries = deliveries;
    return e;
}

static void test_sweep(void)
{
    fe_entry a[] = {entry(1, DELIVERY_INFLIGHT, 900, 1), entry(2, DELIVERY_GONE, 0, 0),
                    entry(3, DELIVERY_INFLIGHT, 1500, 1), entry(4, DELIVERY_WAITING, 800, 1)};
    fe_entry c[] = {entry(10, DELIVERY_INFLIGHT, 1000, 2), entry(11, DELIVERY_INFLIGHT, 1200, 1),
                    entry(12, DELIVERY_HELD, 0, 0)};
    fe f = {.parts = {a, NULL, c}, .nparts = {4, 0, 3}, .pol = policy(2)};
    bool dead = false;
    int64_t next = delivery_sweep(&(delivery_walk){fe_next, fe_expired, &f}, 1000, &dead);
    /* The deadlines at or before now failed, in order; the earliest one ahead is returned. */
    ASSERT_EQ(f.nexpired, 2);
    ASSERT_EQ(f.expired[0], 1);
    ASSERT_EQ(f.expired[1], 10);
    ASSERT_EQ(next, 1200);
    /* Offset 10 was its second (and last allowed) delivery: dead, which the sweep reports. */
    ASSERT(dead);
    ASSERT_EQ(c[0].d.state, DELIVERY_DEAD);
    ASSERT_EQ(a[0].d.state, DELIVERY_WAITING);
    ASSERT_EQ(a[0].d.at, 1100);
    /* The rest is untouched, the front end's own fields too. */
    ASSERT_EQ(a[2].d.state, DELIVERY_INFLIGHT);
    ASSERT_EQ(a[3].d.at, 800);
    ASSERT_EQ(c[2].d.state, DELIVERY_HELD);
    ASSERT_EQ(a[0].extra, -1);
    ASSERT_EQ(c[0].extra, -10);

    /* Nothing in flight and nothing dead: no deadline ahead, *dead left alone. */
    fe_entry w[] = {entry(5, DELIVERY_WAITING, 10, 1)};
    fe g = {.parts = {w, NULL, NULL}, .nparts = {1, 0, 0}, .pol = policy(5)};
    dead = false;
    ASSERT_EQ(delivery_sweep(&(delivery_walk){fe_next, fe_expired, &g}, 5000, &dead), INT64_MAX);
    ASSERT(!dead);
    ASSERT_EQ(g.nexpired, 0);
}

static void test_pending_transitions(void)
{
    td_queue_policy pol = policy(3);
    delivery_pending p;
    delivery_pending_init(&p, 5000);
    ASSERT_EQ(p.delivered, 5000);
    ASSERT_EQ(p.deliveries, 0);

    /* Delivered: counted, its time moved; in flight until delivered + ack.timeout.ms, then due
     * again after the backoff of its count (100 ms after the first, 200 after the second). */
    delivery_pending_deliver(&p, 5000);
    ASSERT_EQ(p.deliveries, 1);
    ASSERT_EQ(delivery_pending_due(&p, &pol, 0.5), 6100);
    ASSERT(!delivery_pending_dead(&p, &pol));
    delivery_pending_deliver(&p, 7000);
    ASSERT_EQ(p.delivered, 7000);
    ASSERT_EQ(delivery_pending_due(&p, &pol, 0.5), 8200);

    /* Claimed: the time given (XCLAIM IDLE/TIME) and counted once more, or not (JUSTID), or
     * the count set whatever it was (RETRYCOUNT, a 64-bit number). */
    delivery_pending_claim(&p, 6000, -1, true);
    ASSERT_EQ(p.delivered, 6000);
    ASSERT_EQ(p.deliveries, 3);
    /* The third delivery is the last max.deliveries allows: dead at its deadline. */
    ASSERT(delivery_pending_dead(&p, &pol));
    ASSERT_EQ(delivery_pending_due(&p, &pol, 0.5), 7000);
    delivery_pending_claim(&p, 6500, -1, false);
    ASSERT_EQ(p.delivered, 6500);
    ASSERT_EQ(p.deliveries, 3);
    delivery_pending_claim(&p, 6500, INT64_C(5000000000), true);
    ASSERT_EQ(p.deliveries, INT64_C(5000000000));
    ASSERT(delivery_pending_dead(&p, &pol));
    delivery_pending_claim(&p, 6500, 0, true);
    ASSERT_EQ(p.deliveries, 0);
    ASSERT(!delivery_pending_dead(&p, &pol));

    /* The jitter: fixed by the ID's bytes and the count (a restart computes it again the same),
     * and it moves with the count. */
    const int64_t id[2] = {1700000000000, 3};
    delivery_pending a = {1, 2}, b = {99, 2}, c = {1, 3};
    double ra = delivery_pending_jitter(&a, id, sizeof(id));
    ASSERT(ra >= 0 && ra < 1);
    ASSERT(ra == delivery_pending_jitter(&b, id, sizeof(id)));
    ASSERT(ra != delivery_pending_jitter(&c, id, sizeof(id)));
    /* The key is the ID's bytes then the count, as {ms, seq, count}. */
    const int64_t key[3] = {1700000000000, 3, 2};
    ASSERT(ra == delivery_jitter_of(key, sizeof(key)));
}

/* A front end's pending entry: its ID and owner around the core's, as a Redis group's. */
typedef struct fp_entry {
    int64_t id[2];
    void *owner; /* NULL: a hole */
    delivery_pending d;
} fp_entry;

typedef struct fp {
    fp_entry *v;
    size_t n;
    bool given;
    int64_t dead[8];
    size_t ndead, stop_after;
} fp;

static bool fp_next(void *arg, delivery_span *s)
{
    fp *f = arg;
    if (f->given)
        return false;
    f->given = true;
    *s = (delivery_span){&f->v[0].d, f->n, sizeof(fp_entry)};
    return true;
}

static double fp_jitter(void *arg, size_t k, const delivery_pending *p)
{
    fp *f = arg;
    ASSERT(p == &f->v[k].d);
    return f->v[k].owner ? 0.5 : -1;
}

static bool fp_dead(void *arg, size_t k, const delivery_pending *p, int64_t now)
{
    fp *f = arg;
    ASSERT(p == &f->v[k].d);
    ASSERT_EQ(now, 10000);
    if (f->ndead >= f->stop_after)
        return false;
    f->dead[f->ndead++] = f->v[k].id[1];
    return true;
}

static void test_pending_sweep(void)
{
    td_queue_policy pol = policy(2);
    int owner;
    /* At now = 10000 (ack timeout 1000, backoff 100 then 200, two deliveries allowed):
     * 1: delivered at 9000 once: due at 10100, ahead;
     * 2: delivered at 8000 once: due at 9100, ready for redelivery;
     * 3: a hole (would be dead);
     * 4: delivered at 8500 twice: dead, due at its deadline 9500;
     * 5: delivered at 9500 twice: dead at 10500, ahead. */
    fp_entry v[] = {{{0, 1}, &owner, {9000, 1}},
                    {{0, 2}, &owner, {8000, 1}},
                    {{0, 3}, NULL, {1000, 5}},
                    {{0, 4}, &owner, {8500, 2}},
                    {{0, 5}, &owner, {9500, 2}}};
    fp f = {v, 5, false, {0}, 0, 8};
    bool ready = false;
    delivery_pending_walk w = {fp_next, fp_jitter, fp_dead, &pol, &f};
    int64_t next = delivery_sweep_pending(&w, 10000, &ready);
    ASSERT(ready);
    ASSERT_EQ(f.ndead, 1);
    ASSERT_EQ(f.dead[0], 4);
    /* The earliest ahead, or a dead entry looked at again DELIVERY_RETRY_MS later. */
    ASSERT_EQ(next, 10100);
    /* Nothing is changed by the sweep itself: the state is derived. */
    ASSERT_EQ(v[3].d.delivered, 8500);
    ASSERT_EQ(v[3].d.deliveries, 2);

    /* Only entries ahead: not ready, the earliest returned. */
    fp_entry u[] = {{{0, 6}, &owner, {9900, 1}}, {{0, 7}, &owner, {9950, 1}}};
    fp g = {u, 2, false, {0}, 0, 8};
    ready = false;
    w.arg = &g;
    ASSERT_EQ(delivery_sweep_pending(&w, 10000, &ready), 11000);
    ASSERT(!ready);
    ASSERT_EQ(g.ndead, 0);

    /* The front end stops the sweep (no memory for a job): it returns at once, with a time no
     * later than the retry of the dead entry it could not take (here: entry 1's, ahead). */
    fp h = {v, 5, false, {0}, 0, 0};
    ready = false;
    w.arg = &h;
    ASSERT_EQ(delivery_sweep_pending(&w, 10000, &ready), 10100);
    ASSERT_EQ(h.ndead, 0);
}

TEST_MAIN(TEST(test_transitions), TEST(test_sweep), TEST(test_pending_transitions),
          TEST(test_pending_sweep))
