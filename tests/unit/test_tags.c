/* Unit tests for event tags (docs/event-sourcing.md#tags): tagged appends indexed beside the keys
 * (a tag's version, never a key's of the same bytes), conditions over tags (alone and with keys,
 * all or nothing, the 409's tag and version), the limits, the index after a restart and after
 * its files are lost, and concurrent writers over overlapping tag boundaries (no lost update:
 * checked from the log). */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tidings.h"
#include "test.h"

static const td_config_entry keyed[] = {{"key.index", "true"}, {"segment.bytes", "4096"}};

/* An event of key (may be NULL) with up to 3 tags (NULL-terminated list). */
typedef struct tagged {
    td_header h[4];
    td_event ev;
} tagged;

static void tag_event(tagged *t, const char *key, const char *value, const char *const *tags)
{
    size_t n = 0;
    for (; tags && tags[n]; n++)
        t->h[n] = (td_header){TD_TAG_HEADER, strlen(TD_TAG_HEADER), tags[n], strlen(tags[n])};
    t->ev = (td_event){.key = key,
                       .key_len = key ? strlen(key) : 0,
                       .value = value,
                       .value_len = strlen(value),
                       .headers = t->h,
                       .header_count = n,
                       .partition = TD_PARTITION_ANY};
}

static td_condition_key ck(const char *k)
{
    return (td_condition_key){k, strlen(k)};
}

static int64_t tag_version(td_engine *e, const char *topic, const char *tag)
{
    int64_t v = -9;
    ASSERT_OK(td_tag_version(e, topic, tag, strlen(tag), 0, &v));
    return v;
}

static int64_t key_version(td_engine *e, const char *topic, const char *key)
{
    int64_t v = -9;
    ASSERT_OK(td_key_version(e, topic, key, strlen(key), 0, &v));
    return v;
}

/* Enough events over several segments (segment.bytes 4096) that sealed files are used too. */
static void fill(td_engine *e, int64_t *last_course, int64_t *last_s1)
{
    static char pad[200];
    memset(pad, 'p', sizeof(pad) - 1);
    for (int i = 0; i < 60; i++) {
        tagged t;
        const char *tags[] = {i % 3 == 0 ? "course:c1" : "course:c2", i % 2 ? "student:s1" : NULL,
                              NULL};
        char key[16];
        snprintf(key, sizeof(key), "sub-%d", i);
        tag_event(&t, key, pad, tags);
        td_produce_result r;
        ASSERT_OK(td_produce(e, "courses", &t.ev, 1, &r));
        if (i % 3 == 0)
            *last_course = r.offset;
        if (i % 2)
            *last_s1 = r.offset;
    }
}

