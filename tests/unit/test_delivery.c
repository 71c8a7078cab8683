/*
 * test_delivery.c: the delivery core under queue groups and Redis consumer groups
 * (broker/delivery.h): the backoff and retry rules, record batches and their appends to a
 * state topic, the replay's rule for records it does not understand, and the one service
 * thread its clients share.
 */
#include <errno.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "broker/delivery.h"
#include "broker/queue.h"
#include "broker/state.h"
#include "broker/xgroup.h"
#include "storage/storage.h"
#include "test.h"

static td_queue_policy policy(int64_t initial, double mult, int64_t max, double jitter,
                              int32_t max_deliveries)
{
    td_queue_policy p;
    td_queue_policy_init(&p);
    p.backoff_initial_ms = initial;
    p.backoff_multiplier = mult;
    p.backoff_max_ms = max;
    p.backoff_jitter = jitter;
    p.max_deliveries = max_deliveries;
    return p;
}

static void test_backoff_grows_to_its_cap(void)
{
    td_queue_policy p = policy(100, 2, 1000, 0, 5);
    ASSERT_EQ(delivery_backoff(&p, 0, 0), 100);
    ASSERT_EQ(delivery_backoff(&p, 1, 0), 100);
    ASSERT_EQ(delivery_backoff(&p, 2, 0), 200);
    ASSERT_EQ(delivery_backoff(&p, 3, 0), 400);
    ASSERT_EQ(delivery_backoff(&p, 4, 0), 800);
    ASSERT_EQ(delivery_backoff(&p, 5, 0), 1000);
    ASSERT_EQ(delivery_backoff(&p, 1000, 0), 1000);
    /* Jitter spreads it by at most the fraction, both ways. */
    p = policy(1000, 1, 1000, 0.1, 5);
    ASSERT_EQ(delivery_backoff(&p, 1, 0.0), 900);
    ASSERT_EQ(delivery_backoff(&p, 1, 0.5), 1000);
    ASSERT_EQ(delivery_backoff(&p, 1, 0.999999), 1100);
}

static void test_retry_at_and_dead(void)
{
    td_queue_policy p = policy(100, 2, 10000, 0, 3);
    bool dead = true;
    ASSERT_EQ(delivery_retry_at(&p, 1, 5000, -1, 0, &dead), 5100);
    ASSERT(!dead);
    ASSERT_EQ(delivery_retry_at(&p, 2, 5000, -1, 0, &dead), 5200);
    ASSERT(!dead);
    /* An explicit delay (a nack's) wins over the backoff. */
    ASSERT_EQ(delivery_retry_at(&p, 2, 5000, 7, 0, &dead), 5007);
    ASSERT(!dead);
    /* No delivery yet counted (a Redis claim with RETRYCOUNT 0): the first backoff. */
    ASSERT_EQ(delivery_retry_at(&p, 0, 5000, -1, 0, &dead), 5100);
    /* The last delivery allowed failed: dead, at once. */
    ASSERT_EQ(delivery_retry_at(&p, 3, 5000, -1, 0, &dead), 5000);
    ASSERT(dead);
    ASSERT_EQ(delivery_retry_at(&p, 4, 5000, 9, 0, &dead), 5000);
    ASSERT(dead);
    /* The jitter of a key is fixed, and in [0, 1). */
    const int64_t k1[2] = {1, 2}, k2[2] = {1, 3};
    double a = delivery_jitter_of(k1, sizeof(k1)), b = delivery_jitter_of(k2, sizeof(k2));
    ASSERT(a >= 0 && a < 1 && b >= 0 && b < 1);
    ASSERT(a == delivery_jitter_of(k1, sizeof(k1)));
    ASSERT(a != b);
    char text[64];
    delivery_timeout_text(&p, text, sizeof(text));
    ASSERT_STR_EQ(text, "not acknowledged within 30000 ms");
}

/* Adds a record "k<i>" = "v<i>" (or a tombstone). */
static void add(delivery_recs *r, int i, bool tomb)
{
    char k[16], v[16];
    snprintf(k, sizeof(k), "k%d", i);
    snprintf(v, sizeof(v), "v%d", i);
    drecs_begin(r);
    drecs_check(r, td_buf_append(&r->buf, k, strlen(k)));
    if (tomb) {
        drecs_tombstone(r);
        return;
    }
    drecs_value(r);
    drecs_check(r, td_buf_append(&r->buf, v, strlen(v)));
    drecs_end(r);
}

