/* Unit tests for Redis consumer groups (broker/xgroup.c, docs/redis.md#consumer-groups). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/broker.h"
#include "broker/xgroup.h"
#include "storage/storage.h"
#include "test.h"

static td_slice S(const char *s)
{
    return td_slice_make(s, strlen(s));
}

static void produce(td_engine *e, const char *topic, int n)
{
    for (int i = 0; i < n; i++) {
        td_event ev = {.value = "v", .value_len = 1};
        ASSERT_OK(td_produce(e, topic, &ev, 1, NULL));
    }
}

/* The stream of a one-partition topic (release *ref). */
static xstream stream_of(td_engine *e, const char *topic, td_topic_ref **ref)
{
    ASSERT_OK(broker_topic_acquire(e, topic, ref));
    return (xstream){broker_topic_id(*ref), 0, broker_topic_part(*ref, 0)};
}

/* xgroup_deliver without a policy: nothing is redelivered. */
static int deliver(td_engine *e, const xstream *s, td_slice group, td_slice consumer, size_t count,
                   bool noack, int64_t now, int64_t *from, int64_t *to)
{
    td_sid *redo;
    size_t nredo;
    int rc =
        xgroup_deliver(e, s, group, consumer, count, noack, now, &redo, &nredo, from, to, NULL);
    ASSERT_EQ(nredo, 0);
    free(redo);
    return rc;
}

/* A fresh engine in a new directory (*dir) with the one-partition topic "s" holding n events;
 * its stream (release *ref). */
static xstream open_stream(const char *tag, int n, char **dir, td_engine **e, td_topic_ref **ref)
{
    *dir = test_tmpdir(tag);
    *e = test_engine_open(*dir);
    ASSERT_OK(td_topic_create(*e, "s", 1, NULL, 0));
    produce(*e, "s", n);
    return stream_of(*e, "s", ref);
}

static td_sid id_at(const xstream *s, int64_t off)
{
    td_sid id;
    ASSERT_OK(part_stream_id(s->p, off, &id, NULL));
    return id;
}

typedef struct collected {
    td_sid id[4096];
    char consumer[4096][16];
    int64_t deliveries[4096];
    size_t n;
} collected;

static void collect(void *arg, const xpending_info *p)
{
    collected *c = arg;
    c->id[c->n] = p->id;
    snprintf(c->consumer[c->n], sizeof(c->consumer[0]), "%.*s", (int)p->consumer.n,
             (const char *)p->consumer.p);
    c->deliveries[c->n] = p->deliveries;
    c->n++;
}

static collected *pending(td_engine *e, const xstream *s, const char *group, const char *consumer)
{
    static collected c;
    c.n = 0;
    const td_sid lo = {0, 0}, hi = {INT64_MAX, UINT64_MAX};
    ASSERT_OK(xgroup_pending(e, s, S(group), lo, hi,
                             consumer ? S(consumer) : td_slice_make(NULL, 0), 0, 0, 0, collect,
                             &c));
    return &c;
}

