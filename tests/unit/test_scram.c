/*
 * test_scram.c: SCRAM credentials (base/scram.c) against RFC 7677's example exchange, values
 * computed independently (Python's hashlib.pbkdf2_hmac and hmac), and bad input.
 */
#include "base/base.h"
#include "base/scram.h"
#include "test.h"

static const char *const rfc_salt_b64 = "W22ZaJ0SNY7soEsUEjb6gQ==";

static void b64(const char *s, td_buf *out)
{
    td_buf_init(out);
    ASSERT_OK(td_base64_decode(out, s, strlen(s)));
}

static void rfc_credential(int mech, td_scram_credential *c)
{
    td_buf salt;
    b64(rfc_salt_b64, &salt);
    ASSERT_EQ(salt.len, 16);
    ASSERT_OK(scram_derive(mech, "pencil", 6, salt.p, salt.len, 4096, c));
    ASSERT_EQ(c->mechanism, mech);
    ASSERT_EQ(c->iterations, 4096);
    ASSERT_EQ(c->key_len, scram_key_len(mech));
    ASSERT_EQ(c->salt_len, 16);
    ASSERT_MEM_EQ(c->salt, salt.p, 16);
    td_buf_free(&salt);
}

/* RFC 7677 section 3: the server accepts the client's proof with StoredKey alone, and its
 * ServerSignature from ServerKey is the `v=` the RFC shows. Only the RFC's messages are given
 * here: the keys must come out of scram_derive. */
static void test_rfc7677_exchange(void)
{
    td_scram_credential c;
    rfc_credential(TD_SCRAM_SHA_256, &c);
    const char *auth = "n=user,r=rOprNGfwEbeRWgbNEkqO,"
                       "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                       "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,"
                       "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    td_buf proof, v;
    b64("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", &proof);
    b64("6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", &v);
    ASSERT_EQ(proof.len, 32);
    uint8_t sig[64], client_key[64], stored[64], server_sig[64];
    ASSERT_OK(scram_hmac(TD_SCRAM_SHA_256, c.stored_key, c.key_len, auth, strlen(auth), sig));
    for (size_t i = 0; i < 32; i++)
        client_key[i] = proof.p[i] ^ sig[i];
    ASSERT_OK(scram_hash(TD_SCRAM_SHA_256, client_key, 32, stored));
    ASSERT_MEM_EQ(stored, c.stored_key, 32);
    ASSERT_OK(
        scram_hmac(TD_SCRAM_SHA_256, c.server_key, c.key_len, auth, strlen(auth), server_sig));
    ASSERT_MEM_EQ(server_sig, v.p, 32);
    /* A proof with one bit changed no longer gives StoredKey. */
    client_key[5] ^= 1;
    ASSERT_OK(scram_hash(TD_SCRAM_SHA_256, client_key, 32, stored));
    ASSERT(memcmp(stored, c.stored_key, 32) != 0);
    td_buf_free(&proof);
    td_buf_free(&v);
}

/* The keys for RFC 7677's user, computed with Python's hashlib.pbkdf2_hmac, hmac and hashlib
 * (for SHA-256 they also reproduce the RFC's proof and signature, like the test above). */
static void test_keys_match_python(void)
{
    static const struct {
        int mech;
        const char *stored, *server;
    } want[] = {
        {TD_SCRAM_SHA_256, "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=",
         "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="},
        {TD_SCRAM_SHA_512,
         "6AAub3065EYRmyFpM2RNwqK+eGnrkYuEWbXn19LsEmBqzu8QaCXNc1FwpnX9NhH2hK/60dzj9DoO5DvVkOHbvg==",
         "jZHbYjC1aHh0/hKbxyBuGFjDrgjgKTT1esA7awWiKcRZ0o/"
         "0b1yWEebBeSVkkCFewf91nLDfKF24mvD5nmE6rA=="},
    };
    for (size_t i = 0; i < 2; i++) {
        td_scram_credential c;
        rfc_credential(want[i].mech, &c);
        td_buf sk, vk;
        b64(want[i].stored, &sk);
        b64(want[i].server, &vk);
        ASSERT_EQ(sk.len, c.key_len);
        ASSERT_MEM_EQ(c.stored_key, sk.p, sk.len);
        ASSERT_MEM_EQ(c.server_key, vk.p, vk.len);
        ASSERT_OK(scram_verify(&c, "pencil", 6));
        td_buf_free(&sk);
        td_buf_free(&vk);
    }
}

