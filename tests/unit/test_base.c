/* Unit tests for base/: CRC32C, varints, murmur2, buffers, errors, clocks, logging. */
#include <errno.h>

#include "base/base.h"
#include "test.h"

/* Check values: the CRC catalogue's "123456789", and the four iSCSI vectors of RFC 3720
 * appendix B.4. */
static void test_crc32c_vectors(void)
{
    uint8_t buf[32];
    ASSERT_UEQ(td_crc32c(0, "123456789", 9), 0xE3069283u);
    ASSERT_UEQ(td_crc32c_sw(0, "123456789", 9), 0xE3069283u);
    memset(buf, 0, 32);
    ASSERT_UEQ(td_crc32c(0, buf, 32), 0x8A9136AAu);
    memset(buf, 0xff, 32);
    ASSERT_UEQ(td_crc32c(0, buf, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)i;
    ASSERT_UEQ(td_crc32c(0, buf, 32), 0x46DD794Eu);
    ASSERT_UEQ(td_crc32c_sw(0, buf, 32), 0x46DD794Eu);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)(31 - i);
    ASSERT_UEQ(td_crc32c(0, buf, 32), 0x113FDB5Cu);
    ASSERT_UEQ(td_crc32c(0, "", 0), 0);
}

/* Hardware and table paths agree on every length and alignment, and calls chain. */
static void test_crc32c_hw_matches_sw(void)
{
    uint8_t data[1024 + 16];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof(data); i++) {
        x = x * 1103515245u + 12345u;
        data[i] = (uint8_t)(x >> 16);
    }
    for (size_t off = 0; off < 8; off++)
        for (size_t n = 0; n <= 1024; n += (n < 64 ? 1 : 37)) {
            uint32_t a = td_crc32c(0, data + off, n);
            ASSERT_UEQ(a, td_crc32c_sw(0, data + off, n));
            size_t half = n / 3;
            ASSERT_UEQ(td_crc32c(td_crc32c(0, data + off, half), data + off + half, n - half), a);
        }
    fprintf(stderr, "crc32c hardware: %s\n", td_crc32c_hw_available() ? "yes" : "no");
}

/* Long inputs take the three-chain path (blocks of 3 x 256 and 3 x 8192 bytes, joined): it
 * agrees with the table path on lengths around every block boundary, at every alignment. */
static void test_crc32c_long_inputs(void)
{
    size_t cap = 4 * 3 * 8192 + 3 * 256 + 64;
    uint8_t *data = malloc(cap);
    ASSERT(data != NULL);
    uint32_t x = 777;
    for (size_t i = 0; i < cap; i++) {
        x = x * 1103515245u + 12345u;
        data[i] = (uint8_t)(x >> 16);
    }
    size_t lens[] = {
        767,   768,         769,         1535,  1536,  1543,  24575,           24576,
        24577, 24576 + 768, 24576 + 775, 49151, 49152, 49160, 3 * 24576 + 767, 4 * 24576 + 768 + 9};
    for (size_t off = 0; off < 8; off += 3)
        for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
            size_t n = lens[i];
            ASSERT(off + n <= cap);
            uint32_t a = td_crc32c(0, data + off, n);
            ASSERT_UEQ(a, td_crc32c_sw(0, data + off, n));
            ASSERT_UEQ(
                td_crc32c(td_crc32c(0xdeadbeefu, data + off, n / 2), data + off + n / 2, n - n / 2),
                td_crc32c_sw(0xdeadbeefu, data + off, n));
        }
    memset(data, 0, cap); /* zeros: the joined chains must still see every block */
    ASSERT_UEQ(td_crc32c(0, data, 49152), td_crc32c_sw(0, data, 49152));
    free(data);
}

/* Values computed by Kafka's Java Utils.murmur2, as librdkafka's unit test lists them. */
/* Queue groups save td_hash64 of event keys: these values pin it. */
static void test_hash64_is_stable(void)
{
    ASSERT_UEQ(td_hash64("", 0), 0x14650fb0739d0383ull);
    ASSERT_UEQ(td_hash64("orders-17", 9), 0x7eecbc812eb72509ull);
}

