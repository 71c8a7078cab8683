/* Unit tests for net/: the budget of buffered bytes (its queues, fairness and deadlock rule)
 * and the recognition of a peer's protocol from its first bytes. */
#include <pthread.h>

#include "net/net.h"
#include "net/net_int.h"
#include "test.h"

/* A waiter that records its wake-ups (the connection's loop would run a task). */
typedef struct tw {
    net_bwait w;
    int woken; /* atomic */
} tw;

static void tw_wake(net_bwait *w)
{
    __atomic_add_fetch(&((tw *)w)->woken, 1, __ATOMIC_SEQ_CST);
}

static tw waiter(void)
{
    tw t = {.w = {.wake = tw_wake}};
    return t;
}

static size_t take(net_budget *b, tw *t)
{
    bool queued;
    return budget_take(b, &t->w, &queued);
}

static void test_budget_try_and_release(void)
{
    net_budget b;
    budget_init(&b, 100);
    ASSERT(budget_try(&b, 60));
    ASSERT(!budget_try(&b, 41));
    ASSERT(budget_try(&b, 40));
    ASSERT(budget_over(&b));
    ASSERT(!budget_try(&b, 1));
    ASSERT(budget_try(&b, 0));
    budget_release(&b, 50);
    ASSERT(!budget_over(&b));
    /* Output counts against the same limit but is never refused. */
    budget_out(&b, 70);
    ASSERT(budget_over(&b));
    ASSERT(!budget_try(&b, 1));
    budget_out(&b, -70);
    ASSERT(budget_try(&b, 50));
    ASSERT_EQ(b.in_used, 100);
    budget_release(&b, 100);
    budget_destroy(&b);
}

/* Waiters are served in arrival order: a small request behind a large one waits too, and
 * nobody passes them with budget_try. */
static void test_budget_first_come_first_served(void)
{
    net_budget b;
    budget_init(&b, 100);
    ASSERT(budget_try(&b, 90));
    tw a = waiter(), c = waiter();
    budget_wait(&b, &a.w, 50, 0);
    budget_wait(&b, &c.w, 5, 0);
    ASSERT_EQ(a.woken + c.woken, 0);
    ASSERT(!budget_try(&b, 5)); /* room for 5 is there, but two wait before */
    budget_release(&b, 30);     /* 60 used: room for c, not for a */
    ASSERT_EQ(a.woken + c.woken, 0);
    budget_release(&b, 20); /* 40 used: a fits (90), then c (95) */
    ASSERT_EQ(a.woken, 1);
    ASSERT_EQ(c.woken, 1);
    ASSERT_EQ(take(&b, &a), 50);
    ASSERT_EQ(take(&b, &c), 5);
    ASSERT_EQ(take(&b, &a), 0); /* taken once */
    ASSERT_EQ(b.in_used, 95);
    ASSERT_EQ(b.nwait, 0);
    budget_release(&b, 95);
    budget_destroy(&b);
}

/* Output waiters (connections holding unsent output while the budget is exhausted) are woken
 * as soon as the total is under the limit, without queuing behind input waiters. */
static void test_budget_output_waiters(void)
{
    net_budget b;
    budget_init(&b, 100);
    budget_out(&b, 120);
    tw o = waiter(), in = waiter();
    budget_wait(&b, &in.w, 60, 0);
    budget_wait(&b, &o.w, 0, 0);
    ASSERT_EQ(o.woken + in.woken, 0);
    budget_out(&b, -30); /* 90 used */
    ASSERT_EQ(o.woken, 1);
    ASSERT_EQ(in.woken, 0);
    budget_out(&b, -90);
    ASSERT_EQ(in.woken, 1);
    ASSERT_EQ(take(&b, &in), 60);
    budget_release(&b, 60);
    budget_destroy(&b);
}

/* Two connections each hold part of a request and wait for more: every input byte belongs to
 * a waiter, so the head is granted beyond the limit; once it gives its bytes back the other
 * fits. While a connection that does not wait holds input, nothing is granted beyond. */
