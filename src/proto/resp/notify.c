/*
 * notify.c: Redis keyspace notifications (docs/redis.md#keyspace-notifications), as Redis 7.0's
 * notify.c sends them: for an event of a class that notify-keyspace-events selects, the message
 * <event> on the channel __keyspace@0__:<key> (class K) and the message <key> on
 * __keyevent@0__:<event> (class E), published as PUBLISH publishes (to channel and pattern
 * subscribers, never to sharded ones).
 *
 * Two sources:
 * - The Redis listener's own commands call resp_notify with the key as the client wrote it, in
 *   the order Redis sends them (`new` before `xadd`, `xadd` before `xtrim`). While the
 *   connection's replies are held for durability (an XADD's entry, a group's save), its
 *   notifications are held with them and published when the replies go: a subscriber that
 *   reads the stream when told of an `xadd` finds the entry.
 * - Changes made through Kafka, HTTP, the CLI or the library reach the broker's change hook
 *   (broker_set_change_hook): an append of n events is n `xadd`, a trim of a partition's start
 *   (DeleteRecords, retention) is `xtrim`, a created topic is `new` and a deleted one `del`.
 *   The hook runs on the appending thread and never blocks it: when the class is off, or
 *   nobody subscribes to any channel or pattern, it returns after two atomic loads; otherwise it
 *   copies the change and posts it to one loop (one loop keeps their order), which publishes it
 *   once the appended events are durable (broker_when_durable). At most NOTIFY_MAX_PENDING
 *   such notifications wait at a time, and none are queued while the subscribers' loops have
 *   NOTIFY_MAX_INFLIGHT messages not yet written; past that they are dropped and counted
 *   (tidings_redis_notifications_dropped_total), as Pub/Sub delivers at most once anyway. So
 *   a producer faster than the subscribers costs bounded memory, never a wait.
 *
 * A subscriber that does not read its messages is disconnected when its unread output passes
 * pubsub.c's limit (32 MiB), as Redis's client-output-buffer-limit for pubsub does.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/resp/resp_int.h"

#define NOTIFY_MAX_PENDING 65536
/* Messages of every Pub/Sub subscriber posted to the loops and not yet written, past which
 * other protocols' changes are not told (a subscriber's loop that cannot keep up). */
#define NOTIFY_MAX_INFLIGHT 262144

/* ---------------------------------------------------------------------------------------------
 * notify-keyspace-events
 */
static const struct {
    char c;
    int flag;
} classes[] = {
    {'A', RESP_NOTIFY_ALL},      {'g', RESP_NOTIFY_GENERIC},  {'$', RESP_NOTIFY_STRING},
    {'l', RESP_NOTIFY_LIST},     {'s', RESP_NOTIFY_SET},      {'h', RESP_NOTIFY_HASH},
    {'z', RESP_NOTIFY_ZSET},     {'x', RESP_NOTIFY_EXPIRED},  {'e', RESP_NOTIFY_EVICTED},
    {'K', RESP_NOTIFY_KEYSPACE}, {'E', RESP_NOTIFY_KEYEVENT}, {'t', RESP_NOTIFY_STREAM},
    {'m', RESP_NOTIFY_KEY_MISS}, {'d', RESP_NOTIFY_MODULE},   {'n', RESP_NOTIFY_NEW},
};

int resp_notify_flags_parse(const char *s, size_t n)
{
    int flags = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        while (k < TD_ARRAY_LEN(classes) && classes[k].c != s[i])
            k++;
        if (k == TD_ARRAY_LEN(classes))
            return -1;
        flags |= classes[k].flag;
    }
    return flags;
}

void resp_notify_flags_format(int flags, char *out)
{
    /* Redis's order: A or the classes, then K, E and m. */
    static const char order[] = "g$lshzxetdn";
    size_t n = 0;
    if ((flags & RESP_NOTIFY_ALL) == RESP_NOTIFY_ALL)
        out[n++] = 'A';
    else
        for (const char *c = order; *c; c++)
            if (flags & resp_notify_flags_parse(c, 1))
                out[n++] = *c;
    if (flags & RESP_NOTIFY_KEYSPACE)
        out[n++] = 'K';
    if (flags & RESP_NOTIFY_KEYEVENT)
        out[n++] = 'E';
    if (flags & RESP_NOTIFY_KEY_MISS)
        out[n++] = 'm';
    out[n] = 0;
}

