/* Unit tests for the group coordinator (broker/group.c): joins, protocol selection, sync,
 * heartbeats, leaves, session and rebalance timeouts, static membership, commits, limits and
 * administration. Timeouts are a few tens of milliseconds here; waits are bounded. */
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "broker/group.h"
#include "broker/state.h"
#include "test.h"
#include "tidings.h"

typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    coord_join_res *jr;
    coord_sync_res *sr;
    coord_err err;
    int rc;
} waiter;

static void w_init(waiter *w)
{
    memset(w, 0, sizeof(*w));
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
}

static void w_reset(waiter *w)
{
    coord_join_res_free(w->jr);
    coord_sync_res_free(w->sr);
    w->jr = NULL;
    w->sr = NULL;
    w->done = false;
    w->err = COORD_OK;
    w->rc = 0;
}

static void w_free(waiter *w)
{
    w_reset(w);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
}

static void w_signal(waiter *w)
{
    w->done = true;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void on_join(void *arg, coord_join_res *r)
{
    waiter *w = arg;
    pthread_mutex_lock(&w->mu);
    w->jr = r;
    w_signal(w);
}

static void on_sync(void *arg, coord_sync_res *r)
{
    waiter *w = arg;
    pthread_mutex_lock(&w->mu);
    w->sr = r;
    w_signal(w);
}

static void on_commit(void *arg, coord_err err, int rc)
{
    waiter *w = arg;
    pthread_mutex_lock(&w->mu);
    w->err = err;
    w->rc = rc;
    w_signal(w);
}

/* Waits up to ms for the answer; returns whether it came. */
static bool w_wait(waiter *w, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&w->mu);
    while (!w->done)
        if (pthread_cond_timedwait(&w->cv, &w->mu, &ts) != 0)
            break;
    bool done = w->done;
    pthread_mutex_unlock(&w->mu);
    return done;
}

static bool w_done(waiter *w)
{
    pthread_mutex_lock(&w->mu);
    bool d = w->done;
    pthread_mutex_unlock(&w->mu);
    return d;
}

typedef struct fixture {
    char *dir;
    td_engine *e;
    td_coord *c;
} fixture;

static void fx_open(fixture *f, int32_t max_size)
{
    f->dir = test_tmpdir("group");
    td_options o;
    td_options_init(&o);
    o.no_background = 1;
    ASSERT_OK(td_engine_open(f->dir, &o, &f->e));
    ASSERT_OK(td_topic_create(f->e, "t", 4, NULL, 0));
    coord_config cfg;
    coord_config_defaults(&cfg);
    cfg.min_session_ms = 10;
    cfg.initial_rebalance_delay_ms = 50;
    if (max_size)
        cfg.max_size = max_size;
    ASSERT_OK(coord_create(f->e, &cfg, &f->c));
}

/* Closes the coordinator and the engine and opens them again on the same directory (a
 * restart: the coordinator rebuilds its groups from __consumer_offsets). */
static void fx_reopen(fixture *f)
{
    coord_destroy(f->c);
    td_engine_close(f->e);
    td_options o;
    td_options_init(&o);
    o.no_background = 1;
    ASSERT_OK(td_engine_open(f->dir, &o, &f->e));
    coord_config cfg;
    coord_config_defaults(&cfg);
    cfg.min_session_ms = 10;
    cfg.initial_rebalance_delay_ms = 50;
    ASSERT_OK(coord_create(f->e, &cfg, &f->c));
}

static void fx_close(fixture *f)
{
    coord_destroy(f->c);
    td_engine_close(f->e);
    test_rmrf(f->dir);
}

typedef struct client {
    char id[256];
    const char *instance;
    coord_protocol protos[2];
    size_t nprotos;
    int32_t session_ms, rebalance_ms;
    waiter w;
} client;

static void cl_init(client *cl, const char *p1, const char *p2)
{
    memset(cl, 0, sizeof(*cl));
    w_init(&cl->w);
    cl->protos[0] = (coord_protocol){p1, p1, strlen(p1)};
    cl->nprotos = 1;
    if (p2) {
        cl->protos[1] = (coord_protocol){p2, p2, strlen(p2)};
        cl->nprotos = 2;
    }
    cl->session_ms = 10000;
    cl->rebalance_ms = 2000;
}

/* Sends a JoinGroup (does not wait). */
static void cl_join_async(fixture *f, client *cl, const char *group, const char *type)
{
    w_reset(&cl->w);
    coord_join_req q = {.group = group,
                        .member_id = cl->id,
                        .instance_id = cl->instance,
                        .protocol_type = type,
                        .client_id = "cli",
                        .client_host = "/127.0.0.1",
                        .session_ms = cl->session_ms,
                        .rebalance_ms = cl->rebalance_ms,
                        .nprotocols = cl->nprotos,
                        .protocols = cl->protos,
                        .require_known_member = true};
    coord_join(f->c, &q, on_join, &cl->w);
}

