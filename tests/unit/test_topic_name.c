/* Unit tests for base/topic_name.c: the rule of topic names and the mapping of Redis keys (any
 * bytes) to topic names and back, on examples, on every byte and every pair of bytes, at the
 * length limit, and on truncated and malformed names. */
#include <stdlib.h>

#include "base/base.h"
#include "test.h"

/* The name of a key, as a C string ("" when it does not fit). */
static const char *name_of(const void *key, size_t n, char out[TD_TOPIC_NAME_MAX + 1])
{
    if (td_key_to_name(key, n, out) < 0)
        out[0] = 0;
    return out;
}

static bool valid(const char *name)
{
    const char *why;
    size_t at;
    return td_name_check(name, strlen(name), &why, &at) == 0;
}

static void test_examples(void)
{
    char out[TD_TOPIC_NAME_MAX + 1];
    static const char *const same[] = {"orders",      "user:1:events",    "{tenant}:stream",
                                       "a|b@c",       "orders.eu-west_1", "...",
                                       "a;b=c?d&e+f", "~!$'()[]<>^`"};
    for (size_t i = 0; i < TD_ARRAY_LEN(same); i++) {
        ASSERT_STR_EQ(name_of(same[i], strlen(same[i]), out), same[i]);
        ASSERT(valid(same[i]));
    }
    static const struct {
        const char *key;
        size_t n;
        const char *name;
    } cases[] = {
        {"my key", 6, "my%20key"},
        {"a/b", 3, "a%2Fb"},
        {"", 0, "%"},
        {".", 1, "%2E"},
        {"..", 2, "%2E%2E"},
        {"%", 1, "%25"},
        {"\x00\xff", 2, "%00%FF"},
        {"caf\xc3\xa9", 5, "caf%C3%A9"},
        {"\"\\*#,", 5, "%22%5C%2A%23%2C"},
        {"a\r\nb\x7f", 5, "a%0D%0Ab%7F"},
    };
    for (size_t i = 0; i < TD_ARRAY_LEN(cases); i++) {
        ASSERT_STR_EQ(name_of(cases[i].key, cases[i].n, out), cases[i].name);
        ASSERT(valid(cases[i].name));
        uint8_t key[TD_TOPIC_NAME_MAX];
        ssize_t kn = td_name_to_key(cases[i].name, strlen(cases[i].name), key, sizeof(key));
        ASSERT_EQ(kn, (ssize_t)cases[i].n);
        ASSERT(memcmp(key, cases[i].key, cases[i].n) == 0);
    }
    /* The old alphabet is unchanged, and the public validation follows the rule. */
    ASSERT_OK(td_topic_name_validate("user:1:events"));
    ASSERT_OK(td_topic_name_validate("%"));
    ASSERT_OK(td_topic_name_validate("my%20key"));
    ASSERT_EQ(td_topic_name_validate("my key"), TD_ENAME);
    ASSERT_EQ(td_topic_name_validate("my%2fkey"), TD_ENAME);
    td_error_clear();
}

/* Names that are not canonical, or not names: refused by the check and by decoding. */
static void test_refused(void)
{
    static const char *const bad[] = {
        "",    ".",   "..",  "%3a",         "%41",   "%2e", "%2E%2E%2E", "a%2E", "%%",
        "a%",  "a%2", "%2",  "%G0",         "%0g",   "a b", "a/b",       "a\"b", "a\\b",
        "a*b", "a#b", "a,b", "caf\xc3\xa9", "a\x7f", "\t",  "%20%",      "%2E.", ".%2E"};
    uint8_t key[TD_TOPIC_NAME_MAX];
    for (size_t i = 0; i < TD_ARRAY_LEN(bad); i++) {
        if (valid(bad[i]))
            TEST_FAIL_("'%s' was taken for a name", bad[i]);
        if (td_name_to_key(bad[i], strlen(bad[i]), key, sizeof(key)) != -1)
            TEST_FAIL_("'%s' was decoded", bad[i]);
        if (td_topic_name_validate(bad[i]) != TD_ENAME)
            TEST_FAIL_("'%s' was validated", bad[i]);
    }
    td_error_clear();
    const char *why;
    size_t at;
    ASSERT_EQ(td_name_check("abc%zz", 6, &why, &at), -1);
    ASSERT_EQ(at, 3);
    ASSERT(strstr(why, "hex"));
    /* A decoding that does not fit the caller's buffer fails, never overflows it. */
    ASSERT_EQ(td_name_to_key("abc", 3, key, 2), -1);
    ASSERT_EQ(td_name_to_key("%2E%2E", 6, key, 1), -1);
}

