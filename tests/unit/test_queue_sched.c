/*
 * test_queue_sched.c: delayed delivery in queue groups (broker/queue_sched.c) through the
 * embedded API: due times from the headers and the topic's default, nothing delivered before
 * its time, scheduled events across a reopen (also those that fell due meanwhile), far events
 * rescanned with a short horizon (also across a reopen in the middle of a rescan), per-key
 * ordering, and the limit on scheduled events.
 */
#include <time.h>
#include <unistd.h>

#include "broker/queue_int.h"
#include "test.h"
#include "tidings.h"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static td_engine *open_with(const char *dir, int64_t horizon, int64_t max)
{
    td_options o;
    td_options_init(&o);
    o.no_background = 1;
    o.queue_schedule_horizon_ms = horizon;
    o.queue_scheduled_max = max;
    td_engine *e;
    ASSERT_OK(td_engine_open(dir, &o, &e));
    return e;
}

/* Topic t (one partition; delivery.delay.ms `delay` unless NULL) and group g on it. */
static void group_on(td_engine *e, const char *delay, int ordering)
{
    td_config_entry c = {"delivery.delay.ms", delay};
    ASSERT_OK(td_topic_create(e, "t", 1, delay ? &c : NULL, delay ? 1 : 0));
    td_queue_policy p;
    td_queue_policy_init(&p);
    p.ordering = ordering;
    ASSERT_OK(td_queue_create(e, "g", "t", &p));
}

/* An event "v<i>" with key (may be NULL) and a header (name NULL: none). */
static void produce(td_engine *e, const char *topic, const char *key, int i, const char *hname,
                    int64_t hval)
{
    char v[32], h[32];
    snprintf(v, sizeof(v), "v%d", i);
    snprintf(h, sizeof(h), "%lld", (long long)hval);
    td_header hd = {hname, hname ? strlen(hname) : 0, h, strlen(h)};
    td_event ev = {.key = key,
                   .key_len = key ? strlen(key) : 0,
                   .value = v,
                   .value_len = strlen(v),
                   .headers = hname ? &hd : NULL,
                   .header_count = hname ? 1 : 0,
                   .partition = 0};
    ASSERT_OK(td_produce(e, topic, &ev, 1, NULL));
}

/* Events "v0".."v<n-1>" in one append, each with a tidings-deliver-at header of due[i] (none
 * where due[i] is 0): one append, so that their times lie ahead however slow the host. */
static void produce_due(td_engine *e, const int64_t *due, int n)
{
    td_event *ev = calloc((size_t)n, sizeof(*ev));
    td_header *hd = calloc((size_t)n, sizeof(*hd));
    char(*v)[32] = calloc((size_t)n, sizeof(*v)), (*h)[32] = calloc((size_t)n, sizeof(*h));
    ASSERT(ev && hd && v && h);
    for (int i = 0; i < n; i++) {
        snprintf(v[i], sizeof(v[i]), "v%d", i);
        snprintf(h[i], sizeof(h[i]), "%lld", (long long)due[i]);
        hd[i] = (td_header){"tidings-deliver-at", 18, h[i], strlen(h[i])};
        ev[i] = (td_event){.value = v[i],
                           .value_len = strlen(v[i]),
                           .headers = due[i] ? &hd[i] : NULL,
                           .header_count = due[i] ? 1 : 0,
                           .partition = 0};
    }
    ASSERT_OK(td_produce(e, "t", ev, (size_t)n, NULL));
    free(ev), free(hd), free(v), free(h);
}

static int vnum(const td_queue_msg *m)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%.*s", (int)m->event.value_len, (const char *)m->event.value);
    return atoi(buf + 1);
}

/* Receives and acks for up to ms, recording when each value arrived in got[] (0: not yet);
 * returns how many arrived (a repeat counts in *dups). */
static int collect(td_engine *e, const char *g, int64_t ms, int64_t *got, int n, int *dups)
{
    int total = 0;
    int64_t end = now_ms() + ms;
    while (now_ms() < end) {
        td_queue_msg *m;
        size_t k = 0;
        ASSERT_OK(td_queue_receive(e, g, "c", 1000, &m, &k));
        int64_t t = now_ms();
        for (size_t i = 0; i < k; i++) {
            int v = vnum(&m[i]);
            ASSERT(v >= 0 && v < n);
            if (got[v])
                (*dups)++;
            else
                got[v] = t, total++;
            int r = 99;
            const char *id = m[i].id;
            ASSERT_OK(td_queue_ack(e, g, &id, 1, &r));
            ASSERT_EQ(r, 0);
        }
        td_queue_msgs_free(m, k);
        if (!k)
            usleep(2000);
    }
    return total;
}

