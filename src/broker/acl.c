/*
 * acl.c: the ACL store of include/tidings.h (td_acl_*) and its in-memory form, which
 * broker_authorize (authz.c) reads on every request.
 *
 * The catalog holds the ACLs; the engine keeps an immutable snapshot of them (struct acl_set)
 * built at open and rebuilt by every change, under admin_mu, then swapped in under the write
 * side of a rwlock. A check takes the read side for the length of one scan, so it never sees a
 * set being freed; a change waits for the checks in progress, not the other way round for
 * longer than the swap of a pointer.
 *
 * The snapshot sorts the ACLs by resource type and keeps, per type, the range of its entries,
 * so that a check scans only the ACLs of the resource's type. Each entry carries the set of
 * operations it covers as a bit mask (an allow of Read also allows Describe; a deny of Read
 * denies only Read, as in Kafka), its principal's user name (NULL for "User:*") and its host
 * (NULL for "*"): a check compares integers first and strings only for the entries left. Cost:
 * O(ACLs of the type) per check; a few hundred ACLs cost a few hundred nanoseconds (the figure
 * is measured by tests/unit/test_authz.c).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/base.h"
#include "broker/acl_int.h"
#include "broker/audit.h"
#include "broker/authz.h"
#include "broker/engine_int.h"
#include "broker/pattern.h"
#include "storage/storage.h"

#define USER_PREFIX "User:"
#define USER_PREFIX_LEN 5

/* ---------------------------------------------------------------------------------------------
 * Names and validation
 */
static const char *const resource_names[] = {"Unknown", "Any",     "Topic",
                                             "Group",   "Cluster", "TransactionalId"};
static const char *const op_names[] = {
    "Unknown",        "Any",   "All",      "Read",          "Write",           "Create",
    "Delete",         "Alter", "Describe", "ClusterAction", "DescribeConfigs", "AlterConfigs",
    "IdempotentWrite"};
static const char *const permission_names[] = {"Unknown", "Any", "Deny", "Allow"};

const char *td_acl_resource_name(td_acl_resource r)
{
    return (int)r >= 0 && (int)r <= TD_RES_TRANSACTIONAL_ID ? resource_names[r] : "Unknown";
}

const char *td_acl_op_name(td_acl_op op)
{
    return (int)op >= 0 && (int)op <= TD_OP_IDEMPOTENT_WRITE ? op_names[op] : "Unknown";
}

const char *td_acl_pattern_name(td_acl_pattern p)
{
    switch (p) {
    case TD_PAT_ANY:
        return "Any";
    case TD_PAT_MATCH:
        return "Match";
    case TD_PAT_LITERAL:
        return "Literal";
    case TD_PAT_PREFIXED:
        return "Prefixed";
    case TD_PAT_WILDCARD:
        return "Wildcard";
    }
    return "Unknown";
}

const char *td_acl_permission_name(td_acl_permission p)
{
    return (int)p >= 0 && (int)p <= TD_PERM_ALLOW ? permission_names[p] : "Unknown";
}

/* Whether s names `name` ignoring case and the '-' and '_' between words. */
static bool name_eq(const char *s, const char *name)
{
    while (*s || *name) {
        if (*s == '-' || *s == '_') {
            s++;
            continue;
        }
        if (*s == '\0' || *name == '\0' ||
            (*s | 0x20) != (*name | 0x20)) /* letters only: ASCII case folding */
            return false;
        s++, name++;
    }
    return true;
}

td_acl_resource td_acl_resource_parse(const char *s)
{
    for (int i = TD_RES_ANY; i <= TD_RES_TRANSACTIONAL_ID; i++)
        if (s && name_eq(s, resource_names[i]))
            return (td_acl_resource)i;
    return (td_acl_resource)0;
}

td_acl_op td_acl_op_parse(const char *s)
{
    for (int i = TD_OP_ANY; i <= TD_OP_IDEMPOTENT_WRITE; i++)
        if (s && name_eq(s, op_names[i]))
            return (td_acl_op)i;
    return (td_acl_op)0;
}

td_acl_pattern td_acl_pattern_parse(const char *s)
{
    static const td_acl_pattern all[] = {TD_PAT_ANY, TD_PAT_MATCH, TD_PAT_LITERAL, TD_PAT_PREFIXED,
                                         TD_PAT_WILDCARD};
    for (size_t i = 0; i < sizeof(all) / sizeof(*all); i++)
        if (s && name_eq(s, td_acl_pattern_name(all[i])))
            return all[i];
    return (td_acl_pattern)0;
}