/* Every byte and every pair of bytes round-trips, and each name is canonical. */
static void test_every_byte_and_pair(void)
{
    char name[TD_TOPIC_NAME_MAX + 1];
    uint8_t back[8];
    for (int a = 0; a < 256; a++) {
        uint8_t k1[1] = {(uint8_t)a};
        ASSERT(td_key_to_name(k1, 1, name) > 0);
        ASSERT(valid(name));
        /* A byte is itself exactly when it is plain; "." is the one plain byte written %2E. */
        ASSERT_EQ(strlen(name), (size_t)(td_name_plain((uint8_t)a) && a != '.' ? 1 : 3));
        ASSERT_EQ(td_name_to_key(name, strlen(name), back, sizeof(back)), 1);
        ASSERT_EQ(back[0], a);
        for (int b = 0; b < 256; b++) {
            uint8_t k2[2] = {(uint8_t)a, (uint8_t)b};
            ssize_t n = td_key_to_name(k2, 2, name);
            ASSERT(n >= 2 && n <= 6 && valid(name));
            ASSERT_EQ(td_name_to_key(name, (size_t)n, back, sizeof(back)), 2);
            ASSERT(back[0] == a && back[1] == b);
        }
    }
    static const char plain[] = "!$&'()+-.0123456789:;<=>?@AZ[]^_`az{|}~";
    for (const char *c = plain; *c; c++)
        ASSERT(td_name_plain((uint8_t)*c));
    static const char escaped[] = " %/\"\\*#,\x7f\x80\xff";
    for (const char *c = escaped; *c; c++)
        ASSERT(!td_name_plain((uint8_t)*c));
    ASSERT(!td_name_plain(0));
}

/* Names are at most 249 bytes, counted after escaping. */
static void test_length_limit(void)
{
    char name[TD_TOPIC_NAME_MAX + 1];
    uint8_t key[300];
    memset(key, 'k', sizeof(key));
    ASSERT_EQ(td_key_to_name(key, 249, name), 249);
    ASSERT_EQ(td_key_to_name(key, 250, name), -1);
    memset(key, ' ', sizeof(key));
    ASSERT_EQ(td_key_to_name(key, 83, name), 249);
    ASSERT_EQ(td_key_to_name(key, 84, name), -1);
    key[82] = 'x'; /* 82 escapes and 4 plain bytes: 250 */
    memset(key + 83, 'x', 3);
    ASSERT_EQ(td_key_to_name(key, 86, name), -1);
    ASSERT_EQ(td_key_to_name(key, 85, name), 249);
    char big[260];
    memset(big, 'n', sizeof(big));
    const char *why;
    size_t at;
    ASSERT_EQ(td_name_check(big, 250, &why, &at), -1);
    ASSERT_EQ(td_name_check(big, 249, &why, &at), 0);
}

/* Every prefix of a valid name is decoded or refused, reading nothing past its end (the copy on
 * the heap is exactly that long, for ASan). */
static void test_truncated(void)
{
    static const char *const names[] = {"my%20key%2Fx", "%C3%A9t%C3%A9", "%2E%2E", "user:1"};
    for (size_t i = 0; i < TD_ARRAY_LEN(names); i++) {
        size_t len = strlen(names[i]);
        for (size_t k = 0; k <= len; k++) {
            char *p = malloc(k ? k : 1);
            ASSERT(p != NULL);
            memcpy(p, names[i], k);
            uint8_t key[TD_TOPIC_NAME_MAX];
            ssize_t kn = td_name_to_key(p, k, key, sizeof(key));
            const char *why;
            size_t at;
            bool ok = td_name_check(p, k, &why, &at) == 0;
            ASSERT_EQ(kn >= 0, ok);
            if (ok) { /* and then canonical: the key's name is these bytes */
                char again[TD_TOPIC_NAME_MAX + 1];
                ASSERT_EQ(td_key_to_name(key, (size_t)kn, again), (ssize_t)k);
                ASSERT(memcmp(again, p, k) == 0);
            }
            free(p);
        }
    }
    /* Byte-wise escaping keeps prefixes: a key's prefix escapes to a prefix of its name. */
    char a[64], b[64];
    ASSERT_EQ(td_name_escape("user 1", 6, a, sizeof(a)), 8);
    ASSERT_EQ(td_name_escape("user", 4, b, sizeof(b)), 4);
    ASSERT(strncmp(a, b, 4) == 0);
    ASSERT_EQ(td_name_escape("user 1", 6, a, 8), -1); /* no room for the NUL */
    uint8_t u[8];
    size_t bad;
    ASSERT_EQ(td_name_unescape("user%20", 7, u, sizeof(u), &bad), 5);
    ASSERT_EQ(td_name_unescape("user%2", 6, u, sizeof(u), &bad), -1);
    ASSERT_EQ(bad, 4);
}

TEST_MAIN(TEST(test_examples), TEST(test_refused), TEST(test_every_byte_and_pair),
          TEST(test_length_limit), TEST(test_truncated))
