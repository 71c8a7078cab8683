/*
 * tls.c: the OpenSSL side of TLS listeners: server contexts made from certificate, key and CA
 * files (reloaded on request: new connections get the new context, open ones keep theirs), and
 * the non-blocking handshake, reads and writes of one connection. conn.c drives these from its
 * epoll events; nothing here touches the event loop.
 *
 * TLS records are parsed by OpenSSL, not by us: there is no parser of ours here to fuzz.
 *
 * Non-blocking OpenSSL: every call may want the socket readable or writable before it can go on
 * (SSL_ERROR_WANT_READ / WANT_WRITE), also a read that must write (a TLS 1.3 KeyUpdate answered)
 * and a write that must read. The connection keeps which one it waits for, conn.c turns that
 * into epoll interest, and retries the same call on the event. A write retried after WANT_WRITE
 * passes the same bytes again; SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER lets them sit at another
 * address, SSL_MODE_ENABLE_PARTIAL_WRITE lets SSL_write report what went out record by record.
 * Renegotiation is off (SSL_OP_NO_RENEGOTIATION): a client asking for it gets an alert.
 *
 * Memory per connection: OpenSSL keeps a read buffer (TLS_RBUF, 64 KiB: it reads ahead) and a
 * write buffer (about 16.7 KiB, a whole record). SSL_MODE_RELEASE_BUFFERS would free them after every record,
 * which cost a quarter of the throughput in bench/tls.sh; instead a connection idle for a second
 * gives them back (tls_trim, from the loop's once-a-second timer), and a busy one keeps them.
 * docs/operations.md states what was measured.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "base/base.h"
#include "net/net_int.h"

struct net_tls {
    pthread_mutex_t mu;
    SSL_CTX *ctx; /* under mu: the context new connections get */
    char *cert_file, *key_file, *ca_file;
    net_tls_client_auth client_auth;
    char name[32];
};

/* OpenSSL's reason for the latest error on this thread's queue, or `fallback`; clears it. */
static const char *ssl_reason(char *buf, size_t len, const char *fallback)
{
    unsigned long e = ERR_peek_last_error();
    if (e == 0) {
        snprintf(buf, len, "%s", fallback);
    } else {
        const char *r = ERR_reason_error_string(e);
        if (r)
            snprintf(buf, len, "%s", r);
        else
            ERR_error_string_n(e, buf, len);
    }
    ERR_clear_error();
    return buf;
}

/* A new context from the files; NULL with td_fail detail. */
static SSL_CTX *ctx_load(const net_tls *t)
{
    char why[256];
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        td_fail(-ENOMEM, "%s: cannot create a TLS context: %s", t->name,
                ssl_reason(why, sizeof(why), "out of memory"));
        return NULL;
    }
    /* TLS 1.2 and 1.3 only: 1.0 and 1.1 are deprecated (RFC 8996). */
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* Read ahead: OpenSSL reads what the socket holds into its buffer at once, instead of two
     * read(2) calls per record (its header, then its body). Bytes it holds raise no epoll
     * event: conn.c reads until OpenSSL wants more, or asks tls_pending. */
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_default_read_buffer_len(ctx, TLS_RBUF);
    /* Sessions are resumed with tickets (stateless): no server-side cache grows with clients. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (SSL_CTX_use_certificate_chain_file(ctx, t->cert_file) != 1) {
        td_fail(TD_ECONFIG, "%s: cannot use the certificate %s: %s", t->name, t->cert_file,
                ssl_reason(why, sizeof(why), "unreadable"));
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, t->key_file, SSL_FILETYPE_PEM) != 1) {
        td_fail(TD_ECONFIG, "%s: cannot use the key %s: %s", t->name, t->key_file,
                ssl_reason(why, sizeof(why), "unreadable"));
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        td_fail(TD_ECONFIG, "%s: the key %s does not match the certificate %s: %s", t->name,
                t->key_file, t->cert_file, ssl_reason(why, sizeof(why), "mismatch"));
        goto fail;
    }
    if (t->ca_file) {
        if (SSL_CTX_load_verify_locations(ctx, t->ca_file, NULL) != 1) {
            td_fail(TD_ECONFIG, "%s: cannot use the CA file %s: %s", t->name, t->ca_file,
                    ssl_reason(why, sizeof(why), "unreadable"));
            goto fail;
        }
        /* The names of the accepted CAs go in the CertificateRequest, so that clients with
         * several certificates pick one these CAs signed. */
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(t->ca_file);
        if (names)
            SSL_CTX_set_client_CA_list(ctx, names);
        ERR_clear_error();
    }
    int mode = SSL_VERIFY_NONE;
    if (t->client_auth == NET_TLS_CLIENT_REQUESTED)
        mode = SSL_VERIFY_PEER;
    else if (t->client_auth == NET_TLS_CLIENT_REQUIRED)
        mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(ctx, mode, NULL);
    SSL_CTX_set_verify_depth(ctx, 8);
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

