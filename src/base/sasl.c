/*
 * sasl.c: the server side of SASL PLAIN and SCRAM (RFC 4616, RFC 5802, RFC 7677) over buffers.
 *
 * Every message is parsed as attribute=value pairs separated by commas, with no allocation
 * beyond the state's AuthMessage buffer; inputs longer than SCRAM_MESSAGE_MAX are refused before
 * any work. The proof is checked the RFC's way: ClientSignature = HMAC(StoredKey, AuthMessage),
 * ClientKey = proof XOR ClientSignature, and H(ClientKey) must equal StoredKey (CRYPTO_memcmp).
 * An unknown user gets a stand-in credential (scram_fake_credential) and the same steps, so the
 * answers and their cost are those of a wrong password.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "base/sasl.h"
#include "base/scram.h"

void scram_server_init(scram_server *s, int mechanism)
{
    memset(s, 0, sizeof(*s));
    s->mechanism = mechanism;
    td_buf_init(&s->auth);
}

void scram_server_clear(scram_server *s)
{
    int mech = s->mechanism;
    if (s->auth.p)
        OPENSSL_cleanse(s->auth.p, s->auth.cap);
    td_buf_free(&s->auth);
    OPENSSL_cleanse(s, sizeof(*s));
    scram_server_init(s, mech);
}

/* The next comma-separated field of [*p, end): its bounds in *f, *fn; false at the end. */
static bool next_field(const char **p, const char *end, const char **f, size_t *fn)
{
    if (*p > end)
        return false;
    const char *c = memchr(*p, ',', (size_t)(end - *p));
    const char *stop = c ? c : end;
    *f = *p;
    *fn = (size_t)(stop - *p);
    *p = c ? c + 1 : end + 1;
    return true;
}

/* A saslname (RFC 5802: ",", "=" escaped as =2C, =3D) unescaped into out (cap bytes with the
 * NUL). false for a bad escape, a NUL, a comma, or a name too long. */
static bool saslname(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '\0' || ch == ',')
            return false;
        if (ch == '=') {
            if (n - i < 3)
                return false;
            if (s[i + 1] == '2' && s[i + 2] == 'C')
                ch = ',';
            else if (s[i + 1] == '3' && s[i + 2] == 'D')
                ch = '=';
            else
                return false;
            i += 2;
        }
        if (o + 1 >= cap)
            return false;
        out[o++] = ch;
    }
    out[o] = '\0';
    return o > 0;
}

static int refuse(const char **error, const char *value, int rc)
{
    if (error)
        *error = value;
    return rc;
}

