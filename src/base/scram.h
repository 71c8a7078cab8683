/*
 * scram.h: SCRAM credentials (RFC 5802, RFC 7677) over OpenSSL's libcrypto: deriving them from
 * a password, checking a password against them, and the HMAC and hash steps a SCRAM server
 * exchange needs. Pure functions, except scram_credential_new, which draws a random salt.
 */
#ifndef TD_BASE_SCRAM_H
#define TD_BASE_SCRAM_H

#include <stddef.h>
#include <stdint.h>

#include "tidings.h"

/* The hash's output size for a mechanism bit: 32, 64, or 0 for anything else. */
size_t scram_key_len(int mechanism);

/* Derives the credential for a password, a salt and an iteration count (deterministic):
 * SaltedPassword = PBKDF2-HMAC-H(password, salt, iterations), StoredKey = H(HMAC(SaltedPassword,
 * "Client Key")), ServerKey = HMAC(SaltedPassword, "Server Key"). The password and salt are
 * only checked for their bounds here (1..TD_SCRAM_SALT_MAX bytes of salt, iterations >= 1):
 * callers that take them from users validate them first. TD_EINVAL, -ENOMEM. */
int scram_derive(int mechanism, const void *password, size_t password_len, const uint8_t *salt,
                 size_t salt_len, int32_t iterations, td_scram_credential *out);

/* The credential for a SaltedPassword computed elsewhere (Kafka's AlterUserScramCredentials
 * sends salt, iterations and SaltedPassword, never the password): salted_len must be the
 * hash's size. TD_EINVAL, -ENOMEM. */
int scram_from_salted(int mechanism, const uint8_t *salted, size_t salted_len, const uint8_t *salt,
                      size_t salt_len, int32_t iterations, td_scram_credential *out);

/* A new credential for a password: a fresh random salt of TD_SCRAM_SALT_LEN bytes (RAND_bytes;
 * -EIO if the generator fails), the password validated (td_user_password_validate) and the
 * iterations within TD_SCRAM_ITERATIONS_MIN..MAX (0: the default). */
int scram_credential_new(int mechanism, const void *password, size_t password_len,
                         int32_t iterations, td_scram_credential *out);

/* 0 when the password derives the credential's StoredKey and ServerKey (compared in constant
 * time), TD_EAUTH otherwise. Costs `iterations` HMACs. */
int scram_verify(const td_scram_credential *c, const void *password, size_t password_len);

/* Checks that a credential read back from storage is usable (a known mechanism, key length to
 * match, salt within bounds, iterations positive): 0 or TD_ECORRUPT. */
int scram_credential_check(const td_scram_credential *c);

/* HMAC-H(key, data) into out (scram_key_len bytes) and H(data) into out: the steps of the
 * exchange (ClientSignature, ServerSignature, StoredKey from a ClientKey). TD_EINVAL for an
 * unknown mechanism, -ENOMEM. */
int scram_hmac(int mechanism, const void *key, size_t key_len, const void *data, size_t len,
               uint8_t *out);
int scram_hash(int mechanism, const void *data, size_t len, uint8_t *out);

#endif /* TD_BASE_SCRAM_H */
