/*
 * http_int.h: what the HTTP server's files share (server.c: connections, framing, responses;
 * routes.c: the REST API).
 */
#ifndef TD_PROTO_HTTP_INT_H
#define TD_PROTO_HTTP_INT_H

#include <jansson.h>
#include <pthread.h>

#include "cluster/cluster.h"
#include "net/net.h"
#include "proto/http/http.h"
#include "tidings.h"

/* The listener's output limit: reading stops above it, and a live subscription reads from
 * the log only below it. */
#define HTTP_OUT_LIMIT (4u << 20)
#define HTTP_MAX_REDRIVES 64

typedef struct http_redrive_job http_redrive_job;

typedef struct http_sub http_sub;
typedef struct http_replies http_replies;

struct http_server {
    td_engine *e;
    http_server_config cfg;
    struct td_cluster *cluster; /* http_server_set_cluster; NULL: a single broker */
    td_cluster_broker self;     /* this broker, as /v1/cluster names it */
    bool ready; /* atomic */
    td_metric_family *f_requests, *f_latency, *f_responses;
    td_metric_family *f_denied;         /* tidings_security_denied_total (guard.c, authz.c) */
    td_metric_family *f_auth_failures;  /* tidings_auth_failures_total (auth.c) */
    struct http_auth_cache *auth_cache; /* verified Basic credentials (auth.c) */
    net_waitset *subs;                  /* live subscriptions (subscribe.c) */
    net_waitset *waits;   /* queue receives and requests waiting (queues.c, requests.c) */
    http_replies *replies; /* the requests waiting for their replies (requests.c) */
    /* Redrive jobs (redrive.c), the last HTTP_MAX_REDRIVES. */
    pthread_mutex_t jobs_mu;
    struct http_redrive_job *jobs[HTTP_MAX_REDRIVES];
    size_t njobs;
    int64_t job_seq;
    bool jobs_stopping;
    bool hooked;
    int registry_port; /* schema.registry.listen's bound port, or 0 */
};

typedef struct hconn {
    net_conn *c;
    http_server *s;
    int phase;
    td_buf head; /* the current request's head (req points into it) */
    http_request req;
    td_buf body;  /* its body, whole (decoded when chunked) */
    int64_t need; /* Content-Length bytes still to read */
    http_chunked chunked;
    net_timer timer; /* request or idle timeout */
    bool in_request; /* part of a request has arrived */
    bool responded;
    bool closing; /* close after the response */
    bool async;   /* the response comes later (http_begin_async) */
    int last_status;
    http_sub *sub;        /* a live subscription streams on this connection */
    struct qwait *qwait;  /* a queue receive waits for events on this connection */
    struct rwait *rwait;  /* a request waits for its reply on this connection (requests.c) */
    int64_t t0;           /* when the request was dispatched (monotonic ns) */
    const char *route;    /* the matched route's template ("/v1/topics/{topic}"), for metrics */
    td_slice cors_origin; /* the request's Origin when http.cors.allowed.origins lists it */
    bool cors_any;        /* ... listed as "*" */
    /* Who sent the current request (auth.c): the user its credentials authenticated (per
     * request: HTTP credentials belong to requests, not to connections), else "" and the
     * connection's principal (a client certificate's) or anonymous. */
    char user[TD_USER_NAME_MAX + 1];
    char host[64];         /* the peer's address without its port, for authorization */
    size_t resp_bytes;     /* the response body's bytes (quota.c) */
    bool quota_passed;     /* the request waited out its principal's quota debt */
    net_timer quota_timer; /* that wait */
} hconn;

bool http_server_ready(http_server *s);

/* guard.c: checks Host and Origin before the request is routed (false after answering it: a
 * refusal, or a CORS preflight), and notes a listed Origin for the response's CORS headers. */
bool http_guard(hconn *hc);
/* The CORS header lines of the response to hc's request (none: 0), written to out. */
size_t http_cors_headers(const hconn *hc, char *out, size_t cap);

