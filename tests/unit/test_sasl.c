/*
 * test_sasl.c: the SCRAM server exchange and SASL PLAIN parsing (base/sasl.c): RFC 7677's
 * example exchange replayed byte for byte, the stand-in credential of unknown users, every
 * refusal of a malformed or hostile message, and every truncation of valid messages.
 */
#include <openssl/evp.h>

#include "base/base.h"
#include "base/sasl.h"
#include "base/scram.h"
#include "test.h"

#define RFC_CLIENT_FIRST "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
#define RFC_SNONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_SERVER_FIRST                                                                           \
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define RFC_CLIENT_FINAL                                                                           \
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"                                 \
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define RFC_SERVER_FINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

static void rfc_credential(td_scram_credential *c)
{
    td_buf salt;
    td_buf_init(&salt);
    ASSERT_OK(td_base64_decode(&salt, "W22ZaJ0SNY7soEsUEjb6gQ==", 24));
    ASSERT_OK(scram_derive(TD_SCRAM_SHA_256, "pencil", 6, salt.p, salt.len, 4096, c));
    td_buf_free(&salt);
}

/* Runs the RFC's exchange up to the server-first message; returns what it sent. */
static void rfc_start(scram_server *s, td_buf *out, const char *client_first)
{
    td_scram_credential c;
    rfc_credential(&c);
    scram_server_init(s, TD_SCRAM_SHA_256);
    scram_client_first cf;
    const char *err = NULL;
    ASSERT_OK(scram_parse_client_first(s, (const uint8_t *)client_first, strlen(client_first), &cf,
                                       &err));
    ASSERT_STR_EQ(cf.user, "user");
    td_buf_init(out);
    ASSERT_OK(scram_server_first_nonce(s, &c, false, RFC_SNONCE, out));
}

static int finish(scram_server *s, const char *final, td_buf *out, const char **err)
{
    td_buf_reset(out);
    return scram_server_final(s, (const uint8_t *) final, strlen(final), out, err);
}

static void test_rfc7677_exchange(void)
{
    scram_server s;
    td_buf out;
    rfc_start(&s, &out, RFC_CLIENT_FIRST);
    ASSERT_EQ(out.len, strlen(RFC_SERVER_FIRST));
    ASSERT_MEM_EQ(out.p, RFC_SERVER_FIRST, out.len);
    const char *err = NULL;
    ASSERT_OK(finish(&s, RFC_CLIENT_FINAL, &out, &err));
    ASSERT_EQ(out.len, strlen(RFC_SERVER_FINAL));
    ASSERT_MEM_EQ(out.p, RFC_SERVER_FINAL, out.len);
    /* The exchange is over: a second final message is refused. */
    ASSERT_EQ(finish(&s, RFC_CLIENT_FINAL, &out, &err), TD_EPROTO);
    scram_server_clear(&s);
    td_buf_free(&out);
}

/* The same exchange with one thing wrong at a time, each with the RFC's error value. */
static void test_final_refusals(void)
{
    static const struct {
        const char *final;
        int rc;
        const char *err;
    } cases[] = {
        /* one bit of the proof changed */
        {"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
         "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVU=",
         TD_EAUTH, SCRAM_E_INVALID_PROOF},
        /* a proof one byte short */
        {"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
         "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndQ==",
         TD_EAUTH, SCRAM_E_INVALID_PROOF},
        /* another nonce */
        {"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k1,"
         "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
         TD_EAUTH, SCRAM_E_INVALID_PROOF},
        /* the client's nonce alone */
        {"c=biws,r=rOprNGfwEbeRWgbNEkqO,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", TD_EAUTH,
         SCRAM_E_INVALID_PROOF},
        /* channel binding "y,," where "n,," was sent */
        {"c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
         "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
         TD_EAUTH, SCRAM_E_CB_MISMATCH},
        {"c=!!!!,r=x,p=AAAA", TD_EAUTH, SCRAM_E_CB_MISMATCH},
        /* no proof, a proof not last, a proof not base64, fields out of order */
        {"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0", TD_EPROTO,
         SCRAM_E_INVALID_ENCODING},
        {"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
         "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=,x=1",
         TD_EPROTO, SCRAM_E_INVALID_ENCODING},
        {"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=%%%%", TD_EPROTO,
         SCRAM_E_INVALID_ENCODING},
        {"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,c=biws,p=AAAA", TD_EPROTO,
         SCRAM_E_INVALID_ENCODING},
        {"", TD_EPROTO, SCRAM_E_INVALID_ENCODING},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        scram_server s;
        td_buf out;
        rfc_start(&s, &out, RFC_CLIENT_FIRST);
        const char *err = NULL;
        int rc = finish(&s, cases[i].final, &out, &err);
        if (rc != cases[i].rc || !err || strcmp(err, cases[i].err) != 0)
            TEST_FAIL_("case %zu: rc %d err %s", i, rc, err ? err : "(null)");
        /* The answer is "e=<value>", never a server signature. */
        ASSERT(out.len > 2 && !memcmp(out.p, "e=", 2));
        ASSERT_EQ(out.len, 2 + strlen(cases[i].err));
        scram_server_clear(&s);
        td_buf_free(&out);
    }
}

