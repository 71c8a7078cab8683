/* libFuzzer target: etcd's JSON gateway bodies (cluster/etcd_json.c). The input is read as a
 * unary answer and as a watch line: each returns 0 or TD_EPROTO, with the output all zero after
 * TD_EPROTO and, after 0, every key and value NUL-terminated at its length. It is then cut into
 * lines in one piece and in pieces whose sizes come from its first byte (which also sets
 * max_line): both must give the same lines and the same result, each line read as a watch
 * line. Last, its two halves go into a put request, which must be JSON whose key and value
 * decode back to them. The input is also read as the values tidings keeps in etcd
 * (cluster/meta_json.c: a broker's registration, the controller): a registration that decodes
 * must encode and decode again to the same. Nothing may leak. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster_int.h"
#include "cluster/etcd_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            abort();
}

static void check_kv(const etcd_kv *kv)
{
    if (!kv->key || kv->key[kv->key_len] || !kv->value || kv->value[kv->value_len])
        abort();
}

static void check_msg(const etcd_watch_msg *m)
{
    for (size_t i = 0; i < m->nevents; i++) {
        check_kv(&m->events[i].kv);
        if (m->events[i].has_prev)
            check_kv(&m->events[i].prev_kv);
        else if (m->events[i].prev_kv.key)
            abort();
    }
    if (m->error_code < 0 || memchr(m->error, 0, sizeof(m->error)) == NULL)
        abort();
}

typedef struct digest {
    uint64_t h;
    size_t lines;
} digest;

static int on_line(void *arg, const char *p, size_t n)
{
    digest *d = arg;
    if (n == 0 || memchr(p, '\n', n)) /* one '\r' is taken off; "a\r\r" keeps one */
        abort();
    for (size_t i = 0; i < n; i++)
        d->h = (d->h ^ (uint8_t)p[i]) * 1099511628211ull;
    d->h = d->h * 31 + n;
    d->lines++;
    etcd_watch_msg m;
    int rc = etcd_parse_watch_line(p, n, &m);
    if (rc != 0 && rc != TD_EPROTO)
        abort();
    if (rc == 0)
        check_msg(&m);
    etcd_watch_msg_free(&m);
    return 0;
}

static bool b64_is(const json_t *o, const char *key, const uint8_t *p, size_t n)
{
    const char *s = json_string_value(json_object_get(o, key));
    td_buf b;
    td_buf_init(&b);
    bool ok = s && td_base64_decode(&b, s, strlen(s)) == 0 && b.len == n &&
              (n == 0 || memcmp(b.p, p, n) == 0);
    td_buf_free(&b);
    return ok;
}

/* The values of PREFIX/brokers/<id> and PREFIX/controller. */
static void meta(const char *s, size_t size)
{
    td_cluster_broker b, again;
    if (cluster_broker_decode(s, size, &b) == 0) {
        td_buf out;
        td_buf_init(&out);
        if (cluster_broker_encode(&out, &b) != 0 ||
            cluster_broker_decode((const char *)out.p, out.len, &again) != 0 ||
            memcmp(&b, &again, sizeof(b)) != 0)
            abort();
        td_buf_free(&out);
    }
    int32_t id = -1;
    if (cluster_controller_decode(s, size, &id) == 0 && id < 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    meta(s, size);
    etcd_resp r;
    int rc = etcd_parse_resp(s, size, &r);
    if (rc == TD_EPROTO)
        check_zero(&r, sizeof(r));
    else if (rc != 0)
        abort();
    for (size_t i = 0; i < r.nkvs; i++)
        check_kv(&r.kvs[i]);
    if (memchr(r.error, 0, sizeof(r.error)) == NULL || (rc == 0 && r.nkvs && !r.kvs))
        abort();
    etcd_resp_free(&r);

    etcd_watch_msg m;
    rc = etcd_parse_watch_line(s, size, &m);
    if (rc == TD_EPROTO)
        check_zero(&m, sizeof(m));
    else if (rc != 0)
        abort();
    check_msg(&m);
    etcd_watch_msg_free(&m);

    if (size == 0)
        return 0;
    size_t step = (size_t)(data[0] % 16) + 1, max_line = (size_t)(data[0] >> 4) * 64 + 16;
    digest whole = {1469598103934665603ull, 0}, parts = whole;
    etcd_lines a, b;
    etcd_lines_init(&a, max_line);
    etcd_lines_init(&b, max_line);
    int ra = etcd_lines_feed(&a, s, size, on_line, &whole);
    int rb = 0;
    for (size_t i = 0; i < size && rb == 0; i += step)
        rb = etcd_lines_feed(&b, s + i, size - i < step ? size - i : step, on_line, &parts);
    if (ra != rb || (ra != 0 && ra != TD_EPROTO) || whole.h != parts.h ||
        whole.lines != parts.lines || a.pending.len != b.pending.len || a.pending.len > max_line)
        abort();
    etcd_lines_free(&a);
    etcd_lines_free(&b);

    td_buf out;
    td_buf_init(&out);
    size_t half = size / 2;
    if (etcd_req_put(&out, data, half, data + half, size - half, (int64_t)size) != 0)
        abort();
    json_t *j = json_loadb((const char *)out.p, out.len, 0, NULL);
    if (!j || !b64_is(j, "key", data, half) || !b64_is(j, "value", data + half, size - half))
        abort();
    json_decref(j);
    td_buf_free(&out);
    return 0;
}
