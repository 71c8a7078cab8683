/*
 * scram.c: SCRAM credentials (RFC 5802 section 3, RFC 7677) with OpenSSL 3's libcrypto.
 *
 * What is kept per user and mechanism is the RFC's server-side record: the salt, the
 * iteration count, StoredKey = H(ClientKey) and ServerKey, where
 *   SaltedPassword = Hi(password, salt, i) = PBKDF2 with HMAC-H, i iterations, |H| bytes
 *   ClientKey      = HMAC(SaltedPassword, "Client Key")
 *   StoredKey      = H(ClientKey)
 *   ServerKey      = HMAC(SaltedPassword, "Server Key")
 * With StoredKey a server checks a client's proof without being able to make one; with
 * ServerKey it proves to the client that it knows the record. Neither gives the password back:
 * an attacker holding the store must guess passwords at i HMACs a guess.
 *
 * The password is used as the bytes given (no SASLprep normalization): Kafka's ScramFormatter
 * does the same with the UTF-8 bytes of the password, so credentials made here match the ones a
 * Kafka client computes from the same password. Intermediate secrets (SaltedPassword,
 * ClientKey) are wiped with OPENSSL_cleanse before returning.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "base/base.h"
#include "base/scram.h"

static const EVP_MD *scram_md(int mechanism)
{
    switch (mechanism) {
    case TD_SCRAM_SHA_256:
        return EVP_sha256();
    case TD_SCRAM_SHA_512:
        return EVP_sha512();
    default:
        return NULL;
    }
}

size_t scram_key_len(int mechanism)
{
    return mechanism == TD_SCRAM_SHA_256 ? 32 : mechanism == TD_SCRAM_SHA_512 ? 64 : 0;
}

const char *td_scram_mechanism_name(int mechanism)
{
    return mechanism == TD_SCRAM_SHA_256   ? "SCRAM-SHA-256"
           : mechanism == TD_SCRAM_SHA_512 ? "SCRAM-SHA-512"
                                           : NULL;
}

int td_scram_mechanism_parse(const char *name)
{
    if (!name)
        return 0;
    if (!strcasecmp(name, "SCRAM-SHA-256"))
        return TD_SCRAM_SHA_256;
    if (!strcasecmp(name, "SCRAM-SHA-512"))
        return TD_SCRAM_SHA_512;
    return 0;
}

/* Length of the well-formed UTF-8 sequence at s (at most n bytes), or 0 when it is not one:
 * overlong forms, surrogates and code points past U+10FFFF are refused (RFC 3629). *cp gets
 * the code point. */
static size_t utf8_seq(const unsigned char *s, size_t n, uint32_t *cp)
{
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    size_t len = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc0 ? 2 : 0;
    if (!len || len > n || s[0] > 0xf4)
        return 0;
    uint32_t v = s[0] & (0x7f >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (s[i] & 0x3f);
    }
    static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (v < min[len] || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return len;
}

int td_user_name_validate(const char *name)
{
    td_error_clear();
    if (!name || !*name)
        return td_fail(TD_ENAME, "a user name cannot be empty");
    size_t n = strlen(name);
    if (n > TD_USER_NAME_MAX)
        return td_fail(TD_ENAME, "a user name has at most %d bytes (this one has %zu)",
                       TD_USER_NAME_MAX, n);
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t len = utf8_seq((const unsigned char *)name + i, n - i, &cp);
        if (!len)
            return td_fail(TD_ENAME, "a user name must be UTF-8 (byte %zu is not)", i);
        if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0))
            return td_fail(TD_ENAME, "a user name cannot contain control characters (byte %zu)", i);
        i += len;
    }
    return 0;
}

int td_user_password_validate(const void *password, size_t len)
{
    td_error_clear();
    if (!password || len == 0)
        return td_fail(TD_EINVAL, "a password cannot be empty");
    if (len > TD_USER_PASSWORD_MAX)
        return td_fail(TD_EINVAL, "a password has at most %d bytes", TD_USER_PASSWORD_MAX);
    if (memchr(password, 0, len))
        return td_fail(TD_EINVAL, "a password cannot contain a NUL byte");
    return 0;
}

int scram_hmac(int mechanism, const void *key, size_t key_len, const void *data, size_t len,
               uint8_t *out)
{
    const EVP_MD *md = scram_md(mechanism);
    if (!md)
        return TD_EINVAL;
    unsigned int outlen = 0;
    /* HMAC() with a NULL key pointer and zero length would use a static buffer; give it one. */
    static const uint8_t none[1];
    if (!HMAC(md, key_len ? key : none, (int)key_len, len ? data : none, len, out, &outlen))
        return -ENOMEM;
    return outlen == scram_key_len(mechanism) ? 0 : -EIO;
}

int scram_hash(int mechanism, const void *data, size_t len, uint8_t *out)
{
    const EVP_MD *md = scram_md(mechanism);
    if (!md)
        return TD_EINVAL;
    unsigned int outlen = 0;
    if (!EVP_Digest(len ? data : "", len, out, &outlen, md, NULL))
        return -ENOMEM;
    return outlen == scram_key_len(mechanism) ? 0 : -EIO;
}

