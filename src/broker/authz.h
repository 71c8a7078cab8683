/*
 * authz.h: authorization, one decision for every protocol (docs/security.md#authorization).
 *
 * A request is made by a principal: the user a protocol authenticated (SASL, Redis AUTH, HTTP
 * Basic or a token), else the CN of a verified client certificate, else nobody (anonymous, a
 * listener that does not authenticate). The Kafka, Redis and HTTP layers ask broker_authorize
 * before they act, with Kafka's resource types and operations (their wire codes), so that what
 * a principal may not do through one protocol it cannot do through another.
 *
 *   - Super users (super.users) may do everything, as in Kafka.
 *   - Anonymous principals may do everything while anonymous.access is `all` (the default: the
 *     listeners that do not authenticate bind loopback only, unless allow.anonymous is set);
 *     with `acl` they are User:ANONYMOUS under the ACLs like anyone else.
 *   - Everyone else needs an ACL that allows the operation on the resource, and none that
 *     denies it (deny wins).
 *
 * Thread-safe: any thread may ask.
 */
#ifndef TD_BROKER_AUTHZ_H
#define TD_BROKER_AUTHZ_H

#include <stdbool.h>

#include "tidings.h"

/* The resource types, operations and TD_CLUSTER_NAME are the ACLs' (include/tidings.h). */

/* Who asks: user NULL for anonymous; host the peer's address without the port ("10.0.0.7"). */
typedef struct td_principal {
    const char *user;
    const char *host;
} td_principal;

/* Sets who the super users are (a comma-separated list of user names, spaces around names
 * ignored) and whether anonymous principals may do everything. The server calls it once at
 * start, before the listeners; the default is no super users and anonymous_all true. 0,
 * -ENOMEM, or TD_ECONFIG for a name that is not a valid user name. */
int broker_authz_configure(td_engine *e, const char *super_users, bool anonymous_all);

/* Whether user (not NULL) is a super user. */
bool broker_is_super_user(td_engine *e, const char *user);

/* Whether p may do op on the resource `type` named `name` (TD_CLUSTER_NAME for the cluster).
 * Operations imply others as in Kafka: Read, Write, Delete and Alter imply Describe;
 * AlterConfigs implies DescribeConfigs; All implies every operation. */
bool broker_authorize(td_engine *e, const td_principal *p, td_acl_resource type, const char *name,
                      td_acl_op op);

/* Whether p may do op on SOME resource of the type (Kafka's authorizeByResourceType, KIP-679:
 * what InitProducerId asks of an idempotent producer, Write on any topic): true for super
 * users and anonymous with anonymous.access=all, else when an ACL allows op (or All) on a
 * pattern of the type that no deny ACL of the principal covers whole (a deny of "*", a deny of
 * the same literal name, or a deny prefix of the allowed name or prefix). */
bool broker_authorize_any(td_engine *e, const td_principal *p, td_acl_resource type, td_acl_op op);

/* Who makes a change, for the audit trail (audit.h): the protocol ("kafka", "http"), the acting
 * principal (NULL: anonymous) and the peer ("ip:port"). */
typedef struct td_audit_who {
    const char *protocol;
    const char *user;
    const char *peer;
} td_audit_who;

/* The ACL store (acl.c): td_acl_add and td_acl_remove made for a client: each ACL added or
 * removed is an audit event (broker_audit, TD_AUDIT_ACL_CHANGE) of `who`; who NULL: a local
 * caller of the library (the tidings command on a data directory), which is not audited. */
int broker_acl_add(td_engine *e, const td_acl *a, const td_audit_who *who);
int broker_acl_remove(td_engine *e, const td_acl_filter *f, const td_audit_who *who,
                      td_acl **removed, size_t *count);


#endif /* TD_BROKER_AUTHZ_H */
