/*
 * pubsub.c: Redis Pub/Sub on the Redis listener (docs/redis.md#pubsub): SUBSCRIBE,
 * UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, PUBLISH and PUBSUB, ephemeral fan-out as in Redis
 * (nothing is stored; a message reaches the clients subscribed when it is published); and
 * sharded Pub/Sub (SSUBSCRIBE, SUNSUBSCRIBE, SPUBLISH, PUBSUB SHARDCHANNELS and SHARDNUMSUB) as
 * Redis 7.0 serves it outside a cluster: one shard holding every channel, channels of their own
 * (a message SPUBLISH sends reaches SSUBSCRIBE's subscribers only, never patterns), counted
 * apart from the others in the replies, and delivered as `smessage`.
 *
 * The subscriptions of every connection are in one table under a mutex: channels in a hash
 * table, patterns in a list. PUBLISH finds the subscribers under the mutex, takes a reference
 * on each connection, and posts the message to the connection's own event loop, which encodes it
 * in that connection's protocol (a RESP2 array or a RESP3 push) and writes it. A subscriber
 * whose unsent output passes PUBSUB_OUT_LIMIT is disconnected, as Redis's client-output-buffer-
 * limit for pubsub clients does.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/resp/resp_int.h"

#define PUBSUB_OUT_LIMIT (32u << 20)
#define NBUCKETS 1024

/* The kinds of subscriptions: the `pattern` argument of the functions below is one of them. */
enum { KIND_CHANNEL = 0, KIND_PATTERN = 1, KIND_SHARD = 2 };

typedef struct psub {
    struct psub *next; /* in the channel's or the pattern list */
    rconn *rc;
    net_conn *c;
    char *name; /* the channel or pattern */
    size_t len;
} psub;

struct resp_pubsub {
    pthread_mutex_t mu;
    psub *buckets[NBUCKETS]; /* channel subscriptions by hash of the channel */
    psub *patterns;
    psub *sbuckets[NBUCKETS]; /* sharded channel subscriptions, likewise */
    size_t nsubs;             /* atomic: channel and pattern subscriptions (resp_pubsub_any) */
    int64_t inflight;         /* atomic: messages posted to loops and not yet written */
};

int resp_pubsub_create(resp_pubsub **out)
{
    resp_pubsub *ps = calloc(1, sizeof(*ps));
    if (!ps)
        return -ENOMEM;
    pthread_mutex_init(&ps->mu, NULL);
    *out = ps;
    return 0;
}

void resp_pubsub_destroy(resp_pubsub *ps)
{
    if (!ps)
        return;
    for (size_t i = 0; i < 2 * NBUCKETS; i++)
        for (psub *s = i < NBUCKETS ? ps->buckets[i] : ps->sbuckets[i - NBUCKETS], *n; s; s = n) {
            n = s->next;
            free(s->name);
            free(s);
        }
    for (psub *s = ps->patterns, *n; s; s = n) {
        n = s->next;
        free(s->name);
        free(s);
    }
    pthread_mutex_destroy(&ps->mu);
    free(ps);
}

static psub **list_of(resp_pubsub *ps, int kind, const void *name, size_t len)
{
    if (kind == KIND_PATTERN)
        return &ps->patterns;
    return &(kind == KIND_SHARD ? ps->sbuckets : ps->buckets)[td_hash64(name, len) % NBUCKETS];
}

bool resp_pubsub_any(resp_pubsub *ps)
{
    return __atomic_load_n(&ps->nsubs, __ATOMIC_RELAXED) != 0;
}

/* Whether s is the first subscription to its name in the list from head (names counted once
 * however many connections subscribe). Under ps->mu. */
static bool first_of_name(const psub *head, const psub *s)
{
    for (const psub *t = head; t != s; t = t->next)
        if (t->len == s->len && !memcmp(t->name, s->name, s->len))
            return false;
    return true;
}

