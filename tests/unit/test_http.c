/* Unit tests for the HTTP/1.1 request parser (proto/http/parser.c): heads, every prefix of them,
 * the refusals with their status codes, limits, chunked bodies fed whole and byte by byte, and
 * percent-decoding and query strings; subscription cursors and times. */
#include <string.h>

#include "proto/http/http.h"
#include "proto/http/http_int.h"
#include "test.h"

static int parse(const char *s, http_request *r, const char **why)
{
    http_limits l;
    http_limits_default(&l);
    return http_parse_request((const uint8_t *)s, strlen(s), &l, r, why);
}

static bool slice_is(td_slice s, const char *want)
{
    return s.n == strlen(want) && memcmp(s.p, want, s.n) == 0;
}

/* Every strict prefix of a complete head needs more input; the whole parses. */
static void check_prefixes(const char *s)
{
    http_limits l;
    http_limits_default(&l);
    http_request r;
    const char *why;
    size_t n = strlen(s);
    for (size_t k = 0; k < n; k++) {
        int rc = http_parse_request((const uint8_t *)s, k, &l, &r, &why);
        if (rc != TD_EAGAIN)
            TEST_FAIL_("prefix of %zu bytes of %s: %d (%s)", k, s, rc, why ? why : "");
    }
    ASSERT_OK(http_parse_request((const uint8_t *)s, n, &l, &r, &why));
    ASSERT_EQ(r.head_len, n);
}

