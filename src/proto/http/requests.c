/*
 * requests.c: request/reply over HTTP (docs/http-api.md#request-reply). POST
 * /v1/topics/{topic}/requests publishes one event with the headers `reply-to` (the reply topic)
 * and `correlation-id` (a new random id), and waits, bounded, for the event on the reply topic
 * that carries the same correlation id: as a `correlation-id` header (a Kafka or HTTP
 * service), or as a member of its JSON object value (a Redis service's `XADD <reply-to> *
 * correlation-id <id> ...`). 200 with the reply, or 504 when none came in time.
 *
 * Matching without scanning: one reader per reply topic is shared by every request waiting on
 * it (the hub, under its mutex). Its cursors start at the reply topic's end when its first
 * request registers (before that request is published, so no reply can precede them), and each
 * wake-up reads what was appended since, once, looking each event's correlation id up in a
 * hash table of the waiting requests. A reply costs one read and one lookup however many
 * requests wait; memory is bounded by the waiting requests (REQ_MAX_WAITING) and the readers
 * of their topics. A request is parked in the server's `waits` (woken by the log's advance
 * hook); a match for a request of another loop wakes the set again so that its loop retries.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "proto/http/http_int.h"

#define REQ_MAX_WAITING 10000
#define REQ_DEFAULT_TIMEOUT_MS 30000
#define REQ_MAX_TIMEOUT_MS 300000
#define REQ_BUCKETS 1024
#define CORR_LEN 32 /* hex digits of the 16 random bytes */

typedef struct rreader {
    char topic[TD_TOPIC_NAME_MAX + 1];
    int32_t nparts;
    td_iter **it; /* per partition, at what was read */
    size_t waiting;
    struct rreader *next;
} rreader;

struct rwait {
    net_waiter wait;
    net_conn *c;
    http_server *s;
    rreader *rr;
    char corr[CORR_LEN + 1];
    struct rwait *hnext; /* in the hub's bucket */
    json_t *reply;       /* the reply event, once matched */
    int32_t partition;   /* the request's */
    int64_t offset;
    int64_t timeout_ms;
};

struct http_replies {
    pthread_mutex_t mu;
    rreader *readers;
    struct rwait *table[REQ_BUCKETS];
    size_t n;
};

int http_replies_new(http_replies **out)
{
    http_replies *h = calloc(1, sizeof(*h));
    if (!h)
        return -ENOMEM;
    pthread_mutex_init(&h->mu, NULL);
    *out = h;
    return 0;
}

void http_replies_free(http_replies *h)
{
    if (!h)
        return;
    pthread_mutex_destroy(&h->mu);
    free(h);
}

static size_t bucket_of(const char *corr)
{
    return (size_t)(td_hash64(corr, strlen(corr)) % REQ_BUCKETS);
}

static void reader_free(rreader *r)
{
    for (int32_t p = 0; r->it && p < r->nparts; p++)
        td_iter_close(r->it[p]);
    free(r->it);
    free(r);
}

/* The reader of topic (made at the topic's end when missing). Under the hub's mutex. */
static int reader_get(http_replies *h, td_engine *e, const char *topic, rreader **out)
{
    for (rreader *r = h->readers; r; r = r->next)
        if (!strcmp(r->topic, topic)) {
            *out = r;
            return 0;
        }
    td_topic_info info;
    int rc = td_topic_describe(e, topic, &info);
    if (rc)
        return rc;
    rreader *r = calloc(1, sizeof(*r));
    if (!r || !(r->it = calloc((size_t)info.partitions, sizeof(*r->it)))) {
        free(r);
        return -ENOMEM;
    }
    snprintf(r->topic, sizeof(r->topic), "%s", topic);
    r->nparts = info.partitions;
    for (int32_t p = 0; p < r->nparts && rc == 0; p++) {
        int64_t end;
        rc = td_offset_for(e, topic, p, TD_OFFSET_LATEST, &end);
        if (rc == 0)
            rc = td_iter_open(e, topic, p, end, &r->it[p]);
    }
    if (rc) {
        reader_free(r);
        return rc;
    }
    r->next = h->readers;
    h->readers = r;
    *out = r;
    return 0;
}

