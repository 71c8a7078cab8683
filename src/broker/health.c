/*
 * health.c: health events on the system topics (health.h, docs/health.md).
 *
 * An emitter takes a token from its type's bucket under the module's mutex, formats the event
 * outside it, and queues it; the health thread takes the queue whole and appends each topic's
 * events as one batch (engine_produce_own: the broker's own write to a topic clients cannot
 * write). Between batches the thread runs the periodic checks (lag, disk, offline partitions,
 * slow fsyncs), whose memory (what it already said) is its own.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

#include "broker/engine_int.h"
#include "broker/health.h"
#include "broker/health_int.h"

enum { A_GROUPS, A_LAG, A_QUEUES, A_STORAGE, A_CLIENTS, A_CLUSTER, A_N };
static const char *const area_topics[A_N] = {"$sys.groups",  "$sys.lag",     "$sys.queues",
                                             "$sys.storage", "$sys.clients", "$sys.cluster"};

static const struct {
    const char *name;
    int area;
} types[HEALTH_NTYPES] = {
    [HEALTH_GROUP_MEMBER_JOINED] = {"group.member_joined", A_GROUPS},
    [HEALTH_GROUP_MEMBER_LEFT] = {"group.member_left", A_GROUPS},
    [HEALTH_GROUP_MEMBER_TIMED_OUT] = {"group.member_timed_out", A_GROUPS},
    [HEALTH_GROUP_REBALANCE_STARTED] = {"group.rebalance_started", A_GROUPS},
    [HEALTH_GROUP_REBALANCE_COMPLETED] = {"group.rebalance_completed", A_GROUPS},
    [HEALTH_LAG_OVER] = {"lag.over_threshold", A_LAG},
    [HEALTH_LAG_RECOVERED] = {"lag.recovered", A_LAG},
    [HEALTH_QUEUE_DEAD_LETTERED] = {"queue.dead_lettered", A_QUEUES},
    [HEALTH_QUEUE_REDRIVE_STARTED] = {"queue.redrive_started", A_QUEUES},
    [HEALTH_QUEUE_REDRIVE_FINISHED] = {"queue.redrive_finished", A_QUEUES},
    [HEALTH_QUEUE_CIRCUIT_OPENED] = {"queue.circuit_opened", A_QUEUES},
    [HEALTH_QUEUE_CIRCUIT_CLOSED] = {"queue.circuit_closed", A_QUEUES},
    [HEALTH_STORAGE_DISK_HIGH] = {"storage.disk_usage_high", A_STORAGE},
    [HEALTH_STORAGE_DISK_OK] = {"storage.disk_usage_ok", A_STORAGE},
    [HEALTH_STORAGE_PARTITION_OFFLINE] = {"storage.partition_offline", A_STORAGE},
    [HEALTH_STORAGE_FSYNC_SLOW] = {"storage.fsync_slow", A_STORAGE},
    [HEALTH_CLIENT_AUTH_FAILED] = {"client.auth_failed", A_CLIENTS},
    [HEALTH_CLIENT_PRODUCER_FENCED] = {"client.producer_fenced", A_CLIENTS},
    [HEALTH_CLUSTER_BROKER_JOINED] = {"cluster.broker_joined", A_CLUSTER},
    [HEALTH_CLUSTER_BROKER_LEFT] = {"cluster.broker_left", A_CLUSTER},
    [HEALTH_CLUSTER_CONTROLLER_CHANGED] = {"cluster.controller_changed", A_CLUSTER},
    [HEALTH_CLUSTER_LEASE_LOST] = {"cluster.lease_lost", A_CLUSTER},
    [HEALTH_CLUSTER_ETCD_UNREACHABLE] = {"cluster.etcd_unreachable", A_CLUSTER},
    [HEALTH_CLUSTER_ETCD_REACHABLE] = {"cluster.etcd_reachable", A_CLUSTER},
};

const char *health_type_name(health_type t)
{
    return (unsigned)t < HEALTH_NTYPES ? types[t].name : "unknown";
}

const char *health_type_topic(health_type t)
{
    return (unsigned)t < HEALTH_NTYPES ? area_topics[types[t].area] : NULL;
}

bool health_topic_name(const char *name)
{
    return name && strncmp(name, HEALTH_TOPIC_PREFIX, sizeof(HEALTH_TOPIC_PREFIX) - 1) == 0;
}

typedef struct pending {
    health_type type;
    char *key;  /* NULL: none */
    char *json; /* the value */
} pending;