/* librdkafka's client-final repeats the client nonce before the combined one; Kafka accepts
 * it (the nonce must end with the combined nonce), and so must this server, with the proof
 * computed over the message as sent. */
static void test_librdkafka_nonce(void)
{
    scram_server s;
    td_buf out;
    rfc_start(&s, &out, RFC_CLIENT_FIRST);
    const char *wo = "c=biws,r=rOprNGfwEbeRWgbNEkqOrOprNGfwEbeRWgbNEkqO" RFC_SNONCE;
    td_buf auth;
    td_buf_init(&auth);
    ASSERT_OK(td_buf_append(&auth, "n=user,r=rOprNGfwEbeRWgbNEkqO,", 30));
    ASSERT_OK(td_buf_append(&auth, RFC_SERVER_FIRST ",", strlen(RFC_SERVER_FIRST) + 1));
    ASSERT_OK(td_buf_append(&auth, wo, strlen(wo)));
    /* The client's side: ClientKey from the password, proof = ClientKey ^ HMAC(StoredKey). */
    td_scram_credential c;
    rfc_credential(&c);
    uint8_t salted[32], ckey[32], sig[32], proof[32];
    ASSERT_EQ(
        PKCS5_PBKDF2_HMAC("pencil", 6, c.salt, (int)c.salt_len, 4096, EVP_sha256(), 32, salted), 1);
    ASSERT_OK(scram_hmac(TD_SCRAM_SHA_256, salted, 32, "Client Key", 10, ckey));
    ASSERT_OK(scram_hmac(TD_SCRAM_SHA_256, c.stored_key, 32, auth.p, auth.len, sig));
    for (int i = 0; i < 32; i++)
        proof[i] = ckey[i] ^ sig[i];
    td_buf final;
    td_buf_init(&final);
    ASSERT_OK(td_buf_append(&final, wo, strlen(wo)));
    ASSERT_OK(td_buf_append(&final, ",p=", 3));
    ASSERT_OK(td_base64_encode(&final, proof, 32));
    const char *err = NULL;
    td_buf_reset(&out);
    ASSERT_OK(scram_server_final(&s, final.p, final.len, &out, &err));
    ASSERT(out.len > 2 && !memcmp(out.p, "v=", 2));
    scram_server_clear(&s);
    td_buf_free(&out);
    /* The same proof over the plain RFC form does not pass (the AuthMessage differs). */
    rfc_start(&s, &out, RFC_CLIENT_FIRST);
    td_buf_reset(&final);
    ASSERT_OK(td_buf_append(&final, "c=biws,r=rOprNGfwEbeRWgbNEkqO" RFC_SNONCE ",p=", 29 + 30 + 3));
    ASSERT_OK(td_base64_encode(&final, proof, 32));
    td_buf_reset(&out);
    ASSERT_EQ(scram_server_final(&s, final.p, final.len, &out, &err), TD_EAUTH);
    scram_server_clear(&s);
    td_buf_free(&final);
    td_buf_free(&auth);
    td_buf_free(&out);
}

