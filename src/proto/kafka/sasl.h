/*
 * sasl.h: Kafka authentication (sasl.c): SaslHandshake (17), SaslAuthenticate (36), the raw
 * SASL tokens that follow SaslHandshake v0, re-authentication (KIP-368), the gate that refuses
 * requests before authentication, and DescribeUserScramCredentials (50) /
 * AlterUserScramCredentials (51). Codec functions are pure (kafka.h's conventions); the others
 * run on the connection's loop.
 */
#ifndef TD_PROTO_KAFKA_SASL_H
#define TD_PROTO_KAFKA_SASL_H

#include "proto/kafka/handler_int.h"

/* SaslHandshake v0-1 (never flexible): request mechanism; response error_code, mechanisms. */
int kafka_decode_sasl_handshake(kafka_reader *r, int16_t v, const char **mechanism);

/* SaslAuthenticate v0-2 (flexible at v2). */
typedef struct kafka_sasl_authenticate_resp {
    int16_t error_code;
    const char *error_message; /* nullable */
    const uint8_t *auth_bytes;
    int32_t auth_len;
    int64_t session_lifetime_ms; /* v1+ */
} kafka_sasl_authenticate_resp;
int kafka_decode_sasl_authenticate(kafka_reader *r, int16_t v, const uint8_t **bytes, int32_t *len);
void kafka_encode_sasl_authenticate(kafka_out *o, int16_t v, const kafka_sasl_authenticate_resp *m);

/* DescribeUserScramCredentials v0 (flexible): users nullable [name]. */
typedef struct kafka_scram_user {
    const char *name;
    int16_t error_code;
    const char *error_message;
    int8_t mechanism; /* alterations */
    int32_t iterations;
    const uint8_t *salt, *salted_password;
    int32_t salt_len, salted_len;
    bool deletion;
} kafka_scram_user;
typedef struct kafka_describe_scram_req {
    int32_t nusers; /* -1: every user */
    kafka_scram_user *users;
} kafka_describe_scram_req;
int kafka_decode_describe_scram(kafka_reader *r, int16_t v, kafka_describe_scram_req *q);

/* AlterUserScramCredentials v0 (flexible): deletions [name, mechanism], upsertions [name,
 * mechanism, iterations, salt, salted_password]; both in one array here, deletions first. */
typedef struct kafka_alter_scram_req {
    int32_t nalter;
    kafka_scram_user *alter;
} kafka_alter_scram_req;
int kafka_decode_alter_scram(kafka_reader *r, int16_t v, kafka_alter_scram_req *q);

/* The per-server state (a per-process secret for stand-in credentials, the mechanisms offered,
 * metrics): created with the server, freed with it. */
int kafka_sasl_server_create(kafka_server *s);
void kafka_sasl_server_destroy(kafka_server *s);
/* Frees a connection's authentication state (k_close). */
void kafka_sasl_conn_free(kconn *kc);

/* The largest frame a connection may send now: 512 KiB until it authenticated on a listener
 * that requires it (Kafka's sasl.server.max.receive.size), else max. */
size_t kafka_sasl_frame_max(kconn *kc, size_t max);
/* Whether the next frame is a raw SASL token (after SaslHandshake v0), not a request. */
bool kafka_sasl_raw_expected(kconn *kc);
/* Handles a raw token in q (a request made for it): 0 when q's raw answer (or, after a failure,
 * no answer and a close) is ready, 1 when it comes later (a PLAIN password is checked off the
 * loop). */
int kafka_sasl_raw_token(kreq *q, const uint8_t *p, size_t n);
/* Whether a password check of the connection's is running off the loop: read nothing more. */
bool kafka_sasl_busy(kconn *kc);
/* Stops the password-check threads after the jobs queued ran (their answers are posted to the
 * loops). Idempotent; called by kafka_server_detach. */
void kafka_sasl_stop(kafka_server *s);
/* Before a request is served: 0 to serve it, -1 to close the connection (not authenticated
 * on a listener that requires it, or a session expired; logged and counted). */
int kafka_sasl_gate(kconn *kc, const kafka_header *h);

#endif /* TD_PROTO_KAFKA_SASL_H */
