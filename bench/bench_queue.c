/*
 * bench_queue.c: queue group throughput over the HTTP API, with libcurl and jansson.
 *
 *   bench_queue URL GROUP CONSUMERS BATCH EVENTS [fail]
 *       CONSUMERS threads, each on its own connection, loop on receive (BATCH events,
 *       wait_ms 1000) and one ack of the batch, until EVENTS events are acked in all (or 300 s
 *       pass). With `fail`, each event's first delivery is nacked (delay 0) instead, so every
 *       event costs one retry. Prints "queue CONSUMERS <events/s> <events> <deliveries>".
 *   bench_queue embedded DIR CONSUMERS BATCH EVENTS [fail]
 *       the same through the embedded API (td_queue_*) on a fresh engine in DIR, which it fills
 *       with EVENTS events of 100 bytes in 16 partitions first: the engine's own cost, without
 *       HTTP and JSON.
 *
 * bench/queue.sh runs it against a fresh `tidings serve`, next to a Kafka consumer group
 * reading the same events (bench_kafka consume), and prints the ratios.
 */
#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tidings.h"

static const char *base, *group;
static int batch;
static int64_t target;
static bool fail;
static atomic_llong acked, deliveries;
static double deadline;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct body {
    char *p;
    size_t n, cap;
} body;

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
    body *b = arg;
    size_t n = size * nmemb;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 65536;
        while (cap < b->n + n + 1)
            cap *= 2;
        b->p = realloc(b->p, cap);
        if (!b->p) {
            fprintf(stderr, "bench_queue: out of memory\n");
            exit(1);
        }
        b->cap = cap;
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
    b->p[b->n] = 0;
    return n;
}

static json_t *post(CURL *c, const char *action, json_t *in)
{
    char url[1024];
    snprintf(url, sizeof(url), "%s/v1/queues/%s/%s", base, group, action);
    char *payload = json_dumps(in, JSON_COMPACT);
    body b = {0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    CURLcode cc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    free(payload);
    if (cc != CURLE_OK || status != 200) {
        fprintf(stderr, "bench_queue: %s: %s %ld %s\n", action, curl_easy_strerror(cc), status,
                b.p ? b.p : "");
        exit(1);
    }
    json_t *j = json_loadb(b.p, b.n, 0, NULL);
    free(b.p);
    return j;
}

static void *consumer(void *arg)
{
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    char name[32];
    snprintf(name, sizeof(name), "bench-%d", (int)(intptr_t)arg);
    json_t *req = json_pack("{s:i,s:i,s:s,s:s}", "max", batch, "wait_ms", 1000, "consumer", name,
                            "values", "string");
    while (atomic_load(&acked) < target && now_s() < deadline) {
        json_t *got = post(c, "receive", req);
        json_t *evs = json_object_get(got, "events"), *ev;
        json_t *ack = json_array(), *nack = json_array();
        size_t i;
        json_array_foreach(evs, i, ev)
        {
            json_t *id = json_object_get(ev, "id");
            bool first = json_integer_value(json_object_get(ev, "deliveries")) == 1;
            json_array_append(fail && first ? nack : ack, id);
        }
        atomic_fetch_add(&deliveries, (long long)json_array_size(evs));
        if (json_array_size(ack)) {
            json_decref(post(c, "ack", json_pack("{s:O}", "ids", ack)));
            atomic_fetch_add(&acked, (long long)json_array_size(ack));
        }
        if (json_array_size(nack))
            json_decref(post(c, "nack", json_pack("{s:O,s:i}", "ids", nack, "delay_ms", 0)));
        json_decref(ack);
        json_decref(nack);
        json_decref(got);
    }
    json_decref(req);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return NULL;
}

static td_engine *eng;

static void *embedded_consumer(void *arg)
{
    char name[32];
    snprintf(name, sizeof(name), "bench-%d", (int)(intptr_t)arg);
    const char **ack = malloc((size_t)batch * sizeof(*ack)), **nack = malloc((size_t)batch * sizeof(*nack));
    while (atomic_load(&acked) < target && now_s() < deadline) {
        td_queue_msg *m;
        size_t n = 0, na = 0, nn = 0;
        if (td_queue_receive(eng, group, name, (size_t)batch, &m, &n) != 0) {
            fprintf(stderr, "bench_queue: receive: %s\n", td_last_error());
            exit(1);
        }
        for (size_t i = 0; i < n; i++) {
            if (fail && m[i].deliveries == 1)
                nack[nn++] = m[i].id;
            else
                ack[na++] = m[i].id;
        }
        atomic_fetch_add(&deliveries, (long long)n);
        if ((na && td_queue_ack(eng, group, ack, na, NULL) != 0) ||
            (nn && td_queue_nack(eng, group, nack, nn, 0, NULL, NULL) != 0)) {
            fprintf(stderr, "bench_queue: ack: %s\n", td_last_error());
            exit(1);
        }
        atomic_fetch_add(&acked, (long long)na);
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
    if (td_engine_open(dir, &o, &eng) != 0) {
        fprintf(stderr, "bench_queue: %s\n", td_last_error());
        exit(1);
    }
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
        if (td_produce(eng, "bench", ev, n, NULL) != 0) {
            fprintf(stderr, "bench_queue: produce: %s\n", td_last_error());
            exit(1);
        }
        done += (int64_t)n;
    }
    td_queue_policy p;
    td_queue_policy_init(&p);
    td_config_entry pol[] = {{"max.in.flight", "20000"}, {"max.in.flight.per.consumer", "1000"},
                             {"backoff.initial.ms", "0"}};
    td_queue_policy_apply(&p, pol, 3);
    if (td_queue_create(eng, group, "bench", &p) != 0) {
        fprintf(stderr, "bench_queue: %s\n", td_last_error());
        exit(1);
    }
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: bench_queue URL GROUP CONSUMERS BATCH EVENTS [fail]\n");
        return 2;
    }
    bool embedded = !strcmp(argv[1], "embedded");
    base = argv[1];
    group = embedded ? "bench" : argv[2];
    int n = atoi(argv[3]);
    batch = atoi(argv[4]);
    target = atoll(argv[5]);
    fail = argc > 6 && !strcmp(argv[6], "fail");
    if (n < 1 || n > 256 || batch < 1 || batch > 1000 || target < 1) {
        fprintf(stderr, "bench_queue: bad arguments\n");
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (embedded)
        embedded_setup(argv[2]);
    pthread_t *t = calloc((size_t)n, sizeof(*t));
    double t0 = now_s();
    deadline = t0 + 300;
    for (int i = 0; i < n; i++)
        pthread_create(&t[i], NULL, embedded ? embedded_consumer : consumer,
                       (void *)(intptr_t)i);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    double secs = now_s() - t0;
    if (atomic_load(&acked) < target) {
        fprintf(stderr, "bench_queue: only %lld of %" PRId64 " events acked in 300 s\n",
                (long long)atomic_load(&acked), target);
        return 1;
    }
    printf("queue %d %.0f %lld %lld\n", n, (double)atomic_load(&acked) / secs,
           (long long)atomic_load(&acked), (long long)atomic_load(&deliveries));
    free(t);
    if (embedded)
        td_engine_close(eng);
    curl_global_cleanup();
    return 0;
}
