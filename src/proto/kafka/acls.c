/*
 * acls.c: Kafka's DescribeAcls, CreateAcls and DeleteAcls (kafka_acl.h) over the ACL store
 * (td_acl_*, broker/acl.c). As in Kafka: creating and deleting need Alter on the cluster,
 * describing needs Describe on it (else CLUSTER_AUTHORIZATION_FAILED: for every creation or
 * filter, or for the whole description); a malformed binding or filter gets INVALID_REQUEST
 * with the reason, the others are still applied. Kafka clients send only Kafka's pattern types
 * (literal, prefixed); tidings' wildcard ACLs, made with `tidings acl` or the HTTP API, are
 * described and deleted like the others, their pattern type shown as UNKNOWN. Each ACL added
 * or removed is an audit event of the request's principal (broker_acl_add, broker_acl_remove).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/kafka/kafka_acl.h"
#include "proto/kafka/kauthz.h"

/* Copies a string field into dst (cap bytes): false when null or too long. */
static bool copy_field(char *dst, size_t cap, const char *s)
{
    if (!s || strlen(s) >= cap)
        return false;
    memcpy(dst, s, strlen(s) + 1);
    return true;
}

/* The ACL of a creation, or KERR_INVALID_REQUEST with *why. */
static int16_t binding_acl(const kafka_acl_binding *b, td_acl *a, const char **why)
{
    memset(a, 0, sizeof(*a));
    if (!copy_field(a->principal, sizeof(a->principal), b->principal) ||
        !copy_field(a->host, sizeof(a->host), b->host) ||
        !copy_field(a->name, sizeof(a->name), b->resource_name)) {
        *why = "principal, host and resource name must be given and not too long";
        return KERR_INVALID_REQUEST;
    }
    a->resource_type = (td_acl_resource)b->resource_type;
    a->pattern_type = (td_acl_pattern)b->pattern_type;
    a->operation = (td_acl_op)b->operation;
    a->permission = (td_acl_permission)b->permission;
    if (a->pattern_type != TD_PAT_LITERAL && a->pattern_type != TD_PAT_PREFIXED) {
        *why = "the pattern type of an ACL is LITERAL or PREFIXED";
        return KERR_INVALID_REQUEST;
    }
    if (td_acl_validate(a) != 0) {
        *why = td_last_error();
        return KERR_INVALID_REQUEST;
    }
    return KERR_NONE;
}

static td_acl_filter binding_filter(const kafka_acl_binding *b)
{
    return (td_acl_filter){.principal = b->principal,
                           .host = b->host,
                           .resource_type = (td_acl_resource)b->resource_type,
                           .pattern_type = (td_acl_pattern)b->pattern_type,
                           .name = b->resource_name,
                           .operation = (td_acl_op)b->operation,
                           .permission = (td_acl_permission)b->permission};
}

static const char *arena_msg(kreq *q, const char *s)
{
    return td_arena_strdup(&q->arena, s && *s ? s : "invalid request");
}

void kafka_serve_describe_acls(kreq *q, kafka_reader *r)
{
    int16_t v = q->h.api_version;
    kafka_acl_binding b;
    if (kafka_decode_describe_acls(r, v, &b) != 0) {
        q->out.err = TD_EPROTO;
        return;
    }
    int16_t err = KERR_NONE;
    const char *msg = NULL;
    td_acl *acls = NULL;
    size_t n = 0;
    if (!kafka_authz_cluster(q, TD_OP_DESCRIBE)) {
        err = KERR_CLUSTER_AUTHORIZATION_FAILED;
    } else {
        td_acl_filter f = binding_filter(&b);
        int rc = td_acl_filter_validate(&f);
        if (rc == 0)
            rc = td_acl_list(q->kc->s->e, &f, &acls, &n);
        if (rc) {
            err = rc == TD_EINVAL ? KERR_INVALID_REQUEST : kafka_error_of(rc);
            msg = arena_msg(q, td_last_error());
        }
    }
    kreq_begin(q);
    kafka_encode_describe_acls(&q->out, v, err, msg, acls, n);
    ko_end(&q->out);
    free(acls);
}

void kafka_serve_create_acls(kreq *q, kafka_reader *r)
{
    int16_t v = q->h.api_version;
    kafka_acl_list_req req;
    if (kafka_decode_create_acls(r, v, &req) != 0) {
        q->out.err = TD_EPROTO;
        return;
    }
    kafka_acl_result *res = td_arena_calloc(&q->arena, (size_t)req.n + 1, sizeof(*res));
    if (!res) {
        q->out.err = -ENOMEM;
        return;
    }
    bool allowed = req.n == 0 || kafka_authz_cluster(q, TD_OP_ALTER);
    td_audit_who actor = kafka_actor(q);
    for (int32_t i = 0; i < req.n; i++) {
        td_acl a;
        const char *why = NULL;
        if (!allowed) {
            res[i].error_code = KERR_CLUSTER_AUTHORIZATION_FAILED;
        } else if ((res[i].error_code = binding_acl(&req.v[i], &a, &why)) != KERR_NONE) {
            res[i].error_message = arena_msg(q, why);
        } else {
            int rc = broker_acl_add(q->kc->s->e, &a, &actor);
            if (rc) {
                res[i].error_code = rc == TD_EFULL ? KERR_INVALID_REQUEST : kafka_error_of(rc);
                res[i].error_message = arena_msg(q, td_last_error());
            }
        }
    }
    kreq_begin(q);
    kafka_encode_create_acls(&q->out, v, res, req.n);
    ko_end(&q->out);
}

void kafka_serve_delete_acls(kreq *q, kafka_reader *r)
{
    int16_t v = q->h.api_version;
    kafka_acl_list_req req;
    if (kafka_decode_delete_acls(r, v, &req) != 0) {
        q->out.err = TD_EPROTO;
        return;
    }
    kafka_acl_result *res = td_arena_calloc(&q->arena, (size_t)req.n + 1, sizeof(*res));
    td_acl **owned = td_arena_calloc(&q->arena, (size_t)req.n + 1, sizeof(*owned));
    if (!res || !owned) {
        q->out.err = -ENOMEM;
        return;
    }
    bool allowed = req.n == 0 || kafka_authz_cluster(q, TD_OP_ALTER);
    td_audit_who actor = kafka_actor(q);
    for (int32_t i = 0; i < req.n; i++) {
        if (!allowed) {
            res[i].error_code = KERR_CLUSTER_AUTHORIZATION_FAILED;
            continue;
        }
        td_acl_filter f = binding_filter(&req.v[i]);
        int rc = td_acl_filter_validate(&f);
        if (rc == 0)
            rc = broker_acl_remove(q->kc->s->e, &f, &actor, &owned[i], &res[i].nacls);
        if (rc) {
            res[i].error_code = rc == TD_EINVAL ? KERR_INVALID_REQUEST : kafka_error_of(rc);
            res[i].error_message = arena_msg(q, td_last_error());
        }
        res[i].acls = owned[i];
    }
    kreq_begin(q);
    kafka_encode_delete_acls(&q->out, v, res, req.n);
    ko_end(&q->out);
    for (int32_t i = 0; i < req.n; i++)
        free(owned[i]);
}
