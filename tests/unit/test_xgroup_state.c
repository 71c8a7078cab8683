/* Unit tests for Redis consumer-group state in __xgroup_state (broker/xgroup_state.c,
 * docs/storage.md "State topics"): the cost of a change, the record formats, a replay in any
 * order the cleaner may leave, and the migration of the catalog's old rows. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/state.h"
#include "broker/xgroup.h"
#include "storage/storage.h"
#include "test.h"

static td_slice S(const char *s)
{
    return td_slice_make(s, strlen(s));
}

static void produce(td_engine *e, const char *topic, int n)
{
    td_event ev[500];
    for (int i = 0; i < 500; i++)
        ev[i] = (td_event){.value = "v", .value_len = 1, .partition = 0};
    for (int done = 0; done < n;) {
        int k = n - done < 500 ? n - done : 500;
        ASSERT_OK(td_produce(e, topic, ev, (size_t)k, NULL));
        done += k;
    }
}

static xstream stream_of(td_engine *e, const char *topic, td_topic_ref **ref)
{
    ASSERT_OK(broker_topic_acquire(e, topic, ref));
    return (xstream){broker_topic_id(*ref), 0, broker_topic_part(*ref, 0)};
}

static td_sid id_at(const xstream *s, int64_t off)
{
    td_sid id;
    ASSERT_OK(part_stream_id(s->p, off, &id, NULL));
    return id;
}

/* The high watermark of __xgroup_state. */
static int64_t state_hw(td_engine *e)
{
    td_topic_ref *ref;
    ASSERT_OK(broker_topic_acquire(e, STATE_XGROUPS_TOPIC, &ref));
    int64_t hw = part_high_watermark(broker_topic_part(ref, 0));
    broker_topic_release(ref);
    return hw;
}

/* The last record of __xgroup_state: its key and value sizes (value -1: a tombstone). */
static void last_record(td_engine *e, size_t *klen, ssize_t *vlen)
{
    td_iter *it;
    ASSERT_OK(td_iter_open(e, STATE_XGROUPS_TOPIC, 0, state_hw(e) - 1, &it));
    td_event ev;
    ASSERT_EQ(td_iter_next(it, &ev), 1);
    *klen = ev.key_len;
    *vlen = ev.value ? (ssize_t)ev.value_len : -1;
    td_iter_close(it);
}

typedef struct snapshot {
    char text[1 << 16];
    size_t len;
} snapshot;

static void snap_name(snapshot *s, td_slice v)
{
    s->len += (size_t)snprintf(s->text + s->len, sizeof(s->text) - s->len, "%.*s", (int)v.n,
                               (const char *)v.p);
}

static void snap_group(void *arg, const xgroup_info *g)
{
    snapshot *s = arg;
    snap_name(s, g->name);
    char lag[24] = "nil";
    if (g->lag_known)
        snprintf(lag, sizeof(lag), "%" PRId64, g->lag);
    s->len += (size_t)snprintf(
        s->text + s->len, sizeof(s->text) - s->len,
        " last %" PRId64 "-%" PRIu64 " consumers %zu pending %zu read %" PRId64 " lag %s\n",
        (int64_t)g->last_id.ms, g->last_id.seq, g->consumers, g->pending, g->entries_read, lag);
}

static void snap_consumer(void *arg, const xconsumer_info *c)
{
    snapshot *s = arg;
    snap_name(s, c->name);
    s->len += (size_t)snprintf(s->text + s->len, sizeof(s->text) - s->len,
                               " seen %" PRId64 " pend %zu\n", c->seen_ms, c->pending);
}

static void snap_pending(void *arg, const xpending_info *p)
{
    snapshot *s = arg;
    s->len += (size_t)snprintf(s->text + s->len, sizeof(s->text) - s->len,
                               "%" PRId64 "-%" PRIu64 " ", p->id.ms, p->id.seq);
    snap_name(s, p->consumer);
    s->len += (size_t)snprintf(s->text + s->len, sizeof(s->text) - s->len,
                               " at %" PRId64 " n %" PRId64 "\n", p->delivery_ms, p->deliveries);
}

