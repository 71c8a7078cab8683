/*
 * test_authz.c: the ACL store (td_acl_*) and the authorization decision (broker_authorize):
 * each rule of Kafka's AclAuthorizer (super users, anonymous.access, deny wins, no allow means
 * denied, principal and host wildcards, implied operations, literal / "*" / prefixed / wildcard
 * patterns, resource types kept apart), filters (ANY, MATCH, exact), removal by filter,
 * validation, durability across a reopen and the upgrade of a schema 5 catalog; and the cost
 * of a check with a few hundred ACLs (printed, never asserted).
 */
#include <pthread.h>
#include <sqlite3.h>
#include <time.h>

#include "base/base.h"
#include "broker/authz.h"
#include "test.h"
#include "tidings.h"

static td_engine *open_engine(const char *dir)
{
    td_options o;
    td_options_init(&o);
    o.no_background = 1;
    td_engine *e = NULL;
    ASSERT_OK(td_engine_open(dir, &o, &e));
    return e;
}

static td_acl acl(const char *principal, const char *host, td_acl_resource type,
                  td_acl_pattern pattern, const char *name, td_acl_op op, td_acl_permission perm)
{
    td_acl a;
    memset(&a, 0, sizeof(a));
    snprintf(a.principal, sizeof(a.principal), "%s", principal);
    snprintf(a.host, sizeof(a.host), "%s", host);
    snprintf(a.name, sizeof(a.name), "%s", name);
    a.resource_type = type;
    a.pattern_type = pattern;
    a.operation = op;
    a.permission = perm;
    return a;
}

static void add(td_engine *e, const char *principal, const char *host, td_acl_resource type,
                td_acl_pattern pattern, const char *name, td_acl_op op, td_acl_permission perm)
{
    td_acl a = acl(principal, host, type, pattern, name, op, perm);
    ASSERT_OK(td_acl_add(e, &a));
}

static bool can(td_engine *e, const char *user, const char *host, td_acl_resource type,
                const char *name, td_acl_op op)
{
    td_principal p = {user, host};
    return broker_authorize(e, &p, type, name, op);
}

#define TOPIC TD_RES_TOPIC
#define LIT TD_PAT_LITERAL
#define ALLOW TD_PERM_ALLOW
#define DENY TD_PERM_DENY

static void test_super_users_and_anonymous(void)
{
    char *dir = test_tmpdir("authz");
    td_engine *e = open_engine(dir);
    /* The defaults (no configuration): anonymous may do everything, users nothing. */
    ASSERT(can(e, NULL, "127.0.0.1", TOPIC, "t", TD_OP_WRITE));
    ASSERT(!can(e, "alice", "127.0.0.1", TOPIC, "t", TD_OP_WRITE));
    ASSERT_OK(broker_authz_configure(e, "admin, root", true));
    ASSERT(can(e, "admin", "10.0.0.1", TD_RES_CLUSTER, TD_CLUSTER_NAME, TD_OP_ALTER));
    ASSERT(can(e, "root", NULL, TOPIC, "anything", TD_OP_DELETE));
    ASSERT(!can(e, "alice", NULL, TOPIC, "t", TD_OP_READ));
    ASSERT(can(e, NULL, NULL, TOPIC, "t", TD_OP_READ));
    /* A deny ACL does not bind a super user (Kafka: super users bypass the ACLs). */
    add(e, "User:*", "*", TOPIC, LIT, "*", TD_OP_ALL, DENY);
    ASSERT(can(e, "admin", NULL, TOPIC, "t", TD_OP_READ));
    td_acl_filter f;
    td_acl_filter_init(&f);
    ASSERT_OK(td_acl_remove(e, &f, NULL, NULL));
    /* anonymous.access=acl: anonymous is User:ANONYMOUS under the ACLs. */
    ASSERT_OK(broker_authz_configure(e, "admin", false));
    ASSERT(!can(e, NULL, "127.0.0.1", TOPIC, "t", TD_OP_READ));
    add(e, "User:ANONYMOUS", "*", TOPIC, LIT, "t", TD_OP_READ, ALLOW);
    ASSERT(can(e, NULL, "127.0.0.1", TOPIC, "t", TD_OP_READ));
    ASSERT(!can(e, NULL, "127.0.0.1", TOPIC, "t", TD_OP_WRITE));
    ASSERT(!can(e, "alice", "127.0.0.1", TOPIC, "t", TD_OP_READ));
    td_engine_close(e);
    test_rmrf(dir);
}

