/*
 * audit.h: the security audit trail (docs/security.md#audit). Every failed authentication,
 * every authorization refusal and every change to users, ACLs, tokens and quotas is logged
 * (one line, rate-limited per kind of event like every log line) and counted in
 * tidings_audit_events_total{event,protocol,principal}.
 *
 * The principal label is the authenticated principal ("ANONYMOUS" without one, "local" for
 * the tidings command on a data directory). A failed authentication is counted without the
 * name it tried ("" in the label: a client chooses it, and each new value would be a new
 * series); the log line names it, with control characters replaced.
 */
#ifndef TD_BROKER_AUDIT_H
#define TD_BROKER_AUDIT_H

#include "broker/authz.h"

typedef enum td_audit_event {
    TD_AUDIT_AUTH_FAILED = 0,
    TD_AUDIT_DENIED,
    TD_AUDIT_USER_CHANGE,
    TD_AUDIT_ACL_CHANGE,
    TD_AUDIT_TOKEN_CHANGE,
    TD_AUDIT_QUOTA_CHANGE,
} td_audit_event;
#define TD_AUDIT_EVENTS 6

/* Logs and counts one event. protocol: "kafka", "http", "redis", "cli"; who: the principal
 * (user NULL: anonymous; for TD_AUDIT_AUTH_FAILED, the name tried) and peer (NULL: none);
 * the message says what was done or refused. Any thread. */
void broker_audit(td_engine *e, td_audit_event ev, const char *protocol, const char *user,
                  const char *peer, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

#endif /* TD_BROKER_AUDIT_H */