/* Adds (rc, name); false if it was there. Under ps->mu. */
static bool add(resp_pubsub *ps, rconn *rc, int pattern, td_slice name, bool *oom)
{
    psub **l = list_of(ps, pattern, name.p, name.n);
    for (psub *s = *l; s; s = s->next)
        if (s->rc == rc && s->len == name.n && !memcmp(s->name, name.p, name.n))
            return false;
    psub *s = calloc(1, sizeof(*s));
    char *copy = malloc(name.n + 1);
    if (!s || !copy) {
        free(s);
        free(copy);
        *oom = true;
        return false;
    }
    memcpy(copy, name.p, name.n);
    copy[name.n] = 0;
    *s = (psub){*l, rc, rc->c, copy, name.n};
    *l = s;
    if (pattern != KIND_SHARD)
        __atomic_add_fetch(&ps->nsubs, 1, __ATOMIC_RELAXED);
    return true;
}

/* Removes (rc, name); false if it was not there. Under ps->mu. */
static bool del(resp_pubsub *ps, rconn *rc, int pattern, const void *name, size_t len)
{
    for (psub **l = list_of(ps, pattern, name, len); *l; l = &(*l)->next) {
        psub *s = *l;
        if (s->rc == rc && s->len == len && !memcmp(s->name, name, len)) {
            *l = s->next;
            free(s->name);
            free(s);
            if (pattern != KIND_SHARD)
                __atomic_sub_fetch(&ps->nsubs, 1, __ATOMIC_RELAXED);
            return true;
        }
    }
    return false;
}

/* The connection's own list of its subscriptions (rc->subs), for counts and UNSUBSCRIBE. */
static resp_subs *own_of(rconn *rc, int kind)
{
    return kind == KIND_SHARD ? &rc->ssubs : kind == KIND_PATTERN ? &rc->psubs : &rc->subs;
}

static bool own_add(rconn *rc, int pattern, td_slice name)
{
    resp_subs *o = own_of(rc, pattern);
    if (td_grow(&o->v, &o->cap, o->n, sizeof(*o->v), 4) != 0)
        return false;
    uint8_t *copy = malloc(name.n ? name.n : 1);
    if (!copy)
        return false;
    memcpy(copy, name.p, name.n);
    o->v[o->n++] = td_slice_make(copy, name.n);
    return true;
}

static void own_del(rconn *rc, int pattern, const void *name, size_t len)
{
    resp_subs *o = own_of(rc, pattern);
    for (size_t i = 0; i < o->n; i++)
        if (o->v[i].n == len && !memcmp(o->v[i].p, name, len)) {
            free((void *)o->v[i].p);
            o->v[i] = o->v[--o->n];
            return;
        }
}

size_t resp_subscriptions(const rconn *rc)
{
    return rc->subs.n + rc->psubs.n + rc->ssubs.n;
}

/* The count a subscription reply shows: Redis counts sharded channels apart. */
static size_t count_of(const rconn *rc, int kind)
{
    return kind == KIND_SHARD ? rc->ssubs.n : rc->subs.n + rc->psubs.n;
}

static const char *const sub_names[] = {"subscribe", "psubscribe", "ssubscribe"};
static const char *const unsub_names[] = {"unsubscribe", "punsubscribe", "sunsubscribe"};

static void shown(rconn *rc)
{
    __atomic_store_n(&rc->nsub, rc->subs.n, __ATOMIC_RELAXED);
    __atomic_store_n(&rc->npsub, rc->psubs.n, __ATOMIC_RELAXED);
    __atomic_store_n(&rc->nssub, rc->ssubs.n, __ATOMIC_RELAXED);
}

/* ["subscribe", name, count] and the like: a RESP3 push, or a RESP2 array. */
static void reply_sub(resp_w *w, const char *kind, const void *name, size_t len, bool null_name,
                      size_t count)
{
    resp_w_push(w, 3);
    resp_w_str(w, kind);
    if (null_name)
        resp_w_null(w);
    else
        resp_w_bulk(w, name, len);
    resp_w_int(w, (int64_t)count);
}

