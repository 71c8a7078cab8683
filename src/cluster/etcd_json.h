/*
 * etcd_json.h: the bodies of etcd's v3 JSON gateway (POST /v3/kv/range, /v3/kv/put,
 * /v3/kv/deleterange, /v3/kv/txn, /v3/lease/grant, /v3/lease/keepalive, /v3/lease/revoke,
 * /v3/watch), encoded and decoded as pure functions over buffers (docs/clustering.md).
 *
 * The gateway's encoding: keys and values are standard base64 with padding; 64-bit integers
 * come as strings ("revision":"12") and are sent as strings; fields whose value is zero, false
 * or empty are left out (a failed txn has no "succeeded", a PUT event no "type", an expired
 * lease's keepalive no "TTL", an empty range no "kvs"). A unary error is a body
 * {"error":..,"message":..,"code":N} (gRPC's code); a stream's lines are {"result":{..}} or
 * {"error":{"grpc_code":N,"http_code":N,"message":..}}.
 *
 * Every decoder takes any bytes (it is fuzzed: tests/fuzz/etcd): it returns 0 and fills its
 * output, or TD_EPROTO on what is not such a body, leaving nothing to free.
 */
#ifndef TD_CLUSTER_ETCD_JSON_H
#define TD_CLUSTER_ETCD_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

/* A key-value as etcd keeps it. key and value are decoded, NUL-terminated (the NUL is not
 * counted), owned by the message that holds them. */
typedef struct etcd_kv {
    char *key;
    size_t key_len;
    char *value;
    size_t value_len;
    int64_t create_revision, mod_revision, version, lease;
} etcd_kv;

typedef struct etcd_header {
    uint64_t cluster_id, member_id;
    int64_t revision, raft_term;
} etcd_header;

/* ---------------------------------------------------------------------------------------------
 * Requests: each appends one JSON object to out (0, or -ENOMEM; a failed one leaves
 * out as it was). Keys and values are bytes
 * (a length each); a NULL range_end (or length 0) means the one key.
 */
int etcd_req_range(td_buf *out, const void *key, size_t key_len, const void *range_end,
                   size_t end_len);
int etcd_req_put(td_buf *out, const void *key, size_t key_len, const void *value, size_t value_len,
                 int64_t lease); /* lease 0: none */
int etcd_req_delete(td_buf *out, const void *key, size_t key_len, const void *range_end,
                    size_t end_len);
int etcd_req_grant(td_buf *out, int64_t ttl_s);
/* {"ID":"<id>"}: the body of keepalive and revoke */
int etcd_req_lease(td_buf *out, int64_t id);
/* {"create_request":{"key":..,"range_end":..,"start_revision":"N","prev_kv":true}} */
int etcd_req_watch(td_buf *out, const void *key, size_t key_len, const void *range_end,
                   size_t end_len, int64_t start_revision, bool prev_kv);

typedef enum { ETCD_CMP_CREATE, ETCD_CMP_MOD, ETCD_CMP_VERSION, ETCD_CMP_VALUE } etcd_cmp_target;
typedef enum { ETCD_EQUAL, ETCD_GREATER, ETCD_LESS, ETCD_NOT_EQUAL } etcd_cmp_result;

/* One compare of a txn: the key's create_revision, mod_revision or version against n, or its
 * value against value. */
typedef struct etcd_cmp {
    const void *key;
    size_t key_len;
    etcd_cmp_target target;
    etcd_cmp_result result;
    int64_t n;
    const void *value;
    size_t value_len;
} etcd_cmp;

typedef enum { ETCD_OP_RANGE, ETCD_OP_PUT, ETCD_OP_DELETE } etcd_op_type;

/* One operation of a txn: request_range, request_put (value, lease) or request_delete_range
 * (range_end for a prefix) */
