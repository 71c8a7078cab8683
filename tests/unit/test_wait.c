/* Unit tests for net/wait.c, the mechanism of readers that wait: a one-loop group serves a tiny
 * line protocol whose connections park waiters ("P id timeout_ms period_ms"); the test thread
 * makes items available and wakes the set, as a partition's hook would, and reads the answers
 * ("G id": got an item, "T id": timed out). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stddef.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/base.h"
#include "net/net.h"
#include "test.h"

#define MAX_IDS 16

enum { MODE_PLAIN, MODE_REPARK, MODE_KILLER };

typedef struct tconn {
    net_conn *c;
    net_waiter w;
    int id, mode;
    int64_t timeout, period;
} tconn;

static net_waitset *g_set;
static int g_items;            /* atomic: what the waiters wait for */
static int g_retries[MAX_IDS]; /* atomic: non-final retries per id */
static int g_finals[MAX_IDS];  /* atomic: final retries per id */
static int g_closed[MAX_IDS];  /* atomic: connections closed per id */
static net_conn *g_victim;     /* loop thread: what a MODE_KILLER retry closes */

/* What the loop thread counted, read by the test's thread (which synchronises with the loop
 * through sockets, which ThreadSanitizer cannot see). */
#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_SEQ_CST)

static bool take_item(void)
{
    int n = __atomic_load_n(&g_items, __ATOMIC_SEQ_CST);
    while (n > 0)
        if (__atomic_compare_exchange_n(&g_items, &n, n - 1, false, __ATOMIC_SEQ_CST,
                                        __ATOMIC_SEQ_CST))
            return true;
    return false;
}

static void answer(tconn *t, char what)
{
    char line[16];
    int n = snprintf(line, sizeof(line), "%c %d\n", what, t->id);
    net_conn_write(t->c, line, (size_t)n);
    net_conn_flush(t->c);
}

static bool t_retry(net_waiter *w, bool final)
{
    tconn *t = (tconn *)((char *)w - offsetof(tconn, w));
    if (final) {
        ASSERT(!net_wait_parked(w));
        __atomic_add_fetch(&g_finals[t->id], 1, __ATOMIC_SEQ_CST);
        answer(t, 'T');
        return true;
    }
    ASSERT(net_wait_parked(w));
    __atomic_add_fetch(&g_retries[t->id], 1, __ATOMIC_SEQ_CST);
    if (t->mode == MODE_KILLER && g_victim) {
        net_conn *v = g_victim;
        g_victim = NULL;
        net_conn_close(v, true); /* frees the victim's waiter (on_close) */
    }
    if (t->mode == MODE_KILLER)
        return false;
    if (!take_item())
        return false;
    net_wait_cancel(w);
    answer(t, 'G');
    /* Like a Redis client whose next command blocks again: parked anew during the walk. */
    if (t->mode == MODE_REPARK)
        ASSERT_OK(net_wait_park(g_set, w, t->c, t->timeout, t->period));
    return true;
}

static int t_open(net_conn *c)
{
    tconn *t = calloc(1, sizeof(*t));
    if (!t)
        return -1;
    t->c = c;
    net_waiter_init(&t->w, t_retry);
    net_conn_set_data(c, t);
    return 0;
}

static ssize_t t_data(net_conn *c, uint8_t *p, size_t n)
{
    tconn *t = net_conn_data(c);
    uint8_t *nl = memchr(p, '\n', n);
    if (!nl)
        return 0;
    char cmd = 0;
    long long id = 0, timeout = 0, period = 0;
    *nl = 0;
    if (sscanf((const char *)p, "%c %lld %lld %lld", &cmd, &id, &timeout, &period) != 4 || id < 0 ||
        id >= MAX_IDS)
        return -1;
    t->id = (int)id;
    t->mode = cmd == 'R' ? MODE_REPARK : cmd == 'K' ? MODE_KILLER : MODE_PLAIN;
    t->timeout = timeout;
    t->period = period;
    if (cmd == 'V')
        g_victim = c;
    if (take_item()) {
        answer(t, 'G');
    } else {
        ASSERT_OK(net_wait_park(g_set, &t->w, c, timeout, period));
        /* The rule of net_wait_park: once more after parking. */
        if (take_item()) {
            net_wait_cancel(&t->w);
            answer(t, 'G');
        }
    }
    return nl - p + 1;
}

static void t_close(net_conn *c)
{
    tconn *t = net_conn_data(c);
    /* The connection's waiters were cancelled before this call. */
    ASSERT(!net_wait_parked(&t->w));
    __atomic_add_fetch(&g_closed[t->id], 1, __ATOMIC_SEQ_CST);
    free(t);
}

static const net_proto t_proto = {
    .name = "wait-test",
    .on_open = t_open,
    .on_data = t_data,
    .on_close = t_close,
    .max_input = 4096,
    .out_limit = 1 << 20,
};

static net_group *g_group;
static int g_port;