/* auth.c: authenticates the request (its Authorization header, or ?access_token= on a live
 * subscription) and fills hc->user and hc->host; false after answering 401 (or 500 when the
 * store failed). Requests of open routes (/health, /ready) are not looked at. */
bool http_authenticate(hconn *hc, bool open_route);
int http_auth_cache_create(http_server *s);
void http_auth_cache_destroy(http_server *s);

/* authz.c: authorization (broker/authz.h) for the request's principal. */
struct td_principal;
/* The request's principal (hc->user, else the connection's, else anonymous). */
void http_principal(const hconn *hc, struct td_principal *p);
/* Whether the principal may do op on the resource; answers nothing. */
bool http_may(hconn *hc, int type, const char *name, int op);
/* The same, answering when it may not: 403 naming the operation and the resource, or 404 as
 * for a missing one when the principal may not even Describe a topic or group. Counted and
 * logged. */
bool http_require(hconn *hc, int type, const char *name, int op);
/* An administrator: Alter on the cluster. */
bool http_is_admin(hconn *hc);
/* The route's permissions (the table in authz.c) for the matched template hc->route, with
 * `name` its {topic}, {group} or {id}; false after answering. */
bool http_authorize_route(hconn *hc, const char *name);

/* admin.c: /v1/users[/{name}[/password]] and /v1/tokens[/{id}]. */
void http_route_users(hconn *hc, const char *name, const char *action);
void http_route_tokens(hconn *hc, const char *id);

/* Routes the complete request in hc to its handler, which answers through the functions below
 * (exactly one response per request). */
void http_route(hconn *hc);

/* registry.c: the schema registry's REST API (broker/registry.h) under the prefix. True when
 * the path is the registry's (and the request was answered), false to route it elsewhere. */
bool http_route_registry(hconn *hc);

/* Routes of events.c: /v1/topics/{topic}/events. */
void http_route_events(hconn *hc, const char *topic);
/* GET /v1/topics/{topic}/keys/{key}: a table read (keys.c). */
void http_route_key(hconn *hc, const char *topic, const char *key, size_t key_len);
/* keys.c: entity streams (docs/event-sourcing.md). GET /v1/topics/{t}/keys/{key}/events; the
 * "expected_version" of event idx of n in a produce (*expected allocated in a at the first
 * one; false after answering 400); the 409 of a failed expectation. */
void http_route_key_events(hconn *hc, const char *topic, const char *key, size_t key_len);
/* The same for a key (tag false) or an event tag: GET /v1/topics/{t}/tags/{tag}/events. */
void http_route_index_events(hconn *hc, const char *topic, bool tag, const char *key,
                             size_t key_len);
bool http_expected_version(hconn *hc, td_arena *a, json_t *ev, size_t idx, size_t n,
                           int64_t **expected);
/* A body's "condition" (docs/http-api.md#conditional-appends) into *out, allocated in a;
 * false after answering 400. */
bool http_condition(hconn *hc, td_arena *a, json_t *c, td_condition **out);
/* The 409 of a failed expectation or condition (c->index >= n: condition key c->index - n). */
void http_respond_wrong_version(hconn *hc, const td_event *events, const int64_t *expected,
                                const td_condition *cond, const td_produce_result *results,
                                size_t n, const td_version_conflict *c);

/* traces.c: GET /v1/traces/{id}, GET /v1/topics/{t}/partitions/{p}/offsets/{o}/caused. */
void http_route_trace(hconn *hc, const char *id);
void http_route_caused(hconn *hc, const char *topic, const char *part, const char *off);
/* subscribe.c: GET /v1/subscribe (Server-Sent Events). */
void http_route_subscribe(hconn *hc);
/* GET /v1/topics/{t}/keys/{key}/events with Accept: text/event-stream: the key's events from
 * ?from_version= (or Last-Event-ID), then its new ones as they are appended (subscribe.c). */
