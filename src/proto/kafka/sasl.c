/*
 * sasl.c: Kafka authentication (docs/security.md#authentication-kafka).
 *
 * A client authenticates with SaslHandshake (the mechanism) then either SaslAuthenticate
 * requests carrying the SASL tokens (handshake v1, every current client) or, after handshake
 * v0, the tokens as raw size-prefixed frames (kafka-python 2.0). Mechanisms: PLAIN (checked with
 * td_user_verify) and SCRAM-SHA-256/512 (base/sasl.c's exchange with the stored credential).
 * On success the connection's user is set (net_conn_set_user) and every later request is the
 * user's. Failures answer as Kafka does (SASL_AUTHENTICATION_FAILED with Kafka's message) and
 * close the connection once the answer is sent; an unknown user is refused exactly as a wrong
 * password is, at the same step and cost.
 *
 * Re-authentication (KIP-368): with connections.max.reauth.ms, SaslAuthenticate v1+ tells the
 * client its session's lifetime; a client re-authenticates on the same connection before then
 * (SaslHandshake + SaslAuthenticate again, as the same user: a change of principal is refused),
 * and a connection whose session expired is closed at its next other request.
 *
 * Cost: a SCRAM exchange costs the server a credential lookup and a few HMACs, on the loop. A
 * PLAIN check costs one PBKDF2 at the user's count (4096 iterations of HMAC-SHA-512: 3 to 4 ms
 * of CPU here, bench/sasl.sh), which would stall every other connection of the loop: it runs on
 * a few password-check threads instead (as many as loops, at most 4), and the connection reads
 * nothing more until its answer (one job per connection, so the queue is bounded by the
 * connection limit).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "base/base.h"
#include "base/metrics.h"
#include "base/sasl.h"
#include "base/scram.h"
#include "broker/audit.h"
#include "broker/authz.h"
#include "proto/kafka/sasl.h"

#define MECH_PLAIN 4 /* beside TD_SCRAM_SHA_256 (1) and TD_SCRAM_SHA_512 (2) */
#define UNAUTH_FRAME_MAX (512 * 1024)

enum {
    KERR_UNSUPPORTED_SASL_MECHANISM = 33,
    KERR_ILLEGAL_SASL_STATE = 34,
    KERR_SASL_AUTHENTICATION_FAILED = 58,
    KERR_RESOURCE_NOT_FOUND = 91,
    KERR_DUPLICATE_RESOURCE = 92,
    KERR_UNACCEPTABLE_CREDENTIAL = 93,
};

enum { ST_NONE, ST_MECH, ST_SCRAM, ST_DONE };

typedef struct ksasl {
    int stage;
    int mech;
    bool busy;          /* a PLAIN check runs off the loop */
    bool raw;           /* SaslHandshake v0: tokens come as raw frames */
    bool authenticated; /* a session exists (user set) */
    int64_t expires_ns; /* monotonic; 0: never */
    char user[TD_USER_NAME_MAX + 1];
    scram_server scram;
} ksasl;

/* A PLAIN password check, queued for the check threads; owned by its request (q->sasl_job). */
typedef struct plain_job {
    struct plain_job *next;
    kreq *q;
    td_engine *e;
    bool raw;
    int rc; /* td_user_verify's answer, set by the thread */
    size_t password_len;
    char user[TD_USER_NAME_MAX + 1];
    char password[TD_USER_PASSWORD_MAX + 1]; /* wiped once checked */
} plain_job;

#define CHECK_THREADS_MAX 4

typedef struct kafka_sasl_server {
    uint8_t secret[32]; /* keys the stand-in credentials of unknown users */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    plain_job *head, *tail; /* under mu */
    bool stopping;          /* under mu */
    int nthreads, maxthreads;
    pthread_t threads[CHECK_THREADS_MAX];
    int mechs[3];
    int nmechs;
    td_metric *ok[3], *fail[3]; /* by mechanism index: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 */
    td_metric *unauth, *reauth, *expired;
} kafka_sasl_server;

static int mech_index(int mech)
{
    return mech == MECH_PLAIN ? 0 : mech == TD_SCRAM_SHA_256 ? 1 : 2;
}

static const char *mech_name(int mech)
{
    return mech == MECH_PLAIN ? "PLAIN" : td_scram_mechanism_name(mech);
}