static void setup_loops(int loops)
{
    memset(g_retries, 0, sizeof(g_retries));
    memset(g_finals, 0, sizeof(g_finals));
    memset(g_closed, 0, sizeof(g_closed));
    g_items = 0;
    g_victim = NULL;
    ASSERT_OK(net_waitset_create(&g_set));
    net_config cfg = {.loops = loops, .shutdown_grace_ms = 200};
    ASSERT_OK(net_group_create(&cfg, &g_group));
    ASSERT_OK(net_group_listen(g_group, "127.0.0.1", 0, &t_proto, NULL, NULL, &g_port));
    ASSERT_OK(net_group_start(g_group));
}

static void setup(void)
{
    setup_loops(1);
}

static void teardown(void)
{
    net_group_stop(g_group);
    net_group_destroy(g_group);
    ASSERT_EQ(net_waitset_count(g_set), 0);
    net_waitset_destroy(g_set);
}

static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

static void say(int fd, const char *line)
{
    ASSERT_EQ(write(fd, line, strlen(line)), (ssize_t)strlen(line));
}

/* The next answer line within ms ("" if none came). */
static void hear(int fd, int ms, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = 0;
    while (n + 1 < cap) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, ms) != 1)
            break;
        char ch;
        if (read(fd, &ch, 1) != 1)
            break;
        if (ch == '\n')
            break;
        out[n++] = ch;
        out[n] = 0;
    }
}

/* Polls until the set holds n waiters (bounded: 5 s). */
static void await_count(size_t n)
{
    for (int i = 0; i < 500 && net_waitset_count(g_set) != n; i++)
        usleep(10000);
    ASSERT_EQ(net_waitset_count(g_set), n);
}

static void await_int(int *v, int want)
{
    for (int i = 0; i < 500 && __atomic_load_n(v, __ATOMIC_SEQ_CST) != want; i++)
        usleep(10000);
    ASSERT_EQ(__atomic_load_n(v, __ATOMIC_SEQ_CST), want);
}

/* Runs on the loop, after every task posted before it. */
static void signal_task(void *arg)
{
    sem_post(arg);
}

static void hold_task(void *arg)
{
    sem_wait(arg);
}

/* Waits until the loop has run every task posted so far. */
static void loop_barrier(void)
{
    sem_t done;
    sem_init(&done, 0, 0);
    ASSERT_OK(net_loop_post(net_group_loop(g_group, 0), signal_task, &done));
    sem_wait(&done);
    sem_destroy(&done);
}

/* A wake-up retries a parked waiter on its loop, which answers once the item is there. */
static void test_wake_answers(void)
{
    setup();
    int fd = dial();
    say(fd, "P 1 -1 0\n");
    await_count(1);
    net_wait_wake(g_set); /* nothing yet: retried, still waits */
    await_int(&g_retries[1], 1);
    ASSERT_EQ(net_waitset_count(g_set), 1);
    __atomic_store_n(&g_items, 1, __ATOMIC_SEQ_CST);
    net_wait_wake_hook(g_set);
    char line[32];
    hear(fd, 5000, line, sizeof(line));
    ASSERT_STR_EQ(line, "G 1");
    ASSERT_EQ(net_waitset_count(g_set), 0);
    ASSERT_EQ(LOAD(g_finals[1]), 0);
    close(fd);
    teardown();
}

/* Wakes coalesce: however many come while the loop is busy, one task retries each waiter once;
 * and no task at all is posted while nobody waits. */
static void test_wakes_coalesce(void)
{
    setup();
    int a = dial(), b = dial();
    say(a, "P 2 -1 0\n");
    say(b, "P 3 -1 0\n");
    await_count(2);
    sem_t hold;
    sem_init(&hold, 0, 0);
    ASSERT_OK(net_loop_post(net_group_loop(g_group, 0), hold_task, &hold));
    for (int i = 0; i < 1000; i++)
        net_wait_wake(g_set);
    sem_post(&hold);
    loop_barrier();
    ASSERT_EQ(LOAD(g_retries[2]), 1);
    ASSERT_EQ(LOAD(g_retries[3]), 1);
    sem_destroy(&hold);
    close(a);
    close(b);
    await_count(0);
    for (int i = 0; i < 100; i++)
        net_wait_wake(g_set);
    loop_barrier();
    ASSERT_EQ(LOAD(g_retries[2]) + LOAD(g_retries[3]), 2);
    teardown();
}

/* The deadline: the waiter is unparked and retried a last time (final), no sooner. */
static void test_deadline(void)
{
    setup();
    int fd = dial();
    int64_t t0 = td_mono_ns();
    say(fd, "P 4 150 0\n");
    char line[32];
    hear(fd, 5000, line, sizeof(line));
    ASSERT_STR_EQ(line, "T 4");
    ASSERT_GE((td_mono_ns() - t0) / 1000000, 150);
    ASSERT_EQ(LOAD(g_finals[4]), 1);
    ASSERT_EQ(LOAD(g_retries[4]), 0);
    ASSERT_EQ(net_waitset_count(g_set), 0);
    close(fd);
    teardown();
}