td_acl_permission td_acl_permission_parse(const char *s)
{
    for (int i = TD_PERM_ANY; i <= TD_PERM_ALLOW; i++)
        if (s && name_eq(s, permission_names[i]))
            return (td_acl_permission)i;
    return (td_acl_permission)0;
}

void td_acl_filter_init(td_acl_filter *f)
{
    memset(f, 0, sizeof(*f));
    f->resource_type = TD_RES_ANY;
    f->pattern_type = TD_PAT_ANY;
    f->operation = TD_OP_ANY;
    f->permission = TD_PERM_ANY;
}

static int check_principal(const char *p)
{
    if (!p || strncmp(p, USER_PREFIX, USER_PREFIX_LEN) != 0)
        return td_fail(TD_EINVAL, "principal '%s': expected User:<name> or User:*",
                       p ? p : "(null)");
    if (strcmp(p + USER_PREFIX_LEN, "*") == 0)
        return 0;
    if (td_user_name_validate(p + USER_PREFIX_LEN) != 0)
        return td_fail(TD_EINVAL, "principal '%s': %s", p, td_last_error());
    return 0;
}

static int check_host(const char *h)
{
    unsigned char buf[16];
    if (h && (strcmp(h, "*") == 0 || inet_pton(AF_INET, h, buf) == 1 ||
              inet_pton(AF_INET6, h, buf) == 1))
        return 0;
    return td_fail(TD_EINVAL, "host '%s': expected * or an IP address", h ? h : "(null)");
}

static bool resource_valid(int r)
{
    return r >= TD_RES_TOPIC && r <= TD_RES_TRANSACTIONAL_ID;
}

static bool op_valid(int op)
{
    return op >= TD_OP_ALL && op <= TD_OP_IDEMPOTENT_WRITE;
}

int td_acl_validate(const td_acl *a)
{
    td_error_clear();
    int rc;
    if ((rc = check_principal(a->principal)) || (rc = check_host(a->host)))
        return rc;
    if (!resource_valid(a->resource_type))
        return td_fail(TD_EINVAL,
                       "resource type %d: expected topic, group, cluster or "
                       "transactional id",
                       (int)a->resource_type);
    if (a->pattern_type != TD_PAT_LITERAL && a->pattern_type != TD_PAT_PREFIXED &&
        a->pattern_type != TD_PAT_WILDCARD)
        return td_fail(TD_EINVAL, "pattern type %d: expected literal, prefixed or wildcard",
                       (int)a->pattern_type);
    if (!op_valid(a->operation))
        return td_fail(TD_EINVAL, "operation %d is not one an ACL may have", (int)a->operation);
    if (a->permission != TD_PERM_ALLOW && a->permission != TD_PERM_DENY)
        return td_fail(TD_EINVAL, "permission %d: expected allow or deny", (int)a->permission);
    size_t n = strnlen(a->name, sizeof(a->name));
    if (n == 0 || n > TD_ACL_NAME_MAX)
        return td_fail(TD_EINVAL, "resource name: 1 to %d bytes", TD_ACL_NAME_MAX);
    if (a->resource_type == TD_RES_CLUSTER &&
        (a->pattern_type != TD_PAT_LITERAL || strcmp(a->name, TD_CLUSTER_NAME) != 0))
        return td_fail(TD_EINVAL, "the cluster resource is the literal name %s", TD_CLUSTER_NAME);
    const char *why = NULL;
    if (a->pattern_type == TD_PAT_WILDCARD && td_pattern_validate(a->name, n, &why) != 0)
        return td_fail(TD_EINVAL, "wildcard pattern '%s': %s", a->name, why);
    return 0;
}

