/*
 * bench_kafka.c: a Kafka load program on librdkafka, for tidings or any Kafka broker.
 *
 *   bench_kafka BOOTSTRAP create TOPIC PARTITIONS [KEY=VALUE...]
 *       creates a topic (topic configuration as KEY=VALUE); prints "create TOPIC"
 *   bench_kafka BOOTSTRAP produce TOPIC SIZE ACKS SECONDS
 *       produces SIZE-byte events without keys as fast as the client allows for SECONDS, then
 *       waits for every delivery report; prints "produce SIZE ACKS <events/s> <MB/s> <events>"
 *       (MB/s of event values, 10^6 bytes); ACKS is 0, 1, all, or idem (an idempotent producer:
 *       acks=all with enable.idempotence)
 *   bench_kafka BOOTSTRAP producefile TOPIC FILE ACKS SECONDS
 *       the same with the values of FILE in turn (each a 4-byte big-endian length, then the
 *       value: bench/schema.sh's schema-encoded events); SIZE printed is their mean size
 *   bench_kafka BOOTSTRAP consume TOPIC
 *       reads every partition from its start to the high watermark it has when the run starts;
 *       prints "consume <events/s> <MB/s> <events>"
 *   bench_kafka BOOTSTRAP rawfetch TOPIC PARTITIONS
 *       the same read as consume, but speaking Fetch v4 directly on one socket and looking only
 *       at batch headers (no per-record work): what the broker can serve, without a client's
 *       record parsing; prints "rawfetch <MB/s of record batches> <bytes>"
 *   bench_kafka BOOTSTRAP latency TOPIC RATE SECONDS
 *       produces RATE events/s (linger.ms=0, acks=1, each event carrying its send time) into
 *       partition 0 while a consumer in the same process reads them; prints
 *       "latency <p50 µs> <p99 µs> <p99.9 µs> <events>" of send-to-receive times
 *
 * BENCH_CONSUMER_CONF="key=value,..." adds librdkafka settings to the consumers, and
 * BENCH_PRODUCER_CONF to the producers (experiments).
 * Every loop is bounded in time. bench/kafka.sh runs this against a fresh `tidings serve` with
 * its baselines (iperf3 loopback, fio sequential write) and prints ratios; the figures are in
 * docs/performance.md.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *bootstrap;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what, const char *why)
{
    fprintf(stderr, "bench_kafka: %s: %s\n", what, why);
    exit(1);
}

static void set(rd_kafka_conf_t *c, const char *k, const char *v)
{
    char err[512];
    if (rd_kafka_conf_set(c, k, v, err, sizeof(err)) != RD_KAFKA_CONF_OK)
        die(k, err);
}

static rd_kafka_conf_t *base_conf(void)
{
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    set(c, "bootstrap.servers", bootstrap);
    set(c, "client.id", "bench_kafka");
    /* BENCH_KAFKA_PROPS="k=v,k=v": more librdkafka properties (bench/tls.sh: SSL). */
    const char *props = getenv("BENCH_KAFKA_PROPS");
    char buf[2048];
    if (props && strlen(props) < sizeof(buf)) {
        snprintf(buf, sizeof(buf), "%s", props);
        char *save = NULL;
        for (char *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
            char *eq = strchr(kv, '=');
            if (!eq)
                die("BENCH_KAFKA_PROPS", "expected k=v,k=v");
            *eq = 0;
            set(c, kv, eq + 1);
        }
    }
    return c;
}

static rd_kafka_t *make(rd_kafka_type_t type, rd_kafka_conf_t *c)
{
    char err[512];
    rd_kafka_t *rk = rd_kafka_new(type, c, err, sizeof(err));
    if (!rk)
        die("rd_kafka_new", err);
    return rk;
}

/* ------------------------------------------------------------------------------------------ */

static int cmd_create(const char *topic, int partitions, int nconf, char **conf)
{
    rd_kafka_t *rk = make(RD_KAFKA_PRODUCER, base_conf());
    char err[512];
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, 1, err, sizeof(err));
    if (!nt)
        die("NewTopic", err);
    for (int i = 0; i < nconf; i++) {
        char *eq = strchr(conf[i], '=');
        if (!eq)
            die(conf[i], "expected KEY=VALUE");
        *eq = 0;
        rd_kafka_NewTopic_set_config(nt, conf[i], eq + 1);
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    if (!ev)
        die("CreateTopics", "no answer in 30 s");
    const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
    size_t n;
    const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &n);
    if (rd_kafka_event_error(ev))
        die("CreateTopics", rd_kafka_event_error_string(ev));
    for (size_t i = 0; i < n; i++)
        if (rd_kafka_topic_result_error(tr[i]) &&
            rd_kafka_topic_result_error(tr[i]) != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
            die("CreateTopics", rd_kafka_topic_result_error_string(tr[i]));
    rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    rd_kafka_destroy(rk);
    printf("create %s\n", topic);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */

static int64_t delivered, failed;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (m->err) {
        if (failed++ == 0)
            fprintf(stderr, "bench_kafka: delivery failed: %s\n", rd_kafka_err2str(m->err));
    } else {
        delivered++;
    }
}

