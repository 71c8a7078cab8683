/* Unit tests for the model of Redis's stream nodes (proto/resp/xnodes.c): listpack sizes, node
 * boundaries and the rax's node count. The integration test test_redis_trim.py compares the
 * same against a real redis-server. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/resp/xnodes.h"
#include "test.h"

static size_t str_size(const char *s)
{
    return xn_lp_str_size((const uint8_t *)s, strlen(s));
}

static void test_listpack_sizes(void)
{
    /* Integers: 1 to 9 bytes of encoding, and a one-byte back length. */
    static const struct {
        int64_t v;
        size_t n;
    } ints[] = {{0, 2},          {127, 2},       {128, 3},       {-1, 3},
                {4095, 3},       {-4096, 3},     {4096, 4},      {-4097, 4},
                {32767, 4},      {32768, 5},     {-32769, 5},    {8388607, 5},
                {8388608, 6},    {INT32_MAX, 6}, {INT32_MIN, 6}, {(int64_t)INT32_MAX + 1, 10},
                {INT64_MIN, 10}, {INT64_MAX, 10}};
    for (size_t i = 0; i < sizeof(ints) / sizeof(*ints); i++)
        ASSERT_EQ(xn_lp_int_size(ints[i].v), ints[i].n);
    /* Strings that are canonical integers are stored as integers. */
    ASSERT_EQ(str_size("0"), 2);
    ASSERT_EQ(str_size("128"), 3);
    ASSERT_EQ(str_size("-9223372036854775808"), 10);
    ASSERT_EQ(str_size("9223372036854775807"), 10);
    /* The others as strings: 1, 2 or 5 bytes of header, and a back length of 1 to 5. */
    ASSERT_EQ(str_size(""), 2);
    ASSERT_EQ(str_size("01"), 4);
    ASSERT_EQ(str_size("-0"), 4);
    ASSERT_EQ(str_size("+1"), 4);
    ASSERT_EQ(str_size("-"), 3);
    ASSERT_EQ(str_size("9223372036854775808"), 21);
    ASSERT_EQ(str_size("123456789012345678901"), 23); /* 21 characters: never an integer */
    char big[5000];
    memset(big, 'x', sizeof(big));
    ASSERT_EQ(xn_lp_str_size((const uint8_t *)big, 63), 65);
    ASSERT_EQ(xn_lp_str_size((const uint8_t *)big, 64), 67);
    ASSERT_EQ(xn_lp_str_size((const uint8_t *)big, 125), 128);
    ASSERT_EQ(xn_lp_str_size((const uint8_t *)big, 126), 130); /* 128 bytes: 2 of back length */
    ASSERT_EQ(xn_lp_str_size((const uint8_t *)big, 4095), 4099);
    ASSERT_EQ(xn_lp_str_size((const uint8_t *)big, 4096), 4103);
}

static void add(xn_model *m, const xn_cfg *c, int64_t off, int64_t ms, const char *v)
{
    td_slice fv[2] = {td_slice_make("f", 1), td_slice_make(v, strlen(v))};
    ASSERT_OK(xn_model_append(m, c, off, (td_sid){ms, 0}, fv, 2));
}

static void test_node_boundaries(void)
{
    xn_model m;
    xn_model_init(&m);
    xn_cfg c = {100, 4096};
    for (int64_t i = 0; i < 100; i++)
        add(&m, &c, i, i + 1, "v");
    ASSERT_EQ(m.n, 1);
    add(&m, &c, 100, 101, "v"); /* the 101st entry starts a node */
    ASSERT_EQ(m.n, 2);
    ASSERT_EQ(m.v[1].start, 100);
    ASSERT_EQ(m.length, 101);
    xn_model_free(&m);

    /* Bytes: a master entry of 18 bytes and entries of 1012 (flags, two deltas, a 1000-byte
     * value, the count): a fifth entry would bring 4066 + 1001 >= 4096. */
    char v[1001];
    memset(v, 'x', 1000);
    v[1000] = 0;
    for (int64_t i = 0; i < 9; i++)
        add(&m, &c, i, i + 1, v);
    ASSERT_EQ(m.n, 3);
    ASSERT_EQ(m.v[0].end, 4);
    ASSERT_EQ(m.v[1].start, 4);
    ASSERT_EQ(m.v[2].start, 8);

    /* XDEL: the tail node's entry goes, and its node with it; the next entry goes to the node
     * before when it fits. */
    ASSERT(xn_model_delete(&m, 8));
    ASSERT_EQ(m.n, 2);
    ASSERT(!xn_model_delete(&m, 8));
    add(&m, &c, 9, 10, "1");
    ASSERT_EQ(m.n, 2);
    ASSERT_EQ(m.v[1].end, 10);
    ASSERT_EQ(m.v[1].live, 5);
    xn_model_drop(&m, 1);
    ASSERT_EQ(m.n, 1);
    ASSERT_EQ(m.length, 5);
    xn_model_free(&m);
}

