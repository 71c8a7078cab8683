/*
 * test_users.c: the user store (broker/users.c over storage/catalog.c): add, passwd, remove,
 * list, credentials and password checks through the public API; what is on disk (no password);
 * durability across a reopen and across kill -9 right after td_user_add returned; upgrade of a
 * version 4 catalog.
 */
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "base/base.h"
#include "base/scram.h"
#include "storage/storage.h"
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

static void test_add_list_passwd_remove(void)
{
    char *dir = test_tmpdir("users");
    td_engine *e = open_engine(dir);
    td_user_info *v;
    size_t n;
    ASSERT_OK(td_user_list(e, &v, &n));
    ASSERT_EQ(n, 0);
    free(v);
    ASSERT_OK(td_user_add(e, "bob", "hunter2", 7, TD_SCRAM_ALL, 0));
    ASSERT_OK(td_user_add(e, "alice", "s3cret", 6, TD_SCRAM_SHA_256, 8192));
    ASSERT_EQ(td_user_add(e, "bob", "other", 5, TD_SCRAM_ALL, 0), TD_EEXIST);
    ASSERT_CONTAINS(td_last_error(), "already exists");
    ASSERT_OK(td_user_list(e, &v, &n));
    ASSERT_EQ(n, 2);
    ASSERT_STR_EQ(v[0].name, "alice");
    ASSERT_EQ(v[0].mechanisms, TD_SCRAM_SHA_256);
    ASSERT_EQ(v[0].sha256_iterations, 8192);
    ASSERT_EQ(v[0].sha512_iterations, 0);
    ASSERT_STR_EQ(v[1].name, "bob");
    ASSERT_EQ(v[1].mechanisms, TD_SCRAM_ALL);
    ASSERT_EQ(v[1].sha256_iterations, 4096);
    ASSERT_EQ(v[1].sha512_iterations, 4096);
    free(v);
    /* The first password still holds after the refused second add. */
    ASSERT_OK(td_user_verify(e, "bob", "hunter2", 7));
    ASSERT_EQ(td_user_verify(e, "bob", "other", 5), TD_EAUTH);
    ASSERT_EQ(td_user_verify(e, "bob", "hunter", 6), TD_EAUTH);
    ASSERT_EQ(td_user_verify(e, "carol", "hunter2", 7), TD_EAUTH);
    ASSERT_EQ(td_user_verify(e, "", "hunter2", 7), TD_EAUTH);
    ASSERT_EQ(td_user_verify(e, "bob", "", 0), TD_EAUTH);
    ASSERT_OK(td_user_verify(e, "alice", "s3cret", 6)); /* SCRAM-SHA-256 only */

    /* The stored credential is the one the password derives with its salt. */
    td_scram_credential c, d;
    ASSERT_OK(td_user_credential(e, "bob", TD_SCRAM_SHA_512, &c));
    ASSERT_EQ(c.salt_len, TD_SCRAM_SALT_LEN);
    ASSERT_EQ(c.key_len, 64);
    ASSERT_OK(scram_derive(TD_SCRAM_SHA_512, "hunter2", 7, c.salt, c.salt_len, c.iterations, &d));
    ASSERT_MEM_EQ(c.stored_key, d.stored_key, 64);
    ASSERT_MEM_EQ(c.server_key, d.server_key, 64);
    ASSERT_EQ(td_user_credential(e, "alice", TD_SCRAM_SHA_512, &c), TD_ENOTFOUND);
    ASSERT_EQ(td_user_credential(e, "nobody", TD_SCRAM_SHA_256, &c), TD_ENOTFOUND);
    ASSERT_EQ(td_user_credential(e, "bob", 3, &c), TD_EINVAL);

    /* passwd replaces every credential: the old password and the dropped mechanism go. */
    ASSERT_OK(td_user_credential(e, "bob", TD_SCRAM_SHA_256, &d));
    ASSERT_OK(td_user_passwd(e, "bob", "correct horse", 13, TD_SCRAM_SHA_256, 0));
    ASSERT_EQ(td_user_verify(e, "bob", "hunter2", 7), TD_EAUTH);
    ASSERT_OK(td_user_verify(e, "bob", "correct horse", 13));
    ASSERT_EQ(td_user_credential(e, "bob", TD_SCRAM_SHA_512, &c), TD_ENOTFOUND);
    ASSERT_OK(td_user_credential(e, "bob", TD_SCRAM_SHA_256, &c));
    ASSERT(memcmp(c.salt, d.salt, c.salt_len) != 0); /* a new salt */
    ASSERT_EQ(td_user_passwd(e, "carol", "pw", 2, TD_SCRAM_ALL, 0), TD_ENOTFOUND);

    ASSERT_OK(td_user_remove(e, "alice"));
    ASSERT_EQ(td_user_remove(e, "alice"), TD_ENOTFOUND);
    ASSERT_EQ(td_user_verify(e, "alice", "s3cret", 6), TD_EAUTH);
    ASSERT_OK(td_user_list(e, &v, &n));
    ASSERT_EQ(n, 1);
    ASSERT_STR_EQ(v[0].name, "bob");
    ASSERT_EQ(v[0].mechanisms, TD_SCRAM_SHA_256);
    free(v);
    td_engine_close(e);
    test_rmrf(dir);
}