/* Joins like a Kafka consumer: MEMBER_ID_REQUIRED first, then the real join (async). */
static void cl_join(fixture *f, client *cl, const char *group)
{
    cl_join_async(f, cl, group, "consumer");
    if (!cl->id[0] && !cl->instance) {
        ASSERT(w_wait(&cl->w, 1000));
        ASSERT(cl->w.jr != NULL);
        ASSERT_EQ(cl->w.jr->err, COORD_MEMBER_ID_REQUIRED);
        ASSERT_CONTAINS(cl->w.jr->member_id, "cli-");
        snprintf(cl->id, sizeof(cl->id), "%s", cl->w.jr->member_id);
        cl_join_async(f, cl, group, "consumer");
    }
}

static coord_join_res *cl_joined(client *cl)
{
    ASSERT(w_wait(&cl->w, 3000));
    ASSERT(cl->w.jr != NULL);
    ASSERT_EQ(cl->w.jr->err, COORD_OK);
    snprintf(cl->id, sizeof(cl->id), "%s", cl->w.jr->member_id);
    return cl->w.jr;
}

static void cl_sync_async(fixture *f, client *cl, const char *group, int32_t gen,
                          const coord_assignment *as, size_t n)
{
    w_reset(&cl->w);
    coord_sync_req q = {.group = group,
                        .member_id = cl->id,
                        .instance_id = cl->instance,
                        .generation = gen,
                        .nassignments = n,
                        .assignments = as};
    coord_sync(f->c, &q, on_sync, &cl->w);
}

static void cl_free(client *cl)
{
    w_free(&cl->w);
}

/* Three members join together; protocol chosen by votes; leader gets the members. */
static void test_join_and_sync(void)
{
    fixture f;
    fx_open(&f, 0);
    client a, b, cc;
    cl_init(&a, "range", "roundrobin");
    cl_init(&b, "roundrobin", "range");
    cl_init(&cc, "roundrobin", "range");
    cl_join(&f, &a, "g");
    cl_join(&f, &b, "g");
    cl_join(&f, &cc, "g");
    coord_join_res *ra = cl_joined(&a), *rb = cl_joined(&b), *rc = cl_joined(&cc);
    ASSERT_EQ(ra->generation, 1);
    ASSERT_EQ(rb->generation, 1);
    ASSERT_EQ(rc->generation, 1);
    ASSERT_STR_EQ(ra->protocol_name, "roundrobin"); /* two votes to one */
    ASSERT_STR_EQ(ra->protocol_type, "consumer");
    ASSERT_STR_EQ(ra->leader, a.id); /* the first member */
    ASSERT_STR_EQ(rb->leader, a.id);
    ASSERT_EQ(ra->nmembers, 3);
    ASSERT_EQ(rb->nmembers, 0);
    ASSERT_MEM_EQ(ra->members[1].meta, "roundrobin", 10); /* the chosen protocol's metadata */

    /* Followers wait in SyncGroup until the leader's plan arrives. */
    cl_sync_async(&f, &b, "g", 1, NULL, 0);
    cl_sync_async(&f, &cc, "g", 1, NULL, 0);
    ASSERT(!w_done(&b.w));
    ASSERT_EQ(coord_heartbeat(f.c, "g", b.id, NULL, 1), COORD_OK);
    coord_assignment plan[] = {{a.id, "A", 1}, {b.id, "BB", 2}};
    cl_sync_async(&f, &a, "g", 1, plan, 2);
    ASSERT(w_wait(&a.w, 1000) && w_wait(&b.w, 1000) && w_wait(&cc.w, 1000));
    ASSERT_EQ(a.w.sr->err, COORD_OK);
    ASSERT_UEQ(a.w.sr->len, 1);
    ASSERT_MEM_EQ(b.w.sr->assignment, "BB", 2);
    ASSERT_UEQ(cc.w.sr->len, 0); /* not in the plan: nothing assigned */
    ASSERT_STR_EQ(b.w.sr->protocol_name, "roundrobin");

    /* Stable: heartbeats, wrong generation, unknown member, late sync. */
    ASSERT_EQ(coord_heartbeat(f.c, "g", a.id, NULL, 1), COORD_OK);
    ASSERT_EQ(coord_heartbeat(f.c, "g", a.id, NULL, 0), COORD_ILLEGAL_GENERATION);
    ASSERT_EQ(coord_heartbeat(f.c, "g", "nobody", NULL, 1), COORD_UNKNOWN_MEMBER);
    ASSERT_EQ(coord_heartbeat(f.c, "nogroup", a.id, NULL, 1), COORD_UNKNOWN_MEMBER);
    cl_sync_async(&f, &b, "g", 1, NULL, 0);
    ASSERT(w_wait(&b.w, 1000));
    ASSERT_MEM_EQ(b.w.sr->assignment, "BB", 2);
    cl_sync_async(&f, &b, "g", 7, NULL, 0);
    ASSERT(w_wait(&b.w, 1000));
    ASSERT_EQ(b.w.sr->err, COORD_ILLEGAL_GENERATION);

    coord_group_desc d;
    ASSERT_EQ(coord_describe(f.c, "g", &d), COORD_OK);
    ASSERT_EQ(d.state, COORD_STABLE);
    ASSERT_UEQ(d.nmembers, 3);
    ASSERT_STR_EQ(d.protocol_name, "roundrobin");
    ASSERT_STR_EQ(d.members[0].client_host, "/127.0.0.1");
    ASSERT_MEM_EQ(d.members[1].assignment, "BB", 2);
    coord_desc_free(&d);

    /* A member leaves: the others are told to rejoin, and a new generation forms. */
    coord_leaver l = {.member_id = b.id};
    ASSERT_EQ(coord_leave(f.c, "g", &l, 1), COORD_OK);
    ASSERT_EQ(l.err, COORD_OK);
    ASSERT_EQ(coord_heartbeat(f.c, "g", a.id, NULL, 1), COORD_REBALANCING);
    ASSERT_EQ(coord_leave(f.c, "g", &l, 1), COORD_OK);
    ASSERT_EQ(l.err, COORD_UNKNOWN_MEMBER);
    cl_join(&f, &a, "g");
    ASSERT(!w_done(&a.w)); /* waits for cc */
    cl_join(&f, &cc, "g");
    ra = cl_joined(&a);
    rc = cl_joined(&cc);
    ASSERT_EQ(ra->generation, 2);
    ASSERT_EQ(ra->nmembers, 2);
    fx_close(&f);
    cl_free(&a);
    cl_free(&b);
    cl_free(&cc);
}

