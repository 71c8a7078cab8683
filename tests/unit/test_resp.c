/*
 * test_resp.c: the Redis protocol codec (src/proto/resp/codec.c): commands as arrays and inline,
 * every prefix of a command needing more input, Redis's protocol error texts, limits enforced
 * before the data arrives, glob patterns, and the replies in RESP2 and RESP3.
 */
#include <stdlib.h>

#include "proto/resp/resp.h"
#include "test.h"

static resp_limits lim(void)
{
    resp_limits l;
    resp_limits_default(&l);
    return l;
}

/* Parses p (len bytes) whole and checks the arguments ("a|b|c") and the length taken; every
 * shorter prefix must need more input. */
static void parses(const char *p, size_t len, const char *want, size_t want_len)
{
    resp_limits l = lim();
    for (size_t cut = 0; cut < want_len; cut++) {
        td_arena a;
        td_arena_init(&a);
        resp_cmd c;
        const char *why;
        int rc = resp_parse_command((const uint8_t *)p, cut, &l, &a, &c, &why);
        if (rc != TD_EAGAIN)
            TEST_FAIL_("prefix %zu of %.*s: %d (%s)", cut, (int)len, p, rc, why ? why : "");
        td_arena_free(&a);
    }
    td_arena a;
    td_arena_init(&a);
    resp_cmd c;
    const char *why;
    ASSERT_OK(resp_parse_command((const uint8_t *)p, len, &l, &a, &c, &why));
    ASSERT_EQ(c.len, want_len);
    char got[512] = "";
    size_t n = 0;
    for (size_t i = 0; i < c.argc; i++)
        n += (size_t)snprintf(got + n, sizeof(got) - n, "%s%.*s", i ? "|" : "", (int)c.argv[i].n,
                              (const char *)c.argv[i].p);
    ASSERT_STR_EQ(got, want);
    td_arena_free(&a);
}

static void fails(const char *p, size_t len, const resp_limits *l, const char *why_want)
{
    td_arena a;
    td_arena_init(&a);
    resp_cmd c;
    const char *why = NULL;
    ASSERT_EQ(resp_parse_command((const uint8_t *)p, len, l, &a, &c, &why), TD_EPROTO);
    ASSERT_STR_EQ(why, why_want);
    td_arena_free(&a);
}

static void test_arrays(void)
{
    const char *ping = "*1\r\n$4\r\nPING\r\n";
    parses(ping, strlen(ping), "PING", strlen(ping));
    const char *two = "*3\r\n$4\r\nXADD\r\n$1\r\ns\r\n$0\r\n\r\n*1\r\n$4\r\nPING\r\n";
    parses(two, strlen(two), "XADD|s|", 27); /* the first of a pipeline */
    /* Binary-safe: CR, LF and NUL inside an argument. */
    static const char bin[] = "*2\r\n$3\r\nSET\r\n$5\r\na\r\n\0b\r\n";
    parses(bin, sizeof(bin) - 1, "SET|a\r\n", sizeof(bin) - 1); /* printed up to the NUL */
    td_arena a;
    td_arena_init(&a);
    resp_cmd c;
    const char *why;
    resp_limits l = lim();
    ASSERT_OK(resp_parse_command((const uint8_t *)bin, sizeof(bin) - 1, &l, &a, &c, &why));
    ASSERT_EQ(c.argv[1].n, 5);
    ASSERT_MEM_EQ(c.argv[1].p, "a\r\n\0b", 5);
    /* Empty and negative counts are empty commands. */
    ASSERT_OK(resp_parse_command((const uint8_t *)"*0\r\n", 4, &l, &a, &c, &why));
    ASSERT_EQ(c.argc, 0);
    ASSERT_EQ(c.len, 4);
    ASSERT_OK(resp_parse_command((const uint8_t *)"*-1\r\nX", 6, &l, &a, &c, &why));
    ASSERT_EQ(c.argc, 0);
    ASSERT_EQ(c.len, 5);
    td_arena_free(&a);
}

