/*
 * audit.h: the security audit trail (docs/security.md#audit). Every failed authentication,
 * every authorization refusal (and every request refused for want of authentication) and every
 * change to users, ACLs, tokens and quotas is logged
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
    /* A request refused because the client has not authenticated where the listener requires
     * it: a kind of its own, so that a client retrying without credentials cannot use up the
     * log's allowance of the refusals by ACL. */
    TD_AUDIT_UNAUTHENTICATED,
} td_audit_event;
#define TD_AUDIT_EVENTS 7

/* Logs and counts one event. protocol: "kafka", "http", "redis", "cli"; who: the principal
 * (user NULL: anonymous; for TD_AUDIT_AUTH_FAILED, the name tried, NULL when none was) and
 * peer (NULL: none); the message says what was done or refused, without any secret. Control
 * characters in the principal and the message are written as '?' (a client's newline cannot
 * forge a line); callers cut long client-chosen names. Any thread. */
void broker_audit(td_engine *e, td_audit_event ev, const char *protocol, const char *user,
                  const char *peer, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

#endif /* TD_BROKER_AUDIT_H */