static void test_tagged_appends_and_conditions(void)
{
    char *dir = test_tmpdir("tags");
    td_engine *e = test_engine_open(dir);
    ASSERT_OK(td_topic_create(e, "courses", 1, keyed, 2));
    ASSERT_EQ(tag_version(e, "courses", "course:c1"), TD_VERSION_NO_STREAM);
    int64_t c1 = -1, s1 = -1;
    fill(e, &c1, &s1);
    ASSERT_EQ(c1, 57);
    ASSERT_EQ(s1, 59);
    td_partition_info info;
    ASSERT_OK(td_partition_describe(e, "courses", 0, &info));
    ASSERT(info.segments > 2); /* sealed segments' files answer too */
    ASSERT_EQ(tag_version(e, "courses", "course:c1"), 57);
    ASSERT_EQ(tag_version(e, "courses", "student:s1"), 59);
    ASSERT_EQ(tag_version(e, "courses", "nobody"), TD_VERSION_NO_STREAM);
    /* A tag is not a key of the same bytes, nor the reverse. */
    ASSERT_EQ(key_version(e, "courses", "course:c1"), TD_VERSION_NO_STREAM);
    ASSERT_EQ(tag_version(e, "courses", "sub-3"), TD_VERSION_NO_STREAM);
    ASSERT_EQ(key_version(e, "courses", "sub-3"), 3);

    /* Tags only: nothing tagged c1 or s1 after 59 holds; after 58, s1 (59) changed. */
    tagged t;
    const char *sub[] = {"course:c1", "student:s1", NULL};
    tag_event(&t, "sub-x", "x", sub);
    td_condition_key both[2] = {ck("course:c1"), ck("student:s1")};
    td_condition cond = {NULL, 0, 58, TD_PARTITION_ANY, both, 2};
    td_version_conflict c;
    td_produce_result r;
    ASSERT_EQ(td_produce_cond(e, "courses", &t.ev, NULL, 1, &cond, &r, &c), TD_EVERSION);
    ASSERT_EQ(c.index, 1 + 1); /* n + the tag's index */
    ASSERT_EQ(c.current, 59);
    ASSERT(strstr(td_last_error(), "59") != NULL);
    ASSERT_EQ(info.high_watermark, 60);
    cond.after = 59;
    ASSERT_OK(td_produce_cond(e, "courses", &t.ev, NULL, 1, &cond, &r, &c));
    ASSERT_EQ(r.offset, 60);
    ASSERT_EQ(tag_version(e, "courses", "course:c1"), 60);
    ASSERT_EQ(tag_version(e, "courses", "student:s1"), 60);
    /* The same position again: the event just appended is after it. */
    ASSERT_EQ(td_produce_cond(e, "courses", &t.ev, NULL, 1, &cond, &r, &c), TD_EVERSION);
    ASSERT_EQ(c.index, 1 + 0);
    ASSERT_EQ(c.current, 60);
    /* Keys and tags together: keys first, then tags; a tag no event has holds. */
    td_condition_key k = ck("sub-x"), fresh = ck("course:c9");
    cond = (td_condition){&k, 1, 60, TD_PARTITION_ANY, &fresh, 1};
    ASSERT_OK(td_produce_cond(e, "courses", &t.ev, NULL, 1, &cond, &r, &c));
    cond = (td_condition){&k, 1, 61, TD_PARTITION_ANY, both, 2};
    tag_event(&t, "other", "y", NULL); /* an event without tags: the boundary still holds it */
    ASSERT_OK(td_produce_cond(e, "courses", &t.ev, NULL, 1, &cond, &r, &c));
    ASSERT_EQ(r.offset, 62);
    /* An event with neither key nor tag under a tags-only condition. */
    tag_event(&t, NULL, "z", NULL);
    cond = (td_condition){NULL, 0, 62, TD_PARTITION_ANY, both, 2};
    ASSERT_OK(td_produce_cond(e, "courses", &t.ev, NULL, 1, &cond, &r, &c));
    ASSERT_EQ(r.offset, 63);
    td_engine_close(e);

    /* Restart: the index files and the active segment's rebuild answer the same; and with every
     * index file gone, the rebuild from the logs. */
    e = test_engine_open(dir);
    ASSERT_EQ(tag_version(e, "courses", "course:c1"), 61);
    ASSERT_EQ(tag_version(e, "courses", "course:c2"), 59);
    td_engine_close(e);
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "find '%s' -name '*.keyindex' -delete", dir);
    ASSERT_OK(system(cmd));
    e = test_engine_open(dir);
    ASSERT_EQ(tag_version(e, "courses", "course:c1"), 61);
    ASSERT_EQ(tag_version(e, "courses", "course:c2"), 59);
    ASSERT_EQ(tag_version(e, "courses", "student:s1"), 61);
    ASSERT_EQ(key_version(e, "courses", "sub-3"), 3);
    td_engine_close(e);
    test_rmrf(dir);
}