static void test_due_of(void)
{
    td_header h[2] = {{"x", 1, "1", 1}, {"tidings-deliver-at", 18, "1700000000000", 13}};
    td_event ev = {.headers = h, .header_count = 2, .timestamp_ms = 5000};
    ASSERT_EQ(qsched_due_of(&ev, 0, NULL), 1700000000000LL);
    h[1] = (td_header){"Tidings-Delay-Ms", 16, "250", 3}; /* names in any case */
    ASSERT_EQ(qsched_due_of(&ev, 99999, NULL), 5250);
    h[1] = (td_header){"tidings-delay-ms", 16, "0", 1}; /* its own: at once, not the default */
    ASSERT_EQ(qsched_due_of(&ev, 99999, NULL), 0);
    h[1] = (td_header){"tidings-delay-ms", 16, "-7", 2};
    ASSERT_EQ(qsched_due_of(&ev, 99999, NULL), 0);
    h[1] = (td_header){"tidings-delay-ms", 16, "12x", 3}; /* does not parse: the default */
    ASSERT_EQ(qsched_due_of(&ev, 100, NULL), 5100);
    h[1] = (td_header){"tidings-deliver-at", 18, "1234567890123456789", 19}; /* too long */
    ASSERT_EQ(qsched_due_of(&ev, 0, NULL), 0);
    h[1] = (td_header){"tidings-deliver-at", 18, NULL, 0}; /* a null value */
    ASSERT_EQ(qsched_due_of(&ev, 0, NULL), 0);
    ev.header_count = 1;
    ASSERT_EQ(qsched_due_of(&ev, 0, NULL), 0);
    ASSERT_EQ(qsched_due_of(&ev, 40, NULL), 5040);
}

static void test_scheduled_across_reopen(void)
{
    char *dir = test_tmpdir("qsched-reopen");
    td_engine *e = open_with(dir, 0, 0);
    group_on(e, NULL, TD_QUEUE_UNORDERED);
    enum { N = 40 };
    int64_t due[N], got[N] = {0}, t0 = now_ms();
    for (int i = 0; i < N; i++)
        due[i] = i % 4 == 0 ? 0 : t0 + 1000 + 25 * i; /* every fourth: at once */
    produce_due(e, due, N);
    int dups = 0;
    ASSERT_EQ(collect(e, "g", 50, got, N, &dups), N / 4);
    td_queue_info info;
    ASSERT_OK(td_queue_describe(e, "g", &info));
    ASSERT_EQ(info.scheduled, N - N / 4);
    ASSERT_EQ(info.depth, 0); /* scheduled events are not pending entries */
    ASSERT_EQ(info.next_scheduled_ms, due[1]);
    /* Some fall due, then the engine closes (and stays closed past others' times). */
    while (now_ms() < t0 + 1000 + 25 * 12)
        collect(e, "g", 10, got, N, &dups);
    td_engine_close(e);
    usleep(200000);
    e = open_with(dir, 0, 0);
    ASSERT_OK(td_queue_describe(e, "g", &info));
    int left = 0;
    for (int i = 0; i < N; i++)
        left += !got[i];
    ASSERT(info.scheduled > 0);
    ASSERT_EQ(info.scheduled, left);
    collect(e, "g", 1500, got, N, &dups);
    for (int i = 0; i < N; i++) {
        ASSERT(got[i] > 0);
        ASSERT(got[i] >= due[i]); /* never early */
    }
    ASSERT_EQ(dups, 0);
    ASSERT_OK(td_queue_describe(e, "g", &info));
    ASSERT_EQ(info.scheduled, 0);
    ASSERT_EQ(info.next_scheduled_ms, -1);
    td_engine_close(e);
    test_rmrf(dir);
}

/* With a 100 ms horizon, events due 1.5 to 2.5 s ahead are far: nothing of them in memory
 * until a rescan, which the reopen interrupts; every one comes, once, at its time. */