static void test_client_first_parsing(void)
{
    static const struct {
        const char *msg;
        int rc;
        const char *user; /* the user on success, or the error value */
    } cases[] = {
        {"n,,n=user,r=abc", 0, "user"},
        {"y,,n=user,r=abc", 0, "user"},
        {"n,a=user,n=user,r=abc", 0, "user"},
        {"n,,n=us=2Cer=3D,r=abc", 0, "us,er="},
        {"n,,n=user,r=abc,tokenauth=true", 0, "user"},
        {"n,a=admin,n=user,r=abc", TD_EAUTH, SCRAM_E_OTHER},
        {"p=tls-unique,,n=user,r=abc", TD_EAUTH, SCRAM_E_CB_UNSUPPORTED},
        {"n,,m=ext,n=user,r=abc", TD_EPROTO, SCRAM_E_EXTENSIONS},
        {"n,,n=us=2Xer,r=abc", TD_EPROTO, SCRAM_E_USERNAME_ENCODING},
        {"n,,n=user=,r=abc", TD_EPROTO, SCRAM_E_USERNAME_ENCODING},
        {"n,,n=,r=abc", TD_EPROTO, SCRAM_E_INVALID_ENCODING},
        {"n,,n=user,r=", TD_EPROTO, SCRAM_E_INVALID_ENCODING},
        {"n,,n=user,r=a b", TD_EPROTO, SCRAM_E_INVALID_ENCODING},
        {"n,,n=user", TD_EPROTO, SCRAM_E_INVALID_ENCODING},
        {"n,,r=abc,n=user", TD_EPROTO, SCRAM_E_INVALID_ENCODING},
        {"n,,n=user,r=abc,=x", TD_EPROTO, SCRAM_E_INVALID_ENCODING},
        {"x,,n=user,r=abc", TD_EPROTO, SCRAM_E_INVALID_ENCODING},
        {"n,b=user,n=user,r=abc", TD_EPROTO, SCRAM_E_INVALID_ENCODING},
        {"n,", TD_EPROTO, SCRAM_E_INVALID_ENCODING},
        {"n", TD_EPROTO, SCRAM_E_INVALID_ENCODING},
        {"", TD_EPROTO, SCRAM_E_INVALID_ENCODING},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        scram_server s;
        scram_server_init(&s, TD_SCRAM_SHA_512);
        scram_client_first cf;
        const char *err = NULL;
        int rc = scram_parse_client_first(&s, (const uint8_t *)cases[i].msg, strlen(cases[i].msg),
                                          &cf, &err);
        if (rc != cases[i].rc)
            TEST_FAIL_("case %zu (%s): rc %d", i, cases[i].msg, rc);
        if (rc == 0)
            ASSERT_STR_EQ(cf.user, cases[i].user);
        else
            ASSERT_STR_EQ(err, cases[i].user);
        scram_server_clear(&s);
    }
    /* NUL bytes and oversized messages. */
    scram_server s;
    scram_server_init(&s, TD_SCRAM_SHA_256);
    scram_client_first cf;
    const char *err;
    ASSERT_EQ(scram_parse_client_first(&s, (const uint8_t *)"n,,n=u\0x,r=abc", 14, &cf, &err),
              TD_EPROTO);
    char big[SCRAM_MESSAGE_MAX + 16];
    memset(big, 'a', sizeof(big));
    memcpy(big, "n,,n=user,r=", 12);
    ASSERT_EQ(scram_parse_client_first(&s, (const uint8_t *)big, sizeof(big), &cf, &err),
              TD_EPROTO);
    /* A user name longer than any user may have. */
    char lng[600];
    memset(lng, 'u', sizeof(lng));
    memcpy(lng, "n,,n=", 5);
    memcpy(lng + sizeof(lng) - 6, ",r=abc", 6);
    ASSERT_EQ(scram_parse_client_first(&s, (const uint8_t *)lng, sizeof(lng), &cf, &err),
              TD_EPROTO);
    ASSERT_STR_EQ(err, SCRAM_E_USERNAME_ENCODING);
    scram_server_clear(&s);
}