typedef struct bucket {
    double tokens;
    int64_t last_ms;
    uint64_t suppressed; /* dropped since the type's last event */
} bucket;

struct td_health {
    td_engine *e;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t th;
    bool running, stopping;
    bool quiesced;                   /* health_quiesce: nothing is appended until stopping */
    bool appending;                  /* the thread is appending what it took */
    pending q[HEALTH_QUEUE_MAX];     /* a ring: head, n */
    pending taken[HEALTH_QUEUE_MAX]; /* the thread's: what it took from q to append */
    size_t head, n;
    bucket b[HEALTH_NTYPES];
    double rate; /* tokens per ms; a bucket holds at most rate per second */
    double burst;
    td_topic_ref *ref[A_N];
    td_metric *m_emitted[HEALTH_NTYPES], *m_dropped[HEALTH_NTYPES];
    health_checks checks; /* the thread's own */
};

bool health_on(td_engine *e)
{
    return __atomic_load_n(&e->health, __ATOMIC_ACQUIRE) != NULL;
}

/* "2026-12-07T08:45:00.123Z" */
static void rfc3339(int64_t ms, char *out, size_t cap)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, cap - n, ".%03dZ", (int)(ms % 1000));
}

/* A string of a field, at most 1 KiB of it; bytes that are not UTF-8 (a Redis group's name may
 * be any) as '?'. */
static json_t *text(const char *s)
{
    size_t n = strnlen(s, 1024);
    json_t *v = json_stringn(s, n);
    if (v)
        return v;
    char *copy = strndup(s, n);
    for (size_t i = 0; copy && i < n; i++)
        if ((unsigned char)copy[i] >= 0x80)
            copy[i] = '?';
    v = copy ? json_stringn(copy, n) : NULL;
    free(copy);
    return v;
}

/* The event's value: its envelope, then the fields (a field's string at most 1 KiB). */
static char *format(health_type type, int64_t now, uint64_t suppressed, const health_field *f,
                    size_t n)
{
    json_t *o = json_object();
    char when[40];
    rfc3339(now, when, sizeof(when));
    json_object_set_new(o, "version", json_integer(HEALTH_VERSION));
    json_object_set_new(o, "type", json_string(types[type].name));
    json_object_set_new(o, "time", json_string(when));
    json_object_set_new(o, "time_ms", json_integer(now));
    for (size_t i = 0; i < n; i++) {
        json_t *v;
        if (f[i].is_int)
            v = json_integer(f[i].i);
        else if (!f[i].s)
            v = json_null();
        else
            v = text(f[i].s);
        json_object_set_new(o, f[i].name, v ? v : json_null());
    }
    if (suppressed)
        json_object_set_new(o, "suppressed", json_integer((json_int_t)suppressed));
    char *s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(o);
    return s;
}

void health_emit(td_engine *e, health_type type, const char *key, const health_field *f, size_t n)
{
    struct td_health *h = __atomic_load_n(&e->health, __ATOMIC_ACQUIRE);
    if (!h || (unsigned)type >= HEALTH_NTYPES)
        return;
    int64_t now = td_mono_ms();
    bucket *b = &h->b[type];
    pthread_mutex_lock(&h->mu);
    b->tokens = TD_MIN(h->burst, b->tokens + (double)(now - b->last_ms) * h->rate);
    b->last_ms = now;
    bool take = b->tokens >= 1.0 && !h->stopping;
    uint64_t suppressed = 0;
    if (take) {
        b->tokens -= 1.0;
        suppressed = b->suppressed;
        b->suppressed = 0;
    } else {
        b->suppressed++;
    }
    pthread_mutex_unlock(&h->mu);
    if (!take) {
        td_counter_add(h->m_dropped[type], 1);
        return;
    }
    char *json = format(type, td_wall_ms(), suppressed, f, n);
    char *k = key ? strndup(key, 1024) : NULL;
    pthread_mutex_lock(&h->mu);
    bool queued = json && (k || !key) && h->n < HEALTH_QUEUE_MAX && !h->stopping;
    if (queued) {
        h->q[(h->head + h->n) % HEALTH_QUEUE_MAX] = (pending){type, k, json};
        h->n++;
        pthread_cond_signal(&h->cv);
    } else {
        b->suppressed += suppressed + 1; /* said by the type's next event instead */
    }
    pthread_mutex_unlock(&h->mu);
    td_counter_add(queued ? h->m_emitted[type] : h->m_dropped[type], 1);
    if (!queued) {
        free(json);
        free(k);
    }
}