static void subscribe(rconn *rc, resp_w *w, size_t argc, const td_slice *argv, int pattern)
{
    resp_pubsub *ps = rc->s->pubsub;
    for (size_t i = 1; i < argc; i++) {
        bool oom = false, added;
        pthread_mutex_lock(&ps->mu);
        added = add(ps, rc, pattern, argv[i], &oom);
        pthread_mutex_unlock(&ps->mu);
        if (added && !own_add(rc, pattern, argv[i])) {
            pthread_mutex_lock(&ps->mu);
            del(ps, rc, pattern, argv[i].p, argv[i].n);
            pthread_mutex_unlock(&ps->mu);
            oom = true;
        }
        if (oom) {
            w->oom = true;
            return;
        }
        shown(rc);
        reply_sub(w, sub_names[pattern], argv[i].p, argv[i].n, false, count_of(rc, pattern));
    }
}

static void unsubscribe(rconn *rc, resp_w *w, size_t argc, const td_slice *argv, int pattern)
{
    resp_pubsub *ps = rc->s->pubsub;
    const char *kind = unsub_names[pattern];
    resp_subs *o = own_of(rc, pattern);
    if (argc == 1) { /* all of them; one reply with a null name when there are none */
        if (o->n == 0) {
            reply_sub(w, kind, NULL, 0, true, count_of(rc, pattern));
            return;
        }
        while (o->n) {
            td_slice name = o->v[o->n - 1];
            pthread_mutex_lock(&ps->mu);
            del(ps, rc, pattern, name.p, name.n);
            pthread_mutex_unlock(&ps->mu);
            o->n--;
            shown(rc);
            reply_sub(w, kind, name.p, name.n, false, count_of(rc, pattern));
            free((void *)name.p);
        }
        return;
    }
    for (size_t i = 1; i < argc; i++) {
        pthread_mutex_lock(&ps->mu);
        bool was = del(ps, rc, pattern, argv[i].p, argv[i].n);
        pthread_mutex_unlock(&ps->mu);
        if (was)
            own_del(rc, pattern, argv[i].p, argv[i].n);
        shown(rc);
        reply_sub(w, kind, argv[i].p, argv[i].n, false, count_of(rc, pattern));
    }
}

void resp_cmd_subscribe(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    subscribe(rc, w, argc, argv, false);
}

void resp_cmd_psubscribe(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    subscribe(rc, w, argc, argv, true);
}

void resp_cmd_unsubscribe(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    unsubscribe(rc, w, argc, argv, false);
}

void resp_cmd_punsubscribe(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    unsubscribe(rc, w, argc, argv, true);
}

void resp_pubsub_forget(rconn *rc)
{
    resp_pubsub *ps = rc->s->pubsub;
    for (int pattern = 0; pattern < 3; pattern++) {
        resp_subs *o = own_of(rc, pattern);
        pthread_mutex_lock(&ps->mu);
        for (size_t i = 0; i < o->n; i++)
            del(ps, rc, pattern, o->v[i].p, o->v[i].n);
        pthread_mutex_unlock(&ps->mu);
        for (size_t i = 0; i < o->n; i++)
            free((void *)o->v[i].p);
        free(o->v);
        memset(o, 0, sizeof(*o));
    }
    shown(rc);
}

/* ---------------------------------------------------------------------------------------------
 * PUBLISH
 */
typedef struct delivery {
    resp_pubsub *ps;
    net_conn *c;
    bool shard;              /* an smessage */
    size_t plen, clen, mlen; /* pattern (0: a channel message), channel, message */
    char data[];             /* pattern, channel, message */
} delivery;

/* Sends the messages written since the flush was posted: one write for all the messages
 * delivered in one run of the loop's tasks, not one per message. */
static void flush_task(void *arg)
{
    net_conn *c = arg;
    rconn *rc = net_conn_closed(c) ? NULL : net_conn_data(c);
    if (rc) {
        rc->pub_flush_posted = false;
        net_conn_flush(c);
    }
    net_conn_unref(c);
}

