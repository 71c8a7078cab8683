/*
 * etcd_json.c: the bodies of etcd's v3 JSON gateway (etcd_json.h), written by hand and read
 * with jansson.
 *
 * Requests are appended to a td_buf directly: every string in them is base64 or a decimal
 * number and every name is ours, so nothing needs escaping, and a request costs no allocation
 * beyond the buffer's. A request that fails half-way (out of memory) is taken back off the
 * buffer, so that the caller never sends half of one.
 *
 * Answers are parsed with jansson (whose parser bounds the nesting, 2048 levels by default)
 * and then walked at the fixed depth of etcd's messages: a field that is absent is zero, as
 * the gateway leaves zero values out; a field of the wrong type, a number that does not fit or
 * a key that is not base64 makes the whole body TD_EPROTO. Fields we do not know are ignored,
 * so that a newer etcd's additions do not break us. 64-bit numbers are read from strings (the
 * gateway's way) or from JSON integers.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cluster/etcd_json.h"
#include "tidings.h"

/* gRPC's UNKNOWN: the code given to an error body that carries none (or 0), so that an error
 * is never mistaken for an answer. */
#define GRPC_UNKNOWN 2

/* ---------------------------------------------------------------------------------------------
 * Requests
 */

/* A JSON writer over a td_buf: the first failure sticks in rc and makes the rest no-ops, so
 * that an encoder checks once at its end. comma says whether the next value needs a ',' before
 * it (something precedes it in the same object or array). */
typedef struct jw {
    td_buf *b;
    size_t start;
    int rc;
    bool comma;
} jw;

static jw jw_begin(td_buf *out)
{
    jw w = {out, out->len, 0, false};
    return w;
}

/* 0, or the first failure with the buffer as it was before the request. */
static int jw_end(jw *w)
{
    if (w->rc)
        w->b->len = w->start;
    return w->rc;
}

static void raw(jw *w, const char *s, size_t n)
{
    if (w->rc == 0)
        w->rc = td_buf_append(w->b, s, n);
}

static void sep(jw *w)
{
    if (w->comma)
        raw(w, ",", 1);
}

/* "name": (the value follows without a comma) */
static void name(jw *w, const char *s)
{
    sep(w);
    raw(w, "\"", 1);
    raw(w, s, strlen(s));
    raw(w, "\":", 2);
    w->comma = false;
}

static void open_(jw *w, char c)
{
    sep(w);
    raw(w, &c, 1);
    w->comma = false;
}

static void close_(jw *w, char c)
{
    raw(w, &c, 1);
    w->comma = true;
}

/* "name":text, for a literal (true) or a quoted name of ours (an enum's): nothing to escape. */
static void field_text(jw *w, const char *s, const char *text)
{
    name(w, s);
    raw(w, text, strlen(text));
    w->comma = true;
}

/* Bytes as the gateway takes them: a base64 string ("" for none). */
static void field_bytes(jw *w, const char *s, const void *p, size_t n)
{
    name(w, s);
    raw(w, "\"", 1);
    if (w->rc == 0)
        w->rc = td_base64_encode(w->b, p, n);
    raw(w, "\"", 1);
    w->comma = true;
}

/* A 64-bit integer as the gateway takes it: a decimal string. */
static void field_int(jw *w, const char *s, int64_t v)
{
    char t[24];
    size_t n = 0;
    t[n++] = '"';
    if (v < 0)
        t[n++] = '-';
    /* The magnitude as unsigned: INT64_MIN has no positive int64. */
    n += td_u64_text(t + n, v < 0 ? 0 - (uint64_t)v : (uint64_t)v);
    t[n++] = '"';
    name(w, s);
    raw(w, t, n);
    w->comma = true;
}

/* "key":K[,"range_end":E]: the fields every keyed request starts with. An empty key is still
 * sent; an empty range_end is left out (the one key). */
