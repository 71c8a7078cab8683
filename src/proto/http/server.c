/*
 * server.c: the HTTP/1.1 listener on the broker's event loops: framing (keep-alive, pipelining,
 * Content-Length and chunked bodies, Expect: 100-continue, limits and timeouts), JSON responses
 * and errors, and the routes of the REST API (routes.c). See docs/http-api.md.
 *
 * A connection handles one request at a time, in order: the head is parsed from the input
 * buffer and copied (so the parsed request outlives the input), the body is collected, then the
 * request is dispatched and its whole response queued before the next request is read. Pipelined
 * requests therefore answer in order. Anything the parser refuses is answered with its status
 * and a JSON error, and the connection is closed after the answer: its framing cannot be trusted.
 */
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "net/net.h"
#include "broker/queue.h"
#include "proto/http/http_int.h"

enum { PH_HEAD, PH_BODY, PH_CHUNKED };

void http_server_config_default(http_server_config *c)
{
    /* Every field: callers fill a structure on their stack (registry_only, among others, has
     * no default of its own below). */
    *c = (http_server_config){0};
    http_limits_default(&c->limits);
    c->request_timeout_ms = 30000;
    c->idle_timeout_ms = 120000;
    c->default_partitions = 1;
    c->sse_heartbeat_ms = 15000;
    c->sse_stall_timeout_ms = 30000;
    snprintf(c->registry_prefix, sizeof(c->registry_prefix), "/registry");
    c->registry_only = false;
}

void http_server_set_registry_port(http_server *s, int port)
{
    s->registry_port = port;
}

int http_server_create(td_engine *e, const http_server_config *cfg, http_server **out)
{
    http_server *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->e = e;
    s->cfg = *cfg;
    td_metrics *m = broker_metrics(e);
    broker_request_metrics(e, &s->f_requests, &s->f_latency);
    s->f_responses = td_metrics_family(m, TD_COUNTER, "tidings_http_responses_total",
                                       "HTTP responses, by status code.", "code", NULL, 0);
    s->f_denied = td_metrics_family(m, TD_COUNTER, "tidings_security_denied_total",
                                    "Requests refused by a security check, by protocol and reason.",
                                    "protocol,reason", NULL, 0);
    s->f_auth_failures =
        td_metrics_family(m, TD_COUNTER, "tidings_auth_failures_total",
                          "Failed authentications, by protocol and mechanism.",
                          "protocol,mechanism", NULL, 0);
    if (http_auth_cache_create(s) != 0) {
        free(s);
        return -ENOMEM;
    }
    pthread_mutex_init(&s->jobs_mu, NULL);
    int rc = net_waitset_create(&s->subs);
    if (rc == 0)
        rc = net_waitset_create(&s->waits);
    if (rc == 0)
        rc = http_replies_new(&s->replies);
    if (rc == 0)
        rc = broker_add_advance_hook(e, http_sse_on_advance, s);
    if (rc) {
        http_auth_cache_destroy(s);
        net_waitset_destroy(s->subs);
        net_waitset_destroy(s->waits);
        http_replies_free(s->replies);
        pthread_mutex_destroy(&s->jobs_mu);
        free(s);
        return rc;
    }
    s->hooked = true;
    queue_set_notify(e, http_queues_wake, s);
    *out = s;
    return 0;
}

/* Counts a response: per route (method and template) and per status. Methods outside the
 * standard ones count as OTHER, and requests that matched no route as one series, so that
 * clients cannot grow the number of series. */
static void count_response(hconn *hc, int status)
{
    static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE",
                                          "OPTIONS"};
    const char *m = "OTHER";
    for (size_t i = 0; i < TD_ARRAY_LEN(methods); i++)
        if (http_method_is(hc, methods[i]))
            m = methods[i];
    char api[96];
    if (hc->route)
        snprintf(api, sizeof(api), "%s %s", m, hc->route);
    else
        snprintf(api, sizeof(api), "%s", hc->t0 ? "unmatched" : "refused");
    const char *labels[] = {"http", api};
    td_counter_add(td_metric_get(hc->s->f_requests, labels), 1);
    if (hc->t0)
        td_histogram_observe(td_metric_get(hc->s->f_latency, labels), td_mono_ns() - hc->t0);
    char code[8];
    snprintf(code, sizeof(code), "%d", status);
    td_counter_add(td_metric_get1(hc->s->f_responses, code), 1);
    http_quota_record(hc); /* the request's traffic, under its principal's quotas */
    hc->t0 = 0; /* a refusal before the next request is dispatched is not this one's */
    hc->route = NULL;
}