int scram_from_salted(int mechanism, const uint8_t *salted, size_t salted_len, const uint8_t *salt,
                      size_t salt_len, int32_t iterations, td_scram_credential *out)
{
    size_t klen = scram_key_len(mechanism);
    if (!klen)
        return td_fail(TD_EINVAL, "unknown SCRAM mechanism %d", mechanism);
    if (!salted || salted_len != klen)
        return td_fail(TD_EINVAL, "a %s salted password has %zu bytes",
                       td_scram_mechanism_name(mechanism), klen);
    if (!salt || salt_len == 0 || salt_len > TD_SCRAM_SALT_MAX)
        return td_fail(TD_EINVAL, "a SCRAM salt has 1 to %d bytes", TD_SCRAM_SALT_MAX);
    if (iterations < 1)
        return td_fail(TD_EINVAL, "SCRAM iterations must be positive");
    uint8_t client_key[TD_SCRAM_KEY_MAX];
    td_scram_credential c;
    memset(&c, 0, sizeof(c));
    c.mechanism = mechanism;
    c.iterations = iterations;
    c.salt_len = salt_len;
    c.key_len = klen;
    memcpy(c.salt, salt, salt_len);
    int rc;
    if (!(rc = scram_hmac(mechanism, salted, klen, "Client Key", 10, client_key)) &&
        !(rc = scram_hash(mechanism, client_key, klen, c.stored_key)) &&
        !(rc = scram_hmac(mechanism, salted, klen, "Server Key", 10, c.server_key)))
        *out = c;
    OPENSSL_cleanse(client_key, sizeof(client_key));
    OPENSSL_cleanse(&c, sizeof(c));
    return rc;
}

int scram_derive(int mechanism, const void *password, size_t password_len, const uint8_t *salt,
                 size_t salt_len, int32_t iterations, td_scram_credential *out)
{
    const EVP_MD *md = scram_md(mechanism);
    size_t klen = scram_key_len(mechanism);
    if (!md)
        return td_fail(TD_EINVAL, "unknown SCRAM mechanism %d", mechanism);
    if (!password || password_len == 0 || password_len > TD_USER_PASSWORD_MAX)
        return td_fail(TD_EINVAL, "a password has 1 to %d bytes", TD_USER_PASSWORD_MAX);
    if (!salt || salt_len == 0 || salt_len > TD_SCRAM_SALT_MAX)
        return td_fail(TD_EINVAL, "a SCRAM salt has 1 to %d bytes", TD_SCRAM_SALT_MAX);
    if (iterations < 1)
        return td_fail(TD_EINVAL, "SCRAM iterations must be positive");
    uint8_t salted[TD_SCRAM_KEY_MAX];
    int rc;
    if (PKCS5_PBKDF2_HMAC(password, (int)password_len, salt, (int)salt_len, iterations, md,
                          (int)klen, salted) != 1)
        rc = td_fail(-ENOMEM, "PBKDF2 failed");
    else
        rc = scram_from_salted(mechanism, salted, klen, salt, salt_len, iterations, out);
    OPENSSL_cleanse(salted, sizeof(salted));
    return rc;
}

int scram_credential_new(int mechanism, const void *password, size_t password_len,
                         int32_t iterations, td_scram_credential *out)
{
    int rc = td_user_password_validate(password, password_len);
    if (rc)
        return rc;
    if (iterations == 0)
        iterations = TD_SCRAM_ITERATIONS_DEFAULT;
    if (iterations < TD_SCRAM_ITERATIONS_MIN || iterations > TD_SCRAM_ITERATIONS_MAX)
        return td_fail(TD_EINVAL, "SCRAM iterations must be %d to %d, not %" PRId32,
                       TD_SCRAM_ITERATIONS_MIN, TD_SCRAM_ITERATIONS_MAX, iterations);
    if (!scram_md(mechanism))
        return td_fail(TD_EINVAL, "unknown SCRAM mechanism %d", mechanism);
    uint8_t salt[TD_SCRAM_SALT_LEN];
    if (RAND_bytes(salt, sizeof(salt)) != 1)
        return td_fail(-EIO, "the random generator failed to make a salt");
    return scram_derive(mechanism, password, password_len, salt, sizeof(salt), iterations, out);
}

int scram_credential_check(const td_scram_credential *c)
{
    if (!scram_md(c->mechanism) || c->key_len != scram_key_len(c->mechanism) || c->salt_len == 0 ||
        c->salt_len > TD_SCRAM_SALT_MAX || c->iterations < 1)
        return TD_ECORRUPT;
    return 0;
}

int scram_verify(const td_scram_credential *c, const void *password, size_t password_len)
{
    if (scram_credential_check(c) || !password || password_len == 0 ||
        password_len > TD_USER_PASSWORD_MAX)
        return TD_EAUTH;
    td_scram_credential d;
    if (scram_derive(c->mechanism, password, password_len, c->salt, c->salt_len, c->iterations,
                     &d) != 0)
        return TD_EAUTH;
    /* Both keys, without an early exit: the comparison takes the same time whatever matched. */
    int diff = CRYPTO_memcmp(d.stored_key, c->stored_key, c->key_len) |
               CRYPTO_memcmp(d.server_key, c->server_key, c->key_len);
    OPENSSL_cleanse(&d, sizeof(d));
    return diff ? TD_EAUTH : 0;
}
