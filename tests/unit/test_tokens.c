/*
 * test_tokens.c: API tokens (broker/tokens.c over storage/catalog.c): the token's form,
 * verification (right, wrong secret, unknown id, malformed, expired), listing without
 * secrets, revocation (by owner only when asked), removal with the owning user, durability
 * across a reopen, nothing but the digest on disk, and the upgrade of a version 5 catalog.
 */
#include <sqlite3.h>
#include <unistd.h>

#include "base/base.h"
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

static void test_create_verify_revoke(void)
{
    char *dir = test_tmpdir("tokens");
    td_engine *e = open_engine(dir);
    ASSERT_OK(td_user_add(e, "alice", "pw", 2, TD_SCRAM_ALL, 0));
    ASSERT_OK(td_user_add(e, "bob", "pw", 2, TD_SCRAM_ALL, 0));
    char tok[TD_TOKEN_LEN + 1], tok2[TD_TOKEN_LEN + 1];
    td_token_info info, got;
    ASSERT_OK(td_token_create(e, "alice", 0, "ci deploys", tok, &info));
    ASSERT_EQ(strlen(tok), TD_TOKEN_LEN);
    ASSERT(memcmp(tok, "tdk_", 4) == 0);
    ASSERT(memcmp(tok + 4, info.id, TD_TOKEN_ID_LEN) == 0);
    ASSERT_EQ(tok[4 + TD_TOKEN_ID_LEN], '_');
    ASSERT_STR_EQ(info.user, "alice");
    ASSERT_STR_EQ(info.description, "ci deploys");
    ASSERT_EQ(info.expires_ms, 0);
    ASSERT(info.created_ms > 0);
    ASSERT_OK(td_token_create(e, "bob", td_wall_ms() + 3600000, NULL, tok2, NULL));
    ASSERT(strcmp(tok, tok2) != 0);

    ASSERT_OK(td_token_verify(e, tok, strlen(tok), &got));
    ASSERT_STR_EQ(got.user, "alice");
    ASSERT_STR_EQ(got.id, info.id);
    /* One character of the secret changed, the id of another token, cut short, too long. */
    char bad[TD_TOKEN_LEN + 2];
    memcpy(bad, tok, sizeof(tok));
    bad[TD_TOKEN_LEN - 1] = bad[TD_TOKEN_LEN - 1] == 'A' ? 'B' : 'A';
    ASSERT_EQ(td_token_verify(e, bad, TD_TOKEN_LEN, &got), TD_EAUTH);
    ASSERT_EQ(got.id[0], 0);
    memcpy(bad, tok2, 5 + TD_TOKEN_ID_LEN);
    ASSERT_EQ(td_token_verify(e, bad, TD_TOKEN_LEN, &got), TD_EAUTH);
    ASSERT_EQ(td_token_verify(e, tok, TD_TOKEN_LEN - 1, &got), TD_EAUTH);
    memcpy(bad, tok, TD_TOKEN_LEN);
    bad[TD_TOKEN_LEN] = 'x';
    ASSERT_EQ(td_token_verify(e, bad, TD_TOKEN_LEN + 1, &got), TD_EAUTH);
    ASSERT_EQ(td_token_verify(e, "", 0, &got), TD_EAUTH);
    ASSERT_EQ(td_token_verify(e, "tdk_", 4, &got), TD_EAUTH);
    memcpy(bad, tok, TD_TOKEN_LEN);
    bad[4] = 'G'; /* not hex */
    ASSERT_EQ(td_token_verify(e, bad, TD_TOKEN_LEN, &got), TD_EAUTH);

    td_token_info *v;
    size_t n;
    ASSERT_OK(td_token_list(e, NULL, &v, &n));
    ASSERT_EQ(n, 2);
    ASSERT_STR_EQ(v[0].user, "alice");
    ASSERT_STR_EQ(v[1].user, "bob");
    free(v);
    ASSERT_OK(td_token_list(e, "bob", &v, &n));
    ASSERT_EQ(n, 1);
    free(v);

    /* bob cannot revoke alice's token; she can; then it no longer verifies. */
    ASSERT_EQ(td_token_revoke(e, info.id, "bob"), TD_ENOTFOUND);
    ASSERT_OK(td_token_verify(e, tok, strlen(tok), &got));
    ASSERT_OK(td_token_revoke(e, info.id, "alice"));
    ASSERT_EQ(td_token_verify(e, tok, strlen(tok), &got), TD_EAUTH);
    ASSERT_EQ(td_token_revoke(e, info.id, NULL), TD_ENOTFOUND);
    ASSERT_EQ(td_token_revoke(e, "nothex", NULL), TD_ENOTFOUND);

    /* Removing bob removes his token. */
    ASSERT_OK(td_token_verify(e, tok2, strlen(tok2), &got));
    ASSERT_OK(td_user_remove(e, "bob"));
    ASSERT_EQ(td_token_verify(e, tok2, strlen(tok2), &got), TD_EAUTH);
    ASSERT_OK(td_token_list(e, NULL, &v, &n));
    ASSERT_EQ(n, 0);
    free(v);
    td_engine_close(e);
    test_rmrf(dir);
}