static void test_limits_and_malformed(void)
{
    char *dir = test_tmpdir("tags");
    td_engine *e = test_engine_open(dir);
    ASSERT_OK(td_topic_create(e, "t", 2, keyed, 2));
    /* Too many tags on an event, an empty one, a too long one: refused. */
    td_header h[TD_TAGS_MAX + 1];
    for (int i = 0; i <= TD_TAGS_MAX; i++)
        h[i] = (td_header){TD_TAG_HEADER, strlen(TD_TAG_HEADER), "tg", 2};
    td_event ev = {.key = "k",
                   .key_len = 1,
                   .value = "v",
                   .value_len = 1,
                   .headers = h,
                   .header_count = TD_TAGS_MAX + 1,
                   .partition = TD_PARTITION_ANY};
    ASSERT_EQ(td_produce(e, "t", &ev, 1, NULL), TD_EINVAL);
    ev.header_count = TD_TAGS_MAX;
    ASSERT_OK(td_produce(e, "t", &ev, 1, NULL));
    h[0].value_len = 0;
    ASSERT_EQ(td_produce(e, "t", &ev, 1, NULL), TD_EINVAL);
    static char big[TD_TAG_MAX_LEN + 1];
    memset(big, 'b', sizeof(big));
    h[0] = (td_header){TD_TAG_HEADER, strlen(TD_TAG_HEADER), big, sizeof(big)};
    ASSERT_EQ(td_produce(e, "t", &ev, 1, NULL), TD_EINVAL);
    /* Conditions: no key nor tag, too many, an empty tag, tag_version without a partition. */
    td_condition_key tg = ck("tg"), empty = {"", 0};
    ev.header_count = 0;
    td_condition cond = {NULL, 0, 0, TD_PARTITION_ANY, NULL, 0};
    ASSERT_EQ(td_produce_cond(e, "t", &ev, NULL, 1, &cond, NULL, NULL), TD_EINVAL);
    static td_condition_key many[TD_CONDITION_KEYS_MAX];
    for (int i = 0; i < TD_CONDITION_KEYS_MAX; i++)
        many[i] = ck("k");
    cond = (td_condition){many, TD_CONDITION_KEYS_MAX, 0, TD_PARTITION_ANY, &tg, 1};
    ASSERT_EQ(td_produce_cond(e, "t", &ev, NULL, 1, &cond, NULL, NULL), TD_EINVAL);
    cond = (td_condition){NULL, 0, 0, TD_PARTITION_ANY, &empty, 1};
    ASSERT_EQ(td_produce_cond(e, "t", &ev, NULL, 1, &cond, NULL, NULL), TD_EINVAL);
    int64_t v;
    ASSERT_EQ(td_tag_version(e, "t", "tg", 2, TD_PARTITION_ANY, &v), TD_EINVAL);
    /* Tags only: the events' partition, which must be one. */
    td_event two[2] = {ev, ev};
    two[0].partition = 0;
    two[1].partition = 1;
    cond = (td_condition){NULL, 0, TD_VERSION_NO_STREAM, TD_PARTITION_ANY, &tg, 1};
    ASSERT_EQ(td_produce_cond(e, "t", two, NULL, 2, &cond, NULL, NULL), TD_EINVAL);
    two[1].partition = 0;
    int32_t kp = td_partition_for_key("k", 1, 2);
    /* tg's 16 events went to k's partition: in partition 0 only if k's partition is 0. */
    td_version_conflict c;
    int rc = td_produce_cond(e, "t", two, NULL, 2, &cond, NULL, &c);
    ASSERT_EQ(rc, kp == 0 ? TD_EVERSION : 0);
    /* Without key.index: refused, never ignored. */
    ASSERT_OK(td_topic_create(e, "plain", 1, NULL, 0));
    ASSERT_EQ(td_produce_cond(e, "plain", &ev, NULL, 1, &cond, NULL, NULL), TD_EUNSUPPORTED);
    td_engine_close(e);
    test_rmrf(dir);
}

/*
 * Concurrent commands over overlapping tag boundaries (test_boundary.c's, with tags): four
 * accounts are tags, not keys; each command's one event (keyless) carries the 2 or 3 tags of its
 * boundary, appended on "no event of these tags after the position read" (the highest version of
 * its tags). From the log: every command once, in each writer's order; no event with a tag of a
 * boundary between the position its command read and its own offset.
 */
#define WRITERS 4
#define COMMANDS 50
#define ACCOUNTS 4

