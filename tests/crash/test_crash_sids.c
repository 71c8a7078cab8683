/*
 * Crash safety of stream IDs (storage/part_sid.c, docs/redis.md#stream-ids): 2000 seeded random
 * cases. Each appends to a partition (fsync=always) on the in-memory crash-simulating io table
 * (tests/support/memio.c) with every kind of ID request (the rule's `*`, Kafka appends without a
 * request, `ms-*`, explicit IDs near the top of the unsigned 64-bit range, XSETID, up to the
 * largest ID) until the "machine" dies at a random operation (anchor writes and renames count),
 * then simulates the power loss, recovers, and checks that every acknowledged record has the ID
 * it was given, that IDs strictly increase over the whole log, that the last ID is at least every
 * acknowledged one, that the entries added (XSETID's ENTRIESADDED, counted on by every later
 * append) are those of the last acknowledged XSETID with it, or of a later one that failed, and
 * that an append after recovery gets an ID above the last (or TD_EFULL when the last is the
 * largest).
 * A failing case prints its seed; run `test_crash_sids <seed>` to replay it alone.
 */
#include "storage/storage.h"
#include "support/memio.h"
#include "test.h"

#define MAXACK 4096
#define U64MAX UINT64_MAX

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Appends count records with timestamp ts and an ID request (req NULL: a Kafka append). */
static int append(td_part *p, int count, int64_t ts, part_sid_req *req, td_append_result *r)
{
    td_event ev[8];
    for (int i = 0; i < count; i++)
        ev[i] = (td_event){.value = "v", .value_len = 1, .timestamp_ms = ts};
    td_batch_encode_opts o;
    batch_encode_opts_init(&o);
    td_buf b;
    td_buf_init(&b);
    int rc = batch_encode(&b, &o, ev, (size_t)count);
    if (rc == 0)
        rc = req ? part_append_sid(p, b.p, b.len, ts, r, req) : part_append(p, b.p, b.len, ts, r);
    td_buf_free(&b);
    return rc;
}

static int64_t total_acked, total_anchored_ok, total_added_checked;