static void key_range(jw *w, const void *key, size_t key_len, const void *end, size_t end_len)
{
    field_bytes(w, "key", key, key_len);
    if (end && end_len)
        field_bytes(w, "range_end", end, end_len);
}

int etcd_req_range(td_buf *out, const void *key, size_t key_len, const void *range_end,
                   size_t end_len)
{
    jw w = jw_begin(out);
    open_(&w, '{');
    key_range(&w, key, key_len, range_end, end_len);
    close_(&w, '}');
    return jw_end(&w);
}

static void put_fields(jw *w, const void *key, size_t key_len, const void *value, size_t value_len,
                       int64_t lease)
{
    field_bytes(w, "key", key, key_len);
    field_bytes(w, "value", value, value_len);
    if (lease)
        field_int(w, "lease", lease);
}

int etcd_req_put(td_buf *out, const void *key, size_t key_len, const void *value, size_t value_len,
                 int64_t lease)
{
    jw w = jw_begin(out);
    open_(&w, '{');
    put_fields(&w, key, key_len, value, value_len, lease);
    close_(&w, '}');
    return jw_end(&w);
}

int etcd_req_delete(td_buf *out, const void *key, size_t key_len, const void *range_end,
                    size_t end_len)
{
    return etcd_req_range(out, key, key_len, range_end, end_len); /* the same fields */
}

/* {"<name>":"<v>"} */
static int one_int(td_buf *out, const char *s, int64_t v)
{
    jw w = jw_begin(out);
    open_(&w, '{');
    field_int(&w, s, v);
    close_(&w, '}');
    return jw_end(&w);
}

int etcd_req_grant(td_buf *out, int64_t ttl_s)
{
    return one_int(out, "TTL", ttl_s);
}

int etcd_req_lease(td_buf *out, int64_t id)
{
    return one_int(out, "ID", id);
}

int etcd_req_watch(td_buf *out, const void *key, size_t key_len, const void *range_end,
                   size_t end_len, int64_t start_revision, bool prev_kv)
{
    jw w = jw_begin(out);
    open_(&w, '{');
    name(&w, "create_request");
    open_(&w, '{');
    key_range(&w, key, key_len, range_end, end_len);
    if (start_revision) /* 0: from the next revision on */
        field_int(&w, "start_revision", start_revision);
    if (prev_kv)
        field_text(&w, "prev_kv", "true");
    close_(&w, '}');
    close_(&w, '}');
    return jw_end(&w);
}

/* One compare: {"key":K,"target":T,"result":R,"<field>":V}, the field named after the target. */
static void cmp_write(jw *w, const etcd_cmp *c)
{
    static const char *const targets[] = {"\"CREATE\"", "\"MOD\"", "\"VERSION\"", "\"VALUE\""};
    static const char *const fields[] = {"create_revision", "mod_revision", "version", "value"};
    static const char *const results[] = {"\"EQUAL\"", "\"GREATER\"", "\"LESS\"", "\"NOT_EQUAL\""};
    if ((unsigned)c->target >= TD_ARRAY_LEN(targets) ||
        (unsigned)c->result >= TD_ARRAY_LEN(results)) {
        if (w->rc == 0)
            w->rc = td_fail(TD_EINVAL, "etcd: compare target %d or result %d is not known",
                            (int)c->target, (int)c->result);
        return;
    }
    open_(w, '{');
    field_bytes(w, "key", c->key, c->key_len);
    field_text(w, "target", targets[c->target]);
    field_text(w, "result", results[c->result]);
    if (c->target == ETCD_CMP_VALUE)
        field_bytes(w, fields[c->target], c->value, c->value_len);
    else
        field_int(w, fields[c->target], c->n);
    close_(w, '}');
}