typedef struct shared {
    td_engine *e;
    pthread_barrier_t bar;
    int accepted; /* atomic */
    int bad;      /* atomic */
} shared;

typedef struct writer {
    shared *sh;
    int id;
    int conflicts;
} writer;

static const char *const accounts[ACCOUNTS] = {"acct-0", "acct-1", "acct-2", "acct-3"};

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
            if (td_tag_version(sh->e, "bank", accounts[ks[i]], 6, 0, &v) != 0)
                __atomic_add_fetch(&sh->bad, 1, __ATOMIC_RELAXED);
            pos = v > pos ? v : pos;
        }
        pthread_barrier_wait(&sh->bar);
        if (mine) {
            char val[64];
            snprintf(val, sizeof(val), "%d:%d:%" PRId64, w->id, next, pos);
            const char *tags[4] = {accounts[ks[0]], accounts[ks[1]],
                                   nk == 3 ? accounts[ks[2]] : NULL, NULL};
            tagged t;
            tag_event(&t, NULL, val, tags);
            td_condition_key cks[3];
            for (int i = 0; i < nk; i++)
                cks[i] = ck(accounts[ks[i]]);
            td_condition cond = {NULL, 0, pos, 0, cks, (size_t)nk};
            td_version_conflict c;
            int rc = td_produce_cond(sh->e, "bank", &t.ev, NULL, 1, &cond, NULL, &c);
            if (rc == 0) {
                next++;
                __atomic_add_fetch(&sh->accepted, 1, __ATOMIC_RELAXED);
            } else if (rc == TD_EVERSION && c.index >= 1 && c.current > pos) {
                w->conflicts++;
            } else {
                __atomic_add_fetch(&sh->bad, 1, __ATOMIC_RELAXED);
            }
        }
        pthread_barrier_wait(&sh->bar);
        if (__atomic_load_n(&sh->accepted, __ATOMIC_RELAXED) == WRITERS * COMMANDS)
            break;
    }
    return NULL;
}

static void test_concurrent_tag_boundaries_lose_no_update(void)
{
    char *dir = test_tmpdir("tags");
    td_engine *e = test_engine_open(dir);
    const td_config_entry cfg[] = {
        {"key.index", "true"}, {"fsync", "none"}, {"segment.bytes", "8192"}};
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
    ASSERT_EQ(sh.accepted, WRITERS * COMMANDS);
    ASSERT(conflicts > 0);
    int64_t last[ACCOUNTS] = {-1, -1, -1, -1};
    int per[WRITERS] = {0}, n = 0;
    td_iter *it;
    ASSERT_OK(td_iter_open(e, "bank", 0, TD_OFFSET_EARLIEST, &it));
    td_event ev;
    while (td_iter_next(it, &ev) == 1) {
        char val[64];
        ASSERT(ev.value_len < sizeof(val));
        memcpy(val, ev.value, ev.value_len);
        val[ev.value_len] = 0;
        int id, cmd;
        long long pos;
        ASSERT_EQ(sscanf(val, "%d:%d:%lld", &id, &cmd, &pos), 3);
        int ks[3], nk = boundary_of(id, cmd, ks);
        ASSERT_EQ(cmd, per[id]);
        ASSERT_EQ(ev.header_count, (size_t)nk);
        for (int i = 0; i < nk; i++) {
            ASSERT(last[ks[i]] <= pos); /* no lost update */
            last[ks[i]] = ev.offset;
        }
        per[id]++;
        n++;
    }
    td_iter_close(it);
    for (int i = 0; i < WRITERS; i++)
        ASSERT_EQ(per[i], COMMANDS);
    for (int i = 0; i < ACCOUNTS; i++)
        ASSERT_EQ(tag_version(e, "bank", accounts[i]), last[i]);
    fprintf(stderr, "%d events, %d conflicts decided again\n", n, conflicts);
    td_engine_close(e);
    test_rmrf(dir);
}

TEST_MAIN(TEST(test_tagged_appends_and_conditions), TEST(test_limits_and_malformed),
          TEST(test_concurrent_tag_boundaries_lose_no_update))