static void test_deliver_ack_and_compaction(void)
{
    char *dir;
    td_engine *e;
    td_topic_ref *ref;
    xstream s = open_stream("xgroup", 1000, &dir, &e, &ref);
    uint64_t seq;
    ASSERT_EQ(xgroup_create(e, &s, S("g"), (td_sid){0, 0}, -1, &seq), 0);
    ASSERT(seq > 0);
    ASSERT_EQ(xgroup_create(e, &s, S("g"), (td_sid){0, 0}, -1, &seq), TD_EEXIST);
    int64_t from, to;
    /* Two consumers take turns: each entry goes to exactly one of them. */
    ASSERT_EQ(deliver(e, &s, S("nope"), S("x"), 100, false, 1000, &from, &to), TD_ENOTFOUND);
    for (int i = 0; i < 10; i++) {
        ASSERT_OK(deliver(e, &s, S("g"), S(i % 2 ? "b" : "a"), 100, false, 1000, &from, &to));
        ASSERT_EQ(from, i * 100);
        ASSERT_EQ(to, i * 100 + 100);
    }
    ASSERT_OK(deliver(e, &s, S("g"), S("a"), 100, false, 1000, &from, &to));
    ASSERT_EQ(to - from, 0);
    collected *c = pending(e, &s, "g", NULL);
    ASSERT_EQ(c->n, 1000);
    for (size_t i = 0; i < 1000; i++) {
        ASSERT_EQ(td_sid_cmp(c->id[i], id_at(&s, (int64_t)i)), 0);
        ASSERT_STR_EQ(c->consumer[i], (i / 100) % 2 ? "b" : "a");
    }
    /* Acknowledge 900 of them, in order, then some again: the holes are compacted away, and the
     * rest stays right. */
    td_sid ids[1000];
    for (int i = 0; i < 1000; i++)
        ids[i] = id_at(&s, i);
    size_t acked;
    ASSERT_OK(xgroup_ack(e, &s, S("g"), ids, 900, &acked, &seq));
    ASSERT_EQ(acked, 900);
    ASSERT(seq > 0);
    ASSERT_OK(xgroup_ack(e, &s, S("g"), ids + 850, 50, &acked, &seq));
    ASSERT_EQ(acked, 0);
    ASSERT_EQ(seq, 0); /* nothing changed: nothing to wait for */
    c = pending(e, &s, "g", NULL);
    ASSERT_EQ(c->n, 100);
    ASSERT_EQ(td_sid_cmp(c->id[0], ids[900]), 0);
    c = pending(e, &s, "g", "a");
    ASSERT_EQ(c->n, 0);
    xgroup_info gi;
    ASSERT_OK(xgroup_consumers(e, &s, S("g"), &gi, NULL, NULL));
    ASSERT_EQ(gi.pending, 100);
    ASSERT_EQ(td_sid_cmp(gi.pel_min, ids[900]), 0);
    ASSERT_EQ(td_sid_cmp(gi.pel_max, ids[999]), 0);
    ASSERT_EQ(td_sid_cmp(gi.last_id, ids[999]), 0);
    /* SETID back: delivered again, to the new reader, with a delivery count of 1. */
    ASSERT_OK(xgroup_setid(e, &s, S("g"), ids[949], -1, &seq));
    ASSERT_OK(deliver(e, &s, S("g"), S("c"), 0, false, 2000, &from, &to));
    ASSERT_EQ(from, 950);
    ASSERT_EQ(to, 1000);
    c = pending(e, &s, "g", "c");
    ASSERT_EQ(c->n, 50);
    ASSERT_EQ(c->deliveries[0], 1);
    ASSERT_EQ(pending(e, &s, "g", "b")->n, 50);
    /* History: c's entries after an ID, delivered once more. */
    td_sid *h;
    size_t nh;
    ASSERT_OK(xgroup_history(e, &s, S("g"), S("c"), ids[960], 5, 3000, &h, &nh, NULL));
    ASSERT_EQ(nh, 5);
    ASSERT_EQ(td_sid_cmp(h[0], ids[961]), 0);
    free(h);
    c = pending(e, &s, "g", "c");
    ASSERT_EQ(c->deliveries[11], 2);
    ASSERT_EQ(c->deliveries[10], 1);
    /* NOACK moves the last ID only. */
    produce(e, "s", 3);
    ASSERT_OK(deliver(e, &s, S("g"), S("c"), 0, true, 3000, &from, &to));
    ASSERT_EQ(to - from, 3);
    ASSERT_EQ(pending(e, &s, "g", NULL)->n, 100);
    broker_topic_release(ref);
    td_engine_close(e);
    test_rmrf(dir);
}

