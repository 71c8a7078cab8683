/*
 * test_resp_acl.c: the Redis listener's ACL pieces that are pure functions: ACL SETUSER's rule
 * parser (src/proto/resp/cmd_acl.c), and the permission table of src/proto/resp/authz.c (every
 * command and subcommand the listener knows has an entry, the table is sorted for its binary
 * search).
 */
#include <string.h>

#include "proto/resp/resp_int.h"
#include "test.h"

/* Parses the rules given as one string split at spaces. */
static int parse(const char *rules, resp_acl_rules *out, size_t *bad, char *why)
{
    static char buf[512];
    static td_slice v[32];
    snprintf(buf, sizeof(buf), "%s", rules);
    size_t n = 0;
    for (char *p = strtok(buf, " "); p && n < 32; p = strtok(NULL, " "))
        v[n++] = td_slice_make(p, strlen(p));
    return resp_acl_rules_parse(v, n, out, bad, why, 256);
}

static void test_rules_accepted(void)
{
    resp_acl_rules r;
    size_t bad = 99;
    char why[256];
    ASSERT_OK(parse("on >s3cret ~* &* +@all", &r, &bad, why));
    ASSERT(r.on);
    ASSERT_EQ(r.password_len, (size_t)6);
    ASSERT_MEM_EQ(r.password, "s3cret", 6);
    ASSERT(!r.resetpass && !r.off && !r.nopass);
    /* Case-insensitive flags, as Redis reads them; the rules allowing everything are no-ops. */
    ASSERT_OK(parse("ON allkeys ALLCHANNELS allcommands %RW~* sanitize-payload", &r, &bad, why));
    ASSERT(r.on && !r.password);
    /* resetpass followed by a new password: the user ends with one password. */
    ASSERT_OK(parse("resetpass >new", &r, &bad, why));
    ASSERT(r.resetpass && r.password_len == 3);
    /* An empty password is the parser's to pass on (the user store refuses it). */
    ASSERT_OK(parse(">", &r, &bad, why));
    ASSERT(r.password && r.password_len == 0);
    /* No rules at all. */
    ASSERT_OK(resp_acl_rules_parse(NULL, 0, &r, &bad, why, sizeof(why)));
    ASSERT(!r.on && !r.password);
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
    refused("on >p resetpass ~foo*", 3, "Kafka's model");
    refused("&chan", 0, "Kafka's model");
    refused("-@dangerous", 0, "Kafka's model");
    refused("+get", 0, "Kafka's model");
    refused("%R~*", 0, "Kafka's model");
    refused("(~x +get)", 0, "Kafka's model");
    refused("resetkeys", 0, "Kafka's model");
    refused("resetchannels", 0, "Kafka's model");
    refused("nocommands", 0, "Kafka's model");
    refused("reset", 0, "cannot be disabled");
    refused("on bogus", 1, "Syntax error");
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

TEST_MAIN(TEST(test_rules_accepted), TEST(test_rules_refused), TEST(test_table_complete))