static void test_rax_nodes(void)
{
    xn_model m;
    xn_model_init(&m);
    xn_cfg c = {1, 0}; /* a node per entry: every entry's ID is a key */
    ASSERT_EQ(xn_model_rax_nodes(&m), 1);
    add(&m, &c, 0, 1, "v");
    ASSERT_EQ(xn_model_rax_nodes(&m), 2); /* the head (compressed) and a leaf */
    add(&m, &c, 1, 2, "v");               /* keys differing in byte 8 of 16 */
    /* head (7 bytes) + branch + two compressed nodes of 8 bytes + two leaves */
    ASSERT_EQ(xn_model_rax_nodes(&m), 6);
    add(&m, &c, 2, 3, "v"); /* a third child of the branch */
    ASSERT_EQ(xn_model_rax_nodes(&m), 8);
    xn_model_drop(&m, 2); /* recomputed: one key again */
    ASSERT_EQ(xn_model_rax_nodes(&m), 2);
    xn_model_free(&m);
    xn_model_init(&m);
    td_slice fv[2] = {td_slice_make("f", 1), td_slice_make("v", 1)};
    ASSERT_OK(xn_model_append(&m, &c, 0, (td_sid){1, 1}, fv, 2));
    ASSERT_OK(xn_model_append(&m, &c, 1, (td_sid){1, 2}, fv, 2)); /* the last byte differs */
    ASSERT_EQ(xn_model_rax_nodes(&m), 4);
    ASSERT_OK(xn_model_append(&m, &c, 2, (td_sid){INT64_C(1) << 56, 0}, fv, 2));
    /* The first byte differs: the head branches; the old path keeps a 15-byte node above the
     * earlier branch, the new key a 15-byte node above its leaf. */
    ASSERT_EQ(xn_model_rax_nodes(&m), 7);
    xn_model_free(&m);
}

/* Two models hold the same nodes and counts. */
static void same_model(xn_model *a, xn_model *b)
{
    ASSERT_EQ(a->n, b->n);
    ASSERT_EQ(a->length, b->length);
    for (size_t i = 0; i < a->n; i++)
        ASSERT_MEM_EQ(&a->v[i], &b->v[i], sizeof(xn_node));
    ASSERT_EQ(xn_model_rax_nodes(a), xn_model_rax_nodes(b));
}

/* A model of 30 entries in nodes of 4, with an entry deleted and the first node dropped. */
static void sample(xn_model *m)
{
    xn_cfg c = {4, 0};
    xn_model_init(m);
    for (int i = 0; i < 30; i++)
        add(m, &c, 10 + i, 5 + i, i % 3 ? "v" : "12345");
    ASSERT(xn_model_delete(m, 17));
    xn_model_drop(m, 1);
}

static void test_saved_roundtrip(void)
{
    xn_model m, l;
    sample(&m);
    xn_model_init(&l);
    uint8_t *b;
    size_t n;
    ASSERT_OK(xn_saved_snapshot(&m, 40, 14, &b, &n));
    ASSERT_EQ(n, (m.n + 2) * XN_REC);
    xn_saved sv;
    const char *why = NULL;
    ASSERT_OK(xn_saved_load(b, n, &l, &sv, &why));
    ASSERT_EQ(sv.end, 40);
    ASSERT_EQ(sv.ls, 14);
    ASSERT(sv.clean);
    ASSERT_EQ(sv.used, n);
    same_model(&m, &l);
    free(b);

    /* A journal: the snapshot, then changes each closed by a COMMIT. */
    uint8_t j[64 * XN_REC];
    size_t at = 0;
    at += xn_rec_head(j + at);
    for (size_t i = 0; i < m.n; i++)
        at += xn_rec_node(j + at, &m.v[i]);
    at += xn_rec_commit(j + at, &m, 40, 14);
    size_t first = at;
    /* XDEL of the whole last node (offsets 38, 39) and one entry of another. */
    int64_t start_last = m.v[m.n - 1].start;
    ASSERT(xn_model_delete(&m, 38));
    at += xn_rec_node(j + at, &m.v[m.n - 1]);
    ASSERT(xn_model_delete(&m, 39));
    at += xn_rec_remove(j + at, start_last);
    ASSERT(xn_model_delete(&m, 21));
    at += xn_rec_node(j + at, &m.v[1]); /* [18, 22) */
    at += xn_rec_commit(j + at, &m, 40, 14);
    size_t second = at;
    /* A trim: two nodes dropped, entries of the next marked deleted. */
    xn_model_drop(&m, 2);
    at += xn_rec_drop(j + at, m.v[0].start);
    m.v[0].live--;
    m.v[0].deleted++;
    m.length--;
    at += xn_rec_node(j + at, &m.v[0]);
    at += xn_rec_commit(j + at, &m, 40, m.v[0].start);
    ASSERT_OK(xn_saved_load(j, at, &l, &sv, &why));
    same_model(&m, &l);
    ASSERT_EQ(sv.ls, m.v[0].start);
    ASSERT_EQ(sv.recs, at / XN_REC - 1);

    /* Cut anywhere: the state of the last whole COMMIT before the cut, never another. */
    xn_model at_first, at_second;
    xn_model_init(&at_first);
    xn_model_init(&at_second);
    ASSERT_OK(xn_saved_load(j, first, &at_first, &sv, &why));
    ASSERT_OK(xn_saved_load(j, second, &at_second, &sv, &why));
    for (size_t cut = 0; cut < at; cut++) {
        int rc = xn_saved_load(j, cut, &l, &sv, &why);
        if (cut < first) {
            ASSERT_EQ(rc, -EINVAL);
            ASSERT(why != NULL);
            ASSERT_EQ(l.n, 0);
            continue;
        }
        ASSERT_OK(rc);
        ASSERT(!sv.clean || cut % XN_REC == 0);
        same_model(cut < second ? &at_first : &at_second, &l);
        ASSERT_EQ(sv.used, cut < second ? first : second);
    }
    /* A damaged byte: the records from it on are not trusted. */
    for (size_t pos = 0; pos < at; pos += 37) {
        uint8_t d[sizeof(j)];
        memcpy(d, j, at);
        d[pos] ^= 0x40;
        int rc = xn_saved_load(d, at, &l, &sv, &why);
        if (pos < first) {
            ASSERT_EQ(rc, -EINVAL);
            continue;
        }
        ASSERT_OK(rc);
        ASSERT(!sv.clean);
        same_model(pos < second ? &at_first : &at_second, &l);
    }
    xn_model_free(&at_first);
    xn_model_free(&at_second);
    xn_model_free(&m);
    xn_model_free(&l);
}

