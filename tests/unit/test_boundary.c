/* Unit tests for conditional appends over a set of keys (td_produce_cond; docs/event-sourcing.md,
 * "Consistency boundaries"): the check of every key against the position, all or nothing, the
 * one-partition rule, malformed conditions, and concurrent writers over overlapping boundaries
 * (no lost update: checked from the log). */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tidings.h"
#include "test.h"

static const td_config_entry keyed[] = {{"key.index", "true"}, {"segment.bytes", "4096"}};

static td_event ev_of(const char *key, const char *value)
{
    return (td_event){.key = key,
                      .key_len = key ? strlen(key) : 0,
                      .value = value,
                      .value_len = strlen(value),
                      .partition = TD_PARTITION_ANY};
}

static td_condition_key ck(const char *k)
{
    return (td_condition_key){k, strlen(k)};
}

static int64_t log_end(td_engine *e, const char *topic, int32_t p)
{
    td_partition_info info;
    ASSERT_OK(td_partition_describe(e, topic, p, &info));
    return info.high_watermark;
}

static void test_keys_checked_against_the_position(void)
{
    char *dir = test_tmpdir("boundary");
    td_engine *e = test_engine_open(dir);
    ASSERT_OK(td_topic_create(e, "courses", 1, keyed, 2));
    td_event evs[3] = {ev_of("a", "0"), ev_of("b", "1"), ev_of("c", "2")};
    ASSERT_OK(td_produce(e, "courses", evs, 3, NULL));
    /* a at 0, b at 1: nothing of them after 1. */
    td_condition_key ab[2] = {ck("a"), ck("b")};
    td_condition cond = {ab, 2, 1, TD_PARTITION_ANY, NULL, 0};
    td_event one = ev_of("a", "3");
    td_produce_result r[3];
    td_version_conflict c;
    ASSERT_OK(td_produce_cond(e, "courses", &one, NULL, 1, &cond, r, &c));
    ASSERT_EQ(r[0].offset, 3);
    /* a is at 3 now: the same condition fails, names key 0 (index n + 0) and its version, and
     * nothing of a batch of three is written. */
    td_event three[3] = {ev_of("b", "x"), ev_of(NULL, "y"), ev_of("c", "z")};
    ASSERT_EQ(td_produce_cond(e, "courses", three, NULL, 3, &cond, r, &c), TD_EVERSION);
    ASSERT_EQ(c.index, 3);
    ASSERT_EQ(c.current, 3);
    ASSERT_EQ(c.partition, 0);
    ASSERT_EQ(r[0].offset, -1);
    ASSERT_CONTAINS(td_last_error(), "version 3 is after the position 1");
    ASSERT_EQ(log_end(e, "courses", 0), 4);
    /* The second key changed, the first did not: index n + 1. */
    td_condition_key bc[2] = {ck("c"), ck("a")};
    cond = (td_condition){bc, 2, 2, TD_PARTITION_ANY, NULL, 0};
    ASSERT_EQ(td_produce_cond(e, "courses", three, NULL, 3, &cond, r, &c), TD_EVERSION);
    ASSERT_EQ(c.index, 4);
    ASSERT_EQ(c.current, 3);
    ASSERT_EQ(log_end(e, "courses", 0), 4);
    /* At 3: the whole batch, consecutive offsets (the keyless event in the boundary's
     * partition). */
    cond.after = 3;
    ASSERT_OK(td_produce_cond(e, "courses", three, NULL, 3, &cond, r, &c));
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(r[i].offset, 4 + i);
    /* A position past every key's version holds too (versions are not consecutive). */
    cond.after = 1000;
    ASSERT_OK(td_produce_cond(e, "courses", &one, NULL, 1, &cond, r, &c));
    /* -1: none of the keys has any event (new entities). */
    td_condition_key fresh[3] = {ck("n1"), ck("n2"), ck("n3")};
    cond = (td_condition){fresh, 3, TD_VERSION_NO_STREAM, TD_PARTITION_ANY, NULL, 0};
    td_event n2 = ev_of("n2", "new");
    ASSERT_OK(td_produce_cond(e, "courses", &n2, NULL, 1, &cond, r, &c));
    int64_t at = r[0].offset;
    ASSERT_EQ(td_produce_cond(e, "courses", &n2, NULL, 1, &cond, r, &c), TD_EVERSION);
    ASSERT_EQ(c.index, 1 + 1);
    ASSERT_EQ(c.current, at);
    /* With expected versions: those are checked first (index < n). */
    int64_t x = 0; /* n2 is not at 0 */
    cond.keys = ab;
    cond.key_count = 2;
    cond.after = 0; /* fails too */
    ASSERT_EQ(td_produce_cond(e, "courses", &n2, &x, 1, &cond, r, &c), TD_EVERSION);
    ASSERT_EQ(c.index, 0);
    ASSERT_CONTAINS(td_last_error(), "expected version 0");
    x = TD_VERSION_EXISTS; /* holds: the condition's key 0 (a) fails */
    ASSERT_EQ(td_produce_cond(e, "courses", &n2, &x, 1, &cond, r, &c), TD_EVERSION);
    ASSERT_EQ(c.index, 1);
    /* Survives a restart: the versions come from the log. */
    int64_t end = log_end(e, "courses", 0);
    td_engine_close(e);
    e = test_engine_open(dir);
    cond = (td_condition){ab, 2, end - 1, TD_PARTITION_ANY, NULL, 0};
    ASSERT_OK(td_produce_cond(e, "courses", &one, NULL, 1, &cond, r, &c));
    cond.after = end - 2;
    ASSERT_EQ(td_produce_cond(e, "courses", &one, NULL, 1, &cond, r, &c), TD_EVERSION);
    td_engine_close(e);
    test_rmrf(dir);
}