static bool rec_is(const delivery_recs *r, size_t i, const char *k, const char *v)
{
    const delivery_rec *x = &r->v[i];
    if (x->klen != strlen(k) || memcmp(r->buf.p + x->koff, k, x->klen))
        return false;
    if (!v)
        return x->tombstone;
    return !x->tombstone && x->vlen == strlen(v) && !memcmp(r->buf.p + x->voff, v, x->vlen);
}

static void test_record_batches(void)
{
    delivery_recs r, c;
    drecs_init(&r);
    drecs_init(&c);
    for (int i = 0; i < 5; i++)
        add(&r, i, i == 2);
    ASSERT_EQ(r.n, 5);
    ASSERT(rec_is(&r, 0, "k0", "v0"));
    ASSERT(rec_is(&r, 2, "k2", NULL));
    ASSERT(rec_is(&r, 4, "k4", "v4"));
    drecs_copy(&c, &r, 2);
    drecs_copy(&c, &r, 3);
    ASSERT_EQ(c.n, 2);
    ASSERT(rec_is(&c, 0, "k2", NULL));
    ASSERT(rec_is(&c, 1, "k3", "v3"));
    drecs_drop_front(&r, 2);
    ASSERT_EQ(r.n, 3);
    ASSERT(rec_is(&r, 0, "k2", NULL));
    ASSERT(rec_is(&r, 2, "k4", "v4"));
    drecs_truncate(&r, 1);
    ASSERT_EQ(r.n, 1);
    add(&r, 9, false);
    ASSERT(rec_is(&r, 1, "k9", "v9"));
    ASSERT_EQ(r.buf.len, 2 + 2 + 2);
    drecs_drop_front(&r, 5);
    ASSERT_EQ(r.n, 0);
    ASSERT_EQ(r.buf.len, 0);
    drecs_free(&r);
    drecs_free(&c);
}

/* Appends are bounded in records per batch, keep the order, and a bad batch is refused. */
static void test_record_appends(void)
{
    char *dir = test_tmpdir("delivery");
    td_engine *e = test_engine_open(dir);
    delivery_recs r;
    drecs_init(&r);
    int n = DELIVERY_BATCH_RECS + 10;
    for (int i = 0; i < n; i++)
        add(&r, i, i % 7 == 3);
    int64_t before = 0, after = 0, end = 0;
    size_t done = 0;
    ASSERT_OK(td_offset_for(e, STATE_QUEUES_TOPIC, 0, TD_OFFSET_LATEST, &before));
    ASSERT_OK(drecs_append(e, STATE_QUEUES, 0, &r, &end, &done));
    ASSERT_EQ(done, (size_t)n);
    ASSERT_OK(state_wait(e, STATE_QUEUES, 0, end));
    ASSERT_OK(td_offset_for(e, STATE_QUEUES_TOPIC, 0, TD_OFFSET_LATEST, &after));
    ASSERT_EQ(after - before, n);
    ASSERT_EQ(end, after);
    td_iter *it;
    ASSERT_OK(td_iter_open(e, STATE_QUEUES_TOPIC, 0, before, &it));
    td_event ev;
    for (int i = 0; i < n; i++) {
        ASSERT_EQ(td_iter_next(it, &ev), 1);
        char k[16];
        snprintf(k, sizeof(k), "k%d", i);
        ASSERT_EQ(ev.key_len, strlen(k));
        ASSERT_MEM_EQ(ev.key, k, ev.key_len);
        ASSERT_EQ(ev.value == NULL, i % 7 == 3);
    }
    td_iter_close(it);
    /* Nothing to append: no offset to wait for. */
    drecs_clear(&r);
    ASSERT_OK(drecs_append(e, STATE_QUEUES, 0, &r, &end, &done));
    ASSERT_EQ(end, -1);
    ASSERT_EQ(done, 0);
    r.bad = true;
    add(&r, 1, false);
    ASSERT_EQ(drecs_append(e, STATE_QUEUES, 0, &r, &end, &done), -ENOMEM);
    ASSERT_EQ(done, 0);
    drecs_free(&r);
    /* The replay's rule: refused, as corrupt. */
    td_event bad = {.offset = 42};
    ASSERT_EQ(delivery_replay_refuse(STATE_XGROUPS, 0, &bad, "a key of kind 9"), TD_ECORRUPT);
    ASSERT_CONTAINS(td_last_error(), "__xgroup_state partition 0 offset 42: a key of kind 9");
    td_engine_close(e);
    test_rmrf(dir);
}

/* Two clients of one engine: one thread runs both, never a client twice at once, and wakes
 * them at the time they ask. */
