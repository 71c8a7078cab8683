/*
 * member.c: a broker's membership of the cluster (cluster.h).
 *
 * The session thread holds the lease: it registers the broker (a create-if-absent txn on
 * PREFIX/brokers/<id>), renews the lease every third of its TTL, registers again when the
 * lease is gone (a broker stopped past its TTL comes back with a new epoch, as a ZooKeeper
 * session's ephemeral node would), and stands for controller whenever there is none. The
 * watch thread lists the prefix, then watches it from the listed revision, and rebuilds the
 * view on every change; a cancelled watch (its revision compacted) or a failed stream lists
 * again. Both threads block only on etcd; the event loops only read views.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster_int.h"
#include "cluster/etcd.h"
#include "tidings.h"

#define RETRY_MS 500 /* between attempts while etcd does not answer */

/* A published view and its references. */
typedef struct view_box {
    atomic_int refs;
    td_cluster_view v;
} view_box;

struct td_cluster {
    td_cluster_config cfg;
    td_cluster_broker self; /* this broker's registration (epoch unused) */
    char prefix[256];       /* "/tidings/default", no trailing '/' */
    char hosts[1024];
    int64_t ttl_s;
    td_metrics *metrics;
    etcd_client session, watch;
    pthread_t session_th, watch_th;
    bool threads;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* Under mu: the model the watch keeps, and the session's results. */
    bool stopping;
    bool campaign_due;          /* no controller is known: the session thread stands */
    bool unregistered;          /* the watch saw this broker's key deleted after it registered */
    td_cluster_broker *brokers; /* sorted by id */
    size_t nbrokers, cap;
    int32_t controller_id;
    int64_t controller_epoch;
    char cluster_id[64];
    int64_t self_epoch;
    bool etcd_up;
    uint64_t registrations;
    view_box *view;
    cluster_observer_fn observer;
    void *observer_arg;

    /* The session thread's own. */
    int64_t lease;
    cluster_props props;
    int64_t start_rev; /* the revision cluster_join listed; the watch starts after it */
};

/* ---------------------------------------------------------------------------------------------
 * Keys
 */

static void key_of(const td_cluster *cl, const char *rest, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", cl->prefix, rest);
}

static void broker_key(const td_cluster *cl, int32_t id, char *out, size_t cap)
{
    char rest[32];
    snprintf(rest, sizeof(rest), "brokers/%" PRId32, id);
    key_of(cl, rest, out, cap);
}

/* ---------------------------------------------------------------------------------------------
 * The view: rebuilt from the model under mu, and published by pointer.
 */

static void box_release(view_box *b)
{
    if (b && atomic_fetch_sub(&b->refs, 1) == 1)
        free(b);
}

/* Called with mu held. */
static void publish_locked(td_cluster *cl)
{
    view_box *b = calloc(1, sizeof(*b) + cl->nbrokers * sizeof(td_cluster_broker));
    if (!b)
        return; /* the old view stays */
    atomic_init(&b->refs, 1);
    td_cluster_view *v = &b->v;
    snprintf(v->cluster_id, sizeof(v->cluster_id), "%s", cl->cluster_id);
    v->self_id = cl->cfg.broker_id;
    v->self_epoch = cl->self_epoch;
    v->controller_id = cl->controller_id;
    v->controller_epoch = cl->controller_epoch;
    v->etcd_up = cl->etcd_up;
    v->nbrokers = cl->nbrokers;
    if (cl->nbrokers)
        memcpy(v->brokers, cl->brokers, cl->nbrokers * sizeof(td_cluster_broker));
    view_box *old = cl->view;
    cl->view = b;
    if (old && cl->observer)
        cl->observer(cl->observer_arg, &old->v, &b->v);
    box_release(old);
}

const td_cluster_view *cluster_view_acquire(td_cluster *cl)
{
    pthread_mutex_lock(&cl->mu);
    view_box *b = cl->view;
    atomic_fetch_add(&b->refs, 1);
    pthread_mutex_unlock(&cl->mu);
    return &b->v;
}

void cluster_view_release(td_cluster *cl, const td_cluster_view *v)
{
    (void)cl;
    if (v)
        box_release((view_box *)((char *)v - offsetof(view_box, v)));
}

const td_cluster_broker *cluster_view_broker(const td_cluster_view *v, int32_t id)
{
    for (size_t i = 0; i < v->nbrokers; i++)
        if (v->brokers[i].id == id)
            return &v->brokers[i];
    return NULL;
}