/* Two keys of different partitions of a topic of n. */
static void keys_apart(int32_t n, char *k1, char *k2, size_t cap)
{
    snprintf(k1, cap, "k-0");
    int32_t p1 = td_partition_for_key(k1, strlen(k1), n);
    for (int i = 1; i < 1000; i++) {
        snprintf(k2, cap, "k-%d", i);
        if (td_partition_for_key(k2, strlen(k2), n) != p1)
            return;
    }
    ASSERT(!"no two keys apart");
}

static void test_one_partition_and_malformed(void)
{
    char *dir = test_tmpdir("boundary");
    td_engine *e = test_engine_open(dir);
    ASSERT_OK(td_topic_create(e, "multi", 3, keyed, 2));
    char k1[16], k2[16];
    keys_apart(3, k1, k2, sizeof(k1));
    int32_t p1 = td_partition_for_key(k1, strlen(k1), 3);
    int32_t p2 = td_partition_for_key(k2, strlen(k2), 3);
    td_condition_key both[2] = {ck(k1), ck(k2)};
    td_condition cond = {both, 2, TD_VERSION_NO_STREAM, TD_PARTITION_ANY, NULL, 0};
    td_event ev = ev_of(k1, "v");
    td_produce_result r;
    td_version_conflict c;
    /* Keys of two partitions: refused. */
    ASSERT_EQ(td_produce_cond(e, "multi", &ev, NULL, 1, &cond, &r, &c), TD_EINVAL);
    ASSERT_CONTAINS(td_last_error(), "one partition until transactions exist");
    /* An event routed elsewhere than the condition's partition: refused, nothing written. */
    cond.key_count = 1; /* k1: partition p1 */
    td_event two[2] = {ev_of(k1, "a"), ev_of(k2, "b")};
    td_produce_result r2[2];
    ASSERT_EQ(td_produce_cond(e, "multi", two, NULL, 2, &cond, r2, &c), TD_EINVAL);
    ASSERT_CONTAINS(td_last_error(), "event 1 goes to partition");
    ASSERT_EQ(log_end(e, "multi", p1) + log_end(e, "multi", p2), 0);
    /* A named partition: the keys' streams there (k2's there is empty), whatever their hash. */
    cond = (td_condition){both, 2, TD_VERSION_NO_STREAM, p1, NULL, 0};
    ASSERT_OK(td_produce_cond(e, "multi", &ev, NULL, 1, &cond, &r, &c));
    ASSERT_EQ(r.partition, p1);
    int64_t at = r.offset;
    ASSERT_EQ(td_produce_cond(e, "multi", &ev, NULL, 1, &cond, &r, &c), TD_EVERSION);
    ASSERT_EQ(c.index, 1); /* k1 */
    cond.partition = 7;
    ASSERT_EQ(td_produce_cond(e, "multi", &ev, NULL, 1, &cond, &r, &c), TD_ENOTFOUND);
    /* Malformed. */
    cond = (td_condition){both, 0, 0, TD_PARTITION_ANY, NULL, 0};
    ASSERT_EQ(td_produce_cond(e, "multi", &ev, NULL, 1, &cond, &r, &c), TD_EINVAL);
    static td_condition_key many[TD_CONDITION_KEYS_MAX + 1];
    for (int i = 0; i <= TD_CONDITION_KEYS_MAX; i++)
        many[i] = ck(k1);
    cond = (td_condition){many, TD_CONDITION_KEYS_MAX + 1, 0, TD_PARTITION_ANY, NULL, 0};
    ASSERT_EQ(td_produce_cond(e, "multi", &ev, NULL, 1, &cond, &r, &c), TD_EINVAL);
    cond.key_count = TD_CONDITION_KEYS_MAX; /* the limit itself is fine */
    cond.after = at;
    ASSERT_OK(td_produce_cond(e, "multi", &ev, NULL, 1, &cond, &r, &c));
    cond.after = -2;
    ASSERT_EQ(td_produce_cond(e, "multi", &ev, NULL, 1, &cond, &r, &c), TD_EINVAL);
    td_condition_key nul = {NULL, 0};
    cond = (td_condition){&nul, 1, 0, TD_PARTITION_ANY, NULL, 0};
    ASSERT_EQ(td_produce_cond(e, "multi", &ev, NULL, 1, &cond, &r, &c), TD_EINVAL);
    /* Without key.index: refused, never ignored. */
    ASSERT_OK(td_topic_create(e, "plain", 1, NULL, 0));
    cond = (td_condition){both, 1, 0, TD_PARTITION_ANY, NULL, 0};
    ASSERT_EQ(td_produce_cond(e, "plain", &ev, NULL, 1, &cond, &r, &c), TD_EUNSUPPORTED);
    ASSERT_EQ(log_end(e, "plain", 0), 0);
    td_engine_close(e);
    test_rmrf(dir);
}