/* The correlation id an event carries (a header, else a member of its JSON object value). */
static bool corr_of(const td_event *ev, char *out, size_t len)
{
    for (size_t i = 0; i < ev->header_count; i++) {
        const td_header *hd = &ev->headers[i];
        if (hd->key_len == 14 && !memcmp(hd->key, "correlation-id", 14) && hd->value &&
            hd->value_len < len) {
            memcpy(out, hd->value, hd->value_len);
            out[hd->value_len] = 0;
            return true;
        }
    }
    const char *v = ev->value;
    size_t n = ev->value_len, i = 0;
    while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == '\n' || v[i] == '\r'))
        i++;
    if (!v || i == n || v[i] != '{' || !memmem(v, n, "correlation-id", 14))
        return false;
    json_t *o = json_loadb(v, n, 0, NULL);
    const char *s = json_string_value(json_object_get(o, "correlation-id"));
    bool ok = s && strlen(s) < len;
    if (ok)
        snprintf(out, len, "%s", s);
    json_decref(o);
    return ok;
}

/* Reads what the readers have not read yet, matching replies to the waiting requests. True
 * when a request was matched. Under the hub's mutex. */
static bool hub_poll(http_replies *h, td_engine *e)
{
    bool matched = false;
    for (rreader *r = h->readers; r; r = r->next) {
        for (int32_t p = 0; p < r->nparts; p++) {
            td_event ev;
            int rc;
            /* Bounded by what was appended since the last poll. */
            while ((rc = td_iter_next(r->it[p], &ev)) == 1) {
                char corr[CORR_LEN + 1];
                if (!corr_of(&ev, corr, sizeof(corr)))
                    continue;
                for (struct rwait *w = h->table[bucket_of(corr)]; w; w = w->hnext)
                    if (w->rr == r && !w->reply && !strcmp(w->corr, corr)) {
                        w->reply = http_event_json(e, r->topic, &ev, true);
                        matched |= w->reply != NULL;
                        break;
                    }
            }
            if (rc < 0)
                td_error_clear(); /* a corrupt reply partition: its requests time out */
        }
    }
    return matched;
}

/* Takes w out of the hub (and its reader, when it was the last to wait on it). */
static void hub_remove(http_replies *h, struct rwait *w)
{
    pthread_mutex_lock(&h->mu);
    struct rwait **pp = &h->table[bucket_of(w->corr)];
    while (*pp && *pp != w)
        pp = &(*pp)->hnext;
    if (*pp) {
        *pp = w->hnext;
        h->n--;
        if (--w->rr->waiting == 0) {
            rreader **rp = &h->readers;
            while (*rp != w->rr)
                rp = &(*rp)->next;
            *rp = w->rr->next;
            reader_free(w->rr);
        }
    }
    pthread_mutex_unlock(&h->mu);
}

static void rwait_free(struct rwait *w)
{
    hub_remove(w->s->replies, w);
    json_decref(w->reply);
    free(w);
}

/* Polls the hub; w's reply (NULL: none yet), read under the hub's mutex, since another loop's
 * poll may set it. */
static json_t *poll_for(http_server *s, struct rwait *w)
{
    pthread_mutex_lock(&s->replies->mu);
    bool matched = hub_poll(s->replies, s->e);
    json_t *reply = w->reply;
    pthread_mutex_unlock(&s->replies->mu);
    if (matched)
        net_wait_wake(s->waits); /* a request of another loop may be answered */
    return reply;
}