static void take(td_engine *e, const xstream *s, const char *group, snapshot *out)
{
    out->len = 0;
    out->text[0] = '\0';
    ASSERT_OK(xgroup_list(e, s, snap_group, out));
    xgroup_info gi;
    if (xgroup_consumers(e, s, S(group), &gi, snap_consumer, out) != 0)
        return;
    const td_sid lo = {0, 0}, hi = {INT64_MAX, UINT64_MAX};
    ASSERT_OK(
        xgroup_pending(e, s, S(group), lo, hi, td_slice_make(NULL, 0), 0, 0, 0, snap_pending, out));
}

/* XACK of one entry appends one tombstone of a few dozen bytes, with 10 or 20 000 pending:
 * the cost does not grow with the PEL (today's catalog rows were also O(1); a whole-state save
 * would not be). XREADGROUP appends a record per delivered entry, its consumer's and the
 * group's. */
static void test_ack_costs_one_small_record(void)
{
    char *dir = test_tmpdir("xstate-cost");
    td_engine *e = test_engine_open(dir);
    ASSERT_OK(td_topic_create(e, "s", 1, NULL, 0));
    produce(e, "s", 20010);
    td_topic_ref *ref;
    xstream s = stream_of(e, "s", &ref);
    uint64_t seq;
    ASSERT_OK(xgroup_create(e, &s, S("small"), (td_sid){0, 0}, -1, &seq));
    ASSERT_OK(xgroup_create(e, &s, S("large"), (td_sid){0, 0}, -1, &seq));
    td_sid *redo;
    size_t nredo;
    int64_t from, to;
    ASSERT_OK(xgroups_wait(e, seq));
    int64_t hw0 = state_hw(e);
    ASSERT_OK(xgroup_deliver(e, &s, S("small"), S("c"), 10, false, 1000, &redo, &nredo, &from, &to,
                             &seq));
    free(redo);
    /* Ten pending records, the new consumer's, its seen time with them, and the group's
     * (readers see them once durable: fsync=always). */
    ASSERT_OK(xgroups_wait(e, seq));
    ASSERT_EQ((int64_t)seq, state_hw(e));
    ASSERT_EQ(state_hw(e) - hw0, 13);
    ASSERT_OK(xgroup_deliver(e, &s, S("large"), S("c"), 20000, false, 1000, &redo, &nredo, &from,
                             &to, &seq));
    free(redo);
    ASSERT_OK(xgroups_wait(e, seq));
    for (int g = 0; g < 2; g++) {
        const char *name = g ? "large" : "small";
        td_sid id = id_at(&s, 5);
        size_t acked, klen;
        ssize_t vlen;
        int64_t before = state_hw(e);
        ASSERT_OK(xgroup_ack(e, &s, S(name), &id, 1, &acked, &seq));
        ASSERT_EQ(acked, 1);
        ASSERT_OK(xgroups_wait(e, seq));
        ASSERT_EQ(state_hw(e) - before, 1);
        last_record(e, &klen, &vlen);
        ASSERT_EQ(vlen, -1);                                /* a tombstone */
        ASSERT_EQ(klen, 2 + 8 + 4 + 4 + strlen(name) + 16); /* docs/storage.md */
        /* Acking it again changes nothing and writes nothing. */
        ASSERT_OK(xgroup_ack(e, &s, S(name), &id, 1, &acked, &seq));
        ASSERT_EQ(acked, 0);
        ASSERT_EQ(seq, 0);
        ASSERT_EQ(state_hw(e) - before, 1);
    }
    broker_topic_release(ref);
    td_engine_close(e);
    test_rmrf(dir);
}

/* Records appended by hand in the formats of docs/storage.md, children before their group's
 * record (as the cleaner may leave them: only each key's latest record is kept), replay into
 * the same state; a group whose record never comes is not invented. A group value of version 0
 * (before Redis's entries_read) gets the count of the entries up to its last delivered ID;
 * version 1 carries the counter after the policy. */