/* Events that do not fit one batch: refused whole, as with expected versions. */
static void test_one_batch_or_nothing(void)
{
    char *dir = test_tmpdir("boundary");
    td_engine *e = test_engine_open(dir);
    const td_config_entry small[] = {{"key.index", "true"}, {"max.message.bytes", "1000"}};
    ASSERT_OK(td_topic_create(e, "small", 1, small, 2));
    static char big[400];
    memset(big, 'x', sizeof(big) - 1);
    td_event evs[4] = {ev_of("a", big), ev_of("b", big), ev_of("a", big), ev_of("b", big)};
    td_condition_key a = ck("a");
    td_condition cond = {&a, 1, TD_VERSION_NO_STREAM, TD_PARTITION_ANY, NULL, 0};
    td_produce_result r[4];
    ASSERT_EQ(td_produce_cond(e, "small", evs, NULL, 4, &cond, r, NULL), TD_ETOOBIG);
    ASSERT_EQ(log_end(e, "small", 0), 0);
    ASSERT_OK(td_produce_cond(e, "small", evs, NULL, 2, &cond, r, NULL));
    ASSERT_EQ(log_end(e, "small", 0), 2);
    td_engine_close(e);
    test_rmrf(dir);
}

/*
 * Concurrent commands over overlapping boundaries, in rounds: four accounts in one partition;
 * each writer's command is a transfer between two or three of them (which ones: by writer and
 * command). It reads the boundary's position (the highest version of its keys), then, all at
 * once, appends one event per key on the condition "none of them changed after it". Each event
 * records its command, the position read and the boundary. From the log: every command's events
 * are all there, consecutive, once (no partial batch); and no event of a boundary's keys lies
 * between the position its command read and its own offset (no lost update).
 */
#define WRITERS 4
#define COMMANDS 60
#define ACCOUNTS 4

typedef struct shared {
    td_engine *e;
    pthread_barrier_t bar;
    int accepted; /* atomic */
    int bad;      /* atomic */
    int rounds;
} shared;

typedef struct writer {
    shared *sh;
    int id;
    int conflicts;
} writer;

static const char *const accounts[ACCOUNTS] = {"acct-0", "acct-1", "acct-2", "acct-3"};

/* The boundary of writer w's command cmd: 2 or 3 distinct accounts into ks; their count. */
static int boundary_of(int w, int cmd, int *ks)
{
    int n = (w + cmd) % 3 == 0 ? 3 : 2;
    for (int i = 0; i < n; i++)
        ks[i] = (w + cmd + i) % ACCOUNTS;
    return n;
}

static void *write_loop(void *arg)
{
    writer *w = arg;
    shared *sh = w->sh;
    int next = 0;
    for (int round = 0; round < WRITERS * COMMANDS; round++) {
        pthread_barrier_wait(&sh->bar);
        bool mine = next < COMMANDS;
        int ks[3], nk = boundary_of(w->id, next, ks);
        int64_t pos = TD_VERSION_NO_STREAM;
        for (int i = 0; mine && i < nk; i++) {
            int64_t v;
            if (td_key_version(sh->e, "bank", accounts[ks[i]], 6, 0, &v) != 0)
                __atomic_add_fetch(&sh->bad, 1, __ATOMIC_RELAXED);
            pos = v > pos ? v : pos;
        }
        pthread_barrier_wait(&sh->bar); /* every reader has its position: all append */
        if (mine) {
            char vals[3][64];
            td_event evs[3];
            td_condition_key cks[3];
            for (int i = 0; i < nk; i++) {
                snprintf(vals[i], sizeof(vals[i]), "%d:%d:%d:%" PRId64 ":%d%d%d", w->id, next, i,
                         pos, ks[0], ks[1], nk == 3 ? ks[2] : 9);
                evs[i] = ev_of(accounts[ks[i]], vals[i]);
                cks[i] = ck(accounts[ks[i]]);
            }
            td_condition cond = {cks, (size_t)nk, pos, TD_PARTITION_ANY, NULL, 0};
            td_produce_result r[3];
            td_version_conflict c;
            int rc = td_produce_cond(sh->e, "bank", evs, NULL, (size_t)nk, &cond, r, &c);
            if (rc == 0) {
                next++;
                __atomic_add_fetch(&sh->accepted, 1, __ATOMIC_RELAXED);
            } else if (rc == TD_EVERSION && c.index >= (size_t)nk && c.current > pos) {
                w->conflicts++; /* decided again next round */
            } else {
                __atomic_add_fetch(&sh->bad, 1, __ATOMIC_RELAXED);
            }
        }
        pthread_barrier_wait(&sh->bar);
        if (__atomic_load_n(&sh->accepted, __ATOMIC_RELAXED) == WRITERS * COMMANDS) {
            if (w->id == 0)
                sh->rounds = round + 1;
            break;
        }
    }
    return NULL;
}