static void test_bad_arguments_change_nothing(void)
{
    char *dir = test_tmpdir("users");
    td_engine *e = open_engine(dir);
    ASSERT_EQ(td_user_add(e, "", "pw", 2, TD_SCRAM_ALL, 0), TD_ENAME);
    ASSERT_EQ(td_user_add(e, "a\nb", "pw", 2, TD_SCRAM_ALL, 0), TD_ENAME);
    ASSERT_EQ(td_user_add(e, "\xc3", "pw", 2, TD_SCRAM_ALL, 0), TD_ENAME);
    ASSERT_EQ(td_user_add(e, "u", "", 0, TD_SCRAM_ALL, 0), TD_EINVAL);
    ASSERT_EQ(td_user_add(e, "u", "a\0b", 3, TD_SCRAM_ALL, 0), TD_EINVAL);
    ASSERT_EQ(td_user_add(e, "u", "pw", 2, 0, 0), TD_EINVAL);
    ASSERT_EQ(td_user_add(e, "u", "pw", 2, 4, 0), TD_EINVAL);
    ASSERT_EQ(td_user_add(e, "u", "pw", 2, TD_SCRAM_ALL, 100), TD_EINVAL);
    ASSERT_EQ(td_user_add(e, "u", "pw", 2, TD_SCRAM_ALL, 1 << 20), TD_EINVAL);
    ASSERT_EQ(td_user_remove(e, ""), TD_ENAME);
    ASSERT_OK(td_user_add(e, "u", "pw", 2, TD_SCRAM_ALL, 0));
    /* A refused passwd leaves the old credentials. */
    ASSERT_EQ(td_user_passwd(e, "u", "", 0, TD_SCRAM_ALL, 0), TD_EINVAL);
    ASSERT_EQ(td_user_passwd(e, "u", "new", 3, TD_SCRAM_ALL, 4095), TD_EINVAL);
    ASSERT_OK(td_user_verify(e, "u", "pw", 2));
    td_user_info *v;
    size_t n;
    ASSERT_OK(td_user_list(e, &v, &n));
    ASSERT_EQ(n, 1);
    free(v);
    td_engine_close(e);
    test_rmrf(dir);
}