/* VAR="key=value,key=value": librdkafka settings that override the program's, for experiments. */
static void set_overrides(rd_kafka_conf_t *c, const char *var)
{
    const char *extra = getenv(var);
    if (!extra || !*extra)
        return;
    char *copy = strdup(extra), *save = NULL;
    for (char *kv = strtok_r(copy, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq)
            die(kv, "expected key=value");
        *eq = 0;
        set(c, kv, eq + 1);
    }
    free(copy);
}

/* Produces the n values (of their sizes) in turn for SECONDS; label is the SIZE printed. */
static int produce_values(const char *topic, char **values, const size_t *sizes, size_t n,
                          size_t label, const char *acks, double seconds)
{
    rd_kafka_conf_t *c = base_conf();
    if (!strcmp(acks, "idem")) { /* an idempotent producer (acks=all, sequence numbers) */
        set(c, "enable.idempotence", "true");
        set(c, "acks", "all");
    } else {
        set(c, "acks", acks);
    }
    set(c, "linger.ms", "5");
    set(c, "batch.size", "1000000");
    set(c, "queue.buffering.max.messages", "1000000");
    set(c, "queue.buffering.max.kbytes", "1048576");
    set(c, "compression.codec", "none");
    set_overrides(c, "BENCH_PRODUCER_CONF");
    rd_kafka_conf_set_dr_msg_cb(c, on_delivery);
    rd_kafka_t *rk = make(RD_KAFKA_PRODUCER, c);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    /* Warm up: metadata and the connection, outside the measurement. */
    rd_kafka_produce(rkt, RD_KAFKA_PARTITION_UA, 0, values[0], sizes[0], NULL, 0, NULL);
    rd_kafka_flush(rk, 10000);
    delivered = failed = 0;
    int64_t start = now_ns(), end = start + (int64_t)(seconds * 1e9), sent = 0;
    double bytes = 0;
    size_t next = 0;
    while (now_ns() < end) {
        for (int i = 0; i < 1000; i++) {
            if (rd_kafka_produce(rkt, RD_KAFKA_PARTITION_UA, 0, values[next], sizes[next], NULL,
                                 0, NULL)) {
                if (rd_kafka_last_error() != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                    die("produce", rd_kafka_err2str(rd_kafka_last_error()));
                rd_kafka_poll(rk, 1);
                break;
            }
            bytes += (double)sizes[next];
            next = (next + 1) % n;
            sent++;
        }
        rd_kafka_poll(rk, 0);
    }
    if (rd_kafka_flush(rk, 60000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        die("flush", "deliveries still outstanding after 60 s");
    double secs = (double)(now_ns() - start) / 1e9;
    if (failed)
        die("produce", "some deliveries failed");
    printf("produce %zu %s %.0f %.1f %" PRId64 "\n", label, acks, (double)delivered / secs,
           (double)delivered * (bytes / (double)(sent ? sent : 1)) / secs / 1e6, delivered);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return 0;
}

static int cmd_produce(const char *topic, size_t size, const char *acks, double seconds)
{
    char *value = malloc(size);
    memset(value, 'x', size);
    int rc = produce_values(topic, &value, &size, 1, size, acks, seconds);
    free(value);
    return rc;
}

/* The values of FILE: each a 4-byte big-endian length and that many bytes (at most 4096 of
 * them, each at most 1 MiB: bench/schema.sh writes 64 of about 1 KiB). */
static int cmd_producefile(const char *topic, const char *path, const char *acks,
                           double seconds)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die(path, "cannot open");
    enum { MAX_VALUES = 4096, MAX_SIZE = 1 << 20 };
    char **values = calloc(MAX_VALUES, sizeof(*values));
    size_t *sizes = calloc(MAX_VALUES, sizeof(*sizes)), n = 0, total = 0;
    unsigned char len[4];
    while (n < MAX_VALUES && fread(len, 1, 4, f) == 4) {
        size_t size = (size_t)len[0] << 24 | (size_t)len[1] << 16 | (size_t)len[2] << 8 | len[3];
        if (size == 0 || size > MAX_SIZE)
            die(path, "a value's length is 0 or over 1 MiB");
        values[n] = malloc(size);
        if (fread(values[n], 1, size, f) != size)
            die(path, "truncated");
        sizes[n++] = size;
        total += size;
    }
    fclose(f);
    if (n == 0)
        die(path, "no values");
    int rc = produce_values(topic, values, sizes, n, total / n, acks, seconds);
    for (size_t i = 0; i < n; i++)
        free(values[i]);
    free(values);
    free(sizes);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */

static rd_kafka_t *make_consumer(const char *wait_ms)
{
    rd_kafka_conf_t *c = base_conf();
    set(c, "group.id", "bench_kafka");
    set(c, "enable.auto.commit", "false");
    set(c, "enable.partition.eof", "false");
    set(c, "fetch.wait.max.ms", wait_ms);
    set(c, "fetch.min.bytes", "1");
    set(c, "fetch.message.max.bytes", "8388608");
    set(c, "fetch.max.bytes", "52428800");
    set(c, "queued.max.messages.kbytes", "262144");
    set_overrides(c, "BENCH_CONSUMER_CONF");
    return make(RD_KAFKA_CONSUMER, c);
}

static int partitions_of(rd_kafka_t *rk, const char *topic)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md;
    if (rd_kafka_metadata(rk, 0, rkt, &md, 10000))
        die("metadata", topic);
    int n = md->topic_cnt == 1 ? md->topics[0].partition_cnt : 0;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    if (n <= 0)
        die("metadata", "no such topic");
    return n;
}

static int cmd_consume(const char *topic)
{
    rd_kafka_t *rk = make_consumer("100");
    int n = partitions_of(rk, topic);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
    int64_t total = 0;
    int64_t *high = calloc((size_t)n, sizeof(*high));
    for (int p = 0; p < n; p++) {
        int64_t lo;
        if (rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &high[p], 10000))
            die("watermarks", topic);
        total += high[p] - lo;
        rd_kafka_topic_partition_list_add(l, topic, p)->offset = lo;
    }
    rd_kafka_assign(rk, l);
    /* The batch interface: one call hands over up to 10 000 messages from the client's queue. */
    rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(rk);
    rd_kafka_message_t **batch = calloc(10000, sizeof(*batch));
    int64_t got = 0, bytes = 0, start = now_ns(), deadline = start + 300 * 1000000000LL;
    while (got < total && now_ns() < deadline) {
        ssize_t k = rd_kafka_consume_batch_queue(q, 1000, batch, 10000);
        if (k < 0)
            die("consume", rd_kafka_err2str(rd_kafka_last_error()));
        for (ssize_t i = 0; i < k; i++) {
            rd_kafka_message_t *m = batch[i];
            if (m->err)
                die("consume", rd_kafka_message_errstr(m));
            if (m->offset < high[m->partition]) {
                got++;
                bytes += (int64_t)m->len;
            }
            rd_kafka_message_destroy(m);
        }
    }
    free(batch);
    rd_kafka_queue_destroy(q);
    double secs = (double)(now_ns() - start) / 1e9;
    if (got < total)
        die("consume", "did not read everything within 300 s");
    printf("consume %.0f %.1f %" PRId64 "\n", (double)got / secs, (double)bytes / secs / 1e6,
           got);
    rd_kafka_topic_partition_list_destroy(l);
    free(high);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */

static void put16(uint8_t **p, int16_t v)
{
    uint16_t x = htons((uint16_t)v);
    memcpy(*p, &x, 2);
    *p += 2;
}

static void put32(uint8_t **p, int32_t v)
{
    uint32_t x = htonl((uint32_t)v);
    memcpy(*p, &x, 4);
    *p += 4;
}

static void put64(uint8_t **p, int64_t v)
{
    put32(p, (int32_t)((uint64_t)v >> 32));
    put32(p, (int32_t)(uint32_t)v);
}

static int64_t get(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return n == 2 ? (int16_t)v : n == 4 ? (int32_t)v : (int64_t)v;
}

static void read_all(int fd, uint8_t *p, size_t n)
{
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r <= 0)
            die("rawfetch", "connection closed");
        p += r;
        n -= (size_t)r;
    }
}