void cluster_set_observer(td_cluster *cl, cluster_observer_fn fn, void *arg)
{
    pthread_mutex_lock(&cl->mu);
    cl->observer = fn;
    cl->observer_arg = arg;
    pthread_mutex_unlock(&cl->mu);
}

const char *cluster_coordinator(const td_cluster *cl)
{
    return cl->cfg.coordinator;
}

static void set_etcd_up(td_cluster *cl, bool up)
{
    pthread_mutex_lock(&cl->mu);
    bool changed = cl->etcd_up != up, joined = cl->registrations > 0;
    if (changed) {
        cl->etcd_up = up;
        publish_locked(cl);
    }
    pthread_mutex_unlock(&cl->mu);
    if (changed && joined && !up)
        TD_WARN("cluster", "etcd is unreachable: %s", cl->session.error);
    else if (changed && joined)
        TD_INFO("cluster", "etcd is reachable again");
}

/* ---------------------------------------------------------------------------------------------
 * The model, changed by what the watch sees. Called with mu held.
 */

static size_t broker_pos(const td_cluster *cl, int32_t id)
{
    size_t i = 0;
    while (i < cl->nbrokers && cl->brokers[i].id < id)
        i++;
    return i;
}

static void broker_put_locked(td_cluster *cl, const td_cluster_broker *b)
{
    size_t i = broker_pos(cl, b->id);
    if (i < cl->nbrokers && cl->brokers[i].id == b->id) {
        cl->brokers[i] = *b;
        return;
    }
    if (cl->nbrokers == cl->cap) {
        size_t cap = cl->cap ? cl->cap * 2 : 8;
        td_cluster_broker *n = realloc(cl->brokers, cap * sizeof(*n));
        if (!n)
            return;
        cl->brokers = n;
        cl->cap = cap;
    }
    memmove(&cl->brokers[i + 1], &cl->brokers[i], (cl->nbrokers - i) * sizeof(*b));
    cl->brokers[i] = *b;
    cl->nbrokers++;
}

static void broker_delete_locked(td_cluster *cl, int32_t id)
{
    size_t i = broker_pos(cl, id);
    if (i < cl->nbrokers && cl->brokers[i].id == id) {
        memmove(&cl->brokers[i], &cl->brokers[i + 1],
                (cl->nbrokers - i - 1) * sizeof(*cl->brokers));
        cl->nbrokers--;
    }
}

/* One key's new state (kv NULL: deleted, at revision del_rev). */
static void apply_locked(td_cluster *cl, const char *key, size_t key_len, const etcd_kv *kv,
                         int64_t del_rev)
{
    size_t pl = strlen(cl->prefix);
    if (key_len <= pl + 1 || memcmp(key, cl->prefix, pl) != 0 || key[pl] != '/')
        return;
    const char *rest = key + pl + 1;
    size_t n = key_len - pl - 1;
    int32_t id;
    if (n > 8 && !memcmp(rest, "brokers/", 8)) {
        if (cluster_broker_key_id(rest + 8, n - 8, &id) != 0)
            return;
        td_cluster_broker b;
        if (!kv) {
            broker_delete_locked(cl, id);
            if (id == cl->cfg.broker_id && cl->self_epoch > 0 && del_rev > cl->self_epoch) {
                cl->unregistered = true; /* its lease expired, or someone deleted it */
                pthread_cond_broadcast(&cl->cv);
            }
        } else if (cluster_broker_decode(kv->value, kv->value_len, &b) == 0 && b.id == id) {
            b.epoch = kv->create_revision;
            broker_put_locked(cl, &b);
        } else {
            TD_WARN("cluster", "%.*s: not a broker's registration; ignored", (int)key_len, key);
        }
    } else if (n == 10 && !memcmp(rest, "controller", 10)) {
        if (kv && cluster_controller_decode(kv->value, kv->value_len, &id) == 0) {
            cl->controller_id = id;
            cl->controller_epoch = kv->create_revision;
        } else {
            cl->controller_id = -1;
            cl->controller_epoch = 0;
            cl->campaign_due = true;
            pthread_cond_broadcast(&cl->cv);
        }
    } else if (n == 10 && !memcmp(rest, "cluster_id", 10) && kv) {
        /* Set once, by cluster_join: a broker never moves to another cluster while it runs. */
        if (!cl->cluster_id[0] && kv->value_len < sizeof(cl->cluster_id))
            memcpy(cl->cluster_id, kv->value, kv->value_len + 1);
        else if (strlen(cl->cluster_id) != kv->value_len ||
                 memcmp(cl->cluster_id, kv->value, kv->value_len) != 0)
            TD_WARN("cluster", "%.*s now says cluster id %.*s; this broker stays in cluster %s",
                    (int)key_len, key, (int)TD_MIN(kv->value_len, 64), kv->value, cl->cluster_id);
    }
}