/* A period retries without wake-ups (what falls due by the clock) until the deadline, and an
 * item found by a periodic retry answers before it. */
static void test_period(void)
{
    setup();
    int fd = dial();
    say(fd, "P 5 400 50\n");
    char line[32];
    hear(fd, 5000, line, sizeof(line));
    ASSERT_STR_EQ(line, "T 5");
    ASSERT_GE(LOAD(g_retries[5]), 3);
    ASSERT_EQ(LOAD(g_finals[5]), 1);
    say(fd, "P 6 10000 50\n");
    await_int(&g_retries[6], 1);
    __atomic_store_n(&g_items, 1, __ATOMIC_SEQ_CST); /* no wake: the period finds it */
    hear(fd, 5000, line, sizeof(line));
    ASSERT_STR_EQ(line, "G 6");
    ASSERT_EQ(LOAD(g_finals[6]), 0);
    close(fd);
    teardown();
}

/* A connection that closes cancels its waiters (before on_close frees them): no retry reaches
 * them afterwards. */
static void test_close_cancels(void)
{
    setup();
    int a = dial(), b = dial();
    say(a, "P 7 60000 0\n");
    say(b, "P 8 -1 0\n");
    await_count(2);
    close(a);
    await_int(&g_closed[7], 1);
    ASSERT_EQ(net_waitset_count(g_set), 1);
    net_wait_wake(g_set);
    loop_barrier();
    ASSERT_EQ(LOAD(g_retries[7]), 0);
    ASSERT_EQ(LOAD(g_retries[8]), 1);
    ASSERT_EQ(LOAD(g_finals[7]), 0);
    close(b);
    await_count(0);
    teardown();
}

/* The walk survives what retries do: one closes the connection of the waiter after it (freed at
 * once: a walk that had kept a pointer to it would use it), one answers and parks again (not
 * retried twice in one pass). */
static void test_walk_survives_retries(void)
{
    setup();
    int v = dial(), r = dial(), k = dial();
    say(r, "R 10 -1 0\n");
    await_count(1);
    say(v, "V 9 -1 0\n");
    await_count(2);
    say(k, "K 11 -1 0\n"); /* parked last: walked first, and closes 9, the next one */
    await_count(3);
    __atomic_store_n(&g_items, 1, __ATOMIC_SEQ_CST); /* taken by 10 (11 takes none) */
    net_wait_wake(g_set);
    char line[32];
    hear(r, 5000, line, sizeof(line));
    ASSERT_STR_EQ(line, "G 10");
    loop_barrier();
    ASSERT_EQ(LOAD(g_closed[9]), 1);
    ASSERT_EQ(LOAD(g_retries[9]), 0);
    ASSERT_EQ(LOAD(g_retries[10]), 1);
    ASSERT_EQ(LOAD(g_retries[11]), 1);
    ASSERT_EQ(net_waitset_count(g_set), 2); /* 10 parked again, and 11 */
    net_wait_wake(g_set);
    loop_barrier();
    ASSERT_EQ(LOAD(g_retries[10]), 2);
    ASSERT_EQ(LOAD(g_retries[11]), 2);
    close(v);
    close(r);
    close(k);
    await_count(0);
    teardown();
}

/* Waiters on several loops: one wake reaches every loop that has some (each through its own
 * list, made at the set's first park for all the group's loops). */
static void test_several_loops(void)
{
    setup_loops(3);
    int fds[6];
    char cmd[32], line[32];
    for (int i = 0; i < 6; i++) {
        fds[i] = dial();
        snprintf(cmd, sizeof(cmd), "P %d -1 0\n", i);
        say(fds[i], cmd);
    }
    await_count(6);
    __atomic_store_n(&g_items, 6, __ATOMIC_SEQ_CST);
    net_wait_wake(g_set);
    for (int i = 0; i < 6; i++) {
        hear(fds[i], 5000, line, sizeof(line));
        snprintf(cmd, sizeof(cmd), "G %d", i);
        ASSERT_STR_EQ(line, cmd);
        close(fds[i]);
    }
    ASSERT_EQ(net_waitset_count(g_set), 0);
    teardown();
}

/* Stopping the loop ends timed waits with their final retry. */
static void test_stop_ends_waits(void)
{
    setup();
    int fd = dial();
    say(fd, "P 12 60000 0\n");
    await_count(1);
    net_group_stop(g_group);
    ASSERT_EQ(LOAD(g_finals[12]), 1);
    net_group_destroy(g_group);
    ASSERT_EQ(net_waitset_count(g_set), 0);
    net_waitset_destroy(g_set);
    close(fd);
}

TEST_MAIN(TEST(test_wake_answers), TEST(test_wakes_coalesce), TEST(test_deadline),
          TEST(test_period), TEST(test_close_cancels), TEST(test_walk_survives_retries),
          TEST(test_several_loops), TEST(test_stop_ends_waits))