static void test_allow_deny_principal_host(void)
{
    char *dir = test_tmpdir("authz");
    td_engine *e = open_engine(dir);
    ASSERT_OK(broker_authz_configure(e, "admin", false));
    /* No ACL: denied. */
    ASSERT(!can(e, "alice", "10.0.0.1", TOPIC, "orders", TD_OP_WRITE));
    add(e, "User:alice", "*", TOPIC, LIT, "orders", TD_OP_WRITE, ALLOW);
    ASSERT(can(e, "alice", "10.0.0.1", TOPIC, "orders", TD_OP_WRITE));
    ASSERT(can(e, "alice", NULL, TOPIC, "orders", TD_OP_WRITE));
    ASSERT(!can(e, "alice", "10.0.0.1", TOPIC, "orders2", TD_OP_WRITE));       /* literal only */
    ASSERT(!can(e, "alice", "10.0.0.1", TOPIC, "orders", TD_OP_READ));         /* other op */
    ASSERT(!can(e, "bob", "10.0.0.1", TOPIC, "orders", TD_OP_WRITE));          /* other user */
    ASSERT(!can(e, "alice", "10.0.0.1", TD_RES_GROUP, "orders", TD_OP_WRITE)); /* other type */
    /* User:* matches every principal, anonymous included. */
    add(e, "User:*", "*", TOPIC, LIT, "public", TD_OP_READ, ALLOW);
    ASSERT(can(e, "bob", "10.0.0.9", TOPIC, "public", TD_OP_READ));
    ASSERT(can(e, NULL, "10.0.0.9", TOPIC, "public", TD_OP_READ));
    /* Host: an exact address, or "*". */
    add(e, "User:bob", "10.0.0.2", TOPIC, LIT, "orders", TD_OP_READ, ALLOW);
    ASSERT(can(e, "bob", "10.0.0.2", TOPIC, "orders", TD_OP_READ));
    ASSERT(!can(e, "bob", "10.0.0.3", TOPIC, "orders", TD_OP_READ));
    ASSERT(!can(e, "bob", NULL, TOPIC, "orders", TD_OP_READ));
    /* Deny wins over allow, whichever principal or host form each has. */
    add(e, "User:*", "10.6.6.6", TOPIC, LIT, "orders", TD_OP_WRITE, DENY);
    ASSERT(!can(e, "alice", "10.6.6.6", TOPIC, "orders", TD_OP_WRITE));
    ASSERT(can(e, "alice", "10.0.0.1", TOPIC, "orders", TD_OP_WRITE));
    add(e, "User:alice", "*", TOPIC, TD_PAT_PREFIXED, "ord", TD_OP_ALL, DENY);
    ASSERT(!can(e, "alice", "10.0.0.1", TOPIC, "orders", TD_OP_WRITE));
    ASSERT(can(e, "bob", "10.0.0.2", TOPIC, "orders", TD_OP_READ));
    td_engine_close(e);
    test_rmrf(dir);
}