static void test_murmur2_java_vectors(void)
{
    static const struct {
        const char *key;
        uint32_t java;
    } v[] = {
        {"kafka", 0xd067cf64},
        {"giberish123456789", 0x8f552b0c},
        {"1234", 0x9fc97b14},
        {"234", 0xe7c009ca},
        {"34", 0x873930da},
        {"4", 0x5a4b5ca1},
        {"PreAmbleWillBeRemoved,ThePrePartThatIs", 0x78424f1c},
        {"reAmbleWillBeRemoved,ThePrePartThatIs", 0x4a62b377},
        {"eAmbleWillBeRemoved,ThePrePartThatIs", 0xe0e4e09e},
        {"AmbleWillBeRemoved,ThePrePartThatIs", 0x62b8b43f},
        {"", 0x106e08d9},
    };
    for (size_t i = 0; i < TD_ARRAY_LEN(v); i++)
        ASSERT_UEQ((uint32_t)td_murmur2(v[i].key, strlen(v[i].key)), v[i].java);
    /* The partitioner masks the sign bit: "kafka" hashes to 0xd067cf64 -> 0x5067cf64. */
    ASSERT_EQ(td_partition_for_key("kafka", 5, 1000), 0x5067cf64 % 1000);
    ASSERT_EQ(td_partition_for_key("kafka", 5, 1), 0);
}

static void test_varint_roundtrip(void)
{
    static const int64_t vals[] = {0,       1,        -1,        63,        -64,        64,
                                   -65,     300,      -300,      INT32_MAX, INT32_MIN,  1LL << 40,
                                   -(1LL << 40), INT64_MAX, INT64_MIN};
    uint8_t b[10];
    for (size_t i = 0; i < TD_ARRAY_LEN(vals); i++) {
        int64_t v = vals[i], out;
        size_t n = td_varlong_encode(b, v);
        ASSERT_EQ(n, td_varlong_size(v));
        ASSERT_EQ(td_varlong_decode(b, n, &out), (int)n);
        ASSERT_EQ(out, v);
        /* Every strict prefix needs more input. */
        for (size_t k = 0; k < n; k++)
            ASSERT_EQ(td_varlong_decode(b, k, &out), TD_EAGAIN);
        if (v >= INT32_MIN && v <= INT32_MAX) {
            int32_t o32;
            n = td_varint_encode(b, (int32_t)v);
            ASSERT_EQ(n, td_varint_size((int32_t)v));
            ASSERT_EQ(td_varint_decode(b, n, &o32), (int)n);
            ASSERT_EQ(o32, v);
        }
    }
    /* Zigzag: the protobuf table. */
    ASSERT_EQ(td_varint_encode(b, 0), 1);
    ASSERT_EQ(b[0], 0);
    td_varint_encode(b, -1);
    ASSERT_EQ(b[0], 1);
    td_varint_encode(b, 1);
    ASSERT_EQ(b[0], 2);
    td_varint_encode(b, -2);
    ASSERT_EQ(b[0], 3);
    ASSERT_EQ(td_uvarint_encode(b, 300), 2);
    ASSERT_EQ(b[0], 0xac);
    ASSERT_EQ(b[1], 0x02);
}