/* Answers a matched request (200) or, when final, an unanswered one (504). */
static bool answer(hconn *hc, struct rwait *w, json_t *reply, bool final)
{
    if (!reply && !final)
        return false;
    if (reply) {
        json_t *o =
            json_pack("{s:s,s:{s:i,s:I},s:O}", "correlation_id", w->corr, "request", "partition",
                      w->partition, "offset", (json_int_t)w->offset, "reply", reply);
        http_respond_json(hc, 200, o, NULL);
        return true;
    }
    char msg[TD_TOPIC_NAME_MAX + 160];
    snprintf(msg, sizeof(msg), "no reply on topic %s with correlation-id %s within %" PRId64 " ms",
             w->rr->topic, w->corr, w->timeout_ms);
    http_respond_error(hc, 504, "timeout", msg);
    return true;
}

/* On the loop (net_wait_fn). */
static bool retry(net_waiter *nw, bool final)
{
    struct rwait *w = (struct rwait *)((char *)nw - offsetof(struct rwait, wait));
    hconn *hc = net_conn_data(w->c); /* open: a closing connection cancels its waiters */
    if (!answer(hc, w, poll_for(w->s, w), final))
        return false;
    hc->rwait = NULL;
    net_wait_cancel(nw);
    http_finish_async(hc);
    rwait_free(w);
    return true;
}

void http_request_wait_close(hconn *hc)
{
    struct rwait *w = hc->rwait;
    if (!w)
        return;
    hc->rwait = NULL;
    net_wait_cancel(&w->wait);
    rwait_free(w);
}

/* Reads reply_to and timeout_ms out of the body (removing them, so that what is left is the
 * event). False after answering. */
static bool read_options(hconn *hc, json_t *b, const char *topic, char *reply_to, size_t len,
                         int64_t *timeout_ms)
{
    json_t *rt = json_object_get(b, "reply_to"), *to = json_object_get(b, "timeout_ms");
    if (rt && (!json_is_string(rt) || td_topic_name_validate(json_string_value(rt)) != 0)) {
        td_error_clear();
        http_respond_error(hc, 400, "invalid_argument", "'reply_to' must be a topic name");
        return false;
    }
    if (to && (!json_is_integer(to) || json_integer_value(to) < 1 ||
               json_integer_value(to) > REQ_MAX_TIMEOUT_MS)) {
        http_respond_error(hc, 400, "invalid_argument",
                           "'timeout_ms' must be 1 to 300000 (5 minutes)");
        return false;
    }
    int n = rt ? snprintf(reply_to, len, "%s", json_string_value(rt))
               : snprintf(reply_to, len, "%s.replies", topic);
    if (n < 0 || (size_t)n >= len) {
        http_respond_error(hc, 400, "invalid_argument",
                           "<topic>.replies is too long a topic name: give 'reply_to'");
        return false;
    }
    *timeout_ms = to ? json_integer_value(to) : REQ_DEFAULT_TIMEOUT_MS;
    json_object_del(b, "reply_to");
    json_object_del(b, "timeout_ms");
    return true;
}

/* Registers w in the hub under a new correlation id. False after answering. */
static bool hub_add(hconn *hc, struct rwait *w, const char *reply_to)
{
    http_replies *h = hc->s->replies;
    uint8_t id[CORR_LEN / 2];
    td_random_id(id, sizeof(id));
    for (size_t i = 0; i < sizeof(id); i++)
        snprintf(w->corr + 2 * i, 3, "%02x", id[i]);
    pthread_mutex_lock(&h->mu);
    int rc = h->n >= REQ_MAX_WAITING ? TD_EFULL : reader_get(h, hc->s->e, reply_to, &w->rr);
    if (rc == 0) {
        size_t b = bucket_of(w->corr);
        w->hnext = h->table[b];
        h->table[b] = w;
        h->n++;
        w->rr->waiting++;
    }
    pthread_mutex_unlock(&h->mu);
    if (rc == TD_EFULL)
        http_respond_error(hc, 503, "busy", "too many requests are waiting for replies (10000)");
    else if (rc == TD_ENOTFOUND)
        http_respond_error(hc, 404, "not_found",
                           "the reply topic does not exist: create it, or give 'reply_to'");
    else if (rc)
        http_respond_td_error(hc, rc);
    return rc == 0;
}