int net_tls_create(const net_tls_config *cfg, net_tls **out)
{
    *out = NULL;
    if (!cfg->cert_file || !*cfg->cert_file || !cfg->key_file || !*cfg->key_file)
        return td_fail(TD_ECONFIG, "%s: TLS needs a certificate file and a key file",
                       cfg->name ? cfg->name : "tls");
    if (cfg->client_auth != NET_TLS_CLIENT_NONE && (!cfg->ca_file || !*cfg->ca_file))
        return td_fail(TD_ECONFIG, "%s: client certificates are verified against a CA file: set one",
                       cfg->name ? cfg->name : "tls");
    net_tls *t = calloc(1, sizeof(*t));
    if (!t)
        return td_fail(-ENOMEM, "out of memory");
    pthread_mutex_init(&t->mu, NULL);
    snprintf(t->name, sizeof(t->name), "%s", cfg->name ? cfg->name : "tls");
    t->client_auth = cfg->client_auth;
    t->cert_file = strdup(cfg->cert_file);
    t->key_file = strdup(cfg->key_file);
    t->ca_file = cfg->ca_file && *cfg->ca_file ? strdup(cfg->ca_file) : NULL;
    if (!t->cert_file || !t->key_file || (cfg->ca_file && *cfg->ca_file && !t->ca_file)) {
        net_tls_destroy(t);
        return td_fail(-ENOMEM, "out of memory");
    }
    t->ctx = ctx_load(t);
    if (!t->ctx) {
        char why[512];
        snprintf(why, sizeof(why), "%s", td_last_error());
        net_tls_destroy(t);
        return td_fail(TD_ECONFIG, "%s", why);
    }
    *out = t;
    return 0;
}

int net_tls_reload(net_tls *t)
{
    SSL_CTX *ctx = ctx_load(t);
    if (!ctx)
        return TD_ECONFIG;
    pthread_mutex_lock(&t->mu);
    SSL_CTX *old = t->ctx;
    t->ctx = ctx;
    pthread_mutex_unlock(&t->mu);
    /* Connections made with the old context hold their own references to it. */
    SSL_CTX_free(old);
    return 0;
}

void net_tls_destroy(net_tls *t)
{
    if (!t)
        return;
    SSL_CTX_free(t->ctx);
    free(t->cert_file);
    free(t->key_file);
    free(t->ca_file);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

tls_conn *tls_conn_new(net_tls *t, int fd)
{
    tls_conn *tc = calloc(1, sizeof(*tc));
    if (!tc)
        return NULL;
    /* SSL_new takes its own reference to the context, so a reload may free ours afterwards. */
    pthread_mutex_lock(&t->mu);
    tc->ssl = SSL_new(t->ctx);
    pthread_mutex_unlock(&t->mu);
    if (!tc->ssl || SSL_set_fd(tc->ssl, fd) != 1) {
        ERR_clear_error();
        tls_conn_free(tc);
        return NULL;
    }
    SSL_set_accept_state(tc->ssl);
    tc->name = t->name;
    return tc;
}

void tls_conn_free(tls_conn *tc)
{
    if (!tc)
        return;
    SSL_free(tc->ssl);
    free(tc->wbuf);
    free(tc->principal);
    free(tc);
}

/* The verified client certificate's subject CN, if any. */
static void take_principal(tls_conn *tc)
{
    X509 *cert = SSL_get0_peer_certificate(tc->ssl);
    if (!cert || SSL_get_verify_result(tc->ssl) != X509_V_OK)
        return;
    X509_NAME *subj = X509_get_subject_name(cert);
    int i = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
    if (i < 0)
        return;
    ASN1_STRING *d = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, i));
    unsigned char *utf8 = NULL;
    int n = ASN1_STRING_to_UTF8(&utf8, d);
    if (n < 0)
        return;
    /* A CN with a NUL inside would read as a shorter name: refuse it as a principal. */
    if ((int)strnlen((const char *)utf8, (size_t)n) == n) {
        tc->principal = malloc((size_t)n + 1);
        if (tc->principal) {
            memcpy(tc->principal, utf8, (size_t)n);
            tc->principal[n] = 0;
        }
    }
    OPENSSL_free(utf8);
}

