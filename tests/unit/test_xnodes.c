/* Unit tests for the model of Redis's stream nodes (proto/resp/xnodes.c): listpack sizes, node
 * boundaries and the rax's node count. The integration test test_redis_trim.py compares the
 * same against a real redis-server. */
#include <stdint.h>
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

TEST_MAIN(TEST(test_listpack_sizes), TEST(test_node_boundaries), TEST(test_rax_nodes))
