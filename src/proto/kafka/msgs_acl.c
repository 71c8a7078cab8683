/*
 * msgs_acl.c: decoders and encoders of DescribeAcls, CreateAcls and DeleteAcls (kafka_acl.h),
 * from Kafka's JSON message definitions. Pure: the decoders read from the request's arena and
 * allocate only there, after checking counts against the bytes left.
 */
#include <string.h>

#include "proto/kafka/kafka_acl.h"

/* The pattern type as the wire shows it: tidings' wildcard patterns are UNKNOWN (0) to Kafka
 * clients, Kafka's own answer for a type a client does not know. */
static int8_t kafka_acl_wire_pattern(td_acl_pattern p)
{
    return p == TD_PAT_WILDCARD ? 0 : (int8_t)p;
}

/* A filter or a creation: the same fields in the same order. */
static void read_binding(kafka_reader *r, int16_t v, kafka_acl_binding *b)
{
    b->resource_type = kr_i8(r);
    b->resource_name = kr_string(r);
    b->pattern_type = v >= 1 ? kr_i8(r) : (int8_t)TD_PAT_LITERAL;
    b->principal = kr_string(r);
    b->host = kr_string(r);
    b->operation = kr_i8(r);
    b->permission = kr_i8(r);
}

int kafka_decode_describe_acls(kafka_reader *r, int16_t v, kafka_acl_binding *filter)
{
    memset(filter, 0, sizeof(*filter));
    kr_set_flexible(r, KAFKA_DESCRIBE_ACLS, v);
    read_binding(r, v, filter);
    kr_tags(r);
    return r->err;
}

static int decode_list(kafka_reader *r, int16_t key, int16_t v, kafka_acl_list_req *q)
{
    memset(q, 0, sizeof(*q));
    kr_set_flexible(r, key, v);
    q->v = kr_array_alloc(r, sizeof(*q->v), &q->n);
    for (int32_t i = 0; i < q->n && !r->err; i++) {
        read_binding(r, v, &q->v[i]);
        kr_tags(r);
    }
    kr_tags(r);
    return r->err;
}

int kafka_decode_create_acls(kafka_reader *r, int16_t v, kafka_acl_list_req *q)
{
    return decode_list(r, KAFKA_CREATE_ACLS, v, q);
}

int kafka_decode_delete_acls(kafka_reader *r, int16_t v, kafka_acl_list_req *q)
{
    return decode_list(r, KAFKA_DELETE_ACLS, v, q);
}

static bool same_resource(const td_acl *a, const td_acl *b)
{
    return a->resource_type == b->resource_type && a->pattern_type == b->pattern_type &&
           strcmp(a->name, b->name) == 0;
}

void kafka_encode_describe_acls(kafka_out *o, int16_t v, int16_t error_code, const char *message,
                                const td_acl *acls, size_t n)
{
    ko_set_flexible(o, KAFKA_DESCRIBE_ACLS, v);
    ko_i32(o, 0);
    ko_i16(o, error_code);
    ko_string(o, message);
    int32_t nres = 0;
    for (size_t i = 0; i < n; i++)
        if (i == 0 || !same_resource(&acls[i - 1], &acls[i]))
            nres++;
    ko_array(o, nres);
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && same_resource(&acls[i], &acls[j]))
            j++;
        ko_i8(o, (int8_t)acls[i].resource_type);
        ko_string_nn(o, acls[i].name);
        if (v >= 1)
            ko_i8(o, kafka_acl_wire_pattern(acls[i].pattern_type));
        ko_array(o, (int32_t)(j - i));
        for (size_t k = i; k < j; k++) {
            ko_string_nn(o, acls[k].principal);
            ko_string_nn(o, acls[k].host);
            ko_i8(o, (int8_t)acls[k].operation);
            ko_i8(o, (int8_t)acls[k].permission);
            ko_tags(o);
        }
        ko_tags(o);
        i = j;
    }
    ko_tags(o);
}

void kafka_encode_create_acls(kafka_out *o, int16_t v, const kafka_acl_result *res, int32_t n)
{
    ko_set_flexible(o, KAFKA_CREATE_ACLS, v);
    ko_i32(o, 0);
    ko_array(o, n);
    for (int32_t i = 0; i < n; i++) {
        ko_i16(o, res[i].error_code);
        ko_string(o, res[i].error_message);
        ko_tags(o);
    }
    ko_tags(o);
}

void kafka_encode_delete_acls(kafka_out *o, int16_t v, const kafka_acl_result *res, int32_t n)
{
    ko_set_flexible(o, KAFKA_DELETE_ACLS, v);
    ko_i32(o, 0);
    ko_array(o, n);
    for (int32_t i = 0; i < n; i++) {
        ko_i16(o, res[i].error_code);
        ko_string(o, res[i].error_message);
        ko_array(o, (int32_t)res[i].nacls);
        for (size_t k = 0; k < res[i].nacls; k++) {
            const td_acl *a = &res[i].acls[k];
            ko_i16(o, KERR_NONE);
            ko_string(o, NULL);
            ko_i8(o, (int8_t)a->resource_type);
            ko_string_nn(o, a->name);
            if (v >= 1)
                ko_i8(o, kafka_acl_wire_pattern(a->pattern_type));
            ko_string_nn(o, a->principal);
            ko_string_nn(o, a->host);
            ko_i8(o, (int8_t)a->operation);
            ko_i8(o, (int8_t)a->permission);
            ko_tags(o);
        }
        ko_tags(o);
    }
    ko_tags(o);
}