/* One operation: {"request_range":{..}}, {"request_put":{..}} or {"request_delete_range":..}. */
static void op_write(jw *w, const etcd_op *op)
{
    const char *kind = op->type == ETCD_OP_RANGE    ? "request_range"
                       : op->type == ETCD_OP_PUT    ? "request_put"
                       : op->type == ETCD_OP_DELETE ? "request_delete_range"
                                                    : NULL;
    if (!kind) {
        if (w->rc == 0)
            w->rc = td_fail(TD_EINVAL, "etcd: operation type %d is not known", (int)op->type);
        return;
    }
    open_(w, '{');
    name(w, kind);
    open_(w, '{');
    if (op->type == ETCD_OP_PUT)
        put_fields(w, op->key, op->key_len, op->value, op->value_len, op->lease);
    else
        key_range(w, op->key, op->key_len, op->range_end, op->end_len);
    close_(w, '}');
    close_(w, '}');
}

/* "name":[op,..] */
static void ops_write(jw *w, const char *s, const etcd_op *ops, size_t n)
{
    name(w, s);
    open_(w, '[');
    for (size_t i = 0; i < n; i++)
        op_write(w, &ops[i]);
    close_(w, ']');
}

int etcd_req_txn(td_buf *out, const etcd_cmp *cmps, size_t ncmps, const etcd_op *then, size_t nthen,
                 const etcd_op *otherwise, size_t notherwise)
{
    jw w = jw_begin(out);
    open_(&w, '{');
    name(&w, "compare");
    open_(&w, '[');
    for (size_t i = 0; i < ncmps; i++)
        cmp_write(&w, &cmps[i]);
    close_(&w, ']');
    ops_write(&w, "success", then, nthen);
    ops_write(&w, "failure", otherwise, notherwise);
    close_(&w, '}');
    return jw_end(&w);
}

void etcd_prefix_end(const void *prefix, size_t prefix_len, char *end, size_t *end_len)
{
    /* The empty prefix has no end that fits in its 0 bytes: *end_len is 0 (and the caller
     * asks for every key with key "\0" and range_end "\0", etcd's own convention). */
    const uint8_t *p = prefix;
    for (size_t i = prefix_len; i-- > 0;) {
        if (p[i] < 0xff) {
            memmove(end, p, i);
            end[i] = (char)(p[i] + 1);
            *end_len = i + 1;
            return;
        }
    }
    if (prefix_len)
        end[0] = 0;
    *end_len = prefix_len ? 1 : 0;
}

/* ---------------------------------------------------------------------------------------------
 * Reading fields
 */

/* A 64-bit integer, signed or not (cluster and member ids use all 64 bits): a JSON integer or
 * a decimal string (digits, a '-' first where signed; no spaces, no '+'), its bits into *out. */
static int read_int(const json_t *v, bool is_unsigned, const char *key, uint64_t *out)
{
    if (json_is_integer(v) && (!is_unsigned || json_integer_value(v) >= 0)) {
        *out = (uint64_t)json_integer_value(v);
        return 0;
    }
    const char *s = json_string_value(v); /* NUL-free: no JSON_ALLOW_NUL */
    const char *digits = s && s[0] == '-' && !is_unsigned ? s + 1 : s;
    char *end = NULL;
    errno = 0;
    if (digits && *digits >= '0' && *digits <= '9')
        *out = is_unsigned ? strtoull(s, &end, 10) : (uint64_t)strtoll(s, &end, 10);
    if (!end || *end || errno)
        return td_fail(TD_EPROTO, "etcd: \"%s\" is not a 64-bit integer", key);
    return 0;
}

/* The numbers and flags of a message, read by one table each: a field absent stays as it is
 * (zero: every output is zeroed first). */
typedef enum { F_I64, F_U64, F_BOOL } field_kind;

typedef struct field {
    const char *name;
    field_kind kind;
    size_t off;
} field;

