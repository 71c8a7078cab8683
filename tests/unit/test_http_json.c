/*
 * test_http_json.c: JSON measured before it is parsed (proto/http/json_scan.c): the structure
 * check and the cost estimate on valid, malformed and truncated texts, agreement with jansson
 * (what jansson accepts the scanner accepts; an array parsed element by element equals the
 * array parsed whole), the nesting limit, and the UTF-8 cleaning of error messages.
 */
#include <jansson.h>
#include <malloc.h>

#include "proto/http/http.h"
#include "test.h"

static int measure(const char *s, uint64_t *cost, size_t *pos, const char **why)
{
    return http_json_measure((const uint8_t *)s, strlen(s), cost, pos, why);
}

static bool jansson_accepts(const char *s, size_t n)
{
    json_error_t err;
    json_t *j = json_loadb(s, n, JSON_DECODE_ANY, &err);
    json_decref(j);
    return j != NULL;
}

static const char *const valid[] = {
    "0",
    "-1.5e10",
    "\"a\\\"b\\\\\"",
    "true",
    " null ",
    "[]",
    "{}",
    "[1, 2, [3, [4]], {\"a\": {\"b\": []}}]",
    "{\"key\": \"user-1\", \"value\": {\"total\": 42}, \"headers\": {\"t\": null}}",
    "[{\"value\": \"]}\\\",{\"}, {\"key_b64\": \"AAE=\"}]",
    "\n\t[ 1 ,\r\n 2 ]\n",
    "{\"\": \"\", \"\\u00e9\": [true, false, null]}",
};

static void test_valid_texts(void)
{
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
        uint64_t cost;
        size_t pos;
        const char *why = NULL;
        int rc = measure(valid[i], &cost, &pos, &why);
        if (rc != 0)
            TEST_FAIL_("'%s' refused at %zu: %s", valid[i], pos, why);
        ASSERT(jansson_accepts(valid[i], strlen(valid[i])));
    }
}

static void test_malformed_texts(void)
{
    static const struct {
        const char *text;
        int rc;
        size_t pos;
        const char *why;
    } cases[] = {
        {"[1,]", TD_EPROTO, 3, "a value expected"},
        {"[1 2]", TD_EPROTO, 3, "',' or ']' expected"},
        {"{\"a\" 1}", TD_EPROTO, 5, "':' expected"},
        {"{1: 2}", TD_EPROTO, 1, "a string"},
        {"{\"a\": 1,}", TD_EPROTO, 8, "a string"},
        {"[}", TD_EPROTO, 1, "a value expected"},
        {"{\"a\": 1]", TD_EPROTO, 7, "',' or '}' expected"},
        {"]", TD_EPROTO, 0, "a value expected"},
        {"[1]]", TD_EPROTO, 3, "the end of the input"},
        {"[1] x", TD_EPROTO, 4, "the end of the input"},
        {"1 2", TD_EPROTO, 2, "the end of the input"},
        {"", TD_EAGAIN, 0, "end of input"},
        {"   ", TD_EAGAIN, 3, "end of input"},
        {"[1, \"abc", TD_EAGAIN, 8, "in a string"},
        {"{\"a", TD_EAGAIN, 3, "in a string"},
        {"{\"a\"", TD_EAGAIN, 4, "end of input"},
        {"[\"\\", TD_EAGAIN, 3, "in a string"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t cost;
        size_t pos;
        const char *why = NULL;
        int rc = measure(cases[i].text, &cost, &pos, &why);
        if (rc != cases[i].rc || pos != cases[i].pos || !why || !strstr(why, cases[i].why))
            TEST_FAIL_("'%s': %d at %zu (%s), expected %d at %zu (%s)", cases[i].text, rc, pos,
                       why ? why : "-", cases[i].rc, cases[i].pos, cases[i].why);
        /* The scanner refuses only what jansson refuses too. */
        ASSERT(!jansson_accepts(cases[i].text, strlen(cases[i].text)));
    }
}

/* Every proper prefix of a valid array or object is refused, and nothing is read past it: the
 * prefixes are copied to buffers of their exact size, so ASan sees any overread. */
static void test_truncated_texts(void)
{
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
        const char *t = valid[i];
        while (*t == ' ' || *t == '\n' || *t == '\t')
            t++;
        if (*t != '[' && *t != '{')
            continue;
        size_t n = strlen(valid[i]);
        for (size_t k = 0; k < n; k++) {
            uint8_t *copy = malloc(k ? k : 1);
            memcpy(copy, valid[i], k);
            uint64_t cost;
            size_t pos;
            const char *why = NULL;
            int rc = http_json_measure(copy, k, &cost, &pos, &why);
            bool only_blanks_left = strspn(valid[i] + k, " \t\r\n") == n - k;
            if (only_blanks_left && rc == 0) {
                free(copy);
                continue; /* the whole text, without its trailing blanks */
            }
            if (rc != TD_EAGAIN && rc != TD_EPROTO)
                TEST_FAIL_("prefix %zu of '%s' gave %d", k, valid[i], rc);
            ASSERT(why != NULL);
            ASSERT(pos <= k);
            http_json_iter it;
            if (http_json_array_open(&it, copy, k)) {
                td_slice e;
                int r;
                while ((r = http_json_array_next(&it, &e, &cost)) == 1)
                    ASSERT(e.p >= copy && e.p + e.n <= copy + k);
                ASSERT(r == TD_EAGAIN || r == TD_EPROTO);
            }
            free(copy);
        }
    }
}