static void test_claims(void)
{
    char *dir;
    td_engine *e;
    td_topic_ref *ref;
    xstream s = open_stream("xgroup-claim", 10, &dir, &e, &ref);
    td_sid ids[10];
    for (int i = 0; i < 10; i++)
        ids[i] = id_at(&s, i);
    uint64_t seq;
    int64_t from, to;
    ASSERT_OK(xgroup_create(e, &s, S("g"), (td_sid){0, 0}, -1, &seq));
    ASSERT_OK(deliver(e, &s, S("g"), S("dead"), 8, false, 1000, &from, &to));
    xclaim_opts o = {.min_idle_ms = 500, .delivery_ms = -1, .retry_count = -1};
    td_sid *cl, *del, next;
    size_t ncl, ndel;
    /* Not idle enough at 1400; idle at 1500. */
    ASSERT_OK(xgroup_claim(e, &s, S("g"), S("a"), ids, 2, &o, 1400, &cl, &ncl, &seq));
    ASSERT_EQ(ncl, 0);
    free(cl);
    ASSERT_OK(xgroup_claim(e, &s, S("g"), S("a"), ids, 2, &o, 1500, &cl, &ncl, &seq));
    ASSERT_EQ(ncl, 2);
    free(cl);
    collected *c = pending(e, &s, "g", "a");
    ASSERT_EQ(c->n, 2);
    ASSERT_EQ(c->deliveries[0], 2);
    /* Not pending (8, 9 were never delivered): only FORCE takes them, and only if they exist. */
    o.min_idle_ms = 0;
    ASSERT_OK(xgroup_claim(e, &s, S("g"), S("a"), ids + 8, 1, &o, 1500, &cl, &ncl, &seq));
    ASSERT_EQ(ncl, 0);
    free(cl);
    o.force = true;
    td_sid ghost = {ids[9].ms, ids[9].seq + 100};
    td_sid two[2] = {ids[8], ghost};
    ASSERT_OK(xgroup_claim(e, &s, S("g"), S("a"), two, 2, &o, 1500, &cl, &ncl, &seq));
    ASSERT_EQ(ncl, 1);
    free(cl);
    o.force = false;
    /* XAUTOCLAIM from the start, two at a time, JUSTID (the count does not grow). */
    o.justid = true;
    o.min_idle_ms = 100;
    ASSERT_OK(xgroup_autoclaim(e, &s, S("g"), S("b"), (td_sid){0, 0}, 2, &o, 1590, &cl, &ncl, &del,
                               &ndel, &next, &seq));
    ASSERT_EQ(ncl, 2);
    ASSERT_EQ(ndel, 0);
    ASSERT_EQ(td_sid_cmp(cl[0], ids[2]), 0); /* 0, 1 and 8 were claimed at 1500: not idle */
    ASSERT_EQ(td_sid_cmp(next, ids[4]), 0);
    free(cl);
    free(del);
    c = pending(e, &s, "g", "b");
    ASSERT_EQ(c->deliveries[0], 1);
    /* Trimmed entries leave the PEL when claimed. */
    int64_t start;
    ASSERT_OK(part_delete_before(s.p, 5, &start));
    o.justid = false;
    o.min_idle_ms = 0;
    ASSERT_OK(xgroup_autoclaim(e, &s, S("g"), S("b"), (td_sid){0, 0}, 100, &o, 1700, &cl, &ncl,
                               &del, &ndel, &next, &seq));
    ASSERT_EQ(ndel, 5);
    ASSERT_EQ(ncl, 4); /* 5, 6, 7 and 8 */
    ASSERT_EQ(next.ms, 0);
    free(cl);
    free(del);
    ASSERT_EQ(pending(e, &s, "g", NULL)->n, 4);
    /* RETRYCOUNT and TIME, LASTID. */
    o.retry_count = 7;
    o.delivery_ms = 1234;
    o.has_last_id = true;
    o.last_id = (td_sid){INT64_MAX, 5};
    ASSERT_OK(xgroup_claim(e, &s, S("g"), S("z"), ids + 5, 1, &o, 1800, &cl, &ncl, &seq));
    free(cl);
    c = pending(e, &s, "g", "z");
    ASSERT_EQ(c->n, 1);
    ASSERT_EQ(c->deliveries[0], 7);
    xgroup_info gi;
    ASSERT_OK(xgroup_consumers(e, &s, S("g"), &gi, NULL, NULL));
    ASSERT_EQ(gi.last_id.ms, INT64_MAX);
    /* DELCONSUMER drops its entries. */
    int64_t had;
    ASSERT_OK(xgroup_consumer_delete(e, &s, S("g"), S("b"), &had, &seq));
    ASSERT_EQ(had, 3);
    ASSERT_EQ(pending(e, &s, "g", NULL)->n, 1);
    broker_topic_release(ref);
    td_engine_close(e);
    test_rmrf(dir);
}