static int get_fields(const json_t *o, void *base, const field *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_object_get(o, f[i].name);
        char *at = (char *)base + f[i].off;
        uint64_t u;
        if (!v)
            continue;
        if (f[i].kind == F_BOOL) {
            if (!json_is_boolean(v))
                return td_fail(TD_EPROTO, "etcd: \"%s\" is not a boolean", f[i].name);
            *(bool *)at = json_is_true(v);
            continue;
        }
        int rc = read_int(v, f[i].kind == F_U64, f[i].name, &u);
        if (rc)
            return rc;
        if (f[i].kind == F_U64)
            *(uint64_t *)at = u;
        else
            *(int64_t *)at = (int64_t)u;
    }
    return 0;
}

static const field header_fields[] = {
    {"cluster_id", F_U64, offsetof(etcd_header, cluster_id)},
    {"member_id", F_U64, offsetof(etcd_header, member_id)},
    {"revision", F_I64, offsetof(etcd_header, revision)},
    {"raft_term", F_I64, offsetof(etcd_header, raft_term)},
};

static const field kv_fields[] = {
    {"create_revision", F_I64, offsetof(etcd_kv, create_revision)},
    {"mod_revision", F_I64, offsetof(etcd_kv, mod_revision)},
    {"version", F_I64, offsetof(etcd_kv, version)},
    {"lease", F_I64, offsetof(etcd_kv, lease)},
};

/* Range, txn, deleterange, grant and keepalive answers: their fields do not overlap. */
static const field resp_fields[] = {
    {"count", F_I64, offsetof(etcd_resp, count)},
    {"more", F_BOOL, offsetof(etcd_resp, more)},
    {"succeeded", F_BOOL, offsetof(etcd_resp, succeeded)},
    {"deleted", F_I64, offsetof(etcd_resp, deleted)},
    {"ID", F_I64, offsetof(etcd_resp, id)},
    {"TTL", F_I64, offsetof(etcd_resp, ttl)},
};

static const field watch_fields[] = {
    {"watch_id", F_I64, offsetof(etcd_watch_msg, watch_id)},
    {"created", F_BOOL, offsetof(etcd_watch_msg, created)},
    {"canceled", F_BOOL, offsetof(etcd_watch_msg, canceled)},
    {"compact_revision", F_I64, offsetof(etcd_watch_msg, compact_revision)},
    {"fragment", F_BOOL, offsetof(etcd_watch_msg, fragment)},
};

/* The field `key` of o if it is of type t, else NULL, with *rc TD_EPROTO when it is there
 * with another type. */
static const json_t *get_typed(const json_t *o, const char *key, json_type t, int *rc)
{
    const json_t *v = json_object_get(o, key);
    if (v && json_typeof(v) != t) {
        *rc = td_fail(TD_EPROTO, "etcd: \"%s\" has the wrong type", key);
        return NULL;
    }
    return v;
}

/* The base64 field `key` of o into a malloc'd NUL-terminated copy of its bytes ("" when
 * absent): 0, TD_EPROTO (not a string, not base64) or -ENOMEM, with *p NULL on failure. */
static int get_bytes(const json_t *o, const char *key, char **p, size_t *n)
{
    const json_t *v = json_object_get(o, key);
    *p = NULL;
    *n = 0;
    if (v && !json_is_string(v))
        return td_fail(TD_EPROTO, "etcd: \"%s\" is not a string", key);
    td_buf b;
    td_buf_init(&b);
    int rc = v ? td_base64_decode(&b, json_string_value(v), json_string_length(v)) : 0;
    if (rc == 0)
        rc = td_buf_reserve(&b, 1);
    if (rc) {
        td_buf_free(&b);
        return rc == TD_EINVAL ? td_fail(TD_EPROTO, "etcd: \"%s\" is not base64", key) : rc;
    }
    b.p[b.len] = 0;
    *p = (char *)b.p;
    *n = b.len;
    return 0;
}

static void kv_free(etcd_kv *kv)
{
    free(kv->key);
    free(kv->value);
    memset(kv, 0, sizeof(*kv));
}