void http_subscribe_key(hconn *hc, const char *topic, const char *key, size_t key_len);
/* The engine's high-watermark hook (arg: the server): wakes the loops' subscriptions. */
void http_sse_on_advance(void *arg);
/* The connection closes: frees its subscription. */
void http_sub_close(hconn *hc);
/* Its output drained below the limit: reads on. */
void http_sub_drained(hconn *hc);
/* A subscription cursor (the SSE id, as Last-Event-ID): calls fn for every (topic, partition,
 * next offset) it names; topic points into s. 0 or TD_EINVAL. Pure. */
typedef void (*http_cursor_fn)(void *arg, td_slice topic, int32_t partition, int64_t offset);
int http_cursor_parse(const char *s, size_t n, http_cursor_fn fn, void *arg);

/* An event as the REST API shows it: partition, offset, timestamp, key, value, headers, after
 * its topic when topic is not NULL. With values_json, a value that is one JSON text is given
 * parsed (`value`) and other UTF-8 as `value_text`; without, UTF-8 values are `value` strings of
 * their exact bytes (?values=string). Values that are not UTF-8 are `value_b64` either way.
 * With values_json and e, a value in Confluent's wire format whose schema id names a JSON Schema
 * (as HTTP produce stores validated JSON, docs/schemas.md) is given as its JSON, without the
 * header, and the id as `value_schema_id`. */
json_t *http_event_json(td_engine *e, const char *topic, const td_event *ev, bool values_json);
/* Adds the request's `traceparent` (and valid `tracestate`) to every event of events[0..n) that
 * has no `traceparent` header of its own (trace.c); headers copied into the arena. -1 when
 * memory ran out. */
int http_trace_events(const http_request *r, td_arena *a, td_event *events, size_t n);
/* The ?values= query parameter: json (the default) or string. False after answering 400. */
bool http_values_param(hconn *hc, bool *values_json);
/* The ?isolation= query parameter of reads (docs/http-api.md#transactions): read_committed (the
 * default) or read_uncommitted, as *isolation (TD_READ_COMMITTED, TD_READ_UNCOMMITTED). False
 * after answering 400. */
bool http_isolation_param(hconn *hc, int *isolation);

/* The head of a streamed response (chunked for HTTP/1.1; for HTTP/1.0 the body ends with the
 * connection), counted like any response. The stream's body is written to the connection. */
void http_respond_stream_head(hconn *hc, int status, const char *content_type,
                              const char *extra_headers);

/* Routes of groups.c: /v1/groups[/{group}[/{action}]] (group and action NULL when absent). */
void http_route_groups(hconn *hc, const char *group, const char *action);

/* Whether the request's method is m (methods are case-sensitive). */
bool http_method_is(const hconn *hc, const char *m);

/* A time in a JSON body: Unix milliseconds (an integer >= 0) or an ISO 8601 string
 * (http_parse_time). False for anything else. */
bool http_json_time(const json_t *v, int64_t *ms);

/* Fails (after answering 400) if obj has a key outside `allowed` (NULL-terminated). */
bool http_only_keys(hconn *hc, json_t *obj, const char *const *allowed);

/* Routes of queues.c: /v1/queues[/{group}[/{action}]], and what the server does for them: the
 * wake-up of long-polling receives (any thread), and a connection's waiting receive when it
 * closes. */
void http_route_queues(hconn *hc, const char *group, const char *action);
void http_queues_wake(void *server);
void http_queue_wait_close(hconn *hc);
/* requests.c: POST /v1/topics/{topic}/requests (request/reply); the hub of waiting requests,
 * made and freed with the server; a closing connection's waiting request dropped. */
void http_route_requests(hconn *hc, const char *topic);
int http_replies_new(http_replies **out);
void http_replies_free(http_replies *h);
void http_request_wait_close(hconn *hc);
/* events.c: one event object of a produce body (idx names it in errors) into *out, its bytes
 * in a; *json_value when its value was given as JSON. False after answering. */
bool http_read_event(hconn *hc, td_arena *a, json_t *ev, td_event *out, bool *json_value,
                     int idx);

/* redrive.c: POST /v1/topics/{topic}/redrive starts a redrive job; GET /v1/redrives[/{id}]
 * (id NULL for the list); stopping waits for the running jobs. */