static void test_saved_rejected(void)
{
    xn_model m, l;
    sample(&m);
    xn_model_init(&l);
    uint8_t *b;
    size_t n;
    xn_saved sv;
    const char *why = NULL;
    ASSERT_OK(xn_saved_snapshot(&m, 40, 14, &b, &n));
    /* Another format version (the HEAD's second field), with a valid checksum. */
    uint8_t head[XN_REC];
    memcpy(head, b, XN_REC);
    td_store_be64(head + 12, XN_FORMAT + 1);
    td_store_be32(head + XN_REC - 4, td_crc32c(0, head, XN_REC - 4));
    memcpy(b, head, XN_REC);
    ASSERT_EQ(xn_saved_load(b, n, &l, &sv, &why), -EINVAL);
    ASSERT_STR_EQ(why, "another format version");
    /* Records that contradict their COMMIT: a node count that differs. */
    xn_rec_head(b);
    uint64_t f = td_load_be64(b + n - XN_REC + 4 + 16);
    td_store_be64(b + n - XN_REC + 4 + 16, f + 1);
    td_store_be32(b + n - 4, td_crc32c(0, b + n - XN_REC, XN_REC - 4));
    ASSERT_EQ(xn_saved_load(b, n, &l, &sv, &why), -EINVAL);
    ASSERT_STR_EQ(why, "inconsistent records");
    ASSERT_EQ(l.n, 0);
    /* Nodes out of order. */
    size_t at = xn_rec_head(b);
    at += xn_rec_node(b + at, &m.v[1]);
    at += xn_rec_node(b + at, &m.v[0]);
    xn_model two = {0};
    xn_model_init(&two);
    two.n = 2;
    two.length = m.v[0].live + m.v[1].live;
    at += xn_rec_commit(b + at, &two, 40, 14);
    /* (the loader puts NODE records in start order, so they are in order; a node whose range
     * overlaps its neighbour's is refused) */
    ASSERT_OK(xn_saved_load(b, at, &l, &sv, &why));
    xn_node bad = m.v[1];
    bad.start = m.v[0].start + 1;
    at = xn_rec_head(b);
    at += xn_rec_node(b + at, &m.v[0]);
    at += xn_rec_node(b + at, &bad);
    at += xn_rec_commit(b + at, &two, 40, 14);
    ASSERT_EQ(xn_saved_load(b, at, &l, &sv, &why), -EINVAL);
    /* Not a stream-nodes file at all, and an empty one. */
    memset(b, 'x', n);
    ASSERT_EQ(xn_saved_load(b, n, &l, &sv, &why), -EINVAL);
    ASSERT_EQ(xn_saved_load(b, 0, &l, &sv, &why), -EINVAL);
    free(b);
    xn_model_free(&m);
    xn_model_free(&l);
}

TEST_MAIN(TEST(test_listpack_sizes), TEST(test_node_boundaries), TEST(test_rax_nodes),
          TEST(test_saved_roundtrip), TEST(test_saved_rejected))
