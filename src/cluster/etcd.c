/*
 * etcd.c: the transport of etcd.h. Each client owns one curl easy handle, so its connection is
 * kept between calls; the watch runs it under a multi handle, polled every 100 ms so that a
 * stop is seen at once whether or not etcd sends anything.
 */
#include "cluster/etcd.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "tidings.h"

/* An answer bigger than this is not one of ours (etcd's own request limit is 1.5 MiB). */
#define ETCD_MAX_ANSWER (8u << 20)
/* A watch line: one revision's events, or a fragment of them. */
#define ETCD_MAX_LINE (8u << 20)

static void curl_global(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* The request headers (made once per client); a watch also asks etcd to fail it when its
 * member has no leader (a member cut off from the quorum would otherwise keep the stream open
 * and silent). */
static struct curl_slist *json_headers(bool watch)
{
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    if (h && watch) {
        struct curl_slist *more = curl_slist_append(h, "Grpc-Metadata-hasleader: true");
        if (!more) {
            curl_slist_free_all(h);
            return NULL;
        }
        h = more;
    }
    return h;
}

int etcd_client_init(etcd_client *c, const char *hosts, int64_t timeout_ms)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, curl_global);
    memset(c, 0, sizeof(*c));
    td_buf_init(&c->in);
    c->timeout_ms = timeout_ms;
    const char *p = hosts;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == 0 || n > 255 || c->nendpoints == ETCD_ENDPOINTS_MAX || !memchr(p, ':', n))
            return td_fail(TD_ECONFIG,
                           "cluster.coordinator: '%.*s' is not HOST:PORT (at most "
                           "%d of them, comma-separated)",
                           (int)n, p, ETCD_ENDPOINTS_MAX);
        snprintf(c->endpoints[c->nendpoints++], sizeof(c->endpoints[0]), "http://%.*s", (int)n, p);
        p += n + (end != NULL);
    }
    if (c->nendpoints == 0)
        return td_fail(TD_ECONFIG, "cluster.coordinator: no etcd endpoint");
    c->headers = json_headers(false);
    c->watch_headers = json_headers(true);
    CURL *h = c->headers && c->watch_headers ? curl_easy_init() : NULL;
    if (!h)
        return -ENOMEM; /* the caller frees what was made (etcd_client_free) */
    c->curl = h;
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http");
    curl_easy_setopt(h, CURLOPT_USERAGENT, "tidings/" TD_VERSION_STRING);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, 5L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, 2L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)TD_MIN(timeout_ms, 1000));
    return 0;
}

void etcd_client_free(etcd_client *c)
{
    if (c->curl)
        curl_easy_cleanup(c->curl);
    curl_slist_free_all(c->headers);
    curl_slist_free_all(c->watch_headers);
    c->curl = c->headers = c->watch_headers = NULL;
    td_buf_free(&c->in);
}

static size_t collect(char *p, size_t size, size_t n, void *arg)
{
    td_buf *b = arg;
    if (b->len + n > ETCD_MAX_ANSWER || td_buf_append(b, p, n) != 0)
        return 0; /* fails the transfer */
    (void)size;
    return n;
}

/* Points the handle at path on the current endpoint, with req as the body. */
static void prepare(etcd_client *c, const char *path, const td_buf *req, struct curl_slist *hdrs)
{
    char url[512];
    snprintf(url, sizeof(url), "%s%s", c->endpoints[c->current], path);
    CURL *h = c->curl;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, (const char *)req->p);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->len);
}

/* A transport failure: the next call goes to the next endpoint. */
static int failed(etcd_client *c, const char *what)
{
    snprintf(c->error, sizeof(c->error), "%s: %s", c->endpoints[c->current], what);
    c->current = (c->current + 1) % c->nendpoints;
    return -EIO;
}

int etcd_call(etcd_client *c, const char *path, const td_buf *req, etcd_resp *resp)
{
    memset(resp, 0, sizeof(*resp));
    td_buf_reset(&c->in);
    prepare(c, path, req, c->headers);
    CURL *h = c->curl;
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &c->in);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
    CURLcode rc = curl_easy_perform(h);
    if (rc != CURLE_OK)
        return failed(c, curl_easy_strerror(rc));
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    if (etcd_parse_resp((const char *)c->in.p, c->in.len, resp) != 0) {
        char why[64];
        snprintf(why, sizeof(why), "HTTP %ld with a body that is not etcd's", code);
        return failed(c, why);
    }
    return 0;
}

/* The watch's state while the stream runs. */
typedef struct watch_run {
    etcd_lines lines;
    int (*on_msg)(void *arg, etcd_watch_msg *m);
    void *arg;
    int rc; /* on_msg's nonzero result, or the stream's failure */
} watch_run;

static int watch_line(void *arg, const char *p, size_t n)
{
    watch_run *w = arg;
    etcd_watch_msg m;
    if (etcd_parse_watch_line(p, n, &m) != 0)
        return TD_EPROTO;
    int rc = w->on_msg(w->arg, &m);
    etcd_watch_msg_free(&m);
    return rc;
}

static size_t watch_data(char *p, size_t size, size_t n, void *arg)
{
    watch_run *w = arg;
    (void)size;
    if (w->rc)
        return 0;
    int rc = etcd_lines_feed(&w->lines, p, n, watch_line, w);
    if (rc) {
        w->rc = rc;
        return 0;
    }
    return n;
}

int etcd_watch(etcd_client *c, const td_buf *req, int (*on_msg)(void *arg, etcd_watch_msg *m),
               bool (*stop)(void *arg), void *arg)
{
    CURLM *multi = curl_multi_init();
    if (!multi)
        return -ENOMEM;
    watch_run w = {.on_msg = on_msg, .arg = arg};
    etcd_lines_init(&w.lines, ETCD_MAX_LINE);
    prepare(c, "/v3/watch", req, c->watch_headers);
    CURL *h = c->curl;
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, watch_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &w);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 0L);
    curl_multi_add_handle(multi, h);
    int running = 1, rc = 0;
    while (running && !(rc = w.rc)) {
        if (stop(arg))
            break;
        CURLMcode mc = curl_multi_perform(multi, &running);
        if (mc == CURLM_OK && running)
            mc = curl_multi_poll(multi, NULL, 0, 100, NULL);
        if (mc != CURLM_OK) {
            rc = failed(c, curl_multi_strerror(mc));
            break;
        }
    }
    if (!rc && !running && !stop(arg)) {
        /* The stream ended: etcd went away, or closed it. */
        CURLcode done = CURLE_OK;
        int left;
        for (CURLMsg *m; (m = curl_multi_info_read(multi, &left)) != NULL;)
            if (m->msg == CURLMSG_DONE)
                done = m->data.result;
        rc = failed(c, done != CURLE_OK ? curl_easy_strerror(done) : "the watch stream ended");
    }
    curl_multi_remove_handle(multi, h);
    curl_multi_cleanup(multi);
    etcd_lines_free(&w.lines);
    return rc;
}
