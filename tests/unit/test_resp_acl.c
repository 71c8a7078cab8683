/*
 * test_resp_acl.c: the Redis listener's ACL pieces that are pure functions: ACL SETUSER's rule
 * parser, its mapping onto tidings ACLs and back, and the rendering as Redis's rules
 * (src/proto/resp/acl_rules.c); and the permission table of src/proto/resp/authz.c (every
 * command and subcommand the listener knows has an entry, the table is sorted for its binary
 * search).
 */
#include <stdlib.h>
#include <string.h>

#include "proto/resp/resp_int.h"
#include "test.h"

/* Splits rules at spaces into v (at most 32). */
static size_t split(const char *rules, char *buf, size_t cap, td_slice *v)
{
    snprintf(buf, cap, "%s", rules);
    size_t n = 0;
    for (char *p = strtok(buf, " "); p && n < 32; p = strtok(NULL, " "))
        v[n++] = td_slice_make(p, strlen(p));
    return n;
}

/* Parses the rules given as one string split at spaces (validation only). */
static int parse(const char *rules, resp_acl_rules *out, size_t *bad, char *why)
{
    static char buf[512];
    static td_slice v[32];
    size_t n = split(rules, buf, sizeof(buf), v);
    return resp_acl_rules_parse(v, n, out, NULL, bad, why, 256);
}

/* Applies the rules to st; they must be accepted. */
static void apply(resp_acl_state *st, const char *rules)
{
    char buf[512], why[256] = "";
    td_slice v[32];
    size_t n = split(rules, buf, sizeof(buf), v), bad = 99;
    resp_acl_rules ru;
    if (resp_acl_rules_parse(v, n, &ru, st, &bad, why, sizeof(why)) != 0)
        TEST_FAIL_("'%s' refused at %zu: %s", rules, bad, why);
}

static void test_rules_accepted(void)
{
    resp_acl_rules r;
    size_t bad = 99;
    char why[256];
    ASSERT_OK(parse("on >s3cret ~* &* +@all", &r, &bad, why));
    ASSERT(r.on && r.perms && !r.narrows);
    ASSERT_EQ(r.password_len, (size_t)6);
    ASSERT_MEM_EQ(r.password, "s3cret", 6);
    ASSERT(!r.resetpass && !r.off && !r.nopass);
    /* Case-insensitive flags, as Redis reads them. */
    ASSERT_OK(parse("ON allkeys ALLCHANNELS allcommands %RW~* sanitize-payload", &r, &bad, why));
    ASSERT(r.on && !r.password && r.perms && !r.narrows);
    /* resetpass followed by a new password: the user ends with one password. */
    ASSERT_OK(parse("resetpass >new", &r, &bad, why));
    ASSERT(r.resetpass && r.password_len == 3 && !r.perms);
    /* An empty password is the parser's to pass on (the user store refuses it). */
    ASSERT_OK(parse(">", &r, &bad, why));
    ASSERT(r.password && r.password_len == 0);
    /* No rules at all. */
    ASSERT_OK(resp_acl_rules_parse(NULL, 0, &r, NULL, &bad, why, sizeof(why)));
    ASSERT(!r.on && !r.password && !r.perms);
    /* The rules tidings maps onto ACLs. */
    ASSERT_OK(parse("~orders.* %R~billing %W~audit %RW~x ~exact &news.* resetkeys resetchannels "
                    "+@read -@write +@admin -@dangerous +@ALL nocommands allcommands -@all",
                    &r, &bad, why));
    ASSERT(r.perms && r.narrows);
    /* reset, then on and a password: redis-py's acl_setuser(reset=True, enabled=True, ...). */
    ASSERT_OK(parse("reset on >pw ~x", &r, &bad, why));
    ASSERT(r.on && r.resetpass && r.password && r.perms && r.narrows);
}

static void refused(const char *rules, size_t want_bad, const char *want_why)
{
    resp_acl_rules r;
    size_t bad = 99;
    char why[256] = "";
    if (parse(rules, &r, &bad, why) != -1)
        TEST_FAIL_("'%s' was accepted", rules);
    ASSERT_EQ(bad, want_bad);
    ASSERT_CONTAINS(why, want_why);
}

