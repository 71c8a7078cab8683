/* Unit tests for the text of stream IDs (proto/resp/stream_id.c): Redis 7.0's parser on exact,
 * odd, truncated and overflowing input, checked against a reference built on the C library's
 * strtoll/strtoull as Redis's string2ull uses them; the writer; range bounds. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "proto/resp/stream_id.h"
#include "test.h"

/* Redis's string2ull, from the C library: the strict reader takes exactly the canonical text
 * of an int64 (and refuses a negative one); else strtoull must read the string whole. */
static bool ref_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    long long ll = strtoll(s, &end, 10);
    char canon[32];
    snprintf(canon, sizeof(canon), "%lld", ll);
    if (*s && !*end && errno == 0 && strcmp(canon, s) == 0 && strlen(s) < 21) {
        if (ll < 0)
            return false;
        *out = (uint64_t)ll;
        return true;
    }
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno == EINVAL || errno == ERANGE || !(*s && !*end))
        return false;
    *out = v;
    return true;
}

/* Redis's streamGenericParseIDOrReply over a C string (the input up to its first NUL). */
static bool ref_parse(const uint8_t *p, size_t n, uint64_t missing, int flags, td_sid *id,
                      bool *seq_given)
{
    if (n > 127)
        return false;
    char buf[128];
    memcpy(buf, p, n);
    buf[n] = 0;
    bool special = (buf[0] == '-' || buf[0] == '+') && buf[1] == 0;
    if ((flags & RESP_SID_STRICT) && special)
        return false;
    *seq_given = true;
    if (special) {
        *id = buf[0] == '-' ? (td_sid){0, 0} : (td_sid){UINT64_MAX, UINT64_MAX};
        return true;
    }
    char *dash = strchr(buf, '-');
    if (dash)
        *dash = 0;
    td_sid v = {0, missing};
    if (!ref_u64(buf, &v.ms))
        return false;
    if (dash) {
        if ((flags & RESP_SID_MS_STAR) && strcmp(dash + 1, "*") == 0) {
            v.seq = 0;
            *seq_given = false;
        } else if (!ref_u64(dash + 1, &v.seq)) {
            return false;
        }
    }
    *id = v;
    return true;
}

/* The parser and the reference agree on p[0..n) under every flag combination. */
static void agree(const uint8_t *p, size_t n)
{
    for (int flags = 0; flags < 4; flags++) {
        td_sid a = {1, 1}, b = {2, 2};
        bool ga = false, gb = false;
        bool ra = resp_sid_parse(p, n, 77, flags, &a, &ga);
        bool rb = ref_parse(p, n, 77, flags, &b, &gb);
        if (ra != rb || (ra && (td_sid_cmp(a, b) != 0 || ga != gb)))
            TEST_FAIL_("'%.*s' (flags %d): %d %" PRIu64 "-%" PRIu64 " vs reference %d %" PRIu64
                       "-%" PRIu64,
                       (int)n, (const char *)p, flags, ra, a.ms, a.seq, rb, b.ms, b.seq);
    }
}

static const char *const seeds[] = {
    "0",
    "0-0",
    "1-1",
    "123-456",
    "789-*",
    "0-*",
    "-",
    "+",
    "*",
    "18446744073709551615-18446744073709551615",
    "18446744073709551616-0",
    "0-18446744073709551616",
    "9223372036854775807-9223372036854775808",
    "99999999999999999999999-1",
    " 1-2",
    "\t\n\v\f\r 3",
    "+1-+2",
    "01-002",
    "1--5",
    "1--05",
    "1- -5",
    "1-2-3",
    "1-",
    "-1",
    "--",
    "-*",
    "*-*",
    "1-**",
    "0x1f-1",
    "1e5-1",
    "1.0-2",
    "1-2 ",
    "-0",
    "1--0",
    "1--9223372036854775808",
    "1--9223372036854775809",
    "1--18446744073709551615",
    "1--18446744073709551616",
    "+",
    "++1",
    "+-1",
    "00000000000000000000000000009-1",
};

/* Every seed, each strict prefix of it (truncated input), and each with one byte changed to a
 * byte of interest. */
static void test_parse_matches_reference(void)
{
    static const uint8_t subs[] = {0, ' ', '-', '+', '*', '0', '9', 'a', '\t', 0x80, 0xff};
    for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
        const uint8_t *s = (const uint8_t *)seeds[i];
        size_t n = strlen(seeds[i]);
        for (size_t k = 0; k <= n; k++)
            agree(s, k);
        uint8_t m[64];
        for (size_t k = 0; k < n; k++) {
            for (size_t j = 0; j < sizeof(subs); j++) {
                memcpy(m, s, n);
                m[k] = subs[j];
                agree(m, n);
            }
        }
    }
}

