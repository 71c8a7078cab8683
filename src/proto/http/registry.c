/*
 * registry.c: the schema registry's REST API (Confluent Schema Registry's v1, docs/schemas.md)
 * on the HTTP listener, under schema.registry.prefix ("/registry" by default; "" at the root,
 * where Confluent's clients expect it when given the listener's URL), or at the root of its own
 * listener (schema.registry.listen). The API's logic is the broker's (registry_rest in
 * broker/registry.h), which the command line's local mode shares; this file only routes the
 * prefix to it after authentication, and answers in Confluent's content type.
 *
 * A change (register, delete, config, mode) is answered once its record in __schemas is
 * durable (registry_rest_async): the connection waits for the group commit's fsync, as queue
 * acks do, without blocking its event loop; the answer is posted back to the loop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/authz.h"
#include "broker/registry.h"
#include "proto/http/http_int.h"

#define CONTENT_TYPE "application/vnd.schemaregistry.v1+json"

/* The first path segments of the API, to serve it at the root beside the other routes. */
static const char *const roots[] = {"subjects", "schemas", "config", "mode", "compatibility",
                                    "contexts"};

/* The route's template for the metrics: the API's paths with their names as placeholders. */
static const char *template_of(const char *rest, size_t n)
{
    static const struct {
        const char *first;
        int nseg;
        const char *tmpl;
    } t[] = {
        {"", 0, "/registry/"},
        {"subjects", 1, "/registry/subjects"},
        {"subjects", 2, "/registry/subjects/{subject}"},
        {"subjects", 3, "/registry/subjects/{subject}/versions"},
        {"subjects", 4, "/registry/subjects/{subject}/versions/{version}"},
        {"subjects", 5, "/registry/subjects/{subject}/versions/{version}/{what}"},
        {"schemas", 1, "/registry/schemas"},
        {"schemas", 2, "/registry/schemas/{what}"},
        {"schemas", 3, "/registry/schemas/ids/{id}"},
        {"schemas", 4, "/registry/schemas/ids/{id}/{what}"},
        {"config", 1, "/registry/config"},
        {"config", 2, "/registry/config/{subject}"},
        {"mode", 1, "/registry/mode"},
        {"mode", 2, "/registry/mode/{subject}"},
        {"compatibility", 4, "/registry/compatibility/subjects/{subject}/versions"},
        {"compatibility", 5, "/registry/compatibility/subjects/{subject}/versions/{version}"},
        {"contexts", 1, "/registry/contexts"},
    };
    int nseg = 0;
    size_t first_len = 0;
    const char *first = NULL;
    for (size_t i = 0; i < n;) {
        while (i < n && rest[i] == '/')
            i++;
        if (i >= n)
            break;
        size_t j = i;
        while (j < n && rest[j] != '/')
            j++;
        if (nseg++ == 0) {
            first = rest + i;
            first_len = j - i;
        }
        i = j;
    }
    for (size_t i = 0; i < TD_ARRAY_LEN(t); i++)
        if (t[i].nseg == nseg && strlen(t[i].first) == first_len &&
            (nseg == 0 || !memcmp(t[i].first, first, first_len)))
            return t[i].tmpl;
    return "/registry/{unknown}";
}

/* Whether the request's Content-Type is one Confluent's server takes for a body. */
static bool content_type_ok(const hconn *hc)
{
    const td_slice *ct = http_header_get(&hc->req, "content-type");
    if (!ct || !hc->body.len)
        return true;
    static const char *const ok[] = {CONTENT_TYPE, "application/vnd.schemaregistry+json",
                                     "application/json", "application/octet-stream"};
    size_t n = 0;
    while (n < ct->n && ct->p[n] != ';' && ct->p[n] != ' ')
        n++;
    for (size_t i = 0; i < TD_ARRAY_LEN(ok); i++)
        if (strlen(ok[i]) == n && !strncasecmp((const char *)ct->p, ok[i], n))
            return true;
    return false;
}

static void respond(hconn *hc, int status, const char *json)
{
    size_t len = strlen(json);
    char *body = malloc(len + 1);
    if (body)
        memcpy(body, json, len + 1);
    http_respond_raw(hc, status, CONTENT_TYPE, NULL, body, body ? len : 0);
}

