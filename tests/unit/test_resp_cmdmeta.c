/* Unit tests for the Redis listener's command metadata (proto/resp/cmd_meta.h, generated from
 * Redis's command descriptions): every command and subcommand the handler tables serve has an
 * entry, with the arity the dispatcher checks, and the table is sorted for its binary search. */
#include <string.h>

#include "proto/resp/cmd_meta.h"
#include "proto/resp/resp_int.h"
#include "test.h"

static const resp_cmdmeta *find(const char *full)
{
    for (size_t i = 0; i < resp_cmdmeta_count; i++)
        if (!strcmp(resp_cmdmeta_table[i].fullname, full))
            return &resp_cmdmeta_table[i];
    return NULL;
}

static void check(const rcmd *parent, const rcmd *c)
{
    char full[64];
    resp_command_fullname(parent, c, full, sizeof(full));
    const resp_cmdmeta *m = find(full);
    if (!m)
        TEST_FAIL_("no metadata for %s", full);
    if (m->arity != c->arity)
        TEST_FAIL_("%s: arity %d in the table, %d in the metadata", full, c->arity, m->arity);
    ASSERT(m->info && m->docs && strchr(m->info, '\x1e'));
}

static void test_every_served_command_has_metadata(void)
{
    size_t n = 0;
    for (const rcmd *c = resp_commands; c->name; c++) {
        check(NULL, c);
        n++;
        for (const rcmd *s = c->subs; s && s->name; s++) {
            check(c, s);
            n++;
        }
    }
    ASSERT(n > 100);
    ASSERT(resp_cmdmeta_count >= n);
}

static void test_sorted(void)
{
    for (size_t i = 1; i < resp_cmdmeta_count; i++)
        ASSERT(strcmp(resp_cmdmeta_table[i - 1].fullname, resp_cmdmeta_table[i].fullname) < 0);
    size_t k = 0;
    while (resp_acl_categories[k])
        k++;
    ASSERT(k == 21);
}

TEST_MAIN(TEST(test_every_served_command_has_metadata), TEST(test_sorted))