int tls_handshake(tls_conn *tc, const char *peer)
{
    tc->want_write = false;
    ERR_clear_error();
    int r = SSL_do_handshake(tc->ssl);
    if (r == 1) {
        tc->done = true;
        take_principal(tc);
        if (td_log_get_level() <= TD_LOG_DEBUG)
            td_log(TD_LOG_DEBUG, "net", "%s: %s: TLS handshake done (%s, %s), principal %s",
                   tc->name, peer, SSL_get_version(tc->ssl), SSL_get_cipher_name(tc->ssl),
                   tc->principal ? tc->principal : "none");
        return 1;
    }
    int e = SSL_get_error(tc->ssl, r);
    if (e == SSL_ERROR_WANT_READ)
        return 0;
    if (e == SSL_ERROR_WANT_WRITE) {
        tc->want_write = true;
        return 0;
    }
    char why[256];
    const char *reason;
    if (BIO_number_read(SSL_get_rbio(tc->ssl)) == 0) {
        /* Closed (or reset) before sending a byte: a port scan or a TCP health check, not
         * worth a line above debug. */
        ERR_clear_error();
        TD_DEBUG("net", "%s: %s closed before its TLS handshake", tc->name, peer);
        return -1;
    }
    long vr = SSL_get_verify_result(tc->ssl);
    if (vr != X509_V_OK && ERR_peek_last_error() != 0) {
        ERR_clear_error();
        reason = X509_verify_cert_error_string(vr);
    } else {
        reason = ssl_reason(why, sizeof(why),
                            e == SSL_ERROR_SYSCALL ? "the peer closed the connection"
                                                   : "handshake failed");
    }
    /* One line per failure, rate-limited by the log's per-call-site limit. */
    td_log(TD_LOG_INFO, "net", "%s: TLS handshake with %s failed: %s; closing", tc->name, peer,
           reason);
    return -1;
}

/* The end of an SSL_read or SSL_write that did nothing: EAGAIN (waiting, with the direction
 * noted), EPIPE (the peer's close_notify on a read) or EIO. */
static ssize_t io_fail(tls_conn *tc, int r, bool reading)
{
    int e = SSL_get_error(tc->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        bool other = reading ? e == SSL_ERROR_WANT_WRITE : e == SSL_ERROR_WANT_READ;
        if (reading)
            tc->rd_wants_write = other;
        else
            tc->wr_wants_read = other;
        errno = EAGAIN;
        return -1;
    }
    if (e == SSL_ERROR_ZERO_RETURN) {
        ERR_clear_error();
        return 0;
    }
    if (td_log_get_level() <= TD_LOG_DEBUG) {
        char why[256];
        td_log(TD_LOG_DEBUG, "net", "%s: TLS %s failed: %s", tc->name, reading ? "read" : "write",
               ssl_reason(why, sizeof(why), "connection reset"));
    }
    ERR_clear_error();
    tc->failed = true;
    errno = EIO;
    return -1;
}

ssize_t tls_read(tls_conn *tc, void *buf, size_t n)
{
    /* SSL_read returns at most one record (16 KiB): read records until the buffer is full or
     * the socket is empty, so that a 64 KiB read costs one pass through the protocol. */
    size_t total = 0;
    tc->rd_wants_write = false;
    tc->trimmed = false;
    /* SSL_get_error needs an empty error queue before the call; every failure clears it. */
    ERR_clear_error();
    while (total < n) {
        size_t got = 0;
        int r = SSL_read_ex(tc->ssl, (uint8_t *)buf + total, n - total, &got);
        if (r == 1) {
            total += got;
            continue;
        }
        if (total > 0) {
            /* What was read goes to the protocol; the condition shows again on the next read. */
            (void)io_fail(tc, r, true);
            errno = 0;
            return (ssize_t)total;
        }
        return io_fail(tc, r, true);
    }
    return (ssize_t)total;
}

ssize_t tls_write(tls_conn *tc, const void *buf, size_t n)
{
    tc->wr_wants_read = false;
    tc->trimmed = false;
    size_t done = 0;
    ERR_clear_error();
    int r = SSL_write_ex(tc->ssl, buf, n, &done);
    if (r == 1)
        return (ssize_t)done;
    ssize_t f = io_fail(tc, r, false);
    if (f == 0) { /* a write cannot see close_notify as success */
        errno = EPIPE;
        return -1;
    }
    return f;
}

bool tls_pending(tls_conn *tc)
{
    /* Decrypted bytes of a record, and with read-ahead raw bytes of records not yet opened. */
    return SSL_has_pending(tc->ssl) == 1;
}

void tls_shutdown(tls_conn *tc)
{
    ERR_clear_error();
    (void)SSL_shutdown(tc->ssl);
    ERR_clear_error();
}

void tls_trim(tls_conn *tc)
{
    if (tc->trimmed || !tc->done)
        return;
    /* Frees only what holds no data (a partial record stays). */
    (void)SSL_free_buffers(tc->ssl);
    tc->trimmed = true;
}
