/*
 * test_audit.c: broker_audit (broker/audit.h): the line of each kind of event, control
 * characters replaced in the principal and the message, the metric's labels (the name of a
 * failed authentication not among them), each kind's own rate-limit allowance, and the ACL
 * store auditing the changes made for a client but not the local ones.
 */
#include <string.h>

#include "base/base.h"
#include "base/metrics.h"
#include "broker/audit.h"
#include "broker/broker.h"
#include "test.h"
#include "tidings.h"

static char lines[64][600];
static int nlines;

static void capture(int level, const char *line, void *arg)
{
    (void)level;
    (void)arg;
    if (nlines < 64)
        snprintf(lines[nlines++], sizeof(lines[0]), "%s", line);
}

static td_engine *open_engine(const char *dir)
{
    td_options o;
    td_options_init(&o);
    o.no_background = 1;
    td_engine *e = NULL;
    ASSERT_OK(td_engine_open(dir, &o, &e));
    return e;
}

/* The engine's metrics as text (valid until the next call). */
static const char *metrics_text(td_engine *e)
{
    static td_metrics_out out;
    td_buf_free(&out.buf);
    memset(&out, 0, sizeof(out));
    ASSERT_OK(td_metrics_render(broker_metrics(e), &out));
    td_buf_append_u8(&out.buf, 0);
    return (const char *)out.buf.p;
}

static void test_lines_and_metric(void)
{
    char *dir = test_tmpdir("audit");
    td_engine *e = open_engine(dir);
    td_log_set_sink(capture, NULL);
    td_log_set_level(TD_LOG_INFO);
    td_log_set_rate_limit(10, 5000);
    nlines = 0;
    broker_audit(e, TD_AUDIT_AUTH_FAILED, "redis", "mal\nlory", "10.0.0.7:5000", "password: %s",
                 "wrong");
    broker_audit(e, TD_AUDIT_AUTH_FAILED, "http", NULL, "10.0.0.7:5001", "bearer: malformed");
    broker_audit(e, TD_AUDIT_DENIED, "kafka", "bob", "10.0.0.8:6000", "Write on Topic '%s'",
                 "x\r\nWARN forged");
    broker_audit(e, TD_AUDIT_UNAUTHENTICATED, "redis", NULL, "10.0.0.9:7000", "command 'get'");
    broker_audit(e, TD_AUDIT_USER_CHANGE, "http", "admin", "10.0.0.1:1", "added user 'carol'");
    broker_audit(e, TD_AUDIT_TOKEN_CHANGE, "http", "carol", NULL, "revoked API token 'ab'");
    broker_audit(e, TD_AUDIT_QUOTA_CHANGE, "kafka", "admin", "10.0.0.1:2", "q");
    broker_audit(e, (td_audit_event)TD_AUDIT_EVENTS, "kafka", "admin", NULL, "ignored");
    ASSERT_EQ(nlines, 7);
    ASSERT_CONTAINS(lines[0], "WARN audit: redis: 10.0.0.7:5000: authentication failed for "
                              "'mal?lory': password: wrong");
    ASSERT_CONTAINS(lines[1], "WARN audit: http: 10.0.0.7:5001: authentication failed for '': "
                              "bearer: malformed");
    ASSERT_CONTAINS(lines[2], "WARN audit: kafka: 10.0.0.8:6000: denied bob: Write on Topic "
                              "'x??WARN forged'");
    ASSERT_CONTAINS(lines[3], "WARN audit: redis: 10.0.0.9:7000: refused ANONYMOUS before "
                              "authentication: command 'get'");
    ASSERT_CONTAINS(lines[4], "INFO audit: http: 10.0.0.1:1: admin changed users: added user "
                              "'carol'");
    ASSERT_CONTAINS(lines[5], "INFO audit: http: -: carol changed tokens: revoked API token");
    ASSERT_CONTAINS(lines[6], "INFO audit: kafka: 10.0.0.1:2: admin changed quotas: q");
    for (int i = 0; i < nlines; i++) { /* one line each: a newline only at the end */
        const char *nl = strchr(lines[i], '\n');
        ASSERT(!nl || nl[1] == 0);
    }
    const char *m = metrics_text(e);
    /* Failed authentications are counted without the name tried. */
    ASSERT_CONTAINS(m, "tidings_audit_events_total{event=\"auth_failed\",protocol=\"redis\","
                       "principal=\"\"} 1");
    ASSERT_CONTAINS(m, "tidings_audit_events_total{event=\"auth_failed\",protocol=\"http\","
                       "principal=\"\"} 1");
    ASSERT(strstr(m, "lory") == NULL);
    ASSERT_CONTAINS(m, "tidings_audit_events_total{event=\"denied\",protocol=\"kafka\","
                       "principal=\"bob\"} 1");
    ASSERT_CONTAINS(m, "tidings_audit_events_total{event=\"unauthenticated\",protocol=\"redis\","
                       "principal=\"ANONYMOUS\"} 1");
    ASSERT_CONTAINS(m, "tidings_audit_events_total{event=\"user_change\",protocol=\"http\","
                       "principal=\"admin\"} 1");
    ASSERT_CONTAINS(m, "tidings_audit_events_total{event=\"token_change\",protocol=\"http\","
                       "principal=\"carol\"} 1");

    /* A flood of one kind is cut to the allowance in the log, counted whole in the metric, and
     * leaves the other kinds their own allowance. */
    nlines = 0;
    for (int i = 0; i < 25; i++)
        broker_audit(e, TD_AUDIT_AUTH_FAILED, "kafka", "x", "10.0.0.7:1", "PLAIN: %d", i);
    broker_audit(e, TD_AUDIT_USER_CHANGE, "kafka", "admin", "10.0.0.1:3", "removed user 'x'");
    int failed = 0, changed = 0;
    for (int i = 0; i < nlines; i++) {
        failed += strstr(lines[i], "authentication failed for 'x'") != NULL;
        changed += strstr(lines[i], "admin changed users: removed user 'x'") != NULL;
    }
    /* The first call's 2 lines of this kind count against the same 5 s allowance. */
    ASSERT_EQ(failed, 8);
    ASSERT_EQ(changed, 1);
    m = metrics_text(e);
    ASSERT_CONTAINS(m, "tidings_audit_events_total{event=\"auth_failed\",protocol=\"kafka\","
                       "principal=\"\"} 25");
    td_log_set_sink(NULL, NULL);
    td_log_set_rate_limit(TD_LOG_RATE_BURST, TD_LOG_RATE_INTERVAL_MS);
    td_engine_close(e);
    test_rmrf(dir);
}