/* Publishes the request event with its two headers; false after answering. */
static bool publish(hconn *hc, struct rwait *w, const char *topic, td_arena *a, td_event *ev,
                    const char *reply_to)
{
    td_header *hs = td_arena_calloc(a, ev->header_count + 2, sizeof(*hs));
    if (!hs) {
        http_respond_error(hc, 500, "internal", "out of memory");
        return false;
    }
    if (ev->header_count)
        memcpy(hs, ev->headers, ev->header_count * sizeof(*hs));
    hs[ev->header_count] = (td_header){"reply-to", 8, reply_to, strlen(reply_to)};
    hs[ev->header_count + 1] = (td_header){"correlation-id", 14, w->corr, CORR_LEN};
    ev->headers = hs;
    ev->header_count += 2;
    td_topic_ref *ref;
    int rc = broker_topic_acquire(hc->s->e, topic, &ref);
    if (rc) {
        http_respond_td_error(hc, rc);
        return false;
    }
    int32_t nparts = broker_topic_partitions(ref);
    int64_t *ends = malloc((size_t)nparts * sizeof(*ends));
    td_produce_result res = {-1, -1};
    rc = ends ? broker_produce_nowait(ref, ev, 1, &res, ends) : -ENOMEM;
    for (int32_t p = 0; ends && p < nparts; p++)
        if (ends[p] >= 0)
            broker_when_durable(ref, p, ends[p], NULL, NULL); /* the reply is what is waited */
    free(ends);
    broker_topic_release(ref);
    if (rc) {
        http_respond_td_error(hc, rc);
        return false;
    }
    w->partition = res.partition;
    w->offset = res.offset;
    return true;
}

void http_route_requests(hconn *hc, const char *topic)
{
    if (!http_method_is(hc, "POST"))
        return http_respond_method_not_allowed(hc, "POST");
    json_t *b = http_body_json(hc, true);
    if (!b)
        return;
    char reply_to[TD_TOPIC_NAME_MAX + 1];
    int64_t timeout_ms;
    td_arena a;
    td_arena_init(&a);
    td_event ev;
    bool json_value;
    struct rwait *w = NULL;
    if (!read_options(hc, b, topic, reply_to, sizeof(reply_to), &timeout_ms) ||
        !http_read_event(hc, &a, b, &ev, &json_value, 0))
        goto out;
    if (!http_require(hc, TD_RES_TOPIC, reply_to, TD_OP_READ))
        goto out;
    if (!(w = calloc(1, sizeof(*w)))) {
        http_respond_error(hc, 500, "internal", "out of memory");
        goto out;
    }
    w->c = hc->c;
    w->s = hc->s;
    w->timeout_ms = timeout_ms;
    net_waiter_init(&w->wait, retry);
    /* Registered before it is published: the reader's cursors are before any reply. */
    if (!hub_add(hc, w, reply_to)) {
        free(w);
        w = NULL;
        goto out;
    }
    if (!publish(hc, w, topic, &a, &ev, reply_to) ||
        net_wait_park(hc->s->waits, &w->wait, hc->c, timeout_ms, 0) != 0) {
        if (!hc->responded)
            http_respond_error(hc, 500, "internal", "out of memory");
        rwait_free(w);
        goto out;
    }
    /* A reply between the publication and the parking woke nobody: once more. */
    json_t *reply = poll_for(hc->s, w);
    if (reply) {
        net_wait_cancel(&w->wait);
        answer(hc, w, reply, false);
        rwait_free(w);
        goto out;
    }
    hc->rwait = w;
    http_begin_async(hc);
out:
    td_arena_free(&a);
    json_decref(b);
}