/* jansson allows 2048 levels of nesting; so does the scanner, and neither allows more. */
static void test_depth(void)
{
    for (size_t depth = 2047; depth <= 2049; depth++) {
        char *s = malloc(2 * depth + 1);
        memset(s, '[', depth);
        memset(s + depth, ']', depth);
        s[2 * depth] = 0;
        uint64_t cost;
        size_t pos;
        const char *why;
        int rc = measure(s, &cost, &pos, &why);
        ASSERT_EQ(rc == 0, jansson_accepts(s, 2 * depth));
        ASSERT_EQ(rc == 0, depth <= HTTP_JSON_MAX_DEPTH);
        free(s);
    }
    /* Objects count too, and a deep text costs no C stack (one million levels). */
    size_t deep = 1000000;
    char *s = malloc(deep * 6 + 1);
    for (size_t i = 0; i < deep; i++)
        memcpy(s + 6 * i, "{\"a\":[", 6);
    uint64_t cost;
    size_t pos;
    const char *why;
    ASSERT_EQ(http_json_measure((const uint8_t *)s, deep * 6, &cost, &pos, &why), TD_EPROTO);
    ASSERT(strstr(why, "deeper"));
    free(s);
}

/* An array parsed element by element is the array parsed whole. */
static void test_array_elements(void)
{
    const char *s = " [1, {\"a\": [2, 3]} ,\"x,]\\\"\" , [] ,{}\n] \n";
    http_json_iter it;
    ASSERT(http_json_array_open(&it, (const uint8_t *)s, strlen(s)));
    static const char *const want[] = {"1", "{\"a\": [2, 3]}", "\"x,]\\\"\"", "[]", "{}"};
    json_t *whole = json_loads(s, 0, NULL);
    ASSERT(whole != NULL);
    td_slice e;
    uint64_t cost = 0;
    for (size_t i = 0; i < 5; i++) {
        ASSERT_EQ(http_json_array_next(&it, &e, &cost), 1);
        if (e.n != strlen(want[i]) || memcmp(e.p, want[i], e.n))
            TEST_FAIL_("element %zu is '%.*s', not '%s'", i, (int)e.n, (const char *)e.p, want[i]);
        json_t *one = json_loadb((const char *)e.p, e.n, JSON_DECODE_ANY, NULL);
        ASSERT(json_equal(one, json_array_get(whole, i)));
        json_decref(one);
    }
    ASSERT_EQ(http_json_array_next(&it, &e, &cost), 0);
    ASSERT_EQ(http_json_array_next(&it, &e, &cost), 0); /* and stays at the end */
    ASSERT_EQ(it.count, 5);
    json_decref(whole);

    ASSERT(http_json_array_open(&it, (const uint8_t *)"[ ]", 3));
    ASSERT_EQ(http_json_array_next(&it, &e, &cost), 0);
    ASSERT(!http_json_array_open(&it, (const uint8_t *)"{}", 2));
    ASSERT(!http_json_array_open(&it, (const uint8_t *)"  ", 2));
    static const struct {
        const char *text;
        int rc;
        size_t elements;
    } bad[] = {{"[1,]", TD_EPROTO, 1},  {"[1 2]", TD_EPROTO, 1}, {"[1", TD_EAGAIN, 1},
               {"[1] 2", TD_EPROTO, 1}, {"[,1]", TD_EPROTO, 0},  {"[{]", TD_EPROTO, 0}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ASSERT(http_json_array_open(&it, (const uint8_t *)bad[i].text, strlen(bad[i].text)));
        int rc;
        while ((rc = http_json_array_next(&it, &e, &cost)) == 1)
            ;
        if (rc != bad[i].rc || it.count != bad[i].elements)
            TEST_FAIL_("'%s': %d after %zu elements", bad[i].text, rc, it.count);
        ASSERT(it.why != NULL && it.pos <= strlen(bad[i].text));
    }
}

/* The estimate follows what jansson really allocates (where malloc statistics are glibc's: under
 * a sanitizer's allocator they read 0 and only the lower bounds are checked). */
