/* W3C Trace Context's traceparent (base/trace.c): parsing, formatting, new traces and spans. */
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "test.h"

static const char *const GOOD = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

static int parse(const char *s, td_trace_ctx *c)
{
    /* A heap copy of exactly its length, so that ASan sees any read past it. */
    size_t n = strlen(s);
    char *p = malloc(n ? n : 1);
    memcpy(p, s, n);
    int rc = td_traceparent_parse(p, n, c);
    free(p);
    return rc;
}

static void test_parse_format(void)
{
    td_trace_ctx c;
    ASSERT_OK(parse(GOOD, &c));
    static const uint8_t tid[16] = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
                                    0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};
    static const uint8_t sid[8] = {0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7};
    ASSERT_MEM_EQ(c.trace_id, tid, 16);
    ASSERT_MEM_EQ(c.span_id, sid, 8);
    ASSERT_EQ(c.flags, 1);
    char out[TD_TRACEPARENT_LEN + 1];
    ASSERT_EQ(td_traceparent_format(&c, out), TD_TRACEPARENT_LEN);
    ASSERT_STR_EQ(out, GOOD);
    /* Flags other than sampled are kept (a later spec may define them). */
    ASSERT_OK(parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-fe", &c));
    ASSERT_EQ(c.flags, 0xfe);
}

static void test_invalid(void)
{
    static const char *const bad[] = {
        "",
        "00",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",   /* short flags */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-011", /* version 00 is 55 */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-", /* nor more, with a dash */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  /* uppercase */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",  /* uppercase */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0G",  /* not hex */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  /* zero trace-id */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  /* zero parent-id */
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  /* version ff */
        "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  /* version not hex */
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  /* separators */
        "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01",
        "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",  /* shifted dash */
        " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", /* spaces are not trimmed */
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", /* later version: a dash */
    };
    td_trace_ctx c;
    memset(&c, 0x5a, sizeof(c));
    td_trace_ctx before = c;
    for (size_t i = 0; i < TD_ARRAY_LEN(bad); i++) {
        if (parse(bad[i], &c) == 0)
            TEST_FAIL_("'%s' parsed", bad[i]);
        ASSERT(memcmp(&c, &before, sizeof(c)) == 0); /* untouched */
    }
    /* An embedded NUL. */
    char nul[TD_TRACEPARENT_LEN];
    memcpy(nul, GOOD, sizeof(nul));
    nul[40] = 0;
    ASSERT_EQ(td_traceparent_parse(nul, sizeof(nul), &c), -1);
    ASSERT_EQ(td_traceparent_parse(NULL, 0, &c), -1);
}