static void test_implied_operations(void)
{
    char *dir = test_tmpdir("authz");
    td_engine *e = open_engine(dir);
    ASSERT_OK(broker_authz_configure(e, "", false));
    static const td_acl_op implies_describe[] = {TD_OP_READ, TD_OP_WRITE, TD_OP_DELETE,
                                                 TD_OP_ALTER};
    for (size_t i = 0; i < 4; i++) {
        char name[16];
        snprintf(name, sizeof(name), "t%zu", i);
        add(e, "User:u", "*", TOPIC, LIT, name, implies_describe[i], ALLOW);
        ASSERT(can(e, "u", NULL, TOPIC, name, TD_OP_DESCRIBE));
        ASSERT(!can(e, "u", NULL, TOPIC, name, TD_OP_DESCRIBE_CONFIGS));
        ASSERT(!can(e, "u", NULL, TOPIC, name, TD_OP_CREATE));
    }
    /* Describe implies nothing else. */
    add(e, "User:u", "*", TOPIC, LIT, "d", TD_OP_DESCRIBE, ALLOW);
    ASSERT(can(e, "u", NULL, TOPIC, "d", TD_OP_DESCRIBE));
    ASSERT(!can(e, "u", NULL, TOPIC, "d", TD_OP_READ));
    /* AlterConfigs implies DescribeConfigs (not Describe). */
    add(e, "User:u", "*", TOPIC, LIT, "c", TD_OP_ALTER_CONFIGS, ALLOW);
    ASSERT(can(e, "u", NULL, TOPIC, "c", TD_OP_DESCRIBE_CONFIGS));
    ASSERT(can(e, "u", NULL, TOPIC, "c", TD_OP_ALTER_CONFIGS));
    ASSERT(!can(e, "u", NULL, TOPIC, "c", TD_OP_DESCRIBE));
    /* All implies everything. */
    add(e, "User:u", "*", TD_RES_CLUSTER, LIT, TD_CLUSTER_NAME, TD_OP_ALL, ALLOW);
    for (int op = TD_OP_READ; op <= TD_OP_IDEMPOTENT_WRITE; op++)
        ASSERT(can(e, "u", NULL, TD_RES_CLUSTER, TD_CLUSTER_NAME, (td_acl_op)op));
    /* A deny is not widened: denying Read leaves the Describe that Write implies. */
    add(e, "User:u", "*", TOPIC, LIT, "t1", TD_OP_READ, DENY); /* t1: Write allowed */
    ASSERT(can(e, "u", NULL, TOPIC, "t1", TD_OP_DESCRIBE));
    ASSERT(!can(e, "u", NULL, TOPIC, "t1", TD_OP_READ));
    /* A deny of All denies every operation. */
    add(e, "User:u", "*", TD_RES_CLUSTER, LIT, TD_CLUSTER_NAME, TD_OP_ALL, DENY);
    ASSERT(!can(e, "u", NULL, TD_RES_CLUSTER, TD_CLUSTER_NAME, TD_OP_DESCRIBE));
    td_engine_close(e);
    test_rmrf(dir);
}