static void test_bad_joins(void)
{
    fixture f;
    fx_open(&f, 2);
    client a, b, x;
    cl_init(&a, "range", NULL);
    cl_init(&b, "range", NULL);
    cl_init(&x, "sticky", NULL);
    cl_join(&f, &a, "g");
    cl_joined(&a);

    /* A protocol nobody else supports, or another protocol type. */
    cl_join_async(&f, &x, "g", "consumer");
    ASSERT(w_wait(&x.w, 1000));
    ASSERT_EQ(x.w.jr->err, COORD_INCONSISTENT_PROTOCOL);
    x.protos[0] = (coord_protocol){"range", "range", 5};
    cl_join_async(&f, &x, "g", "connect");
    ASSERT(w_wait(&x.w, 1000));
    ASSERT_EQ(x.w.jr->err, COORD_INCONSISTENT_PROTOCOL);
    /* No protocols at all. */
    x.nprotos = 0;
    cl_join_async(&f, &x, "fresh", "consumer");
    ASSERT(w_wait(&x.w, 1000));
    ASSERT_EQ(x.w.jr->err, COORD_INCONSISTENT_PROTOCOL);
    x.nprotos = 1;
    /* Session timeout out of range; bad group ids; unknown member ids. */
    x.session_ms = 1;
    cl_join_async(&f, &x, "g", "consumer");
    ASSERT(w_wait(&x.w, 1000));
    ASSERT_EQ(x.w.jr->err, COORD_INVALID_SESSION_TIMEOUT);
    x.session_ms = 10000;
    cl_join_async(&f, &x, "", "consumer");
    ASSERT(w_wait(&x.w, 1000));
    ASSERT_EQ(x.w.jr->err, COORD_INVALID_GROUP_ID);
    snprintf(x.id, sizeof(x.id), "made-up");
    cl_join_async(&f, &x, "g", "consumer");
    ASSERT(w_wait(&x.w, 1000));
    ASSERT_EQ(x.w.jr->err, COORD_UNKNOWN_MEMBER);
    cl_join_async(&f, &x, "nosuchgroup", "consumer");
    ASSERT(w_wait(&x.w, 1000));
    ASSERT_EQ(x.w.jr->err, COORD_UNKNOWN_MEMBER);

    /* max_size 2: a and b fit, the third does not. */
    cl_join(&f, &b, "g");
    x.id[0] = 0;
    cl_join_async(&f, &x, "g", "consumer");
    ASSERT(w_wait(&x.w, 1000));
    ASSERT_EQ(x.w.jr->err, COORD_GROUP_FULL);
    /* Other groups are unaffected. */
    client o;
    cl_init(&o, "range", NULL);
    cl_join(&f, &o, "other");
    ASSERT_EQ(cl_joined(&o)->generation, 1);
    fx_close(&f);
    cl_free(&a);
    cl_free(&b);
    cl_free(&x);
    cl_free(&o);
}

/* A member that stops heartbeating is dropped after its session timeout; one that does not
 * rejoin a rebalance is dropped at the rebalance timeout. */