/* ---------------------------------------------------------------------------------------------
 * The watch thread
 */

static bool stopping(void *arg)
{
    td_cluster *cl = arg;
    pthread_mutex_lock(&cl->mu);
    bool s = cl->stopping;
    pthread_mutex_unlock(&cl->mu);
    return s;
}

/* Sleeps up to ms, or less when the cluster stops. */
static void nap(td_cluster *cl, int64_t ms)
{
    struct timespec ts = td_deadline_ns(CLOCK_REALTIME, ms * 1000000);
    pthread_mutex_lock(&cl->mu);
    if (!cl->stopping)
        pthread_cond_timedwait(&cl->cv, &cl->mu, &ts);
    pthread_mutex_unlock(&cl->mu);
}

/* The cluster's keys: from "PREFIX/" to the end of its range. */
typedef struct key_range {
    char from[300], end[300];
    size_t from_len, end_len;
} key_range;

static void cluster_range(const td_cluster *cl, key_range *k)
{
    k->from_len = (size_t)snprintf(k->from, sizeof(k->from), "%s/", cl->prefix);
    etcd_prefix_end(k->from, k->from_len, k->end, &k->end_len);
}

/* Lists the prefix with client c and replaces the model; *rev gets the listed revision. */
static int list_all(td_cluster *cl, etcd_client *c, int64_t *rev)
{
    key_range k;
    cluster_range(cl, &k);
    td_buf req;
    td_buf_init(&req);
    etcd_resp r;
    int rc = etcd_req_range(&req, k.from, k.from_len, k.end, k.end_len);
    if (rc == 0)
        rc = etcd_call(c, "/v3/kv/range", &req, &r);
    td_buf_free(&req);
    if (rc)
        return rc;
    if (r.error_code) {
        TD_WARN("cluster", "listing %s: etcd answered %s", k.from, r.error);
        etcd_resp_free(&r);
        return -EIO;
    }
    pthread_mutex_lock(&cl->mu);
    cl->nbrokers = 0;
    cl->controller_id = -1;
    cl->controller_epoch = 0;
    for (size_t i = 0; i < r.nkvs; i++)
        apply_locked(cl, r.kvs[i].key, r.kvs[i].key_len, &r.kvs[i], 0);
    if (cl->controller_id < 0) {
        cl->campaign_due = true;
        pthread_cond_broadcast(&cl->cv);
    }
    publish_locked(cl);
    pthread_mutex_unlock(&cl->mu);
    *rev = r.header.revision;
    etcd_resp_free(&r);
    return 0;
}

#define WATCH_RELIST 1 /* on_watch: the watch was cancelled; list again */

static int on_watch(void *arg, etcd_watch_msg *m)
{
    td_cluster *cl = arg;
    if (m->error_code) {
        TD_WARN("cluster", "the watch failed: %s (code %d)", m->error, m->error_code);
        return -EIO;
    }
    if (m->canceled) {
        if (m->compact_revision)
            TD_INFO("cluster",
                    "the watch's revision was compacted (now %" PRId64 "): listing again",
                    m->compact_revision);
        return WATCH_RELIST;
    }
    if (m->nevents == 0)
        return 0;
    pthread_mutex_lock(&cl->mu);
    for (size_t i = 0; i < m->nevents; i++) {
        const etcd_event *e = &m->events[i];
        apply_locked(cl, e->kv.key, e->kv.key_len, e->type == ETCD_EVENT_PUT ? &e->kv : NULL,
                     e->kv.mod_revision);
    }
    if (!m->fragment)
        publish_locked(cl);
    pthread_mutex_unlock(&cl->mu);
    return 0;
}

