/*
 * Unit tests for net/tls.c: contexts from files (and their errors), the non-blocking handshake,
 * reads and writes over a socketpair against an OpenSSL client in the same thread, the client
 * certificate's principal, the refusal of TLS 1.1, and reloads. Certificates are made here with
 * OpenSSL's API (a self-signed P-256 certificate serves as its own CA).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "base/base.h"
#include "net/net.h"
#include "net/net_int.h"
#include "test.h"

static char dir[] = "/tmp/td_tls_XXXXXX";

/* Writes a self-signed certificate for `cn` with `serial` to <dir>/<name>.pem and .key. */
static void make_cert(const char *name, const char *cn, long serial)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    ASSERT(k != NULL);
    X509 *x = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, k);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, n);
    ASSERT(X509_sign(x, k, EVP_sha256()) > 0);
    char path[256];
    snprintf(path, sizeof(path), "%s/%s.pem", dir, name);
    FILE *f = fopen(path, "w");
    ASSERT(f && PEM_write_X509(f, x) == 1);
    fclose(f);
    snprintf(path, sizeof(path), "%s/%s.key", dir, name);
    f = fopen(path, "w");
    ASSERT(f && PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) == 1);
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(k);
}

static const char *file(const char *name, const char *ext)
{
    static char bufs[4][256];
    static int i;
    char *b = bufs[i++ % 4];
    snprintf(b, 256, "%s/%s.%s", dir, name, ext);
    return b;
}

static net_tls *server_ctx(const char *name, net_tls_client_auth auth)
{
    net_tls_config cfg = {.name = "test.tls",
                          .cert_file = file(name, "pem"),
                          .key_file = file(name, "key"),
                          .ca_file = auth ? file("client", "pem") : NULL,
                          .client_auth = auth};
    net_tls *t = NULL;
    ASSERT_OK(net_tls_create(&cfg, &t));
    return t;
}

typedef struct pair {
    int sfd, cfd;
    tls_conn *s;
    SSL_CTX *cctx;
    SSL *c;
} pair;

/* A server connection on one end of a non-blocking socketpair and a client on the other. */
static pair pair_open(net_tls *t, const char *client_cert, int client_max_version)
{
    pair p = {0};
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    p.sfd = sv[0];
    p.cfd = sv[1];
    p.s = tls_conn_new(t, p.sfd);
    ASSERT(p.s != NULL);
    p.cctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_security_level(p.cctx, 0); /* lets the client offer TLS 1.1 */
    if (client_max_version) {
        SSL_CTX_set_min_proto_version(p.cctx, TLS1_VERSION);
        SSL_CTX_set_max_proto_version(p.cctx, client_max_version);
    }
    if (client_cert) {
        ASSERT(SSL_CTX_use_certificate_file(p.cctx, file(client_cert, "pem"), SSL_FILETYPE_PEM));
        ASSERT(SSL_CTX_use_PrivateKey_file(p.cctx, file(client_cert, "key"), SSL_FILETYPE_PEM));
    }
    p.c = SSL_new(p.cctx);
    SSL_set_fd(p.c, p.cfd);
    SSL_set_connect_state(p.c);
    return p;
}

static void pair_close(pair *p)
{
    tls_conn_free(p->s);
    SSL_free(p->c);
    SSL_CTX_free(p->cctx);
    close(p->sfd);
    close(p->cfd);
}

/* Steps both handshakes until the server's finishes or fails: 1 or -1. */
static int handshake(pair *p)
{
    for (int i = 0; i < 100; i++) {
        int rc = tls_handshake(p->s, "test-peer");
        ERR_clear_error();
        int cr = SSL_do_handshake(p->c);
        if (cr != 1)
            ERR_clear_error();
        if (rc != 0 && (rc < 0 || cr == 1))
            return rc;
    }
    return 0;
}

static long serial_seen(pair *p)
{
    X509 *x = SSL_get0_peer_certificate(p->c);
    return x ? ASN1_INTEGER_get(X509_get0_serialNumber(x)) : -1;
}

static void test_config_errors(void)
{
    net_tls *t = NULL;
    net_tls_config cfg = {.name = "x.tls", .cert_file = file("nope", "pem"),
                          .key_file = file("server", "key")};
    ASSERT_EQ(net_tls_create(&cfg, &t), TD_ECONFIG);
    ASSERT(strstr(td_last_error(), "nope.pem") != NULL);
    ASSERT(t == NULL);
    cfg.cert_file = file("server", "pem");
    cfg.key_file = file("client", "key");
    ASSERT_EQ(net_tls_create(&cfg, &t), TD_ECONFIG);
    ASSERT(strstr(td_last_error(), "client.key") != NULL); /* OpenSSL: key values mismatch */
    ASSERT(strstr(td_last_error(), "mismatch") != NULL);
    cfg.key_file = file("server", "key");
    cfg.client_auth = NET_TLS_CLIENT_REQUIRED;
    ASSERT_EQ(net_tls_create(&cfg, &t), TD_ECONFIG); /* no CA to verify clients with */
    cfg.client_auth = NET_TLS_CLIENT_NONE;
    ASSERT_OK(net_tls_create(&cfg, &t));
    net_tls_destroy(t);
}