/* Every prefix of the valid messages is refused cleanly (ASan checks the reads). */
static void test_truncations(void)
{
    const char *first = "n,a=user,n=user,r=rOprNGfwEbeRWgbNEkqO";
    for (size_t k = 0; k < strlen(first); k++) {
        scram_server s;
        scram_server_init(&s, TD_SCRAM_SHA_256);
        scram_client_first cf;
        const char *err;
        uint8_t *copy = malloc(k ? k : 1);
        memcpy(copy, first, k);
        int rc = scram_parse_client_first(&s, copy, k, &cf, &err);
        /* The only prefixes that parse are those that end inside the nonce. */
        if (k > strlen("n,a=user,n=user,r="))
            ASSERT_OK(rc);
        else
            ASSERT(rc != 0);
        free(copy);
        scram_server_clear(&s);
    }
    for (size_t k = 0; k < strlen(RFC_CLIENT_FINAL); k++) {
        scram_server s;
        td_buf out;
        rfc_start(&s, &out, RFC_CLIENT_FIRST);
        uint8_t *copy = malloc(k ? k : 1);
        memcpy(copy, RFC_CLIENT_FINAL, k);
        const char *err = NULL;
        td_buf_reset(&out);
        int rc = scram_server_final(&s, copy, k, &out, &err);
        /* Only the message without the proof's padding "=" is whole (padding is optional, as
         * Java's decoder, which Kafka's server uses, has it). */
        if (k == strlen(RFC_CLIENT_FINAL) - 1) {
            ASSERT_OK(rc);
        } else {
            ASSERT(rc != 0);
            ASSERT(err != NULL);
        }
        free(copy);
        scram_server_clear(&s);
        td_buf_free(&out);
    }
}

/* An unknown user gets a salt and count that are stable for the name, differ between names and
 * secrets, look like a real credential's, and a proof that never passes, even the right one
 * for the stand-in's own keys. */
static void test_fake_credentials(void)
{
    const uint8_t secret[32] = {1, 2, 3}, other[32] = {4, 5, 6};
    td_scram_credential a, b, c, d;
    ASSERT_OK(scram_fake_credential(TD_SCRAM_SHA_512, "ghost", secret, 32, &a));
    ASSERT_OK(scram_fake_credential(TD_SCRAM_SHA_512, "ghost", secret, 32, &b));
    ASSERT_OK(scram_fake_credential(TD_SCRAM_SHA_512, "ghost2", secret, 32, &c));
    ASSERT_OK(scram_fake_credential(TD_SCRAM_SHA_512, "ghost", other, 32, &d));
    ASSERT_OK(scram_credential_check(&a));
    ASSERT_EQ(a.salt_len, TD_SCRAM_SALT_LEN);
    ASSERT_EQ(a.iterations, TD_SCRAM_ITERATIONS_DEFAULT);
    ASSERT_MEM_EQ(a.salt, b.salt, a.salt_len);
    ASSERT(memcmp(a.salt, c.salt, a.salt_len) != 0);
    ASSERT(memcmp(a.salt, d.salt, a.salt_len) != 0);
    ASSERT_EQ(scram_fake_credential(99, "ghost", secret, 32, &a), TD_EINVAL);

    /* The RFC's exchange against the RFC's real credential marked fake fails at the proof. */
    td_scram_credential real;
    rfc_credential(&real);
    scram_server s;
    scram_server_init(&s, TD_SCRAM_SHA_256);
    scram_client_first cf;
    const char *err = NULL;
    ASSERT_OK(scram_parse_client_first(&s, (const uint8_t *)RFC_CLIENT_FIRST,
                                       strlen(RFC_CLIENT_FIRST), &cf, &err));
    td_buf out;
    td_buf_init(&out);
    ASSERT_OK(scram_server_first_nonce(&s, &real, true, RFC_SNONCE, &out));
    ASSERT_MEM_EQ(out.p, RFC_SERVER_FIRST, out.len); /* looks the same */
    ASSERT_EQ(finish(&s, RFC_CLIENT_FINAL, &out, &err), TD_EAUTH);
    ASSERT_STR_EQ(err, SCRAM_E_INVALID_PROOF);
    scram_server_clear(&s);
    td_buf_free(&out);
}