static void deliver_task(void *arg)
{
    delivery *d = arg;
    net_conn *c = d->c;
    rconn *rc = net_conn_closed(c) ? NULL : net_conn_data(c);
    if (rc) {
        td_buf b;
        td_buf_init(&b);
        resp_w w = {&b, rc->proto, false};
        resp_w_push(&w, d->plen ? 4 : 3);
        resp_w_str(&w, d->plen ? "pmessage" : d->shard ? "smessage" : "message");
        if (d->plen)
            resp_w_bulk(&w, d->data, d->plen);
        resp_w_bulk(&w, d->data + d->plen, d->clen);
        resp_w_bulk(&w, d->data + d->plen + d->clen, d->mlen);
        if (w.oom || net_conn_write(c, b.p, b.len) != 0) {
            net_conn_close(c, true);
        } else if (net_conn_out_bytes(c) > PUBSUB_OUT_LIMIT) {
            TD_WARN("redis", "closing subscriber %s: %zu bytes of messages unread (limit %u)",
                    rc->addr, net_conn_out_bytes(c), PUBSUB_OUT_LIMIT);
            net_conn_close(c, true);
        } else if (!rc->pub_flush_posted) {
            net_conn_ref(c);
            if (net_loop_post(net_conn_loop(c), flush_task, c) == 0) {
                rc->pub_flush_posted = true;
            } else {
                net_conn_unref(c);
                net_conn_flush(c);
            }
        }
        td_buf_free(&b);
    }
    net_conn_unref(c);
    __atomic_sub_fetch(&d->ps->inflight, 1, __ATOMIC_RELAXED);
    free(d);
}

int64_t resp_pubsub_inflight(resp_pubsub *ps)
{
    return __atomic_load_n(&ps->inflight, __ATOMIC_RELAXED);
}

static bool post(resp_pubsub *ps, net_conn *c, td_slice pattern, td_slice channel, td_slice msg,
                 bool shard)
{
    delivery *d = malloc(sizeof(*d) + pattern.n + channel.n + msg.n);
    if (!d)
        return false;
    d->ps = ps;
    d->c = c;
    d->shard = shard;
    d->plen = pattern.n;
    d->clen = channel.n;
    d->mlen = msg.n;
    if (pattern.n)
        memcpy(d->data, pattern.p, pattern.n);
    memcpy(d->data + pattern.n, channel.p, channel.n);
    if (msg.n)
        memcpy(d->data + pattern.n + channel.n, msg.p, msg.n);
    net_conn_ref(c);
    __atomic_add_fetch(&ps->inflight, 1, __ATOMIC_RELAXED);
    if (net_loop_post(net_conn_loop(c), deliver_task, d) != 0) {
        __atomic_sub_fetch(&ps->inflight, 1, __ATOMIC_RELAXED);
        net_conn_unref(c);
        free(d);
        return false;
    }
    return true;
}

int64_t resp_pubsub_publish(resp_pubsub *ps, td_slice ch, td_slice msg)
{
    int64_t n = 0;
    if (!resp_pubsub_any(ps))
        return 0;
    pthread_mutex_lock(&ps->mu);
    for (psub *s = *list_of(ps, KIND_CHANNEL, ch.p, ch.n); s; s = s->next)
        if (s->len == ch.n && !memcmp(s->name, ch.p, ch.n))
            n += post(ps, s->c, td_slice_make(NULL, 0), ch, msg, false);
    for (psub *s = ps->patterns; s; s = s->next)
        if (resp_glob_match(s->name, s->len, (const char *)ch.p, ch.n, false))
            n += post(ps, s->c, td_slice_make(s->name, s->len), ch, msg, false);
    pthread_mutex_unlock(&ps->mu);
    return n;
}

void resp_cmd_publish(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)argc;
    resp_w_int(w, resp_pubsub_publish(rc->s->pubsub, argv[1], argv[2]));
}

/* SPUBLISH shardchannel message: to SSUBSCRIBE's subscribers of the channel only. */
void resp_cmd_spublish(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)argc;
    resp_pubsub *ps = rc->s->pubsub;
    int64_t n = 0;
    td_slice ch = argv[1], msg = argv[2];
    pthread_mutex_lock(&ps->mu);
    for (psub *s = *list_of(ps, KIND_SHARD, ch.p, ch.n); s; s = s->next)
        if (s->len == ch.n && !memcmp(s->name, ch.p, ch.n))
            n += post(ps, s->c, td_slice_make(NULL, 0), ch, msg, true);
    pthread_mutex_unlock(&ps->mu);
    resp_w_int(w, n);
}