static void test_acl_changes(void)
{
    char *dir = test_tmpdir("audit-acl");
    td_engine *e = open_engine(dir);
    td_log_set_sink(capture, NULL);
    td_log_set_level(TD_LOG_INFO);
    td_acl a;
    memset(&a, 0, sizeof(a));
    snprintf(a.principal, sizeof(a.principal), "User:alice");
    snprintf(a.host, sizeof(a.host), "*");
    snprintf(a.name, sizeof(a.name), "orders");
    a.resource_type = TD_RES_TOPIC;
    a.pattern_type = TD_PAT_LITERAL;
    a.operation = TD_OP_READ;
    a.permission = TD_PERM_ALLOW;
    nlines = 0;
    /* Local (the tidings command on a data directory): not an audit event. */
    ASSERT_OK(td_acl_add(e, &a));
    ASSERT_EQ(nlines, 0);
    td_acl_filter f;
    td_acl_filter_init(&f);
    f.principal = "User:alice";
    ASSERT_OK(td_acl_remove(e, &f, NULL, NULL));
    ASSERT_EQ(nlines, 0);
    /* For a client: one event per ACL, with its principal and peer. */
    td_audit_who who = {"kafka", "admin", "10.0.0.1:9"};
    ASSERT_OK(broker_acl_add(e, &a, &who));
    snprintf(a.name, sizeof(a.name), "payments");
    ASSERT_OK(broker_acl_add(e, &a, &who));
    size_t n = 0;
    ASSERT_OK(broker_acl_remove(e, &f, &who, NULL, &n));
    ASSERT_EQ(n, 2);
    ASSERT_EQ(nlines, 4);
    ASSERT_CONTAINS(lines[0], "INFO audit: kafka: 10.0.0.1:9: admin changed ACLs: added ACL "
                              "Allow User:alice Read from * on Topic Literal 'orders'");
    ASSERT_CONTAINS(lines[3], "admin changed ACLs: removed ACL Allow User:alice Read");
    ASSERT_CONTAINS(metrics_text(e), "tidings_audit_events_total{event=\"acl_change\","
                                     "protocol=\"kafka\",principal=\"admin\"} 4");
    td_log_set_sink(NULL, NULL);
    td_engine_close(e);
    test_rmrf(dir);
}

TEST_MAIN(TEST(test_lines_and_metric), TEST(test_acl_changes))
