/*
 * subscribe.c: live subscriptions with Server-Sent Events (docs/http-api.md):
 * GET /v1/subscribe?topics=orders.*,billing.#&from=latest|earliest|<time>, committed events
 * unless &isolation=read_uncommitted (docs/http-api.md#transactions).
 *
 * A subscription is a set of partitions, each with the next offset to deliver, read through the
 * engine's iterators on the connection's loop. Every event goes out as
 *
 *     id: orders/0/17;orders:0=18,1=5;billing.eu:0=3
 *     data: {"topic": "orders", "partition": 0, "offset": 17, ...}
 *
 * where the id is the event's coordinates followed by the cursor: the next offset of every
 * partition the subscription reads, once this event is delivered. A browser's EventSource sends
 * the last id it received as Last-Event-ID when it reconnects, and the subscription resumes from
 * that cursor exactly: nothing lost, nothing twice, also after a broker restart (the cursor lives
 * in the client). Partitions absent from the cursor (topics created since) start at their
 * beginning. The first event of every stream (`event: subscribed`) carries the starting cursor
 * as its id, so that a client reconnecting before any data still resumes where it began.
 *
 * Waking up: a subscription is parked in the server's `subs` (net_wait_park) for as long as it
 * lives; every partition's high-watermark hook wakes the loops that have subscriptions (one
 * coalesced task each), and each loop pumps them. A subscription reads only while the connection's
 * queued output is under the listener's output limit (4 MiB) and resumes when it drains, so a
 * slow reader costs at most that much memory; one that stays at the limit for
 * http.sse.stall.timeout.ms gets a final `event: error` and is disconnected. A tick timer sends
 * heartbeat comments on idle streams, looks for new topics that match (the engine's topic
 * generation), and watches for stalls.
 *
 * Following one key (docs/http-api.md#follow-a-keys-events): GET /v1/topics/{t}/keys/{key}/events
 * with Accept: text/event-stream is a subscription to the key's partition whose iterator is the
 * key's (td_iter_open_key): each wake-up asks the partition's key index for the key's offsets
 * after the last one delivered, below the last stable offset (the high watermark for
 * read_uncommitted), and reads only the batches holding them. Once caught up, the next offset
 * moves to that end as seen before the lookup, so
 * that the index is asked only about what was appended since. Ids, cursors, Last-Event-ID,
 * heartbeats and limits are the subscription's.
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/authz.h"
#include "broker/pattern.h"
#include "proto/http/http_int.h"

#define MAX_PATTERNS 32
#define MAX_PARTITIONS 10000
#define PUMP_EVENTS 512   /* events per turn before yielding the loop to other connections */
#define TICK_MS 250
#define CHUNK_BYTES (64u << 10) /* events are queued in writes of about this much, at most */
#define END_GRACE_MS 5000       /* an ending stream is closed when its client reads nothing... */
#define END_MAX_MS 60000        /* ...for this long, or after this long in any case */

typedef struct spart {
    char topic[TD_TOPIC_NAME_MAX + 1];
    int32_t partition;
    int64_t next;     /* the next offset to deliver */
    int64_t topic_id; /* which topic of that name (broker_topic_id; a new one after a delete) */
    td_iter *it;      /* open at next, or NULL */
    bool gone;    /* the topic was deleted */
} spart;

struct http_sub {
    net_conn *c;
    http_server *s;
    net_waiter wait; /* parked in the server's subs while it lives */
    char *patterns[MAX_PATTERNS];
    size_t npat;
    spart *parts; /* sorted by topic, partition */
    size_t n, cap;
    size_t rr;    /* where the next pump starts (fairness between partitions) */
    uint64_t gen; /* the topic generation last matched */
    net_timer tick;
    int64_t last_write_ms, stalled_since_ms;
    bool chunked;
    bool pump_posted;
    bool values_json;    /* ?values=json (the default) or string */
    int isolation;       /* ?isolation=: TD_READ_COMMITTED (the default) or TD_READ_UNCOMMITTED */
    bool ending;         /* the final error was queued; the close is on its way */
    int64_t end_deadline; /* then: when to stop waiting for it to drain */
    int64_t end_last;     /* the latest end_deadline can move to */
    size_t end_out;       /* the output still queued at the last tick */
    /* Who subscribed (checked when it started, like a Kafka connection's principal): topics
     * found later are read only if it may Read them. user NULL: anonymous. */
    char *user;
    char host[64];
    /* Past a quota (quota.c): nothing is pumped before quota_until, when quota_timer pumps. */
    int64_t quota_until;
    net_timer quota_timer;
    /* Following one key: its bytes (by_key), read through the key index. */
    uint8_t *key;
    size_t key_len;
    bool by_key;
};

/* ---------------------------------------------------------------------------------------------
 * Cursors: "topic:p=off,p=off;topic:p=off", optionally after "topic/p/off;" (the event's own
 * coordinates), or "-" for none. A topic name may hold ':', '=' and ';' (docs/redis.md#keys-
 * and-topics) but never ',' or '/': in a cursor a name is written with its '%' as %25 and its
 * ';' as %3B, so that ';' ends a topic's part, and the topic ends at that part's last ':' (the
 * partition list after it holds none). Names of Kafka's old alphabet are written unchanged.
 */
/* A topic name as a cursor writes it, into out (3 * TD_TOPIC_NAME_MAX + 1 bytes): the length. */
static size_t cursor_name_esc(const char *name, char *out)
{
    size_t o = 0;
    for (const char *c = name; *c; c++) {
        const char *e = *c == '%' ? "%25" : *c == ';' ? "%3B" : NULL;
        if (e) {
            memcpy(out + o, e, 3);
            o += 3;
        } else {
            out[o++] = *c;
        }
    }
    out[o] = 0;
    return o;
}

static int cursor_name_put(td_buf *out, const char *name)
{
    char esc[3 * TD_TOPIC_NAME_MAX + 1];
    return td_buf_append(out, esc, cursor_name_esc(name, esc));
}

