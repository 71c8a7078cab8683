/*
 * otlp.c: the OTLP/HTTP exporter's queue and thread (otlp.h, docs/otlp-export.md).
 *
 * The queue is a ring of slots allocated at the start, each a span with room for its strings:
 * otlp_span copies into the slot after the last under the mutex (no allocation, no wait on
 * anything but that copy) or counts a drop when all are taken. The thread takes up to a batch
 * of slots from the head, encodes and posts them without the lock (producers write only past
 * them), then gives them back. libcurl makes the requests, one reused handle (keep-alive).
 */
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "broker/otlp.h"
#include "tidings.h"

/* A span in the queue: its record, whose strings point into text. */
#define SLOT_TEXT 448
typedef struct slot {
    otlp_span_rec r;
    char text[SLOT_TEXT];
} slot;

#define MAX_RES_ATTRS 16
#define BACKOFF_MAX_MS 5000

struct otlp_exporter {
    otlp_config cfg;
    char url[sizeof(((otlp_config *)0)->endpoint) + 16];
    struct curl_slist *hdrs;
    CURL *curl;
    /* The resource: service.name, service.instance.id, host.name, then otlp.resource.attributes
     * (their text in res_text). */
    otlp_attr res[MAX_RES_ATTRS];
    size_t nres;
    char res_text[sizeof(((otlp_config *)0)->resource_attrs)];
    char instance_id[40], host[256];
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC: a full batch, or stopping */
    slot *q;
    size_t cap, batch, head, count; /* under mu */
    bool stopping;                  /* under mu */
    int64_t stop_end_ns;            /* atomic: when stopping, the monotonic end of the last flush */
    pthread_t th;
    bool running;        /* th was started */
    td_buf body;         /* the thread's */
    otlp_span_rec *recs; /* the thread's: batch entries */
    td_metric *m_exported, *m_full, *m_failed, *m_shutdown, *m_posts_failed, *m_queue;
};

/* ---------------------------------------------------------------------------------------------
 * Queueing
 */
/* Copies s[0..n) and a NUL into t at *at; returns the copy, or NULL when fewer than 2 bytes are
 * left. Cuts what does not fit (*len gets the copied length). */
static const char *copy_text(char *t, size_t *at, const char *s, size_t n, size_t *len)
{
    if (*at + 2 > SLOT_TEXT)
        return NULL;
    size_t k = TD_MIN(n, SLOT_TEXT - *at - 1);
    char *d = t + *at;
    memcpy(d, s, k);
    d[k] = 0;
    *at += k + 1;
    if (len)
        *len = k;
    return d;
}

void otlp_span(otlp_exporter *x, const otlp_span_rec *span)
{
    pthread_mutex_lock(&x->mu);
    if (x->count == x->cap || x->stopping) {
        pthread_mutex_unlock(&x->mu);
        td_counter_add(x->m_full, 1);
        return;
    }
    slot *sl = &x->q[(x->head + x->count) % x->cap];
    otlp_span_rec *r = &sl->r;
    *r = *span;
    size_t at = 0;
    const char *name = span->name ? span->name : "";
    r->name = copy_text(sl->text, &at, name, strlen(name), NULL);
    r->nattrs = 0;
    for (size_t i = 0; i < TD_MIN(span->nattrs, (size_t)OTLP_MAX_ATTRS); i++) {
        const otlp_attr *a = &span->attrs[i];
        otlp_attr *d = &r->attrs[r->nattrs];
        *d = *a;
        d->key = copy_text(sl->text, &at, a->key, strlen(a->key), NULL);
        if (a->str)
            d->str = copy_text(sl->text, &at, a->str, a->str_len, &d->str_len);
        if (d->key && (d->str || !a->str))
            r->nattrs++;
    }
    if (span->status_message)
        r->status_message =
            copy_text(sl->text, &at, span->status_message, strlen(span->status_message), NULL);
    x->count++;
    td_gauge_add(x->m_queue, 1);
    if (x->count == x->batch)
        pthread_cond_signal(&x->cv);
    pthread_mutex_unlock(&x->mu);
}

/* ---------------------------------------------------------------------------------------------
 * Posting
 */
