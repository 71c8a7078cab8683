/*
 * tokens.c: API tokens (include/tidings.h td_token_*, docs/security.md#api-tokens): bearer
 * credentials for HTTP, kept in the catalog as the SHA-256 of their secret.
 *
 * Why SHA-256 and not PBKDF2 as for passwords: a secret is 32 random bytes (256 bits), so no
 * dictionary or brute force gets anywhere against its digest, and slowing each guess down by
 * 4096 iterations would buy nothing; it would only make every request with a token cost
 * milliseconds. Passwords are chosen by people and need the slow hash; tokens are not.
 *
 * The id (8 random bytes in hex) is the token's public name: the row is found by it, then the
 * secret's digest is compared in constant time (CRYPTO_memcmp), so the lookup leaks at most
 * whether an id exists, which is not a secret.
 *
 * Creations and revocations are debug lines here: the HTTP API logs and counts them in the
 * audit trail with the acting principal (broker_audit, docs/security.md#audit).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "base/base.h"
#include "broker/engine_int.h"
#include "storage/storage.h"

#define SECRET_BYTES 32
#define SECRET_CHARS 43 /* base64url of 32 bytes, without padding */
_Static_assert(5 + TD_TOKEN_ID_LEN + SECRET_CHARS == TD_TOKEN_LEN, "the token's form");

static int sha256(const void *p, size_t n, uint8_t out[CATALOG_TOKEN_HASH_LEN])
{
    unsigned int len = 0;
    if (!EVP_Digest(n ? p : "", n, out, &len, EVP_sha256(), NULL) || len != CATALOG_TOKEN_HASH_LEN)
        return td_fail(-EIO, "SHA-256 failed");
    return 0;
}

static bool is_hex_id(const char *s, size_t n)
{
    if (n != TD_TOKEN_ID_LEN)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

int td_token_create(td_engine *e, const char *user, int64_t expires_ms, const char *description,
                    char token[TD_TOKEN_LEN + 1], td_token_info *info)
{
    td_error_clear();
    int rc = td_user_name_validate(user);
    if (rc)
        return rc;
    if (!description)
        description = "";
    if (strlen(description) > TD_TOKEN_DESCRIPTION_MAX)
        return td_fail(TD_EINVAL, "a token's description is at most %d bytes",
                       TD_TOKEN_DESCRIPTION_MAX);
    if (*description && td_user_name_validate(description) != 0)
        return td_fail(TD_EINVAL, "a token's description is UTF-8 without control characters");
    int64_t now = td_wall_ms();
    if (expires_ms < 0 || (expires_ms > 0 && expires_ms <= now))
        return td_fail(TD_EINVAL, "a token's expiry must be in the future");
    uint8_t raw[8 + SECRET_BYTES], hash[CATALOG_TOKEN_HASH_LEN];
    char secret[SECRET_CHARS + 2];
    td_token_info t;
    memset(&t, 0, sizeof(t));
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return td_fail(-EIO, "RAND_bytes failed");
    for (int i = 0; i < 8; i++)
        snprintf(t.id + 2 * i, 3, "%02x", raw[i]);
    td_base64url(raw + 8, SECRET_BYTES, secret);
    snprintf(t.user, sizeof(t.user), "%s", user);
    snprintf(t.description, sizeof(t.description), "%s", description);
    t.created_ms = now;
    t.expires_ms = expires_ms;
    if ((rc = sha256(secret, SECRET_CHARS, hash)) == 0) {
        pthread_mutex_lock(&e->admin_mu);
        rc = catalog_token_add(e->cat, &t, hash);
        pthread_mutex_unlock(&e->admin_mu);
    }
    if (rc == 0) {
        TD_DEBUG("tokens", "created API token %s for user %s", t.id, user);
        memcpy(token, "tdk_", 4);
        memcpy(token + 4, t.id, TD_TOKEN_ID_LEN);
        token[4 + TD_TOKEN_ID_LEN] = '_';
        memcpy(token + 5 + TD_TOKEN_ID_LEN, secret, SECRET_CHARS);
        token[TD_TOKEN_LEN] = 0;
        if (info)
            *info = t;
    }
    OPENSSL_cleanse(raw, sizeof(raw));
    OPENSSL_cleanse(secret, sizeof(secret));
    return rc;
}

int td_token_list(td_engine *e, const char *user, td_token_info **out, size_t *count)
{
    td_error_clear();
    pthread_mutex_lock(&e->admin_mu);
    int rc = catalog_token_list(e->cat, user, out, count);
    pthread_mutex_unlock(&e->admin_mu);
    return rc;
}

int td_token_revoke(td_engine *e, const char *id, const char *user)
{
    td_error_clear();
    if (!id || !is_hex_id(id, strlen(id)))
        return td_fail(TD_ENOTFOUND, "no such token");
    pthread_mutex_lock(&e->admin_mu);
    int rc = catalog_token_remove(e->cat, id, user);
    pthread_mutex_unlock(&e->admin_mu);
    if (rc == 0)
        TD_DEBUG("tokens", "revoked API token %s", id);
    return rc;
}

int td_token_verify(td_engine *e, const char *token, size_t len, td_token_info *info)
{
    td_error_clear();
    memset(info, 0, sizeof(*info));
    /* tdk_ + 16 hex + _ + 43 characters: anything else cannot be one of ours. */
    if (len != TD_TOKEN_LEN || memcmp(token, "tdk_", 4) != 0 ||
        !is_hex_id(token + 4, TD_TOKEN_ID_LEN) || token[4 + TD_TOKEN_ID_LEN] != '_')
        return td_fail(TD_EAUTH, "not a valid token");
    char id[TD_TOKEN_ID_LEN + 1];
    memcpy(id, token + 4, TD_TOKEN_ID_LEN);
    id[TD_TOKEN_ID_LEN] = 0;
    const char *secret = token + 5 + TD_TOKEN_ID_LEN;
    uint8_t want[CATALOG_TOKEN_HASH_LEN], got[CATALOG_TOKEN_HASH_LEN];
    td_token_info t;
    pthread_mutex_lock(&e->admin_mu);
    int rc = catalog_token_get(e->cat, id, &t, want);
    pthread_mutex_unlock(&e->admin_mu);
    if (rc == TD_ENOTFOUND)
        return td_fail(TD_EAUTH, "not a valid token");
    if (rc)
        return rc; /* the catalog failed: not an answer about the token */
    if ((rc = sha256(secret, SECRET_CHARS, got)))
        return rc;
    if (CRYPTO_memcmp(want, got, sizeof(want)) != 0)
        return td_fail(TD_EAUTH, "not a valid token");
    *info = t;
    if (t.expires_ms > 0 && t.expires_ms <= td_wall_ms())
        return td_fail(TD_EAUTH, "the token expired");
    return 0;
}
