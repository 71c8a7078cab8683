/* Unit tests for the per-segment trace index of trace.index topics (storage/segkeys.c, its
 * TRACES kind): lookups by trace, parent span and cause against a model of the log,
 * through rolls, seals, reopen, missing / torn / corrupt index files, retention, the memory
 * bound, and events whose headers are malformed. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/batch.h"
#include "storage/storage.h"
#include "test.h"

#define NTRACES 5
#define MAXEV 4096
#define TS INT64_C(1700000000000)

typedef struct model {
    int64_t off[NTRACES][MAXEV];
    size_t n[NTRACES];
    int64_t parent_off[MAXEV]; /* events naming span 1 of trace 0 as their parent */
    size_t nparent;
} model;

static td_topic_config traced_cfg(void)
{
    td_topic_config c;
    td_topic_config_init(&c);
    c.trace_index = true;
    c.segment_bytes = 4096; /* many segments */
    c.fsync_policy = TD_FSYNC_NONE;
    return c;
}

static void trace_id(int t, uint8_t id[16])
{
    for (int i = 0; i < 16; i++)
        id[i] = (uint8_t)(0x40 + t * 3 + i);
}

static void span_id(int64_t s, uint8_t id[8])
{
    for (int i = 0; i < 8; i++)
        id[i] = (uint8_t)((s + 1) >> (8 * (7 - i)));
}

/* Appends one batch of count events: event i of trace (t0 + i) % NTRACES with span
 * 1000 + its offset; every third one also names span 1 as its parent and offset 0 as its
 * cause; events with i == 2 carry a malformed traceparent (not indexed by trace). */
static void put_batch(td_part *p, model *m, int t0, int count)
{
    int64_t base = part_log_end(p);
    td_event ev[8];
    td_header hs[8][3];
    char tp[8][64];
    for (int i = 0; i < count; i++) {
        td_trace_ctx c = {.flags = 1};
        trace_id((t0 + i) % NTRACES, c.trace_id);
        span_id(1000 + base + i, c.span_id);
        td_traceparent_format(&c, tp[i]);
        if (i == 2)
            tp[i][5] = 'X'; /* uppercase: invalid */
        size_t nh = 0;
        hs[i][nh++] = (td_header){"traceparent", 11, tp[i], 55};
        if ((base + i) % 3 == 0) {
            hs[i][nh++] = (td_header){"x-causation-span-id", 19, "0000000000000002", 16};
            hs[i][nh++] = (td_header){"x-causation-id", 14, "orders/0/0", 10};
            m->parent_off[m->nparent++] = base + i;
        }
        ev[i] = (td_event){.key = "k",
                           .key_len = 1,
                           .value = "v",
                           .value_len = 1,
                           .headers = hs[i],
                           .header_count = nh,
                           .timestamp_ms = TS + base + i};
        if (i != 2) {
            int t = (t0 + i) % NTRACES;
            m->off[t][m->n[t]++] = base + i;
        }
    }
    td_batch_encode_opts o;
    batch_encode_opts_init(&o);
    td_buf b;
    td_buf_init(&b);
    ASSERT_OK(batch_encode(&b, &o, ev, (size_t)count));
    td_append_result res;
    ASSERT_OK(part_append(p, b.p, b.len, TS, &res));
    ASSERT_EQ(res.base_offset, base);
    td_buf_free(&b);
}

static void fill(td_part *p, model *m, int batches)
{
    for (int i = 0; i < batches; i++)
        put_batch(p, m, i % NTRACES, 1 + i % 4);
}

/* Offsets of (kind, id) from ls, in pages of 5, into out; their count. */
static size_t all(td_part *p, int kind, const void *id, size_t n, int64_t *out, size_t max)
{
    int64_t from = 0, page[5];
    size_t got, at = 0;
    do {
        ASSERT_OK(part_trace_offsets(p, kind, id, n, from, page, 5, &got));
        for (size_t i = 0; i < got && at < max; i++)
            out[at++] = page[i];
        if (got)
            from = page[got - 1] + 1;
    } while (got == 5);
    return at;
}