static size_t discard(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

/* libcurl's progress callback: ends a request in flight once the last flush's time is up. */
static int progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                    curl_off_t ulnow)
{
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    int64_t end = __atomic_load_n(&((otlp_exporter *)arg)->stop_end_ns, __ATOMIC_RELAXED);
    return end && td_mono_ns() > end;
}

static bool retryable(CURLcode rc, long code)
{
    if (rc != CURLE_OK)
        return rc != CURLE_URL_MALFORMAT && rc != CURLE_UNSUPPORTED_PROTOCOL &&
               rc != CURLE_OUT_OF_MEMORY;
    return code == 429 || code == 502 || code == 503 || code == 504;
}

/* Waits up to ms on the condition (the caller holds mu); returns early when stopping starts. */
static void wait_ms(otlp_exporter *x, int64_t ms)
{
    struct timespec ts = td_deadline_ns(CLOCK_MONOTONIC, ms * 1000000);
    bool was = x->stopping;
    while (x->stopping == was && pthread_cond_timedwait(&x->cv, &x->mu, &ts) != ETIMEDOUT)
        ;
}

/*
 * Posts body, retrying what OTLP calls retryable up to cfg.retries times with exponential
 * backoff; once stopping, the end of the last flush bounds the whole. Called and returns with
 * mu held, which it drops during requests and backoffs. true once the collector took it.
 */
static bool post(otlp_exporter *x)
{
    for (int64_t attempt = 0;; attempt++) {
        int64_t timeout = x->cfg.timeout_ms;
        int64_t end_ns = x->stopping ? x->stop_end_ns : 0;
        if (end_ns) {
            int64_t left = (end_ns - td_mono_ns()) / 1000000;
            if (left <= 0)
                return false;
            timeout = TD_MIN(timeout, left);
        }
        pthread_mutex_unlock(&x->mu);
        curl_easy_setopt(x->curl, CURLOPT_POSTFIELDS, (const char *)x->body.p);
        curl_easy_setopt(x->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->body.len);
        curl_easy_setopt(x->curl, CURLOPT_TIMEOUT_MS, (long)timeout);
        CURLcode rc = curl_easy_perform(x->curl);
        long code = 0;
        if (rc == CURLE_OK)
            curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &code);
        pthread_mutex_lock(&x->mu);
        if (rc == CURLE_OK && code >= 200 && code < 300)
            return true;
        td_counter_add(x->m_posts_failed, 1);
        bool again = retryable(rc, code) && attempt < x->cfg.retries;
        if (rc != CURLE_OK)
            TD_DEBUG("otlp", "posting %zu bytes of spans failed: %s%s", x->body.len,
                     curl_easy_strerror(rc), again ? " (retrying)" : "");
        else
            TD_DEBUG("otlp", "the collector answered %ld%s", code, again ? " (retrying)" : "");
        if (!again)
            return false;
        int64_t backoff = TD_MIN((int64_t)BACKOFF_MAX_MS, (int64_t)100 << TD_MIN(attempt, 6));
        uint8_t r;
        td_random_id(&r, 1);
        backoff = backoff / 2 + backoff * r / 512; /* jitter: 50 % to 100 % */
        if (x->stopping)
            backoff = TD_MIN(backoff, (x->stop_end_ns - td_mono_ns()) / 1000000);
        if (backoff > 0)
            wait_ms(x, backoff);
    }
}

/* Takes up to a batch from the head, posts it (retries included), gives the slots back. Called
 * and returns with mu held. */
static void export_batch(otlp_exporter *x)
{
    size_t k = TD_MIN(x->count, x->batch), head = x->head;
    pthread_mutex_unlock(&x->mu);
    /* Producers write only past head + count: these slots stay as they are until given back. */
    for (size_t i = 0; i < k; i++)
        x->recs[i] = x->q[(head + i) % x->cap].r;
    td_buf_reset(&x->body);
    int err = otlp_encode(&x->body, x->res, x->nres, x->recs, k);
    pthread_mutex_lock(&x->mu);
    bool ok = !err && post(x);
    x->head = (x->head + k) % x->cap;
    x->count -= k;
    td_gauge_add(x->m_queue, -(int64_t)k);
    td_counter_add(ok ? x->m_exported : x->m_failed, k);
    if (!ok)
        TD_WARN("otlp", "%zu spans dropped: the export to %s failed", k, x->url);
}