static void test_far_events_rescanned(void)
{
    char *dir = test_tmpdir("qsched-far");
    td_engine *e = open_with(dir, 100, 0);
    group_on(e, NULL, TD_QUEUE_UNORDERED);
    enum { N = 300 };
    int64_t due[N], got[N] = {0}, t0 = now_ms();
    for (int i = 0; i < N; i++)
        due[i] = t0 + 1500 + (i * 7919) % 1000;
    produce_due(e, due, N);
    int dups = 0;
    ASSERT_EQ(collect(e, "g", 30, got, N, &dups), 0);
    td_queue_info info;
    ASSERT_OK(td_queue_describe(e, "g", &info));
    ASSERT_EQ(info.scheduled, 0); /* all far */
    int peak = 0;
    while (now_ms() < t0 + 1900) {
        collect(e, "g", 10, got, N, &dups);
        ASSERT_OK(td_queue_describe(e, "g", &info));
        peak = info.scheduled > peak ? (int)info.scheduled : peak;
    }
    ASSERT(peak > 0 && peak < N / 2); /* about two horizons' worth of a second's events */
    td_engine_close(e);
    e = open_with(dir, 100, 0);
    collect(e, "g", 1200, got, N, &dups);
    for (int i = 0; i < N; i++) {
        ASSERT(got[i] > 0);
        ASSERT(got[i] >= due[i]);
    }
    ASSERT_EQ(dups, 0);
    td_engine_close(e);
    test_rmrf(dir);
}

static void test_topic_default_and_key_order(void)
{
    char *dir = test_tmpdir("qsched-key");
    td_engine *e = open_with(dir, 0, 0);
    group_on(e, "1000", TD_QUEUE_BY_KEY);
    int64_t t0 = now_ms();
    produce(e, "t", "k", 0, NULL, 0);               /* the default: 1 s */
    produce(e, "t", "k", 1, "tidings-delay-ms", 0); /* its own: at once */
    td_queue_msg *m;
    size_t n = 0;
    ASSERT_OK(td_queue_receive(e, "g", "c", 10, &m, &n));
    ASSERT_EQ(n, 1);
    ASSERT_EQ(vnum(&m[0]), 1);
    /* v0 falls due while v1 of its key is out: held, not delivered beside it. */
    while (now_ms() < t0 + 1100)
        usleep(10000);
    td_queue_msg *none;
    size_t k = 9;
    ASSERT_OK(td_queue_receive(e, "g", "c", 10, &none, &k));
    ASSERT_EQ(k, 0);
    td_queue_msgs_free(none, k);
    td_queue_info info;
    ASSERT_OK(td_queue_describe(e, "g", &info));
    ASSERT_EQ(info.held, 1);
    int r;
    const char *id = m[0].id;
    ASSERT_OK(td_queue_ack(e, "g", &id, 1, &r));
    td_queue_msgs_free(m, n);
    ASSERT_OK(td_queue_receive(e, "g", "c", 10, &m, &n));
    ASSERT_EQ(n, 1);
    ASSERT_EQ(vnum(&m[0]), 0);
    ASSERT(now_ms() >= t0 + 1000);
    td_queue_msgs_free(m, n);
    td_engine_close(e);
    test_rmrf(dir);
}

/* queue.scheduled.max: the reader stops at the bound (later events wait, even those due at
 * once) and goes on as scheduled events fall due. */
static void test_scheduled_limit(void)
{
    char *dir = test_tmpdir("qsched-max");
    td_engine *e = open_with(dir, 0, 5);
    group_on(e, NULL, TD_QUEUE_UNORDERED);
    int64_t t0 = now_ms(), due[9];
    for (int i = 0; i < 8; i++)
        due[i] = t0 + 1000;
    due[8] = 0;
    produce_due(e, due, 9);
    int64_t got[9] = {0};
    int dups = 0;
    ASSERT_EQ(collect(e, "g", 50, got, 9, &dups), 0);
    td_queue_info info;
    ASSERT_OK(td_queue_describe(e, "g", &info));
    ASSERT_EQ(info.scheduled, 5);
    collect(e, "g", 1500, got, 9, &dups);
    for (int i = 0; i < 9; i++) /* v8 too: the reader reached it once the first 5 fell due */
        ASSERT(got[i] >= t0 + 1000);
    ASSERT_EQ(dups, 0);
    td_engine_close(e);
    test_rmrf(dir);
}

static void set_delay(td_engine *e, const char *ms)
{
    td_config_entry c = {"delivery.delay.ms", ms};
    ASSERT_OK(td_topic_alter(e, "t", &c, 1));
}

