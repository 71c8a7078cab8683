/* Unit tests for the flat JSON parser (schema/json_dom.c): the values it reads, every edge case
 * of RFC 8259 (escapes, surrogates, UTF-8, numbers, depth, whitespace, trailing bytes, duplicate
 * keys) with the answer expected and the same answer as jansson (fuzz/json_dom/same.h), every
 * truncation of documents, the reuse of the buffers, jansson values copied in, and JSON Schema
 * validation over it (what it accepts, the pointers and messages, from several threads). */
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../fuzz/json_dom/same.h"
#include "schema/json_dom.h"
#include "schema/schema.h"
#include "test.h"

static jd_doc doc;

/* text (len bytes) is accepted (want 1) or refused (0), as jansson does. */
static void check_n(const char *text, size_t len, int want)
{
    int same = same_parse(&doc, text, len);
    if (same)
        TEST_FAIL_("'%.*s': differs from jansson (%d)", (int)len, text, same);
    int ok = jd_parse(&doc, text, len) == 0;
    if (ok != want)
        TEST_FAIL_("'%.*s': %s, expected %s", (int)len, text, ok ? "accepted" : "refused",
                   want ? "accepted" : "refused");
}

static void check(const char *text, int want)
{
    check_n(text, strlen(text), want);
}

static const jd_node *parse_ok(const char *text)
{
    if (jd_parse(&doc, text, strlen(text)))
        TEST_FAIL_("'%s' refused", text);
    return doc.nodes;
}

static void test_values(void)
{
    const jd_node *r = parse_ok(" {\"a\": 1, \"b\": -2.5, \"c\": \"x\\u00e9\\ud83d\\ude00\\n\","
                                " \"d\": [true, false, null], \"e\": {}, \"f\": \"a\\u0000b\","
                                " \"g\": -9223372036854775808, \"h\": 1e2} ");
    ASSERT_EQ(r->type, JD_OBJ);
    ASSERT_EQ(r->len, 8);
    ASSERT_EQ(r->skip, doc.n);
    const jd_node *a = jd_get(r, "a");
    ASSERT(a && a->type == JD_INT && a->u.i == 1);
    const jd_node *b = jd_get(r, "b");
    ASSERT(b && b->type == JD_REAL && b->u.d == -2.5);
    const jd_node *c = jd_get(r, "c");
    ASSERT(c && c->type == JD_STR);
    ASSERT_EQ(c->len, 1 + 2 + 4 + 1);
    ASSERT_MEM_EQ(c->u.s, "x\xc3\xa9\xf0\x9f\x98\x80\n", 8);
    const jd_node *d = jd_get(r, "d");
    ASSERT(d && d->type == JD_ARR && d->len == 3);
    ASSERT_EQ(jd_first(d)->type, JD_TRUE);
    ASSERT_EQ(jd_next(jd_first(d))->type, JD_FALSE);
    ASSERT_EQ(jd_next(jd_next(jd_first(d)))->type, JD_NULL);
    const jd_node *e = jd_get(r, "e");
    ASSERT(e && e->type == JD_OBJ && e->len == 0 && e->skip == 1);
    const jd_node *f = jd_get(r, "f");
    ASSERT(f && f->len == 3 && !memcmp(f->u.s, "a\0b", 4));
    const jd_node *g = jd_get(r, "g");
    ASSERT(g && g->type == JD_INT && g->u.i == (-9223372036854775807LL - 1));
    const jd_node *h = jd_get(r, "h");
    ASSERT(h && h->type == JD_REAL && h->u.d == 100.0);
    ASSERT(jd_get(r, "z") == NULL);
    ASSERT(jd_get(a, "a") == NULL);

    /* An integer too big for 64 bits makes every integer of the document a real. */
    r = parse_ok("[1, 9223372036854775808, -9223372036854775809]");
    ASSERT_EQ(jd_first(r)->type, JD_REAL);
    ASSERT(jd_first(r)->u.d == 1.0);
    ASSERT(jd_next(jd_first(r))->u.d == 9223372036854775808.0);
    /* As a real, "-0" is -0.0 (strtod's reading), not 0.0. */
    check("[-0, 1e999999999999999999999999999999]", 0);
    r = parse_ok("[-0, 99999999999999999999]");
    ASSERT_EQ(jd_first(r)->type, JD_REAL);
    ASSERT(jd_first(r)->u.d == 0 && signbit(jd_first(r)->u.d));
    r = parse_ok("[1, 9223372036854775807]");
    ASSERT_EQ(jd_first(r)->type, JD_INT);
    ASSERT_EQ(jd_next(jd_first(r))->u.i, 9223372036854775807LL);
}