static void test_rules_refused(void)
{
    refused("on off", 1, "cannot be disabled");
    refused("on >a >b", 2, "one password");
    refused("<old", 0, "exactly one password");
    refused("#5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8", 0, "SCRAM");
    refused("!5e88", 0, "SCRAM");
    refused("on nopass", 1, "always have a password");
    refused("resetpass", 0, "follow resetpass");
    refused("reset", 0, "follow reset with 'on'");
    refused("on reset >pw", 1, "follow reset with 'on'");
    refused("reset on", 0, "follow resetpass");
    refused("on bogus", 1, "Syntax error");
    /* Globs that are neither a name nor a prefix. */
    refused("~ok ~a?b", 1, "other glob patterns");
    refused("~a*b", 0, "other glob patterns");
    refused("~*a", 0, "other glob patterns");
    refused("~a**", 0, "other glob patterns");
    refused("&[ab]", 0, "other glob patterns");
    refused("%R~x]", 0, "other glob patterns");
    refused("~a\\", 0, "ends with an escape");
    /* A key whose topic name would pass 249 bytes (84 '#', each %23: 252). */
    refused("~####################################################################################",
            0, "longer than 249");
    /* Malformed key permissions, as Redis answers them. */
    refused("%X~a", 0, "Syntax error");
    refused("%~a", 0, "Syntax error");
    refused("%R", 0, "Syntax error");
    refused("%", 0, "Syntax error");
    /* Commands and categories that do not map. */
    refused("+get", 0, "not single commands");
    refused("+@all -debug", 1, "not single commands");
    refused("+", 0, "not single commands");
    refused("+@", 0, "Unknown command or category");
    refused("+@stream", 0, "cannot be expressed");
    refused("-@keyspace", 0, "cannot be expressed");
    refused("+@nosuch", 0, "Unknown command or category name in ACL");
    refused("(~x +get)", 0, "selectors");
    refused("clearselectors", 0, "selectors");
}

/* Keys are any bytes (an escaped glob character, the empty key, UTF-8), each the topic name of
 * its key (docs/redis.md#keys-and-topics); a space or a NUL, escaped or not, is Redis's syntax
 * error. */
static void test_rules_space_and_nul(void)
{
    resp_acl_rules r;
    size_t bad = 99;
    char why[256] = "";
    td_slice v[4] = {td_slice_make("~a b", 4), td_slice_make("~a\0b", 4),
                     td_slice_make("&\\\0", 3), td_slice_make("%R~a\\\t", 6)};
    for (size_t i = 0; i < 4; i++) {
        why[0] = 0;
        ASSERT_EQ(resp_acl_rules_parse(v + i, 1, &r, NULL, &bad, why, sizeof(why)), -1);
        ASSERT_STR_EQ(why, "Syntax error");
    }
    static const struct {
        td_slice rule;
        int ptype;
        const char *name;
    } keys[] = {
        {{(const uint8_t *)"~\\*", 3}, TD_PAT_LITERAL, "%2A"},
        {{(const uint8_t *)"~", 1}, TD_PAT_LITERAL, "%"},
        {{(const uint8_t *)"~.", 2}, TD_PAT_LITERAL, "%2E"},
        {{(const uint8_t *)"~a/b\x7f", 5}, TD_PAT_LITERAL, "a%2Fb%7F"},
        {{(const uint8_t *)"~user:1:*", 9}, TD_PAT_PREFIXED, "user:1:"},
        {{(const uint8_t *)"%R~caf\xc3\xa9/*", 10}, TD_PAT_PREFIXED, "caf%C3%A9%2F"},
    };
    for (size_t i = 0; i < TD_ARRAY_LEN(keys); i++) {
        resp_acl_state st;
        resp_acl_state_init(&st);
        ASSERT_OK(resp_acl_rules_parse(&keys[i].rule, 1, &r, &st, &bad, why, sizeof(why)));
        ASSERT_EQ(st.n, (size_t)1);
        ASSERT_EQ(st.v[0].ptype, keys[i].ptype);
        ASSERT_STR_EQ(st.v[0].name, keys[i].name);
        resp_acl_state_free(&st);
    }
    /* Every truncation of a valid rule is refused or accepted, never read past its end. */
    const char *rules[] = {"%RW~orders.*", "+@write", "allchannels", "&news.\\*x*", "resetkeys"};
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
        for (size_t k = 0; k <= strlen(rules[i]); k++) {
            char *p = malloc(k ? k : 1); /* exactly k bytes: ASan sees a read past them */
            memcpy(p, rules[i], k);
            td_slice s = td_slice_make(p, k);
            resp_acl_state st;
            resp_acl_state_init(&st);
            int rc = resp_acl_rules_parse(&s, 1, &r, &st, &bad, why, sizeof(why));
            ASSERT(rc == 0 || (rc == -1 && bad == 0 && why[0]));
            resp_acl_state_free(&st);
            free(p);
        }
}