void resp_notify_config_get(resp_server *s, char *buf, size_t len)
{
    char v[16];
    resp_notify_flags_format(__atomic_load_n(&s->notify_flags, __ATOMIC_RELAXED), v);
    snprintf(buf, len, "%s", v);
}

bool resp_notify_config_set(resp_w *w, td_slice value, bool apply, resp_server *s)
{
    /* Redis reads the value as a C string: what follows a NUL is not seen. */
    const uint8_t *nul = memchr(value.p, 0, value.n);
    int flags =
        resp_notify_flags_parse((const char *)value.p, nul ? (size_t)(nul - value.p) : value.n);
    if (flags < 0) {
        resp_w_error(w, "ERR CONFIG SET failed (possibly related to argument "
                        "'notify-keyspace-events') - Invalid event class character. Use "
                        "'Ag$lshzxeKEtmdn'.");
        return false;
    }
    if (apply)
        __atomic_store_n(&s->notify_flags, flags, __ATOMIC_RELAXED);
    return true;
}

/* ---------------------------------------------------------------------------------------------
 * Publishing
 */
static void publish(resp_server *s, int flags, const char *event, td_slice key)
{
    static const char space[] = "__keyspace@0__:", kevent[] = "__keyevent@0__:";
    size_t elen = strlen(event);
    char small[512];
    size_t need = sizeof(space) - 1 + TD_MAX(key.n, elen);
    char *chan = need <= sizeof(small) ? small : malloc(need);
    if (!chan)
        return; /* at most once: a notification lost to memory is like one to a slow reader */
    if (flags & RESP_NOTIFY_KEYSPACE) {
        memcpy(chan, space, sizeof(space) - 1);
        if (key.n)
            memcpy(chan + sizeof(space) - 1, key.p, key.n);
        resp_pubsub_publish(s->pubsub, td_slice_make(chan, sizeof(space) - 1 + key.n),
                            td_slice_make(event, elen));
    }
    if (flags & RESP_NOTIFY_KEYEVENT) {
        memcpy(chan, kevent, sizeof(kevent) - 1);
        memcpy(chan + sizeof(kevent) - 1, event, elen);
        resp_pubsub_publish(s->pubsub, td_slice_make(chan, sizeof(kevent) - 1 + elen), key);
    }
    if (chan != small)
        free(chan);
}

/* Whether an event of class type is sent at all: its class and K or E. */
static int wanted(resp_server *s, int type)
{
    int f = __atomic_load_n(&s->notify_flags, __ATOMIC_RELAXED);
    return (f & type) && (f & (RESP_NOTIFY_KEYSPACE | RESP_NOTIFY_KEYEVENT)) ? f : 0;
}

/* A held note: type (4 bytes), the event's length (1), the key's (4), the event, the key. */
void resp_notify(rconn *rc, int type, const char *event, td_slice key)
{
    int f = wanted(rc->s, type);
    if (!f)
        return;
    if (rc->waits == 0) {
        resp_notify_release(rc); /* any held before it go first */
        publish(rc->s, f, event, key);
        return;
    }
    uint8_t elen = (uint8_t)strlen(event);
    uint32_t klen = (uint32_t)key.n, t = (uint32_t)type;
    if (td_buf_reserve(&rc->notes, 9 + elen + key.n) != 0)
        return;
    td_buf_append(&rc->notes, &t, 4);
    td_buf_append(&rc->notes, &elen, 1);
    td_buf_append(&rc->notes, &klen, 4);
    td_buf_append(&rc->notes, event, elen);
    if (key.n)
        td_buf_append(&rc->notes, key.p, key.n);
}

void resp_notify_release(rconn *rc)
{
    if (rc->waits || rc->notes.len == 0)
        return;
    char event[256];
    for (size_t at = 0; at + 9 <= rc->notes.len;) {
        uint32_t t, klen;
        uint8_t elen;
        memcpy(&t, rc->notes.p + at, 4);
        elen = rc->notes.p[at + 4];
        memcpy(&klen, rc->notes.p + at + 5, 4);
        memcpy(event, rc->notes.p + at + 9, elen);
        event[elen] = 0;
        int f = wanted(rc->s, (int)t);
        if (f)
            publish(rc->s, f, event, td_slice_make(rc->notes.p + at + 9 + elen, klen));
        at += 9 + (size_t)elen + klen;
    }
    rc->notes.len = 0;
    if (rc->notes.cap > (64u << 10)) {
        td_buf_free(&rc->notes);
        td_buf_init(&rc->notes);
    }
}

