/*
 * authz.c: authorization of the HTTP API's requests (docs/security.md#authorization-http):
 * which permission each route needs, in one table, asked of broker_authorize for the request's
 * principal: the user its credentials authenticated (auth.c), else the connection's (a client
 * certificate's CN), else anonymous.
 *
 * Refusals: 403 with a JSON error naming the operation and the resource. A principal that may
 * not even Describe a topic gets the 404 a missing one gets instead (but for Create), as Kafka
 * hides topics from Metadata: an HTTP client cannot learn which topics exist by probing.
 * Groups answer 403, as Kafka's GROUP_AUTHORIZATION_FAILED does; listings of topics and groups
 * show only those the principal may Describe.
 */
#include <stdio.h>
#include <string.h>

#include "broker/audit.h"
#include "broker/authz.h"
#include "proto/http/http_int.h"

/* Where a route's resource name comes from. */
enum { NAME_PATH, NAME_CLUSTER };

/* Checks done by the handler (they depend on the body, or filter a listing), listed here so
 * that the table is the whole map; the route check lets them through. */
#define IN_HANDLER 1

typedef struct route_perm {
    const char *method; /* HEAD is checked as GET */
    const char *route;  /* the template (routes.c v1_template), or a fixed path */
    td_acl_resource type;
    td_acl_op op;
    int name; /* NAME_PATH: the template's {topic}, {group} or {id}; NAME_CLUSTER */
    int flags;
    const char *note; /* what the handler adds, for readers */
} route_perm;