int scram_parse_client_first(scram_server *s, const uint8_t *msg, size_t n, scram_client_first *out,
                             const char **error)
{
    memset(out, 0, sizeof(*out));
    if (s->stage != 0 || !scram_key_len(s->mechanism))
        return refuse(error, SCRAM_E_OTHER, TD_EPROTO);
    if (n == 0 || n > SCRAM_MESSAGE_MAX || memchr(msg, 0, n))
        return refuse(error, SCRAM_E_INVALID_ENCODING, TD_EPROTO);
    const char *p = (const char *)msg, *end = p + n, *f = NULL;
    size_t fn = 0;
    /* gs2-cbind-flag: "n" (client cannot bind), "y" (client could, thinks the server cannot);
     * "p=" asks for a binding this server does not offer over SASL. */
    if (!next_field(&p, end, &f, &fn) || fn != 1 || p > end) {
        if (fn >= 2 && f[0] == 'p' && f[1] == '=')
            return refuse(error, SCRAM_E_CB_UNSUPPORTED, TD_EAUTH);
        return refuse(error, SCRAM_E_INVALID_ENCODING, TD_EPROTO);
    }
    if (f[0] != 'n' && f[0] != 'y')
        return refuse(error, SCRAM_E_INVALID_ENCODING, TD_EPROTO);
    /* authzid: empty, or "a=" saslname. */
    if (!next_field(&p, end, &f, &fn) || p > end)
        return refuse(error, SCRAM_E_INVALID_ENCODING, TD_EPROTO);
    if (fn > 0) {
        if (fn < 3 || f[0] != 'a' || f[1] != '=' ||
            !saslname(f + 2, fn - 2, out->authzid, sizeof(out->authzid)))
            return refuse(error, SCRAM_E_INVALID_ENCODING, TD_EPROTO);
        out->has_authzid = true;
    }
    size_t gs2_len = (size_t)(p - (const char *)msg);
    if (gs2_len >= sizeof(s->gs2))
        return refuse(error, SCRAM_E_INVALID_ENCODING, TD_EPROTO);
    const char *bare = p;
    /* client-first-message-bare: ["m=" ...,] "n=" user "," "r=" nonce ["," extensions] */
    if (!next_field(&p, end, &f, &fn))
        return refuse(error, SCRAM_E_INVALID_ENCODING, TD_EPROTO);
    if (fn >= 2 && f[0] == 'm' && f[1] == '=')
        return refuse(error, SCRAM_E_EXTENSIONS, TD_EPROTO);
    if (fn < 3 || f[0] != 'n' || f[1] != '=')
        return refuse(error, SCRAM_E_INVALID_ENCODING, TD_EPROTO);
    if (!saslname(f + 2, fn - 2, out->user, sizeof(out->user)))
        return refuse(error, SCRAM_E_USERNAME_ENCODING, TD_EPROTO);
    if (out->has_authzid && strcmp(out->authzid, out->user) != 0)
        return refuse(error, SCRAM_E_OTHER, TD_EAUTH); /* acting for another user: refused */
    if (!next_field(&p, end, &f, &fn) || fn < 3 || f[0] != 'r' || f[1] != '=' ||
        fn - 2 > SCRAM_NONCE_MAX)
        return refuse(error, SCRAM_E_INVALID_ENCODING, TD_EPROTO);
    for (size_t i = 2; i < fn; i++)
        if (f[i] < 0x21 || f[i] > 0x7e) /* printable, and ',' cannot occur in a field */
            return refuse(error, SCRAM_E_INVALID_ENCODING, TD_EPROTO);
    const char *nonce = f + 2;
    size_t nonce_len = fn - 2;
    /* Extensions: attr=value with a letter attr. Kafka's "tokenauth=true" (KIP-48) asks for a
     * delegation token, which this broker does not issue: the caller refuses it. */
    while (next_field(&p, end, &f, &fn)) {
        const char *eq = memchr(f, '=', fn);
        if (!eq || eq == f)
            return refuse(error, SCRAM_E_INVALID_ENCODING, TD_EPROTO);
        if ((size_t)(eq - f) == 9 && !memcmp(f, "tokenauth", 9))
            out->token_auth = fn == 14 && !memcmp(eq + 1, "true", 4);
    }
    memcpy(s->gs2, msg, gs2_len);
    s->gs2[gs2_len] = '\0';
    s->gs2_len = gs2_len;
    memcpy(s->nonce, nonce, nonce_len);
    s->nonce[nonce_len] = '\0';
    snprintf(s->user, sizeof(s->user), "%s", out->user);
    td_buf_reset(&s->auth);
    int rc = td_buf_append(&s->auth, bare, (size_t)(end - bare));
    if (rc == 0)
        rc = td_buf_append_u8(&s->auth, ',');
    if (rc)
        return refuse(error, SCRAM_E_OTHER, rc);
    return 0;
}

int scram_fake_credential(int mechanism, const char *name, const uint8_t *secret, size_t secret_len,
                          td_scram_credential *out)
{
    size_t klen = scram_key_len(mechanism);
    if (!klen)
        return TD_EINVAL;
    uint8_t mac[TD_SCRAM_KEY_MAX];
    td_buf in;
    td_buf_init(&in);
    int rc = td_buf_append(&in, "salt:", 5);
    if (rc == 0)
        rc = td_buf_append(&in, name, strlen(name));
    if (rc == 0)
        rc = scram_hmac(mechanism, secret, secret_len, in.p, in.len, mac);
    td_buf_free(&in);
    if (rc)
        return rc;
    memset(out, 0, sizeof(*out));
    out->mechanism = mechanism;
    out->key_len = klen;
    out->salt_len = TD_SCRAM_SALT_LEN <= klen ? TD_SCRAM_SALT_LEN : klen;
    memcpy(out->salt, mac, out->salt_len);
    /* Real credentials are made with the default count (users.c), so the stand-in uses it too:
     * a varying count would stand out among users that all share one. */
    out->iterations = TD_SCRAM_ITERATIONS_DEFAULT;
    /* Keys no password derives (a second HMAC): the proof check runs its course and fails. */
    rc = scram_hmac(mechanism, secret, secret_len, mac, klen, out->stored_key);
    if (rc == 0)
        memcpy(out->server_key, out->stored_key, klen);
    OPENSSL_cleanse(mac, sizeof(mac));
    return rc;
}