static void test_handshake_read_write(void)
{
    net_tls *t = server_ctx("server", NET_TLS_CLIENT_NONE);
    pair p = pair_open(t, NULL, 0);
    /* Nothing from the client yet: the server waits to read. */
    ASSERT_EQ(tls_handshake(p.s, "test-peer"), 0);
    ASSERT(!p.s->want_write);
    ASSERT_EQ(handshake(&p), 1);
    ASSERT(p.s->done);
    ASSERT(p.s->principal == NULL);
    ASSERT_EQ(serial_seen(&p), 1);
    /* 40 KiB from the client: one tls_read gets every record (SSL_read returns one). */
    static uint8_t big[40000], got[65536];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 7);
    size_t w = 0;
    ASSERT_EQ(SSL_write_ex(p.c, big, sizeof(big), &w), 1);
    ASSERT_EQ(w, sizeof(big));
    ASSERT_EQ(tls_read(p.s, got, sizeof(got)), (ssize_t)sizeof(big));
    ASSERT(memcmp(got, big, sizeof(big)) == 0);
    ASSERT_EQ(tls_read(p.s, got, sizeof(got)), -1);
    ASSERT_EQ(errno, EAGAIN);
    /* A buffer smaller than the record: the rest waits inside OpenSSL, with no socket data. */
    ASSERT_EQ(SSL_write_ex(p.c, big, 1000, &w), 1);
    ASSERT_EQ(tls_read(p.s, got, 100), 100);
    ASSERT(tls_pending(p.s));
    ASSERT_EQ(tls_read(p.s, got + 100, sizeof(got) - 100), 900);
    ASSERT(!tls_pending(p.s));
    ASSERT(memcmp(got, big, 1000) == 0);
    /* Server writes until the socket is full, retrying the same bytes after EAGAIN. */
    static uint8_t out[1 << 20];
    for (size_t i = 0; i < sizeof(out); i++)
        out[i] = (uint8_t)(i * 13);
    size_t sent = 0, recvd = 0;
    static uint8_t back[1 << 20];
    int blocked = 0;
    /* First without the client reading: the socket fills and the write must wait. */
    for (int i = 0; i < 1000 && !blocked; i++) {
        ssize_t n = tls_write(p.s, out + sent, sizeof(out) - sent);
        if (n < 0) {
            ASSERT_EQ(errno, EAGAIN);
            blocked++;
        } else {
            sent += (size_t)n;
        }
    }
    for (int i = 0; i < 100000 && recvd < sizeof(out); i++) {
        if (sent < sizeof(out)) {
            ssize_t n = tls_write(p.s, out + sent, sizeof(out) - sent);
            if (n < 0) {
                ASSERT_EQ(errno, EAGAIN);
                blocked++;
            } else {
                sent += (size_t)n;
            }
        }
        size_t r = 0;
        if (SSL_read_ex(p.c, back + recvd, sizeof(back) - recvd, &r) == 1)
            recvd += r;
        else
            ERR_clear_error();
    }
    ASSERT_EQ(recvd, sizeof(out));
    ASSERT_GE(blocked, 1); /* the socketpair's buffer is smaller than 1 MiB */
    ASSERT(memcmp(back, out, sizeof(out)) == 0);
    /* The client's close_notify reads as the end of the stream. */
    ASSERT_GE(SSL_shutdown(p.c), 0);
    ASSERT_EQ(tls_read(p.s, got, sizeof(got)), 0);
    pair_close(&p);
    net_tls_destroy(t);
}

static int info_lines; /* log lines at info and above */
static char last_line[512];

static void sink(int level, const char *line, void *arg)
{
    (void)arg;
    if (level >= TD_LOG_INFO) {
        info_lines++;
        snprintf(last_line, sizeof(last_line), "%s", line);
    }
}

