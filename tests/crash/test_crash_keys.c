/*
 * Crash safety of the key index (key.index; storage/segkeys.c) against a real process kill: a
 * forked child appends keyed events (event n has key "e<n % 37>" and value "s<n>") under
 * fsync=always with small segments, so that rolls, seals and index file writes happen under
 * the kill, and reports each acknowledged end offset through a pipe; the parent kills it with
 * SIGKILL at a random moment. In some rounds it then damages a key index file (cut mid-entry,
 * removed) as a torn write or a lost file would. It reopens the partition and checks that every
 * acknowledged event is there and that every key's version and events, read from the index,
 * agree with a full read of the log. A second test makes the same appends conditional (a
 * consistency boundary of the batch's keys and one more, at the position read from the index,
 * and a probe one below it that must fail), so that the conditional path runs under the kill and
 * checks the versions of the index the previous round left. Every event carries a tag too
 * (tidings-tag), whose versions are checked the same way and are part of each boundary.
 */
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crash_common.h"

#define KEYS 37
#define TAGS 11 /* event n also carries the tag "t<n % TAGS>" (docs/event-sourcing.md#tags) */
#define MAXN 200000

static td_topic_config cfg(void)
{
    td_topic_config c;
    td_topic_config_init(&c);
    c.segment_bytes = 8192;
    c.key_index = true;
    return c;
}

static int keyed_append(td_part *p, int64_t first, int count, td_append_result *r, part_expect *req)
{
    td_event ev[8];
    td_header hs[8];
    char keys[8][16], vals[8][32], tags[8][16];
    for (int i = 0; i < count; i++) {
        snprintf(keys[i], sizeof(keys[i]), "e%lld", (long long)((first + i) % KEYS));
        snprintf(vals[i], sizeof(vals[i]), "s%lld", (long long)(first + i));
        snprintf(tags[i], sizeof(tags[i]), "t%lld", (long long)((first + i) % TAGS));
        hs[i] = (td_header){TD_TAG_HEADER, strlen(TD_TAG_HEADER), tags[i], strlen(tags[i])};
        ev[i] = (td_event){.key = keys[i], .key_len = strlen(keys[i]), .value = vals[i],
                           .value_len = strlen(vals[i]), .headers = &hs[i], .header_count = 1,
                           .timestamp_ms = 1700000000000LL};
    }
    td_batch_encode_opts o;
    batch_encode_opts_init(&o);
    td_buf b;
    td_buf_init(&b);
    int rc = batch_encode(&b, &o, ev, (size_t)count);
    if (rc == 0)
        rc = req ? part_append_expect(p, b.p, b.len, 1700000000000LL, r, req)
                 : part_append(p, b.p, b.len, 1700000000000LL, r);
    td_buf_free(&b);
    return rc;
}

/* Events first..first+count-1 on the condition that none of their keys, nor the next one, has
 * an event after the highest version the index gives them; first a probe one below that
 * position, which must fail (when there is an event). 0, or a code for the parent. */
static int cond_append(td_part *p, int64_t first, int count, td_append_result *r)
{
    char keys[9][16];
    part_expect_key ks[9];
    int64_t pos = TD_VERSION_NO_STREAM;
    for (int i = 0; i <= count + 1; i++) { /* the keys, one more, and the next event's tag */
        bool tag = i == count + 1;
        snprintf(keys[i], sizeof(keys[i]), tag ? "t%lld" : "e%lld",
                 (long long)((first + i) % (tag ? TAGS : KEYS)));
        int64_t v;
        if (part_index_version(p, tag, keys[i], strlen(keys[i]), &v) != 0)
            return 6;
        pos = TD_MAX(pos, v);
        ks[i] = (part_expect_key){keys[i], strlen(keys[i]), 0, true, 0, 0, tag};
    }
    part_expect req = {ks, (size_t)count + 2, 0, 0};
    if (pos >= 0) {
        for (int i = 0; i <= count + 1; i++)
            ks[i].expected = pos - 1;
        if (keyed_append(p, first, count, r, &req) != TD_EVERSION || ks[req.failed].current != pos)
            return 7;
    }
    for (int i = 0; i <= count + 1; i++)
        ks[i].expected = pos;
    return keyed_append(p, first, count, r, &req) == 0 ? 0 : 8;
}

/* Whether the writer's appends are conditional (set before the rounds; the forked child
 * inherits it). */