/* The topic name a cursor writes as s (n bytes) into name; false if it is not a valid name. */
static bool cursor_name_get(const char *s, size_t n, char name[TD_TOPIC_NAME_MAX + 1])
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            if (n - i >= 3 && !memcmp(s + i, "%25", 3))
                c = '%';
            else if (n - i >= 3 && !memcmp(s + i, "%3B", 3))
                c = ';';
            else
                return false;
            i += 2;
        }
        if (o == TD_TOPIC_NAME_MAX)
            return false;
        name[o++] = c;
    }
    name[o] = 0;
    const char *why;
    size_t at;
    return td_name_check(name, o, &why, &at) == 0;
}

static bool parse_i64(const char **p, const char *end, int64_t max, int64_t *out)
{
    const char *s = *p;
    int64_t v = 0;
    while (*p < end && **p >= '0' && **p <= '9') {
        if (v > (max - (**p - '0')) / 10)
            return false;
        v = v * 10 + (**p - '0');
        (*p)++;
    }
    *out = v;
    return *p > s;
}

int http_cursor_parse(const char *s, size_t n, http_cursor_fn fn, void *arg)
{
    const char *p = s, *end = s + n;
    if (n == 1 && *s == '-')
        return 0;
    /* The coordinates of the event, if present: skipped (the cursor says it all). */
    const char *semi = memchr(s, ';', n);
    const char *slash = memchr(s, '/', semi ? (size_t)(semi - s) : n);
    if (slash)
        p = semi ? semi + 1 : end;
    while (p < end) {
        const char *t = p, *part_end = memchr(p, ';', (size_t)(end - p));
        if (!part_end)
            part_end = end;
        const char *colon = NULL;
        for (const char *c = t; c < part_end; c++)
            if (*c == ':')
                colon = c;
        char name[TD_TOPIC_NAME_MAX + 1];
        if (!colon || !cursor_name_get(t, (size_t)(colon - t), name))
            return TD_EINVAL;
        size_t tn = (size_t)(colon - t);
        p = colon + 1;
        for (;;) {
            int64_t part, off;
            if (!parse_i64(&p, end, INT32_MAX, &part) || p == end || *p != '=')
                return TD_EINVAL;
            p++;
            if (!parse_i64(&p, end, INT64_MAX, &off))
                return TD_EINVAL;
            fn(arg, td_slice_make(t, tn), (int32_t)part, off);
            if (p < end && *p == ',') {
                p++;
                continue;
            }
            break;
        }
        if (p < end && *p != ';')
            return TD_EINVAL;
        if (p < end)
            p++;
    }
    return 0;
}

static int spart_cmp(const void *x, const void *y)
{
    const spart *a = x, *b = y;
    int c = strcmp(a->topic, b->topic);
    return c ? c : (a->partition > b->partition) - (a->partition < b->partition);
}