int td_acl_filter_validate(const td_acl_filter *f)
{
    td_error_clear();
    /* Principals and hosts of filters are compared as strings, not validated: a filter for a
     * principal no ACL can have matches nothing, as in Kafka. */
    if ((f->principal && strlen(f->principal) > TD_ACL_PRINCIPAL_MAX) ||
        (f->host && strlen(f->host) > TD_ACL_HOST_MAX))
        return td_fail(TD_EINVAL, "principal or host filter too long");
    if (f->resource_type != TD_RES_ANY && !resource_valid(f->resource_type))
        return td_fail(TD_EINVAL, "resource type filter %d is unknown", (int)f->resource_type);
    if (f->pattern_type != TD_PAT_ANY && f->pattern_type != TD_PAT_MATCH &&
        f->pattern_type != TD_PAT_LITERAL && f->pattern_type != TD_PAT_PREFIXED &&
        f->pattern_type != TD_PAT_WILDCARD)
        return td_fail(TD_EINVAL, "pattern type filter %d is unknown", (int)f->pattern_type);
    if (f->operation != TD_OP_ANY && !op_valid(f->operation))
        return td_fail(TD_EINVAL, "operation filter %d is unknown", (int)f->operation);
    if (f->permission != TD_PERM_ANY && f->permission != TD_PERM_ALLOW &&
        f->permission != TD_PERM_DENY)
        return td_fail(TD_EINVAL, "permission filter %d is unknown", (int)f->permission);
    if (f->name && strlen(f->name) > TD_ACL_NAME_MAX)
        return td_fail(TD_EINVAL, "resource name filter: at most %d bytes", TD_ACL_NAME_MAX);
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Matching (pure)
 */
/* Whether the ACL a's resource pattern selects the resource `name` (of a's resource type). */
static bool broker_acl_resource_match(const td_acl *a, const char *name)
{
    switch (a->pattern_type) {
    case TD_PAT_LITERAL:
        return strcmp(a->name, name) == 0 || strcmp(a->name, "*") == 0;
    case TD_PAT_PREFIXED:
        return strncmp(a->name, name, strlen(a->name)) == 0;
    case TD_PAT_WILDCARD:
        return td_pattern_match(a->name, strlen(a->name), name, strlen(name));
    default:
        return false;
    }
}

/* Whether the (valid) filter f matches the ACL a: pure. */
static bool broker_acl_filter_match(const td_acl_filter *f, const td_acl *a)
{
    if (f->resource_type != TD_RES_ANY && f->resource_type != a->resource_type)
        return false;
    if (f->principal && strcmp(f->principal, a->principal) != 0)
        return false;
    if (f->host && strcmp(f->host, a->host) != 0)
        return false;
    if (f->operation != TD_OP_ANY && f->operation != a->operation)
        return false;
    if (f->permission != TD_PERM_ANY && f->permission != a->permission)
        return false;
    switch (f->pattern_type) {
    case TD_PAT_ANY:
        return !f->name || strcmp(f->name, a->name) == 0;
    case TD_PAT_MATCH:
        /* Kafka: the ACLs that apply to the named resource (a null name: all of them). */
        return !f->name || broker_acl_resource_match(a, f->name);
    default:
        return f->pattern_type == a->pattern_type && (!f->name || strcmp(f->name, a->name) == 0);
    }
}

/* ---------------------------------------------------------------------------------------------
 * The in-memory set
 */
static int cmp_acl(const void *x, const void *y)
{
    const td_acl *a = x, *b = y;
    int d;
    if ((d = (int)a->resource_type - (int)b->resource_type) != 0)
        return d;
    if ((d = strcmp(a->name, b->name)) != 0)
        return d;
    if ((d = (int)a->pattern_type - (int)b->pattern_type) != 0)
        return d;
    if ((d = strcmp(a->principal, b->principal)) != 0)
        return d;
    if ((d = strcmp(a->host, b->host)) != 0)
        return d;
    if ((d = (int)a->operation - (int)b->operation) != 0)
        return d;
    return (int)a->permission - (int)b->permission;
}

/* The operations an ACL of operation op and permission perm covers, as bits. */
static uint16_t ops_covered(td_acl_op op, td_acl_permission perm)
{
    if (op == TD_OP_ALL)
        return 0xffff;
    uint16_t m = (uint16_t)(1u << op);
    if (perm == TD_PERM_ALLOW) {
        if (op == TD_OP_READ || op == TD_OP_WRITE || op == TD_OP_DELETE || op == TD_OP_ALTER)
            m |= 1u << TD_OP_DESCRIBE;
        if (op == TD_OP_ALTER_CONFIGS)
            m |= 1u << TD_OP_DESCRIBE_CONFIGS;
    }
    return m;
}

static void acl_set_free(struct acl_set *s)
{
    if (!s)
        return;
    free(s->acls);
    free(s->entries);
    free(s);
}

/* A set over v (taken: freed with the set, also on failure), which it sorts. Entries whose
 * codes this build does not know (a newer tidings wrote them) are kept for listings but never
 * allow anything. */
static int acl_set_new(td_acl *v, size_t n, struct acl_set **out)
{
    struct acl_set *s = calloc(1, sizeof(*s));
    if (!s || (n && !(s->entries = calloc(n, sizeof(*s->entries))))) {
        free(s);
        free(v);
        return -ENOMEM;
    }
    if (n)
        qsort(v, n, sizeof(*v), cmp_acl);
    s->acls = v;
    s->n = n;
    for (size_t i = 0; i < n; i++) {
        const td_acl *a = &v[i];
        acl_entry *x = &s->entries[i];
        x->acl = a;
        x->user =
            strcmp(a->principal, USER_PREFIX "*") == 0 ? NULL : a->principal + USER_PREFIX_LEN;
        x->host = strcmp(a->host, "*") == 0 ? NULL : a->host;
        x->deny = a->permission == TD_PERM_DENY;
        x->ops = td_acl_validate(a) == 0 ? ops_covered(a->operation, a->permission) : 0;
        int t = (int)a->resource_type;
        if (t >= 0 && t < ACL_TYPES) {
            if (s->end[t] == 0)
                s->start[t] = i;
            s->end[t] = i + 1;
        }
    }
    td_error_clear();
    *out = s;
    return 0;
}

int broker_acls_open(td_engine *e)
{
    struct td_acls *x = calloc(1, sizeof(*x));
    if (!x)
        return -ENOMEM;
    pthread_rwlock_init(&x->lock, NULL);
    td_acl *v = NULL;
    size_t n = 0;
    int rc = catalog_acl_list(e->cat, &v, &n);
    if (rc == 0)
        rc = acl_set_new(v, n, &x->set);
    if (rc) {
        pthread_rwlock_destroy(&x->lock);
        free(x);
        return rc;
    }
    e->acls = x;
    return 0;
}

void broker_acls_free(td_engine *e)
{
    struct td_acls *x = e->acls;
    if (!x)
        return;
    acl_set_free(x->set);
    pthread_rwlock_destroy(&x->lock);
    free(x);
    e->acls = NULL;
}

/* Replaces the set with one of v (taken). Caller holds admin_mu, which orders the changes. */
static int acls_swap(td_engine *e, td_acl *v, size_t n)
{
    struct acl_set *s;
    int rc = acl_set_new(v, n, &s);
    if (rc)
        return rc;
    pthread_rwlock_wrlock(&e->acls->lock);
    struct acl_set *old = e->acls->set;
    e->acls->set = s;
    pthread_rwlock_unlock(&e->acls->lock);
    acl_set_free(old);
    return 0;
}

/* A copy of the current set's ACLs with room for `extra` more. Caller holds admin_mu (the only
 * writer), so the set cannot change under it. */
static td_acl *acls_copy(td_engine *e, size_t extra, size_t *n)
{
    const struct acl_set *s = e->acls->set;
    td_acl *v = malloc((s->n + extra ? s->n + extra : 1) * sizeof(*v));
    if (v && s->n)
        memcpy(v, s->acls, s->n * sizeof(*v));
    *n = s->n;
    return v;
}

static void describe(const td_acl *a, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s %s %s from %s on %s %s '%s'", td_acl_permission_name(a->permission),
             a->principal, td_acl_op_name(a->operation), a->host,
             td_acl_resource_name(a->resource_type), td_acl_pattern_name(a->pattern_type), a->name);
}