static void *watch_main(void *arg)
{
    td_cluster *cl = arg;
    pthread_setname_np(pthread_self(), "td-cluster-w");
    int64_t rev = cl->start_rev, backoff = 100; /* cluster_join listed it */
    while (!stopping(cl)) {
        if (rev <= 0 && list_all(cl, &cl->watch, &rev) != 0) {
            TD_DEBUG("cluster", "listing the cluster failed: %s", cl->watch.error);
            rev = 0;
            nap(cl, backoff);
            backoff = TD_MIN(backoff * 2, 2000);
            continue;
        }
        backoff = 100;
        key_range k;
        cluster_range(cl, &k);
        td_buf req;
        td_buf_init(&req);
        int rc = etcd_req_watch(&req, k.from, k.from_len, k.end, k.end_len, rev + 1, false);
        if (rc == 0)
            rc = etcd_watch(&cl->watch, &req, on_watch, stopping, cl);
        td_buf_free(&req);
        if (rc && rc != WATCH_RELIST && !stopping(cl)) {
            TD_DEBUG("cluster", "the watch ended: %s", cl->watch.error);
            nap(cl, 200);
        }
        rev = 0; /* list again: whatever happened meanwhile is in the listing */
    }
    return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * The session: lease, registration, election
 */

/* A unary call whose transport failure marks etcd down; an error answer is logged and
 * returned as -EIO. */
static int call(td_cluster *cl, const char *path, const td_buf *req, etcd_resp *r)
{
    int rc = etcd_call(&cl->session, path, req, r);
    set_etcd_up(cl, rc == 0);
    if (rc)
        return rc;
    if (r->error_code) {
        TD_WARN("cluster", "etcd %s: %s (code %d)", path, r->error, r->error_code);
        etcd_resp_free(r);
        return -EIO;
    }
    return 0;
}

static int grant(td_cluster *cl, int64_t *lease)
{
    td_buf req;
    td_buf_init(&req);
    etcd_resp r;
    int rc = etcd_req_grant(&req, cl->ttl_s);
    if (rc == 0 && (rc = call(cl, "/v3/lease/grant", &req, &r)) == 0) {
        *lease = r.id;
        rc = r.id ? 0 : TD_EPROTO;
        etcd_resp_free(&r);
    }
    td_buf_free(&req);
    return rc;
}

static void revoke(td_cluster *cl, int64_t lease)
{
    td_buf req;
    td_buf_init(&req);
    etcd_resp r;
    if (etcd_req_lease(&req, lease) == 0 &&
        etcd_call(&cl->session, "/v3/lease/revoke", &req, &r) == 0)
        etcd_resp_free(&r); /* an unknown lease (already gone) is as good */
    td_buf_free(&req);
}

/* Creates key = value (on lease) unless it exists. *created says which; *kv gets the key as
 * it is when it existed (caller frees it with etcd_resp_free(resp)); *rev the revision. */
static int create_if_absent(td_cluster *cl, const char *key, const td_buf *value, int64_t lease,
                            bool *created, etcd_resp *resp)
{
    size_t kl = strlen(key);
    etcd_cmp cmp = {.key = key, .key_len = kl, .target = ETCD_CMP_CREATE, .result = ETCD_EQUAL};
    etcd_op put = {.type = ETCD_OP_PUT,
                   .key = key,
                   .key_len = kl,
                   .value = value->p,
                   .value_len = value->len,
                   .lease = lease};
    etcd_op get = {.type = ETCD_OP_RANGE, .key = key, .key_len = kl};
    td_buf req;
    td_buf_init(&req);
    int rc = etcd_req_txn(&req, &cmp, 1, &put, 1, &get, 1);
    if (rc == 0)
        rc = call(cl, "/v3/kv/txn", &req, resp);
    td_buf_free(&req);
    if (rc == 0)
        *created = resp->succeeded;
    if (rc == 0 && !resp->succeeded && resp->nkvs != 1) {
        etcd_resp_free(resp);
        rc = -EAGAIN; /* deleted between the compare and the range: try again */
    }
    return rc;
}

/* PREFIX/cluster_id, made by the first broker: a random id in Kafka's form (22 characters of
 * base64url), or want (a running broker's own, should etcd have lost it). */
static int ensure_cluster_id(td_cluster *cl, const char *want, char *out, size_t cap)
{
    td_buf v;
    td_buf_init(&v);
    if (want) {
        td_buf_append(&v, want, strlen(want));
    } else {
        uint8_t raw[16];
        char id[24];
        td_random_id(raw, sizeof(raw));
        td_base64url(raw, sizeof(raw), id);
        td_buf_append(&v, id, strlen(id));
    }
    if (v.len == 0) {
        td_buf_free(&v);
        return -ENOMEM;
    }
    char key[300];
    key_of(cl, "cluster_id", key, sizeof(key));
    bool created;
    etcd_resp r;
    int rc = create_if_absent(cl, key, &v, 0, &created, &r);
    if (rc == 0) {
        const char *p = created ? (const char *)v.p : r.kvs[0].value;
        size_t n = created ? v.len : r.kvs[0].value_len;
        if (n == 0 || n >= cap)
            rc = td_fail(TD_ECORRUPT, "%s: not a cluster id", key);
        else
            snprintf(out, cap, "%.*s", (int)n, p);
        etcd_resp_free(&r);
    }
    td_buf_free(&v);
    return rc;
}

static int keepalive(td_cluster *cl);

/* One attempt at PREFIX/brokers/<id> on cl->lease: 0 (registered, the epoch published),
 * -EAGAIN while another lease holds it, or a failure. A key held by the lease this data
 * directory recorded is this broker's own from before a crash: that lease is revoked. */
static int register_once(td_cluster *cl)
{
    char key[300];
    broker_key(cl, cl->cfg.broker_id, key, sizeof(key));
    td_buf v;
    td_buf_init(&v);
    int rc = cluster_broker_encode(&v, &cl->self);
    bool created = false;
    etcd_resp r;
    if (rc == 0)
        rc = create_if_absent(cl, key, &v, cl->lease, &created, &r);
    td_buf_free(&v);
    if (rc)
        return rc;
    if (created) {
        pthread_mutex_lock(&cl->mu);
        cl->self_epoch = r.header.revision;
        cl->registrations++;
        cl->campaign_due = cl->controller_id < 0;
        publish_locked(cl);
        pthread_mutex_unlock(&cl->mu);
        TD_INFO("cluster", "registered as broker %" PRId32 " of cluster %s (epoch %" PRId64 ")",
                cl->cfg.broker_id, cl->props.cluster_id, r.header.revision);
        etcd_resp_free(&r);
        cl->props.lease = cl->lease;
        if ((rc = cluster_props_write(cl->cfg.data_dir, &cl->props)) != 0)
            TD_WARN("cluster", "writing cluster.properties: %s", td_strerror(rc));
        return 0;
    }
    int64_t holder = r.kvs[0].lease;
    etcd_resp_free(&r);
    if (holder && holder == cl->props.lease && holder != cl->lease) {
        TD_INFO("cluster",
                "broker %" PRId32 " is still registered by this data directory's "
                "last lease: revoking it",
                cl->cfg.broker_id);
        revoke(cl, holder);
        cl->props.lease = 0;
        return register_once(cl);
    }
    return td_fail(-EAGAIN,
                   "broker.id %" PRId32 " is registered by another live broker "
                   "(lease %" PRId64 ")",
                   cl->cfg.broker_id, holder);
}

/* A registration again, of a running broker: etcd must still hold its cluster id, or none
 * (then it is written back: etcd's data was lost); another one is not this broker's cluster. */
static int same_cluster(td_cluster *cl)
{
    char now[64];
    int rc = ensure_cluster_id(cl, cl->props.cluster_id, now, sizeof(now));
    if (rc == 0 && strcmp(now, cl->props.cluster_id) != 0)
        rc = td_fail(TD_ECONFIG,
                     "%s holds cluster id %s, not this broker's %s (was etcd's "
                     "data replaced?): not registering",
                     cl->cfg.coordinator, now, cl->props.cluster_id);
    return rc;
}

/* A new lease, then the registration on it; until deadline_ms (0: for ever) or a stop. again:
 * a running broker's registration after it lost its own (the cluster id is checked first). */
static int register_self(td_cluster *cl, int64_t deadline_ms, bool again)
{
    for (;;) {
        /* A lease left from a failed attempt may have expired since: renew it or take a new
         * one (one that etcd could not be asked about expires by itself). */
        if (cl->lease && keepalive(cl) != 0)
            cl->lease = 0;
        int rc = again ? same_cluster(cl) : 0;
        if (rc == 0)
            rc = cl->lease ? 0 : grant(cl, &cl->lease);
        if (rc == 0)
            rc = register_once(cl);
        if (rc == 0)
            return 0;
        if (rc == TD_ECONFIG || stopping(cl))
            return rc;
        if (deadline_ms && td_mono_ms() >= deadline_ms) {
            if (rc == -EAGAIN)
                return td_fail(-ETIMEDOUT, "%s", td_last_error());
            return td_fail(-ETIMEDOUT,
                           "could not register with etcd at %s within "
                           "cluster.connect.timeout.ms (%" PRId64 " ms): %s",
                           cl->hosts, cl->cfg.connect_timeout_ms,
                           rc == -EIO ? cl->session.error : td_strerror(rc));
        }
        if (rc != -EAGAIN)
            TD_DEBUG("cluster", "registering: %s",
                     rc == -EIO ? cl->session.error : td_strerror(rc));
        nap(cl, RETRY_MS);
    }
}

/* Stands for controller: PREFIX/controller on this broker's lease, unless another holds it. */
static void campaign(td_cluster *cl)
{
    char key[300];
    key_of(cl, "controller", key, sizeof(key));
    td_buf v;
    td_buf_init(&v);
    bool created = false;
    etcd_resp r;
    int rc = cluster_controller_encode(&v, cl->cfg.broker_id);
    if (rc == 0)
        rc = create_if_absent(cl, key, &v, cl->lease, &created, &r);
    td_buf_free(&v);
    if (rc)
        return; /* the next keepalive's turn tries again */
    pthread_mutex_lock(&cl->mu);
    cl->campaign_due = false;
    if (created) {
        cl->controller_id = cl->cfg.broker_id;
        cl->controller_epoch = r.header.revision;
        publish_locked(cl);
    }
    pthread_mutex_unlock(&cl->mu);
    if (created)
        TD_INFO("cluster", "broker %" PRId32 " is the controller (epoch %" PRId64 ")",
                cl->cfg.broker_id, r.header.revision);
    etcd_resp_free(&r);
}

/* Renews the lease: 0, 1 when it is gone, or a transport failure. */
static int keepalive(td_cluster *cl)
{
    td_buf req;
    td_buf_init(&req);
    etcd_resp r;
    int rc = etcd_req_lease(&req, cl->lease);
    if (rc == 0 && (rc = etcd_call(&cl->session, "/v3/lease/keepalive", &req, &r)) == 0) {
        rc = r.error_code == 0 && r.ttl > 0 ? 0 : 1;
        etcd_resp_free(&r);
    }
    td_buf_free(&req);
    set_etcd_up(cl, rc >= 0);
    return rc;
}

/* The lease is gone (lease), or the registration: this broker is no longer registered, nor
 * the controller. */
static void lease_lost(td_cluster *cl, bool lease)
{
    if (lease)
        TD_WARN("cluster",
                "the lease of broker %" PRId32 " expired (etcd did not hear from it "
                "within cluster.session.timeout.ms): registering again",
                cl->cfg.broker_id);
    else
        TD_WARN("cluster",
                "the registration of broker %" PRId32 " is gone (its lease expired, or it was "
                "deleted): registering again",
                cl->cfg.broker_id);
    pthread_mutex_lock(&cl->mu);
    cl->unregistered = false;
    cl->self_epoch = 0;
    if (cl->controller_id == cl->cfg.broker_id)
        cl->controller_id = -1;
    publish_locked(cl);
    pthread_mutex_unlock(&cl->mu);
    if (lease)
        cl->lease = 0;
}

/* Waits until next (monotonic ms), a stop, or something for the session to do. */
static void session_wait(td_cluster *cl, int64_t next)
{
    int64_t now = td_mono_ms();
    if (now >= next)
        return;
    struct timespec ts = td_deadline_ns(CLOCK_REALTIME, (next - now) * 1000000);
    pthread_mutex_lock(&cl->mu);
    if (!cl->stopping && !cl->unregistered && !(cl->campaign_due && cl->self_epoch > 0))
        pthread_cond_timedwait(&cl->cv, &cl->mu, &ts);
    pthread_mutex_unlock(&cl->mu);
}

static void *session_main(void *arg)
{
    td_cluster *cl = arg;
    pthread_setname_np(pthread_self(), "td-cluster-s");
    int64_t period = cl->ttl_s * 1000 / 3, next = td_mono_ms() + period;
    while (!stopping(cl)) {
        pthread_mutex_lock(&cl->mu);
        bool stand = cl->campaign_due && cl->self_epoch > 0, gone = cl->unregistered;
        pthread_mutex_unlock(&cl->mu);
        if (gone) {
            lease_lost(cl, false);
            next = 0; /* register at once (register_self renews the lease or takes another) */
        } else if (stand) {
            campaign(cl);
        }
        if (td_mono_ms() < next) {
            session_wait(cl, next);
            continue;
        }
        bool registered = cl->self_epoch > 0; /* only this thread changes it */
        int rc = registered ? keepalive(cl) : 1;
        if (rc == 1) {
            if (registered)
                lease_lost(cl, true);
            if ((rc = register_self(cl, td_mono_ms() + period, true)) != 0 && !stopping(cl))
                TD_WARN("cluster", "broker %" PRId32 " is not registered: %s", cl->cfg.broker_id,
                        td_last_error());
        }
        next = td_mono_ms() + (rc == 0 ? period : RETRY_MS);
    }
    return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Joining and leaving
 */

void cluster_config_defaults(td_cluster_config *c)
{
    memset(c, 0, sizeof(*c));
    c->broker_id = -1;
    c->session_timeout_ms = 6000;
    c->connect_timeout_ms = 18000;
}

/* Splits etcd://HOSTS[/PREFIX] into hosts and prefix (no trailing '/'). */
static int parse_coordinator(const char *s, char *hosts, size_t hcap, char *prefix, size_t pcap)
{
    static const char scheme[] = "etcd://";
    if (strncmp(s, scheme, sizeof(scheme) - 1) != 0)
        return td_fail(TD_ECONFIG, "cluster.coordinator: '%s' is not etcd://HOST:PORT[/PREFIX]", s);
    s += sizeof(scheme) - 1;
    const char *slash = strchr(s, '/');
    size_t hn = slash ? (size_t)(slash - s) : strlen(s);
    const char *p = slash ? slash : "/tidings/default";
    size_t pn = strlen(p);
    while (pn > 1 && p[pn - 1] == '/')
        pn--;
    if (hn == 0 || hn >= hcap || pn >= pcap || pn < 2)
        return td_fail(TD_ECONFIG,
                       "cluster.coordinator: '%s': no host, a prefix of '/' or one "
                       "too long",
                       s);
    snprintf(hosts, hcap, "%.*s", (int)hn, s);
    snprintf(prefix, pcap, "%.*s", (int)pn, p);
    return 0;
}

int cluster_config_check(const td_cluster_config *c)
{
    char hosts[1024], prefix[256];
    int rc = parse_coordinator(c->coordinator, hosts, sizeof(hosts), prefix, sizeof(prefix));
    if (rc)
        return rc;
    if (c->broker_id < 0)
        return td_fail(TD_ECONFIG, "broker.id must be set (0 or more) with cluster.coordinator");
    if (c->session_timeout_ms < 2000)
        return td_fail(TD_ECONFIG, "cluster.session.timeout.ms must be at least 2000 (etcd's "
                                   "shortest lease)");
    return 0;
}

static void collect(void *arg, td_metrics_out *out)
{
    td_cluster *cl = arg;
    const td_cluster_view *v = cluster_view_acquire(cl);
    pthread_mutex_lock(&cl->mu);
    uint64_t regs = cl->registrations;
    pthread_mutex_unlock(&cl->mu);
    struct {
        const char *name, *help;
        td_metric_type type;
        double value;
    } m[] = {
        {"tidings_cluster_brokers", "Live brokers registered in the cluster.", TD_GAUGE,
         (double)v->nbrokers},
        {"tidings_cluster_controller_active",
         "1 on the cluster's controller (Kafka's "
         "ActiveControllerCount), else 0.",
         TD_GAUGE, v->controller_id == cl->cfg.broker_id},
        {"tidings_cluster_etcd_up", "1 when the last call to etcd succeeded, else 0.", TD_GAUGE,
         v->etcd_up},
        {"tidings_cluster_registrations_total",
         "Times this broker registered (1 at its start, one more after each lost lease).",
         TD_COUNTER, (double)regs},
    };
    for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
        td_metrics_text_family(out, m[i].name, m[i].help, m[i].type);
        td_metrics_text_sample(out, m[i].name, NULL, NULL, 0, m[i].value);
    }
    cluster_view_release(cl, v);
}

static void cluster_free(td_cluster *cl)
{
    etcd_client_free(&cl->session);
    etcd_client_free(&cl->watch);
    box_release(cl->view);
    free(cl->brokers);
    pthread_mutex_destroy(&cl->mu);
    pthread_cond_destroy(&cl->cv);
    free(cl);
}

/* The data directory's ids against the configuration's and the cluster's. */
static int check_props(td_cluster *cl)
{
    const cluster_props *p = &cl->props;
    if (p->broker_id >= 0 && p->broker_id != cl->cfg.broker_id)
        return td_fail(TD_ECONFIG,
                       "%s/cluster.properties: this data directory is broker.id "
                       "%" PRId32 "'s, not %" PRId32 "'s",
                       cl->cfg.data_dir, p->broker_id, cl->cfg.broker_id);
    if (p->cluster_id[0] && strcmp(p->cluster_id, cl->cluster_id) != 0)
        return td_fail(TD_ECONFIG,
                       "%s/cluster.properties: this data directory belongs to "
                       "cluster id %s, but %s holds cluster id %s",
                       cl->cfg.data_dir, p->cluster_id, cl->cfg.coordinator, cl->cluster_id);
    return 0;
}

/* Until deadline: the cluster id, then the registration, then a first listing. */
static int join(td_cluster *cl)
{
    int64_t deadline = td_mono_ms() + cl->cfg.connect_timeout_ms;
    int rc;
    while ((rc = ensure_cluster_id(cl, NULL, cl->cluster_id, sizeof(cl->cluster_id))) != 0) {
        if (rc == TD_ECORRUPT)
            return rc;
        if (td_mono_ms() >= deadline)
            return td_fail(-ETIMEDOUT,
                           "could not reach etcd at %s within "
                           "cluster.connect.timeout.ms (%" PRId64 " ms): %s",
                           cl->hosts, cl->cfg.connect_timeout_ms,
                           rc == -EIO ? cl->session.error : td_strerror(rc));
        nap(cl, RETRY_MS);
    }
    if ((rc = check_props(cl)) != 0)
        return rc;
    snprintf(cl->props.cluster_id, sizeof(cl->props.cluster_id), "%s", cl->cluster_id);
    cl->props.broker_id = cl->cfg.broker_id;
    if ((rc = register_self(cl, deadline, false)) != 0)
        return rc;
    while ((rc = list_all(cl, &cl->session, &cl->start_rev)) != 0 && td_mono_ms() < deadline)
        nap(cl, RETRY_MS);
    return rc;
}

int cluster_join(const td_cluster_config *c, const td_cluster_broker *self, td_metrics *metrics,
                 td_cluster **out)
{
    *out = NULL;
    int rc = cluster_config_check(c);
    if (rc)
        return rc;
    td_cluster *cl = calloc(1, sizeof(*cl));
    if (!cl)
        return -ENOMEM;
    cl->cfg = *c;
    parse_coordinator(c->coordinator, cl->hosts, sizeof(cl->hosts), cl->prefix, sizeof(cl->prefix));
    cl->ttl_s = (c->session_timeout_ms + 999) / 1000;
    cl->metrics = metrics;
    cl->controller_id = -1;
    pthread_mutex_init(&cl->mu, NULL);
    pthread_cond_init(&cl->cv, NULL);
    cl->self = *self;
    cl->self.id = c->broker_id; /* the registration is under the configured id */
    publish_locked(cl);
    /* A unary call waits at most a third of the TTL: a keepalive that hangs must not let the
     * lease expire unnoticed. */
    int64_t timeout = TD_MAX(cl->ttl_s * 1000 / 3, 500);
    if ((rc = etcd_client_init(&cl->session, cl->hosts, timeout)) != 0 ||
        (rc = etcd_client_init(&cl->watch, cl->hosts, timeout)) != 0 ||
        (rc = cluster_props_read(c->data_dir, &cl->props)) != 0 || (rc = join(cl)) != 0) {
        if (cl->lease)
            revoke(cl, cl->lease);
        cluster_free(cl);
        return rc;
    }
    if (pthread_create(&cl->session_th, NULL, session_main, cl) != 0) {
        revoke(cl, cl->lease);
        cluster_free(cl);
        return -EAGAIN;
    }
    if (pthread_create(&cl->watch_th, NULL, watch_main, cl) != 0) {
        cluster_leave(cl);
        return -EAGAIN;
    }
    cl->threads = true;
    if (metrics)
        td_metrics_add_collector(metrics, collect, cl);
    *out = cl;
    return 0;
}

void cluster_leave(td_cluster *cl)
{
    if (!cl)
        return;
    if (cl->metrics)
        td_metrics_remove_collector(cl->metrics, collect, cl);
    pthread_mutex_lock(&cl->mu);
    cl->stopping = true;
    pthread_cond_broadcast(&cl->cv);
    pthread_mutex_unlock(&cl->mu);
    pthread_join(cl->session_th, NULL);
    if (cl->threads)
        pthread_join(cl->watch_th, NULL);
    /* The registration and any controllership go with the lease, at once: the others need
     * not wait for its TTL. */
    if (cl->lease)
        revoke(cl, cl->lease);
    TD_INFO("cluster", "broker %" PRId32 " left the cluster", cl->cfg.broker_id);
    cluster_free(cl);
}