/* A mvccpb.KeyValue (NULL: an empty one, keyed ""); kv has nothing to free on failure. */
static int parse_kv(const json_t *o, etcd_kv *kv)
{
    memset(kv, 0, sizeof(*kv));
    if (o && !json_is_object(o))
        return td_fail(TD_EPROTO, "etcd: a key-value is not an object");
    int rc = get_bytes(o, "key", &kv->key, &kv->key_len);
    if (rc == 0)
        rc = get_bytes(o, "value", &kv->value, &kv->value_len);
    if (rc == 0)
        rc = get_fields(o, kv, kv_fields, TD_ARRAY_LEN(kv_fields));
    if (rc)
        kv_free(kv);
    return rc;
}

static int parse_header(const json_t *o, etcd_header *h)
{
    int rc = 0;
    const json_t *hj = get_typed(o, "header", JSON_OBJECT, &rc);
    if (rc || !hj)
        return rc;
    return get_fields(hj, h, header_fields, TD_ARRAY_LEN(header_fields));
}

/* An error, either shape: {"error":"text","message":"text","code":N} (a unary call's) or
 * {"error":{"grpc_code":N,"http_code":N,"message":"text"}} (a stream's). */
static int parse_error(const json_t *top, const json_t *err, int *code, char *text, size_t cap)
{
    const json_t *holder = json_is_object(err) ? err : top;
    const char *ckey = json_is_object(err) ? "grpc_code" : "code";
    if (!json_is_object(err) && !json_is_string(err))
        return td_fail(TD_EPROTO, "etcd: \"error\" is neither text nor an object");
    const json_t *cj = json_object_get(holder, ckey);
    uint64_t c = 0;
    int rc = cj ? read_int(cj, true, ckey, &c) : 0;
    if (rc)
        return rc;
    if (c > INT_MAX)
        return td_fail(TD_EPROTO, "etcd: error code %llu is out of range", (unsigned long long)c);
    const json_t *msg = json_object_get(holder, "message");
    if (!json_is_string(msg))
        msg = json_is_string(err) ? err : NULL;
    *code = c ? (int)c : GRPC_UNKNOWN;
    snprintf(text, cap, "%s", msg ? json_string_value(msg) : "");
    return 0;
}