static void test_inline(void)
{
    parses("PING\r\n", 6, "PING", 6);
    parses("PING\n", 5, "PING", 5);
    parses("  set  k   v \r\n", 15, "set|k|v", 15);
    const char *q = "SET \"a b\\x41\\n\" 'it\\'s' \"\"\r\n";
    parses(q, strlen(q), "SET|a bA\n|it's|", strlen(q));
    parses("\r\n", 2, "", 2); /* an empty line: nothing to run */
    resp_limits l = lim();
    fails("SET \"a\r\n", 8, &l, "Protocol error: unbalanced quotes in request");
    fails("SET 'a\r\n", 8, &l, "Protocol error: unbalanced quotes in request");
    fails("SET \"a\"b\r\n", 10, &l, "Protocol error: unbalanced quotes in request");
    /* A line longer than the limit is refused before its end arrives. */
    l.max_inline = 16;
    fails("GET aaaaaaaaaaaaaaaaaaaaaa", 26, &l, "Protocol error: too big inline request");
}

static void test_protocol_errors(void)
{
    resp_limits l = lim();
    fails("*abc\r\n", 6, &l, "Protocol error: invalid multibulk length");
    fails("*01\r\n", 5, &l, "Protocol error: invalid multibulk length"); /* as string2ll */
    long long v;
    ASSERT(resp_parse_ll((const uint8_t *)"-42", 3, &v) && v == -42);
    ASSERT(resp_parse_ll((const uint8_t *)"0", 1, &v) && v == 0);
    ASSERT(!resp_parse_ll((const uint8_t *)"-0", 2, &v));
    ASSERT(!resp_parse_ll((const uint8_t *)"+1", 2, &v));
    ASSERT(!resp_parse_ll((const uint8_t *)" 1", 2, &v));
    ASSERT(!resp_parse_ll((const uint8_t *)"9223372036854775808", 19, &v));
    fails("*1\r\n+PING\r\n", 11, &l, "Protocol error: expected '$', got '+'");
    fails("*1\r\n$-5\r\n", 9, &l, "Protocol error: invalid bulk length");
    fails("*1\r\n$x\r\n", 8, &l, "Protocol error: invalid bulk length");
    fails("*99999999999999999999999\r\n", 26, &l, "Protocol error: invalid multibulk length");
    /* Limits apply to the announced sizes, before the data. */
    l.max_args = 4;
    fails("*5\r\n", 4, &l, "Protocol error: invalid multibulk length");
    l.max_bulk = 10;
    fails("*1\r\n$11\r\n", 9, &l, "Protocol error: invalid bulk length");
    l.max_inline = 8;
    fails("*123456789", 10, &l, "Protocol error: too big mbulk count string");
    fails("*1\r\n$123456789", 14, &l, "Protocol error: too big bulk count string");
}