typedef struct snapshot {
    char text[65536];
    size_t len;
} snapshot;

/* Appends a name with its bytes outside printable ASCII as \xNN, so that a name's every byte
 * counts in the comparison. */
static void snap_name(snapshot *s, td_slice v)
{
    const uint8_t *p = v.p;
    for (size_t i = 0; i < v.n; i++)
        s->len += (size_t)snprintf(s->text + s->len, sizeof(s->text) - s->len,
                                   p[i] > 0x20 && p[i] < 0x7f ? "%c" : "\\x%02x", p[i]);
}

static void snap_group(void *arg, const xgroup_info *g)
{
    snapshot *s = arg;
    s->len += (size_t)snprintf(s->text + s->len, sizeof(s->text) - s->len, "group ");
    snap_name(s, g->name);
    s->len += (size_t)snprintf(s->text + s->len, sizeof(s->text) - s->len,
                               " last %" PRId64 "-%" PRIu64 " cons %zu pend %zu\n", g->last_id.ms,
                               g->last_id.seq, g->consumers, g->pending);
}

static void snap_consumer(void *arg, const xconsumer_info *c)
{
    snapshot *s = arg;
    s->len += (size_t)snprintf(s->text + s->len, sizeof(s->text) - s->len, "consumer ");
    snap_name(s, c->name);
    s->len += (size_t)snprintf(s->text + s->len, sizeof(s->text) - s->len,
                               " seen %" PRId64 " pend %zu\n", c->seen_ms, c->pending);
}

static void snap_pending(void *arg, const xpending_info *p)
{
    snapshot *s = arg;
    s->len += (size_t)snprintf(s->text + s->len, sizeof(s->text) - s->len,
                               "pending %" PRId64 "-%" PRIu64 " ", p->id.ms, p->id.seq);
    snap_name(s, p->consumer);
    s->len += (size_t)snprintf(s->text + s->len, sizeof(s->text) - s->len,
                               " at %" PRId64 " n %" PRId64 "\n", p->delivery_ms, p->deliveries);
}

static void take_snapshot(td_engine *e, const xstream *s, snapshot *out)
{
    out->len = 0;
    ASSERT_OK(xgroup_list(e, s, snap_group, out));
    const char *groups[] = {"g1", "g\0bin", "g3"};
    size_t lens[] = {2, 5, 2};
    const td_sid lo = {0, 0}, hi = {INT64_MAX, UINT64_MAX};
    for (int i = 0; i < 3; i++) {
        xgroup_info gi;
        td_slice g = td_slice_make(groups[i], lens[i]);
        if (xgroup_consumers(e, s, g, &gi, snap_consumer, out) == 0)
            ASSERT_OK(xgroup_pending(e, s, g, lo, hi, td_slice_make(NULL, 0), 0, 0, 0, snap_pending,
                                     out));
    }
}