/* One ACL added or removed: an audit event when a client made the change; a local change (the
 * tidings command on a data directory) is a debug line, that command's output saying it. */
static void audit(td_engine *e, const td_audit_who *who, const char *verb, const char *acl)
{
    if (who)
        broker_audit(e, TD_AUDIT_ACL_CHANGE, who->protocol, who->user, who->peer, "%s ACL %s", verb,
                     acl);
    else
        TD_DEBUG("acl", "%s ACL %s (locally)", verb, acl);
}

/* An IP address in the form inet_ntop gives (the form the peer's address has), so that
 * "0:0:0:0:0:0:0:1" and "::1" are one host; anything else is left as it is. */
static void canonical_host(const char *host, char *out, size_t cap)
{
    unsigned char buf[16];
    if (inet_pton(AF_INET6, host, buf) == 1 && inet_ntop(AF_INET6, buf, out, (socklen_t)cap))
        return;
    if (inet_pton(AF_INET, host, buf) == 1 && inet_ntop(AF_INET, buf, out, (socklen_t)cap))
        return;
    snprintf(out, cap, "%s", host);
}

int broker_acl_add(td_engine *e, const td_acl *given, const td_audit_who *who)
{
    td_error_clear();
    int rc = td_acl_validate(given);
    if (rc)
        return rc;
    td_acl canon = *given, *a = &canon;
    canonical_host(given->host, canon.host, sizeof(canon.host));
    pthread_mutex_lock(&e->admin_mu);
    const struct acl_set *s = e->acls->set;
    for (size_t i = 0; i < s->n; i++)
        if (cmp_acl(&s->acls[i], a) == 0) {
            pthread_mutex_unlock(&e->admin_mu);
            return 0; /* there already: as Kafka, a success that changes nothing */
        }
    if (s->n >= TD_ACL_MAX) {
        pthread_mutex_unlock(&e->admin_mu);
        return td_fail(TD_EFULL, "the ACL store holds its maximum of %d ACLs", TD_ACL_MAX);
    }
    size_t n;
    td_acl *v = acls_copy(e, 1, &n);
    rc = v ? catalog_acl_put(e->cat, a) : -ENOMEM;
    if (rc == 0) {
        v[n++] = *a;
        rc = acls_swap(e, v, n);
        v = NULL;
    }
    free(v);
    pthread_mutex_unlock(&e->admin_mu);
    if (rc == 0) {
        char d[TD_ACL_PRINCIPAL_MAX + TD_ACL_NAME_MAX + 128];
        describe(a, d, sizeof(d));
        audit(e, who, "added", d);
    }
    return rc;
}