static int mech_parse(const char *name)
{
    if (!name)
        return 0;
    if (!strcmp(name, "PLAIN"))
        return MECH_PLAIN;
    /* Kafka compares mechanism names exactly (case matters). */
    if (!strcmp(name, "SCRAM-SHA-256"))
        return TD_SCRAM_SHA_256;
    if (!strcmp(name, "SCRAM-SHA-512"))
        return TD_SCRAM_SHA_512;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Codec
 */
int kafka_decode_sasl_handshake(kafka_reader *r, int16_t v, const char **mechanism)
{
    kr_set_flexible(r, KAFKA_SASL_HANDSHAKE, v);
    *mechanism = kr_string(r);
    return r->err;
}

int kafka_decode_sasl_authenticate(kafka_reader *r, int16_t v, const uint8_t **bytes, int32_t *len)
{
    kr_set_flexible(r, KAFKA_SASL_AUTHENTICATE, v);
    *bytes = kr_bytes(r, len);
    kr_tags(r);
    if (!r->err && *len < 0)
        r->err = TD_EPROTO; /* auth_bytes is not nullable */
    return r->err;
}

void kafka_encode_sasl_authenticate(kafka_out *o, int16_t v, const kafka_sasl_authenticate_resp *m)
{
    ko_set_flexible(o, KAFKA_SASL_AUTHENTICATE, v);
    ko_i16(o, m->error_code);
    ko_string(o, m->error_message);
    ko_bytes(o, m->auth_bytes ? m->auth_bytes : (const uint8_t *)"", m->auth_len);
    if (v >= 1)
        ko_i64(o, m->session_lifetime_ms);
    ko_tags(o);
}

int kafka_decode_describe_scram(kafka_reader *r, int16_t v, kafka_describe_scram_req *q)
{
    memset(q, 0, sizeof(*q));
    kr_set_flexible(r, KAFKA_DESCRIBE_USER_SCRAM_CREDENTIALS, v);
    int32_t n = kr_array(r);
    if (n < 0) {
        q->nusers = -1;
    } else if (!r->err) {
        q->users = kr_alloc(r, (size_t)n, sizeof(*q->users));
        q->nusers = q->users || n == 0 ? n : 0;
        for (int32_t i = 0; i < q->nusers && !r->err; i++) {
            q->users[i].name = kr_string(r);
            kr_tags(r);
        }
    }
    kr_tags(r);
    return r->err;
}

int kafka_decode_alter_scram(kafka_reader *r, int16_t v, kafka_alter_scram_req *q)
{
    memset(q, 0, sizeof(*q));
    kr_set_flexible(r, KAFKA_ALTER_USER_SCRAM_CREDENTIALS, v);
    int32_t nd = kr_array(r);
    kafka_scram_user *d = nd > 0 ? kr_alloc(r, (size_t)nd, sizeof(*d)) : NULL;
    for (int32_t i = 0; i < nd && d && !r->err; i++) {
        d[i].deletion = true;
        d[i].name = kr_string(r);
        d[i].mechanism = kr_i8(r);
        kr_tags(r);
    }
    int32_t nu = r->err ? 0 : kr_array(r);
    kafka_scram_user *u = nu > 0 ? kr_alloc(r, (size_t)nu, sizeof(*u)) : NULL;
    for (int32_t i = 0; i < nu && u && !r->err; i++) {
        u[i].name = kr_string(r);
        u[i].mechanism = kr_i8(r);
        u[i].iterations = kr_i32(r);
        u[i].salt = kr_bytes(r, &u[i].salt_len);
        u[i].salted_password = kr_bytes(r, &u[i].salted_len);
        kr_tags(r);
    }
    kr_tags(r);
    if (r->err)
        return r->err;
    nd = nd > 0 ? nd : 0;
    nu = nu > 0 ? nu : 0;
    q->nalter = nd + nu;
    q->alter = q->nalter ? kr_alloc(r, (size_t)q->nalter, sizeof(*q->alter)) : NULL;
    if (q->nalter && !q->alter)
        return r->err ? r->err : -ENOMEM;
    if (nd)
        memcpy(q->alter, d, (size_t)nd * sizeof(*d));
    if (nu)
        memcpy(q->alter + nd, u, (size_t)nu * sizeof(*u));
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Server state
 */
int kafka_sasl_server_create(kafka_server *s)
{
    kafka_sasl_server *k = calloc(1, sizeof(*k));
    if (!k)
        return -ENOMEM;
    if (RAND_bytes(k->secret, sizeof(k->secret)) != 1) {
        free(k);
        return -EIO;
    }
    const char *list =
        s->cfg.sasl_mechanisms ? s->cfg.sasl_mechanisms : "SCRAM-SHA-256,SCRAM-SHA-512,PLAIN";
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", list);
    char *save = NULL;
    for (char *t = strtok_r(buf, ", ", &save); t && k->nmechs < 3;
         t = strtok_r(NULL, ", ", &save)) {
        int m = mech_parse(t);
        bool dup = false;
        for (int i = 0; i < k->nmechs; i++)
            dup |= k->mechs[i] == m;
        if (m && !dup)
            k->mechs[k->nmechs++] = m;
    }
    td_metrics *mx = broker_metrics(s->e);
    td_metric_family *ok = td_metrics_family(
        mx, TD_COUNTER, "tidings_auth_successes_total",
        "Successful authentications, by protocol and mechanism.", "protocol,mechanism", NULL, 0);
    td_metric_family *fail = td_metrics_family(mx, TD_COUNTER, "tidings_auth_failures_total",
                                               "Failed authentications, by protocol and mechanism.",
                                               "protocol,mechanism", NULL, 0);
    static const int all[3] = {MECH_PLAIN, TD_SCRAM_SHA_256, TD_SCRAM_SHA_512};
    for (int i = 0; i < 3; i++) {
        const char *labels[] = {"kafka", mech_name(all[i])};
        k->ok[i] = td_metric_get(ok, labels);
        k->fail[i] = td_metric_get(fail, labels);
    }
    td_metric_family *denied =
        td_metrics_family(mx, TD_COUNTER, "tidings_security_denied_total",
                          "Requests refused by a security check, by protocol and reason.",
                          "protocol,reason", NULL, 0);
    const char *unauth[] = {"kafka", "unauthenticated"};
    k->unauth = td_metric_get(denied, unauth);
    td_metric_family *re =
        td_metrics_family(mx, TD_COUNTER, "tidings_kafka_reauthentications_total",
                          "Kafka SASL re-authentications (KIP-368) that succeeded.", NULL, NULL, 0);
    k->reauth = td_metric_get(re, NULL);
    td_metric_family *ex = td_metrics_family(
        mx, TD_COUNTER, "tidings_kafka_expired_sessions_total",
        "Kafka connections closed because their SASL session expired (KIP-368).", NULL, NULL, 0);
    k->expired = td_metric_get(ex, NULL);
    pthread_mutex_init(&k->mu, NULL);
    pthread_cond_init(&k->cv, NULL);
    s->sasl = k;
    return 0;
}

void kafka_sasl_server_destroy(kafka_server *s)
{
    if (!s->sasl)
        return;
    kafka_sasl_stop(s);
    pthread_mutex_destroy(&s->sasl->mu);
    pthread_cond_destroy(&s->sasl->cv);
    OPENSSL_cleanse(s->sasl, sizeof(*s->sasl));
    free(s->sasl);
    s->sasl = NULL;
}

void kafka_sasl_conn_free(kconn *kc)
{
    if (!kc->sasl)
        return;
    scram_server_clear(&kc->sasl->scram);
    td_buf_free(&kc->sasl->scram.auth);
    free(kc->sasl);
    kc->sasl = NULL;
}

static ksasl *conn_sasl(kconn *kc)
{
    if (!kc->sasl) {
        kc->sasl = calloc(1, sizeof(*kc->sasl));
        if (kc->sasl)
            scram_server_init(&kc->sasl->scram, 0);
    }
    return kc->sasl;
}

static bool mech_enabled(const kafka_sasl_server *k, int mech)
{
    for (int i = 0; i < k->nmechs; i++)
        if (k->mechs[i] == mech)
            return true;
    return false;
}

/* ---------------------------------------------------------------------------------------------
 * The gate
 */
size_t kafka_sasl_frame_max(kconn *kc, size_t max)
{
    if (net_conn_auth_required(kc->c) && !(kc->sasl && kc->sasl->authenticated))
        return max < UNAUTH_FRAME_MAX ? max : UNAUTH_FRAME_MAX;
    return max;
}

bool kafka_sasl_raw_expected(kconn *kc)
{
    return kc->sasl && kc->sasl->raw && (kc->sasl->stage == ST_MECH || kc->sasl->stage == ST_SCRAM);
}

static bool is_sasl_api(int16_t key)
{
    return key == KAFKA_SASL_HANDSHAKE || key == KAFKA_SASL_AUTHENTICATE;
}

int kafka_sasl_gate(kconn *kc, const kafka_header *h)
{
    ksasl *a = kc->sasl;
    kafka_sasl_server *k = kc->s->sasl;
    if (a && a->authenticated && a->expires_ns && !is_sasl_api(h->api_key) &&
        td_mono_ns() >= a->expires_ns) {
        /* KIP-368: the session expired and the client did not re-authenticate in time. */
        TD_INFO("kafka", "%s (user %s): SASL session expired; closing", net_conn_peer(kc->c),
                a->user);
        td_counter_add(k->expired, 1);
        return -1;
    }
    if (!net_conn_auth_required(kc->c) || (a && a->authenticated))
        return 0;
    if (h->api_key == KAFKA_API_VERSIONS || is_sasl_api(h->api_key))
        return 0;
    /* Kafka closes the connection of a client that skips authentication. */
    const kafka_api *api = kafka_api_find(h->api_key);
    broker_audit(kc->s->e, TD_AUDIT_UNAUTHENTICATED, "kafka", net_conn_principal(kc->c),
                 net_conn_peer(kc->c),
                 "%s (API %d) sent before authenticating (client id '%.64s'); the connection is "
                 "closed",
                 api ? api->name : "an unknown API", h->api_key, h->client_id ? h->client_id : "");
    td_counter_add(k->unauth, 1);
    return -1;
}

/* ---------------------------------------------------------------------------------------------
 * Authentication steps
 */
typedef struct step {
    int16_t error_code;
    const char *message; /* Kafka's error_message */
    td_buf token;        /* the token to send back */
    bool done;           /* authenticated */
    bool close;          /* close after answering */
} step;

/* Kafka's message for a failed authentication ("... with SASL mechanism SCRAM-SHA-512"). */
static const char *failed_message(kreq *q, int mech)
{
    char buf[160];
    snprintf(buf, sizeof(buf),
             "Authentication failed during authentication due to invalid credentials with SASL "
             "mechanism %s",
             mech_name(mech));
    return q ? td_arena_strdup(&q->arena, buf) : NULL;
}

static void fail(kconn *kc, ksasl *a, step *st, const char *user, const char *why)
{
    kafka_sasl_server *k = kc->s->sasl;
    td_counter_add(k->fail[mech_index(a->mech)], 1);
    broker_audit(kc->s->e, TD_AUDIT_AUTH_FAILED, "kafka", user && *user ? user : NULL,
                 net_conn_peer(kc->c), "%s: %s", mech_name(a->mech), why);
    st->error_code = KERR_SASL_AUTHENTICATION_FAILED;
    st->close = true;
    a->stage = ST_DONE;
}

/* The exchange succeeded for `user`: a first authentication, or a re-authentication that must
 * keep the principal. */
static void succeed(kconn *kc, ksasl *a, step *st, const char *user, kreq *q)
{
    kafka_sasl_server *k = kc->s->sasl;
    if (a->authenticated && strcmp(a->user, user) != 0) {
        char buf[TD_USER_NAME_MAX * 2 + 96];
        snprintf(buf, sizeof(buf),
                 "Cannot change principals during re-authentication from User:%s to User:%s",
                 a->user, user);
        broker_audit(kc->s->e, TD_AUDIT_AUTH_FAILED, "kafka", user, net_conn_peer(kc->c),
                     "%s: re-authentication as another principal refused (the session is "
                     "%s's)",
                     mech_name(a->mech), a->user);
        td_counter_add(k->fail[mech_index(a->mech)], 1);
        st->error_code = KERR_SASL_AUTHENTICATION_FAILED;
        st->message = q ? td_arena_strdup(&q->arena, buf) : NULL;
        st->close = true;
        a->stage = ST_DONE;
        return;
    }
    if (net_conn_set_user(kc->c, user) != 0) {
        st->error_code = KERR_SASL_AUTHENTICATION_FAILED;
        st->close = true;
        return;
    }
    bool re = a->authenticated;
    snprintf(a->user, sizeof(a->user), "%s", user);
    a->authenticated = true;
    a->stage = ST_DONE;
    a->raw = false;
    a->expires_ns = kc->s->cfg.reauth_ms > 0 ? td_mono_ns() + kc->s->cfg.reauth_ms * 1000000 : 0;
    st->done = true;
    td_counter_add(k->ok[mech_index(a->mech)], 1);
    if (re)
        td_counter_add(k->reauth, 1);
    TD_DEBUG("kafka", "%s %sauthenticated as %s with %s", net_conn_peer(kc->c), re ? "re-" : "",
             user, mech_name(a->mech));
}

/* The password-check threads: each takes a job, runs td_user_verify (PBKDF2), wipes the
 * password and hands the request back to its loop (kreq_async_done). They drain the queue before
 * they stop. */
static void *check_main(void *arg)
{
    kafka_sasl_server *k = arg;
    pthread_mutex_lock(&k->mu);
    for (;;) {
        while (!k->head && !k->stopping)
            pthread_cond_wait(&k->cv, &k->mu);
        plain_job *j = k->head;
        if (!j)
            break; /* stopping, and nothing left */
        k->head = j->next;
        if (!k->head)
            k->tail = NULL;
        pthread_mutex_unlock(&k->mu);
        j->rc = td_user_verify(j->e, j->user, j->password, j->password_len);
        td_error_clear();
        OPENSSL_cleanse(j->password, sizeof(j->password));
        kreq_async_done(j->q);
        pthread_mutex_lock(&k->mu);
    }
    pthread_mutex_unlock(&k->mu);
    return NULL;
}

/* Queues a job, starting the threads at the first one. false if no thread could start (the
 * caller then checks on the loop). */
static bool check_submit(kafka_server *s, plain_job *j)
{
    kafka_sasl_server *k = s->sasl;
    pthread_mutex_lock(&k->mu);
    if (k->stopping) {
        pthread_mutex_unlock(&k->mu);
        return false;
    }
    if (k->nthreads == 0) {
        int want = s->nloops < 1                   ? 1
                   : s->nloops > CHECK_THREADS_MAX ? CHECK_THREADS_MAX
                                                   : s->nloops;
        while (k->nthreads < want &&
               pthread_create(&k->threads[k->nthreads], NULL, check_main, k) == 0)
            k->nthreads++;
    }
    bool ok = k->nthreads > 0;
    if (ok) {
        j->next = NULL;
        if (k->tail)
            k->tail->next = j;
        else
            k->head = j;
        k->tail = j;
        pthread_cond_signal(&k->cv);
    }
    pthread_mutex_unlock(&k->mu);
    return ok;
}

void kafka_sasl_stop(kafka_server *s)
{
    kafka_sasl_server *k = s->sasl;
    if (!k)
        return;
    pthread_mutex_lock(&k->mu);
    k->stopping = true;
    pthread_cond_broadcast(&k->cv);
    int n = k->nthreads;
    k->nthreads = 0;
    pthread_mutex_unlock(&k->mu);
    for (int i = 0; i < n; i++)
        pthread_join(k->threads[i], NULL);
}

bool kafka_sasl_busy(kconn *kc)
{
    return kc->sasl && kc->sasl->busy;
}

static void answer(kreq *q, step *st);

/* The PLAIN check came back (loop thread). */
static void plain_finish(kreq *q)
{
    plain_job *j = q->sasl_job;
    kconn *kc = q->kc;
    ksasl *a = kc->sasl;
    step st;
    memset(&st, 0, sizeof(st));
    td_buf_init(&st.token);
    a->busy = false;
    if (j->rc == 0) {
        succeed(kc, a, &st, j->user, q);
    } else {
        fail(kc, a, &st, j->user, j->rc == TD_EAUTH ? "invalid credentials" : td_strerror(j->rc));
        st.message = failed_message(q, a->mech);
    }
    answer(q, &st);
}

/* Returns true when the check went off the loop (the answer comes through plain_finish). */
static bool step_plain(kconn *kc, ksasl *a, const uint8_t *p, size_t n, step *st, kreq *q, bool raw)
{
    plain_job *j = NULL;
    if (n > 2 * TD_USER_NAME_MAX + TD_USER_PASSWORD_MAX + 2) {
        fail(kc, a, st, NULL, "token too long");
        st->message = failed_message(q, a->mech);
        return false;
    }
    char buf[2 * TD_USER_NAME_MAX + TD_USER_PASSWORD_MAX + 3];
    const char *user = NULL, *pw = NULL;
    size_t pl = 0;
    int rc = sasl_plain_parse(p, n, buf, &user, &pw, &pl);
    if (rc == 0 && (strlen(user) > TD_USER_NAME_MAX || pl > TD_USER_PASSWORD_MAX))
        rc = TD_EAUTH; /* no user has such a name or password */
    if (rc == 0 && !(j = calloc(1, sizeof(*j))))
        rc = -ENOMEM;
    if (rc == 0) {
        j->q = q;
        j->e = kc->s->e;
        j->raw = raw;
        snprintf(j->user, sizeof(j->user), "%s", user);
        memcpy(j->password, pw, pl);
        j->password_len = pl;
        q->sasl_job = j;
        kreq_async_begin(q, plain_finish);
        if (check_submit(kc->s, j)) {
            a->busy = true;
            OPENSSL_cleanse(buf, sizeof(buf));
            return true;
        }
        /* No thread: check here, and answer through the same path. */
        j->rc = td_user_verify(j->e, j->user, j->password, j->password_len);
        td_error_clear();
        OPENSSL_cleanse(j->password, sizeof(j->password));
        q->finish = NULL;
        q->pending = 0;
        net_conn_unref(kc->c);
        rc = j->rc;
    }
    if (rc == 0) {
        succeed(kc, a, st, user, q);
    } else {
        fail(kc, a, st, user,
             rc == TD_EPROTO  ? "malformed PLAIN token"
             : rc == TD_EAUTH ? "invalid credentials"
                              : td_strerror(rc));
        st->message = failed_message(q, a->mech);
    }
    OPENSSL_cleanse(buf, sizeof(buf));
    return false;
}

static void step_scram(kconn *kc, ksasl *a, const uint8_t *p, size_t n, step *st, kreq *q)
{
    const char *err = NULL;
    if (a->stage == ST_MECH) {
        scram_client_first cf;
        scram_server_clear(&a->scram);
        a->scram.mechanism = a->mech;
        int rc = scram_parse_client_first(&a->scram, p, n, &cf, &err);
        if (rc == 0 && cf.token_auth) {
            rc = TD_EAUTH;
            err = "delegation tokens are not supported";
        }
        if (rc) {
            fail(kc, a, st, cf.user, err ? err : "malformed client-first message");
            st->message = failed_message(q, a->mech);
            return;
        }
        td_scram_credential cred;
        bool fake = false;
        rc = td_user_credential(kc->s->e, cf.user, a->mech, &cred);
        if (rc == TD_ENOTFOUND) {
            /* Unknown user, or no credential for this mechanism: the exchange goes on with a
             * stand-in and fails at the proof, as a wrong password does. */
            fake = true;
            rc = scram_fake_credential(a->mech, cf.user, kc->s->sasl->secret,
                                       sizeof(kc->s->sasl->secret), &cred);
        }
        td_error_clear();
        if (rc == 0)
            rc = scram_server_first(&a->scram, &cred, fake, &st->token);
        OPENSSL_cleanse(&cred, sizeof(cred));
        if (rc) {
            fail(kc, a, st, cf.user, td_strerror(rc));
            st->message = failed_message(q, a->mech);
            return;
        }
        a->stage = ST_SCRAM;
        return;
    }
    int rc = scram_server_final(&a->scram, p, n, &st->token, &err);
    if (rc == 0) {
        char user[TD_USER_NAME_MAX + 1];
        snprintf(user, sizeof(user), "%s", a->scram.user);
        succeed(kc, a, st, user, q);
    } else {
        fail(kc, a, st, a->scram.user, err ? err : "invalid client-final message");
        st->message = failed_message(q, a->mech);
        /* Kafka answers a failed proof with the error alone, not the "e=" token. */
        td_buf_reset(&st->token);
    }
    if (rc == 0 || st->close)
        scram_server_clear(&a->scram);
}

/* Runs one token of the exchange; true when the answer comes later (plain_finish). */
static bool step_token(kconn *kc, const uint8_t *p, size_t n, step *st, kreq *q, bool raw)
{
    ksasl *a = kc->sasl;
    td_buf_init(&st->token);
    if (!a || (a->stage != ST_MECH && a->stage != ST_SCRAM)) {
        st->error_code = KERR_ILLEGAL_SASL_STATE;
        st->message = "Unexpected SaslAuthenticate request: no SaslHandshake before it";
        st->close = true;
        return false;
    }
    if (a->mech == MECH_PLAIN)
        return step_plain(kc, a, p, n, st, q, raw);
    step_scram(kc, a, p, n, st, q);
    return false;
}

/* Encodes the answer to a token: a SaslAuthenticate response, or after SaslHandshake v0 (q's
 * api_version -1) the raw token, or nothing and a close when the exchange failed (Kafka's v0
 * behaviour). */
static void answer(kreq *q, step *st)
{
    kconn *kc = q->kc;
    q->close_after = st->close;
    if (q->h.api_version < 0) {
        if (st->error_code)
            q->no_response = true;
        else
            ko_bytes(&q->out, st->token.p ? st->token.p : (const uint8_t *)"",
                     (int32_t)st->token.len);
    } else {
        int16_t v = q->h.api_version;
        kafka_sasl_authenticate_resp m = {
            .error_code = st->error_code,
            .error_message = st->message,
            .auth_bytes = st->token.p,
            .auth_len = (int32_t)st->token.len,
            .session_lifetime_ms = st->done && kc->s->cfg.reauth_ms > 0 ? kc->s->cfg.reauth_ms : 0,
        };
        kreq_begin(q);
        kafka_encode_sasl_authenticate(&q->out, v, &m);
        ko_end(&q->out);
    }
    if (st->token.p)
        OPENSSL_cleanse(st->token.p, st->token.cap);
    td_buf_free(&st->token);
}

int kafka_sasl_raw_token(kreq *q, const uint8_t *p, size_t n)
{
    step st;
    memset(&st, 0, sizeof(st));
    if (step_token(q->kc, p, n, &st, q, true))
        return 1;
    answer(q, &st);
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * SaslHandshake, SaslAuthenticate
 */
void kafka_serve_sasl_handshake(kreq *q, kafka_reader *r)
{
    kconn *kc = q->kc;
    kafka_sasl_server *k = kc->s->sasl;
    int16_t v = q->h.api_version;
    const char *name = NULL;
    int16_t err = KERR_NONE;
    ksasl *a = conn_sasl(kc);
    if (!a) {
        q->out.err = -ENOMEM;
        return;
    }
    if (kafka_decode_sasl_handshake(r, v, &name) != 0) {
        q->out.err = TD_EPROTO;
        return;
    }
    int mech = mech_parse(name);
    if (a->stage == ST_MECH || a->stage == ST_SCRAM || (a->stage == ST_DONE && !a->authenticated)) {
        err = KERR_ILLEGAL_SASL_STATE;
    } else if (!mech || !mech_enabled(k, mech)) {
        err = KERR_UNSUPPORTED_SASL_MECHANISM;
        broker_audit(kc->s->e, TD_AUDIT_AUTH_FAILED, "kafka", NULL, net_conn_peer(kc->c),
                     "SASL mechanism '%.64s' is not enabled; the connection is closed",
                     name ? name : "(null)");
    } else if (a->authenticated && (mech != a->mech || v == 0)) {
        /* Re-authentication keeps the mechanism, and needs SaslAuthenticate (v1). */
        err = KERR_ILLEGAL_SASL_STATE;
    }
    if (err) {
        a->stage = ST_DONE;
        q->close_after = true;
    } else {
        a->mech = mech;
        a->stage = ST_MECH;
        a->raw = v == 0;
    }
    kreq_begin(q);
    ko_i16(&q->out, err);
    ko_array(&q->out, k->nmechs);
    for (int i = 0; i < k->nmechs; i++)
        ko_string(&q->out, mech_name(k->mechs[i]));
    ko_end(&q->out);
}

void kafka_serve_sasl_authenticate(kreq *q, kafka_reader *r)
{
    kconn *kc = q->kc;
    const uint8_t *bytes;
    int32_t len;
    if (kafka_decode_sasl_authenticate(r, q->h.api_version, &bytes, &len) != 0) {
        q->out.err = TD_EPROTO;
        return;
    }
    step st;
    memset(&st, 0, sizeof(st));
    if (kc->sasl && kc->sasl->raw) {
        st.error_code = KERR_ILLEGAL_SASL_STATE;
        st.message = "SaslAuthenticate after a SaslHandshake v0";
        st.close = true;
        td_buf_init(&st.token);
    } else if (step_token(kc, bytes, (size_t)len, &st, q, false)) {
        return;
    }
    answer(q, &st);
}

/* ---------------------------------------------------------------------------------------------
 * DescribeUserScramCredentials, AlterUserScramCredentials
 */
static bool cluster_allowed(kreq *q, td_acl_op op)
{
    char host[64];
    snprintf(host, sizeof(host), "%s", net_conn_peer(q->kc->c));
    char *colon = strrchr(host, ':');
    if (colon)
        *colon = '\0';
    char *h = host;
    if (*h == '[') {
        h++;
        char *rb = strchr(h, ']');
        if (rb)
            *rb = '\0';
    }
    td_principal p = {net_conn_principal(q->kc->c), h};
    if (broker_authorize(q->kc->s->e, &p, TD_RES_CLUSTER, TD_CLUSTER_NAME, op))
        return true;
    const kafka_api *api = kafka_api_find(q->h.api_key);
    broker_audit(q->kc->s->e, TD_AUDIT_DENIED, "kafka", p.user, net_conn_peer(q->kc->c),
                 "%s on Cluster '%s' (%s)", td_acl_op_name(op), TD_CLUSTER_NAME,
                 api ? api->name : "?");
    return false;
}

static void encode_describe(kreq *q, int16_t err, const char *msg, const kafka_scram_user *u,
                            int32_t n, const td_user_info *infos)
{
    kafka_out *o = &q->out;
    kreq_begin(q);
    ko_set_flexible(o, KAFKA_DESCRIBE_USER_SCRAM_CREDENTIALS, q->h.api_version);
    ko_i32(o, 0);
    ko_i16(o, err);
    ko_string(o, msg);
    ko_array(o, n);
    for (int32_t i = 0; i < n; i++) {
        ko_string_nn(o, u[i].name);
        ko_i16(o, u[i].error_code);
        ko_string(o, u[i].error_message);
        const td_user_info *in = infos ? &infos[i] : NULL;
        int cnt =
            in ? !!(in->mechanisms & TD_SCRAM_SHA_256) + !!(in->mechanisms & TD_SCRAM_SHA_512) : 0;
        ko_array(o, cnt);
        if (in && (in->mechanisms & TD_SCRAM_SHA_256)) {
            ko_i8(o, TD_SCRAM_SHA_256);
            ko_i32(o, in->sha256_iterations);
            ko_tags(o);
        }
        if (in && (in->mechanisms & TD_SCRAM_SHA_512)) {
            ko_i8(o, TD_SCRAM_SHA_512);
            ko_i32(o, in->sha512_iterations);
            ko_tags(o);
        }
        ko_tags(o);
    }
    ko_tags(o);
    ko_end(o);
}

void kafka_serve_describe_scram(kreq *q, kafka_reader *r)
{
    kafka_describe_scram_req req;
    if (kafka_decode_describe_scram(r, q->h.api_version, &req) != 0) {
        q->out.err = TD_EPROTO;
        return;
    }
    td_user_info *all = NULL;
    size_t nall = 0;
    if (!cluster_allowed(q, TD_OP_DESCRIBE)) {
        for (int32_t i = 0; i < req.nusers; i++) {
            req.users[i].error_code = KERR_CLUSTER_AUTHORIZATION_FAILED;
            req.users[i].error_message = "Cluster authorization failed.";
        }
        encode_describe(q, KERR_CLUSTER_AUTHORIZATION_FAILED, "Cluster authorization failed.",
                        req.users, req.nusers > 0 ? req.nusers : 0, NULL);
        return;
    }
    int rc = td_user_list(q->kc->s->e, &all, &nall);
    if (rc) {
        encode_describe(q, KERR_UNKNOWN_SERVER_ERROR, td_strerror(rc), NULL, 0, NULL);
        return;
    }
    /* A null or empty list asks for every user (Kafka's rule). */
    bool every = req.nusers <= 0;
    int32_t n = every ? (int32_t)nall : req.nusers;
    kafka_scram_user *u = every ? (n ? kr_alloc(r, (size_t)n, sizeof(*u)) : NULL) : req.users;
    td_user_info *infos = n ? kr_alloc(r, (size_t)n, sizeof(*infos)) : NULL;
    if (n && (!u || !infos)) {
        free(all);
        q->out.err = -ENOMEM;
        return;
    }
    for (int32_t i = 0; i < n; i++) {
        if (every) {
            u[i].name = td_arena_strdup(&q->arena, all[i].name);
            infos[i] = all[i];
            continue;
        }
        const char *name = u[i].name ? u[i].name : "";
        bool dup = false;
        for (int32_t j = 0; j < n; j++)
            dup |= j != i && u[j].name && !strcmp(u[j].name, name);
        size_t k = 0;
        while (k < nall && strcmp(all[k].name, name) != 0)
            k++;
        if (dup) {
            u[i].error_code = KERR_DUPLICATE_RESOURCE;
            u[i].error_message =
                "Cannot describe SCRAM credentials for the same user twice in a single request";
        } else if (k == nall) {
            u[i].error_code = KERR_RESOURCE_NOT_FOUND;
            u[i].error_message = "Attempt to describe a user credential that does not exist";
        } else {
            infos[i] = all[k];
        }
    }
    encode_describe(q, KERR_NONE, NULL, u, n, infos);
    free(all);
}

/* Validates one alteration (Kafka's rules and messages): 0 or an error code with *msg. */
static int16_t check_alteration(const kafka_scram_user *a, const char **msg)
{
    if (!a->name || !*a->name) {
        *msg = "Username must not be empty";
        return KERR_UNACCEPTABLE_CREDENTIAL;
    }
    if (!td_scram_mechanism_name(a->mechanism)) {
        *msg = "Unknown SCRAM mechanism";
        return KERR_UNSUPPORTED_SASL_MECHANISM;
    }
    if (td_user_name_validate(a->name) != 0) {
        td_error_clear();
        *msg = "Invalid user name";
        return KERR_UNACCEPTABLE_CREDENTIAL;
    }
    if (a->deletion)
        return KERR_NONE;
    if (a->iterations < TD_SCRAM_ITERATIONS_MIN) {
        *msg = "Too few iterations";
        return KERR_UNACCEPTABLE_CREDENTIAL;
    }
    if (a->iterations > TD_SCRAM_ITERATIONS_MAX) {
        *msg = "Too many iterations";
        return KERR_UNACCEPTABLE_CREDENTIAL;
    }
    if (a->salt_len <= 0 || a->salt_len > TD_SCRAM_SALT_MAX) {
        *msg = "Invalid salt";
        return KERR_UNACCEPTABLE_CREDENTIAL;
    }
    if (a->salted_len != (int32_t)scram_key_len(a->mechanism)) {
        *msg = "Invalid salted password";
        return KERR_UNACCEPTABLE_CREDENTIAL;
    }
    return KERR_NONE;
}

/* The alterations of user `name` (from a[first]), applied: one audit event saying which
 * credentials were set and removed (never their salt or salted password). */
static void audit_alteration(kreq *q, const kafka_scram_user *a, int32_t n, int32_t first,
                             const char *name)
{
    char what[128] = "";
    size_t k = 0;
    for (int32_t j = first; j < n && k < sizeof(what); j++) {
        if (strcmp(a[j].name ? a[j].name : "", name))
            continue;
        int w =
            snprintf(what + k, sizeof(what) - k, "%s%s %s", k ? ", " : "",
                     a[j].deletion ? "removed" : "set", td_scram_mechanism_name(a[j].mechanism));
        k += w > 0 ? (size_t)w : 0;
    }
    broker_audit(q->kc->s->e, TD_AUDIT_USER_CHANGE, "kafka", net_conn_principal(q->kc->c),
                 net_conn_peer(q->kc->c), "AlterUserScramCredentials of user '%.64s': %s", name,
                 what);
}

void kafka_serve_alter_scram(kreq *q, kafka_reader *r)
{
    kafka_alter_scram_req req;
    if (kafka_decode_alter_scram(r, q->h.api_version, &req) != 0) {
        q->out.err = TD_EPROTO;
        return;
    }
    kafka_scram_user *a = req.alter;
    int32_t n = req.nalter;
    bool allowed = n == 0 || cluster_allowed(q, TD_OP_ALTER);
    /* First pass: every alteration's own validity, and duplicates of (user, mechanism). */
    for (int32_t i = 0; i < n; i++) {
        if (!allowed) {
            a[i].error_code = KERR_CLUSTER_AUTHORIZATION_FAILED;
            a[i].error_message = "Cluster authorization failed.";
            continue;
        }
        a[i].error_code = check_alteration(&a[i], &a[i].error_message);
        for (int32_t j = 0; j < n && !a[i].error_code; j++)
            if (j != i && a[j].name && a[i].name && !strcmp(a[j].name, a[i].name) &&
                a[j].mechanism == a[i].mechanism) {
                a[i].error_code = KERR_DUPLICATE_RESOURCE;
                a[i].error_message =
                    "A user credential cannot be altered twice in the same request";
            }
    }
    /* One result per user (first appearance); a user with any bad alteration gets that error
     * and none of its alterations is applied. */
    kafka_out *o = &q->out;
    kreq_begin(q);
    ko_set_flexible(o, KAFKA_ALTER_USER_SCRAM_CREDENTIALS, q->h.api_version);
    ko_i32(o, 0);
    int32_t nres = 0;
    for (int32_t i = 0; i < n; i++) {
        bool first = true;
        for (int32_t j = 0; j < i && first; j++)
            first = !(a[j].name && a[i].name && !strcmp(a[j].name, a[i].name));
        nres += first;
    }
    ko_array(o, nres);
    for (int32_t i = 0; i < n; i++) {
        bool first = true;
        for (int32_t j = 0; j < i && first; j++)
            first = !(a[j].name && a[i].name && !strcmp(a[j].name, a[i].name));
        if (!first)
            continue;
        const char *name = a[i].name ? a[i].name : "";
        int16_t err = KERR_NONE;
        const char *msg = NULL;
        for (int32_t j = i; j < n && !err; j++)
            if (!strcmp(a[j].name ? a[j].name : "", name) && a[j].error_code) {
                err = a[j].error_code;
                msg = a[j].error_message;
            }
        /* Deletions first (they may name a credential that does not exist), then upserts. */
        for (int32_t j = i; j < n && !err; j++) {
            if (strcmp(a[j].name ? a[j].name : "", name) || !a[j].deletion)
                continue;
            int rc = td_user_remove_credential(q->kc->s->e, name, a[j].mechanism);
            if (rc == TD_ENOTFOUND) {
                err = KERR_RESOURCE_NOT_FOUND;
                msg = "Attempt to delete a user credential that does not exist";
            } else if (rc) {
                err = kafka_error_of(rc);
                msg = td_last_error();
            }
        }
        for (int32_t j = i; j < n && !err; j++) {
            if (strcmp(a[j].name ? a[j].name : "", name) || a[j].deletion)
                continue;
            int rc = td_user_set_salted(q->kc->s->e, name, a[j].mechanism, a[j].salt,
                                        (size_t)a[j].salt_len, a[j].salted_password,
                                        (size_t)a[j].salted_len, a[j].iterations);
            if (rc) {
                err = rc == TD_EINVAL || rc == TD_ENAME ? KERR_UNACCEPTABLE_CREDENTIAL
                                                        : kafka_error_of(rc);
                msg = td_arena_strdup(&q->arena, td_last_error());
            }
        }
        if (!err)
            audit_alteration(q, a, n, i, name);
        ko_string_nn(o, name);
        ko_i16(o, err);
        ko_string(o, msg);
        ko_tags(o);
    }
    ko_tags(o);
    ko_end(o);
}