static void test_budget_deadlock_rule(void)
{
    net_budget b;
    budget_init(&b, 100);
    ASSERT(budget_try(&b, 40));
    ASSERT(budget_try(&b, 60));
    tw x = waiter(), y = waiter();
    budget_wait(&b, &x.w, 30, 40);
    ASSERT_EQ(x.woken, 0); /* y holds 60 and does not wait: it may still give it back */
    budget_wait(&b, &y.w, 20, 60);
    ASSERT_EQ(x.woken, 1); /* now everything is held by waiters: x goes first */
    ASSERT_EQ(y.woken, 0);
    ASSERT_EQ(b.forced, 1);
    ASSERT_EQ(take(&b, &x), 30);
    ASSERT_EQ(b.in_used, 130);
    budget_release(&b, 70); /* x completes its request */
    ASSERT_EQ(y.woken, 1);
    ASSERT_EQ(b.forced, 1);
    ASSERT_EQ(take(&b, &y), 20);
    budget_release(&b, 80);
    ASSERT_EQ(b.in_used, 0);
    /* Waiters that hold nothing (they asked for whole requests) wait for output to drain:
     * that is no deadlock, and nothing goes beyond the limit. */
    budget_out(&b, 100);
    tw z = waiter();
    budget_wait(&b, &z.w, 10, 0);
    ASSERT_EQ(z.woken, 0);
    ASSERT_EQ(b.forced, 1);
    budget_out(&b, -100);
    ASSERT_EQ(z.woken, 1);
    ASSERT_EQ(take(&b, &z), 10);
    budget_release(&b, 10);
    budget_destroy(&b);
}

/* A waiter that leaves (its connection closed) gives back what it was granted, and lets those
 * behind it through. Queuing again keeps its place and updates its need. */
static void test_budget_cancel(void)
{
    net_budget b;
    budget_init(&b, 100);
    ASSERT(budget_try(&b, 100));
    tw a = waiter(), c = waiter();
    budget_wait(&b, &a.w, 80, 0);
    budget_wait(&b, &c.w, 15, 0);
    budget_wait(&b, &a.w, 85, 0); /* asks for more, keeps its place */
    ASSERT_EQ(b.nwait, 2);
    budget_release(&b, 90); /* 10 used: room for a (85) first, then not for c */
    ASSERT_EQ(a.woken, 1);
    ASSERT_EQ(c.woken, 0);
    ASSERT_EQ(b.in_used, 95);
    budget_cancel(&b, &a.w); /* closed before it took its 85: c fits now */
    ASSERT_EQ(c.woken, 1);
    ASSERT_EQ(b.in_used, 25);
    budget_wait(&b, &a.w, 75, 0);
    ASSERT_EQ(a.woken, 2);
    budget_cancel(&b, &a.w);
    ASSERT_EQ(b.nwait, 0);
    ASSERT_EQ(take(&b, &c), 15);
    budget_release(&b, 25);
    ASSERT_EQ(b.in_used, 0);
    budget_destroy(&b);
}

/* Threads charge, wait and give back at once: in the end every byte is back and every waiter
 * was woken (ThreadSanitizer checks the locking). */
typedef struct stress {
    net_budget *b;
    int seed;
} stress;

static void *stress_main(void *arg)
{
    stress *s = arg;
    uint32_t x = (uint32_t)s->seed;
    tw t = waiter();
    for (int i = 0; i < 20000; i++) {
        x = x * 1103515245u + 12345u;
        size_t n = 1 + (x >> 16) % 40;
        if ((x >> 8) % 4 == 0) {
            budget_out(s->b, (int64_t)n);
            budget_out(s->b, -(int64_t)n);
            continue;
        }
        if (!budget_try(s->b, n)) {
            int before = __atomic_load_n(&t.woken, __ATOMIC_SEQ_CST);
            budget_wait(s->b, &t.w, n, 0);
            while (__atomic_load_n(&t.woken, __ATOMIC_SEQ_CST) == before)
                sched_yield();
            ASSERT_EQ(take(s->b, &t), n);
        }
        budget_release(s->b, n);
    }
    return NULL;
}