/* The body as a JSON object (jansson refuses other tops without JSON_DECODE_ANY), or NULL. */
static json_t *load_object(const char *p, size_t n)
{
    json_error_t je;
    json_t *j = json_loadb(p, n, 0, &je);
    if (!j) {
        td_fail(TD_EPROTO, "etcd: not JSON: %s", je.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        td_fail(TD_EPROTO, "etcd: not a JSON object");
        return NULL;
    }
    return j;
}

/* ---------------------------------------------------------------------------------------------
 * Unary answers
 */

/* Appends the key-values of the array `key` of o (absent: none) to r->kvs. */
static int append_kvs(etcd_resp *r, const json_t *o, const char *key)
{
    int rc = 0;
    const json_t *a = get_typed(o, key, JSON_ARRAY, &rc);
    size_t n = a ? json_array_size(a) : 0;
    if (rc || n == 0)
        return rc;
    if (n > SIZE_MAX / sizeof(etcd_kv) - r->nkvs)
        return -ENOMEM;
    etcd_kv *kvs = realloc(r->kvs, (r->nkvs + n) * sizeof(etcd_kv));
    if (!kvs)
        return -ENOMEM;
    r->kvs = kvs;
    for (size_t i = 0; i < n; i++) {
        rc = parse_kv(json_array_get(a, i), &r->kvs[r->nkvs]);
        if (rc)
            return rc;
        r->nkvs++;
    }
    return 0;
}

/* A txn's responses: the key-values of each response_range, in order (the put and
 * delete_range responses carry nothing the callers use). */
static int parse_txn_responses(etcd_resp *r, const json_t *o)
{
    int rc = 0;
    const json_t *a = get_typed(o, "responses", JSON_ARRAY, &rc);
    for (size_t i = 0; rc == 0 && a && i < json_array_size(a); i++) {
        const json_t *op = json_array_get(a, i);
        if (!json_is_object(op))
            return td_fail(TD_EPROTO, "etcd: a txn response is not an object");
        const json_t *range = get_typed(op, "response_range", JSON_OBJECT, &rc);
        if (rc == 0 && range)
            rc = append_kvs(r, range, "kvs");
    }
    return rc;
}

/* The fields of a unary answer (and of a keepalive's result): they do not overlap, so one
 * reader serves every call. */
static int parse_answer(const json_t *o, etcd_resp *r)
{
    int rc = parse_header(o, &r->header);
    if (rc == 0)
        rc = append_kvs(r, o, "kvs");
    if (rc == 0)
        rc = get_fields(o, r, resp_fields, TD_ARRAY_LEN(resp_fields));
    if (rc == 0)
        rc = parse_txn_responses(r, o);
    if (rc == 0)
        rc = append_kvs(r, o, "prev_kvs");
    return rc;
}

int etcd_parse_resp(const char *body, size_t len, etcd_resp *out)
{
    memset(out, 0, sizeof(*out));
    json_t *j = load_object(body, len);
    if (!j)
        return TD_EPROTO;
    int rc = 0;
    const json_t *err = json_object_get(j, "error");
    const json_t *o = j;
    if (err) {
        rc = parse_error(j, err, &out->error_code, out->error, sizeof(out->error));
    } else {
        /* A keepalive's line is {"result":{..}}; a unary answer has no "result" field. */
        const json_t *res = get_typed(j, "result", JSON_OBJECT, &rc);
        if (res)
            o = res;
        if (rc == 0)
            rc = parse_answer(o, out);
    }
    json_decref(j);
    if (rc)
        etcd_resp_free(out);
    return rc;
}

void etcd_resp_free(etcd_resp *r)
{
    for (size_t i = 0; i < r->nkvs; i++)
        kv_free(&r->kvs[i]);
    free(r->kvs);
    memset(r, 0, sizeof(*r));
}

/* ---------------------------------------------------------------------------------------------
 * The watch stream
 */

static void event_free(etcd_event *e)
{
    kv_free(&e->kv);
    kv_free(&e->prev_kv);
}

/* A mvccpb.Event: "type" absent (or "PUT", or 0) is a put, "DELETE" (or 1) a delete. */
static int parse_event(const json_t *o, etcd_event *e)
{
    memset(e, 0, sizeof(*e));
    if (!json_is_object(o))
        return td_fail(TD_EPROTO, "etcd: an event is not an object");
    const json_t *t = json_object_get(o, "type");
    if (!t || (json_is_string(t) && strcmp(json_string_value(t), "PUT") == 0) ||
        (json_is_integer(t) && json_integer_value(t) == 0))
        e->type = ETCD_EVENT_PUT;
    else if ((json_is_string(t) && strcmp(json_string_value(t), "DELETE") == 0) ||
             (json_is_integer(t) && json_integer_value(t) == 1))
        e->type = ETCD_EVENT_DELETE;
    else
        return td_fail(TD_EPROTO, "etcd: an event's type is not PUT or DELETE");
    int rc = 0;
    const json_t *kv = get_typed(o, "kv", JSON_OBJECT, &rc);
    const json_t *prev = rc ? NULL : get_typed(o, "prev_kv", JSON_OBJECT, &rc);
    if (rc)
        return rc;
    /* A kv absent is an empty one, keyed "" like every other, so that readers need not test. */
    rc = parse_kv(kv, &e->kv);
    if (rc == 0 && prev) {
        rc = parse_kv(prev, &e->prev_kv);
        e->has_prev = rc == 0;
    }
    if (rc)
        event_free(e);
    return rc;
}

/* A WatchResponse (the "result" of a line). */
static int parse_watch_result(const json_t *o, etcd_watch_msg *m)
{
    int rc = parse_header(o, &m->header);
    if (rc == 0)
        rc = get_fields(o, m, watch_fields, TD_ARRAY_LEN(watch_fields));
    /* Why etcd canceled the watch, when it says (error_code stays 0: not an error line). */
    const json_t *reason = json_object_get(o, "cancel_reason");
    if (rc == 0 && json_is_string(reason))
        snprintf(m->error, sizeof(m->error), "%s", json_string_value(reason));
    const json_t *a = rc ? NULL : get_typed(o, "events", JSON_ARRAY, &rc);
    size_t n = a ? json_array_size(a) : 0;
    if (rc || n == 0)
        return rc;
    m->events = calloc(n, sizeof(etcd_event));
    if (!m->events)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        rc = parse_event(json_array_get(a, i), &m->events[i]);
        if (rc)
            return rc;
        m->nevents++;
    }
    return 0;
}