static void test_timeouts(void)
{
    fixture f;
    fx_open(&f, 0);
    client a, b;
    cl_init(&a, "range", NULL);
    cl_init(&b, "range", NULL);
    b.session_ms = 100;
    cl_join(&f, &a, "g");
    cl_join(&f, &b, "g");
    ASSERT_EQ(cl_joined(&a)->generation, 1);
    ASSERT_EQ(cl_joined(&b)->generation, 1);
    cl_sync_async(&f, &b, "g", 1, NULL, 0);
    coord_assignment plan[] = {{a.id, "x", 1}, {b.id, "y", 1}};
    cl_sync_async(&f, &a, "g", 1, plan, 2);
    ASSERT(w_wait(&a.w, 1000) && w_wait(&b.w, 1000));
    /* b goes silent; a keeps heartbeating until it is told to rejoin. */
    coord_err e = COORD_OK;
    for (int i = 0; i < 200 && e == COORD_OK; i++) {
        usleep(10000);
        e = coord_heartbeat(f.c, "g", a.id, NULL, 1);
    }
    ASSERT_EQ(e, COORD_REBALANCING);
    ASSERT_EQ(coord_heartbeat(f.c, "g", b.id, NULL, 1), COORD_UNKNOWN_MEMBER);
    a.rebalance_ms = 200;
    cl_join(&f, &a, "g");
    coord_join_res *r = cl_joined(&a);
    ASSERT_EQ(r->generation, 2);
    ASSERT_EQ(r->nmembers, 1);
    /* Now b2 joins (a rebalance), and a never rejoins: after the rebalance timeout (200 ms)
     * the generation completes without it. */
    cl_sync_async(&f, &a, "g", 2, NULL, 0);
    ASSERT(w_wait(&a.w, 1000));
    client b2;
    cl_init(&b2, "range", NULL);
    b2.rebalance_ms = 200;
    cl_join(&f, &b2, "g");
    r = cl_joined(&b2);
    ASSERT_EQ(r->generation, 3);
    ASSERT_EQ(r->nmembers, 1);
    ASSERT_STR_EQ(r->leader, b2.id);
    ASSERT_EQ(coord_heartbeat(f.c, "g", a.id, NULL, 2), COORD_UNKNOWN_MEMBER);
    fx_close(&f);
    cl_free(&a);
    cl_free(&b);
    cl_free(&b2);
}

static void test_static_membership(void)
{
    fixture f;
    fx_open(&f, 0);
    client a, b;
    cl_init(&a, "range", NULL);
    cl_init(&b, "range", NULL);
    a.instance = "host-a";
    cl_join(&f, &a, "g");
    cl_join(&f, &b, "g");
    coord_join_res *r = cl_joined(&a);
    ASSERT_CONTAINS(r->member_id, "host-a-");
    ASSERT_STR_EQ(r->leader, a.id);
    cl_joined(&b);
    cl_sync_async(&f, &b, "g", 1, NULL, 0);
    coord_assignment plan[] = {{a.id, "x", 1}, {b.id, "y", 1}};
    cl_sync_async(&f, &a, "g", 1, plan, 2);
    ASSERT(w_wait(&a.w, 1000) && w_wait(&b.w, 1000));

    /* a, the static leader, restarts without its member id, with a client that cannot skip
     * the assignment (JoinGroup below v9). As in Kafka, the group does not rebalance: a gets
     * the current generation with its OLD member id as the leader and no members, so it
     * syncs as a follower and gets its assignment back; the old id is fenced. */
    char old[256];
    snprintf(old, sizeof(old), "%s", a.id);
    a.id[0] = 0;
    cl_join_async(&f, &a, "g", "consumer");
    r = cl_joined(&a);
    ASSERT_EQ(r->generation, 1);
    ASSERT(strcmp(a.id, old) != 0);
    ASSERT_STR_EQ(r->leader, old);
    ASSERT_EQ(r->nmembers, 0);
    ASSERT(!r->skip_assignment);
    ASSERT_EQ(coord_heartbeat(f.c, "g", old, "host-a", 1), COORD_FENCED_INSTANCE);
    ASSERT_EQ(coord_heartbeat(f.c, "g", b.id, NULL, 1), COORD_OK);
    cl_sync_async(&f, &a, "g", 1, NULL, 0);
    ASSERT(w_wait(&a.w, 1000));
    ASSERT_MEM_EQ(a.w.sr->assignment, "x", 1);
    /* It is still the leader: the next rebalance hands it the members. */

    /* A static follower restarting in a stable group gets the current generation back
     * without a rebalance, and keeps its assignment. */
    client s;
    cl_init(&s, "range", NULL);
    s.instance = "host-s";
    cl_join(&f, &s, "g");
    ASSERT_EQ(coord_heartbeat(f.c, "g", a.id, NULL, 1), COORD_REBALANCING);
    cl_join(&f, &a, "g");
    cl_join(&f, &b, "g");
    ASSERT_EQ(cl_joined(&s)->generation, 2);
    ASSERT_STR_EQ(cl_joined(&a)->leader, a.id);
    cl_joined(&b);
    cl_sync_async(&f, &s, "g", 2, NULL, 0);
    cl_sync_async(&f, &b, "g", 2, NULL, 0);
    coord_assignment plan3[] = {{a.id, "x", 1}, {b.id, "y", 1}, {s.id, "zz", 2}};
    cl_sync_async(&f, &a, "g", 2, plan3, 3);
    ASSERT(w_wait(&a.w, 1000) && w_wait(&s.w, 1000));
    snprintf(old, sizeof(old), "%s", s.id);
    s.id[0] = 0;
    cl_join_async(&f, &s, "g", "consumer");
    r = cl_joined(&s);
    ASSERT_EQ(r->generation, 2); /* no rebalance */
    ASSERT(strcmp(s.id, old) != 0);
    ASSERT_EQ(coord_heartbeat(f.c, "g", a.id, NULL, 2), COORD_OK);
    cl_sync_async(&f, &s, "g", 2, NULL, 0);
    ASSERT(w_wait(&s.w, 1000));
    ASSERT_MEM_EQ(s.w.sr->assignment, "zz", 2);
    /* The old incarnation is fenced everywhere; the instance id cannot be claimed by
     * another member id. */
    ASSERT_EQ(coord_heartbeat(f.c, "g", old, "host-s", 2), COORD_FENCED_INSTANCE);
    waiter w;
    w_init(&w);
    td_offset_commit oc = {.topic = "t", .partition = 0, .offset = 1, .leader_epoch = -1};
    coord_commit(f.c, "g", old, "host-s", 2, &oc, 1, on_commit, &w);
    ASSERT(w_wait(&w, 1000));
    ASSERT_EQ(w.err, COORD_FENCED_INSTANCE);
    coord_leaver l = {.member_id = old, .instance_id = "host-s"};
    coord_leave(f.c, "g", &l, 1);
    ASSERT_EQ(l.err, COORD_FENCED_INSTANCE);
    /* Leaving by instance id alone. */
    l = (coord_leaver){.member_id = "", .instance_id = "host-s"};
    coord_leave(f.c, "g", &l, 1);
    ASSERT_EQ(l.err, COORD_OK);
    ASSERT_EQ(coord_heartbeat(f.c, "g", a.id, NULL, 2), COORD_REBALANCING);
    fx_close(&f);
    w_free(&w);
    cl_free(&a);
    cl_free(&b);
    cl_free(&s);
}