static void put_str32(td_buf *b, const char *s)
{
    ASSERT_OK(state_put32(b, (int32_t)strlen(s)));
    ASSERT_OK(td_buf_append(b, s, strlen(s)));
}

static void key_head(td_buf *k, int16_t kind, int64_t topic_id, const char *group)
{
    ASSERT_OK(state_put16(k, kind));
    ASSERT_OK(state_put64(k, topic_id));
    ASSERT_OK(state_put32(k, 0));
    put_str32(k, group);
}

static void test_replay_formats_any_order(void)
{
    char *dir = test_tmpdir("xstate-formats");
    td_engine *e = test_engine_open(dir);
    ASSERT_OK(td_topic_create(e, "s", 1, NULL, 0));
    produce(e, "s", 5);
    td_topic_ref *ref;
    xstream s = stream_of(e, "s", &ref);
    int64_t tid = s.topic_id;
    td_sid id1 = id_at(&s, 1), id3 = id_at(&s, 3);
    broker_topic_release(ref);
    td_buf k[9], v[9];
    for (int i = 0; i < 9; i++) {
        td_buf_init(&k[i]);
        td_buf_init(&v[i]);
    }
    /* 0: a pending entry of g (id1, consumer bob, delivered at 700, twice). */
    key_head(&k[0], 2, tid, "g");
    ASSERT_OK(state_put64(&k[0], id1.ms));
    ASSERT_OK(state_put64(&k[0], (int64_t)id1.seq));
    ASSERT_OK(state_put16(&v[0], 0));
    put_str32(&v[0], "bob");
    ASSERT_OK(state_put64(&v[0], 700));
    ASSERT_OK(state_put64(&v[0], 2));
    /* 1: another (id3), acknowledged later (2: its tombstone). */
    key_head(&k[1], 2, tid, "g");
    ASSERT_OK(state_put64(&k[1], id3.ms));
    ASSERT_OK(state_put64(&k[1], (int64_t)id3.seq));
    ASSERT_OK(td_buf_append(&v[1], v[0].p, v[0].len));
    ASSERT_OK(td_buf_append(&k[2], k[1].p, k[1].len));
    /* 3: bob's consumer record, seen at 800. */
    key_head(&k[3], 1, tid, "g");
    put_str32(&k[3], "bob");
    ASSERT_OK(state_put16(&v[3], 0));
    ASSERT_OK(state_put64(&v[3], 800));
    /* 4: the group, last delivered id3, created at 5, no policy. */
    key_head(&k[4], 0, tid, "g");
    ASSERT_OK(state_put16(&v[4], 0));
    ASSERT_OK(state_put64(&v[4], id3.ms));
    ASSERT_OK(state_put64(&v[4], (int64_t)id3.seq));
    ASSERT_OK(state_put64(&v[4], 5));
    ASSERT_OK(state_put32(&v[4], -1));
    /* 5: a consumer of a group "orphan" whose record never comes. */
    key_head(&k[5], 1, tid, "orphan");
    put_str32(&k[5], "x");
    ASSERT_OK(td_buf_append(&v[5], v[3].p, v[3].len));
    /* 6: id1 delivered once more (at 750, three times), after id3's records: the latest
     * record of a key decides, whatever the order of IDs in the log. */
    ASSERT_OK(td_buf_append(&k[6], k[0].p, k[0].len));
    ASSERT_OK(state_put16(&v[6], 0));
    put_str32(&v[6], "bob");
    ASSERT_OK(state_put64(&v[6], 750));
    ASSERT_OK(state_put64(&v[6], 3));
    /* 7: a group "h" of version 1: last delivered id1, no policy, a counter of 77 (set by
     * ENTRIESREAD: the lag is 5 - 77). */
    key_head(&k[7], 0, tid, "h");
    ASSERT_OK(state_put16(&v[7], 1));
    ASSERT_OK(state_put64(&v[7], (int64_t)id1.ms));
    ASSERT_OK(state_put64(&v[7], (int64_t)id1.seq));
    ASSERT_OK(state_put64(&v[7], 6));
    ASSERT_OK(state_put32(&v[7], -1));
    ASSERT_OK(state_put64(&v[7], 77));
    /* 8: "p" of version 1 with a policy and an unknown counter (-1), at 0-0: estimated 0. */
    key_head(&k[8], 0, tid, "p");
    ASSERT_OK(state_put16(&v[8], 1));
    ASSERT_OK(state_put64(&v[8], 0));
    ASSERT_OK(state_put64(&v[8], 0));
    ASSERT_OK(state_put64(&v[8], 7));
    put_str32(&v[8], "max.deliveries=4\n");
    ASSERT_OK(state_put64(&v[8], -1));
    td_event ev[9];
    for (int i = 0; i < 9; i++)
        ev[i] = (td_event){.key = k[i].p,
                           .key_len = k[i].len,
                           .value = i == 2 ? NULL : v[i].p,
                           .value_len = i == 2 ? 0 : v[i].len};
    int64_t end;
    ASSERT_OK(state_append(e, STATE_XGROUPS, 0, ev, 9, &end));
    ASSERT_OK(state_wait(e, STATE_XGROUPS, 0, end));
    for (int i = 0; i < 9; i++) {
        td_buf_free(&k[i]);
        td_buf_free(&v[i]);
    }
    td_engine_close(e);

    e = test_engine_open(dir);
    s = stream_of(e, "s", &ref);
    snapshot *got = malloc(sizeof(*got)), *want = malloc(sizeof(*want));
    ASSERT(got && want);
    take(e, &s, "g", got);
    want->len = (size_t)snprintf(
        want->text, sizeof(want->text),
        "g last %" PRId64 "-%" PRIu64 " consumers 1 pending 1 read 4 lag 1\n"
        "h last %" PRId64 "-%" PRIu64 " consumers 0 pending 0 read 77 lag -72\n"
        "p last 0-0 consumers 0 pending 0 read -1 lag 5\n"
        "bob seen 800 pend 1\n"
        "%" PRId64 "-%" PRIu64 " bob at 750 n 3\n",
        (int64_t)id3.ms, id3.seq, (int64_t)id1.ms, id1.seq, (int64_t)id1.ms, id1.seq);
    ASSERT_STR_EQ(got->text, want->text);
    td_queue_policy pol;
    bool has;
    ASSERT_OK(xgroup_get_policy(e, &s, S("p"), &pol, &has));
    ASSERT(has);
    ASSERT_EQ(pol.max_deliveries, 4);
    broker_topic_release(ref);
    td_engine_close(e);
    /* The orphan's tombstones were written at the first start: the same again. */
    e = test_engine_open(dir);
    s = stream_of(e, "s", &ref);
    take(e, &s, "g", got);
    ASSERT_STR_EQ(got->text, want->text);
    free(got);
    free(want);
    broker_topic_release(ref);
    td_engine_close(e);
    test_rmrf(dir);
}

