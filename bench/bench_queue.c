/*
 * bench_queue.c: queue throughput, receive + ack, as a consumer on the network sees it: over
 * tidings' HTTP API, over its Redis protocol (consumer groups with a queue policy), against
 * nats-server's JetStream (a pull consumer), and through the embedded API.
 *
 *   bench_queue http://H:P GROUP CONSUMERS BATCH EVENTS [fail]
 *       CONSUMERS threads, each on its own keep-alive connection, loop on a receive of BATCH
 *       events (wait_ms 1000, values as $BENCH_VALUES: base64 by default, or string or json)
 *       and one ack of the batch, its ids sent as ranges (3.0.17-1016.1) with
 *       "results": "failed", until EVENTS events are acked in all. With `fail`, each event's
 *       first delivery is nacked (delay 0) instead, so every event costs one retry.
 *   bench_queue redis://H:P STREAMS GROUP CONSUMERS BATCH EVENTS
 *       the same with XREADGROUP GROUP GROUP c<i> COUNT BATCH/n BLOCK 1000 STREAMS over the n
 *       streams STREAMS names (comma-separated), and an XACK per stream of what it gave,
 *       pipelined in one write. The group must exist on every stream.
 *   bench_queue nats://H:P STREAM CONSUMERS BATCH EVENTS
 *       a durable pull consumer ("bench<CONSUMERS>", explicit acks, max ack pending 20 000) on
 *       the JetStream stream STREAM, which the threads share, each on its own connection:
 *       Fetch(BATCH) and natsMsg_Ack of each message (acks are not confirmed, as NATS clients
 *       send them), a flush of the connection at the end.
 *   bench_queue nats-fill nats://H:P STREAM SUBJECT EVENTS
 *       creates STREAM (file storage, one replica) on SUBJECT and publishes EVENTS events of
 *       100 bytes into it (asynchronous publishes, all confirmed).
 *   bench_queue embedded DIR CONSUMERS BATCH EVENTS [fail]
 *       the loops of the first form through td_queue_* on a fresh engine in DIR, which it
 *       fills with EVENTS events of 100 bytes in 16 partitions first: the engine's own cost.
 *
 * Prints "queue CONSUMERS <events/s> <events> <deliveries> <client CPU s> <seconds>". The rate
 * is the events acked over the time until the last of them was acked (not until every thread
 * returned from its last, empty, wait). The client CPU (its process CPU time) is printed so
 * that a reader can see whether the client, which shares the machine with the server, was the
 * limit.
 *
 * The network clients are written for the benchmark: the HTTP and Redis ones are plain
 * sockets with one reused buffer per thread each way, no allocation per event and no JSON tree
 * (they find the ids in the answer by scanning it); libcurl and jansson cost the old client
 * 4.7 s of CPU in a 5.7 s run and made it the bottleneck. bench/queue.sh runs every form in
 * one run.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifdef BENCH_NATS
#include <nats/nats.h>
#endif

#include "bench_common.h"
#include "tidings.h"

static const char *group, *values = "base64";
static int batch;
static int64_t target;
static bool fail;
static atomic_llong acked, deliveries;
static double deadline, t_start, t_done;
static pthread_mutex_t done_mu = PTHREAD_MUTEX_INITIALIZER;

static _Noreturn void die(const char *what, const char *detail)
{
    fprintf(stderr, "bench_queue: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    exit(1);
}

/* Counts n acked events; the one that reaches the target notes the time. */
static void count_acked(long long n)
{
    long long before = atomic_fetch_add(&acked, n);
    if (before < target && before + n >= target) {
        pthread_mutex_lock(&done_mu);
        t_done = now_s();
        pthread_mutex_unlock(&done_mu);
    }
}

static bool running(void)
{
    return atomic_load(&acked) < target && now_s() < deadline;
}

/* ---------------------------------------------------------------------------------------------
 * A growable byte buffer, reused for the whole run
 */
typedef struct buf {
    char *p;
    size_t n, cap;
} buf;