/* Counts occurrences of needle in the file (0 if it does not exist). */
static int file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)len + 1);
    ASSERT(p);
    ASSERT_EQ(fread(p, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    int found = 0;
    size_t nl = strlen(needle);
    for (long i = 0; i + (long)nl <= len; i++)
        found += memcmp(p + i, needle, nl) == 0;
    free(p);
    return found;
}

/* Users survive a reopen; the catalog's files hold the name but never the password. */
static void test_reopen_and_no_password_on_disk(void)
{
    char *dir = test_tmpdir("users");
    const char *pw = "Tr0ub4dor&3-unique-password";
    td_engine *e = open_engine(dir);
    ASSERT_OK(td_user_add(e, "persisted-user", pw, strlen(pw), TD_SCRAM_ALL, 0));
    char db[1024], wal[1100];
    snprintf(db, sizeof(db), "%s/catalog.db", dir);
    snprintf(wal, sizeof(wal), "%s-wal", db);
    ASSERT_GE(file_contains(db, "persisted-user") + file_contains(wal, "persisted-user"), 1);
    ASSERT_EQ(file_contains(db, pw) + file_contains(wal, pw), 0);
    td_engine_close(e);
    ASSERT_EQ(file_contains(db, pw) + file_contains(wal, pw), 0);
    e = open_engine(dir);
    td_user_info *v;
    size_t n;
    ASSERT_OK(td_user_list(e, &v, &n));
    ASSERT_EQ(n, 1);
    ASSERT_STR_EQ(v[0].name, "persisted-user");
    ASSERT_EQ(v[0].mechanisms, TD_SCRAM_ALL);
    free(v);
    ASSERT_OK(td_user_verify(e, "persisted-user", pw, strlen(pw)));
    td_engine_close(e);
    test_rmrf(dir);
}

/* A user whose td_user_add returned is there after the process is killed (no close). */
static void test_user_survives_kill(void)
{
    char *dir = test_tmpdir("users");
    int fds[2];
    ASSERT_OK(pipe(fds));
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        td_engine *e = open_engine(dir);
        if (td_user_add(e, "survivor", "pw-1", 4, TD_SCRAM_ALL, 0) != 0)
            _exit(1);
        if (write(fds[1], "x", 1) != 1)
            _exit(1);
        /* Go on changing users until killed: the kill lands in the middle of one. */
        for (int i = 0;; i++) {
            char name[32];
            snprintf(name, sizeof(name), "u%d", i);
            td_user_add(e, name, "pw", 2, TD_SCRAM_SHA_256, 0);
        }
    }
    close(fds[1]);
    char c;
    ASSERT_EQ(read(fds[0], &c, 1), 1);
    usleep(20000);
    ASSERT_OK(kill(pid, SIGKILL));
    int status;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT(WIFSIGNALED(status));
    close(fds[0]);
    td_engine *e = open_engine(dir);
    ASSERT_OK(td_user_verify(e, "survivor", "pw-1", 4));
    td_user_info *v;
    size_t n;
    ASSERT_OK(td_user_list(e, &v, &n));
    ASSERT_GE(n, 1);
    /* Every user listed is whole: it has the credential it was given, nothing half-written. */
    for (size_t i = 0; i < n; i++) {
        td_scram_credential k;
        ASSERT(v[i].mechanisms != 0);
        ASSERT_OK(td_user_credential(e, v[i].name, TD_SCRAM_SHA_256, &k));
        ASSERT_OK(scram_credential_check(&k));
        if (strcmp(v[i].name, "survivor") != 0)
            ASSERT_OK(td_user_verify(e, v[i].name, "pw", 2));
    }
    free(v);
    td_engine_close(e);
    test_rmrf(dir);
}

/* A catalog of schema version 4 (before users) gets the users table on open. */
static void test_upgrade_from_version_4(void)
{
    char *dir = test_tmpdir("users");
    td_engine *e = open_engine(dir);
    ASSERT_OK(td_topic_create(e, "kept", 1, NULL, 0));
    td_engine_close(e);
    char db[1024];
    snprintf(db, sizeof(db), "%s/catalog.db", dir);
    sqlite3 *s;
    ASSERT_EQ(sqlite3_open(db, &s), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(s, "DROP TABLE users; PRAGMA user_version=4;", NULL, NULL, NULL),
              SQLITE_OK);
    sqlite3_close(s);
    e = open_engine(dir);
    td_topic_info t;
    ASSERT_OK(td_topic_describe(e, "kept", &t));
    ASSERT_OK(td_user_add(e, "late", "pw", 2, TD_SCRAM_ALL, 0));
    ASSERT_OK(td_user_verify(e, "late", "pw", 2));
    td_engine_close(e);
    test_rmrf(dir);
}