static void check(td_part *p, const model *m, int64_t ls)
{
    static int64_t out[MAXEV];
    for (int t = 0; t < NTRACES; t++) {
        uint8_t id[16];
        trace_id(t, id);
        size_t first = 0;
        while (first < m->n[t] && m->off[t][first] < ls)
            first++;
        size_t got = all(p, TD_TRACE_BY_TRACE, id, 16, out, MAXEV);
        ASSERT_EQ(got, m->n[t] - first);
        for (size_t i = 0; i < got; i++)
            ASSERT_EQ(out[i], m->off[t][first + i]);
    }
    /* By parent span and by cause. */
    uint8_t two[8] = {0, 0, 0, 0, 0, 0, 0, 2};
    size_t first = 0;
    while (first < m->nparent && m->parent_off[first] < ls)
        first++;
    size_t got = all(p, TD_TRACE_BY_PARENT, two, 8, out, MAXEV);
    ASSERT_EQ(got, m->nparent - first);
    for (size_t i = 0; i < got; i++)
        ASSERT_EQ(out[i], m->parent_off[first + i]);
    ASSERT_EQ(all(p, TD_TRACE_BY_CAUSE, "orders/0/0", 10, out, MAXEV), got);
    ASSERT_EQ(all(p, TD_TRACE_BY_CAUSE, "orders/0/1", 10, out, MAXEV), 0u);
    uint8_t none[16] = {1};
    ASSERT_EQ(all(p, TD_TRACE_BY_TRACE, none, 16, out, MAXEV), 0u);
}

static int count_files(const char *dir, const char *ext)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "ls %s | grep -c '%s$'", dir, ext);
    FILE *f = popen(cmd, "r");
    int n = 0;
    if (fscanf(f, "%d", &n) != 1)
        n = 0;
    pclose(f);
    return n;
}

static void first_file(const char *dir, char *path, size_t n)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "ls %s/*.traceindex | head -1", dir);
    FILE *f = popen(cmd, "r");
    ASSERT(fgets(path, (int)n, f) != NULL);
    pclose(f);
    path[strcspn(path, "\n")] = 0;
}

static void test_lookups_through_rolls_and_reopen(void)
{
    char *dir = test_tmpdir("segtrace");
    td_topic_config c = traced_cfg();
    td_part *p;
    ASSERT_OK(part_open(td_io_posix(), dir, "t/0", &c, &p));
    static model m;
    memset(&m, 0, sizeof(m));
    check(p, &m, 0);
    fill(p, &m, 200);
    td_part_stats st;
    part_stats(p, &st);
    ASSERT(st.segments > 5);
    check(p, &m, 0); /* sealed segments' indexes in memory (seals owed) */
    ASSERT_OK(part_sync(p));
    ASSERT_EQ(count_files(dir, ".traceindex"), st.segments - 1);
    ASSERT_EQ(count_files(dir, ".keyindex"), 0); /* key.index is off */
    check(p, &m, 0);
    part_close(p);
    ASSERT_OK(part_open(td_io_posix(), dir, "t/0", &c, &p));
    check(p, &m, 0);
    fill(p, &m, 30);
    check(p, &m, 0);
    part_close(p);
    test_rmrf(dir);
}