void resp_notify_miss(rconn *rc, td_slice key)
{
    resp_notify(rc, RESP_NOTIFY_KEY_MISS, "keymiss", key);
}

bool resp_notify_lookup(rconn *rc, bool found, td_slice key)
{
    if (!found)
        resp_notify_miss(rc, key);
    return found;
}

/* ---------------------------------------------------------------------------------------------
 * Consumers that XREADGROUP, XCLAIM and XAUTOCLAIM create
 */
typedef struct find_consumer {
    td_slice name;
    bool found;
} find_consumer;

static void consumer_seen(void *arg, const xconsumer_info *c)
{
    find_consumer *f = arg;
    f->found |= c->name.n == f->name.n && !memcmp(c->name.p, f->name.p, f->name.n);
}

/* O(consumers of the group) under the groups' lock: paid only while xgroup-createconsumer is
 * sent, since the commands' broker calls do not say whether they created the consumer. */
static bool consumer_exists(rconn *rc, const xstream *xs, td_slice group, td_slice consumer)
{
    find_consumer f = {consumer, false};
    xgroup_info g;
    if (xgroup_consumers(rc->s->e, xs, group, &g, consumer_seen, &f) != 0)
        td_error_clear();
    return f.found;
}

bool resp_notify_consumer_known(rconn *rc, const xstream *xs, td_slice group, td_slice consumer)
{
    if (!wanted(rc->s, RESP_NOTIFY_STREAM))
        return true;
    return consumer_exists(rc, xs, group, consumer);
}

void resp_notify_consumer_made(rconn *rc, const xstream *xs, td_slice key, td_slice group,
                               td_slice consumer, bool known)
{
    if (!known && wanted(rc->s, RESP_NOTIFY_STREAM) && consumer_exists(rc, xs, group, consumer))
        resp_notify(rc, RESP_NOTIFY_STREAM, "xgroup-createconsumer", key);
}

/* ---------------------------------------------------------------------------------------------
 * Changes made through the other protocols
 */
static _Thread_local bool muted;

void resp_notify_mute(bool on)
{
    muted = on;
}

/*
 * The key of a topic's partition. The one place that turns a topic name into a Redis key:
 * today a topic name is its own key (a key that is not a valid topic name has no topic), and
 * partition N of a topic of several partitions is the key <topic>/N. When keys map to topic
 * names by an encoding, decode the name here.
 */
static void topic_key(const char *topic, int32_t partition, int32_t partitions, td_buf *out)
{
    out->len = 0;
    /* The key whose topic this is (docs/redis.md#the-keyspace-is-the-topics); a name decodes to
     * at most as many bytes as it has. */
    uint8_t key[TD_TOPIC_NAME_MAX];
    ssize_t kn = td_name_to_key(topic, strlen(topic), key, sizeof(key));
    if (kn < 0 || td_buf_append(out, key, (size_t)kn) != 0)
        return;
    if (partitions > 1 && partition >= 0) {
        char n[16];
        int k = snprintf(n, sizeof(n), "/%" PRId32, partition);
        td_buf_append(out, n, (size_t)k);
    }
}

typedef struct notify_job {
    resp_server *s;
    int kind, type;
    int32_t partition, partitions;
    int64_t count, end;
    char topic[TD_TOPIC_NAME_MAX + 1];
} notify_job;

static void job_done(notify_job *j, int64_t reserved)
{
    __atomic_sub_fetch(&j->s->notify_pending, reserved, __ATOMIC_RELAXED);
    __atomic_sub_fetch(&j->s->notify_jobs, 1, __ATOMIC_RELEASE);
    free(j);
}

static void job_publish(notify_job *j)
{
    static const char *const events[] = {NULL, "xadd", "xtrim", "new", "del"};
    int f = wanted(j->s, j->type);
    td_buf key;
    td_buf_init(&key);
    /* Appends: one per event of one partition. Creations and deletions: one per key, which is
     * one per partition for a topic of several. */
    int64_t n =
        j->kind == BROKER_CHANGE_APPEND || j->kind == BROKER_CHANGE_TRIM ? 1 : j->partitions;
    for (int64_t i = 0; f && i < n; i++) {
        topic_key(j->topic, j->partition >= 0 ? j->partition : (int32_t)i, j->partitions, &key);
        if (key.p == NULL)
            break;
        int64_t times = j->kind == BROKER_CHANGE_APPEND ? j->count : 1;
        for (int64_t k = 0; k < times; k++)
            publish(j->s, f, events[j->kind], td_slice_make(key.p, key.len));
    }
    td_buf_free(&key);
}