/* An answer waiting for its change to be durable. */
typedef struct reg_pending {
    net_conn *c;
    int status;
    char *resp;
    size_t len;
} reg_pending;

static void pending_task(void *arg)
{
    reg_pending *w = arg;
    net_conn *c = w->c;
    hconn *hc = net_conn_closed(c) ? NULL : net_conn_data(c);
    if (hc) {
        http_respond_raw(hc, w->status, CONTENT_TYPE, NULL, w->resp, w->len);
        http_finish_async(hc);
    } else {
        free(w->resp);
    }
    free(w);
    net_conn_unref(c);
}

/* The engine's flusher thread, or this loop before registry_rest_async returned. */
static void pending_done(void *arg, int status, char *resp, size_t len)
{
    reg_pending *w = arg;
    w->status = status;
    w->resp = resp;
    w->len = len;
    if (net_loop_post(net_conn_loop(w->c), pending_task, w) != 0)
        TD_ERROR("http", "cannot post a schema registry answer: out of memory");
}

bool http_route_registry(hconn *hc)
{
    const http_server_config *cfg = &hc->s->cfg;
    bool only = cfg->registry_only ||
                (hc->s->registry_port > 0 && net_conn_listen_port(hc->c) == hc->s->registry_port);
    const char *prefix = only ? "" : cfg->registry_prefix;
    const char *path = (const char *)hc->req.path.p;
    size_t plen = hc->req.path.n, pl = strlen(prefix);
    if (pl) {
        if (plen < pl || memcmp(path, prefix, pl) != 0 || (plen > pl && path[pl] != '/'))
            return false;
    } else if (only) {
        /* Its own listener: everything but the probes. */
        if ((plen == 7 && !memcmp(path, "/health", 7)) || (plen == 6 && !memcmp(path, "/ready", 6)))
            return false;
    } else {
        /* At the root beside the other routes: only the API's own first segments (and "/"). */
        size_t i = 0;
        while (i < plen && path[i] == '/')
            i++;
        size_t j = i;
        while (j < plen && path[j] != '/')
            j++;
        bool mine = i == plen;
        for (size_t k = 0; k < TD_ARRAY_LEN(roots) && !mine; k++)
            mine = strlen(roots[k]) == j - i && !memcmp(path + i, roots[k], j - i);
        if (!mine)
            return false;
    }
    const char *rest = path + pl;
    size_t rlen = plen - pl;
    hc->route = template_of(rest, rlen);
    if (!http_authenticate(hc, false))
        return true;
    if (http_quota_delay(hc))
        return true;
    if (!content_type_ok(hc)) {
        respond(hc, 415, "{\"error_code\":415,\"message\":\"HTTP 415 Unsupported Media Type\"}");
        return true;
    }
    char method[16];
    snprintf(method, sizeof(method), "%.*s", (int)TD_MIN(hc->req.method.n, sizeof(method) - 1),
             (const char *)hc->req.method.p);
    char *p = strndup(rest, rlen);
    char *q = strndup((const char *)hc->req.query.p, hc->req.query.n);
    td_principal who;
    http_principal(hc, &who);
    char *resp = NULL;
    size_t resp_len = 0;
    int status = 500;
    reg_pending *w = p && q ? calloc(1, sizeof(*w)) : NULL;
    if (w) {
        w->c = hc->c;
        net_conn_ref(hc->c);
        int rc = registry_rest_async(hc->s->e, &who, method, p, q, (const char *)hc->body.p,
                                     hc->body.len, &status, &resp, &resp_len, pending_done, w);
        if (rc == 1) { /* answered once durable */
            free(p);
            free(q);
            http_begin_async(hc);
            return true;
        }
        net_conn_unref(hc->c);
        free(w);
    }
    free(p);
    free(q);
    if (!resp) {
        respond(hc, 500, "{\"error_code\":50001,\"message\":\"out of memory\"}");
        return true;
    }
    if (status == 403 && who.user == NULL)
        TD_DEBUG("http", "%s: the registry refused an anonymous request", net_conn_peer(hc->c));
    http_respond_raw(hc, status, CONTENT_TYPE, NULL, resp, resp_len);
    return true;
}