static void test_parse_exact(void)
{
    td_sid id;
    bool given;
#define OK(text, flags, ms_, seq_, given_)                                                         \
    do {                                                                                           \
        ASSERT(resp_sid_parse((const uint8_t *)(text), sizeof(text) - 1, 5, flags, &id, &given));  \
        ASSERT(id.ms == (ms_) && id.seq == (seq_) && given == (given_));                           \
    } while (0)
#define BAD(text, flags)                                                                           \
    ASSERT(!resp_sid_parse((const uint8_t *)(text), sizeof(text) - 1, 5, flags, &id, &given))
    OK("18446744073709551615-18446744073709551615", RESP_SID_STRICT, UINT64_MAX, UINT64_MAX, true);
    OK("9223372036854775808", RESP_SID_STRICT, (uint64_t)INT64_MAX + 1, 5, true);
    OK("7-*", RESP_SID_MS_STAR, 7, 0, false);
    OK("1- -5", 0, 1, UINT64_MAX - 4, true); /* strtoull wraps a minus sign */
    OK("1--05", 0, 1, UINT64_MAX - 4, true);
    OK("-", 0, 0, 0, true);
    OK("+", 0, UINT64_MAX, UINT64_MAX, true);
    OK("3\0garbage", 0, 3, 5, true); /* read up to the NUL, as a C string */
    BAD("1--5", 0);                  /* the strict reader refuses a negative value */
    BAD("7-*", RESP_SID_STRICT);
    BAD("-", RESP_SID_STRICT);
    BAD("+", RESP_SID_STRICT);
    BAD("18446744073709551616", 0);
    BAD("1-18446744073709551616", 0);
    BAD("", 0);
    BAD("1-", 0);
    /* 127 bytes is the longest argument Redis reads; 128 is refused whatever it holds. */
    char z[129];
    memset(z, '0', sizeof(z));
    z[126] = '9';
    ASSERT(resp_sid_parse((const uint8_t *)z, 127, 0, 0, &id, NULL) && id.ms == 9);
    z[127] = '9';
    ASSERT(!resp_sid_parse((const uint8_t *)z, 128, 0, 0, &id, NULL));
#undef OK
#undef BAD
}

static void test_format_and_bounds(void)
{
    char b[RESP_SID_TEXT_MAX];
    size_t n = resp_sid_format(b, (td_sid){UINT64_MAX, UINT64_MAX});
    ASSERT_EQ(n, 41);
    ASSERT_MEM_EQ(b, "18446744073709551615-18446744073709551615", 41);
    n = resp_sid_format(b, (td_sid){0, 0});
    ASSERT_EQ(n, 3);
    ASSERT_MEM_EQ(b, "0-0", 3);
    td_sid id;
#define BOUND(text, start) resp_sid_bound((const uint8_t *)(text), sizeof(text) - 1, start, &id)
    ASSERT(BOUND("-", true) == NULL && id.ms == 0 && id.seq == 0);
    ASSERT(BOUND("+", false) == NULL && id.ms == UINT64_MAX && id.seq == UINT64_MAX);
    ASSERT(BOUND("5", true) == NULL && id.ms == 5 && id.seq == 0);
    ASSERT(BOUND("5", false) == NULL && id.ms == 5 && id.seq == UINT64_MAX);
    ASSERT(BOUND("(5", true) == NULL && id.ms == 5 && id.seq == 1);
    ASSERT(BOUND("(5-0", false) == NULL && id.ms == 4 && id.seq == UINT64_MAX);
    ASSERT(BOUND("(9223372036854775807-18446744073709551615", true) == NULL &&
           id.ms == (uint64_t)INT64_MAX + 1 && id.seq == 0);
    ASSERT_STR_EQ(BOUND("(18446744073709551615-18446744073709551615", true),
                  "ERR invalid start ID for the interval");
    ASSERT_STR_EQ(BOUND("(0-0", false), "ERR invalid end ID for the interval");
    ASSERT(BOUND("(0", false) == NULL && id.ms == 0 && id.seq == UINT64_MAX - 1);
    ASSERT_STR_EQ(BOUND("(-", true), "ERR Invalid stream ID specified as stream command argument");
    ASSERT_STR_EQ(BOUND("(", true), "ERR Invalid stream ID specified as stream command argument");
    ASSERT_STR_EQ(BOUND("(x", true), "ERR Invalid stream ID specified as stream command argument");
    td_sid z = {0, 0};
    ASSERT(!resp_sid_prev(&z) && z.ms == 0 && z.seq == 0);
#undef BOUND
}

TEST_MAIN(TEST(test_parse_exact), TEST(test_parse_matches_reference), TEST(test_format_and_bounds))