static void test_verify_refuses_near_misses(void)
{
    td_scram_credential c;
    rfc_credential(TD_SCRAM_SHA_512, &c);
    ASSERT_OK(scram_verify(&c, "pencil", 6));
    ASSERT_EQ(scram_verify(&c, "pencil", 5), TD_EAUTH);  /* truncated */
    ASSERT_EQ(scram_verify(&c, "pencils", 7), TD_EAUTH); /* one more byte */
    ASSERT_EQ(scram_verify(&c, "Pencil", 6), TD_EAUTH);  /* case */
    ASSERT_EQ(scram_verify(&c, "", 0), TD_EAUTH);        /* empty */
    ASSERT_EQ(scram_verify(&c, NULL, 6), TD_EAUTH);
    /* A stored credential that is damaged never verifies. */
    td_scram_credential d = c;
    d.stored_key[0] ^= 0x80;
    ASSERT_EQ(scram_verify(&d, "pencil", 6), TD_EAUTH);
    d = c;
    d.server_key[63] ^= 1;
    ASSERT_EQ(scram_verify(&d, "pencil", 6), TD_EAUTH);
    d = c;
    d.key_len = 32; /* a SHA-512 credential with SHA-256's key length */
    ASSERT_EQ(scram_credential_check(&d), TD_ECORRUPT);
    ASSERT_EQ(scram_verify(&d, "pencil", 6), TD_EAUTH);
    d = c;
    d.salt_len = 0;
    ASSERT_EQ(scram_verify(&d, "pencil", 6), TD_EAUTH);
    d = c;
    d.salt_len = TD_SCRAM_SALT_MAX + 1;
    ASSERT_EQ(scram_verify(&d, "pencil", 6), TD_EAUTH);
    d = c;
    d.iterations = 0;
    ASSERT_EQ(scram_verify(&d, "pencil", 6), TD_EAUTH);
    d = c;
    d.mechanism = 3;
    ASSERT_EQ(scram_verify(&d, "pencil", 6), TD_EAUTH);
}

static void test_new_credentials_are_salted(void)
{
    td_scram_credential a, b;
    ASSERT_OK(scram_credential_new(TD_SCRAM_SHA_256, "secret", 6, 0, &a));
    ASSERT_OK(scram_credential_new(TD_SCRAM_SHA_256, "secret", 6, 0, &b));
    ASSERT_EQ(a.iterations, TD_SCRAM_ITERATIONS_DEFAULT);
    ASSERT_EQ(a.salt_len, TD_SCRAM_SALT_LEN);
    ASSERT(memcmp(a.salt, b.salt, a.salt_len) != 0);
    ASSERT(memcmp(a.stored_key, b.stored_key, a.key_len) != 0);
    ASSERT_OK(scram_verify(&a, "secret", 6));
    ASSERT_OK(scram_verify(&b, "secret", 6));
    /* The derivation from the stored salt gives the stored keys back. */
    td_scram_credential d;
    ASSERT_OK(scram_derive(TD_SCRAM_SHA_256, "secret", 6, a.salt, a.salt_len, a.iterations, &d));
    ASSERT_MEM_EQ(d.stored_key, a.stored_key, 32);
    ASSERT_MEM_EQ(d.server_key, a.server_key, 32);
    ASSERT_OK(scram_credential_new(TD_SCRAM_SHA_512, "secret", 6, 5000, &a));
    ASSERT_EQ(a.iterations, 5000);
    ASSERT_EQ(a.key_len, 64);
    ASSERT_OK(scram_verify(&a, "secret", 6));
    ASSERT_EQ(scram_verify(&a, "secreT", 6), TD_EAUTH);
}

static void test_bad_parameters(void)
{
    td_scram_credential c;
    uint8_t salt[16] = {1};
    ASSERT_EQ(scram_derive(0, "pw", 2, salt, 16, 4096, &c), TD_EINVAL);
    ASSERT_EQ(scram_derive(3, "pw", 2, salt, 16, 4096, &c), TD_EINVAL);
    ASSERT_EQ(scram_derive(TD_SCRAM_SHA_256, "pw", 0, salt, 16, 4096, &c), TD_EINVAL);
    ASSERT_EQ(scram_derive(TD_SCRAM_SHA_256, "pw", 2, salt, 0, 4096, &c), TD_EINVAL);
    ASSERT_EQ(scram_derive(TD_SCRAM_SHA_256, "pw", 2, NULL, 16, 4096, &c), TD_EINVAL);
    ASSERT_EQ(scram_derive(TD_SCRAM_SHA_256, "pw", 2, salt, TD_SCRAM_SALT_MAX + 1, 4096, &c),
              TD_EINVAL);
    ASSERT_EQ(scram_derive(TD_SCRAM_SHA_256, "pw", 2, salt, 16, 0, &c), TD_EINVAL);
    ASSERT_EQ(scram_derive(TD_SCRAM_SHA_256, "pw", 2, salt, 16, -1, &c), TD_EINVAL);
    ASSERT_EQ(scram_credential_new(TD_SCRAM_SHA_256, "pw", 2, 4095, &c), TD_EINVAL);
    ASSERT_CONTAINS(td_last_error(), "4096 to 16384");
    ASSERT_EQ(scram_credential_new(TD_SCRAM_SHA_256, "pw", 2, 16385, &c), TD_EINVAL);
    ASSERT_EQ(scram_credential_new(TD_SCRAM_SHA_256, "", 0, 0, &c), TD_EINVAL);
    ASSERT_EQ(scram_credential_new(0, "pw", 2, 0, &c), TD_EINVAL);
    uint8_t out[64];
    ASSERT_EQ(scram_hmac(0, "k", 1, "d", 1, out), TD_EINVAL);
    ASSERT_EQ(scram_hash(4, "d", 1, out), TD_EINVAL);
    ASSERT_EQ(scram_key_len(TD_SCRAM_SHA_256), 32);
    ASSERT_EQ(scram_key_len(TD_SCRAM_SHA_512), 64);
    ASSERT_EQ(scram_key_len(TD_SCRAM_ALL), 0);
}