static void test_edge_cases(void)
{
    static const struct {
        const char *text;
        int ok;
    } cases[] = {
        /* whitespace and trailing bytes */
        {"", 0},
        {" ", 0},
        {"1", 1},
        {" \t\n\r1 \t\n\r", 1},
        {"\f1", 0},
        {"\v1", 0},
        {"1 x", 0},
        {"1 2", 0},
        {"[] []", 0},
        {"{}x", 0},
        {"\"a\"\"b\"", 0},
        /* literals */
        {"true", 1},
        {"false", 1},
        {"null", 1},
        {"tru", 0},
        {"truex", 0},
        {"nul", 0},
        {"True", 0},
        {"[true1]", 0},
        {"nullnull", 0},
        /* numbers */
        {"0", 1},
        {"-0", 1},
        {"-0.0", 1},
        {"01", 0},
        {"-01", 0},
        {"-", 0},
        {"+1", 0},
        {"1.", 0},
        {".5", 0},
        {"1.e3", 0},
        {"1e", 0},
        {"1e+", 0},
        {"1E5", 1},
        {"1e-5", 1},
        {"1.25E+10", 1},
        {"1e400", 0},
        {"-1e400", 0},
        {"1e-400", 1},
        {"0x10", 0},
        {"9223372036854775807", 1},
        {"9223372036854775808", 1},
        {"-9223372036854775808", 1},
        {"123456789012345678901234567890", 1},
        {"0.1", 1},
        {"3.141592653589793238462643", 1},
        {"1.7976931348623157e308", 1},
        {"1.7976931348623159e308", 0},
        {"4.9e-324", 1},
        {"2.2250738585072011e-308", 1},
        {"0.000000000000000000001234", 1},
        {"1e22", 1},
        {"1e23", 1},
        {"123456789012345e-22", 1},
        {"1234567890123456e-22", 1},
        {"NaN", 0},
        {"Infinity", 0},
        {"-Infinity", 0},
        {"1e0000000000000000000001", 1},
        /* strings, escapes, surrogates, UTF-8 */
        {"\"\"", 1},
        {"\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"", 1},
        {"\"\\x\"", 0},
        {"\"\\'\"", 0},
        {"\"\\u0041\"", 1},
        {"\"\\u004\"", 0},
        {"\"\\u12G4\"", 0},
        {"\"\\u00e9\\u00E9\"", 1},
        {"\"\\u0000\"", 1},
        {"{\"\\u0000\": 1}", 0},
        {"{\"a\\u0000\": 1}", 0},
        {"\"\\ud800\"", 0},
        {"\"\\udc00\"", 0},
        {"\"\\ud800\\udc00\"", 1},
        {"\"\\udbff\\udfff\"", 1},
        {"\"\\ud800\\u0041\"", 0},
        {"\"\\ud800\\ud800\"", 0},
        {"\"\\ud800x\"", 0},
        {"\"\\ud800\\\"", 0},
        {"\"\x01\"", 0},
        {"\"\x1f\"", 0},
        {"\"\x7f\"", 1},
        {"\"\t\"", 0},
        {"\"\xc3\xa9\"", 1},
        {"\"\xc0\x80\"", 0},
        {"\"\xc1\xbf\"", 0},
        {"\"\xe0\x9f\xbf\"", 0},
        {"\"\xed\xa0\x80\"", 0},
        {"\"\xef\xbf\xbf\"", 1},
        {"\"\xf0\x8f\xbf\xbf\"", 0},
        {"\"\xf4\x8f\xbf\xbf\"", 1},
        {"\"\xf4\x90\x80\x80\"", 0},
        {"\"\xf5\x80\x80\x80\"", 0},
        {"\"\xe2\x82\"", 0},
        {"\"\xe2\x82\xac\"", 1},
        {"\"\x80\"", 0},
        {"\"\xc3\"", 0},
        {"\xc3\xa9", 0},
        {"\"abc", 0},
        {"\"abc\\", 0},
        /* containers */
        {"[]", 1},
        {"{}", 1},
        {"[[]]", 1},
        {"[1,]", 0},
        {"[,1]", 0},
        {"[1 2]", 0},
        {"[", 0},
        {"]", 0},
        {"{\"a\":1,}", 0},
        {"{\"a\"}", 0},
        {"{\"a\":}", 0},
        {"{1:2}", 0},
        {"{\"a\" : 1 , \"b\" : [ 2 , { } ] }", 1},
        {"{\"a\":1 \"b\":2}", 0},
        {"{,}", 0},
        {"[1}", 0},
        {"{\"a\":1]", 0},
        {"{\"\":0}", 1},
        {"{'a':1}", 0},
        {"{\"a\":1,\"b\":2,\"a\":3}", 1},
        {"{\"a\":1,\"a\":2,\"a\":{\"a\":[]}}", 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check(cases[i].text, cases[i].ok);
    /* A NUL byte is not whitespace, nor the end of the text; but jansson skips one right
     * after a number or a literal (its lexer's look-ahead), and so must the parser. */
    check_n("\"a\0\"", 4, 0);
    check_n("[1,\0 2]", 7, 0);
    check_n("\0", 1, 0);
    check_n("[1]\0", 4, 0);
    check_n(" \0", 2, 0);
    check_n("1\0", 2, 1);
    check_n("1\0 ", 3, 1);
    check_n("1\0x", 3, 0);
    check_n("1\0\0", 3, 0);
    check_n("[1.5e3\0,true\0,null\0]", 20, 1);
    check_n("[\"a\"\0]", 6, 0);
    check_n("{\"a\":false\0}", 12, 1);
    check_n("{\"a\"\0:1}", 8, 0);
}

static void test_duplicates(void)
{
    const jd_node *r = parse_ok("{\"a\":1,\"b\":2,\"a\":3,\"c\":4,\"a\":5}");
    ASSERT_EQ(r->len, 3);
    const jd_node *m = jd_first(r);
    ASSERT_STR_EQ(m->key, "a");
    ASSERT_EQ(jd_member_value(m)->u.i, 5);
    ASSERT_STR_EQ(jd_next(m)->key, "b");
    ASSERT_EQ(jd_get(r, "a")->u.i, 5);
    /* Past 8 members the duplicates are found through a hash table: 100 members, 40 keys. */
    char buf[4096];
    size_t len = 0;
    buf[len++] = '{';
    for (int i = 0; i < 100; i++)
        len +=
            (size_t)snprintf(buf + len, sizeof(buf) - len, "%s\"k%d\":%d", i ? "," : "", i % 40, i);
    buf[len++] = '}';
    check_n(buf, len, 1);
    r = doc.nodes;
    ASSERT_EQ(r->len, 40);
    ASSERT_EQ(jd_get(r, "k0")->u.i, 80);
    ASSERT_EQ(jd_get(r, "k39")->u.i, 79);
    ASSERT_STR_EQ(jd_first(r)->key, "k0");
    /* One key given twice among n distinct ones, at every pair of places, in an object nested
     * at every depth around the last one whose keys go through the parser's filter (32): the
     * filter never hides a duplicate, and objects without one keep all their members. */
    for (int depth = 0; depth <= 34; depth += 2)
        for (int n = 2; n <= 24; n += 11)
            for (int first = 0; first < n; first++)
                for (int again = first; again <= n; again++) {
                    len = 0;
                    for (int i = 0; i < depth; i++)
                        len += (size_t)snprintf(buf + len, sizeof(buf) - len, "{\"d\":");
                    buf[len++] = '{';
                    for (int i = 0; i < n; i++) {
                        len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s\"key%d\":%d",
                                                i ? "," : "", i, i);
                        if (i == again - 1 && again > first && again < n)
                            len += (size_t)snprintf(buf + len, sizeof(buf) - len, ",\"key%d\":-1",
                                                    first);
                    }
                    buf[len++] = '}';
                    for (int i = 0; i < depth; i++)
                        buf[len++] = '}';
                    check_n(buf, len, 1);
                    r = doc.nodes;
                    for (int i = 0; i < depth; i++)
                        r = jd_get(r, "d");
                    bool dup = again > first && again < n;
                    ASSERT_EQ(r->len, (uint32_t)n);
                    ASSERT_EQ(jd_get(r, "key0")->u.i, dup && first == 0 ? -1 : 0);
                    char name[16];
                    snprintf(name, sizeof(name), "key%d", first);
                    ASSERT_EQ(jd_get(r, name)->u.i, dup ? -1 : first);
                }
}

/* Nesting: jansson refuses a value more than 2048 levels deep; so does the parser. */
static void test_depth(void)
{
    char *buf = malloc(8 * (JD_MAX_DEPTH + 2) + 16);
    ASSERT(buf);
    for (int depth = JD_MAX_DEPTH - 1; depth <= JD_MAX_DEPTH + 1; depth++) {
        size_t len = 0;
        for (int i = 0; i < depth; i++)
            buf[len++] = '[';
        for (int i = 0; i < depth; i++)
            buf[len++] = ']';
        check_n(buf, len, depth <= JD_MAX_DEPTH);
        /* With a scalar inside, the scalar is one level more. */
        len = 0;
        for (int i = 0; i < depth; i++)
            buf[len++] = '[';
        buf[len++] = '1';
        for (int i = 0; i < depth; i++)
            buf[len++] = ']';
        check_n(buf, len, depth + 1 <= JD_MAX_DEPTH);
        len = 0;
        for (int i = 0; i < depth; i++) {
            memcpy(buf + len, "{\"a\":", 5);
            len += 5;
        }
        buf[len++] = '0';
        for (int i = 0; i < depth; i++)
            buf[len++] = '}';
        check_n(buf, len, depth + 1 <= JD_MAX_DEPTH);
    }
    free(buf);
}

static const char *const DOCS[] = {
    "{\"id\": \"123e4567-e89b-12d3-a456-426614174000\", \"n\": -12.5e-3, \"ok\": true,"
    " \"tags\": [\"a\", \"b\\u00e9\\ud83d\\ude00\", null, false, 0, 9223372036854775807],"
    " \"o\": {\"x\": {}, \"y\": [], \"x\": 1}, \"s\": \"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}",
    "[1, 2.5, -3e2, \"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\", [[[]]], {\"\": \"\"}]",
    "  12345678901234567890  ",
    "\"\\u0000 \\uD834\\uDD1E\"",
};

/* Every prefix of every document: the same answer as jansson (most are refused; some, like a
 * shorter number, are accepted). */
static void test_truncated(void)
{
    for (size_t d = 0; d < sizeof(DOCS) / sizeof(DOCS[0]); d++) {
        size_t n = strlen(DOCS[d]);
        check_n(DOCS[d], n, 1);
        for (size_t i = 0; i < n; i++) {
            /* In a fresh buffer exactly as long, so that ASan sees a read past the end. */
            char *p = malloc(i ? i : 1);
            ASSERT(p);
            memcpy(p, DOCS[d], i);
            int same = same_parse(&doc, p, i);
            if (same)
                TEST_FAIL_("document %zu cut at %zu: differs from jansson (%d)", d, i, same);
            free(p);
        }
    }
}

/* A special character (an escape, a quote, a control character, a multibyte or invalid byte)
 * at every place of strings of 0 to 24 characters, so around every step of the parser's 8-byte
 * scan: the same answer and value as jansson, and the strings that hold only ASCII known as
 * such (a schema's "maxLength" then counts bytes). */
static void test_string_windows(void)
{
    static const struct {
        const char *text;
        int ascii; /* 1: the string holds only ASCII; -1: the text is refused */
    } specials[] = {{"\\n", 1},
                    {"\\\"", 1},
                    {"\\u00e9", 0},
                    {"\xc3\xa9", 0},
                    {"\x01", -1},
                    {"\x80", -1},
                    {"\x7f", 1},
                    {"\"", -1},
                    {"\\\\", 1},
                    {"\\ud83d\\ude00", 0},
                    {"\xf0\x9f\x98\x80", 0}};
    char text[128];
    for (size_t len = 0; len <= 24; len++)
        for (size_t at = 0; at <= len; at++)
            for (size_t k = 0; k < sizeof(specials) / sizeof(specials[0]); k++) {
                size_t n = 0;
                text[n++] = '[';
                text[n++] = '"';
                for (size_t i = 0; i <= len; i++) {
                    if (i == at) {
                        memcpy(text + n, specials[k].text, strlen(specials[k].text));
                        n += strlen(specials[k].text);
                    }
                    if (i < len)
                        text[n++] = (char)('a' + i % 26);
                }
                text[n++] = '"';
                text[n++] = ']';
                char *p = malloc(n); /* exactly as long: ASan sees a read past the end */
                ASSERT(p);
                memcpy(p, text, n);
                int same = same_parse(&doc, p, n);
                if (same)
                    TEST_FAIL_("'%.*s': differs from jansson (%d)", (int)n, text, same);
                int ok = jd_parse(&doc, p, n) == 0;
                free(p);
                if (ok != (specials[k].ascii >= 0))
                    TEST_FAIL_("'%.*s': %s", (int)n, text, ok ? "accepted" : "refused");
                if (ok && doc.nodes[1].ascii != specials[k].ascii)
                    TEST_FAIL_("'%.*s': ascii %d", (int)n, text, doc.nodes[1].ascii);
            }
}

/* Reals of 1 to 20 significant digits with exponents around the fast paths' ranges (15 digits
 * and 10^22 exact in a double; 19 digits and 10^27 in the x87's significand): the same double,
 * bit for bit, as strtod. */
static void test_reals_like_strtod(void)
{
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    char text[64];
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int digits = 1 + (int)(x % 20), point = (int)((x >> 8) % (uint64_t)(digits + 1));
        int exp = (int)((x >> 16) % 61) - 30;
        size_t n = 0;
        if ((x >> 24) & 1)
            text[n++] = '-';
        uint64_t y = x;
        for (int d = 0; d < digits; d++) {
            if (d == point && d > 0)
                text[n++] = '.';
            y = y * 6364136223846793005ULL + 1442695040888963407ULL;
            int digit = (int)((y >> 33) % 10);
            text[n++] = (char)('0' + (d == 0 && digit == 0 && digits > 1 ? 1 : digit));
        }
        n += (size_t)snprintf(text + n, sizeof(text) - n, "e%d", exp);
        double want = strtod(text, NULL);
        if (jd_parse(&doc, text, n))
            TEST_FAIL_("'%s' refused", text);
        double got = doc.nodes[0].u.d;
        if (doc.nodes[0].type != JD_REAL || memcmp(&got, &want, sizeof(got)))
            TEST_FAIL_("'%s': %.17g, strtod %.17g", text, got, want);
    }
}

static void test_reuse_and_copy(void)
{
    /* A large document grows the buffers; trimming frees them; a small one parses after. */
    size_t n = 200000;
    char *big = malloc(n + 2);
    ASSERT(big);
    big[0] = '[';
    for (size_t i = 1; i < n; i += 2)
        memcpy(big + i, i + 2 < n ? "1," : "1]", 2);
    size_t len = n % 2 ? n : n + 1;
    check_n(big, len, 1);
    ASSERT(doc.cap > 16384);
    jd_doc_trim(&doc);
    ASSERT(doc.nodes == NULL && doc.cap == 0);
    free(big);
    check("{\"a\": [1, 2]}", 1);
    ASSERT_EQ(doc.n, 4);

    json_t *j = json_loads("{\"a\": [1, 2.5, \"x\"], \"b\": {\"c\": null}, \"d\": true}", 0, NULL);
    ASSERT(j);
    jd_doc copy = {0};
    ASSERT_OK(jd_from_json(&copy, j));
    ASSERT(same_value(copy.nodes, j));
    ASSERT(jd_equal_json(copy.nodes, j, 0));
    parse_ok("{\"d\": true, \"b\": {\"c\": null}, \"a\": [1, 2.5, \"x\"]}");
    ASSERT(jd_equal(copy.nodes, doc.nodes, 0));
    ASSERT_EQ(jd_hash(copy.nodes, 0), jd_hash(doc.nodes, 0));
    parse_ok("{\"d\": true, \"b\": {\"c\": null}, \"a\": [1, 2.5, \"y\"]}");
    ASSERT(!jd_equal(copy.nodes, doc.nodes, 0));
    ASSERT(!jd_equal_json(doc.nodes, j, 0));
    jd_doc_free(&copy);
    json_decref(j);
}

static schema *json_schema(const char *text)
{
    schema *s = NULL;
    schema_error err = {0};
    if (schema_parse(SCHEMA_JSON, text, strlen(text), NULL, 0, &s, &err))
        TEST_FAIL_("schema refused: %s", err.message);
    return s;
}

/* Validation reads the document as jansson did: the last of duplicate keys, integers as reals
 * in a document with a too big one, jansson's message for a syntax error. */
static void test_validation(void)
{
    schema *s = json_schema("{\"properties\": {\"a\": {\"type\": \"string\"},"
                            " \"n\": {\"type\": \"integer\", \"multipleOf\": 3}},"
                            " \"propertyNames\": {\"maxLength\": 3}, \"required\": [\"a\"]}");
    schema_error err = {0};
    const char *ok1 = "{\"a\": 1, \"a\": \"x\"}";
    ASSERT_EQ(schema_validate_json(s, ok1, strlen(ok1), &err), 0);
    const char *bad1 = "{\"a\": \"x\", \"a\": 1}";
    ASSERT_EQ(schema_validate_json(s, bad1, strlen(bad1), &err), -1);
    ASSERT_STR_EQ(err.path, "/a");
    ASSERT_STR_EQ(err.rule, "type");
    ASSERT_STR_EQ(err.message, "expected string, got integer");
    /* One too big integer: 3 is a real then, "number" in the message, as jansson's reading. */
    const char *bad2 = "{\"a\": 3, \"b\": 99999999999999999999}";
    ASSERT_EQ(schema_validate_json(s, bad2, strlen(bad2), &err), -1);
    ASSERT_STR_EQ(err.path, "/a");
    ASSERT_STR_EQ(err.message, "expected string, got number");
    const char *ok2 = "{\"a\": \"x\", \"n\": 9, \"b\": 99999999999999999999}";
    ASSERT_EQ(schema_validate_json(s, ok2, strlen(ok2), &err), 0);
    const char *bad3 = "{\"a\": \"x\", \"long\": 1}";
    ASSERT_EQ(schema_validate_json(s, bad3, strlen(bad3), &err), -1);
    ASSERT_STR_EQ(err.path, "/long");
    ASSERT_STR_EQ(err.rule, "maxLength");
    const char *bad4 = "{\"a\": \"x\",}";
    ASSERT_EQ(schema_validate_json(s, bad4, strlen(bad4), &err), -1);
    ASSERT_STR_EQ(err.rule, "syntax");
    ASSERT_STR_EQ(err.message, "not JSON: string or '}' expected near '}' at line 1, column 11");
    const char *bad5 = "{\"n\": 1e400}";
    ASSERT_EQ(schema_validate_json(s, bad5, strlen(bad5), &err), -1);
    ASSERT_STR_EQ(err.rule, "syntax");
    ASSERT_CONTAINS(err.message, "real number overflow");
    /* The same value as a jansson value (the Redis path). */
    json_t *j = json_loads(bad1, 0, NULL);
    ASSERT(j);
    ASSERT_EQ(schema_json_validate_value(s, j, &err), -1);
    ASSERT_STR_EQ(err.path, "/a");
    json_decref(j);
    schema_free(s);
}

static void *validate_many(void *arg)
{
    const schema *s = arg;
    char buf[128];
    for (int i = 0; i < 2000; i++) {
        schema_error err = {0};
        int len = snprintf(buf, sizeof(buf), "{\"a\": \"v%d\", \"n\": %d, \"a\": \"w\"}", i, i);
        int rc = schema_validate_json(s, buf, (size_t)len, &err);
        if (rc != (i % 3 ? -1 : 0) || (rc && strcmp(err.path, "/n")))
            return (void *)1;
    }
    return NULL;
}

/* Each thread parses into its own document. */
static void test_threads(void)
{
    schema *s = json_schema("{\"properties\": {\"a\": {\"type\": \"string\"},"
                            " \"n\": {\"type\": \"integer\", \"multipleOf\": 3}}}");
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        ASSERT_EQ(pthread_create(&t[i], NULL, validate_many, s), 0);
    for (int i = 0; i < 4; i++) {
        void *rc = NULL;
        ASSERT_EQ(pthread_join(t[i], &rc), 0);
        ASSERT(rc == NULL);
    }
    schema_free(s);
}

static void test_cleanup(void)
{
    jd_doc_free(&doc);
}

TEST_MAIN(TEST(test_values), TEST(test_edge_cases), TEST(test_duplicates), TEST(test_depth),
          TEST(test_string_windows), TEST(test_reals_like_strtod), TEST(test_truncated),
          TEST(test_reuse_and_copy), TEST(test_validation), TEST(test_threads), TEST(test_cleanup))