int scram_server_first_nonce(scram_server *s, const td_scram_credential *cred, bool fake,
                             const char *server_nonce, td_buf *out)
{
    size_t cl = strlen(s->nonce), sl = strlen(server_nonce);
    if (s->stage != 0 || s->auth.len == 0 || cred->mechanism != s->mechanism ||
        scram_credential_check(cred) || sl == 0 || cl + sl >= sizeof(s->nonce) ||
        strchr(server_nonce, ','))
        return TD_EINVAL;
    memcpy(s->nonce + cl, server_nonce, sl);
    s->nonce[cl + sl] = '\0';
    td_buf salt;
    td_buf_init(&salt);
    int rc = td_base64_encode(&salt, cred->salt, cred->salt_len);
    char iters[24];
    snprintf(iters, sizeof(iters), ",i=%" PRId32, cred->iterations);
    size_t start = out->len;
    if (rc == 0 && !(rc = td_buf_append(out, "r=", 2)) &&
        !(rc = td_buf_append(out, s->nonce, cl + sl)) && !(rc = td_buf_append(out, ",s=", 3)) &&
        !(rc = td_buf_append(out, salt.p, salt.len)) &&
        !(rc = td_buf_append(out, iters, strlen(iters))))
        rc = td_buf_append(&s->auth, out->p + start, out->len - start);
    if (rc == 0)
        rc = td_buf_append_u8(&s->auth, ',');
    td_buf_free(&salt);
    if (rc) {
        s->nonce[cl] = '\0';
        return rc;
    }
    s->cred = *cred;
    s->fake = fake;
    s->stage = 1;
    return 0;
}

int scram_server_first(scram_server *s, const td_scram_credential *cred, bool fake, td_buf *out)
{
    uint8_t rnd[SCRAM_SERVER_NONCE_BYTES];
    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        return -EIO;
    td_buf b64;
    td_buf_init(&b64);
    int rc = td_base64_encode(&b64, rnd, sizeof(rnd));
    if (rc == 0)
        rc = td_buf_append_u8(&b64, 0);
    if (rc == 0)
        rc = scram_server_first_nonce(s, cred, fake, (const char *)b64.p, out);
    td_buf_free(&b64);
    return rc;
}

static int final_error(scram_server *s, td_buf *out, const char **error, const char *value, int rc)
{
    s->stage = 2;
    if (td_buf_append(out, "e=", 2) == 0)
        (void)td_buf_append(out, value, strlen(value));
    return refuse(error, value, rc);
}

/* Checks the proof (len bytes) against the AuthMessage; writes ServerSignature into sig. */
static int check_proof(scram_server *s, const uint8_t *proof, size_t len, uint8_t *sig)
{
    size_t klen = s->cred.key_len;
    uint8_t csig[TD_SCRAM_KEY_MAX], ckey[TD_SCRAM_KEY_MAX], stored[TD_SCRAM_KEY_MAX];
    int rc = scram_hmac(s->mechanism, s->cred.stored_key, klen, s->auth.p, s->auth.len, csig);
    if (rc == 0) {
        for (size_t i = 0; i < klen; i++)
            ckey[i] = (uint8_t)((i < len ? proof[i] : 0) ^ csig[i]);
        rc = scram_hash(s->mechanism, ckey, klen, stored);
    }
    if (rc == 0)
        rc = scram_hmac(s->mechanism, s->cred.server_key, klen, s->auth.p, s->auth.len, sig);
    bool ok = rc == 0 && len == klen && CRYPTO_memcmp(stored, s->cred.stored_key, klen) == 0;
    OPENSSL_cleanse(csig, sizeof(csig));
    OPENSSL_cleanse(ckey, sizeof(ckey));
    OPENSSL_cleanse(stored, sizeof(stored));
    if (rc)
        return rc;
    return ok && !s->fake ? 0 : TD_EAUTH;
}

