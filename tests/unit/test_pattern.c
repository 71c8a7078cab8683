/* Unit tests for topic wildcard patterns (broker/pattern.c): '*' is one segment, '#' zero or
 * more, literal segments match exactly, and validation refuses what cannot be a pattern. */
#include <string.h>

#include "broker/pattern.h"
#include "test.h"
#include "tidings.h"

static bool match(const char *p, const char *t)
{
    return td_pattern_match(p, strlen(p), t, strlen(t));
}

static int validate(const char *p)
{
    const char *why = NULL;
    int rc = td_pattern_validate(p, strlen(p), &why);
    if (rc && !why)
        TEST_FAIL_("refusal of '%s' without a reason", p);
    return rc;
}

static void test_match(void)
{
    ASSERT(match("orders", "orders"));
    ASSERT(!match("orders", "orders.eu"));
    ASSERT(!match("orders", "order"));
    ASSERT(match("orders.*", "orders.eu"));
    ASSERT(!match("orders.*", "orders"));
    ASSERT(!match("orders.*", "orders.eu.paris"));
    ASSERT(match("orders.#", "orders"));
    ASSERT(match("orders.#", "orders.eu"));
    ASSERT(match("orders.#", "orders.eu.paris"));
    ASSERT(!match("orders.#", "ordersx"));
    ASSERT(match("#", "anything.at.all"));
    ASSERT(match("#", "x"));
    ASSERT(match("#.audit", "audit"));
    ASSERT(match("#.audit", "a.b.audit"));
    ASSERT(!match("#.audit", "a.b.audit.x"));
    ASSERT(match("*.*", "a.b"));
    ASSERT(!match("*.*", "a"));
    ASSERT(match("a.#.b.*", "a.b.c"));
    ASSERT(match("a.#.b.*", "a.x.y.b.c"));
    ASSERT(!match("a.#.b.*", "a.x.y.b"));
    ASSERT(match("a.#.#.b", "a.b"));
    ASSERT(match("#.#", "q"));
    /* Backtracking: '#' must give back segments to let a later literal match. */
    ASSERT(match("#.x.#.x", "x.x.x"));
    ASSERT(match("#.b.#.b.c", "b.b.b.c"));
    ASSERT(!match("#.b.#.b.c", "b.c"));
    /* Empty segments in names ("a..b" is a valid topic name) are segments like any other. */
    ASSERT(match("a.*.b", "a..b"));
    ASSERT(match("a..b", "a..b"));
    ASSERT(!match("a.b", "a..b"));
    /* A wildcard in the first segment leaves out topics starting with '$' (MQTT's rule for the
     * system topics); a pattern that names the '$' segment matches them. */
    ASSERT(!match("#", "$sys.groups"));
    ASSERT(!match("*.groups", "$sys.groups"));
    ASSERT(!match("#.groups", "$sys.groups"));
    ASSERT(!match("*", "$x"));
    ASSERT(match("$sys.#", "$sys.groups"));
    ASSERT(match("$sys.*", "$sys.lag"));
    ASSERT(!match("$sys.*", "$sys"));
    ASSERT(match("$sys.groups", "$sys.groups"));
    ASSERT(match("a.#", "a.$b")); /* only the first segment is special */
    ASSERT(match("#", "x$.y"));
    ASSERT(td_pattern_is_literal("orders.eu", 9));
    ASSERT(!td_pattern_is_literal("orders.*", 8));
    ASSERT(!td_pattern_is_literal("#", 1));
}

static void test_validate(void)
{
    ASSERT_OK(validate("orders"));
    ASSERT_OK(validate("orders.*"));
    ASSERT_OK(validate("#"));
    ASSERT_OK(validate("*.b.#"));
    ASSERT_OK(validate("a_b-c.D9"));
    ASSERT_EQ(validate(""), TD_EINVAL);
    ASSERT_EQ(validate("ord*"), TD_EINVAL);
    ASSERT_EQ(validate("*x"), TD_EINVAL);
    ASSERT_EQ(validate("a.#b"), TD_EINVAL);
    ASSERT_EQ(validate("**"), TD_EINVAL);
    ASSERT_EQ(validate("a b"), TD_EINVAL);
    ASSERT_EQ(validate("a/b"), TD_EINVAL);
    ASSERT_EQ(validate("a,b"), TD_EINVAL);
    /* What names hold besides (Redis keys: docs/redis.md#keys-and-topics), and their escapes in
     * canonical form only. */
    ASSERT_OK(validate("user:1.*"));
    ASSERT_OK(validate("{tenant}:stream.#"));
    ASSERT_OK(validate("my%20key.*"));
    ASSERT_OK(validate("%")); /* the topic of the empty key */
    ASSERT_EQ(validate("a%"), TD_EINVAL);
    ASSERT_EQ(validate("a%2"), TD_EINVAL);
    ASSERT_EQ(validate("a%2f"), TD_EINVAL);
    ASSERT_EQ(validate("a%41"), TD_EINVAL);
    ASSERT_EQ(validate("caf\xc3\xa9"), TD_EINVAL);
    ASSERT(match("my%20key.*", "my%20key.eu") && !match("my%20key.*", "my key.eu"));
    /* Empty segments: "orders." is what a URL leaves of "orders.#" with an unescaped '#'. */
    static const char *const empty[] = {"orders.", ".", "..", ".x", "a..b", "a.*.", "#..#"};
    for (size_t i = 0; i < sizeof(empty) / sizeof(empty[0]); i++) {
        const char *why = NULL;
        if (td_pattern_validate(empty[i], strlen(empty[i]), &why) != TD_EINVAL ||
            !strstr(why, "empty segment"))
            TEST_FAIL_("pattern '%s' was not refused for its empty segment", empty[i]);
    }
    char big[300];
    memset(big, 'a', sizeof(big));
    ASSERT_EQ(td_pattern_validate(big, 250, &(const char *){NULL}), TD_EINVAL);
    ASSERT_OK(td_pattern_validate(big, 249, &(const char *){NULL}));
}

TEST_MAIN(TEST(test_match), TEST(test_validate))