/* Events delayed by the topic's default alone are far too, and the default changes between
 * them (eras): each is delivered at its own era's time, once, also across a reopen; with the
 * eras full, events without a header are scheduled when read. */
static void test_default_delay_eras(void)
{
    char *dir = test_tmpdir("qsched-eras");
    td_engine *e = open_with(dir, 100, 0);
    group_on(e, NULL, TD_QUEUE_UNORDERED);
    enum { N = 60 };
    int64_t got[N] = {0}, due[N], t0 = now_ms();
    int dups = 0;
    /* Five runs of 12 events: 1.9 s, none, 1.6 s, 2.2 s, 1.7 s: the fifth change finds the
     * four eras needed (all of them still far), so its events are scheduled when read. */
    static const char *const delays[] = {"1900", "0", "1600", "2200", "1700"};
    td_queue_info info;
    for (int r = 0; r < 5; r++) {
        set_delay(e, delays[r]);
        for (int i = 12 * r; i < 12 * r + 12; i++) {
            due[i] = now_ms() + atoi(delays[r]);
            produce(e, "t", NULL, i, NULL, 0);
        }
        collect(e, "g", 5, got, N, &dups); /* the reader reads them */
        if (r == 0) {
            ASSERT_OK(td_queue_describe(e, "g", &info));
            ASSERT_EQ(info.scheduled, 0); /* all beyond the horizon */
        }
    }
    ASSERT_OK(td_queue_describe(e, "g", &info));
    ASSERT_EQ(info.scheduled, 12); /* the fallback era's */
    collect(e, "g", 300, got, N, &dups);
    td_engine_close(e);
    e = open_with(dir, 100, 0);
    collect(e, "g", 2500, got, N, &dups);
    for (int i = 0; i < N; i++) {
        ASSERT(got[i] > 0);
        ASSERT(got[i] >= due[i] - 5); /* its timestamp is taken a moment before due[] */
    }
    ASSERT_EQ(dups, 0);
    (void)t0;
    td_engine_close(e);
    test_rmrf(dir);
}

/* The replay's rule (qsched_restore): a scheduled record inside the rescan in progress (its
 * offset in [scan_pos, scan_end), its time in (hw, scan_to]) is dropped, the rescan taking it
 * again, unless its reader took it in a fallback era, which rescans pass over: kept. Eras:
 * what a rescan reads for an offset, and how changes fill them. */
static void test_restore_rule_and_eras(void)
{
    qgroup g;
    memset(&g, 0, sizeof(g));
    qpart p;
    memset(&p, 0, sizeof(p));
    qsched_part_init(&p);
    p.hw = 1000;
    p.scan_to = 2000;
    p.scan_pos = 10;
    p.scan_end = 50;
    qentry x = {.offset = 20, .event_ms = 5};
    x.d.at = 1500;
    ASSERT_EQ(qsched_restore(&g, &p, &x), 1); /* the rescan takes it again */
    x.d.flags = QF_AT_READ;
    ASSERT_EQ(qsched_restore(&g, &p, &x), 0); /* it would not: kept */
    ASSERT_EQ(g.scheduled, 1);
    x.d.flags = 0;
    x.offset = 50; /* past the rescan */
    ASSERT_EQ(qsched_restore(&g, &p, &x), 0);
    x.offset = 20;
    x.d.at = 2500; /* beyond its target */
    ASSERT_EQ(qsched_restore(&g, &p, &x), 0);
    x.d.at = 900; /* before the horizon: taken before the rescan */
    ASSERT_EQ(qsched_restore(&g, &p, &x), 0);
    ASSERT_EQ(g.scheduled, 4);
    qsched_part_free(&g, &p);
    ASSERT_EQ(g.scheduled, 0);

    /* Eras: four values, then a fallback (-1); the ones no rescan needs go. */
    qpart e;
    memset(&e, 0, sizeof(e));
    qsched_part_init(&e);
    e.far_from = 5; /* a far event at 5 pins the eras from there on */
    qsched_read(&e, 0, 0);
    qsched_read(&e, 1, 0); /* unchanged: nothing new */
    ASSERT_EQ(e.neras, 1);
    qsched_read(&e, 10, 100);
    qsched_read(&e, 20, 200);
    qsched_read(&e, 30, 300);
    ASSERT_EQ(e.neras, 4);
    qsched_read(&e, 40, 400); /* a fifth value: the fallback */
    ASSERT_EQ(e.neras, 5);
    ASSERT_EQ(e.eras[4].delay, -1);
    ASSERT_EQ(e.eras[4].from, 40);
    qsched_read(&e, 50, 500); /* full: stays in the fallback */
    ASSERT_EQ(e.neras, 5);
    e.far_from = 25; /* the far events below 25 are gone: eras 0 and 1 (to 20) too */
    qsched_read(&e, 60, 600);
    ASSERT_EQ(e.neras, 4);
    ASSERT_EQ(e.eras[0].from, 20);
    ASSERT_EQ(e.eras[3].from, 60);
    ASSERT_EQ(e.eras[3].delay, 600);
    e.far_from = QS_NONE; /* nothing far: only the current era stays */
    qsched_read(&e, 70, 700);
    ASSERT_EQ(e.neras, 2);
    ASSERT_EQ(e.eras[0].delay, 600);
    ASSERT_EQ(e.eras[1].from, 70);
}