static void test_cost_estimate(void)
{
    static const char *const elems[] = {"{}",
                                        "[]",
                                        "0",
                                        "\"\"",
                                        "{\"a\":0}",
                                        "[[[[]]]]",
                                        "{\"value\":{\"total\":42}}",
                                        "\"abcdefghijklmnop\"",
                                        "null"};
    enum { N = 20000 };
    for (size_t i = 0; i < sizeof(elems) / sizeof(elems[0]); i++) {
        size_t len = strlen(elems[i]);
        char *s = malloc(N * (len + 1) + 2), *w = s;
        *w++ = '[';
        for (int k = 0; k < N; k++) {
            if (k)
                *w++ = ',';
            memcpy(w, elems[i], len);
            w += len;
        }
        *w++ = ']';
        uint64_t cost;
        size_t pos;
        const char *why;
        ASSERT_OK(http_json_measure((const uint8_t *)s, (size_t)(w - s), &cost, &pos, &why));
        struct mallinfo2 before = mallinfo2();
        json_t *j = json_loadb(s, (size_t)(w - s), 0, NULL);
        struct mallinfo2 after = mallinfo2();
        ASSERT(j != NULL);
        double real = (double)after.uordblks - (double)before.uordblks;
        if (real > 0 && (cost < real * 0.9 || cost > real * 1.5))
            TEST_FAIL_("'%s' x %d: estimated %" PRIu64 " bytes, jansson took %.0f", elems[i], N,
                       cost, real);
        json_decref(j);
        free(s);
    }
    /* The case of the issue: two million empty objects cost over 400 MB. */
    uint64_t cost = 0;
    size_t n = 2000000 * 3 + 2;
    char *s = malloc(n);
    s[0] = '[';
    for (size_t k = 0; k < 2000000; k++)
        memcpy(s + 1 + 3 * k, k ? ",{}" : "{} ", 3);
    s[n - 1] = ']';
    size_t pos;
    const char *why;
    ASSERT_OK(http_json_measure((const uint8_t *)s, n, &cost, &pos, &why));
    ASSERT(cost > 400000000u);
    free(s);
}

static void test_line_column(void)
{
    const char *s = "{\n  \"a\": é,\n}";
    int line, col;
    http_json_line_column((const uint8_t *)s, strlen(s), 0, &line, &col);
    ASSERT_EQ(line, 1);
    ASSERT_EQ(col, 0);
    http_json_line_column((const uint8_t *)s, strlen(s), 10, &line, &col); /* after é */
    ASSERT_EQ(line, 2);
    ASSERT_EQ(col, 8);
    /* jansson's own position agrees: the error is counted the same way. */
    json_error_t err;
    ASSERT(json_loads(s, 0, &err) == NULL);
    http_json_line_column((const uint8_t *)s, strlen(s), (size_t)err.position, &line, &col);
    ASSERT_EQ(line, err.line);
    ASSERT_EQ(col, err.column);
}

static void test_utf8_clean(void)
{
    char out[64];
    ASSERT(!strcmp(http_utf8_clean("topic 'orders' ünïcode €𝄞", out, sizeof(out)),
                   "topic 'orders' ünïcode €𝄞"));
    ASSERT(!strcmp(http_utf8_clean("topic '\xff\xfe\xfd'", out, sizeof(out)),
                   "topic '\\xFF\\xFE\\xFD'"));
    /* Overlong forms, surrogates, beyond U+10FFFF, stray continuations, cut sequences. */
    ASSERT(!strcmp(
        http_utf8_clean("\xc0\xaf|\xed\xa0\x80|\xf4\x90\x80\x80|\x80|\xe2\x82", out, sizeof(out)),
        "\\xC0\\xAF|\\xED\\xA0\\x80|\\xF4\\x90\\x80\\x80|\\x80|\\xE2\\x82"));
    /* Cut short at a character boundary, never inside an escape or a sequence. */
    ASSERT(!strcmp(http_utf8_clean("ab€", out, 5), "ab"));
    ASSERT(!strcmp(http_utf8_clean("a\xff", out, 5), "a"));
    ASSERT(!strcmp(http_utf8_clean("a\xff", out, 6), "a\\xFF"));
    ASSERT(!strcmp(http_utf8_clean("abc", out, 1), ""));
    /* Whatever the bytes, jansson takes the result. */
    uint32_t x = 12345;
    for (int i = 0; i < 2000; i++) {
        char in[24];
        for (size_t k = 0; k + 1 < sizeof(in); k++) {
            x = x * 1103515245u + 12345u;
            in[k] = (char)((x >> 16) | 1); /* no NUL */
        }
        in[sizeof(in) - 1] = 0;
        json_t *j = json_string(http_utf8_clean(in, out, sizeof(out)));
        ASSERT(j != NULL);
        json_decref(j);
    }
}

TEST_MAIN(TEST(test_valid_texts), TEST(test_malformed_texts), TEST(test_truncated_texts),
          TEST(test_depth), TEST(test_array_elements), TEST(test_cost_estimate),
          TEST(test_line_column), TEST(test_utf8_clean))