int etcd_parse_watch_line(const char *line, size_t len, etcd_watch_msg *out)
{
    memset(out, 0, sizeof(*out));
    json_t *j = load_object(line, len);
    if (!j)
        return TD_EPROTO;
    int rc = 0;
    const json_t *err = json_object_get(j, "error");
    const json_t *res = err ? NULL : get_typed(j, "result", JSON_OBJECT, &rc);
    if (err)
        rc = parse_error(j, err, &out->error_code, out->error, sizeof(out->error));
    else if (res)
        rc = parse_watch_result(res, out);
    else if (rc == 0)
        rc = td_fail(TD_EPROTO, "etcd: a watch line has neither \"result\" nor \"error\"");
    json_decref(j);
    if (rc)
        etcd_watch_msg_free(out);
    return rc;
}

void etcd_watch_msg_free(etcd_watch_msg *m)
{
    for (size_t i = 0; i < m->nevents; i++)
        event_free(&m->events[i]);
    free(m->events);
    memset(m, 0, sizeof(*m));
}

/* ---------------------------------------------------------------------------------------------
 * Lines
 */

void etcd_lines_init(etcd_lines *l, size_t max_line)
{
    td_buf_init(&l->pending);
    l->max_line = max_line;
}

/* A line without its '\n' (and a '\r' before it), unless it is empty. */
static int deliver(const char *p, size_t n, int (*line)(void *arg, const char *p, size_t n),
                   void *arg)
{
    if (n && p[n - 1] == '\r')
        n--;
    return n ? line(arg, p, n) : 0;
}

int etcd_lines_feed(etcd_lines *l, const char *data, size_t n,
                    int (*line)(void *arg, const char *p, size_t n), void *arg)
{
    /* A line's bytes count against max_line as they arrive, its '\r' included, so that a line
     * too long fails the same way however the stream is cut. Lines that come whole in data are
     * handed out where they lie; only the start of an unfinished one is copied. On a stop (the
     * callback's result or an overlong line), the rest of data and what was pending are
     * dropped: the caller is done with this stream. */
    int rc = 0;
    while (n > 0 && rc == 0) {
        const char *nl = memchr(data, '\n', n);
        size_t take = nl ? (size_t)(nl - data) : n;
        if (take > l->max_line || l->pending.len > l->max_line - take) {
            rc = td_fail(TD_EPROTO, "etcd: a line is longer than %zu bytes", l->max_line);
            break;
        }
        if (!nl) {
            rc = td_buf_append(&l->pending, data, take);
            break;
        }
        if (l->pending.len == 0) {
            rc = deliver(data, take, line, arg);
        } else {
            rc = td_buf_append(&l->pending, data, take);
            if (rc == 0)
                rc = deliver((const char *)l->pending.p, l->pending.len, line, arg);
            td_buf_reset(&l->pending);
        }
        data += take + 1;
        n -= take + 1;
    }
    if (rc)
        td_buf_reset(&l->pending);
    return rc;
}

void etcd_lines_free(etcd_lines *l)
{
    td_buf_free(&l->pending);
}