/* The cursor of the subscription into out (NUL-terminated). */
static int cursor_text(const http_sub *sub, td_buf *out)
{
    int rc = 0;
    const char *prev = NULL;
    for (size_t i = 0; i < sub->n && rc == 0; i++) {
        const spart *sp = &sub->parts[i];
        if (sp->gone)
            continue;
        char num[48];
        bool same = prev && !strcmp(prev, sp->topic);
        if (!same) {
            if (prev)
                rc = td_buf_append_u8(out, ';');
            if (!rc)
                rc = cursor_name_put(out, sp->topic);
            if (!rc)
                rc = td_buf_append_u8(out, ':');
        } else {
            rc = td_buf_append_u8(out, ',');
        }
        int len = snprintf(num, sizeof(num), "%" PRId32 "=%" PRId64, sp->partition, sp->next);
        if (!rc)
            rc = td_buf_append(out, num, (size_t)len);
        prev = sp->topic;
    }
    if (!rc && !prev)
        rc = td_buf_append_u8(out, '-');
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Wake-ups: the high-watermark hook
 */
static void sub_pump(http_sub *sub);

/* A wake-up (net_wait_fn): pumps. A subscription has no deadline, and stays parked until its
 * connection closes (which pumping may do). */
static bool sub_retry(net_waiter *w, bool final)
{
    (void)final;
    http_sub *sub = (http_sub *)((char *)w - offsetof(http_sub, wait));
    net_conn *c = sub->c; /* held by the waker */
    sub_pump(sub);
    return net_conn_closed(c);
}

/* Any thread, under a partition's lock. */
void http_sse_on_advance(void *arg)
{
    http_server *s = arg;
    net_wait_wake(s->subs);
    http_queues_wake(s); /* new events for waiting queue receives too */
}

/* ---------------------------------------------------------------------------------------------
 * Writing
 */
static void close_task(void *arg)
{
    net_conn *c = arg;
    if (!net_conn_closed(c))
        net_conn_close(c, false);
    net_conn_unref(c);
}

/* Closing frees the subscription, so it never happens under the caller's feet: a task closes
 * the connection once what was queued has gone out, and the tick closes it for good when the
 * client reads nothing for END_GRACE_MS (at once with `now`). */
static void sub_close_later(http_sub *sub, bool now)
{
    sub->ending = true;
    int64_t t = net_loop_now(net_conn_loop(sub->c));
    if (!sub->end_deadline || now) {
        sub->end_deadline = now ? t : t + END_GRACE_MS;
        sub->end_last = now ? t : t + END_MAX_MS;
        sub->end_out = net_conn_out_bytes(sub->c);
    }
    net_conn_ref(sub->c);
    if (net_loop_post(net_conn_loop(sub->c), close_task, sub->c) != 0)
        net_conn_unref(sub->c); /* the tick closes it */
}

/* Frames SSE text in place as one chunk of the chunked body (HTTP/1.1: its size line before,
 * CRLF after; HTTP/1.0 streams end with the connection and need nothing). 0 or -ENOMEM. */
static int sse_frame(http_sub *sub, td_buf *text)
{
    if (!sub->chunked || text->len == 0)
        return 0;
    char size[24];
    int n = snprintf(size, sizeof(size), "%zx\r\n", text->len);
    if (td_buf_reserve(text, (size_t)n + 2) != 0)
        return -ENOMEM;
    memmove(text->p + n, text->p, text->len);
    memcpy(text->p, size, (size_t)n);
    text->len += (size_t)n;
    return td_buf_append(text, "\r\n", 2);
}

/* Queues SSE text as one write (so that dropping unsent output drops whole chunks and whole
 * events: net_conn_drop_unsent). */
static void sse_write(http_sub *sub, td_buf *text)
{
    if (text->len == 0)
        return;
    if (sse_frame(sub, text) != 0) {
        sub_close_later(sub, true);
        return;
    }
    size_t len = text->len;
    net_conn_write_owned(sub->c, text->p, len, free);
    td_buf_init(text);
    sub->last_write_ms = net_loop_now(net_conn_loop(sub->c));
    int64_t t = http_quota_stream(sub->s, sub->user, len);
    if (t > 0)
        sub->quota_until = TD_MAX(sub->quota_until, sub->last_write_ms + t);
}

static void sse_flush(http_sub *sub, td_buf *text)
{
    sse_write(sub, text);
    td_buf_free(text);
    if (!net_conn_closed(sub->c))
        net_conn_flush(sub->c);
}

/*
 * A final `event: error` and the end of the stream. With drop (a subscriber that stopped
 * reading), the events queued but not yet begun to be sent are dropped first, so that the error
 * comes right after what is already on its way (in the socket buffers, and the rest of a
 * partly sent chunk) instead of after megabytes the client may never read; the client resumes
 * from the last event it got, and the dropped ones are read again then.
 */
static void sub_end(http_sub *sub, const char *code, const char *message, bool drop)
{
    if (sub->ending)
        return;
    TD_INFO("http", "%s: subscription ended: %s: %s", net_conn_peer(sub->c), code, message);
    size_t dropped = drop ? net_conn_drop_unsent(sub->c) : 0;
    if (dropped)
        TD_INFO("http", "%s: dropped %zu bytes of unsent events before the final error",
                net_conn_peer(sub->c), dropped);
    char clean[1024];
    json_t *e = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message",
                          http_utf8_clean(message, clean, sizeof(clean)));
    char *j = e ? http_json_dumps(e, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref(e);
    td_buf t;
    td_buf_init(&t);
    int rc = 0;
    if (j) {
        rc = td_buf_append(&t, "event: error\ndata: ", 19);
        if (!rc)
            rc = td_buf_append(&t, j, strlen(j));
        if (!rc)
            rc = td_buf_append(&t, "\n\n", 2);
        free(j);
    }
    /* The error and the end of the chunked body go out as one write. */
    if (!rc)
        rc = sse_frame(sub, &t);
    if (!rc && sub->chunked)
        rc = td_buf_append(&t, "0\r\n\r\n", 5);
    if (!rc && t.len) {
        /* Room in the socket itself for the rest of a partly sent chunk and the error: the
         * client gets them whenever it reads again, even after the grace period has closed
         * the connection. */
        size_t need = net_conn_out_bytes(sub->c) + t.len + (64u << 10); /* + the kernel's own */
        if (drop && net_conn_reserve_send(sub->c, need) != 0)
            TD_INFO("http",
                    "%s: no room in the socket for the final error: it waits for the "
                    "client to read",
                    net_conn_peer(sub->c));
        net_conn_write_owned(sub->c, t.p, t.len, free);
        td_buf_init(&t);
    }
    td_buf_free(&t);
    sub_close_later(sub, false); /* its task closes once the loop has sent what is queued */
    /* Into the socket now: poll calls a socket writable only once a third of its buffer is
     * free, which the room just made is not. This may close the connection (a write error),
     * which frees sub: the caller holds the connection and looks before going on. */
    if (drop)
        net_conn_flush(sub->c);
}

/* ---------------------------------------------------------------------------------------------
 * Partitions
 */
static bool sub_matches(const http_sub *sub, const char *topic)
{
    for (size_t i = 0; i < sub->npat; i++)
        if (td_pattern_match(sub->patterns[i], strlen(sub->patterns[i]), topic, strlen(topic)))
            return true;
    return false;
}

/* The partition among the first n (sorted) of the subscription, or NULL. */
static spart *sub_find(http_sub *sub, size_t n, const char *topic, int32_t partition)
{
    spart key;
    snprintf(key.topic, sizeof(key.topic), "%s", topic);
    key.partition = partition;
    return bsearch(&key, sub->parts, n, sizeof(*sub->parts), spart_cmp);
}

static int sub_add(http_sub *sub, const char *topic, int64_t topic_id, int32_t partition,
                   int64_t next)
{
    if (sub->n == MAX_PARTITIONS)
        return TD_EFULL;
    if (td_grow(&sub->parts, &sub->cap, sub->n, sizeof(*sub->parts), 16) != 0)
        return -ENOMEM;
    spart *sp = &sub->parts[sub->n++];
    memset(sp, 0, sizeof(*sp));
    snprintf(sp->topic, sizeof(sp->topic), "%s", topic);
    sp->partition = partition;
    sp->topic_id = topic_id;
    sp->next = next;
    return 0;
}

/* Drops the partitions of deleted topics. */
static void sub_compact(http_sub *sub)
{
    size_t k = 0;
    for (size_t i = 0; i < sub->n; i++) {
        if (sub->parts[i].gone) {
            td_iter_close(sub->parts[i].it);
            continue;
        }
        sub->parts[k++] = sub->parts[i];
    }
    sub->n = k;
    if (sub->rr >= sub->n)
        sub->rr = 0;
}

/* Where a partition starts: the offset the cursor gave, or by `from` (TD_OFFSET_EARLIEST,
 * TD_OFFSET_LATEST, or a time >= 0). The latest of a reader of committed data is the last
 * stable offset: an open transaction's events come once it commits. */
static int64_t start_offset(const http_sub *sub, const char *topic, int32_t p, int64_t from)
{
    int64_t off = 0;
    if (from == TD_OFFSET_LATEST && sub->isolation == TD_READ_COMMITTED)
        from = TD_OFFSET_LAST_STABLE;
    int rc = from >= 0 ? td_offset_for_time(sub->s->e, topic, p, from, &off)
                       : td_offset_for(sub->s->e, topic, p, from, &off);
    return rc ? 0 : off;
}

typedef struct cursor_ctx {
    http_sub *sub;
    td_slice *topics; /* parallel: topics, partitions, offsets */
    int32_t *parts;
    int64_t *offs;
    size_t n, cap;
    bool oom;
} cursor_ctx;

static void on_cursor(void *arg, td_slice topic, int32_t partition, int64_t offset)
{
    cursor_ctx *cc = arg;
    /* Three parallel arrays of one capacity: it grows once all three have grown (an array
     * left larger by a failure is only larger). */
    size_t ct = cc->cap, cp = cc->cap, co = cc->cap;
    if (td_grow(&cc->topics, &ct, cc->n, sizeof(*cc->topics), 16) != 0 ||
        td_grow(&cc->parts, &cp, cc->n, sizeof(*cc->parts), 16) != 0 ||
        td_grow(&cc->offs, &co, cc->n, sizeof(*cc->offs), 16) != 0) {
        cc->oom = true;
        return;
    }
    cc->cap = co;
    cc->topics[cc->n] = topic;
    cc->parts[cc->n] = partition;
    cc->offs[cc->n++] = offset;
}

/* The cursor's topics are as the cursor writes them (cursor_name_esc): compared so. */
static bool cursor_lookup(const cursor_ctx *cc, const char *topic, int32_t p, int64_t *off)
{
    char esc[3 * TD_TOPIC_NAME_MAX + 1];
    size_t tn = cursor_name_esc(topic, esc);
    for (size_t i = 0; cc && i < cc->n; i++)
        if (cc->parts[i] == p && cc->topics[i].n == tn && !memcmp(cc->topics[i].p, esc, tn)) {
            *off = cc->offs[i];
            return true;
        }
    return false;
}

/*
 * Adds the partitions of matching topics that the subscription does not read yet. At the start
 * they begin where the cursor says, or by `from`; topics found later (created since) begin at
 * their start. 0, or an error that ends the subscription.
 */
static int sub_discover(http_sub *sub, const cursor_ctx *cc, int64_t from)
{
    td_engine *e = sub->s->e;
    sub->gen = broker_topics_generation(e);
    td_topic_info *all = NULL;
    size_t n = 0;
    int rc = td_topic_list_all(e, &all, &n); /* the system topics too ("$sys.#") */
    if (rc)
        return rc;
    size_t before = sub->n;
    for (size_t i = 0; i < n && rc == 0; i++) {
        td_topic_ref *ref;
        if (all[i].internal || !sub_matches(sub, all[i].name) ||
            !broker_authorize(e, &(td_principal){sub->user, sub->host}, TD_RES_TOPIC, all[i].name,
                              TD_OP_READ) ||
            broker_topic_acquire(e, all[i].name, &ref) != 0)
            continue; /* not matching, not readable, or deleted since the list */
        int64_t id = broker_topic_id(ref);
        int32_t nparts = broker_topic_partitions(ref);
        broker_topic_release(ref);
        for (int32_t p = 0; p < nparts && rc == 0; p++) {
            spart *sp = before ? sub_find(sub, before, all[i].name, p) : NULL;
            if (sp && sp->topic_id == id)
                continue;
            if (sp) {
                /* Deleted and created again since: the new topic is read from its start. */
                td_iter_close(sp->it);
                sp->it = NULL;
                sp->gone = false;
                sp->topic_id = id;
                sp->next = start_offset(sub, all[i].name, p, TD_OFFSET_EARLIEST);
                continue;
            }
            int64_t off;
            if (!cursor_lookup(cc, all[i].name, p, &off))
                off = start_offset(sub, all[i].name, p, from);
            rc = sub_add(sub, all[i].name, id, p, off);
        }
    }
    free(all);
    if (sub->n != before)
        qsort(sub->parts, sub->n, sizeof(*sub->parts), spart_cmp);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Pumping events
 */
/* The quota allows sending again. */
static void quota_resume(void *arg)
{
    http_sub *sub = arg;
    net_conn *c = sub->c;
    net_conn_ref(c); /* pumping may close the connection, which frees sub */
    sub_pump(sub);
    net_conn_unref(c);
}

static void pump_task(void *arg)
{
    net_conn *c = arg;
    hconn *hc = net_conn_closed(c) ? NULL : net_conn_data(c);
    if (hc && hc->sub) {
        hc->sub->pump_posted = false;
        sub_pump(hc->sub);
    }
    net_conn_unref(c);
}

/* Appends one event as SSE text; false on allocation failure. */
static bool format_event(http_sub *sub, const spart *sp, const td_event *ev, td_buf *out)
{
    json_t *o = http_event_json(sub->s->e, sp->topic, ev, sub->values_json);
    if (!o)
        return false;
    char *j = http_json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!j)
        return false;
    char esc[3 * TD_TOPIC_NAME_MAX + 1], coords[3 * TD_TOPIC_NAME_MAX + 48];
    cursor_name_esc(sp->topic, esc);
    int cn = snprintf(coords, sizeof(coords), "id: %s/%" PRId32 "/%" PRId64 ";", esc, sp->partition,
                      ev->offset);
    int rc = td_buf_append(out, coords, (size_t)cn);
    if (!rc)
        rc = cursor_text(sub, out);
    if (!rc)
        rc = td_buf_append(out, "\ndata: ", 7);
    if (!rc)
        rc = td_buf_append(out, j, strlen(j));
    if (!rc)
        rc = td_buf_append(out, "\n\n", 2);
    free(j);
    return rc == 0;
}

/* Opens a partition's iterator at its next offset: false if the partition is left out for now
 * (deleted) or the subscription had to end. */
static bool sp_open(http_sub *sub, spart *sp)
{
    td_engine *e = sub->s->e;
    int rc = sub->by_key ? td_iter_open_key(e, sp->topic, sub->key, sub->key_len, sp->partition,
                                            sp->next, &sp->it)
                         : td_iter_open(e, sp->topic, sp->partition, sp->next, &sp->it);
    if (rc == TD_ERANGE && !sub->by_key) {
        /* Below the log start (retention deleted what the cursor pointed at): go on from the
         * start. Beyond the end (the topic was deleted and created again): from its start. */
        int64_t start = start_offset(sub, sp->topic, sp->partition, TD_OFFSET_EARLIEST);
        TD_INFO("http", "%s: subscription: %s/%" PRId32 " has no offset %" PRId64
                        "; going on from %" PRId64,
                net_conn_peer(sub->c), sp->topic, sp->partition, sp->next, start);
        sp->next = start;
        rc = td_iter_open(e, sp->topic, sp->partition, sp->next, &sp->it);
    }
    if (rc == 0 && (rc = td_iter_set_isolation(sp->it, sub->isolation)) != 0) {
        td_iter_close(sp->it);
        sp->it = NULL;
    }
    if (rc == TD_ENOTFOUND) {
        sp->gone = true;
        return false;
    }
    if (rc) {
        char msg[400];
        snprintf(msg, sizeof(msg), "cannot read %s/%" PRId32 ": %s", sp->topic, sp->partition,
                 td_last_error());
        sub_end(sub, "internal", msg, false);
        return false;
    }
    return true;
}

static void sub_pump(http_sub *sub)
{
    if (sub->ending || net_conn_closed(sub->c))
        return;
    net_loop *ql = net_conn_loop(sub->c);
    if (sub->quota_until > net_loop_now(ql)) {
        if (sub->quota_timer.heap_index == (size_t)-1)
            net_timer_start(ql, &sub->quota_timer, sub->quota_until - net_loop_now(ql),
                            quota_resume, sub);
        return;
    }
    if (sub->by_key) {
        sub->gen = broker_topics_generation(sub->s->e); /* one partition: nothing to discover */
    } else if (broker_topics_generation(sub->s->e) != sub->gen) {
        int rc = sub_discover(sub, NULL, TD_OFFSET_EARLIEST);
        if (rc == TD_EFULL)
            return sub_end(sub, "too_many_partitions",
                           "the patterns match more than 10000 partitions", false);
        if (rc)
            return sub_end(sub, "internal", td_strerror(rc), false);
    }
    size_t limit = HTTP_OUT_LIMIT;
    td_buf out;
    td_buf_init(&out);
    int budget = PUMP_EVENTS;
    bool gone = false, progress = true;
    /* A write past the quota (sse_write) stops the pump until quota_until. */
    while (budget > 0 && progress && sub->n > 0 && sub->quota_until <= net_loop_now(ql) &&
           net_conn_out_bytes(sub->c) + out.len < limit) {
        progress = false;
        for (size_t k = 0; k < sub->n && budget > 0; k++) {
            spart *sp = &sub->parts[(sub->rr + k) % sub->n];
            if (sp->gone || (!sp->it && !sp_open(sub, sp))) {
                gone |= sp->gone;
                if (sub->ending)
                    goto out;
                continue;
            }
            td_event ev;
            /* A key's: once the index names nothing more (the iterator's position did not
             * move: not a pause after skipping offsets), nothing of the key is left below the
             * end read before asking (the last stable offset, for committed events). Others:
             * on from the iterator's position, past the batches it skipped. */
            int64_t hw = -1, pos = sub->by_key ? td_iter_position(sp->it) : -1;
            if (sub->by_key &&
                td_offset_for(sub->s->e, sp->topic, sp->partition,
                              sub->isolation == TD_READ_COMMITTED ? TD_OFFSET_LAST_STABLE
                                                                  : TD_OFFSET_LATEST,
                              &hw) != 0)
                hw = -1;
            int rc = td_iter_next(sp->it, &ev);
            if (rc == 0 && (!sub->by_key || td_iter_position(sp->it) != pos))
                hw = td_iter_position(sp->it); /* went past skipped offsets: on from there */
            if (rc == 1) {
                sp->next = ev.offset + 1;
                if (!format_event(sub, sp, &ev, &out)) {
                    sub_end(sub, "internal", "out of memory", false);
                    goto out;
                }
                if (out.len >= CHUNK_BYTES) {
                    sse_write(sub, &out); /* whole events per write, for sub_end's drop */
                    if (sub->ending)
                        goto out;
                }
                budget--;
                progress = true;
            } else if (rc == 0) {
                /* Caught up: let go of the iterator's read buffer (up to 1 MiB) until more
                 * arrives, so that a subscription holds buffers only for partitions it is
                 * behind on. */
                td_iter_close(sp->it);
                sp->it = NULL;
                sp->next = TD_MAX(sp->next, hw);
            } else if (rc == TD_ENOTFOUND) {
                sp->gone = gone = true;
            } else if (rc == TD_ERANGE) {
                td_iter_close(sp->it); /* retention passed it: reopen at the log start */
                sp->it = NULL;
            } else if (rc < 0) {
                char msg[400];
                snprintf(msg, sizeof(msg), "cannot read %s/%" PRId32 ": %s", sp->topic,
                         sp->partition, td_last_error());
                sub_end(sub, "internal", msg, false);
                goto out;
            }
        }
        sub->rr = sub->n ? (sub->rr + 1) % sub->n : 0;
    }
    if (gone && sub->by_key) {
        sub_end(sub, "not_found", "the topic was deleted", false);
        goto out;
    }
    if (gone) {
        /* A deleted topic may already exist again: look again at the next tick. */
        sub_compact(sub);
        sub->gen = UINT64_MAX;
    }
    if (sub->quota_until > net_loop_now(ql) && sub->quota_timer.heap_index == (size_t)-1)
        net_timer_start(ql, &sub->quota_timer, sub->quota_until - net_loop_now(ql), quota_resume,
                        sub);
    /* Out of budget with more to read: yield to the loop's other connections, then go on. */
    if (budget == 0 && sub->quota_until <= net_loop_now(ql) && !sub->pump_posted && net_conn_out_bytes(sub->c) + out.len < limit) {
        net_conn_ref(sub->c);
        if (net_loop_post(net_conn_loop(sub->c), pump_task, sub->c) == 0)
            sub->pump_posted = true;
        else
            net_conn_unref(sub->c);
    }
out:
    if (sub->ending) {
        /* The final error (and the end of the chunked body) went out first: what this turn
         * read is dropped, and the client resumes before it. */
        td_buf_free(&out);
        return;
    }
    sse_flush(sub, &out);
}

/* Heartbeats, new topics, stalls. */
static void on_tick(void *arg)
{
    http_sub *sub = arg;
    net_conn *c = sub->c;
    net_loop *l = net_conn_loop(c);
    int64_t now = net_loop_now(l);
    const http_server_config *cfg = &sub->s->cfg;
    if (net_loop_stopping(l)) {
        /* The broker stops: end the stream (the client resumes with its Last-Event-ID). */
        if (sub->chunked)
            net_conn_write(c, "0\r\n\r\n", 5);
        net_conn_close(c, false); /* frees sub */
        return;
    }
    if (sub->ending) {
        /* The client has END_GRACE_MS to read what is left, renewed while it reads, up to
         * END_MAX_MS: a client that reads slowly still gets the final error. */
        size_t left = net_conn_out_bytes(c);
        if (left < sub->end_out)
            sub->end_deadline = TD_MIN(now + END_GRACE_MS, sub->end_last);
        sub->end_out = left;
        if (now >= sub->end_deadline)
            net_conn_close(c, true); /* frees sub */
        else
            net_timer_start(l, &sub->tick, TICK_MS, on_tick, sub);
        return;
    }
    if (net_conn_out_bytes(c) >= HTTP_OUT_LIMIT) {
        if (!sub->stalled_since_ms) {
            sub->stalled_since_ms = now;
        } else if (now - sub->stalled_since_ms >= cfg->sse_stall_timeout_ms) {
            char msg[200];
            snprintf(msg, sizeof(msg),
                     "the subscriber read nothing for %" PRId64 " ms while events were waiting",
                     now - sub->stalled_since_ms);
            net_conn_ref(c);
            sub_end(sub, "slow_consumer", msg, true);
            if (!net_conn_closed(c))
                net_timer_start(l, &sub->tick, TICK_MS, on_tick, sub);
            net_conn_unref(c);
            return;
        }
    } else {
        sub->stalled_since_ms = 0;
    }
    /* Pumping and writing may close the connection, which frees sub: hold the connection and
     * look at it before touching sub again. */
    net_conn_ref(c);
    if (broker_topics_generation(sub->s->e) != sub->gen)
        sub_pump(sub);
    if (!net_conn_closed(c) && !sub->ending && now - sub->last_write_ms >= cfg->sse_heartbeat_ms) {
        td_buf t;
        td_buf_init(&t);
        if (td_buf_append(&t, ": heartbeat\n\n", 13) == 0)
            sse_flush(sub, &t);
        else
            td_buf_free(&t);
    }
    if (!net_conn_closed(c))
        net_timer_start(l, &sub->tick, TICK_MS, on_tick, sub);
    net_conn_unref(c);
}

/* ---------------------------------------------------------------------------------------------
 * Life cycle
 */
static void sub_free(http_sub *sub)
{
    for (size_t i = 0; i < sub->n; i++)
        td_iter_close(sub->parts[i].it);
    free(sub->parts);
    free(sub->key);
    for (size_t i = 0; i < sub->npat; i++)
        free(sub->patterns[i]);
    free(sub->user);
    free(sub);
}

void http_sub_close(hconn *hc)
{
    http_sub *sub = hc->sub;
    if (!sub)
        return;
    hc->sub = NULL;
    net_timer_stop(net_conn_loop(sub->c), &sub->tick);
    net_timer_stop(net_conn_loop(sub->c), &sub->quota_timer);
    net_wait_cancel(&sub->wait);
    sub_free(sub);
}

void http_sub_drained(hconn *hc)
{
    if (hc->sub)
        sub_pump(hc->sub);
}

/* Whether p[0..n) names an existing topic: a topic name may have empty segments ("a..b" is a
 * valid Kafka name), which a pattern may not (see read_patterns), so such a name is taken as
 * the topic's own name when that topic exists. */
static bool existing_topic(td_engine *e, const char *p, size_t n)
{
    char name[256];
    if (n == 0 || n >= sizeof(name) || !td_pattern_is_literal(p, n))
        return false;
    memcpy(name, p, n);
    name[n] = 0;
    td_topic_ref *t;
    if (broker_topic_acquire(e, name, &t) != 0) {
        td_error_clear();
        return false;
    }
    broker_topic_release(t);
    return true;
}

/* Splits the topics parameter into patterns; false after answering 400. */
static bool read_patterns(hconn *hc, http_sub *sub, const char *list)
{
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        const char *why = NULL;
        char msg[600];
        if (sub->npat == MAX_PATTERNS) {
            http_respond_error(hc, 400, "invalid_pattern", "at most 32 patterns");
            return false;
        }
        if (td_pattern_validate(p, n, &why) != 0 && !existing_topic(hc->s->e, p, n)) {
            /* "orders." is what is left of "orders.#" when '#' was not written %23: the rest of
             * the URL was a fragment, which clients do not send. */
            bool cut = n > 0 && p[n - 1] == '.';
            snprintf(msg, sizeof(msg), "pattern '%.*s': %s%s", (int)TD_MIN(n, 250), p, why,
                     cut ? "; in a URL, write '#' as %23 (a bare '#' and what follows it are "
                           "never sent)"
                         : "");
            http_respond_error(hc, 400, "invalid_pattern", msg);
            return false;
        }
        if (!(sub->patterns[sub->npat++] = strndup(p, n))) {
            http_respond_error(hc, 500, "internal", "out of memory");
            return false;
        }
        /* A topic named outright must be readable (403, or 404 when it may not be seen);
         * patterns read only the topics that are. */
        const char *pat = sub->patterns[sub->npat - 1];
        if (td_pattern_is_literal(pat, n) && !http_require(hc, TD_RES_TOPIC, pat, TD_OP_READ))
            return false;
        p = e ? e + 1 : p + n;
        if (e && !*p) {
            http_respond_error(hc, 400, "invalid_pattern", "a pattern is empty");
            return false;
        }
    }
    if (sub->npat == 0) {
        http_respond_error(hc, 400, "invalid_pattern",
                           "name the topics: ?topics=orders.*,billing.# (comma-separated "
                           "patterns: '*' is one segment, '#' zero or more)");
        return false;
    }
    return true;
}

