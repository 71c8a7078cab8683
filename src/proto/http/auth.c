/*
 * auth.c: HTTP authentication (docs/security.md#authentication-http): the Authorization header
 * (Basic with the users of the user store, Bearer with API tokens), 401 answers with their
 * WWW-Authenticate challenges, and a cache of verified passwords.
 *
 * Credentials are per request, as HTTP defines them: a keep-alive connection may carry requests
 * of different users (a proxy pools connections), and a request without credentials does not
 * inherit the previous one's user. So the request's user lives in the hconn for the request
 * only, and net_conn_set_user is not called.
 *
 * The cost: checking a password derives PBKDF2 with the user's iteration count (4096 HMACs, a
 * few milliseconds), on the event loop's thread. Clients send Basic credentials with every
 * request, and many (curl, the tidings command, scripts) open a connection per command, so a
 * per-connection cache would not help them. Successful checks are therefore cached server-wide:
 * HTTP_AUTH_CACHE_SIZE entries, each an HMAC-SHA-256 of user and password under a key drawn at
 * start (so the cache holds nothing a stolen core dump could test guesses against faster than
 * the catalog), valid for HTTP_AUTH_CACHE_TTL_MS and only while no user changed
 * (broker_users_generation). Failures are never cached: each costs a derivation, like Kafka's
 * PLAIN; the iteration bound (16384) bounds that work.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "broker/audit.h"
#include "broker/broker.h"
#include "proto/http/http_int.h"

#define HTTP_AUTH_CACHE_SIZE 64
#define HTTP_AUTH_CACHE_TTL_MS 60000

/* ---------------------------------------------------------------------------------------------
 * The Authorization header (pure)
 */
static int b64_value(uint8_t c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Standard base64 (padding optional) of p[0..n) into out (cap bytes); the decoded length, or -1
 * when it is not base64 or does not fit. */
static ssize_t b64_decode(const uint8_t *p, size_t n, uint8_t *out, size_t cap)
{
    while (n > 0 && p[n - 1] == '=' && n % 4 != 1)
        n--; /* padding: at most two '=' survive the next check */
    if (n % 4 == 1)
        return -1;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value(p[i]);
        if (v < 0)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o == cap)
                return -1;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    /* Leftover bits must be zero (a canonical encoding). */
    if (bits && (acc & ((1u << bits) - 1)))
        return -1;
    return (ssize_t)o;
}

static bool scheme_is(td_slice v, const char *name, size_t *after)
{
    size_t n = strlen(name);
    if (v.n < n || !http_name_eq(td_slice_make(v.p, n), name))
        return false;
    if (v.n > n && v.p[n] != ' ' && v.p[n] != '\t')
        return false;
    size_t i = n;
    while (i < v.n && (v.p[i] == ' ' || v.p[i] == '\t'))
        i++;
    *after = i;
    return true;
}

static bool token68_char(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
}

