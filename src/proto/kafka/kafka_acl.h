/*
 * kafka_acl.h: the ACL requests of the Kafka protocol (DescribeAcls 29, CreateAcls 30,
 * DeleteAcls 31, each v0-3, flexible from v2): their codecs (msgs_acl.c, pure like those of
 * kafka.h) and their handler (acls.c).
 */
#ifndef TD_PROTO_KAFKA_ACL_H
#define TD_PROTO_KAFKA_ACL_H

#include "proto/kafka/kafka.h"
#include "tidings.h"

/* A binding of CreateAcls, or a filter of DescribeAcls / DeleteAcls, as the wire has it: the
 * codes are Kafka's (those of td_acl_*), strings NULL when null. pattern_type is LITERAL (3)
 * in v0, which does not carry it. */
typedef struct kafka_acl_binding {
    int8_t resource_type;
    const char *resource_name;
    int8_t pattern_type;
    const char *principal;
    const char *host;
    int8_t operation;
    int8_t permission;
} kafka_acl_binding;

/* DescribeAcls v0-3
 *   request:  resource_type int8, resource_name nullable, pattern_type int8 (v1+), principal
 *             nullable, host nullable, operation int8, permission int8
 *   response: throttle_time_ms, error_code, error_message nullable, resources [resource_type
 *             int8, resource_name, pattern_type int8 (v1+), acls [principal, host, operation
 *             int8, permission int8]] */
int kafka_decode_describe_acls(kafka_reader *r, int16_t v, kafka_acl_binding *filter);
/* acls sorted so that those of one resource (type, name, pattern type) are adjacent (as
 * td_acl_list returns them); each run becomes one resource. */
void kafka_encode_describe_acls(kafka_out *o, int16_t v, int16_t error_code, const char *message,
                                const td_acl *acls, size_t n);

/* CreateAcls v0-3
 *   request:  creations [resource_type int8, resource_name, pattern_type int8 (v1+), principal,
 *             host, operation int8, permission int8]
 *   response: throttle_time_ms, results [error_code, error_message nullable] */
typedef struct kafka_acl_list_req {
    int32_t n;
    kafka_acl_binding *v;
} kafka_acl_list_req;
int kafka_decode_create_acls(kafka_reader *r, int16_t v, kafka_acl_list_req *q);

typedef struct kafka_acl_result {
    int16_t error_code;
    const char *error_message;
    const td_acl *acls; /* DeleteAcls: the ACLs the filter removed */
    size_t nacls;
} kafka_acl_result;
void kafka_encode_create_acls(kafka_out *o, int16_t v, const kafka_acl_result *res, int32_t n);

/* DeleteAcls v0-3
 *   request:  filters [the fields of DescribeAcls' request]
 *   response: throttle_time_ms, filter_results [error_code, error_message nullable,
 *             matching_acls [error_code, error_message nullable, resource_type int8,
 *             resource_name, pattern_type int8 (v1+), principal, host, operation int8,
 *             permission int8]] */
int kafka_decode_delete_acls(kafka_reader *r, int16_t v, kafka_acl_list_req *q);
void kafka_encode_delete_acls(kafka_out *o, int16_t v, const kafka_acl_result *res, int32_t n);


#endif /* TD_PROTO_KAFKA_ACL_H */