static void test_commits_and_admin(void)
{
    fixture f;
    fx_open(&f, 0);
    waiter w;
    w_init(&w);
    td_offset_commit oc[] = {
        {.topic = "t", .partition = 0, .offset = 5, .leader_epoch = -1, .metadata = "m"},
        {.topic = "t", .partition = 3, .offset = 7, .leader_epoch = 2}};
    /* A group that only stores offsets (generation -1, no member). */
    coord_commit(f.c, "solo", "", NULL, -1, oc, 2, on_commit, &w);
    ASSERT(w_wait(&w, 2000));
    ASSERT_EQ(w.err, COORD_OK);
    int64_t off;
    ASSERT_OK(td_group_committed(f.e, "solo", "t", 3, &off));
    ASSERT_EQ(off, 7);
    /* A generation for a group that does not exist. */
    w_reset(&w);
    coord_commit(f.c, "nogroup", "m", NULL, 4, oc, 1, on_commit, &w);
    ASSERT(w_wait(&w, 1000));
    ASSERT_EQ(w.err, COORD_ILLEGAL_GENERATION);
    /* An unknown partition fails the request in storage; nothing of it is written. */
    w_reset(&w);
    td_offset_commit bad[] = {{.topic = "t", .partition = 1, .offset = 9, .leader_epoch = -1},
                              {.topic = "t", .partition = 99, .offset = 1, .leader_epoch = -1}};
    coord_commit(f.c, "solo", "", NULL, -1, bad, 2, on_commit, &w);
    ASSERT(w_wait(&w, 2000));
    ASSERT_EQ(w.err, COORD_STORAGE);
    ASSERT_EQ(w.rc, TD_ENOTFOUND);
    ASSERT_EQ(td_group_committed(f.e, "solo", "t", 1, &off), TD_ENOTFOUND);

    /* Members commit at their generation; others are refused. */
    client a;
    cl_init(&a, "range", NULL);
    cl_join(&f, &a, "g");
    coord_join_res *r = cl_joined(&a);
    w_reset(&w);
    coord_commit(f.c, "g", a.id, NULL, r->generation, oc, 1, on_commit, &w);
    ASSERT(w_wait(&w, 1000));
    ASSERT_EQ(w.err, COORD_REBALANCING); /* CompletingRebalance */
    cl_sync_async(&f, &a, "g", 1, NULL, 0);
    ASSERT(w_wait(&a.w, 1000));
    w_reset(&w);
    coord_commit(f.c, "g", a.id, NULL, 1, oc, 2, on_commit, &w);
    ASSERT(w_wait(&w, 2000));
    ASSERT_EQ(w.err, COORD_OK);
    w_reset(&w);
    coord_commit(f.c, "g", a.id, NULL, 0, oc, 1, on_commit, &w);
    ASSERT(w_wait(&w, 1000));
    ASSERT_EQ(w.err, COORD_ILLEGAL_GENERATION);
    w_reset(&w);
    coord_commit(f.c, "g", "", NULL, -1, oc, 1, on_commit, &w);
    ASSERT(w_wait(&w, 1000));
    ASSERT_EQ(w.err, COORD_UNKNOWN_MEMBER); /* the group has members */

    /* Many concurrent commits land (the thread writes them in batches). */
    waiter ws[32];
    for (int i = 0; i < 32; i++) {
        w_init(&ws[i]);
        td_offset_commit one = {
            .topic = "t", .partition = i % 4, .offset = 100 + i, .leader_epoch = -1};
        char name[16];
        snprintf(name, sizeof(name), "many%d", i);
        coord_commit(f.c, name, "", NULL, -1, &one, 1, on_commit, &ws[i]);
    }
    for (int i = 0; i < 32; i++) {
        ASSERT(w_wait(&ws[i], 5000));
        ASSERT_EQ(ws[i].err, COORD_OK);
        char name[16];
        snprintf(name, sizeof(name), "many%d", i);
        ASSERT_OK(td_group_committed(f.e, name, "t", i % 4, &off));
        ASSERT_EQ(off, 100 + i);
        w_free(&ws[i]);
    }

    /* List: the group with members, and the groups that only store offsets. */
    coord_group_summary *list;
    size_t n;
    ASSERT_OK(coord_list(f.c, &list, &n));
    ASSERT_UEQ(n, 34);
    ASSERT_STR_EQ(list[0].name, "g");
    ASSERT_EQ(list[0].state, COORD_STABLE);
    ASSERT_STR_EQ(list[0].protocol_type, "consumer");
    ASSERT_STR_EQ(list[33].name, "solo");
    ASSERT_EQ(list[33].state, COORD_EMPTY);
    free(list);
    coord_group_desc d;
    ASSERT_EQ(coord_describe(f.c, "solo", &d), COORD_OK);
    ASSERT_EQ(d.state, COORD_EMPTY);
    coord_desc_free(&d);
    ASSERT_EQ(coord_describe(f.c, "nothing", &d), COORD_OK);
    ASSERT_EQ(d.state, COORD_DEAD);
    coord_desc_free(&d);

    /* Delete: not while members are in; then the group and its offsets go. */
    int rc;
    ASSERT_EQ(coord_delete(f.c, "g", &rc), COORD_NOT_EMPTY);
    ASSERT_EQ(coord_delete(f.c, "nothing", &rc), COORD_NOT_FOUND);
    ASSERT_EQ(coord_delete(f.c, "solo", &rc), COORD_OK);
    ASSERT_EQ(td_group_committed(f.e, "solo", "t", 0, &off), TD_ENOTFOUND);
    coord_leaver l = {.member_id = a.id};
    coord_leave(f.c, "g", &l, 1);
    ASSERT_EQ(l.err, COORD_OK);
    ASSERT_EQ(coord_describe(f.c, "g", &d), COORD_OK);
    ASSERT_EQ(d.state, COORD_EMPTY);
    ASSERT_EQ(d.generation, 2);
    coord_desc_free(&d);
    ASSERT_EQ(coord_delete(f.c, "g", &rc), COORD_OK);
    ASSERT_EQ(td_group_committed(f.e, "g", "t", 0, &off), TD_ENOTFOUND);
    fx_close(&f);
    w_free(&w);
    cl_free(&a);
}

