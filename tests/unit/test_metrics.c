/* Unit tests for the metrics registry (base/metrics.c): the Prometheus text it renders for
 * counters, gauges and histograms, label escaping, series removal and revival, collectors, and
 * refused names. */
#include <stdlib.h>
#include <string.h>

#include "base/metrics.h"
#include "test.h"

static char *render(td_metrics *m)
{
    td_metrics_out out = {0};
    ASSERT_OK(td_metrics_render(m, &out));
    td_buf_append_u8(&out.buf, 0);
    return (char *)out.buf.p;
}

static bool has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == 0))
            return true;
    return false;
}

#define ASSERT_LINE(text, line)                                                                    \
    do {                                                                                           \
        if (!has_line(text, line))                                                                 \
            TEST_FAIL_("missing line '%s' in:\n%s", line, text);                                   \
    } while (0)

static void test_counters_and_gauges(void)
{
    td_metrics *m;
    ASSERT_OK(td_metrics_new(&m));
    td_metric_family *c =
        td_metrics_family(m, TD_COUNTER, "t_events_total", "Events.\nTwo lines \\ here", "topic",
                          NULL, 0);
    ASSERT(c != NULL);
    /* The same name gives the same family. */
    ASSERT(td_metrics_family(m, TD_GAUGE, "t_events_total", "x", NULL, NULL, 0) == c);
    td_metric *a = td_metric_get1(c, "orders");
    td_metric *q = td_metric_get1(c, "we\"ird\\na\nme");
    ASSERT(a && q && td_metric_get1(c, "orders") == a);
    td_counter_add(a, 3);
    td_counter_add(a, 4);
    td_counter_add(q, 1);
    td_counter_add(NULL, 1); /* accepted */
    td_metric *g = td_metric_get(td_metrics_family(m, TD_GAUGE, "t_open", "Open.", NULL, NULL, 0),
                                 NULL);
    td_gauge_add(g, 5);
    td_gauge_add(g, -2);
    ASSERT_EQ(td_metric_value(g), 3);
    char *t = render(m);
    ASSERT_LINE(t, "# HELP t_events_total Events.\\nTwo lines \\\\ here");
    ASSERT_LINE(t, "# TYPE t_events_total counter");
    ASSERT_LINE(t, "t_events_total{topic=\"orders\"} 7");
    ASSERT_LINE(t, "t_events_total{topic=\"we\\\"ird\\\\na\\nme\"} 1");
    ASSERT_LINE(t, "# TYPE t_open gauge");
    ASSERT_LINE(t, "t_open 3");
    free(t);

    /* Removed: hidden and zeroed; asked for again: back from zero. */
    td_metric_remove_first(c, "orders");
    t = render(m);
    ASSERT(strstr(t, "topic=\"orders\"") == NULL);
    free(t);
    td_counter_add(a, 1); /* a holder that still has the pointer counts, unseen */
    ASSERT(td_metric_get1(c, "orders") == a);
    ASSERT_EQ(td_metric_value(a), 0);
    td_counter_add(a, 2);
    t = render(m);
    ASSERT_LINE(t, "t_events_total{topic=\"orders\"} 2");
    free(t);
    td_metrics_free(m);
}

static void test_histogram(void)
{
    td_metrics *m;
    ASSERT_OK(td_metrics_new(&m));
    static const double bounds[] = {0.001, 0.01, 0.1};
    td_metric_family *h = td_metrics_family(m, TD_HISTOGRAM, "t_seconds", "Durations.",
                                            "protocol,api", bounds, 3);
    const char *labels[] = {"kafka", "Produce"};
    td_metric *s = td_metric_get(h, labels);
    td_histogram_observe(s, 500000);    /* 0.5 ms */
    td_histogram_observe(s, 1000000);   /* 1 ms: on the bound, counted in it */
    td_histogram_observe(s, 50000000);  /* 50 ms */
    td_histogram_observe(s, 2000000000); /* 2 s: only +Inf */
    char *t = render(m);
    ASSERT_LINE(t, "# TYPE t_seconds histogram");
    ASSERT_LINE(t, "t_seconds_bucket{protocol=\"kafka\",api=\"Produce\",le=\"0.001\"} 2");
    ASSERT_LINE(t, "t_seconds_bucket{protocol=\"kafka\",api=\"Produce\",le=\"0.01\"} 2");
    ASSERT_LINE(t, "t_seconds_bucket{protocol=\"kafka\",api=\"Produce\",le=\"0.1\"} 3");
    ASSERT_LINE(t, "t_seconds_bucket{protocol=\"kafka\",api=\"Produce\",le=\"+Inf\"} 4");
    ASSERT_LINE(t, "t_seconds_sum{protocol=\"kafka\",api=\"Produce\"} 2.051500000");
    ASSERT_LINE(t, "t_seconds_count{protocol=\"kafka\",api=\"Produce\"} 4");
    free(t);
    /* Without labels, and with the default buckets. */
    td_metric *d =
        td_metric_get(td_metrics_family(m, TD_HISTOGRAM, "t_fsync", "F.", NULL, NULL, 0), NULL);
    td_histogram_observe(d, 3000000);
    t = render(m);
    ASSERT_LINE(t, "t_fsync_bucket{le=\"0.0025\"} 0");
    ASSERT_LINE(t, "t_fsync_bucket{le=\"0.005\"} 1");
    ASSERT_LINE(t, "t_fsync_bucket{le=\"10\"} 1");
    ASSERT_LINE(t, "t_fsync_count 1");
    free(t);
    /* Bounds must increase. */
    static const double bad[] = {0.1, 0.1};
    ASSERT(td_metrics_family(m, TD_HISTOGRAM, "t_bad", "", NULL, bad, 2) == NULL);
    td_metrics_free(m);
}