void resp_cmd_ssubscribe(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    if (rc->in_exec) { /* Redis: a client that expects one reply per command */
        resp_w_error(w, "ERR SSUBSCRIBE isn't allowed for a DENY BLOCKING client");
        return;
    }
    subscribe(rc, w, argc, argv, KIND_SHARD);
}

void resp_cmd_sunsubscribe(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    unsubscribe(rc, w, argc, argv, KIND_SHARD);
}

/* PUBSUB CHANNELS [pattern] (SHARDCHANNELS: of the sharded ones): the channels with at least
 * one subscriber. */
static void channels(rconn *rc, resp_w *w, size_t argc, const td_slice *argv, int kind)
{
    resp_pubsub *ps = rc->s->pubsub;
    psub **buckets = kind == KIND_SHARD ? ps->sbuckets : ps->buckets;
    td_buf items; /* the bulks, written under the lock; the array's count known after it */
    td_buf_init(&items);
    resp_w iw = {&items, w->proto, false};
    size_t n = 0;
    pthread_mutex_lock(&ps->mu);
    for (size_t i = 0; i < NBUCKETS; i++)
        for (psub *s = buckets[i]; s; s = s->next) {
            if (argc == 3 &&
                !resp_glob_match((const char *)argv[2].p, argv[2].n, s->name, s->len, false))
                continue;
            if (first_of_name(buckets[i], s)) {
                resp_w_bulk(&iw, s->name, s->len);
                n++;
            }
        }
    pthread_mutex_unlock(&ps->mu);
    resp_w_array(w, n);
    if (iw.oom || (items.len && td_buf_append(w->b, items.p, items.len) != 0))
        w->oom = true;
    td_buf_free(&items);
}

void resp_pubsub_channels(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    channels(rc, w, argc, argv, KIND_CHANNEL);
}

void resp_pubsub_shardchannels(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    channels(rc, w, argc, argv, KIND_SHARD);
}

static void numsub(rconn *rc, resp_w *w, size_t argc, const td_slice *argv, int kind)
{
    resp_pubsub *ps = rc->s->pubsub;
    resp_w_map(w, argc - 2);
    for (size_t i = 2; i < argc; i++) {
        int64_t n = 0;
        pthread_mutex_lock(&ps->mu);
        for (psub *s = *list_of(ps, kind, argv[i].p, argv[i].n); s; s = s->next)
            n += s->len == argv[i].n && !memcmp(s->name, argv[i].p, argv[i].n);
        pthread_mutex_unlock(&ps->mu);
        resp_w_bulk(w, argv[i].p, argv[i].n);
        resp_w_int(w, n);
    }
}

void resp_pubsub_numsub(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    numsub(rc, w, argc, argv, KIND_CHANNEL);
}

void resp_pubsub_shardnumsub(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    numsub(rc, w, argc, argv, KIND_SHARD);
}

void resp_pubsub_numpat(rconn *rc, resp_w *w, size_t argc, const td_slice *argv)
{
    (void)argc;
    (void)argv;
    size_t channels, patterns;
    resp_pubsub_counts(rc->s, &channels, &patterns);
    resp_w_int(w, (int64_t)patterns);
}

void resp_pubsub_counts(resp_server *s, size_t *channels, size_t *patterns)
{
    resp_pubsub *ps = s->pubsub;
    size_t nc = 0, np = 0;
    pthread_mutex_lock(&ps->mu);
    for (size_t i = 0; i < NBUCKETS; i++)
        for (psub *x = ps->buckets[i]; x; x = x->next) {
            nc += first_of_name(ps->buckets[i], x);
        }
    for (psub *x = ps->patterns; x; x = x->next) {
        np += first_of_name(ps->patterns, x);
    }
    pthread_mutex_unlock(&ps->mu);
    *channels = nc;
    *patterns = np;
}

size_t resp_pubsub_shard_channels(resp_server *s)
{
    resp_pubsub *ps = s->pubsub;
    size_t n = 0;
    pthread_mutex_lock(&ps->mu);
    for (size_t i = 0; i < NBUCKETS; i++)
        for (psub *x = ps->sbuckets[i]; x; x = x->next)
            n += first_of_name(ps->sbuckets[i], x);
    pthread_mutex_unlock(&ps->mu);
    return n;
}