void http_redrive_start(hconn *hc, const char *topic);
void http_route_redrives(hconn *hc, const char *id);
/* acls.c: /v1/acls. */
void http_route_acls(hconn *hc);
void http_redrives_stop(http_server *s);

/*
 * Request bodies as JSON. Memory: jansson's tree costs 30 to 80 times the text, so a text is
 * measured first (http_json_measure) and parsed only if its tree is estimated at no more than
 * HTTP_JSON_FACTOR times the body plus HTTP_JSON_SLACK; arrays of events are parsed an element
 * at a time (events.c), each element against the same budget.
 */
#define HTTP_JSON_FACTOR 16
#define HTTP_JSON_SLACK (1u << 20)

/* The request body as JSON (an object when object_only); NULL after answering 400, 413 or 415. */
json_t *http_body_json(hconn *hc, bool object_only);
/* Whether the body's Content-Type is JSON (or absent, or the form type curl -d sends); false
 * after answering 415. */
bool http_body_is_json(hconn *hc);
/* Parses text, the body or a part of it (one element of an array), with jansson's `flags`
 * besides JSON_REJECT_DUPLICATES: 413 when its tree would cost more than the budget, 400
 * invalid_json with the line and column in the body; NULL after answering. */
json_t *http_json_parse(hconn *hc, td_slice text, size_t flags);
/* A 400 invalid_json for the body: "invalid JSON at line L, column C: why", where pos is the
 * bytes read up to and including the culprit (jansson's error.position). */
void http_respond_invalid_json(hconn *hc, size_t pos, const char *why);
/* json_dumps with reals in their shortest form (td_json_shorten_reals); malloc'd or NULL. */
char *http_json_dumps(const json_t *j, size_t flags);
/* After a request that held `bytes` of memory (a body, its events), freed by now: above 1 MiB,
 * gives the freed memory back to the system (malloc_trim). */
void http_release_memory(size_t bytes);

/*
 * A request that answers later: http_begin_async (in the handler) stops reading the
 * connection's next requests and its request timer; the handler's completion, on the loop,
 * answers and calls http_finish_async, which resumes reading (or closes when the response said
 * so). The completion must hold a connection reference and find hc through net_conn_data,
 * which is NULL once the connection closed.
 */
void http_begin_async(hconn *hc);
void http_finish_async(hconn *hc);

/* 405 with an Allow header. */
void http_respond_method_not_allowed(hconn *hc, const char *allow);

/* Queues a response; the body (malloc'd, may be NULL) passes to the connection. */
void http_respond_raw(hconn *hc, int status, const char *content_type, const char *extra_headers,
                      char *body, size_t len);
/* A JSON response (takes the reference to body; NULL: no body). */
void http_respond_json(hconn *hc, int status, json_t *body, const char *extra_headers);
/* {"error": {"code": code, "message": message, "status": status}} */
void http_respond_error(hconn *hc, int status, const char *code, const char *message);
/* An optional integer query parameter in [lo, hi]: 1 (in *out), 0 when absent, -1 after
 * answering 400 (events.c). */
int http_query_int(hconn *hc, const char *name, int64_t lo, int64_t hi, int64_t *out);
/* The error response for a td_ error, with td_last_error(). */
void http_respond_td_error(hconn *hc, int rc);

/* quota.c: client quotas. http_quota_delay: when the request's principal owes under its
 * quotas, the request waits (answered later, from a timer) and true is returned; call after
 * authorization, before the route runs. http_quota_record: a request's traffic, when its
 * response head is written.
 * http_quota_stream: a live subscription's bytes; returns the ms to stop sending for. */
bool http_quota_delay(hconn *hc);
void http_quota_record(hconn *hc);
int64_t http_quota_stream(http_server *s, const char *user, size_t bytes);
void http_quota_close(hconn *hc);

/* cluster.c: GET /v1/cluster. */
void http_route_cluster(hconn *hc);

#endif /* TD_PROTO_HTTP_INT_H */