static int64_t job_weight(const notify_job *j)
{
    return j->kind == BROKER_CHANGE_APPEND ? j->count
           : j->kind == BROKER_CHANGE_TRIM ? 1
                                           : j->partitions;
}

/* The flusher's thread (or the loop's, when already durable). */
static void job_durable(void *arg, int r)
{
    notify_job *j = arg;
    if (r == 0)
        job_publish(j);
    job_done(j, job_weight(j));
}

/* On the listener's first loop: changes in the order the hook saw them. */
static void job_task(void *arg)
{
    notify_job *j = arg;
    if (__atomic_load_n(&j->s->notify_detached, __ATOMIC_ACQUIRE)) {
        job_done(j, job_weight(j));
        return;
    }
    if (j->kind != BROKER_CHANGE_APPEND) {
        job_publish(j);
        job_done(j, job_weight(j));
        return;
    }
    td_topic_ref *ref;
    if (broker_topic_acquire(j->s->e, j->topic, &ref) != 0) {
        td_error_clear(); /* deleted since: its `del` follows */
        job_done(j, job_weight(j));
        return;
    }
    if (broker_when_durable(ref, j->partition, j->end, job_durable, j) != 0) {
        td_error_clear();
        job_done(j, job_weight(j));
    }
    broker_topic_release(ref);
}

static void on_change(void *arg, const broker_change *c)
{
    resp_server *s = arg;
    int type = c->kind == BROKER_CHANGE_DELETE   ? RESP_NOTIFY_GENERIC
               : c->kind == BROKER_CHANGE_CREATE ? RESP_NOTIFY_NEW
                                                 : RESP_NOTIFY_STREAM;
    if (muted || !wanted(s, type) || !resp_pubsub_any(s->pubsub) ||
        __atomic_load_n(&s->notify_detached, __ATOMIC_ACQUIRE))
        return;
    notify_job *j = malloc(sizeof(*j));
    if (!j)
        return;
    *j = (notify_job){s,        c->kind, type, c->partition, TD_MAX(c->partitions, 1),
                      c->count, c->end,  {0}};
    snprintf(j->topic, sizeof(j->topic), "%s", c->topic);
    int64_t w = job_weight(j);
    if (__atomic_add_fetch(&s->notify_pending, w, __ATOMIC_RELAXED) > NOTIFY_MAX_PENDING ||
        resp_pubsub_inflight(s->pubsub) > NOTIFY_MAX_INFLIGHT) {
        __atomic_sub_fetch(&s->notify_pending, w, __ATOMIC_RELAXED);
        td_counter_add(s->m_notify_dropped, (uint64_t)w);
        TD_WARN("redis",
                "keyspace notifications: %" PRId64 " dropped (more than %d waiting to be sent)", w,
                NOTIFY_MAX_PENDING);
        free(j);
        return;
    }
    __atomic_add_fetch(&s->notify_jobs, 1, __ATOMIC_ACQ_REL);
    if (net_loop_post(net_group_loop(s->group, 0), job_task, j) != 0)
        job_done(j, w);
}

int resp_notify_attach(resp_server *s)
{
    td_metric_family *f = td_metrics_family(
        broker_metrics(s->e), TD_COUNTER, "tidings_redis_notifications_dropped_total",
        "Keyspace notifications of changes made through other protocols that were dropped "
        "because too many were waiting to be sent",
        NULL, NULL, 0);
    s->m_notify_dropped = f ? td_metric_get(f, NULL) : NULL;
    broker_set_change_hook(s->e, on_change, s);
    return 0;
}

void resp_notify_detach(resp_server *s)
{
    broker_set_change_hook(s->e, NULL, NULL);
    __atomic_store_n(&s->notify_detached, true, __ATOMIC_RELEASE);
}

void resp_notify_wait_jobs(resp_server *s)
{
    /* Jobs waiting for durability end when the engine's flush runs their callbacks (before the
     * listener is destroyed, server.c); this only covers a callback still running. Bounded. */
    for (int i = 0; i < 5000 && __atomic_load_n(&s->notify_jobs, __ATOMIC_ACQUIRE) > 0; i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}