static void test_missing_torn_and_corrupt_files_are_rebuilt(void)
{
    char *dir = test_tmpdir("segtrace");
    td_topic_config c = traced_cfg();
    td_part *p;
    ASSERT_OK(part_open(td_io_posix(), dir, "t/0", &c, &p));
    static model m;
    memset(&m, 0, sizeof(m));
    fill(p, &m, 150);
    part_close(p);
    char path[1024];
    first_file(dir, path, sizeof(path));
    struct stat sb;
    ASSERT_OK(stat(path, &sb));
    off_t whole = sb.st_size;
    ASSERT_OK(truncate(path, whole - 7)); /* torn */
    ASSERT_OK(part_open(td_io_posix(), dir, "t/0", &c, &p));
    ASSERT_OK(stat(path, &sb));
    ASSERT_EQ(sb.st_size, whole);
    check(p, &m, 0);
    part_close(p);
    ASSERT_OK(truncate(path, 3)); /* shorter than its header */
    ASSERT_OK(part_open(td_io_posix(), dir, "t/0", &c, &p));
    check(p, &m, 0);
    part_close(p);
    ASSERT_OK(unlink(path)); /* missing */
    ASSERT_OK(part_open(td_io_posix(), dir, "t/0", &c, &p));
    ASSERT_OK(stat(path, &sb));
    check(p, &m, 0);
    part_close(p);
    int fd = open(path, O_RDWR); /* corrupt, same size: the checksum at the first lookup */
    ASSERT(fd >= 0);
    uint8_t x = 0;
    ASSERT_EQ(pread(fd, &x, 1, 30), 1);
    x ^= 0x5a;
    ASSERT_EQ(pwrite(fd, &x, 1, 30), 1);
    close(fd);
    ASSERT_OK(part_open(td_io_posix(), dir, "t/0", &c, &p));
    check(p, &m, 0);
    check(p, &m, 0);
    part_close(p);
    test_rmrf(dir);
}

static void test_retention_removes_entries(void)
{
    char *dir = test_tmpdir("segtrace");
    td_topic_config c = traced_cfg();
    td_part *p;
    ASSERT_OK(part_open(td_io_posix(), dir, "t/0", &c, &p));
    static model m;
    memset(&m, 0, sizeof(m));
    fill(p, &m, 200);
    ASSERT_OK(part_sync(p));
    int64_t ls, cut = part_log_end(p) / 2 + 3;
    int before = count_files(dir, ".traceindex");
    ASSERT_OK(part_delete_before(p, cut, &ls));
    check(p, &m, cut);
    ASSERT(count_files(dir, ".traceindex") < before); /* deleted with their segments */
    part_close(p);
    ASSERT_OK(part_open(td_io_posix(), dir, "t/0", &c, &p));
    check(p, &m, cut);
    part_close(p);
    test_rmrf(dir);
}

static void test_off_refused_on_later_and_memory_bound(void)
{
    char *dir = test_tmpdir("segtrace");
    td_topic_config c = traced_cfg();
    c.trace_index = false;
    c.segment_bytes = 64 << 20; /* rolls only on the memory bound */
    td_part *p;
    ASSERT_OK(part_open(td_io_posix(), dir, "t/0", &c, &p));
    static model m;
    memset(&m, 0, sizeof(m));
    int64_t out[4];
    size_t got;
    uint8_t id[16];
    trace_id(0, id);
    ASSERT_EQ(part_trace_offsets(p, TD_TRACE_BY_TRACE, id, 16, 0, out, 4, &got), TD_EUNSUPPORTED);
    fill(p, &m, 5);
    /* On: the active segment rolls, the new one is indexed; the older one is built from its
     * log by the first lookup that needs it. */
    c.trace_index = true;
    c.trace_index_memory_bytes = 65536;
    part_set_config(p, &c);
    td_part_stats st0, st1;
    part_stats(p, &st0);
    fill(p, &m, 3000); /* more than 64 KiB of entries: rolls on the memory bound */
    part_stats(p, &st1);
    ASSERT(st1.segments > st0.segments);
    check(p, &m, 0);
    part_close(p);
    test_rmrf(dir);
}

TEST_MAIN(TEST(test_lookups_through_rolls_and_reopen),
          TEST(test_missing_torn_and_corrupt_files_are_rebuilt),
          TEST(test_retention_removes_entries), TEST(test_off_refused_on_later_and_memory_bound))