static void test_patterns(void)
{
    char *dir = test_tmpdir("authz");
    td_engine *e = open_engine(dir);
    ASSERT_OK(broker_authz_configure(e, "", false));
    add(e, "User:p", "*", TOPIC, TD_PAT_PREFIXED, "logs-", TD_OP_READ, ALLOW);
    ASSERT(can(e, "p", NULL, TOPIC, "logs-a", TD_OP_READ));
    ASSERT(can(e, "p", NULL, TOPIC, "logs-", TD_OP_READ));
    ASSERT(!can(e, "p", NULL, TOPIC, "logs", TD_OP_READ));
    ASSERT(!can(e, "p", NULL, TOPIC, "xlogs-a", TD_OP_READ));
    add(e, "User:w", "*", TOPIC, TD_PAT_WILDCARD, "orders.*", TD_OP_READ, ALLOW);
    ASSERT(can(e, "w", NULL, TOPIC, "orders.eu", TD_OP_READ));
    ASSERT(!can(e, "w", NULL, TOPIC, "orders.eu.paris", TD_OP_READ));
    ASSERT(!can(e, "w", NULL, TOPIC, "orders", TD_OP_READ));
    add(e, "User:w", "*", TOPIC, TD_PAT_WILDCARD, "audit.#", TD_OP_WRITE, ALLOW);
    ASSERT(can(e, "w", NULL, TOPIC, "audit", TD_OP_WRITE));
    ASSERT(can(e, "w", NULL, TOPIC, "audit.a.b", TD_OP_WRITE));
    /* A literal "*" is every resource of its type. */
    add(e, "User:s", "*", TD_RES_GROUP, LIT, "*", TD_OP_READ, ALLOW);
    ASSERT(can(e, "s", NULL, TD_RES_GROUP, "any-group", TD_OP_READ));
    ASSERT(!can(e, "s", NULL, TOPIC, "any-group", TD_OP_READ));
    /* A prefix "*" is only names that start with '*' (Kafka's rule too). */
    add(e, "User:s", "*", TOPIC, TD_PAT_PREFIXED, "*", TD_OP_READ, ALLOW);
    ASSERT(!can(e, "s", NULL, TOPIC, "x", TD_OP_READ));
    add(e, "User:t", "*", TD_RES_TRANSACTIONAL_ID, LIT, "tx1", TD_OP_WRITE, ALLOW);
    ASSERT(can(e, "t", NULL, TD_RES_TRANSACTIONAL_ID, "tx1", TD_OP_DESCRIBE));
    ASSERT(!can(e, "t", NULL, TD_RES_TRANSACTIONAL_ID, "tx2", TD_OP_WRITE));
    td_engine_close(e);
    test_rmrf(dir);
}

/* broker_authorize_any (Kafka's authorizeByResourceType): an allow on some pattern that no deny
 * covers whole. */
static void test_authorize_any(void)
{
    char *dir = test_tmpdir("authz");
    td_engine *e = open_engine(dir);
    ASSERT_OK(broker_authz_configure(e, "root", false));
    td_principal u = {"u", "10.0.0.1"}, root = {"root", NULL}, anon = {NULL, NULL};
    ASSERT(broker_authorize_any(e, &root, TOPIC, TD_OP_WRITE));
    ASSERT(!broker_authorize_any(e, &u, TOPIC, TD_OP_WRITE));
    ASSERT(!broker_authorize_any(e, &anon, TOPIC, TD_OP_WRITE));
    add(e, "User:u", "*", TOPIC, LIT, "a", TD_OP_WRITE, ALLOW);
    ASSERT(broker_authorize_any(e, &u, TOPIC, TD_OP_WRITE));
    ASSERT(!broker_authorize_any(e, &u, TOPIC, TD_OP_READ));
    ASSERT(!broker_authorize_any(e, &u, TD_RES_GROUP, TD_OP_WRITE));
    add(e, "User:u", "*", TOPIC, LIT, "a", TD_OP_WRITE, DENY); /* the same literal */
    ASSERT(!broker_authorize_any(e, &u, TOPIC, TD_OP_WRITE));
    add(e, "User:u", "*", TOPIC, TD_PAT_PREFIXED, "logs-", TD_OP_ALL, ALLOW);
    ASSERT(broker_authorize_any(e, &u, TOPIC, TD_OP_WRITE));
    add(e, "User:*", "*", TOPIC, TD_PAT_PREFIXED, "log", TD_OP_WRITE, DENY); /* covers logs- */
    ASSERT(!broker_authorize_any(e, &u, TOPIC, TD_OP_WRITE));
    add(e, "User:u", "*", TOPIC, LIT, "b", TD_OP_WRITE, ALLOW);
    ASSERT(broker_authorize_any(e, &u, TOPIC, TD_OP_WRITE));
    add(e, "User:u", "10.0.0.1", TOPIC, LIT, "*", TD_OP_WRITE, DENY);
    ASSERT(!broker_authorize_any(e, &u, TOPIC, TD_OP_WRITE));
    td_principal other_host = {"u", "10.0.0.2"};
    ASSERT(broker_authorize_any(e, &other_host, TOPIC, TD_OP_WRITE));
    td_engine_close(e);
    test_rmrf(dir);
}

