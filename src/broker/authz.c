/*
 * authz.c: the authorization decision of authz.h. Super users and the anonymous rule are
 * configuration, set once at start; everyone else (anonymous as User:ANONYMOUS when
 * anonymous.access is acl) gets the ACLs' verdict (acl.c): denied unless an ACL allows and none
 * denies.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "broker/acl_int.h"
#include "broker/authz.h"
#include "broker/engine_int.h"

struct td_authz {
    char **super; /* sorted user names */
    size_t nsuper, capsuper;
    bool anonymous_all;
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void authz_free(struct td_authz *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->nsuper; i++)
        free(a->super[i]);
    free(a->super);
    free(a);
}

/* Splits a comma-separated list of names into a->super. */
static int parse_super(struct td_authz *a, const char *list)
{
    const char *p = list ? list : "";
    while (*p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        const char *s = p;
        while (n && (*s == ' ' || *s == '\t'))
            s++, n--;
        while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
            n--;
        if (n) {
            char *name = strndup(s, n);
            if (!name || td_grow(&a->super, &a->capsuper, a->nsuper, sizeof(*a->super), 4) != 0) {
                free(name);
                return -ENOMEM;
            }
            a->super[a->nsuper++] = name;
            if (td_user_name_validate(name) != 0)
                return td_fail(TD_ECONFIG, "super.users: '%s': %s", name, td_last_error());
        }
        p = end ? end + 1 : p + strlen(p);
    }
    if (a->nsuper)
        qsort(a->super, a->nsuper, sizeof(*a->super), cmp_str);
    return 0;
}

int broker_authz_configure(td_engine *e, const char *super_users, bool anonymous_all)
{
    struct td_authz *a = calloc(1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    a->anonymous_all = anonymous_all;
    int rc = parse_super(a, super_users);
    if (rc) {
        authz_free(a);
        return rc;
    }
    authz_free(e->authz);
    e->authz = a;
    return 0;
}

void broker_authz_free(td_engine *e)
{
    authz_free(e->authz);
    e->authz = NULL;
}

bool broker_is_super_user(td_engine *e, const char *user)
{
    const struct td_authz *a = e->authz;
    return a && user && a->nsuper &&
           bsearch(&user, a->super, a->nsuper, sizeof(*a->super), cmp_str) != NULL;
}

bool broker_authorize(td_engine *e, const td_principal *p, td_acl_resource type, const char *name,
                      td_acl_op op)
{
    const struct td_authz *a = e->authz;
    if (!p->user && (!a || a->anonymous_all))
        return true;
    if (p->user && broker_is_super_user(e, p->user))
        return true;
    if (!e->acls || !name)
        return false;
    /* Kafka's AclAuthorizer: deny wins, then an allow is needed; nothing matching denies. */
    return acl_decide(e, p->user ? p->user : "ANONYMOUS", p->host, type, name, op) == ACL_ALLOW;
}

bool broker_authorize_any(td_engine *e, const td_principal *p, td_acl_resource type, td_acl_op op)
{
    const struct td_authz *a = e->authz;
    if (!p->user && (!a || a->anonymous_all))
        return true;
    if (p->user && broker_is_super_user(e, p->user))
        return true;
    return e->acls && acl_decide_any(e, p->user ? p->user : "ANONYMOUS", p->host, type, op);
}