/* The scan fields of the group's partition 0, under the queues' mutex. */
static int64_t scan_to_of(td_engine *e)
{
    td_queues *q = queues_of(e);
    pthread_mutex_lock(&q->mu);
    int64_t s = q->n && q->g[0]->nall ? q->g[0]->all[0].p->scan_to : 0;
    pthread_mutex_unlock(&q->mu);
    return s;
}

/* A crash image taken while a rescan is in progress, its window holding events taken when read
 * in a fallback era (which no rescan takes again) and events the rescan will take: after the
 * restart every event comes, once, none early. (Before their records said how they were
 * taken, the replay dropped the fallback ones and they were never delivered.) */
static void test_crash_mid_rescan_with_fallback_era(void)
{
    char *dir = test_tmpdir("qsched-crash");
    td_engine *e = open_with(dir, 100, 0);
    group_on(e, NULL, TD_QUEUE_UNORDERED);
    enum { N = 30 };
    int64_t got[N] = {0}, due[N];
    int dups = 0;
    int64_t t0 = now_ms();
    /* v0: due in a minute, far: it pins the rescans' start at offset 0. */
    due[0] = t0 + 60000;
    produce(e, "t", NULL, 0, "tidings-deliver-at", due[0]);
    collect(e, "g", 5, got, N, &dups);
    /* The default's values: 0 (v0's era), 1600, 1620, 1640 (v1..v3, far), then a fifth: the
     * fallback (v4 on, taken when read). */
    static const char *const delays[] = {"1600", "1620", "1640", "1660", "1700"};
    for (int i = 1; i < N; i++) {
        int r = i <= 4 ? i - 1 : 4;
        if (i <= 5)
            set_delay(e, delays[r]);
        due[i] = now_ms() + atoi(delays[r]);
        produce(e, "t", NULL, i, NULL, 0);
        collect(e, "g", 1, got, N, &dups);
    }
    td_queue_info info;
    ASSERT_OK(td_queue_describe(e, "g", &info));
    ASSERT_EQ(info.scheduled, N - 4); /* the fallback era's, taken when read */
    /* A rescan starts before v1 is due (within the horizon) and is held there. */
    qsched_test_hold_rescans(true);
    int64_t end = now_ms() + 3000;
    while (!scan_to_of(e) && now_ms() < end)
        usleep(2000);
    ASSERT(scan_to_of(e) > 0);
    usleep(20000); /* its position record written */
    char cmd[2048], *copy = test_tmpdir("qsched-crash-copy");
    snprintf(cmd, sizeof(cmd), "cp -a '%s/.' '%s/'", dir, copy);
    ASSERT_EQ(system(cmd), 0);
    td_engine_close(e);
    qsched_test_hold_rescans(false);
    e = open_with(copy, 100, 0);
    collect(e, "g", 2500, got, N, &dups);
    for (int i = 1; i < N; i++) {
        ASSERT(got[i] > 0);
        ASSERT(got[i] >= due[i] - 5); /* its timestamp is taken a moment before due[] */
    }
    ASSERT_EQ(got[0], 0); /* due in a minute */
    ASSERT_EQ(dups, 0);
    td_engine_close(e);
    test_rmrf(copy);
    test_rmrf(dir);
}

TEST_MAIN(TEST(test_due_of), TEST(test_crash_mid_rescan_with_fallback_era),
          TEST(test_restore_rule_and_eras), TEST(test_default_delay_eras),
          TEST(test_scheduled_across_reopen), TEST(test_far_events_rescanned),
          TEST(test_topic_default_and_key_order), TEST(test_scheduled_limit))