static void test_budget_threads(void)
{
    net_budget b;
    budget_init(&b, 100);
    pthread_t th[4];
    stress s[4];
    for (int i = 0; i < 4; i++) {
        s[i] = (stress){&b, i + 1};
        ASSERT_EQ(pthread_create(&th[i], NULL, stress_main, &s[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    ASSERT_EQ(b.in_used, 0);
    ASSERT_EQ(b.out_used, 0);
    ASSERT_EQ(b.nwait, 0);
    budget_destroy(&b);
}

static net_sniff_kind sniff(const char *s)
{
    return net_sniff((const uint8_t *)s, strlen(s));
}

static void test_sniff(void)
{
    const uint8_t hello[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03};
    ASSERT_EQ(net_sniff(hello, sizeof(hello)), NET_SNIFF_TLS);
    ASSERT_EQ(net_sniff(hello, 2), NET_SNIFF_TLS);
    ASSERT_EQ(net_sniff(hello, 1), NET_SNIFF_UNKNOWN);
    ASSERT_EQ(sniff("GET / HTTP/1.1\r\n"), NET_SNIFF_HTTP);
    ASSERT_EQ(sniff("GET "), NET_SNIFF_HTTP);
    ASSERT_EQ(sniff("POST"), NET_SNIFF_HTTP);
    ASSERT_EQ(sniff("POST /v1/topics HTTP/1.1"), NET_SNIFF_HTTP);
    ASSERT_EQ(sniff("PUT /x HTTP/1.1"), NET_SNIFF_HTTP);
    ASSERT_EQ(sniff("HEAD / HTTP/1.0"), NET_SNIFF_HTTP);
    ASSERT_EQ(sniff("DELETE /v1/topics/a HTTP/1.1"), NET_SNIFF_HTTP);
    ASSERT_EQ(sniff("OPTI"), NET_SNIFF_HTTP);
    ASSERT_EQ(sniff("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), NET_SNIFF_HTTP);
    ASSERT_EQ(sniff("GE"), NET_SNIFF_UNKNOWN); /* too short to tell */
    ASSERT_EQ(sniff("GETX"), NET_SNIFF_UNKNOWN);
    ASSERT_EQ(sniff("POSTX"), NET_SNIFF_UNKNOWN);
    ASSERT_EQ(sniff("get / HTTP/1.1"), NET_SNIFF_UNKNOWN);
    ASSERT_EQ(sniff("*1\r\n$4\r\nPING\r\n"), NET_SNIFF_RESP);
    ASSERT_EQ(sniff("*x"), NET_SNIFF_UNKNOWN);
    /* A Kafka frame: size prefix, then ApiVersions v3. */
    const uint8_t kafka[] = {0, 0, 0, 10, 0, 18, 0, 3, 0, 0, 0, 1, 0, 0};
    ASSERT_EQ(net_sniff(kafka, sizeof(kafka)), NET_SNIFF_UNKNOWN);
    ASSERT_EQ(net_sniff(NULL, 0), NET_SNIFF_UNKNOWN);
    ASSERT_CONTAINS(net_sniff_describe(NET_SNIFF_TLS), "TLS");
    ASSERT_CONTAINS(net_sniff_describe(NET_SNIFF_HTTP), "HTTP");
    ASSERT_CONTAINS(net_sniff_describe(NET_SNIFF_RESP), "Redis");
}

TEST_MAIN(TEST(test_budget_try_and_release), TEST(test_budget_first_come_first_served),
          TEST(test_budget_output_waiters), TEST(test_budget_deadlock_rule),
          TEST(test_budget_cancel), TEST(test_budget_threads), TEST(test_sniff))
