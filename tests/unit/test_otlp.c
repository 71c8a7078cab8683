/*
 * test_otlp.c: the OTLP exporter's pure parts (broker/otlp.h): the JSON encoder, checked
 * byte for byte and through jansson; the traceparent reader on valid, invalid and truncated
 * input; the otlp.* settings; and the queue's bound, against a collector that never answers.
 */
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/metrics.h"
#include "broker/otlp.h"
#include "test.h"

static otlp_span_rec sample(void)
{
    otlp_span_rec s = {.name = "publish orders",
                       .kind = OTLP_KIND_PRODUCER,
                       .start_ns = 1700000000000000000,
                       .end_ns = 1700000000000001234,
                       .flags = 1};
    for (int i = 0; i < 16; i++)
        s.trace_id[i] = (uint8_t)(0xf0 + i);
    for (int i = 0; i < 8; i++) {
        s.span_id[i] = (uint8_t)(i + 1);
        s.parent_span_id[i] = (uint8_t)(0xa0 + i);
    }
    s.attrs[0] = (otlp_attr){"messaging.destination.name", "orders", 6, 0};
    s.attrs[1] = (otlp_attr){"messaging.kafka.offset", NULL, 0, -42};
    s.nattrs = 2;
    return s;
}

static void test_encode_exact(void)
{
    otlp_attr res[] = {{"service.name", "tidings", 7, 0}};
    otlp_span_rec s[2] = {sample(), sample()};
    memset(s[1].parent_span_id, 0, 8); /* a root: no parentSpanId */
    s[1].flags = 0;
    s[1].kind = OTLP_KIND_INTERNAL;
    s[1].nattrs = 0;
    s[1].status = OTLP_STATUS_ERROR;
    s[1].status_message = "dead";
    td_buf b;
    td_buf_init(&b);
    ASSERT_OK(otlp_encode(&b, res, 1, s, 2));
    ASSERT_OK(td_buf_append(&b, "", 1));
    const char *want =
        "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":"
        "{\"stringValue\":\"tidings\"}}]},\"scopeSpans\":[{\"scope\":{\"name\":\"tidings\","
        "\"version\":\"" TD_VERSION_STRING "\"},\"spans\":["
        "{\"traceId\":\"f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff\",\"spanId\":\"0102030405060708\","
        "\"parentSpanId\":\"a0a1a2a3a4a5a6a7\",\"flags\":1,\"name\":\"publish orders\",\"kind\":4,"
        "\"startTimeUnixNano\":\"1700000000000000000\",\"endTimeUnixNano\":"
        "\"1700000000000001234\",\"attributes\":[{\"key\":\"messaging.destination.name\","
        "\"value\":{\"stringValue\":\"orders\"}},{\"key\":\"messaging.kafka.offset\",\"value\":"
        "{\"intValue\":\"-42\"}}]},"
        "{\"traceId\":\"f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff\",\"spanId\":\"0102030405060708\","
        "\"name\":\"publish orders\",\"kind\":1,\"startTimeUnixNano\":\"1700000000000000000\","
        "\"endTimeUnixNano\":\"1700000000000001234\",\"attributes\":[],\"status\":{\"code\":2,"
        "\"message\":\"dead\"}}]}]}]}";
    ASSERT_STR_EQ((const char *)b.p, want);
    /* No spans: still a whole request. */
    td_buf_reset(&b);
    ASSERT_OK(otlp_encode(&b, NULL, 0, NULL, 0));
    json_error_t je;
    json_t *j = json_loadb((const char *)b.p, b.len, 0, &je);
    ASSERT(j);
    json_decref(j);
    td_buf_free(&b);
}

/* Strings the broker does not control (topic names are checked, but attribute values from
 * other sources may not be): escaped into valid JSON that reads back as the text, with bytes
 * that are not UTF-8 replaced. */
static void test_encode_escapes(void)
{
    static const struct {
        const char *in;
        size_t n;
        const char *back;
    } cases[] = {
        {"a\"b\\c", 5, "a\"b\\c"},
        {"line\nnext\ttab\x01\x7f", 15, "line\nnext\ttab\x01\x7f"},
        {"caf\xc3\xa9", 5, "caf\xc3\xa9"},
        {"bad\xff\xc3", 5, "bad??"},
        {"nul\0in", 6, NULL},
    };
    for (size_t i = 0; i < TD_ARRAY_LEN(cases); i++) {
        otlp_span_rec s = sample();
        s.name = "n\"ame";
        s.attrs[0] = (otlp_attr){"k", cases[i].in, cases[i].n, 0};
        td_buf b;
        td_buf_init(&b);
        ASSERT_OK(otlp_encode(&b, NULL, 0, &s, 1));
        json_error_t je;
        json_t *j = json_loadb((const char *)b.p, b.len, JSON_ALLOW_NUL, &je);
        if (!j)
            TEST_FAIL_("case %zu: not JSON: %s: %.*s", i, je.text, (int)b.len, b.p);
        json_t *span = json_array_get(
            json_object_get(
                json_array_get(
                    json_object_get(json_array_get(json_object_get(j, "resourceSpans"), 0),
                                    "scopeSpans"),
                    0),
                "spans"),
            0);
        ASSERT_STR_EQ(json_string_value(json_object_get(span, "name")), "n\"ame");
        json_t *v = json_object_get(
            json_object_get(json_array_get(json_object_get(span, "attributes"), 0), "value"),
            "stringValue");
        ASSERT_EQ(json_string_length(v), cases[i].back ? strlen(cases[i].back) : 6);
        if (cases[i].back)
            ASSERT_STR_EQ(json_string_value(v), cases[i].back);
        else
            ASSERT(!memcmp(json_string_value(v), "nul\0in", 6));
        json_decref(j);
        td_buf_free(&b);
    }
}