static void test_mechanism_names(void)
{
    ASSERT_STR_EQ(td_scram_mechanism_name(TD_SCRAM_SHA_256), "SCRAM-SHA-256");
    ASSERT_STR_EQ(td_scram_mechanism_name(TD_SCRAM_SHA_512), "SCRAM-SHA-512");
    ASSERT(td_scram_mechanism_name(TD_SCRAM_ALL) == NULL);
    ASSERT_EQ(td_scram_mechanism_parse("scram-sha-256"), TD_SCRAM_SHA_256);
    ASSERT_EQ(td_scram_mechanism_parse("SCRAM-SHA-512"), TD_SCRAM_SHA_512);
    ASSERT_EQ(td_scram_mechanism_parse("SCRAM-SHA-1"), 0);
    ASSERT_EQ(td_scram_mechanism_parse("SCRAM-SHA-2560"), 0);
    ASSERT_EQ(td_scram_mechanism_parse(""), 0);
    ASSERT_EQ(td_scram_mechanism_parse(NULL), 0);
}

static void test_user_names(void)
{
    char name[TD_USER_NAME_MAX + 2];
    memset(name, 'a', sizeof(name));
    name[TD_USER_NAME_MAX] = 0;
    ASSERT_OK(td_user_name_validate(name));
    name[TD_USER_NAME_MAX] = 'a';
    name[TD_USER_NAME_MAX + 1] = 0;
    ASSERT_EQ(td_user_name_validate(name), TD_ENAME);
    ASSERT_CONTAINS(td_last_error(), "at most 255 bytes");
    static const char *const good[] = {
        "user", "admin",         "alice@example.com",        "CN=x,O=y",
        "a=b",  "J\xc3\xbcrgen", "\xe6\x97\xa5\xe6\x9c\xac", "\xf0\x9f\x94\x91",
        "a b"};
    for (size_t i = 0; i < TD_ARRAY_LEN(good); i++)
        ASSERT_OK(td_user_name_validate(good[i]));
    static const char *const bad[] = {
        "",                 /* empty */
        "\xc3",             /* truncated two-byte sequence */
        "ab\xe6\x97",       /* truncated three-byte sequence */
        "\xf0\x9f\x94",     /* truncated four-byte sequence */
        "\xc0\xaf",         /* overlong '/' */
        "\xe0\x80\xaf",     /* overlong '/' in three bytes */
        "\xed\xa0\x80",     /* a UTF-16 surrogate */
        "\xf4\x90\x80\x80", /* past U+10FFFF */
        "\xff",             /* never in UTF-8 */
        "\x80",             /* a lone continuation byte */
        "a\tb",             /* C0 control */
        "a\nb",             /* newline: would forge lines in listings and logs */
        "a\x7f",            /* DEL */
        "\xc2\x85",         /* C1 control (NEL) */
    };
    for (size_t i = 0; i < TD_ARRAY_LEN(bad); i++)
        ASSERT_EQ(td_user_name_validate(bad[i]), TD_ENAME);
    ASSERT_EQ(td_user_name_validate(NULL), TD_ENAME);
}

static void test_passwords(void)
{
    char pw[TD_USER_PASSWORD_MAX + 1];
    memset(pw, 'p', sizeof(pw));
    ASSERT_OK(td_user_password_validate(pw, TD_USER_PASSWORD_MAX));
    ASSERT_EQ(td_user_password_validate(pw, TD_USER_PASSWORD_MAX + 1), TD_EINVAL);
    ASSERT_EQ(td_user_password_validate(pw, 0), TD_EINVAL);
    ASSERT_EQ(td_user_password_validate(NULL, 3), TD_EINVAL);
    ASSERT_EQ(td_user_password_validate("a\0b", 3), TD_EINVAL);
    ASSERT_CONTAINS(td_last_error(), "NUL");
    ASSERT_OK(td_user_password_validate("p\xc3\xa4ss w\xf6rd", 10)); /* any other bytes */
    /* The longest password derives and verifies. */
    td_scram_credential c;
    ASSERT_OK(scram_credential_new(TD_SCRAM_SHA_512, pw, TD_USER_PASSWORD_MAX, 0, &c));
    ASSERT_OK(scram_verify(&c, pw, TD_USER_PASSWORD_MAX));
    ASSERT_EQ(scram_verify(&c, pw, TD_USER_PASSWORD_MAX - 1), TD_EAUTH);
}

TEST_MAIN(TEST(test_rfc7677_exchange), TEST(test_keys_match_python),
          TEST(test_verify_refuses_near_misses), TEST(test_new_credentials_are_salted),
          TEST(test_bad_parameters), TEST(test_mechanism_names), TEST(test_user_names),
          TEST(test_passwords))