static void test_plaintext_and_old_versions_fail(void)
{
    td_log_set_sink(sink, NULL);
    net_tls *t = server_ctx("server", NET_TLS_CLIENT_NONE);
    pair p = pair_open(t, NULL, 0);
    const char *req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    ASSERT_EQ(write(p.cfd, req, strlen(req)), (ssize_t)strlen(req));
    ASSERT_EQ(tls_handshake(p.s, "test-peer"), -1);
    /* One line naming the peer and OpenSSL's reason. */
    ASSERT_EQ(info_lines, 1);
    ASSERT(strstr(last_line, "TLS handshake with test-peer failed: ") != NULL);
    ASSERT(strstr(last_line, "http request") != NULL); /* OpenSSL's "http request" reason */
    pair_close(&p);
    /* A peer that closes without a byte (a TCP health check) is not worth a line. */
    p = pair_open(t, NULL, 0);
    shutdown(p.cfd, SHUT_WR);
    ASSERT_EQ(tls_handshake(p.s, "test-peer"), -1);
    ASSERT_EQ(info_lines, 1);
    pair_close(&p);
    td_log_set_sink(NULL, NULL);
    p = pair_open(t, NULL, TLS1_1_VERSION);
    ASSERT_EQ(handshake(&p), -1);
    pair_close(&p);
    p = pair_open(t, NULL, TLS1_2_VERSION);
    ASSERT_EQ(handshake(&p), 1);
    ASSERT_STR_EQ(SSL_get_version(p.c), "TLSv1.2");
    pair_close(&p);
    net_tls_destroy(t);
}

static void test_client_certificates(void)
{
    net_tls *t = server_ctx("server", NET_TLS_CLIENT_REQUIRED);
    pair p = pair_open(t, "client", 0);
    ASSERT_EQ(handshake(&p), 1);
    ASSERT(p.s->principal != NULL);
    ASSERT_STR_EQ(p.s->principal, "alice");
    pair_close(&p);
    p = pair_open(t, NULL, 0); /* no certificate */
    ASSERT_EQ(handshake(&p), -1);
    pair_close(&p);
    p = pair_open(t, "other", 0); /* one the CA did not sign */
    ASSERT_EQ(handshake(&p), -1);
    pair_close(&p);
    net_tls_destroy(t);
    /* requested: clients without a certificate are served, with no principal. */
    t = server_ctx("server", NET_TLS_CLIENT_REQUESTED);
    p = pair_open(t, NULL, 0);
    ASSERT_EQ(handshake(&p), 1);
    ASSERT(p.s->principal == NULL);
    pair_close(&p);
    net_tls_destroy(t);
}

static void copy(const char *from, const char *to)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "cp %s %s", from, to);
    ASSERT_EQ(system(cmd), 0);
}

static void test_reload(void)
{
    copy(file("server", "pem"), file("live", "pem"));
    copy(file("server", "key"), file("live", "key"));
    net_tls *t = server_ctx("live", NET_TLS_CLIENT_NONE);
    pair before = pair_open(t, NULL, 0);
    ASSERT_EQ(handshake(&before), 1);
    /* A broken file: the old context stays. */
    FILE *f = fopen(file("live", "pem"), "w");
    fputs("garbage\n", f);
    fclose(f);
    ASSERT_EQ(net_tls_reload(t), TD_ECONFIG);
    pair p = pair_open(t, NULL, 0);
    ASSERT_EQ(handshake(&p), 1);
    ASSERT_EQ(serial_seen(&p), 1);
    pair_close(&p);
    copy(file("server2", "pem"), file("live", "pem"));
    copy(file("server2", "key"), file("live", "key"));
    ASSERT_OK(net_tls_reload(t));
    p = pair_open(t, NULL, 0);
    ASSERT_EQ(handshake(&p), 1);
    ASSERT_EQ(serial_seen(&p), 2);
    pair_close(&p);
    /* The connection made before the reloads still works with its own context. */
    size_t w = 0;
    ASSERT_EQ(SSL_write_ex(before.c, "ping", 4, &w), 1);
    char got[8];
    ASSERT_EQ(tls_read(before.s, got, sizeof(got)), 4);
    ASSERT(memcmp(got, "ping", 4) == 0);
    pair_close(&before);
    net_tls_destroy(t);
}

static void setup(void)
{
    ASSERT(mkdtemp(dir) != NULL);
    make_cert("server", "localhost", 1);
    make_cert("server2", "localhost", 2);
    make_cert("client", "alice", 3);
    make_cert("other", "mallory", 4);
}

static void teardown(void)
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ASSERT_EQ(system(cmd), 0);
}

static void test_all(void)
{
    setup();
    test_config_errors();
    test_handshake_read_write();
    test_plaintext_and_old_versions_fail();
    test_client_certificates();
    test_reload();
    teardown();
}

TEST_MAIN(TEST(test_all))