typedef struct client_state {
    pthread_mutex_t mu;
    int runs;
    pthread_t thread;
    int64_t want; /* returned by the next run */
    int busy;     /* atomic: runs in progress */
    bool overlap;
} client_state;

static int64_t work(void *arg, int64_t now)
{
    (void)now;
    client_state *s = arg;
    if (__atomic_add_fetch(&s->busy, 1, __ATOMIC_SEQ_CST) > 1)
        s->overlap = true;
    usleep(1000);
    pthread_mutex_lock(&s->mu);
    s->runs++;
    s->thread = pthread_self();
    int64_t w = s->want;
    s->want = INT64_MAX;
    pthread_mutex_unlock(&s->mu);
    __atomic_sub_fetch(&s->busy, 1, __ATOMIC_SEQ_CST);
    return w;
}

static int runs_of(client_state *s)
{
    pthread_mutex_lock(&s->mu);
    int n = s->runs;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static void wait_runs(client_state *s, int n)
{
    for (int i = 0; i < 5000 && runs_of(s) < n; i++)
        usleep(1000);
    ASSERT_GE(runs_of(s), n);
}

static void test_one_service_thread(void)
{
    char *dir = test_tmpdir("delivery");
    td_engine *e = test_engine_open(dir);
    /* The engine's own clients have no timed work yet (no groups): no thread. */
    int base = delivery_threads();
    ASSERT_EQ(base, 0);
    client_state a = {.mu = PTHREAD_MUTEX_INITIALIZER, .want = INT64_MAX};
    client_state b = {.mu = PTHREAD_MUTEX_INITIALIZER, .want = INT64_MAX};
    delivery_client *ca, *cb;
    ASSERT_OK(delivery_attach(e, "a", work, &a, &ca));
    ASSERT_OK(delivery_attach(e, "b", work, &b, &cb));
    /* Attached, nothing asked: no thread, no run. */
    usleep(20000);
    ASSERT_EQ(delivery_threads(), base);
    ASSERT_EQ(runs_of(&a) + runs_of(&b), 0);
    ASSERT_OK(delivery_wake(ca, 0));
    ASSERT_OK(delivery_wake(cb, 0));
    wait_runs(&a, 1);
    wait_runs(&b, 1);
    ASSERT_EQ(delivery_threads(), base + 1);
    ASSERT(pthread_equal(a.thread, b.thread));
    /* A run asks for the next one 50 ms ahead; wakes keep coming for both meanwhile. */
    pthread_mutex_lock(&a.mu);
    a.want = td_wall_ms() + 50;
    pthread_mutex_unlock(&a.mu);
    ASSERT_OK(delivery_wake(ca, 0));
    wait_runs(&a, 3);
    for (int i = 0; i < 200; i++) {
        ASSERT_OK(delivery_wake(ca, 0));
        ASSERT_OK(delivery_wake(cb, 0));
        usleep(100);
    }
    /* A wake later than one asked changes nothing; detaching waits for a run in progress. */
    ASSERT_OK(delivery_wake(cb, td_wall_ms() + 3600000));
    delivery_detach(ca);
    int na = runs_of(&a);
    ASSERT_OK(delivery_wake(cb, 0));
    wait_runs(&b, runs_of(&b) + 1);
    ASSERT_EQ(runs_of(&a), na);
    ASSERT(!a.overlap && !b.overlap);
    ASSERT_EQ(delivery_threads(), base + 1);
    delivery_detach(cb);
    /* The engine's own clients (queue and Redis groups) leave at its close, and the thread
     * with the last of them. */
    td_engine_close(e);
    ASSERT_EQ(delivery_threads(), 0);
    test_rmrf(dir);
}

/* Writes one record to a state topic, then opens the engine again: refused, TD_ECORRUPT, with
 * the topic named in the error. */
static void refused_at_replay(state_topic_id which, const char *topic, const td_buf *key,
                              const td_buf *value)
{
    char *dir = test_tmpdir("delivery");
    td_engine *e = test_engine_open(dir);
    /* A queue group "g" on topic "t", so that an entry record of "g" is its state. */
    ASSERT_OK(td_topic_create(e, "t", 1, NULL, 0));
    ASSERT_OK(td_queue_create(e, "g", "t", NULL));
    td_event ev = {.key = key->p,
                   .key_len = key->len,
                   .value = value ? value->p : NULL,
                   .value_len = value ? value->len : 0};
    int64_t end;
    ASSERT_OK(state_append(e, which, 0, &ev, 1, &end));
    ASSERT_OK(state_wait(e, which, 0, end));
    td_engine_close(e);
    td_options o;
    td_options_init(&o);
    o.no_background = 1;
    e = NULL;
    ASSERT_EQ(td_engine_open(dir, &o, &e), TD_ECORRUPT);
    ASSERT(e == NULL);
    ASSERT_CONTAINS(td_last_error(), topic);
    test_rmrf(dir);
}

/* The one rule for both state topics: a record of a kind or version the replay does not know
 * stops the start (before, __queue_state skipped it with a warning and lost its state). */
static void test_unknown_records_refuse_the_start(void)
{
    td_buf k, v;
    td_buf_init(&k);
    td_buf_init(&v);
    /* __queue_state: a key of kind 7. */
    ASSERT_OK(state_put16(&k, 7) | state_put_str(&k, "g"));
    ASSERT_OK(state_put16(&v, 0));
    refused_at_replay(STATE_QUEUES, STATE_QUEUES_TOPIC, &k, &v);
    /* __queue_state: a group record whose value is of version 1. */
    k.len = v.len = 0;
    ASSERT_OK(state_put16(&k, 0) | state_put_str(&k, "g"));
    ASSERT_OK(state_put16(&v, 1) | state_put_str(&v, "t") | state_put_str(&v, "") |
              state_put64(&v, 1));
    refused_at_replay(STATE_QUEUES, STATE_QUEUES_TOPIC, &k, &v);
    /* __queue_state: an entry record of a state the replay does not know. */
    k.len = v.len = 0;
    ASSERT_OK(state_put16(&k, 2) | state_put_str(&k, "g") | state_put_str(&k, "t") |
              state_put32(&k, 0) | state_put64(&k, 5));
    ASSERT_OK(state_put16(&v, 0) | state_put64(&v, 1) | state_put64(&v, 1) |
              td_buf_append(&v, "\x09", 1) | state_put32(&v, 1) | state_put64(&v, 0) |
              state_put64(&v, 0) | state_put64(&v, 0) | state_put64(&v, 0) |
              td_buf_append(&v, "\x00", 1) | state_put64(&v, 0) | state_put_str(&v, NULL));
    refused_at_replay(STATE_QUEUES, STATE_QUEUES_TOPIC, &k, &v);
    /* __xgroup_state: a key of kind 9, and a pending entry value of version 3, then of version
     * 1 (a group value's version only). */
    for (int i = 0; i < 3; i++) {
        k.len = v.len = 0;
        ASSERT_OK(state_put16(&k, i ? 2 : 9) | state_put64(&k, 1) | state_put32(&k, 0) |
                  state_put32(&k, 1) | td_buf_append(&k, "g", 1) | state_put64(&k, 1) |
                  state_put64(&k, 0));
        ASSERT_OK(state_put16(&v, i == 2 ? 1
                                  : i    ? 3
                                         : 0) |
                  state_put32(&v, 1) | td_buf_append(&v, "c", 1) | state_put64(&v, 0) |
                  state_put64(&v, 1));
        refused_at_replay(STATE_XGROUPS, STATE_XGROUPS_TOPIC, &k, &v);
    }
    /* A group value of version 2 (after the entries_read counter of version 1). */
    k.len = v.len = 0;
    ASSERT_OK(state_put16(&k, 0) | state_put64(&k, 1) | state_put32(&k, 0) | state_put32(&k, 1) |
              td_buf_append(&k, "g", 1));
    ASSERT_OK(state_put16(&v, 2) | state_put64(&v, 0) | state_put64(&v, 0) | state_put64(&v, 0) |
              state_put32(&v, -1) | state_put64(&v, 0));
    refused_at_replay(STATE_XGROUPS, STATE_XGROUPS_TOPIC, &k, &v);
    td_buf_free(&k);
    td_buf_free(&v);
}

/* The high watermark of a topic's partition 0 (0 when it does not exist yet). */
static int64_t hw_of(td_engine *e, const char *topic)
{
    int64_t hw = 0;
    if (td_offset_for(e, topic, 0, TD_OFFSET_LATEST, &hw) != 0) {
        td_error_clear();
        return 0;
    }
    return hw;
}

/* A queue group and a Redis group with a queue policy, each with an event that dies at its
 * first deadline: one delivery thread copies both out, and goes with the engine. */
static void test_both_front_ends_share_one_thread(void)
{
    char *dir = test_tmpdir("delivery");
    td_engine *e = test_engine_open(dir);
    ASSERT_EQ(delivery_threads(), 0);
    ASSERT_OK(td_topic_create(e, "tq", 1, NULL, 0));
    ASSERT_OK(td_topic_create(e, "tr", 1, NULL, 0));
    td_event ev = {.value = "x", .value_len = 1, .partition = 0};
    ASSERT_OK(td_produce(e, "tq", &ev, 1, NULL));
    ASSERT_OK(td_produce(e, "tr", &ev, 1, NULL));
    td_queue_policy pol;
    td_queue_policy_init(&pol);
    pol.ack_timeout_ms = 50;
    pol.max_deliveries = 1;
    ASSERT_OK(td_queue_create(e, "gq", "tq", &pol));
    td_queue_msg *m;
    size_t n;
    ASSERT_OK(td_queue_receive(e, "gq", "c", 10, &m, &n));
    ASSERT_EQ(n, 1);
    td_queue_msgs_free(m, n);
    td_topic_ref *ref;
    ASSERT_OK(broker_topic_acquire(e, "tr", &ref));
    xstream s = {broker_topic_id(ref), 0, broker_topic_part(ref, 0)};
    uint64_t seq;
    const td_slice g = td_slice_make("gr", 2), c = td_slice_make("c", 1);
    ASSERT_OK(xgroup_create(e, &s, g, (td_sid){0, 0}, -1, &seq));
    ASSERT_OK(xgroup_set_policy(e, &s, g, &pol, &seq));
    td_sid *redo;
    size_t nredo;
    int64_t from, to;
    ASSERT_OK(
        xgroup_deliver(e, &s, g, c, 10, false, td_wall_ms(), &redo, &nredo, &from, &to, &seq));
    free(redo);
    ASSERT_EQ(to - from, 1);
    for (int i = 0; i < 5000 && (hw_of(e, "tq.dlq") < 1 || hw_of(e, "tr.dlq") < 1); i++)
        usleep(1000);
    ASSERT_EQ(hw_of(e, "tq.dlq"), 1);
    ASSERT_EQ(hw_of(e, "tr.dlq"), 1);
    ASSERT_EQ(delivery_threads(), 1);
    broker_topic_release(ref);
    td_engine_close(e);
    ASSERT_EQ(delivery_threads(), 0);
    test_rmrf(dir);
}

static int notified; /* atomic */

static void count_notify(void *arg)
{
    (void)arg;
    __atomic_add_fetch(&notified, 1, __ATOMIC_SEQ_CST);
}

/* A queue group's backoff that ends tells the receivers waiting (the HTTP long polls), by the
 * delivery thread, with no call on the group: before, only a deadline passing did. */
static void test_backoff_end_wakes_receivers(void)
{
    char *dir = test_tmpdir("delivery");
    td_engine *e = test_engine_open(dir);
    ASSERT_OK(td_topic_create(e, "t", 1, NULL, 0));
    td_event ev = {.value = "x", .value_len = 1, .partition = 0};
    ASSERT_OK(td_produce(e, "t", &ev, 1, NULL));
    ASSERT_OK(td_queue_create(e, "g", "t", NULL));
    queue_set_notify(e, count_notify, NULL);
    td_queue_msg *m;
    size_t n;
    ASSERT_OK(td_queue_receive(e, "g", "c", 1, &m, &n));
    ASSERT_EQ(n, 1);
    const char *id = m[0].id;
    int res;
    ASSERT_OK(td_queue_nack(e, "g", &id, 1, 300, NULL, &res));
    ASSERT_EQ(res, 0);
    td_queue_msgs_free(m, n);
    int after_nack = __atomic_load_n(&notified, __ATOMIC_SEQ_CST);
    int64_t t0 = td_wall_ms();
    while (__atomic_load_n(&notified, __ATOMIC_SEQ_CST) == after_nack && td_wall_ms() - t0 < 5000)
        usleep(5000);
    ASSERT(__atomic_load_n(&notified, __ATOMIC_SEQ_CST) > after_nack);
    ASSERT_GE(td_wall_ms() - t0, 250); /* not before the backoff ended */
    /* And the event is there for the receive that follows. */
    ASSERT_OK(td_queue_receive(e, "g", "c", 1, &m, &n));
    ASSERT_EQ(n, 1);
    ASSERT_EQ(m[0].deliveries, 2);
    td_queue_msgs_free(m, n);
    queue_set_notify(e, NULL, NULL);
    td_engine_close(e);
    test_rmrf(dir);
}

TEST_MAIN(TEST(test_backoff_grows_to_its_cap), TEST(test_retry_at_and_dead),
          TEST(test_record_batches), TEST(test_record_appends), TEST(test_one_service_thread),
          TEST(test_unknown_records_refuse_the_start), TEST(test_both_front_ends_share_one_thread),
          TEST(test_backoff_end_wakes_receivers))