static void *exporter_main(void *arg)
{
    otlp_exporter *x = arg;
    pthread_mutex_lock(&x->mu);
    while (!x->stopping) {
        struct timespec ts = td_deadline_ns(CLOCK_MONOTONIC, x->cfg.interval_ms * 1000000);
        while (!x->stopping && x->count < x->batch &&
               pthread_cond_timedwait(&x->cv, &x->mu, &ts) != ETIMEDOUT)
            ;
        if (x->stopping)
            break;
        while (x->count > 0 && !x->stopping)
            export_batch(x);
    }
    /* The last flush, within its bound (a request in flight ends at it too); what is left is
     * dropped. */
    while (x->count > 0 && td_mono_ns() < x->stop_end_ns)
        export_batch(x);
    td_counter_add(x->m_shutdown, x->count);
    td_gauge_add(x->m_queue, -(int64_t)x->count);
    x->count = 0;
    pthread_mutex_unlock(&x->mu);
    return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Starting and stopping
 */
static void metrics_init(otlp_exporter *x, td_metrics *m)
{
    if (!m)
        return;
    td_metric_family *f;
    f = td_metrics_family(m, TD_COUNTER, "tidings_otlp_spans_exported_total",
                          "Spans the OTLP collector accepted", NULL, NULL, 0);
    x->m_exported = td_metric_get1(f, NULL);
    f = td_metrics_family(m, TD_COUNTER, "tidings_otlp_spans_dropped_total",
                          "Spans not exported: queue_full, export_failed (after retries) or "
                          "shutdown (left when the last flush ran out of time)",
                          "reason", NULL, 0);
    x->m_full = td_metric_get1(f, "queue_full");
    x->m_failed = td_metric_get1(f, "export_failed");
    x->m_shutdown = td_metric_get1(f, "shutdown");
    f = td_metrics_family(m, TD_COUNTER, "tidings_otlp_posts_failed_total",
                          "OTLP export requests that failed (each attempt, retries included)", NULL,
                          NULL, 0);
    x->m_posts_failed = td_metric_get1(f, NULL);
    f = td_metrics_family(m, TD_GAUGE, "tidings_otlp_queue_spans",
                          "Spans waiting in the OTLP exporter's queue", NULL, NULL, 0);
    x->m_queue = td_metric_get1(f, NULL);
}

/* The resource's attributes: the three the broker knows, then otlp.resource.attributes. */
static void resource_init(otlp_exporter *x)
{
    uint8_t id[16];
    td_random_id(id, sizeof(id));
    id[6] = (uint8_t)((id[6] & 0x0f) | 0x40); /* a version 4 UUID */
    id[8] = (uint8_t)((id[8] & 0x3f) | 0x80);
    char *p = x->instance_id;
    for (int i = 0; i < 16; i++) {
        p += sprintf(p, "%02x", id[i]);
        if (i == 3 || i == 5 || i == 7 || i == 9)
            *p++ = '-';
    }
    if (gethostname(x->host, sizeof(x->host) - 1) != 0)
        snprintf(x->host, sizeof(x->host), "unknown");
    const char *names[] = {"service.name", "service.instance.id", "host.name"};
    const char *vals[] = {x->cfg.service_name, x->instance_id, x->host};
    for (size_t i = 0; i < 3; i++)
        x->res[x->nres++] = (otlp_attr){names[i], vals[i], strlen(vals[i]), 0};
    snprintf(x->res_text, sizeof(x->res_text), "%s", x->cfg.resource_attrs);
    for (char *s = x->res_text, *next; s && *s && x->nres < MAX_RES_ATTRS; s = next) {
        next = strchr(s, ',');
        if (next)
            *next++ = 0;
        char *eq = strchr(s, '=');
        if (!eq)
            continue;
        *eq = 0;
        x->res[x->nres++] = (otlp_attr){s, eq + 1, strlen(eq + 1), 0};
    }
}

/* The request's headers: the content type, then otlp.headers' "name=value" as "name: value". */
static int headers_init(otlp_exporter *x)
{
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    if (h) {
        struct curl_slist *t = curl_slist_append(h, "Expect:"); /* no 100-continue wait */
        if (!t)
            curl_slist_free_all(h);
        h = t;
    }
    char buf[sizeof(x->cfg.headers) + 8];
    for (const char *s = x->cfg.headers; h && *s;) {
        const char *end = strchr(s, ',');
        size_t n = end ? (size_t)(end - s) : strlen(s);
        const char *eq = memchr(s, '=', n);
        if (eq) {
            snprintf(buf, sizeof(buf), "%.*s: %.*s", (int)(eq - s), s, (int)(s + n - eq - 1),
                     eq + 1);
            struct curl_slist *t = curl_slist_append(h, buf);
            if (!t)
                curl_slist_free_all(h);
            h = t;
        }
        s += n + (end != NULL);
    }
    x->hdrs = h;
    return h ? 0 : -ENOMEM;
}

static void curl_global(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* The handle, made once: the URL {endpoint}/v1/traces, the headers, the timeouts. */
static int curl_init(otlp_exporter *x)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, curl_global);
    if (!(x->curl = curl_easy_init()))
        return -ENOMEM;
    size_t n = strlen(x->cfg.endpoint);
    snprintf(x->url, sizeof(x->url), "%.*s/v1/traces",
             (int)(n && x->cfg.endpoint[n - 1] == '/' ? n - 1 : n), x->cfg.endpoint);
    CURL *c = x->curl;
    curl_easy_setopt(c, CURLOPT_URL, x->url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, x->hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)x->cfg.timeout_ms);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "tidings/" TD_VERSION_STRING);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
    return 0;
}