void http_server_destroy(http_server *s)
{
    if (!s)
        return;
    if (s->hooked) {
        broker_remove_advance_hook(s->e, http_sse_on_advance, s);
        queue_set_notify(s->e, NULL, NULL);
    }
    http_redrives_stop(s);
    http_auth_cache_destroy(s);
    net_waitset_destroy(s->subs);
    net_waitset_destroy(s->waits);
    http_replies_free(s->replies);
    pthread_mutex_destroy(&s->jobs_mu);
    free(s);
}

bool http_json_time(const json_t *v, int64_t *ms)
{
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *ms = json_integer_value(v);
        return true;
    }
    return json_is_string(v) && http_parse_time(json_string_value(v), ms) == 0;
}

void http_server_stop_work(http_server *s)
{
    if (s)
        http_redrives_stop(s);
}

void http_server_set_ready(http_server *s, bool ready)
{
    __atomic_store_n(&s->ready, ready, __ATOMIC_RELEASE);
}

bool http_server_ready(http_server *s)
{
    return __atomic_load_n(&s->ready, __ATOMIC_ACQUIRE);
}

/* ---------------------------------------------------------------------------------------------
 * Responses
 */
static void free_json_text(void *p)
{
    free(p);
}

/* Writes a response head (status line, framing, extra headers, and Connection: close when
 * close) and records the response: counted, and the connection closing after it when close. */
static void write_head(hconn *hc, int status, const char *framing, const char *extra_headers,
                       bool close)
{
    char head[1024], cors[300];
    cors[http_cors_headers(hc, cors, sizeof(cors))] = 0;
    int n = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\n%s%s%s%s\r\n", status,
                     http_reason(status), framing, extra_headers ? extra_headers : "", cors,
                     close ? "Connection: close\r\n" : "");
    if (n < 0 || (size_t)n >= sizeof(head)) /* our own headers only: cannot happen */
        n = 0;
    net_conn_write(hc->c, head, (size_t)n);
    hc->responded = true;
    hc->last_status = status;
    count_response(hc, status);
    if (close)
        hc->closing = true;
}

void http_respond_raw(hconn *hc, int status, const char *content_type, const char *extra_headers,
                      char *body, size_t len)
{
    char framing[160] = "";
    if (status != 204 && status != 304)
        snprintf(framing, sizeof(framing), "Content-Type: %s\r\nContent-Length: %zu\r\n",
                 content_type, len);
    hc->resp_bytes += len; /* before write_head, which records the request's traffic */
    write_head(hc, status, framing, extra_headers, !hc->req.keep_alive || hc->closing);
    if (body && len && !http_method_is(hc, "HEAD"))
        net_conn_write_owned(hc->c, body, len, free_json_text);
    else
        free(body);
}

void http_respond_stream_head(hconn *hc, int status, const char *content_type,
                              const char *extra_headers)
{
    /* HTTP/1.1: a chunked body; HTTP/1.0: the body ends with the connection. */
    bool chunked = hc->req.minor >= 1;
    char framing[160];
    snprintf(framing, sizeof(framing), "Content-Type: %s\r\n%s", content_type,
             chunked ? "Transfer-Encoding: chunked\r\n" : "");
    write_head(hc, status, framing, extra_headers, !chunked);
    hc->closing = true; /* nothing follows a stream on this connection */
}

char *http_json_dumps(const json_t *j, size_t flags)
{
    char *text = json_dumps(j, flags);
    if (text)
        td_json_shorten_reals(text, strlen(text));
    return text;
}

void http_release_memory(size_t bytes)
{
    /* glibc keeps freed memory in its arenas (one per loop thread) for later allocations;
     * after a large body that can be hundreds of megabytes that no one will use again. The
     * trim walks the arenas, which costs far less than the request did. */
    if (bytes >= (1u << 20))
        malloc_trim(0);
}