static const route_perm perms[] = {
    {"GET", "/metrics", TD_RES_CLUSTER, TD_OP_DESCRIBE, NAME_CLUSTER, 0, NULL},
    {"GET", "/v1/topics", TD_RES_TOPIC, TD_OP_DESCRIBE, NAME_PATH, IN_HANDLER,
     "lists only the topics the principal may Describe"},
    {"POST", "/v1/topics", TD_RES_TOPIC, TD_OP_CREATE, NAME_PATH, IN_HANDLER,
     "Create on the cluster or on the topic named in the body"},
    {"GET", "/v1/topics/{topic}", TD_RES_TOPIC, TD_OP_DESCRIBE, NAME_PATH, 0,
     "its config only with DescribeConfigs"},
    {"PATCH", "/v1/topics/{topic}", TD_RES_TOPIC, TD_OP_ALTER_CONFIGS, NAME_PATH, 0,
     "adding partitions needs Alter too"},
    {"DELETE", "/v1/topics/{topic}", TD_RES_TOPIC, TD_OP_DELETE, NAME_PATH, 0, NULL},
    {"POST", "/v1/topics/{topic}/events", TD_RES_TOPIC, TD_OP_WRITE, NAME_PATH, 0, NULL},
    {"GET", "/v1/topics/{topic}/events", TD_RES_TOPIC, TD_OP_READ, NAME_PATH, 0, NULL},
    {"POST", "/v1/topics/{topic}/requests", TD_RES_TOPIC, TD_OP_WRITE, NAME_PATH, 0,
     "Read on the reply topic"},
    {"GET", "/v1/topics/{topic}/keys/{key}", TD_RES_TOPIC, TD_OP_READ, NAME_PATH, 0, NULL},
    {"GET", "/v1/topics/{topic}/keys/{key}/events", TD_RES_TOPIC, TD_OP_READ, NAME_PATH, 0, NULL},
    {"GET", "/v1/topics/{topic}/partitions/{partition}/offsets/{offset}/caused", TD_RES_TOPIC,
     TD_OP_READ, NAME_PATH, 0, "what it caused in other topics only where the principal may Read"},
    {"GET", "/v1/traces/{id}", TD_RES_TOPIC, TD_OP_READ, NAME_PATH, IN_HANDLER,
     "events only of the topics the principal may Read; the others counted as hidden"},
    {"GET", "/v1/topics/{topic}/tags/{tag}/events", TD_RES_TOPIC, TD_OP_READ, NAME_PATH, 0, NULL},
    {"POST", "/v1/topics/{topic}/redrive", TD_RES_TOPIC, TD_OP_READ, NAME_PATH, 0,
     "Write on to_topic; without to_topic (back to each event's origin) an administrator"},
    {"GET", "/v1/redrives", TD_RES_CLUSTER, TD_OP_DESCRIBE, NAME_CLUSTER, 0, NULL},
    {"GET", "/v1/cluster", TD_RES_CLUSTER, TD_OP_DESCRIBE, NAME_CLUSTER, 0, NULL},
    {"GET", "/v1/redrives/{id}", TD_RES_CLUSTER, TD_OP_DESCRIBE, NAME_CLUSTER, 0, NULL},
    {"GET", "/v1/subscribe", TD_RES_TOPIC, TD_OP_READ, NAME_PATH, IN_HANDLER,
     "Read on each topic: a topic named outright is refused, patterns match only readable ones"},
    {"GET", "/v1/groups", TD_RES_GROUP, TD_OP_DESCRIBE, NAME_PATH, IN_HANDLER,
     "lists only the groups the principal may Describe"},
    {"GET", "/v1/groups/{group}", TD_RES_GROUP, TD_OP_DESCRIBE, NAME_PATH, 0, NULL},
    {"POST", "/v1/groups/{group}/reset", TD_RES_GROUP, TD_OP_READ, NAME_PATH, 0,
     "Read on each topic reset"},
    {"DELETE", "/v1/groups/{group}", TD_RES_GROUP, TD_OP_DELETE, NAME_PATH, 0, NULL},
    {"GET", "/v1/queues", TD_RES_GROUP, TD_OP_DESCRIBE, NAME_PATH, IN_HANDLER,
     "lists only the groups the principal may Describe"},
    {"PUT", "/v1/queues/{group}", TD_RES_GROUP, TD_OP_READ, NAME_PATH, 0,
     "Read on the topic; a pattern topic needs an administrator"},
    {"GET", "/v1/queues/{group}", TD_RES_GROUP, TD_OP_DESCRIBE, NAME_PATH, 0, NULL},
    {"DELETE", "/v1/queues/{group}", TD_RES_GROUP, TD_OP_DELETE, NAME_PATH, 0, NULL},
    {"POST", "/v1/queues/{group}/receive", TD_RES_GROUP, TD_OP_READ, NAME_PATH, 0,
     "Read on the group's topic"},
    {"POST", "/v1/queues/{group}/ack", TD_RES_GROUP, TD_OP_READ, NAME_PATH, 0,
     "Read on the group's topic"},
    {"POST", "/v1/queues/{group}/nack", TD_RES_GROUP, TD_OP_READ, NAME_PATH, 0,
     "Read on the group's topic"},
    {"POST", "/v1/queues/{group}/extend", TD_RES_GROUP, TD_OP_READ, NAME_PATH, 0,
     "Read on the group's topic"},
    {"*", "/v1/users", TD_RES_CLUSTER, TD_OP_ALTER, NAME_CLUSTER, 0, NULL},
    {"*", "/v1/users/{name}", TD_RES_CLUSTER, TD_OP_ALTER, NAME_CLUSTER, 0, NULL},
    {"PUT", "/v1/users/{name}/password", TD_RES_CLUSTER, TD_OP_ALTER, NAME_CLUSTER, IN_HANDLER,
     "an administrator, or the user itself"},
    {"*", "/v1/tokens", TD_RES_CLUSTER, TD_OP_ALTER, NAME_CLUSTER, IN_HANDLER,
     "a user's own tokens; another user's need an administrator"},
    {"*", "/v1/tokens/{id}", TD_RES_CLUSTER, TD_OP_ALTER, NAME_CLUSTER, IN_HANDLER,
     "a user's own tokens; another user's need an administrator"},
    {"GET", "/v1/acls", TD_RES_CLUSTER, TD_OP_DESCRIBE, NAME_CLUSTER, 0, NULL},
    {"*", "/v1/acls", TD_RES_CLUSTER, TD_OP_ALTER, NAME_CLUSTER, 0, NULL},
};

static const char *const op_names[] = {
    [TD_OP_ANY] = "Any",
    [TD_OP_ALL] = "All",
    [TD_OP_READ] = "Read",
    [TD_OP_WRITE] = "Write",
    [TD_OP_CREATE] = "Create",
    [TD_OP_DELETE] = "Delete",
    [TD_OP_ALTER] = "Alter",
    [TD_OP_DESCRIBE] = "Describe",
    [TD_OP_CLUSTER_ACTION] = "ClusterAction",
    [TD_OP_DESCRIBE_CONFIGS] = "DescribeConfigs",
    [TD_OP_ALTER_CONFIGS] = "AlterConfigs",
    [TD_OP_IDEMPOTENT_WRITE] = "IdempotentWrite",
};