static void test_config(void)
{
    otlp_config c;
    otlp_config_defaults(&c);
    ASSERT_STR_EQ(c.endpoint, "");
    ASSERT_STR_EQ(c.service_name, "tidings");
    ASSERT_EQ(c.max_queue_spans, 2048);
    ASSERT_OK(otlp_config_set(&c, "otlp.endpoint", "http://127.0.0.1:4318"));
    ASSERT_STR_EQ(c.endpoint, "http://127.0.0.1:4318");
    ASSERT_OK(otlp_config_set(&c, "otlp.endpoint", ""));
    ASSERT_EQ(otlp_config_set(&c, "otlp.endpoint", "ftp://x"), TD_ECONFIG);
    ASSERT_OK(otlp_config_set(&c, "otlp.batch.spans", "10"));
    ASSERT_EQ(c.batch_spans, 10);
    ASSERT_EQ(otlp_config_set(&c, "otlp.batch.spans", "0"), TD_ECONFIG);
    ASSERT_EQ(otlp_config_set(&c, "otlp.max.queue.spans", "12x"), TD_ECONFIG);
    ASSERT_OK(otlp_config_set(&c, "otlp.headers", "Authorization=Bearer abc,x-tenant=t1"));
    ASSERT_EQ(otlp_config_set(&c, "otlp.headers", "a=b\r\nInjected: 1"), TD_ECONFIG);
    ASSERT_EQ(otlp_config_set(&c, "otlp.headers", "=novalue"), TD_ECONFIG);
    ASSERT_OK(otlp_config_set(&c, "otlp.resource.attributes", "deployment.environment=prod"));
    ASSERT_EQ(otlp_config_set(&c, "otlp.unknown", "1"), 1);
    ASSERT_EQ(otlp_config_set(&c, "log.level", "info"), 1);
    for (size_t i = 0; otlp_config_keys[i]; i++)
        ASSERT_NE(otlp_config_set(&c, otlp_config_keys[i], "\x01"), 1);
    otlp_config d;
    otlp_config_defaults(&d);
    ASSERT_EQ(otlp_new(&d, NULL, &(otlp_exporter *){NULL}), TD_ECONFIG); /* no endpoint */
}

static int64_t series(td_metrics *m, const char *text)
{
    td_metrics_out out = {0};
    ASSERT_OK(td_metrics_render(m, &out));
    ASSERT_OK(td_buf_append(&out.buf, "", 1));
    /* The sample's line, not the family's "# HELP" line, which starts with its name too. */
    const char *p = (const char *)out.buf.p;
    if (strncmp(p, text, strlen(text)) != 0) {
        char *line = malloc(strlen(text) + 2);
        line[0] = '\n';
        strcpy(line + 1, text);
        p = strstr(p, line);
        p = p ? p + 1 : NULL;
        free(line);
    }
    int64_t v = p ? strtoll(p + strlen(text), NULL, 10) : -1;
    td_buf_free(&out.buf);
    return v;
}

/* A collector that accepts connections (the kernel's backlog) and never answers: the exporter's
 * thread holds a batch until its timeout, and spans past the queue's room are dropped and
 * counted, without otlp_span waiting. */
static void test_queue_bound(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ASSERT_OK(bind(fd, (struct sockaddr *)&a, sizeof(a)));
    ASSERT_OK(listen(fd, 8));
    socklen_t al = sizeof(a);
    ASSERT_OK(getsockname(fd, (struct sockaddr *)&a, &al));
    td_metrics *m;
    ASSERT_OK(td_metrics_new(&m));
    otlp_config c;
    otlp_config_defaults(&c);
    snprintf(c.endpoint, sizeof(c.endpoint), "http://127.0.0.1:%d/", ntohs(a.sin_port));
    c.max_queue_spans = 4;
    c.batch_spans = 4;
    c.interval_ms = 3600000;
    c.timeout_ms = 3000;
    c.retries = 0;
    c.shutdown_timeout_ms = 100;
    otlp_exporter *x;
    ASSERT_OK(otlp_new(&c, m, &x));
    otlp_span_rec s = sample();
    int64_t sent = 0;
    for (int i = 0; i < 4; i++, sent++)
        otlp_span(x, &s);
    /* The full batch wakes the thread, whose request hangs: the queue stays full meanwhile,
     * until the request times out. */
    for (int i = 0; i < 500 && series(m, "tidings_otlp_posts_failed_total ") == 0; i++, sent++) {
        otlp_span(x, &s);
        usleep(10000);
    }
    ASSERT_GE(series(m, "tidings_otlp_posts_failed_total "), 1);
    int64_t full = series(m, "tidings_otlp_spans_dropped_total{reason=\"queue_full\"} ");
    ASSERT_GE(full, 1);
    otlp_free(x);
    /* Every span is accounted for: the 4 of the hung batch failed; the others were dropped
     * while it hung, or (a span sent just as it failed) failed or were dropped at the stop. */
    full = series(m, "tidings_otlp_spans_dropped_total{reason=\"queue_full\"} ");
    int64_t failed = series(m, "tidings_otlp_spans_dropped_total{reason=\"export_failed\"} ");
    int64_t shut = series(m, "tidings_otlp_spans_dropped_total{reason=\"shutdown\"} ");
    int64_t exported = series(m, "tidings_otlp_spans_exported_total ");
    ASSERT_EQ(exported, 0);
    ASSERT_GE(failed, 4);
    ASSERT_EQ(failed + shut + full, sent);
    ASSERT_EQ(series(m, "tidings_otlp_queue_spans "), 0);
    td_metrics_free(m);
    close(fd);
}

TEST_MAIN(TEST(test_encode_exact), TEST(test_encode_escapes), TEST(test_config),
          TEST(test_queue_bound))