/* The body of an error response when jansson cannot build one (out of memory): code and
 * status are ours, so plain formatting is valid JSON. */
static void respond_error_fallback(hconn *hc, int status, const char *code)
{
    char *text = malloc(160);
    int n = text ? snprintf(text, 160,
                            "{\"error\":{\"code\":\"%s\",\"message\":\"%s\",\"status\":%d}}\n",
                            code, http_reason(status), status)
                 : 0;
    http_respond_raw(hc, status, "application/json", NULL, text, n > 0 ? (size_t)n : 0);
}

void http_respond_json(hconn *hc, int status, json_t *body, const char *extra_headers)
{
    if (!body && status != 204) {
        /* A handler could not build its answer (jansson refuses strings that are not UTF-8, and
         * fails when out of memory): every answer but 204 carries a JSON body. */
        return respond_error_fallback(hc, 500, "internal");
    }
    char *text = body ? http_json_dumps(body, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref(body);
    size_t len = text ? strlen(text) : 0;
    if (body && !text)
        return respond_error_fallback(hc, 500, "internal");
    /* A trailing newline makes curl output readable; JSON parsers ignore it. */
    if (text) {
        char *t = realloc(text, len + 2);
        if (t) {
            t[len++] = '\n';
            t[len] = 0;
            text = t;
        }
    }
    http_respond_raw(hc, status, "application/json", extra_headers, text, len);
}

void http_respond_method_not_allowed(hconn *hc, const char *allow)
{
    char extra[128], msg[160];
    snprintf(extra, sizeof(extra), "Allow: %s\r\n", allow);
    snprintf(msg, sizeof(msg), "%.*s is not allowed here; allowed: %s", (int)hc->req.method.n,
             (const char *)hc->req.method.p, allow);
    json_t *e = json_pack("{s:{s:s,s:s,s:i}}", "error", "code", "method_not_allowed", "message",
                          msg, "status", 405);
    http_respond_json(hc, 405, e, extra);
}

void http_respond_error(hconn *hc, int status, const char *code, const char *message)
{
    /* Messages quote what clients sent (a topic name from the path, a pattern): bytes that are
     * not UTF-8 are shown as \xHH, since jansson refuses them. */
    char clean[1024];
    http_utf8_clean(message ? message : http_reason(status), clean, sizeof(clean));
    json_t *e =
        json_pack("{s:{s:s,s:s,s:i}}", "error", "code", code, "message", clean, "status", status);
    if (!e)
        return respond_error_fallback(hc, status, code);
    http_respond_json(hc, status, e, NULL);
}

/* The JSON error code for a td_ error, with its HTTP status. */
/* The status and code for a td_ error. */
static int http_status_of(int rc, const char **code)
{
    switch (rc) {
    case TD_ENOTFOUND:
        *code = "not_found";
        return 404;
    case TD_EEXIST:
        *code = "already_exists";
        return 409;
    case TD_ENAME:
        *code = "invalid_name";
        return 400;
    case TD_ECONFIG:
        *code = "invalid_config";
        return 400;
    case TD_EINVAL:
    case TD_ERANGE:
        *code = "invalid_argument";
        return 400;
    case TD_ETOOBIG:
        *code = "too_large";
        return 413;
    case TD_ENOKEY:
        *code = "invalid_record"; /* a record without a key, for a compacted topic */
        return 400;
    case TD_EVERSION:
        *code = "wrong_expected_version";
        return 409;
    case TD_EOFFLINE:
        *code = "partition_offline";
        return 503;
    case -ENOSPC:
        *code = "insufficient_storage";
        return 507;
    default:
        *code = "internal";
        return 500;
    }
}

void http_respond_td_error(hconn *hc, int rc)
{
    const char *code;
    int status = http_status_of(rc, &code);
    const char *detail = td_last_error();
    http_respond_error(hc, status, code, detail && *detail ? detail : td_strerror(rc));
}

/* ---------------------------------------------------------------------------------------------
 * Connections
 */
static void on_timer(void *arg)
{
    hconn *hc = arg;
    if (hc->in_request) {
        TD_INFO("http", "%s: request not complete after %" PRId64 " ms; closing",
                net_conn_peer(hc->c), hc->s->cfg.request_timeout_ms);
        hc->req.keep_alive = false;
        hc->req.method = td_slice_make("GET", 3);
        http_respond_error(hc, 408, "request_timeout", "the request did not arrive in time");
        net_conn_close(hc->c, false);
    } else {
        net_conn_close(hc->c, false); /* idle keep-alive connection */
    }
}

static void arm(hconn *hc, bool request)
{
    hc->in_request = request;
    net_timer_start(net_conn_loop(hc->c), &hc->timer,
                    request ? hc->s->cfg.request_timeout_ms : hc->s->cfg.idle_timeout_ms, on_timer,
                    hc);
}

static int h_open(net_conn *c)
{
    hconn *hc = calloc(1, sizeof(*hc));
    if (!hc)
        return -ENOMEM;
    hc->c = c;
    hc->s = net_conn_proto_arg(c);
    hc->timer = (net_timer)NET_TIMER_INIT;
    hc->quota_timer = (net_timer)NET_TIMER_INIT;
    td_buf_init(&hc->head);
    td_buf_init(&hc->body);
    net_conn_set_data(c, hc);
    arm(hc, false);
    return 0;
}

static void h_close(net_conn *c)
{
    hconn *hc = net_conn_data(c);
    if (!hc)
        return;
    http_sub_close(hc);
    http_queue_wait_close(hc);
    http_request_wait_close(hc);
    net_conn_set_data(c, NULL);
    net_timer_stop(net_conn_loop(c), &hc->timer);
    http_quota_close(hc);
    td_buf_free(&hc->head);
    td_buf_free(&hc->body);
    free(hc);
}

/* Refuses what the parser refused: the status, a JSON error, and a close. */
static void refuse(hconn *hc, int status, const char *why)
{
    TD_DEBUG("http", "%s: %d %s", net_conn_peer(hc->c), status, why);
    hc->req.keep_alive = false;
    if (!hc->req.method.n)
        hc->req.method = td_slice_make("GET", 3);
    const char *code = status == 413   ? "body_too_large"
                       : status == 414 ? "uri_too_long"
                       : status == 431 ? "headers_too_large"
                       : status == 417 ? "expectation_failed"
                       : status == 501 ? "not_implemented"
                       : status == 505 ? "http_version_not_supported"
                                       : "bad_request";
    http_respond_error(hc, status, code, why);
    net_conn_close(hc->c, false);
}

/* After a request's response: ready for the next one (or closing). */
static void finish(hconn *hc)
{
    /* The path only: a query may carry an access_token (auth.c), never logged. */
    TD_DEBUG("http", "%s %.*s %.*s%s -> %d", net_conn_peer(hc->c), (int)hc->req.method.n,
             (const char *)hc->req.method.p, (int)hc->req.path.n, (const char *)hc->req.path.p,
             hc->req.query.n ? "?..." : "", hc->last_status);
    /* The body's buffer is not kept for the next request: an idle keep-alive connection would
     * hold up to http.max.body.bytes until it closes. */
    size_t held = hc->body.cap;
    td_buf_free(&hc->body);
    td_buf_init(&hc->body);
    net_conn_hold(hc->c, 0);
    http_release_memory(held);
    hc->phase = PH_HEAD;
    hc->cors_origin = td_slice_make(NULL, 0);
    if (hc->closing)
        net_conn_close(hc->c, false);
    else
        arm(hc, false);
}

static void dispatch(hconn *hc)
{
    net_conn *c = hc->c;
    hc->responded = false;
    hc->async = false;
    hc->resp_bytes = 0;
    hc->last_status = 0;
    hc->t0 = td_mono_ns();
    hc->route = NULL;
    if (http_guard(hc))
        http_route(hc);
    /* A route that flushes its output (a live subscription sends what it has at once) may find
     * the peer gone: the connection is then closed, and hc freed with it. The net_conn stays
     * readable while h_data runs. */
    if (net_conn_closed(c))
        return;
    if (hc->async)
        return;
    if (!hc->responded)
        http_respond_error(hc, 500, "internal", "no response");
    finish(hc);
}

void http_begin_async(hconn *hc)
{
    hc->async = true;
    net_timer_stop(net_conn_loop(hc->c), &hc->timer);
    net_conn_pause(hc->c);
}

void http_finish_async(hconn *hc)
{
    hc->async = false;
    if (!hc->responded)
        http_respond_error(hc, 500, "internal", "no response");
    net_conn *c = hc->c;
    bool closing = hc->closing;
    finish(hc); /* may close the connection (and free hc) when nothing is queued */
    if (net_conn_closed(c))
        return;
    net_conn_flush(c); /* outside on_data, nothing else sends what was queued */
    if (!closing)
        net_conn_resume(c);
}

static ssize_t h_data(net_conn *c, uint8_t *p, size_t n)
{
    hconn *hc = net_conn_data(c);
    const http_limits *lim = &hc->s->cfg.limits;
    size_t used = 0;
    while (used < n && !net_conn_closed(c) && !hc->closing && !hc->async) {
        if (hc->phase == PH_HEAD) {
            http_request probe;
            const char *why;
            int rc = http_parse_request(p + used, n - used, lim, &probe, &why);
            if (rc == TD_EAGAIN) {
                if (!hc->in_request)
                    arm(hc, true);
                break;
            }
            if (rc != 0) {
                hc->req = probe;
                refuse(hc, rc, why);
                return (ssize_t)n;
            }
            /* Keep a copy of the head: the parsed request must outlive the input buffer. */
            td_buf_reset(&hc->head);
            hc->cors_origin = td_slice_make(NULL, 0); /* pointed into the old head */
            if (td_buf_append(&hc->head, p + used, probe.head_len) != 0)
                return -1;
            hc->req = probe;
            http_request_rebase(&hc->req, p + used, hc->head.p);
            used += probe.head_len;
            if (!hc->in_request)
                arm(hc, true);
            if (hc->req.chunked) {
                hc->phase = PH_CHUNKED;
                http_chunked_init(&hc->chunked);
            } else if (hc->req.content_length > 0) {
                hc->phase = PH_BODY;
                hc->need = hc->req.content_length;
            } else {
                dispatch(hc);
                continue;
            }
            if (hc->req.expect_continue)
                net_conn_write(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
        } else if (hc->phase == PH_BODY) {
            /* The body is counted in the broker's buffer budget (net.buffer.memory.bytes), all
             * of it before its first byte is kept; without room, reading waits. */
            size_t whole = (size_t)hc->req.content_length;
            if (!net_conn_hold(c, whole))
                break;
            if (td_buf_reserve_exact(&hc->body, whole - hc->body.len) != 0)
                return -1;
            size_t take = n - used < (uint64_t)hc->need ? n - used : (size_t)hc->need;
            if (td_buf_append(&hc->body, p + used, take) != 0)
                return -1;
            used += take;
            hc->need -= (int64_t)take;
            if (hc->need == 0)
                dispatch(hc);
        } else {
            /* A chunked body's size is known only at its end: what this input can add to it
             * (the buffer at most doubles past what it holds) is counted before it is kept. */
            size_t could = TD_MIN(hc->body.len + (n - used), (size_t)lim->max_body);
            if (!net_conn_hold(c, TD_MAX(hc->body.cap, 2 * could)))
                break;
            size_t u = 0;
            const char *why;
            int rc = http_chunked_feed(&hc->chunked, p + used, n - used, lim->max_body, &hc->body,
                                       &u, &why);
            used += u;
            if (rc < 0)
                return -1;
            if (rc > 1) {
                refuse(hc, rc, why);
                return (ssize_t)n;
            }
            if (rc == 0)
                break;
            dispatch(hc);
        }
    }
    return (ssize_t)used;
}

static void h_drain(net_conn *c)
{
    hconn *hc = net_conn_data(c);
    if (hc)
        http_sub_drained(hc);
}

static const net_proto http_proto = {
    .name = "http",
    .on_open = h_open,
    .on_data = h_data,
    .on_drain = h_drain,
    .on_close = h_close,
    .max_input = 64 * 1024,
    .out_limit = HTTP_OUT_LIMIT,
};

const net_proto *http_server_proto(void)
{
    return &http_proto;
}