int broker_acl_remove(td_engine *e, const td_acl_filter *f, const td_audit_who *who,
                      td_acl **removed, size_t *count)
{
    td_error_clear();
    if (removed)
        *removed = NULL;
    if (count)
        *count = 0;
    int rc = td_acl_filter_validate(f);
    if (rc)
        return rc;
    char host[TD_ACL_HOST_MAX + 1];
    td_acl_filter cf = *f;
    if (f->host) {
        canonical_host(f->host, host, sizeof(host));
        cf.host = host;
        f = &cf;
    }
    pthread_mutex_lock(&e->admin_mu);
    const struct acl_set *s = e->acls->set;
    td_acl *gone = malloc((s->n ? s->n : 1) * sizeof(*gone));
    td_acl *keep = malloc((s->n ? s->n : 1) * sizeof(*keep));
    size_t ngone = 0, nkeep = 0;
    rc = gone && keep ? 0 : -ENOMEM;
    for (size_t i = 0; rc == 0 && i < s->n; i++) {
        if (broker_acl_filter_match(f, &s->acls[i]))
            gone[ngone++] = s->acls[i];
        else
            keep[nkeep++] = s->acls[i];
    }
    if (rc == 0 && ngone) {
        rc = catalog_acl_remove(e->cat, gone, ngone);
        if (rc == 0) {
            rc = acls_swap(e, keep, nkeep);
            keep = NULL;
        }
    }
    pthread_mutex_unlock(&e->admin_mu);
    free(keep);
    if (rc) {
        free(gone);
        return rc;
    }
    for (size_t i = 0; i < ngone; i++) {
        char d[TD_ACL_PRINCIPAL_MAX + TD_ACL_NAME_MAX + 128];
        describe(&gone[i], d, sizeof(d));
        audit(e, who, "removed", d);
    }
    if (count)
        *count = ngone;
    if (removed && ngone)
        *removed = gone;
    else
        free(gone);
    return 0;
}

int td_acl_add(td_engine *e, const td_acl *a)
{
    return broker_acl_add(e, a, NULL);
}

int td_acl_remove(td_engine *e, const td_acl_filter *f, td_acl **removed, size_t *count)
{
    return broker_acl_remove(e, f, NULL, removed, count);
}