/* Shutdown answers the members still waiting and refuses new work. */
static void test_shutdown(void)
{
    fixture f;
    fx_open(&f, 0);
    client a;
    cl_init(&a, "range", NULL);
    cl_join(&f, &a, "g");
    /* still within the initial delay */
    coord_shutdown(f.c);
    ASSERT(w_wait(&a.w, 1000));
    ASSERT_EQ(a.w.jr->err, COORD_UNAVAILABLE);
    ASSERT_EQ(coord_heartbeat(f.c, "g", a.id, NULL, 0), COORD_UNAVAILABLE);
    fx_close(&f);
    cl_free(&a);
}

/* A Stable group and an Empty one survive a restart through their GroupMetadata records: the
 * members go on with their generation, the numbering continues, a deleted group stays gone. */
static void test_restart(void)
{
    fixture f;
    fx_open(&f, 0);
    client a, b, x;
    cl_init(&a, "range", "roundrobin");
    cl_init(&b, "range", NULL);
    cl_init(&x, "range", NULL);
    a.instance = "inst-a";
    cl_join(&f, &a, "g");
    cl_join(&f, &b, "g");
    ASSERT_EQ(cl_joined(&a)->generation, 1);
    cl_joined(&b);
    coord_assignment plan[] = {{a.id, "A", 1}, {b.id, "BB", 2}};
    cl_sync_async(&f, &b, "g", 1, NULL, 0);
    cl_sync_async(&f, &a, "g", 1, plan, 2);
    ASSERT(w_wait(&a.w, 1000) && w_wait(&b.w, 1000));
    ASSERT_EQ(b.w.sr->err, COORD_OK);
    /* "e": one generation with a member, then empty at generation 2. */
    cl_join(&f, &x, "e");
    ASSERT_EQ(cl_joined(&x)->generation, 1);
    cl_sync_async(&f, &x, "e", 1, NULL, 0);
    ASSERT(w_wait(&x.w, 1000));
    coord_leaver l = {.member_id = x.id};
    ASSERT_EQ(coord_leave(f.c, "e", &l, 1), COORD_OK);
    /* "d": deleted before the restart. */
    memset(x.id, 0, sizeof(x.id));
    cl_join(&f, &x, "d");
    cl_joined(&x);
    l.member_id = x.id;
    ASSERT_EQ(coord_leave(f.c, "d", &l, 1), COORD_OK);
    int rc;
    ASSERT_EQ(coord_delete(f.c, "d", &rc), COORD_OK);

    fx_reopen(&f);
    coord_group_desc d;
    ASSERT_EQ(coord_describe(f.c, "g", &d), COORD_OK);
    ASSERT_EQ(d.state, COORD_STABLE);
    ASSERT_EQ(d.generation, 1);
    ASSERT_STR_EQ(d.protocol_type, "consumer");
    ASSERT_STR_EQ(d.protocol_name, "range");
    ASSERT_STR_EQ(d.leader, a.id);
    ASSERT_UEQ(d.nmembers, 2);
    ASSERT_STR_EQ(d.members[0].member_id, a.id);
    ASSERT_STR_EQ(d.members[0].instance_id, "inst-a");
    ASSERT(d.members[1].instance_id == NULL);
    ASSERT_STR_EQ(d.members[1].client_id, "cli");
    ASSERT_STR_EQ(d.members[1].client_host, "/127.0.0.1");
    ASSERT_MEM_EQ(d.members[0].meta, "range", 5); /* the subscription */
    ASSERT_MEM_EQ(d.members[1].assignment, "BB", 2);
    coord_desc_free(&d);
    ASSERT_EQ(coord_describe(f.c, "e", &d), COORD_OK);
    ASSERT_EQ(d.state, COORD_EMPTY);
    ASSERT_EQ(d.generation, 2);
    ASSERT_STR_EQ(d.protocol_type, "consumer");
    coord_desc_free(&d);
    ASSERT_EQ(coord_describe(f.c, "d", &d), COORD_OK);
    ASSERT_EQ(d.state, COORD_DEAD);
    coord_desc_free(&d);

    /* The members go on at generation 1: heartbeats, a follower's sync, a commit. */
    ASSERT_EQ(coord_heartbeat(f.c, "g", a.id, "inst-a", 1), COORD_OK);
    ASSERT_EQ(coord_heartbeat(f.c, "g", b.id, NULL, 1), COORD_OK);
    ASSERT_EQ(coord_heartbeat(f.c, "g", b.id, NULL, 2), COORD_ILLEGAL_GENERATION);
    cl_sync_async(&f, &b, "g", 1, NULL, 0);
    ASSERT(w_wait(&b.w, 1000));
    ASSERT_EQ(b.w.sr->err, COORD_OK);
    ASSERT_MEM_EQ(b.w.sr->assignment, "BB", 2);
    waiter w;
    w_init(&w);
    td_offset_commit oc = {.topic = "t", .partition = 0, .offset = 42, .leader_epoch = -1};
    coord_commit(f.c, "g", b.id, NULL, 1, &oc, 1, on_commit, &w);
    ASSERT(w_wait(&w, 3000));
    ASSERT_EQ(w.err, COORD_OK);
    /* A static member restarting with the same protocols keeps its generation. */
    memset(a.id, 0, sizeof(a.id));
    cl_join(&f, &a, "g");
    coord_join_res *r = cl_joined(&a);
    ASSERT_EQ(r->generation, 1);

    /* The numbering continues: the Empty group's next generation is 3. */
    client y;
    cl_init(&y, "range", NULL);
    cl_join(&f, &y, "e");
    ASSERT_EQ(cl_joined(&y)->generation, 3);
    coord_group_summary *v = NULL;
    size_t n = 0;
    ASSERT_OK(coord_list(f.c, &v, &n));
    bool has_d = false;
    for (size_t i = 0; i < n; i++)
        has_d = has_d || strcmp(v[i].name, "d") == 0;
    ASSERT(!has_d);
    free(v);
    fx_close(&f);
    w_free(&w);
    cl_free(&a);
    cl_free(&b);
    cl_free(&x);
    cl_free(&y);
}