static void test_later_versions(void)
{
    /* A version above 00 is read as 00 when it has at least its fields, more after a dash. */
    td_trace_ctx c;
    ASSERT_OK(parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", &c));
    ASSERT_OK(parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-ever", &c));
    ASSERT_EQ(c.flags, 1);
    char out[TD_TRACEPARENT_LEN + 1];
    td_traceparent_format(&c, out);
    ASSERT_STR_EQ(out, GOOD); /* passed on as version 00 */
}

static void test_truncated(void)
{
    /* Every prefix of a valid value is refused, and no byte past the length is read. */
    td_trace_ctx c;
    for (size_t n = 0; n < TD_TRACEPARENT_LEN; n++) {
        char *p = malloc(n ? n : 1);
        memcpy(p, GOOD, n);
        ASSERT_EQ(td_traceparent_parse(p, n, &c), -1);
        free(p);
    }
}

static void test_new(void)
{
    td_trace_ctx a, b, child;
    td_trace_new_root(&a, 0);
    td_trace_new_root(&b, TD_TRACE_SAMPLED);
    ASSERT(memcmp(a.trace_id, b.trace_id, 16) != 0);
    ASSERT_EQ(a.flags, 0);
    ASSERT_EQ(b.flags, 1);
    char out[TD_TRACEPARENT_LEN + 1];
    td_traceparent_format(&a, out);
    td_trace_ctx back;
    ASSERT_OK(td_traceparent_parse(out, strlen(out), &back));
    ASSERT(memcmp(&back.trace_id, &a.trace_id, 16) == 0 && back.flags == 0);
    for (int i = 0; i < 1000; i++) {
        td_trace_new_span(&b, &child);
        ASSERT_MEM_EQ(child.trace_id, b.trace_id, 16);
        ASSERT(memcmp(child.span_id, b.span_id, 8) != 0);
        ASSERT_EQ(child.flags, b.flags);
        static const uint8_t zero[8];
        ASSERT(memcmp(child.span_id, zero, 8) != 0);
    }
}

static void test_random_ids(void)
{
    /* Lengths that are not multiples of 8 are filled too, and never all zero. */
    static const uint8_t zero[16];
    uint8_t a[16], b[16], c[3];
    td_random_id(a, sizeof(a));
    td_random_id(b, sizeof(b));
    ASSERT(memcmp(a, b, sizeof(a)) != 0);
    for (int i = 0; i < 1000; i++) {
        td_random_id(c, sizeof(c));
        ASSERT(memcmp(c, zero, sizeof(c)) != 0);
    }
}

static void test_tracestate_and_headers(void)
{
    ASSERT(td_tracestate_valid("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", 38));
    ASSERT(!td_tracestate_valid("", 0));
    ASSERT(!td_tracestate_valid("a=1\n", 4));
    ASSERT(!td_tracestate_valid("a=\xc3\xa9", 4));
    char big[TD_TRACESTATE_MAX + 1];
    memset(big, 'a', sizeof(big));
    ASSERT(td_tracestate_valid(big, TD_TRACESTATE_MAX));
    ASSERT(!td_tracestate_valid(big, TD_TRACESTATE_MAX + 1));
    char many[200] = "";
    for (int i = 0; i < 33; i++)
        strcat(many, i ? ",a=1" : "a=1");
    ASSERT(!td_tracestate_valid(many, strlen(many)));
    many[strlen(many) - 4] = 0; /* 32 members */
    ASSERT(td_tracestate_valid(many, strlen(many)));

    ASSERT(td_trace_header_name("traceparent", 11));
    ASSERT(td_trace_header_name("tracestate", 10));
    ASSERT(!td_trace_header_name("Traceparent", 11));
    ASSERT(!td_trace_header_name("traceparen", 10));

    td_trace_ctx c;
    td_header hs[3] = {{"a", 1, "b", 1}, {"traceparent", 11, GOOD, TD_TRACEPARENT_LEN}, {0}};
    ASSERT_EQ(td_trace_find(hs, 1, &c), 0);
    ASSERT_EQ(td_trace_find(hs, 2, &c), 1);
    ASSERT_EQ(c.flags, 1);
    hs[1].value_len--;
    ASSERT_EQ(td_trace_find(hs, 2, &c), -1);
    hs[1].value = NULL;
    ASSERT_EQ(td_trace_find(hs, 2, &c), -1);
}

/* The value of header `name` of ev, NUL-terminated into buf, or NULL. */
static const char *header(const td_event *ev, const char *name, char *buf, size_t len)
{
    for (size_t i = 0; i < ev->header_count; i++)
        if (ev->headers[i].key_len == strlen(name) &&
            !memcmp(ev->headers[i].key, name, strlen(name)) && ev->headers[i].value_len < len) {
            memcpy(buf, ev->headers[i].value, ev->headers[i].value_len);
            buf[ev->headers[i].value_len] = 0;
            return buf;
        }
    return NULL;
}

/* trace.inject through td_produce: events without a traceparent get a new trace, with the
 * configured flags; those with one (valid or not) keep it; off, nothing is added. */
static void test_trace_id_parse(void)
{
    const char *good = "4bf92f3577b34da6a3ce929d0e0e4736";
    uint8_t id[16];
    ASSERT_EQ(td_trace_id_parse(good, 32, id), 0);
    ASSERT_EQ(id[0], 0x4b);
    ASSERT_EQ(id[15], 0x36);
    for (size_t n = 0; n < 32; n++) /* every truncation */
        ASSERT_EQ(td_trace_id_parse(good, n, id), -1);
    ASSERT_EQ(td_trace_id_parse("4bf92f3577b34da6a3ce929d0e0e47361", 33, id), -1);
    ASSERT_EQ(td_trace_id_parse("4BF92F3577B34DA6A3CE929D0E0E4736", 32, id), -1);
    ASSERT_EQ(td_trace_id_parse("4bf92f3577b34da6a3ce929d0e0e473g", 32, id), -1);
    ASSERT_EQ(td_trace_id_parse("00000000000000000000000000000000", 32, id), -1);
    ASSERT_EQ(td_trace_id_parse(NULL, 32, id), -1);
}

static void test_engine_inject(void)
{
    for (int mode = 0; mode < 3; mode++) {
        char *dir = test_tmpdir("trace-inject");
        td_options o;
        td_options_init(&o);
        o.no_background = 1;
        o.trace_inject = mode ? TD_TRACE_INJECT_MISSING : TD_TRACE_INJECT_NONE;
        o.trace_sampled = mode == 2;
        td_engine *e;
        ASSERT_OK(td_engine_open(dir, &o, &e));
        ASSERT_OK(td_topic_create(e, "t", 1, NULL, 0));
        td_header own[] = {{"a", 1, "b", 1}, {"traceparent", 11, GOOD, TD_TRACEPARENT_LEN}};
        td_header bad[] = {{"traceparent", 11, "junk", 4}};
        td_header other[] = {{"a", 1, "b", 1}};
        td_event evs[] = {{.value = "1", .value_len = 1, .partition = TD_PARTITION_ANY},
                          {.value = "2",
                           .value_len = 1,
                           .headers = own,
                           .header_count = 2,
                           .partition = TD_PARTITION_ANY},
                          {.value = "3",
                           .value_len = 1,
                           .headers = bad,
                           .header_count = 1,
                           .partition = TD_PARTITION_ANY},
                          {.value = "4",
                           .value_len = 1,
                           .headers = other,
                           .header_count = 1,
                           .partition = TD_PARTITION_ANY}};
        ASSERT_OK(td_produce(e, "t", evs, 4, NULL));
        td_iter *it;
        td_event got;
        char buf[128];
        td_trace_ctx c[2];
        ASSERT_OK(td_iter_open(e, "t", 0, TD_OFFSET_EARLIEST, &it));
        ASSERT_EQ(td_iter_next(it, &got), 1);
        if (mode) {
            ASSERT_EQ(got.header_count, 1);
            ASSERT_EQ(td_trace_find(got.headers, got.header_count, &c[0]), 1);
            ASSERT_EQ(c[0].flags, mode == 2 ? 1 : 0);
        } else {
            ASSERT_EQ(got.header_count, 0);
        }
        ASSERT_EQ(td_iter_next(it, &got), 1);
        ASSERT_EQ(got.header_count, 2);
        ASSERT_STR_EQ(header(&got, "traceparent", buf, sizeof(buf)), GOOD);
        ASSERT_EQ(td_iter_next(it, &got), 1);
        ASSERT_EQ(got.header_count, 1);
        ASSERT_STR_EQ(header(&got, "traceparent", buf, sizeof(buf)), "junk");
        ASSERT_EQ(td_iter_next(it, &got), 1);
        ASSERT_EQ(got.header_count, mode ? 2 : 1);
        ASSERT_STR_EQ(header(&got, "a", buf, sizeof(buf)), "b");
        if (mode) {
            ASSERT_EQ(td_trace_find(got.headers, got.header_count, &c[1]), 1);
            ASSERT(memcmp(c[0].trace_id, c[1].trace_id, 16) != 0); /* a trace each */
        }
        td_iter_close(it);
        td_engine_close(e);
        test_rmrf(dir);
    }
}

TEST_MAIN(TEST(test_parse_format), TEST(test_trace_id_parse), TEST(test_invalid), TEST(test_later_versions),
          TEST(test_truncated), TEST(test_new), TEST(test_random_ids),
          TEST(test_tracestate_and_headers), TEST(test_engine_inject))