/* Whether the ACLs hold (type, pattern type, name, op), Allow from "*" for User:u. */
static bool has(const td_acl *v, size_t n, int type, int ptype, const char *name, int op)
{
    for (size_t i = 0; i < n; i++)
        if ((int)v[i].resource_type == type && (int)v[i].pattern_type == ptype &&
            !strcmp(v[i].name, name) && (int)v[i].operation == op &&
            v[i].permission == TD_PERM_ALLOW && !strcmp(v[i].host, "*") &&
            !strcmp(v[i].principal, "User:u"))
            return true;
    return false;
}

static void encode(const char *rules, td_acl **v, size_t *n)
{
    resp_acl_state st;
    resp_acl_state_init(&st);
    apply(&st, rules);
    ASSERT_OK(resp_acl_encode(&st, "User:u", v, n));
    resp_acl_state_free(&st);
}

#define T TD_RES_TOPIC
#define G TD_RES_GROUP
#define LIT TD_PAT_LITERAL
#define PRE TD_PAT_PREFIXED

static void test_mapping(void)
{
    td_acl *v;
    size_t n;
    encode("~orders.* +@read", &v, &n);
    ASSERT_EQ(n, (size_t)3);
    ASSERT(has(v, n, T, PRE, "orders.", TD_OP_READ));
    ASSERT(has(v, n, G, LIT, "*", TD_OP_DESCRIBE) && has(v, n, G, LIT, "*", TD_OP_READ));
    free(v);
    /* Everything: All on every topic, the groups, an administrator. */
    encode("~* &* +@all", &v, &n);
    ASSERT_EQ(n, (size_t)5);
    ASSERT(has(v, n, T, LIT, "*", TD_OP_ALL));
    ASSERT(has(v, n, G, LIT, "*", TD_OP_DELETE));
    ASSERT(has(v, n, TD_RES_CLUSTER, LIT, TD_CLUSTER_NAME, TD_OP_ALTER));
    free(v);
    /* @all without @dangerous: no cluster, and the key's operations one by one. */
    encode("allkeys +@all -@dangerous", &v, &n);
    ASSERT_EQ(n, (size_t)8);
    ASSERT(!has(v, n, T, LIT, "*", TD_OP_ALL));
    const int w4[] = {TD_OP_READ, TD_OP_WRITE, TD_OP_CREATE, TD_OP_DELETE, TD_OP_ALTER};
    for (size_t i = 0; i < 5; i++)
        ASSERT(has(v, n, T, LIT, "*", w4[i]));
    free(v);
    /* %R~ and %W~ limit the operations; a literal name. */
    encode("%R~billing %W~audit ~exact +@read +@write", &v, &n);
    ASSERT(has(v, n, T, LIT, "billing", TD_OP_READ) && !has(v, n, T, LIT, "billing", TD_OP_WRITE));
    ASSERT(has(v, n, T, LIT, "audit", TD_OP_WRITE) && !has(v, n, T, LIT, "audit", TD_OP_READ));
    ASSERT(has(v, n, T, LIT, "exact", TD_OP_READ) && has(v, n, T, LIT, "exact", TD_OP_CREATE));
    ASSERT_EQ(n, (size_t)(1 + 4 + 5 + 3));
    free(v);
    /* A channel: SUBSCRIBE and PUBLISH on the topic of its name, whatever the commands. */
    encode("&news.* nocommands", &v, &n);
    ASSERT_EQ(n, (size_t)2);
    ASSERT(has(v, n, T, PRE, "news.", TD_OP_READ) && has(v, n, T, PRE, "news.", TD_OP_WRITE));
    free(v);
    /* Keys without commands grant nothing; -@all after +@all takes everything. */
    encode("~x +@all -@all", &v, &n);
    ASSERT_EQ(n, (size_t)0);
    free(v);
    /* reset takes every permission away; what follows adds. */
    encode("~a &b +@all reset on >pw ~c +@write", &v, &n);
    ASSERT(!has(v, n, T, LIT, "a", TD_OP_ALL) && !has(v, n, T, LIT, "b", TD_OP_READ));
    ASSERT(has(v, n, T, LIT, "c", TD_OP_WRITE) && !has(v, n, T, LIT, "c", TD_OP_READ));
    ASSERT(!has(v, n, TD_RES_CLUSTER, LIT, TD_CLUSTER_NAME, TD_OP_ALTER));
    free(v);
    /* resetkeys and resetchannels, left to right; an escaped glob character is literal. */
    encode("~a ~b* resetkeys ~c\\*d &e &f resetchannels &g +@write", &v, &n);
    ASSERT(!has(v, n, T, LIT, "a", TD_OP_WRITE) && !has(v, n, T, PRE, "b", TD_OP_WRITE));
    ASSERT(has(v, n, T, LIT, "c%2Ad", TD_OP_WRITE) && has(v, n, T, LIT, "g", TD_OP_WRITE));
    ASSERT(!has(v, n, T, LIT, "e", TD_OP_READ));
    free(v);
}