static void reserve(buf *b, size_t extra)
{
    if (b->n + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 65536;
    while (cap < b->n + extra + 1)
        cap *= 2;
    if (!(b->p = realloc(b->p, cap)))
        die("out of memory", NULL);
    b->cap = cap;
}

static void add(buf *b, const void *p, size_t n)
{
    reserve(b, n);
    memcpy(b->p + b->n, p, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void adds(buf *b, const char *s)
{
    add(b, s, strlen(s));
}

static void addf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void addf(buf *b, const char *fmt, ...)
{
    va_list ap;
    reserve(b, 256);
    va_start(ap, fmt);
    int k = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= b->cap - b->n)
        die("format overflow", NULL);
    b->n += (size_t)k;
}

/* ---------------------------------------------------------------------------------------------
 * Sockets
 */
static int dial(const char *hostport)
{
    char host[64];
    const char *colon = strrchr(hostport, ':');
    if (!colon || (size_t)(colon - hostport) >= sizeof(host))
        die("bad address", hostport);
    memcpy(host, hostport, (size_t)(colon - hostport));
    host[colon - hostport] = 0;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        die("not an IPv4 address", host);
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct timeval tv = {.tv_sec = 30};
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        die("connect", strerror(errno));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)); /* bounds every read */
    return fd;
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k <= 0)
            die("send", strerror(errno));
        p += k;
        n -= (size_t)k;
    }
}

/* Reads more bytes into b; dies at the end of the stream or on the timeout. */
static void recv_more(int fd, buf *b)
{
    reserve(b, 65536);
    ssize_t k = recv(fd, b->p + b->n, b->cap - b->n - 1, 0);
    if (k <= 0)
        die("recv", k == 0 ? "connection closed" : strerror(errno));
    b->n += (size_t)k;
    b->p[b->n] = 0;
}

/* ---------------------------------------------------------------------------------------------
 * HTTP: keep-alive requests, answers with Content-Length (as the broker gives them)
 */
typedef struct hcli {
    int fd;
    const char *host;
    buf req, in, body; /* in: bytes read; body: the last answer's body (a view into in) */
    size_t body_off;
} hcli;

/* POSTs body to path and reads the answer; returns its status, its body in c->in from
 * c->body_off (NUL-terminated). */
static int http_post(hcli *c, const char *path, const char *body, size_t len)
{
    c->req.n = 0;
    addf(&c->req,
         "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
         "Content-Length: %zu\r\n\r\n",
         path, c->host, len);
    add(&c->req, body, len);
    send_all(c->fd, c->req.p, c->req.n);
    c->in.n = 0;
    char *end;
    while (!(c->in.n && (end = strstr(c->in.p, "\r\n\r\n"))))
        recv_more(c->fd, &c->in);
    int status = atoi(c->in.p + 9);
    size_t head = (size_t)(end + 4 - c->in.p), clen = 0;
    for (char *h = strstr(c->in.p, "\r\n"); h && h < end; h = strstr(h + 2, "\r\n"))
        if (!strncasecmp(h + 2, "content-length:", 15))
            clen = strtoull(h + 17, NULL, 10);
    while (c->in.n < head + clen)
        recv_more(c->fd, &c->in);
    c->body_off = head;
    c->in.p[head + clen] = 0;
    return status;
}

/* One run of consecutive offsets of a partition with one delivery count: a range id. */
typedef struct run {
    int64_t t, o0, o1;
    int32_t p, d;
    size_t n;
} run;

static void run_flush(buf *b, run *r, size_t *items)
{
    if (!r->n)
        return;
    add(b, *items ? ",\"" : "\"", *items ? 2 : 1);
    if (r->o0 == r->o1)
        addf(b, "%" PRId64 ".%" PRId32 ".%" PRId64 ".%" PRId32 "\"", r->t, r->p, r->o0, r->d);
    else
        addf(b, "%" PRId64 ".%" PRId32 ".%" PRId64 "-%" PRId64 ".%" PRId32 "\"", r->t, r->p, r->o0,
             r->o1, r->d);
    (*items)++;
    r->n = 0;
}

static void run_add(buf *b, run *r, size_t *items, int64_t t, int32_t p, int64_t o, int32_t d)
{
    if (r->n && r->t == t && r->p == p && r->d == d && o == r->o1 + 1) {
        r->o1 = o;
        r->n++;
        return;
    }
    run_flush(b, r, items);
    *r = (run){.t = t, .p = p, .o0 = o, .o1 = o, .d = d, .n = 1};
}

static long long field_int(const char *s, const char *name)
{
    const char *f = strstr(s, name);
    return f ? strtoll(f + strlen(name), NULL, 10) : -1;
}