static void test_validation(void)
{
    char *dir = test_tmpdir("authz");
    td_engine *e = open_engine(dir);
    struct {
        td_acl a;
        const char *why;
    } bad[] = {
        {acl("alice", "*", TOPIC, LIT, "t", TD_OP_READ, ALLOW), "User:"},
        {acl("Group:x", "*", TOPIC, LIT, "t", TD_OP_READ, ALLOW), "User:"},
        {acl("User:", "*", TOPIC, LIT, "t", TD_OP_READ, ALLOW), "principal"},
        {acl("User:a", "example.com", TOPIC, LIT, "t", TD_OP_READ, ALLOW), "host"},
        {acl("User:a", "*", TD_RES_ANY, LIT, "t", TD_OP_READ, ALLOW), "resource type"},
        {acl("User:a", "*", TOPIC, TD_PAT_MATCH, "t", TD_OP_READ, ALLOW), "pattern type"},
        {acl("User:a", "*", TOPIC, TD_PAT_ANY, "t", TD_OP_READ, ALLOW), "pattern type"},
        {acl("User:a", "*", TOPIC, LIT, "t", TD_OP_ANY, ALLOW), "operation"},
        {acl("User:a", "*", TOPIC, LIT, "t", (td_acl_op)13, ALLOW), "operation"},
        {acl("User:a", "*", TOPIC, LIT, "t", TD_OP_READ, TD_PERM_ANY), "permission"},
        {acl("User:a", "*", TOPIC, LIT, "", TD_OP_READ, ALLOW), "resource name"},
        {acl("User:a", "*", TD_RES_CLUSTER, LIT, "c", TD_OP_ALTER, ALLOW), TD_CLUSTER_NAME},
        {acl("User:a", "*", TD_RES_CLUSTER, TD_PAT_PREFIXED, "kafka", TD_OP_ALTER, ALLOW),
         TD_CLUSTER_NAME},
        {acl("User:a", "*", TOPIC, TD_PAT_WILDCARD, "ord*", TD_OP_READ, ALLOW), "wildcard"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        ASSERT_EQ(td_acl_add(e, &bad[i].a), TD_EINVAL);
        ASSERT_CONTAINS(td_last_error(), bad[i].why);
    }
    td_acl a = acl("User:a", "0:0:0:0:0:0:0:1", TOPIC, LIT, "t", TD_OP_READ, ALLOW);
    ASSERT_OK(td_acl_add(e, &a));
    ASSERT_OK(td_acl_add(e, &a)); /* again: success, no duplicate */
    a = acl("User:a", "::1", TOPIC, LIT, "t", TD_OP_READ, ALLOW);
    ASSERT_OK(td_acl_add(e, &a)); /* the same host, in the form peers' addresses have */
    td_acl *v;
    size_t n;
    td_acl_filter f;
    td_acl_filter_init(&f);
    ASSERT_OK(td_acl_list(e, &f, &v, &n));
    ASSERT_EQ(n, 1);
    ASSERT_STR_EQ(v[0].host, "::1");
    free(v);
    ASSERT_OK(broker_authz_configure(e, "", false));
    ASSERT(can(e, "a", "::1", TOPIC, "t", TD_OP_READ));
    f.host = "0::1";
    ASSERT_OK(td_acl_list(e, &f, &v, &n));
    ASSERT_EQ(n, 1);
    free(v);
    f.host = NULL;
    f.principal = "nobody"; /* not a principal an ACL may have: matches nothing */
    ASSERT_OK(td_acl_list(e, &f, &v, &n));
    ASSERT_EQ(n, 0);
    f.operation = (td_acl_op)13;
    ASSERT_EQ(td_acl_list(e, &f, &v, &n), TD_EINVAL);
    td_acl_filter_init(&f);
    f.pattern_type = (td_acl_pattern)9;
    ASSERT_EQ(td_acl_remove(e, &f, &v, &n), TD_EINVAL);
    ASSERT_EQ(td_acl_op_parse("describe_configs"), TD_OP_DESCRIBE_CONFIGS);
    ASSERT_EQ(td_acl_op_parse("IdempotentWrite"), TD_OP_IDEMPOTENT_WRITE);
    ASSERT_EQ(td_acl_resource_parse("transactional-id"), TD_RES_TRANSACTIONAL_ID);
    ASSERT_EQ(td_acl_pattern_parse("PREFIXED"), TD_PAT_PREFIXED);
    ASSERT_EQ(td_acl_op_parse("Reed"), 0);
    td_engine_close(e);
    test_rmrf(dir);
}

static void test_filters_remove_reopen(void)
{
    char *dir = test_tmpdir("authz");
    td_engine *e = open_engine(dir);
    add(e, "User:a", "*", TOPIC, LIT, "orders", TD_OP_READ, ALLOW);
    add(e, "User:a", "*", TOPIC, TD_PAT_PREFIXED, "ord", TD_OP_WRITE, ALLOW);
    add(e, "User:b", "*", TOPIC, LIT, "*", TD_OP_READ, DENY);
    add(e, "User:b", "*", TOPIC, TD_PAT_WILDCARD, "orders.#", TD_OP_READ, ALLOW);
    add(e, "User:b", "*", TD_RES_GROUP, LIT, "orders", TD_OP_READ, ALLOW);
    td_acl *v;
    size_t n;
    td_acl_filter f;
    /* MATCH: what applies to topic "orders". */
    td_acl_filter_init(&f);
    f.resource_type = TOPIC;
    f.pattern_type = TD_PAT_MATCH;
    f.name = "orders";
    ASSERT_OK(td_acl_list(e, &f, &v, &n));
    ASSERT_EQ(n, 4);
    /* Sorted: resource type, then name. */
    ASSERT_STR_EQ(v[0].name, "*");
    ASSERT_STR_EQ(v[1].name, "ord");
    ASSERT_STR_EQ(v[2].name, "orders");
    ASSERT_STR_EQ(v[3].name, "orders.#");
    free(v);
    /* ANY: every pattern type, by exact name. */
    td_acl_filter_init(&f);
    f.name = "orders";
    ASSERT_OK(td_acl_list(e, &f, &v, &n));
    ASSERT_EQ(n, 2);
    ASSERT_EQ(v[0].resource_type, TOPIC);
    ASSERT_EQ(v[1].resource_type, TD_RES_GROUP);
    free(v);
    /* LITERAL with a name does not match the prefixed ACL of the same name. */
    td_acl_filter_init(&f);
    f.pattern_type = LIT;
    f.name = "ord";
    ASSERT_OK(td_acl_list(e, &f, &v, &n));
    ASSERT_EQ(n, 0);
    ASSERT(v == NULL);
    /* Remove by filter returns what it removed; the decision follows at once. */
    ASSERT_OK(broker_authz_configure(e, "", false));
    ASSERT(!can(e, "b", NULL, TOPIC, "orders.x", TD_OP_READ)); /* denied by "*" */
    td_acl_filter_init(&f);
    f.principal = "User:b";
    f.permission = DENY;
    ASSERT_OK(td_acl_remove(e, &f, &v, &n));
    ASSERT_EQ(n, 1);
    ASSERT_STR_EQ(v[0].name, "*");
    ASSERT_EQ(v[0].permission, DENY);
    free(v);
    ASSERT(can(e, "b", NULL, TOPIC, "orders.x", TD_OP_READ));
    ASSERT_OK(td_acl_remove(e, &f, &v, &n)); /* nothing left to match: not an error */
    ASSERT_EQ(n, 0);
    ASSERT(v == NULL);
    td_engine_close(e);
    /* Durable: the four that are left come back. */
    e = open_engine(dir);
    ASSERT_OK(broker_authz_configure(e, "", false));
    td_acl_filter_init(&f);
    ASSERT_OK(td_acl_list(e, &f, &v, &n));
    ASSERT_EQ(n, 4);
    free(v);
    ASSERT(can(e, "b", NULL, TOPIC, "orders.x", TD_OP_READ));
    ASSERT(can(e, "a", NULL, TOPIC, "orders", TD_OP_READ));
    ASSERT(can(e, "a", NULL, TOPIC, "ordinal", TD_OP_WRITE));
    td_engine_close(e);
    test_rmrf(dir);
}

/* A catalog of schema version 5 (before tokens and ACLs) gets the acls table on open. */
static void test_upgrade_from_version_5(void)
{
    char *dir = test_tmpdir("authz");
    td_engine *e = open_engine(dir);
    td_engine_close(e);
    char db[1024];
    snprintf(db, sizeof(db), "%s/catalog.db", dir);
    sqlite3 *s;
    ASSERT_EQ(sqlite3_open(db, &s), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(s, "DROP TABLE acls; PRAGMA user_version=5;", NULL, NULL, NULL),
              SQLITE_OK);
    sqlite3_close(s);
    e = open_engine(dir);
    add(e, "User:a", "*", TOPIC, LIT, "t", TD_OP_READ, ALLOW);
    td_engine_close(e);
    ASSERT_EQ(sqlite3_open(db, &s), SQLITE_OK);
    sqlite3_stmt *st;
    ASSERT_EQ(sqlite3_prepare_v2(s, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
    ASSERT(sqlite3_column_int(st, 0) >= 7); /* acls came with 7; later tables raise it */
    sqlite3_finalize(st);
    sqlite3_close(s);
    test_rmrf(dir);
}

typedef struct checker {
    td_engine *e;
    int stop; /* atomic */
    long checks, allowed;
} checker;

static void *check_loop(void *arg)
{
    checker *c = arg;
    while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
        c->allowed += can(c->e, "r", "10.0.0.1", TOPIC, "always", TD_OP_READ);
        c->checks++;
        /* The ACL that changes never decides this one: a torn set would. */
        if (can(c->e, "r", "10.0.0.1", TOPIC, "never", TD_OP_READ))
            abort();
    }
    return NULL;
}

/* Checks on two threads while a third adds and removes ACLs: every check sees a whole set
 * (TSan: no race between the swap and the readers). */
static void test_concurrent_changes(void)
{
    char *dir = test_tmpdir("authz");
    td_engine *e = open_engine(dir);
    ASSERT_OK(broker_authz_configure(e, "", false));
    add(e, "User:r", "*", TOPIC, LIT, "always", TD_OP_READ, ALLOW);
    checker c[2] = {{.e = e}, {.e = e}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        ASSERT_EQ(pthread_create(&t[i], NULL, check_loop, &c[i]), 0);
    td_acl_filter f;
    td_acl_filter_init(&f);
    f.principal = "User:x";
    for (int i = 0; i < 50; i++) {
        char name[32];
        snprintf(name, sizeof(name), "t%d", i);
        add(e, "User:x", "*", TOPIC, LIT, name, TD_OP_WRITE, ALLOW);
        if (i % 10 == 9)
            ASSERT_OK(td_acl_remove(e, &f, NULL, NULL));
    }
    for (int i = 0; i < 2; i++) {
        __atomic_store_n(&c[i].stop, 1, __ATOMIC_RELEASE);
        pthread_join(t[i], NULL);
        ASSERT_EQ(c[i].allowed, c[i].checks);
    }
    td_engine_close(e);
    test_rmrf(dir);
}

/* A row damaged outside tidings stops the open with TD_ECORRUPT: an ACL the broker cannot read
 * may be a deny, so serving without it could allow what it denies. */
static void test_damaged_row(void)
{
    char *dir = test_tmpdir("authz");
    td_engine *e = open_engine(dir);
    add(e, "User:a", "*", TOPIC, LIT, "t", TD_OP_READ, DENY);
    td_engine_close(e);
    char db[1024];
    snprintf(db, sizeof(db), "%s/catalog.db", dir);
    sqlite3 *s;
    ASSERT_EQ(sqlite3_open(db, &s), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(s, "UPDATE acls SET host=printf('%.300c', 'x')", NULL, NULL, NULL),
              SQLITE_OK);
    sqlite3_close(s);
    td_options o;
    td_options_init(&o);
    o.no_background = 1;
    ASSERT_EQ(td_engine_open(dir, &o, &e), TD_ECORRUPT);
    ASSERT_CONTAINS(td_last_error(), "ACL");
    test_rmrf(dir);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The cost of one check with 400 ACLs (300 on topics: literal, prefixed and wildcard, for 50
 * users), printed for the report; correctness of the answers is asserted, the time is not. */
static void test_check_cost(void)
{
    char *dir = test_tmpdir("authz");
    td_engine *e = open_engine(dir);
    ASSERT_OK(broker_authz_configure(e, "admin", false));
    char user[32], name[64];
    for (int i = 0; i < 100; i++) {
        snprintf(user, sizeof(user), "User:u%d", i % 50);
        snprintf(name, sizeof(name), "topic-%d", i);
        add(e, user, "*", TOPIC, LIT, name, TD_OP_READ, ALLOW);
        snprintf(name, sizeof(name), "pre-%d-", i);
        add(e, user, "*", TOPIC, TD_PAT_PREFIXED, name, TD_OP_WRITE, ALLOW);
        snprintf(name, sizeof(name), "w%d.*", i);
        add(e, user, "10.0.0.1", TOPIC, TD_PAT_WILDCARD, name, TD_OP_DESCRIBE, ALLOW);
        snprintf(name, sizeof(name), "group-%d", i);
        add(e, user, "*", TD_RES_GROUP, LIT, name, TD_OP_READ, ALLOW);
    }
    add(e, "User:u7", "*", TOPIC, LIT, "topic-7", TD_OP_READ, DENY);
    ASSERT(can(e, "u10", "10.0.0.2", TOPIC, "topic-10", TD_OP_READ));
    ASSERT(!can(e, "u7", "10.0.0.2", TOPIC, "topic-7", TD_OP_READ));
    ASSERT(!can(e, "u11", "10.0.0.2", TOPIC, "topic-10", TD_OP_READ));
    enum { N = 20000 }; /* the figures printed are a look, not a check: bench/ measures */
    int allowed = 0;
    int64_t t0 = now_ns();
    for (int i = 0; i < N; i++)
        allowed += can(e, "u10", "10.0.0.2", TOPIC, (i & 1) ? "topic-10" : "topic-60", TD_OP_READ);
    int64_t dt = now_ns() - t0;
    ASSERT_EQ(allowed, N); /* u10 has both (i % 50 == 10 for 10 and 60) */
    t0 = now_ns();
    int denied = 0;
    for (int i = 0; i < N; i++)
        denied += !can(e, "u99", "10.0.0.2", TOPIC, "topic-10", TD_OP_READ);
    int64_t dt2 = now_ns() - t0;
    ASSERT_EQ(denied, N);
    fprintf(stderr, "   401 ACLs: %.0f ns per allowed check, %.0f ns per denied check\n",
            (double)dt / N, (double)dt2 / N);
    td_engine_close(e);
    test_rmrf(dir);
}

TEST_MAIN(TEST(test_super_users_and_anonymous), TEST(test_allow_deny_principal_host),
          TEST(test_implied_operations), TEST(test_patterns), TEST(test_authorize_any),
          TEST(test_validation), TEST(test_filters_remove_reopen),
          TEST(test_upgrade_from_version_5), TEST(test_concurrent_changes), TEST(test_damaged_row),
          TEST(test_check_cost))