static void collect(void *arg, td_metrics_out *out)
{
    int *calls = arg;
    (*calls)++;
    td_metrics_text_family(out, "t_lag", "Lag.", TD_GAUGE);
    const char *names[] = {"group", "partition"}, *values[] = {"g\"1", "0"};
    td_metrics_text_sample(out, "t_lag", names, values, 2, 42);
    td_metrics_text_sample(out, "t_ratio", NULL, NULL, 0, 0.25);
}

static void test_collectors_and_names(void)
{
    td_metrics *m;
    ASSERT_OK(td_metrics_new(&m));
    int calls = 0;
    ASSERT_OK(td_metrics_add_collector(m, collect, &calls));
    char *t = render(m);
    ASSERT_EQ(calls, 1);
    ASSERT_LINE(t, "# TYPE t_lag gauge");
    ASSERT_LINE(t, "t_lag{group=\"g\\\"1\",partition=\"0\"} 42");
    ASSERT_LINE(t, "t_ratio 0.25");
    free(t);
    td_metrics_remove_collector(m, collect, &calls);
    t = render(m);
    ASSERT_EQ(calls, 1);
    ASSERT(strstr(t, "t_lag") == NULL);
    free(t);
    /* Names and label names: [a-zA-Z_:][a-zA-Z0-9_:]*. */
    ASSERT(td_metrics_family(m, TD_COUNTER, "1abc", "", NULL, NULL, 0) == NULL);
    ASSERT(td_metrics_family(m, TD_COUNTER, "a-b", "", NULL, NULL, 0) == NULL);
    ASSERT(td_metrics_family(m, TD_COUNTER, "ok", "", "to pic", NULL, 0) == NULL);
    ASSERT(td_metrics_family(m, TD_COUNTER, "ok", "", "a,b,c,d,e", NULL, 0) == NULL);
    ASSERT(td_metrics_family(m, TD_COUNTER, "ok", "", "a,b", NULL, 0) != NULL);
    td_metrics_free(m);
}

static void collect_bytes(void *arg, td_metrics_out *out)
{
    const char *const *values = arg;
    const char *names[] = {"group"};
    for (int i = 0; values[i]; i++)
        td_metrics_text_sample(out, "t_b", names, values + i, 1, i);
}

/* The text format is UTF-8: well-formed sequences pass, every other byte is written as \xNN.
 * Binary names become label values that differ when the names differ. */
static void test_label_bytes(void)
{
    td_metrics *m;
    ASSERT_OK(td_metrics_new(&m));
    char *nul = td_metrics_label_of("a\0b\\", 4), *plain = td_metrics_label_of("a\\x00b", 6);
    ASSERT_STR_EQ(nul, "a\\x00b\\x5c");
    ASSERT_STR_EQ(plain, "a\\x5cx00b");
    const char *values[] = {
        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", /* é, €, an emoji */
        "a\xff\xc3",                                 /* a stray byte, a cut one */
        "\xc0\xaf\xed\xa0\x80\xf4\x90\x80\x80",      /* overlong, surrogate, > U+10FFFF */
        nul,
        plain,
        NULL};
    ASSERT_OK(td_metrics_add_collector(m, collect_bytes, values));
    char *t = render(m);
    ASSERT_LINE(t, "t_b{group=\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"} 0");
    ASSERT_LINE(t, "t_b{group=\"a\\\\xff\\\\xc3\"} 1");
    ASSERT_LINE(t,
                "t_b{group=\"\\\\xc0\\\\xaf\\\\xed\\\\xa0\\\\x80\\\\xf4\\\\x90\\\\x80\\\\x80\"} 2");
    ASSERT_LINE(t, "t_b{group=\"a\\\\x00b\\\\x5c\"} 3");
    ASSERT_LINE(t, "t_b{group=\"a\\\\x5cx00b\"} 4");
    free(t);
    td_metrics_remove_collector(m, collect_bytes, values);
    free(nul);
    free(plain);
    td_metrics_free(m);
}

TEST_MAIN(TEST(test_counters_and_gauges), TEST(test_histogram), TEST(test_collectors_and_names),
          TEST(test_label_bytes))