static void test_heads(void)
{
    http_request r;
    const char *why;
    const char *get = "GET /v1/topics/orders?limit=10&from=earliest HTTP/1.1\r\n"
                      "Host: localhost:8080\r\n"
                      "User-Agent: curl/7.88.1\r\n"
                      "Accept:   */*  \r\n"
                      "\r\n";
    ASSERT_OK(parse(get, &r, &why));
    ASSERT(slice_is(r.method, "GET"));
    ASSERT(slice_is(r.path, "/v1/topics/orders"));
    ASSERT(slice_is(r.query, "limit=10&from=earliest"));
    ASSERT_EQ(r.minor, 1);
    ASSERT_EQ(r.nheaders, 3u);
    ASSERT(slice_is(*http_header_get(&r, "accept"), "*/*"));
    ASSERT(slice_is(*http_header_get(&r, "HOST"), "localhost:8080"));
    ASSERT(http_header_get(&r, "cookie") == NULL);
    ASSERT(r.keep_alive);
    ASSERT_EQ(r.content_length, -1);
    ASSERT(!r.chunked);
    check_prefixes(get);

    /* A body follows the head; pipelined bytes are not part of it. */
    const char *post = "POST /v1/topics/t/events HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
                       "Content-Type: application/json\r\nConnection: close\r\n\r\n[1,2]GET";
    ASSERT_OK(parse(post, &r, &why));
    ASSERT_EQ(r.content_length, 5);
    ASSERT(!r.keep_alive);
    ASSERT_EQ(memcmp(post + r.head_len, "[1,2]", 5), 0);

    /* Bare LF line ends, HTTP/1.0 keep-alive rules, leading empty lines, absolute form. */
    ASSERT_OK(parse("\r\nGET / HTTP/1.0\nConnection: Keep-Alive\n\n", &r, &why));
    ASSERT_EQ(r.minor, 0);
    ASSERT(r.keep_alive);
    ASSERT_OK(parse("GET /x HTTP/1.0\r\n\r\n", &r, &why));
    ASSERT(!r.keep_alive);
    ASSERT_OK(parse("GET http://example:80/a/b?c=d HTTP/1.1\r\nHost: example\r\n\r\n", &r, &why));
    ASSERT(slice_is(r.path, "/a/b"));
    ASSERT(slice_is(r.query, "c=d"));
    ASSERT_OK(parse("GET https://example HTTP/1.1\r\nHost: example\r\n\r\n", &r, &why));
    ASSERT(slice_is(r.path, "/"));
    ASSERT_OK(parse("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", &r, &why));
    ASSERT_OK(parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade, close\r\n\r\n", &r, &why));
    ASSERT(!r.keep_alive);
    ASSERT_OK(parse("PUT /x HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: "
                    "3\r\nContent-Length: 3\r\n\r\n",
                    &r, &why));
    ASSERT(r.expect_continue);
    ASSERT_EQ(r.content_length, 3);
    ASSERT_OK(parse("POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n", &r, &why));
    ASSERT(r.chunked);
    ASSERT_OK(parse("GET / HTTP/1.1\r\nHost: h\r\nEmpty:\r\n\r\n", &r, &why));
    ASSERT_EQ(r.headers[1].value.n, 0u);

    /* Rebased onto a copy, the request reads the copy: the original may go. */
    char orig[128], copy[128];
    snprintf(orig, sizeof(orig), "GET /a/b?x=1 HTTP/1.1\r\nHost: h\r\nX-Y:  z \r\n\r\n");
    ASSERT_OK(parse(orig, &r, &why));
    memcpy(copy, orig, r.head_len);
    http_request_rebase(&r, (const uint8_t *)orig, (const uint8_t *)copy);
    memset(orig, '#', sizeof(orig));
    ASSERT(slice_is(r.method, "GET") && slice_is(r.path, "/a/b") && slice_is(r.query, "x=1"));
    ASSERT(slice_is(*http_header_get(&r, "x-y"), "z"));
    ASSERT_OK(parse("GET http://h HTTP/1.1\r\nHost: h\r\n\r\n", &r, &why));
    http_request_rebase(&r, (const uint8_t *)orig, (const uint8_t *)copy);
    ASSERT(slice_is(r.path, "/")); /* the static "/" of an absolute form stays */
}

static void test_refusals(void)
{
    static const struct {
        const char *req;
        int status;
        const char *why;
    } cases[] = {
        {"G(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "method"},
        {"GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "target"},
        {"GET /\x01 HTTP/1.1\r\nHost: h\r\n\r\n", 400, "control"},
        {"GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400, "version"},
        {"GET / HTTX/1.1\r\nHost: h\r\n\r\n", 400, "version"},
        {"GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505, "HTTP/1.0"},
        {"GET / HTTP/1.2\r\nHost: h\r\n\r\n", 505, "HTTP/1.0"},
        {"GET /\r\n\r\n", 400, "version"},
        {"GET relative HTTP/1.1\r\nHost: h\r\n\r\n", 400, "path"},
        {"GET / HTTP/1.1\r\n\r\n", 400, "Host"},
        {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "Host"},
        {"GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400, "colon"},
        {"GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n", 400, "folding"},
        {"GET / HTTP/1.1\r\nHost: h\r\nX: a\x01b\r\n\r\n", 400, "control"},
        {"GET / HTTP/1.1\r\nHost: h\r\nno colon\r\n\r\n", 400, "name"},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1x\r\n\r\n", 400, "Content-Length"},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400, "Content-Length"},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400,
         "conflicting"},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
         400, "both"},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501, "chunked"},
        {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "HTTP/1.0"},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 8388609\r\n\r\n", 413, "larger"},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n", 400,
         "Content-Length"},
        {"GET / HTTP/1.1\r\nHost: h\r\nExpect: something\r\n\r\n", 417, "100-continue"},
    };
    for (size_t i = 0; i < TD_ARRAY_LEN(cases); i++) {
        http_request r;
        const char *why = NULL;
        int rc = parse(cases[i].req, &r, &why);
        if (rc != cases[i].status)
            TEST_FAIL_("case %zu (%s): %d, want %d (%s)", i, cases[i].req, rc, cases[i].status,
                       why ? why : "");
        ASSERT(why != NULL);
        ASSERT_CONTAINS(why, cases[i].why);
    }
}

static void test_limits(void)
{
    http_limits l;
    http_limits_default(&l);
    http_request r;
    const char *why;
    char buf[40000];
    /* A target over the limit: 414 once it is known, before the line ends. */
    memcpy(buf, "GET /", 5);
    memset(buf + 5, 'a', 9000);
    ASSERT_EQ(http_parse_request((uint8_t *)buf, 5 + 9000, &l, &r, &why), 414);
    memcpy(buf + 9005, " HTTP/1.1\r\nHost: h\r\n\r\n", 23);
    ASSERT_EQ(http_parse_request((uint8_t *)buf, 9028, &l, &r, &why), 414);
    /* Too many fields: 431. */
    size_t n = (size_t)sprintf(buf, "GET / HTTP/1.1\r\nHost: h\r\n");
    for (int i = 0; i < 70; i++)
        n += (size_t)sprintf(buf + n, "X-%d: v\r\n", i);
    n += (size_t)sprintf(buf + n, "\r\n");
    ASSERT_EQ(http_parse_request((uint8_t *)buf, n, &l, &r, &why), 431);
    /* Fields that never end: 431 once past the head limit, not a wait for ever. */
    n = (size_t)sprintf(buf, "GET / HTTP/1.1\r\nHost: h\r\nX-Big: ");
    memset(buf + n, 'v', 20000);
    ASSERT_EQ(http_parse_request((uint8_t *)buf, n + 10000, &l, &r, &why), TD_EAGAIN);
    ASSERT_EQ(http_parse_request((uint8_t *)buf, n + 20000, &l, &r, &why), 431);
    /* Exactly at the limits is fine. */
    l.max_headers = 2;
    ASSERT_OK(http_parse_request((const uint8_t *)"GET / HTTP/1.1\r\nHost: h\r\nA: b\r\n\r\n", 33,
                                 &l, &r, &why));
    ASSERT_EQ(
        http_parse_request((const uint8_t *)"GET / HTTP/1.1\r\nHost: h\r\nA: b\r\nC: d\r\n\r\n", 39,
                           &l, &r, &why),
        431);
}

static int feed_all(const char *body, size_t step, int64_t max, td_buf *out, size_t *end,
                    const char **why)
{
    http_chunked c;
    http_chunked_init(&c);
    size_t n = strlen(body), off = 0;
    td_buf_reset(out);
    while (off < n) {
        size_t k = n - off < step ? n - off : step, used = 0;
        int rc = http_chunked_feed(&c, (const uint8_t *)body + off, k, max, out, &used, why);
        if (rc != 0) {
            *end = off + used;
            return rc;
        }
        ASSERT_EQ(used, k);
        off += k;
    }
    *end = off;
    return 0;
}

static void test_chunked(void)
{
    td_buf out;
    td_buf_init(&out);
    const char *why;
    size_t end;
    const char *body = "5\r\nhello\r\n7;name=value\r\n, world\r\n0\r\nTrailer: x\r\n\r\nNEXT";
    for (size_t step = 1; step <= strlen(body); step++) {
        ASSERT_EQ(feed_all(body, step, 1 << 20, &out, &end, &why), 1);
        ASSERT_EQ(out.len, 12u);
        ASSERT_EQ(memcmp(out.p, "hello, world", 12), 0);
        ASSERT_EQ(end, strlen(body) - 4); /* "NEXT" is the next request */
    }
    ASSERT_EQ(feed_all("A\nabcdefghij\n0\n\n", 3, 100, &out, &end, &why), 1); /* bare LFs */
    ASSERT_EQ(out.len, 10u);
    ASSERT_EQ(feed_all("0\r\n\r\n", 1, 100, &out, &end, &why), 1);
    ASSERT_EQ(out.len, 0u);
    /* Incomplete: more is needed. */
    ASSERT_EQ(feed_all("5\r\nhel", 2, 100, &out, &end, &why), 0);
    ASSERT_EQ(feed_all("5\r\nhello\r\n0\r\n", 4, 100, &out, &end, &why), 0);
    /* Refused. */
    ASSERT_EQ(feed_all("x\r\n", 1, 100, &out, &end, &why), 400);
    ASSERT_EQ(feed_all("\r\n", 1, 100, &out, &end, &why), 400);
    ASSERT_EQ(feed_all("5\r\nhelloX\r\n", 1, 100, &out, &end, &why), 400);
    ASSERT_CONTAINS(why, "longer than its size");
    ASSERT_EQ(feed_all("5\rX", 1, 100, &out, &end, &why), 400);
    ASSERT_EQ(feed_all("fffffffffffffffff\r\n", 1, INT64_MAX, &out, &end, &why), 400);
    ASSERT_EQ(feed_all("65\r\n", 1, 100, &out, &end, &why), 413); /* 0x65 = 101 bytes */
    ASSERT_EQ(feed_all("32\r\n" /* 50 */, 1, 100, &out, &end, &why), 0);
    char big[200];
    snprintf(big, sizeof(big), "32\r\n%050d\r\n32\r\n%050d\r\n1\r\n", 0, 0);
    ASSERT_EQ(feed_all(big, 7, 100, &out, &end, &why), 413); /* the third chunk passes 100 */
    char ext[5000];
    memset(ext, 'e', sizeof(ext));
    memcpy(ext, "1;", 2);
    ext[sizeof(ext) - 1] = 0;
    ASSERT_EQ(feed_all(ext, 100, 100, &out, &end, &why), 400);
    td_buf_free(&out);
}

static void test_decoding_and_queries(void)
{
    char out[64];
    ASSERT_EQ(http_pct_decode(td_slice_make("a%2Fb%20c+d", 11), false, out, sizeof(out)), 7);
    ASSERT_STR_EQ(out, "a/b c+d");
    ASSERT_EQ(http_pct_decode(td_slice_make("a+b", 3), true, out, sizeof(out)), 3);
    ASSERT_STR_EQ(out, "a b");
    ASSERT_EQ(http_pct_decode(td_slice_make("%4", 2), false, out, sizeof(out)), -1);
    ASSERT_EQ(http_pct_decode(td_slice_make("%zz", 3), false, out, sizeof(out)), -1);
    ASSERT_EQ(http_pct_decode(td_slice_make("%00", 3), false, out, sizeof(out)), -1);
    ASSERT_EQ(http_pct_decode(td_slice_make("abcd", 4), false, out, 4), -1); /* no room for NUL */
    ASSERT_EQ(http_pct_decode(td_slice_make("abc", 3), false, out, 4), 3);
    ASSERT_EQ(http_pct_decode(td_slice_make("", 0), false, out, 1), 0);
    ASSERT_STR_EQ(out, "");
    td_slice q = td_slice_make("topics=orders.*%2Cbilling.%23&&from=earliest&flag&x=1&x=2", 57);
    ASSERT_EQ(http_query_get(q, "topics", out, sizeof(out)), 1);
    ASSERT_STR_EQ(out, "orders.*,billing.#");
    ASSERT_EQ(http_query_get(q, "flag", out, sizeof(out)), 1);
    ASSERT_STR_EQ(out, "");
    ASSERT_EQ(http_query_get(q, "x", out, sizeof(out)), 1);
    ASSERT_STR_EQ(out, "1");
    ASSERT_EQ(http_query_get(q, "missing", out, sizeof(out)), 0);
    ASSERT_EQ(http_query_get(td_slice_make("a=%G1", 5), "a", out, sizeof(out)), -1);
    td_slice it = q, k, v;
    int n = 0;
    while (http_query_next(&it, &k, &v))
        n++;
    ASSERT_EQ(n, 5);
    ASSERT_STR_EQ(http_reason(404), "Not Found");
    ASSERT_STR_EQ(http_reason(299), "Unknown");
}

typedef struct positions {
    char text[128];
    size_t len;
    int count;
} positions;

static void on_pos(void *arg, td_slice topic, int32_t partition, int64_t offset)
{
    positions *a = arg;
    a->len += (size_t)snprintf(a->text + a->len, sizeof(a->text) - a->len, "%.*s/%d=%lld ",
                               (int)topic.n, (const char *)topic.p, partition, (long long)offset);
    a->count++;
}

static int cursor(const char *s, positions *a)
{
    memset(a, 0, sizeof(*a));
    return http_cursor_parse(s, strlen(s), on_pos, a);
}

static void test_cursor_and_time(void)
{
    positions a;
    ASSERT_OK(cursor("orders.eu/0/17;billing:0=3;orders.eu:0=18,1=5", &a));
    ASSERT_STR_EQ(a.text, "billing/0=3 orders.eu/0=18 orders.eu/1=5 ");
    ASSERT_OK(cursor("billing:0=3", &a)); /* without the event's coordinates */
    ASSERT_EQ(a.count, 1);
    ASSERT_OK(cursor("-", &a)); /* an empty cursor */
    ASSERT_EQ(a.count, 0);
    ASSERT_OK(cursor("t/0/1;", &a));
    ASSERT_EQ(a.count, 0);
    /* Names hold ':', '=' and ';' (Redis keys): a topic ends at its part's last ':', and a
     * cursor writes a name's ';' and '%' as %3B and %25 (the slices are the cursor's bytes). */
    ASSERT_OK(cursor("user:1:events/0/17;user:1:events:0=18,1=5;a%3Bb=c:2=3;my%2520key:0=1", &a));
    ASSERT_STR_EQ(a.text, "user:1:events/0=18 user:1:events/1=5 a%3Bb=c/2=3 my%2520key/0=1 ");
    ASSERT_OK(cursor("x:1=2:0=1", &a)); /* the topic "x:1=2" */
    ASSERT_STR_EQ(a.text, "x:1=2/0=1 ");
    static const char *const bad[] = {"junk", "t:", "t:0", "t:0=", "t:=1", "t:x=1", ":0=1",
                                      "t:0=1;;", "t:0=1,", "t:0=1 ", "t:99999999999=1",
                                      "t:0=99999999999999999999", "t,:0=1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (cursor(bad[i], &a) != TD_EINVAL)
            TEST_FAIL_("cursor '%s' was accepted", bad[i]);
    /* Names that are not names, or escapes a cursor does not write. */
    static const char *const bad_names[] = {"a%3b:0=1", "a%41:0=1", "a%:0=1",
                                            "a b:0=1",  "a%20:0=1", ".:0=1"};
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++)
        if (cursor(bad_names[i], &a) != TD_EINVAL)
            TEST_FAIL_("cursor '%s' was accepted", bad_names[i]);
    /* Every prefix of a valid cursor parses or is refused, never read past its end. */
    const char *ok = "a.b/1/2;a.b:0=10,1=20;c:0=1";
    for (size_t k = 0; k <= strlen(ok); k++) {
        memset(&a, 0, sizeof(a));
        int rc = http_cursor_parse(ok, k, on_pos, &a);
        ASSERT(rc == 0 || rc == TD_EINVAL);
    }

    int64_t ms;
    ASSERT_OK(http_parse_time("1764061234567", &ms));
    ASSERT_EQ(ms, 1764061234567);
    ASSERT_OK(http_parse_time("2026-11-25T08:00:00Z", &ms));
    ASSERT_EQ(ms, 1795593600000);
    ASSERT_OK(http_parse_time("2026-11-25T09:00:00.25+01:00", &ms));
    ASSERT_EQ(ms, 1795593600250);
    ASSERT_OK(http_parse_time("2026-11-25T07:30:00.001-00:30", &ms));
    ASSERT_EQ(ms, 1795593600001);
    static const char *const bad_times[] = {"", "yesterday", "2026-11-25", "2026-11-25T08:00:00",
                                            "2026-11-25T08:00:00.Z", "2026-11-25T08:00:00+1",
                                            "2026-11-25T08:00:00Zx", "1234567890123456789",
                                            "-5", "12 "};
    for (size_t i = 0; i < sizeof(bad_times) / sizeof(bad_times[0]); i++)
        if (http_parse_time(bad_times[i], &ms) != TD_EINVAL)
            TEST_FAIL_("time '%s' was accepted", bad_times[i]);
}

/* The defaults fill every field, whatever the memory held before: a stack structure with
 * registry_only left as it was served the schema registry at the root of every connection in
 * release builds (every other route answered the registry's 404). */
static void test_config_defaults(void)
{
    http_server_config c;
    memset(&c, 0xa5, sizeof(c));
    http_server_config_default(&c);
    ASSERT(!c.registry_only);
    ASSERT_STR_EQ(c.registry_prefix, "/registry");
    ASSERT_EQ(c.default_partitions, 1);
}

/* W3C Trace Context of a request (trace.c): one valid traceparent, tracestate fields. */
static void test_trace_context(void)
{
    static const char tp[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    char req[512];
    http_request r;
    const char *why;
    td_slice t, st;
    size_t ns;
    snprintf(req, sizeof(req),
             "POST / HTTP/1.1\r\nHost: h\r\nTraceParent: %s\r\ntracestate: a=1\r\n"
             "TRACESTATE: b=2\r\n\r\n",
             tp);
    ASSERT_OK(parse(req, &r, &why));
    ASSERT_EQ(http_trace_context(&r, &t, &st, &ns), 1);
    ASSERT(t.n == strlen(tp) && !memcmp(t.p, tp, t.n));
    ASSERT(ns == 2 && st.n == 3 && !memcmp(st.p, "a=1", 3));
    /* The events get both, the states joined; an event with its own keeps it. */
    td_arena a;
    td_arena_init(&a);
    td_header own = {"traceparent", 11, "x", 1};
    td_event evs[2] = {{.value = "1", .value_len = 1}, {.headers = &own, .header_count = 1}};
    ASSERT_OK(http_trace_events(&r, &a, evs, 2));
    ASSERT_EQ(evs[0].header_count, 2);
    ASSERT(evs[0].headers[1].value_len == 7 && !memcmp(evs[0].headers[1].value, "a=1,b=2", 7));
    ASSERT(evs[1].header_count == 1 && evs[1].headers == &own);
    td_arena_free(&a);
    /* Two traceparent fields, or an invalid one: none, and no state. */
    snprintf(req, sizeof(req),
             "POST / HTTP/1.1\r\nHost: h\r\ntraceparent: %s\r\ntraceparent: %s\r\n"
             "tracestate: a=1\r\n\r\n",
             tp, tp);
    ASSERT_OK(parse(req, &r, &why));
    ASSERT_EQ(http_trace_context(&r, &t, &st, &ns), 0);
    ASSERT(t.n == 0 && ns == 0);
    snprintf(req, sizeof(req), "POST / HTTP/1.1\r\nHost: h\r\ntraceparent: %.54s\r\n\r\n", tp);
    ASSERT_OK(parse(req, &r, &why));
    ASSERT_EQ(http_trace_context(&r, &t, &st, &ns), 0);
    snprintf(req, sizeof(req), "POST / HTTP/1.1\r\nHost: h\r\n\r\n");
    ASSERT_OK(parse(req, &r, &why));
    ASSERT_EQ(http_trace_context(&r, &t, &st, &ns), 0);
}

TEST_MAIN(TEST(test_heads), TEST(test_refusals), TEST(test_limits), TEST(test_chunked),
          TEST(test_decoding_and_queries), TEST(test_cursor_and_time), TEST(test_config_defaults),
          TEST(test_trace_context))