static void test_glob(void)
{
    static const struct {
        const char *pat, *s;
        bool nocase, want;
    } cases[] = {
        {"*", "", false, false},
        {"", "", false, true},
        {"*", "anything", false, true},
        {"a*", "abc", false, true},
        {"a*", "bac", false, false},
        {"*c", "abc", false, true},
        {"a*c", "ac", false, true},
        {"a*c", "abcbd", false, false},
        {"a*b*c", "axxbyyc", false, true},
        {"h?llo", "hello", false, true},
        {"h?llo", "hllo", false, false},
        {"h[ae]llo", "hallo", false, true},
        {"h[ae]llo", "hillo", false, false},
        {"h[^e]llo", "hallo", false, true},
        {"h[^e]llo", "hello", false, false},
        {"h[a-b]llo", "hbllo", false, true},
        {"h[b-a]llo", "hallo", false, true},
        {"h[a-b]llo", "hcllo", false, false},
        {"\\*", "*", false, true},
        {"\\*", "a", false, false},
        {"[\\]]", "]", false, true},
        {"HELLO", "hello", true, true},
        {"HELLO", "hello", false, false},
        {"[A-C]x", "bx", true, true},
        {"orders.*", "orders.eu", false, true},
        {"*a*a*a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false, false},
    };
    for (size_t i = 0; i < TD_ARRAY_LEN(cases); i++) {
        bool got = resp_glob_match(cases[i].pat, strlen(cases[i].pat), cases[i].s,
                                   strlen(cases[i].s), cases[i].nocase);
        if (got != cases[i].want)
            TEST_FAIL_("glob %s vs %s: %d", cases[i].pat, cases[i].s, got);
    }
}

static void test_replies(void)
{
    for (int proto = 2; proto <= 3; proto++) {
        td_buf b;
        td_buf_init(&b);
        resp_w w = {&b, proto, false};
        resp_w_simple(&w, "OK");
        resp_w_error(&w, "ERR bad\r\nthing");
        resp_w_int(&w, -7);
        resp_w_bulk(&w, "a\0b", 3);
        resp_w_null(&w);
        resp_w_null_array(&w);
        resp_w_map(&w, 1);
        resp_w_str(&w, "k");
        resp_w_bulk_int(&w, 42);
        resp_w_set(&w, 0);
        resp_w_push(&w, 1);
        resp_w_double(&w, 1.5);
        resp_w_bool(&w, true);
        resp_w_verbatim(&w, "hi", 2);
        ASSERT(!w.oom);
        static const char r2[] = "+OK\r\n-ERR bad  thing\r\n:-7\r\n$3\r\na\0b\r\n$-1\r\n*-1\r\n"
                                 "*2\r\n$1\r\nk\r\n$2\r\n42\r\n*0\r\n*1\r\n$3\r\n1.5\r\n"
                                 ":1\r\n$2\r\nhi\r\n";
        static const char r3[] = "+OK\r\n-ERR bad  thing\r\n:-7\r\n$3\r\na\0b\r\n_\r\n_\r\n"
                                 "%1\r\n$1\r\nk\r\n$2\r\n42\r\n~0\r\n>1\r\n,1.5\r\n"
                                 "#t\r\n=6\r\ntxt:hi\r\n";
        const char *want = proto == 2 ? r2 : r3;
        size_t want_len = proto == 2 ? sizeof(r2) - 1 : sizeof(r3) - 1;
        if (b.len != want_len || memcmp(b.p, want, want_len))
            TEST_FAIL_("RESP%d replies: %.*s", proto, (int)b.len, (const char *)b.p);
        td_buf_free(&b);
    }
}

/* Fields of one event, joined as "name=value;" for comparison. */
static char *fields_text(const td_event *ev, char *buf, size_t len)
{
    td_arena a;
    td_arena_init(&a);
    td_slice *f;
    size_t n, at = 0;
    ASSERT_OK(resp_event_fields(ev, &a, &f, &n));
    buf[0] = 0;
    for (size_t i = 0; i + 1 < n; i += 2)
        at += (size_t)snprintf(buf + at, len - at, "%.*s=%.*s;", (int)f[i].n, (const char *)f[i].p,
                               (int)f[i + 1].n, (const char *)f[i + 1].p);
    td_arena_free(&a);
    return buf;
}

static void test_fields(void)
{
    char out[512];
    /* XADD's JSON form, and back. */
    td_slice fv[] = {td_slice_make("name", 4), td_slice_make("caf\xc3\xa9 \"x\"\n", 10),
                     td_slice_make("n", 1), td_slice_make("", 0)};
    ASSERT(resp_fields_json_ok(fv, 4));
    td_buf b;
    td_buf_init(&b);
    ASSERT_OK(resp_fields_encode(&b, fv, 4, true));
    ASSERT_EQ(b.len, strlen("{\"name\":\"caf\xc3\xa9 \\\"x\\\"\\n\",\"n\":\"\"}"));
    ASSERT_MEM_EQ(b.p, "{\"name\":\"caf\xc3\xa9 \\\"x\\\"\\n\",\"n\":\"\"}", b.len);
    td_event ev = {.value = b.p, .value_len = b.len};
    ASSERT_STR_EQ(fields_text(&ev, out, sizeof(out)), "name=caf\xc3\xa9 \"x\"\n;n=;");
    /* Repeated names, or bytes that are not UTF-8: the RESP array form. */
    td_slice rep[] = {td_slice_make("a", 1), td_slice_make("1", 1), td_slice_make("a", 1),
                      td_slice_make("\xff\x00", 2)};
    ASSERT(!resp_fields_json_ok(rep, 4));
    ASSERT(resp_fields_json_ok(rep, 2)); /* the first pair alone is fine */
    td_buf_reset(&b);
    ASSERT_OK(resp_fields_encode(&b, rep, 4, false));
    ASSERT_MEM_EQ(b.p, "*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\na\r\n$2\r\n\xff\x00\r\n", b.len);
    td_header h = {"content-type", 12, RESP_FIELDS_CONTENT_TYPE, strlen(RESP_FIELDS_CONTENT_TYPE)};
    td_event bin = {.value = b.p, .value_len = b.len, .headers = &h, .header_count = 1};
    td_arena a;
    td_arena_init(&a);
    td_slice *f;
    size_t n;
    ASSERT_OK(resp_event_fields(&bin, &a, &f, &n));
    ASSERT_EQ(n, 4u);
    ASSERT(f[3].n == 2 && f[3].p[0] == 0xff && f[3].p[1] == 0);
    td_arena_free(&a);
    /* Without its header the same value is just a value. */
    bin.header_count = 0;
    ASSERT_CONTAINS(fields_text(&bin, out, sizeof(out)), "value=*4");
    /* Events from Kafka or HTTP: key, the members of a JSON object (non-strings as text), or the
     * value, then headers. */
    td_header hs[] = {{"traceparent", 11, "00-ab", 5}, {"empty", 5, NULL, 0}};
    const char *obj = " {\"id\": 7, \"ok\": true, \"tags\": [1, {\"x\": null}], \"s\": "
                      "\"\\u00e9\\ud83d\\ude00\"} ";
    td_event k = {.key = "k1",
                  .key_len = 2,
                  .value = obj,
                  .value_len = strlen(obj),
                  .headers = hs,
                  .header_count = 2};
    ASSERT_STR_EQ(fields_text(&k, out, sizeof(out)),
                  "key=k1;id=7;ok=true;tags=[1, {\"x\": null}];s=\xc3\xa9\xf0\x9f\x98\x80;"
                  "traceparent=00-ab;empty=;");
    /* Not an object, or not JSON: one field holding the value. */
    static const char *const notobj[] = {
        "[1]",        "{\"a\":1", "{\"a\":01}",       "{\"a\" 1}",   "{\"a\":\"\\ud800\"}",
        "{\"a\":1,}", "{} x",     "{\"a\":\"\x01\"}", "{\"\xff\":1}"};
    for (size_t i = 0; i < sizeof(notobj) / sizeof(*notobj); i++) {
        td_event e = {.value = notobj[i], .value_len = strlen(notobj[i])};
        char want[64];
        snprintf(want, sizeof(want), "value=%s;", notobj[i]);
        ASSERT_STR_EQ(fields_text(&e, out, sizeof(out)), want);
    }
    td_event null_value = {.key = NULL, .value = NULL};
    ASSERT_STR_EQ(fields_text(&null_value, out, sizeof(out)), "");
    /* UTF-8 strictness. */
    ASSERT(td_utf8_valid((const uint8_t *)"\xf4\x8f\xbf\xbf", 4));
    ASSERT(!td_utf8_valid((const uint8_t *)"\xf4\x90\x80\x80", 4)); /* above U+10FFFF */
    ASSERT(!td_utf8_valid((const uint8_t *)"\xed\xa0\x80", 3));     /* a surrogate */
    ASSERT(!td_utf8_valid((const uint8_t *)"\xc0\xaf", 2));         /* overlong */
    ASSERT(!td_utf8_valid((const uint8_t *)"\xe2\x82", 2));         /* cut short */
    td_buf_free(&b);
}

/* Trace Context fields (docs/tracing.md): headers when they appear once, back as fields last. */
static void test_fields_trace(void)
{
    static const char tp[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    td_slice fv[] = {td_slice_make("a", 1),            td_slice_make("1", 1),
                     td_slice_make("traceparent", 11), td_slice_make(tp, strlen(tp)),
                     td_slice_make("b", 1),            td_slice_make("\xff", 1),
                     td_slice_make("tracestate", 10),  td_slice_make("x=1", 3)};
    td_slice rest[8];
    td_header trace[2];
    size_t nrest;
    ASSERT_EQ(resp_fields_trace_split(fv, 8, rest, &nrest, trace), 2);
    ASSERT_EQ(nrest, 4u);
    ASSERT(rest[0].n == 1 && rest[0].p[0] == 'a' && rest[2].n == 1 && rest[2].p[0] == 'b');
    ASSERT(trace[0].key_len == 11 && trace[0].value_len == strlen(tp));
    ASSERT(trace[1].key_len == 10 && trace[1].value_len == 3);
    /* A repeated name stays a field (the value is then the RESP array form). */
    td_slice twice[] = {td_slice_make("traceparent", 11), td_slice_make("x", 1),
                        td_slice_make("traceparent", 11), td_slice_make("y", 1)};
    td_header none[2];
    size_t n2;
    ASSERT_EQ(resp_fields_trace_split(twice, 4, rest, &n2, none), 0);
    ASSERT_EQ(n2, 4u);
    /* Names are exact (Redis field names are case-sensitive). */
    td_slice upper[] = {td_slice_make("Traceparent", 11), td_slice_make("x", 1)};
    ASSERT_EQ(resp_fields_trace_split(upper, 2, rest, &n2, none), 0);

    /* The rest in the binary-safe form (b is not UTF-8), with the trace headers after the
     * content-type: read back as the fields, then the trace fields. */
    td_slice kept[4] = {fv[0], fv[1], fv[4], fv[5]};
    ASSERT(!resp_fields_json_ok(kept, 4));
    td_buf b;
    td_buf_init(&b);
    ASSERT_OK(resp_fields_encode(&b, kept, 4, false));
    td_header hs[3] = {{"content-type", 12, RESP_FIELDS_CONTENT_TYPE,
                        strlen(RESP_FIELDS_CONTENT_TYPE)},
                       trace[0], trace[1]};
    td_event ev = {.value = b.p, .value_len = b.len, .headers = hs, .header_count = 3};
    char out[512], want[512];
    snprintf(want, sizeof(want), "a=1;b=\xff;traceparent=%s;tracestate=x=1;", tp);
    ASSERT_STR_EQ(fields_text(&ev, out, sizeof(out)), want);
    /* Another header beside them: not XADD's form, so the value is one field. */
    td_header other[2] = {hs[0], {"x", 1, "y", 1}};
    ev.headers = other;
    ev.header_count = 2;
    ASSERT_CONTAINS(fields_text(&ev, out, sizeof(out)), "value=*4");
    /* Only trace fields: an empty object, and the fields come back. */
    td_buf_reset(&b);
    ASSERT_OK(resp_fields_encode(&b, kept, 0, true));
    ASSERT_MEM_EQ(b.p, "{}", 2);
    td_event only = {.value = b.p, .value_len = b.len, .headers = trace, .header_count = 1};
    snprintf(want, sizeof(want), "traceparent=%s;", tp);
    ASSERT_STR_EQ(fields_text(&only, out, sizeof(out)), want);
    td_buf_free(&b);
}

/* XADD's entity fields (docs/event-sourcing.md#redis): taken out of the fields, the version's
 * forms parsed, every refusal said, every truncation of a valid version either another valid
 * form or refused (never read past its bytes); a keyed binary-safe entry reads back with `key`
 * first. */
static int split(const char *const *f, size_t n, resp_entity *en, size_t *nrest, const char **why)
{
    td_slice fv[16], rest[16];
    for (size_t i = 0; i < n; i++)
        fv[i] = td_slice_make(f[i], strlen(f[i]));
    *why = NULL;
    return resp_fields_entity_split(fv, n, rest, nrest, en, why);
}

static void test_fields_entity(void)
{
    resp_entity en;
    size_t nrest;
    const char *why;
    const char *plain[] = {"a", "1", "key", "k"};
    td_slice pv[4];
    for (size_t i = 0; i < 4; i++)
        pv[i] = td_slice_make(plain[i], strlen(plain[i]));
    ASSERT(!resp_fields_entity_named(pv, 4)); /* `key` is an ordinary field */
    const char *f1[] = {"a", "1", "tidings-key", "acct-42", "b", "2", "tidings-expected-version",
                        "17"};
    ASSERT_OK(split(f1, 8, &en, &nrest, &why));
    ASSERT_EQ(nrest, 4u);
    ASSERT(en.has_key && en.key.n == 7 && !memcmp(en.key.p, "acct-42", 7));
    ASSERT(en.has_expect && !en.by_id && en.expected == 17);
    const char *forms[][2] = {{"any", "-2"},
                              {"no_stream", "-1"},
                              {"exists", "-3"},
                              {"0", "0"},
                              {"9223372036854775807", "9223372036854775807"}};
    for (size_t i = 0; i < 5; i++) {
        const char *f[] = {"tidings-key", "k", "tidings-expected-version", forms[i][0]};
        ASSERT_OK(split(f, 4, &en, &nrest, &why));
        ASSERT_EQ(nrest, 0u);
        ASSERT_EQ(en.expected, strtoll(forms[i][1], NULL, 10));
        ASSERT(!en.by_id);
    }
    const char *byid[] = {"tidings-key",      "k", "tidings-expected-version",
                          "1700000000000-42", "x", "y"};
    ASSERT_OK(split(byid, 6, &en, &nrest, &why));
    ASSERT(en.by_id && en.id.ms == 1700000000000ull && en.id.seq == 42);
    /* Every prefix of a valid version: a valid form or refused with a reason. */
    const char *full = "1700000000000-42";
    for (size_t cut = 0; cut <= strlen(full); cut++) {
        char v[32];
        memcpy(v, full, cut);
        v[cut] = 0;
        const char *f[] = {"tidings-key", "k", "tidings-expected-version", v};
        int rc = split(f, 4, &en, &nrest, &why);
        if (cut == 0 || cut == 14) /* "" and "1700000000000-" */
            ASSERT(rc == -1 && why && !strncmp(why, "ERR ", 4));
        else
            ASSERT_OK(rc);
    }
    const char *bad[][6] = {
        {"tidings-key", "k", "tidings-expected-version", "-5", NULL, NULL},
        {"tidings-key", "k", "tidings-expected-version", "12a", NULL, NULL},
        {"tidings-key", "k", "tidings-expected-version", "99999999999999999999", NULL, NULL},
        {"tidings-key", "k", "tidings-expected-version", "1-*", NULL, NULL},
        {"tidings-key", "k", "tidings-expected-version", "ANY", NULL, NULL},
        {"tidings-key", "k", "tidings-key", "j", NULL, NULL},
        {"tidings-expected-version", "1", "tidings-expected-version", "2", "tidings-key", "k"},
        {"tidings-expected-version", "exists", "a", "b", NULL, NULL},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t n = bad[i][4] ? 6 : 4;
        ASSERT_EQ(split(bad[i], n, &en, &nrest, &why), -1);
        ASSERT(why && !strncmp(why, "ERR ", 4) && !strchr(why, '\r') && !strchr(why, '\n'));
    }
    /* A key alone: no condition. */
    const char *konly[] = {"tidings-key", "", "v", "1"};
    ASSERT_OK(split(konly, 4, &en, &nrest, &why));
    ASSERT(en.has_key && en.key.n == 0 && !en.has_expect && en.expected == TD_VERSION_ANY);

    /* A keyed entry in the binary-safe form reads back as `key`, then its fields. */
    td_slice kept[2] = {td_slice_make("b", 1), td_slice_make("\xff", 1)};
    td_buf b;
    td_buf_init(&b);
    ASSERT_OK(resp_fields_encode(&b, kept, 2, false));
    td_header ct = {"content-type", 12, RESP_FIELDS_CONTENT_TYPE, strlen(RESP_FIELDS_CONTENT_TYPE)};
    td_event ev = {.key = "acct",
                   .key_len = 4,
                   .value = b.p,
                   .value_len = b.len,
                   .headers = &ct,
                   .header_count = 1};
    char out[512];
    ASSERT_STR_EQ(fields_text(&ev, out, sizeof(out)), "key=acct;b=\xff;");
    td_buf_free(&b);
}

static td_slice sl(const char *s)
{
    return td_slice_make(s, strlen(s));
}

/* XADD's DELAY and DELIVERAT: the header, or Redis's error for what does not parse. */
static void test_delay_option(void)
{
    resp_delay d = {0};
    ASSERT(resp_delay_parse(sl("DELAY"), sl("1500"), &d) == NULL);
    ASSERT_STR_EQ(d.h.key, TD_DELAY_HEADER);
    ASSERT_EQ(d.h.value_len, 4);
    ASSERT_MEM_EQ(d.h.value, "1500", 4);
    ASSERT_STR_EQ(resp_delay_parse(sl("deliverat"), sl("5"), &d),
                  "ERR syntax error, DELAY and DELIVERAT are given once");
    static const char *const bad[][3] = {
        {"delay", "-1", "ERR The DELAY argument"},
        {"delay", "315576000001", "ERR The DELAY argument"},
        {"DeliverAt", "0", "ERR The DELIVERAT argument"},
        {"delay", "12a", "ERR value is not an integer"},
        {"delay", "", "ERR value is not an integer"},
        {"delay", "007", "ERR value is not an integer"},
        {"delay", "-", "ERR value is not an integer"},
        {"delay", "1234567890123456789", "ERR value is not an integer"},
    };
    for (size_t i = 0; i < TD_ARRAY_LEN(bad); i++) {
        resp_delay x = {0};
        const char *err = resp_delay_parse(sl(bad[i][0]), sl(bad[i][1]), &x);
        ASSERT(err != NULL);
        ASSERT(!strncmp(err, bad[i][2], strlen(bad[i][2])));
        ASSERT(x.h.key == NULL);
    }
    resp_delay y = {0};
    ASSERT(resp_delay_parse(sl("DELIVERAT"), sl("1796640000000"), &y) == NULL);
    ASSERT_STR_EQ(y.h.key, TD_DELIVER_AT_HEADER);
    ASSERT_MEM_EQ(y.h.value, "1796640000000", 13);
    resp_delay z = {0};
    ASSERT(resp_delay_parse(sl("delay"), sl("0"), &z) == NULL); /* 0: at once, accepted */
}

TEST_MAIN(TEST(test_arrays), TEST(test_inline), TEST(test_protocol_errors), TEST(test_glob),
          TEST(test_replies), TEST(test_fields), TEST(test_fields_trace), TEST(test_fields_entity),
          TEST(test_delay_option))