static void *http_consumer(void *arg)
{
    hcli c = {0};
    const char *url = arg;
    c.fd = dial(url + strlen("http://"));
    c.host = url + strlen("http://");
    char path[3][300], rq[300];
    static const char *const actions[] = {"receive", "ack", "nack"};
    for (int i = 0; i < 3; i++)
        snprintf(path[i], sizeof(path[i]), "/v1/queues/%s/%s", group, actions[i]);
    static atomic_int seq;
    int rl = snprintf(rq, sizeof(rq),
                      "{\"max\":%d,\"wait_ms\":1000,\"consumer\":\"bench-%d\",\"values\":\"%s\"}",
                      batch, atomic_fetch_add(&seq, 1), values);
    buf ack = {0}, nack = {0};
    while (running()) {
        int st = http_post(&c, path[0], rq, (size_t)rl);
        if (st != 200)
            die("receive", c.in.p + c.body_off);
        ack.n = nack.n = 0;
        adds(&ack, "{\"ids\":[");
        adds(&nack, "{\"ids\":[");
        run ra = {0}, rn = {0};
        size_t na = 0, nn = 0, ia = 0, in = 0;
        /* Events start with their id: {"id":"T.P.O.D", and values never hold that text
         * unescaped. */
        for (const char *s = strstr(c.in.p + c.body_off, "{\"id\":\""); s;
             s = strstr(s, "{\"id\":\"")) {
            char *e;
            s += 7;
            int64_t t = strtoll(s, &e, 10), o;
            int32_t p = (int32_t)strtol(e + 1, &e, 10);
            o = strtoll(e + 1, &e, 10);
            int32_t d = (int32_t)strtol(e + 1, &e, 10);
            if (fail && d == 1) {
                run_add(&nack, &rn, &in, t, p, o, d);
                nn++;
            } else {
                run_add(&ack, &ra, &ia, t, p, o, d);
                na++;
            }
            s = e;
        }
        run_flush(&ack, &ra, &ia);
        run_flush(&nack, &rn, &in);
        atomic_fetch_add(&deliveries, (long long)(na + nn));
        if (na) {
            adds(&ack, "],\"results\":\"failed\"}");
            if ((st = http_post(&c, path[1], ack.p, ack.n)) != 200)
                die("ack", c.in.p + c.body_off);
            long long ok = field_int(c.in.p + c.body_off, "\"ok\":");
            if (ok != (long long)na)
                die("ack: not every id was ok", c.in.p + c.body_off);
            count_acked(ok);
        }
        if (nn) {
            adds(&nack, "],\"delay_ms\":0,\"results\":\"failed\"}");
            if ((st = http_post(&c, path[2], nack.p, nack.n)) != 200)
                die("nack", c.in.p + c.body_off);
        }
    }
    close(c.fd);
    free(c.req.p);
    free(c.in.p);
    free(ack.p);
    free(nack.p);
    return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Redis: XREADGROUP over the streams, XACK per stream, RESP parsed in place
 */
static const char *redis_addr;
static char **streams;
static int nstreams;

/* The end of the RESP value at p (in [p, end)), or NULL when it is not complete yet. */
static const char *resp_skip(const char *p, const char *end)
{
    if (p >= end)
        return NULL;
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl)
        return NULL;
    long long n = strtoll(p + 1, NULL, 10);
    switch (*p) {
    case '+':
    case '-':
    case ':':
    case '_':
        return nl + 1;
    case '$':
        if (n < 0)
            return nl + 1;
        return end - (nl + 1) >= n + 2 ? nl + 1 + n + 2 : NULL;
    case '*':
        p = nl + 1;
        for (long long i = 0; i < n; i++)
            if (!(p = resp_skip(p, end)))
                return NULL;
        return p;
    default:
        die("unexpected RESP", p);
    }
}

static void resp_read(int fd, buf *in, size_t replies)
{
    in->n = 0;
    for (;;) {
        const char *p = in->p, *end = in->p + in->n;
        size_t got = 0;
        while (in->n && got < replies && (p = resp_skip(p, end)))
            got++;
        if (got == replies)
            return;
        recv_more(fd, in);
    }
}

/* A bulk string's text at *p: its bytes and length; *p moves past it. */
static const char *resp_bulk(const char **p, size_t *len)
{
    char *e;
    long long n = strtoll(*p + 1, &e, 10);
    const char *s = e + 2;
    *len = (size_t)n;
    *p = s + n + 2;
    return s;
}

static long long resp_count(const char **p)
{
    char *e;
    long long n = strtoll(*p + 1, &e, 10);
    *p = e + 2;
    return n;
}