static void test_varint_overlong(void)
{
    uint8_t b[11];
    int32_t v32;
    int64_t v64;
    memset(b, 0x80, sizeof(b));
    ASSERT_EQ(td_varint_decode(b, 5, &v32), TD_EPROTO);
    ASSERT_EQ(td_varlong_decode(b, 10, &v64), TD_EPROTO);
    /* 5 bytes but more than 32 bits. */
    const uint8_t big[] = {0xff, 0xff, 0xff, 0xff, 0x7f};
    uint32_t u;
    ASSERT_EQ(td_uvarint32_decode(big, 5, &u), TD_EPROTO);
    const uint8_t max32[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
    ASSERT_EQ(td_uvarint32_decode(max32, 5, &u), 5);
    ASSERT_UEQ(u, UINT32_MAX);
    /* The 10th byte of a 64-bit varint may only carry one bit. */
    uint8_t ten[10];
    memset(ten, 0xff, 9);
    ten[9] = 0x02;
    uint64_t u64;
    ASSERT_EQ(td_uvarint_decode(ten, 10, &u64), TD_EPROTO);
    ten[9] = 0x01;
    ASSERT_EQ(td_uvarint_decode(ten, 10, &u64), 10);
    ASSERT_UEQ(u64, UINT64_MAX);
}

static void test_buf(void)
{
    td_buf b;
    td_buf_init(&b);
    for (int i = 0; i < 1000; i++)
        ASSERT_OK(td_buf_append_be32(&b, (uint32_t)i));
    ASSERT_EQ(b.len, 4000);
    for (int i = 0; i < 1000; i++)
        ASSERT_EQ(td_load_be32(b.p + 4 * i), i);
    td_buf_reset(&b);
    ASSERT_OK(td_buf_append_be64(&b, 0x0102030405060708ull));
    ASSERT_OK(td_buf_append_be16(&b, 0xabcd));
    ASSERT_UEQ(td_load_be64(b.p), 0x0102030405060708ull);
    ASSERT_EQ(b.p[0], 1);
    ASSERT_UEQ(td_load_be16(b.p + 8), 0xabcd);
    ASSERT_EQ(td_buf_reserve(&b, SIZE_MAX - 4), -ENOMEM);
    td_buf_free(&b);
    ASSERT(b.p == NULL);
}

static void test_errors(void)
{
    ASSERT_STR_EQ(td_strerror(TD_ECORRUPT), "corrupt data");
    ASSERT_STR_EQ(td_errname(TD_ECORRUPT), "TD_ECORRUPT");
    ASSERT_STR_EQ(td_errname(-ENOSPC), "ENOSPC");
    ASSERT_STR_EQ(td_strerror(0), "success");
    ASSERT(strlen(td_strerror(-ENOSPC)) > 0);
    /* The parsers' internal code keeps its number and names, outside the public list. */
    ASSERT_EQ(TD_EAGAIN, -1001);
    ASSERT_STR_EQ(td_errname(TD_EAGAIN), "TD_EAGAIN");
    ASSERT_STR_EQ(td_strerror(TD_EAGAIN), "need more input");
    ASSERT_EQ(TD_EPROTO, -1002);
    ASSERT_EQ(td_fail(TD_ENAME, "rule %d", 7), TD_ENAME);
    ASSERT_STR_EQ(td_last_error(), "rule 7");
    /* A detail that wraps the one before it. */
    ASSERT_EQ(td_fail(TD_EINVAL, "invalid queue group name: %s", td_last_error()), TD_EINVAL);
    ASSERT_STR_EQ(td_last_error(), "invalid queue group name: rule 7");
    td_error_clear();
    ASSERT_STR_EQ(td_last_error(), "");
}

static char captured[4096];
static void capture(int level, const char *line, void *arg)
{
    (void)level;
    (void)arg;
    snprintf(captured, sizeof(captured), "%s", line);
}

static void test_log_and_clock(void)
{
    td_log_set_sink(capture, NULL);
    td_log_set_level(TD_LOG_INFO);
    TD_INFO("storage", "cut %d bytes file=%s", 12, "a.log");
    ASSERT_CONTAINS(captured, "INFO storage: cut 12 bytes file=a.log");
    captured[0] = 0;
    TD_DEBUG("storage", "hidden");
    ASSERT_STR_EQ(captured, "");
    td_log_set_sink(NULL, NULL);
    ASSERT_EQ(td_log_level_parse("warn"), TD_LOG_WARN);
    ASSERT_EQ(td_log_level_parse("loud"), -1);
    int64_t a = td_mono_ns(), b = td_mono_ns();
    ASSERT_LE(a, b);
    ASSERT_GE(td_wall_ms(), 1700000000000LL); /* after 2023 */
    /* Deadlines: normalised, on the clock asked for, never in the past. */
    int64_t before = td_mono_ns();
    struct timespec d = td_deadline_ns(CLOCK_MONOTONIC, 1999999999);
    int64_t at = (int64_t)d.tv_sec * 1000000000 + d.tv_nsec;
    ASSERT(d.tv_nsec >= 0 && d.tv_nsec < 1000000000L);
    ASSERT_GE(at, before + 1999999999);
    ASSERT_LE(at, td_mono_ns() + 1999999999);
    d = td_deadline_ns(CLOCK_MONOTONIC, -5);
    at = (int64_t)d.tv_sec * 1000000000 + d.tv_nsec;
    ASSERT_GE(at, before);
    d = td_deadline_ns(CLOCK_REALTIME, 1000000000);
    ASSERT_GE((int64_t)d.tv_sec * 1000 + d.tv_nsec / 1000000, td_wall_ms());
}

static void test_arena_copies(void)
{
    td_arena a;
    td_arena_init(&a);
    char *s = td_arena_strdup(&a, "hello");
    ASSERT_STR_EQ(s, "hello");
    ASSERT(td_arena_strdup(&a, NULL) == NULL);
    char big[5000];
    memset(big, 'x', sizeof(big));
    uint8_t *m = td_arena_memdup(&a, big, sizeof(big)); /* beyond the inline buffer */
    ASSERT(m != NULL && m != (uint8_t *)big);
    ASSERT_MEM_EQ(m, big, sizeof(big));
    ASSERT(td_arena_memdup(&a, big, 0) == NULL);
    ASSERT_STR_EQ(s, "hello"); /* earlier copies stay put */
    td_arena_free(&a);
}

/* RFC 4648 section 10 test vectors, both ways, and what decoding refuses. */
static void test_base64(void)
{
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const coded[] = {"",     "Zg==",     "Zm8=",    "Zm9v",
                                        "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    td_buf b;
    td_buf_init(&b);
    for (size_t i = 0; i < TD_ARRAY_LEN(plain); i++) {
        td_buf_reset(&b);
        ASSERT_OK(td_base64_encode(&b, plain[i], strlen(plain[i])));
        ASSERT_EQ(b.len, strlen(coded[i]));
        ASSERT_MEM_EQ(b.p, coded[i], b.len);
        td_buf_reset(&b);
        ASSERT_OK(td_base64_decode(&b, coded[i], strlen(coded[i])));
        ASSERT_EQ(b.len, strlen(plain[i]));
        ASSERT_MEM_EQ(b.p, plain[i], b.len);
        /* Without padding too. */
        size_t n = strlen(coded[i]);
        while (n && coded[i][n - 1] == '=')
            n--;
        td_buf_reset(&b);
        ASSERT_OK(td_base64_decode(&b, coded[i], n));
        ASSERT_EQ(b.len, strlen(plain[i]));
    }
    /* base64url: no padding, '-' and '_' for '+' and '/'. */
    static const char *const url[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    for (size_t i = 0; i < TD_ARRAY_LEN(plain); i++) {
        char u[16];
        td_base64url(plain[i], strlen(plain[i]), u);
        ASSERT_STR_EQ(u, url[i]);
    }
    char u[8];
    td_base64url("\xfb\xff\xbf", 3, u);
    ASSERT_STR_EQ(u, "-_-_");
    /* All byte values round-trip. */
    uint8_t all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    td_buf_reset(&b);
    ASSERT_OK(td_base64_encode(&b, all, sizeof(all)));
    td_buf d;
    td_buf_init(&d);
    ASSERT_OK(td_base64_decode(&d, (const char *)b.p, b.len));
    ASSERT_EQ(d.len, sizeof(all));
    ASSERT_MEM_EQ(d.p, all, sizeof(all));
    static const char *const bad[] = {"Z", "Zm9v!", "Zg=", "Zh==", "Zm9=", "Z===", "Zm 9v",
                                      "Zm9vYg=x"};
    for (size_t i = 0; i < TD_ARRAY_LEN(bad); i++) {
        td_buf_reset(&d);
        if (td_base64_decode(&d, bad[i], strlen(bad[i])) != TD_EINVAL)
            TEST_FAIL_("'%s' decoded", bad[i]);
        ASSERT_EQ(d.len, 0u);
    }
    td_buf_free(&b);
    td_buf_free(&d);
}

static void test_grow(void)
{
    int64_t *v = NULL;
    size_t n = 0, cap = 0;
    for (int64_t i = 0; i < 1000; i++) {
        ASSERT_OK(td_grow(&v, &cap, n, sizeof(*v), 4));
        ASSERT(cap > n);
        v[n++] = i;
    }
    ASSERT_EQ(cap, 1024); /* 4, doubling */
    for (int64_t i = 0; i < 1000; i++)
        ASSERT_EQ(v[i], i);
    /* Room already: nothing moves. */
    int64_t *before = v;
    ASSERT_OK(td_grow(&v, &cap, 10, sizeof(*v), 4));
    ASSERT(v == before && cap == 1024);
    /* An element size that would overflow the allocation: -ENOMEM, the array as it was. */
    size_t big = 2;
    ASSERT_EQ(td_grow(&v, &big, 2, SIZE_MAX / 2, 4), -ENOMEM);
    ASSERT(v == before && big == 2);
    free(v);
}

/* Repeated lines: each call site writes `burst` lines per interval, then one summary quoting
 * the first dropped line once the interval is over; other call sites are not affected, and
 * debug lines are never dropped. */
static int rl_lines;
static char rl_last[4096], rl_summary[4096];
static void rl_capture(int level, const char *line, void *arg)
{
    (void)level;
    (void)arg;
    rl_lines++;
    snprintf(rl_last, sizeof(rl_last), "%s", line);
    if (strstr(line, "suppressed"))
        snprintf(rl_summary, sizeof(rl_summary), "%s", line);
}

static void log_accept_failure(int i)
{
    TD_WARN("net", "accept: too many open files (try %d)", i);
}

static void test_log_rate_limit(void)
{
    td_log_set_sink(rl_capture, NULL);
    td_log_set_level(TD_LOG_DEBUG);
    td_log_set_rate_limit(10, 200);
    rl_lines = 0;
    for (int i = 0; i < 1000; i++)
        log_accept_failure(i);
    ASSERT_EQ(rl_lines, 10);
    ASSERT_CONTAINS(rl_last, "WARN net: accept: too many open files (try 9)");
    /* Another call site has its own allowance; debug lines are not limited. */
    TD_ERROR("storage", "a different line");
    ASSERT_EQ(rl_lines, 11);
    for (int i = 0; i < 50; i++)
        TD_DEBUG("net", "debug %d", i);
    ASSERT_EQ(rl_lines, 61);
    /* After the interval: the summary, then the line. */
    struct timespec pause = {0, 250 * 1000000L};
    nanosleep(&pause, NULL);
    rl_summary[0] = 0;
    log_accept_failure(1000);
    ASSERT_EQ(rl_lines, 63);
    ASSERT_CONTAINS(rl_summary, "WARN net: 990 more lines like \"accept: too many open files "
                                "(try 10)\" were suppressed");
    ASSERT_CONTAINS(rl_last, "(try 1000)");
    /* A burst that stops is still summarized by a flush. */
    for (int i = 0; i < 20; i++)
        log_accept_failure(i);
    rl_summary[0] = 0;
    td_log_flush_suppressed();
    ASSERT_CONTAINS(rl_summary, "WARN net: 11 more lines like");
    int before = rl_lines;
    td_log_flush_suppressed(); /* nothing new to say */
    ASSERT_EQ(rl_lines, before);
    /* Burst 0: no limit. */
    td_log_set_rate_limit(0, 0);
    rl_lines = 0;
    for (int i = 0; i < 100; i++)
        log_accept_failure(i);
    ASSERT_EQ(rl_lines, 100);
    td_log_set_rate_limit(TD_LOG_RATE_BURST, TD_LOG_RATE_INTERVAL_MS);
    td_log_set_level(TD_LOG_INFO);
    td_log_set_sink(NULL, NULL);
}

/* Reals as short as they read back: each case is jansson's "%.17g" text and the expected
 * shortest form (what Python's repr and JavaScript print, with ".0" kept on whole numbers). */
static void test_json_shorten_reals(void)
{
    static const char *const cases[][2] = {
        {"0.10000000000000001", "0.1"},
        {"0.33333333333333331", "0.3333333333333333"},
        {"2.0", "2.0"},
        {"-0.0", "-0.0"},
        {"1.0000000000000001e+21", "1.0000000000000001e+21"},
        {"1e+21", "1e+21"},
        {"1.7976931348623157e+308", "1.7976931348623157e+308"},
        {"4.9406564584124654e-324", "5e-324"},
        {"2.2250738585072014e-308", "2.2250738585072014e-308"},
        {"123456789012345.67", "123456789012345.67"},
        {"1000000000000000.0", "1e+15"},
        {"12", "12"}, /* integers are left alone */
        {"-7", "-7"},
        {"1e999", "1e999"}, /* not a finite double: kept */
        {"1.2.3", "1.2.3"}, /* not a number: kept */
        {"-", "-"},
    };
    char buf[128];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(buf, sizeof(buf), "%s", cases[i][0]);
        size_t n = td_json_shorten_reals(buf, strlen(buf));
        if (n != strlen(cases[i][1]) || memcmp(buf, cases[i][1], n))
            TEST_FAIL_("'%s' became '%.*s', not '%s'", cases[i][0], (int)n, buf, cases[i][1]);
    }
    /* In context: strings are copied through (escapes included), numbers rewritten. */
    const char *in = "{\"a\":[0.10000000000000001,\"0.10000000000000001\\\"2.5\",1,"
                     "-1.5e-07],\"b\\\\\":0.20000000000000001}";
    const char *want = "{\"a\":[0.1,\"0.10000000000000001\\\"2.5\",1,-1.5e-07],"
                       "\"b\\\\\":0.2}";
    snprintf(buf, sizeof(buf), "%s", in);
    size_t n = td_json_shorten_reals(buf, strlen(buf));
    if (n != strlen(want) || memcmp(buf, want, n))
        TEST_FAIL_("'%s' became '%.*s'", in, (int)n, buf);
    ASSERT_EQ(buf[n], 0);
    /* Every double of a sample reads back from its short form exactly. */
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double v;
        memcpy(&v, &x, sizeof(v));
        if (v != v || v - v != 0)
            continue;
        int len = snprintf(buf, sizeof(buf), "%.17g", v);
        size_t m = td_json_shorten_reals(buf, (size_t)len);
        ASSERT(m <= (size_t)len);
        if (strtod(buf, NULL) != v)
            TEST_FAIL_("%.17g came back from '%s'", v, buf);
    }
    /* Unterminated strings and escapes at the end never read past the input. */
    static const char *const odd[] = {"\"abc", "\"ab\\", "[1.5,\"", "\\", ""};
    for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
        size_t len = strlen(odd[i]);
        char *copy = malloc(len + 1);
        memcpy(copy, odd[i], len + 1);
        ASSERT(td_json_shorten_reals(copy, len) <= len);
        free(copy);
    }
}

TEST_MAIN(TEST(test_grow), TEST(test_json_shorten_reals), TEST(test_base64),
          TEST(test_arena_copies), TEST(test_crc32c_vectors), TEST(test_crc32c_hw_matches_sw),
          TEST(test_crc32c_long_inputs), TEST(test_hash64_is_stable),
          TEST(test_murmur2_java_vectors), TEST(test_varint_roundtrip), TEST(test_varint_overlong),
          TEST(test_buf), TEST(test_errors), TEST(test_log_and_clock), TEST(test_log_rate_limit))
