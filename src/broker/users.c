/*
 * users.c: the user store of include/tidings.h (td_user_*): SCRAM credentials in the catalog,
 * administered like topics (one change at a time, under the engine's admin_mu).
 *
 * Deriving credentials costs `iterations` HMACs per mechanism (a few milliseconds at 4096), so
 * it is done before taking admin_mu, and td_user_verify reads the credential under the mutex
 * and derives after releasing it: no administrative change waits behind a password check.
 *
 * Changes are debug lines here: the protocol that made one for a client logs and counts it in
 * the audit trail with the acting principal (broker_audit, docs/security.md#audit), and the
 * tidings command on a data directory says what it did on its output.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "base/base.h"
#include "base/scram.h"
#include "broker/broker.h"
#include "broker/engine_int.h"
#include "storage/storage.h"

/* The credentials for each mechanism of the mask, into v (room for two); *n gets the count. */
static int make_credentials(const char *name, const void *password, size_t len, int mechanisms,
                            int32_t iterations, td_scram_credential v[2], size_t *n)
{
    int rc = td_user_name_validate(name);
    if (rc)
        return rc;
    if ((rc = td_user_password_validate(password, len)))
        return rc;
    if (mechanisms <= 0 || (mechanisms & ~TD_SCRAM_ALL))
        return td_fail(TD_EINVAL, "mechanisms: SCRAM-SHA-256, SCRAM-SHA-512 or both");
    *n = 0;
    for (int m = TD_SCRAM_SHA_256; m <= TD_SCRAM_SHA_512; m <<= 1) {
        if (!(mechanisms & m))
            continue;
        if ((rc = scram_credential_new(m, password, len, iterations, &v[*n])))
            return rc;
        (*n)++;
    }
    return 0;
}

static int user_put(td_engine *e, const char *name, const void *password, size_t len,
                    int mechanisms, int32_t iterations, bool replace)
{
    td_error_clear();
    td_scram_credential v[2];
    size_t n = 0;
    int rc = make_credentials(name, password, len, mechanisms, iterations, v, &n);
    if (rc == 0) {
        pthread_mutex_lock(&e->admin_mu);
        rc = catalog_user_put(e->cat, name, v, n, replace);
        pthread_mutex_unlock(&e->admin_mu);
    }
    OPENSSL_cleanse(v, sizeof(v));
    if (rc == 0)
        __atomic_add_fetch(&e->users_gen, 1, __ATOMIC_ACQ_REL);
    if (rc == 0)
        TD_DEBUG("users", "%s user %s", replace ? "changed the password of" : "added", name);
    return rc;
}

int td_user_add(td_engine *e, const char *name, const void *password, size_t password_len,
                int mechanisms, int32_t iterations)
{
    return user_put(e, name, password, password_len, mechanisms, iterations, false);
}

int td_user_passwd(td_engine *e, const char *name, const void *password, size_t password_len,
                   int mechanisms, int32_t iterations)
{
    return user_put(e, name, password, password_len, mechanisms, iterations, true);
}

int td_user_remove(td_engine *e, const char *name)
{
    td_error_clear();
    int rc = td_user_name_validate(name);
    if (rc)
        return rc;
    pthread_mutex_lock(&e->admin_mu);
    rc = catalog_user_remove(e->cat, name);
    pthread_mutex_unlock(&e->admin_mu);
    if (rc == 0)
        __atomic_add_fetch(&e->users_gen, 1, __ATOMIC_ACQ_REL);
    if (rc == 0)
        TD_DEBUG("users", "removed user %s (and its API tokens)", name);
    return rc;
}

int td_user_list(td_engine *e, td_user_info **out, size_t *count)
{
    td_error_clear();
    pthread_mutex_lock(&e->admin_mu);
    int rc = catalog_user_list(e->cat, out, count);
    pthread_mutex_unlock(&e->admin_mu);
    return rc;
}

int td_user_credential(td_engine *e, const char *name, int mechanism, td_scram_credential *out)
{
    td_error_clear();
    int rc = td_user_name_validate(name);
    if (rc)
        return rc == TD_ENAME ? td_fail(TD_ENOTFOUND, "no such user") : rc;
    if (!td_scram_mechanism_name(mechanism))
        return td_fail(TD_EINVAL, "unknown SCRAM mechanism %d", mechanism);
    pthread_mutex_lock(&e->admin_mu);
    rc = catalog_user_get(e->cat, name, mechanism, out);
    pthread_mutex_unlock(&e->admin_mu);
    return rc;
}