static void test_state_survives_reopen(void)
{
    char *dir;
    td_engine *e;
    td_topic_ref *ref;
    xstream s = open_stream("xgroup-reopen", 50, &dir, &e, &ref);
    uint64_t seq;
    int64_t from, to;
    bool created;
    td_slice bin = td_slice_make("g\0bin", 5);
    ASSERT_OK(xgroup_create(e, &s, S("g1"), (td_sid){0, 0}, -1, &seq));
    ASSERT_OK(xgroup_create(e, &s, bin, id_at(&s, 9), -1, &seq));
    ASSERT_OK(xgroup_create(e, &s, S("g3"), id_at(&s, 49), -1, &seq));
    ASSERT_OK(deliver(e, &s, S("g1"), S("a"), 20, false, 1000, &from, &to));
    ASSERT_OK(deliver(e, &s, S("g1"), S("b"), 5, false, 1100, &from, &to));
    ASSERT_OK(deliver(e, &s, bin, td_slice_make("c\0d", 3), 3, false, 1200, &from, &to));
    ASSERT_OK(xgroup_consumer_create(e, &s, S("g3"), S("idle"), 1300, &created, &seq));
    td_sid ids[3] = {id_at(&s, 1), id_at(&s, 3), id_at(&s, 21)};
    size_t acked;
    ASSERT_OK(xgroup_ack(e, &s, S("g1"), ids, 3, &acked, &seq));
    ASSERT_EQ(acked, 3);
    td_sid *cl;
    size_t ncl;
    xclaim_opts o = {.delivery_ms = -1, .retry_count = 4};
    ASSERT_OK(xgroup_claim(e, &s, S("g1"), S("b"), ids + 1, 1, &o, 1400, &cl, &ncl, &seq));
    ASSERT_EQ(ncl, 0); /* acked: not pending */
    free(cl);
    td_sid one = id_at(&s, 5);
    ASSERT_OK(xgroup_claim(e, &s, S("g1"), S("b"), &one, 1, &o, 1400, &cl, &ncl, &seq));
    ASSERT_EQ(ncl, 1);
    free(cl);
    ASSERT_OK(xgroups_wait(e, seq));
    snapshot before, after;
    take_snapshot(e, &s, &before);
    ASSERT(before.len > 200);
    ASSERT(strstr(before.text, "group g\\x00bin last "));
    ASSERT(strstr(before.text, "consumer c\\x00d seen 1200 pend 3\n"));
    /* Its metrics label keeps the whole name. */
    td_metrics_out m = {0};
    ASSERT_OK(td_metrics_render(broker_metrics(e), &m));
    ASSERT_OK(td_buf_append_u8(&m.buf, 0));
    ASSERT(strstr(
        (char *)m.buf.p,
        "tidings_redis_group_pending{topic=\"s\",partition=\"0\",group=\"g\\\\x00bin\"} 3\n"));
    td_buf_free(&m.buf);
    broker_topic_release(ref);
    td_engine_close(e);

    e = test_engine_open(dir);
    s = stream_of(e, "s", &ref);
    take_snapshot(e, &s, &after);
    ASSERT_STR_EQ(after.text, before.text);
    /* A deleted topic takes its groups along, also from the catalog. */
    broker_topic_release(ref);
    ASSERT_OK(td_topic_delete(e, "s"));
    ASSERT_OK(td_topic_create(e, "s", 1, NULL, 0));
    s = stream_of(e, "s", &ref);
    take_snapshot(e, &s, &after);
    ASSERT_EQ(after.len, 0);
    broker_topic_release(ref);
    td_engine_close(e);
    e = test_engine_open(dir);
    s = stream_of(e, "s", &ref);
    take_snapshot(e, &s, &after);
    ASSERT_EQ(after.len, 0);
    broker_topic_release(ref);
    td_engine_close(e);
    test_rmrf(dir);
}