int http_auth_parse(td_slice v, http_credentials *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    size_t i;
    if (scheme_is(v, "Basic", &i)) {
        size_t n = v.n - i;
        if (n == 0) {
            *why = "Basic credentials are empty";
            return TD_EPROTO;
        }
        if (n > HTTP_BASIC_MAX) {
            *why = "Basic credentials are longer than a user name and a password can be";
            return TD_EPROTO;
        }
        uint8_t raw[HTTP_BASIC_MAX / 4 * 3];
        ssize_t len = b64_decode(v.p + i, n, raw, sizeof(raw));
        if (len < 0) {
            *why = "Basic credentials are not base64";
            return TD_EPROTO;
        }
        const uint8_t *colon = memchr(raw, ':', (size_t)len);
        if (!colon) {
            *why = "Basic credentials have no ':' between the user name and the password";
            OPENSSL_cleanse(raw, sizeof(raw));
            return TD_EPROTO;
        }
        size_t ulen = (size_t)(colon - raw), plen = (size_t)len - ulen - 1;
        if (ulen == 0 || ulen > TD_USER_NAME_MAX || memchr(raw, 0, ulen) ||
            plen > TD_USER_PASSWORD_MAX) {
            *why = ulen == 0 ? "Basic credentials have an empty user name"
                             : "Basic credentials: the user name or the password is invalid";
            OPENSSL_cleanse(raw, sizeof(raw));
            return TD_EPROTO;
        }
        out->scheme = HTTP_AUTH_BASIC;
        memcpy(out->user, raw, ulen);
        out->user[ulen] = 0;
        memcpy(out->password, colon + 1, plen);
        out->password[plen] = 0;
        out->password_len = plen;
        OPENSSL_cleanse(raw, sizeof(raw));
        return 0;
    }
    if (scheme_is(v, "Bearer", &i)) {
        size_t j = i;
        while (j < v.n && token68_char(v.p[j]))
            j++;
        size_t end = j;
        while (j < v.n && v.p[j] == '=')
            j++;
        if (end == i || j != v.n) {
            *why = "a Bearer token is one token68 (letters, digits, -._~+/ then '=')";
            return TD_EPROTO;
        }
        if (j - i > HTTP_BEARER_MAX) {
            *why = "the Bearer token is too long";
            return TD_EPROTO;
        }
        out->scheme = HTTP_AUTH_BEARER;
        out->token = td_slice_make(v.p + i, j - i);
        return 0;
    }
    *why = "the Authorization scheme is neither Basic nor Bearer";
    return TD_EUNSUPPORTED;
}

/* ---------------------------------------------------------------------------------------------
 * The cache of verified passwords
 */
typedef struct auth_entry {
    uint8_t mac[32];
    char user[TD_USER_NAME_MAX + 1];
    int64_t expires_ms; /* monotonic; 0: empty */
    uint64_t gen;
} auth_entry;

struct http_auth_cache {
    pthread_mutex_t mu;
    uint8_t key[32];
    auth_entry v[HTTP_AUTH_CACHE_SIZE];
    size_t next; /* round robin: the oldest entry is replaced */
};

int http_auth_cache_create(http_server *s)
{
    struct http_auth_cache *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    if (RAND_bytes(c->key, sizeof(c->key)) != 1) {
        free(c);
        return td_fail(-EIO, "RAND_bytes failed");
    }
    pthread_mutex_init(&c->mu, NULL);
    s->auth_cache = c;
    return 0;
}

void http_auth_cache_destroy(http_server *s)
{
    struct http_auth_cache *c = s->auth_cache;
    if (!c)
        return;
    pthread_mutex_destroy(&c->mu);
    OPENSSL_cleanse(c, sizeof(*c));
    free(c);
    s->auth_cache = NULL;
}

/* HMAC-SHA-256(key, user NUL password). */
static bool cache_mac(const struct http_auth_cache *c, const http_credentials *cr, uint8_t *mac)
{
    unsigned int len = 0;
    uint8_t buf[TD_USER_NAME_MAX + 1 + TD_USER_PASSWORD_MAX];
    size_t ulen = strlen(cr->user);
    memcpy(buf, cr->user, ulen);
    buf[ulen] = 0;
    memcpy(buf + ulen + 1, cr->password, cr->password_len);
    bool ok = HMAC(EVP_sha256(), c->key, sizeof(c->key), buf, ulen + 1 + cr->password_len, mac,
                   &len) != NULL &&
              len == 32;
    OPENSSL_cleanse(buf, sizeof(buf));
    return ok;
}

static bool cache_hit(struct http_auth_cache *c, const uint8_t *mac, const char *user, uint64_t gen)
{
    int64_t now = td_mono_ms();
    bool hit = false;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < HTTP_AUTH_CACHE_SIZE && !hit; i++) {
        const auth_entry *x = &c->v[i];
        hit = x->expires_ms > now && x->gen == gen && CRYPTO_memcmp(x->mac, mac, 32) == 0 &&
              strcmp(x->user, user) == 0;
    }
    pthread_mutex_unlock(&c->mu);
    return hit;
}

static void cache_put(struct http_auth_cache *c, const uint8_t *mac, const char *user, uint64_t gen)
{
    pthread_mutex_lock(&c->mu);
    auth_entry *x = &c->v[c->next];
    c->next = (c->next + 1) % HTTP_AUTH_CACHE_SIZE;
    memcpy(x->mac, mac, 32);
    snprintf(x->user, sizeof(x->user), "%s", user);
    x->gen = gen;
    x->expires_ms = td_mono_ms() + HTTP_AUTH_CACHE_TTL_MS;
    pthread_mutex_unlock(&c->mu);
}