/* A row damaged outside tidings is reported as corrupt, never used to accept a password. */
static void test_damaged_row(void)
{
    char *dir = test_tmpdir("users");
    td_engine *e = open_engine(dir);
    ASSERT_OK(td_user_add(e, "d", "pw", 2, TD_SCRAM_SHA_512, 0));
    td_engine_close(e);
    char db[1024];
    snprintf(db, sizeof(db), "%s/catalog.db", dir);
    sqlite3 *s;
    ASSERT_EQ(sqlite3_open(db, &s), SQLITE_OK);
    ASSERT_EQ(
        sqlite3_exec(s, "UPDATE users SET stored_key=substr(stored_key, 1, 10)", NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(s);
    e = open_engine(dir);
    td_scram_credential k;
    ASSERT_EQ(td_user_credential(e, "d", TD_SCRAM_SHA_512, &k), TD_ECORRUPT);
    ASSERT(td_user_verify(e, "d", "pw", 2) != 0);
    td_engine_close(e);
    test_rmrf(dir);
}

/* AlterUserScramCredentials' entry points: a credential from a client's SaltedPassword, kept
 * beside the other mechanism's; bounds; removing the last credential removes the user. */
static void test_salted_credentials(void)
{
    char *dir = test_tmpdir("users");
    td_engine *e = open_engine(dir);
    const uint8_t salt[20] = "0123456789abcdefghij";
    uint8_t s512[64], s256[32];
    ASSERT_EQ(PKCS5_PBKDF2_HMAC("pw-512", 6, salt, 20, 8192, EVP_sha512(), 64, s512), 1);
    ASSERT_EQ(PKCS5_PBKDF2_HMAC("pw-256", 6, salt, 20, 4096, EVP_sha256(), 32, s256), 1);
    /* A new user from one credential; the password itself was never given. */
    ASSERT_OK(td_user_set_salted(e, "carol", TD_SCRAM_SHA_512, salt, 20, s512, 64, 8192));
    ASSERT_OK(td_user_verify(e, "carol", "pw-512", 6));
    /* A second mechanism is added beside the first. */
    ASSERT_OK(td_user_set_salted(e, "carol", TD_SCRAM_SHA_256, salt, 20, s256, 32, 4096));
    td_user_info *v;
    size_t n;
    ASSERT_OK(td_user_list(e, &v, &n));
    ASSERT_EQ(n, 1);
    ASSERT_EQ(v[0].mechanisms, TD_SCRAM_ALL);
    ASSERT_EQ(v[0].sha512_iterations, 8192);
    ASSERT_EQ(v[0].sha256_iterations, 4096);
    free(v);
    td_scram_credential c;
    ASSERT_OK(td_user_credential(e, "carol", TD_SCRAM_SHA_256, &c));
    ASSERT_OK(scram_verify(&c, "pw-256", 6));
    /* Bounds: iterations, sizes, mechanism, name. Nothing changes. */
    ASSERT_EQ(td_user_set_salted(e, "carol", TD_SCRAM_SHA_256, salt, 20, s256, 32, 4095),
              TD_EINVAL);
    ASSERT_EQ(td_user_set_salted(e, "carol", TD_SCRAM_SHA_256, salt, 20, s256, 32, 16385),
              TD_EINVAL);
    ASSERT_EQ(td_user_set_salted(e, "carol", TD_SCRAM_SHA_256, salt, 20, s512, 64, 4096),
              TD_EINVAL);
    ASSERT_EQ(td_user_set_salted(e, "carol", TD_SCRAM_SHA_256, salt, 0, s256, 32, 4096), TD_EINVAL);
    ASSERT_EQ(td_user_set_salted(e, "carol", 3, salt, 20, s256, 32, 4096), TD_EINVAL);
    ASSERT_EQ(td_user_set_salted(e, "", TD_SCRAM_SHA_256, salt, 20, s256, 32, 4096), TD_ENAME);
    ASSERT_OK(td_user_verify(e, "carol", "pw-512", 6));
    /* Removing one credential keeps the other; removing the last removes the user. */
    ASSERT_OK(td_user_remove_credential(e, "carol", TD_SCRAM_SHA_512));
    ASSERT_EQ(td_user_remove_credential(e, "carol", TD_SCRAM_SHA_512), TD_ENOTFOUND);
    ASSERT_EQ(td_user_credential(e, "carol", TD_SCRAM_SHA_512, &c), TD_ENOTFOUND);
    ASSERT_OK(td_user_verify(e, "carol", "pw-256", 6));
    ASSERT_OK(td_user_remove_credential(e, "carol", TD_SCRAM_SHA_256));
    ASSERT_OK(td_user_list(e, &v, &n));
    ASSERT_EQ(n, 0);
    free(v);
    ASSERT_EQ(td_user_remove_credential(e, "nobody", TD_SCRAM_SHA_256), TD_ENOTFOUND);
    td_engine_close(e);
    test_rmrf(dir);
}

TEST_MAIN(TEST(test_add_list_passwd_remove), TEST(test_bad_arguments_change_nothing),
          TEST(test_reopen_and_no_password_on_disk), TEST(test_user_survives_kill),
          TEST(test_upgrade_from_version_4), TEST(test_damaged_row), TEST(test_salted_credentials))