/* The random server nonce: fresh each time, appended to the client's, no comma. */
static void test_random_nonce(void)
{
    td_scram_credential c;
    rfc_credential(&c);
    char first[2][200];
    for (int k = 0; k < 2; k++) {
        scram_server s;
        scram_server_init(&s, TD_SCRAM_SHA_256);
        scram_client_first cf;
        const char *err;
        ASSERT_OK(scram_parse_client_first(&s, (const uint8_t *)RFC_CLIENT_FIRST,
                                           strlen(RFC_CLIENT_FIRST), &cf, &err));
        td_buf out;
        td_buf_init(&out);
        ASSERT_OK(scram_server_first(&s, &c, false, &out));
        ASSERT(out.len < sizeof(first[k]));
        memcpy(first[k], out.p, out.len);
        first[k][out.len] = 0;
        ASSERT(!strncmp(first[k], "r=rOprNGfwEbeRWgbNEkqO", 22));
        ASSERT(strchr(first[k] + 2, ',') - first[k] >= 22 + 32); /* 24 bytes as base64 */
        td_buf_free(&out);
        scram_server_clear(&s);
    }
    ASSERT(strcmp(first[0], first[1]) != 0);
}

static void test_scram_from_salted(void)
{
    /* What a Kafka admin client sends (salt, iterations, SaltedPassword) gives the credential
     * the password would. */
    td_scram_credential real, from;
    rfc_credential(&real);
    uint8_t salted[32];
    ASSERT_EQ(PKCS5_PBKDF2_HMAC("pencil", 6, real.salt, (int)real.salt_len, 4096, EVP_sha256(), 32,
                                salted),
              1);
    ASSERT_OK(
        scram_from_salted(TD_SCRAM_SHA_256, salted, 32, real.salt, real.salt_len, 4096, &from));
    ASSERT_MEM_EQ(from.stored_key, real.stored_key, 32);
    ASSERT_MEM_EQ(from.server_key, real.server_key, 32);
    ASSERT_OK(scram_verify(&from, "pencil", 6));
    ASSERT_EQ(
        scram_from_salted(TD_SCRAM_SHA_512, salted, 32, real.salt, real.salt_len, 4096, &from),
        TD_EINVAL);
    ASSERT_EQ(scram_from_salted(TD_SCRAM_SHA_256, salted, 32, real.salt, 0, 4096, &from),
              TD_EINVAL);
}

static void test_plain(void)
{
    char buf[64];
    const char *u, *p;
    size_t pl;
    ASSERT_OK(sasl_plain_parse((const uint8_t *)"\0alice\0secret", 13, buf, &u, &p, &pl));
    ASSERT_STR_EQ(u, "alice");
    ASSERT_EQ(pl, 6);
    ASSERT(!memcmp(p, "secret", 6));
    ASSERT_OK(sasl_plain_parse((const uint8_t *)"alice\0alice\0pw", 14, buf, &u, &p, &pl));
    ASSERT_EQ(sasl_plain_parse((const uint8_t *)"bob\0alice\0pw", 12, buf, &u, &p, &pl), TD_EAUTH);
    ASSERT_EQ(sasl_plain_parse((const uint8_t *)"\0alice\0", 7, buf, &u, &p, &pl), TD_EPROTO);
    ASSERT_EQ(sasl_plain_parse((const uint8_t *)"\0\0pw", 4, buf, &u, &p, &pl), TD_EPROTO);
    ASSERT_EQ(sasl_plain_parse((const uint8_t *)"alice", 5, buf, &u, &p, &pl), TD_EPROTO);
    ASSERT_EQ(sasl_plain_parse((const uint8_t *)"\0alice", 6, buf, &u, &p, &pl), TD_EPROTO);
    ASSERT_EQ(sasl_plain_parse((const uint8_t *)"\0a\0b\0c", 6, buf, &u, &p, &pl), TD_EPROTO);
    ASSERT_EQ(sasl_plain_parse((const uint8_t *)"", 0, buf, &u, &p, &pl), TD_EPROTO);
}

TEST_MAIN(TEST(test_rfc7677_exchange), TEST(test_final_refusals), TEST(test_librdkafka_nonce),
          TEST(test_client_first_parsing), TEST(test_truncations), TEST(test_fake_credentials),
          TEST(test_random_nonce), TEST(test_scram_from_salted), TEST(test_plain))