/* td_user_verify through the cache. */
static int verify_basic(http_server *s, const http_credentials *cr)
{
    uint8_t mac[32];
    uint64_t gen = broker_users_generation(s->e);
    bool macd = s->auth_cache && cache_mac(s->auth_cache, cr, mac);
    if (macd && cache_hit(s->auth_cache, mac, cr->user, gen))
        return 0;
    int rc = td_user_verify(s->e, cr->user, cr->password, cr->password_len);
    if (rc == 0 && macd)
        cache_put(s->auth_cache, mac, cr->user, gen);
    OPENSSL_cleanse(mac, sizeof(mac));
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Authentication of a request
 */
#define CHALLENGE_BASIC "WWW-Authenticate: Basic realm=\"tidings\", charset=\"UTF-8\"\r\n"

static void count_failure(hconn *hc, const char *mechanism)
{
    const char *labels[] = {"http", mechanism};
    td_counter_add(td_metric_get(hc->s->f_auth_failures, labels), 1);
}

/* 401 with both challenges; bearer_error (RFC 6750 §3) and its description when a token was
 * refused. */
static void respond_401(hconn *hc, const char *code, const char *message, const char *bearer_error,
                        const char *bearer_description)
{
    char extra[400];
    if (bearer_error)
        snprintf(extra, sizeof(extra),
                 CHALLENGE_BASIC "WWW-Authenticate: Bearer realm=\"tidings\", error=\"%s\", "
                                 "error_description=\"%s\"\r\n",
                 bearer_error, bearer_description);
    else
        snprintf(extra, sizeof(extra),
                 CHALLENGE_BASIC "WWW-Authenticate: Bearer realm=\"tidings\"\r\n");
    json_t *e =
        json_pack("{s:{s:s,s:s,s:i}}", "error", "code", code, "message", message, "status", 401);
    http_respond_json(hc, 401, e, extra);
}

/* The peer's address without its port ("10.0.0.7", "::1"). */
static void peer_host(hconn *hc)
{
    const char *peer = net_conn_peer(hc->c);
    const char *start = peer, *end = strrchr(peer, ':');
    if (*peer == '[') {
        start = peer + 1;
        end = strchr(start, ']');
    }
    size_t n = end && end > start ? (size_t)(end - start) : strlen(start);
    snprintf(hc->host, sizeof(hc->host), "%.*s", (int)TD_MIN(n, sizeof(hc->host) - 1), start);
}

/* The credentials of the request: the Authorization header, else (a live subscription only) an
 * ?access_token= query parameter, which EventSource can send where it cannot send headers.
 * 0 none, 1 some, -1 answered 401. */
static int request_credentials(hconn *hc, http_credentials *cr, char *qtok, size_t cap)
{
    const td_slice *h = http_header_get(&hc->req, "authorization");
    td_slice value;
    if (h) {
        value = *h;
    } else {
        if (!http_method_is(hc, "GET") || hc->req.path.n != 13 ||
            memcmp(hc->req.path.p, "/v1/subscribe", 13) != 0)
            return 0;
        int q = http_query_get(hc->req.query, "access_token", qtok, cap);
        if (q == 0)
            return 0;
        if (q < 0) {
            count_failure(hc, "bearer");
            broker_audit(hc->s->e, TD_AUDIT_AUTH_FAILED, "http", NULL, net_conn_peer(hc->c),
                         "bearer: the access_token parameter is not a valid token");
            respond_401(hc, "invalid_credentials", "access_token is not a valid token",
                        "invalid_token", "The access token is malformed");
            return -1;
        }
        cr->scheme = HTTP_AUTH_BEARER;
        cr->token = td_slice_make(qtok, strlen(qtok));
        return 1;
    }
    const char *why;
    int rc = http_auth_parse(value, cr, &why);
    if (rc == 0)
        return 1;
    bool bearer = value.n >= 6 && http_name_eq(td_slice_make(value.p, 6), "Bearer");
    const char *mech = rc == TD_EUNSUPPORTED ? "other" : bearer ? "bearer" : "basic";
    count_failure(hc, mech);
    broker_audit(hc->s->e, TD_AUDIT_AUTH_FAILED, "http", NULL, net_conn_peer(hc->c),
                 "%s: malformed credentials: %s", mech, why);
    respond_401(hc, "invalid_credentials", why, bearer ? "invalid_request" : NULL,
                "The Authorization header is malformed");
    return -1;
}

static bool check_bearer(hconn *hc, const http_credentials *cr)
{
    td_token_info info;
    int rc = td_token_verify(hc->s->e, (const char *)cr->token.p, cr->token.n, &info);
    if (rc == 0) {
        snprintf(hc->user, sizeof(hc->user), "%s", info.user);
        return true;
    }
    if (rc != TD_EAUTH) {
        http_respond_td_error(hc, rc);
        return false;
    }
    count_failure(hc, "bearer");
    bool expired = info.id[0] != 0;
    if (expired) {
        broker_audit(hc->s->e, TD_AUDIT_AUTH_FAILED, "http", info.user, net_conn_peer(hc->c),
                     "bearer: API token %s expired", info.id);
        respond_401(hc, "token_expired", "the API token expired", "invalid_token",
                    "The access token expired");
    } else {
        broker_audit(hc->s->e, TD_AUDIT_AUTH_FAILED, "http", NULL, net_conn_peer(hc->c),
                     "bearer: not a valid API token");
        respond_401(hc, "invalid_credentials", "the API token is not valid", "invalid_token",
                    "The access token is invalid");
    }
    return false;
}

bool http_authenticate(hconn *hc, bool open_route)
{
    hc->user[0] = 0;
    peer_host(hc);
    if (open_route)
        return true;
    http_credentials cr;
    char qtok[HTTP_BEARER_MAX + 1];
    int have = request_credentials(hc, &cr, qtok, sizeof(qtok));
    if (have < 0)
        return false;
    if (have == 0) {
        /* A verified client certificate authenticates the connection: its CN is the principal
         * (authz.c). Anyone else must bring credentials where the listener requires them. */
        if (!net_conn_auth_required(hc->c) || net_conn_cert_principal(hc->c))
            return true;
        const char *labels[] = {"http", "unauthenticated"};
        td_counter_add(td_metric_get(hc->s->f_denied, labels), 1);
        broker_audit(hc->s->e, TD_AUDIT_UNAUTHENTICATED, "http", net_conn_principal(hc->c),
                     net_conn_peer(hc->c), "%.*s %.*s without credentials (http auth required)",
                     (int)TD_MIN(hc->req.method.n, 16), (const char *)hc->req.method.p,
                     (int)TD_MIN(hc->req.path.n, 128), (const char *)hc->req.path.p);
        respond_401(hc, "unauthenticated",
                    "authentication required: send a user's credentials (Basic) or an API token "
                    "(Authorization: Bearer)",
                    NULL, NULL);
        return false;
    }
    bool ok;
    if (cr.scheme == HTTP_AUTH_BEARER) {
        ok = check_bearer(hc, &cr);
    } else {
        int rc = verify_basic(hc->s, &cr);
        ok = rc == 0;
        if (ok) {
            snprintf(hc->user, sizeof(hc->user), "%s", cr.user);
        } else if (rc != TD_EAUTH) {
            http_respond_td_error(hc, rc);
        } else {
            char shown[TD_USER_NAME_MAX * 4 + 8];
            http_utf8_clean(cr.user, shown, sizeof(shown));
            count_failure(hc, "basic");
            broker_audit(hc->s->e, TD_AUDIT_AUTH_FAILED, "http", shown, net_conn_peer(hc->c),
                         "basic: wrong password or no such user");
            respond_401(hc, "invalid_credentials", "wrong user name or password", NULL, NULL);
        }
    }
    OPENSSL_cleanse(&cr, sizeof(cr));
    OPENSSL_cleanse(qtok, sizeof(qtok));
    return ok;
}