/* The set of ACLs a and b are the same (each a set: encoding never repeats one). */
static bool same_set(const td_acl *a, size_t na, const td_acl *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++) {
        bool found = false;
        for (size_t k = 0; k < nb && !found; k++)
            found = a[i].resource_type == b[k].resource_type &&
                    a[i].pattern_type == b[k].pattern_type && a[i].operation == b[k].operation &&
                    !strcmp(a[i].name, b[k].name);
        if (!found)
            return false;
    }
    return true;
}

static char *render(const resp_acl_state *st, int part)
{
    static char out[4][512];
    td_buf b;
    td_buf_init(&b);
    ASSERT_OK(resp_acl_render(st, part, &b));
    snprintf(out[part], sizeof(out[part]), "%.*s", (int)b.len, (const char *)b.p);
    td_buf_free(&b);
    return out[part];
}

/* Rules -> ACLs -> state -> ACLs gives the same ACLs, and the state reads back as Redis's
 * words. */
static void round_trip(const char *rules, const char *keys, const char *channels,
                       const char *commands, const char *list)
{
    td_acl *a, *b;
    size_t na, nb;
    encode(rules, &a, &na);
    resp_acl_state st;
    bool managed[64];
    ASSERT(na <= 64);
    ASSERT_OK(resp_acl_decode(a, na, "User:u", &st, managed));
    for (size_t i = 0; i < na; i++)
        ASSERT(managed[i]);
    ASSERT_OK(resp_acl_encode(&st, "User:u", &b, &nb));
    if (!same_set(a, na, b, nb))
        TEST_FAIL_("'%s': %zu ACLs, %zu after the round trip", rules, na, nb);
    ASSERT_STR_EQ(render(&st, RESP_ACL_RENDER_KEYS), keys);
    ASSERT_STR_EQ(render(&st, RESP_ACL_RENDER_CHANNELS), channels);
    ASSERT_STR_EQ(render(&st, RESP_ACL_RENDER_COMMANDS), commands);
    ASSERT_STR_EQ(render(&st, RESP_ACL_RENDER_LIST), list);
    resp_acl_state_free(&st);
    free(a);
    free(b);
}