static bool conditional_writer;

static void child(const char *dir, int round, int wfd)
{
    (void)round;
    bool conditional = conditional_writer;
    td_topic_config c = cfg();
    td_part *p;
    if (part_open(td_io_posix(), dir, "keys/0", &c, &p) != 0)
        _exit(3);
    int64_t next = part_log_end(p);
    for (int i = 0; i < 1000000 && next < MAXN - 8; i++) {
        int count = 1 + i % 5;
        td_append_result r;
        int rc =
            conditional ? cond_append(p, next, count, &r) : keyed_append(p, next, count, &r, NULL);
        if (rc)
            _exit(rc > 0 ? rc : 4);
        if (part_wait_durable(p, r.end_offset) != 0)
            _exit(4);
        next += count;
        if (write(wfd, &next, sizeof(next)) != sizeof(next))
            _exit(5);
    }
    _exit(0);
}

/* Every key's version and offsets from the index agree with the log, whose event n has key
 * n % KEYS (crash_check_log checked the values and density). */
static void check_keys(td_part *p, int64_t have)
{
    static int64_t out[MAXN / KEYS + 16];
    for (int k = 0; k < KEYS; k++) {
        char key[16];
        snprintf(key, sizeof(key), "e%d", k);
        int64_t v, want = have > k ? k + (have - 1 - k) / KEYS * KEYS : TD_VERSION_NO_STREAM;
        ASSERT_OK(part_key_version(p, key, strlen(key), &v));
        if (v != want)
            TEST_FAIL_("key %s: version %lld, the log says %lld", key, (long long)v,
                       (long long)want);
        size_t got;
        ASSERT_OK(part_key_offsets(p, key, strlen(key), 0, out, TD_ARRAY_LEN(out), &got));
        ASSERT_EQ((int64_t)got, have > k ? (have - 1 - k) / KEYS + 1 : 0);
        for (size_t i = 0; i < got; i++)
            ASSERT_EQ(out[i], k + (int64_t)i * KEYS);
    }
    for (int k = 0; k < TAGS; k++) { /* and every tag's (event n carries t<n % TAGS>) */
        char tag[16];
        snprintf(tag, sizeof(tag), "t%d", k);
        int64_t v, want = have > k ? k + (have - 1 - k) / TAGS * TAGS : TD_VERSION_NO_STREAM;
        ASSERT_OK(part_index_version(p, true, tag, strlen(tag), &v));
        if (v != want)
            TEST_FAIL_("tag %s: version %lld, the log says %lld", tag, (long long)v,
                       (long long)want);
    }
}

static void sigkill_rounds(bool conditional)
{
    char *dir = test_tmpdir("killkeys");
    char pdir[1024];
    snprintf(pdir, sizeof(pdir), "%s/p", dir);
    srand((unsigned)time(NULL));
    int64_t acked = 0;
    int rounds = 16;
    conditional_writer = conditional;
    for (int round = 0; round < rounds; round++) {
        int status; /* a child that reached MAXN exited 0 */
        acked = crash_kill_round(child, pdir, round, 5000, 60000, acked, &status);
        if (WIFEXITED(status) && WEXITSTATUS(status) != 0) /* a check of the child failed */
            TEST_FAIL_("round %d: the writer exited with %d", round, WEXITSTATUS(status));
        if (round % 3 == 2)
            crash_damage_index(pdir, "keyindex", round);
        td_topic_config c = cfg();
        td_part *p;
        ASSERT_OK(part_open(td_io_posix(), pdir, "keys/0", &c, &p));
        ASSERT(part_offline(p) == NULL);
        int64_t have = crash_check_log(p);
        if (have < acked)
            TEST_FAIL_("round %d: %lld events after the kill, %lld were acknowledged", round,
                       (long long)have, (long long)acked);
        check_keys(p, have);
        part_close(p);
    }
    fprintf(stderr, "%d kills survived; %lld events acknowledged%s\n", rounds, (long long)acked,
            conditional ? ", conditionally" : "");
    ASSERT(acked > rounds);
    test_rmrf(dir);
}

static void test_sigkill_keyed_rounds(void)
{
    sigkill_rounds(false);
}

static void test_sigkill_conditional_rounds(void)
{
    sigkill_rounds(true);
}

TEST_MAIN(TEST(test_sigkill_keyed_rounds), TEST(test_sigkill_conditional_rounds))
