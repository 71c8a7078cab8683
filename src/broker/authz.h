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

/* Kafka's resource types (their codes in CreateAcls and DescribeAcls). */
typedef enum td_acl_resource {
    TD_RES_ANY = 1, /* filters only */
    TD_RES_TOPIC = 2,
    TD_RES_GROUP = 3, /* consumer groups, queue groups and Redis consumer groups alike */
    TD_RES_CLUSTER = 4,
    TD_RES_TRANSACTIONAL_ID = 5,
} td_acl_resource;

/* Kafka's operations (their codes). */
typedef enum td_acl_op {
    TD_OP_ANY = 1, /* filters only */
    TD_OP_ALL = 2,
    TD_OP_READ = 3,
    TD_OP_WRITE = 4,
    TD_OP_CREATE = 5,
    TD_OP_DELETE = 6,
    TD_OP_ALTER = 7,
    TD_OP_DESCRIBE = 8,
    TD_OP_CLUSTER_ACTION = 9,
    TD_OP_DESCRIBE_CONFIGS = 10,
    TD_OP_ALTER_CONFIGS = 11,
    TD_OP_IDEMPOTENT_WRITE = 12,
} td_acl_op;

/* The cluster resource's one name, as Kafka names it. */
#define TD_CLUSTER_NAME "kafka-cluster"

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

#endif /* TD_BROKER_AUTHZ_H */