typedef struct etcd_op {
    etcd_op_type type;
    const void *key;
    size_t key_len;
    const void *value;
    size_t value_len;
    const void *range_end;
    size_t end_len;
    int64_t lease;
} etcd_op;

/* The compares (ANDed), then the operations run when they all hold, or else the others.
 * TD_EINVAL for a target, result or operation type outside its enum. */
int etcd_req_txn(td_buf *out, const etcd_cmp *cmps, size_t ncmps, const etcd_op *then, size_t nthen,
                 const etcd_op *otherwise, size_t notherwise);

/* The end of the range of every key that starts with prefix: the prefix with its last byte
 * below 0xff incremented (the bytes after it dropped); "\0" when every byte is 0xff (to the
 * end of the keyspace). Writes at most prefix_len bytes into end (its size), sets *end_len; an
 * empty prefix gives an empty end (the caller sends key and range_end "\0" for every key). */
void etcd_prefix_end(const void *prefix, size_t prefix_len, char *end, size_t *end_len);

/* ---------------------------------------------------------------------------------------------
 * Answers of the unary calls, and of a keepalive (whose one line is {"result":{..}}: the
 * wrapper is taken off).
 */
typedef struct etcd_resp {
    etcd_header header;
    /* an error body: its gRPC code (nonzero) and message; nothing else is set */
    int error_code;
    char error[256];
    /* range: the keys; a txn: the keys of each of its response_range, in order; deleterange
     * with prev_kv: the deleted ones */
    etcd_kv *kvs;
    size_t nkvs;
    int64_t count;   /* range: how many keys matched */
    bool more;       /* range: more keys than returned */
    bool succeeded;  /* txn: the compares held */
    int64_t deleted; /* deleterange */
    int64_t id, ttl; /* grant and keepalive: the lease and its TTL (keepalive: 0 = gone) */
} etcd_resp;

int etcd_parse_resp(const char *body, size_t len, etcd_resp *out);
void etcd_resp_free(etcd_resp *r);

/* ---------------------------------------------------------------------------------------------
 * A watch stream: newline-separated JSON objects, each {"result":{..}} or {"error":{..}}.
 */
typedef enum { ETCD_EVENT_PUT, ETCD_EVENT_DELETE } etcd_event_type;

typedef struct etcd_event {
    etcd_event_type type;
    etcd_kv kv;      /* a DELETE's kv has only its key and mod_revision */
    etcd_kv prev_kv; /* with prev_kv asked for: the key before (has_prev) */
    bool has_prev;
} etcd_event;

typedef struct etcd_watch_msg {
    etcd_header header;
    int64_t watch_id;
    bool created;
    bool canceled;
    int64_t compact_revision; /* canceled because its start revision was compacted */
    bool fragment;            /* more events of the same revision follow in the next line */
    int error_code;           /* an {"error":..} line: grpc_code (nonzero) and its message */
    char error[256];
    etcd_event *events;
    size_t nevents;
} etcd_watch_msg;

int etcd_parse_watch_line(const char *line, size_t len, etcd_watch_msg *out);
void etcd_watch_msg_free(etcd_watch_msg *m);

/* Cuts a byte stream into lines (each without its '\n' and one '\r' before it; empty lines
 * are skipped), holding at most max_line bytes of an unfinished one (a '\r' counts). */
typedef struct etcd_lines {
    td_buf pending;
    size_t max_line;
} etcd_lines;

void etcd_lines_init(etcd_lines *l, size_t max_line);
/* Calls line(arg, p, n) for each complete line in data, in order, and keeps the rest. Returns
 * 0; the first nonzero result of line (and stops, dropping the rest); or TD_EPROTO when a
 * line outgrows max_line (what was pending is dropped). */
int etcd_lines_feed(etcd_lines *l, const char *data, size_t n,
                    int (*line)(void *arg, const char *p, size_t n), void *arg);
void etcd_lines_free(etcd_lines *l);

#endif /* TD_CLUSTER_ETCD_JSON_H */
