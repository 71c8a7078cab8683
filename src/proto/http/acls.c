/*
 * acls.c: /v1/acls, the ACL store over the HTTP API (docs/http-api.md#acls), for the remote
 * mode of `tidings acl`:
 *
 *   GET    /v1/acls?FILTER   {"acls": [ACL...]}                  needs Describe on the cluster
 *   POST   /v1/acls          ACL -> 201 {"acl": ACL}             needs Alter on the cluster
 *   DELETE /v1/acls?FILTER   {"removed": [ACL...]}               needs Alter on the cluster
 *
 * An ACL is {"principal", "host", "resource_type", "pattern_type", "name", "operation",
 * "permission"} with Kafka's names ("Topic", "Prefixed", "Read", "Allow"; parsed regardless of
 * case); host defaults to "*" and pattern_type to "Literal". A FILTER is the same keys as query
 * parameters, each left out matching everything (pattern_type also Any and Match); DELETE
 * needs at least one. The principal is the request's (http_principal), as on the other
 * protocols; refusals are 403 `forbidden`, counted in tidings_security_denied_total{protocol=
 * "http",reason="acl"}. Each ACL added or removed is an audit event (broker_acl_add).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/authz.h"
#include "proto/http/http_int.h"

static json_t *acl_json(const td_acl *a)
{
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "principal", a->principal, "host", a->host,
                     "resource_type", td_acl_resource_name(a->resource_type), "pattern_type",
                     td_acl_pattern_name(a->pattern_type), "name", a->name, "operation",
                     td_acl_op_name(a->operation), "permission",
                     td_acl_permission_name(a->permission));
}

static json_t *acls_json(const td_acl *v, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        json_array_append_new(arr, acl_json(&v[i]));
    return arr;
}

/* Whether the request's principal may do op on the cluster; answers 403 when not (the route
 * table checks it first: this keeps the handler safe on its own). */
static bool allowed(hconn *hc, td_acl_op op)
{
    return http_require(hc, TD_RES_CLUSTER, TD_CLUSTER_NAME, op);
}

/* The filter of the query string; strings are copied into bufs. False after answering 400. */
typedef struct filter_bufs {
    char principal[TD_ACL_PRINCIPAL_MAX + 1], host[TD_ACL_HOST_MAX + 1], name[TD_ACL_NAME_MAX + 1];
} filter_bufs;

static bool query_filter(hconn *hc, td_acl_filter *f, filter_bufs *b, int *given)
{
    td_acl_filter_init(f);
    *given = 0;
    struct {
        const char *key;
        char *buf;
        size_t cap;
        const char **dst;
    } strs[] = {{"principal", b->principal, sizeof(b->principal), &f->principal},
                {"host", b->host, sizeof(b->host), &f->host},
                {"name", b->name, sizeof(b->name), &f->name}};
    for (size_t i = 0; i < TD_ARRAY_LEN(strs); i++) {
        int rc = http_query_get(hc->req.query, strs[i].key, strs[i].buf, strs[i].cap);
        if (rc < 0) {
            http_respond_error(hc, 400, "invalid_argument",
                               "a filter parameter is too long or "
                               "badly encoded");
            return false;
        }
        if (rc == 1) {
            *strs[i].dst = strs[i].buf;
            (*given)++;
        }
    }
    char v[64];
    const char *keys[] = {"resource_type", "pattern_type", "operation", "permission"};
    for (size_t i = 0; i < TD_ARRAY_LEN(keys); i++) {
        int rc = http_query_get(hc->req.query, keys[i], v, sizeof(v));
        int code = 0;
        if (rc == 1) {
            (*given)++;
            code = i == 0   ? (int)td_acl_resource_parse(v)
                   : i == 1 ? (int)td_acl_pattern_parse(v)
                   : i == 2 ? (int)td_acl_op_parse(v)
                            : (int)td_acl_permission_parse(v);
        }
        if (rc < 0 || (rc == 1 && code == 0)) {
            char msg[128];
            snprintf(msg, sizeof(msg), "unknown %s", keys[i]);
            http_respond_error(hc, 400, "invalid_argument", msg);
            return false;
        }
        if (rc == 1) {
            if (i == 0)
                f->resource_type = (td_acl_resource)code;
            else if (i == 1)
                f->pattern_type = (td_acl_pattern)code;
            else if (i == 2)
                f->operation = (td_acl_op)code;
            else
                f->permission = (td_acl_permission)code;
        }
    }
    if (td_acl_filter_validate(f) != 0) {
        http_respond_td_error(hc, TD_EINVAL);
        return false;
    }
    return true;
}