int td_acl_list(td_engine *e, const td_acl_filter *f, td_acl **out, size_t *count)
{
    td_error_clear();
    *out = NULL;
    *count = 0;
    int rc = td_acl_filter_validate(f);
    if (rc)
        return rc;
    char host[TD_ACL_HOST_MAX + 1];
    td_acl_filter cf = *f;
    if (f->host) {
        canonical_host(f->host, host, sizeof(host));
        cf.host = host;
        f = &cf;
    }
    pthread_rwlock_rdlock(&e->acls->lock);
    const struct acl_set *s = e->acls->set;
    td_acl *v = malloc((s->n ? s->n : 1) * sizeof(*v));
    size_t n = 0;
    for (size_t i = 0; v && i < s->n; i++)
        if (broker_acl_filter_match(f, &s->acls[i]))
            v[n++] = s->acls[i];
    pthread_rwlock_unlock(&e->acls->lock);
    if (!v)
        return -ENOMEM;
    if (n == 0) {
        free(v);
        v = NULL;
    }
    *out = v;
    *count = n;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Evaluation
 */
int acl_decide(td_engine *e, const char *user, const char *host, td_acl_resource type,
               const char *name, td_acl_op op)
{
    if ((int)type < 0 || (int)type >= ACL_TYPES || (int)op < 0 || (int)op > 15)
        return ACL_NO_MATCH;
    uint16_t bit = (uint16_t)(1u << op);
    int verdict = ACL_NO_MATCH;
    pthread_rwlock_rdlock(&e->acls->lock);
    const struct acl_set *s = e->acls->set;
    for (size_t i = s->start[type]; i < s->end[type]; i++) {
        const acl_entry *x = &s->entries[i];
        if (!(x->ops & bit) || (verdict == ACL_ALLOW && !x->deny))
            continue;
        if (x->user && strcmp(x->user, user) != 0)
            continue;
        if (x->host && (!host || strcmp(x->host, host) != 0))
            continue;
        if (!broker_acl_resource_match(x->acl, name))
            continue;
        if (x->deny) {
            verdict = ACL_DENY;
            break;
        }
        verdict = ACL_ALLOW;
    }
    pthread_rwlock_unlock(&e->acls->lock);
    return verdict;
}

/* Whether the entry applies to (user, host) for op, ignoring the resource. Operations match
 * exactly or through All, without implication (Kafka's authorizeByResourceType). */
static bool applies(const acl_entry *x, const char *user, const char *host, td_acl_op op)
{
    return x->ops && (x->acl->operation == op || x->acl->operation == TD_OP_ALL) &&
           (!x->user || strcmp(x->user, user) == 0) &&
           (!x->host || (host && strcmp(x->host, host) == 0));
}

/* Whether the deny entry d covers everything the allow entry a selects. */
static bool deny_covers(const td_acl *d, const td_acl *a)
{
    if (d->pattern_type == TD_PAT_LITERAL && strcmp(d->name, "*") == 0)
        return true;
    if (d->pattern_type == TD_PAT_PREFIXED)
        return a->pattern_type != TD_PAT_WILDCARD &&
               strncmp(a->name, d->name, strlen(d->name)) == 0;
    if (a->pattern_type == TD_PAT_LITERAL)
        return strcmp(a->name, "*") != 0 && broker_acl_resource_match(d, a->name);
    return d->pattern_type == a->pattern_type && strcmp(d->name, a->name) == 0;
}

bool acl_decide_any(td_engine *e, const char *user, const char *host, td_acl_resource type,
                    td_acl_op op)
{
    if ((int)type < 0 || (int)type >= ACL_TYPES)
        return false;
    bool allowed = false;
    pthread_rwlock_rdlock(&e->acls->lock);
    const struct acl_set *s = e->acls->set;
    for (size_t i = s->start[type]; i < s->end[type] && !allowed; i++) {
        const acl_entry *x = &s->entries[i];
        if (x->deny || !applies(x, user, host, op))
            continue;
        bool covered = false;
        for (size_t k = s->start[type]; k < s->end[type] && !covered; k++) {
            const acl_entry *d = &s->entries[k];
            covered = d->deny && applies(d, user, host, op) && deny_covers(d->acl, x->acl);
        }
        allowed = !covered;
    }
    pthread_rwlock_unlock(&e->acls->lock);
    return allowed;
}