int scram_server_final(scram_server *s, const uint8_t *msg, size_t n, td_buf *out,
                       const char **error)
{
    if (s->stage != 1)
        return final_error(s, out, error, SCRAM_E_OTHER, TD_EPROTO);
    if (n == 0 || n > SCRAM_MESSAGE_MAX || memchr(msg, 0, n))
        return final_error(s, out, error, SCRAM_E_INVALID_ENCODING, TD_EPROTO);
    const char *p = (const char *)msg, *end = p + n, *f;
    size_t fn;
    /* channel-binding: base64 of the gs2 header (no binding data: "p=" was refused). */
    if (!next_field(&p, end, &f, &fn) || fn < 2 || f[0] != 'c' || f[1] != '=')
        return final_error(s, out, error, SCRAM_E_INVALID_ENCODING, TD_EPROTO);
    td_buf cb;
    td_buf_init(&cb);
    int rc = td_base64_decode(&cb, f + 2, fn - 2);
    bool cb_ok = rc == 0 && cb.len == s->gs2_len && !memcmp(cb.p, s->gs2, s->gs2_len);
    td_buf_free(&cb);
    td_error_clear();
    if (!cb_ok)
        return final_error(s, out, error, SCRAM_E_CB_MISMATCH, TD_EAUTH);
    if (!next_field(&p, end, &f, &fn) || fn < 2 || f[0] != 'r' || f[1] != '=')
        return final_error(s, out, error, SCRAM_E_INVALID_ENCODING, TD_EPROTO);
    /* The nonce must end with the combined nonce sent in server-first. RFC 5802 wants it equal;
     * librdkafka (2.0 and before) sends the client nonce once more in front of it, and Kafka's
     * server accepts that by checking the suffix only (ScramSaslServer). The AuthMessage is made
     * of the message as sent, so the proof covers whatever came. */
    size_t nl = strlen(s->nonce);
    if (fn - 2 < nl || fn - 2 > SCRAM_NONCE_MAX * 2 + 64 ||
        CRYPTO_memcmp(f + fn - nl, s->nonce, nl) != 0)
        return final_error(s, out, error, SCRAM_E_INVALID_PROOF, TD_EAUTH);
    /* Extensions, then the proof, which must come last. */
    const char *proof = NULL, *without_proof_end = NULL;
    size_t proof_len = 0;
    while (next_field(&p, end, &f, &fn)) {
        if (fn >= 2 && f[0] == 'p' && f[1] == '=') {
            if (p <= end) /* something follows the proof */
                return final_error(s, out, error, SCRAM_E_INVALID_ENCODING, TD_EPROTO);
            proof = f + 2;
            proof_len = fn - 2;
            without_proof_end = f - 1;
        } else if (!memchr(f, '=', fn) || fn < 2 || f[0] == '=') {
            return final_error(s, out, error, SCRAM_E_INVALID_ENCODING, TD_EPROTO);
        }
    }
    if (!proof)
        return final_error(s, out, error, SCRAM_E_INVALID_ENCODING, TD_EPROTO);
    td_buf pb;
    td_buf_init(&pb);
    if (td_base64_decode(&pb, proof, proof_len) != 0 || pb.len == 0) {
        td_buf_free(&pb);
        td_error_clear();
        return final_error(s, out, error, SCRAM_E_INVALID_ENCODING, TD_EPROTO);
    }
    if ((rc = td_buf_append(&s->auth, msg, (size_t)(without_proof_end - (const char *)msg)))) {
        td_buf_free(&pb);
        return final_error(s, out, error, SCRAM_E_OTHER, rc);
    }
    uint8_t sig[TD_SCRAM_KEY_MAX];
    rc = check_proof(s, pb.p, pb.len, sig);
    td_buf_free(&pb);
    if (rc == TD_EAUTH)
        return final_error(s, out, error, SCRAM_E_INVALID_PROOF, TD_EAUTH);
    if (rc)
        return final_error(s, out, error, SCRAM_E_OTHER, rc);
    s->stage = 2;
    if (!(rc = td_buf_append(out, "v=", 2)))
        rc = td_base64_encode(out, sig, s->cred.key_len);
    OPENSSL_cleanse(sig, sizeof(sig));
    return rc;
}

int sasl_plain_parse(const uint8_t *p, size_t n, char *buf, const char **user,
                     const char **password, size_t *password_len)
{
    if (n == 0)
        return TD_EPROTO;
    memcpy(buf, p, n);
    buf[n] = '\0';
    const char *z1 = memchr(buf, 0, n);
    if (!z1)
        return TD_EPROTO;
    size_t authz_len = (size_t)(z1 - buf);
    const char *u = z1 + 1;
    const char *z2 = memchr(u, 0, (size_t)(buf + n - u));
    if (!z2 || z2 == u)
        return TD_EPROTO;
    const char *pw = z2 + 1;
    size_t pl = (size_t)(buf + n - pw);
    if (pl == 0 || memchr(pw, 0, pl))
        return TD_EPROTO;
    /* An authzid other than the user would be acting for someone else: refused, as Kafka's
     * PlainSaslServer does. */
    if (authz_len && strcmp(buf, u) != 0)
        return TD_EAUTH;
    *user = u;
    *password = pw;
    *password_len = pl;
    return 0;
}