static void test_xdel(void)
{
    char *dir;
    td_engine *e;
    td_topic_ref *ref;
    xstream s = open_stream("xgroup-xdel", 10, &dir, &e, &ref);
    td_sid ids[10];
    for (int i = 0; i < 10; i++)
        ids[i] = id_at(&s, i);
    int64_t *offs;
    size_t n, deleted;
    uint64_t seq;
    td_sid max;
    /* Nothing removed anywhere: no list. */
    ASSERT_OK(xstream_deleted(e, &s, 0, 10, &offs, &n, NULL));
    ASSERT_EQ(n, 0);
    ASSERT(offs == NULL);
    td_sid gone[4] = {ids[7], ids[2], ids[2], {ids[9].ms, ids[9].seq + 5}};
    ASSERT_OK(xstream_delete(e, &s, gone, 4, &deleted, &seq));
    ASSERT_EQ(deleted, 2); /* a repeat and an ID the stream never had do not count */
    ASSERT_OK(xstream_deleted(e, &s, 0, 10, &offs, &n, &max));
    ASSERT_EQ(n, 2);
    ASSERT_EQ(offs[0], 2);
    ASSERT_EQ(offs[1], 7);
    ASSERT_EQ(td_sid_cmp(max, ids[7]), 0);
    free(offs);
    /* Deliveries skip them, and COUNT counts entries. */
    int64_t from, to;
    ASSERT_OK(xgroup_create(e, &s, S("g"), (td_sid){0, 0}, -1, &seq));
    ASSERT_OK(deliver(e, &s, S("g"), S("c"), 3, false, 1000, &from, &to));
    ASSERT_EQ(from, 0);
    ASSERT_EQ(to, 4);
    ASSERT_EQ(pending(e, &s, "g", NULL)->n, 3);
    /* Claims drop pending entries that were removed. */
    td_sid one = ids[3];
    ASSERT_OK(xstream_delete(e, &s, &one, 1, &deleted, &seq));
    xclaim_opts o = {.delivery_ms = -1, .retry_count = -1};
    td_sid *cl;
    size_t ncl;
    ASSERT_OK(xgroup_claim(e, &s, S("g"), S("d"), ids, 4, &o, 2000, &cl, &ncl, &seq));
    ASSERT_EQ(ncl, 2);
    free(cl);
    ASSERT_OK(xgroups_wait(e, seq));
    broker_topic_release(ref);
    td_engine_close(e);
    /* Saved; below the log start they are forgotten at the next XDEL. */
    e = test_engine_open(dir);
    s = stream_of(e, "s", &ref);
    ASSERT_OK(xstream_deleted(e, &s, 0, 10, &offs, &n, &max));
    ASSERT_EQ(n, 3);
    ASSERT_EQ(td_sid_cmp(max, ids[7]), 0);
    free(offs);
    int64_t start;
    ASSERT_OK(part_delete_before(s.p, 5, &start));
    one = ids[8];
    ASSERT_OK(xstream_delete(e, &s, &one, 1, &deleted, &seq));
    ASSERT_OK(xstream_deleted(e, &s, 0, 10, &offs, &n, &max));
    ASSERT_EQ(n, 2);
    ASSERT_EQ(offs[0], 7);
    ASSERT_EQ(td_sid_cmp(max, ids[8]), 0);
    free(offs);
    ASSERT_OK(xgroups_wait(e, seq));
    broker_topic_release(ref);
    td_engine_close(e);
    e = test_engine_open(dir);
    s = stream_of(e, "s", &ref);
    ASSERT_OK(xstream_deleted(e, &s, 0, 10, &offs, &n, &max));
    ASSERT_EQ(n, 2);
    free(offs);
    broker_topic_release(ref);
    td_engine_close(e);
    test_rmrf(dir);
}

