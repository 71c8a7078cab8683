/*
 * audit.c: broker_audit (audit.h). Each kind of event logs through its own format string, so
 * that the log's per-call-site rate limit keeps a flood of one kind (refused logins) from
 * hiding another (a user removed).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/base.h"
#include "base/metrics.h"
#include "broker/audit.h"
#include "broker/broker.h"
#include "broker/health.h"

static const char *const event_names[TD_AUDIT_EVENTS] = {
    "auth_failed",  "denied",       "user_change",    "acl_change",
    "token_change", "quota_change", "unauthenticated"};

/* A name as a log line may show it: at most 64 bytes, control characters as '?'. */
static void clean(char *dst, size_t cap, const char *s)
{
    size_t n = 0;
    for (; s && *s && n + 1 < cap && n < 64; s++)
        dst[n++] = (unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s;
    dst[n] = 0;
}

void broker_audit(td_engine *e, td_audit_event ev, const char *protocol, const char *user,
                  const char *peer, const char *fmt, ...)
{
    if ((unsigned)ev >= TD_AUDIT_EVENTS)
        return;
    char msg[512], who[80];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* The message may quote what a client chose (a topic, a client id, a user name): no
     * control character of it reaches the log, where a newline would forge a line. */
    for (char *c = msg; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    /* A failed authentication without a name (a malformed token) shows none. */
    clean(who, sizeof(who), user ? user : ev == TD_AUDIT_AUTH_FAILED ? "" : "ANONYMOUS");
    const char *p = peer ? peer : "-";
    switch (ev) {
    case TD_AUDIT_AUTH_FAILED: {
        TD_WARN("audit", "%s: %s: authentication failed for '%s': %s", protocol, p, who, msg);
        health_field f[] = {HF_STR("protocol", protocol), HF_STR("user", who), HF_STR("peer", p),
                            HF_STR("reason", msg)};
        health_emit(e, HEALTH_CLIENT_AUTH_FAILED, who, f, sizeof(f) / sizeof(f[0]));
        break;
    }
    case TD_AUDIT_DENIED:
        TD_WARN("audit", "%s: %s: denied %s: %s", protocol, p, who, msg);
        break;
    case TD_AUDIT_USER_CHANGE:
        TD_INFO("audit", "%s: %s: %s changed users: %s", protocol, p, who, msg);
        break;
    case TD_AUDIT_ACL_CHANGE:
        TD_INFO("audit", "%s: %s: %s changed ACLs: %s", protocol, p, who, msg);
        break;
    case TD_AUDIT_TOKEN_CHANGE:
        TD_INFO("audit", "%s: %s: %s changed tokens: %s", protocol, p, who, msg);
        break;
    case TD_AUDIT_QUOTA_CHANGE:
        TD_INFO("audit", "%s: %s: %s changed quotas: %s", protocol, p, who, msg);
        break;
    case TD_AUDIT_UNAUTHENTICATED:
        TD_WARN("audit", "%s: %s: refused %s before authentication: %s", protocol, p, who, msg);
        break;
    }
    td_metric_family *f = td_metrics_family(
        broker_metrics(e), TD_COUNTER, "tidings_audit_events_total",
        "Security events: failed authentications, refusals, and changes to users, ACLs, tokens "
        "and quotas, by principal",
        "event,protocol,principal", NULL, 0);
    const char *vals[] = {event_names[ev], protocol,
                          ev == TD_AUDIT_AUTH_FAILED ? "" : (user ? user : "ANONYMOUS")};
    td_counter_add(td_metric_get(f, vals), 1);
}