static void run_case(uint64_t seed)
{
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 11;
    memio *m = memio_new();
    memio_count_dir_ops(m, true);
    td_topic_config c;
    td_topic_config_init(&c);
    c.segment_bytes = 1024 + (int64_t)(rnd(&s) % 4096);
    c.retention_ms = -1;
    td_part *p;
    ASSERT_OK(part_open(memio_table(m), "/d/p", "sid/0", &c, &p));
    memio_fail_after(m, 3 + (int64_t)(rnd(&s) % 600));
    static td_sid acked[MAXACK];
    int64_t nacked = 0;
    td_sid set_acked = {0, 0}; /* the largest XSETID acknowledged */
    /* The last ENTRIESADDED acknowledged (at log end added_at, -1: none) and a later attempt
     * that failed (try_at -1: none): after recovery the count is one of them. */
    int64_t added_at = -1, try_at = -1;
    uint64_t added_n = 0, try_n = 0;
    for (int i = 0; i < 400 && nacked + 8 < MAXACK && !memio_dead(m); i++) {
        td_sid last;
        ASSERT_OK(part_stream_last(p, &last));
        int kind = (int)(rnd(&s) % 10);
        int count = 1 + (int)(rnd(&s) % 4);
        part_sid_req req = {PART_SID_AUTO, {0, 0}, {0, 0}};
        int64_t ts = 1000 + i;
        if (kind == 9) {
            /* XSETID: a little above the last, sometimes with the largest seq or the largest ID. */
            td_sid to = last;
            uint64_t r = rnd(&s) % 8;
            if (r == 0)
                to = (td_sid){U64MAX, U64MAX};
            else if (r < 4 && to.ms < U64MAX)
                to = (td_sid){to.ms + r, U64MAX - rnd(&s) % 2};
            else if (to.seq < U64MAX)
                to.seq++;
            int64_t n = rnd(&s) % 2 ? (int64_t)(rnd(&s) % 1000) : -1, at = -1;
            int rc = part_stream_xsetid(p, to, n, &at);
            if (rc == 0 && td_sid_cmp(to, set_acked) > 0)
                set_acked = to;
            if (rc == 0 && n >= 0) {
                added_at = at;
                added_n = (uint64_t)n;
                try_at = -1;
            } else if (rc != 0 && rc != TD_ESEQUENCE && n >= 0 && try_at < 0) {
                try_at = at;
                try_n = (uint64_t)n;
            }
            continue;
        }
        if (kind >= 5 && kind <= 6) {
            req.mode = PART_SID_MS;
            uint64_t r = rnd(&s) % 4;
            req.want.ms = r == 0   ? last.ms
                          : r == 1 ? last.ms + 1 + rnd(&s) % 3
                          : r == 2 ? (uint64_t)INT64_MAX + rnd(&s) % 5
                                   : U64MAX - rnd(&s) % 3;
            count = 1;
        } else if (kind >= 7) {
            req.mode = PART_SID_EXPLICIT;
            uint64_t r = rnd(&s) % 3;
            req.want = r == 0 ? (td_sid){last.ms, last.seq + 1 + rnd(&s) % 5}
                              : (td_sid){last.ms + rnd(&s) % 3, U64MAX - rnd(&s) % 4};
            count = 1;
        }
        if (req.mode != PART_SID_AUTO)
            ts = req.want.ms > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)req.want.ms;
        td_append_result r;
        int rc = append(p, count, ts, kind == 4 ? NULL : &req, &r);
        if (rc == TD_ESEQUENCE || rc == TD_ERANGE || rc == TD_EFULL)
            continue; /* refused as Redis refuses it: nothing written */
        if (rc != 0 || part_wait_durable(p, r.end_offset) != 0)
            break;
        td_sid first = req.got;
        if (kind == 4)
            ASSERT_OK(part_stream_id(p, r.base_offset, &first, NULL));
        ASSERT_EQ(r.base_offset, nacked);
        for (int k = 0; k < count; k++)
            acked[nacked++] = (td_sid){first.ms, first.seq + (uint64_t)k};
        if (req.mode != PART_SID_AUTO)
            total_anchored_ok++;
    }
    memio_fail_after(m, 0); /* the machine is dead: part_close writes nothing */
    part_close(p);
    memio_crash(m, seed);
    memio_fail_after(m, -1);
    ASSERT_OK(part_open(memio_table(m), "/d/p", "sid/0", &c, &p));
    if (part_offline(p))
        TEST_FAIL_("seed %llu: offline after recovery: %s", (unsigned long long)seed,
                   part_offline(p));
    int64_t end = part_log_end(p);
    if (end < nacked)
        TEST_FAIL_("seed %llu: %lld records, %lld acknowledged", (unsigned long long)seed,
                   (long long)end, (long long)nacked);
    td_sid prev = {0, 0}, id;
    for (int64_t o = 0; o < end; o++) {
        ASSERT_OK(part_stream_id(p, o, &id, NULL));
        if (o < nacked && td_sid_cmp(id, acked[o]) != 0)
            TEST_FAIL_("seed %llu: offset %lld has %" PRIu64 "-%" PRIu64 ", was given %" PRIu64
                       "-%" PRIu64,
                       (unsigned long long)seed, (long long)o, id.ms, id.seq, acked[o].ms,
                       acked[o].seq);
        if (o > 0 && td_sid_cmp(prev, id) >= 0)
            TEST_FAIL_("seed %llu: IDs do not increase at offset %lld", (unsigned long long)seed,
                       (long long)o);
        prev = id;
    }
    td_sid last;
    ASSERT_OK(part_stream_last(p, &last));
    ASSERT(td_sid_cmp(last, set_acked) >= 0);
    uint64_t added = part_stream_added(p, end);
    uint64_t want = added_at < 0 ? (uint64_t)end : added_n + (uint64_t)(end - added_at);
    uint64_t alt = try_at < 0 ? want : try_n + (uint64_t)(end - try_at);
    if (added != want && added != alt)
        TEST_FAIL_("seed %llu: %" PRIu64 " entries added, want %" PRIu64 " or %" PRIu64,
                   (unsigned long long)seed, added, want, alt);
    total_added_checked += added_at >= 0;
    ASSERT(end == 0 || td_sid_cmp(last, prev) >= 0);
    total_acked += nacked;
    /* Writable again, above the last ID, unless that is the largest. */
    part_sid_req req = {PART_SID_AUTO, {0, 0}, {0, 0}};
    td_append_result r;
    int rc = append(p, 2, 5000, &req, &r);
    if (last.ms == U64MAX && last.seq >= U64MAX - 1) {
        ASSERT_EQ(rc, TD_EFULL); /* two records do not fit */
    } else {
        ASSERT_OK(rc);
        ASSERT(td_sid_cmp(req.got, last) > 0);
    }
    part_close(p);
    memio_free(m);
}

static int cases = 2000;
static uint64_t only_seed;

static void test_sids_survive_crashes(void)
{
    if (only_seed) {
        run_case(only_seed);
        return;
    }
    for (int i = 1; i <= cases; i++)
        run_case((uint64_t)i);
    fprintf(stderr, "%d crash cases: %lld records acknowledged, %lld with ID requests\n", cases,
            (long long)total_acked, (long long)total_anchored_ok);
    /* The cases must exercise something: acknowledged records, explicit and `ms-*` among them. */
    ASSERT(total_acked > cases * 5);
    ASSERT(total_anchored_ok > cases);
    ASSERT(total_added_checked > cases / 10); /* ENTRIESADDED acknowledged before the crash */
}

int main(int argc, char **argv)
{
    td_log_set_level(TD_LOG_OFF); /* every case kills the machine on purpose */
    if (argc > 1)
        only_seed = strtoull(argv[1], NULL, 10);
    fprintf(stderr, "-- test_sids_survive_crashes\n");
    test_sids_survive_crashes();
    printf("1 passed, 0 failed\n");
    return 0;
}