static void test_bad_arguments(void)
{
    char *dir = test_tmpdir("tokens");
    td_engine *e = open_engine(dir);
    char tok[TD_TOKEN_LEN + 1];
    ASSERT_EQ(td_token_create(e, "ghost", 0, NULL, tok, NULL), TD_ENOTFOUND);
    ASSERT_OK(td_user_add(e, "u", "pw", 2, TD_SCRAM_ALL, 0));
    ASSERT_EQ(td_token_create(e, "u", td_wall_ms() - 1, NULL, tok, NULL), TD_EINVAL);
    ASSERT_EQ(td_token_create(e, "u", -5, NULL, tok, NULL), TD_EINVAL);
    ASSERT_EQ(td_token_create(e, "u", 0, "line\nbreak", tok, NULL), TD_EINVAL);
    char longd[TD_TOKEN_DESCRIPTION_MAX + 2];
    memset(longd, 'd', sizeof(longd) - 1);
    longd[sizeof(longd) - 1] = 0;
    ASSERT_EQ(td_token_create(e, "u", 0, longd, tok, NULL), TD_EINVAL);
    longd[TD_TOKEN_DESCRIPTION_MAX] = 0;
    ASSERT_OK(td_token_create(e, "u", 0, longd, tok, NULL));
    td_token_info *v;
    size_t n;
    ASSERT_OK(td_token_list(e, NULL, &v, &n));
    ASSERT_EQ(n, 1);
    free(v);
    td_engine_close(e);
    test_rmrf(dir);
}

/* An expired token is refused, but told apart (its info filled) so the server can say so. */
static void test_expired(void)
{
    char *dir = test_tmpdir("tokens");
    td_engine *e = open_engine(dir);
    ASSERT_OK(td_user_add(e, "u", "pw", 2, TD_SCRAM_ALL, 0));
    char tok[TD_TOKEN_LEN + 1];
    td_token_info got;
    ASSERT_OK(td_token_create(e, "u", td_wall_ms() + 150, NULL, tok, NULL));
    ASSERT_OK(td_token_verify(e, tok, strlen(tok), &got));
    usleep(300 * 1000);
    ASSERT_EQ(td_token_verify(e, tok, strlen(tok), &got), TD_EAUTH);
    ASSERT_STR_EQ(got.user, "u");
    ASSERT(got.expires_ms <= td_wall_ms());
    ASSERT_CONTAINS(td_last_error(), "expired");
    td_engine_close(e);
    test_rmrf(dir);
}

static int count_cb(void *arg, int ncol, char **vals, char **names)
{
    (void)ncol;
    (void)names;
    int *n = arg;
    *n = vals[0] ? atoi(vals[0]) : -1;
    return 0;
}

/* Tokens survive a reopen; the catalog holds the digest, never the secret. */
static void test_reopen_and_no_secret_on_disk(void)
{
    char *dir = test_tmpdir("tokens");
    td_engine *e = open_engine(dir);
    ASSERT_OK(td_user_add(e, "u", "pw", 2, TD_SCRAM_ALL, 0));
    char tok[TD_TOKEN_LEN + 1];
    ASSERT_OK(td_token_create(e, "u", 0, "kept", tok, NULL));
    td_engine_close(e);
    char db[1024];
    snprintf(db, sizeof(db), "%s/catalog.db", dir);
    /* Grep every file of the directory for the secret (the WAL included). */
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "grep -rqF '%s' '%s'", tok + 5 + TD_TOKEN_ID_LEN, dir);
    ASSERT(system(cmd) != 0);
    sqlite3 *s;
    ASSERT_EQ(sqlite3_open(db, &s), SQLITE_OK);
    int n = 0;
    ASSERT_EQ(
        sqlite3_exec(s, "SELECT count(*) FROM tokens WHERE length(hash)=32", count_cb, &n, NULL),
        SQLITE_OK);
    ASSERT_EQ(n, 1);
    ASSERT_EQ(sqlite3_exec(s, "PRAGMA user_version", count_cb, &n, NULL), SQLITE_OK);
    ASSERT(n >= 6); /* tokens came with schema 6 */
    sqlite3_close(s);
    e = open_engine(dir);
    td_token_info got;
    ASSERT_OK(td_token_verify(e, tok, strlen(tok), &got));
    ASSERT_STR_EQ(got.description, "kept");
    td_engine_close(e);
    test_rmrf(dir);
}

static void test_upgrade_from_version_5(void)
{
    char *dir = test_tmpdir("tokens");
    td_engine *e = open_engine(dir);
    ASSERT_OK(td_user_add(e, "u", "pw", 2, TD_SCRAM_ALL, 0));
    td_engine_close(e);
    char db[1024];
    snprintf(db, sizeof(db), "%s/catalog.db", dir);
    sqlite3 *s;
    ASSERT_EQ(sqlite3_open(db, &s), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(s, "DROP TABLE tokens; PRAGMA user_version=5;", NULL, NULL, NULL),
              SQLITE_OK);
    sqlite3_close(s);
    e = open_engine(dir);
    ASSERT_OK(td_user_verify(e, "u", "pw", 2));
    char tok[TD_TOKEN_LEN + 1];
    td_token_info got;
    ASSERT_OK(td_token_create(e, "u", 0, NULL, tok, NULL));
    ASSERT_OK(td_token_verify(e, tok, strlen(tok), &got));
    td_engine_close(e);
    test_rmrf(dir);
}

TEST_MAIN(TEST(test_create_verify_revoke), TEST(test_bad_arguments), TEST(test_expired),
          TEST(test_reopen_and_no_secret_on_disk), TEST(test_upgrade_from_version_5))