/* Appends one GroupMetadata record (key version 2) with the value given, durably. */
static void put_metadata(td_engine *e, const char *group, const td_buf *value)
{
    td_buf k;
    td_buf_init(&k);
    ASSERT_OK(state_put16(&k, 2) | state_put_str(&k, group));
    int32_t part = state_partition_for(e, STATE_OFFSETS, group);
    td_event ev = {.key = k.p,
                   .key_len = k.len,
                   .value = value->p,
                   .value_len = value->len,
                   .partition = part};
    int64_t end;
    ASSERT_OK(state_append(e, STATE_OFFSETS, part, &ev, 1, &end));
    ASSERT_OK(state_wait(e, STATE_OFFSETS, part, end));
    td_buf_free(&k);
}

/* Values as older Kafka versions wrote them are read; a malformed value or one of a version
 * not known starts its group Empty, without harm to the others. */
static void test_restore_versions(void)
{
    fixture f;
    fx_open(&f, 0);
    td_buf v;
    td_buf_init(&v);
    /* Version 1: no timestamp, no instance id; one member. */
    ASSERT_OK(state_put16(&v, 1) | state_put_str(&v, "consumer") | state_put32(&v, 5) |
              state_put_str(&v, "range") | state_put_str(&v, "m-1") | state_put32(&v, 1) |
              state_put_str(&v, "m-1") | state_put_str(&v, "cli") | state_put_str(&v, "/h") |
              state_put32(&v, 3000) | state_put32(&v, 20000) | state_put32(&v, 3) |
              td_buf_append(&v, "sub", 3) | state_put32(&v, 1) | td_buf_append(&v, "A", 1));
    put_metadata(f.e, "old", &v);
    v.len -= 5; /* truncated inside the last member */
    put_metadata(f.e, "bad", &v);
    td_buf_reset(&v);
    ASSERT_OK(state_put16(&v, 4) | state_put_str(&v, "consumer") | state_put32(&v, 9));
    put_metadata(f.e, "future", &v);
    /* A member count far above what the value holds. */
    td_buf_reset(&v);
    ASSERT_OK(state_put16(&v, 3) | state_put_str(&v, "consumer") | state_put32(&v, 2) |
              state_put_str(&v, "range") | state_put_str(&v, "m") | state_put64(&v, 1) |
              state_put32(&v, 1000000000));
    put_metadata(f.e, "huge", &v);
    td_buf_free(&v);

    fx_reopen(&f);
    coord_group_desc d;
    ASSERT_EQ(coord_describe(f.c, "old", &d), COORD_OK);
    ASSERT_EQ(d.state, COORD_STABLE);
    ASSERT_EQ(d.generation, 5);
    ASSERT_STR_EQ(d.leader, "m-1");
    ASSERT_UEQ(d.nmembers, 1);
    ASSERT_STR_EQ(d.members[0].client_host, "/h");
    ASSERT_MEM_EQ(d.members[0].meta, "sub", 3);
    ASSERT_MEM_EQ(d.members[0].assignment, "A", 1);
    coord_desc_free(&d);
    ASSERT_EQ(coord_heartbeat(f.c, "old", "m-1", NULL, 5), COORD_OK);
    const char *empty[] = {"bad", "future", "huge"};
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ(coord_describe(f.c, empty[i], &d), COORD_OK);
        ASSERT_EQ(d.state, COORD_EMPTY);
        ASSERT_UEQ(d.nmembers, 0);
        coord_desc_free(&d);
    }
    fx_close(&f);
}

