/*
 * Crash safety of the trace index (trace.index; storage/segkeys.c) against a real process kill,
 * as test_crash_keys.c does for the key index: a forked child appends events (event n has trace
 * n % 37, span n + 1, a traceparent saying so, and value "s<n>") under
 * fsync=always with small segments, so that rolls, seals and index file writes happen under
 * the kill, and reports each acknowledged end offset through a pipe; the parent kills it with
 * SIGKILL at a random moment. In some rounds it then damages a trace index file (cut mid-entry,
 * removed) as a torn write or a lost file would. It reopens the partition and checks that every
 * acknowledged event is there and that every trace's events, read from the index, agree with
 * the log.
 */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "crash_common.h"

#define KEYS 37
#define MAXN 200000

static td_topic_config cfg(void)
{
    td_topic_config c;
    td_topic_config_init(&c);
    c.segment_bytes = 8192;
    c.trace_index = true;
    return c;
}

static void ids(int64_t n, td_trace_ctx *c)
{
    memset(c, 0, sizeof(*c));
    c->trace_id[0] = 0x77;
    c->trace_id[15] = (uint8_t)(1 + n % KEYS);
    for (int i = 0; i < 8; i++)
        c->span_id[i] = (uint8_t)((n + 1) >> (8 * (7 - i)));
    c->flags = 1;
}

static int traced_append(td_part *p, int64_t first, int count, td_append_result *r)
{
    td_event ev[8];
    td_header hs[8];
    char tps[8][64], vals[8][32];
    for (int i = 0; i < count; i++) {
        td_trace_ctx c;
        ids(first + i, &c);
        td_traceparent_format(&c, tps[i]);
        hs[i] = (td_header){"traceparent", 11, tps[i], TD_TRACEPARENT_LEN};
        snprintf(vals[i], sizeof(vals[i]), "s%lld", (long long)(first + i));
        ev[i] = (td_event){.value = vals[i],
                           .value_len = strlen(vals[i]),
                           .headers = &hs[i],
                           .header_count = 1,
                           .timestamp_ms = 1700000000000LL};
    }
    td_batch_encode_opts o;
    batch_encode_opts_init(&o);
    td_buf b;
    td_buf_init(&b);
    int rc = batch_encode(&b, &o, ev, (size_t)count);
    if (rc == 0)
        rc = part_append(p, b.p, b.len, 1700000000000LL, r);
    td_buf_free(&b);
    return rc;
}

static void child(const char *dir, int round, int wfd)
{
    (void)round;
    td_topic_config c = cfg();
    td_part *p;
    if (part_open(td_io_posix(), dir, "traces/0", &c, &p) != 0)
        _exit(3);
    int64_t next = part_log_end(p);
    for (int i = 0; i < 1000000 && next < MAXN - 8; i++) {
        int count = 1 + i % 5;
        td_append_result r;
        if (traced_append(p, next, count, &r) != 0 || part_wait_durable(p, r.end_offset) != 0)
            _exit(4);
        next += count;
        if (write(wfd, &next, sizeof(next)) != sizeof(next))
            _exit(5);
    }
    _exit(0);
}

/* Every trace's offsets from the index agree with the log, whose event
 * n is of trace n % KEYS (crash_check_log checked the values and density). */
static void check_traces(td_part *p, int64_t have)
{
    static int64_t out[MAXN / KEYS + 16];
    for (int k = 0; k < KEYS; k++) {
        td_trace_ctx c;
        ids(k, &c);
        size_t got;
        ASSERT_OK(part_trace_offsets(p, TD_TRACE_BY_TRACE, c.trace_id, 16, 0, out,
                                     TD_ARRAY_LEN(out), &got));
        ASSERT_EQ((int64_t)got, have > k ? (have - 1 - k) / KEYS + 1 : 0);
        for (size_t i = 0; i < got; i++)
            ASSERT_EQ(out[i], k + (int64_t)i * KEYS);
    }
}

static void test_sigkill_traced_rounds(void)
{
    char *dir = test_tmpdir("killtraces");
    char pdir[1024];
    snprintf(pdir, sizeof(pdir), "%s/p", dir);
    srand((unsigned)time(NULL));
    int64_t acked = 0;
    int rounds = 16;
    for (int round = 0; round < rounds; round++) {
        int status;
        acked = crash_kill_round(child, pdir, round, 5000, 60000, acked, &status);
        if (WIFEXITED(status) && WEXITSTATUS(status) != 0) /* a check of the child failed */
            TEST_FAIL_("round %d: the writer exited with %d", round, WEXITSTATUS(status));
        if (round % 3 == 2)
            crash_damage_index(pdir, "traceindex", round);
        td_topic_config c = cfg();
        td_part *p;
        ASSERT_OK(part_open(td_io_posix(), pdir, "traces/0", &c, &p));
        ASSERT(part_offline(p) == NULL);
        int64_t have = crash_check_log(p);
        if (have < acked)
            TEST_FAIL_("round %d: %lld events after the kill, %lld were acknowledged", round,
                       (long long)have, (long long)acked);
        check_traces(p, have);
        part_close(p);
    }
    fprintf(stderr, "%d kills survived; %lld events acknowledged\n", rounds, (long long)acked);
    ASSERT(acked > rounds);
    test_rmrf(dir);
}

TEST_MAIN(TEST(test_sigkill_traced_rounds))