int otlp_new(const otlp_config *cfg, td_metrics *metrics, otlp_exporter **out)
{
    *out = NULL;
    if (!cfg->endpoint[0])
        return td_fail(TD_ECONFIG, "otlp.endpoint is not set");
    otlp_exporter *x = calloc(1, sizeof(*x));
    if (!x)
        return -ENOMEM;
    x->cfg = *cfg;
    x->cap = (size_t)cfg->max_queue_spans;
    x->batch = TD_MIN((size_t)cfg->batch_spans, x->cap);
    x->q = calloc(x->cap, sizeof(*x->q));
    x->recs = calloc(x->batch, sizeof(*x->recs));
    td_buf_init(&x->body);
    pthread_mutex_init(&x->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&x->cv, &ca);
    pthread_condattr_destroy(&ca);
    metrics_init(x, metrics);
    resource_init(x);
    int rc = !x->q || !x->recs ? -ENOMEM : headers_init(x);
    if (rc == 0)
        rc = curl_init(x);
    if (rc == 0 && pthread_create(&x->th, NULL, exporter_main, x) != 0)
        rc = td_fail(-EAGAIN, "cannot start the OTLP exporter's thread");
    x->running = rc == 0;
    if (rc) {
        otlp_free(x);
        return rc;
    }
    TD_INFO("otlp", "exporting spans to %s (queue %zu, batches of %zu every %" PRId64 " ms)",
            x->url, x->cap, x->batch, cfg->interval_ms);
    *out = x;
    return 0;
}

void otlp_free(otlp_exporter *x)
{
    if (!x)
        return;
    if (x->running) {
        pthread_mutex_lock(&x->mu);
        x->stopping = true;
        __atomic_store_n(&x->stop_end_ns, td_mono_ns() + x->cfg.shutdown_timeout_ms * 1000000,
                         __ATOMIC_RELAXED);
        pthread_cond_broadcast(&x->cv);
        pthread_mutex_unlock(&x->mu);
        pthread_join(x->th, NULL);
    }
    if (x->curl)
        curl_easy_cleanup(x->curl);
    curl_slist_free_all(x->hdrs);
    td_buf_free(&x->body);
    free(x->recs);
    free(x->q);
    pthread_mutex_destroy(&x->mu);
    pthread_cond_destroy(&x->cv);
    free(x);
}