int td_user_verify(td_engine *e, const char *name, const void *password, size_t password_len)
{
    td_error_clear();
    td_scram_credential c;
    int rc = td_user_name_validate(name) == 0 ? 0 : TD_ENOTFOUND;
    if (rc == 0) {
        pthread_mutex_lock(&e->admin_mu);
        rc = catalog_user_get(e->cat, name, TD_SCRAM_SHA_512, &c);
        if (rc == TD_ENOTFOUND)
            rc = catalog_user_get(e->cat, name, TD_SCRAM_SHA_256, &c);
        pthread_mutex_unlock(&e->admin_mu);
    }
    if (rc == TD_ENOTFOUND) {
        /* An unknown user costs what a known one does (one derivation at the default count),
         * so that the time of a refusal does not tell which names exist. */
        static const uint8_t salt[TD_SCRAM_SALT_LEN];
        if (password && password_len > 0 && password_len <= TD_USER_PASSWORD_MAX)
            (void)scram_derive(TD_SCRAM_SHA_512, password, password_len, salt, sizeof(salt),
                               TD_SCRAM_ITERATIONS_DEFAULT, &c);
        OPENSSL_cleanse(&c, sizeof(c));
        td_error_clear();
        return td_fail(TD_EAUTH, "wrong user name or password");
    }
    if (rc)
        return rc; /* the catalog failed: not an answer about the password */
    rc = scram_verify(&c, password, password_len);
    OPENSSL_cleanse(&c, sizeof(c));
    td_error_clear();
    return rc ? td_fail(TD_EAUTH, "wrong user name or password") : 0;
}

uint64_t broker_users_generation(td_engine *e)
{
    return __atomic_load_n(&e->users_gen, __ATOMIC_ACQUIRE);
}

/* Replaces (or adds) the credential c->mechanism of `name`, or removes it when `remove`: the
 * other mechanism's credential stays. A user left without credentials no longer exists, as in
 * Kafka, where a SCRAM user is its credentials. Under admin_mu, one catalog transaction. */
static int credential_change(td_engine *e, const char *name, int mechanism,
                             const td_scram_credential *c, bool remove)
{
    td_scram_credential v[2];
    size_t n = 0;
    bool existed = false, had = false;
    pthread_mutex_lock(&e->admin_mu);
    int rc = 0;
    for (int m = TD_SCRAM_SHA_256; m <= TD_SCRAM_SHA_512 && rc == 0; m <<= 1) {
        int g = catalog_user_get(e->cat, name, m, &v[n]);
        if (g == TD_ENOTFOUND)
            continue;
        if (g) {
            rc = g;
            break;
        }
        existed = true;
        if (m == mechanism)
            had = true;
        else
            n++;
    }
    if (rc == 0 && remove && !had)
        rc = td_fail(TD_ENOTFOUND, "user '%s' has no %s credential", name,
                     td_scram_mechanism_name(mechanism));
    if (rc == 0 && !remove)
        v[n++] = *c;
    td_error_clear();
    if (rc == 0) {
        if (n == 0)
            rc = catalog_user_remove(e->cat, name);
        else
            rc = catalog_user_put(e->cat, name, v, n, existed);
    }
    if (rc == 0) /* caches of verified passwords drop what they hold */
        __atomic_add_fetch(&e->users_gen, 1, __ATOMIC_ACQ_REL);
    pthread_mutex_unlock(&e->admin_mu);
    OPENSSL_cleanse(v, sizeof(v));
    return rc;
}

int td_user_set_salted(td_engine *e, const char *name, int mechanism, const uint8_t *salt,
                       size_t salt_len, const uint8_t *salted_password, size_t salted_len,
                       int32_t iterations)
{
    td_error_clear();
    int rc = td_user_name_validate(name);
    if (rc)
        return rc;
    if (!td_scram_mechanism_name(mechanism))
        return td_fail(TD_EINVAL, "unknown SCRAM mechanism %d", mechanism);
    if (iterations < TD_SCRAM_ITERATIONS_MIN || iterations > TD_SCRAM_ITERATIONS_MAX)
        return td_fail(TD_EINVAL, "SCRAM iterations must be %d to %d, not %d",
                       TD_SCRAM_ITERATIONS_MIN, TD_SCRAM_ITERATIONS_MAX, (int)iterations);
    td_scram_credential c;
    if ((rc = scram_from_salted(mechanism, salted_password, salted_len, salt, salt_len, iterations,
                                &c)))
        return rc;
    rc = credential_change(e, name, mechanism, &c, false);
    OPENSSL_cleanse(&c, sizeof(c));
    if (rc == 0)
        TD_DEBUG("users", "set the %s credential of user %s", td_scram_mechanism_name(mechanism),
                 name);
    return rc;
}

int td_user_remove_credential(td_engine *e, const char *name, int mechanism)
{
    td_error_clear();
    int rc = td_user_name_validate(name);
    if (rc)
        return rc == TD_ENAME ? td_fail(TD_ENOTFOUND, "no such user") : rc;
    if (!td_scram_mechanism_name(mechanism))
        return td_fail(TD_EINVAL, "unknown SCRAM mechanism %d", mechanism);
    rc = credential_change(e, name, mechanism, NULL, true);
    if (rc == 0)
        TD_DEBUG("users", "removed the %s credential of user %s",
                 td_scram_mechanism_name(mechanism), name);
    return rc;
}