static void test_round_trips(void)
{
    round_trip("~orders.* +@read", "~orders.*", "", "-@all +@read",
               "~orders.* resetchannels -@all +@read");
    round_trip("~* &* +@all", "~*", "&*", "+@all", "~* &* +@all");
    round_trip("%R~billing ~orders.* +@read +@write", "%R~billing ~orders.*", "",
               "-@all +@write +@read", "%R~billing ~orders.* resetchannels -@all +@write +@read");
    round_trip("%W~audit +@write +@read", "%W~audit", "", "-@all +@write +@read",
               "%W~audit resetchannels -@all +@write +@read");
    round_trip("&news.*", "", "&news.*", "-@all", "resetchannels &news.* -@all");
    /* A channel's Read is a key's too once there are read commands: shown as such. */
    round_trip("&news.* +@read +@write", "%R~news.*", "&news.*", "-@all +@write +@read",
               "%R~news.* resetchannels &news.* -@all +@write +@read");
    round_trip("+@admin", "", "", "-@all +@admin", "resetchannels -@all +@admin");
    round_trip("", "", "", "-@all", "resetchannels -@all");
    round_trip("~a\\*b ~a\\?* +@write", "~a\\*b ~a\\?*", "", "-@all +@write",
               "~a\\*b ~a\\?* resetchannels -@all +@write");
    /* A key written under @write alone and a channel of the same name: Read and the write
     * operations, which are not a key readable under @read (the fuzz target found it). */
    round_trip("~x &x +@write", "~x", "&x", "-@all +@write", "~x resetchannels &x -@all +@write");
    round_trip("~ & +@write", "~", "&", "-@all +@write", "~ resetchannels & -@all +@write");
    round_trip("~caf\xc3\xa9* +@read", "~caf\xc3\xa9*", "", "-@all +@read",
               "~caf\xc3\xa9* resetchannels -@all +@read");
}

/* SETUSER applies its rules to what the ACLs say: +@write after ~orders.* +@read writes
 * orders.*, since ~ (not %R~) granted the key both ways. */
static void test_incremental(void)
{
    td_acl *a, *b;
    size_t na, nb;
    encode("~orders.* %R~billing +@read", &a, &na);
    resp_acl_state st;
    bool managed[16];
    ASSERT_OK(resp_acl_decode(a, na, "User:u", &st, managed));
    apply(&st, "+@write");
    ASSERT_OK(resp_acl_encode(&st, "User:u", &b, &nb));
    ASSERT(has(b, nb, T, PRE, "orders.", TD_OP_WRITE));
    /* billing was %R~ but the commands could not tell: it is written too. Documented. */
    ASSERT(has(b, nb, T, LIT, "billing", TD_OP_WRITE));
    ASSERT(has(b, nb, G, LIT, "*", TD_OP_DELETE));
    resp_acl_state_free(&st);
    free(b);
    /* resetkeys keeps the commands. */
    ASSERT_OK(resp_acl_decode(a, na, "User:u", &st, managed));
    apply(&st, "resetkeys ~other");
    ASSERT_OK(resp_acl_encode(&st, "User:u", &b, &nb));
    ASSERT(has(b, nb, T, LIT, "other", TD_OP_READ) && !has(b, nb, T, PRE, "orders.", TD_OP_READ));
    resp_acl_state_free(&st);
    free(a);
    free(b);
}

static td_acl mk(const char *principal, const char *host, int type, int ptype, const char *name,
                 int op, int perm)
{
    td_acl a;
    memset(&a, 0, sizeof(a));
    snprintf(a.principal, sizeof(a.principal), "%s", principal);
    snprintf(a.host, sizeof(a.host), "%s", host);
    a.resource_type = (td_acl_resource)type;
    a.pattern_type = (td_acl_pattern)ptype;
    snprintf(a.name, sizeof(a.name), "%s", name);
    a.operation = (td_acl_op)op;
    a.permission = (td_acl_permission)perm;
    return a;
}