/* A data directory from before __xgroup_state: its catalog rows become records, then the rows
 * are dropped (XDEL's stay: they are stream data); a start repeated with the rows still there
 * (a crash between the two steps) gives the same state. */
static int count_rows(void *arg, const catalog_xrow *r)
{
    int *n = arg;
    n[r->op == CATALOG_XDEL_PUT ? 1 : 0]++;
    return 0;
}

static void old_rows(const char *dir, int64_t tid, const td_sid *ids)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/catalog.db", dir);
    td_catalog *c;
    ASSERT_OK(catalog_open(path, &c));
    catalog_xrow rows[] = {
        {.op = CATALOG_XGROUP_PUT,
         .topic_id = tid,
         .group = S("old"),
         .id = ids[5],
         .ms = 42,
         .policy = "max.deliveries=5\nack.timeout.ms=60000\n"},
        {.op = CATALOG_XCONS_PUT,
         .topic_id = tid,
         .group = S("old"),
         .name = S("alice"),
         .ms = 900},
        {.op = CATALOG_XCONS_PUT, .topic_id = tid, .group = S("old"), .name = S("idle"), .ms = 950},
        {.op = CATALOG_XPEND_PUT,
         .topic_id = tid,
         .group = S("old"),
         .name = S("alice"),
         .id = ids[2],
         .ms = 910,
         .count = 1},
        {.op = CATALOG_XPEND_PUT,
         .topic_id = tid,
         .group = S("old"),
         .name = S("alice"),
         .id = ids[4],
         .ms = 920,
         .count = 3},
        {.op = CATALOG_XDEL_PUT, .topic_id = tid, .group = S(""), .id = ids[7], .ms = 7},
        {.op = CATALOG_XDEL_PUT, .topic_id = tid, .group = S(""), .id = ids[7], .ms = -1},
    };
    ASSERT_OK(catalog_xrows_put(c, rows, sizeof(rows) / sizeof(rows[0])));
    catalog_close(c);
}