static int cmd_rawfetch(const char *topic, int nparts)
{
    rd_kafka_t *rk = make_consumer("100");
    int64_t *off = calloc((size_t)nparts, sizeof(*off)), *high = calloc((size_t)nparts, 8);
    for (int p = 0; p < nparts; p++)
        if (rd_kafka_query_watermark_offsets(rk, topic, p, &off[p], &high[p], 10000))
            die("watermarks", topic);
    rd_kafka_destroy(rk);
    char host[256];
    snprintf(host, sizeof(host), "%s", bootstrap);
    char *colon = strrchr(host, ':');
    if (!colon)
        die("rawfetch", "BOOTSTRAP must be HOST:PORT");
    *colon = 0;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    inet_pton(AF_INET, host, &sa.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
        die("rawfetch", "cannot connect");
    size_t cap = 64 << 20;
    uint8_t *buf = malloc(cap), req[4096];
    int64_t bytes = 0, start = now_ns(), deadline = start + 300 * 1000000000LL;
    for (int32_t corr = 1; now_ns() < deadline; corr++) {
        int open = 0;
        for (int p = 0; p < nparts; p++)
            open += off[p] < high[p];
        if (!open)
            break;
        uint8_t *w = req + 4;
        put16(&w, 1); /* Fetch */
        put16(&w, 4);
        put32(&w, corr);
        put16(&w, 3);
        memcpy(w, "raw", 3);
        w += 3;
        put32(&w, -1);      /* replica */
        put32(&w, 100);     /* max wait */
        put32(&w, 1);       /* min bytes */
        put32(&w, 52428800); /* max bytes */
        *w++ = 0;           /* isolation */
        put32(&w, 1);
        put16(&w, (int16_t)strlen(topic));
        memcpy(w, topic, strlen(topic));
        w += strlen(topic);
        put32(&w, open);
        for (int p = 0; p < nparts; p++)
            if (off[p] < high[p]) {
                put32(&w, p);
                put64(&w, off[p]);
                put32(&w, 8388608);
            }
        uint8_t *size = req;
        put32(&size, (int32_t)(w - req - 4));
        if (write(fd, req, (size_t)(w - req)) != w - req)
            die("rawfetch", "write");
        uint8_t hdr[4];
        read_all(fd, hdr, 4);
        size_t n = (size_t)get(hdr, 4);
        if (n > cap)
            die("rawfetch", "response above 64 MiB");
        read_all(fd, buf, n);
        /* corr, throttle, [topic [partition, error, hw, lso, aborted[], records]] */
        const uint8_t *r = buf + 8;
        int32_t nt = (int32_t)get(r, 4);
        r += 4;
        for (int32_t t = 0; t < nt; t++) {
            r += 2 + get(r, 2);
            int32_t np = (int32_t)get(r, 4);
            r += 4;
            for (int32_t k = 0; k < np; k++) {
                int32_t part = (int32_t)get(r, 4);
                if (get(r + 4, 2) != 0)
                    die("rawfetch", "partition error");
                r += 4 + 2 + 8 + 8;
                int32_t na = (int32_t)get(r, 4);
                r += 4 + (na > 0 ? na * 16 : 0);
                int32_t len = (int32_t)get(r, 4);
                r += 4;
                /* Walk the batch headers: base offset, length, last offset delta. */
                for (int32_t pos = 0; pos + 61 <= len;) {
                    int64_t base = get(r + pos, 8);
                    int32_t blen = (int32_t)get(r + pos + 8, 4);
                    if (pos + 12 + blen > len)
                        break; /* a partial batch at the end */
                    int64_t last = base + get(r + pos + 23, 4);
                    if (last >= off[part])
                        off[part] = last + 1;
                    bytes += 12 + blen;
                    pos += 12 + blen;
                }
                r += len > 0 ? len : 0;
            }
        }
    }
    double secs = (double)(now_ns() - start) / 1e9;
    for (int p = 0; p < nparts; p++)
        if (off[p] < high[p])
            die("rawfetch", "did not read everything within 300 s");
    printf("rawfetch %.1f %" PRId64 "\n", (double)bytes / secs / 1e6, bytes);
    close(fd);
    free(buf);
    free(off);
    free(high);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */

typedef struct lat_state {
    rd_kafka_t *consumer;
    int64_t expect;
    int64_t *lat_ns;
    int64_t n;
    volatile int stop;
} lat_state;

static void *lat_consumer(void *arg)
{
    lat_state *s = arg;
    while (!s->stop && s->n < s->expect) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(s->consumer, 100);
        if (!m)
            continue;
        int64_t t = now_ns();
        if (!m->err && m->len >= 8) {
            int64_t sent;
            memcpy(&sent, m->payload, 8);
            s->lat_ns[s->n++] = t - sent;
        }
        rd_kafka_message_destroy(m);
    }
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmd_latency(const char *topic, int rate, double seconds)
{
    rd_kafka_conf_t *c = base_conf();
    set(c, "acks", "1");
    set(c, "linger.ms", "0");
    rd_kafka_conf_set_dr_msg_cb(c, on_delivery);
    rd_kafka_t *prod = make(RD_KAFKA_PRODUCER, c);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(prod, topic, NULL);
    char value[64];
    memset(value, 'x', sizeof(value));
    /* Warm up the producer before the consumer starts at the end of the partition. */
    rd_kafka_produce(rkt, 0, RD_KAFKA_MSG_F_COPY, value, sizeof(value), NULL, 0, NULL);
    rd_kafka_flush(prod, 10000);

    lat_state s = {0};
    s.consumer = make_consumer("500");
    s.expect = (int64_t)(rate * seconds);
    s.lat_ns = calloc((size_t)s.expect + 1, sizeof(int64_t));
    int64_t lo, hi;
    if (rd_kafka_query_watermark_offsets(s.consumer, topic, 0, &lo, &hi, 10000))
        die("watermarks", topic);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, 0)->offset = hi;
    rd_kafka_assign(s.consumer, l);
    rd_kafka_topic_partition_list_destroy(l);
    pthread_t th;
    pthread_create(&th, NULL, lat_consumer, &s);
    /* Let the consumer's first fetch start (it then long-polls at the end of the log). */
    struct timespec settle = {0, 500000000};
    nanosleep(&settle, NULL);

    int64_t period = 1000000000LL / rate, next = now_ns();
    for (int64_t i = 0; i < s.expect; i++) {
        struct timespec ts = {(time_t)(next / 1000000000), (long)(next % 1000000000)};
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
        int64_t t = now_ns();
        memcpy(value, &t, 8);
        if (rd_kafka_produce(rkt, 0, RD_KAFKA_MSG_F_COPY, value, sizeof(value), NULL, 0, NULL))
            die("produce", rd_kafka_err2str(rd_kafka_last_error()));
        rd_kafka_poll(prod, 0);
        next += period;
    }
    rd_kafka_flush(prod, 10000);
    int64_t deadline = now_ns() + 10000000000LL;
    while (s.n < s.expect && now_ns() < deadline) {
        struct timespec w = {0, 10000000};
        nanosleep(&w, NULL);
    }
    s.stop = 1;
    pthread_join(th, NULL);
    if (s.n < s.expect)
        die("latency", "not every event was received within 10 s");
    qsort(s.lat_ns, (size_t)s.n, sizeof(int64_t), cmp_i64);
    printf("latency %.0f %.0f %.0f %" PRId64 "\n", (double)s.lat_ns[s.n / 2] / 1e3,
           (double)s.lat_ns[s.n * 99 / 100] / 1e3, (double)s.lat_ns[s.n * 999 / 1000] / 1e3,
           s.n);
    free(s.lat_ns);
    rd_kafka_consumer_close(s.consumer);
    rd_kafka_destroy(s.consumer);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(prod);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: bench_kafka BOOTSTRAP create|produce|producefile|consume|"
                        "rawfetch|latency TOPIC ...\n"
                        "(see the comment at the top of bench/bench_kafka.c)\n");
        return 2;
    }
    bootstrap = argv[1];
    const char *cmd = argv[2], *topic = argv[3];
    if (!strcmp(cmd, "create") && argc >= 5)
        return cmd_create(topic, atoi(argv[4]), argc - 5, argv + 5);
    if (!strcmp(cmd, "produce") && argc == 7)
        return cmd_produce(topic, (size_t)atol(argv[4]), argv[5], atof(argv[6]));
    if (!strcmp(cmd, "producefile") && argc == 7)
        return cmd_producefile(topic, argv[4], argv[5], atof(argv[6]));
    if (!strcmp(cmd, "consume") && argc == 4)
        return cmd_consume(topic);
    if (!strcmp(cmd, "rawfetch") && argc == 5)
        return cmd_rawfetch(topic, atoi(argv[4]));
    if (!strcmp(cmd, "latency") && argc == 6)
        return cmd_latency(topic, atoi(argv[4]), atof(argv[5]));
    fprintf(stderr, "bench_kafka: bad arguments for %s\n", cmd);
    return 2;
}