static void test_concurrent_boundaries_lose_no_update(void)
{
    char *dir = test_tmpdir("boundary");
    td_engine *e = test_engine_open(dir);
    const td_config_entry cfg[] = {
        {"key.index", "true"}, {"fsync", "none"}, {"segment.bytes", "16384"}};
    ASSERT_OK(td_topic_create(e, "bank", 1, cfg, 3));
    static shared sh;
    memset(&sh, 0, sizeof(sh));
    sh.e = e;
    ASSERT_OK(pthread_barrier_init(&sh.bar, NULL, WRITERS));
    writer w[WRITERS];
    pthread_t th[WRITERS];
    for (int i = 0; i < WRITERS; i++) {
        w[i] = (writer){&sh, i, 0};
        ASSERT_OK(pthread_create(&th[i], NULL, write_loop, &w[i]));
    }
    int conflicts = 0;
    for (int i = 0; i < WRITERS; i++) {
        pthread_join(th[i], NULL);
        conflicts += w[i].conflicts;
    }
    pthread_barrier_destroy(&sh.bar);
    ASSERT_EQ(sh.bad, 0);
    ASSERT_EQ(sh.accepted, WRITERS * COMMANDS); /* at least one wins each round */
    ASSERT(conflicts > 0);                      /* the boundaries overlap */
    /* The log. */
    static int64_t last_of[ACCOUNTS][WRITERS * COMMANDS * 3 + 1];
    static int nlast[ACCOUNTS];
    memset(nlast, 0, sizeof(nlast));
    int per[WRITERS] = {0}, part = 0; /* the next command of each writer; events of it seen */
    td_iter *it;
    ASSERT_OK(td_iter_open(e, "bank", 0, TD_OFFSET_EARLIEST, &it));
    td_event ev;
    int n = 0;
    while (td_iter_next(it, &ev) == 1) {
        char val[64];
        ASSERT(ev.value_len < sizeof(val));
        memcpy(val, ev.value, ev.value_len);
        val[ev.value_len] = 0;
        int id, cmd, idx, bk;
        long long pos;
        ASSERT_EQ(sscanf(val, "%d:%d:%d:%lld:%d", &id, &cmd, &idx, &pos, &bk), 5);
        int ks[3], nk = boundary_of(id, cmd, ks);
        ASSERT_EQ(cmd, per[id]); /* each writer's commands in order, once */
        ASSERT_EQ(idx, part);    /* a command's events consecutive: no partial batch */
        ASSERT(pos < ev.offset);
        /* No event of the boundary's keys after the position read, before this command's. */
        if (idx == 0)
            for (int i = 0; i < nk; i++)
                if (nlast[ks[i]])
                    ASSERT(last_of[ks[i]][nlast[ks[i]] - 1] <= pos);
        int k = ks[idx];
        ASSERT_EQ(ev.key_len, strlen(accounts[k]));
        ASSERT_MEM_EQ(ev.key, accounts[k], ev.key_len);
        last_of[k][nlast[k]++] = ev.offset;
        if (++part == nk) {
            part = 0;
            per[id]++;
        }
        n++;
    }
    td_iter_close(it);
    ASSERT_EQ(part, 0);
    for (int i = 0; i < WRITERS; i++)
        ASSERT_EQ(per[i], COMMANDS);
    fprintf(stderr, "%d events, %d commands over %d rounds, %d conflicts decided again\n", n,
            WRITERS * COMMANDS, sh.rounds, conflicts);
    td_engine_close(e);
    test_rmrf(dir);
}

TEST_MAIN(TEST(test_keys_checked_against_the_position), TEST(test_one_partition_and_malformed),
          TEST(test_one_batch_or_nothing), TEST(test_concurrent_boundaries_lose_no_update))