static void test_migration(void)
{
    char *dir = test_tmpdir("xstate-migrate");
    td_engine *e = test_engine_open(dir);
    ASSERT_OK(td_topic_create(e, "s", 1, NULL, 0));
    produce(e, "s", 10);
    td_topic_ref *ref;
    xstream s = stream_of(e, "s", &ref);
    td_sid ids[10];
    for (int i = 0; i < 10; i++)
        ids[i] = id_at(&s, i);
    int64_t tid = s.topic_id;
    broker_topic_release(ref);
    td_engine_close(e);
    old_rows(dir, tid, ids);

    snapshot *first = malloc(sizeof(*first)), *again = malloc(sizeof(*again));
    ASSERT(first && again);
    for (int round = 0; round < 3; round++) {
        e = test_engine_open(dir);
        s = stream_of(e, "s", &ref);
        take(e, &s, "old", round ? again : first);
        size_t ndel;
        ASSERT_OK(xstream_deleted(e, &s, 0, 10, NULL, &ndel, NULL));
        ASSERT_EQ(ndel, 1);
        td_queue_policy pol;
        bool has;
        ASSERT_OK(xgroup_get_policy(e, &s, S("old"), &pol, &has));
        ASSERT(has);
        ASSERT_EQ(pol.max_deliveries, 5);
        broker_topic_release(ref);
        td_engine_close(e);
        /* The group rows are gone from the catalog, XDEL's are kept. */
        char path[4096];
        snprintf(path, sizeof(path), "%s/catalog.db", dir);
        td_catalog *c;
        ASSERT_OK(catalog_open(path, &c));
        int n[2] = {0, 0};
        ASSERT_OK(catalog_xrows_list(c, count_rows, n));
        catalog_close(c);
        ASSERT_EQ(n[0], 0);
        ASSERT_EQ(n[1], 2);
        if (round)
            ASSERT_STR_EQ(again->text, first->text);
        if (round == 1)
            old_rows(dir, tid, ids); /* as if the drop had not happened */
    }
    char want[1024];
    snprintf(want, sizeof(want),
             "old last %" PRId64 "-%" PRIu64 " consumers 2 pending 2 read 6 lag nil\n"
             "alice seen 900 pend 2\nidle seen 950 pend 0\n"
             "%" PRId64 "-%" PRIu64 " alice at 910 n 1\n%" PRId64 "-%" PRIu64 " alice at 920 n 3\n",
             ids[5].ms, ids[5].seq, ids[2].ms, ids[2].seq, ids[4].ms, ids[4].seq);
    ASSERT_STR_EQ(first->text, want);
    free(first);
    free(again);
    test_rmrf(dir);
}

TEST_MAIN(TEST(test_ack_costs_one_small_record), TEST(test_replay_formats_any_order),
          TEST(test_migration))