/* Starts the stream of a subscription set up in sub (parked): no request after this one is read
 * on the connection. The first event, `subscribed`, has hello (taken) as its data and the
 * starting cursor as its id. */
static void sub_begin(hconn *hc, http_sub *sub, json_t *hello)
{
    sub->chunked = hc->req.minor >= 1;
    http_respond_stream_head(hc, 200, "text/event-stream",
                             "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n");
    http_begin_async(hc);
    hc->sub = sub;
    td_buf t;
    td_buf_init(&t);
    char *hj = hello ? http_json_dumps(hello, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(hello);
    bool ok = hj && td_buf_append(&t, "retry: 1000\nevent: subscribed\nid: ", 34) == 0 &&
              cursor_text(sub, &t) == 0 && td_buf_append(&t, "\ndata: ", 7) == 0 &&
              td_buf_append(&t, hj, strlen(hj)) == 0 && td_buf_append(&t, "\n\n", 2) == 0;
    free(hj);
    if (!ok) {
        td_buf_free(&t);
        sub_close_later(sub, true);
        net_timer_start(net_conn_loop(hc->c), &sub->tick, TICK_MS, on_tick, sub);
        return;
    }
    sse_write(sub, &t);
    td_buf_free(&t);
    net_timer_start(net_conn_loop(hc->c), &sub->tick, TICK_MS, on_tick, sub);
    sub_pump(sub);
}

static void subscribe(hconn *hc)
{
    http_server *s = hc->s;
    char topics[4096], from_s[64] = "latest";
    int rt = http_query_get(hc->req.query, "topics", topics, sizeof(topics));
    int rf = http_query_get(hc->req.query, "from", from_s, sizeof(from_s));
    if (rt < 0 || rf < 0)
        return http_respond_error(hc, 400, "invalid_argument",
                                  "a bad percent-escape or an over-long query parameter");
    if (rt == 0)
        topics[0] = 0;
    bool values_json;
    int iso;
    if (!http_values_param(hc, &values_json) || !http_isolation_param(hc, &iso))
        return;
    int64_t from;
    if (!strcmp(from_s, "latest"))
        from = TD_OFFSET_LATEST;
    else if (!strcmp(from_s, "earliest"))
        from = TD_OFFSET_EARLIEST;
    else if (http_parse_time(from_s, &from) != 0)
        return http_respond_error(hc, 400, "invalid_argument",
                                  "'from' is latest (the default), earliest, Unix milliseconds "
                                  "or an ISO 8601 time");

    /* Last-Event-ID (EventSource sends it when reconnecting), or ?last_event_id=. */
    char idq[8192];
    const td_slice *idh = http_header_get(&hc->req, "last-event-id");
    td_slice id = idh ? *idh : td_slice_make(NULL, 0);
    int ri = idh ? 0 : http_query_get(hc->req.query, "last_event_id", idq, sizeof(idq));
    if (ri < 0)
        return http_respond_error(hc, 400, "invalid_argument", "a bad 'last_event_id'");
    if (ri > 0)
        id = td_slice_make(idq, strlen(idq));
    bool resume = id.n > 0;

    http_sub *sub = calloc(1, sizeof(*sub));
    if (!sub)
        return http_respond_error(hc, 500, "internal", "out of memory");
    sub->c = hc->c;
    sub->s = s;
    sub->tick = (net_timer)NET_TIMER_INIT;
    sub->quota_timer = (net_timer)NET_TIMER_INIT;
    sub->values_json = values_json;
    sub->isolation = iso;
    cursor_ctx cc = {.sub = sub};
    td_principal who;
    http_principal(hc, &who);
    snprintf(sub->host, sizeof(sub->host), "%s", who.host);
    if (who.user && !(sub->user = strdup(who.user))) {
        http_respond_error(hc, 500, "internal", "out of memory");
        goto fail;
    }
    if (!read_patterns(hc, sub, topics))
        goto fail;
    if (resume && (http_cursor_parse((const char *)id.p, id.n, on_cursor, &cc) != 0 || cc.oom)) {
        http_respond_error(hc, 400, "invalid_argument",
                           cc.oom ? "out of memory"
                                  : "Last-Event-ID is not an id this broker sent");
        goto fail;
    }
    /* Resuming: partitions the cursor does not name are new since, and start at their start. */
    int rc = sub_discover(sub, resume ? &cc : NULL, resume ? TD_OFFSET_EARLIEST : from);
    if (rc == TD_EFULL) {
        http_respond_error(hc, 400, "too_many_partitions",
                           "the patterns match more than 10000 partitions");
        goto fail;
    }
    if (rc) {
        http_respond_td_error(hc, rc);
        goto fail;
    }
    net_waiter_init(&sub->wait, sub_retry);
    if (net_wait_park(s->subs, &sub->wait, hc->c, -1, 0) != 0) {
        http_respond_error(hc, 500, "internal", "out of memory");
        goto fail;
    }
    free(cc.topics);
    free(cc.parts);
    free(cc.offs);

    TD_INFO("http", "%s: subscribed to %s (%zu partitions, %s) as %s", net_conn_peer(hc->c), topics,
            sub->n, resume ? "resuming" : from_s, sub->user ? sub->user : "ANONYMOUS");
    json_t *pats = json_array();
    for (size_t i = 0; i < sub->npat; i++)
        json_array_append_new(pats, json_string(sub->patterns[i]));
    sub_begin(hc, sub,
              json_pack("{s:o,s:I,s:b}", "patterns", pats, "partitions", (json_int_t)sub->n,
                        "resumed", resume));
    return;
fail:
    free(cc.topics);
    free(cc.parts);
    free(cc.offs);
    sub_free(sub);
}

/* The resume point of a key's subscription: Last-Event-ID (or ?last_event_id=) as the
 * subscription cursors write it, naming the key's partition. 1 with *next, 0 without one, -1
 * after answering 400. */
static int key_resume(hconn *hc, http_sub *sub, const char *topic, int32_t partition, int64_t *next)
{
    char idq[8192];
    const td_slice *idh = http_header_get(&hc->req, "last-event-id");
    td_slice id = idh ? *idh : td_slice_make(NULL, 0);
    int ri = idh ? 0 : http_query_get(hc->req.query, "last_event_id", idq, sizeof(idq));
    if (ri > 0)
        id = td_slice_make(idq, strlen(idq));
    if (ri < 0) {
        http_respond_error(hc, 400, "invalid_argument", "a bad 'last_event_id'");
        return -1;
    }
    if (id.n == 0)
        return 0;
    cursor_ctx cc = {.sub = sub};
    bool ok = http_cursor_parse((const char *)id.p, id.n, on_cursor, &cc) == 0 && !cc.oom &&
              cursor_lookup(&cc, topic, partition, next);
    free(cc.topics);
    free(cc.parts);
    free(cc.offs);
    if (!ok) {
        http_respond_error(hc, 400, "invalid_argument",
                           "Last-Event-ID is not an id this broker sent for this key's stream");
        return -1;
    }
    return 1;
}

void http_subscribe_key(hconn *hc, const char *topic, const char *key, size_t key_len)
{
    td_engine *e = hc->s->e;
    int64_t partition = TD_PARTITION_ANY, from = 0;
    bool values_json;
    int iso;
    if (http_query_int(hc, "partition", 0, INT32_MAX, &partition) < 0 ||
        http_query_int(hc, "from_version", 0, INT64_MAX, &from) < 0 ||
        !http_values_param(hc, &values_json) || !http_isolation_param(hc, &iso))
        return;
    td_topic_ref *ref;
    int rc = broker_topic_acquire(e, topic, &ref);
    if (rc)
        return http_respond_td_error(hc, rc);
    int64_t topic_id = broker_topic_id(ref);
    int32_t nparts = broker_topic_partitions(ref);
    broker_topic_release(ref);
    if (partition == TD_PARTITION_ANY)
        partition = td_partition_for_key(key, key_len, nparts);
    int64_t version;
    if ((rc = td_key_version(e, topic, key, key_len, (int32_t)partition, &version)) != 0) {
        if (rc == TD_EUNSUPPORTED)
            return http_respond_error(hc, 400, "no_key_index", td_last_error());
        return http_respond_td_error(hc, rc);
    }
    http_sub *sub = calloc(1, sizeof(*sub));
    if (!sub || !(sub->key = malloc(key_len + 1))) {
        free(sub);
        return http_respond_error(hc, 500, "internal", "out of memory");
    }
    memcpy(sub->key, key, key_len);
    sub->key_len = key_len;
    sub->by_key = true;
    sub->c = hc->c;
    sub->s = hc->s;
    sub->tick = (net_timer)NET_TIMER_INIT;
    sub->quota_timer = (net_timer)NET_TIMER_INIT;
    sub->values_json = values_json;
    sub->isolation = iso;
    sub->gen = broker_topics_generation(e);
    td_principal who;
    http_principal(hc, &who);
    snprintf(sub->host, sizeof(sub->host), "%s", who.host);
    int resume = -1;
    if (who.user && !(sub->user = strdup(who.user)))
        http_respond_error(hc, 500, "internal", "out of memory");
    else
        resume = key_resume(hc, sub, topic, (int32_t)partition, &from);
    if (resume >= 0 && sub_add(sub, topic, topic_id, (int32_t)partition, from) != 0) {
        http_respond_error(hc, 500, "internal", "out of memory");
        resume = -1;
    }
    net_waiter_init(&sub->wait, sub_retry);
    if (resume >= 0 && net_wait_park(hc->s->subs, &sub->wait, hc->c, -1, 0) != 0) {
        http_respond_error(hc, 500, "internal", "out of memory");
        resume = -1;
    }
    if (resume < 0)
        return sub_free(sub);
    TD_INFO("http", "%s: following key of %zu bytes in %s/%" PRId64 " from %" PRId64 " as %s",
            net_conn_peer(hc->c), key_len, topic, partition, from,
            sub->user ? sub->user : "ANONYMOUS");
    json_t *k = json_stringn(key, key_len);
    json_t *hello = json_pack(
        "{s:s,s:i,s:o,s:b}", "topic", topic, "partition", (int)partition, "version",
        version >= 0 ? json_integer(version) : json_string("no_stream"), "resumed", resume > 0);
    if (hello && k) /* NULL unless valid UTF-8 (the events say it in key_b64) */
        json_object_set_new(hello, "key", k);
    sub_begin(hc, sub, hello);
}

void http_route_subscribe(hconn *hc)
{
    if (!http_method_is(hc, "GET"))
        return http_respond_method_not_allowed(hc, "GET");
    subscribe(hc);
}