/* A group Empty for offsets.retention.minutes is forgotten with a tombstone: it does not come
 * back at the next start. */
static void test_forgotten_group_stays_gone(void)
{
    fixture f;
    fx_open(&f, 0);
    coord_destroy(f.c);
    coord_config cfg;
    coord_config_defaults(&cfg);
    cfg.min_session_ms = 10;
    cfg.initial_rebalance_delay_ms = 0;
    cfg.offsets_retention_ms = 100;
    cfg.retention_check_ms = 50;
    ASSERT_OK(coord_create(f.e, &cfg, &f.c));
    client a;
    cl_init(&a, "range", NULL);
    cl_join(&f, &a, "x");
    ASSERT_EQ(cl_joined(&a)->generation, 1);
    coord_leaver l = {.member_id = a.id};
    ASSERT_EQ(coord_leave(f.c, "x", &l, 1), COORD_OK);
    coord_group_desc d;
    coord_state st = COORD_EMPTY;
    for (int i = 0; i < 200 && st != COORD_DEAD; i++) {
        usleep(20000);
        ASSERT_EQ(coord_describe(f.c, "x", &d), COORD_OK);
        st = d.state;
        coord_desc_free(&d);
    }
    ASSERT_EQ(st, COORD_DEAD);
    fx_reopen(&f);
    ASSERT_EQ(coord_describe(f.c, "x", &d), COORD_OK);
    ASSERT_EQ(d.state, COORD_DEAD);
    coord_desc_free(&d);
    fx_close(&f);
    cl_free(&a);
}

TEST_MAIN(TEST(test_join_and_sync), TEST(test_bad_joins), TEST(test_timeouts),
          TEST(test_static_membership), TEST(test_commits_and_admin), TEST(test_shutdown),
          TEST(test_restart), TEST(test_restore_versions), TEST(test_forgotten_group_stays_gone))
