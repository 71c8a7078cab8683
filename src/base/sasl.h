/*
 * sasl.h: the server side of SASL PLAIN (RFC 4616) and of a SCRAM exchange (RFC 5802, RFC 7677)
 * as pure functions over buffers: no sockets, no store. The protocol that carries the tokens
 * (Kafka's SaslAuthenticate, raw Kafka v0 frames) looks up credentials and decides what a
 * failure does to the connection.
 *
 * A SCRAM exchange on the server:
 *   1. scram_parse_client_first(token)      -> the user name (and the parsed message)
 *   2. the caller finds the user's credential; for an unknown user (or one without a credential
 *      for the mechanism) it calls scram_fake_credential, so that the server-first message looks
 *      like a real one and the exchange fails only at the proof, as a wrong password does
 *   3. scram_server_first(...)              -> the server-first message to send
 *   4. scram_server_final(client-final)     -> 0 and "v=ServerSignature", or an error and
 *                                              "e=<server-error-value>"
 * The exchange's state lives in a scram_server the caller owns; scram_server_clear wipes it.
 */
#ifndef TD_BASE_SASL_H
#define TD_BASE_SASL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "tidings.h"

/* The longest client message accepted (client-first or client-final): enough for the longest
 * user name escaped (3 bytes per byte), a nonce and a SHA-512 proof, with room to spare. */
#define SCRAM_MESSAGE_MAX 4096
/* Nonce lengths: the client's (printable, no comma) and the server's part (base64 of 24
 * random bytes). */
#define SCRAM_NONCE_MAX 256
#define SCRAM_SERVER_NONCE_BYTES 24

/* RFC 5802 section 7 server-error-values this server sends. */
#define SCRAM_E_INVALID_ENCODING "invalid-encoding"
#define SCRAM_E_EXTENSIONS "extensions-not-supported"
#define SCRAM_E_INVALID_PROOF "invalid-proof"
#define SCRAM_E_CB_MISMATCH "channel-bindings-dont-match"
#define SCRAM_E_CB_UNSUPPORTED "channel-binding-not-supported"
#define SCRAM_E_USERNAME_ENCODING "invalid-username-encoding"
#define SCRAM_E_OTHER "other-error"

/* A parsed client-first-message. Pointers borrow from the scram_server that parsed it. */
typedef struct scram_client_first {
    char user[TD_USER_NAME_MAX + 1]; /* unescaped (=2C is ',', =3D is '=') */
    bool has_authzid;
    char authzid[TD_USER_NAME_MAX + 1];
    bool token_auth; /* the Kafka extension tokenauth=true (delegation tokens) */
} scram_client_first;

typedef struct scram_server {
    int mechanism;
    int stage; /* 0: waiting for client-first; 1: server-first sent; 2: finished */
    bool fake; /* the credential is a stand-in: the proof can never match */
    td_scram_credential cred;
    char gs2[TD_USER_NAME_MAX * 3 + 16]; /* the gs2 header as the client sent it */
    size_t gs2_len;
    char nonce[SCRAM_NONCE_MAX + 64]; /* client nonce + server nonce */
    td_buf auth;                      /* client-first-bare "," server-first "," */
    char user[TD_USER_NAME_MAX + 1];
} scram_server;

void scram_server_init(scram_server *s, int mechanism);
void scram_server_clear(scram_server *s); /* wipes keys and frees; reusable after init */

/*
 * Parses the client-first-message in p[0..n) (RFC 5802 section 7): gs2 header "n,," or "y,,"
 * (a client asking for channel binding with "p=" is refused: no binding is offered), an
 * optional authzid "a=" that must name the user itself, "n=" user name with =2C / =3D escapes,
 * "r=" nonce, then extensions (Kafka's tokenauth is noted; "m=" is refused). The state keeps
 * what the later steps need. 0, or TD_EPROTO / TD_EAUTH with *error set to the RFC's
 * server-error-value (invalid-encoding, extensions-not-supported, ...).
 */
int scram_parse_client_first(scram_server *s, const uint8_t *p, size_t n, scram_client_first *out,
                             const char **error);

/* A stand-in credential for a name that has none: salt and iteration count derived from the
 * name and a per-process secret (HMAC), so the same name always gets the same answer and a
 * client cannot tell it from a real user's; keys that nothing derives. */
int scram_fake_credential(int mechanism, const char *name, const uint8_t *secret, size_t secret_len,
                          td_scram_credential *out);

/* Builds the server-first message "r=<client nonce><server nonce>,s=<salt>,i=<iterations>"
 * into out (appended) with the credential to check the proof against (copied; `fake` makes the
 * proof fail whatever it is). The server nonce comes from RAND_bytes (-EIO if it fails). */
int scram_server_first(scram_server *s, const td_scram_credential *cred, bool fake, td_buf *out);
/* The same with the server nonce given (printable, no comma): for tests and fuzzing, which
 * replay fixed exchanges such as RFC 7677's. */
int scram_server_first_nonce(scram_server *s, const td_scram_credential *cred, bool fake,
                             const char *server_nonce, td_buf *out);

/*
 * Checks the client-final-message "c=<base64 gs2 header>,r=<nonce>[,ext],p=<proof>": the
 * channel binding must be the gs2 header sent first ("biws" for "n,,"), the nonce must end with
 * the combined one (librdkafka repeats the client nonce in front, which Kafka accepts), the proof
 * ClientKey XOR HMAC(StoredKey, AuthMessage) with H(ClientKey) = StoredKey (compared in constant
 * time). 0 and "v=<ServerSignature>" appended to out; otherwise TD_EAUTH (wrong proof) or TD_EPROTO
 * (malformed), with "e=<value>" appended to out and *error set to the value.
 */
int scram_server_final(scram_server *s, const uint8_t *p, size_t n, td_buf *out,
                       const char **error);

/* SASL PLAIN (RFC 4616): "[authzid] NUL authcid NUL passwd". Splits p[0..n) into pointers into
 * a copy the caller provides (buf, n + 1 bytes). 0, or TD_EPROTO when malformed (missing NULs,
 * empty user or password, an authzid other than the user). */
int sasl_plain_parse(const uint8_t *p, size_t n, char *buf, const char **user,
                     const char **password, size_t *password_len);

#endif /* TD_BASE_SASL_H */