static void test_policy(void)
{
    char *dir;
    td_engine *e;
    td_topic_ref *ref;
    xstream s = open_stream("xgroup-policy", 6, &dir, &e, &ref);
    uint64_t seq;
    ASSERT_OK(xgroup_create(e, &s, S("g"), (td_sid){0, 0}, -1, &seq));
    td_queue_policy pol;
    td_queue_policy_init(&pol);
    pol.ack_timeout_ms = 1000;
    pol.backoff_initial_ms = 500;
    pol.backoff_jitter = 0;
    pol.max_deliveries = 3;
    snprintf(pol.dead_letter_topic, sizeof(pol.dead_letter_topic), "dead");
    ASSERT_EQ(xgroup_set_policy(e, &s, S("nope"), &pol, &seq), TD_ENOTFOUND);
    ASSERT_OK(xgroup_set_policy(e, &s, S("g"), &pol, &seq));
    /* Deliver 4 at a fake time far in the past: due for redelivery (or dead) long ago. */
    int64_t t0 = td_wall_ms() - 100000, from, to;
    td_sid *redo;
    size_t nredo;
    ASSERT_OK(xgroup_deliver(e, &s, S("g"), S("a"), 4, false, t0, &redo, &nredo, &from, &to, NULL));
    ASSERT_EQ(nredo, 0);
    ASSERT_EQ(to - from, 4);
    free(redo);
    /* At t0 + 1499 nothing is due; at t0 + 1500 (timeout + first backoff) the 4 are, and COUNT 3
     * takes three of them, lowest first, before any new entry. */
    ASSERT_OK(xgroup_deliver(e, &s, S("g"), S("b"), 3, false, t0 + 1499, &redo, &nredo, &from, &to,
                             NULL));
    ASSERT_EQ(nredo, 0);
    ASSERT_EQ(to - from, 2); /* the two new ones */
    free(redo);
    ASSERT_OK(xgroup_deliver(e, &s, S("g"), S("b"), 3, false, t0 + 1500, &redo, &nredo, &from, &to,
                             NULL));
    ASSERT_EQ(nredo, 3);
    ASSERT_EQ(to - from, 0);
    ASSERT_EQ(td_sid_cmp(redo[0], id_at(&s, 0)), 0);
    free(redo);
    collected *c = pending(e, &s, "g", "b");
    ASSERT_EQ(c->n, 5);
    ASSERT_EQ(c->deliveries[0], 2);
    /* The policy is saved with the group. */
    ASSERT_OK(xgroups_wait(e, seq));
    broker_topic_release(ref);
    td_engine_close(e);
    e = test_engine_open(dir);
    s = stream_of(e, "s", &ref);
    bool has;
    td_queue_policy got;
    ASSERT_OK(xgroup_get_policy(e, &s, S("g"), &got, &has));
    ASSERT(has);
    ASSERT_EQ(got.ack_timeout_ms, 1000);
    ASSERT_EQ(got.max_deliveries, 3);
    ASSERT_STR_EQ(got.dead_letter_topic, "dead");
    /* Entries past their last delivery go to the dead-letter topic (the writer's sweep): claim
     * them with a count of 3 and an old delivery time. */
    xclaim_opts o = {.delivery_ms = t0, .retry_count = 3};
    td_sid all[6], *cl;
    size_t ncl;
    for (int i = 0; i < 6; i++)
        all[i] = id_at(&s, i);
    ASSERT_OK(xgroup_claim(e, &s, S("g"), S("z"), all, 2, &o, td_wall_ms(), &cl, &ncl, &seq));
    ASSERT_EQ(ncl, 2);
    free(cl);
    int64_t deadline = td_wall_ms() + 10000;
    while (pending(e, &s, "g", "z")->n && td_wall_ms() < deadline)
        usleep(10000);
    ASSERT_EQ(pending(e, &s, "g", "z")->n, 0);
    td_topic_info info;
    ASSERT_OK(td_topic_describe(e, "dead", &info));
    td_iter *it;
    td_event ev;
    ASSERT_OK(td_iter_open(e, "dead", 0, 0, &it));
    int copies = 0;
    while (td_iter_next(it, &ev) == 1)
        copies++;
    td_iter_close(it);
    ASSERT_EQ(copies, 2);
    ASSERT_OK(xgroup_set_policy(e, &s, S("g"), NULL, &seq));
    ASSERT_OK(xgroup_get_policy(e, &s, S("g"), &got, &has));
    ASSERT(!has);
    broker_topic_release(ref);
    td_engine_close(e);
    test_rmrf(dir);
}

/* Changes made while the writer saves earlier ones: every name reaches the catalog intact (the
 * journal's name copies must not be reused while a write still reads them). */