/* The ACL of a POST body; false after answering 400. */
static bool body_acl(hconn *hc, json_t *o, td_acl *a)
{
    static const char *const keys[] = {"principal", "host",      "resource_type", "pattern_type",
                                       "name",      "operation", "permission",    NULL};
    if (!http_only_keys(hc, o, keys))
        return false;
    memset(a, 0, sizeof(*a));
    const char *principal = json_string_value(json_object_get(o, "principal"));
    const char *host =
        json_object_get(o, "host") ? json_string_value(json_object_get(o, "host")) : "*";
    const char *name = json_string_value(json_object_get(o, "name"));
    const char *pattern = json_object_get(o, "pattern_type")
                              ? json_string_value(json_object_get(o, "pattern_type"))
                              : "Literal";
    const char *rtype = json_string_value(json_object_get(o, "resource_type"));
    const char *op = json_string_value(json_object_get(o, "operation"));
    const char *perm = json_string_value(json_object_get(o, "permission"));
    if (!principal || !host || !name || !pattern || !rtype || !op || !perm) {
        http_respond_error(hc, 400, "invalid_argument",
                           "an ACL needs the strings principal, resource_type, name, operation "
                           "and permission (host and pattern_type are optional)");
        return false;
    }
    if (strlen(principal) >= sizeof(a->principal) || strlen(host) >= sizeof(a->host) ||
        strlen(name) >= sizeof(a->name)) {
        http_respond_error(hc, 400, "invalid_argument", "principal, host or name too long");
        return false;
    }
    strcpy(a->principal, principal);
    strcpy(a->host, host);
    strcpy(a->name, name);
    a->resource_type = td_acl_resource_parse(rtype);
    a->pattern_type = td_acl_pattern_parse(pattern);
    a->operation = td_acl_op_parse(op);
    a->permission = td_acl_permission_parse(perm);
    if (td_acl_validate(a) != 0) {
        http_respond_td_error(hc, TD_EINVAL);
        return false;
    }
    return true;
}

/* The request's principal, for the audit trail of the changes. */
static td_audit_who actor(hconn *hc)
{
    td_principal p;
    http_principal(hc, &p);
    return (td_audit_who){"http", p.user, net_conn_peer(hc->c)};
}

void http_route_acls(hconn *hc)
{
    td_engine *e = hc->s->e;
    td_audit_who who = actor(hc);
    if (http_method_is(hc, "GET") || http_method_is(hc, "HEAD")) {
        td_acl_filter f;
        filter_bufs b;
        int given;
        if (!allowed(hc, TD_OP_DESCRIBE) || !query_filter(hc, &f, &b, &given))
            return;
        td_acl *v;
        size_t n;
        int rc = td_acl_list(e, &f, &v, &n);
        if (rc)
            return http_respond_td_error(hc, rc);
        json_t *answer = json_pack("{s:o}", "acls", acls_json(v, n));
        free(v);
        return http_respond_json(hc, 200, answer, NULL);
    }
    if (http_method_is(hc, "POST")) {
        if (!allowed(hc, TD_OP_ALTER))
            return;
        json_t *o = http_body_json(hc, true);
        if (!o)
            return;
        td_acl a;
        if (body_acl(hc, o, &a)) {
            int rc = broker_acl_add(e, &a, &who);
            if (rc)
                http_respond_td_error(hc, rc);
            else
                http_respond_json(hc, 201, json_pack("{s:o}", "acl", acl_json(&a)), NULL);
        }
        json_decref(o);
        return;
    }
    if (http_method_is(hc, "DELETE")) {
        td_acl_filter f;
        filter_bufs b;
        int given;
        if (!allowed(hc, TD_OP_ALTER) || !query_filter(hc, &f, &b, &given))
            return;
        if (given == 0)
            return http_respond_error(hc, 400, "invalid_argument",
                                      "removing ACLs needs at least one filter parameter");
        td_acl *v;
        size_t n;
        int rc = broker_acl_remove(e, &f, &who, &v, &n);
        if (rc)
            return http_respond_td_error(hc, rc);
        json_t *answer = json_pack("{s:o}", "removed", acls_json(v, n));
        free(v);
        return http_respond_json(hc, 200, answer, NULL);
    }
    http_respond_method_not_allowed(hc, "GET, HEAD, POST, DELETE");
}