/* ACLs SETUSER does not make are not its to change, and shown as far as they translate. */
static void test_unmanaged(void)
{
    const int AL = TD_PERM_ALLOW;
    td_acl v[] = {
        mk("User:u", "*", T, LIT, "a", TD_OP_DESCRIBE, AL),           /* 0: not Redis's */
        mk("User:u", "*", T, LIT, "b", TD_OP_READ, AL),               /* 1: %R~b */
        mk("User:u", "*", T, LIT, "b", TD_OP_CREATE, AL),             /* 2: with 1, not encodable */
        mk("User:u", "*", T, LIT, "c", TD_OP_READ, TD_PERM_DENY),     /* 3: a deny */
        mk("User:v", "*", T, LIT, "d", TD_OP_READ, AL),               /* 4: another principal */
        mk("User:u", "10.0.0.1", T, LIT, "e", TD_OP_READ, AL),        /* 5: one host */
        mk("User:u", "*", T, TD_PAT_WILDCARD, "f.*", TD_OP_READ, AL), /* 6: wildcard */
        mk("User:u", "*", T, PRE, "g", TD_OP_ALL, AL),                /* 7: All: managed */
        mk("User:u", "*", G, LIT, "grp", TD_OP_READ, AL),             /* 8: a named group */
    };
    size_t n = sizeof(v) / sizeof(v[0]);
    bool managed[9];
    resp_acl_state st;
    ASSERT_OK(resp_acl_decode(v, n, "User:u", &st, managed));
    for (size_t i = 0; i < n; i++)
        if (managed[i] != (i == 7))
            TEST_FAIL_("ACL %zu: managed is %d", i, managed[i]);
    ASSERT_STR_EQ(render(&st, RESP_ACL_RENDER_KEYS), "%R~b ~g*");
    ASSERT_STR_EQ(render(&st, RESP_ACL_RENDER_CHANNELS), "&g*");
    ASSERT_STR_EQ(render(&st, RESP_ACL_RENDER_COMMANDS), "-@all +@write +@read");
    /* resetkeys resetchannels: g goes, b stays (not SETUSER's). */
    apply(&st, "resetkeys resetchannels");
    td_acl *out;
    size_t k;
    ASSERT_OK(resp_acl_encode(&st, "User:u", &out, &k));
    ASSERT(!has(out, k, T, PRE, "g", TD_OP_ALL) && !has(out, k, T, LIT, "b", TD_OP_READ));
    ASSERT_STR_EQ(render(&st, RESP_ACL_RENDER_KEYS), "%R~b");
    free(out);
    resp_acl_state_free(&st);
}

static void test_table_complete(void)
{
    char full[64];
    size_t n = 0;
    for (const rcmd *c = resp_commands; c->name; c++) {
        if (!c->subs) {
            if (!resp_perm_find(c->name))
                TEST_FAIL_("command '%s' has no entry in authz.c's table", c->name);
            n++;
            continue;
        }
        for (const rcmd *s = c->subs; s->name; s++) {
            resp_command_fullname(c, s, full, sizeof(full));
            if (!resp_perm_find(full))
                TEST_FAIL_("command '%s' has no entry in authz.c's table", full);
            n++;
        }
    }
    ASSERT(n > 60);
    /* Names the table does not have are not found (the binary search works on its order). */
    ASSERT(resp_perm_find("xadd") != NULL);
    ASSERT(resp_perm_find("acl|setuser") != NULL);
    ASSERT(resp_perm_find("nosuch") == NULL);
    ASSERT(resp_perm_find("acl|nosuch") == NULL);
    ASSERT(resp_perm_find("") == NULL);
}

TEST_MAIN(TEST(test_rules_accepted), TEST(test_rules_refused), TEST(test_rules_space_and_nul),
          TEST(test_mapping), TEST(test_round_trips), TEST(test_incremental), TEST(test_unmanaged),
          TEST(test_table_complete))
