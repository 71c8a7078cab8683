/*
 * test_delivery_entry.c: the delivery core's entry state (broker/delivery.h): the transitions
 * of a delivered entry (deliver, extend, fail by nack or passed deadline into waiting or dead,
 * claim, hold and release, done) and the due-time sweep over a front end's entries given as
 * spans of its own arrays.
 */
#include <stddef.h>

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

TEST_MAIN(TEST(test_transitions), TEST(test_sweep))