static void add_bulk(buf *b, const char *s, size_t n)
{
    addf(b, "$%zu\r\n", n);
    add(b, s, n);
    add(b, "\r\n", 2);
}

static void *redis_consumer(void *arg)
{
    int fd = dial(redis_addr);
    int idx = (int)(intptr_t)arg;
    buf rq = {0}, in = {0}, acks = {0}, ids = {0};
    char cons[32];
    int per = (batch + nstreams - 1) / nstreams;
    snprintf(cons, sizeof(cons), "c%d", idx);
    char count[16];
    snprintf(count, sizeof(count), "%d", per);
    addf(&rq, "*%d\r\n", 9 + 2 * nstreams);
    add_bulk(&rq, "XREADGROUP", 10);
    add_bulk(&rq, "GROUP", 5);
    add_bulk(&rq, group, strlen(group));
    add_bulk(&rq, cons, strlen(cons));
    add_bulk(&rq, "COUNT", 5);
    add_bulk(&rq, count, strlen(count));
    add_bulk(&rq, "BLOCK", 5);
    add_bulk(&rq, "1000", 4);
    add_bulk(&rq, "STREAMS", 7);
    for (int i = 0; i < nstreams; i++)
        add_bulk(&rq, streams[i], strlen(streams[i]));
    for (int i = 0; i < nstreams; i++)
        add_bulk(&rq, ">", 1);
    while (running()) {
        send_all(fd, rq.p, rq.n);
        resp_read(fd, &in, 1);
        const char *p = in.p;
        if (*p == '-')
            die("XREADGROUP", p);
        long long ns = *p == '*' ? resp_count(&p) : 0; /* *-1, nil: nothing came */
        acks.n = 0;
        size_t nack_cmds = 0;
        long long got = 0;
        for (long long s = 0; s < ns; s++) {
            resp_count(&p); /* [key, entries] */
            size_t klen;
            const char *key = resp_bulk(&p, &klen);
            long long ne = resp_count(&p);
            ids.n = 0;
            for (long long e = 0; e < ne; e++) {
                resp_count(&p); /* [id, fields] */
                size_t ilen;
                const char *id = resp_bulk(&p, &ilen);
                add_bulk(&ids, id, ilen);
                p = resp_skip(p, in.p + in.n); /* the fields */
            }
            if (ne > 0) {
                addf(&acks, "*%lld\r\n", 3 + ne);
                add_bulk(&acks, "XACK", 4);
                add_bulk(&acks, key, klen);
                add_bulk(&acks, group, strlen(group));
                add(&acks, ids.p, ids.n);
                nack_cmds++;
                got += ne;
            }
        }
        atomic_fetch_add(&deliveries, got);
        if (!nack_cmds)
            continue;
        /* The XACKs of the streams pipelined in one write. tidings answers each once it is
         * durable and runs the connection's next command only then, so over n streams a batch
         * waits for n group commits in turn (docs/performance.md). Not in MULTI/EXEC: there
         * each XACK waits for its fsync on the event loop's thread. */
        send_all(fd, acks.p, acks.n);
        resp_read(fd, &in, nack_cmds);
        long long ok = 0;
        p = in.p;
        for (size_t i = 0; i < nack_cmds; i++) {
            if (*p != ':')
                die("XACK", p);
            ok += resp_count(&p);
        }
        if (ok != got)
            die("XACK: not every entry was pending", NULL);
        count_acked(ok);
    }
    close(fd);
    free(rq.p);
    free(in.p);
    free(acks.p);
    free(ids.p);
    return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * NATS JetStream: a shared durable pull consumer
 */
#ifdef BENCH_NATS
static const char *nats_url;
static char nats_durable[64];

static void nats_check(natsStatus s, const char *what)
{
    if (s != NATS_OK)
        die(what, natsStatus_GetText(s));
}

static void *nats_consumer(void *arg)
{
    (void)arg;
    natsConnection *nc;
    jsCtx *js;
    natsSubscription *sub;
    jsErrCode jerr = 0;
    nats_check(natsConnection_ConnectTo(&nc, nats_url), "connect");
    nats_check(natsConnection_JetStream(&js, nc, NULL), "jetstream");
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = group;
    so.Consumer = nats_durable; /* bind to the consumer made in main */
    nats_check(js_PullSubscribe(&sub, js, NULL, nats_durable, NULL, &so, &jerr), "subscribe");
    while (running()) {
        natsMsgList list = {0};
        natsStatus s = natsSubscription_Fetch(&list, sub, batch, 1000, &jerr);
        if (s == NATS_TIMEOUT)
            continue;
        nats_check(s, "fetch");
        for (int i = 0; i < list.Count; i++)
            nats_check(natsMsg_Ack(list.Msgs[i], NULL), "ack");
        atomic_fetch_add(&deliveries, list.Count);
        count_acked(list.Count);
        natsMsgList_Destroy(&list);
    }
    /* Acks are published, not confirmed: they reached the server once the flush's PING is
     * answered. */
    nats_check(natsConnection_FlushTimeout(nc, 10000), "flush");
    natsSubscription_Destroy(sub);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return NULL;
}

static void nats_make_consumer(int consumers)
{
    natsConnection *nc;
    jsCtx *js;
    jsErrCode jerr = 0;
    nats_check(natsConnection_ConnectTo(&nc, nats_url), "connect");
    nats_check(natsConnection_JetStream(&js, nc, NULL), "jetstream");
    snprintf(nats_durable, sizeof(nats_durable), "bench%d", consumers);
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = nats_durable;
    cc.AckPolicy = js_AckExplicit;
    cc.DeliverPolicy = js_DeliverAll;
    cc.MaxAckPending = 20000;
    cc.AckWait = (int64_t)30 * 1000000000; /* ns */
    cc.MaxRequestBatch = 1000;
    jsConsumerInfo *ci = NULL;
    nats_check(js_AddConsumer(&ci, js, group, &cc, NULL, &jerr), "add consumer");
    jsConsumerInfo_Destroy(ci);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
}

static void nats_fill(const char *url, const char *stream, const char *subject, int64_t n)
{
    natsConnection *nc;
    jsCtx *js;
    jsErrCode jerr = 0;
    nats_check(natsConnection_ConnectTo(&nc, url), "connect");
    jsOptions o;
    jsOptions_Init(&o);
    o.PublishAsync.MaxPending = 20000;
    nats_check(natsConnection_JetStream(&js, nc, &o), "jetstream");
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    sc.Name = stream;
    const char *subjects[] = {subject};
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    sc.Replicas = 1;
    jsStreamInfo *si = NULL;
    nats_check(js_AddStream(&si, js, &sc, NULL, &jerr), "add stream");
    jsStreamInfo_Destroy(si);
    char v[100], num[24];
    memset(v, 'x', sizeof(v));
    for (int64_t i = 0; i < n; i++) {
        int k = snprintf(num, sizeof(num), "%010" PRId64 " ", i);
        memcpy(v, num, (size_t)k);
        nats_check(js_PublishAsync(js, subject, v, 100, NULL), "publish");
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 60000;
    nats_check(js_PublishAsyncComplete(js, &po), "publish complete");
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
}
#endif

/* ---------------------------------------------------------------------------------------------
 * Embedded
 */
static td_engine *eng;

static void *embedded_consumer(void *arg)
{
    char name[32];
    snprintf(name, sizeof(name), "bench-%d", (int)(intptr_t)arg);
    const char **ack = malloc((size_t)batch * sizeof(*ack)),
               **nack = malloc((size_t)batch * sizeof(*nack));
    while (running()) {
        td_queue_msg *m;
        size_t n = 0, na = 0, nn = 0;
        if (td_queue_receive(eng, group, name, (size_t)batch, &m, &n) != 0)
            die("receive", td_last_error());
        for (size_t i = 0; i < n; i++) {
            if (fail && m[i].deliveries == 1)
                nack[nn++] = m[i].id;
            else
                ack[na++] = m[i].id;
        }
        atomic_fetch_add(&deliveries, (long long)n);
        if ((na && td_queue_ack(eng, group, ack, na, NULL) != 0) ||
            (nn && td_queue_nack(eng, group, nack, nn, 0, NULL, NULL) != 0))
            die("ack", td_last_error());
        count_acked((long long)na);
        td_queue_msgs_free(m, n);
    }
    free(ack);
    free(nack);
    return NULL;
}

/* A fresh engine in dir with `target` events of 100 bytes in 16 partitions, and the group. */
static void embedded_setup(const char *dir)
{
    td_options o;
    td_options_init(&o);
    if (td_engine_open(dir, &o, &eng) != 0)
        die("open", td_last_error());
    td_config_entry cfg[] = {{"fsync", "interval:1000"}};
    td_topic_create(eng, "bench", 16, cfg, 1);
    enum { CHUNK = 1000 };
    static td_event ev[CHUNK];
    static char v[100];
    memset(v, 'x', sizeof(v));
    for (int64_t done = 0; done < target;) {
        size_t n = target - done < CHUNK ? (size_t)(target - done) : CHUNK;
        for (size_t i = 0; i < n; i++)
            ev[i] = (td_event){.value = v, .value_len = sizeof(v), .partition = TD_PARTITION_ANY};
        if (td_produce(eng, "bench", ev, n, NULL) != 0)
            die("produce", td_last_error());
        done += (int64_t)n;
    }
    td_queue_policy p;
    td_queue_policy_init(&p);
    td_config_entry pol[] = {{"max.in.flight", "20000"},
                             {"max.in.flight.per.consumer", "1000"},
                             {"backoff.initial.ms", "0"}};
    td_queue_policy_apply(&p, pol, 3);
    if (td_queue_create(eng, group, "bench", &p) != 0)
        die("create", td_last_error());
}

static _Noreturn void usage(void)
{
    fprintf(stderr, "usage: bench_queue http://H:P GROUP CONSUMERS BATCH EVENTS [fail]\n"
                    "       bench_queue redis://H:P STREAMS GROUP CONSUMERS BATCH EVENTS\n"
                    "       bench_queue nats://H:P STREAM CONSUMERS BATCH EVENTS\n"
                    "       bench_queue nats-fill nats://H:P STREAM SUBJECT EVENTS\n"
                    "       bench_queue embedded DIR CONSUMERS BATCH EVENTS [fail]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc < 6)
        usage();
    const char *url = argv[1];
    if (!strcmp(url, "nats-fill")) {
#ifdef BENCH_NATS
        nats_fill(argv[2], argv[3], argv[4], atoll(argv[5]));
        return 0;
#else
        die("built without libnats-dev", NULL);
#endif
    }
    bool embedded = !strcmp(url, "embedded"), http = !strncmp(url, "http://", 7),
         redis = !strncmp(url, "redis://", 8), nats = !strncmp(url, "nats://", 7);
    if (!embedded && !http && !redis && !nats)
        usage();
    int a = 2;
    if (redis) {
        if (argc < 7)
            usage();
        redis_addr = url + 8;
        char *list = strdup(argv[a++]);
        for (char *s = strtok(list, ","); s; s = strtok(NULL, ",")) {
            streams = realloc(streams, (size_t)(nstreams + 1) * sizeof(*streams));
            streams[nstreams++] = s;
        }
    }
    group = embedded ? "bench" : argv[a];
    const char *dir = argv[a++];
    int n = atoi(argv[a++]);
    batch = atoi(argv[a++]);
    target = atoll(argv[a++]);
    fail = argc > a && !strcmp(argv[a], "fail");
    if (getenv("BENCH_VALUES"))
        values = getenv("BENCH_VALUES");
    if (n < 1 || n > 256 || batch < 1 || batch > 1000 || target < 1 || (fail && (redis || nats)))
        die("bad arguments", NULL);
    if (embedded)
        embedded_setup(dir);
#ifdef BENCH_NATS
    if (nats) {
        nats_url = url;
        nats_make_consumer(n);
    }
#else
    if (nats)
        die("built without libnats-dev", NULL);
#endif
    void *(*fn)(void *) = embedded ? embedded_consumer : http ? http_consumer : redis_consumer;
#ifdef BENCH_NATS
    if (nats)
        fn = nats_consumer;
#endif
    pthread_t *t = calloc((size_t)n, sizeof(*t));
    double cpu0 = cpu_s();
    t_start = now_s();
    deadline = t_start + 300;
    for (int i = 0; i < n; i++)
        pthread_create(&t[i], NULL, fn, http ? (void *)url : (void *)(intptr_t)i);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    if (atomic_load(&acked) < target) {
        fprintf(stderr, "bench_queue: only %lld of %" PRId64 " events acked in 300 s\n",
                (long long)atomic_load(&acked), target);
        return 1;
    }
    double secs = t_done - t_start;
    printf("queue %d %.0f %lld %lld %.2f %.2f\n", n, (double)atomic_load(&acked) / secs,
           (long long)atomic_load(&acked), (long long)atomic_load(&deliveries), cpu_s() - cpu0,
           secs);
    free(t);
    if (embedded)
        td_engine_close(eng);
    return 0;
}