void health_producer_fenced(td_engine *e, const char *topic, int32_t partition, int64_t producer_id,
                            int16_t epoch, const char *client_id)
{
    health_field f[] = {HF_STR("topic", topic), HF_INT("partition", partition),
                        HF_INT("producer_id", producer_id), HF_INT("producer_epoch", epoch),
                        HF_STR("client_id", client_id)};
    health_emit(e, HEALTH_CLIENT_PRODUCER_FENCED, topic, f, sizeof(f) / sizeof(f[0]));
}

/* ---------------------------------------------------------------------------------------------
 * The thread
 */
/* Appends the events of v[0..n) of one area, in their order, as one call. */
static void append_area(struct td_health *h, int area, pending *v, size_t n)
{
    static const char hkey[] = "tidings-health-type";
    td_event *ev = calloc(n, sizeof(*ev));
    td_header *hd = calloc(n, sizeof(*hd));
    int64_t ends[1];
    if (!ev || !hd) {
        free(ev);
        free(hd);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const char *tn = types[v[i].type].name;
        hd[i] = (td_header){hkey, sizeof(hkey) - 1, tn, strlen(tn)};
        ev[i] = (td_event){.key = v[i].key,
                           .key_len = v[i].key ? strlen(v[i].key) : 0,
                           .value = v[i].json,
                           .value_len = strlen(v[i].json),
                           .headers = &hd[i],
                           .header_count = 1,
                           .partition = 0};
    }
    /* Under the topic's fsync policy (interval:1000 unless altered), they are synced later;
     * nothing here waits for it. */
    if (broker_topic_partitions(h->ref[area]) < 1 ||
        engine_produce_own(h->ref[area], ev, n, ends) != 0)
        TD_WARN("health", "could not append %zu event%s to %s: %s", n, n == 1 ? "" : "s",
                area_topics[area], td_last_error());
    else
        broker_when_durable(h->ref[area], 0, ends[0], NULL, NULL);
    free(ev);
    free(hd);
}

/* Appends the queued events v[0..n), grouped by topic in their order. */
static void append_all(struct td_health *h, pending *v, size_t n)
{
    pending *grp = malloc(TD_MAX(n, 1) * sizeof(*grp));
    for (int a = 0; grp && a < A_N; a++) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (types[v[i].type].area == a)
                grp[k++] = v[i];
        if (k)
            append_area(h, a, grp, k);
    }
    free(grp);
    for (size_t i = 0; i < n; i++) {
        free(v[i].key);
        free(v[i].json);
    }
}