static void test_saves_race_changes(void)
{
    char *dir;
    td_engine *e;
    td_topic_ref *ref;
    xstream s = open_stream("xgroup-race", 4, &dir, &e, &ref);
    uint64_t seq = 0;
    int64_t from, to;
    char name[32], cons[64];
    for (int i = 0; i < 400; i++) {
        snprintf(name, sizeof(name), "group-%03d", i);
        snprintf(cons, sizeof(cons), "consumer-%03d", i);
        ASSERT_OK(xgroup_create(e, &s, S(name), (td_sid){0, 0}, -1, &seq));
        ASSERT_OK(deliver(e, &s, S(name), S(cons), 1, false, 1000 + i, &from, &to));
        if (i % 50 == 0)
            usleep(200); /* let the writer take what is there and write it meanwhile */
    }
    ASSERT_OK(xgroups_wait(e, seq));
    snapshot *before = malloc(sizeof(*before)), *after = malloc(sizeof(*after));
    ASSERT(before && after);
    before->len = after->len = 0;
    ASSERT_OK(xgroup_list(e, &s, snap_group, before));
    ASSERT(strstr(before->text, "group group-399 "));
    broker_topic_release(ref);
    td_engine_close(e);

    e = test_engine_open(dir);
    s = stream_of(e, "s", &ref);
    ASSERT_OK(xgroup_list(e, &s, snap_group, after));
    ASSERT_STR_EQ(after->text, before->text);
    for (int i = 0; i < 400; i += 57) {
        xgroup_info gi;
        snprintf(name, sizeof(name), "group-%03d", i);
        after->len = 0;
        ASSERT_OK(xgroup_consumers(e, &s, S(name), &gi, snap_consumer, after));
        snprintf(cons, sizeof(cons), "consumer consumer-%03d seen %d pend 1\n", i, 1000 + i);
        ASSERT_STR_EQ(after->text, cons);
    }
    free(before);
    free(after);
    broker_topic_release(ref);
    td_engine_close(e);
    test_rmrf(dir);
}

static void count_notify(void *arg)
{
    __atomic_add_fetch((int *)arg, 1, __ATOMIC_RELAXED);
}

/* Blocked readers are told when a group is destroyed and when a topic's groups go with it
 * (deleted by any protocol), not only when entries fall due. */
static void test_notify_on_destroy_and_delete(void)
{
    char *dir;
    td_engine *e;
    td_topic_ref *ref;
    xstream s = open_stream("xgroup-notify", 2, &dir, &e, &ref);
    int calls = 0;
    xgroups_set_notify(e, count_notify, &calls);
    uint64_t seq;
    bool destroyed;
    ASSERT_OK(xgroup_create(e, &s, S("g1"), (td_sid){0, 0}, -1, &seq));
    ASSERT_OK(xgroup_create(e, &s, S("g2"), (td_sid){0, 0}, -1, &seq));
    ASSERT_EQ(__atomic_load_n(&calls, __ATOMIC_RELAXED), 0);
    ASSERT_OK(xgroup_destroy(e, &s, S("nope"), &destroyed, &seq));
    ASSERT(!destroyed);
    ASSERT_EQ(__atomic_load_n(&calls, __ATOMIC_RELAXED), 0);
    ASSERT_OK(xgroup_destroy(e, &s, S("g1"), &destroyed, &seq));
    ASSERT(destroyed);
    ASSERT_EQ(__atomic_load_n(&calls, __ATOMIC_RELAXED), 1);
    ASSERT_OK(td_topic_delete(e, "s"));
    ASSERT_EQ(__atomic_load_n(&calls, __ATOMIC_RELAXED), 2);
    xgroup_info gi;
    ASSERT_EQ(xgroup_consumers(e, &s, S("g2"), &gi, NULL, NULL), TD_ENOTFOUND);
    xgroups_set_notify(e, NULL, NULL);
    broker_topic_release(ref);
    td_engine_close(e);
    test_rmrf(dir);
}

TEST_MAIN(TEST(test_deliver_ack_and_compaction), TEST(test_claims),
          TEST(test_state_survives_reopen), TEST(test_xdel), TEST(test_policy),
          TEST(test_saves_race_changes), TEST(test_notify_on_destroy_and_delete))