static const char *op_name(int op)
{
    return op > 0 && op < (int)TD_ARRAY_LEN(op_names) && op_names[op] ? op_names[op] : "?";
}

static const char *type_name(int type)
{
    switch (type) {
    case TD_RES_TOPIC:
        return "topic";
    case TD_RES_GROUP:
        return "group";
    case TD_RES_CLUSTER:
        return "cluster";
    case TD_RES_TRANSACTIONAL_ID:
        return "transactional_id";
    default:
        return "resource";
    }
}

void http_principal(const hconn *hc, td_principal *p)
{
    p->user = hc->user[0] ? hc->user : net_conn_principal(hc->c);
    p->host = hc->host;
}

bool http_may(hconn *hc, int type, const char *name, int op)
{
    td_principal p;
    http_principal(hc, &p);
    return broker_authorize(hc->s->e, &p, (td_acl_resource)type, name, (td_acl_op)op);
}

bool http_is_admin(hconn *hc)
{
    return http_may(hc, TD_RES_CLUSTER, TD_CLUSTER_NAME, TD_OP_ALTER);
}

bool http_require(hconn *hc, int type, const char *name, int op)
{
    if (http_may(hc, type, name, op))
        return true;
    td_principal p;
    http_principal(hc, &p);
    const char *labels[] = {"http", "acl"};
    td_counter_add(td_metric_get(hc->s->f_denied, labels), 1);
    char who[TD_USER_NAME_MAX * 4 + 16], what[TD_TOPIC_NAME_MAX * 4 + 8], msg[2200];
    if (p.user)
        http_utf8_clean(p.user, who, sizeof(who));
    else
        snprintf(who, sizeof(who), "ANONYMOUS");
    http_utf8_clean(name ? name : TD_CLUSTER_NAME, what, sizeof(what));
    broker_audit(hc->s->e, TD_AUDIT_DENIED, "http", p.user, net_conn_peer(hc->c),
                 "%s on %s '%.200s' (%.*s %.*s)", op_name(op),
                 td_acl_resource_name((td_acl_resource)type), what,
                 (int)TD_MIN(hc->req.method.n, 16), (const char *)hc->req.method.p,
                 (int)TD_MIN(hc->req.path.n, 128), (const char *)hc->req.path.p);
    /* Creating names a resource that need not exist: nothing to hide (Kafka answers
     * TOPIC_AUTHORIZATION_FAILED to a CreateTopics it refuses). */
    if (type == TD_RES_TOPIC && op != TD_OP_CREATE && !http_may(hc, type, name, TD_OP_DESCRIBE)) {
        snprintf(msg, sizeof(msg), "topic '%s' does not exist", what);
        http_respond_error(hc, 404, "not_found", msg);
        return false;
    }
    snprintf(msg, sizeof(msg), "user %s may not %s %s '%s'", who, op_name(op), type_name(type),
             what);
    json_t *e = json_pack("{s:{s:s,s:s,s:i,s:s,s:s,s:s}}", "error", "code", "forbidden", "message",
                          msg, "status", 403, "operation", op_name(op), "resource_type",
                          type_name(type), "resource", what);
    http_respond_json(hc, 403, e, NULL);
    return false;
}

bool http_authorize_route(hconn *hc, const char *name)
{
    if (!hc->route)
        return true; /* no such route: the router answers 404 */
    bool head = http_method_is(hc, "HEAD");
    for (size_t i = 0; i < TD_ARRAY_LEN(perms); i++) {
        const route_perm *r = &perms[i];
        if (strcmp(r->route, hc->route) != 0)
            continue;
        if (strcmp(r->method, "*") != 0 && !http_method_is(hc, r->method) &&
            !(head && !strcmp(r->method, "GET")))
            continue;
        if (r->flags & IN_HANDLER)
            return true;
        return http_require(hc, r->type, r->name == NAME_CLUSTER ? TD_CLUSTER_NAME : name, r->op);
    }
    /* A method the table does not list on a known route (the handler answers 405 to it) or a
     * route added without its row: only an administrator gets through, so that nothing new is
     * ever open by omission. */
    return http_require(hc, TD_RES_CLUSTER, TD_CLUSTER_NAME, TD_OP_ALTER);
}