static void *health_main(void *arg)
{
    struct td_health *h = arg;
    td_engine *e = h->e;
    pending *v = h->taken;
    int64_t interval =
        e->opts.health_check_interval_ms > 0 ? e->opts.health_check_interval_ms : 1000;
    int64_t next = td_mono_ms() + interval;
    pthread_mutex_lock(&h->mu);
    for (;;) {
        while ((h->n == 0 || h->quiesced) && !h->stopping && td_mono_ms() < next) {
            int64_t until = td_wall_ms() + (next - td_mono_ms());
            struct timespec ts = {(time_t)(until / 1000), (long)(until % 1000) * 1000000L};
            pthread_cond_timedwait(&h->cv, &h->mu, &ts);
        }
        size_t n = 0;
        while (h->n && (!h->quiesced || h->stopping)) {
            v[n++] = h->q[h->head];
            h->head = (h->head + 1) % HEALTH_QUEUE_MAX;
            h->n--;
        }
        bool stop = h->stopping;
        h->appending = n > 0;
        pthread_mutex_unlock(&h->mu);
        if (n) {
            append_all(h, v, n);
            pthread_mutex_lock(&h->mu);
            h->appending = false;
            pthread_cond_broadcast(&h->cv);
            pthread_mutex_unlock(&h->mu);
        }
        if (stop)
            break;
        if (td_mono_ms() >= next) {
            health_check_all(e, &h->checks);
            next = td_mono_ms() + interval;
        }
        pthread_mutex_lock(&h->mu);
    }
    return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Open and close
 */
static int ensure_topics(struct td_health *h)
{
    td_engine *e = h->e;
    /* fsync=interval:1000: no client waits on these events, and a slow disk (which they may
     * be reporting) should not get an fsync per event from the flusher that producers share. */
    td_config_entry cfg[] = {{"retention.ms", "604800000"},
                             {"segment.bytes", "16777216"},
                             {"retention.bytes", "268435456"},
                             {"fsync", "interval:1000"}};
    for (int a = 0; a < A_N; a++) {
        int rc = broker_topic_acquire(e, area_topics[a], &h->ref[a]);
        if (rc == TD_ENOTFOUND) {
            rc = engine_topic_create_own(e, area_topics[a], 1, cfg, sizeof(cfg) / sizeof(cfg[0]));
            if (rc == 0 || rc == TD_EEXIST)
                rc = broker_topic_acquire(e, area_topics[a], &h->ref[a]);
        }
        if (rc)
            return rc;
    }
    return 0;
}

static void health_free(struct td_health *h)
{
    for (int a = 0; a < A_N; a++)
        broker_topic_release(h->ref[a]);
    health_checks_free(&h->checks);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
    free(h);
}

int health_open(td_engine *e)
{
    if (!e->opts.health_events)
        return 0;
    struct td_health *h = calloc(1, sizeof(*h));
    if (!h)
        return -ENOMEM;
    h->e = e;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    double per_sec = e->opts.health_events_rate > 0 ? (double)e->opts.health_events_rate : 10.0;
    h->rate = per_sec / 1000.0;
    h->burst = per_sec < 1.0 ? 1.0 : per_sec;
    int64_t now = td_mono_ms();
    for (int t = 0; t < HEALTH_NTYPES; t++)
        h->b[t] = (bucket){h->burst, now, 0};
    td_metric_family *f = td_metrics_family(
        broker_metrics(e), TD_COUNTER, "tidings_health_events_total",
        "Health events of the system topics $sys.*, by type: emitted (queued for their topic) "
        "or dropped (over health.events.rate, or the queue full).",
        "type,result", NULL, 0);
    for (int t = 0; f && t < HEALTH_NTYPES; t++) {
        const char *em[] = {types[t].name, "emitted"}, *dr[] = {types[t].name, "dropped"};
        h->m_emitted[t] = td_metric_get(f, em);
        h->m_dropped[t] = td_metric_get(f, dr);
    }
    int rc = f ? ensure_topics(h) : -ENOMEM;
    if (rc == 0 && pthread_create(&h->th, NULL, health_main, h) != 0)
        rc = td_fail(-EAGAIN, "cannot start the health thread");
    if (rc) {
        health_free(h);
        return rc;
    }
    h->running = true;
    __atomic_store_n(&e->health, h, __ATOMIC_RELEASE);
    return 0;
}

void health_quiesce(td_engine *e)
{
    struct td_health *h = e ? e->health : NULL;
    if (!h)
        return;
    pthread_mutex_lock(&h->mu);
    h->quiesced = true;
    while (h->appending)
        pthread_cond_wait(&h->cv, &h->mu);
    pthread_mutex_unlock(&h->mu);
}

void health_close(td_engine *e)
{
    struct td_health *h = e->health;
    if (!h)
        return;
    /* Emitters are gone (the listeners and the coordinator stopped before the engine closes):
     * the thread appends what is queued, then ends. */
    pthread_mutex_lock(&h->mu);
    h->stopping = true;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    if (h->running)
        pthread_join(h->th, NULL);
    __atomic_store_n(&e->health, NULL, __ATOMIC_RELEASE);
    health_free(h);
}
