/*
 * acl_int.h: the ACL store's in-memory form (acl.c), which the authorization decision
 * (authz.c) reads.
 */
#ifndef TD_BROKER_ACL_INT_H
#define TD_BROKER_ACL_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "tidings.h"

#define ACL_TYPES (TD_RES_TRANSACTIONAL_ID + 1)

/* One ACL as a check reads it: strings point into the set's td_acl array. */
typedef struct acl_entry {
    const td_acl *acl;
    const char *user; /* the principal's user name; NULL: "User:*" */
    const char *host; /* NULL: "*" */
    uint16_t ops;     /* the operations covered, as bits (1 << td_acl_op); 0: never applies */
    bool deny;
} acl_entry;

/* An immutable snapshot: acls sorted (by resource type first), entries parallel to them, and
 * the range [start, end) of each resource type's entries. */
struct acl_set {
    td_acl *acls;
    acl_entry *entries;
    size_t n;
    size_t start[ACL_TYPES], end[ACL_TYPES];
};

struct td_acls {
    pthread_rwlock_t lock; /* read: a check or a listing; write: the swap of set */
    struct acl_set *set;
};


/* The ACLs' verdict for (user, host) doing op on the resource: ACL_DENY if an ACL denies it,
 * else ACL_ALLOW if one allows it, else ACL_NO_MATCH. user is the user name ("ANONYMOUS" for
 * anonymous); host may be NULL (only "*" ACLs match then). */
enum { ACL_NO_MATCH = 0, ACL_ALLOW = 1, ACL_DENY = 2 };
int acl_decide(td_engine *e, const char *user, const char *host, td_acl_resource type,
               const char *name, td_acl_op op);

/* broker_authorize_any's ACL part (authz.h): whether an allow of op on some pattern of the type
 * survives the principal's denies. */
bool acl_decide_any(td_engine *e, const char *user, const char *host, td_acl_resource type,
                    td_acl_op op);

#endif /* TD_BROKER_ACL_INT_H */
